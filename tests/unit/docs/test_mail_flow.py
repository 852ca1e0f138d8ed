"""docs/mail-flow.svg is drawn from docs/mail-flow.yml by scripts/mail_flow_svg.py, and stays in step with it."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def load_script():
    spec = importlib.util.spec_from_file_location("mail_flow_svg", ROOT / "scripts" / "mail_flow_svg.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_svg_is_drawn_from_its_source():
    script = load_script()
    source = yaml.safe_load((ROOT / "docs" / "mail-flow.yml").read_text())
    assert (ROOT / "docs" / "mail-flow.svg").read_text() == script.render(source), (
        "docs/mail-flow.svg is out of date: run python scripts/mail_flow_svg.py"
    )


def test_every_box_and_arrow_is_drawn_and_the_svg_is_well_formed():
    script = load_script()
    source = yaml.safe_load((ROOT / "docs" / "mail-flow.yml").read_text())
    svg = ET.fromstring(script.render(source))
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in svg.iter(f"{ns}text")]
    assert all(box["lines"][0] in texts for box in source["boxes"])
    assert len(list(svg.iter(f"{ns}line"))) == len(source["arrows"])
    ids = {box["id"] for box in source["boxes"]}
    assert {a["from"] for a in source["arrows"]} | {a["to"] for a in source["arrows"]} <= ids
    assert "amavis 127.0.0.1:10024" in texts
    assert "submission :587 STARTTLS" in texts
