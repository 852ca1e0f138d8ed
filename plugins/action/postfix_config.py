# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of postfix_config: no host call when this play already saw the fragments and tables."""

from __future__ import annotations

from ansible_collections.postmaster.mailserver.plugins.plugin_utils import host_knowledge
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.known_action import KnownHostAction


class ActionModule(KnownHostAction):
    """Runs postfix_config unless the play's knowledge of the host shows it would change nothing."""

    MODULE = "postmaster.mailserver.postfix_config"
    answer = staticmethod(host_knowledge.postfix_answer)
    learn = staticmethod(host_knowledge.learn_postfix)
