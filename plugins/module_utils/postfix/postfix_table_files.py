# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lookup tables written by postfix_config with the configuration that uses them.

A role hands postfix_config its tables (source text, type, mode) together with its fragment, so
that both are written in one host call, the tables before the main.cf that refers to them, and a
failed health check restores both. Paths are confined: a table lives directly in the Postfix
configuration directory (or is /etc/aliases), and never replaces one of Postfix's own files.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import (
    POSTFIX_RESERVED,
    POSTFIX_RESERVED_SUFFIXES,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import write_atomically
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_state_text import table_state
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postmap import (
    FLAT_TYPES,
    SUFFIXES,
    Postmap,
    PostmapError,
    candidate_problems,
    db_path,
)

ALIASES_PATH = "/etc/aliases"
#: Files of the configuration directory that are Postfix's own (or ours), never a table: mail_paths' policy.
RESERVED = POSTFIX_RESERVED


class TableFileError(Exception):
    """A bad table entry, or a table that could not be written or compiled."""


@dataclass
class TableFile:
    path: str
    type: str
    aliases: bool
    content: str
    mode: int
    uid: int
    gid: int
    #: What the table was made from (a role variable), named in errors.
    origin: str = ""

    @property
    def compiled(self) -> str | None:
        return None if self.type in FLAT_TYPES else db_path(self.path, self.type)


def _id(value: Any, kind: str, where: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    try:
        return pwd.getpwnam(str(value)).pw_uid if kind == "owner" else grp.getgrnam(str(value)).gr_gid
    except KeyError:
        raise TableFileError(f"{where}.{kind}: no such {'user' if kind == 'owner' else 'group'} {value!r}") from None


def check_tables(entries: Sequence[Mapping[str, Any]], config_dir: str) -> list[TableFile]:
    """Validate the tables option; errors name the entry."""
    tables = []
    seen: set[str] = set()
    config_dir = os.path.normpath(config_dir)
    for index, entry in enumerate(entries):
        where = f"tables[{index}]"
        path = entry.get("path")
        if not isinstance(path, str) or not path.startswith("/") or os.path.normpath(path) != path:
            raise TableFileError(f"{where}.path: {path!r} must be an absolute, normalised path")
        aliases = bool(entry.get("aliases", False))
        name = os.path.basename(path)
        if aliases and path == ALIASES_PATH:
            pass
        elif os.path.dirname(path) != config_dir:
            raise TableFileError(
                f"{where}.path: {path} is not directly in {config_dir} (nor {ALIASES_PATH} with aliases)"
            )
        elif name in RESERVED or name.startswith(".") or name.endswith(POSTFIX_RESERVED_SUFFIXES):
            raise TableFileError(f"{where}.path: {name} is one of Postfix's own files or a compiled table")
        if any(c in path for c in "\n\r\0 "):
            raise TableFileError(f"{where}.path: {path!r} contains a space or control character")
        if path in seen:
            raise TableFileError(f"{where}.path: {path} is given twice")
        seen.add(path)
        table_type = entry.get("type") or "hash"
        if table_type not in (*SUFFIXES, *FLAT_TYPES):
            raise TableFileError(f"{where}.type: {table_type!r} is not a table type this module writes")
        if aliases and table_type in FLAT_TYPES:
            raise TableFileError(f"{where}.aliases: needs an indexed type, not {table_type}")
        content = entry.get("content")
        if not isinstance(content, str) or "\0" in content:
            raise TableFileError(f"{where}.content: must be text")
        if content and not content.endswith("\n"):
            content += "\n"
        try:
            mode = int(str(entry.get("mode") or "0644"), 8)
        except ValueError:
            raise TableFileError(f"{where}.mode: {entry.get('mode')!r} is not an octal mode") from None
        if mode & 0o7022:
            raise TableFileError(f"{where}.mode: {entry.get('mode')} lets others write the table (or is setuid)")
        tables.append(
            TableFile(
                path=path,
                type=table_type,
                aliases=aliases,
                content=content,
                mode=mode,
                uid=_id(entry.get("owner"), "owner", where),
                gid=_id(entry.get("group"), "group", where),
                origin=str(entry.get("origin") or ""),
            )
        )
    return tables


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def needs_work(table: TableFile) -> bool:
    """Whether the source text, its owner or mode, or the compiled file is not as wanted."""
    try:
        st = os.lstat(table.path)
    except FileNotFoundError:
        return True
    if not stat.S_ISREG(st.st_mode):
        raise TableFileError(f"{table.path} exists and is not a regular file (symlinks are not followed)")
    if _read(table.path) != table.content:
        return True
    if (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) != (table.uid, table.gid, table.mode):
        return True
    if table.compiled is None:
        return False
    try:
        db = os.stat(table.compiled)
    except FileNotFoundError:
        return True
    return db.st_mtime < st.st_mtime or (db.st_uid, db.st_gid, stat.S_IMODE(db.st_mode)) != (
        table.uid,
        table.gid,
        table.mode,
    )


#: A table reference in a main.cf value (``hash:/etc/postfix/vmailbox``, also inside ``proxy:``).
_TABLE_REF = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join((*SUFFIXES, *FLAT_TYPES)) + r"):(/[^\s,]+)")


def table_states(main_text: str, config_dir: str) -> dict[str, str]:
    """The tables of *config_dir* that *main_text* refers to, each that is current: path -> table_state.

    A table is current when its source is a regular file and, for an indexed type, its compiled
    file is not older and has the same owner and mode: a tables entry with that text, owner and
    mode would need no work (needs_work). Tables that are not current are left out.
    """
    config_dir = os.path.normpath(config_dir)
    states: dict[str, str] = {}
    for table_type, path in _TABLE_REF.findall(main_text):
        if path in states or os.path.dirname(path) != config_dir:
            continue
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                continue
            content = _read(path)
        except (OSError, UnicodeDecodeError):
            continue
        if content is None:
            continue
        mode = stat.S_IMODE(st.st_mode)
        current = TableFile(path, table_type, False, content, mode, st.st_uid, st.st_gid)
        try:
            if needs_work(current):
                continue
        except TableFileError:
            continue
        states[path] = table_state(content, st.st_uid, st.st_gid, mode)
    return states


class TableWriter:
    """Write and compile tables; remember each source and compiled file as it was, for a rollback.

    *touched* is shared with the caller (postfix_config's run), so that one restore puts back the
    tables with the rest; without it the writer keeps its own.
    """

    def __init__(
        self,
        config_dir: str,
        run_command: Callable[..., Any],
        get_bin_path: Callable[[str], str | None],
        atomic_move: Callable[[str, str], Any],
        touched: Touched | None = None,
    ) -> None:
        self.config_dir = config_dir
        self._run = run_command
        self._get_bin_path = get_bin_path
        self._atomic_move = atomic_move
        #: Every path written: source and compiled files, with their content, owner, group and mode before.
        self.touched = touched if touched is not None else Touched()

    def _compile(self, table: TableFile) -> None:
        if table.compiled is None:
            return
        try:
            Postmap(
                path=table.path,
                table_type=table.type,
                aliases=table.aliases,
                config_dir=self.config_dir,
                run_command=self._run,
                get_bin_path=self._get_bin_path,
            ).execute()
        except PostmapError as exc:
            raise TableFileError(str(exc)) from exc

    def _put(self, table: TableFile, text: str) -> None:
        write_atomically(self._atomic_move, table.path, text, f".{os.path.basename(table.path)}.")
        fd = os.open(table.path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fchown(fd, table.uid, table.gid)
            os.fchmod(fd, table.mode)
        finally:
            os.close(fd)
        # A rewrite within the same second as the compiled file must still count as newer.
        with contextlib.suppress(FileNotFoundError):
            if table.compiled and os.stat(table.compiled).st_mtime >= os.stat(table.path).st_mtime:
                os.unlink(table.compiled)
        self._compile(table)

    def check_candidates(self, tables: Sequence[TableFile]) -> None:
        """Open every regexp, pcre and cidr candidate with Postfix's own lookup before any table is replaced.

        The candidate is a file in a private temporary directory; any warning is an error, so a
        pattern that does not compile never reaches the live table.
        """
        for table in tables:
            problems = candidate_problems(
                self._run, self._get_bin_path, config_dir=self.config_dir, table_type=table.type,
                path=table.path, content=table.content,
            )  # fmt: skip
            if problems:
                name = f"{table.origin} ({table.path})" if table.origin else table.path
                raise TableFileError(
                    f"{name}: Postfix's own lookup refused the candidate {table.type} table (nothing was "
                    "replaced): " + "; ".join(problems)
                )

    def write(self, tables: Sequence[TableFile]) -> None:
        self.check_candidates(tables)
        for table in tables:
            # The compiled file first: restored in reverse order, it comes back after (newer than) its source.
            if table.compiled:
                self.touched.remember(table.compiled)
            self.touched.remember(table.path)
            self._put(table, table.content)

    def restore(self) -> list[str]:
        """Put every path written back as it was; return the errors (a rollback goes on regardless)."""
        return self.touched.restore()
