# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 25, paths: every path the collection writes, chowns, chmods or deletes stays where it owns.

Each row runs what the collection runs before its first change: a role's path check (the
``mail_paths`` filter of the ``__<role>_paths`` fact its first controller task sets, with the role's defaults and
the variables of the row; the postfix role's ``postfix_role_tables``; the certificate role's
``tls_certificate_args``), or a module's backend on a scratch tree that a row prepares the way a
local user could have (a symlink, a foreign owner, a writable directory, a hard link). The exact
error must name the variable or module argument, and no file may change.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.module_utils.testing import patch_module_args
from ansible_collections.postmaster.mailserver.plugins.filter.paths import mail_paths
from ansible_collections.postmaster.mailserver.plugins.filter.tls import tls_certificate_args
from ansible_collections.postmaster.mailserver.plugins.module_utils.common import mail_paths as mp
from ansible_collections.postmaster.mailserver.plugins.module_utils.dovecot.dovecot_config import (
    DovecotConfig,
    DovecotConfigError,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.vmail_account import (
    AccountError,
    VmailAccount,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postconf import (
    Postconf,
    PostconfError,
    run_postconf,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_config import (
    PostfixConfig,
    PostfixConfigError,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.policyd_spf import (
    PolicydSpfConfig,
    PolicydSpfError,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.tls.tls_certificate import (
    CertificateError,
    TlsCertificate,
)
from ansible_collections.postmaster.mailserver.plugins.modules import mail_password as mail_password_module
from ansible_collections.postmaster.mailserver.plugins.modules import postmap as postmap_module
from ansible_collections.postmaster.mailserver.tests.unit.plugins.test_bad_input_matrix import (
    BASE_FRAGMENT,
    SUPPORTED,
    _tree,
    postfix_role,
)

ROOT = Path(__file__).resolve().parents[3]
#: The file of each role that holds its path check task.
TASK_FILES = {
    "dovecot": "validate.yml",
    "mailboxes": "validate.yml",
    "saslauthd": "validate.yml",
    "amavis": "main.yml",
    "policyd_spf": "main.yml",
}
FOREIGN_UID = 4242


def _defaults(role: str) -> dict[str, Any]:
    """The role's defaults and internal values, with simple ``{{ name }}`` references resolved."""
    values: dict[str, Any] = {}
    for name in ("vars/main.yml", "defaults/main.yml"):
        values.update(yaml.safe_load((ROOT / "roles" / role / name).read_text()) or {})
    reference = re.compile(r"\{\{\s*(\w+)\s*\}\}")
    for _round in range(5):
        for key, value in values.items():
            if isinstance(value, str):
                values[key] = reference.sub(lambda m: str(values.get(m.group(1), m.group(0))), value)
    return values


def _task_variables(role: str) -> list[str]:
    tasks = yaml.safe_load((ROOT / "roles" / role / "tasks" / TASK_FILES[role]).read_text())
    # The role's path check is the __<role>_paths fact of one of its first controller tasks.
    fact = f"__{role}_paths"
    task = next(t for t in tasks if fact in (t.get("ansible.builtin.set_fact") or {}))
    template = task["ansible.builtin.set_fact"][fact]
    return re.findall(r"'(\w+)':", template)


def role_paths(role: str, **variables: Any) -> Callable[[Path], Any]:
    """What the role's path check (its ``__<role>_paths`` fact) runs, with the role's defaults and *variables*."""

    def run(_tmp: Path) -> Any:
        values = {**_defaults(role), **variables}
        return mail_paths({name: values[name] for name in _task_variables(role)})

    return run


def verify_report(value: str) -> Callable[[Path], Any]:
    return lambda _tmp: mail_paths({"verify_report_file": value})


def postfix(**variables: Any) -> Callable[[Path], Any]:
    thunk = postfix_role(**variables)
    return lambda _tmp: thunk()


def certificate(prefix: str = "certificate", **request: Any) -> Callable[[Path], Any]:
    base = {"cert_file": "", "key_file": "", "common_name": "mail.example.org", "subject_alt_names": []}
    base.update(dir="/etc/ssl/postmaster", days=3650)
    return lambda _tmp: tls_certificate_args({**base, **request}, prefix)


# -- the modules' backends on a prepared scratch tree ------------------------------------------------------------


def _postfix_tree(tmp: Path) -> Path:
    config = tmp / "postfix"
    (config / "postmaster.d").mkdir(parents=True, exist_ok=True)
    (config / "main.cf").write_text("# original\n")
    (config / "master.cf").write_text("smtp inet n - y - - smtpd\n")
    (config / "postmaster.d" / "00-base.json").write_text(json.dumps(BASE_FRAGMENT))
    return config


def postfix_config(prepare: Callable[[Path], dict[str, Any]]) -> Callable[[Path], Any]:
    """postfix_config's backend on a tree *prepare* spoiled; *prepare* returns the module's arguments."""

    def run(tmp: Path) -> Any:
        config = _postfix_tree(tmp)
        arguments = {"config_dir": str(config), "fragment_dir": str(config / "postmaster.d")}
        arguments.update(prepare(tmp))
        before = _tree(tmp)
        try:
            return PostfixConfig(
                run_command=lambda argv, **_kw: (0, SUPPORTED, "") if argv[-1] == "-m" else (0, "", ""),
                get_bin_path=lambda name: f"/usr/sbin/{name}",
                probe=lambda *_args: "220 ok",
                sleep=lambda _s: None,
                exists=lambda _path: True,
                fragments={"50-new.json": {"main": {"smtpd_banner": "$myhostname ESMTP"}}},
                **arguments,
            ).execute()
        finally:
            assert _tree(tmp) == before, "the module changed a file before failing"

    return run


def _symlinked_fragment_dir(tmp: Path) -> dict[str, Any]:
    (tmp / "elsewhere").mkdir()
    os.rename(tmp / "postfix" / "postmaster.d", tmp / "elsewhere" / "postmaster.d")
    os.symlink(tmp / "elsewhere" / "postmaster.d", tmp / "postfix" / "postmaster.d")
    return {}


def _symlinked_ancestor(tmp: Path) -> dict[str, Any]:
    os.symlink(tmp, tmp / "link")
    return {"config_dir": str(tmp / "link" / "postfix"), "fragment_dir": str(tmp / "link" / "postfix" / "postmaster.d")}


def _chmod(relative: str, mode: int) -> Callable[[Path], dict[str, Any]]:
    def prepare(tmp: Path) -> dict[str, Any]:
        os.chmod(tmp / relative, mode)
        return {}

    return prepare


def _chown(relative: str, uid: int = FOREIGN_UID, gid: int = -1) -> Callable[[Path], dict[str, Any]]:
    def prepare(tmp: Path) -> dict[str, Any]:
        os.chown(tmp / relative, uid, gid)
        return {}

    return prepare


def _foreign_fragment(tmp: Path) -> dict[str, Any]:
    (tmp / "postfix" / "postmaster.d" / "60-planted.json").write_text(json.dumps({"main": {}}))
    os.chown(tmp / "postfix" / "postmaster.d" / "60-planted.json", FOREIGN_UID, -1)
    return {}


def _hard_linked_table(tmp: Path) -> dict[str, Any]:
    (tmp / "shadow").write_text("root:*:1::::::\n")
    os.link(tmp / "shadow", tmp / "postfix" / "relay_passwords")
    table = {"path": str(tmp / "postfix" / "relay_passwords"), "content": "[relay]:587 u:p\n", "mode": "0600"}
    return {"tables": [table]}


def _symlinked_table(tmp: Path) -> dict[str, Any]:
    (tmp / "shadow").write_text("root:*:1::::::\n")
    os.symlink(tmp / "shadow", tmp / "postfix" / "smtp_auth")
    return {"tables": [{"path": str(tmp / "postfix" / "smtp_auth"), "content": "x y\n", "mode": "0600"}]}


def dovecot_config(prepare: Callable[[Path], Any]) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        config = tmp / "dovecot"
        (config / "conf.d").mkdir(parents=True)
        (config / "dovecot.conf").write_text("!include conf.d/*.conf\n")
        prepare(tmp)
        before = _tree(tmp)
        try:
            return DovecotConfig(
                config_dir=str(config),
                files={"conf.d/10-auth.conf": "auth_mechanisms = plain\n"},
                run_command=lambda argv, **_kw: (0, "", ""),
                get_bin_path=lambda name: f"/usr/bin/{name}",
                probe=lambda *_args: "* OK",
                sleep=lambda _s: None,
            ).execute()
        finally:
            assert _tree(tmp) == before

    return run


def _link_conf_d(tmp: Path) -> None:
    (tmp / "other").mkdir()
    (tmp / "other" / "10-auth.conf").write_text("# someone else's\n")
    os.symlink(tmp / "other" / "10-auth.conf", tmp / "dovecot" / "conf.d" / "10-auth.conf")


def policyd_spf(prepare: Callable[[Path], Any]) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        (tmp / "etc").mkdir()
        prepare(tmp)
        return PolicydSpfConfig(
            path=str(tmp / "etc" / "policyd-spf.conf"),
            settings={},
            exists=lambda _path: True,
            run_command=lambda argv, **_kw: (0, "", ""),
            get_bin_path=lambda name: f"/usr/bin/{name}",
        ).execute()

    return run


def _link_policyd(tmp: Path) -> None:
    os.symlink("/etc/shadow", tmp / "etc" / "policyd-spf.conf")


def vmail_home(prepare: Callable[[Path], str]) -> Callable[[Path], Any]:
    """The maildir module's account: its home is checked before groupadd/useradd, mkdir, chown or chmod."""

    def run(tmp: Path) -> Any:
        home = prepare(tmp)
        account = {"user": "vmail", "group": "vmail", "uid": 5000, "gid": 5000, "home": home, "home_mode": "0750"}
        before = {p: (p.stat().st_uid, p.stat().st_mode) for p in tmp.rglob("*")}
        try:
            return VmailAccount(_no_command, lambda name: name).ensure(account)
        finally:
            assert {p: (p.stat().st_uid, p.stat().st_mode) for p in tmp.rglob("*")} == before

    return run


def _no_command(argv: Any, **_kwargs: Any) -> Any:
    raise AssertionError(f"the account was changed before its home was checked: {argv}")


def _sticky_parent(tmp: Path) -> str:
    (tmp / "shared").mkdir()
    os.chmod(tmp / "shared", 0o1777)
    return str(tmp / "shared" / "vmail")


def _ssh_keys(tmp: Path) -> str:
    (tmp / "root" / ".ssh").mkdir(parents=True)
    os.chown(tmp / "root", FOREIGN_UID, -1)
    return str(tmp / "root" / ".ssh")


def self_signed(prepare: Callable[[Path], str]) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        directory = prepare(tmp)
        backend = TlsCertificate(run_command=lambda *_a, **_k: (0, "", ""), openssl="/usr/bin/openssl")
        return backend.self_signed("mail.example.org", ["DNS:mail.example.org"], directory, 30)

    return run


def _world_writable_cert_parent(tmp: Path) -> str:
    (tmp / "ssl").mkdir()
    os.chmod(tmp / "ssl", 0o777)
    return str(tmp / "ssl" / "postmaster")


def postconf_set(tmp: Path) -> Any:
    """The postconf module's backend setting one parameter in a world-writable configuration directory."""
    (tmp / "postfix").mkdir()
    (tmp / "postfix" / "main.cf").write_text("myhostname = mail.example.org\n")
    os.chmod(tmp / "postfix", 0o777)

    def run_command(argv: list[str], **_kwargs: Any) -> tuple[int, str, str]:
        assert "-e" not in argv, f"postconf wrote: {argv}"
        return 0, "myhostname = mail.example.org\n", ""

    return run_postconf(Postconf(run_command, str(tmp / "postfix"), "/usr/sbin/postconf"), {"smtpd_banner": "hi"})


def host(path: str, name: str = "path", kind: str = "dir") -> Callable[[Path], Any]:
    """The modules' host check as it runs on a host (walking from /, nothing trusted but root)."""
    return lambda _tmp: mp.check_host_path(path, name, kind=kind, trust=mp.HostTrust())


#: What the filters and the modules' backends raise (a module turns it into fail_json).
ERRORS = (
    AnsibleFilterError,
    mp.PathPolicyError,
    PostfixConfigError,
    DovecotConfigError,
    PolicydSpfError,
    AccountError,
    CertificateError,
    PostconfError,
)
PF = "postfix_role_tables: invalid postfix role variables:\n- "
MP = "mail_paths: "
TLS = "tls_certificate_args: "
WW = "a world-writable tree where any local user may have prepared the name"
OWNED = "a directory another user or daemon owns"

CASES = [
    # The incidents: a map or passwd-file over an authentication file, a directory at /tmp or /root/.ssh.
    pytest.param(
        postfix(postfix_relay_password_map="/etc/shadow"),
        PF + "postfix_relay_password_map: /etc/shadow is a system file or lies in one (/etc/shadow)",
        id="relay-map-shadow",
    ),
    pytest.param(
        postfix(postfix_relay_password_map="/etc/pam.d/common-auth"),
        PF + "postfix_relay_password_map: /etc/pam.d/common-auth is a system file or lies in one (/etc/pam.d)",
        id="relay-map-pam",
    ),
    pytest.param(
        postfix(postfix_relay_password_map="/etc/postfix/main.cf"),
        PF + "postfix_relay_password_map: main.cf is one of /etc/postfix's own files",
        id="relay-map-main-cf",
    ),
    pytest.param(
        postfix(postfix_relay_password_map="smtp_auth"),
        PF + "postfix_relay_password_map: 'smtp_auth' is not an absolute path",
        id="relay-map-relative",
    ),
    pytest.param(
        postfix(postfix_relay_password_map="/etc/postfix/../shadow"),
        PF + "postfix_relay_password_map: '/etc/postfix/../shadow' must not contain '.' or '..' components",
        id="relay-map-dotdot",
    ),
    pytest.param(
        postfix(postfix_config_dir="/etc", postfix_fragment_dir="/etc/postmaster.d"),
        PF + "postfix_config_dir: /etc is a system directory; the Postfix configuration directory must be "
        "/etc/postfix[-<instance>]",
        id="postfix-config-dir-etc",
    ),
    pytest.param(
        postfix(postfix_fragment_dir="/tmp/postmaster.d"),
        PF + f"postfix_fragment_dir: /tmp/postmaster.d lies in /tmp, {WW}",
        id="fragment-dir-tmp",
    ),
    pytest.param(
        postfix(postfix_fragment_dir="/etc/postfix/other.d"),
        PF + "postfix_fragment_dir: /etc/postfix/other.d is not /etc/postfix/postmaster.d",
        id="fragment-dir-elsewhere",
    ),
    pytest.param(
        postfix(postfix_tls_selfsigned_dir="/tmp"),
        PF + f"postfix_tls_selfsigned_dir: /tmp lies in /tmp, {WW}",
        id="postfix-selfsigned-tmp",
    ),
    pytest.param(
        postfix(postfix_tls_cert_file="/etc/ssl/mail.pem\nssl = no", postfix_tls_key_file="/etc/ssl/k.pem"),
        PF + "postfix_tls_cert_file: '/etc/ssl/mail.pem\\nssl = no' contains a newline or another control character",
        id="postfix-cert-newline",
    ),
    pytest.param(
        role_paths("dovecot", dovecot_users_file="/etc/shadow"),
        MP + "dovecot_users_file: /etc/shadow is a system file or lies in one (/etc/shadow)",
        id="dovecot-users-shadow",
    ),
    pytest.param(
        role_paths("dovecot", dovecot_users_file="/etc/dovecot/dovecot.conf"),
        MP + "dovecot_users_file: dovecot.conf is one of /etc/dovecot's own files",
        id="dovecot-users-dovecot-conf",
    ),
    pytest.param(
        role_paths("dovecot", dovecot_users_file="/etc/dovecot/private/users"),
        MP + "dovecot_users_file: /etc/dovecot/private/users is not directly in /etc/dovecot",
        id="dovecot-users-subdir",
    ),
    pytest.param(
        role_paths("dovecot", dovecot_tls_selfsigned_dir="/root/.ssh"),
        MP + f"dovecot_tls_selfsigned_dir: /root/.ssh lies in /root, {OWNED}",
        id="dovecot-selfsigned-root-ssh",
    ),
    pytest.param(
        role_paths("dovecot", dovecot_tls_selfsigned_dir="/etc/ssl/private"),
        MP + "dovecot_tls_selfsigned_dir: /etc/ssl/private lies in /etc/ssl/private, which Debian's packages own",
        id="dovecot-selfsigned-ssl-private",
    ),
    pytest.param(
        role_paths("dovecot", dovecot_tls_cert_file="/etc/ssl/my cert.pem", dovecot_tls_key_file="/etc/ssl/k.pem"),
        MP + "dovecot_tls_cert_file: '/etc/ssl/my cert.pem' may hold only letters, digits and . _ + @ = ~ - /",
        id="dovecot-cert-space",
    ),
    pytest.param(
        role_paths("dovecot", dovecot_tls_key_file="key.pem", dovecot_tls_cert_file="/etc/ssl/c.pem"),
        MP + "dovecot_tls_key_file: 'key.pem' is not an absolute path",
        id="dovecot-key-relative",
    ),
    pytest.param(
        role_paths("dovecot", dovecot_vmail_base="/var/mail"),
        MP + "dovecot_vmail_base: /var/mail is a system directory",
        id="dovecot-vmail-var-mail",
    ),
    pytest.param(
        role_paths("mailboxes", mailboxes_dovecot_users_file="/etc/pam.d/common-auth"),
        MP + "mailboxes_dovecot_users_file: /etc/pam.d/common-auth is a system file or lies in one (/etc/pam.d)",
        id="mailboxes-users-pam",
    ),
    pytest.param(
        role_paths("mailboxes", mailboxes_vmail_base="/home/bob"),
        MP + f"mailboxes_vmail_base: /home/bob lies in /home, {OWNED}",
        id="mailboxes-vmail-home",
    ),
    pytest.param(
        role_paths("mailboxes", mailboxes_vmail_base="/var/tmp/x"),
        MP + f"mailboxes_vmail_base: /var/tmp/x lies in /var/tmp, {WW}",
        id="mailboxes-vmail-var-tmp",
    ),
    pytest.param(
        role_paths("mailboxes", mailboxes_vmail_base="/etc"),
        MP + "mailboxes_vmail_base: /etc is a system directory",
        id="mailboxes-vmail-etc",
    ),
    pytest.param(
        role_paths("mailboxes", mailboxes_vmail_base="/root/.ssh"),
        MP + f"mailboxes_vmail_base: /root/.ssh lies in /root, {OWNED}",
        id="mailboxes-vmail-root-ssh",
    ),
    pytest.param(
        role_paths("mailboxes", mailboxes_vmail_base="/srv/mail/.ssh"),
        MP + "mailboxes_vmail_base: /srv/mail/.ssh has a .ssh component, a directory another user owns",
        id="mailboxes-vmail-ssh-component",
    ),
    pytest.param(
        role_paths("mailboxes", mailboxes_postfix_fragment_dir="/var/spool/postfix/private"),
        MP + f"mailboxes_postfix_fragment_dir: /var/spool/postfix/private lies in /var/spool/postfix/private, {OWNED}",
        id="mailboxes-fragment-postfix-private",
    ),
    pytest.param(
        role_paths("amavis", amavis_quarantine_dir="/tmp"),
        MP + f"amavis_quarantine_dir: /tmp lies in /tmp, {WW}",
        id="amavis-quarantine-tmp",
    ),
    pytest.param(
        role_paths("amavis", amavis_quarantine_dir="/dev/shm/q"),
        MP + f"amavis_quarantine_dir: /dev/shm/q lies in /dev/shm, {WW}",
        id="amavis-quarantine-dev-shm",
    ),
    pytest.param(
        role_paths("amavis", amavis_quarantine_dir="/var/lib/amavis/tmp"),
        MP + "amavis_quarantine_dir: /var/lib/amavis/tmp lies in /var/lib/amavis/tmp, which Debian's packages own",
        id="amavis-quarantine-amavis-tmp",
    ),
    pytest.param(
        role_paths("amavis", amavis_quarantine_dir="/srv/quarantine"),
        MP + "amavis_quarantine_dir: /srv/quarantine is outside the directories the collection owns for this; "
        "the amavis quarantine must be a directory below /var/lib/amavis",
        id="amavis-quarantine-srv",
    ),
    pytest.param(
        role_paths("amavis", amavis_postfix_config_dir="/root/.ssh", amavis_postfix_fragment_dir="/root/.ssh/p"),
        MP + f"amavis_postfix_config_dir: /root/.ssh lies in /root, {OWNED}",
        id="amavis-postfix-dir-root-ssh",
    ),
    pytest.param(
        role_paths("policyd_spf", policyd_spf_postfix_fragment_dir="/etc/postfix/postmaster.d\n"),
        MP + "policyd_spf_postfix_fragment_dir: '/etc/postfix/postmaster.d\\n' contains a newline",
        id="policyd-fragment-newline",
    ),
    pytest.param(
        role_paths("saslauthd", saslauthd_socket_dir="/var/spool/postfix/private/sasl"),
        MP + f"saslauthd_socket_dir: /var/spool/postfix/private/sasl lies in /var/spool/postfix/private, {OWNED}",
        id="saslauthd-socket-postfix-private",
    ),
    pytest.param(
        role_paths("saslauthd", saslauthd_socket_dir="/run/systemd/sasl"),
        MP + "saslauthd_socket_dir: /run/systemd/sasl lies in /run/systemd, which Debian's packages own",
        id="saslauthd-socket-run-systemd",
    ),
    pytest.param(
        role_paths("saslauthd", saslauthd_socket_dir="/var/spool/postfix/incoming/sasl"),
        MP + "saslauthd_socket_dir: /var/spool/postfix/incoming/sasl lies in /var/spool/postfix/incoming, which "
        "Debian's packages own; the saslauthd socket directory must be a directory below /var/spool/postfix, a "
        "directory below /run (not Postfix's queue and chroot directories, nor a daemon's own directory in /run)",
        id="saslauthd-socket-queue-dir",
    ),
    pytest.param(
        verify_report("/etc/shadow"),
        MP + "verify_report_file: /etc/shadow is a system file or lies in one (/etc/shadow)",
        id="verify-report-shadow",
    ),
    pytest.param(
        verify_report("/tmp/report.txt"),
        MP + f"verify_report_file: /tmp/report.txt lies in /tmp, {WW}",
        id="verify-report-tmp",
    ),
    pytest.param(
        verify_report("/root/.ssh/authorized_keys"),
        MP + "verify_report_file: /root/.ssh/authorized_keys has a .ssh component, a directory another user owns",
        id="verify-report-authorized-keys",
    ),
    pytest.param(
        certificate(dir="/tmp"),
        TLS + f"certificate_dir: /tmp lies in /tmp, {WW}",
        id="certificate-dir-tmp",
    ),
    pytest.param(
        certificate("dovecot_tls", dir="/root/.ssh"),
        TLS + f"certificate_dir (from the dovecot_tls_* variables): /root/.ssh lies in /root, {OWNED}",
        id="certificate-dir-root-ssh",
    ),
    pytest.param(
        certificate(dir="/root/.ssh"),
        TLS + f"certificate_dir: /root/.ssh lies in /root, {OWNED}",
        id="certificate-dir-root-ssh-plain",
    ),
    pytest.param(
        role_paths("dovecot", dovecot_tls_selfsigned_dir="/tmp"),
        MP + f"dovecot_tls_selfsigned_dir: /tmp lies in /tmp, {WW}",
        id="dovecot-selfsigned-tmp",
    ),
    pytest.param(
        role_paths("policyd_spf", policyd_spf_postfix_fragment_dir="/tmp/postmaster.d"),
        MP + f"policyd_spf_postfix_fragment_dir: /tmp/postmaster.d lies in /tmp, {WW}",
        id="policyd-fragment-tmp",
    ),
    pytest.param(
        certificate(dir="/usr/local/ssl"),
        TLS + "certificate_dir: /usr/local/ssl lies in /usr, a system directory",
        id="certificate-dir-usr",
    ),
    pytest.param(
        certificate("dovecot_tls", cert_file="/etc/ssl/c.pem\x1b", key_file="/etc/ssl/k.pem"),
        TLS + "dovecot_tls_cert_file: '/etc/ssl/c.pem\\x1b' contains a newline or another control character",
        id="certificate-cert-control",
    ),
    pytest.param(
        certificate("postfix_tls", cert_file="/etc/ssl/c.pem", key_file="/etc/ssl/$key"),
        TLS + "postfix_tls_key_file: '/etc/ssl/$key' may hold only letters, digits",
        id="certificate-key-dollar",
    ),
    # The host side: trees a local user could have prepared, seen by the modules before they write.
    pytest.param(
        postfix_config(_symlinked_fragment_dir),
        "fragment_dir: {tmp}/postfix/postmaster.d is a symbolic link",
        id="host-fragment-dir-symlink",
    ),
    pytest.param(
        postfix_config(_symlinked_ancestor),
        "config_dir: {tmp}/link is a symbolic link on the way to {tmp}/link/postfix",
        id="host-config-dir-symlinked-ancestor",
    ),
    pytest.param(
        postfix_config(_chmod("postfix/postmaster.d", 0o777)),
        "fragment_dir: {tmp}/postfix/postmaster.d is world-writable (mode 0777)",
        id="host-fragment-dir-world-writable",
    ),
    pytest.param(
        postfix_config(_chmod("postfix", 0o1777)),
        "config_dir: {tmp}/postfix is world-writable (sticky, like /tmp) (mode 1777)",
        id="host-config-dir-sticky",
    ),
    pytest.param(
        postfix_config(_chown("postfix/postmaster.d")),
        f"fragment_dir: {{tmp}}/postfix/postmaster.d is owned by uid {FOREIGN_UID}, not root",
        id="host-fragment-dir-foreign-owner",
    ),
    pytest.param(
        postfix_config(_chown("postfix")),
        f"config_dir: {{tmp}}/postfix is owned by uid {FOREIGN_UID}, not root",
        id="host-foreign-ancestor",
    ),
    pytest.param(
        postfix_config(_foreign_fragment),
        f"fragment_dir (60-planted.json): {{tmp}}/postfix/postmaster.d/60-planted.json is owned by uid {FOREIGN_UID}",
        id="host-fragment-foreign-owner",
    ),
    pytest.param(
        postfix_config(_chmod("postfix/postmaster.d/00-base.json", 0o666)),
        "fragment_dir (00-base.json): {tmp}/postfix/postmaster.d/00-base.json is writable by others (mode 0666)",
        id="host-fragment-writable",
    ),
    pytest.param(
        postfix_config(_hard_linked_table),
        "tables[0].path: {tmp}/postfix/relay_passwords has 2 hard links",
        id="host-table-hard-link",
    ),
    pytest.param(
        postfix_config(_symlinked_table),
        "tables[0].path: {tmp}/postfix/smtp_auth is a symbolic link: the write would land wherever it points",
        id="host-table-symlink",
    ),
    pytest.param(
        dovecot_config(_link_conf_d),
        "files['conf.d/10-auth.conf']: {tmp}/dovecot/conf.d/10-auth.conf is a symbolic link",
        id="host-dovecot-file-symlink",
    ),
    pytest.param(
        dovecot_config(lambda tmp: os.chmod(tmp / "dovecot", 0o775) or os.chown(tmp / "dovecot", -1, FOREIGN_UID)),
        f"config_dir: {{tmp}}/dovecot is writable by group {FOREIGN_UID} (mode 0775)",
        id="host-dovecot-group-writable",
    ),
    pytest.param(
        policyd_spf(_link_policyd),
        "path: {tmp}/etc/policyd-spf.conf is a symbolic link",
        id="host-policyd-spf-symlink",
    ),
    pytest.param(
        vmail_home(_sticky_parent),
        "account.home: {tmp}/shared is world-writable (sticky, like /tmp)",
        id="host-vmail-sticky-parent",
    ),
    pytest.param(
        vmail_home(_ssh_keys),
        f"account.home: {{tmp}}/root is owned by uid {FOREIGN_UID}, not root",
        id="host-vmail-root-ssh",
    ),
    pytest.param(
        self_signed(_world_writable_cert_parent),
        "dir: {tmp}/ssl is world-writable (mode 0777)",
        id="host-selfsigned-world-writable",
    ),
    pytest.param(
        postconf_set,
        "config_dir: {tmp}/postfix is world-writable (mode 0777)",
        id="host-postconf-world-writable",
    ),
    pytest.param(host("/tmp/x"), f"path: /tmp/x lies in /tmp, {WW}", id="host-tmp"),
    pytest.param(host("/tmp"), f"path: /tmp lies in /tmp, {WW}", id="host-tmp-itself"),
    pytest.param(
        host("/etc/shadow", kind="file"),
        "path: /etc/shadow is a system file or lies in one (/etc/shadow)",
        id="host-shadow",
    ),
    pytest.param(host("/root/.ssh"), f"path: /root/.ssh lies in /root, {OWNED}", id="host-root-ssh"),
    pytest.param(host("relative/dir"), "path: 'relative/dir' must be an absolute path", id="host-relative"),
]


def molecule_case(case: dict[str, Any]) -> Callable[[Path], Any]:
    """What the badinput scenario runs for a case of molecule/badinput/cases/paths.yml, before any host change."""
    role, variables = case["role"], case["vars"]
    if role == "postfix":
        return postfix(**variables)
    if role == "verify":
        return verify_report(variables["verify_report_file"])
    if role == "certificate":
        return certificate(**{name.removeprefix("certificate_"): value for name, value in variables.items()})
    return role_paths(role, **variables)


MOLECULE_CASES = yaml.safe_load((ROOT / "molecule" / "badinput" / "cases" / "paths.yml").read_text())


@pytest.mark.parametrize("case", MOLECULE_CASES, ids=[case["id"] for case in MOLECULE_CASES])
def test_the_molecule_cases_fail_with_their_message(tmp_path, case):
    with pytest.raises(AnsibleFilterError) as excinfo:
        molecule_case(case)(tmp_path)
    assert case["expect"] in str(excinfo.value)


def test_there_are_at_least_ten_molecule_cases():
    assert len({case["id"] for case in MOLECULE_CASES}) == len(MOLECULE_CASES) >= 10


@pytest.mark.parametrize(("thunk", "expected"), CASES)
def test_hostile_path_is_refused_naming_the_variable(tmp_path, thunk, expected):
    with pytest.raises(ERRORS) as excinfo:
        thunk(tmp_path)
    assert expected.replace("{tmp}", str(tmp_path)) in str(excinfo.value)


def test_there_are_at_least_thirty_distinct_rows():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) >= 30


# -- what stays possible ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(TASK_FILES))
def test_the_defaults_pass_every_role_path_check(role):
    values = _defaults(role)
    checked = role_paths(role)(Path("/nonexistent"))
    assert checked == {name: values[name] for name in _task_variables(role)}


def test_the_postfix_role_defaults_pass():
    assert postfix()(Path("/nonexistent"))["relay_passwords"] is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("postfix_config_dir", "/etc/postfix-out"),
        ("postfix_relay_password_map", "/etc/postfix/sasl_passwd"),
        ("mailboxes_vmail_base", "/srv/vmail"),
        ("mailboxes_vmail_base", "/var/vmail"),
        ("amavis_quarantine_dir", "/var/lib/amavis/virusmails"),
        ("amavis_quarantine_dir", ""),
        ("certificate_dir", "/etc/postmaster/tls"),
        ("dovecot_tls_selfsigned_dir", "/etc/ssl/mail"),
        ("saslauthd_socket_dir", "/run/saslauthd-postfix"),
        ("saslauthd_socket_dir", "/var/spool/postfix/saslauthd"),
        ("dkim_key_dir", "/etc/dkimkeys"),
        ("dkim_key_dir", "/var/lib/postmaster/dkim/example.org"),
        ("dovecot_tls_cert_file", "/etc/letsencrypt/live/mail.example.org/fullchain.pem"),
        ("verify_report_file", "/tmp/reports-of-mine/report.txt"),
        ("verify_report_file", ""),
        ("verify_report_file", "/home/me/My Checkout/build/demo/report.txt"),
    ],
)
def test_legitimate_paths_pass(variable, value):
    assert mail_paths({variable: value}) == {variable: value}


def test_a_relay_map_is_checked_against_its_own_config_dir():
    paths = {"postfix_config_dir": "/etc/postfix-out", "postfix_relay_password_map": "/etc/postfix/smtp_auth"}
    with pytest.raises(AnsibleFilterError, match=r"is not directly in /etc/postfix-out"):
        mail_paths(paths)


def test_the_host_check_accepts_roots_trees(tmp_path):
    (tmp_path / "etc" / "postfix").mkdir(parents=True)
    (tmp_path / "etc" / "postfix" / "main.cf").write_text("x\n")
    trust = mp.HostTrust(top=str(tmp_path))
    mp.check_host_path(str(tmp_path / "etc" / "postfix"), "config_dir", trust=trust)
    mp.check_host_path(str(tmp_path / "etc" / "postfix" / "main.cf"), "t", kind="file", trust=trust)
    mp.check_host_path(str(tmp_path / "etc" / "postfix" / "missing" / "deeper"), "t", trust=trust)
    mp.check_host_path("/etc/postfix-never-exists/postmaster.d", "fragment_dir", trust=mp.HostTrust())


def test_the_expected_owner_may_own_the_path_another_user_may_not(tmp_path):
    (tmp_path / "amavis" / "virusmails").mkdir(parents=True)
    os.chown(tmp_path / "amavis", 5000, 5000)
    trust = mp.HostTrust(top=str(tmp_path))
    mp.check_host_path(str(tmp_path / "amavis" / "virusmails"), "quarantine_dir", owners=(5000,), trust=trust)
    with pytest.raises(mp.PathPolicyError, match="owned by uid 5000, not root"):
        mp.check_host_path(str(tmp_path / "amavis" / "virusmails"), "quarantine_dir", owners=(5001,), trust=trust)


# -- whole modules (main()), as Ansible runs them ---------------------------------------------------------------


def _shadow(tmp: Path) -> Path:
    shadow = tmp / "shadow"
    shadow.write_text("root:*:1::::::\n")
    return shadow


def _passwd_file_symlink(tmp: Path) -> dict[str, Any]:
    (tmp / "dovecot").mkdir()
    os.symlink(_shadow(tmp), tmp / "dovecot" / "users")
    return {"path": str(tmp / "dovecot" / "users"), "users": [{"name": "a@example.org", "password": "Secret-1"}]}


def _passwd_file_sticky(tmp: Path) -> dict[str, Any]:
    (tmp / "shared").mkdir()
    os.chmod(tmp / "shared", 0o1777)
    return {"path": str(tmp / "shared" / "users"), "users": [{"name": "a@example.org", "password": "Secret-1"}]}


def _postmap_hard_link(tmp: Path) -> dict[str, Any]:
    (tmp / "postfix").mkdir()
    os.link(_shadow(tmp), tmp / "postfix" / "smtp_auth")
    return {"path": str(tmp / "postfix" / "smtp_auth"), "content": "[relay]:587 u:p\n", "config_dir": str(tmp)}


def _postmap_table_symlink(tmp: Path) -> dict[str, Any]:
    (tmp / "postfix").mkdir()
    os.symlink(_shadow(tmp), tmp / "postfix" / "access")
    return {"tables": [{"path": str(tmp / "postfix" / "access"), "content": "x OK\n"}], "config_dir": str(tmp)}


MODULE_CASES = [
    pytest.param(
        mail_password_module.main,
        _passwd_file_symlink,
        "path: {tmp}/dovecot/users is a symbolic link: the write would land wherever it points",
        id="module-mail-password-symlink",
    ),
    pytest.param(
        mail_password_module.main,
        _passwd_file_sticky,
        "path: {tmp}/shared is world-writable (sticky, like /tmp)",
        id="module-mail-password-sticky-parent",
    ),
    pytest.param(
        postmap_module.main,
        _postmap_hard_link,
        "path: {tmp}/postfix/smtp_auth has 2 hard links",
        id="module-postmap-hard-link",
    ),
    pytest.param(
        postmap_module.main,
        _postmap_table_symlink,
        "path: {tmp}/postfix/access is a symbolic link",
        id="module-postmap-tables-symlink",
    ),
]


@pytest.mark.parametrize(("main", "arguments", "expected"), MODULE_CASES)
def test_hostile_path_fails_the_module_before_it_writes(tmp_path, capsys, main, arguments, expected):
    args = arguments(tmp_path)
    shadow = (tmp_path / "shadow").read_bytes() if (tmp_path / "shadow").exists() else None
    with patch_module_args(args), pytest.raises(SystemExit) as excinfo:
        main()
    result = json.loads(capsys.readouterr().out)
    assert excinfo.value.code == 1
    assert expected.replace("{tmp}", str(tmp_path)) in result["msg"]
    if shadow is not None:
        assert (tmp_path / "shadow").read_bytes() == shadow
