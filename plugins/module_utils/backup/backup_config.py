# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The backup_config backend: restic's files, the repository, and the job's timer, applied safely.

``BackupConfig.execute``:

1. validates the settings (:mod:`backup_settings`), and on the host every directory the job writes
   (a local repository, the staging tree) against the path guard: no symlink, no world- or
   group-writable ancestor;
2. opens the repository with the candidate password (``restic cat config``, both read from private
   temporary files): a wrong password or an unreachable repository fails here, before the host
   changes; a repository that does not exist yet is initialised, unless ``init`` is off (a restore
   never creates an empty repository);
3. checks a changed schedule with systemd's own parser (``systemd-analyze calendar``);
4. swaps every changed file in atomically (the repository and password files 0600, root's), reloads
   systemd and enables and (re)starts the timer;
5. health: the timer is active and the repository opens with the installed files; otherwise every
   file comes back and systemd is reloaded on them.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Mapping
from typing import Any, ClassVar

from ansible_collections.postmaster.mailserver.plugins.module_utils.backup.backup_settings import (
    CONF_DIR,
    SERVICE,
    TIMER,
    UNIT_DIR,
    BackupSettingsError,
    check_settings,
    files,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.call_record import Footprint
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import ConfigModuleError
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import guard
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import (
    read_text,
    set_owner_mode,
    write_atomically,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import (
    HealthCheckError,
    ServiceBackend,
    ServiceStateError,
    ensure_service,
)

_WRONG_PASSWORD_RE = re.compile(r"wrong password|no key found", re.IGNORECASE)
_UNREACHABLE_RE = re.compile(
    r"connection refused|no such host|dial tcp|i/o timeout|network is unreachable|ssh command exited|"
    r"unable to start the sftp session|server response unexpected",
    re.IGNORECASE,
)
_MISSING_RE = re.compile(
    r"Is there a repository at the following location\?|repository does not exist|unable to open config file",
    re.IGNORECASE,
)
#: restic's exit code for "the repository does not exist" (0.17 and later; 0.14 says it in words).
RC_NO_REPOSITORY = 10
RC_WRONG_PASSWORD = 12
#: coreutils timeout's exit code: restic retries a repository that does not answer for minutes.
RC_TIMEOUT = 124
RESTIC_TIMEOUT = 120


class BackupConfigError(ConfigModuleError):
    """Validation, the repository, the schedule check, the swap or the health check failed."""


class BackupConfig(ServiceBackend):
    """The backup role's files and timer, applied safely."""

    # The result of a call that changed nothing (see config_module.unchanged_result).
    UNCHANGED: ClassVar[dict[str, Any]] = {"initialized": False, "restarted": False}

    def __init__(
        self,
        *,
        settings: Mapping[str, Any] | None,
        password: str | None = None,
        script: str | None = None,
        state: str = "present",
        init: bool = True,
        root: str = "/",
        **common: Any,
    ) -> None:
        if state not in ("present", "absent"):
            raise BackupConfigError(f"state: must be present or absent, got {state!r}")
        self.state = state
        self.init = bool(init)
        # Every host path lies below *root* ("/" on a host; a scratch directory in the unit tests).
        self.root = root
        self.settings: dict[str, Any] | None = None
        self.wanted: dict[str, tuple[str, int]] = {}
        if state == "present":
            try:
                given = dict(settings or {})
                if password is not None:
                    given["password"] = password
                self.settings = check_settings(given, "backup_")
            except BackupSettingsError as exc:
                raise BackupConfigError(f"{exc}; nothing was changed") from None
            if not isinstance(script, str) or not script.startswith("#!/bin/sh\n"):
                raise BackupConfigError(
                    "script: the job's shell script (the role's files/postmaster-backup) is missing"
                )
            self.wanted = files(self.settings, script)
        else:
            self.wanted = dict.fromkeys(files(_PLACEHOLDER, "#!/bin/sh\n"), ("", 0))
        self._keep(**common)

    # -- host checks ---------------------------------------------------------------------------

    def _guard_paths(self) -> None:
        local = self.settings["repository"]["path"]
        if self.root != "/":
            return
        if local:
            guard(BackupConfigError, local, "backup_repository")
        guard(BackupConfigError, self.settings["staging_dir"], "backup_staging_dir")

    def _restic(self) -> str:
        path = self._get_bin_path("restic")
        if not path:
            raise BackupConfigError("restic was not found; is it installed?")
        return path

    def _restic_run(self, args: list[str], repository: str, password: str) -> tuple[int, str, str]:
        """Run restic with the repository and password in files of a private temporary directory."""
        with tempfile.TemporaryDirectory(prefix="postmaster-backup-") as workdir:
            os.chmod(workdir, 0o700)
            repo_file = os.path.join(workdir, "repository")
            password_file = os.path.join(workdir, "password")
            for path, text in ((repo_file, repository), (password_file, password)):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as fh:
                    fh.write(text + "\n")
            timeout = self._get_bin_path("timeout")
            limit = [timeout, "--kill-after=10", str(RESTIC_TIMEOUT)] if timeout else []
            rc, out, err = self._run(
                [*limit, self._restic(), "--no-cache", *args],
                environ_update={
                    "LC_ALL": "C",
                    "RESTIC_REPOSITORY_FILE": repo_file,
                    "RESTIC_PASSWORD_FILE": password_file,
                    "RESTIC_PASSWORD": "",
                    "RESTIC_REPOSITORY": "",
                },
            )
        return rc, out or "", err or ""

    def repository_state(self) -> str:
        """``present`` when the repository opens with the password, ``missing`` when there is none; else raise."""
        location = self.settings["repository"]["location"]
        kind = self.settings["repository"]["kind"]
        if kind == "local" and not os.path.exists(self._host(os.path.join(location, "config"))):
            if os.path.isdir(self._host(location)) and os.listdir(self._host(location)):
                raise BackupConfigError(
                    f"backup_repository: {location} holds files but no restic repository; nothing was changed "
                    "(give an empty or new directory, or the directory of an existing repository)"
                )
            return "missing"
        rc, out, err = self._restic_run(["cat", "config"], location, self.settings["password"])
        if rc == 0:
            return "present"
        text = (err or out).strip()
        if rc == RC_WRONG_PASSWORD or _WRONG_PASSWORD_RE.search(text):
            raise BackupConfigError(
                f"backup_password does not open the repository {_shown(location)} (restic: wrong password or no key "
                "found); nothing was changed"
            )
        if rc == RC_TIMEOUT or _UNREACHABLE_RE.search(text):
            raise BackupConfigError(
                f"backup_repository: {_shown(location)} cannot be reached (rc={rc}); nothing was changed: "
                f"{_scrub(text, self.settings)[-500:]}"
            )
        if rc == RC_NO_REPOSITORY or _MISSING_RE.search(text):
            return "missing"
        raise BackupConfigError(
            f"backup_repository: restic cannot open {_shown(location)} (rc={rc}); nothing was changed: "
            f"{_scrub(text, self.settings)[-800:]}"
        )

    def check_schedule(self) -> None:
        """systemd's own parser must accept the schedule."""
        analyze = self._get_bin_path("systemd-analyze")
        if not analyze:
            self.warnings.append("systemd-analyze was not found: the schedule could not be checked")
            return
        rc, out, err = self.run([analyze, "calendar", self.settings["schedule"]])
        if rc != 0:
            raise BackupConfigError(
                f"backup_schedule: systemd does not accept {self.settings['schedule']!r} as a calendar expression "
                f"(rc={rc}); nothing was changed: {(err or out).strip()[-300:]}"
            )

    # -- entry point -------------------------------------------------------------------------------

    def footprint(self) -> Footprint:
        """What a run without a change compares: the files and the timer."""
        return Footprint([self._host(path) for path in self.wanted], [TIMER])

    def _host(self, path: str) -> str:
        return path if self.root == "/" else os.path.join(self.root, path.lstrip("/"))

    def _differs(self, path: str, content: str, mode: int) -> bool:
        real = self._host(path)
        if read_text(real) != content:
            return True
        st = os.lstat(real)
        return stat.S_IMODE(st.st_mode) != mode or (self.root == "/" and st.st_uid != 0)

    def execute(self) -> dict[str, Any]:
        """Do everything; return the module result (``diff`` is always filled, the module filters it)."""
        secret = {f"{CONF_DIR}/password", f"{CONF_DIR}/repository"}
        if self.state == "absent":
            return self._remove()
        self._guard_paths()
        changed_paths = [path for path, (content, mode) in self.wanted.items() if self._differs(path, content, mode)]
        before = "".join(
            f"# {path}\n{'(secret)' if path in secret else read_text(self._host(path)) or ''}\n"
            for path in changed_paths
        )
        after = "".join(
            f"# {path}\n{'(secret)' if path in secret else self.wanted[path][0]}\n" for path in changed_paths
        )
        result: dict[str, Any] = {
            "changed": bool(changed_paths),
            "paths": sorted(self.wanted),
            "initialized": False,
            "restarted": False,
            "diff": {"before_header": CONF_DIR, "after_header": CONF_DIR, "before": before, "after": after},
        }
        repository = "present"
        if self._get_bin_path("restic"):
            repository = self.repository_state()
        elif not self.check_mode:
            self._restic()
        else:
            self.warnings.append("restic is not installed yet: the repository could not be opened")
        if repository == "missing":
            if not self.init:
                raise BackupConfigError(
                    f"backup_repository: there is no restic repository at {_shown(self.settings['repository']['location'])}; "
                    "nothing was changed (a restore needs the repository the backups went to)"
                )
            result["changed"] = True
        timer_path = os.path.join(UNIT_DIR, TIMER)
        if timer_path in changed_paths:
            self.check_schedule()
        actions = ensure_service(self.run, self._get_bin_path, TIMER, check_mode=True) if not changed_paths else []
        result["changed"] = result["changed"] or bool(actions)
        if not self.check_mode and result["changed"]:
            result.update(self.apply(changed_paths, repository == "missing"))
        result["warnings"] = list(self.warnings)
        return result

    def apply(self, changed_paths: list[str], initialize: bool) -> dict[str, Any]:
        """Write the changed files, initialise the repository, start the timer; roll back on failure."""
        touched = Touched()
        result: dict[str, Any] = {"initialized": False, "restarted": False}
        try:
            touched.makedirs(self._host(CONF_DIR), mode=0o700)
            os.chmod(self._host(CONF_DIR), 0o700)
            # The job's dsync runs as each mail user: the staging tree must be traversable.
            touched.makedirs(self._host(self.settings["staging_dir"]), mode=0o711)
            for path in changed_paths:
                content, mode = self.wanted[path]
                real = self._host(path)
                touched.makedirs(os.path.dirname(real))
                write_atomically(self._atomic_move, real, content, f".{os.path.basename(path)}.", touched=touched)
                set_owner_mode(real, mode, *((0, 0) if self.root == "/" else (-1, -1)))
        except OSError as exc:
            touched.restore()
            raise BackupConfigError(f"writing the backup files failed: {exc}; nothing was kept") from exc
        try:
            if initialize:
                location = self.settings["repository"]["location"]
                if self.settings["repository"]["kind"] == "local":
                    touched.makedirs(self._host(location), mode=0o700)
                rc, out, err = self._restic_run(["init"], location, self.settings["password"])
                # Another host of the play may have made it a moment ago (hosts sharing a repository).
                if rc != 0 and self.repository_state() == "present":
                    rc = 0
                elif rc == 0:
                    result["initialized"] = True
                if rc != 0:
                    raise HealthCheckError(
                        f"restic init {_shown(location)} failed (rc={rc}): {_scrub((err or out).strip(), self.settings)[-500:]}"
                    )
            if any(path.startswith(UNIT_DIR + "/") for path in changed_paths):
                self._systemctl("daemon-reload")
            actions = ensure_service(self.run, self._get_bin_path, TIMER)
            if not actions and os.path.join(UNIT_DIR, TIMER) in changed_paths:
                self._systemctl("restart", TIMER)
            result["restarted"] = bool(actions) or os.path.join(UNIT_DIR, TIMER) in changed_paths
            if self.health_check:
                self._systemctl("is-active", "--quiet", TIMER)
                if self.repository_state() != "present":
                    raise HealthCheckError("the repository does not open with the installed files")
        except (HealthCheckError, ServiceStateError, BackupConfigError) as exc:
            errors = touched.restore()
            rollback = "the previous files were restored"
            if errors:
                rollback += f" (but restoring failed: {'; '.join(errors)})"
            try:
                self._systemctl("daemon-reload")
            except HealthCheckError as again:
                rollback += f", but {again}"
            raise BackupConfigError(f"health check failed: {exc}; {rollback}", rolled_back=True) from exc
        return result

    def _remove(self) -> dict[str, Any]:
        """state=absent: the timer stopped and disabled, the role's files removed (the repository is kept)."""
        present = [path for path in self.wanted if os.path.lexists(self._host(path))]
        result: dict[str, Any] = {
            "changed": bool(present),
            "paths": present,
            "initialized": False,
            "restarted": False,
            "diff": {"before": "".join(f"{p}\n" for p in present), "after": ""},
            "warnings": list(self.warnings),
        }
        if self.check_mode or not present:
            return result
        systemctl = self._get_bin_path("systemctl")
        if systemctl and os.path.lexists(self._host(os.path.join(UNIT_DIR, TIMER))):
            self.run([systemctl, "disable", "--now", TIMER])
        for path in present:
            os.unlink(self._host(path))
        if systemctl:
            self.run([systemctl, "daemon-reload"])
        return result


def _shown(location: str) -> str:
    """A repository location without the password a REST URL may hold."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", location)


def _scrub(text: str, settings: Mapping[str, Any]) -> str:
    """restic's message without the password or the REST URL's credentials."""
    text = text.replace(settings["password"], "***")
    location = settings["repository"]["location"]
    return text.replace(location, _shown(location))


# The file list for state=absent (the paths do not depend on the settings' values).
_PLACEHOLDER: dict[str, Any] = {
    "repository": {"kind": "local", "location": "/", "path": "/"},
    "password": "",
    "keep_daily": 0,
    "keep_weekly": 0,
    "keep_monthly": 0,
    "schedule": "daily",
    "randomized_delay": 0,
    "mail": False,
    "queue": False,
    "staging_dir": "/",
    "paths": [],
    "restore_paths": [],
}

__all__ = ["SERVICE", "BackupConfig", "BackupConfigError"]
