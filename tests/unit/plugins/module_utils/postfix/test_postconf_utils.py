# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postconf import (
    Postconf,
    PostconfError,
    compute_changes,
    parse_postconf_output,
    render_params,
    run_postconf,
)

CURRENT = (
    "compatibility_level = 3.6\n"
    "myhostname = mail.example.org\n"
    "smtpd_relay_restrictions = permit_mynetworks,permit_sasl_authenticated, reject_unauth_destination\n"
    "message_size_limit = 10240000\n"
)


class FakeRunner:
    """Answers each expected argv in order: [(argv, (rc, out, err)), ...]."""

    def __init__(self, script):
        self.script = list(script)

    def __call__(self, argv, environ_update=None, **kwargs):
        assert environ_update == {"LC_ALL": "C"}
        assert self.script, f"unexpected command {argv}"
        expected, response = self.script.pop(0)
        assert argv == expected
        return response

    def done(self):
        assert self.script == []


READ = (["/usr/sbin/postconf", "-c", "/etc/postfix", "-n"], (0, CURRENT, ""))


# Table: params, read, check_mode -> commands after the -n read, changed_params, values, diff after
CASES = [
    pytest.param(
        {"message_size_limit": 52428800, "smtpd_tls_auth_only": True},
        [],
        False,
        [(["/usr/sbin/postconf", "-c", "/etc/postfix", "-e", "message_size_limit=52428800", "smtpd_tls_auth_only=yes"], (0, "", ""))],
        ["message_size_limit", "smtpd_tls_auth_only"],
        {"message_size_limit": "52428800", "smtpd_tls_auth_only": "yes"},
        "message_size_limit = 52428800\nsmtpd_tls_auth_only = yes\n",
        id="set-two",
    ),
    pytest.param(
        {"smtpd_relay_restrictions": ["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"],
         "myhostname": "mail.example.org"},
        ["compatibility_level"],
        False,
        [],
        [],
        {"compatibility_level": "3.6", "smtpd_relay_restrictions": "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
         "myhostname": "mail.example.org"},
        "",
        id="no-op-after-normalisation",
    ),
    pytest.param(
        {"message_size_limit": 52428800},
        [],
        True,
        [],
        ["message_size_limit"],
        {"message_size_limit": "52428800"},
        "message_size_limit = 52428800\n",
        id="check-mode-runs-no-set",
    ),
    pytest.param(
        {},
        ["myhostname", "mydestination", "inet_interfaces"],
        False,
        [(["/usr/sbin/postconf", "-c", "/etc/postfix", "mydestination", "inet_interfaces"],
          (0, "mydestination = $myhostname, localhost.$mydomain, localhost\ninet_interfaces = all\n", ""))],
        [],
        {"myhostname": "mail.example.org", "mydestination": "$myhostname, localhost.$mydomain, localhost", "inet_interfaces": "all"},
        "",
        id="read-defaults-in-one-call",
    ),
    pytest.param(
        {"mynetworks": ["127.0.0.0/8", "::1/128"]},
        [],
        False,
        [(["/usr/sbin/postconf", "-c", "/etc/postfix", "-e", "mynetworks=127.0.0.0/8, [::1]/128"], (0, "", ""))],
        ["mynetworks"],
        {"mynetworks": "127.0.0.0/8, [::1]/128"},
        "mynetworks = 127.0.0.0/8, [::1]/128\n",
        id="mynetworks-normalized",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("params", "read", "check_mode", "commands", "changed", "values", "after"), CASES)
def test_run_postconf(params, read, check_mode, commands, changed, values, after):  # noqa: PLR0917 - one row of the table
    runner = FakeRunner([READ, *commands])
    result = run_postconf(Postconf(runner, "/etc/postfix", "/usr/sbin/postconf"), params, read, check_mode)
    runner.done()
    assert result["changed"] is bool(changed)
    assert result["changed_params"] == changed
    assert result["values"] == values
    assert result["diff"]["after"] == after
    assert result["diff"]["before_header"] == "/etc/postfix/main.cf"


def test_diff_before_shows_old_values():
    runner = FakeRunner([READ, (["postconf", "-c", "/etc/postfix", "-e", "myhostname=new.example.org"], (0, "", ""))])
    runner.script[0] = (["postconf", "-c", "/etc/postfix", "-n"], (0, CURRENT, ""))
    result = run_postconf(Postconf(runner, "/etc/postfix"), {"myhostname": "new.example.org"})
    assert result["diff"]["before"] == "myhostname = mail.example.org\n"


@pytest.mark.parametrize(
    ("params", "read", "message"),
    [
        ({"bad name": "x"}, [], r"invalid parameter name 'bad name'"),
        ({"p": [{"a": 1}]}, [], r"parameter p: list items must be strings"),
        ({"p": {"a": 1}}, [], r"parameter p: value must be"),
        ({"p": 1.5}, [], r"parameter p: value must be"),
        ({"p": "a\nb"}, [], r"parameter p: value 'a\\nb' contains a line break"),
        ({"mynetworks": "10.0.0.0/33"}, [], r"parameter mynetworks: '10.0.0.0/33'"),
        ({}, ["bad name"], r"invalid parameter name 'bad name' in read"),
    ],
)
def test_run_postconf_rejects_bad_input_before_running_anything(params, read, message):
    runner = FakeRunner([])
    with pytest.raises(PostconfError, match=message):
        run_postconf(Postconf(runner, "/etc/postfix"), params, read)


def test_postconf_failure_is_reported():
    runner = FakeRunner(
        [
            (
                ["postconf", "-c", "/nonexistent", "-n"],
                (1, "", "postconf: fatal: open /nonexistent/main.cf: No such file"),
            )
        ]
    )
    with pytest.raises(PostconfError, match=r"postconf -c /nonexistent -n failed \(rc=1\): postconf: fatal: open"):
        run_postconf(Postconf(runner, "/nonexistent"), {"a": "b"})


def test_restriction_classes_and_expansions_are_accepted():
    rendered = render_params(
        {"smtpd_restriction_classes": "strict", "strict": ["reject_unknown_sender_domain", "permit"],
         "smtpd_sender_restrictions": ["strict"], "smtpd_client_restrictions": "$strict"}
    )  # fmt: skip
    assert rendered["strict"] == "reject_unknown_sender_domain, permit"


def test_parse_and_compare_helpers():
    assert parse_postconf_output("a = 1\nb =\nnot a line\n = x\n") == {"a": "1", "b": ""}
    assert compute_changes({"a": "x,y"}, {"a": "x, y", "b": ""}) == {"b": ""}
    assert Postconf(FakeRunner([]), "/etc/postfix").read([]) == {}
    Postconf(FakeRunner([]), "/etc/postfix").set({})


# -- validated in the main.cf they will be part of, $name expanded, never an open relay ---------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"smtpd_client_restrictions": "permit_bogus"}, r"^parameter smtpd_client_restrictions: unknown restriction 'permit_bogus'$"),
        # A value with $ is no longer exempt: it is expanded from main.cf first.
        ({"my_list": "permit_bogus", "smtpd_client_restrictions": "$my_list"},
         r"^parameter smtpd_client_restrictions: unknown restriction 'permit_bogus'$"),
        ({"smtpd_relay_restrictions": "permit"},
         r"^open relay refused:\n  - main.cf would relay mail for anyone: smtpd_relay_restrictions lets every client "
         r"through at entry 1: 'permit' permits every client"),
        ({"smtpd_relay_restrictions": "warn_if_reject reject_unauth_destination"},
         r"smtpd_relay_restrictions only logs its reject_unauth_destination \(warn_if_reject\)"),
        ({"mynetworks": "0.0.0.0/0"}, r"parameter mynetworks: 0.0.0.0/0 covers every IPv4 address, so every client is trusted"),
        ({"trusted": "0.0.0.0/1, 128.0.0.0/1", "mynetworks": "$trusted"}, r"parameter mynetworks: 0.0.0.0/1, 128.0.0.0/1 covers every IPv4"),
    ],
)  # fmt: skip
def test_run_postconf_validates_the_resulting_main_cf_before_writing(params, message):
    runner = FakeRunner([READ])
    with pytest.raises(PostconfError, match=message):
        run_postconf(Postconf(runner, "/etc/postfix", "/usr/sbin/postconf"), params)
    runner.done()


def test_run_postconf_reads_defaults_that_a_value_refers_to():
    runner = FakeRunner(
        [
            READ,
            (["/usr/sbin/postconf", "-c", "/etc/postfix", "smtpd_client_restrictions"],
             (0, "smtpd_client_restrictions = permit\n", "")),
        ]
    )  # fmt: skip
    with pytest.raises(PostconfError, match=r"smtpd_relay_restrictions lets every client through at entry 1: 'permit'"):
        run_postconf(
            Postconf(runner, "/etc/postfix", "/usr/sbin/postconf"),
            {"smtpd_relay_restrictions": "$smtpd_client_restrictions"},
        )
    runner.done()


def test_run_postconf_open_relay_on_request_is_a_warning():
    runner = FakeRunner(
        [READ, (["/usr/sbin/postconf", "-c", "/etc/postfix", "-e", "smtpd_relay_restrictions=permit"], (0, "", ""))]
    )
    result = run_postconf(
        Postconf(runner, "/etc/postfix", "/usr/sbin/postconf"),
        {"smtpd_relay_restrictions": "permit"},
        allow_open_relay=True,
    )
    runner.done()
    assert result["changed_params"] == ["smtpd_relay_restrictions"]
    assert result["warnings"] == [
        "allowed open relay (allow_open_relay): main.cf would relay mail for anyone: smtpd_relay_restrictions lets "
        "every client through at entry 1: 'permit' permits every client, and smtpd_recipient_restrictions ends "
        "without rejecting unauthorized destinations"
    ]
