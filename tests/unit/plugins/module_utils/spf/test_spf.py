# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.spf import (
    SpfError,
    Term,
    build_record,
    check_domain_spec,
    count_lookups,
    is_domain,
    parse_record,
    parse_term,
)

# -- building --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("structure", "record"),
    [
        ({"mx": True}, "v=spf1 mx ~all"),  # seed 003
        ({"mx": True, "include": ["_spf.provider.example"]}, "v=spf1 mx include:_spf.provider.example ~all"),
        ({"mx": True, "all": "fail"}, "v=spf1 mx -all"),
        ({"a": True, "mx": True, "all": "-"}, "v=spf1 a mx -all"),
        ({"all": "fail"}, "v=spf1 -all"),  # a domain that sends no mail
        (
            {"ip4": ["192.0.2.0/24", "198.51.100.7", "198.51.100.8/32"], "ip6": ["2001:db8::/32"]},
            "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.7 ip4:198.51.100.8 ip6:2001:db8::/32 ~all",
        ),
        (
            {"a": ["mail.example.org", "/24", "mx.example.org/28//64"]},
            "v=spf1 a:mail.example.org a/24 a:mx.example.org/28//64 ~all",
        ),
        ({"mx": ["example.net"], "redirect": "_spf.example.org"}, "v=spf1 mx:example.net redirect=_spf.example.org"),
        ({"exists": ["%{i}._spf.example.org"], "all": "fail"}, "v=spf1 exists:%{i}._spf.example.org -all"),
        ({"mx": True, "a": False, "ip4": [], "include": None, "all": "softfail"}, "v=spf1 mx ~all"),
    ],
)
def test_build(structure, record):
    assert build_record(structure) == record
    parse_record(record)  # what is built parses


@pytest.mark.parametrize(
    ("structure", "message"),
    [
        ("v=spf1 mx", "must be a mapping"),
        ({"mx": True, "inclde": ["x.example"]}, r"unknown keys inclde \(allowed"),
        ({"mx": True, "all": "pass"}, "would let every host on the internet send"),
        ({"mx": True, "all": "+"}, "would let every host"),
        ({"a": True, "mx": True, "all": "?"}, r"spf_record: term '\?all' \(neutral\) lets every host"),
        ({"mx": True, "all": "neutral"}, r"term '\?all' \(neutral\)"),
        ({"mx": True, "all": "reject"}, r"spf_record.all: must be one of fail, softfail, neutral"),
        ({"mx": True, "all": True}, "spf_record.all: must be one of"),
        ({"mx": True, "redirect": "_spf.example.org", "all": "fail"}, "give either all or redirect"),
        ({"mx": True, "redirect": "nodot"}, r"spf_record.redirect: 'nodot' is not a fully qualified"),
        ({"mx": True, "redirect": ["a.example"]}, "spf_record.redirect: must be a domain name"),
        ({"mx": "yes"}, "spf_record.mx: must be true, false or a list"),
        ({"mx": ["bad domain"]}, r"spf_record.mx\[0\]"),
        ({"a": [""]}, r"spf_record.a\[0\]: must be a domain"),
        ({"a": ["x.example/33"]}, r"spf_record.a\[0\].*prefix length /33"),
        ({"a": ["%{d}.example"]}, r"spf_record.a\[0\]: macros are not supported"),
        ({"ip4": ["192.0.2.1/24"]}, r"spf_record.ip4\[0\]: '192.0.2.1/24' .*host bits set"),
        ({"ip4": ["2001:db8::/32"]}, r"spf_record.ip4\[0\]: '2001:db8::/32' is not an IPv4"),
        ({"ip6": ["192.0.2.0/24"]}, r"spf_record.ip6\[0\]: '192.0.2.0/24' is not an IPv6"),
        ({"ip4": "192.0.2.0/24"}, "spf_record.ip4: must be a list, got str"),
        ({"ip4": [7]}, r"spf_record.ip4\[0\]: must be a string"),
        ({"include": ["_spf.example.org\n-all"]}, r"spf_record.include\[0\]"),
        ({"include": ["a.example", "a.example"]}, "include:a.example given more than once"),
        ({"include": ["%{i}.example"]}, "macros are not supported in include"),
        ({"include": [None]}, r"spf_record.include\[0\]: must be a domain name"),
        ({"exists": ["%{z}.example"]}, "invalid macro"),
        ({"exists": ["100%.example"]}, "invalid macro"),
        ({}, "the record authorizes no host"),
        ({"all": "softfail"}, "the record authorizes no host"),
    ],
)
def test_build_refuses(structure, message):
    with pytest.raises(SpfError, match=message):
        build_record(structure)


def test_build_names_the_variable():
    with pytest.raises(SpfError, match=r"^spf_domains\[0\].record.ip4\[0\]"):
        build_record({"ip4": ["300.1.1.1"]}, where="spf_domains[0].record")


# -- counting ----------------------------------------------------------------------------------

RESOLVED = {
    "_spf.provider.example": "v=spf1 include:_a.provider.example include:_b.provider.example ~all",
    "_a.provider.example": "v=spf1 ip4:192.0.2.0/24 a mx -all",
    "_b.provider.example": "v=spf1 exists:%{i}.x.provider.example redirect=_c.provider.example",
    "_c.provider.example": "v=spf1 ip6:2001:db8::/32 -all",
}


def test_nested_includes_count_with_their_path():
    terms = count_lookups("v=spf1 mx include:_spf.provider.example ~all", RESOLVED)
    assert terms == [
        "mx",
        "include:_spf.provider.example",
        "include:_spf.provider.example > include:_a.provider.example",
        "include:_spf.provider.example > include:_a.provider.example > a",
        "include:_spf.provider.example > include:_a.provider.example > mx",
        "include:_spf.provider.example > include:_b.provider.example",
        "include:_spf.provider.example > include:_b.provider.example > exists:%{i}.x.provider.example",
        "include:_spf.provider.example > include:_b.provider.example > redirect=_c.provider.example",
    ]


def test_unresolved_include_costs_one_lookup_and_ip_terms_none():
    assert count_lookups("v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 include:elsewhere.example -all") == [
        "include:elsewhere.example"
    ]
    assert count_lookups("v=spf1 -all") == []


def test_resolved_keys_are_case_and_dot_insensitive():
    terms = count_lookups("v=spf1 include:A.Example", {"a.example.": "v=spf1 a mx -all"})
    assert terms == ["include:A.Example", "include:A.Example > a", "include:A.Example > mx"]


def test_exactly_ten_lookups_pass_and_eleven_fail_naming_the_terms():
    ten = {"include": [f"i{n}.example" for n in range(10)]}
    assert build_record(ten).count("include:") == 10
    nested = {"include": ["big.example"], "mx": True}
    resolved = {"big.example": "v=spf1 " + " ".join(f"a:h{n}.example" for n in range(9)) + " -all"}
    with pytest.raises(SpfError) as error:
        build_record(nested, resolved)
    message = str(error.value)
    assert "needs 11 DNS lookups, more than the 10 that SPF allows" in message
    assert "These count: mx, include:big.example, include:big.example > a:h0.example" in message
    assert "include:big.example > a:h8.example" in message


def test_include_loop_is_refused():
    resolved = {"a.example": "v=spf1 include:b.example -all", "b.example": "v=spf1 include:a.example -all"}
    with pytest.raises(SpfError, match="includes itself"):
        count_lookups("v=spf1 include:a.example -all", resolved)


def test_a_broken_nested_record_names_its_domain():
    with pytest.raises(SpfError, match=r"the record of a.example: term 'bogus:x'"):
        count_lookups("v=spf1 include:a.example -all", {"a.example": "v=spf1 bogus:x -all"})


# -- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("-all", Term("all", "-")),
        ("+mx", Term("mx")),
        ("mx/24", Term("mx", cidr4=24)),
        ("a:mail.example.org//64", Term("a", value="mail.example.org", cidr6=64)),
        ("a:mail.example.org/24//64", Term("a", value="mail.example.org", cidr4=24, cidr6=64)),
        ("ip4:192.0.2.0/24", Term("ip4", value="192.0.2.0", cidr4=24)),
        ("~ip6:2001:db8::/32", Term("ip6", "~", "2001:db8::", cidr6=32)),
        ("ptr", Term("ptr")),
        ("?ptr:example.org", Term("ptr", "?", "example.org")),
        ("INCLUDE:_spf.example.org", Term("include", value="_spf.example.org")),
        ("redirect=_spf.example.org", Term("redirect", value="_spf.example.org", modifier=True)),
        ("exp=explain._spf.%{d}", Term("exp", value="explain._spf.%{d}", modifier=True)),
        ("unknown-mod=anything", Term("unknown-mod", value="anything", modifier=True)),
    ],
)
def test_parse_term(text, term):
    assert parse_term(text) == term
    assert str(parse_term(str(term))) == str(term)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus", "unknown mechanism 'bogus'"),
        ("all:x", "'all' takes no argument"),
        ("ip4", "ip4 needs an address"),
        ("ip4:300.0.0.1", "is not an IPv4 address"),
        ("ip4:2001:db8::1", "is not an IPv4 address"),
        ("ip6:192.0.2.1", "is not an IPv6 address"),
        ("ip4:192.0.2.0/33", "prefix length /33"),
        ("ip4:192.0.2.0/x", "invalid prefix length"),
        ("ip6:2001:db8::/129", "prefix length /129"),
        ("mx/024", "prefix length /024"),
        ("include", "include needs a domain"),
        ("include:nodot", "not a fully qualified"),
        ("mxfoo", "unknown mechanism 'mxfoo'"),
        ("a:x.example/24/", "is not a fully qualified domain name"),
        ("a!x", "unknown mechanism"),
        ("redirect=", "is not a domain name"),
        ("=x", "not a mechanism or modifier"),
    ],
)
def test_parse_term_refuses(text, message):
    with pytest.raises(SpfError, match=message):
        parse_term(text)


def test_parse_record():
    assert [str(t) for t in parse_record("v=spf1  mx   -all")] == ["mx", "-all"]
    assert parse_record("V=SPF1") == []
    for text in ("v=spf10 mx", "spf1 mx", "", None, "v=spf1\tmx"):
        with pytest.raises(SpfError):
            parse_record(text)
    with pytest.raises(SpfError, match="redirect modifier appears more than once"):
        parse_record("v=spf1 redirect=a.example redirect=b.example")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("example.org", True),
        ("_spf.example.org.", True),
        ("xn--bcher-kva.example", True),
        ("localhost", False),
        ("192.0.2.1", False),
        ("-bad.example", False),
        ("a" * 64 + ".example", False),
        ("a..example", False),
        (7, False),
    ],
)
def test_is_domain(name, ok):
    assert is_domain(name) is ok


def test_domain_spec_macros():
    check_domain_spec("%{ir}.%{v}._spf.%{d2}", "x")
    check_domain_spec("%{l1r-}.example.org", "x")
    check_domain_spec("a%%b%_c%-.example.org", "x")
    for bad in ("%{x}.example.org", "%", "%{i", "%a.example.org", "a b.example"):
        with pytest.raises(SpfError):
            check_domain_spec(bad, "x")
