# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of postmap: always runs the module; a table it changed ends the play's census of call records.

A later call whose record owns the table (postfix_config owns /etc/postfix) then runs on the host.
"""

from __future__ import annotations

from ansible_collections.postmaster.mailserver.plugins.plugin_utils.known_action import KnownHostAction


class ActionModule(KnownHostAction):
    """Runs postmap; when it changed something, the calls after it do not use the call records."""

    MODULE = "postmaster.mailserver.postmap"
    RECORD = False
