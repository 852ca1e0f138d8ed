# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fail2ban_config backend: the role's jail file, checked, swapped, restarted, rolled back.

``Fail2banConfig.execute``:

1. validates the settings (:mod:`fail2ban_settings`) and the jail file's path;
2. when the jail file differs: the whole configuration directory is copied with the candidate in
   it, and fail2ban's own checker (``fail2ban-client -c <copy> -t``) must pass it: an unknown
   filter, a bad option or a jail that cannot start is refused before the host changes;
3. the file is swapped in atomically and fail2ban restarted (its bans come back from its
   database); it is also enabled and started when it is not running;
4. health: ``fail2ban-client ping`` answers ``pong`` and every enabled jail of the file is running
   (``fail2ban-client status``); otherwise the previous file comes back and fail2ban is restarted
   on it.

Every side effect is an injected callable, so that the failure paths are unit tested without a host.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any, ClassVar

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.call_record import Footprint
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import ConfigModuleError
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import (
    read_text,
    replace_keeping_mode,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import (
    HealthCheckError,
    ServiceBackend,
    ensure_service,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.fail2ban.fail2ban_settings import (
    Fail2banSettingsError,
    check_settings,
    enabled_jails,
    render_jails,
)

DEFAULT_CONF_DIR = "/etc/fail2ban"
DEFAULT_JAIL_FILE = "postmaster.local"
SERVICE = "fail2ban"
_JAIL_LIST_RE = re.compile(r"Jail list:\s*(.*)$", re.MULTILINE)
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.local\Z")
_DIR_RE = re.compile(r"^/[A-Za-z0-9._/-]*\Z")


class Fail2banConfigError(ConfigModuleError):
    """Validation, the candidate check, the swap or the health check failed."""


def running_jails(status: str) -> list[str]:
    """The jail names of ``fail2ban-client status``."""
    match = _JAIL_LIST_RE.search(status)
    if not match:
        return []
    return [name.strip() for name in match.group(1).split(",") if name.strip()]


class Fail2banConfig(ServiceBackend):
    """The fail2ban role's jail file, applied safely."""

    # The result of a call that changed nothing (see config_module.unchanged_result).
    UNCHANGED: ClassVar[dict[str, Any]] = {"restarted": False, "jails": None}

    def __init__(
        self,
        *,
        settings: Mapping[str, Any] | None,
        state: str = "present",
        conf_dir: str = DEFAULT_CONF_DIR,
        jail_file: str = DEFAULT_JAIL_FILE,
        **common: Any,
    ) -> None:
        if not isinstance(conf_dir, str) or not _DIR_RE.match(conf_dir) or ".." in conf_dir.split("/"):
            raise Fail2banConfigError(f"conf_dir: {conf_dir!r} is not an absolute path of plain characters")
        if not isinstance(jail_file, str) or not _FILE_RE.match(jail_file):
            raise Fail2banConfigError(f"jail_file: {jail_file!r} is not a file name ending in .local")
        if state not in ("present", "absent"):
            raise Fail2banConfigError(f"state: must be present or absent, got {state!r}")
        self.state = state
        self.conf_dir = conf_dir.rstrip("/") or "/"
        self.path = os.path.join(self.conf_dir, "jail.d", jail_file)
        self.jail_file = jail_file
        self.settings: dict[str, Any] | None = None
        self.text: str | None = None
        if state == "present":
            try:
                self.settings = check_settings(settings or {})
            except Fail2banSettingsError as exc:
                raise Fail2banConfigError(f"{exc}; nothing was changed") from None
            self.text = render_jails(self.settings)
        self._keep(**common)

    def _bin(self, name: str) -> str:
        path = self._get_bin_path(name)
        if not path:
            raise Fail2banConfigError(f"{name} was not found; is fail2ban installed?")
        return path

    # -- candidate check ---------------------------------------------------------------

    def check_candidate(self) -> None:
        """fail2ban's own test of a copy of the configuration directory with the candidate in it."""
        client = self._bin("fail2ban-client")
        with tempfile.TemporaryDirectory(prefix="postmaster-fail2ban-") as workdir:
            copy = os.path.join(workdir, "fail2ban")
            shutil.copytree(self.conf_dir, copy, symlinks=True)
            candidate = os.path.join(copy, "jail.d", self.jail_file)
            os.makedirs(os.path.dirname(candidate), exist_ok=True)
            if self.text is None:
                if os.path.lexists(candidate):
                    os.unlink(candidate)
            else:
                with open(candidate, "w", encoding="utf-8") as handle:
                    handle.write(self.text)
            rc, out, err = self.run([client, "-c", copy, "-t"])
        if rc != 0 or "configuration test is successful" not in out + err:
            detail = "\n".join(line for line in (err + out).splitlines() if "ERROR" in line) or (err or out).strip()
            raise Fail2banConfigError(
                f"fail2ban-client -t refused the candidate {self.path} (rc={rc}); nothing was changed: "
                f"{detail[-1500:]}",
                checker_rc=rc,
            )

    # -- health --------------------------------------------------------------------------

    def _probe(self, timeout: float) -> list[str]:
        client = self._bin("fail2ban-client")
        rc, out, err = self.run([client, "ping"])
        if rc != 0 or "pong" not in out:
            raise HealthCheckError(f"fail2ban-client ping answered rc={rc}: {(err or out).strip()[-300:]}")
        rc, out, err = self.run([client, "status"])
        running = running_jails(out)
        wanted = enabled_jails(self.settings) if self.settings else []
        missing = [name for name in wanted if name not in running]
        if rc != 0 or missing:
            detail = f": {err.strip()[-300:]}" if err.strip() else ""
            raise HealthCheckError(
                f"fail2ban runs, but not the jail(s) {', '.join(missing) or '?'} "
                f"(running: {', '.join(running) or 'none'}){detail}"
            )
        return running

    def health(self) -> list[str]:
        return self._wait("fail2ban did not answer with every jail running", self._probe)

    # -- entry point -------------------------------------------------------------------------

    def footprint(self) -> Footprint:
        """What a run without a change compares: the jail file and the service."""
        return Footprint([self.path], [SERVICE])

    def execute(self) -> dict[str, Any]:
        """Do everything; return the module result (``diff`` is always filled, the module filters it)."""
        previous = read_text(self.path)
        changed = previous != self.text
        result: dict[str, Any] = {
            "changed": changed,
            "path": self.path,
            "restarted": False,
            "jails": None,
            "diff": {
                "before_header": self.path,
                "after_header": self.path,
                "before": previous or "",
                "after": self.text or "",
            },
        }
        if changed:
            if self._get_bin_path("fail2ban-client"):
                self.check_candidate()
            elif self.state == "present":
                if not self.check_mode:
                    self._bin("fail2ban-client")
                self.warnings.append("fail2ban not installed yet: the candidate could not be checked")
        if self.state == "present":
            # Enabled at boot and running, even when the file is as it should be.
            actions = ensure_service(self.run, self._get_bin_path, SERVICE, check_mode=True)
            result["changed"] = result["changed"] or bool(actions)
        if not self.check_mode and result["changed"]:
            result.update(self.apply(changed))
        result["warnings"] = list(self.warnings)
        return result

    def apply(self, changed: bool) -> dict[str, Any]:
        """Write (or remove) the jail file, restart fail2ban, check health; roll back on failure."""
        touched = Touched()
        try:
            if changed and self.text is not None:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                replace_keeping_mode(self._atomic_move, self.path, self.text, touched=touched)
            elif changed:
                touched.remember(self.path)
                os.unlink(self.path)
        except OSError as exc:
            touched.restore()
            raise Fail2banConfigError(f"writing {self.path} failed: {exc}; nothing was kept") from exc
        if self.state == "absent":
            # Debian's own jails (sshd) go on without the role's; a stopped fail2ban stays stopped.
            rc, _out, _err = self.run([self._get_bin_path("systemctl") or "systemctl", "is-active", "--quiet", SERVICE])
            if rc == 0:
                self._systemctl("restart", SERVICE)
                return {"restarted": True}
            return {"restarted": False}
        return self._restart_checked(
            SERVICE,
            touched,
            health=self.health,
            health_key="jails",
            restored="the previous jail file was restored",
            name="fail2ban",
            error=Fail2banConfigError,
        )


__all__ = ["Fail2banConfig", "Fail2banConfigError", "running_jails"]
