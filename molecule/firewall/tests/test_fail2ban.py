"""fail2ban on nftables, proven from two outside hosts (issue 24).

The outside client guesses passwords with SMTP AUTH on 587 and is banned from every mail port;
the other host connects 50 times without logging in and is not banned, then logs in and sends.
The ban lives in a set of fail2ban's own nftables table, survives a firewall role run and a
fail2ban restart, and fail2ban-client lifts it. Runs after test_faults.py and before
test_firewall.py (file order); the client is unbanned at the end whatever happens.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import uuid

import helpers
import pytest
from probe import run_playbook

USER = ("fred", "Fred-Fail2ban-Password-1")  # prepare.yml
MAIL_PORTS = (25, 465, 587, 993)

# Tries to open a TCP connection to each port; prints {port: "open" | the error}.
_CONNECT = r"""
import json, socket, sys
host, ports = json.loads(sys.argv[1])
out = {}
for port in ports:
    try:
        socket.create_connection((host, port), timeout=3).close()
        out[port] = "open"
    except OSError as exc:
        out[port] = type(exc).__name__
print(json.dumps(out))
"""

# COUNT sessions on 587 that say EHLO and QUIT without trying to log in.
_IDLE = r"""
import json, smtplib, sys
host, count = json.loads(sys.argv[1])
codes = []
for _ in range(count):
    s = smtplib.SMTP(host, 587, timeout=20)
    codes.append(s.ehlo("other.outside.test")[0])
    s.quit()
print(json.dumps(codes))
"""


def connect(role: str, server_ip: str, ports=MAIL_PORTS) -> dict[int, str]:
    result = helpers.host(role).run("python3 -c %s %s", _CONNECT, json.dumps([server_ip, list(ports)]))
    assert result.rc == 0, result.stderr
    return {int(port): state for port, state in json.loads(result.stdout).items()}


def login(role: str, server_ip: str, password: str) -> list[tuple[int, str]]:
    """One SMTP AUTH PLAIN attempt on 587 after STARTTLS (smtplib's login() would try PLAIN, then LOGIN)."""
    plain = base64.b64encode(f"\0{USER[0]}\0{password}".encode()).decode()
    steps = [
        ["ehlo", f"{role}.outside.test"],
        ["starttls"],
        ["ehlo", f"{role}.outside.test"],
        ["AUTH", "PLAIN", plain],
    ]
    return helpers.smtp(role, server_ip, 587, steps)


def banned(server) -> list[str]:
    """Every address fail2ban has banned, in any jail."""
    out = server.check_output("fail2ban-client banned")
    return sorted({ip for jail in json.loads(out.replace("'", '"')) for ips in jail.values() for ip in ips})


def jails_banning(server, address: str) -> list[str]:
    out = server.check_output("fail2ban-client banned")
    return sorted(name for jail in json.loads(out.replace("'", '"')) for name, ips in jail.items() if address in ips)


def ban_set(server) -> str:
    return server.check_output("nft list table inet f2b-table")


@pytest.fixture(scope="module", autouse=True)
def unban_at_the_end(server):
    yield
    server.run("fail2ban-client unban --all")


def test_the_mail_jails_run_on_the_journal(server):
    status = server.check_output("fail2ban-client status")
    assert "postfix-sasl" in status and "dovecot" in status
    conf = server.file("/etc/fail2ban/jail.d/postmaster.local").content_string
    assert "backend = systemd" in conf and "banaction = nftables[type=multiport]" in conf
    assert "port = 25,465,587,110,995,143,993,4190" in conf
    assert "ignoreip = 127.0.0.0/8 ::1/128" in conf
    assert server.service("fail2ban").is_enabled and server.service("fail2ban").is_running


def test_fifty_sessions_that_never_log_in_do_not_ban(server, server_ip):
    other = helpers.container_ip("other")
    result = helpers.host("other").run("python3 -c %s %s", _IDLE, json.dumps([server_ip, 50]))
    assert result.rc == 0, result.stderr
    assert json.loads(result.stdout) == [250] * 50
    time.sleep(5)  # fail2ban reads the journal within a second or two
    assert other not in banned(server)
    assert set(connect("other", server_ip).values()) == {"open"}


def test_ten_wrong_passwords_ban_the_client_from_every_mail_port_within_30_s(server, server_ip):
    client = helpers.container_ip("client")
    refused = []
    last_answer = time.monotonic()
    for attempt in range(10):
        replies = login("client", server_ip, f"wrong-password-{attempt}")
        if replies[0][0] == 0 or replies[-1][0] == 0:  # the connection failed, or the ban cut it
            break
        refused.append(replies[-1][0])
        last_answer = time.monotonic()
    # Every attempt that was answered was refused: 535, or 454 once Dovecot's growing auth penalty (2, 4, 8 s
    # ...) outlasts Postfix's wait for it ("Connection lost to authentication server"). No ban came before
    # fail2ban_maxretry (5) attempts.
    assert len(refused) >= 5 and set(refused) <= {535, 454} and refused[:2] == [535, 535], refused
    while client not in banned(server) and time.monotonic() - last_answer < 30:
        time.sleep(1)
    assert client in banned(server), f"not banned 30 s after the last refused attempt: {refused}"
    assert all(state != "open" for state in connect("client", server_ip).values())
    table = ban_set(server)
    assert client in table
    jails = jails_banning(server, client)
    assert jails, table
    for jail in jails:
        rule = next(line for line in table.splitlines() if f"saddr @addr-set-{jail}" in line)
        ports = {int(port) for port in rule.split("{", 1)[1].split("}", 1)[0].split(",")}
        assert ports == {25, 465, 587, 110, 995, 143, 993, 4190}, rule


def test_the_queue_facts_report_postscreen_and_the_ban(server):
    # mail_queue (what the verify role reads on the server) counts the bans per jail.
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    result = subprocess.run(
        ["ansible", "-i", inventory, helpers.instance("server"), "-m", "postmaster.mailserver.mail_queue", "-o"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    facts = json.loads(result.stdout.split(" => ", 1)[1])
    assert facts["postscreen"] is True
    assert facts["fail2ban"]["running"] is True
    assert set(facts["fail2ban"]["jails"]) >= {"postfix-sasl", "dovecot", "sshd"}
    assert facts["fail2ban"]["banned"] == sum(facts["fail2ban"]["jails"].values()) >= 1


def test_the_other_host_still_logs_in_and_sends(server, server_ip):
    token = uuid.uuid4().hex
    steps = [
        ["ehlo", "other.outside.test"],
        ["starttls"],
        ["ehlo", "other.outside.test"],
        ["auth", *USER],
        ["mail", f"FROM:<{USER[0]}@mail.example.test>"],
        ["rcpt", f"TO:<{USER[0]}@mail.example.test>"],
        ["data", helpers.message(f"{USER[0]}@mail.example.test", f"{USER[0]}@mail.example.test", f"f2b {token}")],
    ]
    replies = helpers.smtp("other", server_ip, 587, steps)
    assert [r[0] for r in replies] == [220, 250, 220, 250, 235, 250, 250, 354, 250], replies
    assert helpers.container_ip("other") not in banned(server)
    found = helpers.wait_for_file(server, f"/home/{USER[0]}/Maildir/new/*")
    assert any(token in server.file(path).content_string for path in found)


def test_a_firewall_role_run_keeps_the_ban(server, server_ip):
    client = helpers.container_ip("client")
    result = run_playbook("firewall_only.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    assert client in ban_set(server)
    assert all(state != "open" for state in connect("client", server_ip).values())


def test_the_ban_survives_a_fail2ban_restart(server, server_ip):
    client = helpers.container_ip("client")
    server.check_output("systemctl restart fail2ban")
    for _attempt in range(30):
        if server.run("fail2ban-client ping").rc == 0 and client in server.run("nft list table inet f2b-table").stdout:
            break
        time.sleep(1)
    assert client in banned(server)
    assert client in ban_set(server)
    assert all(state != "open" for state in connect("client", server_ip).values())


def test_fail2ban_client_lifts_the_ban(server, server_ip):
    client = helpers.container_ip("client")
    server.check_output(f"fail2ban-client unban {client}")
    assert client not in banned(server)
    assert set(connect("client", server_ip).values()) == {"open"}
    # The right password works from the client again.
    assert login("client", server_ip, USER[1])[-1][0] == 235
