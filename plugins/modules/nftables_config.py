#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nftables_config
short_description: Own an inbound nftables table, checked, loaded atomically, health-checked and rolled back
version_added: 0.1.0
description:
  - Manages one nftables table (O(table)) and the file that loads it at boot (O(path), which Debian's
    C(nftables.service) reads) as one unit. The table is the host's complete inbound policy - its input chain
    drops by default and accepts established and related traffic, loopback, ICMP and ICMPv6, SSH and O(rules).
  - Other tables, such as Docker's NAT rules or fail2ban's, are left alone. The file never says
    C(flush ruleset); it recreates the table in one transaction, which nft applies atomically.
  - A rule set in which no rule accepts TCP O(ssh_port) is refused before anything changes.
  - The candidate file is checked with C(nft -c -f) first, and nothing is written when nft refuses it. Then it
    replaces O(path) atomically and is loaded with C(systemctl reload-or-restart) (a reload when the unit runs, a
    start when it does not; never a stop, whose C(flush ruleset) would remove every other table).
  - After loading, the live table must have its input chain with policy drop and a rule that accepts
    O(ssh_port). Otherwise the previous file and the previous table are restored, and the module fails.
  - The table is also reloaded when the file is right but the live table is missing or broken (after a
    C(nft flush ruleset), say), and the service is enabled so that the table is loaded at boot.
  - The module refuses to run while ufw (C(ENABLED=yes)) or firewalld is switched on, since two managers would
    each drop what the other allows.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
attributes:
  check_mode:
    support: full
    details:
      - In check mode a changed candidate is still checked with C(nft -c -f), but nothing is written or loaded.
  diff_mode:
    support: full
options:
  rules:
    description:
      - What the input chain accepts besides the fixed rules, in order.
      - Ports are checked to be 1-65535, sources are parsed as addresses or networks and written back from the
        parsed value, and names are limited to letters, digits, spaces and C(_.,:/+@()-), so no value can
        add a line or a statement to the ruleset.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The rule's comment in the ruleset.
        type: str
        required: true
      port:
        description: A port, or a range V(first-last).
        type: raw
        required: true
      protocol:
        description: The transport protocol.
        type: str
        choices: [tcp, udp]
        default: tcp
      sources:
        description: The addresses or networks the rule accepts; empty for anywhere.
        type: list
        elements: str
        default: []
  services:
    description:
      - Compose the rules on the host instead of taking O(rules) - from the ports that the live Postfix, Dovecot
        and sshd configuration listens on (read as M(postmaster.mailserver.mail_ports) reads them) and the
        firewall role's rule variables, as the P(postmaster.mailserver.firewall_rules#filter) filter composes
        them. The firewall role uses it so that reading the ports costs no round trip of its own.
      - V(public) ports are open to everyone, V(sasl) ones to O(services.sasl_peers) only; a set that would lock
        the admin out is refused before any change. RV(rules) returns what was composed, RV(ports) what was read.
      - Mutually exclusive with O(rules).
    type: dict
    suboptions:
      postfix_config_dir:
        description: Postfix's configuration directory.
        type: path
        default: /etc/postfix
      dovecot_config_dir:
        description: The directory of Dovecot's C(dovecot.conf).
        type: path
        default: /etc/dovecot
      admin_networks:
        description: The networks SSH is accepted from (C(firewall_admin_networks)); empty for anywhere.
        type: list
        elements: str
        default: []
      sasl_peers:
        description: The hosts that may reach Dovecot's SASL auth listener on TCP (C(firewall_sasl_peers)).
        type: list
        elements: str
        default: []
      extra_rules:
        description: The role's C(firewall_extra_rules), as that variable documents them.
        type: list
        elements: dict
        default: []
      session:
        description: C(SSH_CONNECTION) of the play's own connection, which the rules must keep accepting.
        type: str
        default: ""
  ssh_port:
    description:
      - The SSH port. Some rule in O(rules) must accept it over TCP, or the module fails before any change.
    type: int
    default: 22
  state:
    description:
      - V(absent) removes the table from the live ruleset, leaves a O(path) that loads nothing, and disables the
        service (it is not stopped - stopping it flushes every table).
    type: str
    choices: [present, absent]
    default: present
  path:
    description:
      - The file that holds the table and is loaded at boot.
    type: path
    default: /etc/nftables.conf
  table:
    description:
      - The name of the C(inet) table this module owns.
    type: str
    default: postmaster
  service:
    description:
      - The systemd unit that loads O(path).
    type: str
    default: nftables
  health_check:
    description:
      - After loading, require the input chain (policy drop) and a rule accepting O(ssh_port) in the live table.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: SSH from the admin network, SMTP from everywhere
  postmaster.mailserver.nftables_config:
    rules:
      - {name: ssh, port: 22, sources: [192.0.2.0/24, "2001:db8::/32"]}
      - {name: smtp, port: 25}
      - {name: dns, port: 53, protocol: udp}
"""

RETURN = r"""
path:
  description: The file that holds the table.
  returned: always
  type: str
  sample: /etc/nftables.conf
table:
  description: The name of the inet table.
  returned: always
  type: str
  sample: postmaster
rules:
  description: The rules as validated and normalized (empty with O(state=absent)).
  returned: always
  type: list
  elements: dict
ports:
  description: With O(services), the ports read from the live configuration (as RV(postmaster.mailserver.mail_ports#module:ports)).
  returned: when O(services) is given
  type: list
  elements: dict
reloaded:
  description: Whether the table was loaded by this run.
  returned: always
  type: bool
enabled:
  description: Whether this run enabled the service.
  returned: always
  type: bool
rolled_back:
  description: Present and true when the health check failed and the previous file and table were restored.
  returned: failure
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import (
    CALL_RECORD_OPTION,
    module_options,
    run_backend,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.nftables_config import (
    NftablesConfigError,
    module_backend,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "rules": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "port": {"type": "raw", "required": True},
                    "protocol": {"type": "str", "choices": ["tcp", "udp"], "default": "tcp"},
                    "sources": {"type": "list", "elements": "str", "default": []},
                },
            },
            "services": {
                "type": "dict",
                "options": {
                    "postfix_config_dir": {"type": "path", "default": "/etc/postfix"},
                    "dovecot_config_dir": {"type": "path", "default": "/etc/dovecot"},
                    "admin_networks": {"type": "list", "elements": "str", "default": []},
                    "sasl_peers": {"type": "list", "elements": "str", "default": []},
                    "extra_rules": {"type": "list", "elements": "dict", "default": []},
                    "session": {"type": "str", "default": ""},
                },
            },
            "ssh_port": {"type": "int", "default": 22},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "path": {"type": "path", "default": "/etc/nftables.conf"},
            "table": {"type": "str", "default": "postmaster"},
            "service": {"type": "str", "default": "nftables"},
            "health_check": {"type": "bool", "default": True},
            **CALL_RECORD_OPTION,
        },
        supports_check_mode=True,
        mutually_exclusive=[("rules", "services")],
    )
    run_backend(module, module_backend, NftablesConfigError, **module_options(module))


if __name__ == "__main__":
    main()
