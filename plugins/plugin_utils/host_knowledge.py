# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What this play learned about a host from the configuration modules, and whether a call would change nothing.

The action plugins in front of ``mail_packages``, ``postfix_config`` and ``dovecot_config`` are the one place
that skips a module call: each records what its module found on the host (the installed packages, the
Postfix fragments and lookup tables, the Dovecot files, which paths exist) in the host fact ``postmaster_host``,
and a later call in the same play whose result that knowledge already shows is answered on the controller,
without a host round trip. Roles carry no flag of their own.

The knowledge belongs to the play that learned it (it carries the play's id): a later play, or a later run
reading a persistent fact cache, starts without it. Knowledge is recorded only for what is on the host: in
check mode a call that would change something records nothing, and a failed call forgets what was known
of its files.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_state_text import (
    fragment_text,
    table_state,
)

FACT = "postmaster_host"
# The census of the call records (call_record.py) is a fact of its own, set once per play by the first
# mail_packages call: {"play": <id>, "calls": {key: result}}. The other calls read it and never return it,
# so that the records' results do not travel with every task's result.
CALLS_FACT = "postmaster_calls"


def empty(play: str) -> dict[str, Any]:
    """Knowledge of a host at the start of play *play*: nothing.

    ``packages`` is kept as one string of names separated by spaces (None: not known): a fact reaches the
    plugins as a lazily templated container, which templates each item on its own, and a host has hundreds
    of packages.
    """
    return {
        "play": play,
        "packages": None,
        "memtotal_mb": None,
        "processors": None,
        "postfix": {},
        "dovecot": {},
        "paths": {},
        "calls": None,
    }


def facts(known: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ansible_facts`` an action returns for the knowledge *known* (without the census)."""
    return {FACT: {key: value for key, value in known.items() if key != "calls"}}


def current(facts: Any, play: str) -> dict[str, Any]:
    """A copy of the knowledge in *facts* (a host's ``ansible_facts``) when play *play* learned it; else empty.

    ``calls`` (not copied) comes from the census fact, when play *play* took it.
    """
    result = empty(play)
    census = facts.get(CALLS_FACT) if isinstance(facts, Mapping) else None
    if isinstance(census, Mapping) and census.get("play") == play and isinstance(census.get("calls"), Mapping):
        result["calls"] = census["calls"]
    known = facts.get(FACT) if isinstance(facts, Mapping) else None
    if not isinstance(known, Mapping) or known.get("play") != play:
        return result
    for key in ("postfix", "dovecot", "paths"):
        if isinstance(known.get(key), Mapping):
            result[key] = copy.deepcopy(dict(known[key]))
    if isinstance(known.get("packages"), str):
        result["packages"] = str(known["packages"])
    for key in ("memtotal_mb", "processors"):
        if isinstance(known.get(key), int) and not isinstance(known.get(key), bool):
            result[key] = int(known[key])
    return result


def installed(known: Mapping[str, Any]) -> set[str] | None:
    """The packages known to be installed, or None."""
    packages = known.get("packages")
    return set(packages.split()) if isinstance(packages, str) else None


def path_known(known: Mapping[str, Any], path: str) -> bool | None:
    """Whether *path* exists as this play saw it: True, False, or None when the play does not know."""
    path = os.path.normpath(path)
    if path in known["paths"]:
        return bool(known["paths"][path])
    for fragment_dir, state in known["postfix"].items():
        if path == fragment_dir:
            return True
        if os.path.dirname(path) == fragment_dir and path.endswith(".json"):
            return state["texts"].get(os.path.basename(path)) is not None
    for config_dir, state in known["dovecot"].items():
        if path == config_dir:
            return True
        relative = os.path.relpath(path, config_dir)
        if relative in state["digests"]:
            return True
    return None


# --- mail_packages ---------------------------------------------------------------------------------------------


def packages_answer(known: Mapping[str, Any], args: Mapping[str, Any]) -> dict[str, Any] | None:
    """The result of a mail_packages call with *args* when this play already knows all of it; else None.

    Every package of ``names`` must be installed, every ``requires`` path exist, no ``conflicts`` path exist,
    and the existence of every ``probe`` path be known. A call listing the host's packages always runs, and
    so does the play's first call, which takes the census of the call records.
    """
    packages = installed(known)
    if args.get("list_installed") or packages is None or known.get("calls") is None:
        return None
    if not all(name in packages for name in args.get("names") or []):
        return None
    for key, wanted in (("requires", True), ("conflicts", False)):
        for entry in args.get(key) or []:
            if not isinstance(entry, Mapping) or path_known(known, str(entry.get("path"))) is not wanted:
                return None
    exists = {}
    for path in args.get("probe") or []:
        state = path_known(known, str(path))
        if state is None:
            return None
        exists[path] = state
    return {"changed": False, "missing": [], "installed": [], "cache_updated": False, "exists": exists}


def learn_packages(known: dict[str, Any], args: Mapping[str, Any], result: Mapping[str, Any], check_mode: bool) -> None:
    """Record what a mail_packages call found (its result *result*)."""
    if result.get("failed"):
        return
    packages = installed(known)
    if isinstance(result.get("host_packages"), list):
        known["packages"] = " ".join(sorted(str(name) for name in result["host_packages"]))
    if isinstance(result.get("call_records"), Mapping):
        known["calls"] = dict(result["call_records"])
    if isinstance(result.get("processors"), int) and not isinstance(result.get("processors"), bool):
        known["processors"] = result["processors"]
    if isinstance(result.get("memtotal_mb"), int) and not isinstance(result.get("memtotal_mb"), bool):
        known["memtotal_mb"] = result["memtotal_mb"]
    elif packages is not None and not (check_mode and result.get("changed")):
        known["packages"] = " ".join(sorted(packages | {str(name) for name in args.get("names") or []}))
    if check_mode and result.get("changed"):
        return
    for entry in args.get("requires") or []:
        known["paths"][os.path.normpath(str(entry["path"]))] = True
    for entry in args.get("conflicts") or []:
        known["paths"][os.path.normpath(str(entry["path"]))] = False
    for path, state in (result.get("exists") or {}).items():
        known["paths"][os.path.normpath(str(path))] = bool(state)


# --- postfix_config --------------------------------------------------------------------------------------------


def _wanted_table_state(entry: Any) -> str | None:
    """The table_state a postfix_config tables entry asks for; None when the controller cannot tell.

    Owners and groups given by name are resolved on the host only, so such an entry is never taken as
    unchanged here.
    """
    if not isinstance(entry, Mapping) or not isinstance(entry.get("content"), str):
        return None
    content = entry["content"]
    if content and not content.endswith("\n"):
        content += "\n"
    ids = []
    for key in ("owner", "group"):
        value = entry.get(key)
        if value is None or value == "":
            ids.append(0)
        elif isinstance(value, int) or str(value).isdigit():
            ids.append(int(value))
        else:
            return None
    try:
        mode = int(str(entry.get("mode") or "0644"), 8)
    except ValueError:
        return None
    return table_state(content, ids[0], ids[1], mode)


def postfix_answer(known: Mapping[str, Any], args: Mapping[str, Any]) -> dict[str, Any] | None:
    """The result of a postfix_config call with *args* when it would change nothing on the host; else None.

    Every fragment must be on the host as the call renders it (or absent, for null), every table current
    (text, owner, group, mode), and the call must ask for nothing only the host can answer. A fragment the
    module would refuse is never answered here: the module then reports the error.
    """
    fragment_dir = args.get("fragment_dir")
    state = known["postfix"].get(os.path.normpath(str(fragment_dir))) if fragment_dir else None
    if state is None or state.get("config_dir") != os.path.normpath(str(args.get("config_dir") or "/etc/postfix")):
        return None
    if args.get("ensure_running") or (args.get("report_local_domains") and state.get("local_domains") is None):
        return None
    fragments = args.get("fragments") or {}
    if not isinstance(fragments, Mapping):
        return None
    # A fragment equal to the text on the host is valid: postfix_config checked it before writing it.
    try:
        for name, data in fragments.items():
            if state["texts"].get(name) != (None if data is None else fragment_text(data)):
                return None
    except (TypeError, ValueError):  # not JSON data: the module reports it
        return None
    for entry in args.get("tables") or []:
        wanted = _wanted_table_state(entry)
        if wanted is None or state["table_states"].get(entry.get("path")) != wanted:
            return None
    result: dict[str, Any] = {
        "changed": False,
        "tables": [],
        "fragments": sorted(name for name, text in state["texts"].items() if text is not None),
        "fragment_texts": dict(state["texts"]),
        "table_states": dict(state["table_states"]),
        "reloaded": False,
    }
    if args.get("report_local_domains"):
        result["local_domains"] = state["local_domains"]
    return result


def learn_postfix(known: dict[str, Any], args: Mapping[str, Any], result: Mapping[str, Any], check_mode: bool) -> None:
    """Record what a postfix_config call left on the host (its result *result*)."""
    fragment_dir = os.path.normpath(str(args.get("fragment_dir") or "/etc/postfix/postmaster.d"))
    if result.get("failed") or (check_mode and result.get("changed")) or not result.get("fragment_texts"):
        known["postfix"].pop(fragment_dir, None)
        return
    previous = known["postfix"].get(fragment_dir) or {}
    known["postfix"][fragment_dir] = {
        "config_dir": os.path.normpath(str(args.get("config_dir") or "/etc/postfix")),
        "texts": dict(result["fragment_texts"]),
        "table_states": dict(result.get("table_states") or {}),
        "local_domains": result.get("local_domains", previous.get("local_domains")),
    }


# --- dovecot_config --------------------------------------------------------------------------------------------


def dovecot_answer(known: Mapping[str, Any], args: Mapping[str, Any], digest: Any) -> dict[str, Any] | None:
    """The result of a dovecot_config call with *args* when every file is already on the host; else None.

    *digest* turns a text into its SHA-256 hex digest (the module's ``file_digests``).
    """
    config_dir = os.path.normpath(str(args.get("config_dir") or "/etc/dovecot"))
    state = known["dovecot"].get(config_dir)
    files = args.get("files")
    if state is None or args.get("ensure_running") or not isinstance(files, Mapping):
        return None
    for name, text in files.items():
        if text is None or not isinstance(text, str) or state["digests"].get(name) != digest(text):
            return None
    exists = {}
    for path in args.get("probe") or []:
        exists[path] = path_known(known, str(path))
        if exists[path] is None:
            return None
    return {"changed": False, "files": [], "reloaded": False, "file_digests": dict(state["digests"]), "exists": exists}


def learn_dovecot(known: dict[str, Any], args: Mapping[str, Any], result: Mapping[str, Any], check_mode: bool) -> None:
    """Record what a dovecot_config call left on the host (its result *result*)."""
    config_dir = os.path.normpath(str(args.get("config_dir") or "/etc/dovecot"))
    if result.get("failed") or (check_mode and result.get("changed")) or "file_digests" not in result:
        known["dovecot"].pop(config_dir, None)
        return
    known["dovecot"][config_dir] = {"digests": dict(result["file_digests"])}
    for path, state in (result.get("exists") or {}).items():
        known["paths"][os.path.normpath(str(path))] = bool(state)


def this_run(known: Any, run: str) -> Mapping[str, Any]:
    """The knowledge *known* (the fact) when a play of this run (*run*, a play id without its counter) learned it.

    For the checks a role makes on the controller (the fragments of the other roles, Postfix's local
    domains, the packages): what an earlier play of the same run saw still holds for them, as the facts a
    role set did; a persistent fact cache from another run does not. Not copied: a fact reaches a filter
    as a lazily templated container, which a deep copy would template whole.
    """
    if not isinstance(known, Mapping) or str(known.get("play", "")).rsplit("-", 1)[0] != run:
        return empty("")
    return {key: known.get(key, default) for key, default in empty(str(known["play"])).items()}
