"""Every variable of the example set-ups in docs/examples is a documented role variable, with a valid value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.postmaster.mailserver.plugins.module_utils.client.mail_dns import mail_dns

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "docs" / "examples"
VARS_FILES = sorted(p for p in EXAMPLES.glob("*/*_vars/*.yml"))
#: Variables of the playbooks rather than of a role.
PLAYBOOK_VARS = {"verify_enabled"}


def role_specs() -> dict[str, dict]:
    specs = {}
    for spec_file in (ROOT / "roles").glob("*/meta/argument_specs.yml"):
        options = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"]["options"]
        specs[spec_file.parents[1].name] = options
    return specs


def test_there_are_examples():
    assert {p.parent.parent.name for p in VARS_FILES} >= {"single-vps", "split-hosts", "provider-relay"}


@pytest.mark.parametrize("path", VARS_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_variables_are_role_variables_with_valid_values(path):
    specs = role_specs()
    variables = yaml.safe_load(path.read_text())
    by_role: dict[str, dict] = {}
    for name, value in variables.items():
        if name in PLAYBOOK_VARS:
            continue
        owners = [role for role, options in specs.items() if name in options]
        assert owners, f"{path.name}: {name} is not a variable of any role"
        by_role.setdefault(owners[0], {})[name] = value
    for role, values in by_role.items():
        spec = {name: specs[role][name] for name in values}
        result = ArgumentSpecValidator(spec).validate(values)
        assert not result.error_messages, (path.name, role, result.error_messages)


@pytest.mark.parametrize("path", [p for p in VARS_FILES if "verify_dns_domains" in p.read_text()])
def test_example_dns_records_build(path):
    variables = yaml.safe_load(path.read_text())
    records = mail_dns(
        variables["verify_dns_domains"], mx_host=variables["postfix_myhostname"], name="verify_dns_domains"
    )
    assert records[0]["zone_lines"][0].startswith("example.org.\t3600\tIN\tMX\t10 mail.example.org.")


def test_the_demo_settings_are_role_variables_too():
    test_example_variables_are_role_variables_with_valid_values(ROOT / "scripts" / "demo-vars.yml")
