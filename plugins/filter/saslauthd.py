# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter that checks the saslauthd role's variables on the controller (documented in *.yml)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_saslauthd_settings = LazyModule(
    "ansible_collections.postmaster.mailserver.plugins.module_utils.saslauthd.saslauthd_settings"
)


def saslauthd_settings(settings: Any) -> dict[str, Any]:
    """Check the saslauthd role's variables; return them."""
    try:
        return _saslauthd_settings.check_settings(settings)
    except _saslauthd_settings.SaslauthdSettingsError as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"saslauthd_settings: {exc}") from None


class FilterModule:
    """saslauthd filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"saslauthd_settings": saslauthd_settings}
