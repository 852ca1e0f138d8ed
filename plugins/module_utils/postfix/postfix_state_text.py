# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The text of a fragment file and the state of a lookup table, as postfix_config writes and reports them.

Kept apart from the validators (no import beyond the standard library), so that the action plugin in front
of postfix_config compares a call with what the play knows of the host without compiling the whole Postfix
backend in every task's worker process.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def fragment_text(data: Any) -> str:
    """The text of a fragment file holding *data* (checked by the caller)."""
    return json.dumps(data, indent=2, sort_keys=True, separators=(",", ": ")) + "\n"


def table_state(content: str, uid: int = 0, gid: int = 0, mode: int = 0o644) -> str:
    """The state of a table as ``table_states`` reports it: its text's SHA-256, owner, group and mode."""
    return f"{hashlib.sha256(content.encode('utf-8')).hexdigest()}:{uid}:{gid}:{mode:o}"
