#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: dovecot_config
short_description: Write a validated set of Dovecot configuration files, reload, health-check, roll back
version_added: 0.1.0
description:
  - Manages a set of files below the Dovecot configuration directory (conf.d includes, say) as one unit.
  - When a file differs, the whole candidate is checked first. The live directory is copied to a
    temporary directory, the new files are put in, and C(doveconf -n) must accept the copy without
    printing anything on stderr (a warning counts as an error). Nothing is written when it does not.
  - Then the changed files are replaced atomically and Dovecot is reloaded (or started when it does not
    run). Dovecot must then greet on O(health_port), and must not have logged an error since the reload;
    C(doveconf -n) accepts values that only fail when Dovecot reads them, such as a missing certificate.
  - When the configuration has no C(passdb) yet (system users off, and the role that adds the virtual users'
    user database not applied yet), Dovecot cannot greet; then the service must be active and log no error,
    and a warning says that logins fail until a passdb is added.
  - Otherwise the previous files are restored, Dovecot is restarted, and the module fails with what went wrong.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
attributes:
  check_mode:
    support: full
    details:
      - In check mode a changed candidate is still checked with C(doveconf -n), but nothing is written or reloaded.
  diff_mode:
    support: full
options:
  config_dir:
    description:
      - The Dovecot configuration directory, which holds C(dovecot.conf).
    type: path
    default: /etc/dovecot
  files:
    description:
      - The files to manage, by path relative to O(config_dir) (for example C(conf.d/10-auth.conf)), with
        their full text. C(null) removes a file.
      - Paths must stay below O(config_dir) (no C(..), no absolute path).
    type: dict
    required: true
  service:
    description:
      - The systemd unit to reload.
    type: str
    default: dovecot
  ensure_running:
    description:
      - Also enable O(service) at boot and start it when it does not run; a service started this way must answer
        like after a reload. The dovecot role sets it, so that it needs no service task of its own.
    type: bool
    default: false
  reload:
    description:
      - Reload (or start) Dovecot after a change and check its health.
    type: bool
    default: true
  report_paths:
    description:
      - Paths whose existence is returned in RV(exists), looked at after the run (Dovecot makes its sockets, such as
        the LMTP listener in Postfix's spool, when it starts).
    type: list
    elements: path
    default: []
  health_check:
    description:
      - After the reload, require a greeting on O(health_host):O(health_port) and no error in the journal.
    type: bool
    default: true
  health_host:
    description:
      - Address of the health check.
    type: str
    default: 127.0.0.1
  health_port:
    description:
      - A plaintext IMAP (143) or POP3 (110) port that Dovecot listens on.
    type: int
    default: 143
  health_timeout:
    description:
      - Seconds to wait for the greeting.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Write two conf.d files as one validated set
  postmaster.mailserver.dovecot_config:
    files:
      conf.d/10-ssl.conf: |
        ssl = required
        ssl_server_cert_file = /etc/ssl/mail.crt
        ssl_server_key_file = /etc/ssl/mail.key
      conf.d/99-old.conf: null
"""

RETURN = r"""
files:
  description: The files that were (or in check mode would be) written or removed.
  returned: always
  type: list
  elements: str
  sample: [/etc/dovecot/conf.d/10-ssl.conf]
reloaded:
  description: Whether Dovecot was reloaded.
  returned: always
  type: bool
rolled_back:
  description: Present and true when the health check failed and the previous files were restored.
  returned: failure
  type: bool
file_digests:
  description:
    - The SHA-256 of every C(*.conf) file in O(config_dir) and its C(conf.d) after this run (in check mode, as they
      are), by name relative to O(config_dir).
    - The action plugin in front of this module keeps it for the rest of the play, in the fact C(postmaster_host),
      and answers a later call whose files all have these digests without a host round trip.
  returned: always
  type: dict
  sample: {conf.d/10-ssl.conf: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8}
exists:
  description: For each path of O(report_paths), whether it exists after this run.
  returned: always
  type: dict
  sample: {/var/spool/postfix/private/dovecot-lmtp: true}
service:
  description: With O(ensure_running), what was (or in check mode would be) done to the unit.
  returned: when O(ensure_running) is set
  type: list
  elements: str
  sample: [enabled, started]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import (
    CALL_RECORD_OPTION,
    health_options,
    module_options,
    run_backend,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.dovecot.dovecot_config import (
    DovecotConfig,
    DovecotConfigError,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "config_dir": {"type": "path", "default": "/etc/dovecot"},
            "files": {"type": "dict", "required": True},
            "service": {"type": "str", "default": "dovecot"},
            "ensure_running": {"type": "bool", "default": False},
            "reload": {"type": "bool", "default": True},
            "report_paths": {"type": "list", "elements": "path", "default": []},
            **health_options(port=143, timeout=30),
            **CALL_RECORD_OPTION,
        },
        supports_check_mode=True,
    )
    run_backend(
        module,
        DovecotConfig,
        DovecotConfigError,
        **module_options(module),
    )


if __name__ == "__main__":
    main()
