"""Draw docs/mail-flow.svg from docs/mail-flow.yml (boxes on a grid, arrows between them).

    python scripts/mail_flow_svg.py          write docs/mail-flow.svg
    python scripts/mail_flow_svg.py --check  exit 1 if docs/mail-flow.svg is out of date

No drawing library is needed: the SVG is written as text, so the picture is reproducible
byte for byte from its source.
"""

from __future__ import annotations

import sys
from pathlib import Path
from xml.sax.saxutils import escape

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "docs" / "mail-flow.yml"
TARGET = ROOT / "docs" / "mail-flow.svg"
FONT = "font-family='DejaVu Sans, Verdana, sans-serif'"
CHAR = 6.4  # average width of a 11px character, for label backgrounds


def _box_geometry(grid: dict, box: dict) -> tuple[float, float, float, float]:
    x = grid["left"] + box["x"] * grid["column"] + (grid["column"] - grid["width"]) / 2
    y = grid["top"] + box["y"] * grid["row"] + (grid["row"] - grid["height"]) / 2
    return x, y, grid["width"], grid["height"]


def _anchor(geometry: tuple[float, float, float, float], other: tuple[float, float]) -> tuple[float, float]:
    """The middle of the side of a box that faces the point *other*."""
    x, y, w, h = geometry
    cx, cy = x + w / 2, y + h / 2
    dx, dy = other[0] - cx, other[1] - cy
    if abs(dx) * h >= abs(dy) * w:
        return (x + w, cy) if dx > 0 else (x, cy)
    return (cx, y + h) if dy > 0 else (cx, y)


def render(spec: dict) -> str:
    grid = spec["grid"]
    boxes = {box["id"]: box for box in spec["boxes"]}
    columns = 1 + max(box["x"] for box in boxes.values())
    rows = 1 + max(box["y"] for box in boxes.values())
    width = grid["left"] * 2 + columns * grid["column"]
    height = grid["top"] + rows * grid["row"] + 40
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>",
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
        "orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='#444'/></marker></defs>",
        f"<rect width='{width}' height='{height}' fill='white'/>",
        f"<text x='{grid['left']}' y='28' {FONT} font-size='16' font-weight='bold'>{escape(spec['title'])}</text>",
    ]
    kinds = spec["kinds"]
    geometry = {name: _box_geometry(grid, box) for name, box in boxes.items()}
    for name, box in boxes.items():
        x, y, w, h = geometry[name]
        fill = kinds[box["kind"]]["fill"]
        out.append(f"<rect x='{x}' y='{y}' width='{w}' height='{h}' rx='6' fill='{fill}' stroke='#333'/>")
        lines = box["lines"]
        for index, line in enumerate(lines):
            ty = y + h / 2 + (index - (len(lines) - 1) / 2) * 15 + 4
            weight = " font-weight='bold'" if index == 0 else ""
            out.append(
                f"<text x='{x + w / 2}' y='{ty}' {FONT} font-size='11' text-anchor='middle'{weight}>"
                f"{escape(str(line))}</text>"
            )
    labels = []
    for arrow in spec["arrows"]:
        source, target = geometry[arrow["from"]], geometry[arrow["to"]]
        start = _anchor(source, (target[0] + target[2] / 2, target[1] + target[3] / 2))
        end = _anchor(target, (source[0] + source[2] / 2, source[1] + source[3] / 2))
        out.append(
            f"<line x1='{start[0]}' y1='{start[1]}' x2='{end[0]}' y2='{end[1]}' stroke='#444' "
            "stroke-width='1.3' marker-end='url(#arrow)'/>"
        )
        if arrow.get("label"):
            mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
            text = str(arrow["label"])
            half = len(text) * CHAR / 2 + 3
            labels.append(
                f"<rect x='{mx - half:.1f}' y='{my - 9:.1f}' width='{2 * half:.1f}' height='14' rx='3' "
                "fill='white' fill-opacity='0.9'/>"
            )
            labels.append(
                f"<text x='{mx:.1f}' y='{my + 2:.1f}' {FONT} font-size='11' text-anchor='middle' fill='#224'>"
                f"{escape(text)}</text>"
            )
    out += labels
    legend_x, legend_y = grid["left"], height - 16
    for kind in kinds.values():
        out.append(
            f"<rect x='{legend_x}' y='{legend_y - 10}' width='14' height='12' fill='{kind['fill']}' stroke='#333'/>"
        )
        out.append(f"<text x='{legend_x + 20}' y='{legend_y}' {FONT} font-size='11'>{escape(kind['label'])}</text>")
        legend_x += 40 + len(kind["label"]) * CHAR
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    svg = render(yaml.safe_load(SOURCE.read_text()))
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text() != svg:
            print(f"{TARGET} is out of date: run python scripts/mail_flow_svg.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(svg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
