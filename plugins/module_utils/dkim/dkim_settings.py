# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""OpenDKIM's settings, validated and rendered: opendkim.conf, KeyTable, SigningTable, TrustedHosts.

``check_settings`` validates the dkim role's variables (this collection's names without the
``dkim_`` prefix) on the controller, before the host changes, and again in the dkim_config
module. Errors name the variable and the entry (``dkim_selectors[1].name``). The render
functions are pure: the module writes what they return.

Selectors rotate by state: exactly one ``active`` selector signs; ``published`` selectors have a
key on the host and a record in mail_dns but do not sign (the next key, or the previous one during
the overlap); a ``retired`` selector's private key is deleted from the host and its record leaves
the records data.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import (
    PathPolicyError,
    confined_path,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate import (
    MailValidationError,
    validate_domain,
)

HEADER = "# Managed by Ansible (postmaster.mailserver.dkim_config); do not edit.\n"
SELECTOR_STATES = ("active", "published", "retired")
KEY_TYPES = ("rsa",)
MIN_KEY_BITS = 2048
MAX_KEY_BITS = 8192
CANONICALIZATIONS = ("relaxed/simple", "relaxed/relaxed", "simple/simple", "simple/relaxed", "relaxed", "simple")
MODES = ("sv", "s")
#: A selector is one DNS label (RFC 6376 3.1): letters, digits, hyphens; no dot, space or newline.
_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
DEFAULT_KEY_DIR = "/etc/dkimkeys"
SETTING_KEYS = (
    "domains",
    "selectors",
    "key_size",
    "key_dir",
    "milter_port",
    "internal_hosts",
    "authserv_id",
    "canonicalization",
    "mode",
    "oversign_headers",
    "nameservers",
    "trust_anchor_file",
    "resolver_configuration",
)
DEFAULT_TRUST_ANCHOR = "/usr/share/dns/root.key"
_FILE_RE = re.compile(r"^/[A-Za-z0-9._+@=~/-]*\Z")


class DkimSettingsError(ValueError):
    """A setting that cannot become a working OpenDKIM configuration; the message names it."""


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_selector(value: Any, where: str) -> str:
    """*value* when it is one DNS label (the selector is ``<selector>._domainkey.<domain>``)."""
    if not isinstance(value, str):
        raise DkimSettingsError(f"{where}: must be a string, got {_describe(value)}")
    if "." in value:
        raise DkimSettingsError(f"{where}: {value!r} contains a dot; a selector is one DNS label")
    if not _LABEL_RE.match(value):
        raise DkimSettingsError(
            f"{where}: {value!r} is not a DNS label (1-63 letters, digits or inner hyphens; no space, newline or dot)"
        )
    return value.lower()


def check_selectors(value: Any, where: str) -> list[dict[str, str]]:
    """The selectors with their states; exactly one is active, names do not repeat."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise DkimSettingsError(f"{where}: must be a non-empty list of {{name, state}}, got {_describe(value)}")
    out: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(value):
        at = f"{where}[{index}]"
        item = {"name": entry, "state": "active"} if isinstance(entry, str) else entry
        if not isinstance(item, Mapping):
            raise DkimSettingsError(f"{at}: must be a mapping with name and state, got {_describe(item)}")
        unknown = sorted(str(key) for key in item if key not in ("name", "state"))
        if unknown:
            raise DkimSettingsError(f"{at}: unknown keys {', '.join(unknown)} (allowed: name, state)")
        name = check_selector(item.get("name"), f"{at}.name")
        state = item.get("state", "active")
        if state not in SELECTOR_STATES:
            raise DkimSettingsError(f"{at}.state: must be one of {', '.join(SELECTOR_STATES)}, got {state!r}")
        if name in seen:
            raise DkimSettingsError(f"{at}.name: {name} is also {where}[{seen[name]}]")
        seen[name] = index
        out.append({"name": name, "state": state})
    active = [item["name"] for item in out if item["state"] == "active"]
    if len(active) != 1:
        raise DkimSettingsError(
            f"{where}: exactly one selector must be active (it signs), got {len(active)}"
            + (f" ({', '.join(active)})" if active else "")
        )
    return out


def check_domains(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value:
        raise DkimSettingsError(f"{where}: must be a non-empty list of domains, got {_describe(value)}")
    out: list[str] = []
    for index, item in enumerate(value):
        try:
            domain = validate_domain(item, f"{where}[{index}]")
        except MailValidationError as exc:
            raise DkimSettingsError(str(exc)) from None
        if domain not in out:
            out.append(domain)
    return out


def check_key_size(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise DkimSettingsError(f"{where}: must be a whole number of bits, got {_describe(value)}")
    bits = int(value)
    if not MIN_KEY_BITS <= bits <= MAX_KEY_BITS:
        raise DkimSettingsError(
            f"{where}: {bits} bits is outside {MIN_KEY_BITS}..{MAX_KEY_BITS} "
            f"(smaller RSA keys are refused by receivers, larger ones do not fit a DNS answer)"
        )
    return bits


def check_networks(value: Any, where: str) -> list[str]:
    """Addresses and networks, in Postfix's forms too (``[::1]/128``), as OpenDKIM reads them."""
    if isinstance(value, str):
        value = [item for item in re.split(r"[\s,]+", value) if item]
    if not isinstance(value, Sequence):
        raise DkimSettingsError(f"{where}: must be a list of addresses or networks, got {_describe(value)}")
    out: list[str] = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, str) or not item.strip():
            raise DkimSettingsError(f"{at}: must be an address or network, got {_describe(item)}")
        text = item.strip()
        match = re.match(r"^\[([^\]]+)\](/\d+)?\Z", text)
        if match:
            text = match.group(1) + (match.group(2) or "")
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise DkimSettingsError(
                f"{at}: {item!r} is not an IP address or network (OpenDKIM's InternalHosts takes no names or maps)"
            ) from None
        if net.prefixlen == 0:
            raise DkimSettingsError(
                f"{at}: {item} is every address: every client's mail would be signed, an open signer (refused)"
            )
        form = str(net.network_address) if net.prefixlen == net.max_prefixlen else net.with_prefixlen
        if form not in out:
            out.append(form)
    return out


def check_port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise DkimSettingsError(f"{where}: must be a TCP port number, got {_describe(value)}")
    port = int(value)
    if not 1 <= port <= 65535:
        raise DkimSettingsError(f"{where}: must be from 1 to 65535, got {port}")
    return port


def check_key_dir(value: Any, where: str) -> str:
    try:
        return confined_path(value, where, "dkim_key_dir")
    except PathPolicyError as exc:
        raise DkimSettingsError(str(exc)) from None


def check_settings(settings: Any, prefix: str = "dkim_") -> dict[str, Any]:
    """Validate the dkim role's *settings* (keys of SETTING_KEYS); return them normalized.

    Errors name ``<prefix><key>`` and the entry.
    """
    if not isinstance(settings, Mapping):
        raise DkimSettingsError(f"{prefix.rstrip('_') or 'settings'}: must be a mapping, got {_describe(settings)}")
    unknown = sorted(str(key) for key in settings if key not in SETTING_KEYS)
    if unknown:
        raise DkimSettingsError(f"unknown settings {', '.join(prefix + key for key in unknown)}")
    missing = [key for key in ("domains", "selectors") if key not in settings]
    if missing:
        raise DkimSettingsError(f"missing settings {', '.join(prefix + key for key in missing)}")
    result: dict[str, Any] = {
        "domains": check_domains(settings["domains"], f"{prefix}domains"),
        "selectors": check_selectors(settings["selectors"], f"{prefix}selectors"),
        "key_size": check_key_size(settings.get("key_size", MIN_KEY_BITS), f"{prefix}key_size"),
        "key_dir": check_key_dir(settings.get("key_dir", DEFAULT_KEY_DIR), f"{prefix}key_dir"),
        "milter_port": check_port(settings.get("milter_port", 8891), f"{prefix}milter_port"),
        "internal_hosts": check_networks(settings.get("internal_hosts") or [], f"{prefix}internal_hosts"),
    }
    # Loopback first, always: mail the host itself sends (sendmail, cron) is signed.
    result["internal_hosts"] = ["127.0.0.1", "::1"] + [
        host for host in result["internal_hosts"] if host not in ("127.0.0.1", "::1")
    ]
    authserv = settings.get("authserv_id") or ""
    if authserv:
        try:
            authserv = validate_domain(authserv, f"{prefix}authserv_id")
        except MailValidationError as exc:
            raise DkimSettingsError(str(exc)) from None
    result["authserv_id"] = authserv
    canon = settings.get("canonicalization", "relaxed/simple")
    if canon not in CANONICALIZATIONS:
        raise DkimSettingsError(
            f"{prefix}canonicalization: must be one of {', '.join(CANONICALIZATIONS)}, got {canon!r}"
        )
    result["canonicalization"] = canon
    mode = settings.get("mode", "sv")
    if mode not in MODES:
        raise DkimSettingsError(f"{prefix}mode: must be sv (sign and verify) or s (sign only), got {mode!r}")
    result["mode"] = mode
    headers = settings.get("oversign_headers", ["From"])
    if isinstance(headers, str) or not isinstance(headers, Sequence):
        raise DkimSettingsError(f"{prefix}oversign_headers: must be a list of header names, got {_describe(headers)}")
    for index, header in enumerate(headers):
        if not isinstance(header, str) or not re.match(r"^[A-Za-z0-9-]+\Z", header):
            raise DkimSettingsError(f"{prefix}oversign_headers[{index}]: {header!r} is not a header name")
    result["oversign_headers"] = list(headers)
    nameservers = settings.get("nameservers") or []
    if isinstance(nameservers, str) or not isinstance(nameservers, Sequence):
        raise DkimSettingsError(f"{prefix}nameservers: must be a list of IP addresses, got {_describe(nameservers)}")
    result["nameservers"] = []
    for index, item in enumerate(nameservers):
        try:
            result["nameservers"].append(str(ipaddress.ip_address(str(item).strip())))
        except ValueError:
            raise DkimSettingsError(f"{prefix}nameservers[{index}]: {item!r} is not an IP address") from None
    anchor = settings.get("trust_anchor_file", DEFAULT_TRUST_ANCHOR)
    if anchor is None:
        anchor = ""
    if not isinstance(anchor, str) or (anchor and (not _FILE_RE.match(anchor) or "/../" in f"{anchor}/")):
        raise DkimSettingsError(
            f"{prefix}trust_anchor_file: must be an absolute path of plain characters or empty, got {_describe(anchor)}"
        )
    result["trust_anchor_file"] = anchor
    resolver = settings.get("resolver_configuration") or ""
    if not isinstance(resolver, str) or (resolver and (not _FILE_RE.match(resolver) or "/../" in f"{resolver}/")):
        raise DkimSettingsError(
            f"{prefix}resolver_configuration: must be an absolute path of plain characters or empty, "
            f"got {_describe(resolver)}"
        )
    result["resolver_configuration"] = resolver
    return result


# -- paths and tables --------------------------------------------------------------------


def key_path(key_dir: str, domain: str, selector: str) -> str:
    """The private key of *selector* for *domain*: ``<key_dir>/<domain>/<selector>.private``."""
    return posixpath.join(key_dir, domain, f"{selector}.private")


def active_selector(settings: Mapping[str, Any]) -> str:
    return next(item["name"] for item in settings["selectors"] if item["state"] == "active")


def keys(settings: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every (domain, selector) pair with its state and private key path, domains first."""
    return [
        {
            "domain": domain,
            "selector": item["name"],
            "state": item["state"],
            "path": key_path(settings["key_dir"], domain, item["name"]),
        }
        for domain in settings["domains"]
        for item in settings["selectors"]
    ]


def key_table(settings: Mapping[str, Any]) -> str:
    """KeyTable: ``<selector>._domainkey.<domain> <domain>:<selector>:<key path>`` for the active selector."""
    selector = active_selector(settings)
    lines = [
        f"{selector}._domainkey.{domain} {domain}:{selector}:{key_path(settings['key_dir'], domain, selector)}\n"
        for domain in settings["domains"]
    ]
    return HEADER + "".join(lines)


def signing_table(settings: Mapping[str, Any]) -> str:
    """SigningTable (a refile: table): mail from ``*@<domain>`` is signed with the active selector's key.

    The domain is escaped nowhere: refile patterns treat only ``*`` as special, and a validated
    domain has none.
    """
    selector = active_selector(settings)
    lines = [f"*@{domain} {selector}._domainkey.{domain}\n" for domain in settings["domains"]]
    return HEADER + "".join(lines)


def trusted_hosts(settings: Mapping[str, Any]) -> str:
    """TrustedHosts: the clients whose mail is signed (InternalHosts) and not verified (ExternalIgnoreList)."""
    return HEADER + "".join(f"{host}\n" for host in settings["internal_hosts"])


def render_conf(settings: Mapping[str, Any], table_dir: str, pid_file: str = "/run/opendkim/opendkim.pid") -> str:
    """opendkim.conf, naming the tables in *table_dir*.

    Mode sv signs mail from InternalHosts and from clients that authenticated (Postfix passes the
    ``{auth_authen}`` macro) and verifies the rest, writing Authentication-Results with AuthservID.
    """
    lines = [
        ("Syslog", "yes"),
        ("SyslogSuccess", "yes"),
        ("UserID", "opendkim"),
        ("UMask", "007"),
        ("PidFile", pid_file),
        ("Socket", f"inet:{settings['milter_port']}@127.0.0.1"),
        ("Mode", settings["mode"]),
        ("Canonicalization", settings["canonicalization"]),
        ("KeyTable", f"file:{posixpath.join(table_dir, 'KeyTable')}"),
        ("SigningTable", f"refile:{posixpath.join(table_dir, 'SigningTable')}"),
        ("InternalHosts", f"refile:{posixpath.join(table_dir, 'TrustedHosts')}"),
        ("ExternalIgnoreList", f"refile:{posixpath.join(table_dir, 'TrustedHosts')}"),
        ("RequireSafeKeys", "yes"),
    ]
    if settings.get("trust_anchor_file"):
        # DNSSEC validation of key records (libunbound), as Debian's own opendkim.conf does.
        lines.append(("TrustAnchorFile", settings["trust_anchor_file"]))
    if settings.get("nameservers"):
        lines.append(("Nameservers", ",".join(settings["nameservers"])))
    if settings.get("resolver_configuration"):
        # An unbound configuration file of the admin's (libunbound's settings).
        lines.append(("ResolverConfiguration", settings["resolver_configuration"]))
    if settings["oversign_headers"]:
        lines.append(("OversignHeaders", ",".join(settings["oversign_headers"])))
    if settings["authserv_id"]:
        lines.append(("AuthservID", settings["authserv_id"]))
    if settings["mode"] == "sv":
        # An Authentication-Results header on unsigned mail too (dkim=none).
        lines.append(("AlwaysAddARHeader", "yes"))
    return HEADER + "".join(f"{name}\t{value}\n" for name, value in lines)


def render_files(settings: Mapping[str, Any], table_dir: str, conf_path: str) -> dict[str, str]:
    """Every file the module writes: path -> text."""
    return {
        conf_path: render_conf(settings, table_dir),
        posixpath.join(table_dir, "KeyTable"): key_table(settings),
        posixpath.join(table_dir, "SigningTable"): signing_table(settings),
        posixpath.join(table_dir, "TrustedHosts"): trusted_hosts(settings),
    }


def postfix_fragment(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The Postfix side: the milter for smtpd and for local submissions, and accept when it is down."""
    milter = f"inet:127.0.0.1:{settings['milter_port']}"
    return {
        "main": {"milter_default_action": "accept", "milter_protocol": "6"},
        "insert": [
            {"param": "smtpd_milters", "values": [milter]},
            {"param": "non_smtpd_milters", "values": [milter]},
        ],
    }
