# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile input, round two (issue 25): TLS and logins, DNS data, and conflicts between roles.

Each row runs what the collection runs before its first change on a host - the postfix role's first
task (``postfix_role_tables`` and ``mail_play_conflicts``), the ``postfix_config`` module's judgement of
the merged configuration (every side effect faked), the ``mail_probe`` module's option checks, and the
``mail_dns``/``spf_record`` filters the verify role and users call - and the exact error it must raise,
naming the variable. The positive tests below prove that what is legitimate still passes.
"""

from __future__ import annotations

import json
import re
import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.postmaster.mailserver.plugins.filter.mail import mail_play_conflicts
from ansible_collections.postmaster.mailserver.plugins.filter.mail_dns import mail_dns
from ansible_collections.postmaster.mailserver.plugins.filter.postfix import postfix_role_fragment
from ansible_collections.postmaster.mailserver.plugins.filter.spf import spf_record
from ansible_collections.postmaster.mailserver.plugins.filter.verify import verify_report
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_dns import (
    TXT_STRING_BYTES,
    txt_strings,
    txt_value,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_probe import MailProbe
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.play_conflicts import KEYS
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragments import merge_fragments
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_validate import validate_main
from ansible_collections.postmaster.mailserver.tests.unit.plugins.fake_mail_server import PASSWORD, USER
from ansible_collections.postmaster.mailserver.tests.unit.plugins.test_bad_input_matrix import (
    _postfix_settings,
    postfix_config,
    postfix_fragment,
    postfix_role,
)

CERT = {"cert": "/etc/ssl/postmaster/cert.pem", "key": "/etc/ssl/postmaster/key.pem"}
#: The variables the postfix role's first task hands to mail_play_conflicts (roles/postfix/tasks/validate.yml).
PLAY_KEYS = (
    "postfix_myhostname",
    "postfix_mydomain",
    "postfix_mydestination",
    "postfix_relay_domains",
    "postfix_master_extra",
    "postfix_main_extra",
    "postfix_tls_enabled",
    "postfix_smtpd_tls_security_level",
)
OTHER_KEYS = (
    "mailboxes_domains",
    "dovecot_sasl_enabled",
    "dovecot_postfix_smtpd_sasl_auth_enable",
    "saslauthd_postfix_smtpd_sasl_auth_enable",
    "amavis_enabled",
)
FULL_PLAY = [
    f"postmaster.mailserver.{role}"
    for role in ("postfix", "dovecot", "mailboxes", "amavis", "policyd_spf", "firewall", "saslauthd")
]


def postfix_play(roles: Any = (), postfix: dict[str, Any] | None = None, **others: Any) -> Callable[[Path], Any]:
    """The postfix role's first task: its variables checked, then the conflicts with the play's other roles.

    *postfix* are postfix role variables (on top of its defaults); *others* are the other roles' variables
    as the play defines them (the rest are null, as ``default(none)`` gives them).
    """

    def run(_tmp: Path) -> Any:
        settings = _postfix_settings(**(postfix or {}))
        postfix_role(**(postfix or {}))()
        play = {key: settings.get(key) for key in PLAY_KEYS}
        play.update({key: others.get(key) for key in OTHER_KEYS})
        return mail_play_conflicts(play, list(roles))

    return run


def role(**overrides: Any) -> Callable[[Path], Any]:
    return lambda _tmp: postfix_role(**overrides)()


def merged(**fragment: Any) -> Callable[[Path], Any]:
    """The postfix_config module with one more role's fragment, judging the merged result before any write."""
    return lambda tmp: postfix_config(tmp, fragments=postfix_fragment(**fragment))()


def probe(**params: Any) -> Callable[[Path], Any]:
    """mail_probe's option checks (MailProbe refuses before it connects anywhere)."""
    return lambda _tmp: MailProbe({"host": "127.0.0.1", **params})


def dns(spf: Any) -> Callable[[Path], Any]:
    """The mail_dns filter as the verify role calls it (verify_dns_domains)."""
    return lambda _tmp: mail_dns(
        [{"name": "example.org", "spf": spf}], "mail.example.org", 3600, {}, "verify_dns_domains"
    )


def structured(structure: dict[str, Any]) -> Callable[[Path], Any]:
    return lambda _tmp: spf_record(structure)


def smtpd(name: str, *options: str) -> dict[str, Any]:
    """A postfix_master_extra / fragment smtpd service with -o options."""
    args = [item for option in options for item in ("-o", option)]
    return {"name": name, "type": "inet", "private": "n", "chroot": "n", "command": "smtpd", "args": args}


PF = "postfix_role_tables: invalid postfix role variables:\n- "
CONFLICTS = (
    "mail_play_conflicts: conflicts between the roles' variables of this play (refused before any role changes "
    "the host):\n- "
)
AUTH_ONLY_NO = "smtpd_tls_auth_only = no: AUTH must only be offered after STARTTLS (a SASL role switches AUTH on)"
SPF = "mail_dns: example.org: verify_dns_domains[0].spf: "
SUBMISSION = {
    "syslog_name": "postfix/submission",
    "smtpd_tls_security_level": "encrypt",
    "smtpd_tls_auth_only": "no",
    "smtpd_relay_restrictions": "permit_sasl_authenticated,reject",
    "smtpd_recipient_restrictions": "permit_sasl_authenticated,reject",
}
VIRTUAL = [{"name": "bad.example.org", "users": [{"name": "alice", "password": PASSWORD}]}]

ROWS = [
    # -- A. AUTH on port 25 only after STARTTLS: the postfix role's validation ----------------------------
    pytest.param(role(postfix_main_extra={"smtpd_tls_auth_only": "no"}), PF + "postfix_main_extra: " + AUTH_ONLY_NO,
                 id="auth25-main-extra-auth-only-no"),
    pytest.param(role(postfix_main_extra={"smtpd_tls_auth_only": False}),
                 PF + "postfix_main_extra: smtpd_tls_auth_only = no: AUTH must only be offered after STARTTLS",
                 id="auth25-main-extra-auth-only-false"),
    pytest.param(role(postfix_main_extra={"smtpd_sasl_auth_enable": "yes", "smtpd_tls_security_level": "none"}),
                 PF + "postfix_main_extra: smtpd_sasl_auth_enable is on but smtpd_tls_security_level is 'none': AUTH "
                 "needs STARTTLS (smtpd_tls_security_level may or encrypt)",
                 id="auth25-main-extra-sasl-tls-none"),
    pytest.param(role(postfix_main_extra={"smtpd_sasl_auth_enable": "yes", "smtpd_tls_auth_only": "no"}),
                 PF + "postfix_main_extra: smtpd_tls_auth_only must be yes while smtpd_sasl_auth_enable is on: AUTH "
                 "would be offered before STARTTLS, and passwords sent in clear",
                 id="auth25-main-extra-sasl-auth-only-no"),
    pytest.param(role(postfix_submission_options=SUBMISSION),
                 PF + "postfix_submission_options: master.cf service submission/inet: -o " + AUTH_ONLY_NO,
                 id="auth25-submission-auth-only-no"),
    pytest.param(role(postfix_master_extra=[smtpd("2525", "smtpd_tls_auth_only=no")]),
                 PF + "postfix_master_extra[0]: master.cf service 2525/inet: -o " + AUTH_ONLY_NO,
                 id="auth25-extra-smtpd-auth-only-no"),
    pytest.param(role(postfix_master_extra=[smtpd("2525", "smtpd_sasl_auth_enable=yes",
                                                  "smtpd_tls_security_level=none")]),
                 PF + "postfix_master_extra[0]: master.cf service 2525/inet: -o smtpd_sasl_auth_enable is on but "
                 "smtpd_tls_security_level is 'none'",
                 id="auth25-extra-smtpd-sasl-tls-none"),
    # -- A. ... and postfix_config's judgement of the merged result (another role's fragment) ---------------
    pytest.param(merged(main={"smtpd_sasl_auth_enable": True}),
                 "invalid Postfix configuration:\n- main.cf: smtpd_tls_auth_only must be yes while "
                 "smtpd_sasl_auth_enable is on",
                 id="auth25-merged-sasl-without-auth-only"),
    pytest.param(merged(main={"smtpd_sasl_auth_enable": True, "smtpd_tls_auth_only": True}),
                 "main.cf: smtpd_sasl_auth_enable is on but smtpd_tls_security_level is empty: AUTH needs STARTTLS",
                 id="auth25-merged-sasl-without-tls"),
    pytest.param(merged(master=[smtpd("2525", "smtpd_sasl_auth_enable=yes", "smtpd_tls_auth_only=no")]),
                 "master.cf service 2525/inet: -o smtpd_tls_auth_only must be yes while smtpd_sasl_auth_enable is on",
                 id="auth25-merged-dash-o"),
    # -- A. mail_probe never sends a password over unverified TLS without the insecure switch ---------------
    pytest.param(probe(user=USER, password=PASSWORD, tls_verify=False),
                 "password: not sent over TLS whose certificate is not verified (tls_verify: false); verify it "
                 "(tls_verify: true, with ca_file for a private CA), or set insecure_login: true to send it anyway",
                 id="probe-password-unverified"),
    pytest.param(probe(read_password=PASSWORD, tls_verify=False, insecure_login=False),
                 "password: not sent over TLS whose certificate is not verified (tls_verify: false)",
                 id="probe-read-password-unverified"),
    # -- B. an SPF value given as a string is checked like the structured form ----------------------------
    pytest.param(dns("v=spf1 mx +all"), SPF + "term 'all' (pass) would let every host on the internet send mail",
                 id="spf-string-plus-all"),
    pytest.param(dns("v=spf1 mx all"), SPF + "term 'all' (pass) would let every host", id="spf-string-bare-all"),
    pytest.param(dns("v=spf1 mx ?all"), SPF + "term '?all' (neutral) lets every host on the internet send mail",
                 id="spf-string-neutral-all"),
    pytest.param(dns("v=spf1 ip4:0.0.0.0/0 -all"),
                 SPF + "term 'ip4:0.0.0.0/0' authorizes a /0, wider than a /8: (nearly) every IPv4 host",
                 id="spf-string-ip4-everything"),
    pytest.param(dns("v=spf1 ip6:::/0 -all"),
                 SPF + "term 'ip6:::/0' authorizes a /0, wider than a /16: (nearly) every IPv6 host",
                 id="spf-string-ip6-everything"),
    pytest.param(dns("v=spf1 ip4:0.0.0.0/1 ip4:128.0.0.0/1 -all"), SPF + "term 'ip4:0.0.0.0/1' authorizes a /1",
                 id="spf-string-two-halves"),
    pytest.param(dns("v=spf1 ip4:10.0.0.0/8 ip4:11.0.0.0/8 -all"),
                 SPF + "the ip4 terms together authorize 33554432 addresses, more than a /8 (16777216)",
                 id="spf-string-blocks-together"),
    pytest.param(dns("v=spf1 ?ip4:0.0.0.0/0 -all"), SPF + "term '?ip4:0.0.0.0/0' authorizes a /0",
                 id="spf-string-neutral-everything"),
    pytest.param(dns("v=spf1 a/0 -all"), SPF + "term 'a/0' authorizes a /0, wider than a /8",
                 id="spf-string-a-slash-zero"),
    pytest.param(dns("v=spf1 mx//0 -all"), SPF + "term 'mx//0' authorizes a /0, wider than a /16",
                 id="spf-string-mx-ip6-zero"),
    pytest.param(dns("v=spf1 exists:example.org -all"),
                 SPF + "term 'exists:example.org' has no macro, so it matches every sender",
                 id="spf-string-exists-without-macro"),
    pytest.param(dns("v=spf1 -all mx"), SPF + "term 'mx' comes after 'all' and is never evaluated",
                 id="spf-string-term-after-all"),
    pytest.param(dns("v=spf1 redirect=_spf.example.org -all"), SPF + "give either all or redirect",
                 id="spf-string-all-and-redirect"),
    pytest.param(dns("v=spf1 mx redirct=_spf.example.org"), SPF + "unknown modifier 'redirct' (receivers ignore it",
                 id="spf-string-typo-modifier"),
    pytest.param(dns("v=spf1 mx\t-all"), SPF + "'v=spf1 mx\\t-all' contains '\\t': an SPF record is printable ASCII",
                 id="spf-string-tab"),
    pytest.param(dns("v=spf1 mx mxx -all"), SPF + "term 'mxx': unknown mechanism 'mxx'", id="spf-string-syntax"),
    pytest.param(dns("v=spf1 ip4:192.0.2.300 -all"), SPF + "term 'ip4:192.0.2.300': '192.0.2.300' is not an IPv4",
                 id="spf-string-bad-address"),
    pytest.param(structured({"ip4": ["0.0.0.0/0"]}), "spf_record: spf_record: term 'ip4:0.0.0.0/0' authorizes a /0",
                 id="spf-structured-ip4-everything"),
    pytest.param(structured({"mx": True, "all": "neutral"}), "spf_record: spf_record: term '?all' (neutral)",
                 id="spf-structured-neutral"),
    # -- C. conflicts between roles, refused by the postfix role's first task ---------------------------------
    pytest.param(postfix_play(mailboxes_domains=[{"name": "example.com", "users": []}]),
                 CONFLICTS + "mailboxes_domains[0].name: example.com is also a local domain of Postfix "
                 "(postfix_mydestination: host.example.com, localhost.example.com, localhost, example.com); a domain "
                 "is either local (postfix_mydestination) or virtual (mailboxes_domains), never both",
                 id="conflict-virtual-is-mydomain"),
    pytest.param(postfix_play(postfix={"postfix_mydestination": ["$myhostname", "localhost", "Bad.Example.Org."]},
                              mailboxes_domains=VIRTUAL),
                 CONFLICTS + "mailboxes_domains[0].name: bad.example.org is also a local domain of Postfix "
                 "(postfix_mydestination: host.example.com, localhost, bad.example.org)",
                 id="conflict-mydestination-lists-virtual"),
    pytest.param(postfix_play(postfix={"postfix_relay_domains": ["bad.example.org"]}, mailboxes_domains=VIRTUAL),
                 CONFLICTS + "mailboxes_domains[0].name: bad.example.org is also in postfix_relay_domains",
                 id="conflict-relay-and-virtual"),
    pytest.param(postfix_play(mailboxes_domains=[{"name": "HOST.example.com."}, {"name": "lists.example.com"}]),
                 CONFLICTS + "mailboxes_domains[0].name: host.example.com is also a local domain of Postfix",
                 id="conflict-virtual-is-myhostname"),
    pytest.param(postfix_play(postfix={"postfix_tls_enabled": False, "postfix_submission_enabled": False,
                                       "postfix_smtps_enabled": False},
                              dovecot_postfix_smtpd_sasl_auth_enable=True),
                 CONFLICTS + "dovecot_postfix_smtpd_sasl_auth_enable: SMTP AUTH on port 25 needs STARTTLS, but the "
                 "postfix role offers none there",
                 id="conflict-auth25-without-tls-dovecot"),
    pytest.param(postfix_play(postfix={"postfix_tls_enabled": False, "postfix_submission_enabled": False,
                                       "postfix_smtps_enabled": False},
                              saslauthd_postfix_smtpd_sasl_auth_enable="yes"),
                 CONFLICTS + "saslauthd_postfix_smtpd_sasl_auth_enable: SMTP AUTH on port 25 needs STARTTLS",
                 id="conflict-auth25-without-tls-saslauthd"),
    pytest.param(postfix_play(postfix={"postfix_main_extra": {"smtpd_tls_security_level": "none"}},
                              dovecot_postfix_smtpd_sasl_auth_enable=True),
                 CONFLICTS + "dovecot_postfix_smtpd_sasl_auth_enable: SMTP AUTH on port 25 needs STARTTLS, but the "
                 "postfix role offers none there (postfix_tls_enabled false, or a smtpd_tls_security_level of none "
                 "in postfix_smtpd_tls_security_level or postfix_main_extra)",
                 id="conflict-auth25-main-extra-tls-none"),
    pytest.param(postfix_play(postfix={"postfix_master_extra": [smtpd("10025")]}, amavis_enabled=True),
                 CONFLICTS + "postfix_master_extra[0]: the service 10025 listens on port 10025, the smtpd amavis "
                 "re-injects mail into (the amavis role's 127.0.0.1:10025)",
                 id="conflict-amavis-reinjection-port"),
    pytest.param(postfix_play(["postmaster.mailserver.postfix", "postmaster.mailserver.amavis"],
                              postfix={"postfix_master_extra": [smtpd("0.0.0.0:10024")]}),
                 CONFLICTS + "postfix_master_extra[0]: the service 0.0.0.0:10024 listens on port 10024, amavis's own "
                 "listener",
                 id="conflict-amavis-listener-port"),
]  # fmt: skip


def test_there_are_at_least_twenty_rows():
    ids = [row.id for row in ROWS]
    assert len(ids) == len(set(ids)) >= 20


@pytest.mark.parametrize(("thunk", "expected"), ROWS)
def test_hostile_input_fails_with_the_exact_error(tmp_path, thunk, expected):
    with pytest.raises(Exception) as excinfo:
        thunk(tmp_path)
    assert expected in str(excinfo.value)
    assert PASSWORD not in str(excinfo.value)


# -- what stays possible -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 mx -all",
        "v=spf1 a mx ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all",
        "v=spf1 ip4:10.0.0.0/8 -all",  # a /8 is the widest allowed
        "v=spf1 -ip4:0.0.0.0/0 mx -all",  # a fail-qualified range authorizes nobody
        "v=spf1 a/24 mx//64 -all",
        "v=spf1 exists:%{i}._spf.example.org -all",
        "v=spf1 include:_spf.provider.example redirect=_spf.example.org",
        "v=spf1 mx exp=explain.example.org -all",
        "v=spf1 -all",
    ],
)
def test_legitimate_spf_strings_pass(record):
    assert mail_dns([{"name": "example.org", "spf": record}], "mail.example.org")[0]["spf"] == record


@pytest.mark.parametrize(
    ("structure", "record"),
    [
        ({"mx": True, "all": "fail"}, "v=spf1 mx -all"),
        ({"ip4": ["10.0.0.0/8"], "ip6": ["2001::/16"]}, "v=spf1 ip4:10.0.0.0/8 ip6:2001::/16 ~all"),
    ],
)
def test_legitimate_spf_structures_pass(structure, record):
    assert spf_record(structure) == record


def _unquote(value: str) -> list[str]:
    """The strings of a zone-file TXT value, unescaped (RFC 1035 5.1)."""
    out = []
    for quoted in re.findall(r'"((?:[^"\\]|\\.)*)"', value):
        out.append(re.sub(r"\\(\d{3}|.)", lambda m: chr(int(m[1])) if m[1].isdigit() else m[1], quoted))
    return out


@pytest.mark.parametrize("prefix", [253, 254, 255, 256, 509, 510])
@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_txt_strings_never_cut_a_character(prefix, char):
    text = "a" * prefix + char * 3 + "b" * 300
    strings = txt_strings(text)
    assert "".join(strings) == text
    assert all(0 < len(s.encode()) <= TXT_STRING_BYTES for s in strings)
    # Every string but the last is full, less at most one character that did not fit.
    assert all(len(s.encode()) > TXT_STRING_BYTES - len(char.encode()) for s in strings[:-1])
    assert _unquote(txt_value(text)) == strings


def test_txt_value_escapes_quotes_backslashes_and_control_characters():
    text = 'v=DMARC1; x="a\\b"\x01'
    assert txt_value(text) == '"v=DMARC1; x=\\"a\\\\b\\"\\001"'
    assert _unquote(txt_value(text)) == [text]
    assert txt_strings("") == [""]
    assert txt_value("") == '""'


def test_auth_on_port_25_after_starttls_passes_the_role_and_the_merge():
    """The defaults plus a SASL role's fragment that switches AUTH on for port 25 (main.cf) is fine."""
    role_fragment = postfix_role_fragment(_postfix_settings(), CERT)
    assert role_fragment["main"]["smtpd_tls_auth_only"] is True
    sasl = {"main": {"smtpd_sasl_type": "dovecot", "smtpd_sasl_path": "private/auth", "smtpd_sasl_auth_enable": True}}
    fragments = json.loads(json.dumps([["10-postfix.json", role_fragment], ["30-dovecot-sasl.json", sasl]]))
    main, services = merge_fragments([tuple(pair) for pair in fragments])
    validate_main(main, None, lambda _path: True, services=services)
    # A loopback listener without TLS may offer AUTH (webmail on the same host), and smtps speaks TLS at once.
    postfix_role(
        postfix_master_extra=[smtpd("127.0.0.1:2587", "smtpd_sasl_auth_enable=yes", "smtpd_tls_security_level=none")]
    )()


def test_a_full_play_without_conflicts_is_judged_and_passes(tmp_path):
    play = [role for role in FULL_PLAY if not role.endswith("saslauthd")]
    judged = postfix_play(play, mailboxes_domains=VIRTUAL, amavis_enabled=True)(tmp_path)
    assert judged == ["local or virtual domain", "amavis ports"]
    # saslauthd alone as the SASL backend, with AUTH on port 25 (after STARTTLS)
    judged = postfix_play(
        ["postmaster.mailserver.postfix", "postmaster.mailserver.saslauthd"],
        saslauthd_postfix_smtpd_sasl_auth_enable=True,
    )(tmp_path)
    assert judged == ["AUTH on port 25 (saslauthd)"]
    # dovecot without SASL next to saslauthd
    assert postfix_play(FULL_PLAY, dovecot_sasl_enabled=False)(tmp_path) == ["amavis ports"]


def test_two_sasl_backends_in_one_play_are_warned_about(tmp_path, monkeypatch):
    """The role names do not say whether when: puts them on different hosts; the later role refuses on a host."""
    warnings: list[str] = []
    monkeypatch.setattr("ansible.utils.display.Display.warning", lambda _self, msg, *a, **k: warnings.append(msg))
    assert postfix_play(FULL_PLAY)(tmp_path) == ["SASL backend", "amavis ports"]
    assert warnings == [
        "dovecot_sasl_enabled: the dovecot and saslauthd roles are both in this play, and both would be Postfix's "
        "SASL backend; only one can be on a host (the later role refuses there): set dovecot_sasl_enabled: false, "
        "or apply the saslauthd role to other hosts only"
    ]


def test_probe_sends_no_password_to_an_unverified_certificate(fake_mail):
    """Verification is on by default: the fake server's self-signed certificate is not in the system's trust store."""
    result = MailProbe(
        {
            "host": "127.0.0.1",
            "tls_name": "mail.example.test",
            "ports": fake_mail.ports,
            "services": ["submission", "imaps", "pop3s"],
            "user": USER,
            "password": PASSWORD,
            "relay_check": False,
            "timeout": 5.0,
        }
    ).run()
    assert result["tls_verified"] is True and result["insecure_login"] is False
    assert result["tls_trust"] == "verified with the system's trust store"
    assert not any(name.endswith("_login") for name in result["checks"])
    assert "certificate not verified: self-signed certificate" in result["checks"]["submission_tls"]["detail"]
    received = " ".join(line for _service, line in fake_mail.transcript)
    assert "AUTH" not in received.upper() and "PASS" not in received.upper()


def test_probe_with_the_insecure_switch_logs_in_and_says_so(fake_mail):
    result = MailProbe(
        {
            "host": "127.0.0.1",
            "tls_name": "mail.example.test",
            "ports": fake_mail.ports,
            "services": ["submission", "imaps", "pop3s"],
            "user": USER,
            "password": PASSWORD,
            "relay_check": False,
            "tls_verify": False,
            "insecure_login": True,
            "timeout": 5.0,
        }
    ).run()
    assert result["ok"] is True, result["failed_checks"]
    assert (result["tls_verified"], result["insecure_login"]) == (False, True)
    for service in ("submission", "imaps", "pop3s"):
        assert result["checks"][f"{service}_login"]["detail"].endswith("(certificate NOT verified: insecure_login)")
        assert result["checks"][f"{service}_certificate"]["verified"] is False


def test_probe_password_guard_refuses_a_clear_connection():
    probe_ = MailProbe({"host": "127.0.0.1", "user": USER, "password": PASSWORD})
    client = smtplib.SMTP()
    with pytest.raises(Exception, match="not sent: the connection is not encrypted"):
        probe_.password_guard(client.sock)


def test_the_verify_report_says_how_tls_was_trusted_and_warns_when_insecure(monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr("ansible.utils.display.Display.warning", lambda _self, msg, *a, **k: warnings.append(msg))
    base = {"host": "mail.example.org", "checks": {}, "failed_checks": []}
    verified = verify_report({**base, "tls_verified": True, "tls_trust": "verified with /etc/ca.pem"})
    assert "  TLS: certificates verified with /etc/ca.pem" in verified.splitlines()
    assert warnings == []
    insecure = {**base, "tls_verified": False, "tls_trust": "not verified (tls_verify: false)", "insecure_login": True}
    text = verify_report(insecure)
    assert "password was sent over it anyway (the insecure switch, verify_insecure_tls)" in text
    assert len(warnings) == 1 and warnings[0].startswith("verify_insecure_tls: TLS: certificates not verified")


def test_the_roles_pass_the_variables_the_check_knows():
    """postfix_play above hands over what roles/postfix/tasks/validate.yml does; every role's keys are known."""
    roles = Path(__file__).resolve().parents[3] / "roles"
    passed = {}
    for name, path in (
        ("postfix", "postfix/tasks/validate.yml"),
        ("dovecot", "dovecot/tasks/validate.yml"),
        ("saslauthd", "saslauthd/tasks/validate.yml"),
        ("mailboxes", "mailboxes/tasks/validate.yml"),
        ("amavis", "amavis/tasks/main.yml"),
    ):
        tasks = yaml.safe_load((roles / path).read_text())
        task = next(t for t in tasks if f"__{name}_play" in (t.get("vars") or {}))
        assert "mail_play_conflicts(ansible_play_role_names" in str(task["ansible.builtin.set_fact"])
        passed[name] = set(task["vars"][f"__{name}_play"])
        assert passed[name] <= set(KEYS), name
    assert passed["postfix"] == set(PLAY_KEYS) | set(OTHER_KEYS)
