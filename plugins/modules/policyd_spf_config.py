#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: policyd_spf_config
short_description: Write a validated policyd-spf.conf, reload Postfix, health-check, roll back
version_added: 0.1.0
description:
  - Writes the configuration file of postfix-policyd-spf-python (C(policyd-spf.conf)) from O(settings).
  - The settings are validated first (enumerated reject modes, addresses and networks, domain names, numbers), and
    the file is rendered by the collection, never from free text.
  - When the file differs, the candidate is parsed with the package's own parser (C(spf_engine.policydspfsupp), run
    by the interpreter of O(daemon)). Any message the parser logs (an unknown name, a line it cannot read) is an
    error, and every value must read back as written. Nothing is written when it does not.
  - Then the file is replaced atomically and Postfix is reloaded, because smtpd keeps its connections to the policy
    service open, so the running policy daemons keep the old settings until Postfix lets them go.
  - After the reload smtpd must greet with 220, the policy service must answer a request (through O(policy_socket)
    when it exists, otherwise by running O(daemon) itself), and neither Postfix nor policyd-spf may have logged an
    error in the journal. Otherwise the previous file is restored, Postfix is restarted and the module fails.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
attributes:
  check_mode:
    support: full
    details:
      - In check mode a changed candidate is still parsed by the package's parser (when the package is installed),
        but nothing is written or reloaded.
  diff_mode:
    support: full
options:
  settings:
    description:
      - The settings, by this collection's names. Settings that are not given are not written, so the package's
        defaults apply to them.
      - C(helo_reject) (C(HELO_reject)) is one of V(SPF_Not_Pass), V(Softfail), V(Fail), V(Null), V(False) or
        V(No_Check); C(mail_from_reject) (C(Mail_From_reject)) one of V(SPF_Not_Pass), V(Softfail), V(Fail),
        V(False) or V(No_Check). V(False) adds a C(Received-SPF) header and never rejects.
      - C(permerror_reject), C(temperror_defer), C(no_mail), C(hide_receiver), C(enhanced_status_codes) are
        booleans; C(test_only) true writes C(TestOnly = 0), under which the package never rejects (its name is
        inverted).
      - C(skip_addresses) and C(whitelist) are lists of addresses or networks; an empty C(skip_addresses) is
        written as such and turns off the default skip of loopback. C(helo_whitelist), C(domain_whitelist),
        C(domain_whitelist_ptr) and C(reject_not_pass_domains) are lists of domain names.
      - C(header_type) is V(SPF) (C(Received-SPF)) or V(AR) (C(Authentication-Results), which needs
        C(authserv_id)). C(debug_level) is 0 to 5; C(lookup_time), C(whitelist_lookup_time) and C(void_limit)
        are numbers.
    type: dict
    required: true
  path:
    description:
      - The configuration file.
    type: path
    default: /etc/postfix-policyd-spf-python/policyd-spf.conf
  daemon:
    description:
      - The policy daemon. Its C(#!) interpreter runs the package's parser, and it is run directly for the health
        check when O(policy_socket) does not exist.
    type: path
    default: /usr/bin/policyd-spf
  policy_socket:
    description:
      - Postfix's socket of the policy service (the C(policy-spf) service of master.cf), used for the health check.
        An empty string always runs O(daemon) directly instead.
    type: str
    default: /var/spool/postfix/private/policy-spf
  reload:
    description:
      - Reload Postfix after a change (when it runs) and check health.
    type: bool
    default: true
  health_check:
    description:
      - After the reload, require an SMTP greeting, an answer of the policy service, and no error in the journal.
    type: bool
    default: true
  health_host:
    description:
      - Address of the SMTP health check.
    type: str
    default: 127.0.0.1
  health_port:
    description:
      - Port of the SMTP health check.
    type: int
    default: 25
  health_timeout:
    description:
      - Seconds to keep retrying each health check.
    type: int
    default: 30
requirements:
  - postfix-policyd-spf-python on the host; Postfix for the reload; C(journalctl) for the log part of the health check.
seealso:
  - module: postmaster.mailserver.postfix_config
  - module: postmaster.mailserver.spf_check
"""

EXAMPLES = r"""
- name: Add Received-SPF headers and never reject on the Mail From identity
  postmaster.mailserver.policyd_spf_config:
    settings:
      helo_reject: Fail
      mail_from_reject: "False"
      skip_addresses: [127.0.0.0/8, "::ffff:127.0.0.0/104", "::1", 192.168.10.0/24]
"""

RETURN = r"""
path:
  description: The configuration file.
  returned: always
  type: str
  sample: /etc/postfix-policyd-spf-python/policyd-spf.conf
settings:
  description: The lines of the file, by the package's names.
  returned: always
  type: dict
  sample: {"HELO_reject": "Fail", "Mail_From_reject": "False", "skip_addresses": "127.0.0.0/8,::1"}
reloaded:
  description: Whether Postfix was reloaded.
  returned: always
  type: bool
policy_answer:
  description: The answer of the policy service to the health check's request.
  returned: when the file was changed and checked
  type: str
  sample: "action=prepend X-Comment: SPF check N/A for local connections - client-ip=127.0.0.1; ..."
rolled_back:
  description: Present and true when the health check failed and the previous file was restored.
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
from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.policyd_spf import (
    PolicydSpfConfig,
    PolicydSpfError,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "settings": {"type": "dict", "required": True},
            "path": {"type": "path", "default": "/etc/postfix-policyd-spf-python/policyd-spf.conf"},
            "daemon": {"type": "path", "default": "/usr/bin/policyd-spf"},
            "policy_socket": {"type": "str", "default": "/var/spool/postfix/private/policy-spf"},
            "reload": {"type": "bool", "default": True},
            **health_options(port=25, timeout=30),
            **CALL_RECORD_OPTION,
        },
        supports_check_mode=True,
    )
    run_backend(
        module,
        PolicydSpfConfig,
        PolicydSpfError,
        **module_options(module),
    )


if __name__ == "__main__":
    main()
