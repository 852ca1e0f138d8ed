"""Virtual domains, users, forwards, aliases and catch-alls, proven with real clients from the outside host."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import helpers
import mailclient
import pytest
import yaml

VMAIL = "/var/mail/vmail"
ALICE = ("alice@one.example.org", "Alice-Test-Password-1")
CAROL = ("carol@two.example.net", "Carol-Test-Password-4")
ERIN = ("erin@two.example.net", "Erin-Test-Password-5")
SYSTEM_MAILDIR = "/home/mailuser/Maildir"
ACCOUNTS = yaml.safe_load((Path(__file__).resolve().parents[1] / "vars" / "accounts.yml").read_text())


def maildir(address: str) -> str:
    local, domain = address.split("@")
    return f"{VMAIL}/{domain}/{local}"


def send(server_ip: str, recipient: str, subject: str) -> list[tuple[int, str]]:
    """Send one message from the outside client to port 25; return the replies."""
    steps = [
        ["ehlo", "client.outside.test"],
        ["mail", "FROM:<sender@outside.test>"],
        ["rcpt", f"TO:<{recipient}>"],
        ["data", helpers.message("sender@outside.test", recipient, subject)],
    ]
    return helpers.smtp("client", server_ip, 25, steps)


def arrived(server, directory: str, subject: str, timeout: int = 30) -> bool:
    """True once a message with the subject is in directory/new."""
    for _i in range(timeout):
        if server.run("grep -lF %s %s/new/* 2>/dev/null", f"Subject: {subject}", directory).rc == 0:
            return True
        time.sleep(1)
    return False


def rcpt(server_ip: str, recipient: str) -> tuple[int, str]:
    steps = [["ehlo", "client.outside.test"], ["mail", "FROM:<sender@outside.test>"], ["rcpt", f"TO:<{recipient}>"]]
    return helpers.smtp("client", server_ip, 25, steps)[-1]


def test_postfix_virtual_settings(server):
    assert server.check_output("postconf -h virtual_mailbox_domains") == "one.example.org, two.example.net"
    assert server.check_output("postconf -h virtual_mailbox_maps") == "hash:/etc/postfix/vmailbox"
    assert server.check_output("postconf -h virtual_alias_maps") == "hash:/etc/postfix/virtual"
    # One delivery path for virtual users: Dovecot LMTP (quota and Sieve act there).
    assert server.check_output("postconf -h virtual_transport") == "lmtp:unix:private/dovecot-lmtp"
    assert server.file("/var/spool/postfix/private/dovecot-lmtp").is_socket
    assert server.file("/etc/postfix/postmaster.d/40-mailboxes.json").exists
    assert server.run("postfix check").rc == 0
    assert (
        server.check_output("postmap -q carol@two.example.net hash:/etc/postfix/vmailbox") == "two.example.net/carol/"
    )


def test_vmail_user_and_passwd_file(server):
    vmail = server.user("vmail")
    assert (vmail.uid, vmail.gid, vmail.shell) == (5000, 5000, "/usr/sbin/nologin")
    users = server.file("/etc/dovecot/postmaster-mailboxes.users")
    assert (users.user, users.group, users.mode) == ("root", "dovecot", 0o640)
    lines = users.content_string.splitlines()
    names = [line.split(":")[0] for line in lines]
    assert names == [ALICE[0], "bob@one.example.org", "dave@one.example.org", CAROL[0], ERIN[0]]
    assert all(line.split(":")[1].startswith("{SHA512-CRYPT}$6$") for line in lines)
    assert ALICE[1] not in users.content_string
    carol = next(line for line in lines if line.startswith(CAROL[0]))
    assert carol.endswith(":userdb_quota_rule=*:storage=1G")
    conf = server.check_output("doveconf -n")
    assert "/etc/dovecot/postmaster-mailboxes.users" in conf
    assert server.check_output("doveadm user -f home %s", CAROL[0]) == maildir(CAROL[0])


@pytest.mark.parametrize("address", [ALICE[0], "bob@one.example.org", "dave@one.example.org", CAROL[0], ERIN[0]])
def test_virtual_maildirs_are_0700_vmail(server, address):
    base = maildir(address)
    for sub in ("", "/cur", "/new", "/tmp", "/.Sent", "/.Drafts", "/.Trash", "/.Junk", "/.Sent/new"):
        f = server.file(base + sub)
        assert f.is_directory, base + sub
        assert (f.user, f.group, f.mode) == ("vmail", "vmail", 0o700), base + sub


def test_system_user_is_mail_only_with_own_maildir(server):
    user = server.user("mailuser")
    assert user.shell == "/usr/sbin/nologin"
    for sub in ("", "/cur", "/new", "/tmp", "/.Sent"):
        f = server.file(SYSTEM_MAILDIR + sub)
        assert (f.user, f.group, f.mode) == ("mailuser", "mailuser", 0o700), sub


def test_skel_and_root_maildirs(server):
    for path in ("/etc/skel/Maildir", "/root/Maildir"):
        for sub in ("", "/new", "/.Trash"):
            f = server.file(path + sub)
            assert f.is_directory and (f.user, f.mode) == ("root", 0o700), path + sub


def test_virtual_user_receives_and_reads_over_imaps(server, server_ip):
    subject = f"mailboxes-alice-{time.time_ns()}"
    replies = send(server_ip, ALICE[0], subject)
    assert replies[-1][0] == 250, replies
    assert arrived(server, maildir(ALICE[0]), subject)
    out = mailclient.session("imaps", server_ip, 993, *ALICE)
    assert out.get("login") == "OK", out
    assert any(subject in s for s in out["subjects"]), out


def test_virtual_user_login_does_not_wait_for_pam(server, server_ip):
    """With dovecot_system_users on, PAM comes after the virtual users' passdb.

    PAM answers an unknown user (every virtual address) only after its failure delay of about 2 s;
    when it came first, every virtual user's login took that long.
    """
    config = server.check_output("doveconf -n")
    pam = re.search(r"passdb pam \{|driver = pam", config)
    assert pam and 0 <= config.find("passwd-file") < pam.start(), config
    timings = []
    for _i in range(3):
        out = mailclient.session("imaps", server_ip, 993, *ALICE)
        assert out.get("login") == "OK", out
        timings.append(out["login_seconds"])
    assert min(timings) < 1.0, timings


def test_user_with_hash_logs_in_and_wrong_password_is_refused(server_ip):
    assert mailclient.session("imaps", server_ip, 993, *ERIN).get("login") == "OK"
    out = mailclient.session("imaps", server_ip, 993, ALICE[0], "wrong-password")
    assert "AUTHENTICATIONFAILED" in out.get("error", ""), out


def test_forward_with_keep_copy_delivers_to_both(server, server_ip):
    subject = f"mailboxes-bob-{time.time_ns()}"
    assert send(server_ip, "bob@one.example.org", subject)[-1][0] == 250
    assert arrived(server, maildir("bob@one.example.org"), subject)
    assert arrived(server, maildir(CAROL[0]), subject)


def test_forward_without_copy_goes_only_to_target(server, server_ip):
    subject = f"mailboxes-dave-{time.time_ns()}"
    assert send(server_ip, "dave@one.example.org", subject)[-1][0] == 250
    assert arrived(server, SYSTEM_MAILDIR, subject)
    assert not arrived(server, maildir("dave@one.example.org"), subject, timeout=3)
    delivered = server.check_output("grep -lF %s %s/new/*", f"Subject: {subject}", SYSTEM_MAILDIR)
    assert server.file(delivered).user == "mailuser"


def test_alias_delivers_to_all_targets(server, server_ip):
    subject = f"mailboxes-info-{time.time_ns()}"
    assert send(server_ip, "info@one.example.org", subject)[-1][0] == 250
    assert arrived(server, maildir(ALICE[0]), subject)
    assert arrived(server, maildir(CAROL[0]), subject)


def test_catchall_takes_unknown_addresses_but_not_users(server, server_ip):
    subject = f"mailboxes-catchall-{time.time_ns()}"
    assert send(server_ip, "nobody-here@one.example.org", subject)[-1][0] == 250
    assert arrived(server, maildir(CAROL[0]), subject)
    # alice still gets her own mail (identity alias), not the catch-all target
    subject = f"mailboxes-alice-not-catchall-{time.time_ns()}"
    assert send(server_ip, ALICE[0], subject)[-1][0] == 250
    assert arrived(server, maildir(ALICE[0]), subject)
    assert not arrived(server, maildir(CAROL[0]), subject, timeout=3)


def test_unknown_user_is_refused_at_rcpt(server_ip):
    code, text = rcpt(server_ip, "nobody@two.example.net")
    assert code == 550, text
    assert "5.1.1" in text and "virtual mailbox table" in text, text


def test_removed_user_is_refused_and_maildir_kept(server, server_ip):
    domains = json.loads(json.dumps(ACCOUNTS["mailboxes_domains"]))
    domains[1]["users"] = [u for u in domains[1]["users"] if u.get("name") != "erin"]
    subject = f"mailboxes-erin-kept-{time.time_ns()}"
    assert send(server_ip, ERIN[0], subject)[-1][0] == 250
    assert arrived(server, maildir(ERIN[0]), subject)
    try:
        result = helpers.run_converge({"mailboxes_domains": domains})
        assert result.returncode == 0, result.stdout[-3000:]
        code, _text = rcpt(server_ip, ERIN[0])
        assert 500 <= code < 600
        assert ERIN[0] not in server.file("/etc/dovecot/postmaster-mailboxes.users").content_string
        assert "error" in mailclient.session("imaps", server_ip, 993, *ERIN)
        assert arrived(server, maildir(ERIN[0]), subject, timeout=1)
        assert server.file(maildir(ERIN[0]) + "/cur").is_directory
    finally:
        result = helpers.run_converge()
        assert result.returncode == 0, result.stdout[-3000:]
    assert rcpt(server_ip, ERIN[0])[0] == 250
    assert mailclient.session("imaps", server_ip, 993, *ERIN).get("login") == "OK"


def test_site_yml_without_virtual_domains_leaves_main_cf_alone(server, server_ip):
    """playbooks/site.yml includes the role; with no mailboxes_domains it adds nothing to main.cf."""
    fragment = "/etc/postfix/postmaster.d/40-mailboxes.json"
    assert server.file(fragment).exists
    try:
        result = helpers.run_converge({"mailboxes_domains": []})
        assert result.returncode == 0, result.stdout[-3000:]
        assert not server.file(fragment).exists
        assert server.check_output("postconf -h virtual_mailbox_domains") == "$virtual_mailbox_maps"
        code, _text = rcpt(server_ip, ALICE[0])
        assert 500 <= code < 600
        # The system users of the dovecot role still get mail.
        assert rcpt(server_ip, "mailuser@mail.example.test")[0] == 250
    finally:
        result = helpers.run_converge()
        assert result.returncode == 0, result.stdout[-3000:]
    assert server.file(fragment).exists
    assert rcpt(server_ip, ALICE[0])[0] == 250
