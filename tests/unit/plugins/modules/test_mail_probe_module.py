# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail_probe module against the fake mail server: arguments in, report or failure out, no secret out."""

from __future__ import annotations

import json

from ansible_collections.postmaster.mailserver.plugins.modules import mail_probe as probe_module
from ansible_collections.postmaster.mailserver.tests.unit.plugins.fake_mail_server import PASSWORD, USER


def args(fake, **extra):
    return {
        "host": "127.0.0.1",
        "tls_name": "mail.example.test",
        "ports": {service: str(port) for service, port in fake.ports.items()},
        "timeout": 5,
        "ca_file": str(fake.cert_file),
        **extra,
    }


def test_a_healthy_server_reports_ok_and_never_changed(fake_mail, run_module):
    rc, result = run_module(
        probe_module.main,
        args(fake_mail, services=["submission", "imaps", "pop3s"], user=USER, password=PASSWORD, send=True),
    )
    assert rc == 0
    assert (result["changed"], result["ok"], result["failed_checks"]) == (False, True, [])
    assert result["checks"]["delivery"]["ok"] is True
    assert result["checks"]["submission_auth"]["after_tls"] == ["PLAIN", "LOGIN"]
    assert PASSWORD not in json.dumps(result)
    assert fake_mail.mailbox(USER) == []


def test_failed_checks_fail_the_task_naming_each(fake_mail, run_module, closed_port):
    fake_mail.behaviour.update(open_relay=True, auth_before_tls=True)
    ports = {service: str(port) for service, port in fake_mail.ports.items()}
    rc, result = run_module(
        probe_module.main,
        args(
            fake_mail,
            services=["submission", "imaps"],
            ports={**ports, "imaps": closed_port},
            user=USER,
            password=PASSWORD,
        ),
    )
    assert rc == 1
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["failed_checks"] == ["submission_auth", "imaps_banner", "relay_refused"]
    assert result["msg"].startswith(
        "3 of 7 checks failed on 127.0.0.1: submission_auth: AUTH PLAIN LOGIN is offered before STARTTLS"
    )
    assert f"imaps_banner: 127.0.0.1:{closed_port}: connection refused" in result["msg"]
    assert "relay_refused: OPEN RELAY: RCPT TO:<mail-probe@example.com>" in result["msg"]
    assert PASSWORD not in json.dumps(result)


def test_fail_on_error_false_reports_only(fake_mail, run_module):
    fake_mail.behaviour["open_relay"] = True
    rc, result = run_module(probe_module.main, args(fake_mail, services=[], fail_on_error=False))
    assert (rc, result["ok"], result["failed_checks"]) == (0, False, ["relay_refused"])
    assert "msg" not in result


def test_check_mode_sends_nothing(fake_mail, run_module):
    rc, result = run_module(
        probe_module.main,
        args(fake_mail, services=["submission"], user=USER, password=PASSWORD, send=True, _ansible_check_mode=True),
    )
    assert rc == 0
    assert result["skipped_checks"] == {
        "send": "check mode: no message is sent",
        "delivery": "check mode: no message is sent",
    }
    assert result["checks"]["submission_login"]["ok"] is True
    assert not any(line.upper().startswith("DATA") for _service, line in fake_mail.transcript)


def test_bad_options_fail_before_connecting(fake_mail, run_module):
    rc, result = run_module(probe_module.main, args(fake_mail, ports={"imaps": "nine"}))
    assert (rc, result["msg"]) == (1, "ports: every value must be a port number, got {'imaps': 'nine'}")
    rc, result = run_module(probe_module.main, args(fake_mail, send=True))
    assert (rc, result["msg"]) == (1, "send: user and password are required to submit a message with AUTH")
    rc, result = run_module(probe_module.main, args(fake_mail, user=USER))
    assert rc == 1
    assert "parameters are required together: user, password" in result["msg"]
    assert fake_mail.transcript == []
