# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The dmarc_config backend: opendmarc.conf and its IgnoreHosts file, checked, swapped, restarted, rolled back.

``DmarcConfig.execute``:

1. validates the settings (:mod:`dmarc_settings`) and checks every path on the host (mail_paths);
   the public suffix list must exist (``opendmarc -n`` does not open it);
2. when a file differs: writes candidates to a private directory and runs ``opendmarc -n -c`` on
   them (OpenDMARC parses the file and refuses unknown parameters and illegal values), swaps them in
   atomically, restarts OpenDMARC, and requires the milter to answer a milter option negotiation on
   its port; otherwise the previous files come back and OpenDMARC is restarted on them.

Every side effect is an injected callable, so that the failure paths are unit tested without a host.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.call_record import Footprint
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import ConfigModuleError
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import guard
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import (
    read_text,
    replace_keeping_mode,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import (
    ServiceBackend,
    ServiceStateError,
    ensure_service,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.dkim.dkim_config import milter_probe
from ansible_collections.postmaster.mailserver.plugins.module_utils.dkim.dmarc_settings import (
    DmarcSettingsError,
    check_settings,
    render_files,
)

DEFAULT_CONF = "/etc/opendmarc.conf"
DEFAULT_IGNORE_FILE = "/etc/opendmarc/ignore.hosts"
SERVICE = "opendmarc"


class DmarcConfigError(ConfigModuleError):
    """Validation, the candidate check, the swap or the health check failed."""


class DmarcConfig(ServiceBackend):
    """opendmarc.conf and its IgnoreHosts file, applied safely."""

    # The result of a call that changed nothing (see config_module.unchanged_result).
    UNCHANGED: ClassVar[dict[str, Any]] = {"restarted": False, "milter_answer": None}

    def __init__(
        self,
        *,
        settings: Mapping[str, Any],
        conf_path: str = DEFAULT_CONF,
        ignore_file: str = DEFAULT_IGNORE_FILE,
        milter: Callable[[str, int, float], str] = milter_probe,
        exists: Callable[[str], bool] = os.path.isfile,
        trust: Any = None,
        **common: Any,
    ) -> None:
        try:
            self.settings = check_settings(settings)
        except DmarcSettingsError as exc:
            raise DmarcConfigError(f"{exc}; nothing was changed") from None
        self.conf_path = conf_path
        self.ignore_file = ignore_file
        self.files = render_files(self.settings, conf_path, ignore_file)
        self._keep(**common)
        self.health_port = self.health_port or self.settings["milter_port"]
        self._milter = milter
        self._exists = exists
        self._trust = trust

    def _guard(self, path: str, name: str, kind: str) -> None:
        options: dict[str, Any] = {"kind": kind}
        if self._trust is not None:
            options["trust"] = self._trust
        guard(DmarcConfigError, path, name, **options)

    def check_candidate(self) -> None:
        """``opendmarc -n -c`` on candidates in a private directory: unknown parameters and bad values fail."""
        opendmarc = self._get_bin_path("opendmarc")
        if not opendmarc:
            if self.check_mode:
                self.warnings.append("opendmarc not found: only the Python validation ran (check mode)")
                return
            raise DmarcConfigError("opendmarc was not found; is the opendmarc package installed?")
        with tempfile.TemporaryDirectory(prefix="postmaster-opendmarc-") as workdir:
            conf = os.path.join(workdir, "opendmarc.conf")
            candidate = render_files(self.settings, conf, os.path.join(workdir, "ignore.hosts"))
            for path, text in candidate.items():
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(text)
            rc, out, err = self.run([opendmarc, "-n", "-c", conf])
        if rc != 0:
            message = (err or out).strip().replace(workdir + "/", "<candidate>/")[-2000:]
            raise DmarcConfigError(
                f"opendmarc -n refused the candidate configuration (rc={rc}); nothing was changed: {message}",
                checker_rc=rc,
            )

    def health(self) -> str:
        return self._wait(
            f"the OpenDMARC milter on {self.health_host}:{self.health_port} did not answer",
            lambda timeout: self._milter(self.health_host, self.health_port, timeout),
        )

    def footprint(self) -> Footprint:
        """What a run without a change compares: the files, the public suffix list, the service."""
        return Footprint([*self.files, self.ignore_file, self.settings["public_suffix_list"]], [SERVICE])

    def execute(self) -> dict[str, Any]:
        """Do everything; return the module result (``diff`` is always filled, the module filters it)."""
        self._guard(self.conf_path, "conf_path", "file")
        self._guard(self.ignore_file, "ignore_file", "file")
        self._guard(os.path.dirname(self.ignore_file), "ignore_file", "dir")
        psl = self.settings["public_suffix_list"]
        if not self._exists(psl):
            message = f"dkim_dmarc_public_suffix_list: {psl} does not exist; is the publicsuffix package installed?"
            if not self.check_mode:
                raise DmarcConfigError(f"{message}; nothing was changed")
            self.warnings.append(message)
        previous = {path: read_text(path) for path in self.files}
        changed_files = [path for path, text in self.files.items() if previous[path] != text]
        result: dict[str, Any] = {
            "changed": bool(changed_files),
            "conf_path": self.conf_path,
            "restarted": False,
            "diff": {
                "before_header": self.conf_path,
                "after_header": self.conf_path,
                "before": "".join(f"# {path}\n{previous[path] or ''}" for path in self.files),
                "after": "".join(f"# {path}\n{text}" for path, text in self.files.items()),
            },
        }
        if changed_files:
            self.check_candidate()
        if self.check_mode:
            try:
                actions = ensure_service(self.run, self._get_bin_path, SERVICE, check_mode=True)
            except ServiceStateError as exc:
                self.warnings.append(str(exc))
                actions = []
            result["changed"] = bool(changed_files or actions)
        else:
            result.update(self.apply(changed_files))
            result["changed"] = bool(changed_files or result["restarted"])
        result["warnings"] = list(self.warnings)
        return result

    def apply(self, changed_files: Sequence[str]) -> dict[str, Any]:
        """Swap the changed files in, restart OpenDMARC, check health; roll back on failure."""
        result: dict[str, Any] = {"restarted": False}
        touched = Touched()
        try:
            for path in changed_files:
                touched.makedirs(os.path.dirname(path), mode=0o755)
                replace_keeping_mode(self._atomic_move, path, self.files[path], touched=touched)
        except OSError as exc:
            touched.restore()
            raise DmarcConfigError(f"writing the OpenDMARC configuration failed: {exc}; nothing was kept") from exc
        result.update(
            self._restart_checked(
                SERVICE,
                touched,
                health=self.health,
                health_key="milter_answer",
                restored="the previous configuration was restored",
                name="OpenDMARC",
                error=DmarcConfigError,
            )
        )
        return result


__all__ = ["DmarcConfig", "DmarcConfigError"]
