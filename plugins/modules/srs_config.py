#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: srs_config
short_description: postsrsd's secret and settings, checked, applied, health-checked, rolled back
version_added: 0.1.0
description:
  - Writes Debian's C(/etc/default/postsrsd) (postsrsd 1.x, read by the unit's launcher) from O(settings), rendered
    by the collection, never from free text.
  - Creates the SRS secret when there is none, on the host (32 random bytes, base64), mode 0600, owned by root. An
    existing secret is never regenerated (addresses made with it must keep reversing); one readable by others is
    made 0600. Its content is never returned and never shown in a diff.
  - postsrsd has no configuration checker. A changed candidate is checked the way the launcher reads it -
    C(/bin/sh -n), then sourced in a subshell, and every value read back must be the rendered one - before it is
    swapped in atomically and postsrsd restarted (it reads its settings only at start).
  - Health is a real lookup on both tables (Postfix's tcp_table protocol) - the forward table must rewrite
    C(postmaster-health@srs-health.invalid) into an SRS address of the SRS domain, and the reverse table must turn
    it back. Otherwise the previous file comes back, a secret made by this run is removed, and postsrsd is
    restarted.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
attributes:
  check_mode:
    support: full
    details:
      - In check mode a changed candidate is still checked by the shell; no file is written.
  diff_mode:
    support: full
    details:
      - The diff shows the settings file; the secret appears only as kept or generated, never its content.
options:
  settings:
    description:
      - The srs role's settings without the C(srs_) prefix, validated as the role validates them.
      - C(domain) (the SRS domain), C(local_domains) (never rewritten), C(forward_port), C(reverse_port),
        C(separator), C(hash_length), C(hash_minimum), C(restore_local_return_path).
    type: dict
    required: true
  defaults_path:
    description:
      - The settings file Debian's launcher sources.
    type: path
    default: /etc/default/postsrsd
  secret_path:
    description:
      - The SRS secret.
    type: path
    default: /etc/postsrsd.secret
  health_check:
    description:
      - After a change, require both tables to answer a real lookup.
    type: bool
    default: true
  health_host:
    description:
      - Address of the health check.
    type: str
    default: 127.0.0.1
  health_port:
    description:
      - Port of the forward table for the health check; 0 means C(forward_port) of O(settings).
    type: int
    default: 0
  health_timeout:
    description:
      - Seconds to keep retrying the health check.
    type: int
    default: 30
requirements:
  - postsrsd 1.x (Debian 12 and 13 ship 1.10) on the host; systemd.
seealso:
  - module: postmaster.mailserver.postfix_config
"""

EXAMPLES = r"""
- name: Rewrite the envelope sender of forwarded mail into example.org
  postmaster.mailserver.srs_config:
    settings:
      domain: example.org
      local_domains: [example.net]
"""

RETURN = r"""
defaults_path:
  description: The settings file.
  returned: always
  type: str
  sample: /etc/default/postsrsd
secret_path:
  description: The secret's path (its content is never returned).
  returned: always
  type: str
  sample: /etc/postsrsd.secret
secret_generated:
  description: Whether a secret was made (or would be) because there was none.
  returned: always
  type: bool
secret_mode_fixed:
  description: Whether an existing secret readable by others was made 0600.
  returned: always
  type: bool
restarted:
  description: Whether postsrsd was (re)started.
  returned: always
  type: bool
lookup:
  description: The health check's round trip (the test address, its SRS form, and back).
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
from ansible_collections.postmaster.mailserver.plugins.module_utils.srs.srs_config import (
    SrsConfig,
    SrsConfigError,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "settings": {"type": "dict", "required": True},
            "defaults_path": {"type": "path", "default": "/etc/default/postsrsd"},
            "secret_path": {"type": "path", "default": "/etc/postsrsd.secret", "no_log": False},
            **health_options(port=0, timeout=30),
            **CALL_RECORD_OPTION,
        },
        supports_check_mode=True,
    )
    run_backend(module, SrsConfig, SrsConfigError, **module_options(module))


if __name__ == "__main__":
    main()
