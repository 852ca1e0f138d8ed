"""Dovecot with virtual users and Dovecot SASL for Postfix, proven with real clients from the outside host."""

from __future__ import annotations

import base64
import time

import helpers
import mailclient
import pytest
import tls

ANNA = ("anna@virtual.example.test", "Anna-Test-Password-1")
BEN = ("ben@virtual.example.test", "Ben-Test-Password-2")
VMAIL = "/var/mail/vmail/virtual.example.test"


def test_services_run_and_config_is_valid(server):
    assert server.service("dovecot").is_running
    assert server.service("dovecot").is_enabled
    conf = server.check_output("doveconf -n")
    assert "protocols = imap pop3 lmtp" in conf
    assert "ssl = required" in conf
    assert "auth_mechanisms = plain login" in conf
    if helpers.dovecot_24(server):
        assert server.check_output("doveconf -h auth_allow_cleartext") == "no"
    else:
        assert server.check_output("doveconf -h disable_plaintext_auth") == "yes"
    assert server.check_output("doveconf -h ssl_min_protocol") == "TLSv1.2"
    for name in ("05-protocols", "10-auth", "10-mail", "10-master", "10-ssl"):
        assert server.file(f"/etc/dovecot/conf.d/{name}.conf").contains("Ansible managed")


def test_postfix_and_dovecot_share_the_certificate(server, server_ip):
    cert = "/etc/ssl/postmaster/mail.example.test.crt"
    assert server.check_output("postconf -h smtpd_tls_cert_file") == cert
    # Seen from outside: 993, 995 and 587 present the certificate file the role made.
    fingerprint = "openssl x509 -noout -fingerprint -sha256"
    expected = server.check_output(f"{fingerprint} -in {cert}")
    for service in ("993", "995", "587 -starttls smtp"):
        port, _sep, extra = service.partition(" ")
        presented = helpers.host("client").check_output(
            f"echo | timeout 20 openssl s_client -connect %s:{port} {extra} 2>/dev/null | {fingerprint}", server_ip
        )
        assert presented == expected, service


def test_sasl_and_lmtp_sockets_in_postfix_spool(server):
    auth = server.file("/var/spool/postfix/private/auth")
    assert auth.is_socket and auth.user == "postfix" and auth.group == "postfix" and auth.mode == 0o660
    assert server.file("/var/spool/postfix/private/dovecot-lmtp").is_socket
    assert server.check_output("postconf -h smtpd_sasl_type") == "dovecot"
    assert server.check_output("postconf -h smtpd_sasl_path") == "private/auth"
    assert server.check_output("postconf -h postmaster_mua_sasl_auth_enable") == "yes"
    assert server.check_output("postconf -h virtual_transport") == "lmtp:unix:private/dovecot-lmtp"


def test_passwd_file_has_strong_hashes_and_tight_mode(server):
    users = server.file("/etc/dovecot/users")
    assert (users.user, users.group, users.mode) == ("root", "dovecot", 0o640)
    lines = users.content_string.splitlines()
    assert [line.split(":")[0] for line in lines] == [ANNA[0], BEN[0]]
    assert all(line.split(":")[1].startswith("{SHA512-CRYPT}$6$") for line in lines)
    assert ANNA[1] not in users.content_string


@pytest.mark.parametrize(("mode", "port"), [("imaps", 993), ("imap-starttls", 143)])
def test_imap_login_over_tls(server_ip, mode, port):
    out = mailclient.session(mode, server_ip, port, *ANNA)
    assert out.get("login") == "OK", out
    assert "exists" in out


def test_pop3_login_over_995(server_ip):
    out = mailclient.session("pop3s", server_ip, 995, *ANNA)
    assert out.get("login", "").startswith("+OK"), out


def test_imap_wrong_password_is_refused(server_ip):
    out = mailclient.session("imaps", server_ip, 993, ANNA[0], "wrong-password")
    assert "AUTHENTICATIONFAILED" in out.get("error", ""), out


def test_plain_login_without_starttls_is_refused(server_ip):
    out = mailclient.session("imap-plain", server_ip, 143, *ANNA)
    assert "LOGINDISABLED" in out["plain_caps"], out
    assert "error" in out and "login" not in out, out


def test_submission_offers_auth_only_after_starttls(server_ip):
    replies = helpers.smtp("client", server_ip, 587, [["ehlo", "client.outside.test"]])
    assert replies[1][0] == 250
    assert "AUTH" not in replies[1][1]
    assert "STARTTLS" in replies[1][1]
    replies = helpers.smtp(
        "client", server_ip, 587, [["ehlo", "client.outside.test"], ["starttls"], ["ehlo", "client.outside.test"]]
    )
    assert replies[2][0] == 220
    assert "AUTH PLAIN LOGIN" in replies[3][1], replies


@pytest.mark.parametrize(("password", "code"), [(ANNA[1], 235), ("wrong-password", 535)])
def test_submission_auth_plain(server_ip, password, code):
    steps = [["ehlo", "client.outside.test"], ["starttls"], ["ehlo", "client.outside.test"]]
    steps.append(["AUTH", "PLAIN", _plain(ANNA[0], password)])
    replies = helpers.smtp("client", server_ip, 587, steps)
    assert replies[4][0] == code, replies


def _plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_message_from_a_reaches_b_maildir_and_imap(server, server_ip):
    subject = f"dovecot-delivery-{time.time_ns()}"
    steps = [
        ["ehlo", "client.outside.test"],
        ["starttls"],
        ["ehlo", "client.outside.test"],
        ["auth", *ANNA],
        ["MAIL", f"FROM:<{ANNA[0]}>"],
        ["RCPT", f"TO:<{BEN[0]}>"],
        ["data", helpers.message(ANNA[0], BEN[0], subject)],
    ]
    replies = helpers.smtp("client", server_ip, 587, steps)
    assert replies[4][0] == 235, replies
    assert replies[-1][0] == 250, replies
    cmd = f"for i in $(seq 30); do grep -rl 'Subject: {subject}' {VMAIL}/ben/new/ && exit 0; sleep 1; done; exit 1"
    found = server.run(cmd)
    assert found.rc == 0, server.run("journalctl -t postfix/lmtp -t dovecot --no-pager -n 30").stdout
    path = found.stdout.split()[0]
    assert server.file(path).user == "vmail"
    out = mailclient.session("imaps", server_ip, 993, *BEN)
    assert f"Subject: {subject}" in out.get("subjects", []), out


def test_unknown_virtual_recipient_is_refused(server_ip):
    steps = [
        ["ehlo", "client.outside.test"],
        ["starttls"],
        ["ehlo", "client.outside.test"],
        ["auth", *ANNA],
        ["MAIL", f"FROM:<{ANNA[0]}>"],
        ["RCPT", "TO:<nobody@virtual.example.test>"],
    ]
    replies = helpers.smtp("client", server_ip, 587, steps)
    assert replies[-1][0] == 550, replies


@pytest.mark.parametrize("proto", ["-tls1", "-tls1_1"])
@pytest.mark.parametrize("service", ["993", "587 -starttls smtp"])
def test_old_tls_versions_are_refused(server_ip, proto, service):
    port, _sep, extra = service.partition(" ")
    result = helpers.host("client").run(
        f"echo QUIT | timeout 20 openssl s_client -connect %s:{port} {extra} {proto} -cipher DEFAULT@SECLEVEL=0",
        server_ip,
    )
    assert result.rc != 0
    assert "Cipher is (NONE)" in result.stdout or "alert" in (result.stdout + result.stderr).lower()


def test_tls12_is_accepted_on_993(server_ip):
    result = helpers.host("client").run("echo QUIT | timeout 20 openssl s_client -connect %s:993 -tls1_2", server_ip)
    assert result.rc == 0, result.stdout + result.stderr
    assert "TLSv1.2" in result.stdout


# -- TLS hardening by default, judged from the outside client ------------------------------------


@pytest.mark.parametrize("port", [993, 995])
def test_dovecot_refuses_weak_tls(server_ip, port):
    # The client offers only these (OpenSSL still has them at security level 0).
    for ciphers in ("aNULL:@SECLEVEL=0", "eNULL:@SECLEVEL=0"):
        result = tls.handshake(server_ip, port, "-tls1_2", "-cipher", f"'{ciphers}'")
        assert not result.ok, (ciphers, result.output)
        # Refused by the server: an alert (Postfix, Dovecot 2.4) or a closed connection (Dovecot 2.3 on
        # Debian 12), never the client's own "no cipher match".
        assert "no cipher match" not in result.output, result.output
        assert "handshake failure" in result.output or "unexpected eof" in result.output, result.output
    refused = tls.handshake(server_ip, port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert not refused.ok, refused.output


@pytest.mark.parametrize("port", [993, 995, 587])
def test_the_server_chooses_the_cipher(server_ip, port):
    result = tls.handshake(server_ip, port, "-tls1_2", "-cipher", tls.CLIENT_ORDER)
    assert result.ok and result.protocol == "TLSv1.2", result.output
    assert result.cipher == "ECDHE-RSA-AES256-GCM-SHA384", result.output


def test_dovecot_tls_settings(server):
    # Dovecot 2.4 keeps the server side in the ssl_server filter (doveconf -h without it shows the default).
    prefer = "ssl_server/ssl_server_prefer_ciphers" if helpers.dovecot_24(server) else "ssl_prefer_server_ciphers"
    values = server.check_output(f"doveconf -h ssl_min_protocol ssl_cipher_list {prefer}").splitlines()
    assert values == [
        "TLSv1.2",
        "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!PSK:!SRP:!DSS",
        "server" if helpers.dovecot_24(server) else "yes",
    ]


def test_testssl_finds_nothing_medium_or_worse_on_any_port(server_ip):
    """testssl.sh (Debian's package) against every TLS port of a host built with the defaults.

    Protocols, cipher categories and the server's cipher order; the certificate (self-signed)
    is not judged here.
    """
    findings = tls.testssl(server_ip, [25, 465, 587, 993, 995])
    assert findings == {port: [] for port in (25, 465, 587, 993, 995)}, findings
