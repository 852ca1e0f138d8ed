# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The dkim_config backend: OpenDKIM's keys and configuration, checked, swapped, restarted, rolled back.

``DkimConfig.execute``:

1. validates the settings (:mod:`dkim_settings`) and checks every path on the host (mail_paths);
2. creates each missing private key of an active or published selector ON THE HOST with
   ``openssl genpkey`` (mode 0600, owner opendkim, in a 0700 directory), never touching an
   existing key; deletes the key of a retired selector;
3. reads each key's public half (``openssl pkey -pubout``): the ``p=`` values are returned, the
   private key never is;
4. when opendkim.conf or a table differs: writes candidates to a private directory and runs
   ``opendkim -n`` on them (OpenDKIM parses the file and opens every table), swaps them in
   atomically, restarts OpenDKIM (a changed opendkim.conf: the socket may have moved) or reloads it
   (SIGUSR1, tables only), and requires the milter to answer a milter option negotiation on its
   port; otherwise the previous files come back, the keys created by this run are removed, and
   OpenDKIM is restarted on the old files.

Every side effect is an injected callable, so that the failure paths are unit tested without a host.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import grp
import os
import pwd
import socket
import struct
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.call_record import Footprint
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import ConfigModuleError
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import guard
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import (
    read_text,
    replace_keeping_mode,
    set_owner_mode,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import (
    HealthCheckError,
    ServiceBackend,
    ServiceStateError,
    ensure_service,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.dkim.dkim_settings import (
    ED25519_DIR,
    ED25519_SERVICE,
    DkimSettingsError,
    active_selector,
    check_settings,
    ed25519_conf_path,
    keys,
    render_conf,
    render_ed25519_files,
    render_files,
    render_unit,
)

DEFAULT_CONF = "/etc/opendkim.conf"
DEFAULT_TABLE_DIR = "/etc/opendkim"
DEFAULT_UNIT_DIR = "/etc/systemd/system"
#: The DER SubjectPublicKeyInfo of an Ed25519 key is this prefix and the 32-byte key (RFC 8410).
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
SERVICE = "opendkim"
USER = "opendkim"

# The milter protocol (libmilter's mfdef.h): option negotiation, version 6.
SMFIC_OPTNEG = b"O"
SMFIC_QUIT = b"Q"
MILTER_VERSION = 6
MILTER_ACTIONS = 0x1FF
MILTER_PROTOCOL = 0x1FFFFF


class DkimConfigError(ConfigModuleError):
    """Validation, key handling, the candidate check, the swap or the health check failed."""


# -- the milter probe ------------------------------------------------------------------


def milter_packet(command: bytes, data: bytes = b"") -> bytes:
    """One milter packet: a 4-byte length (command and data), the command byte, the data."""
    return struct.pack(">I", len(data) + 1) + command + data


def read_milter_packet(read: Callable[[int], bytes]) -> tuple[bytes, bytes]:
    """Read one packet with *read* (a socket's recv): return (command, data)."""

    def exactly(count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = read(count - len(data))
            if not chunk:
                raise HealthCheckError("the milter closed the connection before a complete answer")
            data += chunk
        return data

    (length,) = struct.unpack(">I", exactly(4))
    if not 1 <= length <= 65536:
        raise HealthCheckError(f"the milter answered a packet of length {length}")
    body = exactly(length)
    return body[:1], body[1:]


def milter_probe(host: str, port: int, timeout: float) -> str:
    """Negotiate options with the milter at *host*:*port* as Postfix does; return what it offered."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(milter_packet(SMFIC_OPTNEG, struct.pack(">III", MILTER_VERSION, MILTER_ACTIONS, MILTER_PROTOCOL)))
        command, data = read_milter_packet(sock.recv)
        if command != SMFIC_OPTNEG or len(data) < 12:
            raise HealthCheckError(f"the milter on {host}:{port} answered {command!r}, expected an option negotiation")
        version, actions, protocol = struct.unpack(">III", data[:12])
        with contextlib.suppress(OSError):
            sock.sendall(milter_packet(SMFIC_QUIT))
    return f"milter version {version}, actions 0x{actions:x}, protocol 0x{protocol:x}"


# -- keys --------------------------------------------------------------------------------


def public_from_pem(pem: str, algorithm: str = "rsa") -> str:
    """DKIM's ``p=`` value of a PEM public key.

    RSA: the base64 body (the DER SubjectPublicKeyInfo). Ed25519 (RFC 8463 3.2): the base64 of the bare
    32-byte public key, without the SubjectPublicKeyInfo around it.
    """
    lines = [line.strip() for line in pem.strip().splitlines()]
    if not lines or lines[0] != "-----BEGIN PUBLIC KEY-----" or lines[-1] != "-----END PUBLIC KEY-----":
        raise DkimConfigError(f"openssl printed no public key: {pem.strip()[:200]!r}")
    body = "".join(lines[1:-1])
    if algorithm != "ed25519":
        return body
    try:
        der = base64.b64decode(body, validate=True)
    except (ValueError, binascii.Error):
        raise DkimConfigError("openssl printed a public key that is not base64") from None
    if len(der) != 44 or not der.startswith(ED25519_SPKI_PREFIX):
        raise DkimConfigError("the key is not an Ed25519 key (its public key is not 32 bytes of RFC 8410)")
    return base64.b64encode(der[12:]).decode()


def bits_from_text(text: str) -> int | None:
    """The key size from ``openssl pkey -text -noout``'s first line (``Private-Key: (2048 bit, 2 primes)``)."""
    for line in text.splitlines():
        if "Private-Key:" in line and "(" in line:
            words = line.split("(", 1)[1].split()
            if words and words[0].isdigit():
                return int(words[0])
    return None


def _account(user: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise DkimConfigError(f"the user {user} does not exist; is opendkim installed?") from None
    try:
        gid = grp.getgrnam(user).gr_gid
    except KeyError:
        gid = entry.pw_gid
    return entry.pw_uid, gid


class DkimConfig(ServiceBackend):
    """Keys, opendkim.conf and its tables, applied safely."""

    # The result of a call that changed nothing (see config_module.unchanged_result).
    UNCHANGED: ClassVar[dict[str, Any]] = {
        "generated": [],
        "deleted": [],
        "restarted": False,
        "reloaded": False,
        "milter_answer": None,
        "ed25519_restarted": None,
        "ed25519_milter_answer": None,
    }

    def __init__(
        self,
        *,
        settings: Mapping[str, Any],
        conf_path: str = DEFAULT_CONF,
        table_dir: str = DEFAULT_TABLE_DIR,
        unit_dir: str = DEFAULT_UNIT_DIR,
        account: Callable[[str], tuple[int, int]] = _account,
        milter: Callable[[str, int, float], str] = milter_probe,
        trust: Any = None,
        **common: Any,
    ) -> None:
        try:
            self.settings = check_settings(settings)
        except DkimSettingsError as exc:
            raise DkimConfigError(f"{exc}; nothing was changed") from None
        self.conf_path = conf_path
        self.table_dir = table_dir
        self.unit_path = os.path.join(unit_dir, f"{ED25519_SERVICE}.service")
        # The RSA process's files, then the Ed25519 signer's (with its unit) when an Ed25519 selector is active.
        self.files = render_files(self.settings, table_dir, conf_path)
        self.ed25519_files = render_ed25519_files(self.settings, table_dir, conf_path)
        if self.ed25519_files:
            self.ed25519_files[self.unit_path] = render_unit(conf_path)
        self.files.update(self.ed25519_files)
        # Without an active Ed25519 selector, the signer's files of an earlier run are removed.
        self.ed25519_paths = [
            ed25519_conf_path(conf_path),
            os.path.join(table_dir, ED25519_DIR, "KeyTable"),
            os.path.join(table_dir, ED25519_DIR, "SigningTable"),
            self.unit_path,
        ]
        self._keep(**common)
        self.health_port = self.health_port or self.settings["milter_port"]
        self._account = account
        self._milter = milter
        self._trust = trust

    # -- helpers -----------------------------------------------------------------

    def _bin(self, name: str) -> str:
        path = self._get_bin_path(name)
        if not path:
            raise DkimConfigError(f"{name} was not found; are opendkim and openssl installed?")
        return path

    def _guard(self, path: str, name: str, kind: str, owners: Sequence[int] = ()) -> None:
        options: dict[str, Any] = {"kind": kind, "owners": owners}
        if self._trust is not None:
            options["trust"] = self._trust
        guard(DkimConfigError, path, name, **options)

    # -- keys ----------------------------------------------------------------------

    def public_key(self, path: str, algorithm: str = "rsa") -> tuple[str, int | None]:
        """The ``p=`` value and size of the private key at *path* (read by openssl on the host)."""
        openssl = self._bin("openssl")
        rc, out, err = self.run([openssl, "pkey", "-in", path, "-pubout"])
        if rc != 0:
            raise DkimConfigError(
                f"{path} is not a private key openssl can read (rc={rc}): {err.strip()[-500:]}; "
                "it was left as it is (a key is never regenerated): move it away to get a new one"
            )
        public = public_from_pem(out, algorithm)
        if algorithm == "ed25519":
            return public, 256
        rc, out, _err = self.run([openssl, "pkey", "-in", path, "-noout", "-text"])
        return public, bits_from_text(out) if rc == 0 else None

    def generate_key(
        self, path: str, bits: int, uid: int, gid: int, touched: Touched, *, algorithm: str = "rsa"
    ) -> None:
        """A new RSA or Ed25519 key at *path*: generated into a 0600 file in its 0700 directory, then moved in place."""
        directory = os.path.dirname(path)
        key_dir = self.settings["key_dir"]
        for folder in (key_dir, directory):
            if not os.path.isdir(folder):
                touched.remember_dirs(folder)
                os.makedirs(folder, mode=0o700, exist_ok=True)
                set_owner_mode(folder, 0o700, uid, gid)
        touched.remember(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
        os.close(fd)
        try:
            os.chmod(tmp, 0o600)
            openssl = self._bin("openssl")
            if algorithm == "ed25519":
                argv = [openssl, "genpkey", "-algorithm", "ED25519", "-out", tmp]
            else:
                argv = [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}", "-out", tmp]
            rc, out, err = self.run(argv)
            if rc != 0:
                raise DkimConfigError(f"openssl genpkey failed for {path} (rc={rc}): {(err or out).strip()[-500:]}")
            set_owner_mode(tmp, 0o600, uid, gid)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # -- candidate check -------------------------------------------------------------

    def check_candidate(self) -> None:
        """``opendkim -n`` on candidates in a private directory: the file parses and every table opens."""
        opendkim = self._get_bin_path("opendkim")
        if not opendkim:
            if self.check_mode:
                self.warnings.append("opendkim not found: only the Python validation ran (check mode)")
                return
            raise DkimConfigError("opendkim was not found; is the opendkim package installed?")
        with tempfile.TemporaryDirectory(prefix="postmaster-opendkim-") as workdir:
            conf = os.path.join(workdir, "opendkim.conf")
            candidate = render_files(self.settings, workdir, conf)
            candidate.update(render_ed25519_files(self.settings, workdir, conf))
            for path, text in candidate.items():
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(text)
            rc, out, err = self.run([opendkim, "-n", "-x", conf])
            if rc == 0 and self.ed25519_files:
                rc, out, err = self.run([opendkim, "-n", "-x", ed25519_conf_path(conf)])
        if rc != 0:
            message = (err or out).strip().replace(workdir + "/", "<candidate>/")[-2000:]
            raise DkimConfigError(
                f"opendkim -n refused the candidate configuration (rc={rc}); nothing was changed: {message}",
                checker_rc=rc,
            )

    # -- apply -------------------------------------------------------------------------

    def _systemctl(self, verb: str, service: str = SERVICE) -> str:  # type: ignore[override]
        # daemon-reload takes no unit ("Too many arguments").
        return super()._systemctl(verb) if verb == "daemon-reload" else super()._systemctl(verb, service)

    def health(self, port: int | None = None, what: str = "the OpenDKIM milter") -> str:
        port = port or self.health_port
        return self._wait(
            f"{what} on {self.health_host}:{port} did not answer",
            lambda timeout: self._milter(self.health_host, port, timeout),
        )

    def write_files(self, changed: Sequence[str], touched: Touched) -> None:
        for path in changed:
            touched.makedirs(os.path.dirname(path), mode=0o755)
            replace_keeping_mode(self._atomic_move, path, self.files[path], touched=touched)

    # -- entry point -----------------------------------------------------------------------

    def footprint(self) -> Footprint:
        """What a run without a change compares: the files, every key (a retired one must be gone), the signers."""
        paths = [*self.files, *self.ed25519_paths, self.table_dir, self.settings["key_dir"]]
        paths += [item["path"] for item in keys(self.settings)]
        return Footprint(paths, [SERVICE, *([ED25519_SERVICE] if self.ed25519_files else [])])

    def execute(self) -> dict[str, Any]:
        """Do everything; return the module result (``diff`` is always filled, the module filters it)."""
        uid, gid = self._account(USER) if not self.check_mode or self._has_user() else (-1, -1)
        self._guard(self.conf_path, "conf_path", "file")
        self._guard(self.table_dir, "table_dir", "dir")
        # The Ed25519 signer's unit is at a fixed name below systemd's directory (like amavis's drop-ins).
        for path in self.ed25519_paths[:-1]:
            self._guard(path, "conf_path", "file")
        self._guard(self.settings["key_dir"], "key_dir", "dir", owners=[uid] if uid >= 0 else [])
        for item in keys(self.settings):
            self._guard(os.path.dirname(item["path"]), "key_dir", "dir", owners=[uid] if uid >= 0 else [])
            self._guard(item["path"], "key_dir", "file", owners=[uid] if uid >= 0 else [])
        previous = {path: read_text(path) for path in self.files}
        changed_files = [path for path, text in self.files.items() if previous[path] != text]
        stale = [path for path in self.ed25519_paths if path not in self.files and os.path.lexists(path)]
        generate = [
            item for item in keys(self.settings) if item["state"] != "retired" and not os.path.exists(item["path"])
        ]
        retire = [item for item in keys(self.settings) if item["state"] == "retired" and os.path.lexists(item["path"])]
        changed = bool(changed_files or generate or retire or stale)
        result: dict[str, Any] = {
            "changed": changed,
            "conf_path": self.conf_path,
            "generated": [f"{item['domain']}/{item['selector']}" for item in generate],
            "deleted": [f"{item['domain']}/{item['selector']}" for item in retire],
            "restarted": False,
            "reloaded": False,
            "diff": {
                "before_header": self.conf_path,
                "after_header": self.conf_path,
                "before": "".join(f"# {path}\n{previous[path] or ''}" for path in self.files)
                + "".join(f"# {path}\n{read_text(path) or ''}" for path in stale),
                "after": "".join(f"# {path}\n{text}" for path, text in self.files.items())
                + "".join(f"# {path}\n(removed)\n" for path in stale),
            },
        }
        if changed_files:
            self.check_candidate()
        touched = Touched()
        if not self.check_mode:
            try:
                for item in generate:
                    self.generate_key(
                        item["path"], self.settings["key_size"], uid, gid, touched, algorithm=item["algorithm"]
                    )
            except (DkimConfigError, OSError) as exc:
                errors = touched.restore()
                note = f" (restoring failed: {'; '.join(errors)})" if errors else ""
                message = exc.msg if isinstance(exc, DkimConfigError) else str(exc)
                raise DkimConfigError(
                    f"creating a DKIM key failed: {message}; the keys created were removed{note}"
                ) from exc
        result["public_keys"] = self.key_records(generate)
        if not self.check_mode:
            result.update(self.apply(changed_files, touched, stale))
            for item in retire:
                os.unlink(item["path"])
        result["warnings"] = list(self.warnings)
        return result

    def _has_user(self) -> bool:
        try:
            self._account(USER)
        except DkimConfigError:
            return False
        return True

    def key_records(self, generate: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
        """The public half of each active and published key (None in check mode for a key not made yet)."""
        pending = {item["path"] for item in generate} if self.check_mode else set()
        records = []
        for item in keys(self.settings):
            if item["state"] == "retired":
                continue
            record: dict[str, Any] = {
                "domain": item["domain"],
                "selector": item["selector"],
                "state": item["state"],
                "key_type": item["algorithm"],
                "path": item["path"],
            }
            if item["path"] in pending:
                record.update(public=None, bits=256 if item["algorithm"] == "ed25519" else self.settings["key_size"])
            else:
                public, bits = self.public_key(item["path"], item["algorithm"])
                if item["algorithm"] == "rsa" and bits is not None and bits < 2048:
                    self.warnings.append(
                        f"{item['path']} is a {bits}-bit key: receivers refuse keys under 2048 bits; retire "
                        f"selector {item['selector']} and publish a new one"
                    )
                record.update(public=public, bits=bits)
            records.append(record)
        return records

    def _ed25519_service(self, changed_files: Sequence[str], stale: Sequence[str], touched: Touched) -> dict[str, Any]:
        """Start, restart, reload or stop the Ed25519 signer after the files changed."""
        result: dict[str, Any] = {}
        if self.unit_path in changed_files or self.unit_path in stale:
            if stale:
                self._systemctl("disable", ED25519_SERVICE)
                self._systemctl("stop", ED25519_SERVICE)
                for path in stale:
                    touched.remember(path)
                    os.unlink(path)
            self._systemctl("daemon-reload")
        if not self.ed25519_files:
            return result
        ed_changed = [path for path in changed_files if path in self.ed25519_files]
        actions = ensure_service(self.run, self._get_bin_path, ED25519_SERVICE)
        if "started" in actions:
            result["ed25519_restarted"] = True
        elif ed_changed:
            conf = ed25519_conf_path(self.conf_path)
            if conf in ed_changed or self.unit_path in ed_changed:
                self._systemctl("restart", ED25519_SERVICE)
                result["ed25519_restarted"] = True
            else:
                self._systemctl("reload", ED25519_SERVICE)
        if self.health_check and (ed_changed or actions):
            result["ed25519_milter_answer"] = self.health(
                self.settings["ed25519_milter_port"], "the OpenDKIM Ed25519 signer"
            )
        return result

    def apply(self, changed_files: Sequence[str], touched: Touched, stale: Sequence[str] = ()) -> dict[str, Any]:
        """Swap the changed files in, restart or reload OpenDKIM (and its Ed25519 signer), check health; roll back."""
        result: dict[str, Any] = {"restarted": False, "reloaded": False}
        conf_changed = self.conf_path in changed_files
        rsa_changed = [path for path in changed_files if path not in self.ed25519_files]
        try:
            self.write_files(changed_files, touched)
        except OSError as exc:
            touched.restore()
            raise DkimConfigError(f"writing the OpenDKIM configuration failed: {exc}; nothing was kept") from exc
        try:
            actions = ensure_service(self.run, self._get_bin_path, SERVICE)
            keys_made = any(state.path not in self.files for state in touched.states)
            if "started" not in actions and (rsa_changed or keys_made):
                if conf_changed:
                    self._systemctl("restart", SERVICE)
                    result["restarted"] = True
                elif rsa_changed:
                    try:
                        self._systemctl("reload", SERVICE)
                        result["reloaded"] = True
                    except HealthCheckError as exc:
                        # Seen on a Debian 12 without procps: the unit's "/bin/kill -USR1 $MAINPID"
                        # does not exist. A restart reads the same files; the health check decides.
                        self.warnings.append(f"{exc}; OpenDKIM was restarted instead")
                        self._systemctl("restart", SERVICE)
                        result["restarted"] = True
            elif "started" in actions:
                result["restarted"] = True
            if self.health_check and (rsa_changed or keys_made or actions):
                result["milter_answer"] = self.health()
            result.update(self._ed25519_service(changed_files, stale, touched))
        except (HealthCheckError, ServiceStateError) as exc:
            errors = touched.restore()
            rollback = "the previous configuration was restored and the keys created by this run removed"
            if errors:
                rollback += f" (but restoring failed: {'; '.join(errors)})"
            try:
                if self.unit_path in changed_files or self.unit_path in stale:
                    self._systemctl("daemon-reload")
                self._systemctl("restart")
                if os.path.exists(self.unit_path):
                    self._systemctl("restart", ED25519_SERVICE)
                elif self.ed25519_files:
                    self._systemctl("stop", ED25519_SERVICE)
                rollback += ", and OpenDKIM restarted"
            except (HealthCheckError, DkimConfigError) as again:
                rollback += f", but {again}"
            raise DkimConfigError(f"health check failed: {exc}; {rollback}", rolled_back=True) from exc
        return result


__all__ = ["DkimConfig", "DkimConfigError", "active_selector", "milter_probe", "render_conf"]
