# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter.amavis import (
    FilterModule,
    amavis_postfix_fragment,
    amavis_settings,
)

ROLE_VARS = {"myhostname": "mail.example.test", "final_spam_destiny": "d_pass"}


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"amavis_settings", "amavis_postfix_fragment"}


def test_amavis_settings_normalizes():
    settings = amavis_settings(ROLE_VARS, "amavis_", 24000)
    assert settings["final_spam_destiny"] == "D_PASS"
    assert settings["myhostname"] == "mail.example.test"


@pytest.mark.parametrize(
    ("extra", "memtotal", "message"),
    [
        ({"final_virus_destiny": "D_DROP"}, None, r"^amavis_settings: amavis_final_virus_destiny: must be one of"),
        ({"quarantine_dir": "/etc"}, None, r"^amavis_settings: amavis_quarantine_dir: '/etc' is a system directory"),
        ({"myhostname": "mail"}, None, r"^amavis_settings: amavis_myhostname: 'mail' is not a fully qualified"),
        ({"clamav_min_memory_mb": 10_000_000}, 24000, r"^amavis_settings: amavis_clamav_min_memory_mb: this host"),
    ],
)
def test_amavis_settings_names_the_variable(extra, memtotal, message):
    with pytest.raises(AnsibleFilterError, match=message):
        amavis_settings({**ROLE_VARS, **extra}, "amavis_", memtotal)


def test_amavis_postfix_fragment():
    settings = amavis_settings(ROLE_VARS)
    assert amavis_postfix_fragment(settings)["main"] == {"content_filter": "smtp-amavis:[127.0.0.1]:10024"}
    assert amavis_postfix_fragment({**settings, "enabled": False}) is None
    with pytest.raises(AnsibleFilterError, match=r"^amavis_postfix_fragment: max_servers: must be between"):
        amavis_postfix_fragment({**settings, "max_servers": 0})
