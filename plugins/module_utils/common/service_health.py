# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Health checks shared by the configuration modules.

- ``smtp_probe``: an SMTP (or LMTP-style ESMTP) listener greets 220 and answers EHLO 250;
- ``wait_for_answer``: retry a probe until it answers or a deadline passes;
- ``logged_errors``: the error entries a daemon logged to the journal since a reload.

Every configuration backend (postfix_config, dovecot_config, policyd_spf, amavis) raises and
catches the one ``HealthCheckError`` defined here, so a probe's refusal is retried like a
refused connection, whichever module the probe came from.
"""

from __future__ import annotations

import json
import socket
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
