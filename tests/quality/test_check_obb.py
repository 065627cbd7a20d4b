"""Rule checks of oriented boxes (maslow check): corners out of order, not a rectangle, degenerate, past the image;
only on oriented data; the suggested rectangle applied through the review path."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from maslow import io
from maslow.cli.main import app
from maslow.core.dataset import Dataset
from maslow.core.obb import corners_from_xywhr, oriented_corners, quad_areas
from maslow.core.polygons import Polygons
from maslow.core.schema import Task
from maslow.errors import FormatError
from maslow.io._yolo_obb import min_area_rect
from maslow.quality import CheckConfig, QualityIssues, check
from maslow.quality.oriented import is_oriented, min_area_rects
from maslow.quality.records import issue_records
from maslow.quality.review import Decision, apply_decisions
from maslow.sample import oriented


def _with_quads(ds: Dataset, quads: np.ndarray) -> Dataset:
    a = ds.annotations
    return ds.replace(annotations=a.with_columns(polygon=Polygons.from_rows([[q.ravel()] for q in quads]),
                                                 box=np.c_[quads.min(axis=1), quads.max(axis=1)]))


@pytest.fixture(scope="module")
def scene() -> Dataset:
    return oriented(40, seed=2)


def _bad(scene: Dataset) -> tuple[Dataset, dict[str, int], np.ndarray]:
    """The scene with, in rows 0-5: a bow tie, a corner 6 px off, a corner pushed inside (concave), a flat box, a
    box 1 px across, a box past the image's right edge; and its clean corners."""
    clean = oriented_corners(scene.annotations, np.arange(scene.n_annotations))
    q = clean.copy()
    q[0] = q[0, [0, 1, 3, 2]]
    q[1, 2] += [6.0, -4.0]
    q[2, 2] = q[2, 0] + 0.3 * (q[2, 2] - q[2, 0])
    q[3, 3], q[3, 2] = q[3, 0], q[3, 1]
    q[4] = corners_from_xywhr([[200.0, 200.0, 60.0, 1.0, 0.5]])[0]
    q[5] += [scene.images.width[scene.annotations.image[5]] - q[5, :, 0].min() - 5.0, 0.0]
    rows = {"bow_tie": 0, "off": 1, "concave": 2, "flat": 3, "thin": 4, "outside": 5}
    return _with_quads(scene, q), rows, clean


def _found(issues: QualityIssues, row: int) -> list[str]:
    return [str(t) for t in issues.type[issues.annotation == row]]


def test_clean_oriented_boxes_give_no_findings(scene: Dataset) -> None:
    assert is_oriented(scene)
    assert len(check(scene)) == 0
    # rounded to 2 decimals, as files write them: still rectangles within the tolerance
    q = np.round(oriented_corners(scene.annotations, np.arange(scene.n_annotations)), 2)
    assert len(check(_with_quads(scene, q))) == 0


def test_each_rule_names_its_row(scene: Dataset) -> None:
    bad, rows, clean = _bad(scene)
    issues = check(bad)
    assert _found(issues, rows["bow_tie"]) == ["obb_corner_order"]  # not also polygon_self_intersection
    assert _found(issues, rows["off"]) == ["obb_not_rectangle"]
    assert _found(issues, rows["concave"]) == ["obb_not_rectangle"]
    assert "obb_degenerate" in _found(issues, rows["flat"]) and "polygon_zero_area" not in _found(issues, rows["flat"])
    assert _found(issues, rows["thin"]) == ["obb_degenerate"]
    assert _found(issues, rows["outside"]) == ["polygon_out_of_bounds"]  # the polygon rule, reused
    severity = {name: str(issues.severity[issues.annotation == r][0]) for name, r in rows.items()}
    assert severity == {"bow_tie": "error", "off": "warning", "concave": "error", "flat": "error", "thin": "error",
                        "outside": "warning"}
    concave = issues.take(issues.annotation == rows["concave"])
    assert "not convex" in str(concave.reason[0])
    # the bow tie's suggestion is the rectangle its corners make, in order
    bow = issues.take(issues.annotation == rows["bow_tie"])
    assert bow.polygon is not None
    got = bow.polygon[0]
    assert min(np.abs(np.roll(clean[0], k, axis=0)[::d] - got).max() for k in range(4) for d in (1, -1)) < 1e-9
    rows_out = issues.rows(names=bad.schema.names)
    bow_row = next(r for r in rows_out if r["annotation"] == rows["bow_tie"])
    assert len(bow_row["suggestion"]["polygon"][0]) == 8


def test_not_rectangle_suggests_the_minimum_area_rectangle(scene: Dataset) -> None:
    bad, rows, _ = _bad(scene)
    issues = check(bad)
    off = issues.take(issues.annotation == rows["off"])
    quad = oriented_corners(bad.annotations, np.array([rows["off"]]))[0]
    sug = off.polygon[0] if off.polygon is not None else None
    assert sug is not None
    ref = min_area_rect(quad)  # the writers' rectangle (rotating calipers over the hull)
    assert quad_areas(sug[None])[0] == pytest.approx(quad_areas(ref[None])[0], rel=1e-9)
    sides = np.roll(sug, -1, axis=0) - sug
    assert np.abs((sides * np.roll(sides, -1, axis=0)).sum(axis=1)).max() < 1e-6  # right angles
    # a corner is where the quad's is, the others line up with its order
    assert np.abs(sug - quad).max() > 1.0 and np.abs(sug - quad).sum(axis=1).min() < 1e-6


def test_vectorised_rectangles_match_the_writers_on_random_quads() -> None:
    rng = np.random.default_rng(0)
    q = rng.uniform(0, 100, (200, 4, 2))
    rect, sides = min_area_rects(q)
    ref = np.array([quad_areas(min_area_rect(x)[None])[0] for x in q])
    np.testing.assert_allclose(quad_areas(rect), ref, rtol=1e-9)
    np.testing.assert_allclose(sides[:, 0] * sides[:, 1], ref, rtol=1e-9)


def test_only_oriented_data_is_held_to_rectangles(scene: Dataset) -> None:
    bad, rows, _ = _bad(scene)
    seg = bad.replace(schema=dataclasses.replace(bad.schema, tasks=(Task.INSTANCE_SEGMENTATION, Task.DETECTION)))
    assert not is_oriented(seg)
    plain = check(seg)
    assert not any(str(t).startswith("obb_") for t in plain.type)
    assert _found(plain, rows["bow_tie"]) == ["polygon_self_intersection"]  # the generic rule still runs
    forced = check(seg, config=CheckConfig(oriented=True))
    assert _found(forced, rows["off"]) == ["obb_not_rectangle"]
    off = check(bad, config=CheckConfig(oriented=False))
    assert not any(str(t).startswith("obb_") for t in off.type)
    loose = check(bad, config=CheckConfig(obb_tolerance=50.0))
    assert _found(loose, rows["off"]) == [] and _found(loose, rows["concave"]) == []


def test_accepted_rectangle_is_applied_through_review(scene: Dataset) -> None:
    bad, rows, clean = _bad(scene)
    issues = check(bad)
    findings = json.loads(json.dumps(issue_records(issues, bad)))
    pick = {f["rank"]: Decision("accepted") for f in findings
            if f["annotation_row"] in (rows["bow_tie"], rows["off"])}
    result = apply_decisions(bad, findings, pick)
    assert [c.action for c in result.changes] == ["move_polygon", "move_polygon"]
    again = check(result.dataset)
    assert _found(again, rows["bow_tie"]) == [] and _found(again, rows["off"]) == []
    fixed = oriented_corners(result.dataset.annotations, np.array([rows["bow_tie"]]))[0]
    assert min(np.abs(np.roll(clean[0], k, axis=0)[::d] - fixed).max() for k in range(4) for d in (1, -1)) < 0.01


def test_config_and_cli(scene: Dataset, tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="oriented"):
        CheckConfig.from_dict({"oriented": "yes"})
    assert CheckConfig.from_dict({"oriented": True, "obb_tolerance": 2}).to_dict()["oriented"] is True
    bad, rows, _ = _bad(scene)
    io.write_dota(bad, tmp_path / "dota")
    runner = CliRunner()
    res = runner.invoke(app, ["check", str(tmp_path / "dota"), "--from", "dota", "--json", "--top", "100"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    named = {(r["type"], r["annotation"]) for r in out["issues"]}
    assert ("obb_corner_order", rows["bow_tie"]) in named and ("obb_not_rectangle", rows["off"]) in named
    res = runner.invoke(app, ["check", str(tmp_path / "dota"), "--from", "dota", "--json", "--not-oriented"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert not any(r["type"].startswith("obb_") for r in out["issues"])


def test_html_report_crops_oriented_findings(scene: Dataset, tmp_path: Path) -> None:
    pytest.importorskip("jinja2")
    from PIL import Image

    from maslow.quality import write_html

    bad, rows, _ = _bad(scene)
    (tmp_path / "images").mkdir()
    for p in bad.images.path.tolist():
        Image.new("RGB", (512, 512)).save(tmp_path / p)
    ds = bad.replace(root=tmp_path)
    out = write_html(check(ds), ds, tmp_path / "report.html").read_text()
    assert out.count("data:image/png") >= len(rows)
