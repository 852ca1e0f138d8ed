# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import re

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.modules import postmap as postmap_module


@pytest.fixture
def commands(monkeypatch):
    calls = []

    def run_command(self, argv, environ_update=None, **kwargs):
        calls.append(argv)
        if "-q" in argv:
            # The lookup that opens a regexp/pcre/cidr candidate before it replaces the table: clean.
            return 1, "", ""
        source = argv[-1].split(":", 1)[1]
        with open(source + ".db", "w", encoding="utf-8") as handle:
            handle.write("db")
        return 0, "", ""

    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(
        AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: f"/usr/sbin/{name}"
    )
    return calls


def test_builds_then_is_idempotent(tmp_path, commands, run_module):
    source = tmp_path / "access"
    source.write_text("example.org REJECT\n", encoding="utf-8")
    os.chmod(source, 0o640)
    (tmp_path / "main.cf").write_text("", encoding="utf-8")
    rc, result = run_module(
        postmap_module.main, {"path": str(source), "config_dir": str(tmp_path), "_ansible_diff": True}
    )
    assert rc == 0
    assert result["changed"] is True
    assert result["rebuilt"] is True
    assert result["db_path"] == f"{source}.db"
    assert result["diff"]["before"] == "state: missing\n"
    assert commands == [["/usr/sbin/postmap", "-c", str(tmp_path), f"hash:{source}"]]
    os.utime(source, (1000, 1000))
    rc, result = run_module(postmap_module.main, {"path": str(source)})
    assert result["changed"] is False
    assert len(commands) == 1


def test_missing_source_fails(tmp_path, commands, run_module):
    rc, result = run_module(postmap_module.main, {"path": str(tmp_path / "absent"), "type": "lmdb"})
    assert rc == 1
    assert "does not exist" in result["msg"]


def test_content_is_written_then_compiled_and_idempotent(tmp_path, commands, run_module):
    source = tmp_path / "vmailbox"
    args = {"path": str(source), "content": "alice@example.org example.org/alice/\n", "mode": "0640"}
    rc, result = run_module(postmap_module.main, {**args, "_ansible_check_mode": True, "_ansible_diff": True})
    assert (rc, result["changed"], result["rebuilt"], result["source_changed"]) == (0, True, True, True)
    assert not source.exists()
    assert commands == []

    rc, result = run_module(postmap_module.main, {**args, "_ansible_diff": True})
    assert (rc, result["changed"], result["rebuilt"], result["source_changed"]) == (0, True, True, True)
    assert source.read_text(encoding="utf-8") == args["content"]
    assert oct(os.stat(source).st_mode & 0o7777) == "0o640"
    assert oct(os.stat(f"{source}.db").st_mode & 0o7777) == "0o640"
    content_diff, db_diff = result["diff"]
    assert (content_diff["before"], content_diff["after"]) == ("", args["content"])
    assert db_diff["before"] == "state: missing\n"
    assert len(commands) == 1

    rc, result = run_module(postmap_module.main, args)
    assert (rc, result["changed"], result["source_changed"]) == (0, False, False)
    rc, result = run_module(postmap_module.main, {**args, "_ansible_check_mode": True})
    assert (rc, result["changed"]) == (0, False)
    assert len(commands) == 1


def test_changed_content_recompiles_and_check_mode_touches_nothing(tmp_path, commands, run_module):
    source = tmp_path / "virtual"
    source.write_text("old@example.org a@example.org\n", encoding="utf-8")
    os.utime(source, (1000, 1000))
    (tmp_path / "virtual.db").write_text("db", encoding="utf-8")
    new = "new@example.org b@example.org\n"
    rc, result = run_module(postmap_module.main, {"path": str(source), "content": new, "_ansible_check_mode": True})
    assert (rc, result["changed"]) == (0, True)
    assert source.read_text(encoding="utf-8") == "old@example.org a@example.org\n"
    assert commands == []
    rc, result = run_module(postmap_module.main, {"path": str(source), "content": new})
    assert (rc, result["changed"], result["rebuilt"]) == (0, True, True)
    assert source.read_text(encoding="utf-8") == new
    assert len(commands) == 1


def test_new_source_is_never_world_readable_before_its_mode(tmp_path, commands, run_module, monkeypatch):
    source = tmp_path / "sasl_passwd"
    seen = []
    real_move = AnsibleModule.atomic_move

    def atomic_move(self, src, dest, *args, **kwargs):
        seen.append(os.stat(dest).st_mode & 0o077)
        return real_move(self, src, dest, *args, **kwargs)

    monkeypatch.setattr(AnsibleModule, "atomic_move", atomic_move)
    rc, _result = run_module(postmap_module.main, {"path": str(source), "content": "[relay]:587 u:p\n", "mode": "0600"})
    assert rc == 0
    assert seen == [0]
    assert os.stat(source).st_mode & 0o077 == 0
    assert os.stat(f"{source}.db").st_mode & 0o077 == 0


def test_content_is_not_echoed(tmp_path, commands, run_module):
    content = "secret.example REJECT\n"
    rc, result = run_module(postmap_module.main, {"path": str(tmp_path / "access"), "content": content})
    assert rc == 0
    assert result["invocation"]["module_args"]["content"] == f"{len(content)} characters (not echoed)"
    assert "secret.example" not in str(result)


@pytest.mark.parametrize("table_type", ["regexp", "pcre", "cidr", "texthash"])
def test_flat_tables_are_written_but_never_compiled(tmp_path, commands, run_module, table_type):
    source = tmp_path / "checks"
    args = {"path": str(source), "type": table_type, "content": "/^x/ REJECT\n", "mode": "0644"}
    rc, result = run_module(postmap_module.main, {**args, "_ansible_check_mode": True, "_ansible_diff": True})
    assert (rc, result["changed"], result["rebuilt"], result["db_path"]) == (0, True, False, None)
    assert result["diff"][0]["after"] == "/^x/ REJECT\n"
    assert not source.exists()
    rc, result = run_module(postmap_module.main, args)
    assert (rc, result["changed"], result["source_changed"], result["rebuilt"]) == (0, True, True, False)
    assert source.read_text(encoding="utf-8") == "/^x/ REJECT\n"
    assert (source.stat().st_mode & 0o777) == 0o644
    rc, result = run_module(postmap_module.main, {**args, "_ansible_check_mode": True})
    assert (rc, result["changed"]) == (0, False)
    rc, result = run_module(postmap_module.main, {**args, "mode": "0640"})
    assert (rc, result["changed"], result["rebuilt"]) == (0, True, False)
    # Never compiled: only looked up once, as the candidate of the one run that wrote it.
    # (texthash has no syntax to check.)
    looked_up = [] if table_type == "texthash" else [["-q", "postmaster-table-probe"]]
    assert [argv[3:5] for argv in commands] == looked_up
    assert all(re.fullmatch(rf"{table_type}:/.+/postmaster-candidate-[^/]+/checks", argv[-1]) for argv in commands)
    assert not (tmp_path / "checks.db").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checks"]


def test_flat_table_errors(tmp_path, commands, run_module):
    rc, result = run_module(postmap_module.main, {"path": str(tmp_path / "absent"), "type": "cidr"})
    assert rc == 1 and "does not exist" in result["msg"]
    rc, result = run_module(postmap_module.main, {"path": str(tmp_path / "a"), "type": "regexp", "aliases": True})
    assert rc == 1 and "aliases: true needs an indexed table type" in result["msg"]


def test_tables_write_and_compile_many_in_one_call(tmp_path, commands, run_module):
    (tmp_path / "main.cf").write_text("", encoding="utf-8")
    tables = [
        {"path": str(tmp_path / "vmailbox"), "content": "alice@example.org example.org/alice/\n", "mode": "0644"},
        {"path": str(tmp_path / "aliases"), "aliases": True, "content": "postmaster: root\n", "mode": "0640"},
        {"path": str(tmp_path / "checks"), "type": "regexp", "content": "/^X-Spam/ IGNORE\n", "mode": "0644"},
    ]
    args = {"tables": tables, "config_dir": str(tmp_path), "_ansible_diff": True}
    rc, result = run_module(postmap_module.main, args)
    assert rc == 0
    assert result["changed"] is True
    assert [item["changed"] for item in result["results"]] == [True, True, True]
    assert [item["db_path"] for item in result["results"]] == [
        f"{tmp_path}/vmailbox.db",
        f"{tmp_path}/aliases.db",
        None,
    ]
    assert [os.path.basename(call[0]) for call in commands if "-q" not in call] == ["postmap", "postalias"]
    assert oct(os.stat(tmp_path / "aliases").st_mode & 0o777) == "0o640"
    assert (tmp_path / "checks").read_text(encoding="utf-8") == "/^X-Spam/ IGNORE\n"
    assert len([d for d in result["diff"] if d.get("after_header") == f"{tmp_path}/vmailbox"]) == 1
    for name in ("vmailbox", "aliases"):
        os.utime(tmp_path / name, (1000, 1000))
    commands.clear()
    rc, result = run_module(postmap_module.main, args)
    assert (rc, result["changed"], commands) == (0, False, [])


def test_path_or_tables_is_required(run_module):
    rc, result = run_module(postmap_module.main, {})
    assert rc == 1
    assert "one of the following is required: path, tables" in result["msg"]


def test_a_candidate_postfix_cannot_read_replaces_nothing(tmp_path, monkeypatch, run_module):
    source = tmp_path / "checks"
    source.write_text("/^x/ REJECT\n", encoding="utf-8")

    def run_command(self, argv, environ_update=None, **kwargs):
        assert "-q" in argv, argv
        return 1, "", f"postmap: warning: regexp map {argv[-1].split(':', 1)[1]}, line 1: Unmatched ( or \\(\n"

    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: name)
    rc, result = run_module(postmap_module.main, {"path": str(source), "type": "regexp", "content": "/(x/ REJECT\n"})
    assert rc == 1
    assert result["msg"] == (
        f"{source}: Postfix's own lookup refused the candidate regexp table (nothing was replaced): "
        f"postmap: warning: regexp map {source}, line 1: Unmatched ( or \\("
    )
    assert source.read_text(encoding="utf-8") == "/^x/ REJECT\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checks"]
