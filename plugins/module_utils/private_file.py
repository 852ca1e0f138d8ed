# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write a file atomically without a moment in which a new file is readable by others."""

from __future__ import annotations

import os
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
