"""The selection quality gate: pixel checks (blank/uniform and very blurry images, small greyscale decode) and the
short clips its outlier test must not hold back."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from maslow.core.dataset import Dataset


def image_quality_flags(ds: Dataset, *, size: int = 64, min_std: float = 4.0, blur_factor: float = 0.05,
                        progress: Callable[[int, int], None] | None = None) -> dict[int, str]:
    """Image rows to hold back: {row: reason}. Unreadable images are held back too. ``progress(done, total)`` is
    called over the images decoded.

    Blank/uniform: grey standard deviation below ``min_std`` (0-255 scale). Very blurry: variance of the
    Laplacian below ``blur_factor`` times the dataset's median (relative, so a soft dataset is not all flagged).
    """
    from maslow.embed.light import load_small_rgb
    from maslow.errors import FormatError
    from maslow.io.images import image_path

    flags: dict[int, str] = {}
    sharp = np.full(ds.n_images, np.nan)
    m = ds.n_images
    for i in range(m):
        if progress is not None and (i % 64 == 0):
            progress(i, m)
        try:
            rgb = load_small_rgb(image_path(ds, i), size)
        except FormatError as e:
            flags[i] = f"unreadable: {e}"
            continue
        g = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        std = float(g.std())
        if std < min_std:
            flags[i] = f"blank: grey std {std:.2g} < {min_std:g}"
            continue
        lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
        sharp[i] = float(lap.var())
    if progress is not None:
        progress(m, m)
    if np.isfinite(sharp).sum() >= 5:
        med = float(np.nanmedian(sharp))
        for j in np.flatnonzero(sharp < blur_factor * med):
            flags[int(j)] = f"blurry: Laplacian variance {sharp[j]:.3g} < {blur_factor:g} x median {med:.3g}"
    return flags


def whole_clips(flagged: list[int], seq: np.ndarray | None) -> list[int]:
    """The rows of ``flagged`` (outliers) that make up the whole of a sequence of two frames or more: a short clip
    unlike every other video is a scene of its own, rare data to pick early, not a glitch frame (a glitch is an
    outlier among its own video's frames). A single-frame sequence stays held back. ``seq``: (m,) sequence keys
    (``select.sequence_keys``: a still is a sequence of its own)."""
    if seq is None or not flagged:
        return []
    rows = np.asarray(flagged, np.int64)
    keys, size = np.unique(seq, return_counts=True)
    k_all = np.searchsorted(keys, seq[rows])
    hit = np.bincount(k_all, minlength=len(keys))
    whole = (hit == size) & (size >= 2)
    out: list[int] = rows[whole[k_all]].tolist()
    return out
