#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: spf_check
short_description: Check a domain's published SPF record in live DNS
version_added: 0.1.0
description:
  - Looks up the SPF record of O(domain) with dnspython and resolves every C(include) and C(redirect), however deeply
    nested.
  - Reports the total number of DNS-querying terms (C(include), C(a), C(mx), C(ptr), C(exists) and C(redirect),
    nested ones included), which RFC 7208 limits to 10, and the void lookups (names that do not exist or have no
    records), limited to 2. Each counted term is named with the includes that lead to it.
  - With O(ip), also evaluates the record for that address as a receiving server does (RFC 7208 C(check_host), first
    match wins), and reports the result (V(pass), V(fail), V(softfail), V(neutral), V(none), V(permerror) or
    V(temperror)) and the mechanism that matched.
  - Fails when the record breaks a rule of RFC 7208 (more than 10 lookups, more than 2 void lookups, a syntax error,
    an include without a record, a loop, two SPF records), unless O(fail_on_error=false).
  - Never changes anything; it only sends DNS queries.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module never changes anything, so it runs the same in check mode.
  diff_mode:
    support: none
options:
  domain:
    description:
      - The domain whose record is checked (the Mail From domain of the mail it sends).
    type: str
    required: true
  ip:
    description:
      - An IPv4 or IPv6 address to evaluate the record for.
    type: str
  sender:
    description:
      - The envelope sender used to expand macros (C(%{s}), C(%{l}), C(%{o})). Default C(postmaster@)O(domain).
    type: str
  helo:
    description:
      - The HELO name used to expand the C(%{h}) macro.
    type: str
    default: ""
  nameservers:
    description:
      - Addresses of the DNS servers to ask. Default the resolvers of the host that runs the module
        (C(/etc/resolv.conf)).
    type: list
    elements: str
  port:
    description:
      - The port of O(nameservers).
    type: int
    default: 53
  timeout:
    description:
      - Seconds to wait for each DNS answer.
    type: float
    default: 5.0
  fail_on_error:
    description:
      - Fail when the record breaks a rule of RFC 7208 or cannot be looked up. With V(false), report it in
        RV(errors) and RV(valid) only.
    type: bool
    default: true
requirements:
  - dnspython (the C(dns) Python package) on the host that runs the module. On the controller (with
    C(delegate_to) V(localhost)) it comes with this collection's C(requirements.txt); on a Debian host it is the
    C(python3-dnspython) package.
seealso:
  - module: postmaster.mailserver.policyd_spf_config
  - plugin: postmaster.mailserver.spf_record
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Check example.org's record from the controller, and that the mail server may send for it
  postmaster.mailserver.spf_check:
    domain: example.org
    ip: 192.0.2.25
  delegate_to: localhost
  register: spf

- name: The mail server must pass
  ansible.builtin.assert:
    that: spf.ip_passes
    fail_msg: "{{ spf.ip_result }} for 192.0.2.25: {{ spf.reason }}"

- name: Ask a particular DNS server, and report errors without failing
  postmaster.mailserver.spf_check:
    domain: example.org
    nameservers: [192.0.2.53]
    fail_on_error: false
"""

RETURN = r"""
record:
  description: The SPF record of O(domain), or null when it has none.
  returned: always
  type: str
  sample: v=spf1 mx include:_spf.provider.example ~all
lookups:
  description: The number of DNS-querying terms in the whole record, nested includes and redirects included.
  returned: always
  type: int
  sample: 4
lookup_terms:
  description: The terms that count, each with the includes that lead to it.
  returned: always
  type: list
  elements: str
  sample: [mx, "include:_spf.provider.example", "include:_spf.provider.example > a"]
void_lookups:
  description: The number of terms whose DNS query found no such name or no records.
  returned: always
  type: int
  sample: 0
void_terms:
  description: The terms with a void lookup.
  returned: always
  type: list
  elements: str
includes:
  description: The included and redirect records, as a tree of C(domain), C(record), C(via) and C(includes).
  returned: always
  type: list
  elements: dict
errors:
  description: What breaks the rules of RFC 7208; receivers answer PermError (or TempError for DNS errors).
  returned: always
  type: list
  elements: str
valid:
  description: Whether the domain has a record and it breaks no rule.
  returned: always
  type: bool
ip_result:
  description: The result for O(ip), one of pass, fail, softfail, neutral, none, permerror and temperror.
  returned: when O(ip) is given
  type: str
  sample: pass
ip_passes:
  description: Whether O(ip) passes.
  returned: when O(ip) is given
  type: bool
matched:
  description: The mechanism that decided the result, and the domain whose record holds it.
  returned: when O(ip) is given
  type: dict
  sample: {"mechanism": "ip4:192.0.2.0/24", "domain": "_spf.provider.example"}
reason:
  description: Why the result is what it is.
  returned: when O(ip) is given
  type: str
queries:
  description: The DNS queries that were sent, as C(name type).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.spf_check import (
    HAS_DNSPYTHON,
    SpfCheck,
    SpfCheckError,
    dnspython_lookup,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "domain": {"type": "str", "required": True},
            "ip": {"type": "str"},
            "sender": {"type": "str"},
            "helo": {"type": "str", "default": ""},
            "nameservers": {"type": "list", "elements": "str"},
            "port": {"type": "int", "default": 53},
            "timeout": {"type": "float", "default": 5.0},
            "fail_on_error": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"))
    params = module.params
    try:
        lookup = dnspython_lookup(params["nameservers"], params["port"], params["timeout"])
        found = SpfCheck(lookup).check(params["domain"], params["ip"], params["sender"], params["helo"])
    except SpfCheckError as exc:
        module.fail_json(msg=str(exc))
    result = {key: value for key, value in found.items() if key != "ip_result"}
    if "ip_result" in found:
        evaluated = found["ip_result"]
        result["ip_result"] = evaluated["result"]
        result["ip_passes"] = evaluated["passes"]
        result["matched"] = {"mechanism": evaluated["mechanism"], "domain": evaluated["mechanism_domain"]}
        result["reason"] = evaluated["reason"]
    if params["fail_on_error"] and not found["valid"]:
        problem = "; ".join(found["errors"]) or f"{found['domain']} publishes no SPF record"
        module.fail_json(msg=problem, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
