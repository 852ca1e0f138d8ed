# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The verify role's filters: plan the probe, list the problems, write the report (documented in *.yml)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_verify = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.client.verify")


def verify_probe_plan(
    mail_ports: Mapping[str, Any] | None,
    *,
    services: Sequence[str] = (),
    ports: Mapping[str, Any] | None = None,
    closed_ports: Sequence[Any] = (),
    user: str = "",
    send: bool = True,
    relay_check: bool = True,
    eicar: bool = False,
) -> dict[str, Any]:
    """The mail_probe options: the services the server offers, the ports that must be closed, what to send."""
    try:
        return _verify.plan(
            mail_ports,
            services=services or (),
            ports=ports or {},
            closed_ports=closed_ports or (),
            user=user or "",
            send=send,
            relay_check=relay_check,
            eicar=eicar,
        )
    except _verify.VerifyError as exc:
        raise AnsibleFilterError(f"verify_probe_plan: {exc}") from None


def verify_problems(
    probe: Mapping[str, Any],
    queue: Mapping[str, Any] | None = None,
    max_age: int = 0,
    virus_log: str | None = None,
) -> list[str]:
    """What is wrong, one line each."""
    return _verify.problems(probe, queue or None, int(max_age or 0), virus_log)


def verify_report(
    probe: Mapping[str, Any],
    *,
    plan: Mapping[str, Any] | None = None,
    mail_ports: Mapping[str, Any] | None = None,
    queue: Mapping[str, Any] | None = None,
    dns: Sequence[Mapping[str, Any]] = (),
    probe_from: str = "",
    max_age: int = 0,
    virus_log: str | None = None,
) -> str:
    """The human summary as text; a warning when the certificates were not verified (verify_insecure_tls)."""
    if isinstance(probe, Mapping) and probe.get("tls_verified") is False:
        Display().warning(f"verify_insecure_tls: {_verify.trust_line(probe)}")
    return "\n".join(
        _verify.report(
            probe,
            plan=plan,
            mail_ports=mail_ports or None,
            queue=queue or None,
            dns=dns or (),
            probe_from=probe_from or "",
            max_age=int(max_age or 0),
            virus_log=virus_log,
        )
    )


class FilterModule:
    """The verify role's filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "verify_probe_plan": verify_probe_plan,
            "verify_problems": verify_problems,
            "verify_report": verify_report,
        }
