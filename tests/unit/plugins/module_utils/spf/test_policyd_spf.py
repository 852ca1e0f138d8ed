# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.policyd_spf import (
    HEADER,
    PARSER_SCRIPT,
    POLICY_REQUEST,
    HealthCheckError,
    PolicydSpfConfig,
    PolicydSpfError,
    check_settings,
    policy_probe,
    render_config,
)

DEFAULTS = {
    "debug_level": 1,
    "test_only": False,
    "helo_reject": "Fail",
    "mail_from_reject": "Fail",
    "permerror_reject": False,
    "temperror_defer": False,
    "skip_addresses": ["127.0.0.0/8", "::ffff:127.0.0.0/104", "::1"],
    "whitelist": [],
    "hide_receiver": True,
}
DEFAULT_TEXT = HEADER + (
    "debugLevel = 1\n"
    "TestOnly = 1\n"
    "HELO_reject = Fail\n"
    "Mail_From_reject = Fail\n"
    "PermError_reject = False\n"
    "TempError_Defer = False\n"
    "skip_addresses = 127.0.0.0/8,::ffff:127.0.0.0/104,::1\n"
    "Hide_Receiver = Yes\n"
)

# -- settings ----------------------------------------------------------------------


def test_render_defaults():
    assert render_config(check_settings(DEFAULTS)) == DEFAULT_TEXT


def test_seed_003_mail_from_reject_false_in_every_spelling():
    for value in ("False", "false", False):
        assert check_settings({"mail_from_reject": value}) == {"mail_from_reject": "False"}
    assert "Mail_From_reject = False\n" in render_config({"mail_from_reject": "False"})


def test_every_setting_renders():
    settings = check_settings(
        {
            "debug_level": "3",
            "test_only": True,
            "helo_reject": "spf_not_pass",
            "mail_from_reject": "Softfail",
            "permerror_reject": "yes",
            "temperror_defer": True,
            "no_mail": False,
            "skip_addresses": "127.0.0.0/8, ::1",
            "whitelist": ["192.0.2.0/24", "2001:db8::/32"],
            "helo_whitelist": ["relay.example.com"],
            "domain_whitelist": ["pobox.com", "trustedforwarder.org"],
            "domain_whitelist_ptr": ["yahoo.com"],
            "reject_not_pass_domains": ["aol.com"],
            "header_type": "AR",
            "authserv_id": "mail.example.org",
            "hide_receiver": False,
            "enhanced_status_codes": False,
            "lookup_time": 20,
            "whitelist_lookup_time": 10,
            "void_limit": 2,
        }
    )
    assert render_config(settings) == HEADER + textwrap.dedent(
        """\
        debugLevel = 3
        TestOnly = 0
        HELO_reject = SPF_Not_Pass
        Mail_From_reject = Softfail
        PermError_reject = True
        TempError_Defer = True
        No_Mail = False
        skip_addresses = 127.0.0.0/8,::1
        Whitelist = 192.0.2.0/24,2001:db8::/32
        HELO_Whitelist = relay.example.com
        Domain_Whitelist = pobox.com,trustedforwarder.org
        Domain_Whitelist_PTR = yahoo.com
        Reject_Not_Pass_Domains = aol.com
        Header_Type = AR
        Authserv_Id = mail.example.org
        Hide_Receiver = No
        SPF_Enhanced_Status_Codes = No
        Lookup_Time = 20
        Whitelist_Lookup_Time = 10
        Void_Limit = 2
        """
    )


def test_empty_skip_addresses_is_written_and_other_empty_lists_are_not():
    text = render_config(check_settings({"skip_addresses": [], "whitelist": [], "authserv_id": ""}))
    assert text == HEADER + "skip_addresses =\n"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"mail_from_reject": "Null"},
            r"policyd_spf_mail_from_reject: must be one of SPF_Not_Pass, Softfail, Fail, False, No_Check, got 'Null'",
        ),
        ({"helo_reject": "reject"}, "policyd_spf_helo_reject: must be one of"),
        ({"helo_reject": True}, "policyd_spf_helo_reject: must be one of"),
        ({"mail_from_reject": "False\nTestOnly = 0"}, "policyd_spf_mail_from_reject: must be one of"),
        ({"permerror_reject": "maybe"}, "policyd_spf_permerror_reject: must be true or false"),
        ({"temperror_defer": 1}, "policyd_spf_temperror_defer: must be true or false"),
        ({"skip_addresses": ["127.0.0.1/8"]}, r"policyd_spf_skip_addresses\[0\]: '127.0.0.1/8' .*host bits"),
        ({"skip_addresses": ["10.0.0.0/33"]}, r"policyd_spf_skip_addresses\[0\]"),
        ({"whitelist": ["192.0.2.0/24 # x"]}, r"policyd_spf_whitelist\[0\]"),
        ({"whitelist": "192.0.2.0/24=1"}, r"policyd_spf_whitelist\[0\]"),
        ({"whitelist": [""]}, r"policyd_spf_whitelist\[0\]: must be a non-empty string"),
        ({"whitelist": {"a": 1}}, "policyd_spf_whitelist: must be a list, got dict"),
        ({"domain_whitelist": ["pobox.com\nTestOnly = 0"]}, r"policyd_spf_domain_whitelist\[0\]"),
        ({"helo_whitelist": ["localhost"]}, r"policyd_spf_helo_whitelist\[0\]: 'localhost' is not a fully"),
        ({"reject_not_pass_domains": [7]}, r"policyd_spf_reject_not_pass_domains\[0\]: must be a non-empty string"),
        ({"debug_level": 6}, "policyd_spf_debug_level: must be between 0 and 5, got 6"),
        ({"debug_level": True}, "policyd_spf_debug_level: must be a whole number"),
        ({"lookup_time": "-1"}, "policyd_spf_lookup_time: must be a whole number"),
        ({"lookup_time": 0}, "policyd_spf_lookup_time: must be between 1 and 300"),
        ({"header_type": "DKIM"}, "policyd_spf_header_type: must be one of SPF, AR"),
        ({"header_type": "AR"}, "policyd_spf_authserv_id: give the host name"),
        ({"authserv_id": "mail example"}, "policyd_spf_authserv_id: must be a fully qualified host name"),
        ({"TestOnly": 0}, r"unknown setting policyd_spf_TestOnly \(known: debug_level"),
        ([], "policyd_spf: must be a mapping"),
    ],
)
def test_bad_settings_name_the_variable(settings, message):
    with pytest.raises(PolicydSpfError, match=message):
        check_settings(settings, "policyd_spf_")


# -- the package's parser, through the script the module runs ------------------------------


@pytest.fixture
def fake_engine(tmp_path):
    """A stand-in spf_engine.policydspfsupp that parses and logs like the package's."""
    package = tmp_path / "lib" / "spf_engine"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "policydspfsupp.py").write_text(
        textwrap.dedent(
            """\
            import syslog
            defaultConfigData = {"debugLevel": 1, "TestOnly": 1, "Mail_From_reject": "Fail"}
            KNOWN = {"debugLevel": int, "TestOnly": int, "Mail_From_reject": str, "skip_addresses": str,
                     "HELO_reject": str}
            def _readConfigFile(path, configData=None, configGlobal={}):
                for line in open(path):
                    line = line.split("#", 1)[0].strip()
                    if not line:
                        continue
                    data = [q.strip() for q in line.split("=")]
                    if len(data) != 2:
                        syslog.syslog('ERROR parsing line "%s" from file "%s"' % (line, path))
                        continue
                    name, value = data
                    if name not in KNOWN:
                        syslog.syslog('ERROR: Unknown name "%s" in file "%s"' % (name, path))
                        continue
                    configData[name] = KNOWN[name](value)
                return configData
            """
        ),
        encoding="utf-8",
    )
    return str(tmp_path / "lib")


def _parse(fake_engine, tmp_path, text):
    conf = tmp_path / "policyd-spf.conf"
    conf.write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": fake_engine}
    out = subprocess.run(
        [sys.executable, "-c", PARSER_SCRIPT, str(conf)], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout)


def test_parser_script_reports_values_and_messages(fake_engine, tmp_path):
    report = _parse(fake_engine, tmp_path, "Mail_From_reject = False\nTestOnly = 1\n")
    assert report == {"messages": [], "config": {"debugLevel": 1, "TestOnly": 1, "Mail_From_reject": "False"}}
    report = _parse(fake_engine, tmp_path, "Bogus = 1\nA = b = c\nTestOnly = x\n")
    assert report["messages"][0].startswith('ERROR: Unknown name "Bogus"')
    assert report["messages"][1].startswith('ERROR parsing line "A = b = c"')
    assert report["messages"][2] == "ValueError: invalid literal for int() with base 10: 'x'"


# -- the backend ---------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeRunner:
    """Answers by command name; the parser answers with what the candidate says (or a given report)."""

    def __init__(self, responses=None, parsed=None):
        self.calls = []
        self.responses = responses or {}
        self.parsed = parsed
        self.data = []

    def __call__(self, argv, environ_update=None, data=None, binary_data=False):
        assert isinstance(argv, list)
        assert environ_update == {"LC_ALL": "C"}
        key = " ".join([os.path.basename(argv[0]), *[a for a in argv[1:] if not a.startswith(("/", "@"))]][:3])
        if argv[1:2] == ["-c"]:
            key = "parser"
        self.calls.append(key)
        self.data.append(data)
        if key in self.responses:
            response = self.responses[key]
            return response(argv) if callable(response) else response
        if key == "parser":
            if self.parsed is not None:
                return 0, json.dumps(self.parsed), ""
            config = {}
            with open(argv[-1], encoding="utf-8") as handle:
                lines = handle.readlines()
            for line in lines:
                if line.startswith("#") or "=" not in line:
                    continue
                name, value = (part.strip() for part in line.split("=", 1))
                config[name] = int(value) if name in ("debugLevel", "TestOnly", "Lookup_Time") else value
            return 0, json.dumps({"messages": [], "config": config}), ""
        if key.startswith("policyd-spf"):
            return 0, "action=dunno\n\n", ""
        return 0, "", ""


@pytest.fixture
def files(tmp_path):
    daemon = tmp_path / "policyd-spf"
    daemon.write_text("#!/usr/bin/python3\nfrom spf_engine.policyd_spf import main\n", encoding="utf-8")
    conf = tmp_path / "etc" / "policyd-spf.conf"
    conf.parent.mkdir()
    conf.write_text("debugLevel = 1\nTestOnly = 1\n", encoding="utf-8")
    return {"daemon": str(daemon), "conf": conf, "socket": str(tmp_path / "policy-spf")}


def make(files, settings=None, runner=None, **kwargs):
    clock = Clock()
    kwargs.setdefault("smtp", lambda host, port, timeout: "220 mail.example.test ESMTP")
    kwargs.setdefault("policy", lambda path, timeout: "action=prepend X-Comment: SPF check N/A")
    kwargs.setdefault("exists", lambda path: True)
    kwargs.setdefault("policy_socket", files["socket"])
    return PolicydSpfConfig(
        settings=DEFAULTS if settings is None else settings,
        path=str(files["conf"]),
        daemon=files["daemon"],
        run_command=runner if runner is not None else FakeRunner(),
        get_bin_path=lambda name: f"/usr/sbin/{name}",
        sleep=clock.sleep,
        clock=clock.time,
        **kwargs,
    )


def test_change_is_parsed_written_reloaded_and_probed(files):
    runner = FakeRunner()
    files["conf"].chmod(0o640)
    result = make(files, runner=runner).execute()
    assert result["changed"] is True
    assert result["reloaded"] is True
    assert result["policy_answer"] == "action=prepend X-Comment: SPF check N/A"
    assert runner.calls == ["parser", "postfix status", "postfix reload", "journalctl -o json"]
    assert files["conf"].read_text(encoding="utf-8") == DEFAULT_TEXT
    assert oct(files["conf"].stat().st_mode & 0o777) == "0o640"  # mode kept
    assert result["diff"]["before"] == "debugLevel = 1\nTestOnly = 1\n"
    assert result["settings"]["Mail_From_reject"] == "Fail"
    assert not [p for p in files["conf"].parent.iterdir() if p.name.startswith(".")]


def test_unchanged_file_runs_nothing(files):
    files["conf"].write_text(DEFAULT_TEXT, encoding="utf-8")
    runner = FakeRunner()
    result = make(files, runner=runner).execute()
    assert (result["changed"], result["reloaded"], runner.calls) == (False, False, [])


def test_check_mode_parses_but_writes_nothing(files):
    runner = FakeRunner()
    result = make(files, runner=runner, check_mode=True).execute()
    assert result["changed"] is True
    assert runner.calls == ["parser"]
    assert files["conf"].read_text(encoding="utf-8") == "debugLevel = 1\nTestOnly = 1\n"


def test_check_mode_without_the_package_only_validates(files, tmp_path):
    files["daemon"] = str(tmp_path / "absent")
    result = make(files, check_mode=True).execute()
    assert result["changed"] is True
    assert "only the Python validation ran" in result["warnings"][0]
    with pytest.raises(PolicydSpfError, match="is postfix-policyd-spf-python installed"):
        make(files).execute()


def test_the_parser_runs_with_the_daemons_interpreter(files):
    calls = []

    def parser(argv):
        calls.append(argv)
        return 0, json.dumps({"messages": [], "config": {"Mail_From_reject": "False"}}), ""

    make(files, {"mail_from_reject": False}, FakeRunner({"parser": parser})).execute()
    assert calls[0][0] == "/usr/bin/python3"
    assert calls[0][-1].endswith("/policyd-spf.conf")
    assert not os.path.exists(calls[0][-1])  # the candidate is gone


@pytest.mark.parametrize(
    ("parsed", "message"),
    [
        ({"messages": ['ERROR: Unknown name "X" in file "/tmp/c"'], "config": {}}, "Unknown name"),
        (
            {"messages": [], "config": {"Mail_From_reject": "Fail"}},
            "Mail_From_reject: wrote 'False', the parser read 'Fail'",
        ),
    ],
)
def test_parser_refusal_changes_nothing(files, parsed, message):
    runner = FakeRunner(parsed=parsed)
    with pytest.raises(PolicydSpfError, match=message) as error:
        make(files, {"mail_from_reject": "False"}, runner).execute()
    assert "nothing was changed" in error.value.msg
    assert runner.calls == ["parser"]
    assert files["conf"].read_text(encoding="utf-8") == "debugLevel = 1\nTestOnly = 1\n"


def test_parser_crash_changes_nothing(files):
    runner = FakeRunner({"parser": (1, "", "ModuleNotFoundError: No module named 'spf_engine'")})
    with pytest.raises(PolicydSpfError, match=r"could not check the candidate .*spf_engine"):
        make(files, runner=runner).execute()


def test_bad_settings_fail_before_anything(files):
    runner = FakeRunner()
    with pytest.raises(PolicydSpfError, match=r"settings.mail_from_reject: must be one of .*; nothing was changed"):
        make(files, {"mail_from_reject": "Null"}, runner)
    assert runner.calls == []


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        ("smtp", "smtpd on 127.0.0.1:25 did not answer within 30s"),
        ("policy", "the policy service"),
        ("journal", "errors were logged after the reload"),
        ("answer", "expected an 'action=' line"),
    ],
)
def test_failed_health_check_restores_and_restarts(files, failure, expected):
    calls = {"smtp": 0}

    def smtp(host, port, timeout):
        calls["smtp"] += 1
        if failure == "smtp" and calls["smtp"] < 40:
            raise OSError("connection refused")
        return "220 ok"

    def policy(path, timeout):
        if failure == "policy":
            raise ConnectionResetError("closed")
        if failure == "answer":
            from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.policyd_spf import _policy_answer

            return _policy_answer("", path)
        return "action=dunno"

    journal = json.dumps(
        {
            "SYSLOG_IDENTIFIER": "policyd-spf",
            "PRIORITY": "6",
            "MESSAGE": "ERROR: Unknown name",
            "__REALTIME_TIMESTAMP": str(2_000_000_000 * 10**6),
        }
    )
    runner = FakeRunner({"journalctl -o json": (0, journal if failure == "journal" else "", "")})
    with pytest.raises(PolicydSpfError, match=expected) as error:
        make(files, runner=runner, smtp=smtp, policy=policy).execute()
    assert error.value.details == {"rolled_back": True}
    assert "the previous" in error.value.msg and "restored and Postfix restarted" in error.value.msg
    assert runner.calls[-1] == "systemctl restart postfix"
    assert files["conf"].read_text(encoding="utf-8") == "debugLevel = 1\nTestOnly = 1\n"


def test_rollback_of_a_new_file_removes_it(files):
    files["conf"].unlink()
    with pytest.raises(PolicydSpfError, match=r"health check failed: .*restored"):
        make(files, policy=lambda path, timeout: (item for item in ()).throw(OSError("refused"))).execute()
    assert not files["conf"].exists()


def test_postfix_not_running_probes_the_daemon_directly(files):
    runner = FakeRunner({"postfix status": (1, "", "the Postfix mail system is not running")})
    result = make(files, runner=runner, exists=lambda path: False).execute()
    assert result["reloaded"] is False
    assert result["warnings"] == ["postfix is not running: nothing was reloaded"]
    assert result["policy_answer"] == "action=dunno"
    assert runner.calls == ["parser", "postfix status", "policyd-spf", "journalctl -o json"]
    assert runner.data[2] == POLICY_REQUEST


def test_a_stale_socket_of_a_stopped_postfix_is_not_asked(files):
    runner = FakeRunner({"postfix status": (1, "", "")})
    policy = []
    result = make(files, runner=runner, policy=lambda path, timeout: policy.append(path) or "action=x").execute()
    assert policy == []
    assert result["policy_answer"] == "action=dunno"  # the daemon itself answered


def test_missing_socket_while_postfix_runs_asks_the_daemon_and_warns(files):
    runner = FakeRunner()
    result = make(files, runner=runner, exists=lambda path: False).execute()
    assert result["reloaded"] is True
    assert "was asked directly instead" in result["warnings"][0]
    assert runner.calls == ["parser", "postfix status", "postfix reload", "policyd-spf", "journalctl -o json"]


def test_direct_probe_failure_rolls_back(files):
    runner = FakeRunner({"postfix status": (1, "", ""), "policyd-spf": (1, "", "Traceback ...")})
    with pytest.raises(PolicydSpfError, match="failed \\(rc=1\\): Traceback"):
        make(files, runner=runner, policy_socket="").execute()
    assert files["conf"].read_text(encoding="utf-8") == "debugLevel = 1\nTestOnly = 1\n"


def test_no_reload_writes_only(files):
    runner = FakeRunner()
    result = make(files, runner=runner, reload=False).execute()
    assert (result["changed"], result["reloaded"], runner.calls) == (True, False, ["parser"])


def test_policy_probe_speaks_the_policy_protocol(tmp_path):
    import socket
    import threading

    path = str(tmp_path / "s")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    received = []

    def serve(answer):
        conn, _peer = server.accept()
        with conn:
            data = b""
            while b"\n\n" not in data:
                data += conn.recv(4096)
            received.append(data.decode())
            conn.sendall(answer)

    thread = threading.Thread(target=serve, args=(b"action=dunno\n\n",))
    thread.start()
    assert policy_probe(path, 5) == "action=dunno"
    thread.join()
    assert received == [POLICY_REQUEST]
    thread = threading.Thread(target=serve, args=(b"garbage\n\n",))
    thread.start()
    with pytest.raises(HealthCheckError, match="expected an 'action=' line"):
        policy_probe(path, 5)
    thread.join()
    server.close()
