# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that render and validate Postfix configuration values (documented in *.yml)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragments import (
    FragmentError,
    render_fragment,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_networks import validate_cidr_list
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_restrictions import (
    validate_restrictions,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_role import (
    PostfixRoleError,
    fragment,
    tables,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import (
    PostfixSyntaxError,
    PostfixValidationError,
    render_table,
    render_value,
    table_ref,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_table_files import table_state


def _wrap(name: str, func: Callable[[], Any], param: str | None = None) -> Any:
    try:
        return func()
    except (PostfixSyntaxError, PostfixValidationError, PostfixRoleError) as exc:
        message = str(exc)
        if param and param not in message:
            message = f"parameter {param}: {message}"
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"{name}: {message}") from None


def postfix_value(value: Any, param: str | None = None) -> str:
    """Render a Python value (bool, int, str, list) as a Postfix parameter value."""
    return _wrap("postfix_value", lambda: render_value(value), param)


def postfix_table(path: str, table_type: str = "hash", param: str | None = None) -> str:
    """Return ``type:path``."""
    return _wrap("postfix_table", lambda: table_ref(table_type, path), param)


def postfix_map(entries: Any) -> str:
    """Render a mapping or [key, value] pairs as the text of a lookup table source file."""
    return _wrap("postfix_map", lambda: render_table(entries))


def postfix_cidrs(value: Any, param: str = "mynetworks") -> list[str]:
    """Validate and normalize a list of addresses and networks."""
    return _wrap("postfix_cidrs", lambda: validate_cidr_list(param, value), param)


def postfix_restrictions(
    value: Any, param: str = "smtpd_recipient_restrictions", restriction_classes: list[str] | None = None
) -> list[str]:
    """Validate a restriction list and return its normalized entries."""
    return _wrap("postfix_restrictions", lambda: validate_restrictions(param, value, restriction_classes or ()), param)


def postfix_role_fragment(settings: Any, certificate: Any = None) -> dict[str, Any]:
    """Check the postfix role's variables; return its fragment for postfix_config."""
    return _wrap("postfix_role_fragment", lambda: fragment(settings, certificate))


def _wanted_table_state(entry: Any) -> str | None:
    """The table_state a postfix_config tables entry asks for; None when the controller cannot tell.

    Owners and groups given by name are resolved on the host only, so such an entry is never
    taken as unchanged here.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
        raise AnsibleFilterError("postfix_fragments_unchanged: each table needs a path and a text content")
    content = entry["content"]
    if content and not content.endswith("\n"):
        content += "\n"
    ids = []
    for key in ("owner", "group"):
        value = entry.get(key)
        if value is None or value == "":
            ids.append(0)
        elif isinstance(value, int) or str(value).isdigit():
            ids.append(int(value))
        else:
            return None
    try:
        mode = int(str(entry.get("mode") or "0644"), 8)
    except ValueError:
        return None
    return table_state(content, ids[0], ids[1], mode)


def postfix_fragments_unchanged(fragments: Any, texts: Any, tables: Any = None, table_states: Any = None) -> bool:
    """Whether every fragment of *fragments* (name -> data, None: no fragment) is already *texts* (name -> text).

    *texts* is the fact postfix_fragment_texts (the fragment_texts of the last postfix_config call
    in the play); when it is not known (None), the answer is False, so the caller runs its call.
    With *tables* (the call's tables option), each must also be current on the host as the fact
    postfix_table_states (*table_states*) shows it, with the same text, owner, group and mode.
    """
    if texts is None or (tables and table_states is None):
        return False
    if not isinstance(fragments, dict) or not isinstance(texts, dict):
        raise AnsibleFilterError("postfix_fragments_unchanged: expects a dict of fragments and a dict of texts")
    if tables and (not isinstance(tables, list) or not isinstance(table_states, dict)):
        raise AnsibleFilterError("postfix_fragments_unchanged: expects a list of tables and a dict of table states")
    try:
        unchanged = all(
            texts.get(name) == (None if data is None else render_fragment(name, data))
            for name, data in fragments.items()
        )
    except FragmentError as exc:
        raise AnsibleFilterError(f"postfix_fragments_unchanged: {exc}") from None
    for entry in tables or []:
        wanted = _wanted_table_state(entry)
        unchanged = unchanged and wanted is not None and table_states.get(entry.get("path")) == wanted
    return unchanged


def postfix_preflight_done(
    names: Any,
    host: Any,
    texts: Any,
    fragment_dir: Any,
    *,
    present: Any = (),
    absent: Any = (),
) -> bool:
    """Whether a role's mail_packages call would only confirm what the postfix role's run already found.

    *host* is the fact postfix_host (the postfix role's fragment directory and every package installed on the
    host), *texts* the fact postfix_fragment_texts. True when the role's postfix fragment directory is the one
    the postfix role made, every package of *names* is installed, every fragment of *present* is on the host
    and none of *absent* is. Without the facts (the postfix role is not in the play) the answer is False, so the
    role makes its call.
    """
    if host is None or texts is None:
        return False
    if not isinstance(host, dict) or not isinstance(texts, dict):
        raise AnsibleFilterError("postfix_preflight_done: expects the facts postfix_host and postfix_fragment_texts")
    for label, value in (("names", names), ("present", present), ("absent", absent)):
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
            raise AnsibleFilterError(f"postfix_preflight_done: {label} must be a list of strings")
    packages = host.get("packages")
    if host.get("fragment_dir") != fragment_dir or not isinstance(packages, list):
        return False
    installed = set(packages)
    return (
        all(name in installed for name in names)
        and all(texts.get(name) is not None for name in present)
        and all(texts.get(name) is None for name in absent)
    )


def postfix_role_tables(settings: Any, header: str = "", secrets: bool = False) -> dict[str, Any]:
    """Check the postfix role's variables; return the text of the tables it writes.

    Legitimate choices that must not go unnoticed are shown as warnings (once: not in the
    call with *secrets*, which the role makes after the first).
    """
    result = _wrap("postfix_role_tables", lambda: tables(settings, header, secrets))
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
            "postfix_role_fragment": postfix_role_fragment,
            "postfix_role_tables": postfix_role_tables,
            "postfix_fragments_unchanged": postfix_fragments_unchanged,
            "postfix_preflight_done": postfix_preflight_done,
        }
