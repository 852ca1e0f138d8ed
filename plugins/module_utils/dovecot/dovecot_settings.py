# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The dovecot role's variables, checked on the controller before the host changes.

``doveconf -n`` accepts unknown mechanisms, ``ssl_min_protocol`` values and listeners that then break
Dovecot at its next start, and every value here is written into a conf.d file, so each is checked against
what the file can hold. Every problem is reported at once, each naming its variable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

MAIL_LOCATION_RE = re.compile(r"(maildir|mbox|sdbox|mdbox):[^:\s]+\Z")
CIPHER_LIST_RE = re.compile(r"[A-Za-z0-9!+:@=_.-]+\Z")
LISTEN_RE = re.compile(r"(\*|::|[A-Za-z0-9.:-]+|\[[0-9A-Fa-f:.]+\])\Z")
USERS_FILE_RE = re.compile(r"/[A-Za-z0-9_.+/-]+\Z")
DOT_COMPONENT_RE = re.compile(r"/\.\.?(/|\Z)")
CONCURRENCY_RE = re.compile(r"[0-9]{1,6}\Z")
# Dovecot's own listeners: the SASL listener may not take one of them.
MAIL_PORTS = (110, 143, 993, 995)


class DovecotSettingsError(Exception):
    """One or more of the dovecot role's variables are wrong; the message names each."""


def _json(value: Any) -> str:
    return json.dumps(value)


def _strings(value: Any) -> list[str]:
    """The items of a list (the keys of a mapping) as strings; nothing for anything else."""
    if isinstance(value, Mapping) or (isinstance(value, Sequence) and not isinstance(value, str)):
        return [str(item) for item in value]
    return []


def problems(settings: Mapping[str, Any]) -> list[str]:
    """Every problem of the dovecot role's variables (keys without the ``dovecot_`` prefix), in the role's order.

    ``release`` names the host's release (``Debian 13``), ``syntax`` the Dovecot syntax its vars file
    chose (empty: no file), ``protocol_packages`` the known protocols and ``auth_mechanisms_known`` the
    known mechanisms.
    """
    found = []
    if not settings.get("syntax"):
        found.append(
            f"{settings.get('release', '')} is not supported by the dovecot role: Debian 12 (Dovecot 2.3) and "
            "Debian 13 (Dovecot 2.4) are."
        )
    location = settings.get("mail_location")
    if not isinstance(location, str) or not MAIL_LOCATION_RE.match(location):
        found.append(
            "dovecot_mail_location must be DRIVER:PATH with a driver among maildir, mbox, sdbox and mdbox and a path "
            f"without ':' or whitespace, such as maildir:~/Maildir (got {_json(location)})."
        )
    ciphers = settings.get("ssl_cipher_list")
    if not isinstance(ciphers, str) or not CIPHER_LIST_RE.match(ciphers):
        found.append(
            "dovecot_ssl_cipher_list must be one OpenSSL cipher string (letters, digits and ! + : @ = _ . -), such as "
            f"ECDHE+AESGCM:!aNULL (got {_json(ciphers)})."
        )
    listen = settings.get("listen")
    users_file = settings.get("users_file")
    if (
        not all(LISTEN_RE.match(item) for item in _strings(listen))
        or not isinstance(users_file, str)
        or not USERS_FILE_RE.match(users_file)
        or DOT_COMPONENT_RE.search(users_file)
    ):
        found.append(
            "dovecot_listen must be addresses or host names (*, ::, 192.0.2.1, [2001:db8::1]), without spaces or line "
            f"breaks (got {_json(listen)}); dovecot_users_file must be an absolute path of letters, digits and "
            f"_ . + - / without '..' (got {_json(users_file)})."
        )
    known_protocols = _strings(settings.get("protocol_packages") or {})
    known_mechanisms = _strings(settings.get("auth_mechanisms_known") or [])
    protocols = _strings(settings.get("protocols"))
    mechanisms = _strings(settings.get("auth_mechanisms"))
    unknown_protocols = list(dict.fromkeys(item for item in protocols if item not in known_protocols))
    unknown_mechanisms = list(dict.fromkeys(item for item in mechanisms if item not in known_mechanisms))
    if unknown_protocols or unknown_mechanisms:
        found.append(
            f"dovecot_protocols must be among {', '.join(known_protocols)} "
            f"(unknown: {', '.join(unknown_protocols) or 'none'}); "
            f"dovecot_auth_mechanisms must be among {', '.join(known_mechanisms)} "
            f"(unknown: {', '.join(unknown_mechanisms) or 'none'})."
        )
    if not mechanisms or not protocols or not _strings(listen):
        found.append("Keep dovecot_auth_mechanisms, dovecot_protocols and dovecot_listen non-empty.")
    port = settings.get("sasl_inet_port")
    try:
        port_number = int(port)
    except (TypeError, ValueError):
        port_number = -1
    if not 0 <= port_number < 65536 or port_number in MAIL_PORTS:
        found.append(f"dovecot_sasl_inet_port must be 0 (no listener) or a free TCP port (got {port}).")
    limit = settings.get("lmtp_user_concurrency_limit")
    if not CONCURRENCY_RE.match(str(limit)):
        found.append(
            f"dovecot_lmtp_user_concurrency_limit must be a whole number, 0 for no limit (got {_json(limit)})."
        )
    return found


def check_settings(settings: Any) -> dict[str, Any]:
    """Check the dovecot role's variables; return them, or raise DovecotSettingsError naming every problem."""
    if not isinstance(settings, Mapping):
        raise DovecotSettingsError("the dovecot settings must be a mapping")
    found = problems(settings)
    if found:
        raise DovecotSettingsError(" ".join(found))
    return dict(settings)
