# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The backend of the saslauthd_config module: saslauthd's files, socket, link and group, applied safely.

One call: the settings are checked in Python; a changed ``/etc/default/saslauthd`` is sourced by
``/bin/sh`` from a private candidate and must set exactly the values meant, and the mechanism must be
one that ``saslauthd -v`` lists; then the files are swapped in atomically, the socket directory, the
link and the postfix user's ``sasl`` group are put right, saslauthd is restarted (Postfix reloaded
when its SASL application file or group changed) and must answer on its socket, with no error in
its journal. On failure every path comes back as it was, the group too, and saslauthd is restarted.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Mapping
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
    restart_postfix,
    run_checked,
    smtp_probe,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.saslauthd.saslauthd_settings import (
    LINK,
    SOURCED,
    SaslauthdSettingsError,
    check_config,
    expected_values,
    render_defaults,
    render_smtpd_conf,
    render_tmpfiles,
)

SERVICE = "saslauthd"
GROUP = "sasl"
POSTFIX_USER = "postfix"
DEFAULTS_FILE = "/etc/default/saslauthd"
TMPFILES_FILE = "/etc/tmpfiles.d/postmaster-saslauthd.conf"
#: Prints the values a shell reads from the candidate, one a line (the candidate is $1, never in the script).
SOURCE_SCRIPT = '. "$1" && printf "%s\\n" ' + " ".join(f'"${name}"' for name in SOURCED)


class SaslauthdConfigError(ConfigModuleError):
    """Validation, the candidate check, the swap or the health check failed."""


def socket_probe(path: str, timeout: float) -> str:
    """Connect to saslauthd's socket: a live saslauthd accepts; a stale socket is refused. Sends no credentials."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
    return f"{path} accepted a connection"


def group_members(group: str) -> list[str] | None:
    """The members of *group* (None when it does not exist)."""
    try:
        return list(grp.getgrnam(group).gr_mem)
    except KeyError:
        return None


def group_id(group: str) -> int | None:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def _primary_group(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_gid
    except KeyError:
        return None


class SaslauthdConfig(ServiceBackend):
    """Check, write, restart and health-check saslauthd; roll back on failure."""

    # The result of a call that changed nothing (see config_module.unchanged_result).
    UNCHANGED: ClassVar[dict[str, Any]] = {
        "files": [],
        "actions": [],
        "restarted": False,
        "postfix_reloaded": False,
        "answer": None,
    }

    def __init__(
        self,
        *,
        settings: Mapping[str, Any],
        postfix_config_dir: str = "/etc/postfix",
        defaults_file: str = DEFAULTS_FILE,
        tmpfiles_file: str = TMPFILES_FILE,
        link: str = LINK,
        reload_postfix: bool = True,
        probe: Callable[[str, float], str] = socket_probe,
        smtp: Callable[[str, int, float], str] = smtp_probe,
        members: Callable[[str], list[str] | None] = group_members,
        gid: Callable[[str], int | None] = group_id,
        primary_gid: Callable[[str], int | None] = _primary_group,
        chown: Callable[[str, int, int], Any] = os.chown,
        owner_uid: int = 0,
        **common: Any,
    ) -> None:
        try:
            self.settings = check_config(settings)
        except SaslauthdSettingsError as exc:
            raise SaslauthdConfigError(f"{exc} Nothing was changed.") from None
        self._keep(**{"health_port": 25, **common})
        self.socket_dir = self.settings["socket_dir"]
        self.link = link
        self.defaults_file = defaults_file
        self.tmpfiles_file = tmpfiles_file
        self.smtpd_conf = os.path.join(postfix_config_dir, "sasl", "smtpd.conf")
        self.reload_postfix = reload_postfix
        self._probe = probe
        self._smtp = smtp
        self._members = members
        self._gid = gid
        self._primary_gid = primary_gid
        self._chown = chown
        self._owner_uid = owner_uid
        self.texts = {
            self.defaults_file: render_defaults(self.settings),
            self.tmpfiles_file: render_tmpfiles(self.settings),
            self.smtpd_conf: render_smtpd_conf(self.settings),
        }

    # -- what differs ------------------------------------------------------------

    def footprint(self) -> Footprint:
        """What a run without a change compares: the files, the socket directory and its link, the sasl
        group's members, the postfix account (its primary group counts) and the service."""
        paths = [*self.texts, self.socket_dir, self.link, f"group:{GROUP}", f"user:{POSTFIX_USER}"]
        return Footprint(paths, [SERVICE])

    def file_changes(self) -> dict[str, tuple[str | None, str]]:
        changes = {}
        for path, text in self.texts.items():
            before = read_text(path)
            if before != text:
                changes[path] = (before, text)
        return changes

    def socket_dir_changes(self) -> list[str]:
        """What differs at the socket directory: missing, or not root:sasl 0710."""
        try:
            st = os.lstat(self.socket_dir)
        except FileNotFoundError:
            return [f"create {self.socket_dir} (root:{GROUP} 0710)"]
        if not stat.S_ISDIR(st.st_mode):
            raise SaslauthdConfigError(f"settings.socket_dir: {self.socket_dir} exists and is not a directory")
        if (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) != (self._owner_uid, self._gid(GROUP), 0o710):
            return [f"set {self.socket_dir} to root:{GROUP} 0710"]
        return []

    def link_changes(self) -> list[str]:
        try:
            if os.readlink(self.link) == self.socket_dir:
                return []
        except OSError:
            pass
        return [f"link {self.link} to {self.socket_dir}"]

    def group_change(self) -> bool:
        """Whether the postfix user must join the sasl group (its primary group counts)."""
        members = self._members(GROUP)
        if members is None:
            return False  # the sasl group comes with sasl2-bin; check_host reports it missing
        return POSTFIX_USER not in members and self._primary_gid(POSTFIX_USER) != self._gid(GROUP)

    # -- check ---------------------------------------------------------------------

    def check_host(self) -> None:
        """Refuse paths a local user could have prepared, and a host without saslauthd's group."""
        guard(SaslauthdConfigError, self.defaults_file, "defaults_file", kind="file")
        guard(SaslauthdConfigError, self.tmpfiles_file, "tmpfiles_file", kind="file")
        guard(SaslauthdConfigError, self.smtpd_conf, "postfix_config_dir", kind="file")
        if self._gid(GROUP) is None and not self.check_mode:
            raise SaslauthdConfigError(f"the {GROUP} group does not exist: is sasl2-bin installed? Nothing was changed")

    def check_candidate(self) -> None:
        """Source the candidate defaults file with /bin/sh and ask ``saslauthd -v`` for the mechanism."""
        saslauthd = self._get_bin_path("saslauthd")
        if saslauthd is None:
            if self.check_mode:
                self.warnings.append("saslauthd is not installed: only the Python validation ran (check mode)")
                return
            raise SaslauthdConfigError("saslauthd was not found: is sasl2-bin installed? Nothing was changed")
        _rc, out, err = self.run([saslauthd, "-v"])
        offered = []
        for line in (out + "\n" + err).splitlines():
            if line.strip().lower().startswith("authentication mechanisms:"):
                offered = line.split(":", 1)[1].split()
        mechanism = self.settings["mechanisms"]
        if mechanism not in offered:
            raise SaslauthdConfigError(
                f"settings.mechanisms: saslauthd on this host does not offer {mechanism!r} "
                f"(saslauthd -v lists: {' '.join(offered) or 'nothing'}); nothing was changed"
            )
        shell = self._get_bin_path("sh") or "/bin/sh"
        workdir = tempfile.mkdtemp(prefix="postmaster-saslauthd-")
        try:
            candidate = os.path.join(workdir, "saslauthd")
            with open(candidate, "w", encoding="utf-8") as handle:
                handle.write(self.texts[self.defaults_file])
            rc, out, err = self.run([shell, "-c", SOURCE_SCRIPT, "sh", candidate])
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        expected = expected_values(self.settings)
        if rc != 0 or out.split("\n")[: len(expected)] != expected:
            raise SaslauthdConfigError(
                f"/bin/sh read the candidate {self.defaults_file} as {out.splitlines()!r} (rc={rc}, {err.strip()}), "
                f"not {expected!r}; nothing was changed",
                checker_rc=rc,
            )

    # -- apply ---------------------------------------------------------------------

    def _make_socket_dir(self, touched: Touched) -> None:
        touched.makedirs(self.socket_dir, mode=0o710)
        touched.remember(self.socket_dir)
        gid = self._gid(GROUP)
        self._chown(self.socket_dir, self._owner_uid, -1 if gid is None else gid)
        os.chmod(self.socket_dir, 0o710)

    def _make_link(self, touched: Touched) -> None:
        touched.remember(self.link)
        temporary = f"{self.link}.postmaster-new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        os.symlink(self.socket_dir, temporary)
        current = _lstat(self.link)
        if current is not None and stat.S_ISDIR(current.st_mode):
            os.rmdir(self.link)  # an empty directory saslauthd's package made; a full one fails here
        os.replace(temporary, self.link)

    def _set_group(self, member: bool) -> None:
        if member:
            argv = [self._get_bin_path("usermod") or "usermod", "-a", "-G", GROUP, POSTFIX_USER]
        else:
            argv = [self._get_bin_path("gpasswd") or "gpasswd", "-d", POSTFIX_USER, GROUP]
        run_checked(self.run, argv)

    def _postfix(self) -> str | None:
        """The postfix command when Postfix runs (its SASL side then needs a reload), else None."""
        postfix = self._get_bin_path("postfix")
        if postfix and self.run([postfix, "status"])[0] == 0:
            return postfix
        return None

    def health(self, since: float, postfix: str | None) -> str:
        """Raise HealthCheckError unless saslauthd answers on its socket (and smtpd, after a reload), error-free."""
        mux = os.path.join(self.socket_dir, "mux")
        answer = self._wait(f"saslauthd did not answer on {mux}", lambda timeout: self._probe(mux, timeout))
        if postfix:
            self._wait(
                f"smtpd did not greet on {self.health_host}:{self.health_port}",
                lambda timeout: self._smtp(self.health_host, self.health_port, timeout),
            )
        self._sleep(1)  # give journald a moment to receive what the restart logged
        self._check_journal_for("saslauthd logged errors after the restart", since, ("saslauthd",))
        return answer

    def apply(self, files: Mapping[str, tuple[str | None, str]], join_group: bool) -> dict[str, Any]:
        """Swap the files in, make the socket directory, link and group right, restart; roll back on failure."""
        touched = Touched()
        since = self._clock()
        postfix = self._postfix() if self.reload_postfix and (self.smtpd_conf in files or join_group) else None
        joined = False
        try:
            for path, (_before, text) in files.items():
                touched.makedirs(os.path.dirname(path), mode=0o755)
                replace_keeping_mode(self._atomic_move, path, text, touched=touched)
            self._make_socket_dir(touched)
            self._make_link(touched)
            if join_group:
                self._set_group(True)
                joined = True
            self._systemctl("enable", SERVICE)
            self._systemctl("restart", SERVICE)
            if postfix:
                run_checked(self.run, [postfix, "reload"])
            if not self.health_check:
                return {"restarted": True, "postfix_reloaded": bool(postfix)}
            return {"restarted": True, "postfix_reloaded": bool(postfix), "answer": self.health(since, postfix)}
        except (HealthCheckError, OSError) as exc:
            errors = touched.restore()
            try:
                if joined:
                    self._set_group(False)
                self._systemctl("restart", SERVICE)
                if postfix:
                    restart_postfix(self.run, self._get_bin_path, postfix)
                self._systemctl("is-active", SERVICE)
            except HealthCheckError as again:
                errors.append(str(again))
            tail = f"; restoring also failed: {'; '.join(errors)}" if errors else ""
            raise SaslauthdConfigError(
                f"saslauthd failed after the change ({exc}); the previous files were restored and saslauthd "
                f"restarted{tail}",
                rolled_back=True,
            ) from None

    def execute(self) -> dict[str, Any]:
        """Do everything; return the module result (``diff`` is always filled, the module filters it)."""
        self.check_host()
        files = self.file_changes()
        actions = [*self.socket_dir_changes(), *self.link_changes()]
        join_group = self.group_change()
        if join_group:
            actions.append(f"add {POSTFIX_USER} to the {GROUP} group")
        result: dict[str, Any] = {
            "changed": bool(files or actions),
            "files": sorted(files),
            "actions": actions,
            "restarted": False,
            "postfix_reloaded": False,
            "diff": [
                {"before_header": p, "after_header": p, "before": b or "", "after": a} for p, (b, a) in files.items()
            ],
        }
        if self.defaults_file in files:
            self.check_candidate()
        if not result["changed"]:
            try:
                started = ensure_service(self.run, self._get_bin_path, SERVICE, check_mode=self.check_mode)
            except ServiceStateError as exc:
                raise SaslauthdConfigError(str(exc)) from None
            if started:
                result.update(changed=True, actions=[f"{action} {SERVICE}" for action in started])
                if not self.check_mode and self.health_check:
                    try:
                        result["answer"] = self.health(self._clock(), None)
                    except HealthCheckError as exc:
                        raise SaslauthdConfigError(f"saslauthd was started but does not answer: {exc}") from None
        elif not self.check_mode:
            result.update(self.apply(files, join_group))
        result["warnings"] = list(self.warnings)
        return result


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
