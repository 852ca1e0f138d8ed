#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: mail_probe
short_description: Check a live mail server end to end over SMTP, submission, IMAP and POP3, as its clients see it
version_added: 0.1.0
description:
  - Connects to O(host) like a mail client or another mail server does, and reports one result per check, each with
    C(ok) and a C(detail) a person can read. Only Python's standard library is used, so the module runs on the
    controller or on any host it is delegated to (C(delegate_to)), for example a host outside the server's network.
  - For each service in O(services) - the greeting (banner); STARTTLS (STLS) offered and negotiated, or the implicit TLS
    handshake, with the protocol and cipher; the certificate's names, issuer and expiry; that no plaintext
    authentication is offered before TLS (on port 587 AUTH must appear only after STARTTLS) and that it is offered
    after it on the submission and mailbox services; and, with O(user) and O(password), that the login is accepted
    (SMTP AUTH, IMAP LOGIN, POP3 USER/PASS; never on port 25, which is for other mail servers).
  - With O(relay_check), that the server is no open relay - an unauthenticated session on the SMTP port must get a
    4xx or 5xx reply to C(RCPT TO) an outside address, never 250. The session is reset before C(DATA), so nothing is
    relayed even when the relay is open.
  - With O(send), a message with a unique C(Message-ID) is submitted with AUTH (O(send_via)), then looked for in the
    recipient's INBOX over IMAP (O(read_via)) until O(delivery_timeout); when found it is deleted again
    (O(delete_sent)).
  - With O(send_eicar), that a message with the EICAR anti-virus test file attached is refused or never arrives.
  - With O(closed_ports), that nothing accepts connections on those ports from where the module runs.
  - The certificate is verified (its chain against O(ca_file), or the system's trust store without it, and
    O(tls_name) against its names); a certificate that fails fails that service's TLS check, and nothing is sent to
    it. With O(tls_verify=false) any certificate is accepted, each certificate result says it was not verified, and
    no password is sent unless O(insecure_login=true) (RV(insecure_login) then says so).
  - Passwords are never returned, and errors that could carry them are not copied into the result.
  - The module changes nothing on any managed host; C(changed) is always false.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module only reads - it connects, negotiates TLS, logs in and checks relaying (which never
        sends a message) as usual, but does not send the O(send) message (nor the O(send_eicar) one), so the C(send),
        C(delivery) and C(virus_blocked) checks are reported in RV(skipped_checks).
  diff_mode:
    support: none
options:
  host:
    description:
      - The mail server's host name or address, as seen from the host that runs the module.
    type: str
    required: true
  tls_name:
    description:
      - The name the server's certificate must carry, also sent as SNI. Default O(host). Give it when O(host) is an
        address or an internal name.
    type: str
  services:
    description:
      - The services to check. V(smtp) is port 25 with STARTTLS, V(submission) 587 with STARTTLS, V(smtps) 465 with
        implicit TLS, V(imap) 143 and V(pop3) 110 with STARTTLS (STLS), V(imaps) 993 and V(pop3s) 995 with implicit TLS.
    type: list
    elements: str
    choices: [smtp, submission, smtps, imap, imaps, pop3, pop3s]
    default: [smtp, submission, imaps]
  ports:
    description:
      - "Ports that differ from the standard ones, by service name, for example C({submission: 2587})."
    type: dict
    default: {}
  user:
    description:
      - The login name for SMTP AUTH, IMAP and POP3 (a virtual user's address, or a system user's name).
    type: str
  password:
    description:
      - The password of O(user). Never returned.
    type: str
  send:
    description:
      - Submit a message with AUTH and look for it over IMAP. Needs O(user) and O(password). Not done in check mode.
    type: bool
    default: false
  sender:
    description:
      - The envelope and C(From) address of the message. Default O(user).
    type: str
  recipient:
    description:
      - Where the message goes. Default O(sender). Its mailbox is read with O(read_user).
    type: str
  read_user:
    description:
      - The IMAP login of the recipient's mailbox. Default O(user).
    type: str
  read_password:
    description:
      - The password of O(read_user). Default O(password). Never returned.
    type: str
  send_via:
    description:
      - The service the message is submitted to.
    type: str
    choices: [submission, smtps]
    default: submission
  read_via:
    description:
      - The service the recipient's INBOX is read with.
    type: str
    choices: [imaps, imap]
    default: imaps
  delivery_timeout:
    description:
      - Seconds to wait for the message to arrive in the INBOX.
    type: float
    default: 60.0
  delete_sent:
    description:
      - Delete the message from the INBOX once it is found.
    type: bool
    default: true
  send_eicar:
    description:
      - After the O(send) message was delivered, submit one with the EICAR anti-virus test file attached. It must be
        refused, or must not reach the INBOX within O(eicar_wait) seconds (the C(virus_blocked) check). Use it when a
        content filter (the amavis role) is in the mail path. Needs O(send).
    type: bool
    default: false
  eicar_wait:
    description:
      - Seconds to wait for the EICAR message before it counts as stopped.
    type: float
    default: 15.0
  relay_check:
    description:
      - Check that an unauthenticated client cannot relay through the SMTP port (O(ports) C(smtp), default 25).
    type: bool
    default: true
  relay_sender:
    description:
      - The C(MAIL FROM) address of the relay check.
    type: str
    default: mail-probe@example.org
  relay_recipient:
    description:
      - The C(RCPT TO) address of the relay check, in a domain the server must not relay to.
    type: str
    default: mail-probe@example.com
  closed_ports:
    description:
      - Ports that must not accept connections from the host that runs the module (refused or no answer within 3 s).
    type: list
    elements: int
    default: []
  ca_file:
    description:
      - A PEM file of the certificate authorities to verify the server's certificate with (and O(tls_name) against its
        names), for a private CA. Without it the system's trust store is used.
      - A certificate that fails verification fails that service's TLS check, and no password is sent to it.
    type: path
  tls_verify:
    description:
      - Verify the server's certificate. With V(false) any certificate is accepted (to look at a self-signed server),
        the certificate results say it was not verified, and a O(password) is refused unless O(insecure_login) is set.
    type: bool
    default: true
  insecure_login:
    description:
      - With O(tls_verify=false), send O(password) (and O(read_password)) over TLS whose certificate was not
        verified anyway. Anyone in the path could read it. The login results and RV(insecure_login) say so.
    type: bool
    default: false
  cert_min_days:
    description:
      - A certificate that expires in fewer days fails its check.
    type: int
    default: 14
  helo:
    description:
      - The name sent in C(EHLO).
    type: str
    default: mail-probe.invalid
  timeout:
    description:
      - Seconds to wait for a connection or an answer.
    type: float
    default: 10.0
  dkim_records:
    description:
      - DKIM records that DNS must publish, as the C(dkim) entries of the C(postmaster.mailserver.mail_dns) filter's
        result (C(name), C(value), C(state)). Each is looked up (TXT) and checked under the check name
        C(dkim <name>) - the published C(p=) must be the key in use. Another key, or no record for an V(active)
        selector, fails the check; no record for a V(published) selector is fine. When DNS does not answer, the check
        is not run (RV(skipped_checks)), which is not a failure.
    type: list
    elements: dict
    default: []
  dns_servers:
    description:
      - Addresses of the DNS servers the O(dkim_records) are asked of; default the resolvers of the host that runs the
        module (C(/etc/resolv.conf)).
    type: list
    elements: str
    default: []
  dns_timeout:
    description:
      - Seconds to wait for each DNS server's answer.
    type: float
    default: 3.0
  fail_on_error:
    description:
      - Fail when a check fails, with a message that names each failed check. With V(false), report them in
        RV(failed_checks) and RV(ok) only (the C(postmaster.mailserver.verify) role does so and writes its own report).
    type: bool
    default: true
notes:
  - Open the ports from where the module runs. From the controller, use C(delegate_to) V(localhost); to check the
    server as the internet sees it, delegate to a host outside its network.
  - The relay check sends C(MAIL FROM) and C(RCPT TO) only. A server that does DNS checks on the recipient's domain
    may refuse it for that reason; the reply is in the check's detail.
seealso:
  - module: postmaster.mailserver.mail_queue
  - module: postmaster.mailserver.mail_ports
"""

EXAMPLES = r"""
- name: Check the server from the controller, with a test account
  postmaster.mailserver.mail_probe:
    host: mail.example.com
    services: [smtp, submission, smtps, imaps, pop3s]
    user: probe@example.com
    password: "{{ vault_probe_password }}"
    send: true
    closed_ports: [24, 10024, 10025, 12340]
  delegate_to: localhost
  no_log: false
  register: probe

- name: Check from a host outside the network, with your own CA, and report instead of failing
  postmaster.mailserver.mail_probe:
    host: 192.0.2.25
    tls_name: mail.example.com
    ca_file: /etc/ssl/certs/ca-certificates.crt
    fail_on_error: false
  delegate_to: outside.example.net
  register: probe

- name: Show what failed
  ansible.builtin.debug:
    msg: "{{ probe.failed_checks | map('extract', probe.checks) | map(attribute='detail') | list }}"
"""

RETURN = r"""
ok:
  description: Whether every check passed.
  returned: always
  type: bool
checks:
  description:
    - One entry per check, by name - C(<service>_banner), C(<service>_tls), C(<service>_certificate),
      C(<service>_auth), C(<service>_login), C(relay_refused), C(send), C(delivery), C(virus_blocked) and
      C(port_<n>_closed).
    - Each has C(ok) and C(detail); some have more (below).
  returned: always
  type: dict
  contains:
    ok:
      description: Whether the check passed.
      type: bool
    detail:
      description: What was found, or what is wrong.
      type: str
    port:
      description: The port (banner and closed-port checks).
      type: int
    banner:
      description: The server's greeting (banner checks).
      type: str
    protocol:
      description: The negotiated TLS protocol (TLS checks).
      type: str
    cipher:
      description: The negotiated cipher (TLS checks).
      type: str
    bits:
      description: The cipher's secret bits (TLS checks).
      type: int
    subject:
      description: The certificate's subject common name (certificate checks).
      type: str
    issuer:
      description: The issuer's common name (certificate checks).
      type: str
    dns_names:
      description: The certificate's DNS names (certificate checks).
      type: list
      elements: str
    ip_addresses:
      description: The certificate's IP addresses (certificate checks).
      type: list
      elements: str
    not_before:
      description: Start of validity, UTC (certificate checks).
      type: str
    not_after:
      description: End of validity, UTC (certificate checks).
      type: str
    days_left:
      description: Days until the certificate expires (certificate checks).
      type: int
    name_matches:
      description: Whether O(tls_name) is one of the certificate's names (certificate checks).
      type: bool
    verified:
      description: Whether the certificate was verified (O(tls_verify)) (certificate checks).
      type: bool
    before_tls:
      description: Authentication offered before TLS (auth checks).
      type: raw
    after_tls:
      description: Authentication offered after TLS (auth checks).
      type: list
      elements: str
    code:
      description: The reply code to C(RCPT TO) (relay check).
      type: int
    reply:
      description: The server's reply (relay and send checks).
      type: str
    message_id:
      description: The Message-ID of the probe message (send and delivery checks).
      type: str
    seconds:
      description: Seconds from submission until the message was found (delivery check).
      type: float
  sample:
    submission_auth: {ok: true, detail: AUTH PLAIN LOGIN after STARTTLS only, before_tls: [], after_tls: [PLAIN, LOGIN]}
    relay_refused: {ok: true, detail: "RCPT TO:<mail-probe@example.com> refused: 554 5.7.1 ...: Relay access denied", code: 554}
failed_checks:
  description: The names of the checks that failed, in the order they ran.
  returned: always
  type: list
  elements: str
  sample: [relay_refused, imaps_banner]
skipped_checks:
  description: Checks that were asked for but not run, with the reason (C(send) and C(delivery) in check mode).
  returned: always
  type: dict
  sample: {send: "check mode: no message is sent", delivery: "check mode: no message is sent"}
host:
  description: O(host).
  returned: always
  type: str
tls_name:
  description: The name the certificates were checked against.
  returned: always
  type: str
tls_verified:
  description: Whether the certificates were verified (O(tls_verify)).
  returned: always
  type: bool
tls_trust:
  description: How the certificates were trusted, for a report.
  returned: always
  type: str
  sample: verified with /etc/ssl/certs/ca-certificates.crt
insecure_login:
  description: Whether a password was allowed over TLS whose certificate was not verified (O(insecure_login)).
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_probe import (
    SERVICES,
    MailProbe,
    MailProbeError,
    failure_message,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "host": {"type": "str", "required": True},
            "tls_name": {"type": "str"},
            "services": {
                "type": "list",
                "elements": "str",
                "choices": list(SERVICES),
                "default": ["smtp", "submission", "imaps"],
            },
            "ports": {"type": "dict", "default": {}},
            "user": {"type": "str"},
            "password": {"type": "str", "no_log": True},
            "send": {"type": "bool", "default": False},
            "sender": {"type": "str"},
            "recipient": {"type": "str"},
            "read_user": {"type": "str"},
            "read_password": {"type": "str", "no_log": True},
            "send_via": {"type": "str", "choices": ["submission", "smtps"], "default": "submission"},
            "read_via": {"type": "str", "choices": ["imaps", "imap"], "default": "imaps"},
            "delivery_timeout": {"type": "float", "default": 60.0},
            "delete_sent": {"type": "bool", "default": True},
            "send_eicar": {"type": "bool", "default": False},
            "eicar_wait": {"type": "float", "default": 15.0},
            "relay_check": {"type": "bool", "default": True},
            "relay_sender": {"type": "str", "default": "mail-probe@example.org"},
            "relay_recipient": {"type": "str", "default": "mail-probe@example.com"},
            "closed_ports": {"type": "list", "elements": "int", "default": []},
            "ca_file": {"type": "path"},
            "tls_verify": {"type": "bool", "default": True},
            "insecure_login": {"type": "bool", "default": False},
            "cert_min_days": {"type": "int", "default": 14},
            "helo": {"type": "str", "default": "mail-probe.invalid"},
            "timeout": {"type": "float", "default": 10.0},
            "dkim_records": {"type": "list", "elements": "dict", "default": []},
            "dns_servers": {"type": "list", "elements": "str", "default": []},
            "dns_timeout": {"type": "float", "default": 3.0},
            "fail_on_error": {"type": "bool", "default": True},
        },
        required_together=[("user", "password")],
        supports_check_mode=True,
    )
    params = {key: value for key, value in module.params.items() if key != "fail_on_error"}
    try:
        ports = {key: int(value) for key, value in params["ports"].items()}
    except (TypeError, ValueError):
        module.fail_json(msg=f"ports: every value must be a port number, got {params['ports']!r}")
    params["ports"] = ports
    try:
        result = MailProbe(params, check_mode=module.check_mode).run()
    except MailProbeError as exc:
        module.fail_json(msg=str(exc))
    if module.params["fail_on_error"] and result["failed_checks"]:
        module.fail_json(msg=failure_message(result), changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
