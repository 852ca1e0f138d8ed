# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backend of the mail_ports module: the TCP ports that the live mail configuration listens on.

The ports are read from what the daemons themselves report, not from role variables, so that a
firewall built from them follows the services: ``postconf -M`` (Postfix's inet services) with
``inet_interfaces``, ``doveconf protocols listen service`` (Dovecot's enabled protocols and the
inet listeners of their services) and ``sshd -T`` (the admin's way in).

Each port gets a scope:

- ``public``: a mail service for everyone (Postfix smtpd/postscreen, Dovecot ``*-login``);
- ``sasl``: Dovecot's auth service on TCP, for a Postfix on another host only;
- ``internal``: any other inet listener (an LMTP or doveadm listener, a policy service), which a
  firewall should not open to the world without being told;
- ``local``: listening on loopback only, so no firewall rule is needed.

Commands are run through an injected runner, so every parser and failure path is unit tested with
the real outputs of Debian 12 and 13.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

ENV = {"LC_ALL": "C"}
#: Service names Postfix uses for its inet services, in case /etc/services (netbase) lacks them.
WELL_KNOWN = {"smtp": 25, "submission": 587, "smtps": 465, "submissions": 465}
#: Postfix daemons that serve SMTP clients; other inet services (spawn, qmqpd...) are internal.
POSTFIX_PUBLIC = ("smtpd", "postscreen")


class MailPortsError(Exception):
    """A daemon's own tool failed, so its ports cannot be known."""


@dataclass(frozen=True)
class Port:
    daemon: str
    service: str
    port: int
    scope: str
    protocol: str = "tcp"


def is_loopback(address: str) -> bool:
    """True for an address (or Postfix/Dovecot keyword) that only listens on the loopback interface."""
    value = address.strip().strip("[]").lower()
    if value in ("localhost", "loopback-only"):
        return True
    try:
        return ipaddress.ip_address(value.split("%")[0]).is_loopback
    except ValueError:
        return False


def _split_addresses(value: str) -> list[str]:
    return [item for item in re.split(r"[\s,]+", value.strip()) if item]


# -- Postfix -------------------------------------------------------------------


def parse_master(text: str) -> list[list[str]]:
    """Return the fields of each ``postconf -M`` entry (continuation lines joined)."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and entries:
            entries[-1].extend(line.split())
            continue
        entries.append(line.split())
    return [fields for fields in entries if len(fields) >= 8]


def split_service_name(name: str) -> tuple[str | None, str]:
    """Split a master.cf inet service name into (host or None, port): ``[::1]:25``, ``127.0.0.1:10025``, ``smtp``."""
    if name.startswith("["):
        host, sep, port = name[1:].partition("]:")
        if not sep:
            raise MailPortsError(f"master.cf service {name!r}: expected [address]:port")
        return host, port
    if ":" in name:
        host, _sep, port = name.rpartition(":")
        return host, port
    return None, name


def postconf_value(text: str) -> str:
    """The value of a ``postconf name`` line (``name = value``)."""
    _name, _sep, value = text.strip().partition("=")
    return value.strip()


def postfix_ports(
    master: str, inet_interfaces: str, resolve: Callable[[str], int | None]
) -> tuple[list[Port], list[str]]:
    """Ports of Postfix's inet services; the second item lists what could not be resolved."""
    interfaces = _split_addresses(inet_interfaces) or ["all"]
    default_local = all(is_loopback(item) for item in interfaces)
    ports: list[Port] = []
    problems: list[str] = []
    for fields in parse_master(master):
        name, kind, command = fields[0], fields[1], fields[7]
        if kind != "inet":
            continue
        host, service = split_service_name(name)
        number = resolve(service)
        if number is None:
            problems.append(f"Postfix service {name!r}: {service!r} is not a known TCP service or port number")
            continue
        local = is_loopback(host) if host else default_local
        if local:
            scope = "local"
        elif command in POSTFIX_PUBLIC:
            scope = "public"
        else:
            scope = "internal"
        ports.append(Port("postfix", name, number, scope))
    return ports, problems


# -- Dovecot -------------------------------------------------------------------


@dataclass
class Section:
    kind: str
    name: str
    settings: dict[str, str]
    children: list[Section]


def parse_doveconf(text: str) -> Section:
    """Parse doveconf output (``key = value`` lines and ``kind [name] {`` ... ``}`` sections) into a tree."""
    root = Section("", "", {}, [])
    stack = [root]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == "}":
            if len(stack) > 1:
                stack.pop()
            continue
        if line.endswith("{"):
            kind, _sep, name = line[:-1].strip().partition(" ")
            section = Section(kind, name.strip().strip('"'), {}, [])
            stack[-1].children.append(section)
            stack.append(section)
            continue
        key, sep, value = line.partition("=")
        if sep:
            stack[-1].settings[key.strip()] = value.strip()
    return root


def dovecot_ports(text: str) -> tuple[list[Port], list[str]]:
    """Ports of the inet listeners of Dovecot's services whose protocol is enabled."""
    root = parse_doveconf(text)
    protocols = set(root.settings.get("protocols", "").split())
    listen = _split_addresses(root.settings.get("listen", "*, ::"))
    ports: list[Port] = []
    problems: list[str] = []
    for service in root.children:
        if service.kind != "service":
            continue
        protocol = service.settings.get("protocol", "")
        if protocol and protocol not in protocols:
            continue
        if service.settings.get("type") == "login":
            service_scope = "public"
        elif service.name == "auth":
            service_scope = "sasl"
        else:
            service_scope = "internal"
        for listener in service.children:
            if listener.kind != "inet_listener":
                continue
            value = listener.settings.get("port", "0")
            if not value.isdigit() or not 0 <= int(value) <= 65535:
                problems.append(f"Dovecot service {service.name}, inet_listener {listener.name}: port {value!r}")
                continue
            if int(value) == 0:  # port = 0 switches a listener off
                continue
            # Dovecot 2.3 names the listener's own address "address", 2.4 "listen".
            own = listener.settings.get("listen") or listener.settings.get("address") or ""
            addresses = _split_addresses(own) or listen
            scope = "local" if addresses and all(is_loopback(a) for a in addresses) else service_scope
            ports.append(Port("dovecot", f"{service.name}/{listener.name}", int(value), scope))
    return ports, problems


# -- sshd ----------------------------------------------------------------------


def sshd_ports(text: str) -> list[int]:
    """The ports sshd listens on for other hosts, from ``sshd -T`` (listenaddress, else port)."""
    ports: set[int] = set()
    listen: list[tuple[str, int]] = []
    for line in text.splitlines():
        key, _sep, value = line.strip().partition(" ")
        if key == "port" and value.strip().isdigit():
            ports.add(int(value))
        elif key == "listenaddress":
            host, _sep, port = value.strip().rpartition(":")
            if port.isdigit():
                listen.append((host, int(port)))
    if listen:
        return sorted({port for host, port in listen if not is_loopback(host)})
    return sorted(ports)


# -- the module's backend ------------------------------------------------------------


def resolve_service(name: str) -> int | None:
    """A port number or a TCP service name from /etc/services (as Postfix resolves it)."""
    if name.isdigit():
        number = int(name)
        return number if 0 < number < 65536 else None
    try:
        return socket.getservbyname(name, "tcp")
    except OSError:
        return WELL_KNOWN.get(name)


class MailPorts:
    """Run the daemons' own tools and derive the ports; nothing on the host is changed."""

    def __init__(
        self,
        *,
        run_command: Callable[..., Any],
        get_bin_path: Callable[[str], str | None],
        postfix_config_dir: str = "/etc/postfix",
        dovecot_config_dir: str = "/etc/dovecot",
        binaries: Sequence[str] = (),
        resolve: Callable[[str], int | None] = resolve_service,
        exists: Callable[[str], bool] = os.path.exists,
        variable_prefix: str = "",
    ) -> None:
        self._run = run_command
        self._get_bin_path = get_bin_path
        self.postfix_config_dir = postfix_config_dir
        self.dovecot_config_dir = dovecot_config_dir
        self.binaries = list(binaries)
        self._resolve = resolve
        self._exists = exists
        #: Errors name the caller's variables: ``<variable_prefix>postfix_config_dir``.
        self.variable_prefix = variable_prefix
        self.warnings: list[str] = []

    def config_dir(self, daemon: str, tool: str, directory: str) -> None:
        """Refuse a configuration directory that does not exist while the daemon's tool is installed.

        A missing directory is a wrong variable, not "no ports": the firewall would silently close
        every port of that daemon. (A directory without its main file is a daemon installed but not
        configured yet, which has no ports.)
        """
        if not self._exists(directory):
            raise MailPortsError(
                f"{self.variable_prefix}{daemon}_config_dir: {directory} does not exist, but {tool} is installed; "
                f"give {daemon.capitalize()}'s configuration directory"
            )

    def run(self, argv: Sequence[str], what: str) -> str:
        rc, out, err = self._run(list(argv), environ_update=dict(ENV))
        if rc != 0:
            raise MailPortsError(f"{what} failed (rc={rc}): {(err or out or '').strip()}")
        return out or ""

    def postfix(self) -> list[Port] | None:
        postconf = self._get_bin_path("postconf")
        if not postconf:
            return None
        self.config_dir("postfix", "postconf", self.postfix_config_dir)
        if not self._exists(os.path.join(self.postfix_config_dir, "main.cf")):
            return None
        config = ["-c", self.postfix_config_dir]
        master = self.run([postconf, *config, "-M"], "postconf -M")
        interfaces = postconf_value(self.run([postconf, *config, "inet_interfaces"], "postconf inet_interfaces"))
        ports, problems = postfix_ports(master, interfaces, self._resolve)
        self.warnings.extend(problems)
        return ports

    def dovecot(self) -> list[Port] | None:
        doveconf = self._get_bin_path("doveconf")
        config = os.path.join(self.dovecot_config_dir, "dovecot.conf")
        if not doveconf:
            return None
        self.config_dir("dovecot", "doveconf", self.dovecot_config_dir)
        if not self._exists(config):
            return None
        text = self.run([doveconf, "-c", config, "protocols", "listen", "service"], "doveconf")
        ports, problems = dovecot_ports(text)
        self.warnings.extend(problems)
        return ports

    def sshd(self) -> list[int] | None:
        sshd = self._get_bin_path("sshd")
        if not sshd:
            return None
        rc, out, err = self._run([sshd, "-T"], environ_update=dict(ENV))
        if rc != 0:
            self.warnings.append(f"sshd -T failed (rc={rc}), so sshd's port is unknown: {(err or out or '').strip()}")
            return None
        return sshd_ports(out or "")

    def execute(self) -> dict[str, Any]:
        found: dict[str, bool] = {}
        ports: list[Port] = []
        for daemon, reader in (("postfix", self.postfix), ("dovecot", self.dovecot)):
            result = reader()
            found[daemon] = result is not None
            ports.extend(result or [])
        ssh = self.sshd()
        found["sshd"] = ssh is not None
        unique = sorted(set(ports), key=lambda p: (p.port, p.daemon, p.service))
        return {
            "changed": False,
            "ports": [asdict(p) for p in unique],
            "ssh_ports": ssh or [],
            "found": found,
            "binaries": {name: self._get_bin_path(name) for name in self.binaries},
            "warnings": list(self.warnings),
        }
