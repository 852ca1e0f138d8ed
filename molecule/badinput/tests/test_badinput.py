"""Hostile input on a converged full server: every case fails before any change, naming its variable.

The cases are data, one YAML list per file in ``molecule/badinput/cases/*.yml`` (read in sorted order):

    - id: relay-two-halves          # unique, kebab-case, prefixed with its class
      role: postfix                 # the role applied (postmaster.mailserver.<role>) ...
      vars:                         # ... with these variables on top of vars/server.yml
        postfix_mynetworks: [0.0.0.0/1, 128.0.0.0/1]
      expect: "postfix_mynetworks: ..."   # an exact substring of the failure message

or, for a module that another role or playbook could call directly, ``module: <name>`` (called as
postmaster.mailserver.<name>) with its ``args:`` in place of ``role`` and ``vars``.

The test generates playbooks from them (SHARDS, run at once; one block per case: the role or module,
a rescue that records ``ansible_failed_result.msg``, and a check from the outside client that SMTP,
submission and IMAP still answer). The values are data: a string that looks like Jinja is
passed to the role as it is written (tagged ``!unsafe``), never evaluated.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import helpers
import mailclient
import pytest
import yaml

HERE = Path(__file__).resolve().parent
SCENARIO = HERE.parent
CASES_DIR = SCENARIO / "cases"
SERVER = yaml.safe_load((SCENARIO / "vars" / "server.yml").read_text())
PASSWORDS = [user["password"] for domain in SERVER["mailboxes_domains"] for user in domain["users"]]
ALICE = ("alice@bad.example.org", PASSWORDS[0])
SERVER_HOST = "pm-badinput-server"
CLIENT_HOST = "pm-badinput-client"

#: The issue asks for at least this many cases on the full server (all cases/*.yml files together).
MIN_CASES = 40
#: The cases run in this many ansible-playbook processes at once, each with its share (every
#: SHARDS-th case). A case refuses before any change, so they cannot disturb each other; most of a
#: case's time is spent waiting on the containers, so the shards overlap well.
SHARDS = 2
ROLES = (
    "postfix",
    "dovecot",
    "mailboxes",
    "amavis",
    "policyd_spf",
    "dkim",
    "srs",
    "firewall",
    "fail2ban",
    "certificate",
    "saslauthd",
    "verify",
    "backup",
)
ROLE_KEYS = {"id", "role", "vars", "expect"}
MODULE_KEYS = {"id", "module", "args", "expect"}
ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")

#: Everything the roles manage, the accounts and root's keys: every file and directory below these
#: paths, byte for byte, with type, mode, owner and mtime.
WATCHED = (
    "/etc/postfix",  # main.cf, master.cf, the maps, the fragments (postmaster.d)
    "/etc/dovecot",  # Dovecot's configuration and the mailboxes' passwd-file
    "/etc/amavis",
    "/etc/fail2ban",
    "/etc/clamav",
    "/var/lib/clamav",  # the signature files the amavis role writes, and its manifest
    "/etc/postfix-policyd-spf-python",
    "/etc/opendkim.conf",  # the dkim role: OpenDKIM's configuration, its tables and the private keys
    "/etc/opendkim",
    "/etc/dkimkeys",
    "/etc/postsrsd.secret",  # the srs role: the SRS secret (its settings are in /etc/default)
    "/etc/systemd/system",  # units, drop-ins (ClamAV's, Postfix's, Dovecot's) and enablement links
    "/etc/nftables.conf",
    "/etc/ssl/postmaster",
    "/etc/aliases",
    "/etc/aliases.db",
    "/etc/mailname",
    "/etc/skel",
    "/var/mail",  # the mailboxes (vmail below it)
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/default",
    "/etc/tmpfiles.d",
    "/root/.ssh",  # a sentinel (prepare.yml writes authorized_keys): no path may reach it
    "/etc/postmaster",  # the backup role's password, repository and job settings
    "/usr/local/sbin",  # the backup role's job
)
#: Directories a path variable must never take over: type, mode and owner (their contents and
#: mtimes change with normal use: Ansible's own temporary files, the daemons' sockets).
SENTINELS = (
    "/tmp",
    "/var/tmp",
    "/root",
    "/home",
    "/var/spool/postfix",
    "/var/spool/postfix/private",
    "/var/spool/postfix/public",
    "/var/lib/amavis",
    "/var/lib/amavis/virusmails",
)

#: Run on the outside client after every case: SMTP and submission greet 220, IMAPS greets * OK.
PROBE = r"""
import socket, ssl, sys
host = sys.argv[1]
out = []
for port in (25, 587):
    try:
        with socket.create_connection((host, port), timeout=10) as s:
            out.append(f"{port}:" + s.recv(512).decode(errors="replace")[:3])
    except OSError as e:
        out.append(f"{port}:{type(e).__name__}")
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
try:
    with socket.create_connection((host, 993), timeout=10) as raw, ctx.wrap_socket(raw) as s:
        out.append("993:" + s.recv(512).decode(errors="replace")[:4])
except OSError as e:
    out.append(f"993:{type(e).__name__}")
print(" ".join(out))
"""
PROBE_OK = "25:220 587:220 993:* OK"


def load_cases() -> list[dict[str, Any]]:
    """Every case of every cases/*.yml file, in sorted file order; well-formed, ids unique."""
    cases: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for path in sorted(CASES_DIR.glob("*.yml")):
        entries = yaml.safe_load(path.read_text()) or []
        assert isinstance(entries, list), f"{path.name}: a YAML list of cases"
        for number, case in enumerate(entries):
            where = f"{path.name}[{number}]"
            assert isinstance(case, dict), f"{where}: a mapping"
            assert set(case) in (ROLE_KEYS, MODULE_KEYS), (
                f"{where}: keys {sorted(case)}, want {sorted(ROLE_KEYS)} or {sorted(MODULE_KEYS)}"
            )
            case_id = case["id"]
            assert isinstance(case_id, str) and ID.match(case_id), f"{where}: id {case_id!r} is not kebab-case"
            assert case_id not in seen, f"{where}: id {case_id} is also in {seen.get(case_id)}"
            seen[case_id] = where
            if "role" in case:
                assert case["role"] in ROLES, f"{where}: role {case['role']!r} is not one of {ROLES}"
                assert isinstance(case["vars"], dict) and case["vars"], f"{where}: vars must be a non-empty mapping"
            else:
                assert re.fullmatch(r"[a-z_]+", str(case["module"])), f"{where}: module {case['module']!r}"
                assert isinstance(case["args"], dict), f"{where}: args must be a mapping"
            assert isinstance(case["expect"], str) and case["expect"].strip(), f"{where}: expect must be a message"
            cases.append(case)
    return cases


CASES = load_cases()


class Unsafe(str):
    """A string Ansible must not template (dumped with the !unsafe tag)."""


class CaseDumper(yaml.SafeDumper):
    pass


CaseDumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value)))


def as_data(value: Any) -> Any:
    """*value* with every string that Ansible would template marked !unsafe."""
    if isinstance(value, str):
        return Unsafe(value) if any(mark in value for mark in ("{{", "{%", "{#")) else value
    if isinstance(value, dict):
        return {as_data(key): as_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_data(item) for item in value]
    return value


def case_task(case: dict[str, Any]) -> dict[str, Any]:
    if "role" in case:
        return {
            "name": f"Apply the {case['role']} role",
            "ansible.builtin.include_role": {"name": f"postmaster.mailserver.{case['role']}"},
            "vars": as_data(case["vars"]),
        }
    return {
        "name": f"Call the {case['module']} module",
        f"postmaster.mailserver.{case['module']}": as_data(case["args"]),
    }


def playbook(cases: list[dict[str, Any]], results: Path) -> str:
    """The playbook that throws *cases* at the server, one block/rescue/always per case."""
    tasks: list[dict[str, Any]] = []
    # What answered after each case: each probe registers under its own name, read once at the end.
    services: dict[str, str] = {}
    for number, case in enumerate(cases):
        record = f"{{{{ badinput_results | combine({{{case['id']!r}: ansible_failed_result.msg | default('') | string}}) }}}}"
        probe = f"badinput_probe_{number}"
        services[case["id"]] = f"{{{{ {probe}.stdout | default('') | trim }}}}"
        tasks.append(
            {
                "name": f"Case {case['id']}",
                "block": [case_task(case)],
                "rescue": [
                    {
                        "name": f"Record the failure of {case['id']}",
                        "ansible.builtin.set_fact": {"badinput_results": record},
                    }
                ],
                "always": [
                    {
                        "name": f"Check from outside that the services answer after {case['id']}",
                        # raw: no module to ship, a third of the time of command.
                        "ansible.builtin.raw": f"python3 -c {shlex.quote(PROBE)} {{{{ badinput_server_ip }}}}",
                        "delegate_to": CLIENT_HOST,
                        "register": probe,
                        "changed_when": False,
                        "failed_when": False,
                    },
                ],
            }
        )
    tasks.append(
        {
            "name": "Write the results for the test",
            "ansible.builtin.copy": {
                "content": "{{ {'failures': badinput_results, 'services': badinput_services} | to_nice_json }}\n",
                "dest": str(results),
                "mode": "0600",
            },
            "delegate_to": "localhost",
            # A file of the test on the controller, not a change to the host.
            "changed_when": False,
        }
    )
    play = {
        "name": "Throw the hostile inputs at the converged server",
        "hosts": "mail",
        "gather_facts": True,
        "vars_files": [str(SCENARIO / "vars" / "server.yml")],
        "vars": {
            "badinput_results": {},
            "badinput_services": services,
            "badinput_server_ip": f"{{{{ hostvars[{SERVER_HOST!r}]['ansible_facts']['default_ipv4']['address'] }}}}",
        },
        "tasks": tasks,
    }
    return "---\n" + yaml.dump([play], Dumper=CaseDumper, sort_keys=False, allow_unicode=True, width=200)


def snapshot(h) -> str:
    """WATCHED (each file and directory: type, mode, owner, mtime, checksum), SENTINELS, the live ruleset."""
    paths = " ".join(WATCHED)
    return h.check_output(
        f"find {paths} -xdev -printf '%p %y %m %u:%g %T@ %l\\n' 2>/dev/null | sort; "
        f"find {paths} -xdev -type f -exec sha256sum {{}} + 2>/dev/null | sort; "
        f"stat -c '%n %F %a %U:%G' {' '.join(SENTINELS)} 2>&1; "
        "echo '# nft -s list ruleset'; nft -s list ruleset"
    )


def ansible_playbook(playbook: Path, *args: str) -> subprocess.CompletedProcess:
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, str(playbook), *args], capture_output=True, text=True, check=False
    )


def recap(run: subprocess.CompletedProcess) -> str:
    return [line for line in run.stdout.splitlines() if line.startswith(SERVER_HOST)][-1]


def test_there_are_enough_cases():
    ids = [case["id"] for case in CASES]
    assert len(set(ids)) == len(ids) == len(CASES)
    assert len(CASES) >= MIN_CASES, f"{len(CASES)} cases in {CASES_DIR}, the issue asks for at least {MIN_CASES}"


class UnsafeLoader(yaml.SafeLoader):
    """Reads the generated playbook back: a !unsafe string comes back as Unsafe."""


UnsafeLoader.add_constructor("!unsafe", lambda loader, node: Unsafe(loader.construct_scalar(node)))


def test_a_jinja_value_is_passed_as_data():
    value = "{{ lookup('pipe', 'id') }}"
    case = {"id": "x-y", "role": "postfix", "vars": {"postfix_myhostname": value, "postfix_mynetworks": ["10/8"]}}
    play = yaml.load(playbook([{**case, "expect": "x"}], Path("/r")), Loader=UnsafeLoader)[0]
    task = play["tasks"][0]["block"][0]
    assert task["vars"] == case["vars"]
    assert isinstance(task["vars"]["postfix_myhostname"], Unsafe)
    assert not isinstance(task["vars"]["postfix_mynetworks"][0], Unsafe)


@pytest.fixture(scope="module")
def thrown(server):
    """Throw every case (SHARDS playbook runs at once), with the host's state before and after."""
    before = snapshot(server)
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    shards = [CASES[number::SHARDS] for number in range(SHARDS) if CASES[number::SHARDS]]
    results: dict[str, dict[str, str]] = {"failures": {}, "services": {}}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        started = []
        for number, shard in enumerate(shards):
            results_file = Path(tmp) / f"results-{number}.json"
            generated = Path(tmp) / f"cases-{number}.yml"
            generated.write_text(playbook(shard, results_file))
            command = ["ansible-playbook", "-i", inventory, str(generated)]
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            started.append((shard, results_file, command, process))
        for shard, results_file, command, process in started:
            stdout, stderr = process.communicate()
            runs.append((shard, subprocess.CompletedProcess(command, process.returncode, stdout, stderr)))
            if results_file.exists():
                for key, values in json.loads(results_file.read_text()).items():
                    results[key].update(values)
    return {"before": before, "after": snapshot(server), "runs": runs, "results": results}


def test_the_playbook_ran_every_case_and_changed_nothing(thrown):
    for shard, run in thrown["runs"]:
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-4000:]
        line = recap(run)
        assert "changed=0" in line and f"rescued={len(shard)}" in line, line
    assert sum(len(shard) for shard, _run in thrown["runs"]) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_every_case_fails_naming_its_variable(thrown, case):
    failures = thrown["results"].get("failures", {})
    assert case["id"] in failures, f"{case['id']} was accepted (no failure recorded); failures: {sorted(failures)}"
    assert case["expect"] in failures[case["id"]], failures[case["id"]]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_the_services_answer_after_every_case(thrown, case):
    services = thrown["results"].get("services", {})
    assert services.get(case["id"]) == PROBE_OK, services.get(case["id"])


def test_the_host_is_byte_identical(thrown):
    before, after = thrown["before"].splitlines(), thrown["after"].splitlines()
    changed = list(difflib.unified_diff(before, after, "before", "after", n=0, lineterm=""))
    assert thrown["after"] == thrown["before"], "\n".join(changed[:80])


#: What the snapshot must hold on the converged server (so that the comparison above compares
#: something): a file of each role, the sentinels, and the firewall role's live table.
COVERED = (
    "/etc/postfix/main.cf f ",
    "/etc/postfix/master.cf f ",
    "/etc/dovecot/postmaster-mailboxes.users f ",
    "/etc/amavis/conf.d/60-postmaster f ",
    "/etc/clamav/clamd.conf f ",
    "/var/lib/clamav/eicar.hdb f ",
    "/etc/postfix-policyd-spf-python/policyd-spf.conf f ",
    "/etc/opendkim.conf f ",
    "/etc/opendkim/KeyTable f ",
    "/etc/default/postsrsd f ",
    "/etc/postsrsd.secret f 600 root:root ",
    "/etc/systemd/system/clamav-daemon.service.d/postmaster-database.conf f ",
    "/etc/nftables.conf f ",
    "/etc/ssl/postmaster d ",
    "/var/mail/vmail/bad.example.org d ",
    "/etc/shadow f ",
    "/root/.ssh/authorized_keys f 600 root:root ",
    "/tmp directory 1777 root:root",
    "/root directory 700 root:root",
    "table inet postmaster {",
)


@pytest.mark.parametrize("needle", COVERED)
def test_the_snapshot_covers_what_the_roles_manage(thrown, needle):
    assert needle in thrown["before"]


def test_no_secret_in_any_message(thrown):
    text = "".join(run.stdout + run.stderr for _shard, run in thrown["runs"]) + json.dumps(thrown["results"])
    for secret in PASSWORDS:
        assert secret not in text


def test_the_services_still_answer(thrown, server_ip):
    assert thrown["results"]
    for port in (25, 587):
        replies = helpers.smtp("client", server_ip, port, [["ehlo", "client.outside.test"]])
        assert replies[0][0] == 220, (port, replies)
    session = mailclient.session("imaps", server_ip, 993, *ALICE)
    assert session.get("login") == "OK", session


def test_a_verbose_rerun_changes_nothing_and_shows_no_password(thrown):
    """After the cases, the full converge again: changed=0, and -vvv shows no password anywhere."""
    run = ansible_playbook(SCENARIO / "converge.yml", "-vvv")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    line = recap(run)
    assert "changed=0" in line, line
    for secret in PASSWORDS:
        assert secret not in output
