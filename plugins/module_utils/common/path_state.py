# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a path was before a run touched it, and putting it back exactly.

Every module that rolls back uses one :class:`Touched` per run: before a path is written,
replaced, removed, created, chowned or chmodded, ``touched.remember(path)`` takes a
:class:`PathState` snapshot (``lstat`` type, mode, owner, group, and the content of a regular
file or the target of a symlink), once, the first time. ``touched.restore()`` puts every path
back in reverse order: the previous content with the previous owner, group and mode (a file that
an atomic move replaced gets its old inode's metadata on the restored copy), and removes what did
not exist before: files, symlinks, and directories the run created once they are empty of
anything the run did not create itself.

stdlib only: this runs on the managed hosts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from dataclasses import dataclass

MISSING = "missing"
FILE = "file"
DIRECTORY = "directory"
SYMLINK = "symlink"
OTHER = "other"

#: Opens what lstat saw, never through a symlink, and never blocks on a FIFO swapped in meanwhile.
_READ = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class PathState:
    """One path as it was: *kind* (missing, file, directory, symlink, other), mode, uid, gid, content.

    *content* is a regular file's bytes or a symlink's target; None for the other kinds.
    """

    path: str
    kind: str
    mode: int = 0
    uid: int = -1
    gid: int = -1
    content: bytes | None = None


def snapshot(path: str) -> PathState:
    """Return the state of *path* now, without following a symlink at *path* itself."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return PathState(path, MISSING)
    mode, uid, gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
    if stat.S_ISLNK(st.st_mode):
        return PathState(path, SYMLINK, mode, uid, gid, os.fsencode(os.readlink(path)))
    if stat.S_ISDIR(st.st_mode):
        return PathState(path, DIRECTORY, mode, uid, gid)
    if stat.S_ISREG(st.st_mode):
        fd = os.open(path, _READ)
        with os.fdopen(fd, "rb") as handle:
            return PathState(path, FILE, mode, uid, gid, handle.read())
    return PathState(path, OTHER, mode, uid, gid)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _set_attrs(path: str, state: PathState) -> None:
    """Give the directory or file at *path* (never through a symlink) the owner, group and mode of *state*."""
    if state.kind not in (FILE, DIRECTORY):
        os.chown(path, state.uid, state.gid, follow_symlinks=False)
        os.chmod(path, state.mode)
        return
    fd = os.open(path, _READ)
    try:
        # chown first: it clears the set-id bits that the mode may have to put back.
        os.fchown(fd, state.uid, state.gid)
        os.fchmod(fd, state.mode)
    finally:
        os.close(fd)


def _put_file(state: PathState) -> None:
    """Write *state*'s content beside its path with its owner, group and mode, then rename it over the path."""
    directory = os.path.dirname(state.path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(state.path)}.restore.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(state.content or b"")
            handle.flush()
            os.fchown(handle.fileno(), state.uid, state.gid)
            os.fchmod(handle.fileno(), state.mode)
            os.fsync(handle.fileno())
        os.replace(tmp, state.path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _same_file(state: PathState, st: os.stat_result) -> bool:
    if not stat.S_ISREG(st.st_mode):
        return False
    try:
        fd = os.open(state.path, _READ)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as handle:
        return handle.read() == state.content


def restore(state: PathState) -> None:
    """Put *state* back: content, owner, group and mode; remove a path that did not exist.

    A directory that did not exist is removed only when empty; one still holding something the
    run did not create (or did not remember) is left in place.
    """
    current = _lstat(state.path)
    if state.kind == MISSING:
        if current is None:
            return
        if stat.S_ISDIR(current.st_mode):
            try:
                os.rmdir(state.path)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            return
        os.unlink(state.path)
        return
    if state.kind == FILE:
        if current is not None and _same_file(state, current):
            _set_attrs(state.path, state)
        else:
            if current is not None and stat.S_ISDIR(current.st_mode):
                os.rmdir(state.path)
            _put_file(state)
        return
    if state.kind == DIRECTORY:
        if current is not None and not stat.S_ISDIR(current.st_mode):
            os.unlink(state.path)
            current = None
        if current is None:
            os.mkdir(state.path, 0o700)
        _set_attrs(state.path, state)
        return
    if state.kind == SYMLINK:
        target = os.fsdecode(state.content or b"")
        if current is None or not stat.S_ISLNK(current.st_mode) or os.readlink(state.path) != target:
            if current is not None and stat.S_ISDIR(current.st_mode):
                os.rmdir(state.path)
            elif current is not None:
                os.unlink(state.path)
            os.symlink(target, state.path)
        os.chown(state.path, state.uid, state.gid, follow_symlinks=False)
        return
    if current is not None:
        _set_attrs(state.path, state)


class Touched:
    """The paths one run touched, each remembered before its first change; :meth:`restore` puts them back."""

    def __init__(self) -> None:
        self._states: dict[str, PathState] = {}

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and os.path.abspath(path) in self._states

    def __len__(self) -> int:
        return len(self._states)

    @property
    def states(self) -> list[PathState]:
        """The snapshots, in the order the paths were first remembered."""
        return list(self._states.values())

    def remember(self, path: str) -> PathState:
        """Snapshot *path* unless it was remembered already (the first state is the one to restore)."""
        key = os.path.abspath(path)
        if key not in self._states:
            self._states[key] = snapshot(key)
        return self._states[key]

    def remember_dirs(self, path: str) -> list[str]:
        """Remember *path* and each missing ancestor of it, outermost first (what ``makedirs`` would create).

        Return the missing ones, outermost first.
        """
        missing = []
        current = os.path.abspath(path)
        while _lstat(current) is None:
            missing.append(current)
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
        missing.reverse()
        for directory in missing:
            self.remember(directory)
        self.remember(path)
        return missing

    def makedirs(self, path: str, mode: int = 0o755) -> None:
        """``os.makedirs(path, mode, exist_ok=True)``, remembering the directories it creates.

        Whatever the umask, a new *path* gets *mode* and a new parent 0755 (traversable, as
        ``makedirs`` makes them with the usual umask), so a daemon's user can reach *path*.
        """
        created = self.remember_dirs(path)
        os.makedirs(path, mode=mode, exist_ok=True)
        leaf = os.path.abspath(path)
        for directory in created:
            os.chmod(directory, mode if directory == leaf else 0o755)

    def restore(self) -> list[str]:
        """Put every remembered path back, newest first; return the errors (the rest is restored regardless)."""
        errors = []
        for state in reversed(list(self._states.values())):
            try:
                restore(state)
            except OSError as exc:
                errors.append(f"restoring {state.path}: {exc}")
        return errors
