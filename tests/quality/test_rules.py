"""Rule checks (geometry, overlaps, consistency): planted issues are found, clean data gives none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from defusedxml import ElementTree as ET

from maslow import io
from maslow.core import masks as M
from maslow.core.boxes import iou
from maslow.core.dataset import Dataset
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.quality import CheckConfig, QualityIssues, check
from maslow.quality.overlaps import overlapping_pairs
from maslow.sample import shapes
from tests.conftest import shared_path


def _found(issues: QualityIssues, type_: str) -> set[int]:
    return set(issues.of_type(type_).annotation.tolist())


def _planted() -> Dataset:
    """Hand-made: one image of 100 x 100 with one problem per annotation row (see comments)."""
    box = [
        [10, 10, 30, 30],     # 0 clean square
        [40, 40, 40, 60],     # 1 zero area
        [50, 50, 51.5, 70],   # 2 degenerate (1.5 px wide)
        [80, 80, 130, 90],    # 3 out of bounds
        [10, 10, 30, 30.5],   # 4 duplicate of 0 (same class)
        [60, 10, 90, 40],     # 5 class conflict with 6
        [60, 10, 90, 41],     # 6
        [5, 60, 35, 95],      # 7 polygon bow-tie, keypoint outside
    ]
    n = len(box)
    poly: list[object] = [None] * n
    poly[7] = [np.array([5, 60, 35, 95, 35, 60, 5, 95], np.float64)]  # crossing edges
    poly[0] = [np.array([10, 10, 30, 10], np.float64)]  # 2 vertices
    mask: list[object] = [None] * n
    mask[5] = M.encode(np.zeros((100, 100), bool))  # empty
    far = np.zeros((100, 100), bool)
    far[0:5, 0:5] = True
    mask[6] = M.encode(far)  # far from its box
    kp = np.full((n, 1, 3), np.nan)
    kp[7] = [[99, 5, 2]]
    schema = LabelSchema(classes=(ClassDef("a"), ClassDef("b")),
                         attributes=(AttributeDef("occluded", type="bool"), AttributeDef("truncated", type="bool"),
                                     AttributeDef("colour", type="enum", values=("red", "blue"), required=True)))
    return Dataset(
        schema=schema,
        images=Images(path=["x.png"], width=[100], height=[100]),
        annotations=Annotations(
            image=np.zeros(n, np.int64), label=[0, 0, 0, 0, 0, 0, 1, 0], box=box, polygon=obj_array(poly),
            mask=obj_array(mask), keypoints=kp,
            attributes={"occluded": obj_array([True, None, None, None, None, None, None, None]),
                        "truncated": obj_array(["true", None, None, None, None, None, None, "maybe"]),
                        "colour": obj_array(["red", "red", "red", "red", "red", "green", "red", None])}),
    )


def test_every_planted_issue_is_found() -> None:
    ds = _planted()
    cfg = CheckConfig(exclusive_attributes=(("occluded", "truncated"),))
    issues = check(ds, config=cfg)
    assert _found(issues, "zero_area_box") == {1}
    assert _found(issues, "degenerate_box") == {2}
    assert _found(issues, "box_out_of_bounds") == {3}
    dup = issues.of_type("duplicate_box")
    assert {(int(a), int(b)) for a, b in zip(dup.other, dup.annotation, strict=True)} == {(0, 4)}
    conf = issues.of_type("class_conflict")
    assert {(int(a), int(b)) for a, b in zip(conf.other, conf.annotation, strict=True)} == {(5, 6)}
    assert _found(issues, "polygon_too_few_vertices") == {0}
    assert _found(issues, "polygon_self_intersection") == {7}
    assert _found(issues, "empty_mask") == {5}
    assert _found(issues, "mask_box_mismatch") == {6}
    assert _found(issues, "keypoint_outside_box") == {7}
    assert _found(issues, "attribute_conflict") == {0}
    assert _found(issues, "attribute_invalid") == {5, 7}  # colour 'green', truncated 'maybe'
    assert _found(issues, "attribute_missing") == {7}
    assert np.all(np.diff(issues.score) <= 0)
    assert issues.top(3).score.tolist() == issues.score[:3].tolist()


def test_forbidden_combination_rule() -> None:
    ds = _planted()
    cfg = CheckConfig(forbidden_combinations=((("colour", "red"), ("occluded", True)),))
    assert _found(check(ds, config=cfg), "attribute_conflict") == {0}


@pytest.mark.parametrize("n", [24, 200])
def test_clean_shapes_give_no_findings(n: int) -> None:
    issues = check(shapes(n, seed=3))
    assert set(issues.severity.tolist()) <= {"info"}, issues.to_dict(limit=5)


def _with_box(ds: Dataset, rows: list[int], new: list[list[float]]) -> Dataset:
    a = ds.annotations
    assert a.box is not None
    box = a.box.copy()
    box[rows] = new
    return ds.replace(annotations=a.with_columns(box=box))


def test_size_and_count_outliers_on_shapes() -> None:
    ds = shapes(300, seed=0)
    a = ds.annotations
    assert a.box is not None and a.iscrowd is not None
    target = int(np.flatnonzero((a.label == 0) & ~a.iscrowd)[5])
    x1, y1 = a.box[target, :2]
    ds = _with_box(ds, [target], [[x1, y1, x1 + 100, y1 + 3]])  # a flat sliver where circles are round
    assert target in _found(check(ds), "size_outlier")
    # count outlier: one image gets 40 extra circles
    img = int(a.image[target])
    extra = Annotations(image=np.full(40, img), label=np.zeros(40, np.int64),
                        box=np.tile([[1, 1, 20, 20]], (40, 1)) + np.arange(40)[:, None] * [2, 0, 2, 0])
    merged = Dataset(schema=ds.schema, images=ds.images,
                     annotations=Annotations.sort_rows(
                         image=np.concatenate([a.image, extra.image]), label=np.concatenate([a.label, extra.label]),
                         box=np.concatenate([a.box, extra.box])))
    counts = check(merged, config=CheckConfig(families=("consistency",)))
    assert img in set(counts.of_type("count_outlier").image.tolist())


def test_missing_common_class() -> None:
    m = 30
    image = np.repeat(np.arange(m), 2)
    label = np.tile([0, 1], m)
    keep = ~((image == 7) & (label == 1))
    ds = Dataset(schema=LabelSchema.from_names(["cell", "nucleus"]),
                 images=Images(path=[f"{i}.png" for i in range(m)], width=np.full(m, 50), height=np.full(m, 50)),
                 annotations=Annotations(image=image[keep], label=label[keep],
                                         box=np.tile([[1, 1, 20, 20]], (int(keep.sum()), 1))
                                         + (np.arange(int(keep.sum())) % 2)[:, None] * 25))
    issues = check(ds)
    miss = issues.of_type("missing_common_class")
    assert miss.image.tolist() == [7] and miss.annotation.tolist() == [-1]


def test_sweep_matches_pairwise_iou_with_a_dense_image() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    image = np.sort(rng.integers(0, 4, n))
    xy = rng.uniform(0, 300, (n, 2))
    wh = rng.uniform(2, 40, (n, 2))
    box = np.concatenate([xy, xy + wh], 1)
    dup = rng.choice(n, 200, replace=False)
    box[dup] += rng.normal(0, 0.3, (200, 4)).clip(-0.3, 0.3)
    ds = Dataset(schema=LabelSchema.from_names(["x"]),
                 images=Images(path=["a", "b", "c", "d"], width=[400] * 4, height=[400] * 4),
                 annotations=Annotations(image=image, label=np.zeros(n, np.int64), box=box))
    i, j, v = overlapping_pairs(ds, min_iou=0.3)
    assert np.all(v >= 0.3) and np.all(i < j)
    expected = set()
    for im in range(4):
        rows = np.flatnonzero(image == im)
        m = iou(box[rows], box[rows])
        a, b = np.nonzero(np.triu(m >= 0.3, 1))
        expected |= {(int(rows[x]), int(rows[y])) for x, y in zip(a, b, strict=True)}
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected
    assert len(expected) > 50


def _bccd_raw(folder: Path) -> list[tuple[str, str, list[float]]]:
    """(file, class, [xmin, ymin, xmax, ymax]) per object, read with plain ElementTree, in file order."""
    objs = []
    for f in sorted(folder.glob("*.xml")):
        root = ET.parse(f).getroot()
        for o in root.iter("object"):
            bb = o.find("bndbox")
            assert bb is not None
            objs.append((f.name, o.findtext("name", ""), [float(bb.findtext(t, "nan")) for t in ("xmin", "ymin", "xmax", "ymax")]))
    return objs


@pytest.mark.shared
def test_bccd_zero_area_and_duplicates_all_reported() -> None:
    folder = shared_path("bccd", "annotations")
    xml_dir = next(p.parent for p in folder.rglob("*.xml"))
    ds = io.read_voc(folder)
    issues = check(ds)
    objs = _bccd_raw(xml_dir)
    assert len(objs) == ds.n_annotations
    # zero-area in VOC terms: xmax == xmin or ymax == ymin (1-pixel boxes once converted)
    zero = {k for k, (_, _, b) in enumerate(objs) if b[2] <= b[0] or b[3] <= b[1]}
    assert zero, "bccd is known to hold zero-area boxes"
    flagged = _found(issues, "zero_area_box") | _found(issues, "degenerate_box")
    assert zero <= flagged
    # same-class pairs with IoU >= 0.9, plain loops over VOC's inclusive pixel boxes
    expected = set()
    for p in range(len(objs)):
        for q in range(p + 1, len(objs)):
            (fa, ca, a), (fb, cb, b) = objs[p], objs[q]
            if fa != fb or ca != cb:
                continue
            a0 = [a[0] - 1, a[1] - 1, a[2], a[3]]
            b0 = [b[0] - 1, b[1] - 1, b[2], b[3]]
            iw = max(0.0, min(a0[2], b0[2]) - max(a0[0], b0[0]))
            ih = max(0.0, min(a0[3], b0[3]) - max(a0[1], b0[1]))
            inter = iw * ih
            union = (a0[2] - a0[0]) * (a0[3] - a0[1]) + (b0[2] - b0[0]) * (b0[3] - b0[1]) - inter
            if union > 0 and inter / union >= 0.9:
                expected.add((p, q))
    assert expected, "bccd is known to hold duplicate boxes"
    dup = issues.of_type("duplicate_box")
    got = {(int(min(a, b)), int(max(a, b))) for a, b in zip(dup.other, dup.annotation, strict=True)}
    assert expected <= got


@pytest.mark.shared
def test_bccd_planted_issues_found() -> None:
    ds = io.read_voc(shared_path("bccd", "annotations"))
    a = ds.annotations
    assert a.box is not None
    box = a.box.copy()
    box[10] = [box[10, 0], box[10, 1], box[10, 0], box[10, 3]]           # zero area
    box[20, 2] = ds.images.width[a.image[20]] + 50                          # out of bounds
    box[30] = box[31]                                                        # duplicate or conflict of 31
    ds2 = ds.replace(annotations=a.with_columns(box=box))
    issues = check(ds2)
    assert 10 in _found(issues, "zero_area_box")
    assert 20 in _found(issues, "box_out_of_bounds")
    pair = ("duplicate_box" if a.label[30] == a.label[31] else "class_conflict")
    sel = issues.of_type(pair)
    assert (30, 31) in {(int(x), int(y)) for x, y in zip(sel.other, sel.annotation, strict=True)}


def test_issues_table_api() -> None:
    issues = check(_planted())
    d = issues.to_dict(limit=3)
    assert d["n_issues"] == len(issues) and len(d["issues"]) == 3
    json.dumps(d)
    df = issues.to_pandas()
    assert list(df.columns)[:3] == ["image", "annotation", "other"] and len(df) == len(issues)
    assert sum(issues.counts().values()) == len(issues)
    with pytest.raises(ValueError, match="score"):
        QualityIssues(
            image=np.zeros(1, np.int64), annotation=np.zeros(1, np.int64), other=np.zeros(1, np.int64),
            type=obj_array(["x"]), severity=obj_array(["warning"]), score=np.array([2.0]),
            reason=obj_array([""]), suggestion=obj_array([""]))
    with pytest.raises(ValueError, match="families"):
        CheckConfig(families=("nope",))


def test_row_order_does_not_change_findings() -> None:
    ds = _planted()
    cfg = CheckConfig(exclusive_attributes=(("occluded", "truncated"),))
    perm = np.random.default_rng(0).permutation(ds.n_annotations)
    shuffled = ds.replace(annotations=ds.annotations.take(perm))
    base = check(ds, config=cfg)
    moved = check(shuffled, config=cfg)

    def key(q: QualityIssues, rows: np.ndarray) -> set[tuple[str, int, int]]:
        def back(r: int) -> int:
            return -1 if r < 0 else int(rows[r])
        return {(t, back(a), back(o)) if back(a) > back(o) or o < 0 else (t, back(o), back(a))
                for t, a, o in zip(q.type.tolist(), q.annotation.tolist(), q.other.tolist(), strict=True)}

    assert key(base, np.arange(ds.n_annotations)) == key(moved, perm)
