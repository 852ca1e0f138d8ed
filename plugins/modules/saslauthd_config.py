#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: saslauthd_config
short_description: saslauthd's settings, socket, link and Postfix's SASL application file, checked, applied, rolled back
version_added: 0.1.0
description:
  - Writes C(/etc/default/saslauthd), the tmpfiles.d entry of the C(/run/saslauthd) link and Postfix smtpd's Cyrus
    SASL application file C(sasl/smtpd.conf) (C(pwcheck_method saslauthd)), all rendered from O(settings).
  - Makes the socket directory (root:sasl 0710, inside Postfix's chroot), links C(/run/saslauthd) to it and puts the
    C(postfix) user in the C(sasl) group.
  - A changed C(/etc/default/saslauthd) is first sourced by C(/bin/sh) from a private candidate and must set exactly
    the values meant, and C(saslauthd -v) must list the mechanism. Then the files are replaced atomically,
    saslauthd is restarted (Postfix reloaded when C(smtpd.conf) or the group changed and Postfix runs), and
    saslauthd must accept a connection on its socket (no credentials are sent), smtpd must greet after a reload,
    and saslauthd must log no error. Otherwise every path and the group come back as they were and saslauthd is
    restarted.
  - Postfix's main.cf side (C(smtpd_sasl_type cyrus)) is a fragment for M(postmaster.mailserver.postfix_config).
  - On a converged host saslauthd is enabled and started when it is not.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
attributes:
  check_mode:
    support: full
    details:
      - In check mode a changed candidate is still checked (when saslauthd is installed); nothing is written.
  diff_mode:
    support: full
options:
  settings:
    description:
      - The saslauthd role's settings without the C(saslauthd_) prefix.
      - C(mechanisms) (saslauthd's C(-a), one name that C(saslauthd -v) lists, default V(pam)), C(threads) (0 to
        1024, default 5), C(mech_list) (among V(plain) and V(login), default both), C(socket_dir) (an absolute
        directory below C(/var/spool/postfix) or C(/run), not C(/run/saslauthd)).
    type: dict
    required: true
  postfix_config_dir:
    description:
      - Postfix's configuration directory; C(sasl/smtpd.conf) is written below it.
    type: path
    default: /etc/postfix
  reload_postfix:
    description:
      - Reload Postfix (when it runs) after C(smtpd.conf) or the postfix user's groups changed, so that new smtpd
        processes read them.
    type: bool
    default: true
  health_check:
    description:
      - After a change, require saslauthd to accept a connection on its socket (and smtpd to greet after a reload).
    type: bool
    default: true
  health_host:
    description:
      - Address of the smtpd health check after a Postfix reload.
    type: str
    default: 127.0.0.1
  health_port:
    description:
      - Port of the smtpd health check after a Postfix reload.
    type: int
    default: 25
  health_timeout:
    description:
      - Seconds to keep retrying the health checks.
    type: int
    default: 30
requirements:
  - sasl2-bin on the host; systemd.
seealso:
  - module: postmaster.mailserver.postfix_config
"""

EXAMPLES = r"""
- name: saslauthd checking system passwords through PAM, its socket in Postfix's chroot
  postmaster.mailserver.saslauthd_config:
    settings:
      mechanisms: pam
      threads: 5
      mech_list: [plain, login]
      socket_dir: /var/spool/postfix/var/run/saslauthd
"""

RETURN = r"""
files:
  description: The files written (or that would be).
  returned: always
  type: list
  elements: str
  sample: [/etc/default/saslauthd]
actions:
  description: What else was (or would be) done, in words.
  returned: always
  type: list
  elements: str
  sample: ["link /run/saslauthd to /var/spool/postfix/var/run/saslauthd"]
restarted:
  description: Whether saslauthd was restarted.
  returned: always
  type: bool
postfix_reloaded:
  description: Whether Postfix was reloaded.
  returned: always
  type: bool
answer:
  description: What the health check saw.
  returned: when something changed and was checked
  type: str
rolled_back:
  description: Present and true when the change failed and the previous state was restored.
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
from ansible_collections.postmaster.mailserver.plugins.module_utils.saslauthd.saslauthd_config import (
    SaslauthdConfig,
    SaslauthdConfigError,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "settings": {"type": "dict", "required": True},
            "postfix_config_dir": {"type": "path", "default": "/etc/postfix"},
            "reload_postfix": {"type": "bool", "default": True},
            **health_options(port=25, timeout=30),
            **CALL_RECORD_OPTION,
        },
        supports_check_mode=True,
    )
    run_backend(module, SaslauthdConfig, SaslauthdConfigError, **module_options(module))


if __name__ == "__main__":
    main()
