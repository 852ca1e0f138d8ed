"""IMAP and POP3 clients that run inside a scenario container (python3 is on every image)."""

from __future__ import annotations

import json

import helpers

_CLIENT = r"""
import imaplib, json, poplib, ssl, sys, time
mode, host, port, user, password = json.loads(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = {}
try:
    if mode.startswith("pop3"):
        c = poplib.POP3_SSL(host, port, context=ctx, timeout=20)
        out["greeting"] = c.getwelcome().decode()
        c.user(user)
        out["login"] = c.pass_(password).decode()
        out["exists"] = c.stat()[0]
        c.quit()
    else:
        if mode == "imaps":
            c = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=20)
        else:
            c = imaplib.IMAP4(host, port, timeout=20)
            out["plain_caps"] = sorted(c.capabilities)
            if mode == "imap-starttls":
                out["starttls"] = c.starttls(ssl_context=ctx)[0]
        out["caps"] = sorted(c.capabilities)
        started = time.monotonic()
        out["login"] = c.login(user, password)[0]
        out["login_seconds"] = round(time.monotonic() - started, 3)
        typ, data = c.select("INBOX", readonly=True)
        out["exists"] = int(data[0])
        typ, data = c.search(None, "ALL")
        subjects = []
        for num in data[0].split():
            typ, msg = c.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(msg[0][1].decode().strip())
        out["subjects"] = subjects
        c.logout()
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


def session(mode: str, target: str, port: int, user: str, password: str, *, role: str = "client") -> dict:
    """Log in with imaplib/poplib from the container ``role``; mode: imaps, imap-starttls, imap-plain, pop3s."""
    result = helpers.host(role).run("python3 -c %s %s", _CLIENT, json.dumps([mode, target, port, user, password]))
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)
