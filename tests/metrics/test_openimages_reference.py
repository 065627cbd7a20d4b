"""``oid_map`` against two references on generated Open-Images-like scenes (seeded; a few hundred images, a 3-level
class hierarchy, group-of boxes, image-level labels, scores on a coarse grid so that many are equal):

- hotcoco's ``COCOeval(..., oid_style=True, hierarchy=...)`` (where installed), on scenes where its rules and the
  challenge's agree: no image-level labels (hotcoco has no image-level rule: every class is then verified on every
  image, as in ``oid_map``), a tree (one parent per class), the objects of an image apart (so COCO's "best free
  object" and TF's "best object, taken or not" choose the same), every score above 0;
- ``tf_reference`` below, a plain transcription of TensorFlow's ``per_image_evaluation.py`` (two stages per image
  and class), ``ObjectDetectionEvaluation`` (``group_of_weight=1``) and ``metrics.py`` (precision, recall, VOC AP),
  with the challenge's hierarchy expansion and verified image-level labels, on the same scenes with labels and a
  class with two parents. TF leaves the order of equal scores to ``np.argsort`` (unstable, reversed); the
  transcription orders them as ``oid_map`` documents: by image, then row, a group-of box's entry at its
  highest-scoring detection.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.metrics.openimages import OidResult, oid_map, read_hierarchy

NAMES = ("animal", "dog", "cat", "puppy", "vehicle", "car", "bus", "tree")
PARENT = {"dog": "animal", "cat": "animal", "puppy": "dog", "car": "vehicle", "bus": "vehicle"}  # a tree
SIZE = 256.0


def ancestors(parents: Mapping[str, list[str]], name: str) -> set[str]:
    out: set[str] = set()
    todo = list(parents.get(name, []))
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo += parents.get(p, [])
    return out


def scene(seed: int, n_images: int = 300, labels: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A COCO dict (``is_group_of`` key; ``pos_category_ids``/``neg_category_ids`` when ``labels``) and COCO
    results. Objects of an image sit in distinct cells of a 4 x 4 grid (apart); group-of boxes are large and may
    cover them. Coordinates on a 1/16 grid (xywh and xyxy exact), scores on a 0.1 grid (many ties)."""
    rng = np.random.default_rng(seed)
    q = 1 / 16

    def box_in(x0: float, y0: float, span: float) -> list[float]:
        w, h = (np.round(rng.uniform(0.35, 0.9, 2) * span / q) * q).tolist()
        x, y = (np.round((np.array([x0, y0]) + rng.uniform(0, 1, 2) * (span - np.array([w, h]))) / q) * q).tolist()
        return [x, y, w, h]

    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    dets: list[dict[str, Any]] = []
    for i in range(n_images):
        im: dict[str, Any] = {"id": i + 1, "width": SIZE, "height": SIZE, "file_name": f"{i + 1}.jpg"}
        cells = rng.permutation(16)[: int(rng.integers(0, 7))]
        objs = []
        for c in cells.tolist():
            cls = int(rng.choice(8, p=[.05, .15, .15, .15, .05, .2, .15, .1]))
            b = box_in((c % 4) * 64.0, (c // 4) * 64.0, 64.0)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cls + 1, "bbox": b,
                         "area": b[2] * b[3], "iscrowd": 0})
            objs.append((b, cls))
        groups = []
        for _ in range(int(rng.random() < 0.3) + int(rng.random() < 0.1)):
            cls = int(rng.choice([1, 2, 3, 5, 7]))
            b = box_in(float(rng.integers(0, 3)) * 64.0, float(rng.integers(0, 3)) * 64.0, 128.0)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cls + 1, "bbox": b,
                         "area": b[2] * b[3], "iscrowd": 0, "is_group_of": True})
            groups.append((b, cls))
        for b, cls in objs:  # detections of the objects: close, loose, duplicated, the parent's or a sibling's class
            for _ in range(int(rng.integers(0, 3))):
                j = np.round((np.array(b) + rng.normal(0, 0.12, 4) * np.array([b[2], b[3], b[2], b[3]])) / q) * q
                j[2:] = np.maximum(j[2:], 1.0)
                c = cls if rng.random() < 0.7 else int(rng.integers(8))
                dets.append({"image_id": i + 1, "category_id": c + 1, "bbox": j.tolist(),
                             "score": float(rng.integers(1, 11)) / 10})
        for b, cls in groups:  # several detections inside a group-of box
            for _ in range(int(rng.integers(0, 5))):
                w, h = (np.round(rng.uniform(0.1, 0.4, 2) * np.array(b[2:]) / q) * q).tolist()
                x = round((b[0] + rng.uniform(-0.1, 1) * (b[2] - w)) / q) * q
                y = round((b[1] + rng.uniform(-0.1, 1) * (b[3] - h)) / q) * q
                dets.append({"image_id": i + 1, "category_id": (cls if rng.random() < 0.8 else 0) + 1,
                             "bbox": [x, y, w, h], "score": float(rng.integers(1, 11)) / 10})
        for _ in range(int(rng.integers(0, 4))):  # false alarms
            b = box_in(float(rng.uniform(0, SIZE - 64)), float(rng.uniform(0, SIZE - 64)), 64.0)
            dets.append({"image_id": i + 1, "category_id": int(rng.integers(8)) + 1, "bbox": b,
                         "score": float(rng.integers(1, 11)) / 10})
        if labels:
            present = sorted({c for _, c in objs + groups})
            pos = [c + 1 for c in present if rng.random() < 0.5] + [int(c) + 1 for c in rng.integers(0, 8, 1)]
            neg = [int(c) + 1 for c in rng.choice(8, int(rng.integers(0, 3)), replace=False) if c not in present]
            im["pos_category_ids"], im["neg_category_ids"] = sorted(set(pos)), sorted(set(neg) - set(pos))
        images.append(im)
    cats = [{"id": k + 1, "name": n} for k, n in enumerate(NAMES)]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def to_datasets(gt: dict[str, Any], dets: list[dict[str, Any]]) -> tuple[Dataset, Dataset]:
    """The scene as maslow Datasets, built in code (the COCO reader is not what is tested here)."""
    schema = LabelSchema(classes=tuple(ClassDef(c["name"], id=c["id"]) for c in gt["categories"]))
    extra: dict[str, Any] = {"coco_id": np.asarray([im["id"] for im in gt["images"]])}
    for col in ("pos_category_ids", "neg_category_ids"):
        if any(col in im for im in gt["images"]):
            extra[col] = obj_array([im.get(col, []) for im in gt["images"]])
    n = len(gt["images"])
    images = Images(path=obj_array([im["file_name"] for im in gt["images"]]), width=np.full(n, int(SIZE)),
                    height=np.full(n, int(SIZE)), extra=extra)

    def table(rows: list[dict[str, Any]], truth: bool) -> Annotations:
        xywh = np.asarray([r["bbox"] for r in rows], np.float64).reshape(-1, 4)
        cols: dict[str, Any] = dict(image=np.asarray([r["image_id"] - 1 for r in rows], np.int64),
                                    label=np.asarray([r["category_id"] - 1 for r in rows], np.int64),
                                    box=np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1))
        if truth:
            cols["extra"] = {"is_group_of": np.asarray([bool(r.get("is_group_of")) for r in rows])}
        else:
            cols["score"] = np.asarray([r["score"] for r in rows], np.float64)
        return Annotations.sort_rows(**cols)

    truth = Dataset(schema=schema, images=images, annotations=table(gt["annotations"], True))
    return truth, truth.replace(annotations=table(dets, False))


# -- the TensorFlow reference, transcribed ----------------------------------------------------------------------

def _iou_ioa(d: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np_box_ops.iou(d, g) and np_box_ops.ioa(g, d).T on xyxy boxes."""
    ih = np.maximum(np.minimum(d[:, None, 3], g[None, :, 3]) - np.maximum(d[:, None, 1], g[None, :, 1]), 0)
    iw = np.maximum(np.minimum(d[:, None, 2], g[None, :, 2]) - np.maximum(d[:, None, 0], g[None, :, 0]), 0)
    inter = ih * iw
    ad = (d[:, 3] - d[:, 1]) * (d[:, 2] - d[:, 0])
    ag = (g[:, 3] - g[:, 1]) * (g[:, 2] - g[:, 0])
    return inter / (ad[:, None] + ag[None, :] - inter), inter / ad[:, None]


def tf_single_class(det: np.ndarray, scores: np.ndarray, rows: np.ndarray, gt: np.ndarray, group: np.ndarray,
                    thr: float) -> list[tuple[float, int, float]]:
    """_compute_tp_fp_for_single_class (box mode, no difficult boxes, group_of_weight 1): (score, row, label) entries.
    ``det`` is in score order already (the reference sorts in its NMS step)."""
    if not len(det):
        return []
    if not len(gt):
        return [(s, r, 0.0) for s, r in zip(scores.tolist(), rows.tolist(), strict=True)]
    iou, _ = _iou_ioa(det, gt[~group])
    _, ioa = _iou_ioa(det, gt[group])
    tp = np.zeros(len(det), bool)
    in_group = np.zeros(len(det), bool)
    if iou.shape[1]:
        taken = np.zeros(iou.shape[1], bool)
        best = np.argmax(iou, axis=1)
        for i in range(len(det)):
            g = best[i]
            if iou[i, g] >= thr and not taken[g]:
                tp[i] = taken[g] = True
    group_score = np.zeros(ioa.shape[1])
    group_row = np.zeros(ioa.shape[1], np.int64)
    if ioa.shape[1]:
        best = np.argmax(ioa, axis=1)
        for i in range(len(det)):
            g = best[i]
            if not tp[i] and ioa[i, g] >= thr:
                in_group[i] = True
                if scores[i] > group_score[g]:  # max(scores); the first (highest) detection's row for ties
                    group_score[g], group_row[g] = scores[i], rows[i]
    out = [(float(s), int(r), float(t)) for s, r, t, ig in zip(scores, rows, tp, in_group, strict=True) if not ig]
    return out + [(float(s), int(r), 1.0) for s, r in zip(group_score, group_row, strict=True) if s > 0]


def tf_reference(truth: Dataset, pred: Dataset, parents: Mapping[str, list[str]], thr: float = 0.5,
                 labels: bool = True) -> dict[str, float]:
    """Per-class AP (classes with objects) by the challenge's pipeline: expand the truth (and the image-level
    labels: positive up, negative down), filter detections to the verified classes, evaluate each image and class,
    then precision, recall and VOC AP per class."""
    names = truth.schema.names
    ids = {c.id: k for k, c in enumerate(truth.schema.classes)}
    anc = {k: {names.index(a) for a in ancestors(parents, n)} for k, n in enumerate(names)}
    desc = {k: {d for d in range(len(names)) if k in anc[d]} for k in range(len(names))}
    ta, pa = truth.annotations, pred.annotations
    assert ta.box is not None and pa.box is not None and pa.score is not None
    group = np.asarray(ta.extra["is_group_of"], bool)
    entries: dict[int, list[tuple[float, int, int, float]]] = {k: [] for k in range(len(names))}
    n_gt = np.zeros(len(names))
    for i in range(truth.n_images):  # images in id order (= row order here)
        t_rows = np.flatnonzero(ta.image == i)
        exp = [(r, c) for r in t_rows.tolist() for c in [int(ta.label[r]), *sorted(anc[int(ta.label[r])])]]
        allowed = set(range(len(names)))
        if labels:
            pos = [ids[v] for v in truth.images.extra["pos_category_ids"][i]]
            neg = [ids[v] for v in truth.images.extra["neg_category_ids"][i]]
            allowed = {c for _, c in exp} | {a for p in pos for a in {p} | anc[p]} | {d for n in neg for d in {n} | desc[n]}
        p_rows = np.flatnonzero(pa.image == i)
        p_rows = p_rows[[int(pa.label[r]) in allowed for r in p_rows.tolist()]]
        b = pa.box[p_rows]
        p_rows = p_rows[(b[:, 0] < b[:, 2]) & (b[:, 1] < b[:, 3])]  # _remove_invalid_boxes
        for c in range(len(names)):
            g = [r for r, cc in exp if cc == c]
            n_gt[c] += len(g)
            d = p_rows[pa.label[p_rows] == c]
            d = d[np.argsort(-pa.score[d], kind="stable")]
            for s, r, t in tf_single_class(pa.box[d], pa.score[d], d, ta.box[g].reshape(-1, 4), group[g], thr):
                entries[c].append((s, i, r, t))
    out = {}
    for c in range(len(names)):
        if n_gt[c] == 0:
            continue
        e = sorted(entries[c], key=lambda x: (-x[0], x[1], x[2]))
        labels_ = np.asarray([x[3] for x in e], float)
        ctp = np.cumsum(labels_)
        cfp = np.cumsum((labels_ <= 0).astype(float))
        precision, recall = ctp / (ctp + cfp), ctp / n_gt[c]
        if not precision.size:
            out[names[c]] = 0.0
            continue
        recall = np.concatenate([[0], recall, [1]])
        precision = np.concatenate([[0], precision, [0]])
        for j in range(len(precision) - 2, -1, -1):
            precision[j] = np.maximum(precision[j], precision[j + 1])
        idx = np.where(recall[1:] != recall[:-1])[0] + 1
        out[names[c]] = float(np.sum((recall[idx] - recall[idx - 1]) * precision[idx]))
    return out


def aps(r: OidResult) -> dict[str, float]:
    return {n: float(v) for n, v in zip(r.class_names, r.ap_per_class.tolist(), strict=True) if not np.isnan(v)}


def hierarchy(tmp_path: Path, truth: Dataset, parents: Mapping[str, Any]) -> Mapping[int, tuple[int, ...]]:
    f = tmp_path / "hierarchy.json"
    f.write_text(json.dumps(parents))
    return read_hierarchy(f, truth.schema)


# -- the tests ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_tf_transcription_with_image_labels(seed: int, tmp_path: Path) -> None:
    truth, pred = to_datasets(*scene(seed, labels=True))
    r = oid_map(truth, pred, hierarchy=hierarchy(tmp_path, truth, PARENT))
    ref = tf_reference(truth, pred, {k: [v] for k, v in PARENT.items()})
    assert r.image_labels and r.n_unverified > 0 and r.n_group_of_per_class.sum() > 0
    assert aps(r) == pytest.approx(ref, abs=1e-12, rel=0)
    assert sorted(aps(r)) == sorted(ref)


def test_agrees_with_tf_transcription_multi_parent_and_threshold(tmp_path: Path) -> None:
    """'puppy' under 'dog' and 'cat' (two paths to 'animal'); a stricter threshold."""
    parents = {**{k: [v] for k, v in PARENT.items()}, "puppy": ["dog", "cat"]}
    truth, pred = to_datasets(*scene(3, labels=True))
    h = hierarchy(tmp_path, truth, parents)
    assert h[NAMES.index("puppy")] == tuple(NAMES.index(n) for n in ("animal", "dog", "cat"))
    for thr in (0.5, 0.7):
        r = oid_map(truth, pred, hierarchy=h, iou_threshold=thr)
        assert aps(r) == pytest.approx(tf_reference(truth, pred, parents, thr), abs=1e-12, rel=0)


def test_agrees_with_tf_transcription_without_labels_or_hierarchy() -> None:
    truth, pred = to_datasets(*scene(4))
    r = oid_map(truth, pred)
    assert not r.image_labels and r.n_unverified == 0
    assert aps(r) == pytest.approx(tf_reference(truth, pred, {}, labels=False), abs=1e-12, rel=0)


def _hotcoco(gt: dict[str, Any], dets: list[dict[str, Any]], tmp_path: Path, expand: bool) -> dict[str, float]:
    hotcoco = pytest.importorskip("hotcoco")
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dets))
    ids = {c["name"]: c["id"] for c in gt["categories"]}
    h = hotcoco.Hierarchy.from_parent_map({ids[k]: ids[v] for k, v in PARENT.items()})
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # its note that Open Images numbers are an extension
        g = hotcoco.COCO(str(tmp_path / "gt.json"))
        ev = hotcoco.COCOeval(g, g.load_res(str(tmp_path / "dt.json")), "bbox", oid_style=True, hierarchy=h)
        ev.params.max_dets = [10_000]  # TF's cap per image and class (hotcoco's default: 100)
        ev.params.expand_dt = expand
        ev.run()
    return {k: float(v) for k, v in ev.results(per_class=True)["per_class"].items()}


@pytest.mark.parametrize(("seed", "expand"), [(5, False), (6, False), (7, True)])
def test_agrees_with_hotcoco(seed: int, expand: bool, tmp_path: Path) -> None:
    gt, dets = scene(seed)
    truth, pred = to_datasets(gt, dets)
    ref = _hotcoco(gt, dets, tmp_path, expand)
    r = oid_map(truth, pred, hierarchy=hierarchy(tmp_path, truth, PARENT), expand_pred=expand)
    assert sorted(aps(r)) == sorted(ref)
    assert aps(r) == pytest.approx(ref, abs=1e-12, rel=0)
    assert len(set(p["score"] for p in dets)) <= 10 and r.n_ignored_pred_per_class.sum() > 0  # ties, group-of
    if not expand:  # the same scene through the TF transcription (every class verified everywhere)
        assert aps(r) == pytest.approx(tf_reference(truth, pred, {k: [v] for k, v in PARENT.items()}, labels=False),
                                       abs=1e-12, rel=0)
