"""Resilience, proven from the outside client with real clients.

1. The certificate from the scenario's own CA verifies by name on every TLS port (openssl
   s_client, and testssl.sh with its certificate checks).
2. A thousand messages sent with Postfix's smtp-source while the play changes main.cf and Postfix
   reloads: every message arrives exactly once.
3. An IMAP reader keeps reading while the play changes a Dovecot setting and Dovecot reloads.
4. After a container restart every service is back, and a message held in the queue before it is
   delivered after it.

The tests run in this order (pytest keeps the file's order), after tests/test_verify.py (pytest
takes the files in name order), which leaves the server as converge made it; the last one puts the
scenario's settings back, so that molecule's idempotence step after verify can prove changed=0.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import json
import subprocess
import time

import helpers
import mailclient
import pytest
import tls

NAME = "mail.example.test"
#: The test CA as prepare.yml gave it to the client (for the verify role), and in the client's
#: system store, where the module's first fixture puts it.
CA_FILE = "/usr/local/share/verify-test-ca.pem"
CA = "/usr/local/share/ca-certificates/verify-test-ca.crt"
CA_NAME = "postmaster.mailserver verify scenario CA"
TLS_PORTS = [25, 465, 587, 993, 995]
VMAIL = "/var/mail/vmail/example.test"
LOAD = "load@example.test"
READER = ("reader@example.test", "Reader-Test-Password-2")
ANNA = ("anna@example.test", "Anna-Test-Password-3")
MESSAGES = 1000
#: smtp-source sends this many messages a second; the last HELD wait for Postfix's reload.
SEND_RATE = 50
HELD = 200
READER_MESSAGES = 20
#: What the run under mail load changes: the banner (main.cf), so Postfix alone reloads. Dovecot is
#: reloaded in a run of its own: Dovecot 2.3 (Debian 12) can answer an LMTP delivery that meets its
#: reload "421 4.3.2 Shutting down" after it saved the message, and Postfix then delivers it again
#: (seen here: one message of 1,000 twice).
LOAD_CHANGE = {"postfix_smtpd_banner": "$myhostname ESMTP resilience reload"}
#: What the run under the IMAP reader changes: Dovecot's TLS 1.2 cipher list (without
#: DHE+CHACHA20; every client here uses ECDHE or TLS 1.3). The banner returns to the scenario's.
READ_CHANGE = {"dovecot_ssl_cipher_list": "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!eNULL:!PSK:!SRP:!DSS"}
#: testssl.sh finding ids of the certificate part of its server-defaults section.
CERT_FINDINGS = ("cert", "OCSP", "DNS_CAA", "intermediate_cert")
#: The converge runs of these tests leave the verify role out (converge.yml): its probe would add
#: its own message and logins to the runs under load.
NO_PROBE = {"converge_verify": False}


@pytest.fixture(scope="module", autouse=True)
def client_trusts_the_ca():
    """The client trusts the test CA through its system store (openssl, Python's ssl, testssl.sh).

    Done here, not in prepare.yml: tests/test_verify.py runs first, and the verify role must verify
    the certificate with verify_ca_file alone.
    """
    helpers.host("client").run_expect([0], f"cp {CA_FILE} {CA} && update-ca-certificates")


# -- the certificate -----------------------------------------------------------

# Three handshakes per port from the client, in one command: verified against the client's trust
# store (which holds the test CA) and the name; with no trust store at all; and with another name.
# Each prints "<port> <case> <exit code> <openssl's verify line>".
_VERIFY_MATRIX = r"""
for port in {ports}; do
  case $port in 25|587) starttls="-starttls smtp";; *) starttls="";; esac
  for case in trusted no-ca wrong-name; do
    name={name}; extra=""
    [ $case = no-ca ] && extra="-no-CAfile -no-CApath -no-CAstore"
    [ $case = wrong-name ] && name=other.example.test
    out=$(echo QUIT | timeout 20 openssl s_client -connect {name}:$port $starttls -servername {name} \
      -verify_return_error -verify_hostname $name $extra 2>&1)
    rc=$?
    echo "$port $case $rc $(printf '%s\n' "$out" | grep -m1 -E 'Verify return code|verify error' | tr -s ' ')"
  done
done
"""


def verify_matrix() -> dict[tuple[int, str], tuple[int, str]]:
    out = helpers.host("client").check_output(
        "sh -c %s", _VERIFY_MATRIX.format(ports=" ".join(map(str, TLS_PORTS)), name=NAME)
    )
    matrix = {}
    for line in out.splitlines():
        port, case, rc, verdict = [*line.split(" ", 3), ""][:4]
        matrix[(int(port), case)] = (int(rc), verdict.strip())
    assert len(matrix) == 3 * len(TLS_PORTS), out
    return matrix


def pin_name(server_ip: str) -> None:
    """Point the client's /etc/hosts entry for mail.example.test at the server (as prepare.yml does)."""
    helpers.host("client").run_expect(
        [0],
        "sed '/[[:space:]]mail\\.example\\.test$/d' /etc/hosts > /tmp/hosts && echo %s >> /tmp/hosts"
        " && cat /tmp/hosts > /etc/hosts",
        f"{server_ip} {NAME}",
    )


def test_the_client_resolves_the_name_to_the_server(server_ip):
    # /etc/hosts on the client, written by prepare.yml from docker inspect.
    assert helpers.host("client").check_output(f"getent hosts {NAME}").split()[0] == server_ip


def test_the_certificate_verifies_by_name_on_every_port(server):
    assert server.check_output("postconf -h smtpd_tls_cert_file") == "/etc/ssl/verify-test/mail.crt"
    # Dovecot 2.4: ssl_server_cert_file = <path>; 2.3: ssl_cert = <<path>.
    assert server.run_expect([0], "doveconf -n | grep -F /etc/ssl/verify-test/mail.crt").stdout
    issuer = server.check_output("openssl x509 -noout -issuer -in /etc/ssl/verify-test/mail.crt")
    assert CA_NAME in issuer
    matrix = verify_matrix()
    for port in TLS_PORTS:
        assert matrix[(port, "trusted")] == (0, "Verify return code: 0 (ok)"), (port, matrix[(port, "trusted")])
        # The controls: the same handshake fails without the test CA, and for a name the
        # certificate does not carry, so the success above is the CA's and the name's.
        rc, verdict = matrix[(port, "no-ca")]
        assert rc != 0 and "unable to get local issuer certificate" in verdict, (port, verdict)
        rc, verdict = matrix[(port, "wrong-name")]
        assert rc != 0 and "hostname mismatch" in verdict, (port, verdict)


def test_testssl_finds_no_certificate_or_tls_issue():
    report = tls.testssl_report(NAME, TLS_PORTS, ca_file=CA)
    for port, entries in report.items():
        by_id = {entry["id"].split(" ")[0]: entry for entry in entries}
        # The certificate checks ran, and passed: chain to the test CA, the name, the dates.
        for finding in ("cert_chain_of_trust", "cert_trust", "cert_expirationStatus", "cert_signatureAlgorithm"):
            assert by_id[finding]["severity"] == "OK", (port, by_id[finding])
        assert by_id["cert_caIssuers"]["finding"] == CA_NAME, (port, by_id["cert_caIssuers"])
        cert_issues = [
            entry
            for entry in entries
            if entry["id"].startswith(CERT_FINDINGS) and entry["severity"] not in ("OK", "INFO")
        ]
        assert cert_issues == [], (port, cert_issues)
        severe = [entry for entry in entries if entry["severity"] in tls.SEVERE]
        assert severe == [], (port, severe)


# -- reloads under load -----------------------------------------------------------

# Sends the messages with smtp-source, one process (-m 1) per message, at a steady rate; each
# message's subject carries its number. The last `held` messages wait until the file `go` exists
# (the test makes it once Postfix logged its reload), so that the sending goes on after the
# reload however long the run takes to get there. Prints what failed.
_SENDER = r"""
import json, os, subprocess, sys, time
count, rate, held, go, server, sender, recipient = json.loads(sys.argv[1])
out = {"start": time.time(), "failed": [], "finished": 0}
running = []
def reap(block=False):
    for item in list(running):
        number, proc = item
        if block:
            proc.wait()
        if proc.poll() is None:
            continue
        output = proc.stdout.read().decode(errors="replace")
        if proc.returncode != 0:
            out["failed"].append([number, proc.returncode, output[-300:]])
        running.remove(item)
        out["finished"] += 1
due = time.time()
for number in range(1, count + 1):
    if number == count - held + 1:
        out["waited"] = time.time()
        while not os.path.exists(go):
            reap()
            time.sleep(0.1)
        out["released"] = due = max(due, time.time())
    delay = due - time.time()
    if delay > 0:
        time.sleep(delay)
    due += 1 / rate
    reap()
    running.append((number, subprocess.Popen(
        ["smtp-source", "-m", "1", "-f", sender, "-t", recipient, "-M", "client.outside.test",
         "-S", f"resilience load {number:04d}", server],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
reap(block=True)
out["end"] = time.time()
print(json.dumps(out))
"""

# An IMAP reader on 993 (the name verified against the client's trust store): one session that
# fetches every message of the INBOX again and again until the stop file appears, checking each
# against its first fetch and against the token in its body; on a lost connection it records the
# error and logs in again. Beside it, a fresh login every half second.
_READER = r"""
import hashlib, imaplib, json, os, ssl, sys, threading, time
server, user, password, stop, ready = json.loads(sys.argv[1])
ctx = ssl.create_default_context()
out = {"sessions": 0, "fetches": [], "wrong": [], "errors": [], "relogin_failed": [], "logins": []}
def connect():
    c = imaplib.IMAP4_SSL(server, 993, ssl_context=ctx, timeout=20)
    c.login(user, password)
    c.select("INBOX", readonly=True)
    out["sessions"] += 1
    return c
def logins():
    while not os.path.exists(stop):
        t = time.time()
        try:
            c = imaplib.IMAP4_SSL(server, 993, ssl_context=ctx, timeout=20)
            c.login(user, password)
            c.logout()
            out["logins"].append([t, "ok"])
        except Exception as e:
            out["logins"].append([t, f"{type(e).__name__}: {e}"])
        time.sleep(0.5)
c = connect()
uids = c.uid("SEARCH", None, "ALL")[1][0].split()
out["messages"] = len(uids)
first = {}
open(ready, "w").close()
thread = threading.Thread(target=logins)
thread.start()
while not os.path.exists(stop):
    for uid in uids:
        try:
            typ, data = c.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = data[0][1]
            subject = [l for l in raw.split(b"\r\n") if l.startswith(b"Subject: ")][0][9:]
            token = b"token " + hashlib.sha256(subject).hexdigest().encode()
            if typ != "OK" or token not in raw or first.setdefault(uid, raw) != raw:
                out["wrong"].append([time.time(), uid.decode(), typ])
            out["fetches"].append(time.time())
        except (imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError, IndexError) as e:
            out["errors"].append([time.time(), f"{type(e).__name__}: {e}"])
            try:
                c = connect()
            except Exception as e:
                out["relogin_failed"].append([time.time(), f"{type(e).__name__}: {e}"])
                time.sleep(0.2)
        time.sleep(0.02)
thread.join()
out["distinct"] = len(first)
c.logout()
print(json.dumps(out))
"""

_MAILDIR_SUMMARY = r"""
import email, glob, json, re, sys
out = []
for path in glob.glob(sys.argv[1] + "/new/*") + glob.glob(sys.argv[1] + "/cur/*"):
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f)
    queue_ids = [m.group(1) for r in msg.get_all("Received", []) for m in [re.search(r"\(Postfix\) with E?SMTP id (\w+)", r)] if m]
    out.append([msg["Subject"], queue_ids])
print(json.dumps(out))
"""


def docker_exec(role: str, *argv: str) -> subprocess.Popen:
    """Start a command in a scenario container in the background (its output is read at the end)."""
    return subprocess.Popen(
        ["docker", "exec", helpers.instance(role), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen, timeout: int = 120) -> dict:
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads(stdout)


def journal(server, since: float, *identifiers: str) -> list[tuple[float, str, str]]:
    """(time, identifier, message) of the server's journal entries since *since* from *identifiers*."""
    matches = " + ".join(f"SYSLOG_IDENTIFIER={name}" for name in identifiers)
    out = server.check_output(
        f"journalctl --no-pager -o json --output-fields=MESSAGE,SYSLOG_IDENTIFIER --since @{int(since)} {matches}"
    )
    entries = []
    for line in out.splitlines():
        entry = json.loads(line)
        message = entry.get("MESSAGE", "")
        if isinstance(message, list):  # journald stores non-UTF-8 text as bytes
            message = bytes(message).decode(errors="replace")
        entries.append((int(entry["__REALTIME_TIMESTAMP"]) / 1e6, entry.get("SYSLOG_IDENTIFIER", ""), message))
    return entries


def maildir_count(server, user: str) -> int:
    return int(server.check_output(f"find {VMAIL}/{user}/new {VMAIL}/{user}/cur -type f | wc -l"))


def queue(server) -> list[dict]:
    return [json.loads(line) for line in server.check_output("postqueue -j").splitlines()]


def reader_message(number: int) -> str:
    subject = f"reader {number:02d}"
    token = hashlib.sha256(subject.encode()).hexdigest()
    return helpers.message("sender@outside.test", READER[0], subject, f"token {token}\nline two of {subject}")


@pytest.fixture(scope="module")
def load(server):
    """The run under mail load: smtp-source sends while converge changes main.cf and Postfix reloads."""
    client = helpers.host("client")
    assert maildir_count(server, "load") == 0
    client.run_expect([0], "rm -f /tmp/sender.go")
    since = float(server.check_output("date +%s.%N"))
    sender = docker_exec(
        "client",
        "python3",
        "-c",
        _SENDER,
        json.dumps([MESSAGES, SEND_RATE, HELD, "/tmp/sender.go", f"{NAME}:25", "load-sender@outside.test", LOAD]),
    )
    # Converge once the first message arrived, so the reload cannot precede the sending.
    for _attempt in range(60):
        if maildir_count(server, "load") > 0:
            break
        time.sleep(0.25)
    converge_start = time.time()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        run = pool.submit(helpers.run_converge, {**LOAD_CHANGE, **NO_PROBE})
        # Release the held messages once Postfix logged its reload (or when the run ended without one,
        # which the tests then report).
        while not run.done():
            reloaded = server.run(
                f"journalctl -t postfix/master -o cat --since @{int(converge_start)} | grep -c '^reload -- '"
            )
            if reloaded.stdout.strip() not in ("", "0"):
                break
            time.sleep(0.5)
        client.run_expect([0], "touch /tmp/sender.go")
        converge = run.result()
    converge_end = time.time()
    sent = finish(sender)
    # The queue drains and the Maildir is complete (or stops growing). A message the old queue
    # manager delivered but had not yet removed when the reload ended it stays in the incoming queue
    # until the new one scans it again (qmgr: "skipped, still being delivered"; its next scan may be
    # minutes away): after 5 s the test asks for that scan (postqueue -f), and the Maildir check
    # proves it is not delivered twice.
    leftovers: dict[str, dict] = {}
    count = -1
    for attempt in range(60):
        previous, count = count, maildir_count(server, "load")
        entries = queue(server)
        if not entries and count in (MESSAGES, previous):
            break
        if entries and attempt >= 5:
            leftovers.update((entry["queue_id"], entry) for entry in entries)
            server.run_expect([0], "postqueue -f")
        time.sleep(1)
    return {
        "converge": converge,
        "converge_start": converge_start,
        "converge_end": converge_end,
        "sent": sent,
        "queue": server.check_output("postqueue -j"),
        "leftovers": list(leftovers.values()),
        "journal": journal(server, since - 1, "postfix/master", "postfix/lmtp", "dovecot"),
    }


@pytest.fixture(scope="module")
def reading(server):
    """The run under an IMAP reader: converge changes a Dovecot setting and Dovecot reloads."""
    client = helpers.host("client")
    # The reader's messages, each with a token derived from its subject.
    steps: list[list[str]] = [["ehlo", "client.outside.test"]]
    for number in range(1, READER_MESSAGES + 1):
        steps += [
            ["mail", "FROM:<sender@outside.test>"],
            ["rcpt", f"TO:<{READER[0]}>"],
            ["data", reader_message(number)],
        ]
    replies = helpers.smtp("client", NAME, 25, steps)
    assert [code for code, _text in replies[5::4]] == [250] * READER_MESSAGES, replies
    for _attempt in range(30):
        if maildir_count(server, "reader") == READER_MESSAGES:
            break
        time.sleep(1)
    assert maildir_count(server, "reader") == READER_MESSAGES

    client.run_expect([0], "rm -f /tmp/reader.stop /tmp/reader.ready")
    since = float(server.check_output("date +%s.%N"))
    reader = docker_exec(
        "client", "python3", "-c", _READER, json.dumps([NAME, *READER, "/tmp/reader.stop", "/tmp/reader.ready"])
    )
    for _attempt in range(40):
        if client.file("/tmp/reader.ready").exists:
            break
        time.sleep(0.5)
    time.sleep(1)  # the reader reads before the run starts
    converge_start = time.time()
    converge = helpers.run_converge({**READ_CHANGE, **NO_PROBE})
    # The reader goes on until Dovecot has ended the previous configuration's processes (some
    # seconds after its reload) and for a few seconds after that.
    sighups = journal(server, converge_start, "dovecot")
    reload_time = next((t for t, _ident, msg in sighups if "SIGHUP received" in msg), time.time())
    time.sleep(max(1.0, reload_time + 12 - time.time()))
    client.run_expect([0], "touch /tmp/reader.stop")
    read = finish(reader)
    return {"converge": converge, "read": read, "journal": journal(server, since - 1, "dovecot")}


def test_the_load_run_changed_main_cf(server, load):
    converge = load["converge"]
    assert converge.returncode == 0, (converge.stdout + converge.stderr)[-3000:]
    assert server.check_output("postconf -h smtpd_banner") == LOAD_CHANGE["postfix_smtpd_banner"]
    greeting = helpers.smtp("client", NAME, 25, [])[0]
    assert greeting == (220, f"{NAME} ESMTP resilience reload"), greeting


def postfix_load(load) -> list[float]:
    return [t for t, ident, msg in load["journal"] if ident == "postfix/master" and msg.startswith("reload -- ")]


def test_postfix_reloaded_while_smtp_source_was_sending(load):
    sent = load["sent"]
    assert sent["failed"] == [] and sent["finished"] == MESSAGES, sent
    reload_times = postfix_load(load)
    # One reload, from the run's postfix_config (the mailboxes role's fragment did not change).
    assert len(reload_times) == 1, reload_times
    (reload_time,) = reload_times
    assert load["converge_start"] < reload_time < load["converge_end"]
    delivered = [
        t
        for t, ident, msg in load["journal"]
        if ident == "postfix/lmtp" and f"to=<{LOAD}>" in msg and "status=sent" in msg
    ]
    before = sum(1 for t in delivered if t < reload_time)
    after = len(delivered) - before
    print(
        f"postfix reload at {reload_time:.3f}; smtp-source {sent['start']:.3f}-{sent['end']:.3f} (the last {HELD} "
        f"held {sent['waited']:.3f}-{sent['released']:.3f}); deliveries {min(delivered):.3f}-{max(delivered):.3f}: "
        f"{before} before the reload, {after} after"
    )
    # The reload fell in the middle of the sending: mail was sent and delivered on both sides of it.
    assert sent["start"] < reload_time < sent["end"]
    assert before >= 50 and after >= 50, (before, after)


def test_every_message_arrived_exactly_once(server, load):
    assert load["queue"] == "", load["queue"]
    summary = json.loads(server.check_output("python3 -c %s %s", _MAILDIR_SUMMARY, f"{VMAIL}/load"))
    subjects = collections.Counter(subject for subject, _ids in summary)
    expected = {f"resilience load {number:04d}" for number in range(1, MESSAGES + 1)}
    missing = sorted(expected - set(subjects))
    duplicated = sorted(subject for subject, n in subjects.items() if n > 1)
    unexpected = sorted(set(subjects) - expected)
    assert (missing, duplicated, unexpected) == ([], [], []), (missing[:20], duplicated[:20], unexpected[:20])
    assert len(summary) == MESSAGES
    # Each message went through Postfix once: every message carries one Postfix queue id, and the
    # LMTP client logged exactly these ids as delivered, each as often as it is in the Maildir
    # (Postfix reuses a short queue id once its message has left the queue, so an id may recur for
    # two different messages, and then it must be logged twice).
    queue_ids = collections.Counter(ids[0] for _subject, ids in summary if len(ids) == 1)
    assert sum(queue_ids.values()) == MESSAGES
    lmtp = collections.Counter(
        msg.split(":", 1)[0]
        for _t, ident, msg in load["journal"]
        if ident == "postfix/lmtp" and f"to=<{LOAD}>" in msg and "status=sent" in msg
    )
    assert lmtp == queue_ids, (lmtp - queue_ids, queue_ids - lmtp)
    # Whatever was left in the queue after the sending had been delivered already.
    leftovers = [entry["queue_id"] for entry in load["leftovers"]]
    assert set(leftovers) <= set(lmtp), (leftovers, load["leftovers"])
    print(
        f"{len(summary)} messages in {VMAIL}/load, {len(subjects)} distinct numbers, {len(queue_ids)} distinct queue ids; "
        f"left in the queue after the reload, already delivered: {leftovers}"
    )


def dovecot_reload(reading) -> float:
    sighups = [t for t, ident, msg in reading["journal"] if ident == "dovecot" and "SIGHUP received - reloading" in msg]
    assert len(sighups) == 1, sighups
    return sighups[0]


def test_the_reading_run_changed_dovecot(server, reading):
    converge = reading["converge"]
    assert converge.returncode == 0, (converge.stdout + converge.stderr)[-3000:]
    assert server.check_output("doveconf -h ssl_cipher_list") == READ_CHANGE["dovecot_ssl_cipher_list"]
    assert server.check_output("postconf -h smtpd_banner") == "$myhostname ESMTP"


def test_the_imap_reader_kept_reading_through_the_dovecot_reload(reading):
    read = reading["read"]
    reload_time = dovecot_reload(reading)
    fetches = read["fetches"]
    before = sum(1 for t in fetches if t < reload_time)
    after = len(fetches) - before
    # What Dovecot does with the session, from its own log: after a reload it lets the processes of
    # the previous configuration run for a few seconds, then ends those still running ("Processes
    # aren't dying after reload, sent SIGTERM to N processes"); the client reads "BYE Server
    # shutting down" or EOF.
    kills = [
        t for t, ident, msg in reading["journal"] if ident == "dovecot" and "Processes aren't dying after reload" in msg
    ]
    print(
        f"dovecot reload at {reload_time:.3f}; {len(fetches)} fetches {fetches[0]:.3f}-{fetches[-1]:.3f}: "
        f"{before} before the reload, {after} after; sessions {read['sessions']}; client errors {read['errors']}; "
        f"Dovecot ended the old processes at {kills}"
    )
    assert read["messages"] == READER_MESSAGES and read["distinct"] == READER_MESSAGES
    # Every fetch returned the message it returned the first time, with the token its subject gives.
    assert read["wrong"] == []
    assert before > 0 and after > 0
    # The reading session lasts until Dovecot ends the old processes, after the reload; then one new
    # login carries on at once (no login failed).
    assert read["relogin_failed"] == []
    assert read["sessions"] == 1 + len(read["errors"])
    assert all(reload_time < kill < reload_time + 30 for kill in kills), (reload_time, kills)
    for lost, _error in read["errors"]:
        assert any(kill - 0.5 < lost < kill + 3 for kill in kills), (lost, kills)
    # Fetches went on after each reconnection.
    assert all(any(t > lost for t in fetches) for lost, _error in read["errors"])


def test_new_logins_work_after_the_dovecot_reload(reading):
    read = reading["read"]
    reload_time = dovecot_reload(reading)
    # Dovecot ends the previous configuration's processes (login processes too) some seconds after
    # the reload; from the last such end on, every login must work.
    settled = max(
        [reload_time]
        + [t for t, ident, msg in reading["journal"] if ident == "dovecot" and "aren't dying after reload" in msg]
    )
    logins = read["logins"]
    failed = [entry for entry in logins if entry[1] != "ok"]
    after = [entry for entry in logins if entry[0] > settled + 1]
    print(f"{len(logins)} fresh logins during the run, {len(after)} after {settled:.3f}; failed: {failed}")
    assert len(after) >= 3 and all(result == "ok" for _t, result in after), after
    # A login may meet the reload itself (Dovecot closes it); none failed outside that moment.
    assert all(reload_time - 1 < t < settled + 1 for t, _result in failed), (reload_time, settled, failed)
    session = mailclient.session("imaps", NAME, 993, *READER)
    assert session["login"] == "OK" and session["exists"] == READER_MESSAGES, session


# -- a container restart ---------------------------------------------------------


def send_to_anna(subject: str) -> list[tuple[int, str]]:
    """One message from the outside client to port 25 of the server's name; the replies."""
    steps = [
        ["ehlo", "client.outside.test"],
        ["mail", "FROM:<sender@outside.test>"],
        ["rcpt", f"TO:<{ANNA[0]}>"],
        ["data", helpers.message("sender@outside.test", ANNA[0], subject)],
    ]
    return helpers.smtp("client", NAME, 25, steps)


def started_at() -> str:
    """When Docker last started the server container."""
    argv = ["docker", "inspect", "--format", "{{.State.StartedAt}}", helpers.instance("server")]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def test_a_container_restart_brings_everything_back(server):
    # A message queued before the restart: Dovecot stopped, so LMTP defers it, and then held.
    server.run_expect([0], "systemctl stop dovecot")
    subject = "held across the restart"
    replies = send_to_anna(subject)
    assert replies[-1][0] == 250, replies
    held_id = replies[-1][1].split("queued as ")[1].strip()
    for _attempt in range(30):
        entries = [entry for entry in queue(server) if entry["queue_id"] == held_id]
        if entries and entries[0]["queue_name"] == "deferred":
            break
        time.sleep(1)
    assert entries and entries[0]["queue_name"] == "deferred", queue(server)
    server.run_expect([0], f"postsuper -h {held_id}")
    assert [entry["queue_name"] for entry in queue(server) if entry["queue_id"] == held_id] == ["hold"]

    started = started_at()
    # PID 1 is systemd, which takes SIGTERM as "re-execute", not "stop", and Docker 20.10 ignores
    # `docker restart --signal`: a plain `docker restart` ends in SIGKILL after its 10 s. --time 0
    # is that restart without the wait: the container is killed, as on a power cut.
    subprocess.run(["docker", "restart", "--time", "0", helpers.instance("server")], check=True, capture_output=True)
    after = started_at()
    assert after != started
    state = helpers.booted(server)
    assert state == "running", server.run("systemctl --failed --no-legend").stdout
    assert server.check_output("cat /proc/1/comm") == "systemd"
    for service in ("postfix", "dovecot"):
        assert server.service(service).is_running, service
        assert server.service(service).is_enabled, service

    # The address may change with a restart: pin the name again, from docker inspect.
    pin_name(helpers.container_ip("server"))
    matrix = verify_matrix()
    for port in TLS_PORTS:
        assert matrix[(port, "trusted")] == (0, "Verify return code: 0 (ok)"), (port, matrix[(port, "trusted")])

    # The held message survived; released, it is delivered.
    assert [entry["queue_name"] for entry in queue(server) if entry["queue_id"] == held_id] == ["hold"]
    server.run_expect([0], f"postsuper -H {held_id} && postqueue -i {held_id}")
    # And a message sent after the restart is delivered too.
    replies = send_to_anna("sent after the restart")
    assert replies[-1][0] == 250, replies
    session = {}
    for _attempt in range(30):
        session = mailclient.session("imaps", NAME, 993, *ANNA)
        if len(session.get("subjects", [])) >= 2:
            break
        time.sleep(1)
    assert sorted(session["subjects"]) == [f"Subject: {subject}", "Subject: sent after the restart"], session
    assert queue(server) == []


def test_the_scenario_settings_come_back(server):
    # Converge as molecule does (the scenario's own values, without the probe): the banner is the
    # default again, and molecule's idempotence step after verify then proves a further run, the
    # verify role's included, changes nothing.
    result = helpers.run_converge(NO_PROBE)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert server.check_output("postconf -h smtpd_banner") == "$myhostname ESMTP"
