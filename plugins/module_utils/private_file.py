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


def write_atomically(atomic_move: Callable[[str, str], Any], path: str, content: str, prefix: str) -> None:
    """Write *content* to *path* through a 0600 temporary file in the same directory.

    AnsibleModule.atomic_move keeps the mode and owner of an existing destination and
    gives a new one the default mode, so a new *path* is first created empty and 0600:
    a password file is never readable by others before the caller sets its mode.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix)
    try:
        os.chmod(tmp, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        if not os.path.exists(path):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def replace_keeping_mode(
    atomic_move: Callable[[str, str], Any], path: str, text: str, default_mode: int = 0o644
) -> None:
    """Replace *path* with *text* atomically, keeping an existing file's mode and owner (a new file gets *default_mode*).

    Shared by the configuration backends (postfix_config, dovecot_config, policyd_spf_config).
    """
    directory = os.path.dirname(path) or "."
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, stat.S_IMODE(st.st_mode) if st else default_mode)
        if st is not None:
            with contextlib.suppress(PermissionError):
                os.chown(tmp, st.st_uid, st.st_gid)
        atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
