"""Bad input, and any variable set that would lock the admin out, fail before the live ruleset changes.

These run on the nftables host the converge built (this file sorts before test_firewall.py and test_ufw.py).
Each run applies the firewall role alone (tests/firewall_only.yml), as a user would run it later.
"""

from __future__ import annotations

import pytest
from probe import SSH, assert_open, recap, ruleset, run_playbook


@pytest.mark.parametrize(
    ("extra_vars", "named"),
    [
        # sshd listens on 22 (sshd -T): opening 2222 instead would lock the admin out.
        ({"firewall_ssh_port": 2222}, ["firewall_ssh_port is 2222, but sshd listens on 22", "lock the admin out"]),
        (
            {"firewall_extra_rules": [{"port": 8080}, {"port": 8443}, {"port": 70000}]},
            ["firewall_extra_rules[2].port: 70000 is outside 1-65535"],
        ),
        # A newline in a comment (or a source) would be extra lines, or statements, in the ruleset.
        (
            {"firewall_extra_rules": [{"port": 8080, "comment": 'x" accept\ntcp dport 1-65535 accept comment "y'}]},
            ["firewall_extra_rules[0].comment", "is not a valid comment"],
        ),
        # The argument spec names the variable for types and choices.
        ({"firewall_extra_rules": [{"port": 53, "protocol": "icmp"}]}, ["firewall_extra_rules", "icmp"]),
    ],
    ids=[
        "ssh-port-sshd-does-not-use",
        "port-out-of-range",
        "comment-injection",
        "bad-protocol",
    ],
)
def test_refused_before_the_ruleset_changes(server, server_ip, extra_vars, named):
    before = ruleset(server)
    result = run_playbook("firewall_only.yml", extra_vars)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    for word in named:
        assert word in output, f"{word!r} not named in the failure:\n{output[-3000:]}"
    assert " changed=0 " in recap(result)
    assert ruleset(server) == before
    assert_open(server_ip, [SSH, 25])
