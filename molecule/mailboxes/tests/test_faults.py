"""Bad input fails before anything on the host changes, with a message that names the variable."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import helpers
import mailclient
import pytest
import yaml

ACCOUNTS = yaml.safe_load((Path(__file__).resolve().parents[1] / "vars" / "accounts.yml").read_text())
ALICE = ("alice@one.example.org", "Alice-Test-Password-1")
WATCHED = ("/etc/postfix", "/etc/dovecot", "/var/mail/vmail")


def run_role_alone(extra: dict) -> subprocess.CompletedProcess:
    """Apply the mailboxes role alone (tests/mailboxes_only.yml) with extra vars."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    playbook = os.path.join(os.path.dirname(__file__), "mailboxes_only.yml")
    cmd = ["ansible-playbook", "-i", inventory, playbook, "-e", json.dumps(extra)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def domains_with(change) -> list[dict]:
    domains = json.loads(json.dumps(ACCOUNTS["mailboxes_domains"]))
    change(domains)
    return domains


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"mailboxes_domains": domains_with(lambda d: d[0]["users"][1].update(name="b@d"))},
            "mailboxes_domains[0].users[1].name",
        ),
        (
            {"mailboxes_domains": domains_with(lambda d: d[1]["users"].append({"name": "carol", "password": "x"}))},
            "mailboxes_domains[1].users[2]: carol@two.example.net is also mailboxes_domains[1].users[0]",
        ),
        (
            {"mailboxes_domains": domains_with(lambda d: d[0]["aliases"][0].update(to=["not-an-address"]))},
            "mailboxes_domains[0].aliases[0].to[0]",
        ),
        (
            {"mailboxes_domains": domains_with(lambda d: d[0]["users"][1].update(forward=["x@bad_domain"]))},
            "mailboxes_domains[0].users[1].forward[0]",
        ),
        ({"mailboxes_domains": domains_with(lambda d: d[0].update(name="-bad-.org"))}, "mailboxes_domains[0].name"),
        ({"mailboxes_vmail_uid": 0}, "mailboxes_vmail_uid"),
        (
            {"mailboxes_domains": domains_with(lambda d: d[0]["users"][0].update(password="pw\nline"))},
            "mailboxes_domains[0].users[0].password: contains a line break or NUL (the value is not shown)",
        ),
        (
            {"mailboxes_domains": domains_with(lambda d: d[0]["users"][0].update(password=["Listed-Secret-9"]))},
            "mailboxes_domains[0].users[0].password: must be a string, got list (the value is not shown)",
        ),
        (
            {"mailboxes_domains": domains_with(lambda d: d[0]["users"][0].update(quota="10G\n"))},
            "mailboxes_domains[0].users[0].quota: '10G",
        ),
    ],
)
def test_bad_input_fails_before_any_change(extra, message):
    server = helpers.host("server")
    before = helpers.snapshot(server, *WATCHED)
    result = run_role_alone(extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert message in output, output[-3000:]
    assert "Listed-Secret-9" not in output
    assert helpers.snapshot(server, *WATCHED) == before


def test_purge_deletes_only_removed_maildirs():
    server = helpers.host("server")
    erin = "/var/mail/vmail/two.example.net/erin"
    server.run_expect([0], f"touch {erin}/cur/1.kept-until-purge")
    # Not made by the role: a root-owned Maildir in a managed domain, a vmail-owned one in a domain
    # the role does not manage, and a symlink to a Maildir elsewhere. Purge must leave all three.
    strangers = (
        "/var/mail/vmail/two.example.net/root-owned",
        "/var/mail/vmail/unmanaged.example/vmail-owned",
        "/var/mail/vmail/two.example.net/linked",
    )
    server.run_expect(
        [0],
        f"mkdir -p {strangers[0]}/cur {strangers[0]}/new {strangers[0]}/tmp "
        f"{strangers[1]}/cur {strangers[1]}/new {strangers[1]}/tmp /root/elsewhere/cur /root/elsewhere/new "
        f"/root/elsewhere/tmp && chown -R vmail: /var/mail/vmail/unmanaged.example && "
        f"ln -s /root/elsewhere {strangers[2]}",
    )
    keep = helpers.snapshot(server, "/var/mail/vmail/one.example.org", "/var/mail/vmail/two.example.net/carol")
    domains = domains_with(lambda d: d[1]["users"].pop())
    try:
        result = run_role_alone({"mailboxes_domains": domains})
        assert result.returncode == 0, result.stdout[-3000:]
        assert server.file(erin).is_directory, "kept without mailboxes_purge_removed"
        result = run_role_alone({"mailboxes_domains": domains, "mailboxes_purge_removed": True})
        assert result.returncode == 0, result.stdout[-3000:]
        assert not server.file(erin).exists
        for path in strangers:
            assert server.file(path).exists, path
        assert server.file("/root/elsewhere/cur").is_directory
        assert (
            helpers.snapshot(server, "/var/mail/vmail/one.example.org", "/var/mail/vmail/two.example.net/carol") == keep
        )
        # a purge run with nothing removed changes nothing
        result = run_role_alone({"mailboxes_domains": domains, "mailboxes_purge_removed": True})
        assert result.returncode == 0 and "changed=0" in result.stdout, result.stdout[-3000:]
    finally:
        server.run(f"rm -rf {' '.join(strangers)} /var/mail/vmail/unmanaged.example /root/elsewhere")
        result = run_role_alone({})
        assert result.returncode == 0, result.stdout[-3000:]
    assert server.file(erin + "/new").is_directory


def test_dovecot_include_refused_by_doveconf_is_never_installed():
    """The include is checked in a copy of the whole live configuration before it replaces the live one.

    A conf.d file that doveconf refuses makes the candidate fail: the run fails with doveconf's
    message, the live include stays as it was and Dovecot keeps serving. (A new passwd-file path
    changes the include, so that its validate command runs.)
    """
    server = helpers.host("server")
    include = "/etc/dovecot/conf.d/15-postmaster-mailboxes.conf"
    broken = "/etc/dovecot/conf.d/99-test-broken.conf"
    other_users = "/etc/dovecot/test-other.users"
    before = server.file(include).content_string
    server.run_expect([0], f"echo 'bogus_setting_for_test = yes' > {broken}")
    try:
        result = run_role_alone({"mailboxes_dovecot_users_file": other_users})
        output = result.stdout + result.stderr
        assert result.returncode != 0, output[-3000:]
        assert "doveconf refused" in output and "bogus_setting_for_test" in output, output[-3000:]
        assert server.file(include).content_string == before
    finally:
        server.run(f"rm -f {broken} {other_users}")
    result = run_role_alone({})
    assert result.returncode == 0 and "changed=0" in result.stdout, result.stdout[-3000:]
    assert mailclient.session("imaps", helpers.container_ip("server"), 993, *ALICE).get("login") == "OK"
