#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fail2ban_config
short_description: fail2ban's mail jails, checked by fail2ban, applied, health-checked, rolled back
version_added: 0.1.0
description:
  - Writes the fail2ban role's jail file (C(/etc/fail2ban/jail.d/postmaster.local)) from O(settings), rendered by the
    collection, never from free text - the journal as the log source, the networks that are never banned, the ban
    times (growing for repeat offenders), the nftables ban action on every mail port, and the jails.
  - A changed candidate is checked by fail2ban itself - the configuration directory is copied with the candidate in
    it and C(fail2ban-client -c <copy> -t) must pass it - before it is swapped in atomically and fail2ban restarted
    (its bans come back from its database).
  - fail2ban is enabled at boot and started when it does not run.
  - Health - C(fail2ban-client ping) answers C(pong) and every enabled jail runs. Otherwise the previous file comes
    back and fail2ban is restarted on it.
  - With O(state=absent) the jail file is removed and a running fail2ban restarted (Debian's own jails go on).
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
attributes:
  check_mode:
    support: full
    details:
      - In check mode a changed candidate is still checked by C(fail2ban-client -t); nothing is written.
  diff_mode:
    support: full
options:
  settings:
    description:
      - The fail2ban role's settings without the C(fail2ban_) prefix, validated as the role validates them -
        C(maxretry), C(findtime), C(bantime), C(bantime_increment), C(bantime_maxtime), C(ignore_networks),
        C(trusted_networks), C(jails), C(ports).
      - Required with O(state=present).
    type: dict
  state:
    description:
      - V(present) writes the jail file; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  conf_dir:
    description:
      - fail2ban's configuration directory.
    type: path
    default: /etc/fail2ban
  jail_file:
    description:
      - The jail file's name in C(jail.d) (it must end in C(.local), read after Debian's C(.conf) files).
    type: str
    default: postmaster.local
  health_check:
    description:
      - After a change, require fail2ban to answer with every enabled jail running.
    type: bool
    default: true
  health_host:
    description:
      - Not used (fail2ban answers on its socket); kept for the common options of the configuration modules.
    type: str
    default: 127.0.0.1
  health_port:
    description:
      - Not used (fail2ban answers on its socket).
    type: int
    default: 0
  health_timeout:
    description:
      - Seconds to keep retrying the health check.
    type: int
    default: 30
requirements:
  - fail2ban (1.0.2 on Debian 12, 1.1.0 on Debian 13) with python3-systemd on the host; nftables; systemd.
seealso:
  - module: postmaster.mailserver.nftables_config
"""

EXAMPLES = r"""
- name: Ban password guessers on every mail port
  postmaster.mailserver.fail2ban_config:
    settings:
      maxretry: 5
      findtime: 600
      bantime: 3600
      bantime_increment: true
      bantime_maxtime: 604800
      ignore_networks: [192.0.2.0/24]
      jails:
        - {name: postfix-sasl, filter: postfix, mode: auth}
        - {name: dovecot, filter: dovecot}
"""

RETURN = r"""
path:
  description: The jail file.
  returned: always
  type: str
  sample: /etc/fail2ban/jail.d/postmaster.local
restarted:
  description: Whether fail2ban was (re)started.
  returned: always
  type: bool
jails:
  description: The jails running after the change (the health check's answer).
  returned: when something changed and was checked
  type: list
  elements: str
  sample: [dovecot, postfix-sasl, sshd]
rolled_back:
  description: Present and true when the health check failed and the previous state was restored.
  returned: failure
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import (
    CALL_RECORD_OPTION,
    health_options,
    module_options,
    run_backend,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.fail2ban.fail2ban_config import (
    Fail2banConfig,
    Fail2banConfigError,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "settings": {"type": "dict"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "conf_dir": {"type": "path", "default": "/etc/fail2ban"},
            "jail_file": {"type": "str", "default": "postmaster.local"},
            **health_options(port=0, timeout=30),
            **CALL_RECORD_OPTION,
        },
        required_if=[("state", "present", ["settings"])],
        supports_check_mode=True,
    )
    run_backend(module, Fail2banConfig, Fail2banConfigError, **module_options(module))


if __name__ == "__main__":
    main()
