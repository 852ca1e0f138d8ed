# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backend of the mail_queue module: Postfix's queue (``postqueue -j``) summarized as data.

``postqueue -j`` prints one JSON object per queued message (Postfix 3.1 and later): its queue
(maildrop, incoming, active, deferred, hold, corrupt), id, arrival time, size, sender and
recipients, each with the reason of its last delivery failure. The summary counts messages by
queue, names the oldest one, and ranks the deferral reasons by how many recipients they hold
back. Nothing is changed; the command runs through an injected runner so that parsing and
failures are unit tested without Postfix.
"""

from __future__ import annotations

import ast
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

ENV = {"LC_ALL": "C"}
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold", "corrupt")
REASON_LENGTH = 300


class MailQueueError(Exception):
    """postqueue is missing, failed, or printed something that is not its JSON."""


def parse(output: str) -> list[dict[str, Any]]:
    """The messages of ``postqueue -j`` output; raise MailQueueError on a line that is not a message."""
    messages = []
    for number, raw in enumerate(output.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise MailQueueError(f"postqueue -j printed line {number} that is not JSON: {line[:200]!r}") from None
        if not isinstance(entry, dict) or "queue_id" not in entry:
            raise MailQueueError(f"postqueue -j printed line {number} that is not a queued message: {line[:200]!r}")
        messages.append(entry)
    return messages


def summarize(messages: Sequence[dict[str, Any]], now: float, top: int = 5, details: bool = False) -> dict[str, Any]:
    """Counts by queue, the oldest message and the top deferral reasons (by recipients held back)."""
    counts = dict.fromkeys(QUEUES, 0)
    reasons: Counter[str] = Counter()
    oldest: dict[str, Any] | None = None
    size = 0
    recipients = 0
    listed = []
    for entry in messages:
        queue = str(entry.get("queue_name", "unknown"))
        counts[queue] = counts.get(queue, 0) + 1
        size += int(entry.get("message_size") or 0)
        rcpts = entry.get("recipients") or []
        recipients += len(rcpts)
        for rcpt in rcpts:
            reason = str(rcpt.get("delay_reason") or "").strip()
            if reason:
                reasons[reason[:REASON_LENGTH]] += 1
        arrival = entry.get("arrival_time")
        summary = {
            "queue_id": entry.get("queue_id"),
            "queue": queue,
            "sender": entry.get("sender", ""),
            "recipients": [str(r.get("address", "")) for r in rcpts],
            "size": int(entry.get("message_size") or 0),
            "arrival_time": arrival,
            "age_seconds": max(int(now - arrival), 0) if isinstance(arrival, int | float) else None,
        }
        if isinstance(arrival, int | float) and (oldest is None or arrival < oldest["arrival_time"]):
            oldest = summary
        if details:
            listed.append(
                {**summary, "reasons": sorted({str(r.get("delay_reason")) for r in rcpts if r.get("delay_reason")})}
            )
    result: dict[str, Any] = {
        "total": len(messages),
        "counts": counts,
        "recipients": recipients,
        "size": size,
        "oldest": oldest,
        "oldest_age_seconds": oldest["age_seconds"] if oldest else None,
        "deferral_reasons": [{"reason": reason, "recipients": n} for reason, n in reasons.most_common(max(top, 0))],
    }
    if details:
        result["messages"] = listed
    return result


def read_queue(
    run: Callable[[Sequence[str]], tuple[int, str, str]],
    get_bin_path: Callable[[str], str | None],
    *,
    config_dir: str | None = None,
    top: int = 5,
    details: bool = False,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Run ``postqueue -j`` (with ``-c config_dir``) and summarize it."""
    postqueue = get_bin_path("postqueue")
    if not postqueue:
        raise MailQueueError("postqueue was not found: is Postfix installed on this host?")
    argv = [postqueue, *(["-c", config_dir] if config_dir else []), "-j"]
    rc, out, err = run(argv)
    if rc != 0:
        raise MailQueueError(f"{' '.join(argv)} failed (rc={rc}): {(err or out).strip()}")
    return summarize(parse(out), now(), top, details)


def parse_banned(output: str) -> dict[str, int]:
    """``fail2ban-client banned`` (a Python list of {jail: [addresses]}) as {jail: count}."""
    try:
        value = ast.literal_eval(output.strip() or "[]")
    except (ValueError, SyntaxError):
        raise MailQueueError(f"fail2ban-client banned printed {output.strip()[:200]!r}, not its list") from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise MailQueueError(f"fail2ban-client banned printed {output.strip()[:200]!r}, not its list")
    counts: dict[str, int] = {}
    for item in value:
        for jail, addresses in item.items():
            counts[str(jail)] = len(addresses) if isinstance(addresses, (list, tuple)) else 0
    return counts


def read_screening(
    run: Callable[[Sequence[str]], tuple[int, str, str]],
    get_bin_path: Callable[[str], str | None],
    *,
    config_dir: str | None = None,
) -> dict[str, Any]:
    """Whether postscreen answers port 25, and fail2ban's state: running, bans per jail and in all.

    ``fail2ban`` is None when fail2ban is not installed; ``running`` false when it does not answer.
    """
    postscreen = None
    postconf = get_bin_path("postconf")
    if postconf:
        rc, out, _err = run([postconf, *(["-c", config_dir] if config_dir else []), "-M", "smtp/inet"])
        fields = out.split()
        postscreen = rc == 0 and len(fields) >= 8 and fields[7] == "postscreen"
    fail2ban = None
    client = get_bin_path("fail2ban-client")
    if client:
        rc, out, _err = run([client, "banned"])
        if rc != 0:
            fail2ban = {"running": False, "jails": {}, "banned": 0}
        else:
            jails = parse_banned(out)
            fail2ban = {"running": True, "jails": jails, "banned": sum(jails.values())}
    return {"postscreen": postscreen, "fail2ban": fail2ban}
