# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Call records: written after a call, checked by the next run's census, answered only while the host is unchanged."""

from __future__ import annotations

import grp
import json
import os
import time
from datetime import UTC, datetime

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.common import call_record as cr
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import (
    record_call,
    unchanged_result,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.maildir import build_specs
from ansible_collections.postmaster.mailserver.plugins.module_utils.tls.tls_certificate import certificate_renewal
from ansible_collections.postmaster.mailserver.plugins.modules.maildir import footprint as maildir_footprint

KEY = "a" * 64
OTHER = "b" * 64


class Systemd:
    """``systemctl show`` for units whose state the test sets."""

    def __init__(self, **states):
        self.states = {unit.replace("_", "-"): state for unit, state in states.items()}
        self.calls = []

    def run(self, argv, **_kw):
        self.calls.append(list(argv))
        units = argv[argv.index("--") + 1 :]
        blocks = []
        for unit in units:
            enabled, active = self.states.get(unit, ("", "inactive"))
            blocks.append(f"Id={unit}.service\nUnitFileState={enabled}\nActiveState={active}\n")
        return 0, "\n".join(blocks), ""

    @staticmethod
    def which(name):
        return f"/usr/bin/{name}"


@pytest.fixture
def host(tmp_path):
    conf = tmp_path / "etc" / "postsrsd"
    conf.parent.mkdir()
    conf.write_text("SRS_DOMAIN=example.org\n")
    return tmp_path, conf, Systemd(postsrsd=("enabled", "active"))


def _write(record_dir, conf, systemd, key=KEY, result=None):
    footprint = cr.Footprint([str(conf)], ["postsrsd"])
    result = result or {"defaults_path": str(conf)}
    cr.write(key, "srs_config", footprint, result, run=systemd.run, get_bin_path=systemd.which, record_dir=record_dir)


def test_a_record_is_valid_while_nothing_it_owns_changed(host):
    tmp_path, conf, systemd = host
    records = str(tmp_path / "calls")
    _write(
        records, conf, systemd, result={"defaults_path": str(conf), "diff": {"x": 1}, "warnings": [], "changed": True}
    )
    assert oct(os.stat(records).st_mode & 0o777) == "0o700"
    assert oct(os.stat(os.path.join(records, KEY + ".json")).st_mode & 0o777) == "0o600"
    # The diff, warnings and changed are not replayed.
    assert cr.census(systemd.run, systemd.which, records) == {KEY: {"defaults_path": str(conf)}}
    # One systemctl call for every unit of every record.
    _write(records, conf, systemd, key=OTHER)
    systemd.calls.clear()
    assert set(cr.census(systemd.run, systemd.which, records)) == {KEY, OTHER}
    assert len(systemd.calls) == 1


@pytest.mark.parametrize(
    "change",
    [
        lambda conf, systemd: conf.write_text("SRS_DOMAIN=example.net\n"),  # edited
        lambda conf, systemd: conf.chmod(0o666),  # another mode
        lambda conf, systemd: conf.unlink(),  # removed
        lambda conf, systemd: systemd.states.update(postsrsd=("enabled", "failed")),  # stopped
        lambda conf, systemd: systemd.states.update(postsrsd=("disabled", "active")),  # disabled
        lambda conf, systemd: (conf.parent / "x").symlink_to("/") or conf.parent.chmod(0o777),  # directory opened
    ],
)
def test_any_change_to_the_footprint_makes_the_record_invalid_and_removes_it(host, change):
    tmp_path, conf, systemd = host
    records = str(tmp_path / "calls")
    _write(records, conf, systemd)
    change(conf, systemd)
    # Check mode only looks.
    assert cr.census(systemd.run, systemd.which, records, check_mode=True) == {}
    assert os.path.exists(os.path.join(records, KEY + ".json"))
    assert cr.census(systemd.run, systemd.which, records) == {}
    assert not os.path.exists(os.path.join(records, KEY + ".json"))


def test_a_tree_sees_a_new_file_and_a_group_its_members(tmp_path):
    top = tmp_path / "dovecot"
    (top / "conf.d").mkdir(parents=True)
    (top / "dovecot.conf").write_text("x\n")
    before = cr.observe_path(f"tree:{top}")
    assert before[0] == "t" and cr.observe_path(f"tree:{top}") == before
    (top / "conf.d" / "99-new.conf").write_text("y\n")
    assert cr.observe_path(f"tree:{top}") != before
    group = grp.getgrgid(os.getgid())
    assert cr.observe_path(f"group:{group.gr_name}") == ["g", group.gr_gid, sorted(group.gr_mem)]
    assert cr.observe_path("group:no-such-group-here") is None
    assert cr.observe_path(str(tmp_path / "missing")) is None


def test_the_footprint_holds_the_directories_of_its_paths():
    footprint = cr.Footprint(["/etc/opendkim/keys/example.org/s1.private", "tree:/etc/dovecot", "group:amavis"], [])
    assert footprint.paths == [
        "/etc",
        "/etc/opendkim/keys/example.org",
        "/etc/opendkim/keys/example.org/s1.private",
        "group:amavis",
        "tree:/etc/dovecot",
    ]


def test_systemctl_show_blocks_are_matched_by_id():
    output = (
        "Id=opendkim.service\nUnitFileState=enabled\nActiveState=active\n\nId=clamav-daemon.socket\n"
        "UnitFileState=disabled\nActiveState=inactive\n"
    )
    states = cr.parse_systemctl_show(output, ["clamav-daemon.socket", "opendkim"])
    assert states == {"opendkim": ["enabled", "active"], "clamav-daemon.socket": ["disabled", "inactive"]}


def test_broken_or_foreign_records_are_not_trusted(host):
    tmp_path, conf, systemd = host
    records = tmp_path / "calls"
    _write(str(records), conf, systemd)
    # A record under another key's name, or not JSON: dropped.
    os.rename(records / f"{KEY}.json", records / f"{OTHER}.json")
    (records / f"{'c' * 64}.json").write_text("{not json")
    assert cr.census(systemd.run, systemd.which, str(records)) == {}
    assert os.listdir(records) == []
    # A key is 64 hex digits: nothing else names a file.
    with pytest.raises(ValueError):
        _write(str(records), conf, systemd, key="../../etc/passwd")
    cr.forget("../../etc/passwd", str(records))
    assert os.listdir(records) == []


def test_only_the_newest_records_are_kept(host):
    tmp_path, conf, systemd = host
    records = str(tmp_path / "calls")
    for number in range(5):
        key = f"{number:064x}"
        _write(records, conf, systemd, key=key)
        os.utime(os.path.join(records, f"{key}.json"), (1000 + number, 1000 + number))
    cr.prune(records, keep=2)
    assert sorted(os.listdir(records)) == [f"{3:064x}.json", f"{4:064x}.json"]


def test_the_key_follows_the_module_the_arguments_and_the_code():
    key = cr.call_key("postmaster.mailserver.srs_config", {"settings": {"domain": "a"}}, "code1")
    assert key == cr.call_key("postmaster.mailserver.srs_config", {"settings": {"domain": "a"}}, "code1")
    assert key != cr.call_key("postmaster.mailserver.srs_config", {"settings": {"domain": "b"}}, "code1")
    assert key != cr.call_key("postmaster.mailserver.dkim_config", {"settings": {"domain": "a"}}, "code1")
    assert key != cr.call_key("postmaster.mailserver.srs_config", {"settings": {"domain": "a"}}, "code2")


class _Module:
    def __init__(self, key, check_mode=False):
        self.params = {"call_record": key}
        self.check_mode = check_mode
        self._name = "srs_config"
        self.warnings = []
        self.systemd = Systemd(postsrsd=("enabled", "active"))
        self.run_command = self.systemd.run
        self.get_bin_path = self.systemd.which

    def warn(self, text):
        self.warnings.append(text)


def test_a_module_records_only_outside_check_mode_and_with_a_footprint(host, monkeypatch):
    tmp_path, conf, _systemd = host
    records = tmp_path / "calls"
    monkeypatch.setattr(cr, "RECORD_DIR", str(records))
    backend = type("B", (), {"footprint": lambda self: cr.Footprint([str(conf)], ["postsrsd"])})()
    record_call(_Module(KEY, check_mode=True), backend, {"x": 1})
    record_call(_Module(KEY), object(), {"x": 1})
    assert not records.exists()
    record_call(_Module(KEY), backend, {"x": 1})
    assert json.loads((records / f"{KEY}.json").read_text())["result"] == {"x": 1}


def test_a_recorded_result_is_the_result_of_a_call_that_changed_nothing():
    result = {"restarted": True, "lookup": "a -> b -> a", "public_keys": [1], "generated": ["example.org/s1"]}
    unchanged = {"restarted": False, "lookup": None, "generated": [], "deleted": []}
    assert unchanged_result(result, unchanged) == {"restarted": False, "public_keys": [1], "generated": []}


def test_the_certificate_record_ends_at_the_renewal_time():
    assert certificate_renewal("2030-01-31T00:00:00Z", 30) == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    assert certificate_renewal(None, 30) == 0.0


def test_an_expired_record_is_not_answered(host, monkeypatch):
    tmp_path, conf, systemd = host
    records = str(tmp_path / "calls")
    footprint = cr.Footprint([str(conf)])
    cr.write(KEY, "tls_certificate", footprint, {}, run=systemd.run, get_bin_path=systemd.which, record_dir=records)
    cr.write(
        OTHER,
        "tls_certificate",
        footprint,
        {},
        run=systemd.run,
        get_bin_path=systemd.which,
        record_dir=records,
        valid_until=time.time() + 60,
    )
    assert set(cr.census(systemd.run, systemd.which, records)) == {KEY, OTHER}
    monkeypatch.setattr(time, "time", lambda: 4102444800.0)  # 2100
    assert set(cr.census(systemd.run, systemd.which, records)) == {KEY}


def test_the_maildir_footprint_names_every_directory_and_the_account():
    specs = build_specs(
        [{"path": "/var/vmail/example.org/alice"}], owner=os.getuid(), group=os.getgid(), folders=["Sent"]
    )
    account = {"user": "vmail", "group": "vmail", "home": "/var/vmail"}
    paths = maildir_footprint(specs, account, ["user:alice"]).paths
    assert "user:alice" in paths
    for path in ("/var/vmail/example.org/alice/new", "/var/vmail/example.org/alice/.Sent/cur", "user:vmail"):
        assert path in paths or path.replace("/.Sent", "/Sent") in paths
    assert "/var/vmail/example.org" in paths and "group:vmail" in paths


def test_the_live_table_is_observed_with_nft():
    calls = []

    def run(argv, **_kw):
        calls.append(argv)
        return (0, "table inet postmaster {\n}\n", "") if argv[-1] == "postmaster" else (1, "", "No such file")

    def which(name):
        return f"/usr/sbin/{name}"

    assert cr.observe_entry("nft:postmaster", run, which)[0] == "n"
    assert cr.observe_entry("nft:other", run, which) is None
    assert calls[0] == ["/usr/sbin/nft", "list", "table", "inet", "postmaster"]
