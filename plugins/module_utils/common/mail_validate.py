# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validate mail domains and addresses; every error names the variable it was found in.

Domains must be ASCII: an internationalized domain is refused with a message asking for its
A-label (``xn--``) form, because Python's built-in ``idna`` codec implements IDNA 2003,
which maps some names (``faß.de``) to a different domain than IDNA 2008 does.

Addresses are ``local@domain`` with a dot-atom local part (RFC 5322 without quoted strings
or comments, ASCII only). ``/`` is refused in local parts because they become Maildir
directory names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

MAX_DOMAIN = 253
MAX_LABEL = 63
MAX_LOCAL = 64
MAX_ADDRESS = 254

_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\Z")
# RFC 5322 atext, without "/" (local parts become directory names).
_ATOM_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+\Z")


class MailValidationError(ValueError):
    """A domain or address is invalid; the message names the variable."""


def kind(value: Any) -> str:
    """The YAML kind of *value* (list, dict, str, int, float, bool, null), whatever class holds it.

    ansible-core 2.19 hands lazy subclasses (``_AnsibleLazyTemplateList``) to filters; users wrote a list.
    """
    if value is None:
        return "null"
    for name, types in (
        ("bool", bool),
        ("str", str),
        ("bytes", bytes),
        ("int", int),
        ("float", float),
        ("dict", Mapping),
    ):
        if isinstance(value, types):
            return name
    if isinstance(value, (list, tuple, set)) or (isinstance(value, Sequence) and not isinstance(value, str)):
        return "list"
    return type(value).__name__


def _describe(value: Any) -> str:
    return kind(value)


_NUMBER_RE = re.compile(r"[0-9]+")


def shown(value: Any) -> str:
    """*value* as a settings error message shows it: its repr and its class."""
    return f"{value!r} ({type(value).__name__})"


def whole_number(value: Any, where: str, bounds: tuple[int, int], unit: str = "", *, error: type[Exception]) -> int:
    """*value* (an int, or a string of digits) within *bounds*; else *error* naming *where* (*unit* after the number)."""
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{where}: must be a whole number{unit}, got {shown(value)}")
    low, high = bounds
    if not low <= value <= high:
        raise error(f"{where}: must be between {low} and {high}{unit}, got {value}")
    return value


def true_or_false(value: Any, where: str, *, error: type[Exception]) -> bool:
    """*value* when it is a bool; else *error* naming *where*."""
    if not isinstance(value, bool):
        raise error(f"{where}: must be true or false, got {shown(value)}")
    return value


def host_name_problem(
    value: str, *, wildcard: bool = False, ip_hint: str = "an IP address is not a domain"
) -> str | None:
    """Why the string *value* is not a valid domain or host name, or None: the one check every role uses.

    Letters, digits and hyphens in labels of 1 to 63 characters, 253 in all, ASCII only, no trailing dot,
    and a last label that is not numeric (*ip_hint* says what to do instead). With *wildcard*, a first
    label ``*`` is accepted (a certificate's name).
    """
    if not value:
        return "it is empty"
    if not value.isascii():
        return (
            "it contains non-ASCII characters; give an internationalized domain in its ASCII "
            "(punycode) form, for example xn--bcher-kva.example for bücher.example"
        )
    if value != value.strip():
        return "it has leading or trailing whitespace"
    if value.endswith("."):
        return "remove the trailing dot"
    if len(value) > MAX_DOMAIN:
        return f"it is {len(value)} characters long, the maximum is {MAX_DOMAIN}"
    labels = value.lower().split(".")
    if wildcard and labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    for label in labels:
        if not label:
            return "it has an empty label"
        if len(label) > MAX_LABEL:
            return f"label {label!r} is longer than {MAX_LABEL} characters"
        if label.startswith("-") or label.endswith("-"):
            return f"label {label!r} starts or ends with a hyphen"
        if not _LABEL_RE.match(label):
            return f"label {label!r} may contain only letters, digits and hyphens"
    if labels[-1].isdigit():
        return f"the last label is numeric ({ip_hint})"
    return None


_domain_problem = host_name_problem


def is_fqdn(value: Any) -> bool:
    """Whether *value* is a fully qualified host name: a valid name (host_name_problem) of two labels or more."""
    return isinstance(value, str) and "." in value and host_name_problem(value) is None


def validate_domain(value: Any, name: str = "domain") -> str:
    """Return the domain *value* in lower case, or raise naming *name*."""
    if not isinstance(value, str):
        raise MailValidationError(f"{name}: expected a domain name string, got {_describe(value)}")
    problem = _domain_problem(value)
    if problem:
        raise MailValidationError(f"{name}: {value!r} is not a valid domain name: {problem}")
    return value.lower()


def validate_address(value: Any, name: str = "address", catchall: bool = False) -> str:
    """Return *value* with its domain in lower case (local part kept), or raise naming *name*.

    With *catchall*, ``@domain`` (the catch-all form of Postfix virtual alias maps) is accepted too.
    """
    if not isinstance(value, str):
        raise MailValidationError(f"{name}: expected a mail address string, got {_describe(value)}")
    prefix = f"{name}: {value!r} is not a valid mail address"
    if "@" not in value:
        raise MailValidationError(f"{prefix}: it has no '@'")
    if not value.isascii():
        raise MailValidationError(f"{prefix}: it contains non-ASCII characters")
    if len(value) > MAX_ADDRESS:
        raise MailValidationError(f"{prefix}: it is {len(value)} characters long, the maximum is {MAX_ADDRESS}")
    local, domain = value.rsplit("@", 1)
    if not local:
        if not catchall:
            raise MailValidationError(f"{prefix}: the local part before '@' is empty")
    else:
        _validate_local(local, prefix)
    problem = _domain_problem(domain)
    if problem:
        raise MailValidationError(f"{prefix}: domain {domain!r}: {problem}")
    return f"{local}@{domain.lower()}"


def _validate_local(local: str, prefix: str) -> None:
    if len(local) > MAX_LOCAL:
        raise MailValidationError(f"{prefix}: the local part is longer than {MAX_LOCAL} characters")
    if "@" in local:
        raise MailValidationError(f"{prefix}: it has more than one '@'")
    if "/" in local:
        raise MailValidationError(f"{prefix}: '/' is not allowed in the local part (it becomes a directory name)")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise MailValidationError(f"{prefix}: the local part starts or ends with '.' or contains '..'")
    for atom in local.split("."):
        if not _ATOM_RE.match(atom):
            bad = sorted({c for c in atom if not _ATOM_RE.match(c)})
            raise MailValidationError(
                f"{prefix}: the local part contains {', '.join(repr(c) for c in bad)} "
                "(quoted local parts are not supported)"
            )


def validate_addresses(value: Any, name: str = "addresses", catchall: bool = False) -> list[str]:
    """Validate a list of addresses; errors name the item as ``name[index]``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise MailValidationError(f"{name}: expected a list of mail addresses, got {_describe(value)}")
    return [validate_address(item, f"{name}[{index}]", catchall) for index, item in enumerate(value)]
