# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""postsrsd's settings, validated and rendered: ``/etc/default/postsrsd`` and the Postfix fragment.

``check_settings`` validates the srs role's variables (without the ``srs_`` prefix) on the
controller, before the host changes, and again in the srs_config module. Errors name the variable
and the entry (``srs_local_domains[1]``). The render functions are pure.

Debian 12 and Debian 13 both ship postsrsd 1.10 (checked in the images: ``apt-cache policy``):
two TCP lookup tables (Postfix's ``tcp_table`` protocol) on loopback, the forward table rewrites
an envelope sender into ``SRS0=<hash>=<time>=<domain>=<local>@<srs domain>``, the reverse table
turns such an address back. The Debian unit starts ``/usr/share/postsrsd/postsrsd-systemd-launcher``,
which sources ``/etc/default/postsrsd`` as shell; every value written there is validated to
plain characters (domains, digits, an absolute path of plain characters), so sourcing it runs
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate import (
    MailValidationError,
    validate_domain,
)

HEADER = "# Managed by Ansible (postmaster.mailserver.srs_config); do not edit.\n"
SEPARATORS = ("=", "+", "-")
SETTING_KEYS = (
    "domain",
    "local_domains",
    "forward_port",
    "reverse_port",
    "separator",
    "hash_length",
    "hash_minimum",
    "restore_local_return_path",
)
#: The SRS hash: postsrsd takes 1 to 20 base64 characters; fewer than 4 is guessable.
MIN_HASH = 4
MAX_HASH = 20
_FILE_RE = re.compile(r"^/[A-Za-z0-9._+@=~/-]*\Z")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")


class SrsSettingsError(ValueError):
    """A setting that cannot become a working postsrsd configuration; the message names it."""


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _domain(value: Any, where: str) -> str:
    try:
        return validate_domain(value, where)
    except MailValidationError as exc:
        raise SrsSettingsError(str(exc)) from None


def check_domains(value: Any, where: str) -> list[str]:
    """A list of domains (a string is one domain), lower-cased, without repeats; may be empty."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence):
        raise SrsSettingsError(f"{where}: must be a list of domains, got {_describe(value)}")
    out: list[str] = []
    for index, item in enumerate(value):
        domain = _domain(item, f"{where}[{index}]")
        if domain not in out:
            out.append(domain)
    return out


def check_int(value: Any, where: str, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise SrsSettingsError(f"{where}: must be {what}, got {_describe(value)}")
    number = int(value)
    if not low <= number <= high:
        raise SrsSettingsError(f"{where}: must be from {low} to {high}, got {number}")
    return number


def check_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise SrsSettingsError(f"{where}: must be true or false, got {_describe(value)}")


def check_settings(settings: Any, prefix: str = "srs_") -> dict[str, Any]:
    """Validate the srs role's *settings* (keys of SETTING_KEYS); return them normalized.

    Errors name ``<prefix><key>`` and the entry.
    """
    if not isinstance(settings, Mapping):
        raise SrsSettingsError(f"{prefix.rstrip('_') or 'settings'}: must be a mapping, got {_describe(settings)}")
    unknown = sorted(str(key) for key in settings if key not in SETTING_KEYS)
    if unknown:
        raise SrsSettingsError(f"unknown settings {', '.join(prefix + key for key in unknown)}")
    if "domain" not in settings:
        raise SrsSettingsError(f"missing setting {prefix}domain")
    domain = _domain(settings["domain"], f"{prefix}domain")
    local = [item for item in check_domains(settings.get("local_domains"), f"{prefix}local_domains") if item != domain]
    forward = check_int(settings.get("forward_port", 10001), f"{prefix}forward_port", 1, 65535, "a TCP port number")
    reverse = check_int(settings.get("reverse_port", 10002), f"{prefix}reverse_port", 1, 65535, "a TCP port number")
    if forward == reverse:
        raise SrsSettingsError(
            f"{prefix}reverse_port: {reverse} is also {prefix}forward_port; postsrsd needs two ports"
        )
    separator = settings.get("separator", "=")
    if separator not in SEPARATORS:
        raise SrsSettingsError(f"{prefix}separator: must be one of {' '.join(SEPARATORS)}, got {_describe(separator)}")
    length = check_int(settings.get("hash_length", 4), f"{prefix}hash_length", MIN_HASH, MAX_HASH, "a number")
    minimum = check_int(settings.get("hash_minimum", length), f"{prefix}hash_minimum", MIN_HASH, MAX_HASH, "a number")
    if minimum > length:
        raise SrsSettingsError(
            f"{prefix}hash_minimum: {minimum} is more than {prefix}hash_length ({length}): "
            "postsrsd would refuse the addresses it makes"
        )
    restore = check_bool(settings.get("restore_local_return_path", True), f"{prefix}restore_local_return_path")
    return {
        "domain": domain,
        "local_domains": local,
        "forward_port": forward,
        "reverse_port": reverse,
        "separator": separator,
        "hash_length": length,
        "hash_minimum": minimum,
        "restore_local_return_path": restore,
    }


def check_plain_path(value: Any, where: str) -> str:
    """An absolute path of plain characters (it is sourced as shell by the launcher)."""
    if not isinstance(value, str) or not _FILE_RE.match(value) or "/../" in f"{value}/" or "/./" in f"{value}/":
        raise SrsSettingsError(f"{where}: must be an absolute path of plain characters, got {_describe(value)}")
    return value


def render_defaults(
    settings: Mapping[str, Any],
    secret_path: str,
    run_as: str = "postsrsd",
    chroot: str = "/var/lib/postsrsd",
    listen: str = "127.0.0.1",
) -> str:
    """``/etc/default/postsrsd``: the variables Debian's launcher reads (shell assignments of plain values)."""
    check_plain_path(secret_path, "secret_path")
    check_plain_path(chroot, "chroot")
    if not _USER_RE.match(run_as):
        raise SrsSettingsError(f"run_as: {run_as!r} is not a user name")
    if listen not in ("127.0.0.1", "::1"):
        raise SrsSettingsError(f"listen: postsrsd listens on loopback only, got {listen!r}")
    values = [
        ("SRS_DOMAIN", settings["domain"]),
        # The local domains are never rewritten (postsrsd -X; the SRS domain itself never is).
        ("SRS_EXCLUDE_DOMAINS", ",".join(settings["local_domains"])),
        ("SRS_SEPARATOR", settings["separator"]),
        ("SRS_SECRET", secret_path),
        ("SRS_HASHLENGTH", str(settings["hash_length"])),
        ("SRS_HASHMIN", str(settings["hash_minimum"])),
        ("SRS_FORWARD_PORT", str(settings["forward_port"])),
        ("SRS_REVERSE_PORT", str(settings["reverse_port"])),
        ("RUN_AS", run_as),
        ("SRS_LISTEN_ADDR", listen),
        ("CHROOT", chroot),
    ]
    return HEADER + "".join(f"{name}={value}\n" for name, value in values)


def expected_values(text: str) -> dict[str, str]:
    """The assignments of a rendered defaults file, as the launcher's shell should read them back."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _sep, value = line.partition("=")
            out[name] = value
    return out


def postfix_fragment(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The Postfix side: postsrsd's tables as canonical maps, for envelope addresses only.

    - The forward table rewrites the envelope sender (never a header: From stays as it is, and a
      DKIM signature of the origin is not broken).
    - The reverse table turns an SRS recipient (a bounce of a forwarded message) back into the
      original sender, so that the bounce reaches it.
    - With ``restore_local_return_path`` the LMTP client (delivery to Dovecot, the mailboxes role)
      asks the reverse table too (``lmtp_generic_maps``): a message from outside delivered to a local
      mailbox keeps its original Return-Path. Canonical maps are applied when mail enters, before
      Postfix knows where a recipient's copy goes, so without it the locally delivered copy would
      carry the SRS address.
    """
    forward = f"tcp:127.0.0.1:{settings['forward_port']}"
    reverse = f"tcp:127.0.0.1:{settings['reverse_port']}"
    main: dict[str, Any] = {
        "sender_canonical_maps": forward,
        "sender_canonical_classes": "envelope_sender",
        "recipient_canonical_maps": reverse,
        "recipient_canonical_classes": "envelope_recipient",
    }
    if settings.get("restore_local_return_path", True):
        main["lmtp_generic_maps"] = reverse
    return {"main": main}
