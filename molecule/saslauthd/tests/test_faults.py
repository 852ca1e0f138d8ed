"""Bad input never reaches the live configuration."""

from __future__ import annotations

import json
import os
import subprocess

import helpers
import pytest

FRAGMENT = "/etc/postfix/postmaster.d/30-dovecot-sasl.json"
FAKE_DOVECOT = '\'{"main": {"smtpd_sasl_type": "dovecot"}}\''
WATCHED = ("/etc/postfix", "/etc/default/saslauthd", "/etc/ssl/postmaster", "/etc/tmpfiles.d")


def services_answer(server) -> None:
    assert helpers.smtp("server", "127.0.0.1", 25, [])[0][0] == 220
    assert server.run("testsaslauthd -u carol -p Carol-System-Password-1").rc == 0


def assert_fails_unchanged(server, result, named, before):
    helpers.assert_fails_unchanged(server, result, named, WATCHED, before)
    services_answer(server)


@pytest.mark.parametrize(
    ("extra_vars", "named"),
    [
        ({"saslauthd_mech_list": ["plain", "cram-md5"]}, ["saslauthd_mech_list", "cram-md5"]),
        ({"saslauthd_mechanisms": "ldapx"}, ["saslauthd_mechanisms", "ldapx"]),
        (
            {"postfix_tls_cert_file": "/nonexistent/cert.pem", "postfix_tls_key_file": "/nonexistent/key.pem"},
            ["postfix_tls_cert_file", "/nonexistent/cert.pem"],
        ),
    ],
    ids=["unknown-auth-mechanism", "unknown-saslauthd-mechanism", "missing-certificate"],
)
def test_invalid_input_fails_before_any_change(server, extra_vars, named):
    before = helpers.snapshot(server, *WATCHED)
    result = helpers.run_converge(extra_vars)
    assert_fails_unchanged(server, result, named, before)


def run_playbook(name: str) -> subprocess.CompletedProcess:
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    playbook = os.path.join(os.path.dirname(__file__), name)
    return subprocess.run(["ansible-playbook", "-i", inventory, playbook], capture_output=True, text=True, check=False)


def test_second_sasl_backend_in_the_same_play_is_refused(server):
    """Applying dovecot (with its SASL service) to a host whose backend is saslauthd fails before any change."""
    before = helpers.snapshot(server, *WATCHED)
    result = run_playbook("both_backends.yml")
    assert_fails_unchanged(
        server,
        result,
        ["saslauthd is already the SASL backend", "30-saslauthd-sasl.json", "dovecot_sasl_enabled"],
        before,
    )
    assert server.run("dpkg -s dovecot-core").rc != 0


def test_existing_dovecot_sasl_fragment_is_refused(server):
    """A Dovecot SASL fragment left on the host: the postfix role's assembly refuses the conflict, naming both."""
    server.run(f"echo {FAKE_DOVECOT} > {FRAGMENT}")
    try:
        before = helpers.snapshot(server, *WATCHED)
        result = helpers.run_converge()
        assert_fails_unchanged(
            server, result, ["smtpd_sasl_type", "30-dovecot-sasl.json", "30-saslauthd-sasl.json"], before
        )
    finally:
        server.run(f"rm -f {FRAGMENT}")


def test_saslauthd_role_alone_refuses_an_existing_dovecot_fragment(server):
    """Without the postfix role in the play, the saslauthd role's own early check names the file and the variable."""
    server.run(f"echo {FAKE_DOVECOT} > {FRAGMENT}")
    try:
        before = helpers.snapshot(server, *WATCHED)
        result = run_playbook("saslauthd_only.yml")
        assert_fails_unchanged(
            server, result, ["Dovecot is already the SASL backend", FRAGMENT, "dovecot_sasl_enabled"], before
        )
    finally:
        server.run(f"rm -f {FRAGMENT}")


SASL_FILES = ("/etc/default/saslauthd", "/etc/postfix/sasl", "/etc/tmpfiles.d")
#: The socket directory and the link (the pid file and socket inside are saslauthd's, new at each start).
SASL_PATHS = "stat -c '%n %F %a %U:%G %N' /var/spool/postfix/var/run/saslauthd /run/saslauthd"


def test_candidate_saslauthd_dies_with_is_rolled_back(server):
    """rimap is a mechanism saslauthd -v lists, so the candidate passes its checks; without a host (-O) saslauthd
    exits when it starts. saslauthd_config must restore every file, restart the old saslauthd and fail."""
    before = helpers.snapshot(server, *SASL_FILES, mtimes=False)
    owners = helpers.owners(server, *SASL_FILES) + server.check_output(SASL_PATHS)
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    settings = {
        "mechanisms": "rimap",
        "threads": 5,
        "mech_list": ["plain", "login"],
        "socket_dir": "/var/spool/postfix/var/run/saslauthd",
    }
    args = json.dumps({"settings": settings, "health_timeout": 10})
    result = subprocess.run(
        [
            "ansible",
            "-i",
            inventory,
            helpers.instance("server"),
            "-m",
            "postmaster.mailserver.saslauthd_config",
            "-a",
            args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert '"rolled_back": true' in output, output[-3000:]
    assert "the previous files were restored and saslauthd restarted" in output, output[-3000:]
    assert "restoring also failed" not in output, output[-3000:]
    assert helpers.snapshot(server, *SASL_FILES, mtimes=False) == before
    assert helpers.owners(server, *SASL_FILES) + server.check_output(SASL_PATHS) == owners
    assert 'MECHANISMS="pam"' in server.file("/etc/default/saslauthd").content_string
    services_answer(server)
    rerun = helpers.run_converge()
    assert rerun.returncode == 0 and "changed=0" in rerun.stdout, rerun.stdout[-3000:]
