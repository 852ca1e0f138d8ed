# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The base of the action plugins that skip a module call whose answer the play already knows.

Two kinds of knowledge answer a call on the controller, without a host round trip:

- what this play learned from the module calls before it (``answer``, ``learn``: host_knowledge.py);
- the call records (call_record.py): a configuration module call leaves on the host a record of its result
  and of everything it owns, and the next run's first mail_packages call takes their census. The same call
  (same module, arguments and collection code) whose record still matches the host is answered with the
  recorded result.

Roles carry no flag of their own: every configuration module has such an action plugin.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.call_record import call_key
from ansible_collections.postmaster.mailserver.plugins.plugin_utils import host_knowledge

PLUGINS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.cache
def code_digest() -> str:
    """A digest of the collection's modules and module utilities: a record made by other code is not used."""
    sha = hashlib.sha256()
    for sub in ("modules", "module_utils"):
        top = os.path.join(PLUGINS, sub)
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    sha.update(os.path.relpath(path, PLUGINS).encode() + b"\0")
                    with open(path, "rb") as handle:
                        sha.update(handle.read())
    return sha.hexdigest()


def _no_answer(_known: Mapping[str, Any], _args: Mapping[str, Any]) -> dict[str, Any] | None:
    return None


def _learn_nothing(_known: dict[str, Any], _args: Mapping[str, Any], _result: Mapping[str, Any], _check: bool) -> None:
    return None


class KnownHostAction(ActionBase):
    """Answer the module call from the play's knowledge of the host, or run it and learn from its result.

    Subclasses set ``MODULE`` (the module's fully qualified name), and may set ``answer(known, args)`` (the
    module's result when the play's knowledge shows the call would change nothing, else None), ``learn(known,
    args, result, check_mode)`` (record what the call left on the host) and ``RECORD`` (the module takes
    ``call_record``: its calls are recorded on the host and answered from the records of the last run).
    """

    MODULE = ""
    RECORD = True
    answer: Callable[..., dict[str, Any] | None] = staticmethod(_no_answer)
    learn: Callable[..., None] = staticmethod(_learn_nothing)

    def module_args(self, known: Mapping[str, Any], args: dict[str, Any], key: str | None) -> dict[str, Any]:
        """The arguments the module is called with (with the record key when it takes one)."""
        del known
        return {**args, "call_record": key} if key else args

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        play = self._task.get_play()._uuid  # pylint: disable=protected-access  # the play's id, unique per run
        known = host_knowledge.current(task_vars.get("ansible_facts"), play)
        args = dict(self._task.args)
        cls = type(self)
        key = call_key(cls.MODULE, args, code_digest()) if cls.RECORD and "call_record" not in args else None
        answer = cls.answer(known, args)
        how = "already on the host as this play found it: no call needed"
        if answer is None and key and isinstance(known.get("calls"), Mapping) and key in known["calls"]:
            answer = {**known["calls"][key], "changed": False}
            how = "as the last run left it (its call record matches the host): no call needed"
            cls.learn(known, args, answer, bool(self._play_context.check_mode))
            answer["ansible_facts"] = host_knowledge.facts(known)
        if answer is not None:
            result.update(answer)
            result["msg"] = how
            return result
        module_result = self._execute_module(
            module_name=cls.MODULE, module_args=self.module_args(known, args, key), task_vars=task_vars
        )
        # A failed call ends the play for the host: its result carries no knowledge (which would only make
        # the error message long).
        if isinstance(module_result, Mapping) and not module_result.get("failed"):
            cls.learn(known, args, module_result, bool(self._play_context.check_mode))
            module_result["ansible_facts"] = host_knowledge.facts(known)
            if isinstance(module_result.get("call_records"), Mapping):
                census = {"play": known["play"], "calls": module_result.pop("call_records")}
                module_result["ansible_facts"][host_knowledge.CALLS_FACT] = census
            elif module_result.get("changed") and known.get("calls"):
                # The census was taken before this change (or, in check mode, before what a real run would
                # change): a record of a later call may own what changed (the firewall reads the ports from
                # Dovecot's files). The rest of the play makes its calls.
                module_result["ansible_facts"][host_knowledge.CALLS_FACT] = {"play": known["play"], "calls": {}}
        result.update(module_result)
        return result
