# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall import firewall_rules as fw

FIXTURES = Path(__file__).parents[1] / "fixtures" / "firewall"

#: What mail_ports reports on the scenario's server (Postfix with submission/smtps, Dovecot imap+pop3, SASL on TCP).
PORTS = [
    {"daemon": "postfix", "service": "smtp", "port": 25, "protocol": "tcp", "scope": "public"},
    {"daemon": "dovecot", "service": "pop3-login/pop3", "port": 110, "protocol": "tcp", "scope": "public"},
    {"daemon": "dovecot", "service": "imap-login/imap", "port": 143, "protocol": "tcp", "scope": "public"},
    {"daemon": "postfix", "service": "smtps", "port": 465, "protocol": "tcp", "scope": "public"},
    {"daemon": "postfix", "service": "submission", "port": 587, "protocol": "tcp", "scope": "public"},
    {"daemon": "dovecot", "service": "imap-login/imaps", "port": 993, "protocol": "tcp", "scope": "public"},
    {"daemon": "dovecot", "service": "pop3-login/pop3s", "port": 995, "protocol": "tcp", "scope": "public"},
    {"daemon": "dovecot", "service": "auth/sasl", "port": 12345, "protocol": "tcp", "scope": "sasl"},
    {"daemon": "dovecot", "service": "lmtp/lmtp", "port": 24, "protocol": "tcp", "scope": "internal"},
    {"daemon": "postfix", "service": "127.0.0.1:10025", "port": 10025, "protocol": "tcp", "scope": "local"},
]


def test_mail_ports_become_rules_ssh_first():
    rules = fw.build_rules(PORTS, sasl_peers=["192.168.32.0/20"], sshd_ports=[22])
    assert rules[0] == {"name": "ssh", "port": 22, "protocol": "tcp", "sources": []}
    assert [(r["port"], r["sources"]) for r in rules[1:]] == [
        (25, []),
        (110, []),
        (143, []),
        (465, []),
        (587, []),
        (993, []),
        (995, []),
        (12345, ["192.168.32.0/20"]),
    ]
    assert rules[1]["name"] == "postfix smtp"


def test_sasl_without_peers_internal_and_local_get_no_rule():
    ports = {r["port"] for r in fw.build_rules(PORTS)}
    assert 12345 not in ports and 24 not in ports and 10025 not in ports


def test_admin_networks_restrict_ssh_and_are_normalized():
    rules = fw.build_rules([], admin_networks=["192.0.2.0/24", "2001:DB8::/32", "198.51.100.7", "192.0.2.0/24"])
    assert rules == [
        {"name": "ssh", "port": 22, "protocol": "tcp", "sources": ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]}
    ]


def test_extra_rules_with_ranges_udp_sources_and_comments():
    extra = [
        {"port": 8443, "comment": "webmail"},
        {"port": "6000-6010", "protocol": "udp", "source": "10.0.0.0/8"},
        {"port": "4190", "source": ["fd00::/8"], "protocol": None, "comment": None},
    ]
    rules = fw.build_rules([], extra=extra)
    assert rules[1:] == [
        {"name": "webmail", "port": 8443, "protocol": "tcp", "sources": []},
        {"name": "extra udp 6000-6010", "port": "6000-6010", "protocol": "udp", "sources": ["10.0.0.0/8"]},
        {"name": "extra tcp 4190", "port": 4190, "protocol": "tcp", "sources": ["fd00::/8"]},
    ]


def test_duplicates_are_kept_once():
    rules = fw.build_rules(PORTS[:1], extra=[{"port": 22, "comment": "ssh"}])
    assert [r["port"] for r in rules] == [22, 25]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ssh_port_value": 0}, "firewall_ssh_port: 0 is outside 1-65535"),
        ({"ssh_port_value": "22-23"}, "firewall_ssh_port: must be one port, got the range '22-23'"),
        ({"ssh_port_value": True}, "firewall_ssh_port: must be a port number"),
        ({"ssh_port_value": "22\n"}, "firewall_ssh_port: must be a port number"),
        (
            {"admin_networks": ["10.0.0.1/8"]},
            "firewall_admin_networks[0]: '10.0.0.1/8' is not an IP address or network",
        ),
        ({"admin_networks": ["10.0.0.0/8", "any"]}, "firewall_admin_networks[1]: 'any' is not an IP address"),
        ({"sasl_peers": ["10.0.0.0/8\n0.0.0.0/0"]}, "firewall_sasl_peers[0]: '10.0.0.0/8\\n0.0.0.0/0' is not an IP"),
        ({"sasl_peers": [{"net": "10.0.0.0/8"}]}, "firewall_sasl_peers[0]: {'net': '10.0.0.0/8'} is not an IP"),
        ({"extra": [{"port": 80}, {"port": 443}, {"port": 70000}]}, "firewall_extra_rules[2].port: 70000 is outside"),
        ({"extra": [{"port": "10-5"}]}, "firewall_extra_rules[0].port: the range '10-5' ends before it starts"),
        ({"extra": [{"port": "http"}]}, "firewall_extra_rules[0].port: must be a port number"),
        ({"extra": [{"port": 1.5}]}, "firewall_extra_rules[0].port: must be a port number"),
        ({"extra": [{"protocol": "tcp"}]}, "firewall_extra_rules[0].port: is required"),
        ({"extra": [{"port": 53, "protocol": "icmp"}]}, "firewall_extra_rules[0].protocol: must be one of tcp, udp"),
        ({"extra": [{"port": 53, "sorce": ["10.0.0.0/8"]}]}, "firewall_extra_rules[0]: unknown key(s) sorce"),
        ({"extra": [{"port": 53, "source": ["10.0.0.0/8", "x y"]}]}, "firewall_extra_rules[0].source[1]: 'x y'"),
        (
            {"extra": [{"port": 53, "comment": 'a" accept\ntcp dport 0-65535 accept comment "b'}]},
            "firewall_extra_rules[0].comment: ",
        ),
        ({"extra": [{"port": 53, "comment": "it's"}]}, 'firewall_extra_rules[0].comment: "it\'s" is not a valid'),
        ({"extra": [{"port": 53, "comment": "x" * 65}]}, "firewall_extra_rules[0].comment: "),
        ({"extra": ["8080"]}, "firewall_extra_rules[0]: must be a dict"),
        ({"extra": {"port": 80}}, "firewall_extra_rules: must be a list"),
    ],
)
def test_invalid_input_names_the_variable_and_entry(kwargs, message):
    with pytest.raises(fw.FirewallError) as info:
        fw.build_rules([], **kwargs)
    assert str(info.value).startswith(message)


def test_ssh_port_sshd_does_not_listen_on_is_refused():
    with pytest.raises(fw.FirewallError) as info:
        fw.build_rules(PORTS, ssh_port_value=2222, sshd_ports=[22])
    assert str(info.value) == (
        "firewall_ssh_port is 2222, but sshd listens on 22 (sshd -T): the ruleset would lock the admin out. "
        "Set firewall_ssh_port to sshd's port; nothing was changed"
    )
    assert fw.build_rules([], ssh_port_value=2222, sshd_ports=[22, 2222])[0]["port"] == 2222


@pytest.mark.parametrize(
    ("kwargs", "allowed"),
    [
        ({}, True),
        ({"admin_networks": ["198.51.100.0/24"]}, True),
        ({"admin_networks": ["192.0.2.0/24"]}, False),
        ({"ssh_port_value": 2222}, False),
        # The play's connection may also come in through an extra rule.
        ({"ssh_port_value": 2222, "extra": [{"port": 22, "source": ["198.51.100.0/24"], "comment": "old ssh"}]}, True),
    ],
)
def test_the_plays_own_ssh_connection_must_stay_accepted(kwargs, allowed):
    session = "198.51.100.7 50022 203.0.113.5 22"
    if allowed:
        fw.build_rules([], session=session, **kwargs)
        return
    with pytest.raises(fw.FirewallError, match=re.escape("this play connects over SSH from 198.51.100.7 to port 22")):
        fw.build_rules([], session=session, **kwargs)


@pytest.mark.parametrize("session", ["", "garbage", "a b c d", "198.51.100.7 1 2 x"])
def test_unknown_session_is_not_checked(session):
    assert fw.parse_session(session) is None
    fw.build_rules([], admin_networks=["192.0.2.0/24"], session=session)


def test_session_with_ipv6_scope():
    assert fw.parse_session("fe80::1%eth0 5000 fe80::2 22") == ("fe80::1", 22)


def test_require_ssh_and_accepts():
    rules = [
        {"name": "a", "port": "20-30", "protocol": "tcp", "sources": []},
        {"name": "b", "port": 53, "protocol": "udp", "sources": []},
    ]
    fw.require_ssh(rules, 22)
    with pytest.raises(fw.FirewallError, match="would not accept SSH \\(tcp/53, ssh_port\\)"):
        fw.require_ssh(rules, 53)
    assert fw.accepts(rules, "tcp", 25)
    assert not fw.accepts(rules, "tcp", 53)
    assert not fw.accepts([{"name": "c", "port": 22, "protocol": "tcp", "sources": ["10.0.0.0/8"]}], "tcp", 22)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x", "rules: must be a list of rules"),
        ([["ssh", 22]], "rules[0]: must be a dict"),
        ([{"name": "ssh", "port": 22, "to": "x"}], "rules[0]: unknown key(s) to"),
        ([{"port": 22}], "rules[0]: name and port are required"),
        ([{"name": "ssh\n", "port": 22}], "rules[0].name: "),
        ([{"name": "ssh", "port": 22, "sources": "10.0.0.0/8; drop"}], "rules[0].sources[0]: "),
    ],
)
def test_module_rules_are_validated(value, message):
    with pytest.raises(fw.FirewallError) as info:
        fw.rules(value)
    assert str(info.value).startswith(message)


# -- ufw ------------------------------------------------------------------------------------


def test_ufw_plan_on_a_converged_host_is_empty():
    """ufw-show-added.txt is the real output after the ufw backend applied the scenario's rules."""
    shown = (FIXTURES / "trixie" / "ufw-show-added.txt").read_text(encoding="utf-8")
    rules = fw.build_rules(PORTS, sasl_peers=["192.168.32.0/20"])
    assert fw.ufw_plan(rules, shown) == {"add": [], "delete": []}


def test_ufw_plan_deletes_what_is_no_longer_enabled_and_keeps_foreign_rules():
    shown = (FIXTURES / "trixie" / "ufw-show-added.txt").read_text(encoding="utf-8")
    shown += "ufw allow 8080/tcp\nufw allow from 10.0.0.0/8 to any port 9000 proto tcp comment 'admin'\n"
    without_pop3 = [p for p in PORTS if "pop3" not in p["service"]]
    plan = fw.ufw_plan(fw.build_rules(without_pop3, sasl_peers=["192.168.32.0/20"]), shown)
    assert plan["add"] == []
    assert plan["delete"] == [
        {
            "rule": "allow",
            "proto": "tcp",
            "from_ip": "any",
            "to_port": port,
            "comment": f"postmaster.mailserver: dovecot {name}",
        }
        for port, name in (("110", "pop3-login/pop3"), ("995", "pop3-login/pop3s"))
    ]


def test_ufw_plan_adds_one_rule_per_source_with_ranges():
    rules = [
        {"name": "ssh", "port": 22, "protocol": "tcp", "sources": ["192.0.2.0/24", "2001:db8::/32"]},
        {"name": "x", "port": "6000-6010", "protocol": "udp", "sources": []},
    ]
    plan = fw.ufw_plan(rules, "Added user rules (see 'ufw status' for running firewall):\n")
    assert plan["delete"] == []
    assert plan["add"] == [
        {
            "rule": "allow",
            "proto": "tcp",
            "from_ip": "192.0.2.0/24",
            "to_port": "22",
            "comment": "postmaster.mailserver: ssh",
        },
        {
            "rule": "allow",
            "proto": "tcp",
            "from_ip": "2001:db8::/32",
            "to_port": "22",
            "comment": "postmaster.mailserver: ssh",
        },
        {
            "rule": "allow",
            "proto": "udp",
            "from_ip": "any",
            "to_port": "6000:6010",
            "comment": "postmaster.mailserver: x",
        },
    ]


def test_ufw_changed_source_is_added_before_the_old_one_is_deleted():
    shown = "ufw allow 22/tcp comment 'postmaster.mailserver: ssh'\n"
    rules = [{"name": "ssh", "port": 22, "protocol": "tcp", "sources": ["192.0.2.7"]}]
    plan = fw.ufw_plan(rules, shown)
    assert [e["from_ip"] for e in plan["add"]] == ["192.0.2.7"]
    assert [e["from_ip"] for e in plan["delete"]] == ["any"]


def test_parse_ufw_added_ignores_other_forms_and_broken_quotes():
    shown = (
        "ufw allow in on eth0 to any port 25 proto tcp comment 'postmaster.mailserver: x'\n"
        "ufw allow 'unterminated\n"
        "ufw deny 23/tcp comment 'postmaster.mailserver: y'\n"
        "ufw allow from 10.0.0.0/8 to 10.0.0.1 port 25 proto tcp comment 'postmaster.mailserver: z'\n"
        "ufw allow from 10.0.0.5 to any port 25 proto tcp comment 'postmaster.mailserver: host'\n"
    )
    assert fw.parse_ufw_added(shown) == [
        {
            "rule": "allow",
            "proto": "tcp",
            "from_ip": "10.0.0.5",
            "to_port": "25",
            "comment": "postmaster.mailserver: host",
        }
    ]


def test_a_single_string_is_a_list_of_one():
    rules = fw.build_rules([], admin_networks="192.0.2.0/24", extra=[{"port": 53, "source": "10.0.0.0/8"}])
    assert rules[0]["sources"] == ["192.0.2.0/24"]
    assert rules[1]["sources"] == ["10.0.0.0/8"]
