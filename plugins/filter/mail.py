# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that validate mail addresses, domains and virtual mailboxes (documented in *.yml)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_mail_validate = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate")
_play_conflicts = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.common.play_conflicts")
_mailboxes = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.mailboxes")
_mailboxes_settings = LazyModule(
    "ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.mailboxes_settings"
)


def _wrap(filter_name: str, func: Callable[[], Any]) -> Any:
    try:
        return func()
    except (_mail_validate.MailValidationError, _mailboxes.MailboxesError, _play_conflicts.PlayConflictError) as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"{filter_name}: {exc}") from None


def mail_address(value: Any, name: str = "address", catchall: bool = False) -> str:
    """Validate one address; return it with the domain in lower case."""
    return _wrap("mail_address", lambda: _mail_validate.validate_address(value, name, catchall))


def mail_addresses(value: Any, name: str = "addresses", catchall: bool = False) -> list[str]:
    """Validate a list of addresses; return them with their domains in lower case."""
    return _wrap("mail_addresses", lambda: _mail_validate.validate_addresses(value, name, catchall))


def mail_play_conflicts(play: Any, roles: Any = ()) -> list[str]:
    """Refuse conflicts between the roles' variables of a play, before the first role changes the host."""
    warnings: list[str] = []
    judged = _wrap("mail_play_conflicts", lambda: _play_conflicts.check(play, roles or (), warnings))
    for warning in warnings:
        Display().warning(warning)
    return judged


def mail_domain(value: Any, name: str = "domain") -> str:
    """Validate a domain name; return it in lower case."""
    return _wrap("mail_domain", lambda: _mail_validate.validate_domain(value, name))


def virtual_mailboxes(
    domains: Any, base: str, name: str = "mailboxes_domains", text: bool = False, local_domains: Any = None
) -> dict[str, Any]:
    """Check the domains; return domains, Maildirs and the vmailbox and alias table entries (no secrets)."""
    return _wrap("virtual_mailboxes", lambda: _mailboxes.plan(domains, base, name, text, local_domains))


def mailboxes_settings(planned: Any, settings: Any) -> dict[str, Any]:
    """Check the mailboxes role's other variables next to the result of virtual_mailboxes; return that result."""
    try:
        return _mailboxes_settings.check_settings(planned, settings)
    except _mailboxes_settings.MailboxesSettingsError as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"mailboxes_settings: {exc}") from None


def virtual_mailbox_passwd(domains: Any, name: str = "mailboxes_domains") -> list[dict[str, str]]:
    """Check the domains; return the users list of the mail_password module (with the secrets)."""
    return _wrap("virtual_mailbox_passwd", lambda: _mailboxes.passwd_entries(domains, name))


def virtual_users_domains(users: Any, name: str = "dovecot_virtual_users") -> list[dict[str, Any]]:
    """Group a flat user@domain list into mailboxes_domains entries (keeps the secrets)."""
    return _wrap("virtual_users_domains", lambda: _mailboxes.users_to_domains(users, name))


class FilterModule:
    """Mail address, domain and virtual mailbox filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "mail_address": mail_address,
            "mail_addresses": mail_addresses,
            "mail_domain": mail_domain,
            "mail_play_conflicts": mail_play_conflicts,
            "mailboxes_settings": mailboxes_settings,
            "virtual_mailboxes": virtual_mailboxes,
            "virtual_mailbox_passwd": virtual_mailbox_passwd,
            "virtual_users_domains": virtual_users_domains,
        }
