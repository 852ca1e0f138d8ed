"""Bad input and bad fragments never reach the live configuration."""

from __future__ import annotations

import json

import helpers
import pytest

WATCHED = ("/etc/postfix", "/etc/aliases", "/etc/ssl/postmaster")


def greeting(server) -> tuple[int, str]:
    return helpers.smtp("server", "127.0.0.1", 25, [])[0]


@pytest.mark.parametrize(
    ("extra_vars", "named"),
    [
        ({"postfix_mynetworks": ["127.0.0.0/8", "10.0.0.0/33"]}, ["postfix_mynetworks", "10.0.0.0/33"]),
        ({"postfix_mynetworks": ["192.168.1.5/24"]}, ["postfix_mynetworks", "192.168.1.5/24"]),
        (
            {"postfix_client_restrictions": ["permit_bogus_thing"]},
            ["postfix_client_restrictions", "permit_bogus_thing"],
        ),
        (
            {"postfix_recipient_restrictions": ["reject_rbl_client"]},
            ["postfix_recipient_restrictions", "reject_rbl_client"],
        ),
        ({"postfix_myhostname": "mail"}, ["postfix_myhostname"]),
        ({"postfix_smtpd_tls_security_level": "none"}, ["postfix_smtpd_tls_security_level"]),
        (
            {
                "postfix_recipient_restrictions": ["permit_mynetworks", "permit"],
                "postfix_rbl_zones": ["rbl.example.test"],
            },
            ["postfix_recipient_restrictions", "postfix_rbl_zones", "'permit' is not the last restriction"],
        ),
        ({"postfix_maps": [{"name": "x", "entires": []}]}, ["postfix_maps", "entires"]),
    ],
    ids=[
        "cidr-prefix",
        "cidr-host-bits",
        "unknown-restriction",
        "missing-rbl-zone",
        "short-hostname",
        "bad-choice",
        "rbl-after-permit",
        "map-typo",
    ],
)
def test_invalid_input_fails_before_any_change(server, extra_vars, named):
    before = helpers.snapshot(server, *WATCHED)
    result = helpers.run_converge(extra_vars)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    for word in named:
        assert word in output, f"{word!r} not named in the failure:\n{output[-3000:]}"
    assert "changed=0" in output
    assert helpers.snapshot(server, *WATCHED) == before
    assert greeting(server)[0] == 220


def test_rbl_zones_go_through_the_fragment_insert(server):
    """In check mode (no DNS query, nothing written): the zone lands right after reject_unauth_destination."""
    before = helpers.snapshot(server, *WATCHED)
    result = helpers.run_converge({"postfix_rbl_zones": ["rbl.example.test"]}, check=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    # The fragment asks for the insertion; main.cf gets it from postfix_config's merge, validated by postconf.
    assert '"after": "reject_unauth_destination"' in output, output[-3000:]
    assert "+    reject_unauth_destination,\n+    reject_rbl_client rbl.example.test\n" in output, output[-3000:]
    assert helpers.snapshot(server, *WATCHED) == before


def test_fragment_postfix_rejects_never_goes_live(server):
    before = helpers.snapshot(server, "/etc/postfix/main.cf", "/etc/postfix/master.cf")
    server.run("rm -f /etc/postfix/postmaster.d/90-bad.json")
    fragment = json.dumps({"main": {"totally_unknown_param": "1"}})
    assert server.run("printf '%%s' %s > /etc/postfix/postmaster.d/90-bad.json", fragment).rc == 0
    try:
        result = server.ansible("postmaster.mailserver.postfix_config", "", check=False)
    finally:
        server.run("rm -f /etc/postfix/postmaster.d/90-bad.json")
    assert result.get("changed") is False and "rejected" in result["msg"], result
    assert "totally_unknown_param" in result["msg"]
    assert helpers.snapshot(server, "/etc/postfix/main.cf", "/etc/postfix/master.cf") == before
    assert greeting(server)[0] == 220


def test_runtime_failure_is_rolled_back(server):
    """A value only smtpd itself rejects (at start) passes validation, fails the health check, and is rolled back."""
    live = ("/etc/postfix/main.cf", "/etc/postfix/master.cf")
    before = helpers.snapshot(server, *live, mtimes=False)
    owners = helpers.owners(server, "/etc/postfix")
    fragment = json.dumps({"main": {"smtpd_timeout": "bogus"}})
    assert server.run("printf '%%s' %s > /etc/postfix/postmaster.d/90-bad.json", fragment).rc == 0
    try:
        result = server.ansible("postmaster.mailserver.postfix_config", "health_timeout=10", check=False)
    finally:
        server.run("rm -f /etc/postfix/postmaster.d/90-bad.json")
    assert result.get("rolled_back") is True, result
    assert "health check failed" in result["msg"], result["msg"]
    assert result["msg"].endswith("the previous configuration was restored and Postfix restarted"), result["msg"]
    # The candidate went live (so the mtime moved), and the old content is back.
    assert helpers.snapshot(server, *live, mtimes=False) == before
    # Owner, group and mode of every path came back as well (the .postmaster-previous copies included).
    assert helpers.owners(server, "/etc/postfix") == owners
    assert server.run("postconf -h smtpd_timeout").stdout.strip() != "bogus"
    assert greeting(server)[0] == 220


def test_changing_one_map_entry_rebuilds_only_that_map(server):
    def mtimes():
        return {
            name: server.file(f"/etc/postfix/{name}").mtime
            for name in ("sender_access.db", "transport.db", "client_access", "aliases.db")
            if server.file(f"/etc/postfix/{name}").exists
        } | {"aliases.db": server.file("/etc/aliases.db").mtime}

    before = mtimes()
    changed = {
        "postfix_maps": [
            {
                "name": "sender_access",
                "type": "hash",
                "entries": [{"key": "other@bad.example", "value": "REJECT changed"}],
            },
            {
                "name": "client_access",
                "type": "cidr",
                "entries": [{"key": "192.0.2.0/24", "value": "REJECT documentation network"}],
            },
            {
                "name": "transport",
                "type": "hash",
                "entries": [{"key": "slow.example", "value": "smtp:[192.0.2.25]:2525"}],
            },
        ]
    }
    try:
        result = helpers.run_converge(changed)
        assert result.returncode == 0, result.stdout[-3000:]
        after = mtimes()
        assert after["sender_access.db"] > before["sender_access.db"]
        assert after["transport.db"] == before["transport.db"]
        assert after["client_access"] == before["client_access"]
        assert after["aliases.db"] == before["aliases.db"]
        assert (
            server.run("postmap -q other@bad.example hash:/etc/postfix/sender_access").stdout.strip()
            == "REJECT changed"
        )
    finally:
        restored = helpers.run_converge()
        assert restored.returncode == 0, restored.stdout[-3000:]
    assert server.run("postmap -q spammer@bad.example hash:/etc/postfix/sender_access").rc == 0
