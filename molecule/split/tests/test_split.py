"""docs/examples/split-hosts end to end: AUTH on the MX answered by Dovecot on the mail store, delivery there, IMAP read."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import helpers
import mailclient
import pytest

USER = "alice@example.org"
PASSWORD = "Split-Alice-Pa55-4242"  # vault_alice_password in molecule.yml
MAILDIR = "/var/mail/vmail/example.org/alice"


@pytest.fixture(scope="module")
def mx():
    return helpers.host("mx")


@pytest.fixture(scope="module")
def imap():
    return helpers.host("imap")


def submit(password: str, rcpt: str, token: str) -> list[tuple[int, str]]:
    """From the outside client: 587, STARTTLS, AUTH, one message; the replies."""
    steps = [
        ["ehlo", "client.outside.test"],
        ["starttls"],
        ["ehlo", "client.outside.test"],
        ["auth", USER, password],
        ["mail", f"FROM:<{USER}>"],
        ["rcpt", f"TO:<{rcpt}>"],
        ["data", helpers.message(USER, rcpt, f"split {token}")],
    ]
    return helpers.smtp("client", helpers.container_ip("mx"), 587, steps)


def connects(role: str, target: str, port: int) -> bool:
    """Whether a TCP connection from the container *role* to target:port succeeds within 3 s."""
    probe = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3)"
    return helpers.host(role).run("python3 -c %s %s %s", probe, target, str(port)).rc == 0


def test_the_mx_runs_no_dovecot_and_asks_the_mail_store(mx, imap):
    assert not mx.package("dovecot-core").is_installed
    assert mx.check_output("postconf -h smtpd_sasl_type smtpd_sasl_path").split() == [
        "dovecot",
        "inet:imap.example.org:12345",
    ]
    assert mx.check_output("postconf -h transport_maps") == "hash:/etc/postfix/transport"
    assert "warning" not in mx.run("postconf -n").stderr
    assert imap.package("dovecot-core").is_installed
    # The mail store runs neither submission nor smtps (the example turns them off).
    assert imap.run("postconf -M submission/inet smtps/inet").stdout.strip() == ""


def test_auth_on_the_mx_is_answered_by_dovecot_on_the_mail_store():
    token = uuid.uuid4().hex
    replies = submit("Wrong-Pa55-0000", USER, token)
    assert replies[4][0] == 535, replies
    # No AUTH before STARTTLS on 587.
    plain = helpers.smtp("client", helpers.container_ip("mx"), 587, [["ehlo", "client.outside.test"]])
    assert "AUTH" not in plain[1][1], plain


def test_mail_submitted_on_the_mx_is_delivered_on_the_mail_store_and_read_over_imap(mx, imap):
    token = uuid.uuid4().hex
    replies = submit(PASSWORD, USER, token)
    assert [r[0] for r in replies] == [220, 250, 220, 250, 235, 250, 250, 354, 250], replies
    found = imap.run(
        f"for i in $(seq 60); do grep -l {token} {MAILDIR}/new/* 2>/dev/null && exit 0; sleep 1; done; exit 1"
    )
    assert found.rc == 0, f"message {token} did not reach {MAILDIR}/new on the mail store"
    headers = imap.file(found.stdout.split()[0]).content_string.split("\n\n", 1)[0]
    received = [
        line for line in headers.replace("\n\t", " ").replace("\n ", " ").splitlines() if line.startswith("Received:")
    ]
    # Newest first: Dovecot's LMTP delivery, the mail store's smtpd (from the MX), the MX's submission with AUTH.
    assert "with LMTP" in received[0], received
    assert "from mx.example.org" in received[1] and "by imap.example.org (Postfix) with ESMTPS" in received[1], received
    assert "by mx.example.org (Postfix) with ESMTPSA" in received[2], received
    # The MX handed it over through the example's transport, to port 25 of the mail store.
    mx_log = mx.check_output("journalctl --no-pager -o cat -t postfix/smtp")
    assert any(
        "relay=imap.example.org[" in line and "]:25" in line and "status=sent" in line for line in mx_log.splitlines()
    ), mx_log[-2000:]
    session = mailclient.session("imaps", helpers.container_ip("imap"), 993, USER, PASSWORD)
    assert session.get("login") == "OK", session
    assert any(token in subject for subject in session["subjects"]), session


def test_the_mx_refuses_an_unknown_user_of_the_relayed_domain():
    replies = submit(PASSWORD, "nobody@example.org", uuid.uuid4().hex)
    assert replies[6][0] == 550 and "5.1.1" in replies[6][1], replies


def test_the_sasl_port_is_open_to_the_mx_only():
    imap_ip = helpers.container_ip("imap")
    assert connects("mx", imap_ip, 12345)
    assert not connects("client", imap_ip, 12345)
    assert connects("client", imap_ip, 993)


def test_a_virtual_domain_that_postfix_treats_as_local_is_refused_before_any_change(imap):
    # imap.example.org is the mail store's $myhostname, which its mydestination lists.
    domains = [
        {"name": "example.org", "users": [{"name": "alice", "password": PASSWORD}]},
        {"name": "imap.example.org", "users": [{"name": "bob", "password": PASSWORD}]},
    ]
    watched = ("/etc/postfix", "/etc/dovecot", "/var/mail/vmail")
    before = helpers.snapshot(imap, *watched)
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    playbook = os.path.join(os.path.dirname(__file__), "mailboxes_only.yml")
    result = subprocess.run(
        ["ansible-playbook", "-i", inventory, playbook, "-e", json.dumps({"mailboxes_domains": domains})],
        capture_output=True,
        text=True,
        check=False,
    )
    helpers.assert_fails_unchanged(
        imap,
        result,
        ["mailboxes_domains[1].name: imap.example.org is also a local domain of Postfix", "postfix_mydestination"],
        watched,
        before,
    )
    assert PASSWORD not in result.stdout + result.stderr
