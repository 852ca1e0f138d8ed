# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""postscreen on port 25 and anvil's rate limits: the typed values, main.cf and master.cf."""

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_postscreen import (
    check_screen,
    check_zone,
)

SETTINGS = {
    "postfix_postscreen_enabled": True,
    "postfix_postscreen_dnsbl_sites": [],
    "postfix_postscreen_dnsbl_threshold": 1,
    "postfix_client_connection_rate_limit": 60,
    "postfix_client_message_rate_limit": 100,
    "postfix_recipient_limit": 100,
    "postfix_anvil_rate_time_unit": 60,
}
SMTP = {"name": "smtp", "type": "inet", "private": "n", "unpriv": "-", "chroot": "y", "wakeup": "-", "maxproc": "-",
        "command": "smtpd"}  # fmt: skip
PICKUP = {"name": "pickup", "type": "unix", "private": "n", "unpriv": "-", "chroot": "y", "wakeup": "60",
          "maxproc": "1", "command": "pickup"}  # fmt: skip


def screen(rbl=(), **overrides):
    errors: list[str] = []
    result = check_screen({**SETTINGS, **overrides}, list(rbl), errors)
    return result, errors


def problems(rbl=(), **overrides):
    return screen(rbl, **overrides)[1]


def test_defaults_put_postscreen_on_port_25_with_its_helpers_in_front_of_smtpd():
    s, errors = screen()
    assert errors == []
    master = s.master([SMTP, PICKUP], chroot=True)
    assert [(m["name"], m["type"], m["command"], m["maxproc"], m["chroot"]) for m in master] == [
        ("smtp", "inet", "postscreen", "1", "y"),
        ("smtpd", "pass", "smtpd", "-", "y"),
        ("dnsblog", "unix", "dnsblog", "0", "y"),
        ("tlsproxy", "unix", "tlsproxy", "0", "y"),
        ("pickup", "unix", "pickup", "1", "y"),
    ]
    assert s.main() == {
        "smtpd_client_connection_rate_limit": 60,
        "smtpd_client_message_rate_limit": 100,
        "smtpd_recipient_limit": 100,
        "anvil_rate_time_unit": "60s",
        "postscreen_access_list": ["permit_mynetworks"],
        "postscreen_greet_action": "enforce",
        "postscreen_dnsbl_action": "enforce",
        "postscreen_dnsbl_threshold": 1,
    }


def test_without_chroot_the_helpers_run_outside_it_too():
    s, errors = screen()
    assert errors == []
    master = s.master([{**SMTP, "chroot": "n"}], chroot=False)
    assert {m["chroot"] for m in master} == {"n"}


def test_off_leaves_smtpd_on_port_25_and_keeps_the_rate_limits():
    s, errors = screen(postfix_postscreen_enabled=False)
    assert errors == []
    assert s.master([SMTP, PICKUP], chroot=True) == [SMTP, PICKUP]
    main = s.main()
    assert not any(key.startswith("postscreen_") for key in main)
    assert main["smtpd_client_connection_rate_limit"] == 60


def test_sites_with_weights_filters_and_the_rbl_zones_at_the_threshold():
    s, errors = screen(
        ["rbl.example.org", "zen.spamhaus.org"],
        postfix_postscreen_dnsbl_threshold=3,
        postfix_postscreen_dnsbl_sites=[
            "bl.spamcop.net",
            {"zone": "zen.spamhaus.org", "filter": "127.0.0.[2..11]", "weight": 3},
            {"zone": "list.dnswl.org", "filter": "127.0.[0..255].[1;2;3]", "weight": -5},
            {"zone": "b.barracudacentral.org", "weight": "2"},
        ],
    )
    assert errors == []
    assert s.main()["postscreen_dnsbl_sites"] == [
        "bl.spamcop.net*1",
        "zen.spamhaus.org=127.0.0.[2..11]*3",
        "list.dnswl.org=127.0.[0..255].[1;2;3]*-5",
        "b.barracudacentral.org*2",
        # postfix_rbl_zones: each refuses on its own; zen.spamhaus.org without a filter is one more list.
        "rbl.example.org*3",
        "zen.spamhaus.org*3",
    ]
    assert s.main()["postscreen_dnsbl_threshold"] == 3


def test_an_rbl_zone_already_listed_without_a_filter_is_not_listed_twice():
    s, errors = screen(["bl.spamcop.net"], postfix_postscreen_dnsbl_sites=[{"zone": "bl.spamcop.net", "weight": 2}])
    assert errors == []
    assert s.main()["postscreen_dnsbl_sites"] == ["bl.spamcop.net*2"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"postfix_postscreen_dnsbl_sites": ["not a domain"]},
         "postfix_postscreen_dnsbl_sites[0].zone: 'not a domain' is not a DNS list zone: label 'not a domain' may "
         "contain only letters, digits and hyphens"),
        ({"postfix_postscreen_dnsbl_sites": [{"zone": "zen.spamhaus.org\npostscreen_access_list=static:permit"}]},
         "postfix_postscreen_dnsbl_sites[0].zone: 'zen.spamhaus.org\\npostscreen_access_list=static:permit' is not a "
         "DNS list zone"),
        ({"postfix_postscreen_dnsbl_sites": ["localhost"]},
         "postfix_postscreen_dnsbl_sites[0].zone: 'localhost' is not a DNS list zone: a DNS list zone has two labels"),
        ({"postfix_postscreen_dnsbl_sites": [{"zone": "zen.spamhaus.org", "weight": "heavy"}]},
         "postfix_postscreen_dnsbl_sites[0].weight: must be a whole number, got 'heavy' (str)"),
        ({"postfix_postscreen_dnsbl_sites": [{"zone": "zen.spamhaus.org", "weight": 1.5}]},
         "postfix_postscreen_dnsbl_sites[0].weight: must be a whole number, got 1.5 (float)"),
        ({"postfix_postscreen_dnsbl_sites": [{"zone": "zen.spamhaus.org", "weight": True}]},
         "postfix_postscreen_dnsbl_sites[0].weight: must be a whole number, got True (bool)"),
        ({"postfix_postscreen_dnsbl_sites": [{"zone": "zen.spamhaus.org", "weight": 0}]},
         "postfix_postscreen_dnsbl_sites[0].weight: 0 would make the list count for nothing"),
        ({"postfix_postscreen_dnsbl_sites": [{"zone": "zen.spamhaus.org", "weight": 500}]},
         "postfix_postscreen_dnsbl_sites[0].weight: must be between -100 and 100, got 500"),
        ({"postfix_postscreen_dnsbl_sites": [{"zone": "zen.spamhaus.org", "filter": "127.0.0.2 permit"}]},
         "postfix_postscreen_dnsbl_sites[0].filter: '127.0.0.2 permit' is not an answer filter"),
        ({"postfix_postscreen_dnsbl_sites": [{"zone": "zen.spamhaus.org", "filter": "127.0.0"}]},
         "postfix_postscreen_dnsbl_sites[0].filter: '127.0.0' is not an answer filter"),
        ({"postfix_postscreen_dnsbl_sites": [{"zone": "zen.spamhaus.org", "wieght": 2}]},
         "postfix_postscreen_dnsbl_sites[0]: unknown key(s) wieght (zone, weight, filter)"),
        ({"postfix_postscreen_dnsbl_sites": [["zen.spamhaus.org"]]},
         "postfix_postscreen_dnsbl_sites[0]: must be a zone or a mapping with zone, weight and filter, got list"),
        ({"postfix_postscreen_dnsbl_sites": "zen.spamhaus.org"},
         "postfix_postscreen_dnsbl_sites: must be a list, got str"),
        ({"postfix_postscreen_dnsbl_sites": ["zen.spamhaus.org", {"zone": "ZEN.spamhaus.org", "weight": 2}]},
         "postfix_postscreen_dnsbl_sites[1]: zen.spamhaus.org is listed twice (also postfix_postscreen_dnsbl_sites[0])"),
        ({"postfix_postscreen_dnsbl_sites": [{"zone": "list.dnswl.org", "weight": -5}]},
         "postfix_postscreen_dnsbl_sites: every weight is negative, so no list can refuse a client"),
        ({"postfix_postscreen_dnsbl_threshold": 0},
         "postfix_postscreen_dnsbl_threshold: must be between 1 and 1000, got 0"),
        ({"postfix_postscreen_enabled": "yes"}, "postfix_postscreen_enabled: must be true or false, got 'yes'"),
        ({"postfix_client_connection_rate_limit": -1},
         "postfix_client_connection_rate_limit: must be between 0 and 100000, got -1"),
        ({"postfix_client_message_rate_limit": "lots"},
         "postfix_client_message_rate_limit: must be a whole number, got 'lots' (str)"),
        ({"postfix_recipient_limit": 0}, "postfix_recipient_limit: must be between 1 and 100000, got 0"),
        ({"postfix_anvil_rate_time_unit": 5}, "postfix_anvil_rate_time_unit: must be between 10 and 3600, got 5"),
        ({"postfix_anvil_rate_time_unit": "60s"},
         "postfix_anvil_rate_time_unit: must be a whole number, got '60s' (str)"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_naming_the_variable_and_the_entry(overrides, message):
    found = problems(**overrides)
    assert any(problem.startswith(message) for problem in found), found


def test_check_zone_strips_and_lowers_and_refuses_what_is_not_a_zone():
    errors: list[str] = []
    assert check_zone(" Zen.Spamhaus.ORG ", "z", errors) == "zen.spamhaus.org"
    assert check_zone("127.0.0.1", "z", errors) is None
    assert check_zone(None, "z", errors) is None
    assert errors == [
        "z: '127.0.0.1' is not a DNS list zone: the last label is numeric (an IP address is not a domain)",
        "z: None is not a DNS list zone: it is a null, not a string",
    ]
