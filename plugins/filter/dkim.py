# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The dkim role's filters: its settings validated, and its Postfix fragment (documented in dkim_*.yml)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_dkim_settings = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.dkim.dkim_settings")
_dmarc_settings = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.dkim.dmarc_settings")


def dkim_settings(settings: Any, prefix: str = "dkim_") -> dict[str, Any]:
    """Validate the dkim role's settings; errors name ``<prefix><setting>`` and the entry."""
    try:
        return _dkim_settings.check_settings(settings, prefix)
    except _dkim_settings.DkimSettingsError as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"dkim_settings: {exc}") from None


def dkim_postfix_fragment(settings: Any) -> dict[str, Any]:
    """The Postfix fragment of validated dkim settings: the milter in smtpd_milters and non_smtpd_milters."""
    try:
        return _dkim_settings.postfix_fragment(_dkim_settings.check_settings(settings))
    except _dkim_settings.DkimSettingsError as exc:
        raise AnsibleFilterError(f"dkim_postfix_fragment: {exc}") from None


def dmarc_settings(settings: Any, prefix: str = "dkim_dmarc_") -> dict[str, Any]:
    """Validate the dkim role's DMARC settings; errors name ``<prefix><setting>`` and the entry."""
    try:
        return _dmarc_settings.check_settings(settings, prefix)
    except _dmarc_settings.DmarcSettingsError as exc:
        raise AnsibleFilterError(f"dmarc_settings: {exc}") from None


def dmarc_postfix_fragment(settings: Any) -> dict[str, Any] | None:
    """The Postfix fragment of validated DMARC settings: OpenDMARC after OpenDKIM; None when not enforced."""
    try:
        checked = _dmarc_settings.check_settings(settings)
    except _dmarc_settings.DmarcSettingsError as exc:
        raise AnsibleFilterError(f"dmarc_postfix_fragment: {exc}") from None
    return _dmarc_settings.postfix_fragment(checked) if checked["enforce"] else None


class FilterModule:
    """DKIM filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "dkim_settings": dkim_settings,
            "dkim_postfix_fragment": dkim_postfix_fragment,
            "dmarc_settings": dmarc_settings,
            "dmarc_postfix_fragment": dmarc_postfix_fragment,
        }
