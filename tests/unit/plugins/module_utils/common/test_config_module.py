# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""config_module: the one runner of every configuration module (postfix, dovecot, amavis, policyd_spf, dkim, nftables, saslauthd)."""

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import (
    backend_arguments,
    health_options,
    module_options,
    run_backend,
)


class Exited(Exception):
    pass


class FakeModule:
    def __init__(self, diff=False, check_mode=False):
        self.params = {**{k: v["default"] for k, v in health_options(25).items()}, "health_port": 10024}
        self._diff = diff
        self.check_mode = check_mode
        self.warnings = []
        self.exit = None
        self.fail = None

    def run_command(self, *args, **kwargs):
        raise AssertionError("not called here")

    def get_bin_path(self, name):
        return f"/usr/sbin/{name}"

    def atomic_move(self, src, dest):
        raise AssertionError("not called here")

    def warn(self, text):
        self.warnings.append(text)

    def exit_json(self, **kwargs):
        self.exit = kwargs
        raise Exited

    def fail_json(self, **kwargs):
        self.fail = kwargs
        raise Exited


class BackendError(Exception):
    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


class Backend:
    def __init__(self, *, fail=False, **kwargs):
        self.kwargs = kwargs
        self.fail = fail
        self.warnings = ["seen before the failure"]

    def execute(self):
        if self.fail:
            raise BackendError("doveconf refused the candidate", rolled_back=True)
        return {"changed": True, "files": ["a"], "diff": [{"before": "x", "after": "y"}], "warnings": ["w"]}


def test_health_options_are_the_same_four_everywhere():
    assert health_options(10024, 120) == {
        "health_check": {"type": "bool", "default": True},
        "health_host": {"type": "str", "default": "127.0.0.1"},
        "health_port": {"type": "int", "default": 10024},
        "health_timeout": {"type": "int", "default": 120},
    }


def test_the_backend_gets_the_side_effects_check_mode_and_health():
    module = FakeModule(check_mode=True)
    arguments = backend_arguments(module)
    assert arguments["check_mode"] is True and arguments["health_port"] == 10024
    assert arguments["get_bin_path"]("postconf") == "/usr/sbin/postconf"
    assert set(arguments) == {"run_command", "get_bin_path", "atomic_move", "check_mode", *health_options(1)}


@pytest.mark.parametrize("diff", [False, True])
def test_success_returns_the_result_and_the_diff_only_in_diff_mode(diff):
    module = FakeModule(diff=diff)
    with pytest.raises(Exited):
        run_backend(module, Backend, BackendError, extra={"invocation": {"module_args": {}}}, files={"a": "y"})
    assert module.exit["changed"] is True and module.exit["files"] == ["a"]
    assert module.exit["invocation"] == {"module_args": {}}
    assert ("diff" in module.exit) is diff
    assert module.warnings == ["w"]


def test_failure_shows_the_backend_warnings_and_its_details():
    module = FakeModule()
    with pytest.raises(Exited):
        run_backend(module, Backend, BackendError, fail=True)
    assert module.fail == {"msg": "doveconf refused the candidate", "rolled_back": True}
    assert module.warnings == ["seen before the failure"]


def test_a_module_without_health_options_passes_none_to_its_backend():
    module = FakeModule()
    module.params = {"health_check": False, "rules": [], "state": "present"}
    arguments = backend_arguments(module)
    assert arguments["health_check"] is False
    assert not {"health_host", "health_port", "health_timeout"} & set(arguments)


def test_module_options_are_every_parameter_but_the_health_ones_and_those_left_out():
    module = FakeModule()
    module.params.update({"settings": {"a": 1}, "conf_path": "/etc/x.conf", "echo": True})
    assert module_options(module) == {"settings": {"a": 1}, "conf_path": "/etc/x.conf", "echo": True}
    assert module_options(module, "echo") == {"settings": {"a": 1}, "conf_path": "/etc/x.conf"}


def test_the_module_options_reach_the_backend_by_name():
    module = FakeModule()
    module.params["settings"] = {"mech_list": ["pam"]}
    seen = {}

    def make(**kwargs):
        seen.update(kwargs)
        return Backend(**kwargs)

    with pytest.raises(Exited):
        run_backend(module, make, BackendError, **module_options(module))
    assert seen["settings"] == {"mech_list": ["pam"]} and seen["health_port"] == 10024
