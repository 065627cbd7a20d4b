"""The quality report: one self-contained HTML file (what the report is, counts per type, the top issues, per-class
summaries).

When the dataset has its images (``ds.root``), each of the top issues shows the offending object: a crop of the
image with the annotation's box in orange, the other annotation of a pair (a duplicate, a class conflict) in yellow
and a suggested box (an out-of-bounds box clipped to the image) in blue (``consensus_report``'s colours), and the box in xyxy pixels under it ("(no
image)" where the file can't be read); an annotation without a box is outlined by its polygon's or mask's bounding
box, an oriented box (oriented data, or an ``obb_*`` finding) by its 4 corners, with the suggested corners in
blue, and an image-level finding shows the whole image. Crops are inline PNGs, so the page stays one file. Every
value from the data (title, paths, class names, reasons) is HTML-escaped; with no issues the page says so (and still
lists the classes). When image files of the listed issues are not found (a COCO file read away from its images), a
note at the top says how many of how many and the first path tried (``missing_crop_images``). Given the
``AgreementResult`` of several annotators, the page opens with their agreement: the numbers ``maslow check`` prints
and its ``--json`` holds (Krippendorff's alpha, Fleiss' kappa, each annotator's precision and recall against the
majority, Cohen's kappa per pair, the boxes' IoU).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core import masks as M
from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.types import distinct
from maslow.errors import MissingDependencyError
from maslow.quality.agreement import AgreementResult
from maslow.quality.issues import QualityIssues
from maslow.quality.oriented import is_oriented, oriented_rows, quad_corners

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; }
.error { color: #b00020; font-weight: bold; } .warning { color: #b26a00; } .info { color: #555; }
{{ legend_css }} .box { display: block; }
</style></head><body>
<h1>{{ title }}</h1>
<p>{{ n_images }} images, {{ n_annotations }} annotations, {{ n_classes }} classes:
<b>{{ n_issues }}</b> issues{% if severity %} ({% for s, c in severity %}{{ c }} {{ s }}{% if not loop.last %}, {% endif %}{% endfor %}){% endif %}.</p>
{% if missing %}<p class="warning" id="missing-images">{{ missing.n_missing }} of the {{ missing.n_checked }} images of the
issues below were not found (first tried: {{ missing.first }}): their crops show &quot;(no image)&quot;. Read the dataset
with the folder its image paths are relative to (<b>maslow check --images-root FOLDER</b>) to see them.</p>
{% endif %}<p>Findings about this dataset's labels from maslow's quality checks (<b>maslow check</b> runs the rule checks,
without a model: geometry, overlaps, consistency, annotator agreement, bias; crop outliers with --outliers). Each
finding is a likely labelling error with a score in [0, 1] (higher: more likely a real error), ranked by it, and
says what to do about it; &quot;(dataset)&quot; marks a finding about the whole dataset.</p>
{% if ag %}<h2 id="agreement">Annotator agreement</h2>
<p>Over {{ ag.n_objects }} objects of {{ ag.n_shared_images }} shared images: Krippendorff's alpha <b>{{ ag.alpha }}</b>,
Fleiss' kappa <b>{{ ag.fleiss }}</b> (class agreement; 1: perfect, 0: chance); IoU of the matched boxes: mean
{{ ag.iou_mean }}, median {{ ag.iou_median }}, 10th percentile {{ ag.iou_p10 }}.</p>
<table><tr><th>annotator</th><th>precision</th><th>recall</th></tr>
{% for n, p, r in ag.per_annotator %}<tr><td>{{ n }}</td><td class="num">{{ p }}</td><td class="num">{{ r }}</td></tr>
{% endfor %}</table>
<p>Precision and recall of each annotator against the majority.</p>
{% if ag.cohen %}<table><tr><th>annotators</th><th>Cohen's kappa</th></tr>
{% for pair, k in ag.cohen %}<tr><td>{{ pair }}</td><td class="num">{{ k }}</td></tr>
{% endfor %}</table>{% endif %}
{% if ag.attributes %}<table><tr><th>attribute</th><th>objects</th><th>Krippendorff's alpha</th><th>Fleiss' kappa</th></tr>
{% for n, o, a, f in ag.attributes %}<tr><td>{{ n }}</td><td class="num">{{ o }}</td><td class="num">{{ a }}</td><td class="num">{{ f }}</td></tr>
{% endfor %}</table>{% endif %}
{% if ag.classes %}<p>Disagreement per class (share of its objects not labelled alike): {% for c, d in ag.classes %}{{ c }} {{ d }}{% if not loop.last %}, {% endif %}{% endfor %}.</p>{% endif %}
{% endif %}{% if not n_issues %}<p>No issues found.</p>
{% else %}<h2>Issues per type</h2>
<table><tr><th>type</th><th>severity</th><th>count</th></tr>
{% for t, s, c in counts %}<tr><td>{{ t }}</td><td class="{{ s }}">{{ s }}</td><td class="num">{{ c }}</td></tr>
{% endfor %}</table>
<h2>Top {{ rows|length }} issues</h2>
{% if crops %}<p>{{ legend|safe }}.</p>{% endif %}
<table><tr><th>#</th>{% if crops %}<th>object (box xyxy px)</th>{% endif %}<th>score</th><th>severity</th><th>type</th>
<th>image</th><th>annotation</th><th>class</th><th>reason</th><th>suggestion</th></tr>
{% for r in rows %}<tr><td class="num">{{ loop.index }}</td>{% if crops %}<td>{% if r.crop %}<img src="data:image/png;base64,{{ r.crop }}" alt="crop">{% elif r.image >= 0 %}(no image){% endif %}<span class="box">{{ r.box_text }}</span></td>{% endif %}
<td class="num">{{ "%.3f"|format(r.score) }}</td>
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


def outline(ds: Dataset, ann: int) -> np.ndarray:
    """(4,) xyxy box of annotation row ``ann``: its box, else its polygon's or mask's bounding box; NaN for none."""
    a = ds.annotations
    assert a.box is not None
    if ann < 0:
        return np.full(4, np.nan)
    if a.has_box[ann]:
        return np.asarray(a.box[ann], np.float64)
    poly = a.polygon[ann] if a.polygon is not None else None
    if poly:
        return M.polygon_box(poly)
    mask = a.mask[ann] if a.mask is not None else None
    if mask is not None and M.area([mask])[0] > 0:
        return np.asarray(M.to_box([mask])[0], np.float64)
    return np.full(4, np.nan)


def _crop(ds: Dataset, image: int, ann: int, other: int, suggested: np.ndarray | None, size: int,
          corners: np.ndarray | None = None, suggested_corners: np.ndarray | None = None) -> str | None:
    """A base64 PNG of the finding's objects on their image (see the module docstring), None when unreadable;
    ``corners``: the annotation's oriented box, drawn in place of its box."""
    from maslow.quality.consensus_report import OTHER_COLOUR, SUGGESTED_COLOUR, TRUTH_COLOUR, crop_png, thumbnail_png

    if image < 0:
        return None
    boxes = [(outline(ds, ann) if corners is None else np.full(4, np.nan), TRUTH_COLOUR),
             (outline(ds, other), OTHER_COLOUR)]
    if suggested is not None and suggested_corners is None:
        boxes.append((suggested, SUGGESTED_COLOUR))
    rings = [(c, colour) for c, colour in ((corners, TRUTH_COLOUR), (suggested_corners, SUGGESTED_COLOUR))
             if c is not None]
    if not any(np.isfinite(b).all() for b, _ in boxes) and not rings:
        return thumbnail_png(ds, image, size)
    return crop_png(ds, image, boxes, size, rings=rings)


def _box_text(b: np.ndarray) -> str:
    return "" if not np.isfinite(b).all() else "[" + ", ".join(f"{v:.1f}" for v in b.tolist()) + "]"


@dataclass(frozen=True)
class MissingImages:
    """Image files that are not where the dataset says (``missing_images``).

    Attributes:
        n_missing: files not found, of ``n_checked`` image rows. first: the first path tried that is missing
            (None when none is).
    """

    n_missing: int
    n_checked: int
    first: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"n_missing": self.n_missing, "n_checked": self.n_checked, "first": self.first}


def missing_images(ds: Dataset, rows: Sequence[int] | np.ndarray) -> MissingImages:
    """Which of the image rows ``rows`` (distinct) have no file where ``ds`` says (``ds.root`` / path; an IDX
    member's file for ``file#i``)."""
    from maslow.io.images import idx_member, image_path

    rows = [int(i) for i in rows]
    gone = [str(p.absolute()) for p in (idx_member(image_path(ds, i))[0] for i in rows) if not p.is_file()]
    return MissingImages(len(gone), len(rows), gone[0] if gone else None)


def missing_crop_images(issues: QualityIssues, ds: Dataset, *, top: int = 100,
                        crop_size: int = 128) -> MissingImages | None:
    """The images of the ``top`` issues the report would crop that are not found (their crops show "(no image)");
    None when the report has no crops (no ``ds.root``, or ``crop_size`` 0)."""
    if ds.root is None or crop_size <= 0:
        return None
    img = issues.top(top).image
    return missing_images(ds, list(dict.fromkeys(img[img >= 0].tolist())))


def _num(v: float) -> str:
    return f"{v:.3f}"


def _agreement(ag: AgreementResult | None) -> dict[str, Any] | None:
    """The agreement section's values, as ``AgreementResult.to_dict`` holds them (3 decimals, as the table)."""
    if ag is None:
        return None
    d = ag.to_dict()
    return {"n_objects": d["n_objects"], "n_shared_images": d["n_shared_images"],
            "alpha": _num(d["krippendorff_alpha"]), "fleiss": _num(d["fleiss_kappa"]),
            "iou_mean": _num(d["iou"]["mean"]), "iou_median": _num(d["iou"]["median"]), "iou_p10": _num(d["iou"]["p10"]),
            "per_annotator": [(n, _num(v["precision"]), _num(v["recall"])) for n, v in d["per_annotator"].items()],
            "cohen": [(pair.replace("|", " and "), _num(k)) for pair, k in d["cohen_kappa"].items()],
            "attributes": [(n, int(v.get("n_objects", 0)), _num(v.get("krippendorff_alpha", float("nan"))),
                            _num(v.get("fleiss_kappa", float("nan")))) for n, v in d["attributes"].items()],
            "classes": [(c, _num(v)) for c, v in d["ambiguous_classes"].items()]}


def _context(issues: QualityIssues, ds: Dataset, top: int, title: str, crop_size: int,
             agreement: AgreementResult | None = None) -> dict[str, Any]:
    a = ds.annotations
    names = ds.schema.names
    sev = issues.severity_of()
    rows = []
    crops = ds.root is not None and crop_size > 0
    quads = oriented_rows(ds)
    oriented = is_oriented(ds)
    for r in issues.top(top).rows(names=names):
        ann = r["annotation"]
        sug = (r["suggestion"] or {}).get("box_xyxy")
        sug_box = None if sug is None else np.asarray(sug, np.float64)
        ring = (r["suggestion"] or {}).get("polygon")
        sug_corners = None if ring is None else np.asarray(ring[0], np.float64).reshape(-1, 2)
        mine = quad_corners(ds, np.array([ann]))[0] if ann >= 0 and quads[ann] and (
            oriented or str(r["type"]).startswith("obb_")) else None
        rows.append({**r, "suggestion_text": (r["suggestion"] or {}).get("text", ""),
                     "box_text": _box_text(outline(ds, ann)),
                     "crop": _crop(ds, r["image"], ann, r["other"], sug_box, crop_size, mine, sug_corners)
                     if crops else None,
                     "image_name": str(ds.images.path[r["image"]]) if r["image"] >= 0 else "(dataset)",
                     "annotation_text": "" if ann < 0 else (str(ann) if r["other"] < 0 else f"{ann}, {r['other']}"),
                     # the annotation's class, else the suggested one (a missing object), as ``maslow qa`` names it
                     "class_name": names[a.label[ann]] if ann >= 0 else (r["suggestion"] or {}).get("class") or ""})
    per_class = np.bincount(a.label, minlength=len(names))
    on_ann = issues.annotation >= 0
    flagged_rows = distinct(issues.annotation[on_ann])
    flagged = np.bincount(a.label[flagged_rows], minlength=len(names))
    types: list[Counter[str]] = [Counter() for _ in names]
    for t, r in zip(issues.type[on_ann].tolist(), issues.annotation[on_ann].tolist(), strict=True):
        types[a.label[r]][t] += 1
    classes = [{"name": n, "n": int(per_class[c]), "flagged": int(flagged[c]),
                "share": 100.0 * flagged[c] / max(per_class[c], 1),
                "types": ", ".join(f"{t} {v}" for t, v in types[c].most_common())} for c, n in enumerate(names)]
    from maslow.quality.consensus_report import LEGEND_CSS, legend

    missing = missing_crop_images(issues, ds, top=top, crop_size=crop_size)
    return {"title": title, "crops": crops, "legend_css": LEGEND_CSS,
            "missing": missing if missing is not None and missing.n_missing else None, "ag": _agreement(agreement),
            "legend": legend(("t", "the annotation"), ("o", "the other annotation of a pair"),
                             ("s", "the suggested box")), "n_images": ds.n_images, "n_annotations": ds.n_annotations, "n_classes": len(names),
            "n_issues": len(issues), "severity": list(Counter(issues.severity.tolist()).most_common()),
            "counts": [(t, sev[t], c) for t, c in issues.counts().items()], "rows": rows, "classes": classes}


def render_html(issues: QualityIssues, ds: Dataset, *, top: int = 100, title: str = "maslow quality report",
                crop_size: int = 128, agreement: AgreementResult | None = None) -> str:
    """The report as an HTML string (needs jinja2: ``pip install 'maslow[reports]'``); ``crop_size``: the longer
    side of each crop in pixels (0: no object column); ``agreement``: see ``write_html``."""
    try:
        import jinja2
    except ImportError:
        raise MissingDependencyError("jinja2 is not installed: pip install 'maslow[reports]'") from None
    env = jinja2.Environment(autoescape=True)
    return env.from_string(_TEMPLATE).render(**_context(issues, ds, top, title, crop_size, agreement))


def write_html(issues: QualityIssues, ds: Dataset, path: str | Path, *, top: int = 100,
               title: str = "maslow quality report", crop_size: int = 128,
               agreement: AgreementResult | None = None) -> Path:
    """Write the report to ``path`` atomically (one self-contained file); returns the path.

    Args:
        issues: the result of ``check`` (or any ``QualityIssues`` about ``ds``).
        ds: the dataset the rows point into.
        path: the HTML file to write.
        top: how many of the highest-scored issues to list.
        title: the page title.
        crop_size: the longer side of each issue's crop, pixels (read from the images under ``ds.root``; an
            image that can't be read gets none; 0, or a dataset without ``root``: no object column). When image
            files are not found, a note at the top says so (``missing_crop_images``).
        agreement: ``annotator_agreement(ds)`` of a dataset labelled by several annotators: an agreement section
            opens the page (None: none).

    Raises:
        MissingDependencyError: jinja2 is absent (``pip install 'maslow[reports]'``).
    """
    text = render_html(issues, ds, top=top, title=title, crop_size=crop_size, agreement=agreement)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
