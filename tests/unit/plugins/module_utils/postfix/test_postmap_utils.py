# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import stat

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postmap import (
    Postmap,
    PostmapError,
    db_path,
)

UID, GID = os.getuid(), os.getgid()


class FakePostmap:
    """Stands in for run_command: checks the argv and writes the compiled file like postmap would."""

    def __init__(self, rc=0, create=True, suffix=".db"):
        self.calls = []
        self.rc = rc
        self.create = create
        self.suffix = suffix

    def __call__(self, argv, environ_update=None, **kwargs):
        assert environ_update == {"LC_ALL": "C"}
        self.calls.append(argv)
        if self.rc == 0 and self.create:
            source = argv[-1].split(":", 1)[1]
            with open(source + self.suffix, "w", encoding="utf-8") as handle:
                handle.write("compiled")
            os.chmod(source + self.suffix, 0o644)
        return self.rc, "", "postmap: fatal: boom" if self.rc else ""


def make(path, runner, **kwargs):
    """A backend for *path*; its config_dir (unless given) holds a main.cf, as after the postfix role."""
    chowns = []
    if "config_dir" not in kwargs:
        conf = os.path.join(os.path.dirname(str(path)), "etc-postfix")
        os.makedirs(conf, exist_ok=True)
        open(os.path.join(conf, "main.cf"), "w", encoding="utf-8").close()
        kwargs["config_dir"] = conf
    backend = Postmap(
        path=str(path),
        run_command=runner,
        get_bin_path=lambda name: f"/usr/sbin/{name}",
        chown=lambda p, uid, gid: chowns.append((p, uid, gid)),
        **kwargs,
    )
    return backend, chowns


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "sasl_passwd"
    path.write_text("[smtp.example.org]:587 user:secret\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def set_mtime(path, mtime):
    os.utime(path, (mtime, mtime))


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_builds_missing_db_with_source_mode(source):
    runner = FakePostmap()
    backend, chowns = make(source, runner)
    result = backend.execute()
    assert runner.calls == [["/usr/sbin/postmap", "-c", backend.config_dir, f"hash:{source}"]]
    assert result["changed"] is True
    assert result["rebuilt"] is True
    assert result["db_path"] == f"{source}.db"
    assert mode(f"{source}.db") == 0o600
    assert chowns == []  # same owner already
    assert result["diff"]["before"] == "state: missing\n"
    assert result["diff"]["after"] == f"state: current\nowner: {UID}:{GID}\nmode: 0600\n"


def test_current_db_is_left_alone(source):
    make(source, FakePostmap())[0].execute()
    set_mtime(source, 1_000)
    set_mtime(f"{source}.db", 2_000)
    runner = FakePostmap()
    result = make(source, runner)[0].execute()
    assert runner.calls == []
    assert result == {**result, "changed": False, "rebuilt": False}


def test_rebuilds_when_source_is_newer(source):
    make(source, FakePostmap())[0].execute()
    set_mtime(f"{source}.db", 1_000)
    set_mtime(source, 2_000)
    runner = FakePostmap()
    result = make(source, runner)[0].execute()
    assert len(runner.calls) == 1
    assert result["rebuilt"] is True
    assert result["diff"]["before"].startswith("state: stale\n")


def test_fixes_mode_without_rebuild(source):
    make(source, FakePostmap())[0].execute()
    set_mtime(source, 1_000)
    set_mtime(f"{source}.db", 2_000)
    os.chmod(f"{source}.db", 0o644)
    runner = FakePostmap()
    result = make(source, runner)[0].execute()
    assert runner.calls == []
    assert result["changed"] is True
    assert result["rebuilt"] is False
    assert mode(f"{source}.db") == 0o600


def test_fixes_owner(source, monkeypatch):
    make(source, FakePostmap())[0].execute()
    set_mtime(source, 1_000)
    set_mtime(f"{source}.db", 2_000)
    real_stat = os.stat

    def fake_stat(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        if str(path).endswith(".db"):
            values = list(st)
            values[stat.ST_UID] = UID + 1
            return os.stat_result(values)
        return st

    monkeypatch.setattr(os, "stat", fake_stat)
    backend, chowns = make(source, FakePostmap())
    result = backend.execute()
    assert result["changed"] is True
    assert chowns == [(f"{source}.db", UID, GID)]


def test_check_mode_reports_without_running(source):
    runner = FakePostmap()
    backend, _chowns = make(source, runner, check_mode=True)
    result = backend.execute()
    assert runner.calls == []
    assert result["changed"] is True
    assert result["rebuilt"] is True
    assert not os.path.exists(f"{source}.db")
    # mode mismatch in check mode: reported, not fixed
    make(source, FakePostmap())[0].execute()
    set_mtime(source, 1_000)
    set_mtime(f"{source}.db", 2_000)
    os.chmod(f"{source}.db", 0o644)
    result = make(source, FakePostmap(), check_mode=True)[0].execute()
    assert result["changed"] is True
    assert result["rebuilt"] is False
    assert mode(f"{source}.db") == 0o644


@pytest.mark.parametrize(
    ("table_type", "aliases", "argv_tail", "suffix"),
    [
        ("lmdb", False, "lmdb:", ".lmdb"),
        ("cdb", False, "cdb:", ".cdb"),
        ("btree", False, "btree:", ".db"),
        ("hash", True, "hash:", ".db"),
    ],
)
def test_types_and_postalias(source, table_type, aliases, argv_tail, suffix):
    runner = FakePostmap(suffix=suffix)
    conf = source.parent / "postfix-out"
    conf.mkdir()
    (conf / "main.cf").write_text("", encoding="utf-8")
    result = make(source, runner, table_type=table_type, aliases=aliases, config_dir=str(conf))[0].execute()
    command = "postalias" if aliases else "postmap"
    assert runner.calls == [[f"/usr/sbin/{command}", "-c", str(conf), f"{argv_tail}{source}"]]
    assert result["db_path"] == f"{source}{suffix}"


def test_errors(source, tmp_path):
    with pytest.raises(PostmapError, match=r"source file .*/absent does not exist"):
        make(tmp_path / "absent", FakePostmap())[0].execute()
    with pytest.raises(PostmapError, match="is not a regular file"):
        make(tmp_path, FakePostmap())[0].execute()
    with pytest.raises(
        PostmapError, match=r"/usr/sbin/postmap -c \S+/etc-postfix hash:.* failed \(rc=1\): postmap: fatal: boom"
    ):
        make(source, FakePostmap(rc=1))[0].execute()
    with pytest.raises(PostmapError, match=r"postmap succeeded but .*sasl_passwd.db was not created"):
        make(source, FakePostmap(create=False))[0].execute()
    with pytest.raises(PostmapError, match="unsupported table type 'dbm'"):
        db_path("/x", "dbm")
    backend = Postmap(path=str(source), run_command=FakePostmap(), get_bin_path=lambda name: None)
    with pytest.raises(PostmapError, match="postmap was not found"):
        backend.execute()


def test_no_main_cf_yet_compiles_with_an_empty_stand_in(source, tmp_path):
    """Debian's "No configuration" install has no main.cf; postmap gets an empty one, removed after."""
    seen = []

    def runner(argv, environ_update=None):
        conf = argv[2]
        with open(os.path.join(conf, "main.cf"), encoding="utf-8") as handle:
            seen.append((conf, os.listdir(conf), handle.read()))
        return FakePostmap()(argv, environ_update)

    make(source, runner, config_dir=str(tmp_path / "no-postfix-yet"))[0].execute()
    conf, listing, text = seen[0]
    assert conf != str(tmp_path / "no-postfix-yet")
    assert (listing, text) == (["main.cf"], "")
    assert not os.path.exists(conf)
