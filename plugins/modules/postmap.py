#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: postmap
short_description: Compile a Postfix lookup table when its source changed
version_added: 0.1.0
description:
  - Runs C(postmap) (or C(postalias) for alias tables) on O(path) when the compiled file is missing or
    older than the source.
  - The compiled file gets the owner, group and mode of the source, so a C(0600) root password
    source gives a C(0600) root C(.db). A compiled file whose owner or mode differs is fixed even when
    no rebuild is needed.
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
  path:
    description:
      - The source file of the table.
    type: path
    required: true
  type:
    description:
      - The table type; decides the compiled file (V(.db) for V(hash) and V(btree), V(.lmdb), V(.cdb)).
    type: str
    choices: [hash, btree, lmdb, cdb]
    default: hash
  aliases:
    description:
      - Compile with C(postalias) instead of C(postmap) (for C(alias_maps) tables such as C(/etc/aliases)).
    type: bool
    default: false
  config_dir:
    description:
      - The Postfix configuration directory passed to C(postmap -c).
    type: path
    default: /etc/postfix
requirements:
  - Postfix (C(postmap), C(postalias)).
seealso:
  - module: postmaster.mailserver.postfix_config
"""

EXAMPLES = r"""
- name: Compile the SASL password table
  postmaster.mailserver.postmap:
    path: /etc/postfix/sasl_passwd

- name: Compile the aliases
  postmaster.mailserver.postmap:
    path: /etc/aliases
    aliases: true
"""

RETURN = r"""
db_path:
  description: The compiled file.
  returned: always
  type: str
  sample: /etc/postfix/sasl_passwd.db
rebuilt:
  description: Whether the table was (or in check mode would be) compiled.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.postmap import Postmap, PostmapError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "type": {"type": "str", "choices": ["hash", "btree", "lmdb", "cdb"], "default": "hash"},
            "aliases": {"type": "bool", "default": False},
            "config_dir": {"type": "path", "default": "/etc/postfix"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        backend = Postmap(
            path=params["path"],
            table_type=params["type"],
            aliases=params["aliases"],
            config_dir=params["config_dir"],
            run_command=module.run_command,
            get_bin_path=module.get_bin_path,
            check_mode=module.check_mode,
        )
        result = backend.execute()
    except PostmapError as exc:
        module.fail_json(msg=str(exc))
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
