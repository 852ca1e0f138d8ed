# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The verify role's DKIM record check: a real DNS exchange with a responder on loopback, and the verdicts."""

from __future__ import annotations

import socket
import struct
import threading

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.dkim_dns import (
    DnsNoAnswer,
    build_query,
    dkim_checks,
    parse_answer,
    resolv_conf_servers,
    tags,
    txt_lookup,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_dns import mail_dns, txt_strings
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_probe import MailProbe, MailProbeError

KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "A" * 300 + "QIDAQAB"
OTHER = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "B" * 300 + "QIDAQAB"


def answer(query: bytes, rcode: int, strings_list: list[list[str]], truncated: bool = False) -> bytes:
    """A DNS answer to *query* with one TXT record per entry of *strings_list* (the name compressed)."""
    qid = struct.unpack(">H", query[:2])[0]
    end = query.index(b"\0", 12) + 5
    flags = 0x8180 | rcode | (0x0200 if truncated else 0)
    out = struct.pack(">HHHHHH", qid, flags, 1, len(strings_list), 0, 0) + query[12:end]
    for strings in strings_list:
        rdata = b"".join(bytes([len(s.encode())]) + s.encode() for s in strings)
        out += b"\xc0\x0c" + struct.pack(">HHIH", 16, 1, 300, len(rdata)) + rdata
    return out


class Responder:
    """A UDP (and TCP) DNS responder on 127.0.0.1 answering from a dict of name -> list of string lists."""

    def __init__(self, zone, rcode=0, truncate=False):
        self.zone, self.rcode, self.truncate = zone, rcode, truncate
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(1)
        self.asked: list[str] = []
        threading.Thread(target=self.serve_udp, daemon=True).start()
        threading.Thread(target=self.serve_tcp, daemon=True).start()

    def name(self, query):
        labels, offset = [], 12
        while query[offset]:
            labels.append(query[offset + 1 : offset + 1 + query[offset]].decode())
            offset += 1 + query[offset]
        return ".".join(labels)

    def reply(self, query, tcp):
        name = self.name(query)
        self.asked.append(("tcp " if tcp else "udp ") + name)
        records = self.zone.get(name)
        rcode = self.rcode if self.rcode else (0 if records is not None else 3)
        return answer(query, rcode, [] if self.truncate and not tcp else records or [], self.truncate and not tcp)

    def serve_udp(self):
        while True:
            try:
                query, peer = self.udp.recvfrom(4096)
            except OSError:
                return
            self.udp.sendto(self.reply(query, False), peer)

    def serve_tcp(self):
        while True:
            try:
                conn, _peer = self.tcp.accept()
            except OSError:
                return
            with conn:
                size = struct.unpack(">H", conn.recv(2))[0]
                data = self.reply(conn.recv(size), True)
                conn.sendall(struct.pack(">H", len(data)) + data)

    def close(self):
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def zone():
    responders = []

    def make(records, **options):
        responder = Responder(records, **options)
        responders.append(responder)
        return responder

    yield make
    for responder in responders:
        responder.close()


def record(public=KEY):
    return f"v=DKIM1; k=rsa; p={public}"


def test_lookup_joins_the_strings_of_a_long_record(zone):
    dns = zone({"mail._domainkey.example.org": [txt_strings(record())]})
    assert txt_lookup("mail._domainkey.example.org.", ["127.0.0.1"], port=dns.port) == [record()]
    assert txt_lookup("nothing.example.org", ["127.0.0.1"], port=dns.port) == []


def test_a_truncated_answer_is_asked_again_over_tcp(zone):
    dns = zone({"mail._domainkey.example.org": [txt_strings(record())]}, truncate=True)
    assert txt_lookup("mail._domainkey.example.org", ["127.0.0.1"], port=dns.port) == [record()]
    assert dns.asked == ["udp mail._domainkey.example.org", "tcp mail._domainkey.example.org"]


def test_servfail_and_silence_are_no_answer(zone):
    dns = zone({}, rcode=2)
    with pytest.raises(DnsNoAnswer, match="rcode 2"):
        txt_lookup("mail._domainkey.example.org", ["127.0.0.1"], port=dns.port)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(DnsNoAnswer, match=r"127\.0\.0\.1"):
            txt_lookup("x.example.org", ["127.0.0.1"], timeout=0.2, port=silent.getsockname()[1])
    finally:
        silent.close()
    with pytest.raises(DnsNoAnswer, match="no DNS server"):
        txt_lookup("x.example.org", [])


def test_parse_answer_refuses_another_query_id():
    query = build_query("a.example.org", 7)
    with pytest.raises(ValueError, match="another query"):
        parse_answer(answer(query, 0, []), 8)


def test_tags_ignore_whitespace_in_values():
    assert tags("v=DKIM1; k=rsa;\tp=AB CD\n EF")["p"] == "ABCDEF"


def expected(state="active", public=KEY, selector="mail"):
    keys = [{"domain": "example.org", "selector": selector, "state": state, "key_type": "rsa", "public": public}]
    return mail_dns(["example.org"], mx_host="mx.example.org", dkim_keys=keys)[0]["dkim"]


def test_verdicts():
    published = {"mail._domainkey.example.org": [record(), "v=spf1 -all"]}

    def lookup(name):
        return published.get(name, [])

    checks, skipped = dkim_checks(expected(), lookup)
    assert checks["dkim mail._domainkey.example.org"]["ok"] is True and skipped == {}
    checks, _skipped = dkim_checks(expected(public=OTHER), lookup)
    bad = checks["dkim mail._domainkey.example.org"]
    assert bad["ok"] is False and "DNS publishes another key" in bad["detail"] and "active key in use" in bad["detail"]
    checks, _skipped = dkim_checks(expected(selector="next"), lookup)
    assert checks["dkim next._domainkey.example.org"]["ok"] is False
    assert "no DKIM record in DNS for the active selector" in checks["dkim next._domainkey.example.org"]["detail"]
    checks, _skipped = dkim_checks(expected(state="published", selector="next"), lookup)
    assert checks["dkim next._domainkey.example.org"]["ok"] is True


def test_no_answer_is_skipped_not_failed():
    def lookup(name):
        raise DnsNoAnswer("127.0.0.1: timed out")

    checks, skipped = dkim_checks(expected(), lookup)
    assert checks == {}
    assert skipped == {"dkim mail._domainkey.example.org": "DNS did not answer (127.0.0.1: timed out)"}


def test_mail_probe_runs_the_check_against_dns(zone):
    dns = zone({"mail._domainkey.example.org": [txt_strings(record(OTHER))]})
    probe = MailProbe({"host": "127.0.0.1", "services": [], "relay_check": False, "dkim_records": expected()})
    lookups = []

    def lookup(name):
        lookups.append(name)
        return txt_lookup(name, ["127.0.0.1"], port=dns.port)

    probe._dkim_records(lookup)
    assert probe.checks["dkim mail._domainkey.example.org"]["ok"] is False
    assert lookups == ["mail._domainkey.example.org"]
    with pytest.raises(MailProbeError, match=r"dkim_records\[0\]"):
        MailProbe({"host": "127.0.0.1", "dkim_records": [{"name": "x"}]})


def test_resolv_conf_servers(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example.org\nnameserver 192.0.2.53\nnameserver ::1\n")
    assert resolv_conf_servers(str(conf)) == ["192.0.2.53", "::1"]
    assert resolv_conf_servers(str(tmp_path / "missing")) == []
