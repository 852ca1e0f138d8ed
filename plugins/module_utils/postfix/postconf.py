# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backend of the postconf module: read and set many main.cf parameters in one call each."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis import amavis_settings as _amavis
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import guard
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_networks import (
    CIDR_PARAMS,
    validate_cidr_list,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_relay import validate_relay
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_restrictions import (
    is_restriction_param,
    validate_restrictions,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import (
    EXPANSION_RE,
    PostfixSyntaxError,
    PostfixValidationError,
    expand_value,
    is_valid_param_name,
    normalize_value,
    render_value,
    split_list,
)

ENV = {"LC_ALL": "C"}


class PostconfError(Exception):
    """postconf failed, or a requested value is invalid."""


def parse_postconf_output(text: str) -> dict[str, str]:
    """Parse ``name = value`` lines printed by ``postconf`` (with or without ``-n``)."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip():
            result[name.strip()] = value.strip()
    return result


def render_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Render and check desired values (names, types, line breaks, CIDRs); raise PostconfError naming the parameter.

    Restriction lists are checked by validate_params, once the ``$name`` references they hold can be
    expanded from the live main.cf.
    """
    rendered: dict[str, str] = {}
    for name, value in params.items():
        if not is_valid_param_name(name):
            raise PostconfError(f"invalid parameter name {name!r}")
        if isinstance(value, (list, tuple)) and not all(isinstance(item, (str, int)) for item in value):
            raise PostconfError(f"parameter {name}: list items must be strings")
        if isinstance(value, (dict, float)):
            raise PostconfError(f"parameter {name}: value must be a string, number, boolean or list")
        try:
            rendered[name] = render_value(value)
        except PostfixSyntaxError as exc:
            raise PostconfError(f"parameter {name}: {exc}") from exc
    try:
        for name, value in rendered.items():
            if name in CIDR_PARAMS and "$" not in value:
                rendered[name] = ", ".join(validate_cidr_list(name, value))
    except PostfixValidationError as exc:
        raise PostconfError(str(exc)) from exc
    return rendered


def unexpanded_names(values: Iterable[str], known: Mapping[str, Any]) -> list[str]:
    """The ``$name`` references in *values* that *known* cannot expand (to read as Postfix's defaults)."""
    names: list[str] = []
    pending = list(values)
    seen: set[str] = set()
    while pending:
        value = pending.pop()
        for match in EXPANSION_RE.finditer(value):
            name = match.group(1) or match.group(2) or match.group(3)
            if name in seen:
                continue
            seen.add(name)
            if name in known:
                pending.append(str(known[name]))
            else:
                names.append(name)
    return sorted(names)


def validate_params(desired: Mapping[str, str], merged: Mapping[str, str], allow_open_relay: bool = False) -> list[str]:
    """Validate the desired values as they will read in *merged* (main.cf after the change), ``$name`` expanded.

    Restriction lists and networks are checked after expansion, and the merged configuration must
    not relay for anyone unless *allow_open_relay*.  Returns the open-relay findings that were allowed.
    """
    classes = split_list(expand_value(merged.get("smtpd_restriction_classes", ""), merged))
    try:
        for name, value in desired.items():
            expanded = expand_value(value, merged)
            if is_restriction_param(name, classes):
                validate_restrictions(name, expanded, classes)
            elif name in CIDR_PARAMS:
                validate_cidr_list(name, expanded)
        return validate_relay(
            merged,
            allow_open_relay=allow_open_relay,
            hint="to run an open relay on purpose, set allow_open_relay: true",
        )
    except PostfixValidationError as exc:
        raise PostconfError(str(exc)) from exc


def compute_changes(current: Mapping[str, str], desired: Mapping[str, str]) -> dict[str, str]:
    """Return the desired parameters whose value differs from *current* (after normalisation)."""
    return {
        name: value
        for name, value in desired.items()
        if name not in current or normalize_value(current[name]) != normalize_value(value)
    }


class Postconf:
    """Read with one ``postconf -c DIR -n``, set with one ``postconf -c DIR -e k=v ...``."""

    def __init__(self, run_command: Callable[..., Any], config_dir: str, postconf_bin: str = "postconf") -> None:
        self._run = run_command
        self.config_dir = config_dir
        self.postconf_bin = postconf_bin

    def _call(self, args: Iterable[str]) -> str:
        argv = [self.postconf_bin, "-c", self.config_dir, *args]
        rc, out, err = self._run(argv, environ_update=dict(ENV))
        if rc != 0:
            raise PostconfError(f"{' '.join(argv[:4])} failed (rc={rc}): {(err or out or '').strip()}")
        return out or ""

    def read_explicit(self) -> dict[str, str]:
        """Parameters set explicitly in main.cf."""
        return parse_postconf_output(self._call(["-n"]))

    def read(self, names: Iterable[str]) -> dict[str, str]:
        """Effective values (explicit or default) of *names*; one call."""
        names = list(names)
        if not names:
            return {}
        return parse_postconf_output(self._call(names))

    def set(self, values: Mapping[str, str]) -> None:
        """Set all *values* with one ``postconf -e`` call."""
        if values:
            self._call(["-e", *(f"{name}={value}" for name, value in values.items())])


def _excerpt(values: Mapping[str, str]) -> str:
    return "".join(f"{name} = {value}\n" for name, value in values.items())


def _refuse_skipping_amavis(current: Mapping[str, str], changes: Mapping[str, str]) -> None:
    """While main.cf hands mail to amavis (its fragment's content_filter), its parameters stay as they are."""
    if not current.get("content_filter", "").startswith(f"{_amavis.POSTFIX_SERVICE}:"):
        return
    touched = [name for name in changes if name in _amavis.OWNED_PARAMS]
    if touched:
        raise PostconfError(
            f"params.{touched[0]}: main.cf hands mail to amavis (content_filter = {current['content_filter']}, from "
            f"the amavis role's fragment {_amavis.FRAGMENT}); changing {' or '.join(touched)} would let mail skip its "
            "virus and spam checks (set amavis_enabled: false in the amavis role instead)"
        )


def run_postconf(
    postconf: Postconf,
    params: Mapping[str, Any] | None,
    read: Iterable[str] | None = None,
    check_mode: bool = False,
    allow_open_relay: bool = False,
) -> dict[str, Any]:
    """Set *params*, read *read*; return changed, changed_params, values and diff.

    Nothing is written unless the desired values, expanded in the resulting main.cf, pass the
    same checks as postfix_config's (restriction lists, networks, and no open relay).
    """
    desired = render_params(params or {})
    read_names = list(read or [])
    for name in read_names:
        if not is_valid_param_name(name):
            raise PostconfError(f"invalid parameter name {name!r} in read")
    current = postconf.read_explicit()
    changes = compute_changes(current, desired)
    _refuse_skipping_amavis(current, changes)
    warnings: list[str] = []
    if changes:
        merged: dict[str, Any] = {**current, **desired}
        missing_refs = unexpanded_names(merged.values(), merged)
        if missing_refs:
            merged.update({name: value for name, value in postconf.read(missing_refs).items() if name not in merged})
        findings = validate_params(desired, merged, allow_open_relay)
        warnings.extend(f"allowed open relay (allow_open_relay): {finding}" for finding in findings)
    if changes and not check_mode:
        guard(PostconfError, postconf.config_dir, "config_dir")
        guard(PostconfError, f"{postconf.config_dir}/main.cf", "config_dir (main.cf)", kind="file")
        postconf.set(changes)
    missing = [name for name in read_names if name not in current and name not in desired]
    defaults = postconf.read(missing)
    values: dict[str, str] = {}
    for name in [*read_names, *desired]:
        if name in desired:
            values[name] = desired[name]
        elif name in current:
            values[name] = current[name]
        elif name in defaults:
            values[name] = defaults[name]
    before = {name: current.get(name, "") for name in changes}
    return {
        "changed": bool(changes),
        "changed_params": list(changes),
        "values": values,
        "warnings": warnings,
        "diff": {
            "before_header": f"{postconf.config_dir}/main.cf",
            "after_header": f"{postconf.config_dir}/main.cf",
            "before": _excerpt(before),
            "after": _excerpt(changes),
        },
    }
