# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module's main() with arguments and return its exit code and JSON result."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args


@pytest.fixture
def run_module(capsys):
    def run(main, args):
        with patch_module_args(args), pytest.raises(SystemExit) as excinfo:
            main()
        return excinfo.value.code, json.loads(capsys.readouterr().out)

    return run
