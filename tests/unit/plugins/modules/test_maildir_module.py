# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import stat
from pathlib import Path

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes import maildir as maildir_utils
from ansible_collections.postmaster.mailserver.plugins.modules import maildir as maildir_module

NOBODY = pwd.getpwnam("nobody")
NOGROUP_GID = grp.getgrnam("nogroup").gr_gid
FOLDERS = ["Sent", "Drafts", "Trash", "Junk"]

needs_root = pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root")


def attrs(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


@needs_root
def test_single_path_with_folders_check_diff_idempotence(tmp_path, run_module):
    maildir = tmp_path / "example.org" / "alice"
    args = {"path": str(maildir), "owner": "nobody", "group": "nogroup", "folders": FOLDERS}

    rc, result = run_module(maildir_module.main, {**args, "_ansible_check_mode": True, "_ansible_diff": True})
    assert rc == 0
    assert result["changed"] is True
    assert result["created"] == [str(tmp_path / "example.org")]
    assert result["diff"]["before_header"] == str(maildir)
    assert result["diff"]["before"] == f"{tmp_path}/example.org/: absent\n"
    assert os.listdir(tmp_path) == []

    rc, result = run_module(maildir_module.main, {**args, "_ansible_diff": True})
    assert rc == 0
    assert result["changed"] is True
    assert result["diff"]["after"] == f"{tmp_path}/example.org/: nobody:nogroup 0700\n"
    assert attrs(maildir / ".Trash" / "new") == (NOBODY.pw_uid, NOGROUP_GID, 0o700)
    assert (maildir / ".Drafts" / "maildirfolder").is_file()

    for check_mode in (False, True):
        rc, result = run_module(maildir_module.main, {**args, "_ansible_check_mode": check_mode})
        assert (rc, result["changed"], result["created"], result["fixed"]) == (0, False, [], [])
        assert "diff" not in result


@needs_root
def test_paths_and_maildirs(tmp_path, run_module):
    paths = [str(tmp_path / "vmail" / f"d{d}.example" / f"u{u}") for d in range(2) for u in range(5)]
    rc, result = run_module(maildir_module.main, {"paths": paths, "owner": "nobody", "mode": 0o700})
    assert rc == 0
    assert result["created"] == [str(tmp_path / "vmail")]
    assert attrs(paths[-1]) == (NOBODY.pw_uid, NOBODY.pw_gid, 0o700)
    assert attrs(tmp_path / "vmail" / "d1.example") == (NOBODY.pw_uid, NOBODY.pw_gid, 0o700)

    os.chmod(f"{paths[3]}/new", 0o755)
    rc, result = run_module(maildir_module.main, {"paths": paths, "owner": "nobody", "_ansible_diff": True})
    assert (result["changed"], result["created"], result["fixed"]) == (True, [], [f"{paths[3]}/new"])
    assert result["diff"]["before"] == f"{paths[3]}/new/: nobody:nogroup 0755\n"
    assert result["diff"]["before_header"] == "10 Maildirs"

    homes = tmp_path / "home"
    homes.mkdir()
    rc, result = run_module(
        maildir_module.main,
        {
            "maildirs": [
                {"path": str(homes / "alice" / "Maildir"), "owner": "nobody"},
                {"path": str(homes / "root" / "Maildir")},
            ],
            "owner": "root",
            "group": "nogroup",
            "mode": "0750",
        },
    )
    assert rc == 0
    assert attrs(homes / "alice") == (NOBODY.pw_uid, NOBODY.pw_gid, 0o750)
    assert attrs(homes / "alice" / "Maildir" / "tmp") == (NOBODY.pw_uid, NOBODY.pw_gid, 0o750)
    assert attrs(homes / "root" / "Maildir" / "cur") == (0, NOGROUP_GID, 0o750)

    rc, result = run_module(maildir_module.main, {"paths": []})
    assert (rc, result["changed"]) == (0, False)


def test_paths_and_maildirs_in_one_call_and_counts_echoed(tmp_path, run_module):
    virtual = [str(tmp_path / "vmail" / "example.org" / name) for name in ("alice", "bob")]
    skel = str(tmp_path / "skel" / "Maildir")
    args = {
        "paths": virtual,
        "owner": NOBODY.pw_name,
        "maildirs": [{"path": skel, "owner": "root", "group": "root"}],
        "folders": ["Sent"],
    }
    rc, result = run_module(maildir_module.main, args)
    assert (rc, result["changed"]) == (0, True)
    assert attrs(Path(virtual[1]) / ".Sent" / "cur") == (NOBODY.pw_uid, NOBODY.pw_gid, 0o700)
    assert attrs(Path(skel) / "new") == (0, 0, 0o700)
    echoed = result["invocation"]["module_args"]
    assert echoed["paths"] == "2 paths (not echoed)"
    assert echoed["maildirs"] == "1 maildirs (not echoed)"
    assert virtual[0] not in json.dumps(result)

    rc, result = run_module(maildir_module.main, args)
    assert (rc, result["changed"]) == (0, False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, r"one of the following is required: path, paths, maildirs"),
        ({"path": "/a", "paths": ["/b"]}, r"parameters are mutually exclusive: path\|paths"),
        ({"path": "/a", "maildirs": [{"path": "/b"}]}, r"parameters are mutually exclusive: path\|maildirs"),
        ({"path": "relative/Maildir"}, r"^path 'relative/Maildir' must be absolute$"),
        ({"path": "/m", "owner": "no-such-user"}, r"^owner 'no-such-user' does not exist$"),
        ({"maildirs": [{"path": "/m", "group": "no-such-group"}]}, r"^group 'no-such-group' does not exist$"),
        ({"path": "/m", "mode": "0644"}, r"must give the owner rwx"),
        ({"path": "/m", "folders": ["a/b"]}, r"must not contain '/'"),
    ],
)
def test_invalid_arguments_fail_before_any_change(args, message, run_module):
    rc, result = run_module(maildir_module.main, args)
    assert rc == 1
    assert result["failed"] is True
    assert re.search(message, result["msg"]), result["msg"]


def test_refused_symlink_reports_partial_result(tmp_path, run_module):
    (tmp_path / "a").mkdir()
    os.chmod(tmp_path / "a", 0o755)
    (tmp_path / "b").symlink_to("/etc")
    rc, result = run_module(maildir_module.main, {"paths": [str(tmp_path / "a"), str(tmp_path / "b")]})
    assert rc == 1
    assert (
        result["msg"]
        == f"{tmp_path}/b is a symlink; refusing to follow it (a symlink in a Maildir could redirect chown/chmod)"
    )
    assert result["changed"] is True
    assert result["created"] == [f"{tmp_path}/a/cur", f"{tmp_path}/a/new", f"{tmp_path}/a/tmp"]
    assert result["fixed"] == [f"{tmp_path}/a"]
    assert attrs("/etc")[2] == 0o755


def test_unexpected_os_error_fails_cleanly(tmp_path, run_module, monkeypatch):
    real_fstat = os.fstat

    def fstat(fd):
        st = real_fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise OSError(5, "Input/output error")
        return st

    monkeypatch.setattr(maildir_utils.os, "fstat", fstat)
    (tmp_path / "m").mkdir()
    rc, result = run_module(maildir_module.main, {"path": str(tmp_path / "m")})
    assert rc == 1
    assert "Input/output error" in result["msg"]
    assert result["created"] == []


def test_purge_domains_need_the_account(tmp_path, run_module):
    rc, result = run_module(maildir_module.main, {"paths": [str(tmp_path / "a.org" / "x")], "purge_domains": ["a.org"]})
    assert rc == 1
    assert result["msg"] == "purge_domains needs account (its home is the base the Maildirs are purged from)"
    assert not (tmp_path / "a.org").exists()
