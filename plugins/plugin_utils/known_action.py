# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The base of the action plugins that skip a configuration module call this play already knows the answer to."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.postmaster.mailserver.plugins.plugin_utils import host_knowledge


class KnownHostAction(ActionBase):
    """Answer the module call from the play's knowledge of the host, or run it and learn from its result.

    Subclasses set ``MODULE`` (the module's fully qualified name), ``answer(known, args)`` (the module's result
    when the knowledge shows the call would change nothing, else None) and ``learn(known, args, result,
    check_mode)`` (record what the call left on the host).
    """

    MODULE = ""
    answer: Callable[..., dict[str, Any] | None]
    learn: Callable[..., None]

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        play = self._task.get_play()._uuid  # pylint: disable=protected-access  # the play's id, unique per run
        known = host_knowledge.current(task_vars.get("ansible_facts"), play)
        args = dict(self._task.args)
        answer = type(self).answer(known, args)
        if answer is not None:
            result.update(answer)
            result["msg"] = "already on the host as this play found it: no call needed"
            return result
        module_result = self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars)
        if isinstance(module_result, Mapping):
            type(self).learn(known, args, module_result, bool(self._play_context.check_mode))
            module_result["ansible_facts"] = {host_knowledge.FACT: known}
        result.update(module_result)
        return result
