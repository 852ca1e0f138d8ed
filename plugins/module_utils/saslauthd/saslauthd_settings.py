# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The saslauthd role's variables, checked on the controller before the host changes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

# The socket directory lands in /etc/default/saslauthd (a shell-sourced file) and in a tmpfiles.d line
# that runs at once: a plain absolute path below Postfix's spool or /run.
SOCKET_DIR_RE = re.compile(r"/(var/spool/postfix|run)(/[A-Za-z0-9_][A-Za-z0-9_.-]*)+\Z")
DOT_COMPONENT_RE = re.compile(r"/\.\.?(/|\Z)")


class SaslauthdSettingsError(ValueError):
    """A variable of the saslauthd role is wrong; the message names it."""


def problems(settings: Mapping[str, Any]) -> list[str]:
    """Every problem of ``mech_list`` (among ``mech_choices``) and ``socket_dir`` (not ``link``)."""
    found = []
    choices = [str(item) for item in settings.get("mech_choices") or []]
    mechs = settings.get("mech_list")
    mechs = [str(item) for item in mechs] if isinstance(mechs, Sequence) and not isinstance(mechs, str) else []
    unknown = list(dict.fromkeys(item for item in mechs if item not in choices))
    if not mechs or unknown:
        found.append(
            f"saslauthd_mech_list must be a non-empty list among {', '.join(choices)}: saslauthd only checks "
            f"plaintext passwords (unknown: {', '.join(unknown) or 'none'})."
        )
    socket_dir, link = settings.get("socket_dir"), settings.get("link")
    if (
        not isinstance(socket_dir, str)
        or not SOCKET_DIR_RE.match(socket_dir)
        or DOT_COMPONENT_RE.search(socket_dir)
        or socket_dir == link
    ):
        found.append(
            "saslauthd_socket_dir must be an absolute directory below /var/spool/postfix or /run, made of letters, "
            "digits, '_', '.' and '-' only (no space, quote, '$' or line break, no '..'), and not "
            f"{link} itself (got {json.dumps(socket_dir)})."
        )
    return found


def check_settings(settings: Any) -> dict[str, Any]:
    """Check the saslauthd role's variables; return them, or raise naming every problem.

    With ``postfix_config_dir`` and ``smtpd_sasl_auth_enable`` given, the result also holds
    ``fragment``, the role's Postfix fragment (:func:`postfix_fragment`).
    """
    if not isinstance(settings, Mapping):
        raise SaslauthdSettingsError("the saslauthd settings must be a mapping")
    found = problems(settings)
    auth = settings.get("smtpd_sasl_auth_enable", False)
    if not isinstance(auth, bool):
        found.append(f"saslauthd_postfix_smtpd_sasl_auth_enable must be true or false (got {json.dumps(auth)}).")
    if found:
        raise SaslauthdSettingsError(" ".join(found))
    checked = dict(settings)
    if "postfix_config_dir" in settings:
        checked["fragment"] = postfix_fragment(settings["postfix_config_dir"], auth)
    return checked


def postfix_fragment(config_dir: str, auth_on_25: bool) -> dict[str, Any]:
    """The saslauthd role's fragment for postfix_config: Cyrus SASL through smtpd.conf, AUTH on submission/smtps.

    ``cyrus_sasl_config_path`` names where smtpd.conf is read from: Debian 12's Postfix had it compiled
    in, Debian 13's sets it in its stock main.cf, which the assembled main.cf replaces. *auth_on_25*
    also offers AUTH on port 25 (``smtpd_sasl_auth_enable``).
    """
    main: dict[str, Any] = {
        "smtpd_sasl_type": "cyrus",
        "smtpd_sasl_path": "smtpd",
        "cyrus_sasl_config_path": f"{config_dir.rstrip('/')}/sasl",
        "postmaster_mua_sasl_auth_enable": True,
    }
    if auth_on_25:
        main["smtpd_sasl_auth_enable"] = True
    return {"main": main, "overrides": ["postmaster_mua_sasl_auth_enable"]}


# -- the saslauthd_config module's settings and the files built from them -----------------------

HEADER = "# Managed by Ansible (postmaster.mailserver.saslauthd_config); do not edit.\n"
#: The link non-chrooted clients (smtpd without chroot, testsaslauthd) find the socket through.
LINK = "/run/saslauthd"
MECH_CHOICES = ("plain", "login")
#: A saslauthd authentication mechanism's name, as ``saslauthd -v`` lists them.
MECHANISM_RE = re.compile(r"[a-z][a-z0-9]{0,31}\Z")
MAX_THREADS = 1024


def check_config(settings: Any) -> dict[str, Any]:
    """Check the saslauthd_config module's *settings*; return them complete, or raise naming every problem.

    ``mechanisms`` (saslauthd's ``-a``: one name; whether this saslauthd offers it is asked of
    ``saslauthd -v`` on the host), ``threads`` (0 to 1024), ``mech_list`` (among plain and login) and
    ``socket_dir`` (as :func:`problems` says), each named ``settings.<key>``.
    """
    if not isinstance(settings, Mapping):
        raise SaslauthdSettingsError("settings must be a mapping")
    unknown = sorted(set(settings) - {"mechanisms", "threads", "mech_list", "socket_dir"})
    found = [f"settings.{key} is not a saslauthd_config setting." for key in unknown]
    mechanisms = settings.get("mechanisms", "pam")
    if not isinstance(mechanisms, str) or not MECHANISM_RE.match(mechanisms):
        found.append(
            f"settings.mechanisms must be one saslauthd mechanism name such as pam or shadow (got {json.dumps(mechanisms)})."
        )
    threads = settings.get("threads", 5)
    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= MAX_THREADS:
        found.append(f"settings.threads must be a whole number from 0 to {MAX_THREADS} (got {json.dumps(threads)}).")
    checked = {
        "mech_list": list(settings.get("mech_list", list(MECH_CHOICES))),
        "mech_choices": list(MECH_CHOICES),
        "socket_dir": settings.get("socket_dir"),
        "link": LINK,
    }
    found += [f"settings.{item.removeprefix('saslauthd_')}" for item in problems(checked)]
    if found:
        raise SaslauthdSettingsError(" ".join(found))
    return {
        "mechanisms": mechanisms,
        "threads": threads,
        "mech_list": checked["mech_list"],
        "socket_dir": checked["socket_dir"],
    }


def render_defaults(settings: Mapping[str, Any]) -> str:
    """``/etc/default/saslauthd``, read (sourced) by Debian's init script and unit."""
    return (
        HEADER + "# saslauthd settings (postmaster.mailserver.saslauthd).\n"
        "START=yes\n"
        'DESC="SASL Authentication Daemon"\n'
        'NAME="saslauthd"\n'
        f'MECHANISMS="{settings["mechanisms"]}"\n'
        'MECH_OPTIONS=""\n'
        f"THREADS={settings['threads']}\n"
        f"# The socket lives inside Postfix's chroot; {LINK} links to it.\n"
        f'OPTIONS="-c -m {settings["socket_dir"]}"\n'
    )


#: The values a shell reads from render_defaults' text, in this order (see expected_values).
SOURCED = ("START", "MECHANISMS", "MECH_OPTIONS", "THREADS", "OPTIONS")


def expected_values(settings: Mapping[str, Any]) -> list[str]:
    """What ``. /etc/default/saslauthd`` must set the names of SOURCED to."""
    return ["yes", settings["mechanisms"], "", str(settings["threads"]), f"-c -m {settings['socket_dir']}"]


def render_smtpd_conf(settings: Mapping[str, Any]) -> str:
    """Postfix smtpd's Cyrus SASL application file (``<postfix config>/sasl/smtpd.conf``)."""
    return (
        HEADER + "# Cyrus SASL for Postfix smtpd (postmaster.mailserver.saslauthd).\n"
        "pwcheck_method: saslauthd\n"
        f"mech_list: {' '.join(settings['mech_list'])}\n"
    )


def render_tmpfiles(settings: Mapping[str, Any]) -> str:
    """The tmpfiles.d entry that makes the link again at every boot (/run is a tmpfs)."""
    return (
        HEADER + "# saslauthd's socket is inside Postfix's chroot; non-chrooted clients\n"
        "# (smtpd without chroot, testsaslauthd) find it through this link.\n"
        f"L+ {LINK} - - - - {settings['socket_dir']}\n"
    )
