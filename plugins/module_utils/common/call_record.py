# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Call records: what a configuration module call left on the host, so that the next run can skip it.

A configuration module that ends without a change or an error (and not in check mode) writes a record under
``RECORD_DIR`` when its action plugin gave it a ``call_record`` key (a digest of the module, its arguments and
the collection's code): the key, the module's result, and its *footprint*, every path it owns and every unit
it keeps running, as observed right after the call. The next run's first ``mail_packages`` call takes the
census (:func:`census`): it observes every record's footprint again and returns the results of the records
whose footprint is unchanged. A later call with the same key is then answered on the controller, without a
host round trip: the host is byte for byte what that call left, and the same call on the same state changes
nothing.

Anything that changed a path of the footprint (an edit, a removal, a new owner or mode) or a unit's state (a
stopped or disabled service) makes the record invalid: the call then runs on the host, and repairs it. So
the footprint must hold everything the module compares on a run without a change.

Observations (``observe_path``): a group (``group:<name>``) is ``["g", gid, members]``, an account
(``user:<name>``) ``["u", uid, gid, home, shell]``, a directory tree
(``tree:<dir>``) ``["t", digest]``, a live nftables table (``nft:<table>``, of the inet family) ``["n",
digest of its listing]``; a missing path is None; a file ``["f", mode, uid, gid, sha256]``; a
directory ``["d", mode, uid, gid]``; a symbolic link ``["l", target]``; anything else ``["o", mode]``. A
unit is ``[UnitFileState, ActiveState]`` as ``systemctl show`` gives them.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import pwd
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

RECORD_DIR = "/var/lib/postmaster-mailserver/calls"
# Footprint entries that are not plain paths: a group's members, a directory tree's every entry.
KINDS = ("group:", "user:", "tree:", "nft:")
# At most this many records are kept (the newest): a record per distinct call of every role, with room for
# calls whose arguments changed.
KEEP = 256
KEY_RE = re.compile(r"\A[0-9a-f]{64}\Z")
# The parts of a module result that are not replayed from a record.
NOT_RECORDED = ("diff", "warnings", "invocation", "changed", "msg", "deprecations")

Run = Callable[[Sequence[str]], tuple[int, str, str]]


class Footprint:
    """What a configuration module owns on the host: paths (files, directories) and systemd units.

    The directory of each path is part of it too: a directory replaced by a link, or given to another owner,
    is a change the modules' path guards refuse.
    """

    def __init__(self, paths: Iterable[str] = (), units: Iterable[str] = ()) -> None:
        named = set()
        parents = set()
        for entry in map(str, paths):
            kind, _sep, path = entry.rpartition(":") if entry.startswith(KINDS) else ("", "", entry)
            if kind not in ("group", "user", "nft"):
                path = os.path.normpath(path)
                parents.add(os.path.dirname(path))
            named.add(f"{kind}:{path}" if kind else path)
        self.paths = sorted(named | (parents - {"", "/"}))
        self.units = sorted({str(unit) for unit in units})

    def as_dict(self) -> dict[str, list[str]]:
        return {"paths": list(self.paths), "units": list(self.units)}


def _digest(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            sha.update(block)
    return sha.hexdigest()


def observe_path(path: str) -> list[Any] | None:
    """What *path* is now (see the module docstring); None when it does not exist.

    ``group:<name>`` is not a path but a group: ``["g", gid, sorted members]``, ``user:<name>`` an account:
    ``["u", uid, gid, home, shell]``; ``tree:<dir>`` is a
    directory with everything below it: ``["t", digest of every entry's relative path and observation]``.
    """
    if path.startswith("tree:"):
        return _observe_tree(path[5:])
    if path.startswith("user:"):
        try:
            user = pwd.getpwnam(path[5:])
        except KeyError:
            return None
        return ["u", user.pw_uid, user.pw_gid, user.pw_dir, user.pw_shell]
    if path.startswith("group:"):
        try:
            group = grp.getgrnam(path[6:])
        except KeyError:
            return None
        return ["g", group.gr_gid, sorted(group.gr_mem)]
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISREG(st.st_mode):
        try:
            return ["f", mode, st.st_uid, st.st_gid, _digest(path)]
        except OSError as exc:
            return ["e", str(exc)]
    if stat.S_ISDIR(st.st_mode):
        return ["d", mode, st.st_uid, st.st_gid]
    if stat.S_ISLNK(st.st_mode):
        return ["l", os.readlink(path)]
    return ["o", mode]


def _observe_tree(top: str) -> list[Any] | None:
    if not os.path.isdir(top) or os.path.islink(top):
        return observe_path(top)
    entries = [[".", observe_path(top)]]
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            entries.append([os.path.relpath(path, top), observe_path(path)])
    text = json.dumps(entries, sort_keys=True)
    return ["t", hashlib.sha256(text.encode("utf-8")).hexdigest()]


def parse_systemctl_show(output: str, units: Sequence[str]) -> dict[str, list[str]]:
    """The ``[UnitFileState, ActiveState]`` of each of *units* from ``systemctl show`` output (blocks in order)."""
    blocks: list[dict[str, str]] = [{}]
    for line in output.splitlines():
        if not line.strip():
            if blocks[-1]:
                blocks.append({})
            continue
        name, _sep, value = line.partition("=")
        blocks[-1][name.strip()] = value.strip()
    blocks = [block for block in blocks if block]
    found = {block.get("Id", ""): block for block in blocks}
    states = {}
    for index, unit in enumerate(units):
        block = found.get(unit) or found.get(f"{unit}.service")
        if block is None and index < len(blocks) and len(blocks) == len(units):
            block = blocks[index]
        block = block or {}
        states[unit] = [block.get("UnitFileState", ""), block.get("ActiveState", "")]
    return states


def observe_units(run: Run, get_bin_path: Callable[[str], str | None], units: Sequence[str]) -> dict[str, list[str]]:
    """The state of each of *units*, with one ``systemctl show`` call; units cannot be seen without systemctl."""
    units = sorted(set(units))
    if not units:
        return {}
    systemctl = get_bin_path("systemctl")
    if not systemctl:
        return {unit: ["", "no systemctl"] for unit in units}
    rc, out, _err = run([systemctl, "show", "--property=Id,UnitFileState,ActiveState", "--", *units])
    if rc != 0:
        return {unit: ["", f"systemctl show failed (rc={rc})"] for unit in units}
    return parse_systemctl_show(out, units)


def observe_entry(name: str, run: Run, get_bin_path: Callable[[str], str | None]) -> list[Any] | None:
    """:func:`observe_path`, and ``nft:<table>``: the live ``table inet <table>`` (``["n", digest]``, or None)."""
    if not name.startswith("nft:"):
        return observe_path(name)
    nft = get_bin_path("nft")
    if not nft:
        return ["x", "no nft"]
    rc, out, _err = run([nft, "list", "table", "inet", name[4:]])
    if rc != 0:
        return None
    return ["n", hashlib.sha256(out.encode("utf-8")).hexdigest()]


def observe(footprint: Mapping[str, Any], run: Run, get_bin_path: Callable[[str], str | None]) -> dict[str, Any]:
    """Observe every path and unit of *footprint* (a :meth:`Footprint.as_dict`)."""
    return {
        "paths": {path: observe_entry(path, run, get_bin_path) for path in footprint.get("paths") or []},
        "units": observe_units(run, get_bin_path, list(footprint.get("units") or [])),
    }


def recordable(result: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a module result that a record keeps (JSON data only, no diff, warnings or invocation)."""
    return json.loads(json.dumps({key: value for key, value in result.items() if key not in NOT_RECORDED}))


def _record_path(record_dir: str, key: str) -> str:
    if not KEY_RE.match(key):
        raise ValueError(f"call_record must be 64 hex digits, not {key!r}")
    return os.path.join(record_dir, f"{key}.json")


def _ensure_dir(record_dir: str) -> None:
    os.makedirs(record_dir, mode=0o700, exist_ok=True)
    os.chmod(record_dir, 0o700)


def write(
    key: str,
    module: str,
    footprint: Footprint,
    result: Mapping[str, Any],
    *,
    run: Run,
    get_bin_path: Callable[[str], str | None],
    record_dir: str | None = None,
    valid_until: float | None = None,
) -> None:
    """Record the call *key* of *module*: its result and its footprint as observed now (0600, atomically).

    *valid_until* (seconds since the epoch) ends the record's life whatever the host looks like: the call
    then runs again (a certificate that comes within its renewal time).
    """
    record_dir = record_dir or RECORD_DIR
    path = _record_path(record_dir, key)
    data = {
        "version": 1,
        "valid_until": valid_until,
        "module": module,
        "key": key,
        "footprint": footprint.as_dict(),
        "observed": observe(footprint.as_dict(), run, get_bin_path),
        "result": recordable(result),
    }
    _ensure_dir(record_dir)
    fd, temp = tempfile.mkstemp(prefix=".record.", dir=record_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, sort_keys=True)
        os.replace(temp, path)
    except BaseException:
        if os.path.lexists(temp):
            os.unlink(temp)
        raise
    prune(record_dir)


def forget(key: str, record_dir: str | None = None) -> None:
    """Remove the record *key* (a call that failed leaves none behind)."""
    record_dir = record_dir or RECORD_DIR
    with contextlib.suppress(FileNotFoundError, ValueError):
        os.unlink(_record_path(record_dir, key))


def _records(record_dir: str) -> list[str]:
    try:
        names = os.listdir(record_dir)
    except FileNotFoundError:
        return []
    return [os.path.join(record_dir, name) for name in names if name.endswith(".json") and KEY_RE.match(name[:-5])]


def prune(record_dir: str = RECORD_DIR, keep: int = KEEP) -> None:
    """Keep only the *keep* newest records."""
    paths = _records(record_dir)
    if len(paths) <= keep:
        return
    paths.sort(key=lambda path: os.lstat(path).st_mtime, reverse=True)
    for path in paths[keep:]:
        os.unlink(path)


def _load(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("result"), dict):
        return None
    if os.path.basename(path) != f"{data.get('key')}.json":
        return None
    valid_until = data.get("valid_until")
    if valid_until is not None and (not isinstance(valid_until, (int, float)) or time.time() >= valid_until):
        return None
    footprint = data.get("footprint")
    observed = data.get("observed")
    if not isinstance(footprint, dict) or not isinstance(observed, dict):
        return None
    return data


def census(
    run: Run, get_bin_path: Callable[[str], str | None], record_dir: str = RECORD_DIR, *, check_mode: bool = False
) -> dict[str, dict[str, Any]]:
    """The results of the records whose footprint is as recorded, by key; the others are removed.

    Each path is observed once and all units with one ``systemctl show`` call, however many records name them.
    In check mode nothing is removed.
    """
    if os.path.islink(record_dir) or (os.path.isdir(record_dir) and os.stat(record_dir).st_uid != os.geteuid()):
        return {}  # not a directory this user made: trust none of it
    loaded = []
    for path in _records(record_dir):
        data = _load(path)
        if data is None:
            if not check_mode:
                os.unlink(path)
            continue
        loaded.append((path, data))
    paths: dict[str, Any] = {}
    units: set[str] = set()
    for _path, data in loaded:
        for name in data["footprint"].get("paths") or []:
            if name not in paths:
                paths[name] = observe_entry(name, run, get_bin_path)
        units.update(data["footprint"].get("units") or [])
    unit_states = observe_units(run, get_bin_path, sorted(units))
    valid = {}
    for path, data in loaded:
        now = {
            "paths": {name: paths[name] for name in data["footprint"].get("paths") or []},
            "units": {name: unit_states.get(name) for name in data["footprint"].get("units") or []},
        }
        if now == data["observed"]:
            valid[data["key"]] = data["result"]
        elif not check_mode:
            os.unlink(path)
    return valid


def call_key(module: str, args: Mapping[str, Any], code: str) -> str:
    """The record key of a call of *module* with *args* under the collection code digest *code* (controller side)."""
    text = json.dumps({"module": module, "args": args, "code": code}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
