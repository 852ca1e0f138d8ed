"""Every role's meta/argument_specs.yml stays in step with its defaults/main.yml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())


def load(role: str) -> tuple[dict, dict]:
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return defaults, specs["argument_specs"]["main"]["options"]


def test_there_are_roles():
    assert "postfix" in ROLES


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_specified_and_every_option_has_a_default(role):
    defaults, options = load(role)
    assert set(defaults) == set(options), {
        "only in defaults": sorted(set(defaults) - set(options)),
        "only in argument_specs": sorted(set(options) - set(defaults)),
    }


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_match_defaults(role):
    defaults, options = load(role)
    for name, value in defaults.items():
        spec = options[name]
        if isinstance(value, str) and "{{" in value:
            # Templated defaults cannot be in the spec (ansible-core templates the spec
            # before the role's per-OS vars exist); the description must say what it is.
            assert "default" not in spec, name
            assert "Default" in spec["description"], name
        else:
            assert spec.get("default") == value, f"{role}: {name}: spec {spec.get('default')!r} != defaults {value!r}"


@pytest.mark.parametrize("role", ROLES)
def test_options_are_documented_and_typed(role):
    _defaults, options = load(role)
    for name, spec in options.items():
        assert name.startswith(f"{role}_"), f"{name} lacks the role prefix"
        assert spec.get("description"), name
        assert spec.get("type"), name
        if spec["type"] == "list":
            assert spec.get("elements"), f"{name}: list without elements"
        if "choices" in spec and "default" in spec:
            assert spec["default"] in spec["choices"], name
