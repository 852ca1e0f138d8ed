# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fail2ban role's filter: its settings validated (documented in fail2ban_settings.yml)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_settings = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.fail2ban.fail2ban_settings")


def fail2ban_settings(settings: Any, prefix: str = "fail2ban_") -> dict[str, Any]:
    """Validate the fail2ban role's settings; errors name ``<prefix><setting>`` and the entry."""
    try:
        return _settings.check_settings(settings, prefix)
    except _settings.Fail2banSettingsError as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"fail2ban_settings: {exc}") from None


class FilterModule:
    """fail2ban filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"fail2ban_settings": fail2ban_settings}
