"""The ufw backend passes the same checks. Runs last (file order): it switches the host from nftables to ufw.

test_firewall.py left POP3 disabled; the first converge here enables it again while switching to ufw.
"""

from __future__ import annotations

import pytest
from probe import LISTENER, MAIL, POP3, SASL, SSH, assert_dropped, assert_open, recap, run_playbook

UFW = {"firewall_backend": "ufw"}


@pytest.fixture(scope="module")
def ufw_host(server):
    result = run_playbook("dovecot_firewall.yml", UFW)
    assert result.returncode == 0, result.stdout[-3000:]
    return server


def test_switch_to_ufw_removes_the_nftables_table(ufw_host):
    assert "Status: active" in ufw_host.check_output("ufw status verbose")
    assert "Default: deny (incoming)" in ufw_host.check_output("ufw status verbose")
    assert ufw_host.run("nft list table inet postmaster").rc != 0
    assert not ufw_host.service("nftables").is_enabled


def test_ufw_every_enabled_port_and_ssh_accept(ufw_host, server_ip):
    found = assert_open(server_ip, [*MAIL, SSH, SASL])
    assert found[SSH].startswith("open SSH-2.0-OpenSSH")


def test_ufw_drops_a_listening_port_that_no_service_enabled(ufw_host, server_ip, listener):
    assert_dropped(server_ip, [listener])


def test_ufw_rules_are_tagged_and_sasl_only_from_the_peers(ufw_host):
    added = ufw_host.check_output("ufw show added")
    assert "ufw allow 22/tcp comment 'postmaster.mailserver: ssh'" in added
    sasl = [line for line in added.splitlines() if f"port {SASL}" in line]
    assert len(sasl) == 1 and sasl[0].startswith("ufw allow from "), added


def test_ufw_disabling_pop3_closes_110_and_995(ufw_host, server_ip):
    result = run_playbook("dovecot_firewall.yml", {**UFW, "scenario_dovecot_protocols": ["imap", "lmtp"]})
    assert result.returncode == 0, result.stdout[-3000:]
    assert_dropped(server_ip, [*POP3, LISTENER])
    assert_open(server_ip, [port for port in MAIL if port not in POP3] + [SSH, SASL])
    assert "110/tcp" not in ufw_host.check_output("ufw show added")


def test_ufw_rerun_and_check_mode_change_nothing(ufw_host):
    for args in ((), ("--check", "--diff")):
        result = run_playbook("firewall_only.yml", UFW, *args)
        assert result.returncode == 0, result.stdout[-3000:]
        assert " changed=0 " in recap(result), result.stdout[-3000:]
