# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter that checks the certificate role's variables on the controller (documented in *.yml)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.postmaster.mailserver.plugins.plugin_utils.lazy_import import LazyModule

_tls_certificate = LazyModule("ansible_collections.postmaster.mailserver.plugins.module_utils.tls.tls_certificate")


def tls_certificate_args(request: Any, prefix: str = "certificate") -> dict[str, Any]:
    """Check a certificate request; return the arguments of the tls_certificate module."""
    try:
        return _tls_certificate.module_args(request, prefix)
    except _tls_certificate.CertificateError as exc:
        # "from None": ansible-core appends the chained cause, which would repeat the message.
        raise AnsibleFilterError(f"tls_certificate_args: {exc}") from None


class FilterModule:
    """TLS certificate filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"tls_certificate_args": tls_certificate_args}
