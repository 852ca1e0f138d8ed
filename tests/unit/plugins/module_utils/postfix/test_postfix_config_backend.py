# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from pathlib import Path

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import (
    HealthCheckError,
    journal_errors,
    smtp_probe,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_config import (
    POSTFIX_BAD_PREFIXES,
    PostfixConfig,
    PostfixConfigError,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_table_files import (
    TableFileError,
    check_tables,
)

SUPPORTED = "btree\ncidr\nhash\ninline\nlmdb\npcre\nproxy\nregexp\nstatic\ntexthash\nunix\n"
BASE = {
    "main": {
        "myhostname": "mail.example.org",
        "mynetworks": ["127.0.0.0/8", "::1/128"],
        "alias_maps": "hash:/etc/aliases",
        "smtpd_relay_restrictions": ["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"],
    },
    "master": [
        {"name": "smtp", "type": "inet", "private": "n", "chroot": "y", "command": "smtpd"},
        {"name": "submission", "type": "inet", "private": "n", "chroot": "y", "command": "smtpd",
         "args": ["-o", "syslog_name=postfix/submission"]},
    ],
}  # fmt: skip
ORIGINAL_MAIN = "# original\nmyhostname = old.example.org\n"
ORIGINAL_MASTER = "smtp inet n - y - - smtpd\n"


def _key(argv):
    """Command key without the variable parts: binary name, no '-c DIR', no '--since' value."""
    words = [os.path.basename(argv[0])]
    skip = False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        if arg in ("-c", "--since"):
            skip = True
            continue
        words.append(arg)
    return " ".join(words)


class FakeRunner:
    def __init__(self, responses=None):
        self.calls = []
        self.keys = []
        self.responses = {"postconf -m": (0, SUPPORTED, ""), **(responses or {})}
        self.candidates = []

    def __call__(self, argv, environ_update=None, **kwargs):
        assert isinstance(argv, list)
        assert environ_update == {"LC_ALL": "C"}
        self.calls.append(argv)
        key = _key(argv)
        self.keys.append(key)
        if key == "postconf -n":
            candidate = argv[argv.index("-c") + 1]
            self.candidates.append(
                {
                    "dir": candidate,
                    "mode": stat.S_IMODE(os.stat(candidate).st_mode),
                    "files": sorted(os.listdir(candidate)),
                    "main": Path(candidate, "main.cf").read_text(encoding="utf-8"),
                    "master": Path(candidate, "master.cf").read_text(encoding="utf-8"),
                }
            )
        response = self.responses.get(key, (0, "", ""))
        return response(argv) if callable(response) else response


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def env(tmp_path):
    config = tmp_path / "postfix"
    fragments = config / "postmaster.d"
    fragments.mkdir(parents=True)
    (config / "main.cf").write_text(ORIGINAL_MAIN, encoding="utf-8")
    (config / "master.cf").write_text(ORIGINAL_MASTER, encoding="utf-8")
    (config / "main.cf").chmod(0o640)
    (config / "dynamicmaps.cf").write_text("# maps\n", encoding="utf-8")
    (config / "dynamicmaps.cf.d").mkdir()
    (config / "dynamicmaps.cf.d" / "lmdb").write_text("lmdb x\n", encoding="utf-8")
    (config / "postfix-files").write_text("# files\n", encoding="utf-8")
    (fragments / "00-base.json").write_text(json.dumps(BASE), encoding="utf-8")
    return tmp_path


def make(env, runner=None, *, bins=("postconf", "postfix", "journalctl"), probe=None, **kwargs):
    clock = Clock()
    backend = PostfixConfig(
        fragment_dir=str(env / "postfix" / "postmaster.d"),
        config_dir=str(env / "postfix"),
        run_command=runner or FakeRunner(),
        get_bin_path=lambda name: f"/usr/sbin/{name}" if name in bins else None,
        probe=probe or (lambda host, port, timeout: "220 mail.example.org ESMTP"),
        sleep=clock.sleep,
        clock=clock.time,
        exists=lambda path: True,
        **kwargs,
    )
    return backend


def live(env, name="main.cf"):
    return (env / "postfix" / name).read_text(encoding="utf-8")


def leftovers(env):
    return [p.name for p in env.iterdir() if p.name.startswith(".postmaster-candidate-")]


APPLY_KEYS = ["postconf -m", "postconf -n", "postfix check", "postfix status", "postfix reload", "journalctl -o json --no-pager"]  # fmt: skip


def test_first_run_validates_replaces_reloads_and_checks_health(env):
    runner = FakeRunner()
    result = make(env, runner).execute()
    assert runner.keys == APPLY_KEYS
    assert result["changed"] is True
    assert result["reloaded"] is True
    assert result["services"] == ["smtp/inet", "submission/inet"]
    assert result["parameters"]["mynetworks"] == ["127.0.0.0/8", "[::1]/128"]
    assert result["fragments"] == ["00-base.json"]
    assert result["warnings"] == []
    main_cf = live(env)
    assert main_cf.startswith(
        "# Managed by Ansible (postmaster.mailserver.postfix_config). Assembled from "
        f"{env}/postfix/postmaster.d; do not edit.\n\nmyhostname = mail.example.org\n"
    )
    assert "mynetworks = 127.0.0.0/8, [::1]/128\n" in main_cf
    assert (
        "submission inet  n       -       y       -       -       smtpd\n  -o syslog_name=postfix/submission\n"
        in live(env, "master.cf")
    )
    # mode of the replaced file is kept; backups hold the previous content
    assert stat.S_IMODE(os.stat(env / "postfix" / "main.cf").st_mode) == 0o640
    assert live(env, "main.cf.postmaster-previous") == ORIGINAL_MAIN
    assert result["backup_files"] == {
        "main.cf": f"{env}/postfix/main.cf.postmaster-previous",
        "master.cf": f"{env}/postfix/master.cf.postmaster-previous",
    }
    # the candidate was a 0700 copy next to the config dir, with the needed files, and is gone
    (candidate,) = runner.candidates
    assert os.path.dirname(candidate["dir"]) == str(env)
    assert candidate["mode"] == 0o700
    assert candidate["files"] == ["dynamicmaps.cf", "dynamicmaps.cf.d", "main.cf", "master.cf", "postfix-files"]
    assert candidate["main"] == main_cf
    assert leftovers(env) == []
    assert result["diff"][0] == {
        "before_header": f"{env}/postfix/main.cf",
        "after_header": f"{env}/postfix/main.cf",
        "before": ORIGINAL_MAIN,
        "after": main_cf,
    }
    # the journal query starts at the reload
    assert runner.calls[-1][-2:] == ["--since", "@1700000000"]


def test_unchanged_runs_no_command(env):
    make(env).execute()
    runner = FakeRunner()
    result = make(env, runner).execute()
    assert runner.calls == []
    assert result["changed"] is False
    assert result["diff"][0]["before"] == result["diff"][0]["after"]


def test_check_mode_validates_but_writes_nothing(env):
    runner = FakeRunner()
    result = make(env, runner, check_mode=True).execute()
    assert runner.keys == ["postconf -m", "postconf -n", "postfix check"]
    assert result["changed"] is True
    assert live(env) == ORIGINAL_MAIN
    assert live(env, "master.cf") == ORIGINAL_MASTER
    assert not (env / "postfix" / "main.cf.postmaster-previous").exists()
    assert leftovers(env) == []


def test_check_mode_without_postfix_installed_runs_python_validation_only(env):
    runner = FakeRunner()
    result = make(env, runner, check_mode=True, bins=()).execute()
    assert runner.calls == []
    assert result["changed"] is True
    assert result["warnings"] == ["postconf not found: only the Python validation ran (check mode)"]


def test_missing_postconf_fails_outside_check_mode(env):
    with pytest.raises(PostfixConfigError, match="postconf was not found"):
        make(env, bins=("postfix",)).execute()
    assert live(env) == ORIGINAL_MAIN


def write_fragment(env, name, data):
    (env / "postfix" / "postmaster.d" / name).write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ({"main": {"smtpd_client_restrictions": ["permit_bogus_thing"]}}, "parameter smtpd_client_restrictions: unknown restriction 'permit_bogus_thing'"),
        ({"main": {"mynetworks": ["10.0.0.0/33"]}, "overrides": ["mynetworks"]}, "parameter mynetworks: '10.0.0.0/33'"),
        ({"main": {"virtual_alias_maps": "lmdb2:/etc/postfix/virtual"}}, "lookup table type 'lmdb2'"),
        ({"main": {"smtpd_relay_restrictions": ["permit_mynetworks"]}, "overrides": ["smtpd_relay_restrictions"]}, "open relay"),
    ],
)  # fmt: skip
def test_python_validation_failure_leaves_live_files_untouched(env, fragment, message):
    write_fragment(env, "50-bad.json", fragment)
    runner = FakeRunner()
    with pytest.raises(PostfixConfigError, match=message):
        make(env, runner).execute()
    assert runner.keys == ["postconf -m"]
    assert live(env) == ORIGINAL_MAIN
    assert live(env, "master.cf") == ORIGINAL_MASTER


def test_missing_table_file_fails(env):
    backend = make(env)
    backend._exists = lambda path: path != "/etc/aliases.db"
    with pytest.raises(PostfixConfigError, match=r"alias_maps: lookup table 'hash:/etc/aliases' needs /etc/aliases.db"):
        backend.execute()


@pytest.mark.parametrize(
    ("responses", "message"),
    [
        ({"postconf -m": (1, "", "postconf: fatal: boom")}, r"postconf -m failed \(rc=1\): postconf: fatal: boom"),
        ({"postconf -n": (0, "", "postconf: warning: /tmp/x/main.cf: unused parameter: totally_unknown_param=1\n")},
         r"postconf rejected the candidate configuration \(rc=0\):\npostconf: warning: .*unused parameter"),
        ({"postconf -n": (1, "", "postconf: fatal: bad\n")}, r"postconf rejected the candidate configuration \(rc=1\):\npostconf: fatal: bad"),
        ({"postfix check": (1, "", "postfix: fatal: /tmp/x/main.cf, line 3: missing '=' after attribute name\n")},
         r"postfix check rejected the candidate configuration \(rc=1\):\npostfix: fatal: .*missing '='"),
        ({"postfix check": (0, "postfix/postfix-script: warning: group or other writable: /x\n", "")},
         r"postfix check rejected the candidate configuration \(rc=0\):\npostfix/postfix-script: warning: group or other writable"),
    ],
)  # fmt: skip
def test_candidate_command_failure_leaves_live_files_untouched(env, responses, message):
    runner = FakeRunner(responses)
    with pytest.raises(PostfixConfigError, match=message):
        make(env, runner).execute()
    assert "postfix reload" not in runner.keys
    assert live(env) == ORIGINAL_MAIN
    assert live(env, "master.cf") == ORIGINAL_MASTER
    assert leftovers(env) == []


NOISE = "postsuper: warning: bogus file name: incoming/418580.5329\n"


def test_postsupers_queue_files_in_flight_do_not_reject_the_candidate(env):
    """Under load postfix check names the files cleanup is writing: a warning of the module, not a refusal."""
    runner = FakeRunner({"postfix check": (0, "", NOISE)})
    result = make(env, runner).execute()
    assert "postfix reload" in runner.keys
    assert result["warnings"] == [
        "postfix check (not about the configuration): postsuper: warning: bogus file name: incoming/418580.5329"
    ]


def test_other_postsuper_warnings_still_reject_the_candidate(env):
    runner = FakeRunner({"postfix check": (0, "", NOISE + "postsuper: warning: group or other writable: /x\n")})
    with pytest.raises(
        PostfixConfigError, match=r"rejected the candidate configuration \(rc=0\):\npostsuper: warning: group"
    ):
        make(env, runner).execute()
    assert "postfix reload" not in runner.keys
    assert live(env) == ORIGINAL_MAIN


def test_fragment_errors_are_reported(env):
    write_fragment(env, "20-other.json", {"main": {"myhostname": "x.example.org"}})
    with pytest.raises(PostfixConfigError, match=r"'myhostname' is set by both 00-base.json and 20-other.json"):
        make(env).execute()


def test_no_fragments_is_an_error(env):
    (env / "postfix" / "postmaster.d" / "00-base.json").unlink()
    with pytest.raises(PostfixConfigError, match="no fragments"):
        make(env).execute()


def test_master_cf_is_left_alone_without_services(env):
    write_fragment(env, "00-base.json", {"main": BASE["main"]})
    result = make(env).execute()
    assert live(env, "master.cf") == ORIGINAL_MASTER
    assert "no fragment defines master.cf services: master.cf is left as it is" in result["warnings"]
    assert result["backup_files"] == {"main.cf": f"{env}/postfix/main.cf.postmaster-previous"}


def test_not_running_means_no_reload_and_no_health_check(env):
    runner = FakeRunner({"postfix status": (1, "", "postfix/postfix-script: the Postfix mail system is not running")})
    result = make(env, runner).execute()
    assert runner.keys == APPLY_KEYS[:4]
    assert result["reloaded"] is False
    assert "postfix is not running: the new configuration was not reloaded" in result["warnings"]
    assert live(env).startswith("# Managed by Ansible")


def test_reload_false(env):
    runner = FakeRunner()
    result = make(env, runner, reload=False).execute()
    assert runner.keys == APPLY_KEYS[:3]
    assert result["reloaded"] is False


def test_health_check_false(env):
    runner = FakeRunner()
    probe_calls = []
    result = make(env, runner, health_check=False, probe=lambda *a: probe_calls.append(a)).execute()
    assert runner.keys == APPLY_KEYS[:5]
    assert probe_calls == []
    assert result["reloaded"] is True


def test_journalctl_missing_or_failing_only_warns(env):
    result = make(env, bins=("postconf", "postfix")).execute()
    assert result["warnings"] == ["journalctl not found: the health check did not look for logged errors"]
    (env / "postfix" / "main.cf").write_text(ORIGINAL_MAIN, encoding="utf-8")
    runner = FakeRunner({"journalctl -o json --no-pager": (1, "", "No journal files were found.")})
    result = make(env, runner).execute()
    assert result["warnings"] == [
        "journalctl failed (rc=1), logged errors were not checked: No journal files were found."
    ]


def failing_probe(host, port, timeout):
    raise ConnectionRefusedError(111, "Connection refused")


def test_health_failure_rolls_back_and_reloads_again(env):
    runner = FakeRunner()
    backend = make(env, runner, probe=failing_probe, health_timeout=5)
    with pytest.raises(PostfixConfigError) as excinfo:
        backend.execute()
    message = str(excinfo.value)
    assert message.startswith("health check failed: no SMTP 220 greeting from 127.0.0.1:25 within 5s:")
    assert "Connection refused" in message
    # smtpd never answers, not even after the rollback, and the message says so.
    assert "; the previous configuration was restored, but no SMTP 220 greeting" in message
    assert excinfo.value.details == {"rolled_back": True}
    assert live(env) == ORIGINAL_MAIN
    assert live(env, "master.cf") == ORIGINAL_MASTER
    # Without systemctl the rollback restarts Postfix with postfix stop/start.
    assert runner.keys == [*APPLY_KEYS[:5], "postfix stop", "postfix start"]


def test_logged_fatal_error_rolls_back(env):
    entries = [
        {"SYSLOG_IDENTIFIER": "postfix/smtpd", "PRIORITY": "2", "MESSAGE": "fatal: bad config",
         "__REALTIME_TIMESTAMP": "1700000000500000"},
    ]  # fmt: skip
    runner = FakeRunner({"journalctl -o json --no-pager": (0, "\n".join(json.dumps(e) for e in entries), "")})
    with pytest.raises(
        PostfixConfigError, match=r"postfix logged errors after the reload:\npostfix/smtpd: fatal: bad config"
    ):
        make(env, runner).execute()
    assert live(env) == ORIGINAL_MAIN


def test_reload_failure_rolls_back_and_reports_second_failure(env):
    runner = FakeRunner({"postfix reload": (1, "", "postfix: fatal: reload failed")})
    with pytest.raises(PostfixConfigError) as excinfo:
        make(env, runner).execute()
    message = str(excinfo.value)
    assert "postfix reload failed (rc=1): postfix: fatal: reload failed" in message
    assert message.endswith("the previous configuration was restored and Postfix restarted")
    assert live(env) == ORIGINAL_MAIN


def test_rollback_restarts_through_systemd_when_present(env):
    runner = FakeRunner()
    with pytest.raises(PostfixConfigError):
        make(
            env, runner, probe=failing_probe, health_timeout=1, bins=("postconf", "postfix", "journalctl", "systemctl")
        ).execute()
    assert runner.keys[5:] == ["systemctl restart postfix"]
    assert live(env) == ORIGINAL_MAIN


def test_rollback_reports_a_failed_restart(env):
    runner = FakeRunner(
        {"postfix reload": (1, "", "fatal: reload failed"), "postfix start": (1, "", "fatal: no start")}
    )
    with pytest.raises(PostfixConfigError) as excinfo:
        make(env, runner).execute()
    message = str(excinfo.value)
    assert (
        "the previous configuration was restored, but /usr/sbin/postfix start failed (rc=1): fatal: no start" in message
    )
    assert excinfo.value.details == {"rolled_back": True}
    assert live(env) == ORIGINAL_MAIN


def test_rollback_waits_until_smtpd_answers_again(env):
    calls = []

    def broken_then_back(host, port, timeout):
        calls.append(timeout)
        # The candidate never answers (health_timeout=2 allows 3 attempts);
        # after the rollback smtpd needs two more tries before it answers.
        if len(calls) < 5:
            raise ConnectionRefusedError(111, "Connection refused")
        return "220 ok"

    runner = FakeRunner()
    with pytest.raises(PostfixConfigError) as excinfo:
        make(env, runner, probe=broken_then_back, health_timeout=2).execute()
    assert str(excinfo.value).endswith("the previous configuration was restored and Postfix restarted")
    assert len(calls) == 5
    assert live(env) == ORIGINAL_MAIN


def test_probe_retries_until_it_answers(env):
    attempts = []

    def flaky(host, port, timeout):
        attempts.append((host, port))
        if len(attempts) < 3:
            raise HealthCheckError("not yet")
        return "220 ok"

    result = make(env, probe=flaky, health_host="::1", health_port=2525).execute()
    assert result["changed"] is True
    # Three tries until smtpd answers, then the second probe a second later.
    assert attempts == [("::1", 2525)] * 4


def test_an_answer_from_the_previous_configuration_is_not_enough(env):
    """The first probe may reach an smtpd of the old configuration; the second one must answer too."""
    calls = []

    def old_then_dead(host, port, timeout):
        calls.append(timeout)
        if len(calls) == 1:
            return "220 old smtpd"
        if len(calls) < 5:  # the new smtpd dies at start: three tries in health_timeout=2
            raise HealthCheckError("connection closed before the greeting")
        return "220 ok"

    with pytest.raises(PostfixConfigError) as excinfo:
        make(env, FakeRunner(), probe=old_then_dead, health_timeout=2).execute()
    assert "health check failed" in str(excinfo.value)
    assert str(excinfo.value).endswith("the previous configuration was restored and Postfix restarted")
    assert live(env) == ORIGINAL_MAIN


def test_write_failure_restores_written_files(env):
    moved = []

    def atomic_move(src, dest):
        if dest.endswith("master.cf"):
            raise OSError(28, "No space left on device", dest)
        moved.append(dest)
        os.replace(src, dest)

    with pytest.raises(PostfixConfigError, match=r"writing .*master.cf failed"):
        make(env, atomic_move=atomic_move).execute()
    assert live(env) == ORIGINAL_MAIN
    assert live(env, "master.cf") == ORIGINAL_MASTER
    assert [p.name for p in (env / "postfix").iterdir() if p.name.startswith(".")] == []


def test_restore_removes_files_that_did_not_exist(env):
    (env / "postfix" / "main.cf").unlink()
    (env / "postfix" / "master.cf").unlink()
    result = make(env, probe=failing_probe, health_timeout=0)
    with pytest.raises(PostfixConfigError, match="health check failed"):
        result.execute()
    assert not (env / "postfix" / "main.cf").exists()
    assert not (env / "postfix" / "master.cf").exists()


# -- journal parsing ----------------------------------------------------------------


SINCE = 1_700_000_000.0


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"SYSLOG_IDENTIFIER": "postfix/smtpd", "PRIORITY": "3", "MESSAGE": "something"}, ["postfix/smtpd: something"]),
        ({"SYSLOG_IDENTIFIER": "postfix/master", "PRIORITY": "6", "MESSAGE": "fatal: x"}, ["postfix/master: fatal: x"]),
        ({"SYSLOG_IDENTIFIER": "postfix/smtpd", "PRIORITY": "6", "MESSAGE": "panic: x"}, ["postfix/smtpd: panic: x"]),
        ({"SYSLOG_IDENTIFIER": "postfix/smtpd", "MESSAGE": "error: x"}, ["postfix/smtpd: error: x"]),
        ({"SYSLOG_IDENTIFIER": "postfix/smtpd", "PRIORITY": "4", "MESSAGE": "warning: x"}, []),
        ({"SYSLOG_IDENTIFIER": "postfix/smtpd", "PRIORITY": "bogus", "MESSAGE": "connect from x"}, []),
        ({"SYSLOG_IDENTIFIER": "dovecot", "PRIORITY": "2", "MESSAGE": "fatal: x"}, []),
        ({"SYSLOG_IDENTIFIER": "postfix", "PRIORITY": "3", "MESSAGE": "old", "__REALTIME_TIMESTAMP": "1699999999000000"}, []),
        ({"SYSLOG_IDENTIFIER": "postfix", "PRIORITY": "3", "MESSAGE": [102, 97, 116, 97, 108, 255]}, ["postfix: fatal\ufffd"]),
    ],
)  # fmt: skip
def test_journal_errors(entry, expected):
    assert journal_errors(json.dumps(entry), SINCE, identifiers=("postfix",), prefixes=POSTFIX_BAD_PREFIXES) == expected


def test_journal_errors_skips_garbage():
    assert journal_errors("\nnot json\n[1, 2]\n", SINCE, identifiers=("postfix",)) == []


# -- SMTP probe against a loopback server --------------------------------------------


def serve_once(greeting: bytes, ehlo_reply: bytes = b"250-mail\r\n250 8BITMIME\r\n"):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received = []

    def handle():
        conn, _addr = server.accept()
        with conn:
            conn.sendall(greeting)
            if not greeting.startswith(b"220"):
                return
            reader = conn.makefile("rb")
            received.append(reader.readline())
            conn.sendall(ehlo_reply)
            received.append(reader.readline())
        server.close()

    thread = threading.Thread(target=handle, daemon=True)
    thread.start()
    return server.getsockname()[1], received, thread


def test_smtp_probe_ok():
    port, received, thread = serve_once(b"220-mail.example.org ESMTP\r\n220 ready\r\n")
    assert smtp_probe("127.0.0.1", port, 5) == "220-mail.example.org ESMTP\n220 ready"
    thread.join(5)
    assert received == [b"EHLO postmaster-health-check.invalid\r\n", b"QUIT\r\n"]


@pytest.mark.parametrize(
    ("greeting", "ehlo", "message"),
    [
        (b"421 4.3.2 Service shutting down\r\n", b"", r"greeting from 127.0.0.1:\d+ was '421 4.3.2 Service shutting down', expected 220"),
        (b"220 ok\r\n", b"451 4.3.5 Server configuration error\r\n",
         r"EHLO to 127.0.0.1:\d+ was answered '451 4.3.5 Server configuration error', expected 250"),
        (b"220-partial\r\n", b"", r"connection closed before a complete SMTP reply"),
    ],
)  # fmt: skip
def test_smtp_probe_failures(greeting, ehlo, message):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def handle():
        conn, _addr = server.accept()
        with conn:
            conn.sendall(greeting)
            if ehlo:
                conn.makefile("rb").readline()
                conn.sendall(ehlo)
        server.close()

    thread = threading.Thread(target=handle, daemon=True)
    thread.start()
    with pytest.raises(HealthCheckError, match=message):
        smtp_probe("127.0.0.1", server.getsockname()[1], 5)
    thread.join(5)


# -- fragments handed to the module ------------------------------------------------------------

SIZE = {"main": {"message_size_limit": 52428800}}


def fragment_file(env, name="60-size.json"):
    return env / "postfix" / "postmaster.d" / name


def test_given_fragment_is_validated_written_and_idempotent(env):
    runner = FakeRunner()
    result = make(env, runner, fragments={"60-size.json": SIZE}).execute()
    assert runner.keys == APPLY_KEYS
    assert result["changed"] is True
    assert result["fragments"] == ["00-base.json", "60-size.json"]
    assert "message_size_limit = 52428800\n" in live(env)
    # Written as the roles' to_nice_json(indent=2) would write it.
    assert fragment_file(env).read_text(encoding="utf-8") == (
        '{\n  "main": {\n    "message_size_limit": 52428800\n  }\n}\n'
    )
    assert result["diff"][0] == {
        "before_header": str(fragment_file(env)),
        "after_header": str(fragment_file(env)),
        "before": "",
        "after": fragment_file(env).read_text(encoding="utf-8"),
    }
    runner = FakeRunner()
    result = make(env, runner, fragments={"60-size.json": SIZE}).execute()
    assert (result["changed"], runner.calls) == (False, [])


def test_given_fragment_in_check_mode_is_validated_but_not_written(env):
    runner = FakeRunner()
    result = make(env, runner, check_mode=True, fragments={"60-size.json": SIZE}).execute()
    assert result["changed"] is True
    assert runner.keys == ["postconf -m", "postconf -n", "postfix check"]
    assert "message_size_limit = 52428800\n" in runner.candidates[0]["main"]
    assert not fragment_file(env).exists()
    assert live(env) == ORIGINAL_MAIN


def test_invalid_given_fragment_is_never_written(env):
    runner = FakeRunner({"postconf -n": (0, "", "postconf: warning: unknown parameter")})
    bad = {"main": {"smtpd_recipient_restrictions": ["permit_mynetworks", "reject_unauth_destination"]},
           "insert": "nonsense"}  # fmt: skip
    with pytest.raises(PostfixConfigError, match=r"^fragments: fragment 60-size.json: "):
        make(env, runner, fragments={"60-size.json": bad}).execute()
    with pytest.raises(PostfixConfigError, match=r"^fragments: fragment 60-size: file name must look like"):
        make(env, runner, fragments={"60-size": SIZE}).execute()
    with pytest.raises(PostfixConfigError):
        make(env, runner, fragments={"60-size.json": SIZE}).execute()  # postconf -n warns: invalid candidate
    assert not fragment_file(env).exists()
    assert live(env) == ORIGINAL_MAIN


def test_given_fragment_is_restored_by_a_rollback(env):
    make(env, fragments={"60-size.json": SIZE}).execute()
    before = fragment_file(env).read_text(encoding="utf-8")
    backend = make(env, probe=failing_probe, health_timeout=1,
                   fragments={"60-size.json": {"main": {"message_size_limit": 1024000}}})  # fmt: skip
    with pytest.raises(PostfixConfigError, match="health check failed"):
        backend.execute()
    assert fragment_file(env).read_text(encoding="utf-8") == before
    assert "message_size_limit = 52428800\n" in live(env)


def test_null_removes_a_fragment_and_only_fragment_changes_write_without_reload(env):
    make(env, fragments={"60-size.json": SIZE}).execute()
    runner = FakeRunner()
    result = make(env, runner, fragments={"60-size.json": None}).execute()
    assert result["changed"] is True and not fragment_file(env).exists()
    assert "message_size_limit" not in live(env)
    assert result["diff"][0]["after"] == ""
    # Same assembled result, different file text (reformatted by hand): the file is rewritten, Postfix is not touched.
    fragment_file(env).write_text(json.dumps(SIZE), encoding="utf-8")
    make(env, fragments={"60-size.json": SIZE}).execute()
    fragment_file(env).write_text(json.dumps(SIZE), encoding="utf-8")
    runner = FakeRunner()
    result = make(env, runner, fragments={"60-size.json": SIZE}).execute()
    assert result["changed"] is True and result["reloaded"] is False
    assert runner.calls == []
    assert fragment_file(env).read_text(encoding="utf-8").startswith('{\n  "main"')
    # Removing a fragment that is not there changes nothing.
    fragment_file(env).unlink()
    make(env, fragments={}).execute()
    result = make(env, FakeRunner(), fragments={"60-size.json": None}).execute()
    assert result["changed"] is False


def test_given_fragment_gives_the_same_main_cf_as_its_file(env):
    # Parameters in insertion order (not sorted): main.cf must not depend on how the fragment arrived.
    unsorted = {"main": {"virtual_mailbox_domains": ["example.org"], "virtual_alias_maps": "hash:/etc/aliases"}}
    make(env, fragments={"40-virtual.json": unsorted}).execute()
    first = live(env)
    runner = FakeRunner()
    result = make(env, runner).execute()  # now assembled from the file alone
    assert (result["changed"], runner.calls, live(env)) == (False, [], first)
    assert first.index("virtual_alias_maps") < first.index("virtual_mailbox_domains")


def test_given_fragment_creates_a_missing_fragment_directory(env):
    directory = env / "postfix" / "postmaster.d"
    base = (directory / "00-base.json").read_text(encoding="utf-8")
    (directory / "00-base.json").unlink()
    directory.rmdir()
    runner = FakeRunner()
    result = make(env, runner, check_mode=True, fragments={"00-base.json": json.loads(base)}).execute()
    assert result["changed"] is True
    assert not directory.exists()
    result = make(env, fragments={"00-base.json": json.loads(base)}).execute()
    assert result["changed"] is True
    assert directory.is_dir() and (directory.stat().st_mode & 0o777) == 0o755
    assert json.loads((directory / "00-base.json").read_text(encoding="utf-8")) == json.loads(base)
    runner = FakeRunner()
    result = make(env, runner, fragments={"00-base.json": json.loads(base)}).execute()
    assert (result["changed"], runner.calls) == (False, [])


def test_missing_fragment_directory_without_given_fragments_is_an_error(env):
    directory = env / "postfix" / "postmaster.d"
    (directory / "00-base.json").unlink()
    directory.rmdir()
    with pytest.raises(PostfixConfigError, match="cannot read fragment directory"):
        make(env).execute()


def test_removing_a_fragment_without_a_fragment_directory_changes_nothing_and_needs_no_postfix(env):
    # A role switched off (amavis_enabled: false) on a host where the postfix role never ran.
    directory = env / "postfix" / "postmaster.d"
    (directory / "00-base.json").unlink()
    directory.rmdir()
    runner = FakeRunner()
    result = make(env, runner, bins=(), fragments={"40-amavis.json": None}).execute()
    assert (result["changed"], result["diff"], runner.calls) == (False, [], [])
    assert "there was no fragment to remove" in result["warnings"][0]
    assert not directory.exists()
    assert (env / "postfix" / "main.cf").read_text(encoding="utf-8") == ORIGINAL_MAIN
    # With the directory there, a removal is assembled as before (and a missing base is still an error).
    directory.mkdir()
    with pytest.raises(PostfixConfigError, match="no fragments"):
        make(env, FakeRunner(), fragments={"40-amavis.json": None}).execute()


# -- tables: written and compiled before main.cf, confined, restored on a failed health check --

UID, GID = os.getuid(), os.getgid()


class CompilingRunner(FakeRunner):
    """postmap/postalias create the .db next to the source, like the real ones."""

    def __call__(self, argv, environ_update=None, **kwargs):
        if os.path.basename(argv[0]) in ("postmap", "postalias"):
            self.calls.append(argv)
            self.keys.append(os.path.basename(argv[0]))
            source = argv[-1].split(":", 1)[1]
            with open(source + ".db", "w", encoding="utf-8") as handle:
                handle.write("compiled")
            return 0, "", ""
        return super().__call__(argv, environ_update, **kwargs)


def vmailbox(env, text="alice@example.org example.org/alice/\n", **extra):
    return {"path": str(env / "postfix" / "vmailbox"), "content": text, "owner": UID, "group": GID, **extra}


def with_fragment(env):
    return {"20-virtual.json": {"main": {"virtual_mailbox_maps": f"hash:{env}/postfix/vmailbox"}}}


def test_table_is_written_and_compiled_before_main_cf(env):
    runner = CompilingRunner()
    backend = make(env, runner, bins=("postconf", "postfix", "journalctl", "postmap"), tables=[vmailbox(env)])
    backend.fragments = with_fragment(env)
    result = backend.execute()
    assert result["changed"] is True
    assert result["tables"] == [str(env / "postfix" / "vmailbox")]
    assert (env / "postfix" / "vmailbox").read_text(encoding="utf-8") == "alice@example.org example.org/alice/\n"
    assert (env / "postfix" / "vmailbox.db").exists()
    assert stat.S_IMODE(os.stat(env / "postfix" / "vmailbox").st_mode) == 0o644
    assert runner.keys.index("postmap") < runner.keys.index("postfix reload")
    assert "virtual_mailbox_maps = hash:" in (env / "postfix" / "main.cf").read_text(encoding="utf-8")


def test_unchanged_table_is_not_touched(env):
    runner = CompilingRunner()
    bins = ("postconf", "postfix", "journalctl", "postmap")
    make(env, runner, bins=bins, tables=[vmailbox(env)]).execute()
    runner.keys.clear()
    result = make(env, runner, bins=bins, tables=[vmailbox(env)]).execute()
    assert (result["changed"], result["tables"]) == (False, [])
    assert "postmap" not in runner.keys and "postfix reload" not in runner.keys


def test_a_changed_table_alone_reloads_postfix(env):
    runner = CompilingRunner()
    bins = ("postconf", "postfix", "journalctl", "postmap")
    make(env, runner, bins=bins, tables=[vmailbox(env)]).execute()
    runner.keys.clear()
    result = make(env, runner, bins=bins, tables=[vmailbox(env, "bob@example.org example.org/bob/\n")]).execute()
    assert result["tables"] == [str(env / "postfix" / "vmailbox")]
    assert result["reloaded"] is True
    assert "postmap" in runner.keys
    assert result["diff"][-1]["before"] == "alice@example.org example.org/alice/\n"


def test_check_mode_writes_no_table(env):
    backend = make(env, CompilingRunner(), tables=[vmailbox(env)], check_mode=True)
    result = backend.execute()
    assert result["changed"] is True
    assert not (env / "postfix" / "vmailbox").exists()


def test_failed_health_check_restores_the_tables(env):
    runner = CompilingRunner()
    bins = ("postconf", "postfix", "journalctl", "postmap")
    make(env, runner, bins=bins, tables=[vmailbox(env)]).execute()

    def refuse(host, port, timeout):
        raise OSError("connection refused")

    backend = make(
        env, runner, bins=bins, probe=refuse, tables=[vmailbox(env, "bob@example.org x/\n")], health_timeout=0
    )
    backend.fragments = with_fragment(env)
    with pytest.raises(PostfixConfigError, match="previous configuration was restored"):
        backend.execute()
    assert (env / "postfix" / "vmailbox").read_text(encoding="utf-8") == "alice@example.org example.org/alice/\n"


def test_new_table_is_removed_on_rollback(env):
    runner = CompilingRunner()

    def refuse(host, port, timeout):
        raise OSError("connection refused")

    backend = make(
        env,
        runner,
        bins=("postconf", "postfix", "journalctl", "postmap"),
        probe=refuse,
        tables=[vmailbox(env)],
        health_timeout=0,
    )
    with pytest.raises(PostfixConfigError):
        backend.execute()
    assert not (env / "postfix" / "vmailbox").exists()
    assert not (env / "postfix" / "vmailbox.db").exists()


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({"path": "/etc/postfix/main.cf"}, r"tables\[0\]\.path: main.cf is one of Postfix's own files"),
        ({"path": "/etc/postfix/master.cf"}, r"tables\[0\]\.path: master.cf"),
        ({"path": "/etc/postfix/../shadow"}, r"tables\[0\]\.path: .* normalised"),
        ({"path": "/etc/shadow"}, r"tables\[0\]\.path: /etc/shadow is not directly in /etc/postfix"),
        ({"path": "/etc/postfix/sub/map"}, r"not directly in /etc/postfix"),
        ({"path": "/etc/aliases"}, r"not directly in /etc/postfix"),
        ({"path": "/etc/postfix/.hidden"}, r"own files"),
        ({"path": "/etc/postfix/x.db"}, r"compiled table"),
        ({"path": "/etc/postfix/10-postfix.json"}, r"own files"),
        ({"path": "/etc/postfix/a map"}, r"space or control"),
        ({"path": "/etc/postfix/map", "mode": "0666"}, r"tables\[0\]\.mode: 0666 lets others write"),
        ({"path": "/etc/postfix/map", "mode": "u+rw"}, r"tables\[0\]\.mode"),
        ({"path": "/etc/postfix/map", "type": "ldap"}, r"tables\[0\]\.type"),
        ({"path": "/etc/postfix/map", "type": "pcre", "aliases": True}, r"tables\[0\]\.aliases"),
        ({"path": "/etc/postfix/map", "content": None}, r"tables\[0\]\.content"),
        ({"path": "/etc/postfix/map", "owner": "no-such-user-here"}, r"tables\[0\]\.owner: no such user"),
    ],
)
def test_bad_tables_are_refused_naming_the_entry(entry, error):
    with pytest.raises(TableFileError, match=error):
        check_tables([{"content": "x OK\n", **entry}], "/etc/postfix")


def test_aliases_may_be_etc_aliases_and_duplicates_are_refused():
    tables = check_tables([{"path": "/etc/aliases", "aliases": True, "content": "root: alice"}], "/etc/postfix")
    assert (tables[0].compiled, tables[0].content) == ("/etc/aliases.db", "root: alice\n")
    with pytest.raises(TableFileError, match=r"tables\[1\]\.path: /etc/postfix/m is given twice"):
        check_tables([{"path": "/etc/postfix/m", "content": ""}] * 2, "/etc/postfix")


def test_a_symlinked_table_is_refused(env):
    (env / "elsewhere").write_text("x\n", encoding="utf-8")
    os.symlink(env / "elsewhere", env / "postfix" / "vmailbox")
    with pytest.raises(PostfixConfigError, match=r"^tables\[0\]\.path: .*/vmailbox is a symbolic link"):
        make(env, CompilingRunner(), tables=[vmailbox(env)]).execute()


def test_removing_an_inet_service_restarts_instead_of_reloading(env):
    # Postfix's master spins after a reload that removes an inet service whose process holds a connection
    # (the amavis role switched off while amavis kept its connection to 127.0.0.1:10025).
    reinject = {
        "name": "127.0.0.1:10025",
        "type": "inet",
        "private": "n",
        "chroot": "n",
        "command": "smtpd",
        "args": ["-o", "content_filter="],
    }
    client = {"name": "smtp-amavis", "type": "unix", "chroot": "n", "command": "smtp"}  # fmt: skip
    make(env, fragments={"40-amavis.json": {"master": [client, reinject]}}).execute()
    runner = FakeRunner()
    result = make(env, runner, fragments={"40-amavis.json": {"master": [reinject]}}).execute()
    assert "postfix reload" in runner.keys and "restarted" not in result  # only a unix service went
    runner = FakeRunner()
    result = make(env, runner, fragments={"40-amavis.json": None}).execute()
    assert runner.keys == [*APPLY_KEYS[:4], "postfix stop", "postfix start", "journalctl -o json --no-pager"]
    assert (result["reloaded"], result["restarted"]) == (True, True)
    assert result["warnings"] == ["Postfix was restarted, not reloaded: master.cf no longer has 127.0.0.1:10025/inet"]
    assert "10025" not in live(env, "master.cf")


# -- the relay guard, on the merged configuration of every fragment ------------------------------


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ({"main": {"smtpd_relay_restrictions": ["warn_if_reject reject_unauth_destination"]},
          "overrides": ["smtpd_relay_restrictions"]},
         r"main.cf would relay mail for anyone: smtpd_relay_restrictions only logs its reject_unauth_destination"),
        ({"main": {"smtpd_relay_restrictions": ["check_client_access static:OK", "reject_unauth_destination"]},
          "overrides": ["smtpd_relay_restrictions"]},
         r"'check_client_access static:OK': static:OK answers 'OK' for every key"),
        ({"main": {"mynetworks": ["0.0.0.0/0"]}, "overrides": ["mynetworks"]},
         r"parameter mynetworks: 0.0.0.0/0 covers every IPv4 address"),
        ({"master": [{"name": "2525", "type": "inet", "command": "smtpd",
                      "args": ["-o", "smtpd_relay_restrictions=static:OK,reject_unauth_destination"]}]},
         r"master.cf service 2525/inet \(main.cf with its -o overrides\) would relay mail for anyone: "
         r"smtpd_relay_restrictions lets every client through at entry 1: 'static:OK'"),
        ({"master": [{"name": "2525", "type": "inet", "command": "smtpd",
                      "args": ["-o", "{ smtpd_relay_restrictions = permit_mynetworks, warn_if_reject reject }"]}]},
         r"master.cf service 2525/inet \(main.cf with its -o overrides\) would relay mail for anyone: "
         r"smtpd_relay_restrictions only logs"),
        ({"master": [{"name": "2525", "type": "inet", "command": "smtpd",
                      "args": ["-o", "smtpd_client_restrictions=permit_bogus"]}]},
         r"master.cf service 2525/inet: -o parameter smtpd_client_restrictions: unknown restriction 'permit_bogus'"),
        ({"master": [{"name": "2525", "type": "inet", "command": "smtpd",
                      "args": ["-osmtpd_relay_restrictions=permit_sasl_authenticated", "-o", "smtpd_recipient_restrictions=permit"]}]},
         r"master.cf service 2525/inet: parameters smtpd_relay_restrictions and smtpd_recipient_restrictions: neither"),
    ],
)  # fmt: skip
def test_open_relay_fails_before_any_write(env, fragment, message):
    write_fragment(env, "50-open.json", fragment)
    runner = FakeRunner()
    with pytest.raises(PostfixConfigError, match=message):
        make(env, runner).execute()
    assert runner.keys == ["postconf -m"]
    assert live(env) == ORIGINAL_MAIN
    assert live(env, "master.cf") == ORIGINAL_MASTER


def test_an_open_relay_asked_for_by_a_fragment_is_applied_with_a_warning(env):
    fragment = {
        "main": {"smtpd_relay_restrictions": ["check_client_access static:OK", "reject_unauth_destination"]},
        "overrides": ["smtpd_relay_restrictions"],
        "allow_open_relay": True,
    }
    backend = make(env, fragments={"50-open.json": fragment})
    result = backend.execute()
    assert result["changed"]
    assert "smtpd_relay_restrictions =\n    check_client_access static:OK,\n" in live(env)
    assert any(w.startswith("allowed open relay (allow_open_relay): main.cf would relay") for w in result["warnings"])


def test_a_catch_all_in_a_table_of_this_run_counts(env):
    table = {"path": str(env / "postfix" / "clients"), "type": "cidr", "content": "0.0.0.0/0 OK\n"}
    fragment = {
        "main": {
            "smtpd_relay_restrictions": [f"check_client_access cidr:{table['path']}", "reject_unauth_destination"]
        },
        "overrides": ["smtpd_relay_restrictions"],
    }
    with pytest.raises(PostfixConfigError, match=r"answers 'OK' for every client"):
        make(env, fragments={"50-open.json": fragment}, tables=[table]).execute()
    assert not (env / "postfix" / "clients").exists()
    assert live(env) == ORIGINAL_MAIN


def test_without_master_services_the_live_master_cf_is_judged(env):
    base = {"main": dict(BASE["main"])}
    (env / "postfix" / "master.cf").write_text(
        "smtp inet n - y - - smtpd\n2525 inet n - y - - smtpd\n  -o smtpd_relay_restrictions=static:OK,reject\n",
        encoding="utf-8",
    )
    with pytest.raises(PostfixConfigError, match=r"master.cf service 2525/inet \(main.cf with its -o overrides\)"):
        make(env, fragments={"00-base.json": base}).execute()


# -- a stale fragment never blocks its own replacement --------------------------------------------


@pytest.mark.parametrize(
    "stale",
    [
        b"{not json",
        b"\xff\xfe\x00binary",
        json.dumps({"main": {}, "legacy_key": 1}).encode(),  # an older (or newer) schema
        json.dumps({"master": [{"name": "#x", "type": "inet", "command": "smtpd"}]}).encode(),
    ],
)
def test_a_stale_fragment_is_replaced_by_the_one_given(env, stale):
    (env / "postfix" / "postmaster.d" / "10-role.json").write_bytes(stale)
    fragment = {"main": {"message_size_limit": 1000}}
    result = make(env, fragments={"10-role.json": fragment}).execute()
    assert result["changed"]
    assert json.loads((env / "postfix" / "postmaster.d" / "10-role.json").read_text()) == fragment
    assert "message_size_limit = 1000" in live(env)


def test_a_stale_fragment_is_removed_when_its_role_removes_it(env):
    (env / "postfix" / "postmaster.d" / "10-role.json").write_bytes(b"{not json")
    make(env, fragments={"10-role.json": None}).execute()
    assert not (env / "postfix" / "postmaster.d" / "10-role.json").exists()


def test_another_role_s_corrupt_fragment_still_fails_naming_it(env):
    (env / "postfix" / "postmaster.d" / "20-other.json").write_bytes(b"{not json")
    with pytest.raises(PostfixConfigError, match=r"^fragment 20-other.json: invalid JSON"):
        make(env, fragments={"10-role.json": {"main": {"message_size_limit": 1000}}}).execute()
    assert live(env) == ORIGINAL_MAIN
    assert not (env / "postfix" / "postmaster.d" / "10-role.json").exists()


def test_local_domains_are_mydestination_expanded_by_postconf(env):
    runner = FakeRunner(
        {"postconf -x -h mydestination": (0, "Mail.Example.org, localhost.example.org,\tlocalhost\n", "")}
    )
    result = make(env, runner, report_local_domains=True).execute()
    assert result["local_domains"] == ["mail.example.org", "localhost.example.org", "localhost"]
    assert ["/usr/sbin/postconf", "-c", str(env / "postfix"), "-x", "-h", "mydestination"] in runner.calls
    # Not asked: no postconf call for it, and no key in the result.
    runner = FakeRunner()
    assert "local_domains" not in make(env, runner).execute()
    assert not any("mydestination" in argv for argv in runner.calls)


def test_local_domains_without_postfix_or_main_cf_are_unknown(env):
    assert make(env, bins=(), check_mode=True, report_local_domains=True).execute()["local_domains"] is None
    runner = FakeRunner({"postconf -x -h mydestination": (1, "", "postconf: fatal: bad")})
    with pytest.raises(PostfixConfigError, match="postconf -x -h mydestination failed: postconf: fatal: bad"):
        make(env, runner, report_local_domains=True).execute()
