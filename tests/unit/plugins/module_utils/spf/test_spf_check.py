# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""spf_check backend against a fake resolver (a dictionary of answers); dnspython only for the adapter."""

from __future__ import annotations

import dns.exception
import dns.message
import dns.name
import dns.resolver
import dns.rrset
import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.spf_check import (
    DnsTempError,
    DnsVoid,
    SpfCheck,
    SpfCheckError,
    _Context,
    dnspython_lookup,
    expand,
)


class FakeDns:
    """Answers from a dict {(name, type): [answers] | 'SERVFAIL'}; anything else is NXDOMAIN."""

    def __init__(self, zone):
        self.zone = {(name.lower(), rdtype): answer for (name, rdtype), answer in zone.items()}
        self.asked = []

    def __call__(self, name, rdtype):
        self.asked.append((name, rdtype))
        answer = self.zone.get((name.lower(), rdtype))
        if answer == "SERVFAIL":
            raise DnsTempError(f"{name} {rdtype}: SERVFAIL")
        if answer is None:
            raise DnsVoid(f"{name} {rdtype}: no such domain")
        return list(answer)


# pass.test -> include:a.test -> include:b.test (ip4 of the sender) ; a chain of nested includes
CHAIN = {
    ("pass.test", "TXT"): ["some other text", "v=spf1 mx include:a.test -all"],
    ("pass.test", "MX"): ["mail.pass.test"],
    ("mail.pass.test", "A"): ["192.0.2.10"],
    ("a.test", "TXT"): ["v=spf1 a include:b.test ~all"],
    ("a.test", "A"): ["192.0.2.20"],
    ("b.test", "TXT"): ["v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 -all"],
}


def test_nested_chain_counts_and_passes():
    dns_ = FakeDns(CHAIN)
    found = SpfCheck(dns_).check("pass.test", "198.51.100.7")
    assert found["record"] == "v=spf1 mx include:a.test -all"
    assert found["lookups"] == 4
    assert found["lookup_terms"] == ["mx", "include:a.test", "include:a.test > a", "include:a.test > include:b.test"]
    assert found["void_lookups"] == 0
    assert found["valid"] is True
    assert found["errors"] == []
    assert found["includes"][0]["domain"] == "a.test"
    assert found["includes"][0]["includes"][0] == {
        "domain": "b.test",
        "record": "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 -all",
        "via": "include:b.test",
        "includes": [],
    }
    assert found["ip_result"] == {
        "ip": "198.51.100.7",
        "result": "pass",
        "passes": True,
        "mechanism": "ip4:198.51.100.0/24",
        "mechanism_domain": "b.test",
        "reason": "ip4:198.51.100.0/24 in the record of b.test",
    }
    # Every name was asked once: the evaluation reuses the analysis' answers.
    assert len(dns_.asked) == len(set(dns_.asked))


@pytest.mark.parametrize(
    ("ip", "result", "mechanism"),
    [
        ("192.0.2.10", "pass", "mx"),  # the MX host
        ("192.0.2.20", "pass", "a"),  # a.test's own a, through the include
        ("2001:db8::1", "pass", "ip6:2001:db8::/32"),
        ("::ffff:198.51.100.9", "pass", "ip4:198.51.100.0/24"),  # IPv4-mapped is IPv4
        ("203.0.113.5", "fail", "-all"),  # b.test's -all does not match the include; pass.test's -all does
    ],
)
def test_evaluation(ip, result, mechanism):
    found = SpfCheck(FakeDns(CHAIN)).evaluate("pass.test", ip)
    assert (found["result"], found["mechanism"]) == (result, mechanism)
    assert found["passes"] is (result == "pass")


def test_no_record_is_none_and_invalid():
    found = SpfCheck(FakeDns({("none.test", "TXT"): ["google-site-verification=x"]})).check("none.test", "192.0.2.1")
    assert found["record"] is None
    assert found["valid"] is False
    assert found["ip_result"]["result"] == "none"
    assert found["ip_result"]["reason"] == "none.test publishes no SPF record"
    assert SpfCheck(FakeDns({})).evaluate("gone.test", "192.0.2.1")["result"] == "none"


def test_softfail_neutral_and_default():
    zone = {("s.test", "TXT"): ["v=spf1 ?ip4:192.0.2.1 ~all"], ("d.test", "TXT"): ["v=spf1 ip4:192.0.2.1"]}
    check = SpfCheck(FakeDns(zone))
    assert check.evaluate("s.test", "192.0.2.1")["result"] == "neutral"
    assert check.evaluate("s.test", "192.0.2.2")["result"] == "softfail"
    default = check.evaluate("d.test", "192.0.2.2")
    assert (default["result"], default["mechanism"]) == ("neutral", None)
    assert "no mechanism matched" in default["reason"]


def _chain(length):
    """l0.test includes l1.test ... each record costs one lookup (its include), the last an a."""
    zone = {}
    for n in range(length):
        zone[(f"l{n}.test", "TXT")] = [f"v=spf1 include:l{n + 1}.test -all"]
    zone[(f"l{length}.test", "TXT")] = ["v=spf1 a -all"]
    zone[(f"l{length}.test", "A")] = ["192.0.2.99"]
    return zone


def test_ten_lookups_are_allowed():
    found = SpfCheck(FakeDns(_chain(9))).check("l0.test", "192.0.2.99")
    assert found["lookups"] == 10
    assert found["valid"] is True
    assert found["ip_result"]["result"] == "pass"


def test_eleven_lookups_are_refused_naming_the_terms():
    found = SpfCheck(FakeDns(_chain(10))).check("l0.test", "192.0.2.99")
    assert found["lookups"] == 11
    assert found["valid"] is False
    assert found["errors"][0].startswith("l0.test: 11 DNS lookups, more than the 10 that SPF allows")
    assert "include:l1.test > include:l2.test" in found["errors"][0]
    assert found["ip_result"]["result"] == "permerror"
    assert "more than 10 DNS lookups" in found["ip_result"]["reason"]


def test_a_match_before_the_limit_passes_in_evaluation_but_the_record_is_invalid():
    zone = _chain(10)
    zone[("l0.test", "TXT")] = ["v=spf1 ip4:192.0.2.1 include:l1.test -all"]
    found = SpfCheck(FakeDns(zone)).check("l0.test", "192.0.2.1")
    assert found["ip_result"]["result"] == "pass"
    assert found["valid"] is False


def test_void_lookups():
    zone = {("v.test", "TXT"): ["v=spf1 a:gone1.test mx:gone2.test exists:gone3.test ip4:192.0.2.1 -all"]}
    found = SpfCheck(FakeDns(zone)).check("v.test", "192.0.2.1")
    assert found["void_lookups"] == 3
    assert found["void_terms"] == ["a:gone1.test", "mx:gone2.test", "exists:gone3.test"]
    assert found["errors"][0].startswith("v.test: 3 void lookups, more than the 2")
    assert found["ip_result"]["result"] == "permerror"
    zone[("v.test", "TXT")] = ["v=spf1 a:gone1.test ip4:192.0.2.1 -all"]
    found = SpfCheck(FakeDns(zone)).check("v.test", "192.0.2.1")
    assert (found["void_lookups"], found["valid"], found["ip_result"]["result"]) == (1, True, "pass")


def test_include_without_record_and_loops_are_errors():
    zone = {
        ("x.test", "TXT"): ["v=spf1 include:plain.test include:gone.test -all"],
        ("plain.test", "TXT"): ["just text"],
        ("loop.test", "TXT"): ["v=spf1 include:loop2.test -all"],
        ("loop2.test", "TXT"): ["v=spf1 include:loop.test -all"],
    }
    found = SpfCheck(FakeDns(zone)).check("x.test", "192.0.2.1")
    assert "include:plain.test: plain.test has no SPF record, which is a PermError" in found["errors"]
    assert found["void_terms"] == ["include:gone.test"]
    assert found["ip_result"]["result"] == "permerror"
    loop = SpfCheck(FakeDns(zone)).check("loop.test", "192.0.2.1")
    assert any("a loop" in error for error in loop["errors"])
    assert loop["ip_result"]["result"] == "permerror"


def test_two_records_and_syntax_errors_are_permerror():
    two = {("two.test", "TXT"): ["v=spf1 -all", "v=spf1 mx -all"]}
    found = SpfCheck(FakeDns(two)).check("two.test", "192.0.2.1")
    assert "publishes 2 SPF records" in found["errors"][0]
    assert found["ip_result"]["result"] == "permerror"
    bad = {("bad.test", "TXT"): ["v=spf1 ip4:300.1.1.1 -all"]}
    found = SpfCheck(FakeDns(bad)).check("bad.test", "192.0.2.1")
    assert "'300.1.1.1' is not an IPv4 address" in found["errors"][0]
    assert found["ip_result"]["result"] == "permerror"


def test_dns_failure_is_temperror():
    zone = {("t.test", "TXT"): ["v=spf1 include:broken.test -all"], ("broken.test", "TXT"): "SERVFAIL"}
    found = SpfCheck(FakeDns(zone)).check("t.test", "192.0.2.1")
    assert "DNS error" in found["errors"][0]
    assert found["ip_result"]["result"] == "temperror"
    top = SpfCheck(FakeDns({("t.test", "TXT"): "SERVFAIL"})).check("t.test", "192.0.2.1")
    assert top["valid"] is False
    assert top["ip_result"]["result"] == "temperror"


def test_redirect():
    zone = {
        ("r.test", "TXT"): ["v=spf1 ip4:192.0.2.1 redirect=_spf.r.test"],
        ("_spf.r.test", "TXT"): ["v=spf1 ip4:192.0.2.2 -all"],
        ("bad.test", "TXT"): ["v=spf1 redirect=nothing.test"],
    }
    check = SpfCheck(FakeDns(zone))
    assert check.evaluate("r.test", "192.0.2.1")["result"] == "pass"
    assert check.evaluate("r.test", "192.0.2.2")["mechanism_domain"] == "_spf.r.test"
    assert check.evaluate("r.test", "192.0.2.3")["result"] == "fail"
    assert check.check("r.test")["lookup_terms"] == ["redirect=_spf.r.test"]
    assert check.evaluate("bad.test", "192.0.2.3")["result"] == "permerror"


def test_mx_limit_and_cidr():
    zone = {
        ("m.test", "TXT"): ["v=spf1 mx/24 -all"],
        ("m.test", "MX"): ["mx1.m.test", "mx2.m.test"],
        ("mx2.m.test", "A"): ["192.0.2.200"],
        ("many.test", "TXT"): ["v=spf1 mx -all"],
        ("many.test", "MX"): [f"mx{n}.many.test" for n in range(11)],
    }
    check = SpfCheck(FakeDns(zone))
    assert check.evaluate("m.test", "192.0.2.7")["result"] == "pass"  # mx1 has no address: not a void
    assert check.check("m.test")["void_lookups"] == 0
    assert check.evaluate("many.test", "192.0.2.7")["result"] == "permerror"
    assert "11 MX names" in check.check("many.test")["errors"][0]


def test_exists_and_macros():
    zone = {
        ("e.test", "TXT"): ["v=spf1 exists:%{ir}.%{l}._spf.%{d} -all"],
        ("7.2.0.192.alice._spf.e.test", "A"): ["127.0.0.2"],
    }
    check = SpfCheck(FakeDns(zone))
    assert check.evaluate("e.test", "192.0.2.7", sender="alice@e.test")["result"] == "pass"
    assert check.evaluate("e.test", "192.0.2.8", sender="alice@e.test")["result"] == "fail"  # one void lookup
    # Without an address the macro term is counted but not queried.
    assert SpfCheck(FakeDns(zone)).check("e.test")["lookup_terms"] == ["exists:%{ir}.%{l}._spf.%{d}"]


def test_expand():
    ctx = _Context(
        ip=__import__("ipaddress").ip_address("2001:db8::cb01"), sender="strong-bad@email.example.com", helo="h.example"
    )
    assert expand("%{s}", "email.example.com", ctx) == "strong-bad@email.example.com"
    assert expand("%{o}.%{d2}.%{l-}", "email.example.com", ctx) == "email.example.com.example.com.strong.bad"
    assert expand("%{lr-}", "d", ctx) == "bad.strong"
    assert expand("%{ir}.%{v}._spf.%{d2}", "email.example.com", ctx).startswith("1.0.b.c.0.0.0.0")
    assert expand("%{ir}.%{v}._spf.%{d2}", "email.example.com", ctx).endswith(".8.b.d.0.1.0.0.2.ip6._spf.example.com")
    assert expand("%{h}%%%_%-%{S}", "d", ctx) == "h.example% %20strong-bad%40email.example.com"
    long = expand("%{s}." + "x" * 60 + ".%{d}", "a" * 60 + ".b" + "c" * 60 + ".d" + "e" * 60 + ".f", ctx)
    assert len(long) <= 253


def test_ptr():
    zone = {
        ("p.test", "TXT"): ["v=spf1 ptr -all"],
        ("1.2.0.192.in-addr.arpa", "PTR"): ["host.p.test", "other.example"],
        ("host.p.test", "A"): ["192.0.2.1"],
        ("2.2.0.192.in-addr.arpa", "PTR"): ["liar.p.test"],
        ("liar.p.test", "A"): ["192.0.2.99"],
    }
    check = SpfCheck(FakeDns(zone))
    assert check.evaluate("p.test", "192.0.2.1")["result"] == "pass"
    assert check.evaluate("p.test", "192.0.2.2")["result"] == "fail"  # not forward-confirmed
    assert check.evaluate("p.test", "192.0.2.3")["result"] == "fail"  # no PTR


@pytest.mark.parametrize(
    ("domain", "ip", "message"), [("", None, "domain"), ("a b", None, "domain"), ("x.test", "999.1.1.1", "ip")]
)
def test_bad_input(domain, ip, message):
    with pytest.raises(SpfCheckError, match=f"^{message}:"):
        SpfCheck(FakeDns({})).check(domain, ip)


# -- the dnspython adapter --------------------------------------------------------------------


class FakeAnswer:
    def __init__(self, name, rdtype, texts):
        self.rrset = dns.rrset.from_text_list(dns.name.from_text(name), 60, "IN", rdtype, texts) if texts else None


def test_dnspython_adapter(monkeypatch):
    seen = {}
    answers = {
        ("s.test", "TXT"): ['"v=spf1 " "mx -all"', '"other"'],
        ("s.test", "MX"): ["20 b.s.test.", "10 a.s.test."],
        ("a.s.test", "A"): ["192.0.2.1"],
        ("7.2.0.192.in-addr.arpa", "PTR"): ["h.s.test."],
        ("empty.test", "A"): [],
    }

    def resolve(self, name, rdtype, search=None, raise_on_no_answer=True):
        seen.update(nameservers=self.nameservers, port=self.port, lifetime=self.lifetime, search=search)
        assert raise_on_no_answer is False
        if name == "fail.test":
            raise dns.resolver.NoNameservers()
        if name == "slow.test":
            raise dns.exception.Timeout()
        if (name, rdtype) not in answers:
            raise dns.resolver.NXDOMAIN()
        return FakeAnswer(name, rdtype, answers[(name, rdtype)])

    monkeypatch.setattr(dns.resolver.Resolver, "resolve", resolve)
    lookup = dnspython_lookup(["192.0.2.53"], 5353, 2.0)
    assert lookup("s.test", "TXT") == ["v=spf1 mx -all", "other"]
    assert seen == {"nameservers": ["192.0.2.53"], "port": 5353, "lifetime": 2.0, "search": False}
    assert lookup("s.test", "MX") == ["a.s.test", "b.s.test"]
    assert lookup("a.s.test", "A") == ["192.0.2.1"]
    assert lookup("7.2.0.192.in-addr.arpa", "PTR") == ["h.s.test"]
    with pytest.raises(DnsVoid, match="no such domain"):
        lookup("gone.test", "A")
    with pytest.raises(DnsVoid, match="no A record"):
        lookup("empty.test", "A")
    with pytest.raises(DnsTempError):
        lookup("fail.test", "TXT")
    with pytest.raises(DnsTempError):
        lookup("slow.test", "TXT")
