"""TCP probes from the outside client, and the helpers the firewall tests share.

A port that the firewall drops times out; a port that nothing listens on but
the firewall lets through is refused; an open one connects. So "timeout" is
the firewall's answer, never the daemon's.
"""

from __future__ import annotations

import json
import os
import subprocess

import helpers
import pytest
import testinfra.host

#: Every port of a service the converge enables (Postfix smtp/smtps/submission, Dovecot IMAP and POP3).
MAIL = {25: "smtp", 465: "smtps", 587: "submission", 143: "imap", 993: "imaps", 110: "pop3", 995: "pop3s"}
POP3 = (110, 995)
SASL = 12345  # dovecot_sasl_inet_port of converge.yml, open to the scenario network (firewall_sasl_peers)
SSH = 22
LISTENER = 10024  # a test listener on the server that no enabled service explains

# Connects to every port at once (threads), so the timeouts overlap: prints {port: result}.
_PROBE = r"""
import json, socket, sys, threading
host, ports, timeout = json.loads(sys.argv[1])
out = {}
def probe(port):
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            try:
                banner = s.recv(64).decode("ascii", "replace")
            except OSError:
                banner = ""
        out[port] = "open " + banner.strip()
    except socket.timeout:
        out[port] = "timeout"
    except ConnectionRefusedError:
        out[port] = "refused"
    except OSError as e:
        out[port] = f"error {e}"
threads = [threading.Thread(target=probe, args=(p,)) for p in ports]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(out))
"""


def probe(target: str, ports, timeout: float = 4) -> dict[int, str]:
    """Connect from the outside client to each port of *target*: 'open <banner>', 'timeout' or 'refused'."""
    payload = json.dumps([target, sorted(ports), timeout])
    result = helpers.host("client").run("python3 -c %s %s", _PROBE, payload)
    assert result.rc == 0, result.stderr
    return {int(port): state for port, state in json.loads(result.stdout).items()}


def assert_open(target: str, ports) -> dict[int, str]:
    found = probe(target, ports)
    closed = {port: state for port, state in found.items() if not state.startswith("open")}
    assert not closed, f"not open from the outside client: {closed}"
    return found


def assert_dropped(target: str, ports) -> None:
    found = probe(target, ports)
    assert all(state == "timeout" for state in found.values()), f"expected the firewall to drop: {found}"


def run_playbook(name: str, extra_vars: dict | None = None, *args: str) -> subprocess.CompletedProcess:
    """Run a playbook of this tests/ directory (the firewall role alone) against the scenario's hosts."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    cmd = ["ansible-playbook", "-i", inventory, os.path.join(os.path.dirname(__file__), name)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, check=False)


def ruleset(server: testinfra.host.Host) -> str:
    """The whole live ruleset without counters (nft -s), and the file that loads ours."""
    return server.check_output("nft -s list ruleset 2>/dev/null; sha256sum /etc/nftables.conf")


def recap(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stdout.splitlines() if " ok=" in line and "changed=" in line]
    assert lines, result.stdout[-3000:] + result.stderr[-2000:]
    return lines[-1]


@pytest.fixture(scope="session")
def listener():
    """A TCP listener on the server that no enabled service explains (python3 -m http.server on 10024)."""
    server = helpers.host("server")
    unit = f"pm-test-listener-{LISTENER}"
    server.run(f"systemctl stop {unit} 2>/dev/null; systemctl reset-failed {unit} 2>/dev/null")
    server.check_output(f"systemd-run --unit={unit} --working-directory=/tmp python3 -m http.server {LISTENER}")
    check = f"python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {LISTENER}), timeout=2).close()'"
    waited = server.run(f"for i in $(seq 20); do {check} && exit 0; sleep 0.5; done; exit 1")
    assert waited.rc == 0, server.run(f"journalctl -u {unit} --no-pager").stdout
    yield LISTENER
    server.run(f"systemctl stop {unit}")
