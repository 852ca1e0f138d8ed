# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The backup role's settings, validated and rendered: restic's files and the systemd timer.

``check_settings`` validates the role's variables (without the ``backup_`` prefix) on the
controller, before the host changes, and again in the backup_config module. Errors name the
variable and the entry (``backup_paths[2]``). The render functions are pure.

restic (0.14 on Debian 12, 0.18 on Debian 13; a repository made by either opens with the other)
reads its repository and password from files named in its environment (``RESTIC_REPOSITORY_FILE``,
``RESTIC_PASSWORD_FILE``), so neither is ever on a command line. The job
(``/usr/local/sbin/postmaster-backup``, a shell script shipped with the role) copies every mailbox
with Dovecot's own ``doveadm backup`` into a staging Maildir first, which keeps messages, UIDs,
UIDVALIDITY and flags consistent however busy the mailbox is, and then backs the staging tree and
the collection's state up with ``restic backup``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import (
    PathPolicyError,
    deny_reason,
    lexical,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate import (
    shown,
    true_or_false,
    whole_number,
)

HEADER = "# Managed by Ansible (postmaster.mailserver.backup_config); do not edit.\n"
CONF_DIR = "/etc/postmaster/backup"
SCRIPT = "/usr/local/sbin/postmaster-backup"
UNIT_DIR = "/etc/systemd/system"
SERVICE = "postmaster-backup.service"
TIMER = "postmaster-backup.timer"
CACHE_DIR = "/var/cache/postmaster-backup"
SETTING_KEYS = (
    "repository",
    "password",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "schedule",
    "randomized_delay",
    "mail",
    "staging_dir",
    "queue",
    "paths",
    "restore_paths",
)
#: Trees a local repository or the staging directory never lies in, besides the common deny lists:
#: the mail store and Postfix's queue (a backup inside what it backs up), and the configuration.
NOT_FOR_BACKUPS = ("/etc", "/var/mail", "/var/spool", "/var/lib/dovecot", "/var/lib/postfix", "/var/vmail")
KEEP = (0, 1000)
DELAY = (0, 86400)
_USER_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}\Z")
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z"
)
_REST_RE = re.compile(
    r"^rest:(?P<scheme>https?)://(?:(?P<user>[A-Za-z0-9._~-]{1,64}):(?P<password>[A-Za-z0-9._~%!*+-]{1,256})@)?"
    r"(?P<host>[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?(?P<path>/[A-Za-z0-9._~/-]*)?\Z"
)
_SFTP_RE = re.compile(r"^sftp:(?P<user>[^@:/\s]+)@(?P<host>[^:/\s]+):(?P<path>/\S*)\Z")
#: systemd calendar expressions: digits, names, '*', ':', '-', '/', ',', '.', '~' and spaces; the module asks
#: systemd-analyze for the final word.
_CALENDAR_RE = re.compile(r"^[A-Za-z0-9*:/,.~ -]{1,64}\Z")


class BackupSettingsError(ValueError):
    """A setting that cannot become a working backup; the message names it."""


_describe = shown
_int = partial(whole_number, error=BackupSettingsError)
_bool = partial(true_or_false, error=BackupSettingsError)


def _control(value: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in value)


def _local_dir(value: Any, where: str, what: str) -> str:
    """A local directory for backups: absolute, plain, outside system, world-writable and mail trees."""
    try:
        path = lexical(value, where)
    except PathPolicyError as exc:
        raise BackupSettingsError(str(exc)) from None
    reason = deny_reason(path)
    if reason is None:
        for tree in NOT_FOR_BACKUPS:
            if path == tree or path.startswith(tree + "/"):
                reason = f"lies in {tree}, which the backup itself reads or the system owns"
                break
    if reason:
        raise BackupSettingsError(
            f"{where}: {path} {reason}; {what} must be a directory of its own, such as /srv/backup/mail or a "
            "mounted backup disk"
        )
    return path


def check_repository(value: Any, where: str) -> dict[str, str]:
    """The repository as ``{"kind": local|sftp|rest, "location": <restic's string>, "path": <local path or "">}``.

    An already checked repository (that mapping, as the module receives it from the role) is checked again by its
    location.
    """
    if isinstance(value, Mapping) and set(value) == {"kind", "location", "path"}:
        value = value["location"]
    if not isinstance(value, str) or not value:
        raise BackupSettingsError(
            f"{where}: must be a local directory, sftp:user@host:/path or rest:https://host/path, got {_describe(value)}"
        )
    if _control(value) or any(c.isspace() for c in value):
        raise BackupSettingsError(f"{where}: {value!r} contains a space, a newline or another control character")
    if value.startswith("/"):
        path = _local_dir(value, where, "a local repository")
        return {"kind": "local", "location": path, "path": path}
    if value.startswith("sftp:"):
        match = _SFTP_RE.match(value)
        if not match or not _USER_RE.match(match["user"]) or not _HOST_RE.match(match["host"]):
            raise BackupSettingsError(f"{where}: {value!r} is not sftp:user@host:/absolute/path")
        try:
            lexical(match["path"], where)
        except PathPolicyError as exc:
            raise BackupSettingsError(str(exc)) from None
        return {"kind": "sftp", "location": value, "path": ""}
    if value.startswith("rest:"):
        match = _REST_RE.match(value)
        if not match or (match["port"] and not 0 < int(match["port"]) < 65536):
            raise BackupSettingsError(
                f"{where}: {value!r} is not rest:http(s)://[user:password@]host[:port][/path] (plain characters only)"
            )
        host = match["host"]
        if not host.startswith("[") and not _HOST_RE.match(host):
            raise BackupSettingsError(f"{where}: {host!r} is not a host name or address")
        return {"kind": "rest", "location": value, "path": ""}
    raise BackupSettingsError(
        f"{where}: {value!r} is not a local directory (absolute path), sftp:user@host:/path or rest:https://host/path"
    )


def _password(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BackupSettingsError(f"{where}: must be a non-empty string (the repository's password)")
    if _control(value):
        # Never echo the value: it is a secret.
        raise BackupSettingsError(f"{where}: contains a newline or another control character (refused; not shown)")
    if len(value) < 8 or len(value) > 4096:
        raise BackupSettingsError(f"{where}: must be 8 to 4096 characters long (not shown)")
    return value


def _paths(value: Any, where: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise BackupSettingsError(f"{where}: must be a list of absolute paths, got {_describe(value)}")
    result: list[str] = []
    for index, item in enumerate(value):
        try:
            path = lexical(item, f"{where}[{index}]")
        except PathPolicyError as exc:
            raise BackupSettingsError(str(exc)) from None
        if path == "/":
            raise BackupSettingsError(f"{where}[{index}]: '/' is the whole system; list the directories to keep")
        if path not in result:
            result.append(path)
    return result


def check_settings(settings: Any, prefix: str = "") -> dict[str, Any]:
    """Validate and normalize the role's *settings*; errors name ``<prefix><key>`` (and the entry)."""
    if not isinstance(settings, Mapping):
        raise BackupSettingsError(f"{prefix or 'settings'}: must be a mapping, got {_describe(settings)}")
    unknown = sorted(set(settings) - set(SETTING_KEYS))
    if unknown:
        raise BackupSettingsError(f"{', '.join(prefix + str(key) for key in unknown)}: unknown setting(s)")
    missing = [key for key in SETTING_KEYS if key not in settings]
    if missing:
        raise BackupSettingsError(f"{', '.join(prefix + key for key in missing)}: missing")
    result: dict[str, Any] = {"repository": check_repository(settings["repository"], prefix + "repository")}
    result["password"] = _password(settings["password"], prefix + "password")
    for key in ("keep_daily", "keep_weekly", "keep_monthly"):
        result[key] = _int(settings[key], prefix + key, KEEP, " of snapshots")
    if not any(result[key] for key in ("keep_daily", "keep_weekly", "keep_monthly")):
        raise BackupSettingsError(
            f"{prefix}keep_daily, {prefix}keep_weekly, {prefix}keep_monthly: all 0 would forget every snapshot"
        )
    schedule = settings["schedule"]
    if not isinstance(schedule, str) or not _CALENDAR_RE.match(schedule) or not schedule.strip():
        raise BackupSettingsError(
            f"{prefix}schedule: {schedule!r} is not a systemd calendar expression (such as daily or "
            "'*-*-* 03:30:00'; letters, digits, space and * : - / , . ~)"
        )
    result["schedule"] = " ".join(schedule.split())
    result["randomized_delay"] = _int(settings["randomized_delay"], prefix + "randomized_delay", DELAY, " of seconds")
    result["mail"] = _bool(settings["mail"], prefix + "mail")
    result["queue"] = _bool(settings["queue"], prefix + "queue")
    result["staging_dir"] = _local_dir(settings["staging_dir"], prefix + "staging_dir", "the staging directory")
    repo_path = result["repository"]["path"]
    staging = result["staging_dir"]
    if repo_path and (
        repo_path == staging or repo_path.startswith(staging + "/") or staging.startswith(repo_path + "/")
    ):
        raise BackupSettingsError(
            f"{prefix}staging_dir: {staging} and {prefix}repository {repo_path} overlap; keep them apart"
        )
    result["paths"] = _paths(settings["paths"], prefix + "paths")
    result["restore_paths"] = _paths(settings["restore_paths"], prefix + "restore_paths")
    for index, path in enumerate(result["paths"]):
        if repo_path and (path == repo_path or path.startswith(repo_path + "/") or repo_path.startswith(path + "/")):
            raise BackupSettingsError(
                f"{prefix}paths[{index}]: {path} holds or is inside the repository {repo_path}; a backup never "
                "contains its own repository"
            )
    return result


def backup_paths(settings: Mapping[str, Any]) -> list[str]:
    """What ``restic backup`` reads: the staging tree, the state and the queue when asked."""
    paths = [settings["staging_dir"]] if settings["mail"] else []
    paths += settings["paths"]
    if settings["queue"]:
        paths.append("/var/spool/postfix")
    return sorted(dict.fromkeys(paths))


def render_env(settings: Mapping[str, Any]) -> str:
    """The job's environment file (systemd's EnvironmentFile, also sourced by the script): no secret in it."""
    s = settings
    lines = [
        HEADER.rstrip("\n"),
        f"RESTIC_REPOSITORY_FILE={CONF_DIR}/repository",
        f"RESTIC_PASSWORD_FILE={CONF_DIR}/password",
        f"RESTIC_CACHE_DIR={CACHE_DIR}",
        f"BACKUP_PATHS_FILE={CONF_DIR}/paths",
        f"BACKUP_RESTORE_PATHS_FILE={CONF_DIR}/restore-paths",
        f"BACKUP_STAGING={s['staging_dir']}",
        f"BACKUP_MAIL={'yes' if s['mail'] else 'no'}",
        f"BACKUP_KEEP_DAILY={s['keep_daily']}",
        f"BACKUP_KEEP_WEEKLY={s['keep_weekly']}",
        f"BACKUP_KEEP_MONTHLY={s['keep_monthly']}",
        "",
    ]
    return "\n".join(lines)


def render_paths(paths: Sequence[str]) -> str:
    """A list of paths for restic's --files-from (one per line)."""
    return "".join(f"{path}\n" for path in paths)


def render_service() -> str:
    """The job's systemd service (one shot, low priority)."""
    return "\n".join(
        [
            HEADER.rstrip("\n"),
            "[Unit]",
            "Description=postmaster.mailserver backup of the mailboxes and state (restic)",
            "Wants=network-online.target",
            "After=network-online.target dovecot.service",
            "",
            "[Service]",
            "Type=oneshot",
            f"EnvironmentFile={CONF_DIR}/restic.env",
            f"ExecStart={SCRIPT} backup",
            "Nice=10",
            "IOSchedulingClass=idle",
            "PrivateTmp=true",
            "",
        ]
    )


def render_timer(settings: Mapping[str, Any]) -> str:
    """The job's timer: the schedule, a random delay, and a run missed while the host was off made up."""
    return "\n".join(
        [
            HEADER.rstrip("\n"),
            "[Unit]",
            "Description=postmaster.mailserver backup schedule",
            "",
            "[Timer]",
            f"OnCalendar={settings['schedule']}",
            f"RandomizedDelaySec={settings['randomized_delay']}",
            "Persistent=true",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )


def files(settings: Mapping[str, Any], script: str) -> dict[str, tuple[str, int]]:
    """Every file the role writes: path -> (content, mode). The repository and password files are root's only."""
    return {
        f"{CONF_DIR}/repository": (settings["repository"]["location"] + "\n", 0o600),
        f"{CONF_DIR}/password": (settings["password"] + "\n", 0o600),
        f"{CONF_DIR}/restic.env": (render_env(settings), 0o600),
        f"{CONF_DIR}/paths": (render_paths(backup_paths(settings)), 0o600),
        f"{CONF_DIR}/restore-paths": (render_paths(settings["restore_paths"]), 0o600),
        SCRIPT: (script, 0o755),
        posixpath.join(UNIT_DIR, SERVICE): (render_service(), 0o644),
        posixpath.join(UNIT_DIR, TIMER): (render_timer(settings), 0o644),
    }


__all__ = [
    "BackupSettingsError",
    "backup_paths",
    "check_repository",
    "check_settings",
    "files",
    "render_env",
    "render_service",
    "render_timer",
]
