# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The DNS record builders: MX, SPF, DMARC, TLS-RPT and MTA-STS as data and zone lines."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_dns import (
    MailDnsError,
    mail_dns,
    txt_value,
)


def test_one_domain_with_the_defaults():
    (result,) = mail_dns(["Example.org"], mx_host="mail.example.org")
    assert result["domain"] == "example.org"
    assert result["mx"] == ["mail.example.org"]
    assert result["spf"] == "v=spf1 mx ~all"
    assert result["dmarc"] == "v=DMARC1; p=none; rua=mailto:postmaster@example.org"
    assert "tls_rpt" not in result
    assert "mta_sts" not in result
    assert result["records"] == [
        {"name": "example.org.", "type": "MX", "value": "10 mail.example.org.", "ttl": 3600},
        {"name": "example.org.", "type": "TXT", "value": "v=spf1 mx ~all", "ttl": 3600},
        {
            "name": "_dmarc.example.org.",
            "type": "TXT",
            "value": "v=DMARC1; p=none; rua=mailto:postmaster@example.org",
            "ttl": 3600,
        },
    ]
    assert result["zone_lines"] == [
        "example.org.\t3600\tIN\tMX\t10 mail.example.org.",
        'example.org.\t3600\tIN\tTXT\t"v=spf1 mx ~all"',
        '_dmarc.example.org.\t3600\tIN\tTXT\t"v=DMARC1; p=none; rua=mailto:postmaster@example.org"',
    ]
    assert result["notes"] == []


def test_dmarc_with_every_tag():
    (result,) = mail_dns(
        [
            {
                "name": "example.org",
                "dmarc": {
                    "policy": "reject",
                    "subdomain_policy": "quarantine",
                    "pct": 50,
                    "rua": ["dmarc@example.org", "mailto:reports@dmarc.provider.example!10m"],
                    "ruf": ["forensic@example.org"],
                    "adkim": "s",
                    "aspf": "r",
                    "fo": "1:d",
                    "ri": 86400,
                },
            }
        ],
        mx_host="mail.example.org",
    )
    assert result["dmarc"] == (
        "v=DMARC1; p=reject; sp=quarantine; pct=50; "
        "rua=mailto:dmarc@example.org,mailto:reports@dmarc.provider.example!10m; "
        "ruf=mailto:forensic@example.org; adkim=s; aspf=r; fo=1:d; ri=86400"
    )
    assert result["notes"] == [
        "DMARC reports for example.org go to dmarc.provider.example: dmarc.provider.example must publish "
        'example.org._report._dmarc.dmarc.provider.example. TXT "v=DMARC1" (RFC 7489, 7.1)'
    ]


def test_dmarc_pct_100_is_left_out_and_dmarc_can_be_off():
    (with_pct, without) = mail_dns(
        [
            {"name": "a.example", "dmarc": {"policy": "quarantine", "pct": 100, "rua": []}},
            {"name": "b.example", "dmarc": False},
        ],
        mx_host="mail.example.org",
    )
    assert with_pct["dmarc"] == "v=DMARC1; p=quarantine"
    assert "dmarc" not in without
    assert [r["type"] for r in without["records"]] == ["MX", "TXT"]


@pytest.mark.parametrize(
    ("dmarc", "message"),
    [
        ({"policy": "block"}, "example.org: mail_dns_domains[0].dmarc.policy: must be one of none, quarantine, reject, got 'block'"),
        ({"subdomain_policy": "off"}, "mail_dns_domains[0].dmarc.subdomain_policy: must be one of none, quarantine, reject"),
        ({"pct": 101}, "mail_dns_domains[0].dmarc.pct: must be from 0 to 100, got 101"),
        ({"pct": "half"}, "mail_dns_domains[0].dmarc.pct: must be a whole number from 0 to 100, got 'half'"),
        ({"rua": ["https://reports.example"]}, "mail_dns_domains[0].dmarc.rua[0]: 'https://reports.example' is not a mailto: URI"),
        ({"rua": ["mailto:x@nodot"]}, "mail_dns_domains[0].dmarc.rua[0]: 'mailto:x@nodot' has no valid domain"),
        ({"adkim": "strict"}, "mail_dns_domains[0].dmarc.adkim: must be r (relaxed) or s (strict), got 'strict'"),
        ({"fo": "2"}, "mail_dns_domains[0].dmarc.fo: must be 0, 1, d or s, separated by ':', got '2'"),
        ({"fo": "1"}, "mail_dns_domains[0].dmarc.fo: failure reporting options need ruf addresses"),
        ({"ri": 60}, "mail_dns_domains[0].dmarc.ri: must be from 3600 to 2147483647, got 60"),
        ({"p": "reject"}, "mail_dns_domains[0].dmarc: unknown keys p (allowed: policy, subdomain_policy, pct, rua, ruf,"),
        ("reject", "mail_dns_domains[0].dmarc: must be true, false or a mapping with policy"),
    ],
)  # fmt: skip
def test_dmarc_is_validated(dmarc, message):
    with pytest.raises(MailDnsError) as excinfo:
        mail_dns([{"name": "example.org", "dmarc": dmarc}], mx_host="mail.example.org")
    assert message in str(excinfo.value)
    assert str(excinfo.value).startswith("example.org: ")


def test_tls_rpt():
    (default, given) = mail_dns(
        [
            {"name": "a.example", "tls_rpt": True},
            {"name": "b.example", "tls_rpt": {"rua": ["tls@b.example", "https://reports.provider.example/tlsrpt"]}},
        ],
        mx_host="mail.example.org",
    )
    assert default["tls_rpt"] == "v=TLSRPTv1; rua=mailto:postmaster@a.example"
    assert given["tls_rpt"] == "v=TLSRPTv1; rua=mailto:tls@b.example,https://reports.provider.example/tlsrpt"
    assert given["records"][-1] == {
        "name": "_smtp._tls.b.example.",
        "type": "TXT",
        "value": given["tls_rpt"],
        "ttl": 3600,
    }
    with pytest.raises(MailDnsError, match=r"b.example: mail_dns_domains\[0\].tls_rpt.rua: TLS-RPT needs at least one"):
        mail_dns([{"name": "b.example", "tls_rpt": {"rua": []}}], mx_host="mail.example.org")
    with pytest.raises(MailDnsError, match=r"tls_rpt.rua\[0\]: TLS-RPT takes no size limit"):
        mail_dns([{"name": "b.example", "tls_rpt": {"rua": ["mailto:a@b.example!10m"]}}], mx_host="mail.example.org")


def test_mta_sts_enforce():
    (result,) = mail_dns(
        [
            {
                "name": "example.org",
                "mx": [{"host": "mx2.example.org", "priority": 20}, {"host": "mx1.example.org", "priority": 10}],
                "mta_sts": {"mode": "enforce", "mx": ["mx1.example.org", "*.example.org"], "max_age": 1209600},
            }
        ]
    )
    policy = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\nmx: *.example.org\r\nmax_age: 1209600\r\n"
    sts = result["mta_sts"]
    assert sts["policy"] == policy
    assert sts["id"] == hashlib.sha256(policy.encode()).hexdigest()[:20]
    assert sts["record"] == f"v=STSv1; id={sts['id']}"
    assert sts["url"] == "https://mta-sts.example.org/.well-known/mta-sts.txt"
    assert (sts["mode"], sts["max_age"]) == ("enforce", 1209600)
    assert result["mx"] == ["mx1.example.org", "mx2.example.org"]
    assert result["zone_lines"][:2] == [
        "example.org.\t3600\tIN\tMX\t10 mx1.example.org.",
        "example.org.\t3600\tIN\tMX\t20 mx2.example.org.",
    ]
    assert result["zone_lines"][-1] == f'_mta-sts.example.org.\t3600\tIN\tTXT\t"v=STSv1; id={sts["id"]}"'
    assert result["notes"][-1].startswith(
        "serve the MTA-STS policy at https://mta-sts.example.org/.well-known/mta-sts.txt"
    )


def test_mta_sts_testing_defaults_to_the_mx_hosts_and_the_id_follows_the_policy():
    first, second = mail_dns(
        [
            {"name": "a.example", "mta_sts": True},
            {"name": "b.example", "mta_sts": {"mode": "testing", "max_age": 86400, "id": "20261201T1"}},
        ],
        mx_host="mail.example.org",
    )
    assert first["mta_sts"]["mode"] == "testing"
    assert first["mta_sts"]["policy"] == (
        "version: STSv1\r\nmode: testing\r\nmx: mail.example.org\r\nmax_age: 604800\r\n"
    )
    assert second["mta_sts"]["policy"] == (
        "version: STSv1\r\nmode: testing\r\nmx: mail.example.org\r\nmax_age: 86400\r\n"
    )
    assert second["mta_sts"]["record"] == "v=STSv1; id=20261201T1"
    # Another policy gets another id.
    other = mail_dns([{"name": "a.example", "mta_sts": {"max_age": 86400}}], mx_host="mail.example.org")
    assert first["mta_sts"]["id"] != other[0]["mta_sts"]["id"]


@pytest.mark.parametrize(
    ("sts", "message"),
    [
        ({"mode": "enforce", "mx": ["other.example.net"]},
         "mta_sts.mx: the MX host mail.example.org matches none of other.example.net: in enforce mode"),
        ({"mode": "strict"}, "mta_sts.mode: must be one of enforce, testing, none, got 'strict'"),
        ({"max_age": 31557601}, "mta_sts.max_age: must be from 0 to 31557600, got 31557601"),
        ({"id": "2026-12-01"}, "mta_sts.id: must be 1 to 32 letters and digits, got '2026-12-01'"),
        ({"mx": ["bad name"]}, "mta_sts.mx[0]: 'bad name' is not a fully qualified host name"),
    ],
)  # fmt: skip
def test_mta_sts_is_validated(sts, message):
    with pytest.raises(MailDnsError) as excinfo:
        mail_dns([{"name": "example.org", "mta_sts": sts}], mx_host="mail.example.org")
    assert message in str(excinfo.value)


def test_spf_through_the_spf_record_builder_as_a_string_or_none():
    relay, given, none = mail_dns(
        [
            {"name": "a.example", "spf": {"mx": True, "include": ["_spf.provider.example"], "all": "fail"}},
            {"name": "b.example", "spf": "v=spf1 ip4:192.0.2.25 -all"},
            {"name": "c.example", "spf": False},
        ],
        mx_host="mail.example.org",
    )
    assert relay["spf"] == "v=spf1 mx include:_spf.provider.example -all"
    assert given["spf"] == "v=spf1 ip4:192.0.2.25 -all"
    assert none["spf"] is None
    assert [r["name"] for r in none["records"]] == ["c.example.", "_dmarc.c.example."]


def test_spf_over_ten_lookups_fails_naming_the_domain():
    includes = [f"_spf{n}.provider.example" for n in range(11)]
    with pytest.raises(MailDnsError) as excinfo:
        mail_dns(["ok.example", {"name": "busy.example", "spf": {"include": includes}}], mx_host="mail.example.org")
    message = str(excinfo.value)
    assert message.startswith(
        "busy.example: mail_dns_domains[1].spf needs 11 DNS lookups, more than the 10 that SPF allows"
    )
    assert "include:_spf10.provider.example" in message


def test_spf_over_ten_lookups_through_nested_includes_and_in_a_given_record():
    resolved = {"_spf.provider.example": "v=spf1 " + " ".join(f"a:h{n}.provider.example" for n in range(9)) + " ~all"}
    with pytest.raises(MailDnsError, match=r"^relay.example: mail_dns_domains\[0\].spf needs 11 DNS lookups"):
        mail_dns(
            [{"name": "relay.example", "spf": {"mx": True, "include": ["_spf.provider.example"]}}],
            mx_host="mail.example.org",
            resolved=resolved,
        )
    record = "v=spf1 " + " ".join(f"a:h{n}.example.org" for n in range(11)) + " -all"
    with pytest.raises(MailDnsError, match=r"^long.example: mail_dns_domains\[0\].spf needs 11 DNS lookups"):
        mail_dns([{"name": "long.example", "spf": record}], mx_host="mail.example.org")


@pytest.mark.parametrize(
    ("domains", "kwargs", "message"),
    [
        (["example.org"], {}, "example.org: mail_dns_domains[0].mx: no MX host: give mx, or the filter's mx_host"),
        (["example.org", "EXAMPLE.org."], {"mx_host": "mail.example.org"}, "mail_dns_domains[1]: example.org is also mail_dns_domains[0]"),
        ([{"name": "x.example", "mx": ["192.0.2.1"]}], {}, "mail_dns_domains[0].mx[0]: '192.0.2.1' is not a fully qualified host name"),
        ([{"name": "x.example", "mx": ["a.example", "a.example"]}], {}, "mail_dns_domains[0].mx: a.example given more than once"),
        ([{"name": "x.example", "mx": [{"host": "a.example", "prio": 5}]}], {}, "mx[0]: unknown keys prio (allowed: host, priority)"),
        ([{"name": "x.example", "dkim": {}}], {}, "mail_dns_domains[0]: unknown keys dkim"),
        ([{"name": "not a domain"}], {}, "mail_dns_domains[0].name: 'not a domain' is not a fully qualified host name"),
        ([42], {}, "mail_dns_domains[0]: must be a domain name or a mapping with name, got 42"),
        (["x.example"], {"mx_host": "localhost"}, "mx_host: 'localhost' is not a fully qualified host name"),
        ([{"name": "x.example", "ttl": 5}], {"mx_host": "mail.example.org"}, "mail_dns_domains[0].ttl: must be from 60 to"),
        (42, {}, "mail_dns_domains: must be a list of domains, got 42"),
        (["x.example"], {"mx_host": "mail.example.org", "resolved": ["x"]}, "resolved: must be a mapping"),
    ],
)  # fmt: skip
def test_bad_input_names_the_entry(domains, kwargs, message):
    with pytest.raises(MailDnsError) as excinfo:
        mail_dns(domains, **kwargs)
    assert message in str(excinfo.value)


def test_one_domain_given_alone_and_a_ttl():
    (result,) = mail_dns({"name": "example.org", "ttl": 300}, mx_host="mail.example.org.", ttl=600)
    assert {r["ttl"] for r in result["records"]} == {300}
    assert result["mx"] == ["mail.example.org"]


def test_long_txt_values_are_split_and_escaped():
    assert txt_value('a "quoted" \\ value') == '"a \\"quoted\\" \\\\ value"'
    assert txt_value("x" * 300) == '"' + "x" * 255 + '" "' + "x" * 45 + '"'
    assert txt_value("") == '""'


# -- DKIM records ---------------------------------------------------------------------------


def _rsa_public(bits: int) -> str:
    """A real RSA public key as DKIM's p= value (base64 of the DER SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _unquote_zone_strings(text: str) -> list[str]:
    """The strings of a zone-file TXT value (quoted, backslash escapes), as a zone parser reads them."""
    return [re.sub(r"\\(.)", r"\1", chunk) for chunk in re.findall(r'"((?:[^"\\]|\\.)*)"', text)]


@pytest.mark.parametrize(("bits", "strings"), [(2048, 2), (4096, 3)])
def test_dkim_record_of_a_real_key_is_split_into_strings_that_join_back(bits, strings):
    public = _rsa_public(bits)
    keys = [{"domain": "example.org", "selector": "s2026", "public": public, "key_type": "rsa", "state": "active"}]
    (entry,) = mail_dns(["example.org"], mx_host="mail.example.org", dkim_keys=keys)
    value = f"v=DKIM1; k=rsa; p={public}"
    assert entry["dkim"] == [
        {"selector": "s2026", "state": "active", "name": "s2026._domainkey.example.org.", "value": value,
         "strings": entry["dkim"][0]["strings"]}
    ]  # fmt: skip
    parts = entry["dkim"][0]["strings"]
    assert len(parts) == strings
    assert all(len(part.encode()) <= 255 for part in parts)
    assert all(len(part.encode()) == 255 for part in parts[:-1])
    assert "".join(parts) == value
    record = {"name": "s2026._domainkey.example.org.", "type": "TXT", "value": value, "ttl": 3600}
    assert record in entry["records"]
    line = entry["zone_lines"][entry["records"].index(record)]
    name, ttl, klass, rtype, text = line.split("\t", 4)
    assert (name, ttl, klass, rtype) == ("s2026._domainkey.example.org.", "3600", "IN", "TXT")
    assert _unquote_zone_strings(text) == parts


def test_dkim_keys_go_to_their_own_domain_only_and_pending_keys_are_skipped():
    keys = [
        {"domain": "example.org", "selector": "new", "public": "QUJD", "state": "published"},
        {"domain": "example.org", "selector": "old", "public": "REVG", "state": "active"},
        {"domain": "example.net", "selector": "s1", "public": "R0hJ"},
        {"domain": "example.com", "selector": "s1", "public": "SktM"},
        {"domain": "example.org", "selector": "later", "public": None},
    ]
    org, net = mail_dns(["example.org", {"name": "Example.NET"}], mx_host="mail.example.org", dkim_keys=keys)
    assert [(d["name"], d["value"]) for d in org["dkim"]] == [
        ("new._domainkey.example.org.", "v=DKIM1; k=rsa; p=QUJD"),
        ("old._domainkey.example.org.", "v=DKIM1; k=rsa; p=REVG"),
    ]
    assert [d["name"] for d in net["dkim"]] == ["s1._domainkey.example.net."]
    assert not any("example.com" in line for line in org["zone_lines"] + net["zone_lines"])


def test_no_dkim_keys_no_dkim_records():
    (entry,) = mail_dns(["example.org"], mx_host="mail.example.org")
    assert entry["dkim"] == []
    assert not any("_domainkey" in record["name"] for record in entry["records"])


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            [{"domain": "example.org", "selector": "a.b", "public": "QUJD"}],
            "dkim_keys[0].selector: 'a.b' is not one DNS label",
        ),
        (
            [{"domain": "example.org", "selector": "s", "public": "not base64!"}],
            "dkim_keys[0].public: must be the base64",
        ),
        ([{"domain": "bad domain", "selector": "s", "public": "QUJD"}], "dkim_keys[0].domain"),
        ([{"domain": "example.org", "selector": "s", "public": "QUJD", "key_type": "dsa"}], "dkim_keys[0].key_type"),
        (
            [{"domain": "example.org", "selector": "s", "public": "QUJD"}] * 2,
            "dkim_keys[1]: selector s of example.org is given twice",
        ),
        (["s1"], "dkim_keys[0]: must be a mapping"),
    ],
)
def test_dkim_key_errors_name_the_entry(keys, message):
    with pytest.raises(MailDnsError) as info:
        mail_dns(["example.org"], mx_host="mail.example.org", dkim_keys=keys)
    assert message in str(info.value)


def test_an_ed25519_key_gets_a_k_ed25519_record_of_the_bare_key():
    raw = base64.b64encode(bytes(range(32))).decode()
    keys = [
        {"domain": "example.org", "selector": "r1", "key_type": "rsa", "public": "MIIBIjANBgkq"},
        {"domain": "example.org", "selector": "e1", "key_type": "ed25519", "public": raw},
    ]
    (entry,) = mail_dns(["example.org"], mx_host="mail.example.org", dkim_keys=keys)
    ed = [record for record in entry["dkim"] if record["selector"] == "e1"]
    assert ed[0]["value"] == f"v=DKIM1; k=ed25519; p={raw}"
    assert ed[0]["strings"] == [f"v=DKIM1; k=ed25519; p={raw}"]
    assert f'e1._domainkey.example.org.\t3600\tIN\tTXT\t"v=DKIM1; k=ed25519; p={raw}"' in entry["zone_lines"]
    spki = base64.b64encode(bytes.fromhex("302a300506032b6570032100") + bytes(range(32))).decode()
    with pytest.raises(MailDnsError, match=r"dkim_keys\[0\].public: an Ed25519 key is 32 bytes .* got 44"):
        mail_dns(["example.org"], mx_host="m.example.org", dkim_keys=[{**keys[1], "public": spki}])
