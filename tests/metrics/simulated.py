"""Simulated detector output for metric tests: truth boxes jittered and scored, misses, class swaps, false alarms."""

from __future__ import annotations

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.tables import Annotations


def simulate(truth: Dataset, *, seed: int = 0, p_miss: float = 0.15, p_swap: float = 0.1, jitter: float = 0.08,
             fp_per_image: float = 0.5, score_decimals: int | None = None) -> Dataset:
    """Predictions on ``truth``'s images (same images table and schema), ``source="model"``.

    ``score_decimals`` rounds the scores (1 gives many ties).
    """
    rng = np.random.default_rng(seed)
    a = truth.annotations
    assert a.box is not None and a.iscrowd is not None
    found = ~a.iscrowd & a.has_box & (rng.random(len(a)) >= p_miss)
    box = a.box[found].copy()
    noise = rng.normal(0, jitter, box.shape)
    box += noise * np.tile(box[:, 2:] - box[:, :2], 2)
    box[:, 2:] = np.maximum(box[:, 2:], box[:, :2] + 1)
    label = a.label[found].copy()
    swap = rng.random(len(label)) < p_swap
    label[swap] = rng.integers(0, len(truth.schema.names), int(swap.sum()))
    score = np.clip(0.95 - 2.5 * np.abs(noise).mean(axis=1) + rng.normal(0, 0.12, len(label)), 0.02, 0.99)
    n_fp = int(rng.poisson(fp_per_image * truth.n_images))
    img = rng.integers(0, max(truth.n_images, 1), n_fp)
    w, h = truth.images.width[img].astype(float), truth.images.height[img].astype(float)
    size = rng.uniform(8, 40, (n_fp, 2))
    x1 = rng.uniform(0, np.maximum(w - size[:, 0], 1))
    y1 = rng.uniform(0, np.maximum(h - size[:, 1], 1))
    fp_box = np.stack([x1, y1, x1 + size[:, 0], y1 + size[:, 1]], axis=1)
    scores = np.r_[score, rng.beta(2, 5, n_fp)]
    if score_decimals is not None:
        scores = np.round(scores, score_decimals)
    ann = Annotations.sort_rows(
        image=np.r_[a.image[found], img], label=np.r_[label, rng.integers(0, len(truth.schema.names), n_fp)],
        box=np.r_[box, fp_box].reshape(-1, 4), score=scores, source="model",
    )
    return truth.replace(annotations=ann)
