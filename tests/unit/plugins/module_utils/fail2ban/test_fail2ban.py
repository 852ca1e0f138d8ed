# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fail2ban role's settings, its jail file, and the fail2ban_config backend with a fake fail2ban and systemd."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.fail2ban.fail2ban_config import (
    Fail2banConfig,
    Fail2banConfigError,
    running_jails,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.fail2ban.fail2ban_settings import (
    DEFAULT_JAILS,
    Fail2banSettingsError,
    check_settings,
    render_jails,
)

BASE = {
    "maxretry": 5,
    "findtime": 600,
    "bantime": 3600,
    "bantime_increment": True,
    "bantime_maxtime": 604800,
    "ignore_networks": [],
    "trusted_networks": ["127.0.0.0/8", "[::1]/128"],
    "jails": [dict(jail) for jail in DEFAULT_JAILS],
}


def settings(**overrides):
    return check_settings({**BASE, **overrides}, "fail2ban_")


# -- settings -------------------------------------------------------------------------------


def test_defaults_render_journal_jails_on_every_mail_port():
    text = render_jails(settings())
    # Every jail names the ports itself (Debian's jail.conf gives its jails fewer, by service name).
    assert text.count("port = 25,465,587,110,995,143,993,4190\n") == 3
    lines = text.splitlines()
    assert lines[0].startswith("# Managed by Ansible (postmaster.mailserver.fail2ban_config)")
    for line in (
        "[DEFAULT]",
        "backend = systemd",
        "ignoreip = 127.0.0.0/8 ::1/128",
        "maxretry = 5",
        "findtime = 600",
        "bantime = 3600",
        "bantime.increment = true",
        "bantime.maxtime = 604800",
        "banaction = nftables[type=multiport]",
        "port = 25,465,587,110,995,143,993,4190",
        "[postfix-sasl]",
        "filter = postfix[mode=auth]",
        "journalmatch = _SYSTEMD_UNIT=postfix@-.service",
        "[dovecot]",
        "filter = dovecot",
        "journalmatch = _SYSTEMD_UNIT=dovecot.service",
    ):
        assert line in lines, line
    assert text.endswith("\n")


def test_trusted_and_ignored_networks_are_merged_without_tables_or_repeats():
    s = settings(
        ignore_networks=["192.0.2.10", "198.51.100.0/24", "2001:db8::/32"],
        trusted_networks=["127.0.0.0/8", "hash:/etc/postfix/network_table", "198.51.100.0/24", "[2001:db8::]/32",
                          "203.0.113.7"],
    )  # fmt: skip
    assert s["ignore_networks"] == ["192.0.2.10/32", "198.51.100.0/24", "2001:db8::/32", "127.0.0.0/8",
                                    "203.0.113.7/32"]  # fmt: skip


def test_a_jail_may_have_its_own_times_and_be_off():
    s = settings(jails=[{"name": "dovecot", "filter": "dovecot", "maxretry": 3, "bantime": "7200", "enabled": False}])
    text = render_jails(s)
    assert (
        "[dovecot]\nenabled = false\nfilter = dovecot\nport = 25,465,587,110,995,143,993,4190\n"
        "journalmatch = _SYSTEMD_UNIT=dovecot.service\n"
    ) in text
    assert "maxretry = 3\nbantime = 7200\n" in text


def test_without_increment_the_ban_does_not_grow():
    text = render_jails(settings(bantime_increment=False))
    assert "bantime.increment = false" in text and "bantime.maxtime" not in text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bantime": 0}, "fail2ban_bantime: must be between 60 and 31536000 of seconds, got 0"),
        ({"bantime": -1}, "fail2ban_bantime: must be between 60 and 31536000 of seconds, got -1"),
        ({"bantime": "1h"}, "fail2ban_bantime: must be a whole number of seconds, got '1h' (str)"),
        ({"maxretry": True}, "fail2ban_maxretry: must be a whole number, got True (bool)"),
        ({"maxretry": 0}, "fail2ban_maxretry: must be between 1 and 100, got 0"),
        ({"findtime": 10}, "fail2ban_findtime: must be between 60 and 604800 of seconds, got 10"),
        ({"bantime_maxtime": 600}, "fail2ban_bantime_maxtime: 600 is shorter than fail2ban_bantime (3600)"),
        ({"bantime_increment": "yes"}, "fail2ban_bantime_increment: must be true or false, got 'yes' (str)"),
        ({"ignore_networks": ["0.0.0.0/0"]},
         "fail2ban_ignore_networks[0]: '0.0.0.0/0' covers every address, so nobody would ever be banned"),
        ({"ignore_networks": ["192.0.2.1", "::/0"]}, "fail2ban_ignore_networks[1]: '::/0' covers every address"),
        ({"ignore_networks": ["192.0.2.1\nignoreip = 0.0.0.0/0"]},
         "fail2ban_ignore_networks[0]: '192.0.2.1\\nignoreip = 0.0.0.0/0' is not an address or a network"),
        ({"ignore_networks": "192.0.2.1"}, "fail2ban_ignore_networks: must be a list of addresses or networks"),
        ({"trusted_networks": ["0.0.0.0/0"]}, "fail2ban_trusted_networks[0]: '0.0.0.0/0' covers every address"),
        ({"jails": [{"name": "x", "filter": "../../etc/passwd"}]},
         "fail2ban_jails[0].filter: '../../etc/passwd' is not the name of a filter in /etc/fail2ban/filter.d"),
        ({"jails": [{"name": "x", "filter": "/etc/fail2ban/filter.d/sshd"}]},
         "fail2ban_jails[0].filter: '/etc/fail2ban/filter.d/sshd' is not the name of a filter"),
        ({"jails": [{"name": "x", "filter": "postfix[mode=aggressive]"}]},
         "fail2ban_jails[0].filter: 'postfix[mode=aggressive]' is not the name of a filter"),
        ({"jails": [{"name": "x y", "filter": "dovecot"}]}, "fail2ban_jails[0].name: 'x y' is not a jail name"),
        ({"jails": [{"name": "x", "filter": "dovecot", "mode": "a\nb"}]},
         "fail2ban_jails[0].mode: 'a\\nb' is not a filter mode"),
        ({"jails": [{"name": "x", "filter": "dovecot", "port": 22}]},
         "fail2ban_jails[0]: unknown key(s) port (name, filter, mode, enabled, maxretry, findtime, bantime)"),
        ({"jails": [{"name": "x", "filter": "dovecot"}, {"name": "x", "filter": "postfix"}]},
         "fail2ban_jails[1].name: 'x' is given twice"),
        ({"jails": [{"name": "x", "filter": "dovecot", "bantime": 0}]},
         "fail2ban_jails[0].bantime: must be between 60 and 31536000 of seconds, got 0"),
        ({"jails": "dovecot"}, "fail2ban_jails: must be a list of jails"),
        ({"ports": [25, 70000]}, "fail2ban_ports[1]: must be between 1 and 65535, got 70000"),
        ({"bogus": 1}, "fail2ban_bogus: unknown setting(s)"),
    ],
)  # fmt: skip
def test_bad_settings_name_the_variable_and_the_entry(overrides, message):
    with pytest.raises(Fail2banSettingsError) as excinfo:
        settings(**overrides)
    assert str(excinfo.value).startswith(message), str(excinfo.value)


def test_running_jails_reads_fail2ban_client_status():
    status = "Status\n|- Number of jail:\t3\n`- Jail list:\tdovecot, postfix-sasl, sshd\n"
    assert running_jails(status) == ["dovecot", "postfix-sasl", "sshd"]
    assert running_jails("garbage") == []


# -- backend --------------------------------------------------------------------------------


class Host:
    """A fake fail2ban-client and systemctl; the configuration directory is a real one under tmp_path."""

    def __init__(self, root):
        self.root = root
        self.calls: list[list[str]] = []
        self.active = True
        self.enabled = True
        self.test_ok = True
        self.jails_up = True
        self.seen_candidates: list[str] = []
        (root / "jail.d").mkdir(parents=True)
        (root / "jail.conf").write_text("[DEFAULT]\n")

    def run(self, argv, **_kwargs):
        self.calls.append(list(argv))
        name = os.path.basename(argv[0])
        if name == "fail2ban-client":
            if argv[1:2] == ["-c"]:
                candidate = os.path.join(argv[2], "jail.d", "postmaster.local")
                text = Path(candidate).read_text(encoding="utf-8") if os.path.exists(candidate) else ""
                self.seen_candidates.append(text)
                if self.test_ok:
                    return 0, "OK: configuration test is successful\n", ""
                return 255, "", "ERROR   Errors in jail 'dovecot'.\nERROR: test configuration failed\n"
            if argv[1] == "ping":
                return (0, "Server replied: pong\n", "") if self.active else (255, "", "Failed to access socket")
            if argv[1] == "status":
                jails = "dovecot, postfix-sasl, sshd" if self.jails_up else "sshd"
                return 0, f"Status\n|- Number of jail:\t3\n`- Jail list:\t{jails}\n", ""
        if name == "systemctl":
            if argv[1] == "is-enabled":
                return (0, "enabled\n", "") if self.enabled else (1, "disabled\n", "")
            if argv[1] == "is-active":
                return (0 if self.active else 3), "", ""
            if argv[1] in ("start", "restart"):
                self.active = True
            if argv[1] == "enable":
                self.enabled = True
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def bin(self, name):
        return f"/usr/bin/{name}"

    def config(self, state="present", overrides=None, **options):
        return Fail2banConfig(
            settings={**BASE, **(overrides or {})} if state == "present" else None,
            state=state,
            conf_dir=str(self.root),
            run_command=self.run,
            get_bin_path=self.bin,
            sleep=lambda seconds: None,
            health_timeout=0,
            **options,
        )

    def commands(self, name):
        return [call[1:] for call in self.calls if os.path.basename(call[0]) == name]

    @property
    def jail_file(self):
        return self.root / "jail.d" / "postmaster.local"


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path / "fail2ban")


def test_a_new_jail_file_is_checked_by_fail2ban_written_and_fail2ban_restarted(host):
    result = host.config().execute()
    assert result["changed"] and result["restarted"]
    assert result["jails"] == ["dovecot", "postfix-sasl", "sshd"]
    text = host.jail_file.read_text()
    assert host.seen_candidates == [text]
    assert ["restart", "fail2ban"] in host.commands("systemctl")
    assert oct(host.jail_file.stat().st_mode & 0o777) == "0o644"


def test_an_unchanged_file_and_a_running_fail2ban_change_nothing(host):
    host.config().execute()
    host.calls.clear()
    result = host.config().execute()
    assert not result["changed"] and not result["restarted"]
    assert host.commands("fail2ban-client") == []
    assert all(call[0] in ("is-enabled", "is-active") for call in host.commands("systemctl"))


def test_a_stopped_fail2ban_is_started_and_checked(host):
    host.config().execute()
    host.active = False
    result = host.config().execute()
    assert result["changed"] and result["restarted"]
    assert ["start", "fail2ban"] in host.commands("systemctl")


def test_the_checker_refusing_the_candidate_leaves_the_file_alone(host):
    host.config().execute()
    before = host.jail_file.read_text()
    host.test_ok = False
    host.calls.clear()
    with pytest.raises(
        Fail2banConfigError, match=r"fail2ban-client -t refused the candidate .*Errors in jail 'dovecot'"
    ):
        host.config(overrides={"maxretry": 3}).execute()
    assert host.jail_file.read_text() == before
    assert "maxretry = 3" in host.seen_candidates[-1]
    assert not any(call[0] in ("restart", "start") for call in host.commands("systemctl"))


def test_a_jail_that_does_not_come_up_is_rolled_back(host):
    host.config().execute()
    before = host.jail_file.read_text()
    host.jails_up = False
    with pytest.raises(Fail2banConfigError) as excinfo:
        host.config(overrides={"maxretry": 3}).execute()
    assert excinfo.value.details == {"rolled_back": True}
    assert "fail2ban runs, but not the jail(s) postfix-sasl, dovecot (running: sshd);" in str(excinfo.value)
    assert "the previous jail file was restored" in str(excinfo.value)
    assert host.jail_file.read_text() == before


def test_check_mode_checks_the_candidate_and_writes_nothing(host):
    result = host.config(check_mode=True).execute()
    assert result["changed"] and not host.jail_file.exists()
    assert len(host.seen_candidates) == 1
    assert host.commands("systemctl") == [["is-enabled", "fail2ban"], ["is-active", "--quiet", "fail2ban"]]


def test_absent_removes_the_file_and_restarts_a_running_fail2ban(host):
    host.config().execute()
    host.calls.clear()
    result = host.config(state="absent").execute()
    assert result["changed"] and result["restarted"] and not host.jail_file.exists()
    assert host.seen_candidates[-1] == ""  # the checker saw the directory without the file
    assert ["restart", "fail2ban"] in host.commands("systemctl")
    assert not host.config(state="absent").execute()["changed"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"conf_dir": "relative"}, "conf_dir: 'relative' is not an absolute path"),
        ({"conf_dir": "/etc/../tmp"}, "conf_dir: '/etc/../tmp' is not an absolute path"),
        ({"jail_file": "../jail.local"}, "jail_file: '../jail.local' is not a file name ending in .local"),
        ({"jail_file": "postmaster.conf"}, "jail_file: 'postmaster.conf' is not a file name ending in .local"),
    ],
)
def test_bad_paths_are_refused(tmp_path, options, message):
    with pytest.raises(Fail2banConfigError, match=f"^{message}"):
        Fail2banConfig(settings=BASE, run_command=None, get_bin_path=None, **options)


def test_bad_settings_change_nothing(host):
    with pytest.raises(Fail2banConfigError, match=r"^bantime: must be between 60 .*; nothing was changed$"):
        host.config(overrides={"bantime": 0})
    assert not host.jail_file.exists() and host.calls == []
