"""What the backup scenario's tests compare: every user's mailboxes, messages, UIDs and flags."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import helpers
import yaml

SCENARIO_DIR = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
SETTINGS = yaml.safe_load(Path(SCENARIO_DIR, "vars", "server.yml").read_text(encoding="utf-8"))
USERS = {
    f"{user['name']}@{domain['name']}": user["password"]
    for domain in SETTINGS["mailboxes_domains"]
    for user in domain["users"]
}
ALICE, BOB = sorted(USERS)


def doveadm(host, args: str) -> str:
    return host.check_output(f"doveadm {args}")


def _message(record: str) -> str:
    """One message of ``doveadm fetch``, in a form both Dovecot versions give alike.

    \\Recent belongs to a session, not to the message (the restored copy is new to its host); Dovecot
    2.3 writes "flags: " where 2.4 writes "flags:" for none, and the order of the flags is not theirs.
    """
    lines = []
    for line in record.strip().split("\n"):
        if line.startswith("flags:"):
            flags = sorted(flag for flag in line[len("flags:") :].split() if flag != "\\Recent")
            lines.append("flags: " + " ".join(flags))
        else:
            lines.append(line.rstrip())
    return "\n".join(lines)


def mail_files(host) -> str:
    """The messages and Dovecot's UID lists under /var/mail/vmail (its index files are caches that any read updates)."""
    return "\n".join(
        line
        for line in helpers.snapshot(host, "/var/mail/vmail").splitlines()
        if "/dovecot.index" not in line and "/dovecot.list.index" not in line
    )


def mailbox_state(host) -> dict:
    """Every user's mailboxes (messages, vsize, uidvalidity, uidnext) and every message's uid, flags and subject."""
    state = {}
    for user in sorted(USERS):
        status = doveadm(host, f"mailbox status -u {user} 'messages vsize uidvalidity uidnext' '*'")
        fetched = doveadm(host, f"fetch -u {user} 'mailbox uid flags hdr.subject' ALL")
        state[user] = {"status": sorted(status.splitlines()), "messages": sorted(map(_message, fetched.split("\f")))}
    return state


def same(expected: dict, got: dict, before: str = "server", after: str = "fresh") -> str:
    """The difference of two mailbox states, line by line."""
    return "\n".join(
        difflib.unified_diff(
            json.dumps(expected, indent=1).splitlines(),
            json.dumps(got, indent=1).splitlines(),
            before,
            after,
            lineterm="",
        )
    )


def converge(role: str, extra: dict | None = None):
    """The scenario's converge.yml (site.yml with the scenario's settings) on *role* alone."""
    return helpers.run_converge(extra, args=("--limit", helpers.instance(role)))


def assert_rerun_changes_nothing(role: str) -> None:
    """A converge of *role* passes and its recap line says changed=0."""
    result = converge(role)
    assert result.returncode == 0, result.stdout[-3000:]
    recap = [line for line in result.stdout.splitlines() if line.startswith(helpers.instance(role))]
    assert recap and "changed=0" in recap[-1], result.stdout[-3000:]


def run_verify(role: str, report) -> str:
    """Run site.yml on *role* with the verify role on, probing from the vault; return its report (*report*: a path)."""
    result = converge(
        role,
        {
            "verify_enabled": True,
            "verify_probe_host": helpers.instance("vault"),
            "verify_host": helpers.instance(role),
            "verify_tls_name": "mail.example.test",
            "verify_insecure_tls": True,
            "verify_user": ALICE,
            "verify_password": USERS[ALICE],
            # No DNS server in this scenario: the DKIM records cannot be looked up.
            "verify_dkim_dns": False,
            "verify_relay_recipient": "relay-check@example.invalid",
            "verify_report_file": str(report),
        },
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    text = Path(report).read_text(encoding="utf-8")
    assert text.splitlines()[1].endswith("checks passed, 0 problems"), text
    assert any(line.startswith("  ok    delivery ") for line in text.splitlines()), text
    return text
