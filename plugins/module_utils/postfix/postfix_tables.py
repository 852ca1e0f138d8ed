# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lookup tables referenced as ``type:name``: which types exist, which files they need, and checks.

A reference to a table whose type this Postfix lacks, or whose file is missing, passes
``postfix check`` and breaks smtpd at run time; validate_table_refs catches both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_restrictions import (
    ARG_DNS,
    ARG_NUMBER,
    ARG_POLICY,
    RESTRICTIONS,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import (
    TABLE_TOKEN_RE,
    PostfixValidationError,
    split_list,
)

#: Compiled-file suffixes of file-backed indexed tables (source path + suffix must exist).
INDEXED_SUFFIXES: dict[str, tuple[str, ...]] = {
    "hash": (".db",),
    "btree": (".db",),
    "dbm": (".dir", ".pag"),
    "sdbm": (".dir", ".pag"),
    "lmdb": (".lmdb",),
    "cdb": (".cdb",),
}
#: Tables read directly from their source file.
FLAT_FILE_TYPES = ("regexp", "pcre", "cidr", "texthash")
#: Tables configured by a client configuration file (checked when the name is an absolute path).
CONFIG_FILE_TYPES = ("ldap", "mysql", "pgsql", "sqlite", "memcache", "mongodb")
#: Tables whose name is a nested table reference (proxy) or a {list} of them.
WRAPPER_TYPES = ("proxy",)
COMPOSITE_TYPES = ("unionmap", "pipemap")
#: Everything else needs no file.
NO_FILE_TYPES = (
    "static",
    "inline",
    "randmap",
    "fail",
    "environ",
    "internal",
    "nis",
    "nisplus",
    "netinfo",
    "tcp",
    "socketmap",
    "unix",
)
KNOWN_TABLE_TYPES = frozenset(
    (*INDEXED_SUFFIXES, *FLAT_FILE_TYPES, *CONFIG_FILE_TYPES, *WRAPPER_TYPES, *COMPOSITE_TYPES, *NO_FILE_TYPES)
)

#: Parameters whose values name services or endpoints, never lookup tables.
_ENDPOINT_PARAM_RE = re.compile(
    r"(^|_)(milters|transport|filter|path|service_name|relayhost|service)\Z|^(relayhost|content_filter)\Z"
)
#: Parameters that take lookup tables: any ``word:`` token in them is a table reference.
_TABLE_PARAM_RE = re.compile(r"(_maps|_checks|_domains|_networks)\Z|^(mydestination|debug_peer_list|mynetworks)\Z")
#: Parameters whose tables Postfix creates itself (caches) or that name an output (newaliases):
#: their type is checked, their file is not.
_NO_FILE_CHECK_PARAM_RE = re.compile(r"(_cache_database|_cache_map|_cache_name|^address_verify_map|^alias_database)\Z")


class TableRef(NamedTuple):
    """A ``type:name`` lookup table reference."""

    type: str
    name: str

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"


def _strip_braces(name: str) -> str | None:
    name = name.strip()
    if name.startswith("{") and name.endswith("}"):
        return name[1:-1]
    return None


def _parse_table_token(token: str, strict: bool) -> list[TableRef]:
    match = TABLE_TOKEN_RE.match(token)
    if not match:
        return []
    table_type, name = match.group(1), match.group(2)
    if not strict and table_type not in KNOWN_TABLE_TYPES:
        return []
    refs = [TableRef(table_type, name)]
    if table_type in WRAPPER_TYPES:
        refs.extend(_parse_table_token(name, strict=True))
    elif table_type in COMPOSITE_TYPES:
        inner = _strip_braces(name)
        if inner is not None:
            for inner_token in split_list(inner):
                refs.extend(_parse_table_token(inner_token, strict=True))
    return refs


def find_table_refs(value: Any, strict: bool = False) -> list[TableRef]:
    """Extract the lookup table references from a parameter value.

    ``proxy:hash:/x`` yields both ``proxy:hash:/x`` and ``hash:/x``; unionmap/pipemap
    ``{...}`` members are yielded too.  The endpoint after ``check_policy_service`` is skipped.
    With *strict* false only recognised table types count (so ``lmtp:unix:private/x`` is not a
    table); with *strict* true every ``word:name`` token is a reference.
    """
    refs: list[TableRef] = []
    tokens = split_list(value)
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
            continue
        if RESTRICTIONS.get(token) in (ARG_POLICY, ARG_DNS, ARG_NUMBER):
            skip_next = True
            continue
        refs.extend(_parse_table_token(token, strict))
    return refs


def table_files(ref: TableRef) -> list[str]:
    """Return the files that must exist for *ref* to be usable (empty when none are needed)."""
    if ref.type in INDEXED_SUFFIXES:
        return [ref.name + suffix for suffix in INDEXED_SUFFIXES[ref.type]]
    if ref.type in FLAT_FILE_TYPES:
        return [ref.name]
    if ref.type in CONFIG_FILE_TYPES and ref.name.startswith("/"):
        return [ref.name]
    return []


def validate_table_refs(
    param: str,
    value: Any,
    supported_types: Iterable[str] | None,
    exists: Callable[[str], bool] = os.path.exists,
    *,
    strict: bool = False,
    check_files: bool = True,
) -> list[str]:
    """Check the type and the files of every table referenced by *value*; return warnings.

    *supported_types* is the output of ``postconf -m`` (None skips the type check).
    *strict* makes every ``word:name`` token a table reference (see find_table_refs).
    """
    supported = None if supported_types is None else sorted(set(supported_types))
    warnings: list[str] = []
    for ref in find_table_refs(value, strict=strict):
        if supported is not None and ref.type not in supported:
            raise PostfixValidationError(
                f"parameter {param}: lookup table type '{ref.type}' (in '{ref}') is not supported by this "
                f"Postfix; supported types: {', '.join(supported)}"
            )
        files = table_files(ref) if check_files else []
        if not files:
            continue
        if "$" in ref.name:
            warnings.append(f"parameter {param}: cannot check the file of '{ref}' (unexpanded $parameter)")
            continue
        for path in files:
            if not path.startswith("/"):
                raise PostfixValidationError(f"parameter {param}: lookup table '{ref}' must use an absolute path")
            if not exists(path):
                hint = " (run postmap on the source file)" if ref.type in INDEXED_SUFFIXES else ""
                raise PostfixValidationError(
                    f"parameter {param}: lookup table '{ref}' needs {path}, which does not exist{hint}"
                )
    return warnings


def table_check_mode(param: str) -> tuple[bool, bool] | None:
    """How the table references of main.cf parameter *param* are checked: ``(strict, check_files)``.

    None for parameters whose values name services or endpoints, never tables (``*_transport``,
    ``relayhost``, ...).  *strict* when the parameter takes only tables (``*_maps``,
    ``mynetworks``, ...), so that every ``word:name`` token is a table; *check_files* is false
    for tables Postfix creates itself (caches) or writes (``alias_database``).
    """
    if _ENDPOINT_PARAM_RE.search(param):
        return None
    return bool(_TABLE_PARAM_RE.search(param)), not _NO_FILE_CHECK_PARAM_RE.search(param)
