# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""mail_packages: preflight before anything, dpkg-query only on a converged host, apt-get only for what is missing."""

from __future__ import annotations

import os

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_packages import (
    MailPackages,
    MailPackagesError,
    check_names,
    debconf_lines,
    memtotal_mb,
    parse_dpkg_query,
)

POSTFIX_DEBCONF = {
    "package": "postfix",
    "question": "postfix/main_mailer_type",
    "vtype": "select",
    "value": "No configuration",
}


class FakeHost:
    """dpkg state and the commands run against it."""

    def __init__(self, installed=(), paths=(), cache_age=10.0, fail=None):
        self.installed = set(installed)
        self.paths = set(paths)
        self.cache_age = cache_age
        self.fail = fail or {}
        self.calls = []
        self.stdin = []

    def run(self, argv, environ_update=None, data=None, binary_data=False):
        self.calls.append(argv)
        assert environ_update["DEBIAN_FRONTEND"] == "noninteractive"
        name = argv[0].rsplit("/", 1)[-1]
        if name in self.fail:
            return self.fail[name]
        if name == "dpkg-query" and len(argv) == 4:  # no names: every package dpkg knows
            lines = [f"{p}\tii \n" for p in sorted(self.installed)] + ["removed-one\trc \n"]
            return 0, "".join(lines), ""
        if name == "dpkg-query":
            lines = [f"{p}\tii \n" for p in argv[4:] if p in self.installed]
            lines += [f"{p}\tun \n" for p in argv[4:] if p not in self.installed and p.startswith("half")]
            return (0 if len(lines) == len(argv[4:]) else 1), "".join(lines), ""
        if name == "debconf-set-selections":
            self.stdin.append(data)
            return 0, "", ""
        if argv[1:2] == ["install"]:
            self.installed.update(a for a in argv[2:] if not a.startswith("-") and "::" not in a)
        return 0, "", ""

    def backend(self, check_mode=False):
        return MailPackages(
            self.run,
            lambda name: f"/usr/bin/{name}",
            check_mode=check_mode,
            exists=lambda path: path in self.paths,
            mtime=lambda path: 1000.0 - self.cache_age,
            clock=lambda: 1000.0,
        )

    def commands(self):
        return [" ".join([argv[0].rsplit("/", 1)[-1], *argv[1:2]]) for argv in self.calls]


def test_converged_host_only_reads_dpkg():
    host = FakeHost(installed={"postfix", "postfix-pcre"})
    result = host.backend().execute(["postfix", "postfix-pcre"], debconf=[POSTFIX_DEBCONF])
    assert result == {"changed": False, "missing": [], "installed": [], "cache_updated": False, "exists": {}}
    assert host.commands() == ["dpkg-query -W"]
    assert host.stdin == []


def test_list_installed_costs_no_extra_command_on_a_converged_host():
    host = FakeHost(installed={"postfix", "libc6", "postfix-pcre"})
    result = host.backend().execute(["postfix", "postfix-pcre"], list_installed=True)
    assert result["changed"] is False and result["missing"] == []
    # Every installed package (not the removed one whose configuration files remain), one dpkg-query.
    assert result["host_packages"] == ["libc6", "postfix", "postfix-pcre"]
    assert host.commands() == ["dpkg-query -W"]
    assert len(host.calls[0]) == 4  # no names: the whole dpkg database


def test_list_installed_reports_the_host_after_the_install():
    host = FakeHost(installed={"libc6"}, cache_age=10)
    result = host.backend().execute(["postfix"], list_installed=True)
    assert result["installed"] == ["postfix"]
    assert result["host_packages"] == ["libc6", "postfix"]
    assert host.commands() == ["dpkg-query -W", "apt-get install", "dpkg-query -W", "dpkg-query -W"]


def test_list_installed_in_check_mode_reports_the_host_as_it_is():
    host = FakeHost(installed={"libc6"})
    result = host.backend(check_mode=True).execute(["postfix"], list_installed=True)
    assert result["missing"] == ["postfix"]
    assert result["host_packages"] == ["libc6"]


def test_installs_only_the_missing_after_preseeding():
    host = FakeHost(installed={"postfix"}, cache_age=10)
    result = host.backend().execute(["postfix", "postfix-pcre"], debconf=[POSTFIX_DEBCONF])
    assert result["changed"] is True
    assert result["installed"] == ["postfix-pcre"]
    assert result["cache_updated"] is False
    assert host.commands() == ["dpkg-query -W", "debconf-set-selections", "apt-get install", "dpkg-query -W"]
    assert host.calls[2][-1] == "postfix-pcre" and "postfix" not in host.calls[2]
    assert host.stdin == ["postfix postfix/main_mailer_type select No configuration\n"]


def test_stale_lists_are_updated_first():
    host = FakeHost(cache_age=7200)
    result = host.backend().execute(["nftables"], cache_valid_time=3600)
    assert result["cache_updated"] is True
    assert host.commands() == ["dpkg-query -W", "apt-get update", "apt-get install", "dpkg-query -W"]


def test_check_mode_reports_and_installs_nothing():
    host = FakeHost()
    result = host.backend(check_mode=True).execute(["dovecot-core"], debconf=[POSTFIX_DEBCONF])
    assert result == {
        "changed": True,
        "missing": ["dovecot-core"],
        "installed": [],
        "cache_updated": False,
        "exists": {},
    }
    assert host.commands() == ["dpkg-query -W"]


def test_missing_prerequisite_fails_before_anything():
    host = FakeHost()
    with pytest.raises(MailPackagesError, match="apply the postfix role first"):
        host.backend().execute(
            ["dovecot-core"], requires=[{"path": "/etc/postfix/postmaster.d", "msg": "apply the postfix role first"}]
        )
    assert host.calls == []


def test_missing_prerequisite_is_a_warning_in_check_mode():
    host = FakeHost(installed={"dovecot-core"})
    backend = host.backend(check_mode=True)
    backend.execute(["dovecot-core"], requires=[{"path": "/etc/postfix/postmaster.d", "msg": "apply postfix"}])
    assert backend.warnings == ["apply postfix (check mode: a real run stops here)"]


def test_conflict_fails_even_in_check_mode():
    host = FakeHost(paths={"/etc/postfix/postmaster.d/30-saslauthd.json"})
    with pytest.raises(MailPackagesError, match="saslauthd is already"):
        host.backend(check_mode=True).execute(
            [], conflicts=[{"path": "/etc/postfix/postmaster.d/30-saslauthd.json", "msg": "saslauthd is already it"}]
        )
    assert host.calls == []


def test_requirement_met_and_no_packages_runs_nothing():
    host = FakeHost(paths={"/run/x"})
    result = host.backend().execute([], requires=[{"path": "/run/x"}])
    assert result["changed"] is False
    assert host.calls == []


def test_failed_install_says_which_command_and_why():
    host = FakeHost(fail={"apt-get": (100, "", "E: Unable to locate package nope\n")})
    backend = host.backend()
    with pytest.raises(MailPackagesError, match=r"apt-get update -q failed \(rc=100\):\nE: Unable to locate"):
        backend.execute(["nope"], cache_valid_time=0)
    assert backend.acted is True


def test_half_installed_package_counts_as_missing():
    assert parse_dpkg_query("postfix\tii \nhalf\tiF \nother\tun \n") == {"postfix"}


def test_install_that_leaves_a_package_missing_fails():
    host = FakeHost()
    host.run_install = host.run

    def run(argv, **kwargs):
        if argv[1:2] == ["install"]:
            host.calls.append(argv)
            return 0, "", ""
        return host.run_install(argv, **kwargs)

    backend = MailPackages(
        run, lambda name: f"/usr/bin/{name}", exists=lambda p: False, mtime=lambda p: 999.0, clock=lambda: 1000.0
    )
    with pytest.raises(MailPackagesError, match="left these packages not installed: ghost"):
        backend.execute(["ghost"])


@pytest.mark.parametrize(
    ("names", "error"),
    [
        (["postfix", "bad name"], r"names\[1\]: 'bad name'"),
        (["postfix\nrm"], r"names\[0\]"),
        (["-o"], r"names\[0\]: '-o'"),
        ([3], r"names\[0\]: 3"),
    ],
)
def test_bad_names_are_refused(names, error):
    with pytest.raises(MailPackagesError, match=error):
        check_names(names)


def test_duplicate_names_are_kept_once():
    assert check_names(["postfix", "postfix-pcre", "postfix"]) == ["postfix", "postfix-pcre"]


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({**POSTFIX_DEBCONF, "value": "No configuration\npostfix postfix/x string y"}, r"debconf\[0\]\.value"),
        ({**POSTFIX_DEBCONF, "question": "main mailer"}, r"debconf\[0\]\.question"),
        ({**POSTFIX_DEBCONF, "package": "Postfix"}, r"debconf\[0\]\.package"),
        ({**POSTFIX_DEBCONF, "vtype": "choice"}, r"debconf\[0\]\.vtype"),
        ({**POSTFIX_DEBCONF, "value": ["a"]}, r"debconf\[0\]\.value"),
    ],
)
def test_debconf_entries_cannot_add_lines(entry, error):
    with pytest.raises(MailPackagesError, match=error):
        debconf_lines([entry])


def test_debconf_booleans_are_debconf_words():
    entry = {"package": "xx", "question": "xx/enable", "vtype": "boolean", "value": True}
    assert debconf_lines([entry]) == "xx xx/enable boolean true\n"


def test_probe_reports_existence_after_the_install():
    host = FakeHost(installed={"postfix"}, paths={"/etc/dovecot/dovecot.conf"})
    result = host.backend().execute(["postfix"], probe=["/etc/dovecot/dovecot.conf", "/run/dovecot/lmtp"])
    assert result["exists"] == {"/etc/dovecot/dovecot.conf": True, "/run/dovecot/lmtp": False}


def test_hold_services_forbids_starts_during_the_install_only(tmp_path):
    policy = tmp_path / "policy-rc.d"
    seen = []
    host = FakeHost()
    run = host.run

    def watching(argv, **kwargs):
        if argv[1:2] == ["install"]:
            seen.append(policy.read_text(encoding="utf-8"))
            assert os.access(policy, os.X_OK)
        return run(argv, **kwargs)

    backend = MailPackages(
        watching,
        lambda name: f"/usr/bin/{name}",
        exists=lambda p: False,
        mtime=lambda p: 999.0,
        clock=lambda: 1000.0,
        policy_rc_d=str(policy),
    )
    backend.execute(["amavisd-new"], hold_services=True, install_recommends=False)
    assert seen and seen[0].endswith("exit 101\n")
    assert not policy.exists()
    assert "--no-install-recommends" in host.calls[1]


def test_an_existing_policy_rc_d_is_put_back(tmp_path):
    policy = tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    host = FakeHost()
    backend = MailPackages(
        host.run,
        lambda n: f"/usr/bin/{n}",
        exists=lambda p: False,
        mtime=lambda p: 999.0,
        clock=lambda: 1000.0,
        policy_rc_d=str(policy),
    )
    backend.execute(["amavisd-new"], hold_services=True)
    assert policy.read_text(encoding="utf-8") == "#!/bin/sh\nexit 0\n"
    assert "--no-install-recommends" not in host.calls[1]


def test_list_installed_reports_the_memory_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        2097152 kB\nMemFree:          123456 kB\n", encoding="ascii")
    host = FakeHost(installed={"postfix"})
    backend = MailPackages(host.run, lambda name: f"/usr/bin/{name}", exists=lambda path: False, meminfo=str(meminfo))
    assert backend.execute(["postfix"], list_installed=True)["memtotal_mb"] == 2048
    assert backend.execute(["postfix"], list_installed=True)["processors"] == len(os.sched_getaffinity(0))
    # Only the census call reads it; an unreadable or odd file gives nothing rather than a guess.
    assert "memtotal_mb" not in backend.execute(["postfix"])
    for text in ("MemTotal: lots\n", "MemFree: 1 kB\n", "MemTotal: 2048 MB\n"):
        meminfo.write_text(text, encoding="ascii")
        assert "memtotal_mb" not in backend.execute(["postfix"], list_installed=True), text
    assert memtotal_mb(str(tmp_path / "missing")) is None
