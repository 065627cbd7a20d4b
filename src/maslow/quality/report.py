"""The quality report: one self-contained HTML file (what the report is, counts per type, the top issues, per-class
summaries).

Every value from the data (title, paths, class names, reasons) is HTML-escaped; with no issues the page says so
(and still lists the classes).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.errors import MissingDependencyError
from maslow.quality.issues import QualityIssues

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; }
.error { color: #b00020; font-weight: bold; } .warning { color: #b26a00; } .info { color: #555; }
</style></head><body>
<h1>{{ title }}</h1>
<p>{{ n_images }} images, {{ n_annotations }} annotations, {{ n_classes }} classes:
<b>{{ n_issues }}</b> issues{% if severity %} ({% for s, c in severity %}{{ c }} {{ s }}{% if not loop.last %}, {% endif %}{% endfor %}){% endif %}.</p>
<p>Findings about this dataset's labels from maslow's quality checks (<b>maslow check</b> runs the rule checks,
without a model: geometry, overlaps, consistency, annotator agreement, bias; crop outliers with --outliers). Each
finding is a likely labelling error with a score in [0, 1] (higher: more likely a real error), ranked by it, and
says what to do about it; &quot;(dataset)&quot; marks a finding about the whole dataset.</p>
{% if not n_issues %}<p>No issues found.</p>
{% else %}<h2>Issues per type</h2>
<table><tr><th>type</th><th>severity</th><th>count</th></tr>
{% for t, s, c in counts %}<tr><td>{{ t }}</td><td class="{{ s }}">{{ s }}</td><td class="num">{{ c }}</td></tr>
{% endfor %}</table>
<h2>Top {{ rows|length }} issues</h2>
<table><tr><th>#</th><th>score</th><th>severity</th><th>type</th><th>image</th><th>annotation</th><th>class</th>
<th>reason</th><th>suggestion</th></tr>
{% for r in rows %}<tr><td class="num">{{ loop.index }}</td><td class="num">{{ "%.3f"|format(r.score) }}</td>
<td class="{{ r.severity }}">{{ r.severity }}</td><td>{{ r.type }}</td><td>{{ r.image_name }}</td>
<td class="num">{{ r.annotation_text }}</td><td>{{ r.class_name }}</td><td>{{ r.reason }}</td><td>{{ r.suggestion_text }}</td></tr>
{% endfor %}</table>
{% endif %}<h2>Per class</h2>
<table><tr><th>class</th><th>annotations</th><th>annotations with an issue</th><th>share</th><th>issue types</th></tr>
{% for c in classes %}<tr><td>{{ c.name }}</td><td class="num">{{ c.n }}</td><td class="num">{{ c.flagged }}</td>
<td class="num">{{ "%.1f"|format(c.share) }}%</td><td>{{ c.types }}</td></tr>
{% endfor %}</table>
</body></html>
"""


def _context(issues: QualityIssues, ds: Dataset, top: int, title: str) -> dict[str, Any]:
    a = ds.annotations
    names = ds.schema.names
    sev = issues.severity_of()
    rows = []
    for r in issues.top(top).rows(names=names):
        ann = r["annotation"]
        rows.append({**r, "suggestion_text": (r["suggestion"] or {}).get("text", ""),
                     "image_name": str(ds.images.path[r["image"]]) if r["image"] >= 0 else "(dataset)",
                     "annotation_text": "" if ann < 0 else (str(ann) if r["other"] < 0 else f"{ann}, {r['other']}"),
                     # the annotation's class, else the suggested one (a missing object), as ``maslow qa`` names it
                     "class_name": names[a.label[ann]] if ann >= 0 else (r["suggestion"] or {}).get("class") or ""})
    per_class = np.bincount(a.label, minlength=len(names))
    on_ann = issues.annotation >= 0
    flagged_rows = np.unique(issues.annotation[on_ann])
    flagged = np.bincount(a.label[flagged_rows], minlength=len(names))
    types: list[Counter[str]] = [Counter() for _ in names]
    for t, r in zip(issues.type[on_ann].tolist(), issues.annotation[on_ann].tolist(), strict=True):
        types[a.label[r]][t] += 1
    classes = [{"name": n, "n": int(per_class[c]), "flagged": int(flagged[c]),
                "share": 100.0 * flagged[c] / max(per_class[c], 1),
                "types": ", ".join(f"{t} {v}" for t, v in types[c].most_common())} for c, n in enumerate(names)]
    return {"title": title, "n_images": ds.n_images, "n_annotations": ds.n_annotations, "n_classes": len(names),
            "n_issues": len(issues), "severity": list(Counter(issues.severity.tolist()).most_common()),
            "counts": [(t, sev[t], c) for t, c in issues.counts().items()], "rows": rows, "classes": classes}


def render_html(issues: QualityIssues, ds: Dataset, *, top: int = 100, title: str = "maslow quality report") -> str:
    """The report as an HTML string (needs jinja2: ``pip install 'maslow[reports]'``)."""
    try:
        import jinja2
    except ImportError:
        raise MissingDependencyError("jinja2 is not installed: pip install 'maslow[reports]'") from None
    env = jinja2.Environment(autoescape=True)
    return env.from_string(_TEMPLATE).render(**_context(issues, ds, top, title))


def write_html(issues: QualityIssues, ds: Dataset, path: str | Path, *, top: int = 100,
               title: str = "maslow quality report") -> Path:
    """Write the report to ``path`` atomically (one self-contained file); returns the path.

    Args:
        issues: the result of ``check`` (or any ``QualityIssues`` about ``ds``).
        ds: the dataset the rows point into.
        path: the HTML file to write.
        top: how many of the highest-scored issues to list.
        title: the page title.

    Raises:
        MissingDependencyError: jinja2 is absent (``pip install 'maslow[reports]'``).
    """
    text = render_html(issues, ds, top=top, title=title)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
