# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter that confines a role's path variables to the directories the collection owns (documented in *.yml)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_mail_paths = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths")


def mail_paths(paths: Any) -> dict[str, str]:
    """Check a role's path variables (name -> value); return them normalised."""
    try:
        return _mail_paths.check_paths(paths)
    except _mail_paths.PathPolicyError as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"mail_paths: {exc}") from None


class FilterModule:
    """Path filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"mail_paths": mail_paths}
