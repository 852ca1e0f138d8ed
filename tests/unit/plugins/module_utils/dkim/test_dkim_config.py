# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The dkim_config backend with real openssl key generation in a scratch directory and fake OpenDKIM/systemd."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import socket
import struct
import subprocess
import threading

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import HealthCheckError
from ansible_collections.postmaster.mailserver.plugins.module_utils.dkim import dkim_settings
from ansible_collections.postmaster.mailserver.plugins.module_utils.dkim.dkim_config import (
    DkimConfig,
    DkimConfigError,
    bits_from_text,
    milter_packet,
    milter_probe,
    public_from_pem,
    read_milter_packet,
)
from cryptography.hazmat.primitives import serialization

OPENSSL = shutil.which("openssl")


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A scratch host: the key directory policy admits the scratch directory (the policy itself is tested elsewhere)."""
    real = dkim_settings.confined_path

    def confined(value, name, purpose, within=None):
        if isinstance(value, str) and value.startswith(str(tmp_path)):
            return value
        return real(value, name, purpose, within)

    monkeypatch.setattr(dkim_settings, "confined_path", confined)
    return Host(tmp_path)


class Host:
    """Fake OpenDKIM and systemd; openssl is the real one."""

    def __init__(self, root):
        self.root = root
        self.calls: list[list[str]] = []
        self.checker_rc = 0
        self.checked: list[str] = []
        self.milter_answers = True
        self.milter_ports: list[int] = []
        self.active = True
        self.reload_rc = 0

    def run(self, argv, **_kwargs):
        self.calls.append(list(argv))
        name = os.path.basename(argv[0])
        if name == "openssl":
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            return done.returncode, done.stdout, done.stderr
        if name == "opendkim":
            conf = argv[argv.index("-x") + 1]
            with open(conf, encoding="utf-8") as handle:
                self.checked.append(handle.read())
            return self.checker_rc, "", "configuration error at line 3" if self.checker_rc else ""
        if name == "systemctl":
            if argv[1] == "daemon-reload" and len(argv) > 2:
                return 1, "", "Too many arguments."
            if argv[1] == "is-enabled":
                return 0, "enabled\n", ""
            if argv[1] == "is-active":
                return (0 if self.active else 3), "", ""
            if argv[1] == "reload":
                return self.reload_rc, "", "Job for opendkim.service failed." if self.reload_rc else ""
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def bin(self, name):
        return OPENSSL if name == "openssl" else f"/usr/bin/{name}"

    def milter(self, host, port, timeout):
        self.milter_ports.append(port)
        if not self.milter_answers:
            raise ConnectionRefusedError("nothing listens")
        return "milter version 6"

    def config(self, settings, **options):
        return DkimConfig(
            settings=settings,
            run_command=self.run,
            get_bin_path=self.bin,
            conf_path=str(self.root / "opendkim.conf"),
            table_dir=str(self.root / "opendkim"),
            unit_dir=str(self.root / "systemd"),
            account=lambda user: (os.getuid(), os.getgid()),
            milter=self.milter,
            sleep=lambda seconds: None,
            health_timeout=0,
            **options,
        )

    def systemctl(self):
        return [call[1] for call in self.calls if os.path.basename(call[0]) == "systemctl"]


def settings(host, selectors=None, **changes):
    return {
        "domains": ["example.org", "example.net"],
        "selectors": selectors or [{"name": "s1", "state": "active"}],
        "key_dir": str(host.root / "keys"),
        "authserv_id": "mail.example.org",
        **changes,
    }


def public_of(path):
    with open(path, "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode(), key.key_size


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_first_run_makes_private_keys_and_returns_only_public_halves(host):
    result = host.config(settings(host)).execute()
    assert result["changed"] is True
    assert result["generated"] == ["example.org/s1", "example.net/s1"]
    for record in result["public_keys"]:
        path = host.root / "keys" / record["domain"] / "s1.private"
        assert record["path"] == str(path)
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
        assert oct(os.stat(path.parent).st_mode & 0o777) == "0o700"
        assert (record["public"], record["bits"]) == public_of(path)
        assert record["bits"] == 2048
        assert "PRIVATE" not in repr(result)
    # The candidate was checked by opendkim -n before anything was written, then OpenDKIM restarted.
    assert len(host.checked) == 1 and "Socket\tinet:8891@127.0.0.1" in host.checked[0]
    assert host.systemctl() == ["is-enabled", "is-active", "restart"]
    assert result["restarted"] is True and result["milter_answer"] == "milter version 6"
    assert (
        (host.root / "opendkim" / "KeyTable")
        .read_text()
        .endswith(f"s1._domainkey.example.net example.net:s1:{host.root}/keys/example.net/s1.private\n")
    )


def test_second_run_changes_nothing_and_never_regenerates(host):
    first = host.config(settings(host)).execute()
    before = digest(host.root / "keys" / "example.org" / "s1.private")
    host.calls.clear()
    host.checked.clear()
    again = host.config(settings(host)).execute()
    assert again["changed"] is False and again["generated"] == [] and again["deleted"] == []
    assert again["public_keys"] == first["public_keys"]
    assert digest(host.root / "keys" / "example.org" / "s1.private") == before
    # Only the look whether OpenDKIM is enabled and runs: no check, no restart, no reload.
    assert host.checked == [] and host.systemctl() == ["is-enabled", "is-active"]


def test_a_larger_key_size_makes_larger_new_keys_only(host):
    host.config(settings(host)).execute()
    result = host.config(
        settings(host, [{"name": "s1"}, {"name": "s2", "state": "published"}], key_size=3072)
    ).execute()
    bits = {(k["domain"], k["selector"]): k["bits"] for k in result["public_keys"]}
    assert bits == {("example.org", "s1"): 2048, ("example.org", "s2"): 3072,
                    ("example.net", "s1"): 2048, ("example.net", "s2"): 3072}  # fmt: skip


def test_check_mode_writes_nothing_and_says_what_it_would_make(host):
    result = host.config(settings(host), check_mode=True).execute()
    assert result["changed"] is True
    assert result["generated"] == ["example.org/s1", "example.net/s1"]
    assert [k["public"] for k in result["public_keys"]] == [None, None]
    assert not (host.root / "keys").exists() and not (host.root / "opendkim.conf").exists()
    assert len(host.checked) == 1  # the candidate is still checked
    assert "+Socket\tinet:8891@127.0.0.1" not in result["diff"]["before"]
    assert "Socket\tinet:8891@127.0.0.1" in result["diff"]["after"]


def test_check_mode_on_a_converged_host_reports_the_keys(host):
    first = host.config(settings(host)).execute()
    result = host.config(settings(host), check_mode=True).execute()
    assert result["changed"] is False and result["public_keys"] == first["public_keys"]


def test_the_checker_refusing_changes_nothing(host):
    host.checker_rc = 78
    with pytest.raises(DkimConfigError) as info:
        host.config(settings(host)).execute()
    assert "opendkim -n refused the candidate configuration (rc=78); nothing was changed" in info.value.msg
    assert not (host.root / "keys").exists() and not (host.root / "opendkim.conf").exists()


def test_health_failure_rolls_back_files_and_new_keys(host):
    host.config(settings(host)).execute()
    conf = (host.root / "opendkim.conf").read_text()
    table = (host.root / "opendkim" / "SigningTable").read_text()
    host.milter_answers = False
    host.calls.clear()
    rotated = settings(host, [{"name": "s2"}, {"name": "s1", "state": "published"}], milter_port=8899)
    with pytest.raises(DkimConfigError) as info:
        host.config(rotated).execute()
    assert info.value.details == {"rolled_back": True}
    assert "health check failed: the OpenDKIM milter on 127.0.0.1:8899 did not answer" in info.value.msg
    assert (host.root / "opendkim.conf").read_text() == conf
    assert (host.root / "opendkim" / "SigningTable").read_text() == table
    assert not (host.root / "keys" / "example.org" / "s2.private").exists()
    assert (host.root / "keys" / "example.org" / "s1.private").exists()
    assert host.systemctl()[-1] == "restart"


def test_rotation_publishes_then_switches_then_retires(host):
    host.config(settings(host)).execute()
    old = digest(host.root / "keys" / "example.org" / "s1.private")
    host.calls.clear()
    # 1. s2 published: its key is made, s1 still signs, the tables do not change (no reload).
    result = host.config(settings(host, [{"name": "s1"}, {"name": "s2", "state": "published"}])).execute()
    assert result["generated"] == ["example.org/s2", "example.net/s2"]
    assert {(k["selector"], k["state"]) for k in result["public_keys"]} == {("s1", "active"), ("s2", "published")}
    assert "s1._domainkey.example.org" in (host.root / "opendkim" / "SigningTable").read_text()
    assert "restart" not in host.systemctl() and "reload" not in host.systemctl()
    # 2. the switch: s2 signs, s1 stays published (overlap); tables changed only, so a reload.
    host.calls.clear()
    result = host.config(settings(host, [{"name": "s2"}, {"name": "s1", "state": "published"}])).execute()
    assert result["generated"] == [] and result["reloaded"] is True and result["restarted"] is False
    assert "*@example.org s2._domainkey.example.org" in (host.root / "opendkim" / "SigningTable").read_text()
    assert digest(host.root / "keys" / "example.org" / "s1.private") == old
    # 3. s1 retired: its private key is deleted, its public key is no longer returned.
    result = host.config(settings(host, [{"name": "s2"}, {"name": "s1", "state": "retired"}])).execute()
    assert result["changed"] is True and result["deleted"] == ["example.org/s1", "example.net/s1"]
    assert not (host.root / "keys" / "example.org" / "s1.private").exists()
    assert [(k["domain"], k["selector"]) for k in result["public_keys"]] == [
        ("example.org", "s2"),
        ("example.net", "s2"),
    ]
    again = host.config(settings(host, [{"name": "s2"}, {"name": "s1", "state": "retired"}])).execute()
    assert again["changed"] is False


def test_a_broken_existing_key_is_an_error_and_is_kept(host):
    path = host.root / "keys" / "example.org" / "s1.private"
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_text("not a key\n")
    path.chmod(0o600)
    with pytest.raises(DkimConfigError) as info:
        host.config(settings(host)).execute()
    assert f"{path} is not a private key openssl can read" in info.value.msg
    assert path.read_text() == "not a key\n"


def test_bad_settings_fail_before_anything(host):
    with pytest.raises(DkimConfigError) as info:
        host.config(settings(host, [{"name": "a.b"}])).execute()
    assert (
        info.value.msg
        == "dkim_selectors[0].name: 'a.b' contains a dot; a selector is one DNS label; nothing was changed"
    )
    assert host.calls == []


def test_a_stopped_opendkim_is_started_and_checked(host):
    host.config(settings(host)).execute()
    host.active = False
    host.calls.clear()
    result = host.config(settings(host)).execute()
    assert host.systemctl() == ["is-enabled", "is-active", "start"]
    assert result["milter_answer"] == "milter version 6"


# -- the milter probe and the key helpers ---------------------------------------------


def _serve(answer: bytes):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    seen: list[bytes] = []

    def handle():
        conn, _peer = server.accept()
        with conn:
            seen.append(conn.recv(4096))
            conn.sendall(answer)
        server.close()

    threading.Thread(target=handle, daemon=True).start()
    return server.getsockname()[1], seen


def test_milter_probe_negotiates_options():
    port, seen = _serve(milter_packet(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF)))
    assert milter_probe("127.0.0.1", port, 5) == "milter version 6, actions 0x1ff, protocol 0x1fffff"
    length, command = struct.unpack(">I", seen[0][:4])[0], seen[0][4:5]
    assert (length, command) == (13, b"O")


def test_milter_probe_refuses_an_smtp_server():
    port, _seen = _serve(b"220 mail.example.org ESMTP\r\n")
    with pytest.raises(HealthCheckError):
        milter_probe("127.0.0.1", port, 5)


def test_read_milter_packet_needs_the_whole_packet():
    partial = io.BytesIO(milter_packet(b"O", b"abc")[:6])
    with pytest.raises(HealthCheckError, match="closed the connection"):
        read_milter_packet(partial.read)
    whole = io.BytesIO(milter_packet(b"O", b"abc"))
    assert read_milter_packet(whole.read) == (b"O", b"abc")


def test_public_from_pem_and_bits():
    assert public_from_pem("-----BEGIN PUBLIC KEY-----\nQUJD\nREVG\n-----END PUBLIC KEY-----\n") == "QUJDREVG"
    with pytest.raises(DkimConfigError):
        public_from_pem("garbage")
    assert bits_from_text("Private-Key: (4096 bit, 2 primes)\nmodulus:\n") == 4096
    assert bits_from_text("nothing") is None


def test_a_failing_reload_falls_back_to_a_restart(host):
    host.config(settings(host)).execute()
    host.reload_rc = 1
    host.calls.clear()
    backend = host.config(settings(host, [{"name": "s2"}, {"name": "s1", "state": "published"}]))
    result = backend.execute()
    assert host.systemctl() == ["is-enabled", "is-active", "reload", "restart"]
    assert result["restarted"] is True and result["reloaded"] is False
    assert result["warnings"] == [
        "systemctl reload opendkim failed (rc=1): Job for opendkim.service failed.; OpenDKIM was restarted instead"
    ]
    assert "*@example.org s2._domainkey.example.org" in (host.root / "opendkim" / "SigningTable").read_text()


# -- Ed25519 dual signing: a second, sign-only OpenDKIM process ----------------------------

DUAL = [{"name": "s1", "state": "active"}, {"name": "e1", "state": "active", "algorithm": "ed25519"}]


def test_dual_signing_makes_an_ed25519_key_and_a_second_signer(host):
    result = host.config(settings(host, DUAL)).execute()
    assert result["generated"] == ["example.org/s1", "example.org/e1", "example.net/s1", "example.net/e1"]
    ed = [record for record in result["public_keys"] if record["key_type"] == "ed25519"]
    assert [record["selector"] for record in ed] == ["e1", "e1"]
    for record in ed:
        path = host.root / "keys" / record["domain"] / "e1.private"
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
        with open(path, "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        # RFC 8463: p= is the bare 32-byte key, not the SubjectPublicKeyInfo.
        assert (record["public"], record["bits"]) == (base64.b64encode(raw).decode(), 256)
    conf = (host.root / "opendkim-ed25519.conf").read_text()
    assert "SignatureAlgorithm\ted25519-sha256\n" in conf and "Mode\ts\n" in conf
    assert (host.root / "opendkim" / "ed25519" / "KeyTable").read_text().count("e1._domainkey") == 2
    unit = (host.root / "systemd" / "postmaster-opendkim-ed25519.service").read_text()
    assert f"ExecStart=/usr/sbin/opendkim -x {host.root}/opendkim-ed25519.conf" in unit
    assert "s1" not in (host.root / "opendkim" / "ed25519" / "SigningTable").read_text()
    assert "e1" not in (host.root / "opendkim" / "SigningTable").read_text()
    # Both candidates were checked by opendkim -n; both milters had to answer.
    assert len(host.checked) == 2 and "SignatureAlgorithm" in host.checked[1]
    assert host.milter_ports == [8891, 8892]
    assert "daemon-reload" in host.systemctl()
    assert result["ed25519_milter_answer"] == "milter version 6"


def test_dual_signing_is_idempotent_and_can_be_switched_off(host):
    host.config(settings(host, DUAL)).execute()
    host.calls.clear()
    again = host.config(settings(host, DUAL)).execute()
    assert again["changed"] is False and host.systemctl() == ["is-enabled", "is-active", "is-enabled", "is-active"]
    off = host.config(settings(host, [DUAL[0], {**DUAL[1], "state": "retired"}])).execute()
    assert off["changed"] is True and off["deleted"] == ["example.org/e1", "example.net/e1"]
    assert not (host.root / "opendkim-ed25519.conf").exists()
    assert not (host.root / "systemd" / "postmaster-opendkim-ed25519.service").exists()
    assert "(removed)" in off["diff"]["after"]
    assert [verb for verb in host.systemctl() if verb in ("disable", "stop", "daemon-reload")] == [
        "disable",
        "stop",
        "daemon-reload",
    ]


def test_an_ed25519_signer_that_does_not_answer_rolls_back(host):
    host.config(settings(host)).execute()
    before = (host.root / "opendkim" / "KeyTable").read_text()

    def milter(address, port, timeout):
        if port == 8892:
            raise ConnectionRefusedError("nothing listens")
        return "milter version 6"

    host.milter = milter
    with pytest.raises(DkimConfigError) as error:
        host.config(settings(host, DUAL)).execute()
    assert "the OpenDKIM Ed25519 signer on 127.0.0.1:8892 did not answer" in error.value.msg
    assert error.value.details == {"rolled_back": True}
    assert not (host.root / "opendkim-ed25519.conf").exists()
    assert not (host.root / "keys" / "example.org" / "e1.private").exists()
    assert (host.root / "opendkim" / "KeyTable").read_text() == before


def test_ed25519_public_key_from_pem():
    der = bytes.fromhex("302a300506032b6570032100") + bytes(range(32))
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PUBLIC KEY-----\n"
    assert public_from_pem(pem, "ed25519") == base64.b64encode(bytes(range(32))).decode()
    rsa_like = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----\n"
    with pytest.raises(DkimConfigError, match="not an Ed25519 key"):
        public_from_pem(rsa_like, "ed25519")
