# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What postfix_config (table_states) and dovecot_config (file_digests) report for the roles later in the play.

The action plugins in front of the modules answer a later call of the play from these when they show its files
as it would write them, so each state must mean exactly "a call with this content would change nothing"
(tests/unit/plugins/plugin_utils/test_host_knowledge.py).
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.postmaster.mailserver.plugins.module_utils.dovecot.dovecot_config import file_digests
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_state_text import table_state
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_table_files import (
    TableFile,
    needs_work,
    table_states,
)

UID, GID = os.getuid(), os.getgid()


def make_table(directory, name, text, *, compiled=True, db_older=False, mode=0o644):
    path = directory / name
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    if compiled:
        db = directory / (name + ".db")
        db.write_bytes(b"compiled")
        db.chmod(mode)
        stamp = os.stat(path).st_mtime + (-10 if db_older else 10)
        os.utime(db, (stamp, stamp))
    return str(path)


def test_table_states_report_current_tables_of_the_config_dir_only(tmp_path):
    vmailbox = make_table(tmp_path, "vmailbox", "a@example.test example.test/a/\n")
    virtual = make_table(tmp_path, "virtual", "b@example.test a@example.test\n", db_older=True)
    nodb = make_table(tmp_path, "transport", "example.test lmtp:unix:private/x\n", compiled=False)
    cidr = make_table(tmp_path, "clients.cidr", "192.0.2.0/24 OK\n", compiled=False)
    main = (
        f"virtual_mailbox_maps = hash:{vmailbox}\n"
        f"virtual_alias_maps = proxy:hash:{virtual}, hash:/elsewhere/virtual\n"
        f"transport_maps = lmdb:{nodb}\n"
        f"smtpd_client_restrictions = check_client_access cidr:{cidr}, permit\n"
    )
    states = table_states(main, str(tmp_path))
    # The stale one (compiled file older than its source) and the uncompiled lmdb one are left out,
    # as is a table outside the configuration directory; a flat table needs no compiled file.
    assert set(states) == {vmailbox, cidr}
    digest = hashlib.sha256(b"a@example.test example.test/a/\n").hexdigest()
    assert states[vmailbox] == f"{digest}:{UID}:{GID}:644"


def test_a_current_state_is_exactly_a_table_that_needs_no_work(tmp_path):
    text = "a@example.test example.test/a/\n"
    path = make_table(tmp_path, "vmailbox", text, mode=0o640)
    states = table_states(f"virtual_mailbox_maps = hash:{path}\n", str(tmp_path))
    assert states[path] == table_state(text, UID, GID, 0o640)
    assert not needs_work(TableFile(path, "hash", False, text, 0o640, UID, GID))


def test_dovecot_file_digests_cover_the_conf_files_of_both_directories(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "dovecot.conf").write_text("!include conf.d/*.conf\n", encoding="utf-8")
    (tmp_path / "conf.d" / "15-postmaster-mailboxes.conf").write_text("passdb {}\n", encoding="utf-8")
    (tmp_path / "conf.d" / "README").write_text("not a conf file\n", encoding="utf-8")
    (tmp_path / "conf.d" / "link.conf").symlink_to(tmp_path / "dovecot.conf")
    (tmp_path / "dovecot-sql.conf.ext").write_text("x\n", encoding="utf-8")
    assert file_digests(str(tmp_path)) == {
        "dovecot.conf": hashlib.sha256(b"!include conf.d/*.conf\n").hexdigest(),
        "conf.d/15-postmaster-mailboxes.conf": hashlib.sha256(b"passdb {}\n").hexdigest(),
    }
    assert file_digests(str(tmp_path / "missing")) == {}
