# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The dmarc_config backend in a scratch directory with a fake OpenDMARC and systemd."""

from __future__ import annotations

import os

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.dkim.dmarc_config import (
    DmarcConfig,
    DmarcConfigError,
)

SETTINGS = {"enforce": True, "authserv_id": "mail.example.org", "ignore_hosts": ["192.0.2.0/24"]}


class Host:
    def __init__(self, root):
        self.root = root
        self.calls: list[list[str]] = []
        self.checker_rc = 0
        self.checked: list[str] = []
        self.milter_answers = True
        self.active = True
        self.psl = True

    def run(self, argv, **_kwargs):
        self.calls.append(list(argv))
        name = os.path.basename(argv[0])
        if name == "opendmarc":
            assert argv[1:3] == ["-n", "-c"]
            with open(argv[3], encoding="utf-8") as handle:
                text = handle.read()
            self.checked.append(text)
            ignore = next(line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("IgnoreHosts "))
            assert os.path.dirname(ignore) == os.path.dirname(argv[3])  # the candidate's own IgnoreHosts file
            return (
                self.checker_rc,
                "",
                "opendmarc: x.conf: configuration error at line 4: illegal value" * bool(self.checker_rc),
            )
        if name == "systemctl":
            if argv[1] == "is-enabled":
                return 0, "enabled\n", ""
            if argv[1] == "is-active":
                return (0 if self.active else 3), "", ""
            if argv[1] == "start":
                self.active = True
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def milter(self, host, port, timeout):
        if not self.milter_answers:
            raise ConnectionRefusedError("nothing listens")
        return f"milter version 6 on {port}"

    def config(self, settings=None, **options):
        return DmarcConfig(
            settings=settings or SETTINGS,
            run_command=self.run,
            get_bin_path=lambda name: f"/usr/bin/{name}",
            conf_path=str(self.root / "opendmarc.conf"),
            ignore_file=str(self.root / "opendmarc" / "ignore.hosts"),
            milter=self.milter,
            sleep=lambda seconds: None,
            health_timeout=0,
            exists=lambda path: self.psl,
            **options,
        )

    def systemctl(self):
        return [call[1] for call in self.calls if os.path.basename(call[0]) == "systemctl"]


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def test_first_run_checks_writes_restarts_and_asks_the_milter(host):
    result = host.config().execute()
    assert result["changed"] is True and result["restarted"] is True
    assert result["milter_answer"] == "milter version 6 on 8893"
    conf = (host.root / "opendmarc.conf").read_text()
    assert "RejectFailures true\n" in conf and f"IgnoreHosts {host.root}/opendmarc/ignore.hosts\n" in conf
    assert (host.root / "opendmarc" / "ignore.hosts").read_text().endswith("127.0.0.1\n::1\n192.0.2.0/24\n")
    assert len(host.checked) == 1 and "Socket inet:8893@127.0.0.1" in host.checked[0]
    assert host.systemctl()[-1] == "restart"


def test_second_run_changes_nothing(host):
    host.config().execute()
    host.calls.clear()
    result = host.config().execute()
    assert result["changed"] is False and result["restarted"] is False
    assert host.checked == [host.checked[0]]  # not checked again
    assert "restart" not in host.systemctl()


def test_a_stopped_opendmarc_is_started_and_checked(host):
    host.config().execute()
    host.active = False
    host.calls.clear()
    result = host.config().execute()
    assert result["changed"] is True and result["restarted"] is True and "milter_answer" in result
    assert "start" in host.systemctl()


def test_the_checker_refusing_changes_nothing(host):
    host.checker_rc = 78
    with pytest.raises(DmarcConfigError) as info:
        host.config().execute()
    assert "opendmarc -n refused the candidate configuration (rc=78); nothing was changed" in info.value.msg
    assert "illegal value" in info.value.msg
    assert not (host.root / "opendmarc.conf").exists()
    assert host.systemctl() == []


def test_health_failure_rolls_back(host):
    host.config().execute()
    before = (host.root / "opendmarc.conf").read_text()
    host.milter_answers = False
    with pytest.raises(DmarcConfigError) as info:
        host.config({**SETTINGS, "milter_port": 8899}).execute()
    assert info.value.details == {"rolled_back": True}
    assert "the OpenDMARC milter on 127.0.0.1:8899 did not answer" in info.value.msg
    assert "previous configuration was restored, and OpenDMARC restarted" in info.value.msg
    assert (host.root / "opendmarc.conf").read_text() == before
    assert host.systemctl()[-1] == "restart"


def test_rollback_of_a_first_run_removes_the_files(host):
    host.milter_answers = False
    with pytest.raises(DmarcConfigError):
        host.config().execute()
    assert not (host.root / "opendmarc.conf").exists()
    assert not (host.root / "opendmarc" / "ignore.hosts").exists()


def test_check_mode_writes_nothing_but_checks(host):
    result = host.config(check_mode=True).execute()
    assert result["changed"] is True and len(host.checked) == 1
    assert not (host.root / "opendmarc.conf").exists()
    assert "restart" not in host.systemctl()
    assert "RejectFailures true" in result["diff"]["after"] and result["diff"]["before"].count("\n") == 2


def test_a_missing_public_suffix_list_is_an_error_before_any_change(host):
    host.psl = False
    with pytest.raises(DmarcConfigError, match=r"dkim_dmarc_public_suffix_list: .* does not exist"):
        host.config().execute()
    assert not (host.root / "opendmarc.conf").exists()
    # In check mode (the package may not be installed yet) it is a warning.
    result = host.config(check_mode=True).execute()
    assert any("does not exist" in warning for warning in result["warnings"])


def test_bad_settings_fail_before_anything(host):
    with pytest.raises(
        DmarcConfigError, match=r"dkim_dmarc_milter_port: 8891 is also dkim_milter_port; .*; nothing was changed"
    ):
        host.config({**SETTINGS, "milter_port": 8891}).execute()
    assert host.calls == []
