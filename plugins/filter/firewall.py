# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the firewall role: its rules, and the ufw changes that reach them (documented in *.yml)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.utils.display import Display
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_firewall_rules = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.firewall_rules")


def _wrap(filter_name: str, func: Callable[[], Any]) -> Any:
    try:
        return func()
    except _firewall_rules.FirewallError as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"{filter_name}: {exc}") from None


def firewall_rules(
    mail_ports: Any,
    *,
    ssh_port: Any = 22,
    admin_networks: Any = None,
    sasl_peers: Any = None,
    extra_rules: Any = None,
    session: str = "",
    connection: str = "",
    allow_unverified: Any = False,
    postfix_config_dir: Any = None,
    dovecot_config_dir: Any = None,
) -> list[dict[str, Any]]:
    """The firewall role's rules from the mail_ports result and its variables; refuse an SSH lockout.

    *connection* is the play's connection plugin (``ansible_connection``): without an SSH session
    in *session*, it decides whether unverifiable admin networks are refused or only warned about.
    The configuration directories, when given, must be absolute paths. Warnings are displayed.
    """
    found = mail_ports or {}
    if not isinstance(found, dict):
        raise AnsibleFilterError("firewall_rules: the input must be the result of postmaster.mailserver.mail_ports")
    try:  # -e gives a string
        allow_unverified = boolean(allow_unverified, strict=True)
    except TypeError:
        raise AnsibleFilterError(
            f"firewall_rules: {_firewall_rules.VARIABLES['unverified']}: must be true or false, got {allow_unverified!r}"
        ) from None
    warnings: list[str] = []

    def run() -> list[dict[str, Any]]:
        for key, value in (("postfix_config_dir", postfix_config_dir), ("dovecot_config_dir", dovecot_config_dir)):
            if value is not None:
                _firewall_rules.config_dir(value, _firewall_rules.VARIABLES[key])
        return _firewall_rules.build_rules(
            found.get("ports") or [],
            ssh_port_value=ssh_port,
            admin_networks=admin_networks or [],
            sasl_peers=sasl_peers or [],
            extra=extra_rules or [],
            sshd_ports=found.get("ssh_ports") or [],
            session=session or "",
            connection=connection or "",
            allow_unverified=allow_unverified,
            warnings=warnings,
        )

    result = _wrap("firewall_rules", run)
    for warning in warnings:
        Display().warning(f"firewall_rules: {warning}")
    return result


def firewall_ufw_plan(rule_set: Any, show_added: str) -> dict[str, list[dict[str, str]]]:
    """The ufw rules to add and to delete so that this collection's ufw rules are exactly *rule_set*."""
    return _wrap(
        "firewall_ufw_plan", lambda: _firewall_rules.ufw_plan(_firewall_rules.rules(rule_set), show_added or "")
    )


class FilterModule:
    """Firewall filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"firewall_rules": firewall_rules, "firewall_ufw_plan": firewall_ufw_plan}
