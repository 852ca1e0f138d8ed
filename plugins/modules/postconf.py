#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: postconf
short_description: Read and set Postfix main.cf parameters
version_added: 0.1.0
description:
  - Reads the explicitly set parameters with one C(postconf -n) call, and sets every parameter of
    O(params) whose value differs with one C(postconf -e) call.
  - Values are compared after whitespace normalisation, so V(a,b) and V(a, b) are equal.
  - Restriction lists and C(mynetworks) are validated before anything is written, with their C($name)
    references expanded from the resulting main.cf (Postfix's defaults for names it does not set).
  - The resulting main.cf must not relay mail for anyone (see O(allow_open_relay)).
  - Do not use this module on parameters that M(postmaster.mailserver.postfix_config) manages; that module
    rewrites main.cf as a whole.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  params:
    description:
      - Parameters to set. Values may be strings, numbers, booleans (rendered V(yes)/V(no)) or lists
        (joined with V(, )).
    type: dict
    default: {}
  read:
    description:
      - Names of parameters whose current (or default) values are returned in RV(values).
    type: list
    elements: str
    default: []
  config_dir:
    description:
      - The Postfix configuration directory.
    type: path
    default: /etc/postfix
  allow_open_relay:
    description:
      - Allow a main.cf whose C(smtpd_relay_restrictions) and C(smtpd_recipient_restrictions) let any client
        send to any domain, or whose C(mynetworks) covers every address. Without it such a change fails and
        nothing is written.
    type: bool
    default: false
requirements:
  - Postfix (C(postconf)).
seealso:
  - module: postmaster.mailserver.postfix_config
"""

EXAMPLES = r"""
- name: Set message size limit and relay restrictions
  postmaster.mailserver.postconf:
    params:
      message_size_limit: 52428800
      smtpd_relay_restrictions:
        - permit_mynetworks
        - permit_sasl_authenticated
        - reject_unauth_destination

- name: Read the hostname and the compatibility level
  postmaster.mailserver.postconf:
    read:
      - myhostname
      - compatibility_level
  register: postfix_params
"""

RETURN = r"""
changed_params:
  description: Names of the parameters that were (or in check mode would be) changed.
  returned: always
  type: list
  elements: str
  sample: [message_size_limit]
values:
  description: The values of the parameters in O(read) and O(params), after the change.
  returned: always
  type: dict
  sample: {"message_size_limit": "52428800", "myhostname": "mail.example.org"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postconf import (
    Postconf,
    PostconfError,
    run_postconf,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "params": {"type": "dict", "default": {}},
            "read": {"type": "list", "elements": "str", "default": []},
            "config_dir": {"type": "path", "default": "/etc/postfix"},
            "allow_open_relay": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    postconf_bin = module.get_bin_path("postconf", required=True)
    postconf = Postconf(module.run_command, module.params["config_dir"], postconf_bin)
    try:
        result = run_postconf(
            postconf,
            module.params["params"],
            module.params["read"],
            module.check_mode,
            module.params["allow_open_relay"],
        )
    except PostconfError as exc:
        module.fail_json(msg=str(exc))
    for warning in result.pop("warnings"):
        module.warn(warning)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
