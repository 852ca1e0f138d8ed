# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragments import (
    FragmentError,
    apply_insert,
    check_fragment,
    load_fragments,
    merge_fragments,
    parse_fragment,
    split_entries,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import MasterService

BASE = {
    "main": {
        "myhostname": "mail.example.org",
        "smtpd_recipient_restrictions": ["permit_mynetworks", "reject_unauth_destination"],
        "smtpd_milters": "",
    },
    "master": [
        {"name": "smtp", "type": "inet", "private": "n", "chroot": "y", "command": "smtpd"},
        {"name": "pickup", "type": "unix", "private": "n", "chroot": "y", "wakeup": "60", "maxproc": "1", "command": "pickup"},
    ],
}  # fmt: skip
SPF = {
    "main": {"policyd-spf_time_limit": 3600},
    "insert": [
        {
            "param": "smtpd_recipient_restrictions",
            "after": "reject_unauth_destination",
            "values": ["check_policy_service unix:private/policyd-spf"],
        }
    ],
    "master": [
        {"name": "policyd-spf", "type": "unix", "unpriv": "n", "chroot": "n", "maxproc": "0", "command": "spawn",
         "args": ["user=policyd-spf", "argv=/usr/bin/policyd-spf"]}
    ],
}  # fmt: skip


def write(directory, name, data):
    path = directory / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


# -- loading ----------------------------------------------------------------------


def test_load_fragments_sorted_and_ignores_other_files(tmp_path):
    write(tmp_path, "50-spf.json", SPF)
    write(tmp_path, "00-base.json", BASE)
    write(tmp_path, "README", "not a fragment")
    (tmp_path / "99-dir.json").mkdir()
    loaded = load_fragments(str(tmp_path))
    assert [name for name, _data in loaded] == ["00-base.json", "50-spf.json"]
    assert loaded[1][1] == SPF


def test_load_fragments_empty_dir(tmp_path):
    assert load_fragments(str(tmp_path)) == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("base.json", "{}", r"fragment base.json: file name must look like NN-name.json"),
        ("10-bad.json", "{not json", r"fragment 10-bad.json: invalid JSON"),
        ("10-bad.json", '{"main": {}, "main": {}}', r"fragment 10-bad.json: key 'main' appears twice"),
        ("10-bad.json", b"\xff\xfe", r"fragment 10-bad.json: cannot read"),
    ],
)
def test_load_fragments_errors_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(FragmentError, match=message):
        load_fragments(str(tmp_path))


def test_load_fragments_missing_dir(tmp_path):
    with pytest.raises(FragmentError, match="cannot read fragment directory"):
        load_fragments(str(tmp_path / "absent"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], r"must be a JSON object, got list"),
        (
            {"mian": {}},
            r"unknown top-level keys: mian \(allowed: main, overrides, insert, master, master_overrides, owns, "
            r"master_owns, allow_open_relay, trusted_policy_services\)",
        ),
        ({"main": []}, r"'main' must be an object"),
        ({"main": {"bad name": "x"}}, r"invalid main.cf parameter name 'bad name'"),
        ({"main": {"p": ["a", 1]}}, r"main.p: list items must be strings"),
        ({"main": {"p": {"a": 1}}}, r"main.p: value must be a string, number, boolean or list of strings, got dict"),
        ({"main": {"p": 1.5}}, r"main.p: value must be .*got float"),
        ({"main": {"p": None}}, r"main.p: value must be .*got NoneType"),
        ({"main": {"p": "a\nb"}}, r"main.p: value contains a line break"),
        ({"main": {"p": ["a\nb"]}}, r"main.p: value contains a line break"),
        ({"overrides": "p"}, r"'overrides' must be a list of strings"),
        ({"master_overrides": [1]}, r"'master_overrides' must be a list of strings"),
        ({"overrides": ["p"]}, r"overrides lists 'p', which its 'main' does not set"),
        ({"insert": {}}, r"'insert' must be a list"),
        ({"insert": ["x"]}, r"insert\[0\]: must be an object"),
        ({"insert": [{"param": "p", "values": ["a"], "where": "x"}]}, r"insert\[0\]: unknown keys: where"),
        ({"insert": [{"values": ["a"]}]}, r"insert\[0\]: 'param' must be a parameter name"),
        ({"insert": [{"param": "p", "after": "a", "before": "b", "values": ["a"]}]}, r"insert\[0\] \(p\): use either 'after' or 'before', not both"),
        ({"insert": [{"param": "p", "after": "", "values": ["a"]}]}, r"insert\[0\] \(p\): 'after' must be a non-empty string"),
        ({"insert": [{"param": "p", "before": 3, "values": ["a"]}]}, r"'before' must be a non-empty string"),
        ({"insert": [{"param": "p", "values": []}]}, r"'values' must be a non-empty list of non-empty strings"),
        ({"insert": [{"param": "p", "values": "a"}]}, r"'values' must be a non-empty list"),
        ({"insert": [{"param": "p", "values": [" "]}]}, r"'values' must be a non-empty list"),
        ({"master": {}}, r"'master' must be a list"),
        ({"master": [{"name": "x", "type": "bogus", "command": "smtpd"}]}, r"master\[0\]: master.cf service x: type must be one of"),
        ({"master": [{"name": "x", "type": "inet", "command": "smtpd"}, {"name": "x", "type": "inet", "command": "smtpd"}]},
         r"master service x/inet is defined twice"),
        ({"master_overrides": ["x/inet"]}, r"master_overrides lists 'x/inet', which its 'master' does not define"),
    ],
)  # fmt: skip
def test_check_fragment_errors_name_the_fragment(data, message):
    with pytest.raises(FragmentError, match=r"^fragment 10-x.json: .*" + message):
        check_fragment("10-x.json", data)


def test_parse_fragment_ok():
    assert parse_fragment("00-base.json", json.dumps(BASE)) == BASE


# -- merging ----------------------------------------------------------------------


def test_merge_base_and_spf():
    main, services = merge_fragments([("00-base.json", BASE), ("50-spf.json", SPF)])
    assert list(main) == ["myhostname", "smtpd_recipient_restrictions", "smtpd_milters", "policyd-spf_time_limit"]
    assert main["smtpd_recipient_restrictions"] == [
        "permit_mynetworks",
        "reject_unauth_destination",
        "check_policy_service unix:private/policyd-spf",
    ]
    assert [service.key for service in services] == ["smtp/inet", "pickup/unix", "policyd-spf/unix"]
    assert services[2] == MasterService.from_dict(SPF["master"][0])
    # the input is not modified
    assert BASE["main"]["smtpd_recipient_restrictions"] == ["permit_mynetworks", "reject_unauth_destination"]


def test_merge_is_idempotent_and_order_of_inserts_follows_fragments():
    first = merge_fragments([("00-base.json", BASE), ("50-spf.json", SPF)])
    again = merge_fragments([("00-base.json", BASE), ("50-spf.json", SPF)])
    assert first == again


def test_conflicting_main_key_names_both_fragments():
    other = {"main": {"myhostname": "other.example.org"}}
    with pytest.raises(FragmentError) as excinfo:
        merge_fragments([("00-base.json", BASE), ("20-other.json", other)])
    message = str(excinfo.value)
    assert "'myhostname'" in message
    assert "00-base.json" in message
    assert "20-other.json" in message


def test_override_lets_the_later_fragment_win_and_keeps_position():
    other = {"main": {"myhostname": "other.example.org"}, "overrides": ["myhostname"]}
    main, _services = merge_fragments([("00-base.json", BASE), ("20-other.json", other)])
    assert main["myhostname"] == "other.example.org"
    assert next(iter(main)) == "myhostname"


def test_override_of_an_unset_key_is_harmless():
    other = {"main": {"relayhost": "[smtp.example.org]:587"}, "overrides": ["relayhost"]}
    main, _services = merge_fragments([("00-base.json", BASE), ("20-relay.json", other)])
    assert main["relayhost"] == "[smtp.example.org]:587"


def test_conflicting_master_service_names_both_fragments_and_override():
    other = {"master": [{"name": "smtp", "type": "inet", "private": "n", "chroot": "n", "command": "smtpd",
                         "args": ["-o", "smtpd_sasl_auth_enable=no"]}]}  # fmt: skip
    with pytest.raises(FragmentError, match=r"service 'smtp/inet' is defined by both 00-base.json and 30-smtp.json"):
        merge_fragments([("00-base.json", BASE), ("30-smtp.json", other)])
    other["master_overrides"] = ["smtp/inet"]
    _main, services = merge_fragments([("00-base.json", BASE), ("30-smtp.json", other)])
    assert [service.key for service in services] == ["smtp/inet", "pickup/unix"]
    assert services[0].args == ["-o", "smtpd_sasl_auth_enable=no"]


def test_same_service_name_with_other_type_is_not_a_conflict():
    other = {"master": [{"name": "smtp", "type": "unix", "command": "smtp"}]}
    _main, services = merge_fragments([("00-base.json", BASE), ("30-smtp.json", other)])
    assert [service.key for service in services] == ["smtp/inet", "pickup/unix", "smtp/unix"]


def test_merge_checks_fragments():
    with pytest.raises(FragmentError, match=r"fragment 10-x.json: unknown top-level keys"):
        merge_fragments([("10-x.json", {"bogus": 1})])


# -- inserting --------------------------------------------------------------------


RESTR = "smtpd_recipient_restrictions"


@pytest.mark.parametrize(
    ("current", "insert", "expected"),
    [
        # after the anchor
        (["permit_mynetworks", "reject_unauth_destination", "permit"],
         {"after": "reject_unauth_destination", "values": ["check_policy_service unix:private/spf"]},
         ["permit_mynetworks", "reject_unauth_destination", "check_policy_service unix:private/spf", "permit"]),
        # the anchor matches the restriction name, not the whole entry
        (["check_client_access hash:/a", "check_client_access hash:/b"],
         {"after": "check_client_access", "values": ["reject_unauth_destination"]},
         ["check_client_access hash:/a", "reject_unauth_destination", "check_client_access hash:/b"]),
        # before the anchor
        ("permit_mynetworks, reject_unauth_destination",
         {"before": "reject_unauth_destination", "values": ["permit_sasl_authenticated"]},
         ["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"]),
        # appended
        (["permit_mynetworks"], {"values": ["reject_unauth_destination", "reject_rbl_client zen.spamhaus.org"]},
         ["permit_mynetworks", "reject_unauth_destination", "reject_rbl_client zen.spamhaus.org"]),
        # already present (whitespace differences ignored): nothing is duplicated
        ("permit_mynetworks, reject_unauth_destination, check_policy_service   unix:private/spf",
         {"after": "reject_unauth_destination", "values": ["check_policy_service unix:private/spf"]},
         ["permit_mynetworks", "reject_unauth_destination", "check_policy_service unix:private/spf"]),
        # partly present: only the missing value is inserted; duplicates in values collapse
        (["permit_mynetworks", "reject_unauth_destination"],
         {"after": "permit_mynetworks", "values": ["reject_unauth_destination", "permit_sasl_authenticated", "permit_sasl_authenticated"]},
         ["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"]),
    ],
)  # fmt: skip
def test_apply_insert(current, insert, expected):
    main = {RESTR: current}
    apply_insert("50-x.json", main, dict(insert, param=RESTR))
    assert main[RESTR] == expected
    # idempotent: applying again changes nothing
    apply_insert("50-x.json", main, dict(insert, param=RESTR))
    assert main[RESTR] == expected


def test_apply_insert_into_plain_list_param():
    main = {"smtpd_milters": "inet:localhost:8891"}
    apply_insert("50-x.json", main, {"param": "smtpd_milters", "values": ["unix:/run/opendkim.sock"]})
    assert main["smtpd_milters"] == ["inet:localhost:8891", "unix:/run/opendkim.sock"]
    main = {"smtpd_milters": ["inet:localhost:8891"]}
    apply_insert("50-x.json", main, {"param": "smtpd_milters", "before": "inet:localhost:8891", "values": ["a"]})
    assert main["smtpd_milters"] == ["a", "inet:localhost:8891"]


def test_apply_insert_creates_a_missing_param():
    main = {}
    apply_insert("50-x.json", main, {"param": RESTR, "after": "reject_unauth_destination", "values": ["a", "a", "b"]})
    assert main == {RESTR: ["a", "b"]}


@pytest.mark.parametrize("where", ["after", "before"])
def test_apply_insert_missing_anchor_names_fragment_and_param(where):
    main = {RESTR: ["permit_mynetworks"]}
    with pytest.raises(
        FragmentError, match=rf"fragment 50-x.json: cannot insert into {RESTR} {where} 'reject_unauth_destination'"
    ):
        apply_insert("50-x.json", main, {"param": RESTR, where: "reject_unauth_destination", "values": ["x"]})


def test_insert_anchor_error_through_merge():
    spf = dict(SPF, insert=[dict(SPF["insert"][0], after="reject_unlisted_recipient")])
    with pytest.raises(FragmentError, match=r"fragment 50-spf.json: cannot insert into smtpd_recipient_restrictions"):
        merge_fragments([("00-base.json", BASE), ("50-spf.json", spf)])


def test_inserts_run_after_all_main_merges():
    # 10-early inserts into a param that 20-late defines: still works, because inserts come last
    early = {
        "insert": [
            {
                "param": "smtpd_relay_restrictions",
                "before": "reject_unauth_destination",
                "values": ["permit_sasl_authenticated"],
            }
        ]
    }
    late = {"main": {"smtpd_relay_restrictions": ["permit_mynetworks", "reject_unauth_destination"]}}
    main, _services = merge_fragments([("10-early.json", early), ("20-late.json", late)])
    assert main["smtpd_relay_restrictions"] == [
        "permit_mynetworks",
        "permit_sasl_authenticated",
        "reject_unauth_destination",
    ]


def test_split_entries():
    assert split_entries(RESTR, "permit_mynetworks check_client_access hash:/x") == [
        "permit_mynetworks",
        "check_client_access hash:/x",
    ]
    assert split_entries("my_class_restrictions", ["sleep 1"]) == ["sleep 1"]
    assert split_entries("smtpd_milters", ["a ", " ", "b"]) == ["a", "b"]
    assert split_entries("smtpd_milters", "a b,c") == ["a", "b", "c"]


_MUA = {
    "main": {"postmaster_mua_sasl_auth_enable": False, "myhostname": "mail.example.test"},
    "master": [
        {"name": "smtp", "type": "inet", "command": "smtpd"},
        {
            "name": "submission",
            "type": "inet",
            "command": "smtpd",
            "args": ["-o", "smtpd_sasl_auth_enable=$postmaster_mua_sasl_auth_enable"],
        },
    ],
}


def test_own_parameter_read_by_a_service_is_kept():
    main, _services = merge_fragments([("10-postfix.json", _MUA)])
    assert main["postmaster_mua_sasl_auth_enable"] is False


def test_own_parameter_nothing_reads_is_left_out_of_main_cf():
    # Submission and smtps off (the split example's mail store): Postfix would warn that
    # postmaster_mua_sasl_auth_enable is unused, and the warning fails the candidate.
    alone = {"main": _MUA["main"], "master": _MUA["master"][:1]}
    sasl = {"main": {"postmaster_mua_sasl_auth_enable": True}, "overrides": ["postmaster_mua_sasl_auth_enable"]}
    main, _services = merge_fragments([("10-postfix.json", alone), ("30-dovecot.json", sasl)])
    assert "postmaster_mua_sasl_auth_enable" not in main
    assert main["myhostname"] == "mail.example.test"


@pytest.mark.parametrize("reference", ["$postmaster_x", "${postmaster_x}", "$(postmaster_x)", "${postmaster_x?yes}"])
def test_own_parameter_read_by_another_parameter_is_kept(reference):
    data = {"main": {"postmaster_x": "yes", "smtpd_tls_loglevel": reference}, "master": _MUA["master"][:1]}
    main, _services = merge_fragments([("10-postfix.json", data)])
    assert main["postmaster_x"] == "yes"


def test_own_parameter_kept_when_no_fragment_defines_services():
    # The live master.cf stays as it is then, and may read the parameter.
    main, services = merge_fragments([("10-postfix.json", {"main": {"postmaster_x": "yes"}})])
    assert services == [] and main == {"postmaster_x": "yes"}


def test_a_longer_name_is_not_a_reference():
    data = {"main": {"postmaster_x": "yes", "smtpd_tls_loglevel": "$postmaster_xy"}, "master": _MUA["master"][:1]}
    main, _services = merge_fragments([("10-postfix.json", data)])
    assert "postmaster_x" not in main
