"""DKIM with OpenDKIM, proven end to end: dkimpy on a second mail host verifies against the test's own DNS."""

from __future__ import annotations

import base64
import json
import time

import helpers
import pytest

ALICE = ("alice@sender.test", "Alice-Dkim-Password-1")
BOB = "bob@remote.test"
VMAIL = "/var/mail/vmail/sender.test/alice"
# The unlisted outside sender on port 25 (the client, which submits with AUTH, is on the test's DNS list
# rbl.test, so its mail to port 25 is refused at RCPT: test_restrictions.py).
OUTSIDE = "dns"
OUTSIDE_HELO = "dns.outside.test"

# Run on the receiving host: dkimpy verifies the message on stdin against DNS (the test's dnsmasq).
VERIFY = r"""
import json, sys, dkim
data = sys.stdin.buffer.read()
d = dkim.DKIM(data)
try:
    ok, reason = d.verify(), ""
except dkim.ValidationError as exc:  # a body hash mismatch is raised, not returned
    ok, reason = False, str(exc)
text = lambda v: v.decode() if isinstance(v, bytes) else (v or "")
out = {"ok": bool(ok), "domain": text(d.domain), "selector": text(d.selector)}
if not ok:
    out["reason"] = reason
print(json.dumps(out))
"""


# Run on the receiving host: dkimpy's verdict on every DKIM-Signature of the message on stdin, in order.
VERIFY_ALL = r"""
import json, sys, dkim
data = sys.stdin.buffer.read()
count = sum(1 for name, _value in dkim.DKIM(data).headers if name.lower() == b"dkim-signature")
out = []
for idx in range(count):
    d = dkim.DKIM(data)
    try:
        ok, reason = d.verify(idx=idx), ""
    except dkim.ValidationError as exc:
        ok, reason = False, str(exc)
    fields = d.signature_fields or {}
    out.append({"ok": bool(ok), "domain": d.domain.decode(), "selector": d.selector.decode(),
                "algorithm": fields.get(b"a", b"").decode(), **({"reason": reason} if not ok else {})})
print(json.dumps(out))
"""


def receiver():
    return helpers.host("receiver")


def _plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def submit(server_ip: str, subject: str, port: int = 587) -> list[tuple[int, str]]:
    """Alice submits a message to bob@remote.test with AUTH (587 STARTTLS or 465 wrapper mode)."""
    steps = [] if port == 465 else [["ehlo", "client.outside.test"], ["starttls"]]
    steps += [
        ["ehlo", "client.outside.test"],
        ["auth", *ALICE],
        ["MAIL", f"FROM:<{ALICE[0]}>"],
        ["RCPT", f"TO:<{BOB}>"],
        ["data", helpers.message(ALICE[0], BOB, subject, body=f"body of {subject}\nsecond line\n")],
    ]
    replies = helpers.smtp("client", server_ip, port, steps, wrapper=port == 465)
    assert replies[-1][0] == 250, replies
    return replies


def arrived(host, directory: str, subject: str) -> str:
    """The path of the message with *subject* in *directory* (fails when none arrives within 60 s)."""
    cmd = f"for i in $(seq 60); do grep -l 'Subject: {subject}' {directory}/* 2>/dev/null && exit 0; sleep 1; done; exit 1"
    found = host.run(cmd)
    assert found.rc == 0, f"no message {subject} in {directory}"
    return found.stdout.split()[0]


def verify(path: str, edit: str = "") -> dict:
    """dkimpy's verdict on the message at *path* on the receiver (after the sed *edit*, when given)."""
    if edit:
        result = receiver().run("sed %s %s | python3 -c %s", edit, path, VERIFY)
    else:
        result = receiver().run("python3 -c %s < %s", VERIFY, path)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def header(text: str, name: str) -> list[str]:
    """Every (unfolded) header *name* of the message *text*."""
    head = text.split("\n\n", 1)[0].replace("\n\t", " ").replace("\n ", " ")
    return [line.split(":", 1)[1].strip() for line in head.splitlines() if line.lower().startswith(name.lower() + ":")]


@pytest.fixture(scope="module")
def signed(server_ip) -> str:
    subject = f"dkim-signed-{time.time_ns()}"
    submit(server_ip, subject)
    return arrived(receiver(), "/home/bob/Maildir/new", subject)


def test_keys_are_private_to_opendkim(server):
    for domain in ("sender.test", "example.test"):
        key = server.file(f"/etc/dkimkeys/{domain}/mail.private")
        assert (key.user, key.group, key.mode) == ("opendkim", "opendkim", 0o600)
        directory = server.file(f"/etc/dkimkeys/{domain}")
        assert (directory.user, directory.mode) == ("opendkim", 0o700)


def test_postfix_has_the_milter_once(server):
    # OpenDMARC follows OpenDKIM for smtpd only (the scenario enforces DMARC; tests/test_dmarc.py).
    assert server.check_output("postconf -h smtpd_milters") == "inet:127.0.0.1:8891, inet:127.0.0.1:8893"
    assert server.check_output("postconf -h non_smtpd_milters") == "inet:127.0.0.1:8891"
    assert server.check_output("postconf -h milter_default_action") == "accept"
    # amavis-style reinjection is not in this scenario; the fragment is the only one that names the milter.
    assert server.file("/etc/postfix/postmaster.d/45-dkim.json").exists


def test_the_published_record_is_the_key_in_use(server):
    public = server.check_output(
        "openssl pkey -in /etc/dkimkeys/sender.test/mail.private -pubout | grep -v -- '-----' | tr -d '\\n'"
    )
    answer = receiver().check_output(
        "python3 -c %s",
        "import dns.resolver, json; print(json.dumps([[s.decode() for s in r.strings] "
        "for r in dns.resolver.resolve('mail._domainkey.sender.test', 'TXT')]))",
    )
    strings = json.loads(answer)
    assert len(strings) == 1
    assert all(len(s.encode()) <= 255 for s in strings[0])
    assert len(strings[0]) == 2  # a 2048-bit key's record needs two strings
    assert "".join(strings[0]) == f"v=DKIM1; k=rsa; p={public}"


def test_submitted_mail_is_signed_and_verifies_at_the_receiver(signed):
    text = receiver().file(signed).content_string
    signatures = header(text, "DKIM-Signature")
    assert len(signatures) == 1, text
    assert "d=sender.test" in signatures[0] and "s=mail" in signatures[0]
    assert verify(signed) == {"ok": True, "domain": "sender.test", "selector": "mail"}


def test_mail_submitted_on_465_is_signed_too(server_ip):
    subject = f"dkim-465-{time.time_ns()}"
    submit(server_ip, subject, port=465)
    path = arrived(receiver(), "/home/bob/Maildir/new", subject)
    assert verify(path)["ok"] is True


def test_an_altered_message_fails(signed):
    # Negative control: one word of the body changed after signing.
    body = verify(signed, "s/second line/altered line/")
    assert body["ok"] is False and "body hash mismatch" in body["reason"], body
    # And a changed signed header.
    assert verify(signed, "s/^Subject: dkim-signed/Subject: dkim-changed/")["ok"] is False


def test_mail_from_outside_is_not_signed_and_is_verified(server, server_ip):
    subject = f"dkim-outside-{time.time_ns()}"
    steps = [
        ["ehlo", OUTSIDE_HELO],
        ["MAIL", "FROM:<someone@sender.test>"],
        ["RCPT", f"TO:<{ALICE[0]}>"],
        ["data", helpers.message("someone@sender.test", ALICE[0], subject)],
    ]
    replies = helpers.smtp(OUTSIDE, server_ip, 25, steps)
    assert replies[-1][0] == 250, replies
    text = server.file(arrived(server, f"{VMAIL}/new", subject)).content_string
    assert header(text, "DKIM-Signature") == [], text
    results = header(text, "Authentication-Results")
    assert any(r.startswith("mail.example.test") and "dkim=none" in r for r in results), text
    # Relaying from outside to another domain is refused before any signing.
    steps[2] = ["RCPT", f"TO:<{BOB}>"]
    assert helpers.smtp(OUTSIDE, server_ip, 25, steps[:3])[-1][0] == 554


def test_incoming_signed_mail_is_verified(server, server_ip, signed):
    """The message the server signed, sent back to it from outside: dkim=pass; tampered: dkim=fail."""
    original = receiver().file(signed).content_string
    body = original.split("\n\n", 1)
    keep = body[0].replace("\n\t", "\0\t").replace("\n ", "\0 ").splitlines()
    dropped = ("return-path:", "delivered-to:")
    head = "\n".join(line.replace("\0", "\n") for line in keep if not line.lower().startswith(dropped))
    for tamper, verdict in ((False, "dkim=pass"), (True, "dkim=fail")):
        subject = header(original, "Subject")[0]
        text = head + "\n\n" + (body[1].replace("second line", "altered line") if tamper else body[1])
        steps = [
            ["ehlo", OUTSIDE_HELO],
            ["MAIL", "FROM:<alice@sender.test>"],
            ["RCPT", f"TO:<{ALICE[0]}>"],
            ["data", text],
        ]
        replies = helpers.smtp(OUTSIDE, server_ip, 25, steps)
        assert replies[-1][0] == 250, replies
        marker = "altered line" if tamper else "second line"
        found = server.run(
            f"for i in $(seq 60); do f=$(grep -l 'Subject: {subject}' {VMAIL}/new/* 2>/dev/null | "
            f"xargs -r grep -l '{marker}' | head -1); [ -n \"$f\" ] && echo $f && exit 0; sleep 1; done; exit 1"
        )
        assert found.rc == 0
        results = header(server.file(found.stdout.strip()).content_string, "Authentication-Results")
        ours = [r for r in results if r.startswith("mail.example.test")]
        # OpenDKIM's header among ours (OpenDMARC adds its own dmarc= and spf= ones).
        assert any(r.split(";", 1)[1].strip().startswith(verdict) for r in ours), results


# Bad input (a selector with a dot, a space or a newline, key sizes, a domain that is not one, key
# directories outside the signer's) is thrown at the full server by the badinput scenario
# (molecule/badinput/cases/dkim.yml): each case fails before any change, naming the variable.


def _converge(selectors: list[dict]) -> None:
    # The dkim role alone, then the records (tests/dkim_only.yml): the rest of the server is unchanged.
    result = helpers.run_converge({"dkim_selectors": selectors}, playbook="tests/dkim_only.yml")
    journal = helpers.host("server").run("journalctl -u opendkim --no-pager -n 30").stdout
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:] + journal
    assert "OpenDKIM was restarted instead" not in result.stdout + result.stderr, journal


def test_rotation_without_a_gap(server, server_ip, signed):
    """Publish next while mail signs, switch, keep mail's record for the overlap, then retire mail."""
    old_key = server.check_output("sha256sum /etc/dkimkeys/sender.test/mail.private")
    _converge([{"name": "mail", "state": "active"}, {"name": "next", "state": "published"}])
    assert server.file("/etc/dkimkeys/sender.test/next.private").mode == 0o600
    assert server.check_output("sha256sum /etc/dkimkeys/sender.test/mail.private") == old_key  # never regenerated
    subject = f"dkim-before-switch-{time.time_ns()}"
    submit(server_ip, subject)
    before_switch = arrived(receiver(), "/home/bob/Maildir/new", subject)
    assert verify(before_switch)["selector"] == "mail"

    _converge([{"name": "next", "state": "active"}, {"name": "mail", "state": "published"}])
    subject = f"dkim-after-switch-{time.time_ns()}"
    submit(server_ip, subject)
    after_switch = arrived(receiver(), "/home/bob/Maildir/new", subject)
    assert verify(after_switch) == {"ok": True, "domain": "sender.test", "selector": "next"}
    # The overlap: mail signed before the switch still verifies.
    assert verify(before_switch)["ok"] is True
    assert verify(signed)["ok"] is True

    _converge([{"name": "next", "state": "active"}, {"name": "mail", "state": "retired"}])
    assert not server.file("/etc/dkimkeys/sender.test/mail.private").exists
    records = helpers.host("dns").file("/etc/dnsmasq.d/10-dkim-records.conf").content_string
    assert "mail._domainkey.sender.test" not in records
    assert "next._domainkey.sender.test" in records
    subject = f"dkim-after-retire-{time.time_ns()}"
    submit(server_ip, subject)
    assert verify(arrived(receiver(), "/home/bob/Maildir/new", subject))["ok"] is True


def verify_all(path: str, edit: str = "") -> list[dict]:
    """dkimpy's verdict on each signature of the message at *path* on the receiver (after the sed *edit*)."""
    if edit:
        result = receiver().run("sed %s %s | python3 -c %s", edit, path, VERIFY_ALL)
    else:
        result = receiver().run("python3 -c %s < %s", VERIFY_ALL, path)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def test_ed25519_dual_signing(server, server_ip):
    """An active rsa and an active ed25519 selector: two signatures, both verify (dkimpy with PyNaCl)."""
    dual = [
        {"name": "next", "state": "active"},
        {"name": "mail", "state": "retired"},
        {"name": "ed", "state": "active", "algorithm": "ed25519"},
    ]
    _converge(dual)
    key = server.file("/etc/dkimkeys/sender.test/ed.private")
    assert (key.user, key.mode) == ("opendkim", 0o600)
    assert "ED25519 Private-Key" in server.check_output(
        "openssl pkey -in /etc/dkimkeys/sender.test/ed.private -noout -text"
    )
    assert server.service("postmaster-opendkim-ed25519").is_running
    # The Ed25519 signer's milter in both lists, after OpenDKIM's (OpenDMARC's stays in smtpd's only).
    milters = server.check_output("postconf -h smtpd_milters").replace(",", " ").split()
    assert milters[0] == "inet:127.0.0.1:8891" and sorted(milters[1:]) == ["inet:127.0.0.1:8892", "inet:127.0.0.1:8893"]
    milters = server.check_output("postconf -h non_smtpd_milters").replace(",", " ").split()
    assert milters == ["inet:127.0.0.1:8891", "inet:127.0.0.1:8892"]
    # The record mail_dns built from the key: k=ed25519 and the bare 32-byte key (RFC 8463).
    raw = server.check_output(
        "openssl pkey -in /etc/dkimkeys/sender.test/ed.private -pubout -outform DER | tail -c 32 | base64 -w0"
    )
    answer = receiver().check_output(
        "python3 -c %s",
        "import dns.resolver; print(b''.join(dns.resolver.resolve('ed._domainkey.sender.test', 'TXT')[0].strings).decode())",
    )
    assert answer == f"v=DKIM1; k=ed25519; p={raw}"

    subject = f"dkim-dual-{time.time_ns()}"
    submit(server_ip, subject)
    path = arrived(receiver(), "/home/bob/Maildir/new", subject)
    verdicts = verify_all(path)
    assert sorted((v["algorithm"], v["selector"], v["domain"], v["ok"]) for v in verdicts) == [
        ("ed25519-sha256", "ed", "sender.test", True),
        ("rsa-sha256", "next", "sender.test", True),
    ], verdicts
    # Negative control: altered after signing, both fail.
    assert [v["ok"] for v in verify_all(path, "s/second line/altered line/")] == [False, False]

    # Switching Ed25519 off again stops the second signer and removes its unit; mail carries one signature.
    _converge([dual[0], dual[1], {**dual[2], "state": "retired"}])
    assert not server.file("/etc/systemd/system/postmaster-opendkim-ed25519.service").exists
    assert not server.file("/etc/dkimkeys/sender.test/ed.private").exists
    subject = f"dkim-single-again-{time.time_ns()}"
    submit(server_ip, subject)
    assert [v["algorithm"] for v in verify_all(arrived(receiver(), "/home/bob/Maildir/new", subject))] == ["rsa-sha256"]
