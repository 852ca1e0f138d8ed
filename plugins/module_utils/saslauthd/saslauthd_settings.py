# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The saslauthd role's variables, checked on the controller before the host changes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

# The socket directory lands in /etc/default/saslauthd (a shell-sourced file) and in a tmpfiles.d line
# that runs at once: a plain absolute path below Postfix's spool or /run.
SOCKET_DIR_RE = re.compile(r"/(var/spool/postfix|run)(/[A-Za-z0-9_][A-Za-z0-9_.-]*)+\Z")
DOT_COMPONENT_RE = re.compile(r"/\.\.?(/|\Z)")


class SaslauthdSettingsError(ValueError):
    """A variable of the saslauthd role is wrong; the message names it."""


def problems(settings: Mapping[str, Any]) -> list[str]:
    """Every problem of ``mech_list`` (among ``mech_choices``) and ``socket_dir`` (not ``link``)."""
    found = []
    choices = [str(item) for item in settings.get("mech_choices") or []]
    mechs = settings.get("mech_list")
    mechs = [str(item) for item in mechs] if isinstance(mechs, Sequence) and not isinstance(mechs, str) else []
    unknown = list(dict.fromkeys(item for item in mechs if item not in choices))
    if not mechs or unknown:
        found.append(
            f"saslauthd_mech_list must be a non-empty list among {', '.join(choices)}: saslauthd only checks "
            f"plaintext passwords (unknown: {', '.join(unknown) or 'none'})."
        )
    socket_dir, link = settings.get("socket_dir"), settings.get("link")
    if (
        not isinstance(socket_dir, str)
        or not SOCKET_DIR_RE.match(socket_dir)
        or DOT_COMPONENT_RE.search(socket_dir)
        or socket_dir == link
    ):
        found.append(
            "saslauthd_socket_dir must be an absolute directory below /var/spool/postfix or /run, made of letters, "
            "digits, '_', '.' and '-' only (no space, quote, '$' or line break, no '..'), and not "
            f"{link} itself (got {json.dumps(socket_dir)})."
        )
    return found


def check_settings(settings: Any) -> dict[str, Any]:
    """Check the saslauthd role's variables; return them, or raise naming every problem."""
    if not isinstance(settings, Mapping):
        raise SaslauthdSettingsError("the saslauthd settings must be a mapping")
    found = problems(settings)
    if found:
        raise SaslauthdSettingsError(" ".join(found))
    return dict(settings)
