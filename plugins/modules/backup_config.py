#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_config
short_description: restic backups of the mail server - repository, password, job and timer, checked and rolled back
version_added: 0.1.0
description:
  - Writes the backup role's files from O(settings), rendered by the collection - the repository and password files
    (C(/etc/postmaster/backup), 0600, root's) that restic reads through C(RESTIC_REPOSITORY_FILE) and
    C(RESTIC_PASSWORD_FILE), so that neither is ever on a command line; the job's environment and path lists; the
    job (C(/usr/local/sbin/postmaster-backup), from O(script)); and its systemd service and timer.
  - Before anything changes, the repository is opened with the candidate password (C(restic cat config)) - a wrong
    password or an unreachable repository fails here. A repository that does not exist yet is initialised, unless
    O(init=false). A changed schedule must pass C(systemd-analyze calendar).
  - Every changed file is swapped in atomically, systemd reloaded, and the timer enabled and (re)started.
  - Health - the timer is active and the repository opens with the installed files. Otherwise every file comes back.
  - With O(state=absent) the timer is stopped and disabled and the files removed; the repository is kept.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
attributes:
  check_mode:
    support: full
    details:
      - In check mode the repository is still opened with the candidate password and the schedule checked; nothing
        is written.
  diff_mode:
    support: full
    details:
      - The repository and password files show as C((secret)).
options:
  settings:
    description:
      - The backup role's settings without the C(backup_) prefix, validated as the role validates them -
        C(repository), C(keep_daily), C(keep_weekly), C(keep_monthly), C(schedule),
        C(randomized_delay), C(mail), C(queue), C(staging_dir), C(paths), C(restore_paths).
      - The password may be in it, or in O(password) (the role's way, so that no fact holds it).
      - Required with O(state=present).
    type: dict
  password:
    description:
      - The repository's password (8 to 4096 characters, no newline). It is written to a root-only file and never
        shown; it wins over a C(password) in O(settings).
    type: str
  script:
    description:
      - The job's shell script (the role's C(files/postmaster-backup)).
      - Required with O(state=present).
    type: str
  state:
    description:
      - V(present) writes the files and starts the timer; V(absent) removes them.
    type: str
    choices: [present, absent]
    default: present
  init:
    description:
      - Initialise the repository when there is none. Off for a restore, which needs the repository the backups went to.
    type: bool
    default: true
  health_check:
    description:
      - After a change, require the timer to be active and the repository to open.
    type: bool
    default: true
  health_host:
    description:
      - Not used; kept for the common options of the configuration modules.
    type: str
    default: 127.0.0.1
  health_port:
    description:
      - Not used.
    type: int
    default: 0
  health_timeout:
    description:
      - Not used (the checks answer at once).
    type: int
    default: 30
requirements:
  - restic (0.14 on Debian 12, 0.18 on Debian 13) on the host; systemd.
seealso:
  - module: postmaster.mailserver.dovecot_config
"""

EXAMPLES = r"""
- name: Back the mail server up every night to a local disk
  postmaster.mailserver.backup_config:
    password: "{{ vault_backup_password }}"
    settings:
      repository: /srv/backup/mail
      keep_daily: 7
      keep_weekly: 4
      keep_monthly: 6
      schedule: "*-*-* 03:30:00"
      randomized_delay: 1800
      mail: true
      queue: false
      staging_dir: /var/backups/postmaster/mail
      paths: [/etc/dkimkeys, /etc/postfix, /etc/dovecot]
      restore_paths: [/etc/dkimkeys]
    script: "{{ lookup('ansible.builtin.file', 'postmaster-backup') }}"
"""

RETURN = r"""
paths:
  description: The files the module manages.
  returned: always
  type: list
  elements: str
  sample: [/etc/postmaster/backup/password, /etc/systemd/system/postmaster-backup.timer]
initialized:
  description: Whether a new repository was initialised.
  returned: always
  type: bool
restarted:
  description: Whether the timer was (re)started.
  returned: always
  type: bool
rolled_back:
  description: Present and true when the health check failed and the previous files were restored.
  returned: failure
  type: bool
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.backup.backup_config import (
    BackupConfig,
    BackupConfigError,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import (
    CALL_RECORD_OPTION,
    health_options,
    module_options,
    run_backend,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "settings": {"type": "dict"},
            "password": {"type": "str", "no_log": True},
            "script": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "init": {"type": "bool", "default": True},
            **health_options(port=0, timeout=30),
            **CALL_RECORD_OPTION,
        },
        required_if=[("state", "present", ["settings", "script"])],
        supports_check_mode=True,
    )
    # The password of a REST URL (rest:https://user:password@host/) is a secret too.
    repository = (module.params.get("settings") or {}).get("repository")
    location = repository.get("location") if isinstance(repository, dict) else repository
    if isinstance(location, str):
        match = re.search(r"://[^:/@]+:([^@]+)@", location)
        if match:
            module.no_log_values.add(match.group(1))
    run_backend(module, BackupConfig, BackupConfigError, **module_options(module))


if __name__ == "__main__":
    main()
