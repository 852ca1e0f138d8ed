"""The nftables backend, probed from the outside client: exactly the enabled services, SSH, and nothing else.

Runs after test_faults.py and before test_ufw.py (file order). The last test leaves POP3 disabled, which is
the state test_ufw.py starts from.
"""

from __future__ import annotations

from probe import (
    LISTENER,
    MAIL,
    POP3,
    SASL,
    SSH,
    assert_dropped,
    assert_open,
    run_playbook,
)


def test_every_enabled_port_and_ssh_accept_from_outside(server_ip):
    found = assert_open(server_ip, [*MAIL, SSH])
    # Real daemons answer behind the open ports (the TLS-wrapped ones only accept the connection).
    assert found[25].startswith("open 220") and found[587].startswith("open 220")
    assert found[143].startswith("open * OK") and found[110].startswith("open +OK")
    assert found[SSH].startswith("open SSH-2.0-OpenSSH")


def test_sasl_port_is_open_to_the_peers(server_ip):
    assert_open(server_ip, [SASL])


def test_a_listening_port_that_no_service_enabled_times_out(server, server_ip, listener):
    # It does listen: from the server itself (loopback is accepted) it answers.
    assert server.run(f"python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {listener}), 3)'").rc == 0
    assert_dropped(server_ip, [listener, 10025])


def test_the_role_owns_one_table_and_leaves_the_others(server):
    table = server.check_output("nft list table inet postmaster")
    assert "type filter hook input priority filter; policy drop;" in table
    assert 'tcp dport 22 accept comment "ssh"' in table
    assert f"tcp dport {SASL} accept" in table and "saddr" in table.split(f"tcp dport {SASL}")[0].splitlines()[-1]
    # Docker's NAT rules for its embedded DNS live in this namespace too: no "flush ruleset" took them.
    assert server.run("nft list table ip nat").rc == 0
    conf = server.file("/etc/nftables.conf")
    assert conf.contains("Managed by postmaster.mailserver.nftables_config")
    assert not conf.contains("flush ruleset")
    assert server.service("nftables").is_enabled


def test_admin_networks_and_sasl_peers_restrict_ssh_and_sasl(server_ip):
    """Other networks than the client's: its SSH and SASL connections are dropped, mail still flows."""
    elsewhere = {"firewall_admin_networks": ["192.0.2.0/24"], "firewall_sasl_peers": ["198.51.100.0/24"]}
    try:
        result = run_playbook("firewall_only.yml", elsewhere)
        assert result.returncode == 0, result.stdout[-3000:]
        assert_dropped(server_ip, [SSH, SASL])
        assert_open(server_ip, [25, 993])
    finally:
        restored = run_playbook("firewall_only.yml")
        assert restored.returncode == 0, restored.stdout[-3000:]
    assert_open(server_ip, [SSH, SASL])


def test_disabling_pop3_closes_110_and_995_with_no_firewall_variable(server, server_ip):
    result = run_playbook("dovecot_firewall.yml", {"scenario_dovecot_protocols": ["imap", "lmtp"]})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "pop3" not in server.check_output("doveconf -h protocols")
    assert_dropped(server_ip, POP3)
    assert_open(server_ip, [port for port in MAIL if port not in POP3] + [SSH])
    assert_dropped(server_ip, [LISTENER])
