"""SRS for forwards with postsrsd, proven end to end under the test's own DNS.

strict.test (SPF: the dns container, the unlisted outside sender, only, ``-all``; MX: the receiver; a
DKIM key of its own) sends from the dns container to carol@sender.test, an alias on the server for
alice@sender.test (local mailbox) and bob@remote.test (forwarded to the receiver). Every record comes
from mail_dns (converge.yml).
"""

from __future__ import annotations

import base64
import json
import time

import helpers
import pytest
from test_dkim import ALICE, OUTSIDE, OUTSIDE_HELO, VERIFY, VMAIL, arrived, header, receiver

ORIGIN = "orig@strict.test"
CAROL = "carol@sender.test"

# Run on the receiver: dkimpy signs the message on stdin as strict.test (selector origin), relaxed/relaxed.
SIGN = r"""
import sys, dkim
data = sys.stdin.buffer.read().replace(b"\n", b"\r\n")
key = open("/root/strict-origin.pem", "rb").read()
sig = dkim.sign(data, b"origin", b"strict.test", key, canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
sys.stdout.write((sig + data).decode().replace("\r\n", "\n"))
"""

# Run on the receiver: pyspf's verdict for a connecting IP, an envelope sender and a HELO name.
SPF = r"""
import json, sys, spf
ip, sender, helo = sys.argv[1:4]
print(json.dumps(spf.check2(i=ip, s=sender, h=helo)))
"""


def spf_verdict(ip: str, sender: str) -> str:
    result = receiver().run("python3 -c %s %s %s %s", SPF, ip, sender, "mail.example.test")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)[0]


def verify_text(text: str) -> dict:
    """dkimpy's verdict on the receiver for a message given as text (e.g. a copy from the server)."""
    encoded = base64.b64encode(text.encode()).decode()
    result = receiver().run("echo %s | base64 -d | python3 -c %s", encoded, VERIFY)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def return_path(text: str) -> str:
    values = header(text, "Return-Path")
    assert len(values) == 1, text
    return values[0].strip("<>")


@pytest.fixture(scope="module")
def sent() -> dict:
    """A message signed by strict.test, sent from the outside sender (which strict.test's SPF authorizes) to carol."""
    subject = f"srs-forward-{time.time_ns()}"
    original = helpers.message(
        ORIGIN, CAROL, subject, body="first line of the origin\nsecond line\n",
        headers=f"Date: Mon, 07 Dec 2026 02:00:00 +0000\nMessage-ID: <{subject}@strict.test>\n",
    )  # fmt: skip
    signed = receiver().run("printf '%%s' %s | python3 -c %s", original, SIGN)
    assert signed.rc == 0, signed.stderr
    text = signed.stdout
    assert text.startswith("DKIM-Signature:"), text
    steps = [
        ["ehlo", OUTSIDE_HELO],
        ["MAIL", f"FROM:<{ORIGIN}>"],
        ["RCPT", f"TO:<{CAROL}>"],
        ["data", text],
    ]
    replies = helpers.smtp(OUTSIDE, helpers.container_ip("server"), 25, steps)
    assert replies[-1][0] == 250, replies
    forwarded = receiver().file(arrived(receiver(), "/home/bob/Maildir/new", subject)).content_string
    local = helpers.host("server").file(arrived(helpers.host("server"), f"{VMAIL}/new", subject)).content_string
    return {"subject": subject, "text": text, "forwarded": forwarded, "local": local}


def test_postfix_asks_postsrsd_for_envelopes_only(server):
    assert server.service("postsrsd").is_running
    assert server.check_output("postconf -h sender_canonical_maps") == "tcp:127.0.0.1:10001"
    assert server.check_output("postconf -h sender_canonical_classes") == "envelope_sender"
    assert server.check_output("postconf -h recipient_canonical_maps") == "tcp:127.0.0.1:10002"
    assert server.check_output("postconf -h recipient_canonical_classes") == "envelope_recipient"
    assert server.check_output("postconf -h lmtp_generic_maps") == "tcp:127.0.0.1:10002"
    assert server.file("/etc/postfix/postmaster.d/46-srs.json").exists
    secret = server.file("/etc/postsrsd.secret")
    assert (secret.user, secret.group, secret.mode) == ("root", "root", 0o600)
    settings = server.file("/etc/default/postsrsd").content_string
    assert "SRS_DOMAIN=example.test\n" in settings
    assert "SRS_EXCLUDE_DOMAINS=sender.test,mail.example.test\n" in settings


def test_the_forwarded_copy_passes_spf_at_the_receiver(sent, server_ip):
    sender = return_path(sent["forwarded"])
    assert sender.startswith("SRS0=") and sender.endswith("=strict.test=orig@example.test"), sender
    assert spf_verdict(server_ip, sender) == "pass"
    # Negative control: without SRS the receiver would check strict.test's -all against the server.
    assert spf_verdict(server_ip, ORIGIN) == "fail"
    # And the origin itself passes from the outside sender it authorizes.
    assert spf_verdict(helpers.container_ip(OUTSIDE), ORIGIN) == "pass"


def test_the_origin_signature_still_verifies_after_the_forward(sent):
    assert verify_text(sent["forwarded"]) == {"ok": True, "domain": "strict.test", "selector": "origin"}
    # Negative control: the same copy altered fails.
    assert verify_text(sent["forwarded"].replace("second line", "altered line"))["ok"] is False


def test_local_delivery_is_unchanged(sent):
    local = sent["local"]
    # The locally delivered copy keeps the original envelope sender (the LMTP client reverses SRS).
    assert return_path(local) == ORIGIN
    for name in ("From", "To", "Subject", "Message-ID", "DKIM-Signature"):
        assert header(local, name) == header(sent["text"], name), name
    # The body, byte for byte (up to the trailing empty lines the SMTP end of data may fold).
    assert local.split("\n\n", 1)[1].rstrip("\n") == sent["text"].split("\n\n", 1)[1].rstrip("\n")
    assert verify_text(local)["ok"] is True
    # The forwarded copy's headers are unchanged too: only its envelope sender is the SRS address.
    for name in ("From", "To"):
        assert header(sent["forwarded"], name) == header(sent["text"], name), name


def test_a_bounce_to_the_srs_address_reaches_the_original_sender(sent, server_ip):
    srs = return_path(sent["forwarded"])
    subject = f"srs-bounce-{time.time_ns()}"
    steps = [
        ["ehlo", "mx.remote.test"],
        ["MAIL", "FROM:<>"],
        ["RCPT", f"TO:<{srs}>"],
        ["data", helpers.message("MAILER-DAEMON@remote.test", srs, subject, body="Undelivered: " + sent["subject"])],
    ]
    replies = helpers.smtp("receiver", server_ip, 25, steps)
    assert replies[-1][0] == 250, replies
    bounce = receiver().file(arrived(receiver(), "/home/orig/Maildir/new", subject)).content_string
    assert sent["subject"] in bounce
    # A forged SRS address (a hash made without the server's secret) is not reversed: it is refused.
    forged = srs.split("=", 2)
    forged[1] = "AAAA" if forged[1] != "AAAA" else "BBBB"
    steps[2] = ["RCPT", f"TO:<{'='.join(forged)}>"]
    assert helpers.smtp("receiver", server_ip, 25, steps[:3])[-1][0] == 550


def test_mail_of_local_users_forwarded_out_is_signed(server_ip):
    subject = f"srs-local-forward-{time.time_ns()}"
    steps = [
        ["ehlo", "client.outside.test"],
        ["starttls"],
        ["ehlo", "client.outside.test"],
        ["auth", *ALICE],
        ["MAIL", f"FROM:<{ALICE[0]}>"],
        ["RCPT", f"TO:<{CAROL}>"],
        ["data", helpers.message(ALICE[0], CAROL, subject, body="from alice to carol\n")],
    ]
    replies = helpers.smtp("client", server_ip, 587, steps)
    assert replies[-1][0] == 250, replies
    text = receiver().file(arrived(receiver(), "/home/bob/Maildir/new", subject)).content_string
    assert len(header(text, "DKIM-Signature")) == 1, text
    verdict = verify_text(text)
    assert verdict["ok"] is True and verdict["domain"] == "sender.test", verdict
    # A local sender is never rewritten: it passes SPF as itself.
    assert return_path(text) == ALICE[0]
