# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.modules import postconf as postconf_module

CURRENT = "myhostname = mail.example.org\nmessage_size_limit = 10240000\n"


@pytest.fixture
def commands(monkeypatch):
    calls = []
    responses = {"-n": (0, CURRENT, "")}

    def run_command(self, argv, environ_update=None, **kwargs):
        assert environ_update == {"LC_ALL": "C"}
        calls.append(argv)
        return responses.get(argv[3], (0, "", ""))

    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(
        AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: f"/usr/sbin/{name}"
    )
    return calls, responses


def test_sets_changed_params_with_one_call(commands, run_module):
    calls, _responses = commands
    rc, result = run_module(
        postconf_module.main, {"params": {"message_size_limit": 52428800, "myhostname": "mail.example.org"}}
    )
    assert rc == 0
    assert calls == [
        ["/usr/sbin/postconf", "-c", "/etc/postfix", "-n"],
        ["/usr/sbin/postconf", "-c", "/etc/postfix", "-e", "message_size_limit=52428800"],
    ]
    assert result["changed"] is True
    assert result["changed_params"] == ["message_size_limit"]
    assert "diff" not in result


def test_check_and_diff_mode(commands, run_module):
    calls, _responses = commands
    args = {"params": {"message_size_limit": 0}, "_ansible_check_mode": True, "_ansible_diff": True}
    rc, result = run_module(postconf_module.main, args)
    assert rc == 0
    assert calls == [["/usr/sbin/postconf", "-c", "/etc/postfix", "-n"]]
    assert result["changed"] is True
    assert result["diff"]["before"] == "message_size_limit = 10240000\n"
    assert result["diff"]["after"] == "message_size_limit = 0\n"


def test_failure(commands, run_module):
    rc, result = run_module(postconf_module.main, {"params": {"smtpd_client_restrictions": ["permit_bogus"]}})
    assert rc == 1
    assert result["failed"] is True
    assert "smtpd_client_restrictions: unknown restriction 'permit_bogus'" in result["msg"]
