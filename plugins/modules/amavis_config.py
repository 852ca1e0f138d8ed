#!/usr/bin/python
# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: amavis_config
short_description: Configure amavisd-new with ClamAV and SpamAssassin, check, restart, health-check, roll back
version_added: 0.1.0
description:
  - Writes amavis's own configuration file (O(conf_path), loaded after Debian's C(conf.d) files) from validated
    O(settings), and the ClamAV side that goes with it, as one set.
  - ClamAV side, when C(clamav_enabled) is true. C(ConcurrentDatabaseReload) is set in O(clamd_conf) and
    C(PrivateMirror) in O(freshclam_conf); other lines of those files stay as the package (and debconf) wrote them.
    C(clamav) joins the C(amavis) group, so that clamd can read the files amavis asks it to scan.
  - With C(signatures=files), the signature files are written to O(database_dir), C(clamav-freshclam) is masked, and
    both clamd units get a drop-in that replaces their C(ConditionPathExistsGlob) (the official C(main) and C(daily)
    databases) with C(ConditionPathExists) on the first signature file, so clamd starts with that database and
    never without one. Files this module wrote earlier and that are no longer listed are removed.
  - With C(signatures=freshclam) or C(mirror), freshclam is unmasked, enabled and started, and clamd is started only
    once freshclam has written C(main) and C(daily); after C(clamav_database_timeout) seconds without them the module
    fails, naming the missing files.
  - The candidates are checked before anything is written, with the daemons' own checkers. C(amavisd test-config)
    loads Debian's files and the live C(conf.d) with the candidate in place of O(conf_path), as amavisd would.
    C(clamconf) reads a copy of the ClamAV configuration directory with the candidates in it, and any C(ERROR) fails.
  - Then the files are replaced atomically and the systemd units are set. freshclam, clamd and amavis are
    (re)started only as the changes need, in that order. clamd must answer C(PING), amavis must greet with SMTP C(220)
    on O(health_host):O(health_port) (the unit being active is not enough, since amavis without an FQDN dies a few
    seconds after it starts), and neither may log an error in the journal. Otherwise every file, the group
    membership and the units are restored as they were, and the services that ran before are restarted.
  - O(state=absent) (or C(enabled) false in O(settings)) stops and disables amavis, clamd and freshclam and removes
    O(conf_path) and the drop-ins. Packages, signature files and the ClamAV configuration files stay.
  - A service that should run but does not is started, and reported as a change.
author:
  - postmaster.mailserver developers (@postmaster)
extends_documentation_fragment:
  - postmaster.mailserver.attributes
  - postmaster.mailserver.call_record
attributes:
  check_mode:
    support: full
    details:
      - In check mode the candidates are still checked by C(amavisd test-config) and C(clamconf) (when installed),
        but nothing is written, restarted or waited for.
  diff_mode:
    support: full
options:
  state:
    description:
      - V(present) configures and runs amavis (and ClamAV); V(absent) stops and disables them.
    type: str
    choices: [present, absent]
    default: present
  settings:
    description:
      - The settings, by the amavis role's variable names without the C(amavis_) prefix, validated by the same code
        as the role's C(postmaster.mailserver.amavis_settings) filter. Required with O(state=present).
      - C(myhostname) (an FQDN), C(max_servers), C(final_virus_destiny), C(final_banned_destiny),
        C(final_spam_destiny), C(final_bad_header_destiny) (each V(D_DISCARD), V(D_BOUNCE), V(D_REJECT) or V(D_PASS);
        V(D_REJECT) needs C(postfix_filter=before_queue)), C(sa_tag_level_deflt), C(sa_tag2_level_deflt),
        C(sa_kill_level_deflt), C(sa_local_tests_only), C(quarantine_dir) (absolute, not a system directory; empty
        for no quarantine), C(local_domains).
      - C(clamav_enabled), C(spamassassin_enabled), C(signatures) (V(freshclam), V(mirror) or V(files)),
        C(freshclam_mirror), C(clamav_signature_files) (a list of C(name) and C(content)),
        C(clamav_concurrent_database_reload), C(clamav_database_timeout).
      - Settings that are not given take the role's defaults, except C(myhostname), which is required.
    type: dict
  conf_path:
    description:
      - amavis's configuration file that this module owns. Its name must sort after Debian's files in C(conf.d).
    type: path
    default: /etc/amavis/conf.d/60-postmaster
  clamd_conf:
    description:
      - clamd's configuration file.
    type: path
    default: /etc/clamav/clamd.conf
  freshclam_conf:
    description:
      - freshclam's configuration file (only changed with C(signatures) V(freshclam) or V(mirror)).
    type: path
    default: /etc/clamav/freshclam.conf
  database_dir:
    description:
      - ClamAV's database directory, where signature files are written.
    type: path
    default: /var/lib/clamav
  clamd_socket:
    description:
      - clamd's local socket (C(LocalSocket) of clamd.conf), which amavis scans through and the health check pings.
    type: path
    default: /var/run/clamav/clamd.ctl
  systemd_dir:
    description:
      - Where the drop-ins of the clamd units are written.
    type: path
    default: /etc/systemd/system
  health_check:
    description:
      - After a (re)start, require clamd's C(PONG), amavis's SMTP greeting and no error in the journal.
    type: bool
    default: true
  health_host:
    description:
      - Address where amavis listens.
    type: str
    default: 127.0.0.1
  health_port:
    description:
      - Port where amavis listens.
    type: int
    default: 10024
  health_timeout:
    description:
      - Seconds to wait for clamd and for amavis to answer after a (re)start (amavis loads SpamAssassin's rules, and
        clamd its database, first).
    type: int
    default: 120
requirements:
  - amavisd-new (and, with ClamAV, clamav-daemon) on a systemd host; C(journalctl) for the log part of the health check.
seealso:
  - module: postmaster.mailserver.postfix_config
"""

EXAMPLES = r"""
- name: amavis with ClamAV fed by signature files (no freshclam) and SpamAssassin
  postmaster.mailserver.amavis_config:
    settings:
      myhostname: mail.example.com
      signatures: files
      clamav_signature_files:
        - name: local.ndb
          content: "Local-Test-Signature:0:*:6c6f63616c2d746573742d737472696e67\n"

- name: amavis with SpamAssassin only, on a small host
  postmaster.mailserver.amavis_config:
    settings:
      myhostname: mail.example.com
      clamav_enabled: false

- name: Stop amavis and ClamAV (after taking the Postfix fragment out)
  postmaster.mailserver.amavis_config:
    state: absent
"""

RETURN = r"""
state:
  description: The state applied (V(absent) also when C(enabled) is false in O(settings)).
  returned: always
  type: str
  sample: present
files:
  description: The files that were (or, in check mode, would be) written or removed.
  returned: always
  type: list
  elements: str
  sample: ["/etc/amavis/conf.d/60-postmaster", "/var/lib/clamav/local.ndb"]
units:
  description: The systemd unit properties that were changed, by unit.
  returned: always
  type: dict
  sample: {"clamav-freshclam.service": {"masked": true, "active": false}}
group_changed:
  description: Whether C(clamav) was added to the C(amavis) group.
  returned: always
  type: bool
services:
  description: What was restarted or reloaded, in order.
  returned: always
  type: list
  elements: str
  sample: ["restarted clamav-daemon.service", "restarted amavis.service"]
rolled_back:
  description: Present and true when the health check failed and the previous state was restored.
  returned: failure
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis.amavis_config import AmavisConfig
from ansible_collections.postmaster.mailserver.plugins.module_utils.amavis.amavis_settings import AmavisError
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import (
    CALL_RECORD_OPTION,
    health_options,
    module_options,
    run_backend,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "settings": {"type": "dict"},
            "conf_path": {"type": "path", "default": "/etc/amavis/conf.d/60-postmaster"},
            "clamd_conf": {"type": "path", "default": "/etc/clamav/clamd.conf"},
            "freshclam_conf": {"type": "path", "default": "/etc/clamav/freshclam.conf"},
            "database_dir": {"type": "path", "default": "/var/lib/clamav"},
            "clamd_socket": {"type": "path", "default": "/var/run/clamav/clamd.ctl"},
            "systemd_dir": {"type": "path", "default": "/etc/systemd/system"},
            **health_options(port=10024, timeout=120),
            **CALL_RECORD_OPTION,
        },
        required_if=[("state", "present", ("settings",))],
        supports_check_mode=True,
    )
    run_backend(
        module,
        AmavisConfig,
        AmavisError,
        **module_options(module),
    )


if __name__ == "__main__":
    main()
