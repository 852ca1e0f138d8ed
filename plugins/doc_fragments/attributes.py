# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Shared C(attributes) descriptions for the modules of this collection."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description:
      - Can run in C(check_mode) and return a changed status prediction without modifying the target.
  diff_mode:
    description:
      - Returns details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
"""
