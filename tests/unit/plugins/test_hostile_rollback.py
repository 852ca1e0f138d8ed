# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 25: a module that rolls back restores everything it touched, owner and mode included.

Each row builds a host tree under tmp_path whose files and directories have owners and modes that a
module would not choose itself (uid 4321, 0600, 0711, ...), runs one backend with the check that
follows the swap made to fail (the health probe, the live table check, openssl, a chown), and
compares the whole tree with the one taken before: type, mode, uid, gid and content of every path,
and no path the run created. The failing check records the tree at the moment it fails, so each
row also proves that the run had changed the host before it rolled back.
Run as root (the unit tests are), so chown works.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis import amavis_config as amavis_utils
from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis.amavis_settings import AmavisError
from ansible_collections.postmaster.mailserver.plugins.module_utils.common import mail_paths, path_state
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import (
    replace_keeping_mode,
    write_atomically,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.dovecot.dovecot_config import (
    DovecotConfig,
    DovecotConfigError,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall.nftables_config import (
    NftablesConfig,
    NftablesConfigError,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes import vmail_account as va
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_config import (
    PostfixConfig,
    PostfixConfigError,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.policyd_spf import (
    PolicydSpfConfig,
    PolicydSpfError,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.tls import tls_certificate as tc
from ansible_collections.postmaster.mailserver.plugins.modules import mail_password as mail_password_module
from ansible_collections.postmaster.mailserver.tests.unit.plugins.module_utils.amavis.test_amavis import (
    FILES as AMAVIS_FILES,
)
from ansible_collections.postmaster.mailserver.tests.unit.plugins.module_utils.amavis.test_amavis import World
from ansible_collections.postmaster.mailserver.tests.unit.plugins.module_utils.dovecot.test_dovecot_config import (
    FakeRunner as DovecotRunner,
)
from ansible_collections.postmaster.mailserver.tests.unit.plugins.module_utils.firewall.test_nftables_config import (
    LIVE_JSON,
    RULES,
    STOCK,
    Host,
    without_ssh,
)
from ansible_collections.postmaster.mailserver.tests.unit.plugins.module_utils.postfix.test_postfix_config_backend import (
    BASE as POSTFIX_BASE,
)
from ansible_collections.postmaster.mailserver.tests.unit.plugins.module_utils.postfix.test_postfix_config_backend import (
    Clock,
    CompilingRunner,
)
from ansible_collections.postmaster.mailserver.tests.unit.plugins.module_utils.spf.test_policyd_spf import (
    DEFAULTS as SPF_DEFAULTS,
)
from ansible_collections.postmaster.mailserver.tests.unit.plugins.module_utils.spf.test_policyd_spf import (
    FakeRunner as SpfRunner,
)
from ansible_collections.postmaster.mailserver.tests.unit.plugins.module_utils.tls.test_tls_certificate import (
    NOW,
    FakeOpenssl,
    write_cert,
)

#: Owners no module would choose: a restore that writes as root, or keeps the new owner, is caught.
ODD_UID, ODD_GID = 4321, 4322


@pytest.fixture(autouse=True)
def _trust_the_odd_owners(monkeypatch):
    """The odd owners stand for the daemon accounts a real host has: the modules' host path checks
    (mail_paths) trust them here, so that each backend reaches the write and the rollback under test.
    test_hostile_paths.py proves that a foreign owner is refused."""
    trust = mail_paths.DEFAULT_TRUST
    monkeypatch.setattr(mail_paths, "DEFAULT_TRUST", mail_paths.HostTrust(uids=trust.uids | {ODD_UID}, top=trust.top))


PUBLIC_KEY = "-----BEGIN PRIVATE KEY-----\nK9\n-----END PRIVATE KEY-----\n"

Tree = dict[str, tuple[int, int, int, int, bytes | str | None]]


def tree(root: Path) -> Tree:
    """Every path below *root* (and *root*): (type, mode, uid, gid, content or symlink target)."""
    found: Tree = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = os.lstat(path)
        content: bytes | str | None = None
        if stat.S_ISREG(st.st_mode):
            content = path.read_bytes()
        elif stat.S_ISLNK(st.st_mode):
            content = os.readlink(path)
        found[str(path.relative_to(root))] = (
            stat.S_IFMT(st.st_mode),
            stat.S_IMODE(st.st_mode),
            st.st_uid,
            st.st_gid,
            content,
        )
    return found


def own(path: Path, mode: int, uid: int = ODD_UID, gid: int = ODD_GID) -> Path:
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


def put(path: Path, text: str, mode: int = 0o640, uid: int = ODD_UID, gid: int = ODD_GID) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return own(path, mode, uid, gid)


def refusing(during: Callable[[], None], exc: BaseException) -> Callable[..., str]:
    """A probe that records the tree (the first call is the state after the swap), then fails."""

    def probe(*_args: object) -> str:
        during()
        raise exc

    return probe


# -- postfix_config (with its tables and fragments) ------------------------------------------------------


def _postfix_host(root: Path, *, fragment_dir: bool = True) -> Path:
    config = root / "postfix"
    config.mkdir(parents=True)
    own(config, 0o755, 0, 0)
    put(config / "main.cf", "# original\nmyhostname = old.example.org\n", 0o640)
    put(config / "master.cf", "smtp inet n - y - - smtpd\n", 0o604)
    put(config / "dynamicmaps.cf", "# maps\n", 0o644, 0, 0)
    put(config / "postfix-files", "# files\n", 0o644, 0, 0)
    put(config / "main.cf.postmaster-previous", "# older\n", 0o600)
    if fragment_dir:
        (config / "postmaster.d").mkdir()
        own(config / "postmaster.d", 0o750)
        put(config / "postmaster.d" / "00-base.json", json.dumps(POSTFIX_BASE), 0o640)
    return config


def _postfix(root: Path, during: Callable[[], None], **kwargs: object) -> Callable[[], object]:
    clock = Clock()
    backend = PostfixConfig(
        fragment_dir=str(root / "postfix" / "postmaster.d"),
        config_dir=str(root / "postfix"),
        run_command=CompilingRunner(),
        get_bin_path=lambda name: f"/usr/sbin/{name}",
        probe=refusing(during, ConnectionRefusedError(111, "Connection refused")),
        sleep=clock.sleep,
        clock=clock.time,
        exists=lambda path: True,
        health_timeout=1,
        **kwargs,
    )
    return backend.execute


def postfix_main_and_fragment(root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch) -> Callable[[], object]:
    """main.cf, master.cf, the .postmaster-previous copy and a new fragment, all with odd owners."""
    _postfix_host(root)
    return _postfix(root, during, fragments={"60-size.json": {"main": {"message_size_limit": 1024000}}})


def postfix_new_fragment_dir(root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch) -> Callable[[], object]:
    """The fragment directory did not exist: the run creates it, the rollback removes it."""
    _postfix_host(root, fragment_dir=False)
    return _postfix(root, during, fragments={"00-base.json": POSTFIX_BASE})


def postfix_removed_fragment(root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch) -> Callable[[], object]:
    """A fragment the run removes comes back with its content, owner, group and mode."""
    config = _postfix_host(root)
    put(config / "postmaster.d" / "60-size.json", json.dumps({"main": {"message_size_limit": 1024000}}), 0o600)
    return _postfix(root, during, fragments={"60-size.json": None})


def _table(root: Path, text: str) -> dict[str, object]:
    return {"path": str(root / "postfix" / "vmailbox"), "content": text, "owner": 0, "group": 0, "mode": "0640"}


def _virtual(root: Path) -> dict[str, object]:
    return {"20-virtual.json": {"main": {"virtual_mailbox_maps": f"hash:{root}/postfix/vmailbox"}}}


def postfix_table_owner_and_mode(
    root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch
) -> Callable[[], object]:
    """A table (and its .db) the run rewrites as root:root 0640 gets its old owner 4321 and mode 0600 back."""
    config = _postfix_host(root)
    put(config / "vmailbox", "alice@example.org example.org/alice/\n", 0o600)
    put(config / "vmailbox.db", "old compiled", 0o600)
    os.utime(config / "vmailbox", (1_000_000, 1_000_000))
    return _postfix(root, during, tables=[_table(root, "bob@example.org example.org/bob/\n")], fragments=_virtual(root))


def postfix_new_table(root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch) -> Callable[[], object]:
    """A new table and its compiled file are removed again."""
    _postfix_host(root)
    return _postfix(root, during, tables=[_table(root, "bob@example.org example.org/bob/\n")], fragments=_virtual(root))


# -- dovecot_config ------------------------------------------------------------------------------------


def _dovecot(root: Path, during: Callable[[], None], files: dict[str, str | None]) -> Callable[[], object]:
    conf = root / "dovecot"
    conf.mkdir(parents=True)
    own(conf, 0o755, 0, 0)
    (conf / "conf.d").mkdir()
    own(conf / "conf.d", 0o750)
    put(conf / "dovecot.conf", "!include conf.d/*.conf\n", 0o644, 0, 0)
    put(conf / "conf.d" / "10-ssl.conf", "ssl = yes\n", 0o640)
    put(conf / "conf.d" / "90-old.conf", "# old\n", 0o600)
    clock = Clock()
    return DovecotConfig(
        config_dir=str(conf),
        files=files,
        run_command=DovecotRunner(),
        get_bin_path=lambda name: f"/usr/bin/{name}",
        probe=refusing(during, ConnectionRefusedError(111, "Connection refused")),
        sleep=clock.sleep,
        clock=clock.time,
        health_timeout=1,
    ).execute


def dovecot_changed_and_removed(
    root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch
) -> Callable[[], object]:
    return _dovecot(root, during, {"conf.d/10-ssl.conf": "ssl = required\n", "conf.d/90-old.conf": None})


def dovecot_new_directory(root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch) -> Callable[[], object]:
    """A file in a directory the run creates (two levels): both directories go again."""
    return _dovecot(root, during, {"conf.d/extra/sub/10-x.conf": "x = 1\n"})


# -- policyd_spf_config ----------------------------------------------------------------------------------


def _spf(root: Path, during: Callable[[], None], conf: Path) -> Callable[[], object]:
    daemon = put(root / "policyd-spf", "#!/usr/bin/python3\nfrom spf_engine.policyd_spf import main\n", 0o755, 0, 0)
    clock = Clock()
    return PolicydSpfConfig(
        settings=SPF_DEFAULTS,
        path=str(conf),
        daemon=str(daemon),
        run_command=SpfRunner(),
        get_bin_path=lambda name: f"/usr/sbin/{name}",
        sleep=clock.sleep,
        clock=clock.time,
        smtp=lambda host, port, timeout: "220 mail.example.test ESMTP",
        policy=refusing(during, ConnectionResetError("closed")),
        exists=lambda path: True,
        policy_socket=str(root / "policy-spf"),
    ).execute


def spf_changed_file(root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch) -> Callable[[], object]:
    conf = put(root / "etc" / "policyd-spf.conf", "debugLevel = 1\nTestOnly = 1\n", 0o600)
    own(conf.parent, 0o711)
    return _spf(root, during, conf)


def spf_new_directory(root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch) -> Callable[[], object]:
    root.mkdir(parents=True)
    return _spf(root, during, root / "etc" / "postfix-policyd-spf-python" / "policyd-spf.conf")


# -- nftables_config -------------------------------------------------------------------------------------


def _nftables(root: Path, during: Callable[[], None], conf: Path) -> Callable[[], object]:
    host = Host(loaded=without_ssh(LIVE_JSON))

    def run(argv: list[str], environ_update: object = None, **kwargs: object) -> tuple[int, str, str]:
        answer = host(argv, environ_update, **kwargs)
        if host.key(argv) == "systemctl reload-or-restart nftables":
            during()
        return answer

    return NftablesConfig(
        rules=RULES,
        run_command=run,
        get_bin_path=lambda name: f"/usr/sbin/{name}",
        path=str(conf),
        ufw_conf=str(root / "ufw.conf"),
    ).execute


def nftables_changed_file(root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch) -> Callable[[], object]:
    return _nftables(root, during, put(root / "nftables.conf", STOCK, 0o750))


def nftables_new_file(root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch) -> Callable[[], object]:
    root.mkdir(parents=True)
    return _nftables(root, during, root / "nftables.conf")


# -- amavis_config -----------------------------------------------------------------------------------------


def _amavis(root: Path, during: Callable[[], None], mp: pytest.MonkeyPatch, quarantine: Path) -> Callable[[], object]:
    for directory in ("usr/share/amavis/conf.d", "etc/amavis/conf.d", "etc/clamav", "var/lib/clamav"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "etc/systemd/system").mkdir(parents=True, exist_ok=True)
    put(root / "usr/share/amavis/conf.d/20-package", "@bypass_virus_checks_maps = (1);\n1;\n", 0o644, 0, 0)
    put(root / "etc/amavis/conf.d/05-node_id", "1;\n", 0o644, 0, 0)
    put(root / "etc/amavis/conf.d/60-postmaster", "# old\n1;\n", 0o600)
    put(root / "etc/clamav/clamd.conf", "LocalSocket /var/run/clamav/clamd.ctl\nUser clamav\n", 0o640)
    put(root / "etc/clamav/freshclam.conf", "DatabaseOwner clamav\n", 0o644, 0, 0)
    own(root / "var/lib/clamav", 0o755, ODD_UID, ODD_UID)
    world = World(root)
    world.amavis_up = False
    world.smtp = refusing(during, ConnectionRefusedError("connection refused"))  # type: ignore[method-assign]
    mp.setattr(amavis_utils, "_user_id", lambda name: ODD_UID)
    backend = world.make({**AMAVIS_FILES, "quarantine_dir": str(quarantine)})
    backend._chown = lambda path, user, group: os.chown(path, ODD_UID, ODD_UID)  # the amavis user
    return backend.execute


def amavis_quarantine_in_a_key_directory(
    root: Path, during: Callable[[], None], mp: pytest.MonkeyPatch
) -> Callable[[], object]:
    """The quarantine is an existing root-owned 0700 directory (root's key directory, say): chowned and back."""
    keys = root / "root" / ".ssh"
    keys.mkdir(parents=True)
    own(keys, 0o700, 0, 0)
    put(keys / "authorized_keys", "ssh-ed25519 AAAA admin\n", 0o600, 0, 0)
    return _amavis(root, during, mp, keys)


def amavis_new_quarantine(root: Path, during: Callable[[], None], mp: pytest.MonkeyPatch) -> Callable[[], object]:
    """A quarantine (and its parents) that did not exist is removed with the new signature files."""
    root.mkdir(parents=True)
    return _amavis(root, during, mp, root / "srv" / "amavis" / "quarantine")


# -- tls_certificate ---------------------------------------------------------------------------------------


class _FailingReq(FakeOpenssl):
    def __init__(self, during: Callable[[], None]) -> None:
        super().__init__()
        self.during = during

    def __call__(self, argv: list[str], environ_update: object = None, **kwargs: object) -> tuple[int, str, str]:
        if argv[1] == "req":
            self.during()
            return 1, "", "req: simulated failure"
        return super().__call__(argv, environ_update, **kwargs)


def _tls(directory: Path, during: Callable[[], None]) -> Callable[[], object]:
    backend = tc.TlsCertificate(
        run_command=_FailingReq(during), openssl="/usr/bin/openssl", now=lambda: NOW, uid=0, gid=0
    )
    names = tc.subject_alt_names("mail.example.test", [], "certificate_subject_alt_names")
    return lambda: backend.self_signed("mail.example.test", names, str(directory), 825)


def tls_fixed_then_failed(root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch) -> Callable[[], object]:
    """The directory, key and certificate had their owner and mode fixed before openssl failed: all come back."""
    directory = root / "ssl"
    directory.mkdir(parents=True)
    # Modes the module fixes, but none the host path check refuses (group/world-writable: test_hostile_paths.py).
    own(directory, 0o751)
    put(directory / "mail.example.test.key", PUBLIC_KEY, 0o644)
    write_cert(directory / "mail.example.test.crt", "other.example.test", ["DNS:other.example.test"], NOW, "K9")
    own(directory / "mail.example.test.crt", 0o604)
    return _tls(directory, during)


def tls_new_directory(root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch) -> Callable[[], object]:
    root.mkdir(parents=True)
    return _tls(root / "certs" / "self-signed", during)


# -- vmail_account's home --------------------------------------------------------------------------------


def _account(home: Path) -> dict[str, object]:
    return {"user": "vmail", "group": "vmail", "uid": 5000, "gid": 5000, "home": str(home), "home_mode": "0750"}


def _accounts(home: Path) -> va.VmailAccount:
    """VmailAccount over a host where the vmail group and user exist as wanted: only the home is left to do."""
    group = SimpleNamespace(gr_gid=5000)
    user = SimpleNamespace(pw_uid=5000, pw_gid=5000, pw_dir=str(home), pw_shell="/usr/sbin/nologin")
    return va.VmailAccount(
        lambda argv, **kwargs: (0, "", ""),
        lambda name: name,
        getgrnam=lambda name: group,
        getpwnam=lambda name: user,
    )


def vmail_home_fix_fails(root: Path, during: Callable[[], None], mp: pytest.MonkeyPatch) -> Callable[[], object]:
    """The home's owner was changed, then its chmod failed: owner and mode come back."""
    home = root / "vmail"
    home.mkdir(parents=True)
    own(home, 0o700)

    real_fchmod = os.fchmod
    calls: list[int] = []

    def fchmod(fd: int, mode: int) -> None:
        """The backend's fchmod fails; the rollback's own (a later call) works."""
        calls.append(mode)
        if len(calls) == 1:
            during()
            raise PermissionError(1, "Operation not permitted")
        real_fchmod(fd, mode)

    mp.setattr(va.os, "fchmod", fchmod)
    accounts = _accounts(home)
    return lambda: accounts.ensure(_account(home))


def vmail_home_create_fails(root: Path, during: Callable[[], None], mp: pytest.MonkeyPatch) -> Callable[[], object]:
    """A new home (and its new parent) is removed when setting its mode fails."""
    root.mkdir(parents=True)
    home = root / "srv" / "vmail"
    real_chmod = os.chmod

    def chmod(path: str, mode: int, **kwargs: object) -> None:
        if str(path) == str(home):
            during()
            raise PermissionError(1, "Operation not permitted")
        real_chmod(path, mode, **kwargs)  # type: ignore[arg-type]

    mp.setattr(va.os, "chmod", chmod)
    accounts = _accounts(home)
    return lambda: accounts.ensure(_account(home))


# -- the private-file writer (mail_password's passwd-file, postmap's sources) ---------------------------


def passwd_file_move_fails(root: Path, during: Callable[[], None], _mp: pytest.MonkeyPatch) -> Callable[[], object]:
    """A new passwd-file whose atomic move fails leaves nothing behind (not even the empty 0600 file)."""
    root.mkdir(parents=True)

    def move(src: str, dest: str) -> None:
        during()
        raise OSError(28, "No space left on device")

    return lambda: write_atomically(move, str(root / "passwd"), "alice:{PLAIN}x\n", ".mail_password.")


ROWS = [
    pytest.param(postfix_main_and_fragment, PostfixConfigError, "health check failed", id="postfix-main-master-fragment"),
    pytest.param(postfix_new_fragment_dir, PostfixConfigError, "health check failed", id="postfix-new-fragment-dir"),
    pytest.param(postfix_removed_fragment, PostfixConfigError, "health check failed", id="postfix-removed-fragment"),
    pytest.param(postfix_table_owner_and_mode, PostfixConfigError, "health check failed", id="postfix-table-owner-mode"),
    pytest.param(postfix_new_table, PostfixConfigError, "health check failed", id="postfix-new-table-and-db"),
    pytest.param(dovecot_changed_and_removed, DovecotConfigError, "health check failed", id="dovecot-changed-removed"),
    pytest.param(dovecot_new_directory, DovecotConfigError, "health check failed", id="dovecot-new-directories"),
    pytest.param(spf_changed_file, PolicydSpfError, "health check failed", id="policyd-spf-changed-file"),
    pytest.param(spf_new_directory, PolicydSpfError, "health check failed", id="policyd-spf-new-directory"),
    pytest.param(nftables_changed_file, NftablesConfigError, "has no rule accepting SSH", id="nftables-changed"),
    pytest.param(nftables_new_file, NftablesConfigError, "has no rule accepting SSH", id="nftables-new-file"),
    pytest.param(amavis_quarantine_in_a_key_directory, AmavisError, "amavis did not greet", id="amavis-quarantine-chown"),
    pytest.param(amavis_new_quarantine, AmavisError, "amavis did not greet", id="amavis-new-quarantine"),
    pytest.param(tls_fixed_then_failed, tc.CertificateError, "req: simulated failure", id="tls-fixed-then-failed"),
    pytest.param(tls_new_directory, tc.CertificateError, "req: simulated failure", id="tls-new-directory"),
    pytest.param(vmail_home_fix_fails, va.AccountError, "account.home: ", id="vmail-home-fix"),
    pytest.param(vmail_home_create_fails, va.AccountError, "account.home: ", id="vmail-home-create"),
    pytest.param(passwd_file_move_fails, OSError, "No space left on device", id="passwd-file-move"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "error", "message"), ROWS)
def test_rollback_restores_every_touched_path(tmp_path, monkeypatch, build, error, message):
    root = tmp_path / "host"
    seen: list[Tree] = []
    run = build(root, lambda: seen.append(tree(root)), monkeypatch)
    before = tree(root)
    with pytest.raises(error, match=message) as info:
        run()
    assert seen, "the injected failure was never reached"
    assert seen[0] != before, "the run failed before it changed anything: nothing was rolled back"
    assert tree(root) == before
    if "restore" in str(info.value):
        assert "restoring failed" not in str(info.value) and "but restoring" not in str(info.value)


def test_the_table_has_at_least_twelve_rows():
    assert len(ROWS) >= 12


def test_rolled_back_table_is_older_than_its_compiled_file(tmp_path):
    """Restored in reverse order, the source comes back before its .db: Postfix does not see a stale map."""
    root = tmp_path / "host"
    run = postfix_table_owner_and_mode(root, lambda: None, pytest.MonkeyPatch())
    with pytest.raises(PostfixConfigError):
        run()
    config = root / "postfix"
    assert (config / "vmailbox.db").stat().st_mtime_ns >= (config / "vmailbox").stat().st_mtime_ns


# -- path_state itself ------------------------------------------------------------------------------------


def test_restore_puts_back_set_id_bits_after_the_owner(tmp_path):
    path = put(tmp_path / "f", "x", 0o640)
    os.chmod(path, 0o2750)
    touched = path_state.Touched()
    touched.remember(str(path))
    os.chown(path, 0, 0)
    os.chmod(path, 0o600)
    assert touched.restore() == []
    st = os.lstat(path)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o2750, ODD_UID, ODD_GID)


def test_restore_brings_back_a_symlink_the_run_replaced(tmp_path):
    link = tmp_path / "link"
    link.symlink_to("target-that-does-not-exist")
    os.chown(link, ODD_UID, ODD_GID, follow_symlinks=False)
    touched = path_state.Touched()
    touched.remember(str(link))
    link.unlink()
    link.write_text("a regular file now", encoding="utf-8")
    assert touched.restore() == []
    assert os.readlink(link) == "target-that-does-not-exist"
    assert os.lstat(link).st_uid == ODD_UID


def test_a_created_directory_holding_foreign_content_stays(tmp_path):
    """A directory the run created is removed only when empty: what someone else put there is kept."""
    touched = path_state.Touched()
    touched.makedirs(str(tmp_path / "a" / "b"), mode=0o755)
    (tmp_path / "a" / "b" / "foreign").write_text("not ours", encoding="utf-8")
    assert touched.restore() == []
    assert (tmp_path / "a" / "b" / "foreign").read_text(encoding="utf-8") == "not ours"


def test_new_directories_get_the_mode_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        path_state.Touched().makedirs(str(tmp_path / "srv" / "quarantine"), mode=0o750)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "srv").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "srv" / "quarantine").stat().st_mode) == 0o750


def test_the_first_snapshot_wins(tmp_path):
    path = put(tmp_path / "f", "one", 0o600)
    touched = path_state.Touched()
    touched.remember(str(path))
    path.write_text("two", encoding="utf-8")
    touched.remember(str(path))
    assert touched.restore() == []
    assert path.read_text(encoding="utf-8") == "one"
    assert str(path) in touched and len(touched) == 1


# -- a successful write keeps the owner and mode the module intends --------------------------------------


def ansible_like_move(src: str, dest: str) -> None:
    """AnsibleModule.atomic_move: copies an existing destination's owner and mode, gives a new one 0644 root."""
    if os.path.exists(dest):
        st = os.stat(dest)
        os.chown(src, st.st_uid, st.st_gid)
        os.chmod(src, stat.S_IMODE(st.st_mode))
        os.replace(src, dest)
        return
    os.replace(src, dest)
    os.chmod(dest, 0o644)
    os.chown(dest, os.geteuid(), os.getegid())


def plain_move(src: str, dest: str) -> None:
    os.replace(src, dest)


@pytest.mark.parametrize("move", [ansible_like_move, plain_move], ids=["ansible-move", "plain-move"])
def test_new_file_gets_the_default_mode_not_the_moves(tmp_path, move):
    path = tmp_path / "policyd-spf.conf"
    replace_keeping_mode(move, str(path), "x\n", default_mode=0o640)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize("move", [ansible_like_move, plain_move], ids=["ansible-move", "plain-move"])
def test_replaced_file_keeps_its_owner_and_mode(tmp_path, move):
    path = put(tmp_path / "main.cf", "old\n", 0o604)
    replace_keeping_mode(move, str(path), "new\n")
    st = path.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, path.read_text()) == (0o604, ODD_UID, ODD_GID, "new\n")


@pytest.mark.parametrize("move", [ansible_like_move, plain_move], ids=["ansible-move", "plain-move"])
def test_new_private_file_is_0600(tmp_path, move):
    path = tmp_path / "passwd"
    write_atomically(move, str(path), "alice:x\n", ".mail_password.")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    existing = put(tmp_path / "sasl_passwd", "old\n", 0o640)
    write_atomically(move, str(existing), "new\n", ".postmap.")
    st = existing.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, ODD_UID, ODD_GID)


def test_new_nftables_script_stays_executable_after_an_ansible_move(tmp_path):
    conf = tmp_path / "nftables.conf"
    host = Host(live=None)
    NftablesConfig(
        rules=RULES,
        run_command=host,
        get_bin_path=lambda name: f"/usr/sbin/{name}",
        path=str(conf),
        ufw_conf=str(tmp_path / "ufw.conf"),
        atomic_move=ansible_like_move,
    ).execute()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o755


# -- mail_password: the module fails after the write (its owner or group does not exist) -----------------

HASHED = "{SHA512-CRYPT}$6$abcdefgh$" + "x" * 86


@pytest.mark.parametrize(
    ("existing", "extra"),
    [
        pytest.param(True, {"owner": "no-such-user-25"}, id="existing-file-unknown-owner"),
        pytest.param(True, {"group": "no-such-group-25"}, id="existing-file-unknown-group"),
        pytest.param(False, {"owner": "no-such-user-25"}, id="new-file-unknown-owner"),
    ],
)
def test_mail_password_failing_after_the_write_restores_the_file(tmp_path, monkeypatch, capsys, existing, extra):
    root = tmp_path / "host"
    root.mkdir()
    path = root / "users"
    if existing:
        put(path, "old@x.test:{PLAIN}old::::::\n", 0o640)
    seen: list[Tree] = []

    def write(*args: object, **kwargs: object) -> None:
        write_atomically(*args, **kwargs)  # type: ignore[arg-type]
        seen.append(tree(root))

    monkeypatch.setattr(mail_password_module, "write_atomically", write)
    before = tree(root)
    users = [{"name": "a@x.test", "hash": HASHED}]
    with patch_module_args({"path": str(path), "users": users, "mode": "0600", **extra}), pytest.raises(SystemExit):
        mail_password_module.main()
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True and "failed to look up" in result["msg"], result
    assert seen and seen[0] != before
    assert tree(root) == before
