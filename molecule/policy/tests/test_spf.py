"""The SPF policy service, proven with mail from an outside container under the test's own DNS server.

The mail comes from the dns container: the client container is on the scenario's DNS list
(test_restrictions.py), and a listed client is refused whatever its SPF result.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import helpers
import pytest

USER = "spfuser"
RCPT = f"{USER}@mail.example.test"
CONF = "/etc/postfix-policyd-spf-python/policyd-spf.conf"
WATCHED = ("/etc/postfix", "/etc/postfix-policyd-spf-python")
# The outside container that sends, and whose address the SPF records of the test allow.
SENDER = "dns"


def send(server_ip: str, sender: str, token: str) -> list[tuple[int, str]]:
    """One message from the outside sender, with MAIL FROM *sender*; the replies."""
    steps = [
        ["ehlo", f"{SENDER}.outside.test"],
        ["mail", f"FROM:<{sender}>"],
        ["rcpt", f"TO:<{RCPT}>"],
        ["data", helpers.message(sender, RCPT, f"spf {token}")],
    ]
    return helpers.smtp(SENDER, server_ip, 25, steps)


def delivered(server, token: str) -> str:
    """The delivered message that carries *token* (fails when none arrives)."""
    cmd = f"for i in $(seq 30); do grep -l {token} /home/{USER}/Maildir/new/* 2>/dev/null && exit 0; sleep 1; done; exit 1"
    found = server.run(cmd)
    assert found.rc == 0, f"no message with {token} arrived in /home/{USER}/Maildir/new"
    return server.file(found.stdout.split()[0]).content_string


def run_role(extra_vars: dict | None = None, playbook: str = "spf_only.yml") -> subprocess.CompletedProcess:
    """The policyd_spf role alone (tests/spf_only.yml) with extra vars, as a later run by a user."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    playbook = os.path.join(os.path.dirname(__file__), playbook)
    cmd = ["ansible-playbook", "-i", inventory, playbook]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def received_spf(message: str) -> str:
    return next((line for line in message.splitlines() if line.startswith("Received-SPF:")), "")


def test_the_server_resolves_through_the_test_dns(server):
    dns_ip = helpers.container_ip("dns")
    assert server.file("/etc/resolv.conf").content_string.split() == ["nameserver", dns_ip]
    # Postfix's chroot copy is the same (smtpd runs chrooted on Debian).
    assert server.file("/var/spool/postfix/etc/resolv.conf").content_string.split() == ["nameserver", dns_ip]


def test_postfix_calls_the_policy_service_right_after_reject_unauth_destination(server):
    restrictions = server.check_output("postconf -h smtpd_recipient_restrictions").replace(",", " ").split()
    anchor = restrictions.index("reject_unauth_destination")
    assert restrictions[anchor + 1 : anchor + 3] == ["check_policy_service", "unix:private/policy-spf"]
    assert restrictions.count("check_policy_service") == 1
    assert server.check_output("postconf -h policy-spf_time_limit") == "3600s"
    service = server.check_output("postconf -M policy-spf/unix").split()
    assert service == [
        "policy-spf",
        "unix",
        "-",
        "n",
        "n",
        "-",
        "0",
        "spawn",
        "user=policyd-spf",
        "argv=/usr/bin/policyd-spf",
    ]
    assert "warning" not in server.run("postconf -n").stderr
    assert server.file("/etc/postfix/postmaster.d/50-policyd-spf.json").exists


def test_policyd_spf_conf_holds_the_defaults(server):
    conf = server.file(CONF)
    assert conf.user == "root" and conf.mode == 0o644
    lines = conf.content_string.splitlines()
    assert "postmaster.mailserver" in lines[0]
    assert "HELO_reject = Fail" in lines
    assert "Mail_From_reject = Fail" in lines
    assert "skip_addresses = 127.0.0.0/8,::ffff:127.0.0.0/104,::1" in lines


def test_pass_domain_gets_received_spf_pass(server, server_ip):
    token = uuid.uuid4().hex
    replies = send(server_ip, "alice@pass.test", token)
    assert [code for code, _text in replies] == [220, 250, 250, 250, 354, 250], replies
    assert received_spf(delivered(server, token)).startswith("Received-SPF: Pass (mailfrom)")


def test_nested_include_chain_passes(server, server_ip):
    token = uuid.uuid4().hex
    replies = send(server_ip, "dave@chain.test", token)
    assert replies[-1][0] == 250, replies
    assert received_spf(delivered(server, token)).startswith("Received-SPF: Pass (mailfrom)")


def test_none_domain_gets_received_spf_none(server, server_ip):
    token = uuid.uuid4().hex
    replies = send(server_ip, "carol@none.test", token)
    assert replies[-1][0] == 250, replies
    assert received_spf(delivered(server, token)).startswith("Received-SPF: None (mailfrom)")


def test_fail_domain_is_refused_with_5_7_23(server_ip):
    replies = send(server_ip, "bob@fail.test", uuid.uuid4().hex)
    code, text = replies[3]  # the reply to RCPT, where the policy service answers
    assert code == 550, replies
    assert text.startswith("5.7.23"), replies


def test_the_role_alone_on_a_converged_host_changes_nothing():
    result = run_role()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    recap = next(line for line in output.splitlines() if line.startswith(helpers.instance("server")))
    assert "changed=0" in recap and "failed=0" in recap, recap


@pytest.fixture
def reconverge_with_defaults(server):
    """Whatever a test changes, the scenario ends as converge.yml left it."""
    yield
    if "Mail_From_reject = Fail" not in server.file(CONF).content_string:
        result = run_role()
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


def test_turning_mail_from_reject_off_takes_effect_on_the_next_run(server, server_ip, reconverge_with_defaults):
    # First a refusal: smtpd now holds an open connection to a policy daemon with the old settings.
    assert send(server_ip, "bob@fail.test", uuid.uuid4().hex)[3][0] == 550
    result = run_role({"policyd_spf_mail_from_reject": "False"})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "changed=1" in output
    assert "Mail_From_reject = False" in server.file(CONF).content_string
    # No manual reload: the module reloaded Postfix, so the very next message sees the new setting.
    token = uuid.uuid4().hex
    replies = send(server_ip, "bob@fail.test", token)
    assert [code for code, _text in replies][-3:] == [250, 354, 250], replies
    assert received_spf(delivered(server, token)).startswith("Received-SPF: Fail (mailfrom)")
    # And back: the default refuses again on the next run.
    result = run_role()
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert send(server_ip, "bob@fail.test", uuid.uuid4().hex)[3][0] == 550


@pytest.mark.parametrize(
    ("extra_vars", "named"),
    [
        ({"policyd_spf_mail_from_reject": "Null"}, ["policyd_spf_mail_from_reject", "Null"]),
        ({"policyd_spf_whitelist": ["192.0.2.1/24"]}, ["policyd_spf_whitelist[0]", "192.0.2.1/24"]),
        ({"policyd_spf_skip_addresses": ["127.0.0.0/8\nTestOnly = 0"]}, ["policyd_spf_skip_addresses[0]"]),
        ({"policyd_spf_domain_whitelist": ["pobox.com,TestOnly=0"]}, ["policyd_spf_domain_whitelist[0]"]),
        ({"policyd_spf_time_limit": "1 hour"}, ["policyd_spf_time_limit"]),
    ],
    ids=["bad-choice", "host-bits", "newline", "injected-list", "bad-time"],
)
def test_invalid_input_fails_before_any_change(server, extra_vars, named):
    before = helpers.snapshot(server, *WATCHED)
    helpers.assert_fails_unchanged(server, run_role(extra_vars), named, WATCHED, before)
    assert helpers.smtp("server", "127.0.0.1", 25, [])[0][0] == 220


# -- the spf_check module, run on the controller against the test's DNS server ------------------


def spf_check(**args) -> dict:
    """Run postmaster.mailserver.spf_check on localhost (the controller) with the test DNS; its result."""
    args.setdefault("nameservers", [helpers.container_ip("dns")])
    env = {
        **os.environ,
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    }
    if os.environ.get("MOLECULE_COLLECTIONS_PATH"):
        env["ANSIBLE_COLLECTIONS_PATH"] = os.environ["MOLECULE_COLLECTIONS_PATH"]
    run = subprocess.run(
        ["ansible", "localhost", "-m", "postmaster.mailserver.spf_check", "-a", json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    try:
        # molecule's ansible.cfg also enables profile_tasks, which prints around the JSON report.
        report, _end = json.JSONDecoder().raw_decode(run.stdout, run.stdout.index("{"))
        return report["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError(run.stdout[-3000:] + run.stderr[-3000:]) from None


def test_spf_check_counts_a_nested_chain_and_evaluates_addresses():
    sender_ip = helpers.container_ip(SENDER)
    found = spf_check(domain="chain.test", ip=sender_ip)
    assert not found.get("failed"), found
    assert found["changed"] is False
    assert found["record"] == "v=spf1 mx include:chain1.test -all"
    assert found["lookups"] == 4
    assert found["lookup_terms"] == [
        "mx",
        "include:chain1.test",
        "include:chain1.test > a",
        "include:chain1.test > include:chain2.test",
    ]
    assert found["void_lookups"] == 0
    assert (found["ip_result"], found["ip_passes"]) == ("pass", True)
    assert found["matched"] == {"mechanism": f"ip4:{sender_ip}", "domain": "chain2.test"}
    assert spf_check(domain="chain.test", ip="192.0.2.20")["matched"]["domain"] == "chain1.test"  # chain1.test's a
    other = spf_check(domain="chain.test", ip="192.0.2.99")
    assert (other["ip_result"], other["ip_passes"], other["matched"]["mechanism"]) == ("fail", False, "-all")


def test_spf_check_allows_ten_lookups_and_refuses_eleven():
    ten = spf_check(domain="ten.test", ip="192.0.2.30")
    assert not ten.get("failed"), ten
    assert (ten["lookups"], ten["ip_result"]) == (10, "pass")
    eleven = spf_check(domain="long.test", ip="192.0.2.30")
    assert eleven["failed"] is True
    assert eleven["lookups"] == 11
    assert eleven["msg"].startswith("long.test: 11 DNS lookups, more than the 10 that SPF allows")
    assert "include:l1.test > include:l2.test" in eleven["msg"]
    assert eleven["ip_result"] == "permerror"


def test_spf_check_reports_a_domain_without_a_record():
    none = spf_check(domain="none.test", fail_on_error=False)
    assert (none["record"], none["valid"]) == (None, False)
    assert spf_check(domain="none.test")["msg"] == "none.test publishes no SPF record"


def test_without_the_postfix_role_the_run_stops_before_postfix_changes():
    """Last: it installs the package, and so Debian's Postfix, on the client container."""
    client = helpers.host("client")
    result = run_role(playbook="spf_on_client.yml")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "apply the postmaster.mailserver.postfix role before the policyd_spf role" in output, output[-3000:]
    # Debian's own configuration is untouched: no fragment, no policy service, no assembled main.cf.
    assert not client.file("/etc/postfix/postmaster.d").exists
    for path in ("/etc/postfix/main.cf", "/etc/postfix/master.cf"):
        text = client.file(path).content_string if client.file(path).exists else ""
        assert "postmaster.mailserver" not in text and "policy-spf" not in text, path
