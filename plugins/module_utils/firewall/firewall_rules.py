# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The firewall's rules: validated, derived from the mail services, and never without SSH.

A rule is a plain dict, the form the modules take as arguments::

    {"name": "postfix smtp", "port": 25, "protocol": "tcp", "sources": []}

``port`` is a number or a ``first-last`` range, ``sources`` the networks a rule is restricted to
(empty: anywhere). ``name`` becomes the rule's comment. Every value that reaches a ruleset passes
through a validator here first: ports are integers, sources are parsed by :mod:`ipaddress` and
written back from the parsed value, and names are limited to a plain character set, so that no
newline or quote in a variable can add a line or a statement to the ruleset.

:func:`build_rules` composes the rules of the firewall role (SSH, the mail ports that
``mail_ports`` reported, SASL to its peers, the extra rules) and refuses, naming the variable, any
set that would lock the admin out. :func:`ufw_plan` turns rules into ufw's terms and compares them
with ``ufw show added``.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_relay import cover_everything

PROTOCOLS = ("tcp", "udp")
#: Rule names and comments: letters, digits, space and a few punctuation marks; no quote, no control.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.,:/+@()-]{0,63}")
#: Every ufw rule of this collection carries this comment prefix; others are left alone.
UFW_TAG = "postmaster.mailserver"
#: The variables of the firewall role, named in error messages.
VARIABLES = {
    "ssh_port": "firewall_ssh_port",
    "admin_networks": "firewall_admin_networks",
    "sasl_peers": "firewall_sasl_peers",
    "extra_rules": "firewall_extra_rules",
    "unverified": "firewall_allow_unverified_admin_networks",
    "postfix_config_dir": "firewall_postfix_config_dir",
    "dovecot_config_dir": "firewall_dovecot_config_dir",
}
#: Listeners that only this host or named peers may reach: an extra rule opening one of them (or a range
#: holding it) to everyone is refused. The SASL and internal ports that mail_ports reports count too.
INTERNAL_PORTS = {
    24: "LMTP",
    783: "SpamAssassin (spamd)",
    3310: "ClamAV (clamd)",
    10023: "postgrey",
    10024: "amavis",
    10025: "amavis's re-injection smtpd",
    10026: "amavis (ORIGINATING)",
    12345: "Dovecot SASL (dovecot_sasl_inet_port)",
    12525: "policyd-weight",
    10031: "policyd (cluebringer)",
    10040: "postfwd",
    8891: "OpenDKIM milter",
    11332: "rspamd proxy (milter)",
    11333: "rspamd worker",
}
#: Connection plugins (the last part of their name) that reach the host over SSH: the play itself goes
#: through sshd, so a ruleset that drops the admin's address also drops the play.
SSH_CONNECTIONS = ("ssh", "smart", "paramiko", "paramiko_ssh", "libssh")
_EXTRA_KEYS = ("port", "protocol", "source", "comment")


class FirewallError(Exception):
    """Invalid input, or a rule set that would lock the admin out."""


# -- validators ----------------------------------------------------------------


def port_range(value: Any, where: str) -> tuple[int, int]:
    """A port (1-65535) or a ``first-last`` range, as a (first, last) pair."""
    if isinstance(value, bool):
        raise FirewallError(f"{where}: must be a port number (1-65535) or a range 'first-last', got {value!r}")
    if isinstance(value, int):
        first = last = value
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,5}", value):
        first = last = int(value)
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,5}-[0-9]{1,5}", value):
        first, last = (int(part) for part in value.split("-"))
    else:
        raise FirewallError(f"{where}: must be a port number (1-65535) or a range 'first-last', got {value!r}")
    if not (1 <= first <= 65535 and 1 <= last <= 65535):
        raise FirewallError(f"{where}: {value!r} is outside 1-65535")
    if first > last:
        raise FirewallError(f"{where}: the range {value!r} ends before it starts")
    return first, last


def port_value(first: int, last: int) -> int | str:
    """The rule form of a port range: a number, or ``first-last``."""
    return first if first == last else f"{first}-{last}"


def ssh_port(value: Any, where: str) -> int:
    """The SSH port: one port, never a range or 0."""
    first, last = port_range(value, where)
    if first != last:
        raise FirewallError(f"{where}: must be one port, got the range {value!r}")
    return first


def network(value: Any, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """One address or network; host bits must be clear (``10.0.0.0/8``, not ``10.0.0.1/8``)."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Fa-f.:/]+", value):
        raise FirewallError(f"{where}: {value!r} is not an IP address or network")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise FirewallError(f"{where}: {value!r} is not an IP address or network: {exc}") from None


def network_text(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """An address for a single host, else network/prefix."""
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return net.with_prefixlen


def networks(value: Any, where: str) -> list[str]:
    """A list of addresses or networks (a single string counts as a list of one), normalized, without duplicates."""
    items = [value] if isinstance(value, str) else value
    if items is None:
        return []
    if not isinstance(items, (list, tuple)):
        raise FirewallError(f"{where}: must be a list of addresses or networks, got {value!r}")
    found: list[str] = []
    for index, item in enumerate(items):
        text = network_text(network(item, f"{where}[{index}]"))
        if text not in found:
            found.append(text)
    return found


def name(value: Any, where: str) -> str:
    """A rule name or comment: up to 64 plain characters, no quote, backslash or control character."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise FirewallError(
            f"{where}: {value!r} is not a valid comment (up to 64 letters, digits, spaces and _ . , : / + @ ( ) -, "
            "starting with a letter or digit)"
        )
    return value


def protocol(value: Any, where: str) -> str:
    if value not in PROTOCOLS:
        raise FirewallError(f"{where}: must be one of {', '.join(PROTOCOLS)}, got {value!r}")
    return value


def rule(value: Any, where: str) -> dict[str, Any]:
    """Validate and normalize one rule dict (the modules' ``rules`` items)."""
    if not isinstance(value, Mapping):
        raise FirewallError(f"{where}: must be a dict with name, port, protocol and sources, got {value!r}")
    unknown = sorted(set(value) - {"name", "port", "protocol", "sources"})
    if unknown:
        raise FirewallError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
    if "port" not in value or "name" not in value:
        raise FirewallError(f"{where}: name and port are required")
    first, last = port_range(value["port"], f"{where}.port")
    return {
        "name": name(value["name"], f"{where}.name"),
        "port": port_value(first, last),
        "protocol": protocol(value.get("protocol", "tcp"), f"{where}.protocol"),
        "sources": networks(value.get("sources") or [], f"{where}.sources"),
    }


def rules(value: Any, where: str = "rules") -> list[dict[str, Any]]:
    """Validate a list of rules; identical rules are kept once."""
    if not isinstance(value, (list, tuple)):
        raise FirewallError(f"{where}: must be a list of rules")
    found: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        checked = rule(item, f"{where}[{index}]")
        if checked not in found:
            found.append(checked)
    return found


# -- what a rule set accepts ------------------------------------------------------------


def accepts(rule_set: Iterable[Mapping[str, Any]], proto: str, port: int, address: str | None = None) -> bool:
    """Whether a rule accepts *proto*/*port*: from anywhere (address None) or from *address*."""
    for item in rule_set:
        first, last = port_range(item["port"], "port")
        if item["protocol"] != proto or not first <= port <= last:
            continue
        sources = item.get("sources") or []
        if not sources:
            return True
        if address is not None:
            ip = ipaddress.ip_address(address)
            if any(ip in ipaddress.ip_network(source) for source in sources):
                return True
    return False


def require_ssh(rule_set: Sequence[Mapping[str, Any]], port: int, where: str = "ssh_port") -> None:
    """Refuse a rule set in which no rule accepts TCP *port* (the SSH port)."""
    for item in rule_set:
        first, last = port_range(item["port"], "port")
        if item["protocol"] == "tcp" and first <= port <= last:
            return
    raise FirewallError(
        f"the ruleset would not accept SSH (tcp/{port}, {where}), so the admin would be locked out; nothing was changed"
    )


def parse_session(value: str) -> tuple[str, int] | None:
    """(client address, server port) of an ``SSH_CONNECTION`` value, or None."""
    parts = (value or "").split()
    if len(parts) != 4 or not parts[3].isdigit():
        return None
    try:
        client = str(ipaddress.ip_address(parts[0].split("%")[0]))
    except ValueError:
        return None
    return client, int(parts[3])


# -- the firewall role's rules ----------------------------------------------------------------


def extra_rules(value: Any, where: str) -> list[dict[str, Any]]:
    """The role's firewall_extra_rules: {port, protocol, source, comment}, as rules."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise FirewallError(f"{where}: must be a list of dicts with port, protocol, source and comment")
    found = []
    for index, entry in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(entry, Mapping):
            raise FirewallError(f"{here}: must be a dict with port, protocol, source and comment, got {entry!r}")
        unknown = sorted(str(key) for key in set(entry) - set(_EXTRA_KEYS))
        if unknown:
            raise FirewallError(f"{here}: unknown key(s) {', '.join(unknown)} (known: {', '.join(_EXTRA_KEYS)})")
        if "port" not in entry:
            raise FirewallError(f"{here}.port: is required")
        first, last = port_range(entry["port"], f"{here}.port")
        proto = protocol(entry.get("protocol") or "tcp", f"{here}.protocol")
        comment = entry.get("comment") or f"extra {proto} {port_value(first, last)}"
        found.append(
            {
                "name": name(comment, f"{here}.comment"),
                "port": port_value(first, last),
                "protocol": proto,
                "sources": networks(entry.get("source") or [], f"{here}.source"),
            }
        )
    return found


def _postfix_form(sources: Iterable[str]) -> list[str]:
    """Networks in the form postfix_relay.cover_everything reads (IPv6 in [brackets])."""
    found = []
    for source in sources:
        net = ipaddress.ip_network(source)
        found.append(f"[{net.network_address}]/{net.prefixlen}" if net.version == 6 else net.with_prefixlen)
    return found


def covers_everyone(sources: Sequence[str]) -> bool:
    """Whether a rule's sources are everyone: none at all, or networks that cover every IPv4 or IPv6 address."""
    return not sources or cover_everything("sources", _postfix_form(sources)) is not None


def check_sasl_peers(peers: Sequence[str], where: str) -> None:
    """Refuse SASL peers that are every address (0.0.0.0/0, ::/0, two halves...): the port would be public."""
    for index, peer in enumerate(peers):
        if cover_everything(where, _postfix_form([peer])) is not None:
            raise FirewallError(
                f"{where}[{index}]: {peer} is every address, which would open Dovecot's SASL port to the whole "
                "Internet; name the Postfix hosts that authenticate through it"
            )
    if peers and covers_everyone(peers):
        raise FirewallError(
            f"{where}: {', '.join(peers)} together cover every address, which would open Dovecot's SASL port to "
            "the whole Internet; name the Postfix hosts that authenticate through it"
        )


def _inside(source: str, allowed: Sequence[str]) -> bool:
    net = ipaddress.ip_network(source)
    return any(
        net.version == other.version and net.subnet_of(other)  # type: ignore[arg-type]
        for other in (ipaddress.ip_network(item) for item in allowed)
    )


def check_extra_rules(
    extra: Sequence[Mapping[str, Any]],
    where: str,
    *,
    ssh_ports: Iterable[int],
    admins: Sequence[str],
    admin_where: str,
    internal: Mapping[int, str] | None = None,
    warnings: list[str] | None = None,
) -> None:
    """Refuse extra rules that widen SSH beyond the admin networks or open an internal listener to everyone.

    *extra* are the rules of :func:`extra_rules`, in the order of the variable; *ssh_ports* every port
    sshd is known to listen on (the role's, sshd -T's, the play's own); *internal* maps further ports
    (mail_ports' internal and sasl ones) to a label. A named source on an internal port is allowed with
    a warning.
    """
    listeners = {**INTERNAL_PORTS, **(internal or {})}
    ssh = sorted(set(ssh_ports))
    for index, item in enumerate(extra):
        here = f"{where}[{index}]"
        first, last = port_range(item["port"], f"{here}.port")
        sources = list(item.get("sources") or [])
        everyone = covers_everyone(sources)
        if item["protocol"] == "tcp":
            for port in ssh:
                if not first <= port <= last:
                    continue
                what = f"SSH (tcp/{port}" + ("" if first == last else f", in the range {item['port']}") + ")"
                if admins and everyone:
                    raise FirewallError(
                        f"{here}: opens {what} to everyone, beyond {admin_where} ({', '.join(admins)}); "
                        f"the role opens SSH itself, from {admin_where} only"
                    )
                wider = [source for source in sources if admins and not _inside(source, admins)]
                if wider:
                    raise FirewallError(
                        f"{here}.source: {', '.join(wider)} is outside {admin_where} ({', '.join(admins)}), "
                        f"but the rule opens {what}; the role opens SSH itself, from {admin_where} only"
                    )
        held = [(port, label) for port, label in sorted(listeners.items()) if first <= port <= last]
        if not held or item["protocol"] != "tcp":  # every listener of the list is on TCP
            continue
        port, label = held[0]
        what = f"port {port}" if first == last else f"the range {item['port']}, which holds port {port}"
        if everyone:
            raise FirewallError(
                f"{here}: opens {what} ({label}, an internal listener) to everyone; give the hosts that need it "
                "in source"
            )
        if warnings is not None:
            labels = ", ".join(f"{port} ({label})" for port, label in held)
            warnings.append(
                f"{here}: opens the internal listener port{'s' if len(held) > 1 else ''} {labels} to "
                f"{', '.join(sources)}; whatever those hosts send there is trusted as this host's own"
            )


def check_session(
    session: str,
    connection: str,
    admins: Sequence[str],
    *,
    allow_unverified: bool = False,
    variables: Mapping[str, str] | None = None,
    warnings: list[str] | None = None,
) -> tuple[str, int] | None:
    """The play's own SSH session (client, server port), or None when the host shows none.

    Without a session and with admin networks set, the role cannot check that the admin's address is
    among them. Over an SSH connection plugin (the play goes through sshd, yet SSH_CONNECTION is
    hidden) that is refused unless *allow_unverified*; over another connection (local, docker, ...)
    the play cannot be cut off, and the networks are used as given, with a warning. Without admin
    networks SSH stays open from everywhere, so nothing can lock the admin out. An empty *connection*
    (the host-side call) does not judge.
    """
    current = parse_session(session)
    if current is not None or not admins or not connection:
        return current
    kind = connection.rsplit(".", 1)[-1]
    variables = variables or VARIABLES
    admin_where = variables["admin_networks"]
    if kind in SSH_CONNECTIONS and not allow_unverified:
        raise FirewallError(
            f"this play connects over {connection}, but the host shows no SSH_CONNECTION, so the role cannot "
            f"check that your address is in {admin_where} ({', '.join(admins)}) and you could be locked out; "
            f"nothing was changed. Set {variables['unverified']}: true to apply them unverified"
        )
    if warnings is not None:
        warnings.append(
            f"{admin_where}: this play's connection ({connection}) shows no SSH_CONNECTION, so the role could not "
            f"check that the admin's address is among {', '.join(admins)}; SSH is accepted from them only"
        )
    return None


def build_rules(
    ports: Iterable[Mapping[str, Any]] = (),
    *,
    ssh_port_value: Any = 22,
    admin_networks: Any = (),
    sasl_peers: Any = (),
    extra: Any = (),
    sshd_ports: Sequence[int] = (),
    session: str = "",
    connection: str = "",
    allow_unverified: bool = False,
    variables: Mapping[str, str] | None = None,
    warnings: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The firewall role's rules, SSH first; refuse a set that would lock the admin out.

    *ports* are the ``ports`` of the mail_ports module: ``public`` ones are open to everyone,
    ``sasl`` ones to the SASL peers only (not at all without peers); ``internal`` and ``local``
    ones get no rule. *sshd_ports* (from ``sshd -T``) and *session* (``SSH_CONNECTION`` of the
    play's own connection) are checked against the result; *connection* (the play's connection
    plugin) decides what happens without a session (:func:`check_session`). Extra rules may not
    widen SSH or open an internal listener to everyone (:func:`check_extra_rules`). Warnings are
    appended to *warnings*.
    """
    variables = {**VARIABLES, **(variables or {})}
    ssh = ssh_port(ssh_port_value, variables["ssh_port"])
    admins = networks(admin_networks or [], variables["admin_networks"])
    peers = networks(sasl_peers or [], variables["sasl_peers"])
    check_sasl_peers(peers, variables["sasl_peers"])
    current = check_session(
        session,
        connection,
        admins,
        allow_unverified=allow_unverified,
        variables=variables,
        warnings=warnings,
    )
    internal: dict[int, str] = {}
    result = [{"name": "ssh", "port": ssh, "protocol": "tcp", "sources": admins}]
    for index, port in enumerate(ports or []):
        where = f"ports[{index}]"
        scope = port.get("scope")
        if scope in ("internal", "sasl") and isinstance(port.get("port"), int):
            internal[port["port"]] = f"{port.get('daemon', '')} {port.get('service', '')}".strip()
        if scope == "public":
            sources: list[str] = []
        elif scope == "sasl" and peers:
            sources = peers
        else:
            continue
        label = f"{port.get('daemon', '')} {port.get('service', '')}".strip()
        label = re.sub(r"[^A-Za-z0-9 _.,:/+@()-]", "_", label)[:64] or "mail"
        result.append(
            {
                "name": name(label, f"{where}.service"),
                "port": port_value(*port_range(port.get("port"), f"{where}.port")),
                "protocol": protocol(port.get("protocol", "tcp"), f"{where}.protocol"),
                "sources": sources,
            }
        )
    extra_set = extra_rules(extra or [], variables["extra_rules"])
    check_extra_rules(
        extra_set,
        variables["extra_rules"],
        ssh_ports={ssh, *sshd_ports, *([current[1]] if current else [])},
        admins=admins,
        admin_where=variables["admin_networks"],
        internal=internal,
        warnings=warnings,
    )
    result.extend(extra_set)
    unique: list[dict[str, Any]] = []
    for item in result:
        if item not in unique:
            unique.append(item)
    if sshd_ports and ssh not in sshd_ports:
        raise FirewallError(
            f"{variables['ssh_port']} is {ssh}, but sshd listens on {', '.join(map(str, sshd_ports))} (sshd -T): "
            f"the ruleset would lock the admin out. Set {variables['ssh_port']} to sshd's port; nothing was changed"
        )
    if current is not None:
        client, server_port = current
        if not accepts(unique, "tcp", server_port, client):
            raise FirewallError(
                f"this play connects over SSH from {client} to port {server_port}, which the new rules would not "
                f"accept ({variables['ssh_port']}: {ssh}, {variables['admin_networks']}: {admins or 'anywhere'}): "
                "the admin would be locked out; nothing was changed"
            )
    return unique


def config_dir(value: Any, where: str) -> str:
    """A daemon's configuration directory: an absolute, normalized path of plain characters, not ``/``.

    Whether it exists is judged on the host (mail_ports), where a missing one is an error too.
    """
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or value != "/" + "/".join(part for part in value.split("/") if part)
        or any(part in (".", "..") for part in value.split("/"))
        or re.search(r"[\x00-\x20\x7f\\]", value)
        or value == "/"
    ):
        raise FirewallError(
            f"{where}: {value!r} is not an absolute directory path (no '.', '..', double or trailing slash, "
            "space or control character)"
        )
    return value


# -- ufw ------------------------------------------------------------------------------------


def ufw_rules(rule_set: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """community.general.ufw arguments for rules: one per source, every one tagged with UFW_TAG."""
    found = []
    for item in rule_set:
        first, last = port_range(item["port"], "port")
        port = str(first) if first == last else f"{first}:{last}"
        comment = f"{UFW_TAG}: {name(item['name'], 'name')}"
        for source in item.get("sources") or ["any"]:
            entry = {"rule": "allow", "proto": item["protocol"], "from_ip": source, "to_port": port, "comment": comment}
            if entry not in found:
                found.append(entry)
    return found


def parse_ufw_added(text: str) -> list[dict[str, str]]:
    """The rules of this collection in ``ufw show added`` (lines with a comment starting with UFW_TAG)."""
    found = []
    for line in text.splitlines():
        if not line.startswith("ufw "):
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        comment = ""
        if "comment" in words[:-1]:
            at = words.index("comment")
            comment, words = words[at + 1], words[:at]
        if not comment.startswith(UFW_TAG):
            continue
        entry = _parse_ufw_words(words[1:])
        if entry is not None:
            entry["comment"] = comment
            found.append(entry)
    return found


def _parse_ufw_words(words: list[str]) -> dict[str, str] | None:
    """``allow 25/tcp`` or ``allow from NET to any port 25 proto tcp``; None for other forms."""
    if not words or words[0] != "allow":
        return None
    rest = words[1:]
    if len(rest) == 1 and "/" in rest[0]:
        port, _sep, proto = rest[0].partition("/")
        return {"rule": "allow", "proto": proto, "from_ip": "any", "to_port": port}
    if len(rest) % 2:
        return None
    pairs = dict(zip(rest[0::2], rest[1::2], strict=True))
    if set(pairs) != {"from", "to", "port", "proto"} or pairs["to"] != "any":
        return None
    return {"rule": "allow", "proto": pairs["proto"], "from_ip": pairs["from"], "to_port": pairs["port"]}


def _ufw_key(entry: Mapping[str, str]) -> tuple[str, str, str, str]:
    source = entry["from_ip"]
    if source != "any":
        source = network_text(ipaddress.ip_network(source, strict=False))
    return entry["proto"], source, entry["to_port"], entry.get("comment", "")


def ufw_plan(rule_set: Iterable[Mapping[str, Any]], show_added: str) -> dict[str, list[dict[str, str]]]:
    """What to add and what to delete so that this collection's ufw rules are exactly *rule_set*."""
    wanted = ufw_rules(rule_set)
    present = parse_ufw_added(show_added)
    have = {_ufw_key(entry) for entry in present}
    want = {_ufw_key(entry) for entry in wanted}
    return {
        "add": [entry for entry in wanted if _ufw_key(entry) not in have],
        "delete": [entry for entry in present if _ufw_key(entry) not in want],
    }
