"""DMARC enforcement with OpenDMARC after OpenDKIM, proven under the test's own DNS (records built by mail_dns).

example.test publishes p=reject and the server signs its mail (it is one of dkim_domains); its SPF
record (the SRS domain's) authorizes only the server and ends in ~all. monitor.test publishes p=none,
with an SPF record for mail.example.test ending in ~all. Mail from the unlisted outside sender (the dns
container) gets an SPF softfail for both: the server's policyd-spf refuses only a fail (test_spf.py), so
nothing but DMARC refuses it. The tests run after test_dkim.py and before test_spf.py and test_srs.py
(pytest takes the files in name order); the last one leaves enforcement on.
"""

from __future__ import annotations

import time

import helpers
from test_dkim import OUTSIDE, OUTSIDE_HELO

ALICE = "alice@sender.test"
VMAIL = "/var/mail/vmail/sender.test/alice"
DKIM_MILTER = "inet:127.0.0.1:8891"
DMARC_MILTER = "inet:127.0.0.1:8893"


def header(text: str, name: str) -> list[str]:
    """Every (unfolded) header *name* of the message *text*."""
    head = text.split("\n\n", 1)[0].replace("\n\t", " ").replace("\n ", " ")
    return [line.split(":", 1)[1].strip() for line in head.splitlines() if line.lower().startswith(name.lower() + ":")]


def send_from_outside(server_ip: str, sender: str, text: str) -> list[tuple[int, str]]:
    """The outside sender (not in mynetworks, not on the DNS list, not authorized by these SPF records) sends *text* to alice."""
    steps = [
        ["ehlo", OUTSIDE_HELO],
        ["MAIL", f"FROM:<{sender}>"],
        ["RCPT", f"TO:<{ALICE}>"],
        ["data", text],
    ]
    return helpers.smtp(OUTSIDE, server_ip, 25, steps)


def delivered(host, directory: str, subject: str) -> str:
    cmd = f"for i in $(seq 60); do grep -l 'Subject: {subject}' {directory}/* 2>/dev/null && exit 0; sleep 1; done; exit 1"
    found = host.run(cmd)
    assert found.rc == 0, f"no message {subject} in {directory}"
    return host.file(found.stdout.split()[0]).content_string


def ours(text: str) -> list[str]:
    """The Authentication-Results headers the server wrote (authserv-id mail.example.test)."""
    return [r for r in header(text, "Authentication-Results") if r.startswith("mail.example.test")]


def unsigned_reject_domain(server_ip: str) -> list[tuple[int, str]]:
    subject = f"dmarc-unsigned-{time.time_ns()}"
    return send_from_outside(server_ip, "someone@example.test", helpers.message("someone@example.test", ALICE, subject))


def test_opendmarc_follows_opendkim_for_smtpd_only(server):
    # Right after OpenDKIM's (an Ed25519 signer's milter, when one is active, may follow).
    milters = server.check_output("postconf -h smtpd_milters").replace(",", " ").split()
    assert milters[:2] == [DKIM_MILTER, DMARC_MILTER], milters
    milters = server.check_output("postconf -h non_smtpd_milters").replace(",", " ").split()
    assert milters[0] == DKIM_MILTER and DMARC_MILTER not in milters, milters
    assert server.file("/etc/postfix/postmaster.d/46-dmarc.json").exists
    conf = server.file("/etc/opendmarc.conf").content_string
    assert "TrustedAuthservIDs mail.example.test\n" in conf and "SPFSelfValidate true\n" in conf
    assert server.service("opendmarc").is_running and server.service("opendmarc").is_enabled


def test_unsigned_spf_failing_mail_of_a_p_reject_domain_is_refused_by_dmarc(server, server_ip):
    replies = unsigned_reject_domain(server_ip)
    # RCPT is accepted (the SPF softfail refuses nothing); the end of DATA is refused by OpenDMARC.
    assert replies[3][0] == 250, replies
    code, text = replies[-1]
    assert code == 550 and "rejected by DMARC policy for example.test" in text, replies
    log = server.run("journalctl -u opendmarc --no-pager -n 50").stdout
    assert "example.test fail" in log, log


def test_signed_aligned_mail_of_a_p_reject_domain_is_accepted(server, server_ip):
    """Mail the server signed for example.test, sent back to it from outside: DKIM passes aligned, DMARC passes."""
    subject = f"dmarc-signed-{time.time_ns()}"
    sent = server.run(
        "printf %s | /usr/sbin/sendmail -f root@example.test bob@remote.test",
        helpers.message("root@example.test", "bob@remote.test", subject, body="signed body\n"),
    )
    assert sent.rc == 0, sent.stderr
    original = delivered(helpers.host("receiver"), "/home/bob/Maildir/new", subject)
    assert any("d=example.test" in s for s in header(original, "DKIM-Signature")), original
    head, body = original.split("\n\n", 1)
    keep = head.replace("\n\t", "\0\t").replace("\n ", "\0 ").splitlines()
    dropped = ("return-path:", "delivered-to:")
    resent = "\n".join(line.replace("\0", "\n") for line in keep if not line.lower().startswith(dropped))
    replies = send_from_outside(server_ip, "root@example.test", resent + "\n\n" + body)
    assert replies[-1][0] == 250, replies
    results = " ".join(ours(delivered(server, f"{VMAIL}/new", subject)))
    assert "dkim=pass" in results and "dmarc=pass" in results and "header.from=example.test" in results, results


def test_failing_mail_of_a_p_none_domain_is_accepted_and_marked(server, server_ip):
    subject = f"dmarc-none-{time.time_ns()}"
    replies = send_from_outside(
        server_ip, "someone@monitor.test", helpers.message("someone@monitor.test", ALICE, subject)
    )
    assert replies[-1][0] == 250, replies
    results = " ".join(ours(delivered(server, f"{VMAIL}/new", subject)))
    assert "dmarc=fail (p=none" in results and "header.from=monitor.test" in results, results


def _converge(extra: dict | None = None) -> None:
    result = helpers.run_converge(extra, playbook="tests/dkim_only.yml")  # the dkim role alone
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def test_switching_enforcement_off_removes_the_milter_and_on_brings_it_back(server, server_ip):
    _converge({"dkim_dmarc_enforce": False})
    assert server.check_output("postconf -h smtpd_milters") == DKIM_MILTER
    assert not server.file("/etc/postfix/postmaster.d/46-dmarc.json").exists
    # The control: without OpenDMARC the same unsigned message is accepted, so the 550 was DMARC's.
    assert unsigned_reject_domain(server_ip)[-1][0] == 250
    _converge()
    assert server.check_output("postconf -h smtpd_milters") == f"{DKIM_MILTER}, {DMARC_MILTER}"
    assert unsigned_reject_domain(server_ip)[-1][0] == 550
