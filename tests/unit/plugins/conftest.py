# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures shared by the plugin tests: the fake mail server of fake_mail_server.py."""

from __future__ import annotations

from ansible_collections.postmaster.mailserver.tests.unit.plugins.fake_mail_server import (
    closed_port,
    fake_mail,
    mail_certificate,
)

__all__ = ["closed_port", "fake_mail", "mail_certificate"]
