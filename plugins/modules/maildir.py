#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: maildir
short_description: Create Maildir skeletons, with Maildir++ folders, for one or many mailboxes
version_added: 0.1.0
description:
  - Creates a Maildir (C(cur), C(new) and C(tmp)) at O(path), or one for each item of O(paths) or
    O(maildirs), so that thousands of mailboxes take one task.
  - Optionally creates IMAP folders (O(folders)) as Maildir++ directories (V(Sent) becomes C(.Sent) with
    its own C(cur), C(new) and C(tmp), plus the empty C(maildirfolder) file that Dovecot and Courier
    expect).
  - The Maildir and every directory in it that the module manages get O(owner), O(group) and O(mode).
    Existing directories whose owner, group or mode differ are fixed.
  - Messages are never touched. Files are never changed, and C(cur), C(new) and C(tmp) are never read,
    so a re-run costs a few C(lstat) calls per directory.
  - Symlinks are refused, not followed, for the Maildir itself and everything below it. Existing parents
    of the Maildir may be symlinks only when root owns the symlink (for example C(/var/mail) pointing to
    C(/var/spool/mail)). All changes below the parent are made through directory descriptors opened with
    C(O_NOFOLLOW), so a symlink swapped in by the mailbox owner cannot redirect C(chown).
  - Every entry (paths, owners, groups, mode, folder names) is validated before anything changes.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff lists the created (top-most only, like RV(created)) and fixed directories and files with
        their owner, group and mode, and V(absent) before creation. It never shows file contents.
options:
  path:
    description:
      - The Maildir to ensure, an absolute path such as C(/var/mail/vmail/example.org/alice).
      - One of O(path), O(paths) and O(maildirs) is required; O(paths) and O(maildirs) may be given
        together (for example the virtual mailboxes and C(/etc/skel/Maildir) in one call).
    type: path
  paths:
    description:
      - Many Maildirs in one call, all with the same O(owner) and O(group) (virtual mailboxes under one
        C(vmail) user).
    type: list
    elements: path
  maildirs:
    description:
      - Many Maildirs in one call, each with its own owner and group (system users).
      - O(mode), O(folders) and O(create_parents) apply to every entry.
    type: list
    elements: dict
    suboptions:
      path:
        description:
          - The Maildir, an absolute path.
        type: path
        required: true
      owner:
        description:
          - Owner of this Maildir; defaults to O(owner).
        type: str
      group:
        description:
          - Group of this Maildir. Defaults to the primary group of O(maildirs[].owner) when that is set,
            otherwise to O(group).
        type: str
  account:
    description:
      - The system account that owns virtual mailboxes, ensured before any Maildir (so the mailboxes role gives the
        account, its base directory and every Maildir in one call).
      - The group and the user are created as system accounts with these ids, or changed to them
        (C(groupadd), C(useradd), C(groupmod), C(usermod)). The home directory is created (or fixed) with the
        account's owner and O(account.home_mode), and is never followed when it is a symlink.
      - System directories (C(/), C(/etc), C(/var/mail), C(/home) and the like) are refused as the home.
    type: dict
    suboptions:
      user:
        description: The user name (not root).
        type: str
        required: true
      uid:
        description: Its uid.
        type: int
        required: true
      group:
        description: Its primary group (not root).
        type: str
        required: true
      gid:
        description: The group's gid.
        type: int
        required: true
      home:
        description: Its home, the base of the virtual Maildirs, such as C(/var/mail/vmail).
        type: path
        required: true
      shell:
        description: Its login shell.
        type: path
        default: /usr/sbin/nologin
      home_mode:
        description: Mode of the home directory; never writable by others.
        type: str
        default: "0750"
  purge_domains:
    description:
      - Delete the Maildirs of these domains under O(account.home) that are not among O(paths), after the account
        and the Maildirs are ensured (the mailboxes role's C(mailboxes_purge_removed)).
      - Only what the role itself creates is deleted, C(<home>/<domain>/<user>) directories of these domains that
        are real directories (no symlink) owned by O(account.uid) and hold C(cur), C(new) and C(tmp). The home
        itself, anything outside it, other domains and directories starting with C(.) are never touched.
      - Requires O(account).
    type: list
    elements: str
    default: []
  owner:
    description:
      - Name or uid of the owner of the Maildirs and of the directories the module creates.
      - When not set, the owner of existing directories is left as it is and new ones belong to the user
        the module runs as.
    type: str
  group:
    description:
      - Name or gid of the group. When not set, the primary group of O(owner) is used; when neither is
        set, the group is left as it is.
    type: str
  mode:
    description:
      - Permissions of every directory the module manages, as an octal string such as V('0700') or an
        octal number. It must give the owner C(rwx), and must not let every user write (C(o+w)).
      - A created C(maildirfolder) file gets the same permissions without the execute bits (V(0600)).
    type: raw
    default: "0700"
  folders:
    description:
      - IMAP folders to create as Maildir++ directories, for example V([Sent, Drafts, Trash, Junk]).
      - Sub-folders use C(.) as separator (V(Archive.2024)). Names must not contain C(/), start or end
        with C(.), or be V(INBOX).
    type: list
    elements: str
    default: []
  create_parents:
    description:
      - Create missing parent directories of a Maildir (such as the domain directory of
        C(/var/mail/vmail/example.org/alice)).
      - Parents created by the module get the Maildir's owner, group and O(mode). Parents that already
        exist are never changed.
      - When V(false), a missing parent is an error.
    type: bool
    default: true
notes:
  - Existing files, including a C(maildirfolder) file, are never changed, not even their owner or mode.
  - The returned lists and the diff have one entry per new Maildir (or per new parent, such as a new domain
    directory) and per fixed directory, so that creating thousands of Maildirs stays readable.
  - The C(invocation) echoed in the result gives the number of O(paths) and O(maildirs), not the lists, so
    that 10,000 Maildirs do not send 10,000 paths back to the controller.
"""

EXAMPLES = r"""
- name: Maildir of a mail-only system user
  postmaster.mailserver.maildir:
    path: /home/alice/Maildir
    owner: alice
    folders: [Sent, Drafts, Trash, Junk]

- name: Maildirs of all virtual users, in one task
  postmaster.mailserver.maildir:
    paths: "{{ virtual_users | map(attribute='maildir') }}"
    owner: vmail
    group: vmail
    folders: [Sent, Drafts, Trash, Junk]

- name: Maildirs of system users, each owned by its user
  postmaster.mailserver.maildir:
    maildirs:
      - path: /home/alice/Maildir
        owner: alice
      - path: /home/bob/Maildir
        owner: bob
    create_parents: false
"""

RETURN = r"""
account:
  description: What was (or in check mode would be) done for O(account), such as C(user vmail created).
  returned: always
  type: list
  elements: str
  sample: [group vmail created, user vmail created, /var/mail/vmail created]
created:
  description:
    - Directories and C(maildirfolder) files created (or, in check mode, to be created), parents first.
    - Only the top-most created path is listed; everything below a listed directory was created with it
      (a new Maildir appears as one entry, not one per C(cur), C(new), C(tmp) and folder).
  returned: always
  type: list
  elements: str
  sample: [/var/mail/vmail/example.org, /home/bob/Maildir/.Junk, /home/carol/Maildir/.Sent/maildirfolder]
fixed:
  description: Existing directories whose owner, group or mode were (or would be) fixed.
  returned: always
  type: list
  elements: str
  sample: [/home/alice/Maildir/new]
removed:
  description: Maildirs deleted (or, in check mode, to be deleted) by O(purge_domains).
  returned: always
  type: list
  elements: str
  sample: [/var/mail/vmail/example.org/olduser]
"""

from collections.abc import Iterable
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.call_record import Footprint
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import (
    CALL_RECORD_OPTION,
    record_call,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.maildir import (
    FOLDER_MARKER,
    SUBDIRS,
    MaildirError,
    Maildirs,
    Spec,
    build_specs,
    purge,
    purge_candidates,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.vmail_account import (
    AccountError,
    VmailAccount,
)


def footprint(specs: list[Spec], account: dict[str, Any] | None, owners: Iterable[str] = ()) -> Footprint:
    """What a run without a change compares: every Maildir with its folders, the account with its home, and
    the accounts and groups named as owners (an account made again gets another uid)."""
    paths: list[str] = list(owners)
    for spec in specs:
        for top in (spec.path, *(f"{spec.path}/{folder}" for folder in spec.folders)):
            paths += [top, *(f"{top}/{sub}" for sub in SUBDIRS)]
        paths += [f"{spec.path}/{folder}/{FOLDER_MARKER}" for folder in spec.folders]
    if account:
        paths += [f"user:{account['user']}", f"group:{account['group']}", account["home"]]
    return Footprint(paths)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path"},
            "paths": {"type": "list", "elements": "path"},
            "maildirs": {
                "type": "list",
                "elements": "dict",
                "options": {
                    "path": {"type": "path", "required": True},
                    "owner": {"type": "str"},
                    "group": {"type": "str"},
                },
            },
            "owner": {"type": "str"},
            "group": {"type": "str"},
            "mode": {"type": "raw", "default": "0700"},
            "folders": {"type": "list", "elements": "str", "default": []},
            "create_parents": {"type": "bool", "default": True},
            "purge_domains": {"type": "list", "elements": "str", "default": []},
            "account": {
                "type": "dict",
                "options": {
                    "user": {"type": "str", "required": True},
                    "uid": {"type": "int", "required": True},
                    "group": {"type": "str", "required": True},
                    "gid": {"type": "int", "required": True},
                    "home": {"type": "path", "required": True},
                    "shell": {"type": "path", "default": "/usr/sbin/nologin"},
                    "home_mode": {"type": "str", "default": "0750"},
                },
            },
            **CALL_RECORD_OPTION,
        },
        mutually_exclusive=[["path", "paths"], ["path", "maildirs"]],
        required_one_of=[["path", "paths", "maildirs", "account"]],
        supports_check_mode=True,
    )
    params = module.params
    entries = list(params["maildirs"] or [])
    paths = params["paths"] if params["path"] is None else [params["path"]]
    entries += [{"path": path} for path in paths or []]
    # Echo counts, not the lists (10,000 paths would go back to the controller).
    args = dict(params)
    for key in ("paths", "maildirs"):
        if args[key] is not None:
            args[key] = f"{len(args[key])} {key} (not echoed)"
    invocation = {"module_args": args}
    try:
        specs = build_specs(
            entries, owner=params["owner"], group=params["group"], mode=params["mode"], folders=params["folders"]
        )
    except MaildirError as exc:
        module.fail_json(msg=str(exc), changed=False, created=[], fixed=[], invocation=invocation)

    if params["purge_domains"] and not params["account"]:
        module.fail_json(msg="purge_domains needs account (its home is the base the Maildirs are purged from)")
    account_changes: list[str] = []
    if params["account"]:
        accounts = VmailAccount(module.run_command, module.get_bin_path, check_mode=module.check_mode)
        try:
            account_changes = accounts.ensure(params["account"])
        except (AccountError, OSError) as exc:
            module.fail_json(
                msg=str(exc), changed=bool(accounts.changes), account=accounts.changes, created=[], fixed=[]
            )
    backend = Maildirs(create_parents=params["create_parents"], check_mode=module.check_mode)
    try:
        result = backend.run(specs)
    except (MaildirError, OSError) as exc:
        module.fail_json(
            msg=str(exc),
            changed=bool(backend.created or backend.fixed),
            created=backend.created,
            fixed=backend.fixed,
            invocation=invocation,
        )
    removed: list[str] = []
    if params["purge_domains"]:
        try:
            keep = [spec.path for spec in specs]
            candidates = purge_candidates(
                params["account"]["home"], params["purge_domains"], keep, params["account"]["uid"]
            )
            removed = purge(candidates, check_mode=module.check_mode)
        except MaildirError as exc:
            module.fail_json(
                msg=str(exc), changed=True, created=backend.created, fixed=backend.fixed, invocation=invocation
            )
    result["removed"] = removed
    result["account"] = account_changes
    result["changed"] = result["changed"] or bool(account_changes) or bool(removed)
    unchanged = {"created": [], "fixed": [], "removed": [], "account": []}
    owners = []
    for entry in entries:
        for kind, key in (("user", "owner"), ("group", "group")):
            name = entry.get(key) or params[key]
            if name and not str(name).isdigit():
                owners.append(f"{kind}:{name}")
    record_call(module, footprint(specs, params["account"], owners), result, unchanged=unchanged)
    if module._diff:
        header = params["path"] or f"{len(specs)} Maildirs"
        result["diff"] = backend.diff(header)
        if removed:
            result["diff"]["before"] += "".join(f"{path}/: present\n" for path in removed)
            result["diff"]["after"] += "".join(f"{path}/: absent\n" for path in removed)
        if account_changes:
            result["diff"] = [
                {
                    "before_header": "account",
                    "after_header": "account",
                    "before": "",
                    "after": "\n".join(account_changes) + "\n",
                },
                result["diff"],
            ]
    module.exit_json(**result, invocation=invocation)


if __name__ == "__main__":
    main()
