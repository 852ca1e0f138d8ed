# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backend of the postfix_config module: assemble, validate, replace, reload, health-check.

The class takes the command runner and other side effects as callables, so that it can be
unit tested with fakes.  Errors are raised as PostfixConfigError; the module turns them into
``fail_json``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.call_record import Footprint
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import ConfigModuleError
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import guard
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import (
    read_text,
    replace_keeping_mode,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import (
    HealthCheckError,
    ServiceBackend,
    ServiceStateError,
    ensure_service,
    restart_postfix,
    run_checked,
    smtp_probe,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragments import (
    FragmentError,
    load_fragments,
    merge_fragments,
    open_relay_allowed,
    parse_fragment,
    render_fragment,
    trusted_policy_services,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import (
    MasterService,
    PostfixSyntaxError,
    PostfixValidationError,
    parse_master_cf,
    render_main_cf,
    render_master_cf,
    split_list,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_table_files import (
    TableFileError,
    TableWriter,
    check_tables,
    needs_work,
    table_states,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_validate import (
    normalize_main,
    parse_postconf_warnings,
    validate_main,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postmap import readable_config_dir

#: postsuper's warnings about queue files in flight (a file cleanup is still writing, or one that
#: was delivered while postsuper looked), which postfix check prints under load.
QUEUE_IN_FLIGHT = re.compile(r"postsuper: warning: (bogus file name: \S+$|\S+: No such file or directory$)")

HEADER_TEMPLATE = (
    "Managed by Ansible (postmaster.mailserver.postfix_config). Assembled from {fragment_dir}; do not edit."
)
#: Files and directories of the live config directory that a candidate needs.
CANDIDATE_FILES = ("main.cf", "master.cf", "dynamicmaps.cf", "dynamicmaps.cf.d", "postfix-files", "postfix-files.d")
#: How far into the past a freshly written main.cf or master.cf is dated (see settle()).
SETTLE_SECONDS = 2
#: Table files larger than this are not read for a catch-all entry (the relay check).
TABLE_READ_LIMIT = 1 << 20
#: Postfix starts the text of an error entry with its severity.
POSTFIX_BAD_PREFIXES = ("fatal:", "panic:", "error:")


class PostfixConfigError(ConfigModuleError):
    """Assembly, validation, apply or health check failed."""


def settle(path: str, now: float) -> None:
    """Date a configuration file Postfix is about to read SETTLE_SECONDS into the past.

    Postfix re-reads a main.cf whose modification time is not at least a second old (it could be
    in the middle of being written), every 300 ms until it is: each postconf, postfix check and
    postfix status on a file written a moment ago took 1.5 to 2.4 s. The files here are complete
    (written to a temporary file, then renamed), so there is nothing to wait for.
    """
    with contextlib.suppress(FileNotFoundError):
        os.utime(path, (now - SETTLE_SECONDS, now - SETTLE_SECONDS))


def removed_inet_services(old_master: str | None, new_master: str | None) -> list[str]:
    """The inet services (``name/inet``) of *old_master* that *new_master* no longer has."""
    if old_master is None or new_master is None:
        return []
    try:
        old = {service.key for service in parse_master_cf(old_master) if service.type == "inet"}
        new = {service.key for service in parse_master_cf(new_master) if service.type == "inet"}
    except PostfixSyntaxError:
        return []
    return sorted(old - new)


class PostfixConfig(ServiceBackend):
    """Assemble main.cf/master.cf from fragments and apply them safely."""

    # The result of a call that changed nothing (see config_module.unchanged_result).
    UNCHANGED: ClassVar[dict[str, Any]] = {"tables": [], "reloaded": False, "restarted": None, "service": []}

    def __init__(
        self,
        *,
        fragment_dir: str,
        config_dir: str,
        reload: bool = True,
        probe: Callable[[str, int, float], str] = smtp_probe,
        exists: Callable[[str], bool] = os.path.exists,
        fragments: Mapping[str, Any] | None = None,
        ensure_running: bool = False,
        report_local_domains: bool = False,
        tables: Sequence[Mapping[str, Any]] | None = None,
        **common: Any,
    ) -> None:
        self.fragment_dir = fragment_dir
        try:
            #: Lookup tables written (and compiled) before the main.cf that refers to them.
            self.tables = check_tables(tables or [], config_dir)
        except TableFileError as exc:
            raise PostfixConfigError(str(exc)) from exc
        #: Enable the postfix unit and start it when it does not run (the postfix role's one call).
        self.ensure_running = ensure_running
        self.report_local_domains = report_local_domains
        #: Fragments to write (name -> data) or remove (name -> None) as part of this run.
        self.fragments = dict(fragments or {})
        self.config_dir = config_dir
        self._keep(**{"health_port": 25, **common})
        self.reload = reload
        self._probe = probe
        self._exists = exists
        self.main_cf = os.path.join(config_dir, "main.cf")
        self.master_cf = os.path.join(config_dir, "master.cf")

    # -- helpers -------------------------------------------------------------

    def _bin(self, name: str, required: bool) -> str | None:
        path = self._get_bin_path(name)
        if not path and required:
            raise PostfixConfigError(f"{name} was not found; is Postfix installed?")
        return path

    @property
    def header(self) -> str:
        return HEADER_TEMPLATE.format(fragment_dir=self.fragment_dir)

    # -- assembly ------------------------------------------------------------

    def fragment_changes(self) -> dict[str, tuple[str | None, str | None]]:
        """Check the fragments given to the module; return {path: (text now, new text)} for those that differ.

        None stands for no file: before, a fragment that does not exist yet; after, one to remove.
        """
        changes: dict[str, tuple[str | None, str | None]] = {}
        for name, data in sorted(self.fragments.items()):
            try:
                text = None if data is None else render_fragment(name, data)
            except FragmentError as exc:
                raise PostfixConfigError(f"fragments: {exc}") from exc
            path = os.path.join(self.fragment_dir, name)
            before = read_text(path)
            if before != text:
                changes[path] = (before, text)
        return changes

    def only_removes_from_nothing(self) -> bool:
        """Whether this run only removes fragments and the fragment directory does not exist."""
        return (
            bool(self.fragments)
            and all(data is None for data in self.fragments.values())
            and (not os.path.exists(self.fragment_dir))
        )

    def assemble(self) -> dict[str, Any]:
        """Load and merge the fragments (those given to the module replacing the files); return main/services and texts."""
        try:
            # A role that hands its fragment to the module may run before the directory exists
            # (the first run, or check mode); the directory is created when the fragment is written.
            missing_dir = bool(self.fragments) and not os.path.exists(self.fragment_dir)
            loaded = {} if missing_dir else dict(load_fragments(self.fragment_dir, skip=self.fragments))
            for name, data in self.fragments.items():
                if data is None:
                    loaded.pop(name, None)
                else:
                    # Read back from the text that will be written (sorted keys), so that
                    # main.cf comes out the same as when the file is read on a later run.
                    loaded[name] = parse_fragment(name, render_fragment(name, data))
            fragments = sorted(loaded.items())
            if not fragments:
                raise PostfixConfigError(f"no fragments (NN-name.json) found in {self.fragment_dir}")
            main, services = merge_fragments(fragments)
            main = normalize_main(main)
            main_text = render_main_cf(main, self.header)
            master_text = render_master_cf(services, self.header) if services else None
        except (FragmentError, PostfixSyntaxError) as exc:
            raise PostfixConfigError(str(exc)) from exc
        return {
            "fragments": [name for name, _data in fragments],
            "allow_open_relay": open_relay_allowed(fragments),
            "trusted_policy_services": trusted_policy_services(fragments),
            "main": main,
            "services": services,
            "main_text": main_text,
            "master_text": master_text,
        }

    # -- validation ----------------------------------------------------------

    def supported_table_types(self, postconf: str) -> list[str]:
        # The table types do not depend on main.cf, but postconf refuses to run without one.
        with readable_config_dir(self.config_dir) as config_dir:
            argv = [postconf, "-m"] if config_dir == self.config_dir else [postconf, "-c", config_dir, "-m"]
            rc, out, err = self.run(argv)
        if rc != 0:
            raise PostfixConfigError(f"postconf -m failed (rc={rc}): {err.strip()}")
        return [line.strip() for line in out.splitlines() if line.strip()]

    def _make_candidate_dir(self, main_text: str, master_text: str | None) -> str:
        parent = os.path.dirname(os.path.abspath(self.config_dir)) or "/"
        tmp = tempfile.mkdtemp(prefix=".postmaster-candidate-", dir=parent)
        os.chmod(tmp, 0o700)
        for name in CANDIDATE_FILES:
            source = os.path.join(self.config_dir, name)
            target = os.path.join(tmp, name)
            if os.path.isdir(source):
                shutil.copytree(source, target, symlinks=True)
            elif os.path.isfile(source):
                shutil.copy2(source, target)
        with open(os.path.join(tmp, "main.cf"), "w", encoding="utf-8") as handle:
            handle.write(main_text)
        if master_text is not None:
            with open(os.path.join(tmp, "master.cf"), "w", encoding="utf-8") as handle:
                handle.write(master_text)
        for name in ("main.cf", "master.cf"):
            settle(os.path.join(tmp, name), self._clock())
        return tmp

    def read_table(self, _table_type: str, name: str) -> str | None:
        """The source text of a table: the one this run writes, or the file on the host (None if unreadable)."""
        for table in self.tables:
            if table.path == name:
                return table.content
        if not name.startswith("/"):
            return None
        try:
            if os.path.getsize(name) > TABLE_READ_LIMIT:
                return None
            with open(name, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return None

    def _judged_services(self, services: Sequence[MasterService] | None) -> list[MasterService]:
        """The services whose -o overrides are judged: the assembled ones, or else the live master.cf's."""
        if services:
            return list(services)
        text = read_text(self.master_cf)
        if text is None:
            return []
        try:
            return parse_master_cf(text)
        except PostfixSyntaxError as exc:
            self.warnings.append(f"{self.master_cf} could not be parsed, its -o overrides were not checked: {exc}")
            return []

    def validate_candidate(
        self,
        main: dict[str, Any],
        main_text: str,
        master_text: str | None,
        services: Sequence[MasterService] | None = None,
        allow_open_relay: Sequence[str] = (),
        *,
        trusted_policy: Sequence[str] = (),
    ) -> None:
        """Validate in Python, then with postconf and postfix check on a candidate directory.

        An open relay is refused unless a fragment (named in *allow_open_relay*) asks for it.
        """
        postconf = self._bin("postconf", required=not self.check_mode)
        postfix = self._bin("postfix", required=not self.check_mode)
        supported = self.supported_table_types(postconf) if postconf else None
        if not postconf:
            self.warnings.append("postconf not found: only the Python validation ran (check mode)")
        try:
            planned = {t.path for t in self.tables} | {t.compiled for t in self.tables if t.compiled}
            self.warnings.extend(
                validate_main(
                    main,
                    supported,
                    lambda path: path in planned or self._exists(path),
                    services=self._judged_services(services if master_text is not None else None),
                    allow_open_relay=bool(allow_open_relay),
                    read_table=self.read_table,
                    trusted_policy_services=trusted_policy,
                )
            )
        except PostfixValidationError as exc:
            raise PostfixConfigError(str(exc)) from exc
        if not (postconf and postfix):
            return
        tmp = self._make_candidate_dir(main_text, master_text)
        try:
            rc, out, err = self.run([postconf, "-c", tmp, "-n"])
            warnings = parse_postconf_warnings(err)
            if rc != 0 or warnings:
                detail = "\n".join(warnings) or err.strip()
                raise PostfixConfigError(
                    f"postconf rejected the candidate configuration (rc={rc}):\n{detail}", warnings=warnings
                )
            rc, out, err = self.run([postfix, "-c", tmp, "check"])
            warnings = parse_postconf_warnings(err) + parse_postconf_warnings(out)
            # postfix check also runs postsuper over the live queue, which names the files that
            # cleanup is still writing while mail flows: about the queue, not the candidate.
            in_flight = [line for line in warnings if QUEUE_IN_FLIGHT.search(line)]
            self.warnings.extend(f"postfix check (not about the configuration): {line}" for line in in_flight)
            warnings = [line for line in warnings if line not in in_flight]
            if rc != 0 or warnings:
                detail = "\n".join(warnings) or err.strip() or out.strip()
                raise PostfixConfigError(
                    f"postfix check rejected the candidate configuration (rc={rc}):\n{detail}", warnings=warnings
                )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- apply ---------------------------------------------------------------

    def write_file(self, path: str, text: str, touched: Touched | None = None) -> None:
        """Write *text* to *path* atomically, keeping the mode and owner of an existing file."""
        replace_keeping_mode(self._atomic_move, path, text, touched=touched)
        if os.path.basename(path) in ("main.cf", "master.cf"):
            settle(path, self._clock())

    def _postfix_running(self, postfix: str) -> bool:
        rc, _out, _err = self.run([postfix, "status"])
        return rc == 0

    def _reload(self, postfix: str) -> None:
        run_checked(self.run, [postfix, "reload"])

    def _restart(self, postfix: str) -> None:
        """Restart Postfix (through systemd when present).

        Used for a rollback: a candidate that made smtpd die leaves the service
        throttled in the master daemon, and a reload keeps that state, so smtpd
        would stay silent for process_throttle_delay (60 s) after the good
        configuration is back. A restart clears it.
        """
        restart_postfix(self.run, self._get_bin_path, postfix)

    def _wait_for_smtp(self) -> None:
        self._wait(
            f"no SMTP 220 greeting from {self.health_host}:{self.health_port}",
            lambda timeout: self._probe(self.health_host, self.health_port, timeout),
        )

    def _check_journal(self, since: float) -> None:
        self._check_journal_for("postfix logged errors after the reload", since, ("postfix",), POSTFIX_BAD_PREFIXES)

    def health(self, since: float) -> None:
        """Raise HealthCheckError unless smtpd answers and no error was logged since *since*.

        ``postfix reload`` returns once the master daemon has been signalled; an smtpd of the previous
        configuration can still take the first connection (seen once in CI: a value only smtpd rejects went
        unnoticed). So smtpd is asked twice, a second apart: the second answer comes from a process
        started on the new configuration.
        """
        self._wait_for_smtp()
        self._sleep(1)
        self._wait_for_smtp()
        self._sleep(1)  # give journald a moment to receive what the probe caused
        self._check_journal(since)

    def write_fragments(self, changes: Mapping[str, tuple[str | None, str | None]], touched: Touched) -> None:
        """Write or remove fragment files; *touched* remembers each path (and a new directory) for a rollback.

        A missing fragment directory is created (0755); a rollback removes it again when it is empty.
        """
        if any(text is not None for _previous, text in changes.values()) and not os.path.isdir(self.fragment_dir):
            touched.makedirs(self.fragment_dir, mode=0o755)
            os.chmod(self.fragment_dir, 0o755)
        for path, (_previous, text) in changes.items():
            if text is None:
                touched.remember(path)
                if os.path.lexists(path):
                    os.unlink(path)
            else:
                self.write_file(path, text, touched)

    def apply(
        self,
        texts: dict[str, str],
        live: dict[str, str | None],
        fragments: Mapping[str, tuple[str | None, str | None]] | None = None,
        tables: Sequence[Any] = (),
    ) -> dict[str, Any]:
        """Replace the tables, fragments and live files given, reload and health-check; roll back on failure."""
        postfix = self._bin("postfix", required=True)
        backup_files = {}
        # Every path this run writes, removes or creates, as it was: content, owner, group and mode.
        touched = Touched()
        writer = TableWriter(self.config_dir, self._run, self._get_bin_path, self._atomic_move, touched)
        try:
            writer.write(tables)
        except (OSError, TableFileError) as exc:
            errors = touched.restore()
            raise PostfixConfigError(
                f"writing the tables failed: {exc}" + (f"; restoring them failed too: {errors}" if errors else "")
            ) from exc
        try:
            for path in texts:
                if live.get(path) is not None:
                    backup = f"{path}.postmaster-previous"
                    touched.remember(backup)
                    shutil.copy2(path, backup)
                    backup_files[os.path.basename(path)] = backup
            self.write_fragments(fragments or {}, touched)
            for path, text in texts.items():
                self.write_file(path, text, touched)
        except OSError as exc:
            touched.restore()
            raise PostfixConfigError(f"writing {exc.filename or 'the configuration'} failed: {exc}") from exc
        result: dict[str, Any] = {"reloaded": False, "backup_files": backup_files}
        # A changed regexp, pcre or cidr table is read at process start only: reload for tables too.
        if not texts and not tables:
            return result
        if not self.reload:
            return result
        if not self._postfix_running(postfix):
            if not self.ensure_running:
                self.warnings.append("postfix is not running: the new configuration was not reloaded")
            return result
        since = self._clock()
        removed = removed_inet_services(live.get(self.master_cf), texts.get(self.master_cf))
        try:
            if removed:
                # Postfix's master spins (and stops accepting on every service) after a reload that removes
                # an inet service while one of its processes holds a connection (seen with Postfix 3.10 when
                # amavis kept its connection to the 127.0.0.1:10025 service open); a restart ends them.
                self.warnings.append(
                    f"Postfix was restarted, not reloaded: master.cf no longer has {', '.join(removed)}"
                )
                self._restart(postfix)
                result["restarted"] = True
            else:
                self._reload(postfix)
            result["reloaded"] = True
            if self.health_check:
                self.health(since)
        except HealthCheckError as exc:
            restore_errors = touched.restore()
            for path in (self.main_cf, self.master_cf):
                if path in touched:
                    settle(path, self._clock())
            rollback = "the previous configuration was restored and Postfix restarted"
            if restore_errors:
                rollback += f" (but restoring failed: {'; '.join(restore_errors)})"
            try:
                self._restart(postfix)
                if self.health_check:
                    # Report success only once smtpd answers again.
                    self._wait_for_smtp()
            except HealthCheckError as again:
                rollback = f"the previous configuration was restored, but {again}"
            raise PostfixConfigError(f"health check failed: {exc}; {rollback}", rolled_back=True) from exc
        return result

    # -- entry point -----------------------------------------------------------

    def check_host_paths(self) -> None:
        """Refuse directories and files a local user could have prepared, before any fragment is read.

        The configuration and fragment directories (and their ancestors) must be root's real
        directories that no one else may write, every fragment a regular file of root's that no one
        else may write, and every table path one that no symlink or foreign directory leads to.
        """
        guard(PostfixConfigError, self.config_dir, "config_dir")
        guard(PostfixConfigError, self.fragment_dir, "fragment_dir")
        if os.path.isdir(self.fragment_dir):
            for name in sorted(os.listdir(self.fragment_dir)):
                if name.endswith(".json"):
                    path = os.path.join(self.fragment_dir, name)
                    guard(PostfixConfigError, path, f"fragment_dir ({name})", kind="file")
        for index, table in enumerate(self.tables):
            guard(PostfixConfigError, table.path, f"tables[{index}].path", kind="file", owners=(table.uid,))

    def footprint(self) -> Footprint:
        """What a run without a change compares and reports: the configuration directory with the fragments,
        main.cf, master.cf and the lookup tables in it (a table elsewhere is named), and Postfix when this call
        keeps it running."""
        paths = [f"tree:{self.config_dir}", self.main_cf, self.master_cf]
        if os.path.commonpath([self.config_dir, self.fragment_dir]) != self.config_dir:
            paths.append(f"tree:{self.fragment_dir}")
        for table in self.tables:
            paths.append(table.path)
            paths.extend(f"{table.path}.{suffix}" for suffix in ("db", "lmdb", "cdb"))
        return Footprint(paths, ["postfix"] if self.ensure_running else [])

    def execute(self) -> dict[str, Any]:
        """Do everything; return the module result (without ``diff`` filtering)."""
        self.check_host_paths()
        fragment_changes = self.fragment_changes()
        if self.only_removes_from_nothing():
            # A role switched off on a host where no fragment was ever written (maybe no Postfix at all).
            return {
                "changed": False,
                "main_cf": self.main_cf,
                "master_cf": self.master_cf,
                "fragments": [],
                "fragment_texts": {},
                "table_states": {},
                "parameters": {},
                "services": [],
                "reloaded": False,
                "diff": [],
                "warnings": [f"{self.fragment_dir} does not exist: there was no fragment to remove"],
            }
        assembled = self.assemble()
        live = {self.main_cf: read_text(self.main_cf), self.master_cf: read_text(self.master_cf)}
        texts = {}
        if assembled["main_text"] != live[self.main_cf]:
            texts[self.main_cf] = assembled["main_text"]
        if assembled["master_text"] is not None and assembled["master_text"] != live[self.master_cf]:
            texts[self.master_cf] = assembled["master_text"]
        if assembled["master_text"] is None:
            self.warnings.append("no fragment defines master.cf services: master.cf is left as it is")
        try:
            table_work = [table for table in self.tables if needs_work(table)]
        except TableFileError as exc:
            raise PostfixConfigError(str(exc)) from exc
        result: dict[str, Any] = {
            "changed": bool(texts or fragment_changes or table_work),
            "tables": [table.path for table in table_work],
            "main_cf": self.main_cf,
            "master_cf": self.master_cf,
            "fragments": assembled["fragments"],
            "parameters": assembled["main"],
            "services": [service.key for service in assembled["services"]],
            "reloaded": False,
            "diff": [
                {
                    "before_header": path,
                    "after_header": path,
                    "before": before or "",
                    "after": after or "",
                }
                for path, (before, after) in fragment_changes.items()
            ]
            + [
                {
                    "before_header": path,
                    "after_header": path,
                    "before": live[path] or "",
                    "after": texts.get(path, live[path] or ""),
                }
                for path in (self.main_cf, self.master_cf)
            ]
            + [
                {
                    "before_header": table.path,
                    "after_header": table.path,
                    "before": read_text(table.path) or "",
                    "after": table.content,
                }
                for table in table_work
            ],
        }
        if texts:
            self.validate_candidate(
                assembled["main"],
                assembled["main_text"],
                assembled["master_text"],
                assembled["services"],
                assembled["allow_open_relay"],
                trusted_policy=assembled["trusted_policy_services"],
            )
        if (texts or fragment_changes or table_work) and not self.check_mode:
            result.update(self.apply(texts, live, fragment_changes, table_work))
        result["fragment_texts"] = self.fragment_texts(assembled["fragments"])
        result["table_states"] = table_states(assembled["main_text"], self.config_dir)
        if self.report_local_domains:
            result["local_domains"] = self.local_domains()
        if self.ensure_running:
            result["service"] = self.start_service()
            result["changed"] = result["changed"] or bool(result["service"])
        result["warnings"] = list(self.warnings)
        return result

    def local_domains(self) -> list[str] | None:
        """mydestination as the live main.cf gives it, expanded (``postconf -x``), in lower case.

        None when there is no main.cf or no postconf yet (check mode on a fresh host).
        """
        postconf = self._bin("postconf", required=False)
        if not postconf or not os.path.isfile(self.main_cf):
            return None
        rc, out, err = self.run([postconf, "-c", self.config_dir, "-x", "-h", "mydestination"])
        if rc != 0:
            raise PostfixConfigError(f"postconf -x -h mydestination failed: {(err or out).strip()}")
        return [item.lower() for item in split_list(out.strip())]

    def fragment_texts(self, names: Sequence[str]) -> dict[str, str | None]:
        """The text of every merged fragment after this run (in check mode: as it would be).

        A role that runs later in the same play compares its own fragment with this and skips its
        postfix_config call when they are the same (one host round trip less on a converged host).
        """
        texts: dict[str, str | None] = {}
        for name in names:
            data = self.fragments.get(name)
            texts[name] = (
                render_fragment(name, data) if data is not None else read_text(os.path.join(self.fragment_dir, name))
            )
        return texts

    def start_service(self) -> list[str]:
        """Enable and start Postfix when needed; a Postfix this started must greet (nothing to roll back)."""
        since = self._clock()
        try:
            actions = ensure_service(self.run, self._get_bin_path, "postfix", check_mode=self.check_mode)
        except ServiceStateError as exc:
            raise PostfixConfigError(str(exc)) from exc
        if "started" in actions and not self.check_mode and self.health_check:
            try:
                self.health(since)
            except HealthCheckError as exc:
                raise PostfixConfigError(f"Postfix was started but is not healthy: {exc}") from exc
        return actions
