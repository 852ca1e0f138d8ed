"""Client -> relay -> upstream:587 (or a branch provider, by sender; or 465 in wrapper mode) with SASL and TLS."""

from __future__ import annotations

import json
import re
import time
import uuid

import helpers
import pytest

PASSWORD = "Relay-Pa55-XYZZY-7319"  # relay_test_password in molecule.yml
WRONG = "Wrong-Pa55-QQQQ-0042"
# The tests change only the relay: they re-run the play on it alone.
RELAY_ONLY = ("-v", "--diff", "--limit", "pm-relay-relay")


@pytest.fixture(scope="module")
def relay():
    return helpers.host("relay")


@pytest.fixture(scope="module")
def upstream():
    return helpers.host("upstream")


@pytest.fixture(scope="module")
def branch():
    return helpers.host("branch")


ALICE = "alice@client.internal.test"  # relayed through postfix_relayhost (upstream)
BOB = "bob@branch.internal.test"  # relayed through postfix_sender_dependent_relayhosts (branch)


def send_from_client(token: str, sender: str = ALICE) -> list[tuple[int, str]]:
    relay_ip = helpers.container_ip("relay")
    return helpers.smtp(
        "client",
        relay_ip,
        25,
        [
            ["ehlo", "client.internal.test"],
            ["mail", f"FROM:<{sender}>"],
            ["rcpt", "TO:<carol@upstream.example.test>"],
            ["data", helpers.message(sender, "carol@upstream.example.test", f"relay {token}")],
        ],
    )


def delivered(provider, token: str, timeout: int = 60) -> bool:
    cmd = f"for i in $(seq {timeout}); do grep -l {token} /home/carol/Maildir/new/* 2>/dev/null && exit 0; sleep 1; done; exit 1"
    return provider.run(cmd).rc == 0


def arrival(provider, name: str, token: str) -> str:
    """The provider's smtpd log line of the session that brought message *token* (found by its queue id)."""
    path = provider.check_output(f"grep -l {token} /home/carol/Maildir/new/*").split()[0]
    text = provider.file(path).content_string
    match = re.search(rf"by {name}\.example\.test \(Postfix\) with (\w+) id (\w+)", text)
    assert match and match.group(1) == "ESMTPSA", text[:1500]
    queue_id = match.group(2)
    log = provider.check_output("journalctl --no-pager -o short | grep -F -- %s", f"{queue_id}: client=")
    lines = [line for line in log.splitlines() if f"{queue_id}: client=" in line]
    assert len(lines) == 1, log
    return lines[0]


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


def test_internal_client_mail_reaches_upstream_through_authenticated_relay(relay, upstream, branch):
    token = uuid.uuid4().hex
    replies = send_from_client(token)
    assert [r[0] for r in replies] == [220, 250, 250, 250, 354, 250], replies
    assert delivered(upstream, token), f"mail {token} did not reach carol's Maildir on upstream"
    line = arrival(upstream, "upstream", token)
    assert "postfix/submission/smtpd" in line and "sasl_username=relayuser" in line, line
    assert not delivered(branch, token, timeout=1)
    relay_log = relay.run("journalctl --no-pager -o cat -t postfix/smtp").stdout
    upstream_ip = helpers.container_ip("upstream")
    assert any(f"[{upstream_ip}]:587" in line and "status=sent" in line for line in relay_log.splitlines()), relay_log[
        -2000:
    ]


def test_the_branch_sender_goes_through_its_own_relay_host(relay, upstream, branch):
    assert relay.check_output("postconf -h sender_dependent_relayhost_maps") == "hash:/etc/postfix/sender_relayhost"
    assert relay.check_output("postconf -h smtp_sender_dependent_authentication") == "yes"
    token = uuid.uuid4().hex
    replies = send_from_client(token, sender=BOB)
    assert [r[0] for r in replies] == [220, 250, 250, 250, 354, 250], replies
    # Same recipient, other sender: the branch provider received it, with the branch's credentials.
    assert delivered(branch, token), f"mail {token} from {BOB} did not reach carol's Maildir on branch"
    line = arrival(branch, "branch", token)
    assert "postfix/submission/smtpd" in line and "sasl_username=branchuser" in line, line
    assert not delivered(upstream, token, timeout=1)


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


def test_wrong_password_defers_and_fixing_it_delivers_over_465_in_wrapper_mode(relay, upstream, branch):
    # Both relay hosts on port 465 (TLS wrapper mode), first with a wrong password.
    broken = helpers.run_converge({"relay_test_password": WRONG, "relay_port": 465}, args=RELAY_ONLY)
    assert broken.returncode == 0, broken.stdout[-3000:]
    fixed = None
    token = uuid.uuid4().hex
    try:
        assert relay.check_output("postconf -h smtp_tls_wrappermode") == "yes"
        assert relay.check_output("postconf -h relayhost").endswith("]:465")
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
        assert not delivered(upstream, token, timeout=1)
        # Re-running the play with the right password delivers what was waiting, over 465.
        fixed = helpers.run_converge({"relay_port": 465}, args=RELAY_ONLY)
        assert fixed.returncode == 0, fixed.stdout[-3000:]
        assert delivered(upstream, token), "the deferred message was not delivered after fixing the password"
        # It arrived on upstream's smtps service (465, smtpd_tls_wrappermode=yes) with AUTH.
        line = arrival(upstream, "upstream", token)
        assert "postfix/smtps/smtpd" in line and "sasl_username=relayuser" in line, line
        assert (
            upstream.check_output("postconf -P smtps/inet/smtpd_tls_wrappermode")
            == "smtps/inet/smtpd_tls_wrappermode = yes"
        )
        upstream_ip = helpers.container_ip("upstream")
        relay_log = relay.check_output("journalctl --no-pager -o cat -t postfix/smtp")
        assert any(f"[{upstream_ip}]:465" in line and "status=sent" in line for line in relay_log.splitlines())
        # The sender-dependent relay host follows on 465 too.
        branch_token = uuid.uuid4().hex
        assert send_from_client(branch_token, sender=BOB)[-1][0] == 250
        assert delivered(branch, branch_token)
        line = arrival(branch, "branch", branch_token)
        assert "postfix/smtps/smtpd" in line and "sasl_username=branchuser" in line, line
        assert queue(relay) == []
    finally:
        restored = helpers.run_converge(args=RELAY_ONLY)
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert relay.check_output("postconf -h smtp_tls_wrappermode") == "no"
    assert relay.check_output("postconf -h relayhost").endswith("]:587")
    for run in (broken, fixed, restored):
        output = run.stdout + run.stderr if run else ""
        assert PASSWORD not in output and WRONG not in output, "a relay password appeared in ansible-playbook output"
