"""Consensus scoring of oriented boxes (iou_type="obb"): planted errors found with their type, the model's oriented box
as the fix (ISSUES.json, review apply, the HTML crop), auto-detection, and the dense scenes where extents mislead."""

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
from maslow.core.obb import corners_from_xywhr, oriented_corners, quad_areas, xywhr_from_corners
from maslow.core.polygons import Polygons
from maslow.core.schema import Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError
from maslow.io.dota import parse as parse_dota
from maslow.quality import find_label_issues
from maslow.quality.consensus import object_scores, resolve_iou_type
from maslow.quality.records import issue_records
from maslow.quality.review import Decision, apply_decisions
from maslow.sample import oriented, oriented_predictions


def _with_quads(ds: Dataset, quads: np.ndarray, **cols: object) -> Dataset:
    """``ds`` with its oriented boxes replaced by ``quads`` (n, 4, 2) (and other columns)."""
    a = ds.annotations
    return ds.replace(annotations=a.with_columns(polygon=Polygons.from_rows([[q.ravel()] for q in quads]),
                                                 box=np.c_[quads.min(axis=1), quads.max(axis=1)], **cols))


@dataclasses.dataclass(frozen=True)
class Planted:
    clean: Dataset
    pred: Dataset
    noisy: Dataset
    swap: int  # truth rows of the planted errors
    turn: int
    shift: int
    spurious: int
    dropped: np.ndarray  # (4, 2) the dropped object's corners
    dropped_image: int
    swapped_from: int  # the class the swapped object really is


def _planted() -> Planted:
    """A clean oriented scene, a sharp simulated model, and a truth with one error of each kind planted: a swapped
    class, a dropped box, a spurious box, a ship turned by 30 degrees, a box shifted by half its width."""
    clean = oriented(60, seed=5)
    pred = oriented_predictions(clean, seed=6, jitter=0.01, angle_jitter=0.01, p_miss=0.0, p_swap=0.0,
                                fp_per_image=0.0)
    a = clean.annotations
    q = oriented_corners(a, np.arange(len(a)))
    ships = np.flatnonzero(a.label == 1)
    planes = np.flatnonzero(a.label == 0)
    swap, turn, shift, drop = int(planes[0]), int(ships[0]), int(ships[1]), int(planes[1])
    label = a.label.copy()
    label[swap] = 2
    b = xywhr_from_corners(q[[turn, shift]])
    b[0, 4] += np.deg2rad(30)
    b[1, :2] += 0.5 * b[1, 3] * np.array([-np.sin(b[1, 4]), np.cos(b[1, 4])])  # across the ship by half its width
    q[[turn, shift]] = corners_from_xywhr(b)
    noisy = _with_quads(clean, q, label=label)
    spur_img = int(a.image[-1])
    spurious = corners_from_xywhr([[40.0, 470.0, 60.0, 20.0, 0.3]])
    both = noisy.replace(annotations=Annotations.sort_rows(
        image=np.r_[np.delete(a.image, drop), spur_img], label=np.r_[np.delete(label, drop), 0],
        box=np.r_[np.delete(noisy.annotations.box, drop, axis=0), np.c_[spurious.min(1), spurious.max(1)]],
        polygon=Polygons.from_rows([[x.ravel()] for x in np.r_[np.delete(q, drop, axis=0), spurious]])))
    new_row = {r: r - (r > drop) for r in (swap, turn, shift)}
    # the spurious box comes last of its image's rows (sort_rows is stable)
    spur_row = int(np.flatnonzero(both.annotations.image == spur_img)[-1])
    return Planted(clean=clean, pred=pred, noisy=both, swap=new_row[swap], turn=new_row[turn], shift=new_row[shift],
                   spurious=spur_row, dropped=q[drop], dropped_image=int(a.image[drop]), swapped_from=int(a.label[swap]))


@pytest.fixture(scope="module")
def planted() -> Planted:
    return _planted()


def _pred_corners(pred: Dataset) -> np.ndarray:
    return oriented_corners(pred.annotations, np.arange(pred.n_annotations))


def test_auto_picks_obb_for_oriented_boxes_only(planted: Planted) -> None:
    noisy, pred = planted.noisy, planted.pred
    assert resolve_iou_type(noisy, pred) == "obb"
    # the same quadrilaterals in an instance-segmentation truth are segments, not oriented boxes
    seg = noisy.replace(schema=dataclasses.replace(noisy.schema, tasks=(Task.INSTANCE_SEGMENTATION, Task.DETECTION)))
    assert resolve_iou_type(seg, pred) != "obb"
    # predictions of axis-aligned boxes only: compared as boxes
    boxes = pred.replace(annotations=pred.annotations.with_columns(polygon=None))
    assert resolve_iou_type(noisy, boxes) == "bbox"
    with pytest.raises(InvalidDatasetError, match="'obb'"):
        resolve_iou_type(noisy, pred, "rotated")


def test_planted_errors_found_with_their_type(planted: Planted) -> None:
    noisy, pred = planted.noisy, planted.pred
    issues = find_label_issues(noisy, pred, iou_type="obb")
    by_row = {int(r): (str(t), float(s)) for r, t, s in zip(issues.annotation, issues.type, issues.score, strict=True)
              if r >= 0}
    assert by_row[planted.swap][0] == "wrong_class"
    assert by_row[planted.turn][0] == "low_iou"
    assert by_row[planted.shift][0] == "low_iou"
    assert by_row[planted.spurious][0] == "extra"
    wc = issues.of_type("wrong_class")
    assert wc.annotation[0] == planted.swap
    assert noisy.schema.names[int(wc.label[0])] == noisy.schema.names[planted.swapped_from]
    # the planted errors rank first among the findings of their type
    low = issues.of_type("low_iou")
    assert set(low.annotation[:2].tolist()) == {planted.turn, planted.shift}
    assert issues.of_type("extra").annotation[0] == planted.spurious
    miss = issues.of_type("missing")
    assert len(miss) and miss.image[0] == planted.dropped_image
    # the missing object's suggestion is the model's oriented box of the dropped object, not an axis-aligned box
    assert np.abs(miss.polygon[0] - planted.dropped).max() < 3.0
    pc = _pred_corners(pred)
    on_image = np.flatnonzero(pred.annotations.image == planted.dropped_image)
    assert any(np.array_equal(miss.polygon[0], pc[r]) for r in on_image)


def test_low_iou_suggests_the_models_oriented_box(planted: Planted) -> None:
    noisy, pred = planted.noisy, planted.pred
    s = object_scores(noisy, pred, iou_type="obb")
    turn = planted.turn
    assert s.iou_type == "obb" and s.pred_corners is not None
    p = int(s.suggested_pred[turn])
    assert p >= 0
    issues = find_label_issues(noisy, pred, iou_type="obb")
    row = int(np.flatnonzero(issues.annotation == turn)[0])
    np.testing.assert_array_equal(issues.polygon[row], _pred_corners(pred)[p])
    np.testing.assert_array_equal(issues.box[row], np.r_[issues.polygon[row].min(0), issues.polygon[row].max(0)])
    assert "oriented box" in str(issues.suggestion[row])


def test_review_apply_writes_the_models_oriented_box(planted: Planted, tmp_path: Path) -> None:
    noisy, pred = planted.noisy, planted.pred
    findings = json.loads(json.dumps(issue_records(find_label_issues(noisy, pred, iou_type="obb"), noisy)))
    turn = planted.turn
    f_low = next(f for f in findings if f["annotation_row"] == turn)
    f_miss = next(f for f in findings if f["type"] == "missing")
    assert f_low["type"] == "low_iou" and len(f_low["suggestion"]["polygon"][0]) == 8
    assert all("polygon" not in f["suggestion"] for f in findings if f["type"] in ("wrong_class", "extra"))
    result = apply_decisions(noisy, findings, {f_low["rank"]: Decision("accepted"),
                                               f_miss["rank"]: Decision("accepted")})
    assert [c.action for c in result.changes] == (["move_polygon", "add"] if f_low["rank"] < f_miss["rank"]
                                                 else ["add", "move_polygon"])
    fixed = result.dataset
    model = np.asarray(f_low["suggestion"]["polygon"][0]).reshape(4, 2)
    got = oriented_corners(fixed.annotations, np.array([turn]))[0]
    np.testing.assert_allclose(got, model)
    assert fixed.annotations.box is not None
    np.testing.assert_allclose(fixed.annotations.box[turn], np.r_[model.min(0), model.max(0)])
    added = next(c.new_row for c in result.changes if c.action == "add")
    assert added is not None
    np.testing.assert_allclose(oriented_corners(fixed.annotations, np.array([added]))[0],
                               np.asarray(f_miss["suggestion"]["polygon"][0]).reshape(4, 2))
    # written as DOTA and read back: the oriented boxes, not their extents
    io.write_dota(fixed, tmp_path / "dota")
    back, _ = parse_dota(tmp_path / "dota")  # no image files: read without the warning that says so
    quads = oriented_corners(back.annotations, np.arange(back.n_annotations))
    assert np.abs(quads - model).max(axis=(1, 2)).min() < 0.01
    before = oriented_corners(noisy.annotations, np.array([turn]))[0]
    assert np.abs(quads - before).max(axis=(1, 2)).min() > 1.0  # the turned box is gone


def _row_scene(n_images: int = 12, k: int = 6, gap: float = 1.3) -> np.ndarray:
    """Rows of ``k`` ships (100 x 20 px) moored side by side at about 45 degrees, ``gap`` widths apart: their
    extents overlap their neighbours' by IoU 0.45 and more, their oriented boxes not at all. (n, 7) image, label,
    xywhr."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_images):
        r = np.pi / 4 + rng.uniform(-0.2, 0.2)
        v = np.array([-np.sin(r), np.cos(r)])
        for j in range(k):
            c = 256.0 + v * (j - (k - 1) / 2) * gap * 20
            rows.append([i, 1, c[0], c[1], 100.0, 20.0, r])
    return np.asarray(rows)


def _scene_dataset(rows: np.ndarray, score: np.ndarray | None = None) -> Dataset:
    q = corners_from_xywhr(rows[:, 2:])
    n = int(rows[:, 0].max()) + 1
    return oriented(0).replace(
        images=Images(path=obj_array([f"i{j}.png" for j in range(n)]), width=np.full(n, 512), height=np.full(n, 512)),
        annotations=Annotations(image=rows[:, 0].astype(np.int64), label=rows[:, 1].astype(np.int64),
                                box=np.c_[q.min(1), q.max(1)], polygon=Polygons.from_rows([[x.ravel()] for x in q]),
                                score=score))


def test_dropped_ship_among_neighbours_is_missing_only_by_oriented_iou() -> None:
    rows = _row_scene()
    pred = _scene_dataset(rows, score=np.random.default_rng(1).uniform(0.7, 0.99, len(rows)))
    truth = _scene_dataset(np.delete(rows, 3, axis=0))
    obb = object_scores(truth, pred, iou_type="obb")
    box = object_scores(truth, pred, iou_type="bbox")
    assert obb.missing[3] > 0.9  # nothing labelled where the model sees a ship
    assert box.missing[3] < 0.3  # the neighbours' extents explain it
    assert np.delete(obb.missing, 3).max() == 0.0


def test_bow_tie_truth_is_not_scored_and_a_bad_prediction_is_named(planted: Planted) -> None:
    noisy, pred = planted.noisy, planted.pred
    q = oriented_corners(noisy.annotations, np.arange(noisy.n_annotations))
    q[0] = q[0, [0, 2, 1, 3]]  # corners out of order
    bad = _with_quads(noisy, q)
    s = object_scores(bad, pred, iou_type="obb")  # scored, the bow tie left out (maslow check reports it)
    assert all(v[0] == 0.0 for v in s.annotation.values())
    pq = _pred_corners(pred)
    pq[4] = pq[4, [0, 2, 1, 3]]
    with pytest.raises(InvalidDatasetError, match=r"pred\.annotations\.polygon row 4"):
        object_scores(noisy, _with_quads(pred, pq), iou_type="obb")


def test_html_crop_draws_the_oriented_boxes(tmp_path: Path) -> None:
    from PIL import Image

    from maslow.quality.consensus_report import SUGGESTED_COLOUR, crop_png

    img = Image.new("RGB", (200, 200))
    img.save(tmp_path / "a.png")
    ds = Dataset(schema=oriented(0).schema, images=Images(path=obj_array(["a.png"]), width=np.array([200]), height=np.array([200])),
                 annotations=Annotations(image=np.zeros(0, np.int64), label=np.zeros(0, np.int64), box=np.zeros((0, 4))),
                 root=tmp_path)
    quad = corners_from_xywhr([[100.0, 100.0, 120.0, 20.0, np.pi / 4]])[0]
    png = crop_png(ds, 0, [(np.full(4, np.nan), SUGGESTED_COLOUR)], 200, rings=[(quad, SUGGESTED_COLOUR)])
    assert png is not None
    import base64
    import io as bio

    out = np.asarray(Image.open(bio.BytesIO(base64.b64decode(png))).convert("RGB")).astype(int)
    # the crop spans the quad's extent and a pad of half of it on each side: map its corners and an edge midpoint
    lo, hi = quad.min(0), quad.max(0)
    pad = 0.5 * (hi - lo).max()
    left, top = max(int(lo[0] - pad), 0), max(int(lo[1] - pad), 0)
    scale = out.shape[1] / (min(int(hi[0] + pad) + 1, 200) - left)
    mid = ((quad[0] + quad[1]) / 2 - [left, top]) * scale
    corner = (np.array([lo[0], lo[1]]) - [left, top]) * scale  # the extent's corner: off the turned box
    drawn = (np.abs(out - np.array(SUGGESTED_COLOUR)).sum(axis=2) < 60)
    near = drawn[int(mid[1]) - 2:int(mid[1]) + 3, int(mid[0]) - 2:int(mid[0]) + 3]
    assert near.any()
    assert not drawn[int(corner[1]) - 1:int(corner[1]) + 2, int(corner[0]) - 1:int(corner[0]) + 2].any()


def test_qa_cli_iou_type_obb(planted: Planted, tmp_path: Path) -> None:
    noisy, pred = planted.noisy, planted.pred
    io.write_dota(noisy, tmp_path / "gt")
    io.write_dota_results(pred, tmp_path / "results")
    res = CliRunner().invoke(app, ["qa", "--gt", str(tmp_path / "gt"), "--from", "dota", "--pred",
                                   str(tmp_path / "results"), "--pred-format", "dota-results", "--out",
                                   str(tmp_path / "issues.json"), "--json", "--rules"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert out["iou_type"] == "obb"
    findings = json.loads((tmp_path / "issues.json").read_text())
    low = [f for f in findings if f["type"] == "low_iou"]
    assert low and all(len(f["suggestion"]["polygon"]) == 1 and len(f["suggestion"]["polygon"][0]) == 8 for f in low)
    forced = CliRunner().invoke(app, ["qa", "--gt", str(tmp_path / "gt"), "--from", "dota", "--pred",
                                      str(tmp_path / "results"), "--pred-format", "dota-results", "--out",
                                      str(tmp_path / "box.json"), "--json", "--iou-type", "bbox"])
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout[forced.stdout.index("{"):])["iou_type"] == "bbox"
    assert all("polygon" not in (f["suggestion"] or {}) for f in json.loads((tmp_path / "box.json").read_text()))


def test_a_part_scored_with_the_whole_as_reference_gives_the_whole_runs_rows(planted: Planted) -> None:
    noisy, pred = planted.noisy, planted.pred
    whole = object_scores(noisy, pred, iou_type="obb")
    keep = noisy.images.path[:30]
    part = object_scores(noisy.select_images(np.isin(noisy.images.path, keep)),
                         pred.select_images(np.isin(pred.images.path, keep)), iou_type="obb",
                         reference=(noisy, pred))
    rows = np.flatnonzero(np.isin(noisy.annotations.image, np.arange(30)))
    for t, v in whole.annotation.items():
        np.testing.assert_allclose(part.annotation[t], v[rows], err_msg=t)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_oriented_overlaps_equal_every_pair_of_an_image(seed: int) -> None:
    # the pairs come from a sweep over the boxes' extents: exactly the all-pairs ones with an oriented IoU > 0, in
    # (prediction, truth) order
    from maslow.metrics import _obb
    from maslow.quality._consensus_obb import obb_objects

    truth = oriented(40, seed=seed)
    pred = oriented_predictions(truth, seed=seed + 10, jitter=0.2, angle_jitter=0.3, p_miss=0.1, p_swap=0.1,
                                fp_per_image=3.0)
    _, ov, _ = obb_objects(truth, pred)
    ta, pa = truth.annotations, pred.annotations
    tq = oriented_corners(ta, np.arange(len(ta)))
    pq = oriented_corners(pa, np.arange(len(pa)))
    p_idx, t_idx = (np.asarray(x, np.int64) for x in zip(*[(p, t) for p in range(len(pa)) for t in range(len(ta))
                                                           if pa.image[p] == ta.image[t]], strict=True))
    iou = _obb.iou_pairs(pq, tq, quad_areas(pq), quad_areas(tq), p_idx, t_idx, np.zeros(len(ta), bool))
    pos = iou > 0
    assert pos.sum() > len(ta)  # overlaps beyond one per object: the sweep has pairs to find
    np.testing.assert_array_equal(ov.p_idx, p_idx[pos])
    np.testing.assert_array_equal(ov.t_idx, t_idx[pos])
    np.testing.assert_allclose(ov.iou, iou[pos], rtol=1e-12)
