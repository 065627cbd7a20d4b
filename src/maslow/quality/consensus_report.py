"""An HTML page to judge consensus findings: the top issues of each type, each with a crop of its image.

Each crop shows the annotation's box in orange and the model's suggested box in blue (a ``missing`` object has
only the blue one; oriented boxes: their 4 corners joined, the annotation's where it is one and the dataset is
oriented, the suggestion's where it has them, ``QualityIssues.polygon``); an annotation's labelled keypoints are
orange dots and the model's suggested keypoints (keypoint findings: ``low_iou``, ``missing``) blue ones, each set
joined by its class's skeleton edges where the schema has them. The colours (``TRUTH_COLOUR``, ``OTHER_COLOUR``,
``SUGGESTED_COLOUR``: Okabe and Ito's vermillion, yellow and sky blue, apart for colour-blind eyes too) are drawn on a
dark halo, so an outline stands out from shapes of its own colour in the image. A finding with nothing to outline (a class of a whole image, a tag) shows the whole image, as the review UI
does. Crops are inline PNGs, so the page is one self-contained file; an image that cannot be read gets no crop (the
row still lists the finding). Images are cropped as displayed (EXIF orientation applied, as ``io.images.load`` reads
them), the frame the boxes are in. The page opens with what it is and what each type of finding means.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.errors import FormatError
from maslow.io.images import image_path, load_rgb
from maslow.quality.issues import QualityIssues
from maslow.quality.oriented import is_oriented, oriented_rows, quad_corners

TRUTH_COLOUR = (213, 94, 0)  # the annotation: "orange"
OTHER_COLOUR = (240, 228, 66)  # the other annotation of a pair (a duplicate, a class conflict): "yellow"
SUGGESTED_COLOUR = (86, 180, 233)  # the suggestion (a model's, a rule check's): "blue"
HALO_COLOUR = (20, 20, 20)  # under every outline, 2 px wider
#: The legend's CSS classes: a swatch of each colour (``t``, ``o``, ``s``), as ``legend`` writes them.
LEGEND_CSS = (f"span.t, span.o, span.s {{ font-size: 1.2em; text-shadow: 0 0 1px #000; }} "
              f"span.t {{ color: rgb{TRUTH_COLOUR}; }} span.o {{ color: rgb{OTHER_COLOUR}; }} "
              f"span.s {{ color: rgb{SUGGESTED_COLOUR}; }}")

_STYLE = """body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } """ + LEGEND_CSS


Colour = tuple[int, int, int]

_COLOUR_NAMES = {"t": "orange", "o": "yellow", "s": "blue"}


def legend(*parts: tuple[str, str]) -> str:
    """The HTML legend of a crop's colours: per (CSS class ``t``/``o``/``s``, meaning), its swatch, name and meaning,
    joined by semicolons (the caller escapes nothing: the texts are its own)."""
    return "; ".join(f'<span class="{c}">&#9632;</span> {_COLOUR_NAMES[c]}: {what}' for c, what in parts)

#: What each finding type of ``maslow qa`` means, shown under its heading (rule-check types: ``_RULE_CHECK``).
TYPE_MEANINGS = {
    "wrong_class": "a confident prediction of another class sits on the object: check its class",
    "missing": "the model sees an object no annotation covers: the suggested box and class (blue) would add it",
    "extra": "nothing the model sees, of any class, is where the annotation is: remove it if there is no object",
    "low_iou": "the model's box (or keypoints) of the same class fits the object better than the annotation's",
    "ambiguous": "the model supports both the annotated class and another one: check the class",
}
_RULE_CHECK = "a rule check of maslow check (run by maslow qa --rules), found without the model"


def _image(ds: Dataset, image: int) -> Any:
    """Image row ``image`` as a PIL RGB image (as displayed: EXIF orientation applied), None when unreadable."""
    if ds.root is None:
        return None
    from PIL import Image

    try:
        return Image.fromarray(load_rgb(image_path(ds, image)))
    except FormatError:
        return None


def crop_png(ds: Dataset, image: int, boxes: list[tuple[np.ndarray, Colour]], size: int,
          points: Sequence[tuple[np.ndarray, Colour]] = (), edges: Sequence[tuple[int, int]] = (),
          rings: Sequence[tuple[np.ndarray, Colour]] = ()) -> str | None:
    """A base64 PNG of the region around ``boxes`` (xyxy, colour), ``points`` ((K, 2) xy, NaN rows: not drawn;
    colour) drawn as dots joined by ``edges`` (pairs of rows of each ``points``) and ``rings`` ((V, 2) xy of a closed
    outline, an oriented box's corners; colour), or None when the image cannot be read."""
    from PIL import ImageDraw

    img = _image(ds, image)
    if img is None:
        return None
    good = [b for b, _ in boxes if not np.isnan(b[0])]
    good += [np.r_[xy, xy] for pts, _ in points for xy in pts if np.isfinite(xy).all()]
    good += [np.r_[r.min(axis=0), r.max(axis=0)] for r, _ in rings if len(r) and np.isfinite(r).all()]
    if not good:
        return None
    arr = np.asarray(good)
    x1, y1 = arr[:, 0].min(), arr[:, 1].min()
    x2, y2 = arr[:, 2].max(), arr[:, 3].max()
    pad = 0.5 * max(x2 - x1, y2 - y1, 8.0)
    left, top = max(int(x1 - pad), 0), max(int(y1 - pad), 0)
    right, bottom = min(int(x2 + pad) + 1, img.width), min(int(y2 + pad) + 1, img.height)
    if right <= left or bottom <= top:
        return None
    crop = img.crop((left, top, right, bottom))
    scale = size / max(crop.width, crop.height)
    crop = crop.resize((max(int(crop.width * scale), 1), max(int(crop.height * scale), 1)))
    draw = ImageDraw.Draw(crop)
    for halo in (True, False):  # every outline's dark halo first, then the colours over them
        for b, colour in boxes:
            if np.isnan(b[0]):
                continue
            xy = [(b[0] - left) * scale, (b[1] - top) * scale, (b[2] - left) * scale, (b[3] - top) * scale]
            grow = 1 if halo else 0
            draw.rectangle([xy[0] - grow, xy[1] - grow, xy[2] + grow, xy[3] + grow],
                           outline=HALO_COLOUR if halo else colour, width=4 if halo else 2)
        for ring, colour in rings:
            if len(ring) and np.isfinite(ring).all():
                pix = (np.asarray(ring, np.float64) - [left, top]) * scale
                draw.line([(float(x), float(y)) for x, y in np.r_[pix, pix[:1]].tolist()],
                          fill=HALO_COLOUR if halo else colour, width=4 if halo else 2, joint="curve")
    for pts, colour in points:
        pix = (np.asarray(pts, np.float64) - [left, top]) * scale
        fin = np.asarray(np.isfinite(pix).all(axis=1), bool)
        on = [bool(v) for v in fin]
        for i, j in edges:
            if max(i, j) < len(pix) and on[i] and on[j]:
                draw.line([(float(pix[i, 0]), float(pix[i, 1])), (float(pix[j, 0]), float(pix[j, 1]))], fill=colour,
                          width=1)
        for cx, cy in pix[fin].tolist():
            draw.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=colour, outline=HALO_COLOUR)
    buf = io.BytesIO()
    crop.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail_png(ds: Dataset, image: int, size: int) -> str | None:
    """A base64 PNG of the whole image ``image``, its longer side ``size`` pixels (a finding with nothing to outline:
    the class of a whole image, a tag), or None when the image cannot be read."""
    img = _image(ds, image)
    if img is None:
        return None
    scale = size / max(img.width, img.height)
    img = img.resize((max(int(img.width * scale), 1), max(int(img.height * scale), 1)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _labelled_points(truth: Dataset, ann: int) -> np.ndarray | None:
    """(K, 2) xy of annotation row ``ann``'s keypoints, NaN rows where one is not labelled (v 0), or None."""
    kp = truth.annotations.keypoints
    if kp is None or ann < 0:
        return None
    with np.errstate(invalid="ignore"):
        on = (kp[ann, :, 2] > 0) & ~np.isnan(kp[ann, :, :2]).any(axis=1)
    return np.where(on[:, None], kp[ann, :, :2], np.nan) if on.any() else None


def keypoint_overlays(truth: Dataset, ann: int, suggested: np.ndarray, cls: int
              ) -> tuple[list[tuple[np.ndarray, Colour]], tuple[tuple[int, int], ...]]:
    """The keypoints to draw on a finding's crop: the model's suggested ones ((K, 3) ``suggested``, its x, y where
    numbers) in blue under the annotation's labelled ones in orange; and the skeleton edges of class ``cls`` (-1:
    none)."""
    out: list[tuple[np.ndarray, Colour]] = []
    if len(suggested) and np.isfinite(suggested[:, :2]).all(axis=1).any():
        out.append((np.where(np.isfinite(suggested[:, :2]).all(axis=1)[:, None], suggested[:, :2], np.nan),
                    SUGGESTED_COLOUR))
    mine = _labelled_points(truth, ann)
    if mine is not None:
        out.append((mine, TRUTH_COLOUR))
    edges = truth.schema.classes[cls].skeleton if 0 <= cls < len(truth.schema.classes) else ()
    return out, edges


def render_consensus_html(issues: QualityIssues, truth: Dataset, *, per_type: int = 12, crop_size: int = 160,
                          title: str = "maslow label issues") -> str:
    """The page as a string: counts per type, then the ``per_type`` highest-scored issues of each type."""
    names = truth.schema.names
    ta = truth.annotations
    assert ta.box is not None and issues.box is not None and issues.label is not None and issues.keypoints is not None
    quads = oriented_rows(truth) if is_oriented(truth) else np.zeros(truth.n_annotations, bool)
    e = html.escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{e(title)}</h1>",
             f"<p>{truth.n_images} images, {truth.n_annotations} annotations: <b>{len(issues)}</b> issues. "
             + legend(("t", "the annotation"), ("s", "the model's suggestion")) + ".</p>",
             "<p>Likely label errors, found by comparing the annotations with a model's out-of-fold predictions "
             "(<b>maslow qa</b>: each image predicted by a model that did not train on it). Each finding has a score "
             "in [0, 1], higher when the model is more reliably right at its confidence and contradicts the label "
             "more outright (with --rules, the rule checks of maslow check are ranked with them); below, the "
             "highest-scored findings of each type, each on a crop of its image, for a person to judge.</p>",
             "<table><tr><th>type</th><th>count</th></tr>"]
    parts += [f"<tr><td>{e(t)}</td><td>{c}</td></tr>" for t, c in issues.counts().items()]
    parts.append("</table>")
    if not len(issues):
        parts.append("<p>No issues found.</p>")
    for t, _ in issues.counts().items():
        sel = issues.of_type(t).top(per_type)
        parts.append(f"<h2>{e(t)}: top {len(sel)}</h2><p>{e(t)}: {e(TYPE_MEANINGS.get(t, _RULE_CHECK))}.</p>"
                     "<table><tr><th>#</th><th>crop</th><th>score</th><th>image</th>"
                     "<th>class</th><th>reason</th><th>suggestion</th></tr>")
        assert sel.box is not None and sel.label is not None and sel.keypoints is not None and sel.polygon is not None
        sel_box, sel_label, sel_kp, sel_poly = sel.box, sel.label, sel.keypoints, sel.polygon
        for k in range(len(sel)):
            ann, img = int(sel.annotation[k]), int(sel.image[k])
            truth_box = ta.box[ann] if ann >= 0 else np.full(4, np.nan)
            points, edges = keypoint_overlays(truth, ann, sel_kp[k], int(ta.label[ann]) if ann >= 0 else int(sel_label[k]))
            rings = []
            if ann >= 0 and quads[ann]:  # an oriented box: its corners, not its extent
                rings.append((quad_corners(truth, np.array([ann]))[0], TRUTH_COLOUR))
                truth_box = np.full(4, np.nan)
            sug_box = sel_box[k]
            if sel_poly.shape[1] and np.isfinite(sel_poly[k]).all():
                rings.append((sel_poly[k], SUGGESTED_COLOUR))
                sug_box = np.full(4, np.nan)
            outlined = [(truth_box, TRUTH_COLOUR), (sug_box, SUGGESTED_COLOUR)]
            if img < 0:
                png = None
            elif any(np.isfinite(b).all() for b, _ in outlined) or points or rings:
                png = crop_png(truth, img, outlined, crop_size, points, edges, rings)
            else:  # nothing to outline (the class of a whole image, a tag): the whole image
                png = thumbnail_png(truth, img, crop_size)
            cell = f"<img src='data:image/png;base64,{png}' alt='crop'>" if png else "(no image)"
            cls = names[int(ta.label[ann])] if ann >= 0 else (names[int(sel_label[k])] if sel_label[k] >= 0 else "")
            parts.append(f"<tr><td>{k + 1}</td><td>{cell}</td><td>{sel.score[k]:.3f}</td>"
                         f"<td>{e(str(truth.images.path[img]) if img >= 0 else '(dataset)')}</td><td>{e(cls)}</td>"
                         f"<td>{e(str(sel.reason[k]))}</td><td>{e(str(sel.suggestion[k]))}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_consensus_html(issues: QualityIssues, truth: Dataset, path: str | Path, *, per_type: int = 12,
                         crop_size: int = 160, title: str = "maslow label issues") -> Path:
    """Write the page atomically (see ``render_consensus_html``); returns the path.

    Args:
        issues: ``find_label_issues(truth, pred)``.
        truth: the dataset the issues point into; crops read its images under ``truth.root``.
        path: the HTML file.
        per_type: issues shown per type (highest scores).
        crop_size: longest side of a crop, pixels.
        title: page title.
    """
    text = render_consensus_html(issues, truth, per_type=per_type, crop_size=crop_size, title=title)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
