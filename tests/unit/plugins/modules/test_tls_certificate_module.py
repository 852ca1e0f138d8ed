# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.tls.tls_certificate import TlsCertificate
from ansible_collections.postmaster.mailserver.plugins.modules import tls_certificate as module

CERT = """subject=CN=mail.example.test
notAfter=Mar  6 05:25:01 2099 GMT
X509v3 Subject Alternative Name: \n    {names}
-----BEGIN PUBLIC KEY-----
PUB
-----END PUBLIC KEY-----
"""


@pytest.fixture
def openssl(monkeypatch):
    """A fake openssl behind AnsibleModule.run_command: keys and certificates are small text files."""
    calls = []

    def run_command(self, argv, environ_update=None, **kwargs):
        calls.append(argv[1:])
        if argv[1] == "genpkey":
            Path(argv[argv.index("-out") + 1]).write_text("KEY\n")
        elif argv[1] == "pkey":
            return 0, "-----BEGIN PUBLIC KEY-----\nPUB\n-----END PUBLIC KEY-----\n", ""
        elif argv[1] == "req":
            config = Path(argv[argv.index("-config") + 1]).read_text()
            san = config.split("subjectAltName = ")[1].split("\n")[0]
            Path(argv[argv.index("-out") + 1]).write_text(CERT.format(names=san.replace(",", ", ")))
        elif argv[1] == "x509":
            return 0, Path(argv[argv.index("-in") + 1]).read_text(), ""
        return 0, "", ""

    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(
        AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: "/usr/bin/openssl"
    )
    chowns = []
    monkeypatch.setattr(
        module,
        "TlsCertificate",
        functools.partial(
            TlsCertificate, uid=os.getuid(), gid=os.getgid(), chown=lambda path, uid, gid: chowns.append(path)
        ),
    )
    return calls


def test_self_signed_then_idempotent_with_diff_and_check_mode(tmp_path, openssl, run_module):
    args = {"common_name": "mail.example.test", "subject_alt_names": ["imap.example.test"], "dir": str(tmp_path / "d")}
    rc, result = run_module(module.main, {**args, "_ansible_check_mode": True, "_ansible_diff": True})
    assert (rc, result["changed"], openssl) == (0, True, [])
    assert not (tmp_path / "d").exists()
    assert "would be generated" in result["diff"]["after"]

    rc, result = run_module(module.main, {**args, "_ansible_diff": True})
    assert (rc, result["changed"], result["selfsigned"]) == (0, True, True)
    assert result["cert"] == str(tmp_path / "d" / "mail.example.test.crt")
    assert result["key"] == str(tmp_path / "d" / "mail.example.test.key")
    assert result["names"] == ["DNS:mail.example.test", "DNS:imap.example.test"]
    assert result["not_after"] == "2099-03-06T05:25:01Z"
    assert "KEY" not in str(result)
    assert [c[0] for c in openssl] == ["genpkey", "req", "x509"]

    openssl.clear()
    rc, result = run_module(module.main, args)
    assert (rc, result["changed"], result["actions"]) == (0, False, [])
    assert [c[0] for c in openssl] == ["pkey", "x509"]
    rc, result = run_module(module.main, {**args, "_ansible_check_mode": True})
    assert (rc, result["changed"]) == (0, False)


def test_user_files_are_only_checked(tmp_path, openssl, run_module):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text(CERT.format(names="DNS:mail.example.test"))
    key.write_text("KEY\n")
    rc, result = run_module(
        module.main, {"cert_file": str(cert), "key_file": str(key), "variable_prefix": "postfix_tls"}
    )
    assert (rc, result["changed"], result["selfsigned"], result["cert"], result["key"]) == (
        0,
        False,
        False,
        str(cert),
        str(key),
    )
    assert "warnings" not in result
    assert [c[0] for c in openssl] == ["x509", "pkey"]


def test_missing_user_files_fail_naming_the_variables(tmp_path, openssl, run_module):
    args = {"cert_file": "/nonexistent/cert.pem", "key_file": str(tmp_path), "variable_prefix": "dovecot_tls"}
    rc, result = run_module(module.main, args)
    assert rc == 1
    assert result["msg"] == "dovecot_tls_cert_file: file /nonexistent/cert.pem does not exist on this host"
    assert result["changed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"cert_file": "/c.pem", "variable_prefix": "postfix_tls"}, "postfix_tls_cert_file and postfix_tls_key_file"),
        ({"key_file": "/k.pem"}, "cert_file and key_file must be set together"),
        ({}, "common_name is required"),
        ({"common_name": "bad name"}, "common_name: 'bad name' is not a valid host name"),
        ({"common_name": "m.test", "subject_alt_names": ["IP:x"]}, "subject_alt_names[0]: 'IP:x' is not a valid IP"),
        ({"common_name": "m.test", "dir": "/a/../b"}, "dir: '/a/../b' must not contain '..'"),
        ({"common_name": "m.test", "days": 0}, "days: expected a number of days from 1 to 36500, got 0"),
        ({"common_name": "m.test", "renew_before_days": -1}, "renew_before_days: expected 0 or more days"),
    ],
)
def test_invalid_arguments_fail_before_anything_runs(openssl, run_module, args, message):
    rc, result = run_module(module.main, args)
    assert rc == 1
    assert message in result["msg"], result["msg"]
    assert openssl == []


def test_a_missing_openssl_is_reported(tmp_path, openssl, run_module, monkeypatch):
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: None)
    rc, result = run_module(module.main, {"common_name": "m.test", "dir": str(tmp_path)})
    assert rc == 1
    assert "install the openssl package" in result["msg"]
