"""Class balance of a dataset and the remedies for imbalance, computed for the user.

Glossary (counts are annotations, i.e. objects for detection and labels for classification; crowd regions
count like any annotation):
- *imbalance ratio*: largest class count / smallest non-zero class count.
- *effective number of samples* (Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of
  Samples"): ``E_n = (1 - beta^n) / (1 - beta)``; it saturates at ``1 / (1 - beta)`` because near-duplicate
  samples add less and less information.
- *rare class*: a class whose share of the annotations is below ``rare_share`` (default: half the uniform
  share, ``0.5 / k`` for k classes). A class with no annotation at all is rare too.
- *class weights*: inverse frequency ``1 / n_c`` and effective-number ``1 / E_{n_c}``, each normalised to mean 1
  over the classes that occur; classes that never occur get weight 0.
- *repeat factors* (Gupta et al. 2019, LVIS, repeat-factor sampling): with ``f_c`` the share of images holding
  class c, ``r_c = max(1, sqrt(t / f_c))``; an image is repeated ``r_i = max_{c in i} r_c`` times per epoch
  (1 for images without annotations); fractional parts are sampled (stochastic rounding) by the loader.
- *needed*: how many more annotations of a class (and of it only) bring its share to ``target_share``:
  the smallest x with ``(n_c + x) / (N + x) >= s``, i.e. ``ceil((s N - n_c) / (1 - s))`` (0 when N = 0).

The remedies (weights, repeat factors, needed) are computed over the images of ``split`` (all images when
None), e.g. the training split only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import FloatArray, IntArray
from maslow.diversity.stats import dataset_stats
from maslow.errors import MaslowError


@dataclass(frozen=True, eq=False)
class BalanceReport:
    """Balance of a dataset (see the module glossary).

    Attributes:
        names: class names, aligned with every per-class array. ``splits``: split names (``""`` unassigned).
        counts: (k,) annotations per class (over all images). ``counts_per_split``: (k, s).
        images_per_class: (k,) images holding the class (over all images).
        split: the split the remedies are computed on (None: all images).
        remedy_counts: (k,) annotations per class in that split. ``share``: (k,) their shares.
        imbalance_ratio: max / min non-zero of ``remedy_counts`` (NaN when no class occurs).
        beta: effective-number parameter. ``effective_number``: (k,).
        rare: (k,) bool; ``rare_share``: its threshold. ``target_share``: the share ``needed`` aims at.
        weights_inverse, weights_effective: (k,) class weights, mean 1 over the classes that occur.
        repeat_threshold: LVIS ``t``. ``class_repeat``: (k,) r_c. ``image_repeat``: (m,) r_i for the images
            of the split, NaN for the others. ``image_frequency``: (k,) f_c.
        needed: (k,) more annotations each class needs to reach ``target_share`` (0 when it already does).
    """

    names: tuple[str, ...]
    splits: tuple[str, ...]
    counts: IntArray
    counts_per_split: IntArray
    images_per_class: IntArray
    split: str | None
    remedy_counts: IntArray
    share: FloatArray
    imbalance_ratio: float
    beta: float
    effective_number: FloatArray
    rare_share: float
    rare: np.ndarray
    target_share: float
    weights_inverse: FloatArray
    weights_effective: FloatArray
    repeat_threshold: float
    image_frequency: FloatArray
    class_repeat: FloatArray
    image_repeat: FloatArray
    needed: IntArray

    @property
    def rare_classes(self) -> tuple[str, ...]:
        return tuple(n for n, r in zip(self.names, self.rare.tolist(), strict=True) if r)

    @property
    def epoch_size(self) -> float:
        """Expected images per epoch under repeat-factor sampling (sum of the image repeat factors)."""
        return float(np.nansum(self.image_repeat))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (used by ``--json``)."""
        def f(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        in_split = ~np.isnan(self.image_repeat)
        return {
            "split": self.split,
            "imbalance_ratio": f(self.imbalance_ratio),
            "beta": self.beta,
            "rare_share": self.rare_share,
            "target_share": self.target_share,
            "rare_classes": list(self.rare_classes),
            "repeat_threshold": self.repeat_threshold,
            "n_images": int(in_split.sum()),
            "epoch_size": self.epoch_size,
            "n_repeated_images": int((self.image_repeat[in_split] > 1).sum()),
            "classes": [
                {
                    "name": n,
                    "annotations": int(self.counts[k]),
                    "images": int(self.images_per_class[k]),
                    "per_split": {s or "(none)": int(self.counts_per_split[k, j]) for j, s in enumerate(self.splits)},
                    "in_split": int(self.remedy_counts[k]),
                    "share": f(self.share[k]),
                    "effective_number": float(self.effective_number[k]),
                    "rare": bool(self.rare[k]),
                    "weight_inverse": float(self.weights_inverse[k]),
                    "weight_effective": float(self.weights_effective[k]),
                    "image_frequency": float(self.image_frequency[k]),
                    "repeat_factor": float(self.class_repeat[k]),
                    "needed": int(self.needed[k]),
                }
                for k, n in enumerate(self.names)
            ],
        }

    def to_pandas(self) -> Any:
        """One row per class with counts, share, effective number, weights, repeat factor and needed."""
        import pandas as pd

        rows = self.to_dict()["classes"]
        for r in rows:
            r.pop("per_split")
        return pd.DataFrame(rows)


def _normalise(w: FloatArray, present: np.ndarray) -> FloatArray:
    out = np.zeros_like(w)
    if present.any():
        out[present] = w[present] / w[present].mean()
    return out


def _needed(counts: IntArray, total: int, s: float) -> IntArray:
    """Smallest x >= 0 with ``(n_c + x) / (N + x) >= s``, the share compared as ``rare`` compares it (0 when N = 0).

    The closed form ``ceil((s N - n_c) / (1 - s))`` is one off where rounding puts it next to an integer (a
    tolerance misses shares just above a reachable one, and is too small past ~10^7 annotations), so it is only
    the starting point: the answer is stepped to the smallest x that passes the test itself.
    """
    if total == 0:
        return np.zeros(len(counts), np.int64)
    n = counts.astype(np.int64)
    x: IntArray = np.maximum(0, np.ceil((s * total - n) / (1.0 - s))).astype(np.int64)
    for _ in range(3):
        lower = np.maximum(x - 1, 0)
        x = np.where((n + lower) / (total + lower) >= s, lower, x)
        x = np.where((n + x) / (total + x) < s, x + 1, x)
    return x


def balance(
    ds: Dataset,
    *,
    split: str | None = None,
    beta: float = 0.999,
    rare_share: float | None = None,
    target_share: float | None = None,
    repeat_threshold: float = 0.001,
) -> BalanceReport:
    """Counts per class and split, imbalance ratio, effective numbers, rare classes and remedies.

    Args:
        ds: the dataset.
        split: compute shares and remedies on this split's images only (None: all images).
        beta: effective-number parameter in [0, 1) (Cui et al. use 0.9 .. 0.9999).
        rare_share: a class below this share of the annotations is rare (default ``0.5 / k``).
        target_share: share ``needed`` aims at (default ``rare_share``: enough to stop being rare).
        repeat_threshold: LVIS ``t`` (0.001 in LVIS); classes on fewer than that share of images are repeated.

    Raises:
        MaslowError: ``beta``, ``rare_share`` or ``target_share`` outside [0, 1), ``repeat_threshold`` not a
            finite number >= 0, or ``split`` not a split of the dataset.

    Example:
        >>> from maslow.sample import shapes
        >>> r = balance(shapes(24, seed=0), split="train")
        >>> bool(np.isclose(r.weights_inverse[r.remedy_counts > 0].mean(), 1.0))
        True
    """
    if not 0 <= beta < 1:
        raise MaslowError(f"balance: beta must be in [0, 1), got {beta}")
    k = len(ds.schema.classes)
    rare_share = 0.5 / max(k, 1) if rare_share is None else float(rare_share)
    target_share = rare_share if target_share is None else float(target_share)
    for name, v in (("rare_share", rare_share), ("target_share", target_share)):
        if not 0 <= v < 1:
            raise MaslowError(f"balance: {name} must be in [0, 1), got {v}")
    if not 0 <= repeat_threshold < math.inf:  # NaN made every repeat factor NaN, inf made them infinite
        raise MaslowError(f"balance: repeat_threshold must be a number >= 0, got {repeat_threshold}")
    stats = dataset_stats(ds)
    a, m = ds.annotations, ds.n_images
    img_split = ds.images.split.astype(str) if ds.images.split is not None else np.full(m, "")
    if split is not None and split not in set(img_split.tolist()):
        have = sorted(set(img_split.tolist()))
        note = "no image has a split, '' is unassigned; " if have == [""] else ""
        raise MaslowError(f"balance: split must be one of {have} ({note}omit it for all images), got {split!r}")
    in_split = np.ones(m, bool) if split is None else img_split == split
    ann_in = in_split[a.image] if len(a) else np.zeros(0, bool)
    counts = np.bincount(a.label[ann_in], minlength=k).astype(np.int64)
    total = int(counts.sum())
    share = counts / total if total else np.full(k, np.nan)
    present = counts > 0
    ratio = float(counts.max() / counts[present].min()) if present.any() else float("nan")
    eff = (1.0 - beta ** counts.astype(np.float64)) / (1.0 - beta) if beta > 0 else np.minimum(counts, 1.0)
    eff = eff.astype(np.float64)
    rare = ~present | (np.nan_to_num(share, nan=0.0) < rare_share)
    with np.errstate(divide="ignore"):
        w_inv = _normalise(np.where(present, 1.0 / np.maximum(counts, 1), 0.0), present)
        w_eff = _normalise(np.where(present, 1.0 / np.where(eff > 0, eff, 1.0), 0.0), present)
    n_split = int(in_split.sum())
    rows = np.flatnonzero(ann_in)
    pairs = np.unique(a.image[rows] * max(k, 1) + a.label[rows]) if len(rows) else np.zeros(0, np.int64)
    img_per_class = np.bincount(pairs % max(k, 1), minlength=k) if k else np.zeros(0, np.int64)
    freq = img_per_class / n_split if n_split else np.zeros(k)
    with np.errstate(divide="ignore"):
        r_c = np.where(freq > 0, np.maximum(1.0, np.sqrt(repeat_threshold / np.where(freq > 0, freq, 1.0))), 1.0)
    r_i = np.full(m, np.nan)
    r_i[in_split] = 1.0
    if len(pairs):
        np.maximum.at(r_i, pairs // max(k, 1), r_c[pairs % max(k, 1)])
    needed = _needed(counts, total, target_share)
    return BalanceReport(
        names=ds.schema.names,
        splits=stats.splits,
        counts=stats.annotations_per_class,
        counts_per_split=stats.annotations_per_class_split,
        images_per_class=stats.images_per_class,
        split=split,
        remedy_counts=counts,
        share=share.astype(np.float64),
        imbalance_ratio=ratio,
        beta=beta,
        effective_number=eff,
        rare_share=rare_share,
        rare=rare,
        target_share=target_share,
        weights_inverse=w_inv,
        weights_effective=w_eff,
        repeat_threshold=repeat_threshold,
        image_frequency=freq.astype(np.float64),
        class_repeat=r_c.astype(np.float64),
        image_repeat=r_i,
        needed=needed,
    )


def plot_balance(report: BalanceReport, out_dir: str | Path) -> list[Path]:
    """Write ``balance.png`` into ``out_dir`` (atomically): annotations per class and split, and class weights.

    Raises:
        MissingDependencyError: matplotlib is not installed (extra ``reports``).
    """
    from maslow.diversity.coverage import _figure, _save

    k = len(report.names)
    fig = _figure(max(8.0, 0.9 * k + 6), 3.8)
    ax1, ax2 = fig.subplots(1, 2)
    x = np.arange(k)
    bottom = np.zeros(k)
    for j, s in enumerate(report.splits):
        ax1.bar(x, report.counts_per_split[:, j], bottom=bottom, label=s or "(none)")
        bottom += report.counts_per_split[:, j]
    for lab in (ax1, ax2):
        lab.set_xticks(x, report.names, rotation=45, ha="right", fontsize=8)
    for tick, rare in zip(ax1.get_xticklabels(), report.rare.tolist(), strict=True):
        tick.set_color("tab:red" if rare else "black")
    ax1.set_title(f"annotations per class and split (rare in red; imbalance {report.imbalance_ratio:.1f})",
                  fontsize=9)
    ax1.legend(fontsize=8)
    ax2.bar(x - 0.2, report.weights_inverse, width=0.4, label="inverse frequency")
    ax2.bar(x + 0.2, report.weights_effective, width=0.4, label=f"effective number (beta {report.beta})")
    ax2.plot(x, report.class_repeat, "k^", label=f"repeat factor (t {report.repeat_threshold:g})")
    ax2.set_title(f"remedies on {report.split or 'all images'}", fontsize=9)
    ax2.legend(fontsize=8)
    return [_save(fig, Path(out_dir) / "balance.png")]
