# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backend of the spf_check module: look at a domain's live SPF record (RFC 7208).

Two walks over the record, both through one injected ``lookup(name, rdtype)`` callable
(dnspython in the module, a dictionary in the unit tests), with every answer cached:

* ``analyze`` resolves every include and redirect, however deep, and reports the total of
  DNS-querying terms (the limit is 10), the void lookups (the limit is 2) and every error;
* ``evaluate`` is RFC 7208's check_host() for one address: it stops at the first match, as a
  receiving server does, and answers pass, fail, softfail, neutral, none, permerror or temperror.

Nothing here writes anything; the DNS queries are the only side effect.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.spf import (
    LOOKUP_LIMIT,
    NAME_LIMIT,
    QUALIFIERS,
    VOID_LIMIT,
    SpfError,
    Term,
    is_spf_record,
    parse_record,
)

try:
    import dns.exception
    import dns.resolver

    HAS_DNSPYTHON = True
except ImportError:  # reported by the module with missing_required_lib
    HAS_DNSPYTHON = False

_MACRO_RE = re.compile(r"%(?:\{([A-Za-z])(\d*)(r?)([.\-+,/_=]*)\}|([%_-]))")
RESULTS = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")


class DnsVoid(Exception):
    """NXDOMAIN, or an answer without records of the type asked for."""


class DnsTempError(Exception):
    """A timeout or a server failure."""


class SpfCheckError(Exception):
    """The input is unusable (not a domain, not an address)."""


Lookup = Callable[[str, str], list[str]]


def dnspython_lookup(nameservers: list[str] | None = None, port: int = 53, timeout: float = 5.0) -> Lookup:
    """A lookup through dnspython's stub resolver: the system's resolvers, or the *nameservers* given.

    TXT answers come back as the joined strings of each record, MX answers as the exchange names
    in preference order, A/AAAA as addresses and PTR as names (all without the final dot).
    """
    if not HAS_DNSPYTHON:  # pragma: no cover - the module checks first
        raise SpfCheckError("dnspython is not installed")
    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = list(nameservers)
    resolver.port = port
    resolver.lifetime = timeout
    resolver.timeout = timeout

    def lookup(name: str, rdtype: str) -> list[str]:
        try:
            answer = resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            raise DnsVoid(f"{name} {rdtype}: no such domain") from None
        except dns.exception.DNSException as exc:
            raise DnsTempError(f"{name} {rdtype}: {exc}") from None
        if answer.rrset is None or len(answer.rrset) == 0:
            raise DnsVoid(f"{name} {rdtype}: no {rdtype} record")
        if rdtype == "TXT":
            return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer.rrset]
        if rdtype == "MX":
            ordered = sorted(answer.rrset, key=lambda rdata: rdata.preference)
            return [rdata.exchange.to_text(omit_final_dot=True) for rdata in ordered]
        if rdtype == "PTR":
            return [rdata.target.to_text(omit_final_dot=True) for rdata in answer.rrset]
        return [rdata.to_text() for rdata in answer.rrset]

    return lookup


@dataclass
class _Context:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    sender: str
    helo: str


@dataclass
class _Counter:
    lookups: list[str] = field(default_factory=list)
    voids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _Abort(Exception):
    """Stops an evaluation with a final result."""

    def __init__(self, result: str, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


def _normal(name: str) -> str:
    return name.lower().rstrip(".")


def _ip_letters(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> tuple[str, str]:
    if ip is None:
        return "", ""
    if ip.version == 4:
        return str(ip), "in-addr"
    return ".".join(ip.exploded.replace(":", "")), "ip6"


def expand(spec: str, domain: str, ctx: _Context) -> str:
    """Expand the macros of a domain-spec (RFC 7208, section 7)."""
    local, _at, sender_domain = ctx.sender.rpartition("@")
    dotted, version = _ip_letters(ctx.ip)
    values = {
        "s": ctx.sender,
        "l": local or "postmaster",
        "o": sender_domain,
        "d": domain,
        "i": dotted,
        "p": "unknown",
        "v": version,
        "h": ctx.helo or domain,
    }

    def replace(match: Any) -> str:
        if match.group(5):
            return {"%": "%", "_": " ", "-": "%20"}[match.group(5)]
        letter, digits, reverse, delimiters = match.groups()[:4]
        if letter.lower() not in values:
            raise _Abort("permerror", f"macro %{{{letter}}} is not allowed in a domain-spec")
        parts = re.split("[" + re.escape(delimiters or ".") + "]", values[letter.lower()])
        if reverse:
            parts.reverse()
        if digits:
            if int(digits) == 0:
                raise _Abort("permerror", "a macro keeps zero labels")
            parts = parts[-int(digits) :]
        text = ".".join(parts)
        return quote(text, safe="") if letter.isupper() else text

    expanded = _MACRO_RE.sub(replace, spec)
    while len(expanded) > 253 and "." in expanded:
        expanded = expanded.split(".", 1)[1]
    return expanded


class SpfCheck:
    """Analyze and evaluate a domain's SPF record through *lookup*."""

    def __init__(self, lookup: Lookup, *, lookup_limit: int = LOOKUP_LIMIT, void_limit: int = VOID_LIMIT) -> None:
        self._lookup = lookup
        self.lookup_limit = lookup_limit
        self.void_limit = void_limit
        self._cache: dict[tuple[str, str], list[str] | Exception] = {}
        #: Every DNS query sent, in order (the cache answers repeats).
        self.queries: list[str] = []

    # -- DNS -----------------------------------------------------------------

    def query(self, name: str, rdtype: str) -> list[str]:
        key = (_normal(name), rdtype)
        if key not in self._cache:
            self.queries.append(f"{key[0]} {rdtype}")
            try:
                self._cache[key] = list(self._lookup(key[0], rdtype))
            except (DnsVoid, DnsTempError) as exc:
                self._cache[key] = exc
        answer = self._cache[key]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def record(self, domain: str) -> str | None:
        """The SPF record of *domain*, or None when it has none. Raises DnsVoid, DnsTempError, SpfError."""
        try:
            texts = self.query(domain, "TXT")
        except DnsVoid:
            return None
        records = [text for text in texts if is_spf_record(text)]
        if len(records) > 1:
            raise SpfError(f"{domain} publishes {len(records)} SPF records; it must publish one (RFC 7208, 4.5)")
        return records[0] if records else None

    def _addresses(self, name: str, version: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address(text) for text in self.query(name, "A" if version == 4 else "AAAA")]

    # -- analysis ------------------------------------------------------------

    def analyze(self, domain: str, ip: str | None = None, sender: str | None = None, helo: str = "") -> dict[str, Any]:
        """Walk the whole record: lookups, void lookups, includes and errors."""
        ctx = self._context(domain, ip, sender, helo)
        counter = _Counter()
        try:
            top = self.record(domain)
        except SpfError as exc:
            counter.errors.append(str(exc))
            top = None
        except DnsTempError as exc:
            counter.errors.append(f"{domain}: DNS error: {exc}")
            top = None
        tree = {"domain": _normal(domain), "record": top, "includes": []}
        if top is not None:
            self._walk(tree, ctx, counter, (), {_normal(domain)})
        if len(counter.lookups) > self.lookup_limit:
            counter.errors.insert(
                0,
                f"{_normal(domain)}: {len(counter.lookups)} DNS lookups, more than the {self.lookup_limit} that SPF "
                f"allows (RFC 7208, 4.6.4); these count: {', '.join(counter.lookups)}",
            )
        if len(counter.voids) > self.void_limit:
            counter.errors.insert(
                0,
                f"{_normal(domain)}: {len(counter.voids)} void lookups, more than the {self.void_limit} that SPF "
                f"allows (RFC 7208, 4.6.4): {', '.join(counter.voids)}",
            )
        return {
            "domain": _normal(domain),
            "record": top,
            "lookups": len(counter.lookups),
            "lookup_terms": counter.lookups,
            "void_lookups": len(counter.voids),
            "void_terms": counter.voids,
            "includes": tree["includes"],
            "errors": counter.errors,
            "valid": top is not None and not counter.errors,
        }

    def _walk(
        self, node: dict[str, Any], ctx: _Context, counter: _Counter, path: tuple[str, ...], seen: set[str]
    ) -> None:
        domain = node["domain"]
        prefix = "".join(f"{step} > " for step in path)
        try:
            terms = parse_record(node["record"], f"the record of {domain}")
        except SpfError as exc:
            counter.errors.append(str(exc))
            return
        for term in terms:
            if not term.counts:
                continue
            label = prefix + str(term)
            counter.lookups.append(label)
            if "%" in term.value and (ctx.ip is None or not ctx.sender):
                continue  # a macro needs the address (and sender) to expand: counted, not queried
            try:
                target = _normal(expand(term.value, domain, ctx)) if term.value else domain
            except _Abort as exc:
                counter.errors.append(f"{label}: {exc.reason}")
                continue
            try:
                self._walk_term(term, target, node=node, ctx=ctx, counter=counter, path=path, seen=seen, label=label)
            except DnsVoid:
                counter.voids.append(label)
            except DnsTempError as exc:
                counter.errors.append(f"{label}: DNS error: {exc}")
            except SpfError as exc:
                counter.errors.append(f"{label}: {exc}")

    def _walk_term(
        self,
        term: Term,
        target: str,
        *,
        node: dict[str, Any],
        ctx: _Context,
        counter: _Counter,
        path: tuple[str, ...],
        seen: set[str],
        label: str,
    ) -> None:
        version = ctx.ip.version if ctx.ip is not None else 4
        if term.name in ("include", "redirect"):
            if target in seen:
                counter.errors.append(f"{label}: {target} is already on the way here (a loop)")
                return
            texts = self.query(target, "TXT")  # DnsVoid: a void lookup
            records = [text for text in texts if is_spf_record(text)]
            if len(records) != 1:
                counter.errors.append(
                    f"{label}: {target} has {'no' if not records else len(records)} SPF record"
                    f"{'s' if len(records) > 1 else ''}, which is a PermError"
                )
                return
            child = {"domain": target, "record": records[0], "via": str(term), "includes": []}
            node["includes"].append(child)
            self._walk(child, ctx, counter, (*path, str(term)), seen | {target})
        elif term.name in {"a", "exists"}:
            self._addresses(target, 4 if term.name == "exists" else version)
        elif term.name == "mx":
            names = self.query(target, "MX")
            if len(names) > NAME_LIMIT:
                counter.errors.append(f"{label}: {target} has {len(names)} MX names, more than {NAME_LIMIT}")
            for name in names[:NAME_LIMIT]:
                with contextlib.suppress(DnsVoid):
                    self._addresses(name, version)
        elif term.name == "ptr" and ctx.ip is not None:
            self.query(ctx.ip.reverse_pointer, "PTR")

    # -- evaluation ----------------------------------------------------------

    def evaluate(self, domain: str, ip: str, sender: str | None = None, helo: str = "") -> dict[str, Any]:
        """RFC 7208 check_host(): the result a receiver computes for mail from *ip*."""
        ctx = self._context(domain, ip, sender, helo)
        counter = _Counter()
        try:
            result, matched, where = self._check_host(_normal(domain), ctx, counter, 0)
            if matched:
                reason = f"{matched} in the record of {where}"
            elif result == "none":
                reason = f"{_normal(domain)} publishes no SPF record"
            else:
                reason = "no mechanism matched and there is no redirect: the default result"
        except _Abort as exc:
            result, matched, where, reason = exc.result, None, None, exc.reason
        return {
            "ip": str(ctx.ip),
            "result": result,
            "passes": result == "pass",
            "mechanism": matched,
            "mechanism_domain": where,
            "reason": reason,
        }

    def _check_host(
        self, domain: str, ctx: _Context, counter: _Counter, depth: int
    ) -> tuple[str, str | None, str | None]:
        try:
            record = self.record(domain)
        except SpfError as exc:
            raise _Abort("permerror", str(exc)) from None
        except DnsTempError as exc:
            raise _Abort("temperror", f"{domain}: {exc}") from None
        if record is None:
            return "none", None, None
        try:
            terms = parse_record(record, f"the record of {domain}")
        except SpfError as exc:
            raise _Abort("permerror", str(exc)) from None
        redirect = None
        for term in terms:
            if term.modifier:
                if term.name == "redirect":
                    redirect = term
                continue
            if term.counts:
                self._count(counter, domain, term)
            matched, inner = self._matches(term, domain, ctx, counter, depth)
            if matched:
                if inner is not None:
                    return QUALIFIERS[term.qualifier], inner[0], inner[1]
                return QUALIFIERS[term.qualifier], str(term), domain
        if redirect is not None:
            self._count(counter, domain, redirect)
            target = _normal(expand(redirect.value, domain, ctx))
            result, matched, where = self._check_host(target, ctx, counter, depth + 1)
            if result == "none":
                raise _Abort("permerror", f"{redirect} in the record of {domain}: {target} has no SPF record")
            return result, matched, where
        return "neutral", None, None

    def _count(self, counter: _Counter, domain: str, term: Term) -> None:
        counter.lookups.append(f"{domain}: {term}")
        if len(counter.lookups) > self.lookup_limit:
            raise _Abort(
                "permerror",
                f"more than {self.lookup_limit} DNS lookups before a match (RFC 7208, 4.6.4): "
                + ", ".join(counter.lookups),
            )

    def _void(self, counter: _Counter, domain: str, term: Term) -> None:
        counter.voids.append(f"{domain}: {term}")
        if len(counter.voids) > self.void_limit:
            raise _Abort("permerror", f"more than {self.void_limit} void lookups: {', '.join(counter.voids)}")

    def _matches(
        self, term: Term, domain: str, ctx: _Context, counter: _Counter, depth: int
    ) -> tuple[bool, tuple[str | None, str | None] | None]:
        """Whether *term* matches ctx.ip; for a matching include, also where the inner match was."""
        ip = ctx.ip
        if ip is None:  # pragma: no cover - evaluate() always has an address
            raise _Abort("permerror", "no address to evaluate")
        if term.name == "all":
            return True, None
        if term.name in ("ip4", "ip6"):
            if (term.name == "ip4") != (ip.version == 4):
                return False, None
            length = term.cidr4 if term.name == "ip4" else term.cidr6
            network = ipaddress.ip_network(
                f"{term.value}/{length if length is not None else ip.max_prefixlen}", strict=False
            )
            return ip in network, None
        target = _normal(expand(term.value, domain, ctx)) if term.value else domain
        try:
            if term.name == "include":
                try:
                    self.query(target, "TXT")
                except DnsVoid:
                    self._void(counter, domain, term)
                    raise _Abort("permerror", f"{term} in the record of {domain}: {target} does not exist") from None
                result, matched, where = self._check_host(target, ctx, counter, depth + 1)
                if result == "pass":
                    return True, (matched, where)
                if result in ("fail", "softfail", "neutral"):
                    return False, None
                if result == "temperror":
                    raise _Abort("temperror", f"{term} in the record of {domain}: DNS error")
                raise _Abort("permerror", f"{term} in the record of {domain}: {target} has no usable SPF record")
            if term.name == "exists":
                return bool(self._addresses(target, 4)), None
            if term.name == "a":
                return self._in_hosts([target], term, ip, void_counts=True), None
            if term.name == "mx":
                names = self.query(target, "MX")
                if len(names) > NAME_LIMIT:
                    raise _Abort("permerror", f"{term} in the record of {domain}: more than {NAME_LIMIT} MX names")
                return self._in_hosts(names, term, ip), None
            if term.name == "ptr":
                return self._ptr_matches(target, ip), None
        except DnsVoid:
            self._void(counter, domain, term)
            return False, None
        except DnsTempError as exc:
            raise _Abort("temperror", f"{term} in the record of {domain}: {exc}") from None
        return False, None  # pragma: no cover - every mechanism is handled above

    def _in_hosts(self, names: list[str], term: Term, ip: Any, void_counts: bool = False) -> bool:
        length = term.cidr4 if ip.version == 4 else term.cidr6
        for name in names:
            try:
                addresses = self._addresses(name, ip.version)
            except DnsVoid:
                if void_counts:
                    raise
                continue
            for address in addresses:
                prefix = length if length is not None else ip.max_prefixlen
                if ip in ipaddress.ip_network(f"{address}/{prefix}", strict=False):
                    return True
        return False

    def _ptr_matches(self, target: str, ip: Any) -> bool:
        try:
            names = self.query(ip.reverse_pointer, "PTR")[:NAME_LIMIT]
        except DnsVoid:
            return False
        for found in (_normal(name) for name in names):
            if found != target and not found.endswith("." + target):
                continue
            try:
                if ip in self._addresses(found, ip.version):
                    return True
            except DnsVoid:
                continue
        return False

    # -- input ---------------------------------------------------------------

    @staticmethod
    def _context(domain: str, ip: str | None, sender: str | None, helo: str) -> _Context:
        if not isinstance(domain, str) or not domain.strip(". ") or any(ch.isspace() for ch in domain):
            raise SpfCheckError(f"domain: {domain!r} is not a domain name")
        address = None
        if ip:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                raise SpfCheckError(f"ip: {ip!r} is not an IPv4 or IPv6 address") from None
            if address.version == 6 and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
        return _Context(ip=address, sender=sender or f"postmaster@{_normal(domain)}", helo=helo or "")

    def check(self, domain: str, ip: str | None = None, sender: str | None = None, helo: str = "") -> dict[str, Any]:
        """Analyze the record, and evaluate it for *ip* when one is given."""
        result = self.analyze(domain, ip, sender, helo)
        if ip:
            result["ip_result"] = self.evaluate(domain, ip, sender, helo)
        result["queries"] = list(self.queries)
        return result
