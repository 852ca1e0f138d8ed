# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail_packages module: arguments in, backend result (or the failing entry's message) out."""

from __future__ import annotations

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.modules import mail_packages as module


def test_module_fails_with_the_entry_message(monkeypatch, run_module):
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: name)
    monkeypatch.setattr(AnsibleModule, "run_command", lambda self, argv, **kw: pytest.fail("nothing may run"))
    rc, result = run_module(
        module.main,
        {"names": ["dovecot-core"], "requires": [{"path": "/nonexistent/postmaster.d", "msg": "apply postfix first"}]},
    )
    assert rc == 1
    assert result["msg"] == "apply postfix first"
    assert result["changed"] is False


def test_module_converged_host(monkeypatch, run_module):
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: name)
    monkeypatch.setattr(AnsibleModule, "run_command", lambda self, argv, **kw: (0, "nftables\tii \n", ""))
    rc, result = run_module(module.main, {"names": ["nftables"]})
    assert rc == 0
    assert result["changed"] is False
    assert result["missing"] == []
