# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The srs_config backend with a real shell, a fake systemd and a fake postsrsd speaking tcp_table on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import threading

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import HealthCheckError
from ansible_collections.postmaster.mailserver.plugins.module_utils.srs.srs_config import (
    HEALTH_ADDRESS,
    SrsConfig,
    SrsConfigError,
    encode_key,
    parse_reply,
    tcp_table_lookup,
)

SECRET = b"\x01" * 32


class Host:
    """Fake systemd and postsrsd tables; the shell is the real one."""

    def __init__(self, root):
        self.root = root
        self.calls: list[list[str]] = []
        self.active = True
        self.answers = True
        self.lookups: list[tuple[int, str]] = []

    def run(self, argv, **_kwargs):
        self.calls.append(list(argv))
        name = os.path.basename(argv[0])
        if name == "sh":
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            return done.returncode, done.stdout, done.stderr
        if name == "systemctl":
            if argv[1] == "is-enabled":
                return 0, "enabled\n", ""
            if argv[1] == "is-active":
                return (0 if self.active else 3), "", ""
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def bin(self, name):
        return "/bin/sh" if name == "sh" else f"/usr/bin/{name}"

    def lookup(self, host, port, key, timeout):
        self.lookups.append((port, key))
        if not self.answers:
            raise ConnectionRefusedError("nothing listens")
        if port == 10001:
            local, domain = key.split("@")
            return 200, f"SRS0=HHHH=TT={domain}={local}@example.org"
        return 200, HEALTH_ADDRESS

    def config(self, settings=None, **options):
        return SrsConfig(
            settings=settings or {"domain": "example.org", "local_domains": ["example.net"]},
            run_command=self.run,
            get_bin_path=self.bin,
            defaults_path=str(self.root / "default" / "postsrsd"),
            secret_path=str(self.root / "postsrsd.secret"),
            lookup=self.lookup,
            random_bytes=lambda count: SECRET[:count],
            sleep=lambda seconds: None,
            health_timeout=0,
            **options,
        )

    def systemctl(self):
        return [call[1] for call in self.calls if os.path.basename(call[0]) == "systemctl"]


@pytest.fixture
def host(tmp_path):
    (tmp_path / "default").mkdir()
    return Host(tmp_path)


def test_first_run_makes_a_private_secret_and_never_returns_it(host):
    result = host.config().execute()
    secret = host.root / "postsrsd.secret"
    assert result["changed"] is True and result["secret_generated"] is True and result["restarted"] is True
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    content = secret.read_text()
    assert len(content.strip()) == 44
    assert content.strip() not in repr(result)  # neither in the result nor in its diff
    assert "(generated on the host, never shown)" in result["diff"]["after"]
    text = (host.root / "default" / "postsrsd").read_text()
    assert "SRS_DOMAIN=example.org\n" in text and "SRS_EXCLUDE_DOMAINS=example.net\n" in text
    assert f"SRS_SECRET={secret}\n" in text
    assert (
        result["lookup"]
        == f"{HEALTH_ADDRESS} -> SRS0=HHHH=TT=srs-health.invalid=postmaster-health@example.org -> {HEALTH_ADDRESS}"
    )
    assert host.systemctl()[-1] == "restart"


def test_second_run_changes_nothing_and_keeps_the_secret(host):
    host.config().execute()
    secret = (host.root / "postsrsd.secret").read_text()
    host.calls.clear()
    host.lookups.clear()
    result = host.config().execute()
    assert result["changed"] is False and result["restarted"] is False and "lookup" not in result
    assert (host.root / "postsrsd.secret").read_text() == secret
    assert "restart" not in host.systemctl() and host.lookups == []


def test_an_existing_secret_is_kept_and_made_private(host):
    secret = host.root / "postsrsd.secret"
    secret.write_text("the package's secret\n")
    secret.chmod(0o644)
    result = host.config().execute()
    assert result["secret_generated"] is False and result["secret_mode_fixed"] is True
    assert secret.read_text() == "the package's secret\n"
    assert oct(secret.stat().st_mode & 0o777) == "0o600"


def test_a_settings_change_restarts_and_checks_both_tables(host):
    host.config().execute()
    host.lookups.clear()
    result = host.config({"domain": "example.org", "local_domains": ["example.net", "example.com"]}).execute()
    assert result["changed"] is True and result["restarted"] is True and result["secret_generated"] is False
    assert [port for port, _key in host.lookups] == [10001, 10002]
    assert host.lookups[1][1].startswith("SRS0=")
    assert "SRS_EXCLUDE_DOMAINS=example.net,example.com" in result["diff"]["after"]


def test_check_mode_writes_nothing_but_checks_the_candidate(host):
    result = host.config(check_mode=True).execute()
    assert result["changed"] is True and result["secret_generated"] is True
    assert not (host.root / "postsrsd.secret").exists()
    assert not (host.root / "default" / "postsrsd").exists()
    assert [call[1] for call in host.calls if call[0] == "/bin/sh"] == ["-n", "-c"]
    assert "systemctl" not in " ".join(" ".join(call) for call in host.calls)


def test_a_failed_health_check_rolls_back(host):
    host.config().execute()
    before = (host.root / "default" / "postsrsd").read_text()
    (host.root / "postsrsd.secret").unlink()
    host.answers = False
    with pytest.raises(SrsConfigError) as error:
        host.config({"domain": "example.org", "local_domains": ["example.com"]}).execute()
    assert error.value.details == {"rolled_back": True}
    assert "health check failed: postsrsd on 127.0.0.1:10001 did not rewrite and reverse an address" in error.value.msg
    assert (host.root / "default" / "postsrsd").read_text() == before
    assert not (host.root / "postsrsd.secret").exists()  # the secret this run made is gone again
    assert host.systemctl()[-2:] == ["restart", "restart"]


def test_a_wrong_answer_is_unhealthy(host):
    host.lookup = lambda h, port, key, timeout: (500, "Domain excluded")
    with pytest.raises(SrsConfigError, match=r"answered 500 'Domain excluded'.*not an SRS address of example.org"):
        host.config().execute()


def test_the_shell_check_refuses_a_candidate_that_does_not_read_back(host):
    config = host.config()
    config.text += "SRS_DOMAIN=other.example\n"
    with pytest.raises(SrsConfigError, match=r"does not read back as written \(SRS_DOMAIN\); nothing was changed"):
        config.execute()
    assert not (host.root / "default" / "postsrsd").exists()
    config.text = "if then\n"
    with pytest.raises(SrsConfigError, match=r"/bin/sh refused the candidate"):
        config.execute()


def test_bad_settings_change_nothing(host):
    with pytest.raises(SrsConfigError, match=r"srs_separator: .*; nothing was changed"):
        host.config({"domain": "example.org", "separator": "x"})
    with pytest.raises(SrsConfigError, match=r"secret_path: must be an absolute path"):
        SrsConfig(settings={"domain": "example.org"}, run_command=host.run, get_bin_path=host.bin, secret_path="x y")


def test_a_symlinked_secret_is_refused(host, tmp_path):
    (tmp_path / "elsewhere").write_text("x")
    (host.root / "postsrsd.secret").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SrsConfigError, match=r"secret_path"):
        host.config().execute()


# -- the tcp_table protocol against a fake postsrsd on loopback ----------------------------


def test_tcp_table_encoding_and_replies():
    assert encode_key("a b%c@example.org") == "a%20b%25c@example.org"
    assert parse_reply("200 SRS0=ab=cd=x.org=u@example.org\n") == (200, "SRS0=ab=cd=x.org=u@example.org")
    assert parse_reply("500 Domain%20excluded\n") == (500, "Domain excluded")
    with pytest.raises(HealthCheckError):
        parse_reply("hello\n")


def test_tcp_table_lookup_talks_to_a_server():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    seen = []

    def serve():
        conn, _addr = server.accept()
        with conn:
            seen.append(conn.recv(1024).decode())
            conn.sendall(b"200 SRS0=h=t=x.org=u@example.org\n")

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        answer = tcp_table_lookup("127.0.0.1", server.getsockname()[1], "u@x.org", 5)
    finally:
        thread.join(5)
        server.close()
    assert seen == ["get u@x.org\n"]
    assert answer == (200, "SRS0=h=t=x.org=u@example.org")
