# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backend of the postmap module: compile a lookup table when its source is newer."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import guard

ENV = {"LC_ALL": "C"}
SUFFIXES = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb"}
#: Table types Postfix reads from their source file: nothing to compile.
FLAT_TYPES = ("regexp", "pcre", "cidr", "texthash")


class PostmapError(Exception):
    """The table cannot be compiled."""


def db_path(path: str, table_type: str) -> str:
    """Return the compiled file of source *path* for *table_type*."""
    try:
        return path + SUFFIXES[table_type]
    except KeyError:
        raise PostmapError(f"unsupported table type {table_type!r}; use one of {', '.join(SUFFIXES)}") from None


@contextlib.contextmanager
def readable_config_dir(config_dir: str) -> Iterator[str]:
    """Yield *config_dir*, or a temporary one with an empty main.cf while *config_dir* has none.

    Debian's "No configuration" install leaves no main.cf, and postmap, postalias and postconf
    refuse to run without one. Until the postfix role has assembled it, an empty one stands in:
    the tools then use Postfix's built-in defaults, which is what a placeholder file would give.
    """
    if os.path.exists(os.path.join(config_dir, "main.cf")):
        yield config_dir
        return
    scratch = tempfile.mkdtemp(prefix="postmaster-postfix-")
    try:
        with open(os.path.join(scratch, "main.cf"), "w", encoding="utf-8"):
            pass
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


#: Table types whose source Postfix parses when it opens them: a candidate is checked with a lookup.
LOOKUP_CHECKED_TYPES = ("regexp", "pcre", "cidr")
#: A key no table is meant to match; the lookup only makes postmap open (and so parse) the table.
PROBE_KEY = "postmaster-table-probe"
_BAD_MARKS = ("warning:", "error:", "fatal:", "panic:")


def lookup_problems(
    run_command: Callable[..., Any],
    get_bin_path: Callable[[str], str | None],
    config_dir: str,
    table_type: str,
    path: str,
) -> list[str]:
    """What Postfix's own lookup (``postmap -q``) says about the table source at *path*; empty when it is clean.

    A regexp, pcre or cidr table is parsed when it is opened, and a pattern that does not compile
    (or a network that is not one) is only a warning: the line is skipped and the daemon that opens
    the table later logs it again, or defers mail. So any warning counts.
    """
    binary = get_bin_path("postmap")
    if not binary:
        return ["postmap was not found; is Postfix installed?"]
    with readable_config_dir(config_dir) as readable:
        argv = [binary, "-c", readable, "-q", PROBE_KEY, f"{table_type}:{path}"]
        rc, out, err = run_command(argv, environ_update=dict(ENV))
    lines = [line.strip() for line in f"{err or ''}\n{out or ''}".splitlines() if line.strip()]
    problems = [line for line in lines if any(mark in line for mark in _BAD_MARKS)]
    if rc not in (0, 1) and not problems:
        problems = [f"{' '.join(argv)} failed (rc={rc}): {' '.join(lines)}"]
    return problems


def candidate_problems(
    run_command: Callable[..., Any],
    get_bin_path: Callable[[str], str | None],
    *,
    config_dir: str,
    table_type: str,
    path: str,
    content: str,
) -> list[str]:
    """lookup_problems of *content* as the next text of the table at *path* (nothing is replaced).

    The candidate is a file in a private temporary directory, removed afterwards; the problems
    name *path*. Only LOOKUP_CHECKED_TYPES are looked up (others give no problems).
    """
    if table_type not in LOOKUP_CHECKED_TYPES:
        return []
    # A private directory of its own (0700), not the table's: a refused candidate leaves the config
    # directory byte-identical, its mtime included.
    with tempfile.TemporaryDirectory(prefix="postmaster-candidate-", ignore_cleanup_errors=True) as scratch:
        candidate = os.path.join(scratch, os.path.basename(path) or "table")
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        problems = lookup_problems(run_command, get_bin_path, config_dir, table_type, candidate)
    return [problem.replace(candidate, path) for problem in problems]


class Postmap:
    """Compile ``type:path`` with postmap (or postalias) and copy the source's owner and mode."""

    def __init__(
        self,
        *,
        path: str,
        table_type: str = "hash",
        aliases: bool = False,
        config_dir: str = "/etc/postfix",
        run_command: Callable[..., Any],
        get_bin_path: Callable[[str], str | None],
        check_mode: bool = False,
        chown: Callable[[str, int, int], Any] = os.chown,
        chmod: Callable[[str, int], Any] = os.chmod,
    ) -> None:
        self.path = path
        self.table_type = table_type
        self.aliases = aliases
        self.config_dir = config_dir
        self._run = run_command
        self._get_bin_path = get_bin_path
        self.check_mode = check_mode
        self._chown = chown
        self._chmod = chmod
        self.db_path = db_path(path, table_type)

    @property
    def command(self) -> str:
        return "postalias" if self.aliases else "postmap"

    def _source_stat(self) -> os.stat_result:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise PostmapError(f"source file {self.path} does not exist") from None
        if not stat.S_ISREG(st.st_mode):
            raise PostmapError(f"source {self.path} is not a regular file")
        return st

    def state(self) -> str:
        """Return 'missing', 'stale' or 'current' for the compiled file."""
        source = self._source_stat()
        try:
            compiled = os.stat(self.db_path)
        except FileNotFoundError:
            return "missing"
        return "stale" if compiled.st_mtime < source.st_mtime else "current"

    def argv(self, config_dir: str | None = None) -> list[str]:
        binary = self._get_bin_path(self.command)
        if not binary:
            raise PostmapError(f"{self.command} was not found; is Postfix installed?")
        return [binary, "-c", config_dir or self.config_dir, f"{self.table_type}:{self.path}"]

    def compile(self) -> None:
        """Run postmap (or postalias), with an empty stand-in main.cf when there is none yet."""
        with readable_config_dir(self.config_dir) as config_dir:
            argv = self.argv(config_dir)
            rc, out, err = self._run(argv, environ_update=dict(ENV))
        if rc != 0:
            raise PostmapError(f"{' '.join(argv)} failed (rc={rc}): {(err or out or '').strip()}")

    @staticmethod
    def _attrs(st: os.stat_result) -> dict[str, int]:
        return {"owner": st.st_uid, "group": st.st_gid, "mode": stat.S_IMODE(st.st_mode)}

    def execute(self) -> dict[str, Any]:
        owner = self._source_stat().st_uid
        guard(PostmapError, self.path, "path", kind="file", owners=(owner,))
        guard(PostmapError, self.db_path, "path (its compiled file)", kind="file", owners=(owner,))
        source = self._attrs(self._source_stat())
        before_state = self.state()
        rebuild = before_state != "current"
        before: dict[str, Any] = {"state": before_state}
        if before_state != "missing":
            before.update(self._attrs(os.stat(self.db_path)))
        after: dict[str, Any] = {"state": "current", **source}
        if rebuild and not self.check_mode:
            self.compile()
            if not os.path.exists(self.db_path):
                raise PostmapError(f"{self.command} succeeded but {self.db_path} was not created")
        fix_attrs = False
        if not self.check_mode or not rebuild:
            current = self._attrs(os.stat(self.db_path)) if os.path.exists(self.db_path) else None
            if current is not None and current != source:
                fix_attrs = True
                if not self.check_mode:
                    if (current["owner"], current["group"]) != (source["owner"], source["group"]):
                        self._chown(self.db_path, source["owner"], source["group"])
                    if current["mode"] != source["mode"]:
                        self._chmod(self.db_path, source["mode"])
        return {
            "changed": rebuild or fix_attrs,
            "rebuilt": rebuild,
            "db_path": self.db_path,
            "diff": {
                "before_header": self.db_path,
                "after_header": self.db_path,
                "before": _describe(before),
                "after": _describe(after),
            },
        }


def _describe(attrs: dict[str, Any]) -> str:
    parts = [f"state: {attrs['state']}"]
    if "mode" in attrs:
        parts.append(f"owner: {attrs['owner']}:{attrs['group']}")
        parts.append(f"mode: {attrs['mode']:04o}")
    return "\n".join(parts) + "\n"
