"""The bad-input matrix on a converged host: every input fails before any change, naming its variable."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import helpers
import mailclient
import pytest
import yaml

HERE = Path(__file__).resolve().parent
SERVER = yaml.safe_load((HERE.parent / "vars" / "server.yml").read_text())
PASSWORDS = [user["password"] for domain in SERVER["mailboxes_domains"] for user in domain["users"]]
ALICE = ("alice@bad.example.org", PASSWORDS[0])
#: Everything the roles manage, and the accounts: byte for byte, with modes, owners and mtimes.
WATCHED = (
    "/etc/postfix",
    "/etc/dovecot",
    "/etc/aliases",
    "/etc/aliases.db",
    "/var/mail",
    "/etc/passwd",
    "/etc/group",
    "/etc/default",
    "/etc/tmpfiles.d",
    "/etc/ssl/postmaster",
)

#: Each input and what its error must say: the variable (and the entry) it names.
EXPECTED = {
    "map-value-newline": "postfix_maps[0].entries[0]: value 'REJECT\\n0.0.0.0/0 OK' contains a line break",
    "map-name-main-cf": "postfix_maps[0].name: 'main.cf' is one of Postfix's own files",
    "header-check-newline": "postfix_header_checks[0].action: contains a line break",
    "alias-newline": "postfix_aliases: alias name 'root\\nevil' is empty or contains whitespace",
    "relay-warn-if-reject": "smtpd_relay_restrictions only logs its reject_unauth_destination (warn_if_reject)",
    "relay-static-ok": "'check_client_access static:OK': static:OK answers 'OK' for every key",
    "mynetworks-everything": "postfix_mynetworks: parameter mynetworks: 0.0.0.0/0 covers every IPv4 address",
    "dash-o-split": "postfix_master_extra[0]: master.cf service 2525/inet: argument "
    "'syslog_name=x -o smtpd_relay_restrictions=permit' contains whitespace",
    "hash-service": "postfix_master_extra[0]: master.cf service '#2525': a service name must not contain '#'",
    "password-newline": "mailboxes_domains[0].users[0].password: contains a line break or NUL (the value is not shown)",
    "password-list": "mailboxes_domains[0].users[0].password: must be a string, got list (the value is not shown)",
    "vmail-base-etc": "mailboxes_vmail_base: /etc is a system directory",
    "dovecot-cipher-newline": "dovecot_ssl_cipher_list must be one OpenSSL cipher string",
    "saslauthd-socket-dir": "saslauthd_socket_dir must be an absolute directory below /var/spool/postfix or /run",
    "fragment-dash-o-open-relay": "master.cf service 2525/inet (main.cf with its -o overrides) would relay mail for "
    "anyone: smtpd_relay_restrictions lets every client through at entry 1: 'static:OK'",
    # (Its recipient list is overridden too: main.cf's ends in reject_unauth_destination, which would stop relaying.)
    "postconf-dollar-open-relay": "main.cf would relay mail for anyone: smtpd_relay_restrictions lets every client "
    "through at entry 1: 'permit' permits every client, and smtpd_recipient_restrictions lets every client through "
    "at entry 1: 'permit' permits every client",
}


def snapshot(h) -> str:
    """Every file and directory under WATCHED: type, mode, owner, mtime, and each file's checksum."""
    paths = " ".join(WATCHED)
    return h.check_output(
        f"find {paths} -xdev -printf '%p %y %m %u:%g %T@ %l\\n' 2>/dev/null | sort; "
        f"find {paths} -xdev -type f -exec sha256sum {{}} + 2>/dev/null | sort"
    )


def ansible_playbook(playbook: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, str(playbook), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def thrown(server):
    """Throw every bad input (one playbook run), with the host's state before and after."""
    before = snapshot(server)
    with tempfile.TemporaryDirectory() as tmp:
        results_file = Path(tmp) / "results.json"
        run = ansible_playbook(HERE / "bad_inputs.yml", env={"BADINPUT_RESULTS": str(results_file)})
        results = json.loads(results_file.read_text()) if results_file.exists() else {}
    return {"before": before, "after": snapshot(server), "run": run, "results": results}


def test_the_playbook_ran_every_input_and_changed_nothing(thrown):
    run = thrown["run"]
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    recap = [line for line in run.stdout.splitlines() if line.startswith("pm-badinput-server")][-1]
    assert "changed=0" in recap and f"rescued={len(EXPECTED)}" in recap, recap


@pytest.mark.parametrize("case", list(EXPECTED))
def test_every_input_fails_naming_its_variable(thrown, case):
    results = thrown["results"]
    assert case in results, f"{case} was accepted (no failure recorded); results: {sorted(results)}"
    assert EXPECTED[case] in results[case], results[case]


def test_the_host_is_byte_identical(thrown):
    assert thrown["after"] == thrown["before"]


def test_no_secret_in_any_message(thrown):
    run = thrown["run"]
    text = run.stdout + run.stderr + json.dumps(thrown["results"])
    for secret in PASSWORDS:
        assert secret not in text


def test_the_services_still_answer(thrown, server_ip):
    assert thrown["results"]
    for port in (25, 587):
        replies = helpers.smtp("client", server_ip, port, [["ehlo", "client.outside.test"]])
        assert replies[0][0] == 220, (port, replies)
    session = mailclient.session("imaps", server_ip, 993, *ALICE)
    assert session.get("login") == "OK", session


def test_a_verbose_rerun_changes_nothing_and_shows_no_password():
    """ARGON2ID hashes verified on the host through libsodium, and -vvv shows no password anywhere."""
    run = ansible_playbook(HERE.parent / "converge.yml", "-vvv")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    recap = [line for line in run.stdout.splitlines() if line.startswith("pm-badinput-server")][-1]
    assert "changed=0" in recap, recap
    for secret in PASSWORDS:
        assert secret not in output
