# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter.tls import FilterModule, tls_certificate_args

FILTER_DIR = Path(__file__).resolve().parents[4] / "plugins" / "filter"
DEFAULTS = Path(__file__).resolve().parents[4] / "roles" / "certificate" / "defaults" / "main.yml"

REQUEST = {
    "cert_file": "",
    "key_file": "",
    "common_name": "mail.example.test",
    "subject_alt_names": [],
    "dir": "/etc/ssl/postmaster",
    "days": 825,
}


def test_filter_is_registered_and_documented():
    assert sorted(FilterModule().filters()) == ["tls_certificate_args"]
    doc = yaml.safe_load((FILTER_DIR / "tls_certificate_args.yml").read_text(encoding="utf-8"))
    assert doc["DOCUMENTATION"]["name"] == "tls_certificate_args"


def test_the_role_defaults_pass():
    defaults = yaml.safe_load(DEFAULTS.read_text(encoding="utf-8"))
    request = {
        "cert_file": defaults["certificate_cert_file"],
        "key_file": defaults["certificate_key_file"],
        "common_name": "mail.example.test",  # the FQDN fact
        "subject_alt_names": defaults["certificate_subject_alt_names"],
        "dir": defaults["certificate_dir"],
        "days": defaults["certificate_days"],
    }
    assert tls_certificate_args(request, defaults["certificate_variable_prefix"]) == {
        "variable_prefix": "certificate",
        "common_name": "mail.example.test",
        "subject_alt_names": [],
        "dir": "/etc/ssl/postmaster",
        "days": 825,
    }


def test_errors_name_the_filter_and_the_variable():
    with pytest.raises(AnsibleFilterError) as err:
        tls_certificate_args({**REQUEST, "cert_file": "/etc/ssl/mail.pem"}, "postfix_tls")
    assert str(err.value) == (
        "tls_certificate_args: postfix_tls_cert_file and postfix_tls_key_file must be set together "
        "(got cert '/etc/ssl/mail.pem', key '')."
    )
    with pytest.raises(AnsibleFilterError, match=r"^tls_certificate_args: certificate_days: expected a number"):
        tls_certificate_args({**REQUEST, "days": -5})
