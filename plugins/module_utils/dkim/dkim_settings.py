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
#: Signing algorithms of a selector. OpenDKIM 2.11.0~beta2 (Debian 12 and 13) signs with Ed25519, but one
#: OpenDKIM process signs every key with its one SignatureAlgorithm (an Ed25519 key in an RSA process fails:
#: "EVP_PKEY_get1_RSA() failed"), so Ed25519 selectors are signed by a second, sign-only OpenDKIM process.
KEY_TYPES = ("rsa", "ed25519")
SELECTOR_KEYS = ("name", "state", "algorithm")
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
    "ed25519_milter_port",
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
    """The selectors with their states and algorithms; names do not repeat.

    Exactly one RSA selector is active (it signs for every receiver); at most one Ed25519 selector is
    active (it adds a second signature, RFC 8463). Rotation works per algorithm.
    """
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise DkimSettingsError(f"{where}: must be a non-empty list of {{name, state}}, got {_describe(value)}")
    out: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(value):
        at = f"{where}[{index}]"
        item = {"name": entry, "state": "active"} if isinstance(entry, str) else entry
        if not isinstance(item, Mapping):
            raise DkimSettingsError(f"{at}: must be a mapping with name and state, got {_describe(item)}")
        unknown = sorted(str(key) for key in item if key not in SELECTOR_KEYS)
        if unknown:
            raise DkimSettingsError(f"{at}: unknown keys {', '.join(unknown)} (allowed: {', '.join(SELECTOR_KEYS)})")
        name = check_selector(item.get("name"), f"{at}.name")
        state = item.get("state", "active")
        if state not in SELECTOR_STATES:
            raise DkimSettingsError(f"{at}.state: must be one of {', '.join(SELECTOR_STATES)}, got {state!r}")
        algorithm = item.get("algorithm", "rsa")
        if algorithm not in KEY_TYPES:
            raise DkimSettingsError(f"{at}.algorithm: must be one of {', '.join(KEY_TYPES)}, got {algorithm!r}")
        if name in seen:
            raise DkimSettingsError(f"{at}.name: {name} is also {where}[{seen[name]}]")
        seen[name] = index
        out.append({"name": name, "state": state, "algorithm": algorithm})
    active = [item["name"] for item in out if item["state"] == "active" and item["algorithm"] == "rsa"]
    if len(active) != 1:
        raise DkimSettingsError(
            f"{where}: exactly one selector must be active (it signs), got {len(active)}"
            + (f" ({', '.join(active)})" if active else "")
            + ("" if active or not any(item["algorithm"] == "ed25519" for item in out) else
               "; an Ed25519 signature only adds to an RSA one (receivers without RFC 8463 support need RSA)")
        )  # fmt: skip
    ed25519 = [item["name"] for item in out if item["state"] == "active" and item["algorithm"] == "ed25519"]
    if len(ed25519) > 1:
        raise DkimSettingsError(
            f"{where}: at most one ed25519 selector may be active, got {len(ed25519)} ({', '.join(ed25519)})"
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
    # The Ed25519 signer's port: the next one by default.
    default_ed25519 = result["milter_port"] + 1 if result["milter_port"] < 65535 else 65534
    ed25519_port = settings.get("ed25519_milter_port")
    if ed25519_port in (None, "", 0, "0"):
        ed25519_port = default_ed25519
    result["ed25519_milter_port"] = check_port(ed25519_port, f"{prefix}ed25519_milter_port")
    if result["ed25519_milter_port"] == result["milter_port"]:
        raise DkimSettingsError(
            f"{prefix}ed25519_milter_port: {result['milter_port']} is also {prefix}milter_port; the Ed25519 signer "
            "is a second OpenDKIM process"
        )
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


def active_selector(settings: Mapping[str, Any], algorithm: str = "rsa") -> str | None:
    """The active selector of *algorithm* (always one for RSA; none or one for Ed25519)."""
    return next(
        (
            item["name"]
            for item in settings["selectors"]
            if item["state"] == "active" and item.get("algorithm", "rsa") == algorithm
        ),
        None,
    )


def keys(settings: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every (domain, selector) pair with its state, algorithm and private key path, domains first."""
    return [
        {
            "domain": domain,
            "selector": item["name"],
            "state": item["state"],
            "algorithm": item.get("algorithm", "rsa"),
            "path": key_path(settings["key_dir"], domain, item["name"]),
        }
        for domain in settings["domains"]
        for item in settings["selectors"]
    ]


def key_table(settings: Mapping[str, Any], algorithm: str = "rsa") -> str:
    """KeyTable: ``<selector>._domainkey.<domain> <domain>:<selector>:<key path>`` for the active selector."""
    selector = active_selector(settings, algorithm)
    lines = [
        f"{selector}._domainkey.{domain} {domain}:{selector}:{key_path(settings['key_dir'], domain, selector)}\n"
        for domain in settings["domains"]
    ]
    return HEADER + "".join(lines)


def signing_table(settings: Mapping[str, Any], algorithm: str = "rsa") -> str:
    """SigningTable (a refile: table): mail from ``*@<domain>`` is signed with the active selector's key.

    The domain is escaped nowhere: refile patterns treat only ``*`` as special, and a validated
    domain has none.
    """
    selector = active_selector(settings, algorithm)
    lines = [f"*@{domain} {selector}._domainkey.{domain}\n" for domain in settings["domains"]]
    return HEADER + "".join(lines)


def trusted_hosts(settings: Mapping[str, Any]) -> str:
    """TrustedHosts: the clients whose mail is signed (InternalHosts) and not verified (ExternalIgnoreList)."""
    return HEADER + "".join(f"{host}\n" for host in settings["internal_hosts"])


def render_conf(
    settings: Mapping[str, Any],
    table_dir: str,
    pid_file: str = "/run/opendkim/opendkim.pid",
    algorithm: str = "rsa",
    trusted_hosts_file: str | None = None,
) -> str:
    """opendkim.conf, naming the tables in *table_dir*.

    Mode sv signs mail from InternalHosts and from clients that authenticated (Postfix passes the
    ``{auth_authen}`` macro) and verifies the rest, writing Authentication-Results with AuthservID.
    The Ed25519 signer (*algorithm* ``ed25519``) only signs (Mode s) on its own port, with
    ``SignatureAlgorithm ed25519-sha256``; verification stays with the RSA process.
    """
    ed25519 = algorithm == "ed25519"
    trusted = trusted_hosts_file or posixpath.join(table_dir, "TrustedHosts")
    lines = [
        ("Syslog", "yes"),
        ("SyslogSuccess", "yes"),
        ("UserID", "opendkim"),
        ("UMask", "007"),
        ("PidFile", pid_file),
        ("Socket", f"inet:{settings['ed25519_milter_port' if ed25519 else 'milter_port']}@127.0.0.1"),
        ("Mode", "s" if ed25519 else settings["mode"]),
        ("Canonicalization", settings["canonicalization"]),
        ("KeyTable", f"file:{posixpath.join(table_dir, 'KeyTable')}"),
        ("SigningTable", f"refile:{posixpath.join(table_dir, 'SigningTable')}"),
        ("InternalHosts", f"refile:{trusted}"),
        ("ExternalIgnoreList", f"refile:{trusted}"),
        ("RequireSafeKeys", "yes"),
    ]
    if ed25519:
        lines.append(("SignatureAlgorithm", "ed25519-sha256"))
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
    if settings["authserv_id"] and not ed25519:
        lines.append(("AuthservID", settings["authserv_id"]))
    if settings["mode"] == "sv" and not ed25519:
        # An Authentication-Results header on unsigned mail too (dkim=none).
        lines.append(("AlwaysAddARHeader", "yes"))
    return HEADER + "".join(f"{name}\t{value}\n" for name, value in lines)


ED25519_DIR = "ed25519"
ED25519_PID = "/run/opendkim/opendkim-ed25519.pid"
#: The Ed25519 signer's unit: Debian's opendkim.service, started on its own configuration file.
ED25519_SERVICE = "postmaster-opendkim-ed25519"


def ed25519_conf_path(conf_path: str) -> str:
    """``/etc/opendkim.conf`` -> ``/etc/opendkim-ed25519.conf``."""
    root, ext = posixpath.splitext(conf_path)
    return f"{root}-ed25519{ext or '.conf'}"


def render_unit(conf_path: str) -> str:
    """The Ed25519 signer's systemd unit (Debian's opendkim.service with its own file and PID)."""
    return (
        "# Managed by Ansible (postmaster.mailserver.dkim_config); do not edit.\n"
        "[Unit]\n"
        "Description=OpenDKIM Ed25519 signer (postmaster.mailserver)\n"
        "Documentation=man:opendkim(8) man:opendkim.conf(5)\n"
        "After=network-online.target nss-lookup.target\n"
        "Wants=network-online.target\n\n"
        "[Service]\n"
        "Type=forking\n"
        f"PIDFile={ED25519_PID}\n"
        f"ExecStart=/usr/sbin/opendkim -x {ed25519_conf_path(conf_path)}\n"
        "ExecReload=/bin/kill -USR1 $MAINPID\n"
        "Restart=on-failure\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def render_files(settings: Mapping[str, Any], table_dir: str, conf_path: str) -> dict[str, str]:
    """The files of the RSA process (always): path -> text."""
    return {
        conf_path: render_conf(settings, table_dir),
        posixpath.join(table_dir, "KeyTable"): key_table(settings),
        posixpath.join(table_dir, "SigningTable"): signing_table(settings),
        posixpath.join(table_dir, "TrustedHosts"): trusted_hosts(settings),
    }


def render_ed25519_files(settings: Mapping[str, Any], table_dir: str, conf_path: str) -> dict[str, str]:
    """The files of the Ed25519 signer (empty when no Ed25519 selector is active): path -> text.

    Its tables are in ``<table_dir>/ed25519``; it shares the RSA process's TrustedHosts.
    """
    if active_selector(settings, "ed25519") is None:
        return {}
    directory = posixpath.join(table_dir, ED25519_DIR)
    trusted = posixpath.join(table_dir, "TrustedHosts")
    return {
        ed25519_conf_path(conf_path): render_conf(
            settings, directory, ED25519_PID, algorithm="ed25519", trusted_hosts_file=trusted
        ),
        posixpath.join(directory, "KeyTable"): key_table(settings, "ed25519"),
        posixpath.join(directory, "SigningTable"): signing_table(settings, "ed25519"),
    }


def postfix_fragment(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The Postfix side: the milter(s) for smtpd and for local submissions, and accept when one is down."""
    milters = [f"inet:127.0.0.1:{settings['milter_port']}"]
    if active_selector(settings, "ed25519") is not None:
        milters.append(f"inet:127.0.0.1:{settings['ed25519_milter_port']}")
    return {
        "main": {"milter_default_action": "accept", "milter_protocol": "6"},
        "insert": [
            {"param": "smtpd_milters", "values": milters},
            {"param": "non_smtpd_milters", "values": milters},
        ],
    }
