# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backend of the maildir module: create Maildir skeletons with their owner and mode.

Everything below a Maildir's parent directory is handled through directory file
descriptors opened with ``O_NOFOLLOW``: a symlink planted by the mailbox owner (who can
write the Maildir) is refused instead of followed, and ``fchown``/``fchmod`` act on the
directory that was checked, not on whatever the path names a moment later.

Files are never opened, changed or removed, and ``cur``, ``new`` and ``tmp`` are never
read: a re-run over a converged Maildir costs a few ``lstat`` calls per directory.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import stat
from collections.abc import Iterable
from typing import Any, NamedTuple

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate import is_fqdn

SUBDIRS = ("cur", "new", "tmp")
FOLDER_MARKER = "maildirfolder"
DEFAULT_MODE = 0o700

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_CREATE_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_MODE_RE = re.compile(r"^0?[0-7]{3,4}\Z")


class MaildirError(Exception):
    """A Maildir cannot be created or fixed; the message names the path."""


class Spec(NamedTuple):
    """One Maildir to ensure: uid/gid ``None`` leave owner/group as they are."""

    path: str
    uid: int | None
    gid: int | None
    mode: int
    folders: tuple[str, ...]


def parse_mode(value: Any) -> int:
    """Return the octal mode *value* (``"0700"``, ``"750"``, or an int) as an int."""
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    elif isinstance(value, str) and _MODE_RE.match(value):
        mode = int(value, 8)
    else:
        raise MaildirError(f"mode {value!r} is not an octal mode such as '0700'")
    if not 0 <= mode <= 0o7777:
        raise MaildirError(f"mode {value!r} is out of range")
    if mode & 0o700 != 0o700:
        raise MaildirError(f"mode {mode:04o} must give the owner rwx (0700), or mail cannot be delivered or read")
    if mode & 0o002:
        raise MaildirError(f"mode {mode:04o} lets every user of the host write the Maildir; use 0700 (or 0750)")
    return mode


def folder_dir(name: Any) -> str:
    """Return the Maildir++ directory of IMAP folder *name* (``Sent`` -> ``.Sent``)."""
    if not isinstance(name, str) or not name:
        raise MaildirError(f"folder {name!r} must be a non-empty string")
    if name.upper() == "INBOX":
        raise MaildirError("folder 'INBOX' is the Maildir itself and cannot be a Maildir++ folder")
    if "/" in name or "\0" in name:
        raise MaildirError(f"folder {name!r} must not contain '/'; use '.' for sub-folders (Archive.2024)")
    if name.startswith(".") or name.endswith(".") or ".." in name:
        raise MaildirError(f"folder {name!r} must not start or end with '.' or contain '..'")
    return "." + name


def resolve_uid(owner: Any) -> int | None:
    """Return the uid of *owner* (a name or a number), or None when not given."""
    if owner is None or owner == "":
        return None
    text = str(owner)
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise MaildirError(f"owner {text!r} does not exist") from None


def resolve_gid(group: Any, uid: int | None) -> int | None:
    """Return the gid of *group*; when not given, the primary group of *uid* (or None)."""
    if group is None or group == "":
        if uid is None:
            return None
        try:
            return pwd.getpwuid(uid).pw_gid
        except KeyError:
            return None
    text = str(group)
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise MaildirError(f"group {text!r} does not exist") from None


def normalize_path(path: Any) -> str:
    if not isinstance(path, str) or not path:
        raise MaildirError(f"path {path!r} must be a non-empty string")
    if "\0" in path:
        raise MaildirError(f"path {path!r} contains a NUL byte")
    if not os.path.isabs(path):
        raise MaildirError(f"path {path!r} must be absolute")
    normalized = os.path.normpath(path)
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")
    if normalized == "/":
        raise MaildirError("path '/' cannot be a Maildir")
    return normalized


def build_specs(
    entries: Iterable[dict[str, Any]],
    *,
    owner: Any = None,
    group: Any = None,
    mode: Any = "0700",
    folders: Iterable[Any] = (),
) -> list[Spec]:
    """Validate every entry (``path`` and optional ``owner``/``group``) before anything changes.

    An entry's owner and group default to *owner* and *group*. When an entry names its own
    owner but no group, the group is that owner's primary group rather than *group*.
    """
    mode_int = parse_mode(mode)
    folder_names = tuple(dict.fromkeys(folder_dir(name) for name in folders or ()))
    users: dict[str, int | None] = {}
    groups: dict[tuple[str, int | None], int | None] = {}

    def uid_of(value: Any) -> int | None:
        key = "" if value is None else str(value)
        if key not in users:
            users[key] = resolve_uid(value)
        return users[key]

    def gid_of(value: Any, uid: int | None) -> int | None:
        key = ("" if value is None else str(value), uid)
        if key not in groups:
            groups[key] = resolve_gid(value, uid)
        return groups[key]

    specs: dict[str, Spec] = {}
    for entry in entries:
        path = normalize_path(entry.get("path"))
        own_owner = entry.get("owner") not in (None, "")
        uid = uid_of(entry.get("owner") if own_owner else owner)
        entry_group = entry.get("group")
        if entry_group in (None, ""):
            entry_group = None if own_owner else group
        spec = Spec(path, uid, gid_of(entry_group, uid), mode_int, folder_names)
        previous = specs.get(path)
        if previous is not None and previous != spec:
            raise MaildirError(f"Maildir {path} is given twice with a different owner or group")
        specs[path] = spec
    return list(specs.values())


class _Attrs(NamedTuple):
    uid: int
    gid: int
    mode: int


class Maildirs:
    """Ensure many Maildirs in one pass; collect what was (or would be) created and fixed."""

    def __init__(self, *, create_parents: bool = True, check_mode: bool = False) -> None:
        self.create_parents = create_parents
        self.check_mode = check_mode
        self.created: list[str] = []
        self._new_dirs: set[str] = set()
        self.fixed: list[str] = []
        self._before: list[str] = []
        self._after: list[str] = []
        # Absolute directories known to exist ("dir") or to be created in check mode ("planned").
        self._known: dict[str, str] = {}
        self._parent_cache: tuple[str, int] | None = None
        self._names: dict[tuple[str, int], str] = {}

    # -- reporting -------------------------------------------------------------------------

    def _name(self, kind: str, ident: int) -> str:
        key = (kind, ident)
        if key not in self._names:
            try:
                self._names[key] = pwd.getpwuid(ident).pw_name if kind == "u" else grp.getgrgid(ident).gr_name
            except KeyError:
                self._names[key] = str(ident)
        return self._names[key]

    def _describe(self, uid: int | None, gid: int | None, mode: int) -> str:
        owner = "-" if uid is None else self._name("u", uid)
        group = "-" if gid is None else self._name("g", gid)
        return f"{owner}:{group} {mode:04o}"

    def _record_created(self, path: str, spec: Spec, is_dir: bool = True) -> None:
        """Record a created path; only the top-most one: what is below a new directory is implied."""
        if is_dir:
            self._new_dirs.add(path)
        if os.path.dirname(path) in self._new_dirs:
            return
        shown = path + "/" if is_dir else path
        mode = spec.mode if is_dir else spec.mode & 0o666
        self.created.append(path)
        self._before.append(f"{shown}: absent")
        self._after.append(f"{shown}: {self._describe(spec.uid, spec.gid, mode)}")

    def _record_fixed(self, path: str, old: _Attrs, new: _Attrs) -> None:
        self.fixed.append(path)
        self._before.append(f"{path}/: {self._describe(old.uid, old.gid, old.mode)}")
        self._after.append(f"{path}/: {self._describe(new.uid, new.gid, new.mode)}")

    def diff(self, header: str) -> dict[str, str]:
        return {
            "before_header": header,
            "after_header": header,
            "before": "".join(line + "\n" for line in self._before),
            "after": "".join(line + "\n" for line in self._after),
        }

    # -- low level ---------------------------------------------------------------------------

    @staticmethod
    def _refuse(path: str, st: os.stat_result) -> None:
        if stat.S_ISLNK(st.st_mode):
            raise MaildirError(
                f"{path} is a symlink; refusing to follow it (a symlink in a Maildir could redirect chown/chmod)"
            )
        if not stat.S_ISDIR(st.st_mode):
            raise MaildirError(f"{path} exists and is not a directory")

    @staticmethod
    def _open_dir(parent_fd: int, name: str, path: str) -> int:
        try:
            return os.open(name, _OPEN_DIR, dir_fd=parent_fd)
        except OSError as exc:
            # ELOOP / ENOTDIR: the entry was replaced by a symlink or a file after it was checked.
            raise MaildirError(f"cannot open directory {path}: {exc.strerror}") from None

    def _wanted(self, current: _Attrs, spec: Spec) -> _Attrs:
        return _Attrs(
            current.uid if spec.uid is None else spec.uid,
            current.gid if spec.gid is None else spec.gid,
            spec.mode,
        )

    @staticmethod
    def _set_attrs(fd: int, path: str, uid: int | None, gid: int | None, mode: int | None) -> None:
        """fchown/fchmod *fd*; ``None`` leaves that attribute alone."""
        try:
            if uid is not None or gid is not None:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            if mode is not None:
                os.fchmod(fd, mode)
        except OSError as exc:
            raise MaildirError(f"cannot set owner or mode of {path}: {exc.strerror}") from None

    def _fix(self, fd: int, path: str, current: _Attrs, spec: Spec) -> None:
        wanted = self._wanted(current, spec)
        if wanted == current:
            return
        if not self.check_mode:
            owner_differs = (wanted.uid, wanted.gid) != (current.uid, current.gid)
            self._set_attrs(
                fd,
                path,
                wanted.uid if owner_differs else None,
                wanted.gid if owner_differs else None,
                wanted.mode if wanted.mode != current.mode else None,
            )
        self._record_fixed(path, current, wanted)

    @staticmethod
    def _attrs(st: os.stat_result) -> _Attrs:
        return _Attrs(st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))

    def _dir(self, parent_fd: int | None, path: str, name: str, spec: Spec, descend: bool) -> int | None:
        """Ensure directory *name* in *parent_fd*; return an fd on it when *descend* and it exists.

        ``parent_fd`` None means the parent is only planned (check mode): the directory is
        reported as created and None is returned.
        """
        if parent_fd is None:
            self._record_created(path, spec)
            return None
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return self._mkdir(parent_fd, path, name, spec, descend)
        self._refuse(path, st)
        if not descend and self._wanted(self._attrs(st), spec) == self._attrs(st):
            return None
        fd = self._open_dir(parent_fd, name, path)
        try:
            self._fix(fd, path, self._attrs(os.fstat(fd)), spec)
        except BaseException:
            os.close(fd)
            raise
        if descend:
            return fd
        os.close(fd)
        return None

    def _mkdir(self, parent_fd: int, path: str, name: str, spec: Spec, descend: bool) -> int | None:
        self._record_created(path, spec)
        if self.check_mode:
            return None
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except OSError as exc:
            raise MaildirError(f"cannot create directory {path}: {exc.strerror}") from None
        fd = self._open_dir(parent_fd, name, path)
        try:
            self._set_attrs(fd, path, spec.uid, spec.gid, spec.mode)
        except BaseException:
            os.close(fd)
            raise
        if descend:
            return fd
        os.close(fd)
        return None

    def _marker(self, folder_fd: int | None, path: str, spec: Spec) -> None:
        """Create the empty ``maildirfolder`` file; an existing one is left exactly as it is."""
        if folder_fd is None:
            self._record_created(path, spec, is_dir=False)
            return
        try:
            st = os.stat(FOLDER_MARKER, dir_fd=folder_fd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISLNK(st.st_mode):
                raise MaildirError(f"{path} is a symlink; refusing to follow it")
            if not stat.S_ISREG(st.st_mode):
                raise MaildirError(f"{path} exists and is not a regular file")
            return
        self._record_created(path, spec, is_dir=False)
        if self.check_mode:
            return
        try:
            fd = os.open(FOLDER_MARKER, _CREATE_FILE, 0o600, dir_fd=folder_fd)
        except OSError as exc:
            raise MaildirError(f"cannot create {path}: {exc.strerror}") from None
        try:
            self._set_attrs(fd, path, spec.uid, spec.gid, spec.mode & 0o666)
        finally:
            os.close(fd)

    # -- parents -------------------------------------------------------------------------------

    def _check_existing(self, prefix: str) -> str:
        """Return 'dir' or 'missing' for an existing-parent candidate *prefix*."""
        try:
            st = os.lstat(prefix)
        except FileNotFoundError:
            return "missing"
        except OSError as exc:
            raise MaildirError(f"cannot inspect {prefix}: {exc.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            if st.st_uid != 0:
                raise MaildirError(
                    f"{prefix} is a symlink owned by uid {st.st_uid}; only symlinks owned by root are "
                    "followed in the parents of a Maildir"
                )
            try:
                st = os.stat(prefix)
            except OSError:
                raise MaildirError(f"{prefix} is a dangling symlink") from None
        if not stat.S_ISDIR(st.st_mode):
            raise MaildirError(f"{prefix} exists and is not a directory")
        return "dir"

    def _parent_fd(self, parent: str, spec: Spec) -> int | None:
        """Return an fd on *parent*, creating missing parents; None when they are only planned.

        The fd is kept in a one-entry cache (Maildirs usually come sorted by domain) and
        closed by :meth:`close`; callers do not close it.
        """
        if self._parent_cache is not None and self._parent_cache[0] == parent:
            return self._parent_cache[1]
        if self._known.get(parent) == "planned":
            return None
        # Walk from the root: find the deepest existing ancestor and the missing ones below it.
        parts = parent.strip("/").split("/")
        prefixes = ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]
        missing: list[str] = []
        deepest = "/"
        planned_ancestor = False  # check mode: an ancestor is only planned, so the rest is missing
        for prefix in prefixes:
            state = self._known.get(prefix)
            if state is None:
                state = "missing" if missing or planned_ancestor else self._check_existing(prefix)
                if state == "dir":
                    self._known[prefix] = "dir"
            if state == "planned":
                planned_ancestor = True
            elif state == "missing":
                missing.append(prefix)
            else:
                deepest = prefix
        if missing and not self.create_parents:
            raise MaildirError(f"parent directory {missing[0]} of Maildir {spec.path} does not exist")
        if planned_ancestor:
            for prefix in missing:
                self._dir(None, prefix, os.path.basename(prefix), spec, descend=True)
                self._known[prefix] = "planned"
            return None
        try:
            fd: int | None = os.open(deepest, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise MaildirError(f"cannot open directory {deepest}: {exc.strerror}") from None
        for prefix in missing:
            child = self._dir(fd, prefix, os.path.basename(prefix), spec, descend=True)
            if fd is not None:
                os.close(fd)
            fd = child
            self._known[prefix] = "planned" if fd is None else "dir"
        if fd is None:
            return None
        self._set_parent_cache(parent, fd)
        return fd

    def _set_parent_cache(self, parent: str, fd: int) -> None:
        if self._parent_cache is not None:
            os.close(self._parent_cache[1])
        self._parent_cache = (parent, fd)

    def close(self) -> None:
        if self._parent_cache is not None:
            os.close(self._parent_cache[1])
            self._parent_cache = None

    # -- public --------------------------------------------------------------------------------

    def ensure(self, spec: Spec) -> None:
        """Ensure one Maildir, its cur/new/tmp, and its Maildir++ folders."""
        parent, name = os.path.split(spec.path)
        parent_fd = self._parent_fd(parent, spec)
        root_fd = self._dir(parent_fd, spec.path, name, spec, descend=True)
        try:
            self._skeleton(root_fd, spec.path, spec)
            for folder in spec.folders:
                folder_path = f"{spec.path}/{folder}"
                folder_fd = self._dir(root_fd, folder_path, folder, spec, descend=True)
                try:
                    self._skeleton(folder_fd, folder_path, spec)
                    self._marker(folder_fd, f"{folder_path}/{FOLDER_MARKER}", spec)
                finally:
                    if folder_fd is not None:
                        os.close(folder_fd)
        finally:
            if root_fd is not None:
                os.close(root_fd)

    def _skeleton(self, fd: int | None, path: str, spec: Spec) -> None:
        for sub in SUBDIRS:
            self._dir(fd, f"{path}/{sub}", sub, spec, descend=False)

    def run(self, specs: Iterable[Spec]) -> dict[str, Any]:
        """Ensure every Maildir of *specs*; return changed/created/fixed.

        When a :class:`MaildirError` stops the run part-way, :attr:`created` and
        :attr:`fixed` still list what was done before it.
        """
        try:
            for spec in specs:
                self.ensure(spec)
        finally:
            self.close()
        return {"changed": bool(self.created or self.fixed), "created": self.created, "fixed": self.fixed}


# -- purge: only what the role made ------------------------------------------------------------


def _owned_dir(path: str, uid: int) -> bool:
    """Whether *path* is a real directory (not a symlink) owned by *uid*."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid


def purge_candidates(base: str, domains: Iterable[str], keep: Iterable[str], uid: int) -> list[str]:
    """The Maildirs to delete: ``<base>/<domain>/<user>`` of the *domains* given, not in *keep*.

    Only what the mailboxes role itself creates qualifies: a real directory (never a symlink, at
    either level) owned by the vmail *uid*, holding ``cur``, ``new`` and ``tmp``, exactly two levels
    below *base*, in a domain the role manages. The base itself, anything outside it, and other
    domains' directories are never candidates.
    """
    base = normalize_path(base)
    keep_set = {normalize_path(path) for path in keep}
    found: list[str] = []
    for domain in dict.fromkeys(domains):
        if not is_fqdn(domain) or domain != domain.lower():
            raise MaildirError(f"purge_domains: {domain!r} is not a domain name")
        domain_dir = f"{base}/{domain}"
        if not _owned_dir(domain_dir, uid):
            continue
        try:
            names = sorted(os.listdir(domain_dir))
        except OSError as exc:
            raise MaildirError(f"cannot list {domain_dir}: {exc.strerror}") from None
        for name in names:
            path = f"{domain_dir}/{name}"
            if path in keep_set or name.startswith("."):
                continue
            if _owned_dir(path, uid) and all(_owned_dir(f"{path}/{sub}", uid) for sub in SUBDIRS):
                found.append(path)
    return found


def purge(paths: Iterable[str], check_mode: bool = False) -> list[str]:
    """Delete the Maildirs *paths* (from purge_candidates); symlinks inside are removed, never followed."""
    removed = []
    for path in paths:
        if not check_mode:
            try:
                shutil.rmtree(path)
            except OSError as exc:
                raise MaildirError(f"cannot delete {path}: {exc.strerror or exc}") from None
        removed.append(path)
    return removed
