# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import itertools
import json
import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.tls import tls_certificate as tc

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
UID, GID = os.getuid(), os.getgid()
FIXTURES = Path(__file__).parents[1] / "fixtures" / "tls_certificate"
OPENSSL = shutil.which("openssl")


def openssl_date(moment: datetime) -> str:
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    return f"{months[moment.month - 1]} {moment.day:2d} {moment:%H:%M:%S} {moment.year} GMT"


class FakeOpenssl:
    """Stands in for run_command: a key file holds a token, a certificate file holds JSON.

    It understands the argv the backend builds (genpkey, pkey -pubout, req -x509, x509) and
    prints what openssl prints, so the backend's own parsing is exercised.
    """

    def __init__(self, now=NOW):
        self.calls: list[list[str]] = []
        self.now = now
        self.keys = 0
        self.fail: str | None = None
        self.subject_order = ("subject", "enddate", "ext", "pubkey")

    def __call__(self, argv, environ_update=None, **kwargs):
        assert environ_update == {"LC_ALL": "C"}
        assert argv[0] == "/usr/bin/openssl"
        self.calls.append(argv)
        command = argv[1]
        if command == self.fail:
            return 1, "", f"{command}: simulated failure"
        opts = dict(itertools.pairwise(argv))
        if command == "genpkey":
            assert opts["-algorithm"] == "RSA" and opts["-pkeyopt"] == "rsa_keygen_bits:2048"
            self.keys += 1
            Path(opts["-out"]).write_text(f"-----BEGIN PRIVATE KEY-----\nK{self.keys}\n-----END PRIVATE KEY-----\n")
            return 0, "", ""
        if command == "pkey":
            text = Path(opts["-in"]).read_text()
            if "BEGIN PRIVATE KEY" not in text:
                return 1, "", "Could not read key"
            token = text.split("\n")[1]
            return 0, public_pem(token), ""
        if command == "req":
            config = Path(opts["-config"]).read_text()
            cn = next(line.split(" = ", 1)[1] for line in config.splitlines() if line.startswith("CN = "))
            san = next(line.split(" = ", 1)[1] for line in config.splitlines() if line.startswith("subjectAltName"))
            token = Path(opts["-key"]).read_text().split("\n")[1]
            not_after = self.now + timedelta(days=int(opts["-days"]))
            write_cert(Path(opts["-out"]), cn, san.split(","), not_after, token)
            return 0, "", ""
        if command == "x509":
            try:
                cert = json.loads(Path(opts["-in"]).read_text())
            except (ValueError, OSError):
                return 1, "", "Could not read certificate"
            return 0, x509_output(cert, "-pubkey" in argv), ""
        raise AssertionError(argv)

    def commands(self):
        return [argv[1] for argv in self.calls]


def public_pem(token: str) -> str:
    return f"-----BEGIN PUBLIC KEY-----\nPUB{token}\n-----END PUBLIC KEY-----\n"


def write_cert(path: Path, cn: str, names: list[str], not_after: datetime, token: str, *, subject=None) -> None:
    subject = subject or f"CN={cn}"
    path.write_text(json.dumps({"subject": subject, "names": names, "not_after": not_after.isoformat(), "key": token}))


def x509_output(cert: dict, pubkey: bool) -> str:
    shown = [n.replace("IP:", "IP Address:") for n in cert["names"]]
    out = f"subject={cert['subject']}\nnotAfter={openssl_date(datetime.fromisoformat(cert['not_after']))}\n"
    if shown:
        out += "X509v3 Subject Alternative Name: \n    " + ", ".join(shown) + "\n"
    return out + (public_pem(cert["key"]) if pubkey else "")


@pytest.fixture
def fake():
    return FakeOpenssl()


def backend(fake, check_mode=False, openssl="/usr/bin/openssl", now=NOW):
    chowns: list[tuple[str, int, int]] = []
    b = tc.TlsCertificate(
        run_command=fake,
        openssl=openssl,
        check_mode=check_mode,
        now=lambda: now,
        uid=UID,
        gid=GID,
        chown=lambda path, uid, gid: chowns.append((path, uid, gid)),
    )
    b.chowns = chowns  # type: ignore[attr-defined]
    return b


def names(cn="mail.example.test", *extra):
    return tc.subject_alt_names(cn, list(extra), "certificate_subject_alt_names")


def make(fake, directory, cn="mail.example.test", extra=(), days=825, **kwargs):
    b = backend(fake, **kwargs)
    return b, b.self_signed(cn, names(cn, *extra), str(directory), days)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("value", ["mail.example.test", "localhost", "Mail-1.Example.TEST", "a" * 63 + ".test"])
def test_valid_hostnames(value):
    assert tc.validate_hostname(value, "v") == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("mail_server.example.com", "label 'mail_server'"),
        ("mail..example.com", "empty label"),
        ("mail.example.com.", "remove the trailing dot"),
        ("-mail.example.com", "label '-mail'"),
        ("a" * 64 + ".test", "longer than 63"),
        ("bücher.example", "punycode"),
        ("192.0.2.1", "IP:"),
        ("*.example.com", "label '*'"),
        ("mail.example.com\nCN=evil", "label"),
        ("x." * 127 + "test", "maximum is 253"),
    ],
)
def test_invalid_hostnames_name_the_variable(value, reason):
    with pytest.raises(tc.CertificateError) as err:
        tc.validate_hostname(value, "certificate_common_name")
    assert str(err.value).startswith("certificate_common_name: ")
    assert reason in str(err.value)


def test_hostname_must_be_a_string():
    with pytest.raises(tc.CertificateError, match="certificate_common_name: expected a host name, got int"):
        tc.validate_hostname(5, "certificate_common_name")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("imap.example.test", "DNS:imap.example.test"),
        ("DNS:imap.example.test", "DNS:imap.example.test"),
        ("*.example.test", "DNS:*.example.test"),
        ("DNS:*.example.test", "DNS:*.example.test"),
        ("IP:192.0.2.7", "IP:192.0.2.7"),
        ("192.0.2.7", "IP:192.0.2.7"),
        ("IP:2001:DB8:0:0:0:0:0:1", "IP:2001:db8::1"),
        ("2001:db8::1", "IP:2001:db8::1"),
    ],
)
def test_alt_names_are_prefixed(value, expected):
    assert tc.alt_name(value, "v") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("IP:192.0.2.300", "'IP:192.0.2.300' is not a valid IP address"),
        ("IP:mail.example.test", "is not a valid IP address"),
        ("DNS:", "is not a valid host name"),
        ("DNS:a,DNS:b", "is not a valid host name"),
        ("email:root@example.test", "is not a valid host name"),
        (None, "expected a host name or IP address, got null"),
    ],
)
def test_invalid_alt_names(value, message):
    with pytest.raises(tc.CertificateError, match=r"^alt\[0\]: ") as err:
        tc.alt_name(value, "alt[0]")
    assert message in str(err.value)


def test_subject_alt_names_start_with_the_common_name_and_drop_duplicates():
    result = tc.subject_alt_names(
        "mail.example.test", ["IMAP.example.test", "DNS:mail.example.test", "imap.example.test", "192.0.2.7"], "v"
    )
    assert result == ["DNS:mail.example.test", "DNS:IMAP.example.test", "IP:192.0.2.7"]


def test_subject_alt_names_errors_name_the_entry():
    with pytest.raises(tc.CertificateError, match=r"^certificate_subject_alt_names\[1\]: 'bad name'"):
        tc.subject_alt_names("mail.example.test", ["ok.example.test", "bad name"], "certificate_subject_alt_names")
    with pytest.raises(tc.CertificateError, match=r"^certificate_subject_alt_names: expected a list"):
        tc.subject_alt_names("mail.example.test", "imap.example.test", "certificate_subject_alt_names")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("etc/ssl", "is not an absolute path"),
        ("", "expected an absolute directory path"),
        (None, "expected an absolute directory path"),
        ("/etc/ssl/../shadow", "must not contain '..'"),
        ("/etc/ssl\n/x", "newline"),
    ],
)
def test_invalid_dirs(value, message):
    with pytest.raises(tc.CertificateError, match=r"^certificate_dir: ") as err:
        tc.validate_dir(value, "certificate_dir")
    assert message in str(err.value)


def test_dir_loses_its_trailing_slash():
    assert tc.validate_dir("/etc/ssl/postmaster/", "d") == "/etc/ssl/postmaster"
    assert tc.validate_dir("/etc/ssl/..postmaster", "d") == "/etc/ssl/..postmaster"


@pytest.mark.parametrize(("value", "expected"), [(825, 825), ("825", 825), (1, 1), (36500, 36500)])
def test_valid_days(value, expected):
    assert tc.validate_days(value, "certificate_days") == expected


@pytest.mark.parametrize("value", [0, -1, True, "many", 36501, 1.5, None])
def test_invalid_days(value):
    with pytest.raises(tc.CertificateError, match=r"^certificate_days: expected a number of days"):
        tc.validate_days(value, "certificate_days")


REQUEST = {
    "cert_file": "",
    "key_file": "",
    "common_name": "mail.example.test",
    "subject_alt_names": ["imap.example.test", "192.0.2.7"],
    "dir": "/etc/ssl/postmaster",
    "days": 825,
}


def test_module_args_of_a_self_signed_request():
    assert tc.module_args(REQUEST, "postfix_tls") == {
        "variable_prefix": "postfix_tls",
        "common_name": "mail.example.test",
        "subject_alt_names": ["DNS:imap.example.test", "IP:192.0.2.7"],
        "dir": "/etc/ssl/postmaster",
        "days": 825,
    }


def test_module_args_of_user_files_skip_the_self_signed_values():
    request = {**REQUEST, "cert_file": "/c.pem", "key_file": "/k.pem", "common_name": "not a host", "days": 0}
    assert tc.module_args(request, "dovecot_tls") == {
        "variable_prefix": "dovecot_tls",
        "cert_file": "/c.pem",
        "key_file": "/k.pem",
    }


@pytest.mark.parametrize(("cert", "key"), [("/c.pem", ""), ("", "/k.pem")])
def test_one_file_without_the_other_names_both_variables(cert, key):
    with pytest.raises(tc.CertificateError) as err:
        tc.module_args({**REQUEST, "cert_file": cert, "key_file": key}, "postfix_tls")
    assert str(err.value) == (
        f"postfix_tls_cert_file and postfix_tls_key_file must be set together (got cert '{cert}', key '{key}')."
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"common_name": "mail_1.example.test"}, "certificate_common_name (from the dovecot_tls_* variables): "),
        (
            {"subject_alt_names": ["ok.test", "bad!"]},
            "certificate_subject_alt_names[1] (from the dovecot_tls_* variables): 'bad!' is not",
        ),
        ({"dir": "relative"}, "certificate_dir (from the dovecot_tls_* variables): 'relative' is not an absolute"),
        ({"days": 0}, "certificate_days (from the dovecot_tls_* variables): expected a number of days"),
        ({"cert_file": 5, "key_file": "/k"}, "dovecot_tls_cert_file: expected a path, got int"),
    ],
)
def test_module_args_errors_name_the_variable(change, message):
    with pytest.raises(tc.CertificateError) as err:
        tc.module_args({**REQUEST, **change}, "dovecot_tls")
    assert str(err.value).startswith(message), str(err.value)


def test_module_args_with_the_default_prefix_name_the_role_variables():
    with pytest.raises(tc.CertificateError, match=r"^certificate_common_name: ''"):
        tc.module_args({**REQUEST, "common_name": ""})
    with pytest.raises(tc.CertificateError, match="certificate_variable_prefix"):
        tc.module_args(REQUEST, "")
    with pytest.raises(tc.CertificateError, match="as a dict"):
        tc.module_args(["x"])


# --------------------------------------------------------------------------- parsing


OPENSSL_35 = """subject=CN=mail.example.test
notAfter=Mar  6 05:25:01 2029 GMT
X509v3 Subject Alternative Name: \n    DNS:mail.example.test, DNS:IMAP.example.test, IP Address:192.0.2.7, IP Address:2001:DB8:0:0:0:0:0:1
-----BEGIN PUBLIC KEY-----
MIIBIjAN
 BgkqhkiG
-----END PUBLIC KEY-----
"""


def test_parse_x509_output():
    info = tc.parse_x509(OPENSSL_35)
    assert info.subject == [("CN", "mail.example.test")]
    assert info.common_name == "mail.example.test"
    assert info.names == ["DNS:mail.example.test", "DNS:imap.example.test", "IP:192.0.2.7", "IP:2001:db8::1"]
    assert info.not_after == datetime(2029, 3, 6, 5, 25, 1, tzinfo=UTC)
    assert info.public_key == "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\nBgkqhkiG\n-----END PUBLIC KEY-----"


def test_parse_x509_output_in_another_order_and_without_names():
    info = tc.parse_x509(
        "-----BEGIN PUBLIC KEY-----\nAA\n-----END PUBLIC KEY-----\nnotAfter=Dec 31 23:59:59 2030 GMT\n"
    )
    assert (info.names, info.subject, info.common_name) == ([], [], None)
    assert info.not_after == datetime(2030, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert info.public_key is not None


def test_parse_x509_needs_an_expiry():
    with pytest.raises(tc.CertificateError, match="no expiry date"):
        tc.parse_x509("subject=CN=x\n")


@pytest.mark.parametrize(
    "text", ["Foo  6 05:25:01 2029 GMT", "Mar 6 2029", "Mar  6 05:25:01 2029 CET", "Mar 6 x 2029 GMT"]
)
def test_parse_not_after_refuses_other_formats(text):
    with pytest.raises(tc.CertificateError, match="cannot read the expiry date"):
        tc.parse_not_after(text)


def test_parse_rfc2253_with_escapes_and_several_attributes():
    assert tc.parse_rfc2253(r"CN=a\,b,O=Org+OU=Unit") == [("CN", "a,b"), ("O", "Org"), ("OU", "Unit")]
    assert tc.parse_rfc2253("") == []


def test_other_alt_name_types_are_kept_as_printed():
    assert tc.name_key("email:root@example.test") == "email:root@example.test"
    assert tc.name_key("IP Address:<invalid>") == "IP:<invalid>"


def test_request_config_puts_the_names_in_the_extension_section():
    text = tc.request_config("mail.example.test", ["DNS:mail.example.test", "IP:192.0.2.7"])
    assert "prompt = no\n" in text
    assert "[dn]\nCN = mail.example.test\n" in text
    assert "subjectAltName = DNS:mail.example.test,IP:192.0.2.7\n" in text


def test_x509_argv_reads_only():
    argv = tc.x509_argv("/usr/bin/openssl", "/c.crt", public_key=True)
    assert argv[:4] == ["/usr/bin/openssl", "x509", "-in", "/c.crt"]
    assert "-noout" in argv and "-pubkey" in argv
    assert "-pubkey" not in tc.x509_argv("/usr/bin/openssl", "/c.crt", public_key=False)


# --------------------------------------------------------------------------- self-signed, with the fake openssl


def test_first_run_makes_dir_key_and_certificate(tmp_path, fake):
    directory = tmp_path / "ssl" / "postmaster"
    b, result = make(fake, directory, extra=["imap.example.test", "IP:192.0.2.7"])
    key, cert = directory / "mail.example.test.key", directory / "mail.example.test.crt"
    assert result == {
        "changed": True,
        "cert": str(cert),
        "key": str(key),
        "selfsigned": True,
        "common_name": "mail.example.test",
        "names": ["DNS:mail.example.test", "DNS:imap.example.test", "IP:192.0.2.7"],
        "not_after": "2029-03-06T12:00:00Z",
        "actions": [
            f"create directory {directory}",
            f"generate key {key} (missing)",
            f"generate certificate {cert} (missing)",
        ],
    }
    assert (mode(directory), mode(key), mode(cert)) == (0o755, 0o600, 0o644)
    assert fake.commands() == ["genpkey", "req", "x509"]
    assert sorted(os.listdir(directory)) == ["mail.example.test.crt", "mail.example.test.key"]
    # The directory and both files (before they are renamed into place) belong to root.
    assert [(os.path.basename(p), u, g) for p, u, g in b.chowns] == [
        ("postmaster", UID, GID),
        ("key.pem", UID, GID),
        ("cert.pem", UID, GID),
    ]
    # No secret on any command line: the key only ever travels as a file name.
    assert all("PRIVATE" not in arg and "K1" not in arg for argv in fake.calls for arg in argv)
    assert not any("-passout" in argv or "-pass" in argv for argv in fake.calls)


def test_second_run_changes_nothing_and_only_reads(tmp_path, fake):
    make(fake, tmp_path, extra=["imap.example.test"])
    fake.calls.clear()
    b, result = make(fake, tmp_path, extra=["imap.example.test"])
    assert (result["changed"], result["actions"]) == (False, [])
    assert result["names"] == ["DNS:mail.example.test", "DNS:imap.example.test"]
    assert result["not_after"] == "2029-03-06T12:00:00Z"
    assert fake.commands() == ["pkey", "x509"]
    assert b.chowns == []
    assert b.diff["before"] == b.diff["after"]


def test_check_mode_on_a_fresh_host_reports_and_writes_nothing(tmp_path, fake):
    directory = tmp_path / "postmaster"
    b, result = make(fake, directory, check_mode=True)
    assert result["changed"] is True
    assert [a.split(" ", 2)[:2] for a in result["actions"]] == [
        ["create", "directory"],
        ["generate", "key"],
        ["generate", "certificate"],
    ]
    assert result["not_after"] == "2029-03-06T12:00:00Z"
    assert not directory.exists()
    assert fake.calls == []
    assert "(missing)" in b.diff["before"] and "(would be generated)" in b.diff["after"]
    assert "names: DNS:mail.example.test" in b.diff["after"]


def test_check_mode_on_a_converged_host_is_unchanged(tmp_path, fake):
    make(fake, tmp_path)
    _b, result = make(fake, tmp_path, check_mode=True)
    assert result["changed"] is False


def test_other_names_make_a_new_certificate_with_the_same_key(tmp_path, fake):
    make(fake, tmp_path, extra=["imap.example.test"])
    key_before = (tmp_path / "mail.example.test.key").read_text()
    fake.calls.clear()
    b, result = make(fake, tmp_path, extra=["imap.example.test", "smtp.example.test"])
    assert result["changed"] is True
    assert result["actions"] == [
        f"generate certificate {tmp_path}/mail.example.test.crt (names DNS:mail.example.test, DNS:imap.example.test "
        "differ from DNS:imap.example.test, DNS:mail.example.test, DNS:smtp.example.test)"
    ]
    assert fake.commands() == ["pkey", "x509", "req", "x509"]
    assert (tmp_path / "mail.example.test.key").read_text() == key_before
    assert result["names"][-1] == "DNS:smtp.example.test"
    assert "names: DNS:mail.example.test, DNS:imap.example.test\n" in b.diff["before"]
    assert "smtp.example.test" in b.diff["after"]
    assert "PRIVATE" not in b.diff["before"] + b.diff["after"]


def test_names_in_another_order_case_or_spelling_keep_the_certificate(tmp_path, fake):
    make(fake, tmp_path, extra=["imap.example.test", "IP:2001:db8::1"])
    _b, result = make(fake, tmp_path, extra=["IP:2001:DB8:0::1", "DNS:IMAP.example.test", "mail.example.test"])
    assert result["changed"] is False


def test_another_subject_makes_a_new_certificate(tmp_path, fake):
    cert = tmp_path / "mail.example.test.crt"
    make(fake, tmp_path)
    data = json.loads(cert.read_text())
    write_cert(cert, "", data["names"], NOW + timedelta(days=400), data["key"], subject="O=Org,CN=mail.example.test")
    _b, result = make(fake, tmp_path)
    assert "subject O=Org,CN=mail.example.test differs from CN=mail.example.test" in result["actions"][0]


@pytest.mark.parametrize(("days_left", "renewed"), [(29, True), (30, False), (31, False), (-3, True)])
def test_a_certificate_near_its_expiry_is_renewed(tmp_path, fake, days_left, renewed):
    cert = tmp_path / "mail.example.test.crt"
    make(fake, tmp_path)
    data = json.loads(cert.read_text())
    write_cert(cert, "mail.example.test", data["names"], NOW + timedelta(days=days_left), data["key"])
    _b, result = make(fake, tmp_path)
    assert result["changed"] is renewed
    if renewed:
        assert "within 30 days" in result["actions"][0]
        assert result["not_after"] == "2029-03-06T12:00:00Z"


def test_a_certificate_of_another_key_is_replaced(tmp_path, fake):
    cert = tmp_path / "mail.example.test.crt"
    make(fake, tmp_path)
    data = json.loads(cert.read_text())
    write_cert(cert, "mail.example.test", data["names"], NOW + timedelta(days=400), "K99")
    _b, result = make(fake, tmp_path)
    assert result["actions"] == [f"generate certificate {cert} (does not match the key)"]


def test_an_unreadable_key_is_replaced_with_its_certificate(tmp_path, fake):
    make(fake, tmp_path)
    (tmp_path / "mail.example.test.key").write_text("garbage")
    fake.calls.clear()
    _b, result = make(fake, tmp_path)
    assert result["actions"] == [
        f"generate key {tmp_path}/mail.example.test.key (unreadable)",
        f"generate certificate {tmp_path}/mail.example.test.crt (new key)",
    ]
    assert fake.commands() == ["pkey", "x509", "genpkey", "req", "x509"]
    assert "K2" in (tmp_path / "mail.example.test.key").read_text()


def test_an_unreadable_certificate_is_replaced(tmp_path, fake):
    make(fake, tmp_path)
    (tmp_path / "mail.example.test.crt").write_text("garbage")
    _b, result = make(fake, tmp_path)
    assert result["actions"] == [f"generate certificate {tmp_path}/mail.example.test.crt (unreadable)"]
    assert fake.keys == 1


def test_wrong_modes_are_fixed_without_regenerating(tmp_path, fake):
    make(fake, tmp_path / "d")
    os.chmod(tmp_path / "d", 0o700)
    os.chmod(tmp_path / "d" / "mail.example.test.key", 0o644)
    os.chmod(tmp_path / "d" / "mail.example.test.crt", 0o600)
    _b, result = make(fake, tmp_path / "d", check_mode=True)
    assert result["changed"] is True
    assert mode(tmp_path / "d" / "mail.example.test.key") == 0o644
    _b, result = make(fake, tmp_path / "d")
    assert result["actions"] == [
        f"fix directory {tmp_path}/d (mode 0700 -> 0755)",
        f"fix key {tmp_path}/d/mail.example.test.key (mode 0644 -> 0600)",
        f"fix certificate {tmp_path}/d/mail.example.test.crt (mode 0600 -> 0644)",
    ]
    assert (mode(tmp_path / "d"), mode(tmp_path / "d" / "mail.example.test.key")) == (0o755, 0o600)
    assert fake.keys == 1


def test_a_wrong_owner_is_fixed(tmp_path, fake):
    make(fake, tmp_path)
    b = tc.TlsCertificate(run_command=fake, openssl="/usr/bin/openssl", now=lambda: NOW, uid=UID + 1, gid=GID)
    chowns = []
    b._chown = lambda path, uid, gid: chowns.append((path, uid, gid))
    result = b.self_signed("mail.example.test", names(), str(tmp_path), 825)
    assert [a.split(" (")[1] for a in result["actions"]] == [f"owner {UID}:{GID} -> {UID + 1}:{GID})"] * 3
    assert len(chowns) == 3


def test_a_failing_openssl_leaves_nothing_behind(tmp_path, fake):
    fake.fail = "req"
    b = backend(fake)
    with pytest.raises(tc.CertificateError, match=r"openssl req failed \(rc=1\): req: simulated failure"):
        b.self_signed("mail.example.test", names(), str(tmp_path), 825)
    assert os.listdir(tmp_path) == []


def test_openssl_missing_is_named(tmp_path, fake):
    with pytest.raises(tc.CertificateError, match="install the openssl package"):
        make(fake, tmp_path, openssl=None)


def test_a_file_where_the_directory_should_be_is_refused(tmp_path, fake):
    (tmp_path / "f").write_text("x")
    with pytest.raises(tc.CertificateError, match="exists and is not a directory"):
        make(fake, tmp_path / "f")
    (tmp_path / "d" / "mail.example.test.key").mkdir(parents=True)
    with pytest.raises(tc.CertificateError, match=r"^dir \(the key\): .*\.key exists and is a directory, not a file"):
        make(fake, tmp_path / "d")


# --------------------------------------------------------------------------- user-supplied


@pytest.fixture
def user_files(tmp_path, fake):
    make(fake, tmp_path / "own")
    fake.calls.clear()
    return tmp_path / "own" / "mail.example.test.crt", tmp_path / "own" / "mail.example.test.key"


def test_user_files_are_checked_and_never_written(user_files, fake):
    cert, key = user_files
    before = (cert.read_text(), key.read_text(), mode(cert), mode(key))
    b = backend(fake)
    result = b.user_supplied(str(cert), str(key), "postfix_tls")
    assert result == {
        "changed": False,
        "cert": str(cert),
        "key": str(key),
        "selfsigned": False,
        "common_name": "mail.example.test",
        "names": ["DNS:mail.example.test"],
        "not_after": "2029-03-06T12:00:00Z",
        "actions": [],
    }
    assert b.warnings == []
    assert fake.commands() == ["x509", "pkey"]
    assert (cert.read_text(), key.read_text(), mode(cert), mode(key)) == before


def test_missing_user_files_name_the_callers_variables(tmp_path, fake):
    with pytest.raises(tc.CertificateError) as err:
        backend(fake).user_supplied("/nonexistent/cert.pem", "/nonexistent/key.pem", "dovecot_tls")
    assert str(err.value) == (
        "dovecot_tls_cert_file: file /nonexistent/cert.pem does not exist on this host; "
        "dovecot_tls_key_file: file /nonexistent/key.pem does not exist on this host"
    )
    assert fake.calls == []


def test_user_certificate_near_expiry_or_with_another_key_warns(user_files, fake):
    cert, key = user_files
    data = json.loads(cert.read_text())
    write_cert(cert, "mail.example.test", data["names"], NOW + timedelta(days=10), "K7")
    b = backend(fake)
    result = b.user_supplied(str(cert), str(key), "postfix_tls")
    assert result["changed"] is False
    assert b.warnings == [
        f"postfix_tls_cert_file: the certificate {cert} expires on 2026-12-12T12:00:00Z, within 30 days",
        f"postfix_tls_key_file: {key} is not the private key of {cert}",
    ]
    write_cert(cert, "mail.example.test", data["names"], NOW - timedelta(days=1), data["key"])
    b = backend(fake)
    b.user_supplied(str(cert), str(key), "postfix_tls")
    assert b.warnings == [f"postfix_tls_cert_file: the certificate {cert} expired on 2026-12-01T12:00:00Z"]


def test_unreadable_user_files_only_warn(user_files, fake):
    cert, key = user_files
    key.write_text("encrypted")
    b = backend(fake)
    b.user_supplied(str(cert), str(key), "")
    assert b.warnings == [f"key_file: openssl cannot read {key} as an unencrypted private key"]
    cert.write_text("not a certificate")
    b = backend(fake)
    result = b.user_supplied(str(cert), str(key), "")
    assert b.warnings == [f"cert_file: openssl cannot read {cert} as a PEM certificate"]
    assert (result["names"], result["not_after"], result["common_name"]) == ([], None, None)


def test_user_files_without_openssl_are_only_checked_for_existence(user_files, fake):
    cert, key = user_files
    b = backend(fake, openssl=None)
    result = b.user_supplied(str(cert), str(key), "postfix_tls")
    assert (result["changed"], result["names"], b.warnings, fake.calls) == (False, [], [], [])


# --------------------------------------------------------------------------- the real openssl

real = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


def run_openssl(argv, environ_update=None, **kwargs):
    process = subprocess.run(
        argv, capture_output=True, text=True, check=False, env={**os.environ, **(environ_update or {})}
    )
    return process.returncode, process.stdout, process.stderr


def real_backend(now=NOW, check_mode=False):
    return tc.TlsCertificate(
        run_command=run_openssl, openssl=OPENSSL, check_mode=check_mode, now=lambda: now, uid=UID, gid=GID
    )


OLD_NAMES = ["imap.example.test", "IP:192.0.2.7", "DNS:smtp.example.test", "IP:2001:db8::1"]


@pytest.fixture
def old_role_dir(tmp_path):
    """The key and certificate the old role (community.crypto) made, as the host has them."""
    directory = tmp_path / "postmaster"
    shutil.copytree(FIXTURES / "old-role", directory, ignore=shutil.ignore_patterns("*.md"))
    os.chmod(directory, 0o755)
    os.chmod(directory / "mail.example.test.key", 0o600)
    os.chmod(directory / "mail.example.test.crt", 0o644)
    return directory


@real
def test_a_certificate_made_by_the_old_role_is_kept(old_role_dir):
    before = {p.name: p.read_bytes() for p in old_role_dir.iterdir()}
    b = real_backend()
    result = b.self_signed("mail.example.test", names("mail.example.test", *OLD_NAMES), str(old_role_dir), 825)
    assert (result["changed"], result["actions"]) == (False, [])
    assert result["names"] == [
        "DNS:mail.example.test",
        "DNS:imap.example.test",
        "IP:192.0.2.7",
        "DNS:smtp.example.test",
        "IP:2001:db8::1",
    ]
    assert result["not_after"] == "2029-03-06T05:25:01Z"
    assert {p.name: p.read_bytes() for p in old_role_dir.iterdir()} == before


@real
def test_the_old_roles_certificate_with_other_names_is_replaced_and_its_key_kept(old_role_dir):
    key = (old_role_dir / "mail.example.test.key").read_bytes()
    b = real_backend()
    result = b.self_signed("mail.example.test", names("mail.example.test", "imap.example.test"), str(old_role_dir), 825)
    assert result["actions"][0].startswith(f"generate certificate {old_role_dir}/mail.example.test.crt (names ")
    assert (old_role_dir / "mail.example.test.key").read_bytes() == key
    assert result["names"] == ["DNS:mail.example.test", "DNS:imap.example.test"]
    again = real_backend().self_signed(
        "mail.example.test", names("mail.example.test", "imap.example.test"), str(old_role_dir), 825
    )
    assert again["changed"] is False


@real
def test_the_real_openssl_makes_a_certificate_that_it_then_keeps(tmp_path):
    now = datetime.now(UTC)
    directory = tmp_path / "postmaster"
    wanted = names("mail.example.test", "imap.example.test", "192.0.2.7", "IP:2001:db8::1", "*.example.test")
    result = real_backend(now=now).self_signed("mail.example.test", wanted, str(directory), 90)
    assert result["changed"] is True
    assert result["names"] == [
        "DNS:mail.example.test",
        "DNS:imap.example.test",
        "IP:192.0.2.7",
        "IP:2001:db8::1",
        "DNS:*.example.test",
    ]
    not_after = datetime.strptime(result["not_after"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(not_after - (now + timedelta(days=90))) < timedelta(minutes=5)
    key = directory / "mail.example.test.key"
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert (mode(directory), mode(key), mode(directory / "mail.example.test.crt")) == (0o755, 0o600, 0o644)
    text = subprocess.run(
        [OPENSSL, "x509", "-in", str(directory / "mail.example.test.crt"), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Public-Key: (2048 bit)" in text and "sha256WithRSAEncryption" in text
    assert real_backend(now=now).self_signed("mail.example.test", wanted, str(directory), 90)["changed"] is False
    # Within 30 days of the end it is renewed, with the same key.
    before = key.read_bytes()
    renewed = real_backend(now=now + timedelta(days=61)).self_signed("mail.example.test", wanted, str(directory), 90)
    assert "within 30 days" in renewed["actions"][0]
    assert key.read_bytes() == before
