"""Generate the "Variables" section of every role README from its argument specs.

    python scripts/role_docs.py          rewrite the sections in place
    python scripts/role_docs.py --check  exit 1 if any README is out of date

The section sits between `<!-- BEGIN VARIABLES -->` and `<!-- END VARIABLES -->`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- BEGIN VARIABLES -->", "<!-- END VARIABLES -->"


def _text(value: object) -> str:
    text = " ".join(value) if isinstance(value, list) else str(value)
    text = re.sub(r"[CI]\(([^)]*)\)", r"`\1`", text)
    return text.replace("|", "\\|").replace("\n", " ")


def _default(spec: dict) -> str:
    if "default" not in spec:
        return ""
    value = spec["default"]
    if value in ({}, []) or value == "":
        return f"`{yaml.safe_dump(value, default_flow_style=True).strip()}`" if value != "" else '`""`'
    if isinstance(value, dict):
        return "see `defaults/main.yml`"
    rendered = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return f"`{rendered.removesuffix('...').strip()}`".replace("|", "\\|")


def section(role: Path) -> str:
    options = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    lines = [BEGIN, "", "| variable | type | default | description |", "|---|---|---|---|"]
    for name, spec in options.items():
        kind = spec["type"] + (f" of {spec['elements']}" if "elements" in spec else "")
        if "choices" in spec:
            kind += " (" + ", ".join(f"`{c}`" for c in spec["choices"]) + ")"
        lines.append(f"| `{name}` | {kind} | {_default(spec)} | {_text(spec['description'])} |")
    return "\n".join([*lines, "", END])


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    for role in sorted((ROOT / "roles").iterdir()):
        readme = role / "README.md"
        text = readme.read_text()
        if BEGIN not in text or END not in text:
            stale.append(f"{readme}: no {BEGIN} ... {END} section")
            continue
        new = text[: text.index(BEGIN)] + section(role) + text[text.index(END) + len(END) :]
        if new != text:
            if check:
                stale.append(f"{readme}: out of date, run scripts/role_docs.py")
            else:
                readme.write_text(new)
    for line in stale:
        print(line, file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
