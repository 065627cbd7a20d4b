"""Planted label flips found by maslow's ranked table (the table ``maslow qa`` writes) against cleanlab's
``rank.get_label_quality_scores``: generated probabilities, and out-of-fold predictions on mnist_test."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from maslow.quality import find_label_issues
from tests.conftest import shared_path
from tests.quality.test_consensus_cls_behaviour import _data


def _ap(y: np.ndarray, s: np.ndarray) -> float:
    order = np.argsort(-s, kind="stable")
    hits = y[order]
    prec = np.cumsum(hits) / np.arange(1, len(y) + 1)
    return float((prec * hits).sum() / max(hits.sum(), 1))


def _both(noisy: np.ndarray, p: np.ndarray, flip: np.ndarray) -> tuple[float, float, int]:
    """AP of the planted flips: maslow's table (absent images last) and cleanlab's quality ranking."""
    rank = pytest.importorskip("cleanlab.rank")
    issues = find_label_issues(*_data(noisy, p))
    s = np.zeros(len(noisy))
    s[issues.image] = issues.score
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cl = 1.0 - rank.get_label_quality_scores(noisy, p)
    return _ap(flip, s), _ap(flip, cl), len(issues)


def _generated(seed: int, offset: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Six classes, 15% of the images between two of them, 5% of the labels flipped; ``offset``: per-class
    logit offsets in [-offset, offset] (a model that scores some classes lower throughout, as trained networks do)."""
    rng = np.random.default_rng(seed)
    n, k = 3000, 6
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += 3.0
    amb = rng.random(n) < 0.15
    logits[np.flatnonzero(amb), (y[amb] + 1) % k] += 3.0 * rng.uniform(0.6, 1.1, amb.sum())
    logits += rng.uniform(-offset, offset, k)[None, :]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    flip = rng.random(n) < 0.05
    noisy = y.copy()
    noisy[flip] = (y[flip] + rng.integers(1, k, flip.sum())) % k
    return p, noisy, flip


@pytest.mark.parametrize("seed", range(3))
def test_planted_flips_rank_at_least_as_well_as_cleanlab_on_generated_data(seed: int) -> None:
    # per-class offsets: per-class calibration (confident learning's per-class thresholds) is what finds the flips
    p, noisy, flip = _generated(seed, offset=1.0)
    ours, theirs, _ = _both(noisy, p, flip)
    assert ours >= theirs + 0.02, (ours, theirs)
    # a calibrated model with no offsets: cleanlab's self-confidence is as good as a ranking gets; on a par
    p, noisy, flip = _generated(seed, offset=0.0)
    ours, theirs, _ = _both(noisy, p, flip)
    assert ours >= theirs - 0.02, (ours, theirs)


@pytest.mark.shared
def test_planted_flips_rank_at_least_as_well_as_cleanlab_on_mnist() -> None:
    decomposition = pytest.importorskip("sklearn.decomposition")
    linear = pytest.importorskip("sklearn.linear_model")
    selection = pytest.importorskip("sklearn.model_selection")
    from maslow.io.images import read_idx

    root = shared_path("mnist_test")
    n = 4000
    x = read_idx(root / "images" / "t10k-images-idx3-ubyte.gz")[:n].reshape(n, -1) / 255.0
    y = read_idx(root / "annotations" / "t10k-labels-idx1-ubyte.gz")[:n].astype(np.int64)
    rng = np.random.default_rng(0)
    flip = rng.random(n) < 0.05
    noisy = y.copy()
    noisy[flip] = (y[flip] + rng.integers(1, 10, flip.sum())) % 10
    z = decomposition.PCA(20, random_state=0).fit_transform(x)
    p = selection.cross_val_predict(linear.LogisticRegression(max_iter=300), z, noisy, cv=5, method="predict_proba")
    ours, theirs, n_issues = _both(noisy, p, flip)
    assert ours >= theirs, (ours, theirs)
    disagreements = int((p.argmax(1) != noisy).sum())
    assert n_issues <= 2 * disagreements  # about the model's disagreements, not every image
