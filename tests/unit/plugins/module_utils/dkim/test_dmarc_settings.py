# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The DMARC settings of the dkim role: validation naming the variable, opendmarc.conf, the Postfix fragment."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter.dkim import dmarc_postfix_fragment, dmarc_settings
from ansible_collections.postmaster.mailserver.plugins.module_utils.dkim.dmarc_settings import (
    DmarcSettingsError,
    check_settings,
    ignore_hosts,
    postfix_fragment,
    render_conf,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragments import apply_insert

BASE = {"enforce": True, "authserv_id": "mail.example.org", "ignore_hosts": ["192.0.2.0/24", "127.0.0.1"]}


def test_defaults_and_normalization():
    settings = check_settings(BASE)
    assert settings == {
        "enforce": True,
        "milter_port": 8893,
        "dkim_milter_port": 8891,
        "authserv_id": "mail.example.org",
        "trusted_authserv_ids": ["mail.example.org"],
        "ignore_hosts": ["127.0.0.1", "::1", "192.0.2.0/24"],
        "public_suffix_list": "/usr/share/publicsuffix/public_suffix_list.dat",
    }


def test_off_needs_no_authserv_id():
    assert check_settings({"enforce": False, "authserv_id": ""}) == {"enforce": False}
    assert check_settings({"enforce": "no"}) == {"enforce": False}


def test_off_leaves_the_other_values_to_the_day_it_is_switched_on():
    # ignore_hosts defaults to dkim_internal_hosts: with DMARC off, their problem is the DKIM
    # settings' to name (under dkim_internal_hosts), not OpenDMARC's.
    assert check_settings({"enforce": False, "ignore_hosts": ["0.0.0.0/0"], "milter_port": 8891}) == {"enforce": False}
    with pytest.raises(DmarcSettingsError, match=r"dkim_dmarc_enforce: must be true or false"):
        check_settings({"enforce": "maybe", "ignore_hosts": ["0.0.0.0/0"]})
    with pytest.raises(DmarcSettingsError, match=r"unknown settings dkim_dmarc_typo"):
        check_settings({"enforce": False, "typo": 1})
    with pytest.raises(DmarcSettingsError, match=r"defaults to dkim_internal_hosts"):
        check_settings({**BASE, "ignore_hosts": ["0.0.0.0/0"]})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"enforce": "maybe"}, "dkim_dmarc_enforce: must be true or false"),
        ({"milter_port": 8891}, "dkim_dmarc_milter_port: 8891 is also dkim_milter_port"),
        ({"milter_port": 70000}, "dkim_dmarc_milter_port: must be from 1 to 65535"),
        ({"milter_port": "x"}, "dkim_dmarc_milter_port: must be a TCP port number"),
        ({"authserv_id": ""}, "dkim_dmarc_authserv_id: OpenDMARC needs the host name"),
        ({"authserv_id": "bad host\nname"}, "dkim_dmarc_authserv_id"),
        ({"trusted_authserv_ids": "mail.example.org"}, "dkim_dmarc_trusted_authserv_ids: must be a list"),
        ({"trusted_authserv_ids": ["ok.example.org", "not a name"]}, "dkim_dmarc_trusted_authserv_ids[1]"),
        (
            {"ignore_hosts": ["192.0.2.1", "nonsense"]},
            "dkim_dmarc_ignore_hosts[1]: 'nonsense' is not an IP address or network (OpenDMARC's",
        ),
        (
            {"ignore_hosts": ["0.0.0.0/0"]},
            "dkim_dmarc_ignore_hosts[0]: 0.0.0.0/0 is every address: no client's mail would be judged",
        ),
        ({"public_suffix_list": "relative/list.dat"}, "dkim_dmarc_public_suffix_list: must be an absolute file path"),
        ({"public_suffix_list": "/usr/share/../etc/shadow"}, "dkim_dmarc_public_suffix_list"),
        ({"public_suffix_list": "/usr/share/list\nSocket inet:1@0.0.0.0"}, "dkim_dmarc_public_suffix_list"),
        ({"socket": "local:/x"}, "unknown settings dkim_dmarc_socket"),
    ],
)
def test_bad_input_names_the_variable_and_entry(changes, message):
    with pytest.raises(DmarcSettingsError) as info:
        check_settings({**BASE, **changes})
    assert message in str(info.value)


def test_a_line_break_never_reaches_the_file():
    # Every value in opendmarc.conf is validated: no setting can add a line of its own.
    with pytest.raises(DmarcSettingsError):
        check_settings({**BASE, "trusted_authserv_ids": ["mail.example.org\nSocket inet:25@0.0.0.0"]})


def test_render_conf_rejects_p_reject_failures_and_checks_spf_itself():
    text = render_conf(check_settings(BASE), "/etc/opendmarc/ignore.hosts")
    lines = dict(line.split(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert lines["Socket"] == "inet:8893@127.0.0.1"
    assert lines["AuthservID"] == "mail.example.org"
    assert lines["TrustedAuthservIDs"] == "mail.example.org"
    assert lines["RejectFailures"] == "true"
    assert lines["SPFSelfValidate"] == "true" and lines["SPFIgnoreResults"] == "true"
    assert lines["IgnoreHosts"] == "/etc/opendmarc/ignore.hosts"
    assert lines["IgnoreAuthenticatedClients"] == "true"
    assert "HistoryFile" not in lines
    assert ignore_hosts(check_settings(BASE)).splitlines()[1:] == ["127.0.0.1", "::1", "192.0.2.0/24"]


def test_the_milter_goes_right_after_opendkim():
    main = {"smtpd_milters": "inet:127.0.0.1:8891, inet:127.0.0.1:9999"}
    fragment = postfix_fragment(check_settings(BASE))
    apply_insert("46-dmarc.json", main, fragment["insert"][0])
    assert main["smtpd_milters"] == ["inet:127.0.0.1:8891", "inet:127.0.0.1:8893", "inet:127.0.0.1:9999"]
    assert "non_smtpd_milters" not in str(fragment) and "main" not in fragment


def test_filters():
    assert dmarc_postfix_fragment({**BASE, "enforce": False}) is None
    assert dmarc_postfix_fragment(BASE)["insert"][0]["values"] == ["inet:127.0.0.1:8893"]
    assert dmarc_settings(BASE)["milter_port"] == 8893
    with pytest.raises(AnsibleFilterError, match="dmarc_settings: dkim_dmarc_enforce"):
        dmarc_settings({**BASE, "enforce": "perhaps"})
    with pytest.raises(AnsibleFilterError, match="dmarc_postfix_fragment: dkim_dmarc_milter_port"):
        dmarc_postfix_fragment({**BASE, "milter_port": 0})
