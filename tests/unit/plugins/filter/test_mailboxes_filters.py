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
    virtual_mailbox_passwd,
    virtual_mailboxes,
    virtual_users_domains,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.mailboxes import passwd_entries, plan

FILTER_DIR = Path(__file__).resolve().parents[4] / "plugins" / "filter"

DOMAINS = [
    {
        "name": "Example.ORG",
        "users": [
            {"name": "alice", "password": "Secret-1", "quota": "1G", "forward": ["a@other.org"], "keep_copy": True},
            {"name": "bob", "hash": "{SHA512-CRYPT}$6$salt$Secret-2"},
        ],
        "aliases": [{"name": "postmaster", "to": ["alice@example.org"]}],
        "catchall": "alice@example.org",
    }
]

BAD = [{"name": "a.org", "users": [{"name": "x"}, {"name": "y", "password": "p", "quota": "lots"}]}]


def test_filters_are_registered_and_documented():
    filters = FilterModule().filters()
    assert filters["virtual_mailboxes"] is virtual_mailboxes
    assert filters["virtual_mailbox_passwd"] is virtual_mailbox_passwd
    assert filters["virtual_users_domains"] is virtual_users_domains
    for name in ("virtual_mailboxes", "virtual_mailbox_passwd", "virtual_users_domains"):
        doc = yaml.safe_load((FILTER_DIR / f"{name}.yml").read_text(encoding="utf-8"))
        assert doc["DOCUMENTATION"]["name"] == name


def test_virtual_mailboxes_returns_plan():
    result = virtual_mailboxes(DOMAINS, "/var/mail/vmail")
    assert result == plan(DOMAINS, "/var/mail/vmail")
    assert result["maildirs"] == ["/var/mail/vmail/example.org/alice", "/var/mail/vmail/example.org/bob"]
    assert "Secret-1" not in repr(result) and "Secret-2" not in repr(result)


def test_virtual_mailbox_passwd_returns_entries():
    result = virtual_mailbox_passwd(DOMAINS)
    assert result == passwd_entries(DOMAINS)
    assert result == [
        {"name": "alice@example.org", "extra_fields": "userdb_quota_rule=*:storage=1G", "password": "Secret-1"},
        {"name": "bob@example.org", "extra_fields": "", "hash": "{SHA512-CRYPT}$6$salt$Secret-2"},
    ]


def test_documented_virtual_mailboxes_example_is_accurate():
    doc = yaml.safe_load((FILTER_DIR / "virtual_mailboxes.yml").read_text(encoding="utf-8"))
    example = yaml.safe_load(doc["EXAMPLES"])[0]
    domains = example["vars"]["mailboxes_domains"]
    # The documented result is the comment after "# =>", up to the next example.
    comment = doc["EXAMPLES"].split("# =>", 1)[1].split("\n\n", 1)[0]
    documented = yaml.safe_load("\n".join(line.strip().removeprefix("#").strip() for line in comment.splitlines()))
    assert sorted(documented) == ["aliases", "domains", "maildirs", "vmailbox"]
    assert virtual_mailboxes(domains, "/var/mail/vmail") == documented


def test_text_gives_the_tables_as_postmap_source():
    doc = yaml.safe_load((FILTER_DIR / "virtual_mailboxes.yml").read_text(encoding="utf-8"))
    domains = yaml.safe_load(doc["EXAMPLES"])[0]["vars"]["mailboxes_domains"]
    pairs = virtual_mailboxes(domains, "/var/mail/vmail")
    text = virtual_mailboxes(domains, "/var/mail/vmail", text=True)
    assert text["vmailbox"] == "alice@example.org example.org/alice/\n"
    assert text["aliases"] == (
        "alice@example.org alice@example.org, alice@example.net\n"
        "postmaster@example.org alice@example.org\n"
        "@example.org alice@example.org\n"
    )
    assert (text["domains"], text["maildirs"]) == (pairs["domains"], pairs["maildirs"])


@pytest.mark.parametrize(
    ("call", "prefix"),
    [
        (lambda: virtual_mailboxes(BAD, "/v"), "virtual_mailboxes: "),
        (lambda: virtual_mailbox_passwd(BAD), "virtual_mailbox_passwd: "),
    ],
)
def test_errors_are_filter_errors_with_all_problems(call, prefix):
    with pytest.raises(AnsibleFilterError) as excinfo:
        call()
    message = excinfo.value.message
    assert message == (
        f"{prefix}mailboxes_domains[0].users[0] (x@a.org): give exactly one of password and hash; "
        "mailboxes_domains[0].users[1].quota: 'lots' is not a size such as 512M, 10G or 0 (unlimited)"
    )
    # Raised "from None": ansible-core would otherwise append the cause to the message.
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__ is True
    assert str(excinfo.value).count("give exactly one") == 1


def test_errors_use_the_given_variable_name():
    with pytest.raises(AnsibleFilterError, match=r"^virtual_mailboxes: doms: expected a list, got str$"):
        virtual_mailboxes("a.org", "/v", "doms")
    with pytest.raises(AnsibleFilterError, match=r"^virtual_mailbox_passwd: doms\[0\]: expected a dictionary"):
        virtual_mailbox_passwd([None], "doms")


def test_filters_do_not_catch_unrelated_exceptions():
    # Only MailboxesError becomes a filter error; anything else is a bug and propagates.
    class Weird(list):
        def __iter__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        virtual_mailboxes(Weird([1]), "/v")


FLAT = [
    {"name": "anna@Virtual.example.test", "password": "Anna-1"},
    {"name": "carl@other.test", "hash": "{SHA512-CRYPT}$6$x"},
    {"name": "ben@virtual.example.test", "password": "Ben-2"},
]


def test_virtual_users_domains_groups_by_domain_in_order():
    domains = virtual_users_domains(FLAT)
    assert domains == [
        {
            "name": "virtual.example.test",
            "users": [{"name": "anna", "password": "Anna-1"}, {"name": "ben", "password": "Ben-2"}],
        },
        {"name": "other.test", "users": [{"name": "carl", "hash": "{SHA512-CRYPT}$6$x"}]},
    ]
    # The result is a valid mailboxes_domains: same users and Maildirs as the flat list names.
    assert [e["name"] for e in virtual_mailbox_passwd(domains)] == [
        "anna@virtual.example.test",
        "ben@virtual.example.test",
        "carl@other.test",
    ]
    assert plan(domains, "/var/mail/vmail")["maildirs"] == [
        "/var/mail/vmail/virtual.example.test/anna",
        "/var/mail/vmail/virtual.example.test/ben",
        "/var/mail/vmail/other.test/carl",
    ]


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ("anna@x.test", "dovecot_virtual_users: expected a list"),
        (["anna@x.test"], r"dovecot_virtual_users\[0\]: expected a dictionary"),
        ([{"name": "nodomain", "password": "p"}], r"dovecot_virtual_users\[0\].name: expected one local@domain"),
        ([{"name": "a@b@c", "password": "p"}], r"dovecot_virtual_users\[0\].name"),
        ([{"name": "@b", "password": "p"}], r"dovecot_virtual_users\[0\].name"),
        (
            [{"name": "a@b.test", "password": "p", "extra_fields": "x=1"}],
            r"dovecot_virtual_users\[0\]: extra_fields cannot be carried over",
        ),
    ],
)
def test_virtual_users_domains_names_the_bad_entry(users, message):
    with pytest.raises(AnsibleFilterError, match=message):
        virtual_users_domains(users)
