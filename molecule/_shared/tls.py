"""TLS handshakes and testssl.sh runs from the outside client container, for the TLS hardening tests."""

from __future__ import annotations

import json
import re
from typing import NamedTuple

import helpers

#: Where each port speaks TLS: implicit (wrapper mode) or after STARTTLS of a protocol.
STARTTLS = {25: "smtp", 587: "smtp", 143: "imap", 110: "pop3"}
#: The ciphers a client offers to find out whose order wins: the client prefers AES128, a server
#: that orders by strength picks AES256.
CLIENT_ORDER = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"


class Handshake(NamedTuple):
    ok: bool
    protocol: str
    cipher: str
    output: str


def handshake(target: str, port: int, *args: str) -> Handshake:
    """One openssl s_client handshake from the client container (STARTTLS where the port needs it)."""
    starttls = f"-starttls {STARTTLS[port]}" if port in STARTTLS else ""
    result = helpers.host("client").run(
        f"echo QUIT | timeout 20 openssl s_client -connect %s:{port} {starttls} {' '.join(args)} 2>&1", target
    )
    output = result.stdout
    protocol = re.search(r"^\s*Protocol\s*:\s*(\S+)", output, re.MULTILINE)
    cipher = re.search(r"Cipher is (\S+)", output)
    chosen = cipher.group(1) if cipher else "(NONE)"
    return Handshake(
        result.rc == 0 and chosen != "(NONE)", protocol.group(1) if protocol else "", chosen, output[-2000:]
    )


#: The severities the hardening tests refuse on any port.
SEVERE = ("MEDIUM", "HIGH", "CRITICAL")


def testssl(target: str, ports: list[int]) -> dict[int, list[dict]]:
    """testssl.sh (Debian's package) on each port: protocols, cipher categories and server preference.

    One testssl process per port, all at once, each with its own JSON file. Returns the findings of
    each port whose severity is MEDIUM, HIGH or CRITICAL.
    """
    report = testssl_report(target, ports)
    return {port: [entry for entry in entries if entry.get("severity") in SEVERE] for port, entries in report.items()}


def testssl_report(target: str, ports: list[int], *, ca_file: str = "") -> dict[int, list[dict]]:
    """Every finding testssl.sh writes for each port (all severities, OK and INFO included).

    Without *ca_file*: protocols, cipher categories and server preference (-p -s -P) of an address
    (--ip one). With *ca_file*: the server-defaults section only (-S: the certificate, its chain of
    trust, its name, dates, key and revocation information), with *ca_file* added to testssl's
    trust stores (--add-ca); the protocols and ciphers of the same defaults are the dovecot
    scenario's (the cipher enumeration is testssl's slow part, and one scenario judging it is
    enough). *target* is then the certificate's host name, which the client must resolve through
    /etc/hosts: --nodns none makes no DNS query at all (no CAA lookup leaves the scenario).
    """
    client = helpers.host("client")
    sections = f"-S --nodns none --add-ca {ca_file}" if ca_file else "-p -s -P --ip one"
    commands = []
    for port in ports:
        starttls = f"-t {STARTTLS[port]} " if port in STARTTLS else ""
        commands.append(
            f"testssl --quiet --color 0 --warnings off {sections} {starttls}"
            f"--jsonfile /tmp/testssl/{port}.json {target}:{port} > /tmp/testssl/{port}.txt 2>&1 &"
        )
    client.run_expect([0], "rm -rf /tmp/testssl && mkdir -p /tmp/testssl")
    client.run_expect([0], f"cd /tmp/testssl && {' '.join(commands)} wait")
    report: dict[int, list[dict]] = {}
    for port in ports:
        text = client.run(f"cat /tmp/testssl/{port}.json").stdout
        try:
            entries = json.loads(text)
        except ValueError:
            raise AssertionError(
                f"testssl wrote no JSON for port {port}:\n{text[:2000]}\n"
                + client.run(f"tail -30 /tmp/testssl/{port}.txt").stdout
            ) from None
        assert any(str(entry.get("port")) == str(port) for entry in entries), (port, entries[:3])
        report[port] = entries
    return report
