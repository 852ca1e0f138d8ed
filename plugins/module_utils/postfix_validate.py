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

from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix_networks import (
    CIDR_PARAMS,
    validate_cidr_list,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix_relay import relay_notes, validate_relay
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix_restrictions import (
    ARG_TABLE,
    RESTRICTIONS,
    parse_restrictions,
    restriction_params,
    validate_relay_protection,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix_syntax import (
    MasterService,
    PostfixSyntaxError,
    PostfixValidationError,
    expand_value,
    is_valid_param_name,
    render_value,
    split_list,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix_tables import (
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
        except PostfixValidationError as exc:
            errors.append(str(exc))
        else:
            warnings.extend(f"allowed open relay (allow_open_relay): {finding}" for finding in findings)
            warnings.extend(relay_notes(main, read_table, trusted_policy_services))
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
