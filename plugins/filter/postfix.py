# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that render and validate Postfix configuration values (documented in *.yml)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_postfix_networks = LazyModule(
    "ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_networks"
)
_postfix_restrictions = LazyModule(
    "ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_restrictions"
)
_postfix_role = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_role")
_postfix_fragment_names = LazyModule(
    "ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragment_names"
)
_postfix_syntax = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax")


def _wrap(name: str, func: Callable[[], Any], param: str | None = None) -> Any:
    try:
        return func()
    except (
        _postfix_syntax.PostfixSyntaxError,
        _postfix_syntax.PostfixValidationError,
        _postfix_role.PostfixRoleError,
    ) as exc:
        message = str(exc)
        if param and param not in message:
            message = f"parameter {param}: {message}"
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"{name}: {message}") from None


def postfix_value(value: Any, param: str | None = None) -> str:
    """Render a Python value (bool, int, str, list) as a Postfix parameter value."""
    return _wrap("postfix_value", lambda: _postfix_syntax.render_value(value), param)


def postfix_table(path: str, table_type: str = "hash", param: str | None = None) -> str:
    """Return ``type:path``."""
    return _wrap("postfix_table", lambda: _postfix_syntax.table_ref(table_type, path), param)


def postfix_map(entries: Any) -> str:
    """Render a mapping or [key, value] pairs as the text of a lookup table source file."""
    return _wrap("postfix_map", lambda: _postfix_syntax.render_table(entries))


def postfix_cidrs(value: Any, param: str = "mynetworks") -> list[str]:
    """Validate and normalize a list of addresses and networks."""
    return _wrap("postfix_cidrs", lambda: _postfix_networks.validate_cidr_list(param, value), param)


def postfix_restrictions(
    value: Any, param: str = "smtpd_recipient_restrictions", restriction_classes: list[str] | None = None
) -> list[str]:
    """Validate a restriction list and return its normalized entries."""
    return _wrap(
        "postfix_restrictions",
        lambda: _postfix_restrictions.validate_restrictions(param, value, restriction_classes or ()),
        param,
    )


def postfix_role_fragment(settings: Any, certificate: Any = None) -> dict[str, Any]:
    """Check the postfix role's variables; return its fragment for postfix_config."""
    return _wrap("postfix_role_fragment", lambda: _postfix_role.fragment(settings, certificate))


def postfix_fragment_name(role: str) -> str:
    """The file name of *role*'s Postfix fragment (the one constant of it)."""
    try:
        return _postfix_fragment_names.fragment_name(role)
    except KeyError:
        known = ", ".join(_postfix_fragment_names.FRAGMENT_NAMES)
        raise AnsibleFilterError(f"postfix_fragment_name: no fragment for {role!r} (known: {known})") from None


def postfix_role_tables(settings: Any, header: str = "", secrets: bool = False) -> dict[str, Any]:
    """Check the postfix role's variables; return the text of the tables it writes.

    Legitimate choices that must not go unnoticed are shown as warnings (once: not in the
    call with *secrets*, which the role makes after the first).
    """
    result = _wrap("postfix_role_tables", lambda: _postfix_role.tables(settings, header, secrets))
    if not secrets:
        for warning in result["warnings"]:
            Display().warning(f"postfix_role_tables: {warning}")
    return result


class FilterModule:
    """Postfix filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "postfix_value": postfix_value,
            "postfix_table": postfix_table,
            "postfix_map": postfix_map,
            "postfix_cidrs": postfix_cidrs,
            "postfix_restrictions": postfix_restrictions,
            "postfix_fragment_name": postfix_fragment_name,
            "postfix_role_fragment": postfix_role_fragment,
            "postfix_role_tables": postfix_role_tables,
        }
