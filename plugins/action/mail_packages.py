# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of mail_packages: no host call when this play already saw the packages and paths.

The play's first call takes the census of the configuration modules' call records (call_records).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.plugin_utils import host_knowledge
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.known_action import KnownHostAction


class ActionModule(KnownHostAction):
    """Runs mail_packages unless the play's knowledge of the host already answers it."""

    MODULE = "postmaster.mailserver.mail_packages"
    RECORD = False
    answer = staticmethod(host_knowledge.packages_answer)
    learn = staticmethod(host_knowledge.learn_packages)

    def module_args(self, known: Mapping[str, Any], args: dict[str, Any], key: str | None) -> dict[str, Any]:
        del key
        return {**args, "call_records": True} if known.get("calls") is None else args
