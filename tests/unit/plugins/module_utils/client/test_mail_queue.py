# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""mail_queue: postqueue -j output (as Postfix 3.7/3.10 print it) summarized, and its failures."""

from __future__ import annotations

import json

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_queue import (
    MailQueueError,
    parse,
    parse_banned,
    read_queue,
    read_screening,
    summarize,
)

NOW = 1_800_000_000
TIMEOUT = "connect to mx.example.net[192.0.2.1]:25: Connection timed out"
AUTH = "SASL authentication failed; server relay.example.net[198.51.100.7] said: 535 5.7.8 Error"
QUEUE = [
    {"queue_name": "deferred", "queue_id": "4A1", "arrival_time": NOW - 7200, "message_size": 1200,
     "forced_expire": False, "sender": "alice@example.org",
     "recipients": [{"address": "bob@example.net", "delay_reason": TIMEOUT},
                    {"address": "carol@example.net", "delay_reason": TIMEOUT}]},
    {"queue_name": "deferred", "queue_id": "4B2", "arrival_time": NOW - 60, "message_size": 800,
     "forced_expire": False, "sender": "alice@example.org",
     "recipients": [{"address": "dave@example.com", "delay_reason": AUTH}]},
    {"queue_name": "active", "queue_id": "4C3", "arrival_time": NOW - 5, "message_size": 500,
     "forced_expire": False, "sender": "", "recipients": [{"address": "erin@example.org"}]},
    {"queue_name": "hold", "queue_id": "4D4", "arrival_time": NOW - 30, "message_size": 100,
     "forced_expire": False, "sender": "x@example.org", "recipients": []},
]  # fmt: skip
OUTPUT = "".join(json.dumps(entry) + "\n" for entry in QUEUE)


def test_summary_counts_oldest_and_reasons():
    result = summarize(parse(OUTPUT), NOW)
    assert result["total"] == 4
    assert result["counts"] == {"maildrop": 0, "incoming": 0, "active": 1, "deferred": 2, "hold": 1, "corrupt": 0}
    assert (result["recipients"], result["size"]) == (4, 2600)
    assert result["oldest"] == {
        "queue_id": "4A1",
        "queue": "deferred",
        "sender": "alice@example.org",
        "recipients": ["bob@example.net", "carol@example.net"],
        "size": 1200,
        "arrival_time": NOW - 7200,
        "age_seconds": 7200,
    }
    assert result["oldest_age_seconds"] == 7200
    assert result["deferral_reasons"] == [{"reason": TIMEOUT, "recipients": 2}, {"reason": AUTH, "recipients": 1}]
    assert "messages" not in result


def test_top_and_details():
    result = summarize(parse(OUTPUT), NOW, top=1, details=True)
    assert result["deferral_reasons"] == [{"reason": TIMEOUT, "recipients": 2}]
    assert [m["queue_id"] for m in result["messages"]] == ["4A1", "4B2", "4C3", "4D4"]
    assert result["messages"][0]["reasons"] == [TIMEOUT]
    assert result["messages"][2]["reasons"] == []


def test_an_empty_queue():
    result = summarize(parse(""), NOW)
    assert (result["total"], result["oldest"], result["oldest_age_seconds"], result["deferral_reasons"]) == (
        0,
        None,
        None,
        [],
    )
    assert set(result["counts"].values()) == {0}


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("Mail queue is empty\n", "postqueue -j printed line 1 that is not JSON: 'Mail queue is empty'"),
        ('{"queue_name": "deferred"}\n', "postqueue -j printed line 1 that is not a queued message"),
        ("[1, 2]\n", "that is not a queued message"),
    ],
)
def test_garbage_is_an_error(output, message):
    with pytest.raises(MailQueueError, match=message):
        parse(output)


def test_read_queue_runs_postqueue_with_the_config_dir():
    calls = []

    def run(argv):
        calls.append(argv)
        return 0, OUTPUT, ""

    result = read_queue(run, lambda name: f"/usr/sbin/{name}", config_dir="/etc/postfix-out", now=lambda: NOW)
    assert calls == [["/usr/sbin/postqueue", "-c", "/etc/postfix-out", "-j"]]
    assert result["counts"]["deferred"] == 2


def test_read_queue_failures():
    with pytest.raises(MailQueueError, match="postqueue was not found: is Postfix installed on this host"):
        read_queue(lambda argv: (0, "", ""), lambda name: None)
    with pytest.raises(
        MailQueueError,
        match=r"/usr/sbin/postqueue -j failed \(rc=69\): postqueue: fatal: Queue report unavailable - mail system is down",
    ):
        read_queue(
            lambda argv: (69, "", "postqueue: fatal: Queue report unavailable - mail system is down\n"),
            lambda name: f"/usr/sbin/{name}",
        )


BANNED = "[{'sshd': []}, {'dovecot': ['192.0.2.7']}, {'postfix-sasl': ['192.0.2.7', '198.51.100.9']}]\n"
MASTER_POSTSCREEN = "smtp       inet  n       -       y       -       1       postscreen\n"
MASTER_SMTPD = "smtp       inet  n       -       y       -       -       smtpd\n"


def screening_host(master: str, banned: tuple[int, str], installed=("postconf", "fail2ban-client")):
    calls = []

    def run(argv):
        calls.append(argv)
        if argv[0].endswith("postconf"):
            return 0, master, ""
        return (
            banned[0],
            banned[1],
            "Failed to access socket path: /var/run/fail2ban/fail2ban.sock" if banned[0] else "",
        )

    return calls, run, (lambda name: f"/usr/bin/{name}" if name in installed else None)


def test_screening_reads_postscreen_and_the_bans_per_jail():
    calls, run, which = screening_host(MASTER_POSTSCREEN, (0, BANNED))
    result = read_screening(run, which, config_dir="/etc/postfix")
    assert result == {
        "postscreen": True,
        "fail2ban": {"running": True, "jails": {"sshd": 0, "dovecot": 1, "postfix-sasl": 2}, "banned": 3},
    }
    assert calls == [
        ["/usr/bin/postconf", "-c", "/etc/postfix", "-M", "smtp/inet"],
        ["/usr/bin/fail2ban-client", "banned"],
    ]


def test_screening_without_postscreen_or_fail2ban():
    _calls, run, which = screening_host(MASTER_SMTPD, (255, ""))
    assert read_screening(run, which) == {"postscreen": False, "fail2ban": {"running": False, "jails": {}, "banned": 0}}
    _calls, run, which = screening_host(MASTER_SMTPD, (0, ""), installed=("postconf",))
    assert read_screening(run, which) == {"postscreen": False, "fail2ban": None}


@pytest.mark.parametrize("output", ["__import__('os')", "{'sshd': []}", "not a list"])
def test_parse_banned_refuses_what_is_not_fail2bans_list(output):
    with pytest.raises(MailQueueError, match="fail2ban-client banned printed"):
        parse_banned(output)
