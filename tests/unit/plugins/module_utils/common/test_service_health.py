# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The health helpers every configuration backend shares: one error class, one wait loop."""

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.common import service_health
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import (
    HealthCheckError,
    ServiceBackend,
    restart_postfix,
    run_checked,
    systemctl,
    wait_for_answer,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.dovecot import dovecot_config
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix import postfix_config
from ansible_collections.postmaster.mailserver.plugins.module_utils.spf import policyd_spf


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_every_backend_raises_and_catches_the_same_error_class():
    # A probe of one module (smtp_probe) refused by a 421 must be retried by another's wait loop.
    from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis import amavis_config
    from ansible_collections.postmaster.mailserver.plugins.module_utils.dkim import dkim_config
    from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall import nftables_config

    for module in (postfix_config, dovecot_config, policyd_spf, amavis_config, dkim_config, nftables_config):
        assert module.HealthCheckError is service_health.HealthCheckError


def test_wait_for_answer_retries_refusals_and_wrong_answers_until_one_answers():
    clock = Clock()
    answers = [OSError("connection refused"), HealthCheckError("greeting was '421'"), "220 ready"]
    seen = []

    def probe(timeout: float) -> str:
        seen.append(timeout)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_for_answer("x", probe, 30, clock=clock, sleep=clock.sleep) == "220 ready"
    assert seen == [10.0, 10.0, 10.0]
    assert clock.now == 1002.0


def test_wait_for_answer_names_what_and_the_last_error_after_the_deadline():
    clock = Clock()

    def probe(timeout: float) -> str:
        raise OSError(f"refused ({timeout:.0f}s)")

    with pytest.raises(HealthCheckError, match=r"^amavis on 127.0.0.1:10024 did not answer within 3s: refused \(1s\)$"):
        wait_for_answer(
            "amavis on 127.0.0.1:10024 did not answer", probe, 3, clock=clock, sleep=clock.sleep, attempt_timeout=30
        )
    assert clock.now == 1003.0


def test_wait_for_answer_tries_once_with_no_time_left():
    clock = Clock()
    calls = []

    def probe(timeout: float) -> str:
        calls.append(timeout)
        raise OSError("refused")

    with pytest.raises(HealthCheckError, match="within 0s"):
        wait_for_answer("x", probe, 0, clock=clock, sleep=clock.sleep)
    assert calls == [1.0]


class Runner:
    """A run_command that records argv and answers from a table (argv joined -> (rc, out, err))."""

    def __init__(self, answers=None):
        self.calls = []
        self.answers = answers or {}

    def __call__(self, argv, **kwargs):
        self.calls.append((list(argv), kwargs))
        return self.answers.get(" ".join(argv), (0, "ok\n", ""))


def test_systemctl_runs_the_verb_and_names_it_when_it_fails():
    run = Runner({"/bin/systemctl restart opendkim": (1, "", "Job failed\n")})
    assert systemctl(run, lambda name: f"/bin/{name}", "reload", "opendkim") == "ok\n"
    with pytest.raises(HealthCheckError, match=r"systemctl restart opendkim failed \(rc=1\): Job failed"):
        systemctl(run, lambda name: f"/bin/{name}", "restart", "opendkim")
    with pytest.raises(HealthCheckError, match="systemctl was not found"):
        systemctl(run, lambda name: None, "restart", "opendkim")
    assert [call[0] for call in run.calls] == [
        ["/bin/systemctl", "reload", "opendkim"],
        ["/bin/systemctl", "restart", "opendkim"],
    ]


def test_run_checked_names_the_command_and_its_error():
    run = Runner({"/usr/sbin/postfix reload": (75, "", "fatal: bad\n")})
    with pytest.raises(HealthCheckError, match=r"/usr/sbin/postfix reload failed \(rc=75\): fatal: bad"):
        run_checked(run, ["/usr/sbin/postfix", "reload"])


def test_restart_postfix_goes_through_systemd_or_stops_and_starts_without_it():
    run = Runner()
    restart_postfix(run, lambda name: f"/bin/{name}", "/usr/sbin/postfix")
    assert [call[0] for call in run.calls] == [["/bin/systemctl", "restart", "postfix"]]
    run = Runner()
    restart_postfix(run, lambda name: None, "/usr/sbin/postfix")
    assert [call[0] for call in run.calls] == [["/usr/sbin/postfix", "stop"], ["/usr/sbin/postfix", "start"]]
    run = Runner({"/usr/sbin/postfix start": (1, "", "cannot start\n")})
    with pytest.raises(HealthCheckError, match="postfix start failed"):
        restart_postfix(run, lambda name: None, "/usr/sbin/postfix")


class Backend(ServiceBackend):
    def __init__(self, run, clock, **kwargs):
        self._keep(run_command=run, get_bin_path=lambda name: f"/bin/{name}", sleep=clock.sleep, clock=clock, **kwargs)


def test_the_service_backend_runs_with_lc_all_c_and_waits_on_its_own_clock():
    clock = Clock()
    run = Runner({"/bin/true": (0, None, None)})
    backend = Backend(run, clock, health_timeout=3, health_port=783)
    assert backend.run(["/bin/true"]) == (0, "", "")
    assert run.calls[0][1] == {"environ_update": {"LC_ALL": "C"}}
    backend._systemctl("is-active", "saslauthd")
    assert run.calls[1][0] == ["/bin/systemctl", "is-active", "saslauthd"]
    assert backend.warnings == [] and backend.check_mode is False and backend.health_port == 783
    attempts = []

    def probe(seconds):
        attempts.append(seconds)
        raise ConnectionRefusedError("refused")

    with pytest.raises(HealthCheckError, match=r"saslauthd did not answer within 3s: refused"):
        backend._wait("saslauthd did not answer", probe, attempt_timeout=2.0)
    assert attempts[0] == 2.0 and clock.now == 1003.0
