# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The srs_config backend: postsrsd's secret and settings, checked, swapped, restarted, rolled back.

``SrsConfig.execute``:

1. validates the settings (:mod:`srs_settings`) and checks the paths on the host (mail_paths);
2. creates the secret when there is none, ON THE HOST (32 random bytes, base64, mode 0600, owner
   root: postsrsd reads it before it drops privileges); an existing secret is never regenerated,
   and its content is never returned or shown in a diff;
3. when ``/etc/default/postsrsd`` differs: postsrsd has no configuration checker, so the candidate
   is checked the way Debian's launcher reads it: ``/bin/sh`` sources it in a subshell and every
   value it reads back must be the rendered one (a file that would run something, or set anything
   else, is refused); then it is swapped in atomically and postsrsd restarted (it reads its
   settings only at start);
4. health: a real lookup on both tables (Postfix's tcp_table protocol): the forward table must
   rewrite ``postmaster-health@srs-health.invalid`` into an SRS address of the SRS domain and the
   reverse table must turn that back; otherwise the previous file (and the absence of a secret
   this run created) comes back and postsrsd is restarted on it.

Every side effect is an injected callable, so that the failure paths are unit tested without a host.
"""

from __future__ import annotations

import base64
import os
import socket
import stat
import tempfile
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import quote, unquote

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.call_record import Footprint
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import ConfigModuleError
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import guard
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import (
    read_text,
    replace_keeping_mode,
    set_owner_mode,
    write_atomically,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import (
    HealthCheckError,
    ServiceBackend,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.srs.srs_settings import (
    SrsSettingsError,
    check_plain_path,
    check_settings,
    expected_values,
    render_defaults,
)

DEFAULT_DEFAULTS = "/etc/default/postsrsd"
DEFAULT_SECRET = "/etc/postsrsd.secret"
SERVICE = "postsrsd"
#: The address the health check rewrites: a reserved name (RFC 2606), never a real sender.
HEALTH_ADDRESS = "postmaster-health@srs-health.invalid"
SECRET_BYTES = 32


class SrsConfigError(ConfigModuleError):
    """Validation, the candidate check, the swap or the health check failed."""


# -- Postfix's tcp_table protocol --------------------------------------------------------


def encode_key(key: str) -> str:
    """A tcp_table request key: %XX for whitespace, '%', '+' and anything not printable ASCII."""
    return quote(key, safe="!\"#$&'()*,-./:;<=>?@[\\]^_`{|}~")


def parse_reply(line: str) -> tuple[int, str]:
    """``200 <value>``, ``500 <reason>`` or ``400 <reason>`` into (code, decoded text)."""
    code, _sep, text = line.rstrip("\r\n").partition(" ")
    if not code.isdigit() or len(code) != 3:
        raise HealthCheckError(f"the table answered {line.strip()[:200]!r}, not a tcp_table reply")
    return int(code), unquote(text)


def tcp_table_lookup(host: str, port: int, key: str, timeout: float) -> tuple[int, str]:
    """One ``get <key>`` on the tcp_table server at *host*:*port*."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(f"get {encode_key(key)}\n".encode())
        data = b""
        while not data.endswith(b"\n") and len(data) < 4096:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return parse_reply(data.decode("utf-8", "replace"))


class SrsConfig(ServiceBackend):
    """postsrsd's secret and settings, applied safely."""

    # The result of a call that changed nothing (see config_module.unchanged_result).
    UNCHANGED: ClassVar[dict[str, Any]] = {
        "secret_generated": False,
        "secret_mode_fixed": False,
        "restarted": False,
        "lookup": None,
    }

    def __init__(
        self,
        *,
        settings: Mapping[str, Any],
        defaults_path: str = DEFAULT_DEFAULTS,
        secret_path: str = DEFAULT_SECRET,
        lookup: Callable[[str, int, str, float], tuple[int, str]] = tcp_table_lookup,
        random_bytes: Callable[[int], bytes] = os.urandom,
        trust: Any = None,
        **common: Any,
    ) -> None:
        try:
            self.settings = check_settings(settings)
            self.defaults_path = check_plain_path(defaults_path, "defaults_path")
            self.secret_path = check_plain_path(secret_path, "secret_path")
            self.text = render_defaults(self.settings, self.secret_path)
            # What the launcher's shell must read back from the candidate (the check compares with this).
            self.expected = expected_values(self.text)
        except SrsSettingsError as exc:
            raise SrsConfigError(f"{exc}; nothing was changed") from None
        self._keep(**common)
        # health_port is the forward table's port; the reverse table's comes from the settings.
        self.health_port = self.health_port or self.settings["forward_port"]
        self._lookup = lookup
        self._random = random_bytes
        self._trust = trust

    def _bin(self, name: str) -> str:
        path = self._get_bin_path(name)
        if not path:
            raise SrsConfigError(f"{name} was not found; is postsrsd installed?")
        return path

    def _guard(self, path: str, name: str, kind: str) -> None:
        options: dict[str, Any] = {"kind": kind}
        if self._trust is not None:
            options["trust"] = self._trust
        guard(SrsConfigError, path, name, **options)

    # -- candidate check ---------------------------------------------------------------

    def check_candidate(self) -> None:
        """Source the candidate with /bin/sh, as the launcher does; every value must read back as rendered."""
        shell = self._get_bin_path("sh") or "/bin/sh"
        expected = self.expected
        names = list(expected)
        script = '. "$1" && ' + " && ".join(f'printf "%s=%s\\n" {name} "${{{name}}}"' for name in names)
        with tempfile.TemporaryDirectory(prefix="postmaster-postsrsd-") as workdir:
            candidate = os.path.join(workdir, "postsrsd")
            with open(candidate, "w", encoding="utf-8") as handle:
                handle.write(self.text)
            rc, out, err = self.run([shell, "-n", candidate])
            if rc == 0:
                rc, out, err = self.run([shell, "-c", script, "sh", candidate])
        if rc != 0:
            raise SrsConfigError(
                f"/bin/sh refused the candidate {self.defaults_path} (rc={rc}); nothing was changed: "
                f"{(err or out).strip()[-1000:]}",
                checker_rc=rc,
            )
        read = dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)
        wrong = sorted(name for name in names if read.get(name) != expected[name])
        if wrong:
            raise SrsConfigError(
                f"the candidate {self.defaults_path} does not read back as written ({', '.join(wrong)}); "
                "nothing was changed"
            )

    # -- health --------------------------------------------------------------------------

    def _probe(self, timeout: float) -> str:
        code, forward = self._lookup(self.health_host, self.health_port, HEALTH_ADDRESS, timeout)
        domain = self.settings["domain"]
        if code != 200 or not forward.upper().startswith("SRS0") or not forward.lower().endswith(f"@{domain}"):
            raise HealthCheckError(
                f"the forward table on port {self.health_port} answered {code} {forward!r} for {HEALTH_ADDRESS}, "
                f"not an SRS address of {domain}"
            )
        port = self.settings["reverse_port"]
        code, back = self._lookup(self.health_host, port, forward, timeout)
        if code != 200 or back.lower() != HEALTH_ADDRESS:
            raise HealthCheckError(f"the reverse table on port {port} answered {code} {back!r} for {forward}")
        return f"{HEALTH_ADDRESS} -> {forward} -> {back}"

    def health(self) -> str:
        return self._wait(
            f"postsrsd on {self.health_host}:{self.health_port} did not rewrite and reverse an address", self._probe
        )

    # -- entry point -------------------------------------------------------------------------

    def footprint(self) -> Footprint:
        """What a run without a change compares: the settings, the secret (its mode) and the service."""
        return Footprint([self.defaults_path, self.secret_path], [SERVICE])

    def execute(self) -> dict[str, Any]:
        """Do everything; return the module result (``diff`` is always filled, the module filters it)."""
        self._guard(self.defaults_path, "defaults_path", "file")
        self._guard(self.secret_path, "secret_path", "file")
        previous = read_text(self.defaults_path)
        conf_changed = previous != self.text
        make_secret = not os.path.lexists(self.secret_path)
        # An existing secret readable by others is made private (its content is kept).
        private = make_secret or stat.S_IMODE(os.lstat(self.secret_path).st_mode) == 0o600
        changed = conf_changed or make_secret or not private
        secret_note = "(generated on the host, never shown)\n" if make_secret else "(kept, never shown)\n"
        result: dict[str, Any] = {
            "changed": changed,
            "defaults_path": self.defaults_path,
            "secret_path": self.secret_path,
            "secret_generated": make_secret,
            "secret_mode_fixed": not private,
            "restarted": False,
            "diff": {
                "before_header": self.defaults_path,
                "after_header": self.defaults_path,
                "before": (previous or "") + f"# {self.secret_path}: " + ("(none)\n" if make_secret else secret_note),
                "after": self.text + f"# {self.secret_path}: " + secret_note,
            },
        }
        if conf_changed:
            if self.check_mode and not self._get_bin_path("postsrsd"):
                self.warnings.append("postsrsd not installed yet: the candidate was checked by the shell only")
            self.check_candidate()
        if not self.check_mode:
            if not private:
                set_owner_mode(self.secret_path, 0o600, 0, 0)
            result.update(self.apply(conf_changed, make_secret))
        result["warnings"] = list(self.warnings)
        return result

    def apply(self, conf_changed: bool, make_secret: bool) -> dict[str, Any]:
        """Write the secret and the settings, restart postsrsd, check health; roll back on failure."""
        self._bin("postsrsd")
        touched = Touched()
        result: dict[str, Any] = {"restarted": False}
        try:
            if make_secret:
                secret = base64.b64encode(self._random(SECRET_BYTES)).decode() + "\n"
                # A new file is created 0600 before anything is written to it (private_file).
                write_atomically(self._atomic_move, self.secret_path, secret, ".postsrsd.secret.", touched=touched)
            if conf_changed:
                replace_keeping_mode(self._atomic_move, self.defaults_path, self.text, touched=touched)
        except OSError as exc:
            touched.restore()
            raise SrsConfigError(f"writing postsrsd's files failed: {exc}; nothing was kept") from exc
        result.update(
            self._restart_checked(
                SERVICE,
                touched,
                health=self.health,
                health_key="lookup",
                restored="the previous settings were restored (and a secret created by this run removed)",
                name="postsrsd",
                error=SrsConfigError,
            )
        )
        return result


__all__ = ["HEALTH_ADDRESS", "SrsConfig", "SrsConfigError", "tcp_table_lookup"]
