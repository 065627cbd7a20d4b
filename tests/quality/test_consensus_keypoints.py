"""Consensus scoring of keypoints (``iou_type="keypoints"``): OKS as pycocotools computes it, planted keypoint
errors (moved keypoints, a swapped left/right pair, a dropped and a spurious object) ranked near the top, invariance
to squeezed confidences, ``auto``, unlabelled objects not scored, bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError, KeypointSigmasError
from maslow.metrics._iou import COCO_KEYPOINT_SIGMAS
from maslow.quality import find_label_issues
from maslow.quality._consensus_kp import extent_boxes, keypoint_overlaps
from maslow.quality.consensus import ObjectScores, object_scores, resolve_iou_type
from maslow.sample import shapes, write_shapes

COCO_KP = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
           "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
           "right_knee", "left_ankle", "right_ankle")
#: a standing person of unit height: (x, y) of the 17 COCO keypoints from the top centre
PERSON = np.array([[0, .06], [.03, .04], [-.03, .04], [.06, .05], [-.06, .05], [.12, .2], [-.12, .2], [.2, .36],
                   [-.2, .36], [.24, .5], [-.24, .5], [.09, .52], [-.09, .52], [.1, .74], [-.1, .74], [.1, .96],
                   [-.1, .96]])
TRIANGLE_SIGMAS = [0.08, 0.08, 0.08]
LEFT_WRIST, RIGHT_WRIST = COCO_KP.index("left_wrist"), COCO_KP.index("right_wrist")


def persons(n_images: int = 150, seed: int = 0) -> Dataset:
    """People with the 17 COCO keypoints (about 10% of them unlabelled, v = 0), 1 to 3 per 640x480 image (none on
    every 7th)."""
    rng = np.random.default_rng(seed)
    img, box, kps = [], [], []
    for i in range(n_images):
        for _ in range(int(rng.integers(1, 4)) if i % 7 else 0):  # every 7th image empty
            h = rng.uniform(80, 300)
            cx, top = rng.uniform(h * .3, 640 - h * .3), rng.uniform(0, 480 - h)
            pts = PERSON * h + [cx, top] + rng.normal(0, .02 * h, PERSON.shape)
            v = np.where(rng.random(17) < .1, 0.0, 2.0)
            kp = np.c_[pts, v]
            kp[v == 0, :2] = 0.0
            img.append(i)
            box.append([*(pts.min(0) - .05 * h), *(pts.max(0) + .05 * h)])
            kps.append(kp)
    n = len(img)
    schema = LabelSchema(classes=(ClassDef("person", keypoints=COCO_KP, id=1),), tasks=(Task.KEYPOINTS,))
    ann = Annotations(image=np.asarray(img), label=np.zeros(n, np.int64), box=np.asarray(box),
                      keypoints=np.asarray(kps), extra={"coco_id": np.arange(1, n + 1)})
    images = Images(path=obj_array([f"images/p{i:04d}.png" for i in range(n_images)]),
                    width=np.full(n_images, 640), height=np.full(n_images, 480))
    return Dataset(schema=schema, images=images, annotations=ann)


def triangles(n_images: int = 400, seed: int = 1) -> Dataset:
    """The shapes sample's triangles (3 keypoints: top, left, right), as a keypoints truth."""
    ds = shapes(n_images, seed=seed)
    a = ds.annotations
    assert a.iscrowd is not None
    ds = ds.select((a.label == 2) & ~a.iscrowd)
    return ds.replace(schema=dataclasses.replace(ds.schema, tasks=(Task.KEYPOINTS,)))


def simulate(clean: Dataset, sigmas: np.ndarray, seed: int = 1, p_miss: float = 0.01,
             fp_per_image: float = 0.2) -> tuple[Dataset, np.ndarray]:
    """A decent keypoint model: each keypoint off by noise of its sigma's size, a few weak detections, misses and
    false alarms (scored low), keypoints only (the box is their extent, as a keypoints results file reads).
    Returns the predictions and the truth row each comes from (-1: a false alarm)."""
    rng = np.random.default_rng(seed)
    a = clean.annotations
    assert a.keypoints is not None and a.box is not None
    n, k = a.keypoints.shape[:2]
    size = np.sqrt((a.box[:, 2] - a.box[:, 0]) * (a.box[:, 3] - a.box[:, 1]))
    kp = a.keypoints.copy()
    kp[:, :, :2] += rng.normal(0, 1, (n, k, 2)) * (size[:, None] * sigmas[None, :])[:, :, None]
    hidden = a.keypoints[:, :, 2] == 0
    kp[hidden, :2] = kp[:, :1, :2].repeat(k, 1)[hidden] + rng.normal(0, 5, (int(hidden.sum()), 2))
    kp[:, :, 2] = 1.0
    found = rng.random(n) >= p_miss
    score = rng.uniform(.5, .99, n)
    weak = rng.random(n) < .03
    score[weak] = rng.uniform(.2, .45, int(weak.sum()))
    n_fp = rng.poisson(fp_per_image * clean.n_images)
    fi = rng.integers(0, clean.n_images, n_fp)
    fh = rng.uniform(30, 120, n_fp)
    shape = PERSON if k == 17 else np.array([[0, 0], [-.5, 1], [.5, 1]])
    corner = np.c_[rng.uniform(fh * .5, clean.images.width[fi] - fh * .5), rng.uniform(0, clean.images.height[fi] - fh)]
    fkp = np.concatenate([shape[None] * fh[:, None, None] + corner[:, None, :], np.ones((n_fp, k, 1))], 2)
    kps = np.r_[kp[found], fkp]
    ext = np.stack([kps[:, :, 0].min(1), kps[:, :, 1].min(1), kps[:, :, 0].max(1), kps[:, :, 1].max(1)], 1)
    src = np.r_[np.flatnonzero(found), np.full(n_fp, -1)]
    image = np.r_[a.image[found], fi]
    order = np.argsort(image, kind="stable")
    ann = Annotations(image=image[order], label=np.r_[a.label[found], np.full(n_fp, int(a.label[0]))][order],
                      box=ext[order], keypoints=kps[order],
                      score=np.r_[score[found], rng.uniform(.02, .3, n_fp)][order], source="model")
    return clean.replace(annotations=ann), src[order]


def plant(clean: Dataset, n_moved: int, n_swapped: int, n_dropped: int, n_spurious: int, *, n_off: int,
          swap: tuple[int, int], seed: int = 5) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """Move ``n_off`` labelled keypoints of some objects far, swap the pair ``swap`` of others, drop some objects
    and add spurious ones on images without any. Returns the noisy truth, the kind of each of its rows (0 clean,
    1 moved, 2 swapped, 3 spurious) and the dropped rows of ``clean``."""
    rng = np.random.default_rng(seed)
    a = clean.annotations
    assert a.keypoints is not None and a.box is not None
    n = len(a)
    kp = a.keypoints.copy()
    both = np.flatnonzero((kp[:, swap[0], 2] > 0) & (kp[:, swap[1], 2] > 0))
    order = rng.permutation(both)
    moved, swapped = order[:n_moved], order[n_moved:n_moved + n_swapped]
    dropped = order[n_moved + n_swapped:n_moved + n_swapped + n_dropped]
    for r in moved:
        side = max(a.box[r, 2] - a.box[r, 0], a.box[r, 3] - a.box[r, 1])
        js = rng.choice(np.flatnonzero(kp[r, :, 2] > 0), n_off, replace=False)
        kp[r, js, :2] += rng.choice([-1.0, 1.0], (n_off, 2)) * rng.uniform(.35, .5, (n_off, 2)) * side
    for r in swapped:
        kp[r, list(swap)] = kp[r, list(swap[::-1])]
    kind = np.zeros(n, np.int64)
    kind[moved], kind[swapped] = 1, 2
    keep = np.ones(n, bool)
    keep[dropped] = False
    empty = np.setdiff1d(np.arange(clean.n_images), a.image)[:n_spurious]
    template = np.flatnonzero(keep & (kind == 0))[:len(empty)]
    ann = Annotations.sort_rows(image=np.r_[a.image[keep], empty], label=np.r_[a.label[keep], a.label[template]],
                                box=np.r_[a.box[keep], a.box[template]], keypoints=np.r_[kp[keep], kp[template]],
                                extra={"kind": np.r_[kind[keep], np.full(len(empty), 3)]})
    noisy = clean.replace(annotations=ann)
    return noisy, np.asarray(noisy.annotations.extra["kind"]), dropped


def _aps(kind: np.ndarray, src: np.ndarray, dropped: np.ndarray, s: ObjectScores) -> dict[str, float]:
    """Average precision of the planted errors against the clean objects, by the score of the type that should
    find them (as the benchmark measures boxes): moved and swapped keypoints by ``low_iou``, spurious objects by
    ``extra`` (truth rows), dropped objects by their predictions' ``missing`` score."""
    out = {}
    for name, t, kinds in (("keypoints", "low_iou", (1, 2)), ("extra", "extra", (3,))):
        sel = np.isin(kind, (0, *kinds))
        out[name] = float(average_precision_score(np.isin(kind[sel], kinds), s.annotation[t][sel]))
    out["missing"] = float(average_precision_score(np.isin(src, dropped), s.missing))
    return out


def test_oks_pairs_equal_pycocotools_compute_oks() -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truth = persons(3, seed=7)
    a = truth.annotations
    assert a.keypoints is not None and a.box is not None
    kp = a.keypoints.copy()
    kp[1, :, 2] = 0  # no labelled keypoint: computeOks' distances to twice the box
    area = np.where(np.arange(len(a)) % 2 == 0, np.nan, 3000.0)  # COCO's area where given, else w * h
    truth = truth.replace(annotations=a.with_columns(keypoints=kp, extra={"coco_id": a.extra["coco_id"],
                                                                          "area": area}))
    pred, _ = simulate(truth, COCO_KEYPOINT_SIGMAS, seed=3, fp_per_image=1.0)
    ov = keypoint_overlaps(truth, pred, COCO_KEYPOINT_SIGMAS)
    ours = {(int(p), int(t)): v for p, t, v in zip(ov.p_idx, ov.t_idx, ov.iou, strict=True)}
    a, pa = truth.annotations, pred.annotations
    assert a.box is not None and pa.keypoints is not None and pa.score is not None
    xywh = np.c_[a.box[:, :2], a.box[:, 2:] - a.box[:, :2]]
    gt = {"images": [{"id": i + 1, "width": 640, "height": 480} for i in range(truth.n_images)],
          "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_KP)}],
          "annotations": [{"id": r + 1, "image_id": int(a.image[r]) + 1, "category_id": 1, "iscrowd": 0,
                           "bbox": xywh[r].tolist(),
                           "area": float(area[r]) if np.isfinite(area[r]) else float(xywh[r, 2] * xywh[r, 3]),
                           "keypoints": kp[r].ravel().tolist(), "num_keypoints": int((kp[r, :, 2] > 0).sum())}
                          for r in range(len(a))]}
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    res = coco.loadRes([{"image_id": int(pa.image[r]) + 1, "category_id": 1, "score": float(pa.score[r]),
                         "keypoints": pa.keypoints[r].ravel().tolist()} for r in range(len(pa))])
    ev = COCOeval(coco, res, "keypoints")
    ev.params.kpt_oks_sigmas = COCO_KEYPOINT_SIGMAS
    ev.evaluate()
    n_pairs = 0
    for i in range(truth.n_images):
        t_rows = np.flatnonzero(a.image == i)
        p_rows = np.flatnonzero(pa.image == i)
        p_rows = p_rows[np.argsort(-pa.score[p_rows], kind="mergesort")]
        ref = np.asarray(ev.ious[(i + 1, 1)])
        if not len(t_rows) or not len(p_rows):
            continue
        for di, p in enumerate(p_rows.tolist()):
            for gi, t in enumerate(t_rows.tolist()):
                assert ours.get((p, t), 0.0) == ref[di, gi], (p, t)
                n_pairs += 1
    assert n_pairs >= 10 and ov.scored.tolist() == [r != 1 for r in range(len(a))]


def test_planted_keypoint_errors_rank_near_the_top() -> None:
    clean = persons(150)
    pred, src = simulate(clean, COCO_KEYPOINT_SIGMAS)
    noisy, kind, dropped = plant(clean, 10, 6, 6, 6, n_off=3, swap=(LEFT_WRIST, RIGHT_WRIST))
    issues = find_label_issues(noisy, pred)  # auto: a keypoints truth, keypoint predictions; COCO's sigmas
    s = object_scores(noisy, pred)
    assert s.iou_type == "keypoints"
    aps = _aps(kind, src, dropped, s)
    assert aps["keypoints"] >= 0.7 and aps["extra"] >= 0.7 and aps["missing"] >= 0.8, aps  # measured: see docs
    low = issues.of_type("low_iou")
    assert low.box is not None and np.isnan(low.box).all()  # the fix is keypoints, not a box
    texts = dict(zip(low.annotation.tolist(), low.suggestion.tolist(), strict=True))
    swapped = [texts[r] for r in np.flatnonzero(kind == 2) if r in texts]
    assert len(swapped) >= 4 and all("left_wrist and right_wrist look swapped" in t for t in swapped), swapped
    a_n = noisy.annotations
    assert a_n.keypoints is not None
    for r in np.flatnonzero(kind == 1):  # a moved keypoint is the first named, with its distance to the model's
        if r in texts:
            assert " px from the model's (" in texts[r]
            first = texts[r].split(": ", 1)[1].split(" ", 1)[0]
            j = COCO_KP.index(first)
            moved = np.flatnonzero(np.abs(a_n.keypoints[r, :, :2] - _clean_row(clean, noisy, r)[:, :2]).max(1) > 1)
            assert j in moved.tolist(), (texts[r], moved)


def _clean_row(clean: Dataset, noisy: Dataset, r: int) -> np.ndarray:
    """The clean keypoints of noisy row ``r`` (same image, same box)."""
    a_c, a_n = clean.annotations, noisy.annotations
    assert a_c.box is not None and a_n.box is not None and a_c.keypoints is not None
    same = np.flatnonzero((a_c.image == a_n.image[r]) & (a_c.box == a_n.box[r]).all(1))
    return a_c.keypoints[int(same[0])]


def test_triangles_need_sigmas_and_their_planted_errors_are_found() -> None:
    clean = triangles()
    pred, src = simulate(clean, np.asarray(TRIANGLE_SIGMAS))
    noisy, kind, dropped = plant(clean, 8, 6, 5, 5, n_off=1, swap=(1, 2))
    with pytest.raises(KeypointSigmasError, match=r"17 keypoints, got 3 \(triangle: top, left, right\). Pass kpt_sigmas"):
        find_label_issues(noisy, pred, iou_type="keypoints")
    with pytest.raises(InvalidDatasetError, match="kpt_sigmas: must be 3 positive numbers"):
        find_label_issues(noisy, pred, iou_type="keypoints", kpt_sigmas=[0.1, 0.1])
    issues = find_label_issues(noisy, pred, iou_type="keypoints", kpt_sigmas=TRIANGLE_SIGMAS)
    s = object_scores(noisy, pred, iou_type="keypoints", kpt_sigmas=TRIANGLE_SIGMAS)
    aps = _aps(kind, src, dropped, s)
    assert aps["keypoints"] >= 0.7 and aps["extra"] >= 0.7 and aps["missing"] >= 0.8, aps  # measured: see docs
    low = issues.of_type("low_iou")
    swapped = [t for r, t in zip(low.annotation.tolist(), low.suggestion.tolist(), strict=True) if kind[r] == 2]
    assert swapped and all("left and right look swapped" in t for t in swapped), swapped


@pytest.mark.parametrize("squeeze", [lambda s: 0.5 + 0.1 * (s - 0.5), lambda s: s**4], ids=["linear", "power"])
def test_squeezed_confidences_change_nothing(squeeze) -> None:  # type: ignore[no-untyped-def]
    clean = triangles(200)
    pred, _ = simulate(clean, np.asarray(TRIANGLE_SIGMAS))
    noisy, _, _ = plant(clean, 4, 3, 3, 3, n_off=1, swap=(1, 2))
    pa = pred.annotations
    assert pa.score is not None
    squeezed = pred.replace(annotations=pa.with_columns(score=squeeze(pa.score)))
    a = find_label_issues(noisy, pred, iou_type="keypoints", kpt_sigmas=TRIANGLE_SIGMAS)
    b = find_label_issues(noisy, squeezed, iou_type="keypoints", kpt_sigmas=TRIANGLE_SIGMAS)
    assert len(a) > 10
    for col in ("type", "image", "annotation", "score", "reason", "suggestion"):
        assert np.array_equal(getattr(a, col), getattr(b, col)), col


def test_auto_picks_keypoints_and_extent_boxes_are_counted() -> None:
    clean = persons(20)
    pred, _ = simulate(clean, COCO_KEYPOINT_SIGMAS)
    assert resolve_iou_type(clean, pred) == "keypoints"
    assert extent_boxes(pred) == pred.n_annotations  # keypoints only: every box is its keypoints' extent
    boxes_only = pred.replace(annotations=pred.annotations.with_columns(keypoints=None))
    assert resolve_iou_type(clean, boxes_only) == "bbox" and extent_boxes(boxes_only) == 0
    detection = clean.replace(schema=dataclasses.replace(clean.schema, tasks=(Task.DETECTION,)))
    assert resolve_iou_type(detection, pred) == "bbox"
    with pytest.raises(InvalidDatasetError, match="'auto', 'bbox', 'segm' or 'keypoints'"):
        resolve_iou_type(clean, pred, "oks")


def test_objects_without_labelled_keypoints_are_not_scored_but_explain_predictions() -> None:
    clean = persons(40)
    pred, _ = simulate(clean, COCO_KEYPOINT_SIGMAS, p_miss=0.0, fp_per_image=0.0)
    a = clean.annotations
    assert a.keypoints is not None
    kp = a.keypoints.copy()
    kp[::3, :, 2] = 0  # a third of the people: no labelled keypoint (num_keypoints 0)
    kp[::3, :, :2] = 0
    unlabelled = clean.replace(annotations=a.with_columns(keypoints=kp))
    issues = find_label_issues(unlabelled, pred, iou_type="keypoints")
    flagged = set(issues.annotation[issues.annotation >= 0].tolist())
    assert not flagged & set(range(0, len(a), 3))
    s = object_scores(unlabelled, pred, iou_type="keypoints")
    on_unlabelled = np.isin(pred.annotations.image, a.image[::3])
    # a prediction on an unlabelled person is explained by it (its box, as computeOks), not reported missing
    assert s.missing[on_unlabelled].max() < 0.05, s.missing[on_unlabelled].max()


def test_bad_keypoint_predictions_are_named() -> None:
    clean = persons(10)
    pred, _ = simulate(clean, COCO_KEYPOINT_SIGMAS)
    pa = pred.annotations
    assert pa.keypoints is not None
    kp = pa.keypoints.copy()
    kp[4, 2, 0] = np.nan
    with pytest.raises(InvalidDatasetError, match=r"pred\.annotations\.keypoints row 4: must be numbers"):
        find_label_issues(clean, pred.replace(annotations=pa.with_columns(keypoints=kp)), iou_type="keypoints")
    with pytest.raises(InvalidDatasetError, match="keypoints: iou_type 'keypoints' needs keypoints"):
        find_label_issues(clean, pred.replace(annotations=pa.with_columns(keypoints=None)), iou_type="keypoints")


def triangle_case(tmp: Path) -> dict[str, Any]:
    """The CLI tests' keypoint case: the sample's triangles (300 images, 3 keypoints) as a keypoints truth, a
    keypoints-only results file simulated from it (what a pose model writes: no bbox), and a copy with planted
    errors written as COCO (``gt``). Returns clean, noisy, kind, dropped, src (each prediction's source), records,
    gt, pred (the results file) and root (the images' folder)."""
    ds = write_shapes(tmp / "shapes", 300, seed=4)
    a = ds.annotations
    assert a.iscrowd is not None
    clean = ds.select((a.label == 2) & ~a.iscrowd)
    clean = clean.replace(schema=dataclasses.replace(clean.schema, tasks=(Task.KEYPOINTS,)))
    pred, src = simulate(clean, np.asarray(TRIANGLE_SIGMAS), seed=2, fp_per_image=0.05)
    noisy, kind, dropped = plant(clean, 3, 3, 2, 2, n_off=1, swap=(1, 2), seed=3)
    gt = tmp / "shapes" / "noisy.json"
    io.write_coco(noisy, gt)
    coco = json.loads(gt.read_text())
    img_id = {im["file_name"]: im["id"] for im in coco["images"]}
    cat_id = {c["name"]: c["id"] for c in coco["categories"]}["triangle"]
    pa = pred.annotations
    assert pa.keypoints is not None and pa.score is not None
    records = [{"image_id": img_id[str(pred.images.path[pa.image[r]])], "category_id": cat_id,
                "keypoints": [round(v, 2) for v in pa.keypoints[r].ravel().tolist()],
                "score": round(float(pa.score[r]), 4)} for r in range(len(pa))]
    res = tmp / "keypoints.json"
    res.write_text(json.dumps(records))
    return {"clean": clean, "noisy": noisy, "kind": kind, "dropped": dropped, "src": src, "records": records,
            "gt": gt, "pred": res, "root": tmp / "shapes"}
