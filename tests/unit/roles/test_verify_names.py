# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The verify role's idea of the server's name, templated from its own defaults and vars as Ansible does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible_collections.postmaster.mailserver.plugins.filter.mail_dns import FilterModule

ROLE = Path(__file__).resolve().parents[3] / "roles" / "verify"


def role_vars(**given: Any) -> dict[str, Any]:
    """The role's names and DNS records for *given* inventory (or earlier roles') variables."""
    loader = DataLoader()
    variables: dict[str, Any] = {}
    for name in ("defaults", "vars"):
        for key, value in loader.load_from_file(str(ROLE / name / "main.yml")).items():
            variables[key] = trust_as_template(value) if isinstance(value, str) else value
    variables.update(given)
    templar = Templar(loader=loader, variables=variables)
    names = {key: templar.template(variables[key]) for key in ("__verify_tls_name", "__verify_dns_mx_host")}
    domains = templar.template(variables["__verify_dns_domains"])
    mail_dns = FilterModule().filters()["mail_dns"]
    # What tasks/main.yml hands to the mail_dns filter.
    names["dns"] = mail_dns(domains, names["__verify_dns_mx_host"], 3600, {}, "verify_dns_domains")
    return names


def test_postfix_myhostname_names_the_server_before_a_short_inventory_name():
    # The inventory host 'acc-mx' is not a fully qualified name; postfix_myhostname names the server.
    names = role_vars(inventory_hostname="acc-mx", postfix_myhostname="mail.example.org")
    assert names["__verify_tls_name"] == "mail.example.org"
    assert names["__verify_dns_mx_host"] == "mail.example.org"
    assert [(domain["domain"], domain["mx"]) for domain in names["dns"]] == [("example.org", ["mail.example.org"])]


def test_verify_tls_name_still_wins_and_the_inventory_name_is_the_last_resort():
    names = role_vars(
        inventory_hostname="acc-mx", postfix_myhostname="mail.example.org", verify_tls_name="mx.example.net"
    )
    assert names["__verify_tls_name"] == "mx.example.net"
    names = role_vars(inventory_hostname="mail.example.com")
    assert names["__verify_tls_name"] == "mail.example.com"
    assert names["__verify_dns_mx_host"] == "mail.example.com"
    names = role_vars(inventory_hostname="mail.example.com", postfix_myhostname="")
    assert names["__verify_tls_name"] == "mail.example.com"


def test_a_short_inventory_name_without_postfix_myhostname_is_still_refused():
    with pytest.raises(AnsibleFilterError, match="mx_host: 'acc-mx' is not a fully qualified host name"):
        role_vars(inventory_hostname="acc-mx")
