# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The call_record option of the configuration modules."""

    DOCUMENTATION = r"""
options:
  call_record:
    description:
      - Set by the module's action plugin; leave it unset.
      - A key (64 hex digits) naming this call. After a call that did not fail or warn, the module records
        under C(/var/lib/postmaster-mailserver/calls/) the result and what it owns on the host (its files and
        units, as they are then). The next run's first M(postmaster.mailserver.mail_packages) call checks every
        record against the host, and the same call is then answered on the controller while nothing it owns
        has changed.
    type: str
"""
