# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail_dns filter: registered, positional arguments, errors as AnsibleFilterError naming the domain."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter.mail_dns import FilterModule, mail_dns


def test_filter_is_registered():
    assert FilterModule().filters() == {"mail_dns": mail_dns}


def test_positional_arguments_as_in_the_examples():
    (result,) = mail_dns(
        [{"name": "example.org", "spf": {"mx": True, "include": ["_spf.provider.example"]}}],
        "mail.example.org",
        600,
        {"_spf.provider.example": "v=spf1 include:_a.provider.example -all"},
        "verify_dns_domains",
    )
    assert result["zone_lines"][0] == "example.org.\t600\tIN\tMX\t10 mail.example.org."
    assert result["spf"] == "v=spf1 mx include:_spf.provider.example ~all"


def test_errors_name_the_filter_the_domain_and_the_variable():
    includes = [f"_s{n}.provider.example" for n in range(11)]
    with pytest.raises(AnsibleFilterError) as excinfo:
        mail_dns(
            [{"name": "busy.example", "spf": {"include": includes}}], "mail.example.org", name="verify_dns_domains"
        )
    assert str(excinfo.value).startswith(
        "mail_dns: busy.example: verify_dns_domains[0].spf needs 11 DNS lookups, more than the 10 that SPF allows"
    )
