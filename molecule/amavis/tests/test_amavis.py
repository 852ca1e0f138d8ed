"""amavis with ClamAV and SpamAssassin in front of Postfix, proven with mail from the outside client.

The tests run in file order: the first ones check the converged defaults, the later ones switch
settings with the role alone (tests/amavis_only.yml) and leave the next setting in place: the
negative control (restored by the role), D_REJECT before the queue, ClamAV off, and the role off.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate

import helpers
import pytest

USER = "mailuser"
RCPT = f"{USER}@mail.example.test"
SENDER = "tester@mail.example.test"
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
WATCHED = ("/etc/amavis", "/etc/clamav", "/etc/postfix", "/etc/systemd/system/clamav-daemon.service.d")
CLAMD_SOCKET = "/var/run/clamav/clamd.ctl"


def message(token: str, kind: str = "clean") -> str:
    """A message whose Message-ID carries *token* (amavis logs it): clean, eicar-attachment, eicar-inline, gtube."""
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = RCPT
    msg["Subject"] = f"{kind} {token}"
    msg["Message-ID"] = f"<{token}@client.outside.test>"
    msg["Date"] = formatdate(localtime=False)  # amavis passes a message without one as BAD-HEADER
    if kind == "eicar-attachment":
        msg.set_content(f"The attachment is the EICAR test file. {token}\n")
        # A .txt name: a message blocked only as BANNED (a .com name) would not prove the virus scan.
        msg.add_attachment(EICAR.encode(), maintype="application", subtype="octet-stream", filename="eicar.txt")
    elif kind == "eicar-inline":
        msg.set_content(f"The EICAR test string, inline:\n{EICAR}\n{token}\n")
    elif kind == "gtube":
        msg.set_content(f"{GTUBE}\n{token}\n")
    else:
        msg.set_content(f"A clean message. {token}\n")
    return msg.as_string()


def send(server_ip: str, token: str, kind: str = "clean") -> list[tuple[int, str]]:
    """Send one message from the outside client to port 25; the replies."""
    steps = [["ehlo", "client.outside.test"], ["mail", f"FROM:<{SENDER}>"], ["rcpt", f"TO:<{RCPT}>"],
             ["data", message(token, kind)]]  # fmt: skip
    return helpers.smtp("client", server_ip, 25, steps)


def delivered(server, token: str, timeout: int = 60) -> str | None:
    """The delivered message that carries *token*, or None when none arrived within *timeout* seconds."""
    cmd = (
        f"for i in $(seq {timeout}); do grep -l {token} /home/{USER}/Maildir/new/* 2>/dev/null && exit 0; "
        "sleep 1; done; exit 1"
    )
    found = server.run(cmd)
    return server.file(found.stdout.split()[0]).content_string if found.rc == 0 else None


def now(server) -> int:
    """The server's clock, for journalctl --since (a second early)."""
    return int(server.check_output("date +%s")) - 1


def amavis_log(server, since: int, token: str | None = None, want: str = "", timeout: int = 60) -> str:
    """amavis's journal since *since*, the lines naming *token* (all when None); wait until *want* appears."""
    text = ""
    for _attempt in range(timeout):
        out = server.run(f"journalctl -t amavis --no-pager -o cat --since @{since}").stdout
        text = "\n".join(line for line in out.splitlines() if token is None or token in line)
        if want in text and text:
            return text
        time.sleep(1)
    return text


def headers(text: str) -> str:
    return text.split("\n\n", 1)[0]


def run_role(extra_vars: dict | None = None) -> subprocess.CompletedProcess:
    """The amavis role alone (tests/amavis_only.yml) with extra vars, as a later run by a user."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    cmd = ["ansible-playbook", "-i", inventory, os.path.join(os.path.dirname(__file__), "amavis_only.yml")]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def recap(result: subprocess.CompletedProcess) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return next(line for line in output.splitlines() if line.startswith("pm-amavis-server"))


def clamd_ping(server) -> str:
    script = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1]); s.sendall(b'zPING\\0')\n"
        "print(s.recv(64).rstrip(b'\\0').decode())\n"
    )
    return server.run("python3 -c %s %s", script, CLAMD_SOCKET).stdout.strip()


# -- the converged defaults ------------------------------------------------------------------------


def test_postfix_hands_mail_to_amavis_and_takes_it_back_on_10025(server):
    assert server.check_output("postconf -h content_filter") == "smtp-amavis:[127.0.0.1]:10024"
    assert server.check_output("postconf -h smtpd_proxy_filter") == ""
    client = server.check_output("postconf -M smtp-amavis/unix").split()
    # amavis_max_servers: auto, as the README states it: two processes per processor, no more than the
    # memory holds next to clamd (1100 MB) and the system (512 MB) at 170 MB each, between 2 and 16.
    processors = int(server.check_output("nproc"))
    memtotal_mb = int(server.check_output("awk '/^MemTotal:/ {print $2}' /proc/meminfo")) // 1024
    auto = max(2, min(2 * processors, (memtotal_mb - 512 - 1100) // 170, 16))
    conf = server.file("/etc/amavis/conf.d/60-postmaster").content_string
    assert f"$max_servers = {auto};" in conf
    assert client[:8] == ["smtp-amavis", "unix", "-", "-", "n", "-", str(auto), "smtp"]
    assert "smtp_send_xforward_command=yes" in client and "max_use=20" in client
    reinject = server.check_output("postconf -M 127.0.0.1:10025/inet").split()
    assert reinject[:8] == ["127.0.0.1:10025", "inet", "n", "-", "n", "-", "-", "smtpd"]
    for option in ("content_filter=", "smtpd_proxy_filter=", "mynetworks=127.0.0.0/8",
                   "smtpd_recipient_restrictions=permit_mynetworks,reject",
                   "receive_override_options=no_header_body_checks,no_unknown_recipient_checks,no_milters"):  # fmt: skip
        assert option in reinject, option
    assert "warning" not in server.run("postconf -n").stderr
    assert server.file("/etc/postfix/postmaster.d/40-amavis.json").exists


def test_amavis_answers_on_10024_and_clamd_on_its_socket(server):
    code, greeting = helpers.smtp("server", "127.0.0.1", 10024, [])[0]
    assert code == 220 and "amavis" in greeting
    assert clamd_ping(server) == "PONG"
    conf = server.file("/etc/amavis/conf.d/60-postmaster")
    assert conf.user == "root" and conf.mode == 0o644
    assert "$myhostname = 'mail.example.test';" in conf.content_string
    assert "amavis" in server.check_output("id -nG clamav").split()
    quarantine = server.file("/var/lib/amavis/virusmails")
    assert (quarantine.user, quarantine.group, quarantine.mode) == ("amavis", "amavis", 0o750)


def test_clamd_waits_for_the_signature_files_and_freshclam_is_masked(server):
    for unit in ("clamav-daemon.service", "clamav-daemon.socket"):
        dropin = server.file(f"/etc/systemd/system/{unit}.d/postmaster-database.conf").content_string
        assert "ConditionPathExistsGlob=\nConditionPathExists=/var/lib/clamav/eicar.hdb\n" in dropin
        assert server.service(unit).is_running
    assert server.run("systemctl is-enabled clamav-freshclam.service").stdout.strip() == "masked"
    assert not server.service("clamav-freshclam.service").is_running
    assert server.file("/var/lib/clamav/eicar.hdb").content_string.endswith(":68:Eicar-Test-Signature\n")
    assert server.file("/etc/clamav/clamd.conf").content_string.endswith("ConcurrentDatabaseReload yes\n")


def test_clean_mail_arrives_with_x_virus_scanned(server, server_ip):
    token, since = uuid.uuid4().hex, now(server)
    replies = send(server_ip, token)
    assert [code for code, _text in replies] == [220, 250, 250, 250, 354, 250], replies
    text = delivered(server, token)
    assert text is not None, f"no message with {token} arrived in /home/{USER}/Maildir/new"
    assert "\nX-Virus-Scanned: " in headers(text), headers(text)
    # The mail domain follows "at " (the domain of postfix_myhostname mail.example.test), not nothing.
    scanned = re.findall(r"^X-Virus-Scanned: (.*)$", headers(text), re.MULTILINE)
    assert scanned and all(value.endswith(" at example.test") for value in scanned), scanned
    assert "Passed CLEAN" in amavis_log(server, since, token, want="Passed CLEAN")


# Run on the client: dkimpy verifies the message on stdin against the records mail_dns built
# (/etc/dkim-records.json, written by converge.yml), looked up by name as a DNS server would;
# the message comes base64-encoded as the argument.
VERIFY = r"""
import base64, json, sys, dkim
records = {r["name"].rstrip("."): "".join(r["strings"]).encode() for r in json.load(open("/etc/dkim-records.json"))}
def txt(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    return records.get(name.rstrip("."))
data = base64.b64decode(sys.argv[1])
try:
    ok = dkim.verify(data, dnsfunc=txt)
except dkim.ValidationError:
    ok = False
print(json.dumps({"ok": bool(ok), "names": sorted(records)}))
"""


def dkim_verdict(text: str) -> dict:
    result = helpers.host("client").run("python3 -c %s %s", VERIFY, base64.b64encode(text.encode()).decode())
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def test_a_dkim_signature_made_before_amavis_survives_it(server):
    """Signed once by OpenDKIM (the client is in mynetworks), scanned by amavis, and still valid.

    The re-injection on 10025 runs no milter (no_milters), so the message is not signed twice; the
    headers amavis adds (X-Virus-Scanned) are not among the signed ones. dkimpy on the client
    verifies what was delivered against the records mail_dns built from the server's key, and a
    changed body fails (the negative control).
    """
    token, since = uuid.uuid4().hex, now(server)
    body = f"Signed before the content filter. {token}\nA second line.\n"
    steps = [["ehlo", "localhost"], ["mail", "FROM:<tester@example.test>"], ["rcpt", f"TO:<{RCPT}>"],
             ["data", helpers.message("tester@example.test", RCPT, f"dkim {token}", body=body,
                                      headers=f"Message-ID: <{token}@example.test>\n")]]  # fmt: skip
    replies = helpers.smtp("server", "127.0.0.1", 25, steps)
    assert [code for code, _text in replies] == [220, 250, 250, 250, 354, 250], replies
    text = delivered(server, token)
    assert text is not None, f"no message with {token} arrived in /home/{USER}/Maildir/new"
    head = headers(text)
    assert "\nX-Virus-Scanned: " in head, head
    assert "Passed CLEAN" in amavis_log(server, since, token, want="Passed CLEAN")
    unfolded = head.replace("\n\t", " ").replace("\n ", " ")
    signatures = re.findall(r"^DKIM-Signature: .*$", unfolded, re.MULTILINE)
    assert len(signatures) == 1, head
    assert " d=example.test;" in signatures[0] and " s=mail;" in signatures[0], signatures
    verdict = dkim_verdict(text)
    assert verdict == {"ok": True, "names": ["mail._domainkey.example.test"]}, verdict
    assert dkim_verdict(text.replace("A second line.", "A changed line."))["ok"] is False


@pytest.mark.parametrize("kind", ["eicar-attachment", "eicar-inline"])
def test_eicar_is_blocked_as_infected(server, server_ip, kind):
    token, since = uuid.uuid4().hex, now(server)
    replies = send(server_ip, token, kind)
    assert replies[-1][0] == 250, replies  # after the queue: accepted, then discarded (D_DISCARD)
    log = amavis_log(server, since, token, want="Blocked INFECTED")
    assert "Blocked INFECTED (Eicar-Test-Signature" in log, log
    assert delivered(server, token, timeout=3) is None


def test_gtube_is_blocked_as_its_destiny_says(server, server_ip):
    # D_BOUNCE, the default spam destiny; GTUBE scores 1000, above amavis's DSN cut-off, so no bounce is sent.
    token, since = uuid.uuid4().hex, now(server)
    assert send(server_ip, token, "gtube")[-1][0] == 250
    log = amavis_log(server, since, token, want="Blocked SPAM")
    assert "Blocked SPAM" in log, log
    assert delivered(server, token, timeout=3) is None


@pytest.mark.parametrize(
    ("extra_vars", "named"),
    [
        ({"amavis_final_virus_destiny": "D_DROP"}, ["amavis_final_virus_destiny", "D_DROP"]),
        ({"amavis_final_virus_destiny": "D_REJECT"}, ["amavis_final_virus_destiny", "amavis_postfix_filter"]),
        ({"amavis_sa_kill_level_deflt": "high"}, ["amavis_sa_kill_level_deflt"]),
        ({"amavis_quarantine_dir": "/etc"}, ["amavis_quarantine_dir", "system directory"]),
        ({"amavis_quarantine_dir": "/srv/q'; system('id'); '"}, ["amavis_quarantine_dir"]),
        ({"amavis_max_servers": 0}, ["amavis_max_servers"]),
        ({"amavis_myhostname": "mail"}, ["amavis_myhostname", "fully qualified"]),
        ({"amavis_clamav_min_memory_mb": 100_000_000}, ["amavis_clamav_min_memory_mb", "MB of memory"]),
        ({"amavis_signatures": "mirror", "amavis_freshclam_mirror": "ftp://mirror"}, ["amavis_freshclam_mirror"]),
    ],
    ids=["bad-destiny", "reject-after-queue", "bad-level", "system-dir", "quote", "zero-servers", "short-hostname",
         "memory", "bad-mirror"],
)  # fmt: skip
def test_invalid_input_fails_before_any_change(server, extra_vars, named):
    before = helpers.snapshot(server, *WATCHED)
    helpers.assert_fails_unchanged(server, run_role(extra_vars), named, WATCHED, before)
    assert helpers.smtp("server", "127.0.0.1", 10024, [])[0][0] == 220


# -- the negative control: without the group, the virus check must fail ------------------------------


def test_without_the_amavis_group_clamd_cannot_scan_and_the_role_repairs_it(server, server_ip):
    server.run_expect([0], "gpasswd -d clamav amavis && systemctl restart clamav-daemon.service")
    assert "amavis" not in server.check_output("id -nG clamav").split()
    token, since = uuid.uuid4().hex, now(server)
    assert send(server_ip, token, "eicar-attachment")[-1][0] == 250
    # amavis's failure lines do not name the message; nothing else is sent meanwhile.
    log = amavis_log(server, since, want="ALL VIRUS SCANNERS FAILED")
    # The check that proves the scan would fail here: no INFECTED, but the scanners failed.
    assert "ALL VIRUS SCANNERS FAILED" in log, log
    assert "Blocked INFECTED" not in log, log
    # amavis defers the message (451), so Postfix keeps it in its queue, undelivered.
    assert delivered(server, token, timeout=3) is None
    # The role puts clamav back in the group and restarts clamd; the deferred message is then blocked.
    result = run_role()
    assert "changed=1" in recap(result), (result.stdout + result.stderr)[-3000:]
    assert "amavis" in server.check_output("id -nG clamav").split()
    server.run_expect([0], "postqueue -f")
    log = amavis_log(server, since, token, want="Blocked INFECTED")
    assert "Blocked INFECTED (Eicar-Test-Signature" in log, log
    assert delivered(server, token, timeout=3) is None


def test_with_an_unreachable_mirror_the_role_names_the_database_it_waits_for(server):
    before = helpers.snapshot(server, *WATCHED, mtimes=False)
    owners = helpers.owners(server, *WATCHED)
    # A private mirror where nothing listens (no outside host is ever asked).
    result = run_role({"amavis_signatures": "mirror", "amavis_freshclam_mirror": "http://127.0.0.1:9",
                       "amavis_clamav_database_timeout": 10})  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert (
        "ClamAV has no database: /var/lib/clamav/main.cvd (or main.cld) and /var/lib/clamav/daily.cvd (or daily.cld) "
        "did not appear within 10s" in output
    ), output[-3000:]
    assert "the private mirror http://127.0.0.1:9" in output and '"rolled_back": true' in output
    # Everything came back: the signature files' drop-ins, freshclam masked, clamd and amavis answering.
    assert helpers.snapshot(server, *WATCHED, mtimes=False) == before
    assert helpers.owners(server, *WATCHED) == owners
    assert server.run("systemctl is-enabled clamav-freshclam.service").stdout.strip() == "masked"
    assert clamd_ping(server) == "PONG"
    assert helpers.smtp("server", "127.0.0.1", 10024, [])[0][0] == 220


# -- D_REJECT before the queue ---------------------------------------------------------------------


def test_d_reject_before_the_queue_refuses_eicar_at_end_of_data(server, server_ip):
    result = run_role({"amavis_postfix_filter": "before_queue", "amavis_final_virus_destiny": "D_REJECT",
                       "amavis_final_spam_destiny": "D_PASS"})  # fmt: skip
    assert "changed=2" in recap(result)  # amavis's file and the Postfix fragment
    assert server.check_output("postconf -h smtpd_proxy_filter") == "[127.0.0.1]:10024"
    token, since = uuid.uuid4().hex, now(server)
    replies = send(server_ip, token, "eicar-attachment")
    assert [code for code, _text in replies][:5] == [220, 250, 250, 250, 354], replies
    code, text = replies[5]  # the reply to the end of DATA, from amavis through smtpd
    assert 500 <= code < 600, replies
    assert "INFECTED" in text or "5.7.0" in text, replies
    log = amavis_log(server, since, token, want="Blocked INFECTED")
    assert "Blocked INFECTED (Eicar-Test-Signature" in log and "{Rejected" in log, log


def test_gtube_is_delivered_marked_with_d_pass(server, server_ip):
    token = uuid.uuid4().hex
    assert send(server_ip, token, "gtube")[-1][0] == 250
    text = delivered(server, token)
    assert text is not None, "GTUBE was not delivered with D_PASS"
    assert "\nX-Spam-Flag: YES" in headers(text), headers(text)


def test_clean_mail_flows_before_the_queue(server, server_ip):
    token = uuid.uuid4().hex
    assert send(server_ip, token)[-1][0] == 250
    text = delivered(server, token)
    assert text is not None and "\nX-Virus-Scanned: " in headers(text)


# -- ClamAV switched off: SpamAssassin only ----------------------------------------------------------


def test_without_clamav_clean_mail_flows_and_eicar_is_not_caught(server, server_ip):
    result = run_role({"amavis_clamav_enabled": False})
    assert "changed=2" in recap(result)
    assert not server.service("clamav-daemon.service").is_running
    assert "@bypass_virus_checks_maps = (1);" in server.file("/etc/amavis/conf.d/60-postmaster").content_string
    token = uuid.uuid4().hex
    assert send(server_ip, token)[-1][0] == 250
    assert delivered(server, token) is not None
    # Documented, not hidden: with ClamAV off, EICAR is delivered.
    token, since = uuid.uuid4().hex, now(server)
    assert send(server_ip, token, "eicar-attachment")[-1][0] == 250
    text = delivered(server, token)
    assert text is not None, "EICAR was not delivered with ClamAV off"
    log = amavis_log(server, since, token, want="Passed")
    assert "Passed" in log and "INFECTED" not in log, log


# -- the role switched off: mail flows directly ------------------------------------------------------


def test_switching_the_role_off_takes_the_fragment_out(server, server_ip):
    result = run_role({"amavis_enabled": False})
    assert "changed=2" in recap(result)
    assert server.check_output("postconf -h content_filter") == ""
    assert server.run("postconf -M smtp-amavis/unix").stdout.strip() == ""
    assert not server.file("/etc/postfix/postmaster.d/40-amavis.json").exists
    assert not server.service("amavis.service").is_running
    token = uuid.uuid4().hex
    assert send(server_ip, token)[-1][0] == 250
    text = delivered(server, token)
    assert text is not None
    # Straight from smtpd to the mailbox: one Received header, no hop through 127.0.0.1:10025, no scan.
    assert "X-Virus-Scanned" not in headers(text), headers(text)
    assert headers(text).count("\nReceived: ") == 1, headers(text)
    assert "changed=0" in recap(run_role({"amavis_enabled": False}))
