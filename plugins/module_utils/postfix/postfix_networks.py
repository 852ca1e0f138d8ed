# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Address and network lists such as ``mynetworks``: validate and normalize CIDRs."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import (
    TABLE_TOKEN_RE,
    PostfixSyntaxError,
    PostfixValidationError,
    split_list,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_tables import KNOWN_TABLE_TYPES

#: Parameters that hold address and network lists.
CIDR_PARAMS = ("mynetworks",)

_BRACKETED_RE = re.compile(r"^\[([^\]]+)\](?:/(\d+))?\Z")


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
                match = TABLE_TOKEN_RE.match(item)
                if not match or match.group(1) not in KNOWN_TABLE_TYPES:
                    raise
                normalized = item
        result.append(f"!{normalized}" if negate else normalized)
    return result
