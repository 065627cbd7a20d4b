"""Consensus-scoring benchmark: planted label noise, simulated out-of-fold predictions, maslow vs cleanlab vs IoU rules.

Detection (``../shared/data/bccd`` when present, else ``maslow.sample.shapes``):

- Noise, 5% of the clean annotations each (seeded): class swap, dropped box, spurious box (random place, size
  drawn from the data, random class), shifted or scaled box.
- Out-of-fold predictions are simulated from the *clean* truth: each object is found with a jittered box
  (8% missed: half with nothing, half with a weak, loose detection), 5% class confusion (the wrong class,
  scored lower, often beside a weaker right-class box), 20% duplicates with looser boxes and lower scores,
  0.8 false positives per image (random places), and scores drawn higher for correct detections (Beta(8, 0.8),
  as a detector's: many above 0.95; confusions Beta(3, 3), weak detections Beta(1.2, 6), false positives
  Beta(1.5, 5)).
- Every method gets exactly the same noisy truth and predictions: maslow
  (``maslow.quality.consensus.object_scores``), cleanlab's object-detection subtype scores
  (``compute_swap_box_scores``, ``compute_overlooked_box_scores``, ``compute_badloc_box_scores``; cleanlab has no
  extra-box score, so ``extra`` uses its per-box quality ``min(swap, badloc)``), and a simple IoU-matching rule
  on the raw confidences. Then again with confidences compressed to ``0.5 + 0.1 * (s - 0.5)``.
- Per error type: average precision and AUROC of the ranking per annotation (``missing``: per prediction; a
  dropped box counts once, at the first prediction of it in the ranking, further ones are left out for every
  method alike) and per image (image score: the highest of its items).

Classification: 5% of the labels flipped (seeded), out-of-fold probabilities, and maslow scored as ``maslow qa``
runs it: the ranked table of ``find_label_issues(truth, pred)`` with its defaults (every type, one finding per
image; an image not in the table ranks last). Until this benchmark scored only the ``wrong_class`` column
(``one_per_annotation=False``), it could not see that ``ambiguous`` took every image's row in the table. Data:
``../shared/data/mnist_test`` pixels (else scikit-learn's digits) with a 5-fold logistic regression; generated
probabilities (six classes, 15% of the images between two classes, per-class logit offsets of +-1, as a network
that scores some classes lower throughout, and the same without offsets: a calibrated model); and generated
Gaussian blobs (eight classes in close pairs) with a 5-fold logistic regression. Per case: AP and AUROC of the
planted flips, the number of findings per type and the number of images the model disagrees with, precision and
recall of all findings and of the ``wrong_class`` ones; cleanlab's ``rank.get_label_quality_scores`` (AP,
AUROC) and ``filter.find_label_issues`` (its flagged set, and maslow's top as many). maslow again with the
probabilities compressed to ``(0.45 + 0.1 p) / (0.45 K + 0.1)`` (the same ranking is expected).

Speed: 5,000 images with 25,000 boxes (and ``--big``: 1,000,000 annotations) scored, CPU seconds
(``time.process_time``) and peak memory (``resource.getrusage``).

    python benchmarks/consensus_bench.py [--seed 0] [--big] [--no-cleanlab] [--no-classification] [--json]
        [--html report.html]   # the top issues of each type on the noisy data, with crops to judge
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.quality._consensus_det import _group_max, overlaps
from maslow.quality.consensus import find_label_issues, object_scores

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
TYPES = ("wrong_class", "missing", "extra", "low_iou")


# -- data -----------------------------------------------------------------------------------------------

def clean_detection() -> tuple[Dataset, str]:
    bccd = SHARED / "bccd"
    if bccd.is_dir():
        from maslow.io import read_voc

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = read_voc(bccd / "annotations", images_root=bccd / "images")
        return _boxes_only(ds), "bccd"
    from maslow.sample import shapes

    return _boxes_only(shapes(1500, seed=0)), "shapes(1500)"


def _boxes_only(ds: Dataset) -> Dataset:
    a = ds.annotations
    keep = a.has_box & ~np.asarray(a.iscrowd)
    a = a.take(np.flatnonzero(keep))
    return ds.replace(annotations=Annotations(image=a.image, label=a.label, box=a.box),
                      schema=LabelSchema.from_names(ds.schema.names))


def _clip(box: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    out = box.copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, w[:, None])
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, h[:, None])
    out[:, 2] = np.maximum(out[:, 2], out[:, 0] + 1)
    out[:, 3] = np.maximum(out[:, 3], out[:, 1] + 1)
    return out


def _jitter(box: np.ndarray, sigma: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    wh = np.c_[box[:, 2] - box[:, 0], box[:, 3] - box[:, 1], box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]]
    return box + rng.normal(0, 1, box.shape) * wh * np.reshape(sigma, (-1, 1))


def _random_boxes(ds: Dataset, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    a = ds.annotations
    assert a.box is not None
    src = a.box[rng.integers(0, len(a), len(img))]
    bw, bh = src[:, 2] - src[:, 0], src[:, 3] - src[:, 1]
    w, h = ds.images.width[img].astype(float), ds.images.height[img].astype(float)
    x = rng.uniform(0, np.maximum(w - bw, 1))
    y = rng.uniform(0, np.maximum(h - bh, 1))
    return _clip(np.c_[x, y, x + bw, y + bh], w, h)


def simulate_predictions(clean: Dataset, seed: int) -> Dataset:
    """Out-of-fold-like predictions: the model sees the clean truth imperfectly (see the module docstring)."""
    rng = np.random.default_rng(seed)
    a = clean.annotations
    assert a.box is not None
    n, k = len(a), len(clean.schema.classes)
    w, h = clean.images.width[a.image].astype(float), clean.images.height[a.image].astype(float)
    u = rng.random(n)
    found, weak = u >= 0.08, u < 0.04
    conf = found & (rng.random(n) < 0.05)
    img, lab, box, score = [], [], [], []

    def emit(rows: np.ndarray, labels: np.ndarray, boxes: np.ndarray, s: np.ndarray) -> None:
        img.append(a.image[rows])
        lab.append(labels)
        box.append(_clip(boxes, w[rows], h[rows]))
        score.append(s)

    r = np.flatnonzero(found & ~conf)
    emit(r, a.label[r], _jitter(a.box[r], 0.05, rng), rng.beta(8, 0.8, len(r)))  # detector-like: many > 0.95
    r = np.flatnonzero(conf)
    emit(r, (a.label[r] + rng.integers(1, k, len(r))) % k, _jitter(a.box[r], 0.05, rng), rng.beta(3, 3, len(r)))
    r2 = r[rng.random(len(r)) < 0.6]
    emit(r2, a.label[r2], _jitter(a.box[r2], 0.07, rng), rng.beta(2, 4, len(r2)))
    r = np.flatnonzero(weak)
    emit(r, a.label[r], _jitter(a.box[r], 0.12, rng), rng.beta(1.2, 6, len(r)))
    r = np.flatnonzero(found & (rng.random(n) < 0.2))
    emit(r, a.label[r], _jitter(a.box[r], 0.15, rng), rng.beta(8, 0.8, len(r)) * rng.uniform(0.2, 0.6, len(r)))
    fp_img = np.repeat(np.arange(clean.n_images), rng.poisson(0.8, clean.n_images))
    fw, fh = clean.images.width[fp_img].astype(float), clean.images.height[fp_img].astype(float)
    img.append(fp_img)
    lab.append(rng.integers(0, k, len(fp_img)))
    box.append(_clip(_random_boxes(clean, fp_img, rng), fw, fh))
    score.append(rng.beta(1.5, 5, len(fp_img)))
    ann = Annotations.sort_rows(image=np.concatenate(img), label=np.concatenate(lab), box=np.concatenate(box),
                                score=np.concatenate(score), source="model")
    return clean.replace(annotations=ann)


def inject_noise(clean: Dataset, seed: int, rate: float = 0.05) -> tuple[Dataset, np.ndarray, np.ndarray, np.ndarray]:
    """Noisy truth, the kind of each noisy row ("ok", "wrong_class", "extra", "low_iou"), dropped boxes/images."""
    rng = np.random.default_rng(seed + 1)
    a = clean.annotations
    assert a.box is not None
    n, k = len(a), len(clean.schema.classes)
    m = round(rate * n)
    perm = rng.permutation(n)
    swap, drop, shift = perm[:m], perm[m:2 * m], perm[2 * m:3 * m]
    label = a.label.copy()
    label[swap] = (label[swap] + rng.integers(1, k, m)) % k
    box = a.box.copy()
    b = box[shift]
    bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    mode = rng.integers(0, 3, m)
    sx = rng.uniform(0.25, 0.45, m) * rng.choice([-1, 1], m) * (mode != 1)
    sy = rng.uniform(0.25, 0.45, m) * rng.choice([-1, 1], m) * (mode != 0)
    scale = np.where(mode == 2, rng.choice([0.5, 1.8], m), 1.0)
    cx, cy = (b[:, 0] + b[:, 2]) / 2 + sx * bw, (b[:, 1] + b[:, 3]) / 2 + sy * bh
    nb = np.c_[cx - bw * scale / 2, cy - bh * scale / 2, cx + bw * scale / 2, cy + bh * scale / 2]
    box[shift] = _clip(nb, clean.images.width[a.image[shift]].astype(float),
                       clean.images.height[a.image[shift]].astype(float))
    kind = np.full(n, "ok", dtype=object)
    kind[swap], kind[shift] = "wrong_class", "low_iou"
    keep = np.ones(n, bool)
    keep[drop] = False
    sp_img = rng.integers(0, clean.n_images, m)
    sp_box = _random_boxes(clean, sp_img, rng)
    ann = Annotations.sort_rows(
        image=np.r_[a.image[keep], sp_img], label=np.r_[label[keep], rng.integers(0, k, m)],
        box=np.r_[box[keep], sp_box], extra={"kind": obj_array(list(kind[keep]) + ["extra"] * m)})
    noisy = clean.replace(annotations=ann)
    return noisy, np.asarray(ann.extra["kind"]), a.box[drop], a.image[drop]


# -- methods --------------------------------------------------------------------------------------------

def maslow_scores(noisy: Dataset, pred: Dataset) -> dict[str, np.ndarray]:
    s = object_scores(noisy, pred, iou_type="bbox")
    return {**{t: s.annotation[t] for t in ("wrong_class", "extra", "low_iou")}, "missing": s.missing}


def iou_rule_scores(noisy: Dataset, pred: Dataset) -> dict[str, np.ndarray]:
    """Greedy rules on raw confidences: the simple baseline."""
    pa, ta = pred.annotations, noisy.annotations
    assert pa.box is not None and pa.score is not None
    ov = overlaps(noisy, pa.box, pa.image, iou_type="bbox")
    n_t, n_p = len(ta), len(pa)
    same = pa.label[ov.p_idx] == ta.label[ov.t_idx]
    conf = pa.score[ov.p_idx]
    on = ov.iou >= 0.5
    wrong, _ = _group_max(ov.t_idx[on & ~same], conf[on & ~same], n_t)
    best_same, arg = _group_max(ov.t_idx[same], ov.iou[same], n_t)
    wrong = wrong * (best_same < 0.5)
    expl, _ = _group_max(ov.t_idx[on], conf[on], n_t)
    low = np.where(arg >= 0, 1.0 - best_same, 0.0)
    p_best, _ = _group_max(ov.p_idx, ov.iou, n_p)
    return {"wrong_class": wrong, "extra": 1.0 - expl, "low_iou": low, "missing": pa.score * (p_best < 0.5)}


def cleanlab_scores(noisy: Dataset, pred: Dataset) -> dict[str, np.ndarray]:
    from cleanlab.object_detection.rank import (
        compute_badloc_box_scores,
        compute_overlooked_box_scores,
        compute_swap_box_scores,
    )

    ta, pa = noisy.annotations, pred.annotations
    assert ta.box is not None and pa.box is not None and pa.score is not None
    k = len(noisy.schema.classes)
    ts, ps = noisy.image_slices(), pred.image_slices()
    labels, preds, pred_rows = [], [], []
    for i in range(noisy.n_images):
        r = slice(ts[i], ts[i + 1])
        labels.append({"bboxes": ta.box[r].astype(np.float32), "labels": ta.label[r]})
        rows = np.arange(ps[i], ps[i + 1])
        per = []
        order = []
        for c in range(k):
            rc = rows[pa.label[rows] == c]
            per.append(np.c_[pa.box[rc], pa.score[rc]].astype(np.float32).reshape(-1, 5))
            order.append(rc)
        preds.append(per)
        pred_rows.append(np.concatenate(order))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        swap = compute_swap_box_scores(labels=labels, predictions=preds)
        badloc = compute_badloc_box_scores(labels=labels, predictions=preds)
        over = compute_overlooked_box_scores(labels=labels, predictions=preds)
    sw = np.nan_to_num(np.concatenate(swap), nan=1.0) if swap else np.zeros(0)
    bl = np.nan_to_num(np.concatenate(badloc), nan=1.0) if badloc else np.zeros(0)
    miss = np.zeros(len(pa))
    for rows, o in zip(pred_rows, over, strict=True):
        miss[rows] = 1.0 - np.nan_to_num(np.asarray(o, float), nan=1.0)
    return {"wrong_class": 1.0 - sw, "extra": 1.0 - np.minimum(sw, bl), "low_iou": 1.0 - bl, "missing": miss}


# -- evaluation -----------------------------------------------------------------------------------------

def _ap_auc(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if y.all() or not y.any():
        return float("nan"), float("nan")
    return float(average_precision_score(y, s)), float(roc_auc_score(y, s))


def _missing_truth(pred: Dataset, drop_box: np.ndarray, drop_img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n_pred,) index of the dropped box each prediction finds (IoU >= 0.5), -1."""
    order = np.argsort(drop_img, kind="stable")
    dropped = Dataset(schema=pred.schema, images=pred.images,
                      annotations=Annotations(image=drop_img[order], label=np.zeros(len(order), np.int64),
                                              box=drop_box[order]))
    pa = pred.annotations
    assert pa.box is not None
    ov = overlaps(dropped, pa.box, pa.image, iou_type="bbox")
    best, arg = _group_max(ov.p_idx, ov.iou, len(pa))
    hit = np.where((arg >= 0) & (best >= 0.5), ov.t_idx[np.maximum(arg, 0)], -1)
    return hit, drop_img[order]


def evaluate(scores: dict[str, np.ndarray], kind: np.ndarray, noisy: Dataset, pred: Dataset, hit: np.ndarray,
             hit_img: np.ndarray) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    m = noisy.n_images
    for t in TYPES:
        s = np.asarray(scores[t], float)
        if t == "missing":
            order = np.argsort(-s, kind="stable")
            first = np.zeros(len(s), bool)
            _, pos = np.unique(hit[order], return_index=True)
            first[order[pos]] = True
            use = (hit < 0) | first
            y_item, s_item, img = (hit >= 0)[use], s[use], pred.annotations.image[use]
            y_img = np.zeros(m, bool)
            y_img[hit_img] = True
        else:
            y_item, s_item, img = kind == t, s, noisy.annotations.image
            y_img = np.zeros(m, bool)
            y_img[img[y_item]] = True
        s_img = np.zeros(m)
        np.maximum.at(s_img, img, s_item)
        ap, auc = _ap_auc(y_item, s_item)
        ap_i, auc_i = _ap_auc(y_img, s_img)
        out[t] = {"ap": ap, "auroc": auc, "image_ap": ap_i, "image_auroc": auc_i}
    return out


def squeeze(pred: Dataset) -> Dataset:
    a = pred.annotations
    assert a.score is not None
    return pred.replace(annotations=a.with_columns(score=0.5 + 0.1 * (a.score - 0.5)))


def detection(seed: int, use_cleanlab: bool, html: str | None = None) -> dict[str, Any]:
    clean, name = clean_detection()
    pred = simulate_predictions(clean, seed)
    noisy, kind, drop_box, drop_img = inject_noise(clean, seed)
    if html:
        from maslow.quality.consensus_report import write_consensus_html

        write_consensus_html(find_label_issues(noisy, pred, iou_type="bbox"), noisy, html,
                             title=f"maslow qa: planted noise in {name}, simulated out-of-fold predictions")
    hit, hit_img = _missing_truth(pred, drop_box, drop_img)
    res: dict[str, Any] = {"data": name, "n_images": clean.n_images, "n_annotations": noisy.n_annotations,
                           "n_predictions": pred.n_annotations, "results": {}}
    maslow_scores(noisy, pred)  # warm-up (first-call imports), so the CPU seconds below compare the methods
    methods: dict[str, Any] = {"maslow": maslow_scores, "iou_rules": iou_rule_scores}
    if use_cleanlab:
        methods["cleanlab"] = cleanlab_scores
    for conf_name, p in (("raw", pred), ("compressed", squeeze(pred))):
        for mname, fn in methods.items():
            t0 = time.process_time()
            sc = fn(noisy, p)
            cpu = time.process_time() - t0
            res["results"][f"{mname}/{conf_name}"] = {**evaluate(sc, kind, noisy, p, hit, hit_img), "cpu_s": cpu}
    return res


# -- classification -------------------------------------------------------------------------------------

def _flip(y: np.ndarray, k: int, rng: np.random.Generator, rate: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    flip = rng.random(len(y)) < rate
    noisy = y.copy()
    noisy[flip] = (y[flip] + rng.integers(1, k, int(flip.sum()))) % k
    return noisy, flip


def _oof(x: np.ndarray, y: np.ndarray, **lr: Any) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    t0 = time.process_time()
    p = cross_val_predict(LogisticRegression(max_iter=500, **lr), x, y, cv=5, method="predict_proba")
    return p, time.process_time() - t0


def classification_cases(seed: int) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, float]]:
    """(name, out-of-fold probabilities, noisy labels, flipped, fit CPU-s) of every classification case."""
    rng = np.random.default_rng(seed)
    d = SHARED / "mnist_test"
    y: np.ndarray
    if d.is_dir():
        raw = gzip.open(d / "images" / "t10k-images-idx3-ubyte.gz").read()
        x = np.frombuffer(raw[16:], np.uint8).reshape(-1, 784) / 255.0
        y = np.frombuffer(gzip.open(d / "annotations" / "t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)
        name = "mnist_test pixels, 5-fold logistic regression"
    else:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        name = "sklearn digits, 5-fold logistic regression"
    y = y.astype(np.int64)
    noisy, flip = _flip(y, int(y.max()) + 1, rng)
    p, fit = _oof(x, noisy, C=0.05)
    cases = [(name, p, noisy, flip, fit)]
    for offset in (1.0, 0.0):  # generated probabilities
        n, k = 5000, 6
        y = rng.integers(0, k, n)
        logits = rng.normal(0, 1, (n, k))
        logits[np.arange(n), y] += 3.0
        amb = rng.random(n) < 0.15
        logits[np.flatnonzero(amb), (y[amb] + 1) % k] += 3.0 * rng.uniform(0.6, 1.1, int(amb.sum()))
        logits += rng.uniform(-offset, offset, k)[None, :]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        noisy, flip = _flip(y, k, rng)
        label = "per-class offsets +-1" if offset else "calibrated, no offsets"
        cases.append((f"generated probabilities, {label}", e / e.sum(axis=1, keepdims=True), noisy, flip, 0.0))
    n, k, dim = 5000, 8, 10  # generated blobs in close pairs, a fitted model
    means = rng.normal(0, 2.0, (k, dim))
    means[k // 2:] = means[:k // 2] + rng.normal(0, 0.6, (k // 2, dim))
    y = rng.integers(0, k, n)
    noisy, flip = _flip(y, k, rng)
    p, fit = _oof(means[y] + rng.normal(0, 1, (n, dim)), noisy)
    cases.append(("generated blobs, 5-fold logistic regression", p, noisy, flip, fit))
    return cases


def _pr(flagged: np.ndarray, flip: np.ndarray) -> dict[str, Any]:
    hit = int((flagged & flip).sum())
    return {"n": int(flagged.sum()), "precision": hit / max(int(flagged.sum()), 1), "recall": hit / max(int(flip.sum()), 1)}


def classification_case(p: np.ndarray, noisy: np.ndarray, flip: np.ndarray, use_cleanlab: bool) -> dict[str, Any]:
    n, k = p.shape
    schema = LabelSchema.from_names([str(i) for i in range(k)], task=Task.CLASSIFICATION)
    images = Images(path=obj_array([f"{i}" for i in range(n)]), width=np.ones(n, np.int64),
                    height=np.ones(n, np.int64))
    truth = Dataset(schema, images, Annotations(image=np.arange(n), label=noisy))
    row: dict[str, Any] = {"n": n, "n_errors": int(flip.sum()), "n_disagreements": int((p.argmax(1) != noisy).sum())}
    ranked: dict[str, np.ndarray] = {}
    for conf_name, q in (("raw", p), ("compressed", (0.45 + 0.1 * p) / (0.45 * k + 0.1))):
        pred = truth.replace(annotations=Annotations(image=np.arange(n), label=q.argmax(1), score=q.max(1),
                                                     extra={"probs": q}))
        t0 = time.process_time()
        iss = find_label_issues(truth, pred)  # what `maslow qa` runs
        cpu = time.process_time() - t0
        s = np.zeros(n)
        s[iss.image] = iss.score  # one finding per image; images without one rank last
        found = np.zeros(n, bool)
        found[iss.image] = True
        wrong = np.zeros(n, bool)
        wrong[iss.of_type("wrong_class").image] = True
        ap, auc = _ap_auc(flip, s)
        row[f"maslow/{conf_name}"] = {"ap": ap, "auroc": auc, "cpu_s": cpu, "counts": iss.counts(),
                                      "all": _pr(found, flip), "wrong_class": _pr(wrong, flip)}
        ranked[conf_name] = s
    if use_cleanlab:
        from cleanlab.filter import find_label_issues as cl_find
        from cleanlab.rank import get_label_quality_scores

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.process_time()
            q = 1.0 - get_label_quality_scores(noisy, p)
            flagged = cl_find(noisy, p)
            cpu = time.process_time() - t0
        ap, auc = _ap_auc(flip, q)
        top = np.zeros(n, bool)
        top[np.argsort(-ranked["raw"], kind="stable")[:int(flagged.sum())]] = True
        row["cleanlab"] = {"ap": ap, "auroc": auc, "cpu_s": cpu, "find_label_issues": _pr(flagged, flip)}
        row["maslow/raw"]["top_as_many_as_cleanlab"] = _pr(top, flip)
    return row


def classification(seed: int, use_cleanlab: bool) -> dict[str, Any]:
    return {name: {"fit_cpu_s": fit, **classification_case(p, noisy, flip, use_cleanlab)}
            for name, p, noisy, flip, fit in classification_cases(seed)}


# -- speed ----------------------------------------------------------------------------------------------

def synthetic(n_images: int, per_image: int, seed: int) -> tuple[Dataset, Dataset]:
    rng = np.random.default_rng(seed)
    k = 10
    per = rng.poisson(per_image, n_images)
    img = np.repeat(np.arange(n_images), per)
    n = len(img)
    side = np.exp(rng.normal(3.5, 0.4, n))
    x, y = rng.uniform(0, 640 - side), rng.uniform(0, 480 - side)
    images = Images(path=obj_array([f"{i}.jpg" for i in range(n_images)]), width=np.full(n_images, 640),
                    height=np.full(n_images, 480))
    clean = Dataset(LabelSchema.from_names([f"c{i}" for i in range(k)]), images,
                    Annotations(image=img, label=rng.integers(0, k, n), box=np.c_[x, y, x + side, y + side]))
    return clean, simulate_predictions(clean, seed)


def speed(n_images: int, per_image: int, seed: int) -> dict[str, Any]:
    truth, pred = synthetic(n_images, per_image, seed)
    t0, w0 = time.process_time(), time.perf_counter()
    object_scores(truth, pred, iou_type="bbox")
    t1 = time.process_time()
    iss = find_label_issues(truth, pred, iou_type="bbox")
    t2, w2 = time.process_time(), time.perf_counter()
    return {"n_images": n_images, "n_annotations": truth.n_annotations, "n_predictions": pred.n_annotations,
            "scores_cpu_s": t1 - t0, "table_cpu_s": t2 - t1, "wall_s": w2 - w0, "n_issues": len(iss),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# -- main -----------------------------------------------------------------------------------------------

def _fmt(v: float) -> str:
    return "  nan" if v != v else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--big", action="store_true", help="also score 1,000,000 annotations")
    ap.add_argument("--no-cleanlab", action="store_true")
    ap.add_argument("--no-classification", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--html", help="write the top issues of each type, with crops, to this HTML file")
    args = ap.parse_args()
    use_cl = not args.no_cleanlab
    out: dict[str, Any] = {"detection": detection(args.seed, use_cl, args.html)}
    if not args.no_classification:
        out["classification"] = classification(args.seed, use_cl)
    out["speed"] = [speed(5000, 5, args.seed)]
    if args.big:
        out["speed"].append(speed(200_000, 5, args.seed))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    d = out["detection"]
    print(f"Detection on {d['data']}: {d['n_images']} images, {d['n_annotations']} noisy annotations, "
          f"{d['n_predictions']} predictions; 5% each of class swap, dropped, spurious, shifted/scaled")
    print(f"{'method/confidences':26s} " + " ".join(f"{t:>21s}" for t in TYPES) + "   cpu s")
    print(f"{'':26s} " + " ".join(f"{'AP  AUROC  imgAP':>21s}" for _ in TYPES))
    for name, r in d["results"].items():
        cells = " ".join(f"{_fmt(r[t]['ap'])} {_fmt(r[t]['auroc'])} {_fmt(r[t]['image_ap'])}".rjust(21) for t in TYPES)
        print(f"{name:26s} {cells}   {r['cpu_s']:.2f}")
    if "classification" in out:
        print("\nClassification: 5% flipped labels; maslow = the ranked table `maslow qa` writes")
        for name, c in out["classification"].items():
            print(f"  {name}: {c['n']} images, {c['n_errors']} flipped, the model disagrees with {c['n_disagreements']}")
            for m in ("maslow/raw", "maslow/compressed", "cleanlab"):
                if m not in c:
                    continue
                v = c[m]
                sets = {key: v[key] for key in ("all", "wrong_class", "top_as_many_as_cleanlab", "find_label_issues")
                        if key in v}
                pr = "  ".join(f"{key} n={x['n']} P={x['precision']:.3f} R={x['recall']:.3f}" for key, x in sets.items())
                counts = f" {v['counts']}" if "counts" in v else ""
                print(f"    {m:18s} AP={_fmt(v['ap'])} AUROC={_fmt(v['auroc'])}  {pr}{counts}")
    for s in out["speed"]:
        print(f"\nSpeed: {s['n_images']} images, {s['n_annotations']} boxes, {s['n_predictions']} predictions: "
              f"scores {s['scores_cpu_s']:.2f} CPU-s, ranked table {s['table_cpu_s']:.2f} CPU-s "
              f"({s['n_issues']} issues), wall {s['wall_s']:.1f} s, peak RSS {s['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
