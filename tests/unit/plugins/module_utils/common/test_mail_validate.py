# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.common import mail_validate as mv
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate import (
    MailValidationError,
    validate_address,
    validate_addresses,
    validate_domain,
)

LONG_LABEL = "a" * 64
LONG_DOMAIN = ".".join(["a" * 63] * 4)  # 255 characters


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("example.org", "example.org"),
        ("Mail.Example.ORG", "mail.example.org"),
        ("localhost", "localhost"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a-b.c0", "a-b.c0"),
        ("1.example", "1.example"),
        (".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61]), ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])),
    ],
)
def test_valid_domains(value, expected):
    assert validate_domain(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, r"^dom: expected a domain name string, got null$"),
        (42, r"^dom: expected a domain name string, got int$"),
        ("", r"^dom: '' is not a valid domain name: it is empty$"),
        ("bücher.example", r"non-ASCII characters; give an internationalized domain in its ASCII \(punycode\) form"),
        (" example.org", r"leading or trailing whitespace"),
        ("example.org.", r"remove the trailing dot"),
        (LONG_DOMAIN, r"it is 255 characters long, the maximum is 253"),
        ("a..example", r"it has an empty label"),
        (".example", r"it has an empty label"),
        (f"{LONG_LABEL}.example", r"is longer than 63 characters"),
        ("-a.example", r"label '-a' starts or ends with a hyphen"),
        ("a-.example", r"label 'a-' starts or ends with a hyphen"),
        ("a_b.example", r"label 'a_b' may contain only letters, digits and hyphens"),
        ("exa mple.org", r"may contain only letters, digits and hyphens"),
        ("192.168.1.1", r"the last label is numeric"),
    ],
)
def test_invalid_domains(value, message):
    with pytest.raises(MailValidationError, match=message):
        validate_domain(value, "dom")


@pytest.mark.parametrize(
    ("value", "catchall", "expected"),
    [
        ("alice@example.org", False, "alice@example.org"),
        ("Alice.Smith@Example.ORG", False, "Alice.Smith@example.org"),
        ("a+tag@example.org", False, "a+tag@example.org"),
        ("o'hara!#$%&*=?^_`{|}~-@example.org", False, "o'hara!#$%&*=?^_`{|}~-@example.org"),
        ("@Example.org", True, "@example.org"),
        ("root@localhost", False, "root@localhost"),
    ],
)
def test_valid_addresses(value, catchall, expected):
    assert validate_address(value, catchall=catchall) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, r"^v: expected a mail address string, got null$"),
        (["a@b.c"], r"^v: expected a mail address string, got list$"),
        ("alice", r"^v: 'alice' is not a valid mail address: it has no '@'$"),
        ("bad@@x", r"^v: 'bad@@x' is not a valid mail address: it has more than one '@'$"),
        ("jörg@example.org", r"it contains non-ASCII characters$"),
        (
            "a" * 60 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".org",
            r"it is 256 characters long, the maximum is 254",
        ),
        ("@example.org", r"the local part before '@' is empty"),
        ("a" * 65 + "@example.org", r"the local part is longer than 64 characters"),
        ("../etc@example.org", r"'/' is not allowed in the local part"),
        (".alice@example.org", r"starts or ends with '\.' or contains '\.\.'"),
        ("alice.@example.org", r"starts or ends with '\.' or contains '\.\.'"),
        ("al..ice@example.org", r"starts or ends with '\.' or contains '\.\.'"),
        ('"al ice"@example.org', r"""the local part contains ' ', '"' \(quoted local parts are not supported\)"""),
        ("a(b)@example.org", r"the local part contains '\(', '\)'"),
        ("alice@", r"domain '': it is empty"),
        ("alice@exa_mple.org", r"domain 'exa_mple.org': label 'exa_mple' may contain only"),
        ("alice@10.0.0.1", r"domain '10.0.0.1': the last label is numeric"),
    ],
)
def test_invalid_addresses(value, message):
    with pytest.raises(MailValidationError, match=message):
        validate_address(value, "v")


def test_address_list():
    assert validate_addresses(["a@Example.org", "b@x.y"], "fw") == ["a@example.org", "b@x.y"]
    assert validate_addresses((), "fw") == []
    assert validate_addresses(["@x.org"], "fw", catchall=True) == ["@x.org"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a@example.org", r"^fw: expected a list of mail addresses, got str$"),
        (b"a@example.org", r"^fw: expected a list of mail addresses, got bytes$"),
        ({"a": 1}, r"^fw: expected a list of mail addresses, got dict$"),
        (None, r"^fw: expected a list of mail addresses, got null$"),
        (["a@example.org", "nope"], r"^fw\[1\]: 'nope' is not a valid mail address: it has no '@'$"),
        (["a@example.org", 3], r"^fw\[1\]: expected a mail address string, got int$"),
    ],
)
def test_invalid_address_lists(value, message):
    with pytest.raises(MailValidationError, match=message):
        validate_addresses(value, "fw")


@pytest.mark.parametrize(
    ("value", "fqdn"),
    [
        ("mail.example.test", True),
        ("Mail.Example.TEST", True),
        ("a" * 63 + ".test", True),
        ("localhost", False),  # one label
        ("mail.example.test.", False),
        ("mail..example.test", False),
        ("mail_1.example.test", False),
        ("192.0.2.1", False),
        ("a" * 64 + ".test", False),
        ("mail.example.test\nmynetworks = 0.0.0.0/0", False),
        (None, False),
        (5, False),
    ],
)
def test_one_fqdn_check_for_every_role(value, fqdn):
    assert mv.is_fqdn(value) is fqdn


def test_a_certificate_name_may_be_a_wildcard_and_says_how_to_give_an_ip():
    assert mv.host_name_problem("*.example.test", wildcard=True) is None
    assert "label '*'" in mv.host_name_problem("*.example.test")
    assert mv.host_name_problem("192.0.2.1", ip_hint="give it as IP:<address>").endswith("(give it as IP:<address>)")


def test_the_roles_use_the_shared_check():
    from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis import amavis_settings
    from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes import maildir
    from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix import postfix_role
    from ansible_collections.postmaster.mailserver.plugins.module_utils.tls import tls_certificate

    assert amavis_settings.is_fqdn is postfix_role.is_fqdn is maildir.is_fqdn is mv.is_fqdn
    assert tls_certificate.host_name_problem is mv.host_name_problem
