"""postscreen on port 25 and anvil's connection rate, proven from the outside containers (issue 24).

The listed client (client) is refused by postscreen in test_restrictions.py; here the unlisted
sender (dns) talks before the greeting and is refused, then behaves and delivers, then opens
connections faster than postfix_client_connection_rate_limit allows and is served again once
anvil's window (postfix_anvil_rate_time_unit, 12 s in vars/restrictions.yml) has passed. The
listed client still submits on 587 with AUTH.
"""

from __future__ import annotations

import json
import time
import uuid

import helpers

USER = "rbluser@mail.example.test"
ALICE = ("alice@sender.test", "Alice-Dkim-Password-1")  # the account test_dkim.py submits with

# Connects, sends EHLO before the greeting (a bot's pregreet), then MAIL and RCPT; prints every reply line.
_PREGREET = r"""
import json, socket, sys, time
host, rcpt = json.loads(sys.argv[1])
s = socket.create_connection((host, 25), timeout=30)
s.sendall(b"EHLO pregreet.outside.test\r\n")
time.sleep(8)  # longer than postscreen_greet_wait (6 s)
def read():
    data = b""
    s.settimeout(10)
    while not data.endswith(b"\r\n") or data.split(b"\r\n")[-2][3:4] == b"-":
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")
out = [read()]
for line in (b"MAIL FROM:<bot@outside.test>\r\n", ("RCPT TO:<%s>\r\n" % rcpt).encode()):
    s.sendall(line)
    out.append(read())
s.sendall(b"QUIT\r\n")
print(json.dumps(out))
"""

# Opens COUNT connections one after another; prints each greeting's code (0 when the connection failed).
_BURST = r"""
import json, smtplib, sys
host, count = json.loads(sys.argv[1])
codes = []
for _ in range(count):
    try:
        s = smtplib.SMTP(timeout=20)
        codes.append(s.connect(host, 25)[0])
        try:
            s.quit()
        except Exception:
            pass
    except Exception:
        codes.append(0)
print(json.dumps(codes))
"""


def postscreen_log(server, since: str) -> str:
    return server.check_output(f"journalctl --no-pager -o cat -t postfix/postscreen --since '{since}'")


def now(server) -> str:
    return server.check_output("date '+%Y-%m-%d %H:%M:%S'")


def test_port_25_is_postscreen_and_submission_is_smtpd(server):
    assert server.check_output("postconf -M smtp/inet").split()[7] == "postscreen"
    for key, command in (("smtpd/pass", "smtpd"), ("dnsblog/unix", "dnsblog"), ("tlsproxy/unix", "tlsproxy")):
        assert server.check_output(f"postconf -M {key}").split()[7] == command, key
    for key in ("submission/inet", "smtps/inet"):
        service = server.check_output(f"postconf -M {key}").split()
        assert service[7] == "smtpd", key
        # Authenticated users are not rate-limited.
        assert "smtpd_client_connection_rate_limit=0" in service, key
    assert server.check_output("postconf -h postscreen_access_list") == "permit_mynetworks"
    assert server.check_output("postconf -h postscreen_greet_action") == "enforce"
    assert server.check_output("postconf -h postscreen_dnsbl_sites") == "rbl.test*1"
    assert server.check_output("postconf -h postscreen_dnsbl_threshold") == "1"
    assert server.check_output("postconf -h smtpd_client_connection_rate_limit") == "60"
    assert server.check_output("postconf -h anvil_rate_time_unit") == "12s"
    # Postscreen's cache is where Postfix keeps it.
    assert server.check_output("postconf -h postscreen_cache_map") == "btree:$data_directory/postscreen_cache"
    assert "warning" not in server.run("postconf -n").stderr


def test_a_client_that_talks_before_the_greeting_is_refused_then_a_clean_one_delivers(server, server_ip):
    # Forget every client postscreen has passed (earlier tests sent from dns): its tests run again.
    server.check_output(
        "systemctl stop postfix && rm -f /var/lib/postfix/postscreen_cache.db && systemctl start postfix"
    )
    server.check_output("for i in $(seq 30); do postfix status 2>/dev/null && exit 0; sleep 1; done; exit 1")
    dns_ip = helpers.container_ip("dns")
    since = now(server)
    result = helpers.host("dns").run("python3 -c %s %s", _PREGREET, json.dumps([server_ip, USER]))
    assert result.rc == 0, result.stderr
    greeting, mail, rcpt = json.loads(result.stdout)
    assert greeting.startswith("220"), greeting
    assert rcpt.startswith("550 5.5.1 Protocol error"), (greeting, mail, rcpt)
    log = postscreen_log(server, since)
    assert "PREGREET 28 after" in log, log  # the 28 bytes of "EHLO pregreet.outside.test\r\n"
    assert f"from [{dns_ip}]" in log, log
    # The same client, now speaking in turn, passes postscreen and delivers.
    token = uuid.uuid4().hex
    steps = [
        ["ehlo", "dns.outside.test"],
        ["mail", "FROM:<someone@partner.test>"],
        ["rcpt", f"TO:<{USER}>"],
        ["data", helpers.message("someone@partner.test", USER, f"screen {token}")],
    ]
    replies = helpers.smtp("dns", server_ip, 25, steps)
    assert [r[0] for r in replies] == [220, 250, 250, 250, 354, 250], replies
    assert f"PASS NEW [{dns_ip}]" in postscreen_log(server, since)
    found = server.run(
        f"for i in $(seq 30); do grep -l {token} /home/rbluser/Maildir/new/* 2>/dev/null && exit 0; sleep 1; done; exit 1"
    )
    assert found.rc == 0


def burst(server_ip: str, count: int) -> list[int]:
    """The greeting codes of *count* connections the dns container opens one after another."""
    result = helpers.host("dns").run("python3 -c %s %s", _BURST, json.dumps([server_ip, count]))
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def served_again(server_ip: str, window: int) -> list[int]:
    """Wait (at most the window and 15 s) until the dns container is greeted again; its last codes."""
    again: list[int] = []
    for _attempt in range(window + 15):
        again = burst(server_ip, 1)
        if again == [220]:
            break
        time.sleep(1)
    return again


def test_a_client_over_the_connection_rate_gets_421_and_is_served_again_after_the_window(server, server_ip):
    limit = int(server.check_output("postconf -h smtpd_client_connection_rate_limit"))
    window = int(server.check_output("postconf -h anvil_rate_time_unit").rstrip("s"))
    # The earlier tests' connections from dns fall out of anvil's window first.
    time.sleep(window + 1)
    try:
        started = time.monotonic()
        codes = burst(server_ip, limit + 5)
        elapsed = time.monotonic() - started
        assert elapsed < window, f"the burst took {elapsed:.1f} s, longer than the {window} s window"
        assert codes[:limit] == [220] * limit, codes
        assert set(codes[limit:]) == {421}, codes
        log = server.check_output("journalctl --no-pager -o cat -t postfix/smtpd -n 300")
        assert f"Connection rate limit exceeded: {limit + 1} from" in log, log[-2000:]
    finally:
        # Served again once the window has passed (and the later tests send from dns).
        assert served_again(server_ip, window) == [220]


def test_the_listed_client_still_submits_on_587_with_auth(server_ip):
    token = uuid.uuid4().hex
    steps = [
        ["ehlo", "client.outside.test"],
        ["starttls"],
        ["ehlo", "client.outside.test"],
        ["auth", *ALICE],
        ["mail", f"FROM:<{ALICE[0]}>"],
        ["rcpt", f"TO:<{USER}>"],
        ["data", helpers.message(ALICE[0], USER, f"listed-587 {token}")],
    ]
    replies = helpers.smtp("client", server_ip, 587, steps)
    assert [r[0] for r in replies] == [220, 250, 220, 250, 235, 250, 250, 354, 250], replies
