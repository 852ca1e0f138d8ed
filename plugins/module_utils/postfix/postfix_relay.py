# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Would Postfix relay for anyone?  Judge restriction lists the way smtpd evaluates them.

smtpd evaluates ``smtpd_relay_restrictions`` and then ``smtpd_recipient_restrictions`` for every
RCPT TO; a recipient in a remote domain is relayed only when neither list rejects it.  A list
stops relaying when, for a client that is neither in ``mynetworks`` nor authenticated, an entry
that rejects unauthorized destinations (``reject_unauth_destination``, ``defer_unauth_destination``,
``reject``, ``defer``, ``defer_if_permit``) comes before any entry that permits that client.  So:

- ``warn_if_reject`` turns the next entry into a log line: it no longer stops anything;
- ``permit``, an access check that permits an outside client, or a restriction class that does
  one of these, permits everyone: the entries after it are never evaluated.  Lookup tables are
  modelled as smtpd opens them (:func:`table_view`: static, inline, randmap, unionmap, pipemap,
  proxy, and the text of indexed, cidr, regexp and pcre tables); which of their keys an outsider
  reaches depends on the check (:func:`reachable_rules`): any key of a sender or HELO table
  (Postfix's access(5) warns of exactly this), the client name ``unknown``, a top-level domain or
  a wide address range of a client table, a top-level domain or ``local-part@`` of a recipient
  table; results are read as smtpd's check_table_result() reads them (:func:`action_outcome`);
- ``permit_mynetworks`` permits everyone when ``mynetworks`` trusts clients anywhere (a table
  matching every client, more than a /8 of public IPv4: :data:`MAX_PUBLIC_IPV4`);
- ``permit_tls_all_clientcerts``, a catch-all ``relay_clientcerts``, ``permit_mx_backup``
  without ``permit_mx_backup_networks`` and a policy service on another host that is not trusted
  (``trusted_policy_services``) permit everyone;
- ``relay_domains`` that match every domain or a whole top-level domain are refused on their own;
- a list that ends without a decision permits.

Every master.cf ``smtpd`` service reachable from outside is judged with its own ``-o``
overrides.  An open relay is refused unless it was asked for explicitly (``allow_open_relay``).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_restrictions import (
    ARG_TABLE,
    DEFAULT_RELAY_RESTRICTIONS,
    RESTRICTIONS,
    group_restrictions,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import (
    TABLE_TOKEN_RE,
    MasterService,
    PostfixSyntaxError,
    PostfixValidationError,
    expand_value,
    render_value,
    split_list,
)

OPEN = "open"
BLOCK = "block"
PASS = "pass"

#: Entries that reject a recipient in a domain this server does not serve or relay for.
BLOCKERS = ("reject_unauth_destination", "defer_unauth_destination", "reject", "defer", "defer_if_permit")
#: Access table results (access(5)) that end the evaluation without relaying.
_REJECT_ACTIONS = ("REJECT", "DEFER", "DEFER_IF_PERMIT", "BOUNCE", "DISCARD", "HANGUP")
#: Access table results that neither permit nor stop the list.
_NEUTRAL_ACTIONS = ("DUNNO", "HOLD", "FILTER", "PREPEND", "REDIRECT", "WARN", "INFO", "BCC", "DEFER_IF_REJECT", "DELAY")
#: Keys an outside client controls, by the kind of lookup, used to recognise a catch-all pattern.
_PROBES = {
    "client": ("203.0.113.9", "198.51.100.23", "2001:db8::5", "mail.attacker.example", "unknown"),
    "helo": ("attacker.example", "x.test"),
    "address": ("spam@attacker.example", "x@y.test"),
}
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
OPT_IN_HINT = (
    "to run an open relay on purpose, set postfix_allow_open_relay: true in the postfix role "
    '(in a fragment: "allow_open_relay": true)'
)


class Verdict(NamedTuple):
    """What a restriction list does with an outside client relaying to a remote domain."""

    outcome: str
    reason: str


def cover_everything(param: str, items: Iterable[str]) -> str | None:
    """Why a normalized address list (mynetworks) matches every client, or None.

    Negations and ``$name``/file/table entries are ignored: a list that trusts every address
    apart from a few is still an open door.  Postfix matches IPv4 clients against IPv4 networks
    only, so ``::/0`` covers every IPv6 client and no IPv4 one.
    """
    items = list(items)
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for item in items:
        if item.startswith(("!", "$", "/")) or (TABLE_TOKEN_RE.match(item) and not item.startswith("[")):
            continue
        text = item.replace("[", "").replace("]", "")
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            v4.append(net)
            continue
        v6.append(net)
    covered = []
    if v4 and list(ipaddress.collapse_addresses(v4)) == [ipaddress.ip_network("0.0.0.0/0")]:
        covered.append("every IPv4 address")
    if v6 and list(ipaddress.collapse_addresses(v6)) == [ipaddress.ip_network("::/0")]:
        covered.append("every IPv6 address")
    if not covered:
        return None
    return f"parameter {param}: {', '.join(items)} covers {' and '.join(covered)}, so every client is trusted"


def action_outcome(action: str) -> str | None:
    """The outcome of an access(5) result for relaying: OPEN, BLOCK, PASS, or None for a restriction list.

    Read the way smtpd's check_table_result() reads it: the command is the text up to the first
    space or tab, compared without regard to case; ``OK`` and ``RELAY`` permit, so does a value of
    digits only (even ``550``: only ``4NN text`` and ``5NN text`` reject), and so does an empty
    list (a value of only commas and blanks).  Lookup tables drop the blanks around a value.
    """
    value = action.strip(" \t\r\n\v\f")
    if not split_list(value):
        return OPEN
    command = re.split(r"[ \t]", value, maxsplit=1)[0]
    text = value[len(command) :].strip()
    word = command.upper()
    if value.isascii() and value.isdigit():
        return OPEN
    if re.match(r"^[45][0-9][0-9]\Z", command) and text.strip():
        return BLOCK
    if word in ("OK", "RELAY"):
        return OPEN
    if word in _REJECT_ACTIONS:
        return BLOCK
    if word in _NEUTRAL_ACTIONS:
        return PASS
    if ":" in value or command[:1].isdigit():
        return BLOCK  # smtpd answers "451 4.3.5 Server configuration error"
    return None


def _probe_kind(name: str) -> str:
    if name.startswith(("check_client", "check_reverse_client", "check_ccert", "check_sasl")):
        return "client"
    if name.startswith("check_helo"):
        return "helo"
    return "address"


_PATTERN_LINE_RE = re.compile(r"^(?P<neg>!?)/(?P<body>(?:[^/\\]|\\.)*)/(?P<flags>[A-Za-z]*)\s+(?P<action>.*)\Z")


#: Access checks whose key the client chooses: the envelope sender (and its domain's MX, NS or A
#: records, which the sender's own DNS answers) and the HELO name.
_CLAIMED_KEY_CHECKS = ("check_sender_", "check_helo_")


def table_permits_any_key(table_type: str, text: str) -> tuple[str, str] | None:
    """(key, action) of the first entry of a table that permits (OK, or a number that is not 4xx/5xx)."""
    for rule in _parse_table_text(table_type, text):
        if action_outcome(rule.value) == OPEN or rule.value.split()[0].lower() == "permit":
            return rule.key, rule.value
    return None


def table_catch_all(table_type: str, text: str, kind: str = "address") -> str | None:
    """The result a cidr/regexp/pcre table gives every key (its first catch-all entry), or None."""
    if table_type not in ("cidr", "regexp", "pcre"):
        return None
    for rule in _parse_table_text(table_type, text):
        if (rule.match == "cidr" and rule.test.prefixlen == 0) or _matches_all(rule, _PROBES[kind]):
            return rule.value
    return None


#: Address-space thresholds: a list of trusted networks (mynetworks, or the addresses an access
#: table permits) may cover at most this much of the public Internet.  The largest blocks one
#: organisation holds are legacy IPv4 /8s and IPv6 allocations of a /19 or so; anything wider
#: takes in addresses that anyone can rent from a hosting provider.
MAX_PUBLIC_IPV4 = 1 << 24  # one /8
MAX_PUBLIC_IPV6 = 1 << 112  # one /16 of the global unicast space 2000::/3
#: Above these (a /16 of IPv4, a /32 of IPv6) a trusted network is allowed but reported.
NOTABLE_PUBLIC_IPV4 = 1 << 16
NOTABLE_PUBLIC_IPV6 = 1 << 96
_NON_PUBLIC_V4 = tuple(
    ipaddress.ip_network(net)
    for net in ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
                "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4")
)  # fmt: skip
_GLOBAL_V6 = ipaddress.ip_network("2000::/3")
#: Names any outside client can have: no reverse DNS gives "unknown"; the others are names under
#: domains an attacker registers (a verified client name is forward-confirmed in the attacker's DNS).
_CLIENT_NAMES = ("unknown", "mail.attacker.example", "mx1.attacker.com", "203-0-113-9.dyn.attacker.net")
_CLIENT_ADDRESSES = ("203.0.113.9", "198.51.100.23", "2001:db8::5")
#: Client certificate and public key fingerprints (smtpd_tls_fingerprint_digest, upper-case hex with colons).
_FINGERPRINTS = (
    "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55",
    "5D:41:40:2A:BC:4B:2A:76:B9:71:9D:91:10:17:C5:92",
)
#: One public address in each /8 of the IPv4 Internet that holds public addresses, to measure how
#: much of it an address pattern (regexp, pcre) matches.
_SAMPLE_V4 = tuple(f"{a}.1.{(a * 7) % 250 + 2}.{(a * 13) % 250 + 3}" for a in range(1, 224) if a not in (10, 127))
_DOMAINS = ("attacker.example", "gmail.com", "mail.example.net")
#: Access checks whose OK smtpd refuses with "451 4.3.5 Server configuration error"
#: (forbid_allowlist() in smtpd_check.c): they never permit a client.
_NO_ALLOWLIST_CHECKS = re.compile(
    r"^check_(reverse_client_hostname(_a|_mx|_ns)?|(client|helo|sender|recipient)_(a|mx|ns))_access\Z"
)
_IPV4_PREFIX_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){0,3}\Z")
_IPV6_PREFIX_RE = re.compile(r"^[0-9a-f]{1,4}(:[0-9a-f]{1,4}){0,6}\Z", re.IGNORECASE)
_LABEL_RE = re.compile(r"^\.?([a-z]{2,63}|xn--[a-z0-9-]+)\.?\Z", re.IGNORECASE)  # a top-level domain
#: Table types whose entries are exact keys (smtpd also looks up parent domains and networks in them).
#: Public suffixes of two labels under which anyone can register a name (the common ones; a key
#: of one label is a top-level domain already).
_PUBLIC_SUFFIXES = frozenset(
    f"{second}.{tld}"
    for tld, seconds in {
        "uk": ("co", "org", "me", "ltd", "plc", "net"), "au": ("com", "net", "org", "id"), "nz": ("co", "org", "net"),
        "jp": ("co", "ne", "or"), "br": ("com", "net", "org"), "cn": ("com", "net", "org"), "in": ("co", "net", "org"),
        "za": ("co", "org", "net"), "mx": ("com", "org"), "ar": ("com", "org"), "tr": ("com", "net", "org"),
        "kr": ("co", "or"), "tw": ("com", "org"), "il": ("co", "org"), "sg": ("com",), "hk": ("com",),
    }.items()
    for second in seconds
)  # fmt: skip
_INDEXED_TYPES = ("hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash")
_REMOTE_TABLE_TYPES = ("tcp", "socketmap")


class Rule(NamedTuple):
    """One entry of a lookup table: how it matches (any, exact, cidr, pattern), its key, its result."""

    match: str
    key: str
    value: str
    test: Any = None


def split_braced(name: str) -> list[str]:
    """The members of a ``{a, b}`` table name (unionmap, pipemap, randmap, inline), braces kept inside."""
    text = name.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    return split_list(text)


def _strip_braces(text: str) -> str:
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        return text[1:-1].strip()
    return text


def _is_top_level_domain(key: str) -> bool:
    """A key such as ``com``, ``.com`` or ``co.uk``: a whole top-level domain or a public suffix under
    which anyone can register a name (an IP address prefix is not one)."""
    name = key.strip(".").lower()
    if name in _PUBLIC_SUFFIXES:
        return True
    return bool(_LABEL_RE.match(key)) and not name.isdigit() and name != ""


def _pattern_probes(rule: Rule, kind: str) -> list[str]:
    """Names an attacker can have that a pattern's own text suggests.

    A literal top-level domain (``/\\.de$/``) gives ``mail.attacker.de``; a literal
    ``example.org`` gives ``mail.attackerexample.org`` (a name under a domain anyone can
    register, which ``/example\\.org$/`` matches but ``/\\.example\\.org$/`` does not).
    """
    probes = []
    for fragment in re.findall(r"[A-Za-z0-9-]+(?:\\\.[A-Za-z0-9-]+)*", rule.key):
        labels = fragment.split("\\.")
        if len(labels) == 1:
            probes.append(f"mail.attacker.{labels[0]}")
        elif len(labels) == 2:
            probes += [f"mail.attacker{labels[0]}.{labels[1]}", f"mail.attacker.{labels[1]}"]
    if kind == "recipient":
        return [f"spam@{probe.removeprefix('mail.')}" for probe in probes if "attacker." in probe]
    if kind == "domain":
        return [probe.removeprefix("mail.") for probe in probes if "attacker." in probe]
    return probes


def _address_key_network(key: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network an indexed access-table key covers: smtpd looks up ``1.2.3.4``, ``1.2.3``, ``1.2``, ``1``."""
    text = key.strip("[]")
    if _IPV4_PREFIX_RE.match(text):
        octets = text.split(".")
        if any(int(octet) > 255 for octet in octets):
            return None
        padded = ".".join(octets + ["0"] * (4 - len(octets)))
        return ipaddress.ip_network(f"{padded}/{8 * len(octets)}")
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        pass
    if _IPV6_PREFIX_RE.match(text):
        groups = text.split(":")
        return ipaddress.ip_network(f"{':'.join(groups + ['0'] * (8 - len(groups)))}/{16 * len(groups)}")
    return None


def public_coverage(networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> tuple[int, int]:
    """(public IPv4 addresses, global unicast IPv6 addresses) that *networks* cover together."""
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    count4 = 0
    for net in ipaddress.collapse_addresses(v4):
        count4 += net.num_addresses - sum(
            min(net.num_addresses, private.num_addresses) for private in _NON_PUBLIC_V4 if net.overlaps(private)
        )
    count6 = 0
    for net in ipaddress.collapse_addresses(v6):
        if net.overlaps(_GLOBAL_V6):
            count6 += min(net.num_addresses, _GLOBAL_V6.num_addresses)
    return count4, count6


def _wide(networks: list[Any]) -> str | None:
    """Why *networks* take in too much of the Internet (see MAX_PUBLIC_IPV4), or None."""
    count4, count6 = public_coverage(networks)
    parts = []
    if count4 > MAX_PUBLIC_IPV4:
        parts.append(
            f"{count4 / MAX_PUBLIC_IPV4:.3g} /8s worth of public IPv4 addresses (at most one /8 may be trusted)"
        )
    if count6 > MAX_PUBLIC_IPV6:
        parts.append(
            f"{count6 / MAX_PUBLIC_IPV6:.3g} /16s worth of global IPv6 addresses (at most one /16 may be trusted)"
        )
    return " and ".join(parts) or None


class TableView:
    """What a lookup table answers, as far as its text is at hand (None rules: unknown)."""

    def __init__(self, ref: str, rules: list[Rule] | None, indexed: bool = False) -> None:
        self.ref = ref
        self.rules = rules
        self.indexed = indexed

    def lookup(self, key: str) -> str | None:
        """The result for one key (the first rule that matches it), or None."""
        for rule in self.rules or []:
            if rule.match == "any" or (rule.match == "exact" and rule.key == key.lower()):
                return rule.value
            if rule.match == "pattern" and rule.test.search(key):
                return rule.value
            if rule.match == "cidr":
                try:
                    if ipaddress.ip_address(key.strip("[]")) in rule.test:
                        return rule.value
                except (ValueError, TypeError):
                    continue
        return None


def _parse_table_text(table_type: str, text: str) -> list[Rule]:
    """The unconditional entries of a table's source text (entries inside if/endif blocks are left out)."""
    rules: list[Rule] = []
    depth = 0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or line[0].isspace():
            continue
        lowered = stripped.lower()
        if table_type in ("cidr", "regexp", "pcre"):
            if lowered.startswith(("if ", "if!", "if/")) or lowered == "if":
                depth += 1
                continue
            if lowered == "endif":
                depth = max(0, depth - 1)
                continue
            if depth:
                continue
        if table_type in ("regexp", "pcre"):
            match = _PATTERN_LINE_RE.match(stripped)
            if not match or match.group("neg"):
                continue
            insensitive = "i" not in match.group("flags")
            try:
                pattern = re.compile(match.group("body").replace("\\/", "/"), re.IGNORECASE if insensitive else 0)
            except re.error:
                continue
            rules.append(Rule("pattern", f"/{match.group('body')}/", match.group("action").strip(), pattern))
            continue
        words = stripped.split(None, 1)
        value = words[1].strip() if len(words) > 1 else ""
        if table_type == "cidr":
            try:
                net = ipaddress.ip_network(words[0].replace("[", "").replace("]", ""), strict=False)
            except ValueError:
                continue
            rules.append(Rule("cidr", words[0], value, net))
        elif len(words) > 1:
            rules.append(Rule("exact", words[0].lower(), value))
    return rules


def table_view(ref: str, read_table: Callable[[str, str], str | None] | None, depth: int = 0) -> TableView:
    """Model the table *ref* (``type:name``): static, inline, randmap, unionmap, pipemap, proxy, and
    the file tables whose text *read_table* returns."""
    match = TABLE_TOKEN_RE.match(ref)
    if not match or depth > 10:
        return TableView(ref, None)
    table_type, name = match.group(1), match.group(2)
    if table_type == "static":
        return TableView(ref, [Rule("any", "*", _strip_braces(name))])
    if table_type == "randmap":
        return TableView(ref, [Rule("any", "*", _strip_braces(member)) for member in split_braced(name)])
    if table_type == "inline":
        rules = []
        for member in split_braced(name):
            key, sep, value = _strip_braces(member).partition("=")
            if sep:
                rules.append(Rule("exact", key.strip().lower(), value.strip()))
        return TableView(ref, rules, indexed=True)
    if table_type == "proxy":
        inner = table_view(name, read_table, depth + 1)
        return TableView(ref, inner.rules, inner.indexed)
    if table_type == "unionmap":
        views = [table_view(member, read_table, depth + 1) for member in split_braced(name)]
        totals = [next((r.value for r in v.rules or [] if r.match == "any"), None) for v in views]
        totals = [value for value in totals if value is not None]
        rules = [Rule("any", "*", ",".join(totals))] if totals else []
        rules += [r for v in views for r in v.rules or [] if r.match != "any"]
        known = all(v.rules is not None for v in views) or bool(totals)
        return TableView(ref, rules if known else None, any(v.indexed for v in views))
    if table_type == "pipemap":
        views = [table_view(member, read_table, depth + 1) for member in split_braced(name)]
        if not views or views[0].rules is None:
            return TableView(ref, None)
        rules = list(views[0].rules)
        for view in views[1:]:
            if view.rules is None:
                return TableView(ref, None)
            rules = [rule._replace(value=out) for rule in rules if (out := view.lookup(rule.value)) is not None]
        return TableView(ref, rules, views[0].indexed)
    if read_table is None or table_type not in (*_INDEXED_TYPES, "cidr", "regexp", "pcre"):
        return TableView(ref, None)
    text = read_table(table_type, name)
    if text is None:
        return TableView(ref, None)
    return TableView(ref, _parse_table_text(table_type, text), indexed=table_type in _INDEXED_TYPES)


def _matches_all(rule: Rule, probes: Iterable[str]) -> bool:
    return rule.match == "any" or (rule.match == "pattern" and all(rule.test.search(p) for p in probes))


def _matches_any(rule: Rule, probes: Iterable[str]) -> bool:
    return rule.match == "any" or (rule.match == "pattern" and any(rule.test.search(p) for p in probes))


def reachable_rules(view: TableView, kind: str) -> Iterable[tuple[Rule, str]]:
    """The rules of *view* that an outside client can make smtpd use, each with why.

    *kind* is what is looked up: ``claimed`` (sender, HELO: any key), ``client`` (the client name
    and address), ``recipient`` (the recipient address and its domains), ``ccert`` (a certificate
    fingerprint), ``domain`` (relay_domains) or ``network`` (mynetworks: the client name and address).
    Address ranges are judged together by the caller (see address_rules).
    """
    for rule in view.rules or []:
        if rule.match == "any":
            yield rule, "for every key"
        elif kind == "claimed":
            yield rule, f"for {rule.key!r}, which any client can claim"
        elif kind in ("client", "network"):
            if rule.match == "exact" and rule.key == "unknown":
                yield rule, "for 'unknown', the name of every client without a valid reverse DNS name"
            elif rule.match == "exact" and _is_top_level_domain(rule.key):
                yield rule, f"for {rule.key!r}, a whole top-level domain that anyone can register a name under"
            elif rule.match == "pattern" and _matches_any(
                rule, names := [*_CLIENT_NAMES, *_pattern_probes(rule, kind)]
            ):
                name = next((p for p in names if rule.test.search(p)), "")
                yield rule, f"for {rule.key}, which matches {name!r}, a client name anyone can have"
            elif rule.match == "pattern" and _matches_all(rule, _CLIENT_ADDRESSES):
                yield rule, f"for {rule.key}, which matches every client address"
            elif rule.match == "pattern" and (count := sum(1 for a in _SAMPLE_V4 if rule.test.search(a))) > 1:
                yield (
                    rule,
                    (
                        f"for {rule.key}, which matches client addresses in {count} of the {len(_SAMPLE_V4)} public /8s "
                        "(at most one /8 may be trusted)"
                    ),
                )
        elif kind in ("recipient", "domain"):
            if rule.match == "exact" and _is_top_level_domain(rule.key):
                yield rule, f"for {rule.key!r}, a whole top-level domain"
            elif kind == "recipient" and rule.match == "exact" and rule.key.endswith("@"):
                yield rule, f"for {rule.key!r}, that local part in every domain"
            elif rule.match == "pattern" and _matches_all(
                rule, _PROBES["address"] if kind == "recipient" else _DOMAINS
            ):
                yield rule, f"for {rule.key}, which matches every {'recipient' if kind == 'recipient' else 'domain'}"
            elif rule.match == "pattern" and _matches_any(rule, probes := _pattern_probes(rule, kind)):
                probe = next((p for p in probes if rule.test.search(p)), "")
                yield rule, f"for {rule.key}, which matches {probe!r}: every domain under a whole top-level domain"
        elif kind == "ccert" and _matches_all(rule, _FINGERPRINTS):
            yield rule, f"for {rule.key}, which matches every certificate"


def address_rules(view: TableView, kind: str) -> list[tuple[Rule, Any]]:
    """The rules of *view* that match client addresses, with the network each covers."""
    result = []
    for rule in view.rules or []:
        if rule.match == "cidr":
            result.append((rule, rule.test))
        elif rule.match == "exact" and kind in ("client", "network"):
            if kind == "network":  # mynetworks looks up the whole address only
                try:
                    net = ipaddress.ip_network(rule.key.strip("[]"))
                except ValueError:
                    continue
            else:
                net = _address_key_network(rule.key)
            if net is not None:
                result.append((rule, net))
    return result


def _read_as_ok(value: str) -> str:
    """A note for a result that smtpd reads as OK although it does not say OK."""
    if action_outcome(value) != OPEN or value.split()[:1] in (["OK"], ["ok"], ["Ok"], ["oK"]):
        return ""
    return " (smtpd reads it as OK)"


def _check_kind(check: str) -> str | None:
    """What an access check looks up, for reachable_rules(); None when it never permits an outsider."""
    if _NO_ALLOWLIST_CHECKS.match(check) or check in ("check_sasl_access", "check_etrn_access"):
        return None  # smtpd refuses their OK; check_sasl_access looks at authenticated clients only
    if check.startswith(_CLAIMED_KEY_CHECKS):
        return "claimed"
    if check == "check_client_access":
        return "client"
    if check == "check_ccert_access":
        return "ccert"
    return "recipient"  # check_recipient_access, and a bare type:table in the relay and recipient lists


def _endpoint_is_local(endpoint: str) -> bool:
    """Whether a policy service endpoint (``inet:host:port``, ``unix:path``) is on this host."""
    if not endpoint.startswith("inet:"):
        return True
    host = endpoint[len("inet:") :].rsplit(":", 1)[0].strip("[]")
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RelayJudge:
    """Judge the restriction lists of one effective main.cf (main.cf plus a service's ``-o`` overrides).

    *trusted_policy_services* are ``inet:host:port`` endpoints on other hosts that may decide about
    relaying (postfix_trusted_policy_services); any other remote policy service counts as a permit.
    """

    def __init__(
        self,
        main: Mapping[str, Any],
        read_table: Callable[[str, str], str | None] | None = None,
        trusted_policy_services: Iterable[str] = (),
    ) -> None:
        self.main = main
        self.read_table = read_table
        self.trusted_policy_services = set(trusted_policy_services)
        #: Legitimate but notable choices (a trusted remote policy service, a large public network).
        self.notes: list[str] = []
        self.classes = split_list(self._expanded("smtpd_restriction_classes") or "")
        self.trusted = None
        if "mynetworks" in main:
            self.trusted = self.network_finding("mynetworks", split_list(self._expanded("mynetworks")))
        elif str(main.get("mynetworks_style", "")).strip() == "class":
            self.trusted = (
                "parameter mynetworks_style: class trusts the whole class A, B or C network of each of this host's "
                "addresses (a /8 of the public Internet for an address in a class A network), so clients anywhere "
                "in it are trusted; list the networks in mynetworks"
            )
        self.relay_domains = None
        if "relay_domains" in main:
            self.relay_domains = self.domain_finding("relay_domains", split_list(self._expanded("relay_domains")))

    def _expanded(self, name: str) -> str:
        value = self.main.get(name)
        if value is None:
            return ""
        try:
            return expand_value(render_value(value), self.main)
        except PostfixSyntaxError:
            return ""

    # -- settings that trust clients or destinations ---------------------------------------------

    def _with_files(self, items: list[str], depth: int = 0) -> list[str]:
        """*items* with each ``/file/name`` replaced by the patterns in that file, when it can be read."""
        result = []
        for item in items:
            if item.startswith("/") and self.read_table is not None and depth < 5:
                text = self.read_table("file", item)
                if text is not None:
                    lines = [line.split("#", 1)[0] for line in text.splitlines()]
                    result += self._with_files(split_list(" ".join(lines)), depth + 1)
                    continue
            result.append(item)
        return result

    def network_finding(self, param: str, items: list[str]) -> str | None:
        """Why a network list such as mynetworks trusts clients anywhere on the Internet, or None.

        The patterns of a ``/file/name`` are judged, but the message shows the list as written
        (the file's text is never echoed).
        """
        expanded = self._with_files(items)
        everything = cover_everything(param, expanded)
        if everything:
            return cover_everything(param, items) or everything.replace(", ".join(expanded), ", ".join(items))
        networks: list[Any] = []
        for item in expanded:
            if item.startswith(("!", "$", "/")):
                continue
            if TABLE_TOKEN_RE.match(item) and not item.startswith("["):
                view = table_view(item, self.read_table)
                for _rule, why in reachable_rules(view, "network"):
                    return f"parameter {param}: {item} matches {why.removeprefix('for ')}, so every client is trusted"
                networks += [net for _rule, net in address_rules(view, "network")]
                continue
            try:
                networks.append(ipaddress.ip_network(item.replace("[", "").replace("]", ""), strict=False))
            except ValueError:
                continue
        wide = _wide(networks)
        if wide:
            return f"parameter {param}: {', '.join(items)} covers {wide}, so clients anywhere are trusted"
        count4, count6 = public_coverage(networks)
        if count4 > NOTABLE_PUBLIC_IPV4 or count6 > NOTABLE_PUBLIC_IPV6:
            self.notes.append(
                f"parameter {param}: {', '.join(items)} trusts {count4} public IPv4 and {count6} global IPv6 "
                "addresses (more than a /16 of IPv4 or a /32 of IPv6); make sure they are all yours"
            )
        return None

    def domain_finding(self, param: str, items: list[str]) -> str | None:
        """Why relay_domains lets anyone relay to every domain, or a whole top-level domain, or None."""
        for item in items:
            if item.startswith("/"):
                for listed in self._with_files([item]):
                    if listed != item and not listed.startswith("!") and _is_top_level_domain(listed):
                        return (
                            f"parameter {param}: {item} lists {listed!r}, a whole top-level domain, so this server "
                            "relays mail from anyone to every domain under it"
                        )
                continue
            if item.startswith(("!", "$", "/")):
                continue
            if TABLE_TOKEN_RE.match(item):
                view = table_view(item, self.read_table)
                for _rule, why in reachable_rules(view, "domain"):
                    return (
                        f"parameter {param}: {item} matches {why.removeprefix('for ')}, so this server relays "
                        "mail from anyone to it (reject_unauth_destination and permit_auth_destination let it pass)"
                    )
                continue
            domain = item.strip(".")
            if not domain or not re.match(r"^[A-Za-z0-9.-]+\Z", domain) or ".." in domain:
                return f"parameter {param}: {item!r} is not a domain name"
            if _is_top_level_domain(item) and domain.lower() != "localhost":
                return (
                    f"parameter {param}: {item!r} is a whole top-level domain, so this server relays mail from "
                    "anyone to every domain under it (reject_unauth_destination and permit_auth_destination "
                    "let it pass)"
                )
        return None

    # -- access tables ------------------------------------------------------------------------------

    def _value_outcome(self, value: str, depth: int) -> tuple[str, str]:
        outcome = action_outcome(value)
        if outcome is None:
            return self.evaluate(value, depth + 1)
        return outcome, ""

    def _table_result(self, check: str, ref: str, depth: int = 0) -> tuple[str, str] | None:
        """The result a table reference gives an outside client: (action, how) or None."""
        kind = _check_kind(check)
        if kind is None:
            return None
        view = table_view(ref, self.read_table)
        if view.rules is None:
            return None
        probes = _PROBES[_probe_kind(check)] if kind != "ccert" else _FINGERPRINTS
        reachable = {id(rule): why for rule, why in reachable_rules(view, kind)}
        for position, rule in enumerate(view.rules):
            if rule.match == "any":
                # randmap answers one of its results at random: any of them is enough.
                choices = [rule, *itertools.takewhile(lambda r: r.match == "any", view.rules[position + 1 :])]
                chosen = next((r for r in choices if self._value_outcome(r.value, depth)[0] == OPEN), rule)
                return chosen.value, f"{ref} answers {chosen.value!r} for every key{_read_as_ok(chosen.value)}"
            if rule.match == "cidr" and rule.test.prefixlen == 0 and kind == "client":
                return rule.value, f"{ref} answers {rule.value!r} for every client{_read_as_ok(rule.value)}"
            if rule.match == "pattern" and _matches_all(rule, probes):
                return rule.value, f"{ref} answers {rule.value!r} for every client{_read_as_ok(rule.value)}"
            if id(rule) in reachable and self._value_outcome(rule.value, depth)[0] == OPEN:
                return rule.value, f"{ref} answers {rule.value!r} {reachable[id(rule)]}{_read_as_ok(rule.value)}"
        if kind == "client":
            permitted = [(r, n) for r, n in address_rules(view, kind) if self._value_outcome(r.value, depth)[0] == OPEN]
            wide = _wide([net for _rule, net in permitted])
            if wide:
                keys = ", ".join(rule.key for rule, _net in permitted)
                return permitted[0][0].value, f"{ref} answers {permitted[0][0].value!r} for {keys}, which cover {wide}"
        return None

    def _entry(self, entry: str, depth: int) -> tuple[str, str]:
        words = entry.split(None, 1)
        name = words[0].lower() if words[0].lower() in RESTRICTIONS else words[0]
        arg = words[1] if len(words) > 1 else ""
        if name == "permit":
            return OPEN, "'permit' permits every client"
        if name in BLOCKERS:
            return BLOCK, ""
        if name == "permit_mynetworks" and self.trusted:
            return OPEN, f"'permit_mynetworks' permits every client ({self.trusted})"
        if name == "permit_tls_all_clientcerts":
            return OPEN, (
                "'permit_tls_all_clientcerts' permits every client with a certificate from any CA the server "
                "trusts, which anyone can get; list the certificates in relay_clientcerts and use "
                "permit_tls_clientcerts"
            )
        if name == "permit_tls_clientcerts":
            found = self._table_result("check_ccert_access", self._expanded("relay_clientcerts"))
            if found is not None:
                return OPEN, f"'permit_tls_clientcerts': relay_clientcerts {found[1]} (any value is a match)"
            return PASS, ""
        if name == "permit_mx_backup":
            networks = split_list(self._expanded("permit_mx_backup_networks"))
            wide = self.network_finding("permit_mx_backup_networks", networks) if networks else "it is empty"
            if wide:
                return OPEN, (
                    "'permit_mx_backup' relays for every domain whose DNS names this server as a backup MX, which "
                    f"anyone can publish, unless permit_mx_backup_networks limits the primary MX hosts ({wide})"
                )
            return PASS, ""
        if name == "check_policy_service":
            if _endpoint_is_local(arg):
                return PASS, ""
            if arg in self.trusted_policy_services:
                self.notes.append(f"'{entry}' on another host decides about relaying (trusted_policy_services)")
                return PASS, ""
            return OPEN, (
                f"'{entry}' lets a policy service on another host decide, and its answer (OK) permits; "
                "list it in postfix_trusted_policy_services (in a fragment: trusted_policy_services) if that host is yours"
            )
        table_ref = arg if RESTRICTIONS.get(name) == ARG_TABLE else (entry if name not in RESTRICTIONS else "")
        if table_ref and name not in self.classes:
            found = self._table_result(name if name in RESTRICTIONS else "check_recipient_access", table_ref, depth)
            if found is None:
                return PASS, ""
            action, how = found
            outcome = action_outcome(action)
            if outcome is None:
                outcome, reason = self.evaluate(action, depth + 1)
                return outcome, f"'{entry}': {how}, which {reason}" if outcome == OPEN else ""
            return outcome, f"'{entry}': {how}" if outcome == OPEN else ""
        if name in self.classes and depth < 10:
            outcome, reason = self.evaluate(self._expanded(name), depth + 1)
            if outcome == OPEN:
                return OPEN, f"restriction class '{name}' {reason}"
            return outcome, ""
        return PASS, ""

    def evaluate(self, value: Any, depth: int = 0) -> tuple[str, str]:
        """The first decision a list makes for an outside client sending to a remote domain."""
        if depth > 20:
            return PASS, "nests too deeply to judge"
        entries = group_restrictions([t.lower() if t.lower() in RESTRICTIONS else t for t in split_list(value)])
        softened = False
        for position, entry in enumerate(entries, start=1):
            if entry == "warn_if_reject":
                softened = True
                continue
            outcome, reason = self._entry(entry, depth)
            if softened and outcome == BLOCK:
                outcome = PASS
            softened = False
            if outcome == OPEN:
                return OPEN, f"lets every client through at entry {position}: {reason}"
            if outcome == BLOCK:
                return BLOCK, f"stops relaying at entry {position} ('{entry}')"
        if any(entry in BLOCKERS for entry in entries):
            return PASS, "only logs its reject_unauth_destination (warn_if_reject) and ends without a decision"
        return PASS, "ends without rejecting unauthorized destinations"

    def verdict(self) -> tuple[Verdict, Verdict]:
        """(relay list, recipient list): an outside client is relayed when neither is BLOCK."""
        if "smtpd_relay_restrictions" in self.main:
            relay_value: Any = expand_value(render_value(self.main["smtpd_relay_restrictions"]), self.main)
        else:
            relay_value = DEFAULT_RELAY_RESTRICTIONS
        recipient_value = self._expanded("smtpd_recipient_restrictions")
        return Verdict(*self.evaluate(relay_value)), Verdict(*self.evaluate(recipient_value))

    def open_relay(self) -> str | None:
        """Why this configuration relays for anyone, or None."""
        relay, recipient = self.verdict()
        if BLOCK in (relay.outcome, recipient.outcome):
            return None
        return f"smtpd_relay_restrictions {relay.reason}, and smtpd_recipient_restrictions {recipient.reason}"


def is_loopback_service(service: MasterService) -> bool:
    """Whether an inet service listens on a loopback address only (``127.0.0.1:10025``)."""
    if service.type != "inet" or ":" not in service.name:
        return False
    host = service.name.rsplit(":", 1)[0]
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def relay_findings(
    main: Mapping[str, Any],
    services: Iterable[MasterService] = (),
    read_table: Callable[[str, str], str | None] | None = None,
    trusted_policy_services: Iterable[str] = (),
) -> list[str]:
    """Every place of main.cf/master.cf that would relay for anyone, and every mynetworks that trusts everyone."""
    judge = RelayJudge(main, read_table, trusted_policy_services)
    findings = [f for f in (judge.trusted, judge.relay_domains) if f]
    main_reason = judge.open_relay()
    if main_reason:
        findings.append(f"main.cf would relay mail for anyone: {main_reason}")
    smtpd_services = [
        s for s in services if s.command == "smtpd" and s.type in ("inet", "pass") and not is_loopback_service(s)
    ]
    for service in smtpd_services:
        overrides = service.options()
        if not overrides:
            continue
        effective = {**main, **overrides}
        judge = RelayJudge(effective, read_table, trusted_policy_services)
        where = f"master.cf service {service.key} (main.cf with its -o overrides)"
        if judge.trusted and "mynetworks" in overrides:
            findings.append(f"{where}: -o {judge.trusted}")
        if judge.relay_domains and "relay_domains" in overrides:
            findings.append(f"{where}: -o {judge.relay_domains}")
        reason = judge.open_relay()
        if reason and reason != main_reason:
            findings.append(f"{where} would relay mail for anyone: {reason}")
    return findings


def relay_notes(
    main: Mapping[str, Any],
    read_table: Callable[[str, str], str | None] | None = None,
    trusted_policy_services: Iterable[str] = (),
) -> list[str]:
    """Legitimate but notable relay choices of main.cf, for a warning (see RelayJudge.notes)."""
    judge = RelayJudge(main, read_table, trusted_policy_services)
    judge.verdict()
    return list(dict.fromkeys(judge.notes))


def validate_relay(
    main: Mapping[str, Any],
    services: Iterable[MasterService] = (),
    allow_open_relay: bool = False,
    read_table: Callable[[str, str], str | None] | None = None,
    hint: str = OPT_IN_HINT,
    *,
    trusted_policy_services: Iterable[str] = (),
) -> list[str]:
    """Raise PostfixValidationError for an open relay unless *allow_open_relay*; return the findings."""
    findings = relay_findings(main, services, read_table, trusted_policy_services)
    if findings and not allow_open_relay:
        raise PostfixValidationError(
            "open relay refused:\n  - "
            + "\n  - ".join(findings)
            + "\n  Relaying must be stopped by reject_unauth_destination (or defer_unauth_destination, reject, "
            "defer) before any entry that permits every client; " + hint
        )
    return findings
