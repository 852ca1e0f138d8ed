# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The system account that owns virtual mailboxes (vmail), and its base directory.

Used by the maildir module before it creates the Maildirs, so that the mailboxes role gives the
account, the base directory and every Maildir in one host call instead of four.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import guard
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched

NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")
# Directories a vmail base must never be: chown and chmod on them would break the system.
SYSTEM_DIRS = frozenset(
    [
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib64",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/var",
        "/var/lib",
        "/var/log",
        "/var/mail",
        "/var/spool",
        "/var/tmp",
        "/usr/local",
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib",
    ]
)


class AccountError(Exception):
    """A bad account option, or a failed groupadd/useradd/usermod."""


def check_account(account: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the account option; return it normalised. Errors name the option."""
    checked: dict[str, Any] = {}
    for key in ("user", "group"):
        value = account.get(key)
        if not isinstance(value, str) or not NAME_RE.match(value) or value == "root":
            raise AccountError(f"account.{key}: {value!r} must be a login name other than root")
        checked[key] = value
    for key in ("uid", "gid"):
        value = account.get(key)
        if isinstance(value, bool) or not str(value).isdigit() or not 100 <= int(value) <= 2**31 - 2:
            raise AccountError(f"account.{key}: {value!r} must be a number between 100 and {2**31 - 2}")
        checked[key] = int(value)
    home = account.get("home")
    if not isinstance(home, str) or not home.startswith("/") or home != os.path.normpath(home):
        raise AccountError(f"account.home: {home!r} must be an absolute, normalised path")
    if home in SYSTEM_DIRS:
        raise AccountError(
            f"account.home: {home} is a system directory; use a directory of its own, such as /var/mail/vmail"
        )
    if any(c in home for c in "\n\r\0:"):
        raise AccountError(f"account.home: {home!r} contains a newline, NUL or ':'")
    checked["home"] = home
    shell = account.get("shell") or "/usr/sbin/nologin"
    if not isinstance(shell, str) or not shell.startswith("/") or any(c in shell for c in "\n\r\0: "):
        raise AccountError(f"account.shell: {shell!r} must be an absolute path")
    checked["shell"] = shell
    mode = account.get("home_mode", "0750")
    try:
        checked["home_mode"] = int(str(mode), 8)
    except ValueError:
        raise AccountError(f"account.home_mode: {mode!r} is not an octal mode") from None
    if checked["home_mode"] & 0o002:
        raise AccountError(f"account.home_mode: {mode} would let every user write to the mailboxes")
    return checked


class VmailAccount:
    """Ensure the group, the user and the home directory; record what changed."""

    def __init__(
        self,
        run_command: Callable[..., Any],
        get_bin_path: Callable[[str], str | None],
        *,
        check_mode: bool = False,
        getgrnam: Callable[[str], Any] = grp.getgrnam,
        getpwnam: Callable[[str], Any] = pwd.getpwnam,
    ) -> None:
        self._run = run_command
        self._bin = get_bin_path
        self.check_mode = check_mode
        self._getgrnam = getgrnam
        self._getpwnam = getpwnam
        self.changes: list[str] = []

    def _do(self, description: str, argv: Sequence[str]) -> None:
        self.changes.append(description)
        if self.check_mode:
            return
        binary = self._bin(argv[0])
        if not binary:
            raise AccountError(f"{argv[0]} was not found (package passwd)")
        rc, out, err = self._run([binary, *argv[1:]])
        if rc != 0:
            raise AccountError(f"{' '.join(argv)} failed (rc={rc}): {(err or out).strip()}")

    def ensure(self, account: Mapping[str, Any]) -> list[str]:
        a = check_account(account)
        # Before the account is created or changed: no symlink, foreign owner or writable tree on the way.
        guard(AccountError, a["home"], "account.home", owners=(a["uid"],))
        try:
            group = self._getgrnam(a["group"])
        except KeyError:
            group = None
        if group is None:
            self._do(f"group {a['group']} created", ["groupadd", "--system", "--gid", str(a["gid"]), a["group"]])
        elif group.gr_gid != a["gid"]:
            self._do(
                f"group {a['group']} gid {group.gr_gid} -> {a['gid']}", ["groupmod", "--gid", str(a["gid"]), a["group"]]
            )
        try:
            user = self._getpwnam(a["user"])
        except KeyError:
            user = None
        if user is None:
            self._do(
                f"user {a['user']} created",
                [
                    "useradd",
                    "--system",
                    "--uid",
                    str(a["uid"]),
                    "--gid",
                    str(a["gid"]),
                    "--home-dir",
                    a["home"],
                    "--no-create-home",
                    "--shell",
                    a["shell"],
                    a["user"],
                ],
            )
        else:
            flags: list[str] = []
            for flag, now, wanted in (
                ("--uid", user.pw_uid, a["uid"]),
                ("--gid", user.pw_gid, a["gid"]),
                ("--home", user.pw_dir, a["home"]),
                ("--shell", user.pw_shell, a["shell"]),
            ):
                if now != wanted:
                    flags += [flag, str(wanted)]
            if flags:
                self._do(f"user {a['user']} changed ({' '.join(flags[::2])})", ["usermod", *flags, a["user"]])
        self.ensure_home(a)
        return self.changes

    def ensure_home(self, a: Mapping[str, Any]) -> None:
        """The base directory: created, or fixed to the account's owner and mode; never a symlink.

        A failure part-way puts the directory (and any parent created for it) back as it was.
        """
        home = a["home"]
        # Before anything is created, chowned or chmodded: no symlink, foreign owner or writable tree on the way.
        guard(AccountError, home, "account.home", owners=(a["uid"],))
        try:
            st = os.lstat(home)
        except FileNotFoundError:
            self.changes.append(f"{home} created")
            if not self.check_mode:
                touched = Touched()
                touched.remember_dirs(home)
                try:
                    os.makedirs(os.path.dirname(home), mode=0o755, exist_ok=True)
                    os.mkdir(home, a["home_mode"])
                    os.chown(home, a["uid"], a["gid"])
                    os.chmod(home, a["home_mode"])
                except OSError as exc:
                    self._undo(touched, exc)
            return
        if not stat.S_ISDIR(st.st_mode):
            raise AccountError(f"account.home: {home} exists and is not a directory (symlinks are not followed)")
        if (st.st_uid, st.st_gid) != (a["uid"], a["gid"]) or stat.S_IMODE(st.st_mode) != a["home_mode"]:
            self.changes.append(f"{home} owner/mode fixed")
            if not self.check_mode:
                touched = Touched()
                touched.remember(home)
                try:
                    fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
                    try:
                        os.fchown(fd, a["uid"], a["gid"])
                        os.fchmod(fd, a["home_mode"])
                    finally:
                        os.close(fd)
                except OSError as exc:
                    self._undo(touched, exc)

    @staticmethod
    def _undo(touched: Touched, exc: OSError) -> None:
        errors = touched.restore()
        restored = f"restoring failed: {'; '.join(errors)}" if errors else "it was restored as it was"
        raise AccountError(f"account.home: {exc}; {restored}") from exc
