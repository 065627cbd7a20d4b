"""Model comparison: are we better off with model B? Both models' COCO stats, their differences, and paired
bootstrap intervals over images.

Glossary:

- *delta*: model B's value minus model A's (positive: B is better; every COCO stat is higher-better).
- *paired bootstrap*: ``n_bootstrap`` times, draw ``n_images`` images with replacement (an image drawn twice
  counts twice, with its truth objects and both models' predictions) and evaluate **both** models on that same
  draw; the interval is the percentile interval of the replicate deltas (numpy's linear quantiles at
  ``(1 - confidence) / 2`` and ``1 - (1 - confidence) / 2``). Pairing removes the variation both models share
  (easy and hard images), so a small but consistent gain can be told from noise.
- *replicate values*: exactly the stats ``coco_map`` gives on the resampled datasets
  (``truth.select_images(idx)``, ``pred.select_images(idx)`` with ``idx`` sorted: copies of an image side by side),
  bit for bit. COCO AP is not a sum over images, so each replicate is accumulated again, but from one evaluation
  of each model: COCO matches each image on its own, so a drawn image brings its match results along and nothing
  is matched twice (``maslow.metrics._resample``).
- *p_not_better*: the fraction of replicates where B's value is <= A's (delta <= 0), among the replicates where the
  stat is defined for both; a one-sided, p-value-like number: small when B is better in nearly every replicate.
- *significant*: the interval excludes 0 (``lower > 0``: B better; ``upper < 0``: B worse). With 12 stats and
  dozens of classes some intervals exclude 0 by chance (5% each at ``confidence=0.95``).
- *undefined*: a stat or a class AP without truth objects (in the dataset or in a replicate) is nan; replicates
  where it is nan are left out of its interval and p_not_better (hotcoco counts them as a delta of 0).

hotcoco's ``compare`` draws the same way but keeps each drawn image once (an m-of-n subsample of about 63% of the
images), so its intervals are narrower than this bootstrap's (0.80 to 0.92 of the width at COCO val2017 scale,
``benchmarks/compare_bench.py``).

Classifiers, taggers and semantic segmenters are compared by ``compare_labels`` (``LabelComparison``: accuracy, F1,
Hamming score, mIoU, ... with the same paired bootstrap, plus McNemar's exact test; ``maslow.metrics._compare_labels``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maslow._plot import figure
from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray, Rng, as_generator
from maslow.errors import InvalidDatasetError
from maslow.metrics._compare_labels import LabelComparison, compare_labels, mcnemar_exact
from maslow.metrics._compare_report import confidence_level, render_comparison_html, write_comparison_html
from maslow.metrics._resample import Resampler, coco_params, draws, quantiles
from maslow.metrics._result import MapResult

Progress = Callable[[int, int], None]

__all__ = ["Comparison", "LabelComparison", "class_rows", "compare_labels", "compare_models", "delta_order",
           "mcnemar_exact", "plot_ap_deltas", "plot_class_deltas", "render_comparison_html", "write_comparison_html"]


@dataclass(frozen=True, eq=False)
class Comparison:
    """Two models on the same truth: stats, deltas (B - A) and paired bootstrap intervals (module docstring).

    Attributes:
        iou_type: ``"bbox"``, ``"segm"``, ``"boundary"``, ``"obb"`` or ``"keypoints"``.
        stat_names: (S,) the summary stats, as ``MapResult.stat_names``.
        stats_a, stats_b: (S,) each model's stats (nan where undefined).
        delta: (S,) ``stats_b - stats_a``.
        lower, upper: (S,) the bootstrap interval of the delta (nan without replicates).
        p_not_better: (S,) fraction of replicates with B <= A.
        significant: (S,) the interval excludes 0.
        class_names: (K,) the classes, as ``MapResult.class_names``; n_truth_per_class: (K,) their truth objects
            (crowd regions not counted; every class's for the class-agnostic row ``all``).
        ap_a_per_class, ap_b_per_class: (K,) AP@[.5:.95] per class (``MapResult.to_pandas()["ap"]``).
        delta_per_class, lower_per_class, upper_per_class, p_not_better_per_class, significant_per_class: (K,)
            the same for the per-class AP.
        samples: (n_bootstrap, S) the replicate deltas of the stats; samples_per_class: (n_bootstrap, K).
        result_a, result_b: each model's ``MapResult`` on the whole dataset.
        n_images, n_bootstrap, confidence: the images resampled and the options used.
    """

    iou_type: str
    stat_names: tuple[str, ...]
    stats_a: FloatArray
    stats_b: FloatArray
    delta: FloatArray
    lower: FloatArray
    upper: FloatArray
    p_not_better: FloatArray
    significant: BoolArray
    class_names: tuple[str, ...]
    n_truth_per_class: IntArray
    ap_a_per_class: FloatArray
    ap_b_per_class: FloatArray
    delta_per_class: FloatArray
    lower_per_class: FloatArray
    upper_per_class: FloatArray
    p_not_better_per_class: FloatArray
    significant_per_class: BoolArray
    samples: FloatArray
    samples_per_class: FloatArray
    result_a: MapResult
    result_b: MapResult
    n_images: int
    n_bootstrap: int
    confidence: float

    def _rows(self, kind: str) -> list[dict[str, Any]]:
        if kind == "stat":
            cols = (self.stat_names, self.stats_a, self.stats_b, self.delta, self.lower, self.upper,
                    self.p_not_better, self.significant)
        else:
            cols = (self.class_names, self.ap_a_per_class, self.ap_b_per_class, self.delta_per_class,
                    self.lower_per_class, self.upper_per_class, self.p_not_better_per_class, self.significant_per_class)
        names, *values = cols
        return [{"name": n, "a": _f(values[0][i]), "b": _f(values[1][i]), "delta": _f(values[2][i]),
                 "lower": _f(values[3][i]), "upper": _f(values[4][i]), "p_not_better": _f(values[5][i]),
                 "significant": bool(values[6][i])} for i, n in enumerate(names)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan -> None): one row per stat and per class (name, a, b, delta, lower, upper,
        p_not_better, significant); the replicate samples and the full results are left out."""
        return {"iou_type": self.iou_type, "n_images": self.n_images, "n_bootstrap": self.n_bootstrap,
                "confidence": self.confidence, "stats": self._rows("stat"), "per_class": self._rows("class")}

    def to_pandas(self) -> Any:
        """One row per stat then per class: kind ("stat" or "class"), name, a, b, delta, lower, upper,
        p_not_better, significant (nan where undefined)."""
        import pandas as pd

        rows = [{"kind": kind, **r} for kind in ("stat", "class") for r in self._rows(kind)]
        df = pd.DataFrame(rows, columns=["kind", "name", "a", "b", "delta", "lower", "upper", "p_not_better",
                                         "significant"])
        for c in ("a", "b", "delta", "lower", "upper", "p_not_better"):
            df[c] = df[c].astype(float)
        return df


def _f(x: Any) -> float | None:
    v = float(x)
    return v if math.isfinite(v) else None


def _check_pair(truth: Dataset, pred: Dataset, side: str) -> None:
    if pred.n_images != truth.n_images or (
            pred.images is not truth.images and not np.array_equal(pred.images.path, truth.images.path)):
        raise InvalidDatasetError(
            f"compare_models: {side}.images must be the images table of truth ({truth.n_images} rows), got "
            f"{pred.n_images} rows{'' if pred.n_images != truth.n_images else ' with other paths'}. Read both "
            "predictions with like=truth")


def compare_models(
    truth: Dataset,
    pred_a: Dataset,
    pred_b: Dataset,
    *,
    iou_type: str = "bbox",
    n_bootstrap: int = 1000,
    seed: Rng = 0,
    confidence: float = 0.95,
    kpt_sigmas: Sequence[float] | FloatArray | None = None,
    progress: Progress | None = None,
    boundary_dilation: float = 0.02,
) -> Comparison:
    """Compare model B with model A on the same truth: COCO stats, deltas and paired bootstrap intervals.

    Args:
        truth: ground truth (COCO's default evaluation options: 10 IoU thresholds, maxDets 1/10/100, COCO's
            area ranges; keypoints: maxDets 20).
        pred_a: model A's predictions (the baseline), on truth's images table, with scores.
        pred_b: model B's predictions, likewise.
        iou_type: ``"bbox"``, ``"segm"``, ``"boundary"`` (Boundary IoU of the masks), ``"obb"`` (oriented boxes) or
            ``"keypoints"``.
        n_bootstrap: paired bootstrap replicates (0: no intervals).
        seed: seed or generator of the draws (the same seed gives the same intervals).
        confidence: level of the intervals, in (0, 1).
        kpt_sigmas: OKS sigmas for keypoints (default COCO's 17).
        progress: called as ``progress(done, n_bootstrap)`` after each replicate.
        boundary_dilation: ``iou_type="boundary"``: the boundary's width as a fraction of the image diagonal
            (``coco_map``'s).

    Returns:
        Comparison: stats, deltas, intervals, p_not_better, per-class AP deltas.

    Raises:
        InvalidDatasetError: a prediction dataset on other images or without scores, or as ``coco_map``.
        ValueError: an option out of range.

    Example:
        >>> from maslow.sample import shapes
        >>> truth = shapes(8, seed=0)
        >>> perfect = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(truth.n_annotations)))
        >>> c = compare_models(truth, perfect, perfect, n_bootstrap=20)
        >>> float(c.delta[0]), float(c.upper[0]), bool(c.significant.any())
        (0.0, 0.0, False)
    """
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer) or n_bootstrap < 0:
        raise ValueError(f"compare_models: n_bootstrap must be an integer >= 0, got {n_bootstrap!r}")
    if not (isinstance(confidence, float | int) and 0 < confidence < 1):
        raise ValueError(f"compare_models: confidence must be in (0, 1) (a fraction such as 0.95), got {confidence!r}")
    _check_pair(truth, pred_a, "pred_a")
    _check_pair(truth, pred_b, "pred_b")
    p = coco_params(iou_type, kpt_sigmas, boundary_dilation)
    models = (Resampler(truth, pred_a, p), Resampler(truth, pred_b, p))
    res_a, res_b = models[0].result, models[1].result
    stats_a, stats_b = _nan(res_a.stats), _nan(res_b.stats)
    ap_a, ap_b = _class_ap(res_a), _class_ap(res_b)
    n_b = int(n_bootstrap)
    samples, samples_k = np.full((n_b, len(stats_a)), np.nan), np.full((n_b, len(ap_a)), np.nan)
    if progress is not None:
        progress(0, n_b)
    for b, w in enumerate(draws(truth.n_images, n_b, as_generator(seed))):  # both models on the same draw
        (sa, ka), (sb, kb) = (m.stats(w) for m in models)
        samples[b], samples_k[b] = sb - sa, kb - ka
        if progress is not None:
            progress(b + 1, n_b)
    lower, upper, p_nb = quantiles(samples, float(confidence))
    lower_k, upper_k, p_nb_k = quantiles(samples_k, float(confidence))
    out: dict[str, Any] = {
        "delta": stats_b - stats_a, "lower": lower, "upper": upper, "p_not_better": p_nb,
        "significant": _excludes_zero(lower, upper), "delta_per_class": ap_b - ap_a, "lower_per_class": lower_k,
        "upper_per_class": upper_k, "p_not_better_per_class": p_nb_k,
        "significant_per_class": _excludes_zero(lower_k, upper_k)}
    for arr in (stats_a, stats_b, ap_a, ap_b, samples, samples_k, *out.values()):
        arr.flags.writeable = False
    return Comparison(iou_type=iou_type, stat_names=res_a.stat_names, stats_a=stats_a, stats_b=stats_b,
                      class_names=res_a.class_names, n_truth_per_class=_n_truth(truth, res_a), ap_a_per_class=ap_a, ap_b_per_class=ap_b, samples=samples,
                      samples_per_class=samples_k, result_a=res_a, result_b=res_b, n_images=truth.n_images,
                      n_bootstrap=n_b, confidence=float(confidence), **out)


def _n_truth(truth: Dataset, result: MapResult) -> IntArray:
    """(K,) truth objects of each class of ``result`` (crowd regions not counted; all of them for ``use_cats=False``'s
    one row)."""
    a = truth.annotations
    counted = ~a.iscrowd if a.iscrowd is not None else np.ones(len(a), bool)
    counts = np.bincount(a.label[counted], minlength=len(truth.schema.names))
    out = np.asarray([int(counts[lab]) if lab >= 0 else int(counts.sum()) for lab in result.class_labels.tolist()],
                     np.int64)
    out.flags.writeable = False
    return out


def _nan(stats: FloatArray) -> FloatArray:
    return np.where(stats == -1, np.nan, stats)


def _class_ap(result: MapResult) -> FloatArray:
    """(K,) AP@[.5:.95] per class: ``to_pandas()["ap"]`` (mean over the IoU thresholds of ``ap_per_class``)."""
    per = result.ap_per_class
    out: FloatArray = per.mean(axis=1) if per.shape[1] else np.full(per.shape[0], np.nan)
    return np.array(out, dtype=np.float64)


def _excludes_zero(lower: FloatArray, upper: FloatArray) -> BoolArray:
    with np.errstate(invalid="ignore"):
        out: BoolArray = (lower > 0) | (upper < 0)
    return out


def plot_ap_deltas(comparison: Comparison, path: str | Path, *, title: str | None = None,
                   labels: tuple[str, str] = ("A", "B")) -> Path:
    """Per-class AP delta (B - A) with its bootstrap interval as whiskers, sorted (largest loss at the top).

    Args:
        comparison: a ``compare_models`` result.
        path: the PNG to write.
        title: figure title; default names the stat deltas of mAP.
        labels: what to call the two models.

    Returns:
        ``path``. Classes whose interval excludes 0 are green (B better) or red (B worse); a class without truth
        objects is listed with no point.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    c = comparison
    a, b = labels
    i_map = c.stat_names.index("map_50_95")
    return _plot_deltas(
        c.class_names, c.delta_per_class, c.lower_per_class, c.upper_per_class, path,
        xlabel=f"AP@[.5:.95] of {b} minus {a} ({confidence_level(c.confidence)} paired bootstrap interval, "
               f"{c.n_bootstrap} replicates)",
        title=title or f"AP per class, {b} vs {a} ({c.iou_type}; mAP {_fmt(c.stats_a[i_map])} -> "
                       f"{_fmt(c.stats_b[i_map])})", missing="no truth", labels=labels)


def plot_class_deltas(comparison: LabelComparison, path: str | Path, *, metric: str | None = None,
                      title: str | None = None, labels: tuple[str, str] = ("A", "B")) -> Path:
    """A per-class score's delta (B - A) with its bootstrap interval as whiskers, sorted (largest loss at the top).

    Args:
        comparison: a ``compare_labels`` result.
        path: the PNG to write.
        metric: one of ``comparison.class_metrics`` (default the first: F1, or IoU for semantic segmentation).
        title: figure title; default names the first stat's values.
        labels: what to call the two models.

    Returns:
        ``path``. Classes whose interval excludes 0 are green (B better) or red (B worse); a class where a model's
        score is undefined is listed with no point.

    Raises:
        ValueError: ``metric`` is not one of the comparison's per-class scores.
        MissingDependencyError: matplotlib is not installed.
    """
    c = comparison
    metric = c.class_metrics[0] if metric is None else metric
    if metric not in c.class_metrics:
        raise ValueError(f"plot_class_deltas: metric must be one of {list(c.class_metrics)}, got {metric!r}")
    j = c.class_metrics.index(metric)
    a, b = labels
    head = c.stat_names[0]
    return _plot_deltas(
        c.class_names, c.delta_per_class[j], c.lower_per_class[j], c.upper_per_class[j], path,
        xlabel=f"{_METRIC_LABEL.get(metric, metric)} of {b} minus {a} ({confidence_level(c.confidence)} paired bootstrap "
               f"interval, {c.n_bootstrap} replicates)",
        title=title or f"{_METRIC_LABEL.get(metric, metric)} per class, {b} vs {a} ({c.task}; {head} "
                       f"{_fmt(c.stats_a[0])} -> {_fmt(c.stats_b[0])})",
        missing="undefined", labels=labels)


_METRIC_LABEL = {"f1": "F1", "recall": "recall", "iou": "IoU"}


#: Marker colours of ``_plot_deltas``: B better, B worse, the interval holds 0.
_COLOURS = ("#55a868", "#c44e52", "#4c72b0")


def _plot_deltas(names: tuple[str, ...], d: FloatArray, lower: FloatArray, upper: FloatArray, path: str | Path, *,
                 xlabel: str, title: str, missing: str, labels: tuple[str, str]) -> Path:
    fig = _delta_figure(names, d, lower, upper, xlabel=xlabel, title=title, missing=missing, labels=labels)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _delta_figure(names: tuple[str, ...], d: FloatArray, lower: FloatArray, upper: FloatArray, *, xlabel: str,
                  title: str, missing: str, labels: tuple[str, str]) -> Any:
    """The delta plot's figure; its title and x label are wrapped to the figure's width and the colours explained
    in a legend below the axes (a title holding the legend ran off the figure's right edge)."""
    import textwrap

    from matplotlib.lines import Line2D

    k = len(names)
    order = delta_order(d)
    fig = figure(7.5, max(2.5, 0.3 * k + 1.5), dpi=110)
    ax = fig.subplots()
    y = np.arange(k)
    for yi, i in enumerate(order.tolist()):
        if math.isnan(d[i]):
            ax.text(0, yi, missing, va="center", ha="center", fontsize=8, color="#777777")
            continue
        colour = _COLOURS[0] if lower[i] > 0 else _COLOURS[1] if upper[i] < 0 else _COLOURS[2]
        lo, hi = lower[i], upper[i]
        err = None if math.isnan(lo) else [[max(d[i] - lo, 0.0)], [max(hi - d[i], 0.0)]]
        ax.errorbar(d[i], yi, xerr=err, fmt="o", color=colour, capsize=3, ms=4)
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(y, [names[i] for i in order.tolist()], fontsize=8 if k > 20 else 10)
    ax.set_ylim(k - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel(textwrap.fill(xlabel, 90))
    ax.set_title(textwrap.fill(title, 75), fontsize=10)
    a, b = labels
    what = (f"{b} better than {a} (interval above 0)", f"{b} worse (interval below 0)", "interval holds 0")
    handles = [Line2D([], [], marker="o", ls="", color=c, ms=5, label=t) for c, t in zip(_COLOURS, what, strict=True)]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    return fig


def _fmt(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.3f}"


def class_rows(c: Comparison) -> IntArray:
    """The class positions sorted by AP delta, largest loss first (classes without a delta last)."""
    return delta_order(c.delta_per_class)


def delta_order(delta: FloatArray) -> IntArray:
    """Positions sorted by delta, largest loss first (nan last; ties in position order)."""
    order: IntArray = np.argsort(np.where(np.isnan(delta), np.inf, delta), kind="stable")
    return order
