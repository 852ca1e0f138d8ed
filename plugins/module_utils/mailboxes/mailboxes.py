# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check and normalise the virtual domains of the mailboxes role in one pass.

One Python pass over ``mailboxes_domains`` replaces what used to be a Jinja
loop (about 0.1 ms per Jinja operation in ansible-core 2.19, so seconds for
10,000 users). Every problem is collected, each naming the variable path
(``mailboxes_domains[0].users[3].name``), and all of them are raised together
so that one run shows every mistake.

:func:`plan` never returns passwords or hashes; :func:`passwd_entries` does,
for the ``no_log`` task that hands them to the mail_password module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate import (
    MailValidationError,
    validate_address,
    validate_addresses,
    validate_domain,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate import (
    kind as value_kind,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import render_table

QUOTA_RE = re.compile(r"^[0-9]+[BKMGT%]?\Z")


class MailboxesError(ValueError):
    """One or more entries of the domains variable are invalid; the message lists them all."""


def _items(value: Any, path: str, errors: list[str]) -> list[Any]:
    """Return *value* as a list (None is empty), or record an error."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
        errors.append(f"{path}: expected a list, got {value_kind(value)}")
        return []
    return list(value)


def _mapping(value: Any, path: str, errors: list[str]) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    errors.append(f"{path}: expected a dictionary, got {value_kind(value)}")
    return None


def _address(entry: Mapping[str, Any], path: str, domain: str, errors: list[str]) -> str | None:
    """The lower-case address of a user or alias given by ``address`` or ``name``."""
    try:
        if entry.get("address") is not None:
            address = validate_address(entry["address"], f"{path}.address").lower()
            if address.rsplit("@", 1)[1] != domain:
                errors.append(f"{path}.address: {address} is not in the domain {domain}")
            return address
        if entry.get("name") is None:
            errors.append(f"{path}: give name or address")
            return None
        local = entry["name"]
        if isinstance(local, int) and not isinstance(local, bool):
            local = str(local)  # a YAML local part such as 1234
        if not isinstance(local, str):
            errors.append(f"{path}.name: expected a local part string, got {value_kind(local)}")
            return None
        return validate_address(f"{local}@{domain}", f"{path}.name").lower()
    except MailValidationError as exc:
        errors.append(str(exc))
        return None


def _targets(value: Any, path: str, errors: list[str]) -> list[str]:
    try:
        return validate_addresses([] if value is None else value, path)
    except MailValidationError as exc:
        errors.append(str(exc))
        return []


def _entries(
    d: Mapping[str, Any], key: str, dp: str, domain: str, *, seen: dict[str, str], errors: list[str]
) -> Iterator[tuple[str, Mapping[str, Any], str]]:
    """The users or aliases (*key*) of domain *d* with a valid address: (path, entry, address).

    An address already taken by a user or alias of any domain (*seen*: address -> path) is an error.
    """
    for index, raw in enumerate(_items(d.get(key), f"{dp}.{key}", errors)):
        path = f"{dp}.{key}[{index}]"
        entry = _mapping(raw, path, errors)
        address = None if entry is None else _address(entry, path, domain, errors)
        if entry is None or address is None:
            continue
        if address in seen:
            errors.append(f"{path}: {address} is also {seen[address]}")
        seen[address] = path
        yield path, entry, address


def _secret_problem(user: Mapping[str, Any]) -> str:
    """What is wrong with a user's password or hash ('' when nothing), never showing the secret.

    A password must be a string (a YAML number is taken as its digits): a list or a mapping would
    otherwise become its Python text, silently.  Neither may hold a line break or a NUL, which would
    end up in the passwd-file (a hash) or reach the hashing as something else than typed.
    """
    password = user.get("password")
    if password is not None:
        if isinstance(password, bool) or not isinstance(password, (str, int)):
            return f"password: must be a string, got {value_kind(password)} (the value is not shown)"
        text = str(password)
        if not text:
            return "password: must not be empty"
        if any(ch in text for ch in "\n\r\0"):
            return "password: contains a line break or NUL (the value is not shown)"
    hashed = user.get("hash")
    if hashed is not None:
        if not isinstance(hashed, str):
            return f"hash: must be a string such as {{SHA512-CRYPT}}$6$..., got {value_kind(hashed)}"
        if not hashed.startswith("{") or "}" not in hashed or any(ch in hashed for ch in ":\n\r\0 \t"):
            return (
                "hash: must look like {SCHEME}value, without ':', whitespace or a line break (the value is not shown)"
            )
    return ""


def _quota(value: Any, path: str, errors: list[str]) -> str:
    """A Dovecot quota size (512M, 10G, 0), or '' for none."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        errors.append(f"{path}: must be a size such as 512M, 10G or 0 (unlimited), got {value_kind(value)}")
        return ""
    quota = str(value)
    if quota and not QUOTA_RE.match(quota):
        errors.append(f"{path}: {quota!r} is not a size such as 512M, 10G or 0 (unlimited)")
        return ""
    return quota


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def local_domain_list(value: Any) -> list[str]:
    """The domains of a ``mydestination`` value as ``postconf -x -h`` prints it (commas or spaces), lower case."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else re.split(r"[\s,]+", str(value))
    return [str(item).strip().rstrip(".").lower() for item in items if str(item).strip()]


def local_and_virtual(where: str, domain: str, source: str, local: list[str], name: str = "mailboxes_domains") -> str:
    """The error for a virtual *domain* that is also one of Postfix's *local* domains (read from *source*).

    One message for the mailboxes role (which reads mydestination on the host) and for the play's
    conflict check (:mod:`play_conflicts`, from the postfix role's variables before anything changes).
    """
    return (
        f"{where}: {domain} is also a local domain of Postfix {source}: {', '.join(local)}); a domain is either "
        f"local (postfix_mydestination) or virtual ({name}), never both: Postfix would deliver its mail to system "
        "users and refuse the virtual ones"
    )


def _walk(domains: Any, base: str, name: str, local_domains: Any = None) -> Iterator[tuple[str, Any]]:
    """Yield ('domain', str), ('user', dict), ('vmailbox', pair), ('alias', pair) and ('error', str) records."""
    postfix_local = local_domain_list(local_domains)
    errors: list[str] = []
    seen_domains: set[str] = set()
    seen: dict[str, str] = {}
    for di, raw in enumerate(_items(domains, name, errors)):
        dp = f"{name}[{di}]"
        d = _mapping(raw, dp, errors)
        if d is None:
            continue
        try:
            domain = validate_domain(d.get("name"), f"{dp}.name")
        except MailValidationError as exc:
            errors.append(str(exc))
            continue
        if domain in seen_domains:
            errors.append(f"{dp}.name: domain {domain} is listed twice")
        if domain in postfix_local:
            errors.append(local_and_virtual(f"{dp}.name", domain, "on this host (mydestination", postfix_local, name))
        seen_domains.add(domain)
        yield "domain", domain
        catchall = d.get("catchall") or ""
        if catchall:
            try:
                catchall = validate_address(catchall, f"{dp}.catchall")
            except MailValidationError as exc:
                errors.append(str(exc))
                catchall = ""

        for up, u, address in _entries(d, "users", dp, domain, seen=seen, errors=errors):
            if (u.get("password") is None) == (u.get("hash") is None):
                errors.append(f"{up} ({address}): give exactly one of password and hash")
            secret_error = _secret_problem(u)
            if secret_error:
                errors.append(f"{up}.{secret_error}")
            quota = _quota(u.get("quota"), f"{up}.quota", errors)
            forward = _targets(u.get("forward"), f"{up}.forward", errors)
            local = address.rsplit("@", 1)[0]
            yield (
                "user",
                {
                    "address": address,
                    "maildir": f"{base}/{domain}/{local}",
                    "extra_fields": f"userdb_quota_rule=*:storage={quota}" if quota else "",
                    "secret": ("hash", u["hash"])
                    if u.get("hash") is not None
                    else ("password", None if u.get("password") is None else str(u["password"])),
                },
            )
            yield "vmailbox", [address, f"{domain}/{local}/"]
            if forward:
                keep = [address] if u.get("keep_copy") else []
                yield "alias", [address, _unique(keep + forward)]
            elif catchall:
                # An identity entry, or the catch-all below would take this user's mail.
                yield "alias", [address, [address]]
        for ap, a, address in _entries(d, "aliases", dp, domain, seen=seen, errors=errors):
            targets = _targets(a.get("to"), f"{ap}.to", errors)
            if not targets:
                errors.append(f"{ap}.to: {address} needs at least one target")
                continue
            yield "alias", [address, _unique(targets)]
        if catchall:
            yield "alias", [f"@{domain}", [catchall]]
    for error in errors:
        yield "error", error


def plan(
    domains: Any, base: str, name: str = "mailboxes_domains", text: bool = False, local_domains: Any = None
) -> dict[str, Any]:
    """Return the domains, Maildirs and the vmailbox and alias table entries, without any secret.

    With *text*, the two tables are returned as their source text (``key value`` lines)
    instead of ``[key, value]`` pairs: one string is far cheaper for Ansible to store
    and pass around than 10,000 pairs. *local_domains* is Postfix's ``mydestination`` on the
    host (expanded, as ``postconf -x -h mydestination`` prints it): a virtual domain listed
    there is refused. Raises :class:`MailboxesError` listing every problem found.
    """
    out: dict[str, list[Any]] = {"domains": [], "maildirs": [], "vmailbox": [], "aliases": []}
    errors: list[str] = []
    for kind, value in _walk(domains, base, name, local_domains):
        if kind == "domain":
            out["domains"].append(value)
        elif kind == "user":
            out["maildirs"].append(value["maildir"])
        elif kind == "vmailbox":
            out["vmailbox"].append(value)
        elif kind == "alias":
            out["aliases"].append(value)
        else:
            errors.append(value)
    if errors:
        raise MailboxesError("; ".join(errors))
    if text:
        return {**out, "vmailbox": render_table(out["vmailbox"]), "aliases": render_table(out["aliases"])}
    return out


def passwd_entries(domains: Any, name: str = "mailboxes_domains") -> list[dict[str, str]]:
    """Return the mail_password ``users`` list: name, extra_fields and password or hash.

    Raises :class:`MailboxesError` listing every problem found.
    """
    entries: list[dict[str, str]] = []
    errors: list[str] = []
    for kind, value in _walk(domains, "", name):
        if kind == "user":
            key, secret = value["secret"]
            entries.append({"name": value["address"], "extra_fields": value["extra_fields"], key: secret})
        elif kind == "error":
            errors.append(value)
    if errors:
        raise MailboxesError("; ".join(errors))
    return entries


def users_to_domains(users: Any, name: str = "dovecot_virtual_users") -> list[dict[str, Any]]:
    """Turn a flat list of ``{name: user@domain, password|hash}`` into ``mailboxes_domains`` entries.

    The order of domains and of users within a domain is kept. Only the shape is checked here;
    :func:`plan` checks the result like any other ``mailboxes_domains``.
    """
    errors: list[str] = []
    domains: dict[str, list[dict[str, Any]]] = {}
    for index, user in enumerate(_items(users, name, errors)):
        path = f"{name}[{index}]"
        entry = _mapping(user, path, errors)
        if entry is None:
            continue
        address = entry.get("name")
        if not isinstance(address, str) or address.count("@") != 1 or address.startswith("@") or address.endswith("@"):
            errors.append(f"{path}.name: expected one local@domain address, got {address!r}")
            continue
        unknown = sorted(set(entry) - {"name", "password", "hash"})
        if unknown:
            errors.append(
                f"{path}: {', '.join(map(str, unknown))} cannot be carried over; move this user to mailboxes_domains"
            )
            continue
        local, domain = address.split("@")
        secrets = {key: entry[key] for key in ("password", "hash") if key in entry}
        domains.setdefault(domain.lower(), []).append({"name": local, **secrets})
    if errors:
        raise MailboxesError("; ".join(errors))
    return [{"name": domain, "users": members} for domain, members in domains.items()]
