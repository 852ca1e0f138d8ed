# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Is the DKIM record in DNS the key in use? (the verify role's check, run by mail_probe).

``txt_lookup`` asks a DNS server for the TXT records of a name with the standard library only
(UDP with EDNS0, TCP when the answer is truncated), so the probe host needs no dnspython.
``dkim_checks`` compares each published ``<selector>._domainkey.<domain>`` record with the record
mail_dns built from the dkim role's public keys: the ``p=`` (and ``k=``) must be the same.

- DNS answers with the same key: ok.
- DNS answers with another key, or no DKIM record for an active selector (mail it signs cannot be
  verified): a failed check, which the verify role reports as a problem.
- No record for a published selector (the next key, not signing yet): ok, with a note.
- DNS does not answer (timeout, SERVFAIL, REFUSED, no server): not a failure; the check is
  reported as not run.
"""

from __future__ import annotations

import secrets
import socket
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

TYPE_TXT = 16
TYPE_OPT = 41
RCODE_NOERROR = 0
RCODE_NXDOMAIN = 3


class DnsNoAnswer(Exception):
    """The DNS servers did not answer (or answered with an error other than NXDOMAIN)."""


def resolv_conf_servers(path: str = "/etc/resolv.conf") -> list[str]:
    """The ``nameserver`` addresses of *path* (the system's resolvers)."""
    servers = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                words = line.split()
                if len(words) >= 2 and words[0] == "nameserver":
                    servers.append(words[1])
    except OSError:
        return []
    return servers


def build_query(name: str, qid: int) -> bytes:
    """A recursive TXT query for *name* with an EDNS0 OPT record (4096-byte UDP answers)."""
    labels = [label for label in name.rstrip(".").split(".") if label]
    qname = b"".join(bytes([len(label)]) + label.encode("ascii") for label in labels) + b"\0"
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1)
    opt = b"\0" + struct.pack(">HHIH", TYPE_OPT, 4096, 0, 0)
    return header + qname + struct.pack(">HH", TYPE_TXT, 1) + opt


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        if offset >= len(data):
            raise ValueError("truncated name")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def parse_answer(data: bytes, qid: int) -> tuple[int, bool, list[str]]:
    """(rcode, truncated, TXT values) of a DNS answer; each value is its strings joined."""
    if len(data) < 12:
        raise ValueError("short answer")
    rid, flags, qdcount, ancount, _ns, _ar = struct.unpack(">HHHHHH", data[:12])
    if rid != qid:
        raise ValueError("answer to another query")
    offset = 12
    for _question in range(qdcount):
        offset = _skip_name(data, offset) + 4
    values = []
    for _answer in range(ancount):
        offset = _skip_name(data, offset)
        rtype, _rclass, _ttl, rdlength = struct.unpack(">HHIH", data[offset : offset + 10])
        offset += 10
        rdata = data[offset : offset + rdlength]
        if len(rdata) != rdlength:
            raise ValueError("truncated record")
        offset += rdlength
        if rtype != TYPE_TXT:
            continue
        strings, index = [], 0
        while index < len(rdata):
            size = rdata[index]
            strings.append(rdata[index + 1 : index + 1 + size].decode("utf-8", errors="replace"))
            index += 1 + size
        values.append("".join(strings))
    return flags & 0x000F, bool(flags & 0x0200), values


def _ask_udp(server: str, port: int, query: bytes, timeout: float) -> bytes:
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((server, port))
        sock.send(query)
        return sock.recv(65535)


def _ask_tcp(server: str, port: int, query: bytes, timeout: float) -> bytes:
    with socket.create_connection((server, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">H", len(query)) + query)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
            chunk = sock.recv(65535)
            if not chunk:
                raise OSError("the server closed the connection")
            data += chunk
        return data[2 : 2 + struct.unpack(">H", data[:2])[0]]


def txt_lookup(
    name: str,
    servers: Sequence[str],
    *,
    timeout: float = 3.0,
    port: int = 53,
    udp: Callable[[str, int, bytes, float], bytes] = _ask_udp,
    tcp: Callable[[str, int, bytes, float], bytes] = _ask_tcp,
) -> list[str]:
    """The TXT values of *name* ([] for NXDOMAIN or no TXT record); DnsNoAnswer when no server answers."""
    if not servers:
        raise DnsNoAnswer("no DNS server to ask")
    errors = []
    for server in servers:
        qid = secrets.randbelow(0x10000)
        query = build_query(name, qid)
        try:
            rcode, truncated, values = parse_answer(udp(server, port, query, timeout), qid)
            if truncated:
                rcode, _truncated, values = parse_answer(tcp(server, port, query, timeout), qid)
        except (OSError, ValueError, struct.error) as exc:
            errors.append(f"{server}: {exc or type(exc).__name__}")
            continue
        if rcode == RCODE_NXDOMAIN:
            return []
        if rcode == RCODE_NOERROR:
            return values
        errors.append(f"{server}: rcode {rcode}")
    raise DnsNoAnswer("; ".join(errors))


def tags(record: str) -> dict[str, str]:
    """The tag=value pairs of a DKIM record, whitespace removed from the values (RFC 6376 3.6.1)."""
    out = {}
    for part in record.split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.strip()] = "".join(value.split())
    return out


def _short(key: str) -> str:
    return f"...{key[-12:]}" if len(key) > 12 else key or "(empty)"


def dkim_checks(
    expected: Sequence[Mapping[str, Any]],
    lookup: Callable[[str], list[str]],
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(checks, skipped) for each expected record (``name``, ``value``, ``state``) against DNS."""
    checks: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for item in expected:
        name = str(item["name"]).rstrip(".")
        check = f"dkim {name}"
        want = tags(str(item["value"]))
        state = item.get("state", "active")
        try:
            found = [value for value in lookup(name) if tags(value).get("p") is not None]
        except DnsNoAnswer as exc:
            skipped[check] = f"DNS did not answer ({exc})"
            continue
        if any(tags(value).get("p") == want.get("p") and tags(value).get("k", "rsa") == want.get("k", "rsa")
               for value in found):  # fmt: skip
            checks[check] = {"ok": True, "detail": f"published, the {state} key in use ({_short(want.get('p', ''))})"}
        elif found:
            published = ", ".join(_short(tags(value).get("p", "")) for value in found)
            checks[check] = {
                "ok": False,
                "detail": f"DNS publishes another key ({published}) than the {state} key in use "
                f"({_short(want.get('p', ''))}): publish the record in the report",
            }
        elif state == "active":
            checks[check] = {
                "ok": False,
                "detail": "no DKIM record in DNS for the active selector: mail it signs cannot be verified; "
                "publish the record in the report",
            }
        else:
            checks[check] = {"ok": True, "detail": f"not in DNS yet ({state} selector: publish it before the switch)"}
    return checks, skipped
