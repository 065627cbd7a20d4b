"""CVAT skeleton labels: the edges between a skeleton's points, kept in the label's ``<svg>`` (see
``maslow.io.cvat``).

CVAT 2.x stores the drawing of a skeleton label as SVG markup and exports it as the text of ``<label><svg>``
(escaped: ``&lt;line .../&gt;``; ``bindings._convert_db_labels`` puts each sublabel's name in its circle). Each
point is a ``<circle data-node-id="N" data-label-name="nose" cx cy r>`` and each edge a ``<line
data-node-from="N" data-node-to="M" x1 y1 x2 y2>`` between two node ids (datumaro's ``_load_categories`` reads the
joints the same way). maslow keeps the edges as ``ClassDef.skeleton``: pairs of indices into the class's
``keypoints`` (the points of the label, in the order of their ``<parent>`` labels).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from defusedxml import ElementTree as SafeET

from maslow.io._common import Collector

_SVG_SIZE = 100.0  # CVAT's skeleton editor draws on a 100 x 100 canvas


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]  # "{http://www.w3.org/2000/svg}line" -> "line"


def _markup(svg: Any) -> list[Any]:
    """The SVG elements of ``<svg>``: its text parsed as markup (CVAT's export), or its child elements."""
    if len(svg):
        nodes = list(svg)
    else:
        nodes = list(SafeET.fromstring(f"<svg>{svg.text or ''}</svg>"))
    while len(nodes) == 1 and _local(nodes[0].tag) == "svg":  # a whole <svg> document inside
        nodes = list(nodes[0])
    return nodes


def read_edges(svg: Any, label: str, points: list[str], col: Collector, src: Path) -> tuple[tuple[int, int], ...]:
    """The edges of skeleton ``label`` (indices into ``points``) from its ``<svg>`` element; what can't be read is
    reported (``skeleton_svg``) and left out."""
    record = f"label {label!r}"
    try:
        nodes = _markup(svg)
    except (ET.ParseError, ValueError) as e:
        text = (svg.text or "").strip()
        col.add("skeleton_svg", f"<svg> of skeleton label {label!r} must be SVG markup (<line data-node-from "
                f"data-node-to> between <circle data-node-id data-label-name>), got {text[:60]!r} ({e}); its edges "
                "were not imported", severity="error", file=src, record=record, field="svg")
        return ()
    names: dict[str, str] = {}
    for el in nodes:
        if _local(el.tag) == "circle" and el.get("data-node-id") is not None:
            names.setdefault(el.get("data-node-id").strip(), el.get("data-label-name") or "")
    lines = [el for el in nodes if _local(el.tag) == "line"]
    if lines and not points:
        col.add("skeleton_svg", f"skeleton label {label!r} has {len(lines)} edges in <svg> but no points (labels "
                f"with <parent>{label}</parent>); its edges were not imported", severity="error", file=src,
                record=record, field="svg")
        return ()
    index = {name: k for k, name in enumerate(points)}
    edges: list[tuple[int, int]] = []
    bad: list[tuple[str | None, str | None]] = []
    for el in lines:
        ends = (el.get("data-node-from"), el.get("data-node-to"))
        ks = [index.get(names.get((e or "").strip(), "")) for e in ends]
        if ks[0] is None or ks[1] is None:
            bad.append(ends)
        else:
            edges.append((ks[0], ks[1]))
    if bad:
        col.add("skeleton_svg", f"<svg> of skeleton label {label!r}: an edge must join two <circle> nodes "
                f"(data-node-id) whose data-label-name is a point of the label ({', '.join(points)}), got "
                f"data-node-from={bad[0][0]!r} data-node-to={bad[0][1]!r} ({len(bad)} of {len(lines)} edges); "
                "not imported", severity="error", file=src, record=record, field="svg")
    return tuple(edges)


def svg_text(points: tuple[str, ...], edges: tuple[tuple[int, int], ...]) -> str:
    """The ``<svg>`` text of a skeleton label: one circle per point (around a circle, as CVAT draws a skeleton in
    its editor) and one line per edge, nodes numbered from 1 in point order."""
    half = _SVG_SIZE / 2
    xy = [(round(half + 0.4 * _SVG_SIZE * math.sin(2 * math.pi * k / len(points)), 2),
           round(half - 0.4 * _SVG_SIZE * math.cos(2 * math.pi * k / len(points)), 2)) for k in range(len(points))]
    lines = [f'<line x1="{xy[a][0]}" y1="{xy[a][1]}" x2="{xy[b][0]}" y2="{xy[b][1]}" data-type="edge" '
             f'data-node-from="{a + 1}" data-node-to="{b + 1}"></line>' for a, b in edges]
    circles = [f'<circle r="1.5" cx="{x}" cy="{y}" data-type="element node" data-element-id="{k + 1}" '
               f'data-node-id="{k + 1}" data-label-name={_attr(name)}></circle>'
               for k, (name, (x, y)) in enumerate(zip(points, xy, strict=True))]
    return "".join(lines + circles)


def _attr(value: str) -> str:
    return '"' + escape(value, {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}) + '"'


def svg_matches(text: str, points: tuple[str, ...], edges: tuple[tuple[int, int], ...]) -> bool:
    """Whether the ``<svg>`` text ``text`` (a label's drawing as read) draws exactly the points ``points`` and the
    edges ``edges``: the writer gives it back as it was instead of drawing the points anew."""
    svg = ET.Element("svg")
    svg.text = text
    try:
        nodes = _markup(svg)
    except (ET.ParseError, ValueError):
        return False
    names = [el.get("data-label-name") or "" for el in nodes
             if _local(el.tag) == "circle" and el.get("data-node-id") is not None]
    if sorted(names) != sorted(points):
        return False
    col = Collector()
    got = read_edges(svg, "", list(points), col, Path())
    return not col.issues and tuple(got) == tuple(edges)
