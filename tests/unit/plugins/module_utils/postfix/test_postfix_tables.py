# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import PostfixValidationError
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_tables import (
    TableRef,
    find_table_refs,
    table_check_mode,
    table_files,
    validate_table_refs,
)

SUPPORTED = ["btree", "cidr", "environ", "fail", "hash", "inline", "internal", "memcache", "nis", "pcre",
             "pipemap", "proxy", "randmap", "regexp", "socketmap", "static", "tcp", "texthash", "unionmap", "unix"]  # fmt: skip


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


@pytest.mark.parametrize(
    ("param", "mode"),
    [
        ("virtual_transport", None),
        ("relayhost", None),
        ("content_filter", None),
        ("smtpd_milters", None),
        ("transport_maps", (True, True)),
        ("mynetworks", (True, True)),
        ("header_checks", (True, True)),
        ("smtp_tls_session_cache_database", (False, False)),
        ("alias_database", (False, False)),
        ("tls_random_source", (False, True)),
    ],
)
def test_table_check_mode(param, mode):
    assert table_check_mode(param) == mode
