# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""postscreen on port 25 and anvil's rate limits: the postfix role's typed values for them.

postscreen answers port 25 in front of smtpd: a client that talks before the greeting (pregreet),
or whose address the DNS lists weigh at the threshold or above, is refused at RCPT TO; the
networks of ``mynetworks`` skip every test; a client that passes is handed to the ``smtpd pass``
service in the same connection. Submission (587, 465) never goes through postscreen.

anvil counts per client on the smtpd that takes mail from outside: connections and messages per
time unit, and recipients per message; ``mynetworks`` is exempt (Postfix's default
``smtpd_client_event_limit_exceptions``), and so are the authenticated submission services
(their ``-o`` options turn the rates off).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate import host_name_problem, kind

#: A DNS list's answer filter: four octets, each a number or a [set] of numbers and ranges (127.0.0.[2..11]).
_OCTET = r"(?:[0-9]{1,3}|\[[0-9]{1,3}(?:\.\.[0-9]{1,3})?(?:;[0-9]{1,3}(?:\.\.[0-9]{1,3})?)*\])"
_FILTER_RE = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{3}}\Z")
_NUMBER_RE = re.compile(r"[0-9]+")

WEIGHT_RANGE = (-100, 100)
THRESHOLD_RANGE = (1, 1000)
TIME_UNIT_RANGE = (10, 3600)
RATE_RANGE = (0, 100000)
RECIPIENT_RANGE = (1, 100000)

#: The services postscreen adds (Postfix's master.cf sample); smtp/inet becomes postscreen.
_PASS = {"name": "smtpd", "type": "pass", "private": "-", "unpriv": "-", "wakeup": "-", "maxproc": "-",
         "command": "smtpd"}  # fmt: skip
_DNSBLOG = {"name": "dnsblog", "type": "unix", "private": "-", "unpriv": "-", "wakeup": "-", "maxproc": "0",
            "command": "dnsblog"}  # fmt: skip
_TLSPROXY = {"name": "tlsproxy", "type": "unix", "private": "-", "unpriv": "-", "wakeup": "-", "maxproc": "0",
             "command": "tlsproxy"}  # fmt: skip

#: The -o options that exempt an authenticated submission service from the rate limits.
SUBMISSION_EXEMPT = {"smtpd_client_connection_rate_limit": "0", "smtpd_client_message_rate_limit": "0"}


@dataclass
class Site:
    """One DNS list of postscreen: its zone, an answer filter (or None) and its weight."""

    zone: str
    weight: int
    filter: str | None = None

    def render(self) -> str:
        return f"{self.zone}{'=' + self.filter if self.filter else ''}*{self.weight}"


@dataclass
class Screen:
    """postscreen (None when off) and the rate limits, checked."""

    enabled: bool = False
    sites: list[Site] = field(default_factory=list)
    threshold: int = 1
    connection_rate: int = 0
    message_rate: int = 0
    recipient_limit: int = 1000
    time_unit: int = 60

    def main(self) -> dict[str, Any]:
        """The main.cf parameters of postscreen and the rate limits."""
        params: dict[str, Any] = {
            "smtpd_client_connection_rate_limit": self.connection_rate,
            "smtpd_client_message_rate_limit": self.message_rate,
            "smtpd_recipient_limit": self.recipient_limit,
            "anvil_rate_time_unit": f"{self.time_unit}s",
        }
        if self.enabled:
            params.update(
                {
                    "postscreen_access_list": ["permit_mynetworks"],
                    "postscreen_greet_action": "enforce",
                    "postscreen_dnsbl_action": "enforce",
                    "postscreen_dnsbl_threshold": self.threshold,
                }
            )
            if self.sites:
                params["postscreen_dnsbl_sites"] = [site.render() for site in self.sites]
        return params

    def master(self, services: list[dict[str, Any]], chroot: bool) -> list[dict[str, Any]]:
        """*services* with smtp/inet answered by postscreen, and its helpers added (when on)."""
        if not self.enabled:
            return services
        result = []
        for service in services:
            if service.get("name") == "smtp" and service.get("type") == "inet":
                jail = service.get("chroot", "y" if chroot else "n")
                stock = {key: value for key, value in service.items() if key != "args"}
                result.append({**stock, "maxproc": "1", "command": "postscreen"})
                result.extend({**extra, "chroot": jail} for extra in (_PASS, _DNSBLOG, _TLSPROXY))
            else:
                result.append(service)
        return result


def _int(value: Any, name: str, bounds: tuple[int, int], errors: list[str]) -> int | None:
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(f"{name}: must be a whole number, got {value!r} ({kind(value)})")
        return None
    low, high = bounds
    if not low <= value <= high:
        errors.append(f"{name}: must be between {low} and {high}, got {value}")
        return None
    return value


def check_zone(value: Any, name: str, errors: list[str]) -> str | None:
    """The DNS list zone *value* in lower case, or None with the problem in *errors*."""
    if isinstance(value, str):
        value = value.strip()
    problem = host_name_problem(value) if isinstance(value, str) else f"it is a {kind(value)}, not a string"
    if problem is None and "." not in value:
        problem = "a DNS list zone has two labels or more (zen.spamhaus.org)"
    if problem:
        errors.append(f"{name}: {value!r} is not a DNS list zone: {problem}")
        return None
    return value.lower()


def check_screen(settings: Mapping[str, Any], rbl_zones: list[str], errors: list[str]) -> Screen:
    """The postscreen and rate-limit variables of *settings*, checked; problems go to *errors*.

    Each zone of ``postfix_rbl_zones`` (*rbl_zones*, checked by the caller) is a postscreen site
    too, weighing the threshold: a listing refuses the client on its own, as reject_rbl_client does.
    """
    screen = Screen()
    enabled = settings["postfix_postscreen_enabled"]
    if not isinstance(enabled, bool):
        errors.append(f"postfix_postscreen_enabled: must be true or false, got {enabled!r}")
    screen.enabled = enabled is True
    threshold = _int(settings["postfix_postscreen_dnsbl_threshold"], "postfix_postscreen_dnsbl_threshold",
                     THRESHOLD_RANGE, errors)  # fmt: skip
    screen.threshold = threshold or 1
    sites = settings["postfix_postscreen_dnsbl_sites"]
    if sites is None:
        sites = []
    if not isinstance(sites, list):
        errors.append(f"postfix_postscreen_dnsbl_sites: must be a list, got {kind(sites)}")
        sites = []
    seen: dict[str, str] = {}
    for index, given in enumerate(sites):
        where = f"postfix_postscreen_dnsbl_sites[{index}]"
        entry = {"zone": given} if isinstance(given, str) else given
        if not isinstance(entry, Mapping):
            errors.append(f"{where}: must be a zone or a mapping with zone, weight and filter, got {kind(entry)}")
            continue
        unknown = sorted(set(entry) - {"zone", "weight", "filter"})
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(unknown)} (zone, weight, filter)")
            continue
        zone = check_zone(entry.get("zone"), f"{where}.zone", errors)
        weight = _int(entry.get("weight", 1), f"{where}.weight", WEIGHT_RANGE, errors)
        if weight == 0:
            errors.append(f"{where}.weight: 0 would make the list count for nothing; remove the entry instead")
            weight = None
        answer = entry.get("filter")
        if answer is not None and (not isinstance(answer, str) or not _FILTER_RE.match(answer)):
            errors.append(
                f"{where}.filter: {answer!r} is not an answer filter such as 127.0.0.2 or 127.0.0.[2..11] "
                "(four octets, each a number or a [set] of numbers and ranges separated by ;)"
            )
            continue
        if zone is None or weight is None:
            continue
        key = f"{zone}={answer}"
        if key in seen:
            errors.append(f"{where}: {zone} is listed twice (also {seen[key]})")
            continue
        seen[key] = where
        screen.sites.append(Site(zone, weight, answer))
    for zone in rbl_zones:
        if f"{zone}=None" not in seen:
            screen.sites.append(Site(zone, screen.threshold))
    if screen.sites and not any(site.weight > 0 for site in screen.sites):
        errors.append("postfix_postscreen_dnsbl_sites: every weight is negative, so no list can refuse a client")
    screen.connection_rate = _int(settings["postfix_client_connection_rate_limit"],
                                  "postfix_client_connection_rate_limit", RATE_RANGE, errors) or 0  # fmt: skip
    screen.message_rate = _int(settings["postfix_client_message_rate_limit"],
                               "postfix_client_message_rate_limit", RATE_RANGE, errors) or 0  # fmt: skip
    screen.recipient_limit = _int(settings["postfix_recipient_limit"], "postfix_recipient_limit",
                                  RECIPIENT_RANGE, errors) or 1000  # fmt: skip
    screen.time_unit = _int(settings["postfix_anvil_rate_time_unit"], "postfix_anvil_rate_time_unit",
                            TIME_UNIT_RANGE, errors) or 60  # fmt: skip
    return screen
