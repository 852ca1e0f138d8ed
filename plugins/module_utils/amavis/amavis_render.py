# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""amavisd-new with ClamAV and SpamAssassin: render the files from normalized settings.

``render_amavis_conf`` writes amavis's own file (Perl, loaded after Debian's ``conf.d`` files),
``set_directives`` and ``dropin_text`` the ClamAV side (directives in clamd.conf and
freshclam.conf, the systemd drop-ins that tie clamd to a user-supplied database) and
``postfix_fragment`` the Postfix fragment; ``check_other_fragments`` refuses other roles'
fragments that would let mail skip amavis. Settings are validated by :mod:`amavis_settings`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis.amavis_settings import (
    DEFAULT_CLAMD_SOCKET,
    DESTINY_KEYS,
    FRAGMENT,
    HEADER,
    LISTEN_HOST,
    LISTEN_PORT,
    MARK,
    OWNED_PARAMS,
    POSTFIX_SERVICE,
    REINJECT_PORT,
    AmavisError,
    check_path,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragments import (
    FragmentError,
    check_ownership,
    parse_fragment,
)

# -- rendering ---------------------------------------------------------------------


def perl_string(value: str) -> str:
    """A single-quoted Perl string literal (values are validated to plain characters already)."""
    if any(ch in value for ch in "\n\r\0"):
        raise AmavisError(f"{value!r} cannot be written to the Perl configuration")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def perl_number(value: int | float) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AmavisError(f"{value!r} is not a number")
    return str(value) if isinstance(value, int) else repr(float(value))


def render_amavis_conf(settings: Mapping[str, Any], clamd_socket: str = DEFAULT_CLAMD_SOCKET) -> str:
    """The text of amavis's conf.d file for normalized *settings*."""
    s = settings
    socket_path = check_path(clamd_socket, "clamd_socket") if clamd_socket != DEFAULT_CLAMD_SOCKET else clamd_socket
    lines = [
        HEADER.rstrip("\n"),
        "# Loaded after Debian's files in /usr/share/amavis/conf.d and /etc/amavis/conf.d (run-parts order).",
        "use strict;",
        "",
        "# An FQDN: amavis stops soon after it starts without one.",
        f"$myhostname = {perl_string(s['myhostname'])};",
        "# The mail domain. Debian's 20-debian_defaults built the X-Virus-Scanned header line before it was",
        "# known (05-domain_id sets no $mydomain), so the header said 'at ' and nothing more: build it again.",
        f"$mydomain = {perl_string(mydomain(s))};",
        '$X_HEADER_LINE = "Debian $myproduct_name at $mydomain";',
        f"$max_servers = {perl_number(s['max_servers'])};",
        f"$inet_socket_port = {LISTEN_PORT};",
        f"$forward_method = {perl_string(f'smtp:[{LISTEN_HOST}]:{REINJECT_PORT}')};",
        f"$notify_method = {perl_string(f'smtp:[{LISTEN_HOST}]:{REINJECT_PORT}')};",
        "",
    ]
    if s["clamav_enabled"]:
        lines += [
            "# Viruses: ClamAV's clamd only (clamscan as a backup would load the whole database per message).",
            "@bypass_virus_checks_maps = (\\%bypass_virus_checks, \\@bypass_virus_checks_acl, \\$bypass_virus_checks_re);",
            "@av_scanners = (",
            f"  ['ClamAV-clamd', \\&ask_daemon, [\"CONTSCAN {{}}\\n\", {perl_string(socket_path)}],",
            "    qr/\\bOK$/m, qr/\\bFOUND$/m, qr/^.*?: (?!Infected Archive)(.*) FOUND$/m ],",
            ");",
            "@av_scanners_backup = ();",
            "# When clamd cannot scan (stopped, or no access to amavis's files), mail waits in Postfix's queue",
            "# (a temporary failure) instead of passing unchecked.",
            "$virus_scanners_failure_is_fatal = 1;",
        ]
    else:
        lines += [
            "# Viruses: not checked (ClamAV is switched off); the anti-virus code is not even loaded.",
            "@bypass_virus_checks_maps = (1);",
            "@av_scanners = ();",
            "@av_scanners_backup = ();",
        ]
    lines.append("")
    if s["spamassassin_enabled"]:
        lines += [
            "# Spam: SpamAssassin, loaded into every amavis process.",
            "@bypass_spam_checks_maps = (\\%bypass_spam_checks, \\@bypass_spam_checks_acl, \\$bypass_spam_checks_re);",
        ]
    else:
        lines += [
            "# Spam: not checked (SpamAssassin is switched off and not loaded).",
            "@bypass_spam_checks_maps = (1);",
        ]
    lines += [
        f"$sa_tag_level_deflt = {perl_number(s['sa_tag_level_deflt'])};",
        f"$sa_tag2_level_deflt = {perl_number(s['sa_tag2_level_deflt'])};",
        f"$sa_kill_level_deflt = {perl_number(s['sa_kill_level_deflt'])};",
        f"$sa_local_tests_only = {1 if s['sa_local_tests_only'] else 0};",
        "",
        "# What happens to mail that is blocked (D_DISCARD, D_BOUNCE, D_REJECT or D_PASS).",
    ]
    lines += [f"${key} = {s[key]};" for key in DESTINY_KEYS]
    lines.append("")
    if s["quarantine_dir"]:
        lines.append(f"$QUARANTINEDIR = {perl_string(s['quarantine_dir'])};")
    else:
        lines += ["# No quarantine: blocked mail is not kept.", "$QUARANTINEDIR = undef;"]
        lines += [f"${name}_quarantine_method = undef;" for name in ("virus", "banned_files", "spam", "bad_header")]
    domains = ", ".join(perl_string("." + domain) for domain in s["local_domains"] or [mydomain(s)])
    lines += ["# Recipients whose mail gets spam headers (these domains and their subdomains).",
              f"@local_domains_acl = ( {domains} );"]  # fmt: skip
    lines += ["", "1;  # ensure a defined return", ""]
    return "\n".join(lines)


def mydomain(settings: Mapping[str, Any]) -> str:
    """amavis's $mydomain: the host name without its first label (as Postfix derives it)."""
    return settings["myhostname"].split(".", 1)[1]


def set_directives(text: str, directives: Mapping[str, Sequence[str] | None]) -> str:
    """Set ClamAV configuration directives (``Name value`` lines) in *text*.

    Every line of a directive named in *directives* is removed; the values given (None or an
    empty list removes the directive) go at the end, below MARK. Other lines stay as they are, so
    the package's own settings (and debconf's) are kept. Applying the same directives again
    returns the same text.
    """
    kept = []
    for line in text.splitlines():
        words = line.split(None, 1)
        if line.strip() == MARK or (words and words[0] in directives):
            continue
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    ours = [f"{name} {value}" for name, values in directives.items() for value in (values or ())]
    for line in ours:
        if any(ch in line for ch in "\n\r\0"):
            raise AmavisError(f"{line!r} cannot be written to a ClamAV configuration file")
    if ours:
        kept += ["", MARK, *ours]
    return "\n".join(kept) + "\n" if kept else ""


def dropin_text(condition_path: str) -> str:
    return (
        HEADER + "# clamd starts only with the database of the signature files (freshclam is masked).\n"
        "[Unit]\n"
        "ConditionPathExistsGlob=\n"
        f"ConditionPathExists={condition_path}\n"
    )


def database_files(directory: str) -> dict[str, tuple[str, ...]]:
    """The official databases clamd's units wait for: {name: the files that count (any one)}."""
    return {
        name: tuple(os.path.join(directory, f"{name}.{ext}") for ext in ("cvd", "cld", "inc"))
        for name in ("main", "daily")
    }


# -- the Postfix side --------------------------------------------------------------------------------


def postfix_fragment(settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fragment for postfix_config, or None (the fragment is removed) when the role is off.

    Mail goes to amavis through ``content_filter`` (after the queue) and, with ``before_queue``,
    also through ``smtpd_proxy_filter`` for everything smtpd receives, so that a D_REJECT reaches
    the client at the end of DATA. amavis hands the mail back to the 127.0.0.1:10025 smtpd, which
    must neither filter it again nor check it again.
    """
    if not settings["enabled"]:
        return None
    target = f"[{LISTEN_HOST}]:{LISTEN_PORT}"
    main: dict[str, Any] = {"content_filter": f"{POSTFIX_SERVICE}:{target}"}
    if settings["postfix_filter"] == "before_queue":
        main["smtpd_proxy_filter"] = target
        main["smtpd_proxy_options"] = "speed_adjust"
    reinject_options = {
        "syslog_name": "postfix/amavis-reinject",
        "content_filter": "",
        "smtpd_proxy_filter": "",
        "local_recipient_maps": "",
        "relay_recipient_maps": "",
        "smtpd_restriction_classes": "",
        "smtpd_delay_reject": "no",
        "smtpd_client_restrictions": "permit_mynetworks,reject",
        "smtpd_helo_restrictions": "",
        "smtpd_sender_restrictions": "",
        "smtpd_recipient_restrictions": "permit_mynetworks,reject",
        "smtpd_relay_restrictions": "permit_mynetworks,reject",
        "smtpd_data_restrictions": "reject_unauth_pipelining",
        "smtpd_end_of_data_restrictions": "",
        "smtpd_sasl_auth_enable": "no",
        "mynetworks": "127.0.0.0/8",
        "smtpd_error_sleep_time": "0",
        "smtpd_soft_error_limit": "1001",
        "smtpd_hard_error_limit": "1000",
        "smtpd_client_connection_count_limit": "0",
        "smtpd_client_connection_rate_limit": "0",
        "receive_override_options": "no_header_body_checks,no_unknown_recipient_checks,no_milters",
        "smtpd_authorized_xforward_hosts": "127.0.0.0/8",
    }
    client_options = {
        "smtp_data_done_timeout": "1200",
        "smtp_send_xforward_command": "yes",
        # disable_dns_lookups=yes in older guides; Postfix 3.10 warns that it goes away.
        "smtp_dns_support_level": "disabled",
        "max_use": "20",
    }

    def args(options: Mapping[str, str]) -> list[str]:
        return [item for name, value in options.items() for item in ("-o", f"{name}={value}")]

    return {
        "main": main,
        # Only this fragment may route mail to (or around) amavis: no other role's variables may set
        # these parameters, pass them as -o to a service, or replace the client and re-injection services.
        "owns": list(OWNED_PARAMS),
        "master_owns": [f"{POSTFIX_SERVICE}/unix", f"{LISTEN_HOST}:{REINJECT_PORT}/inet"],
        "master": [
            {"name": POSTFIX_SERVICE, "type": "unix", "private": "-", "unpriv": "-", "chroot": "n", "wakeup": "-",
             "maxproc": str(settings["max_servers"]), "command": "smtp", "args": args(client_options)},
            {"name": f"{LISTEN_HOST}:{REINJECT_PORT}", "type": "inet", "private": "n", "unpriv": "-", "chroot": "n",
             "wakeup": "-", "maxproc": "-", "command": "smtpd", "args": args(reinject_options)},
        ],
    }  # fmt: skip


def check_other_fragments(fragment: Mapping[str, Any], texts: Mapping[str, str | None]) -> None:
    """Refuse the Postfix fragments *texts* (name -> text, as postfix_config's fragment_texts) that touch what *fragment* owns.

    The merge in postfix_config refuses them too, but only when the amavis role's last call
    reaches the host, after amavis_config changed it; with the texts the postfix role's call
    found earlier in the play, the role fails before any change.
    """
    try:
        others = [(name, parse_fragment(name, text)) for name, text in texts.items() if text and name != FRAGMENT]
        check_ownership(sorted([*others, (FRAGMENT, dict(fragment))]))
    except FragmentError as exc:
        raise AmavisError(
            f"amavis_enabled: another role's Postfix fragment would let mail skip amavis: {exc}"
        ) from None
