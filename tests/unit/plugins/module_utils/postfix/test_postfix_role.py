# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The postfix role's fragment and tables, built in Python from the role's variables."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragments import (
    check_fragment,
    merge_fragments,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_role import (
    FRAGMENT_NAME,
    REQUIRED,
    PostfixRoleError,
    fragment,
    tables,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_validate import validate_main

ROOT = Path(__file__).resolve().parents[5]
ROLE = ROOT / "roles" / "postfix"
FIXTURES = Path(__file__).parents[1] / "fixtures"
CERT = {"cert": "/etc/ssl/postmaster/cert.pem", "key": "/etc/ssl/postmaster/key.pem"}
HEADER = "#\n# Ansible managed\n#\n"
TLS_HARDENING = {
    "smtpd_tls_ciphers": "high",
    "smtpd_tls_mandatory_ciphers": "high",
    "smtpd_tls_exclude_ciphers": [
        "aNULL",
        "eNULL",
        "EXPORT",
        "DES",
        "3DES",
        "RC4",
        "MD5",
        "PSK",
        "SRP",
        "IDEA",
        "SEED",
    ],
    "tls_preempt_cipherlist": True,
    "tls_ssl_options": ["NO_RENEGOTIATION"],
}


def role_settings(**overrides):
    """The settings the role passes for its defaults (templated defaults resolved as on a host
    whose FQDN is host.example.com), with *overrides*."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    internal = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    settings = {name: value for name, value in defaults.items() if name in REQUIRED}
    settings.update({name: value for name, value in internal.items() if name in REQUIRED})
    settings.update(
        postfix_config_dir="/etc/postfix",
        postfix_fragment_dir="/etc/postfix/postmaster.d",
        postfix_myhostname="host.example.com",
        postfix_mydomain="example.com",
    )
    settings.update(overrides)
    return settings


def merged(data):
    """main.cf parameters and master.cf services as postfix_config assembles them from the fragment alone."""
    check_fragment(FRAGMENT_NAME, data)
    main, services = merge_fragments([(FRAGMENT_NAME, json.loads(json.dumps(data)))])
    return main, [service.to_dict() for service in services]


def error(**overrides):
    with pytest.raises(PostfixRoleError) as excinfo:
        fragment(role_settings(**overrides), CERT)
    return str(excinfo.value)


# -- the role hands over exactly what the filters need ---------------------------------------


def test_the_role_passes_every_setting_under_its_own_name():
    internal = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    settings = internal["__postfix_settings"]
    assert sorted(settings) == sorted(REQUIRED)
    for name, value in settings.items():
        assert value == "{{ " + name + " }}", name


def test_missing_settings_are_named():
    settings = role_settings()
    del settings["postfix_maps"]
    with pytest.raises(PostfixRoleError, match="the settings lack postfix_maps"):
        fragment(settings, CERT)


# -- the same fragment as the Jinja template it replaced ----------------------------------------


#: anvil's limits of the role's defaults (issue 24).
RATE_LIMITS = {
    "smtpd_client_connection_rate_limit": 60,
    "smtpd_client_message_rate_limit": 100,
    "smtpd_recipient_limit": 100,
    "anvil_rate_time_unit": "60s",
}


def test_defaults_give_what_the_template_gave():
    """Generated once from roles/postfix/templates/fragment.json.j2 for the defaults (Postfix 3.10)."""
    expected = json.loads((FIXTURES / "postfix_role_defaults_template.json").read_text())
    # Added since (issue 14): TLS hardening by default.
    expected["main"].update(TLS_HARDENING)
    # Added since (issue 25): SMTP AUTH on port 25 only after STARTTLS.
    expected["main"]["smtpd_tls_auth_only"] = True
    # Added since (issue 24): postscreen on port 25, and anvil's limits (submission exempt).
    expected["main"].update(RATE_LIMITS)
    expected["main"].update(
        {
            "postscreen_access_list": ["permit_mynetworks"],
            "postscreen_greet_action": "enforce",
            "postscreen_dnsbl_action": "enforce",
            "postscreen_dnsbl_threshold": 1,
        }
    )
    master = []
    for service in expected["master"]:
        if (service["name"], service["type"]) == ("smtp", "inet"):
            master.append({**service, "maxproc": "1", "command": "postscreen"})
            master += [
                {"name": "smtpd", "type": "pass", "private": "-", "unpriv": "-", "chroot": "y", "wakeup": "-",
                 "maxproc": "-", "command": "smtpd"},
                {"name": "dnsblog", "type": "unix", "private": "-", "unpriv": "-", "chroot": "y", "wakeup": "-",
                 "maxproc": "0", "command": "dnsblog"},
                {"name": "tlsproxy", "type": "unix", "private": "-", "unpriv": "-", "chroot": "y", "wakeup": "-",
                 "maxproc": "0", "command": "tlsproxy"},
            ]  # fmt: skip
        elif service["name"] in ("submission", "smtps"):
            args = ["-o", "smtpd_client_connection_rate_limit=0", "-o", "smtpd_client_message_rate_limit=0"]
            master.append({**service, "args": args + service["args"]})
        else:
            master.append(service)
    expected["master"] = master
    assert fragment(role_settings(), CERT) == expected


def test_every_branch_gives_the_main_cf_the_template_gave():
    """The template spliced the RBL zones into the list; the fragment inserts them: same main.cf."""
    expected = json.loads((FIXTURES / "postfix_role_kitchen_sink_template.json").read_text())
    expected["main"]["smtpd_tls_auth_only"] = True  # added since (issue 25)
    expected["main"].update(RATE_LIMITS)  # added since (issue 24), postscreen off below
    settings = role_settings(
        __postfix_compatibility_level="2",
        postfix_myhostname="mx.example.org",
        postfix_mydomain="example.org",
        postfix_inet_interfaces="loopback-only",
        postfix_inet_protocols="ipv4",
        postfix_mynetworks=[],
        postfix_mynetworks_style="subnet",
        postfix_relay_domains=["relay.example.org"],
        postfix_chroot=False,
        postfix_tls_enabled=False,
        postfix_submission_enabled=False,
        postfix_smtps_enabled=False,
        postfix_helo_restrictions=["permit_mynetworks", "reject_invalid_helo_hostname"],
        postfix_recipient_restrictions=[
            "permit_mynetworks",
            "reject_unauth_destination",
            "check_recipient_access hash:/etc/postfix/r",
            "permit",
        ],
        postfix_rbl_zones=["zen.spamhaus.org", "bl.spamcop.net"],
        postfix_postscreen_enabled=False,
        postfix_restriction_classes={"strict": ["reject_unknown_sender_domain", "permit"], "loose": ["permit"]},
        postfix_body_checks=[{"pattern": "x", "action": "REJECT"}],
        postfix_checks_type="pcre",
        postfix_relayhost="[smtp.example.net]:465",
        postfix_relay_tls_wrappermode=True,
        postfix_sender_dependent_relayhosts=[{"sender": "@example.org", "relayhost": "[smtp2.example.net]:465"}],
        postfix_main_extra={"smtpd_tls_loglevel": 2, "delay_warning_time": "4h", "smtputf8_enable": False},
        postfix_master_extra=[
            {"name": "policy", "type": "unix", "private": "-", "unpriv": "n", "chroot": "n", "wakeup": "-",
             "maxproc": "0", "command": "spawn", "args": ["user=nobody", "argv=/bin/true"]},
        ],
    )  # fmt: skip
    data = fragment(settings, None)
    assert data["insert"] == [
        {
            "param": "smtpd_recipient_restrictions",
            "after": "reject_unauth_destination",
            "values": ["reject_rbl_client zen.spamhaus.org", "reject_rbl_client bl.spamcop.net"],
        }
    ]
    assert "reject_rbl_client zen.spamhaus.org" not in data["main"]["smtpd_recipient_restrictions"]
    assert merged(data) == merged(expected)


# -- behaviour ---------------------------------------------------------------------------------


def test_defaults_are_a_valid_closed_relay():
    main, services = merged(fragment(role_settings(), CERT))
    validate_main(main, None, lambda path: True)
    assert main["smtpd_relay_restrictions"][-1] == "reject_unauth_destination"
    assert "reject_unauth_destination" in main["smtpd_recipient_restrictions"]
    assert main["smtpd_banner"] == "$myhostname ESMTP"
    assert main["mynetworks"] == ["127.0.0.0/8", "[::1]/128"]
    assert "mynetworks_style" not in main
    assert (main["smtpd_tls_cert_file"], main["smtpd_tls_key_file"]) == (CERT["cert"], CERT["key"])
    assert main["smtp_tls_security_level"] == "may"
    assert main["postmaster_mua_sasl_auth_enable"] is False
    assert "header_checks" not in main and "body_checks" not in main and "relayhost" not in main
    by_key = {f"{s['name']}/{s['type']}": s for s in services}
    submission = by_key["submission/inet"]
    assert submission["chroot"] == "y"
    options = [submission["args"][i + 1] for i in range(0, len(submission["args"]), 2)]
    assert options == sorted(options)
    assert "smtpd_sasl_auth_enable=$postmaster_mua_sasl_auth_enable" in options
    assert "smtps/inet" in by_key and by_key["smtp/inet"]["chroot"] == "y" and by_key["qmgr/unix"]["chroot"] == "n"


def test_tls_needs_the_certificate():
    with pytest.raises(PostfixRoleError, match="certificate_result"):
        fragment(role_settings(), None)
    main, _services = merged(
        fragment(
            role_settings(postfix_tls_enabled=False, postfix_submission_enabled=False, postfix_smtps_enabled=False)
        )
    )
    # Only the AUTH guard stays: a SASL role switching AUTH on for port 25 offers it after STARTTLS only.
    assert [name for name in main if name.startswith("smtpd_tls_")] == ["smtpd_tls_auth_only"]


def test_chroot_off_turns_it_off_for_every_service():
    _main, services = merged(fragment(role_settings(postfix_chroot=False), CERT))
    assert {service["chroot"] for service in services} == {"n"}


def test_disabled_mua_services_are_left_out():
    _main, services = merged(fragment(role_settings(postfix_submission_enabled=False), CERT))
    assert [s["name"] for s in services if s["type"] == "inet"] == ["smtp", "smtps"]


def test_rbl_zones_are_inserted_right_after_reject_unauth_destination():
    data = fragment(role_settings(postfix_rbl_zones=["zen.spamhaus.org", " bl.spamcop.net "]), CERT)
    assert data["main"]["smtpd_recipient_restrictions"] == [
        "permit_mynetworks",
        "permit_sasl_authenticated",
        "reject_unauth_destination",
    ]
    main, _services = merged(data)
    assert main["smtpd_recipient_restrictions"] == [
        "permit_mynetworks",
        "permit_sasl_authenticated",
        "reject_unauth_destination",
        "reject_rbl_client zen.spamhaus.org",
        "reject_rbl_client bl.spamcop.net",
    ]
    # A later role's insert after the same anchor (the SPF policy) lands before the RBL checks.
    spf = {"insert": [{"param": "smtpd_recipient_restrictions", "after": "reject_unauth_destination",
                       "values": ["check_policy_service unix:private/policy-spf"]}]}  # fmt: skip
    main, _services = merge_fragments([(FRAGMENT_NAME, data), ("40-policyd-spf.json", spf)])
    assert main["smtpd_recipient_restrictions"][2:5] == [
        "reject_unauth_destination",
        "check_policy_service unix:private/policy-spf",
        "reject_rbl_client zen.spamhaus.org",
    ]
    # Merging again (a re-run) adds nothing twice.
    again, _services = merge_fragments([(FRAGMENT_NAME, data), ("40-policyd-spf.json", spf)])
    assert again == main


def test_rbl_zones_go_to_the_end_of_a_list_without_the_anchor():
    data = fragment(
        role_settings(
            postfix_recipient_restrictions=["permit_mynetworks", "permit_sasl_authenticated"],
            postfix_rbl_zones=["zen.spamhaus.org"],
        ),
        CERT,
    )
    assert data["insert"] == [
        {"param": "smtpd_recipient_restrictions", "values": ["reject_rbl_client zen.spamhaus.org"]}
    ]
    assert merged(data)[0]["smtpd_recipient_restrictions"][-1] == "reject_rbl_client zen.spamhaus.org"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"postfix_rbl_zones": ["not a zone"]}, "postfix_rbl_zones[0]"),
        (
            {"postfix_rbl_zones": ["localhost"]},
            "postfix_rbl_zones[0]: 'localhost' is not a DNS list zone: a DNS list zone has two labels or more",
        ),
        (
            {
                "postfix_recipient_restrictions": ["permit_mynetworks", "permit"],
                "postfix_rbl_zones": ["zen.spamhaus.org"],
            },
            "postfix_recipient_restrictions (with postfix_rbl_zones inserted): 'permit' is not the last restriction",
        ),
        ({"postfix_recipient_restrictions": ["reject_rbl_client"]}, "parameter postfix_recipient_restrictions"),
    ],
)
def test_rbl_problems_fail_early_naming_the_variable(overrides, named):
    assert named in error(**overrides)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"postfix_myhostname": "mail"}, "postfix_myhostname must be a fully qualified domain name"),
        ({"postfix_mydomain": ""}, "postfix_mydomain must not be empty"),
        ({"postfix_mailbox_size_limit": 1000}, "postfix_mailbox_size_limit (1000) must be 0 (unlimited) or at least"),
        ({"postfix_mynetworks": ["10.0.0.0/33"]}, "parameter postfix_mynetworks: '10.0.0.0/33'"),
        ({"postfix_client_restrictions": ["permit_bogus_thing"]}, "parameter postfix_client_restrictions: unknown"),
        ({"postfix_restriction_classes": {"c": ["bogus"]}}, "parameter postfix_restriction_classes.c: unknown"),
        ({"postfix_smtpd_tls_security_level": "none"}, "postfix_smtpd_tls_security_level must be 'may' or 'encrypt'"),
        ({"postfix_tls_enabled": False}, "postfix_tls_enabled must be true while postfix_submission_enabled"),
        ({"postfix_relayhost": "smtp example"}, "postfix_relayhost must look like host"),
        ({"postfix_sender_dependent_relayhosts": [{"sender": "nobody", "relayhost": "[a.example]"}]},
         "postfix_sender_dependent_relayhosts[0].sender must look like"),
        ({"postfix_relay_credentials": [{"relayhost": "[other.example]", "username": "u", "password": "p"}]},
         "postfix_relay_credentials[0].relayhost '[other.example]' must be postfix_relayhost"),
        ({"postfix_relayhost": "[a.example]", "postfix_relay_tls_security_level": "may",
          "postfix_relay_credentials": [{"relayhost": "[a.example]", "username": "u", "password": "p"}]},
         "postfix_relay_tls_security_level 'may' would let the relay password"),
        ({"postfix_submission_options": {"syslog_name": "a b"}}, "postfix_submission_options.syslog_name"),
        ({"postfix_master_extra": [{"name": "x", "type": "bogus", "command": "y"}]}, "postfix_master_extra[0]: "),
        ({"postfix_master_extra": [{"name": "smtp", "type": "inet", "command": "smtpd"}]},
         "master.cf service smtp/inet is already defined"),
        ({"postfix_main_extra": {"x": {"nested": 1}}}, "postfix_main_extra: parameter x: value must be"),
        # Wrapper mode is smtp_tls_wrappermode, for every connection: a relay host on 587 or 25 never answers.
        ({"postfix_relay_tls_wrappermode": True},
         "postfix_relay_tls_wrappermode is true but postfix_relayhost is empty"),
        ({"postfix_relay_tls_wrappermode": True, "postfix_relayhost": "[smtp.example.net]:587"},
         "postfix_relayhost '[smtp.example.net]:587' is not on port 465"),
        ({"postfix_relay_tls_wrappermode": True, "postfix_relayhost": "[smtp.example.net]"},
         "postfix_relayhost '[smtp.example.net]' is not on port 465"),
        ({"postfix_relay_tls_wrappermode": True, "postfix_relayhost": "[smtp.example.net]:465",
          "postfix_sender_dependent_relayhosts": [{"sender": "@example.org", "relayhost": "[b.example.net]:587"}]},
         "postfix_sender_dependent_relayhosts[0].relayhost '[b.example.net]:587' is not on port 465"),
    ],
)  # fmt: skip
def test_bad_variables_are_named(overrides, named):
    assert named in error(**overrides)


def test_every_problem_is_reported_at_once_and_no_secret_is_shown():
    message = error(
        postfix_myhostname="mail",
        postfix_mynetworks=["10.0.0.0/33"],
        postfix_relay_credentials=[{"relayhost": "[x.example]", "username": "u", "password": "s3cret\nx"}],
    )
    assert message.startswith("invalid postfix role variables:\n- ")
    assert "postfix_myhostname" in message and "postfix_mynetworks" in message
    assert "postfix_relay_credentials[0].password: contains a line break" in message
    assert "s3cret" not in message


def test_relay_settings():
    main, _services = merged(
        fragment(
            role_settings(
                postfix_relayhost="[smtp.example.net]:587",
                postfix_relay_credentials=[{"relayhost": "[smtp.example.net]:587", "username": "u", "password": "p"}],
            ),
            CERT,
        )
    )
    assert main["relayhost"] == "[smtp.example.net]:587"
    assert main["smtp_tls_security_level"] == "encrypt"
    assert main["smtp_sasl_auth_enable"] is True
    assert main["smtp_sasl_password_maps"] == "hash:/etc/postfix/smtp_auth"
    assert "smtp_sasl_password_maps" not in merged(fragment(role_settings(), CERT))[0]


def test_wrapper_mode_with_every_relay_host_on_465():
    main, _services = merged(
        fragment(
            role_settings(
                postfix_relayhost="[smtp.example.net]:465",
                postfix_relay_tls_wrappermode=True,
                postfix_sender_dependent_relayhosts=[{"sender": "@example.org", "relayhost": "[b.example.net]:465"}],
            ),
            CERT,
        )
    )
    assert main["smtp_tls_wrappermode"] is True
    assert main["smtp_tls_security_level"] == "encrypt"
    assert main["sender_dependent_relayhost_maps"] == "hash:/etc/postfix/sender_relayhost"


def test_main_extra_has_the_last_word():
    main, _services = merged(fragment(role_settings(postfix_main_extra={"smtpd_tls_loglevel": 2}), CERT))
    assert main["smtpd_tls_loglevel"] == 2


# -- tables ------------------------------------------------------------------------------------

SCENARIO_TABLES = {
    "postfix_maps": [
        {"name": "sender_access", "type": "hash", "entries": [{"key": "spammer@bad.example", "value": "REJECT no"}]},
        {"name": "client_access", "type": "cidr", "entries": [{"key": "192.0.2.0/24", "value": "REJECT doc"}]},
        {"name": "subjects", "type": "pcre", "mode": 0o640, "entries": [{"key": "/^a b$/i", "value": "REJECT"}]},
    ],
    "postfix_header_checks": [{"pattern": "^Subject:.*FOR/BIDDEN", "action": "REJECT subject", "flags": "i"}],
    "postfix_strip_received_networks": ["192.168.", 10.0],
    "postfix_root_alias": "alice",
    "postfix_relayhost": "[smtp.example.net]:587",
    "postfix_relay_credentials": [{"relayhost": "[smtp.example.net]:587", "username": "u", "password": "s3cret"}],
    "postfix_sender_dependent_relayhosts": [{"sender": "@example.org", "relayhost": "[smtp.example.net]:587"}],
}


def test_defaults_write_only_the_aliases():
    result = tables(role_settings(), HEADER)
    assert result["maps"] == [] and result["checks"] == [] and result["packages"] == []
    assert result["relay_passwords"] is None and result["sender_relayhost"] is None
    assert result["aliases"] == {
        "path": "/etc/aliases",
        "mode": "0644",
        "content": HEADER + "# Local aliases, from postfix_aliases. Compiled with postalias when changed.\n"
        "clamav: root\nmailer-daemon: postmaster\npostmaster: root\n",
    }


def test_tables_text_types_and_modes():
    result = tables(role_settings(**SCENARIO_TABLES), HEADER)
    maps = {m["name"]: m for m in result["maps"]}
    assert [(m["name"], m["type"], m["mode"]) for m in result["maps"]] == [
        ("sender_access", "hash", "0644"),
        ("client_access", "cidr", "0644"),
        ("subjects", "pcre", "0640"),
    ]
    assert maps["sender_access"]["path"] == "/etc/postfix/sender_access"
    assert maps["sender_access"]["content"] == (
        HEADER + "# Postfix lookup table sender_access (hash), from postfix_maps.\nspammer@bad.example REJECT no\n"
    )
    assert maps["subjects"]["content"].endswith("\n/^a b$/i REJECT\n")
    header_checks = result["checks"][0]
    assert (header_checks["name"], header_checks["path"]) == ("header_checks", "/etc/postfix/header_checks")
    assert header_checks["content"].splitlines()[4:] == [
        "/^Subject:.*FOR\\/BIDDEN/i REJECT subject",
        "/^Received:.*[[( ]192\\.168\\./ IGNORE",
        "/^Received:.*[[( ]10\\.0/ IGNORE",
    ]
    assert result["aliases"]["content"].endswith("postmaster: root\nroot: alice\n")
    assert result["packages"] == ["postfix-pcre"]
    assert result["sender_relayhost"]["content"].endswith("\n@example.org [smtp.example.net]:587\n")
    assert result["relay_passwords"] == {"path": "/etc/postfix/smtp_auth", "mode": "0600"}
    assert "s3cret" not in json.dumps(result)
    # One postmap call: every table but the secret one, the aliases compiled with postalias.
    assert [(t["path"], t.get("type"), t.get("aliases", False), t["mode"]) for t in result["postmap"]] == [
        ("/etc/postfix/sender_access", "hash", False, "0644"),
        ("/etc/postfix/client_access", "cidr", False, "0644"),
        ("/etc/postfix/subjects", "pcre", False, "0640"),
        ("/etc/postfix/header_checks", "regexp", False, "0644"),
        ("/etc/postfix/sender_relayhost", "hash", False, "0644"),
        ("/etc/aliases", None, True, "0644"),
    ]
    assert {(t["owner"], t["group"]) for t in result["postmap"]} == {("root", "root")}
    assert result["postmap"][0]["content"] == maps["sender_access"]["content"]
    secret = tables(role_settings(**SCENARIO_TABLES), HEADER, secrets=True)["relay_passwords"]
    assert secret["mode"] == "0600"
    assert secret["content"].endswith("\n[smtp.example.net]:587 u:s3cret\n")


def test_checks_and_main_cf_agree():
    settings = role_settings(**SCENARIO_TABLES)
    main = fragment(settings, CERT)["main"]
    assert main["header_checks"] == "regexp:/etc/postfix/header_checks"
    assert "body_checks" not in main
    assert [c["name"] for c in tables(settings)["checks"]] == ["header_checks"]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"postfix_maps": [{"name": "../x", "entries": []}]}, "postfix_maps[0].name: must be a plain file name"),
        ({"postfix_maps": [{"name": "a"}, {"name": "a"}]}, "postfix_maps[1].name: 'a' is also the name of postfix_maps[0]"),
        ({"postfix_maps": [{"name": "a", "type": "nis"}]}, "postfix_maps[0].type: must be one of"),
        ({"postfix_maps": [{"name": "a", "entires": []}]}, "postfix_maps[0]: unknown keys entires"),
        ({"postfix_maps": [{"name": "a", "entries": [{"key": "k"}]}]}, "postfix_maps[0].entries[0]: must have exactly"),
        ({"postfix_maps": [{"name": "a", "entries": [{"key": "a b", "value": "OK"}]}]}, "postfix_maps[0].entries[0]: key 'a b' is empty, contains whitespace"),
        ({"postfix_maps": [{"name": "a", "type": "regexp", "entries": [{"key": "nodelim", "value": "OK"}]}]},
         "postfix_maps[0].entries[0]: key 'nodelim' is not a /pattern/flags"),
        ({"postfix_maps": [{"name": "a", "mode": "rw"}]}, "postfix_maps[0].mode: must be a file mode"),
        ({"postfix_header_checks": [{"pattern": "x", "action": ""}]}, "postfix_header_checks[0].action: required"),
        ({"postfix_body_checks": [{"pattern": "x", "action": "REJECT", "flags": "q"}]}, "postfix_body_checks[0]: flags 'q'"),
        ({"postfix_body_checks": [{"pattern": "x\\", "action": "REJECT"}]}, "ends with a lone backslash"),
        ({"postfix_strip_received_networks": ["10. 1"]}, "postfix_strip_received_networks[0]"),
        ({"postfix_aliases": {"bad name": "root"}}, "postfix_aliases: alias name 'bad name'"),
        ({"postfix_aliases": {"x": []}}, "postfix_aliases: alias x: targets must be non-empty strings"),
    ],
)  # fmt: skip
def test_bad_tables_are_named(overrides, named):
    with pytest.raises(PostfixRoleError) as excinfo:
        tables(role_settings(**overrides))
    assert named in str(excinfo.value)


def test_the_role_has_no_template_left_that_builds_configuration():
    assert not (ROLE / "templates").exists() or not any((ROLE / "templates").iterdir())
    tasks = "\n".join(path.read_text() for path in (ROLE / "tasks").glob("*.yml"))
    assert "ansible.builtin.template" not in tasks
    assert not re.search(r"main\.update|\{%", tasks)


# -- the relay guard runs on the controller, naming the role's variables ------------------------


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"postfix_relay_restrictions": ["warn_if_reject reject_unauth_destination"],
          "postfix_recipient_restrictions": ["permit_mynetworks"]},
         "- postfix_relay_restrictions and postfix_recipient_restrictions: main.cf would relay mail for anyone: "
         "smtpd_relay_restrictions only logs its reject_unauth_destination (warn_if_reject)"),
        ({"postfix_relay_restrictions": ["check_client_access static:OK", "reject_unauth_destination"],
          "postfix_recipient_restrictions": []},
         "'check_client_access static:OK': static:OK answers 'OK' for every key"),
        ({"postfix_mynetworks": ["0.0.0.0/0"]},
         "- postfix_mynetworks: parameter mynetworks: 0.0.0.0/0 covers every IPv4 address, so every client is trusted"),
        ({"postfix_main_extra": {"mynetworks": "::/0"}},
         "- postfix_main_extra.mynetworks: parameter mynetworks: ::/0 covers every IPv6 address"),
        ({"postfix_main_extra": {"smtpd_relay_restrictions": "permit_mynetworks, static:OK, reject_unauth_destination"},
          "postfix_recipient_restrictions": ["permit_mynetworks"]},
         "- postfix_main_extra.smtpd_relay_restrictions and postfix_recipient_restrictions: main.cf would relay"),
        ({"postfix_maps": [{"name": "clients", "type": "cidr", "entries": [{"key": "0.0.0.0/0", "value": "OK"}]}],
          "postfix_relay_restrictions": ["check_client_access cidr:/etc/postfix/clients", "reject_unauth_destination"],
          "postfix_recipient_restrictions": []},
         "cidr:/etc/postfix/clients answers 'OK' for every client"),
        ({"postfix_submission_options": {"smtpd_relay_restrictions": "static:OK,reject_unauth_destination",
                                         "smtpd_recipient_restrictions": "permit_sasl_authenticated"}},
         "- postfix_submission_options: master.cf service submission/inet would relay mail for anyone"),
        ({"postfix_master_extra": [{"name": "2525", "type": "inet", "command": "smtpd",
                                    "args": ["-o", "mynetworks=0.0.0.0/0"]}]},
         "- postfix_master_extra[0]: -o parameter mynetworks: 0.0.0.0/0 covers every IPv4 address"),
    ],
)  # fmt: skip
def test_open_relay_is_refused_naming_the_variables(overrides, named):
    message = error(**overrides)
    assert "open relay refused (postfix_allow_open_relay is false):" in message
    assert named in message
    assert "set postfix_allow_open_relay: true in the postfix role" in message
    data = fragment(role_settings(postfix_allow_open_relay=True, **overrides), CERT)
    assert data["allow_open_relay"] is True


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"postfix_submission_options": {"smtpd_client_restrictions": "permit_bogus"}},
         "postfix_submission_options: -o parameter smtpd_client_restrictions: unknown restriction 'permit_bogus'"),
        ({"postfix_smtps_options": {"mynetworks": "10.0.0.0/33"}},
         "postfix_smtps_options: -o parameter mynetworks: '10.0.0.0/33' is not a valid network"),
        ({"postfix_master_extra": [{"name": "2525", "type": "inet", "command": "smtpd",
                                    "args": ["-o", "smtpd_relay_restrictions=permit_sasl_authenticated",
                                             "-o", "smtpd_recipient_restrictions=permit_sasl_authenticated"]}]},
         "postfix_master_extra[0]: master.cf service 2525/inet: parameters smtpd_relay_restrictions and "
         "smtpd_recipient_restrictions: neither contains any of"),
        ({"postfix_master_extra": [{"name": "#2525", "type": "inet", "command": "smtpd"}]},
         "postfix_master_extra[0]: master.cf service '#2525': a service name must not contain '#'"),
        ({"postfix_master_extra": [{"name": "2525", "type": "inet", "command": "smtpd",
                                    "args": ["-o", "syslog_name=x -o smtpd_relay_restrictions=permit"]}]},
         "postfix_master_extra[0]: master.cf service 2525/inet: argument 'syslog_name=x -o "
         "smtpd_relay_restrictions=permit' contains whitespace"),
        ({"postfix_main_extra": {"smtpd_data_restrictions": "reject_bogus"}},
         "postfix_main_extra: parameter smtpd_data_restrictions: unknown restriction 'reject_bogus'"),
        ({"postfix_allow_open_relay": "yes"}, "postfix_allow_open_relay: must be true or false, got 'yes'"),
    ],
)  # fmt: skip
def test_overrides_are_validated_like_main_cf_values(overrides, named):
    assert named in error(**overrides)


def test_a_closed_relay_writes_no_opt_in():
    assert "allow_open_relay" not in fragment(role_settings(), CERT)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"postfix_tls_protocols": "!SSLv2, !TLSv9"}, "postfix_tls_protocols: '!TLSv9' is not a protocol"),
        ({"postfix_tls_protocols": ">=TLSv1.2\nx"}, "postfix_tls_protocols: 'x' is not a protocol"),
        ({"postfix_tls_protocols": ""}, "postfix_tls_protocols: must be a non-empty string"),
        ({"postfix_tls_ciphers": "export"}, "postfix_tls_ciphers: must be one of high, medium, got 'export'"),
        ({"postfix_tls_mandatory_ciphers": "null"}, "postfix_tls_mandatory_ciphers: must be one of high, medium"),
        ({"postfix_tls_exclude_ciphers": ["aNULL", "RC4 MD5"]}, "postfix_tls_exclude_ciphers[1]: 'RC4 MD5' is not one word"),
        ({"postfix_tls_ssl_options": ["NO_RENEGOTIATION\n"]}, "postfix_tls_ssl_options[0]: 'NO_RENEGOTIATION\\n' is not one word"),
        ({"postfix_tls_preempt_cipherlist": "yes"}, "postfix_tls_preempt_cipherlist: must be true or false"),
    ],
)  # fmt: skip
def test_tls_hardening_variables_are_checked(overrides, named):
    assert named in error(**overrides)


def test_tls_hardening_reaches_main_cf():
    main, _services = merged(
        fragment(role_settings(postfix_tls_protocols=">=TLSv1.3", postfix_tls_ciphers="medium"), CERT)
    )
    assert main["smtpd_tls_protocols"] == main["smtpd_tls_mandatory_protocols"] == ">=TLSv1.3"
    assert main["smtpd_tls_ciphers"] == "medium"
    assert {key: main[key] for key in TLS_HARDENING if key != "smtpd_tls_ciphers"} == {
        key: value for key, value in TLS_HARDENING.items() if key != "smtpd_tls_ciphers"
    }
