# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fake mail server on loopback for the mail_probe tests: SMTP, IMAP and POP3 in threads.

The fixtures are registered by tests/unit/plugins/conftest.py. ``fake_mail`` starts one listener per service (smtp, submission, smtps, imap, imaps, pop3,
pop3s) on free loopback ports, sharing one mailbox, with a certificate for
``mail.example.test`` and 127.0.0.1 made by ``cryptography``. Its ``behaviour`` dict switches
faults on (AUTH before TLS, no STARTTLS, an open relay, ...); ``ports`` maps each service to
its port, as the module's ``ports`` option takes them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import socketserver
import ssl
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_probe import eicar
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER, PASSWORD = "alice@example.test", "Alice-Secret-1"
LOCAL_DOMAINS = ("example.test",)


def make_certificate(directory: Path, name: str = "mail.example.test", days: int = 90) -> tuple[Path, Path]:
    """A self-signed certificate for *name* and 127.0.0.1 (so it is its own CA file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.tls = False
        self.authenticated = False
        if self.server.implicit:
            self.starttls()

    def starttls(self) -> None:
        self.connection = self.server.fake.tls.wrap_socket(self.request, server_side=True)
        self.rfile = self.connection.makefile("rb")
        self.tls = True

    def send(self, *lines: str) -> None:
        self.connection.sendall("".join(f"{line}\r\n" for line in lines).encode())

    def lines(self):
        while True:
            raw = self.rfile.readline(65536)
            if not raw:
                return
            self.server.fake.transcript.append((self.server.service, raw.decode(errors="replace").rstrip("\r\n")))
            yield raw.decode(errors="replace").rstrip("\r\n")

    def handle(self) -> None:
        with contextlib.suppress(OSError):  # ssl.SSLError is an OSError
            getattr(self, f"handle_{self.server.protocol}")()

    @property
    def behaviour(self) -> dict[str, Any]:
        return self.server.fake.behaviour

    def login_ok(self, user: str, password: str) -> bool:
        return user == USER and password == PASSWORD and not self.behaviour.get("refuse_login")

    # -- SMTP ------------------------------------------------------------------------------------------------

    def handle_smtp(self) -> None:
        self.send("220 mail.example.test ESMTP")
        sender, recipients = None, []
        for line in self.lines():
            verb = line.split(" ", 1)[0].upper()
            arg = line[len(verb) + 1 :]
            if verb in ("EHLO", "HELO") and self.tls and self.behaviour.get("die_after_tls"):
                return  # as Postfix's smtpd does when it cannot list its SASL mechanisms
            if verb in ("EHLO", "HELO"):
                features = ["mail.example.test", "PIPELINING", "SIZE 10240000"]
                if not self.tls and not self.behaviour.get("no_starttls"):
                    features.append("STARTTLS")
                auth = self.server.service != "smtp" and not self.behaviour.get("no_auth")
                if auth and (self.tls or self.behaviour.get("auth_before_tls")):
                    features.append("AUTH PLAIN LOGIN")
                features.append("8BITMIME")
                self.send(*[f"250-{f}" for f in features[:-1]], f"250 {features[-1]}")
            elif verb == "STARTTLS":
                self.send("220 2.0.0 Ready to start TLS")
                self.starttls()
            elif verb == "AUTH":
                mechanism, _space, initial = arg.partition(" ")
                if mechanism.upper() == "PLAIN":
                    _authzid, user, password = base64.b64decode(initial).decode().split("\0")
                else:  # LOGIN, with or without the user name as initial response
                    if not initial:
                        self.send("334 VXNlcm5hbWU6")
                        initial = next(self.lines())
                    user = base64.b64decode(initial).decode()
                    self.send("334 UGFzc3dvcmQ6")
                    password = base64.b64decode(next(self.lines())).decode()
                if self.login_ok(user, password):
                    self.authenticated = True
                    self.send("235 2.7.0 Authentication successful")
                else:
                    self.send("535 5.7.8 Error: authentication failed: authentication failure")
            elif verb == "MAIL":
                sender, recipients = arg.split(":", 1)[1].strip("<> "), []
                self.send("250 2.1.0 Ok")
            elif verb == "RCPT":
                recipient = arg.split(":", 1)[1].strip("<> ")
                local = recipient.rsplit("@", 1)[-1] in LOCAL_DOMAINS
                if self.behaviour.get("refuse_rcpt"):
                    self.send(f"550 5.1.1 <{recipient}>: Recipient address rejected: User unknown")
                elif local or self.authenticated or self.behaviour.get("open_relay"):
                    recipients.append(recipient)
                    self.send("250 2.1.5 Ok")
                else:
                    self.send(f"554 5.7.1 <{recipient}>: Relay access denied")
            elif verb == "DATA":
                self.send("354 End data with <CR><LF>.<CR><LF>")
                body = []
                for data_line in self.lines():
                    if data_line == ".":
                        break
                    body.append(data_line)
                text = "\r\n".join(body)
                infected = base64.b64encode(eicar()).decode() in text
                if infected and self.behaviour.get("virus_filter") == "reject":
                    self.send("554 5.7.0 Reject, id=12345 - INFECTED: Eicar-Signature")
                    continue
                if not (infected and self.behaviour.get("virus_filter") == "discard"):
                    self.server.fake.deliver(sender, recipients, text)
                self.send("250 2.0.0 Ok: queued as 4ABC123")
            elif verb == "RSET":
                sender, recipients = None, []
                self.send("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 Bye")
                return
            else:
                self.send("502 5.5.2 Error: command not recognized")

    # -- IMAP ------------------------------------------------------------------------------------------------

    def imap_capabilities(self) -> str:
        caps = ["IMAP4rev1", "LITERAL+", "ID"]
        if not self.tls:
            if not self.behaviour.get("no_starttls"):
                caps.append("STARTTLS")
            caps += ["AUTH=PLAIN"] if self.behaviour.get("auth_before_tls") else ["LOGINDISABLED"]
        else:
            caps.append("AUTH=PLAIN")
        return " ".join(caps)

    def handle_imap(self) -> None:
        self.send("* OK Fake IMAP ready.")
        user = None
        for line in self.lines():
            tag, _space, rest = line.partition(" ")
            command, _space, arg = rest.partition(" ")
            command = command.upper()
            if command == "CAPABILITY":
                self.send(f"* CAPABILITY {self.imap_capabilities()}", f"{tag} OK Capability completed.")
            elif command == "STARTTLS":
                self.send(f"{tag} OK Begin TLS negotiation now.")
                self.starttls()
            elif command == "LOGIN":
                name, password = (part.strip('"') for part in arg.split(" ", 1))
                if self.login_ok(name, password):
                    user = name
                    self.send(f"{tag} OK [CAPABILITY {self.imap_capabilities()}] Logged in")
                else:
                    self.send(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.")
            elif command == "SELECT":
                box = self.server.fake.mailbox(user)
                self.send(f"* {len(box)} EXISTS", f"{tag} OK [READ-WRITE] Select completed.")
            elif command == "SEARCH":
                wanted = arg.rsplit(" ", 1)[-1].strip('"')
                box = self.server.fake.mailbox(user)
                hits = [str(n) for n, (_flags, text) in enumerate(box, 1) if f"Message-ID: {wanted}" in text]
                self.send("* SEARCH" + "".join(f" {n}" for n in hits), f"{tag} OK Search completed.")
            elif command == "STORE":
                number = int(arg.split(" ", 1)[0])
                self.server.fake.mailbox(user)[number - 1][0].add("\\Deleted")
                self.send(f"{tag} OK Store completed.")
            elif command == "EXPUNGE":
                box = self.server.fake.mailbox(user)
                box[:] = [item for item in box if "\\Deleted" not in item[0]]
                self.send(f"{tag} OK Expunge completed.")
            elif command == "LOGOUT":
                self.send("* BYE Logging out", f"{tag} OK Logout completed.")
                return
            else:
                self.send(f"{tag} BAD Error in IMAP command.")

    # -- POP3 ------------------------------------------------------------------------------------------------

    def handle_pop3(self) -> None:
        self.send("+OK Fake POP3 ready.")
        user = None
        for line in self.lines():
            command, _space, arg = line.partition(" ")
            command = command.upper()
            if command == "CAPA":
                caps = ["TOP", "UIDL"]
                if not self.tls and not self.behaviour.get("no_starttls"):
                    caps.append("STLS")
                if self.tls or self.behaviour.get("auth_before_tls"):
                    caps += ["USER", "SASL PLAIN LOGIN"]
                self.send("+OK", *caps, ".")
            elif command == "STLS":
                self.send("+OK Begin TLS negotiation now.")
                self.starttls()
            elif command == "USER":
                user = arg
                self.send("+OK")
            elif command == "PASS":
                if self.login_ok(user or "", arg):
                    self.send("+OK Logged in.")
                else:
                    self.send("-ERR [AUTH] Authentication failed.")
            elif command == "QUIT":
                self.send("+OK Logging out.")
                return
            else:
                self.send("-ERR Unknown command")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeMailServer, service: str, protocol: str, implicit: bool) -> None:
        self.fake, self.service, self.protocol, self.implicit = fake, service, protocol, implicit
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that refuses the certificate ends the implicit TLS handshake in setup(); keep the
        # error for a test to look at instead of printing a traceback.
        import sys

        self.fake.errors.append(repr(sys.exc_info()[1]))


class FakeMailServer:
    SERVICES: ClassVar[dict[str, tuple[str, bool]]] = {
        "smtp": ("smtp", False),
        "submission": ("smtp", False),
        "smtps": ("smtp", True),
        "imap": ("imap", False),
        "imaps": ("imap", True),
        "pop3": ("pop3", False),
        "pop3s": ("pop3", True),
    }

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file = cert_file
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert_file, key_file)
        self.behaviour: dict[str, Any] = {}
        self.boxes: dict[str, list[tuple[set[str], str]]] = {}
        self.relayed: list[tuple[str, list[str]]] = []
        self.transcript: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.servers = {
            service: _Server(self, service, protocol, implicit)
            for service, (protocol, implicit) in self.SERVICES.items()
        }
        self.ports = {service: server.server_address[1] for service, server in self.servers.items()}
        for server in self.servers.values():
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def mailbox(self, user: str | None) -> list[tuple[set[str], str]]:
        with self.lock:
            return self.boxes.setdefault(user or "", [])

    def deliver(self, sender: str | None, recipients: list[str], text: str) -> None:
        if self.behaviour.get("lose_mail"):
            return
        for recipient in recipients:
            if recipient.rsplit("@", 1)[-1] in LOCAL_DOMAINS:
                self.mailbox(recipient).append((set(), text))
            else:
                self.relayed.append((sender or "", [recipient]))

    def stop(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="session")
def mail_certificate(tmp_path_factory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("mail-cert"))


@pytest.fixture
def fake_mail(mail_certificate):
    server = FakeMailServer(*mail_certificate)
    yield server
    server.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
