# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.modules import postfix_config as postfix_config_module

FRAGMENT = {
    "main": {"myhostname": "mail.example.org", "smtpd_relay_restrictions": ["permit_mynetworks", "reject_unauth_destination"]},
    "master": [{"name": "smtp", "type": "inet", "private": "n", "chroot": "y", "command": "smtpd"}],
}  # fmt: skip


@pytest.fixture
def env(tmp_path, monkeypatch):
    config = tmp_path / "postfix"
    (config / "postmaster.d").mkdir(parents=True)
    (config / "main.cf").write_text("myhostname = old\n", encoding="utf-8")
    (config / "postmaster.d" / "00-base.json").write_text(json.dumps(FRAGMENT), encoding="utf-8")
    calls = []

    def run_command(self, argv, environ_update=None, **kwargs):
        calls.append([os.path.basename(argv[0]), *argv[1:]])
        if argv[1:] == ["-m"]:
            return 0, "hash\nregexp\n", ""
        if argv[1:] == ["status"]:
            return 1, "", "not running"
        return 0, "", ""

    warnings = []
    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    # module.warn() goes to the controller's Display when ansible's controller code is loaded
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, msg, **kwargs: warnings.append(msg))
    monkeypatch.setattr(
        AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: f"/usr/sbin/{name}"
    )
    args = {"config_dir": str(config), "fragment_dir": str(config / "postmaster.d")}
    return config, calls, args, warnings


def test_apply_then_idempotent(env, run_module):
    config, calls, args, warnings = env
    rc, result = run_module(postfix_config_module.main, dict(args, _ansible_diff=True))
    assert rc == 0
    assert result["changed"] is True
    assert result["services"] == ["smtp/inet"]
    assert result["diff"][0]["before"] == "myhostname = old\n"
    assert warnings == ["postfix is not running: the new configuration was not reloaded"]
    assert [call[1] for call in calls] == ["-m", "-c", "-c", "status"]
    assert "myhostname = mail.example.org" in (config / "main.cf").read_text(encoding="utf-8")
    calls.clear()
    rc, result = run_module(postfix_config_module.main, args)
    assert result["changed"] is False
    assert "diff" not in result
    assert calls == []


def test_check_mode_and_failure(env, run_module):
    config, _calls, args, warnings = env
    rc, result = run_module(postfix_config_module.main, dict(args, _ansible_check_mode=True))
    assert result["changed"] is True
    assert (config / "main.cf").read_text(encoding="utf-8") == "myhostname = old\n"
    bad = dict(FRAGMENT, main=dict(FRAGMENT["main"], mynetworks="10.0.0.0/33"))
    (config / "postmaster.d" / "00-base.json").write_text(json.dumps(bad), encoding="utf-8")
    rc, result = run_module(postfix_config_module.main, args)
    assert rc == 1
    assert result["failed"] is True
    assert warnings == []
    assert "parameter mynetworks: '10.0.0.0/33'" in result["msg"]
    assert (config / "main.cf").read_text(encoding="utf-8") == "myhostname = old\n"
