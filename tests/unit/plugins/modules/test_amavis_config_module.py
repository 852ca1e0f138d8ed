# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The amavis_config module: arguments in, result or failure out (the backend is tested in module_utils)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.modules import amavis_config as amavis_module


def no_commands(self, *args, **kwargs):
    raise AssertionError("no command may run")


def test_bad_settings_fail_before_any_command(monkeypatch, run_module, tmp_path):
    monkeypatch.setattr(AnsibleModule, "run_command", no_commands)
    conf = tmp_path / "60-postmaster"
    args = {"settings": {"myhostname": "mail.example.test", "final_virus_destiny": "D_DROP"}, "conf_path": str(conf)}
    rc, result = run_module(amavis_module.main, args)
    assert rc == 1
    assert result["msg"].startswith(
        "settings.final_virus_destiny: must be one of D_DISCARD, D_BOUNCE, D_REJECT, D_PASS"
    )
    assert result["msg"].endswith("nothing was changed")
    assert not conf.exists()


def test_present_needs_settings(monkeypatch, run_module):
    monkeypatch.setattr(AnsibleModule, "run_command", no_commands)
    rc, result = run_module(amavis_module.main, {})
    assert rc == 1
    assert "state is present but all of the following are missing: settings" in result["msg"]


def test_absent_on_a_host_without_amavis(monkeypatch, run_module, tmp_path):
    calls = []

    def systemctl(self, argv, **kwargs):
        calls.append(argv)
        assert argv[1] == "show"
        return 0, "".join(f"Id={unit}\nLoadState=not-found\n\n" for unit in argv[3:] if unit != "--"), ""

    monkeypatch.setattr(AnsibleModule, "run_command", systemctl)
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, *a, **k: f"/usr/bin/{name}")
    args = {
        "state": "absent",
        "conf_path": str(tmp_path / "60-postmaster"),
        "systemd_dir": str(tmp_path / "systemd"),
        "_ansible_diff": True,
    }
    rc, result = run_module(amavis_module.main, args)
    assert (rc, result["changed"], result["state"], result["files"], result["units"]) == (0, False, "absent", [], {})
    assert result["diff"] == []
    assert len(calls) == 1
