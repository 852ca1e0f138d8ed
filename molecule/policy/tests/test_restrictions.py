"""postfix_rbl_zones (through postscreen), postfix_restriction_classes and postfix_master_extra, proven with mail
from outside containers."""

from __future__ import annotations

import uuid

import helpers

USER = "rbluser@mail.example.test"
STAFF = "staff@mail.example.test"


def send(role: str, server_ip: str, sender: str, rcpt: str, token: str, *, port: int = 25) -> list[tuple[int, str]]:
    """One message from the container *role* to server_ip:port; the replies."""
    steps = [
        ["ehlo", f"{role}.outside.test"],
        ["mail", f"FROM:<{sender}>"],
        ["rcpt", f"TO:<{rcpt}>"],
        ["data", helpers.message(sender, rcpt, f"restrictions {token}")],
    ]
    return helpers.smtp(role, server_ip, port, steps)


def delivered(server, user: str, token: str, wait: int = 30) -> bool:
    cmd = (
        f"for i in $(seq {wait}); do grep -l {token} /home/{user}/Maildir/new/* 2>/dev/null && exit 0; sleep 1; done;"
        " exit 1"
    )
    return server.run(cmd).rc == 0


def test_the_lists_main_cf_holds(server):
    restrictions = server.check_output("postconf -h smtpd_recipient_restrictions").replace(",", " ").split()
    anchor = restrictions.index("reject_unauth_destination")
    # Right after reject_unauth_destination: the SPF policy service (test_spf.py; its fragment,
    # 50-policyd-spf.json, is merged after the postfix role's 10-postfix.json and inserts at the
    # same anchor), then the DNS list, then the list's own check_recipient_access.
    assert restrictions[anchor + 1 : anchor + 7] == [
        "check_policy_service",
        "unix:private/policy-spf",
        "reject_rbl_client",
        "rbl.test",
        "check_recipient_access",
        "hash:/etc/postfix/recipient_classes",
    ]
    assert server.check_output("postconf -h smtpd_restriction_classes") == "partner_only"
    assert server.check_output("postconf -h partner_only").replace(",", " ").split() == [
        "check_sender_access",
        "hash:/etc/postfix/partner_senders",
        "reject",
    ]
    assert "warning" not in server.run("postconf -n").stderr
    # The server asks the test's DNS list, and the list answers for the client only.
    client_ip = helpers.container_ip("client")
    listed = ".".join(reversed(client_ip.split("."))) + ".rbl.test"
    assert server.run(f"getent ahostsv4 {listed}").stdout.split()[0] == "127.0.0.2"
    unlisted = ".".join(reversed(helpers.container_ip("dns").split("."))) + ".rbl.test"
    assert server.run(f"getent ahostsv4 {unlisted}").rc != 0


def test_a_client_on_the_dns_list_is_refused_by_postscreen(server, server_ip):
    # postfix_rbl_zones is a postscreen list too, weighing the threshold (postfix_postscreen_enabled is on
    # by default): postscreen refuses the listed client at RCPT before smtpd (and its reject_rbl_client,
    # still in main.cf above) ever sees it.
    token = uuid.uuid4().hex
    replies = send("client", server_ip, "someone@partner.test", USER, token)
    code, text = replies[3]
    client_ip = helpers.container_ip("client")
    assert code == 550, replies
    assert f"Service unavailable; client [{client_ip}] blocked using rbl.test" in text, replies
    # Nothing was accepted: DATA has no valid recipient.
    assert replies[-1][0] == 554, replies
    log = server.check_output("journalctl --no-pager -o cat -t postfix/postscreen")
    assert f"DNSBL rank 1 for [{client_ip}]" in log
    assert not delivered(server, "rbluser", token, wait=3)


def test_a_client_not_on_the_dns_list_is_accepted(server, server_ip):
    token = uuid.uuid4().hex
    replies = send("dns", server_ip, "someone@partner.test", USER, token)
    assert [r[0] for r in replies] == [220, 250, 250, 250, 354, 250], replies
    assert delivered(server, "rbluser", token)


def test_the_restriction_class_refuses_a_stranger_and_lets_the_partner_through(server, server_ip):
    refused = send("dns", server_ip, "stranger@elsewhere.test", STAFF, uuid.uuid4().hex)
    assert refused[3][0] == 554, refused
    assert f"<{STAFF}>: Recipient address rejected: Access denied" in refused[3][1], refused
    token = uuid.uuid4().hex
    accepted = send("dns", server_ip, "partner@partner.test", STAFF, token)
    assert [r[0] for r in accepted] == [220, 250, 250, 250, 354, 250], accepted
    assert delivered(server, "staff", token)
    # The class is only named for staff@: the stranger may write to other users.
    other = send("dns", server_ip, "stranger@elsewhere.test", USER, uuid.uuid4().hex)
    assert other[3][0] == 250, other


def test_the_extra_service_answers_with_its_own_options(server, server_ip):
    service = server.check_output("postconf -M 2525/inet").split()
    assert service[:8] == ["2525", "inet", "n", "-", "y", "-", "-", "smtpd"], service
    # From outside: port 25 takes the message, port 2525 refuses the same client (its -o override).
    outside = send("dns", server_ip, "someone@partner.test", USER, uuid.uuid4().hex, port=2525)
    assert outside[0][0] == 220, outside
    assert outside[3][0] == 554 and "Client host rejected: Access denied" in outside[3][1], outside
    # From the server itself (mynetworks) port 2525 delivers, and logs under its own syslog name.
    token = uuid.uuid4().hex
    inside = send("server", "127.0.0.1", "root@mail.example.test", USER, token, port=2525)
    assert [r[0] for r in inside] == [220, 250, 250, 250, 354, 250], inside
    assert delivered(server, "rbluser", token)
    log = server.check_output("journalctl --no-pager -o cat -t postfix/internal/smtpd")
    assert "connect from" in log and "Client host rejected" in log, log[-2000:]
