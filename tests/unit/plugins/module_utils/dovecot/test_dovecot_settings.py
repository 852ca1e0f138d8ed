# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The dovecot role's variables, checked on the controller (the role's first task)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter.dovecot import FilterModule, dovecot_settings
from ansible_collections.postmaster.mailserver.plugins.module_utils.dovecot.dovecot_settings import (
    DovecotSettingsError,
    check_settings,
)

GOOD = {
    "release": "Debian 13",
    "syntax": "2.4",
    "mail_location": "maildir:~/Maildir",
    "ssl_cipher_list": "ECDHE+AESGCM:!aNULL",
    "listen": ["*", "::", "192.0.2.1", "[2001:db8::1]"],
    "users_file": "/etc/dovecot/users",
    "protocols": ["imap", "pop3", "lmtp"],
    "protocol_packages": {"imap": "dovecot-imapd", "pop3": "dovecot-pop3d", "lmtp": "dovecot-lmtpd"},
    "auth_mechanisms": ["plain", "login"],
    "auth_mechanisms_known": ["plain", "login", "cram-md5"],
    "sasl_inet_port": 0,
    "lmtp_user_concurrency_limit": 10,
}


def test_good_settings_pass_unchanged():
    assert check_settings(GOOD) == GOOD
    assert check_settings({**GOOD, "sasl_inet_port": "12345", "lmtp_user_concurrency_limit": "0"})
    assert FilterModule().filters() == {"dovecot_settings": dovecot_settings}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"syntax": ""}, r"Debian 13 is not supported by the dovecot role: Debian 12 \(Dovecot 2.3\) and Debian 13"),
        (
            {"mail_location": "maildir:~/Mail dir"},
            'dovecot_mail_location must be DRIVER:PATH (?s:.*)got "maildir:~/Mail dir"',
        ),
        ({"mail_location": "imap:~/Maildir"}, "dovecot_mail_location must be DRIVER:PATH"),
        (
            {"ssl_cipher_list": "HIGH\nssl = no"},
            r'dovecot_ssl_cipher_list must be one OpenSSL cipher string .*got "HIGH\\nssl = no"',
        ),
        ({"listen": ["*", "127.0.0.1 ssl=no"]}, r"dovecot_listen must be addresses or host names"),
        (
            {"users_file": "/etc/dovecot/../shadow"},
            r"dovecot_users_file must be an absolute path .*/etc/dovecot/\.\./shadow",
        ),
        ({"users_file": "etc/users"}, r"dovecot_users_file must be an absolute path"),
        (
            {"protocols": ["imap", "lmtp\nssl = no"]},
            r"dovecot_protocols must be among imap, pop3, lmtp \(unknown: lmtp\nssl = no\); "
            r"dovecot_auth_mechanisms must be among plain, login, cram-md5 \(unknown: none\)",
        ),
        ({"auth_mechanisms": ["plain", "bogus"]}, r"dovecot_auth_mechanisms must be among .*\(unknown: bogus\)"),
        ({"protocols": []}, "Keep dovecot_auth_mechanisms, dovecot_protocols and dovecot_listen non-empty."),
        ({"listen": []}, "Keep dovecot_auth_mechanisms, dovecot_protocols and dovecot_listen non-empty."),
        ({"sasl_inet_port": 143}, r"dovecot_sasl_inet_port must be 0 \(no listener\) or a free TCP port \(got 143\)"),
        ({"sasl_inet_port": 65536}, r"dovecot_sasl_inet_port must be 0"),
        ({"sasl_inet_port": -1}, r"dovecot_sasl_inet_port must be 0"),
        ({"lmtp_user_concurrency_limit": "10\nx"}, r"dovecot_lmtp_user_concurrency_limit must be a whole number"),
        ({"lmtp_user_concurrency_limit": 1234567}, r"dovecot_lmtp_user_concurrency_limit must be a whole number"),
    ],
)
def test_each_problem_names_its_variable(change, message):
    with pytest.raises(DovecotSettingsError, match=message):
        check_settings({**GOOD, **change})
    with pytest.raises(AnsibleFilterError, match=r"^dovecot_settings: "):
        dovecot_settings({**GOOD, **change})


def test_every_problem_is_reported_at_once():
    with pytest.raises(DovecotSettingsError) as error:
        check_settings({**GOOD, "mail_location": "x", "sasl_inet_port": 993})
    assert "dovecot_mail_location" in str(error.value) and "dovecot_sasl_inet_port" in str(error.value)
    with pytest.raises(DovecotSettingsError, match="must be a mapping"):
        check_settings(["not", "a", "mapping"])
