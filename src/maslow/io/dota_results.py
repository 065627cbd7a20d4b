"""DOTA results (detector output, as the DOTA evaluation server and DOTA_devkit read it): one file per class.

Glossary:

- *Task1* (oriented boxes): ``Task1_<category>.txt``, one detection per line, ``<image stem> <score> x1 y1 x2 y2
  x3 y3 x4 y4`` (absolute pixels), as DOTA_devkit's ``dota_evaluation_task1.py`` and ``ResultMerge`` read and
  write them (mmrotate and Ultralytics write the same).
- *Task2* (horizontal boxes): ``Task2_<category>.txt``, ``<image stem> <score> xmin ymin xmax ymax``.
- Images are named by stem, without a folder or suffix; classes by the file name. Predictions carry no images or
  classes of their own: ``like=truth`` matches them to the truth's images (by stem) and classes (by name, or by
  the name with white space as ``_``, as the writers put it in a file name).
- An oriented box is held as maslow holds one (``core.obb``): a ``polygon`` of one ring of the 4 corners as
  written, with their extent as ``box``; a Task2 box is a ``box``.

Read: ``read_dota_results(folder, like=truth)`` returns a Dataset with the truth's images, schema and root, the
``score`` column and ``source="model"``. Write: ``write_dota_results(pred, folder)`` writes a file per class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.polygons import Polygons
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import str_array
from maslow.errors import FormatError
from maslow.io._coco_stream import no_gc
from maslow.io._common import Collector, ExportReport, read_bytes
from maslow.io._dota_lines import (
    COORDS,
    bulk_numbers,
    check_decimals,
    file_name,
    fmt_rows,
    index_images,
    numbers,
    quads,
    stem,
)
from maslow.io._export import Tally, count_lost
from maslow.io.images import image_info, rows_by_stem
from maslow.io.registry import Progress, Ticks, warn_issues

__all__ = ["parse", "read_dota_predictions", "read_dota_results", "write", "write_dota_predictions",
           "write_dota_results"]

_FIELDS = {1: ("score", *COORDS), 2: ("score", "xmin", "ymin", "xmax", "ymax")}
_LAYOUT = {1: "<image> <score> x1 y1 x2 y2 x3 y3 x4 y4", 2: "<image> <score> xmin ymin xmax ymax"}


def _files(src: Path, task: int | None, col: Collector) -> tuple[list[tuple[Path, str]], int]:
    """The result files as (path, category), and the task."""
    if task is not None and task not in (1, 2):
        raise FormatError(f"task must be 1 (oriented boxes) or 2 (horizontal boxes), got {task!r}", path=src)
    if not src.exists():
        raise FormatError("not found: must be a folder of Task1_<class>.txt (or Task2_) files, or one of them",
                          path=src)
    found = [src] if src.is_file() else sorted(p for p in src.iterdir() if p.suffix == ".txt" and p.is_file())
    by_task = {t: [(p, p.stem[len(f"Task{t}_"):]) for p in found if p.stem.startswith(f"Task{t}_")] for t in (1, 2)}
    if task is None:
        task = 1 if by_task[1] or not by_task[2] else 2
    if not by_task[task]:
        raise FormatError(f"must hold Task{task}_<class>.txt files (DOTA results: {_LAYOUT[task]}), got none", path=src)
    other = [p for p in found if not p.stem.startswith(f"Task{task}_")]
    if other:
        col.add("dota_other_files", f"{len(other)} .txt files are not Task{task}_<class>.txt and were not read (first: "
                f"{other[0].name})", severity="info", file=src)
    return by_task[task], task


def _read(path: Path, task: int) -> tuple[list[str], np.ndarray, list[int]]:
    """(image stems, (k, 1 + coordinates) values, line numbers) of one result file."""
    try:
        text = read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FormatError(f"results file must be UTF-8 text: {e}", path=path) from None
    width = len(_FIELDS[task]) + 1
    toks = [line.split() for line in text.splitlines()]
    bad = next((j for j, t in enumerate(toks) if t and len(t) != width), None)
    if bad is not None:
        raise FormatError(f"line must have {width} fields ({_LAYOUT[task]}), got {len(toks[bad])}", path=path,
                          record=f"line {bad + 1}")
    lines = [j + 1 for j, t in enumerate(toks) if t]
    body = toks if len(lines) == len(toks) else [toks[n - 1] for n in lines]
    values = [t[1:] for t in body]
    vals = bulk_numbers(values, width - 1)
    if vals is None:
        vals = np.array([numbers(t, _FIELDS[task], path, n) for t, n in zip(values, lines, strict=True)])
    return [t[0] for t in body], vals.reshape(len(body), width - 1), lines


def parse(
    src: Path,
    *,
    images_root: Path | None = None,
    strict: bool = False,
    like: Dataset | None = None,
    task: int | None = None,
    classes: list[str] | None = None,
    image_suffix: str = ".png",
) -> tuple[Dataset, Report]:
    """Read DOTA results (predictions), on the images and classes of ``like`` when given.

    Args:
        src: a folder of ``Task1_<class>.txt`` (or ``Task2_``) files, or one such file.
        images_root: without ``like``: the folder the images are found in, by stem (their paths and sizes).
        strict: raise FormatError at the first error or warning instead of reporting it.
        like: the ground truth: the predictions are matched to its images by stem and to its classes by name, and
            the Dataset shares its images, schema and root. Predictions on other images or of other classes are
            reported (one error each kind, with the count) and not imported.
        task: 1 (oriented boxes) or 2 (horizontal boxes); by default 1 when Task1 files are there, else 2.
        classes: without ``like``: the class names in order (default: the files' classes, sorted by file name).
        image_suffix: without ``like`` or ``images_root``: the suffix of the image paths (DOTA's images are PNG),
            so that the predictions match a truth's images by file name.

    Returns:
        The predictions Dataset (``score``; ``source="model"``) and the Report.

    Raises:
        FormatError: no result files, a line with the wrong number of fields, a score or coordinate that is not a
            finite number (names the file, line and field), ``task`` not 1 or 2.
    """
    src = Path(src)
    col = Collector(strict=strict)
    files, task = _files(src, task, col)
    stems: list[str] = []
    counts: list[int] = []  # rows per file
    vals: list[np.ndarray] = []
    line_of: list[int] = []  # per row: its line in its file
    with no_gc():  # millions of small lists of tokens, none in a cycle
        for path, _ in files:
            s, v, lines = _read(path, task)
            stems += s
            counts.append(len(s))
            vals.append(v)
            line_of += lines
    values = np.concatenate(vals) if vals else np.zeros((0, len(_FIELDS[task])))
    cats = np.repeat(np.arange(len(files)), counts)  # per row: index into files
    if like is not None:
        images, root, schema = like.images, like.root, like.schema
        image = _match_images(like, stems, files, cats, line_of, col)
        label = _match_classes(like.schema, files, col)[cats]
    else:
        images, root, image = _own_images(stems, images_root, image_suffix, col)
        names = list(dict.fromkeys([*(classes or []), *(c for _, c in files)]))
        schema = LabelSchema(classes=tuple(ClassDef(c) for c in names),
                             tasks=(Task.DETECTION, Task.INSTANCE_SEGMENTATION) if task == 1 else (Task.DETECTION,))
        label = np.array([names.index(c) for _, c in files], np.int64)[cats]
    if task == 2:
        inverted = np.flatnonzero((values[:, 3] < values[:, 1]) | (values[:, 4] < values[:, 2]))
        if inverted.size:
            r = int(inverted[0])
            col.add("dota_inverted_box", f"box must have xmin <= xmax and ymin <= ymax, {inverted.size} don't; read "
                    "with the two swapped", file=files[int(cats[r])][0], record=f"line {line_of[r]}", field="xmax")
    keep = np.flatnonzero((image >= 0) & (label >= 0))
    ann = _annotations(image[keep], label[keep], values[keep], task)
    return Dataset(schema=schema, images=images, annotations=ann, root=root), col.report()


def _match_images(like: Dataset, stems: list[str], files: list[tuple[Path, str]], cats: np.ndarray,
                  line_of: list[int], col: Collector) -> np.ndarray:
    """Each prediction's row in ``like.images`` (-1: none, reported)."""
    rows = rows_by_stem(like)  # -2: two truth images share the stem
    image = np.fromiter((rows.get(s, -1) for s in stems), np.int64, len(stems))
    for code, kind, what in ((-1, "dota_unknown_image", "must name one of the truth's images (by stem)"),
                             (-2, "dota_ambiguous_image", "must name one truth image, but two or more share the stem")):
        bad = np.flatnonzero(image == code)
        if bad.size:
            k, n = int(cats[bad[0]]), line_of[int(bad[0])]
            shown = ", ".join(repr(s) for s in list(dict.fromkeys(stems[b] for b in bad.tolist()))[:5])
            col.add(kind, f"image {what}: {bad.size} predictions don't (images {shown}); not imported",
                    severity="error", file=files[k][0], record=f"line {n}", field="image")
    image[image < 0] = -1
    return image


def _match_classes(schema: LabelSchema, files: list[tuple[Path, str]], col: Collector) -> np.ndarray:
    """Each file's class in ``schema`` (-1: none, reported): by name, else by the name as a file name holds it."""
    exact = {c: k for k, c in enumerate(schema.names)}
    spelled: dict[str, int] = {}
    for k, c in enumerate(schema.names):
        spelled[file_name(c)] = -1 if file_name(c) in spelled else k
    out = np.array([exact.get(c, spelled.get(c, -1)) for _, c in files], np.int64)
    for (path, c), k in zip(files, out.tolist(), strict=True):
        if k < 0 and path.stat().st_size:
            col.add("dota_unknown_class", f"class must be one of the truth's ({', '.join(schema.names[:10])}), got "
                    f"{c!r} (file name); its predictions are not imported", severity="error", file=path,
                    field="category")
    return out


def _own_images(stems: list[str], images_root: Path | None, suffix: str, col: Collector
                ) -> tuple[Images, Path | None, np.ndarray]:
    """Without a truth: one image per stem, in sorted order (found under ``images_root`` when given)."""
    order = sorted(set(stems))
    row = {s: i for i, s in enumerate(order)}
    found = index_images(Path(images_root), recursive=True, col=col, used=set(order)) if images_root is not None else {}
    paths = [found.get(s, s + suffix) for s in order]
    sizes = []
    for s, p in zip(order, paths, strict=True):
        try:
            info = image_info(Path(images_root) / p) if s in found and images_root is not None else None
        except FormatError:
            info = None
        sizes.append((0, 0) if info is None else (info.width, info.height))
    wh = np.asarray(sizes, np.int64).reshape(-1, 2)
    images = Images(path=str_array(paths), width=wh[:, 0], height=wh[:, 1])
    return images, None if images_root is None else Path(images_root), np.fromiter(
        (row[s] for s in stems), np.int64, len(stems))


def _annotations(image: np.ndarray, label: np.ndarray, values: np.ndarray, task: int) -> Annotations:
    n = len(image)
    if task == 2:
        box = values[:, 1:5].copy()
        box[:, [0, 2]] = np.sort(box[:, [0, 2]], axis=1)  # an inverted box (reported): its corners in order
        box[:, [1, 3]] = np.sort(box[:, [1, 3]], axis=1)
        return Annotations.sort_rows(image=image, label=label, box=box, score=values[:, 0],
                                     source=str_array("model", n))
    xy = values[:, 1:9]
    quad = xy.reshape(n, 4, 2)
    box = np.concatenate([quad.min(axis=1), quad.max(axis=1)], axis=1)
    polygon = Polygons(xy.reshape(-1), np.arange(0, 8 * n + 1, 8), np.arange(n + 1), np.zeros(n, bool))
    order = np.argsort(image, kind="stable")
    return Annotations(image=image[order], label=label[order], box=box[order], score=values[order, 0],
                       polygon=polygon.take(order), source=str_array("model", n))


def read_dota_results(src: str | Path, *, like: Dataset | None = None, **options: Any) -> Dataset:
    """Read DOTA results (see ``parse``), on ``like``'s images when given; a MaslowWarning summarises any issues.

    Example:
        >>> from maslow.io import read_dota, read_dota_results  # doctest: +SKIP
        >>> truth = read_dota("DOTA/val")  # doctest: +SKIP
        >>> pred = read_dota_results("work_dirs/Task1_results", like=truth)  # doctest: +SKIP
    """
    return warn_issues(*parse(Path(src), like=like, **options), source=src)


read_dota_predictions = read_dota_results


# -- write -------------------------------------------------------------------------------------------
def write(ds: Dataset, dst: Path, *, task: int = 1, decimals: int | None = None,
          progress: Progress | None = None) -> ExportReport:
    """Write the scored annotations of ``ds`` as DOTA results: ``dst/Task1_<class>.txt`` (or ``Task2_``), one file
    per class of the schema (empty for a class without predictions: DOTA_devkit's evaluation opens one per class).

    Task1 writes four corners per annotation as the ground-truth writer does (``_dota_lines.quads``: a 4-point
    polygon as it is; other polygons and masks as their minimum-area rectangles, counted in ``lost``); Task2 the
    box. Images are named by their file's stem.

    Args:
        task: 1 (oriented boxes) or 2 (horizontal boxes).
        decimals: decimals of the coordinates (default: the shortest text that reads back as the same number);
            scores are always written that way.
        progress: called as ``progress(done, total)`` over the annotations (``registry.Ticks``).

    Returns:
        ExportReport; ``lost`` counts annotations not written (no score, no geometry, an image stem with white
        space), and what the lines can't hold (attributes, masks, polygons as rectangles, Task2: polygons).

    Raises:
        FormatError: ``task`` not 1 or 2, or ``decimals`` out of 0..15.

    Example:
        >>> from maslow.sample import oriented, oriented_predictions
        >>> import tempfile, pathlib
        >>> pred = oriented_predictions(oriented(3, seed=1), seed=1)
        >>> rep = write(pred, pathlib.Path(tempfile.mkdtemp()) / "results")
        >>> rep.n_annotations == pred.n_annotations, rep.lossless
        (True, True)
    """
    dst = Path(dst)
    if task not in (1, 2) or isinstance(task, bool):
        raise FormatError(f"task must be 1 (oriented boxes) or 2 (horizontal boxes), got {task!r}", path=dst)
    decimals = check_decimals(decimals, dst)
    rep = ExportReport(path=str(dst), format="dota-results")
    a = ds.annotations
    lost = Tally()
    n = len(a)
    if task == 1:
        corners, ok = quads(ds, lost)
        values = corners.reshape(n, 8)
    else:
        assert a.box is not None
        values, ok = a.box, a.has_box.copy()
    score = np.full(n, np.nan) if a.score is None else a.score
    scored = np.isfinite(score)
    stems = [stem(p) for p in ds.images.path.tolist()]
    spaced = np.array([any(ch.isspace() for ch in s) for s in stems], bool)
    bad_stem = spaced[a.image] if n else np.zeros(0, bool)
    written = ok & scored & ~bad_stem
    files = [file_name(c) for c in ds.schema.names]
    tick = Ticks(progress, n)
    with atomic_dir(dst) as tmp:
        done = 0
        by_label = np.argsort(a.label, kind="stable")
        bounds = np.searchsorted(a.label[by_label], np.arange(len(files) + 1))
        for k, name in enumerate(files):
            rows = by_label[bounds[k]:bounds[k + 1]]
            with open(tmp / f"Task{task}_{name}.txt", "ab") as f:
                for c in range(0, len(rows), 4096):
                    chunk = rows[c:c + 4096]
                    own = chunk[written[chunk]]
                    heads = fmt_rows(score[own, None], None)
                    text = fmt_rows(values[own], decimals)
                    image = a.image[own].tolist()
                    f.write("".join([f"{stems[i]} {h} {t}\n" for i, h, t in zip(image, heads, text, strict=True)])
                            .encode())
                    done += len(chunk)
                    tick(done)
    tick.end()
    lost.into(rep.lost)
    keep = {"box", "score", "source"} | ({"polygon", "mask"} if task == 1 else set())
    rep.lost.update(count_lost(ds, keep=keep, rows=written))
    _notes(ds, rep, files, written, ok, scored, bad_stem, stems)
    rep.n_images = ds.n_images
    rep.n_annotations = int(written.sum())
    return rep


def _notes(ds: Dataset, rep: ExportReport, files: list[str], written: np.ndarray, ok: np.ndarray,
           scored: np.ndarray, bad_stem: np.ndarray, stems: list[str]) -> None:
    why = {"without a score": int((ok & ~scored).sum()), "without a box, polygon or mask": int((~ok).sum()),
           "on images whose name holds white space (a results line can't)": int((ok & scored & bad_stem).sum())}
    why = {k: v for k, v in why.items() if v}
    if why:
        rep.lost["annotations"] += int((~written).sum())
        rep.notes.append("annotations not written: " + ", ".join(f"{v} {k}" for k, v in why.items()))
    changed = [c for c, f in zip(ds.schema.names, files, strict=True) if c != f]
    if changed:
        rep.lost["class_names"] += len(changed)
        rep.notes.append(f"class names a file name can't hold as they are, written with '_': {changed[:5]} (read "
                         "back with like=truth, they match the truth's names)")
    if len(set(files)) < len(files):
        rep.notes.append("two classes have the same file name: their predictions went into one file")
    shared = len(stems) - len(set(stems))
    if shared:
        rep.lost["image_names"] += shared
        rep.notes.append(f"{shared} images share a file stem with another: their predictions can't be told apart")


write_dota_results = write
write_dota_predictions = write
