"""Backups that restore: fill the mailboxes over IMAP and SMTP, back up, restore onto a fresh host of the other suite.

The tests run in order and build on each other (as an admin's day would): the mail, the first
backup, the deduplicated second one, the wrong password, the restore onto ``fresh`` (converged with
the same settings on the other Debian suite), the comparison of every mailbox, and the refusals.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import helpers
import mailclient
import pytest
from mailstate import (
    ALICE,
    SCENARIO_DIR,
    SETTINGS,
    USERS,
    assert_rerun_changes_nothing,
    converge,
    mail_files,
    mailbox_state,
    run_verify,
    same,
)

MANAGED = (
    "/etc/postmaster/backup /etc/systemd/system/postmaster-backup.service /etc/systemd/system/postmaster-backup.timer"
)

# Runs on the vault (the outside client): folders, messages, flags, a keyword, deletions and an expunge.
_FILL = r"""
import base64, imaplib, json, os, ssl, sys, time
host, user, password = json.loads(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = imaplib.IMAP4_SSL(host, 993, ssl_context=ctx, timeout=20)
c.login(user, password)
for folder in ("Work", "Archive"):
    c.create(folder)
def append(folder, n):
    # 30 kB that do not compress, so that the deduplication shows against real data.
    body = base64.encodebytes(os.urandom(22000)).decode().replace("\n", "\r\n")
    msg = f"From: tester@outside.test\r\nTo: {user}\r\nSubject: {folder} message {n}\r\n\r\n{body}"
    c.append(folder, None, None, msg.encode())
for n in range(1, 8):
    append("INBOX", n)
for n in range(1, 5):
    append("Work", n)
append("Archive", 1)
c.select("INBOX")
c.store("1:3", "+FLAGS", "(\\Seen)")
c.store("2", "+FLAGS", "(\\Flagged $Important)")
c.store("4", "+FLAGS", "(\\Answered)")
c.store("5:6", "+FLAGS", "(\\Deleted)")
c.expunge()
c.select("Work")
c.store("2", "+FLAGS", "(\\Deleted \\Seen)")
c.expunge()
c.logout()
print("ok")
"""


def run_restore(extra: dict | None = None, limit: str = "fresh") -> subprocess.CompletedProcess:
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    cmd = [
        "ansible-playbook",
        "-i",
        inventory,
        os.path.join(SCENARIO_DIR, "restore.yml"),
        "--limit",
        helpers.instance(limit),
    ]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def start_backup(host) -> str:
    """Run the job through its systemd unit (as the timer does) and return what it logged."""
    result = host.run("systemctl start postmaster-backup.service")
    # This run's lines only: its invocation id (a time would also catch the end of the run before).
    invocation = host.check_output("systemctl show -p InvocationID --value postmaster-backup.service")
    journal = host.check_output(f"journalctl _SYSTEMD_INVOCATION_ID={invocation} --no-pager -o cat")
    assert result.rc == 0, journal[-3000:]
    return journal


def added_bytes(journal: str) -> float:
    """restic's "Added to the repository: 1.234 MiB" in bytes."""
    match = re.search(r"Added to the repository: ([0-9.]+) (B|KiB|MiB|GiB)", journal)
    assert match, journal[-2000:]
    return float(match[1]) * {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}[match[2]]


@pytest.fixture(scope="module")
def server():
    return helpers.host("server")


@pytest.fixture(scope="module")
def fresh():
    return helpers.host("fresh")


@pytest.fixture(scope="module")
def filled(server):
    """The mailboxes filled over IMAP from the vault and over SMTP: messages, folders, flags, expunges."""
    address = helpers.container_ip("server")
    for user, password in USERS.items():
        result = helpers.host("vault").run("python3 -c %s %s", _FILL, json.dumps([address, user, password]))
        assert result.rc == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr
    replies = helpers.smtp(
        "vault",
        address,
        25,
        [
            ["ehlo", "vault.example.test"],
            ["mail", "FROM:<tester@outside.test>"],
            ["rcpt", f"TO:<{ALICE}>"],
            ["data", helpers.message("tester@outside.test", ALICE, "delivered over smtp")],
        ],
    )
    assert replies[-1][0] == 250, replies
    maildir = "/var/mail/vmail/one.example.org/alice"
    delivered = server.run(
        f"for i in $(seq 60); do grep -rlq 'Subject: delivered over smtp' {maildir}/new {maildir}/cur && exit 0; "
        "sleep 1; done; exit 1"
    )
    assert delivered.rc == 0, "the message sent over SMTP did not reach alice's Maildir"
    return mailbox_state(server)


def test_the_repository_password_is_in_root_only_files_and_never_on_a_command_line(server):
    for name in ("password", "repository"):
        f = server.file(f"/etc/postmaster/backup/{name}")
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600)
    env = server.file("/etc/postmaster/backup/restic.env").content_string
    assert SETTINGS["backup_password"] not in env
    unit = server.file("/etc/systemd/system/postmaster-backup.service").content_string
    assert SETTINGS["backup_password"] not in unit
    assert server.service("postmaster-backup.timer").is_enabled
    assert server.run("systemctl is-active postmaster-backup.timer").stdout.strip() == "active"


def test_a_backup_and_a_second_one_that_adds_almost_nothing(server, filled):
    first = start_backup(server)
    assert "staged 2 mailbox(es)" in first
    second = start_backup(server)
    first_added, second_added = added_bytes(first), added_bytes(second)
    print(f"first backup added {first_added:.0f} B, the second {second_added:.0f} B")
    assert second_added < first_added / 10, (first_added, second_added)
    snapshots = json.loads(
        server.check_output(
            ". /etc/postmaster/backup/restic.env && export RESTIC_REPOSITORY_FILE RESTIC_PASSWORD_FILE && restic snapshots --json"
        )
    )
    # The retention keeps the last snapshot of each day (backup_keep_daily): one or both of today's remain
    # (restic 0.14 forgets the first, 0.18 was seen keeping both), the newest with the staging tree.
    assert 1 <= len(snapshots) <= 2, snapshots
    assert "/var/backups/postmaster/mail" in snapshots[-1]["paths"]


def test_a_wrong_repository_password_fails_clearly_and_changes_nothing(server):
    before = helpers.snapshot(server, *MANAGED.split())
    result = converge("server", {"backup_password": "not the right passphrase"})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "backup_password does not open the repository" in output, output[-3000:]
    assert "not the right passphrase" not in result.stdout + result.stderr
    assert helpers.snapshot(server, *MANAGED.split()) == before


def test_a_snapshot_that_does_not_exist_is_refused_before_any_change(fresh):
    before = helpers.snapshot(fresh, "/var/mail/vmail", "/etc/dkimkeys", "/etc/ssl/postmaster")
    result = run_restore({"backup_restore_snapshot": "0123abcd"})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "there is no snapshot 0123abcd" in output, output[-3000:]
    assert helpers.snapshot(fresh, "/var/mail/vmail", "/etc/dkimkeys", "/etc/ssl/postmaster") == before


def test_the_restore_brings_back_every_mailbox_uid_and_flag_on_the_other_suite(server, fresh, filled):
    assert server.check_output("dovecot --version")[:3] != fresh.check_output("dovecot --version")[:3]
    expected = mailbox_state(server)
    assert expected == filled
    result = run_restore()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "restored snapshot latest: 2 mailbox(es)" in result.stdout
    got = mailbox_state(fresh)
    assert got == expected, same(expected, got)
    # Logins work with the old passwords, and the restored mail is there.
    session = mailclient.session("imaps", helpers.container_ip("fresh"), 993, ALICE, USERS[ALICE], role="vault")
    assert session["login"] == "OK", session
    assert "Subject: delivered over smtp" in session["subjects"]


def test_the_keys_and_the_certificate_came_back(server, fresh):
    checksum = "find /etc/dkimkeys /etc/ssl/postmaster -type f -exec sha256sum {} + | sort"
    assert fresh.check_output(checksum) == server.check_output(checksum)
    serial = "openssl s_client -connect 127.0.0.1:993 </dev/null 2>/dev/null | openssl x509 -noout -serial -fingerprint"
    assert fresh.check_output(serial) == server.check_output(serial)


def test_after_the_restore_a_re_run_changes_nothing(fresh):
    assert_rerun_changes_nothing("fresh")


def test_a_restore_into_mailboxes_that_hold_mail_refuses_unless_told_to_overwrite(fresh):
    before = mail_files(fresh)
    result = run_restore()
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "these mailboxes already hold mail here" in output, output[-3000:]
    assert mail_files(fresh) == before
    state = mailbox_state(fresh)
    result = run_restore({"backup_restore_overwrite": True})
    assert result.returncode == 0, result.stdout[-3000:]
    got = mailbox_state(fresh)
    assert got == state, same(state, got)


def test_the_verify_role_passes_on_the_restored_host(fresh, tmp_path):
    """Last: its probe message lands in alice's mailbox."""
    run_verify("fresh", tmp_path / "report.txt")
