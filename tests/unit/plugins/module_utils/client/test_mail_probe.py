# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""mail_probe against the fake SMTP/IMAP/POP3 server of tests/unit/plugins/conftest.py (loopback only)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_probe import (
    SERVICES,
    CheckFailed,
    MailProbe,
    MailProbeError,
    eicar,
    failure_message,
    name_matches,
    parse_certificate,
)
from ansible_collections.postmaster.mailserver.tests.unit.plugins.fake_mail_server import (
    PASSWORD,
    USER,
    make_certificate,
)

ALL = list(SERVICES)
MESSAGE_ID = "<mail-probe.0123456789abcdef@mail-probe.invalid>"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def probe(fake, check_mode=False, clock=None, now=None, **params):
    clock = clock or FakeClock()
    # The fake server's self-signed certificate is its own CA: verified unless a test turns it off.
    trust = {"ca_file": str(fake.cert_file)} if params.get("tls_verify", True) else {}
    options = {"host": "127.0.0.1", "tls_name": "mail.example.test", "ports": fake.ports, "timeout": 5.0}
    options.update(trust)
    options.update(params)
    return MailProbe(
        options,
        check_mode=check_mode,
        clock=clock,
        sleep=clock.sleep,
        now=now,
        message_id=lambda: MESSAGE_ID,
    ).run()


def test_a_healthy_server_passes_every_check(fake_mail, closed_port):
    result = probe(
        fake_mail, services=ALL, user=USER, password=PASSWORD, send=True, closed_ports=[closed_port], read_via="imap"
    )
    assert result["failed_checks"] == []
    assert result["ok"] is True
    checks = result["checks"]
    expected = [
        f"{s}_{c}"
        for s in ALL
        for c in ("banner", "tls", "certificate", "auth", "login")
        if s != "smtp" or c != "login"
    ]
    assert sorted(checks) == sorted([*expected, "relay_refused", "send", "delivery", f"port_{closed_port}_closed"])
    assert checks["smtp_banner"]["detail"] == "220 mail.example.test ESMTP"
    assert checks["smtp_banner"]["port"] == fake_mail.ports["smtp"]
    assert checks["submission_tls"]["protocol"] in ("TLSv1.2", "TLSv1.3")
    assert checks["submission_tls"]["detail"].startswith("STARTTLS: TLSv1.")
    assert checks["smtps_tls"]["detail"].startswith("implicit TLS: TLSv1.")
    assert checks["submission_auth"] == {
        "ok": True,
        "detail": "AUTH PLAIN LOGIN after STARTTLS only",
        "before_tls": [],
        "after_tls": ["PLAIN", "LOGIN"],
    }
    assert checks["smtp_auth"]["detail"] == "no AUTH offered (a port for other MTAs)"
    assert checks["imap_auth"]["detail"] == "login after STARTTLS only (AUTH=PLAIN)"
    assert "LOGINDISABLED" in checks["imap_auth"]["before_tls"]
    assert checks["pop3_auth"]["detail"] == "login after STLS only (USER, SASL PLAIN LOGIN)"
    assert checks["submission_login"]["detail"] == f"{USER}: 235 2.7.0 Authentication successful"
    assert checks["imaps_login"]["detail"].startswith(f"{USER}: OK")
    assert checks["pop3s_login"]["detail"] == f"{USER}: +OK Logged in."
    assert checks["relay_refused"]["code"] == 554
    assert checks["relay_refused"]["detail"] == (
        "RCPT TO:<mail-probe@example.com> refused: 554 5.7.1 <mail-probe@example.com>: Relay access denied"
    )
    assert checks["send"]["message_id"] == MESSAGE_ID
    assert checks["send"]["detail"] == f"{USER} -> {USER} via submission with AUTH: 250 2.0.0 Ok: queued as 4ABC123"
    assert checks["delivery"]["detail"].startswith(f"found in {USER}'s INBOX over imap after 0.0 s (deleted)")
    assert checks[f"port_{closed_port}_closed"]["detail"] == f"{closed_port}: connection refused"
    # The probe message was found and deleted again, and nothing was relayed.
    assert fake_mail.mailbox(USER) == []
    assert fake_mail.relayed == []
    assert PASSWORD not in json.dumps(result)


def test_certificate_names_and_expiry_are_reported(fake_mail):
    checks = probe(fake_mail, services=["smtps"], relay_check=False, tls_verify=False)["checks"]
    cert = checks["smtps_certificate"]
    assert cert["ok"] is True
    assert (cert["subject"], cert["issuer"]) == ("mail.example.test", "mail.example.test")
    assert (cert["dns_names"], cert["ip_addresses"]) == (["mail.example.test"], ["127.0.0.1"])
    assert cert["days_left"] in (88, 89)
    assert (cert["name_matches"], cert["verified"]) == (True, False)
    assert cert["detail"].endswith("days), not verified (tls_verify: false)")
    assert cert["detail"].startswith("mail.example.test, 127.0.0.1, issued by mail.example.test, valid until ")


def test_certificate_with_the_wrong_name_or_near_expiry_fails(fake_mail):
    checks = probe(fake_mail, services=["imaps"], relay_check=False, tls_name="other.example.test", tls_verify=False)[
        "checks"
    ]
    assert checks["imaps_certificate"]["ok"] is False
    assert checks["imaps_certificate"]["detail"].startswith(
        "other.example.test is not one of its names (mail.example.test, 127.0.0.1)"
    )
    late = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=85)
    checks = probe(fake_mail, services=["imaps"], relay_check=False, now=lambda: late)["checks"]
    assert checks["imaps_certificate"]["ok"] is False
    assert checks["imaps_certificate"]["detail"].startswith("expires in 4 days (on ")
    assert ", fewer than 14 (" in checks["imaps_certificate"]["detail"]
    after = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=91)
    checks = probe(fake_mail, services=["imaps"], relay_check=False, now=lambda: after)["checks"]
    assert checks["imaps_certificate"]["detail"].startswith("expired on ")


def test_certificate_verified_with_a_ca_file(fake_mail):
    checks = probe(fake_mail, services=["submission", "imaps"], relay_check=False, ca_file=str(fake_mail.cert_file))[
        "checks"
    ]
    assert checks["submission_certificate"]["verified"] is True
    assert checks["imaps_certificate"]["ok"] is True
    assert checks["imaps_certificate"]["detail"].endswith(f"verified with {fake_mail.cert_file}")


def test_certificate_not_verified_by_another_ca(fake_mail, tmp_path):
    other, _key = make_certificate(tmp_path, "ca.other.test")
    result = probe(fake_mail, services=["submission", "imaps", "pop3s", "smtps"], relay_check=False, ca_file=str(other))
    checks = result["checks"]
    assert checks["submission_tls"]["ok"] is False
    assert checks["submission_tls"]["detail"].startswith(
        f"STARTTLS on {fake_mail.ports['submission']}: certificate not verified"
    )
    assert checks["smtps_tls"]["detail"].startswith(
        f"implicit TLS on {fake_mail.ports['smtps']}: certificate not verified"
    )
    assert checks["imaps_banner"]["detail"].startswith("127.0.0.1:")
    assert "certificate not verified" in checks["imaps_banner"]["detail"]
    assert "certificate not verified" in checks["pop3s_banner"]["detail"]
    assert "submission_login" not in checks
    assert set(result["failed_checks"]) == {
        "submission_tls",
        "smtps_banner",
        "smtps_tls",
        "imaps_banner",
        "pop3s_banner",
    }


def test_plaintext_auth_before_tls_fails(fake_mail):
    fake_mail.behaviour["auth_before_tls"] = True
    result = probe(fake_mail, services=["smtp", "submission", "imap", "pop3"], relay_check=False)
    checks = result["checks"]
    assert result["failed_checks"] == ["submission_auth", "imap_auth", "pop3_auth"]
    assert checks["submission_auth"]["detail"] == (
        "AUTH PLAIN LOGIN is offered before STARTTLS: passwords could be sent in clear"
    )
    assert checks["submission_auth"]["before_tls"] == ["PLAIN", "LOGIN"]
    assert checks["imap_auth"]["detail"] == (
        "plaintext login is allowed before STARTTLS (AUTH=PLAIN LOGIN command): passwords could be sent in clear"
    )
    assert checks["pop3_auth"]["detail"].startswith("USER or SASL PLAIN/LOGIN is offered before STLS")
    # Port 25 offers no AUTH at all in this fake, so it is fine.
    assert checks["smtp_auth"]["ok"] is True


def test_no_auth_after_tls_on_submission_fails(fake_mail):
    fake_mail.behaviour["no_auth"] = True
    checks = probe(fake_mail, services=["submission", "smtps"], relay_check=False)["checks"]
    assert checks["submission_auth"]["detail"].startswith("AUTH is not offered after TLS: clients cannot log in")
    assert checks["smtps_auth"]["ok"] is False


def test_missing_starttls_fails_and_stops_that_service(fake_mail):
    fake_mail.behaviour["no_starttls"] = True
    result = probe(fake_mail, services=["smtp", "imap", "pop3"], user=USER, password=PASSWORD, relay_check=False)
    assert result["failed_checks"] == ["smtp_tls", "imap_tls", "pop3_tls"]
    assert result["checks"]["smtp_tls"]["detail"] == f"STARTTLS is not offered on {fake_mail.ports['smtp']}"
    assert result["checks"]["pop3_tls"]["detail"] == f"STLS is not offered on {fake_mail.ports['pop3']}"
    # No login is tried without TLS.
    assert not any(name.endswith("_login") for name in result["checks"])
    assert not any(line.startswith(("AUTH", "PASS")) or " LOGIN " in line for _svc, line in fake_mail.transcript)


def test_smtpd_dying_after_starttls_is_named(fake_mail):
    fake_mail.behaviour["die_after_tls"] = True
    result = probe(fake_mail, services=["submission"], relay_check=False, user=USER, password=PASSWORD)
    assert result["failed_checks"] == ["submission_tls"]
    assert result["checks"]["submission_tls"]["detail"] == (
        f"EHLO after STARTTLS on {fake_mail.ports['submission']}: SMTPServerDisconnected: Connection unexpectedly closed"
    )


def test_open_relay_is_reported_and_nothing_is_relayed(fake_mail):
    fake_mail.behaviour["open_relay"] = True
    result = probe(fake_mail, services=[], relay_recipient="someone@relay-test.invalid")
    assert result["failed_checks"] == ["relay_refused"]
    assert result["checks"]["relay_refused"]["detail"] == (
        "OPEN RELAY: RCPT TO:<someone@relay-test.invalid> from an unauthenticated client was accepted: 250 2.1.5 Ok"
    )
    assert result["checks"]["relay_refused"]["code"] == 250
    commands = [line.split(" ")[0].upper() for service, line in fake_mail.transcript if service == "smtp"]
    assert commands == ["EHLO", "MAIL", "RCPT", "RSET", "QUIT"]
    assert fake_mail.relayed == []


def test_wrong_password_fails_each_login_and_the_send(fake_mail):
    fake_mail.behaviour["refuse_login"] = True
    result = probe(fake_mail, services=["submission", "imaps", "pop3s"], user=USER, password="wrong", send=True)
    assert result["failed_checks"] == ["submission_login", "imaps_login", "pop3s_login", "send"]
    checks = result["checks"]
    assert checks["submission_login"]["detail"] == (
        f"{USER}: 535 5.7.8 Error: authentication failed: authentication failure"
    )
    assert checks["imaps_login"]["detail"] == f"{USER}: [AUTHENTICATIONFAILED] Authentication failed."
    assert checks["pop3s_login"]["detail"] == f"{USER}: -ERR [AUTH] Authentication failed."
    assert checks["send"]["detail"].startswith(f"via submission as {USER}: 535 5.7.8")
    assert "delivery" not in checks
    assert "wrong" not in json.dumps(result)


def test_lost_mail_fails_delivery_after_the_timeout(fake_mail):
    fake_mail.behaviour["lose_mail"] = True
    clock = FakeClock()
    result = probe(
        fake_mail,
        clock=clock,
        services=[],
        relay_check=False,
        user=USER,
        password=PASSWORD,
        send=True,
        delivery_timeout=5,
    )
    assert result["failed_checks"] == ["delivery"]
    assert result["checks"]["delivery"]["detail"] == (
        f"not in {USER}'s INBOX over imaps within 5 s (look for the Message-ID in the mail log and the queue)"
    )
    assert result["checks"]["delivery"]["message_id"] == MESSAGE_ID
    assert clock.sleeps == [1, 1, 1, 1, 1]


def test_refused_recipient_fails_the_send(fake_mail):
    fake_mail.behaviour["refuse_rcpt"] = True
    result = probe(
        fake_mail, services=[], relay_check=False, user=USER, password=PASSWORD, send=True, recipient="bob@example.test"
    )
    assert result["checks"]["send"]["detail"] == (
        "RCPT TO:<bob@example.test> refused: 550 5.1.1 <bob@example.test>: Recipient address rejected: User unknown"
    )


def test_delivery_read_as_another_user_who_cannot_log_in(fake_mail):
    result = probe(
        fake_mail,
        services=[],
        relay_check=False,
        user=USER,
        password=PASSWORD,
        send=True,
        read_user="bob@example.test",
        read_password="x",
    )
    assert result["checks"]["send"]["ok"] is True
    assert (
        result["checks"]["delivery"]["detail"]
        == "imaps login as bob@example.test: [AUTHENTICATIONFAILED] Authentication failed."
    )


def test_eicar_file_is_the_real_one():
    assert len(eicar()) == 68
    assert hashlib.md5(eicar()).hexdigest() == "44d88612fea8a8f36de82e1278abb02f"


@pytest.mark.parametrize(
    ("virus_filter", "ok", "detail"),
    [
        ("discard", True, "accepted (250 2.0.0 Ok: queued as 4ABC123) but not delivered within 3 s: stopped by the content filter"),
        ("reject", True, "refused at submission: 554 5.7.0 Reject, id=12345 - INFECTED: Eicar-Signature"),
        (None, False, "the EICAR test file reached the INBOX after 0.0 s: no virus filter stopped it"),
    ],
)  # fmt: skip
def test_eicar_must_be_stopped(fake_mail, virus_filter, ok, detail):
    fake_mail.behaviour["virus_filter"] = virus_filter
    clock = FakeClock()
    result = probe(
        fake_mail, clock=clock, services=[], relay_check=False, user=USER, password=PASSWORD, send=True,
        send_eicar=True, eicar_wait=3,
    )  # fmt: skip
    assert result["checks"]["delivery"]["ok"] is True
    assert result["checks"]["virus_blocked"]["ok"] is ok
    assert result["checks"]["virus_blocked"]["detail"] == detail
    # The attachment decodes to the test file, and whatever arrived was deleted again.
    assert any(line == base64.b64encode(eicar()).decode() for _svc, line in fake_mail.transcript)
    assert fake_mail.mailbox(USER) == []


def test_check_mode_sends_nothing(fake_mail):
    result = probe(fake_mail, check_mode=True, services=["submission"], user=USER, password=PASSWORD, send=True)
    assert result["skipped_checks"] == {
        "send": "check mode: no message is sent",
        "delivery": "check mode: no message is sent",
    }
    assert "send" not in result["checks"]
    assert result["ok"] is True
    assert not any(line.startswith(("DATA", "MAIL FROM:<alice")) for _svc, line in fake_mail.transcript)


def test_stopped_services_fail_at_the_banner(fake_mail, closed_port):
    ports = dict.fromkeys(SERVICES, closed_port)
    result = probe(fake_mail, services=ALL, ports=ports, user=USER, password=PASSWORD, send=True)
    assert result["failed_checks"] == [*(f"{s}_banner" for s in ALL), "relay_refused", "send"]
    assert result["checks"]["imaps_banner"]["detail"] == f"127.0.0.1:{closed_port}: connection refused"
    assert (
        result["checks"]["relay_refused"]["detail"]
        == f"could not test relaying: 127.0.0.1:{closed_port}: connection refused"
    )
    assert result["checks"]["send"]["detail"] == f"not sent: submission: 127.0.0.1:{closed_port}: connection refused"
    message = failure_message(result)
    assert message.startswith(
        f"9 of 9 checks failed on 127.0.0.1: smtp_banner: 127.0.0.1:{closed_port}: connection refused; "
    )


def test_a_port_that_should_be_closed_but_answers(fake_mail):
    port = fake_mail.ports["imap"]
    result = probe(fake_mail, services=[], relay_check=False, closed_ports=[port])
    assert result["failed_checks"] == [f"port_{port}_closed"]
    assert (
        result["checks"][f"port_{port}_closed"]["detail"]
        == f"{port} accepts connections from here but should be closed"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"host": ""}, "host: a host name or address is required"),
        ({"services": ["smtp", "lmtp"]}, "services: unknown lmtp (known: smtp, submission, smtps, imap, imaps, pop3, pop3s)"),
        ({"ports": {"imap": 70000}}, "ports.imap: 70000 is not a TCP port"),
        ({"ports": {"lmtp": 24}}, "ports: unknown service lmtp"),
        ({"closed_ports": [0]}, "closed_ports: 0 is not a TCP port"),
        ({"send": True}, "send: user and password are required"),
        ({"send": True, "user": "alice", "password": "x"}, "sender: 'alice' is not a mail address"),
        ({"send": True, "user": USER, "password": "x", "send_via": "smtp"}, "send_via: must be submission or smtps"),
        ({"send": True, "user": USER, "password": "x", "read_via": "pop3s"}, "read_via: must be imap or imaps"),
        ({"user": USER}, "user and password: give both or neither"),
        ({"send_eicar": True}, "send_eicar: needs send"),
    ],
)  # fmt: skip
def test_bad_options_fail_before_any_connection(params, message):
    with pytest.raises(MailProbeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MailProbe({"host": "127.0.0.1", **params})


# -- certificates without a library ------------------------------------------------------------------


def test_parse_certificate_reads_the_fields(mail_certificate):
    import ssl

    der = ssl.PEM_cert_to_DER_cert(mail_certificate[0].read_text())
    cert = parse_certificate(der)
    assert cert["subject"] == "mail.example.test"
    assert cert["dns_names"] == ["mail.example.test"]
    assert cert["ip_addresses"] == ["127.0.0.1"]
    assert cert["_not_after"] > datetime.datetime.now(datetime.UTC)


@pytest.mark.parametrize("der", [b"", b"\x30\x05\x01", b"\x04\x00", b"\x30\x84\xff\xff\xff\xff"])
def test_parse_certificate_refuses_garbage(der):
    with pytest.raises(CheckFailed, match="the certificate could not be read"):
        parse_certificate(der)


@pytest.mark.parametrize(
    ("names", "ips", "subject", "wanted", "expected"),
    [
        (["mail.example.test"], [], None, "MAIL.example.test.", True),
        (["*.example.test"], [], None, "mail.example.test", True),
        (["*.example.test"], [], None, "a.mail.example.test", False),
        (["*.example.test"], [], None, "example.test", False),
        ([], [], "mail.example.test", "mail.example.test", True),
        (["other.test"], [], "mail.example.test", "mail.example.test", False),
        ([], ["192.0.2.1"], None, "192.0.2.1", True),
        (["192.0.2.1"], [], None, "192.0.2.1", False),
    ],
)  # fmt: skip
def test_name_matches(names, ips, subject, wanted, expected):
    assert name_matches({"dns_names": names, "ip_addresses": ips, "subject": subject}, wanted) is expected


def test_closed_ports_are_tried_at_once_and_filtered_ones_count_as_closed(monkeypatch):
    from ansible_collections.postmaster.mailserver.plugins.module_utils.client import mail_probe

    tried = []

    def connect(address, timeout):
        tried.append((address, timeout))
        port = address[1]
        if port == 10024:
            raise TimeoutError("timed out")
        if port == 10025:
            raise OSError(113, "No route to host")
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(mail_probe.socket, "create_connection", connect)
    result = MailProbe(
        {"host": "192.0.2.25", "services": [], "relay_check": False, "closed_ports": [24, 10024, 10025]}
    ).run()
    assert sorted(tried) == [(("192.0.2.25", 24), 3.0), (("192.0.2.25", 10024), 3.0), (("192.0.2.25", 10025), 3.0)]
    assert [(name, check["detail"]) for name, check in result["checks"].items()] == [
        ("port_24_closed", "24: connection refused"),
        ("port_10024_closed", "10024: no answer within 3 s (filtered)"),
        ("port_10025_closed", "10025: No route to host"),
    ]
    assert result["ok"] is True
