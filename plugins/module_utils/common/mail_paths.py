# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the collection may write: one policy for every path it writes, replaces, chowns, chmods or deletes.

Two halves, one owner:

- :func:`confined_path` (and :func:`check_paths` for a role's variables) is the *lexical* policy the
  roles' filters run on the controller before the first host change. Each :data:`PURPOSES` entry
  says which directory the collection owns for that purpose (the Postfix configuration directory,
  the Dovecot passwd-files, the vmail base, the amavis quarantine, the certificate directory, ...).
  Everything else is refused with an error naming the variable: system files (``/etc/shadow``,
  ``/etc/pam.d``), world-writable trees (``/tmp``, ``/var/tmp``, ``/dev/shm``), directories other
  users or daemons own (``/root``, ``/home``, any ``.ssh``, ``/var/spool/postfix/private``).
- :func:`check_host_path` is the *host* check every module runs before it writes: it walks the
  path's existing ancestors with ``lstat`` and refuses a symlink, a component owned by another user,
  or a group- or world-writable directory (a sticky ``/tmp`` included): a tree a local user could
  have prepared. An existing leaf must be of the expected type, owned by root or the expected owner,
  and a regular file must not be hard-linked elsewhere.

Runs on the controller (Python 3.11) and on the hosts (Debian 12 and 13): standard library only.
"""

from __future__ import annotations

import grp
import os
import posixpath
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class PathPolicyError(ValueError):
    """A path outside the directory the collection owns for its purpose, or on a tree it cannot trust."""


#: Characters a path may hold in the files it reaches (main.cf, Dovecot's, amavis's Perl, shell-sourced
#: defaults): no space, quote, '$', '%', ',' or control character.
_PLAIN_RE = re.compile(r"^/[A-Za-z0-9._+@=~/-]*\Z")

#: World-writable trees: anyone may have prepared a name there.
WORLD_WRITABLE_TREES = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock", "/run/shm")
#: Trees of the operating system itself.
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin", "/sys", "/usr")
#: Files and trees below /etc that authenticate users or run commands as root.
SYSTEM_FILES = (
    "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d", "/etc/pam.d",
    "/etc/pam.conf", "/etc/security", "/etc/ssh", "/etc/login.defs", "/etc/crontab", "/etc/cron.d",
    "/etc/cron.daily", "/etc/cron.hourly", "/etc/systemd", "/etc/init.d", "/etc/profile", "/etc/profile.d",
    "/etc/ld.so.preload", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/environment", "/etc/hosts",
    "/etc/resolv.conf", "/etc/fstab", "/etc/subuid", "/etc/subgid", "/etc/nsswitch.conf",
)  # fmt: skip
#: Directories other users or daemons own.
FOREIGN_TREES = (
    "/root", "/home", "/run/user", "/var/spool/postfix/private", "/var/spool/postfix/public",
    "/var/spool/postfix/maildrop", "/var/spool/cron",
)  # fmt: skip
#: Path components that always belong to someone else.
FOREIGN_NAMES = frozenset({".ssh", ".gnupg"})

#: Files of a Postfix configuration directory that are Postfix's own (or ours), never a table.
POSTFIX_RESERVED = frozenset(
    {"main.cf", "master.cf", "dynamicmaps.cf", "postfix-files", "makedefs.out", "main.cf.proto", "master.cf.proto",
     "postmaster.d", "sasl", "postfix-files.d", "dynamicmaps.cf.d"}
)  # fmt: skip
POSTFIX_RESERVED_SUFFIXES = (".db", ".lmdb", ".cdb", ".json", ".postmaster-previous", ".proto", ".cf")
#: Files and directories of a Dovecot configuration directory that are Dovecot's own.
DOVECOT_RESERVED = frozenset({"dovecot.conf", "conf.d", "private", "dh.pem", "README", "dovecot-dict-sql.conf.ext"})
DOVECOT_RESERVED_SUFFIXES = (".conf", ".ext", ".pem", ".key", ".crt", ".sieve", ".postmaster-previous")


@dataclass(frozen=True)
class Purpose:
    """What a path is for, and the directory the collection owns for it."""

    what: str
    kind: str = "dir"
    #: Full-match patterns of the allowed path itself (the configuration directories).
    patterns: tuple[str, ...] = ()
    #: The path may lie strictly below one of these ...
    below: tuple[str, ...] = ()
    #: ... or be one of these, or lie below it.
    at_or_below: tuple[str, ...] = ()
    #: Trees inside the allowed roots that are still refused (Debian's own directories).
    excluded: tuple[str, ...] = ()
    #: A file directly in the directory given as context (the configuration directory).
    direct_in: str = ""
    reserved: frozenset[str] = field(default_factory=frozenset)
    reserved_suffixes: tuple[str, ...] = ()
    #: An empty value means "none" (no quarantine, no user certificate).
    optional: bool = False
    #: Controller files: only the deny lists apply (a file of the admin's own).
    controller: bool = False
    #: How the message names *excluded* when the list is long.
    excluded_text: str = ""

    def allowed(self) -> str:
        parts = [p.replace("\\", "").replace("(-[a-z0-9][a-z0-9_-]*)?", "[-<instance>]") for p in self.patterns]
        parts += [f"a directory below {root}" for root in self.below]
        parts += [f"{root} or below" for root in self.at_or_below]
        text = ", ".join(parts)
        if self.excluded:
            text += f" (not {self.excluded_text or ', '.join(self.excluded)})"
        return text


PURPOSES: dict[str, Purpose] = {
    "postfix_config_dir": Purpose(
        "the Postfix configuration directory", patterns=(r"/etc/postfix(-[a-z0-9][a-z0-9_-]*)?",)
    ),
    "postfix_fragment_dir": Purpose("the Postfix fragment directory", direct_in="postfix_config_dir"),
    "postfix_table": Purpose(
        "a Postfix lookup table",
        kind="file",
        direct_in="postfix_config_dir",
        reserved=POSTFIX_RESERVED,
        reserved_suffixes=POSTFIX_RESERVED_SUFFIXES,
    ),
    "dovecot_config_dir": Purpose(
        "the Dovecot configuration directory", patterns=(r"/etc/dovecot(-[a-z0-9][a-z0-9_-]*)?",)
    ),
    "dovecot_passwd_file": Purpose(
        "a Dovecot passwd-file",
        kind="file",
        direct_in="dovecot_config_dir",
        reserved=DOVECOT_RESERVED,
        reserved_suffixes=DOVECOT_RESERVED_SUFFIXES,
    ),
    "vmail_base": Purpose("the vmail base directory", below=("/var/mail", "/srv"), at_or_below=("/var/vmail",)),
    "amavis_quarantine": Purpose(
        "the amavis quarantine",
        below=("/var/lib/amavis",),
        excluded=("/var/lib/amavis/tmp", "/var/lib/amavis/db", "/var/lib/amavis/.spamassassin"),
        optional=True,
    ),
    "certificate_dir": Purpose(
        "the certificate directory",
        below=("/etc/ssl",),
        at_or_below=("/etc/postmaster",),
        excluded=("/etc/ssl/private", "/etc/ssl/certs"),
    ),
    "saslauthd_socket_dir": Purpose(
        "the saslauthd socket directory",
        below=("/var/spool/postfix", "/run"),
        excluded=(
            *(
                f"/var/spool/postfix/{name}"
                for name in (
                    "active",
                    "bounce",
                    "corrupt",
                    "defer",
                    "deferred",
                    "dev",
                    "etc",
                    "flush",
                    "hold",
                    "incoming",
                    "lib",
                    "pid",
                    "saved",
                    "trace",
                    "usr",
                )
            ),
            "/run/systemd",
            "/run/dbus",
            "/run/udev",
            "/run/sshd",
            "/run/mount",
            "/run/postfix",
            "/run/dovecot",
            "/run/saslauthd",
            "/run/credentials",
            "/run/log",
        ),
        excluded_text="Postfix's queue and chroot directories, nor a daemon's own directory in /run",
    ),
    "dkim_key_dir": Purpose("the DKIM key directory", at_or_below=("/etc/dkimkeys", "/var/lib/postmaster/dkim")),
    "user_file": Purpose("a certificate or key file the daemons read", kind="file", optional=True, controller=True),
    "controller_report": Purpose("a report file on the controller", kind="file", optional=True, controller=True),
}

#: A role variable's purpose, by the end of its name (checked in this order).
PURPOSE_BY_SUFFIX: tuple[tuple[str, str], ...] = (
    ("postfix_config_dir", "postfix_config_dir"),
    ("fragment_dir", "postfix_fragment_dir"),
    ("relay_password_map", "postfix_table"),
    ("dovecot_config_dir", "dovecot_config_dir"),
    ("users_file", "dovecot_passwd_file"),
    ("vmail_base", "vmail_base"),
    ("quarantine_dir", "amavis_quarantine"),
    ("selfsigned_dir", "certificate_dir"),
    ("certificate_dir", "certificate_dir"),
    ("socket_dir", "saslauthd_socket_dir"),
    ("dkim_key_dir", "dkim_key_dir"),
    ("cert_file", "user_file"),
    ("key_file", "user_file"),
    ("report_file", "controller_report"),
)

#: The context a purpose is relative to: the variable of the same role that names the directory.
_CONTEXT_SUFFIX = {
    "postfix_fragment_dir": ("fragment_dir", "config_dir"),
    "postfix_table": ("relay_password_map", "config_dir"),
    "dovecot_passwd_file": ("users_file", "config_dir"),
}


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def deny_reason(path: str, controller: bool = False) -> str | None:
    """Why *path* (absolute, normalised) is never the collection's to write; None if no deny list holds it.

    With *controller* (a file the controller's own user writes) only a name directly in a
    world-writable directory is refused there (a subdirectory of it is the user's own), and home
    directories are allowed (the user's own, or closed to them anyway).
    """
    for tree in WORLD_WRITABLE_TREES:
        if (posixpath.dirname(path) == tree or path == tree) if controller else _under(path, tree):
            return f"lies in {tree}, a world-writable tree where any local user may have prepared the name"
    for name in SYSTEM_FILES:
        if _under(path, name):
            return f"is a system file or lies in one ({name})"
    for tree in SYSTEM_TREES:
        if _under(path, tree):
            return f"lies in {tree}, a system directory"
    for tree in FOREIGN_TREES:
        if _under(path, tree) and not (controller and tree in ("/root", "/home")):
            return f"lies in {tree}, a directory another user or daemon owns"
    foreign = FOREIGN_NAMES.intersection(path.split("/"))
    if foreign:
        return f"has a {sorted(foreign)[0]} component, a directory another user owns"
    if path in ("/", "/etc", "/var", "/var/lib", "/var/spool", "/var/mail", "/run", "/srv", "/opt", "/var/log"):
        return "is a system directory"
    return None


def lexical(value: Any, name: str, plain: bool = True) -> str:
    """*value* as an absolute, normalised path (of plain characters), or PathPolicyError naming *name*.

    Without *plain* (a file the controller writes, never written into a configuration file) any
    character but a control character is accepted.
    """
    if not isinstance(value, str) or not value:
        raise PathPolicyError(f"{name}: expected an absolute path, got {value!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise PathPolicyError(f"{name}: {value!r} contains a newline or another control character")
    if not value.startswith("/"):
        raise PathPolicyError(f"{name}: {value!r} is not an absolute path")
    if ".." in value.split("/") or "." in value.split("/"):
        raise PathPolicyError(f"{name}: {value!r} must not contain '.' or '..' components")
    if plain and not _PLAIN_RE.match(value):
        raise PathPolicyError(
            f"{name}: {value!r} may hold only letters, digits and . _ + @ = ~ - / (no space, quote, '$', '%' or ',': "
            "the files it is written to cannot hold them)"
        )
    normalised = posixpath.normpath(value)
    return "/" if normalised == "//" else normalised


def confined_path(value: Any, name: str, purpose: str, within: str | None = None) -> str:
    """Return *value* normalised when it is a path the collection owns for *purpose*; else PathPolicyError.

    *within* is the (checked) directory a ``direct_in`` purpose is relative to, such as the Postfix
    configuration directory of a table; without it the path's own parent is checked as that directory.
    The error names *name* (the variable or module argument) and says where the path may be.
    """
    spec = PURPOSES[purpose]
    if spec.optional and value in ("", None):
        return ""
    report = purpose == "controller_report"
    path = lexical(value, name, plain=not report)
    reason = deny_reason(path, controller=report)
    if reason:
        raise PathPolicyError(f"{name}: {path} {reason}; {spec.what} must be {_where(spec, within)}")
    if spec.controller:
        return path
    if spec.direct_in:
        parent = posixpath.dirname(path)
        base = within if within is not None else parent
        base = confined_path(base, f"{name} (its directory)" if within is None else name, spec.direct_in)
        leaf = posixpath.basename(path)
        if purpose == "postfix_fragment_dir":
            if path != f"{base}/postmaster.d":
                raise PathPolicyError(f"{name}: {path} is not {base}/postmaster.d; {spec.what} must be that directory")
            return path
        if parent != base:
            raise PathPolicyError(f"{name}: {path} is not directly in {base}; {spec.what} must be {_where(spec, base)}")
        if leaf in spec.reserved or leaf.startswith(".") or leaf.endswith(spec.reserved_suffixes):
            raise PathPolicyError(
                f"{name}: {leaf} is one of {base}'s own files (or a compiled table, a hidden or a backup file); "
                f"{spec.what} needs a name of its own"
            )
        return path
    if any(re.fullmatch(pattern, path) for pattern in spec.patterns):
        return path
    for tree in spec.excluded:
        if _under(path, tree):
            raise PathPolicyError(
                f"{name}: {path} lies in {tree}, which Debian's packages own; {spec.what} must be {_where(spec, within)}"
            )
    if any(_under(path, root) and path != root for root in spec.below) or any(
        _under(path, root) for root in spec.at_or_below
    ):
        return path
    raise PathPolicyError(
        f"{name}: {path} is outside the directories the collection owns for this; {spec.what} must be {_where(spec, within)}"
    )


def _where(spec: Purpose, within: str | None) -> str:
    if spec.controller:
        return "a file of the admin's own, outside system, world-writable and other users' directories"
    if spec.direct_in == "postfix_config_dir" and spec.kind == "dir":
        return f"{within or PURPOSES[spec.direct_in].what}/postmaster.d"
    if spec.direct_in:
        directory = within or PURPOSES[spec.direct_in].what
        return f"a file directly in {directory} that is not one of its own files"
    return spec.allowed()


def purpose_of(variable: str) -> str | None:
    """The purpose of a role variable, from the end of its name (None if the name is not a path variable)."""
    for suffix, purpose in PURPOSE_BY_SUFFIX:
        if variable.endswith(suffix):
            return purpose
    return None


def check_paths(paths: Mapping[str, Any]) -> dict[str, str]:
    """Check a role's path variables (name -> value); return them normalised. Every error is raised at once.

    Each variable's purpose comes from its name (:data:`PURPOSE_BY_SUFFIX`); a fragment directory,
    relay password map or passwd-file is checked against the configuration directory variable of the
    same prefix when the mapping has it (``mailboxes_dovecot_users_file`` against
    ``mailboxes_dovecot_config_dir``).
    """
    if not isinstance(paths, Mapping):
        raise PathPolicyError(f"expected a mapping of variable names to paths, got {type(paths).__name__}")
    errors: list[str] = []
    result: dict[str, str] = {}
    ordered = sorted(paths, key=lambda n: (n.endswith(("fragment_dir", "password_map", "users_file")), n))
    for variable in ordered:
        purpose = purpose_of(variable)
        if purpose is None:
            raise PathPolicyError(f"{variable}: not a path variable this policy knows")
        within = None
        if purpose in _CONTEXT_SUFFIX:
            own, other = _CONTEXT_SUFFIX[purpose]
            context = variable[: -len(own)] + other
            if context in result:
                within = result[context]
            elif context in paths:
                continue  # the configuration directory itself is wrong: its error says so
        try:
            result[variable] = confined_path(paths[variable], variable, purpose, within)
        except PathPolicyError as exc:
            errors.append(str(exc))
    if errors:
        raise PathPolicyError("\n".join(errors) if len(errors) == 1 else "\n- ".join(["", *errors]).lstrip("\n"))
    return result


# -- the host side -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostTrust:
    """Whom the host check trusts: owners of the ancestors, groups that may write them, and where it starts.

    *top* is the directory the walk starts below (``/`` on a host); the deny lists apply only to
    paths that are not below a *top* other than ``/`` (the unit tests' scratch directories).
    """

    uids: frozenset[int] = frozenset({0})
    #: Groups whose write permission on an ancestor is accepted (root's; and mail, which owns /var/mail).
    group_names: tuple[str, ...] = ("root", "mail")
    top: str = "/"

    def trusted_gids(self) -> set[int]:
        gids = set()
        for group in self.group_names:
            try:
                gids.add(grp.getgrnam(group).gr_gid)
            except KeyError:
                continue
        return gids


#: The trust of the module's host checks; tests replace it with one that trusts their scratch directory.
DEFAULT_TRUST = HostTrust()


def _mode_text(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):04o}"


def check_host_path(
    path: str,
    name: str,
    *,
    kind: str = "dir",
    owners: Sequence[int] = (),
    trust: HostTrust | None = None,
    lstat: Callable[[str], os.stat_result] = os.lstat,
) -> None:
    """Refuse to write *path* on a tree a local user could have prepared; errors name *name*.

    Every existing component (from ``/`` down) must be a real directory (no symlink) owned by root
    or one of *owners* (the daemon account the path is for: amavis owns ``/var/lib/amavis``), and
    writable by neither the world (a sticky ``/tmp`` too) nor a group other than root's or mail's.
    The leaf, when it exists, must be a *kind* (``dir`` or ``file``; a symlink is neither), not
    writable by others, and a regular file must have one link only.
    """
    trust = trust or DEFAULT_TRUST
    if not isinstance(path, str) or not path.startswith("/") or any(ord(c) < 32 for c in path):
        raise PathPolicyError(f"{name}: {path!r} must be an absolute path without control characters")
    path = posixpath.normpath(path)
    top = posixpath.normpath(trust.top)
    if top == "/" or not _under(path, top):
        top = "/"
        reason = deny_reason(path)
        if reason:
            raise PathPolicyError(f"{name}: {path} {reason}")
    trusted_gids = trust.trusted_gids()
    parts = [p for p in path[len(top) :].split("/") if p] if top != "/" else [p for p in path.split("/") if p]
    current = top
    # A top other than / is trusted as it is (a test's scratch directory); / itself is checked.
    chain = ([current] if top == "/" else []) + [current := posixpath.join(current, part) for part in parts]
    for index, component in enumerate(chain):
        leaf = index == len(chain) - 1
        try:
            st = lstat(component)
        except FileNotFoundError:
            return  # the rest does not exist yet: the module creates it, as root
        if stat.S_ISLNK(st.st_mode):
            where = "" if component == path else f" on the way to {path}"
            raise PathPolicyError(
                f"{name}: {component} is a symbolic link{where}: the write would land wherever it points (refused)"
            )
        # The expected owner (a daemon's account) may own components too: amavis owns /var/lib/amavis.
        allowed_owners = set(trust.uids) | set(owners)
        if st.st_uid not in allowed_owners:
            raise PathPolicyError(
                f"{name}: {component} is owned by uid {st.st_uid}, not root: a local user could have prepared "
                f"{path} (refused)"
            )
        if leaf and not stat.S_ISDIR(st.st_mode):
            if kind == "dir":
                raise PathPolicyError(f"{name}: {component} exists and is not a directory")
            if not stat.S_ISREG(st.st_mode):
                raise PathPolicyError(f"{name}: {component} exists and is not a regular file")
            if st.st_nlink > 1:
                raise PathPolicyError(
                    f"{name}: {component} has {st.st_nlink} hard links; it may be another file (such as "
                    "/etc/shadow) under a second name (refused)"
                )
            if st.st_mode & 0o022:
                raise PathPolicyError(f"{name}: {component} is writable by others (mode {_mode_text(st)})")
            continue
        if leaf and kind == "file":
            raise PathPolicyError(f"{name}: {component} exists and is a directory, not a file")
        if st.st_mode & 0o002:
            sticky = " (sticky, like /tmp)" if st.st_mode & stat.S_ISVTX else ""
            raise PathPolicyError(
                f"{name}: {component} is world-writable{sticky} (mode {_mode_text(st)}): any local user could have "
                f"prepared {path} (refused)"
            )
        if st.st_mode & 0o020 and st.st_gid not in trusted_gids:
            raise PathPolicyError(
                f"{name}: {component} is writable by group {st.st_gid} (mode {_mode_text(st)}): its members could "
                f"have prepared {path} (refused)"
            )


def guard(error: Callable[[str], Exception], path: str, name: str, **options: Any) -> None:
    """check_host_path, raising the module's own error type (*error*) instead of PathPolicyError."""
    try:
        check_host_path(path, name, **options)
    except PathPolicyError as exc:
        raise error(str(exc)) from None
