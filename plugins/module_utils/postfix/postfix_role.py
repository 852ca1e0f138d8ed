# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The postfix role's configuration, checked and built in one Python pass.

The role hands its variables over as one mapping (``__postfix_settings`` in the role's
``vars/main.yml``), keyed by the variables' own names, so that every error names the
variable (``postfix_maps[1].entries[0].key``).  :func:`check` collects every problem and
raises them together; :func:`fragment` returns the role's fragment for ``postfix_config``
(``10-postfix.json``) and :func:`tables` the text of the lookup tables it writes.

The RBL zones are not spliced into ``smtpd_recipient_restrictions`` here: the fragment asks
for them through its ``insert`` operation, the same one other roles use (the SPF policy), and
:func:`check` applies that insertion to the validated list with the merger's own
``apply_insert`` so that a problem is reported before anything on the host changes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis import amavis_settings as _amavis
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import (
    POSTFIX_RESERVED,
    POSTFIX_RESERVED_SUFFIXES,
    PathPolicyError,
    check_paths,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate import is_fqdn, kind
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragment_names import fragment_name
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragments import (
    FragmentError,
    apply_insert,
    check_fragment,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_inbound import judge_inbound
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_networks import validate_cidr_list
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_postscreen import (
    SUBMISSION_EXEMPT,
    Screen,
    check_screen,
    check_zone,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_relay import (
    OPT_IN_HINT,
    RelayJudge,
    is_loopback_service,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_restrictions import (
    validate_relay_protection,
    validate_restrictions,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import (
    MasterService,
    PostfixSyntaxError,
    PostfixValidationError,
    pattern_key,
    render_aliases,
    render_pattern_table,
    render_table,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_tables import find_table_refs
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_validate import (
    auth_tls_problems,
    check_params,
)

#: The file name of the role's fragment in the fragment directory.
FRAGMENT_NAME = fragment_name("postfix")
#: Table types of postfix_maps (the postmap module compiles the indexed ones and only writes the rest).
MAP_TYPES = ("hash", "lmdb", "cdb", "btree", "regexp", "pcre", "cidr", "texthash")
PATTERN_TYPES = ("regexp", "pcre")
#: The anchor the RBL entries are inserted after (when the list has it; at the end otherwise).
RBL_ANCHOR = "reject_unauth_destination"
RECIPIENT_PARAM = "smtpd_recipient_restrictions"
#: Role variable -> main.cf parameter of the restriction lists.
RESTRICTION_VARS = {
    "postfix_client_restrictions": "smtpd_client_restrictions",
    "postfix_helo_restrictions": "smtpd_helo_restrictions",
    "postfix_sender_restrictions": "smtpd_sender_restrictions",
    "postfix_relay_restrictions": "smtpd_relay_restrictions",
    "postfix_recipient_restrictions": RECIPIENT_PARAM,
}
SMTPD_TLS_LEVELS = ("may", "encrypt")
#: Cipher grades of smtpd_tls_ciphers / smtpd_tls_mandatory_ciphers that keep TLS worth having.
TLS_CIPHER_GRADES = ("high", "medium")
#: Protocol names Postfix knows in *_tls_protocols.
TLS_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_TLS_PROTOCOL_RE = re.compile(r"(?P<op>!|>=|<=)?(?P<name>[A-Za-z0-9.]+)")
_CIPHER_WORD_RE = re.compile(r"[A-Za-z0-9+_.-]+")
_SSL_OPTION_RE = re.compile(r"[A-Z0-9_]+|0x[0-9a-fA-F]+")
RELAY_TLS_LEVELS = ("", "none", "may", "encrypt", "verify", "secure")

#: Names a table of postfix_maps must not take: Postfix's own files, the role's own tables and fragments.
RESERVED_NAMES = POSTFIX_RESERVED | {"header_checks", "body_checks", "sender_relayhost"}
RESERVED_SUFFIXES = POSTFIX_RESERVED_SUFFIXES
_ENTRY_PREFIX_RE = re.compile(r"^table entry 0( \(.*?\))?: ", re.DOTALL)
_MAP_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+\Z")
_RELAYHOST_RE = re.compile(r"^(\[[A-Za-z0-9.:-]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?\Z")
_SENDER_RE = re.compile(r"^[^@\s]*@[^@\s]+\Z")
_MODE_RE = re.compile(r"^0?[0-7]{3}\Z")
_COMPATIBILITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?\Z")
_TRUSTED_POLICY_RE = re.compile(r"^inet:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[A-Za-z0-9_-]+\Z")

#: Every key the settings mapping must have: the role's variables and the internal values.
REQUIRED = (
    "postfix_config_dir",
    "postfix_fragment_dir",
    "postfix_tls_selfsigned_dir",
    "postfix_tls_cert_file",
    "postfix_tls_key_file",
    "postfix_myhostname",
    "postfix_mydomain",
    "postfix_myorigin",
    "postfix_inet_interfaces",
    "postfix_inet_protocols",
    "postfix_mydestination",
    "postfix_mynetworks",
    "postfix_mynetworks_style",
    "postfix_relay_domains",
    "postfix_home_mailbox",
    "postfix_mailbox_size_limit",
    "postfix_message_size_limit",
    "postfix_smtpd_banner",
    "postfix_disable_vrfy_command",
    "postfix_smtpd_helo_required",
    "postfix_chroot",
    *RESTRICTION_VARS,
    "postfix_rbl_zones",
    "postfix_postscreen_enabled",
    "postfix_postscreen_dnsbl_sites",
    "postfix_postscreen_dnsbl_threshold",
    "postfix_client_connection_rate_limit",
    "postfix_client_message_rate_limit",
    "postfix_recipient_limit",
    "postfix_anvil_rate_time_unit",
    "postfix_restriction_classes",
    "postfix_maps",
    "postfix_checks_type",
    "postfix_header_checks",
    "postfix_body_checks",
    "postfix_strip_received_networks",
    "postfix_aliases",
    "postfix_root_alias",
    "postfix_submission_enabled",
    "postfix_smtps_enabled",
    "postfix_submission_options",
    "postfix_smtps_options",
    "postfix_tls_enabled",
    "postfix_smtpd_tls_security_level",
    "postfix_tls_protocols",
    "postfix_tls_ciphers",
    "postfix_tls_mandatory_ciphers",
    "postfix_tls_exclude_ciphers",
    "postfix_tls_preempt_cipherlist",
    "postfix_tls_ssl_options",
    "postfix_relayhost",
    "postfix_relay_credentials",
    "postfix_relay_password_map",
    "postfix_relay_tls_security_level",
    "postfix_relay_tls_wrappermode",
    "postfix_sender_dependent_relayhosts",
    "postfix_main_extra",
    "postfix_master_extra",
    "postfix_allow_open_relay",
    "postfix_trusted_policy_services",
    "__postfix_compatibility_level",
    "__postfix_master_services",
    "__postfix_table_packages",
)


class PostfixRoleError(ValueError):
    """One or more of the role's variables are invalid; the message lists every problem."""


def _list(settings: Mapping[str, Any], name: str, errors: list[str]) -> list[Any]:
    value = settings[name]
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        errors.append(f"{name}: expected a list, got {kind(value)}")
        return []
    return list(value)


def _dict(settings: Mapping[str, Any], name: str, errors: list[str]) -> dict[str, Any]:
    value = settings[name]
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errors.append(f"{name}: expected a dictionary, got {kind(value)}")
        return {}
    return dict(value)


def _entries(settings: Mapping[str, Any], name: str, errors: list[str]) -> list[tuple[str, Mapping[str, Any]]]:
    """The dict items of list variable *name*, each with its path (``name[i]``)."""
    result = []
    for index, item in enumerate(_list(settings, name, errors)):
        path = f"{name}[{index}]"
        if isinstance(item, Mapping):
            result.append((path, item))
        else:
            errors.append(f"{path}: expected a dictionary, got {kind(item)}")
    return result


def _text(entry: Mapping[str, Any], key: str, path: str, errors: list[str], secret: bool = False) -> str:
    """A required non-empty single-line string field (a secret is never echoed)."""
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        errors.append(f"{path}.{key}: required, a non-empty string")
        return ""
    value = str(value)
    if "\n" in value or "\r" in value:
        shown = "" if secret else f" ({value!r})"
        errors.append(f"{path}.{key}: contains a line break{shown}")
        return ""
    return value


def _mode(value: Any, path: str, errors: list[str]) -> str:
    """A file mode as a string ("0644"); an int is an octal mode that YAML already parsed."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
        return f"{value:04o}"
    if isinstance(value, str) and _MODE_RE.match(value):
        return value if len(value) == 4 else f"0{value}"
    errors.append(f"{path}: must be a file mode such as '0644', got {value!r}")
    return "0644"


def _attempt(errors: list[str], func: Callable[..., Any], *args: Any, name: str = "") -> Any:
    """Run a validator; record its error (prefixed with *name* unless it names it) and return None."""
    try:
        return func(*args)
    except (PostfixSyntaxError, PostfixValidationError, FragmentError) as exc:
        message = str(exc)
        errors.append(message if not name or name in message else f"{name}: {message}")
        return None


class Checked:
    """The settings after :func:`check`: normalized lists, and every table's entries."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings
        self.mynetworks: list[str] = []
        self.restrictions: dict[str, list[str]] = {}
        self.rbl: list[str] = []
        self.rbl_zones: list[str] = []
        self.screen = Screen()
        self.class_restrictions: dict[str, list[str]] = {}
        self.maps: list[dict[str, Any]] = []
        self.header_checks: list[list[str]] = []
        self.body_checks: list[list[str]] = []
        self.aliases: dict[str, Any] = {}
        self.sender_relayhosts: list[list[str]] = []
        self.relay_credentials: list[list[str]] = []
        self.master: list[dict[str, Any]] = []
        self.master_origin: list[str] = []
        self.trusted_policy_services: list[str] = []
        #: Legitimate choices that must not be silent (the filter plugin shows them).
        self.warnings: list[str] = []
        #: Settings that would route mail around amavis: refused while its fragment is on the host.
        self.amavis_conflicts: list[str] = []

    def __getitem__(self, name: str) -> Any:
        return self.settings[name]

    @property
    def rbl_insert(self) -> list[dict[str, Any]]:
        """The fragment's ``insert`` entries: the RBL checks after the anchor, or at the end without one."""
        if not self.rbl:
            return []
        insert: dict[str, Any] = {"param": RECIPIENT_PARAM, "values": list(self.rbl)}
        if RBL_ANCHOR in self.restrictions[RECIPIENT_PARAM]:
            insert["after"] = RBL_ANCHOR
        return [insert]


def _check_identity(c: Checked, errors: list[str]) -> None:
    hostname = c["postfix_myhostname"]
    if not is_fqdn(hostname):
        errors.append(
            f"postfix_myhostname must be a fully qualified domain name such as mail.example.com (got {hostname!r}); "
            "set it, or give the host an FQDN"
        )
    if not isinstance(c["postfix_mydomain"], str) or not c["postfix_mydomain"]:
        errors.append("postfix_mydomain must not be empty")
    level = c["__postfix_compatibility_level"]
    if not isinstance(level, str) or not _COMPATIBILITY_RE.match(level):
        errors.append(f"__postfix_compatibility_level must look like 3.6, got {level!r}")


def _check_limits(c: Checked, errors: list[str]) -> None:
    try:
        mailbox = int(c["postfix_mailbox_size_limit"])
        message = int(c["postfix_message_size_limit"])
    except (TypeError, ValueError):
        errors.append("postfix_mailbox_size_limit and postfix_message_size_limit must be numbers of bytes")
        return
    if mailbox != 0 and mailbox < message:
        errors.append(
            f"postfix_mailbox_size_limit ({mailbox}) must be 0 (unlimited) or at least "
            f"postfix_message_size_limit ({message})"
        )


def _check_restrictions(c: Checked, errors: list[str]) -> None:
    classes = _dict(c.settings, "postfix_restriction_classes", errors)
    names = list(classes)
    c.mynetworks = (
        _attempt(errors, validate_cidr_list, "postfix_mynetworks", _list(c.settings, "postfix_mynetworks", errors))
        or []
    )
    for variable, param in RESTRICTION_VARS.items():
        items = _list(c.settings, variable, errors)
        c.restrictions[param] = _attempt(errors, validate_restrictions, variable, items, names) or []
        _check_inline_filters(c, variable, c.restrictions[param], errors)
    for class_name, items in classes.items():
        name = f"postfix_restriction_classes.{class_name}"
        c.class_restrictions[class_name] = _attempt(errors, validate_restrictions, name, items, names) or []
        _check_inline_filters(c, name, c.class_restrictions[class_name], errors)
    zones = _list(c.settings, "postfix_rbl_zones", errors)
    checked_zones = [check_zone(zone, f"postfix_rbl_zones[{index}]", errors) for index, zone in enumerate(zones)]
    c.rbl_zones = [zone for zone in checked_zones if zone is not None]
    rbl = [f"reject_rbl_client {zone}" for zone in c.rbl_zones]
    checked = _attempt(errors, validate_restrictions, "postfix_rbl_zones", rbl) if rbl else []
    if checked is None:
        return
    c.rbl = checked
    # The list main.cf will have once postfix_config has applied the fragment's insert.
    recipient = {RECIPIENT_PARAM: list(c.restrictions[RECIPIENT_PARAM])}
    try:
        for insert in c.rbl_insert:
            apply_insert(FRAGMENT_NAME, recipient, insert)
    except FragmentError as exc:
        errors.append(f"postfix_rbl_zones: {exc}")
        return
    _attempt(
        errors,
        validate_restrictions,
        "postfix_recipient_restrictions (with postfix_rbl_zones inserted)",
        recipient[RECIPIENT_PARAM],
        names,
    )
    # An entry before the RBL checks that permits every outside client: they would never see inbound mail.
    errors.extend(
        judge_inbound(recipient, where="postfix_recipient_restrictions (with postfix_rbl_zones inserted): ")[0]
    )


_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ipv6:::1")
_AMAVIS_HINT = (
    f"refused while the amavis role is on (its fragment {_amavis.FRAGMENT} owns the content filter); "
    "set amavis_enabled: false first if this is meant"
)


def _loopback_port(destination: str) -> int | None:
    """The port of a FILTER destination on this host (``[127.0.0.1]:10025``, ``inet:localhost:10025``), or None."""
    text = destination.strip().lower()
    text = text.removeprefix("inet:")
    if text.startswith("["):
        host, _bracket, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _colon, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    if not port.isdigit():
        return None
    host = host.removeprefix("ipv6:")
    if host not in _LOOPBACK_NAMES:
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return None
        except ValueError:
            return None
    return int(port)


def _check_filter_action(c: Checked, where: str, action: Any, errors: list[str]) -> None:
    """A ``FILTER transport:destination`` result (header/body checks, access tables) that skips amavis.

    FILTER replaces main.cf's content_filter for the message it matches. To amavis's re-injection
    listener it is refused outright (that smtpd takes mail back without a check); to any other
    destination but amavis itself it is refused while the amavis role is on.
    """
    if not isinstance(action, str):
        return
    words = action.strip().split(None, 1)
    if not words or words[0].upper() != "FILTER":
        return
    target = words[1].strip() if len(words) > 1 else ""
    transport, colon, destination = target.partition(":")
    if not transport or not colon or any(ch.isspace() for ch in target):
        errors.append(
            f"{where}: FILTER needs one transport:destination (such as smtp:[10.0.0.5]:10026), got {target!r}"
        )
        return
    port = _loopback_port(destination)
    if port == _amavis.REINJECT_PORT:
        errors.append(
            f"{where}: FILTER {target} sends mail to amavis's re-injection listener "
            f"({_amavis.LISTEN_HOST}:{_amavis.REINJECT_PORT}), which takes mail back without a virus or spam check: "
            "any sender could skip the content filter"
        )
    elif port != _amavis.LISTEN_PORT:
        c.amavis_conflicts.append(
            f"{where}: FILTER {target} sends the mail it matches to {target} instead of amavis, "
            f"so a sender could skip the virus check; {_AMAVIS_HINT}"
        )


_INLINE_FILTER_RE = re.compile(r"(?i)(?<![A-Za-z0-9_])FILTER\s+([^\s,}]+)")


def _check_inline_filters(c: Checked, variable: str, entries: list[str], errors: list[str]) -> None:
    """The FILTER results of ``static:`` and ``inline:`` tables written into a restriction list."""
    for entry in entries:
        for ref in find_table_refs(entry):
            if ref.type in ("static", "inline"):
                for target in _INLINE_FILTER_RE.findall(ref.name):
                    _check_filter_action(c, f"{variable}: '{entry}'", f"FILTER {target}", errors)


def _check_maps(c: Checked, errors: list[str]) -> None:
    seen: dict[str, str] = {}
    for path, item in _entries(c.settings, "postfix_maps", errors):
        unknown = sorted(set(item) - {"name", "type", "entries", "mode"})
        if unknown:
            errors.append(f"{path}: unknown keys {', '.join(map(str, unknown))} (known: name, type, entries, mode)")
        name = item.get("name")
        if not isinstance(name, str) or not _MAP_NAME_RE.match(name):
            errors.append(f"{path}.name: must be a plain file name (letters, digits, _ . -), got {name!r}")
            continue
        if name in RESERVED_NAMES or name.startswith(".") or name.endswith(RESERVED_SUFFIXES):
            errors.append(
                f"{path}.name: {name!r} is one of Postfix's own files, a compiled table or a hidden file; "
                "give the table a name of its own"
            )
            continue
        if name in seen:
            errors.append(f"{path}.name: '{name}' is also the name of {seen[name]}")
            continue
        seen[name] = path
        table_type = item.get("type", "hash")
        if table_type not in MAP_TYPES:
            errors.append(f"{path}.type: must be one of {', '.join(MAP_TYPES)}, got {table_type!r}")
            continue
        renderer = (lambda p, t=table_type: render_pattern_table(p, t)) if table_type in PATTERN_TYPES else render_table
        pairs = []
        bad_entry = False
        for index, entry in enumerate(item.get("entries") or []):
            where = f"{path}.entries[{index}]"
            if not isinstance(entry, Mapping) or set(entry) != {"key", "value"}:
                errors.append(f"{where}: must have exactly the keys key and value, got {entry!r}")
                continue
            pair = [entry["key"], entry["value"]]
            try:
                renderer([pair])
            except PostfixSyntaxError as exc:
                # "table entry 0 (key): ..." of the one-entry table becomes the entry's own path.
                errors.append(f"{where}: {_ENTRY_PREFIX_RE.sub('', str(exc))}")
                bad_entry = True
                continue
            _check_filter_action(c, f"{where}.value", entry["value"], errors)
            pairs.append(pair)
        if not isinstance(item.get("entries", []), (list, tuple)):
            errors.append(f"{path}.entries: expected a list of key/value entries")
        if bad_entry:
            continue
        text = _attempt(errors, renderer, pairs, name=path)
        if text is None:
            continue
        c.maps.append(
            {
                "name": name,
                "path": f"{c['postfix_config_dir']}/{name}",
                "type": table_type,
                "mode": _mode(item.get("mode", "0644"), f"{path}.mode", errors),
                "text": text,
                "origin": path,
            }
        )


def _check_rules(c: Checked, variable: str, errors: list[str]) -> list[list[str]]:
    table_type = c["postfix_checks_type"]
    rules = []
    for path, rule in _entries(c.settings, variable, errors):
        unknown = sorted(set(rule) - {"pattern", "action", "flags"})
        if unknown:
            errors.append(f"{path}: unknown keys {', '.join(map(str, unknown))} (known: pattern, action, flags)")
        key = _attempt(errors, pattern_key, rule.get("pattern"), rule.get("flags", ""), table_type, name=path)
        action = _text(rule, "action", path, errors)
        if action:
            _check_filter_action(c, f"{path}.action", action, errors)
        if key and action:
            rules.append([key, action])
    return rules


def _check_checks(c: Checked, errors: list[str]) -> None:
    if c["postfix_checks_type"] not in PATTERN_TYPES:
        errors.append(f"postfix_checks_type: must be regexp or pcre, got {c['postfix_checks_type']!r}")
        return
    c.header_checks = _check_rules(c, "postfix_header_checks", errors)
    c.body_checks = _check_rules(c, "postfix_body_checks", errors)
    for index, item in enumerate(_list(c.settings, "postfix_strip_received_networks", errors)):
        # An unquoted 10. is the number 10.0 in YAML; Jinja used its text, and so do we.
        prefix = str(item) if isinstance(item, (int, float)) and not isinstance(item, bool) else item
        if not isinstance(prefix, str) or not prefix.strip() or any(ch.isspace() for ch in prefix):
            errors.append(f"postfix_strip_received_networks[{index}]: {prefix!r} is not an address prefix")
            continue
        key = pattern_key("^Received:.*[[( ]" + re.escape(prefix), "", c["postfix_checks_type"])
        c.header_checks.append([key, "IGNORE"])


def _check_aliases(c: Checked, errors: list[str]) -> None:
    aliases = _dict(c.settings, "postfix_aliases", errors)
    root = c["postfix_root_alias"]
    if root:
        if _attempt(errors, render_aliases, {"root": root}, name="postfix_root_alias") is None:
            return
        aliases["root"] = root
    if _attempt(errors, render_aliases, aliases, name="postfix_aliases") is not None:
        c.aliases = aliases


def _tls_protocol_tokens(value: Any, errors: list[str]) -> None:
    """postfix_tls_protocols: ``!SSLv2, !SSLv3, ...`` or ``>=TLSv1.2`` (Postfix 3.6), only known names."""
    if not isinstance(value, str) or not value.strip():
        errors.append(f"postfix_tls_protocols: must be a non-empty string such as '>=TLSv1.2', got {value!r}")
        return
    for token in re.split(r"[\s,:]+", value.strip()):
        match = _TLS_PROTOCOL_RE.fullmatch(token)
        if not match or match.group("name") not in TLS_PROTOCOLS:
            errors.append(
                f"postfix_tls_protocols: {token!r} is not a protocol ({', '.join(TLS_PROTOCOLS)}, "
                "each optionally with !, >= or <=)"
            )


def _check_tls_hardening(c: Checked, errors: list[str]) -> None:
    _tls_protocol_tokens(c["postfix_tls_protocols"], errors)
    for variable in ("postfix_tls_ciphers", "postfix_tls_mandatory_ciphers"):
        if c[variable] not in TLS_CIPHER_GRADES:
            errors.append(f"{variable}: must be one of {', '.join(TLS_CIPHER_GRADES)}, got {c[variable]!r}")
    for variable, word_re in (
        ("postfix_tls_exclude_ciphers", _CIPHER_WORD_RE),
        ("postfix_tls_ssl_options", _SSL_OPTION_RE),
    ):
        for index, item in enumerate(_list(c.settings, variable, errors)):
            if not isinstance(item, str) or not word_re.fullmatch(item):
                errors.append(
                    f"{variable}[{index}]: {item!r} is not one word such as {'aNULL' if 'cipher' in variable else 'NO_RENEGOTIATION'}"
                )
    if not isinstance(c["postfix_tls_preempt_cipherlist"], bool):
        errors.append(
            f"postfix_tls_preempt_cipherlist: must be true or false, got {c['postfix_tls_preempt_cipherlist']!r}"
        )


def _check_tls(c: Checked, errors: list[str]) -> None:
    _check_tls_hardening(c, errors)
    if c["postfix_tls_enabled"] and c["postfix_smtpd_tls_security_level"] not in SMTPD_TLS_LEVELS:
        errors.append(
            "postfix_smtpd_tls_security_level must be 'may' or 'encrypt' "
            f"(got {c['postfix_smtpd_tls_security_level']!r})"
        )
    if not c["postfix_tls_enabled"] and (c["postfix_submission_enabled"] or c["postfix_smtps_enabled"]):
        errors.append(
            "postfix_tls_enabled must be true while postfix_submission_enabled or postfix_smtps_enabled is "
            "(SMTP AUTH is never offered without TLS)"
        )


def _check_relay(c: Checked, errors: list[str]) -> None:
    relayhost = c["postfix_relayhost"]
    if relayhost and (not isinstance(relayhost, str) or not _RELAYHOST_RE.match(relayhost)):
        errors.append(f"postfix_relayhost must look like host, [host] or [host]:port (got {relayhost!r})")
    relayhosts = [relayhost] if relayhost else []
    named_hosts = [("postfix_relayhost", relayhost)] if relayhost else []
    for path, entry in _entries(c.settings, "postfix_sender_dependent_relayhosts", errors):
        sender = _text(entry, "sender", path, errors)
        host = _text(entry, "relayhost", path, errors)
        if sender and not _SENDER_RE.match(sender):
            errors.append(f"{path}.sender must look like user@domain or @domain (got {sender!r})")
        elif host and not _RELAYHOST_RE.match(host):
            errors.append(f"{path}.relayhost must look like host, [host] or [host]:port (got {host!r})")
        elif sender and host:
            c.sender_relayhosts.append([sender, host])
            relayhosts.append(host)
            named_hosts.append((f"{path}.relayhost", host))
    _check_wrappermode(c, named_hosts, errors)
    _attempt(errors, render_table, c.sender_relayhosts, name="postfix_sender_dependent_relayhosts")
    for path, cred in _entries(c.settings, "postfix_relay_credentials", errors):
        host = _text(cred, "relayhost", path, errors)
        username = _text(cred, "username", path, errors, secret=True)
        password = _text(cred, "password", path, errors, secret=True)
        if host and host not in relayhosts:
            errors.append(
                f"{path}.relayhost '{host}' must be postfix_relayhost or one of postfix_sender_dependent_relayhosts "
                "(Postfix looks the credentials up by that exact string)"
            )
        elif host and username and password and _credentials_fit(path, username, password, errors):
            c.relay_credentials.append([host, f"{username}:{password}"])
    level = c["postfix_relay_tls_security_level"]
    if level not in RELAY_TLS_LEVELS:
        errors.append(f"postfix_relay_tls_security_level must be one of {', '.join(map(repr, RELAY_TLS_LEVELS))}")
    elif c["postfix_relay_credentials"] and level in ("none", "may"):
        errors.append(
            f"postfix_relay_tls_security_level '{level}' would let the relay password in postfix_relay_credentials "
            "travel in clear; use encrypt (the default), verify or secure"
        )


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _credentials_fit(path: str, username: str, password: str, errors: list[str]) -> bool:
    """Whether the SASL password map's ``relayhost username:password`` line can hold them (never echoed).

    Postfix splits the value at the first ':' and postmap drops the whitespace around it.
    """
    fits = True
    if ":" in username or _CONTROL_RE.search(username) or username != username.strip():
        errors.append(
            f"{path}.username: contains ':', a control character or leading/trailing whitespace, which the SASL "
            "password map cannot hold (Postfix splits username:password at the first ':')"
        )
        fits = False
    if _CONTROL_RE.search(password) or password != password.rstrip():
        errors.append(
            f"{path}.password: contains a control character or ends with whitespace, which the SASL password map "
            "cannot hold (postmap drops the whitespace at the end of a line)"
        )
        fits = False
    return fits


def _check_wrappermode(c: Checked, named_hosts: list[tuple[str, Any]], errors: list[str]) -> None:
    """smtp_tls_wrappermode holds for every SMTP client connection: every relay host must be on 465."""
    if c["postfix_relay_tls_wrappermode"] is not True:
        return
    if not c["postfix_relayhost"]:
        errors.append(
            "postfix_relay_tls_wrappermode is true but postfix_relayhost is empty: Postfix would start TLS at the "
            "first byte with every MX on port 25, which none accepts; set postfix_relayhost to the provider's "
            "[host]:465"
        )
    for variable, host in named_hosts:
        match = _RELAYHOST_RE.match(host) if isinstance(host, str) else None
        if match and (match.group(2) or ":25") != ":465":
            errors.append(
                f"{variable} '{host}' is not on port 465: postfix_relay_tls_wrappermode (smtp_tls_wrappermode) "
                "applies to every SMTP connection Postfix makes, so every relay host must be a [host]:465 that "
                "speaks TLS from the first byte"
            )


def _check_screen(c: Checked, errors: list[str]) -> None:
    c.screen = check_screen(c.settings, c.rbl_zones, errors)


def _mua_service(name: str, options: Mapping[str, Any], chroot: bool) -> dict[str, Any]:
    # Authenticated users are not rate-limited (password guessing is for fail2ban); their own options win.
    merged = {**SUBMISSION_EXEMPT, **options, "smtpd_sasl_auth_enable": "$postmaster_mua_sasl_auth_enable"}
    args: list[str] = []
    for key in sorted(merged):
        value = merged[key]
        args += ["-o", f"{key}={value}"]
    return {
        "name": name,
        "type": "inet",
        "private": "n",
        "unpriv": "-",
        "chroot": "y" if chroot else "n",
        "wakeup": "-",
        "maxproc": "-",
        "command": "smtpd",
        "args": args,
    }


def _owned_hint(param: str) -> str:
    return f"{param} routes mail to (or around) a content filter; {_AMAVIS_HINT}"


def _check_extra_service(c: Checked, path: str, service: MasterService, errors: list[str]) -> None:
    """An extra service may not take over amavis's; an extra smtpd from outside is worth a warning."""
    if service.key in (f"{_amavis.POSTFIX_SERVICE}/unix", f"{_amavis.LISTEN_HOST}:{_amavis.REINJECT_PORT}/inet"):
        errors.append(
            f"{path}: master.cf service {service.key} is the amavis role's (its client or its re-injection "
            "listener); give the service another name"
        )
        return
    try:
        options = service.options()
    except PostfixSyntaxError:
        return  # reported with the other -o checks
    for key in options:
        if key in _amavis.OWNED_PARAMS:
            c.amavis_conflicts.append(f"{path}: -o {_owned_hint(key)}")
    if (
        service.command == "smtpd"
        and service.type in ("inet", "pass")
        and not is_loopback_service(service)
        and not set(options) & set(_amavis.OWNED_PARAMS)
    ):
        c.warnings.append(
            f"{path}: master.cf service {service.key} is one more smtpd that takes mail from outside, without a "
            "content filter of its own: its mail is scanned only while the amavis role is on (main.cf's "
            "content_filter), and is delivered unscanned otherwise"
        )


def _check_master(c: Checked, errors: list[str]) -> None:
    chroot = bool(c["postfix_chroot"])
    services = []
    origins = []
    for path, service in _entries(c.settings, "__postfix_master_services", errors):
        stock = {**service, "chroot": service.get("chroot", "-") if chroot else "n"}
        # postscreen answers port 25 in front of smtpd (and brings its helpers) when it is on.
        for item in c.screen.master([stock], chroot):
            services.append(item)
            origins.append(path if item["command"] == stock.get("command") else "postfix_postscreen_enabled")
    for name, enabled, variable in (
        ("submission", c["postfix_submission_enabled"], "postfix_submission_options"),
        ("smtps", c["postfix_smtps_enabled"], "postfix_smtps_options"),
    ):
        options = _dict(c.settings, variable, errors)
        for key, value in options.items():
            if not re.match(r"^[A-Za-z0-9_]+\Z", str(key)) or not isinstance(value, (str, int, bool)):
                errors.append(f"{variable}.{key}: an -o option needs a parameter name and a string value")
            elif isinstance(value, str) and any(ch.isspace() for ch in value):
                errors.append(f"{variable}.{key}: the value {value!r} contains whitespace")
            elif key in _amavis.OWNED_PARAMS:
                c.amavis_conflicts.append(f"{variable}.{key}: {_owned_hint(key)}")
        if enabled:
            services.append(_mua_service(name, options, chroot))
            origins.append(variable)
    for path, service in _entries(c.settings, "postfix_master_extra", errors):
        parsed = _attempt(errors, MasterService.from_dict, service, name=path)
        if parsed is not None:
            services.append(dict(service))
            origins.append(path)
            _check_extra_service(c, path, parsed, errors)
    keys: dict[str, int] = {}
    for index, service in enumerate(services):
        key = f"{service.get('name')}/{service.get('type')}"
        if key in keys:
            errors.append(
                f"postfix_master_extra: master.cf service {key} is already defined by the role "
                "(postfix_submission_enabled, postfix_smtps_enabled or Debian's stock services)"
            )
        keys[key] = index
    c.master = services
    c.master_origin = origins


#: Where the relay check reads the role's variables from, for the error messages.
_MAIN_RELAY_VARS = {
    "mynetworks": "postfix_mynetworks",
    "relay_domains": "postfix_relay_domains",
    "smtpd_relay_restrictions": "postfix_relay_restrictions",
    "smtpd_recipient_restrictions": "postfix_recipient_restrictions",
}
#: A stand-in certificate for building main.cf before the certificate role ran.
_CHECK_CERTIFICATE = {"cert": "/etc/ssl/postmaster/cert.pem", "key": "/etc/ssl/postmaster/key.pem"}


def _check_main_and_relay(c: Checked, errors: list[str]) -> None:
    """Check postfix_main_extra and the services' -o values like main.cf values, then judge relaying.

    The postfix_config module judges the merged configuration of every role again on the host;
    this catches what the postfix role's own variables do before anything changes.
    """
    main = _main(c, _CHECK_CERTIFICATE)
    extra = _dict(c.settings, "postfix_main_extra", [])
    check_params(extra, main, None, lambda _path: True, errors=errors, warnings=[], where="postfix_main_extra: ")
    services = []
    for service, origin in zip(c.master, c.master_origin, strict=True):
        try:
            parsed = MasterService.from_dict(service)
            overrides = parsed.options()
        except PostfixSyntaxError as exc:
            errors.append(f"{origin}: {exc}")
            continue
        services.append((parsed, origin))
        if overrides:
            effective = {**main, **overrides}
            check_params(
                overrides, effective, None, lambda _path: True, errors=errors, warnings=[], where=f"{origin}: -o "
            )
    if errors:
        return
    auth_keys = ("smtpd_tls_auth_only", "smtpd_sasl_auth_enable", "smtpd_tls_security_level")
    errors.extend(
        auth_tls_problems(
            main,
            [(service, f"{origin}: ") for service, origin in services],
            where_main="postfix_main_extra: " if any(key in extra for key in auth_keys) else "main.cf: ",
            sasl_may_follow=True,
        )
    )
    tables = {m["path"]: m["text"] for m in c.maps}

    def read(_type: str, name: str) -> str | None:
        return tables.get(name)

    allowed = c["postfix_allow_open_relay"] is True
    findings = []
    origin_of = {name: f"postfix_main_extra.{name}" if name in extra else var for name, var in _MAIN_RELAY_VARS.items()}
    trusted_policy = c.trusted_policy_services
    judge = RelayJudge(main, read, trusted_policy)
    if judge.trusted:
        origin = origin_of["mynetworks"] if "mynetworks" in main else "postfix_mynetworks_style"
        findings.append(f"{origin}: {judge.trusted}")
    if judge.relay_domains:
        findings.append(f"{origin_of['relay_domains']}: {judge.relay_domains}")
    reason = judge.open_relay()
    if reason:
        findings.append(
            f"{origin_of['smtpd_relay_restrictions']} and {origin_of['smtpd_recipient_restrictions']}: "
            f"main.cf would relay mail for anyone: {reason}"
        )
    for service, origin in services:
        overrides = service.options()
        if service.command != "smtpd" or not overrides:
            continue
        effective = {**main, **overrides}
        if set(overrides) & {"smtpd_relay_restrictions", "smtpd_recipient_restrictions"}:
            _attempt(errors, validate_relay_protection, effective, f"{origin}: master.cf service {service.key}: ")
        if service.type not in ("inet", "pass") or is_loopback_service(service):
            continue
        service_judge = RelayJudge(effective, read, trusted_policy)
        if service_judge.trusted and "mynetworks" in overrides:
            findings.append(f"{origin}: -o {service_judge.trusted}")
        if service_judge.relay_domains and "relay_domains" in overrides:
            findings.append(f"{origin}: -o {service_judge.relay_domains}")
        service_reason = service_judge.open_relay()
        if service_reason and service_reason != reason:
            findings.append(f"{origin}: master.cf service {service.key} would relay mail for anyone: {service_reason}")
    if findings and not allowed:
        errors.append(
            "open relay refused (postfix_allow_open_relay is false):\n  - "
            + "\n  - ".join(findings)
            + "\n  Relaying must be stopped by reject_unauth_destination (or defer_unauth_destination, reject, defer) "
            "before any entry that permits every client; " + OPT_IN_HINT
        )


#: The role's path variables: what it writes (and the certificate files it hands on) is confined by mail_paths.
PATH_VARS = (
    "postfix_config_dir",
    "postfix_fragment_dir",
    "postfix_relay_password_map",
    "postfix_tls_selfsigned_dir",
    "postfix_tls_cert_file",
    "postfix_tls_key_file",
)


def _check_paths(c: Checked, errors: list[str]) -> None:
    """Every path the role writes or hands on is one the collection owns for it (mail_paths)."""
    try:
        checked = check_paths({name: c.settings[name] for name in PATH_VARS})
    except PathPolicyError as exc:
        errors.extend(line.removeprefix("- ") for line in str(exc).splitlines() if line.strip())
        return
    c.settings = {**c.settings, **checked}


def check(settings: Mapping[str, Any]) -> Checked:
    """Check every variable the role uses; raise PostfixRoleError listing all problems."""
    if not isinstance(settings, Mapping):
        raise PostfixRoleError(f"the settings must be a mapping of variable names to values, got {kind(settings)}")
    missing = [name for name in REQUIRED if name not in settings]
    if missing:
        raise PostfixRoleError(f"the settings lack {', '.join(missing)}")
    c = Checked(settings)
    errors: list[str] = []
    for step in (
        _check_paths,
        _check_identity,
        _check_limits,
        _check_restrictions,
        _check_screen,
        _check_maps,
        _check_checks,
        _check_aliases,
        _check_tls,
        _check_relay,
        _check_master,
    ):
        step(c, errors)
    for key in _dict(settings, "postfix_main_extra", errors):
        if key in _amavis.OWNED_PARAMS:
            c.amavis_conflicts.append(f"postfix_main_extra.{key}: {_owned_hint(key)}")
    for index, endpoint in enumerate(_list(settings, "postfix_trusted_policy_services", errors)):
        if not isinstance(endpoint, str) or not _TRUSTED_POLICY_RE.match(endpoint):
            errors.append(
                f"postfix_trusted_policy_services[{index}]: {endpoint!r} is not a policy service on another host "
                "(inet:host:port, as written after check_policy_service)"
            )
        else:
            c.trusted_policy_services.append(endpoint)
    if not isinstance(settings["postfix_allow_open_relay"], bool):
        errors.append(f"postfix_allow_open_relay: must be true or false, got {settings['postfix_allow_open_relay']!r}")
    if not errors:
        _check_main_and_relay(c, errors)
    if errors:
        raise PostfixRoleError("invalid postfix role variables:\n- " + "\n- ".join(errors))
    return c


def _main(c: Checked, certificate: Mapping[str, Any] | None) -> dict[str, Any]:
    main: dict[str, Any] = {
        "compatibility_level": c["__postfix_compatibility_level"],
        "biff": False,
        "append_dot_mydomain": False,
        "readme_directory": False,
        "myhostname": c["postfix_myhostname"],
        "mydomain": c["postfix_mydomain"],
        "myorigin": c["postfix_myorigin"],
        "inet_interfaces": list(c["postfix_inet_interfaces"])
        if isinstance(c["postfix_inet_interfaces"], (list, tuple))
        else [c["postfix_inet_interfaces"]],
        "inet_protocols": c["postfix_inet_protocols"],
        "mydestination": c["postfix_mydestination"],
        "relay_domains": c["postfix_relay_domains"],
        "home_mailbox": c["postfix_home_mailbox"],
        "mailbox_command": "",
        "mailbox_size_limit": int(c["postfix_mailbox_size_limit"]),
        "message_size_limit": int(c["postfix_message_size_limit"]),
        "smtpd_banner": c["postfix_smtpd_banner"],
        "disable_vrfy_command": c["postfix_disable_vrfy_command"],
        "smtpd_helo_required": c["postfix_smtpd_helo_required"],
        "alias_maps": "hash:/etc/aliases",
        "alias_database": "hash:/etc/aliases",
        "postmaster_mua_sasl_auth_enable": False,
        # SMTP AUTH on port 25 (a SASL role's *_postfix_smtpd_sasl_auth_enable) only after STARTTLS.
        "smtpd_tls_auth_only": True,
    }
    if c.mynetworks:
        main["mynetworks"] = c.mynetworks
    else:
        main["mynetworks_style"] = c["postfix_mynetworks_style"]
    main.update(c.restrictions)
    main.update(c.screen.main())
    if c.class_restrictions:
        main["smtpd_restriction_classes"] = list(c.class_restrictions)
        main.update(c.class_restrictions)
    config_dir = c["postfix_config_dir"]
    checks_type = c["postfix_checks_type"]
    if c.header_checks:
        main["header_checks"] = f"{checks_type}:{config_dir}/header_checks"
    if c.body_checks:
        main["body_checks"] = f"{checks_type}:{config_dir}/body_checks"
    if c["postfix_tls_enabled"]:
        if not isinstance(certificate, Mapping) or not certificate.get("cert") or not certificate.get("key"):
            raise PostfixRoleError(
                "postfix_tls_enabled is true, so the certificate (the certificate role's certificate_result, "
                "with cert and key) must be given"
            )
        main.update(
            {
                "smtpd_tls_cert_file": certificate["cert"],
                "smtpd_tls_key_file": certificate["key"],
                "smtpd_tls_security_level": c["postfix_smtpd_tls_security_level"],
                "smtpd_tls_protocols": c["postfix_tls_protocols"],
                "smtpd_tls_mandatory_protocols": c["postfix_tls_protocols"],
                "smtpd_tls_ciphers": c["postfix_tls_ciphers"],
                "smtpd_tls_mandatory_ciphers": c["postfix_tls_mandatory_ciphers"],
                "smtpd_tls_exclude_ciphers": list(c["postfix_tls_exclude_ciphers"] or []),
                "tls_preempt_cipherlist": c["postfix_tls_preempt_cipherlist"],
                "tls_ssl_options": list(c["postfix_tls_ssl_options"] or []),
                "smtpd_tls_loglevel": 1,
                "smtpd_tls_session_cache_database": "btree:${data_directory}/smtpd_scache",
            }
        )
    # Outgoing TLS (to other MTAs and to the relay host): a password is never sent in clear.
    relay_level = c["postfix_relay_tls_security_level"] or (
        "encrypt" if c.relay_credentials or c["postfix_relay_tls_wrappermode"] else "may"
    )
    main.update(
        {
            "smtp_tls_security_level": relay_level,
            "smtp_tls_protocols": c["postfix_tls_protocols"],
            "smtp_tls_mandatory_protocols": c["postfix_tls_protocols"],
            "smtp_tls_CAfile": "/etc/ssl/certs/ca-certificates.crt",
            "smtp_tls_session_cache_database": "btree:${data_directory}/smtp_scache",
        }
    )
    if c["postfix_relayhost"]:
        main["relayhost"] = c["postfix_relayhost"]
    if c["postfix_relay_tls_wrappermode"]:
        main["smtp_tls_wrappermode"] = True
    if c.relay_credentials:
        main.update(
            {
                "smtp_sasl_auth_enable": True,
                "smtp_sasl_password_maps": f"hash:{c['postfix_relay_password_map']}",
                "smtp_sasl_security_options": "noanonymous",
                "smtp_sasl_tls_security_options": "noanonymous",
            }
        )
    if c.sender_relayhosts:
        main["sender_dependent_relayhost_maps"] = f"hash:{config_dir}/sender_relayhost"
        main["smtp_sender_dependent_authentication"] = True
    main.update(c["postfix_main_extra"] or {})
    return main


def fragment(settings: Mapping[str, Any], certificate: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the role's fragment (``main``, ``master`` and the RBL ``insert``) for postfix_config.

    *certificate* is the certificate role's ``certificate_result`` (``cert`` and ``key``); it is
    required while ``postfix_tls_enabled`` is true.
    """
    c = check(settings)
    data: dict[str, Any] = {"main": _main(c, certificate), "master": c.master}
    if c["postfix_allow_open_relay"] is True:
        data["allow_open_relay"] = True
    if c.trusted_policy_services:
        data["trusted_policy_services"] = list(c.trusted_policy_services)
    if c.rbl_insert:
        data["insert"] = c.rbl_insert
    try:
        check_fragment(FRAGMENT_NAME, data)
    except FragmentError as exc:
        raise PostfixRoleError(f"invalid postfix role variables:\n- {exc}") from None
    return data


def _table(path: str, text: str, comment: str, header: str, mode: str = "0644", **extra: Any) -> dict[str, Any]:
    return {"path": path, "mode": mode, "content": f"{header}{comment}{text}", **extra}


def tables(settings: Mapping[str, Any], header: str = "", secrets: bool = False) -> dict[str, Any]:
    """Return the text of every table the role writes, and the table-type packages they need.

    ``maps`` and ``checks`` are lists (empty when nothing is configured); ``relay_passwords``
    and ``sender_relayhost`` are None when not used.  *header* starts every file (the
    ``ansible_managed`` comment, with its trailing newline).  The relay password table's
    ``content`` is left out unless *secrets* is true.
    """
    c = check(settings)
    config_dir = c["postfix_config_dir"]
    checks_type = c["postfix_checks_type"]
    maps = [
        _table(
            m["path"],
            m["text"],
            f"# Postfix lookup table {m['name']} ({m['type']}), from postfix_maps.\n",
            header,
            m["mode"],
            name=m["name"],
            type=m["type"],
            origin=m["origin"],
        )
        for m in c.maps
    ]
    checks = [
        _table(
            f"{config_dir}/{name}",
            render_pattern_table(rules, checks_type),
            f"# Postfix {name} ({checks_type}), from postfix_{name}.\n",
            header,
            name=name,
            type=checks_type,
            origin=f"postfix_{name}",
        )
        for name, rules in (("header_checks", c.header_checks), ("body_checks", c.body_checks))
        if rules
    ]
    relay_passwords = None
    if c.relay_credentials:
        relay_passwords = {"path": c["postfix_relay_password_map"], "mode": "0600"}
        if secrets:
            relay_passwords = _table(
                c["postfix_relay_password_map"],
                render_table(c.relay_credentials),
                "# SASL client credentials per relay host, from postfix_relay_credentials.\n"
                "# Root only (0600); compiled with postmap.\n",
                header,
                "0600",
            )
    sender_relayhost = None
    if c.sender_relayhosts:
        sender_relayhost = _table(
            f"{config_dir}/sender_relayhost",
            render_table(c.sender_relayhosts),
            "# Relay host per sender, from postfix_sender_dependent_relayhosts.\n",
            header,
        )
    used_types = {m["type"] for m in c.maps} | ({checks_type} if checks else set())
    table_packages = c["__postfix_table_packages"] or {}
    aliases = _table(
        "/etc/aliases",
        render_aliases(c.aliases),
        "# Local aliases, from postfix_aliases. Compiled with postalias when changed.\n",
        header,
    )
    # The postmap module's tables option, for one call: every table but the relay passwords
    # (a secret, written by a task of its own with no_log).
    postmap = [
        {
            "path": t["path"],
            "type": t.get("type", "hash"),
            "content": t["content"],
            "mode": t["mode"],
            "origin": t.get("origin", ""),
        }
        for t in [*maps, *checks, *([sender_relayhost] if sender_relayhost else [])]
    ] + [{"path": aliases["path"], "aliases": True, "content": aliases["content"], "mode": aliases["mode"]}]
    for table in postmap:
        table.update(owner="root", group="root")
    return {
        "maps": maps,
        "checks": checks,
        "aliases": aliases,
        "relay_passwords": relay_passwords,
        "sender_relayhost": sender_relayhost,
        "postmap": postmap,
        "packages": [package for table_type, package in table_packages.items() if table_type in used_types],
        "warnings": list(c.warnings),
        "amavis_conflict": amavis_conflict(c),
    }


def amavis_conflict(c: Checked) -> dict[str, str] | None:
    """A mail_packages ``conflicts`` entry (``fragment`` is the file name in the fragment directory), or None.

    The settings in it would let mail skip amavis's checks: the install task refuses them while
    the amavis role's fragment is on the host, before anything changes; without amavis they are
    allowed.
    """
    if not c.amavis_conflicts:
        return None
    return {
        "fragment": _amavis.FRAGMENT,
        "msg": "invalid postfix role variables while the amavis role is on:\n- " + "\n- ".join(c.amavis_conflicts),
    }
