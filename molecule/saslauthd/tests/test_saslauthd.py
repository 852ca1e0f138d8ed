"""SMTP AUTH through saslauthd with a system user's password, proven from the outside host."""

from __future__ import annotations

import base64
import time

import helpers
import pytest

CAROL = ("carol", "Carol-System-Password-1")
EHLO = ["ehlo", "client.outside.test"]


def _plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_saslauthd_runs_with_socket_in_postfix_chroot(server):
    assert server.service("saslauthd").is_running
    assert server.service("saslauthd").is_enabled
    assert server.file("/var/spool/postfix/var/run/saslauthd/mux").is_socket
    link = server.file("/run/saslauthd")
    assert link.is_symlink and link.linked_to == "/var/spool/postfix/var/run/saslauthd"
    assert "sasl" in server.user("postfix").groups
    assert 'MECHANISMS="pam"' in server.file("/etc/default/saslauthd").content_string


def test_postfix_uses_cyrus_sasl(server):
    conf = server.file("/etc/postfix/sasl/smtpd.conf").content_string
    assert "pwcheck_method: saslauthd" in conf
    assert "mech_list: plain login" in conf
    assert server.check_output("postconf -h smtpd_sasl_type") == "cyrus"
    assert server.check_output("postconf -h smtpd_sasl_path") == "smtpd"
    assert server.check_output("postconf -h postmaster_mua_sasl_auth_enable") == "yes"


@pytest.mark.parametrize("service", [None, "smtp"])
def test_testsaslauthd_accepts_the_system_password(server, service):
    cmd = "testsaslauthd -u %s -p %s" + (" -s smtp" if service else "")
    result = server.run(cmd, *CAROL)
    assert result.rc == 0 and "OK" in result.stdout, result.stdout + result.stderr
    wrong = server.run(cmd, CAROL[0], "wrong-password")
    assert wrong.rc != 0 and "NO" in wrong.stdout


def test_no_auth_before_starttls(server_ip):
    replies = helpers.smtp("client", server_ip, 587, [EHLO])
    assert "AUTH" not in replies[1][1]


@pytest.mark.parametrize(("password", "code"), [(CAROL[1], 235), ("wrong-password", 535)])
def test_submission_auth_plain(server_ip, password, code):
    steps = [EHLO, ["starttls"], EHLO, ["AUTH", "PLAIN", _plain(CAROL[0], password)]]
    replies = helpers.smtp("client", server_ip, 587, steps)
    assert "AUTH PLAIN LOGIN" in replies[3][1], replies
    assert replies[4][0] == code, replies


def test_authenticated_message_reaches_the_users_maildir(server, server_ip):
    subject = f"saslauthd-delivery-{time.time_ns()}"
    rcpt = "carol@mail.example.test"
    steps = [
        EHLO,
        ["starttls"],
        EHLO,
        ["auth", *CAROL],
        ["MAIL", f"FROM:<{rcpt}>"],
        ["RCPT", f"TO:<{rcpt}>"],
        ["data", helpers.message(rcpt, rcpt, subject)],
    ]
    replies = helpers.smtp("client", server_ip, 587, steps)
    assert replies[4][0] == 235, replies
    assert replies[-1][0] == 250, replies
    cmd = f"for i in $(seq 30); do grep -rl 'Subject: {subject}' /home/carol/Maildir/new/ && exit 0; sleep 1; done; exit 1"
    found = server.run(cmd)
    assert found.rc == 0, server.run("journalctl -t postfix/local --no-pager -n 20").stdout
    assert server.file(found.stdout.split()[0]).user == "carol"


def test_unauthenticated_relay_on_submission_is_refused(server_ip):
    steps = [EHLO, ["starttls"], EHLO, ["MAIL", "FROM:<x@outside.test>"], ["RCPT", "TO:<someone@elsewhere.test>"]]
    replies = helpers.smtp("client", server_ip, 587, steps)
    assert replies[-1][0] in (530, 554), replies
