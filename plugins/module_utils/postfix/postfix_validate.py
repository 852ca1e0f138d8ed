# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validate a whole Postfix configuration in Python.

``postfix check`` accepts unknown restrictions, invalid CIDRs and missing lookup tables;
smtpd then answers ``451 4.3.5 Server configuration error`` at runtime.  validate_main runs
the checks of postfix_restrictions, postfix_networks and postfix_tables over a merged main.cf
and adds its own (value types, restriction classes, relay protection); the module treats every
postconf warning as an error (parse_postconf_warnings).  Every error names the parameter.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_inbound import judge_inbound
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_networks import (
    CIDR_PARAMS,
    validate_cidr_list,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_relay import (
    is_loopback_service,
    relay_notes,
    validate_relay,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_restrictions import (
    ARG_TABLE,
    RESTRICTIONS,
    parse_restrictions,
    restriction_params,
    validate_relay_protection,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import (
    MasterService,
    PostfixSyntaxError,
    PostfixValidationError,
    expand_value,
    is_valid_param_name,
    render_value,
    split_list,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_tables import (
    table_check_mode,
    validate_table_refs,
)


def _check_value_type(param: str, value: Any) -> None:
    if not is_valid_param_name(param):
        raise PostfixValidationError(f"parameter {param!r}: not a valid parameter name")
    if isinstance(value, (list, tuple)):
        for item in value:
            if not isinstance(item, str):
                raise PostfixValidationError(
                    f"parameter {param}: list items must be strings, got {type(item).__name__} ({item!r})"
                )
    elif value is not None and not isinstance(value, (str, int, bool)):
        raise PostfixValidationError(
            f"parameter {param}: value must be a string, number, boolean or list of strings, got {type(value).__name__}"
        )
    try:
        render_value(value)
    except PostfixSyntaxError as exc:
        raise PostfixValidationError(f"parameter {param}: {exc}") from exc


def check_params(
    names: Iterable[str],
    effective: Mapping[str, Any],
    supported: list[str] | None,
    exists: Callable[[str], bool],
    *,
    errors: list[str],
    warnings: list[str],
    where: str = "",
) -> None:
    """Check the parameters *names* of *effective* (main.cf, or main.cf with a service's overrides).

    Errors are prefixed with *where* (a master.cf service) when given.
    """

    def attempt(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PostfixValidationError as exc:
            errors.append(f"{where}{exc}")
            return None

    names = list(names)
    typed_ok = set()
    for name in names:
        try:
            _check_value_type(name, effective[name])
        except PostfixValidationError as exc:
            errors.append(f"{where}{exc}")
        else:
            typed_ok.add(name)
    classes = []
    if _value_type_ok("smtpd_restriction_classes", effective.get("smtpd_restriction_classes", "")):
        classes = split_list(expand_value(render_value(effective.get("smtpd_restriction_classes", "")), effective))
    if "smtpd_restriction_classes" in names:
        for class_name in classes:
            if class_name not in effective:
                errors.append(
                    f"{where}parameter smtpd_restriction_classes: restriction class '{class_name}' has no definition "
                    "in main.cf"
                )
            elif class_name in RESTRICTIONS:
                errors.append(
                    f"{where}parameter smtpd_restriction_classes: '{class_name}' is a built-in restriction name"
                )
    restriction_set = set(restriction_params(effective))

    for name in names:
        if name not in typed_ok:
            continue
        expanded = expand_value(render_value(effective[name]), effective)
        if name in restriction_set:
            entries = attempt(parse_restrictions, name, expanded, classes)
            if entries is None:
                continue
            for entry in entries:
                if RESTRICTIONS.get(entry.name) == ARG_TABLE:
                    result = attempt(validate_table_refs, name, entry.arg, supported, exists, strict=True)
                elif entry.name not in RESTRICTIONS and entry.name not in classes:
                    result = attempt(validate_table_refs, name, entry.name, supported, exists, strict=True)
                else:
                    continue
                warnings.extend(result or [])
            continue
        if name in CIDR_PARAMS:
            normalized = attempt(validate_cidr_list, name, expanded)
            if normalized is None:
                continue
            expanded = ", ".join(normalized)
        mode = table_check_mode(name)
        if mode is None:
            continue
        strict, check_files = mode
        result = attempt(validate_table_refs, name, expanded, supported, exists, strict=strict, check_files=check_files)
        warnings.extend(result or [])


#: smtpd_tls_security_level values with which STARTTLS is offered.
STARTTLS_LEVELS = ("may", "encrypt")


def _postfix_bool(value: Any, main: Mapping[str, Any]) -> bool | None:
    """A Postfix boolean (``yes``/``no``, ``$name`` expanded from *main*); None when it is not one."""
    if isinstance(value, bool):
        return value
    text = expand_value(render_value(value), main).strip().lower() if value is not None else ""
    if text in ("yes", "true", "1"):
        return True
    if text in ("no", "false", "0"):
        return False
    return None


def auth_tls_problems(
    main: Mapping[str, Any],
    services: Iterable[tuple[MasterService, str]] = (),
    *,
    where_main: str = "main.cf: ",
    sasl_may_follow: bool = False,
) -> list[str]:
    """Where smtpd would offer SMTP AUTH before STARTTLS (or with no TLS at all): one line each.

    Judged for main.cf (the port-25 ``smtp`` service without ``-o`` overrides inherits it) and for
    every public inet smtpd of *services* (pairs of the service and the name of its origin) with
    its ``-o`` overrides. Where ``smtpd_sasl_auth_enable`` is on, ``smtpd_tls_auth_only`` must be
    yes and ``smtpd_tls_security_level`` may or encrypt (or the service speaks TLS from the first
    byte, ``smtpd_tls_wrappermode``). With *sasl_may_follow* (the postfix role: a SASL role may switch
    AUTH on later in the play), an explicit ``smtpd_tls_auth_only = no`` is refused even while
    AUTH is off. Loopback-only listeners are not judged.
    """
    problems: list[str] = []

    def judge(effective: Mapping[str, Any], explicit: Mapping[str, Any], where: str) -> None:
        if _postfix_bool(effective.get("smtpd_tls_wrappermode"), effective):
            return
        sasl = _postfix_bool(effective.get("smtpd_sasl_auth_enable", False), effective)
        auth_only = _postfix_bool(effective.get("smtpd_tls_auth_only", False), effective)
        level = expand_value(render_value(effective.get("smtpd_tls_security_level") or ""), effective).strip()
        if sasl and not auth_only:
            problems.append(
                f"{where}smtpd_tls_auth_only must be yes while smtpd_sasl_auth_enable is on: AUTH would be "
                "offered before STARTTLS, and passwords sent in clear"
            )
        elif sasl_may_follow and "smtpd_tls_auth_only" in explicit and auth_only is not True:
            problems.append(
                f"{where}smtpd_tls_auth_only = {render_value(explicit['smtpd_tls_auth_only'])}: AUTH must only be "
                "offered after STARTTLS (a SASL role switches AUTH on); remove it or set yes"
            )
        if sasl and level not in STARTTLS_LEVELS:
            problems.append(
                f"{where}smtpd_sasl_auth_enable is on but smtpd_tls_security_level is {repr(level) if level else 'empty'}: "
                f"AUTH needs STARTTLS (smtpd_tls_security_level {' or '.join(STARTTLS_LEVELS)})"
            )

    judge(main, main, where_main)
    for service, origin in services:
        if service.command != "smtpd" or service.type not in ("inet", "pass") or is_loopback_service(service):
            continue
        try:
            overrides = service.options()
        except PostfixSyntaxError:
            continue  # reported where the overrides are parsed
        if not overrides:
            continue
        judge({**main, **overrides}, overrides, f"{origin}master.cf service {service.key}: -o ")
    return problems


def _value_type_ok(name: str, value: Any) -> bool:
    try:
        _check_value_type(name, value)
    except PostfixValidationError:
        return False
    return True


def validate_main(
    main: Mapping[str, Any],
    supported_types: Iterable[str] | None,
    exists: Callable[[str], bool] = os.path.exists,
    *,
    services: Iterable[MasterService] = (),
    allow_open_relay: bool = False,
    read_table: Callable[[str, str], str | None] | None = None,
    trusted_policy_services: Iterable[str] = (),
) -> list[str]:
    """Validate a merged main.cf mapping and the ``-o`` overrides of master.cf *services*.

    Raises one error naming every bad parameter (and service); an open relay is one unless
    *allow_open_relay*.  *read_table* (type, name) returns a table's source text, so that a
    catch-all ``OK`` in a cidr/regexp/pcre access table counts.  Returns warnings (things
    that could not be checked).
    """
    errors: list[str] = []
    warnings: list[str] = []
    supported = None if supported_types is None else list(supported_types)
    check_params(main, main, supported, exists, errors=errors, warnings=warnings)
    services = list(services)
    for service in services:
        where = f"master.cf service {service.key}: -o "
        try:
            overrides = service.options()
        except PostfixSyntaxError as exc:
            errors.append(str(exc))
            continue
        if overrides:
            check_params(
                overrides, {**main, **overrides}, supported, exists, errors=errors, warnings=warnings, where=where
            )
    if not errors:
        try:
            validate_relay_protection(main)
            for service in services:
                overrides = service.options()
                if service.command == "smtpd" and set(overrides) & {
                    "smtpd_relay_restrictions",
                    "smtpd_recipient_restrictions",
                }:
                    validate_relay_protection({**main, **overrides}, where=f"master.cf service {service.key}: ")
            findings = validate_relay(
                main, services, allow_open_relay, read_table, trusted_policy_services=trusted_policy_services
            )
            errors.extend(auth_tls_problems(main, [(service, "") for service in services]))
        except PostfixValidationError as exc:
            errors.append(str(exc))
        else:
            warnings.extend(f"allowed open relay (allow_open_relay): {finding}" for finding in findings)
            warnings.extend(relay_notes(main, read_table, trusted_policy_services))
        # An early permit that keeps the SPF policy or the RBLs from ever seeing inbound mail.
        inbound_errors, inbound_warnings = judge_inbound(main)
        errors.extend(inbound_errors)
        warnings.extend(inbound_warnings)
    if errors:
        raise PostfixValidationError("invalid Postfix configuration:\n- " + "\n- ".join(errors))
    return warnings


def parse_postconf_warnings(stderr: str | bytes | None) -> list[str]:
    """Return the ``...: warning: ...`` lines of postconf/postfix output."""
    if not stderr:
        return []
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", errors="replace")
    return [line.strip() for line in stderr.splitlines() if re.search(r"(^|: )warning: ", line.strip())]


def normalize_main(main: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of *main* with CIDR parameters normalized (IPv6 in [brackets]).

    Invalid values are left as they are; validate_main reports them.
    """
    result = dict(main)
    for name in CIDR_PARAMS:
        if name in result and isinstance(result[name], (str, list, tuple)):
            with contextlib.suppress(PostfixValidationError):
                result[name] = validate_cidr_list(name, result[name])
    return result
