"""Helpers shared by the molecule scenarios' testinfra tests.

Every scenario's ``tests/conftest.py`` puts this directory on ``sys.path`` and
imports what it needs. Addresses are always looked up with ``docker inspect``;
tests never hard-code one, and they only talk to loopback and to the
containers the scenario started.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from functools import cache

import testinfra


def scenario() -> str:
    return os.environ["MOLECULE_SCENARIO_NAME"]


def instance(role: str) -> str:
    """Container name of a scenario platform (``server``, ``client``, ...)."""
    return f"pm-{scenario()}-{role}"


@cache
def host(role: str) -> testinfra.host.Host:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{instance(role)}?ansible_inventory={inventory}")


def dovecot_24(h: testinfra.host.Host) -> bool:
    """True on Dovecot 2.4 (Debian 13), whose settings are named differently from 2.3 (Debian 12)."""
    return h.check_output("dovecot --version").startswith("2.4")


def container_ip(role: str) -> str:
    """IPv4 address of a platform on the scenario network, from docker inspect."""
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", instance(role)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    networks = json.loads(out)
    net = networks.get(f"pm-{scenario()}")
    if not net or not net.get("IPAddress"):
        raise AssertionError(f"{instance(role)} has no address on network pm-{scenario()}: {networks}")
    return net["IPAddress"]


# A small SMTP client that runs *inside* a container (python3 is on every
# test image), so that "outside" traffic really comes from another host.
# It takes a JSON list of steps and prints a JSON list of [code, text] replies.
_SMTP_CLIENT = r"""
import json, smtplib, ssl, sys
host, port, steps, wrapper = json.loads(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = []
def rec(reply):
    code, text = reply
    out.append([code, text.decode() if isinstance(text, bytes) else str(text)])
try:
    if wrapper:
        s = smtplib.SMTP_SSL(timeout=20, context=ctx)
    else:
        s = smtplib.SMTP(timeout=20)
    s._host = host  # server_hostname for STARTTLS and wrapper-mode TLS
    rec(s.connect(host, port))
    for step in steps:
        op, args = step[0], step[1:]
        try:
            if op == "ehlo":
                rec(s.ehlo(args[0]))
            elif op == "starttls":
                rec(s.starttls(context=ctx))
            elif op == "auth":
                rec(s.login(args[0], args[1]))
            elif op == "data":
                rec(s.docmd("DATA"))
                if out[-1][0] == 354:
                    body = args[0].replace("\r\n", "\n").replace("\n", "\r\n")
                    s.send(body.encode() + b"\r\n.\r\n")
                    rec(s.getreply())
            else:
                rec(s.docmd(op.upper(), " ".join(args)))
        except smtplib.SMTPResponseException as e:
            rec((e.smtp_code, e.smtp_error))
    try:
        s.quit()
    except Exception:
        pass
except Exception as e:
    out.append([0, f"{type(e).__name__}: {e}"])
print(json.dumps(out))
"""


def smtp(role: str, target: str, port: int, steps: list[list[str]], wrapper: bool = False) -> list[tuple[int, str]]:
    """Run an SMTP dialogue from the container ``role`` to ``target:port``.

    Returns ``[(code, text), ...]``: the greeting first, then one reply per
    step (two for ``data``: the 354 and the final reply).
    """
    payload = json.dumps([target, port, steps, wrapper])
    result = host(role).run("python3 -c %s %s", _SMTP_CLIENT, payload)
    assert result.rc == 0, result.stderr
    return [tuple(reply) for reply in json.loads(result.stdout)]


def message(sender: str, recipient: str, subject: str, body: str = "hello", headers: str = "") -> str:
    return f"From: {sender}\nTo: {recipient}\nSubject: {subject}\n{headers}\n{body}\n"


def wait_for_file(h: testinfra.host.Host, pattern: str, timeout: int = 30) -> list[str]:
    """Wait until a glob on the host matches a file; return the matches."""
    cmd = f"for i in $(seq {timeout}); do ls {pattern} 2>/dev/null && exit 0; sleep 1; done; exit 1"
    result = h.run(cmd)
    return result.stdout.split() if result.rc == 0 else []


def booted(h: testinfra.host.Host, seconds: int = 60) -> str:
    """Wait until systemd on *h* has finished booting; return ``systemctl is-system-running`` (``running``,
    ``degraded``, or the last state seen when *seconds* ran out)."""
    state = ""
    for _attempt in range(seconds):
        state = h.run("systemctl is-system-running --wait").stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(1)
    return state


def run_converge(
    extra_vars: dict | None = None,
    check: bool = False,
    args: tuple[str, ...] = (),
    playbook: str = "converge.yml",
) -> subprocess.CompletedProcess:
    """Run the scenario's converge.yml (or another *playbook* of the scenario directory) again with extra
    vars (and ansible-playbook args), as a user would."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    playbook = os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], playbook)
    cmd = ["ansible-playbook", "-i", inventory, playbook]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd += ["--check", "--diff"]
    cmd += list(args)
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def snapshot(h: testinfra.host.Host, *paths: str, mtimes: bool = True) -> str:
    """Checksums and modes (and mtimes) of every file under paths: proof that nothing changed."""
    quoted = " ".join(paths)
    fmt = "%p %m %T@ " if mtimes else "%p %m "
    return h.check_output(f"find {quoted} -xdev -type f -printf '{fmt}' -exec sha256sum {{}} \\; 2>/dev/null | sort")


def owners(h: testinfra.host.Host, *paths: str) -> str:
    """Type, mode, owner and group of every file, directory and symlink under paths (a rollback restores them too)."""
    quoted = " ".join(paths)
    return h.check_output(f"find {quoted} -xdev -printf '%p %y %m %u:%g %l\\n' 2>/dev/null | sort")


def assert_fails_unchanged(
    h: testinfra.host.Host,
    result: subprocess.CompletedProcess,
    named: list[str] | tuple[str, ...],
    watched: tuple[str, ...],
    before: str,
) -> None:
    """A run that must fail naming every word of *named*, report changed=0, and leave *watched* as *before*."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    for word in named:
        assert word in output, f"{word!r} not named in the failure:\n{output[-3000:]}"
    assert "changed=0" in output
    assert snapshot(h, *watched) == before
