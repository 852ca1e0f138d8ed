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
  - With O(content), first writes the source itself (atomically, only when it differs), so that writing and
    compiling a table is one task; the diff then shows the source change.
  - Tables that Postfix reads from their source (O(type=regexp), V(pcre), V(cidr) and V(texthash)) are only written;
    there is nothing to compile, so a role writes every kind of table with the same task.
  - The compiled file gets the owner, group and mode of the source, so a C(0600) root password
    source gives a C(0600) root C(.db). A compiled file whose owner or mode differs is fixed even when
    no rebuild is needed.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  path:
    description:
      - The source file of the table.
      - One of O(path) and O(tables) is required.
    type: path
  tables:
    description:
      - Many tables in one call (a role's maps, checks and aliases cost one host round trip, not one each).
      - Each entry takes the options of a single table; O(config_dir) applies to all. O(owner), O(group) and
        O(mode) at the top level are not used with O(tables); give them per entry.
      - The RV(results) list has one result per entry, in order; C(changed) is true when any changed.
    type: list
    elements: dict
    suboptions:
      path:
        description: The source file.
        type: path
        required: true
      type:
        description: The table type, as O(type).
        type: str
        default: hash
        choices: [hash, btree, lmdb, cdb, regexp, pcre, cidr, texthash]
      aliases:
        description: Compile with C(postalias), as O(aliases).
        type: bool
        default: false
      content:
        description: The whole text of the source file, as O(content).
        type: str
      owner:
        description: Owner of the source and compiled files.
        type: str
      group:
        description: Group of the source and compiled files.
        type: str
      mode:
        description: Mode of the source and compiled files.
        type: raw
  type:
    description:
      - The table type; decides the compiled file (V(.db) for V(hash) and V(btree), V(.lmdb), V(.cdb)).
      - V(regexp), V(pcre), V(cidr) and V(texthash) tables are not compiled.
    type: str
    choices: [hash, btree, lmdb, cdb, regexp, pcre, cidr, texthash]
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
  content:
    description:
      - The whole text of the source file. When given, O(path) is written with it (atomically, and only when it
        differs) before the table is compiled.
      - When not given, the source must already exist and is not changed.
    type: str
notes:
  - The C(invocation) echoed in the result gives the length of O(content), not the text.
  - O(owner), O(group) and O(mode) apply to the source file, with or without O(content); the compiled file
    then gets them too. A new source file is created C(0600) and gets O(mode) before the task ends, so a
    password table is never readable by others.
requirements:
  - Postfix (C(postmap), C(postalias)).
seealso:
  - module: postmaster.mailserver.postfix_config
"""

EXAMPLES = r"""
- name: Write and compile a role's tables in one call
  postmaster.mailserver.postmap:
    tables:
      - path: /etc/postfix/vmailbox
        content: "alice@example.org example.org/alice/\n"
        mode: "0644"
      - path: /etc/aliases
        aliases: true
        content: "postmaster: root\n"
        mode: "0644"

- name: Compile the SASL password table
  postmaster.mailserver.postmap:
    path: /etc/postfix/sasl_passwd

- name: Write and compile a sender access table in one task
  postmaster.mailserver.postmap:
    path: /etc/postfix/sender_access
    content: |
      spammer.example REJECT
      partner.example OK
    owner: root
    group: root
    mode: "0644"

- name: Compile the aliases
  postmaster.mailserver.postmap:
    path: /etc/aliases
    aliases: true
"""

RETURN = r"""
db_path:
  description: The compiled file; V(null) for a table type that is not compiled.
  returned: with O(path)
  type: str
  sample: /etc/postfix/sasl_passwd.db
rebuilt:
  description: Whether the table was (or in check mode would be) compiled.
  returned: with O(path)
  type: bool
source_changed:
  description: Whether O(content) was (or in check mode would be) written to O(path), or its attributes changed.
  returned: with O(path)
  type: bool
results:
  description: With O(tables), one result per entry, in order, each with RV(db_path), RV(rebuilt), RV(source_changed)
    and C(changed).
  returned: with O(tables)
  type: list
  elements: dict
  sample: [{changed: false, db_path: /etc/aliases.db, rebuilt: false, source_changed: false}]
"""

import os
import pwd
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import (
    PathPolicyError,
    check_host_path,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import write_atomically
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postmap import (
    FLAT_TYPES,
    Postmap,
    PostmapError,
    candidate_problems,
    db_path,
)


def _uids(owner: Any) -> tuple[int, ...]:
    """The uid of the table's wanted owner (a name or a number), when it exists."""
    if not owner:
        return ()
    if str(owner).isdigit():
        return (int(owner),)
    try:
        return (pwd.getpwnam(str(owner)).pw_uid,)
    except KeyError:
        return ()


def write_source(
    module: AnsibleModule,
    path: str,
    content: str,
    invocation: dict[str, Any],
    owner: Any = None,
    *,
    table_type: str,
    config_dir: str,
) -> tuple[bool, dict[str, str] | None]:
    """Write *content* to *path* when it differs (a path no symlink or foreign tree leads to); return (changed, diff).

    A regexp, pcre or cidr table is first opened with Postfix's own lookup as a candidate: any
    warning fails the module before the table is replaced.
    """
    try:
        check_host_path(path, "path", kind="file", owners=_uids(owner))
    except PathPolicyError as exc:
        module.fail_json(msg=str(exc), invocation=invocation)
    try:
        with open(path, encoding="utf-8") as handle:
            before: str | None = handle.read()
    except FileNotFoundError:
        before = None
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg=f"cannot read {path}: {exc}", invocation=invocation)
    if before == content:
        return False, None
    diff = {"before_header": path, "after_header": path, "before": before or "", "after": content}
    if module.check_mode:
        return True, diff
    problems = candidate_problems(
        module.run_command, module.get_bin_path, config_dir=config_dir, table_type=table_type, path=path,
        content=content,
    )  # fmt: skip
    if problems:
        module.fail_json(
            msg=f"{path}: Postfix's own lookup refused the candidate {table_type} table (nothing was replaced): "
            + "; ".join(problems),
            invocation=invocation,
        )
    write_atomically(module.atomic_move, path, content, ".postmap.")
    return True, diff


TABLE_TYPES = ["hash", "btree", "lmdb", "cdb", *FLAT_TYPES]


def one_table(module: AnsibleModule, params: dict[str, Any]) -> dict[str, Any]:
    """Write (when content is given) and compile one table; fail the module on error."""
    path = params["path"]
    # A table of thousands of lines is not sent back to the controller in the echoed arguments.
    echoed = {key: value for key, value in params.items() if key != "tables"}
    if echoed["content"] is not None:
        echoed["content"] = f"{len(echoed['content'])} characters (not echoed)"
    invocation = {"module_args": echoed}
    diffs: list[dict[str, str]] = []
    source_changed = False
    if params["content"] is not None:
        source_changed, content_diff = write_source(
            module,
            path,
            params["content"],
            invocation,
            params.get("owner"),
            table_type=params["type"],
            config_dir=params["config_dir"],
        )
        if content_diff:
            diffs.append(content_diff)
    if params["type"] in FLAT_TYPES and params["aliases"]:
        module.fail_json(msg=f"aliases: true needs an indexed table type, not {params['type']}", invocation=invocation)
    if params["type"] in FLAT_TYPES and params["content"] is None and not os.path.isfile(path):
        module.fail_json(msg=f"source file {path} does not exist", invocation=invocation)
    if not (module.check_mode and not os.path.exists(path)):
        file_args = module.load_file_common_arguments(params)
        source_changed = module.set_fs_attributes_if_different(file_args, source_changed)
    if params["type"] in FLAT_TYPES:
        # Postfix reads the source itself: written (or not) is all there is to do.
        result = {"changed": source_changed, "rebuilt": False, "source_changed": source_changed, "db_path": None}
        if module._diff:
            result["diff"] = diffs or {"before": "", "after": ""}
        return {**result, "invocation": invocation}
    if module.check_mode and source_changed:
        # Nothing was written: the compiled file would be rebuilt from the new source.
        try:
            compiled = db_path(path, params["type"])
        except PostmapError as exc:
            module.fail_json(msg=str(exc), invocation=invocation)
        result = {"changed": True, "rebuilt": True, "source_changed": True, "db_path": compiled}
        if module._diff:
            result["diff"] = diffs or {"before": "", "after": ""}
        return {**result, "invocation": invocation}
    try:
        backend = Postmap(
            path=path,
            table_type=params["type"],
            aliases=params["aliases"],
            config_dir=params["config_dir"],
            run_command=module.run_command,
            get_bin_path=module.get_bin_path,
            check_mode=module.check_mode,
        )
        result = backend.execute()
    except PostmapError as exc:
        module.fail_json(msg=str(exc), changed=source_changed, source_changed=source_changed, invocation=invocation)
    diff = result.pop("diff")
    result["source_changed"] = source_changed
    result["changed"] = result["changed"] or source_changed
    if module._diff:
        result["diff"] = [*diffs, diff] if diffs else diff
    return {**result, "invocation": invocation}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path"},
            "tables": {
                "type": "list",
                "elements": "dict",
                "options": {
                    "path": {"type": "path", "required": True},
                    "type": {"type": "str", "choices": TABLE_TYPES, "default": "hash"},
                    "aliases": {"type": "bool", "default": False},
                    "content": {"type": "str"},
                    "owner": {"type": "str"},
                    "group": {"type": "str"},
                    "mode": {"type": "raw"},
                },
            },
            "type": {
                "type": "str",
                "choices": ["hash", "btree", "lmdb", "cdb", *FLAT_TYPES],
                "default": "hash",
            },
            "aliases": {"type": "bool", "default": False},
            "config_dir": {"type": "path", "default": "/etc/postfix"},
            "content": {"type": "str"},
        },
        add_file_common_args=True,
        supports_check_mode=True,
        required_one_of=[["path", "tables"]],
        mutually_exclusive=[["path", "tables"]],
    )
    params = module.params
    if params["tables"] is None:
        module.exit_json(**one_table(module, params))
    results = []
    for table in params["tables"]:
        # The per-table options over the top level's (config_dir and the file options not given).
        merged = {**params, "content": None, **{key: value for key, value in table.items() if value is not None}}
        merged["type"] = table["type"]
        merged["aliases"] = table["aliases"]
        item = one_table(module, merged)
        item.pop("invocation")
        results.append(item)
    result: dict[str, Any] = {"changed": any(item["changed"] for item in results), "results": results}
    if module._diff:
        diffs: list[Any] = []
        for item in results:
            diff = item.pop("diff", [])
            diffs.extend(diff if isinstance(diff, list) else [diff])
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
