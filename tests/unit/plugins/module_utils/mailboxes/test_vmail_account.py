# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""vmail_account: the vmail group, user and base directory, created or fixed, never a system directory."""

from __future__ import annotations

import os
import stat
from types import SimpleNamespace

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.vmail_account import (
    AccountError,
    VmailAccount,
    check_account,
)


def account(tmp_path, **overrides):
    return {
        "user": "vmail",
        "uid": os.getuid() or 5000,
        "group": "vmail",
        "gid": os.getgid() or 5000,
        "home": str(tmp_path / "vmail"),
        "shell": "/usr/sbin/nologin",
        "home_mode": "0750",
        **overrides,
    }


class Host:
    def __init__(self, group=None, user=None):
        self.group = group
        self.user = user
        self.calls = []

    def run(self, argv):
        self.calls.append([os.path.basename(argv[0]), *argv[1:]])
        return 0, "", ""

    def getgrnam(self, name):
        if self.group is None:
            raise KeyError(name)
        return self.group

    def getpwnam(self, name):
        if self.user is None:
            raise KeyError(name)
        return self.user

    def backend(self, check_mode=False):
        return VmailAccount(
            self.run,
            lambda name: f"/usr/sbin/{name}",
            check_mode=check_mode,
            getgrnam=self.getgrnam,
            getpwnam=self.getpwnam,
        )


def test_creates_group_user_and_home(tmp_path):
    host = Host()
    a = account(tmp_path)
    changes = host.backend().ensure(a)
    assert changes == ["group vmail created", "user vmail created", f"{a['home']} created"]
    assert host.calls[0] == ["groupadd", "--system", "--gid", str(a["gid"]), "vmail"]
    assert host.calls[1][:3] == ["useradd", "--system", "--uid"]
    assert "--no-create-home" in host.calls[1] and host.calls[1][-1] == "vmail"
    st = os.stat(a["home"])
    assert stat.S_IMODE(st.st_mode) == 0o750
    assert (st.st_uid, st.st_gid) == (a["uid"], a["gid"])


def test_converged_account_changes_nothing(tmp_path):
    a = account(tmp_path)
    os.mkdir(a["home"], 0o750)
    os.chmod(a["home"], 0o750)
    os.chown(a["home"], a["uid"], a["gid"])
    host = Host(
        group=SimpleNamespace(gr_gid=a["gid"]),
        user=SimpleNamespace(pw_uid=a["uid"], pw_gid=a["gid"], pw_dir=a["home"], pw_shell=a["shell"]),
    )
    assert host.backend().ensure(a) == []
    assert host.calls == []


def test_drift_is_fixed_with_usermod_and_groupmod(tmp_path):
    a = account(tmp_path)
    os.mkdir(a["home"], 0o755)
    host = Host(
        group=SimpleNamespace(gr_gid=4999),
        user=SimpleNamespace(pw_uid=a["uid"], pw_gid=a["gid"], pw_dir="/var/vmail", pw_shell="/bin/bash"),
    )
    changes = host.backend().ensure(a)
    assert host.calls == [
        ["groupmod", "--gid", str(a["gid"]), "vmail"],
        ["usermod", "--home", a["home"], "--shell", "/usr/sbin/nologin", "vmail"],
    ]
    assert changes[-1] == f"{a['home']} owner/mode fixed"
    assert stat.S_IMODE(os.stat(a["home"]).st_mode) == 0o750


def test_check_mode_reports_and_changes_nothing(tmp_path):
    host = Host()
    a = account(tmp_path)
    changes = host.backend(check_mode=True).ensure(a)
    assert len(changes) == 3
    assert host.calls == []
    assert not os.path.exists(a["home"])


def test_symlinked_home_is_refused(tmp_path):
    a = account(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", a["home"])
    host = Host(
        group=SimpleNamespace(gr_gid=a["gid"]),
        user=SimpleNamespace(pw_uid=a["uid"], pw_gid=a["gid"], pw_dir=a["home"], pw_shell=a["shell"]),
    )
    with pytest.raises(AccountError, match=r"^account\.home: .*/vmail is a symbolic link"):
        host.backend().ensure(a)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"home": "/etc"}, r"account\.home: /etc is a system directory"),
        ({"home": "/var/mail"}, r"account\.home: /var/mail is a system directory"),
        ({"home": "/"}, r"account\.home: / is a system directory"),
        ({"home": "/home"}, r"account\.home: /home is a system directory"),
        ({"home": "/var/mail/../../etc"}, r"account\.home: .* normalised"),
        ({"home": "relative/vmail"}, r"account\.home"),
        ({"home": "/var/mail/v:mail"}, r"account\.home: .*':'"),
        ({"user": "root"}, r"account\.user"),
        ({"group": "Bad Group"}, r"account\.group"),
        ({"uid": 0}, r"account\.uid"),
        ({"gid": True}, r"account\.gid"),
        ({"shell": "/bin/sh\n"}, r"account\.shell"),
        ({"home_mode": "0777"}, r"account\.home_mode: 0777 would let every user write"),
        ({"home_mode": "rwx"}, r"account\.home_mode"),
    ],
)
def test_bad_account_options_are_refused(tmp_path, overrides, error):
    with pytest.raises(AccountError, match=error):
        check_account(account(tmp_path, **overrides))
