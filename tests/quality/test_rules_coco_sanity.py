"""Rule checks a COCO sanity checker runs, on hand-built datasets: each planted mistake is found on its row, the clean
rows around it are not, and edge cases (no size, several polygon parts, masks only, keypoints without a box) work."""

from __future__ import annotations

import base64
import io as _io
import json
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.polygons import Polygons
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.quality import CheckConfig, QualityIssues, check, write_html
from maslow.quality.config import RULE_TYPES
from maslow.quality.consensus_report import OTHER_COLOUR, TRUTH_COLOUR
from maslow.quality.geometry import _ring_area_and_box, _ring_layout, _segments_cross, check_polygons
from maslow.sample import shapes, write_shapes
from tests.helpers import run_cli_streams, traced_peak

SCHEMA = LabelSchema(classes=(ClassDef("a", keypoints=("head", "tail")), ClassDef("b")),
                     attributes=(AttributeDef("occluded", type="bool"),))


def _ds(box: Any = None, *, size: tuple[int, int] = (100, 80), label: Any = None, n_images: int = 1,
        image: Any = None, **cols: Any) -> Dataset:
    """One (or ``n_images``) image of ``size`` (w, h), annotations from the given columns (all on image 0)."""
    n = len(box) if box is not None else len(next(iter(cols.values())))
    return Dataset(schema=SCHEMA, images=Images(path=[f"i{k}.png" for k in range(n_images)], width=[size[0]] * n_images,
                                                 height=[size[1]] * n_images),
                   annotations=Annotations(image=np.zeros(n, np.int64) if image is None else image,
                                           label=np.zeros(n, np.int64) if label is None else label, box=box, **cols))


def _rows(issues: QualityIssues, type_: str) -> list[int]:
    return sorted(issues.of_type(type_).annotation.tolist())


def _poly(*rows: Any) -> np.ndarray:
    return obj_array([None if r is None else [np.asarray(p, np.float64) for p in r] for r in rows])


# -- geometry ----------------------------------------------------------------------------------------------------
def test_tiny_boxes_are_reported_only_with_min_area() -> None:
    ds = _ds([[10, 10, 14, 13], [10, 10, 50, 50], [10, 10, 11, 30]])  # 12 px², 1600 px², degenerate (1 px wide)
    assert _rows(check(ds), "tiny_box") == []  # off by default
    issues = check(ds, config=CheckConfig(min_area=32))
    assert _rows(issues, "tiny_box") == [0]  # the degenerate box is degenerate_box, not also tiny
    assert _rows(issues, "degenerate_box") == [2]
    assert "12 px²" in issues.of_type("tiny_box").reason[0]


def test_polygon_parts_enclosing_no_area() -> None:
    ds = _ds([[0, 0, 40, 40]] * 4, polygon=_poly(
        [[0, 0, 20, 20, 40, 40]],                            # collinear
        [[0, 0, 40, 0, 40, 40], [5, 5, 5, 5, 5, 5]],         # a good triangle and a part of one repeated vertex
        [[0, 0, 40, 0, 40, 40, 0, 40]],                      # a good square
        [[0, 0, 40, 40, 40, 0, 0, 40]],                      # a bow-tie: its halves cancel (self-intersection)
    ))
    issues = check(ds)
    assert _rows(issues, "polygon_zero_area") == [0, 1]
    assert _rows(issues, "polygon_self_intersection") == [3]


def _exact_area(ring: np.ndarray) -> float:
    """The shoelace area in exact rational arithmetic (the floats taken as they are)."""
    p = [(Fraction(float(x)), Fraction(float(y))) for x, y in ring[: len(ring) // 2 * 2].reshape(-1, 2)]
    return float(abs(sum(p[i][0] * p[(i + 1) % len(p)][1] - p[(i + 1) % len(p)][0] * p[i][1]
                         for i in range(len(p)))) / 2)


def test_ring_area_and_box_match_the_reference_per_ring() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(300):
        rows.append([rng.uniform(-1e5, 1e5, 2 * int(rng.integers(1, 12))) + 1e6 for _ in range(int(rng.integers(0, 4)))])
    poly = Polygons.from_rows(rows)
    _, start, nv = _ring_layout(poly)
    area, box = _ring_area_and_box(poly, start, nv, chunk=37)  # several chunks, rings split at their edges
    rings = [r for row in rows for r in row]
    assert area == pytest.approx([_exact_area(r) for r in rings], rel=1e-9, abs=1e-6)
    assert np.array_equal(box, np.asarray([M.polygon_box([r]) for r in rings]).reshape(-1, 4))


def test_polygons_past_the_image_and_outlines_off_their_box() -> None:
    ds = _ds([[0, 0, 40, 40], [80, 60, 140, 100], [200, 200, 220, 220], [0, 0, 40, 40], [0, 0, 40, 40]],
             polygon=_poly(
                 [[0, 0, 40, 0, 40, 40]],                      # inside, matches its box
                 [[80, 60, 140, 60, 140, 100]],                # partly past the 100 x 80 image
                 [[200, 200, 220, 200, 220, 220]],             # wholly outside
                 [[60, 50, 90, 50, 90, 75], [0, 0, 5, 0, 5, 5]],  # two parts: their union is far from the box
                 None))
    issues = check(ds)
    oob = issues.of_type("polygon_out_of_bounds")
    assert sorted(zip(oob.annotation.tolist(), oob.severity.tolist(), strict=True)) == [(1, "warning"), (2, "error")]
    assert _rows(issues, "polygon_box_mismatch") == [3]


def test_masks_of_another_size_than_their_image() -> None:
    small, right = np.zeros((40, 50), bool), np.zeros((80, 100), bool)
    small[5:10, 5:10] = right[5:10, 5:10] = True
    ds = _ds(None, mask=obj_array([M.encode(small), M.encode(right)]))  # masks only: no box
    issues = check(ds)
    assert _rows(issues, "mask_size_mismatch") == [0]
    assert "50 x 40" in issues.of_type("mask_size_mismatch").reason[0]
    assert _rows(issues, "mask_box_mismatch") == []  # no box to compare with


def test_keypoints_off_the_image_and_unlabelled_points_with_coordinates() -> None:
    kp = np.array([[[10, 10, 2], [150, 10, 2]],   # tail past the 100 px wide image (no box)
                   [[10, 10, 2], [30, 40, 0]],    # tail not labelled, yet placed
                   [[10, 10, 1], [0, 0, 0]],      # COCO's unlabelled point
                   [[np.nan, np.nan, 0], [20, 20, 2]]], float)
    ds = _ds(None, keypoints=kp)
    issues = check(ds)
    assert _rows(issues, "keypoint_outside_image") == [0]
    assert "tail" in issues.of_type("keypoint_outside_image").reason[0]
    assert _rows(issues, "keypoint_unlabelled_with_coordinates") == [1]
    cfg = CheckConfig(ignore_types=("keypoint_unlabelled_with_coordinates",))  # CVAT's outside points
    assert _rows(check(ds, config=cfg), "keypoint_unlabelled_with_coordinates") == []


def test_images_without_a_size_are_named_once() -> None:
    ds = Dataset(schema=SCHEMA, images=Images(path=["a.png", "b.png", "c.png"], width=[0, 100, 0], height=[0, 80, 0]),
                 annotations=Annotations(image=[0, 1], label=[0, 0], box=[[0, 0, 5000, 10], [0, 0, 10, 10]]))
    found = check(ds).of_type("image_size_unknown")
    assert len(found) == 1 and found.image.tolist() == [-1] and "1 annotated images" in found.reason[0]
    assert "a.png" in found.reason[0]


# -- polygons at scale: bounded memory, exact results --------------------------------------------------------------
def test_self_intersection_in_chunks_matches_all_at_once() -> None:
    rng = np.random.default_rng(1)
    for v in (4, 5, 7, 12):
        pts = rng.normal(0, 1, (500, v, 2))
        pts[:100] = rng.integers(0, 4, (100, v, 2))  # touching and collinear edges, never reported
        whole = _segments_cross(pts, budget=1 << 30)
        assert whole.any() and not whole.all()
        assert np.array_equal(_segments_cross(pts, budget=3 * v * v), whole)


def test_many_polygons_of_one_vertex_count_in_bounded_memory() -> None:
    """3,000 parts of 120 vertices were tested at once, as (3,000, 7,021) arrays of edge pairs: over 1 GB."""
    n, v = 3000, 120
    t = np.linspace(0, 2 * np.pi, v, endpoint=False)
    ring = np.stack([50 + 40 * np.cos(t), 40 + 30 * np.sin(t)], 1).ravel()
    xy = np.tile(ring, n)
    seven = xy[2 * v * 7: 2 * v * 8]  # a view: part 7 gets its first two vertices swapped (a bow-tie)
    seven[:4] = seven[[2, 3, 0, 1]].copy()
    poly = Polygons(xy, np.arange(n + 1) * 2 * v, np.arange(n + 1))
    ds = _ds(np.tile([10.0, 10, 90, 70], (n, 1)), polygon=poly)
    out: list[QualityIssues] = []
    peak = traced_peak(lambda: out.extend(check_polygons(ds)))
    assert peak < 200e6, peak / 1e6
    found = QualityIssues.build(out)
    assert _rows(found, "polygon_self_intersection") == [7]


# -- consistency -----------------------------------------------------------------------------------------------------
def test_classes_and_attributes_outside_a_given_schema() -> None:
    ds = _ds([[0, 0, 10, 10]] * 3, label=[0, 1, 1],
             attributes={"occluded": obj_array([True, None, False]), "ocluded": obj_array([None, True, None])})
    only_a = LabelSchema(classes=(ClassDef("a"),), attributes=(AttributeDef("occluded", type="bool"),))
    issues = check(ds, schema=only_a)
    assert _rows(issues, "class_not_in_schema") == [1, 2]
    assert _rows(issues, "attribute_unknown") == [1] and "'ocluded'" in issues.of_type("attribute_unknown").reason[0]
    # without a schema of its own, the dataset's is the reference: nothing is foreign to it
    assert not {"class_not_in_schema", "attribute_unknown"} & set(check(ds).counts())


def test_empty_images_on_request_and_rules_that_can_never_fire() -> None:
    ds = _ds([[0, 0, 10, 10]], n_images=3, attributes={"occluded": obj_array([True])})
    assert "image_without_annotations" not in check(ds).counts()
    issues = check(ds, config=CheckConfig(report_empty_images=True))
    assert issues.of_type("image_without_annotations").image.tolist() == [1, 2]
    cfg = CheckConfig(exclusive_attributes=(("occluded", "truncatd"),))
    never = check(ds, config=cfg).of_type("rule_never_applies")
    assert len(never) == 1 and "exclusive_attributes[0]" in never.reason[0] and "'truncatd'" in never.reason[0]


def test_every_reported_type_is_listed_and_can_be_ignored() -> None:
    ds = _ds([[10, 10, 14, 13], [0, 0, 10, 10]], n_images=2, polygon=_poly([[0, 0, 2, 2, 4, 4]], None))
    cfg = CheckConfig(min_area=32, report_empty_images=True)
    found = set(check(ds, config=cfg).counts())
    assert found >= {"tiny_box", "polygon_zero_area", "image_without_annotations"}
    assert found <= {t for ts in RULE_TYPES.values() for t in ts}
    left = check(ds, config=CheckConfig(min_area=32, report_empty_images=True, ignore_types=("tiny_box",)))
    assert set(left.counts()) == found - {"tiny_box"}


# -- the command line and the report ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "where"), [
    pytest.param("ignore_types: [zero_area]\n", "ignore_types[0]", id="unknown-type"),
    pytest.param("report_empty_images: maybe\n", "report_empty_images", id="not-a-bool"),
    pytest.param("min_area: -4\n", "min_area", id="negative-area"),
])
def test_bad_new_config_fields_exit_2_naming_the_field(tmp_path: Path, text: str, where: str) -> None:
    io.write(shapes(4, seed=0), tmp_path / "ann.json", "coco")
    (tmp_path / "rules.yaml").write_text(text)
    code, out, err = run_cli_streams(["check", str(tmp_path / "ann.json"), "--from", "coco", "--config",
                                      str(tmp_path / "rules.yaml"), "--json"])
    assert code == 2 and out == ""
    assert "rules.yaml" in err and where in err


def test_check_json_with_a_schema_names_the_foreign_class(tmp_path: Path) -> None:
    ds = shapes(12, seed=0)
    io.write(ds, tmp_path / "ann.json", "coco")
    (tmp_path / "schema.yaml").write_text("classes:\n  - name: circle\n  - name: square\n")
    code, out, _ = run_cli_streams(["check", str(tmp_path / "ann.json"), "--from", "coco", "--schema",
                                    str(tmp_path / "schema.yaml"), "--json", "--top", "1000"])
    assert code == 0
    rows = [r for r in json.loads(out)["issues"] if r["type"] == "class_not_in_schema"]
    n_triangles = int((ds.annotations.label == ds.schema.index("triangle")).sum())
    assert len(rows) == n_triangles > 0 and {r["class"] for r in rows} == {"triangle"}
    assert all(r["file_name"] and r["severity"] == "error" for r in rows)


def _crops(text: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(_io.BytesIO(base64.b64decode(c))).convert("RGB"))
            for c in re.findall(r"base64,([A-Za-z0-9+/=]+)", text)]


def test_html_report_shows_each_offending_object(tmp_path: Path) -> None:
    ds = write_shapes(tmp_path / "data", 8, seed=0)
    a = ds.annotations
    assert a.box is not None
    r0 = int(np.flatnonzero(~a.iscrowd)[0])
    copy = a.box[r0] + [-1.5, -1.5, 1.5, 1.5]  # drawn again, a little larger: the later row (orange) around the first
    bad = ds.replace(annotations=Annotations.sort_rows(
        image=np.r_[a.image, a.image[r0]], label=np.r_[a.label, a.label[r0]], box=np.r_[a.box, copy[None]]))
    issues = check(bad, config=CheckConfig(families=("overlaps",), duplicate_iou=0.5))
    assert issues.type.tolist() == ["duplicate_box"]
    path = write_html(issues, bad, tmp_path / "report.html", top=5)
    text = path.read_text(encoding="utf-8")
    crops = _crops(text)
    assert len(crops) == min(len(issues), 5)
    orange = [bool(((c == TRUTH_COLOUR).all(axis=2)).any()) for c in crops]
    yellow = [bool(((c == OTHER_COLOUR).all(axis=2)).any()) for c in crops]
    assert all(orange) and all(yellow)
    x1, y1, x2, y2 = bad.annotations.box[int(issues.annotation[0])]
    assert f"[{x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}]" in text
    # an image that can't be read: the box, no crop; a dataset without images (no root): no object column
    (Path(str(bad.root)) / str(bad.images.path[int(issues.image[0])])).unlink()
    gone = write_html(issues, bad, tmp_path / "gone.html").read_text(encoding="utf-8")
    assert "(no image)" in gone and f"[{x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}]" in gone
    plain = write_html(issues, bad.replace(root=None), tmp_path / "plain.html").read_text(encoding="utf-8")
    assert not _crops(plain) and "object (box xyxy px)" not in plain


def test_distinct_equals_numpy_unique() -> None:
    from maslow.core.types import distinct

    rng = np.random.default_rng(3)
    for x in (rng.integers(-50, 50, 1000), rng.integers(0, 2**40, 5000), np.zeros(0, np.int64), np.array([7])):
        assert np.array_equal(distinct(x), np.unique(x))
