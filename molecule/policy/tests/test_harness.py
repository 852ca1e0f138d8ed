"""The harness proves itself: systemd, Ansible facts, apt, and container-to-container TCP."""

from __future__ import annotations

import os

import helpers
import pytest

ROLES = ["server", "client"]


@pytest.mark.parametrize("role", ROLES)
def test_systemd_is_pid1_and_running(role):
    h = helpers.host(role)
    assert h.check_output("cat /proc/1/comm") == "systemd"
    state = h.run("systemctl is-system-running").stdout.strip()
    assert state == "running", h.run("systemctl --failed --no-legend").stdout


@pytest.mark.parametrize("role", ROLES)
def test_ansible_gathers_facts(role):
    facts = helpers.host(role).ansible("ansible.builtin.setup", "gather_subset=min", check=False)["ansible_facts"]
    assert facts["ansible_os_family"] == "Debian"
    assert facts["ansible_service_mgr"] == "systemd"
    # The suite scripts/molecule.sh chose for this run (trixie or bookworm).
    assert facts["ansible_distribution_release"] == os.environ.get("MOLECULE_DISTRO", "trixie")


@pytest.mark.parametrize("role", ROLES)
def test_apt_installed_a_package(role):
    h = helpers.host(role)
    assert h.package("netcat-openbsd").is_installed
    assert h.exists("nc")


def test_client_reaches_server_port_over_scenario_network():
    server_ip = helpers.container_ip("server")
    assert server_ip != helpers.container_ip("client")
    client = helpers.host("client")
    ok = client.run(f"nc -z -w 5 {server_ip} 8025")
    assert ok.rc == 0, ok.stderr
    # And the check is not vacuous: a port nobody listens on is refused.
    closed = client.run(f"nc -z -w 5 {server_ip} 8026")
    assert closed.rc != 0
