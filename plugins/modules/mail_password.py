#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: mail_password
short_description: Manage a Dovecot passwd-file of virtual users without rehashing on every run
version_added: 0.1.0
description:
  - Writes the whole passwd-file O(path) (C(user:{SCHEME}hash::::::extra_fields) lines) for the users given,
    in one call, so that large user lists cost one read and one write.
  - For a user given with a password, the existing hash is verified against it. A matching entry is kept
    as it is; only a mismatch, a new user or a change of O(scheme) computes a new hash with a random salt.
    Re-runs therefore report no change and compute no hash.
  - Verification and C(SHA512-CRYPT) hashing use libcrypt's reentrant crypt_r(3) on one thread per CPU (or the
    Python C(crypt) module where crypt_r is missing); C(ARGON2ID) uses libsodium (which Dovecot itself uses)
    through ctypes, with Dovecot's cost (t=3, m=64 MiB). Only where neither can, C(doveadm pw) runs.
  - No password is ever on a command line, for any scheme. C(doveadm pw) gets it on stdin, in a new session
    without a controlling terminal (C(setsid -w)), never with C(-p).
  - The C(postmaster.mailserver.dovecot) role uses it for its virtual users.
  - The file is written atomically. The diff shows user names and schemes only; hashes are never shown.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - Hashes are replaced by C(<redacted>) (or C(<redacted, new hash>) for a new hash) in the diff.
options:
  path:
    description:
      - The passwd-file.
    type: path
    required: true
  users:
    description:
      - The users of the file. Give each one O(users[].password) or O(users[].hash).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The login name, usually C(user@domain).
        type: str
        required: true
      password:
        description:
          - The clear-text password. It is verified against the existing hash and hashed only on mismatch.
        type: str
      hash:
        description:
          - A pre-computed hash in Dovecot's C({SCHEME}value) form, written as given.
        type: str
      extra_fields:
        description:
          - Dovecot extra fields of the entry (last field), for example C(userdb_quota_rule=*:storage=1G).
        type: str
        default: ""
  scheme:
    description:
      - The scheme of new hashes. An existing hash of another scheme is replaced.
    type: str
    choices: [SHA512-CRYPT, ARGON2ID]
    default: SHA512-CRYPT
  exclusive:
    description:
      - Remove entries of users not in O(users).
    type: bool
    default: true
requirements:
  - libsodium (C(libsodium23), a dependency of C(dovecot-core)) for the C(ARGON2ID) scheme, else C(doveadm) and
    C(setsid).
notes:
  - Comment and blank lines of an existing file are not kept.
  - The C(invocation) echoed in the result gives the number of O(users), not the list. AnsibleModule
    masks every C(no_log) value in every string of its result, which for the full list costs time
    quadratic in the number of users (about 9 seconds for 10,000). For the same reason the module first
    drops the C(no_log) values that occur nowhere in its result; the masking of those that do is unchanged.
"""

EXAMPLES = r"""
- name: Virtual users of Dovecot
  postmaster.mailserver.mail_password:
    path: /etc/dovecot/users
    owner: root
    group: dovecot
    mode: "0640"
    users:
      - name: alice@example.org
        password: "{{ vault_alice_password }}"
      - name: bob@example.org
        hash: "{SHA512-CRYPT}$6$f6n0xEVs0fUdKAZd$Yh3E..."
  no_log: true
"""

RETURN = r"""
added:
  description: Users added to the file.
  returned: always
  type: list
  elements: str
  sample: [alice@example.org]
updated:
  description: Users whose hash (new password or scheme) or extra fields changed.
  returned: always
  type: list
  elements: str
removed:
  description: Users removed from the file (O(exclusive)).
  returned: always
  type: list
  elements: str
"""

import os
import pwd
from collections.abc import Iterator
from typing import Any, NoReturn

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.call_record import Footprint
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import (
    CALL_RECORD_OPTION,
    forget_call,
    record_call,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import (
    PathPolicyError,
    check_host_path,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import write_atomically
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.mail_password import (
    SCHEMES,
    MailPasswordError,
    User,
    default_backends,
    plan,
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _prune_no_log_values(module: AnsibleModule, result: dict[str, Any]) -> None:
    """Keep only the no_log values that occur in *result*.

    AnsibleModule tests every no_log value against every string of the result, which
    is quadratic in the number of users; one search per value in the joined text gives
    the same masking for a fraction of the time.
    """
    text = "\0".join(_strings(result))
    module.no_log_values = {value for value in module.no_log_values if value in text}


def _exit(module: AnsibleModule, failed: bool = False, **result: Any) -> NoReturn:
    _prune_no_log_values(module, result)
    if failed:
        forget_call(module)
        module.fail_json(**result)
    module.exit_json(**result)


def _uids(owner: str | None) -> tuple[int, ...]:
    """The uid of the file's wanted owner (a name or a number), when it exists."""
    if not owner:
        return ()
    if str(owner).isdigit():
        return (int(owner),)
    try:
        return (pwd.getpwnam(owner).pw_uid,)
    except KeyError:
        return ()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "users": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "password": {"type": "str", "no_log": True},
                    "hash": {"type": "str", "no_log": True},
                    "extra_fields": {"type": "str", "default": ""},
                },
                "mutually_exclusive": [["password", "hash"]],
                "required_one_of": [["password", "hash"]],
            },
            "scheme": {"type": "str", "choices": list(SCHEMES), "default": "SHA512-CRYPT"},
            "exclusive": {"type": "bool", "default": True},
            **CALL_RECORD_OPTION,
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    # The echoed arguments, without the user list: AnsibleModule scans every string
    # of the result for every no_log value, quadratic in the number of users.
    invocation = {"module_args": {**params, "users": f"{len(params['users'])} users (not echoed)"}}
    try:
        check_host_path(path, "path", kind="file", owners=_uids(params.get("owner")))
    except PathPolicyError as exc:
        _exit(module, failed=True, msg=str(exc), invocation=invocation)
    try:
        with open(path, encoding="utf-8") as handle:
            existing = handle.read()
    except FileNotFoundError:
        existing = ""
    except OSError as exc:
        _exit(module, failed=True, msg=f"cannot read {path}: {exc}", invocation=invocation)

    verify, make_hash = default_backends(
        module.run_command, module.get_bin_path("doveadm"), module.get_bin_path("setsid")
    )
    users = [
        User(name=u["name"], password=u["password"], hash=u["hash"], extra_fields=u["extra_fields"] or "")
        for u in params["users"]
    ]
    try:
        result = plan(
            existing,
            users,
            scheme=params["scheme"],
            exclusive=params["exclusive"],
            verify=verify,
            make_hash=make_hash,
            workers=os.cpu_count() or 1,
        )
    except MailPasswordError as exc:
        _exit(module, failed=True, msg=str(exc), invocation=invocation)

    changed = result.changed or not os.path.exists(path)
    # The file as it was (content, owner, group, mode): a failure below puts it back.
    touched = Touched()
    if not module.check_mode:
        touched.remember(path)
    if changed and not module.check_mode:
        # Owner and mode are set below; a new file is 0600 until then.
        write_atomically(module.atomic_move, path, result.content, ".mail_password.", touched)

    file_args = module.load_file_common_arguments(params)
    if module.check_mode and not os.path.exists(path):
        attrs_changed = False
    else:
        try:
            attrs_changed = module.set_fs_attributes_if_different(file_args, False)
        except SystemExit:
            # It failed the module itself (an unknown owner or group, a bad mode): the passwd-file
            # must not stay half-done, new hashes under the old owner or a new file 0600 to root.
            touched.restore()
            raise

    output = {
        "changed": changed or attrs_changed,
        "added": result.added,
        "updated": result.updated,
        "removed": result.removed,
        "invocation": invocation,
    }
    record_call(module, Footprint([path]), {"added": [], "updated": [], "removed": []})
    if module._diff:
        output["diff"] = {
            "before_header": path,
            "after_header": path,
            "before": result.before_redacted,
            "after": result.after_redacted,
        }
    _exit(module, **output)


if __name__ == "__main__":
    main()
