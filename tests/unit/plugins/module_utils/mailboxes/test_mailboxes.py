# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import re
import time

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.mailboxes import (
    MailboxesError,
    passwd_entries,
    plan,
)

BASE = "/var/mail/vmail"


def user(name, secret="pw", **extra):
    return {"name": name, "password": secret, **extra}


def error_of(domains, name="mailboxes_domains"):
    with pytest.raises(MailboxesError) as excinfo:
        plan(domains, BASE, name)
    return str(excinfo.value)


def plan_of(domains):
    return error_of(domains)


def passwd_of(domains):
    with pytest.raises(MailboxesError) as excinfo:
        passwd_entries(domains)
    return str(excinfo.value)


# --- plan(): normal output ---------------------------------------------------


def test_plan_full_example():
    domains = [
        {
            "name": "Example.ORG",
            "users": [
                user("Alice", forward=["alice@example.net"], keep_copy=True),
                user("bob", quota="1G"),
            ],
            "aliases": [{"name": "postmaster", "to": ["alice@example.org"]}],
            "catchall": "alice@example.org",
        },
        {"name": "example.net", "users": [user("carol")]},
    ]
    assert plan(domains, BASE) == {
        "domains": ["example.org", "example.net"],
        "maildirs": [
            "/var/mail/vmail/example.org/alice",
            "/var/mail/vmail/example.org/bob",
            "/var/mail/vmail/example.net/carol",
        ],
        "vmailbox": [
            ["alice@example.org", "example.org/alice/"],
            ["bob@example.org", "example.org/bob/"],
            ["carol@example.net", "example.net/carol/"],
        ],
        "aliases": [
            ["alice@example.org", ["alice@example.org", "alice@example.net"]],
            ["bob@example.org", ["bob@example.org"]],  # identity: the domain has a catch-all
            ["postmaster@example.org", ["alice@example.org"]],
            ["@example.org", ["alice@example.org"]],
        ],
    }


def test_plan_lower_cases_domains_and_addresses():
    result = plan([{"name": "MAIL.Example.COM", "users": [user("John.Doe")]}], "/srv/vmail")
    assert result["domains"] == ["mail.example.com"]
    assert result["maildirs"] == ["/srv/vmail/mail.example.com/john.doe"]
    assert result["vmailbox"] == [["john.doe@mail.example.com", "mail.example.com/john.doe/"]]
    assert result["aliases"] == []


def test_plan_user_given_by_address():
    result = plan([{"name": "example.org", "users": [{"address": "Dave@EXAMPLE.org", "hash": "{PLAIN}x"}]}], BASE)
    assert result["vmailbox"] == [["dave@example.org", "example.org/dave/"]]
    assert result["maildirs"] == [f"{BASE}/example.org/dave"]


def test_plan_integer_local_part():
    result = plan([{"name": "example.org", "users": [user(1234)]}], BASE)
    assert result["vmailbox"] == [["1234@example.org", "example.org/1234/"]]
    assert result["maildirs"] == [f"{BASE}/example.org/1234"]


def test_plan_forward_without_keep_copy():
    result = plan([{"name": "example.org", "users": [user("a", forward=["x@other.org", "y@other.org"])]}], BASE)
    assert result["aliases"] == [["a@example.org", ["x@other.org", "y@other.org"]]]
    # The user keeps a mailbox (the table entry) even when all mail is forwarded.
    assert result["vmailbox"] == [["a@example.org", "example.org/a/"]]


def test_plan_forward_with_keep_copy_puts_address_first_and_deduplicates():
    forward = ["x@other.org", "a@example.org", "x@other.org"]
    result = plan([{"name": "example.org", "users": [user("a", forward=forward, keep_copy=True)]}], BASE)
    assert result["aliases"] == [["a@example.org", ["a@example.org", "x@other.org"]]]


def test_plan_forward_duplicates_removed_without_keep_copy():
    forward = ["x@other.org", "y@other.org", "x@other.org"]
    result = plan([{"name": "example.org", "users": [user("a", forward=forward)]}], BASE)
    assert result["aliases"] == [["a@example.org", ["x@other.org", "y@other.org"]]]


def test_plan_keep_copy_without_forward_adds_nothing():
    result = plan([{"name": "example.org", "users": [user("a", keep_copy=True)]}], BASE)
    assert result["aliases"] == []


def test_plan_empty_forward_list_is_no_forward():
    result = plan([{"name": "example.org", "users": [user("a", forward=[])]}], BASE)
    assert result["aliases"] == []


def test_plan_identity_aliases_only_with_catchall():
    users = [user("a"), user("b", forward=["z@other.org"]), user("c")]
    with_catchall = plan([{"name": "example.org", "users": users, "catchall": "a@example.org"}], BASE)
    assert with_catchall["aliases"] == [
        ["a@example.org", ["a@example.org"]],
        ["b@example.org", ["z@other.org"]],  # the forward entry already shields it from the catch-all
        ["c@example.org", ["c@example.org"]],
        ["@example.org", ["a@example.org"]],
    ]
    without = plan([{"name": "example.org", "users": users}], BASE)
    assert without["aliases"] == [["b@example.org", ["z@other.org"]]]


def test_plan_catchall_is_per_domain_and_last_of_its_domain():
    domains = [
        {
            "name": "a.org",
            "users": [user("u")],
            "aliases": [{"name": "info", "to": ["u@a.org"]}],
            "catchall": "u@a.org",
        },
        {"name": "b.org", "users": [user("v")], "aliases": [{"name": "sales", "to": ["v@b.org"]}]},
    ]
    aliases = plan(domains, BASE)["aliases"]
    assert aliases == [
        ["u@a.org", ["u@a.org"]],
        ["info@a.org", ["u@a.org"]],
        ["@a.org", ["u@a.org"]],
        ["sales@b.org", ["v@b.org"]],  # no identity entry: b.org has no catch-all
    ]


def test_plan_catchall_can_point_outside_the_domain():
    result = plan([{"name": "a.org", "catchall": "Someone@Other.ORG"}], BASE)
    assert result["aliases"] == [["@a.org", ["Someone@other.org"]]]
    assert result["domains"] == ["a.org"]
    assert result["maildirs"] == [] and result["vmailbox"] == []


def test_plan_empty_catchall_is_none():
    result = plan([{"name": "a.org", "users": [user("u")], "catchall": ""}], BASE)
    assert result["aliases"] == []


def test_plan_explicit_aliases_by_name_and_address():
    domains = [
        {
            "name": "example.org",
            "aliases": [
                {"name": "Postmaster", "to": ["root@other.org"]},
                {"address": "Abuse@Example.org", "to": ["a@other.org", "b@other.org", "a@other.org"]},
            ],
        }
    ]
    result = plan(domains, BASE)
    assert result["aliases"] == [
        ["postmaster@example.org", ["root@other.org"]],
        ["abuse@example.org", ["a@other.org", "b@other.org"]],
    ]
    assert result["vmailbox"] == [] and result["maildirs"] == []


def test_plan_none_and_missing_lists_are_empty():
    assert plan(None, BASE) == {"domains": [], "maildirs": [], "vmailbox": [], "aliases": []}
    assert plan([], BASE) == {"domains": [], "maildirs": [], "vmailbox": [], "aliases": []}
    result = plan([{"name": "a.org", "users": None, "aliases": None}, {"name": "b.org"}], BASE)
    assert result == {"domains": ["a.org", "b.org"], "maildirs": [], "vmailbox": [], "aliases": []}


def test_plan_accepts_tuples():
    result = plan(({"name": "a.org", "users": (user("u"),)},), BASE)
    assert result["vmailbox"] == [["u@a.org", "a.org/u/"]]


def test_plan_never_returns_secrets():
    domains = [
        {
            "name": "example.org",
            "users": [
                user("a", "Secret-Password-1", forward=["x@other.org"], keep_copy=True, quota="2G"),
                {"name": "b", "hash": "{SHA512-CRYPT}$6$saltsalt$Secret-Hash-2"},
            ],
            "aliases": [{"name": "c", "to": ["a@example.org"]}],
            "catchall": "a@example.org",
        }
    ]
    text = repr(plan(domains, BASE))
    assert "Secret-Password-1" not in text
    assert "Secret-Hash-2" not in text
    assert "SHA512-CRYPT" not in text
    assert "$6$" not in text


# --- passwd_entries() --------------------------------------------------------


def test_passwd_entries_password_hash_quota_and_order():
    domains = [
        {
            "name": "B.org",
            "users": [
                user("Zed", "pz", quota="1G"),
                {"name": "amy", "hash": "{SHA512-CRYPT}$6$x$y"},
            ],
            "aliases": [{"name": "al", "to": ["zed@b.org"]}],
            "catchall": "zed@b.org",
        },
        {"name": "a.org", "users": [user("m", "pm", quota=0), user("n", "pn", quota="50%")]},
    ]
    assert passwd_entries(domains) == [
        {"name": "zed@b.org", "extra_fields": "userdb_quota_rule=*:storage=1G", "password": "pz"},
        {"name": "amy@b.org", "extra_fields": "", "hash": "{SHA512-CRYPT}$6$x$y"},
        {"name": "m@a.org", "extra_fields": "userdb_quota_rule=*:storage=0", "password": "pm"},
        {"name": "n@a.org", "extra_fields": "userdb_quota_rule=*:storage=50%", "password": "pn"},
    ]


def test_passwd_entries_hash_user_has_no_password_key_and_vice_versa():
    entries = passwd_entries([{"name": "a.org", "users": [user("p"), {"name": "h", "hash": "{PLAIN}h"}]}])
    assert set(entries[0]) == {"name", "extra_fields", "password"}
    assert set(entries[1]) == {"name", "extra_fields", "hash"}


@pytest.mark.parametrize("quota", [None, ""])
def test_passwd_entries_no_quota_gives_empty_extra_fields(quota):
    entries = passwd_entries([{"name": "a.org", "users": [user("u", quota=quota)]}])
    assert entries == [{"name": "u@a.org", "extra_fields": "", "password": "pw"}]


@pytest.mark.parametrize("quota", ["0", "512", "512M", "10G", "1T", "100B", "8K", "80%", 42])
def test_passwd_entries_valid_quotas(quota):
    entries = passwd_entries([{"name": "a.org", "users": [user("u", quota=quota)]}])
    assert entries[0]["extra_fields"] == f"userdb_quota_rule=*:storage={quota}"


def test_passwd_entries_empty_and_none():
    assert passwd_entries(None) == []
    assert passwd_entries([{"name": "a.org"}]) == []


def test_passwd_entries_checks_like_plan():
    # An error outside the users (an alias without targets) fails passwd_entries too.
    domains = [{"name": "a.org", "users": [user("u")], "aliases": [{"name": "x", "to": []}]}]
    with pytest.raises(MailboxesError, match=r"aliases\[0\]\.to: x@a.org needs at least one target"):
        passwd_entries(domains)
    with pytest.raises(MailboxesError, match=r"^doms\[0\]\.aliases\[0\]\.to"):
        passwd_entries(domains, "doms")


# --- errors ------------------------------------------------------------------


def test_error_duplicate_user_across_domain_listed_twice():
    message = error_of([{"name": "a.org", "users": [user("x")]}, {"name": "A.ORG", "users": [user("X")]}])
    assert "mailboxes_domains[1].name: domain a.org is listed twice" in message
    assert "mailboxes_domains[1].users[0]: x@a.org is also mailboxes_domains[0].users[0]" in message


def test_error_duplicate_user_in_one_domain():
    message = error_of([{"name": "a.org", "users": [user("x"), user("y"), user("X")]}])
    assert message == "mailboxes_domains[0].users[2]: x@a.org is also mailboxes_domains[0].users[0]"


def test_error_alias_same_as_user():
    message = error_of(
        [{"name": "a.org", "users": [user("x")], "aliases": [{"address": "X@a.org", "to": ["y@b.org"]}]}]
    )
    assert message == "mailboxes_domains[0].aliases[0]: x@a.org is also mailboxes_domains[0].users[0]"


def test_error_alias_listed_twice():
    aliases = [{"name": "x", "to": ["y@b.org"]}, {"name": "x", "to": ["z@b.org"]}]
    message = error_of([{"name": "a.org", "aliases": aliases}])
    assert message == "mailboxes_domains[0].aliases[1]: x@a.org is also mailboxes_domains[0].aliases[0]"


def test_error_duplicate_domain_without_users():
    assert error_of([{"name": "a.org"}, {"name": "b.org"}, {"name": "a.org"}]) == (
        "mailboxes_domains[2].name: domain a.org is listed twice"
    )


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "x", "password": "p", "hash": "{PLAIN}h"},
        {"name": "x"},
        {"name": "x", "password": None, "hash": None},
    ],
)
def test_error_password_and_hash(entry):
    assert error_of([{"name": "a.org", "users": [entry]}]) == (
        "mailboxes_domains[0].users[0] (x@a.org): give exactly one of password and hash"
    )


@pytest.mark.parametrize("quota", ["lots", "1GB", "1g", "-1", "1.5G", "1 G", "10G\n", "10G\nx", "1\r"])
def test_error_bad_quota(quota):
    message = error_of([{"name": "a.org", "users": [user("x", quota=quota)]}])
    assert message == f"mailboxes_domains[0].users[0].quota: {quota!r} is not a size such as 512M, 10G or 0 (unlimited)"


@pytest.mark.parametrize(("quota", "kind"), [(True, "bool"), (1.5, "float"), (["1G"], "list"), ({"a": 1}, "dict")])
def test_error_quota_of_the_wrong_type(quota, kind):
    message = error_of([{"name": "a.org", "users": [user("x", quota=quota)]}])
    assert message == (
        f"mailboxes_domains[0].users[0].quota: must be a size such as 512M, 10G or 0 (unlimited), got {kind}"
    )


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ({"password": "pw\nx"}, "password: contains a line break or NUL (the value is not shown)"),
        ({"password": "pw\n"}, "password: contains a line break or NUL (the value is not shown)"),
        ({"password": "p\rw"}, "password: contains a line break or NUL (the value is not shown)"),
        ({"password": "p\0w"}, "password: contains a line break or NUL (the value is not shown)"),
        ({"password": ["Sekr1t", "x"]}, "password: must be a string, got list (the value is not shown)"),
        ({"password": {"a": "Sekr1t"}}, "password: must be a string, got dict (the value is not shown)"),
        ({"password": True}, "password: must be a string, got bool (the value is not shown)"),
        ({"password": 1.5}, "password: must be a string, got float (the value is not shown)"),
        ({"password": ""}, "password: must not be empty"),
        ({"hash": "$6$abc"}, "hash: must look like {SCHEME}value"),
        ({"hash": "{SHA512-CRYPT}$6$a\nb"}, "hash: must look like {SCHEME}value"),
        ({"hash": "{SHA512-CRYPT}$6$a:b"}, "hash: must look like {SCHEME}value"),
        ({"hash": ["{SHA512-CRYPT}$6$a"]}, "hash: must be a string such as {SHA512-CRYPT}$6$..., got list"),
    ],
)  # fmt: skip
def test_error_bad_secret_fails_in_the_filter_without_showing_it(secrets, message):
    entry = {"name": "x", **secrets}
    for name, filt in (("virtual_mailboxes", plan_of), ("virtual_mailbox_passwd", passwd_of)):
        text = filt([{"name": "a.org", "users": [entry]}])
        assert text.startswith("mailboxes_domains[0].users[0]." + message), (name, text)
        assert "Sekr1t" not in text and "pw\n" not in text


def test_a_numeric_password_is_taken_as_its_digits():
    (entry,) = passwd_entries([{"name": "a.org", "users": [{"name": "x", "password": 123456}]}])
    assert entry["password"] == "123456"


@pytest.mark.parametrize("to", [[], None])
def test_error_alias_without_targets(to):
    message = error_of([{"name": "a.org", "aliases": [{"name": "x", "to": to}]}])
    assert message == "mailboxes_domains[0].aliases[0].to: x@a.org needs at least one target"


def test_error_alias_missing_to_key():
    message = error_of([{"name": "a.org", "aliases": [{"name": "x"}]}])
    assert message == "mailboxes_domains[0].aliases[0].to: x@a.org needs at least one target"


def test_error_alias_bad_target():
    message = error_of([{"name": "a.org", "aliases": [{"name": "x", "to": ["ok@b.org", "bad"]}]}])
    assert message.startswith("mailboxes_domains[0].aliases[0].to[1]: 'bad' is not a valid mail address")


@pytest.mark.parametrize("kind", ["users", "aliases"])
def test_error_address_outside_its_domain(kind):
    entry = {"address": "x@b.org", "password": "p", "to": ["y@c.org"]}
    message = error_of([{"name": "a.org", kind: [entry]}])
    assert message == f"mailboxes_domains[0].{kind}[0].address: x@b.org is not in the domain a.org"


def test_error_subdomain_address_is_outside_the_domain():
    message = error_of([{"name": "a.org", "users": [{"address": "x@mail.a.org", "password": "p"}]}])
    assert message == "mailboxes_domains[0].users[0].address: x@mail.a.org is not in the domain a.org"


def test_error_invalid_address():
    message = error_of([{"name": "a.org", "users": [{"address": "x@@a.org", "password": "p"}]}])
    assert message.startswith("mailboxes_domains[0].users[0].address: 'x@@a.org' is not a valid mail address")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bad_domain", r"^mailboxes_domains\[0\]\.name: 'bad_domain' is not a valid domain name"),
        ("b\u00fccher.example", r"^mailboxes_domains\[0\]\.name: .* non-ASCII"),
        ("example.org.", r"^mailboxes_domains\[0\]\.name: .* remove the trailing dot$"),
        (None, r"^mailboxes_domains\[0\]\.name: expected a domain name string, got null$"),
        (42, r"^mailboxes_domains\[0\]\.name: expected a domain name string, got int$"),
    ],
)
def test_error_bad_domain_name(value, expected):
    # The users of a domain that is not valid are not checked (their addresses are unknown).
    message = error_of([{"name": value, "users": [{"name": "bad local"}]}])
    assert re.search(expected, message), message
    assert "users" not in message


@pytest.mark.parametrize(
    ("local", "problem"),
    [
        ("a b", "the local part contains ' '"),
        ("a/b", "'/' is not allowed in the local part"),
        (".a", "starts or ends with '.'"),
        ("a..b", "contains '..'"),
        ("a@b", "more than one '@'"),
        ("x" * 65, "the local part is longer than 64 characters"),
    ],
)
def test_error_bad_local_part_names_name(local, problem):
    message = error_of([{"name": "a.org", "users": [user(local)]}])
    assert message.startswith("mailboxes_domains[0].users[0].name: "), message
    assert problem in message


def test_error_bad_alias_local_part_names_name():
    message = error_of([{"name": "a.org", "aliases": [{"name": "a b", "to": ["x@b.org"]}]}])
    assert message.startswith("mailboxes_domains[0].aliases[0].name: 'a b@a.org' is not a valid mail address")


@pytest.mark.parametrize(("local", "type_name"), [(True, "bool"), (1.5, "float"), (["a"], "list")])
def test_error_local_part_not_a_string(local, type_name):
    message = error_of([{"name": "a.org", "users": [user(local)]}])
    assert message == f"mailboxes_domains[0].users[0].name: expected a local part string, got {type_name}"


def test_error_neither_name_nor_address():
    message = error_of([{"name": "a.org", "users": [{"password": "p"}], "aliases": [{"to": ["x@b.org"]}]}])
    assert message == (
        "mailboxes_domains[0].users[0]: give name or address; mailboxes_domains[0].aliases[0]: give name or address"
    )


def test_error_bad_forward_target_names_index():
    message = error_of([{"name": "a.org", "users": [user("u", forward=["nope"])]}])
    assert message == "mailboxes_domains[0].users[0].forward[0]: 'nope' is not a valid mail address: it has no '@'"


def test_error_forward_not_a_list():
    message = error_of([{"name": "a.org", "users": [user("u", forward="x@b.org")]}])
    assert message == "mailboxes_domains[0].users[0].forward: expected a list of mail addresses, got str"


def test_error_bad_catchall():
    message = error_of([{"name": "a.org", "catchall": "nobody"}])
    assert message == "mailboxes_domains[0].catchall: 'nobody' is not a valid mail address: it has no '@'"


@pytest.mark.parametrize(
    ("domains", "expected"),
    [
        (["a.org"], "mailboxes_domains[0]: expected a dictionary, got str"),
        ([None], "mailboxes_domains[0]: expected a dictionary, got null"),
        ([{"name": "a.org", "users": ["u"]}], "mailboxes_domains[0].users[0]: expected a dictionary, got str"),
        ([{"name": "a.org", "users": [None]}], "mailboxes_domains[0].users[0]: expected a dictionary, got null"),
        ([{"name": "a.org", "aliases": [["x"]]}], "mailboxes_domains[0].aliases[0]: expected a dictionary, got list"),
    ],
)
def test_error_non_dict_entries(domains, expected):
    assert error_of(domains) == expected


@pytest.mark.parametrize(
    ("domains", "expected"),
    [
        ("a.org", "mailboxes_domains: expected a list, got str"),
        ({"name": "a.org"}, "mailboxes_domains: expected a list, got dict"),
        (42, "mailboxes_domains: expected a list, got int"),
        ([{"name": "a.org", "users": "alice"}], "mailboxes_domains[0].users: expected a list, got str"),
        ([{"name": "a.org", "users": {"name": "alice"}}], "mailboxes_domains[0].users: expected a list, got dict"),
        ([{"name": "a.org", "aliases": "x"}], "mailboxes_domains[0].aliases: expected a list, got str"),
    ],
)
def test_error_non_list(domains, expected):
    assert error_of(domains) == expected


def test_error_names_the_given_variable():
    message = error_of([{"name": "a.org", "users": [user("a b")]}], name="my_domains")
    assert message.startswith("my_domains[0].users[0].name: ")
    assert "mailboxes_domains" not in message


def test_all_errors_reported_together():
    domains = [
        {"name": "a.org", "users": [user("ok"), {"name": "nosecret"}]},
        "not a dict",
        {"name": "b.org", "users": [user("x", quota="huge")], "aliases": [{"name": "x", "to": ["y@c.org"]}]},
    ]
    message = error_of(domains)
    assert message.split("; ") == [
        "mailboxes_domains[0].users[1] (nosecret@a.org): give exactly one of password and hash",
        "mailboxes_domains[1]: expected a dictionary, got str",
        "mailboxes_domains[2].users[0].quota: 'huge' is not a size such as 512M, 10G or 0 (unlimited)",
        "mailboxes_domains[2].aliases[0]: x@b.org is also mailboxes_domains[2].users[0]",
    ]


def test_two_separate_mistakes_in_one_message_for_passwd_entries_too():
    domains = [{"name": "a.org", "users": [user("a b"), user("c", forward=["bad"])]}]
    with pytest.raises(MailboxesError) as excinfo:
        passwd_entries(domains)
    message = str(excinfo.value)
    assert "mailboxes_domains[0].users[0].name: " in message
    assert "mailboxes_domains[0].users[1].forward[0]: " in message


def test_errors_never_contain_secrets():
    domains = [
        {
            "name": "a.org",
            "users": [
                {"name": "x", "password": "Secret-Password-1", "hash": "{PLAIN}Secret-Hash-2", "quota": "bad"},
                {"name": "x", "password": "Secret-Password-3"},
            ],
        }
    ]
    message = error_of(domains)
    assert "give exactly one of password and hash" in message and "is also" in message
    for secret in ("Secret-Password-1", "Secret-Hash-2", "Secret-Password-3"):
        assert secret not in message


def test_mailboxes_error_is_a_value_error():
    assert issubclass(MailboxesError, ValueError)


# --- scale -------------------------------------------------------------------


def test_scale_10000_users_in_10_domains():
    domains = [
        {
            "name": f"domain{d}.example",
            "users": [
                {"name": f"user{u}", "password": f"pw{u}", "quota": "1G"}
                if u % 2
                else {"name": f"user{u}", "hash": "{PLAIN}h"}
                for u in range(1000)
            ],
            "aliases": [{"name": "postmaster", "to": [f"user0@domain{d}.example"]}],
            "catchall": f"user0@domain{d}.example",
        }
        for d in range(10)
    ]
    start = time.perf_counter()
    result = plan(domains, BASE)
    entries = passwd_entries(domains)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"plan + passwd_entries took {elapsed:.2f} s"
    assert len(result["domains"]) == 10
    assert len(result["maildirs"]) == 10_000
    assert len(result["vmailbox"]) == 10_000
    # One identity entry per user (every domain has a catch-all), one alias and one catch-all per domain.
    assert len(result["aliases"]) == 10_000 + 10 + 10
    assert result["aliases"][-1] == ["@domain9.example", ["user0@domain9.example"]]
    assert len(entries) == 10_000
    assert entries[1] == {
        "name": "user1@domain0.example",
        "extra_fields": "userdb_quota_rule=*:storage=1G",
        "password": "pw1",
    }
    assert sum("hash" in e for e in entries) == 5_000


def test_a_lazy_list_from_ansible_is_called_a_list():
    """ansible-core 2.19 hands filters subclasses such as _AnsibleLazyTemplateList."""

    class _AnsibleLazyTemplateList(list):
        pass

    message = error_of([{"name": "a.org", "users": [{"name": "x", "password": _AnsibleLazyTemplateList(["s"])}]}])
    assert message == "mailboxes_domains[0].users[0].password: must be a string, got list (the value is not shown)"


# --- a virtual domain that is also one of Postfix's local domains -------------

MYDESTINATION = "imap.example.org, localhost.example.org, localhost, example.org"


@pytest.mark.parametrize(
    "local",
    [
        MYDESTINATION,  # postconf -x -h mydestination
        "imap.example.org localhost example.org",
        ["imap.example.org", "Example.ORG."],
    ],
)
def test_a_virtual_domain_in_mydestination_is_refused_naming_the_entry(local):
    domains = [{"name": "example.net", "users": [user("bob")]}, {"name": "Example.org", "users": [user("alice")]}]
    with pytest.raises(MailboxesError) as excinfo:
        plan(domains, BASE, local_domains=local)
    message = str(excinfo.value)
    assert message.startswith("mailboxes_domains[1].name: example.org is also a local domain of Postfix")
    assert "postfix_mydestination" in message
    assert "mailboxes_domains[0]" not in message


def test_the_hostname_as_a_virtual_domain_is_refused_when_mydestination_has_it():
    domains = [{"name": "imap.example.org", "users": [user("alice")]}]
    with pytest.raises(MailboxesError, match=r"^mailboxes_domains\[0\]\.name: imap\.example\.org is also a local"):
        plan(domains, BASE, local_domains=MYDESTINATION)


def test_other_problems_are_reported_with_the_local_domain():
    domains = [{"name": "example.org", "users": [user("alice"), user("alice")]}]
    with pytest.raises(MailboxesError) as excinfo:
        plan(domains, BASE, local_domains=MYDESTINATION)
    assert "example.org is also a local domain" in str(excinfo.value)
    assert "users[1]: alice@example.org is also mailboxes_domains[0].users[0]" in str(excinfo.value)


@pytest.mark.parametrize("local", [None, "", "imap.example.org, localhost", []])
def test_a_virtual_domain_outside_mydestination_passes(local):
    result = plan([{"name": "example.org", "users": [user("alice")]}], BASE, local_domains=local)
    assert result["domains"] == ["example.org"]


def test_a_subdomain_of_a_local_domain_is_not_the_local_domain():
    result = plan([{"name": "lists.example.org", "users": [user("alice")]}], BASE, local_domains=MYDESTINATION)
    assert result["domains"] == ["lists.example.org"]
