#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: tls_certificate
short_description: Provide a TLS certificate with the openssl command, self-signed or user-supplied, in one task
version_added: 0.1.0
description:
  - Without O(cert_file) and O(key_file), makes sure that O(dir) exists (mode V(0755), owned by root), that it
    holds an RSA 2048 private key C(<common_name>.key) (mode V(0600)) and a self-signed certificate
    C(<common_name>.crt) (mode V(0644)) whose subject is C(CN=<common_name>) and whose subjectAltNames are
    C(DNS:<common_name>) and O(subject_alt_names), valid for O(days) days.
  - The key is generated only when it is missing or C(openssl) cannot read it. The certificate is generated
    only when it is missing or unreadable, does not belong to the key, has another subject or other
    subjectAltNames than asked (compared without regard to order, case of DNS names or spelling of IP
    addresses), or expires within O(renew_before_days) days. A certificate made earlier by another tool
    (such as older versions of the C(certificate) role) is kept when it matches. A change of O(days) alone
    does not renew the certificate.
  - Existing files and the directory get their mode and root ownership back when they differ.
  - New files are made in a private temporary directory inside O(dir) and renamed into place, so a reader
    never sees a partial key or certificate. The key is written by C(openssl genpkey) itself; no secret
    is ever passed on a command line or returned.
  - With O(cert_file) and O(key_file), checks that both exist on the host and changes nothing. When
    C(openssl) can read them, it warns if the certificate expires within O(renew_before_days) days or if
    the key does not belong to it.
  - Uses the C(openssl) command, which Debian's postfix and dovecot-core packages depend on; the host
    needs no Python cryptography library.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
attributes:
  check_mode:
    support: full
    details:
      - Only reads (C(openssl x509) and C(openssl pkey)); reports what would be generated or fixed.
  diff_mode:
    support: full
    details:
      - The diff shows the key's state (present, missing, unreadable, generated) and the certificate's
        subject, subjectAltNames and expiry, before and after. It never shows key material.
options:
  cert_file:
    description:
      - Path on the host of a user-supplied PEM certificate (chain). Set together with O(key_file).
      - An empty string counts as not set.
    type: path
    default: ""
  key_file:
    description:
      - Path on the host of the PEM private key of O(cert_file).
    type: path
    default: ""
  common_name:
    description:
      - Common name and first DNS subjectAltName of the self-signed certificate, a host name such as
        V(mail.example.com). It also names the files in O(dir).
      - Required without O(cert_file) and O(key_file).
    type: str
  subject_alt_names:
    description:
      - Further subjectAltNames of the self-signed certificate. Entries prefixed with V(DNS:) or V(IP:) keep
        their prefix, an IP address gets V(IP:) and any other entry V(DNS:). DNS names may start with a
        V(*.) wildcard label. Duplicates are dropped.
    type: list
    elements: str
    default: []
  dir:
    description:
      - Absolute directory of the self-signed key and certificate.
    type: path
    default: /etc/ssl/postmaster
  days:
    description:
      - Validity of a newly made self-signed certificate, in days (1 to 36500).
    type: int
    default: 825
  renew_before_days:
    description:
      - A self-signed certificate that expires within this many days is made again; a user-supplied one
        gets a warning.
    type: int
    default: 30
  variable_prefix:
    description:
      - Prefix of the variable names in error messages, so that a calling role names its own variables
        (V(postfix_tls) gives C(postfix_tls_cert_file) and C(postfix_tls_key_file)).
      - When empty, the messages name the options O(cert_file) and O(key_file).
    type: str
    default: ""
notes:
  - The C(postmaster.mailserver.certificate) role calls this module once per play and request, after checking
    its variables on the controller.
seealso:
  - name: The certificate role
    description: Shared by the postfix and dovecot roles; validates the variables, then calls this module.
    link: https://github.com/postmaster/mailserver/tree/main/roles/certificate
"""

EXAMPLES = r"""
- name: Self-signed certificate for the mail services
  postmaster.mailserver.tls_certificate:
    common_name: mail.example.com
    subject_alt_names: [imap.example.com, smtp.example.com, "IP:192.0.2.25"]
  register: tls   # tls.cert, tls.key, tls.names, tls.not_after

- name: Check the files of a certificate made elsewhere (nothing is written)
  postmaster.mailserver.tls_certificate:
    cert_file: /etc/letsencrypt/live/mail.example.com/fullchain.pem
    key_file: /etc/letsencrypt/live/mail.example.com/privkey.pem
    variable_prefix: postfix_tls
"""

RETURN = r"""
cert:
  description: Path of the certificate.
  returned: success
  type: str
  sample: /etc/ssl/postmaster/mail.example.com.crt
key:
  description: Path of the private key.
  returned: success
  type: str
  sample: /etc/ssl/postmaster/mail.example.com.key
selfsigned:
  description: Whether the certificate is the self-signed one this module manages.
  returned: success
  type: bool
  sample: true
common_name:
  description:
    - Common name of the certificate (in check mode, of the one that would be made). Null when a
      user-supplied certificate cannot be read.
  returned: success
  type: str
  sample: mail.example.com
names:
  description:
    - The certificate's subjectAltNames, as C(DNS:<name>) (lower case) and C(IP:<address>) (in Python's
      spelling). Empty when a user-supplied certificate cannot be read.
  returned: success
  type: list
  elements: str
  sample: ["DNS:mail.example.com", "DNS:imap.example.com", "IP:192.0.2.25"]
not_after:
  description:
    - Expiry of the certificate in UTC, ISO 8601 (in check mode, about when a new one would expire).
      Null when a user-supplied certificate cannot be read.
  returned: success
  type: str
  sample: "2029-03-06T05:25:01Z"
actions:
  description: What was (or, in check mode, would be) done, with the reason; empty when nothing changed.
  returned: success
  type: list
  elements: str
  sample: ["generate certificate /etc/ssl/postmaster/mail.example.com.crt (expires 2026-12-20T10:00:00Z, within 30 days)"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.call_record import Footprint
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import (
    CALL_RECORD_OPTION,
    forget_call,
    record_call,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.tls.tls_certificate import (
    CertificateError,
    TlsCertificate,
    certificate_renewal,
    check_pair,
    subject_alt_names,
    validate_days,
    validate_dir,
    validate_hostname,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "cert_file": {"type": "path", "default": ""},
            "key_file": {"type": "path", "default": ""},
            "common_name": {"type": "str"},
            "subject_alt_names": {"type": "list", "elements": "str", "default": []},
            "dir": {"type": "path", "default": "/etc/ssl/postmaster"},
            "days": {"type": "int", "default": 825},
            "renew_before_days": {"type": "int", "default": 30},
            "variable_prefix": {"type": "str", "default": ""},
            **CALL_RECORD_OPTION,
        },
        supports_check_mode=True,
    )
    p = module.params
    backend = TlsCertificate(
        run_command=module.run_command,
        openssl=module.get_bin_path("openssl"),
        check_mode=module.check_mode,
        renew_before_days=p["renew_before_days"],
    )
    try:
        if p["renew_before_days"] < 0:
            raise CertificateError(f"renew_before_days: expected 0 or more days, got {p['renew_before_days']}")
        if check_pair(p["cert_file"], p["key_file"], p["variable_prefix"]):
            result = backend.user_supplied(p["cert_file"], p["key_file"], p["variable_prefix"])
        else:
            if not p["common_name"]:
                raise CertificateError("common_name is required when cert_file and key_file are not given")
            common_name = validate_hostname(p["common_name"], "common_name")
            result = backend.self_signed(
                common_name,
                subject_alt_names(common_name, p["subject_alt_names"], "subject_alt_names"),
                validate_dir(p["dir"], "dir"),
                validate_days(p["days"], "days"),
            )
    except (CertificateError, OSError) as exc:
        forget_call(module)
        module.fail_json(msg=str(exc), changed=bool(backend.actions), actions=backend.actions)
    for warning in backend.warnings:
        module.warn(warning)
    if backend.warnings:
        forget_call(module)
    else:
        # Until the renewal time, the same call on the same files changes nothing.
        renew = certificate_renewal(result.get("not_after"), p["renew_before_days"])
        footprint = Footprint([result["cert"], result["key"]])
        record_call(module, footprint, result, valid_until=renew, unchanged={"actions": []})
    if module._diff:
        result["diff"] = backend.diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
