# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.nftables_config import (
    MARKER,
    HealthCheckError,
    NftablesConfig,
    NftablesConfigError,
    check_live,
    render,
    stub,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "firewall"
#: The live table the firewall role loaded on a trixie host (nft -j list table inet postmaster).
LIVE_JSON = (FIXTURES / "trixie" / "nft-list-table.json").read_text(encoding="utf-8")
RULES = [
    {"name": "ssh", "port": 22, "protocol": "tcp", "sources": []},
    {"name": "postfix smtp", "port": 25, "protocol": "tcp", "sources": []},
    {"name": "dovecot auth/sasl", "port": 12345, "protocol": "tcp", "sources": ["192.168.32.0/20", "fd00::/8"]},
    {"name": "extra", "port": "6000-6010", "protocol": "udp", "sources": []},
]
STOCK = "#!/usr/sbin/nft -f\n\nflush ruleset\n\ntable inet filter {\n}\n"
MISSING = (1, "", "Error: No such file or directory\nlist table inet postmaster\n")


def without_ssh(listing: str) -> str:
    data = json.loads(listing)
    data["nftables"] = [i for i in data["nftables"] if i.get("rule", {}).get("comment") != "ssh"]
    return json.dumps(data)


class Host:
    """A fake host: the live table, the unit's state, and every argv that ran."""

    def __init__(self, live=LIVE_JSON, enabled=True, loaded=LIVE_JSON, **responses):
        self.live = live
        self.enabled = enabled
        self.loaded = loaded  # what the live table becomes when the file is loaded
        self.calls: list[list[str]] = []
        self.restored: list[str] = []
        self.responses = responses

    def __call__(self, argv, environ_update=None, **kwargs):
        assert isinstance(argv, list)
        assert environ_update == {"LC_ALL": "C"}
        self.calls.append(argv)
        key = self.key(argv)
        if key in self.responses:
            return self.responses[key]
        if key == "nft -j list table inet postmaster":
            return (0, self.live, "") if self.live else MISSING
        if key == "nft list table inet postmaster":
            return (0, "table inet postmaster { LIVE }\n", "") if self.live else MISSING
        if key == "systemctl is-enabled --quiet nftables":
            return (0 if self.enabled else 1), "", ""
        if key == "systemctl is-active --quiet firewalld":
            return 3, "", ""
        if key == "systemctl reload-or-restart nftables":
            self.live = self.loaded
            return 0, "", ""
        if key == "systemctl enable nftables":
            self.enabled = True
            return 0, "", ""
        if key == "systemctl disable nftables":
            self.enabled = False
            return 0, "", ""
        if key == "nft -f":
            with open(argv[-1], encoding="utf-8") as handle:
                self.restored.append(handle.read())
            return 0, "", ""
        if key == "nft delete table inet postmaster":
            self.live = None
            return 0, "", ""
        return 0, "", ""

    @staticmethod
    def key(argv):
        return " ".join([os.path.basename(argv[0]), *[a for a in argv[1:] if not a.startswith("/")]])

    @property
    def keys(self):
        return [self.key(c) for c in self.calls]


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "nftables.conf"
    path.write_text(STOCK, encoding="utf-8")
    path.chmod(0o755)
    return path


def make(conf, host, rules=None, bins=("nft", "systemctl"), **kwargs):
    return NftablesConfig(
        rules=RULES if rules is None else rules,
        run_command=host,
        get_bin_path=lambda name: f"/usr/sbin/{name}" if name in bins else None,
        path=str(conf),
        ufw_conf=str(conf.parent / "ufw.conf"),
        **kwargs,
    )


# -- rendering and the live check ------------------------------------------------------------


def test_render_is_one_atomic_table_without_flush():
    text = render(RULES)
    assert text.startswith("#!/usr/sbin/nft -f\n" + MARKER + "\n")
    assert "flush" not in text
    body = text.split("table inet postmaster {}\ndelete table inet postmaster\ntable inet postmaster {\n", 1)[1]
    assert body == (
        "\tchain input {\n"
        "\t\ttype filter hook input priority filter; policy drop;\n"
        "\t\tct state invalid drop\n"
        "\t\tct state { established, related } accept\n"
        '\t\tiifname "lo" accept\n'
        "\t\tmeta l4proto { icmp, ipv6-icmp } accept\n"
        '\t\ttcp dport 22 accept comment "ssh"\n'
        '\t\ttcp dport 25 accept comment "postfix smtp"\n'
        '\t\tip saddr { 192.168.32.0/20 } tcp dport 12345 accept comment "dovecot auth/sasl"\n'
        '\t\tip6 saddr { fd00::/8 } tcp dport 12345 accept comment "dovecot auth/sasl"\n'
        '\t\tudp dport 6000-6010 accept comment "extra"\n'
        "\t}\n"
        "}\n"
    )


def test_check_live_on_the_real_table():
    check_live(LIVE_JSON, "postmaster", 22)
    with pytest.raises(HealthCheckError, match="no rule accepting SSH \\(tcp/2222\\)"):
        check_live(LIVE_JSON, "postmaster", 2222)
    with pytest.raises(HealthCheckError, match="no rule accepting SSH"):
        check_live(without_ssh(LIVE_JSON), "postmaster", 22)
    with pytest.raises(HealthCheckError, match="has no input chain"):
        check_live(LIVE_JSON, "other", 22)
    with pytest.raises(HealthCheckError, match="printed no JSON"):
        check_live("not json", "postmaster", 22)
    accepting = LIVE_JSON.replace('"policy": "drop"', '"policy": "accept"')
    with pytest.raises(HealthCheckError, match="does not drop by default"):
        check_live(accepting, "postmaster", 22)


def test_check_live_sets_and_ranges():
    rule = {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": None}}
    base = json.loads(without_ssh(LIVE_JSON))
    for right in ({"set": [21, 22]}, {"set": [{"range": [20, 30]}]}, {"range": [20, 30]}):
        data = json.loads(json.dumps(base))
        rule["match"]["right"] = right
        expr = [json.loads(json.dumps(rule)), {"accept": None}]
        data["nftables"].append({"rule": {"family": "inet", "table": "postmaster", "chain": "input", "expr": expr}})
        check_live(json.dumps(data), "postmaster", 22)


# -- refused before anything changes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rules": RULES[1:]}, "the ruleset would not accept SSH (tcp/22, ssh_port)"),
        ({"ssh_port": 2222}, "the ruleset would not accept SSH (tcp/2222, ssh_port)"),
        ({"ssh_port": 0}, "ssh_port: 0 is outside 1-65535"),
        ({"rules": [{"name": "ssh", "port": 22, "sources": ["10.0.0.0/8\n"]}]}, "rules[0].sources[0]: "),
        ({"rules": [{"name": 'x" drop', "port": 22}]}, "rules[0].name: "),
        ({"table": "a b"}, "table: 'a b' must be a lower-case name"),
    ],
)
def test_invalid_or_ssh_less_rules_are_refused(conf, kwargs, message):
    host = Host()
    with pytest.raises(NftablesConfigError) as info:
        make(conf, host, **kwargs).execute()
    assert info.value.msg.startswith(message)
    assert host.calls == []
    assert conf.read_text(encoding="utf-8") == STOCK


def test_refused_candidate_changes_nothing(conf):
    host = Host(**{"nft -c -f": (1, "", "/etc/.nftables.conf.x:9:3-8: Error: syntax error")})
    with pytest.raises(NftablesConfigError, match="nft -c refused the candidate ruleset \\(rc=1\\)") as info:
        make(conf, host).execute()
    assert info.value.details == {"nft_rc": 1}
    assert conf.read_text(encoding="utf-8") == STOCK
    assert "systemctl reload-or-restart nftables" not in host.keys
    assert sorted(p.name for p in conf.parent.iterdir()) == ["nftables.conf"]  # no temporary file left


@pytest.mark.parametrize(
    ("ufw", "firewalld", "message"),
    [("ENABLED=yes\n", 3, "ufw (ENABLED=yes in "), ("ENABLED=no\n", 0, "firewalld (firewalld.service is active)")],
)
def test_another_firewall_manager_is_refused(conf, ufw, firewalld, message):
    (conf.parent / "ufw.conf").write_text(ufw, encoding="utf-8")
    host = Host(**{"systemctl is-active --quiet firewalld": (firewalld, "", "")})
    with pytest.raises(NftablesConfigError, match="two managers would each drop") as info:
        make(conf, host).execute()
    assert info.value.msg.startswith(message)
    assert conf.read_text(encoding="utf-8") == STOCK


def test_missing_nft_fails_unless_check_mode(conf):
    with pytest.raises(NftablesConfigError, match="nft was not found; install the nftables package"):
        make(conf, Host(), bins=("systemctl",)).execute()
    result = make(conf, Host(), bins=("systemctl",), check_mode=True).execute()
    assert result["changed"] is True
    assert result["warnings"] == ["nft was not found: the candidate ruleset was not checked (check mode)"]
    assert conf.read_text(encoding="utf-8") == STOCK


# -- applied ----------------------------------------------------------------------------------


def test_first_run_checks_writes_loads_checks_and_enables(conf):
    host = Host(live=None, enabled=False)
    result = make(conf, host).execute()
    assert result["changed"] is True
    assert result["reloaded"] is True
    assert result["enabled"] is True
    assert host.keys == [
        "systemctl is-active --quiet firewalld",
        "nft -j list table inet postmaster",
        "systemctl is-enabled --quiet nftables",
        "nft -c -f",
        "nft list table inet postmaster",
        "systemctl reload-or-restart nftables",
        "nft -j list table inet postmaster",
        "systemctl enable nftables",
    ]
    assert conf.read_text(encoding="utf-8") == render(RULES)
    assert oct(conf.stat().st_mode & 0o777) == "0o755"
    assert result["diff"]["before"] == STOCK
    assert sorted(p.name for p in conf.parent.iterdir()) == ["nftables.conf"]


def test_converged_host_runs_only_reads(conf):
    conf.write_text(render(RULES), encoding="utf-8")
    host = Host()
    result = make(conf, host).execute()
    assert result["changed"] is False
    assert host.keys == [
        "systemctl is-active --quiet firewalld",
        "nft -j list table inet postmaster",
        "systemctl is-enabled --quiet nftables",
    ]


def test_check_mode_checks_the_candidate_but_writes_nothing(conf):
    host = Host()
    result = make(conf, host, check_mode=True).execute()
    assert result["changed"] is True
    assert "nft -c -f" in host.keys
    assert "systemctl reload-or-restart nftables" not in host.keys
    assert conf.read_text(encoding="utf-8") == STOCK
    assert sorted(p.name for p in conf.parent.iterdir()) == ["nftables.conf"]


def test_flushed_live_table_is_reloaded_from_the_unchanged_file(conf):
    conf.write_text(render(RULES), encoding="utf-8")
    host = Host(live=None)
    result = make(conf, host).execute()
    assert result["changed"] is True
    assert result["reloaded"] is True
    assert "nft -c -f" not in host.keys
    assert "differs" in result["diff"]["before_header"]


def test_a_table_without_ssh_after_the_load_is_rolled_back(conf):
    host = Host(loaded=without_ssh(LIVE_JSON))
    with pytest.raises(NftablesConfigError) as info:
        make(conf, host).execute()
    assert info.value.msg == (
        "health check failed: table inet postmaster has no rule accepting SSH (tcp/22); "
        "the previous file and table were restored"
    )
    assert info.value.details == {"rolled_back": True}
    assert conf.read_text(encoding="utf-8") == STOCK
    assert oct(conf.stat().st_mode & 0o777) == "0o755"
    # The previous table came back in one transaction that touches no other table.
    assert host.restored == ["table inet postmaster {}\ndelete table inet postmaster\ntable inet postmaster { LIVE }\n"]
    assert "systemctl enable nftables" not in host.keys


def test_a_failed_load_without_a_previous_table_removes_the_table(conf):
    host = Host(live=None, **{"systemctl reload-or-restart nftables": (1, "", "Job failed")})
    with pytest.raises(NftablesConfigError, match="reload-or-restart nftables failed \\(rc=1\\): Job failed"):
        make(conf, host).execute()
    assert host.restored == ["table inet postmaster {}\ndelete table inet postmaster\n"]
    assert conf.read_text(encoding="utf-8") == STOCK


def test_a_failed_restore_is_reported(conf):
    host = Host(loaded=without_ssh(LIVE_JSON), **{"nft -f": (1, "", "Error: oops")})
    with pytest.raises(NftablesConfigError, match=r"restoring the previous file and table failed: .*Error: oops"):
        make(conf, host).execute()


def test_list_errors_other_than_a_missing_table_fail(conf):
    host = Host(**{"nft -j list table inet postmaster": (1, "", "Error: Operation not permitted")})
    with pytest.raises(NftablesConfigError, match="nft list table inet postmaster failed \\(rc=1\\): Error: Operation"):
        make(conf, host).execute()


def test_enable_failure_is_reported(conf):
    conf.write_text(render(RULES), encoding="utf-8")
    host = Host(enabled=False, **{"systemctl enable nftables": (1, "", "Failed to enable")})
    with pytest.raises(NftablesConfigError, match="systemctl enable nftables failed"):
        make(conf, host).execute()


def test_no_file_before_is_removed_again_on_rollback(conf):
    conf.unlink()
    host = Host(loaded=without_ssh(LIVE_JSON))
    with pytest.raises(NftablesConfigError, match="health check failed"):
        make(conf, host).execute()
    assert not conf.exists()


# -- absent -----------------------------------------------------------------------------------


def test_absent_removes_the_table_leaves_a_stub_and_disables(conf):
    conf.write_text(render(RULES), encoding="utf-8")
    host = Host()
    result = make(conf, host, state="absent").execute()
    assert result["changed"] is True
    assert conf.read_text(encoding="utf-8") == stub()
    assert "nft delete table inet postmaster" in host.keys
    assert "systemctl disable nftables" in host.keys
    assert "systemctl stop nftables" not in host.keys  # stop would flush every table
    again = Host(live=None, enabled=False)
    assert make(conf, again, state="absent").execute()["changed"] is False


def test_absent_leaves_a_file_that_is_not_ours(conf):
    host = Host(live=None)
    result = make(conf, host, state="absent").execute()
    assert result["changed"] is False
    assert conf.read_text(encoding="utf-8") == STOCK
    assert "systemctl disable nftables" not in host.keys


def test_absent_in_check_mode_and_without_nft(conf):
    conf.write_text(render(RULES), encoding="utf-8")
    host = Host()
    assert make(conf, host, state="absent", check_mode=True).execute()["changed"] is True
    assert conf.read_text(encoding="utf-8") == render(RULES)
    assert "nft delete table inet postmaster" not in host.keys
    result = make(conf, Host(enabled=False), state="absent", bins=("systemctl",)).execute()
    assert result["changed"] is True
    assert conf.read_text(encoding="utf-8") == stub()


def test_absent_delete_failure(conf):
    host = Host(**{"nft delete table inet postmaster": (1, "", "Error: busy")})
    conf.write_text(render(RULES), encoding="utf-8")
    with pytest.raises(NftablesConfigError, match="nft delete table inet postmaster failed \\(rc=1\\): Error: busy"):
        make(conf, host, state="absent").execute()


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_check_live_on_the_tables_nft_1_0_and_1_1_printed(suite):
    """nft 1.0.6 (Debian 12) and 1.1.3 (Debian 13) listed the table the role loaded; both pass, for SSH only."""
    listing = (FIXTURES / suite / "nft-list-table.json").read_text(encoding="utf-8")
    check_live(listing, "postmaster", 22)
    with pytest.raises(HealthCheckError):
        check_live(listing, "postmaster", 23)
