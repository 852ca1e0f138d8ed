# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.dkim.dkim_settings import (
    HEADER,
    DkimSettingsError,
    check_settings,
    key_table,
    keys,
    postfix_fragment,
    render_conf,
    render_ed25519_files,
    render_files,
    render_unit,
    signing_table,
    trusted_hosts,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragments import apply_insert

BASE = {"domains": ["example.org"], "selectors": [{"name": "s1", "state": "active"}]}


def settings(**changes):
    return check_settings({**BASE, **changes})


def test_defaults_are_filled_in_and_loopback_is_always_internal():
    result = settings(internal_hosts=["192.0.2.0/24", "[::1]/128", "[2001:db8::]/32"])
    assert result == {
        "domains": ["example.org"],
        "selectors": [{"name": "s1", "state": "active", "algorithm": "rsa"}],
        "key_size": 2048,
        "key_dir": "/etc/dkimkeys",
        "milter_port": 8891,
        "ed25519_milter_port": 8892,
        "internal_hosts": ["127.0.0.1", "::1", "192.0.2.0/24", "2001:db8::/32"],
        "authserv_id": "",
        "canonicalization": "relaxed/simple",
        "mode": "sv",
        "oversign_headers": ["From"],
        "nameservers": [],
        "trust_anchor_file": "/usr/share/dns/root.key",
        "resolver_configuration": "",
    }


def test_domains_are_lower_case_and_unique():
    assert settings(domains=["Example.ORG", "example.org", "two.example"])["domains"] == ["example.org", "two.example"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a.b", "dkim_selectors[0].name: 'a.b' contains a dot"),
        ("a b", "dkim_selectors[0].name: 'a b' is not a DNS label"),
        ("a\nb", "dkim_selectors[0].name: 'a\\nb' is not a DNS label"),
        ("", "dkim_selectors[0].name: '' is not a DNS label"),
        ("-a", "dkim_selectors[0].name: '-a' is not a DNS label"),
        ("a_b", "dkim_selectors[0].name: 'a_b' is not a DNS label"),
        ("x" * 64, "is not a DNS label"),
        (7, "dkim_selectors[0].name: must be a string, got 7 (int)"),
    ],
)
def test_a_selector_is_one_dns_label(name, message):
    with pytest.raises(DkimSettingsError, match=None) as info:
        settings(selectors=[{"name": name, "state": "active"}])
    assert message in str(info.value)


def test_selector_of_63_characters_is_a_label():
    assert settings(selectors=[{"name": "a" * 63}])["selectors"] == [
        {"name": "a" * 63, "state": "active", "algorithm": "rsa"}
    ]


@pytest.mark.parametrize(
    ("selectors", "message"),
    [
        (
            [{"name": "a", "state": "published"}],
            "dkim_selectors: exactly one selector must be active (it signs), got 0",
        ),
        ([{"name": "a"}, {"name": "b"}], "exactly one selector must be active (it signs), got 2 (a, b)"),
        ([{"name": "a"}, {"name": "A", "state": "retired"}], "dkim_selectors[1].name: a is also dkim_selectors[0]"),
        ([{"name": "a", "state": "old"}], "dkim_selectors[0].state: must be one of active, published, retired"),
        ([{"name": "a", "key": "x"}], "dkim_selectors[0]: unknown keys key"),
        ([], "dkim_selectors: must be a non-empty list"),
        ("a", "dkim_selectors: must be a non-empty list"),
    ],
)
def test_selector_list_errors_name_the_entry(selectors, message):
    with pytest.raises(DkimSettingsError) as info:
        settings(selectors=selectors)
    assert message in str(info.value)


@pytest.mark.parametrize("bits", [2048, 3072, 4096, 8192, "4096"])
def test_key_sizes_in_range(bits):
    assert settings(key_size=bits)["key_size"] == int(bits)


@pytest.mark.parametrize(
    ("bits", "message"),
    [
        (1024, "dkim_key_size: 1024 bits is outside 2048..8192"),
        (2047, "dkim_key_size: 2047 bits is outside 2048..8192"),
        (8193, "dkim_key_size: 8193 bits is outside 2048..8192"),
        (True, "dkim_key_size: must be a whole number of bits"),
        ("2k", "dkim_key_size: must be a whole number of bits"),
    ],
)
def test_key_sizes_out_of_range_are_refused(bits, message):
    with pytest.raises(DkimSettingsError) as info:
        settings(key_size=bits)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("domains", "message"),
    [
        (["example.org", "not a domain"], "dkim_domains[1]: 'not a domain' is not a valid domain name"),
        (["example.org."], "dkim_domains[0]: 'example.org.' is not a valid domain name: remove the trailing dot"),
        (["192.0.2.1"], "dkim_domains[0]: '192.0.2.1' is not a valid domain name"),
        ([""], "dkim_domains[0]: '' is not a valid domain name"),
        ([], "dkim_domains: must be a non-empty list of domains"),
    ],
)
def test_domains_must_be_domains(domains, message):
    with pytest.raises(DkimSettingsError) as info:
        settings(domains=domains)
    assert message in str(info.value)


@pytest.mark.parametrize("key_dir", ["/etc/dkimkeys", "/etc/dkimkeys/sub", "/var/lib/postmaster/dkim/keys"])
def test_key_dir_inside_the_signers_directory(key_dir):
    assert settings(key_dir=key_dir)["key_dir"] == key_dir


@pytest.mark.parametrize(
    "key_dir", ["/etc/ssl/private", "/tmp/keys", "/etc/dkimkeys/../shadow", "/root/.ssh", "relative", "/etc/dkim keys"]
)
def test_key_dir_outside_the_signers_directory_is_refused(key_dir):
    with pytest.raises(DkimSettingsError) as info:
        settings(key_dir=key_dir)
    assert str(info.value).startswith("dkim_key_dir: ")


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        (["0.0.0.0/0"], "dkim_internal_hosts[0]: 0.0.0.0/0 is every address"),
        (["::/0"], "dkim_internal_hosts[0]: ::/0 is every address"),
        (["192.0.2.0/24", "mail.example.org"], "dkim_internal_hosts[1]: 'mail.example.org' is not an IP address"),
        (["hash:/etc/postfix/network_table"], "dkim_internal_hosts[0]"),
    ],
)
def test_internal_hosts_errors(hosts, message):
    with pytest.raises(DkimSettingsError) as info:
        settings(internal_hosts=hosts)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"milter_port": 0}, "dkim_milter_port: must be from 1 to 65535"),
        ({"mode": "v"}, "dkim_mode: must be sv"),
        ({"canonicalization": "loose"}, "dkim_canonicalization: must be one of"),
        ({"authserv_id": "not valid"}, "dkim_authserv_id: 'not valid' is not a valid domain name"),
        ({"oversign_headers": ["From", "Sub ject"]}, "dkim_oversign_headers[1]"),
        ({"nameservers": ["dns.example"]}, "dkim_nameservers[0]: 'dns.example' is not an IP address"),
        ({"trust_anchor_file": "root.key"}, "dkim_trust_anchor_file: must be an absolute path"),
        ({"resolver_configuration": "/etc/x\ny"}, "dkim_resolver_configuration: must be an absolute path"),
        ({"color": "blue"}, "unknown settings dkim_color"),
    ],
)
def test_other_errors_name_the_variable(changes, message):
    with pytest.raises(DkimSettingsError) as info:
        settings(**changes)
    assert message in str(info.value)


def test_missing_domains_and_selectors_are_named():
    with pytest.raises(DkimSettingsError, match="missing settings dkim_domains, dkim_selectors"):
        check_settings({})


ROTATING = {
    "domains": ["example.org", "example.net"],
    "selectors": [
        {"name": "s2", "state": "active"},
        {"name": "s1", "state": "published"},
        {"name": "s0", "state": "retired"},
    ],
}


def test_tables_sign_with_the_active_selector_only():
    result = check_settings(ROTATING)
    assert key_table(result) == HEADER + (
        "s2._domainkey.example.org example.org:s2:/etc/dkimkeys/example.org/s2.private\n"
        "s2._domainkey.example.net example.net:s2:/etc/dkimkeys/example.net/s2.private\n"
    )
    assert signing_table(result) == HEADER + (
        "*@example.org s2._domainkey.example.org\n*@example.net s2._domainkey.example.net\n"
    )
    assert [(k["domain"], k["selector"], k["state"]) for k in keys(result)] == [
        ("example.org", "s2", "active"),
        ("example.org", "s1", "published"),
        ("example.org", "s0", "retired"),
        ("example.net", "s2", "active"),
        ("example.net", "s1", "published"),
        ("example.net", "s0", "retired"),
    ]


def test_trusted_hosts_lists_the_internal_hosts():
    assert trusted_hosts(settings(internal_hosts=["192.0.2.0/24"])) == HEADER + "127.0.0.1\n::1\n192.0.2.0/24\n"


def test_conf_names_the_tables_and_the_socket():
    text = render_conf(settings(authserv_id="mail.example.org", nameservers=["192.0.2.53"]), "/etc/opendkim")
    lines = dict(line.split("\t", 1) for line in text.splitlines() if not line.startswith("#"))
    assert lines["Socket"] == "inet:8891@127.0.0.1"
    assert lines["Mode"] == "sv"
    assert lines["KeyTable"] == "file:/etc/opendkim/KeyTable"
    assert lines["SigningTable"] == "refile:/etc/opendkim/SigningTable"
    assert lines["InternalHosts"] == lines["ExternalIgnoreList"] == "refile:/etc/opendkim/TrustedHosts"
    assert lines["AuthservID"] == "mail.example.org"
    assert lines["AlwaysAddARHeader"] == "yes"
    assert lines["UserID"] == "opendkim"
    assert lines["TrustAnchorFile"] == "/usr/share/dns/root.key"
    assert lines["Nameservers"] == "192.0.2.53"
    assert "ResolverConfiguration" not in lines


def test_conf_without_trust_anchor_and_sign_only():
    text = render_conf(settings(trust_anchor_file="", mode="s", resolver_configuration="/etc/ub.conf"), "/x")
    assert "TrustAnchorFile" not in text
    assert "AlwaysAddARHeader" not in text
    assert "ResolverConfiguration\t/etc/ub.conf\n" in text


def test_render_files_are_the_four_files():
    assert sorted(render_files(settings(), "/etc/opendkim", "/etc/opendkim.conf")) == [
        "/etc/opendkim.conf",
        "/etc/opendkim/KeyTable",
        "/etc/opendkim/SigningTable",
        "/etc/opendkim/TrustedHosts",
    ]


def test_postfix_fragment_adds_the_milter_next_to_others_once():
    fragment = postfix_fragment(settings(milter_port=8892))
    assert fragment["main"] == {"milter_default_action": "accept", "milter_protocol": "6"}
    main = {"smtpd_milters": "inet:127.0.0.1:11332"}
    for insert in fragment["insert"]:
        apply_insert("45-dkim.json", main, insert)
        apply_insert("45-dkim.json", main, insert)  # idempotent
    assert main["smtpd_milters"] == ["inet:127.0.0.1:11332", "inet:127.0.0.1:8892"]
    assert main["non_smtpd_milters"] == ["inet:127.0.0.1:8892"]


# -- Ed25519 dual signing ------------------------------------------------------------------

DUAL = [{"name": "r1", "state": "active"}, {"name": "e1", "state": "active", "algorithm": "ed25519"}]


@pytest.mark.parametrize(
    ("selectors", "message"),
    [
        (
            [{"name": "e1", "state": "active", "algorithm": "ed25519"}],
            "dkim_selectors: exactly one selector must be active (it signs), got 0; an Ed25519 signature only adds "
            "to an RSA one",
        ),
        (
            [*DUAL, {"name": "e2", "state": "active", "algorithm": "ed25519"}],
            "dkim_selectors: at most one ed25519 selector may be active, got 2 (e1, e2)",
        ),
        ([{"name": "r1", "algorithm": "dsa"}], "dkim_selectors[0].algorithm: must be one of rsa, ed25519, got 'dsa'"),
        ([{"name": "r1", "algo": "rsa"}], "dkim_selectors[0]: unknown keys algo (allowed: name, state, algorithm)"),
    ],
)
def test_ed25519_selectors_are_checked(selectors, message):
    with pytest.raises(DkimSettingsError) as error:
        settings(selectors=selectors)
    assert message in str(error.value)


def test_the_ed25519_port_is_the_next_one_and_not_the_rsa_one():
    assert settings(milter_port=9000)["ed25519_milter_port"] == 9001
    with pytest.raises(DkimSettingsError, match=r"dkim_ed25519_milter_port: 9000 is also dkim_milter_port"):
        settings(milter_port=9000, ed25519_milter_port=9000)


def test_dual_signing_renders_a_sign_only_ed25519_process():
    result = settings(selectors=DUAL, authserv_id="mail.example.org")
    rsa = render_files(result, "/etc/opendkim", "/etc/opendkim.conf")
    assert (
        rsa["/etc/opendkim/KeyTable"]
        == HEADER + "r1._domainkey.example.org example.org:r1:/etc/dkimkeys/example.org/r1.private\n"
    )
    ed = render_ed25519_files(result, "/etc/opendkim", "/etc/opendkim.conf")
    assert sorted(ed) == [
        "/etc/opendkim-ed25519.conf",
        "/etc/opendkim/ed25519/KeyTable",
        "/etc/opendkim/ed25519/SigningTable",
    ]
    assert ed["/etc/opendkim/ed25519/SigningTable"] == HEADER + "*@example.org e1._domainkey.example.org\n"
    conf = ed["/etc/opendkim-ed25519.conf"]
    for line in (
        "Socket\tinet:8892@127.0.0.1\n",
        "Mode\ts\n",
        "SignatureAlgorithm\ted25519-sha256\n",
        "KeyTable\tfile:/etc/opendkim/ed25519/KeyTable\n",
        "InternalHosts\trefile:/etc/opendkim/TrustedHosts\n",
        "PidFile\t/run/opendkim/opendkim-ed25519.pid\n",
    ):
        assert line in conf
    assert "AuthservID" not in conf and "AlwaysAddARHeader" not in conf  # the RSA process verifies
    assert "SignatureAlgorithm" not in rsa["/etc/opendkim.conf"]
    assert "ExecStart=/usr/sbin/opendkim -x /etc/opendkim-ed25519.conf\n" in render_unit("/etc/opendkim.conf")
    assert [item["algorithm"] for item in keys(result)] == ["rsa", "ed25519"]
    fragment = postfix_fragment(result)
    assert fragment["insert"][0]["values"] == ["inet:127.0.0.1:8891", "inet:127.0.0.1:8892"]


def test_a_published_ed25519_selector_needs_no_second_process():
    result = settings(selectors=[{"name": "r1"}, {"name": "e1", "state": "published", "algorithm": "ed25519"}])
    assert render_ed25519_files(result, "/etc/opendkim", "/etc/opendkim.conf") == {}
    assert postfix_fragment(result)["insert"][0]["values"] == ["inet:127.0.0.1:8891"]
