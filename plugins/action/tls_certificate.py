# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of tls_certificate: no host call while the last run's call record matches the host.

The record of a call lives until the certificate comes within its renewal time.
"""

from __future__ import annotations

from ansible_collections.postmaster.mailserver.plugins.plugin_utils.known_action import KnownHostAction


class ActionModule(KnownHostAction):
    """Runs tls_certificate unless its call record from the last run still matches the host."""

    MODULE = "postmaster.mailserver.tls_certificate"
