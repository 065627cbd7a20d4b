"""PNG plots of evaluation results: PR curves, per-class AP, the detection confusion matrix, slices, TIDE errors.

Every ``plot_*`` function draws with matplotlib's object API (a ``Figure`` rendered by the Agg canvas: no
pyplot, no global backend or style change), writes the PNG atomically (a temporary file beside ``path``,
renamed over it) and returns ``path``. matplotlib is imported on first use; without it the functions raise
``MissingDependencyError`` naming the ``reports`` extra.

Curves follow COCO's interpolation: the precision plotted at each of the 101 recall thresholds is
``MapResult.precision`` (area "all", maxDets 100), so the area under a class's curve is its AP. The
"overall" curve is the mean over the classes that have truth objects, whose area is the mAP.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from maslow._plot import figure
from maslow.core.atomic import atomic_path
from maslow.core.types import FloatArray
from maslow.metrics._result import MapResult
from maslow.metrics.operating import DetectionConfusion
from maslow.metrics.slices import SliceResult

if TYPE_CHECKING:
    from maslow.metrics.tide import TideResult

_LEGEND_MAX = 20  # classes named in a legend or drawn one by one; past it, only the overall curve is named


def _figure(width: float, height: float) -> Any:
    return figure(width, height, dpi=110)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _cell(result: MapResult) -> tuple[int, int]:
    a = result.area_names.index("all") if "all" in result.area_names else 0
    m = result.max_dets.index(100) if 100 in result.max_dets else len(result.max_dets) - 1
    return a, m


def _curves(result: MapResult, t_sel: np.ndarray) -> tuple[FloatArray, np.ndarray]:
    """(K, R) precision per class averaged over the selected thresholds, and which classes have truth."""
    a, m = _cell(result)
    p = result.precision[t_sel][:, :, :, a, m]  # (t, R, K)
    valid = (p > -1).all(axis=(0, 1))
    return p.mean(axis=0).T, valid


def plot_pr_curves(result: MapResult, path: str | Path, *, title: str | None = None) -> Path:
    """Precision-recall curves per class and overall, at IoU 0.5 and averaged over IoU .50:.95.

    Args:
        result: a ``coco_map`` result (bbox, segm or keypoints).
        path: the PNG to write.
        title: figure title; default names the IoU type.

    Returns:
        ``path``. Classes are drawn one by one (named in the legend, with their AP) when there are at most
        20 of them; the thick black line is the mean over classes with truth objects. A class without truth
        objects has no curve (its AP is undefined). The curves are at area "all" (else the first area range)
        and maxDets 100 (else the largest), as the title says.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    fig = _figure(11.0, 4.8)
    axes = fig.subplots(1, 2, sharey=True)
    thr = result.iou_thresholds
    at50 = np.flatnonzero(np.isclose(thr, 0.5))
    panels = [(at50[:1], "IoU 0.50"), (np.arange(len(thr)), f"IoU {thr.min():.2f}:{thr.max():.2f}")]
    rec = result.recall_thresholds
    r_order = np.argsort(rec, kind="stable")
    for ax, (t_sel, label) in zip(axes, panels, strict=True):
        if not len(t_sel):
            ax.text(0.5, 0.5, "IoU 0.50 is not among the thresholds", ha="center", va="center")
            ax.set_axis_off()
            continue
        curves, valid = _curves(result, t_sel)
        k_valid = np.flatnonzero(valid)
        if len(k_valid) <= _LEGEND_MAX:
            cmap = _colours(len(k_valid))
            for j, k in enumerate(k_valid.tolist()):
                ap = float(np.mean(curves[k]))
                ax.plot(rec[r_order], curves[k][r_order], lw=1.2, color=cmap[j],
                        label=f"{result.class_names[k]} {ap:.3f}")
        else:
            for k in k_valid.tolist():
                ax.plot(rec[r_order], curves[k][r_order], lw=0.6, color="0.7")
        if len(k_valid):
            mean = curves[k_valid].mean(axis=0)
            ax.plot(rec[r_order], mean[r_order], lw=2.6, color="black", label=f"overall {float(mean.mean()):.3f}")
        ax.set_title(f"{label}  (legend: AP)")
        ax.set_xlabel("recall")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # no class with truth objects: no curve to name
            ax.legend(loc="lower left", fontsize=8, frameon=True)
    axes[0].set_ylabel("precision (interpolated)")
    a, m = _cell(result)
    fig.suptitle(title or f"Precision-recall ({result.iou_type}, area {result.area_names[a]}, maxDets "
                          f"{result.max_dets[m]})")
    return _save(fig, path)


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(max(n, 1))]


def plot_ap_per_class(result: MapResult, path: str | Path, *, title: str | None = None) -> Path:
    """Horizontal bars of AP@[.5:.95] per class (sorted, weakest at the bottom) with AP50 marked.

    Args:
        result: a ``coco_map`` result.
        path: the PNG to write.
        title: figure title; default names the IoU type and the mAP.

    Returns:
        ``path``. Classes without truth objects are listed as "no truth", with no bar and no AP50 mark; without
        an IoU threshold of 0.5 there are no AP50 marks.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    ap = result.ap_per_class
    k = len(result.class_names)
    mean = ap.mean(axis=1) if ap.shape[1] else np.full(k, np.nan)  # a class without truth is nan in every column
    at50 = np.flatnonzero(np.isclose(result.iou_thresholds, 0.5))
    ap50 = ap[:, at50[0]] if len(at50) else np.full(k, np.nan)
    order = np.argsort(np.where(np.isnan(mean), -1.0, mean), kind="stable")  # weakest first: drawn at the bottom
    fig = _figure(7.5, max(2.5, 0.32 * k + 1.4))
    ax = fig.subplots()
    y = np.arange(k)
    vals = mean[order]
    # a class without truth has no AP: no bar and no AP50 mark (drawn at 0 they read as AP 0), only "no truth"
    has = ~np.isnan(vals)
    if has.any():
        ax.barh(y[has], vals[has], color="#4c72b0", label="AP@[.5:.95]")
    has50 = ~np.isnan(ap50[order])
    if has50.any():
        ax.scatter(ap50[order][has50], y[has50], marker="|", s=160, color="#dd8452", zorder=3, label="AP50")
    for yi, v in zip(y.tolist(), vals.tolist(), strict=True):
        ax.text(0.005 if math.isnan(v) else v + 0.01, yi, "no truth" if math.isnan(v) else f"{v:.3f}",
                va="center", fontsize=8)
    ax.set_yticks(y, [result.class_names[i] for i in order.tolist()], fontsize=8 if k > 20 else 10)
    ax.set_ylim(-0.6, k - 0.4)
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("average precision")
    ax.grid(axis="x", alpha=0.3)
    if has.any():  # else nothing to name (no class has truth objects)
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or f"AP per class ({result.iou_type}; mAP {_fmt(result.map_50_95)}, AP50 {_fmt(result.map_50)})")
    return _save(fig, path)


def _fmt(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.3f}"


def plot_confusion_matrix(cm: DetectionConfusion, path: str | Path, *, normalize: bool = True,
                          title: str | None = None) -> Path:
    """Heat map of a detection confusion matrix, counts written in the cells (up to 30 rows, background
    included; past that the cells are too small for them and only the colour is drawn).

    Args:
        cm: a ``detection_confusion_matrix`` result.
        path: the PNG to write.
        normalize: colour each truth row by its share of the row (the counts are written either way); the
            background row (false positives) is coloured by its share of all false positives.
        title: figure title; default names the IoU and score thresholds.

    Returns:
        ``path``.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    mat = cm.matrix.astype(np.float64)
    labels = cm.labels
    n = len(labels)
    if normalize:
        sums = mat.sum(axis=1, keepdims=True)
        shade = np.divide(mat, sums, out=np.zeros_like(mat), where=sums > 0)
    else:
        shade = mat / max(mat.max(), 1.0)
    size = min(max(4.5, 0.45 * n + 2.5), 30.0)
    fig = _figure(size + 1.0, size)
    ax = fig.subplots()
    im = ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(np.arange(n), labels, rotation=45, ha="right", fontsize=8 if n > 15 else 10)
    ax.set_yticks(np.arange(n), labels, fontsize=8 if n > 15 else 10)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                v = int(cm.matrix[i, j])
                if v or i == j:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                            color="white" if shade[i, j] > 0.6 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the truth row" if normalize else "share of the largest cell")
    ax.set_title(title or f"Detection confusion ({cm.iou_type}, IoU {cm.iou_threshold:g}, "
                          f"score >= {cm.score_threshold:g})")
    return _save(fig, path)


def plot_slices(result: SliceResult, path: str | Path, *, title: str | None = None) -> Path:
    """The metric per slice with its confidence interval, against the overall value.

    Args:
        result: a ``slice_metrics`` result.
        path: the PNG to write.
        title: figure title.

    Returns:
        ``path``. Slices significantly below the overall value are red, above green.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    s = len(result.values)
    fig = _figure(7.5, max(2.5, 0.35 * s + 1.4))
    ax = fig.subplots()
    y = np.arange(s)
    colour = np.where(result.below, "#c44e52", np.where(result.above, "#55a868", "#4c72b0"))
    lo = np.nan_to_num(result.value - result.lower)
    hi = np.nan_to_num(result.upper - result.value)
    for i in range(s):
        ax.errorbar(result.value[i], y[i], xerr=[[max(lo[i], 0)], [max(hi[i], 0)]], fmt="o", color=colour[i],
                    capsize=3)
    if not math.isnan(result.overall):
        ax.axvline(result.overall, color="black", lw=1, ls="--")
    ax.set_yticks(y, [f"{v} ({n})" for v, n in zip(result.values, result.n_images.tolist(), strict=True)])
    ax.set_xlabel(f"{result.metric} ({result.ci:.0%} bootstrap interval, {result.n_boot} draws)")
    ax.set_ylabel(f"{result.by} (images)")
    ax.set_ylim(s - 0.5, -0.5)  # first slice on top
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or f"{result.metric} per {result.by} (dashed: overall {_fmt(result.overall)}; red: "
                          "significantly below, green: above)", fontsize=10)
    return _save(fig, path)


#: one colour per TIDE error type (the palette of the other plots), the oracles in grey
_TIDE_COLOURS = {"Cls": "#4c72b0", "Loc": "#dd8452", "Both": "#55a868", "Dupe": "#c44e52", "Bkg": "#8172b3",
                 "Miss": "#937860", "FP": "0.45", "FN": "0.65"}


def plot_tide_errors(result: TideResult, path: str | Path, *, title: str | None = None) -> Path:
    """Horizontal bars of the AP gained by fixing each TIDE error type, with its count, and of the FP and FN
    oracles.

    Args:
        result: a ``tide_errors`` result.
        path: the PNG to write.
        title: figure title; default names the IoU type, the thresholds and the base AP.

    Returns:
        ``path``. dAP is in AP units (0 to 1; tidecv's plots show it x 100); a dAP that is undefined (nothing left
        to average after the fix) is written "n/a" with no bar.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    fig = _figure(9.0, 3.6)
    axes = fig.subplots(1, 2, width_ratios=[3, 1.4])
    groups = [(result.ERROR_TYPES, "main errors (count)"), (("FP", "FN"), "special: perfect precision / recall")]
    top = max([v for v in result.delta_ap.values() if not math.isnan(v)] + [0.01])
    for ax, (types, label) in zip(axes, groups, strict=True):
        vals = np.asarray([result.delta_ap[t] for t in types], np.float64)
        y = np.arange(len(types))
        has = ~np.isnan(vals)
        ax.barh(y[has], vals[has], color=[_TIDE_COLOURS[t] for t, h in zip(types, has, strict=True) if h])
        for yi, t, v in zip(y.tolist(), types, vals.tolist(), strict=True):
            n = f" (n={result.counts[t]})" if t in result.counts else ""
            ax.text(0 if math.isnan(v) else v + top * 0.02, yi, f"{_fmt(v)}{n}", va="center", fontsize=8)
        ax.set_yticks(y, list(types))
        ax.set_ylim(len(types) - 0.5, -0.5)  # first type on top
        ax.set_xlim(0, top * 1.45)
        ax.set_xlabel("dAP (AP gained by fixing)")
        ax.set_title(label, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title or f"TIDE errors ({result.iou_type}; AP{round(result.pos_thr * 100)} {_fmt(result.ap_base)}, "
                          f"background IoU <= {result.bg_thr:g})")
    return _save(fig, path)
