# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bad-input matrix of issue 14: hostile or careless inputs across every role and module.

Each row is one input and the exact error it must raise, naming the variable (and the entry
within it).  Every row runs through what the collection runs before the first change on a
host: the roles' controller-side filters, and the modules' own checks before they write.
The molecule scenario ``badinput`` applies a representative dozen to a converged host.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter.mail import virtual_mailbox_passwd, virtual_mailboxes
from ansible_collections.postmaster.mailserver.plugins.filter.postfix import postfix_role_tables
from ansible_collections.postmaster.mailserver.plugins.filter.spf import policyd_spf_settings
from ansible_collections.postmaster.mailserver.plugins.filter.tls import tls_certificate_args
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes import mail_password as mp
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.maildir import (
    MaildirError,
    build_specs,
    purge_candidates,
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

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "postfix"
SECRET = "Never-Shown-Secret-7"


def _postfix_settings(**overrides):
    """The postfix role's settings for its defaults (as on a host named host.example.com), with *overrides*."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    internal = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    settings = {name: value for name, value in defaults.items() if name in internal["__postfix_settings"]}
    settings.update({name: value for name, value in internal.items() if name in internal["__postfix_settings"]})
    settings.update(
        postfix_config_dir="/etc/postfix",
        postfix_fragment_dir="/etc/postfix/postmaster.d",
        postfix_myhostname="host.example.com",
        postfix_mydomain="example.com",
    )
    settings.update(overrides)
    return settings


def postfix_role(**overrides):
    """What the postfix role's first task runs (validate.yml): the postfix_role_tables filter."""
    return lambda: postfix_role_tables(_postfix_settings(**overrides))


def mailboxes(domains):
    """What the mailboxes role's first task runs, then the filter of its passwd-file task."""

    def run():
        virtual_mailboxes(domains, "/var/mail/vmail", text=True)
        virtual_mailbox_passwd(domains)

    return run


def user(**fields):
    return [{"name": "example.org", "users": [{"name": "alice", "password": SECRET, **fields}]}]


# -- the modules' checks, with every side effect faked ---------------------------------------------

SUPPORTED = "btree\ncidr\nhash\ninline\nlmdb\npcre\nproxy\nregexp\nstatic\ntexthash\nunix\n"
BASE_FRAGMENT = {
    "main": {
        "myhostname": "mail.example.org",
        "mynetworks": ["127.0.0.0/8"],
        "smtpd_relay_restrictions": ["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"],
    },
    "master": [{"name": "smtp", "type": "inet", "private": "n", "command": "smtpd"}],
}


def postfix_config(tmp: Path, **kwargs):
    """The postfix_config module's backend on a scratch config directory (no command changes anything)."""

    def run():
        config = tmp / "postfix"
        (config / "postmaster.d").mkdir(parents=True, exist_ok=True)
        (config / "main.cf").write_text("# original\n")
        (config / "master.cf").write_text("smtp inet n - y - - smtpd\n")
        (config / "postmaster.d" / "00-base.json").write_text(json.dumps(BASE_FRAGMENT))
        before = _tree(tmp)

        def run_command(argv, environ_update=None, **_kwargs):
            return (0, SUPPORTED, "") if argv[-1] == "-m" else (0, "", "")

        try:
            PostfixConfig(
                fragment_dir=str(config / "postmaster.d"),
                config_dir=str(config),
                run_command=run_command,
                get_bin_path=lambda name: f"/usr/sbin/{name}",
                probe=lambda *_args: "220 ok",
                sleep=lambda _s: None,
                exists=lambda _path: True,
                **kwargs,
            ).execute()
        finally:
            assert _tree(tmp) == before, "the module changed a file before failing"

    return run


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def postconf(params, current="myhostname = mail.example.org\n"):
    """The postconf module's backend: one read, and no write may happen."""

    def run():
        def run_command(argv, environ_update=None):
            assert "-e" not in argv, f"postconf wrote: {argv}"
            return 0, current, ""

        run_postconf(Postconf(run_command, "/etc/postfix", "/usr/sbin/postconf"), params)

    return run


def mail_password(users):
    def run():
        def never(*_args):
            raise AssertionError("hashed or verified before the users were checked")

        mp.plan("", users, scheme="SHA512-CRYPT", exclusive=True, verify=never, make_hash=never)

    return run


def postfix_fragment(**fragment):
    return {"50-evil.json": {**fragment}}


# -- the matrix ---------------------------------------------------------------------------------------

PF = "postfix_role_tables: invalid postfix role variables:\n- "
MB = "virtual_mailboxes: "


def cases(tmp: Path) -> list[tuple[str, object, type[Exception], str]]:
    return [
        # Lines injected into the files Postfix reads.
        ("map-value-newline", postfix_role(postfix_maps=[{"name": "clients", "type": "cidr", "entries": [
            {"key": "192.0.2.0/24", "value": "REJECT\n0.0.0.0/0 OK"}]}]), AnsibleFilterError,
         "postfix_maps[0].entries[0]: value"),
        ("map-key-newline", postfix_role(postfix_maps=[{"name": "access", "entries": [
            {"key": "a\n0.0.0.0/0", "value": "OK"}]}]), AnsibleFilterError,
         "postfix_maps[0].entries[0]: key"),
        ("map-key-comment", postfix_role(postfix_maps=[{"name": "access", "entries": [
            {"key": "#x", "value": "OK"}]}]), AnsibleFilterError,
         "postfix_maps[0].entries[0]: key"),
        ("header-check-action-newline", postfix_role(postfix_header_checks=[
            {"pattern": "^Subject: x", "action": "OK\n/./ DISCARD"}]), AnsibleFilterError,
         PF + "postfix_header_checks[0].action: contains a line break ('OK\\n/./ DISCARD')"),
        ("header-check-pattern-newline", postfix_role(postfix_body_checks=[
            {"pattern": "x\n/./", "action": "DISCARD"}]), AnsibleFilterError,
         PF + "postfix_body_checks[0]: pattern 'x\\n/./' contains a line break"),
        ("alias-key-newline", postfix_role(postfix_aliases={"root\nevil": "|/bin/sh"}), AnsibleFilterError,
         "postfix_aliases: alias name"),
        ("alias-pipe-with-comma", postfix_role(postfix_aliases={"list": "|/usr/bin/x a, root"}), AnsibleFilterError,
         PF + "postfix_aliases: alias list: target '|/usr/bin/x a, root' contains a line break, a control "
         "character, a comma or a quote"),
        ("root-alias-newline", postfix_role(postfix_root_alias="alice\nevil: |/bin/sh"), AnsibleFilterError,
         "postfix_root_alias: alias root"),
        ("relay-password-newline", postfix_role(postfix_relayhost="[smtp.example.net]:587", postfix_relay_credentials=[
            {"relayhost": "[smtp.example.net]:587", "username": "u", "password": SECRET + "\n[x] y:z"}]),
         AnsibleFilterError, PF + "postfix_relay_credentials[0].password: contains a line break"),
        ("relayhost-newline", postfix_role(postfix_relayhost="[smtp.example.net]\nrelayhost = evil"),
         AnsibleFilterError, PF + "postfix_relayhost must look like host, [host] or [host]:port "
         "(got '[smtp.example.net]\\nrelayhost = evil')"),
        ("sender-relayhost-newline", postfix_role(postfix_sender_dependent_relayhosts=[
            {"sender": "@example.org\n@x", "relayhost": "[a.example]"}]), AnsibleFilterError,
         PF + "postfix_sender_dependent_relayhosts[0].sender: contains a line break ('@example.org\\n@x')"),
        ("main-extra-newline", postfix_role(postfix_main_extra={"smtpd_banner": "x\nmynetworks = 0.0.0.0/0"}),
         AnsibleFilterError, PF + "postfix_main_extra: parameter smtpd_banner: value 'x\\nmynetworks = 0.0.0.0/0' "
         "contains a line break"),
        ("main-extra-bad-name", postfix_role(postfix_main_extra={"a\nb": "c"}), AnsibleFilterError,
         PF + "postfix_main_extra: parameter 'a\\nb': not a valid parameter name"),
        ("myhostname-newline", postfix_role(postfix_myhostname="mail.example.com\nmynetworks=0.0.0.0/0"),
         AnsibleFilterError, PF + "postfix_myhostname must be a fully qualified domain name such as mail.example.com "
         "(got 'mail.example.com\\nmynetworks=0.0.0.0/0'); set it, or give the host an FQDN"),
        ("rbl-zone-with-space", postfix_role(postfix_rbl_zones=["zen.spamhaus.org permit"]), AnsibleFilterError,
         PF + "postfix_rbl_zones[0]: 'zen.spamhaus.org permit' is not a DNS list zone"),
        ("restriction-unknown", postfix_role(postfix_client_restrictions=["permit_everyone"]), AnsibleFilterError,
         PF + "parameter postfix_client_restrictions: unknown restriction 'permit_everyone'"),
        ("strip-received-space", postfix_role(postfix_strip_received_networks=["10. /./"]), AnsibleFilterError,
         PF + "postfix_strip_received_networks[0]: '10. /./' is not an address prefix"),
        ("tls-protocol-bogus", postfix_role(postfix_tls_protocols=">=TLSv1.2, SSLv9"), AnsibleFilterError,
         PF + "postfix_tls_protocols: 'SSLv9' is not a protocol (SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, "
         "each optionally with !, >= or <=)"),
        ("tls-exclude-with-space", postfix_role(postfix_tls_exclude_ciphers=["aNULL eNULL"]), AnsibleFilterError,
         PF + "postfix_tls_exclude_ciphers[0]: 'aNULL eNULL' is not one word such as aNULL"),
        # Files outside the role's own.
        ("map-name-main-cf", postfix_role(postfix_maps=[{"name": "main.cf", "entries": []}]), AnsibleFilterError,
         PF + "postfix_maps[0].name: 'main.cf' is one of Postfix's own files, a compiled table or a hidden file; "
         "give the table a name of its own"),
        ("map-name-dotdot", postfix_role(postfix_maps=[{"name": "..", "entries": []}]), AnsibleFilterError,
         PF + "postfix_maps[0].name: '..' is one of Postfix's own files, a compiled table or a hidden file; "
         "give the table a name of its own"),
        ("map-name-path", postfix_role(postfix_maps=[{"name": "../../etc/passwd", "entries": []}]),
         AnsibleFilterError, PF + "postfix_maps[0].name: must be a plain file name (letters, digits, _ . -), "
         "got '../../etc/passwd'"),
        ("map-name-compiled", postfix_role(postfix_maps=[{"name": "aliases.db", "entries": []}]), AnsibleFilterError,
         PF + "postfix_maps[0].name: 'aliases.db' is one of Postfix's own files, a compiled table or a hidden file; "
         "give the table a name of its own"),
        # Open relays.
        ("relay-permit", postfix_role(postfix_relay_restrictions=["permit"], postfix_recipient_restrictions=[]),
         AnsibleFilterError, PF + "open relay refused (postfix_allow_open_relay is false):\n  - postfix_relay_"
         "restrictions and postfix_recipient_restrictions: main.cf would relay mail for anyone: smtpd_relay_"
         "restrictions lets every client through at entry 1: 'permit' permits every client, and smtpd_recipient_"
         "restrictions ends without rejecting unauthorized destinations\n  Relaying must be stopped by reject_"
         "unauth_destination (or defer_unauth_destination, reject, defer) before any entry that permits every "
         "client; to run an open relay on purpose, set postfix_allow_open_relay: true in the postfix role (in a "
         "fragment: \"allow_open_relay\": true)"),
        ("relay-warn-if-reject", postfix_role(postfix_relay_restrictions=["permit_mynetworks", "warn_if_reject",
                                                                          "reject_unauth_destination"],
                                              postfix_recipient_restrictions=["permit_mynetworks"]),
         AnsibleFilterError, "smtpd_relay_restrictions only logs its reject_unauth_destination (warn_if_reject) and "
         "ends without a decision"),
        ("relay-static-ok", postfix_role(postfix_relay_restrictions=["check_client_access static:OK",
                                                                     "reject_unauth_destination"],
                                         postfix_recipient_restrictions=[]),
         AnsibleFilterError, "lets every client through at entry 1: 'check_client_access static:OK': static:OK "
         "answers 'OK' for every key"),
        ("relay-catch-all-cidr", postfix_role(
            postfix_maps=[{"name": "clients", "type": "cidr", "entries": [{"key": "0.0.0.0/0", "value": "OK"}]}],
            postfix_relay_restrictions=["check_client_access cidr:/etc/postfix/clients", "reject_unauth_destination"],
            postfix_recipient_restrictions=[]),
         AnsibleFilterError, "'check_client_access cidr:/etc/postfix/clients': cidr:/etc/postfix/clients answers "
         "'OK' for every client"),
        ("relay-class-permit", postfix_role(postfix_restriction_classes={"anyone": ["permit"]},
                                            postfix_relay_restrictions=["anyone", "reject_unauth_destination"],
                                            postfix_recipient_restrictions=[]),
         AnsibleFilterError, "restriction class 'anyone' lets every client through at entry 1: 'permit' permits "
         "every client"),
        ("mynetworks-everything", postfix_role(postfix_mynetworks=["0.0.0.0/0"]), AnsibleFilterError,
         "- postfix_mynetworks: parameter mynetworks: 0.0.0.0/0 covers every IPv4 address, so every client is "
         "trusted"),
        ("mynetworks-halves", postfix_role(postfix_mynetworks=["0.0.0.0/1", "128.0.0.0/1"]), AnsibleFilterError,
         "- postfix_mynetworks: parameter mynetworks: 0.0.0.0/1, 128.0.0.0/1 covers every IPv4 address"),
        ("mynetworks-ipv6-everything", postfix_role(postfix_mynetworks=["[::]/0"]), AnsibleFilterError,
         "- postfix_mynetworks: parameter mynetworks: [::]/0 covers every IPv6 address"),
        ("dash-o-split", postfix_role(postfix_submission_options={
            "syslog_name": "x -o smtpd_relay_restrictions=permit"}), AnsibleFilterError,
         PF + "postfix_submission_options.syslog_name: the value 'x -o smtpd_relay_restrictions=permit' contains "
         "whitespace"),
        ("dash-o-open-relay", postfix_role(postfix_smtps_options={
            "smtpd_relay_restrictions": "static:OK,reject_unauth_destination",
            "smtpd_recipient_restrictions": "permit_sasl_authenticated"}), AnsibleFilterError,
         "- postfix_smtps_options: master.cf service smtps/inet would relay mail for anyone: smtpd_relay_"
         "restrictions lets every client through at entry 1: 'static:OK'"),
        ("dash-o-bad-restriction", postfix_role(postfix_submission_options={
            "smtpd_client_restrictions": "permit_bogus"}), AnsibleFilterError,
         PF + "postfix_submission_options: -o parameter smtpd_client_restrictions: unknown restriction "
         "'permit_bogus'"),
        ("master-hash-name", postfix_role(postfix_master_extra=[{"name": "#2525", "type": "inet", "command": "smtpd"}]),
         AnsibleFilterError, PF + "postfix_master_extra[0]: master.cf service '#2525': a service name must not "
         "contain '#' (master.cf would read the line as a comment, and its arguments as the previous service's)"),
        ("master-control-char", postfix_role(postfix_master_extra=[
            {"name": "2525", "type": "inet", "command": "smtpd", "args": ["-o", "a=b\x1bc"]}]), AnsibleFilterError,
         PF + "postfix_master_extra[0]: master.cf service 2525/inet: invalid argument 'a=b\\x1bc' (empty, or with "
         "a control character)"),
        ("master-attached-dash-o", postfix_role(postfix_master_extra=[
            {"name": "2525", "type": "inet", "command": "smtpd", "args": ["-omynetworks=0.0.0.0/0"]}]),
         AnsibleFilterError, "- postfix_master_extra[0]: -o parameter mynetworks: 0.0.0.0/0 covers every IPv4 "
         "address"),
        ("allow-open-relay-not-bool", postfix_role(postfix_allow_open_relay="yes"), AnsibleFilterError,
         PF + "postfix_allow_open_relay: must be true or false, got 'yes'"),
        # Mailboxes: late checks, paths.
        ("password-newline", mailboxes(user(password=SECRET + "\n")), AnsibleFilterError,
         MB + "mailboxes_domains[0].users[0].password: contains a line break or NUL (the value is not shown)"),
        ("password-list", mailboxes(user(password=[SECRET])), AnsibleFilterError,
         MB + "mailboxes_domains[0].users[0].password: must be a string, got list (the value is not shown)"),
        ("quota-newline", mailboxes(user(quota="10G\nx")), AnsibleFilterError,
         MB + "mailboxes_domains[0].users[0].quota: '10G\\nx' is not a size such as 512M, 10G or 0 (unlimited)"),
        ("hash-with-colon", mailboxes([{"name": "example.org", "users": [
            {"name": "alice", "hash": "{SHA512-CRYPT}$6$x::0:0::/root:/bin/sh"}]}]), AnsibleFilterError,
         MB + "mailboxes_domains[0].users[0].hash: must look like {SCHEME}value, without ':', whitespace or a "
         "line break (the value is not shown)"),
        ("user-name-path", mailboxes([{"name": "example.org", "users": [{"name": "../../etc", "password": "x"}]}]),
         AnsibleFilterError, "mailboxes_domains[0].users[0].name"),
        ("domain-dotdot", mailboxes([{"name": "..", "users": []}]), AnsibleFilterError,
         "mailboxes_domains[0].name"),
        ("alias-target-newline", mailboxes([{"name": "example.org", "aliases": [
            {"name": "info", "to": ["a@example.org\nroot"]}]}]), AnsibleFilterError,
         "mailboxes_domains[0].aliases[0].to[0]"),
        # Modules, as they check their arguments before the first write.
        ("fragment-name-path", postfix_config(tmp, fragments={"../../main.cf": {"main": {}}}), PostfixConfigError,
         "fragments: fragment ../../main.cf: file name must look like NN-name.json"),
        ("fragment-value-newline", postfix_config(tmp, fragments=postfix_fragment(
            main={"smtpd_banner": "x\nmynetworks = 0.0.0.0/0"})), PostfixConfigError,
         "fragments: fragment 50-evil.json: main.smtpd_banner: value contains a line break"),
        ("fragment-hash-service", postfix_config(tmp, fragments=postfix_fragment(
            master=[{"name": "#x", "type": "inet", "command": "smtpd", "args": ["-o", "smtpd_relay_restrictions="]}])),
         PostfixConfigError, "fragments: fragment 50-evil.json: master[0]: master.cf service '#x': a service name "
         "must not contain '#' (master.cf would read the line as a comment, and its arguments as the previous "
         "service's)"),
        ("fragment-dash-o-open-relay", postfix_config(tmp, fragments=postfix_fragment(
            master=[{"name": "2525", "type": "inet", "command": "smtpd",
                     "args": ["-o", "{ smtpd_relay_restrictions = static:OK, reject_unauth_destination }"]}])),
         PostfixConfigError, "master.cf service 2525/inet (main.cf with its -o overrides) would relay mail for "
         "anyone: smtpd_relay_restrictions lets every client through at entry 1: 'static:OK'"),
        ("fragment-open-relay", postfix_config(tmp, fragments=postfix_fragment(
            main={"smtpd_relay_restrictions": ["warn_if_reject reject_unauth_destination"]},
            overrides=["smtpd_relay_restrictions"])), PostfixConfigError,
         "main.cf would relay mail for anyone: smtpd_relay_restrictions only logs its reject_unauth_destination"),
        ("table-main-cf", postfix_config(tmp, tables=[{"path": str(tmp / "postfix" / "main.cf"), "content": "x y\n"}]),
         PostfixConfigError, "tables[0].path: main.cf is one of Postfix's own files or a compiled table"),
        ("table-outside", postfix_config(tmp, tables=[{"path": "/etc/shadow", "content": "x y\n"}]),
         PostfixConfigError, f"tables[0].path: /etc/shadow is not directly in {tmp / 'postfix'} (nor /etc/aliases "
         "with aliases)"),
        ("postconf-dollar-open-relay", postconf({"open": "permit", "smtpd_relay_restrictions": "$open"}),
         PostconfError, "open relay refused:\n  - main.cf would relay mail for anyone: smtpd_relay_restrictions "
         "lets every client through at entry 1: 'permit' permits every client"),
        ("postconf-newline", postconf({"smtpd_banner": "x\nmynetworks = 0.0.0.0/0"}), PostconfError,
         "parameter smtpd_banner: value 'x\\nmynetworks = 0.0.0.0/0' contains a line break"),
        ("maildir-world-writable", lambda: build_specs([{"path": "/var/mail/vmail/a.org/x"}], mode="0777"),
         MaildirError, "mode 0777 lets every user of the host write the Maildir; use 0700 (or 0750)"),
        ("maildir-relative", lambda: build_specs([{"path": "../etc"}]), MaildirError,
         "path '../etc' must be absolute"),
        ("purge-domain-path", lambda: purge_candidates("/var/mail/vmail", ["../../home"], [], 5000), MaildirError,
         "purge_domains: '../../home' is not a domain name"),
        ("passwd-user-colon", mail_password([mp.User("a:0:0::/root:/bin/sh", password="x")]), mp.MailPasswordError,
         "user name 'a:0:0::/root:/bin/sh' is empty or contains ':' or whitespace"),
        ("passwd-password-newline", mail_password([mp.User("a@example.org", password="x\ny")]),
         mp.MailPasswordError, "user a@example.org: the password is empty or contains a newline"),
        ("spf-setting-newline", lambda: policyd_spf_settings({"helo_whitelist": ["a.example\nx"]}),
         AnsibleFilterError, "policyd_spf_helo_whitelist[0]"),
        ("certificate-dir-newline", lambda: tls_certificate_args(
            {"cert_file": "", "key_file": "", "common_name": "mail.example.org", "dir": "/etc/ssl\n/x"}),
         AnsibleFilterError, "tls_certificate_args: certificate_dir: '/etc/ssl\\n/x' contains a newline or another "
         "control character"),
    ]  # fmt: skip


#: The exact error of every row (``{tmp}``: the scratch directory of the module rows).
EXPECTED = {
    'map-value-newline': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_maps[0].entries[0]: value'
        " 'REJECT\\n0.0.0.0/0 OK' contains a line break"
    ),
    'map-key-newline': (
        "postfix_role_tables: invalid postfix role variables:\n- postfix_maps[0].entries[0]: key '"
        "a\\n0.0.0.0/0' is empty, contains whitespace or starts with '#'"
    ),
    'map-key-comment': (
        "postfix_role_tables: invalid postfix role variables:\n- postfix_maps[0].entries[0]: key '"
        "#x' is empty, contains whitespace or starts with '#'"
    ),
    'header-check-action-newline': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_header_checks[0].action: '
        "contains a line break ('OK\\n/./ DISCARD')"
    ),
    'header-check-pattern-newline': (
        "postfix_role_tables: invalid postfix role variables:\n- postfix_body_checks[0]: pattern '"
        "x\\n/./' contains a line break"
    ),
    'alias-key-newline': (
        "postfix_role_tables: invalid postfix role variables:\n- postfix_aliases: alias name 'root"
        "\\nevil' is empty or contains whitespace, ':', ',' or a quote"
    ),
    'alias-pipe-with-comma': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_aliases: alias list: targ'
        "et '|/usr/bin/x a, root' contains a line break, a control character, a comma or a quote"
    ),
    'root-alias-newline': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_root_alias: alias root: t'
        "arget 'alice\\nevil: |/bin/sh' contains a line break, a control character, a comma or a q"
        'uote'
    ),
    'relay-password-newline': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_relay_credentials[0].pass'
        'word: contains a line break'
    ),
    'relayhost-newline': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_relayhost must look like '
        "host, [host] or [host]:port (got '[smtp.example.net]\\nrelayhost = evil')"
    ),
    'sender-relayhost-newline': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_sender_dependent_relayhos'
        "ts[0].sender: contains a line break ('@example.org\\n@x')"
    ),
    'main-extra-newline': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_main_extra: parameter smt'
        "pd_banner: value 'x\\nmynetworks = 0.0.0.0/0' contains a line break"
    ),
    'main-extra-bad-name': (
        "postfix_role_tables: invalid postfix role variables:\n- postfix_main_extra: parameter 'a\\"
        "nb': not a valid parameter name"
    ),
    'myhostname-newline': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_myhostname must be a full'
        "y qualified domain name such as mail.example.com (got 'mail.example.com\\nmynetworks=0.0."
        "0.0/0'); set it, or give the host an FQDN"
    ),
    'rbl-zone-with-space': (
        "postfix_role_tables: invalid postfix role variables:\n- postfix_rbl_zones[0]: 'zen.spamha"
        "us.org permit' is not a DNS list zone: label 'org permit' may contain only letters, digits and hyphens"
    ),
    'restriction-unknown': (
        'postfix_role_tables: invalid postfix role variables:\n- parameter postfix_client_restrict'
        "ions: unknown restriction 'permit_everyone'"
    ),
    'strip-received-space': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_strip_received_networks[0'
        "]: '10. /./' is not an address prefix"
    ),
    'tls-protocol-bogus': (
        "postfix_role_tables: invalid postfix role variables:\n- postfix_tls_protocols: 'SSLv9' is"
        ' not a protocol (SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, each optionally with !,'
        ' >= or <=)'
    ),
    'tls-exclude-with-space': (
        "postfix_role_tables: invalid postfix role variables:\n- postfix_tls_exclude_ciphers[0]: '"
        "aNULL eNULL' is not one word such as aNULL"
    ),
    'map-name-main-cf': (
        "postfix_role_tables: invalid postfix role variables:\n- postfix_maps[0].name: 'main.cf' i"
        "s one of Postfix's own files, a compiled table or a hidden file; give the table a name o"
        'f its own'
    ),
    'map-name-dotdot': (
        "postfix_role_tables: invalid postfix role variables:\n- postfix_maps[0].name: '..' is one"
        " of Postfix's own files, a compiled table or a hidden file; give the table a name of its"
        ' own'
    ),
    'map-name-path': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_maps[0].name: must be a p'
        "lain file name (letters, digits, _ . -), got '../../etc/passwd'"
    ),
    'map-name-compiled': (
        "postfix_role_tables: invalid postfix role variables:\n- postfix_maps[0].name: 'aliases.db"
        "' is one of Postfix's own files, a compiled table or a hidden file; give the table a nam"
        'e of its own'
    ),
    'relay-permit': (
        'postfix_role_tables: invalid postfix role variables:\n- open relay refused (postfix_allow'
        '_open_relay is false):\n  - postfix_relay_restrictions and postfix_recipient_restrictions'
        ': main.cf would relay mail for anyone: smtpd_relay_restrictions lets every client throug'
        "h at entry 1: 'permit' permits every client, and smtpd_recipient_restrictions ends witho"
        'ut rejecting unauthorized destinations\n  Relaying must be stopped by reject_unauth_desti'
        'nation (or defer_unauth_destination, reject, defer) before any entry that permits every '
        'client; to run an open relay on purpose, set postfix_allow_open_relay: true in the postf'
        'ix role (in a fragment: "allow_open_relay": true)'
    ),
    'relay-warn-if-reject': (
        'postfix_role_tables: invalid postfix role variables:\n- open relay refused (postfix_allow'
        '_open_relay is false):\n  - postfix_relay_restrictions and postfix_recipient_restrictions'
        ': main.cf would relay mail for anyone: smtpd_relay_restrictions only logs its reject_una'
        'uth_destination (warn_if_reject) and ends without a decision, and smtpd_recipient_restri'
        'ctions ends without rejecting unauthorized destinations\n  Relaying must be stopped by re'
        'ject_unauth_destination (or defer_unauth_destination, reject, defer) before any entry th'
        'at permits every client; to run an open relay on purpose, set postfix_allow_open_relay: '
        'true in the postfix role (in a fragment: "allow_open_relay": true)'
    ),
    'relay-static-ok': (
        'postfix_role_tables: invalid postfix role variables:\n- open relay refused (postfix_allow'
        '_open_relay is false):\n  - postfix_relay_restrictions and postfix_recipient_restrictions'
        ': main.cf would relay mail for anyone: smtpd_relay_restrictions lets every client throug'
        "h at entry 1: 'check_client_access static:OK': static:OK answers 'OK' for every key, and"
        ' smtpd_recipient_restrictions ends without rejecting unauthorized destinations\n  Relayin'
        'g must be stopped by reject_unauth_destination (or defer_unauth_destination, reject, def'
        'er) before any entry that permits every client; to run an open relay on purpose, set pos'
        'tfix_allow_open_relay: true in the postfix role (in a fragment: "allow_open_relay": true'
        ')'
    ),
    'relay-catch-all-cidr': (
        'postfix_role_tables: invalid postfix role variables:\n- open relay refused (postfix_allow'
        '_open_relay is false):\n  - postfix_relay_restrictions and postfix_recipient_restrictions'
        ': main.cf would relay mail for anyone: smtpd_relay_restrictions lets every client throug'
        "h at entry 1: 'check_client_access cidr:/etc/postfix/clients': cidr:/etc/postfix/clients"
        " answers 'OK' for every client, and smtpd_recipient_restrictions ends without rejecting "
        'unauthorized destinations\n  Relaying must be stopped by reject_unauth_destination (or de'
        'fer_unauth_destination, reject, defer) before any entry that permits every client; to ru'
        'n an open relay on purpose, set postfix_allow_open_relay: true in the postfix role (in a'
        ' fragment: "allow_open_relay": true)'
    ),
    'relay-class-permit': (
        'postfix_role_tables: invalid postfix role variables:\n- open relay refused (postfix_allow'
        '_open_relay is false):\n  - postfix_relay_restrictions and postfix_recipient_restrictions'
        ': main.cf would relay mail for anyone: smtpd_relay_restrictions lets every client throug'
        "h at entry 1: restriction class 'anyone' lets every client through at entry 1: 'permit' "
        'permits every client, and smtpd_recipient_restrictions ends without rejecting unauthoriz'
        'ed destinations\n  Relaying must be stopped by reject_unauth_destination (or defer_unauth'
        '_destination, reject, defer) before any entry that permits every client; to run an open '
        'relay on purpose, set postfix_allow_open_relay: true in the postfix role (in a fragment:'
        ' "allow_open_relay": true)'
    ),
    'mynetworks-everything': (
        'postfix_role_tables: invalid postfix role variables:\n- open relay refused (postfix_allow'
        '_open_relay is false):\n  - postfix_mynetworks: parameter mynetworks: 0.0.0.0/0 covers ev'
        'ery IPv4 address, so every client is trusted\n  - postfix_relay_restrictions and postfix_'
        'recipient_restrictions: main.cf would relay mail for anyone: smtpd_relay_restrictions le'
        "ts every client through at entry 1: 'permit_mynetworks' permits every client (parameter "
        'mynetworks: 0.0.0.0/0 covers every IPv4 address, so every client is trusted), and smtpd_'
        "recipient_restrictions lets every client through at entry 1: 'permit_mynetworks' permits"
        ' every client (parameter mynetworks: 0.0.0.0/0 covers every IPv4 address, so every clien'
        't is trusted)\n  Relaying must be stopped by reject_unauth_destination (or defer_unauth_d'
        'estination, reject, defer) before any entry that permits every client; to run an open re'
        'lay on purpose, set postfix_allow_open_relay: true in the postfix role (in a fragment: "'
        'allow_open_relay": true)'
    ),
    'mynetworks-halves': (
        'postfix_role_tables: invalid postfix role variables:\n- open relay refused (postfix_allow'
        '_open_relay is false):\n  - postfix_mynetworks: parameter mynetworks: 0.0.0.0/1, 128.0.0.'
        '0/1 covers every IPv4 address, so every client is trusted\n  - postfix_relay_restrictions'
        ' and postfix_recipient_restrictions: main.cf would relay mail for anyone: smtpd_relay_re'
        "strictions lets every client through at entry 1: 'permit_mynetworks' permits every clien"
        't (parameter mynetworks: 0.0.0.0/1, 128.0.0.0/1 covers every IPv4 address, so every clie'
        "nt is trusted), and smtpd_recipient_restrictions lets every client through at entry 1: '"
        "permit_mynetworks' permits every client (parameter mynetworks: 0.0.0.0/1, 128.0.0.0/1 co"
        'vers every IPv4 address, so every client is trusted)\n  Relaying must be stopped by rejec'
        't_unauth_destination (or defer_unauth_destination, reject, defer) before any entry that '
        'permits every client; to run an open relay on purpose, set postfix_allow_open_relay: tru'
        'e in the postfix role (in a fragment: "allow_open_relay": true)'
    ),
    'mynetworks-ipv6-everything': (
        'postfix_role_tables: invalid postfix role variables:\n- open relay refused (postfix_allow'
        '_open_relay is false):\n  - postfix_mynetworks: parameter mynetworks: [::]/0 covers every'
        ' IPv6 address, so every client is trusted\n  - postfix_relay_restrictions and postfix_rec'
        'ipient_restrictions: main.cf would relay mail for anyone: smtpd_relay_restrictions lets '
        "every client through at entry 1: 'permit_mynetworks' permits every client (parameter myn"
        'etworks: [::]/0 covers every IPv6 address, so every client is trusted), and smtpd_recipi'
        "ent_restrictions lets every client through at entry 1: 'permit_mynetworks' permits every"
        ' client (parameter mynetworks: [::]/0 covers every IPv6 address, so every client is trus'
        'ted)\n  Relaying must be stopped by reject_unauth_destination (or defer_unauth_destinatio'
        'n, reject, defer) before any entry that permits every client; to run an open relay on pu'
        'rpose, set postfix_allow_open_relay: true in the postfix role (in a fragment: "allow_ope'
        'n_relay": true)'
    ),
    'dash-o-split': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_submission_options.syslog'
        "_name: the value 'x -o smtpd_relay_restrictions=permit' contains whitespace"
    ),
    'dash-o-open-relay': (
        'postfix_role_tables: invalid postfix role variables:\n- open relay refused (postfix_allow'
        '_open_relay is false):\n  - postfix_smtps_options: master.cf service smtps/inet would rel'
        "ay mail for anyone: smtpd_relay_restrictions lets every client through at entry 1: 'stat"
        "ic:OK': static:OK answers 'OK' for every key, and smtpd_recipient_restrictions ends with"
        'out rejecting unauthorized destinations\n  Relaying must be stopped by reject_unauth_dest'
        'ination (or defer_unauth_destination, reject, defer) before any entry that permits every'
        ' client; to run an open relay on purpose, set postfix_allow_open_relay: true in the post'
        'fix role (in a fragment: "allow_open_relay": true)'
    ),
    'dash-o-bad-restriction': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_submission_options: -o pa'
        "rameter smtpd_client_restrictions: unknown restriction 'permit_bogus'"
    ),
    'master-hash-name': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_master_extra[0]: master.c'
        "f service '#2525': a service name must not contain '#' (master.cf would read the line as"
        " a comment, and its arguments as the previous service's)"
    ),
    'master-control-char': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_master_extra[0]: master.c'
        "f service 2525/inet: invalid argument 'a=b\\x1bc' (empty, or with a control character)"
    ),
    'master-attached-dash-o': (
        'postfix_role_tables: invalid postfix role variables:\n- open relay refused (postfix_allow'
        '_open_relay is false):\n  - postfix_master_extra[0]: -o parameter mynetworks: 0.0.0.0/0 c'
        'overs every IPv4 address, so every client is trusted\n  - postfix_master_extra[0]: master'
        '.cf service 2525/inet would relay mail for anyone: smtpd_relay_restrictions lets every c'
        "lient through at entry 1: 'permit_mynetworks' permits every client (parameter mynetworks"
        ': 0.0.0.0/0 covers every IPv4 address, so every client is trusted), and smtpd_recipient_'
        "restrictions lets every client through at entry 1: 'permit_mynetworks' permits every cli"
        'ent (parameter mynetworks: 0.0.0.0/0 covers every IPv4 address, so every client is trust'
        'ed)\n  Relaying must be stopped by reject_unauth_destination (or defer_unauth_destination'
        ', reject, defer) before any entry that permits every client; to run an open relay on pur'
        'pose, set postfix_allow_open_relay: true in the postfix role (in a fragment: "allow_open'
        '_relay": true)'
    ),
    'allow-open-relay-not-bool': (
        'postfix_role_tables: invalid postfix role variables:\n- postfix_allow_open_relay: must be'
        " true or false, got 'yes'"
    ),
    'password-newline': (
        'virtual_mailboxes: mailboxes_domains[0].users[0].password: contains a line break or NUL '
        '(the value is not shown)'
    ),
    'password-list': (
        'virtual_mailboxes: mailboxes_domains[0].users[0].password: must be a string, got list (t'
        'he value is not shown)'
    ),
    'quota-newline': (
        "virtual_mailboxes: mailboxes_domains[0].users[0].quota: '10G\\nx' is not a size such as 5"
        '12M, 10G or 0 (unlimited)'
    ),
    'hash-with-colon': (
        'virtual_mailboxes: mailboxes_domains[0].users[0].hash: must look like {SCHEME}value, wit'
        "hout ':', whitespace or a line break (the value is not shown)"
    ),
    'user-name-path': (
        "virtual_mailboxes: mailboxes_domains[0].users[0].name: '../../etc@example.org' is not a "
        "valid mail address: '/' is not allowed in the local part (it becomes a directory name)"
    ),
    'domain-dotdot': (
        "virtual_mailboxes: mailboxes_domains[0].name: '..' is not a valid domain name: remove th"
        'e trailing dot'
    ),
    'alias-target-newline': (
        "virtual_mailboxes: mailboxes_domains[0].aliases[0].to[0]: 'a@example.org\\nroot' is not a"
        " valid mail address: domain 'example.org\\nroot': label 'org\\nroot' may contain only lett"
        'ers, digits and hyphens; mailboxes_domains[0].aliases[0].to: info@example.org needs at l'
        'east one target'
    ),
    'fragment-name-path': 'fragments: fragment ../../main.cf: file name must look like NN-name.json',
    'fragment-value-newline': 'fragments: fragment 50-evil.json: main.smtpd_banner: value contains a line break',
    'fragment-hash-service': (
        "fragments: fragment 50-evil.json: master[0]: master.cf service '#x': a service name must"
        " not contain '#' (master.cf would read the line as a comment, and its arguments as the p"
        "revious service's)"
    ),
    'fragment-dash-o-open-relay': (
        'invalid Postfix configuration:\n- open relay refused:\n  - master.cf service 2525/inet (ma'
        'in.cf with its -o overrides) would relay mail for anyone: smtpd_relay_restrictions lets '
        "every client through at entry 1: 'static:OK': static:OK answers 'OK' for every key, and "
        'smtpd_recipient_restrictions ends without rejecting unauthorized destinations\n  Relaying'
        ' must be stopped by reject_unauth_destination (or defer_unauth_destination, reject, defe'
        'r) before any entry that permits every client; to run an open relay on purpose, set post'
        'fix_allow_open_relay: true in the postfix role (in a fragment: "allow_open_relay": true)'
    ),
    'fragment-open-relay': (
        'invalid Postfix configuration:\n- open relay refused:\n  - main.cf would relay mail for an'
        'yone: smtpd_relay_restrictions only logs its reject_unauth_destination (warn_if_reject) '
        'and ends without a decision, and smtpd_recipient_restrictions ends without rejecting una'
        'uthorized destinations\n  Relaying must be stopped by reject_unauth_destination (or defer'
        '_unauth_destination, reject, defer) before any entry that permits every client; to run a'
        'n open relay on purpose, set postfix_allow_open_relay: true in the postfix role (in a fr'
        'agment: "allow_open_relay": true)'
    ),
    'table-main-cf': "tables[0].path: main.cf is one of Postfix's own files or a compiled table",
    'table-outside': (
        'tables[0].path: /etc/shadow is not directly in {tmp}/postfix (nor /etc/aliases with alia'
        'ses)'
    ),
    'postconf-dollar-open-relay': (
        'open relay refused:\n  - main.cf would relay mail for anyone: smtpd_relay_restrictions le'
        "ts every client through at entry 1: 'permit' permits every client, and smtpd_recipient_r"
        'estrictions ends without rejecting unauthorized destinations\n  Relaying must be stopped '
        'by reject_unauth_destination (or defer_unauth_destination, reject, defer) before any ent'
        'ry that permits every client; to run an open relay on purpose, set allow_open_relay: tru'
        'e'
    ),
    'postconf-newline': "parameter smtpd_banner: value 'x\\nmynetworks = 0.0.0.0/0' contains a line break",
    'maildir-world-writable': 'mode 0777 lets every user of the host write the Maildir; use 0700 (or 0750)',
    'maildir-relative': "path '../etc' must be absolute",
    'purge-domain-path': "purge_domains: '../../home' is not a domain name",
    'passwd-user-colon': "user name 'a:0:0::/root:/bin/sh' is empty or contains ':' or whitespace",
    'passwd-password-newline': 'user a@example.org: the password is empty or contains a newline',
    'spf-setting-newline': (
        "policyd_spf_settings: policyd_spf_helo_whitelist[0]: 'a.example\\nx' is not a fully quali"
        'fied domain name'
    ),
    'certificate-dir-newline': (
        "tls_certificate_args: certificate_dir: '/etc/ssl\\n/x' contains a newline or another cont"
        'rol character'
    ),
}  # fmt: skip


def test_there_are_at_least_forty_distinct_inputs(tmp_path):
    ids = [case[0] for case in cases(tmp_path)]
    assert len(ids) == len(set(ids)) >= 40


@pytest.mark.parametrize("case_id", [case[0] for case in cases(Path("/nonexistent"))])
def test_bad_input_fails_with_the_exact_error(tmp_path, case_id):
    (_id, thunk, error, named) = next(case for case in cases(tmp_path) if case[0] == case_id)
    with pytest.raises(error) as excinfo:
        thunk()
    assert str(excinfo.value) == EXPECTED[case_id].replace("{tmp}", str(tmp_path))
    assert named in str(excinfo.value)
    assert SECRET not in str(excinfo.value)
