# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A role's preflight and packages in one host call.

Every role starts the same way on the host: make sure the roles it builds on were applied (a
path exists), refuse a conflicting one (a path exists that must not), then install its Debian
packages. Done as separate tasks (stat, assert, debconf, apt) that costs a round trip each,
on every run; here it is one call, and on a converged host it reads the dpkg database once
(``dpkg-query``) instead of opening apt's cache.

The checks run before anything is installed, so a missing prerequisite leaves the host as it was.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+\Z")
DEBCONF_QUESTION_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]*/[A-Za-z0-9_./-]+\Z")
DEBCONF_VTYPES = ("select", "multiselect", "string", "boolean", "note", "text", "password", "title")
# apt's own record of the last successful update (written by apt's periodic job and by
# apt-get update through APT::Update::Post-Invoke-Success on Debian), then the lists directory.
UPDATE_STAMPS = ("/var/lib/apt/periodic/update-success-stamp", "/var/lib/apt/lists")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
#: invoke-rc.d asks this script whether a package's maintainer scripts may start a service.
POLICY_RC_D = "/usr/sbin/policy-rc.d"
MEMINFO = "/proc/meminfo"


@contextlib.contextmanager
def held_services(path: str) -> Iterator[None]:
    """Keep maintainer scripts from starting services while packages install (exit 101 = action forbidden).

    A role then starts its daemon itself, after its configuration is in place (freshclam never runs
    before it is masked, amavis never runs with a short host name). An existing policy-rc.d is kept
    and put back afterwards.
    """
    backup = None
    if os.path.lexists(path):
        backup = f"{path}.postmaster-held"
        os.replace(path, backup)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("#!/bin/sh\n# Written by postmaster.mailserver.mail_packages during an install.\nexit 101\n")
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        if backup is not None:
            os.replace(backup, path)


class MailPackagesError(Exception):
    """A bad option, a failed preflight check, or a failed apt/dpkg command."""


def check_names(names: Sequence[Any]) -> list[str]:
    """Return *names* as Debian package names, or raise naming the bad entry."""
    checked = []
    for index, name in enumerate(names):
        if not isinstance(name, str) or not PACKAGE_RE.match(name):
            raise MailPackagesError(f"names[{index}]: {name!r} is not a Debian package name")
        if name not in checked:
            checked.append(name)
    return checked


def debconf_lines(entries: Sequence[Mapping[str, Any]]) -> str:
    """Render debconf-set-selections input, refusing anything that could add a line."""
    lines = []
    for index, entry in enumerate(entries):
        package = entry.get("package")
        question = entry.get("question")
        vtype = entry.get("vtype")
        value = entry.get("value")
        if not isinstance(package, str) or not PACKAGE_RE.match(package):
            raise MailPackagesError(f"debconf[{index}].package: {package!r} is not a Debian package name")
        if not isinstance(question, str) or not DEBCONF_QUESTION_RE.match(question):
            raise MailPackagesError(f"debconf[{index}].question: {question!r} is not a debconf question")
        if vtype not in DEBCONF_VTYPES:
            raise MailPackagesError(f"debconf[{index}].vtype: {vtype!r} is not one of {', '.join(DEBCONF_VTYPES)}")
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, (str, int)) or any(c in str(value) for c in "\r\n\0"):
            raise MailPackagesError(f"debconf[{index}].value: must be one line of text (got {value!r})")
        lines.append(f"{package} {question} {vtype} {value}")
    return "".join(line + "\n" for line in lines)


def parse_dpkg_query(output: str) -> set[str]:
    """Names of the packages that ``dpkg-query -W -f '${Package}\\t${db:Status-Abbrev}\\n'`` shows installed."""
    installed = set()
    for line in output.splitlines():
        name, _tab, status = line.partition("\t")
        # "ii " installed; "iU"/"iF" (unpacked, half-configured) need apt to finish them.
        if status.startswith("ii"):
            installed.add(name.split(":", 1)[0])
    return installed


def memtotal_mb(path: str = MEMINFO) -> int | None:
    """The host's memory in MiB as ``ansible_facts.memtotal_mb`` gives it (MemTotal), or None when unknown.

    Read in the host census call, so that a play that gathers only the ``min`` facts still knows it
    (the amavis role's ClamAV memory check) without another host call.
    """
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                key, _colon, value = line.partition(":")
                if key == "MemTotal":
                    number, _space, unit = value.strip().partition(" ")
                    return int(number) // 1024 if unit == "kB" and number.isdigit() else None
    except (OSError, ValueError):
        return None
    return None


class MailPackages:
    """Preflight checks, then install what is missing."""

    def __init__(
        self,
        run_command: Callable[..., Any],
        get_bin_path: Callable[[str], str | None],
        *,
        check_mode: bool = False,
        exists: Callable[[str], bool] = os.path.lexists,
        mtime: Callable[[str], float] = os.path.getmtime,
        clock: Callable[[], float] = time.time,
        policy_rc_d: str = POLICY_RC_D,
        meminfo: str = MEMINFO,
    ) -> None:
        self._run = run_command
        self._bin = get_bin_path
        self.check_mode = check_mode
        self._exists = exists
        self._mtime = mtime
        self._clock = clock
        self.warnings: list[str] = []
        self.acted = False  # debconf or apt ran: a failure after this may have changed the host
        self._policy_rc_d = policy_rc_d
        self._meminfo = meminfo

    def run(self, argv: Sequence[str], data: str | None = None) -> str:
        kwargs: dict[str, Any] = {"environ_update": dict(APT_ENV)}
        if data is not None:
            kwargs["data"] = data
            kwargs["binary_data"] = True
        rc, out, err = self._run(list(argv), **kwargs)
        if rc != 0:
            tail = "\n".join((err or out).strip().splitlines()[-15:])
            raise MailPackagesError(f"{' '.join(argv)} failed (rc={rc}):\n{tail}")
        return out

    def preflight(self, requires: Sequence[Mapping[str, str]], conflicts: Sequence[Mapping[str, str]]) -> None:
        """Raise the first entry's message when a required path is missing or a conflicting one exists.

        In check mode a missing required path is only a warning: a check run on a fresh host cannot
        see what the roles before this one would have created.
        """
        for entry in requires:
            if not self._exists(entry["path"]):
                message = entry.get("msg") or f"{entry['path']} does not exist"
                if self.check_mode:
                    self.warnings.append(f"{message} (check mode: a real run stops here)")
                else:
                    raise MailPackagesError(message)
        for entry in conflicts:
            if self._exists(entry["path"]):
                raise MailPackagesError(entry.get("msg") or f"{entry['path']} exists")

    def installed(self, names: Sequence[str], *, every: bool = False) -> set[str]:
        """The packages of *names* that are installed; with *every*, every package installed on the host."""
        if not names and not every:
            return set()
        dpkg_query = self._bin("dpkg-query")
        if not dpkg_query:
            raise MailPackagesError("dpkg-query not found: only Debian hosts are supported")
        # rc 1 only means that some name is unknown to dpkg (never installed): not an error.
        _rc, out, _err = self._run(
            [dpkg_query, "-W", "-f", "${Package}\t${db:Status-Abbrev}\n", *([] if every else names)],
            environ_update=dict(APT_ENV),
        )
        return parse_dpkg_query(out)

    def cache_age(self) -> float | None:
        for stamp in UPDATE_STAMPS:
            try:
                return self._clock() - self._mtime(stamp)
            except OSError:
                continue
        return None

    def execute(
        self,
        names: Sequence[str],
        *,
        debconf: Sequence[Mapping[str, Any]] = (),
        requires: Sequence[Mapping[str, str]] = (),
        conflicts: Sequence[Mapping[str, str]] = (),
        probe: Sequence[str] = (),
        cache_valid_time: int = 3600,
        install_recommends: bool = True,
        hold_services: bool = False,
        list_installed: bool = False,
    ) -> dict[str, Any]:
        wanted = check_names(names)
        selections = debconf_lines(debconf)
        self.preflight(requires, conflicts)
        # One dpkg-query either way: with list_installed it lists every package, not just ours.
        present = self.installed(wanted, every=list_installed)
        missing = [name for name in wanted if name not in present]
        result: dict[str, Any] = {
            "changed": bool(missing),
            "missing": missing,
            "installed": [],
            "cache_updated": False,
            "exists": {},
        }
        if missing and not self.check_mode:
            with held_services(self._policy_rc_d) if hold_services else contextlib.nullcontext():
                self.install(
                    wanted, missing, selections, cache_valid_time, result, install_recommends=install_recommends
                )
        # After the install: a package may create what is probed (a configuration file).
        result["exists"] = {path: self._exists(path) for path in probe}
        if list_installed:
            if result["installed"]:
                present = self.installed(wanted, every=True)
            result["host_packages"] = sorted(present)
            memory = memtotal_mb(self._meminfo)
            if memory is not None:
                result["memtotal_mb"] = memory
            result["processors"] = len(os.sched_getaffinity(0))
        return result

    def install(
        self,
        wanted: Sequence[str],
        missing: Sequence[str],
        selections: str,
        cache_valid_time: int,
        result: dict,
        *,
        install_recommends: bool,
    ) -> None:
        self.acted = True
        if selections:
            setter = self._bin("debconf-set-selections")
            if not setter:
                raise MailPackagesError("debconf-set-selections not found (package debconf)")
            self.run([setter], data=selections)
        apt_get = self._bin("apt-get")
        if not apt_get:
            raise MailPackagesError("apt-get not found: only Debian hosts are supported")
        age = self.cache_age()
        if age is None or age > cache_valid_time:
            self.run([apt_get, "update", "-q"])
            result["cache_updated"] = True
        self.run(
            [
                apt_get,
                "install",
                "-y",
                "-q",
                *([] if install_recommends else ["--no-install-recommends"]),
                "-o",
                "Dpkg::Options::=--force-confdef",
                "-o",
                "Dpkg::Options::=--force-confold",
                *missing,
            ]
        )
        now = self.installed(wanted)
        still = [name for name in wanted if name not in now]
        if still:
            raise MailPackagesError(f"apt-get install left these packages not installed: {', '.join(still)}")
        result["installed"] = list(missing)
