# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter.spf import (
    FilterModule,
    policyd_spf_settings,
    spf_lookups,
    spf_record,
)


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"spf_record", "spf_lookups", "policyd_spf_settings"}


def test_spf_record_seed_003():
    assert spf_record({"mx": True}) == "v=spf1 mx ~all"
    assert (
        spf_record({"mx": True, "include": ["_spf.provider.example"]}) == "v=spf1 mx include:_spf.provider.example ~all"
    )


def test_spf_record_counts_nested_includes_and_fails_past_ten():
    resolved = {
        "_spf.provider.example": "v=spf1 " + " ".join(f"include:_s{n}.provider.example" for n in range(9)) + " -all"
    }
    with pytest.raises(AnsibleFilterError) as error:
        spf_record({"mx": True, "include": ["_spf.provider.example"]}, resolved)
    message = str(error.value)
    assert message.startswith("spf_record: spf_record needs 11 DNS lookups, more than the 10")
    assert "include:_spf.provider.example > include:_s8.provider.example" in message


def test_spf_record_names_the_variable():
    with pytest.raises(AnsibleFilterError, match=r"^spf_record: my_spf.all: 'pass'"):
        spf_record({"mx": True, "all": "pass"}, None, "my_spf")


def test_spf_lookups():
    assert spf_lookups("v=spf1 mx include:a.example -all", {"a.example": "v=spf1 a -all"}) == {
        "count": 3,
        "terms": ["mx", "include:a.example", "include:a.example > a"],
        "limit": 10,
        "within_limit": True,
    }
    assert spf_lookups("v=spf1 " + "a " * 11 + "-all")["within_limit"] is False
    with pytest.raises(AnsibleFilterError, match=r"^spf_lookups: record: 'mx' is not an SPF record"):
        spf_lookups("mx")


def test_policyd_spf_settings():
    assert policyd_spf_settings({"mail_from_reject": False, "skip_addresses": []}) == {
        "mail_from_reject": "False",
        "skip_addresses": [],
    }
    with pytest.raises(AnsibleFilterError, match=r"^policyd_spf_settings: policyd_spf_whitelist\[1\]"):
        policyd_spf_settings({"whitelist": ["192.0.2.0/24", "nonsense"]})


@pytest.mark.parametrize("limit", ["3600s", "1h", 3600, "7d"])
def test_policyd_spf_settings_accepts_a_postfix_time_limit(limit):
    assert policyd_spf_settings({}, "policyd_spf_", time_limit=limit) == {}


@pytest.mark.parametrize("limit", ["3600s\nunix - n n - 0 spawn user=root argv=/bin/sh", "1 h", "1y", True, ""])
def test_policyd_spf_settings_refuses_a_time_limit_postfix_cannot_read(limit):
    with pytest.raises(AnsibleFilterError, match=r"policyd_spf_time_limit must be a Postfix time such as 3600s or 1h"):
        policyd_spf_settings({}, "policyd_spf_", time_limit=limit)
