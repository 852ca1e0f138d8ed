# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that validate mail addresses and domains (documented in *.yml)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.module_utils.mail_validate import (
    MailValidationError,
    validate_address,
    validate_addresses,
    validate_domain,
)


def _wrap(filter_name: str, func: Callable[[], Any]) -> Any:
    try:
        return func()
    except MailValidationError as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"{filter_name}: {exc}") from None


def mail_address(value: Any, name: str = "address", catchall: bool = False) -> str:
    """Validate one address; return it with the domain in lower case."""
    return _wrap("mail_address", lambda: validate_address(value, name, catchall))


def mail_addresses(value: Any, name: str = "addresses", catchall: bool = False) -> list[str]:
    """Validate a list of addresses; return them with their domains in lower case."""
    return _wrap("mail_addresses", lambda: validate_addresses(value, name, catchall))


def mail_domain(value: Any, name: str = "domain") -> str:
    """Validate a domain name; return it in lower case."""
    return _wrap("mail_domain", lambda: validate_domain(value, name))


class FilterModule:
    """Mail address and domain filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "mail_address": mail_address,
            "mail_addresses": mail_addresses,
            "mail_domain": mail_domain,
        }
