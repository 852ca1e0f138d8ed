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


def testssl(target: str, ports: list[int]) -> dict[int, list[dict]]:
    """testssl.sh (Debian's package) on each port, protocols, cipher categories and server preference.

    Returns the findings of each port whose severity is MEDIUM, HIGH or CRITICAL. The ports run in
    parallel (testssl's --parallel over a file of targets).
    """
    lines = [f"--ip one {'-t ' + STARTTLS[port] + ' ' if port in STARTTLS else ''}{target}:{port}" for port in ports]
    client = helpers.host("client")
    client.run("rm -rf /tmp/testssl && mkdir -p /tmp/testssl")
    client.run("printf '%%s\\n' %s > /tmp/testssl/targets", " ".join(f"'{line}'" for line in lines))
    result = client.run(
        "cd /tmp/testssl && timeout 600 testssl --quiet --color 0 --warnings off --parallel -p -s -P "
        "--jsonfile /tmp/testssl/all.json --file /tmp/testssl/targets > /tmp/testssl/out.txt 2>&1; echo rc=$?"
    )
    assert "rc=" in result.stdout, result.stdout + result.stderr
    findings: dict[int, list[dict]] = {port: [] for port in ports}
    entries = json.loads(client.check_output("cat /tmp/testssl/all.json"))
    tested = {int(entry["port"]) for entry in entries if str(entry.get("port", "")).isdigit()}
    assert tested >= set(ports), (
        f"testssl did not report on {set(ports) - tested}:\n{client.check_output('tail -40 /tmp/testssl/out.txt')}"
    )
    for entry in entries:
        port = int(entry["port"]) if str(entry.get("port", "")).isdigit() else 0
        if port in findings and entry.get("severity") in ("MEDIUM", "HIGH", "CRITICAL"):
            findings[port].append(entry)
    return findings
