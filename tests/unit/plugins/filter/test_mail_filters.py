# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter.mail import (
    FilterModule,
    mail_address,
    mail_addresses,
    mail_domain,
)

FILTER_DIR = Path(__file__).resolve().parents[4] / "plugins" / "filter"


def test_filters_are_registered_and_documented():
    names = sorted(FilterModule().filters())
    assert names == [
        "mail_address",
        "mail_addresses",
        "mail_domain",
        "mail_play_conflicts",
        "mailboxes_settings",
        "virtual_mailbox_passwd",
        "virtual_mailboxes",
        "virtual_users_domains",
    ]
    for name in names:
        doc = yaml.safe_load((FILTER_DIR / f"{name}.yml").read_text(encoding="utf-8"))
        assert doc["DOCUMENTATION"]["name"] == name


@pytest.mark.parametrize(
    ("func", "args", "expected"),
    [
        (mail_address, ("Alice@Example.ORG",), "Alice@example.org"),
        (mail_address, ("@Example.ORG", "aliases[0].source", True), "@example.org"),
        (mail_addresses, (["a@B.org", "c@d.org"],), ["a@b.org", "c@d.org"]),
        (mail_addresses, (["@B.org"], "catchalls", True), ["@b.org"]),
        (mail_domain, ("Example.ORG",), "example.org"),
    ],
)
def test_filters_normalize(func, args, expected):
    assert func(*args) == expected


@pytest.mark.parametrize(
    ("func", "args", "message"),
    [
        (
            mail_address,
            ("bad@@x", "mailboxes_domains[0].users[1].address"),
            r"^mail_address: mailboxes_domains\[0\]\.users\[1\]\.address: 'bad@@x' is not a valid mail address: "
            r"it has more than one '@'$",
        ),
        (mail_address, ("nobody",), r"^mail_address: address: 'nobody' is not a valid mail address: it has no '@'$"),
        (mail_address, ("@example.org", "aliases[0].source"), r"^mail_address: aliases\[0\]\.source: .* is empty$"),
        (
            mail_addresses,
            (["a@b.org", "x@-b.org"], "users[0].forward"),
            r"^mail_addresses: users\[0\]\.forward\[1\]: 'x@-b.org' .* label '-b' starts or ends with a hyphen$",
        ),
        (mail_addresses, ("a@b.org",), r"^mail_addresses: addresses: expected a list of mail addresses, got str$"),
        (
            mail_domain,
            ("bücher.example", "mailboxes_domains[2].name"),
            r"^mail_domain: mailboxes_domains\[2\]\.name: 'bücher.example' is not a valid domain name: "
            r"it contains non-ASCII",
        ),
        (mail_domain, (None,), r"^mail_domain: domain: expected a domain name string, got null$"),
    ],
)
def test_filter_errors_name_the_variable(func, args, message):
    with pytest.raises(AnsibleFilterError, match=message) as excinfo:
        func(*args)
    # Raised "from None": ansible-core would otherwise append the cause to the message.
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__ is True
