#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: dmarc_config
short_description: OpenDMARC's opendmarc.conf and IgnoreHosts, checked, applied, health-checked, rolled back
version_added: 0.1.0
description:
  - Writes C(opendmarc.conf) and its C(IgnoreHosts) file from O(settings), rendered by the collection, never from
    free text. OpenDMARC rejects mail that fails the DMARC check of a domain whose policy is C(p=reject)
    (C(RejectFailures)) and adds an C(Authentication-Results) header (C(dmarc=pass), C(dmarc=fail), ...) to the rest.
  - DKIM results are read from the C(Authentication-Results) header of the authserv-ids in C(trusted_authserv_ids)
    (OpenDKIM's, the milter before it); SPF is checked by OpenDMARC itself (C(SPFSelfValidate)) and SPF results in
    the message's headers are ignored (C(SPFIgnoreResults)).
  - A changed file is first checked with C(opendmarc -n -c) on candidates in a private directory (OpenDMARC parses
    the file and refuses unknown parameters and illegal values; it does not open the files it names, so the public
    suffix list is checked to exist). Then the files are replaced atomically and OpenDMARC restarted. The milter must
    answer a milter option negotiation on 127.0.0.1:C(milter_port); otherwise the previous files come back and
    OpenDMARC is restarted.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
attributes:
  check_mode:
    support: full
    details:
      - In check mode a changed candidate is still checked with C(opendmarc -n) (when installed).
  diff_mode:
    support: full
options:
  settings:
    description:
      - The dkim role's DMARC settings without the C(dkim_dmarc_) prefix, validated as the role validates them.
      - C(milter_port) (default 8893), C(dkim_milter_port) (OpenDKIM's, which must differ), C(authserv_id),
        C(trusted_authserv_ids) (default C(authserv_id)), C(ignore_hosts) (addresses and networks whose mail is not
        judged; loopback is always added), C(public_suffix_list), C(enforce).
    type: dict
    required: true
  conf_path:
    description:
      - OpenDMARC's configuration file (the one Debian's unit starts C(opendmarc) with).
    type: path
    default: /etc/opendmarc.conf
  ignore_file:
    description:
      - The C(IgnoreHosts) file.
    type: path
    default: /etc/opendmarc/ignore.hosts
  health_check:
    description:
      - After a change, require the milter to answer an option negotiation.
    type: bool
    default: true
  health_host:
    description:
      - Address of the milter health check.
    type: str
    default: 127.0.0.1
  health_port:
    description:
      - Port of the milter health check; 0 means C(milter_port) of O(settings).
    type: int
    default: 0
  health_timeout:
    description:
      - Seconds to keep retrying the health check.
    type: int
    default: 30
requirements:
  - opendmarc and publicsuffix on the host; systemd.
seealso:
  - module: postmaster.mailserver.dkim_config
  - module: postmaster.mailserver.postfix_config
"""

EXAMPLES = r"""
- name: Enforce DMARC after OpenDKIM, trusting OpenDKIM's Authentication-Results
  postmaster.mailserver.dmarc_config:
    settings:
      milter_port: 8893
      dkim_milter_port: 8891
      authserv_id: mail.example.org
      ignore_hosts: [192.0.2.0/24]
"""

RETURN = r"""
conf_path:
  description: The configuration file.
  returned: always
  type: str
  sample: /etc/opendmarc.conf
restarted:
  description: Whether OpenDMARC was (re)started.
  returned: always
  type: bool
milter_answer:
  description: The milter's option negotiation, from the health check.
  returned: when something changed and was checked
  type: str
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
from ansible_collections.postmaster.mailserver.plugins.module_utils.dkim.dmarc_config import (
    DmarcConfig,
    DmarcConfigError,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "settings": {"type": "dict", "required": True},
            "conf_path": {"type": "path", "default": "/etc/opendmarc.conf"},
            "ignore_file": {"type": "path", "default": "/etc/opendmarc/ignore.hosts"},
            **health_options(port=0, timeout=30),
            **CALL_RECORD_OPTION,
        },
        supports_check_mode=True,
    )
    run_backend(
        module,
        DmarcConfig,
        DmarcConfigError,
        **module_options(module),
    )


if __name__ == "__main__":
    main()
