"""Outliers: images far from the rest in embedding space.

Glossary:
    outlier score: mean Euclidean distance from an image's embedding to its ``k`` nearest neighbours (higher is
        more unusual). Embeddings from maslow's embedders are L2-normalised, so scores lie in [0, 2].
    robust threshold: ``median + n_mads * 1.4826 * MAD`` of the scores (MAD: median absolute deviation; 1.4826
        makes it a standard deviation for Gaussian data), so a few extreme images do not raise the bar.
    local ratio: an image's score over the median score of its ``n_neighbors`` (10) nearest neighbours (local
        density, as LOF). An isolated image (a glitch frame, a corrupt scan) scores several times its neighbours;
        a member of a sparser but genuine group (a second camera, a rarer domain) scores about as its neighbours,
        which are its group. An outlier must pass both tests: above the threshold and at least ``min_ratio`` times
        its neighbours' score (``min_ratio=0``: the threshold alone). ``maslow select``'s quality gate is the same
        test (``k=3``, ``gate_mads``, ``gate_ratio``).
    unreadable: an image that can't be decoded (``dataset_outliers``) is listed first, with its reason, as an
        outlier of its own: it has no score (NaN) and does not count in the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray, frozen, obj_array
from maslow.diversity._neighbors import as_features, knn
from maslow.errors import MaslowError


@dataclass(frozen=True, eq=False)
class OutlierResult:
    """Outlier scores of m images, ranked.

    Attributes:
        score: (m,) float64, mean distance to the k nearest neighbours (higher = more unusual; NaN for an
            unreadable image).
        ranking: (m,) int64, image rows from the most to the least unusual (unreadable images first; stable for
            ties).
        threshold: the robust threshold (median + n_mads scaled MADs of ``score``, readable images only).
        is_outlier: (m,) bool, ``score > threshold`` and ``ratio >= min_ratio``, or unreadable.
        k: neighbours used.
        ratio: (m,) float64, the local ratio: ``score`` over the median score of the image's 10 nearest
            neighbours (NaN when undefined: one image, or unreadable).
        min_ratio: the local ratio an outlier needs (0: the threshold alone).
        above_threshold: (m,) bool, ``score > threshold`` (outliers, and sparse-group members the local test kept).
        paths: (m,) image paths when computed from a Dataset, else None.
        unreadable: (u,) int64 image rows that could not be read (outliers, listed first).
        unreadable_reason: (u,) str, why each could not be read (``"unreadable: <file>: <why>"``).
        embedder: the embedder that embedded the images (``maslow.embed.describe_embedder``: name, weights file,
            device) for ``dataset_outliers``; None when features were given.
    """

    score: FloatArray
    ranking: IntArray
    threshold: float
    is_outlier: BoolArray
    k: int
    ratio: FloatArray
    min_ratio: float
    above_threshold: BoolArray
    paths: np.ndarray | None = None
    unreadable: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    unreadable_reason: np.ndarray = field(default_factory=lambda: obj_array([]))
    embedder: dict[str, str] | None = None

    @property
    def n_outliers(self) -> int:
        return int(self.is_outlier.sum())

    @property
    def n_kept_by_ratio(self) -> int:
        """Images above the threshold that are not outliers: under ``min_ratio`` times their neighbours' score."""
        return int((self.above_threshold & ~self.is_outlier).sum())

    def top(self, n: int | None = None) -> IntArray:
        """Image rows of the outliers (above the threshold), most unusual first; at most ``n``."""
        rows = self.ranking[self.is_outlier[self.ranking]]
        return rows if n is None else rows[:n]

    def reason(self, i: int) -> str:
        """Why image row ``i`` is (or is not) an outlier, in words."""
        hit = np.flatnonzero(self.unreadable == i)
        if len(hit):
            return str(self.unreadable_reason[hit[0]])
        r = float(self.ratio[i])
        local = "" if np.isnan(r) else f", {r:.3g} x its neighbours'"
        cmp = ">" if self.score[i] > self.threshold else "<="
        return f"kNN distance {self.score[i]:.3g} {cmp} threshold {self.threshold:.3g}{local}"

    def to_dict(self, *, limit: int | None = None) -> dict[str, Any]:
        rows = self.top(limit)
        return {
            "k": self.k, "threshold": _num(self.threshold), "min_ratio": self.min_ratio, "n_images": len(self.score),
            "n_outliers": self.n_outliers, "n_kept_by_ratio": self.n_kept_by_ratio,
            "n_unreadable": len(self.unreadable), "embedder": self.embedder,
            "outliers": [{"image": int(i), "score": _num(self.score[i]), "ratio": _num(self.ratio[i]),
                          "reason": self.reason(int(i)),
                          **({"path": str(self.paths[i])} if self.paths is not None else {})} for i in rows],
        }

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame({"image": np.arange(len(self.score)), "score": self.score, "ratio": self.ratio,
                             "is_outlier": self.is_outlier,
                             **({"path": self.paths} if self.paths is not None else {})})


def _num(x: float) -> float | None:
    """A float for JSON: None for NaN (JSON has no NaN)."""
    return None if math.isnan(x) else float(x)


def outlier_scores(features: np.ndarray, *, k: int = 10) -> FloatArray:
    """(m,) mean distance of each row to its ``k`` nearest other rows (0 when m == 1)."""
    return _scores(features, k=k)[0]


def _scores(features: np.ndarray, *, k: int, n_neighbors: int = 10) -> tuple[FloatArray, FloatArray]:
    """(score, ratio): the mean distance to the ``k`` nearest rows, and the local ratio over ``n_neighbors``."""
    x = as_features(features, where="outliers")
    # centred in float64 first: distances don't change, but a large common offset would swamp them in float32
    if len(x):
        x64 = np.asarray(features, np.float64)
        x = (x64 - x64.mean(axis=0)).astype(np.float32)
    dist, nn = knn(x, k=max(k, n_neighbors))
    score = dist[:, :k].mean(axis=1) if dist.shape[1] else np.zeros(len(x))
    nb = nn[:, :n_neighbors]
    if not nb.shape[1]:
        return score, np.full(len(x), np.nan)
    return score, score / np.maximum(np.median(score[nb], axis=1), 1e-12)


def robust_threshold(score: np.ndarray, *, n_mads: float = 3.0) -> float:
    """``median + n_mads * 1.4826 * MAD`` of ``score`` (nan for no scores)."""
    if not len(score):
        return float("nan")
    med = float(np.median(score))
    mad = float(np.median(np.abs(score - med))) * 1.4826
    return med + n_mads * mad


def _check(k: int, n_mads: float, min_ratio: float) -> None:
    if k < 1:
        raise MaslowError(f"outliers: k must be >= 1, got {k}")
    if not n_mads >= 0 or math.isinf(n_mads):
        raise MaslowError(f"outliers: n_mads must be a number >= 0, got {n_mads}")
    if not min_ratio >= 0 or math.isinf(min_ratio):
        raise MaslowError(f"outliers: min_ratio must be a number >= 0 (0: the threshold alone), got {min_ratio}")


def outliers(features: np.ndarray, *, k: int = 10, n_mads: float = 3.0, min_ratio: float = 3.0) -> OutlierResult:
    """Rank images by their mean distance to the k nearest neighbours in embedding space.

    An outlier is above the robust threshold and at least ``min_ratio`` times the median score of its 10 nearest
    neighbours (local density, as LOF: see the module glossary), so that a sparser but genuine group of images is
    not listed whole while an isolated image is. ``maslow select``'s quality gate is this test.

    Args:
        features: (m, d) embeddings, one row per image.
        k: neighbours averaged per image (capped at m - 1).
        n_mads: the threshold is ``median + n_mads`` scaled MADs of the scores.
        min_ratio: the local ratio an outlier needs; 0 switches the local test off (the threshold alone).

    Returns:
        OutlierResult with scores, local ratios, the ranking and the outliers.

    Raises:
        MaslowError: ``k`` < 1, or ``n_mads`` or ``min_ratio`` not a number >= 0.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(200, 8)); x[17] += 12
        >>> outliers(x, k=10).top(1).tolist()
        [17]
    """
    _check(k, n_mads, min_ratio)
    score, ratio = _scores(features, k=k)
    thr = robust_threshold(score, n_mads=n_mads)
    # a tiny epsilon: identical scores (the MAD is 0) are not outliers of each other
    above = score > thr + 1e-9 * max(abs(thr), 1.0) if len(score) else np.zeros(0, dtype=bool)
    is_out = above & (ratio >= min_ratio) if min_ratio > 0 else above
    ranking = np.argsort(-score, kind="stable")
    return OutlierResult(frozen(score), frozen(ranking), thr, frozen(np.asarray(is_out, dtype=bool)),
                         int(min(k, max(len(score) - 1, 0))), frozen(ratio), float(min_ratio),
                         frozen(np.asarray(above, dtype=bool)))


def dataset_outliers(ds: Dataset, *, embedder: str | Any = "auto", k: int = 10, n_mads: float = 3.0,
                     min_ratio: float = 3.0, cache_dir: str | Path | None = None, use_cache: bool = True,
                     batch_size: int = 32, progress: Any = None, step: Any = None) -> OutlierResult:
    """``outliers`` over the images of ``ds``, embedded with ``embedder`` (see ``maslow.embed``). ``step(name)``
    is called as each step starts (``"embedding"``, ``"finding outliers"``; ``progress`` counts the embedding).

    An image that can't be read is not embedded: it is an outlier of its own, listed first with the reason
    (``"unreadable: <file>: <why>"``), with a NaN score and ratio; the others are scored among themselves.
    ``cache_dir``, ``use_cache`` and ``batch_size`` are ``maslow.embed.embed_dataset``'s.

    Raises:
        MaslowError: bad ``k``, ``n_mads`` or ``min_ratio`` (before anything is embedded).
        MissingDependencyError: the embedder needs torch and it is not installed.
    """
    from maslow.embed import describe_embedder, embed_readable, embedder_for

    _check(k, n_mads, min_ratio)  # before the embedding, which is the slow part
    emb = embedder_for(ds, embedder)
    say = step or (lambda name: None)
    say("embedding")
    feats, rows, bad = embed_readable(ds, embedder=emb, cache_dir=cache_dir, use_cache=use_cache,
                                      batch_size=batch_size, progress=progress)
    say("finding outliers")
    res = outliers(feats, k=k, n_mads=n_mads, min_ratio=min_ratio)
    m = ds.n_images
    score, ratio = np.full(m, np.nan), np.full(m, np.nan)
    is_out, above = np.zeros(m, dtype=bool), np.zeros(m, dtype=bool)
    score[rows], ratio[rows], is_out[rows], above[rows] = res.score, res.ratio, res.is_outlier, res.above_threshold
    gone = np.array(sorted(bad), dtype=np.int64)
    is_out[gone] = True
    ranking = np.concatenate([gone, rows[res.ranking]]).astype(np.int64)
    return OutlierResult(frozen(score), frozen(ranking), res.threshold, frozen(is_out), res.k, frozen(ratio),
                         res.min_ratio, frozen(above), frozen(ds.images.path), frozen(gone),
                         frozen(obj_array([bad[int(i)] for i in gone])), describe_embedder(emb))
