# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The srs role's filters: its settings validated, and its Postfix fragment (documented in srs_*.yml)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_srs_settings = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.srs.srs_settings")


def srs_settings(settings: Any, prefix: str = "srs_") -> dict[str, Any]:
    """Validate the srs role's settings; errors name ``<prefix><setting>`` and the entry."""
    try:
        return _srs_settings.check_settings(settings, prefix)
    except _srs_settings.SrsSettingsError as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"srs_settings: {exc}") from None


def srs_postfix_fragment(settings: Any) -> dict[str, Any]:
    """The Postfix fragment of validated srs settings: postsrsd's tables as envelope canonical maps."""
    try:
        return _srs_settings.postfix_fragment(_srs_settings.check_settings(settings))
    except _srs_settings.SrsSettingsError as exc:
        raise AnsibleFilterError(f"srs_postfix_fragment: {exc}") from None


class FilterModule:
    """SRS filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"srs_settings": srs_settings, "srs_postfix_fragment": srs_postfix_fragment}
