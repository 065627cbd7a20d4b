"""The fast paths of a COCO evaluation from files: a results list read a chunk at a time, and light imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.errors import FormatError
from maslow.io.coco import read_coco, write_coco
from maslow.io.coco_results import read_coco_predictions
from maslow.metrics import coco_map, coco_matches
from maslow.sample import shapes
from tests.metrics.cocodata import check, random_segm_case


def _truth(tmp: Path) -> Any:
    write_coco(shapes(6, seed=3), tmp / "truth.json")
    return read_coco(tmp / "truth.json")


def _records(truth: Any, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """n scored boxes on the truth's images, with extras that look like record boundaries inside strings and
    nested values (``},{`` and ``}]``)."""
    rng = np.random.default_rng(seed)
    img_ids = truth.images.extra["coco_id"].tolist()
    cat_ids = [c.id for c in truth.schema.classes]
    out = []
    for i in range(n):
        x, y = (round(float(v), 2) for v in rng.uniform(0, 40, 2))
        w, h = (round(float(v), 2) for v in rng.uniform(2, 30, 2))
        rec: dict[str, Any] = {"image_id": img_ids[i % len(img_ids)], "category_id": cat_ids[i % len(cat_ids)],
                               "bbox": [x, y, w, h], "score": round(float(rng.random()), 3)}
        if i % 97 == 0:
            rec["note"] = 'a "},{" and "}]" inside a string'
        if i % 89 == 0:
            rec["attributes"] = {"parts": [{"k": 1}, {"k": 2}]}
        out.append(rec)
    return out


def test_a_results_list_read_in_chunks_equals_the_whole_file_read(tmp_path: Path) -> None:
    truth = _truth(tmp_path)
    recs = _records(truth, 40_000)  # about 3.5 MB: several 1 MB chunks
    (tmp_path / "list.json").write_text(json.dumps(recs, indent=1))  # newlines and indents between records
    (tmp_path / "whole.json").write_text(json.dumps({"annotations": recs}))  # a COCO object: parsed whole
    a = read_coco_predictions(tmp_path / "list.json", like=truth)
    b = read_coco_predictions(tmp_path / "whole.json", like=truth)
    assert a.n_annotations == b.n_annotations == 40_000
    for name in ("image", "label", "box", "score"):
        assert np.array_equal(getattr(a.annotations, name), getattr(b.annotations, name)), name
    assert a.annotations.extra["note"].tolist() == b.annotations.extra["note"].tolist()
    assert sum(v is not None for v in a.annotations.extra["note"].tolist()) == len(range(0, 40_000, 97))
    assert a.annotations.attributes["parts"].tolist() == b.annotations.attributes["parts"].tolist()
    ra, rb = coco_map(truth, a), coco_map(truth, b)
    assert np.array_equal(ra.precision, rb.precision) and np.array_equal(ra.stats, rb.stats, equal_nan=True)


def test_a_bad_record_after_the_first_chunk_is_named(tmp_path: Path) -> None:
    truth = _truth(tmp_path)
    recs: list[Any] = _records(truth, 30_000)
    recs[25_000] = 7
    (tmp_path / "bad.json").write_text(json.dumps(recs))
    with pytest.raises(FormatError, match=r"\[25000\].*must be an object, got int"):
        read_coco_predictions(tmp_path / "bad.json", like=truth)


@pytest.mark.parametrize("text", ['[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5},]',
                                  '[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}',
                                  '[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}] ]'])
def test_malformed_results_lists_raise(tmp_path: Path, text: str) -> None:
    truth = _truth(tmp_path)
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(FormatError, match="malformed JSON"):
        read_coco_predictions(tmp_path / "bad.json", like=truth)


def test_empty_results_list(tmp_path: Path) -> None:
    truth = _truth(tmp_path)
    (tmp_path / "empty.json").write_text(" [ ] \n")
    assert read_coco_predictions(tmp_path / "empty.json", like=truth).n_annotations == 0


def test_match_table_iou_of_truth_objects_is_their_partners(tmp_path: Path) -> None:
    truth = _truth(tmp_path)
    rng = np.random.default_rng(1)
    a = truth.annotations
    img_ids, cat_ids = truth.images.extra["coco_id"], [c.id for c in truth.schema.classes]
    recs = []
    for _ in range(3):  # three jittered copies of every truth box: matches, duplicates and misses
        xyxy = a.box + rng.normal(0, 2, a.box.shape)
        for r in range(len(a)):
            x1, y1, x2, y2 = (round(float(v), 2) for v in xyxy[r])
            recs.append({"image_id": int(img_ids[a.image[r]]), "category_id": cat_ids[a.label[r]],
                         "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)], "score": round(float(rng.random()), 3)})
    (tmp_path / "list.json").write_text(json.dumps(recs))
    pred = read_coco_predictions(tmp_path / "list.json", like=truth)
    table = coco_matches(truth, pred, iou_type="bbox")
    matched = table.truth_match >= 0
    assert matched.any()
    rows, t = np.nonzero(matched)
    partner = table.truth_match[rows, t]
    # a truth object's IoU is the one its partner records for it (crowd regions aside: none in shapes)
    assert np.array_equal(table.truth_iou[rows, t], table.pred_iou[partner, t])
    assert np.isnan(table.truth_iou[~matched]).all()


def test_importing_metrics_loads_only_what_is_used() -> None:
    code = ("import sys, maslow.metrics as m; before = set(sys.modules); m.coco_map; "
            "print('maslow.metrics.plots' in before, 'maslow.metrics.coco' in before, "
            "'maslow.metrics.coco' in sys.modules, 'semantic_scores' in dir(m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True", "True"]
    import maslow.metrics as m

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m.nope  # noqa: B018


@pytest.mark.parametrize("seed", range(3))
def test_class_agnostic_segm_equals_pycocotools(seed: int) -> None:
    # mask IoUs are computed per image (all predictions against all truth objects) and read per group
    check(*random_segm_case(seed), "segm", use_cats=False)


@pytest.mark.parametrize("block", [1, 3, 7])
def test_segm_predictions_made_a_block_at_a_time_equal_pycocotools(monkeypatch: pytest.MonkeyPatch,
                                                                    block: int) -> None:
    """Prediction masks are decoded PRED_BLOCK at a time (pairs cut at block bounds): same numbers, both area
    rules, class-agnostic too, and the match table's IoUs."""
    import maslow.metrics._iou as iou_mod
    from tests.metrics.cocodata import datasets

    whole = {seed: coco_matches(*datasets(*random_segm_case(seed)), iou_type="segm") for seed in range(3)}
    monkeypatch.setattr(iou_mod, "PRED_BLOCK", block)
    for seed in range(3):
        case = random_segm_case(seed)
        check(*case, "segm")
        check(*case, "segm", use_cats=False)
        check(*random_segm_case(seed, bbox_in_results=True), "segm", pred_area="box")
        table = coco_matches(*datasets(*case), iou_type="segm")
        for name in ("pred_match", "pred_iou", "truth_match", "truth_iou"):
            np.testing.assert_array_equal(getattr(table, name), getattr(whole[seed], name), err_msg=name)


def test_segm_blocks_name_the_first_bad_prediction(monkeypatch: pytest.MonkeyPatch) -> None:
    import maslow.metrics._iou as iou_mod
    from maslow.errors import InvalidDatasetError
    from tests.metrics.cocodata import datasets

    truth, pred = datasets(*random_segm_case(1))
    masks = pred.annotations.mask.copy()
    bad = [5, len(masks) - 2]  # in the first block and in a later one
    masks[bad] = None
    pred = pred.replace(annotations=pred.annotations.with_columns(mask=masks))
    for block in (4096, 4):
        monkeypatch.setattr(iou_mod, "PRED_BLOCK", block)
        with pytest.raises(InvalidDatasetError, match=rf"pred\.annotations row {bad[0]}: iou_type 'segm' needs"):
            coco_map(truth, pred, iou_type="segm")
