# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A module imported when one of its names is first used.

ansible-core looks a collection's filter up by loading every file of ``plugins/filter/`` (a file may hold any
filter), in the worker process of each task, and the collection loader compiles each module from its source
every time. A filter file that imported its backend at the top would make every task using any filter of the
collection compile the backends of all of them (about 0.15 s a task here). So the filter files import their
backend through this, and a task compiles only the backend of the filters it uses.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module *name* and imports it on the first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)
