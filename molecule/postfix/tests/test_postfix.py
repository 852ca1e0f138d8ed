"""The postfix role, proven with real SMTP clients on the server and from an outside container."""

from __future__ import annotations

import uuid

import helpers
import pytest
import tls


def test_postconf_shows_configured_values_and_check_is_clean(server):
    conf = dict(line.split(" = ", 1) for line in server.check_output("postconf -n").splitlines() if " = " in line)
    assert conf["myhostname"] == "mail.example.test"
    assert conf["mydomain"] == "example.test"
    assert conf["home_mailbox"] == "Maildir/"
    assert conf["smtpd_banner"] == "$myhostname ESMTP"
    assert conf["disable_vrfy_command"] == "yes"
    assert conf["smtpd_helo_required"] == "yes"
    assert "reject_unauth_destination" in conf["smtpd_recipient_restrictions"]
    assert conf["mynetworks"] == "127.0.0.0/8, [::1]/128"
    assert conf["smtpd_tls_protocols"] == "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"
    check = server.run("postfix check")
    assert check.rc == 0 and check.stderr == "" and check.stdout == ""
    # postconf itself has nothing to warn about in the live configuration.
    assert "warning" not in server.run("postconf -n").stderr


def test_main_cf_is_assembled_and_managed(server):
    main_cf = server.file("/etc/postfix/main.cf")
    assert main_cf.user == "root" and main_cf.mode == 0o644
    assert "postmaster.mailserver" in main_cf.content_string.splitlines()[0]
    assert server.file("/etc/postfix/postmaster.d/10-postfix.json").exists


def test_greeting_has_no_version_and_vrfy_is_disabled(server_ip):
    replies = helpers.smtp("client", server_ip, 25, [["ehlo", "client.outside.test"], ["vrfy", "alice"]])
    code, greeting = replies[0]
    assert code == 220
    # A client postscreen has not seen yet gets its "220-" banner before smtpd's "220 " (the same text, the
    # smtpd_banner); one it passed earlier gets smtpd's alone.
    lines = greeting.splitlines()
    assert 1 <= len(lines) <= 2 and set(lines) == {"mail.example.test ESMTP"}, greeting
    assert "postfix" not in greeting.lower()
    assert replies[2][0] == 502


def test_helo_is_required(server_ip):
    replies = helpers.smtp("client", server_ip, 25, [["mail", "FROM:<a@outside.test>"]])
    assert replies[1][0] == 503, replies


def test_local_delivery_lands_in_maildir(server):
    token = uuid.uuid4().hex
    replies = helpers.smtp(
        "server",
        "127.0.0.1",
        25,
        [
            ["ehlo", "localhost"],
            ["mail", "FROM:<root@mail.example.test>"],
            ["rcpt", "TO:<alice@mail.example.test>"],
            ["data", helpers.message("root@mail.example.test", "alice@mail.example.test", f"hello {token}")],
        ],
    )
    assert [reply[0] for reply in replies] == [220, 250, 250, 250, 354, 250], replies
    found = helpers.wait_for_file(server, "/home/alice/Maildir/new/*")
    assert found, "nothing arrived in /home/alice/Maildir/new"
    assert server.run(f"grep -l {token} /home/alice/Maildir/new/*").rc == 0


def test_root_alias_delivers_to_the_real_user(server):
    token = uuid.uuid4().hex
    result = server.run(
        "printf 'Subject: %s\\n\\nalias test\\n' | /usr/sbin/sendmail -f root@mail.example.test postmaster", token
    )
    assert result.rc == 0, result.stderr
    cmd = (
        f"for i in $(seq 30); do grep -l {token} /home/alice/Maildir/new/* 2>/dev/null && exit 0; sleep 1; done; exit 1"
    )
    assert server.run(cmd).rc == 0, "postmaster -> root -> alice alias chain did not deliver"


def test_access_map_reject(server_ip):
    replies = helpers.smtp(
        "client",
        server_ip,
        25,
        [
            ["ehlo", "client.outside.test"],
            ["mail", "FROM:<spammer@bad.example>"],
            ["rcpt", "TO:<alice@mail.example.test>"],
        ],
    )
    assert replies[3][0] == 554, replies
    assert "sender refused by access map" in replies[3][1]


def test_header_checks_reject(server_ip):
    replies = helpers.smtp(
        "client",
        server_ip,
        25,
        [
            ["ehlo", "client.outside.test"],
            ["mail", "FROM:<bob@outside.test>"],
            ["rcpt", "TO:<alice@mail.example.test>"],
            ["data", helpers.message("bob@outside.test", "alice@mail.example.test", "this is FORBIDDEN stuff")],
        ],
    )
    assert replies[3][0] == 250, replies
    assert replies[5][0] == 550, replies
    assert "subject refused by header_checks" in replies[5][1]


def test_body_checks_reject(server_ip):
    replies = helpers.smtp(
        "client",
        server_ip,
        25,
        [
            ["ehlo", "client.outside.test"],
            ["mail", "FROM:<bob@outside.test>"],
            ["rcpt", "TO:<alice@mail.example.test>"],
            ["data", helpers.message("bob@outside.test", "alice@mail.example.test", "fine", body="BODY-SPAM-MARKER")],
        ],
    )
    assert replies[5][0] == 550, replies
    assert "body refused by body_checks" in replies[5][1]


def test_received_headers_with_internal_addresses_are_stripped(server):
    token = uuid.uuid4().hex
    headers = "Received: from laptop (laptop [192.168.1.20]) by gw\nReceived: from edge (edge [203.0.113.7]) by gw\n"
    replies = helpers.smtp(
        "server",
        "127.0.0.1",
        25,
        [
            ["ehlo", "localhost"],
            ["mail", "FROM:<root@mail.example.test>"],
            ["rcpt", "TO:<alice@mail.example.test>"],
            ["data", headers + helpers.message("root@mail.example.test", "alice", f"strip {token}")],
        ],
    )
    assert replies[5][0] == 250, replies
    cmd = f"for i in $(seq 30); do f=$(grep -l {token} /home/alice/Maildir/new/* 2>/dev/null) && cat $f && exit 0; sleep 1; done; exit 1"
    delivered = server.run(cmd)
    assert delivered.rc == 0
    assert "192.168.1.20" not in delivered.stdout
    assert "203.0.113.7" in delivered.stdout


def test_open_relay_is_refused_from_outside(server_ip):
    replies = helpers.smtp(
        "client",
        server_ip,
        25,
        [
            ["ehlo", "client.outside.test"],
            ["mail", "FROM:<bob@outside.test>"],
            ["rcpt", "TO:<victim@elsewhere.example>"],
        ],
    )
    code, text = replies[3]
    assert code == 554, replies
    assert "5.7.1" in text and "Relay access denied" in text


def test_submission_requires_starttls_and_offers_no_auth_in_clear(server_ip):
    replies = helpers.smtp(
        "client", server_ip, 587, [["ehlo", "client.outside.test"], ["mail", "FROM:<bob@outside.test>"]]
    )
    assert replies[0][0] == 220
    ehlo = replies[1][1]
    assert "STARTTLS" in ehlo
    assert "AUTH" not in ehlo
    assert replies[2][0] == 530, replies  # Must issue a STARTTLS command first


def test_submission_without_sasl_refuses_relay_after_starttls(server_ip):
    replies = helpers.smtp(
        "client",
        server_ip,
        587,
        [
            ["ehlo", "client.outside.test"],
            ["starttls"],
            ["ehlo", "client.outside.test"],
            ["mail", "FROM:<bob@outside.test>"],
            ["rcpt", "TO:<victim@elsewhere.example>"],
        ],
    )
    assert replies[2][0] == 220, replies
    assert replies[5][0] == 554, replies


def test_smtps_speaks_tls_from_the_first_byte(server_ip):
    replies = helpers.smtp("client", server_ip, 465, [["ehlo", "client.outside.test"]], wrapper=True)
    assert replies[0] == (220, "mail.example.test ESMTP"), replies


@pytest.mark.parametrize("proto", ["-tls1", "-tls1_1"])
def test_old_tls_versions_are_refused(server_ip, proto):
    client = helpers.host("client")
    result = client.run(
        "echo QUIT | timeout 20 openssl s_client -connect %s:465 %s -cipher DEFAULT@SECLEVEL=0", server_ip, proto
    )
    assert result.rc != 0
    assert "Cipher is (NONE)" in result.stdout or "alert" in (result.stdout + result.stderr).lower()


def test_tls12_is_accepted(server_ip):
    client = helpers.host("client")
    result = client.run("echo QUIT | timeout 20 openssl s_client -connect %s:465 -tls1_2", server_ip)
    assert result.rc == 0, result.stdout + result.stderr
    assert "Protocol  : TLSv1.2" in result.stdout or "TLSv1.2" in result.stdout


# -- TLS hardening by default, judged from the outside client ------------------------------------

TLS_PORTS = [25, 587, 465]


@pytest.mark.parametrize("port", TLS_PORTS)
def test_anonymous_and_null_ciphers_are_refused(server_ip, port):
    # The client offers only these (OpenSSL still has them at security level 0).
    for ciphers in ("aNULL:@SECLEVEL=0", "eNULL:@SECLEVEL=0"):
        result = tls.handshake(server_ip, port, "-tls1_2", "-cipher", f"'{ciphers}'")
        assert not result.ok, (ciphers, result.output)
        # Refused by the server: an alert (Postfix, Dovecot 2.4) or a closed connection (Dovecot 2.3 on
        # Debian 12), never the client's own "no cipher match".
        assert "no cipher match" not in result.output, result.output
        assert "handshake failure" in result.output or "unexpected eof" in result.output, result.output


@pytest.mark.parametrize("port", TLS_PORTS)
def test_tls11_is_refused_and_tls12_accepted(server_ip, port):
    refused = tls.handshake(server_ip, port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert not refused.ok, refused.output
    accepted = tls.handshake(server_ip, port, "-tls1_2")
    assert accepted.ok and accepted.protocol == "TLSv1.2", accepted.output


@pytest.mark.parametrize("port", TLS_PORTS)
def test_the_server_chooses_the_cipher(server_ip, port):
    result = tls.handshake(server_ip, port, "-tls1_2", "-cipher", tls.CLIENT_ORDER)
    assert result.ok, result.output
    assert result.cipher == "ECDHE-RSA-AES256-GCM-SHA384", result.output


def test_tls_hardening_is_in_main_cf(server):
    conf = dict(line.split(" = ", 1) for line in server.check_output("postconf -n").splitlines() if " = " in line)
    assert {key: conf.get(key) for key in TLS_HARDENING} == TLS_HARDENING


TLS_HARDENING = {
    "smtpd_tls_ciphers": "high",
    "smtpd_tls_mandatory_ciphers": "high",
    "tls_preempt_cipherlist": "yes",
    "smtpd_tls_exclude_ciphers": "aNULL, eNULL, EXPORT, DES, 3DES, RC4, MD5, PSK, SRP, IDEA, SEED",
    "tls_ssl_options": "NO_RENEGOTIATION",
    "smtpd_tls_protocols": "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1",
    "smtpd_tls_mandatory_protocols": "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1",
}
