# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Health checks shared by the configuration modules.

- ``smtp_probe``: an SMTP (or LMTP-style ESMTP) listener greets 220 and answers EHLO 250;
- ``wait_for_answer``: retry a probe until it answers or a deadline passes;
- ``logged_errors``: the error entries a daemon logged to the journal since a reload;
- ``systemctl``, ``restart_postfix``: the service commands, failing with ``HealthCheckError``;
- ``ServiceBackend``: the side effects and health options every configuration backend keeps, with
  ``run`` (LC_ALL=C), ``_systemctl`` and ``_wait`` (``wait_for_answer`` on the backend's clock).

Every configuration backend (postfix_config, dovecot_config, policyd_spf, amavis, dkim, saslauthd) raises and
catches the one ``HealthCheckError`` defined here, so a probe's refusal is retried like a
refused connection, whichever module the probe came from.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any


class HealthCheckError(Exception):
    """A service did not answer as expected, or logged an error."""


def read_smtp_reply(reader: Any) -> str:
    """Read one (possibly multi-line) SMTP reply from a binary file object; return its lines joined."""
    lines = []
    while True:
        raw = reader.readline(4096)
        if not raw:
            raise HealthCheckError("connection closed before a complete SMTP reply")
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return "\n".join(lines)


def smtp_probe(host: str, port: int, timeout: float) -> str:
    """Connect, expect a 220 greeting and a 250 EHLO reply, then QUIT; return the greeting."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        reader = sock.makefile("rb")
        greeting = read_smtp_reply(reader)
        if not greeting.startswith("220"):
            raise HealthCheckError(f"SMTP greeting from {host}:{port} was {greeting!r}, expected 220")
        sock.sendall(b"EHLO postmaster-health-check.invalid\r\n")
        reply = read_smtp_reply(reader)
        if not reply.startswith("250"):
            raise HealthCheckError(f"EHLO to {host}:{port} was answered {reply!r}, expected 250")
        sock.sendall(b"QUIT\r\n")
    return greeting


def wait_for_answer(
    what: str,
    probe: Callable[[float], Any],
    timeout: float,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Any],
    attempt_timeout: float = 10.0,
) -> Any:
    """Call ``probe(seconds)`` once a second until it returns, and return its answer.

    A probe fails by raising OSError (nothing listens yet) or HealthCheckError (a wrong answer).
    Each attempt gets the time left, at least 1 s and at most *attempt_timeout*. When *timeout*
    seconds have passed, HealthCheckError says ``"<what> within <timeout>s: <last error>"``.
    """
    deadline = clock() + max(timeout, 0)
    last: Exception | None = None
    while True:
        try:
            return probe(min(max(deadline - clock(), 1.0), attempt_timeout))
        except (OSError, HealthCheckError) as exc:
            last = exc
        if clock() >= deadline:
            break
        sleep(1)
    raise HealthCheckError(f"{what} within {timeout}s: {last}")


def _message(entry: dict) -> str:
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):  # journald encodes non-UTF-8 messages as byte arrays
        message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
    return str(message)


def journal_errors(output: str, since: float, *, identifiers: Sequence[str], prefixes: Sequence[str] = ()) -> list[str]:
    """Return the error entries of ``journalctl -o json`` output logged at or after *since*.

    An entry counts when its SYSLOG_IDENTIFIER starts with one of *identifiers* and either its
    priority is err or worse, or its message starts with one of *prefixes* (Postfix logs some
    fatal errors at a lower priority, with the severity as the first word).
    """
    found = []
    wanted = tuple(identifiers)
    starts = tuple(prefixes)
    for raw in output.splitlines():
        line = raw.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        ident = str(entry.get("SYSLOG_IDENTIFIER", ""))
        if not ident.startswith(wanted):
            continue
        stamp = entry.get("__REALTIME_TIMESTAMP")
        if stamp is not None and str(stamp).isdigit() and int(stamp) < int(since * 1_000_000):
            continue
        message = _message(entry)
        try:
            priority = int(entry.get("PRIORITY", 6))
        except (TypeError, ValueError):
            priority = 6
        if priority <= 3 or (starts and message.startswith(starts)):
            found.append(f"{ident}: {message}")
    return found


def logged_errors(
    run: Callable[[Sequence[str]], tuple[int, str, str]],
    get_bin_path: Callable[[str], str | None],
    since: float,
    warnings: list[str],
    *,
    identifiers: Sequence[str],
    prefixes: Sequence[str] = (),
) -> list[str]:
    """Read the journal since *since* with *run* and return the error entries of :func:`journal_errors`.

    When journalctl is missing or fails, a warning is appended to *warnings* and nothing is returned:
    the health check then rests on the service's answer alone.
    """
    journalctl = get_bin_path("journalctl")
    if not journalctl:
        warnings.append("journalctl not found: the health check did not look for logged errors")
        return []
    rc, out, err = run([journalctl, "-o", "json", "--no-pager", "--since", f"@{int(since)}"])
    if rc != 0:
        warnings.append(f"journalctl failed (rc={rc}), logged errors were not checked: {err.strip()}")
        return []
    return journal_errors(out, since, identifiers=identifiers, prefixes=prefixes)


# `systemctl is-enabled` states in which the unit starts at boot, or is started by another unit.
ENABLED_STATES = ("enabled", "enabled-runtime", "static", "alias", "indirect", "generated")


class ServiceStateError(Exception):
    """systemctl is missing, the unit is masked, or enabling or starting it failed."""


def ensure_service(
    run: Callable[[Sequence[str]], tuple[int, str, str]],
    get_bin_path: Callable[[str], str | None],
    service: str,
    *,
    check_mode: bool = False,
) -> list[str]:
    """Enable *service* at boot and start it when it does not run; return what was (or would be) done.

    The configuration modules call this after their own work, so that a role needs no separate
    service task (one host round trip less on every run). The caller health-checks a service
    that this started.
    """
    systemctl = get_bin_path("systemctl")
    if not systemctl:
        raise ServiceStateError(f"systemctl was not found: {service} cannot be enabled and started")
    actions = []
    _rc, out, _err = run([systemctl, "is-enabled", service])
    state = out.strip().splitlines()[0] if out.strip() else ""
    if state.startswith("masked"):
        raise ServiceStateError(f"{service} is masked: unmask it (systemctl unmask {service}) to let the role start it")
    if state not in ENABLED_STATES:
        actions.append("enabled")
    rc, _out, _err = run([systemctl, "is-active", "--quiet", service])
    if rc != 0:
        actions.append("started")
    if check_mode:
        return actions
    for action, verb in (("enabled", "enable"), ("started", "start")):
        if action in actions:
            rc, out, err = run([systemctl, verb, service])
            if rc != 0:
                raise ServiceStateError(f"systemctl {verb} {service} failed (rc={rc}): {(err or out).strip()}")
    return actions


def run_checked(run: Callable[[Sequence[str]], tuple[int, str, str]], argv: Sequence[str]) -> str:
    """Run *argv* with *run*; raise HealthCheckError naming the command unless it exits 0; return its output."""
    rc, out, err = run(list(argv))
    if rc != 0:
        raise HealthCheckError(f"{' '.join(argv)} failed (rc={rc}): {(err or out).strip()}")
    return out


def systemctl(
    run: Callable[[Sequence[str]], tuple[int, str, str]], get_bin_path: Callable[[str], str | None], *args: str
) -> str:
    """Run ``systemctl *args*``; raise HealthCheckError when systemctl is missing or fails (naming the verb)."""
    path = get_bin_path("systemctl")
    if not path:
        raise HealthCheckError("systemctl was not found")
    rc, out, err = run([path, *args])
    if rc != 0:
        raise HealthCheckError(f"systemctl {' '.join(args)} failed (rc={rc}): {(err or out).strip()}")
    return out


def restart_postfix(
    run: Callable[[Sequence[str]], tuple[int, str, str]], get_bin_path: Callable[[str], str | None], postfix: str
) -> None:
    """Restart Postfix through systemd when present, else ``postfix stop`` and ``postfix start``.

    Used for a rollback: a candidate that made a service die leaves it throttled in the master
    daemon, and a reload keeps that state, so the service would stay silent for
    process_throttle_delay (60 s) after the good configuration is back. A restart clears it.
    """
    path = get_bin_path("systemctl")
    commands = [[path, "restart", "postfix"]] if path else [[postfix, "stop"], [postfix, "start"]]
    for argv in commands:
        run_checked(run, argv)


class ServiceBackend:
    """The part of a configuration backend that every daemon's has: side effects, check mode, health options.

    A backend's ``__init__`` takes its own options and ``**common``, the keywords of :meth:`_keep`
    (what ``config_module.backend_arguments`` gives, plus a clock and sleep for tests), and calls
    ``self._keep(**{"health_port": <its port>, **common})``; then it uses :meth:`run`,
    :meth:`_systemctl` and :meth:`_wait`.
    """

    _run: Callable[..., Any]
    _get_bin_path: Callable[[str], str | None]
    _atomic_move: Callable[[str, str], Any]
    _sleep: Callable[[float], Any]
    _clock: Callable[[], float]
    check_mode: bool
    health_check: bool
    health_host: str
    health_port: int
    health_timeout: float
    warnings: list[str]

    def _keep(
        self,
        *,
        run_command: Callable[..., Any],
        get_bin_path: Callable[[str], str | None],
        atomic_move: Callable[[str, str], Any] | None = None,
        check_mode: bool = False,
        health_check: bool = True,
        health_host: str = "127.0.0.1",
        health_port: int = 0,
        health_timeout: float = 30,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._run = run_command
        self._get_bin_path = get_bin_path
        self._atomic_move = atomic_move or os.replace
        self.check_mode = check_mode
        self.health_check = health_check
        self.health_host = health_host
        self.health_port = health_port
        self.health_timeout = health_timeout
        self._sleep = sleep
        self._clock = clock
        self.warnings = []

    def run(self, argv: Sequence[str]) -> tuple[int, str, str]:
        """Run *argv* (a list, never a shell string) with LC_ALL=C; missing output is ``""``."""
        rc, out, err = self._run(list(argv), environ_update={"LC_ALL": "C"})
        return rc, out or "", err or ""

    def _systemctl(self, *args: str) -> str:
        return systemctl(self.run, self._get_bin_path, *args)

    def _logged_errors(self, since: float, identifiers: Sequence[str], prefixes: Sequence[str] = ()) -> list[str]:
        """:func:`logged_errors` since *since*, with the backend's commands and warnings."""
        return logged_errors(
            self.run, self._get_bin_path, since, self.warnings, identifiers=identifiers, prefixes=prefixes
        )

    def _check_journal_for(
        self, what: str, since: float, identifiers: Sequence[str], prefixes: Sequence[str] = ()
    ) -> None:
        """Raise HealthCheckError (``"<what>:"`` and the first 20 entries) when errors were logged since *since*."""
        errors = self._logged_errors(since, identifiers, prefixes)
        if errors:
            raise HealthCheckError(f"{what}:\n" + "\n".join(errors[:20]))

    def _restart_checked(
        self,
        service: str,
        touched: Any,
        *,
        health: Callable[[], Any],
        health_key: str,
        restored: str,
        name: str,
        error: type[Exception],
    ) -> dict[str, Any]:
        """After the files of *touched* (a ``path_state.Touched``) were swapped in: start *service* when it does not
        run, else restart it when anything changed, and check *health* (its answer goes to *health_key*).

        On failure the files are put back, *service* is restarted on them, and *error* is raised with
        ``rolled_back``, saying *restored* (what came back) and whether *name* (the daemon) restarted.
        """
        result: dict[str, Any] = {"restarted": False}
        try:
            actions = ensure_service(self.run, self._get_bin_path, service)
            if "started" in actions:
                result["restarted"] = True
            elif touched:
                self._systemctl("restart", service)
                result["restarted"] = True
            if self.health_check and (touched or actions):
                result[health_key] = health()
        except (HealthCheckError, ServiceStateError) as exc:
            errors = touched.restore()
            rollback = restored
            if errors:
                rollback += f" (but restoring failed: {'; '.join(errors)})"
            try:
                self._systemctl("restart", service)
                rollback += f", and {name} restarted"
            except (HealthCheckError, error) as again:
                rollback += f", but {again}"
            raise error(f"health check failed: {exc}; {rollback}", rolled_back=True) from exc
        return result

    def _wait(self, what: str, probe: Callable[[float], Any], attempt_timeout: float = 10.0) -> Any:
        """``wait_for_answer`` for *health_timeout* seconds on the backend's clock."""
        return wait_for_answer(
            what, probe, self.health_timeout, clock=self._clock, sleep=self._sleep, attempt_timeout=attempt_timeout
        )
