#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: dkim_config
short_description: OpenDKIM's keys, opendkim.conf and tables, checked, applied, health-checked, rolled back
version_added: 0.1.0
description:
  - Writes C(opendkim.conf), its C(KeyTable), C(SigningTable) (a C(refile:) table) and C(TrustedHosts) from
    O(settings), rendered by the collection, never from free text.
  - Creates the private key of each domain and active or published selector that has none, on the host, with
    C(openssl genpkey) (RSA, C(key_size) bits, or Ed25519 for a selector with C(algorithm=ed25519)), as
    C(<key_dir>/<domain>/<selector>.private), mode 0600, owned by opendkim, in a 0700 directory. An existing key is
    never regenerated. The key of a V(retired) selector is deleted.
  - OpenDKIM 2.11 signs every key of one process with one algorithm, so an active Ed25519 selector is signed by a
    second, sign-only OpenDKIM process - C(opendkim-ed25519.conf) next to O(conf_path), its tables in
    O(table_dir)C(/ed25519), the unit C(/etc/systemd/system/postmaster-opendkim-ed25519.service), the milter on
    C(ed25519_milter_port). Without an active Ed25519 selector these files are removed and the unit stopped.
  - Only the public halves (the C(p=) values) are returned; a private key never leaves the host.
  - A changed file is first checked with C(opendkim -n) on candidates in a private directory (OpenDKIM parses the
    file and opens every table). Then the files are replaced atomically and OpenDKIM restarted (a changed
    C(opendkim.conf)) or reloaded (tables only). The milter must answer a milter option negotiation on
    127.0.0.1:C(milter_port); otherwise the previous files come back, the keys created by this run are removed and
    OpenDKIM is restarted.
  - C(opendkim-testkey) is not run, because it asks DNS for the published record; the key is checked with
    C(openssl pkey) instead.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
attributes:
  check_mode:
    support: full
    details:
      - In check mode a changed candidate is still checked with C(opendkim -n) (when installed); no key is created
        or deleted, and a key that would be created is returned with RV(public_keys[].public) null.
  diff_mode:
    support: full
options:
  settings:
    description:
      - The dkim role's settings without the C(dkim_) prefix, validated as the role validates them.
      - C(domains) (list of domain names), C(selectors) (list of C(name), C(state) V(active), V(published) or
        V(retired), C(algorithm) V(rsa) or V(ed25519); exactly one RSA selector active, at most one Ed25519),
        C(key_size) (2048 to 8192), C(key_dir) (C(/etc/dkimkeys) or
        C(/var/lib/postmaster/dkim), or below), C(milter_port), C(internal_hosts) (addresses and networks whose
        mail is signed; loopback is always added), C(authserv_id), C(canonicalization), C(mode) (V(sv) or V(s)),
        C(oversign_headers), C(ed25519_milter_port).
    type: dict
    required: true
  conf_path:
    description:
      - OpenDKIM's configuration file (the one Debian's unit starts C(opendkim) with).
    type: path
    default: /etc/opendkim.conf
  table_dir:
    description:
      - The directory of KeyTable, SigningTable and TrustedHosts.
    type: path
    default: /etc/opendkim
  health_check:
    description:
      - After a change, require the milter to answer an option negotiation.
    type: bool
    default: true
  health_host:
    description:
      - Address of the milter health check.
    type: str
    default: 127.0.0.1
  health_port:
    description:
      - Port of the milter health check; 0 means C(milter_port) of O(settings).
    type: int
    default: 0
  health_timeout:
    description:
      - Seconds to keep retrying the health check.
    type: int
    default: 30
requirements:
  - opendkim and openssl on the host; systemd.
seealso:
  - module: postmaster.mailserver.postfix_config
"""

EXAMPLES = r"""
- name: Sign mail of example.org with selector s2026, publishing s2027 ahead of the switch
  postmaster.mailserver.dkim_config:
    settings:
      domains: [example.org]
      selectors:
        - {name: s2026, state: active}
        - {name: s2027, state: published}
      internal_hosts: [192.0.2.0/24]
      authserv_id: mail.example.org
  register: dkim
"""

RETURN = r"""
conf_path:
  description: The configuration file.
  returned: always
  type: str
  sample: /etc/opendkim.conf
public_keys:
  description: The public key of each domain and active or published selector, for the DNS records (mail_dns).
  returned: always
  type: list
  elements: dict
  contains:
    domain:
      description: The signing domain.
      type: str
    selector:
      description: The selector.
      type: str
    state:
      description: V(active) or V(published).
      type: str
    key_type:
      description: V(rsa) or V(ed25519).
      type: str
    public:
      description:
        - The C(p=) value - base64 of the DER public key (RSA) or of the bare 32-byte key (Ed25519, RFC 8463); null
          in check mode for a key not created yet.
      type: str
    bits:
      description: The key size.
      type: int
    path:
      description: The private key's path on the host (its content is never returned).
      type: str
  sample: [{"domain": "example.org", "selector": "s2026", "state": "active", "key_type": "rsa",
            "public": "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA...", "bits": 2048,
            "path": "/etc/dkimkeys/example.org/s2026.private"}]
generated:
  description: The keys created (or that would be), as C(domain/selector).
  returned: always
  type: list
  elements: str
deleted:
  description: The keys of retired selectors deleted (or that would be), as C(domain/selector).
  returned: always
  type: list
  elements: str
restarted:
  description: Whether OpenDKIM was (re)started.
  returned: always
  type: bool
reloaded:
  description: Whether OpenDKIM was reloaded (tables changed, opendkim.conf not).
  returned: always
  type: bool
milter_answer:
  description: The milter's option negotiation, from the health check.
  returned: when something changed and was checked
  type: str
ed25519_milter_answer:
  description: The Ed25519 signer's option negotiation, from the health check.
  returned: when its files changed and it was checked
  type: str
ed25519_restarted:
  description: Whether the Ed25519 signer was (re)started.
  returned: when it was
  type: bool
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
from ansible_collections.postmaster.mailserver.plugins.module_utils.dkim.dkim_config import (
    DkimConfig,
    DkimConfigError,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "settings": {"type": "dict", "required": True},
            "conf_path": {"type": "path", "default": "/etc/opendkim.conf"},
            "table_dir": {"type": "path", "default": "/etc/opendkim"},
            **health_options(port=0, timeout=30),
            **CALL_RECORD_OPTION,
        },
        supports_check_mode=True,
    )
    run_backend(
        module,
        DkimConfig,
        DkimConfigError,
        **module_options(module),
    )


if __name__ == "__main__":
    main()
