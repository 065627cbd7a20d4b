"""Consensus scoring of oriented boxes: planted label errors ranked with ``iou_type="obb"`` (the oriented boxes' IoU)
against ``iou_type="bbox"`` (their extents').

Scenes (400 images of 512 x 512 px each, seeded): ``sparse``, ``maslow.sample.oriented`` (0-14 planes, ships and
vehicles a tile, placed apart); ``dense``, per image a row of 4-9 ships moored side by side and a parking row of 6-14
vehicles, neighbours 1.3 widths apart at one angle per row (their extents overlap, the boxes do not), and 0-2
planes. The model: ``maslow.sample.oriented_predictions`` of the clean truth (10% misses, 5% wrong classes, a false
alarm per image), with its default localisation noise (centre and size jittered by 6% of the length, the angle by
0.1 rad) and a sharper one (3%, 0.03 rad). Planted in the truth, ``--n`` of each on distinct objects: swapped
classes, dropped boxes, spurious boxes (anywhere, any class), ships and vehicles turned by 20-40 degrees about their
centre (a near-square plane turned is much the same box), boxes shifted by 0.25-0.45 of their mean side.

Per error type: the average precision of the planted errors against the clean objects by the score of the type that
should find them (``object_scores``: ``wrong_class``, ``extra``, ``low_iou`` per annotation; ``missing`` per
prediction, a prediction of a dropped object, oriented IoU >= 0.5, the positive), and the precision at k = ``--n``
of that type's findings in the table ``find_label_issues`` ranks (each annotation under its highest type; among the
findings on clean objects and on that error's).

    python benchmarks/consensus_obb.py [--seeds 5] [--n 40]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.obb import corners_from_xywhr, oriented_corners, quad_areas, xywhr_from_corners
from maslow.core.polygons import Polygons
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.metrics import _obb
from maslow.quality import find_label_issues
from maslow.quality.consensus import object_scores
from maslow.sample import oriented, oriented_predictions

#: (name, the type that should find it, its code in ``plant``'s kinds)
ERRORS = (("swapped class", "wrong_class", 1), ("dropped box", "missing", 2), ("spurious box", "extra", 5),
          ("turned 20-40 degrees", "low_iou", 3), ("shifted", "low_iou", 4))
MODELS = {"default": (0.06, 0.1), "sharp": (0.03, 0.03)}


def _dataset(quads: np.ndarray, image: np.ndarray, label: np.ndarray, images: Images | None = None) -> Dataset:
    base = oriented(0)
    return base.replace(images=images if images is not None else base.images, annotations=Annotations(
        image=image, label=label, box=np.c_[quads.min(axis=1), quads.max(axis=1)],
        polygon=Polygons.from_rows([[q.ravel()] for q in quads])))


def dense(n_images: int, *, seed: int, size: int = 512) -> Dataset:
    """The dense scene (module docstring), with ``oriented``'s classes."""
    rng = np.random.default_rng(seed)
    img, lab, xywhr = [], [], []
    for i in range(n_images):
        for cls, (lo, hi), aspect, count in ((1, (60, 110), 0.2, (4, 10)), (2, (14, 22), 0.5, (6, 15))):
            length = float(rng.uniform(lo, hi))
            w = length * aspect
            k = int(rng.integers(*count))
            r = float(rng.uniform(-np.pi / 2, np.pi / 2))
            u, v = np.array([np.cos(r), np.sin(r)]), np.array([-np.sin(r), np.cos(r)])
            reach = np.abs(u) * length / 2 + np.abs(v) * ((k - 1) * 1.3 * w / 2 + w / 2) + 2
            c0 = rng.uniform(reach, size - reach)
            for j in range(k):
                c = c0 + v * (j - (k - 1) / 2) * 1.3 * w
                xywhr.append([c[0], c[1], length, w, r])
                img.append(i)
                lab.append(cls)
        for _ in range(int(rng.integers(0, 3))):
            length = float(rng.uniform(30, 80))
            xywhr.append([*rng.uniform(length, size - length, 2), length, 0.9 * length, rng.uniform(-1.5, 1.5)])
            img.append(i)
            lab.append(0)
    images = Images(path=obj_array([f"images/dense_{i:04d}.png" for i in range(n_images)]),
                    width=np.full(n_images, size), height=np.full(n_images, size))
    return _dataset(corners_from_xywhr(np.asarray(xywhr)), np.asarray(img, np.int64), np.asarray(lab, np.int64),
                    images)


def plant(clean: Dataset, n: int, rng: np.random.Generator) -> tuple[Dataset, np.ndarray, np.ndarray, np.ndarray]:
    """The truth with ``n`` errors of each kind planted; each row's kind (0 clean, codes of ``ERRORS``), and the
    dropped objects' corners and images."""
    a = clean.annotations
    quads = oriented_corners(a, np.arange(len(a)))
    rows = rng.permutation(len(a))
    swap, drop, shift = (rows[k * n:(k + 1) * n] for k in range(3))
    rest = rows[3 * n:]
    b = xywhr_from_corners(quads[rest])
    turn = rest[np.minimum(b[:, 2], b[:, 3]) < 0.7 * np.maximum(b[:, 2], b[:, 3])][:n]
    k = len(clean.schema.names)
    label = a.label.copy()
    label[swap] = (label[swap] + rng.integers(1, k, n)) % k
    q = quads.copy()
    b = xywhr_from_corners(q[turn])
    b[:, 4] += np.deg2rad(rng.uniform(20, 40, len(turn))) * rng.choice([-1, 1], len(turn))
    q[turn] = corners_from_xywhr(b)
    b = xywhr_from_corners(q[shift])
    ang = rng.uniform(0, 2 * np.pi, n)
    q[shift] += (rng.uniform(0.25, 0.45, n) * (b[:, 2] + b[:, 3]) / 2)[:, None, None] * \
        np.c_[np.cos(ang), np.sin(ang)][:, None, :]
    size = float(clean.images.width[0])
    spurious = corners_from_xywhr(np.c_[rng.uniform(40, size - 40, (n, 2)), rng.uniform(20, 80, n),
                                        rng.uniform(8, 30, n), rng.uniform(-np.pi / 2, np.pi / 2, n)])
    keep = np.ones(len(a), bool)
    keep[drop] = False
    kind = np.zeros(len(a), np.int64)
    kind[swap], kind[turn], kind[shift] = 1, 3, 4
    img = np.r_[a.image[keep], rng.integers(0, clean.n_images, n)]
    order = np.argsort(img, kind="stable")
    noisy = _dataset(np.concatenate([q[keep], spurious])[order], img[order],
                     np.r_[label[keep], rng.integers(0, k, n)][order], clean.images)
    return noisy, np.r_[kind[keep], np.full(n, 5)][order], quads[drop], a.image[drop]


def sightings(pred: Dataset, quads: np.ndarray, image: np.ndarray) -> np.ndarray:
    """(n_pred,) the prediction is on one of the objects ``quads`` of images ``image`` (oriented IoU >= 0.5)."""
    pa = pred.annotations
    p_quads = _obb.corners(pred, np.arange(len(pa)), "pred")
    t_quads = _obb.corners(_dataset(quads, np.zeros(len(quads), np.int64), np.zeros(len(quads), np.int64),
                                    pred.images), np.arange(len(quads)), "dropped")
    t_idx = np.repeat(np.arange(len(quads)), [int((pa.image == i).sum()) for i in image.tolist()])
    p_idx = np.concatenate([np.flatnonzero(pa.image == i) for i in image.tolist()] or [np.zeros(0, np.int64)])
    iou = _obb.iou_pairs(p_quads, t_quads, quad_areas(p_quads), quad_areas(t_quads), p_idx.astype(np.int64),
                         t_idx.astype(np.int64), np.zeros(len(quads), bool))
    out = np.zeros(len(pa), bool)
    out[p_idx[iou >= 0.5]] = True
    return out


def average_precision(score: np.ndarray, positive: np.ndarray) -> float:
    hit = positive[np.argsort(-score, kind="stable")]
    if not hit.any():
        return float("nan")
    return float((np.cumsum(hit) / np.arange(1, len(hit) + 1))[hit].mean())


def run(scene: str, model: str, seed: int, n: int) -> dict[str, dict[str, tuple[float, float]]]:
    """iou type -> error -> (AP, precision at n)."""
    clean = oriented(400, seed=seed) if scene == "sparse" else dense(400, seed=seed)
    jitter, angle = MODELS[model]
    pred = oriented_predictions(clean, seed=seed + 100, jitter=jitter, angle_jitter=angle)
    noisy, kinds, d_quads, d_img = plant(clean, n, np.random.default_rng(seed + 200))
    seen = sightings(pred, d_quads, d_img)
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for iou_type in ("obb", "bbox"):
        s = object_scores(noisy, pred, iou_type=iou_type)
        issues = find_label_issues(noisy, pred, iou_type=iou_type)
        res = {}
        for name, t, code in ERRORS:
            if t == "missing":
                ap = average_precision(s.missing, seen)
                top = np.argsort(-s.missing, kind="stable")[:n]
                pk = float(seen[top[s.missing[top] > 0]].sum() / n)
            else:
                sel = (kinds == 0) | (kinds == code)
                ap = average_precision(s.annotation[t][sel], kinds[sel] == code)
                fk = kinds[issues.of_type(t).annotation]
                pk = float((fk[(fk == 0) | (fk == code)][:n] == code).sum() / n)
            res[name] = (ap, pk)
        out[iou_type] = res
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--n", type=int, default=40, help="errors planted of each kind")
    args = ap.parse_args(argv)
    cases = [(scene, model) for scene in ("sparse", "dense") for model in MODELS]
    runs: dict[tuple[str, str], list[Any]] = {c: [run(*c, s, args.n) for s in range(args.seeds)] for c in cases}
    for metric, title in ((0, "average precision"), (1, f"precision at {args.n}")):
        print(f"\n{title} of the planted errors, {args.seeds} seeds: mean (lowest)\n")
        print("| planted error (type) | " + " | ".join(f"{sc}, {m} {k}" for sc, m in cases for k in ("obb", "bbox"))
              + " |")
        print("|---|" + "---|" * (2 * len(cases)))
        for name, t, _ in ERRORS:
            cells = []
            for c in cases:
                for k in ("obb", "bbox"):
                    v = np.array([r[k][name][metric] for r in runs[c]])
                    cells.append(f"{np.nanmean(v):.2f} ({np.nanmin(v):.2f})")
            print(f"| {name} (`{t}`) | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
