# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backend of the dovecot_config module: a validated set of Dovecot configuration files.

The files are checked as a whole candidate (a copy of the live configuration directory with
the new files in it, ``doveconf -n``, where any warning is an error), then written atomically,
Dovecot is reloaded (or started), and it must answer on its IMAP or POP3 port without logging an
error. Otherwise the previous files are restored and Dovecot is restarted.

As in postfix_config, every side effect is an injected callable, so that each failure path is
unit tested without a host. Errors are raised as DovecotConfigError; the module turns them into
``fail_json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
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
    HealthCheckError,
    ServiceBackend,
    ServiceStateError,
    ensure_service,
)

#: File names a set may hold: below the configuration directory, no ``..``, no control characters.
_BAD_CHARS = set("\n\r\t\0")


#: What a login process logs when a client's login meets the reload itself: it hands the logged-in
#: client over to the master (imap, pop3, ...), which closed that connection while it re-read its
#: configuration. The client gets EOF and can log in again at once; the configuration is not at
#: fault. Rolling back for it would refuse a good configuration and restart Dovecot, which ends every
#: open session (seen with a client logging in every half second while the role reloaded Dovecot).
RELOAD_RACE = re.compile(
    r"^dovecot: [a-z0-9-]+-login: Error: master\([a-z0-9-]+\): read\(\) failed: Remote closed connection\b"
)


#: The line below the managed header of every Dovecot file the collection's roles write: the Dovecot
#: release whose syntax the file is in (the roles' templates are per release: 2.3 on Debian 12, 2.4
#: on Debian 13).
WRITTEN_FOR = re.compile(r"^# postmaster\.mailserver: written for Dovecot ([0-9]+\.[0-9]+)$", re.MULTILINE)


def written_for(text: str | None) -> str | None:
    """The Dovecot release *text* says it is written for, or None."""
    match = WRITTEN_FOR.search(text or "")
    return match[1] if match else None


class DovecotConfigError(ConfigModuleError):
    """Validation, apply or health check failed."""


def greeting_probe(host: str, port: int, timeout: float) -> str:
    """Connect and return the server greeting, which must be IMAP ``* OK`` or POP3 ``+OK``."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        greeting = sock.makefile("rb").readline(4096).decode("utf-8", "replace").rstrip("\r\n")
    if not greeting.startswith(("* OK", "+OK")):
        raise HealthCheckError(f"greeting from {host}:{port} was {greeting!r}, expected '* OK' or '+OK'")
    return greeting


def check_names(files: Mapping[str, Any]) -> None:
    """Raise DovecotConfigError unless every key is a relative path inside the configuration directory
    and every value is a string (the file's text) or None (remove the file)."""
    if not files:
        raise DovecotConfigError("files: give at least one file")
    for name, text in files.items():
        parts = name.split("/")
        if not name or name.startswith("/") or _BAD_CHARS & set(name) or any(part in ("", ".", "..") for part in parts):
            raise DovecotConfigError(
                f"files: {name!r} must be a relative path below the configuration directory, without '..'"
            )
        if name == "dovecot.conf" and text is None:
            raise DovecotConfigError("files: dovecot.conf cannot be removed")
        if text is not None and not isinstance(text, str):
            raise DovecotConfigError(f"files: the content of {name} must be a string or null")


def file_digests(config_dir: str) -> dict[str, str]:
    """SHA-256 of every regular ``*.conf`` file in *config_dir* and its ``conf.d``, by name relative to it.

    dovecot_config leaves a file alone when its text is the one given, so a role later in the play
    whose files all have these digests would change nothing with its own call.
    """
    digests: dict[str, str] = {}
    for sub in ("", "conf.d"):
        directory = os.path.join(config_dir, sub)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            if not name.endswith(".conf") or os.path.islink(path) or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as handle:
                    digests[os.path.join(sub, name) if sub else name] = hashlib.sha256(handle.read()).hexdigest()
            except OSError:
                continue
    return digests


class DovecotConfig(ServiceBackend):
    """Check, write, reload and health-check a set of Dovecot configuration files."""

    # The result of a call that changed nothing (see config_module.unchanged_result).
    UNCHANGED: ClassVar[dict[str, Any]] = {"files": [], "reloaded": False, "service": []}

    def __init__(
        self,
        *,
        config_dir: str,
        files: Mapping[str, str | None],
        reload: bool = True,
        service: str = "dovecot",
        probe: Callable[[str, int, float], str] = greeting_probe,
        ensure_running: bool = False,
        report_paths: Sequence[str] = (),
        **common: Any,
    ) -> None:
        check_names(files)
        self.report_paths = list(report_paths)
        self.config_dir = config_dir
        self.files = dict(files)
        self._keep(**{"health_port": 143, **common})
        self.reload = reload
        self.service = service
        self._probe = probe
        self.ensure_running = ensure_running
        #: Whether the checked candidate has a passdb; without one Dovecot cannot greet (see health).
        self.has_passdb = True

    # -- helpers -------------------------------------------------------------

    def _bin(self, name: str) -> str:
        path = self._get_bin_path(name)
        if not path:
            raise DovecotConfigError(f"{name} was not found; is Dovecot installed?")
        return path

    def path(self, name: str) -> str:
        return os.path.join(self.config_dir, name)

    # -- plan and candidate ------------------------------------------------------

    def changes(self) -> dict[str, tuple[str | None, str | None]]:
        """Return {name: (text now, new text)} for the files that differ (None: no file).

        Includes of the collection's other roles written for another Dovecot release than this set
        are set aside as well (see :meth:`stale_includes`).
        """
        found = {}
        for name, text in sorted(self.files.items()):
            before = read_text(self.path(name))
            if before != text:
                found[name] = (before, text)
        for name, (before, release) in self.stale_includes().items():
            found[name] = (before, None)
            self.warnings.append(
                f"{self.path(name)} was written for Dovecot {release}, whose syntax this Dovecot refuses: it is set "
                "aside, and the role that owns it writes it again later in the play (the Debian 12 to 13 upgrade)"
            )
        return found

    def stale_includes(self) -> dict[str, tuple[str, str]]:
        """{name: (text, release)} of the files in ``conf.d`` that are not in this set and that a role of the
        collection wrote for another Dovecot release than the one this set is written for.

        After the Debian 12 to 13 upgrade, Dovecot 2.4 refuses the 2.3 syntax of every include until its
        role writes it again: the dovecot role's set (first in the play) could not be checked, nor could
        Dovecot start, while the mailboxes role's include of the old release was there.
        """
        releases = {written_for(text) for text in self.files.values()} - {None}
        if len(releases) != 1:
            return {}
        (release,) = releases
        stale = {}
        directory = self.path("conf.d")
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return {}
        for entry in names:
            name = os.path.join("conf.d", entry)
            path = self.path(name)
            if name in self.files or not entry.endswith(".conf") or os.path.islink(path) or not os.path.isfile(path):
                continue
            text = read_text(path) or ""
            found = written_for(text)
            if found is not None and found != release:
                stale[name] = (text, found)
        return stale

    def check_candidate(self, changes: Mapping[str, tuple[str | None, str | None]]) -> None:
        """Copy the live directory, put the new files in, and run ``doveconf -n`` on the copy.

        Any output on stderr (a warning about an obsolete setting, say) fails the check as well.
        """
        doveconf = self._bin("doveconf")
        if not os.path.isfile(self.path("dovecot.conf")):
            raise DovecotConfigError(f"{self.path('dovecot.conf')} does not exist; is Dovecot installed?")
        workdir = tempfile.mkdtemp(prefix="postmaster-dovecot-")
        try:
            candidate = os.path.join(workdir, "conf")
            shutil.copytree(self.config_dir, candidate, symlinks=True)
            for name, (_before, text) in changes.items():
                target = os.path.join(candidate, name)
                if text is None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(target)
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "w", encoding="utf-8") as handle:
                    handle.write(text)
            rc, out, err = self.run([doveconf, "-c", os.path.join(candidate, "dovecot.conf"), "-n"])
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        message = err.strip().replace(candidate, self.config_dir)
        if rc != 0 or message:
            raise DovecotConfigError(
                f"doveconf refused the candidate configuration (rc={rc}); nothing was changed: {message}",
                doveconf_rc=rc,
            )
        self.has_passdb = any(line.startswith("passdb") for line in out.splitlines())

    # -- apply ---------------------------------------------------------------

    def write_file(self, path: str, text: str, touched: Touched | None = None) -> None:
        """Write *text* to *path* atomically; keep an existing file's mode and owner, else 0644.

        *touched* remembers the file and each directory created for it, for a rollback.
        """
        directory = os.path.dirname(path)
        if touched is None:
            os.makedirs(directory, mode=0o755, exist_ok=True)
        else:
            touched.makedirs(directory, mode=0o755)
        replace_keeping_mode(self._atomic_move, path, text, touched=touched)

    def _put(self, name: str, text: str | None, touched: Touched) -> None:
        path = self.path(name)
        if text is None:
            touched.remember(path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        else:
            self.write_file(path, text, touched)

    def _wait_for_greeting(self) -> str:
        return self._wait(
            f"Dovecot did not answer on {self.health_host}:{self.health_port}",
            lambda timeout: self._probe(self.health_host, self.health_port, timeout),
        )

    def _check_journal(self, since: float) -> None:
        errors = self._logged_errors(since, ("dovecot",))
        raced = [error for error in errors if RELOAD_RACE.match(error)]
        if raced:
            self.warnings.append(
                f"{len(raced)} login(s) met the reload and were closed (the clients can log in again): {raced[0]}"
            )
            errors = [error for error in errors if error not in raced]
        if errors:
            raise HealthCheckError("Dovecot logged errors after the reload:\n" + "\n".join(errors[:20]))

    def health(self, since: float) -> None:
        """Raise HealthCheckError unless Dovecot answers and logged no error since *since*.

        Without any passdb, Dovecot's login processes answer ``* BYE Auth process broken``; that is the
        state between the dovecot role (with system users off) and the role that adds the user database
        (mailboxes). Then the service must run and log no error, and a warning says why logins fail.
        """
        if self.has_passdb:
            self._wait_for_greeting()
        else:
            self._systemctl("is-active", self.service)
            self.warnings.append(
                "the configuration has no passdb yet: Dovecot runs, but logins fail until one is added "
                "(the mailboxes role adds the virtual users' passdb)"
            )
        self._sleep(1)  # give journald a moment to receive what the reload logged
        self._check_journal(since)

    def apply(self, changes: Mapping[str, tuple[str | None, str | None]]) -> dict[str, Any]:
        """Write the changed files, reload and health-check; restore the previous files on failure."""
        # Every path written, removed or created, as it was: content, owner, group and mode.
        touched = Touched()
        try:
            for name, (_before, text) in changes.items():
                self._put(name, text, touched)
        except OSError as exc:
            touched.restore()
            raise DovecotConfigError(f"writing {exc.filename or 'the configuration'} failed: {exc}") from exc
        result: dict[str, Any] = {"reloaded": False}
        if not self.reload:
            return result
        since = self._clock()
        try:
            # Starts Dovecot when it does not run, so a broken set is caught on a first run too.
            self._systemctl("reload-or-restart", self.service)
            result["reloaded"] = True
            # Dovecot 2.4's master rewrites /run/dovecot/config on a reload; a login process that
            # starts in that moment fails with "stat(/run/dovecot/config) failed". Let it settle.
            self._sleep(1)
            if self.health_check:
                self.health(since)
        except HealthCheckError as exc:
            errors = touched.restore()
            rollback = f"the previous files were restored and {self.service} restarted"
            if errors:
                rollback += f" (but restoring failed: {'; '.join(errors)})"
            try:
                self._systemctl("restart", self.service)
                if self.health_check:
                    self._wait_for_greeting()
            except HealthCheckError as again:
                rollback = f"the previous files were restored, but {again}"
            raise DovecotConfigError(f"health check failed: {exc}; {rollback}", rolled_back=True) from exc
        return result

    # -- entry point -----------------------------------------------------------

    def footprint(self) -> Footprint:
        """What a run without a change compares and reports: the whole configuration tree, the probed paths,
        and the service when this call keeps it running."""
        units = [self.service] if self.ensure_running else []
        return Footprint([f"tree:{self.config_dir}", *self.report_paths], units)

    def execute(self) -> dict[str, Any]:
        """Do everything; return the module result (``diff`` is always filled, the module filters it)."""
        guard(DovecotConfigError, self.config_dir, "config_dir")
        for name in sorted(self.files):
            guard(DovecotConfigError, self.path(name), f"files[{name!r}]", kind="file")
        changes = self.changes()
        result: dict[str, Any] = {
            "changed": bool(changes),
            "files": sorted(self.path(name) for name in changes),
            "reloaded": False,
            "diff": [
                {
                    "before_header": self.path(name),
                    "after_header": self.path(name),
                    "before": before or "",
                    "after": after or "",
                }
                for name, (before, after) in changes.items()
            ],
        }
        if changes:
            self.check_candidate(changes)
            if not self.check_mode:
                result.update(self.apply(changes))
        if self.ensure_running:
            result["service"] = self.start_service()
            result["changed"] = result["changed"] or bool(result["service"])
        result["file_digests"] = file_digests(self.config_dir)
        result["exists"] = {path: os.path.exists(path) for path in self.report_paths}
        result["warnings"] = list(self.warnings)
        return result

    def start_service(self) -> list[str]:
        """Enable and start the unit when needed; a Dovecot this started must answer (nothing to roll back)."""
        since = self._clock()
        try:
            actions = ensure_service(self.run, self._get_bin_path, self.service, check_mode=self.check_mode)
        except ServiceStateError as exc:
            raise DovecotConfigError(str(exc)) from exc
        if "started" in actions and not self.check_mode and self.health_check:
            try:
                self._sleep(1)
                self.health(since)
            except HealthCheckError as exc:
                raise DovecotConfigError(f"{self.service} was started but is not healthy: {exc}") from exc
        return actions
