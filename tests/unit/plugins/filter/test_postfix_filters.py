# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter.postfix import (
    FilterModule,
    postfix_cidrs,
    postfix_map,
    postfix_restrictions,
    postfix_role_fragment,
    postfix_role_tables,
    postfix_table,
    postfix_value,
)


def test_filters_are_registered():
    assert sorted(FilterModule().filters()) == [
        "postfix_cidrs",
        "postfix_fragment_name",
        "postfix_map",
        "postfix_restrictions",
        "postfix_role_fragment",
        "postfix_role_tables",
        "postfix_table",
        "postfix_value",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "yes"), (False, "no"), (25, "25"), (["a", "b"], "a, b"), (None, ""), ("x", "x")],
)
def test_postfix_value(value, expected):
    assert postfix_value(value) == expected


def test_postfix_value_error_names_param():
    with pytest.raises(
        AnsibleFilterError, match=r"postfix_value: parameter smtpd_banner: value .* contains a line break"
    ):
        postfix_value("a\nb", "smtpd_banner")
    with pytest.raises(AnsibleFilterError, match=r"postfix_value: cannot render a value of type dict"):
        postfix_value({"a": 1})


def test_postfix_table():
    assert postfix_table("/etc/postfix/access") == "hash:/etc/postfix/access"
    assert postfix_table("/etc/postfix/header_checks", "regexp") == "regexp:/etc/postfix/header_checks"
    with pytest.raises(
        AnsibleFilterError, match=r"postfix_table: parameter alias_maps: invalid lookup table type 'Hash'"
    ):
        postfix_table("/etc/aliases", "Hash", "alias_maps")


def test_postfix_cidrs():
    assert postfix_cidrs(["127.0.0.0/8", "::1/128"]) == ["127.0.0.0/8", "[::1]/128"]
    with pytest.raises(
        AnsibleFilterError, match=r"postfix_cidrs: parameter mynetworks: '192.168.1.5/24' is not a valid network"
    ):
        postfix_cidrs(["192.168.1.5/24"])
    with pytest.raises(AnsibleFilterError, match=r"parameter permit_mx_backup_networks: '10.0.0.0/33'"):
        postfix_cidrs("10.0.0.0/33", "permit_mx_backup_networks")


def test_postfix_restrictions():
    items = ["permit_mynetworks", "reject_unauth_destination", "check_policy_service  unix:private/policy-spf"]
    assert postfix_restrictions(items) == [
        "permit_mynetworks",
        "reject_unauth_destination",
        "check_policy_service unix:private/policy-spf",
    ]
    assert postfix_restrictions(["my_class"], "smtpd_client_restrictions", ["my_class"]) == ["my_class"]
    with pytest.raises(
        AnsibleFilterError,
        match=r"postfix_restrictions: parameter smtpd_helo_restrictions: unknown restriction 'permit_bogus'",
    ):
        postfix_restrictions(["permit_bogus"], "smtpd_helo_restrictions")


def test_postfix_map_renders_pairs_in_order_and_mappings():
    pairs = [["b@example.org", "example.org/b/"], ["a@example.org", ["a@example.org", "x@example.net"]]]
    assert postfix_map(pairs) == "b@example.org example.org/b/\na@example.org a@example.org, x@example.net\n"
    assert (
        postfix_map({"example.org": "REJECT", "partner.example": True}) == "example.org REJECT\npartner.example yes\n"
    )
    assert postfix_map([]) == ""


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("a b", "must be a mapping or a list"),
        ([["a"]], r"table entry 0: expected a \[key, value\] pair"),
        ([["a b", "x"]], "table entry 0: key 'a b' is empty, contains whitespace"),
        ([["", "x"]], "key '' is empty"),
        ([["#a", "x"]], "starts with '#'"),
        ([["ok", "x"], ["a", ""]], r"table entry 1 \(a\): the value is empty"),
        ([["a", "x\ny"]], "line break"),
    ],
)
def test_postfix_map_refuses_bad_entries(entries, message):
    with pytest.raises(AnsibleFilterError, match=r"^postfix_map: .*" + message):
        postfix_map(entries)


def test_postfix_role_filters_wrap_the_role_errors():
    """The role's own filters are tested in test_postfix_role.py; here only their wrapping."""
    with pytest.raises(AnsibleFilterError, match=r"^postfix_role_fragment: the settings must be a mapping"):
        postfix_role_fragment("nope")
    with pytest.raises(AnsibleFilterError, match=r"^postfix_role_tables: the settings lack postfix_config_dir"):
        postfix_role_tables({}, "#\n", secrets=True)


def test_postfix_fragment_name_is_the_one_constant_of_each_fragment():
    from ansible_collections.postmaster.mailserver.plugins.filter.postfix import postfix_fragment_name
    from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis.amavis_settings import FRAGMENT
    from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_role import FRAGMENT_NAME

    assert postfix_fragment_name("amavis") == FRAGMENT == "40-amavis.json"
    assert postfix_fragment_name("postfix") == FRAGMENT_NAME == "10-postfix.json"
    assert postfix_fragment_name("saslauthd") == "30-saslauthd-sasl.json"
    assert postfix_fragment_name("dkim") == "45-dkim.json"
    with pytest.raises(
        AnsibleFilterError, match=r"postfix_fragment_name: no fragment for 'opendmarc' \(known: postfix,"
    ):
        postfix_fragment_name("opendmarc")
