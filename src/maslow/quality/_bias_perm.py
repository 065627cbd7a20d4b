"""Image-level permutation tests for ``maslow.quality.bias``.

Objects of one image share its metadata and usually its classes, so annotations are not independent samples of
an image-level variable: the chi-square p-value on annotations is far too small (one image with 20 cars looks
like 20 pieces of evidence). Here the unit is the image. The variable's values are shuffled across the images
that carry one, each image keeping its annotations, and the statistic (Pearson's chi-square of the annotation
table, so images with many objects still weigh more) is recomputed per shuffle. The p-value is
``(1 + #{shuffles with chi2 >= observed}) / (1 + shuffles)``, valid at any sample size when the values are
exchangeable across images under the null.

Shuffles run in batches, vectorised with ``np.bincount`` over the (image, class) cells. Once every statistic
has been reached ``stop_at`` times the test stops early: the p-value of the full run could then not fall below
``bias_p``, so the flag is the one the full run would give, and the p reported is the estimate from the
shuffles done.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from maslow.core.types import FloatArray, IntArray

_CELLS_PER_BATCH = 1 << 22  # numbers per batch: about 100 MB of temporaries
_TABLE_TEMPS = 8  # (b, rows, cols) temporaries the statistics make per table


def n_permutations(bias_p: float) -> tuple[int, int]:
    """(shuffles, stop_at) for a test at level ``bias_p``: enough shuffles that the smallest p, 1 / (B + 1), is
    below half of ``bias_p`` (at least 999, at most 19,999), and the exceedance count at which the flag is
    settled (at least 20)."""
    b = int(min(19_999, max(999, math.ceil(2 / bias_p) - 1)))
    return b, max(20, math.ceil(bias_p * (b + 1)))


def chi2_tables(t: FloatArray) -> FloatArray:
    """(b, 1) Pearson chi-square of each (b, rows, cols) table; empty rows and columns add nothing."""
    n = t.sum(axis=(1, 2))
    e = t.sum(axis=2)[:, :, None] * t.sum(axis=1)[:, None, :] / np.maximum(n, 1)[:, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        cell = np.where(e > 0, (t - e) ** 2 / np.where(e > 0, e, 1), 0.0)
    out: FloatArray = cell.sum(axis=(1, 2))[:, None]
    return out


def one_vs_rest_chi2(t: FloatArray) -> FloatArray:
    """(b, v) chi-square of the 2 x rows table (value j against all others) for each column j of each table."""
    team = t.sum(axis=2)  # (b, rows)
    n = team.sum(axis=1)[:, None, None]
    mine = t
    rest = team[:, :, None] - mine
    nj = mine.sum(axis=1, keepdims=True)  # (b, 1, v)
    e1 = nj * team[:, :, None] / np.maximum(n, 1)
    e2 = (n - nj) * team[:, :, None] / np.maximum(n, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c1 = np.where(e1 > 0, (mine - e1) ** 2 / np.where(e1 > 0, e1, 1), 0.0)
        c2 = np.where(e2 > 0, (rest - e2) ** 2 / np.where(e2 > 0, e2, 1), 0.0)
    out: FloatArray = (c1 + c2).sum(axis=1)
    return out


def cells(image: IntArray, row: IntArray, n_rows: int) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """(images, cell image position, cell row, cell count): the distinct images and the nonzero (image, row)
    counts of the annotations given by their ``image`` and table ``row``."""
    images, pos = np.unique(image, return_inverse=True)
    key, w = np.unique(pos * n_rows + row, return_counts=True)
    return images, key // n_rows, key % n_rows, w.astype(np.float64)


def permutation_pvalues(ii: IntArray, cc: IntArray, w: FloatArray, values: IntArray, n_rows: int, n_cols: int,
                        stat: Callable[[FloatArray], FloatArray], *, n_perm: int, stop_at: int, seed: int
                        ) -> tuple[FloatArray, int]:
    """(p per statistic, shuffles run) of ``stat`` when ``values`` (one code per image, 0..n_cols-1) are shuffled.

    Args:
        ii, cc, w: (z,) image position, table row and count of the nonzero (image, row) cells.
        values: (m,) value code of each image. n_rows, n_cols: table shape.
        stat: (b, n_rows, n_cols) tables -> (b, s) statistics; larger is more extreme.
        n_perm, stop_at: see ``n_permutations``. seed: seeds the shuffles.
    """
    m, z = len(values), len(ii)
    observed = np.bincount(cc * n_cols + values[ii], weights=w, minlength=n_rows * n_cols).astype(np.float64)
    obs = stat(observed.reshape(1, n_rows, n_cols))[0]
    tol = 1e-9 * np.abs(obs) + 1e-12
    rng = np.random.default_rng(seed)
    size = n_rows * n_cols
    # by the larger of the shuffled cells and the tables' temporaries (80 classes x 500 annotators: 4 GB when the
    # tables were left out)
    batch = max(1, min(n_perm, _CELLS_PER_BATCH // max(z, m, _TABLE_TEMPS * size, 1)))
    perm = np.tile(values, (batch, 1))  # each row is reshuffled in place: still a uniform shuffle each time
    offset = np.arange(batch)[:, None] * size + (cc * n_cols)[None, :]  # (batch, z) flat table index less value
    weight = np.tile(w, batch)
    idx = np.empty((batch, z), np.int64)
    exceed = np.zeros(len(obs), np.int64)
    done = 0
    while done < n_perm:
        b = min(batch, n_perm - done)
        rng.permuted(perm, axis=1, out=perm)
        np.take(perm, ii, axis=1, out=idx)
        idx += offset
        t = np.bincount(idx[:b].ravel(), weights=weight[: b * z], minlength=b * size).astype(np.float64, copy=False)
        exceed += (stat(t.reshape(b, n_rows, n_cols)) >= obs - tol).sum(axis=0)
        done += b
        if np.all(exceed >= stop_at):
            break
    return (exceed + 1) / (done + 1), done
