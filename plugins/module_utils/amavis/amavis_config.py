# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""amavisd-new with ClamAV and SpamAssassin: apply the files safely (the amavis_config module's backend).

The settings are validated by :mod:`amavis_settings` and the files rendered by :mod:`amavis_render`
(amavis's own Perl file, the ClamAV directives and systemd drop-ins, the Postfix fragment).
The ``AmavisConfig`` backend of the amavis_config module then:

1. checks the candidates with the daemons' own checkers (``amavisd test-config`` on the whole
   ``conf.d`` chain with the candidate in place, ``clamconf`` on a copy of /etc/clamav);
2. writes the files atomically, puts ``clamav`` in the ``amavis`` group and sets the systemd
   units (freshclam masked when signatures come from files, or started when they come from a
   mirror);
3. waits for the ClamAV database (naming the files it waits for), (re)starts clamd and amavis
   as needed, and checks health: clamd answers PING, amavis greets 220 on 127.0.0.1:10024, and
   neither logged an error; otherwise every file, the group and the units come back as they
   were and the daemons are restarted.

As in the other configuration backends, every side effect is an injected callable, so each
failure path is unit tested without a host.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis.amavis_render import (
    database_files,
    dropin_text,
    render_amavis_conf,
    set_directives,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis.amavis_settings import (
    ALL_UNITS,
    AMAVIS_UNIT,
    BAD_PREFIXES,
    CLAMD_SOCKET_UNIT,
    CLAMD_UNIT,
    CLAMD_UNITS,
    DEBIAN_CONF_DIR,
    DEFAULT_CLAMD_CONF,
    DEFAULT_CLAMD_SOCKET,
    DEFAULT_CONF,
    DEFAULT_DATABASE_DIR,
    DEFAULT_FRESHCLAM_CONF,
    DEFAULT_SYSTEMD_DIR,
    DROPIN_NAME,
    FRESHCLAM_UNIT,
    FRESHCLAM_UNITS,
    LISTEN_HOST,
    LISTEN_PORT,
    MANIFEST,
    NAME_RE,
    AmavisError,
    check_settings,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.call_record import Footprint
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import guard
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import (
    read_text,
    replace_keeping_mode,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import (
    HealthCheckError,
    ServiceBackend,
    smtp_probe,
)

# -- probes ------------------------------------------------------------------------


def clamd_ping(path: str, timeout: float) -> str:
    """Send PING to clamd's socket; return its answer, which must be PONG."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(b"zPING\0")
        data = b""
        while not data.endswith(b"\0"):
            chunk = sock.recv(64)
            if not chunk:
                break
            data += chunk
    answer = data.rstrip(b"\0").decode("utf-8", "replace").strip()
    if answer != "PONG":
        raise HealthCheckError(f"clamd at {path} answered PING with {answer!r}, expected PONG")
    return answer


def group_members(group: str) -> list[str] | None:
    """The supplementary members of *group*, or None when there is no such group."""
    try:
        return list(grp.getgrnam(group).gr_mem)
    except KeyError:
        return None


def parse_units(output: str) -> dict[str, dict[str, str]]:
    """``systemctl show -p Id,LoadState,UnitFileState,ActiveState UNIT...`` output: {unit: properties}."""
    units: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n\s*\n", output.strip()):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            units[props["Id"]] = props
    return units


class UnitState:
    """What matters of a unit: whether it exists, is masked, enabled (None: cannot be) and active."""

    def __init__(self, props: Mapping[str, str]) -> None:
        load = props.get("LoadState", "not-found")
        file_state = props.get("UnitFileState", "")
        self.exists = load not in ("not-found", "")
        self.masked = load == "masked" or file_state.startswith("masked")
        self.enabled: bool | None = (
            True if file_state in ("enabled", "enabled-runtime") else False if file_state == "disabled" else None
        )
        self.active = props.get("ActiveState", "inactive") in ("active", "activating", "reloading")


# -- backend -----------------------------------------------------------------------


class AmavisConfig(ServiceBackend):
    """Check, write and apply amavis's and ClamAV's configuration, then health-check; roll back on failure."""

    # The result of a call that changed nothing (see config_module.unchanged_result).
    UNCHANGED: ClassVar[dict[str, Any]] = {"files": [], "units": {}, "group_changed": False, "services": []}

    def __init__(
        self,
        *,
        state: str = "present",
        settings: Mapping[str, Any] | None = None,
        conf_path: str = DEFAULT_CONF,
        debian_conf_dir: str = DEBIAN_CONF_DIR,
        clamd_conf: str = DEFAULT_CLAMD_CONF,
        freshclam_conf: str = DEFAULT_FRESHCLAM_CONF,
        database_dir: str = DEFAULT_DATABASE_DIR,
        clamd_socket: str = DEFAULT_CLAMD_SOCKET,
        systemd_dir: str = DEFAULT_SYSTEMD_DIR,
        smtp: Callable[[str, int, float], str] = smtp_probe,
        ping: Callable[[str, float], str] = clamd_ping,
        members: Callable[[str], list[str] | None] = group_members,
        chown: Callable[[str, str, str], Any] | None = None,
        **common: Any,
    ) -> None:
        if state not in ("present", "absent"):
            raise AmavisError(f"state must be present or absent, got {state!r}")
        self.state = state
        self.settings: dict[str, Any] = {}
        if state == "present":
            try:
                self.settings = check_settings(settings or {}, "settings.")
            except AmavisError as exc:
                raise AmavisError(f"{exc.msg}; nothing was changed") from None
            for index, entry in enumerate(self.settings["clamav_signature_files"]):
                if "content" not in entry:
                    raise AmavisError(
                        f"settings.clamav_signature_files[{index}]: read {entry['src']} on the controller and give "
                        "its content; nothing was changed"
                    )
            if not self.settings["enabled"]:
                self.state = "absent"
        self.clamav = self.state == "present" and self.settings["clamav_enabled"]
        self.freshclam = self.clamav and self.settings["signatures"] in ("freshclam", "mirror")
        self.conf_path = conf_path
        self.debian_conf_dir = debian_conf_dir
        self.clamd_conf = clamd_conf
        self.freshclam_conf = freshclam_conf
        self.database_dir = database_dir
        self.clamd_socket = clamd_socket
        self.systemd_dir = systemd_dir
        self._keep(**{"health_host": LISTEN_HOST, "health_port": LISTEN_PORT, "health_timeout": 120, **common})
        self._smtp = smtp
        self._ping = ping
        self._members = members
        self._chown = chown or shutil.chown

    # -- helpers -------------------------------------------------------------

    def _bin(self, name: str) -> str | None:
        return self._get_bin_path(name)

    def dropin_paths(self) -> list[str]:
        return [os.path.join(self.systemd_dir, f"{unit}.d", DROPIN_NAME) for unit in CLAMD_UNITS]

    @property
    def manifest(self) -> str:
        return os.path.join(self.database_dir, MANIFEST)

    def signature_condition(self) -> str:
        """The file clamd's units wait for when the database comes from signature files."""
        return os.path.join(self.database_dir, self.settings["clamav_signature_files"][0]["name"])

    # -- plan --------------------------------------------------------------------

    def desired_files(self) -> dict[str, str | None]:
        """{path: text, or None to remove} for every file this run manages."""
        files: dict[str, str | None] = {}
        if self.state == "absent":
            files[self.conf_path] = None
            for path in self.dropin_paths():
                files[path] = None
            return files
        files[self.conf_path] = render_amavis_conf(self.settings, self.clamd_socket)
        if not self.clamav:
            return files
        clamd = read_text(self.clamd_conf)
        if clamd is None:
            self._missing(self.clamd_conf, "clamav-daemon")
        else:
            reload = "yes" if self.settings["clamav_concurrent_database_reload"] else "no"
            files[self.clamd_conf] = set_directives(clamd, {"ConcurrentDatabaseReload": [reload]})
        files_mode = self.settings["signatures"] == "files"
        freshclam = read_text(self.freshclam_conf)
        if freshclam is None:
            if not files_mode:
                self._missing(self.freshclam_conf, "clamav-freshclam")
        elif not files_mode:
            mirror = [self.settings["freshclam_mirror"]] if self.settings["signatures"] == "mirror" else None
            files[self.freshclam_conf] = set_directives(freshclam, {"PrivateMirror": mirror})
        for path in self.dropin_paths():
            files[path] = dropin_text(self.signature_condition()) if files_mode else None
        wanted = {entry["name"]: entry["content"] for entry in self.settings["clamav_signature_files"]}
        for name in self._previous_signatures():
            if name not in wanted:
                files[os.path.join(self.database_dir, name)] = None
        for name, content in wanted.items():
            files[os.path.join(self.database_dir, name)] = content
        files[self.manifest] = "".join(f"{name}\n" for name in wanted) if wanted else None
        return files

    def _missing(self, path: str, package: str) -> None:
        if self.check_mode:
            self.warnings.append(f"{path} does not exist (check mode before {package} is installed)")
            return
        raise AmavisError(f"{path} does not exist; is {package} installed? Nothing was changed")

    def _previous_signatures(self) -> list[str]:
        """Names this module wrote last time (its manifest), so that files taken off the list are removed."""
        text = read_text(self.manifest) or ""
        return [name for name in text.split() if NAME_RE.match(name)]

    def file_changes(self) -> dict[str, tuple[str | None, str | None]]:
        changes = {}
        for path, text in self.desired_files().items():
            before = read_text(path)
            if before != text:
                changes[path] = (before, text)
        return changes

    def unit_states(self) -> dict[str, UnitState]:
        systemctl = self._bin("systemctl")
        if not systemctl:
            raise AmavisError("systemctl was not found; amavis_config manages systemd hosts only")
        rc, out, err = self.run(
            [systemctl, "show", "--property=Id,LoadState,UnitFileState,ActiveState", "--", *ALL_UNITS]
        )
        if rc != 0:
            raise AmavisError(f"systemctl show failed (rc={rc}): {err.strip()}")
        found = parse_units(out)
        return {unit: UnitState(found.get(unit, {})) for unit in ALL_UNITS}

    def desired_units(self) -> dict[str, dict[str, bool]]:
        """{unit: {masked/enabled/active: wanted}}; a key that is absent is left alone."""
        desired: dict[str, dict[str, bool]] = {}
        if self.state == "absent":
            for unit in ALL_UNITS:
                desired[unit] = {"enabled": False, "active": False}
            return desired
        desired[AMAVIS_UNIT] = {"masked": False, "enabled": True, "active": True}
        if not self.clamav:
            for unit in CLAMD_UNITS:
                desired[unit] = {"enabled": False, "active": False}
            for unit in FRESHCLAM_UNITS:
                desired[unit] = {"enabled": False, "active": False}
            return desired
        for unit in CLAMD_UNITS:
            desired[unit] = {"masked": False, "enabled": True, "active": True}
        if self.freshclam:
            desired[FRESHCLAM_UNIT] = {"masked": False, "enabled": True, "active": True}
            for unit in FRESHCLAM_UNITS[1:]:
                desired[unit] = {"masked": False}
        else:
            for unit in FRESHCLAM_UNITS:
                desired[unit] = {"masked": True, "active": False}
        return desired

    def unit_changes(self, states: Mapping[str, UnitState]) -> dict[str, dict[str, bool]]:
        """{unit: {property: wanted}} for what differs; units that do not exist are skipped unless required."""
        changes: dict[str, dict[str, bool]] = {}
        for unit, wanted in self.desired_units().items():
            now = states[unit]
            if not now.exists:
                if wanted.get("active") and not self.check_mode:
                    package = "amavisd-new" if unit == AMAVIS_UNIT else "clamav-daemon"
                    raise AmavisError(f"{unit} does not exist; is {package} installed? Nothing was changed")
                if not wanted.get("masked"):
                    continue
            diff = {}
            for key, value in wanted.items():
                current = getattr(now, key)
                if key == "enabled" and (current is None or now.masked):
                    continue
                if current != value:
                    diff[key] = value
            if diff:
                changes[unit] = diff
        return changes

    def group_change(self) -> bool:
        """Whether ``clamav`` must be added to the ``amavis`` group (clamd reads amavis's files through it)."""
        if not self.clamav:
            return False
        members = self._members("amavis")
        if members is None:
            if self.check_mode:
                self.warnings.append("the amavis group does not exist yet (check mode before amavisd-new is installed)")
                return True
            raise AmavisError("the group amavis does not exist; is amavisd-new installed? Nothing was changed")
        return "clamav" not in members

    def quarantine_change(self) -> bool:
        path = self.settings.get("quarantine_dir") if self.state == "present" else ""
        if not path:
            return False
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return True
        try:
            owner = _user_id("amavis")
        except KeyError:
            return False
        return st.st_uid != owner or (st.st_mode & 0o777) != 0o750

    # -- check ---------------------------------------------------------------

    def check_candidates(self, changes: Mapping[str, tuple[str | None, str | None]]) -> None:
        """amavis's own configuration load (``amavisd test-config``) and ``clamconf`` on the candidates."""
        if self.conf_path in changes and changes[self.conf_path][1] is not None:
            self.check_amavis(changes[self.conf_path][1] or "")
        clamav_confs = {
            path: text for path, (_b, text) in changes.items() if path in (self.clamd_conf, self.freshclam_conf)
        }
        if clamav_confs:
            self.check_clamav(clamav_confs)

    def _conf_chain(self, directory: str) -> list[str]:
        run_parts = self._bin("run-parts")
        if not run_parts:
            raise AmavisError("run-parts was not found (debianutils)")
        if not os.path.isdir(directory):
            return []
        rc, out, err = self.run([run_parts, "--list", directory])
        if rc != 0:
            raise AmavisError(f"run-parts --list {directory} failed (rc={rc}): {err.strip()}")
        return [line.strip() for line in out.splitlines() if line.strip()]

    def check_amavis(self, text: str) -> None:
        """Load Debian's files and the live conf.d with the candidate in place of ours, as amavisd does."""
        amavisd = self._bin("amavisd") or self._bin("amavisd-new")
        if not amavisd:
            if self.check_mode:
                self.warnings.append("amavisd not found: only the Python validation ran (check mode)")
                return
            raise AmavisError("amavisd was not found; is amavisd-new installed? Nothing was changed")
        # amavisd reads its files as the amavis user, so the candidate sits next to conf.d (root's own
        # temporary directory may be closed to it), outside conf.d (run-parts must not list it).
        workdir = tempfile.mkdtemp(
            prefix=".postmaster-candidate-", dir=os.path.dirname(os.path.dirname(self.conf_path))
        )
        try:
            os.chmod(workdir, 0o755)
            candidate = os.path.join(workdir, os.path.basename(self.conf_path))
            with open(candidate, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(candidate, 0o644)
            chain = [path for path in self._conf_chain(os.path.dirname(self.conf_path)) if path != self.conf_path]
            chain.append(self.conf_path)
            chain.sort(key=lambda path: os.path.basename(path).encode())
            chain = self._conf_chain(self.debian_conf_dir) + [candidate if p == self.conf_path else p for p in chain]
            argv = [amavisd]
            for path in chain:
                argv += ["-c", path]
            rc, out, err = self.run([*argv, "test-config"])
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if rc != 0:
            message = (err or out).strip().replace(candidate, self.conf_path)
            raise AmavisError(
                f"amavisd test-config refused the candidate configuration (rc={rc}); nothing was changed: {message}",
                amavisd_rc=rc,
            )

    def check_clamav(self, texts: Mapping[str, str | None]) -> None:
        """``clamconf -c`` on a copy of the ClamAV configuration directory with the candidates in it."""
        clamconf = self._bin("clamconf")
        if not clamconf:
            if self.check_mode:
                self.warnings.append("clamconf not found: the ClamAV candidates were not checked (check mode)")
                return
            raise AmavisError("clamconf was not found; is clamav-daemon installed? Nothing was changed")
        source = os.path.dirname(self.clamd_conf)
        workdir = tempfile.mkdtemp(prefix="postmaster-clamav-")
        try:
            for name in os.listdir(source):
                if name.endswith(".conf") and os.path.isfile(os.path.join(source, name)):
                    shutil.copy2(os.path.join(source, name), os.path.join(workdir, name))
            for path, text in texts.items():
                with open(os.path.join(workdir, os.path.basename(path)), "w", encoding="utf-8") as handle:
                    handle.write(text or "")
            rc, out, err = self.run([clamconf, "-c", workdir, "-n"])
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        problems = [
            line.strip().replace(workdir, source)
            for line in (out + "\n" + err).splitlines()
            if line.strip().startswith(("ERROR", "Parse error")) or "Unknown option" in line
        ]
        if rc != 0 or problems:
            raise AmavisError(
                "clamconf refused the candidate ClamAV configuration; nothing was changed: "
                + "; ".join(problems or [err.strip() or f"rc={rc}"]),
                clamconf_rc=rc,
            )

    # -- apply ---------------------------------------------------------------

    def _put(self, path: str, text: str | None, touched: Touched) -> None:
        """Write or remove *path*; *touched* remembers it (and each directory created for it) for a rollback."""
        if text is None:
            touched.remember(path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        touched.makedirs(os.path.dirname(path), mode=0o755)
        replace_keeping_mode(self._atomic_move, path, text, touched=touched)

    def _set_group(self, member: bool) -> None:
        if member:
            argv = [self._bin("usermod") or "usermod", "-a", "-G", "amavis", "clamav"]
        else:
            argv = [self._bin("gpasswd") or "gpasswd", "-d", "clamav", "amavis"]
        rc, out, err = self.run(argv)
        if rc != 0:
            raise HealthCheckError(f"{' '.join(argv)} failed (rc={rc}): {(err or out).strip()}")

    def check_host_paths(self) -> None:
        """Refuse a file or quarantine a local user could have prepared (a symlink, a foreign or writable tree)."""
        guard(AmavisError, self.conf_path, "conf_path", kind="file")
        quarantine = self.settings.get("quarantine_dir") if self.state == "present" else ""
        if quarantine:
            try:
                owners: tuple[int, ...] = (pwd.getpwnam("amavis").pw_uid,)
            except KeyError:
                owners = ()
            guard(AmavisError, quarantine, "settings.quarantine_dir", owners=owners)

    def _ensure_quarantine(self, touched: Touched) -> None:
        path = self.settings["quarantine_dir"]
        touched.makedirs(path, mode=0o750)
        self._chown(path, "amavis", "amavis")
        os.chmod(path, 0o750)

    def _apply_units(self, changes: Mapping[str, Mapping[str, bool]]) -> None:
        """Stop, unmask, mask, enable and disable as *changes* say, one systemctl call per verb.

        Starting is left to start_services, which knows the order (database, clamd, amavis).
        """
        by_verb: dict[str, list[str]] = {"stop": [], "unmask": [], "mask": [], "enable": [], "disable": []}
        for unit, wanted in changes.items():
            if wanted.get("active") is False or wanted.get("masked") is True:
                by_verb["stop"].append(unit)
            if "masked" in wanted:
                by_verb["mask" if wanted["masked"] else "unmask"].append(unit)
            if "enabled" in wanted:
                by_verb["enable" if wanted["enabled"] else "disable"].append(unit)
        for verb, names in by_verb.items():
            if names:
                self._systemctl(verb, "--", *names)

    def wait_for_database(self) -> None:
        """In the freshclam modes, wait until freshclam has written main and daily; name what is missing."""
        timeout = self.settings["clamav_database_timeout"]
        wanted = database_files(self.database_dir)
        deadline = self._clock() + timeout
        while True:
            missing = [name for name, paths in wanted.items() if not any(os.path.exists(path) for path in paths)]
            if not missing:
                return
            if self._clock() >= deadline:
                break
            self._sleep(2)
        source = (
            f"the private mirror {self.settings['freshclam_mirror']}"
            if self.settings["signatures"] == "mirror"
            else "ClamAV's official mirrors"
        )
        names = " and ".join(f"{self.database_dir}/{name}.cvd (or {name}.cld)" for name in missing)
        raise HealthCheckError(
            f"ClamAV has no database: {names} did not appear within {timeout}s. clamd does not start without it "
            f"(its units' ConditionPathExistsGlob); freshclam could not fetch it from {source}: see "
            "journalctl -u clamav-freshclam. Raise amavis_clamav_database_timeout for a slow first download, or "
            "supply signature files (amavis_signatures: files)"
        )

    def _wait_for_clamd(self, condition: str | None) -> None:
        try:
            self._wait(
                f"clamd did not answer PING on {self.clamd_socket}",
                lambda timeout: self._ping(self.clamd_socket, timeout),
            )
        except HealthCheckError as exc:
            hint = f" (its units start only when {condition} exists)" if condition else ""
            raise HealthCheckError(f"{exc}{hint}") from None

    def _wait_for_amavis(self) -> None:
        self._wait(
            f"amavis did not greet with SMTP 220 on {self.health_host}:{self.health_port}",
            lambda timeout: self._smtp(self.health_host, self.health_port, timeout),
        )

    def _check_journal(self, since: float) -> None:
        self._check_journal_for(
            "amavis or clamd logged errors after the restart", since, ("amavis", "clamd"), BAD_PREFIXES
        )

    def start_services(
        self,
        states: Mapping[str, UnitState],
        files: Mapping[str, tuple[str | None, str | None]],
        group_changed: bool,
    ) -> list[str]:
        """(Re)start what the changes need, in order: freshclam, the database, clamd, amavis. Return what ran."""
        done = []
        if self.state == "absent":
            return done
        if self.freshclam and (self.freshclam_conf in files or not states[FRESHCLAM_UNIT].active):
            self._systemctl("restart", FRESHCLAM_UNIT)
            done.append(f"restarted {FRESHCLAM_UNIT}")
        if self.clamav:
            signatures = any(path.startswith(self.database_dir + os.sep) for path in files)
            restart = self.clamd_conf in files or group_changed or not states[CLAMD_UNIT].active
            condition = None if self.freshclam else self.signature_condition()
            if self.freshclam:
                # Also when clamd keeps running: without main and daily its units would not start again.
                self.wait_for_database()
            if restart:
                self._systemctl("start", CLAMD_SOCKET_UNIT)
                self._systemctl("restart", CLAMD_UNIT)
                done.append(f"restarted {CLAMD_UNIT}")
            elif signatures:
                self._systemctl("reload", CLAMD_UNIT)
                done.append(f"reloaded {CLAMD_UNIT}")
            if (restart or signatures) and self.health_check:
                self._wait_for_clamd(condition)
        if self.conf_path in files or not states[AMAVIS_UNIT].active:
            self._systemctl("restart", AMAVIS_UNIT)
            done.append(f"restarted {AMAVIS_UNIT}")
            if self.health_check:
                self._wait_for_amavis()
        return done

    def rollback(
        self,
        files: Mapping[str, tuple[str | None, str | None]],
        touched: Touched,
        group_changed: bool,
        states: Mapping[str, UnitState],
        units: Mapping[str, Mapping[str, bool]],
    ) -> str:
        """Put back the files, the quarantine directory, the group and the units; restart what ran before.

        Files and the quarantine directory come back with their content, owner, group and mode; what
        the run created is removed. Return a summary.
        """
        problems = touched.restore()
        steps: list[Callable[[], Any]] = []
        if group_changed:
            steps.append(lambda: self._set_group(False))
        if any(state.path.startswith(self.systemd_dir + os.sep) for state in touched.states):
            steps.append(lambda: self._systemctl("daemon-reload"))
        undo = {}
        for unit, wanted in units.items():
            before = states[unit]
            back = {key: getattr(before, key) for key in wanted if key != "active" and getattr(before, key) is not None}
            if back:
                undo[unit] = back
        if undo:
            steps.append(lambda: self._apply_units(undo))
        for unit in (FRESHCLAM_UNIT, *CLAMD_UNITS, *FRESHCLAM_UNITS[1:], AMAVIS_UNIT):
            if unit in (AMAVIS_UNIT, CLAMD_UNIT, FRESHCLAM_UNIT) and states[unit].active:
                steps.append(lambda unit=unit: self._systemctl("restart", unit))
            elif unit in units and units[unit].get("active") and not states[unit].active:
                steps.append(lambda unit=unit: self._systemctl("stop", unit))
        if states[AMAVIS_UNIT].active and self.health_check:
            steps.append(self._wait_for_amavis)
        for step in steps:
            try:
                step()
            except (HealthCheckError, OSError) as exc:
                problems.append(str(exc))
        summary = "the previous files, group membership and units were restored"
        return summary + (f", but: {'; '.join(problems)}" if problems else " and the services restarted")

    def apply(
        self,
        files: Mapping[str, tuple[str | None, str | None]],
        states: Mapping[str, UnitState],
        units: Mapping[str, Mapping[str, bool]],
        group_changed: bool,
        quarantine: bool,
    ) -> dict[str, Any]:
        # Every path written, removed, created, chowned or chmodded, as it was.
        touched = Touched()
        since = self._clock()
        try:
            try:
                for path, (_before, text) in files.items():
                    self._put(path, text, touched)
                if quarantine:
                    self._ensure_quarantine(touched)
            except (OSError, LookupError) as exc:
                raise HealthCheckError(
                    f"writing {getattr(exc, 'filename', None) or 'the configuration'} failed: {exc}"
                ) from exc
            if group_changed:
                self._set_group(True)
            if any(path.startswith(self.systemd_dir + os.sep) for path in files):
                self._systemctl("daemon-reload")
            self._apply_units(units)
            done = self.start_services(states, files, group_changed)
            if self.health_check and done:
                self._sleep(1)  # give journald a moment to receive what the restarts logged
                self._check_journal(since)
        except HealthCheckError as exc:
            summary = self.rollback(files, touched, group_changed, states, units)
            raise AmavisError(f"{exc}; {summary}", rolled_back=True) from exc
        return {"services": done}

    # -- entry point -----------------------------------------------------------

    def footprint(self) -> Footprint:
        """What a run without a change compares: the files, the quarantine, clamav's group, every unit."""
        paths = [*self.desired_files(), "group:amavis"]
        if self.state == "present" and self.settings.get("quarantine_dir"):
            paths.append(self.settings["quarantine_dir"])
        return Footprint(paths, ALL_UNITS)

    def execute(self) -> dict[str, Any]:
        """Do everything; return the module result (``diff`` is always filled, the module filters it)."""
        self.check_host_paths()
        states = self.unit_states()
        files = self.file_changes()
        units = self.unit_changes(states)
        group_changed = self.group_change()
        quarantine = self.quarantine_change()
        # A service that should run but does not (stopped by hand, or failed) counts as a change.
        restart_needed = self.state == "present" and (
            not states[AMAVIS_UNIT].active or (self.clamav and not states[CLAMD_UNIT].active)
        )
        changed = bool(files or units or group_changed or quarantine or restart_needed)
        result: dict[str, Any] = {
            "changed": changed,
            "state": self.state,
            "files": sorted(files),
            "units": {unit: dict(wanted) for unit, wanted in units.items()},
            "group_changed": group_changed,
            "services": [],
            "diff": [
                {"before_header": path, "after_header": path, "before": before or "", "after": after or ""}
                for path, (before, after) in files.items()
            ],
        }
        if files:
            self.check_candidates(files)
        if changed and not self.check_mode:
            result.update(self.apply(files, states, units, group_changed, quarantine))
        result["warnings"] = list(self.warnings)
        return result


def _user_id(name: str) -> int:
    return pwd.getpwnam(name).pw_uid
