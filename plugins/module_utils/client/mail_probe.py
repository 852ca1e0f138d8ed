# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backend of the mail_probe module: a live mail server checked end to end, the way clients see it.

Only the standard library is used (smtplib, imaplib, poplib, ssl, socket), so the module runs on
the controller and on any Debian host it is delegated to. Every check adds one entry to the
report: ``{"ok": bool, "detail": str, ...}``; a failing check never stops the others, except the
checks that cannot run without it (no TLS check without a greeting).

The checks, by name (``<service>`` is one of :data:`SERVICES`):

- ``<service>_banner``: the greeting (220 for SMTP, ``* OK`` for IMAP, ``+OK`` for POP3);
- ``<service>_tls``: STARTTLS (STLS) offered and negotiated, or the implicit TLS handshake, with the
  protocol and cipher;
- ``<service>_certificate``: the names, issuer and expiry of the server's certificate, whether its
  names match ``tls_name``, and whether it was verified (only with a ``ca_file``);
- ``<service>_auth``: no plaintext authentication offered before TLS, and (on the mail submission
  and mailbox services) authentication offered after it;
- ``<service>_login``: the given credentials are accepted (not on port 25, which is for MTAs);
- ``relay_refused``: RCPT to an outside domain from an unauthenticated session on port 25 is
  refused (4xx/5xx; the session is reset before DATA, so nothing is ever relayed);
- ``send`` and ``delivery``: a message with a unique Message-ID submitted with AUTH, then found
  over IMAP (and deleted again unless told not to);
- ``virus_blocked`` (with ``send_eicar``): after a delivered message, one with the EICAR test file
  attached must be refused, or must not arrive within ``eicar_wait`` seconds;
- ``port_<n>_closed``: nothing accepts connections on a port that must be closed.

Secrets are never part of the report; errors that could echo them are not copied into it.
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime
import imaplib
import ipaddress
import poplib
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.client.dkim_dns import (
    dkim_checks,
    resolv_conf_servers,
    txt_lookup,
)

#: service -> (protocol, default port, how TLS starts)
SERVICES: dict[str, tuple[str, int, str]] = {
    "smtp": ("smtp", 25, "starttls"),
    "submission": ("smtp", 587, "starttls"),
    "smtps": ("smtp", 465, "implicit"),
    "imap": ("imap", 143, "starttls"),
    "imaps": ("imap", 993, "implicit"),
    "pop3": ("pop3", 110, "starttls"),
    "pop3s": ("pop3", 995, "implicit"),
}
#: Services on which clients log in (SMTP AUTH, IMAP LOGIN, POP3 USER/PASS); port 25 is for MTAs.
LOGIN_SERVICES = ("submission", "smtps", "imap", "imaps", "pop3", "pop3s")
#: SASL mechanisms that send the password as it is.
PLAINTEXT_MECHANISMS = ("PLAIN", "LOGIN")

DEFAULTS: dict[str, Any] = {
    "tls_name": None,
    "services": ["smtp", "submission", "imaps"],
    "ports": {},
    "user": None,
    "password": None,
    "send": False,
    "sender": None,
    "recipient": None,
    "read_user": None,
    "read_password": None,
    "send_via": "submission",
    "read_via": "imaps",
    "delivery_timeout": 60.0,
    "delete_sent": True,
    "relay_check": True,
    "relay_sender": "mail-probe@example.org",
    "relay_recipient": "mail-probe@example.com",
    "send_eicar": False,
    "eicar_wait": 15.0,
    "closed_ports": [],
    "ca_file": None,
    "tls_verify": True,
    "insecure_login": False,
    "cert_min_days": 14,
    "helo": "mail-probe.invalid",
    "timeout": 10.0,
    "dkim_records": [],
    "dns_servers": [],
    "dns_timeout": 3.0,
}


class MailProbeError(Exception):
    """The options cannot describe a probe (for example an unknown service or a bad port)."""


class CheckFailed(Exception):
    """One check failed; the message is its detail."""


# -- certificates: the few X.509 fields the report needs, read from DER with no library ---------------------

_OID_CN = "2.5.4.3"
_OID_SAN = "2.5.29.17"
_STRING_TAGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be", 0x1C: "utf-32-be"}


def _tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """One DER element at *pos*: its tag, its contents and the position after it."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER element")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER element")
    return tag, data[pos : pos + length], pos + length


def _children(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        tag, value, pos = _tlv(data, pos)
        out.append((tag, value))
    return out


def _oid(value: bytes) -> str:
    if not value:
        raise ValueError("empty OID")
    parts = [min(value[0] // 40, 2), value[0] - 40 * min(value[0] // 40, 2)]
    number = 0
    for byte in value[1:]:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    return ".".join(str(part) for part in parts)


def _string(tag: int, value: bytes) -> str:
    return value.decode(_STRING_TAGS.get(tag, "latin-1"), errors="replace")


def _name_cn(name: bytes) -> str | None:
    """The first commonName of an X.501 Name."""
    for _set_tag, rdn in _children(name):
        for _seq_tag, attribute in _children(rdn):
            parts = _children(attribute)
            if len(parts) == 2 and parts[0][0] == 0x06 and _oid(parts[0][1]) == _OID_CN:
                return _string(*parts[1])
    return None


def _time(tag: int, value: bytes) -> datetime.datetime:
    text = value.decode("ascii")
    if tag == 0x17:  # UTCTime, YYMMDDHHMMSSZ
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    return datetime.datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=datetime.UTC)


def parse_certificate(der: bytes) -> dict[str, Any]:
    """Subject CN, issuer CN, DNS and IP subject alternative names, and validity of a DER certificate."""
    try:
        (cert_tag, cert), *_rest = _children(der)
        if cert_tag != 0x30:
            raise ValueError("not a certificate")
        tbs = _children(_children(cert)[0][1])
        if tbs[0][0] == 0xA0:  # explicit version
            tbs = tbs[1:]
        issuer, validity, subject = tbs[2][1], tbs[3][1], tbs[4][1]
        not_before, not_after = (_time(tag, value) for tag, value in _children(validity))
        dns: list[str] = []
        ips: list[str] = []
        for tag, value in tbs[6:]:
            if tag != 0xA3:
                continue
            for _ext_tag, extension in _children(_children(value)[0][1]):
                parts = _children(extension)
                if _oid(parts[0][1]) != _OID_SAN:
                    continue
                for name_tag, name in _children(_children(parts[-1][1])[0][1]):
                    if name_tag == 0x82:
                        dns.append(name.decode("ascii", errors="replace"))
                    elif name_tag == 0x87 and len(name) in (4, 16):
                        ips.append(str(ipaddress.ip_address(name)))
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise CheckFailed(f"the certificate could not be read: {exc}") from None
    return {
        "subject": _name_cn(subject),
        "issuer": _name_cn(issuer),
        "dns_names": dns,
        "ip_addresses": ips,
        "not_before": not_before.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "_not_after": not_after,
    }


def name_matches(cert: dict[str, Any], name: str) -> bool:
    """Whether *name* (a host name or an address) is one of the certificate's names (RFC 6125).

    A wildcard stands for the whole leftmost label only. The subject CN counts only when the
    certificate has no subject alternative names.
    """
    wanted = name.strip().rstrip(".").lower()
    try:
        address = ipaddress.ip_address(wanted)
    except ValueError:
        address = None
    if address is not None:
        return str(address) in cert["ip_addresses"]
    names = cert["dns_names"] or ([cert["subject"]] if cert["subject"] and not cert["ip_addresses"] else [])
    for pattern in (n.lower().rstrip(".") for n in names):
        if pattern == wanted:
            return True
        if pattern.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == pattern[2:]:
            return True
    return False


# -- clients that present tls_name (SNI and verification) while connecting to host ---------------------------


class _SMTP(smtplib.SMTP):
    def __init__(self, tls_name: str, **kwargs: Any) -> None:
        self._tls_name = tls_name
        super().__init__(**kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        self._host = self._tls_name  # the name starttls() presents
        return super()._get_socket(host, port, timeout)


class _SMTP_SSL(smtplib.SMTP_SSL):
    def __init__(self, tls_name: str, **kwargs: Any) -> None:
        self._tls_name = tls_name
        super().__init__(**kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        self._host = self._tls_name
        return super()._get_socket(host, port, timeout)


class _IMAP4(imaplib.IMAP4):
    def __init__(self, host: str, port: int, timeout: float, tls_name: str) -> None:
        super().__init__(host, port, timeout)
        self.host = tls_name  # the name starttls() presents


class _IMAP4_SSL(imaplib.IMAP4_SSL):
    def __init__(self, host: str, port: int, timeout: float, tls_name: str, context: ssl.SSLContext) -> None:
        self._tls_name = tls_name
        super().__init__(host, port, ssl_context=context, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = imaplib.IMAP4._create_socket(self, timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self._tls_name)


class _POP3(poplib.POP3):
    def __init__(self, host: str, port: int, timeout: float, tls_name: str) -> None:
        super().__init__(host, port, timeout)
        self.host = tls_name


class _POP3_SSL(poplib.POP3_SSL):
    def __init__(self, host: str, port: int, timeout: float, tls_name: str, context: ssl.SSLContext) -> None:
        self._tls_name = tls_name
        super().__init__(host, port, timeout=timeout, context=context)

    def _create_socket(self, timeout: float) -> socket.socket:
        sock = poplib.POP3._create_socket(self, timeout)
        return self.context.wrap_socket(sock, server_hostname=self._tls_name)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _reply(code: int, text: Any) -> str:
    return f"{code} {_text(text)}".replace("\n", " ").strip()


def _error(exc: BaseException) -> str:
    """A short description of a client error (never with arguments that could carry a password)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not verified: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


class MailProbe:
    """Run the checks that *params* ask for and return the report.

    *params* are the module's options (missing ones take :data:`DEFAULTS`). *now* gives the
    current UTC time (certificate expiry), *clock* and *sleep* drive the delivery poll, and
    *message_id* makes the unique Message-ID of the sent message.
    """

    def __init__(
        self,
        params: dict[str, Any],
        *,
        check_mode: bool = False,
        now: Callable[[], datetime.datetime] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
        message_id: Callable[[], str] | None = None,
    ) -> None:
        self.p = {**DEFAULTS, **{key: value for key, value in params.items() if value is not None}}
        self.check_mode = check_mode
        self.now = now or (lambda: datetime.datetime.now(datetime.UTC))
        self.clock = clock
        self.sleep = sleep
        self.message_id = message_id or (lambda: f"<mail-probe.{uuid.uuid4().hex}@{self.p['helo']}>")
        self.host: str = self.p["host"]
        self.tls_name: str = self.p["tls_name"] or self.host
        self.checks: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}
        self._validate()

    # -- options ------------------------------------------------------------------------------------------

    def _validate(self) -> None:
        if not self.host:
            raise MailProbeError("host: a host name or address is required")
        unknown = [s for s in self.p["services"] if s not in SERVICES]
        if unknown:
            raise MailProbeError(f"services: unknown {', '.join(unknown)} (known: {', '.join(SERVICES)})")
        for key, port in self.p["ports"].items():
            if key not in SERVICES:
                raise MailProbeError(f"ports: unknown service {key} (known: {', '.join(SERVICES)})")
            if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
                raise MailProbeError(f"ports.{key}: {port!r} is not a TCP port")
        for index, record in enumerate(self.p["dkim_records"]):
            if not isinstance(record, dict) or not record.get("name") or not record.get("value"):
                raise MailProbeError(f"dkim_records[{index}]: must be a mapping with name and value, got {record!r}")
        for port in self.p["closed_ports"]:
            if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
                raise MailProbeError(f"closed_ports: {port!r} is not a TCP port")
        if self.p["send"]:
            if not (self.p["user"] and self.p["password"]):
                raise MailProbeError("send: user and password are required to submit a message with AUTH")
            if self.p["send_via"] not in ("submission", "smtps"):
                raise MailProbeError("send_via: must be submission or smtps")
            if self.p["read_via"] not in ("imap", "imaps"):
                raise MailProbeError("read_via: must be imap or imaps")
            for key in ("sender", "recipient"):
                if "@" not in self.address(key):
                    raise MailProbeError(
                        f"{key}: {self.address(key)!r} is not a mail address (give {key}, or a user with @)"
                    )
        if self.p["send_eicar"] and not self.p["send"]:
            raise MailProbeError("send_eicar: needs send (the test virus goes the same way as the test message)")
        if (self.p["user"] is None) != (self.p["password"] is None):
            raise MailProbeError("user and password: give both or neither")
        if (
            (self.p["password"] or self.p["read_password"])
            and not self.p["tls_verify"]
            and not self.p["insecure_login"]
        ):
            raise MailProbeError(
                "password: not sent over TLS whose certificate is not verified (tls_verify: false); verify it "
                "(tls_verify: true, with ca_file for a private CA), or set insecure_login: true to send it anyway"
            )

    def port(self, service: str) -> int:
        return int(self.p["ports"].get(service) or SERVICES[service][1])

    def address(self, key: str) -> str:
        """The sender (default the user) or the recipient (default the sender)."""
        if key == "sender":
            return self.p["sender"] or self.p["user"] or ""
        return self.p["recipient"] or self.address("sender")

    @property
    def insecure(self) -> bool:
        """Whether passwords go over TLS whose certificate was not verified (tls_verify off, insecure_login on)."""
        return not self.p["tls_verify"] and bool(self.p["insecure_login"])

    def trust(self) -> str:
        """How the server's certificate is trusted, for the report."""
        if not self.p["tls_verify"]:
            return "not verified (tls_verify: false)"
        return f"verified with {self.p['ca_file']}" if self.p["ca_file"] else "verified with the system's trust store"

    def password_guard(self, sock: Any) -> None:
        """Raise CheckFailed unless a password may be sent on *sock*: TLS, and a verified certificate or insecure_login."""
        if not isinstance(sock, ssl.SSLSocket):
            raise CheckFailed("not sent: the connection is not encrypted")
        if not self.p["tls_verify"] and not self.insecure:
            raise CheckFailed("not sent: the certificate was not verified (tls_verify: false, insecure_login: false)")

    def _login_note(self) -> str:
        return " (certificate NOT verified: insecure_login)" if self.insecure else ""

    def context(self) -> ssl.SSLContext:
        """Verify the chain and tls_name against ca_file, or the system's trust store; with tls_verify off, accept any."""
        if self.p["tls_verify"]:
            return ssl.create_default_context(cafile=self.p["ca_file"] or None)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    # -- the report -----------------------------------------------------------------------------------------

    def add(self, name: str, ok: bool, detail: str, **data: Any) -> bool:
        self.checks[name] = {"ok": bool(ok), "detail": detail, **data}
        return bool(ok)

    def run(self) -> dict[str, Any]:
        for service in self.p["services"]:
            getattr(self, f"_probe_{SERVICES[service][0]}")(service)
        if self.p["relay_check"]:
            self._relay()
        if self.p["send"]:
            if self.check_mode:
                self.skipped["send"] = "check mode: no message is sent"
                self.skipped["delivery"] = "check mode: no message is sent"
                if self.p["send_eicar"]:
                    self.skipped["virus_blocked"] = "check mode: no message is sent"
            else:
                self._send_and_find()
        self._closed_ports(self.p["closed_ports"])
        if self.p["dkim_records"]:
            self._dkim_records()
        failed = [name for name, check in self.checks.items() if not check["ok"]]
        return {
            "host": self.host,
            "tls_name": self.tls_name,
            "tls_verified": bool(self.p["tls_verify"]),
            "tls_trust": self.trust(),
            "insecure_login": self.insecure and bool(self.p["password"] or self.p["read_password"]),
            "checks": self.checks,
            "failed_checks": failed,
            "skipped_checks": self.skipped,
            "ok": not failed,
        }

    def _dkim_records(self, lookup: Callable[[str], list[str]] | None = None) -> None:
        """Each DKIM record in DNS must carry the key in use; DNS that does not answer is not a failure."""
        if lookup is None:
            servers = list(self.p["dns_servers"]) or resolv_conf_servers()

            def lookup(name: str) -> list[str]:
                return txt_lookup(name, servers, timeout=float(self.p["dns_timeout"]))

        checks, skipped = dkim_checks(self.p["dkim_records"], lookup)
        self.checks.update(checks)
        self.skipped.update(skipped)

    # -- TLS and certificate --------------------------------------------------------------------------------

    def _tls(self, service: str, sock: Any) -> None:
        cipher = sock.cipher() or ("", "", 0)
        self.add(
            f"{service}_tls",
            True,
            f"{'STARTTLS' if SERVICES[service][2] == 'starttls' else 'implicit TLS'}: {sock.version()} {cipher[0]} ({cipher[2]} bits)",
            protocol=sock.version(),
            cipher=cipher[0],
            bits=cipher[2],
        )
        self._certificate(service, sock)

    def _certificate(self, service: str, sock: Any) -> None:
        name = f"{service}_certificate"
        verified = bool(self.p["tls_verify"])  # the handshake verified it, or it failed
        der = sock.getpeercert(binary_form=True)
        if not der:
            self.add(name, False, "the server sent no certificate", verified=False)
            return
        try:
            cert = parse_certificate(der)
        except CheckFailed as exc:
            self.add(name, False, str(exc), verified=verified)
            return
        not_after = cert.pop("_not_after")
        days = (not_after - self.now()).total_seconds() / 86400
        matches = name_matches(cert, self.tls_name)
        problems = []
        if days < 0:
            problems.append(f"expired on {cert['not_after']}")
        elif days < self.p["cert_min_days"]:
            problems.append(
                f"expires in {int(days)} days (on {cert['not_after']}), fewer than {self.p['cert_min_days']}"
            )
        if not matches:
            names = ", ".join(cert["dns_names"] + cert["ip_addresses"]) or f"CN={cert['subject']}"
            problems.append(f"{self.tls_name} is not one of its names ({names})")
        summary = (
            f"{', '.join(cert['dns_names'] + cert['ip_addresses']) or 'CN=' + str(cert['subject'])}, issued by "
            f"{cert['issuer']}, valid until {cert['not_after']} ({int(days)} days), "
            f"{self.trust()}"
        )
        self.add(
            name,
            not problems,
            "; ".join(problems) + f" ({summary})" if problems else summary,
            **cert,
            days_left=int(days),
            name_matches=matches,
            verified=verified,
        )

    # -- SMTP -----------------------------------------------------------------------------------------------

    def _smtp_open(self, service: str, record: bool = True) -> tuple[smtplib.SMTP, list[str]]:
        """Connect and EHLO, then STARTTLS and EHLO again; return the client and the AUTH offered before TLS.

        With *record*, the banner and TLS checks are recorded; a failure raises CheckFailed with its detail.
        """
        port = self.port(service)
        implicit = SERVICES[service][2] == "implicit"

        def fail(check: str, detail: str, **data: Any) -> CheckFailed:
            if record:
                self.add(f"{service}_{check}", False, detail, **data)
            return CheckFailed(f"{service}: {detail}")

        try:
            if implicit:
                client: smtplib.SMTP = _SMTP_SSL(
                    self.tls_name, local_hostname=self.p["helo"], timeout=self.p["timeout"], context=self.context()
                )
            else:
                client = _SMTP(self.tls_name, local_hostname=self.p["helo"], timeout=self.p["timeout"])
            code, banner = client.connect(self.host, port)
        except (OSError, smtplib.SMTPException) as exc:
            if implicit and isinstance(exc, ssl.SSLError):
                if record:
                    self.add(f"{service}_banner", False, f"{self.host}:{port}: no greeting, TLS failed", port=port)
                raise fail("tls", f"implicit TLS on {port}: {_error(exc)}") from None
            raise fail("banner", f"{self.host}:{port}: {_error(exc)}", port=port) from None
        if record:
            self.add(f"{service}_banner", True, _reply(code, banner), port=port, banner=_reply(code, banner))
        before: list[str] = []
        try:
            client.ehlo()
            if not implicit:
                before = client.esmtp_features.get("auth", "").upper().split()
                if not client.has_extn("starttls"):
                    raise fail("tls", f"STARTTLS is not offered on {port}")
                try:
                    client.starttls(context=self.context())
                except (OSError, smtplib.SMTPException) as exc:
                    raise fail("tls", f"STARTTLS on {port}: {_error(exc)}") from None
                try:
                    client.ehlo()
                except (OSError, smtplib.SMTPException) as exc:
                    raise fail("tls", f"EHLO after STARTTLS on {port}: {_error(exc)}") from None
        except CheckFailed:
            client.close()
            raise
        except (OSError, smtplib.SMTPException) as exc:
            client.close()
            raise fail("tls", f"{self.host}:{port}: {_error(exc)}") from None
        if record:
            self._tls(service, client.sock)
        return client, before

    def _probe_smtp(self, service: str) -> None:
        try:
            client, before = self._smtp_open(service)
        except CheckFailed:
            return
        try:
            after = client.esmtp_features.get("auth", "").upper().split()
            plain_before = [m for m in before if m in PLAINTEXT_MECHANISMS]
            if plain_before:
                self.add(
                    f"{service}_auth",
                    False,
                    f"AUTH {' '.join(before)} is offered before STARTTLS: passwords could be sent in clear",
                    before_tls=before,
                    after_tls=after,
                )
            elif service in LOGIN_SERVICES and not after:
                self.add(
                    f"{service}_auth",
                    False,
                    "AUTH is not offered after TLS: clients cannot log in (is a SASL backend enabled?)",
                    before_tls=before,
                    after_tls=after,
                )
            else:
                where = "after STARTTLS only" if SERVICES[service][2] == "starttls" else "over TLS"
                detail = f"AUTH {' '.join(after)} {where}" if after else "no AUTH offered (a port for other MTAs)"
                self.add(f"{service}_auth", True, detail, before_tls=before, after_tls=after)
            if service in LOGIN_SERVICES and self.p["user"]:
                try:
                    self.password_guard(client.sock)
                    code, text = client.login(self.p["user"], self.p["password"])
                    self.add(f"{service}_login", True, f"{self.p['user']}: {_reply(code, text)}{self._login_note()}")
                except CheckFailed as exc:
                    self.add(f"{service}_login", False, f"{self.p['user']}: {exc}")
                except (OSError, smtplib.SMTPException) as exc:
                    self.add(f"{service}_login", False, f"{self.p['user']}: {_error(exc)}")
        finally:
            self._quit(client)

    @staticmethod
    def _quit(client: Any) -> None:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()

    def _relay(self) -> None:
        port = self.port("smtp")
        name = "relay_refused"
        sender, recipient = self.p["relay_sender"], self.p["relay_recipient"]
        try:
            client = _SMTP(self.tls_name, local_hostname=self.p["helo"], timeout=self.p["timeout"])
            client.connect(self.host, port)
        except (OSError, smtplib.SMTPException) as exc:
            self.add(name, False, f"could not test relaying: {self.host}:{port}: {_error(exc)}")
            return
        try:
            client.ehlo()
            code, text = client.mail(sender)
            if code >= 400:
                self.add(
                    name,
                    True,
                    f"MAIL FROM:<{sender}> refused: {_reply(code, text)}",
                    code=code,
                    reply=_reply(code, text),
                )
                return
            code, text = client.rcpt(recipient)
            reply = _reply(code, text)
            if code >= 400:
                self.add(name, True, f"RCPT TO:<{recipient}> refused: {reply}", code=code, reply=reply)
            else:
                self.add(
                    name,
                    False,
                    f"OPEN RELAY: RCPT TO:<{recipient}> from an unauthenticated client was accepted: {reply}",
                    code=code,
                    reply=reply,
                )
            client.rset()
        except (OSError, smtplib.SMTPException) as exc:
            self.add(name, False, f"could not test relaying: {_error(exc)}")
        finally:
            self._quit(client)

    def _submit(self, message_id: str, subject: str, body: str, headers: str = "") -> tuple[int, str]:
        """Submit one message with AUTH; return the final reply (4xx/5xx included) or raise CheckFailed."""
        via = self.p["send_via"]
        sender, recipient = self.address("sender"), self.address("recipient")
        client, _before = self._smtp_open(via, record=False)
        try:
            self.password_guard(client.sock)
            client.login(self.p["user"], self.p["password"])
            code, text = client.mail(sender)
            if code >= 400:
                raise CheckFailed(f"MAIL FROM:<{sender}> refused: {_reply(code, text)}")
            code, text = client.rcpt(recipient)
            if code >= 400:
                raise CheckFailed(f"RCPT TO:<{recipient}> refused: {_reply(code, text)}")
            message = (
                f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: {subject}\r\n"
                f"Message-ID: {message_id}\r\nDate: {self.now().strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
                f"MIME-Version: 1.0\r\n{headers}"
            )
            code, text = client.data((message + body).encode())
            return code, _reply(code, text)
        except (OSError, smtplib.SMTPException) as exc:
            raise CheckFailed(f"via {via} as {self.p['user']}: {_error(exc)}") from None
        finally:
            self._quit(client)

    def _send_and_find(self) -> None:
        via = self.p["send_via"]
        message_id = self.message_id()
        sender, recipient = self.address("sender"), self.address("recipient")
        started = self.clock()
        body = (
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
            "Sent by postmaster.mailserver.mail_probe to check delivery; it is deleted when found.\r\n"
        )
        try:
            code, reply = self._submit(message_id, f"mail_probe {message_id}", body)
        except CheckFailed as exc:
            self.add("send", False, f"not sent: {exc}" if str(exc).startswith(via) else str(exc), message_id=message_id)
            return
        if code >= 400:
            self.add("send", False, f"DATA refused: {reply}", message_id=message_id, reply=reply)
            return
        self.add(
            "send", True, f"{sender} -> {recipient} via {via} with AUTH: {reply}", message_id=message_id, reply=reply
        )
        try:
            seconds = self._search(message_id, started + self.p["delivery_timeout"], started)
        except CheckFailed as exc:
            self.add("delivery", False, str(exc), message_id=message_id)
            return
        user = self.p["read_user"] or self.p["user"]
        where = f"{user}'s INBOX over {self.p['read_via']}"
        if seconds is None:
            self.add(
                "delivery",
                False,
                f"not in {where} within {self.p['delivery_timeout']:g} s "
                "(look for the Message-ID in the mail log and the queue)",
                message_id=message_id,
            )
            return
        deleted = " (deleted)" if self.p["delete_sent"] else ""
        self.add(
            "delivery", True, f"found in {where} after {seconds} s{deleted}", message_id=message_id, seconds=seconds
        )
        if self.p["send_eicar"]:
            self._eicar()

    def _eicar(self) -> None:
        """The EICAR test file as an attachment must be refused or never reach the INBOX."""
        message_id = self.message_id()
        boundary = "mail-probe-" + message_id.strip("<>").split("@", 1)[0].replace(".", "-")
        body = (
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            "The attachment is the EICAR anti-virus test file; a virus filter must stop this message.\r\n"
            f"--{boundary}\r\nContent-Type: application/octet-stream; name=eicar.txt\r\n"
            "Content-Disposition: attachment; filename=eicar.txt\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            f"{base64.b64encode(eicar()).decode()}\r\n--{boundary}--\r\n"
        )
        started = self.clock()
        try:
            code, reply = self._submit(message_id, f"mail_probe EICAR {message_id}", body)
        except CheckFailed as exc:
            self.add("virus_blocked", False, f"the test virus could not be submitted: {exc}", message_id=message_id)
            return
        if code >= 400:
            self.add("virus_blocked", True, f"refused at submission: {reply}", message_id=message_id, reply=reply)
            return
        try:
            seconds = self._search(message_id, started + self.p["eicar_wait"], started)
        except CheckFailed as exc:
            self.add("virus_blocked", False, str(exc), message_id=message_id)
            return
        if seconds is not None:
            self.add(
                "virus_blocked",
                False,
                f"the EICAR test file reached the INBOX after {seconds} s: no virus filter stopped it",
                message_id=message_id,
            )
        else:
            self.add(
                "virus_blocked",
                True,
                f"accepted ({reply}) but not delivered within {self.p['eicar_wait']:g} s: stopped by the content filter",
                message_id=message_id,
                reply=reply,
            )

    # -- IMAP -----------------------------------------------------------------------------------------------

    def _imap_open(self, service: str, record: bool = True) -> tuple[imaplib.IMAP4, list[str]]:
        port = self.port(service)
        implicit = SERVICES[service][2] == "implicit"
        add = self.add if record else (lambda *args, **kwargs: False)
        try:
            if implicit:
                client: imaplib.IMAP4 = _IMAP4_SSL(self.host, port, self.p["timeout"], self.tls_name, self.context())
            else:
                client = _IMAP4(self.host, port, self.p["timeout"], self.tls_name)
        except (OSError, imaplib.IMAP4.error) as exc:
            add(f"{service}_banner", False, f"{self.host}:{port}: {_error(exc)}", port=port)
            raise CheckFailed(f"{service} on {port}: {_error(exc)}") from None
        banner = _text(client.welcome)
        add(f"{service}_banner", banner.startswith("* OK"), banner, port=port, banner=banner)
        before = [c.upper() for c in client.capabilities]
        if implicit:
            if record:
                self._tls(service, client.sock)
            return client, []  # no phase before TLS
        if "STARTTLS" not in before:
            add(f"{service}_tls", False, f"STARTTLS is not offered on {port}")
            client.shutdown()
            raise CheckFailed(f"{service}: STARTTLS is not offered on {port}")
        try:
            client.starttls(ssl_context=self.context())
        except (OSError, imaplib.IMAP4.error) as exc:
            add(f"{service}_tls", False, f"STARTTLS on {port}: {_error(exc)}")
            client.shutdown()
            raise CheckFailed(f"{service}: STARTTLS on {port}: {_error(exc)}") from None
        if record:
            self._tls(service, client.sock)
        return client, before

    def _probe_imap(self, service: str) -> None:
        try:
            client, before = self._imap_open(service)
        except CheckFailed:
            return
        try:
            after = [c.upper() for c in client.capabilities]
            plain_before = [c for c in before if c in ("AUTH=PLAIN", "AUTH=LOGIN")]
            login_before = SERVICES[service][2] == "starttls" and "LOGINDISABLED" not in before
            auth_after = [c[5:] for c in after if c.startswith("AUTH=")]
            if plain_before or login_before:
                offered = " ".join(plain_before + ([] if "LOGINDISABLED" in before else ["LOGIN command"]))
                self.add(
                    f"{service}_auth",
                    False,
                    f"plaintext login is allowed before STARTTLS ({offered}): passwords could be sent in clear",
                    before_tls=before,
                    after_tls=after,
                )
            elif "LOGINDISABLED" in after:
                self.add(f"{service}_auth", False, "login is disabled even over TLS (LOGINDISABLED)", after_tls=after)
            else:
                where = "after STARTTLS only" if SERVICES[service][2] == "starttls" else "over TLS"
                self.add(
                    f"{service}_auth",
                    True,
                    f"login {where} (AUTH={' '.join(auth_after) or 'none, LOGIN command'})",
                    before_tls=before if SERVICES[service][2] == "starttls" else [],
                    after_tls=after,
                )
            if self.p["user"]:
                try:
                    self.password_guard(client.sock)
                    typ, data = client.login(self.p["user"], self.p["password"])
                    self.add(
                        f"{service}_login",
                        True,
                        f"{self.p['user']}: {typ} {_text(data[0] if data else '')}{self._login_note()}",
                    )
                except CheckFailed as exc:
                    self.add(f"{service}_login", False, f"{self.p['user']}: {exc}")
                except (OSError, imaplib.IMAP4.error) as exc:
                    self.add(f"{service}_login", False, f"{self.p['user']}: {_imap_error(exc)}")
        finally:
            _imap_logout(client)

    def _search(self, message_id: str, until: float, started: float) -> float | None:
        """Poll the recipient's INBOX for *message_id* until *until*; return the seconds it took, or None.

        A found message is deleted when delete_sent is set. CheckFailed says why the INBOX could not be read.
        """
        via = self.p["read_via"]
        user = self.p["read_user"] or self.p["user"]
        password = self.p["read_password"] or self.p["password"]
        try:
            client, _before = self._imap_open(via, record=False)
        except CheckFailed as exc:
            raise CheckFailed(f"the mailbox could not be read: {exc}") from None
        try:
            try:
                self.password_guard(client.sock)
                client.login(user, password)
            except imaplib.IMAP4.error as exc:
                raise CheckFailed(f"{via} login as {user}: {_imap_error(exc)}") from None
            while True:
                client.select("INBOX")
                typ, data = client.search(None, "HEADER", "Message-ID", f'"{message_id}"')
                found = data[0].split() if typ == "OK" and data and data[0] else []
                if found:
                    seconds = round(self.clock() - started, 1)
                    if self.p["delete_sent"]:
                        for number in found:
                            client.store(number, "+FLAGS", "\\Deleted")
                        client.expunge()
                    return seconds
                if self.clock() >= until:
                    return None
                self.sleep(1)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise CheckFailed(f"reading {user}'s INBOX over {via}: {_imap_error(exc)}") from None
        finally:
            _imap_logout(client)

    # -- POP3 -----------------------------------------------------------------------------------------------

    def _probe_pop3(self, service: str) -> None:
        port = self.port(service)
        implicit = SERVICES[service][2] == "implicit"
        try:
            if implicit:
                client: poplib.POP3 = _POP3_SSL(self.host, port, self.p["timeout"], self.tls_name, self.context())
            else:
                client = _POP3(self.host, port, self.p["timeout"], self.tls_name)
        except (OSError, poplib.error_proto) as exc:
            self.add(f"{service}_banner", False, f"{self.host}:{port}: {_error(exc)}", port=port)
            return
        try:
            banner = _text(client.getwelcome())
            self.add(f"{service}_banner", banner.startswith("+OK"), banner, port=port, banner=banner)
            before = _pop_capa(client)
            if not implicit:
                if "STLS" not in before:
                    self.add(f"{service}_tls", False, f"STLS is not offered on {port}")
                    return
                try:
                    client.stls(context=self.context())
                except (OSError, poplib.error_proto) as exc:
                    self.add(f"{service}_tls", False, f"STLS on {port}: {_error(exc)}")
                    return
            self._tls(service, client.sock)
            after = _pop_capa(client) if not implicit else before
            plain_before = not implicit and (
                "USER" in before or any(m in PLAINTEXT_MECHANISMS for m in before.get("SASL", []))
            )
            shown = {key: " ".join(value) for key, value in before.items()}
            if plain_before:
                self.add(
                    f"{service}_auth",
                    False,
                    "USER or SASL PLAIN/LOGIN is offered before STLS: passwords could be sent in clear",
                    before_tls=shown,
                )
            elif "USER" not in after and not after.get("SASL"):
                self.add(f"{service}_auth", False, "no login is offered over TLS (neither USER nor SASL)")
            else:
                where = "after STLS only" if not implicit else "over TLS"
                mechanisms = " ".join(after.get("SASL", []))
                self.add(f"{service}_auth", True, f"login {where} (USER{', SASL ' + mechanisms if mechanisms else ''})")
            if self.p["user"]:
                try:
                    self.password_guard(client.sock)
                    client.user(self.p["user"])
                    reply = _text(client.pass_(self.p["password"]))
                    self.add(f"{service}_login", True, f"{self.p['user']}: {reply}{self._login_note()}")
                except CheckFailed as exc:
                    self.add(f"{service}_login", False, f"{self.p['user']}: {exc}")
                except (OSError, poplib.error_proto) as exc:
                    self.add(f"{service}_login", False, f"{self.p['user']}: {_text(exc.args[0]) if exc.args else exc}")
        finally:
            try:
                client.quit()
            except (OSError, poplib.error_proto):
                client.close()

    # -- closed ports ---------------------------------------------------------------------------------------

    def _closed_ports(self, ports: Sequence[int]) -> None:
        """Try every port at once (a filtered port costs the whole timeout), and record them in order."""
        timeout = min(self.p["timeout"], 3.0)
        if not ports:
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(ports), 16)) as pool:
            answers = list(pool.map(lambda port: self._connect(port, timeout), ports))
        for port, (answered, why) in zip(ports, answers, strict=True):
            if answered:
                self.add(
                    f"port_{port}_closed",
                    False,
                    f"{port} accepts connections from here but should be closed",
                    port=port,
                )
            else:
                self.add(f"port_{port}_closed", True, f"{port}: {why}", port=port)

    def _connect(self, port: int, timeout: float) -> tuple[bool, str]:
        try:
            with socket.create_connection((self.host, port), timeout=timeout):
                return True, "connected"
        except ConnectionRefusedError:
            return False, "connection refused"
        except TimeoutError:
            return False, f"no answer within {timeout:g} s (filtered)"
        except OSError as exc:
            return False, _error(exc)


def eicar() -> bytes:
    """The 68-byte EICAR anti-virus test file, put together here so that this source file is not flagged itself."""
    return ("X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS" + "-TEST-FILE!$H+H*").encode()


def _imap_error(exc: BaseException) -> str:
    # imaplib's errors carry the server's reply (e.g. "b'[AUTHENTICATIONFAILED] ...'"), never the password.
    if isinstance(exc, imaplib.IMAP4.error) and exc.args:
        text = _text(exc.args[0])
        return text[2:-1] if text.startswith(("b'", 'b"')) else text
    return _error(exc)


def _imap_logout(client: imaplib.IMAP4) -> None:
    try:
        client.logout()
    except (OSError, imaplib.IMAP4.error):
        client.shutdown()


def _pop_capa(client: poplib.POP3) -> dict[str, list[str]]:
    try:
        return {key.upper(): [v.upper() for v in value] for key, value in client.capa().items()}
    except poplib.error_proto:
        return {}


def failure_message(result: dict[str, Any], names: Sequence[str] | None = None) -> str:
    """``N of M checks failed: name: detail; ...`` for the module's ``msg``."""
    failed = list(names if names is not None else result["failed_checks"])
    parts = [f"{name}: {result['checks'][name]['detail']}" for name in failed]
    return f"{len(failed)} of {len(result['checks'])} checks failed on {result['host']}: " + "; ".join(parts)
