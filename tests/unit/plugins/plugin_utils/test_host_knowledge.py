# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one place that skips a module call: the play's knowledge of the host and the action plugins using it."""

from __future__ import annotations

import hashlib
import os
from types import SimpleNamespace

import pytest
from ansible.plugins.action import ActionBase
from ansible_collections.postmaster.mailserver.plugins.action.dovecot_config import ActionModule as DovecotAction
from ansible_collections.postmaster.mailserver.plugins.action.mail_packages import ActionModule as PackagesAction
from ansible_collections.postmaster.mailserver.plugins.action.postfix_config import ActionModule as PostfixAction
from ansible_collections.postmaster.mailserver.plugins.action.srs_config import ActionModule as SrsAction
from ansible_collections.postmaster.mailserver.plugins.filter.host import FilterModule, known_host
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_config import PostfixConfig
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_table_files import table_states
from ansible_collections.postmaster.mailserver.plugins.plugin_utils import host_knowledge as hk

UID, GID = os.getuid(), os.getgid()
PLAY = "02fc0000-0001-1234-5678-000000000007"
FDIR = "/etc/postfix/postmaster.d"
SASL = {"main": {"smtpd_sasl_type": "dovecot", "postmaster_mua_sasl_auth_enable": True}, "overrides": []}


def knowing(**postfix_texts):
    """Knowledge after the postfix role's two calls: its packages and the fragments given."""
    known = hk.empty(PLAY)
    hk.learn_packages(
        known,
        {"names": ["postfix"], "list_installed": True},
        {"changed": False, "host_packages": ["dovecot-core", "dovecot-imapd", "postfix"], "call_records": {}},
        False,
    )
    texts = {
        name.lstrip("_").replace("_", "-") + ".json": hk.fragment_text(data) for name, data in postfix_texts.items()
    }
    hk.learn_postfix(
        known,
        {"fragment_dir": FDIR, "config_dir": "/etc/postfix", "report_local_domains": True},
        {"changed": False, "fragment_texts": texts, "table_states": {}, "local_domains": ["localhost"]},
        False,
    )
    return known


def test_the_text_compared_is_the_text_postfix_config_writes(tmp_path):
    backend = PostfixConfig(
        fragment_dir=str(tmp_path),
        config_dir=str(tmp_path),
        run_command=lambda argv, **kw: (0, "", ""),
        get_bin_path=lambda name: None,
        fragments={"30-dovecot.json": SASL},
    )
    texts = backend.fragment_texts(["30-dovecot.json"])
    assert texts == {"30-dovecot.json": hk.fragment_text(SASL)}


@pytest.mark.parametrize(
    ("args", "answered"),
    [
        # Everything shown: no call.
        ({"names": ["dovecot-core", "dovecot-imapd"]}, True),
        ({"requires": [{"path": FDIR + "/10-postfix.json", "msg": "m"}]}, True),
        ({"requires": [{"path": FDIR, "msg": "m"}], "conflicts": [{"path": FDIR + "/30-saslauthd-sasl.json"}]}, True),
        # A package not installed: the call installs it.
        ({"names": ["dovecot-core", "dovecot-pop3d"]}, False),
        # Another fragment directory than the one seen: the call checks it.
        ({"requires": [{"path": "/srv/postfix/postmaster.d", "msg": "m"}]}, False),
        # A required fragment missing, or a conflicting one present: the call fails with its message.
        ({"requires": [{"path": FDIR + "/10-other.json", "msg": "m"}]}, False),
        ({"conflicts": [{"path": FDIR + "/30-dovecot-sasl.json", "msg": "m"}]}, False),
        # A path the play never looked at, or a call that lists the packages.
        ({"probe": ["/etc/dovecot/dovecot.conf"]}, False),
        ({"names": ["postfix"], "list_installed": True}, False),
    ],
)
def test_packages_answered_only_when_the_play_saw_everything(args, answered):
    known = knowing(_10_postfix={"main": {}}, _30_dovecot_sasl=SASL)
    known["postfix"][FDIR]["texts"] = {"10-postfix.json": "{}", "30-dovecot-sasl.json": "{}"}
    answer = hk.packages_answer(known, args)
    assert (answer is not None) is answered
    if answer is not None:
        assert answer["changed"] is False


def test_packages_without_knowledge_always_call():
    assert hk.packages_answer(hk.empty(PLAY), {"names": []}) is None


def test_probe_is_answered_from_the_dovecot_and_path_knowledge():
    known = knowing(_10_postfix={"main": {}})
    hk.learn_dovecot(
        known,
        {"config_dir": "/etc/dovecot", "report_paths": ["/var/spool/postfix/private/dovecot-lmtp"]},
        {
            "changed": False,
            "file_digests": {"dovecot.conf": "x"},
            "exists": {"/var/spool/postfix/private/dovecot-lmtp": True},
        },
        False,
    )
    answer = hk.packages_answer(
        known,
        {
            "requires": [{"path": FDIR}, {"path": "/var/spool/postfix/private/dovecot-lmtp"}],
            "probe": [FDIR, "/etc/dovecot/dovecot.conf"],
        },
    )
    assert answer is not None
    assert answer["exists"] == {FDIR: True, "/etc/dovecot/dovecot.conf": True}


def test_a_package_call_teaches_what_it_required_and_installed():
    known = knowing()
    hk.learn_packages(
        known, {"names": ["nftables"], "requires": [{"path": "/x"}], "conflicts": [{"path": "/y"}]}, {}, False
    )
    assert "nftables" in hk.installed(known)
    assert hk.path_known(known, "/x") is True
    assert hk.path_known(known, "/y") is False
    # In check mode a call that would install teaches nothing; a failed one neither.
    known = knowing()
    hk.learn_packages(known, {"names": ["clamav"], "requires": [{"path": "/z"}]}, {"changed": True}, True)
    hk.learn_packages(known, {"names": ["spamd"]}, {"failed": True}, False)
    assert "clamav" not in hk.installed(known) and "spamd" not in hk.installed(known)
    assert hk.path_known(known, "/z") is None


def test_postfix_call_answered_when_its_fragments_are_there_as_it_writes_them():
    known = knowing(_10_postfix={"main": {}}, _30_dovecot_sasl=SASL)
    base = {"fragment_dir": FDIR, "config_dir": "/etc/postfix"}
    answer = hk.postfix_answer(known, {**base, "fragments": {"30-dovecot-sasl.json": SASL, "31-old.json": None}})
    assert answer is not None and answer["changed"] is False
    assert answer["fragment_texts"]["30-dovecot-sasl.json"] == hk.fragment_text(SASL)
    changed = {**SASL, "main": {**SASL["main"], "smtpd_sasl_path": "private/auth"}}
    assert hk.postfix_answer(known, {**base, "fragments": {"30-dovecot-sasl.json": changed}}) is None
    assert hk.postfix_answer(known, {**base, "fragments": {"30-dovecot-sasl.json": None}}) is None
    # Another directory, another config_dir, a call that must start Postfix, or data that is not JSON.
    assert hk.postfix_answer(known, {**base, "fragment_dir": "/srv/x", "fragments": {}}) is None
    assert hk.postfix_answer(known, {**base, "config_dir": "/etc/postfix-out", "fragments": {}}) is None
    assert hk.postfix_answer(known, {**base, "ensure_running": True, "fragments": {}}) is None
    assert hk.postfix_answer(known, {**base, "fragments": {"40-x.json": {"main": {"a": object()}}}}) is None
    # Nothing known: always the call.
    assert hk.postfix_answer(hk.empty(PLAY), {**base, "fragments": {}}) is None


def _make_table(directory, name, text, mode=0o644):
    path = directory / name
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    db = directory / (name + ".db")
    db.write_bytes(b"compiled")
    db.chmod(mode)
    stamp = os.stat(path).st_mtime + 10
    os.utime(db, (stamp, stamp))
    return str(path)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        # The same text (a missing final newline is added, as postfix_config does), owner, group and mode.
        ({"content": "a@example.test example.test/a/"}, True),
        ({"content": "a@example.test example.test/a/\n", "owner": UID, "group": str(GID), "mode": "0644"}, True),
        # Another text, mode or owner: the call must run.
        ({"content": "c@example.test example.test/c/\n"}, False),
        ({"content": "a@example.test example.test/a/\n", "mode": "0640"}, False),
        ({"content": "a@example.test example.test/a/\n", "owner": UID + 1}, False),
        # An owner by name is resolved on the host only: never taken as unchanged.
        ({"content": "a@example.test example.test/a/\n", "owner": "root"}, False),
    ],
)
def test_postfix_call_compares_tables_with_their_states(tmp_path, entry, expected):
    path = _make_table(tmp_path, "vmailbox", "a@example.test example.test/a/\n")
    known = knowing(_10_postfix={"main": {}})
    known["postfix"][FDIR]["table_states"] = table_states(f"virtual_mailbox_maps = hash:{path}\n", str(tmp_path))
    if UID != 0 and "owner" not in entry:
        entry = {**entry, "owner": UID, "group": GID}
    args = {"fragment_dir": FDIR, "config_dir": "/etc/postfix", "fragments": {}, "tables": [{"path": path, **entry}]}
    assert (hk.postfix_answer(known, args) is not None) is expected
    known["postfix"][FDIR]["table_states"] = {}
    assert hk.postfix_answer(known, args) is None


def test_postfix_knowledge_follows_every_call_and_forgets_on_failure():
    known = knowing(_10_postfix={"main": {}})
    args = {"fragment_dir": FDIR, "config_dir": "/etc/postfix", "fragments": {"30-saslauthd-sasl.json": SASL}}
    texts = {"10-postfix.json": "{}", "30-saslauthd-sasl.json": hk.fragment_text(SASL)}
    hk.learn_postfix(known, args, {"changed": True, "fragment_texts": texts}, False)
    # The SASL fragment written by this call is now known: a dovecot role after it does its own conflict check.
    assert hk.path_known(known, FDIR + "/30-saslauthd-sasl.json") is True
    assert known["postfix"][FDIR]["local_domains"] == ["localhost"]
    # Check mode with a change: not on the host, so forgotten; a failure too.
    hk.learn_postfix(known, args, {"changed": True, "fragment_texts": texts}, True)
    assert FDIR not in known["postfix"]
    known = knowing(_10_postfix={"main": {}})
    hk.learn_postfix(known, args, {"failed": True}, False)
    assert hk.path_known(known, FDIR) is None


def test_dovecot_call_answered_when_every_file_has_its_digest():
    known = hk.empty(PLAY)
    text = "passdb {}\n"
    digest = hashlib.sha256(text.encode()).hexdigest()
    hk.learn_dovecot(
        known, {"config_dir": "/etc/dovecot"}, {"changed": False, "file_digests": {"conf.d/15-x.conf": digest}}, False
    )

    def sha(value):
        return hashlib.sha256(value.encode()).hexdigest()

    assert (
        hk.dovecot_answer(known, {"config_dir": "/etc/dovecot", "files": {"conf.d/15-x.conf": text}}, sha) is not None
    )
    assert hk.dovecot_answer(known, {"config_dir": "/etc/dovecot", "files": {"conf.d/15-x.conf": "other"}}, sha) is None
    assert hk.dovecot_answer(known, {"config_dir": "/etc/dovecot", "files": {"conf.d/15-x.conf": None}}, sha) is None
    assert hk.dovecot_answer(known, {"config_dir": "/etc/dovecot-2", "files": {}}, sha) is None
    assert hk.dovecot_answer(known, {"config_dir": "/etc/dovecot", "files": {}, "ensure_running": True}, sha) is None
    hk.learn_dovecot(known, {"config_dir": "/etc/dovecot"}, {"changed": True, "file_digests": {}}, True)
    assert hk.dovecot_answer(known, {"config_dir": "/etc/dovecot", "files": {}}, sha) is None


def test_knowledge_belongs_to_the_play_and_the_run():
    known = knowing(_10_postfix={"main": {}})
    assert hk.current({hk.FACT: known}, PLAY)["postfix"]
    # Another play of the run starts without it (the action plugins); a role's own checks still read it.
    assert hk.current({hk.FACT: known}, PLAY[:-1] + "8") == hk.empty(PLAY[:-1] + "8")
    assert hk.this_run(known, PLAY.rsplit("-", 1)[0])["postfix"]
    # Another run (a persistent fact cache): nothing.
    assert hk.this_run(known, "02fc0000-0001-aaaa-bbbb") == hk.empty("")
    assert hk.current(None, PLAY) == hk.empty(PLAY)
    assert known_host(None) == hk.empty("")
    assert FilterModule().filters() == {"known_host": known_host}


class _Task(SimpleNamespace):
    def get_play(self):
        return SimpleNamespace(_uuid=PLAY)


def _action(cls, args, module_result, monkeypatch, check_mode=False):
    monkeypatch.setattr(ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
    action = object.__new__(cls)
    action._task = _Task(args=args)
    action._play_context = SimpleNamespace(check_mode=check_mode)
    calls = []

    def execute(module_name, module_args, task_vars):
        calls.append((module_name, module_args))
        return dict(module_result)

    action._execute_module = execute
    return action, calls


def test_the_action_runs_the_module_and_records_what_it_found(monkeypatch):
    args = {"fragment_dir": FDIR, "config_dir": "/etc/postfix", "fragments": {"30-dovecot-sasl.json": SASL}}
    texts = {"10-postfix.json": "{}", "30-dovecot-sasl.json": hk.fragment_text(SASL)}
    action, calls = _action(PostfixAction, args, {"changed": True, "fragment_texts": texts}, monkeypatch)
    result = action.run(task_vars={"ansible_facts": {}})
    # The module is asked to record the call for the next run, under a key of the module, its arguments and code.
    [(name, module_args)] = calls
    key = module_args.pop("call_record")
    assert name == "postmaster.mailserver.postfix_config" and module_args == args and len(key) == 64
    known = result["ansible_facts"][hk.FACT]
    assert known["play"] == PLAY and known["postfix"][FDIR]["texts"] == texts
    # The same call again in the play: answered without the module.
    action, calls = _action(PostfixAction, args, {}, monkeypatch)
    result = action.run(task_vars={"ansible_facts": {hk.FACT: known}})
    assert calls == [] and result["changed"] is False and "ansible_facts" not in result


def test_the_package_and_dovecot_actions_call_their_modules(monkeypatch):
    action, calls = _action(
        PackagesAction,
        {"names": ["postfix"], "list_installed": True},
        {"host_packages": ["postfix"], "call_records": {}},
        monkeypatch,
    )
    found = action.run(task_vars={})["ansible_facts"]
    known = found[hk.FACT]
    # The play's first call takes the census of the call records; it is a fact of its own.
    assert calls[0][0] == "postmaster.mailserver.mail_packages" and calls[0][1]["call_records"] is True
    assert known["packages"] == "postfix" and "calls" not in known
    assert found[hk.CALLS_FACT] == {"play": PLAY, "calls": {}}
    action, calls = _action(PackagesAction, {"names": ["postfix"]}, {}, monkeypatch)
    assert action.run(task_vars={"ansible_facts": found})["changed"] is False and calls == []
    # Without the census (another play), the same call runs and takes it.
    action, calls = _action(PackagesAction, {"names": ["postfix"]}, {"changed": False}, monkeypatch)
    action.run(task_vars={"ansible_facts": {hk.FACT: known}})
    assert calls == [("postmaster.mailserver.mail_packages", {"names": ["postfix"], "call_records": True})]
    files = {"conf.d/15-x.conf": "x\n"}
    result = {"changed": False, "file_digests": {"conf.d/15-x.conf": hashlib.sha256(b"x\n").hexdigest()}}
    action, calls = _action(DovecotAction, {"files": files}, result, monkeypatch, check_mode=True)
    known = action.run(task_vars={})["ansible_facts"][hk.FACT]
    action, calls = _action(DovecotAction, {"files": files}, {}, monkeypatch)
    assert action.run(task_vars={"ansible_facts": {hk.FACT: known}})["changed"] is False and calls == []


def test_the_census_memory_is_known_for_the_play_only():
    known = hk.empty(PLAY)
    assert known["memtotal_mb"] is None
    hk.learn_packages(
        known, {"names": ["postfix"], "list_installed": True}, {"host_packages": [], "memtotal_mb": 1987}, False
    )
    assert known["memtotal_mb"] == 1987
    assert hk.current({hk.FACT: known}, PLAY)["memtotal_mb"] == 1987
    assert hk.current({hk.FACT: known}, "another-play")["memtotal_mb"] is None
    # A later call that does not take the census (or a failed one) keeps what is known.
    hk.learn_packages(known, {"names": ["dovecot-core"]}, {"changed": False}, False)
    hk.learn_packages(known, {"names": ["x"], "list_installed": True}, {"failed": True, "memtotal_mb": 1}, False)
    assert known["memtotal_mb"] == 1987
    assert hk.current({hk.FACT: {**known, "memtotal_mb": True}}, PLAY)["memtotal_mb"] is None


def test_a_call_whose_record_matches_the_host_is_answered_from_it(monkeypatch):
    args = {"settings": {"domain": "example.org"}}
    action, calls = _action(SrsAction, args, {"changed": False, "defaults_path": "/etc/default/postsrsd"}, monkeypatch)
    action.run(task_vars={"ansible_facts": {}})
    [(_name, module_args)] = calls
    key = module_args["call_record"]
    recorded = {"defaults_path": "/etc/default/postsrsd", "secret_generated": False}
    census = {hk.CALLS_FACT: {"play": PLAY, "calls": {key: recorded}}}
    # The next run: the census has the record of this very call, so no module call.
    action, calls = _action(SrsAction, args, {}, monkeypatch)
    result = action.run(task_vars={"ansible_facts": census})
    assert calls == [] and result["changed"] is False and result["secret_generated"] is False
    assert "call record" in result["msg"]
    # Other arguments, or a census of another play: the module runs.
    action, calls = _action(SrsAction, {"settings": {"domain": "example.net"}}, {"changed": False}, monkeypatch)
    action.run(task_vars={"ansible_facts": census})
    assert len(calls) == 1
    action, calls = _action(SrsAction, args, {"changed": False}, monkeypatch)
    action.run(task_vars={"ansible_facts": {hk.CALLS_FACT: {"play": "another", "calls": {key: recorded}}}})
    assert len(calls) == 1
    # A failed call returns no knowledge.
    action, calls = _action(SrsAction, {"settings": {}}, {"failed": True, "msg": "bad"}, monkeypatch)
    assert "ansible_facts" not in action.run(task_vars={})


def test_a_recorded_postfix_call_teaches_the_play_its_fragments(monkeypatch):
    args = {"fragment_dir": FDIR, "config_dir": "/etc/postfix", "fragments": {"30-dovecot-sasl.json": SASL}}
    action, calls = _action(PostfixAction, args, {"changed": False, "fragment_texts": {}}, monkeypatch)
    action.run(task_vars={})
    key = calls[0][1]["call_record"]
    texts = {"10-postfix.json": "{}", "30-dovecot-sasl.json": hk.fragment_text(SASL)}
    census = {hk.CALLS_FACT: {"play": PLAY, "calls": {key: {"fragment_texts": texts, "table_states": {}}}}}
    action, calls = _action(PostfixAction, args, {}, monkeypatch)
    known = action.run(task_vars={"ansible_facts": census})["ansible_facts"][hk.FACT]
    assert calls == [] and known["postfix"][FDIR]["texts"] == texts


def test_a_change_in_the_play_ends_the_census_for_the_calls_after_it(monkeypatch):
    # The firewall's record owns Dovecot's files; the dovecot role changed them earlier in the same play.
    census = {hk.CALLS_FACT: {"play": PLAY, "calls": {"k" * 64: {"path": "/etc/nftables.conf"}}}}
    action, _calls = _action(SrsAction, {"settings": {"domain": "a.example"}}, {"changed": True}, monkeypatch)
    facts = action.run(task_vars={"ansible_facts": census})["ansible_facts"]
    assert facts[hk.CALLS_FACT] == {"play": PLAY, "calls": {}}
    # Nothing changed: the census stays as it was (not returned again).
    action, _calls = _action(SrsAction, {"settings": {"domain": "b.example"}}, {"changed": False}, monkeypatch)
    assert hk.CALLS_FACT not in action.run(task_vars={"ansible_facts": census})["ansible_facts"]
    # The same holds in check mode: a real run would change the host there.
    action, _calls = _action(SrsAction, {"settings": {"domain": "c.example"}}, {"changed": True}, monkeypatch, True)
    assert action.run(task_vars={"ansible_facts": census})["ansible_facts"][hk.CALLS_FACT]["calls"] == {}
