#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: mail_packages
short_description: A role's preflight checks and Debian packages in one call
version_added: 0.1.0
description:
  - Each role of this collection starts with this module, once. It checks that the roles it builds on were
    applied (O(requires)) and that no conflicting one was (O(conflicts)), then installs the Debian packages of
    O(names) that are missing.
  - The checks run before anything is installed, so a failed one leaves the host as it was, with the message of
    the entry that failed.
  - On a host where every package is installed the module only reads the dpkg database (C(dpkg-query)); apt's
    cache is not opened and nothing is written. Otherwise it preseeds O(debconf), runs C(apt-get update) when
    apt's lists are older than O(cache_valid_time), and C(apt-get install) the missing packages
    non-interactively, keeping existing configuration files.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the packages that would be installed are reported as RV(missing), and a missing
        O(requires) path is a warning instead of an error (a check run on a fresh host cannot see what the roles
        before this one would have created). Conflicts still fail.
  diff_mode:
    support: none
options:
  names:
    description:
      - Debian package names. Versions and release pins are not supported.
    type: list
    elements: str
    default: []
  debconf:
    description:
      - Answers given to debconf before the install (only when something is installed), for example
        C(postfix postfix/main_mailer_type select No configuration).
    type: list
    elements: dict
    default: []
    suboptions:
      package:
        description: The package that owns the question.
        type: str
        required: true
      question:
        description: The question, such as C(postfix/main_mailer_type).
        type: str
        required: true
      vtype:
        description: The question's type.
        type: str
        required: true
        choices: [select, multiselect, string, boolean, note, text, password, title]
      value:
        description: The answer, one line.
        type: raw
        required: true
  requires:
    description:
      - Paths that must exist before anything is done; the first one missing fails the task with its O(requires[].msg).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: An absolute path.
        type: path
        required: true
      msg:
        description: The error when the path is missing; say which role or variable provides it.
        type: str
  conflicts:
    description:
      - Paths that must not exist; the first one present fails the task with its O(conflicts[].msg).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: An absolute path.
        type: path
        required: true
      msg:
        description: The error when the path exists.
        type: str
  probe:
    description:
      - Paths whose existence is returned in RV(exists), looked at after the install (a package may create them),
        so that a role can decide what to configure without a task of its own.
    type: list
    elements: path
    default: []
  install_recommends:
    description:
      - Install the packages' recommended packages too (apt's default).
    type: bool
    default: true
  hold_services:
    description:
      - While the packages install, forbid their maintainer scripts to start services (a temporary
        C(/usr/sbin/policy-rc.d) that exits 101; an existing one is put back afterwards). The role then starts its
        daemon itself once its configuration is in place.
    type: bool
    default: false
  list_installed:
    description:
      - Also return RV(host_packages), every package installed on the host after this run (the same single
        C(dpkg-query), listing all packages instead of O(names)).
      - The action plugin in front of this module keeps it for the rest of the play, in the fact C(postmaster_host),
        and answers a later call whose packages are all installed, and whose O(requires), O(conflicts) and O(probe)
        paths the play has seen, without a host round trip.
    type: bool
    default: false
  call_records:
    description:
      - Also return RV(call_records), the census of the configuration modules' call records
        (C(/var/lib/postmaster-mailserver/calls/), see the O(postmaster.mailserver.srs_config#module:call_record) option of the configuration modules).
      - Set by the action plugin on the play's first call; a record whose files or units changed is removed
        (not in check mode).
    type: bool
    default: false
  cache_valid_time:
    description:
      - Before an install, C(apt-get update) runs when apt's lists are older than this many seconds.
    type: int
    default: 3600
"""

EXAMPLES = r"""
- name: Check that the postfix role ran, then install Dovecot
  postmaster.mailserver.mail_packages:
    names: [dovecot-core, dovecot-imapd, dovecot-lmtpd]
    requires:
      - path: /etc/postfix/postmaster.d
        msg: apply the postmaster.mailserver.postfix role before the dovecot role
    conflicts:
      - path: /etc/postfix/postmaster.d/30-saslauthd.json
        msg: saslauthd is already the SASL backend

- name: Install Postfix without its configuration dialog
  postmaster.mailserver.mail_packages:
    names: [postfix]
    debconf:
      - {package: postfix, question: postfix/main_mailer_type, vtype: select, value: No configuration}
"""

RETURN = r"""
missing:
  description: The packages of O(names) that were not installed when the module started.
  returned: always
  type: list
  elements: str
  sample: [dovecot-lmtpd]
installed:
  description: The packages this run installed (empty in check mode).
  returned: always
  type: list
  elements: str
  sample: [dovecot-lmtpd]
cache_updated:
  description: Whether C(apt-get update) ran.
  returned: always
  type: bool
exists:
  description: For each path of O(probe), whether it exists.
  returned: always
  type: dict
  sample: {/etc/dovecot/dovecot.conf: true}
host_packages:
  description: Every package installed on the host after this run (names only, sorted).
  returned: when O(list_installed=true)
  type: list
  elements: str
  sample: [adduser, apt, postfix]
call_records:
  description:
    - The results of the configuration module calls whose record still matches the host, by their key.
  returned: when O(call_records=true)
  type: dict
  sample: {}
processors:
  description:
    - The processors this host gives the module (its CPU affinity), as C(ansible_facts.processor_vcpus) counts them
      on a host without limits.
  returned: when O(list_installed=true)
  type: int
  sample: 2
memtotal_mb:
  description:
    - The host's memory in MiB (C(MemTotal) of C(/proc/meminfo)), as C(ansible_facts.memtotal_mb) gives it.
    - The play then knows it without gathering the C(hardware) facts.
  returned: when O(list_installed=true) and C(/proc/meminfo) gives it
  type: int
  sample: 2048
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.common import call_record
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_packages import (
    MailPackages,
    MailPackagesError,
)

PATH_ENTRY = {"path": {"type": "path", "required": True}, "msg": {"type": "str"}}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "names": {"type": "list", "elements": "str", "default": []},
            "debconf": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "package": {"type": "str", "required": True},
                    "question": {"type": "str", "required": True},
                    "vtype": {
                        "type": "str",
                        "required": True,
                        "choices": ["select", "multiselect", "string", "boolean", "note", "text", "password", "title"],
                    },
                    "value": {"type": "raw", "required": True},
                },
            },
            "requires": {"type": "list", "elements": "dict", "default": [], "options": PATH_ENTRY},
            "conflicts": {"type": "list", "elements": "dict", "default": [], "options": PATH_ENTRY},
            "probe": {"type": "list", "elements": "path", "default": []},
            "cache_valid_time": {"type": "int", "default": 3600},
            "install_recommends": {"type": "bool", "default": True},
            "hold_services": {"type": "bool", "default": False},
            "list_installed": {"type": "bool", "default": False},
            "call_records": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    backend = MailPackages(module.run_command, module.get_bin_path, check_mode=module.check_mode)
    try:
        result = backend.execute(
            params["names"],
            debconf=params["debconf"],
            requires=params["requires"],
            conflicts=params["conflicts"],
            probe=params["probe"],
            cache_valid_time=params["cache_valid_time"],
            install_recommends=params["install_recommends"],
            hold_services=params["hold_services"],
            list_installed=params["list_installed"],
        )
    except MailPackagesError as exc:
        for warning in backend.warnings:
            module.warn(warning)
        module.fail_json(msg=str(exc), changed=backend.acted)
    for warning in backend.warnings:
        module.warn(warning)
    if params["call_records"]:
        result["call_records"] = call_record.census(
            module.run_command, module.get_bin_path, check_mode=module.check_mode
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
