# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_restrictions import (
    restriction_params,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import PostfixValidationError
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_validate import (
    normalize_main,
    parse_postconf_warnings,
    validate_main,
)

SUPPORTED = ["btree", "cidr", "environ", "fail", "hash", "inline", "internal", "memcache", "nis", "pcre",
             "pipemap", "proxy", "randmap", "regexp", "socketmap", "static", "tcp", "texthash", "unionmap", "unix"]  # fmt: skip


BASE = {
    "myhostname": "mail.example.org",
    "mydestination": ["$myhostname", "localhost"],
    "mynetworks": ["127.0.0.0/8", "::1/128"],
    "alias_maps": "hash:/etc/aliases",
    "alias_database": "hash:/etc/aliases-output",
    "smtp_tls_session_cache_database": "btree:${data_directory}/smtp_scache",
    "data_directory": "/var/lib/postfix",
    "smtpd_relay_restrictions": ["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"],
    "smtpd_recipient_restrictions": [
        "permit_mynetworks",
        "check_recipient_access hash:/etc/postfix/recipient_access",
        "reject_unauth_destination",
        "check_policy_service unix:private/policy-spf",
    ],
    "smtpd_restriction_classes": "sender_policy",
    "sender_policy": ["check_sender_access pcre:/etc/postfix/senders.pcre", "permit"],
    "smtpd_client_restrictions": ["sender_policy"],
    "mua_client_restrictions": ["permit_sasl_authenticated", "reject"],
    "virtual_transport": "lmtp:unix:private/dovecot-lmtp",
    "smtpd_milters": "unix:/run/opendkim/opendkim.sock, inet:localhost:8891",
    "header_checks": "regexp:$config_directory/header_checks",
    "smtpd_tls_auth_only": True,
    "message_size_limit": 52428800,
    "tls_random_source": "dev:/dev/urandom",
    "local_recipient_maps": "proxy:unix:passwd.byname $alias_maps",
}
FILES = {"/etc/aliases.db", "/etc/postfix/recipient_access.db", "/etc/postfix/senders.pcre"}


def test_validate_main_ok_with_warnings():
    warnings = validate_main(BASE, SUPPORTED, FILES.__contains__)
    assert warnings == [
        "parameter header_checks: cannot check the file of 'regexp:$config_directory/header_checks' (unexpanded $parameter)",
        "parameter smtpd_recipient_restrictions: 'check_recipient_access hash:/etc/postfix/recipient_access' (entry 2) "
        "comes before 'check_policy_service unix:private/policy-spf': the mail it permits skips the SPF policy",
    ]
    main = dict(BASE, config_directory="/etc/postfix")
    with pytest.raises(
        PostfixValidationError, match="parameter header_checks: lookup table 'regexp:/etc/postfix/header_checks' needs"
    ):
        validate_main(main, SUPPORTED, FILES.__contains__)
    assert validate_main(main, None, (FILES | {"/etc/postfix/header_checks"}).__contains__) == warnings[1:]


def test_validate_main_collects_every_bad_parameter():
    main = dict(
        BASE,
        mynetworks=["127.0.0.0/8", "10.0.0.0/33"],
        smtpd_client_restrictions=["permit_bogus_thing"],
        alias_maps="lmdb:/etc/aliases",
        transport_maps="hash:/etc/postfix/transport",
        sender_policy=["check_sender_access"],
        bad_type={"a": 1},
        bad_list=["a", 1],
        smtpd_helo_restrictions=["hash:/etc/postfix/helo"],
        mua_sender_restrictions=["reject_sender_login_mismatch", "permit_bogus"],
    )
    main["bad name"] = "x"
    with pytest.raises(PostfixValidationError) as excinfo:
        validate_main(main, SUPPORTED, FILES.__contains__)
    message = str(excinfo.value)
    for fragment in (
        "parameter mynetworks: '10.0.0.0/33'",
        "parameter smtpd_client_restrictions: unknown restriction 'permit_bogus_thing'",
        "parameter alias_maps: lookup table type 'lmdb'",
        "parameter transport_maps: lookup table 'hash:/etc/postfix/transport' needs /etc/postfix/transport.db",
        "parameter sender_policy: restriction 'check_sender_access' requires",
        "parameter bad_type: value must be a string",
        "parameter bad_list: list items must be strings",
        "parameter 'bad name': not a valid parameter name",
        "parameter smtpd_helo_restrictions: lookup table 'hash:/etc/postfix/helo' needs",
        "parameter mua_sender_restrictions: unknown restriction 'permit_bogus'",
    ):
        assert fragment in message
    assert message.startswith("invalid Postfix configuration:\n- ")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"smtpd_restriction_classes": "sender_policy, missing_class"}, "restriction class 'missing_class' has no definition"),
        ({"smtpd_restriction_classes": "permit", "permit": "x"}, "'permit' is a built-in restriction name"),
        ({"smtpd_relay_restrictions": "", "smtpd_recipient_restrictions": "permit_mynetworks"}, "Postfix would be an open relay"),
        ({"myhostname": "two\nlines"}, "parameter myhostname: value .* contains a line break"),
        ({"smtpd_recipient_restrictions": "check_client_access lmdb:/x, reject_unauth_destination"},
         "parameter smtpd_recipient_restrictions: lookup table type 'lmdb'"),
    ],
)  # fmt: skip
def test_validate_main_errors(extra, message):
    with pytest.raises(PostfixValidationError, match=message):
        validate_main(dict(BASE, **extra), SUPPORTED, FILES.__contains__)


def test_restriction_params_and_normalize_main():
    assert restriction_params(BASE) == [
        "smtpd_relay_restrictions",
        "smtpd_recipient_restrictions",
        "sender_policy",
        "smtpd_client_restrictions",
        "mua_client_restrictions",
    ]
    normalized = normalize_main({"mynetworks": ["127.0.0.0/8", "::1/128"], "other": "::1/128"})
    assert normalized == {"mynetworks": ["127.0.0.0/8", "[::1]/128"], "other": "::1/128"}
    assert normalize_main({"mynetworks": "10.0.0.0/33"}) == {"mynetworks": "10.0.0.0/33"}


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (None, []),
        ("", []),
        (
            "postconf: warning: /tmp/c/main.cf: unused parameter: totally_unknown_param=1\n"
            "some other line\n"
            "postconf: warning: /tmp/c/main.cf: overriding earlier entry: a=1\n",
            [
                "postconf: warning: /tmp/c/main.cf: unused parameter: totally_unknown_param=1",
                "postconf: warning: /tmp/c/main.cf: overriding earlier entry: a=1",
            ],
        ),
        (b"postfix/postfix-script: warning: not owned by root: /x\n", ["postfix/postfix-script: warning: not owned by root: /x"]),
        ("warning: bare\n", ["warning: bare"]),
        ("postconf: fatal: no warning here\n", []),
    ],
)  # fmt: skip
def test_parse_postconf_warnings(stderr, expected):
    assert parse_postconf_warnings(stderr) == expected
