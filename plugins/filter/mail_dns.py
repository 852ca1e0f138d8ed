# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail_dns filter: the DNS records of mail domains as data and zone-file lines (documented in mail_dns.yml)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_mail_dns = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_dns")


def mail_dns(
    domains: Any,
    mx_host: str | None = None,
    ttl: int = 3600,
    resolved: Mapping[str, str] | None = None,
    name: str = "mail_dns_domains",
    *,
    dkim_keys: Any = None,
) -> list[dict[str, Any]]:
    """MX, SPF, DMARC, TLS-RPT, MTA-STS and DKIM records of each domain."""
    try:
        return _mail_dns.mail_dns(domains, mx_host=mx_host, ttl=ttl, resolved=resolved, name=name, dkim_keys=dkim_keys)
    except _mail_dns.MailDnsError as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"mail_dns: {exc}") from None


class FilterModule:
    """DNS record filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"mail_dns": mail_dns}
