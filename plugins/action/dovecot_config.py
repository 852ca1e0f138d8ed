# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of dovecot_config: no host call when this play already saw the files."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.plugin_utils import host_knowledge
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.known_action import KnownHostAction


def _answer(known: dict[str, Any], args: Mapping[str, Any]) -> dict[str, Any] | None:
    return host_knowledge.dovecot_answer(known, args, lambda text: hashlib.sha256(text.encode("utf-8")).hexdigest())


class ActionModule(KnownHostAction):
    """Runs dovecot_config unless the play's knowledge of the host shows it would change nothing."""

    MODULE = "postmaster.mailserver.dovecot_config"
    answer = staticmethod(_answer)
    learn = staticmethod(host_knowledge.learn_dovecot)
