# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures shared by the plugin tests: the fake mail server of fake_mail_server.py."""

from __future__ import annotations

import os
import tempfile

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.common import mail_paths
from ansible_collections.postmaster.mailserver.tests.unit.plugins.fake_mail_server import (
    closed_port,
    fake_mail,
    mail_certificate,
)

__all__ = ["closed_port", "fake_mail", "mail_certificate"]


@pytest.fixture(autouse=True)
def _trust_scratch_directories(monkeypatch):
    """The modules' host path checks trust the tests' scratch directories below the temporary directory.

    On a host they walk from / and refuse /tmp; test_hostile_paths.py checks that with a trust of its own.
    """
    trust = mail_paths.HostTrust(uids=frozenset({0, os.getuid()}), top=tempfile.gettempdir())
    monkeypatch.setattr(mail_paths, "DEFAULT_TRUST", trust)
