# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""amavis filters: validate the role's settings, build its Postfix fragment (documented in *.yml)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_amavis_render = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.amavis.amavis_render")
_amavis_settings = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.amavis.amavis_settings")


def _wrap(name: str, func: Callable[[], Any]) -> Any:
    try:
        return func()
    except _amavis_settings.AmavisError as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"{name}: {exc}") from None


def amavis_settings(
    settings: Any,
    prefix: str = "amavis_",
    memtotal_mb: Any = None,
    sources: Mapping[str, str] | None = None,
    processors: Any = None,
) -> dict[str, Any]:
    """Validate and normalize the amavis role's settings; errors name ``<prefix><setting>``.

    ``max_servers: auto`` is derived from *processors* and *memtotal_mb* (the host's).

    Legitimate choices that let viruses through (``D_PASS``, ClamAV allow-list files) are shown as
    warnings, once: not in the role's second call, which only adds the text of files given by src.
    """
    result = _wrap(
        "amavis_settings",
        lambda: _amavis_settings.check_settings(
            settings, prefix, memtotal_mb=memtotal_mb, sources=sources, processors=processors
        ),
    )
    if sources is None:
        for warning in _amavis_settings.settings_warnings(result, prefix):
            Display().warning(f"amavis_settings: {warning}")
    return result


def amavis_postfix_fragment(
    settings: Any, fragment_texts: Mapping[str, str | None] | None = None
) -> dict[str, Any] | None:
    """The Postfix fragment of normalized settings (None when the role is off, which removes it).

    With *fragment_texts* (the fragments on the host, as known_host shows them), a fragment among them that touches what
    the amavis fragment owns is an error.
    """

    def build() -> dict[str, Any] | None:
        fragment = _amavis_render.postfix_fragment(_amavis_settings.check_settings(settings))
        if fragment is not None and fragment_texts is not None:
            _amavis_render.check_other_fragments(fragment, fragment_texts)
        return fragment

    return _wrap("amavis_postfix_fragment", build)


class FilterModule:
    """amavis filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "amavis_settings": amavis_settings,
            "amavis_postfix_fragment": amavis_postfix_fragment,
        }
