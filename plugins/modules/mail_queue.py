#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: mail_queue
short_description: Summarize Postfix's mail queue (postqueue -j) as data
version_added: 0.1.0
description:
  - Runs C(postqueue -j) and returns how many messages wait in each queue (maildrop, incoming, active, deferred, hold,
    corrupt), the oldest message and its age, and the reasons that hold mail back, ranked by how many recipients each
    one delays.
  - With O(screening), also whether postscreen answers port 25 and how many addresses fail2ban has banned, per jail
    and in all (C(fail2ban-client banned)).
  - Only reads; it never flushes, holds or deletes mail.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
options:
  config_dir:
    description:
      - Postfix's configuration directory (C(postqueue -c)); default Postfix's own.
    type: path
  top:
    description:
      - How many deferral reasons to return.
    type: int
    default: 5
  details:
    description:
      - Also return every message (id, queue, sender, recipients, size, age and reasons; never the content).
    type: bool
    default: false
  screening:
    description:
      - Also return RV(postscreen) and RV(fail2ban).
    type: bool
    default: true
requirements:
  - Postfix 3.1 or later (C(postqueue -j)), running (C(postqueue) asks the C(showq) service).
seealso:
  - module: postmaster.mailserver.mail_probe
"""

EXAMPLES = r"""
- name: Read the queue
  postmaster.mailserver.mail_queue:
  register: queue

- name: Fail when mail has been waiting for more than a day
  ansible.builtin.assert:
    that: (queue.oldest_age_seconds | default(0, true)) < 86400
    fail_msg: >-
      {{ queue.counts.deferred }} deferred, the oldest for {{ queue.oldest_age_seconds }} s;
      {{ queue.deferral_reasons | map(attribute='reason') | first | default('') }}
"""

RETURN = r"""
total:
  description: The number of queued messages.
  returned: always
  type: int
  sample: 3
counts:
  description: Messages per queue.
  returned: always
  type: dict
  sample: {maildrop: 0, incoming: 0, active: 0, deferred: 3, hold: 0, corrupt: 0}
recipients:
  description: The number of recipients of the queued messages.
  returned: always
  type: int
size:
  description: The queued messages' total size in bytes.
  returned: always
  type: int
oldest:
  description: The oldest message (C(queue_id), C(queue), C(sender), C(recipients), C(size), C(arrival_time), C(age_seconds)), or null.
  returned: always
  type: dict
oldest_age_seconds:
  description: How long the oldest message has been queued, or null when the queue is empty.
  returned: always
  type: int
deferral_reasons:
  description: The reasons of the last delivery failures, most frequent first, with the number of recipients each delays.
  returned: always
  type: list
  elements: dict
  sample: [{reason: "connect to mx.example.net[192.0.2.1]:25: Connection timed out", recipients: 2}]
postscreen:
  description: Whether port 25 is answered by postscreen (C(postconf -M smtp/inet)); null without postconf.
  returned: when O(screening=true)
  type: bool
fail2ban:
  description:
    - fail2ban's state - C(running), C(jails) (the number of banned addresses per jail) and C(banned) (in all); null when
      fail2ban is not installed.
  returned: when O(screening=true)
  type: dict
  sample: {running: true, jails: {postfix-sasl: 1, dovecot: 1, sshd: 0}, banned: 2}
messages:
  description: Every queued message, as in RV(oldest) plus C(reasons).
  returned: when O(details=true)
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_queue import (
    ENV,
    MailQueueError,
    read_queue,
    read_screening,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "config_dir": {"type": "path"},
            "top": {"type": "int", "default": 5},
            "details": {"type": "bool", "default": False},
            "screening": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )

    def run(argv: list[str]) -> tuple[int, str, str]:
        return module.run_command(argv, environ_update=ENV)

    try:
        result = read_queue(
            run,
            module.get_bin_path,
            config_dir=module.params["config_dir"],
            top=module.params["top"],
            details=module.params["details"],
        )
        if module.params["screening"]:
            result.update(read_screening(run, module.get_bin_path, config_dir=module.params["config_dir"]))
    except MailQueueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
