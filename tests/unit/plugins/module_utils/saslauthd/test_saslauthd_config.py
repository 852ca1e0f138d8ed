# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The saslauthd_config backend in a scratch directory: the real /bin/sh reads the candidate, a real
Unix socket answers the health check; saslauthd -v, systemctl, postfix and usermod are fakes."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.common import mail_paths
from ansible_collections.postmaster.mailserver.plugins.module_utils.saslauthd import saslauthd_settings
from ansible_collections.postmaster.mailserver.plugins.module_utils.saslauthd.saslauthd_config import (
    SaslauthdConfig,
    SaslauthdConfigError,
    socket_probe,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.saslauthd.saslauthd_settings import (
    SaslauthdSettingsError,
    check_config,
    render_defaults,
)

SASLAUTHD_V = "saslauthd 2.1.28\nauthentication mechanisms: getpwent kerberos5 pam rimap shadow ldap\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Host:
    """A scratch host: the files below *root*; saslauthd answers on its socket only when *answers*."""

    def __init__(self, root):
        self.root = root
        self.calls: list[list[str]] = []
        self.members: list[str] = []
        self.answers = True
        self.active = True
        self.postfix_runs = True
        self.listener: socket.socket | None = None
        self.clock = Clock()

    def run(self, argv, **_kwargs):
        self.calls.append(list(argv))
        name = os.path.basename(argv[0])
        if name == "sh":
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            return done.returncode, done.stdout, done.stderr
        if name == "saslauthd":
            return 0, "", SASLAUTHD_V
        if name == "systemctl":
            if argv[1] == "is-enabled":
                return 0, "enabled\n", ""
            if argv[1] == "is-active":
                return (0 if self.active else 3), "", ""
            if argv[1] == "restart":
                self.restart()
            return 0, "", ""
        if name == "postfix":
            return (0 if self.postfix_runs else 1), "", ""
        if name == "usermod":
            self.members.append(argv[-1])
            return 0, "", ""
        if name == "gpasswd":
            self.members.remove(argv[2])
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def smtp(self, host, port, _timeout):
        self.calls.append(["smtp", f"{host}:{port}"])
        return "220 mail.example.test ESMTP"

    def restart(self) -> None:
        """saslauthd starts with the live defaults file: a mechanism of rimap (no -O host) dies at start."""
        if self.listener:
            self.listener.close()
            self.listener = None
        defaults = self.root / "default" / "saslauthd"
        if not defaults.exists():
            return  # the package's own saslauthd, not part of this scratch host
        text = defaults.read_text(encoding="utf-8")
        socket_dir = re.search(r'OPTIONS="-c -m (\S+)"', text).group(1)
        mux = os.path.join(socket_dir, "mux")
        if os.path.exists(mux):
            os.unlink(mux)
        if 'MECHANISMS="rimap"' in text or not self.answers:
            return
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(mux)
        self.listener.listen(4)

    def backend(self, settings=None, **kwargs):
        options = {
            "settings": settings or self.settings(),
            "postfix_config_dir": str(self.root / "postfix"),
            "defaults_file": str(self.root / "default" / "saslauthd"),
            "tmpfiles_file": str(self.root / "tmpfiles.d" / "postmaster-saslauthd.conf"),
            "link": str(self.root / "run-saslauthd"),
            "run_command": self.run,
            "get_bin_path": lambda name: None if name == "journalctl" else f"/usr/bin/{name}",
            "members": lambda _group: list(self.members),
            "gid": lambda _group: os.getgid(),
            "primary_gid": lambda _user: -2,
            "chown": lambda *_args: None,
            "smtp": self.smtp,
            "owner_uid": os.getuid(),
            "health_timeout": 3,
            "sleep": self.clock.sleep,
            "clock": self.clock,
        }
        options.update(kwargs)
        return SaslauthdConfig(**options)

    def settings(self, **changes):
        return {
            "mechanisms": "pam",
            "threads": 5,
            "mech_list": ["plain", "login"],
            "socket_dir": str(self.root / "spool" / "saslauthd"),
            **changes,
        }

    def snapshot(self) -> dict[str, tuple]:
        found = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                if stat.S_ISSOCK(st.st_mode):
                    continue
                content = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
                if stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as handle:
                        content = handle.read()
                found[path] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), content)
        return found


@pytest.fixture
def host(tmp_path, monkeypatch):
    """The scratch directory is trusted by the host path check and allowed as a socket directory."""
    trust = mail_paths.DEFAULT_TRUST
    monkeypatch.setattr(
        mail_paths, "DEFAULT_TRUST", mail_paths.HostTrust(uids=trust.uids | {os.getuid()}, top=str(tmp_path))
    )
    monkeypatch.setattr(saslauthd_settings, "SOCKET_DIR_RE", re.compile(re.escape(str(tmp_path)) + r"(/[a-z]+)+\Z"))
    made = Host(tmp_path)
    yield made
    if made.listener:
        made.listener.close()


def test_the_settings_are_checked_and_named_before_anything():
    with pytest.raises(SaslauthdSettingsError) as caught:
        check_config(
            {"mechanisms": "pam; rm -rf /", "threads": True, "mech_list": ["cram-md5"], "socket_dir": "/tmp/x"}
        )
    message = str(caught.value)
    for named in ("settings.mechanisms", "settings.threads", "settings.mech_list", "cram-md5", "settings.socket_dir"):
        assert named in message
    with pytest.raises(SaslauthdSettingsError, match=r"settings\.passwd is not a saslauthd_config setting"):
        check_config({"passwd": "x", "socket_dir": "/run/saslauthd-mux"})


def test_the_defaults_file_reads_back_in_a_shell_as_meant():
    text = render_defaults(check_config({"mechanisms": "shadow", "threads": 2, "socket_dir": "/run/sasl"}))
    assert 'MECHANISMS="shadow"' in text and "THREADS=2" in text and 'OPTIONS="-c -m /run/sasl"' in text


def test_a_first_run_writes_everything_restarts_and_answers_and_a_second_changes_nothing(host):
    result = host.backend().execute()
    assert result["changed"] is True and result["restarted"] is True and result["postfix_reloaded"] is True
    assert "accepted a connection" in result["answer"]
    assert sorted(os.path.basename(p) for p in result["files"]) == [
        "postmaster-saslauthd.conf",
        "saslauthd",
        "smtpd.conf",
    ]
    socket_dir = host.root / "spool" / "saslauthd"
    assert stat.S_IMODE(os.stat(socket_dir).st_mode) == 0o710
    assert os.readlink(host.root / "run-saslauthd") == str(socket_dir)
    assert host.members == ["postfix"]
    assert "mech_list: plain login" in (host.root / "postfix" / "sasl" / "smtpd.conf").read_text(encoding="utf-8")
    assert f"L+ /run/saslauthd - - - - {socket_dir}" in (
        host.root / "tmpfiles.d" / "postmaster-saslauthd.conf"
    ).read_text(encoding="utf-8")
    assert host.calls[1][:2] == ["/usr/bin/sh", "-c"]  # the candidate was read by a shell before the swap
    host.calls.clear()
    again = host.backend().execute()
    assert again["changed"] is False and again["files"] == [] and again["actions"] == []
    assert [call[1] for call in host.calls] == ["is-enabled", "is-active"]


def test_check_mode_reports_the_diff_and_touches_nothing(host):
    before = host.snapshot()
    result = host.backend(check_mode=True).execute()
    assert result["changed"] is True and result["restarted"] is False
    assert any('MECHANISMS="pam"' in entry["after"] for entry in result["diff"])
    assert any("link" in action for action in result["actions"])
    assert host.snapshot() == before and host.members == []
    assert not any(os.path.basename(call[0]) == "systemctl" and call[1] == "restart" for call in host.calls)


def test_a_mechanism_saslauthd_does_not_offer_fails_before_any_change(host):
    before = host.snapshot()
    with pytest.raises(SaslauthdConfigError, match=r"does not offer 'sasldb'.*nothing was changed"):
        host.backend(host.settings(mechanisms="sasldb")).execute()
    assert host.snapshot() == before


def test_a_candidate_saslauthd_dies_with_is_rolled_back_and_the_old_one_answers_again(host):
    host.backend().execute()
    before = host.snapshot()
    with pytest.raises(SaslauthdConfigError) as caught:
        host.backend(host.settings(mechanisms="rimap", threads=2)).execute()
    assert caught.value.details == {"rolled_back": True}
    assert "saslauthd did not answer" in caught.value.msg and "previous files were restored" in caught.value.msg
    assert host.snapshot() == before
    assert socket_probe(str(host.root / "spool" / "saslauthd" / "mux"), 1).endswith("accepted a connection")


def test_a_first_run_that_fails_takes_back_the_group_the_link_and_the_new_files(host):
    host.answers = False
    before = host.snapshot()
    with pytest.raises(SaslauthdConfigError, match="saslauthd did not answer"):
        host.backend().execute()
    assert host.snapshot() == before and host.members == []


def test_a_stopped_saslauthd_on_a_converged_host_is_started_and_must_answer(host):
    host.backend().execute()
    host.active = False
    result = host.backend().execute()
    assert result["changed"] is True and result["actions"] == ["started saslauthd"]
