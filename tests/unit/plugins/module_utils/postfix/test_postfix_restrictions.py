# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_restrictions import (
    RESTRICTIONS,
    Restriction,
    group_restrictions,
    parse_restrictions,
    restriction_names,
    validate_relay_protection,
    validate_restrictions,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import PostfixValidationError


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["permit_mynetworks", "reject_unauth_destination"], ["permit_mynetworks", "reject_unauth_destination"]),
        ("permit_mynetworks,reject_unauth_destination", ["permit_mynetworks", "reject_unauth_destination"]),
        ("permit_mynetworks reject_unauth_destination", ["permit_mynetworks", "reject_unauth_destination"]),
        (["reject_rbl_client zen.spamhaus.org"], ["reject_rbl_client zen.spamhaus.org"]),
        (["reject_rbl_client   zen.spamhaus.org=127.0.0.[2..11]"], ["reject_rbl_client zen.spamhaus.org=127.0.0.[2..11]"]),
        (["permit_dnswl_client list.dnswl.org=127.0.[0..255].[1..3]"], ["permit_dnswl_client list.dnswl.org=127.0.[0..255].[1..3]"]),
        (["reject_rhsbl_sender dbl.spamhaus.org"], ["reject_rhsbl_sender dbl.spamhaus.org"]),
        (["check_client_access hash:/etc/postfix/access"], ["check_client_access hash:/etc/postfix/access"]),
        (["check_sender_access inline:{ a=OK, b=REJECT }"], ["check_sender_access inline:{ a=OK, b=REJECT }"]),
        (["check_policy_service unix:private/policy-spf"], ["check_policy_service unix:private/policy-spf"]),
        (["check_policy_service inet:127.0.0.1:10023"], ["check_policy_service inet:127.0.0.1:10023"]),
        (["check_policy_service inet:[::1]:10023"], ["check_policy_service inet:[::1]:10023"]),
        (["sleep 10", "reject_unauth_pipelining"], ["sleep 10", "reject_unauth_pipelining"]),
        (["warn_if_reject reject_unknown_helo_hostname"], ["warn_if_reject", "reject_unknown_helo_hostname"]),
        (["warn_if_reject reject", "permit"], ["warn_if_reject", "reject", "permit"]),
        (["hash:/etc/postfix/access"], ["hash:/etc/postfix/access"]),
        (["reject_invalid_hostname", "reject_unknown_hostname", "reject_non_fqdn_hostname"],
         ["reject_invalid_hostname", "reject_unknown_hostname", "reject_non_fqdn_hostname"]),
        (["permit_mynetworks", "permit"], ["permit_mynetworks", "permit"]),
        ([], []),
    ],
)  # fmt: skip
def test_validate_restrictions_ok(items, expected):
    assert validate_restrictions("smtpd_recipient_restrictions", items) == expected


def test_restriction_table_covers_the_documented_names():
    for name in (
        "permit_sasl_authenticated", "permit_tls_clientcerts", "permit_tls_all_clientcerts", "check_ccert_access",
        "check_sasl_access", "check_reverse_client_hostname_access", "reject_unverified_sender",
        "reject_unverified_recipient", "reject_unlisted_sender", "reject_unlisted_recipient",
        "reject_known_sender_login_mismatch", "reject_sender_login_mismatch",
        "reject_authenticated_sender_login_mismatch", "reject_unauthenticated_sender_login_mismatch",
        "reject_unknown_client_hostname", "reject_unknown_reverse_client_hostname", "reject_non_fqdn_sender",
        "reject_invalid_helo_hostname", "defer_if_permit", "defer_if_reject", "reject_multi_recipient_bounce",
        "reject_plaintext_session", "permit_rhswl_client", "check_helo_mx_access", "check_sender_ns_access",
        "check_recipient_a_access", "check_etrn_access", "reject_rhsbl_reverse_client", "permit_auth_destination",
    ):  # fmt: skip
        assert name in RESTRICTIONS


def test_validate_restrictions_accepts_declared_classes():
    assert validate_restrictions(
        "smtpd_recipient_restrictions", ["permit_mynetworks", "sender_policy"], ["sender_policy"]
    ) == [
        "permit_mynetworks",
        "sender_policy",
    ]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["permit_bogus_thing"], r"unknown restriction 'permit_bogus_thing'"),
        (["permit_mynetworks zen.spamhaus.org"], r"unexpected argument 'zen.spamhaus.org' after 'permit_mynetworks'"),
        (["reject_rbl_client"], r"restriction 'reject_rbl_client' requires a DNS list domain"),
        (["reject_rbl_client", "permit_mynetworks"], r"'reject_rbl_client' requires a DNS list domain"),
        (["check_client_access"], r"'check_client_access' requires a type:table lookup table"),
        (["check_client_access", "my_class"], r"'check_client_access' requires a type:table"),
        (["check_client_access /etc/postfix/access"], r"restriction 'check_client_access /etc/postfix/access': argument must be a type:table"),
        (["check_policy_service"], r"'check_policy_service' requires a policy server endpoint"),
        (["check_policy_service private/policy"], r"argument must be a policy server endpoint"),
        (["check_policy_service inet:localhost"], r"argument must be a policy server endpoint"),
        (["reject_rbl_client not_a..domain"], r"'not_a..domain' is not a valid DNS list domain"),
        (["reject_rbl_client localhost"], r"'localhost' is not a valid DNS list domain"),
        (["reject_rbl_client zen.spamhaus.org="], r"'' is not a valid reply address pattern"),
        (["reject_rbl_client zen.spamhaus.org=abc"], r"'abc' is not a valid reply address pattern"),
        (["sleep"], r"'sleep' requires a number of seconds"),
        (["sleep ten"], r"restriction 'sleep ten': argument must be a number of seconds"),
        (["warn_if_reject"], r"'warn_if_reject' must be followed by a restriction"),
        (["warn_if_reject zen.spamhaus.org"], r"'warn_if_reject' must be followed by a restriction"),
        (["permit", "reject_unauth_destination"], r"'permit' is not the last restriction; the entries after it are never evaluated: reject_unauth_destination"),
        (["permit_mynetworks", "reject", "check_policy_service unix:private/x"], r"'reject' is not the last restriction.*check_policy_service unix:private/x"),
        (["defer", "permit"], r"'defer' is not the last restriction"),
        (["http://example.org"], r"unknown restriction 'http://example.org'"),
        ([{"a": 1}], r"cannot render"),
    ],
)  # fmt: skip
def test_validate_restrictions_errors_name_param(items, message):
    with pytest.raises(PostfixValidationError, match=r"^parameter smtpd_client_restrictions: .*" + message):
        validate_restrictions("smtpd_client_restrictions", items, ["my_class"])


def test_parse_restrictions_returns_entries():
    assert parse_restrictions("p", "check_client_access hash:/x, permit") == [
        Restriction("check_client_access", "hash:/x"),
        Restriction("permit"),
    ]
    assert str(Restriction("permit")) == "permit"


def test_group_and_names_do_not_validate():
    value = "permit_mynetworks, check_policy_service unix:private/x, bogus, reject_rbl_client"
    assert group_restrictions(value) == [
        "permit_mynetworks",
        "check_policy_service unix:private/x",
        "bogus",
        "reject_rbl_client",
    ]
    assert restriction_names(value) == ["permit_mynetworks", "check_policy_service", "bogus", "reject_rbl_client"]


@pytest.mark.parametrize(
    "main",
    [
        {},  # Postfix's default smtpd_relay_restrictions has defer_unauth_destination
        {"smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination"},
        {"smtpd_relay_restrictions": "", "smtpd_recipient_restrictions": ["permit_mynetworks", "reject_unauth_destination"]},
        {"smtpd_relay_restrictions": ["permit_mynetworks", "defer_unauth_destination"]},
        {"smtpd_relay_restrictions": ["permit_sasl_authenticated", "reject"]},
        {"smtpd_relay_restrictions": "$my_relay", "my_relay": "reject_unauth_destination"},
        {"smtpd_relay_restrictions": ["check_client_access hash:/x", "reject_unauth_destination"]},
    ],
)  # fmt: skip
def test_validate_relay_protection_ok(main):
    validate_relay_protection(main)


@pytest.mark.parametrize(
    "main",
    [
        {"smtpd_relay_restrictions": ""},
        {"smtpd_relay_restrictions": "permit_mynetworks", "smtpd_recipient_restrictions": "permit_mynetworks"},
        {"smtpd_relay_restrictions": "check_policy_service unix:private/reject_unauth_destination"},
    ],
)
def test_validate_relay_protection_errors(main):
    with pytest.raises(PostfixValidationError, match="smtpd_relay_restrictions and smtpd_recipient_restrictions"):
        validate_relay_protection(main)
