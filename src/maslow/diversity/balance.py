"""Class balance of a dataset and the remedies for imbalance, computed for the user.

Glossary. Each class is measured in its own unit, its *measure*: object classes in *annotations* (objects for
detection, labels for classification), semantic classes (``ClassDef.kind == "semantic"``, or every class when
the task is ``semantic_segmentation``; see ``maslow.diversity.stats``) in *pixels*, since one semantic
annotation is one class's whole region in one image. Shares, ratios, rarity and ``needed`` compare a class only
with the classes of its measure; crowd regions of object classes count like any annotation.

*Ignored pixels* (semantic classes), as ``maslow.metrics.semantic_scores`` ignores them: crowd regions (the
ignore value, 255 by default, that ``io.read_semantic`` keeps as a class whose annotations are crowd regions;
``read_semantic(..., ignore_index=11)`` marks CamVid's "Unlabelled" so), and pixels no annotation covers (the
declared ``# background N`` of a label map). By default they are left out of every count, share and weight, as
median-frequency weighting is used in practice (SegNet, ENet: the void class gets weight 0); an *ignore class*
(a semantic class whose every annotation is a crowd region) is then ``ignored``: not compared with the other
classes (share NaN), never rare, nothing needed, weights 0. ``include_ignored=True`` counts them like any class.

- *amount*: a class's annotations or pixels in the split; *share*: its amount / the amount of all classes of
  its measure.
- *imbalance ratio*: largest amount / smallest non-zero amount, per measure.
- *effective number of samples* (Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of
  Samples"): ``E_n = (1 - beta^n) / (1 - beta)``; it saturates at ``1 / (1 - beta)`` because near-duplicate
  samples add less and less information. Annotations only: pixels are not independent samples (millions of
  them saturate every class), so it is NaN for semantic classes.
- *rare class*: a class whose share is below ``rare_share`` (default: half the uniform share, ``0.5 / k`` for
  the k classes of its measure). A class with no annotation (no pixel) at all is rare too.
- *class weights*: inverse frequency ``1 / amount`` (annotations or pixels) and effective-number ``1 / E_n``
  (object classes only), each normalised to mean 1 over the classes of its measure that occur; and, for semantic
  classes, median-frequency balancing (Eigen & Fergus 2015, used by SegNet): ``w_c = median(f) / f_c`` with
  ``f_c`` = pixels of c / pixels of the images where c has pixels (an image's counted pixels: those of its
  semantic annotations, ignored pixels left out; its ``height x width`` with ``include_ignored``), the median over
  the classes that have pixels, not normalised (the median class gets 1). Classes that never occur get weight 0.
- *repeat factors* (Gupta et al. 2019, LVIS, repeat-factor sampling): with ``f_c`` the share of images holding
  class c (an annotation of it, either measure), ``r_c = max(1, sqrt(t / f_c))``; an image is repeated
  ``r_i = max_{c in i} r_c`` times per epoch (1 for images without annotations); fractional parts are sampled
  (stochastic rounding) by the loader.
- *needed*: how much more of a class (and of it only) brings its share to ``target_share``, in its measure:
  the smallest x with ``(n_c + x) / (N + x) >= s``, i.e. ``ceil((s N - n_c) / (1 - s))`` (0 when N = 0). For a
  semantic class, x is pixels: a lower bound, as images that add its pixels add other classes' pixels too.

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
from maslow.core.types import BoolArray, FloatArray, IntArray, distinct
from maslow.diversity.stats import annotation_pixels, semantic_classes, stats_with_pixels
from maslow.errors import MaslowError

ANNOTATIONS, PIXELS = "annotations", "pixels"


@dataclass(frozen=True, eq=False)
class BalanceReport:
    """Balance of a dataset (see the module glossary).

    Attributes:
        names: class names, aligned with every per-class array. ``splits``: split names (``""`` unassigned).
        measure: (k,) ``"annotations"`` or ``"pixels"``: the unit each class is measured in.
        include_ignored: whether ignored pixels were counted (see the module glossary).
        ignored: (k,) bool, the ignore classes left out (all False with ``include_ignored``).
        counts: (k,) annotations per class (over all images; here and below, ignored crowd regions of semantic
            classes left out unless ``include_ignored``). ``counts_per_split``: (k, s).
        pixels: (k,) pixels per class (over all images; NaN for object classes). ``pixels_per_split``: (k, s).
        images_per_class: (k,) images holding the class (over all images).
        split: the split the remedies are computed on (None: all images).
        remedy_counts: (k,) annotations per class in that split. ``remedy_pixels``: (k,) pixels (NaN for object
            classes). ``share``: (k,) each class's share of its measure in the split (NaN when none).
        imbalance_ratios: measure -> max / min non-zero amount of its classes (NaN when none occurs), for the
            measures of the schema's classes.
        beta: effective-number parameter. ``effective_number``: (k,), NaN for semantic classes.
        rare: (k,) bool; ``rare_shares``: measure -> its threshold. ``target_shares``: measure -> the share
            ``needed`` aims at.
        weights_inverse, weights_effective: (k,) class weights, mean 1 over the classes of a measure that occur
            (``weights_effective`` NaN for semantic classes).
        pixel_frequency: (k,) median-frequency ``f_c`` (NaN for object classes, 0 when absent).
        weights_median_frequency: (k,) ``median(f) / f_c`` (NaN for object classes, 0 when absent).
        repeat_threshold: LVIS ``t``. ``class_repeat``: (k,) r_c. ``image_repeat``: (m,) r_i for the images
            of the split, NaN for the others. ``image_frequency``: (k,) f_c.
        needed: (k,) more annotations (pixels, for semantic classes) each class needs to reach its target
            share (0 when it already does).
    """

    names: tuple[str, ...]
    splits: tuple[str, ...]
    measure: tuple[str, ...]
    include_ignored: bool
    ignored: BoolArray
    counts: IntArray
    counts_per_split: IntArray
    pixels: FloatArray
    pixels_per_split: FloatArray
    images_per_class: IntArray
    split: str | None
    remedy_counts: IntArray
    remedy_pixels: FloatArray
    share: FloatArray
    imbalance_ratios: dict[str, float]
    beta: float
    effective_number: FloatArray
    rare_shares: dict[str, float]
    rare: BoolArray
    target_shares: dict[str, float]
    weights_inverse: FloatArray
    weights_effective: FloatArray
    pixel_frequency: FloatArray
    weights_median_frequency: FloatArray
    repeat_threshold: float
    image_frequency: FloatArray
    class_repeat: FloatArray
    image_repeat: FloatArray
    needed: IntArray

    @property
    def rare_classes(self) -> tuple[str, ...]:
        return tuple(n for n, r in zip(self.names, self.rare.tolist(), strict=True) if r)

    @property
    def imbalance_ratio(self) -> float:
        """The imbalance ratio of the classes' measure; NaN when none occurs, or when object and semantic classes
        are mixed (the two measures do not compare: see ``imbalance_ratios``)."""
        return next(iter(self.imbalance_ratios.values())) if len(self.imbalance_ratios) == 1 else float("nan")

    @property
    def rare_share(self) -> float:
        """The rare threshold of every class (NaN when the two measures have different default thresholds)."""
        return _single(self.rare_shares)

    @property
    def target_share(self) -> float:
        """The share ``needed`` aims at for every class (NaN when the two measures have different ones)."""
        return _single(self.target_shares)

    @property
    def epoch_size(self) -> float:
        """Expected images per epoch under repeat-factor sampling (sum of the image repeat factors)."""
        return float(np.nansum(self.image_repeat))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (used by ``--json``); fields that do not apply to a class's measure are null."""
        def f(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        def px(x: float) -> float | int | None:
            return None if math.isnan(x) else int(x) if float(x).is_integer() else float(x)

        in_split = ~np.isnan(self.image_repeat)
        return {
            "split": self.split,
            "include_ignored": self.include_ignored,
            "ignored_classes": [n for n, i in zip(self.names, self.ignored.tolist(), strict=True) if i],
            "imbalance_ratio": f(self.imbalance_ratio),
            "imbalance_ratios": {m: f(v) for m, v in self.imbalance_ratios.items()},
            "beta": self.beta,
            "rare_share": f(self.rare_share),
            "rare_shares": dict(self.rare_shares),
            "target_share": f(self.target_share),
            "target_shares": dict(self.target_shares),
            "rare_classes": list(self.rare_classes),
            "repeat_threshold": self.repeat_threshold,
            "n_images": int(in_split.sum()),
            "epoch_size": self.epoch_size,
            "n_repeated_images": int((self.image_repeat[in_split] > 1).sum()),
            "classes": [
                {
                    "name": n,
                    "measure": self.measure[k],
                    "ignored": bool(self.ignored[k]),
                    "annotations": int(self.counts[k]),
                    "pixels": px(self.pixels[k]),
                    "images": int(self.images_per_class[k]),
                    "per_split": {s or "(none)": int(self.counts_per_split[k, j]) for j, s in enumerate(self.splits)},
                    "pixels_per_split": {s or "(none)": px(self.pixels_per_split[k, j])
                                         for j, s in enumerate(self.splits)} if self.measure[k] == PIXELS else None,
                    "in_split": int(self.remedy_counts[k]),
                    "in_split_pixels": px(self.remedy_pixels[k]),
                    "share": f(self.share[k]),
                    "effective_number": f(self.effective_number[k]),
                    "rare": bool(self.rare[k]),
                    "weight_inverse": float(self.weights_inverse[k]),
                    "weight_effective": f(self.weights_effective[k]),
                    "pixel_frequency": f(self.pixel_frequency[k]),
                    "weight_median_frequency": f(self.weights_median_frequency[k]),
                    "image_frequency": float(self.image_frequency[k]),
                    "repeat_factor": float(self.class_repeat[k]),
                    "needed": int(self.needed[k]),
                }
                for k, n in enumerate(self.names)
            ],
        }

    def to_pandas(self) -> Any:
        """One row per class with measure, counts, pixels, share, effective number, weights, repeat factor and
        needed."""
        import pandas as pd

        rows = self.to_dict()["classes"]
        for r in rows:
            r.pop("per_split")
            r.pop("pixels_per_split")
        return pd.DataFrame(rows)


def _single(values: dict[str, float]) -> float:
    """The one value of a per-measure dict (NaN when empty or when the measures differ)."""
    vals = set(values.values())
    return vals.pop() if len(vals) == 1 else float("nan")


def _normalise(w: FloatArray, present: np.ndarray) -> FloatArray:
    out = np.zeros_like(w)
    if present.any():
        out[present] = w[present] / w[present].mean()
    return out


def _needed(amount: FloatArray, total: float, s: float) -> IntArray:
    """Smallest x >= 0 with ``(n_c + x) / (N + x) >= s``, the share compared as ``rare`` compares it (0 when N = 0).

    The closed form ``ceil((s N - n_c) / (1 - s))`` is one off where rounding puts it next to an integer (a
    tolerance misses shares just above a reachable one, and is too small past ~10^7 annotations), so it is only
    the starting point: the answer is stepped to the smallest x that passes the test itself.
    """
    if total == 0:
        return np.zeros(len(amount), np.int64)
    n = np.asarray(amount)
    x: IntArray = np.maximum(0, np.ceil((s * total - n) / (1.0 - s))).astype(np.int64)
    for _ in range(3):
        lower = np.maximum(x - 1, 0)
        x = np.where((n + lower) / (total + lower) >= s, lower, x)
        x = np.where((n + x) / (total + x) < s, x + 1, x)
    return x


def _median_frequency(ds: Dataset, semantic: BoolArray, rows: IntArray, pixels: FloatArray,
                      canvas: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(k,) ``f_c`` and ``median(f) / f_c`` over annotation ``rows`` (NaN for object classes, 0 when absent)."""
    k = len(semantic)
    freq, weight = np.full(k, np.nan), np.full(k, np.nan)
    freq[semantic], weight[semantic] = 0.0, 0.0
    a = ds.annotations
    rows = rows[semantic[a.label[rows]]] if len(rows) else rows
    if len(rows):
        keys, inv = np.unique(a.image[rows] * k + a.label[rows], return_inverse=True)
        pix = np.bincount(inv, weights=pixels[rows], minlength=len(keys))
        img = np.full(len(keys), -np.inf)
        np.maximum.at(img, inv, np.nan_to_num(canvas[rows], nan=-np.inf))
        ok = (pix > 0) & np.isfinite(img)  # the class has pixels in that image, whose size is known
        num = np.bincount(keys[ok] % k, weights=pix[ok], minlength=k)
        den = np.bincount(keys[ok] % k, weights=img[ok], minlength=k)
        has = semantic & (den > 0)
        freq[has] = num[has] / den[has]
        if has.any():
            weight[has] = np.median(freq[has]) / freq[has]
    return freq, weight


def _leave_out_ignored(ds: Dataset, semantic: BoolArray, pixels: FloatArray, canvas: FloatArray
                       ) -> tuple[Dataset, FloatArray, FloatArray, BoolArray]:
    """``ds`` and ``pixels`` without the crowd regions of semantic classes, each semantic annotation's counted image
    pixels (the pixels of the image's remaining semantic annotations: uncovered pixels left out too; NaN where
    ``canvas``, the image size, is unknown), and the (k,) ignore classes (semantic classes whose every annotation
    is a crowd region)."""
    a = ds.annotations
    assert a.iscrowd is not None
    sem_rows = semantic[a.label] if len(a) else np.zeros(0, bool)
    dropped = sem_rows & a.iscrowd
    ignored = semantic & ds.crowd_only_classes()
    keep = ~dropped
    kept = ds.select(keep) if dropped.any() else ds
    pixels, sem_rows, known = pixels[keep], sem_rows[keep], np.isfinite(canvas[keep])
    image = kept.annotations.image
    counted = np.bincount(image[sem_rows], weights=pixels[sem_rows], minlength=kept.n_images)
    out = np.full(len(image), np.nan)
    out[sem_rows & known] = counted[image[sem_rows & known]]
    return kept, pixels, out, ignored


def balance(
    ds: Dataset,
    *,
    split: str | None = None,
    beta: float = 0.999,
    rare_share: float | None = None,
    target_share: float | None = None,
    repeat_threshold: float = 0.001,
    include_ignored: bool = False,
) -> BalanceReport:
    """Counts (pixels, for semantic classes) per class and split, imbalance ratio, effective numbers, rare classes
    and remedies.

    Args:
        ds: the dataset.
        split: compute shares and remedies on this split's images only (None: all images).
        beta: effective-number parameter in [0, 1) (Cui et al. use 0.9 .. 0.9999).
        rare_share: a class below this share of its measure is rare (default ``0.5 / k``, k the classes of the
            measure).
        target_share: share ``needed`` aims at (default ``rare_share``: enough to stop being rare).
        repeat_threshold: LVIS ``t`` (0.001 in LVIS); classes on fewer than that share of images are repeated.
        include_ignored: count ignored pixels (crowd regions and ignore classes of semantic classes, uncovered
            pixels) like any others; by default they are left out (see the module glossary).

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
    for name, v in (("rare_share", rare_share), ("target_share", target_share)):
        if v is not None and not 0 <= v < 1:
            raise MaslowError(f"balance: {name} must be in [0, 1), got {v}")
    if not 0 <= repeat_threshold < math.inf:  # NaN made every repeat factor NaN, inf made them infinite
        raise MaslowError(f"balance: repeat_threshold must be a number >= 0, got {repeat_threshold}")
    k = len(ds.schema.classes)
    semantic = semantic_classes(ds.schema)
    pixels, canvas = annotation_pixels(ds, semantic)
    ignored = np.zeros(k, bool)
    if not include_ignored:
        ds, pixels, canvas, ignored = _leave_out_ignored(ds, semantic, pixels, canvas)
    groups = {m: sel for m, sel in ((ANNOTATIONS, ~semantic), (PIXELS, semantic & ~ignored)) if sel.any()}
    rare_shares = {m: 0.5 / int(sel.sum()) if rare_share is None else float(rare_share) for m, sel in groups.items()}
    target_shares = {m: v if target_share is None else float(target_share) for m, v in rare_shares.items()}
    stats = stats_with_pixels(ds, semantic, pixels, np.full(len(ds.annotations), np.nan))  # sizes are not read
    a, m = ds.annotations, ds.n_images
    img_split = ds.images.split.astype(str) if ds.images.split is not None else np.full(m, "")
    if split is not None and split not in set(img_split.tolist()):
        have = sorted(set(img_split.tolist()))
        note = "no image has a split, '' is unassigned; " if have == [""] else ""
        raise MaslowError(f"balance: split must be one of {have} ({note}omit it for all images), got {split!r}")
    in_split = np.ones(m, bool) if split is None else img_split == split
    ann_in = in_split[a.image] if len(a) else np.zeros(0, bool)
    counts = np.bincount(a.label[ann_in], minlength=k).astype(np.int64)
    remedy_pixels = np.bincount(a.label[ann_in], weights=np.nan_to_num(pixels[ann_in]), minlength=k).astype(float)
    remedy_pixels[~semantic] = np.nan
    amount = np.where(semantic, remedy_pixels, counts)
    share, ratios = np.full(k, np.nan), {}
    present = amount > 0
    rare, needed = ~present, np.zeros(k, np.int64)
    for meas, sel in groups.items():
        total = float(amount[sel].sum())
        if total:
            share[sel] = amount[sel] / total
        p = present & sel
        ratios[meas] = float(amount[sel].max() / amount[p].min()) if p.any() else float("nan")
        rare[sel] |= share[sel] < rare_shares[meas]  # NaN (no amount) compares False; absent is rare already
        needed[sel] = _needed(amount[sel], total, target_shares[meas])
    rare &= ~ignored  # not compared with the other classes: never rare, nothing needed (0), share NaN
    obj = ~semantic
    eff = np.full(k, np.nan)
    eff[obj] = (1.0 - beta ** counts[obj].astype(np.float64)) / (1.0 - beta) if beta > 0 else np.minimum(counts[obj], 1.0)
    w_inv, w_eff = np.zeros(k), np.full(k, np.nan)
    with np.errstate(divide="ignore"):
        for sel in groups.values():
            p = present & sel
            w_inv[sel] = _normalise(np.where(p, 1.0 / np.where(p, amount, 1.0), 0.0), p)[sel]
        w_eff[obj] = _normalise(np.where(present, 1.0 / np.where(eff > 0, eff, 1.0), 0.0), present & obj)[obj]
    n_split = int(in_split.sum())
    rows = np.flatnonzero(ann_in)
    freq_px, w_mfb = _median_frequency(ds, semantic, rows, pixels, canvas)
    pairs = distinct(a.image[rows] * max(k, 1) + a.label[rows]) if len(rows) else np.zeros(0, np.int64)
    img_per_class = np.bincount(pairs % max(k, 1), minlength=k) if k else np.zeros(0, np.int64)
    freq = img_per_class / n_split if n_split else np.zeros(k)
    with np.errstate(divide="ignore"):
        r_c = np.where(freq > 0, np.maximum(1.0, np.sqrt(repeat_threshold / np.where(freq > 0, freq, 1.0))), 1.0)
    r_i = np.full(m, np.nan)
    r_i[in_split] = 1.0
    if len(pairs):
        np.maximum.at(r_i, pairs // max(k, 1), r_c[pairs % max(k, 1)])
    return BalanceReport(
        names=ds.schema.names,
        splits=stats.splits,
        measure=tuple(PIXELS if s else ANNOTATIONS for s in semantic.tolist()),
        include_ignored=include_ignored,
        ignored=ignored,
        counts=stats.annotations_per_class,
        counts_per_split=stats.annotations_per_class_split,
        pixels=stats.pixels_per_class,
        pixels_per_split=stats.pixels_per_class_split,
        images_per_class=stats.images_per_class,
        split=split,
        remedy_counts=counts,
        remedy_pixels=remedy_pixels,
        share=share,
        imbalance_ratios=ratios,
        beta=beta,
        effective_number=eff,
        rare_shares=rare_shares,
        rare=rare,
        target_shares=target_shares,
        weights_inverse=w_inv,
        weights_effective=w_eff,
        pixel_frequency=freq_px,
        weights_median_frequency=w_mfb,
        repeat_threshold=repeat_threshold,
        image_frequency=freq.astype(np.float64),
        class_repeat=r_c.astype(np.float64),
        image_repeat=r_i,
        needed=needed,
    )


def plot_balance(report: BalanceReport, out_dir: str | Path) -> list[Path]:
    """Write ``balance.png`` into ``out_dir`` (atomically): annotations (pixels, for semantic classes) per class and
    split, and class weights.

    Raises:
        MissingDependencyError: matplotlib is not installed (extra ``reports``).
    """
    from maslow.diversity.coverage import _figure, _save

    k = len(report.names)
    fig = _figure(max(8.0, 0.9 * k + 6), 3.8)
    ax1, ax2 = fig.subplots(1, 2)
    x = np.arange(k)
    bottom = np.zeros(k)
    pixels = np.array([m == PIXELS for m in report.measure], bool)
    mixed = pixels.any() and not pixels.all()
    per_split = np.where(pixels[:, None], np.nan_to_num(report.pixels_per_split), report.counts_per_split)
    if mixed:  # objects and pixels do not share an axis: each class as a share of its measure (all images)
        for sel in (pixels, ~pixels):
            per_split[sel] /= max(per_split[sel].sum(), 1.0)
    for j, s in enumerate(report.splits):
        ax1.bar(x, per_split[:, j], bottom=bottom, label=s or "(none)")
        bottom += per_split[:, j]
    for lab in (ax1, ax2):
        lab.set_xticks(x, report.names, rotation=45, ha="right", fontsize=8)
    for tick, rare in zip(ax1.get_xticklabels(), report.rare.tolist(), strict=True):
        tick.set_color("tab:red" if rare else "black")
    what = "share of its measure" if mixed else next(iter(report.imbalance_ratios), ANNOTATIONS)
    ratios = ", ".join(f"{v:.1f}" for v in report.imbalance_ratios.values())
    ax1.set_title(f"{what} per class and split (rare in red; imbalance {ratios})", fontsize=9)
    ax1.legend(fontsize=8)
    bars = [("inverse frequency", report.weights_inverse)]
    if not pixels.all():
        bars.append((f"effective number (beta {report.beta})", np.nan_to_num(report.weights_effective)))
    if pixels.any():
        bars.append(("median frequency", np.nan_to_num(report.weights_median_frequency)))
    width = 0.8 / len(bars)
    for j, (label, w) in enumerate(bars):
        ax2.bar(x + (j - (len(bars) - 1) / 2) * width, w, width=width, label=label)
    ax2.plot(x, report.class_repeat, "k^", label=f"repeat factor (t {report.repeat_threshold:g})")
    ax2.set_title(f"remedies on {report.split or 'all images'}", fontsize=9)
    ax2.legend(fontsize=8)
    return [_save(fig, Path(out_dir) / "balance.png")]
