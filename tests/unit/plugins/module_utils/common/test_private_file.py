# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import stat

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import (
    read_text,
    write_atomically,
)


def test_new_file_is_0600_when_moved_into_place_and_no_temporary_file_is_left(tmp_path):
    seen = []

    def atomic_move(src, dest):
        seen.append((stat.S_IMODE(os.stat(src).st_mode), stat.S_IMODE(os.stat(dest).st_mode)))
        os.replace(src, dest)

    path = tmp_path / "secret"
    write_atomically(atomic_move, str(path), "user:pass\n", ".test.")
    assert seen == [(0o600, 0o600)]
    assert path.read_text(encoding="utf-8") == "user:pass\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_existing_file_keeps_its_place_and_a_failed_move_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "table"
    path.write_text("old\n", encoding="utf-8")
    os.chmod(path, 0o644)

    def failing_move(src, dest):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(failing_move, str(path), "new\n", ".test.")
    assert path.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table"]


def test_read_text_is_none_for_a_missing_file_and_shows_bytes_that_are_not_utf8(tmp_path):
    assert read_text(str(tmp_path / "absent")) is None
    path = tmp_path / "main.cf"
    path.write_bytes(b"myhostname = mx\xff.example\n")
    assert read_text(str(path)) == "myhostname = mx\ufffd.example\n"


def test_every_backend_reads_its_files_with_the_one_read_text():
    from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis import amavis_config
    from ansible_collections.postmaster.mailserver.plugins.module_utils.dkim import dkim_config
    from ansible_collections.postmaster.mailserver.plugins.module_utils.dovecot import dovecot_config
    from ansible_collections.postmaster.mailserver.plugins.module_utils.firewall import nftables_config
    from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix import postfix_config
    from ansible_collections.postmaster.mailserver.plugins.module_utils.spf import policyd_spf

    for module in (amavis_config, dkim_config, dovecot_config, nftables_config, postfix_config, policyd_spf):
        assert module.read_text is read_text
        assert not hasattr(module, "_read_text")
