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
- ``permit``, an access check whose table answers OK for every key (``static:OK``, a ``cidr``
  table with ``0.0.0.0/0 OK``, a ``regexp`` table with ``/./ OK``) or a restriction class that
  does one of these, permits everyone: the entries after it are never evaluated;
- an access check on what the client merely claims (``check_sender_access``, the other
  ``check_sender_*_access`` and ``check_helo_*access``) whose table permits any one key (a sender
  ``boss@example.org OK``) permits everyone, since any client can send that key (Postfix's
  access(5) warns of exactly this: an open relay for forged senders);
- ``permit_mynetworks`` permits everyone when ``mynetworks`` covers every address;
- a list that ends without a decision permits.

Every master.cf ``smtpd`` service reachable from outside is judged with its own ``-o``
overrides.  An open relay is refused unless it was asked for explicitly (``allow_open_relay``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix_restrictions import (
    ARG_TABLE,
    DEFAULT_RELAY_RESTRICTIONS,
    RESTRICTIONS,
    group_restrictions,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix_syntax import (
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
_REJECT_ACTIONS = ("REJECT", "DEFER", "DEFER_IF_PERMIT", "DEFER_IF_REJECT", "BOUNCE", "DISCARD")
#: Access table results that neither permit nor stop the list.
_NEUTRAL_ACTIONS = ("DUNNO", "HOLD", "FILTER", "PREPEND", "REDIRECT", "WARN", "INFO", "BCC")
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
    """The outcome of an access(5) result for relaying: OPEN, BLOCK, PASS, or None for a restriction list."""
    words = action.strip().split(None, 1)
    if not words:
        return PASS
    word = words[0].upper()
    if word == "OK" or (word.isdigit() and not re.match(r"^[45]\d\d\Z", word)):
        return OPEN
    if word in _REJECT_ACTIONS or re.match(r"^[45]\d\d\Z", word):
        return BLOCK
    if word in _NEUTRAL_ACTIONS:
        return PASS
    return None


def _probe_kind(name: str) -> str:
    if name.startswith(("check_client", "check_reverse_client", "check_ccert", "check_sasl")):
        return "client"
    if name.startswith("check_helo"):
        return "helo"
    return "address"


def _cidr_catch_all(text: str) -> str | None:
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or line[0].isspace():
            continue
        words = stripped.split(None, 1)
        if words[0].lower() in ("if", "endif") or words[0].startswith("!"):
            return None  # conditional blocks: too clever to judge; the candidate is not a catch-all
        try:
            net = ipaddress.ip_network(words[0].replace("[", "").replace("]", ""), strict=False)
        except ValueError:
            continue
        if net.prefixlen == 0:
            return words[1] if len(words) > 1 else ""
    return None


_PATTERN_LINE_RE = re.compile(r"^(?P<neg>!?)/(?P<body>(?:[^/\\]|\\.)*)/(?P<flags>[A-Za-z]*)\s+(?P<action>.*)\Z")


def _pattern_catch_all(text: str, kind: str) -> str | None:
    """The action of the first unconditional pattern that matches every key of *kind* an outsider sends."""
    depth = 0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or line[0].isspace():
            continue
        lowered = stripped.lower()
        if lowered.startswith("if ") or lowered.startswith("if!") or lowered.startswith("if /"):
            depth += 1
            continue
        if lowered == "endif":
            depth = max(0, depth - 1)
            continue
        match = _PATTERN_LINE_RE.match(stripped)
        if not match or depth or match.group("neg"):
            continue
        flags_text = match.group("flags")
        # regexp(5) matches case-insensitively unless "i" toggles it; so does pcre(5).
        insensitive = "i" not in flags_text
        try:
            pattern = re.compile(match.group("body").replace("\\/", "/"), re.IGNORECASE if insensitive else 0)
        except re.error:
            continue
        if all(pattern.search(probe) for probe in _PROBES[kind]):
            return match.group("action")
    return None


#: Access checks whose key the client chooses: the envelope sender (and its domain's MX, NS or A
#: records, which the sender's own DNS answers) and the HELO name.
_CLAIMED_KEY_CHECKS = ("check_sender_", "check_helo_")


def table_permits_any_key(table_type: str, text: str) -> tuple[str, str] | None:
    """(key, action) of the first entry of a table that permits (OK, or a number that is not 4xx/5xx)."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or line[0].isspace():
            continue
        if table_type in ("regexp", "pcre"):
            match = _PATTERN_LINE_RE.match(stripped)
            if not match or match.group("neg"):
                continue
            key, action = f"/{match.group('body')}/", match.group("action")
        else:
            words = stripped.split(None, 1)
            if len(words) < 2 or words[0].lower() in ("if", "endif"):
                continue
            key, action = words
        if action_outcome(action) == OPEN or action.split()[0].lower() == "permit":
            return key, action.strip()
    return None


def table_catch_all(table_type: str, text: str, kind: str = "address") -> str | None:
    """The result a cidr/regexp/pcre table gives every key (its first catch-all entry), or None."""
    if table_type == "cidr":
        return _cidr_catch_all(text)
    if table_type in ("regexp", "pcre"):
        return _pattern_catch_all(text, kind)
    return None


class RelayJudge:
    """Judge the restriction lists of one effective main.cf (main.cf plus a service's ``-o`` overrides)."""

    def __init__(self, main: Mapping[str, Any], read_table: Callable[[str, str], str | None] | None = None) -> None:
        self.main = main
        self.read_table = read_table
        self.classes = split_list(self._expanded("smtpd_restriction_classes") or "")
        self.trusted = None
        if "mynetworks" in main:
            self.trusted = cover_everything("mynetworks", split_list(self._expanded("mynetworks")))

    def _expanded(self, name: str) -> str:
        value = self.main.get(name)
        if value is None:
            return ""
        try:
            return expand_value(render_value(value), self.main)
        except PostfixSyntaxError:
            return ""

    def _table_result(self, check: str, ref: str) -> tuple[str, str] | None:
        """The result a table reference gives an outside client's every key: (action, how) or None."""
        match = TABLE_TOKEN_RE.match(ref)
        if not match:
            return None
        table_type, name = match.group(1), match.group(2)
        if table_type == "static":
            value = name[1:-1].strip() if name.startswith("{") and name.endswith("}") else name
            return value, f"{ref} answers {value!r} for every key"
        if table_type == "proxy":
            return self._table_result(check, name)
        if self.read_table is None:
            return None
        claimed = check.startswith(_CLAIMED_KEY_CHECKS)
        if table_type not in ("cidr", "regexp", "pcre") and not claimed:
            return None
        text = self.read_table(table_type, name)
        if text is None:
            return None
        action = table_catch_all(table_type, text, _probe_kind(check))
        if action is not None:
            return action, f"{ref} answers {action.strip()!r} for every client"
        if claimed:
            permitted = table_permits_any_key(table_type, text)
            if permitted is not None:
                key, action = permitted
                return action, f"{ref} answers {action!r} for {key!r}, which any client can claim"
        return None

    def _entry(self, entry: str, depth: int) -> tuple[str, str]:
        words = entry.split(None, 1)
        name = words[0]
        arg = words[1] if len(words) > 1 else ""
        if name == "permit":
            return OPEN, "'permit' permits every client"
        if name in BLOCKERS:
            return BLOCK, ""
        if name == "permit_mynetworks" and self.trusted:
            return OPEN, f"'permit_mynetworks' permits every client ({self.trusted})"
        table_ref = arg if RESTRICTIONS.get(name) == ARG_TABLE else (entry if name not in RESTRICTIONS else "")
        if table_ref and name not in self.classes:
            found = self._table_result(name, table_ref)
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
        entries = group_restrictions(value)
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
) -> list[str]:
    """Every place of main.cf/master.cf that would relay for anyone, and every mynetworks that trusts everyone."""
    judge = RelayJudge(main, read_table)
    findings = [judge.trusted] if judge.trusted else []
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
        judge = RelayJudge(effective, read_table)
        where = f"master.cf service {service.key} (main.cf with its -o overrides)"
        if judge.trusted and "mynetworks" in overrides:
            findings.append(f"{where}: -o {judge.trusted}")
        reason = judge.open_relay()
        if reason and reason != main_reason:
            findings.append(f"{where} would relay mail for anyone: {reason}")
    return findings


def validate_relay(
    main: Mapping[str, Any],
    services: Iterable[MasterService] = (),
    allow_open_relay: bool = False,
    read_table: Callable[[str, str], str | None] | None = None,
    hint: str = OPT_IN_HINT,
) -> list[str]:
    """Raise PostfixValidationError for an open relay unless *allow_open_relay*; return the findings."""
    findings = relay_findings(main, services, read_table)
    if findings and not allow_open_relay:
        raise PostfixValidationError(
            "open relay refused:\n  - "
            + "\n  - ".join(findings)
            + "\n  Relaying must be stopped by reject_unauth_destination (or defer_unauth_destination, reject, "
            "defer) before any entry that permits every client; " + hint
        )
    return findings
