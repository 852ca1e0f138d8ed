# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.dovecot.dovecot_config import (
    DovecotConfig,
    DovecotConfigError,
    HealthCheckError,
    greeting_probe,
)

LIVE_SSL = "ssl = yes\n"
NEW_SSL = "ssl = required\n"


class FakeRunner:
    """Records argv lists; answers by command key; keeps what doveconf saw in the candidate."""

    def __init__(self, responses=None):
        self.calls = []
        self.responses = responses or {}
        self.candidates = []

    def __call__(self, argv, environ_update=None, **kwargs):
        assert isinstance(argv, list)
        assert environ_update == {"LC_ALL": "C"}
        self.calls.append(argv)
        key = " ".join([os.path.basename(argv[0]), *[a for a in argv[1:] if not a.startswith(("/", "@"))]])
        if key == "doveconf -c -n":
            conf = Path(argv[2]).parent
            self.candidates.append(
                {str(p.relative_to(conf)): p.read_text(encoding="utf-8") for p in conf.rglob("*") if p.is_file()}
            )
        response = self.responses.get(key, (0, "passdb pam {\n}\n" if key == "doveconf -c -n" else "", ""))
        return response(argv) if callable(response) else response

    @property
    def keys(self):
        return [
            " ".join([os.path.basename(c[0]), *[a for a in c[1:] if not a.startswith(("/", "@"))]]) for c in self.calls
        ]


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def conf(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "dovecot.conf").write_text("!include conf.d/*.conf\n", encoding="utf-8")
    (tmp_path / "conf.d" / "10-ssl.conf").write_text(LIVE_SSL, encoding="utf-8")
    (tmp_path / "conf.d" / "10-ssl.conf").chmod(0o640)
    return tmp_path


def make(conf, files, runner=None, probe=None, **kwargs):
    clock = Clock()
    return DovecotConfig(
        config_dir=str(conf),
        files=files,
        run_command=runner or FakeRunner(),
        get_bin_path=lambda name: f"/usr/bin/{name}",
        probe=probe or (lambda host, port, timeout: "* OK Dovecot ready."),
        sleep=clock.sleep,
        clock=clock.time,
        **kwargs,
    )


@pytest.mark.parametrize(
    "name", ["", "/etc/passwd", "../postfix/main.cf", "conf.d/../../x", "conf.d//x", "./x", "conf.d/a\nb"]
)
def test_paths_outside_the_directory_are_refused(conf, name):
    with pytest.raises(DovecotConfigError, match="relative path below the configuration directory"):
        make(conf, {name: "x\n"})


def test_content_must_be_text_and_dovecot_conf_is_kept(conf):
    with pytest.raises(DovecotConfigError, match="must be a string or null"):
        make(conf, {"conf.d/a.conf": ["x"]})
    with pytest.raises(DovecotConfigError, match="cannot be removed"):
        make(conf, {"dovecot.conf": None})
    with pytest.raises(DovecotConfigError, match="at least one file"):
        make(conf, {})


def test_unchanged_files_run_nothing(conf):
    runner = FakeRunner()
    result = make(conf, {"conf.d/10-ssl.conf": LIVE_SSL, "conf.d/99-gone.conf": None}, runner).execute()
    assert result["changed"] is False
    assert result["files"] == []
    assert runner.calls == []


def test_change_is_checked_as_whole_candidate_then_written_and_reloaded(conf):
    runner = FakeRunner()
    result = make(conf, {"conf.d/10-ssl.conf": NEW_SSL, "conf.d/20-new.conf": "x = 1\n"}, runner).execute()
    assert result["changed"] is True
    assert result["reloaded"] is True
    assert runner.keys == [
        "doveconf -c -n",
        "systemctl reload-or-restart dovecot",
        "journalctl -o json --no-pager --since",
    ]
    # The candidate held the untouched live file and the new ones.
    assert runner.candidates == [
        {"dovecot.conf": "!include conf.d/*.conf\n", "conf.d/10-ssl.conf": NEW_SSL, "conf.d/20-new.conf": "x = 1\n"}
    ]
    assert (conf / "conf.d" / "10-ssl.conf").read_text(encoding="utf-8") == NEW_SSL
    assert oct((conf / "conf.d" / "10-ssl.conf").stat().st_mode & 0o777) == "0o640"  # mode kept
    assert oct((conf / "conf.d" / "20-new.conf").stat().st_mode & 0o777) == "0o644"
    assert [d["after"] for d in result["diff"]] == [NEW_SSL, "x = 1\n"]
    assert not list(conf.rglob(".*"))  # no temporary file left behind


def test_removal(conf):
    result = make(conf, {"conf.d/10-ssl.conf": None}).execute()
    assert result["changed"] is True
    assert not (conf / "conf.d" / "10-ssl.conf").exists()


@pytest.mark.parametrize(
    ("response", "rc"),
    [
        ((89, "", "doveconf: Fatal: Error in configuration file conf.d/10-ssl.conf: x: Unknown setting"), 89),
        ((0, "", "doveconf: Warning: obsolete setting"), 0),
    ],
)
def test_refused_candidate_changes_nothing(conf, response, rc):
    runner = FakeRunner({"doveconf -c -n": response})
    with pytest.raises(DovecotConfigError, match="doveconf refused") as info:
        make(conf, {"conf.d/10-ssl.conf": NEW_SSL, "conf.d/20-new.conf": "x\n"}, runner).execute()
    assert info.value.details == {"doveconf_rc": rc}
    assert runner.keys == ["doveconf -c -n"]
    assert (conf / "conf.d" / "10-ssl.conf").read_text(encoding="utf-8") == LIVE_SSL
    assert not (conf / "conf.d" / "20-new.conf").exists()


def test_check_mode_checks_but_writes_nothing(conf):
    runner = FakeRunner()
    result = make(conf, {"conf.d/10-ssl.conf": NEW_SSL}, runner, check_mode=True).execute()
    assert result["changed"] is True
    assert result["files"] == [str(conf / "conf.d" / "10-ssl.conf")]
    assert runner.keys == ["doveconf -c -n"]
    assert (conf / "conf.d" / "10-ssl.conf").read_text(encoding="utf-8") == LIVE_SSL


def _journal(message, priority=3, ident="dovecot"):
    entry = {"SYSLOG_IDENTIFIER": ident, "PRIORITY": str(priority), "MESSAGE": message}
    return (0, json.dumps(entry) + "\n", "")


def test_error_logged_after_reload_restores_previous_files_and_restarts(conf):
    runner = FakeRunner({"journalctl -o json --no-pager --since": _journal("master: Error: open(/x.pem) failed")})
    with pytest.raises(DovecotConfigError, match=r"(?s)logged errors after the reload.*open\(/x.pem\)") as info:
        make(conf, {"conf.d/10-ssl.conf": NEW_SSL, "conf.d/20-new.conf": "x\n"}, runner).execute()
    assert info.value.details == {"rolled_back": True}
    assert "previous files were restored and dovecot restarted" in info.value.msg
    assert runner.keys[-1] == "systemctl restart dovecot"
    assert (conf / "conf.d" / "10-ssl.conf").read_text(encoding="utf-8") == LIVE_SSL
    assert not (conf / "conf.d" / "20-new.conf").exists()


# Logged on Dovecot 2.4 by a login that met the reload (the fresh logins of the verify scenario's
# resilience tests).
RACED_LOGIN = (
    "imap-login: Error: master(imap): read() failed: Remote closed connection (destination service "
    "{ process_limit } reached?) (client-pid=4628, client-id=1, rip=192.168.32.3, created 44 msecs ago, "
    "received 0/4 bytes)"
)


def test_a_login_that_met_the_reload_is_a_warning_not_a_rollback(conf):
    runner = FakeRunner({"journalctl -o json --no-pager --since": _journal(RACED_LOGIN)})
    config = make(conf, {"conf.d/10-ssl.conf": NEW_SSL}, runner)
    result = config.execute()
    assert result["changed"] is True and result["reloaded"] is True
    assert "systemctl restart dovecot" not in runner.keys
    assert (conf / "conf.d" / "10-ssl.conf").read_text(encoding="utf-8") == NEW_SSL
    assert config.warnings == [
        f"1 login(s) met the reload and were closed (the clients can log in again): dovecot: {RACED_LOGIN}"
    ]


@pytest.mark.parametrize(
    "message",
    [
        # Other errors of a login process still roll back, as do the master's own.
        "imap-login: Error: Failed to initialize SSL server context: Can't load SSL certificate",
        "imap-login: Error: master(imap): Auth request timed out",
        "master: Error: service(imap): process_limit (1) reached, client connections are being dropped",
        "imap-login: Error: master(imap): read() failed: Remote closed connectionX",
    ],
)
def test_other_errors_next_to_a_raced_login_still_roll_back(conf, message):
    journal = _journal(RACED_LOGIN)[1] + _journal(message)[1]
    runner = FakeRunner({"journalctl -o json --no-pager --since": (0, journal, "")})
    with pytest.raises(DovecotConfigError, match="logged errors after the reload") as info:
        make(conf, {"conf.d/10-ssl.conf": NEW_SSL}, runner).execute()
    assert message in info.value.msg and "Remote closed connection (destination" not in info.value.msg
    assert runner.keys[-1] == "systemctl restart dovecot"
    assert (conf / "conf.d" / "10-ssl.conf").read_text(encoding="utf-8") == LIVE_SSL


def test_warnings_of_other_daemons_do_not_count(conf):
    runner = FakeRunner({"journalctl -o json --no-pager --since": _journal("fatal: x", ident="postfix/smtpd")})
    assert make(conf, {"conf.d/10-ssl.conf": NEW_SSL}, runner).execute()["changed"] is True


def test_no_greeting_rolls_back_and_says_so_when_the_restart_fails_too(conf):
    def probe(host, port, timeout):
        raise ConnectionRefusedError("refused")

    runner = FakeRunner({"systemctl restart dovecot": (1, "", "Job failed")})
    with pytest.raises(DovecotConfigError, match=r"did not answer on 127\.0\.0\.1:110 within 5s") as info:
        make(conf, {"conf.d/10-ssl.conf": NEW_SSL}, runner, probe=probe, health_port=110, health_timeout=5).execute()
    assert "restored, but systemctl restart dovecot failed (rc=1): Job failed" in info.value.msg
    assert (conf / "conf.d" / "10-ssl.conf").read_text(encoding="utf-8") == LIVE_SSL


def test_failed_reload_rolls_back(conf):
    runner = FakeRunner({"systemctl reload-or-restart dovecot": (1, "", "failed")})
    with pytest.raises(DovecotConfigError, match="reload-or-restart dovecot failed"):
        make(conf, {"conf.d/10-ssl.conf": NEW_SSL}, runner).execute()
    assert (conf / "conf.d" / "10-ssl.conf").read_text(encoding="utf-8") == LIVE_SSL


def test_no_reload_when_asked(conf):
    runner = FakeRunner()
    result = make(conf, {"conf.d/10-ssl.conf": NEW_SSL}, runner, reload=False).execute()
    assert result["reloaded"] is False
    assert runner.keys == ["doveconf -c -n"]


def test_missing_dovecot_conf_is_reported(tmp_path):
    with pytest.raises(DovecotConfigError, match=r"dovecot\.conf does not exist"):
        make(tmp_path, {"conf.d/a.conf": "x\n"}).execute()


def _serve(greeting):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def handle():
        conn, _peer = server.accept()
        with conn:
            conn.sendall(greeting)
        server.close()

    threading.Thread(target=handle, daemon=True).start()
    return server.getsockname()[1]


@pytest.mark.parametrize("greeting", [b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n", b"+OK Dovecot ready.\r\n"])
def test_greeting_probe_accepts_imap_and_pop3(greeting):
    assert greeting_probe("127.0.0.1", _serve(greeting), 5) == greeting.decode().rstrip("\r\n")


def test_greeting_probe_refuses_other_greetings():
    with pytest.raises(HealthCheckError, match="expected"):
        greeting_probe("127.0.0.1", _serve(b"* BYE shutting down\r\n"), 5)


def test_without_passdb_the_service_must_run_and_a_warning_says_why_logins_fail(conf):
    def probe(host, port, timeout):
        raise AssertionError("no greeting is expected without a passdb")

    runner = FakeRunner({"doveconf -c -n": (0, "protocols = imap\n", "")})
    result = make(conf, {"conf.d/10-ssl.conf": NEW_SSL}, runner, probe=probe).execute()
    assert result["changed"] is True
    assert "systemctl is-active dovecot" in runner.keys
    assert any("no passdb yet" in w for w in result["warnings"])


def test_without_passdb_a_stopped_service_rolls_back(conf):
    runner = FakeRunner({"doveconf -c -n": (0, "", ""), "systemctl is-active dovecot": (3, "failed", "")})
    with pytest.raises(DovecotConfigError, match="is-active dovecot failed"):
        make(conf, {"conf.d/10-ssl.conf": NEW_SSL}, runner).execute()
    assert (conf / "conf.d" / "10-ssl.conf").read_text(encoding="utf-8") == LIVE_SSL


def _written_for(release: str, body: str) -> str:
    return f"# Ansible managed\n# postmaster.mailserver: written for Dovecot {release}\n{body}"


def test_an_include_of_another_role_written_for_the_old_release_is_set_aside(conf):
    """After the Debian 12 to 13 upgrade: the mailboxes role's 2.3 include would make doveconf 2.4 refuse the set."""
    old = _written_for("2.3", "passdb {\n  driver = passwd-file\n}\n")
    (conf / "conf.d" / "15-postmaster-mailboxes.conf").write_text(old, encoding="utf-8")
    (conf / "conf.d" / "16-admin.conf").write_text("# the admin's own, without the line\n", encoding="utf-8")
    runner = FakeRunner()
    new = _written_for("2.4", "ssl = required\n")
    result = make(conf, {"conf.d/10-ssl.conf": new}, runner).execute()
    assert result["changed"] is True
    assert "conf.d/15-postmaster-mailboxes.conf" not in runner.candidates[0]
    assert "conf.d/16-admin.conf" in runner.candidates[0]  # not the collection's: left alone
    assert not (conf / "conf.d" / "15-postmaster-mailboxes.conf").exists()
    assert any("written for Dovecot 2.3" in w and "set aside" in w for w in result["warnings"]), result["warnings"]


def test_an_include_of_the_same_release_stays(conf):
    same = _written_for("2.4", "passdb {\n}\n")
    (conf / "conf.d" / "15-postmaster-mailboxes.conf").write_text(same, encoding="utf-8")
    runner = FakeRunner()
    make(conf, {"conf.d/10-ssl.conf": _written_for("2.4", "ssl = required\n")}, runner).execute()
    assert runner.candidates[0]["conf.d/15-postmaster-mailboxes.conf"] == same
    assert (conf / "conf.d" / "15-postmaster-mailboxes.conf").read_text(encoding="utf-8") == same


def test_a_set_without_the_release_line_sets_nothing_aside(conf):
    old = _written_for("2.3", "passdb {\n}\n")
    (conf / "conf.d" / "15-postmaster-mailboxes.conf").write_text(old, encoding="utf-8")
    runner = FakeRunner()
    make(conf, {"conf.d/10-ssl.conf": NEW_SSL}, runner).execute()
    assert runner.candidates[0]["conf.d/15-postmaster-mailboxes.conf"] == old


def test_a_set_aside_include_comes_back_when_the_reload_fails(conf):
    old = _written_for("2.3", "passdb {\n}\n")
    (conf / "conf.d" / "15-postmaster-mailboxes.conf").write_text(old, encoding="utf-8")
    runner = FakeRunner({"systemctl reload-or-restart dovecot": (1, "", "failed")})
    with pytest.raises(DovecotConfigError):
        make(conf, {"conf.d/10-ssl.conf": _written_for("2.4", "ssl = required\n")}, runner).execute()
    assert (conf / "conf.d" / "15-postmaster-mailboxes.conf").read_text(encoding="utf-8") == old
