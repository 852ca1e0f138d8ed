"""Bad input never reaches the live configuration, and passwords never reach the output."""

from __future__ import annotations

import json
import os
import subprocess

import helpers
import mailclient
import pytest

WATCHED = ("/etc/dovecot", "/etc/postfix", "/etc/ssl/postmaster")
ANNA = ("anna@virtual.example.test", "Anna-Test-Password-1")
FAKE_SASLAUTHD = '\'{"main": {"smtpd_sasl_type": "cyrus"}}\''
USERS = [
    {"name": "anna@virtual.example.test", "password": "Anna-Test-Password-1"},
    {"name": "ben@virtual.example.test", "password": "Ben-Test-Password-2"},
]


def run_playbook(name: str) -> subprocess.CompletedProcess:
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    playbook = os.path.join(os.path.dirname(__file__), name)
    return subprocess.run(["ansible-playbook", "-i", inventory, playbook], capture_output=True, text=True, check=False)


def services_answer() -> None:
    assert helpers.smtp("server", "127.0.0.1", 25, [])[0][0] == 220
    out = mailclient.session("imaps", helpers.container_ip("server"), 993, *ANNA)
    assert out.get("login") == "OK", out


def assert_fails_unchanged(server, result, named, before):
    helpers.assert_fails_unchanged(server, result, named, WATCHED, before)
    services_answer()


@pytest.mark.parametrize(
    ("extra_vars", "named"),
    [
        ({"dovecot_auth_mechanisms": ["plain", "bogusmech"]}, ["dovecot_auth_mechanisms", "bogusmech"]),
        ({"dovecot_protocols": ["imap", "nntp"]}, ["dovecot_protocols", "nntp"]),
        ({"dovecot_ssl_min_protocol": "TLSv9"}, ["dovecot_ssl_min_protocol", "TLSv9"]),
        (
            {"dovecot_tls_cert_file": "/nonexistent/cert.pem", "dovecot_tls_key_file": "/nonexistent/key.pem"},
            ["dovecot_tls_cert_file", "/nonexistent/cert.pem"],
        ),
        ({"dovecot_virtual_users": [{"name": "nodomain", "password": "x-long-secret"}]}, ["dovecot_virtual_users"]),
    ],
    ids=["unknown-auth-mechanism", "unknown-protocol", "bad-ssl-min-protocol", "missing-certificate", "bad-user"],
)
def test_invalid_input_fails_before_any_change(server, extra_vars, named):
    before = helpers.snapshot(server, *WATCHED)
    result = helpers.run_converge(extra_vars)
    assert_fails_unchanged(server, result, named, before)
    assert "x-long-secret" not in result.stdout + result.stderr


def test_second_sasl_backend_in_the_same_play_is_refused(server):
    """Applying saslauthd to a host whose SASL backend is Dovecot fails before anything changes."""
    before = helpers.snapshot(server, *WATCHED)
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    playbook = os.path.join(os.path.dirname(__file__), "both_backends.yml")
    result = subprocess.run(
        ["ansible-playbook", "-i", inventory, playbook], capture_output=True, text=True, check=False
    )
    assert_fails_unchanged(
        server, result, ["Dovecot is already the SASL backend", "30-dovecot-sasl.json", "dovecot_sasl_enabled"], before
    )
    assert server.run("dpkg -s sasl2-bin").rc != 0


def test_existing_saslauthd_fragment_is_refused(server):
    """A saslauthd fragment left on the host: the postfix role's assembly already refuses the conflict, naming both."""
    fragment = "/etc/postfix/postmaster.d/30-saslauthd-sasl.json"
    server.run(f"echo {FAKE_SASLAUTHD} > {fragment}")
    try:
        before = helpers.snapshot(server, *WATCHED)
        result = helpers.run_converge()
        assert_fails_unchanged(
            server, result, ["smtpd_sasl_type", "30-dovecot-sasl.json", "30-saslauthd-sasl.json"], before
        )
    finally:
        server.run(f"rm -f {fragment}")


def test_dovecot_role_alone_refuses_an_existing_saslauthd_fragment(server):
    """Without the postfix role in the play, the dovecot role's own early check names the file and the variable."""
    fragment = "/etc/postfix/postmaster.d/30-saslauthd-sasl.json"
    server.run(f"echo {FAKE_SASLAUTHD} > {fragment}")
    try:
        before = helpers.snapshot(server, *WATCHED)
        result = run_playbook("dovecot_only.yml")
        assert_fails_unchanged(
            server, result, ["saslauthd is already the SASL backend", fragment, "dovecot_sasl_enabled"], before
        )
    finally:
        server.run(f"rm -f {fragment}")


def test_password_change_rehashes_only_that_user_and_never_logs_it(server):
    def lines():
        return server.file("/etc/dovecot/users").content_string.splitlines()

    before = lines()
    changed = [USERS[0], {"name": "ben@virtual.example.test", "password": "Ben-New-Password-3"}]
    try:
        result = helpers.run_converge({"dovecot_virtual_users": changed})
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-3000:]
        assert "Ben-New-Password-3" not in output and "$6$" not in output
        # The deprecated variable still works, handed to the mailboxes role, and says so.
        assert "[DEPRECATED] dovecot_virtual_users" in output, output[-3000:]
        after = lines()
        assert after[0] == before[0]
        assert after[1] != before[1]
        out = mailclient.session("imaps", helpers.container_ip("server"), 993, USERS[1]["name"], "Ben-New-Password-3")
        assert out.get("login") == "OK", out
    finally:
        restored = helpers.run_converge()
        assert restored.returncode == 0, restored.stdout[-3000:]
    check = helpers.run_converge(check=True)
    assert check.returncode == 0 and "changed=0" in check.stdout, check.stdout[-3000:]
    assert "Anna-Test-Password-1" not in check.stdout and "$6$" not in check.stdout


def test_include_that_breaks_dovecot_at_reload_is_rolled_back(server):
    """doveconf -n accepts a certificate path that does not exist; Dovecot only fails when it reads it.

    dovecot_config must then restore the previous files, restart Dovecot, and fail: IMAP keeps answering.
    """
    setting = (
        "ssl_server_cert_file = /nonexistent.pem" if helpers.dovecot_24(server) else "ssl_cert = </nonexistent.pem"
    )
    fault = "/etc/dovecot/conf.d/99-test-fault.conf"
    before = helpers.snapshot(server, "/etc/dovecot")
    owners = helpers.owners(server, "/etc/dovecot")
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    args = json.dumps({"files": {"conf.d/99-test-fault.conf": setting + "\n"}})
    result = subprocess.run(
        [
            "ansible",
            "-i",
            inventory,
            helpers.instance("server"),
            "-m",
            "postmaster.mailserver.dovecot_config",
            "-a",
            args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "logged errors after the reload" in output and "/nonexistent.pem" in output, output[-3000:]
    assert "previous files were restored and dovecot restarted" in output, output[-3000:]
    assert not server.file(fault).exists
    assert helpers.snapshot(server, "/etc/dovecot") == before
    assert helpers.owners(server, "/etc/dovecot") == owners
    services_answer()
