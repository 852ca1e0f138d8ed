# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""OpenDMARC's settings, validated and rendered: opendmarc.conf and its IgnoreHosts file.

The dkim role enforces the sender's DMARC policy when ``dkim_dmarc_enforce`` is true, with Debian's
OpenDMARC milter after OpenDKIM in ``smtpd_milters``. ``check_settings`` validates the role's
``dkim_dmarc_*`` variables (this collection's names without the prefix) on the controller, before the
host changes, and again in the dmarc_config module; errors name the variable and the entry
(``dkim_dmarc_ignore_hosts[1]``). The render functions are pure.

How OpenDMARC learns the results it combines:

- DKIM: from the ``Authentication-Results`` header OpenDKIM (the milter before it) added, trusted
  only for the authserv-ids in ``TrustedAuthservIDs`` (the dkim role's ``dkim_authserv_id``);
  OpenDMARC drops such headers a sender forged and OpenDKIM removes them too.
- SPF: OpenDMARC checks SPF itself (``SPFSelfValidate``, libspf2 in Debian's build) and ignores
  any SPF result in the message's headers (``SPFIgnoreResults``): a ``Received-SPF`` header is
  not bound to an authserv-id, so one written by the sender would be believed otherwise, and
  policyd-spf need not be applied for DMARC to work.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate import (
    MailValidationError,
    validate_domain,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.dkim.dkim_settings import (
    DkimSettingsError,
    check_networks,
    check_port,
)

HEADER = "# Managed by Ansible (postmaster.mailserver.dmarc_config); do not edit.\n"
SETTING_KEYS = (
    "enforce",
    "milter_port",
    "authserv_id",
    "trusted_authserv_ids",
    "ignore_hosts",
    "public_suffix_list",
    "dkim_milter_port",
)
DEFAULT_PORT = 8893
DEFAULT_PUBLIC_SUFFIX_LIST = "/usr/share/publicsuffix/public_suffix_list.dat"
_FILE_RE = re.compile(r"^/[A-Za-z0-9._+@=~/-]*\Z")


class DmarcSettingsError(DkimSettingsError):
    """A setting that cannot become a working OpenDMARC configuration; the message names it."""


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.strip().lower() in ("true", "yes", "on", "1")
    raise DmarcSettingsError(f"{where}: must be true or false, got {_describe(value)}")


def _domain(value: Any, where: str) -> str:
    try:
        return validate_domain(value, where)
    except MailValidationError as exc:
        raise DmarcSettingsError(str(exc)) from None


def check_ignore_hosts(value: Any, where: str) -> list[str]:
    """Addresses and networks whose mail is not judged; every address (``/0``) is refused."""
    if isinstance(value, str):
        value = [item for item in re.split(r"[\s,]+", value) if item]
    if not isinstance(value, list | tuple):
        raise DmarcSettingsError(f"{where}: must be a list of addresses or networks, got {_describe(value)}")
    out: list[str] = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        try:
            (network,) = check_networks([item], at) if item != "" else ["0"]
        except DkimSettingsError as exc:
            if "is every address" in str(exc):
                raise DmarcSettingsError(
                    f"{at}: {item} is every address: no client's mail would be judged (refused; "
                    "dkim_dmarc_ignore_hosts defaults to dkim_internal_hosts)"
                ) from None
            if "is not an IP address" in str(exc):
                raise DmarcSettingsError(
                    f"{at}: {item!r} is not an IP address or network (OpenDMARC's IgnoreHosts takes no names here)"
                ) from None
            raise DmarcSettingsError(str(exc).replace(f"{at}[0]", at)) from None
        if network == "0":
            raise DmarcSettingsError(f"{at}: must be an address or network, got ''")
        if network not in out:
            out.append(network)
    return out


def check_settings(settings: Any, prefix: str = "dkim_dmarc_") -> dict[str, Any]:
    """Validate the DMARC settings (keys of SETTING_KEYS); return them normalized.

    Errors name ``<prefix><key>`` (``dkim_milter_port`` keeps its own name) and the entry.
    """
    if not isinstance(settings, Mapping):
        raise DmarcSettingsError(f"{prefix.rstrip('_') or 'settings'}: must be a mapping, got {_describe(settings)}")
    unknown = sorted(str(key) for key in settings if key not in SETTING_KEYS)
    if unknown:
        raise DmarcSettingsError(f"unknown settings {', '.join(prefix + key for key in unknown)}")
    enforce = _bool(settings.get("enforce", False), f"{prefix}enforce")
    if not enforce:
        # Off, none of the other values reaches a file, a command or Postfix: they are checked when
        # enforcement is switched on (ignore_hosts defaults to dkim_internal_hosts, which the DKIM
        # settings judge under their own name).
        return {"enforce": False}
    try:
        port = check_port(settings.get("milter_port", DEFAULT_PORT), f"{prefix}milter_port")
        dkim_port = check_port(settings.get("dkim_milter_port", 8891), "dkim_milter_port")
    except DkimSettingsError as exc:
        raise DmarcSettingsError(str(exc)) from None
    ignore = check_ignore_hosts(settings.get("ignore_hosts") or [], f"{prefix}ignore_hosts")
    if port == dkim_port:
        raise DmarcSettingsError(
            f"{prefix}milter_port: {port} is also dkim_milter_port; OpenDMARC and OpenDKIM need a port each"
        )
    authserv_value = settings.get("authserv_id") or ""
    authserv = _domain(authserv_value, f"{prefix}authserv_id") if authserv_value else ""
    if enforce and not authserv:
        raise DmarcSettingsError(
            f"{prefix}authserv_id: OpenDMARC needs the host name of its Authentication-Results (dkim_authserv_id)"
        )
    trusted_value = settings.get("trusted_authserv_ids")
    if trusted_value is None or trusted_value == []:
        trusted_value = [authserv] if authserv else []
    if isinstance(trusted_value, str) or not isinstance(trusted_value, list | tuple):
        raise DmarcSettingsError(
            f"{prefix}trusted_authserv_ids: must be a list of host names, got {_describe(trusted_value)}"
        )
    trusted: list[str] = []
    for index, item in enumerate(trusted_value):
        name = _domain(item, f"{prefix}trusted_authserv_ids[{index}]")
        if name not in trusted:
            trusted.append(name)
    psl = settings.get("public_suffix_list", DEFAULT_PUBLIC_SUFFIX_LIST)
    if not isinstance(psl, str) or not _FILE_RE.match(psl) or "/../" in f"{psl}/" or psl.endswith("/"):
        raise DmarcSettingsError(
            f"{prefix}public_suffix_list: must be an absolute file path of plain characters, got {_describe(psl)}"
        )
    return {
        "enforce": enforce,
        "milter_port": port,
        "dkim_milter_port": dkim_port,
        "authserv_id": authserv,
        "trusted_authserv_ids": trusted,
        # Loopback first, always: mail the host itself sends is not judged.
        "ignore_hosts": ["127.0.0.1", "::1"] + [host for host in ignore if host not in ("127.0.0.1", "::1")],
        "public_suffix_list": psl,
    }


def ignore_hosts(settings: Mapping[str, Any]) -> str:
    """The IgnoreHosts file: clients whose mail OpenDMARC passes without judging (the internal hosts)."""
    return HEADER + "".join(f"{host}\n" for host in settings["ignore_hosts"])


def render_conf(settings: Mapping[str, Any], ignore_file: str, pid_file: str = "/run/opendmarc/opendmarc.pid") -> str:
    """opendmarc.conf: reject what fails a p=reject policy, add Authentication-Results to the rest."""
    lines = [
        ("Syslog", "true"),
        ("UserID", "opendmarc"),
        ("UMask", "0002"),
        ("PidFile", pid_file),
        ("Socket", f"inet:{settings['milter_port']}@127.0.0.1"),
        ("AuthservID", settings["authserv_id"]),
        # OpenDKIM's Authentication-Results (dkim=...) are believed only with these authserv-ids.
        ("TrustedAuthservIDs", ",".join(settings["trusted_authserv_ids"])),
        ("IgnoreAuthenticatedClients", "true"),
        ("IgnoreHosts", ignore_file),
        ("PublicSuffixList", settings["public_suffix_list"]),
        ("RejectFailures", "true"),
        ("RequiredHeaders", "false"),
        # SPF: checked by OpenDMARC itself; SPF results in headers (Received-SPF) are not believed.
        ("SPFSelfValidate", "true"),
        ("SPFIgnoreResults", "true"),
        ("FailureReports", "false"),
        ("HistoryFile", ""),
    ]
    return HEADER + "".join(f"{name} {value}\n" for name, value in lines if value != "")


def render_files(settings: Mapping[str, Any], conf_path: str, ignore_file: str) -> dict[str, str]:
    """Every file the module writes: path -> text."""
    return {conf_path: render_conf(settings, ignore_file), ignore_file: ignore_hosts(settings)}


def default_ignore_file(conf_dir: str = "/etc/opendmarc") -> str:
    return posixpath.join(conf_dir, "ignore.hosts")


def postfix_fragment(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The Postfix side: OpenDMARC in smtpd_milters right after OpenDKIM, so it reads OpenDKIM's result.

    Only mail received by smtpd is judged; mail submitted on the host (non_smtpd_milters) is not.
    milter_default_action (accept) comes from the DKIM fragment.
    """
    return {
        "insert": [
            {
                "param": "smtpd_milters",
                "after": f"inet:127.0.0.1:{settings['dkim_milter_port']}",
                "values": [f"inet:127.0.0.1:{settings['milter_port']}"],
            }
        ]
    }
