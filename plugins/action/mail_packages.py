# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of mail_packages: no host call when this play already saw the packages and paths."""

from __future__ import annotations

from ansible_collections.postmaster.mailserver.plugins.plugin_utils import host_knowledge
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.known_action import KnownHostAction


class ActionModule(KnownHostAction):
    """Runs mail_packages unless the play's knowledge of the host already answers it."""

    MODULE = "postmaster.mailserver.mail_packages"
    answer = staticmethod(host_knowledge.packages_answer)
    learn = staticmethod(host_knowledge.learn_packages)
