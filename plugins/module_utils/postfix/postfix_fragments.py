# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Load and merge Postfix configuration fragments.

A fragment is a JSON file ``NN-name.json`` in the fragment directory.  Fragments are merged in
sorted file name order::

    {"main": {"param": "value" | 1 | true | ["list", "items"]},
     "overrides": ["param"],
     "insert": [{"param": "smtpd_recipient_restrictions", "after": "reject_unauth_destination",
                 "values": ["check_policy_service unix:private/policy-spf"]}],
     "master": [{"name": "submission", "type": "inet", "command": "smtpd", "args": ["-o", "a=b"]}],
     "master_overrides": ["submission/inet"],
     "owns": ["content_filter"],
     "master_owns": ["smtp-amavis/unix"],
     "allow_open_relay": false,
     "trusted_policy_services": ["inet:policy.example.org:10040"]}

A parameter in ``owns`` belongs to that fragment alone: no other fragment may set it (not even with
``overrides``), insert into it, or pass it as ``-o`` to one of its master.cf services; a service in
``master_owns`` (which the fragment defines) may not be defined by another (not even with
``master_overrides``). The amavis role owns the content filter this way, so that no other role's
variables can route mail around it.

``allow_open_relay: true`` in any fragment lets the merged configuration relay for anyone
(postfix_config refuses an open relay otherwise); ``trusted_policy_services`` names policy
services on other hosts that may decide about relaying (any other remote one is refused).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_restrictions import (
    group_restrictions,
    is_restriction_param,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_state_text import fragment_text
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import (
    MasterService,
    PostfixSyntaxError,
    is_valid_param_name,
    normalize_value,
    split_list,
)

FRAGMENT_KEYS = (
    "main",
    "overrides",
    "insert",
    "master",
    "master_overrides",
    "owns",
    "master_owns",
    "allow_open_relay",
    "trusted_policy_services",
)
INSERT_KEYS = ("param", "after", "before", "values")
FRAGMENT_NAME_RE = re.compile(r"^\d+-[A-Za-z0-9][A-Za-z0-9_.-]*\.json\Z")
DEFAULT_FRAGMENT_DIR = "/etc/postfix/postmaster.d"
#: The collection's own main.cf parameters (such as postmaster_mua_sasl_auth_enable, which the
#: submission and smtps services read through ``-o smtpd_sasl_auth_enable=$...``) start with this.
OWN_PARAM_PREFIX = "postmaster_"


class FragmentError(ValueError):
    """A fragment is malformed, or two fragments conflict; the message names the files."""


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise FragmentError(f"key '{key}' appears twice")
        result[key] = value
    return result


def parse_fragment(name: str, text: str) -> dict[str, Any]:
    """Parse and check one fragment's JSON text; errors name the fragment."""
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except FragmentError as exc:
        raise FragmentError(f"fragment {name}: {exc}") from exc
    except ValueError as exc:
        raise FragmentError(f"fragment {name}: invalid JSON: {exc}") from exc
    check_fragment(name, data)
    return data


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _check_main_value(name: str, key: Any, value: Any) -> None:
    if not isinstance(key, str) or not is_valid_param_name(key):
        raise FragmentError(f"fragment {name}: invalid main.cf parameter name {key!r}")
    if isinstance(value, list):
        if not _is_str_list(value):
            raise FragmentError(f"fragment {name}: main.{key}: list items must be strings")
        items = value
    elif isinstance(value, (str, bool, int)):
        items = [value] if isinstance(value, str) else []
    else:
        raise FragmentError(
            f"fragment {name}: main.{key}: value must be a string, number, boolean or list of strings, "
            f"got {type(value).__name__}"
        )
    for item in items:
        if "\n" in item or "\r" in item:
            raise FragmentError(f"fragment {name}: main.{key}: value contains a line break")


def _check_insert(name: str, index: int, entry: Any) -> None:
    where = f"fragment {name}: insert[{index}]"
    if not isinstance(entry, dict):
        raise FragmentError(f"{where}: must be an object")
    unknown = sorted(set(entry) - set(INSERT_KEYS))
    if unknown:
        raise FragmentError(f"{where}: unknown keys: {', '.join(unknown)}")
    param = entry.get("param")
    if not isinstance(param, str) or not is_valid_param_name(param):
        raise FragmentError(f"{where}: 'param' must be a parameter name")
    if "after" in entry and "before" in entry:
        raise FragmentError(f"{where} ({param}): use either 'after' or 'before', not both")
    for anchor in ("after", "before"):
        if anchor in entry and (not isinstance(entry[anchor], str) or not entry[anchor].strip()):
            raise FragmentError(f"{where} ({param}): '{anchor}' must be a non-empty string")
    values = entry.get("values")
    if not _is_str_list(values) or not values or not all(v.strip() for v in values):
        raise FragmentError(f"{where} ({param}): 'values' must be a non-empty list of non-empty strings")


def check_fragment(name: str, data: Any) -> None:
    """Raise FragmentError (naming the fragment) unless *data* follows the fragment schema."""
    if not isinstance(data, dict):
        raise FragmentError(f"fragment {name}: must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(FRAGMENT_KEYS))
    if unknown:
        raise FragmentError(
            f"fragment {name}: unknown top-level keys: {', '.join(unknown)} (allowed: {', '.join(FRAGMENT_KEYS)})"
        )
    if not isinstance(data.get("allow_open_relay", False), bool):
        raise FragmentError(f"fragment {name}: 'allow_open_relay' must be true or false")
    if not _is_str_list(data.get("trusted_policy_services", [])):
        raise FragmentError(f"fragment {name}: 'trusted_policy_services' must be a list of strings")
    main = data.get("main", {})
    if not isinstance(main, dict):
        raise FragmentError(f"fragment {name}: 'main' must be an object")
    for key, value in main.items():
        _check_main_value(name, key, value)
    for key in ("overrides", "master_overrides", "owns", "master_owns"):
        if not _is_str_list(data.get(key, [])):
            raise FragmentError(f"fragment {name}: '{key}' must be a list of strings")
    for key in data.get("overrides", []):
        if key not in main:
            raise FragmentError(f"fragment {name}: overrides lists '{key}', which its 'main' does not set")
    for key in data.get("owns", []):
        if not is_valid_param_name(key):
            raise FragmentError(f"fragment {name}: owns lists {key!r}, which is not a parameter name")
    inserts = data.get("insert", [])
    if not isinstance(inserts, list):
        raise FragmentError(f"fragment {name}: 'insert' must be a list")
    for index, entry in enumerate(inserts):
        _check_insert(name, index, entry)
    services = data.get("master", [])
    if not isinstance(services, list):
        raise FragmentError(f"fragment {name}: 'master' must be a list")
    keys = []
    for index, service in enumerate(services):
        try:
            keys.append(MasterService.from_dict(service).key)
        except PostfixSyntaxError as exc:
            raise FragmentError(f"fragment {name}: master[{index}]: {exc}") from exc
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise FragmentError(f"fragment {name}: master service {', '.join(duplicates)} is defined twice")
    for field in ("master_overrides", "master_owns"):
        for key in data.get(field, []):
            if key not in keys:
                raise FragmentError(f"fragment {name}: {field} lists '{key}', which its 'master' does not define")


def render_fragment(name: str, data: Any) -> str:
    """Check *data* and return the text of fragment file *name* (as the roles' to_nice_json(indent=2) writes it)."""
    if not isinstance(name, str) or not FRAGMENT_NAME_RE.match(name):
        raise FragmentError(f"fragment {name}: file name must look like NN-name.json")
    check_fragment(name, data)
    return fragment_text(data)


def load_fragments(directory: str, skip: Iterable[str] = ()) -> list[tuple[str, dict[str, Any]]]:
    """Read every ``*.json`` fragment of *directory*, in sorted file name order.

    The files named in *skip* are not read at all: the caller replaces or removes them, so a
    corrupt or older-schema file on disk cannot block its own replacement.
    """
    skipped = set(skip)
    try:
        names = sorted(entry for entry in os.listdir(directory) if entry.endswith(".json"))
    except OSError as exc:
        raise FragmentError(f"cannot read fragment directory {directory}: {exc.strerror or exc}") from exc
    fragments = []
    for name in names:
        path = os.path.join(directory, name)
        if name in skipped or not os.path.isfile(path):
            continue
        if not FRAGMENT_NAME_RE.match(name):
            raise FragmentError(f"fragment {name}: file name must look like NN-name.json")
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise FragmentError(f"fragment {name}: cannot read: {exc}") from exc
        fragments.append((name, parse_fragment(name, text)))
    return fragments


def trusted_policy_services(fragments: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """The remote policy services (``inet:host:port``) that some fragment trusts to decide about relaying."""
    return sorted({endpoint for _name, data in fragments for endpoint in data.get("trusted_policy_services", [])})


def open_relay_allowed(fragments: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """The names of the fragments that set ``allow_open_relay: true``."""
    return [name for name, data in fragments if data.get("allow_open_relay") is True]


def split_entries(param: str, value: Any) -> list[str]:
    """Split a list parameter into entries; restriction lists keep ``name arg`` together."""
    if is_restriction_param(param):
        return group_restrictions(value)
    if isinstance(value, list):
        return [item.strip() for item in value if item.strip()]
    return split_list(value)


def _entry_name(entry: str) -> str:
    words = entry.split(maxsplit=1)
    return words[0] if words else ""


def apply_insert(fragment: str, main: dict[str, Any], insert: Mapping[str, Any]) -> None:
    """Apply one ``insert`` entry to *main* in place (idempotent)."""
    param = insert["param"]
    values = [value.strip() for value in insert["values"]]
    if param not in main:
        main[param] = list(dict.fromkeys(values))
        return
    entries = split_entries(param, main[param])
    present = {normalize_value(entry) for entry in entries}
    missing = []
    for value in values:
        if normalize_value(value) not in present and value not in missing:
            missing.append(value)
    if not missing:
        main[param] = entries
        return
    if "after" in insert or "before" in insert:
        anchor = (insert.get("after") or insert.get("before")).strip()
        positions = [index for index, entry in enumerate(entries) if _entry_name(entry) == anchor]
        if not positions:
            where = "after" if "after" in insert else "before"
            raise FragmentError(
                f"fragment {fragment}: cannot insert into {param} {where} '{anchor}': "
                f"'{anchor}' is not in {param} ({', '.join(entries) or 'empty'})"
            )
        position = positions[0] + 1 if "after" in insert else positions[0]
    else:
        position = len(entries)
    main[param] = entries[:position] + missing + entries[position:]


def _owners(fragments: Sequence[tuple[str, Mapping[str, Any]]], field: str) -> dict[str, str]:
    """Who owns what: parameter (or service) -> the fragment whose *field* lists it."""
    owners: dict[str, str] = {}
    for name, data in fragments:
        for key in data.get(field, []):
            if key in owners and owners[key] != name:
                raise FragmentError(f"'{key}' is owned by both {owners[key]} and {name} ({field}); only one may own it")
            owners[key] = name
    return owners


def check_ownership(fragments: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Refuse a fragment that sets, inserts into or ``-o``-overrides what another fragment owns.

    ``overrides`` and ``master_overrides`` do not help: owning is stronger than winning.
    """
    owners = _owners(fragments, "owns")
    service_owners = _owners(fragments, "master_owns")
    for name, data in fragments:

        def foreign(key: str, name: str = name) -> str | None:
            owner = owners.get(key)
            return owner if owner is not None and owner != name else None

        for key in data.get("main", {}):
            owner = foreign(key)
            if owner:
                raise FragmentError(
                    f"main.cf parameter '{key}' belongs to {owner} (its \"owns\"); {name} may not set it, "
                    'not even with "overrides"'
                )
        for index, insert in enumerate(data.get("insert", [])):
            owner = foreign(insert.get("param", ""))
            if owner:
                raise FragmentError(
                    f"fragment {name}: insert[{index}] changes main.cf parameter '{insert['param']}', which belongs "
                    f'to {owner} (its "owns")'
                )
        for raw in data.get("master", []):
            service = MasterService.from_dict(raw)
            owner = service_owners.get(service.key)
            if owner is not None and owner != name:
                raise FragmentError(
                    f"master.cf service '{service.key}' belongs to {owner} (its \"master_owns\"); {name} may not "
                    'define it, not even with "master_overrides"'
                )
            for key in service.options():
                owner = foreign(key)
                if owner:
                    raise FragmentError(
                        f"master.cf service '{service.key}' of {name} sets -o {key}, which belongs to {owner} "
                        f'(its "owns"); only {owner} may set it'
                    )


def merge_fragments(
    fragments: Sequence[tuple[str, Mapping[str, Any]]],
) -> tuple[dict[str, Any], list[MasterService]]:
    """Merge fragments (already in order) into ``(main, services)``.

    A main.cf parameter or master.cf service set by two fragments is an error naming both
    files, unless the later fragment lists it in ``overrides``/``master_overrides``; what a
    fragment owns (``owns``/``master_owns``) no other fragment may touch at all.
    """
    for name, data in fragments:
        check_fragment(name, data)
    check_ownership(fragments)
    main: dict[str, Any] = {}
    origin: dict[str, str] = {}
    services: dict[str, MasterService] = {}
    service_origin: dict[str, str] = {}
    for name, data in fragments:
        overrides = set(data.get("overrides", []))
        for key, value in data.get("main", {}).items():
            if key in main and key not in overrides:
                raise FragmentError(
                    f"main.cf parameter '{key}' is set by both {origin[key]} and {name}; "
                    f'list it in "overrides" of {name} if it should win'
                )
            main[key] = list(value) if isinstance(value, list) else value
            origin[key] = name
        master_overrides = set(data.get("master_overrides", []))
        for raw in data.get("master", []):
            service = MasterService.from_dict(raw)
            if service.key in services and service.key not in master_overrides:
                raise FragmentError(
                    f"master.cf service '{service.key}' is defined by both {service_origin[service.key]} and "
                    f'{name}; list it in "master_overrides" of {name} if it should win'
                )
            services[service.key] = service
            service_origin[service.key] = name
    for name, data in fragments:
        for insert in data.get("insert", []):
            apply_insert(name, main, insert)
    merged = list(services.values())
    # Without master.cf services in the fragments the live master.cf stays, and may read them.
    return (drop_unreferenced_own_params(main, merged) if merged else main), merged


def _references(text: str, name: str) -> bool:
    return re.search(rf"\$(?:{re.escape(name)}\b|\{{{re.escape(name)}[}}?:]|\({re.escape(name)}\))", text) is not None


def drop_unreferenced_own_params(main: Mapping[str, Any], services: Sequence[MasterService]) -> dict[str, Any]:
    """Return *main* without the collection's own parameters that nothing refers to.

    ``postmaster_*`` parameters exist only to be read by master.cf services or other parameters
    (``$postmaster_mua_sasl_auth_enable`` in the submission and smtps services). On a host where
    no service reads one (submission and smtps both off), Postfix warns that it is unused, and a
    warning fails the candidate; so it is left out of main.cf there.
    """
    service_args = [str(arg) for service in services for arg in service.args]
    kept: dict[str, Any] = {}
    for key, value in main.items():
        if key.startswith(OWN_PARAM_PREFIX):
            others = [str(v) for k, v in main.items() if k != key] + service_args
            if not any(_references(text, key) for text in others):
                continue
        kept[key] = value
    return kept
