# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""fail2ban's settings, validated and rendered: the jail file of the fail2ban role.

``check_settings`` validates the role's variables (without the ``fail2ban_`` prefix) on the
controller, before the host changes, and again in the fail2ban_config module. Errors name the
variable and the entry (``fail2ban_jails[1].filter``). ``render_jails`` is pure.

Debian 12 ships fail2ban 1.0.2 and Debian 13 fail2ban 1.1.0 (checked in the images). Neither
has a log file to read on a host without rsyslog, so every jail reads the journal
(``backend = systemd``); Debian 12's postfix filter matches only ``postfix.service``, not the
``postfix@-.service`` instance Debian's Postfix runs in, so the journal match of each known filter
is written here. A ban is a set of its own (``addr-set-<jail>``) in fail2ban's own nftables table
(``inet f2b-table``, chain ``f2b-chain`` at priority -1), which the firewall role never touches;
it covers every mail port. Bans are kept in fail2ban's database and come back when it restarts.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate import (
    shown,
    true_or_false,
    whole_number,
)

HEADER = "# Managed by Ansible (postmaster.mailserver.fail2ban_config); do not edit.\n"
SETTING_KEYS = (
    "maxretry",
    "findtime",
    "bantime",
    "bantime_increment",
    "bantime_maxtime",
    "ignore_networks",
    "trusted_networks",
    "jails",
    "ports",
)
JAIL_KEYS = ("name", "filter", "mode", "enabled", "maxretry", "findtime", "bantime")
#: The journal entries each known filter reads (Debian's units). Other filters keep their own.
JOURNAL_MATCH = {
    "postfix": "_SYSTEMD_UNIT=postfix@-.service",
    "dovecot": "_SYSTEMD_UNIT=dovecot.service",
}
#: Every mail port a ban covers: SMTP, submission (465, 587), POP3, IMAP and ManageSieve.
MAIL_PORTS = (25, 465, 587, 110, 995, 143, 993, 4190)
DEFAULT_JAILS = (
    {"name": "postfix-sasl", "filter": "postfix", "mode": "auth"},
    {"name": "dovecot", "filter": "dovecot"},
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}\Z")
_FILTER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_MODE_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}\Z")
_TABLE_RE = re.compile(r"^[a-z0-9]+:[/{]")
MAXRETRY = (1, 100)
FINDTIME = (60, 7 * 86400)
BANTIME = (60, 365 * 86400)


class Fail2banSettingsError(ValueError):
    """A setting that cannot become a working fail2ban configuration; the message names it."""


_describe = shown
_int = partial(whole_number, error=Fail2banSettingsError)
_bool = partial(true_or_false, error=Fail2banSettingsError)


def _networks(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise Fail2banSettingsError(f"{where}: must be a list of addresses or networks, got {_describe(value)}")
    result: list[str] = []
    for index, item in enumerate(value):
        entry = f"{where}[{index}]"
        if not isinstance(item, str):
            raise Fail2banSettingsError(f"{entry}: must be an address or a network, got {_describe(item)}")
        text = item.strip()
        if text.startswith("[") and "]" in text:  # Postfix writes IPv6 networks as [2001:db8::]/32
            text = text[1:].replace("]", "", 1)
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise Fail2banSettingsError(
                f"{entry}: {item!r} is not an address or a network (such as 192.0.2.10 or 2001:db8::/32)"
            ) from None
        if network.prefixlen == 0:
            raise Fail2banSettingsError(
                f"{entry}: {item!r} covers every address, so nobody would ever be banned; list the networks "
                "that must never be banned"
            )
        if str(network) not in result:
            result.append(str(network))
    return result


def _jail(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise Fail2banSettingsError(f"{where}: must be a mapping with name and filter, got {_describe(value)}")
    unknown = sorted(set(value) - set(JAIL_KEYS))
    if unknown:
        raise Fail2banSettingsError(f"{where}: unknown key(s) {', '.join(map(str, unknown))} ({', '.join(JAIL_KEYS)})")
    name = value.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise Fail2banSettingsError(
            f"{where}.name: {name!r} is not a jail name (letters, digits, - and _, at most 32, no path)"
        )
    jail: dict[str, Any] = {"name": name}
    filter_name = value.get("filter")
    if not isinstance(filter_name, str) or not _FILTER_RE.match(filter_name) or ".." in filter_name:
        raise Fail2banSettingsError(
            f"{where}.filter: {filter_name!r} is not the name of a filter in /etc/fail2ban/filter.d (letters, digits, "
            "., - and _, no path and no options)"
        )
    jail["filter"] = filter_name
    mode = value.get("mode")
    if mode is not None and (not isinstance(mode, str) or not _MODE_RE.match(mode)):
        raise Fail2banSettingsError(f"{where}.mode: {mode!r} is not a filter mode (such as auth, normal, aggressive)")
    jail["mode"] = mode
    jail["enabled"] = _bool(value.get("enabled", True), f"{where}.enabled")
    for key, bounds in (("maxretry", MAXRETRY), ("findtime", FINDTIME), ("bantime", BANTIME)):
        given = value.get(key)
        unit = "" if key == "maxretry" else " of seconds"
        jail[key] = None if given is None else _int(given, f"{where}.{key}", bounds, unit)
    return jail


def check_settings(settings: Any, prefix: str = "") -> dict[str, Any]:
    """Validate and normalize the role's *settings*; errors name ``<prefix><key>`` (and the entry)."""
    if not isinstance(settings, Mapping):
        raise Fail2banSettingsError(f"{prefix or 'settings'}: must be a mapping, got {_describe(settings)}")
    unknown = sorted(set(settings) - set(SETTING_KEYS))
    if unknown:
        raise Fail2banSettingsError(f"{', '.join(prefix + str(key) for key in unknown)}: unknown setting(s)")
    missing = [key for key in SETTING_KEYS if key not in settings and key not in ("ports", "trusted_networks")]
    if missing:
        raise Fail2banSettingsError(f"{', '.join(prefix + key for key in missing)}: missing")
    result: dict[str, Any] = {
        "maxretry": _int(settings["maxretry"], prefix + "maxretry", MAXRETRY),
        "findtime": _int(settings["findtime"], prefix + "findtime", FINDTIME, " of seconds"),
        "bantime": _int(settings["bantime"], prefix + "bantime", BANTIME, " of seconds"),
        "bantime_increment": _bool(settings["bantime_increment"], prefix + "bantime_increment"),
        "bantime_maxtime": _int(settings["bantime_maxtime"], prefix + "bantime_maxtime", BANTIME, " of seconds"),
        "ignore_networks": _networks(settings["ignore_networks"], prefix + "ignore_networks"),
    }
    # The other roles' networks (postfix_mynetworks, firewall_admin_networks, the controller's address):
    # checked by their roles; a Postfix table (hash:/etc/postfix/network_table) has no address to give.
    trusted = [
        item for item in settings.get("trusted_networks") or [] if not (isinstance(item, str) and _TABLE_RE.match(item))
    ]
    for network in _networks(trusted, prefix + "trusted_networks"):
        if network not in result["ignore_networks"]:
            result["ignore_networks"].append(network)
    if result["bantime_maxtime"] < result["bantime"]:
        raise Fail2banSettingsError(
            f"{prefix}bantime_maxtime: {result['bantime_maxtime']} is shorter than {prefix}bantime "
            f"({result['bantime']}); a repeat offender's ban only grows"
        )
    jails = settings["jails"]
    if isinstance(jails, str) or not isinstance(jails, Sequence):
        raise Fail2banSettingsError(f"{prefix}jails: must be a list of jails, got {_describe(jails)}")
    result["jails"] = []
    seen: set[str] = set()
    for index, value in enumerate(jails):
        jail = _jail(value, f"{prefix}jails[{index}]")
        if jail["name"] in seen:
            raise Fail2banSettingsError(f"{prefix}jails[{index}].name: {jail['name']!r} is given twice")
        seen.add(jail["name"])
        result["jails"].append(jail)
    ports = settings.get("ports", list(MAIL_PORTS))
    if isinstance(ports, str) or not isinstance(ports, Sequence) or not ports:
        raise Fail2banSettingsError(f"{prefix}ports: must be a list of TCP ports, got {_describe(ports)}")
    checked_ports: list[int] = []
    for index, port in enumerate(ports):
        number = _int(port, f"{prefix}ports[{index}]", (1, 65535))
        if number not in checked_ports:
            checked_ports.append(number)
    result["ports"] = checked_ports
    return result


def render_jails(settings: Mapping[str, Any]) -> str:
    """The text of the role's jail file for validated *settings*."""
    s = settings
    loopback = ["127.0.0.0/8", "::1/128"]
    ignore = " ".join(loopback + [network for network in s["ignore_networks"] if network not in loopback])
    lines = [
        HEADER.rstrip("\n"),
        "# Read after Debian's jail.conf and jail.d/defaults-debian.conf: these settings win.",
        "[DEFAULT]",
        "# The journal: neither Debian 12 nor 13 writes the mail log to a file without rsyslog.",
        "backend = systemd",
        "# Never banned: loopback, Postfix's mynetworks, the admin networks and fail2ban_ignore_networks.",
        f"ignoreip = {ignore}",
        f"maxretry = {s['maxretry']}",
        f"findtime = {s['findtime']}",
        f"bantime = {s['bantime']}",
    ]
    if s["bantime_increment"]:
        lines += [
            "# A repeat offender's ban doubles each time, up to bantime.maxtime (fail2ban's database remembers).",
            "bantime.increment = true",
            f"bantime.maxtime = {s['bantime_maxtime']}",
        ]
    else:
        lines.append("bantime.increment = false")
    ports = ",".join(str(port) for port in s["ports"])
    lines += [
        "# A ban is a set of its own in fail2ban's nftables table (inet f2b-table), on every mail port.",
        "banaction = nftables[type=multiport]",
        f"port = {ports}",
        "",
    ]
    for jail in s["jails"]:
        filter_spec = jail["filter"] + (f"[mode={jail['mode']}]" if jail["mode"] else "")
        # The port again: Debian's jail.conf gives its own jails their ports by service name (25 missing from
        # dovecot's, and names that do not resolve without netbase).
        lines += [
            f"[{jail['name']}]",
            f"enabled = {'true' if jail['enabled'] else 'false'}",
            f"filter = {filter_spec}",
            f"port = {ports}",
        ]
        if jail["filter"] in JOURNAL_MATCH:
            lines.append(f"journalmatch = {JOURNAL_MATCH[jail['filter']]}")
        for key in ("maxretry", "findtime", "bantime"):
            if jail[key] is not None:
                lines.append(f"{key} = {jail[key]}")
        lines.append("")
    return "\n".join(lines)


def enabled_jails(settings: Mapping[str, Any]) -> list[str]:
    """The names of the jails that are on."""
    return [jail["name"] for jail in settings["jails"] if jail["enabled"]]
