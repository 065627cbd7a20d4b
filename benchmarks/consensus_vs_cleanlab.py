"""maslow vs cleanlab at cleanlab's own job: planted label errors, the same predictions given to both.

Every case plants known errors (seeded) in a labelled set, makes out-of-fold predictions (a model fitted on the
noisy labels, 5 folds; a real detector's results; or a simulated model where fitting one is beyond a CPU
benchmark), and gives exactly those predictions to maslow's ``find_label_issues`` (the ranked table ``maslow qa``
writes, with its defaults) and to cleanlab's API for the task:

- classification: ``cleanlab.rank.get_label_quality_scores`` (ranking) and ``cleanlab.filter.find_label_issues``
  (its flagged set); per image. Data: mnist_test pixels (``../shared/data/mnist_test``, else scikit-learn's
  digits) with uniform flips and with class-conditional flips (each class to one fixed other class), generated
  probabilities with and without per-class offsets, generated blobs (see ``consensus_bench.py``).
- multi-label: ``cleanlab.multilabel_classification`` (``rank.get_label_quality_scores``,
  ``filter.find_label_issues``, and ``rank.get_label_quality_scores_per_class`` for the per-tag ranking); per
  image and per (image, tag). Data: generated tags with a logistic model, and the cell types present in each
  bccd image (tags), predicted as the best simulated detection of each class.
- object detection: ``cleanlab.object_detection`` (``rank.get_label_quality_scores`` and
  ``filter.find_label_issues`` per image; per box the lower of its swap and bad-location scores, and its
  overlooked score per prediction). Data: ``od_metrics_fixture``'s COCO case (100 COCO images, 830 boxes of 80
  classes, 734 detections of a real detector; noise planted 5 times, pooled), bccd and generated shapes with the
  simulated detector of ``consensus_bench.py``.
- semantic segmentation: ``cleanlab.segmentation`` (``rank.get_label_quality_scores``, per image; given the
  model's per-pixel probabilities) against maslow given the model's class masks (their argmax: ``maslow qa --pred``)
  and given the same probabilities (``maslow qa --pred-probs``), one row each; per image. Data: camvid_val label maps (downsampled 4x to 90 x 120) with a per-pixel gradient-boosting
  model fitted out of fold on colour and position features, and with a simulated model; shapes' masks painted
  into label maps with a simulated model. In 30% of the images one region is relabelled, erased into its
  surroundings, or painted in.

Measured per case: average precision (AP), AUROC and R-precision (precision in the top as many as there are
errors) of each ranking; precision and recall of each tool's own flagged set (maslow: its findings scored 0.5 and
more, ``summarize``'s threshold; cleanlab: ``find_label_issues``) and of maslow's top as many as cleanlab flags;
CPU seconds of each tool (``time.process_time``, cleanlab with ``n_jobs=1``) on the same inputs. The table gives
maslow / cleanlab ratios.

    python benchmarks/consensus_vs_cleanlab.py [--seed 0] [--only classification,multilabel,detection,segmentation]
        [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from consensus_bench import (  # the detection simulator and the classification cases are shared
    SHARED,
    _boxes_only,
    _missing_truth,
    _oof,
    classification_cases,
    clean_detection,
    inject_noise,
    simulate_predictions,
)

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.quality import QualityIssues, find_label_issues
from maslow.quality.consensus import object_scores

FLAG = 0.5  # maslow's flagged set: findings scored this and more (summarize's threshold)


# -- measures -------------------------------------------------------------------------------------------

def ranking(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y, bool)
    if y.all() or not y.any():
        return {"ap": float("nan"), "auroc": float("nan"), "r_precision": float("nan")}
    top = np.argsort(-np.asarray(s, float), kind="stable")[:int(y.sum())]
    return {"ap": float(average_precision_score(y, s)), "auroc": float(roc_auc_score(y, s)),
            "r_precision": float(y[top].mean())}


def flagged(flag: np.ndarray, y: np.ndarray) -> dict[str, float]:
    flag, y = np.asarray(flag, bool), np.asarray(y, bool)
    hit = int((flag & y).sum())
    return {"n": int(flag.sum()), "precision": hit / max(int(flag.sum()), 1), "recall": hit / max(int(y.sum()), 1)}


def top_as_many(s: np.ndarray, n: int, y: np.ndarray) -> dict[str, float]:
    flag = np.zeros(len(s), bool)
    flag[np.argsort(-np.asarray(s, float), kind="stable")[:n]] = True
    return flagged(flag, y)


@contextlib.contextmanager
def cpu(out: dict[str, float], key: str) -> Iterator[None]:
    t0 = time.process_time()
    yield
    out[key] = out.get(key, 0.0) + time.process_time() - t0


def image_scores(issues: QualityIssues, n_images: int) -> np.ndarray:
    s = np.zeros(n_images)
    on = issues.image >= 0
    np.maximum.at(s, issues.image[on], issues.score[on])
    return s


def case(task: str, data: str, unit: str, y: np.ndarray, maslow: np.ndarray, cleanlab: np.ndarray | None,
         t: dict[str, float], m_flag: np.ndarray | None = None, c_flag: np.ndarray | None = None,
         **info: Any) -> dict[str, Any]:
    """One row of the table: rankings of both tools, their flagged sets, maslow's top as many, CPU seconds."""
    row: dict[str, Any] = {"task": task, "data": data, "unit": unit, "n": len(y), "n_errors": int(np.sum(y)),
                           "maslow": {**ranking(y, maslow), "cpu_s": t.get("maslow", float("nan"))}, **info}
    if m_flag is not None:
        row["maslow"]["flagged"] = flagged(m_flag, y)
    if cleanlab is not None:
        row["cleanlab"] = {**ranking(y, cleanlab), "cpu_s": t.get("cleanlab", float("nan"))}
        if c_flag is not None:
            row["cleanlab"]["flagged"] = flagged(c_flag, y)
            row["maslow"]["top_as_many"] = top_as_many(maslow, int(np.sum(c_flag)), y)
    return row


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- classification -------------------------------------------------------------------------------------

def _mnist() -> tuple[np.ndarray, np.ndarray, str]:
    d = SHARED / "mnist_test"
    if d.is_dir():
        raw = gzip.open(d / "images" / "t10k-images-idx3-ubyte.gz").read()
        x = np.frombuffer(raw[16:], np.uint8).reshape(-1, 784) / 255.0
        y = np.frombuffer(gzip.open(d / "annotations" / "t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)
        return x, y.astype(np.int64), "mnist_test"
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x / 16.0, y.astype(np.int64), "sklearn digits"


def _pair_flips(y: np.ndarray, rng: np.random.Generator, rate: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Class-conditional noise: each class flips to one fixed other class (a derangement) at ``rate``."""
    k = int(y.max()) + 1
    to = (np.arange(k) + rng.integers(1, k)) % k
    flip = rng.random(len(y)) < rate
    noisy = np.where(flip, to[y], y)
    return noisy, flip


def classification(seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed + 7)
    cases = [(name, p, noisy, flip) for name, p, noisy, flip, _ in classification_cases(seed)]
    x, y, name = _mnist()
    noisy, flip = _pair_flips(y, rng)
    p, _ = _oof(x, noisy, C=0.05)
    cases.insert(1, (f"{name} pixels, class-conditional flips (10% of each class to one other)", p, noisy, flip))
    return [classification_row(name, p, noisy, flip) for name, p, noisy, flip in cases]


def classification_row(name: str, p: np.ndarray, noisy: np.ndarray, flip: np.ndarray) -> dict[str, Any]:
    from cleanlab.filter import find_label_issues as cl_find
    from cleanlab.rank import get_label_quality_scores

    n, k = p.shape
    schema = LabelSchema.from_names([str(i) for i in range(k)], task=Task.CLASSIFICATION)
    images = Images(path=obj_array([f"{i}" for i in range(n)]), width=np.ones(n, np.int64),
                    height=np.ones(n, np.int64))
    truth = Dataset(schema, images, Annotations(image=np.arange(n), label=noisy))
    pred = truth.replace(annotations=Annotations(image=np.arange(n), label=p.argmax(1), score=p.max(1),
                                                 extra={"probs": p}))
    t: dict[str, float] = {}
    with cpu(t, "maslow"):
        issues = find_label_issues(truth, pred)
    s = image_scores(issues, n)
    with _quiet(), cpu(t, "cleanlab"):
        q = 1.0 - get_label_quality_scores(noisy, p)
        cl_flag = cl_find(noisy, p, n_jobs=1)
    with _quiet():  # cleanlab's other rankings (not its default)
        other = {m: ranking(flip, 1.0 - get_label_quality_scores(noisy, p, method=m))["ap"]
                 for m in ("normalized_margin", "confidence_weighted_entropy")}
    wrong = np.zeros(n, bool)
    wrong[issues.of_type("wrong_class").image] = True
    row = case("classification", name, "image", flip, s, q, t, s >= FLAG, cl_flag, counts=issues.counts(),
               n_disagreements=int((p.argmax(1) != noisy).sum()))
    row["cleanlab"]["ap_other_methods"] = other
    row["maslow"]["all_findings"] = flagged(s > 0, flip)
    row["maslow"]["wrong_class"] = flagged(wrong, flip)
    return row


# -- multi-label ----------------------------------------------------------------------------------------

def _multilabel_truth(tags: np.ndarray, names: list[str]) -> Dataset:
    n = len(tags)
    img, lab = np.nonzero(tags)
    schema = LabelSchema.from_names(names, task=Task.MULTILABEL)
    images = Images(path=obj_array([f"{i}" for i in range(n)]), width=np.ones(n, np.int64),
                    height=np.ones(n, np.int64))
    return Dataset(schema, images, Annotations(image=img, label=lab))


def _plant_tags(tags: np.ndarray, rng: np.random.Generator, rate: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """In ``rate`` of the images one tag toggled (half drop a set tag, half add an unset one)."""
    n, k = tags.shape
    noisy = tags.copy()
    changed = np.zeros((n, k), bool)
    for i in np.flatnonzero(rng.random(n) < rate).tolist():
        want = rng.random() < 0.5
        cand = np.flatnonzero(noisy[i] == want)
        if not len(cand):
            cand = np.arange(k)
        j = int(rng.choice(cand))
        noisy[i, j] = not noisy[i, j]
        changed[i, j] = True
    return noisy, changed


def multilabel_row(name: str, p: np.ndarray, noisy: np.ndarray, changed: np.ndarray) -> list[dict[str, Any]]:
    from cleanlab.multilabel_classification import filter as mf
    from cleanlab.multilabel_classification import rank as mr

    n, k = p.shape
    truth = _multilabel_truth(noisy, [f"t{j}" for j in range(k)])
    pred = truth.replace(annotations=Annotations(image=np.arange(n), label=np.zeros(n, np.int64),
                                                 extra={"probs": p}))
    labels = [np.flatnonzero(r).tolist() for r in noisy]
    t: dict[str, float] = {}
    with cpu(t, "maslow"):
        issues = find_label_issues(truth, pred)
    s = image_scores(issues, n)
    with _quiet(), cpu(t, "cleanlab"):
        q = 1.0 - mr.get_label_quality_scores(labels, p)
        cl_flag = mf.find_label_issues(labels, p, n_jobs=1)
    with _quiet():
        per = 1.0 - mr.get_label_quality_scores_per_class(labels, p)
    bad = changed.any(axis=1)
    pair = np.zeros((n, k))
    lab = np.where(issues.annotation >= 0, truth.annotations.label[np.maximum(issues.annotation, 0)],
                   issues.label if issues.label is not None else -1)
    pair[issues.image, lab] = issues.score
    rows = [case("multi-label", name, "image", bad, s, q, t, s >= FLAG, cl_flag, counts=issues.counts()),
            case("multi-label", name, "(image, tag)", changed.ravel(), pair.ravel(), per.ravel(), {})]
    return rows


def multilabel(seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed + 11)
    n, k = 4000, 8
    prevalence = rng.uniform(0.08, 0.4, k)
    tags = rng.random((n, k)) < prevalence
    noisy, changed = _plant_tags(tags, rng)
    x = np.c_[tags, tags @ rng.normal(0, 0.5, (k, 4))] + rng.normal(0, 0.9, (n, k + 4))
    p = _oof_multilabel(x, noisy)
    out = multilabel_row(f"generated ({k} tags, logistic regression on noisy features)", p, noisy, changed)
    # bccd: the cell types in each image, predicted as each class's best simulated detection
    clean, name = clean_detection()
    pred = simulate_predictions(clean, seed)
    k2 = len(clean.schema.classes)
    tags = np.zeros((clean.n_images, k2), bool)
    tags[clean.annotations.image, clean.annotations.label] = True
    pa = pred.annotations
    assert pa.score is not None
    p2 = np.zeros((clean.n_images, k2))
    np.maximum.at(p2, (pa.image, pa.label), pa.score)
    noisy, changed = _plant_tags(tags, rng)
    return out + multilabel_row(f"{name} classes present per image, best simulated detection", p2, noisy, changed)


def _oof_multilabel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    return np.column_stack([cross_val_predict(LogisticRegression(max_iter=300), x, y[:, j], cv=5,
                                              method="predict_proba")[:, 1] for j in range(y.shape[1])])


# -- object detection -----------------------------------------------------------------------------------

def coco_case() -> tuple[Dataset, Dataset] | None:
    root = SHARED / "od_metrics_fixture" / "annotations" / "coco_eval_case"
    if not root.is_dir():
        return None
    from maslow.io import read_coco

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        truth = read_coco(root / "gts" / "sampled_gts_bbox_area.json")
        dets = read_coco(root / "dets" / "sampled_bbox_results.json")
    clean = _boxes_only(truth)
    a = dets.annotations
    pred = clean.replace(annotations=Annotations(image=a.image, label=a.label, box=a.box, score=a.score,
                                                 source="model"))
    return clean, pred


def _cleanlab_inputs(noisy: Dataset, pred: Dataset) -> tuple[list[dict[str, Any]], list[list[np.ndarray]],
                                                             list[np.ndarray]]:
    ta, pa = noisy.annotations, pred.annotations
    assert ta.box is not None and pa.box is not None and pa.score is not None
    k = len(noisy.schema.classes)
    ts, ps = noisy.image_slices(), pred.image_slices()
    labels, preds, order = [], [], []
    for i in range(noisy.n_images):
        r = slice(ts[i], ts[i + 1])
        labels.append({"bboxes": ta.box[r].astype(np.float32), "labels": ta.label[r]})
        rows = np.arange(ps[i], ps[i + 1])
        per, o = [], []
        for c in range(k):
            rc = rows[pa.label[rows] == c]
            per.append(np.c_[pa.box[rc], pa.score[rc]].astype(np.float32).reshape(-1, 5))
            o.append(rc)
        preds.append(per)
        order.append(np.concatenate(o))
    return labels, preds, order


def detection_rows(name: str, clean: Dataset, pred: Dataset, seeds: list[int]) -> list[dict[str, Any]]:
    from cleanlab.object_detection import filter as of
    from cleanlab.object_detection import rank as orank

    img_y, img_m, img_c, img_mf, img_cf = [], [], [], [], []
    ann_y, ann_m, ann_c = [], [], []
    miss: dict[str, list[np.ndarray]] = {"y_m": [], "s_m": [], "y_c": [], "s_c": []}
    t: dict[str, float] = {}
    for seed in seeds:
        noisy, kind, drop_box, drop_img = inject_noise(clean, seed)
        m = noisy.n_images
        with cpu(t, "maslow"):
            issues = find_label_issues(noisy, pred, iou_type="bbox")
        labels, preds, order = _cleanlab_inputs(noisy, pred)
        with _quiet(), cpu(t, "cleanlab"):
            q = orank.get_label_quality_scores(labels, preds, verbose=False)
            flag = of.find_label_issues(labels, preds)
        s = image_scores(issues, m)
        y = np.zeros(m, bool)
        y[noisy.annotations.image[kind != "ok"]] = True
        y[drop_img] = True
        img_y.append(y), img_m.append(s), img_c.append(1.0 - q), img_mf.append(s >= FLAG), img_cf.append(flag)
        # per box (a planted swap, shift or spurious box) and per prediction (the first finding a dropped box)
        on = issues.annotation >= 0
        sa = np.zeros(noisy.n_annotations)
        np.maximum.at(sa, issues.annotation[on], issues.score[on])
        with _quiet():
            swap = orank.compute_swap_box_scores(labels=labels, predictions=preds)
            badloc = orank.compute_badloc_box_scores(labels=labels, predictions=preds)
            over = orank.compute_overlooked_box_scores(labels=labels, predictions=preds)
        box_q = np.minimum(np.nan_to_num(np.concatenate(swap), nan=1.0), np.nan_to_num(np.concatenate(badloc),
                                                                                      nan=1.0))
        ann_y.append(kind != "ok"), ann_m.append(sa), ann_c.append(1.0 - box_q)
        hit, _ = _missing_truth(pred, drop_box, drop_img)
        sm = object_scores(noisy, pred, iou_type="bbox").missing  # the table's missing rows, per prediction
        sm = np.where(sm >= 0.05, sm, 0.0)  # find_label_issues' min_score
        cm = np.zeros(pred.n_annotations)
        for rows, o in zip(order, over, strict=True):
            cm[rows] = 1.0 - np.nan_to_num(np.asarray(o, float), nan=1.0)
        # a dropped box counts once, at each method's first prediction of it; its other predictions are left out
        keep_m, keep_c = _first_hit(hit, sm), _first_hit(hit, cm)
        miss["y_m"].append(hit[keep_m] >= 0), miss["s_m"].append(sm[keep_m])
        miss["y_c"].append(hit[keep_c] >= 0), miss["s_c"].append(cm[keep_c])
    cat = np.concatenate
    rows = [case("detection", name, "image", cat(img_y), cat(img_m), cat(img_c), t, cat(img_mf), cat(img_cf),
                 n_seeds=len(seeds)),
            case("detection", name, "box (swap, shift, spurious)", cat(ann_y), cat(ann_m), cat(ann_c), {})]
    row = case("detection", name, "prediction (dropped box)", cat(miss["y_m"]), cat(miss["s_m"]), None, {})
    row["cleanlab"] = ranking(cat(miss["y_c"]), cat(miss["s_c"]))
    rows.append(row)
    return rows


def _first_hit(hit: np.ndarray, s: np.ndarray) -> np.ndarray:
    order = np.argsort(-s, kind="stable")
    first = np.zeros(len(s), bool)
    _, pos = np.unique(hit[order], return_index=True)
    first[order[pos]] = True
    return (hit < 0) | first


def detection(seed: int) -> list[dict[str, Any]]:
    rows = []
    real = coco_case()
    if real is not None:
        rows += detection_rows("COCO case: 100 images, 80 classes, a real detector", *real,
                               seeds=[seed + i for i in range(5)])
    clean, name = clean_detection()
    rows += detection_rows(f"{name}, simulated detector", clean, simulate_predictions(clean, seed), [seed])
    if name == "bccd":
        from maslow.sample import shapes

        shp = _boxes_only(shapes(600, seed=seed))
        rows += detection_rows("shapes(600), simulated detector", shp, simulate_predictions(shp, seed), [seed])
    return rows


# -- semantic segmentation ------------------------------------------------------------------------------

def _components(mask: np.ndarray, lo: int, hi: int) -> list[np.ndarray]:
    from scipy import ndimage

    lab, n = ndimage.label(mask)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    return [lab == c for c in range(1, n + 1) if lo <= sizes[c] <= hi]


def _plant_map(lab: np.ndarray, k: int, void: int, rng: np.random.Generator) -> np.ndarray:
    """One planted region (in place): a region relabelled, erased into its surroundings, or painted in."""
    from scipy import ndimage

    h, w = lab.shape
    present = [c for c in np.unique(lab).tolist() if c != void]
    mode = int(rng.integers(0, 3))
    if mode < 2:
        comps = [m for c in present for m in _components(lab == c, 12, h * w // 5)]
        if comps:
            region = comps[int(rng.integers(0, len(comps)))]
            c = int(lab[region][0])
            if mode == 0:
                new = int(rng.choice([j for j in range(k) if j != c]))
            else:
                ring = ndimage.binary_dilation(region, iterations=2) & ~region & (lab != void) & (lab != c)
                new = int(np.bincount(lab[ring], minlength=k).argmax()) if ring.any() else (c + 1) % k
            lab[region] = new
            return region
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(3, h / 8), rng.uniform(3, w / 8)
    yy, xx = np.mgrid[:h, :w]
    region = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1) & (lab != void)
    lab[region] = int(rng.integers(0, k))
    return region


def _simulated_probs(lab: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(k, h, w) softmax of blurred one-hot truth plus smooth noise (blobs of confusion) and class biases."""
    from scipy import ndimage

    onehot = (lab[None] == np.arange(k)[:, None, None]).astype(np.float64)
    logits = 4.0 * ndimage.gaussian_filter(onehot, (0, 1.0, 1.0))
    noise = ndimage.gaussian_filter(rng.normal(0, 1, logits.shape), (0, 3, 3))
    logits += 1.3 * noise / noise.std() + rng.normal(0, 0.3, k)[:, None, None]
    e = np.exp(logits - logits.max(axis=0))
    return e / e.sum(axis=0)


def _camvid(step: int = 4) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    root = SHARED / "camvid_val"
    if not root.is_dir():
        return None
    from PIL import Image

    names = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
             "Bicyclist"]
    files = sorted((root / "annotations").glob("*.png"))
    labs = np.stack([np.asarray(Image.open(f))[::step, ::step] for f in files]).astype(np.int64)
    rgb = np.stack([np.asarray(Image.open(root / "images" / f.name).convert("RGB"))[::step, ::step]
                    for f in files]).astype(np.float64) / 255.0
    return rgb, labs, names


def _shapes_maps(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    from maslow.sample import shapes

    ds = shapes(n, seed=seed)
    a = ds.annotations
    assert a.mask is not None and a.iscrowd is not None
    h, w = int(ds.images.height[0]), int(ds.images.width[0])
    labs = np.zeros((n, h, w), np.int64)  # 0: background
    for r in range(len(a)):
        m = M.decode(a.mask[r]).astype(bool)
        labs[a.image[r]][m] = len(ds.schema.names) + 1 if a.iscrowd[r] else a.label[r] + 1
    return labs, ["background", *ds.schema.names]


def _pixel_oof(rgb: np.ndarray, labs: np.ndarray, k: int, void: int, seed: int) -> np.ndarray:
    """(n, k, h, w) out-of-fold probabilities of a gradient-boosting pixel classifier (5 blocks of frames)."""
    from scipy import ndimage
    from sklearn.ensemble import HistGradientBoostingClassifier

    n, h, w, _ = rgb.shape
    yy, xx = np.mgrid[:h, :w] / np.array([h, w])[:, None, None]
    feats = [rgb, ndimage.gaussian_filter(rgb, (0, 2, 2, 0)), ndimage.gaussian_filter(rgb, (0, 6, 6, 0)),
             np.broadcast_to(np.stack([yy, xx], -1), (n, h, w, 2))]
    x = np.concatenate(feats, axis=-1).reshape(n, h * w, -1)
    y = labs.reshape(n, h * w)
    out = np.zeros((n, k, h * w))
    rng = np.random.default_rng(seed)
    for fold in np.array_split(np.arange(n), 5):
        train = np.setdiff1d(np.arange(n), fold)
        xt, yt = x[train].reshape(-1, x.shape[-1]), y[train].ravel()
        keep = np.flatnonzero(yt != void)
        pick = rng.choice(keep, min(40_000, len(keep)), replace=False)
        model = HistGradientBoostingClassifier(max_iter=60, random_state=seed).fit(xt[pick], yt[pick])
        p = model.predict_proba(x[fold].reshape(-1, x.shape[-1]))
        full = np.full((len(p), k), 1e-6)
        full[:, model.classes_] = p
        out[fold] = (full / full.sum(1, keepdims=True)).reshape(len(fold), h * w, k).transpose(0, 2, 1)
    return out.reshape(n, k, h, w)


def _semantic_datasets(labs: np.ndarray, probs: np.ndarray, names: list[str], void: int | None
                       ) -> tuple[Dataset, Dataset]:
    n, h, w = labs.shape
    k = len(names)
    schema = LabelSchema.from_names([*names, "void"] if void is not None else names,
                                    task=Task.SEMANTIC_SEGMENTATION)
    images = Images(path=obj_array([f"{i}.png" for i in range(n)]), width=np.full(n, w), height=np.full(n, h))
    t_img, t_lab, t_mask, t_crowd, p_img, p_lab, p_mask = [], [], [], [], [], [], []
    arg = probs.argmax(axis=1)
    for i in range(n):
        for c in np.unique(labs[i]).tolist():
            t_img.append(i), t_lab.append(k if c == void else c), t_mask.append(M.encode(labs[i] == c))
            t_crowd.append(c == void)
        for c in np.unique(arg[i]).tolist():
            p_img.append(i), p_lab.append(c), p_mask.append(M.encode(arg[i] == c))
    truth = Dataset(schema, images, Annotations(image=t_img, label=t_lab, mask=obj_array(t_mask),
                                                iscrowd=np.asarray(t_crowd, bool)))
    pred = Dataset(schema, images, Annotations(image=p_img, label=p_lab, mask=obj_array(p_mask), source="model"))
    return truth, pred


def segmentation_row(name: str, labs: np.ndarray, probs: np.ndarray, names: list[str], void: int | None,
                     planted: np.ndarray) -> list[dict[str, Any]]:
    """Two rows: maslow given the class masks (the argmax), and given the probabilities cleanlab gets."""
    from cleanlab.segmentation import rank as sr

    n = len(labs)
    truth, pred = _semantic_datasets(labs, probs, names, void)
    cl_labels = labs if void is None else np.where(labs == void, probs.argmax(axis=1), labs)
    t: dict[str, float] = {}
    with _quiet(), cpu(t, "cleanlab"):
        q, _ = sr.get_label_quality_scores(cl_labels, probs.astype(np.float32), verbose=False, n_jobs=1)
    acc = float(((probs.argmax(1) == labs) | (labs == void)).mean())
    rows = []
    for reads in ("class masks", "probabilities"):
        t.pop("maslow", None)
        with cpu(t, "maslow"):
            issues = find_label_issues(truth, pred, pixel_probs=probs if reads == "probabilities" else None)
        s = image_scores(issues, n)
        rows.append(case("segmentation", f"{name} (maslow reads {reads})", "image", planted, s, 1.0 - q, t, s >= FLAG,
                         None, counts=issues.counts(), pixel_accuracy=acc))
    return rows


def segmentation(seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed + 13)
    rows = []
    cam = _camvid()
    if cam is not None:
        rgb, clean, names = cam
        k, void = len(names), 11
        noisy = clean.copy()
        planted = rng.random(len(noisy)) < 0.3
        for i in np.flatnonzero(planted).tolist():
            _plant_map(noisy[i], k, void, rng)
        t0 = time.process_time()
        probs = _pixel_oof(rgb, noisy, k, void, seed)
        fit = time.process_time() - t0
        rows += [r | {"fit_cpu_s": fit} for r in segmentation_row(
            "camvid_val 90x120, gradient boosting on pixels, out of fold", noisy, probs, names, void, planted)]
        sim = np.stack([_simulated_probs(c, k, rng) for c in clean])
        rows += segmentation_row("camvid_val 90x120, simulated model", noisy, sim, names, void, planted)
    clean, names = _shapes_maps(300, seed)
    k, void = len(names), len(names)
    noisy = clean.copy()
    planted = rng.random(len(noisy)) < 0.3
    for i in np.flatnonzero(planted).tolist():
        _plant_map(noisy[i], k, void, rng)
    sim = np.stack([_simulated_probs(c, k, rng) for c in clean])
    rows += segmentation_row("shapes(300) painted, simulated model", noisy, sim, names, void, planted)
    return rows


# -- main -----------------------------------------------------------------------------------------------

def _f(v: float) -> str:
    return "  -  " if v != v else f"{v:.3f}"


def _pr(d: dict[str, Any] | None) -> str:
    return "-" if d is None else f"{d['n']}: {d['precision']:.2f}/{d['recall']:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| task | data | unit | items / errors | AP maslow | AP cleanlab | AP ratio | R-prec maslow / cleanlab "
            "| flagged maslow (n: P/R) | flagged cleanlab | maslow top as many | CPU-s maslow / cleanlab |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        m, c = r["maslow"], r.get("cleanlab", {})
        ratio = m["ap"] / c["ap"] if c.get("ap") else float("nan")
        cpu_s = f"{m['cpu_s']:.2f} / {c['cpu_s']:.2f}" if m["cpu_s"] == m["cpu_s"] and "cpu_s" in c else ""
        lines.append(f"| {r['task']} | {r['data']} | {r['unit']} | {r['n']:,} / {r['n_errors']:,} | {_f(m['ap'])} | "
                     f"{_f(c.get('ap', float('nan')))} | {_f(ratio)} | {_f(m['r_precision'])} / "
                     f"{_f(c.get('r_precision', float('nan')))} | {_pr(m.get('flagged'))} | "
                     f"{_pr(c.get('flagged'))} | {_pr(m.get('top_as_many'))} | {cpu_s} |")
    return "\n".join(lines)


TASKS = {"classification": classification, "multilabel": multilabel, "detection": detection,
         "segmentation": segmentation}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=",".join(TASKS), help="comma-separated: " + ", ".join(TASKS))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []
    for name in args.only.split(","):
        rows += TASKS[name.strip()](args.seed)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(table(rows))
        for r in rows:
            other = r.get("cleanlab", {}).get("ap_other_methods")
            if other:
                print(f"cleanlab's other rankings, {r['data']}: " + ", ".join(f"{m} AP {_f(v)}" for m, v in other.items()))


if __name__ == "__main__":
    main()
