# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backend of the tls_certificate module and of the tls_certificate_args filter.

A self-signed certificate is made and checked with the ``openssl`` command line tool, which
every Debian mail host has (postfix depends on ssl-cert, which depends on openssl;
dovecot-core depends on openssl): no Python cryptography library is needed on the host.
No secret is ever put on a command line: the key is generated into a file by
``openssl genpkey`` and only read by ``openssl`` itself.

The validation functions are shared by the filter (on the controller, before any host task)
and the module (for playbooks that call it directly); every error names the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import (
    PathPolicyError,
    confined_path,
    guard,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate import host_name_problem
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched

ENV = {"LC_ALL": "C"}
KEY_BITS = 2048
KEY_MODE = 0o600
CERT_MODE = 0o644
DIR_MODE = 0o755
#: A certificate that expires within this many days is renewed (self-signed) or warned about.
RENEW_BEFORE_DAYS = 30
MAX_DAYS = 36500
MAX_HOSTNAME = 253

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_PEM_RE = re.compile(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", re.S)


class CertificateError(Exception):
    """The request is invalid or the certificate cannot be provided; the message names the variable."""


# --------------------------------------------------------------------------- validation


def _describe(value: Any) -> str:
    return type(value).__name__ if value is not None else "null"


def _hostname_problem(value: str, wildcard: bool) -> str | None:
    return host_name_problem(value, wildcard=wildcard, ip_hint="give an IP address as IP:<address>")


def validate_hostname(value: Any, name: str, wildcard: bool = False) -> str:
    """Return the host name *value* as given, or raise naming *name*."""
    if not isinstance(value, str):
        raise CertificateError(f"{name}: expected a host name, got {_describe(value)}")
    problem = _hostname_problem(value, wildcard)
    if problem:
        raise CertificateError(f"{name}: {value!r} is not a valid host name: {problem}")
    return value


def alt_name(value: Any, name: str) -> str:
    """Return one subjectAltName as ``DNS:<name>`` or ``IP:<address>``, or raise naming *name*.

    Entries with a ``DNS:`` or ``IP:`` prefix keep it; a bare IP address gets ``IP:`` and any other
    entry ``DNS:``. DNS names may start with a ``*.`` wildcard label.
    """
    if not isinstance(value, str):
        raise CertificateError(f"{name}: expected a host name or IP address, got {_describe(value)}")
    if value.startswith("IP:"):
        try:
            return "IP:" + str(ipaddress.ip_address(value[3:]))
        except ValueError:
            raise CertificateError(f"{name}: {value!r} is not a valid IP address") from None
    if value.startswith("DNS:"):
        return "DNS:" + validate_hostname(value[4:], name, wildcard=True)
    try:
        return "IP:" + str(ipaddress.ip_address(value))
    except ValueError:
        pass
    return "DNS:" + validate_hostname(value, name, wildcard=True)


def subject_alt_names(common_name: str, extra: Any, name: str, via: str = "") -> list[str]:
    """Return ``DNS:<common_name>`` followed by the *extra* names, prefixed, without duplicates.

    Errors name ``<name>[<index>]<via>``.
    """
    if extra is None:
        extra = []
    if not isinstance(extra, list):
        raise CertificateError(f"{name}{via}: expected a list of host names or IP addresses, got {_describe(extra)}")
    names: list[str] = []
    for index, value in enumerate([f"DNS:{common_name}", *extra]):
        entry = alt_name(value, f"{name}{via}" if index == 0 else f"{name}[{index - 1}]{via}")
        if name_key(entry) not in {name_key(n) for n in names}:
            names.append(entry)
    return names


def validate_dir(value: Any, name: str) -> str:
    """Return the absolute directory *value*, or raise naming *name*."""
    if not isinstance(value, str) or not value:
        raise CertificateError(f"{name}: expected an absolute directory path, got {value!r}")
    if not value.startswith("/"):
        raise CertificateError(f"{name}: {value!r} is not an absolute path")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise CertificateError(f"{name}: {value!r} contains a newline or another control character")
    if ".." in value.split("/"):
        raise CertificateError(f"{name}: {value!r} must not contain '..'")
    return value.rstrip("/") or "/"


def validate_days(value: Any, name: str) -> int:
    """Return *value* as a number of days from 1 to MAX_DAYS, or raise naming *name*."""
    if isinstance(value, bool):
        raise CertificateError(f"{name}: expected a number of days from 1 to {MAX_DAYS}, got {value!r}")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise CertificateError(f"{name}: expected a number of days from 1 to {MAX_DAYS}, got {value!r}")
    return value


def _file_names(prefix: str) -> tuple[str, str]:
    head = f"{prefix}_" if prefix else ""
    return f"{head}cert_file", f"{head}key_file"


def check_pair(cert_file: Any, key_file: Any, prefix: str) -> bool:
    """Return True when the user gives both files, False when neither; raise when only one is given."""
    cert_file, key_file = cert_file or "", key_file or ""
    if bool(cert_file) != bool(key_file):
        cert_name, key_name = _file_names(prefix)
        raise CertificateError(
            f"{cert_name} and {key_name} must be set together (got cert '{cert_file}', key '{key_file}')."
        )
    return bool(cert_file)


def module_args(request: Any, prefix: str = "certificate") -> dict[str, Any]:
    """Check the certificate role's request and return the tls_certificate module's arguments.

    *request* holds ``cert_file``, ``key_file``, ``common_name``, ``subject_alt_names``, ``dir`` and
    ``days`` (the role's ``certificate_*`` variables). With user-supplied files only the pair is
    checked: the other values are not used then (the common name defaults to the FQDN fact, which
    need not be a valid host name on a host with its own certificate).
    """
    if not isinstance(request, dict):
        raise CertificateError(f"expected the certificate request as a dict, got {_describe(request)}")
    if not isinstance(prefix, str) or not prefix:
        raise CertificateError(f"certificate_variable_prefix: expected a non-empty string, got {prefix!r}")
    via = "" if prefix == "certificate" else f" (from the {prefix}_* variables)"
    cert_file, key_file = request.get("cert_file") or "", request.get("key_file") or ""
    for value, var in ((cert_file, "cert_file"), (key_file, "key_file")):
        if not isinstance(value, str):
            raise CertificateError(f"{prefix}_{var}: expected a path, got {_describe(value)}")
    args: dict[str, Any] = {"variable_prefix": prefix}
    if check_pair(cert_file, key_file, prefix):
        # Read, not written, so they may be anywhere, but they reach Dovecot's and Postfix's files.
        for value, var in ((cert_file, "cert_file"), (key_file, "key_file")):
            _confined(value, f"{prefix}_{var}", "user_file")
        return {**args, "cert_file": cert_file, "key_file": key_file}
    common_name = validate_hostname(request.get("common_name"), f"certificate_common_name{via}")
    directory = validate_dir(request.get("dir"), f"certificate_dir{via}")
    return {
        **args,
        "common_name": common_name,
        "subject_alt_names": subject_alt_names(
            common_name, request.get("subject_alt_names"), "certificate_subject_alt_names", via
        )[1:],
        "dir": _confined(directory, f"certificate_dir{via}", "certificate_dir"),
        "days": validate_days(request.get("days"), f"certificate_days{via}"),
    }


def _confined(value: str, name: str, purpose: str) -> str:
    """mail_paths' policy for *purpose*, as a CertificateError."""
    try:
        return confined_path(value, name, purpose)
    except PathPolicyError as exc:
        raise CertificateError(str(exc)) from None


# --------------------------------------------------------------------------- reading certificates


def name_key(entry: str) -> str:
    """Return a subjectAltName entry in the form used to compare names (DNS case-insensitive, IPs canonical)."""
    kind, value = entry.split(":", 1) if ":" in entry else (entry, "")
    if kind == "DNS":
        return "DNS:" + value.lower()
    if kind in ("IP", "IP Address"):
        try:
            return "IP:" + str(ipaddress.ip_address(value.strip()))
        except ValueError:
            return "IP:" + value
    return entry


def parse_rfc2253(text: str) -> list[tuple[str, str]]:
    """Split an RFC 2253 distinguished name (as ``openssl -nameopt RFC2253`` prints it) into (type, value)."""
    parts: list[str] = []
    current = ""
    escaped = False
    for char in text:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",+":
            parts.append(current)
            current = ""
        else:
            current += char
    if current or parts:
        parts.append(current)
    pairs = []
    for part in parts:
        kind, value = part.split("=", 1) if "=" in part else (part, "")
        pairs.append((kind.strip(), value))
    return pairs


def parse_not_after(text: str) -> datetime:
    """Parse openssl's ``notAfter=Mar  6 05:25:01 2029 GMT`` date (the part after ``=``)."""
    try:
        month, day, clock, year, zone = text.split()
        hour, minute, second = (int(v) for v in clock.split(":"))
        if zone != "GMT":
            raise ValueError(zone)
        return datetime(int(year), _MONTHS[month], int(day), hour, minute, second, tzinfo=UTC)
    except (KeyError, ValueError) as exc:
        raise CertificateError(f"cannot read the expiry date {text!r} from openssl") from exc


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def certificate_renewal(not_after: str | None, renew_before_days: int) -> float | None:
    """When a certificate that expires at *not_after* (``iso``) comes within its renewal time, in seconds
    since the epoch; 0 (already) when its expiry is unknown."""
    if not not_after:
        return 0.0
    expiry = datetime.strptime(not_after, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (expiry - timedelta(days=renew_before_days)).timestamp()


@dataclass
class CertInfo:
    """What ``openssl x509 -noout -subject -enddate -ext subjectAltName [-pubkey]`` says of a certificate."""

    subject: list[tuple[str, str]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    not_after: datetime | None = None
    public_key: str | None = None

    @property
    def common_name(self) -> str | None:
        values = [value for kind, value in self.subject if kind == "CN"]
        return values[-1] if values else None

    @property
    def subject_text(self) -> str:
        return ",".join(f"{kind}={value}" for kind, value in self.subject)


def parse_x509(text: str) -> CertInfo:
    """Parse the output of :func:`x509_argv` (the order of its parts does not matter)."""
    info = CertInfo()
    pem = _PEM_RE.search(text)
    if pem:
        info.public_key = normalize_pem(pem.group(0))
        text = text[: pem.start()] + text[pem.end() :]
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("subject="):
            info.subject = parse_rfc2253(line[len("subject=") :].strip())
        elif line.startswith("notAfter="):
            info.not_after = parse_not_after(line[len("notAfter=") :])
        elif line.startswith("X509v3 Subject Alternative Name"):
            for entry_line in lines[index + 1 :]:
                if not entry_line.startswith((" ", "\t")):
                    break
                info.names.extend(name_key(e.strip()) for e in entry_line.split(",") if e.strip())
    if info.not_after is None:
        raise CertificateError("openssl printed no expiry date for the certificate")
    return info


def normalize_pem(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines() if line.strip())


def x509_argv(openssl: str, path: str, public_key: bool) -> list[str]:
    argv = [openssl, "x509", "-in", path, "-noout", "-nameopt", "RFC2253", "-subject", "-enddate"]
    argv += ["-ext", "subjectAltName"]
    return argv + (["-pubkey"] if public_key else [])


def request_config(common_name: str, names: list[str]) -> str:
    """Return the ``openssl req -config`` text of a self-signed certificate for *common_name* and *names*.

    The values were validated (host names and IP addresses only), so nothing needs quoting.
    """
    return (
        "[req]\n"
        "prompt = no\n"
        "utf8 = yes\n"
        "distinguished_name = dn\n"
        "x509_extensions = ext\n"
        "[dn]\n"
        f"CN = {common_name}\n"
        "[ext]\n"
        f"subjectAltName = {','.join(names)}\n"
        "subjectKeyIdentifier = hash\n"
    )


# --------------------------------------------------------------------------- the backend


@dataclass
class _FileState:
    path: str
    exists: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None


class TlsCertificate:
    """Provide a self-signed certificate, or check user-supplied files, with the openssl CLI.

    *run_command* is AnsibleModule.run_command (or a test double); *openssl* the path of the
    binary, or None when it is not installed.
    """

    def __init__(
        self,
        *,
        run_command: Callable[..., Any],
        openssl: str | None,
        check_mode: bool = False,
        renew_before_days: int = RENEW_BEFORE_DAYS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        uid: int = 0,
        gid: int = 0,
        chown: Callable[[str, int, int], Any] | None = None,
    ) -> None:
        self._run = run_command
        self.openssl = openssl
        self.check_mode = check_mode
        self.renew_before = timedelta(days=renew_before_days)
        self._now = now
        self.uid = uid
        self.gid = gid
        self._chown = chown or os.chown
        self.actions: list[str] = []
        self.warnings: list[str] = []
        self.diff: dict[str, str] = {"before": "", "after": ""}

    # -- helpers

    def _openssl(self, *args: str) -> tuple[int, str, str]:
        if not self.openssl:
            raise CertificateError(
                "the openssl command is not installed on the host; install the openssl package "
                "(postfix and dovecot-core depend on it)"
            )
        rc, out, err = self._run([self.openssl, *args], environ_update=ENV)
        return rc, out, err

    def _must(self, *args: str) -> str:
        rc, out, err = self._openssl(*args)
        if rc != 0:
            raise CertificateError(f"openssl {args[0]} failed (rc={rc}): {(err or out).strip()}")
        return out

    def _read_cert(self, path: str, public_key: bool) -> CertInfo | None:
        rc, out, _err = self._run(x509_argv(str(self.openssl), path, public_key), environ_update=ENV)
        if rc != 0:
            return None
        try:
            return parse_x509(out)
        except CertificateError:
            return None

    def _public_key(self, path: str) -> str | None:
        # "-passin pass:" is the empty passphrase: an encrypted key fails instead of prompting.
        rc, out, _err = self._openssl("pkey", "-in", path, "-pubout", "-passin", "pass:")
        return normalize_pem(out) if rc == 0 and "BEGIN PUBLIC KEY" in out else None

    @staticmethod
    def _stat(path: str, want_dir: bool) -> _FileState:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return _FileState(path)
        if want_dir != stat.S_ISDIR(st.st_mode) or not (want_dir or stat.S_ISREG(st.st_mode)):
            raise CertificateError(f"{path} exists and is not a {'directory' if want_dir else 'regular file'}")
        return _FileState(path, True, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)

    def _fix(self, state: _FileState, mode: int, what: str) -> None:
        """Give an existing file or directory *mode* and root ownership."""
        wrong = []
        if state.mode != mode:
            wrong.append(f"mode {state.mode:04o} -> {mode:04o}")
        if (state.uid, state.gid) != (self.uid, self.gid):
            wrong.append(f"owner {state.uid}:{state.gid} -> {self.uid}:{self.gid}")
        if not wrong:
            return
        self.actions.append(f"fix {what} {state.path} ({', '.join(wrong)})")
        if not self.check_mode:
            if (state.uid, state.gid) != (self.uid, self.gid):
                self._chown(state.path, self.uid, self.gid)
            os.chmod(state.path, mode)

    def _install(self, tmp: str, path: str, mode: int) -> None:
        """Give *tmp* its mode and owner, then rename it over *path* (same directory, so atomic)."""
        os.chmod(tmp, mode)
        self._chown(tmp, self.uid, self.gid)
        os.rename(tmp, path)

    def _describe(self, label: str, path: str, info: CertInfo | None, state: str) -> str:
        lines = [f"{label}: {path} ({state})"]
        if info is not None:
            lines += [
                f"subject: {info.subject_text}",
                f"names: {', '.join(info.names)}",
                f"not_after: {iso(info.not_after)}",
            ]
        return "\n".join(lines) + "\n"

    # -- self-signed

    def self_signed(self, common_name: str, names: list[str], directory: str, days: int) -> dict[str, Any]:
        """Ensure *directory*, its RSA key and a self-signed certificate for *common_name* and *names*.

        *names* are the full subjectAltNames (``DNS:<common_name>`` first), as :func:`subject_alt_names`
        returns them.
        """
        key_path = os.path.join(directory, f"{common_name}.key")
        cert_path = os.path.join(directory, f"{common_name}.crt")
        # Before anything is created, chowned or chmodded: no symlink, foreign owner or writable tree on the way.
        for path, name, kind in (
            (directory, "dir", "dir"),
            (key_path, "dir (the key)", "file"),
            (cert_path, "dir (the certificate)", "file"),
        ):
            guard(CertificateError, path, name, kind=kind)
        dir_state = self._stat(directory, want_dir=True)
        key_state = self._stat(key_path, want_dir=False) if dir_state.exists else _FileState(key_path)
        cert_state = self._stat(cert_path, want_dir=False) if dir_state.exists else _FileState(cert_path)

        key_public = self._public_key(key_path) if key_state.exists else None
        key_reason = None if key_public else "unreadable" if key_state.exists else "missing"
        info = self._read_cert(cert_path, public_key=True) if cert_state.exists else None
        cert_reason = self._cert_problem(cert_state, info, key_public, common_name, names)
        before = self._describe("key", key_path, None, key_reason or "present")
        before += self._describe("certificate", cert_path, info, "present" if info else cert_state_text(cert_state))

        touched = Touched()
        if not self.check_mode:
            # The directory, key and certificate as they are now: a failure below puts them back exactly.
            touched.remember_dirs(directory)
            touched.remember(key_path)
            touched.remember(cert_path)
        try:
            info = self._self_signed_changes(
                dir_state=dir_state,
                key_state=key_state,
                cert_state=cert_state,
                key_reason=key_reason,
                cert_reason=cert_reason,
                info=info,
                common_name=common_name,
                names=names,
                days=days,
            )
        except (CertificateError, OSError) as exc:
            errors = touched.restore()
            restored = f"restoring failed: {'; '.join(errors)}" if errors else "the previous files were restored"
            raise CertificateError(f"{exc}; {restored}") from exc

        would = "would be generated" if self.check_mode else "generated"
        after = self._describe("key", key_path, None, would if key_reason else "present")
        after += self._describe("certificate", cert_path, info, would if cert_reason else "present")
        self.diff = {"before": before, "after": after}
        return {
            "changed": bool(self.actions),
            "cert": cert_path,
            "key": key_path,
            "selfsigned": True,
            "common_name": common_name,
            "names": info.names if info else [],
            "not_after": iso(info.not_after) if info else None,
            "actions": self.actions,
        }

    def _self_signed_changes(
        self,
        *,
        dir_state: _FileState,
        key_state: _FileState,
        cert_state: _FileState,
        key_reason: str | None,
        cert_reason: str | None,
        info: CertInfo | None,
        common_name: str,
        names: list[str],
        days: int,
    ) -> CertInfo | None:
        """Create or fix the directory, key and certificate as planned by self_signed; return the certificate's info."""
        directory = dir_state.path
        key_path = key_state.path
        cert_path = cert_state.path
        if not dir_state.exists:
            self.actions.append(f"create directory {directory}")
            if not self.check_mode:
                os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
                os.chmod(directory, DIR_MODE)
                self._chown(directory, self.uid, self.gid)
        else:
            self._fix(dir_state, DIR_MODE, "directory")
        if key_reason:
            self.actions.append(f"generate key {key_path} ({key_reason})")
        else:
            self._fix(key_state, KEY_MODE, "key")
        if cert_reason:
            self.actions.append(f"generate certificate {cert_path} ({cert_reason})")
            if self.check_mode:
                info = CertInfo([("CN", common_name)], [name_key(n) for n in names], self._now() + timedelta(days=days))
            else:
                info = self._generate(
                    existing_key=None if key_reason else key_path,
                    key_path=key_path,
                    cert_path=cert_path,
                    common_name=common_name,
                    names=names,
                    days=days,
                )
        else:
            self._fix(cert_state, CERT_MODE, "certificate")
        return info

    def _cert_problem(
        self, state: _FileState, info: CertInfo | None, key_public: str | None, common_name: str, names: list[str]
    ) -> str | None:
        """Return why the certificate must be (re)generated, or None when it is kept."""
        if not state.exists:
            return "missing"
        if info is None:
            return "unreadable"
        if key_public is None:
            return "new key"
        if info.public_key != key_public:
            return "does not match the key"
        if [(k, v.lower()) for k, v in info.subject] != [("CN", common_name.lower())]:
            return f"subject {info.subject_text} differs from CN={common_name}"
        wanted = sorted({name_key(n) for n in names})
        if sorted(set(info.names)) != wanted:
            return f"names {', '.join(info.names) or '(none)'} differ from {', '.join(wanted)}"
        if info.not_after is None or info.not_after - self._now() < self.renew_before:
            return f"expires {iso(info.not_after)}, within {self.renew_before.days} days"
        return None

    def _generate(
        self, *, existing_key: str | None, key_path: str, cert_path: str, common_name: str, names: list[str], days: int
    ) -> CertInfo:
        """Make the missing key and the certificate in a private temporary directory, then move them in."""
        directory = os.path.dirname(cert_path)
        tmp = tempfile.mkdtemp(prefix=".tls_certificate.", dir=directory)
        try:
            key = existing_key or os.path.join(tmp, "key.pem")
            if existing_key is None:
                self._must("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{KEY_BITS}", "-out", key)
                os.chmod(key, KEY_MODE)
            config = os.path.join(tmp, "req.cnf")
            with open(config, "w", encoding="utf-8") as handle:
                handle.write(request_config(common_name, names))
            cert = os.path.join(tmp, "cert.pem")
            self._must(
                "req", "-new", "-x509", "-config", config, "-key", key, "-sha256", "-days", str(days), "-out", cert
            )
            info = self._read_cert(cert, public_key=False)
            if info is None:
                raise CertificateError(f"openssl made a certificate for {cert_path} that it cannot read back")
            if existing_key is None:
                self._install(key, key_path, KEY_MODE)
            self._install(cert, cert_path, CERT_MODE)
            return info
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- user-supplied

    def user_supplied(self, cert_file: str, key_file: str, prefix: str) -> dict[str, Any]:
        """Check that both files exist; read the certificate's names and expiry when openssl can."""
        cert_name, key_name = _file_names(prefix)
        missing = [
            f"{name}: file {path} does not exist on this host"
            for name, path in ((cert_name, cert_file), (key_name, key_file))
            if not os.path.exists(path)
        ]
        if missing:
            raise CertificateError("; ".join(missing))
        info = None
        if self.openssl:
            info = self._read_cert(cert_file, public_key=True)
            if info is None:
                self.warnings.append(f"{cert_name}: openssl cannot read {cert_file} as a PEM certificate")
            else:
                self._warn_user_cert(info, cert_name, cert_file, key_name, key_file)
        text = self._describe("certificate", cert_file, info, "user-supplied")
        self.diff = {"before": text, "after": text}
        return {
            "changed": False,
            "cert": cert_file,
            "key": key_file,
            "selfsigned": False,
            "common_name": info.common_name if info else None,
            "names": info.names if info else [],
            "not_after": iso(info.not_after) if info else None,
            "actions": [],
        }

    def _warn_user_cert(self, info: CertInfo, cert_name: str, cert_file: str, key_name: str, key_file: str) -> None:
        if info.not_after is None:
            return
        left = info.not_after - self._now()
        if left <= timedelta(0):
            self.warnings.append(f"{cert_name}: the certificate {cert_file} expired on {iso(info.not_after)}")
        elif left < self.renew_before:
            self.warnings.append(
                f"{cert_name}: the certificate {cert_file} expires on {iso(info.not_after)}, "
                f"within {self.renew_before.days} days"
            )
        key_public = self._public_key(key_file)
        if key_public is None:
            self.warnings.append(f"{key_name}: openssl cannot read {key_file} as an unencrypted private key")
        elif key_public != info.public_key:
            self.warnings.append(f"{key_name}: {key_file} is not the private key of {cert_file}")


def cert_state_text(state: _FileState) -> str:
    return "unreadable" if state.exists else "missing"
