"""Client -> relay -> upstream:587 with SASL and TLS (seeds 002/003), across three containers."""

from __future__ import annotations

import json
import time
import uuid

import helpers
import pytest

PASSWORD = "Relay-Pa55-XYZZY-7319"  # relay_test_password in molecule.yml
WRONG = "Wrong-Pa55-QQQQ-0042"


@pytest.fixture(scope="module")
def relay():
    return helpers.host("relay")


@pytest.fixture(scope="module")
def upstream():
    return helpers.host("upstream")


def send_from_client(token: str) -> list[tuple[int, str]]:
    relay_ip = helpers.container_ip("relay")
    return helpers.smtp(
        "client",
        relay_ip,
        25,
        [
            ["ehlo", "client.internal.test"],
            ["mail", "FROM:<alice@client.internal.test>"],
            ["rcpt", "TO:<carol@upstream.example.test>"],
            ["data", helpers.message("alice@client.internal.test", "carol@upstream.example.test", f"relay {token}")],
        ],
    )


def delivered(upstream, token: str, timeout: int = 60) -> bool:
    cmd = f"for i in $(seq {timeout}); do grep -l {token} /home/carol/Maildir/new/* 2>/dev/null && exit 0; sleep 1; done; exit 1"
    return upstream.run(cmd).rc == 0


def queue(relay) -> list[dict]:
    out = relay.check_output("postqueue -j")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_password_map_is_root_only(relay):
    for path in ("/etc/postfix/smtp_auth", "/etc/postfix/smtp_auth.db"):
        f = relay.file(path)
        assert f.exists, path
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600), path
    assert relay.run("postconf -h relayhost").stdout.strip().endswith("]:587")
    assert relay.run("postconf -h smtp_tls_security_level").stdout.strip() == "encrypt"
    assert relay.run("postconf -h smtp_sasl_security_options").stdout.strip() == "noanonymous"


def test_internal_client_mail_reaches_upstream_through_authenticated_relay(relay, upstream):
    token = uuid.uuid4().hex
    replies = send_from_client(token)
    assert [r[0] for r in replies] == [220, 250, 250, 250, 354, 250], replies
    assert delivered(upstream, token), f"mail {token} did not reach carol's Maildir on upstream"
    log = upstream.run("journalctl --no-pager -o cat -t postfix/submission/smtpd").stdout
    assert "sasl_username=relayuser" in log, log[-2000:]
    relay_log = relay.run("journalctl --no-pager -o cat -t postfix/smtp").stdout
    assert any(":587" in line and "status=sent" in line for line in relay_log.splitlines()), relay_log[-2000:]


def test_sender_outside_mynetworks_cannot_relay(relay):
    relay_ip = helpers.container_ip("relay")
    replies = helpers.smtp(
        "upstream",
        relay_ip,
        25,
        [
            ["ehlo", "upstream.example.test"],
            ["mail", "FROM:<someone@upstream.example.test>"],
            ["rcpt", "TO:<victim@elsewhere.example>"],
        ],
    )
    assert replies[3][0] == 554 and "5.7.1" in replies[3][1], replies


def test_wrong_password_defers_and_fixing_it_delivers(relay, upstream):
    broken = helpers.run_converge({"relay_test_password": WRONG}, args=("-v", "--diff"))
    assert broken.returncode == 0, broken.stdout[-3000:]
    token = uuid.uuid4().hex
    try:
        replies = send_from_client(token)
        assert replies[-1][0] == 250, replies
        waiting = []
        for _attempt in range(60):
            waiting = queue(relay)
            if waiting and all(r.get("delay_reason") for r in waiting[0]["recipients"]):
                break
            time.sleep(1)
        assert len(waiting) == 1, waiting
        reasons = " ".join(r.get("delay_reason") or "" for r in waiting[0]["recipients"])
        assert "authentication failed" in reasons.lower() or "sasl" in reasons.lower(), waiting
        assert not delivered(upstream, token, timeout=3)
    finally:
        fixed = helpers.run_converge(args=("-v", "--diff"))
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    # Re-running the play with the right password delivers what was waiting.
    assert delivered(upstream, token), "the deferred message was not delivered after fixing the password"
    assert queue(relay) == []
    for run in (broken, fixed):
        output = run.stdout + run.stderr
        assert PASSWORD not in output and WRONG not in output, "a relay password appeared in ansible-playbook output"
