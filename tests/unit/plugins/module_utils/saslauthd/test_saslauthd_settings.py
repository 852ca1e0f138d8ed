# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The saslauthd role's variables, checked on the controller (the role's first task)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter.saslauthd import FilterModule, saslauthd_settings
from ansible_collections.postmaster.mailserver.plugins.module_utils.saslauthd.saslauthd_settings import (
    SaslauthdSettingsError,
    check_settings,
)

GOOD = {
    "mech_list": ["plain", "login"],
    "mech_choices": ["plain", "login"],
    "socket_dir": "/var/spool/postfix/var/run/saslauthd",
    "link": "/run/saslauthd",
}


def test_good_settings_pass():
    assert check_settings(GOOD) == GOOD
    assert check_settings({**GOOD, "socket_dir": "/run/postmaster-sasl"})
    assert FilterModule().filters() == {"saslauthd_settings": saslauthd_settings}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mech_list": []}, r"saslauthd_mech_list must be a non-empty list among plain, login: .*\(unknown: none\)"),
        ({"mech_list": ["plain", "cram-md5"]}, r"saslauthd_mech_list must be .*\(unknown: cram-md5\)"),
        ({"socket_dir": '/run/x"; touch /tmp/pwned; "'}, r"saslauthd_socket_dir must be an absolute directory below"),
        ({"socket_dir": "/var/spool/postfix/../../etc"}, r"saslauthd_socket_dir must be .*no '\.\.'"),
        ({"socket_dir": "/etc/saslauthd"}, r"saslauthd_socket_dir must be an absolute directory below"),
        ({"socket_dir": "/run/saslauthd"}, r"and not /run/saslauthd itself \(got \"/run/saslauthd\"\)"),
        ({"socket_dir": "/run/x\ny"}, r"saslauthd_socket_dir must be"),
        ({"socket_dir": 5}, r"saslauthd_socket_dir must be"),
    ],
)
def test_each_problem_names_its_variable(change, message):
    with pytest.raises(SaslauthdSettingsError, match=message):
        check_settings({**GOOD, **change})
    with pytest.raises(AnsibleFilterError, match=r"^saslauthd_settings: "):
        saslauthd_settings({**GOOD, **change})


def test_not_a_mapping():
    with pytest.raises(SaslauthdSettingsError, match="must be a mapping"):
        check_settings("x")


@pytest.mark.parametrize("auth_on_25", [False, True])
def test_the_postfix_fragment_is_built_with_the_settings(auth_on_25):
    checked = check_settings({**GOOD, "postfix_config_dir": "/etc/postfix", "smtpd_sasl_auth_enable": auth_on_25})
    main = checked["fragment"]["main"]
    assert main["smtpd_sasl_type"] == "cyrus" and main["cyrus_sasl_config_path"] == "/etc/postfix/sasl"
    assert main["postmaster_mua_sasl_auth_enable"] is True
    assert ("smtpd_sasl_auth_enable" in main) is auth_on_25
    assert checked["fragment"]["overrides"] == ["postmaster_mua_sasl_auth_enable"]


def test_auth_on_port_25_must_be_a_boolean():
    with pytest.raises(SaslauthdSettingsError, match="saslauthd_postfix_smtpd_sasl_auth_enable must be true or false"):
        check_settings({**GOOD, "postfix_config_dir": "/etc/postfix", "smtpd_sasl_auth_enable": "yes"})
