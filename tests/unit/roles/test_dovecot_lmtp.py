"""The dovecot role's LMTP settings: Dovecot must take the deliveries Postfix makes at once.

Postfix delivers to the LMTP listener with up to lmtp_destination_concurrency_limit connections
(default_destination_concurrency_limit, 20). Dovecot's own lmtp_user_concurrency_limit (10 by
default on Dovecot 2.3 and 2.4) answered the eleventh concurrent delivery for one user with
"451 4.3.0 Too many concurrent deliveries for user", and the message waited for Postfix's next
retry (5 minutes or more): the resilience tests (molecule verify scenario) saw 45 of 1,000
messages deferred so.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "dovecot"
#: Postfix's default lmtp_destination_concurrency_limit ($default_destination_concurrency_limit).
POSTFIX_LMTP_CONCURRENCY = 20


def render(**overrides: object) -> str:
    """roles/dovecot/templates/10-master.conf.j2 as Ansible renders it, with the role's defaults."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE / "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["comment"] = lambda text: f"#\n# {text}\n#"
    values = {
        **defaults,
        "ansible_managed": "Ansible managed",
        "__dovecot_postfix_spool": "/var/spool/postfix",
        "__dovecot_syntax": "2.4",
        **overrides,
    }
    return env.get_template("10-master.conf.j2").render(values)


def test_the_default_sets_no_limit_below_postfix_concurrency():
    default = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["dovecot_lmtp_user_concurrency_limit"]
    assert default == 0 or default >= POSTFIX_LMTP_CONCURRENCY


# No limit is 0 on Dovecot 2.3; 2.4 refuses 0 ("did you mean unlimited?") and takes "unlimited".
@pytest.mark.parametrize(
    ("syntax", "limit", "written"),
    [("2.4", 0, "unlimited"), ("2.3", 0, "0"), ("2.4", 20, "20"), ("2.3", 50, "50")],
)
def test_the_limit_is_written_with_the_lmtp_listener(syntax, limit, written):
    text = render(__dovecot_syntax=syntax, dovecot_lmtp_user_concurrency_limit=limit)
    assert "unix_listener /var/spool/postfix/private/dovecot-lmtp {" in text
    assert text.count("lmtp_user_concurrency_limit") == 1
    assert f"\nlmtp_user_concurrency_limit = {written}\n" in text


def test_without_lmtp_there_is_no_lmtp_setting():
    text = render(dovecot_protocols=["imap", "pop3"])
    assert "dovecot-lmtp" not in text
    assert "lmtp_user_concurrency_limit" not in text
