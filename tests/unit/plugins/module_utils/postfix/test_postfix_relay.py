# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The relay guard: restriction lists judged the way smtpd evaluates them."""

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_relay import (
    BLOCK,
    OPEN,
    PASS,
    RelayJudge,
    action_outcome,
    cover_everything,
    is_loopback_service,
    relay_findings,
    table_catch_all,
    validate_relay,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import (
    MasterService,
    PostfixValidationError,
)

CLOSED = ["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"]


def smtpd(name, *options, type_="inet"):
    args = [item for option in options for item in ("-o", option)]
    return MasterService(name=name, type=type_, command="smtpd", args=args)


@pytest.mark.parametrize(
    "main",
    [
        {},  # Postfix's default smtpd_relay_restrictions ends in defer_unauth_destination
        {"smtpd_relay_restrictions": CLOSED},
        {"smtpd_relay_restrictions": "", "smtpd_recipient_restrictions": CLOSED},
        {"smtpd_relay_restrictions": ["permit"], "smtpd_recipient_restrictions": CLOSED},
        {"smtpd_relay_restrictions": ["permit_sasl_authenticated", "reject"]},
        {"smtpd_relay_restrictions": ["warn_if_reject reject_unknown_client_hostname", "reject_unauth_destination"]},
        {"smtpd_relay_restrictions": ["check_client_access hash:/etc/postfix/access", "reject_unauth_destination"]},
        {"smtpd_relay_restrictions": ["check_client_access static:REJECT"]},
        {"smtpd_relay_restrictions": ["check_client_access static:DUNNO", "defer_unauth_destination"]},
        {"smtpd_relay_restrictions": ["permit_auth_destination", "permit_mx_backup", "permit_dnswl_client list.dnswl.org", "defer_if_permit"],
         "permit_mx_backup_networks": "192.0.2.0/24"},
        {"smtpd_relay_restrictions": "$relay", "relay": "permit_mynetworks, reject_unauth_destination"},
        {"smtpd_restriction_classes": "strict", "strict": ["reject_unauth_destination"],
         "smtpd_relay_restrictions": ["strict"]},
        {"smtpd_relay_restrictions": ["check_client_access static:{reject_unauth_destination}"]},
        {"mynetworks": ["10.0.0.0/8", "[2001:db8::]/32"], "smtpd_relay_restrictions": CLOSED},
    ],
)  # fmt: skip
def test_closed_relays(main):
    assert relay_findings(main) == []
    assert validate_relay(main) == []


@pytest.mark.parametrize(
    ("main", "relay_reason"),
    [
        ({"smtpd_relay_restrictions": ["permit"]}, "lets every client through at entry 1: 'permit' permits every client"),
        ({"smtpd_relay_restrictions": ["warn_if_reject reject_unauth_destination"]},
         "only logs its reject_unauth_destination (warn_if_reject) and ends without a decision"),
        ({"smtpd_relay_restrictions": ["warn_if_reject", "reject", "permit"]},
         "lets every client through at entry 3: 'permit' permits every client"),
        ({"smtpd_relay_restrictions": ["check_client_access static:OK", "reject_unauth_destination"]},
         "lets every client through at entry 1: 'check_client_access static:OK': static:OK answers 'OK' for every key"),
        ({"smtpd_relay_restrictions": ["check_sender_access static:{ OK }", "reject_unauth_destination"]},
         "'check_sender_access static:{ OK }': static:{ OK } answers 'OK' for every key"),
        ({"smtpd_relay_restrictions": ["check_client_access proxy:static:250", "reject"]}, "answers '250' for every key"),
        ({"smtpd_relay_restrictions": ["static:permit", "reject_unauth_destination"]},
         "'static:permit': static:permit answers 'permit' for every key, which lets every client through at entry 1"),
        ({"smtpd_restriction_classes": "anyone", "anyone": "permit",
          "smtpd_relay_restrictions": ["anyone", "reject_unauth_destination"]},
         "restriction class 'anyone' lets every client through at entry 1: 'permit' permits every client"),
        ({"mynetworks": "0.0.0.0/0", "smtpd_relay_restrictions": CLOSED},
         "'permit_mynetworks' permits every client (parameter mynetworks: 0.0.0.0/0 covers every IPv4 address"),
        ({"smtpd_relay_restrictions": ["permit_sasl_authenticated"]}, "ends without rejecting unauthorized destinations"),
    ],
)  # fmt: skip
def test_open_relays_name_the_entry(main, relay_reason):
    findings = relay_findings(main)
    relay = [finding for finding in findings if finding.startswith("main.cf would relay")]
    assert len(relay) == 1
    assert relay[0].startswith("main.cf would relay mail for anyone: smtpd_relay_restrictions ")
    assert relay_reason in relay[0]
    assert relay[0].endswith("and smtpd_recipient_restrictions ends without rejecting unauthorized destinations")
    with pytest.raises(PostfixValidationError, match=r"^open relay refused:\n  - ") as excinfo:
        validate_relay(main)
    assert "set postfix_allow_open_relay: true in the postfix role" in str(excinfo.value)
    assert validate_relay(main, allow_open_relay=True) == findings


@pytest.mark.parametrize(
    ("items", "covered"),
    [
        (["0.0.0.0/0"], "every IPv4 address"),
        (["[::]/0"], "every IPv6 address"),
        (["0.0.0.0/1", "128.0.0.0/1"], "every IPv4 address"),
        (["[::]/1", "[8000::]/1"], "every IPv6 address"),
        (["!10.0.0.1", "0.0.0.0/0", "[::]/0"], "every IPv4 address and every IPv6 address"),
    ],
)
def test_networks_that_cover_everything(items, covered):
    assert cover_everything("mynetworks", items) == (
        f"parameter mynetworks: {', '.join(items)} covers {covered}, so every client is trusted"
    )


@pytest.mark.parametrize(
    "items",
    [
        ["127.0.0.0/8", "[::1]/128"],
        ["0.0.0.0/1"],
        ["[::ffff:0.0.0.0]/96"],
        ["$mynetworks_default", "/etc/postfix/networks"],
        [],
    ],
)
def test_networks_that_do_not(items):
    assert cover_everything("mynetworks", items) is None


@pytest.mark.parametrize(
    ("action", "outcome"),
    [("OK", OPEN), ("ok whatever", OPEN), ("250", OPEN), ("REJECT no", BLOCK), ("554 5.7.1 no", BLOCK),
     ("DISCARD", BLOCK), ("DUNNO", PASS), ("PREPEND X-Y: z", PASS), ("permit_mynetworks", None),
     # smtpd's check_table_result(): an empty list of restrictions is OK, and so are digits alone.
     ("", OPEN), (" , ", OPEN), ("550", OPEN), ("RELAY", OPEN), ("250 ok", BLOCK)],
)  # fmt: skip
def test_access_actions(action, outcome):
    assert action_outcome(action) == outcome


def test_catch_all_tables():
    assert table_catch_all("cidr", "# c\n10.0.0.0/8 REJECT\n0.0.0.0/0 OK\n") == "OK"
    assert table_catch_all("cidr", "[::]/0 permit\n") == "permit"
    assert table_catch_all("cidr", "10.0.0.0/8 OK\n") is None
    assert table_catch_all("cidr", "if 10.0.0.0/8\n0.0.0.0/0 OK\nendif\n") is None
    assert table_catch_all("regexp", "/^spam@/ REJECT\n/./ OK\n") == "OK"
    assert table_catch_all("pcre", "/^/ OK\n") == "OK"
    assert table_catch_all("regexp", "!/^x/ OK\n/[/ OK\n/@example\\.org$/ OK\n") is None
    assert table_catch_all("regexp", "if /./\n/./ OK\nendif\n") is None
    assert table_catch_all("hash", "0.0.0.0/0 OK\n") is None


def test_catch_all_tables_are_read_through_the_callback():
    tables = {"/etc/postfix/clients": "0.0.0.0/0 OK\n", "/etc/postfix/senders": "/@/ OK\n"}

    def read(_type, name):
        return tables.get(name)

    for entry in ("check_client_access cidr:/etc/postfix/clients", "check_sender_access regexp:/etc/postfix/senders"):
        main = {"smtpd_relay_restrictions": [entry, "reject_unauth_destination"]}
        assert relay_findings(main) == []
        (finding,) = relay_findings(main, read_table=read)
        assert f"'{entry}': " in finding and "answers 'OK' for every client" in finding
    assert (
        relay_findings({"smtpd_relay_restrictions": ["check_client_access cidr:/missing", "reject"]}, read_table=read)
        == []
    )


def test_master_cf_overrides_are_judged_per_service():
    services = [
        smtpd("smtp"),
        smtpd("submission", "smtpd_relay_restrictions=permit_sasl_authenticated,reject"),
        smtpd("2525", "smtpd_relay_restrictions=permit", "smtpd_recipient_restrictions="),
        smtpd("2526", "{ smtpd_relay_restrictions = warn_if_reject reject_unauth_destination }"),
        smtpd("2527", "mynetworks=0.0.0.0/0"),
        smtpd("127.0.0.1:10025", "smtpd_relay_restrictions=permit", "smtpd_recipient_restrictions="),
        smtpd("smtpd", "smtpd_relay_restrictions=permit", type_="pass"),
        smtpd("private", "smtpd_relay_restrictions=permit", type_="unix"),
    ]
    findings = relay_findings({"smtpd_relay_restrictions": CLOSED}, services)
    assert [finding.split(" (main.cf")[0] for finding in findings] == [
        "master.cf service 2525/inet",
        "master.cf service 2526/inet",
        "master.cf service 2527/inet",
        "master.cf service 2527/inet",
        "master.cf service smtpd/pass",
    ]
    assert "-o parameter mynetworks: 0.0.0.0/0 covers every IPv4 address" in findings[2]
    assert "'permit_mynetworks' permits every client" in findings[3]


def test_a_service_that_changes_nothing_is_not_reported_twice():
    services = [smtpd("smtp"), smtpd("2525", "syslog_name=postfix/2525")]
    assert len(relay_findings({"smtpd_relay_restrictions": ["permit"]}, services)) == 1


@pytest.mark.parametrize(
    ("name", "loopback"),
    [("127.0.0.1:10025", True), ("[::1]:10025", True), ("localhost:10025", True), ("127.0.0.2:25", True),
     ("10025", False), ("0.0.0.0:10025", False), ("mail.example.org:25", False), ("smtp", False)],
)  # fmt: skip
def test_loopback_services(name, loopback):
    assert is_loopback_service(MasterService(name=name, type="inet", command="smtpd")) is loopback


def test_judge_verdicts():
    relay, recipient = RelayJudge({"smtpd_recipient_restrictions": ["reject_unauth_destination"]}).verdict()
    assert relay.outcome == BLOCK  # the default list
    assert recipient == (BLOCK, "stops relaying at entry 1 ('reject_unauth_destination')")


@pytest.mark.parametrize(
    ("entry", "tables", "key"),
    [
        # A sender or HELO name is whatever the client says: one OK entry lets every client relay.
        ("check_sender_access hash:/etc/postfix/senders", {"/etc/postfix/senders": "boss@example.org OK\n"},
         "boss@example.org"),
        ("check_sender_access lmdb:/etc/postfix/senders",
         {"/etc/postfix/senders": "# trusted\nspam@x.test REJECT\nexample.org   250\n"}, "example.org"),
        ("check_helo_access hash:/etc/postfix/helo", {"/etc/postfix/helo": "mail.example.org OK\n"},
         "mail.example.org"),
        ("check_sender_access pcre:/etc/postfix/senders", {"/etc/postfix/senders": "/@example\\.org$/ permit\n"},
         "/@example\\.org$/"),
    ],
)  # fmt: skip
def test_a_permit_for_a_claimed_key_is_an_open_relay(entry, tables, key):
    main = {"smtpd_relay_restrictions": [entry, "reject_unauth_destination"]}
    (finding,) = relay_findings(main, read_table=lambda _type, name: tables.get(name))
    assert f"'{entry}': " in finding and f"for {key!r}, which any client can claim" in finding


@pytest.mark.parametrize(
    ("entries", "tables"),
    [
        # Only rejections, or the check after the blocker: closed.
        (["check_sender_access hash:/etc/postfix/senders", "reject_unauth_destination"],
         {"/etc/postfix/senders": "spam@x.test REJECT\nexample.net DUNNO\n"}),
        (["reject_unauth_destination", "check_sender_access hash:/etc/postfix/senders"],
         {"/etc/postfix/senders": "boss@example.org OK\n"}),
        # The client's address is not claimed: a specific OK is like mynetworks, not an open relay.
        (["check_client_access hash:/etc/postfix/clients", "reject_unauth_destination"],
         {"/etc/postfix/clients": "192.0.2.7 OK\n"}),
        # smtpd refuses OK from the MX/NS/A checks and the reverse client name (forbid_allowlist: 451 4.3.5).
        (["check_sender_mx_access cidr:/etc/postfix/mx", "reject_unauth_destination"],
         {"/etc/postfix/mx": "192.0.2.0/24 OK\n"}),
        # The recipient decides only where mail may go, for the domains listed.
        (["check_recipient_access hash:/etc/postfix/rcpt", "reject_unauth_destination"],
         {"/etc/postfix/rcpt": "example.org OK\n"}),
    ],
)  # fmt: skip
def test_claimed_keys_that_permit_nothing_before_the_blocker(entries, tables):
    main = {"smtpd_relay_restrictions": entries}
    assert relay_findings(main, read_table=lambda _type, name: tables.get(name)) == []
