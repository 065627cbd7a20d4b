"""Outliers: images far from the rest in embedding space.

Glossary:
    outlier score: mean Euclidean distance from an image's embedding to its ``k`` nearest neighbours (higher is
        more unusual). Embeddings from maslow's embedders are L2-normalised, so scores lie in [0, 2].
    robust threshold: ``median + n_mads * 1.4826 * MAD`` of the scores (MAD: median absolute deviation; 1.4826
        makes it a standard deviation for Gaussian data), so a few extreme images do not raise the bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray, frozen
from maslow.diversity._neighbors import as_features, knn
from maslow.errors import MaslowError


@dataclass(frozen=True, eq=False)
class OutlierResult:
    """Outlier scores of m images, ranked.

    Attributes:
        score: (m,) float64, mean distance to the k nearest neighbours (higher = more unusual).
        ranking: (m,) int64, image rows from the most to the least unusual (stable for ties).
        threshold: the robust threshold (median + n_mads scaled MADs of ``score``).
        is_outlier: (m,) bool, ``score > threshold``.
        k: neighbours used.
        paths: (m,) image paths when computed from a Dataset, else None.
    """

    score: FloatArray
    ranking: IntArray
    threshold: float
    is_outlier: BoolArray
    k: int
    paths: np.ndarray | None = None

    @property
    def n_outliers(self) -> int:
        return int(self.is_outlier.sum())

    def top(self, n: int | None = None) -> IntArray:
        """Image rows of the outliers (above the threshold), most unusual first; at most ``n``."""
        rows = self.ranking[self.is_outlier[self.ranking]]
        return rows if n is None else rows[:n]

    def to_dict(self, *, limit: int | None = None) -> dict[str, Any]:
        rows = self.top(limit)
        return {
            "k": self.k, "threshold": self.threshold, "n_images": len(self.score), "n_outliers": self.n_outliers,
            "outliers": [{"image": int(i), "score": float(self.score[i]),
                          **({"path": str(self.paths[i])} if self.paths is not None else {})} for i in rows],
        }

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame({"image": np.arange(len(self.score)), "score": self.score, "is_outlier": self.is_outlier,
                             **({"path": self.paths} if self.paths is not None else {})})


def outlier_scores(features: np.ndarray, *, k: int = 10) -> FloatArray:
    """(m,) mean distance of each row to its ``k`` nearest other rows (0 when m == 1)."""
    x = as_features(features, where="outliers")
    # centred in float64 first: distances don't change, but a large common offset would swamp them in float32
    if len(x):
        x64 = np.asarray(features, np.float64)
        x = (x64 - x64.mean(axis=0)).astype(np.float32)
    dist, _ = knn(x, k=k)
    return dist.mean(axis=1) if dist.shape[1] else np.zeros(len(x))


def robust_threshold(score: np.ndarray, *, n_mads: float = 3.0) -> float:
    """``median + n_mads * 1.4826 * MAD`` of ``score`` (nan for no scores)."""
    if not len(score):
        return float("nan")
    med = float(np.median(score))
    mad = float(np.median(np.abs(score - med))) * 1.4826
    return med + n_mads * mad


def _check(k: int, n_mads: float) -> None:
    if k < 1:
        raise MaslowError(f"outliers: k must be >= 1, got {k}")
    if not n_mads >= 0 or math.isinf(n_mads):
        raise MaslowError(f"outliers: n_mads must be a number >= 0, got {n_mads}")


def outliers(features: np.ndarray, *, k: int = 10, n_mads: float = 3.0) -> OutlierResult:
    """Rank images by their mean distance to the k nearest neighbours in embedding space.

    Args:
        features: (m, d) embeddings, one row per image.
        k: neighbours averaged per image (capped at m - 1).
        n_mads: the threshold is ``median + n_mads`` scaled MADs of the scores.

    Returns:
        OutlierResult with scores, the ranking and the images above the threshold.

    Raises:
        MaslowError: ``k`` < 1, or ``n_mads`` not a number >= 0.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(200, 8)); x[17] += 12
        >>> outliers(x, k=10).top(1).tolist()
        [17]
    """
    _check(k, n_mads)
    score = outlier_scores(features, k=k)
    thr = robust_threshold(score, n_mads=n_mads)
    # a tiny epsilon: identical scores (the MAD is 0) are not outliers of each other
    is_out = score > thr + 1e-9 * max(abs(thr), 1.0) if len(score) else np.zeros(0, dtype=bool)
    ranking = np.argsort(-score, kind="stable")
    return OutlierResult(frozen(score), frozen(ranking), thr, frozen(np.asarray(is_out, dtype=bool)),
                         int(min(k, max(len(score) - 1, 0))))


def dataset_outliers(ds: Dataset, *, embedder: str | Any = "auto", k: int = 10, n_mads: float = 3.0,
                     cache_dir: str | Path | None = None, batch_size: int = 32, progress: Any = None) -> OutlierResult:
    """``outliers`` over the images of ``ds``, embedded with ``embedder`` (see ``maslow.embed``).

    Raises:
        FormatError: an image can't be read.
        MissingDependencyError: the embedder needs torch and it is not installed.
    """
    from maslow.embed import embed_dataset

    _check(k, n_mads)  # before the embedding, which is the slow part
    feats = embed_dataset(ds, embedder=embedder, cache_dir=cache_dir, batch_size=batch_size, progress=progress)
    res = outliers(feats, k=k, n_mads=n_mads)
    return OutlierResult(res.score, res.ranking, res.threshold, res.is_outlier, res.k, frozen(ds.images.path))
