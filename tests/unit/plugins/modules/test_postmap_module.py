# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.modules import postmap as postmap_module


@pytest.fixture
def commands(monkeypatch):
    calls = []

    def run_command(self, argv, environ_update=None, **kwargs):
        calls.append(argv)
        source = argv[-1].split(":", 1)[1]
        with open(source + ".db", "w", encoding="utf-8") as handle:
            handle.write("db")
        return 0, "", ""

    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(
        AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: f"/usr/sbin/{name}"
    )
    return calls


def test_builds_then_is_idempotent(tmp_path, commands, run_module):
    source = tmp_path / "access"
    source.write_text("example.org REJECT\n", encoding="utf-8")
    os.chmod(source, 0o640)
    rc, result = run_module(postmap_module.main, {"path": str(source), "_ansible_diff": True})
    assert rc == 0
    assert result["changed"] is True
    assert result["rebuilt"] is True
    assert result["db_path"] == f"{source}.db"
    assert result["diff"]["before"] == "state: missing\n"
    assert commands == [["/usr/sbin/postmap", "-c", "/etc/postfix", f"hash:{source}"]]
    os.utime(source, (1000, 1000))
    rc, result = run_module(postmap_module.main, {"path": str(source)})
    assert result["changed"] is False
    assert len(commands) == 1


def test_missing_source_fails(tmp_path, commands, run_module):
    rc, result = run_module(postmap_module.main, {"path": str(tmp_path / "absent"), "type": "lmdb"})
    assert rc == 1
    assert "does not exist" in result["msg"]
