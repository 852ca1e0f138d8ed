# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import re

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import (
    MasterService,
    PostfixSyntaxError,
    expand_value,
    normalize_value,
    parse_master_cf,
    pattern_key,
    render_aliases,
    render_main_cf,
    render_master_cf,
    render_param,
    render_pattern_table,
    render_value,
    split_list,
    split_master_words,
    table_ref,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "yes"),
        (False, "no"),
        (0, "0"),
        (10240000, "10240000"),
        ("  text  ", "text"),
        (None, ""),
        ([], ""),
        (["a", "b"], "a, b"),
        (["a", "", None, "b"], "a, b"),
        (("x",), "x"),
        ([True, 3], "yes, 3"),
    ],
)
def test_render_value(value, expected):
    assert render_value(value) == expected


@pytest.mark.parametrize("value", [{"a": 1}, 1.5, "two\nlines", ["ok", "bad\r"]])
def test_render_value_rejects(value):
    with pytest.raises(PostfixSyntaxError):
        render_value(value)


def test_table_ref():
    assert table_ref("hash", "/etc/postfix/access") == "hash:/etc/postfix/access"
    assert table_ref("lmdb", " /etc/aliases ") == "lmdb:/etc/aliases"


@pytest.mark.parametrize(
    ("table_type", "path"), [("Hash", "/x"), ("", "/x"), ("hash", ""), ("hash", "/x\n"), (1, "/x")]
)
def test_table_ref_rejects(table_type, path):
    with pytest.raises(PostfixSyntaxError):
        table_ref(table_type, path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a, b c,,d", ["a", "b", "c", "d"]),
        ("inline:{ a=b, c=d }, hash:/x", ["inline:{ a=b, c=d }", "hash:/x"]),
        (["a, b", "c"], ["a", "b", "c"]),
        (None, []),
        ("", []),
        ("unbalanced}", ["unbalanced}"]),
    ],
)
def test_split_list(value, expected):
    assert split_list(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a,b", "a, b"),
        ("a ,  b\t c", "a, b c"),
        (["a", "b"], "a, b"),
        ("a, b,", "a, b"),
        (True, "yes"),
    ],
)
def test_normalize_value(value, expected):
    assert normalize_value(value) == expected


def test_render_param_wraps_long_lists_only():
    short = ["permit_mynetworks", "reject_unauth_destination"]
    assert render_param("smtpd_relay_restrictions", short) == (
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination"
    )
    long_items = [
        "permit_mynetworks",
        "permit_sasl_authenticated",
        "reject_unauth_destination",
        "reject_rbl_client x.org",
    ]
    assert render_param("smtpd_recipient_restrictions", long_items) == (
        "smtpd_recipient_restrictions =\n"
        "    permit_mynetworks,\n"
        "    permit_sasl_authenticated,\n"
        "    reject_unauth_destination,\n"
        "    reject_rbl_client x.org"
    )
    one_long = ["x" * 100]
    assert render_param("p", one_long) == "p = " + "x" * 100
    assert render_param("p", "y" * 100) == "p = " + "y" * 100
    assert render_param("empty", "") == "empty ="


def test_render_param_rejects_bad_name():
    with pytest.raises(PostfixSyntaxError, match="invalid parameter name"):
        render_param("bad name", "x")


def test_render_main_cf_renders_in_order_with_header():
    params = {
        "myhostname": "mail.example.org",
        "smtpd_tls_auth_only": True,
        "message_size_limit": 52428800,
        "smtpd_recipient_restrictions": [
            "permit_mynetworks",
            "permit_sasl_authenticated",
            "reject_unauth_destination",
            "check_policy_service unix:private/policy-spf",
        ],
    }
    text = render_main_cf(params, "Managed by Ansible")
    # The header comes first, then the parameters in the given order; booleans are yes/no and a
    # long list is wrapped one item per continuation line.
    assert text == (
        "# Managed by Ansible\n"
        "\n"
        "myhostname = mail.example.org\n"
        "smtpd_tls_auth_only = yes\n"
        "message_size_limit = 52428800\n"
        "smtpd_recipient_restrictions =\n"
        "    permit_mynetworks,\n"
        "    permit_sasl_authenticated,\n"
        "    reject_unauth_destination,\n"
        "    check_policy_service unix:private/policy-spf\n"
    )
    assert render_main_cf(params, "Managed by Ansible") == text  # deterministic


def test_render_main_cf_header_variants():
    assert render_main_cf({"a": 1}) == "a = 1\n"
    assert render_main_cf({"a": 1}, ["# one", "two"]) == "# one\n# two\n\na = 1\n"


SUBMISSION = MasterService(
    name="submission",
    type="inet",
    private="n",
    chroot="y",
    command="smtpd",
    args=["-o", "syslog_name=postfix/submission", "-o", "smtpd_tls_security_level=encrypt"],
)
PIPE = MasterService(
    name="dovecot",
    type="unix",
    private="-",
    unpriv="n",
    chroot="n",
    command="pipe",
    args=["flags=DRhu", "user=vmail:vmail", "argv=/usr/lib/dovecot/deliver", "-f", "${sender}"],
)


def test_render_master_cf():
    text = render_master_cf([SUBMISSION, PIPE], "Managed")
    assert text == (
        "# Managed\n"
        "\n"
        "# service type  private unpriv  chroot  wakeup  maxproc command + args\n"
        "#               (yes)   (yes)   (no)    (never) (100)\n"
        "submission inet  n       -       y       -       -       smtpd\n"
        "  -o syslog_name=postfix/submission\n"
        "  -o smtpd_tls_security_level=encrypt\n"
        "dovecot    unix  -       n       n       -       -       pipe\n"
        "  flags=DRhu\n"
        "  user=vmail:vmail\n"
        "  argv=/usr/lib/dovecot/deliver\n"
        "  -f\n"
        "  ${sender}\n"
    )
    assert parse_master_cf(text) == [SUBMISSION, PIPE]


def test_render_master_cf_without_header_and_a_lone_flag():
    service = MasterService(name="x", type="unix", command="smtp", args=["-v"])
    assert render_master_cf([service]).splitlines()[-1] == "  -v"


def test_master_service_refuses_a_trailing_dash_o():
    with pytest.raises(PostfixSyntaxError, match=r"^master.cf service x/unix: option -o needs a value$"):
        MasterService(name="x", type="unix", command="smtp", args=["-o"])


def test_master_service_model():
    assert SUBMISSION.key == "submission/inet"
    data = SUBMISSION.to_dict()
    assert MasterService.from_dict(data) == SUBMISSION
    assert SUBMISSION != PIPE
    assert SUBMISSION != "submission"
    assert "submission" in repr(SUBMISSION)
    minimal = MasterService.from_dict({"name": "smtp", "type": "unix", "command": "smtp"})
    assert (minimal.private, minimal.maxproc, minimal.args) == ("-", "-", [])
    assert MasterService(name="pickup", type="unix", wakeup="60?", maxproc="1", command="pickup").wakeup == "60?"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("not a mapping", "must be a mapping"),
        ({"name": "x", "type": "inet", "command": "smtpd", "bogus": 1}, "unknown master.cf service keys: bogus"),
        ({"name": "x", "type": "inet"}, "missing: command"),
        ({"name": "x", "type": "inet", "command": "smtpd", "args": "-o a=b"}, "'args' must be a list"),
        ({"name": "x y", "type": "inet", "command": "smtpd"}, "'name' must be a non-empty word"),
        ({"name": "x", "type": "tcp", "command": "smtpd"}, "type must be one of"),
        ({"name": "x", "type": "inet", "command": "smtpd", "chroot": "yes"}, "'chroot' must be y, n or -"),
        ({"name": "x", "type": "inet", "command": "smtpd", "wakeup": "soon"}, "invalid wakeup"),
        ({"name": "x", "type": "inet", "command": "smtpd", "maxproc": "many"}, "invalid maxproc"),
        ({"name": "x", "type": "inet", "command": "smtpd", "args": ["ok", ""]}, "invalid argument"),
        ({"name": "x", "type": "inet", "command": "smtpd", "args": [3]}, "invalid argument"),
        ({"name": 5, "type": "inet", "command": "smtpd"}, "'name' must be a non-empty word"),
    ],
)
def test_master_service_errors(data, message):
    with pytest.raises(PostfixSyntaxError, match=message):
        MasterService.from_dict(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("  -o a=b\n", "continuation line without a service"),
        ("smtp inet n - y - -\n", "expected at least 8 fields"),
    ],
)
def test_parse_master_cf_errors(text, message):
    with pytest.raises(PostfixSyntaxError, match=message):
        parse_master_cf(text)


def test_expand_value():
    main = {"a": "$b/x", "b": "${c}", "c": "/etc", "list": ["1", "2"]}
    assert expand_value("$a and $(c) and $list and $unknown", main) == "/etc/x and /etc and 1, 2 and $unknown"
    loop = {"a": "$a$a"}
    assert "$a" in expand_value("$a", loop, depth=3)


@pytest.mark.parametrize(
    ("pattern", "flags", "table_type", "expected"),
    [
        ("^Subject:.*x", "i", "regexp", "/^Subject:.*x/i"),
        ("a/b", "", "regexp", "/a\\/b/"),
        ("a\\/b", "", "pcre", "/a\\/b/"),
        ("a\\\\/b", "", "pcre", "/a\\\\\\/b/"),
        ("x", "imsxAEUX", "pcre", "/x/imsxAEUX"),
    ],
)
def test_pattern_key(pattern, flags, table_type, expected):
    assert pattern_key(pattern, flags, table_type) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", ""), "non-empty"),
        (("a\nb", ""), "line break"),
        (("a\\", ""), "ends with a lone backslash"),
        (("a", "s"), "flags 's' of pattern 'a': regexp knows only i, m, x"),
        (("a", "", "hash"), "pattern tables are regexp or pcre"),
    ],
)
def test_pattern_key_errors(args, message):
    with pytest.raises(PostfixSyntaxError, match=re.escape(message)):
        pattern_key(*args)


def test_render_pattern_table():
    assert render_pattern_table([["/a b/i", "REJECT x"], ["!/c\\/d/", ["OK"]]]) == "/a b/i REJECT x\n!/c\\/d/ OK\n"
    for entries, message in (
        ([["nodelim", "OK"]], "key 'nodelim' is not a /pattern/flags"),
        ([["/a/q", "OK"]], "table entry 0: flags 'q'"),
        ([["/a/", ""]], "the value is empty"),
        ("x", "must be a list"),
    ):
        with pytest.raises(PostfixSyntaxError, match=re.escape(message)):
            render_pattern_table(entries)


def test_render_aliases():
    assert render_aliases({"root": ["alice", "bob@example.org"], "postmaster": "root"}) == (
        "postmaster: root\nroot: alice, bob@example.org\n"
    )
    # A command with spaces is one target only in double quotes.
    assert render_aliases({"list": ["|/usr/bin/handler --list x", "/var/log/list.mbox"]}) == (
        'list: "|/usr/bin/handler --list x", /var/log/list.mbox\n'
    )
    for aliases, message in (
        ({"a b": "root"}, "alias name 'a b'"),
        ({"a:": "root"}, "alias name 'a:'"),
        ({"a": ""}, "alias a: targets must be non-empty strings"),
        ({"a": "x\ny"}, "alias a: target 'x\\ny' contains a line break, a control character, a comma or a quote"),
        ({"a": "|/bin/sh -c 'x', evil"}, "alias a: target \"|/bin/sh -c 'x', evil\" contains a line break"),
        ({"a": ['|"/bin/x"']}, "alias a: target '|\"/bin/x\"' contains"),
        (["a"], "aliases must be a mapping"),
    ):
        with pytest.raises(PostfixSyntaxError, match=re.escape(message)):
            render_aliases(aliases)


# -- master.cf services cannot smuggle lines, comments or options ---------------------------------


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ({"name": "#2525", "type": "inet", "command": "smtpd"},
         r"^master.cf service '#2525': a service name must not contain '#'"),
        ({"name": "x#", "type": "unix", "command": "smtpd"}, r"a service name must not contain '#'"),
        ({"name": "sub\x01", "type": "inet", "command": "smtpd"}, r"'name' contains a control character"),
        ({"name": "sub", "type": "inet", "command": "smtpd\x7f"}, r"'command' contains a control character"),
        ({"name": "sub", "type": "inet", "command": "smtpd", "args": ["-o", "smtpd_relay_restrictions=permit -o x=y"]},
         r"argument 'smtpd_relay_restrictions=permit -o x=y' contains whitespace; master.cf would split it"),
        ({"name": "sub", "type": "inet", "command": "smtpd", "args": ["-o", "{ a = b } -o { c = d }"]},
         r"contains whitespace"),
        ({"name": "sub", "type": "inet", "command": "smtpd", "args": ["-o", "a=b\tc"]}, r"control character"),
        ({"name": "sub", "type": "inet", "command": "smtpd", "args": ["#-o"]}, r"starts with '#'"),
        ({"name": "sub", "type": "inet", "command": "smtpd", "args": ["-o", "novalue"]},
         r"-o 'novalue' is not 'name=value' with a parameter name"),
        ({"name": "sub", "type": "inet", "command": "smtpd", "args": ["-o", "bad name=x"]}, r"contains whitespace"),
        ({"name": "sub", "type": "inet", "command": "smtpd", "args": ["-x"]}, r"unknown option -x in argument '-x'"),
        ({"name": "sub", "type": "inet", "command": "smtpd", "args": ["-v", "-o"]}, r"option -o needs a value"),
    ],
)  # fmt: skip
def test_master_service_refuses_injection(service, message):
    with pytest.raises(PostfixSyntaxError, match=message):
        MasterService.from_dict(service)


def test_master_service_options_as_postfix_getopt_reads_them():
    service = MasterService(
        name="2525",
        type="inet",
        command="smtpd",
        args=["-v", "-osyslog_name=postfix/2525", "-vo", "a=1", "-o", "{ smtpd_banner = $myhostname ESMTP }",
              "flags=R", "-o", "not=an_option"],
    )  # fmt: skip
    assert service.options() == {"syslog_name": "postfix/2525", "a": "1", "smtpd_banner": "$myhostname ESMTP"}
    text = render_master_cf([service])
    assert "  -o { smtpd_banner = $myhostname ESMTP }\n" in text
    assert parse_master_cf(text) == [service]


def test_split_master_words_keeps_brace_groups():
    assert split_master_words("-o { a = b c } x {y}") == ["-o", "{ a = b c }", "x", "{y}"]
    assert split_master_words("a{b c}") == ["a{b", "c}"]
