# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The backup role's filter: its settings validated (documented in backup_settings.yml)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_settings = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.backup.backup_settings")


def backup_settings(settings: Any, prefix: str = "backup_") -> dict[str, Any]:
    """Validate the backup role's settings; errors name ``<prefix><setting>`` and the entry.

    The password is checked and left out of the result, so that no fact holds it (the module takes it
    as an option of its own, hidden from the logs).
    """
    try:
        checked = _settings.check_settings(settings, prefix)
        checked.pop("password", None)
        return checked
    except _settings.BackupSettingsError as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"backup_settings: {exc}") from None


class FilterModule:
    """backup filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"backup_settings": backup_settings}
