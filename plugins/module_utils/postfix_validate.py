# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validate a Postfix configuration in Python.

``postfix check`` accepts unknown restrictions, invalid CIDRs and missing lookup tables;
smtpd then answers ``451 4.3.5 Server configuration error`` at runtime.  The functions here
catch those mistakes before a candidate configuration replaces the live one.  Every error
names the parameter it was found in.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix_syntax import (
    PostfixSyntaxError,
    is_valid_param_name,
    render_value,
    split_list,
)


class PostfixValidationError(ValueError):
    """A configuration value would break Postfix; the message names the parameter."""


# ---------------------------------------------------------------------------
# Restrictions
# ---------------------------------------------------------------------------

ARG_NONE = "none"
ARG_TABLE = "table"
ARG_DNS = "dns"
ARG_POLICY = "policy"
ARG_NUMBER = "number"
ARG_MODIFIER = "modifier"

ARG_DESCRIPTIONS = {
    ARG_TABLE: "a type:table lookup table",
    ARG_DNS: "a DNS list domain (optionally domain=d.d.d.d)",
    ARG_POLICY: "a policy server endpoint (inet:host:port or unix:path)",
    ARG_NUMBER: "a number of seconds",
    ARG_MODIFIER: "a following restriction",
}

_NO_ARG = (
    # generic
    "permit",
    "reject",
    "defer",
    "defer_if_permit",
    "defer_if_reject",
    "reject_unauth_pipelining",
    "reject_multi_recipient_bounce",
    "reject_plaintext_session",
    # client
    "permit_inet_interfaces",
    "permit_mynetworks",
    "permit_sasl_authenticated",
    "permit_tls_clientcerts",
    "permit_tls_all_clientcerts",
    "reject_unknown_client_hostname",
    "reject_unknown_client",
    "reject_unknown_reverse_client_hostname",
    "reject_unknown_forward_client_hostname",
    # helo
    "reject_invalid_helo_hostname",
    "reject_invalid_hostname",
    "reject_non_fqdn_helo_hostname",
    "reject_non_fqdn_hostname",
    "reject_unknown_helo_hostname",
    "reject_unknown_hostname",
    # sender
    "reject_authenticated_sender_login_mismatch",
    "reject_known_sender_login_mismatch",
    "reject_non_fqdn_sender",
    "reject_sender_login_mismatch",
    "reject_unauthenticated_sender_login_mismatch",
    "reject_unknown_sender_domain",
    "reject_unlisted_sender",
    "reject_unverified_sender",
    # recipient
    "permit_auth_destination",
    "permit_mx_backup",
    "reject_non_fqdn_recipient",
    "reject_unauth_destination",
    "defer_unauth_destination",
    "reject_unknown_recipient_domain",
    "reject_unlisted_recipient",
    "check_recipient_maps",
    "reject_unverified_recipient",
)

_TABLE_ARG = (
    "check_ccert_access",
    "check_client_access",
    "check_client_a_access",
    "check_client_mx_access",
    "check_client_ns_access",
    "check_reverse_client_hostname_access",
    "check_reverse_client_hostname_a_access",
    "check_reverse_client_hostname_mx_access",
    "check_reverse_client_hostname_ns_access",
    "check_sasl_access",
    "check_helo_access",
    "check_helo_a_access",
    "check_helo_mx_access",
    "check_helo_ns_access",
    "check_sender_access",
    "check_sender_a_access",
    "check_sender_mx_access",
    "check_sender_ns_access",
    "check_recipient_access",
    "check_recipient_a_access",
    "check_recipient_mx_access",
    "check_recipient_ns_access",
    "check_etrn_access",
)

_DNS_ARG = (
    "reject_rbl_client",
    "reject_rhsbl_client",
    "reject_rhsbl_reverse_client",
    "reject_rhsbl_helo",
    "reject_rhsbl_sender",
    "reject_rhsbl_recipient",
    "permit_dnswl_client",
    "permit_rhswl_client",
)

#: Every smtpd restriction name known to Postfix 3.x, mapped to the kind of argument it takes.
RESTRICTIONS: dict[str, str] = {}
RESTRICTIONS.update(dict.fromkeys(_NO_ARG, ARG_NONE))
RESTRICTIONS.update(dict.fromkeys(_TABLE_ARG, ARG_TABLE))
RESTRICTIONS.update(dict.fromkeys(_DNS_ARG, ARG_DNS))
RESTRICTIONS["check_policy_service"] = ARG_POLICY
RESTRICTIONS["sleep"] = ARG_NUMBER
RESTRICTIONS["warn_if_reject"] = ARG_MODIFIER

#: Restrictions after which nothing else in the list is ever evaluated.
UNCONDITIONAL = ("permit", "reject", "defer")

#: Restrictions that stop mail relaying (Postfix refuses to start smtpd without one).
RELAY_BLOCKERS = ("reject_unauth_destination", "defer_unauth_destination", "reject", "defer", "defer_if_permit")

#: Postfix's built-in default for smtpd_relay_restrictions (2.10 and later).
DEFAULT_RELAY_RESTRICTIONS = "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"

RESTRICTION_PARAMS = (
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_recipient_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions",
    "smtpd_etrn_restrictions",
)

CIDR_PARAMS = ("mynetworks",)

_DNS_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_-]+\.?$")
_DNS_REPLY_RE = re.compile(r"^[0-9.\[\];.]+$")
_POLICY_RE = re.compile(r"^(inet:(\[[^\]]+\]|[A-Za-z0-9_.-]+):[A-Za-z0-9_-]+|unix:\S+)$")
_TABLE_TOKEN_RE = re.compile(r"^([a-z][a-z0-9_]*):(.+)$", re.DOTALL)


class Restriction(NamedTuple):
    """One parsed restriction entry: its name and its argument ('' when it has none)."""

    name: str
    arg: str = ""

    def __str__(self) -> str:
        return f"{self.name} {self.arg}" if self.arg else self.name


def _restriction_tokens(param: str, items: Any) -> list[str]:
    try:
        return split_list(items)
    except PostfixSyntaxError as exc:
        raise PostfixValidationError(f"parameter {param}: {exc}") from exc


def _check_argument(param: str, name: str, kind: str, arg: str) -> None:
    where = f"parameter {param}: restriction '{name} {arg}'"
    if kind == ARG_TABLE:
        match = _TABLE_TOKEN_RE.match(arg)
        if not match:
            raise PostfixValidationError(f"{where}: argument must be {ARG_DESCRIPTIONS[ARG_TABLE]}")
    elif kind == ARG_DNS:
        domain, _sep, reply = arg.partition("=")
        if not _DNS_DOMAIN_RE.match(domain) or "." not in domain.strip("."):
            raise PostfixValidationError(f"{where}: '{domain}' is not a valid DNS list domain")
        if _sep and not (reply and _DNS_REPLY_RE.match(reply)):
            raise PostfixValidationError(f"{where}: '{reply}' is not a valid reply address pattern")
    elif kind == ARG_POLICY:
        if not _POLICY_RE.match(arg):
            raise PostfixValidationError(f"{where}: argument must be {ARG_DESCRIPTIONS[ARG_POLICY]}")
    elif kind == ARG_NUMBER and not arg.isdigit():
        raise PostfixValidationError(f"{where}: argument must be {ARG_DESCRIPTIONS[ARG_NUMBER]}")


def parse_restrictions(param: str, items: Any, restriction_classes: Iterable[str] = ()) -> list[Restriction]:
    """Parse a restriction list into entries, checking names and arguments.

    *items* may be a string or a list; list items may themselves hold several restrictions.
    A bare ``type:table`` entry is accepted (Postfix treats it as a check_*_access of the context).
    """
    classes = set(restriction_classes)
    tokens = _restriction_tokens(param, items)
    entries: list[Restriction] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        kind = RESTRICTIONS.get(token)
        if kind is None:
            if token in classes:
                entries.append(Restriction(token))
                continue
            if _TABLE_TOKEN_RE.match(token) and not token.startswith(("http:", "https:")):
                entries.append(Restriction(token))
                continue
            looks_like_name = bool(re.match(r"^[a-z][a-z0-9_]*$", token))
            if entries and RESTRICTIONS.get(entries[-1].name) == ARG_NONE and not looks_like_name:
                raise PostfixValidationError(
                    f"parameter {param}: unexpected argument '{token}' after '{entries[-1].name}', "
                    "which takes no argument"
                )
            raise PostfixValidationError(f"parameter {param}: unknown restriction '{token}'")
        if kind in (ARG_NONE, ARG_MODIFIER):
            if kind == ARG_MODIFIER and (index >= len(tokens) or tokens[index] not in RESTRICTIONS):
                raise PostfixValidationError(f"parameter {param}: '{token}' must be followed by a restriction")
            entries.append(Restriction(token))
            continue
        if index >= len(tokens) or tokens[index] in RESTRICTIONS or tokens[index] in classes:
            raise PostfixValidationError(
                f"parameter {param}: restriction '{token}' requires {ARG_DESCRIPTIONS[kind]} as its argument"
            )
        arg = tokens[index]
        index += 1
        _check_argument(param, token, kind, arg)
        entries.append(Restriction(token, arg))
    for position, entry in enumerate(entries[:-1]):
        if entry.name in UNCONDITIONAL and (position == 0 or entries[position - 1].name != "warn_if_reject"):
            unreachable = ", ".join(str(e) for e in entries[position + 1 :])
            raise PostfixValidationError(
                f"parameter {param}: '{entry.name}' is not the last restriction; "
                f"the entries after it are never evaluated: {unreachable}"
            )
    return entries


def validate_restrictions(param: str, items: Any, restriction_classes: Iterable[str] = ()) -> list[str]:
    """Validate a restriction list and return it normalized, one ``name [arg]`` string per entry."""
    return [str(entry) for entry in parse_restrictions(param, items, restriction_classes)]


def restriction_names(items: Any) -> list[str]:
    """Return the first word of every entry of a restriction list (no validation)."""
    names = []
    tokens = split_list(items)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        names.append(token)
        index += 2 if RESTRICTIONS.get(token) in (ARG_TABLE, ARG_DNS, ARG_POLICY, ARG_NUMBER) else 1
    return names


def group_restrictions(items: Any) -> list[str]:
    """Group a restriction list into ``name [arg]`` entries without validating it."""
    entries = []
    tokens = split_list(items)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if RESTRICTIONS.get(token) in (ARG_TABLE, ARG_DNS, ARG_POLICY, ARG_NUMBER) and index + 1 < len(tokens):
            entries.append(f"{token} {tokens[index + 1]}")
            index += 2
        else:
            entries.append(token)
            index += 1
    return entries


def validate_relay_protection(main: Mapping[str, Any]) -> None:
    """Fail unless smtpd_relay_restrictions or smtpd_recipient_restrictions stops relaying.

    An absent smtpd_relay_restrictions means Postfix's default, which contains
    defer_unauth_destination.  ``$name`` references are expanded from *main*.
    """
    relay = main.get("smtpd_relay_restrictions", DEFAULT_RELAY_RESTRICTIONS)
    recipient = main.get("smtpd_recipient_restrictions", "")
    for value in (relay, recipient):
        names = restriction_names(expand_value(render_value(value), main))
        if any(name in RELAY_BLOCKERS for name in names):
            return
    raise PostfixValidationError(
        "parameters smtpd_relay_restrictions and smtpd_recipient_restrictions: neither contains any of "
        f"{', '.join(RELAY_BLOCKERS)}; Postfix would be an open relay and smtpd refuses all mail"
    )


# ---------------------------------------------------------------------------
# CIDR lists
# ---------------------------------------------------------------------------

_BRACKETED_RE = re.compile(r"^\[([^\]]+)\](?:/(\d+))?$")


def _normalize_network(param: str, item: str) -> str:
    bracketed = _BRACKETED_RE.match(item)
    if bracketed:
        address, prefix = bracketed.group(1), bracketed.group(2)
    else:
        address, _sep, prefix = item.partition("/")
        prefix = prefix if _sep else None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as exc:
        raise PostfixValidationError(f"parameter {param}: '{item}' is not an IP address or network") from exc
    if prefix is not None and not prefix.isdigit():
        raise PostfixValidationError(f"parameter {param}: '{item}' has an invalid prefix length")
    if bracketed and ip.version == 4:
        raise PostfixValidationError(f"parameter {param}: '{item}': only IPv6 addresses are written in [brackets]")
    if prefix is None:
        return f"[{_ipv6_text(ip)}]" if isinstance(ip, ipaddress.IPv6Address) else ip.compressed
    try:
        net = ipaddress.ip_network(f"{ip.compressed}/{prefix}", strict=True)
    except ValueError as exc:
        if int(prefix) > ip.max_prefixlen:
            reason = f"prefix /{prefix} is longer than {ip.max_prefixlen} bits"
        else:
            reason = f"host bits are set (did you mean {ipaddress.ip_network(f'{ip}/{prefix}', strict=False)}?)"
        raise PostfixValidationError(f"parameter {param}: '{item}' is not a valid network: {reason}") from exc
    if net.version == 6:
        return f"[{_ipv6_text(net.network_address)}]/{net.prefixlen}"
    return net.with_prefixlen


def _ipv6_text(address: ipaddress.IPv6Address) -> str:
    """Compressed IPv6 text; IPv4-mapped addresses keep their dotted quad on every Python version."""
    mapped = address.ipv4_mapped
    if mapped is not None:
        return f"::ffff:{mapped}"
    return address.compressed


def validate_cidr_list(param: str, items: Any) -> list[str]:
    """Validate a list of addresses/networks (e.g. mynetworks) and return it normalized.

    Accepted items: IPv4/IPv6 addresses and networks (IPv6 bare or in Postfix's ``[addr]/len``
    form), ``!`` negations, ``type:table`` references, ``/file/name`` pattern files and
    ``$parameter`` expansions.  IPv6 is returned in bracketed form.
    """
    try:
        tokens = split_list(items)
    except PostfixSyntaxError as exc:
        raise PostfixValidationError(f"parameter {param}: {exc}") from exc
    result = []
    for token in tokens:
        negate = token.startswith("!")
        item = token[1:] if negate else token
        if not item:
            raise PostfixValidationError(f"parameter {param}: '{token}' is not an IP address or network")
        if item.startswith("$") or item.startswith("/"):
            normalized = item
        else:
            try:
                normalized = _normalize_network(param, item)
            except PostfixValidationError:
                match = _TABLE_TOKEN_RE.match(item)
                if not match or match.group(1) not in KNOWN_TABLE_TYPES:
                    raise
                normalized = item
        result.append(f"!{normalized}" if negate else normalized)
    return result


# ---------------------------------------------------------------------------
# Lookup tables
# ---------------------------------------------------------------------------

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
    r"(^|_)(milters|transport|filter|path|service_name|relayhost|service)$|^(relayhost|content_filter)$"
)
#: Parameters that take lookup tables: any ``word:`` token in them is a table reference.
_TABLE_PARAM_RE = re.compile(r"(_maps|_checks|_domains|_networks)$|^(mydestination|debug_peer_list|mynetworks)$")
#: Parameters whose tables Postfix creates itself (caches) or that name an output (newaliases):
#: their type is checked, their file is not.
_NO_FILE_CHECK_PARAM_RE = re.compile(r"(_cache_database|_cache_map|_cache_name|^address_verify_map|^alias_database)$")


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
    match = _TABLE_TOKEN_RE.match(token)
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


# ---------------------------------------------------------------------------
# Whole configuration
# ---------------------------------------------------------------------------

_EXPANSION_RE = re.compile(r"\$(?:\{([A-Za-z0-9_.-]+)\}|\(([A-Za-z0-9_.-]+)\)|([A-Za-z0-9_]+))")


def expand_value(value: str, main: Mapping[str, Any], depth: int = 10) -> str:
    """Expand ``$name``, ``${name}`` and ``$(name)`` from *main*; unknown names stay as they are."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in main:
            try:
                return render_value(main[name])
            except PostfixSyntaxError:
                pass
        return match.group(0)

    for _attempt in range(depth):
        expanded = _EXPANSION_RE.sub(replace, value)
        if expanded == value:
            break
        value = expanded
    return value


def _check_value_type(param: str, value: Any) -> None:
    if not is_valid_param_name(param):
        raise PostfixValidationError(f"parameter {param!r}: not a valid parameter name")
    if isinstance(value, (list, tuple)):
        for item in value:
            if not isinstance(item, str):
                raise PostfixValidationError(
                    f"parameter {param}: list items must be strings, got {type(item).__name__} ({item!r})"
                )
    elif value is not None and not isinstance(value, (str, int, bool)):
        raise PostfixValidationError(
            f"parameter {param}: value must be a string, number, boolean or list of strings, got {type(value).__name__}"
        )
    try:
        render_value(value)
    except PostfixSyntaxError as exc:
        raise PostfixValidationError(f"parameter {param}: {exc}") from exc


def restriction_params(main: Mapping[str, Any]) -> list[str]:
    """Return the parameters of *main* that hold restriction lists (see is_restriction_param)."""
    classes = split_list(main.get("smtpd_restriction_classes", ""))
    return [name for name in main if is_restriction_param(name, classes)]


def is_restriction_param(name: str, restriction_classes: Iterable[str] = ()) -> bool:
    """Whether *name* holds a restriction list: the smtpd_*_restrictions, any other ``*_restrictions``
    parameter (e.g. ``mua_client_restrictions`` used by master.cf overrides), or a restriction class."""
    return name in RESTRICTION_PARAMS or name.endswith("_restrictions") or name in restriction_classes


def _is_endpoint_param(name: str) -> bool:
    return bool(_ENDPOINT_PARAM_RE.search(name))


def validate_main(
    main: Mapping[str, Any],
    supported_types: Iterable[str] | None,
    exists: Callable[[str], bool] = os.path.exists,
) -> list[str]:
    """Validate a merged main.cf mapping; raise one error naming every bad parameter.

    Returns warnings (things that could not be checked).
    """
    errors: list[str] = []
    warnings: list[str] = []
    supported = None if supported_types is None else list(supported_types)

    def attempt(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PostfixValidationError as exc:
            errors.append(str(exc))
            return None

    typed_ok = set()
    for name, value in main.items():
        try:
            _check_value_type(name, value)
        except PostfixValidationError as exc:
            errors.append(str(exc))
        else:
            typed_ok.add(name)
    classes = split_list(main.get("smtpd_restriction_classes", "")) if "smtpd_restriction_classes" in typed_ok else []
    for class_name in classes:
        if class_name not in main:
            errors.append(
                f"parameter smtpd_restriction_classes: restriction class '{class_name}' has no definition in main.cf"
            )
        elif class_name in RESTRICTIONS:
            errors.append(f"parameter smtpd_restriction_classes: '{class_name}' is a built-in restriction name")
    restriction_set = set(restriction_params(main))

    for name, value in main.items():
        if name not in typed_ok:
            continue
        expanded = expand_value(render_value(value), main)
        if name in restriction_set:
            entries = attempt(parse_restrictions, name, expanded, classes)
            if entries is None:
                continue
            for entry in entries:
                if RESTRICTIONS.get(entry.name) == ARG_TABLE:
                    result = attempt(validate_table_refs, name, entry.arg, supported, exists, strict=True)
                elif entry.name not in RESTRICTIONS and entry.name not in classes:
                    result = attempt(validate_table_refs, name, entry.name, supported, exists, strict=True)
                else:
                    continue
                warnings.extend(result or [])
            continue
        if name in CIDR_PARAMS:
            normalized = attempt(validate_cidr_list, name, expanded)
            if normalized is None:
                continue
            expanded = ", ".join(normalized)
        if _is_endpoint_param(name):
            continue
        strict = bool(_TABLE_PARAM_RE.search(name))
        check_files = not _NO_FILE_CHECK_PARAM_RE.search(name)
        result = attempt(validate_table_refs, name, expanded, supported, exists, strict=strict, check_files=check_files)
        warnings.extend(result or [])

    if not errors:
        attempt(validate_relay_protection, main)
    if errors:
        raise PostfixValidationError("invalid Postfix configuration:\n- " + "\n- ".join(errors))
    return warnings


def parse_postconf_warnings(stderr: str | bytes | None) -> list[str]:
    """Return the ``...: warning: ...`` lines of postconf/postfix output."""
    if not stderr:
        return []
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", errors="replace")
    return [line.strip() for line in stderr.splitlines() if re.search(r"(^|: )warning: ", line.strip())]


def normalize_main(main: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of *main* with CIDR parameters normalized (IPv6 in [brackets]).

    Invalid values are left as they are; validate_main reports them.
    """
    result = dict(main)
    for name in CIDR_PARAMS:
        if name in result and isinstance(result[name], (str, list, tuple)):
            with contextlib.suppress(PostfixValidationError):
                result[name] = validate_cidr_list(name, result[name])
    return result
