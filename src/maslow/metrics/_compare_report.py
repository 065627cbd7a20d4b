"""The model comparison report: one self-contained HTML file (stats of both models with their deltas and paired
bootstrap intervals, per-class deltas (AP; F1 and recall, or IoU, for ``compare_labels``), McNemar's test of two
classifiers, calibration of each detector's scores, the plots inline as PNG).

Every value from the data (title, file names, class names) is HTML-escaped (jinja2's autoescape).
"""

from __future__ import annotations

import base64
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from maslow.core.atomic import atomic_path
from maslow.errors import MissingDependencyError

if TYPE_CHECKING:
    from maslow.metrics.calibration import Calibration
    from maslow.metrics.compare import Comparison, LabelComparison

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.better { color: #1a7f37; font-weight: bold; } .worse { color: #b00020; font-weight: bold; } .same { color: #555; }
img { max-width: 100%; }
</style></head><body>
<h1>{{ title }}</h1>
<p>{% for s in sources %}<b>{{ s[0] }}</b>: {{ s[1] }}{% if not loop.last %}<br>{% endif %}{% endfor %}</p>
<p>{{ n_images }} images ({{ what }}). Deltas are {{ b }} minus {{ a }} (positive: {{ b }} is better{% if lower_better %},
except for {{ lower_better }}, where lower is better{% endif %}).
{% if n_bootstrap %}Intervals: {{ level }} paired bootstrap over images, {{ n_bootstrap }}
replicates (each draws {{ n_images }} images with replacement and evaluates both models on them);
&quot;p(B&le;A)&quot; is the fraction of replicates where {{ b }} is not better. A delta is flagged when its interval
excludes 0.{% else %}No bootstrap (0 replicates): no intervals.{% endif %}</p>
<p class="{{ verdict_class }}">{{ verdict }}</p>
{% if mcnemar %}<p>{{ mcnemar }}</p>{% endif %}
<h2>Summary stats</h2>
<table><tr><th>stat</th><th>{{ a }}</th><th>{{ b }}</th><th>delta</th><th>interval</th><th>p(B&le;A)</th><th></th></tr>
{% for r in stats %}<tr><td>{{ r.name }}</td><td class="num">{{ r.a }}</td><td class="num">{{ r.b }}</td>
<td class="num {{ r.cls }}">{{ r.delta }}</td><td class="num">{{ r.interval }}</td><td class="num">{{ r.p }}</td>
<td class="{{ r.cls }}">{{ r.flag }}</td></tr>
{% endfor %}</table>
{% for s in sections %}<h2>{{ s.title }} per class (sorted by delta, largest loss first)</h2>
{% if s.plot %}<p><img src="data:image/png;base64,{{ s.plot }}" alt="{{ s.title }} delta per class"><br>
Each point is a class's delta, the whiskers its interval: green where the interval is above 0 ({{ b }} better), red
where it is below ({{ b }} worse), blue where it includes 0 (the data cannot tell).</p>{% endif %}
<table><tr><th>class</th>{% if s.support %}<th>{{ s.support }}</th>{% endif %}<th>{{ s.title }} {{ a }}</th>
<th>{{ s.title }} {{ b }}</th><th>delta</th><th>interval</th><th>p(B&le;A)</th><th></th></tr>
{% for r in s.rows %}<tr><td>{{ r.name }}</td>{% if s.support %}<td class="num">{{ r.support }}</td>{% endif %}
<td class="num">{{ r.a }}</td><td class="num">{{ r.b }}</td>
<td class="num {{ r.cls }}">{{ r.delta }}</td><td class="num">{{ r.interval }}</td><td class="num">{{ r.p }}</td>
<td class="{{ r.cls }}">{{ r.flag }}</td></tr>
{% endfor %}</table>
{% endfor %}{% if calibration %}<h2>Calibration of the scores</h2>
<p>A prediction is correct when it is a true positive at IoU {{ cal_iou }}; ECE is the gap between score and
fraction correct, averaged over {{ cal_bins }} score bins weighted by their predictions; MCE is the largest gap
(lower is better for both).</p>
<table><tr><th>model</th><th>predictions</th><th>ECE</th><th>MCE</th></tr>
{% for r in calibration %}<tr><td>{{ r.name }}</td><td class="num">{{ r.n }}</td><td class="num">{{ r.ece }}</td>
<td class="num">{{ r.mce }}</td></tr>
{% endfor %}</table>
{% if reliability_plot %}<p><img src="data:image/png;base64,{{ reliability_plot }}" alt="reliability diagram"></p>{% endif %}
{% endif %}{% if notes %}<h2>Notes</h2>
<ul>{% for name, text in notes %}<li>{{ name }}: {{ text }}</li>{% endfor %}</ul>
{% endif %}
</body></html>
"""


def _num(v: float, signed: bool = False) -> str:
    if math.isnan(v):
        return "-"
    return f"{v:+.4f}" if signed else f"{v:.4f}"


def confidence_level(confidence: float) -> str:
    """The interval's level as a percentage, as precise as given: 0.95 -> "95%", 0.995 -> "99.5%" (not "100%")."""
    return f"{round(confidence * 100, 6):g}%"


def _rows(names: Sequence[str], a: np.ndarray, b: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray,
          p: np.ndarray, order: Sequence[int], labels: tuple[str, str], higher: np.ndarray | None = None,
          support: np.ndarray | None = None) -> list[dict[str, str]]:
    out = []
    for i in order:
        up = True if higher is None else bool(higher[i])
        better, worse = (bool(lo[i] > 0), bool(hi[i] < 0)) if up else (bool(hi[i] < 0), bool(lo[i] > 0))
        out.append({"name": names[i] if up else f"{names[i]} (lower is better)", "a": _num(a[i]), "b": _num(b[i]),
                    "delta": _num(d[i], True),
                    "interval": "-" if math.isnan(lo[i]) else f"[{lo[i]:+.4f}, {hi[i]:+.4f}]",
                    "p": "-" if math.isnan(p[i]) else f"{p[i]:.3f}",
                    "cls": "better" if better else "worse" if worse else "same",
                    "flag": f"{labels[1]} better" if better else f"{labels[1]} worse" if worse else "",
                    "support": "" if support is None else str(int(support[i]))})
    return out


def _png(draw: Any) -> str:
    """The base64 PNG that ``draw(path)`` writes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plot.png"
        draw(path)
        return base64.b64encode(path.read_bytes()).decode("ascii")


def _verdict(c: Comparison | LabelComparison, labels: tuple[str, str]) -> tuple[str, str]:
    """The headline stat (mAP@[.5:.95], or a label comparison's first score, higher-better) in one sentence."""
    i = c.stat_names.index("map_50_95") if "map_50_95" in c.stat_names else 0
    name = "mAP@[.5:.95]" if c.stat_names[i] == "map_50_95" else c.stat_names[i]
    a, b = labels
    d, lo, hi = float(c.delta[i]), float(c.lower[i]), float(c.upper[i])
    if math.isnan(d):
        why = "no truth objects" if name.startswith("mAP") else "undefined for a model"
        return f"{name} is undefined ({why}): nothing to compare.", "same"
    head = f"{name} {_num(float(c.stats_a[i]))} ({a}) -> {_num(float(c.stats_b[i]))} ({b}), delta {d:+.4f}"
    if math.isnan(lo):
        return head + ".", "same"
    tail = f", {confidence_level(c.confidence)} interval [{lo:+.4f}, {hi:+.4f}], p(B\u2264A) {float(c.p_not_better[i]):.3f}"
    if lo > 0:
        return head + tail + f": {b} is better.", "better"
    if hi < 0:
        return head + tail + f": {b} is worse.", "worse"
    return head + tail + ": the data cannot tell them apart.", "same"


def mcnemar_sentence(c: LabelComparison, labels: tuple[str, str]) -> str | None:
    """McNemar's exact test in one sentence (None without a test)."""
    if c.mcnemar_stat is None:
        return None
    a, b = labels
    n = c.mcnemar_a_only + c.mcnemar_b_only
    return (f"McNemar's exact test ({c.mcnemar_stat}): {a} alone is right on {c.mcnemar_a_only} images, {b} alone on "
            f"{c.mcnemar_b_only}; two-sided p = {c.mcnemar_p:.3g}" +
            (" (no image where they differ)." if not n else "."))


_SECTION = {"f1": "F1", "recall": "recall", "iou": "IoU"}


def render_comparison_html(comparison: Comparison | LabelComparison, *,
                           calibrations: Mapping[str, Calibration] | None = None, labels: tuple[str, str] = ("A", "B"),
                           sources: Mapping[str, str] | None = None, title: str = "maslow model comparison",
                           plots: bool = True, notes: Mapping[str, Sequence[str]] | None = None) -> str:
    """The comparison report as an HTML string (needs jinja2: ``pip install 'maslow[reports]'``; the plots need
    matplotlib, ``plots=False`` leaves them out); ``notes``: model name -> what to tell about its input (a model
    whose calibration was skipped, predictions left out), listed at the end."""
    try:
        import jinja2
    except ImportError:
        raise MissingDependencyError("jinja2 is not installed: pip install 'maslow[reports]'") from None
    from maslow.metrics.calibration import plot_reliability
    from maslow.metrics.compare import LabelComparison, class_rows, delta_order, plot_ap_deltas, plot_class_deltas

    c = comparison
    cals = dict(calibrations or {})
    if isinstance(c, LabelComparison):
        lc = c
        stats = _rows(c.stat_names, c.stats_a, c.stats_b, c.delta, c.lower, c.upper, c.p_not_better,
                      range(len(c.stat_names)), labels, higher=c.higher_better)
        unit = "pixels" if c.task == "semantic_segmentation" else "truth images"
        sections = [{"title": _SECTION.get(m, m), "support": unit,
                     "plot": _png(lambda p, m=m: plot_class_deltas(lc, p, metric=m, labels=labels))
                     if plots and len(c.class_names) else None,
                     "rows": _rows(c.class_names, c.a_per_class[j], c.b_per_class[j], c.delta_per_class[j],
                                   c.lower_per_class[j], c.upper_per_class[j], c.p_not_better_per_class[j],
                                   delta_order(c.delta_per_class[j]).tolist(), labels,
                                   support=c.support_per_class)}
                    for j, m in enumerate(c.class_metrics)]
        what, mcnemar = c.task, mcnemar_sentence(c, labels)
        lower_better = ", ".join(n for n, h in zip(c.stat_names, c.higher_better.tolist(), strict=True) if not h)
    else:
        cc = c
        stats = _rows(c.stat_names, c.stats_a, c.stats_b, c.delta, c.lower, c.upper, c.p_not_better,
                      range(len(c.stat_names)), labels)
        sections = [{"title": "AP@[.5:.95]", "support": "truth",
                     "plot": _png(lambda p: plot_ap_deltas(cc, p, labels=labels)) if plots and len(c.class_names)
                     else None,
                     "rows": _rows(c.class_names, c.ap_a_per_class, c.ap_b_per_class, c.delta_per_class,
                                   c.lower_per_class, c.upper_per_class, c.p_not_better_per_class,
                                   class_rows(c).tolist(), labels, support=c.n_truth_per_class)}]
        what, mcnemar, lower_better = c.iou_type, None, ""
    cal = [{"name": n, "n": k.n_predictions, "ece": _num(k.ece), "mce": _num(k.mce)} for n, k in cals.items()]
    first = next(iter(cals.values()), None)
    verdict, verdict_class = _verdict(c, labels)
    ctx = {"title": title, "sources": list((sources or {}).items()), "n_images": c.n_images, "what": what,
           "a": labels[0], "b": labels[1], "n_bootstrap": c.n_bootstrap, "level": confidence_level(c.confidence),
           "verdict": verdict, "verdict_class": verdict_class, "stats": stats, "sections": sections,
           "mcnemar": mcnemar, "lower_better": lower_better,
           "calibration": cal, "cal_iou": "" if first is None else f"{first.iou_threshold:g}",
           "cal_bins": 0 if first is None else first.n_bins,
           "reliability_plot": _png(lambda p: plot_reliability(list(cals.values()), p, labels=list(cals)))
           if plots and cals else None,
           "notes": [(name, text) for name, texts in (notes or {}).items() for text in texts]}
    env = jinja2.Environment(autoescape=True)
    return env.from_string(_TEMPLATE).render(**ctx)


def write_comparison_html(comparison: Comparison | LabelComparison, path: str | Path, *,
                          calibrations: Mapping[str, Calibration] | None = None,
               labels: tuple[str, str] = ("A", "B"), sources: Mapping[str, str] | None = None,
               title: str = "maslow model comparison", plots: bool = True,
               notes: Mapping[str, Sequence[str]] | None = None) -> Path:
    """Write the comparison report to ``path`` atomically (one self-contained file); returns the path.

    Args:
        comparison: a ``compare_models`` or ``compare_labels`` result.
        path: the HTML file to write.
        calibrations: model name -> its ``detection_calibration`` (optional; shown in that order).
        labels: what to call the two models.
        sources: name -> file shown at the top (the truth and the prediction files).
        title: the page title.
        plots: draw the AP-delta and reliability plots into the page (needs matplotlib).
        notes: model name -> notes on its input, listed at the end (``maslow compare`` gives its stderr notes).

    Raises:
        MissingDependencyError: jinja2 (or, with plots, matplotlib) is absent (``pip install 'maslow[reports]'``).
    """
    text = render_comparison_html(comparison, calibrations=calibrations, labels=labels, sources=sources, title=title,
                                  plots=plots, notes=notes)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
