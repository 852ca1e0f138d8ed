# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail_ports and nftables_config modules are thin: arguments in, backend result (or failure) out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.nftables_config import render
from ansible_collections.postmaster.mailserver.plugins.modules import mail_ports as mail_ports_module
from ansible_collections.postmaster.mailserver.plugins.modules import nftables_config as nftables_module

FIXTURES = Path(__file__).parents[1] / "module_utils" / "fixtures" / "firewall" / "trixie"
LIVE = (FIXTURES / "nft-list-table.json").read_text(encoding="utf-8")


@pytest.fixture
def host(monkeypatch):
    """Answers the commands both modules run; records every argv."""
    state = {"calls": [], "outputs": {}}
    outputs = {
        "postconf -c -M": (0, (FIXTURES / "postconf-M.txt").read_text(encoding="utf-8"), ""),
        "postconf -c inet_interfaces": (0, "inet_interfaces = all\n", ""),
        "doveconf -c protocols listen service": (
            0,
            (FIXTURES / "doveconf-no-pop3.txt").read_text(encoding="utf-8"),
            "",
        ),
        "sshd -T": (0, "port 22\n", ""),
        "nft -j list table inet postmaster": (0, LIVE, ""),
        "systemctl is-active --quiet firewalld": (3, "", ""),
    }

    def run_command(self, argv, environ_update=None, **kwargs):
        state["calls"].append(argv)
        key = " ".join([os.path.basename(argv[0]), *[a for a in argv[1:] if not a.startswith("/")]])
        return state["outputs"].get(key, outputs.get(key, (0, "", "")))

    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(
        AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: f"/usr/sbin/{name}"
    )
    return state


@pytest.fixture
def config_dirs(tmp_path):
    (tmp_path / "postfix").mkdir()
    (tmp_path / "postfix" / "main.cf").write_text("", encoding="utf-8")
    (tmp_path / "dovecot").mkdir()
    (tmp_path / "dovecot" / "dovecot.conf").write_text("", encoding="utf-8")
    return {"postfix_config_dir": str(tmp_path / "postfix"), "dovecot_config_dir": str(tmp_path / "dovecot")}


def test_mail_ports_reports_ports_and_changes_nothing(host, config_dirs, run_module):
    args = {**config_dirs, "binaries": ["nft"], "_ansible_check_mode": True}
    rc, result = run_module(mail_ports_module.main, args)
    assert rc == 0
    assert result["changed"] is False
    assert [p["port"] for p in result["ports"]] == [25, 143, 465, 587, 993, 12345]
    assert result["ssh_ports"] == [22]
    assert result["binaries"] == {"nft": "/usr/sbin/nft"}


def test_mail_ports_failure(host, config_dirs, run_module):
    host["outputs"]["postconf -c -M"] = (1, "", "postconf: fatal: bad")
    rc, result = run_module(mail_ports_module.main, config_dirs)
    assert rc == 1
    assert result["msg"] == "postconf -M failed (rc=1): postconf: fatal: bad"


RULES = [{"name": "ssh", "port": 22}, {"name": "smtp", "port": "25"}]


def test_nftables_check_mode_with_diff(tmp_path, host, run_module):
    path = tmp_path / "nftables.conf"
    args = {"rules": RULES, "path": str(path), "_ansible_check_mode": True, "_ansible_diff": True}
    rc, result = run_module(nftables_module.main, args)
    assert rc == 0
    assert result["changed"] is True
    assert result["rules"] == [
        {"name": "ssh", "port": 22, "protocol": "tcp", "sources": []},
        {"name": "smtp", "port": 25, "protocol": "tcp", "sources": []},
    ]
    assert result["diff"]["after"] == render(result["rules"])
    assert not path.exists()


def test_nftables_converged_without_diff(tmp_path, host, run_module):
    path = tmp_path / "nftables.conf"
    path.write_text(render([{"name": "ssh", "port": 22, "protocol": "tcp", "sources": []}]), encoding="utf-8")
    rc, result = run_module(nftables_module.main, {"rules": RULES[:1], "path": str(path)})
    assert (rc, result["changed"]) == (0, False)
    assert "diff" not in result


def test_nftables_refuses_rules_without_ssh(tmp_path, host, run_module):
    rc, result = run_module(nftables_module.main, {"rules": RULES[1:], "path": str(tmp_path / "x")})
    assert rc == 1
    assert "would not accept SSH (tcp/22" in result["msg"]
    assert host["calls"] == []


def test_nftables_rollback_is_reported(tmp_path, host, run_module):
    host["outputs"]["nft -j list table inet postmaster"] = (
        0,
        LIVE.replace('"policy": "drop"', '"policy": "accept"'),
        "",
    )
    rc, result = run_module(nftables_module.main, {"rules": RULES, "path": str(tmp_path / "nftables.conf")})
    assert rc == 1
    assert result["rolled_back"] is True
    assert "does not drop by default" in result["msg"]


def test_nftables_with_services_reports_the_ports_it_read_and_opens_them(tmp_path, host, config_dirs, run_module):
    path = tmp_path / "nftables.conf"
    args = {"services": config_dirs, "path": str(path), "_ansible_check_mode": True}
    rc, result = run_module(nftables_module.main, args)
    assert (rc, result["changed"]) == (0, True)
    assert [p["port"] for p in result["ports"]] == [25, 143, 465, 587, 993, 12345]
    opened = [rule["port"] for rule in result["rules"]]
    assert opened[0] == 22 and {25, 143, 465, 587, 993} <= set(opened)
    assert not path.exists()
