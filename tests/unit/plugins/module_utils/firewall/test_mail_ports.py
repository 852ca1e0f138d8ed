# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""mail_ports, fed with the real outputs of Debian 12 and 13 hosts built by the roles.

The fixtures were captured from the molecule firewall scenario's server (postfix role with submission and
smtps, dovecot role with imap, pop3, lmtp and dovecot_sasl_inet_port 12345, openssh-server), with
``postconf -M``, ``postconf inet_interfaces``, ``doveconf protocols listen service`` and ``sshd -T``;
``doveconf-no-pop3.txt`` after the same play with ``dovecot_protocols: [imap, lmtp]``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.mail_ports import (
    MailPorts,
    MailPortsError,
    Port,
    dovecot_ports,
    is_loopback,
    parse_doveconf,
    parse_master,
    postfix_ports,
    resolve_service,
    split_service_name,
    sshd_ports,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "firewall"
SUITES = ["bookworm", "trixie"]
PUBLIC = {25, 465, 587, 143, 993, 110, 995}


def fixture(suite: str, name: str) -> str:
    return (FIXTURES / suite / name).read_text(encoding="utf-8")


def resolve(name: str) -> int | None:
    """Like /etc/services on Debian, without depending on the machine running the tests."""
    return {"smtp": 25, "submission": 587, "smtps": 465}.get(name) or (int(name) if name.isdigit() else None)


@pytest.mark.parametrize("suite", SUITES)
def test_postfix_inet_services_of_a_real_master_cf(suite):
    ports, problems = postfix_ports(fixture(suite, "postconf-M.txt"), "all", resolve)
    assert problems == []
    assert ports == [
        Port("postfix", "smtp", 25, "public"),
        Port("postfix", "submission", 587, "public"),
        Port("postfix", "smtps", 465, "public"),
    ]


@pytest.mark.parametrize("suite", SUITES)
def test_dovecot_listeners_of_the_enabled_protocols(suite):
    ports, problems = dovecot_ports(fixture(suite, "doveconf.txt"))
    assert problems == []
    found = {(p.service, p.port, p.scope) for p in ports}
    assert found == {
        ("auth/sasl", 12345, "sasl"),
        ("imap-login/imap", 143, "public"),
        ("imap-login/imaps", 993, "public"),
        ("pop3-login/pop3", 110, "public"),
        ("pop3-login/pop3s", 995, "public"),
    }
    # submission-login (587/465) exists in Dovecot's defaults but its protocol is not enabled.
    assert not any(p.service.startswith("submission") for p in ports)


@pytest.mark.parametrize("suite", SUITES)
def test_disabling_pop3_removes_110_and_995(suite):
    ports, _problems = dovecot_ports(fixture(suite, "doveconf-no-pop3.txt"))
    assert {p.port for p in ports} == {143, 993, 12345}


@pytest.mark.parametrize("suite", SUITES)
def test_sshd_port_of_a_real_sshd(suite):
    assert sshd_ports(fixture(suite, "sshd-T.txt")) == [22]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("port 22\nport 2222\n", [22, 2222]),
        ("port 22\nlistenaddress 0.0.0.0:2200\nlistenaddress [::]:2200\n", [2200]),
        ("port 22\nlistenaddress 127.0.0.1:22\nlistenaddress [::1]:22\n", []),
        ("port 22\nlistenaddress 127.0.0.1:22\nlistenaddress 192.0.2.1:22\n", [22]),
    ],
)
def test_sshd_listen_addresses(text, expected):
    assert sshd_ports(text) == expected


def test_loopback_services_and_interfaces_are_local():
    master = (
        "smtp inet n - y - - smtpd\n"
        "127.0.0.1:10025 inet n - n - - smtpd\n"
        "[::1]:10026 inet n - n - - smtpd\n"
        "192.0.2.1:2525 inet n - n - - smtpd\n"
        "10023 inet n n n - 0 spawn user=nobody argv=/usr/bin/policy\n"
        "smtp unix - - y - - smtp\n"
    )
    ports, problems = postfix_ports(master, "all", resolve)
    assert problems == []
    assert [(p.service, p.port, p.scope) for p in ports] == [
        ("smtp", 25, "public"),
        ("127.0.0.1:10025", 10025, "local"),
        ("[::1]:10026", 10026, "local"),
        ("192.0.2.1:2525", 2525, "public"),
        ("10023", 10023, "internal"),  # a policy service is not for the world
    ]
    # A null client: Postfix listens on loopback only, so nothing is exposed.
    local, _problems = postfix_ports(master, "loopback-only", resolve)
    assert {p.scope for p in local if p.service == "smtp"} == {"local"}
    local, _problems = postfix_ports(master, "127.0.0.1, [::1]", resolve)
    assert {p.scope for p in local if p.service == "smtp"} == {"local"}


def test_postscreen_and_folded_lines():
    master = "smtp      inet  n       -       y       -       1       postscreen\n  -o x=y\nbogus line\n"
    assert parse_master(master) == [["smtp", "inet", "n", "-", "y", "-", "1", "postscreen", "-o", "x=y"]]
    ports, _problems = postfix_ports(master, "all", resolve)
    assert ports == [Port("postfix", "smtp", 25, "public")]


def test_unknown_service_name_is_reported_not_guessed():
    ports, problems = postfix_ports("nosuchservice inet n - y - - smtpd\n", "all", resolve)
    assert ports == []
    assert problems == ["Postfix service 'nosuchservice': 'nosuchservice' is not a known TCP service or port number"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("smtp", (None, "smtp")), ("127.0.0.1:10025", ("127.0.0.1", "10025")), ("[::1]:25", ("::1", "25"))],
)
def test_split_service_name(name, expected):
    assert split_service_name(name) == expected


def test_bracketed_name_without_port_is_an_error():
    with pytest.raises(MailPortsError, match="expected \\[address\\]:port"):
        split_service_name("[::1]")


def test_resolve_service_numbers_and_fallbacks():
    assert resolve_service("2525") == 2525
    assert resolve_service("0") is None
    assert resolve_service("70000") is None
    assert resolve_service("submission") == 587
    assert resolve_service("no-such-service-name") is None


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True), ("*", False), ("::", False)],
)
def test_is_loopback(address, expected):
    assert is_loopback(address) is expected


def test_dovecot_port_zero_loopback_listeners_and_internal_services():
    text = """protocols = imap lmtp sieve
listen = *, ::
service imap-login {
  type = login
  protocol = imap
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = 993
  }
}
service managesieve-login {
  type = login
  protocol = sieve
  inet_listener sieve {
    port = 4190
  }
}
service lmtp {
  protocol = lmtp
  inet_listener lmtp {
    port = 24
  }
}
service doveadm {
  protocol =
  inet_listener {
    port = 2425
  }
}
"""
    ports, problems = dovecot_ports(text)
    assert problems == []
    assert [(p.service, p.port, p.scope) for p in ports] == [
        ("imap-login/imaps", 993, "local"),
        ("managesieve-login/sieve", 4190, "public"),
        ("lmtp/lmtp", 24, "internal"),
        ("doveadm/", 2425, "internal"),
    ]


def test_dovecot_listen_on_loopback_and_24_listen_setting():
    text = """protocols = imap
listen = 127.0.0.1, ::1
service imap-login {
  protocol = imap
  type = login
  inet_listener imap {
    port = 143
  }
  inet_listener imaps {
    listen = 192.0.2.1
    port = 993
  }
}
"""
    ports, _problems = dovecot_ports(text)
    assert [(p.port, p.scope) for p in ports] == [(143, "local"), (993, "public")]


def test_bad_dovecot_port_is_reported():
    ports, problems = dovecot_ports(
        "protocols = imap\nservice imap-login {\n  inet_listener x {\n    port = abc\n  }\n}\n"
    )
    assert ports == []
    assert problems == ["Dovecot service imap-login, inet_listener x: port 'abc'"]


def test_parse_doveconf_quoted_names_and_stray_braces():
    root = parse_doveconf('# comment\nservice a {\n  unix_listener "srv.a/%{pid}" {\n    mode = 0600\n  }\n}\n}\n')
    assert root.children[0].children[0].name == "srv.a/%{pid}"
    assert root.children[0].children[0].settings == {"mode": "0600"}


# -- the backend with an injected runner -------------------------------------------------------


class FakeRunner:
    def __init__(self, suite: str, **overrides):
        self.calls: list[list[str]] = []
        self.outputs = {
            "postconf -M": (0, fixture(suite, "postconf-M.txt"), ""),
            "postconf inet_interfaces": (0, fixture(suite, "postconf-inet_interfaces.txt"), ""),
            "doveconf protocols listen service": (0, fixture(suite, "doveconf.txt"), ""),
            "sshd -T": (0, fixture(suite, "sshd-T.txt"), ""),
        }
        self.outputs.update(overrides)

    def __call__(self, argv, environ_update=None, **kwargs):
        assert isinstance(argv, list)
        assert environ_update == {"LC_ALL": "C"}
        self.calls.append(argv)
        key = " ".join([os.path.basename(argv[0]), *[a for a in argv[1:] if not a.startswith("/") and a != "-c"]])
        return self.outputs[key]


def make(runner, missing=(), **kwargs):
    return MailPorts(
        run_command=runner,
        get_bin_path=lambda name: None if name in missing else f"/usr/sbin/{name}",
        resolve=resolve,
        exists=lambda path: "missing" not in path,
        **kwargs,
    )


@pytest.mark.parametrize("suite", SUITES)
def test_execute_on_a_real_host_output(suite):
    runner = FakeRunner(suite)
    result = make(runner, binaries=["nft"]).execute()
    assert result["changed"] is False
    assert result["found"] == {"postfix": True, "dovecot": True, "sshd": True}
    assert result["ssh_ports"] == [22]
    assert result["binaries"] == {"nft": "/usr/sbin/nft"}
    assert [p["port"] for p in result["ports"]] == sorted(PUBLIC | {12345})
    assert {p["port"] for p in result["ports"] if p["scope"] == "public"} == PUBLIC
    assert runner.calls == [
        ["/usr/sbin/postconf", "-c", "/etc/postfix", "-M"],
        ["/usr/sbin/postconf", "-c", "/etc/postfix", "inet_interfaces"],
        ["/usr/sbin/doveconf", "-c", "/etc/dovecot/dovecot.conf", "protocols", "listen", "service"],
        ["/usr/sbin/sshd", "-T"],
    ]


def test_daemons_that_are_not_installed_are_skipped():
    runner = FakeRunner("trixie")
    result = make(runner, missing=("doveconf", "sshd", "ufw"), binaries=["ufw"]).execute()
    assert result["found"] == {"postfix": True, "dovecot": False, "sshd": False}
    assert result["binaries"] == {"ufw": None}
    assert {p["daemon"] for p in result["ports"]} == {"postfix"}
    result = make(FakeRunner("trixie"), missing=("postconf",), postfix_config_dir="/missing").execute()
    assert result["found"]["postfix"] is False


def test_a_missing_config_dir_of_an_installed_daemon_is_an_error():
    with pytest.raises(MailPortsError, match=r"^firewall_postfix_config_dir: /missing does not exist, but postconf"):
        make(FakeRunner("trixie"), postfix_config_dir="/missing", variable_prefix="firewall_").execute()
    with pytest.raises(MailPortsError, match=r"^dovecot_config_dir: /missing/dovecot does not exist, but doveconf"):
        make(FakeRunner("trixie"), dovecot_config_dir="/missing/dovecot").execute()


def test_a_failing_postconf_fails_the_module():
    runner = FakeRunner("trixie", **{"postconf -M": (1, "", "postconf: fatal: open /etc/postfix/main.cf")})
    with pytest.raises(MailPortsError, match="postconf -M failed \\(rc=1\\): postconf: fatal"):
        make(runner).execute()


def test_a_failing_sshd_is_a_warning():
    runner = FakeRunner("trixie", **{"sshd -T": (255, "", "sshd: no hostkeys available -- exiting.")})
    result = make(runner).execute()
    assert result["ssh_ports"] == []
    assert result["found"]["sshd"] is False
    assert result["warnings"] == [
        "sshd -T failed (rc=255), so sshd's port is unknown: sshd: no hostkeys available -- exiting."
    ]


# -- nftables_config's services option: the same reading, then the firewall role's rules ---------


def services_rules(runner, services, ssh_port=22):
    from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.nftables_config import (
        rules_from_services,
    )

    return rules_from_services(
        services,
        ssh_port=ssh_port,
        run_command=runner,
        get_bin_path=lambda name: f"/usr/sbin/{name}",
        reader=lambda **kwargs: MailPorts(resolve=resolve, exists=lambda path: "missing" not in path, **kwargs),
    )


@pytest.mark.parametrize("suite", SUITES)
def test_services_compose_the_firewall_role_rules_from_what_is_read(suite):
    from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.firewall_rules import build_rules

    runner = FakeRunner(suite)
    services = {"admin_networks": ["192.0.2.0/24"], "sasl_peers": ["198.51.100.7"], "extra_rules": [{"port": 8080}]}
    rule_set, read = services_rules(runner, services)
    found = make(FakeRunner(suite)).execute()
    # Exactly what the firewall_rules filter makes of the mail_ports result (the ufw path).
    assert rule_set == build_rules(
        found["ports"],
        admin_networks=["192.0.2.0/24"],
        sasl_peers=["198.51.100.7"],
        extra=[{"port": 8080}],
        sshd_ports=found["ssh_ports"],
    )
    assert rule_set[0] == {"name": "ssh", "port": 22, "protocol": "tcp", "sources": ["192.0.2.0/24"]}
    assert {r["port"] for r in rule_set} == PUBLIC | {22, 12345, 8080}
    assert read["ports"] == found["ports"] and read["ssh_ports"] == [22]


def test_services_refuse_a_lockout_before_anything():
    from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.nftables_config import (
        NftablesConfigError,
    )

    with pytest.raises(NftablesConfigError, match="firewall_ssh_port is 2222, but sshd listens on 22"):
        services_rules(FakeRunner("trixie"), {}, ssh_port=2222)
    with pytest.raises(NftablesConfigError, match=r"firewall_extra_rules\[0\]\.port: 70000 is outside 1-65535"):
        services_rules(FakeRunner("trixie"), {"extra_rules": [{"port": 70000}]})


def test_services_report_a_daemon_that_fails():
    from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.nftables_config import (
        NftablesConfigError,
    )

    runner = FakeRunner("trixie", **{"postconf -M": (1, "", "postconf: fatal: open /etc/postfix/main.cf")})
    with pytest.raises(NftablesConfigError, match="postconf"):
        services_rules(runner, {})
