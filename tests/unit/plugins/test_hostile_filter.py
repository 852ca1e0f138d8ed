# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 25: skipping the content filter, and values the target file cannot hold.

Each row runs exactly what the collection runs before the first change on a host, and names the
exact error it must raise:

- the postfix role's first task (the ``postfix_role_tables`` filter), and for the settings that are
  refused only while amavis is on, its install task's preflight (``mail_packages`` ``conflicts``,
  with the amavis role's fragment on the host);
- the ``postfix_config`` backend, which merges every role's fragment (a fragment may not touch what
  another ``owns``) and opens each regexp/pcre/cidr candidate with ``postmap -q`` before the swap;
  its commands are faked, and the host tree must be unchanged afterwards.

Positive rows prove the legitimate values still pass, and the warnings are emitted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter import amavis as amavis_filter
from ansible_collections.postmaster.mailserver.plugins.filter import postfix as postfix_filter
from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis.amavis_render import postfix_fragment
from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis.amavis_settings import check_settings
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_packages import (
    MailPackages,
    MailPackagesError,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postconf import (
    Postconf,
    PostconfError,
    run_postconf,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_config import (
    PostfixConfig,
    PostfixConfigError,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragments import (
    FragmentError,
    merge_fragments,
)
from ansible_collections.postmaster.mailserver.tests.unit.plugins.test_bad_input_matrix import (
    BASE_FRAGMENT,
    PF,
    SUPPORTED,
    _postfix_settings,
    _tree,
    postconf,
    postfix_config,
    postfix_role,
)

REINJECT = "smtp:[127.0.0.1]:10025"
AMAVIS_MAIN = "myhostname = mail.example.org\ncontent_filter = smtp-amavis:[127.0.0.1]:10024\n"
AMAVIS_ON = "invalid postfix role variables while the amavis role is on:\n- "
HINT = (
    "refused while the amavis role is on (its fragment 40-amavis.json owns the content filter); "
    "set amavis_enabled: false first if this is meant"
)


def amavis_fragment(**settings):
    """The amavis role's fragment as its last task hands it to postfix_config."""
    return postfix_fragment(check_settings({"myhostname": "mail.example.org", **settings}))


def postfix_role_with_amavis(**overrides):
    """The postfix role's first task, then its install task's preflight on a host where amavis is on."""

    def run():
        result = postfix_filter.postfix_role_tables(_postfix_settings(**overrides))
        conflict = result["amavis_conflict"]
        conflicts = [] if conflict is None else [{"path": f"/etc/postfix/postmaster.d/{conflict['fragment']}",
                                                  "msg": conflict["msg"]}]  # fmt: skip

        def nothing_runs(*_args, **_kwargs):
            raise AssertionError("the preflight ran a command")

        MailPackages(nothing_runs, lambda name: f"/usr/bin/{name}", exists=lambda path: True).preflight([], conflicts)

    return run


def with_amavis(tmp: Path, **fragments):
    """postfix_config with the amavis fragment and *fragments* handed to it, on a scratch host."""
    return postfix_config(tmp, fragments={"40-amavis.json": amavis_fragment(), **fragments})


def amavis_role_after(**fragments):
    """The amavis role's check of the fragments the postfix role's call found (postfix_fragment_texts)."""
    texts = {name: json.dumps(data) for name, data in fragments.items()}
    texts["40-amavis.json"] = "{}"  # its own fragment on the host (maybe an older one) is replaced, never judged
    settings = {"myhostname": "mail.example.org", "signatures": "freshclam"}
    return lambda: amavis_filter.amavis_postfix_fragment(settings, texts)


def service(name, type_="inet", command="smtpd", args=()):
    return {"name": name, "type": type_, "private": "n", "command": command, "args": list(args)}


def postmap_says(tmp: Path, table_type: str, key: str, stderr: str, origin: str = ""):
    """postfix_config writing one table whose candidate postmap -q answers with *stderr*; nothing may change."""

    def run():
        config = tmp / "postfix"
        (config / "postmaster.d").mkdir(parents=True, exist_ok=True)
        (config / "main.cf").write_text("# original\n")
        (config / "master.cf").write_text("smtp inet n - y - - smtpd\n")
        (config / "postmaster.d" / "00-base.json").write_text(json.dumps(BASE_FRAGMENT))
        before = _tree(tmp)
        asked = []

        def run_command(argv, environ_update=None, **_kwargs):
            if argv[-1] == "-m":
                return 0, SUPPORTED, ""
            if "-q" in argv:
                asked.append(argv)
                return 1, "", stderr.replace("CANDIDATE", argv[-1].split(":", 1)[1])
            return 0, "", ""

        try:
            PostfixConfig(
                fragment_dir=str(config / "postmaster.d"),
                config_dir=str(config),
                run_command=run_command,
                get_bin_path=lambda name: f"/usr/sbin/{name}",
                probe=lambda *_args: "220 ok",
                sleep=lambda _s: None,
                exists=lambda _path: True,
                tables=[
                    {"path": str(config / "checks"), "type": table_type, "content": f"{key} REJECT\n", "origin": origin}
                ],
            ).execute()
        finally:
            assert _tree(tmp) == before, "the module changed a file before failing"
            # The candidate lies in a private directory of its own, never next to the live table.
            assert asked and re.fullmatch(rf"{table_type}:/.+/postmaster-candidate-[^/]+/checks", asked[0][-1]), asked

    return run


# -- the matrix -------------------------------------------------------------------------------------------


def cases(tmp: Path):
    return [
        # A. FILTER actions to amavis's re-injection listener: always refused.
        pytest.param(
            postfix_role(postfix_header_checks=[{"pattern": "^X-Skip:", "action": f"FILTER {REINJECT}"}]),
            PF + f"postfix_header_checks[0].action: FILTER {REINJECT} sends mail to amavis's re-injection listener "
            "(127.0.0.1:10025), which takes mail back without a virus or spam check: any sender could skip the "
            "content filter",
            id="filter-header-reinject",
        ),
        pytest.param(
            postfix_role(postfix_header_checks=[{"pattern": "^X-Skip:", "action": f"  filter   {REINJECT}  "}]),
            f"postfix_header_checks[0].action: FILTER {REINJECT} sends mail to amavis's re-injection listener",
            id="filter-header-reinject-lower-case-padded",
        ),
        pytest.param(
            postfix_role(postfix_body_checks=[{"pattern": "skip", "action": "FILTER smtp:localhost:10025"}]),
            "postfix_body_checks[0].action: FILTER smtp:localhost:10025 sends mail to amavis's re-injection listener",
            id="filter-body-reinject-localhost",
        ),
        pytest.param(
            postfix_role(postfix_header_checks=[{"pattern": "^X:", "action": "FILTER lmtp:inet:127.0.0.1:10025"}]),
            "postfix_header_checks[0].action: FILTER lmtp:inet:127.0.0.1:10025 sends mail to amavis's re-injection",
            id="filter-header-reinject-lmtp-inet",
        ),
        pytest.param(
            postfix_role(postfix_header_checks=[{"pattern": "^X:", "action": "FILTER relay:[IPv6:::1]:10025"}]),
            "postfix_header_checks[0].action: FILTER relay:[IPv6:::1]:10025 sends mail to amavis's re-injection",
            id="filter-header-reinject-ipv6-loopback",
        ),
        pytest.param(
            postfix_role(postfix_maps=[{"name": "sender_access", "entries": [
                {"key": "boss@example.org", "value": f"FILTER {REINJECT}"}]}]),
            PF + f"postfix_maps[0].entries[0].value: FILTER {REINJECT} sends mail to amavis's re-injection listener",
            id="filter-access-map-reinject",
        ),
        pytest.param(
            postfix_role(postfix_maps=[{"name": "skip", "type": "pcre", "entries": [
                {"key": "/./", "value": "Filter smtp:[127.0.0.1]:10025"}]}]),
            PF + "postfix_maps[0].entries[0].value: FILTER smtp:[127.0.0.1]:10025 sends mail to amavis's",
            id="filter-pcre-map-reinject-mixed-case",
        ),
        pytest.param(
            postfix_role(postfix_header_checks=[{"pattern": "^X:", "action": "FILTER smtp-amavis"}]),
            PF + "postfix_header_checks[0].action: FILTER needs one transport:destination (such as "
            "smtp:[10.0.0.5]:10026), got 'smtp-amavis'",
            id="filter-without-destination",
        ),
        pytest.param(
            postfix_role(postfix_master_extra=[service("127.0.0.1:10025", args=["-o", "content_filter="])]),
            PF + "postfix_master_extra[0]: master.cf service 127.0.0.1:10025/inet is the amavis role's (its client "
            "or its re-injection listener); give the service another name",
            id="filter-master-extra-takes-reinject-service",
        ),
        pytest.param(
            postfix_role(postfix_master_extra=[service("smtp-amavis", "unix", "smtp")]),
            PF + "postfix_master_extra[0]: master.cf service smtp-amavis/unix is the amavis role's",
            id="filter-master-extra-takes-amavis-client",
        ),
        pytest.param(
            postfix_role(postfix_client_restrictions=[f"check_client_access static:{{FILTER {REINJECT}}}"]),
            PF + f"postfix_client_restrictions: 'check_client_access static:{{FILTER {REINJECT}}}': FILTER {REINJECT} "
            "sends mail to amavis's re-injection listener",
            id="filter-static-table-reinject",
        ),
        pytest.param(
            postfix_role(postfix_restriction_classes={"vip": [
                f"check_sender_access inline:{{ boss@example.org=filter {REINJECT} }}"]},
                postfix_sender_restrictions=["vip"]),
            PF + "postfix_restriction_classes.vip: 'check_sender_access inline:{ boss@example.org=filter "
            f"{REINJECT} }}': FILTER {REINJECT} sends mail to amavis's re-injection listener",
            id="filter-inline-table-in-class-reinject",
        ),
        # A. Refused while amavis is on (its fragment on the host): the install task's preflight.
        pytest.param(
            postfix_role_with_amavis(postfix_header_checks=[
                {"pattern": "^X-Archive:", "action": "FILTER smtp:[192.0.2.7]:10026"}]),
            AMAVIS_ON + "postfix_header_checks[0].action: FILTER smtp:[192.0.2.7]:10026 sends the mail it matches to "
            f"smtp:[192.0.2.7]:10026 instead of amavis, so a sender could skip the virus check; {HINT}",
            id="filter-header-elsewhere-amavis-on",
        ),
        pytest.param(
            postfix_role_with_amavis(postfix_maps=[{"name": "client_access", "type": "cidr", "entries": [
                {"key": "198.51.100.0/24", "value": "FILTER relay:[mx.example.net]"}]}]),
            AMAVIS_ON + "postfix_maps[0].entries[0].value: FILTER relay:[mx.example.net] sends the mail it matches",
            id="filter-access-map-elsewhere-amavis-on",
        ),
        pytest.param(
            postfix_role_with_amavis(postfix_recipient_restrictions=[
                "permit_mynetworks", "reject_unauth_destination", "check_client_access static:{FILTER relay:[192.0.2.7]}"]),
            AMAVIS_ON + "postfix_recipient_restrictions: 'check_client_access static:{FILTER relay:[192.0.2.7]}': "
            "FILTER relay:[192.0.2.7] sends the mail it matches to relay:[192.0.2.7] instead of amavis",
            id="filter-static-table-elsewhere-amavis-on",
        ),
        pytest.param(
            postfix_role_with_amavis(postfix_main_extra={"content_filter": ""}),
            AMAVIS_ON + f"postfix_main_extra.content_filter: content_filter routes mail to (or around) a content "
            f"filter; {HINT}",
            id="filter-main-extra-content-filter-amavis-on",
        ),
        pytest.param(
            postfix_role_with_amavis(postfix_main_extra={"smtpd_proxy_filter": REINJECT.removeprefix("smtp:")}),
            AMAVIS_ON + "postfix_main_extra.smtpd_proxy_filter: smtpd_proxy_filter routes mail to (or around)",
            id="filter-main-extra-proxy-filter-amavis-on",
        ),
        pytest.param(
            postfix_role_with_amavis(postfix_master_extra=[service("2525", args=["-o", "content_filter="])]),
            AMAVIS_ON + "postfix_master_extra[0]: -o content_filter routes mail to (or around) a content filter",
            id="filter-master-extra-dash-o-content-filter-amavis-on",
        ),
        pytest.param(
            postfix_role_with_amavis(postfix_master_extra=[
                service("2526", args=["-o", "{ smtpd_proxy_filter = [127.0.0.1]:10025 }"])]),
            AMAVIS_ON + "postfix_master_extra[0]: -o smtpd_proxy_filter routes mail to (or around)",
            id="filter-master-extra-braced-proxy-filter-amavis-on",
        ),
        pytest.param(
            postfix_role_with_amavis(postfix_submission_options={"content_filter": ""}),
            AMAVIS_ON + "postfix_submission_options.content_filter: content_filter routes mail to (or around)",
            id="filter-submission-content-filter-amavis-on",
        ),
        pytest.param(
            postfix_role_with_amavis(postfix_smtps_enabled=True, postfix_smtps_options={"smtpd_proxy_filter": ""}),
            AMAVIS_ON + "postfix_smtps_options.smtpd_proxy_filter: smtpd_proxy_filter routes mail to (or around)",
            id="filter-smtps-proxy-filter-amavis-on",
        ),
        # A. The fragment merge on the host: what the amavis fragment owns, no other fragment touches.
        pytest.param(
            with_amavis(tmp, **{"90-evil.json": {"main": {"content_filter": ""}, "overrides": ["content_filter"]}}),
            "main.cf parameter 'content_filter' belongs to 40-amavis.json (its \"owns\"); 90-evil.json may not set "
            'it, not even with "overrides"',
            id="merge-override-content-filter",
        ),
        pytest.param(
            with_amavis(tmp, **{"05-early.json": {"main": {"smtpd_proxy_filter": "[127.0.0.1]:10025"}}}),
            "main.cf parameter 'smtpd_proxy_filter' belongs to 40-amavis.json (its \"owns\"); 05-early.json may not",
            id="merge-earlier-fragment-proxy-filter",
        ),
        pytest.param(
            with_amavis(tmp, **{"90-evil.json": {"master": [service("2525", args=["-o", "content_filter="])]}}),
            "master.cf service '2525/inet' of 90-evil.json sets -o content_filter, which belongs to 40-amavis.json "
            '(its "owns"); only 40-amavis.json may set it',
            id="merge-dash-o-content-filter",
        ),
        pytest.param(
            with_amavis(tmp, **{"90-evil.json": {
                "master": [service("127.0.0.1:10025", args=["-o", "smtpd_client_restrictions=permit"])],
                "master_overrides": ["127.0.0.1:10025/inet"]}}),
            "master.cf service '127.0.0.1:10025/inet' belongs to 40-amavis.json (its \"master_owns\"); 90-evil.json "
            'may not define it, not even with "master_overrides"',
            id="merge-replace-reinject-service",
        ),
        pytest.param(
            with_amavis(tmp, **{"90-evil.json": {"insert": [
                {"param": "content_filter", "values": ["smtp:[192.0.2.7]:25"]}]}}),
            "fragment 90-evil.json: insert[0] changes main.cf parameter 'content_filter', which belongs to "
            '40-amavis.json (its "owns")',
            id="merge-insert-into-content-filter",
        ),
        pytest.param(
            with_amavis(tmp, **{"90-evil.json": {"main": {"content_filter": ""}, "owns": ["content_filter"]}}),
            "'content_filter' is owned by both 40-amavis.json and 90-evil.json (owns); only one may own it",
            id="merge-second-owner",
        ),
        # A. The amavis role, before amavis_config changes anything: the fragments the postfix role's call found.
        pytest.param(
            amavis_role_after(**{"10-postfix.json": {"main": {"content_filter": "smtp:[192.0.2.7]:25"}}}),
            "amavis_postfix_fragment: amavis_enabled: another role's Postfix fragment would let mail skip amavis: "
            "main.cf parameter 'content_filter' belongs to 40-amavis.json (its \"owns\"); 10-postfix.json may not set "
            'it, not even with "overrides"',
            id="filter-amavis-role-after-postfix-content-filter",
        ),
        pytest.param(
            amavis_role_after(**{"10-postfix.json": {"master": [service("2525", args=["-o", "smtpd_proxy_filter="])]}}),
            "amavis_postfix_fragment: amavis_enabled: another role's Postfix fragment would let mail skip amavis: "
            "master.cf service '2525/inet' of 10-postfix.json sets -o smtpd_proxy_filter, which belongs to "
            "40-amavis.json",
            id="filter-amavis-role-after-postfix-dash-o-proxy",
        ),
        # A. The postconf module on a host where main.cf hands mail to amavis.
        pytest.param(
            postconf({"content_filter": ""}, current=AMAVIS_MAIN),
            "params.content_filter: main.cf hands mail to amavis (content_filter = smtp-amavis:[127.0.0.1]:10024, "
            "from the amavis role's fragment 40-amavis.json); changing content_filter would let mail skip its virus "
            "and spam checks (set amavis_enabled: false in the amavis role instead)",
            id="filter-postconf-clears-content-filter",
        ),
        pytest.param(
            postconf({"smtpd_proxy_filter": "[127.0.0.1]:10025"}, current=AMAVIS_MAIN),
            "params.smtpd_proxy_filter: main.cf hands mail to amavis",
            id="filter-postconf-proxy-filter-to-reinject",
        ),
        # B. Patterns that cannot compile, refused on the controller where Python and Postfix agree.
        pytest.param(
            postfix_role(postfix_header_checks=[{"pattern": "^Subject: (free", "action": "DISCARD"}]),
            PF + "postfix_header_checks[0]: pattern '^Subject: (free' is not a valid regexp expression: missing ), "
            "unterminated subpattern at position 10",
            id="regexp-header-unbalanced-group",
        ),
        pytest.param(
            postfix_role(postfix_checks_type="pcre", postfix_body_checks=[{"pattern": "[z-a]+", "action": "HOLD"}]),
            PF + "postfix_body_checks[0]: pattern '[z-a]+' is not a valid pcre expression: bad character range z-a",
            id="pcre-body-reversed-range",
        ),
        pytest.param(
            postfix_role(postfix_maps=[{"name": "helo_checks", "type": "regexp", "entries": [
                {"key": "/^x{3,2}$/", "value": "REJECT"}]}]),
            PF + "postfix_maps[0].entries[0]: pattern '^x{3,2}$' is not a valid regexp expression: min repeat "
            "greater than max repeat",
            id="regexp-map-bad-interval",
        ),
        pytest.param(
            postfix_role(postfix_maps=[{"name": "sender_checks", "type": "pcre", "entries": [
                {"key": "/^(a)\\2@/i", "value": "REJECT"}]}]),
            PF + "postfix_maps[0].entries[0]: pattern '^(a)\\\\2@' is not a valid pcre expression: invalid group "
            "reference 2",
            id="pcre-map-missing-group",
        ),
        pytest.param(
            postfix_role(
                postfix_checks_type="pcre", postfix_header_checks=[{"pattern": "^From:.*[abc", "action": "REJECT"}]
            ),
            PF + "postfix_header_checks[0]: pattern '^From:.*[abc' is not a valid pcre expression: unterminated "
            "character set",
            id="pcre-header-unterminated-set",
        ),
        # B. What only Postfix knows: postmap -q on the candidate, before anything is replaced.
        pytest.param(
            postmap_says(tmp, "regexp", "/(?i)subject/",
                         "postmap: warning: regexp map CANDIDATE, line 1: Invalid preceding regular expression\n",
                         origin="postfix_header_checks"),
            f"writing the tables failed: postfix_header_checks ({tmp}/postfix/checks): Postfix's own lookup refused the candidate regexp "
            f"table (nothing was replaced): postmap: warning: regexp map {tmp}/postfix/checks, line 1: Invalid "
            "preceding regular expression",
            id="postmap-regexp-candidate-warning",
        ),
        pytest.param(
            postmap_says(tmp, "pcre", "/\\Qa(\\E/X",
                         "postmap: fatal: pcre map CANDIDATE, line 1: error in regex at offset 3\n"),
            f"Postfix's own lookup refused the candidate pcre table (nothing was replaced): postmap: fatal: pcre map "
            f"{tmp}/postfix/checks, line 1: error in regex at offset 3",
            id="postmap-pcre-candidate-fatal",
        ),
        pytest.param(
            postmap_says(tmp, "cidr", "192.0.2.0/33",
                         "postmap: warning: cidr map CANDIDATE, line 1: bad net/mask pattern: \"192.0.2.0/33\"\n"),
            "Postfix's own lookup refused the candidate cidr table (nothing was replaced): postmap: warning: cidr "
            'map',
            id="postmap-cidr-candidate-warning",
        ),
        # B. Values the file's syntax cannot hold.
        pytest.param(
            postfix_role(postfix_relayhost="[smtp.example.net]:587", postfix_relay_credentials=[
                {"relayhost": "[smtp.example.net]:587", "username": "ops:team", "password": "Secret-1"}]),
            PF + "postfix_relay_credentials[0].username: contains ':', a control character or leading/trailing "
            "whitespace, which the SASL password map cannot hold (Postfix splits username:password at the first ':')",
            id="relay-username-colon",
        ),
        pytest.param(
            postfix_role(postfix_relayhost="[smtp.example.net]:587", postfix_relay_credentials=[
                {"relayhost": "[smtp.example.net]:587", "username": "ops\tteam", "password": "Secret-1"}]),
            PF + "postfix_relay_credentials[0].username: contains ':', a control character",
            id="relay-username-tab",
        ),
        pytest.param(
            postfix_role(postfix_relayhost="[smtp.example.net]:587", postfix_relay_credentials=[
                {"relayhost": "[smtp.example.net]:587", "username": "ops", "password": "Secret-1 "}]),
            PF + "postfix_relay_credentials[0].password: contains a control character or ends with whitespace, "
            "which the SASL password map cannot hold (postmap drops the whitespace at the end of a line)",
            id="relay-password-trailing-space",
        ),
        pytest.param(
            postfix_role(postfix_maps=[{"name": "access", "entries": [{"key": "bad key", "value": "OK"}]}]),
            PF + "postfix_maps[0].entries[0]: key 'bad key' is empty, contains whitespace or starts with '#'",
            id="map-key-whitespace",
        ),
        pytest.param(
            postfix_role(postfix_maps=[{"name": "access", "entries": [{"key": "#comment", "value": "OK"}]}]),
            PF + "postfix_maps[0].entries[0]: key '#comment' is empty, contains whitespace or starts with '#'",
            id="map-key-hash",
        ),
    ]  # fmt: skip


def test_there_are_enough_rows():
    ids = [case.id for case in cases(Path("/nonexistent"))]
    assert len(ids) >= 20 and len(set(ids)) == len(ids)
    assert {case_id.split("-")[0] for case_id in ids} <= {
        "filter",
        "merge",
        "regexp",
        "pcre",
        "postmap",
        "relay",
        "map",
    }


@pytest.mark.parametrize("case_id", [case.id for case in cases(Path("/nonexistent"))])
def test_hostile_input_fails_with_the_exact_error(tmp_path, case_id):
    (case,) = [case for case in cases(tmp_path) if case.id == case_id]
    run, expected = case.values
    with pytest.raises((AnsibleFilterError, MailPackagesError, PostfixConfigError, PostconfError)) as raised:
        run()
    assert expected in str(raised.value)


# -- what stays possible ------------------------------------------------------------------------------------


@pytest.fixture
def warnings(monkeypatch):
    shown: list[str] = []

    class Recorder:
        def warning(self, message):
            shown.append(message)

    monkeypatch.setattr(postfix_filter, "Display", Recorder)
    monkeypatch.setattr(amavis_filter, "Display", Recorder)
    return shown


@pytest.mark.parametrize(
    "overrides",
    [
        {"postfix_header_checks": [{"pattern": "^X-Scan:", "action": "FILTER smtp-amavis:[127.0.0.1]:10024"}]},
        {"postfix_header_checks": [{"pattern": "^X-Copy:", "action": "BCC archive@example.org"}]},
        {"postfix_header_checks": [{"pattern": "^X-Fwd:", "action": "REDIRECT postmaster@example.org"}]},
        {"postfix_header_checks": [{"pattern": "^Subject:.*\\(urgent\\)", "action": "PREPEND X-Urgent: yes"}]},
        {"postfix_header_checks": [{"pattern": "^Received:.*[\\]x", "action": "IGNORE"}]},
        {"postfix_checks_type": "pcre", "postfix_header_checks": [{"pattern": "(*UTF)^Subject: \\Q(\\E", "action": "HOLD"}]},
        {"postfix_maps": [{"name": "helo", "type": "regexp", "entries": [{"key": "/^a)/", "value": "REJECT"}]}]},
        {"postfix_strip_received_networks": ["10.", "192.168."]},
        {"postfix_main_extra": {"receive_override_options": "no_address_mappings"}},
        {"postfix_relayhost": "[smtp.example.net]:587", "postfix_relay_credentials": [
            {"relayhost": "[smtp.example.net]:587", "username": "ops@example.net", "password": "a:b c#d"}]},
    ],
    ids=["filter-to-amavis", "bcc", "redirect", "escaped-parens", "ere-backslash-in-brackets", "pcre-only-syntax",
         "ere-unmatched-close-paren", "strip-received", "receive-override-options", "relay-password-with-colon"],
)  # fmt: skip
def test_legitimate_values_pass_with_amavis_on(overrides, warnings):
    postfix_role_with_amavis(**overrides)()
    assert warnings == []


def test_a_filter_elsewhere_passes_while_amavis_is_off():
    result = postfix_filter.postfix_role_tables(
        _postfix_settings(
            postfix_header_checks=[{"pattern": "^X-Archive:", "action": "FILTER smtp:[192.0.2.7]:10026"}],
            postfix_main_extra={"content_filter": "scan:[127.0.0.1]:10030"},
        )
    )
    assert result["amavis_conflict"]["fragment"] == "40-amavis.json"
    host = MailPackages(lambda *a, **k: (0, "", ""), lambda name: name, exists=lambda path: False)
    host.preflight([], [{"path": "/etc/postfix/postmaster.d/40-amavis.json", "msg": result["amavis_conflict"]["msg"]}])


def test_an_extra_smtpd_is_worth_a_warning(warnings):
    postfix_filter.postfix_role_tables(_postfix_settings(postfix_master_extra=[service("2525")]))
    assert warnings == [
        "postfix_role_tables: postfix_master_extra[0]: master.cf service 2525/inet is one more smtpd that takes mail "
        "from outside, without a content filter of its own: its mail is scanned only while the amavis role is on "
        "(main.cf's content_filter), and is delivered unscanned otherwise"
    ]
    # Once, not again in the role's second call (the relay passwords).
    postfix_filter.postfix_role_tables(_postfix_settings(postfix_master_extra=[service("2525")]), secrets=True)
    assert len(warnings) == 1


def test_a_loopback_smtpd_is_not_worth_a_warning(warnings):
    postfix_filter.postfix_role_tables(_postfix_settings(postfix_master_extra=[service("127.0.0.1:10030")]))
    assert warnings == []


AMAVIS = {"myhostname": "mail.example.org", "signatures": "files",
          "clamav_signature_files": [{"name": "eicar.hdb", "content": "44d88612fea8a8f36de82e1278abb02f:68:Eicar\n"}]}  # fmt: skip


def test_passing_viruses_is_worth_a_warning(warnings):
    amavis_filter.amavis_settings({**AMAVIS, "final_virus_destiny": "d_pass"})
    assert warnings == [
        "amavis_settings: amavis_final_virus_destiny is D_PASS: mail in which ClamAV finds a virus is delivered "
        "anyway (with an X-Amavis-Alert header)"
    ]


@pytest.mark.parametrize("name", ["local.fp", "local.sfp", "local.ign", "local.ign2"])
def test_a_clamav_allow_list_is_worth_a_warning(name, warnings):
    files = [*AMAVIS["clamav_signature_files"], {"name": name, "content": "Eicar-Test-Signature\n"}]
    amavis_filter.amavis_settings({**AMAVIS, "clamav_signature_files": files})
    assert warnings == [
        f"amavis_settings: amavis_clamav_signature_files[1].name: {name} is a ClamAV allow-list (.fp/.sfp trust files "
        "by their hash, .ign/.ign2 switch signatures off): what it lists is never reported as a virus"
    ]
    # The role's second call (only the text of files given by src) does not repeat it.
    amavis_filter.amavis_settings({**AMAVIS, "clamav_signature_files": files}, sources={})
    assert len(warnings) == 1


def test_default_amavis_settings_warn_of_nothing(warnings):
    amavis_filter.amavis_settings(AMAVIS)
    amavis_filter.amavis_settings({**AMAVIS, "final_virus_destiny": "D_PASS", "enabled": False})
    amavis_filter.amavis_settings({**AMAVIS, "final_virus_destiny": "D_PASS", "clamav_enabled": False})
    assert warnings == []


def test_the_amavis_fragment_owns_the_content_filter_and_its_services():
    data = amavis_fragment(postfix_filter="before_queue")
    assert data["owns"] == ["content_filter", "smtpd_proxy_filter"]
    assert data["master_owns"] == ["smtp-amavis/unix", "127.0.0.1:10025/inet"]
    main, services = merge_fragments([("10-postfix.json", BASE_FRAGMENT), ("40-amavis.json", data)])
    assert main["content_filter"] == "smtp-amavis:[127.0.0.1]:10024"
    assert {s.key for s in services} >= {"smtp-amavis/unix", "127.0.0.1:10025/inet"}


def test_without_an_owner_overrides_still_work():
    later = {"main": {"content_filter": "scan:[127.0.0.1]:10030"}, "overrides": ["content_filter"]}
    main, _services = merge_fragments([("10-a.json", {"main": {"content_filter": ""}}), ("20-b.json", later)])
    assert main["content_filter"] == "scan:[127.0.0.1]:10030"
    with pytest.raises(FragmentError, match="master_owns lists 'x/inet', which its 'master' does not define"):
        merge_fragments([("10-a.json", {"master_owns": ["x/inet"]})])


def test_a_clean_candidate_table_is_looked_up_then_written(tmp_path):
    config = tmp_path / "postfix"
    (config / "postmaster.d").mkdir(parents=True)
    (config / "main.cf").write_text("# original\n")
    (config / "postmaster.d" / "00-base.json").write_text(json.dumps(BASE_FRAGMENT))
    calls = []

    def run_command(argv, environ_update=None, **_kwargs):
        calls.append(argv)
        if "-q" in argv:
            assert (Path(argv[-1].split(":", 1)[1])).read_text() == "/^Subject: x/ REJECT\n"
            return 1, "", ""
        return (0, SUPPORTED, "") if argv[-1] == "-m" else (0, "", "")

    PostfixConfig(
        fragment_dir=str(config / "postmaster.d"),
        config_dir=str(config),
        run_command=run_command,
        get_bin_path=lambda name: f"/usr/sbin/{name}",
        probe=lambda *_args: "220 ok",
        sleep=lambda _s: None,
        exists=lambda _path: True,
        tables=[{"path": str(config / "checks"), "type": "regexp", "content": "/^Subject: x/ REJECT\n"}],
    ).execute()
    assert (config / "checks").read_text() == "/^Subject: x/ REJECT\n"
    lookups = [argv for argv in calls if "-q" in argv]
    assert len(lookups) == 1 and lookups[0][1:5] == ["-c", str(config), "-q", "postmaster-table-probe"]
    assert sorted(p.name for p in config.iterdir() if "checks" in p.name) == ["checks"]


def test_the_amavis_role_passes_with_the_fragments_of_a_full_server():
    texts = {
        "10-postfix.json": json.dumps(BASE_FRAGMENT),
        "30-dovecot-sasl.json": json.dumps({"main": {"smtpd_sasl_type": "dovecot"}}),
        "40-amavis.json": None,
    }
    fragment = amavis_filter.amavis_postfix_fragment({"myhostname": "mail.example.org"}, texts)
    assert fragment["main"] == {"content_filter": "smtp-amavis:[127.0.0.1]:10024"}
    assert amavis_filter.amavis_postfix_fragment({"myhostname": "mail.example.org", "enabled": False}, texts) is None


@pytest.mark.parametrize(
    ("current", "params"),
    [
        ("myhostname = mail.example.org\n", {"content_filter": "scan:[127.0.0.1]:10030"}),
        (AMAVIS_MAIN, {"smtpd_banner": "$myhostname ESMTP"}),
    ],
    ids=["content-filter-without-amavis", "other-parameter-with-amavis"],
)
def test_postconf_still_sets_what_does_not_skip_amavis(current, params):
    written = []

    def run_command(argv, environ_update=None):
        if "-e" in argv:
            written.append(argv[argv.index("-e") + 1 :])
        return 0, current, ""

    run_postconf(Postconf(run_command, "/etc/postfix", "/usr/sbin/postconf"), params)
    assert written == [[f"{name}={value}" for name, value in params.items()]]
