# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Conflicts between the variables of two roles, judged before the first role of a play changes the host.

A role that finds its variables in conflict with an earlier role's would stop only after that role
wrote its part (main.cf already lists a domain as local when the mailboxes role refuses it as virtual).
So the first validation of a play (the postfix role's, which every server play starts with) calls
:func:`check` with the variables of the other roles that the play defines, and with the play's role
names (``ansible_play_role_names``), and refuses every known conflict at once:

- a virtual domain (``mailboxes_domains[].name``) that is also local to Postfix (``postfix_mydestination``
  with ``$myhostname`` and ``$mydomain`` expanded) or a relay domain (``postfix_relay_domains``);
- (a warning, not an error) two SASL backends: the dovecot role (``dovecot_sasl_enabled``, default true)
  and the saslauthd role in one play. The play's role names do not say whether a ``when:`` applies them
  to different hosts, and the later of the two refuses on the host before it installs anything, leaving
  the first backend working;
- SMTP AUTH on port 25 (``dovecot_postfix_smtpd_sasl_auth_enable``, ``saslauthd_postfix_smtpd_sasl_auth_enable``,
  judged whenever the play defines them) while the postfix role offers no STARTTLS there (``postfix_tls_enabled`` false, or a
  ``smtpd_tls_security_level`` of none in ``postfix_smtpd_tls_security_level`` or ``postfix_main_extra``);
- a ``postfix_master_extra`` listener on a port of amavis (its own listener and its re-injection smtpd)
  while the amavis role is in the play or ``amavis_enabled`` is true.

A variable that is not defined in the play is given as None and is not judged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis.amavis_settings import (
    LISTEN_PORT,
    REINJECT_PORT,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.mailboxes import (
    local_and_virtual,
    local_domain_list,
)

#: The variables :func:`check` reads; any other key is refused (a typo would silently check nothing).
KEYS = (
    "postfix_myhostname",
    "postfix_mydomain",
    "postfix_mydestination",
    "postfix_relay_domains",
    "postfix_master_extra",
    "postfix_main_extra",
    "postfix_tls_enabled",
    "postfix_smtpd_tls_security_level",
    "mailboxes_domains",
    "dovecot_sasl_enabled",
    "dovecot_postfix_smtpd_sasl_auth_enable",
    "saslauthd_postfix_smtpd_sasl_auth_enable",
    "amavis_enabled",
)
_EXPANSION_RE = re.compile(r"\$(?:\{(myhostname|mydomain)\}|\((myhostname|mydomain)\)|(myhostname|mydomain)\b)")


class PlayConflictError(ValueError):
    """Two roles' variables contradict each other; the message names both."""


def _short(role: Any) -> str:
    """``postmaster.mailserver.postfix`` -> ``postfix``."""
    return str(role).rsplit(".", 1)[-1]


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else re.split(r"[\s,]+", str(value))
    return [str(item) for item in items if str(item).strip()]


def local_domains(play: Mapping[str, Any]) -> list[str]:
    """``postfix_mydestination`` with ``$myhostname`` and ``$mydomain`` expanded (tables left out), lower case."""
    values = {"myhostname": play.get("postfix_myhostname") or "", "mydomain": play.get("postfix_mydomain") or ""}

    def expand(match: re.Match[str]) -> str:
        return str(values[match.group(1) or match.group(2) or match.group(3)])

    expanded = [_EXPANSION_RE.sub(expand, item) for item in _names(play.get("postfix_mydestination"))]
    return [name for name in local_domain_list(expanded) if ":" not in name and "/" not in name and "$" not in name]


def _virtual_domains(value: Any) -> list[tuple[str, str]]:
    """(where, lower-case name) of each virtual domain; malformed entries are the mailboxes role's to report."""
    if not isinstance(value, (list, tuple)):
        return []
    return [
        (f"mailboxes_domains[{index}].name", entry["name"].strip().rstrip(".").lower())
        for index, entry in enumerate(value)
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str) and entry["name"].strip()
    ]


def _on(value: Any, default: bool) -> bool:
    """A role's boolean variable (None: not defined in the play, so the role's default)."""
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "on")
    return bool(value)


def _port(service: Mapping[str, Any]) -> int | None:
    name = str(service.get("name", ""))
    port = name.rsplit(":", 1)[-1]
    return int(port) if port.isdigit() else None


def check(play: Any, roles: Sequence[Any] = (), warnings: list[str] | None = None) -> list[str]:
    """Raise PlayConflictError listing every conflict between the roles' variables of *play*.

    *roles* are the play's role names (short or fully qualified). Returns the names of the
    conflicts that were judged (for the report of the task); what is only doubtful is appended to
    *warnings*.
    """
    if not isinstance(play, Mapping):
        raise PlayConflictError(f"the play's variables must be a mapping, got {type(play).__name__}")
    unknown = sorted(str(key) for key in play if key not in KEYS)
    if unknown:
        raise PlayConflictError(f"unknown variables {', '.join(unknown)} (known: {', '.join(KEYS)})")
    in_play = {_short(role) for role in roles or ()}
    errors: list[str] = []
    judged: list[str] = []

    virtual = _virtual_domains(play.get("mailboxes_domains"))
    if virtual:
        judged.append("local or virtual domain")
        local = local_domains(play)
        relay = [name.rstrip(".").lower() for name in _names(play.get("postfix_relay_domains"))]
        for where, domain in virtual:
            if domain in local:
                errors.append(local_and_virtual(where, domain, "(postfix_mydestination", local))
            if domain in relay:
                errors.append(
                    f"{where}: {domain} is also in postfix_relay_domains; a domain is either relayed or has "
                    "virtual mailboxes (mailboxes_domains), never both: Postfix would relay its mail elsewhere"
                )

    dovecot_sasl = "dovecot" in in_play and _on(play.get("dovecot_sasl_enabled"), True)
    if dovecot_sasl and "saslauthd" in in_play:
        judged.append("SASL backend")
        if warnings is not None:
            warnings.append(
                "dovecot_sasl_enabled: the dovecot and saslauthd roles are both in this play, and both would be "
                "Postfix's SASL backend; only one can be on a host (the later role refuses there): set "
                "dovecot_sasl_enabled: false, or apply the saslauthd role to other hosts only"
            )

    main_extra = play.get("postfix_main_extra")
    main_extra = main_extra if isinstance(main_extra, Mapping) else {}
    level = main_extra.get("smtpd_tls_security_level", play.get("postfix_smtpd_tls_security_level") or "may")
    tls = _on(play.get("postfix_tls_enabled"), True) and str(level).strip() in ("may", "encrypt")
    # These two are set only by an admin who wants AUTH on port 25, so they count whether or not their
    # role is listed in the play (a role applied in an earlier play reads the same inventory).
    for role, variable, active in (
        ("dovecot", "dovecot_postfix_smtpd_sasl_auth_enable", _on(play.get("dovecot_sasl_enabled"), True)),
        ("saslauthd", "saslauthd_postfix_smtpd_sasl_auth_enable", True),
    ):
        if active and _on(play.get(variable), False):
            judged.append(f"AUTH on port 25 ({role})")
            if not tls:
                errors.append(
                    f"{variable}: SMTP AUTH on port 25 needs STARTTLS, but the postfix role offers none there "
                    "(postfix_tls_enabled false, or a smtpd_tls_security_level of none in "
                    "postfix_smtpd_tls_security_level or postfix_main_extra): passwords would be sent in clear"
                )

    if _on(play.get("amavis_enabled"), "amavis" in in_play):
        judged.append("amavis ports")
        ports = {LISTEN_PORT: "amavis's own listener", REINJECT_PORT: "the smtpd amavis re-injects mail into"}
        extra = play.get("postfix_master_extra")
        for index, service in enumerate(extra if isinstance(extra, (list, tuple)) else []):
            if not isinstance(service, Mapping) or str(service.get("type", "")) != "inet":
                continue
            port = _port(service)
            if port in ports:
                errors.append(
                    f"postfix_master_extra[{index}]: the service {service.get('name')} listens on port {port}, "
                    f"{ports[port]} (the amavis role's 127.0.0.1:{port}); one of the two would fail to start. "
                    "Choose another port"
                )
    if errors:
        raise PlayConflictError(
            "conflicts between the roles' variables of this play (refused before any role changes the host):\n- "
            + "\n- ".join(errors)
        )
    return judged
