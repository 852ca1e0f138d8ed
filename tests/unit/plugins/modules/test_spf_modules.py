# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The spf_check and policyd_spf_config modules: arguments in, result or failure out."""

from __future__ import annotations

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.spf_check import DnsVoid
from ansible_collections.postmaster.mailserver.plugins.modules import policyd_spf_config as policyd_module
from ansible_collections.postmaster.mailserver.plugins.modules import spf_check as check_module

ZONE = {
    ("pass.test", "TXT"): ["v=spf1 include:a.test -all"],
    ("a.test", "TXT"): ["v=spf1 ip4:192.0.2.0/24 -all"],
    ("long.test", "TXT"): ["v=spf1 " + " ".join(f"a:h{n}.test" for n in range(11)) + " -all"],
}


@pytest.fixture
def fake_dns(monkeypatch):
    asked = {}

    def factory(nameservers, port, timeout):
        asked.update(nameservers=nameservers, port=port, timeout=timeout)

        def lookup(name, rdtype):
            if (name, rdtype) in ZONE:
                return ZONE[(name, rdtype)]
            if rdtype == "A" and name.endswith(".test"):
                return ["198.51.100.1"]
            raise DnsVoid(name)

        return lookup

    monkeypatch.setattr(check_module, "dnspython_lookup", factory)
    return asked


def test_spf_check_reports_and_never_changes(fake_dns, run_module):
    args = {"domain": "pass.test", "ip": "192.0.2.7", "nameservers": ["172.18.0.5"], "_ansible_check_mode": True}
    rc, result = run_module(check_module.main, args)
    assert rc == 0
    assert result["changed"] is False
    assert (result["lookups"], result["ip_result"], result["ip_passes"]) == (1, "pass", True)
    assert result["matched"] == {"mechanism": "ip4:192.0.2.0/24", "domain": "a.test"}
    assert fake_dns == {"nameservers": ["172.18.0.5"], "port": 53, "timeout": 5.0}
    rc, result = run_module(check_module.main, {"domain": "pass.test", "ip": "203.0.113.1"})
    assert (rc, result["ip_result"], result["ip_passes"]) == (0, "fail", False)


def test_spf_check_fails_past_the_limit_unless_told_not_to(fake_dns, run_module):
    rc, result = run_module(check_module.main, {"domain": "long.test"})
    assert rc == 1
    assert result["failed"] is True
    assert result["msg"].startswith("long.test: 11 DNS lookups, more than the 10 that SPF allows")
    assert result["lookups"] == 11
    rc, result = run_module(check_module.main, {"domain": "long.test", "fail_on_error": False})
    assert (rc, result["valid"], result["lookups"]) == (0, False, 11)


def test_spf_check_without_a_record_or_with_bad_input(fake_dns, run_module):
    rc, result = run_module(check_module.main, {"domain": "none.test"})
    assert (rc, result["msg"]) == (1, "none.test publishes no SPF record")
    rc, result = run_module(check_module.main, {"domain": "pass.test", "ip": "not-an-ip"})
    assert (rc, result["msg"]) == (1, "ip: 'not-an-ip' is not an IPv4 or IPv6 address")


def test_spf_check_without_dnspython(monkeypatch, run_module):
    monkeypatch.setattr(check_module, "HAS_DNSPYTHON", False)
    rc, result = run_module(check_module.main, {"domain": "pass.test"})
    assert rc == 1
    assert "dnspython" in result["msg"]


def test_policyd_spf_config_refuses_bad_settings_before_anything(monkeypatch, run_module, tmp_path):
    def no_commands(self, *args, **kwargs):
        raise AssertionError("no command may run")

    monkeypatch.setattr(AnsibleModule, "run_command", no_commands)
    conf = tmp_path / "policyd-spf.conf"
    rc, result = run_module(policyd_module.main, {"settings": {"mail_from_reject": "reject"}, "path": str(conf)})
    assert rc == 1
    assert result["msg"].startswith("settings.mail_from_reject: must be one of SPF_Not_Pass")
    assert not conf.exists()


def test_policyd_spf_config_unchanged_file(monkeypatch, run_module, tmp_path):
    from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.policyd_spf import render_config

    conf = tmp_path / "policyd-spf.conf"
    conf.write_text(render_config({"mail_from_reject": "False"}), encoding="utf-8")
    monkeypatch.setattr(
        AnsibleModule, "run_command", lambda self, *a, **k: (item for item in ()).throw(AssertionError())
    )
    rc, result = run_module(
        policyd_module.main, {"settings": {"mail_from_reject": False}, "path": str(conf), "_ansible_diff": True}
    )
    assert (rc, result["changed"], result["reloaded"]) == (0, False, False)
    assert result["settings"] == {"Mail_From_reject": "False"}
    assert result["diff"]["before"] == result["diff"]["after"]
