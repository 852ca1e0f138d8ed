# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SPF records (RFC 7208): build one from a structure, parse one, count its DNS lookups.

Used by the ``spf_record`` and ``spf_lookups`` filters (no DNS: the records of included
domains are given) and by ``spf_check`` through ``spf_check.py`` (live DNS). Errors are
raised as SpfError with a message that names the term and, for nested records, the path
of includes that led to it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: RFC 7208 4.6.4: at most 10 terms that cause DNS queries, and at most 2 void lookups.
LOOKUP_LIMIT = 10
VOID_LIMIT = 2
#: RFC 7208 4.6.4: an "mx" or "ptr" term may look up at most 10 names' addresses.
NAME_LIMIT = 10

QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
#: Mechanisms (and the redirect modifier) that cost one of the 10 DNS lookups.
DNS_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")
#: The ``all`` qualifiers the builder accepts, by name and by symbol.
ALL_QUALIFIERS = {"fail": "-", "softfail": "~", "neutral": "?", "-": "-", "~": "~", "?": "?"}
STRUCTURE_KEYS = ("a", "mx", "ip4", "ip6", "include", "exists", "redirect", "all")
#: The modifiers of RFC 7208 (others are ignored by receivers, so in a record we publish they are typos).
MODIFIERS = ("redirect", "exp")
#: A published record may not authorize more than this: the largest block ever handed to one holder (a /8),
#: or an IPv6 /16. Networks wider than these, alone or together, are refused.
WIDEST_IP4 = 8
WIDEST_IP6 = 16

_VERSION_RE = re.compile(r"^v=spf1(?: |\Z)", re.IGNORECASE)
_MODIFIER_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*)=(.*)\Z")
_MECHANISM_RE = re.compile(r"^([+\-~?]?)([A-Za-z0-9]+)(.*)\Z")
_DUAL_CIDR_RE = re.compile(r"^(.*?)(?:/(\d{1,3}))?(?://(\d{1,3}))?\Z")
_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")
_MACRO_RE = re.compile(r"%(?:\{([slodiphcrtvSLODIPHCRTV])(\d*)(r?)([.\-+,/_=]*)\}|[%_-])")


class SpfError(ValueError):
    """An invalid structure or record, or a record past a limit of RFC 7208."""


@dataclass(frozen=True)
class Term:
    """One term of a record: a mechanism (with its qualifier) or a modifier."""

    name: str
    qualifier: str = "+"
    #: The domain-spec (include, exists, a, mx, ptr, redirect, exp) or the network (ip4, ip6), or "".
    value: str = ""
    cidr4: int | None = None
    cidr6: int | None = None
    modifier: bool = False

    @property
    def counts(self) -> bool:
        """Whether this term costs one of the 10 DNS lookups."""
        return self.name in DNS_TERMS

    def __str__(self) -> str:
        if self.modifier:
            return f"{self.name}={self.value}"
        text = ("" if self.qualifier == "+" else self.qualifier) + self.name
        if self.value:
            text += f":{self.value}"
        if self.cidr4 is not None:
            text += f"/{self.cidr4}"
        if self.cidr6 is not None:
            text += f"{'//' if self.name in ('a', 'mx') else '/'}{self.cidr6}"
        return text


# -- names -------------------------------------------------------------------


def is_domain(name: Any) -> bool:
    """A fully qualified domain name: two or more labels of letters, digits, '-' and '_'."""
    if not isinstance(name, str):
        return False
    name = name[:-1] if name.endswith(".") else name
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2:
        return False
    return all(_LABEL_RE.match(label) for label in labels) and not labels[-1].isdigit()


def check_domain_spec(spec: str, where: str) -> None:
    """Raise SpfError unless *spec* is a domain name, possibly with RFC 7208 macros."""
    if not spec or any(ch.isspace() or ord(ch) < 33 or ord(ch) > 126 for ch in spec):
        raise SpfError(f"{where}: {spec!r} is not a domain name")
    if "%" not in spec:
        if not is_domain(spec):
            raise SpfError(f"{where}: {spec!r} is not a fully qualified domain name")
        return
    if "%" in _MACRO_RE.sub("", spec):
        raise SpfError(f"{where}: {spec!r} has an invalid macro (RFC 7208, section 7)")


# -- parsing -------------------------------------------------------------------


def _cidr(text: str | None, maximum: int, where: str) -> int | None:
    if text is None:
        return None
    value = int(text)
    if value > maximum or (len(text) > 1 and text.startswith("0")):
        raise SpfError(f"{where}: prefix length /{text} is not between 0 and {maximum}")
    return value


def _network(name: str, text: str, where: str) -> tuple[str, int | None]:
    address, _slash, length = text.partition("/")
    version = 4 if name == "ip4" else 6
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise SpfError(f"{where}: {address!r} is not an IPv{version} address") from None
    if ip.version != version:
        raise SpfError(f"{where}: {address!r} is not an IPv{version} address")
    if _slash and not length.isdigit():
        raise SpfError(f"{where}: invalid prefix length {length!r}")
    return address, _cidr(length, 32 if version == 4 else 128, where) if _slash else None


def parse_term(text: str, where: str = "record") -> Term:
    """Parse one term (``-all``, ``ip4:192.0.2.0/24``, ``redirect=_spf.example.org``, ...)."""
    at = f"{where}: term {text!r}"
    mechanism = _MECHANISM_RE.match(text)
    modifier = _MODIFIER_RE.match(text)
    if modifier and not (mechanism and mechanism.group(2).lower() in MECHANISMS and mechanism.group(3)[:1] in ":/"):
        name = modifier.group(1).lower()
        value = modifier.group(2)
        if name in ("redirect", "exp"):
            check_domain_spec(value, at)
        return Term(name=name, value=value, modifier=True)
    if not mechanism:
        raise SpfError(f"{at}: not a mechanism or modifier")
    qualifier, name, rest = mechanism.group(1) or "+", mechanism.group(2).lower(), mechanism.group(3)
    if name not in MECHANISMS:
        raise SpfError(f"{at}: unknown mechanism '{name}' (known: {', '.join(MECHANISMS)})")
    if name == "all":
        if rest:
            raise SpfError(f"{at}: 'all' takes no argument")
        return Term(name=name, qualifier=qualifier)
    if name in ("ip4", "ip6"):
        if not rest.startswith(":") or len(rest) < 2:
            raise SpfError(
                f"{at}: {name} needs an address, as in {name}:{'192.0.2.0/24' if name == 'ip4' else '2001:db8::/32'}"
            )
        value, cidr = _network(name, rest[1:], at)
        return Term(
            name=name,
            qualifier=qualifier,
            value=value,
            cidr4=cidr if name == "ip4" else None,
            cidr6=cidr if name == "ip6" else None,
        )
    if name in ("include", "exists"):
        if not rest.startswith(":") or len(rest) < 2:
            raise SpfError(f"{at}: {name} needs a domain, as in {name}:_spf.example.org")
        check_domain_spec(rest[1:], at)
        return Term(name=name, qualifier=qualifier, value=rest[1:])
    # a, mx, ptr: an optional domain-spec, then (a and mx only) an optional dual CIDR length.
    if rest and rest[0] not in ":/":
        raise SpfError(f"{at}: unknown mechanism '{name}{rest}'")
    domain, cidr4, cidr6 = rest, None, None
    if name != "ptr":
        dual = _DUAL_CIDR_RE.fullmatch(rest)
        if dual is None:  # pragma: no cover - the pattern matches any string
            raise SpfError(f"{at}: invalid argument {rest!r}")
        domain, cidr4, cidr6 = dual.group(1), _cidr(dual.group(2), 32, at), _cidr(dual.group(3), 128, at)
    if domain.startswith(":"):
        domain = domain[1:]
        check_domain_spec(domain, at)
    elif domain:
        raise SpfError(f"{at}: invalid argument {domain!r}")
    return Term(name=name, qualifier=qualifier, value=domain, cidr4=cidr4, cidr6=cidr6)


def is_spf_record(text: str) -> bool:
    """Whether a TXT string is an SPF record (starts with ``v=spf1``)."""
    return bool(_VERSION_RE.match(text))


def parse_record(text: Any, where: str = "record") -> list[Term]:
    """Parse a record into its terms; raise SpfError naming the first bad term."""
    if not isinstance(text, str) or not is_spf_record(text):
        raise SpfError(f"{where}: {text!r} is not an SPF record (it must start with 'v=spf1')")
    terms = [parse_term(word, where) for word in text.split(" ")[1:] if word]
    for name in ("redirect", "exp"):
        if sum(1 for term in terms if term.modifier and term.name == name) > 1:
            raise SpfError(f"{where}: the {name} modifier appears more than once")
    return terms


# -- counting from given records -------------------------------------------------------


def count_lookups(
    record: str,
    resolved: Mapping[str, str] | None = None,
    *,
    where: str = "record",
    _path: tuple[str, ...] = (),
) -> list[str]:
    """Return the terms of *record* that cost a DNS lookup, nested includes and redirects included.

    *resolved* maps an included (or redirect) domain to its record; a domain missing from it costs
    its own lookup only. Each entry names its path: ``include:_spf.a.example > mx``.
    """
    resolved = {key.lower().rstrip("."): value for key, value in (resolved or {}).items()}
    terms = parse_record(record, where)
    counted = []
    prefix = "".join(f"{step} > " for step in _path)
    for term in terms:
        if not term.counts:
            continue
        counted.append(prefix + str(term))
        if term.name in ("include", "redirect") and "%" not in term.value:
            target = term.value.lower().rstrip(".")
            if target in (step.split(":", 1)[-1].split("=", 1)[-1].lower() for step in _path):
                raise SpfError(f"{where}: {prefix}{term} includes itself (a loop)")
            if target in resolved:
                counted.extend(
                    count_lookups(
                        resolved[target],
                        resolved,
                        where=f"{where}: the record of {target}",
                        _path=(*_path, str(term)),
                    )
                )
    return counted


def check_limit(counted: Sequence[str], where: str) -> None:
    """Raise SpfError when *counted* holds more than LOOKUP_LIMIT terms."""
    if len(counted) > LOOKUP_LIMIT:
        raise SpfError(
            f"{where} needs {len(counted)} DNS lookups, more than the {LOOKUP_LIMIT} that SPF allows "
            f"(RFC 7208, section 4.6.4); receivers then answer PermError. These count: {', '.join(counted)}"
        )


# -- what a published record may say ---------------------------------------------------------


def _widest(term: Term) -> tuple[int | None, int | None]:
    """The prefix lengths a pass-qualified term authorizes (None: not an address term)."""
    if term.name == "ip4":
        return (32 if term.cidr4 is None else term.cidr4), None
    if term.name == "ip6":
        return None, (128 if term.cidr6 is None else term.cidr6)
    if term.name in ("a", "mx"):
        return term.cidr4, term.cidr6
    return None, None


def check_published(record: Any, where: str = "record") -> list[Term]:
    """Parse a record this collection publishes and refuse what lets (nearly) every host send as the domain.

    The one check of both forms of an SPF value (the structure that :func:`build_record` builds, and
    a record given as a string): printable ASCII only; no ``+all``, ``all`` or ``?all``; nothing after
    ``all`` (never evaluated), and not both ``all`` and ``redirect``; no modifier but ``redirect`` and
    ``exp``; no pass (or neutral) network wider than an IPv4 /8 or an IPv6 /16, alone or together
    (``ip4:0.0.0.0/1 ip4:128.0.0.0/1``), also as the prefix of ``a``/``mx``; no ``exists`` without a
    macro (it matches every sender). Returns the terms.
    """
    if isinstance(record, str):
        bad = sorted({ch for ch in record if not 32 <= ord(ch) <= 126})
        if bad:
            shown = ", ".join(repr(ch) for ch in bad)
            raise SpfError(f"{where}: {record!r} contains {shown}: an SPF record is printable ASCII only")
    terms = parse_record(record, where)
    wide4: list[ipaddress.IPv4Network] = []
    wide6: list[ipaddress.IPv6Network] = []
    seen_all = False
    for term in terms:
        if seen_all:
            raise SpfError(f"{where}: term {str(term)!r} comes after 'all' and is never evaluated")
        if term.modifier:
            if term.name not in MODIFIERS:
                raise SpfError(
                    f"{where}: unknown modifier {term.name!r} (receivers ignore it; known: {', '.join(MODIFIERS)})"
                )
            continue
        if term.name == "all":
            seen_all = True
            if term.qualifier == "+":
                raise SpfError(
                    f"{where}: term {str(term)!r} (pass) would let every host on "
                    "the internet send mail as this domain; end with -all (fail) or ~all (softfail)"
                )
            if term.qualifier == "?":
                raise SpfError(
                    f"{where}: term '?all' (neutral) lets every host on the internet send mail as this domain "
                    "without failing SPF; end with -all (fail) or ~all (softfail)"
                )
            continue
        if term.qualifier not in ("+", "?"):
            continue
        if term.name == "exists" and "%" not in term.value:
            raise SpfError(
                f"{where}: term {str(term)!r} has no macro, so it matches every sender whenever "
                f"{term.value} resolves; use a macro such as %{{i}}, or ip4/ip6"
            )
        cidr4, cidr6 = _widest(term)
        if cidr4 is not None and cidr4 < WIDEST_IP4:
            raise SpfError(
                f"{where}: term {str(term)!r} authorizes a /{cidr4}, wider than a /{WIDEST_IP4}: (nearly) every "
                "IPv4 host could send mail as this domain"
            )
        if cidr6 is not None and cidr6 < WIDEST_IP6:
            raise SpfError(
                f"{where}: term {str(term)!r} authorizes a /{cidr6}, wider than a /{WIDEST_IP6}: (nearly) every "
                "IPv6 host could send mail as this domain"
            )
        if term.name == "ip4":
            wide4.append(ipaddress.IPv4Network(f"{term.value}/{cidr4}", strict=False))
        elif term.name == "ip6":
            wide6.append(ipaddress.IPv6Network(f"{term.value}/{cidr6}", strict=False))
    if seen_all and any(term.modifier and term.name == "redirect" for term in terms):
        raise SpfError(
            f"{where}: give either all or redirect: a record with 'all' never follows its redirect (RFC 7208, 6.1)"
        )
    for networks, widest, version in ((wide4, WIDEST_IP4, 4), (wide6, WIDEST_IP6, 6)):
        bits = 32 if version == 4 else 128
        total = sum(net.num_addresses for net in ipaddress.collapse_addresses(networks))  # type: ignore[arg-type]
        if total > 2 ** (bits - widest):
            raise SpfError(
                f"{where}: the ip{version} terms together authorize {total} addresses, more than a /{widest} "
                f"({2 ** (bits - widest)}): (nearly) every IPv{version} host could send mail as this domain"
            )
    return terms


# -- building --------------------------------------------------------------------------


def _as_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise SpfError(f"{where}: must be a list, got {type(value).__name__}")
    return list(value)


def _host_terms(name: str, value: Any, where: str) -> list[str]:
    """``a`` and ``mx``: true (the domain itself), or a list of ``[domain][/cidr4][//cidr6]``."""
    if value is None or value is False:
        return []
    if value is True:
        return [name]
    terms = []
    for index, item in enumerate(_as_list(value, f"{where}.{name}")):
        at = f"{where}.{name}[{index}]"
        if not isinstance(item, str) or not item.strip():
            raise SpfError(f"{at}: must be a domain, optionally with /prefix, got {item!r}")
        spec = item.strip()
        text = f"{name}{'' if spec.startswith('/') else ':'}{spec}"
        if "%" in spec:
            raise SpfError(f"{at}: macros are not supported here, got {item!r}")
        parse_term(text, at)
        terms.append(text)
    return terms


def _network_terms(name: str, value: Any, where: str) -> list[str]:
    terms = []
    for index, item in enumerate(_as_list(value, f"{where}.{name}")):
        at = f"{where}.{name}[{index}]"
        if not isinstance(item, str):
            raise SpfError(f"{at}: must be a string, got {item!r}")
        version = 4 if name == "ip4" else 6
        try:
            network = ipaddress.ip_network(item.strip(), strict=True)
        except ValueError as exc:
            raise SpfError(f"{at}: {item!r} is not an IPv{version} address or network: {exc}") from None
        if network.version != version:
            raise SpfError(f"{at}: {item!r} is not an IPv{version} address or network")
        full = network.prefixlen == network.max_prefixlen
        terms.append(f"{name}:{network.network_address}" + ("" if full else f"/{network.prefixlen}"))
    return terms


def _domain_terms(name: str, value: Any, where: str, macros: bool) -> list[str]:
    terms = []
    for index, item in enumerate(_as_list(value, f"{where}.{name}")):
        at = f"{where}.{name}[{index}]"
        if not isinstance(item, str):
            raise SpfError(f"{at}: must be a domain name, got {item!r}")
        spec = item.strip()
        if "%" in spec and not macros:
            raise SpfError(f"{at}: macros are not supported in {name}, got {item!r}")
        check_domain_spec(spec, at)
        terms.append(f"{name}:{spec}")
    return terms


def build_record(structure: Any, resolved: Mapping[str, str] | None = None, where: str = "spf_record") -> str:
    """Build the TXT value of an SPF record from a structure, validate it and check its lookup count.

    ``{a: true, mx: true, ip4: [...], ip6: [...], include: [...], exists: [...], redirect: domain,
    all: fail|softfail|neutral}``; without ``all`` and ``redirect`` the record ends in ``~all``.
    """
    if not isinstance(structure, Mapping):
        raise SpfError(f"{where}: must be a mapping with the keys {', '.join(STRUCTURE_KEYS)}")
    unknown = sorted(str(key) for key in structure if key not in STRUCTURE_KEYS)
    if unknown:
        raise SpfError(f"{where}: unknown keys {', '.join(unknown)} (allowed: {', '.join(STRUCTURE_KEYS)})")
    terms = ["v=spf1"]
    for name in ("a", "mx"):
        if name in structure and not isinstance(structure[name], (bool, list, type(None))):
            raise SpfError(f"{where}.{name}: must be true, false or a list of domains, got {structure[name]!r}")
        terms += _host_terms(name, structure.get(name), where)
    terms += _network_terms("ip4", structure.get("ip4"), where)
    terms += _network_terms("ip6", structure.get("ip6"), where)
    terms += _domain_terms("include", structure.get("include"), where, macros=False)
    terms += _domain_terms("exists", structure.get("exists"), where, macros=True)
    duplicates = sorted({term for term in terms if terms.count(term) > 1})
    if duplicates:
        raise SpfError(f"{where}: {', '.join(duplicates)} given more than once")
    redirect = structure.get("redirect")
    qualifier = structure.get("all")
    if redirect not in (None, ""):
        if qualifier not in (None, ""):
            raise SpfError(
                f"{where}: give either all or redirect: a record with 'all' never follows its redirect (RFC 7208, 6.1)"
            )
        if not isinstance(redirect, str):
            raise SpfError(f"{where}.redirect: must be a domain name, got {redirect!r}")
        check_domain_spec(redirect.strip(), f"{where}.redirect")
        if "%" in redirect:
            raise SpfError(f"{where}.redirect: macros are not supported here, got {redirect!r}")
        terms.append(f"redirect={redirect.strip()}")
    else:
        qualifier = "softfail" if qualifier in (None, "") else qualifier
        if qualifier in ("pass", "+"):
            raise SpfError(
                f"{where}.all: 'pass' (+all) would let every host on the internet send mail as this domain; "
                "use fail, softfail or neutral"
            )
        if not isinstance(qualifier, str) or qualifier.lower() not in ALL_QUALIFIERS:
            raise SpfError(f"{where}.all: must be one of fail, softfail, neutral (or -, ~, ?), got {qualifier!r}")
        terms.append(f"{ALL_QUALIFIERS[qualifier.lower()]}all")
    if len(terms) == 2 and terms[-1].endswith("all") and not terms[-1].startswith("-"):
        raise SpfError(
            f"{where}: the record authorizes no host; give a, mx, ip4, ip6, include or exists (or all: fail for "
            "a domain that sends no mail)"
        )
    record = " ".join(terms)
    check_published(record, where)
    check_limit(count_lookups(record, resolved, where=where), where)
    return record
