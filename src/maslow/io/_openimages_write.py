"""The Open Images writer (``maslow.io.openimages.write``): a folder with the boxes CSV, the class descriptions CSV,
the image-level labels CSV and the images; see ``openimages`` for the conventions."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.schema import BOOL_TEXT
from maslow.io._class_losses import lose_class_fields
from maslow.io._common import ExportReport
from maslow.io._export import count_lost, known_sizes, label_notes, output_names, place_image
from maslow.io._openimages_format import FLAG_TEXT, fmt_fractions, fmt_numbers
from maslow.io.images import image_path
from maslow.io.openimages import (
    BOX_COLUMNS,
    BOXES_FILE,
    COLUMN_PREFIX,
    DESCRIPTIONS_FILE,
    FLAGS,
    IMAGE_LIST_FILE,
    LABEL_COLUMNS,
    LABELS_FILE,
    SOURCE_TEXT,
)
from maslow.io.registry import Progress, Ticks

#: the columns of images.extra and annotations.extra the writer writes
IMAGE_KEYS = ("openimages_unsized", "openimages_label_source", "pos_category_ids", "neg_category_ids")
ANN_KEYS = ("openimages_source", "openimages_confidence", "openimages_group_unknown")
_NUMERIC = {c.lower() for c in (*BOX_COLUMNS[3:], "Score")}


def held(ds: Dataset) -> dict[str, Any]:
    """``ds.info["openimages"]`` (what the reader kept), or {}."""
    value = ds.info.get("openimages")
    return value if isinstance(value, dict) else {}


def image_ids(ds: Dataset) -> list[str]:
    """Each image's ImageID: its file name's stem (the path joined with ``__`` where two stems collide)."""
    paths = [str(p) for p in ds.images.path.tolist()]
    stems = _plain_stems(paths)
    if stems is not None:
        return stems
    return [PurePosixPath(n).stem for n in output_names(paths)]


def _plain_stems(paths: list[str]) -> list[str] | None:
    """The stems of ``paths`` where each is a plain file name (``<stem>.<suffix>``: no folder, no ``#``, a dot
    inside the name) and the stems are unique, as ``output_names`` then keeps the names; else None."""
    stems = []
    for p in paths:
        i = p.rfind(".")
        if not 0 < i < len(p) - 1 or "/" in p or "#" in p:
            return None
        stems.append(p[:i])
    return stems if len(set(stems)) == len(stems) else None


def class_mids(ds: Dataset) -> list[str]:
    """Each class's MID (``info["openimages"]["mids"]``), else its name, without spaces around it (the reader
    strips the MIDs of every file, as real MIDs have none) and unique: a MID that is then empty or another's gets
    ``class_<position>`` (1..N). The class name itself is kept: it is the display name."""
    held_mids = held(ds).get("mids") or {}
    given = [str(held_mids.get(c.name, c.name)).strip() for c in ds.schema.classes]
    out: list[str] = []
    taken = set(given)
    for k, m in enumerate(given, 1):
        if not m or m in out:
            n = k
            while f"class_{n}" in taken:
                n += len(given)
            m = f"class_{n}"
            taken.add(m)
        out.append(m)
    return out


def fractions(ds: Dataset, rows: np.ndarray, w: np.ndarray, h: np.ndarray, style: dict[str, Any], rep: ExportReport
              ) -> list[list[str]]:
    """The texts of XMin, XMax, YMin, YMax of annotation ``rows``: fractions that read back as the same pixels."""
    box = ds.annotations.box
    assert box is not None
    b = box[rows]
    image = ds.annotations.image[rows]
    ww, hh = w[image].astype(np.float64), h[image].astype(np.float64)
    out = []
    n_off = np.zeros(len(rows), bool)
    for j, scale in ((0, ww), (2, ww), (1, hh), (3, hh)):  # XMin, XMax, YMin, YMax
        texts, ok = fmt_fractions(b[:, j], scale, style)
        n_off |= ~ok
        out.append(texts)
    if n_off.any():
        rep.lost["box"] += int(n_off.sum())
        rep.notes.append(f"{int(n_off.sum())} boxes have no fraction that gives their pixels back exactly (a few ulps "
                         "off)")
    return out


def _flag_texts(col: np.ndarray | None, rows: np.ndarray, rep: ExportReport, name: str) -> list[str]:
    if col is None:
        return ["-1"] * len(rows)
    values = col[rows].tolist()
    if set(map(type, values)) <= {bool, np.bool_, type(None)}:  # what the reader gives: the texts at once
        return list(map(FLAG_TEXT.__getitem__, values))
    out = []
    bad = 0
    for v in values:
        if v is None or isinstance(v, bool | np.bool_):
            out.append(FLAG_TEXT[None if v is None else bool(v)])
        elif isinstance(v, str) and v.strip().lower() in BOOL_TEXT:
            out.append(FLAG_TEXT[BOOL_TEXT[v.strip().lower()]])
        elif isinstance(v, int | float | np.integer | np.floating) and float(v) in (0.0, 1.0):
            out.append(FLAG_TEXT[bool(v)])
        else:
            out.append("-1")
            bad += 1
    if bad:
        rep.lost["attributes"] += bad
        rep.notes.append(f"{bad} {name} values are not booleans; written as -1 (unknown)")
    return out


def columns(ds: Dataset, rows: np.ndarray, ids: list[str], w: np.ndarray, h: np.ndarray, rep: ExportReport, *,
            header: list[str] | None = None, score: str | None = None) -> tuple[list[str], list[list[str]]]:
    """The header (``header``, else the columns read, else V6's) and each column's texts for annotation ``rows``;
    ``score``: the column that holds ``annotations.score`` (results)."""
    a = ds.annotations
    info = held(ds)
    header = list(header or info.get("columns") or BOX_COLUMNS)
    header += [k[len(COLUMN_PREFIX):] for k in a.extra if k.startswith(COLUMN_PREFIX)
               and k[len(COLUMN_PREFIX):].lower() not in {h_.lower() for h_ in header}]
    image = a.image[rows]
    id_arr = np.asarray(ids, object)
    mids = np.asarray(class_mids(ds), object)
    coords = dict(zip(("XMin", "XMax", "YMin", "YMax"), fractions(ds, rows, w, h, info, rep), strict=True))
    texts: list[list[str]] = []
    for name in header:
        key = name.lower()
        col: list[str]
        if score is not None and key == score.lower():
            col = fmt_numbers(a.score[rows]) if a.score is not None else []  # no score: no row is written
        elif key == "imageid":
            col = id_arr[image].tolist()
        elif key == "labelname":
            col = mids[a.label[rows]].tolist()
        elif key in {c.lower() for c in coords}:
            col = coords[next(c for c in coords if c.lower() == key)]
        elif key == "source":
            assert a.source is not None
            kept = a.extra.get("openimages_source")
            held_texts: list[Any] = kept[rows].tolist() if kept is not None else [None] * len(rows)
            col = held_texts
            if any(k is None for k in set(held_texts)):
                col = [SOURCE_TEXT.get(s, s) if k is None else k for s, k in
                       zip(a.source[rows].tolist(), held_texts, strict=True)]
        elif key == "confidence":
            conf = a.extra.get("openimages_confidence")
            col = fmt_numbers(np.asarray(conf, np.float64)[rows]) if conf is not None else ["1"] * len(rows)
        elif key == "isgroupof":
            assert a.iscrowd is not None
            unknown = a.extra.get("openimages_group_unknown")
            col = np.where(a.iscrowd[rows], "1", "0").tolist()
            if unknown is not None:
                col = ["-1" if u else c for c, u in zip(col, np.asarray(unknown, bool)[rows].tolist(), strict=True)]
        elif name in FLAGS or key in {f.lower() for f in FLAGS}:
            attr = FLAGS[next(f for f in FLAGS if f.lower() == key)]
            col = _flag_texts(a.attributes.get(attr), rows, rep, attr)
        else:
            kept = a.extra.get(COLUMN_PREFIX + name)
            col = ["" if v is None else str(v) for v in kept[rows].tolist()] if kept is not None else [""] * len(rows)
        texts.append(col)
    return header, texts


def csv_body(header: list[str], texts: list[list[str]], offsets: np.ndarray, newline: str, tick: Ticks) -> str:
    """The CSV text of the columns ``texts``, built in about 100 runs of images (``offsets[i]``: the first row of
    image i), calling ``tick`` after each; fields with a comma or a quote are quoted."""
    m = len(offsets) - 1
    step = max(1, m // 100)
    free = [j for j, name in enumerate(header) if name.lower() not in _NUMERIC]
    joined = "".join("".join(texts[j]) for j in free)
    buf = io.StringIO()
    quoted = csv.writer(buf, lineterminator=newline) if any(ch in joined for ch in ',"\n\r') else None
    parts = [",".join(header) + newline]
    if quoted is not None:  # the csv module quotes what needs it
        quoted.writerow(header)
    for i0 in range(0, m, step):
        i1 = min(m, i0 + step)
        r0, r1 = int(offsets[i0]), int(offsets[i1])
        if r1 > r0:
            rows = zip(*(c[r0:r1] for c in texts), strict=True)
            if quoted is not None:
                quoted.writerows(rows)
            else:
                parts.append(newline.join(map(",".join, rows)) + newline)
        tick(i1)
    return buf.getvalue() if quoted is not None else "".join(parts)


def _csv_text(rows: list[list[str]], newline: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=newline).writerows(rows)
    return buf.getvalue()


def _descriptions(ds: Dataset, newline: str) -> str:
    info = held(ds)
    shown = info.get("display_names") or {}
    rows = [[m, str(shown.get(c.name, c.name))] for c, m in zip(ds.schema.classes, class_mids(ds), strict=True)]
    header = info.get("descriptions_header")
    return _csv_text(([list(header)] if header else []) + rows, newline)


def _labels(ds: Dataset, ids: list[str], newline: str, rep: ExportReport) -> tuple[str | None, np.ndarray]:
    """The image-level labels CSV of ``pos_category_ids``/``neg_category_ids`` (None without them), and (m,) bool:
    the images it has a row of."""
    ex = ds.images.extra
    named = np.zeros(ds.n_images, bool)
    if "pos_category_ids" not in ex and "neg_category_ids" not in ex:
        return None, named
    info = held(ds)
    header = list(info.get("labels_columns") or LABEL_COLUMNS)
    mids = class_mids(ds)
    mid_of_id = {c.id: m for c, m in zip(ds.schema.classes, mids, strict=True) if c.id is not None}
    none = [None] * ds.n_images
    pos, neg = ex.get("pos_category_ids", none), ex.get("neg_category_ids", none)
    sources = ex.get("openimages_label_source", none)
    rows: list[list[str]] = []
    lost = 0
    for i in range(ds.n_images):
        p, q = list(pos[i] or []), list(neg[i] or [])
        src = list(sources[i] or [])
        src += ["verification"] * (len(p) + len(q) - len(src))
        for k, (cid, conf) in enumerate([(c, "1") for c in p] + [(c, "0") for c in q]):
            mid = mid_of_id.get(int(cid)) if isinstance(cid, int | np.integer) else None
            if mid is None:
                lost += 1
                continue
            value = {"imageid": ids[i], "source": src[k], "labelname": mid, "confidence": conf}
            rows.append([value.get(h_.lower(), "") for h_ in header])
            named[i] = True
    if lost:
        rep.lost["image_labels"] += lost
        rep.notes.append(f"{lost} image-level labels name no ClassDef.id of the schema; not written")
    return _csv_text([header, *rows], newline), named


def read_back_order(ids: list[str], boxed: np.ndarray, labelled: np.ndarray, labels_file: bool) -> list[str]:
    """The ImageIDs, in order, that the reader finds in a folder without an images list: those with a box row
    (``boxed``), in image order, then those with only a label row, all sorted when there is a labels file and
    both lists are sorted (see ``openimages.parse``)."""
    first = [ids[i] for i in np.flatnonzero(boxed).tolist()]
    taken = set(first)
    second = [x for i, x in enumerate(ids) if labelled[i] and x not in taken]
    labelled_ids = [ids[i] for i in np.flatnonzero(labelled).tolist()]
    out = first + second
    if labels_file and first == sorted(first) and labelled_ids == sorted(labelled_ids):
        out = sorted(out)
    return out


def _image_list(ds: Dataset, ids: list[str], boxed: np.ndarray, labelled: np.ndarray, labels_file: bool,
                newline: str, rep: ExportReport) -> str | None:
    """The images list CSV (``ImageID,Subset``, every image in order), where the boxes and labels CSVs would not
    give every image back, in order, with its split; else None."""
    splits = [str(x) for x in ds.images.split.tolist()] if ds.images.split is not None else [""] * ds.n_images
    back = read_back_order(ids, boxed, labelled, labels_file)
    if back == ids and not any(splits):
        return None
    n_more = ds.n_images - len(back)
    missed = [f"the {n_more} images without a box or an image-level label" if n_more else "",
              "the splits" if any(splits) else ""]
    rep.notes.append(f"{IMAGE_LIST_FILE} lists every image, in order"
                     + (", with its split (Subset)" if any(splits) else "")
                     + "; tools that read only the boxes CSV miss " + (" and ".join(m for m in missed if m)
                                                                       or "the order"))
    return _csv_text([["ImageID", "Subset"], *([x, s] for x, s in zip(ids, splits, strict=True))], newline)


def write(ds: Dataset, dst: Path, *, images: bool = True, copy_images: bool = False,
          progress: Progress | None = None) -> ExportReport:
    """See ``maslow.io.openimages.write``."""
    rep = ExportReport(path=str(dst), format="openimages")
    a = ds.annotations
    info = held(ds)
    newline = "\r\n" if info.get("crlf") else "\n"
    w, h = known_sizes(ds)
    sized = (w > 0) & (h > 0)
    written = a.has_box & sized[a.image]
    rows = np.flatnonzero(written)
    ids = image_ids(ds)
    header, texts = columns(ds, rows, ids, w, h, rep)
    tick = Ticks(progress, ds.n_images)
    offsets = np.searchsorted(rows, ds.image_slices())  # rows written of images [0, i): offsets[i]
    text = csv_body(header, texts, offsets, newline, tick)
    unsized = ds.images.extra.get("openimages_unsized")
    with atomic_dir(dst) as tmp:
        (tmp / BOXES_FILE).write_text(text, encoding="utf-8", newline="")
        (tmp / DESCRIPTIONS_FILE).write_text(_descriptions(ds, newline), encoding="utf-8", newline="")
        labels, labelled = _labels(ds, ids, newline, rep)
        if labels is not None:
            (tmp / LABELS_FILE).write_text(labels, encoding="utf-8", newline="")
        boxed = np.zeros(ds.n_images, bool)
        boxed[a.image[rows]] = True
        listed = _image_list(ds, ids, boxed, labelled, labels is not None, newline, rep)
        if listed is not None:
            (tmp / IMAGE_LIST_FILE).write_text(listed, encoding="utf-8", newline="")
        if images:
            for i in range(ds.n_images):
                if unsized is not None and bool(unsized[i]):
                    continue
                src = image_path(ds, i)
                suffix = PurePosixPath(str(ds.images.path[i])).suffix or ".png"
                if not place_image(src, tmp / "images" / f"{ids[i]}{suffix}", "copy" if copy_images else "symlink"):
                    rep.lost["image_files"] += 1
    tick.end()
    _account(ds, written, rep)
    rep.n_images = ds.n_images
    rep.n_annotations = int(written.sum())
    return rep


def _account(ds: Dataset, written: np.ndarray, rep: ExportReport) -> None:
    a = ds.annotations
    own_a = {k: v for k, v in a.extra.items() if k not in ANN_KEYS and not k.startswith(COLUMN_PREFIX)}
    own_i = {k: v for k, v in ds.images.extra.items() if k not in IMAGE_KEYS}
    rest = ds.replace(annotations=replace(a, extra=own_a), images=replace(ds.images, extra=own_i))
    keep = {"box", "iscrowd", "source", *(f"attributes:{v}" for v in FLAGS.values())}
    rep.lost.update(count_lost(rest, keep=keep, rows=written))
    rep.notes.extend(label_notes(rest, written, keeps_source=True))  # Source marks a machine's rows
    lose_class_fields(ds, rep, fmt="Open Images", back=range(1, len(ds.schema.classes) + 1),
                      how="1..N in the classes' order, as the class descriptions list them")
    missing = int((~written).sum())
    if missing:
        rep.lost["annotations"] += missing
        rep.notes.append(f"{missing} annotations without a box, or on an image of unknown size, were not written")
    if rep.lost.get("image_files"):
        rep.notes.append(f"{rep.lost['image_files']} image files were missing and not placed under images/")

