# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mailboxes role's variables other than its domains, checked on the controller before the host changes.

The domains, users, aliases and catch-alls are checked by ``plan`` (mailboxes.py); this takes its result
and the role's other variables, so that the role checks everything in one controller task.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

VMAIL_BASE_RE = re.compile(r"/\S*[^/\s]\Z")
USERS_FILE_RE = re.compile(r"/[A-Za-z0-9_.+/-]+\Z")
DOT_COMPONENT_RE = re.compile(r"/\.\.?(/|\Z)")
LOGIN_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")


class MailboxesSettingsError(ValueError):
    """A variable of the mailboxes role is wrong; the message names it."""


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _problems(planned: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    found = []
    applied = settings.get("applied")
    domains = list(planned.get("domains") or [])
    if settings.get("domains_given") and isinstance(applied, Mapping) and list(applied.get("domains") or []) != domains:
        found.append(
            f"Virtual domains were already given in this play through {applied.get('source', '')} "
            f"({', '.join(map(str, applied.get('domains') or []))}); give all virtual users in one place, "
            f"mailboxes_domains (got {', '.join(map(str, domains))})."
        )
    if not settings.get("template"):
        found.append(
            f"{settings.get('release', '')} is not supported by the mailboxes role: Debian 12 (Dovecot 2.3) and "
            "Debian 13 (Dovecot 2.4) are."
        )
    low, high = int(settings.get("id_min", 500)), int(settings.get("id_max", 65533))
    uid, gid = _int(settings.get("vmail_uid")), _int(settings.get("vmail_gid"))
    base, users_file = settings.get("vmail_base"), settings.get("users_file")
    users = settings.get("system_users")
    names = (
        [str(user.get("name")) for user in users if isinstance(user, Mapping)]
        if isinstance(users, Sequence) and not isinstance(users, str)
        else []
    )
    if (
        uid is None
        or not low <= uid <= high
        or gid is None
        or not low <= gid <= high
        or not isinstance(base, str)
        or not VMAIL_BASE_RE.match(base)
        or not isinstance(users_file, str)
        or not USERS_FILE_RE.match(users_file)
        or DOT_COMPONENT_RE.search(users_file)
        or len(names) != len(users or [])
        or not all(LOGIN_RE.match(name) for name in names)
        or len(set(names)) != len(names)
        or {"root", str(settings.get("vmail_user"))} & set(names)
    ):
        found.append(
            f"mailboxes_vmail_uid and mailboxes_vmail_gid must be between {low} and {high} (got "
            f"{settings.get('vmail_uid')}/{settings.get('vmail_gid')}; Dovecot refuses uids below its "
            "first_valid_uid); mailboxes_vmail_base must be an absolute path without a trailing slash or whitespace "
            f"(got {json.dumps(base)}); mailboxes_dovecot_users_file must be an absolute path of letters, digits and "
            f"_ . + - / without '..' (got {json.dumps(users_file)}); mailboxes_system_users names must be unique "
            f"lower-case login names other than root and {settings.get('vmail_user')} (got {', '.join(names)})."
        )
    return found


def check_settings(planned: Any, settings: Any) -> dict[str, Any]:
    """Check the role's other variables next to *planned* (the result of ``plan``); return *planned*.

    *settings*: ``release`` (such as ``Debian 13``), ``template`` (the Dovecot include's template chosen by
    the per-release vars file; empty: none), ``vmail_uid``, ``vmail_gid``, ``vmail_user``, ``vmail_base``,
    ``users_file``, ``system_users``, ``id_min``, ``id_max``, ``domains_given`` (whether mailboxes_domains
    is not empty) and ``applied`` (the domains and their source that an earlier run of the role in this play
    gave, or None).
    """
    if not isinstance(planned, Mapping) or not isinstance(settings, Mapping):
        raise MailboxesSettingsError("mailboxes_settings expects the result of virtual_mailboxes and a mapping")
    found = _problems(planned, settings)
    if found:
        raise MailboxesSettingsError(" ".join(found))
    return dict(planned)
