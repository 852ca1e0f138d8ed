# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile input, round two (issue 25): the firewall and the SPF policy.

Each row runs exactly what the role or module runs before its first change on a host - the
firewall role's ``firewall_rules`` filter (as tasks/main.yml calls it), the host side of
``nftables_config``/``mail_ports``, the policyd_spf role's ``policyd_spf_settings`` filter, the
``policyd_spf_config`` backend and the ``postfix_config`` backend on a scratch directory - and
expects the exact error, which names the variable and the entry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display
from ansible_collections.postmaster.mailserver.plugins.filter.firewall import firewall_rules
from ansible_collections.postmaster.mailserver.plugins.filter.spf import policyd_spf_settings
from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.mail_ports import MailPorts
from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.nftables_config import (
    NftablesConfigError,
    rules_from_services,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_config import PostfixConfigError
from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.policyd_spf import (
    PolicydSpfConfig,
    PolicydSpfError,
)
from ansible_collections.postmaster.mailserver.tests.unit.plugins.test_bad_input_matrix import (
    postfix_config,
    postfix_role,
)

ROOT = Path(__file__).resolve().parents[3]
FIREWALL_DEFAULTS = yaml.safe_load((ROOT / "roles" / "firewall" / "defaults" / "main.yml").read_text())
SPF_DEFAULTS = yaml.safe_load((ROOT / "roles" / "policyd_spf" / "defaults" / "main.yml").read_text())
POSTFIX_DEFAULTS = yaml.safe_load((ROOT / "roles" / "postfix" / "defaults" / "main.yml").read_text())
SPF_VARS = yaml.safe_load((ROOT / "roles" / "policyd_spf" / "vars" / "main.yml").read_text())
POLICY = "check_policy_service unix:private/policy-spf"
ADMINS = ["192.0.2.0/24"]
SESSION = "192.0.2.10 50022 198.51.100.1 22"


# -- what the roles and modules run -------------------------------------------------------------


def firewall(mail_ports: dict[str, Any] | None = None, **variables: Any) -> Callable[[Path], Any]:
    """The firewall role's validation task: its variables (defaults + *variables*) through firewall_rules."""
    values = {key: value for key, value in FIREWALL_DEFAULTS.items() if key.startswith("firewall_")}
    values.update(
        {f"firewall_{key}": value for key, value in variables.items() if key not in ("session", "connection")}
    )

    def run(_tmp: Path) -> Any:
        return firewall_rules(
            mail_ports or {},
            ssh_port=values["firewall_ssh_port"],
            admin_networks=values["firewall_admin_networks"],
            sasl_peers=values["firewall_sasl_peers"],
            extra_rules=values["firewall_extra_rules"],
            session=variables.get("session", SESSION),
            connection=variables.get("connection", "ssh"),
            allow_unverified=values["firewall_allow_unverified_admin_networks"],
            postfix_config_dir=values["firewall_postfix_config_dir"],
            dovecot_config_dir=values["firewall_dovecot_config_dir"],
        )

    return run


def nftables_host(exists: Callable[[str], bool], **services: Any) -> Callable[[Path], Any]:
    """The host side of nftables_config: mail_ports reads the live configuration, nothing is written."""

    def run_command(argv, environ_update=None, **_kwargs):
        return 0, "", ""

    def run(_tmp: Path) -> Any:
        return rules_from_services(
            {"postfix_config_dir": "/etc/postfix", "dovecot_config_dir": "/etc/dovecot", **services},
            ssh_port=22,
            run_command=run_command,
            get_bin_path=lambda name: f"/usr/sbin/{name}",
            reader=lambda **kwargs: MailPorts(exists=exists, **kwargs),
        )

    return run


def spf(restrictions: Any = None, rbl_zones: Any = (), **settings: Any) -> Callable[[Path], Any]:
    """The policyd_spf role's validation task: its settings, and the postfix role's restrictions when visible."""
    values = {key.removeprefix("policyd_spf_"): value for key, value in SPF_DEFAULTS.items()}
    for key in ("packages", "time_limit", "postfix_config_dir", "postfix_fragment_dir"):
        values.pop(key)
    values.update(settings)

    def run(_tmp: Path) -> Any:
        return policyd_spf_settings(
            values,
            "policyd_spf_",
            recipient_restrictions=restrictions,
            rbl_zones=list(rbl_zones),
            policy=POLICY,
            after=SPF_VARS["__policyd_spf_after"],
        )

    return run


def spf_module(**settings: Any) -> Callable[[Path], Any]:
    """The policyd_spf_config backend: it validates before it reads or writes anything."""

    def never(*_args, **_kwargs):
        raise AssertionError("a command ran before the settings were checked")

    return lambda _tmp: PolicydSpfConfig(settings=settings, run_command=never, get_bin_path=never)


def postfix_merge(**main: Any) -> Callable[[Path], Any]:
    """postfix_config with a fragment setting *main* and the policyd_spf role's fragment inserting the policy."""
    fragments = {
        "20-site.json": {"main": main},
        "50-policyd-spf.json": {
            "insert": [
                {"param": "smtpd_recipient_restrictions", "after": "reject_unauth_destination", "values": [POLICY]}
            ]
        },
    }
    return lambda tmp: postfix_config(tmp, fragments=fragments)()


RECIPIENT = POSTFIX_DEFAULTS["postfix_recipient_restrictions"]
FW = "firewall_rules: "
SPF = "policyd_spf_settings: "
SKIP = "so policyd-spf would check no client's SPF; list the hosts whose mail should skip SPF"
EVERY_INBOUND = "permits every outside client that sends to a local recipient before"

CASES = [
    # -- firewall: an extra rule may not reopen SSH beyond the admin networks
    pytest.param(
        firewall(admin_networks=ADMINS, extra_rules=[{"port": 22}]),
        FW + "firewall_extra_rules[0]: opens SSH (tcp/22) to everyone, beyond firewall_admin_networks (192.0.2.0/24)",
        id="fw-extra-ssh-everyone",
    ),
    pytest.param(
        firewall(admin_networks=ADMINS, extra_rules=[{"port": 8080}, {"port": "1-1024", "comment": "low"}]),
        FW + "firewall_extra_rules[1]: opens SSH (tcp/22, in the range 1-1024) to everyone",
        id="fw-extra-ssh-in-range",
    ),
    pytest.param(
        firewall(admin_networks=["10.1.0.0/16"], extra_rules=[{"port": 22, "source": ["10.0.0.0/8"]}]),
        FW + "firewall_extra_rules[0].source: 10.0.0.0/8 is outside firewall_admin_networks (10.1.0.0/16), but the "
        "rule opens SSH (tcp/22)",
        id="fw-extra-ssh-wider-source",
        marks=[],
    ),
    pytest.param(
        firewall(admin_networks=ADMINS, extra_rules=[{"port": 22, "source": ["0.0.0.0/1", "128.0.0.0/1"]}]),
        FW + "firewall_extra_rules[0]: opens SSH (tcp/22) to everyone",
        id="fw-extra-ssh-two-halves",
    ),
    pytest.param(
        firewall(admin_networks=ADMINS, extra_rules=[{"port": 22, "source": ["::/0"]}]),
        FW + "firewall_extra_rules[0]: opens SSH (tcp/22) to everyone",
        id="fw-extra-ssh-ipv6-everything",
    ),
    pytest.param(
        firewall(
            {"ports": [], "ssh_ports": [22]},
            ssh_port=22,
            admin_networks=ADMINS,
            extra_rules=[{"port": 2222}],
            session="192.0.2.10 50022 198.51.100.1 2222",
        ),
        FW + "firewall_extra_rules[0]: opens SSH (tcp/2222) to everyone",
        id="fw-extra-ssh-session-port",
    ),
    pytest.param(
        firewall({"ports": [], "ssh_ports": [22, 2200]}, admin_networks=ADMINS, extra_rules=[{"port": "2000-2300"}]),
        FW + "firewall_extra_rules[0]: opens SSH (tcp/2200, in the range 2000-2300) to everyone",
        id="fw-extra-ssh-second-sshd-port",
    ),
    # -- firewall: an extra rule may not open an internal listener to everyone
    pytest.param(
        firewall(extra_rules=[{"port": 10024}]),
        FW + "firewall_extra_rules[0]: opens port 10024 (amavis, an internal listener) to everyone; give the hosts "
        "that need it in source",
        id="fw-extra-amavis",
    ),
    pytest.param(
        firewall(extra_rules=[{"port": 10025, "source": ["0.0.0.0/1", "128.0.0.0/1"]}]),
        FW + "firewall_extra_rules[0]: opens port 10025 (amavis's re-injection smtpd, an internal listener) to "
        "everyone",
        id="fw-extra-amavis-reinjection-halves",
    ),
    pytest.param(
        firewall(extra_rules=[{"port": 3310, "source": ["::/0"]}]),
        FW + "firewall_extra_rules[0]: opens port 3310 (ClamAV (clamd), an internal listener) to everyone",
        id="fw-extra-clamd-ipv6",
    ),
    pytest.param(
        firewall(extra_rules=[{"port": 783}]),
        FW + "firewall_extra_rules[0]: opens port 783 (SpamAssassin (spamd), an internal listener) to everyone",
        id="fw-extra-spamd",
    ),
    pytest.param(
        firewall(extra_rules=[{"port": 24}]),
        FW + "firewall_extra_rules[0]: opens port 24 (LMTP, an internal listener) to everyone",
        id="fw-extra-lmtp",
    ),
    pytest.param(
        firewall(extra_rules=[{"port": 12345}]),
        FW + "firewall_extra_rules[0]: opens port 12345 (Dovecot SASL (dovecot_sasl_inet_port), an internal "
        "listener) to everyone",
        id="fw-extra-dovecot-sasl",
    ),
    pytest.param(
        firewall(extra_rules=[{"port": "10000-10100"}]),
        FW + "firewall_extra_rules[0]: opens the range 10000-10100, which holds port 10023 (postgrey, an internal "
        "listener) to everyone",
        id="fw-extra-internal-range",
    ),
    pytest.param(
        firewall(
            {"ports": [{"daemon": "dovecot", "service": "auth/sasl", "port": 4000, "scope": "sasl"}], "ssh_ports": []},
            extra_rules=[{"port": 4000}],
        ),
        FW + "firewall_extra_rules[0]: opens port 4000 (dovecot auth/sasl, an internal listener) to everyone",
        id="fw-extra-live-sasl-port",
    ),
    pytest.param(
        firewall(
            {"ports": [{"daemon": "dovecot", "service": "doveadm/tcp", "port": 2425, "scope": "internal"}]},
            extra_rules=[{"port": "2400-2500", "protocol": "tcp"}],
        ),
        FW + "firewall_extra_rules[0]: opens the range 2400-2500, which holds port 2425 (dovecot doveadm/tcp, an "
        "internal listener) to everyone",
        id="fw-extra-live-internal-port",
    ),
    # -- firewall: SASL peers may not be everything
    pytest.param(
        firewall(sasl_peers=["0.0.0.0/0"]),
        FW + "firewall_sasl_peers[0]: 0.0.0.0/0 is every address, which would open Dovecot's SASL port to the whole "
        "Internet",
        id="fw-sasl-everything",
    ),
    pytest.param(
        firewall(sasl_peers=["198.51.100.7", "::/0"]),
        FW + "firewall_sasl_peers[1]: ::/0 is every address",
        id="fw-sasl-ipv6-everything",
    ),
    pytest.param(
        firewall(sasl_peers=["0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/2"]),
        FW + "firewall_sasl_peers: 0.0.0.0/1, 128.0.0.0/2, 192.0.0.0/2 together cover every address",
        id="fw-sasl-pieces",
    ),
    # -- firewall: no visible SSH session
    pytest.param(
        firewall(admin_networks=ADMINS, session=""),
        FW + "this play connects over ssh, but the host shows no SSH_CONNECTION, so the role cannot check that your "
        "address is in firewall_admin_networks (192.0.2.0/24) and you could be locked out; nothing was changed. Set "
        "firewall_allow_unverified_admin_networks: true to apply them unverified",
        id="fw-session-hidden-ssh",
    ),
    pytest.param(
        firewall(admin_networks=ADMINS, session="", connection="ansible.builtin.paramiko_ssh"),
        FW + "this play connects over ansible.builtin.paramiko_ssh, but the host shows no SSH_CONNECTION",
        id="fw-session-hidden-paramiko",
    ),
    pytest.param(
        firewall(admin_networks=ADMINS, session="garbage"),
        FW + "this play connects over ssh, but the host shows no SSH_CONNECTION",
        id="fw-session-unreadable",
    ),
    pytest.param(
        firewall(admin_networks=ADMINS, session="", allow_unverified_admin_networks="maybe"),
        FW + "firewall_allow_unverified_admin_networks: must be true or false, got 'maybe'",
        id="fw-unverified-not-bool",
    ),
    # -- firewall: the configuration directories
    pytest.param(
        firewall(postfix_config_dir="etc/postfix"),
        FW + "firewall_postfix_config_dir: 'etc/postfix' is not an absolute directory path",
        id="fw-postfix-dir-relative",
    ),
    pytest.param(
        firewall(dovecot_config_dir="/etc/dovecot/../ssh"),
        FW + "firewall_dovecot_config_dir: '/etc/dovecot/../ssh' is not an absolute directory path",
        id="fw-dovecot-dir-dotdot",
    ),
    pytest.param(
        firewall(postfix_config_dir="/etc/postfix\n"),
        FW + "firewall_postfix_config_dir: '/etc/postfix\\n' is not an absolute directory path",
        id="fw-postfix-dir-newline",
    ),
    pytest.param(
        nftables_host(lambda path: not path.startswith("/srv/postfix"), postfix_config_dir="/srv/postfix"),
        "firewall_postfix_config_dir: /srv/postfix does not exist, but postconf is installed; give Postfix's "
        "configuration directory",
        id="fw-postfix-dir-missing-on-host",
    ),
    pytest.param(
        nftables_host(lambda path: not path.startswith("/etc/dovecot2"), dovecot_config_dir="/etc/dovecot2"),
        "firewall_dovecot_config_dir: /etc/dovecot2 does not exist, but doveconf is installed",
        id="fw-dovecot-dir-missing-on-host",
    ),
    # -- SPF: skip_addresses and whitelist may not cover everything
    pytest.param(
        spf(skip_addresses=["127.0.0.0/8", "0.0.0.0/0"]),
        SPF + "policyd_spf_skip_addresses[1]: 0.0.0.0/0 is every address, " + SKIP,
        id="spf-skip-everything",
    ),
    pytest.param(
        spf(skip_addresses=["::/0"]),
        SPF + "policyd_spf_skip_addresses[0]: ::/0 is every address",
        id="spf-skip-ipv6-everything",
    ),
    pytest.param(
        spf(skip_addresses=["0.0.0.0/1", "128.0.0.0/1"]),
        SPF + "policyd_spf_skip_addresses: 0.0.0.0/1, 128.0.0.0/1 together cover every address, " + SKIP,
        id="spf-skip-two-halves",
    ),
    pytest.param(
        spf(whitelist=["0.0.0.0/0"]),
        SPF + "policyd_spf_whitelist[0]: 0.0.0.0/0 is every address",
        id="spf-whitelist-everything",
    ),
    pytest.param(
        spf(whitelist="0.0.0.0/2, 64.0.0.0/2 128.0.0.0/2,192.0.0.0/2"),
        SPF + "policyd_spf_whitelist: 0.0.0.0/2, 64.0.0.0/2, 128.0.0.0/2, 192.0.0.0/2 together cover every address",
        id="spf-whitelist-quarters-string",
    ),
    pytest.param(
        spf(whitelist=["::/1", "8000::/1"]),
        SPF + "policyd_spf_whitelist: ::/1, 8000::/1 together cover every address",
        id="spf-whitelist-ipv6-halves",
    ),
    pytest.param(
        spf_module(whitelist=["0.0.0.0/1", "128.0.0.0/1"]),
        "settings.whitelist: 0.0.0.0/1, 128.0.0.0/1 together cover every address, " + SKIP + "; nothing was changed",
        id="spf-module-whitelist-halves",
    ),
    # -- SPF: an early permit that keeps the policy and the RBLs from inbound mail
    pytest.param(
        spf(["permit_auth_destination", *RECIPIENT]),
        SPF + "postfix_recipient_restrictions: parameter smtpd_recipient_restrictions: 'permit_auth_destination' "
        f"(entry 1) {EVERY_INBOUND} '{POLICY}', so inbound mail never reaches the SPF policy",
        id="spf-permit-auth-destination",
    ),
    pytest.param(
        spf(["permit_mynetworks", "check_client_access static:OK", "reject_unauth_destination"]),
        SPF + "postfix_recipient_restrictions: parameter smtpd_recipient_restrictions: 'check_client_access "
        f"static:OK' (entry 2) {EVERY_INBOUND} '{POLICY}'",
        id="spf-static-ok-before-policy",
    ),
    pytest.param(
        spf("permit_mynetworks, permit_auth_destination, reject_unauth_destination", rbl_zones=["zen.spamhaus.org"]),
        f"'permit_auth_destination' (entry 2) {EVERY_INBOUND} 'reject_rbl_client zen.spamhaus.org', so inbound "
        "mail never reaches the DNS block list checks",
        id="spf-permit-before-rbl",
    ),
    pytest.param(
        lambda _tmp: postfix_role(
            postfix_recipient_restrictions=[
                "permit_mynetworks",
                "permit_auth_destination",
                "reject_unauth_destination",
            ],
            postfix_rbl_zones=["zen.spamhaus.org"],
        )(),
        "postfix_recipient_restrictions (with postfix_rbl_zones inserted): parameter smtpd_recipient_restrictions: "
        f"'permit_auth_destination' (entry 2) {EVERY_INBOUND} 'reject_rbl_client zen.spamhaus.org', so inbound mail "
        "never reaches the DNS block list checks",
        id="spf-postfix-role-permit-before-rbl",
    ),
    pytest.param(
        postfix_merge(
            smtpd_recipient_restrictions=["permit_auth_destination", "permit_mynetworks", "reject_unauth_destination"]
        ),
        f"parameter smtpd_recipient_restrictions: 'permit_auth_destination' (entry 1) {EVERY_INBOUND} '{POLICY}', so "
        "inbound mail never reaches the SPF policy",
        id="spf-merged-permit-auth-destination",
    ),
    pytest.param(
        postfix_merge(
            smtpd_recipient_restrictions=["permit_mynetworks", "reject_unauth_destination"],
            smtpd_client_restrictions=["check_client_access static:{OK}", "reject_rbl_client zen.spamhaus.org"],
        ),
        "parameter smtpd_client_restrictions: 'check_client_access static:{OK}' (entry 1) "
        f"{EVERY_INBOUND} 'reject_rbl_client zen.spamhaus.org', so inbound mail never reaches the DNS block list checks",
        id="spf-merged-static-ok-before-rbl",
    ),
]


def test_the_matrix_is_large_enough():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) >= 20


@pytest.mark.parametrize(("thunk", "expected"), CASES)
def test_hostile_input_fails_naming_the_variable(tmp_path, thunk, expected):
    with pytest.raises((AnsibleFilterError, NftablesConfigError, PolicydSpfError, PostfixConfigError)) as excinfo:
        thunk(tmp_path)
    assert expected in str(excinfo.value)


# -- legitimate values pass, and the admin choices that stay possible are not silent ----------------------


@pytest.fixture
def warnings(monkeypatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(Display, "warning", lambda _self, msg, *args, **kwargs: seen.append(msg))
    return seen


def test_the_default_firewall_passes_silently(tmp_path, warnings):
    rules = firewall(session="")(tmp_path)
    assert rules == [{"name": "ssh", "port": 22, "protocol": "tcp", "sources": []}]
    assert warnings == []


def test_admin_networks_with_the_session_inside_them_pass(tmp_path, warnings):
    extra = [{"port": 22, "source": ["192.0.2.128/25"]}, {"port": 8443, "comment": "webmail"}]
    rules = firewall(admin_networks=ADMINS, sasl_peers=["198.51.100.0/24"], extra_rules=extra)(tmp_path)
    assert rules[0] == {"name": "ssh", "port": 22, "protocol": "tcp", "sources": ADMINS}
    assert {"name": "extra tcp 8443", "port": 8443, "protocol": "tcp", "sources": []} not in rules
    assert {"name": "webmail", "port": 8443, "protocol": "tcp", "sources": []} in rules
    assert warnings == []


def test_without_admin_networks_an_extra_ssh_rule_widens_nothing(tmp_path, warnings):
    rules = firewall(extra_rules=[{"port": 22, "source": ["203.0.113.0/24"]}], session="")(tmp_path)
    assert rules[0]["sources"] == []
    assert warnings == []


def test_an_internal_listener_from_a_named_source_is_allowed_with_a_warning(tmp_path, warnings):
    rules = firewall(extra_rules=[{"port": 10024, "source": ["192.0.2.25"], "comment": "amavis peer"}])(tmp_path)
    assert {"name": "amavis peer", "port": 10024, "protocol": "tcp", "sources": ["192.0.2.25"]} in rules
    assert warnings == [
        "firewall_rules: firewall_extra_rules[0]: opens the internal listener port 10024 (amavis) to 192.0.2.25; "
        "whatever those hosts send there is trusted as this host's own"
    ]


def test_a_range_from_named_sources_warns_once_and_udp_opens_no_tcp_listener(tmp_path, warnings):
    extra = [{"port": "10020-10030", "source": ["192.0.2.0/24"]}, {"port": 3310, "protocol": "udp"}]
    firewall(extra_rules=extra)(tmp_path)
    assert warnings == [
        "firewall_rules: firewall_extra_rules[0]: opens the internal listener ports 10023 (postgrey), 10024 (amavis), "
        "10025 (amavis's re-injection smtpd), 10026 (amavis (ORIGINATING)) to 192.0.2.0/24; whatever those hosts "
        "send there is trusted as this host's own"
    ]


@pytest.mark.parametrize("connection", ["community.docker.docker", "local", "ansible.builtin.local"])
def test_a_connection_without_ssh_applies_the_admin_networks_with_a_warning(tmp_path, warnings, connection):
    """As in the molecule scenarios (docker connection): the play itself cannot be cut off."""
    rules = firewall(admin_networks=ADMINS, session="", connection=connection)(tmp_path)
    assert rules[0]["sources"] == ADMINS
    assert warnings == [
        f"firewall_rules: firewall_admin_networks: this play's connection ({connection}) shows no SSH_CONNECTION, so "
        "the role could not check that the admin's address is among 192.0.2.0/24; SSH is accepted from them only"
    ]


def test_unverified_admin_networks_over_ssh_need_the_switch_and_warn(tmp_path, warnings):
    rules = firewall(admin_networks=ADMINS, session="", allow_unverified_admin_networks=True)(tmp_path)
    assert rules[0]["sources"] == ADMINS
    assert firewall(admin_networks=ADMINS, session="", allow_unverified_admin_networks="true")(tmp_path) == rules
    assert len(set(warnings)) == 1 and "could not check that the admin's address" in warnings[0]


def test_the_host_side_reads_an_existing_directory_without_a_daemon_as_no_ports(tmp_path):
    rules, found = nftables_host(lambda path: not path.endswith(".conf") and not path.endswith(".cf"))(tmp_path)
    assert found["found"]["postfix"] is False and found["found"]["dovecot"] is False
    assert rules[0]["name"] == "ssh"


def test_default_spf_settings_and_the_postfix_defaults_pass_silently(tmp_path, warnings):
    settings = spf(RECIPIENT, rbl_zones=["zen.spamhaus.org"])(tmp_path)
    assert settings["skip_addresses"] == ["127.0.0.0/8", "::ffff:127.0.0.0/104", "::1"]
    assert spf(whitelist=["192.0.2.0/24", "2001:db8::/32"])(tmp_path)["whitelist"] == ["192.0.2.0/24", "2001:db8::/32"]
    assert warnings == []


def test_an_access_table_before_the_policy_is_a_warning(tmp_path, warnings):
    restrictions = ["permit_mynetworks", "check_sender_access hash:/etc/postfix/sender_ok", "reject_unauth_destination"]
    spf(restrictions)(tmp_path)
    assert warnings == [
        "policyd_spf_settings: postfix_recipient_restrictions: parameter smtpd_recipient_restrictions: "
        f"'check_sender_access hash:/etc/postfix/sender_ok' (entry 2) comes before '{POLICY}': the mail it permits "
        "skips the SPF policy"
    ]


def test_without_the_postfix_variables_only_the_settings_are_checked(tmp_path, warnings):
    assert spf()(tmp_path)["helo_reject"] == "Fail"
    assert warnings == []


# -- the molecule cases (molecule/badinput/cases/fwspf.yml) fail here with the same message ------------------

MOLECULE_CASES = yaml.safe_load((ROOT / "molecule" / "badinput" / "cases" / "fwspf.yml").read_text())


def molecule_thunk(case: dict[str, Any]) -> Callable[[Path], Any]:
    """What the case's role runs before its first change, with the case's variables."""
    variables = dict(case["vars"])
    if case["role"] == "firewall":
        if "__firewall_connection" in variables:
            variables["connection"] = variables.pop("__firewall_connection")
        directory = variables.get("firewall_postfix_config_dir", "")
        if directory.startswith("/") and directory != "/etc/postfix":  # absolute: only the host can tell
            return nftables_host(lambda path: not path.startswith(directory), postfix_config_dir=directory)
        # The scenario's docker connection shows no SSH_CONNECTION.
        return firewall(
            session="",
            connection=variables.pop("connection", "community.docker.docker"),
            **{key.removeprefix("firewall_"): value for key, value in variables.items()},
        )
    if case["role"] == "postfix":
        return lambda _tmp: postfix_role(**variables)()
    restrictions = variables.pop("postfix_recipient_restrictions", RECIPIENT)
    return spf(restrictions, **{key.removeprefix("policyd_spf_"): value for key, value in variables.items()})


def test_the_molecule_cases_are_enough_and_belong_to_this_class():
    assert len(MOLECULE_CASES) >= 8
    assert {case["role"] for case in MOLECULE_CASES} == {"firewall", "policyd_spf", "postfix"}
    assert all(case["id"].startswith("fwspf-") for case in MOLECULE_CASES)


@pytest.mark.parametrize("case", MOLECULE_CASES, ids=[case["id"] for case in MOLECULE_CASES])
def test_each_molecule_case_fails_here_with_its_message(tmp_path, warnings, case):
    with pytest.raises((AnsibleFilterError, NftablesConfigError, PolicydSpfError)) as excinfo:
        molecule_thunk(case)(tmp_path)
    assert case["expect"] in str(excinfo.value)
