"""Simulated detector output for the demo: the truth boxes perturbed, with scores, misses, wrong classes and
false alarms, written as a COCO results file.

Usage: python scripts/demo_predictions.py TRUTH.json OUT.json [--seed N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.tables import Annotations
from maslow.io.coco import read_coco
from maslow.io.coco_results import write_coco_results


def simulate(truth: Dataset, *, seed: int = 0, p_miss: float = 0.15, p_swap: float = 0.08, jitter: float = 0.07,
             fp_per_image: float = 0.6) -> Dataset:
    """Predictions on truth's images: each non-crowd object is found with probability ``1 - p_miss`` (box
    jittered by ``jitter`` of its size, class swapped with probability ``p_swap``), scored high when found
    well; plus ``fp_per_image`` random false alarms per image, scored low."""
    rng = np.random.default_rng(seed)
    a = truth.annotations
    assert a.box is not None and a.iscrowd is not None
    found = ~a.iscrowd & a.has_box & (rng.random(len(a)) >= p_miss)
    box = a.box[found].copy()
    wh = np.tile(box[:, 2:] - box[:, :2], 2)
    noise = rng.normal(0, jitter, box.shape)
    box += noise * wh
    box[:, 2:] = np.maximum(box[:, 2:], box[:, :2] + 1)
    label = a.label[found].copy()
    swap = rng.random(len(label)) < p_swap
    label[swap] = rng.integers(0, len(truth.schema.names), int(swap.sum()))
    # better-localised boxes get higher scores, with noise
    score = np.clip(0.95 - 2.5 * np.abs(noise).mean(axis=1) + rng.normal(0, 0.12, len(label)), 0.02, 0.99)
    n_fp = rng.poisson(fp_per_image * truth.n_images)
    img = rng.integers(0, truth.n_images, n_fp)
    w, h = truth.images.width[img].astype(float), truth.images.height[img].astype(float)
    size = rng.uniform(10, 40, (n_fp, 2))
    x1, y1 = rng.uniform(0, np.maximum(w - size[:, 0], 1)), rng.uniform(0, np.maximum(h - size[:, 1], 1))
    fp_box = np.stack([x1, y1, x1 + size[:, 0], y1 + size[:, 1]], axis=1)
    ann = Annotations.sort_rows(
        image=np.r_[a.image[found], img], label=np.r_[label, rng.integers(0, len(truth.schema.names), n_fp)],
        box=np.r_[box, fp_box], score=np.round(np.r_[score, rng.beta(2, 6, n_fp)], 4), source="model",
    )
    return truth.replace(annotations=ann)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("truth", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    truth = read_coco(args.truth)
    pred = simulate(truth, seed=args.seed)
    rep = write_coco_results(pred, args.out)
    print(f"wrote {rep.n_annotations} simulated predictions for {truth.n_annotations} truth objects on "
          f"{truth.n_images} images to {args.out}")


if __name__ == "__main__":
    main()
