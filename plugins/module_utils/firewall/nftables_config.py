# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backend of the nftables_config module: one validated, atomically loaded nftables table.

The module owns one table (``inet postmaster`` by default) and the file that loads it at boot
(``/etc/nftables.conf``, which Debian's nftables.service reads). The table is the complete inbound
policy: its input chain drops by default and accepts established/related traffic, loopback, ICMP
and ICMPv6, SSH and the given rules. Other tables (Docker's NAT rules in a container, fail2ban's)
are left alone, so the file never says ``flush ruleset``: it recreates the table in one
transaction (``table ...; delete table ...; table ... { ... }``), which nft applies atomically.

A candidate is checked with ``nft -c -f`` before it replaces the file, then loaded through
systemd (``reload-or-restart``: a reload when the unit runs, a start when it does not; never a
stop, whose ``flush ruleset`` would take every other table with it). The loaded table must have
its input chain with policy drop and a rule for the SSH port; otherwise the previous file and the
previous table are restored. A rule set without SSH is refused before anything changes.

As in dovecot_config, every side effect is an injected callable, so each failure path is unit
tested without a host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.call_record import Footprint
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import ConfigModuleError
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import guard
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import read_text, set_owner_mode
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import (
    HealthCheckError,
    ServiceBackend,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall import firewall_rules as fw
from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.mail_ports import MailPorts, MailPortsError

#: The first line after the shebang of every file this module writes; it marks the file as ours.
MARKER = "# Managed by postmaster.mailserver.nftables_config"
TABLE_RE = r"[a-z][a-z0-9_]{0,31}"


class NftablesConfigError(ConfigModuleError):
    """Validation, apply or health check failed."""


def _family_sources(sources: Sequence[str]) -> list[tuple[str, list[str]]]:
    v4 = [s for s in sources if ipaddress.ip_network(s).version == 4]
    v6 = [s for s in sources if ipaddress.ip_network(s).version == 6]
    return [(family, items) for family, items in (("ip", v4), ("ip6", v6)) if items]


def render(rule_set: Sequence[Mapping[str, Any]], table: str = "postmaster") -> str:
    """The nft script of the table; *rule_set* must have been validated (firewall_rules.rules)."""
    lines = [
        "#!/usr/sbin/nft -f",
        MARKER,
        "# (the postmaster.mailserver.firewall role). Every run replaces this file: change the role's",
        "# variables instead. It recreates one table atomically and leaves every other table alone.",
        f"table inet {table} {{}}",
        f"delete table inet {table}",
        f"table inet {table} {{",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy drop;",
        "\t\tct state invalid drop",
        "\t\tct state { established, related } accept",
        '\t\tiifname "lo" accept',
        "\t\tmeta l4proto { icmp, ipv6-icmp } accept",
    ]
    for item in rule_set:
        first, last = fw.port_range(item["port"], "port")
        port = str(first) if first == last else f"{first}-{last}"
        match = f'{item["protocol"]} dport {port} accept comment "{fw.name(item["name"], "name")}"'
        sources = list(item.get("sources") or [])
        if not sources:
            lines.append(f"\t\t{match}")
            continue
        for family, items in _family_sources(sources):
            lines.append(f"\t\t{family} saddr {{ {', '.join(items)} }} {match}")
    lines += ["\t}", "}", ""]
    return "\n".join(lines)


def stub(table: str = "postmaster") -> str:
    """The file left behind when the table is removed: it loads nothing."""
    return "\n".join(
        [
            "#!/usr/sbin/nft -f",
            MARKER,
            f"# (the postmaster.mailserver.firewall role). The table inet {table} was removed: this host's",
            "# firewall is not managed with nftables by that role (firewall_backend).",
            "",
        ]
    )


def _match_port(expr: Mapping[str, Any], port: int) -> bool:
    match = expr.get("match")
    if not isinstance(match, Mapping):
        return False
    left = match.get("left")
    if not isinstance(left, Mapping) or left.get("payload", {}).get("field") != "dport":
        return False
    if left["payload"].get("protocol") != "tcp":
        return False
    right = match.get("right")
    values = right.get("set") if isinstance(right, Mapping) and "set" in right else [right]
    for value in values:
        if isinstance(value, int) and value == port:
            return True
        if isinstance(value, Mapping) and "range" in value:
            first, last = value["range"]
            if first <= port <= last:
                return True
    return False


def check_live(listing: str, table: str, ssh: int) -> None:
    """Raise HealthCheckError unless ``nft -j list table`` shows the input chain (policy drop) and SSH accepted."""
    try:
        items = json.loads(listing).get("nftables", [])
    except (ValueError, AttributeError) as exc:
        raise HealthCheckError(f"nft -j list table inet {table} printed no JSON: {exc}") from None
    chains = [i["chain"] for i in items if isinstance(i, Mapping) and "chain" in i]
    inputs = [c for c in chains if c.get("table") == table and c.get("hook") == "input"]
    if not inputs:
        raise HealthCheckError(f"table inet {table} has no input chain")
    if any(c.get("policy") != "drop" for c in inputs):
        raise HealthCheckError(f"the input chain of table inet {table} does not drop by default")
    for item in items:
        found = item.get("rule") if isinstance(item, Mapping) else None
        if not isinstance(found, Mapping) or found.get("table") != table:
            continue
        expr = found.get("expr") or []
        if any("accept" in e for e in expr if isinstance(e, Mapping)) and any(_match_port(e, ssh) for e in expr):
            return
    raise HealthCheckError(f"table inet {table} has no rule accepting SSH (tcp/{ssh})")


def rules_from_services(
    services: Mapping[str, Any],
    *,
    ssh_port: Any,
    run_command: Callable[..., Any],
    get_bin_path: Callable[[str], str | None],
    reader: Callable[..., MailPorts] = MailPorts,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The firewall role's rules, composed on the host from the ports its services listen on.

    *services* names the Postfix and Dovecot configuration directories to read (as the mail_ports
    module does) and the firewall role's rule variables (admin_networks, sasl_peers, extra_rules,
    session); the rules are then ``firewall_rules.build_rules`` of what was read, which refuses a set
    that would lock the admin out. Returns the rules and what mail_ports found (ports, ssh_ports, found).
    """
    try:
        found = reader(
            run_command=run_command,
            get_bin_path=get_bin_path,
            postfix_config_dir=services.get("postfix_config_dir") or "/etc/postfix",
            dovecot_config_dir=services.get("dovecot_config_dir") or "/etc/dovecot",
            variable_prefix="firewall_",
        ).execute()
    except MailPortsError as exc:
        raise NftablesConfigError(str(exc)) from None
    try:
        rule_set = fw.build_rules(
            found["ports"],
            ssh_port_value=ssh_port,
            admin_networks=services.get("admin_networks") or [],
            sasl_peers=services.get("sasl_peers") or [],
            extra=services.get("extra_rules") or [],
            sshd_ports=found["ssh_ports"],
            session=services.get("session") or "",
            warnings=found["warnings"],
        )
    except fw.FirewallError as exc:
        raise NftablesConfigError(str(exc)) from None
    return rule_set, {key: found[key] for key in ("ports", "ssh_ports", "found", "warnings")}


class NftablesConfig(ServiceBackend):
    """Check, write, load and health-check the table; restore the previous file and table on failure."""

    # The result of a call that changed nothing (see config_module.unchanged_result).
    UNCHANGED: ClassVar[dict[str, Any]] = {"reloaded": False, "enabled": False}

    def __init__(
        self,
        *,
        rules: Any,
        path: str = "/etc/nftables.conf",
        table: str = "postmaster",
        ssh_port: Any = 22,
        state: str = "present",
        service: str = "nftables",
        read_text: Callable[[str], str | None] = read_text,
        ufw_conf: str = "/etc/ufw/ufw.conf",
        **common: Any,
    ) -> None:
        if not re.fullmatch(TABLE_RE, table or ""):
            raise NftablesConfigError(f"table: {table!r} must be a lower-case name (letters, digits, _)")
        self.table = table
        self.state = state
        try:
            self.ssh_port = fw.ssh_port(ssh_port, "ssh_port")
            self.rules = fw.rules(rules or [], "rules") if state == "present" else []
            if state == "present":
                fw.require_ssh(self.rules, self.ssh_port)
        except fw.FirewallError as exc:
            raise NftablesConfigError(str(exc)) from None
        self.path = path
        self.service = service
        self._keep(**common)
        self._read = read_text
        self.ufw_conf = ufw_conf
        #: What rules_from_services read from the host (its ``ports`` and ``warnings`` join the result).
        self.services_read: dict[str, Any] = {}
        # The services argument of module_backend (the configuration directories the ports were read from).
        self.services_args: Mapping[str, Any] = {}

    # -- helpers -------------------------------------------------------------

    def live_listing(self, nft: str, json_output: bool) -> str | None:
        """The live table (``nft [-j] list table``), or None when it does not exist."""
        argv = [nft, *(["-j"] if json_output else []), "list", "table", "inet", self.table]
        rc, out, err = self.run(argv)
        if rc != 0:
            if "No such file or directory" in err or "does not exist" in err:
                return None
            raise NftablesConfigError(f"nft list table inet {self.table} failed (rc={rc}): {err.strip()}")
        return out

    def _systemctl(self, *args: str) -> tuple[int, str]:
        systemctl = self._get_bin_path("systemctl")
        if not systemctl:
            raise HealthCheckError("systemctl was not found")
        rc, out, err = self.run([systemctl, *args])
        return rc, (out or err).strip()

    def _other_manager(self) -> str | None:
        """The name of another firewall manager that is switched on, if any."""
        text = self._read(self.ufw_conf) or ""
        if any(line.strip() in ("ENABLED=yes", 'ENABLED="yes"') for line in text.splitlines()):
            return f"ufw (ENABLED=yes in {self.ufw_conf})"
        systemctl = self._get_bin_path("systemctl")
        if systemctl and self.run([systemctl, "is-active", "--quiet", "firewalld"])[0] == 0:
            return "firewalld (firewalld.service is active)"
        return None

    def write_file(self, text: str) -> str:
        """Write *text* next to the file (same mode and owner, else 0755 for the script); return the temp path."""
        directory = os.path.dirname(self.path) or "."
        try:
            st: os.stat_result | None = os.stat(self.path)
        except FileNotFoundError:
            st = None
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, stat.S_IMODE(st.st_mode) if st else 0o755)
        if st is not None:
            with contextlib.suppress(PermissionError):
                os.chown(tmp, st.st_uid, st.st_gid)
        return tmp

    def _install(self, tmp: str, touched: Touched | None = None) -> None:
        """Move *tmp* over the file, which keeps *tmp*'s mode and owner (an atomic move that creates it would not)."""
        if touched is not None:
            touched.remember(self.path)
        try:
            st = os.stat(tmp)
            self._atomic_move(tmp, self.path)
            set_owner_mode(self.path, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def check_candidate(self, nft: str, tmp: str) -> None:
        rc, out, err = self.run([nft, "-c", "-f", tmp])
        if rc != 0:
            message = (err or out).strip().replace(tmp, self.path)
            raise NftablesConfigError(
                f"nft -c refused the candidate ruleset (rc={rc}); nothing was changed: {message}", nft_rc=rc
            )

    # -- present -----------------------------------------------------------------

    def _healthy(self, nft: str) -> bool:
        listing = self.live_listing(nft, json_output=True)
        if listing is None:
            return False
        try:
            check_live(listing, self.table, self.ssh_port)
        except HealthCheckError:
            return False
        return True

    def _load(self) -> None:
        rc, out = self._systemctl("reload-or-restart", self.service)
        if rc != 0:
            raise HealthCheckError(f"systemctl reload-or-restart {self.service} failed (rc={rc}): {out}")

    def _restore_table(self, nft: str, previous: str | None) -> None:
        """Put the previous table back (or none), in one nft transaction, without touching other tables."""
        text = f"table inet {self.table} {{}}\ndelete table inet {self.table}\n" + (previous or "")
        tmp = self.write_file(text)
        try:
            rc, out, err = self.run([nft, "-f", tmp])
        finally:
            os.unlink(tmp)
        if rc != 0:
            raise HealthCheckError(f"restoring the previous table failed (rc={rc}): {(err or out).strip()}")

    def present(self, result: dict[str, Any]) -> None:
        text = render(self.rules, self.table)
        before = self._read(self.path)
        nft = self._get_bin_path("nft")
        other = self._other_manager()
        if other:
            raise NftablesConfigError(
                f"{other} manages this host's firewall; two managers would each drop what the other allows. "
                "Switch it off, or use that backend (firewall_backend of the firewall role); nothing was changed"
            )
        if not nft:
            if not self.check_mode:
                raise NftablesConfigError("nft was not found; install the nftables package")
            self.warnings.append("nft was not found: the candidate ruleset was not checked (check mode)")
        file_changed = before != text
        healthy = bool(nft) and self._healthy(nft)
        rc, _out = self._systemctl("is-enabled", "--quiet", self.service)
        enable = rc != 0
        result["changed"] = file_changed or not healthy or enable
        result["diff"] = {"before_header": self.path, "after_header": self.path, "before": before or "", "after": text}
        if not healthy and not file_changed and nft:
            # The file is right but the live table is not (flushed, or edited by hand).
            result["diff"]["before_header"] = f"{self.path} (the live table inet {self.table} differs)"
        if not result["changed"] or not nft:
            return
        tmp = None
        if file_changed:
            tmp = self.write_file(text)
            try:
                self.check_candidate(nft, tmp)
            except NftablesConfigError:
                os.unlink(tmp)
                raise
        if self.check_mode:
            if tmp:
                os.unlink(tmp)
            return
        previous = self.live_listing(nft, json_output=False)
        # The file as it was (content, owner, group and mode), for a rollback.
        touched = Touched()
        if tmp:
            self._install(tmp, touched)
        try:
            if file_changed or not healthy:
                self._load()
                result["reloaded"] = True
            if self.health_check:
                listing = self.live_listing(nft, json_output=True)
                if listing is None:
                    raise HealthCheckError(f"table inet {self.table} is not loaded")
                check_live(listing, self.table, self.ssh_port)
        except HealthCheckError as exc:
            rollback = "the previous file and table were restored"
            errors = touched.restore()
            try:
                self._restore_table(nft, previous)
            except (HealthCheckError, OSError) as again:
                errors.append(str(again))
            if errors:
                rollback = f"restoring the previous file and table failed: {'; '.join(errors)}"
            raise NftablesConfigError(f"health check failed: {exc}; {rollback}", rolled_back=True) from exc
        if enable:
            rc, out = self._systemctl("enable", self.service)
            if rc != 0:
                raise NftablesConfigError(f"systemctl enable {self.service} failed (rc={rc}): {out}")
            result["enabled"] = True

    # -- absent ------------------------------------------------------------------

    def absent(self, result: dict[str, Any]) -> None:
        """Remove the table from the live ruleset and leave a file that loads nothing."""
        before = self._read(self.path)
        nft = self._get_bin_path("nft")
        live = self.live_listing(nft, json_output=False) if nft else None
        ours = before is not None and MARKER in before
        new_text = stub(self.table) if ours else before
        file_changed = ours and before != new_text
        systemctl = self._get_bin_path("systemctl")
        enabled = bool(ours and systemctl and self.run([systemctl, "is-enabled", "--quiet", self.service])[0] == 0)
        result["changed"] = live is not None or file_changed or enabled
        result["diff"] = {
            "before_header": f"{self.path} and table inet {self.table}",
            "after_header": self.path,
            "before": (before or "") + (live or ""),
            "after": new_text or "",
        }
        if self.check_mode or not result["changed"]:
            return
        if file_changed:
            self._install(self.write_file(new_text or ""))
        if live is not None and nft:
            rc, out, err = self.run([nft, "delete", "table", "inet", self.table])
            if rc != 0:
                raise NftablesConfigError(
                    f"nft delete table inet {self.table} failed (rc={rc}): {(err or out).strip()}"
                )
        if enabled:
            # Disable only: stopping nftables.service runs "nft flush ruleset", which would take every
            # other table (ufw's, Docker's) with it.
            rc, out = self._systemctl("disable", self.service)
            if rc != 0:
                raise NftablesConfigError(f"systemctl disable {self.service} failed (rc={rc}): {out}")

    # -- entry point -----------------------------------------------------------

    def footprint(self) -> Footprint:
        """What a run without a change compares: the ruleset file, the live table, the other firewall managers,
        and (with services) the Postfix and Dovecot configuration the ports were read from."""
        paths = [self.path, f"nft:{self.table}", self.ufw_conf]
        for key in ("postfix_config_dir", "dovecot_config_dir"):
            if self.services_args.get(key):
                paths.append(f"tree:{self.services_args[key]}")
        return Footprint(paths, [self.service, "firewalld"])

    def execute(self) -> dict[str, Any]:
        """Do everything; return the module result (``diff`` is always filled, the module filters it)."""
        guard(NftablesConfigError, self.path, "path", kind="file")
        result: dict[str, Any] = {
            "changed": False,
            "path": self.path,
            "table": self.table,
            "reloaded": False,
            "enabled": False,
            "rules": self.rules,
        }
        try:
            if self.state == "present":
                self.present(result)
            else:
                self.absent(result)
        except HealthCheckError as exc:
            raise NftablesConfigError(str(exc)) from None
        except OSError as exc:
            raise NftablesConfigError(f"writing {exc.filename or self.path} failed: {exc}") from exc
        result["warnings"] = list(self.warnings) + list(self.services_read.get("warnings", []))
        if self.services_read:
            result["ports"] = self.services_read["ports"]
        return result


def module_backend(
    *,
    rules: Sequence[Any],
    services: Mapping[str, Any] | None,
    ssh_port: Any,
    state: str,
    run_command: Callable[..., Any],
    get_bin_path: Callable[[str], str | None],
    **arguments: Any,
) -> NftablesConfig:
    """The nftables_config module's backend: *rules*, or (with *services*) the rules read from the host."""
    read: dict[str, Any] = {}
    if services is not None and state == "present":
        rules, read = rules_from_services(
            services, ssh_port=ssh_port, run_command=run_command, get_bin_path=get_bin_path
        )
    backend = NftablesConfig(
        rules=rules, ssh_port=ssh_port, state=state, run_command=run_command, get_bin_path=get_bin_path, **arguments
    )
    backend.services_read = read
    backend.services_args = services or {}
    return backend
