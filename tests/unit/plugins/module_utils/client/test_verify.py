# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The verify role's plan (from mail_ports), problem list and report, and its filters."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter import verify as verify_filters
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_dns import mail_dns
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.verify import (
    VerifyError,
    check_lines,
    plan,
    problems,
    report,
)

# What mail_ports reports for site.yml's defaults (Postfix smtp/submission/smtps, Dovecot IMAP and POP3, sshd),
# plus an LMTP listener on TCP and the amavis re-injection service on loopback.
PORTS = {
    "ports": [
        {"daemon": "dovecot", "service": "lmtp/lmtp", "port": 24, "protocol": "tcp", "scope": "internal"},
        {"daemon": "postfix", "service": "smtp", "port": 25, "protocol": "tcp", "scope": "public"},
        {"daemon": "dovecot", "service": "pop3-login/pop3", "port": 110, "protocol": "tcp", "scope": "public"},
        {"daemon": "dovecot", "service": "imap-login/imap", "port": 143, "protocol": "tcp", "scope": "public"},
        {"daemon": "postfix", "service": "smtps", "port": 465, "protocol": "tcp", "scope": "public"},
        {"daemon": "postfix", "service": "submission", "port": 587, "protocol": "tcp", "scope": "public"},
        {"daemon": "dovecot", "service": "imap-login/imaps", "port": 993, "protocol": "tcp", "scope": "public"},
        {"daemon": "dovecot", "service": "pop3-login/pop3s", "port": 995, "protocol": "tcp", "scope": "public"},
        {"daemon": "postfix", "service": "127.0.0.1:10025", "port": 10025, "protocol": "tcp", "scope": "local"},
    ],
    "ssh_ports": [22],
    "found": {"postfix": True, "dovecot": True, "sshd": True},
}
ALL = ["smtp", "submission", "smtps", "imap", "imaps", "pop3", "pop3s"]


def test_plan_probes_what_the_server_offers():
    result = plan(PORTS, closed_ports=[10024, 25, 22, 3306], user="probe@example.test", eicar=True)
    assert result == {
        "services": ALL,
        "ports": {},
        # LMTP on TCP is internal: it must not answer from outside. A public port or SSH given as
        # "closed" is left out, and loopback-only listeners are not probed.
        "closed_ports": [24, 3306, 10024],
        "send": True,
        "send_via": "submission",
        "read_via": "imaps",
        "send_eicar": True,
        "relay_check": True,
        "notes": [],
    }


def test_plan_with_other_ports_and_fewer_services():
    ports = {
        "ports": [
            {"daemon": "postfix", "service": "smtp", "port": 2525, "scope": "public"},
            {"daemon": "postfix", "service": "submissions", "port": 465, "scope": "public"},
            {"daemon": "dovecot", "service": "imap-login/imap", "port": 143, "scope": "public"},
            {"daemon": "dovecot", "service": "imap-login/imaps", "port": 993, "scope": "local"},
        ]
    }
    result = plan(ports, user="probe@example.test")
    assert result["services"] == ["smtp", "smtps", "imap"]
    assert result["ports"] == {"smtp": 2525}
    assert (result["send_via"], result["read_via"], result["send"]) == ("smtps", "imap", True)


def test_plan_without_a_user_or_services_says_what_is_not_checked():
    result = plan(
        {"ports": [{"daemon": "dovecot", "service": "imap-login/imaps", "port": 993, "scope": "public"}]}, eicar=True
    )
    assert result["services"] == ["imaps"]
    assert (result["send"], result["send_eicar"], result["relay_check"]) == (False, False, False)
    assert result["notes"] == [
        "no verify_user: logins, sending and delivery were not checked",
        "the EICAR test needs the test message to be sent first: it was not run",
        "port 25 (smtp) is not offered, so relaying was not checked",
    ]
    result = plan({}, user="probe@example.test")
    assert result["services"] == []
    assert result["notes"] == [
        "no message was sent: that needs submission or smtps, and imap or imaps",
        "port 25 (smtp) is not offered, so relaying was not checked",
        "no mail service to probe: the server offers none, and none was given",
    ]


def test_plan_with_given_services_and_ports():
    result = plan(None, services=["imaps", "smtp"], ports={"imaps": "10993"}, user="u@example.test", send=False)
    assert result["services"] == ["smtp", "imaps"]
    assert result["ports"] == {"imaps": 10993}
    assert result["send"] is False
    assert result["notes"] == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"services": ["smtp", "lmtp"]}, "verify_services[1]: unknown 'lmtp'"),
        ({"ports": {"lmtp": 24}}, "verify_ports: unknown service 'lmtp'"),
        ({"ports": {"imaps": 0}}, "verify_ports.imaps: 0 is not a TCP port"),
        ({"closed_ports": [24, "x"]}, "verify_closed_ports[1]: 'x' is not a TCP port"),
    ],
)
def test_plan_refuses_bad_variables(kwargs, message):
    with pytest.raises(VerifyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plan(PORTS, **kwargs)
    with pytest.raises(AnsibleFilterError, match=r"^verify_probe_plan: verify_"):
        verify_filters.verify_probe_plan(PORTS, **kwargs)


PROBE = {
    "host": "pm-verify-server",
    "tls_name": "mail.example.test",
    "ok": False,
    "checks": {
        "smtp_banner": {"ok": True, "detail": "220 mail.example.test ESMTP", "port": 25},
        "submission_auth": {"ok": True, "detail": "AUTH PLAIN LOGIN after STARTTLS only"},
        "imaps_banner": {"ok": False, "detail": "pm-verify-server:993: connection refused", "port": 993},
        "relay_refused": {"ok": False, "detail": "OPEN RELAY: RCPT TO:<x@example.com> was accepted: 250 2.1.5 Ok"},
    },
    "failed_checks": ["imaps_banner", "relay_refused"],
    "skipped_checks": {"send": "check mode: no message is sent"},
}
QUEUE = {
    "total": 3,
    "counts": {"maildrop": 0, "incoming": 0, "active": 1, "deferred": 2, "hold": 0, "corrupt": 0},
    "oldest": {"queue_id": "4A1", "age_seconds": 200000},
    "oldest_age_seconds": 200000,
    "deferral_reasons": [{"reason": "connect to mx.example.net[192.0.2.1]:25: Connection timed out", "recipients": 2}],
}


def test_problems_name_each_failed_check_and_an_old_queue():
    assert problems(PROBE) == [
        "imaps_banner: pm-verify-server:993: connection refused",
        "relay_refused: OPEN RELAY: RCPT TO:<x@example.com> was accepted: 250 2.1.5 Ok",
    ]
    assert problems(PROBE, QUEUE, 86400)[-1] == (
        "queue: message 4A1 has waited 2 d, more than 1 d (2 deferred; most often: "
        "connect to mx.example.net[192.0.2.1]:25: Connection timed out)"
    )
    assert len(problems(PROBE, QUEUE, 0)) == 2
    assert verify_filters.verify_problems({"checks": {}, "failed_checks": []}, {}, 0) == []


def test_report_reads_at_a_glance():
    dns = mail_dns([{"name": "example.test", "mta_sts": {"mode": "testing", "id": "1"}}], mx_host="mail.example.test")
    plan_result = plan(PORTS, user="")
    text = verify_filters.verify_report(
        PROBE, plan=plan_result, mail_ports=PORTS, queue=QUEUE, dns=dns, probe_from="client.outside.test", max_age=86400
    )
    lines = text.splitlines()
    assert lines[:2] == [
        "Mail server mail.example.test (pm-verify-server), checked from client.outside.test",
        "  2 checks passed, 3 problems",
    ]
    assert "     25/tcp  postfix smtp                 public, probed" in lines
    assert "     24/tcp  dovecot lmtp/lmtp            internal" in lines
    assert "     22/tcp  sshd                         admin" in lines
    checks_at = lines.index("Checks")
    assert lines[checks_at + 1 : checks_at + 7] == [
        "  ok    smtp          25   220 mail.example.test ESMTP",
        "  ok    submission   587   AUTH PLAIN LOGIN after STARTTLS only",
        "  FAIL  imaps        993   greeting: pm-verify-server:993: connection refused",
        "  FAIL  open relay         OPEN RELAY: RCPT TO:<x@example.com> was accepted: 250 2.1.5 Ok",
        "  --    send               not run: check mode: no message is sent",
        "  --                       no verify_user: logins, sending and delivery were not checked",
    ]
    assert "  3 messages (active 1, deferred 2); the oldest has waited 2 d" in lines
    assert "  example.test. 3600 IN MX 10 mail.example.test." in lines
    assert '  _mta-sts.example.test. 3600 IN TXT "v=STSv1; id=1"' in lines
    assert "  MTA-STS policy for https://mta-sts.example.test/.well-known/mta-sts.txt:" in lines
    assert "    mode: testing" in lines
    assert lines[-4:] == [
        "What is wrong",
        "  - imaps_banner: pm-verify-server:993: connection refused",
        "  - relay_refused: OPEN RELAY: RCPT TO:<x@example.com> was accepted: 250 2.1.5 Ok",
        "  - queue: message 4A1 has waited 2 d, more than 1 d (2 deferred; most often: "
        "connect to mx.example.net[192.0.2.1]:25: Connection timed out)",
    ]
    assert "{" not in text.replace("{host", "")  # no JSON


def test_report_of_a_healthy_server_has_no_problem_section():
    probe = {
        "host": "mail.example.test",
        "tls_name": "mail.example.test",
        "checks": {"smtp_banner": {"ok": True, "detail": "220"}},
        "failed_checks": [],
    }
    lines = verify_filters.verify_report(probe).splitlines()
    assert lines == [
        "Mail server mail.example.test",
        "  1 checks passed, 0 problems",
        "",
        "Checks",
        "  ok    smtp          25   220",
    ]


def test_check_lines_group_services_certificates_and_ports():
    ok_tls = {"ok": True, "detail": "STARTTLS: TLSv1.3", "protocol": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384"}
    cert = {"ok": True, "detail": "mail.example.test, issued by R3, valid until 2027-01-01T00:00:00Z (90 days)"}
    checks = {
        "submission_banner": {"ok": True, "detail": "220 x", "port": 2587},
        "submission_tls": ok_tls,
        "submission_certificate": cert,
        "submission_auth": {"ok": True, "detail": "AUTH PLAIN after STARTTLS only"},
        "submission_login": {"ok": True, "detail": "u: 235"},
        "imaps_banner": {"ok": True, "detail": "* OK", "port": 993},
        "imaps_tls": {**ok_tls, "detail": "implicit TLS: TLSv1.3"},
        "imaps_certificate": {**cert, "ok": False, "detail": "expires in 3 days"},
        "imaps_login": {"ok": False, "detail": "u: [AUTHENTICATIONFAILED] Authentication failed."},
        "send": {"ok": True, "detail": "u -> u via submission with AUTH: 250 2.0.0 Ok"},
        "delivery": {"ok": False, "detail": "not in u's INBOX over imaps within 60 s"},
        "virus_blocked": {"ok": True, "detail": "refused at submission: 554 5.7.0 INFECTED"},
        "port_24_closed": {"ok": True, "detail": "24: connection refused", "port": 24},
        "port_10024_closed": {"ok": False, "detail": "10024 accepts connections", "port": 10024},
        "something_new": {"ok": True, "detail": "listed as it is"},
    }
    assert check_lines(checks) == [
        "  ok    submission  2587   STARTTLS TLSv1.3 TLS_AES_256_GCM_SHA384; AUTH PLAIN after STARTTLS only; login ok",
        "  FAIL  imaps        993   login: u: [AUTHENTICATIONFAILED] Authentication failed.",
        "  ok    certificate submission mail.example.test, issued by R3, valid until 2027-01-01T00:00:00Z (90 days)",
        "  FAIL  certificate imaps  expires in 3 days",
        "  ok    send               u -> u via submission with AUTH: 250 2.0.0 Ok",
        "  FAIL  delivery           not in u's INBOX over imaps within 60 s",
        "  ok    EICAR              refused at submission: 554 5.7.0 INFECTED",
        "  FAIL  closed ports       10024 accept connections (of 24, 10024)",
        "  ok    something_new      listed as it is",
    ]


def test_filters_are_registered():
    assert set(verify_filters.FilterModule().filters()) == {"verify_probe_plan", "verify_problems", "verify_report"}


EICAR_PROBE = {
    "host": "pm-demo",
    "tls_name": "mail.example.test",
    "checks": {
        "virus_blocked": {
            "ok": True,
            "detail": "accepted (250 2.0.0 Ok: queued as 22C2) but not delivered within 15 s: stopped by the content filter",
            "message_id": "<mail-probe.36@mail-probe.invalid>",
        }
    },
    "failed_checks": [],
}
INFECTED = (
    "(06254-02) Blocked INFECTED (Eicar-Test-Signature.UNOFFICIAL) {DiscardedInbound,Quarantined}, "
    "[172.18.0.3]:60350 <probe@example.test> -> <probe@example.test>, Message-ID: <mail-probe.36@mail-probe.invalid>"
)


def test_the_eicar_check_is_confirmed_by_the_amavis_log():
    lines = report(EICAR_PROBE, virus_log=INFECTED + "\n")
    assert any(
        line.startswith("  ok    EICAR              accepted (")
        and line.endswith("; amavis: Blocked INFECTED (Eicar-Test-Signature.UNOFFICIAL)")
        for line in lines
    ), lines
    assert problems(EICAR_PROBE, virus_log=INFECTED) == []


@pytest.mark.parametrize(
    ("log", "seen"),
    [
        ("(06254-02) Blocked BANNED (multipart/mixed | application/octet-stream,.exe,eicar.com) {DiscardedInbound}",
         "(06254-02) Blocked BANNED (multipart/mixed | application/octet-stream,.exe,eicar.com) {DiscardedInbound}"),
        ("", "no amavis log line names <mail-probe.36@mail-probe.invalid>"),
    ],
)  # fmt: skip
def test_an_eicar_message_stopped_for_another_reason_is_a_problem(log, seen):
    assert problems(EICAR_PROBE, virus_log=log) == [
        f"virus_blocked: the EICAR message did not arrive, but amavis did not log it as INFECTED ({seen})"
    ]
    assert verify_filters.verify_problems(EICAR_PROBE, {}, 0, log)[0].startswith("virus_blocked: the EICAR message")


def test_without_a_log_or_when_refused_the_eicar_check_stays_as_it_is():
    assert problems(EICAR_PROBE) == []
    refused = {
        **EICAR_PROBE,
        "checks": {
            "virus_blocked": {"ok": True, "detail": "refused at submission: 554 5.7.0 Reject", "message_id": "<x@y>"}
        },
    }
    assert problems(refused, virus_log="") == []


def test_the_report_shows_postscreen_and_the_bans_and_a_stopped_fail2ban_is_a_problem():
    probe = {"host": "mail.example.test", "checks": {"smtp_banner": {"ok": True, "detail": "220"}}, "failed_checks": []}
    queue = {
        "total": 0,
        "counts": {},
        "postscreen": True,
        "fail2ban": {"running": True, "jails": {"postfix-sasl": 2, "dovecot": 1}, "banned": 3},
    }
    lines = verify_filters.verify_report(probe, queue=queue).splitlines()
    at = lines.index("Abuse protection")
    assert lines[at + 1 : at + 3] == [
        "  postscreen   answers port 25",
        "  fail2ban     running; 3 addresses banned (dovecot 1, postfix-sasl 2)",
    ]
    assert "What is wrong" not in lines
    stopped = {**queue, "postscreen": False, "fail2ban": {"running": False, "jails": {}, "banned": 0}}
    lines = verify_filters.verify_report(probe, queue=stopped).splitlines()
    assert "  postscreen   off (smtpd answers port 25)" in lines
    assert "  fail2ban     installed, not running" in lines
    assert lines[-2:] == [
        "What is wrong",
        "  - fail2ban: installed but not answering (systemctl status fail2ban); nobody is banned",
    ]
