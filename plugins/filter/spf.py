# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SPF filters: build and count SPF records, validate policyd-spf settings (documented in *.yml)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.module_utils.policyd_spf import (
    PolicydSpfError,
    check_settings,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.spf import (
    LOOKUP_LIMIT,
    SpfError,
    build_record,
    count_lookups,
)


def _wrap(name: str, func: Callable[[], Any]) -> Any:
    try:
        return func()
    except (SpfError, PolicydSpfError) as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"{name}: {exc}") from None


def spf_record(structure: Any, resolved: Mapping[str, str] | None = None, name: str = "spf_record") -> str:
    """Build, validate and lookup-count the TXT value of an SPF record from a structure."""
    return _wrap("spf_record", lambda: build_record(structure, resolved, name))


def spf_lookups(record: Any, resolved: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Count the DNS-querying terms of a record (nested includes of *resolved* too)."""

    def count() -> dict[str, Any]:
        terms = count_lookups(record, resolved)
        return {"count": len(terms), "terms": terms, "limit": LOOKUP_LIMIT, "within_limit": len(terms) <= LOOKUP_LIMIT}

    return _wrap("spf_lookups", count)


def policyd_spf_settings(settings: Any, prefix: str = "policyd_spf_") -> dict[str, Any]:
    """Validate policyd-spf settings; errors name ``<prefix><setting>``."""
    return _wrap("policyd_spf_settings", lambda: check_settings(settings, prefix))


class FilterModule:
    """SPF filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "spf_record": spf_record,
            "spf_lookups": spf_lookups,
            "policyd_spf_settings": policyd_spf_settings,
        }
