# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail_queue module: postqueue -j run with LC_ALL=C, a summary out, never changed."""

from __future__ import annotations

import json

from ansible_collections.postmaster.mailserver.plugins.modules import mail_queue as queue_module

TIMEOUT = "connect to mx.example.net[192.0.2.1]:25: Connection timed out"
OUTPUT = json.dumps(
    {"queue_name": "deferred", "queue_id": "4A1", "arrival_time": 1_800_000_000, "message_size": 1200,
     "sender": "alice@example.org", "recipients": [{"address": "bob@example.net", "delay_reason": TIMEOUT}]}
) + "\n"  # fmt: skip


def test_module_reports_and_never_changes(monkeypatch, run_module):
    calls = []

    def run_command(self, argv, **kwargs):
        calls.append((argv, kwargs.get("environ_update")))
        return 0, OUTPUT, ""

    monkeypatch.setattr(queue_module.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(queue_module.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: f"/usr/sbin/{name}")
    rc, result = run_module(queue_module.main, {"top": 1, "screening": False, "_ansible_check_mode": True})
    assert rc == 0
    assert "postscreen" not in result and "fail2ban" not in result
    assert result["changed"] is False
    assert result["deferral_reasons"] == [{"reason": TIMEOUT, "recipients": 1}]
    assert result["counts"]["deferred"] == 1
    assert calls == [(["/usr/sbin/postqueue", "-j"], {"LC_ALL": "C"})]


def test_module_fails_with_the_reason(monkeypatch, run_module):
    monkeypatch.setattr(queue_module.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    rc, result = run_module(queue_module.main, {})
    assert (rc, result["msg"]) == (1, "postqueue was not found: is Postfix installed on this host?")


def test_module_reports_postscreen_and_the_bans(monkeypatch, run_module):
    answers = {
        "postqueue": OUTPUT,
        "postconf": "smtp       inet  n       -       y       -       1       postscreen\n",
        "fail2ban-client": "[{'sshd': []}, {'postfix-sasl': ['192.0.2.7']}]\n",
    }

    def run_command(self, argv, **kwargs):
        return 0, answers[argv[0].rsplit("/", 1)[1]], ""

    monkeypatch.setattr(queue_module.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(queue_module.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: f"/usr/sbin/{name}")
    rc, result = run_module(queue_module.main, {})
    assert rc == 0 and result["changed"] is False
    assert result["postscreen"] is True
    assert result["fail2ban"] == {"running": True, "jails": {"sshd": 0, "postfix-sasl": 1}, "banned": 1}
