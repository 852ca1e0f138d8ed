# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The play's knowledge of a host, as the action plugins of the configuration modules recorded it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible.utils.vars import get_unique_id
from ansible_collections.postmaster.mailserver.plugins.plugin_utils import host_knowledge


def known_host(known: Any) -> Mapping[str, Any]:
    """What this run's configuration module calls found on the host (empty when nothing is known).

    *known* is the fact ``postmaster_host`` (``ansible_facts.postmaster_host | default(none)``).
    """
    return host_knowledge.this_run(known, get_unique_id().rsplit("-", 1)[0])


class FilterModule:
    """Host knowledge filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"known_host": known_host}
