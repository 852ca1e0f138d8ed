# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix_validate import (
    RESTRICTIONS,
    PostfixValidationError,
    Restriction,
    TableRef,
    expand_value,
    find_table_refs,
    group_restrictions,
    normalize_main,
    parse_postconf_warnings,
    parse_restrictions,
    restriction_names,
    restriction_params,
    table_files,
    validate_cidr_list,
    validate_main,
    validate_relay_protection,
    validate_restrictions,
    validate_table_refs,
)

SUPPORTED = ["btree", "cidr", "environ", "fail", "hash", "inline", "internal", "memcache", "nis", "pcre",
             "pipemap", "proxy", "randmap", "regexp", "socketmap", "static", "tcp", "texthash", "unionmap", "unix"]  # fmt: skip


# -- CIDR ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["127.0.0.0/8"], ["127.0.0.0/8"]),
        ("127.0.0.0/8, 10.0.0.1 192.168.0.0/16", ["127.0.0.0/8", "10.0.0.1", "192.168.0.0/16"]),
        (["::1/128"], ["[::1]/128"]),
        (["[::1]/128"], ["[::1]/128"]),
        (["[::1]"], ["[::1]"]),
        (["::1"], ["[::1]"]),
        (["2001:DB8::/32"], ["[2001:db8::]/32"]),
        (["[2001:0db8:0000::]/32"], ["[2001:db8::]/32"]),
        (["[::ffff:127.0.0.0]/104"], ["[::ffff:127.0.0.0]/104"]),
        (["::ffff:10.1.2.3"], ["[::ffff:10.1.2.3]"]),
        (["fe80::/10"], ["[fe80::]/10"]),
        (["0.0.0.0/0"], ["0.0.0.0/0"]),
        (["!192.168.1.0/24", "192.168.0.0/16"], ["!192.168.1.0/24", "192.168.0.0/16"]),
        (["!::1"], ["![::1]"]),
        (["hash:/etc/postfix/network_table"], ["hash:/etc/postfix/network_table"]),
        (["cidr:/etc/postfix/nets.cidr"], ["cidr:/etc/postfix/nets.cidr"]),
        (["$config_directory/mynetworks"], ["$config_directory/mynetworks"]),
        (["/etc/postfix/network_table"], ["/etc/postfix/network_table"]),
        ([], []),
        (None, []),
    ],
)
def test_validate_cidr_list_ok(items, expected):
    assert validate_cidr_list("mynetworks", items) == expected


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            "192.168.1.5/24",
            r"'192.168.1.5/24' is not a valid network: host bits are set \(did you mean 192.168.1.0/24\?\)",
        ),
        ("10.0.0.0/33", r"'10.0.0.0/33' is not a valid network: prefix /33 is longer than 32 bits"),
        ("::1/129", r"prefix /129 is longer than 128 bits"),
        ("[2001:db8::1]/32", r"host bits are set"),
        ("10.0.0.0/abc", r"'10.0.0.0/abc' has an invalid prefix length"),
        ("10.0.0.0/255.0.0.0", r"has an invalid prefix length"),
        ("10.0.0.0/", r"has an invalid prefix length"),
        ("garbage", r"'garbage' is not an IP address or network"),
        ("300.1.1.1", r"'300.1.1.1' is not an IP address or network"),
        ("[10.0.0.0]/8", r"only IPv6 addresses are written in \[brackets\]"),
        ("foo:/etc/x", r"'foo:/etc/x' is not an IP address or network"),
        ("fe80::zz/64", r"is not an IP address or network"),
        ("!", r"'!' is not an IP address or network"),
        ("example.com", r"'example.com' is not an IP address"),
    ],
)
def test_validate_cidr_list_errors_name_param_and_item(item, message):
    with pytest.raises(PostfixValidationError, match=r"^parameter mynetworks: .*" + message):
        validate_cidr_list("mynetworks", ["127.0.0.0/8", item])


def test_validate_cidr_list_bad_value_type():
    with pytest.raises(PostfixValidationError, match="parameter mynetworks: cannot render"):
        validate_cidr_list("mynetworks", [{"a": 1}])


# -- restrictions ---------------------------------------------------------------


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


# -- lookup tables --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "strict", "expected"),
    [
        ("hash:/etc/aliases", False, ["hash:/etc/aliases"]),
        ("hash:/etc/aliases, lmdb:/etc/x", False, ["hash:/etc/aliases", "lmdb:/etc/x"]),
        ("proxy:hash:/x", False, ["proxy:hash:/x", "hash:/x"]),
        ("proxy:unix:passwd.byname $alias_maps", False, ["proxy:unix:passwd.byname", "unix:passwd.byname"]),
        ("unionmap:{hash:/a, cidr:/b}", False, ["unionmap:{hash:/a, cidr:/b}", "hash:/a", "cidr:/b"]),
        ("pipemap:{ proxy:hash:/a, regexp:/b }", False, ["pipemap:{ proxy:hash:/a, regexp:/b }", "proxy:hash:/a", "hash:/a", "regexp:/b"]),
        ("unionmap:/not-braced", False, ["unionmap:/not-braced"]),
        ("randmap:{a, b}", False, ["randmap:{a, b}"]),
        ("inline:{ a=b, c=d }", False, ["inline:{ a=b, c=d }"]),
        ("static:OK", False, ["static:OK"]),
        ("lmtp:unix:private/dovecot-lmtp", False, []),
        ("inet:127.0.0.1:10023", False, []),
        ("foo:/etc/x", False, []),
        ("foo:/etc/x", True, ["foo:/etc/x"]),
        ("check_policy_service unix:private/policy, check_client_access hash:/x", False, ["hash:/x"]),
        ("reject_rbl_client zen.spamhaus.org, sleep 1", True, []),
        ("$myhostname, localhost", True, []),
        (["texthash:/a", "pcre:/b"], False, ["texthash:/a", "pcre:/b"]),
    ],
)  # fmt: skip
def test_find_table_refs(value, strict, expected):
    assert [str(ref) for ref in find_table_refs(value, strict=strict)] == expected


@pytest.mark.parametrize(
    ("ref", "files"),
    [
        (TableRef("hash", "/x"), ["/x.db"]),
        (TableRef("btree", "/x"), ["/x.db"]),
        (TableRef("dbm", "/x"), ["/x.dir", "/x.pag"]),
        (TableRef("lmdb", "/x"), ["/x.lmdb"]),
        (TableRef("cdb", "/x"), ["/x.cdb"]),
        (TableRef("regexp", "/x"), ["/x"]),
        (TableRef("pcre", "/x"), ["/x"]),
        (TableRef("cidr", "/x"), ["/x"]),
        (TableRef("texthash", "/x"), ["/x"]),
        (TableRef("ldap", "/etc/postfix/ldap.cf"), ["/etc/postfix/ldap.cf"]),
        (TableRef("ldap", "ldapsource"), []),
        (TableRef("proxy", "hash:/x"), []),
        (TableRef("static", "OK"), []),
        (TableRef("unionmap", "{hash:/x}"), []),
        (TableRef("tcp", "localhost:1"), []),
    ],
)
def test_table_files(ref, files):
    assert table_files(ref) == files


def test_validate_table_refs_ok_and_checks_existence():
    present = {"/etc/postfix/access.db", "/etc/postfix/checks.pcre", "/x.db"}
    assert (
        validate_table_refs(
            "p", "hash:/etc/postfix/access, pcre:/etc/postfix/checks.pcre", SUPPORTED, present.__contains__
        )
        == []
    )
    assert validate_table_refs("p", "proxy:hash:/x static:OK inline:{a=b}", SUPPORTED, present.__contains__) == []
    assert validate_table_refs("p", "hash:/missing", None, present.__contains__, check_files=False) == []
    assert validate_table_refs("p", "lmdb:/whatever", None, lambda path: True) == []


def test_validate_table_refs_warns_on_unexpanded_names():
    warnings = validate_table_refs("p", "hash:$config_directory/access", SUPPORTED, lambda path: False)
    assert warnings == ["parameter p: cannot check the file of 'hash:$config_directory/access' (unexpanded $parameter)"]


@pytest.mark.parametrize(
    ("value", "strict", "message"),
    [
        ("lmdb:/etc/aliases", False,
         r"parameter alias_maps: lookup table type 'lmdb' \(in 'lmdb:/etc/aliases'\) is not supported by this Postfix; "
         r"supported types: btree, cidr,"),
        ("proxy:cdb:/etc/aliases", False, r"type 'cdb' \(in 'cdb:/etc/aliases'\) is not supported"),
        ("foo:/etc/x", True, r"type 'foo' \(in 'foo:/etc/x'\) is not supported"),
        ("hash:/etc/aliases", False, r"parameter alias_maps: lookup table 'hash:/etc/aliases' needs /etc/aliases.db, which does not exist \(run postmap"),
        ("regexp:/etc/postfix/header_checks", False, r"'regexp:/etc/postfix/header_checks' needs /etc/postfix/header_checks, which does not exist$"),
        ("hash:aliases", False, r"lookup table 'hash:aliases' must use an absolute path"),
        ("unionmap:{hash:/a}", False, r"'hash:/a' needs /a.db"),
    ],
)  # fmt: skip
def test_validate_table_refs_errors(value, strict, message):
    with pytest.raises(PostfixValidationError, match=message):
        validate_table_refs("alias_maps", value, SUPPORTED, lambda path: False, strict=strict)


# -- whole main.cf --------------------------------------------------------------


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
        "parameter header_checks: cannot check the file of 'regexp:$config_directory/header_checks' (unexpanded $parameter)"
    ]
    main = dict(BASE, config_directory="/etc/postfix")
    with pytest.raises(
        PostfixValidationError, match="parameter header_checks: lookup table 'regexp:/etc/postfix/header_checks' needs"
    ):
        validate_main(main, SUPPORTED, FILES.__contains__)
    assert validate_main(main, None, (FILES | {"/etc/postfix/header_checks"}).__contains__) == []


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


def test_expand_value():
    main = {"a": "$b/x", "b": "${c}", "c": "/etc", "list": ["1", "2"]}
    assert expand_value("$a and $(c) and $list and $unknown", main) == "/etc/x and /etc and 1, 2 and $unknown"
    loop = {"a": "$a$a"}
    assert "$a" in expand_value("$a", loop, depth=3)


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
