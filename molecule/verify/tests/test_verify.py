"""The verify role against a live server: it passes, reads only in check mode, and names what is broken.

Every probe runs from the outside client (verify_probe_host in vars/server.yml); these tests run
the role with tests/verify_only.yml and read its report file and its output.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

import helpers
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PLAYBOOK = Path(__file__).resolve().parent / "verify_only.yml"
PASSWORD = "Verify-Probe-Password-7"  # vars/server.yml


def run_verify(report: Path, extra: dict | None = None, *args: str) -> subprocess.CompletedProcess:
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    variables = {"verify_report_file": str(report), **(extra or {})}
    cmd = ["ansible-playbook", "-i", inventory, str(PLAYBOOK), "-e", json.dumps(variables), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def probe_messages(server, since: int) -> int:
    """How many probe messages Postfix's cleanup accepted since *since* (epoch seconds)."""
    out = server.run(f"journalctl -t postfix/cleanup --no-pager -o cat --since @{since}").stdout
    return sum(1 for line in out.splitlines() if "message-id=<mail-probe." in line)


def test_the_role_passes_and_verifies_the_certificate_with_the_test_ca(server, tmp_path):
    since = int(server.check_output("date +%s"))
    before = server.check_output("find /var/mail/vmail/example.test/probe -type f | wc -l")
    result = run_verify(tmp_path / "report.txt", None, "-v")
    assert result.returncode == 0, result.stdout[-3000:]
    report = (tmp_path / "report.txt").read_text()
    assert "problems" in report.splitlines()[1]
    assert report.splitlines()[1].endswith("checks passed, 0 problems")
    for line in (
        "  ok    smtp          25   STARTTLS TLSv1.",
        "  ok    submission   587   STARTTLS TLSv1.",
        "  ok    smtps        465   TLS TLSv1.",
        "  ok    imaps        993   TLS TLSv1.",
        "  ok    pop3         110   STARTTLS TLSv1.",
        "  ok    open relay         RCPT TO:<relay-check@example.invalid> refused: 554 5.7.1",
        "  ok    send               probe@example.test -> probe@example.test via submission with AUTH: 250 2.0.0 Ok",
        "  ok    delivery           found in probe@example.test's INBOX over imaps after",
        "  ok    closed ports       24, 783, 3310, 10024, 10025, 12340: refused or filtered",
        '  _dmarc.example.test. 3600 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"',
        '  _smtp._tls.example.test. 3600 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@example.test"',
        "    mode: enforce",
    ):
        assert any(text.startswith(line) for text in report.splitlines()), (line, report)
    assert "AUTH PLAIN LOGIN after STARTTLS only; login ok" in report
    # The certificate is the scenario CA's, and the client verified it (chain and name).
    cert = next(text for text in report.splitlines() if text.startswith("  ok    certificate"))
    assert "mail.example.test, issued by postmaster.mailserver verify scenario CA" in cert
    assert cert.endswith("verified with /usr/local/share/verify-test-ca.pem")
    # The report says the password went only over verified TLS (no insecure switch).
    assert "  TLS: certificates verified with /usr/local/share/verify-test-ca.pem" in report.splitlines()
    # One message was sent and found, and deleted again; the password was never shown.
    assert probe_messages(server, since) == 1
    assert server.check_output("find /var/mail/vmail/example.test/probe -type f | wc -l") == before
    assert PASSWORD not in result.stdout


def test_check_mode_sends_nothing(server, tmp_path):
    since = int(server.check_output("date +%s"))
    result = run_verify(tmp_path / "report.txt", None, "--check")
    assert result.returncode == 0, result.stdout[-3000:]
    report = (tmp_path / "report.txt").read_text()
    assert "  --    send               not run: check mode: no message is sent" in report
    assert "  ok    open relay " in report
    assert "changed=0" in result.stdout
    time.sleep(1)
    assert probe_messages(server, since) == 0


def test_bad_variables_fail_before_the_probe(tmp_path):
    result = run_verify(tmp_path / "report.txt", {"verify_services": ["smtp", "lmtp"]})
    assert result.returncode != 0
    assert "verify_probe_plan: verify_services[1]: unknown 'lmtp'" in result.stdout + result.stderr
    assert not (tmp_path / "report.txt").exists()


@pytest.fixture
def broken(server):
    """The server broken on purpose, by hand, bypassing the roles; everything is restored afterwards.

    - An open relay: `mynetworks = 0.0.0.0/0, [::]/0` set with postconf, so `permit_mynetworks` lets every
      client relay. (A `permit` in the restriction lists does not do it: Postfix's smtpd ignores what follows
      a `permit` and then refuses to start without reject_unauth_destination in one of them.)
    - Dovecot stopped: IMAP and POP3 refuse connections, and Postfix's smtpd dies where it offers
      AUTH (no SASL mechanisms), so submission and smtps break too.
    - A message waiting in the deferred queue (LMTP to the stopped Dovecot fails).
    """
    server.check_output("cp -p /etc/postfix/main.cf /root/main.cf.verify-test")
    try:
        server.check_output("postconf -e 'mynetworks = 0.0.0.0/0, [::]/0'")
        server.check_output("postfix reload")
        server.check_output("systemctl stop dovecot")
        server.check_output("printf 'Subject: held\\n\\nheld by the test\\n' | sendmail -f root probe@example.test")
        for _attempt in range(30):
            if '"queue_name": "deferred"' in server.check_output("postqueue -j"):
                break
            time.sleep(1)
        else:
            pytest.fail("the message did not reach the deferred queue")
        # The test asks the queue to be older than verify_queue_max_age (1 s): the message is deferred
        # within a second of its arrival, and verify can read the queue a second later (a CI run on
        # bookworm found it 1 s old, not a problem). Three seconds make it older whatever the timing.
        time.sleep(3)
        yield
    finally:
        # A restart, not a reload: Postfix's master throttles the smtpd services that died.
        server.run("systemctl start dovecot")
        server.run("cp -p /root/main.cf.verify-test /etc/postfix/main.cf && systemctl restart postfix")
        server.run("postqueue -f")


def test_a_broken_server_fails_naming_each_problem(server, broken, tmp_path):
    result = run_verify(tmp_path / "report.txt", {"verify_queue_max_age": 1, "verify_timeout": 5})
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "problem(s) on mail.example.test:" in out
    report = (tmp_path / "report.txt").read_text()
    for line in (
        "  FAIL  open relay         OPEN RELAY: RCPT TO:<relay-check@example.invalid> from an unauthenticated "
        "client was accepted: 250 2.1.5 Ok",
        "  FAIL  imap         143   greeting: pm-verify-server:143: connection refused",
        "  FAIL  imaps        993   greeting: pm-verify-server:993: connection refused",
        "  FAIL  pop3         110   greeting: pm-verify-server:110: connection refused",
        "  FAIL  pop3s        995   greeting: pm-verify-server:995: connection refused",
        "  FAIL  submission   587   ",
        "  FAIL  smtps        465   ",
        "  FAIL  send               not sent: submission: ",
        "  1 messages (deferred 1); the oldest has waited ",
        "     1 x connect to mail.example.test[private/dovecot-lmtp]: Connection refused",
    ):
        assert any(text.startswith(line) for text in report.splitlines()), (line, report)
    # Port 25 itself still works: the open relay is found there, not a dead smtpd.
    assert any(text.startswith("  ok    smtp          25   STARTTLS TLSv1.") for text in report.splitlines()), report
    # The failure names each problem, one line each.
    for name in ("relay_refused: OPEN RELAY", "imap_banner:", "imaps_banner:", "pop3_banner:", "pop3s_banner:",
                 "submission_", "smtps_", "send: not sent", "queue: message "):  # fmt: skip
        assert f"- {name}" in out, (name, out[-3000:])
    assert PASSWORD not in out


def test_after_the_repair_the_role_passes_again(server, tmp_path):
    result = run_verify(tmp_path / "report.txt")
    assert result.returncode == 0, result.stdout[-3000:]
    for _attempt in range(30):
        if not server.check_output("postqueue -j"):
            break
        time.sleep(1)
    assert server.check_output("postqueue -j") == ""


def _public_key() -> str:
    """A fresh RSA 2048 public key as DKIM's p= value (base64 of the DER SubjectPublicKeyInfo)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _txt_record(name: str, public: str) -> str:
    """A dnsmasq txt-record line: the DKIM record split into strings of at most 255 bytes."""
    value = f"v=DKIM1; k=rsa; p={public}"
    strings = [value[i : i + 255] for i in range(0, len(value), 255)]
    return f"txt-record={name}," + ",".join(json.dumps(s) for s in strings)


def test_the_dkim_records_in_dns_must_be_the_keys_in_use(server, server_ip, tmp_path):
    """The dkim role's public keys (dkim_public_keys) against the client's DNS: a match passes, another key fails."""
    active, published, wrong = _public_key(), _public_key(), _public_key()
    keys = [
        {"domain": "example.test", "selector": "mail", "state": "active", "key_type": "rsa", "public": active},
        {"domain": "example.test", "selector": "next", "state": "published", "key_type": "rsa", "public": published},
    ]
    client = helpers.host("client")
    zone = "\n".join(
        [_txt_record("mail._domainkey.example.test", active), _txt_record("next._domainkey.example.test", wrong)]
    )
    written = client.run("printf '%%s\\n' %s > /etc/dnsmasq.d/20-dkim.conf && systemctl restart dnsmasq", zone)
    assert written.rc == 0, written.stderr
    common = {"dkim_public_keys": keys, "verify_send": False, "verify_dns_servers": ["127.0.0.1"]}
    result = run_verify(tmp_path / "report.txt", common)
    report = (tmp_path / "report.txt").read_text()
    assert result.returncode != 0, report
    lines = report.splitlines()
    assert any(
        line.startswith("  ok    dkim mail._domainkey.example.test published, the active key in use") for line in lines
    ), report
    assert any(
        line.startswith("  FAIL  dkim next._domainkey.example.test DNS publishes another key") for line in lines
    ), report
    assert "  - dkim next._domainkey.example.test: DNS publishes another key" in report
    # The report gives each selector's record to publish, split into strings that join back.
    for selector, public in (("mail", active), ("next", published)):
        line = next(line for line in lines if line.startswith(f"  {selector}._domainkey.example.test. 3600 IN TXT"))
        strings = line.split(" TXT ", 1)[1].replace('" "', '","')
        assert "".join(json.loads(f"[{strings}]")) == f"v=DKIM1; k=rsa; p={public}"
    # DNS that does not answer (nothing listens on the server's port 53) is reported, and is no problem.
    result = run_verify(tmp_path / "report.txt", {**common, "verify_dns_servers": [server_ip]})
    report = (tmp_path / "report.txt").read_text()
    assert result.returncode == 0, report
    assert "  --    dkim mail._domainkey.example.test not run: DNS did not answer" in report
    client.run("rm -f /etc/dnsmasq.d/20-dkim.conf && systemctl restart dnsmasq")
