# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write files atomically: a private file, or a configuration file that keeps its mode and owner."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched

_OPEN = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def read_text(path: str) -> str | None:
    """A file's text, or None when it does not exist.

    Bytes that are not UTF-8 read as U+FFFD, so a corrupt file shows in a diff and can still be
    replaced, instead of failing the module with a traceback.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _before_write(path: str, touched: Touched | None) -> tuple[str, os.stat_result | None]:
    """Remember *path* in *touched*; return its directory and its stat (None when it does not exist)."""
    if touched is not None:
        touched.remember(path)
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    return os.path.dirname(path) or ".", st


def set_owner_mode(path: str, mode: int, uid: int = -1, gid: int = -1) -> None:
    """Give the file at *path* (never through a symlink) *mode*, and *uid*/*gid* unless -1.

    Called after an atomic move: AnsibleModule.atomic_move gives a file it creates the umask's
    mode (0644) and the caller's owner, whatever the temporary file had.
    """
    fd = os.open(path, _OPEN)
    try:
        if (uid, gid) != (-1, -1):
            with contextlib.suppress(PermissionError):
                os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def write_atomically(
    atomic_move: Callable[[str, str], Any], path: str, content: str, prefix: str, touched: Touched | None = None
) -> None:
    """Write *content* to *path* through a 0600 temporary file in the same directory.

    AnsibleModule.atomic_move keeps the mode and owner of an existing destination and
    gives a new one the default mode, so a new *path* is first created empty and 0600:
    a password file is never readable by others before the caller sets its mode. An existing
    file keeps its mode and owner. *touched* remembers the previous state for a rollback; a
    failed write removes the empty file it created.
    """
    directory, st = _before_write(path, touched)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix)
    created = False
    try:
        os.chmod(tmp, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        if st is None:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600))
            created = True
        atomic_move(tmp, path)
        created = False
        if st is None:
            set_owner_mode(path, 0o600)
        else:
            set_owner_mode(path, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if created:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def replace_keeping_mode(
    atomic_move: Callable[[str, str], Any],
    path: str,
    text: str,
    default_mode: int = 0o644,
    touched: Touched | None = None,
) -> None:
    """Replace *path* with *text* atomically, keeping an existing file's mode and owner (a new file gets *default_mode*).

    Shared by the configuration backends (postfix_config, dovecot_config, policyd_spf_config, amavis_config,
    dkim_config, saslauthd_config).
    *touched* remembers the previous state of *path* for a rollback.
    """
    directory, st = _before_write(path, touched)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, stat.S_IMODE(st.st_mode) if st else default_mode)
        if st is not None:
            with contextlib.suppress(PermissionError):
                os.chown(tmp, st.st_uid, st.st_gid)
        atomic_move(tmp, path)
        if st is None:
            set_owner_mode(path, default_mode)
        else:
            set_owner_mode(path, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
