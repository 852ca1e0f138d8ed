# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The srs role's settings: validation messages name the variable and the entry; rendering is plain shell."""

from __future__ import annotations

import subprocess

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter.srs import srs_postfix_fragment, srs_settings
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragment_names import fragment_name
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragments import check_fragment
from ansible_collections.postmaster.mailserver.plugins.module_utils.srs.srs_settings import (
    SrsSettingsError,
    check_settings,
    expected_values,
    postfix_fragment,
    render_defaults,
)


def test_defaults_and_normalization():
    result = check_settings({"domain": "Example.ORG", "local_domains": ["example.org", "Example.NET", "example.net"]})
    assert result == {
        "domain": "example.org",
        # The SRS domain itself is never rewritten: it leaves the exclusion list, which keeps no repeats.
        "local_domains": ["example.net"],
        "forward_port": 10001,
        "reverse_port": 10002,
        "separator": "=",
        "hash_length": 4,
        "hash_minimum": 4,
        "restore_local_return_path": True,
    }


def test_strings_from_jinja_become_numbers():
    result = check_settings({"domain": "example.org", "forward_port": "2001", "hash_length": "8", "hash_minimum": "4"})
    assert (result["forward_port"], result["hash_length"], result["hash_minimum"]) == (2001, 8, 4)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"domain": "not a domain"}, "srs_domain: 'not a domain' is not a valid domain name"),
        ({"local_domains": ["ok.example", "bad;rm -rf"]}, "srs_local_domains[1]: 'bad;rm -rf' is not a valid domain"),
        ({"local_domains": {"a": 1}}, "srs_local_domains: must be a list of domains"),
        ({"forward_port": 0}, "srs_forward_port: must be from 1 to 65535, got 0"),
        ({"reverse_port": "10x"}, "srs_reverse_port: must be a TCP port number, got '10x' (str)"),
        ({"reverse_port": 10001}, "srs_reverse_port: 10001 is also srs_forward_port"),
        ({"separator": "$"}, "srs_separator: must be one of = + -, got '$' (str)"),
        ({"hash_length": 3}, "srs_hash_length: must be from 4 to 20, got 3"),
        ({"hash_length": True}, "srs_hash_length: must be a number, got True (bool)"),
        ({"hash_minimum": 8}, "srs_hash_minimum: 8 is more than srs_hash_length (4)"),
        ({"restore_local_return_path": "yes"}, "srs_restore_local_return_path: must be true or false, got 'yes'"),
        ({"secret": "x"}, "unknown settings srs_secret"),
    ],
)
def test_bad_settings_name_the_variable(changes, message):
    with pytest.raises(SrsSettingsError) as error:
        check_settings({"domain": "example.org", **changes})
    assert message in str(error.value)


def test_missing_domain_and_wrong_type():
    with pytest.raises(SrsSettingsError, match=r"missing setting srs_domain"):
        check_settings({})
    with pytest.raises(SrsSettingsError, match=r"srs: must be a mapping"):
        check_settings(["example.org"])


def test_the_filter_reports_with_its_name():
    with pytest.raises(AnsibleFilterError, match=r"^srs_settings: srs_domain: "):
        srs_settings({"domain": "a b"})
    assert srs_settings({"domain": "example.org"})["domain"] == "example.org"


def test_rendered_defaults_read_back_by_a_real_shell():
    settings = check_settings({"domain": "example.org", "local_domains": ["example.net", "mail.example.org"]})
    text = render_defaults(settings, "/etc/postsrsd.secret")
    assert text.startswith("# Managed by Ansible")
    names = list(expected_values(text))
    script = '. "$1"; ' + "; ".join(f'printf "%s=%s\\n" {name} "${{{name}}}"' for name in names)
    done = subprocess.run(
        ["sh", "-c", script, "sh", "/dev/stdin"], input=text, capture_output=True, text=True, check=True
    )
    read = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert read["SRS_DOMAIN"] == "example.org"
    assert read["SRS_EXCLUDE_DOMAINS"] == "example.net,mail.example.org"
    assert read["SRS_SECRET"] == "/etc/postsrsd.secret"
    assert read["SRS_SEPARATOR"] == "="
    assert read == expected_values(text)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"secret_path": "/etc/x;reboot"}, "secret_path: must be an absolute path of plain characters"),
        ({"secret_path": "/etc/../shadow"}, "secret_path: must be an absolute path of plain characters"),
        ({"secret_path": "/etc/s", "run_as": "root;id"}, "run_as: 'root;id' is not a user name"),
        ({"secret_path": "/etc/s", "listen": "0.0.0.0"}, "postsrsd listens on loopback only"),
    ],
)
def test_render_refuses_what_the_shell_would_run(arguments, message):
    with pytest.raises(SrsSettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render_defaults(check_settings({"domain": "example.org"}), **arguments)


def test_postfix_fragment_rewrites_envelopes_only():
    fragment = postfix_fragment(check_settings({"domain": "example.org", "forward_port": 2001, "reverse_port": 2002}))
    assert fragment == {
        "main": {
            "sender_canonical_maps": "tcp:127.0.0.1:2001",
            "sender_canonical_classes": "envelope_sender",
            "recipient_canonical_maps": "tcp:127.0.0.1:2002",
            "recipient_canonical_classes": "envelope_recipient",
            "lmtp_generic_maps": "tcp:127.0.0.1:2002",
        }
    }
    check_fragment(fragment_name("srs"), fragment)
    without = srs_postfix_fragment({"domain": "example.org", "restore_local_return_path": False})
    assert "lmtp_generic_maps" not in without["main"]
    assert fragment_name("srs") == "46-srs.json"
