# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backend of the mail_password module: a Dovecot passwd-file of virtual users.

The whole file is planned in one call, so that thousands of users cost one
read and one write. An existing entry is kept byte for byte when its hash
verifies against the desired password; only a mismatch (or a scheme change)
computes a new hash. Verification and hashing are injected, so the logic is
tested without a host; :func:`system_crypt` and :class:`Doveadm` are the real
implementations.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hmac
import importlib
import secrets
import string
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

# Schemes whose hash is a crypt(3) string that libcrypt can verify and make.
CRYPT_PREFIXES = {"SHA512-CRYPT": "$6$", "SHA256-CRYPT": "$5$", "BLF-CRYPT": "$2", "MD5-CRYPT": "$1$", "CRYPT": ""}
SCHEMES = ("SHA512-CRYPT", "ARGON2ID")
SALT_CHARS = string.ascii_letters + string.digits + "./"
FIELDS = 8  # user:password:uid:gid:gecos:home:shell:extra_fields
REDACTED = "<redacted>"
REDACTED_CHANGED = "<redacted, new hash>"


class MailPasswordError(Exception):
    """The desired users or the existing file cannot be handled."""


def split_scheme(hashed: str) -> tuple[str, str]:
    """Split ``{SCHEME}hash`` into ``(SCHEME, hash)``; a bare hash has scheme ``CRYPT``."""
    if hashed.startswith("{") and "}" in hashed:
        scheme, _sep, rest = hashed[1:].partition("}")
        return scheme.upper(), rest
    return "CRYPT", hashed


# --- crypt(3): libcrypt's crypt_r through ctypes, else the stdlib module, else crypt ---

#: Bytes for one ``struct crypt_data``: 32 KiB in libxcrypt (Debian 11+), 128 KiB in old glibc.
CRYPT_DATA_SIZE = 256 * 1024


def _load_crypt_r() -> Callable[[str, str], str | None] | None:
    """crypt_r(3) with one zeroed ``struct crypt_data`` per thread.

    It is reentrant, and ctypes releases the GIL during the call, so that
    thousands of SHA512-CRYPT verifications can run on every core.
    """
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    try:
        lib = ctypes.CDLL(name)
        crypt_r = lib.crypt_r
    except (OSError, AttributeError):
        return None
    crypt_r.restype = ctypes.c_char_p
    crypt_r.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
    local = threading.local()

    def _crypt(password: str, salt: str) -> str | None:
        data = getattr(local, "data", None)
        if data is None:
            data = local.data = ctypes.create_string_buffer(CRYPT_DATA_SIZE)
        out = crypt_r(password.encode(), salt.encode(), data)
        return out.decode() if out else None

    return _crypt


def _load_crypt() -> Callable[[str, str], str | None] | None:
    reentrant = _load_crypt_r()
    if reentrant is not None:
        return reentrant
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            module = importlib.import_module("crypt")
        except ImportError:
            module = None
    if module is not None:
        return module.crypt
    return None


_CRYPT: Callable[[str, str], str | None] | bool | None = False


def system_crypt() -> Callable[[str, str], str | None] | None:
    """Return a ``crypt(password, salt)`` function of the system, or None."""
    global _CRYPT  # noqa: PLW0603 - cache of the loaded library
    if _CRYPT is False:
        _CRYPT = _load_crypt()
    return _CRYPT  # type: ignore[return-value]


def crypt_verify(crypt: Callable[[str, str], str | None], password: str, hashed: str) -> bool | None:
    """Verify with crypt(3). None when the scheme is not a crypt scheme."""
    scheme, value = split_scheme(hashed)
    if scheme not in CRYPT_PREFIXES or not value:
        return None
    result = crypt(password, value)
    if not result or result.startswith("*"):
        return None
    return hmac.compare_digest(result, value)


def crypt_hash(crypt: Callable[[str, str], str | None], password: str, scheme: str) -> str | None:
    """Make ``{SCHEME}hash`` with crypt(3) and a random salt. None when crypt cannot do the scheme."""
    if scheme != "SHA512-CRYPT":
        return None
    salt = "$6$" + "".join(secrets.choice(SALT_CHARS) for _i in range(16))
    result = crypt(password, salt)
    if not result or not result.startswith(salt):
        return None
    return "{SHA512-CRYPT}" + result


# --- ARGON2ID: libsodium's crypto_pwhash through ctypes (Dovecot itself uses libsodium) ---

#: crypto_pwhash_ALG_ARGON2ID13, and the cost Dovecot's own ARGON2ID hashes carry (t=3, m=64 MiB).
SODIUM_ALG_ARGON2ID13 = 2
ARGON2ID_OPSLIMIT = 3
ARGON2ID_MEMLIMIT = 64 * 1024 * 1024
SODIUM_STRBYTES = 128


class Sodium:
    """ARGON2ID hashes made and verified in this process, so no password is ever on a command line."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib
        lib.crypto_pwhash_str_alg.restype = ctypes.c_int
        lib.crypto_pwhash_str_alg.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulonglong,
            ctypes.c_ulonglong,
            ctypes.c_size_t,
            ctypes.c_int,
        ]
        lib.crypto_pwhash_str_verify.restype = ctypes.c_int
        lib.crypto_pwhash_str_verify.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong]

    @classmethod
    def load(cls) -> Sodium | None:
        """libsodium, or None when it cannot be loaded (then doveadm is used, with the password on stdin)."""
        name = ctypes.util.find_library("sodium") or "libsodium.so.23"
        try:
            lib = ctypes.CDLL(name)
            if lib.sodium_init() < 0:
                return None
            return cls(lib)
        except (OSError, AttributeError):
            return None

    def verify(self, password: str, hashed: str) -> bool | None:
        """Verify an ``{ARGON2ID}`` hash; None for any other scheme."""
        scheme, value = split_scheme(hashed)
        if scheme != "ARGON2ID" or not value.startswith("$argon2id$"):
            return None
        secret = password.encode()
        return self._lib.crypto_pwhash_str_verify(value.encode(), secret, len(secret)) == 0

    def hash(self, password: str, scheme: str) -> str | None:
        """Make ``{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$...``; None for any other scheme."""
        if scheme != "ARGON2ID":
            return None
        out = ctypes.create_string_buffer(SODIUM_STRBYTES)
        secret = password.encode()
        rc = self._lib.crypto_pwhash_str_alg(
            out, secret, len(secret), ARGON2ID_OPSLIMIT, ARGON2ID_MEMLIMIT, SODIUM_ALG_ARGON2ID13
        )
        if rc != 0:
            raise MailPasswordError("libsodium could not make an ARGON2ID hash (out of memory?)")
        return "{ARGON2ID}" + out.value.decode()


_SODIUM: Sodium | bool | None = False


def system_sodium() -> Sodium | None:
    """libsodium of the system (loaded once), or None."""
    global _SODIUM  # noqa: PLW0603 - cache of the loaded library
    if _SODIUM is False:
        _SODIUM = Sodium.load()
    return _SODIUM  # type: ignore[return-value]


class Doveadm:
    """``doveadm pw``: the fallback for schemes (or hosts) that neither crypt(3) nor libsodium handle.

    The password never goes on doveadm's command line: doveadm reads it from its terminal or,
    without one, from stdin, so it runs in a new session (``setsid -w``, no controlling terminal)
    with the password on stdin (twice when hashing: doveadm asks again to confirm it).
    """

    def __init__(self, run_command: Callable[..., Any], binary: str | None, setsid: str | None = None) -> None:
        self._run = run_command
        self._binary = binary
        self._setsid = setsid

    def _argv(self, *args: str) -> list[str]:
        if not self._binary:
            raise MailPasswordError("doveadm is not installed, and neither crypt(3) nor libsodium handle this scheme")
        if not self._setsid:
            raise MailPasswordError(
                "setsid (util-linux) was not found: it is needed to hand a password to doveadm on stdin"
            )
        return [self._setsid, "-w", self._binary, "pw", *args]

    def verify(self, password: str, hashed: str) -> bool:
        rc, _out, _err = self._run(self._argv("-t", hashed), data=password, environ_update={"LC_ALL": "C"})
        return rc == 0

    def hash(self, password: str, scheme: str) -> str:
        rc, out, err = self._run(
            self._argv("-s", scheme), data=f"{password}\n{password}", environ_update={"LC_ALL": "C"}
        )
        value = out.strip().splitlines()[-1] if out.strip() else ""
        if rc != 0 or not value.startswith("{" + scheme + "}"):
            raise MailPasswordError(f"doveadm pw -s {scheme} failed: {err.strip() or 'no hash printed'}")
        return value


def default_backends(
    run_command: Callable[..., Any],
    doveadm_bin: str | None,
    setsid_bin: str | None = None,
    *,
    crypt: Callable[[str, str], str | None] | bool | None = True,
    sodium: Sodium | bool | None = True,
) -> tuple[Callable[[str, str], bool], Callable[[str, str], str]]:
    """Return (verify, make_hash): crypt(3) for crypt schemes, libsodium for ARGON2ID, doveadm otherwise.

    Both may be called from several threads (crypt_r, libsodium, or one doveadm process per call).
    *crypt* and *sodium* default to the system's (True); tests pass None to force the doveadm path.
    """
    crypt_fn = system_crypt() if crypt is True else crypt
    sodium_lib = system_sodium() if sodium is True else sodium
    doveadm = Doveadm(run_command, doveadm_bin, setsid_bin)

    def verify(password: str, hashed: str) -> bool:
        if crypt_fn:
            result = crypt_verify(crypt_fn, password, hashed)  # type: ignore[arg-type]
            if result is not None:
                return result
        if sodium_lib:
            result = sodium_lib.verify(password, hashed)  # type: ignore[union-attr]
            if result is not None:
                return result
        return doveadm.verify(password, hashed)

    def make_hash(password: str, scheme: str) -> str:
        if crypt_fn:
            result = crypt_hash(crypt_fn, password, scheme)  # type: ignore[arg-type]
            if result is not None:
                return result
        if sodium_lib:
            made = sodium_lib.hash(password, scheme)  # type: ignore[union-attr]
            if made is not None:
                return made
        return doveadm.hash(password, scheme)

    return verify, make_hash


# --- the passwd-file ---


@dataclass
class Entry:
    name: str
    password: str
    rest: list[str] = field(default_factory=lambda: [""] * (FIELDS - 2))

    def line(self, password: str | None = None) -> str:
        return ":".join([self.name, self.password if password is None else password, *self.rest])


def parse(text: str) -> tuple[list[Entry], list[str]]:
    """Parse a passwd-file into entries; comment and blank lines are returned apart (and dropped on write)."""
    entries: list[Entry] = []
    other: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            other.append(line)
            continue
        parts = line.split(":", FIELDS - 1)
        parts += [""] * (FIELDS - len(parts))
        entries.append(Entry(parts[0], parts[1], parts[2:]))
    return entries, other


@dataclass
class User:
    name: str
    password: str | None = None
    hash: str | None = None
    extra_fields: str = ""

    def validate(self) -> None:
        bad = set(":\n\r\t ") & set(self.name)
        if not self.name or bad:
            raise MailPasswordError(f"user name {self.name!r} is empty or contains ':' or whitespace")
        if (self.password is None) == (self.hash is None):
            raise MailPasswordError(f"user {self.name}: give exactly one of password and hash")
        if self.password is not None and (not self.password or "\n" in self.password):
            raise MailPasswordError(f"user {self.name}: the password is empty or contains a newline")
        if self.hash is not None and (not self.hash.startswith("{") or set(":\n\r") & set(self.hash)):
            raise MailPasswordError(f"user {self.name}: hash must look like {{SCHEME}}value, without ':'")
        if "\n" in self.extra_fields or "\r" in self.extra_fields:
            raise MailPasswordError(f"user {self.name}: extra_fields contains a newline")


@dataclass
class Plan:
    content: str
    changed: bool
    added: list[str]
    updated: list[str]
    removed: list[str]
    before_redacted: str
    after_redacted: str


def _redact(entry: Entry, marker: str = REDACTED) -> str:
    scheme = split_scheme(entry.password)[0]
    shown = "{" + scheme + "}" + marker if entry.password else ""
    return entry.line(shown)


def _map(workers: int, func: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``[func(item) for item in items]``, on *workers* threads when there is enough work."""
    if workers <= 1 or len(items) < 2 * workers:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(func, items, chunksize=max(1, len(items) // (workers * 8))))


def plan(
    existing: str,
    users: list[User],
    *,
    scheme: str,
    exclusive: bool,
    verify: Callable[[str, str], bool],
    make_hash: Callable[[str, str], str],
    workers: int = 1,
) -> Plan:
    """Compute the new passwd-file. Hashes are computed only for new users and mismatches.

    Verification and hashing (a few milliseconds each for SHA512-CRYPT) run on
    *workers* threads; *verify* and *make_hash* must then be thread-safe.
    """
    if scheme not in SCHEMES:
        raise MailPasswordError(f"scheme must be one of {', '.join(SCHEMES)} (got {scheme!r})")
    seen: set[str] = set()
    for user in users:
        user.validate()
        if user.name in seen:
            raise MailPasswordError(f"user {user.name} is listed twice")
        seen.add(user.name)

    entries, _other = parse(existing)
    current = {entry.name: entry for entry in entries}
    desired = {user.name: user for user in users}
    added: list[str] = []
    updated: list[str] = []
    out: list[Entry] = []
    after_lines: list[str] = []

    # The expensive part first, in parallel: verify the stored hashes of users
    # given a password, then hash the passwords that did not verify.
    to_verify = [
        user
        for user in users
        if user.password is not None
        and (old := current.get(user.name)) is not None
        and old.password
        and split_scheme(old.password)[0] == scheme
    ]
    results = _map(workers, lambda u: verify(u.password or "", current[u.name].password), to_verify)
    verified = {user.name for index, user in enumerate(to_verify) if results[index]}
    to_hash = [user for user in users if user.password is not None and user.name not in verified]
    hashes = _map(workers, lambda u: make_hash(u.password or "", scheme), to_hash)
    new_hashes = {user.name: hashes[index] for index, user in enumerate(to_hash)}

    def target(user: User, old: Entry | None) -> tuple[Entry, bool]:
        rest = [""] * (FIELDS - 2)
        rest[-1] = user.extra_fields
        if user.hash is not None:
            password = user.hash
            fresh = old is None or old.password != password
        elif user.name in verified and old is not None:
            password = old.password
            fresh = False
        else:
            password = new_hashes[user.name]
            fresh = True
        return Entry(user.name, password, rest), fresh

    # Existing order first (stable diffs), then new users in the order given.
    names = [e.name for e in entries if e.name in desired or not exclusive]
    names += [u.name for u in users if u.name not in current]
    for name in dict.fromkeys(names):
        old = current.get(name)
        user = desired.get(name)
        if user is None and old is not None:
            out.append(old)
            after_lines.append(_redact(old))
            continue
        if user is None:
            continue
        new, fresh = target(user, old)
        out.append(new)
        after_lines.append(_redact(new, REDACTED_CHANGED if fresh else REDACTED))
        if old is None:
            added.append(name)
        elif fresh or new.line() != old.line():
            updated.append(name)
    removed = [e.name for e in entries if exclusive and e.name not in desired]
    content = "".join(entry.line() + "\n" for entry in out)
    return Plan(
        content=content,
        changed=content != existing,
        added=added,
        updated=updated,
        removed=removed,
        before_redacted="".join(_redact(e) + "\n" for e in entries),
        after_redacted="".join(line + "\n" for line in after_lines),
    )
