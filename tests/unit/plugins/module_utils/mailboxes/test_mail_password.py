# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import importlib
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes import mail_password as mp


class FakeCrypto:
    """verify/make_hash pair: '{SCHEME}<password>#<n>' hashes, and a record of every call."""

    def __init__(self) -> None:
        self.verified: list[tuple[str, str]] = []
        self.hashed: list[tuple[str, str]] = []

    def verify(self, password: str, hashed: str) -> bool:
        self.verified.append((password, hashed))
        return mp.split_scheme(hashed)[1].split("#")[0] == password

    def make_hash(self, password: str, scheme: str) -> str:
        self.hashed.append((password, scheme))
        return "{" + scheme + "}" + f"{password}#{len(self.hashed)}"


def run(existing: str, users: list[mp.User], crypto: FakeCrypto, **kwargs) -> mp.Plan:
    kwargs.setdefault("scheme", "SHA512-CRYPT")
    kwargs.setdefault("exclusive", True)
    return mp.plan(existing, users, verify=crypto.verify, make_hash=crypto.make_hash, **kwargs)


def test_new_file_hashes_each_user_once():
    crypto = FakeCrypto()
    result = run("", [mp.User("a@x.test", password="pa"), mp.User("b@x.test", password="pb")], crypto)
    assert result.changed
    assert result.added == ["a@x.test", "b@x.test"]
    assert result.content == "a@x.test:{SHA512-CRYPT}pa#1::::::\nb@x.test:{SHA512-CRYPT}pb#2::::::\n"
    assert crypto.verified == []


def test_matching_entries_are_kept_and_not_rehashed():
    existing = "a@x.test:{SHA512-CRYPT}pa#old::::::\nb@x.test:{SHA512-CRYPT}pb#old::::::\n"
    crypto = FakeCrypto()
    result = run(existing, [mp.User("a@x.test", password="pa"), mp.User("b@x.test", password="pb")], crypto)
    assert not result.changed
    assert result.content == existing
    assert crypto.hashed == []
    assert len(crypto.verified) == 2
    assert (result.added, result.updated, result.removed) == ([], [], [])


def test_only_the_mismatch_is_rehashed():
    existing = "a@x.test:{SHA512-CRYPT}pa#old::::::\nb@x.test:{SHA512-CRYPT}pb#old::::::\n"
    crypto = FakeCrypto()
    result = run(existing, [mp.User("a@x.test", password="pa"), mp.User("b@x.test", password="new")], crypto)
    assert result.changed
    assert result.updated == ["b@x.test"]
    assert crypto.hashed == [("new", "SHA512-CRYPT")]
    assert result.content.splitlines()[0] == "a@x.test:{SHA512-CRYPT}pa#old::::::"


def test_scheme_change_rehashes_without_verifying():
    existing = "a@x.test:{SHA512-CRYPT}pa#old::::::\n"
    crypto = FakeCrypto()
    result = run(existing, [mp.User("a@x.test", password="pa")], crypto, scheme="ARGON2ID")
    assert result.updated == ["a@x.test"]
    assert crypto.verified == []
    assert result.content.startswith("a@x.test:{ARGON2ID}pa#1")


def test_prehashed_user_is_written_as_given():
    crypto = FakeCrypto()
    users = [mp.User("a@x.test", hash="{SHA512-CRYPT}$6$salt$abc")]
    result = run("", users, crypto)
    assert result.content == "a@x.test:{SHA512-CRYPT}$6$salt$abc::::::\n"
    again = run(result.content, users, crypto)
    assert not again.changed
    assert crypto.hashed == [] and crypto.verified == []


def test_exclusive_removes_other_users_and_non_exclusive_keeps_them():
    existing = "old@x.test:{SHA512-CRYPT}po#1::::::\na@x.test:{SHA512-CRYPT}pa#1::::::\n"
    users = [mp.User("a@x.test", password="pa")]
    result = run(existing, users, FakeCrypto())
    assert result.removed == ["old@x.test"]
    assert result.content == "a@x.test:{SHA512-CRYPT}pa#1::::::\n"
    kept = run(existing, users, FakeCrypto(), exclusive=False)
    assert not kept.changed and kept.removed == []


def test_extra_fields_change_is_an_update_without_rehash():
    existing = "a@x.test:{SHA512-CRYPT}pa#1::::::\n"
    crypto = FakeCrypto()
    result = run(existing, [mp.User("a@x.test", password="pa", extra_fields="userdb_quota_rule=*:storage=1G")], crypto)
    assert result.updated == ["a@x.test"]
    assert result.content == "a@x.test:{SHA512-CRYPT}pa#1::::::userdb_quota_rule=*:storage=1G\n"
    assert crypto.hashed == []


def test_diff_never_shows_hashes_or_passwords():
    existing = "a@x.test:{SHA512-CRYPT}secretA#1::::::\n"
    result = run(existing, [mp.User("a@x.test", password="secretB")], FakeCrypto())
    for text in (result.before_redacted, result.after_redacted):
        assert "secret" not in text
    assert result.before_redacted == "a@x.test:{SHA512-CRYPT}<redacted>::::::\n"
    assert result.after_redacted == "a@x.test:{SHA512-CRYPT}<redacted, new hash>::::::\n"


@pytest.mark.parametrize(
    ("user", "message"),
    [
        (mp.User("a:b", password="x"), "contains ':'"),
        (mp.User("", password="x"), "is empty"),
        (mp.User("a@x.test"), "exactly one of"),
        (mp.User("a@x.test", password="x", hash="{PLAIN}x"), "exactly one of"),
        (mp.User("a@x.test", password=""), "password is empty"),
        (mp.User("a@x.test", hash="nobraces"), "{SCHEME}value"),
        (mp.User("a@x.test", password="x", extra_fields="a\nb"), "newline"),
    ],
)
def test_invalid_users_fail(user, message):
    with pytest.raises(mp.MailPasswordError) as excinfo:
        run("", [user], FakeCrypto())
    assert message in str(excinfo.value)


def test_duplicate_user_and_bad_scheme_fail():
    with pytest.raises(mp.MailPasswordError, match="listed twice"):
        run("", [mp.User("a@x.test", password="x"), mp.User("a@x.test", password="y")], FakeCrypto())
    with pytest.raises(mp.MailPasswordError, match="scheme must be"):
        run("", [mp.User("a@x.test", password="x")], FakeCrypto(), scheme="PLAIN")


def test_parse_keeps_extra_colons_in_the_last_field():
    entries, other = mp.parse("# comment\n\nu:{PLAIN}p:1:2:g:/h:/s:a=b:c\nshort:{PLAIN}p\n")
    assert other == ["# comment", ""]
    assert entries[0].rest == ["1", "2", "g", "/h", "/s", "a=b:c"]
    assert entries[1].line() == "short:{PLAIN}p::::::"


def test_split_scheme():
    assert mp.split_scheme("{sha512-crypt}$6$a$b") == ("SHA512-CRYPT", "$6$a$b")
    assert mp.split_scheme("$6$a$b") == ("CRYPT", "$6$a$b")


crypt = mp.system_crypt()


@pytest.mark.skipif(crypt is None, reason="no crypt(3) on this host")
def test_real_crypt_round_trip():
    hashed = mp.crypt_hash(crypt, "s3cret", "SHA512-CRYPT")
    assert hashed is not None and hashed.startswith("{SHA512-CRYPT}$6$")
    assert mp.crypt_verify(crypt, "s3cret", hashed) is True
    assert mp.crypt_verify(crypt, "wrong", hashed) is False
    assert mp.crypt_verify(crypt, "s3cret", "{ARGON2ID}$argon2id$v=19$x") is None
    assert mp.crypt_hash(crypt, "s3cret", "ARGON2ID") is None
    other = mp.crypt_hash(crypt, "s3cret", "SHA512-CRYPT")
    assert other != hashed  # random salt


def test_doveadm_fallback_gets_the_password_on_stdin_never_in_argv():
    calls = []

    def run_command(argv, data=None, environ_update=None):
        calls.append((argv, data))
        if "-t" in argv:
            return (0 if data == "good" else 75), "", ""
        if data != "pw\npw":
            return 1, "", "Error: cmd pw: Passwords don't match!"
        return 0, "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$abc$def\n", ""

    doveadm = mp.Doveadm(run_command, "/usr/bin/doveadm", "/usr/bin/setsid")
    assert doveadm.verify("good", "{ARGON2ID}h") is True
    assert doveadm.verify("bad", "{ARGON2ID}h") is False
    assert doveadm.hash("pw", "ARGON2ID").startswith("{ARGON2ID}$argon2id$")
    assert calls == [
        (["/usr/bin/setsid", "-w", "/usr/bin/doveadm", "pw", "-t", "{ARGON2ID}h"], "good"),
        (["/usr/bin/setsid", "-w", "/usr/bin/doveadm", "pw", "-t", "{ARGON2ID}h"], "bad"),
        (["/usr/bin/setsid", "-w", "/usr/bin/doveadm", "pw", "-s", "ARGON2ID"], "pw\npw"),
    ]
    with pytest.raises(mp.MailPasswordError, match="doveadm is not installed"):
        mp.Doveadm(run_command, None, "/usr/bin/setsid").verify("x", "{ARGON2ID}h")
    with pytest.raises(mp.MailPasswordError, match=r"setsid \(util-linux\) was not found"):
        mp.Doveadm(run_command, "/usr/bin/doveadm", None).hash("x", "ARGON2ID")
    with pytest.raises(mp.MailPasswordError, match=r"^doveadm pw -s ARGON2ID failed: Fatal: boom$"):
        mp.Doveadm(lambda argv, data=None, environ_update=None: (1, "", "Fatal: boom"), "/d", "/s").hash(
            "x", "ARGON2ID"
        )


def test_default_backends_prefer_crypt_and_libsodium():
    calls = []

    def run_command(argv, data=None, environ_update=None):
        calls.append(argv)
        return 0, "{ARGON2ID}$argon2id$x\n", ""

    verify, make_hash = mp.default_backends(run_command, "/usr/bin/doveadm", "/usr/bin/setsid")
    hashed = make_hash("pw", "SHA512-CRYPT")
    assert verify("pw", hashed) and not verify("other", hashed)
    argon = make_hash("pw", "ARGON2ID")
    assert argon.startswith("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$")
    assert verify("pw", argon) and not verify("other", argon)
    assert calls == []  # neither scheme ran a command
    verify, make_hash = mp.default_backends(run_command, "/usr/bin/doveadm", "/usr/bin/setsid", crypt=None, sodium=None)
    assert make_hash("pw", "ARGON2ID") == "{ARGON2ID}$argon2id$x"
    assert calls[-1] == ["/usr/bin/setsid", "-w", "/usr/bin/doveadm", "pw", "-s", "ARGON2ID"]


def test_libsodium_hashes_are_dovecot_s():
    sodium = mp.system_sodium()
    assert sodium is not None, "libsodium (libsodium23) is not installed on this host"
    # Made by doveadm pw -s ARGON2ID (Dovecot 2.4.1, Debian 13) for "s3cret pw".
    dovecot = (
        "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$/AqjOIkHZFPDswRGHEKYsg$PtmYIp4DppNNzz5niD/4vopN+WPNelf/1FR1WrQw+tw"
    )
    assert sodium.verify("s3cret pw", dovecot) is True
    assert sodium.verify("s3cret pW", dovecot) is False
    assert sodium.verify("s3cret pw", "{SHA512-CRYPT}$6$x$y") is None
    assert sodium.hash("x", "SHA512-CRYPT") is None
    made = sodium.hash("pässword with spaces ", "ARGON2ID")
    assert made != sodium.hash("pässword with spaces ", "ARGON2ID")  # random salt
    assert sodium.verify("pässword with spaces ", made) is True


@pytest.mark.parametrize("scheme", ["SHA512-CRYPT", "ARGON2ID"])
@pytest.mark.parametrize("libraries", ["system", "doveadm only"])
def test_no_password_is_ever_in_a_command_line(scheme, libraries):
    """Every scheme, with and without the in-process libraries: argv never holds a password."""
    passwords = ["Sekr1t-Anna", "-p", "ben's pw with spaces"]
    seen = []

    def run_command(argv, data=None, environ_update=None):
        seen.append(list(argv))
        if "-t" in argv:
            return 75, "", ""
        return 0, "{" + scheme + "}$fake$" + str(len(seen)) + "\n", ""

    fallback = {"crypt": None, "sodium": None} if libraries == "doveadm only" else {}
    verify, make_hash = mp.default_backends(run_command, "/usr/bin/doveadm", "/usr/bin/setsid", **fallback)
    users = [mp.User(f"u{i}@example.org", password=pw) for i, pw in enumerate(passwords)]
    existing = "".join(f"u{i}@example.org:{{{scheme}}}$old$:::::\n" for i in range(len(passwords)))
    result = mp.plan(existing, users, scheme=scheme, exclusive=True, verify=verify, make_hash=make_hash, workers=2)
    assert result.updated == [u.name for u in users]
    if libraries == "doveadm only":
        assert len(seen) == 2 * len(passwords)  # one verification and one hash each
    for argv in seen:
        for password in passwords:
            assert password not in argv, argv
            assert not any(password in arg for arg in argv if len(password) > 2), argv


def test_crypt_r_gives_the_same_hash_as_the_stdlib_and_is_reentrant():
    crypt_r = mp._load_crypt_r()
    assert crypt_r is not None, "libcrypt without crypt_r on this host"
    salt = "$6$abcdefghijklmnop"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        stdlib = importlib.import_module("crypt")
    assert crypt_r("s3cret", salt) == stdlib.crypt("s3cret", salt)
    # Many threads at once, each with its own struct crypt_data: every result is the right one.
    passwords = [f"pw-{i}" for i in range(64)]
    expected = [stdlib.crypt(p, salt) for p in passwords]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(lambda p: crypt_r(p, salt), passwords)) == expected


def test_plan_runs_verification_and_hashing_on_several_threads_with_the_same_result():
    threads = set()

    def verify(password, hashed):
        threads.add(threading.get_ident())
        time.sleep(0.001)  # long enough for the pool to hand work to every thread
        return hashed == "{SHA512-CRYPT}h-" + password

    def make_hash(password, scheme):
        threads.add(threading.get_ident())
        return "{SHA512-CRYPT}h-" + password

    existing = "".join(f"u{i}@x.test:{{SHA512-CRYPT}}h-p{i}::::::\n" for i in range(40))
    # u0..u19 keep their password, u20..u39 change it, u40..u59 are new.
    users = [mp.User(f"u{i}@x.test", password=f"p{i}" if i < 20 else f"new{i}") for i in range(60)]
    kwargs = {"scheme": "SHA512-CRYPT", "exclusive": True, "verify": verify, "make_hash": make_hash}
    serial = mp.plan(existing, users, workers=1, **kwargs)
    assert len(threads) == 1
    threads.clear()
    parallel = mp.plan(existing, users, workers=4, **kwargs)
    assert len(threads) > 1
    assert parallel == serial
    assert (len(serial.added), len(serial.updated)) == (20, 20)
    assert "u0@x.test:{SHA512-CRYPT}h-p0:" in serial.content and "u59@x.test:{SHA512-CRYPT}h-new59:" in serial.content
