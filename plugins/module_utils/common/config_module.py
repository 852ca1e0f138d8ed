# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The part every configuration module shares: its health options, and running its backend.

postfix_config, dovecot_config, amavis_config, policyd_spf_config, dkim_config, nftables_config and
saslauthd_config follow one pattern (validate,
write a candidate, check it with the daemon's own checker, swap it in atomically, reload, check
health, roll back on failure). Each backend takes the module's side effects as callables and
returns a result with ``warnings`` and ``diff``; failures raise an error with ``msg`` and
``details``. This module turns that into ``exit_json``/``fail_json`` in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from ansible_collections.postmaster.mailserver.plugins.module_utils.common import call_record


class ConfigModuleError(Exception):
    """A configuration module failed: *msg* for the user, *details* (``rolled_back``, ...) for the result."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


HEALTH_OPTIONS = ("health_check", "health_host", "health_port", "health_timeout")
# The option the action plugins set (see call_record.py and the call_record doc fragment).
CALL_RECORD = "call_record"
CALL_RECORD_OPTION = {CALL_RECORD: {"type": "str"}}


def health_options(port: int, timeout: int = 30, host: str = "127.0.0.1") -> dict[str, dict[str, Any]]:
    """The argument spec of the health options (documented in each module)."""
    return {
        "health_check": {"type": "bool", "default": True},
        "health_host": {"type": "str", "default": host},
        "health_port": {"type": "int", "default": port},
        "health_timeout": {"type": "int", "default": timeout},
    }


def backend_arguments(module: Any) -> dict[str, Any]:
    """The keyword arguments every backend takes from the module: side effects, check mode and health.

    A health option the module does not have (nftables_config has only ``health_check``) is not passed.
    """
    params = module.params
    return {
        "run_command": module.run_command,
        "get_bin_path": module.get_bin_path,
        "atomic_move": module.atomic_move,
        "check_mode": module.check_mode,
        **{name: params[name] for name in HEALTH_OPTIONS if name in params},
    }


def module_options(module: Any, *leave_out: str) -> dict[str, Any]:
    """The module's own options, as the backend takes them: every parameter but the health options and *leave_out*."""
    return {
        name: value for name, value in module.params.items() if name not in (*HEALTH_OPTIONS, CALL_RECORD, *leave_out)
    }


def unchanged_result(result: dict[str, Any], unchanged: dict[str, Any]) -> dict[str, Any]:
    """*result* as the same call would return it on the host it left: what it did (*unchanged*'s keys) undone.

    A key of *unchanged* present in *result* gets its value (nothing done: ``False``, ``[]``), or is left
    out when that value is None (a health answer of a restart that the next call does not make).
    """
    recorded = dict(result)
    for key, value in unchanged.items():
        if key in recorded:
            if value is None:
                del recorded[key]
            else:
                recorded[key] = value
    return recorded


def record_call(
    module: Any,
    backend: Any,
    result: dict[str, Any],
    valid_until: float | None = None,
    unchanged: dict[str, Any] | None = None,
) -> None:
    """Write the call record the action plugin asked for (O(call_record)) after a call that did not fail.

    *backend* has a ``footprint()`` and an ``UNCHANGED`` (see :func:`unchanged_result`), or is the Footprint
    itself and *unchanged* is given. Nothing is recorded in check mode, or for a backend without a footprint.
    A record that cannot be written costs only the next run's round trip: it is a warning, not a failure.
    """
    key = module.params.get(CALL_RECORD)
    footprint = (lambda: backend) if isinstance(backend, call_record.Footprint) else getattr(backend, "footprint", None)
    if not key or module.check_mode or footprint is None:
        return
    try:
        call_record.write(
            key,
            str(getattr(module, "_name", "")),
            footprint(),
            unchanged_result(result, unchanged if unchanged is not None else getattr(backend, "UNCHANGED", {})),
            run=module.run_command,
            get_bin_path=module.get_bin_path,
            valid_until=valid_until,
        )
    except (OSError, ValueError, TypeError) as exc:
        module.warn(f"the call record for the next run was not written: {exc}")


def forget_call(module: Any) -> None:
    """Remove the call record of O(call_record) (after a failure)."""
    key = module.params.get(CALL_RECORD)
    if key and not module.check_mode:
        call_record.forget(str(key))


def run_backend(
    module: Any,
    make_backend: Callable[..., Any],
    error: type[Exception],
    *,
    extra: dict[str, Any] | None = None,
    **arguments: Any,
) -> NoReturn:
    """Build the backend with *arguments* and backend_arguments(module), run it and exit the module.

    Warnings the backend gathered are shown on failure too; ``diff`` is returned only in diff mode.
    *extra* is added to the result, also on failure (postfix_config's shortened ``invocation``).
    """
    backend = None
    try:
        backend = make_backend(**backend_arguments(module), **arguments)
        result = backend.execute()
    except error as exc:
        for warning in getattr(backend, "warnings", None) or []:
            module.warn(warning)
        forget_call(module)
        module.fail_json(msg=exc.msg, **(extra or {}), **exc.details)
    warnings = result.pop("warnings")
    for warning in warnings:
        module.warn(warning)
    diff = result.pop("diff", None)
    # A call that warned is not recorded: its warning is shown again by the next run's call.
    if warnings:
        forget_call(module)
    else:
        record_call(module, backend, {**(extra or {}), **result})
    if module._diff and diff is not None:
        result["diff"] = diff
    module.exit_json(**(extra or {}), **result)
