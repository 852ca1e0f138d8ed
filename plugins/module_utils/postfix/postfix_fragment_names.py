# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The file name of each role's Postfix fragment: one constant each, for the roles and the Python that judges them.

A role reads its own name and the names of the fragments it requires or refuses through the filter
``postfix_fragment_name``; no role spells a fragment's file name.
"""

from __future__ import annotations

FRAGMENT_NAMES = {
    "postfix": "10-postfix.json",
    "dovecot": "30-dovecot-sasl.json",
    "saslauthd": "30-saslauthd-sasl.json",
    # The LMTP transport of dovecot_virtual_users before the mailboxes role took them over: the dovecot role
    # removes it on upgraded hosts.
    "dovecot_lmtp": "31-dovecot-lmtp.json",
    "mailboxes": "40-mailboxes.json",
    "amavis": "40-amavis.json",
    "dkim": "45-dkim.json",
    "srs": "46-srs.json",
    # OpenDMARC after OpenDKIM (its milter is inserted after OpenDKIM's): the dkim role's DMARC enforcement.
    "dmarc": "46-dmarc.json",
    "policyd_spf": "50-policyd-spf.json",
}


def fragment_name(role: str) -> str:
    """The fragment file name of *role*; KeyError for a role without one."""
    return FRAGMENT_NAMES[role]
