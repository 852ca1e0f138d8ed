# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mailboxes role's variables other than its domains (the role's first controller task)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.filter.mail import mailboxes_settings
from ansible_collections.postmaster.mailserver.plugins.module_utils.mailboxes.mailboxes_settings import (
    MailboxesSettingsError,
    check_settings,
)

PLANNED = {"domains": ["example.test"], "maildirs": [], "vmailbox": "", "aliases": ""}
GOOD = {
    "release": "Debian 13",
    "template": "2.4/15-postmaster-mailboxes.conf.j2",
    "vmail_uid": 5000,
    "vmail_gid": "5000",
    "vmail_user": "vmail",
    "vmail_base": "/var/mail/vmail",
    "users_file": "/etc/dovecot/postmaster-mailboxes.users",
    "system_users": [{"name": "alerts"}, {"name": "_svc-1"}],
    "id_min": 500,
    "id_max": 65533,
    "domains_given": True,
    "applied": None,
}


def test_good_settings_return_the_plan():
    assert check_settings(PLANNED, GOOD) == PLANNED
    # The same domains again in the play, or none given: fine.
    assert check_settings(PLANNED, {**GOOD, "applied": {"domains": ["example.test"], "source": "x"}})
    assert check_settings(PLANNED, {**GOOD, "domains_given": False, "applied": {"domains": ["a.test"]}})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"applied": {"domains": ["other.test"], "source": "dovecot_virtual_users"}},
            r"Virtual domains were already given in this play through dovecot_virtual_users \(other.test\); "
            r"give all virtual users in one place, mailboxes_domains \(got example.test\)",
        ),
        ({"template": ""}, r"Debian 13 is not supported by the mailboxes role"),
        (
            {"vmail_uid": 499},
            r"mailboxes_vmail_uid and mailboxes_vmail_gid must be between 500 and 65533 \(got 499/5000",
        ),
        ({"vmail_gid": "x"}, r"mailboxes_vmail_uid and mailboxes_vmail_gid must be between"),
        ({"vmail_base": "/var/mail/vmail/"}, r'mailboxes_vmail_base must be an absolute path .*got "/var/mail/vmail/"'),
        ({"vmail_base": "var/mail"}, r"mailboxes_vmail_base must be an absolute path"),
        (
            {"users_file": "/etc/dovecot/../shadow"},
            r'mailboxes_dovecot_users_file must be .*"/etc/dovecot/\.\./shadow"',
        ),
        ({"system_users": [{"name": "Alerts"}]}, r"mailboxes_system_users names must be unique lower-case login names"),
        ({"system_users": [{"name": "a"}, {"name": "a"}]}, r"names must be unique .*\(got a, a\)"),
        ({"system_users": [{"name": "root"}]}, r"other than root and vmail"),
        ({"system_users": [{"name": "vmail"}]}, r"other than root and vmail"),
    ],
)
def test_each_problem_names_its_variable(change, message):
    with pytest.raises(MailboxesSettingsError, match=message):
        check_settings(PLANNED, {**GOOD, **change})
    with pytest.raises(AnsibleFilterError, match=r"^mailboxes_settings: "):
        mailboxes_settings(PLANNED, {**GOOD, **change})


def test_wrong_types_are_refused():
    with pytest.raises(MailboxesSettingsError, match="expects the result of virtual_mailboxes"):
        check_settings(None, GOOD)
