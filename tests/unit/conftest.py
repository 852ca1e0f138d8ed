# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make ``ansible_collections.postmaster.mailserver`` importable from a plain checkout.

When the repository is not already inside an ``ansible_collections/postmaster/mailserver``
tree (ansible-test units sets one up itself), a temporary directory with a symlink to the
repository root is prepended to sys.path.  ``ansible_collections`` is a namespace package, so
this merges with the collections installed in the venv.
"""

from __future__ import annotations

import atexit
import importlib
import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _install_collection_path() -> None:
    try:
        importlib.import_module("ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax")
        return
    except ImportError:
        pass
    tmp = Path(tempfile.mkdtemp(prefix="postmaster-collections-"))
    namespace = tmp / "ansible_collections" / "postmaster"
    namespace.mkdir(parents=True)
    (namespace / "mailserver").symlink_to(REPO_ROOT, target_is_directory=True)
    sys.path.insert(0, str(tmp))
    importlib.invalidate_caches()
    for name in [
        n for n in sys.modules if n == "ansible_collections" or n.startswith("ansible_collections.postmaster")
    ]:
        del sys.modules[name]
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)


_install_collection_path()
