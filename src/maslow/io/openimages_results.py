"""Open Images detections (detector output), in the two forms the Open Images tools read.

Glossary:

- *CSV* form, as the TF Object Detection API's ``oid_challenge_evaluation.py`` and hotcoco's ``load_res_oid`` read
  it: ``ImageID,LabelName,Score,XMin,XMax,YMin,YMax``, one detection a row (the boxes CSV's columns, with the
  score in ``Score`` or ``Confidence``; columns found by name, others kept as text).
- *Kaggle* form (the 2018/2019 challenge submissions): ``ImageId,PredictionString``, one row per image, where
  PredictionString repeats ``LabelName Score XMin YMin XMax YMax`` (note: x, y, x, y here, unlike the CSV's
  ``XMin,XMax,YMin,YMax``), separated by spaces; empty for an image without detections.
- Coordinates are fractions of the image size, as in the boxes CSV (``maslow.io.openimages``); ``LabelName`` is a
  MID, or a class name as hotcoco's ``to_oid`` writes it.

Read: ``read_openimages_results(csv, like=truth)`` returns a Dataset with the truth's images, schema and root
(images matched by ImageID, the stem of the truth's image files; classes by MID or by name), the ``score`` column,
``source="model"`` and boxes in the truth's pixels. Write: ``write_openimages_results(pred, csv)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import str_array
from maslow.errors import FormatError
from maslow.io._common import Collector, ExportReport
from maslow.io._export import count_lost, known_sizes
from maslow.io._openimages_csv import (
    COORDS,
    Table,
    coordinates,
    floats,
    image_sizes,
    lookup,
    ordered,
    pixel_boxes,
    read_descriptions,
    table_number_style,
)
from maslow.io._openimages_csv import read_table as _read_table
from maslow.io._openimages_format import fmt_numbers
from maslow.io._openimages_write import class_mids, columns, csv_body, fractions, held, image_ids
from maslow.io.images import rows_by_stem
from maslow.io.openimages import COLUMN_PREFIX
from maslow.io.registry import Progress, Ticks, warn_issues

__all__ = ["KAGGLE_FIELDS", "RESULT_COLUMNS", "parse", "read_openimages_predictions", "read_openimages_results",
           "write", "write_openimages_predictions", "write_openimages_results"]

RESULT_COLUMNS = ("ImageID", "LabelName", "Score", "XMin", "XMax", "YMin", "YMax")
#: the six values of a detection in a Kaggle PredictionString
KAGGLE_FIELDS = ("LabelName", "Score", "XMin", "YMin", "XMax", "YMax")
LAYOUTS = ("csv", "kaggle")


def _kaggle(t: Table) -> Table:
    """The detections of a Kaggle submission as a table of ``KAGGLE_FIELDS`` (plus ImageId), each row's line kept."""
    if t.arrow is not None and t.plain_spaces:
        from maslow.io import _openimages_arrow as fast

        found = fast.kaggle_columns(t.column("ImageId"), t.column("PredictionString"))
        if found is not None:
            cols, of_row = found
            return Table(t.path, ["ImageID", *KAGGLE_FIELDS], None, lines=of_row + 2, crlf=t.crlf, arrow=cols)
    ids, strings = t.col("ImageId").tolist(), t.col("PredictionString").tolist()
    counts = np.fromiter((len(s.split()) for s in strings), np.int64, len(strings))
    bad = np.flatnonzero(counts % 6)
    if bad.size:
        r = int(bad[0])
        raise FormatError(f"PredictionString must hold groups of 6 values ({' '.join(KAGGLE_FIELDS)}), got "
                          f"{counts[r]} values", path=t.path, record=f"line {t.line(r)}", field="PredictionString")
    vals = np.array(" ".join(strings).split(), dtype=object).reshape(-1, 6)
    n = counts // 6
    rows = np.empty((len(vals), 7), object)
    rows[:, 0] = np.repeat(np.asarray(ids, object), n)
    rows[:, 1:] = vals
    lines = np.repeat([t.line(r) for r in range(len(t))], n).tolist()
    return Table(t.path, ["ImageID", *KAGGLE_FIELDS], rows, lines=lines, crlf=t.crlf)


def _read(src: Path) -> tuple[Table, list[str], str, str]:
    """The detections table, every ImageID named (a Kaggle row without detections too), the layout and the score
    column's name."""
    t = _read_table(src, what="predictions CSV")
    if t.has("PredictionString"):
        t.require(("ImageId", "PredictionString"), "Kaggle submission")
        return _kaggle(t), t.codes("ImageId")[1], "kaggle", "Score"
    score = "Score" if t.has("Score") else "Confidence"
    t.require(("ImageID", "LabelName", score, *COORDS), "predictions CSV")
    return t, [], "csv", t.name(score)


def parse(
    src: Path,
    *,
    images_root: Path | None = None,
    strict: bool = False,
    like: Dataset | None = None,
    class_descriptions: str | Path | None = None,
    progress: Progress | None = None,
) -> tuple[Dataset, Report]:
    """Read Open Images detections (CSV or Kaggle form, told apart by the header), on ``like``'s images.

    Args:
        src: the CSV file.
        images_root: without ``like``: the folder of the image files (their sizes; else 1 x 1, boxes as fractions).
        strict: raise FormatError at the first error or warning instead of reporting it.
        like: the ground truth: detections are matched to its images by ImageID (its image files' stems) and to its
            classes by MID (``info["openimages"]["mids"]``) or name; the Dataset shares its images, schema and
            root. Detections on other images or of other classes are reported (one error each kind, with the
            count) and not imported. So are detections with XMin > XMax or YMin > YMax (``openimages_inverted_box``;
            the challenge evaluator drops them as invalid boxes), with or without ``like``.
        class_descriptions: without ``like``: the class descriptions CSV (display names; its classes' order).
        progress: called as ``progress(done, total)`` over the detections read.

    Returns:
        The predictions Dataset (``score``; ``source="model"``) and the Report.

    Raises:
        FormatError: a missing column, a PredictionString whose values are not groups of 6, a score or coordinate
            that is not a finite number (each names the file, the line and the field).
    """
    src = Path(src)
    col = Collector(strict=strict)
    t, named, layout, score_name = _read(src)
    tick = Ticks(progress, len(t))
    score = floats(t, score_name)
    v = coordinates(t, col, swap=False)
    in_order = ordered(v, t, col)
    label_code, label_texts = t.codes("LabelName")
    label_texts = [s.strip() for s in label_texts]  # as the truth reader strips MIDs
    image_code, id_texts = t.codes("ImageID")
    info: dict[str, Any] = {"results_layout": layout}
    if layout == "csv":
        info["columns"] = [h.strip() for h in t.header]
    info.update(table_number_style(t, COORDS))
    if t.crlf:
        info["crlf"] = True
    if like is not None:
        images, root, schema = like.images, like.root, like.schema
        image = _match(t, image_code, id_texts, rows_by_stem(like), "image", "ImageID", "one of the truth's images (by "
                       "the file's stem)", col)
        names = {n: k for k, n in enumerate(like.schema.names)}
        names.update({m: k for k, m in enumerate(class_mids(like))})
        label = _match(t, label_code, label_texts, names, "class", "LabelName", "a MID or class name of the truth",
                       col)
        for key in ("mids", "display_names"):
            if held(like).get(key):
                info[key] = held(like)[key]
        w, h = like.images.width, like.images.height
    else:
        desc = read_descriptions(Path(class_descriptions))[0] if class_descriptions is not None else {}
        mids = list(dict.fromkeys([*desc, *label_texts]))
        shown = [desc.get(m, m) for m in mids]
        schema = LabelSchema(classes=tuple(ClassDef(n, id=k + 1) for k, n in enumerate(shown)),
                             tasks=(Task.DETECTION,))
        if any(s != m for s, m in zip(shown, mids, strict=True)):
            info["mids"] = {s: m for s, m in zip(shown, mids, strict=True) if s != m}
        row = {m: k for k, m in enumerate(mids)}
        label = lookup(label_code, label_texts, row)
        all_ids = named or id_texts  # a Kaggle file names every image, in its order
        at = {x: i for i, x in enumerate(all_ids)}
        image = lookup(image_code, id_texts, at)
        folder = None if images_root is None else Path(images_root)
        paths, w, h, unsized = image_sizes(all_ids, folder, col, Ticks(None, 0))
        images = Images(path=str_array(paths), width=w, height=h,
                        extra={"openimages_unsized": unsized} if unsized.any() else {})
        root = folder
    keep = (image >= 0) & (label >= 0) & in_order
    image, label = image[keep], label[keep]
    box = pixel_boxes(v[keep], image, w, h)
    known = {c.lower() for c in (*RESULT_COLUMNS, score_name, *KAGGLE_FIELDS)}
    extra = {COLUMN_PREFIX + h.strip(): t.col(h.strip())[keep] for h in t.header if h.strip().lower() not in known}
    ann = Annotations.sort_rows(image=image, label=label, box=box, score=score[keep],
                                source=str_array("model", len(image)), extra=extra)
    tick.end()
    return Dataset(schema=schema, images=images, annotations=ann, root=root, info={"openimages": info}), col.report()


def _match(t: Table, code: np.ndarray, texts: list[str], rows: dict[str, int], what: str, field: str, expected: str,
           col: Collector) -> np.ndarray:
    """Each detection's row in the truth (-1: none, reported as one error with the count)."""
    out = lookup(code, texts, rows)
    for value, kind, why in ((-1, f"openimages_unknown_{what}", f"must be {expected}"),
                             (-2, f"openimages_ambiguous_{what}", "must name one truth image, two or more share it")):
        bad = out == value
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            shown = ", ".join(repr(x) for x in texts if rows.get(x, -1) == value)
            col.add(kind, f"{field} {why}: {int(bad.sum())} detections don't ({shown[:200]}); not imported",
                    severity="error", file=t.path, record=f"line {t.line(r)}", field=t.name(field))
    out = out.copy()
    out[out < 0] = -1
    return out


def read_openimages_results(src: str | Path, *, like: Dataset | None = None, **options: Any) -> Dataset:
    """Read Open Images detections (see ``parse``), on ``like``'s images when given; a MaslowWarning summarises
    any issues.

    Example:
        >>> truth = read_openimages("validation/")  # doctest: +SKIP
        >>> pred = read_openimages_results("submission.csv", like=truth)  # doctest: +SKIP
    """
    return warn_issues(*parse(Path(src), like=like, **options), source=src)


read_openimages_predictions = read_openimages_results


def write(ds: Dataset, dst: Path, *, layout: str | None = None, progress: Progress | None = None) -> ExportReport:
    """Write the scored boxes of ``ds`` as Open Images detections: one CSV file, atomically.

    Args:
        layout: ``"csv"`` (``ImageID,LabelName,Score,XMin,XMax,YMin,YMax``, or the columns read) or ``"kaggle"``
            (``ImageId,PredictionString``, every image a row); default: the layout read
            (``info["openimages"]["results_layout"]``), else csv.
        progress: called as ``progress(done, total)`` over the images (``registry.Ticks``).

    Returns:
        ExportReport; ``lost["annotations"]`` counts detections not written (no score, no box, an image of
        unknown size), and ``lost`` what the file can't hold (crowd flags, attributes, masks, other columns).

    Raises:
        FormatError: ``layout`` not csv or kaggle; ``dst`` can't be written.

    Example:
        >>> from maslow.sample import shapes
        >>> import tempfile, pathlib
        >>> truth = shapes(3, seed=1)
        >>> pred = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(truth.n_annotations)))
        >>> rep = write(pred, pathlib.Path(tempfile.mkdtemp()) / "det.csv")
        >>> rep.n_annotations == truth.n_annotations
        True
    """
    dst = Path(dst)
    info = held(ds)
    layout = layout or info.get("results_layout") or "csv"
    if layout not in LAYOUTS:
        raise FormatError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}", path=dst)
    rep = ExportReport(path=str(dst), format="openimages-results")
    a = ds.annotations
    w, h = known_sizes(ds)
    scored = ~np.isnan(a.score) if a.score is not None else np.zeros(len(a), bool)
    written = a.has_box & scored & ((w > 0) & (h > 0))[a.image]
    rows = np.flatnonzero(written)
    ids = image_ids(ds)
    offsets = np.searchsorted(rows, ds.image_slices())
    newline = "\r\n" if info.get("crlf") else "\n"
    tick = Ticks(progress, ds.n_images)
    if layout == "csv":
        read_cols = info.get("columns") if info.get("results_layout") == "csv" else None
        header = list(read_cols or RESULT_COLUMNS)
        score = next((c for c in header if c.lower() in ("score", "confidence")), None)
        if score is None:
            header.insert(2, "Score")
            score = "Score"
        header, texts = columns(ds, rows, ids, w, h, rep, header=header, score=score)
        text = csv_body(header, texts, offsets, newline, tick)
    else:
        text = _kaggle_text(ds, rows, ids, offsets, w, h, newline, tick, rep)
    with atomic_path(dst) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")
    tick.end()
    not_written = {"without a score": int((a.has_box & ~scored).sum()), "without a box": int((~a.has_box).sum()),
                   "on images of unknown size": int((a.has_box & scored & ~written).sum())}
    if sum(not_written.values()):
        rep.lost["annotations"] += sum(not_written.values())
        rep.notes.append("annotations not written: " + ", ".join(f"{v} {k}" for k, v in not_written.items() if v))
    rest = ds.replace(annotations=a.with_columns(extra={k: c for k, c in a.extra.items()
                                                         if not k.startswith(COLUMN_PREFIX) or layout != "csv"}),
                      images=Images(path=ds.images.path, width=ds.images.width, height=ds.images.height))
    rep.lost.update(count_lost(rest, keep={"box", "score", "source"}, rows=written))
    rep.n_images = ds.n_images
    rep.n_annotations = int(written.sum())
    return rep


def _kaggle_text(ds: Dataset, rows: np.ndarray, ids: list[str], offsets: np.ndarray, w: np.ndarray, h: np.ndarray,
                 newline: str, tick: Ticks, rep: ExportReport) -> str:
    a = ds.annotations
    assert a.score is not None
    x0, x1, y0, y1 = fractions(ds, rows, w, h, held(ds), rep)
    mids = np.asarray(class_mids(ds), object)[a.label[rows]].tolist()
    det = [" ".join(t) for t in zip(mids, fmt_numbers(a.score[rows]), x0, y0, x1, y1, strict=True)]  # x y x y
    parts = ["ImageId,PredictionString" + newline]
    for i in range(ds.n_images):
        parts.append(f"{ids[i]},{' '.join(det[int(offsets[i]):int(offsets[i + 1])])}{newline}")
        tick(i + 1)
    return "".join(parts)


write_openimages_results = write
write_openimages_predictions = write
