"""The Debian 12 -> 13 upgrade of a live server, done as docs/upgrade.md tells an admin to do it.

After test_backup.py, the scenario's Debian 12 host holds mail: the server when the suite under test
is bookworm, the restored fresh host when it is trixie. Its apt sources are switched to trixie and
``apt full-upgrade`` runs (Dovecot 2.3 becomes 2.4, whose parser refuses the 2.3 configuration; Postfix
3.7 becomes 3.10). Then playbooks/site.yml runs again with the same inventory: it passes, every service
is back, every message keeps its UID and flags, the verify role passes from the vault, and the next run
reports changed=0. The tests run in order and build on each other.
"""

from __future__ import annotations

import subprocess
import time

import helpers
import mailclient
import pytest
from mailstate import ALICE, USERS, assert_rerun_changes_nothing, converge, mailbox_state, run_verify, same

# docs/upgrade.md, steps 2 and 3: Dovecot stopped and disabled (2.4 refuses the 2.3 configuration, so the
# package's restart would fail the upgrade; Postfix keeps the mail for the mailboxes in its queue), then apt.
UPGRADE = (
    "set -e; systemctl disable --now dovecot; "
    "sed -i 's/bookworm/trixie/g' /etc/apt/sources.list; "
    "find /etc/apt/sources.list.d -name '*.list' -exec sed -i 's/bookworm/trixie/g' {} +; "
    "export DEBIAN_FRONTEND=noninteractive; apt-get update -q; "
    "apt-get full-upgrade -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
)
SERVICES = ("postfix", "dovecot", "opendkim", "postsrsd", "fail2ban", "nftables", "postmaster-backup.timer")
BEFORE: dict = {}


@pytest.fixture(scope="module")
def role() -> str:
    """The scenario's host on Debian 12."""
    for name in ("server", "fresh"):
        if helpers.host(name).file("/etc/debian_version").content_string.startswith("12"):
            return name
    raise AssertionError("neither the server nor the fresh host runs Debian 12")


@pytest.fixture(scope="module")
def old(role):
    return helpers.host(role)


def test_apt_full_upgrade_takes_the_host_to_debian_13(old):
    assert old.check_output("dovecot --version").startswith("2.3")
    BEFORE.update(mailbox_state(old))
    result = old.run(UPGRADE)
    assert result.rc == 0, (result.stdout + result.stderr)[-4000:]
    assert old.file("/etc/debian_version").content_string.startswith("13")
    assert old.check_output("dovecot --version").startswith("2.4")


def test_the_reboot_brings_the_host_up_on_debian_13(role, old):
    """docs/upgrade.md step 4, as a container has it: a clean shutdown (systemd stops every service), then a start.

    The upgrade restarted nftables.service, and Debian's unit stops with ``nft flush ruleset``: every other
    table went with it (fail2ban's, and here Docker's, which resolves the container names) until the boot.
    """
    name = helpers.instance(role)
    old.run("systemctl poweroff")
    for _attempt in range(60):
        running = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Running}}", name], capture_output=True, text=True, check=False
        ).stdout.strip()
        if running == "false":
            break
        time.sleep(1)
    assert running == "false", "the container did not stop after systemctl poweroff"
    subprocess.run(["docker", "start", name], check=True, capture_output=True)
    state = helpers.booted(old, seconds=90)
    assert state in ("running", "degraded"), state
    assert old.file("/etc/debian_version").content_string.startswith("13")
    assert old.run("getent hosts %s", helpers.instance("vault")).rc == 0


def test_site_yml_converges_the_upgraded_host_and_every_service_is_back(role, old):
    result = converge(role)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    for unit in SERVICES:
        assert old.run(f"systemctl is-active --quiet {unit}").rc == 0, old.run(f"systemctl status {unit}").stdout
    assert old.check_output("systemctl --failed --plain --no-legend") == ""
    # Dovecot runs a 2.4 configuration: Debian 13's dovecot.conf, and the roles' files written for 2.4 (the
    # mailboxes role's include, which the dovecot role set aside, written again).
    assert old.run("grep -qx 'dovecot_config_version = 2.4.0' /etc/dovecot/dovecot.conf").rc == 0
    assert old.run("doveconf -n").rc == 0
    for name in ("10-auth.conf", "15-postmaster-mailboxes.conf"):
        text = old.file(f"/etc/dovecot/conf.d/{name}").content_string
        assert "# postmaster.mailserver: written for Dovecot 2.4\n" in text, name
    assert "written for Dovecot 2.3" in result.stdout + result.stderr  # the warning of the set-aside include


def test_every_message_kept_its_uid_and_flags_and_reads_over_imap(role, old):
    got = mailbox_state(old)
    assert got == BEFORE, same(BEFORE, got, "Debian 12", "Debian 13")
    session = mailclient.session("imaps", helpers.container_ip(role), 993, ALICE, USERS[ALICE], role="vault")
    assert session["login"] == "OK", session
    assert "Subject: delivered over smtp" in session["subjects"]


def test_the_verify_role_passes_on_the_upgraded_host(role, tmp_path):
    run_verify(role, tmp_path / "report.txt")


def test_the_next_run_changes_nothing(role):
    assert_rerun_changes_nothing(role)
