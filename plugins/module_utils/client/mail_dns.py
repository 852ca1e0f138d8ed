# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The DNS records a mail domain publishes, built and validated as data (the ``mail_dns`` filter).

For each domain: MX, SPF (built and lookup-counted by :mod:`spf`), DMARC (RFC 7489), TLS-RPT
(RFC 8460), MTA-STS (RFC 8461: the ``_mta-sts`` TXT record and the policy file served at
``https://mta-sts.<domain>/.well-known/mta-sts.txt``) and DKIM (RFC 6376: ``<selector>._domainkey.<domain>``
for each public key the dkim_config module returned). Each record is returned as data
(name, type, value, ttl) and as a zone-file line. Errors name the variable and the entry
(``mail_dns_domains[1].dmarc.policy``) and the domain.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.spf import (
    SpfError,
    build_record,
    check_limit,
    check_published,
    count_lookups,
    is_domain,
)

DMARC_POLICIES = ("none", "quarantine", "reject")
MTA_STS_MODES = ("enforce", "testing", "none")
#: RFC 8461 3.2: max_age is at most 31557600 seconds (about a year).
MTA_STS_MAX_AGE = 31557600
DOMAIN_KEYS = ("name", "mx", "spf", "dmarc", "tls_rpt", "mta_sts", "ttl")
DMARC_KEYS = ("policy", "subdomain_policy", "pct", "rua", "ruf", "adkim", "aspf", "fo", "ri")
TLS_RPT_KEYS = ("rua",)
MTA_STS_KEYS = ("mode", "mx", "max_age", "id")

_MAILTO_RE = re.compile(r"^mailto:([^@\s,;!]+)@([^@\s,;!]+)(![0-9]+[kmgt]?)?$", re.IGNORECASE)
_HTTPS_RE = re.compile(r"^https://[^\s,;]+$", re.IGNORECASE)
_STS_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
_FO_RE = re.compile(r"^[01ds](:[01ds])*$")


#: RFC 6376 3.1: a selector is one or more DNS labels; the dkim role allows one.
_SELECTOR_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/]+={0,2}\Z")
DKIM_KEY_TYPES = ("rsa", "ed25519")


class MailDnsError(ValueError):
    """An entry that cannot become a valid record; the message names it."""


def _fqdn(name: str) -> str:
    return name.rstrip(".").lower() + "."


def _bool_or_map(value: Any, where: str, keys: Sequence[str]) -> dict[str, Any] | None:
    """``true`` (the defaults), ``false``/null (no record) or a mapping with *keys*."""
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if not isinstance(value, Mapping):
        raise MailDnsError(f"{where}: must be true, false or a mapping with {', '.join(keys)}, got {value!r}")
    unknown = sorted(str(key) for key in value if key not in keys)
    if unknown:
        raise MailDnsError(f"{where}: unknown keys {', '.join(unknown)} (allowed: {', '.join(keys)})")
    return dict(value)


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Sequence) or isinstance(value, bytes):
        raise MailDnsError(f"{where}: must be a list, got {value!r}")
    return list(value)


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise MailDnsError(f"{where}: must be a whole number from {low} to {high}, got {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise MailDnsError(f"{where}: must be from {low} to {high}, got {number}")
    return number


def _host(value: Any, where: str, wildcard: bool = False) -> str:
    if not isinstance(value, str):
        raise MailDnsError(f"{where}: must be a host name, got {value!r}")
    name = value.strip().rstrip(".").lower()
    check = name[2:] if wildcard and name.startswith("*.") else name
    if not is_domain(check) or "_" in check:
        raise MailDnsError(f"{where}: {value!r} is not a fully qualified host name")
    return name


def report_uris(value: Any, where: str, https: bool = False) -> list[str]:
    """DMARC rua/ruf (``mailto:`` with an optional ``!size``) or TLS-RPT rua (``mailto:`` or ``https:``).

    A bare address is taken as ``mailto:<address>``.
    """
    uris = []
    for index, item in enumerate(_list(value, where)):
        at = f"{where}[{index}]"
        if not isinstance(item, str) or not item.strip():
            raise MailDnsError(f"{at}: must be a mailto: URI or an address, got {item!r}")
        uri = item.strip()
        if "@" in uri and ":" not in uri.split("@", 1)[0]:
            uri = f"mailto:{uri}"
        mailto = _MAILTO_RE.match(uri)
        if mailto:
            if not is_domain(mailto.group(2)):
                raise MailDnsError(f"{at}: {item!r} has no valid domain")
            if https and mailto.group(3):
                raise MailDnsError(f"{at}: TLS-RPT takes no size limit (!{mailto.group(3)[1:]})")
            uris.append(uri)
        elif https and _HTTPS_RE.match(uri):
            uris.append(uri)
        else:
            kinds = "mailto: or https: URI" if https else "mailto: URI (optionally with !10m)"
            raise MailDnsError(f"{at}: {item!r} is not a {kinds}")
    return uris


def dmarc_record(spec: Mapping[str, Any], domain: str, where: str) -> tuple[str, list[str]]:
    """The TXT value of ``_dmarc.<domain>`` and notes (reports sent to another domain need its consent)."""
    policy = spec.get("policy", "none")
    if policy not in DMARC_POLICIES:
        raise MailDnsError(f"{where}.policy: must be one of {', '.join(DMARC_POLICIES)}, got {policy!r}")
    parts = ["v=DMARC1", f"p={policy}"]
    if spec.get("subdomain_policy") is not None:
        sp = spec["subdomain_policy"]
        if sp not in DMARC_POLICIES:
            raise MailDnsError(f"{where}.subdomain_policy: must be one of {', '.join(DMARC_POLICIES)}, got {sp!r}")
        parts.append(f"sp={sp}")
    if spec.get("pct") is not None:
        pct = _int(spec["pct"], f"{where}.pct", 0, 100)
        if pct != 100:
            parts.append(f"pct={pct}")
    rua = report_uris(spec.get("rua", [f"postmaster@{domain}"]), f"{where}.rua")
    ruf = report_uris(spec.get("ruf"), f"{where}.ruf")
    if rua:
        parts.append("rua=" + ",".join(rua))
    if ruf:
        parts.append("ruf=" + ",".join(ruf))
    for key in ("adkim", "aspf"):
        if spec.get(key) is not None:
            if spec[key] not in ("r", "s"):
                raise MailDnsError(f"{where}.{key}: must be r (relaxed) or s (strict), got {spec[key]!r}")
            parts.append(f"{key}={spec[key]}")
    if spec.get("fo") is not None:
        fo = str(spec["fo"])
        if not _FO_RE.match(fo):
            raise MailDnsError(f"{where}.fo: must be 0, 1, d or s, separated by ':', got {spec['fo']!r}")
        if not ruf:
            raise MailDnsError(f"{where}.fo: failure reporting options need ruf addresses")
        parts.append(f"fo={fo}")
    if spec.get("ri") is not None:
        parts.append(f"ri={_int(spec['ri'], f'{where}.ri', 3600, 2**31 - 1)}")
    notes = []
    for uri in rua + ruf:
        target = uri.split("@", 1)[1].split("!", 1)[0].lower().rstrip(".")
        if target != domain and not target.endswith(f".{domain}") and not domain.endswith(f".{target}"):
            notes.append(
                f"DMARC reports for {domain} go to {target}: {target} must publish "
                f'{domain}._report._dmarc.{target}. TXT "v=DMARC1" (RFC 7489, 7.1)'
            )
    return "; ".join(parts), sorted(set(notes))


def tls_rpt_record(spec: Mapping[str, Any], domain: str, where: str) -> str:
    rua = report_uris(spec.get("rua", [f"postmaster@{domain}"]), f"{where}.rua", https=True)
    if not rua:
        raise MailDnsError(f"{where}.rua: TLS-RPT needs at least one mailto: or https: address")
    return "v=TLSRPTv1; rua=" + ",".join(rua)


def mta_sts(spec: Mapping[str, Any], mx_hosts: Sequence[str], where: str) -> dict[str, Any]:
    """The MTA-STS policy file and the TXT value of ``_mta-sts.<domain>``.

    The id defaults to a hash of the policy, so it changes exactly when the policy does.
    """
    mode = spec.get("mode", "testing")
    if mode not in MTA_STS_MODES:
        raise MailDnsError(f"{where}.mode: must be one of {', '.join(MTA_STS_MODES)}, got {mode!r}")
    max_age = _int(spec.get("max_age", 604800), f"{where}.max_age", 0, MTA_STS_MAX_AGE)
    patterns = [
        _host(item, f"{where}.mx[{i}]", wildcard=True) for i, item in enumerate(_list(spec.get("mx"), f"{where}.mx"))
    ]
    patterns = patterns or list(mx_hosts)
    if mode != "none" and not patterns:
        raise MailDnsError(f"{where}.mx: a policy in {mode} mode needs the MX host names")
    if mode == "enforce":
        for host in mx_hosts:
            if not any(_sts_match(pattern, host) for pattern in patterns):
                raise MailDnsError(
                    f"{where}.mx: the MX host {host} matches none of {', '.join(patterns)}: in enforce mode, "
                    "senders would refuse to deliver to it"
                )
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {pattern}" for pattern in patterns), f"max_age: {max_age}"]
    policy = "\r\n".join(lines) + "\r\n"
    policy_id = spec.get("id")
    if policy_id is None:
        policy_id = hashlib.sha256(policy.encode()).hexdigest()[:20]
    policy_id = str(policy_id)
    if not _STS_ID_RE.match(policy_id):
        raise MailDnsError(f"{where}.id: must be 1 to 32 letters and digits, got {spec.get('id')!r}")
    return {"mode": mode, "mx": patterns, "max_age": max_age, "id": policy_id, "policy": policy}


def _sts_match(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.count(".") >= 1 and host.split(".", 1)[1] == pattern[2:]
    return pattern == host


#: RFC 1035 3.3.14: a TXT record is a sequence of strings of at most 255 bytes each.
TXT_STRING_BYTES = 255


def txt_strings(text: str, limit: int = TXT_STRING_BYTES) -> list[str]:
    """*text* cut into strings of at most *limit* UTF-8 bytes, never inside a character.

    ``"".join(txt_strings(text)) == text`` always holds; receivers join the strings back the same way.
    """
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current or not chunks:
        chunks.append("".join(current))
    return chunks


def _zone_escape(chunk: str) -> str:
    r"""A string in a zone file: ``\`` and ``"`` escaped, control characters as ``\DDD`` (RFC 1035 5.1)."""
    out = []
    for char in chunk:
        if char in '\\"':
            out.append("\\" + char)
        elif ord(char) < 32 or ord(char) == 127:
            out.append(f"\\{ord(char):03d}")
        else:
            out.append(char)
    return "".join(out)


def txt_value(text: str) -> str:
    """A TXT value as zone-file strings: quoted, escaped, split every 255 bytes between characters (RFC 1035)."""
    return " ".join(f'"{_zone_escape(chunk)}"' for chunk in txt_strings(text))


def zone_line(record: Mapping[str, Any]) -> str:
    value = txt_value(record["value"]) if record["type"] == "TXT" else record["value"]
    return f"{record['name']}\t{record['ttl']}\tIN\t{record['type']}\t{value}"


def dkim_value(public: str, key_type: str = "rsa") -> str:
    """The DKIM TXT record's text (RFC 6376 3.6.1): ``v=DKIM1; k=<type>; p=<base64 public key>``."""
    return f"v=DKIM1; k={key_type}; p={public}"


def check_dkim_keys(value: Any, where: str = "dkim_keys") -> dict[str, list[dict[str, str]]]:
    """The dkim_config module's ``public_keys`` (domain, selector, public, key_type), by domain; errors name the entry.

    A key without ``public`` (check mode, not created yet) is skipped: it has no record to publish.
    """
    by_domain: dict[str, list[dict[str, str]]] = {}
    for index, item in enumerate(_list(value, where)):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise MailDnsError(f"{at}: must be a mapping with domain, selector and public, got {item!r}")
        domain = _host(item.get("domain"), f"{at}.domain")
        selector = item.get("selector")
        if not isinstance(selector, str) or not _SELECTOR_RE.match(selector.lower()):
            raise MailDnsError(f"{at}.selector: {selector!r} is not one DNS label")
        key_type = item.get("key_type", "rsa")
        if key_type not in DKIM_KEY_TYPES:
            raise MailDnsError(f"{at}.key_type: must be one of {', '.join(DKIM_KEY_TYPES)}, got {key_type!r}")
        public = item.get("public")
        if public is None:
            continue
        if not isinstance(public, str) or not _BASE64_RE.match(public):
            raise MailDnsError(f"{at}.public: must be the base64 public key, got {public!r}")
        if key_type == "ed25519" and len(base64.b64decode(public)) != 32:
            raise MailDnsError(
                f"{at}.public: an Ed25519 key is 32 bytes (RFC 8463: the bare key, not its SubjectPublicKeyInfo), "
                f"got {len(base64.b64decode(public))}"
            )
        entries = by_domain.setdefault(domain, [])
        if any(entry["selector"] == selector.lower() for entry in entries):
            raise MailDnsError(f"{at}: selector {selector} of {domain} is given twice")
        entries.append(
            {"selector": selector.lower(), "state": str(item.get("state", "active")), "key_type": key_type,
             "public": public}
        )  # fmt: skip
    return by_domain


def _mx(value: Any, default_host: str | None, where: str) -> list[tuple[int, str]]:
    items = _list(value, where) if value is not None else ([default_host] if default_host else [])
    if not items:
        raise MailDnsError(f"{where}: no MX host: give mx, or the filter's mx_host")
    out = []
    for index, item in enumerate(items):
        at = f"{where}[{index}]" if value is not None else "mx_host"
        if isinstance(item, Mapping):
            unknown = sorted(str(key) for key in item if key not in ("host", "priority"))
            if unknown:
                raise MailDnsError(f"{at}: unknown keys {', '.join(unknown)} (allowed: host, priority)")
            host = _host(item.get("host"), f"{at}.host")
            priority = _int(item.get("priority", 10 * (index + 1)), f"{at}.priority", 0, 65535)
        else:
            host = _host(item, at)
            priority = 10 * (index + 1)
        out.append((priority, host))
    hosts = [host for _priority, host in out]
    duplicates = sorted({host for host in hosts if hosts.count(host) > 1})
    if duplicates:
        raise MailDnsError(f"{where}: {', '.join(duplicates)} given more than once")
    return sorted(out)


def _spf(value: Any, resolved: Mapping[str, str] | None, where: str) -> str | None:
    if value is False:
        return None
    if value is None or value is True:
        value = {"mx": True}
    if isinstance(value, str):
        check_published(value, where)
        check_limit(count_lookups(value, resolved, where=where), where)
        return value
    return build_record(value, resolved, where)


def domain_records(
    entry: Any,
    index: int,
    *,
    mx_host: str | None = None,
    ttl: int = 3600,
    resolved: Mapping[str, str] | None = None,
    name: str = "mail_dns_domains",
    dkim: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The records of one domain entry (a domain name, or a mapping with the keys of DOMAIN_KEYS)."""
    where = f"{name}[{index}]"
    spec = {"name": entry} if isinstance(entry, str) else entry
    if not isinstance(spec, Mapping):
        raise MailDnsError(f"{where}: must be a domain name or a mapping with name, got {entry!r}")
    unknown = sorted(str(key) for key in spec if key not in DOMAIN_KEYS)
    if unknown:
        raise MailDnsError(f"{where}: unknown keys {', '.join(unknown)} (allowed: {', '.join(DOMAIN_KEYS)})")
    domain = _host(spec.get("name"), f"{where}.name")
    try:
        record_ttl = _int(spec.get("ttl", ttl), f"{where}.ttl", 60, 2**31 - 1)
        mx = _mx(spec.get("mx"), mx_host, f"{where}.mx")
        spf = _spf(spec.get("spf"), resolved, f"{where}.spf")
        dmarc_spec = _bool_or_map(spec.get("dmarc", True), f"{where}.dmarc", DMARC_KEYS)
        tls_spec = _bool_or_map(spec.get("tls_rpt"), f"{where}.tls_rpt", TLS_RPT_KEYS)
        sts_spec = _bool_or_map(spec.get("mta_sts"), f"{where}.mta_sts", MTA_STS_KEYS)
        records = [
            {"name": _fqdn(domain), "type": "MX", "value": f"{priority} {_fqdn(host)}", "ttl": record_ttl}
            for priority, host in mx
        ]
        if spf is not None:
            records.append({"name": _fqdn(domain), "type": "TXT", "value": spf, "ttl": record_ttl})
        notes: list[str] = []
        result: dict[str, Any] = {"domain": domain, "mx": [host for _priority, host in mx], "spf": spf}
        if dmarc_spec is not None:
            value, notes = dmarc_record(dmarc_spec, domain, f"{where}.dmarc")
            records.append({"name": _fqdn(f"_dmarc.{domain}"), "type": "TXT", "value": value, "ttl": record_ttl})
            result["dmarc"] = value
        if tls_spec is not None:
            value = tls_rpt_record(tls_spec, domain, f"{where}.tls_rpt")
            records.append({"name": _fqdn(f"_smtp._tls.{domain}"), "type": "TXT", "value": value, "ttl": record_ttl})
            result["tls_rpt"] = value
        if sts_spec is not None:
            policy = mta_sts(sts_spec, result["mx"], f"{where}.mta_sts")
            value = f"v=STSv1; id={policy['id']}"
            records.append({"name": _fqdn(f"_mta-sts.{domain}"), "type": "TXT", "value": value, "ttl": record_ttl})
            result["mta_sts"] = {
                **policy,
                "record": value,
                "url": f"https://mta-sts.{domain}/.well-known/mta-sts.txt",
            }
            notes.append(
                f"serve the MTA-STS policy at https://mta-sts.{domain}/.well-known/mta-sts.txt with a "
                f"certificate valid for mta-sts.{domain}; change nothing but the id when the policy changes"
            )
        result["dkim"] = []
        for key in dkim:
            value = dkim_value(key["public"], key["key_type"])
            record_name = _fqdn(f"{key['selector']}._domainkey.{domain}")
            records.append({"name": record_name, "type": "TXT", "value": value, "ttl": record_ttl})
            result["dkim"].append(
                {"selector": key["selector"], "state": key["state"], "name": record_name, "value": value,
                 "strings": txt_strings(value)}
            )  # fmt: skip
    except (MailDnsError, SpfError) as exc:
        raise MailDnsError(f"{domain}: {exc}") from None
    result["records"] = records
    result["zone_lines"] = [zone_line(record) for record in records]
    result["notes"] = notes
    return result


def _entry_domain(entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, Mapping) else entry
    return name.strip().rstrip(".").lower() if isinstance(name, str) else ""


def mail_dns(
    domains: Any,
    *,
    mx_host: str | None = None,
    ttl: int = 3600,
    resolved: Mapping[str, str] | None = None,
    name: str = "mail_dns_domains",
    dkim_keys: Any = None,
) -> list[dict[str, Any]]:
    """The records of every domain of *domains* (a list, or one domain); domains must not repeat.

    *dkim_keys* is the dkim_config module's ``public_keys``: each domain of *domains* gets the DKIM records
    of its keys (keys of other domains are not published here).
    """
    if isinstance(domains, str | Mapping):
        domains = [domains]
    if not isinstance(domains, Sequence):
        raise MailDnsError(f"{name}: must be a list of domains, got {domains!r}")
    mx_host = _host(mx_host, "mx_host") if mx_host is not None and mx_host != "" else None
    if resolved is not None and not isinstance(resolved, Mapping):
        raise MailDnsError(f"resolved: must be a mapping of domain to SPF record, got {resolved!r}")
    by_domain = check_dkim_keys(dkim_keys)
    out = [
        domain_records(
            entry,
            index,
            mx_host=mx_host,
            ttl=ttl,
            resolved=resolved,
            name=name,
            dkim=by_domain.get(_entry_domain(entry), []),
        )
        for index, entry in enumerate(domains)
    ]
    seen: dict[str, int] = {}
    for index, item in enumerate(out):
        if item["domain"] in seen:
            raise MailDnsError(f"{name}[{index}]: {item['domain']} is also {name}[{seen[item['domain']]}]")
        seen[item["domain"]] = index
    return out
