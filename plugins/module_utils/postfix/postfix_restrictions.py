# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Smtpd restriction lists: the restrictions Postfix knows, their arguments, and relay protection.

``postfix check`` accepts an unknown restriction, and smtpd then answers ``451 4.3.5``; the
parser here refuses it first.  Every error names the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import (
    TABLE_TOKEN_RE,
    PostfixSyntaxError,
    PostfixValidationError,
    expand_value,
    render_value,
    split_list,
)

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

_DNS_DOMAIN_RE = re.compile(r"^(?=.{1,253}\Z)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_-]+\.?\Z")
_DNS_REPLY_RE = re.compile(r"^[0-9.\[\];.]+\Z")
_POLICY_RE = re.compile(r"^(inet:(\[[^\]]+\]|[A-Za-z0-9_.-]+):[A-Za-z0-9_-]+|unix:\S+)\Z")


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
        match = TABLE_TOKEN_RE.match(arg)
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
            if TABLE_TOKEN_RE.match(token) and not token.startswith(("http:", "https:")):
                entries.append(Restriction(token))
                continue
            looks_like_name = bool(re.match(r"^[a-z][a-z0-9_]*\Z", token))
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
        softened = position > 0 and entries[position - 1].name == "warn_if_reject" and entry.name != "permit"
        if entry.name in UNCONDITIONAL and not softened:
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


def validate_relay_protection(main: Mapping[str, Any], where: str = "") -> None:
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
        f"{where}parameters smtpd_relay_restrictions and smtpd_recipient_restrictions: neither contains any of "
        f"{', '.join(RELAY_BLOCKERS)}; Postfix would be an open relay and smtpd refuses all mail"
    )


def restriction_params(main: Mapping[str, Any]) -> list[str]:
    """Return the parameters of *main* that hold restriction lists (see is_restriction_param)."""
    classes = split_list(main.get("smtpd_restriction_classes", ""))
    return [name for name in main if is_restriction_param(name, classes)]


def is_restriction_param(name: str, restriction_classes: Iterable[str] = ()) -> bool:
    """Whether *name* holds a restriction list: the smtpd_*_restrictions, any other ``*_restrictions``
    parameter (e.g. ``mua_client_restrictions`` used by master.cf overrides), or a restriction class."""
    return name in RESTRICTION_PARAMS or name.endswith("_restrictions") or name in restriction_classes
