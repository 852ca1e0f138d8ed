# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The verify role's logic: what to probe (from the live ports), and the report a person reads.

- :func:`plan` turns the ``mail_ports`` result and the role's variables into ``mail_probe`` options:
  the services the server really offers (with their ports), the ports that must be closed, and
  whether a message is sent, through which services.
- :func:`report` turns the ``mail_probe`` and ``mail_queue`` results and the ``mail_dns`` records into
  short lines of text, and :func:`problems` lists what is wrong, one line each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_probe import SERVICES

#: mail_ports' (daemon, service) -> mail_probe's service
PROBED = {
    ("postfix", "smtp"): "smtp",
    ("postfix", "submission"): "submission",
    ("postfix", "smtps"): "smtps",
    ("postfix", "submissions"): "smtps",
    ("dovecot", "imap-login/imap"): "imap",
    ("dovecot", "imap-login/imaps"): "imaps",
    ("dovecot", "pop3-login/pop3"): "pop3",
    ("dovecot", "pop3-login/pop3s"): "pop3s",
}
CHECK_LABELS = {"banner": "greeting", "tls": "TLS", "auth": "authentication", "login": "login"}


class VerifyError(ValueError):
    """The role's variables cannot make a probe; the message names the variable."""


def _port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not str(value).isdigit() or not 0 < int(value) < 65536:
        raise VerifyError(f"{where}: {value!r} is not a TCP port")
    return int(value)


def plan(
    mail_ports: Mapping[str, Any] | None,
    *,
    services: Sequence[str] = (),
    ports: Mapping[str, Any] | None = None,
    closed_ports: Sequence[Any] = (),
    user: str = "",
    send: bool = True,
    relay_check: bool = True,
    eicar: bool = False,
    prefix: str = "verify_",
) -> dict[str, Any]:
    """The mail_probe options for the role.

    Without *services*, the services are the public ones *mail_ports* found (its ``ports``), with
    their real port numbers. The closed ports are *closed_ports* plus the server's ``internal`` listeners,
    less the public ports.
    """
    listening = list((mail_ports or {}).get("ports") or [])
    ssh = list((mail_ports or {}).get("ssh_ports") or [])
    found: dict[str, int] = {}
    for entry in listening:
        service = PROBED.get((entry.get("daemon"), entry.get("service")))
        if service and entry.get("scope") == "public":
            found.setdefault(service, int(entry["port"]))
    for index, service in enumerate(services):
        if service not in SERVICES:
            raise VerifyError(f"{prefix}services[{index}]: unknown {service!r} (known: {', '.join(SERVICES)})")
    chosen = [s for s in SERVICES if s in services] if services else [s for s in SERVICES if s in found]
    port_map = {s: found[s] for s in chosen if s in found and found[s] != SERVICES[s][1]}
    for service, value in (ports or {}).items():
        if service not in SERVICES:
            raise VerifyError(f"{prefix}ports: unknown service {service!r} (known: {', '.join(SERVICES)})")
        port_map[service] = _port(value, f"{prefix}ports.{service}")
    public = {entry["port"] for entry in listening if entry.get("scope") == "public"} | set(ssh)
    public |= {port_map.get(s, SERVICES[s][1]) for s in chosen}
    closed = {_port(value, f"{prefix}closed_ports[{i}]") for i, value in enumerate(closed_ports)}
    closed |= {int(entry["port"]) for entry in listening if entry.get("scope") == "internal"}
    notes = []
    send_via = next((s for s in ("submission", "smtps") if s in chosen), None)
    read_via = next((s for s in ("imaps", "imap") if s in chosen), None)
    will_send = bool(send and user and send_via and read_via)
    if not user:
        notes.append(f"no {prefix}user: logins, sending and delivery were not checked")
    elif send and not will_send:
        notes.append("no message was sent: that needs submission or smtps, and imap or imaps")
    if eicar and not will_send:
        notes.append("the EICAR test needs the test message to be sent first: it was not run")
    if relay_check and "smtp" not in chosen:
        notes.append("port 25 (smtp) is not offered, so relaying was not checked")
    if not chosen:
        notes.append("no mail service to probe: the server offers none, and none was given")
    return {
        "services": chosen,
        "ports": port_map,
        "closed_ports": sorted(closed - public),
        "send": will_send,
        "send_via": send_via or "submission",
        "read_via": read_via or "imaps",
        "send_eicar": bool(eicar and will_send),
        "relay_check": bool(relay_check and "smtp" in chosen),
        "notes": notes,
    }


def with_virus_log(probe: Mapping[str, Any], virus_log: str | None) -> Mapping[str, Any]:
    """The probe result, with the EICAR check confirmed (or failed) by the content filter's own log.

    A test virus that never arrives may have been stopped for another reason (a banned attachment
    name, or every virus scanner failing), so amavis must have logged it as INFECTED.
    """
    check = (probe.get("checks") or {}).get("virus_blocked")
    if virus_log is None or not check or not check.get("ok") or "refused at submission" in check["detail"]:
        return probe
    lines = [line for line in virus_log.splitlines() if line.strip()]
    infected = next((line for line in lines if "INFECTED" in line), None)
    if infected:
        reason = infected[infected.index("INFECTED") :].split(")", 1)[0] + ")"
        new = {**check, "detail": f"{check['detail']}; amavis: Blocked {reason}"}
    else:
        seen = lines[0][:200] if lines else f"no amavis log line names {check.get('message_id')}"
        new = {
            **check,
            "ok": False,
            "detail": f"the EICAR message did not arrive, but amavis did not log it as INFECTED ({seen})",
        }
    checks = {**probe["checks"], "virus_blocked": new}
    failed = [name for name, item in checks.items() if not item["ok"]]
    return {**probe, "checks": checks, "failed_checks": failed, "ok": not failed}


def problems(
    probe: Mapping[str, Any],
    queue: Mapping[str, Any] | None = None,
    max_age: int = 0,
    virus_log: str | None = None,
) -> list[str]:
    """What is wrong, one line each: every failed check, and a queue older than *max_age* seconds."""
    probe = with_virus_log(probe, virus_log)
    checks = probe.get("checks") or {}
    out = [f"{name}: {checks[name]['detail']}" for name in probe.get("failed_checks") or []]
    if queue and max_age and (queue.get("oldest_age_seconds") or 0) > max_age:
        oldest = queue["oldest"]
        reasons = queue.get("deferral_reasons") or []
        out.append(
            f"queue: message {oldest['queue_id']} has waited {_age(oldest['age_seconds'])}, more than "
            f"{_age(max_age)} ({queue['counts'].get('deferred', 0)} deferred"
            + (f"; most often: {reasons[0]['reason']})" if reasons else ")")
        )
    fail2ban = (queue or {}).get("fail2ban")
    if fail2ban is not None and not fail2ban.get("running"):
        out.append("fail2ban: installed but not answering (systemctl status fail2ban); nobody is banned")
    return out


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _line(ok: bool, label: str, text: str) -> str:
    return f"  {'ok' if ok else 'FAIL':4}  {label:18} {text}"


def check_lines(checks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per service, then the certificate(s), relaying, sending, delivery and the closed ports.

    A line that failed names each failed check with its detail.
    """
    lines = []
    done: set[str] = set()
    for service, (_protocol, default_port, how) in SERVICES.items():
        own = {name[len(service) + 1 :]: check for name, check in checks.items() if name.startswith(f"{service}_")}
        own.pop("certificate", None)
        if not own:
            continue
        done.update(f"{service}_{kind}" for kind in own)
        port = own.get("banner", {}).get("port", default_port)
        label = f"{service:10} {port:>5}"
        failed = [
            f"{CHECK_LABELS.get(kind, kind)}: {check['detail']}" for kind, check in own.items() if not check["ok"]
        ]
        if failed:
            lines.append(_line(False, label, "; ".join(failed)))
            continue
        parts = []
        tls = own.get("tls")
        if tls:
            parts.append(("STARTTLS " if how == "starttls" else "TLS ") + f"{tls.get('protocol')} {tls.get('cipher')}")
        if "auth" in own:
            parts.append(own["auth"]["detail"])
        if "login" in own:
            parts.append("login ok")
        lines.append(_line(True, label, "; ".join(parts) or own.get("banner", {}).get("detail", "")))
    certificates = {name: check for name, check in checks.items() if name.endswith("_certificate")}
    done.update(certificates)
    groups: dict[str, list[str]] = {}
    for name, check in certificates.items():
        groups.setdefault(check["detail"], []).append(name[: -len("_certificate")])
    for detail, services in groups.items():
        ok = all(certificates[f"{service}_certificate"]["ok"] for service in services)
        label = "certificate" if len(groups) == 1 else f"certificate {','.join(services)}"
        lines.append(_line(ok, label, detail))
    for name, label in (
        ("relay_refused", "open relay"),
        ("send", "send"),
        ("delivery", "delivery"),
        ("virus_blocked", "EICAR"),
    ):
        if name in checks:
            done.add(name)
            lines.append(_line(checks[name]["ok"], label, checks[name]["detail"]))
    closed = {name: check for name, check in checks.items() if name.startswith("port_")}
    done.update(closed)
    if closed:
        answering = [str(check["port"]) for check in closed.values() if not check["ok"]]
        ports = ", ".join(str(check["port"]) for check in closed.values())
        if answering:
            lines.append(_line(False, "closed ports", f"{', '.join(answering)} accept connections (of {ports})"))
        else:
            lines.append(_line(True, "closed ports", f"{ports}: refused or filtered"))
    for name, check in checks.items():
        if name not in done:
            lines.append(_line(check["ok"], name, check["detail"]))
    return lines


def trust_line(probe: Mapping[str, Any]) -> str:
    """How the certificates were trusted, and whether the test account's password went over unverified TLS."""
    trust = probe.get("tls_trust")
    if not trust:
        return ""
    line = f"TLS: certificates {trust}"
    if probe.get("insecure_login"):
        line += "; the test account's password was sent over it anyway (the insecure switch, verify_insecure_tls)"
    elif probe.get("tls_verified") is False:
        line += " (verify_insecure_tls); no password was sent"
    return line


def report(
    probe: Mapping[str, Any],
    *,
    plan: Mapping[str, Any] | None = None,
    mail_ports: Mapping[str, Any] | None = None,
    queue: Mapping[str, Any] | None = None,
    dns: Sequence[Mapping[str, Any]] = (),
    probe_from: str = "",
    max_age: int = 0,
    virus_log: str | None = None,
) -> list[str]:
    """The lines of the human summary: what listens where, each check, the queue, the DNS records."""
    probe = with_virus_log(probe, virus_log)
    checks: Mapping[str, Mapping[str, Any]] = probe.get("checks") or {}
    wrong = problems(probe, queue, max_age)
    host = probe.get("host", "")
    name = probe.get("tls_name") or host
    title = f"Mail server {name}" + (f" ({host})" if host and host != name else "")
    lines = [title + (f", checked from {probe_from}" if probe_from else "")]
    passed = sum(1 for check in checks.values() if check.get("ok"))
    lines.append(f"  {passed} checks passed, {len(wrong)} problem{'s' if len(wrong) != 1 else ''}")
    trust = trust_line(probe)
    if trust:
        lines.append(f"  {trust}")
    probe_services = set((plan or {}).get("services") or [])
    if mail_ports:
        lines += ["", "Listening (from the live configuration)"]
        for entry in mail_ports.get("ports") or []:
            probed = PROBED.get((entry.get("daemon"), entry.get("service"))) in probe_services
            what = f"{entry['daemon']} {entry['service']}"
            lines.append(f"  {entry['port']:>5}/tcp  {what:28} {entry.get('scope', '')}{', probed' if probed else ''}")
        for port in mail_ports.get("ssh_ports") or []:
            lines.append(f"  {port:>5}/tcp  {'sshd':28} admin")
    lines += ["", "Checks", *check_lines(checks)]
    for check_name, reason in (probe.get("skipped_checks") or {}).items():
        lines.append(f"  {'--':4}  {check_name:18} not run: {reason}")
    for note in (plan or {}).get("notes") or []:
        lines.append(f"  {'--':4}  {'':18} {note}")
    if queue is not None:
        counts = queue.get("counts") or {}
        busy = ", ".join(f"{key} {value}" for key, value in counts.items() if value)
        text = f"{queue.get('total', 0)} messages" + (f" ({busy})" if busy else "")
        if queue.get("oldest"):
            text += f"; the oldest has waited {_age(queue['oldest']['age_seconds'] or 0)}"
        lines += ["", "Queue", f"  {text}"]
        for reason in (queue.get("deferral_reasons") or [])[:3]:
            lines.append(f"  {reason['recipients']:>4} x {reason['reason']}")
        lines += screening_lines(queue)
    if dns:
        lines += ["", "DNS records to publish"]
        for domain in dns:
            lines += [f"  {line.replace(chr(9), ' ')}" for line in domain.get("zone_lines") or []]
        notes = [note for domain in dns for note in domain.get("notes") or []]
        policies = [domain for domain in dns if domain.get("mta_sts")]
        for domain in policies:
            lines += [f"  MTA-STS policy for {domain['mta_sts']['url']}:"]
            lines += [f"    {line}" for line in domain["mta_sts"]["policy"].splitlines()]
        lines += [f"  note: {note}" for note in notes]
    if wrong:
        lines += ["", "What is wrong"] + [f"  - {line}" for line in wrong]
    return lines


def screening_lines(queue: Mapping[str, Any]) -> list[str]:
    """The report's lines on postscreen and fail2ban (from mail_queue's ``postscreen`` and ``fail2ban``)."""
    if "postscreen" not in queue and "fail2ban" not in queue:
        return []
    lines = ["", "Abuse protection"]
    postscreen = queue.get("postscreen")
    if postscreen is not None:
        lines.append(f"  postscreen   {'answers port 25' if postscreen else 'off (smtpd answers port 25)'}")
    fail2ban = queue.get("fail2ban")
    if fail2ban is None:
        lines.append("  fail2ban     not installed")
    elif not fail2ban.get("running"):
        lines.append("  fail2ban     installed, not running")
    else:
        jails = ", ".join(f"{jail} {count}" for jail, count in sorted((fail2ban.get("jails") or {}).items()))
        lines.append(f"  fail2ban     running; {fail2ban.get('banned', 0)} addresses banned ({jails})")
    return lines
