# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The backup role's settings and the backup_config backend (restic and systemctl faked)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.backup.backup_config import (
    BackupConfig,
    BackupConfigError,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.backup.backup_settings import (
    BackupSettingsError,
    backup_paths,
    check_repository,
    check_settings,
    render_env,
    render_timer,
)

SCRIPT = (Path(__file__).resolve().parents[5] / "roles" / "backup" / "files" / "postmaster-backup").read_text()
BASE = {
    "repository": "/srv/backup/mail",
    "password": "correct horse battery",
    "keep_daily": 7,
    "keep_weekly": 4,
    "keep_monthly": 6,
    "schedule": "*-*-* 03:30:00",
    "randomized_delay": 1800,
    "mail": True,
    "queue": False,
    "staging_dir": "/var/backups/postmaster/mail",
    "paths": ["/etc/dkimkeys", "/etc/ssl/postmaster", "/etc/postfix"],
    "restore_paths": ["/etc/dkimkeys", "/etc/ssl/postmaster"],
}


def settings(**overrides):
    return check_settings({**BASE, **overrides}, "backup_")


# -- settings ---------------------------------------------------------------------------------------


def test_defaults_render_the_environment_without_a_secret():
    s = settings()
    env = render_env(s)
    assert "RESTIC_PASSWORD_FILE=/etc/postmaster/backup/password" in env
    assert "RESTIC_REPOSITORY_FILE=/etc/postmaster/backup/repository" in env
    assert "correct horse" not in env and "/srv/backup/mail" not in env
    assert "BACKUP_KEEP_WEEKLY=4" in env.splitlines()
    assert backup_paths(s) == sorted(["/var/backups/postmaster/mail", *BASE["paths"]])
    assert backup_paths(settings(queue=True, mail=False)) == sorted([*BASE["paths"], "/var/spool/postfix"])


def test_the_timer_has_the_schedule_and_makes_up_a_missed_run():
    timer = render_timer(settings(schedule="daily", randomized_delay=0))
    assert "OnCalendar=daily" in timer.splitlines()
    assert "Persistent=true" in timer.splitlines()
    assert "RandomizedDelaySec=0" in timer.splitlines()


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("/srv/backup/mail", "local"),
        ("/mnt/backup-disk/restic", "local"),
        ("sftp:backup@vault.example.net:/srv/restic/mail", "sftp"),
        ("rest:https://vault.example.net:8000/mail", "rest"),
        ("rest:http://user:s3cret@vault:8000/", "rest"),
    ],
)
def test_repositories_of_each_kind(value, kind):
    assert check_repository(value, "backup_repository")["kind"] == kind


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"repository": "/tmp/restic"}, "backup_repository: /tmp/restic lies in /tmp, a world-writable tree"),
        ({"repository": "/var/tmp/x"}, "backup_repository: /var/tmp/x lies in /var/tmp, a world-writable tree"),
        ({"repository": "/usr/lib/restic"}, "backup_repository: /usr/lib/restic lies in /usr, a system directory"),
        ({"repository": "/etc/backup"}, "backup_repository: /etc/backup lies in /etc"),
        ({"repository": "/var/mail/vmail/backup"}, "backup_repository: /var/mail/vmail/backup lies in /var/mail"),
        ({"repository": "/"}, "backup_repository: / is a system directory"),
        ({"repository": "relative/path"}, "backup_repository: 'relative/path' is not a local directory"),
        ({"repository": "/srv/back up"}, "backup_repository: '/srv/back up' contains a space"),
        ({"repository": "/srv/backup\nExecStart=/bin/sh"}, "contains a space, a newline"),
        ({"repository": "s3:s3.amazonaws.com/bucket"}, "is not a local directory (absolute path), sftp:"),
        ({"repository": "sftp:root@host:relative"}, "is not sftp:user@host:/absolute/path"),
        ({"repository": "rest:ftp://host/"}, "is not rest:http(s)://"),
        ({"repository": ""}, "backup_repository: must be a local directory"),
        ({"password": ""}, "backup_password: must be a non-empty string"),
        ({"password": "short"}, "backup_password: must be 8 to 4096 characters long (not shown)"),
        ({"password": "good password\nbad"}, "backup_password: contains a newline or another control character"),
        ({"keep_daily": "seven"}, "backup_keep_daily: must be a whole number of snapshots, got 'seven' (str)"),
        ({"keep_weekly": -1}, "backup_keep_weekly: must be between 0 and 1000 of snapshots, got -1"),
        ({"keep_monthly": True}, "backup_keep_monthly: must be a whole number"),
        ({"keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}, "all 0 would forget every snapshot"),
        ({"schedule": "daily; rm -rf /"}, "backup_schedule: 'daily; rm -rf /' is not a systemd calendar expression"),
        ({"schedule": "daily\nExecStart=/bin/sh"}, "backup_schedule: "),
        ({"randomized_delay": 90000}, "backup_randomized_delay: must be between 0 and 86400"),
        ({"mail": "yes"}, "backup_mail: must be true or false"),
        ({"staging_dir": "/tmp/stage"}, "backup_staging_dir: /tmp/stage lies in /tmp"),
        ({"staging_dir": "/srv/backup/mail/stage"}, "backup_staging_dir: /srv/backup/mail/stage and backup_repository"),
        ({"paths": ["/etc/dkimkeys", "relative"]}, "backup_paths[1]: 'relative' is not an absolute path"),
        ({"paths": ["/"]}, "backup_paths[0]: '/' is the whole system"),
        ({"paths": ["/srv"]}, "backup_paths[0]: /srv holds or is inside the repository /srv/backup/mail"),
        ({"restore_paths": "/etc/dkimkeys"}, "backup_restore_paths: must be a list of absolute paths"),
        ({"verbose": True}, "backup_verbose: unknown setting(s)"),
    ],
)
def test_bad_settings_name_the_variable(overrides, message):
    with pytest.raises(BackupSettingsError) as error:
        settings(**overrides)
    assert message in str(error.value)
    assert "good password" not in str(error.value)


def test_checked_settings_pass_again_as_the_module_gets_them():
    once = settings(repository="rest:http://user:s3cret@vault:8000/mail")
    assert check_settings(once, "backup_") == once


def test_a_missing_setting_is_named():
    values = dict(BASE)
    del values["schedule"]
    with pytest.raises(BackupSettingsError, match="backup_schedule: missing"):
        check_settings(values, "backup_")


# -- backend ------------------------------------------------------------------------------------------


class Host:
    """A fake restic, systemctl and systemd-analyze; the files go below a scratch root."""

    def __init__(self, root):
        self.root = root
        self.calls: list[list[str]] = []
        self.environments: list[dict] = []
        self.repository: str | None = None  # the password the repository opens with
        self.timer_active = False
        self.timer_enabled = False
        self.calendar_ok = True
        self.reachable = True
        self.init_ok = True

    def run(self, argv, environ_update=None, **_kwargs):
        self.calls.append(list(argv))
        env = dict(environ_update or {})
        self.environments.append(env)
        if os.path.basename(argv[0]) == "timeout":
            assert argv[1:3] == ["--kill-after=10", "120"]
            argv = argv[3:]
        name = os.path.basename(argv[0])
        if name == "restic":
            assert "RESTIC_PASSWORD" not in env or env["RESTIC_PASSWORD"] == ""
            password = Path(env["RESTIC_PASSWORD_FILE"]).read_text().rstrip("\n")
            assert not any(password in arg for arg in argv), "the password is on the command line"
            if not self.reachable:
                return 1, "", "Fatal: unable to open repository: dial tcp: connection refused"
            if argv[-2:] == ["cat", "config"]:
                if self.repository is None:
                    return 10, "", "Fatal: repository does not exist: unable to open config file"
                if self.repository != password:
                    return 12, "", "Fatal: wrong password or no key found"
                return 0, '{"version": 2}', ""
            if argv[-1] == "init":
                if not self.init_ok:
                    return 1, "", "Fatal: create repository failed"
                self.repository = password
                location = Path(env["RESTIC_REPOSITORY_FILE"]).read_text().strip()
                if location.startswith("/"):
                    (self.root / location.lstrip("/")).mkdir(parents=True, exist_ok=True)
                    (self.root / location.lstrip("/") / "config").write_text("restic")
                return 0, "created restic repository", ""
        if name == "systemd-analyze":
            return (0, "Normalized form: ...", "") if self.calendar_ok else (1, "", "Failed to parse calendar")
        if name == "systemctl":
            verb = argv[1]
            if verb == "is-enabled":
                return (0, "enabled\n", "") if self.timer_enabled else (1, "disabled\n", "")
            if verb == "is-active":
                return (0 if self.timer_active else 3), "", ""
            if verb in ("start", "restart"):
                self.timer_active = True
            if verb == "enable":
                self.timer_enabled = True
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def bin(self, name):
        return f"/usr/bin/{name}"

    def config(self, state="present", overrides=None, **options):
        return BackupConfig(
            settings={**BASE, **(overrides or {})} if state == "present" else None,
            script=SCRIPT if state == "present" else None,
            state=state,
            root=str(self.root),
            run_command=self.run,
            get_bin_path=self.bin,
            sleep=lambda seconds: None,
            **options,
        )

    def file(self, path):
        return self.root / path.lstrip("/")

    def commands(self, name):
        return [call[1:] for call in self.calls if os.path.basename(call[0]) == name]

    def snapshot(self):
        return {
            str(path.relative_to(self.root)): (path.read_bytes(), path.stat().st_mode)
            for path in sorted(self.root.rglob("*"))
            if path.is_file()
        }


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path / "host")


def test_a_new_repository_is_initialised_and_the_timer_started(host):
    result = host.config().execute()
    assert result["changed"] and result["initialized"] and result["restarted"]
    assert host.repository == BASE["password"]
    for name in ("password", "repository"):
        path = host.file(f"/etc/postmaster/backup/{name}")
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert host.file("/etc/postmaster/backup/password").read_text() == BASE["password"] + "\n"
    assert oct(host.file("/etc/postmaster/backup").stat().st_mode & 0o777) == "0o700"
    assert oct(host.file("/usr/local/sbin/postmaster-backup").stat().st_mode & 0o777) == "0o755"
    assert ["enable", "postmaster-backup.timer"] in host.commands("systemctl")
    assert ["daemon-reload"] in host.commands("systemctl")
    assert ["calendar", BASE["schedule"]] in host.commands("systemd-analyze")
    assert "(secret)" in result["diff"]["after"] and BASE["password"] not in result["diff"]["after"]


def test_a_second_run_changes_nothing(host):
    host.config().execute()
    host.calls.clear()
    result = host.config().execute()
    assert not result["changed"]
    assert ["init"] not in [call[-1:] for call in host.commands("restic")]
    assert not [call for call in host.commands("systemctl") if call[0] in ("restart", "start", "daemon-reload")]


def test_a_wrong_password_fails_and_changes_nothing(host):
    host.config().execute()
    before = host.snapshot()
    with pytest.raises(BackupConfigError) as error:
        host.config(overrides={"password": "another long password", "keep_daily": 3}).execute()
    assert "backup_password does not open the repository" in error.value.msg
    assert "nothing was changed" in error.value.msg
    assert "another long password" not in error.value.msg
    assert host.snapshot() == before


def test_an_unreachable_repository_fails_and_changes_nothing(host):
    host.reachable = False
    with pytest.raises(BackupConfigError, match="cannot be reached"):
        host.config(overrides={"repository": "rest:http://user:topsecret@vault:8000/"}).execute()
    assert not host.root.exists()


def test_the_rest_password_is_not_shown(host):
    host.reachable = False
    with pytest.raises(BackupConfigError) as error:
        host.config(overrides={"repository": "rest:http://user:topsecret@vault:8000/"}).execute()
    assert "topsecret" not in error.value.msg and "user:***@vault" in error.value.msg


def test_a_restore_never_creates_a_repository(host):
    with pytest.raises(BackupConfigError, match="there is no restic repository at /srv/backup/mail"):
        host.config(init=False).execute()
    assert not host.root.exists()
    assert host.repository is None


def test_a_directory_of_other_files_is_not_taken_for_a_new_repository(host):
    host.file("/srv/backup/mail").mkdir(parents=True)
    host.file("/srv/backup/mail/photos.tar").write_text("x")
    with pytest.raises(BackupConfigError, match="holds files but no restic repository"):
        host.config().execute()


def test_a_schedule_systemd_refuses_changes_nothing(host):
    host.calendar_ok = False
    with pytest.raises(BackupConfigError, match="backup_schedule: systemd does not accept"):
        host.config().execute()
    assert not host.root.exists()


def test_check_mode_opens_the_repository_and_writes_nothing(host):
    result = host.config(check_mode=True).execute()
    assert result["changed"]
    assert not host.root.exists()
    assert host.repository is None


def test_a_failed_init_rolls_every_file_back(host):
    host.init_ok = False
    with pytest.raises(BackupConfigError) as error:
        host.config().execute()
    assert error.value.details.get("rolled_back")
    assert not host.file("/etc/postmaster/backup/password").exists()
    assert not host.file("/etc/systemd/system/postmaster-backup.timer").exists()


def test_a_changed_schedule_restarts_the_timer(host):
    host.config().execute()
    host.calls.clear()
    result = host.config(overrides={"schedule": "hourly"}).execute()
    assert result["changed"] and result["restarted"]
    assert ["restart", "postmaster-backup.timer"] in host.commands("systemctl")
    assert "OnCalendar=hourly" in host.file("/etc/systemd/system/postmaster-backup.timer").read_text()


def test_absent_removes_the_files_and_keeps_the_repository(host):
    host.config().execute()
    result = host.config(state="absent").execute()
    assert result["changed"]
    assert not host.file("/etc/postmaster/backup/password").exists()
    assert ["disable", "--now", "postmaster-backup.timer"] in host.commands("systemctl")
    assert host.repository is not None
    assert not host.config(state="absent").execute()["changed"]


def test_bad_settings_fail_before_any_command(host):
    with pytest.raises(BackupConfigError, match="backup_repository: /tmp/x lies in /tmp"):
        host.config(overrides={"repository": "/tmp/x"})
    assert host.calls == []


def test_the_script_is_required():
    with pytest.raises(BackupConfigError, match="script:"):
        BackupConfig(settings=BASE, script="echo", run_command=None, get_bin_path=None)
