# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that turn virtual domains into tables, Maildirs and passwd entries (documented in *.yml)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes import (
    MailboxesError,
    passwd_entries,
    plan,
)


def _wrap(filter_name: str, func: Callable[[], Any]) -> Any:
    try:
        return func()
    except MailboxesError as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"{filter_name}: {exc}") from None


def virtual_mailboxes(domains: Any, base: str, name: str = "mailboxes_domains", text: bool = False) -> dict[str, Any]:
    """Check the domains; return domains, Maildirs and the vmailbox and alias table entries (no secrets)."""
    return _wrap("virtual_mailboxes", lambda: plan(domains, base, name, text))


def virtual_mailbox_passwd(domains: Any, name: str = "mailboxes_domains") -> list[dict[str, str]]:
    """Check the domains; return the users list of the mail_password module (with the secrets)."""
    return _wrap("virtual_mailbox_passwd", lambda: passwd_entries(domains, name))


class FilterModule:
    """Virtual mailbox filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "virtual_mailboxes": virtual_mailboxes,
            "virtual_mailbox_passwd": virtual_mailbox_passwd,
        }
