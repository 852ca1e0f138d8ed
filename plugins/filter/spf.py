# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SPF filters: build and count SPF records, validate policyd-spf settings (documented in *.yml)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_postfix_inbound = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_inbound")
_policyd_spf = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.spf.policyd_spf")
_spf = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.spf.spf")


def _wrap(name: str, func: Callable[[], Any]) -> Any:
    try:
        return func()
    except (_spf.SpfError, _policyd_spf.PolicydSpfError) as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"{name}: {exc}") from None


def spf_record(structure: Any, resolved: Mapping[str, str] | None = None, name: str = "spf_record") -> str:
    """Build, validate and lookup-count the TXT value of an SPF record from a structure."""
    return _wrap("spf_record", lambda: _spf.build_record(structure, resolved, name))


def spf_lookups(record: Any, resolved: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Count the DNS-querying terms of a record (nested includes of *resolved* too)."""

    def count() -> dict[str, Any]:
        terms = _spf.count_lookups(record, resolved)
        return {
            "count": len(terms),
            "terms": terms,
            "limit": _spf.LOOKUP_LIMIT,
            "within_limit": len(terms) <= _spf.LOOKUP_LIMIT,
        }

    return _wrap("spf_lookups", count)


def policyd_spf_settings(
    settings: Any,
    prefix: str = "policyd_spf_",
    *,
    recipient_restrictions: Any = None,
    rbl_zones: Any = None,
    policy: str = "check_policy_service unix:private/policy-spf",
    after: str = "reject_unauth_destination",
    time_limit: Any = None,
) -> dict[str, Any]:
    """Validate policyd-spf settings; errors name ``<prefix><setting>``.

    With the postfix role's *recipient_restrictions* (and *rbl_zones*) visible, the list that the
    merge will build (RBL checks and *policy* inserted *after* the anchor) is judged too: an entry
    before them that permits every outside client is an error naming postfix_recipient_restrictions,
    one that permits some is a warning. *time_limit*, when given, is the spawn service's time limit (a
    Postfix time, ``3600s``).
    """
    result = _wrap("policyd_spf_settings", lambda: _policyd_spf.check_settings(settings, prefix))
    if time_limit is not None:
        _wrap("policyd_spf_settings", lambda: _policyd_spf.check_time_limit(time_limit, f"{prefix}time_limit"))
    if recipient_restrictions is None:
        return result
    zones = [zone for zone in (rbl_zones or []) if isinstance(zone, str) and zone.strip()]
    inserts: list[dict[str, Any]] = []
    if zones:  # as the postfix role's fragment inserts them
        rbl = [f"{_postfix_inbound.RBL_CHECKS[0]} {zone.strip()}" for zone in zones]
        inserts.append({"param": "smtpd_recipient_restrictions", "after": after, "values": rbl})
    inserts.append({"param": "smtpd_recipient_restrictions", "after": after, "values": [policy]})
    errors, warnings = _postfix_inbound.judge_recipient_restrictions(
        recipient_restrictions, inserts, "postfix_recipient_restrictions"
    )
    if errors:
        raise AnsibleFilterError("policyd_spf_settings: " + "; ".join(errors))
    for warning in warnings:
        Display().warning(f"policyd_spf_settings: {warning}")
    return result


class FilterModule:
    """SPF filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "spf_record": spf_record,
            "spf_lookups": spf_lookups,
            "policyd_spf_settings": policyd_spf_settings,
        }
