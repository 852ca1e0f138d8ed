# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 25, relaying: restrictions and settings that grant relay, and the error each one raises.

Every row runs what the collection runs before its first change on a host: the postfix role's
controller-side filter (postfix_role_tables, over the role's variables) or the postfix_config
module's backend (over merged fragments and the tables on the host), with side effects faked.
The judge reads results the way smtpd's check_table_result() does (OK, RELAY, digits only, an
empty list, restriction names in any case) and knows which keys an outside client controls.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter.postfix import postfix_role_fragment
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragments import (
    FragmentError,
    parse_fragment,
    trusted_policy_services,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_relay import (
    RelayJudge,
    relay_findings,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import PostfixValidationError
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_validate import validate_main
from ansible_collections.postmaster.mailserver.tests.unit.plugins.test_bad_input_matrix import (
    SUPPORTED,
    _postfix_settings,
    postfix_config,
    postfix_fragment,
    postfix_role,
)

BLOCK = "reject_unauth_destination"
REFUSED = "- open relay refused (postfix_allow_open_relay is false):\n  - "
MAIN = "postfix_relay_restrictions and postfix_recipient_restrictions: main.cf would relay mail for anyone: "
FIRST = MAIN + "smtpd_relay_restrictions lets every client through at entry 1: "
UNKNOWN = "'unknown', the name of every client without a valid reverse DNS name"
SERVES = "so this server relays mail from anyone to"


def relay(*entries, **variables):
    """The postfix role with *entries* deciding relaying (and no second list that would stop it)."""
    return postfix_role(postfix_relay_restrictions=list(entries), postfix_recipient_restrictions=[], **variables)


def table(name, table_type, *pairs):
    return [{"name": name, "type": table_type, "entries": [{"key": k, "value": v} for k, v in pairs]}]


def host(**fragment):
    """postfix_config on a scratch directory, with one more fragment (``{tmp}`` is the scratch root)."""

    def run(tmp):
        tables = fragment.pop("tables", [])
        data = json.loads(json.dumps(fragment).replace("{tmp}", str(tmp)))
        tables = json.loads(json.dumps(tables).replace("{tmp}", str(tmp)))
        postfix_config(tmp, fragments=postfix_fragment(**data), tables=tables)()

    return run


def host_relay(*entries, **fragment):
    return host(main={"smtpd_relay_restrictions": list(entries)}, overrides=["smtpd_relay_restrictions"], **fragment)


HOSTILE = [
    # A lookup table whose type matches every key.
    pytest.param(relay("check_client_access unionmap:{hash:/etc/postfix/none, static:OK}", BLOCK),
                 FIRST + "'check_client_access unionmap:{hash:/etc/postfix/none, static:OK}': "
                 "unionmap:{hash:/etc/postfix/none, static:OK} answers 'OK' for every key", id="relay-unionmap-static"),
    pytest.param(relay("check_client_access pipemap:{static:x, inline:{x=OK}}", BLOCK),
                 "pipemap:{static:x, inline:{x=OK}} answers 'OK' for every key", id="relay-pipemap-static"),
    pytest.param(relay("check_client_access randmap:{DUNNO, OK}", BLOCK),
                 "'check_client_access randmap:{DUNNO, OK}': randmap:{DUNNO, OK} answers 'OK' for every key",
                 id="relay-randmap"),
    pytest.param(relay("outer", BLOCK, postfix_restriction_classes={"outer": ["inner"], "inner": ["check_helo_access static:RELAY"]}),
                 FIRST + "restriction class 'outer' lets every client through at entry 1: restriction class 'inner' "
                 "lets every client through at entry 1: 'check_helo_access static:RELAY': static:RELAY answers "
                 "'RELAY' for every key (smtpd reads it as OK)", id="relay-nested-class-static"),
    pytest.param(postfix_role(postfix_mynetworks=["127.0.0.0/8", "static:all"]),
                 REFUSED + "postfix_mynetworks: parameter mynetworks: static:all matches every key, so "
                 "every client is trusted", id="relay-mynetworks-static"),
    pytest.param(postfix_role(postfix_mynetworks=["inline:{unknown=yes}"]),
                 "- postfix_mynetworks: parameter mynetworks: inline:{unknown=yes} matches " + UNKNOWN,
                 id="relay-mynetworks-inline-unknown"),
    pytest.param(postfix_role(postfix_mynetworks=["regexp:/etc/postfix/trusted"], postfix_maps=table("trusted", "regexp", ("/^unknown$/", "x"))),
                 "- postfix_mynetworks: parameter mynetworks: regexp:/etc/postfix/trusted matches /^unknown$/, which "
                 "matches 'unknown', a client name anyone can have", id="relay-mynetworks-regexp-unknown"),
    # Access tables of any type that permit a key the client controls.
    pytest.param(relay("check_client_access inline:{unknown=OK}", BLOCK),
                 FIRST + "'check_client_access inline:{unknown=OK}': inline:{unknown=OK} answers 'OK' for " + UNKNOWN,
                 id="relay-client-inline-unknown"),
    pytest.param(relay("check_client_access hash:/etc/postfix/clients", BLOCK,
                       postfix_maps=table("clients", "hash", ("unknown", "OK"))),
                 "'check_client_access hash:/etc/postfix/clients': hash:/etc/postfix/clients answers 'OK' for "
                 + UNKNOWN, id="relay-client-hash-unknown"),
    pytest.param(relay("check_client_access texthash:/etc/postfix/clients", BLOCK,
                       postfix_maps=table("clients", "texthash", (".com", "OK"))),
                 "texthash:/etc/postfix/clients answers 'OK' for '.com', a whole top-level domain that anyone can "
                 "register a name under", id="relay-client-texthash-tld"),
    pytest.param(relay("check_client_access lmdb:/etc/postfix/clients", BLOCK,
                       postfix_maps=table("clients", "lmdb", ("44", "OK"), ("45", "OK"))),
                 "lmdb:/etc/postfix/clients answers 'OK' for 44, 45, which cover 2 /8s worth of public IPv4 "
                 "addresses (at most one /8 may be trusted)", id="relay-client-octet-prefixes"),
    pytest.param(relay("check_client_access regexp:/etc/postfix/clients", BLOCK,
                       postfix_maps=table("clients", "regexp", ("/^mail\\./", "OK"))),
                 "regexp:/etc/postfix/clients answers 'OK' for /^mail\\./, which matches 'mail.attacker.example', a "
                 "client name anyone can have", id="relay-client-regexp-name"),
    pytest.param(relay("check_helo_access cdb:/etc/postfix/helo", BLOCK,
                       postfix_maps=table("helo", "cdb", ("mail.example.org", "OK"))),
                 "cdb:/etc/postfix/helo answers 'OK' for 'mail.example.org', which any client can claim",
                 id="relay-helo-cdb"),
    pytest.param(relay("check_sender_access inline:{boss@example.org=OK}", BLOCK),
                 "inline:{boss@example.org=OK} answers 'OK' for 'boss@example.org', which any client can claim",
                 id="relay-sender-inline"),
    pytest.param(relay("check_sender_access hash:/etc/postfix/senders", BLOCK,
                       postfix_maps=table("senders", "hash", ("<>", "OK"))),
                 "hash:/etc/postfix/senders answers 'OK' for '<>', which any client can claim", id="relay-null-sender"),
    pytest.param(relay("check_recipient_access hash:/etc/postfix/rcpt", BLOCK,
                       postfix_maps=table("rcpt", "hash", ("com", "OK"))),
                 "hash:/etc/postfix/rcpt answers 'OK' for 'com', a whole top-level domain", id="relay-recipient-tld"),
    pytest.param(relay("check_recipient_access hash:/etc/postfix/rcpt", BLOCK,
                       postfix_maps=table("rcpt", "hash", ("postmaster@", "OK"))),
                 "hash:/etc/postfix/rcpt answers 'OK' for 'postmaster@', that local part in every domain",
                 id="relay-recipient-local-part"),
    pytest.param(relay("hash:/etc/postfix/rcpt", BLOCK, postfix_maps=table("rcpt", "hash", (".net", "OK"))),
                 FIRST + "'hash:/etc/postfix/rcpt': hash:/etc/postfix/rcpt answers 'OK' for '.net', a whole "
                 "top-level domain", id="relay-bare-table-tld"),
    pytest.param(relay("check_client_access regexp:/etc/postfix/clients", BLOCK,
                       postfix_maps=table("clients", "regexp", ("/\\.de$/", "OK"))),
                 "regexp:/etc/postfix/clients answers 'OK' for /\\.de$/, which matches 'mail.attacker.de', a client "
                 "name anyone can have", id="relay-client-regexp-tld"),
    pytest.param(relay("check_client_access pcre:/etc/postfix/clients", BLOCK,
                       postfix_maps=table("clients", "pcre", ("/example\\.org$/", "OK"))),
                 "pcre:/etc/postfix/clients answers 'OK' for /example\\.org$/, which matches "
                 "'mail.attackerexample.org', a client name anyone can have", id="relay-client-pcre-unanchored-domain"),
    pytest.param(relay("check_client_access pcre:/etc/postfix/clients", BLOCK,
                       postfix_maps=table("clients", "pcre", ("/^1/", "OK"))),
                 "pcre:/etc/postfix/clients answers 'OK' for /^1/, which matches client addresses in 109 of the 221 "
                 "public /8s (at most one /8 may be trusted)", id="relay-client-pcre-address-prefix"),
    pytest.param(relay("check_client_access hash:/etc/postfix/clients", BLOCK,
                       postfix_maps=table("clients", "hash", ("co.uk", "OK"))),
                 "hash:/etc/postfix/clients answers 'OK' for 'co.uk', a whole top-level domain that anyone can "
                 "register a name under", id="relay-client-public-suffix"),
    pytest.param(relay("check_client_access hash:/etc/postfix/clients", BLOCK,
                       postfix_maps=table("clients", "hash", ("2001", "OK"), ("2a00", "OK"))),
                 "hash:/etc/postfix/clients answers 'OK' for 2001, 2a00, which cover 2 /16s worth of global IPv6 "
                 "addresses (at most one /16 may be trusted)", id="relay-client-ipv6-prefixes"),
    pytest.param(relay("check_recipient_access regexp:/etc/postfix/rcpt", BLOCK,
                       postfix_maps=table("rcpt", "regexp", ("/\\.com$/", "OK"))),
                 "regexp:/etc/postfix/rcpt answers 'OK' for /\\.com$/, which matches 'spam@attacker.com': every "
                 "domain under a whole top-level domain", id="relay-recipient-regexp-tld"),
    # Values that read as OK to smtpd (check_table_result()).
    pytest.param(relay("check_client_access cidr:/etc/postfix/c", BLOCK,
                       postfix_maps=table("c", "cidr", ("0.0.0.0/0", "550"))),
                 "cidr:/etc/postfix/c answers '550' for every client (smtpd reads it as OK)", id="relay-value-digits"),
    pytest.param(relay("check_client_access hash:/etc/postfix/c", BLOCK,
                       postfix_maps=table("c", "hash", ("unknown", ","))),
                 "hash:/etc/postfix/c answers ',' for " + UNKNOWN + " (smtpd reads it as OK)",
                 id="relay-value-empty-list"),
    pytest.param(relay("check_client_access static:Permit", BLOCK),
                 "static:Permit answers 'Permit' for every key, which lets every client through at entry 1: "
                 "'permit' permits every client", id="relay-value-permit-case"),
    pytest.param(relay("check_client_access hash:/etc/postfix/c", BLOCK,
                       postfix_maps=table("c", "hash", ("unknown", "  ok\t"))),
                 "hash:/etc/postfix/c answers 'ok' for " + UNKNOWN, id="relay-value-padded-lower-case"),
    pytest.param(relay("check_sender_access hash:/etc/postfix/c", BLOCK,
                       postfix_maps=table("c", "hash", ("boss@example.org", "Ok trusted"))),
                 "hash:/etc/postfix/c answers 'Ok trusted' for 'boss@example.org', which any client can claim",
                 id="relay-value-ok-with-text"),
    # Address ranges that cover most of the Internet without being /0.
    pytest.param(postfix_role(postfix_mynetworks=["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2"]),
                 REFUSED + "postfix_mynetworks: parameter mynetworks: 0.0.0.0/2, 64.0.0.0/2, 128.0.0.0/2 covers 189 "
                 "/8s worth of public IPv4 addresses (at most one /8 may be trusted), so clients anywhere are trusted",
                 id="relay-mynetworks-three-quarters"),
    pytest.param(postfix_role(postfix_mynetworks=["44.0.0.0/8", "45.0.0.0/8"]),
                 "- postfix_mynetworks: parameter mynetworks: 44.0.0.0/8, 45.0.0.0/8 covers 2 /8s worth of public IPv4 "
                 "addresses", id="relay-mynetworks-two-slash-8"),
    pytest.param(postfix_role(postfix_mynetworks=["[2000::]/3"]),
                 "- postfix_mynetworks: parameter mynetworks: [2000::]/3 covers 8.19e+03 /16s worth of global IPv6 "
                 "addresses (at most one /16 may be trusted)", id="relay-mynetworks-ipv6-global"),
    pytest.param(postfix_role(postfix_main_extra={"mynetworks": "0.0.0.0/2"}),
                 "- postfix_main_extra.mynetworks: parameter mynetworks: 0.0.0.0/2 covers 62 /8s worth of public IPv4 "
                 "addresses", id="relay-mynetworks-main-extra"),
    pytest.param(
        postfix_role(postfix_mynetworks=["cidr:/etc/postfix/trusted"], postfix_maps=table(
            "trusted", "cidr", ("0.0.0.0/1", "x"), ("128.0.0.0/1", "x"))),
        "- postfix_mynetworks: parameter mynetworks: cidr:/etc/postfix/trusted covers 221 /8s worth of public "
        "IPv4 addresses", id="relay-mynetworks-cidr-table-halves"),
    pytest.param(
        relay("check_client_access cidr:/etc/postfix/clients", BLOCK, postfix_maps=table(
            "clients", "cidr", ("0.0.0.0/1", "OK"), ("128.0.0.0/1", "OK"))),
        "cidr:/etc/postfix/clients answers 'OK' for 0.0.0.0/1, 128.0.0.0/1, which cover 221 /8s worth of "
        "public IPv4 addresses", id="relay-client-cidr-halves"),
    pytest.param(postfix_role(postfix_mynetworks=[], postfix_mynetworks_style="class"),
                 "- postfix_mynetworks_style: parameter mynetworks_style: class trusts the whole class A, B or C "
                 "network of each of this host's addresses", id="relay-mynetworks-style-class"),
    # relay_domains that match everything or a whole top-level domain.
    pytest.param(postfix_role(postfix_relay_domains=["*"]),
                 REFUSED + "postfix_relay_domains: parameter relay_domains: '*' is not a domain name",
                 id="relay-domains-star"),
    pytest.param(postfix_role(postfix_relay_domains=["example.org", ".com"]),
                 "- postfix_relay_domains: parameter relay_domains: '.com' is a whole top-level domain, " + SERVES
                 + " every domain under it (reject_unauth_destination and permit_auth_destination let it pass)",
                 id="relay-domains-dot-tld"),
    pytest.param(postfix_role(postfix_relay_domains=["com"]),
                 "- postfix_relay_domains: parameter relay_domains: 'com' is a whole top-level domain",
                 id="relay-domains-tld"),
    pytest.param(postfix_role(postfix_relay_domains=["static:all"]),
                 "- postfix_relay_domains: parameter relay_domains: static:all matches every key, " + SERVES + " it",
                 id="relay-domains-static"),
    pytest.param(postfix_role(postfix_relay_domains=["regexp:/etc/postfix/rd"], postfix_maps=table("rd", "regexp", ("/./", "x"))),
                 "- postfix_relay_domains: parameter relay_domains: regexp:/etc/postfix/rd matches /./, which matches "
                 "every domain", id="relay-domains-regexp"),
    pytest.param(postfix_role(postfix_main_extra={"relay_domains": "inline:{org=x}"}),
                 "- postfix_main_extra.relay_domains: parameter relay_domains: inline:{org=x} matches 'org', a whole "
                 "top-level domain", id="relay-domains-main-extra-inline"),
    # TLS client certificates, policy services on other hosts, backup MX.
    pytest.param(relay("permit_tls_all_clientcerts", BLOCK),
                 FIRST + "'permit_tls_all_clientcerts' permits every client with a certificate from any CA the server "
                 "trusts, which anyone can get", id="relay-tls-all-clientcerts"),
    pytest.param(relay("permit_tls_clientcerts", BLOCK, postfix_main_extra={"relay_clientcerts": "static:yes"}),
                 FIRST + "'permit_tls_clientcerts': relay_clientcerts static:yes answers 'yes' for every key (any value "
                 "is a match)", id="relay-tls-clientcerts-static"),
    pytest.param(relay("check_policy_service inet:192.0.2.5:9998", BLOCK),
                 FIRST + "'check_policy_service inet:192.0.2.5:9998' lets a policy service on another host decide, and "
                 "its answer (OK) permits; list it in postfix_trusted_policy_services (in a fragment: "
                 "trusted_policy_services) if that host is yours", id="relay-policy-remote"),
    pytest.param(relay("p", BLOCK, postfix_restriction_classes={"p": ["check_policy_service inet:policy.example.net:10040"]}),
                 "restriction class 'p' lets every client through at entry 1: 'check_policy_service "
                 "inet:policy.example.net:10040' lets a policy service on another host decide",
                 id="relay-policy-remote-in-class"),
    pytest.param(postfix_role(postfix_trusted_policy_services=["unix:private/policy"]),
                 "- postfix_trusted_policy_services[0]: 'unix:private/policy' is not a policy service on another host "
                 "(inet:host:port, as written after check_policy_service)", id="relay-trusted-policy-not-remote"),
    pytest.param(relay("permit_mx_backup", BLOCK),
                 FIRST + "'permit_mx_backup' relays for every domain whose DNS names this server as a backup MX, which "
                 "anyone can publish, unless permit_mx_backup_networks limits the primary MX hosts (it is empty)",
                 id="relay-mx-backup-unlimited"),
    pytest.param(relay("permit_mx_backup", BLOCK, postfix_main_extra={"permit_mx_backup_networks": "0.0.0.0/1"}),
                 "unless permit_mx_backup_networks limits the primary MX hosts (parameter permit_mx_backup_networks: "
                 "0.0.0.0/1 covers", id="relay-mx-backup-wide-networks"),
    pytest.param(relay("permit_naked_ip_address", BLOCK),
                 "- parameter postfix_relay_restrictions: unknown restriction 'permit_naked_ip_address'",
                 id="relay-naked-ip-address"),
    pytest.param(
        postfix_role(postfix_submission_options={
            "smtpd_relay_restrictions": "check_client_access,inline:{unknown=OK},reject_unauth_destination",
            "smtpd_recipient_restrictions": "permit_sasl_authenticated"}),
        "- postfix_submission_options: master.cf service submission/inet would relay mail for anyone: "
        "smtpd_relay_restrictions lets every client through at entry 1: 'check_client_access "
        "inline:{unknown=OK}'", id="relay-dash-o-inline-unknown"),
]  # fmt: skip

HOST_PREFIX = "invalid Postfix configuration:\n- open relay refused:\n  - "
HOSTILE_ON_HOST = [
    pytest.param(host(main={"mynetworks": ["127.0.0.0/8", "static:all"]}, overrides=["mynetworks"]),
                 HOST_PREFIX + "parameter mynetworks: static:all matches every key", id="host-mynetworks-static"),
    pytest.param(host(main={"relay_domains": ["com"]}),
                 HOST_PREFIX + "parameter relay_domains: 'com' is a whole top-level domain", id="host-relay-domains-tld"),
    pytest.param(host_relay("check_client_access hash:{tmp}/postfix/clients", BLOCK,
                            tables=[{"path": "{tmp}/postfix/clients", "content": "unknown OK\n"}]),
                 "answers 'OK' for " + UNKNOWN, id="host-client-table-unknown"),
    pytest.param(host_relay("check_policy_service inet:192.0.2.5:9998", BLOCK),
                 "'check_policy_service inet:192.0.2.5:9998' lets a policy service on another host decide",
                 id="host-policy-remote"),
    pytest.param(host_relay("check_policy_service inet:192.0.2.5:9998", BLOCK,
                            trusted_policy_services=["inet:192.0.2.6:9998"]),
                 "'check_policy_service inet:192.0.2.5:9998' lets a policy service on another host decide",
                 id="host-policy-remote-other-trusted"),
]  # fmt: skip


@pytest.mark.parametrize(("run", "expected"), HOSTILE)
def test_hostile_relay_variables_are_refused(run, expected):
    with pytest.raises(AnsibleFilterError) as excinfo:
        run()
    assert expected in str(excinfo.value)


@pytest.mark.parametrize(("run", "expected"), HOSTILE_ON_HOST)
def test_hostile_relay_fragments_are_refused_on_the_host(tmp_path, run, expected):
    with pytest.raises(Exception) as excinfo:
        run(tmp_path)
    assert type(excinfo.value).__name__ == "PostfixConfigError"
    assert expected.replace("{tmp}", str(tmp_path)) in str(excinfo.value)


def test_there_are_enough_hostile_relay_cases():
    ids = [param.id for param in HOSTILE + HOSTILE_ON_HOST]
    assert len(ids) == len(set(ids)) >= 25


# -- what stays possible ------------------------------------------------------------------------------

LEGITIMATE = [
    pytest.param({}, id="default-role-configuration"),
    pytest.param({"postfix_mynetworks": ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                         "100.64.0.0/10", "[::1]/128", "[fd00::]/8"]}, id="rfc1918-mynetworks"),
    pytest.param({"postfix_mynetworks": ["127.0.0.0/8", "44.0.0.0/8", "[2001:db8::]/32"]}, id="one-public-slash-8"),
    pytest.param({"postfix_relay_restrictions": ["check_client_access hash:/etc/postfix/clients", "permit_mynetworks",
                                                 BLOCK],
                  "postfix_maps": table("clients", "hash", ("192.0.2.7", "OK"), ("mail.partner.example", "OK"),
                                        ("198.51.100", "OK"), ("spam.example", "REJECT"))},
                 id="specific-clients-ok-in-a-hash-table"),
    pytest.param({"postfix_relay_restrictions": ["permit_tls_clientcerts", BLOCK],
                  "postfix_main_extra": {"relay_clientcerts": "hash:/etc/postfix/certs"},
                  "postfix_maps": table("certs", "hash", ("E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:"
                                                          "9B:93:4C:A4:95:99:1B:78:52:B8:55", "laptop"))},
                 id="tls-clientcerts-with-relay-clientcerts"),
    pytest.param({"postfix_relay_restrictions": ["check_policy_service inet:127.0.0.1:10040",
                                                 "check_policy_service unix:private/policy", BLOCK]},
                 id="policy-services-on-this-host"),
    pytest.param({"postfix_relay_restrictions": ["check_policy_service inet:192.0.2.5:9998", BLOCK],
                  "postfix_trusted_policy_services": ["inet:192.0.2.5:9998"]}, id="trusted-remote-policy-service"),
    pytest.param({"postfix_relay_restrictions": ["permit_mynetworks", BLOCK,
                                                 "check_policy_service inet:192.0.2.5:9998"]},
                 id="remote-policy-service-after-the-blocker"),
    pytest.param({"postfix_relay_domains": ["example.org", ".example.org", "$mydestination"]}, id="relay-domains"),
    pytest.param({"postfix_relay_restrictions": ["check_reverse_client_hostname_access hash:/etc/postfix/c", BLOCK],
                  "postfix_maps": table("c", "hash", ("unknown", "OK"))}, id="reverse-name-ok-is-refused-by-smtpd"),
    pytest.param({"postfix_relay_restrictions": ["check_sasl_access static:OK", BLOCK]}, id="sasl-access"),
    pytest.param({"postfix_relay_restrictions": ["permit_mx_backup", BLOCK],
                  "postfix_main_extra": {"permit_mx_backup_networks": "192.0.2.0/24"}}, id="mx-backup-with-networks"),
    pytest.param({"postfix_relay_restrictions": ["check_recipient_access hash:/etc/postfix/rcpt", BLOCK],
                  "postfix_maps": table("rcpt", "hash", ("example.org", "OK"), ("user@example.net", "OK"))},
                 id="recipient-domains-ok"),
    pytest.param({"postfix_relay_restrictions": ["check_client_access pcre:/etc/postfix/c", "check_recipient_access "
                                                 "regexp:/etc/postfix/r", BLOCK],
                  "postfix_maps": table("c", "pcre", ("/\\.example\\.org$/", "OK"), ("/^192\\.0\\.2\\./", "OK"),
                                        ("/^44\\./", "OK")) + table("r", "regexp", ("/@(.*\\.)?example\\.org$/", "OK"))},
                 id="anchored-patterns-ok"),
]  # fmt: skip


@pytest.mark.parametrize("variables", LEGITIMATE)
def test_legitimate_relay_settings_pass(variables):
    postfix_role(**variables)()


def test_a_trusted_remote_policy_service_goes_into_the_fragment():
    settings = _postfix_settings(
        postfix_relay_restrictions=["check_policy_service inet:192.0.2.5:9998", BLOCK],
        postfix_trusted_policy_services=["inet:192.0.2.5:9998"],
        postfix_tls_enabled=False,
        postfix_submission_enabled=False,
        postfix_smtps_enabled=False,
    )
    fragment = postfix_role_fragment(settings)
    assert fragment["trusted_policy_services"] == ["inet:192.0.2.5:9998"]
    parsed = parse_fragment("10-postfix.json", json.dumps(fragment))
    assert trusted_policy_services([("10-postfix.json", parsed), ("20-x.json", {})]) == ["inet:192.0.2.5:9998"]
    assert "trusted_policy_services" not in postfix_role_fragment(
        _postfix_settings(postfix_tls_enabled=False, postfix_submission_enabled=False, postfix_smtps_enabled=False)
    )


def test_a_fragment_trusted_policy_service_must_be_a_list_of_strings():
    with pytest.raises(FragmentError, match="'trusted_policy_services' must be a list of strings"):
        parse_fragment("50-x.json", json.dumps({"trusted_policy_services": "inet:192.0.2.5:9998"}))


def test_the_host_accepts_a_trusted_remote_policy_service():
    main = {"smtpd_relay_restrictions": ["check_policy_service inet:192.0.2.5:9998", BLOCK]}
    supported = SUPPORTED.split()
    with pytest.raises(PostfixValidationError, match="lets a policy service on another host decide"):
        validate_main(main, supported)
    assert validate_main(main, supported, trusted_policy_services=["inet:192.0.2.5:9998"]) == [
        "'check_policy_service inet:192.0.2.5:9998' on another host decides about relaying (trusted_policy_services)"
    ]
    findings = validate_main(main, supported, allow_open_relay=True)
    assert findings[0].startswith("allowed open relay (allow_open_relay): main.cf would relay mail for anyone")


def test_allow_open_relay_still_opens_everything():
    postfix_role(postfix_relay_domains=["com"], postfix_mynetworks=["0.0.0.0/1"], postfix_allow_open_relay=True)()


@pytest.mark.parametrize(
    ("entry", "table_text"),
    [
        # smtpd's forbid_allowlist(): OK from these checks is answered "451 4.3.5 Server configuration error".
        ("check_reverse_client_hostname_access hash:/t", "unknown OK\n"),
        ("check_client_mx_access hash:/t", "192.0.2.1 OK\n"),
        ("check_helo_a_access cidr:/t", "0.0.0.0/0 OK\n"),
        ("check_recipient_ns_access hash:/t", "ns.example.net OK\n"),
        # The client's address is not claimed: a network of one site is like mynetworks.
        ("check_client_access cidr:/t", "192.0.2.0/24 OK\n10.0.0.0/8 OK\n"),
        ("check_client_access hash:/t", "unknown REJECT\ncom DUNNO\n"),
    ],
)
def test_checks_that_do_not_permit_an_outsider(entry, table_text):
    main = {"smtpd_relay_restrictions": [entry, BLOCK]}
    assert relay_findings(main, read_table=lambda _type, name: table_text if name == "/t" else None) == []


def test_the_judge_reads_mynetworks_tables_on_the_host(tmp_path: Path):
    networks = tmp_path / "trusted"
    networks.write_text("0.0.0.0/1 x\n128.0.0.0/1 x\n")
    judge = RelayJudge({"mynetworks": f"cidr:{networks}"}, lambda _type, name: Path(name).read_text())
    assert judge.trusted.endswith("covers 221 /8s worth of public IPv4 addresses (at most one /8 may be trusted), "
                                  "so clients anywhere are trusted")  # fmt: skip


def _molecule_cases():
    path = Path(__file__).resolve().parents[3] / "molecule" / "badinput" / "cases" / "relay.yml"
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("case", _molecule_cases(), ids=lambda case: case["id"])
def test_the_molecule_cases_fail_with_the_text_they_expect(case):
    """molecule/badinput/cases/relay.yml: each case fails in the role's filter, naming the variable."""
    assert case["role"] == "postfix" and case["id"].startswith("relay-")
    assert all(name.startswith("postfix_") for name in case["vars"])
    with pytest.raises(AnsibleFilterError) as excinfo:
        postfix_role(**case["vars"])()
    assert case["expect"] in str(excinfo.value)
    assert any(name in case["expect"] for name in case["vars"])


def test_a_large_public_network_in_mynetworks_is_allowed_with_a_warning_on_the_host():
    main = {"mynetworks": ["127.0.0.0/8", "44.0.0.0/8"], "smtpd_relay_restrictions": ["permit_mynetworks", BLOCK]}
    assert validate_main(main, SUPPORTED.split()) == [
        "parameter mynetworks: 127.0.0.0/8, 44.0.0.0/8 trusts 16777216 public IPv4 and 0 global IPv6 addresses "
        "(more than a /16 of IPv4 or a /32 of IPv6); make sure they are all yours"
    ]
    main["mynetworks"] = ["127.0.0.0/8", "10.0.0.0/8", "192.0.2.0/24"]
    assert validate_main(main, SUPPORTED.split()) == []


def test_pattern_files_in_mynetworks_and_relay_domains_are_read_on_the_host(tmp_path: Path):
    (tmp_path / "networks").write_text("# trusted\n127.0.0.0/8\n0.0.0.0/2 # office\n")
    (tmp_path / "domains").write_text("example.org\n.net\n")

    def read(_type, name):
        return Path(name).read_text()

    judge = RelayJudge({"mynetworks": f"{tmp_path}/networks", "relay_domains": f"{tmp_path}/domains"}, read)
    assert judge.trusted == (
        f"parameter mynetworks: {tmp_path}/networks covers 62 /8s worth of public IPv4 addresses (at most one /8 may "
        "be trusted), so clients anywhere are trusted"
    )
    assert judge.relay_domains == (
        f"parameter relay_domains: {tmp_path}/domains lists '.net', a whole top-level domain, so this server relays "
        "mail from anyone to every domain under it"
    )
    (tmp_path / "networks").write_text("0.0.0.0/1\n128.0.0.0/1\n")
    assert RelayJudge({"mynetworks": f"{tmp_path}/networks"}, read).trusted == (
        f"parameter mynetworks: {tmp_path}/networks covers every IPv4 address, so every client is trusted"
    )
    assert RelayJudge({"mynetworks": "/missing", "relay_domains": "/missing"}, lambda *_a: None).trusted is None
