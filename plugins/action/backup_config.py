# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of backup_config: no host call when the last run's call record shows it would change nothing."""

from __future__ import annotations

from ansible_collections.postmaster.mailserver.plugins.plugin_utils.known_action import KnownHostAction


class ActionModule(KnownHostAction):
    """Runs backup_config unless its call record from the last run still matches the host."""

    MODULE = "postmaster.mailserver.backup_config"
