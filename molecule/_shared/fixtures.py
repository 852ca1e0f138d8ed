"""Fixtures shared by the scenarios' tests (imported by each tests/conftest.py)."""

from __future__ import annotations

import helpers
import pytest
import testinfra.host


@pytest.fixture(scope="module")
def server() -> testinfra.host.Host:
    """The scenario's mail server container."""
    return helpers.host("server")


@pytest.fixture(scope="module")
def server_ip() -> str:
    """The server's address on the scenario network, as the outside client reaches it."""
    return helpers.container_ip("server")
