# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The health helpers every configuration backend shares: one error class, one wait loop."""

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.common import service_health
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import (
    HealthCheckError,
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
    for module in (postfix_config, dovecot_config, policyd_spf):
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
