# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import grp
import os
import pwd
import stat

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes import maildir as maildir_utils
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.maildir import (
    MaildirError,
    Maildirs,
    Spec,
    build_specs,
    folder_dir,
    parse_mode,
    purge,
    purge_candidates,
    resolve_gid,
    resolve_uid,
)

ROOT_UID, ROOT_GID = os.getuid(), os.getgid()
NOBODY = pwd.getpwnam("nobody")
NOGROUP_GID = grp.getgrnam("nogroup").gr_gid
FOLDERS = ["Sent", "Drafts", "Trash", "Junk"]
SKELETON = ["", "/cur", "/new", "/tmp"]

needs_root = pytest.mark.skipif(ROOT_UID != 0, reason="chown to another user needs root")


def attrs(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def tree(path, folders=()):
    """Every path one Maildir with *folders* consists of, in creation order."""
    paths = [f"{path}{sub}" for sub in SKELETON]
    for folder in folders:
        paths += [f"{path}/.{folder}{sub}" for sub in SKELETON]
        paths.append(f"{path}/.{folder}/maildirfolder")
    return paths


def run(specs, **kwargs):
    return Maildirs(**kwargs).run(specs)


def spec(path, uid=None, gid=None, mode=0o700, folders=()):
    return Spec(str(path), uid, gid, mode, tuple(f".{f}" for f in folders))


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0700", 0o700), ("700", 0o700), ("0750", 0o750), ("2770", 0o2770), (0o700, 0o700), (448, 0o700)],
)
def test_parse_mode(value, expected):
    assert parse_mode(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("rwx", r"'rwx' is not an octal mode"),
        ("0800", r"'0800' is not an octal mode"),
        ("077000", r"'077000' is not an octal mode"),
        (True, r"True is not an octal mode"),
        (None, r"None is not an octal mode"),
        (-1, r"-1 is out of range"),
        (0o17777, r"is out of range"),
        ("0600", r"mode 0600 must give the owner rwx"),
        (0o500, r"mode 0500 must give the owner rwx"),
        ("0777", r"^mode 0777 lets every user of the host write the Maildir; use 0700 \(or 0750\)$"),
        ("0702", r"^mode 0702 lets every user of the host write the Maildir"),
        (0o1707, r"^mode 1707 lets every user of the host write the Maildir"),
    ],
)
def test_parse_mode_errors(value, message):
    with pytest.raises(MaildirError, match=message):
        parse_mode(value)


@pytest.mark.parametrize(
    ("name", "expected"), [("Sent", ".Sent"), ("Archive.2024", ".Archive.2024"), ("Spam", ".Spam")]
)
def test_folder_dir(name, expected):
    assert folder_dir(name) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", r"must be a non-empty string"),
        (None, r"must be a non-empty string"),
        ("inbox", r"'INBOX' is the Maildir itself"),
        ("a/b", r"must not contain '/'"),
        ("a\0b", r"must not contain '/'"),
        (".Sent", r"must not start or end with '.'"),
        ("Sent.", r"must not start or end with '.'"),
        ("a..b", r"or contain '..'"),
    ],
)
def test_folder_dir_errors(name, message):
    with pytest.raises(MaildirError, match=message):
        folder_dir(name)


def test_resolve_owner_and_group():
    assert resolve_uid(None) is None
    assert resolve_uid("") is None
    assert resolve_uid("nobody") == NOBODY.pw_uid
    assert resolve_uid("4242") == 4242
    assert resolve_gid("nogroup", None) == NOGROUP_GID
    assert resolve_gid("4343", None) == 4343
    assert resolve_gid(None, None) is None
    assert resolve_gid(None, NOBODY.pw_uid) == NOBODY.pw_gid
    # A uid without a passwd entry has no primary group: the group is left alone.
    assert resolve_gid(None, 4242424) is None
    with pytest.raises(MaildirError, match=r"^owner 'no-such-user' does not exist$"):
        resolve_uid("no-such-user")
    with pytest.raises(MaildirError, match=r"^group 'no-such-group' does not exist$"):
        resolve_gid("no-such-group", None)


def test_build_specs_defaults_and_overrides():
    specs = build_specs(
        [
            {"path": "/var/mail/vmail/example.org/alice/"},
            {"path": "/home/bob/Maildir", "owner": "nobody"},
            {"path": "/home/carol/Maildir", "owner": "nobody", "group": "root"},
            {"path": "/var/mail/vmail/example.org/alice"},  # duplicate, same attributes: merged
            {"path": "//srv//x/../mail"},
        ],
        owner="root",
        group="nogroup",
        mode="0750",
        folders=["Sent", "Sent", "Trash"],
    )
    assert specs == [
        Spec("/var/mail/vmail/example.org/alice", 0, NOGROUP_GID, 0o750, (".Sent", ".Trash")),
        Spec("/home/bob/Maildir", NOBODY.pw_uid, NOBODY.pw_gid, 0o750, (".Sent", ".Trash")),
        Spec("/home/carol/Maildir", NOBODY.pw_uid, 0, 0o750, (".Sent", ".Trash")),
        Spec("/srv/mail", 0, NOGROUP_GID, 0o750, (".Sent", ".Trash")),
    ]
    # Owner without group: the owner's primary group.
    assert build_specs([{"path": "/m"}], owner="nobody") == [Spec("/m", NOBODY.pw_uid, NOBODY.pw_gid, 0o700, ())]
    assert build_specs([{"path": "/m"}]) == [Spec("/m", None, None, 0o700, ())]


@pytest.mark.parametrize(
    ("entries", "kwargs", "message"),
    [
        ([{"path": "Maildir"}], {}, r"^path 'Maildir' must be absolute$"),
        ([{"path": ""}], {}, r"must be a non-empty string"),
        ([{}], {}, r"^path None must be a non-empty string$"),
        ([{"path": "/a\0b"}], {}, r"contains a NUL byte"),
        ([{"path": "/"}], {}, r"^path '/' cannot be a Maildir$"),
        ([{"path": "//"}], {}, r"^path '/' cannot be a Maildir$"),
        ([{"path": "/m"}], {"owner": "no-such-user"}, r"^owner 'no-such-user' does not exist$"),
        ([{"path": "/m", "owner": "no-such-user"}], {}, r"^owner 'no-such-user' does not exist$"),
        ([{"path": "/m"}], {"group": "no-such-group"}, r"^group 'no-such-group' does not exist$"),
        ([{"path": "/m"}], {"mode": "0644"}, r"must give the owner rwx"),
        ([{"path": "/m"}], {"folders": ["INBOX"]}, r"'INBOX' is the Maildir itself"),
        (
            [{"path": "/m", "owner": "root"}, {"path": "/m/", "owner": "nobody"}],
            {},
            r"^Maildir /m is given twice with a different owner or group$",
        ),
    ],
)
def test_build_specs_errors(entries, kwargs, message):
    with pytest.raises(MaildirError, match=message):
        build_specs(entries, **kwargs)


# -- creation ---------------------------------------------------------------------------------


@needs_root
def test_creates_maildir_folders_and_parents(tmp_path):
    maildir = tmp_path / "vmail" / "example.org" / "alice"
    backend = Maildirs()
    result = backend.run([spec(maildir, NOBODY.pw_uid, NOGROUP_GID, folders=FOLDERS)])
    # Only the top-most new directory is listed; everything below it is new too.
    assert result == {"changed": True, "created": [str(tmp_path / "vmail")], "fixed": []}
    for path in [str(tmp_path / "vmail"), str(tmp_path / "vmail" / "example.org"), *tree(str(maildir), FOLDERS)]:
        if path.endswith("maildirfolder"):
            assert os.path.isfile(path)
            assert os.path.getsize(path) == 0
            assert attrs(path) == (NOBODY.pw_uid, NOGROUP_GID, 0o600)
        else:
            assert attrs(path) == (NOBODY.pw_uid, NOGROUP_GID, 0o700), path
    # The existing parent is not touched.
    assert attrs(tmp_path)[0] == ROOT_UID
    diff = backend.diff(str(maildir))
    assert diff["before"] == f"{tmp_path}/vmail/: absent\n"
    assert diff["after"] == f"{tmp_path}/vmail/: nobody:nogroup 0700\n"
    assert diff["before_header"] == diff["after_header"] == str(maildir)

    again = Maildirs()
    assert again.run([spec(maildir, NOBODY.pw_uid, NOGROUP_GID, folders=FOLDERS)]) == {
        "changed": False,
        "created": [],
        "fixed": [],
    }
    assert again.diff("x")["before"] == again.diff("x")["after"] == ""


def test_mode_and_umask(tmp_path):
    old = os.umask(0o077)
    try:
        result = run([spec(tmp_path / "m", mode=0o2750, folders=["Sent"])])
    finally:
        os.umask(old)
    assert result["changed"] is True
    assert attrs(tmp_path / "m" / "cur")[2] == 0o2750
    assert attrs(tmp_path / "m" / ".Sent" / "maildirfolder")[2] == 0o640


def test_without_owner_keeps_owner(tmp_path):
    maildir = tmp_path / "m"
    maildir.mkdir(mode=0o700)
    os.chmod(maildir, 0o700)
    if ROOT_UID == 0:
        os.chown(maildir, NOBODY.pw_uid, NOGROUP_GID)
    result = run([spec(maildir)])
    assert result["created"] == tree(str(maildir))[1:]
    assert result["fixed"] == []
    assert attrs(maildir)[:2] == ((NOBODY.pw_uid, NOGROUP_GID) if ROOT_UID == 0 else (ROOT_UID, ROOT_GID))
    assert attrs(maildir / "new")[:2] == (ROOT_UID, ROOT_GID)


def test_check_mode_creates_nothing(tmp_path):
    maildirs = [spec(tmp_path / "vmail" / dom / user, folders=["Sent"]) for dom in ("a.org", "b.org") for user in "xy"]
    planned = run(maildirs, check_mode=True)
    assert os.listdir(tmp_path) == []
    done = run(maildirs)
    # Check mode predicts exactly what the real run does, parents reported once.
    assert planned == done
    assert planned["created"].count(str(tmp_path / "vmail")) == 1
    assert run(maildirs, check_mode=True)["changed"] is False


def test_check_mode_inside_existing_maildir(tmp_path):
    (tmp_path / "m" / "cur").mkdir(parents=True)
    (tmp_path / "m" / ".Sent").mkdir()
    os.chmod(tmp_path / "m", 0o700)
    os.chmod(tmp_path / "m" / "cur", 0o700)
    os.chmod(tmp_path / "m" / ".Sent", 0o755)
    result = run([spec(tmp_path / "m", folders=["Sent"])], check_mode=True)
    assert result["created"] == [
        f"{tmp_path}/m/new",
        f"{tmp_path}/m/tmp",
        f"{tmp_path}/m/.Sent/cur",
        f"{tmp_path}/m/.Sent/new",
        f"{tmp_path}/m/.Sent/tmp",
        f"{tmp_path}/m/.Sent/maildirfolder",
    ]
    assert result["fixed"] == [f"{tmp_path}/m/.Sent"]
    assert sorted(os.listdir(tmp_path / "m")) == [".Sent", "cur"]
    assert os.listdir(tmp_path / "m" / ".Sent") == []
    assert attrs(tmp_path / "m" / ".Sent")[2] == 0o755


@needs_root
def test_fixes_owner_and_mode_without_touching_messages(tmp_path):
    maildir = tmp_path / "m"
    for sub in ("cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"):
        (maildir / sub).mkdir(parents=True)
    for path in (maildir, *maildir.rglob("*")):
        os.chmod(path, 0o755)
    message = maildir / "new" / "1700000000.M1P1.host"
    message.write_text("Subject: hi\n\nbody\n", encoding="utf-8")
    os.chmod(message, 0o644)
    os.utime(message, (1000, 1000))
    marker = maildir / ".Sent" / "maildirfolder"
    marker.write_text("", encoding="utf-8")
    os.chmod(marker, 0o644)
    nested = maildir / "cur" / "odd-subdir"
    nested.mkdir(mode=0o755)
    os.chmod(nested, 0o755)

    backend = Maildirs()
    result = backend.run([spec(maildir, NOBODY.pw_uid, NOGROUP_GID, folders=["Sent"])])
    assert result["created"] == []
    assert result["fixed"] == [p for p in tree(str(maildir), ["Sent"]) if not p.endswith("maildirfolder")]
    for path in result["fixed"]:
        assert attrs(path) == (NOBODY.pw_uid, NOGROUP_GID, 0o700)
    # Files and anything inside cur/new/tmp stay exactly as they were.
    assert message.read_text(encoding="utf-8") == "Subject: hi\n\nbody\n"
    assert attrs(message) == (ROOT_UID, ROOT_GID, 0o644)
    assert os.stat(message).st_mtime == 1000
    assert attrs(marker) == (ROOT_UID, ROOT_GID, 0o644)
    assert attrs(nested) == (ROOT_UID, ROOT_GID, 0o755)
    diff = backend.diff("m")
    assert f"{maildir}/new/: root:root 0755" in diff["before"].splitlines()
    assert f"{maildir}/new/: nobody:nogroup 0700" in diff["after"].splitlines()
    assert run([spec(maildir, NOBODY.pw_uid, NOGROUP_GID, folders=["Sent"])])["changed"] is False


@needs_root
def test_check_mode_reports_fix_without_doing_it(tmp_path):
    maildir = tmp_path / "m"
    for sub in SKELETON:
        (tmp_path / f"m{sub}").mkdir(exist_ok=True)
        os.chmod(tmp_path / f"m{sub}", 0o700)
    os.chown(maildir / "cur", NOBODY.pw_uid, NOGROUP_GID)
    result = run([spec(maildir, ROOT_UID, ROOT_GID)], check_mode=True)
    assert result == {"changed": True, "created": [], "fixed": [f"{maildir}/cur"]}
    assert attrs(maildir / "cur") == (NOBODY.pw_uid, NOGROUP_GID, 0o700)
    # Only the group differs: chown is still needed, chmod is not.
    os.chown(maildir / "cur", ROOT_UID, NOGROUP_GID)
    assert run([spec(maildir, ROOT_UID, ROOT_GID)])["fixed"] == [f"{maildir}/cur"]
    assert attrs(maildir / "cur") == (ROOT_UID, ROOT_GID, 0o700)


@needs_root
def test_many_maildirs_in_one_call(tmp_path):
    base = tmp_path / "vmail"
    base.mkdir()
    specs = build_specs(
        [{"path": f"{base}/d{d}.example/u{u}"} for d in range(3) for u in range(40)],
        owner="nobody",
        group="nogroup",
        folders=FOLDERS,
    )
    result = run(specs)
    assert result["created"] == [f"{base}/d0.example", f"{base}/d1.example", f"{base}/d2.example"]
    assert sorted(os.listdir(base)) == ["d0.example", "d1.example", "d2.example"]
    assert attrs(base / "d1.example") == (NOBODY.pw_uid, NOGROUP_GID, 0o700)
    assert attrs(base / "d2.example" / "u39" / ".Junk" / "tmp") == (NOBODY.pw_uid, NOGROUP_GID, 0o700)
    assert attrs(base)[0] == ROOT_UID
    assert run(specs) == {"changed": False, "created": [], "fixed": []}
    # Unsorted input (parents alternate) works too.
    shuffled = specs[::7] + specs
    os.chmod(base / "d0.example" / "u0" / "tmp", 0o777)
    assert run(shuffled)["fixed"] == [f"{base}/d0.example/u0/tmp"]


def test_missing_parts_of_existing_maildirs(tmp_path):
    for sub in SKELETON:
        (tmp_path / f"m{sub}").mkdir()
        os.chmod(tmp_path / f"m{sub}", 0o700)
    (tmp_path / "m" / ".Sent").mkdir()
    os.chmod(tmp_path / "m" / ".Sent", 0o700)
    result = run([spec(tmp_path / "m", folders=["Sent", "Junk"])])
    assert result["created"] == [
        f"{tmp_path}/m/.Sent/cur",
        f"{tmp_path}/m/.Sent/new",
        f"{tmp_path}/m/.Sent/tmp",
        f"{tmp_path}/m/.Sent/maildirfolder",
        f"{tmp_path}/m/.Junk",
    ]
    assert sorted(os.listdir(tmp_path / "m" / ".Junk")) == ["cur", "maildirfolder", "new", "tmp"]


def test_existing_parent_is_not_changed(tmp_path):
    os.chmod(tmp_path, 0o755)
    run([spec(tmp_path / "m", mode=0o700)])
    assert attrs(tmp_path)[2] == 0o755


# -- refusals ------------------------------------------------------------------------------------


def _symlink_maildir(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "m").symlink_to(tmp_path / "elsewhere")


def _symlink_cur(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "target").mkdir()
    (tmp_path / "m" / "cur").symlink_to(tmp_path / "target")


def _symlink_folder(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / ".Sent").symlink_to("/etc")


def _symlink_marker(tmp_path):
    (tmp_path / "m" / ".Sent").mkdir(parents=True)
    (tmp_path / "m" / ".Sent" / "maildirfolder").symlink_to("/etc/passwd")


def _user_symlink_parent(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "p").symlink_to(tmp_path / "real")
    os.lchown(tmp_path / "p", NOBODY.pw_uid, NOGROUP_GID)


def _dangling_parent(tmp_path):
    (tmp_path / "p").symlink_to(tmp_path / "absent")


def _file_as_maildir(tmp_path):
    (tmp_path / "m").write_text("x", encoding="utf-8")


def _file_as_new(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "new").write_text("x", encoding="utf-8")


def _file_as_parent(tmp_path):
    (tmp_path / "p").write_text("x", encoding="utf-8")


def _dir_as_marker(tmp_path):
    (tmp_path / "m" / ".Sent" / "maildirfolder").mkdir(parents=True)


@pytest.mark.parametrize(
    ("setup", "relpath", "message"),
    [
        (_symlink_maildir, "m", r"/m is a symlink; refusing to follow it"),
        (_symlink_cur, "m", r"/m/cur is a symlink; refusing to follow it"),
        (_symlink_folder, "m", r"/m/\.Sent is a symlink; refusing to follow it"),
        (_symlink_marker, "m", r"/m/\.Sent/maildirfolder is a symlink; refusing to follow it"),
        (_user_symlink_parent, "p/m", r"/p is a symlink owned by uid \d+; only symlinks owned by root are followed"),
        (_dangling_parent, "p/m", r"/p is a dangling symlink"),
        (_file_as_maildir, "m", r"/m exists and is not a directory"),
        (_file_as_new, "m", r"/m/new exists and is not a directory"),
        (_file_as_parent, "p/m", r"/p exists and is not a directory"),
        (_dir_as_marker, "m", r"/m/\.Sent/maildirfolder exists and is not a regular file"),
    ],
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_refusals(tmp_path, setup, relpath, message, check_mode):
    if setup is _user_symlink_parent and ROOT_UID != 0:
        pytest.skip("lchown to another user needs root")
    setup(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(MaildirError, match=message):
        run([spec(tmp_path / relpath, folders=["Sent"])], check_mode=check_mode)
    if check_mode:
        assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    # Nothing outside the tree was created through a symlink.
    assert not (tmp_path / "elsewhere" / "cur").exists()
    assert not (tmp_path / "target" / "anything").exists()


def test_root_owned_parent_symlink_is_followed(tmp_path):
    if ROOT_UID != 0:
        pytest.skip("needs a root-owned symlink")
    (tmp_path / "spool").mkdir()
    (tmp_path / "mail").symlink_to(tmp_path / "spool")
    result = run([spec(tmp_path / "mail" / "alice")])
    assert result["created"][0] == f"{tmp_path}/mail/alice"
    assert (tmp_path / "spool" / "alice" / "new").is_dir()


def test_missing_parent_without_create_parents(tmp_path):
    with pytest.raises(
        MaildirError, match=rf"^parent directory {tmp_path}/a of Maildir {tmp_path}/a/b/m does not exist$"
    ):
        run([spec(tmp_path / "a" / "b" / "m")], create_parents=False)
    assert os.listdir(tmp_path) == []
    (tmp_path / "a").mkdir()
    assert run([spec(tmp_path / "a" / "m")], create_parents=False)["changed"] is True


def test_maildir_at_top_level():
    # A Maildir directly under "/" (check mode only: nothing is created).
    backend = Maildirs(check_mode=True)
    result = backend.run([spec("/postmaster-test-absent-maildir")])
    assert result["created"] == ["/postmaster-test-absent-maildir"]


# -- failures part-way -----------------------------------------------------------------------------


def test_mkdir_failure_keeps_partial_result(monkeypatch, tmp_path):
    real_mkdir = os.mkdir

    def mkdir(name, mode=0o777, *, dir_fd=None):
        if name == "tmp":
            raise PermissionError(13, "Permission denied")
        return real_mkdir(name, mode, dir_fd=dir_fd)

    monkeypatch.setattr(maildir_utils.os, "mkdir", mkdir)
    backend = Maildirs()
    with pytest.raises(MaildirError, match=rf"^cannot create directory {tmp_path}/m/tmp: Permission denied$"):
        backend.run([spec(tmp_path / "m")])
    assert backend.created == [f"{tmp_path}/m"]
    assert sorted(os.listdir(tmp_path / "m")) == ["cur", "new"]


def test_directory_swapped_for_symlink_after_mkdir(monkeypatch, tmp_path):
    real_mkdir = os.mkdir

    def mkdir(name, mode=0o777, *, dir_fd=None):
        if name == "cur":
            os.symlink("/etc", name, dir_fd=dir_fd)  # the race: a symlink appears in its place
            return None
        return real_mkdir(name, mode, dir_fd=dir_fd)

    monkeypatch.setattr(maildir_utils.os, "mkdir", mkdir)
    with pytest.raises(MaildirError, match=rf"^cannot open directory {tmp_path}/m/cur: "):
        run([spec(tmp_path / "m")])


def test_marker_creation_failure(monkeypatch, tmp_path):
    real_open = os.open

    def fake_open(name, flags, mode=0o777, *, dir_fd=None):
        if name == "maildirfolder":
            raise FileExistsError(17, "File exists")
        return real_open(name, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(maildir_utils.os, "open", fake_open)
    with pytest.raises(MaildirError, match=rf"^cannot create {tmp_path}/m/\.Sent/maildirfolder: File exists$"):
        run([spec(tmp_path / "m", folders=["Sent"])])


def test_parent_open_failure(monkeypatch, tmp_path):
    real_open = os.open

    def fake_open(name, flags, mode=0o777, *, dir_fd=None):
        if name == str(tmp_path):
            raise PermissionError(13, "Permission denied")
        return real_open(name, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(maildir_utils.os, "open", fake_open)
    with pytest.raises(MaildirError, match=rf"^cannot open directory {tmp_path}: Permission denied$"):
        run([spec(tmp_path / "m")])


def test_parent_inspect_failure(monkeypatch, tmp_path):
    real_lstat = os.lstat

    def fake_lstat(path, *args, **kwargs):
        if path == str(tmp_path):
            raise PermissionError(13, "Permission denied")
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(maildir_utils.os, "lstat", fake_lstat)
    with pytest.raises(MaildirError, match=rf"^cannot inspect {tmp_path}: Permission denied$"):
        run([spec(tmp_path / "m")])


@pytest.mark.parametrize("check_mode", [False, True])
def test_chown_failure(monkeypatch, tmp_path, check_mode):
    (tmp_path / "m").mkdir(mode=0o755)
    os.chmod(tmp_path / "m", 0o755)

    def fchmod(fd, mode):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(maildir_utils.os, "fchmod", fchmod)
    if check_mode:
        assert run([spec(tmp_path / "m")], check_mode=True)["fixed"] == [f"{tmp_path}/m"]
        return
    with pytest.raises(MaildirError, match=rf"^cannot set owner or mode of {tmp_path}/m: Operation not permitted$"):
        run([spec(tmp_path / "m")])


def test_fd_is_closed_on_failure(monkeypatch, tmp_path):
    for sub in SKELETON:
        (tmp_path / f"m{sub}").mkdir()
        os.chmod(tmp_path / f"m{sub}", 0o755)
    before = len(os.listdir("/proc/self/fd"))

    def fchmod(fd, mode):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(maildir_utils.os, "fchmod", fchmod)
    for attempt in range(5):
        with pytest.raises(MaildirError):
            run([spec(tmp_path / "m")])
        assert len(os.listdir("/proc/self/fd")) == before, attempt


# -- purge: only Maildirs the role made, in the domains it manages ----------------------------


def _maildir(path, uid=ROOT_UID):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(path / sub)
    for directory in (path, *(path / sub for sub in ("cur", "new", "tmp"))):
        os.chown(directory, uid, -1)


@needs_root
def test_purge_takes_only_role_made_maildirs_of_managed_domains(tmp_path):
    base = tmp_path / "vmail"
    outside = tmp_path / "outside"
    _maildir(outside / "victim")
    for name in ("keep", "gone", ".hidden"):
        _maildir(base / "a.org" / name)
    (base / "a.org" / "notes").mkdir()  # no cur/new/tmp: not a Maildir
    _maildir(base / "a.org" / "foreign", uid=65534)  # not the vmail owner
    os.symlink(outside / "victim", base / "a.org" / "link")  # a symlinked "Maildir"
    _maildir(base / "b.org" / "other")  # a domain the role does not manage (now)
    os.symlink(outside, base / "c.org")  # a symlinked domain directory
    (base / "a.org" / "gone" / "cur" / "1.msg").write_text("mail")
    os.symlink(outside / "victim", base / "a.org" / "gone" / "escape")
    keep = [str(base / "a.org" / "keep")]
    candidates = purge_candidates(str(base), ["a.org", "b.org.example", "c.org"], keep, ROOT_UID)
    assert candidates == [str(base / "a.org" / "gone")]
    assert purge(candidates, check_mode=True) == candidates
    assert (base / "a.org" / "gone").exists()
    assert purge(candidates) == candidates
    assert not (base / "a.org" / "gone").exists()
    # Everything else is still there, and the symlink inside the purged Maildir was not followed.
    assert (outside / "victim" / "cur").is_dir()
    for name in ("keep", ".hidden", "notes", "foreign", "link"):
        assert os.path.lexists(base / "a.org" / name), name
    assert (base / "b.org" / "other" / "cur").is_dir()
    assert purge_candidates(str(base), ["a.org"], keep, ROOT_UID) == []


@pytest.mark.parametrize("domain", ["..", "../etc", "a.org/x", ".", "", "a", None, "A.ORG"])
def test_purge_refuses_what_is_not_a_domain(tmp_path, domain):
    with pytest.raises(MaildirError, match=r"^purge_domains: .* is not a domain name$"):
        purge_candidates(str(tmp_path), [domain], [], ROOT_UID)
