#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: mail_ports
short_description: Report the TCP ports that the live Postfix, Dovecot and sshd configuration listens on
version_added: 0.1.0
description:
  - Reads the ports from the daemons' own tools, not from role variables, so that a firewall built from them
    follows what is enabled. It changes nothing on the host.
  - Postfix, from C(postconf -M) and C(inet_interfaces) - every C(inet) service of master.cf (C(smtp) 25,
    C(submission) 587, C(smtps) 465, or any other), with its own listen address when it has one.
  - Dovecot, from C(doveconf protocols listen service) - the C(inet_listener)s of the services whose protocol is
    enabled in C(protocols) (IMAP 143/993, POP3 110/995, ...), with C(port = 0) meaning off. So removing
    C(pop3) from Dovecot's protocols removes 110 and 995 from the result.
  - sshd, from C(sshd -T) - the ports it listens on for other hosts.
  - A daemon that is not installed is skipped, and RV(found) says so.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; it runs the same in check mode.
  diff_mode:
    support: N/A
    details:
      - The module changes nothing.
options:
  postfix_config_dir:
    description:
      - Postfix's configuration directory (C(postconf -c)).
    type: path
    default: /etc/postfix
  dovecot_config_dir:
    description:
      - The directory of Dovecot's C(dovecot.conf) (C(doveconf -c)).
    type: path
    default: /etc/dovecot
  binaries:
    description:
      - Commands to look up in the same round trip (the firewall role asks for C(nft) or C(ufw), and installs the
        package only when the command is missing). RV(binaries) has their paths.
    type: list
    elements: str
    default: []
  variable_prefix:
    description:
      - Prefix of the caller's variable names in error messages. A configuration directory that does not exist
        while the daemon's tool is installed is an error naming V(<variable_prefix>postfix_config_dir) (or
        V(dovecot_config_dir)), not a daemon without ports. The firewall role passes V(firewall_).
    type: str
    default: ""
notes:
  - Each port has a RV(ports[].scope). V(public) - a mail service for everyone (Postfix C(smtpd) or
    C(postscreen), a Dovecot C(*-login) service). V(sasl) - Dovecot's auth service on TCP, for a Postfix on
    another host. V(internal) - any other inet listener (an LMTP or doveadm listener, a policy service).
    V(local) - on loopback only.
"""

EXAMPLES = r"""
- name: Read the ports of the enabled mail services
  postmaster.mailserver.mail_ports:
  register: mail_ports

- name: Show the ports that should be open to everyone
  ansible.builtin.debug:
    msg: "{{ mail_ports.ports | selectattr('scope', 'equalto', 'public') | map(attribute='port') | list }}"
"""

RETURN = r"""
ports:
  description: The TCP ports the mail services listen on, sorted by port.
  returned: always
  type: list
  elements: dict
  contains:
    daemon:
      description: V(postfix) or V(dovecot).
      type: str
    service:
      description: The master.cf service name, or the Dovecot service and listener (C(imap-login/imaps)).
      type: str
    port:
      description: The port number.
      type: int
    protocol:
      description: Always V(tcp).
      type: str
    scope:
      description: V(public), V(sasl), V(internal) or V(local) (see the notes).
      type: str
  sample:
    - {daemon: postfix, service: smtp, port: 25, protocol: tcp, scope: public}
    - {daemon: dovecot, service: imap-login/imaps, port: 993, protocol: tcp, scope: public}
ssh_ports:
  description: The ports sshd listens on for other hosts; empty when sshd is not installed.
  returned: always
  type: list
  elements: int
  sample: [22]
found:
  description: Which of postfix, dovecot and sshd were found on the host.
  returned: always
  type: dict
  sample: {postfix: true, dovecot: true, sshd: true}
binaries:
  description: The path of each command in O(binaries), or V(null) when it is not found.
  returned: always
  type: dict
  sample: {nft: /usr/sbin/nft}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.mail_ports import MailPorts, MailPortsError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "postfix_config_dir": {"type": "path", "default": "/etc/postfix"},
            "dovecot_config_dir": {"type": "path", "default": "/etc/dovecot"},
            "binaries": {"type": "list", "elements": "str", "default": []},
            "variable_prefix": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    try:
        result = MailPorts(
            run_command=module.run_command,
            get_bin_path=module.get_bin_path,
            postfix_config_dir=module.params["postfix_config_dir"],
            dovecot_config_dir=module.params["dovecot_config_dir"],
            binaries=module.params["binaries"],
            variable_prefix=module.params["variable_prefix"],
        ).execute()
    except MailPortsError as exc:
        module.fail_json(msg=str(exc))
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
