#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: postfix_config
short_description: Assemble Postfix main.cf and master.cf from fragments, validate, apply and health-check
version_added: 0.1.0
description:
  - Merges the JSON fragments of O(fragment_dir) (files named C(NN-name.json), in sorted order) into
    C(main.cf) and C(master.cf).
  - A fragment is an object with the keys C(main) (parameters), C(overrides) (parameters this fragment
    may take over from an earlier one), C(insert) (entries to insert into list parameters, after or before
    an anchor restriction), C(master) (services), C(master_overrides) (C(name/type) of services this
    fragment may take over), C(owns) and C(master_owns) (parameters and services that belong to this fragment
    alone), C(allow_open_relay) (true lets the merged configuration relay for anyone) and
    C(trusted_policy_services) (C(inet:host:port) policy services on other hosts that may decide about relaying).
  - A parameter or service set by two fragments is an error that names both files, unless the later
    fragment lists it in C(overrides) or C(master_overrides).
  - A parameter another fragment C(owns) may not be set (not even with C(overrides)), inserted into, or passed as
    C(-o) to a service; a service another fragment C(master_owns) may not be defined. The amavis role's fragment
    owns C(content_filter), C(smtpd_proxy_filter) and its two services, so no other role can route mail around it.
  - Every regexp, pcre and cidr table of O(tables) is opened with C(postmap -q) as a candidate before any table is
    replaced; a warning is an error naming the table (and its C(origin)).
  - When no fragment defines a master.cf service, master.cf is left as it is.
  - A role can hand its own fragment to the module in O(fragments) instead of writing the file first. The
    fragment then takes part in the validation before its file is written, it is written together with the
    live files, and a rollback restores it too, so a fragment that fails validation never stays on disk.
  - When the result differs from the live files, the candidate is validated before anything is
    written. Restriction names and arguments, C(mynetworks) entries, and lookup tables (type supported
    per C(postconf -m), and compiled file present) are checked in Python. Then the candidate is written
    to a temporary copy of O(config_dir), where C(postconf -n) and C(postfix check) must succeed without
    printing any warning.
  - The C(-o) overrides of master.cf services are validated like main.cf values (restriction lists included), in
    the main.cf they apply to. An argument is one word (a value with spaces is one C({ name = value }) group), and a
    service name with C(#) or any field with a control character is refused.
  - An open relay is refused unless a fragment sets C(allow_open_relay). Restriction lists are judged as smtpd
    evaluates them, for main.cf and for every smtpd service reachable from outside with its C(-o) overrides. Relaying
    must be stopped by C(reject_unauth_destination) (or C(defer_unauth_destination), C(reject), C(defer),
    C(defer_if_permit)) in C(smtpd_relay_restrictions) or C(smtpd_recipient_restrictions) before any entry that
    permits every client. C(warn_if_reject) makes the next entry only log. C(permit), an access check whose table
    answers C(OK) (or C(RELAY), digits only, an empty list, a restriction that permits) for a key any outside client
    controls (every key of C(static:), C(randmap:), a catch-all C(cidr), C(regexp) or C(pcre) entry; the client name
    C(unknown), a top-level domain or wide address ranges of a client table; any key of a sender or HELO table; a
    top-level domain or C(local-part@) of a recipient table), a restriction class that does one of these,
    C(permit_tls_all_clientcerts), C(permit_tls_clientcerts) with a catch-all C(relay_clientcerts), C(permit_mx_backup)
    without C(permit_mx_backup_networks), a C(check_policy_service) on another host not listed in a fragment's
    C(trusted_policy_services), and C(permit_mynetworks) with a C(mynetworks) that trusts clients anywhere all permit
    every client. A C(mynetworks) that covers more than one /8 of public IPv4 (or one /16 of global IPv6) or matches
    every client, and a C(relay_domains) that matches every domain or a whole top-level domain, are refused on their
    own too. Table text is read from O(tables) and from the host.
  - Then the live files are replaced atomically (the previous ones are kept as C(main.cf.postmaster-previous)
    and C(master.cf.postmaster-previous)), and Postfix is reloaded when it runs. When the new master.cf no
    longer has an inet service of the live one, Postfix is restarted instead. After a reload that removes an
    inet service while one of its processes holds a connection, Postfix's master spins and answers on no
    service until that connection ends (seen with Postfix 3.10).
  - After the reload, smtpd must answer with a 220 greeting and Postfix must not have logged any error
    in the journal. Otherwise the previous files are restored, Postfix is restarted (a reload would keep a service
    that the broken candidate made the master daemon throttle), smtpd must answer again, and the module fails.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
attributes:
  check_mode:
    support: full
    details:
      - In check mode the candidate is still validated, but nothing is written or reloaded.
  diff_mode:
    support: full
options:
  fragment_dir:
    description:
      - Directory holding the fragments.
    type: path
    default: /etc/postfix/postmaster.d
  config_dir:
    description:
      - The Postfix configuration directory whose C(main.cf) and C(master.cf) are managed.
    type: path
    default: /etc/postfix
  tables:
    description:
      - Lookup tables of the caller, written (only when they differ) and compiled with C(postmap) or
        C(postalias) before the fragments and main.cf, so that a parameter may refer to a table given in the same
        call. A failed health check restores them with the rest.
      - A table lives directly in O(config_dir), or is C(/etc/aliases) with O(tables[].aliases); Postfix's own files
        (C(main.cf), C(master.cf), C(dynamicmaps.cf), ...) are refused.
      - A changed table makes Postfix reload (C(regexp), C(pcre) and C(cidr) tables are read at process start).
      - Put secrets (relay passwords) in a M(postmaster.mailserver.postmap) task with C(no_log) instead.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The source file.
        type: path
        required: true
      type:
        description: The table type.
        type: str
        default: hash
        choices: [hash, btree, lmdb, cdb, regexp, pcre, cidr, texthash]
      aliases:
        description: Compile with C(postalias) (for C(/etc/aliases)).
        type: bool
        default: false
      content:
        description: The whole text of the source.
        type: str
        required: true
      mode:
        description: Mode of the source and the compiled file; never writable by others.
        type: str
        default: "0644"
      owner:
        description: Owner (name or uid).
        type: str
        default: root
      group:
        description: Group (name or gid).
        type: str
        default: root
      origin:
        description:
          - What the table was made from (a role variable such as C(postfix_header_checks)); errors about the
            table name it.
        type: str
        default: ""
  ensure_running:
    description:
      - Also enable the C(postfix) unit at boot and start it when it does not run, after the files are in place; a
        Postfix started this way must answer like after a reload. The postfix role sets it, so that it needs no
        service task of its own.
    type: bool
    default: false
  report_local_domains:
    description:
      - Also return RV(local_domains), Postfix's C(mydestination) as the live main.cf gives it after this run,
        expanded (C(postconf -x)). The postfix role sets it, so that the mailboxes role can refuse a virtual domain
        that is also a local domain without a host call of its own.
    type: bool
    default: false
  reload:
    description:
      - Reload Postfix after changing the files, when it is running.
      - When Postfix is not running, nothing is reloaded and nothing is health-checked.
    type: bool
    default: true
  health_check:
    description:
      - After a reload, check that smtpd answers and that no error was logged; roll back otherwise.
    type: bool
    default: true
  health_host:
    description:
      - Address the SMTP health check connects to.
    type: str
    default: 127.0.0.1
  health_port:
    description:
      - Port the SMTP health check connects to.
    type: int
    default: 25
  health_timeout:
    description:
      - Seconds to keep retrying the SMTP health check.
    type: int
    default: 30
  fragments:
    description:
      - Fragments to write into O(fragment_dir) as part of this run, by file name (C(NN-name.json)); the value is
        the fragment object (written as sorted JSON with an indent of 2), or V(null) to remove that file.
      - When O(fragment_dir) does not exist yet, it counts as empty, and it is created (mode C(0755)) when a
        fragment is written. When it does not exist and every fragment given is V(null), there is nothing to remove
        and nothing is assembled (Postfix need not be installed), so a role that is switched off on such a host
        changes nothing.
      - They replace the files of the same name in the assembly, are checked before anything is written, and are
        written (or removed) only when the whole candidate is valid. The diff shows them.
    type: dict
    default: {}
requirements:
  - Postfix (C(postconf) and C(postfix)); C(journalctl) for the log part of the health check.
seealso:
  - module: postmaster.mailserver.postconf
  - module: postmaster.mailserver.postmap
"""

EXAMPLES = r"""
- name: Hand the SPF policy fragment to Postfix and apply it (the file is written only if the result is valid)
  postmaster.mailserver.postfix_config:
    fragments:
      50-policyd_spf.json:
        main:
          policyd-spf_time_limit: 3600
        insert:
          - param: smtpd_recipient_restrictions
            after: reject_unauth_destination
            values:
              - check_policy_service unix:private/policyd-spf
        master:
          - name: policyd-spf
            type: unix
            private: "-"
            unpriv: n
            chroot: n
            wakeup: "-"
            maxproc: "0"
            command: spawn
            args:
              - user=policyd-spf
              - argv=/usr/bin/policyd-spf

- name: Assemble and apply the Postfix configuration from the fragments already in the directory
  postmaster.mailserver.postfix_config:
    fragment_dir: /etc/postfix/postmaster.d
  register: postfix_assembled

- name: Add a role's fragment and apply it in one task (the file is written only if the result is valid)
  postmaster.mailserver.postfix_config:
    fragments:
      60-size.json:
        main:
          message_size_limit: 52428800

- name: Remove that fragment again
  postmaster.mailserver.postfix_config:
    fragments:
      60-size.json: null
"""

RETURN = r"""
main_cf:
  description: Path of main.cf.
  returned: always
  type: str
  sample: /etc/postfix/main.cf
master_cf:
  description: Path of master.cf.
  returned: always
  type: str
  sample: /etc/postfix/master.cf
fragments:
  description: The fragment files that were merged, in order.
  returned: always
  type: list
  elements: str
  sample: [00-base.json, 50-policyd_spf.json]
parameters:
  description: The merged main.cf parameters.
  returned: always
  type: dict
  sample: {"myhostname": "mail.example.org", "mynetworks": ["127.0.0.0/8", "[::1]/128"]}
fragment_texts:
  description:
    - The text of every fragment merged, by file name, as it is after this run (in check mode, as it would be).
    - The action plugin in front of this module keeps it for the rest of the play, in the fact C(postmaster_host),
      and answers a later call whose fragments are already there, unchanged, without a host round trip.
  returned: always
  type: dict
  sample: {10-postfix.json: "{\n  \"main\": {}\n}\n"}
table_states:
  description:
    - The lookup tables in O(config_dir) that main.cf refers to and that are current (an indexed table's compiled
      file is not older than its source and has its owner and mode), by path - the SHA-256 of the source text, its
      owner, group and octal mode, as C(sha256:uid:gid:mode), after this run.
    - The action plugin in front of this module keeps it for the rest of the play, in the fact C(postmaster_host),
      and answers a later call whose fragments and O(tables) are all already there without a host round trip.
  returned: always
  type: dict
  sample: {/etc/postfix/vmailbox: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08:0:0:644"}
services:
  description: The master.cf services from the fragments, as C(name/type).
  returned: always
  type: list
  elements: str
  sample: [smtp/inet, submission/inet, policyd-spf/unix]
tables:
  description: The tables of O(tables) that were (or in check mode would be) written or compiled.
  returned: always
  type: list
  elements: str
  sample: [/etc/postfix/vmailbox]
reloaded:
  description: Whether Postfix was reloaded (or restarted).
  returned: always
  type: bool
service:
  description: With O(ensure_running), what was (or in check mode would be) done to the unit.
  returned: when O(ensure_running) is set
  type: list
  elements: str
  sample: [enabled, started]
local_domains:
  description: With O(report_local_domains), C(mydestination) expanded, in lower case; null without a main.cf.
  returned: when O(report_local_domains) is set
  type: list
  elements: str
  sample: [mail.example.org, localhost.example.org, localhost]
restarted:
  description: Present and true when Postfix was restarted instead of reloaded, because an inet service was removed.
  returned: when an inet service was removed
  type: bool
backup_files:
  description: Copies of the previous files, by file name.
  returned: when a live file was replaced
  type: dict
  sample: {"main.cf": /etc/postfix/main.cf.postmaster-previous}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import (
    CALL_RECORD_OPTION,
    health_options,
    module_options,
    run_backend,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_config import (
    PostfixConfig,
    PostfixConfigError,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "fragment_dir": {"type": "path", "default": "/etc/postfix/postmaster.d"},
            "config_dir": {"type": "path", "default": "/etc/postfix"},
            "reload": {"type": "bool", "default": True},
            **health_options(port=25, timeout=30),
            **CALL_RECORD_OPTION,
            "fragments": {"type": "dict", "default": {}},
            "ensure_running": {"type": "bool", "default": False},
            "report_local_domains": {"type": "bool", "default": False},
            "tables": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "path": {"type": "path", "required": True},
                    "type": {
                        "type": "str",
                        "default": "hash",
                        "choices": ["hash", "btree", "lmdb", "cdb", "regexp", "pcre", "cidr", "texthash"],
                    },
                    "aliases": {"type": "bool", "default": False},
                    "content": {"type": "str", "required": True},
                    "mode": {"type": "str", "default": "0644"},
                    "owner": {"type": "str", "default": "root"},
                    "group": {"type": "str", "default": "root"},
                    "origin": {"type": "str", "default": ""},
                },
            },
        },
        supports_check_mode=True,
    )
    params = module.params
    # Table texts (thousands of lines for a big server) are not sent back in the echoed arguments.
    echoed = dict(params)
    echoed["tables"] = [
        {**table, "content": f"{len(table['content'])} characters (not echoed)"} for table in params["tables"]
    ]
    invocation = {"module_args": echoed}
    run_backend(
        module,
        PostfixConfig,
        PostfixConfigError,
        extra={"invocation": invocation},
        **module_options(module),
    )


if __name__ == "__main__":
    main()
