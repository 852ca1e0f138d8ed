# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import stat
import time

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes import mail_password as mp
from ansible_collections.postmaster.mailserver.plugins.modules import mail_password as module

pytestmark = pytest.mark.skipif(mp.system_crypt() is None, reason="no crypt(3) on this host")

USERS = [{"name": "a@x.test", "password": "pa"}, {"name": "b@x.test", "password": "pb"}]


def args(path, users=None, **extra):
    return {
        "path": str(path),
        "users": USERS if users is None else users,
        "mode": "0640",
        "_ansible_diff": True,
        **extra,
    }


def test_create_then_idempotent_then_change_one(tmp_path, run_module):
    path = tmp_path / "users"
    rc, result = run_module(module.main, args(path))
    assert rc == 0, result
    assert result["changed"] is True and result["added"] == ["a@x.test", "b@x.test"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    first = path.read_text()
    assert first.count("{SHA512-CRYPT}$6$") == 2
    assert "$6$" not in result["diff"]["after"] and "pa" not in result["diff"]["after"].split(":")[1]

    _rc, result = run_module(module.main, args(path))
    assert result["changed"] is False
    assert path.read_text() == first

    rc, result = run_module(module.main, args(path, [USERS[0], {"name": "b@x.test", "password": "new"}]))
    assert rc == 0
    assert result["changed"] is True and result["updated"] == ["b@x.test"]
    lines = path.read_text().splitlines()
    assert lines[0] == first.splitlines()[0]
    assert lines[1] != first.splitlines()[1]


def test_check_mode_writes_nothing(tmp_path, run_module):
    path = tmp_path / "users"
    _rc, result = run_module(module.main, args(path, _ansible_check_mode=True))
    assert result["changed"] is True
    assert not path.exists()


def test_password_and_hash_are_not_logged(tmp_path, run_module):
    _rc, result = run_module(module.main, args(tmp_path / "users", [{"name": "a@x.test", "password": "topsecret"}]))
    assert "topsecret" not in repr(result)


def test_both_password_and_hash_fail(tmp_path, run_module):
    rc, result = run_module(
        module.main, args(tmp_path / "u", [{"name": "a", "password": "xyzzy1", "hash": "{PLAIN}xyzzy2"}])
    )
    assert rc == 1 and "mutually exclusive" in result["msg"]


def test_bad_user_fails_naming_it(tmp_path, run_module):
    rc, result = run_module(module.main, args(tmp_path / "u", [{"name": "a:b", "password": "x"}]))
    assert rc == 1 and "a:b" in result["msg"]


SECRETS = ("Pass-Secret-7", "Hash-Secret-9")
MIXED = [
    {"name": "a@x.test", "password": "Pass-Secret-7"},
    {"name": "b@x.test", "hash": "{PLAIN}Hash-Secret-9", "extra_fields": "userdb_quota_rule=*:storage=1G"},
]


def assert_compact_invocation(result, path, count):
    module_args = result["invocation"]["module_args"]
    assert module_args["users"] == f"{count} users (not echoed)"
    assert module_args["path"] == str(path)
    assert module_args["scheme"] == "SHA512-CRYPT" and module_args["exclusive"] is True
    assert module_args["mode"] == "0640"
    for secret in SECRETS:
        assert secret not in repr(result)


def test_invocation_gives_user_count_not_users_on_success(tmp_path, run_module):
    path = tmp_path / "users"
    rc, result = run_module(module.main, args(path, MIXED))
    assert rc == 0, result
    assert result["changed"] is True and result["added"] == ["a@x.test", "b@x.test"]
    assert_compact_invocation(result, path, 2)
    # The file itself does hold the given hash.
    assert "b@x.test:{PLAIN}Hash-Secret-9:" in path.read_text()


def test_invocation_gives_user_count_not_users_on_failure(tmp_path, run_module):
    path = tmp_path / "users"
    users = [*MIXED, {"name": "a@x.test", "password": "Pass-Secret-7"}]
    rc, result = run_module(module.main, args(path, users))
    assert rc == 1 and result["failed"] is True
    assert "a@x.test is listed twice" in result["msg"]
    assert_compact_invocation(result, path, 3)
    assert not path.exists()


def test_invocation_gives_user_count_when_file_unreadable(tmp_path, run_module):
    path = tmp_path / "users"
    path.mkdir()  # a directory where the file should be: refused by the host path check, before any read
    rc, result = run_module(module.main, args(path, MIXED))
    assert rc == 1 and result["msg"] == f"path: {path} exists and is a directory, not a file"
    assert_compact_invocation(result, path, 2)


def test_a_secret_that_occurs_in_the_result_is_still_masked(tmp_path, run_module):
    rc, result = run_module(module.main, args(tmp_path / "users", [{"name": "alice@x.test", "password": "alice"}]))
    assert rc == 0, result
    assert result["added"] == ["********@x.test"]


def test_many_new_users_are_not_quadratic(tmp_path, run_module):
    # AnsibleModule would test each hash against each name: 5 times the users, 25 times the time.
    # The ratio of two sizes, each the best of three runs, holds on a loaded machine, where an
    # absolute bound does not.
    def best(count):
        users = [{"name": f"u{i}@x.test", "hash": f"{{SHA512-CRYPT}}$6$salt{i}$h"} for i in range(count)]
        times = []
        for attempt in range(3):
            start = time.perf_counter()
            rc, result = run_module(module.main, args(tmp_path / f"users-{count}-{attempt}", users))
            times.append(time.perf_counter() - start)
            assert rc == 0, result
            assert len(result["added"]) == count and result["added"][-1] == f"u{count - 1}@x.test"
        return min(times)

    small, large = best(1000), best(5000)
    assert large / small < 12, (small, large, large / small)
