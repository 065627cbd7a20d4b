"""Parsing YOLO label files into columns, and building the Dataset from them.

Private to ``maslow.io.yolo``; see its module docstring for the conventions. A label file is parsed in bulk (one
split of its text, one float conversion of its values) when it is clean: integer class ids, finite values, one
kind of line with the right number of values, coordinates in [0, 1]. Any other file is parsed line by line,
which names the file, line and field of each problem.

*Scored* lines: a prediction file (Ultralytics ``save_txt=True, save_conf=True``) writes the confidence after the
coordinates: ``cls cx cy w h conf`` (6 values), a segment with an even number of values (``cls x1 y1 ... xn yn
conf``), a pose line with one value more than ``kpt_shape`` asks for, an oriented box with 10. Those counts are
no unscored kind, so the last value is read as ``score`` when it lies in [0, 1] (another value is no confidence:
the line has a wrong number of values, ``yolo_bad_columns``, and is skipped); a file that mixes scored and unscored
lines is reported (``yolo_mixed_scores``, naming the line), its unscored lines keep a NaN score. The lines read
with a confidence are counted in an info finding (``yolo_scored``, naming the first file and line): in ground
truth, a line with one value too many (a track id in [0, 1], a polygon missing its last value) reads the same.
``scores``: None reads the confidence where the count says so; False never (such lines are ``yolo_bad_columns``,
as for ground truth); True requires one on every line (a line without is ``yolo_bad_columns``).
"""

from __future__ import annotations

import math
import re
from array import array
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.polygons import Polygons, offsets
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import str_array
from maslow.errors import FormatError
from maslow.io._common import Collector, read_bytes
from maslow.io._yolo_layout import Layout

KINDS = ("detect", "segment", "pose")
_INT = re.compile(r"[+-]?\d+")
_INTEGRAL_FLOAT = re.compile(r"[+-]?\d+\.0*")
_PLAIN_IDS = re.compile(r"[0-9]{1,9}(?: [0-9]{1,9})*")  # class ids int() and int(float()) read alike
_LONG_DECIMALS = re.compile(r"\.([0-9]{7,})")  # values printed with more than the writer's default 6 decimals
#: The most decimals a writer repeats (float64 holds ~16 significant digits; more would print noise).
MAX_DECIMALS = 15


@dataclass
class Rows:
    """The object lines read so far, as columns (row order = file order, then line order), in chunks of rows
    of one file and kind."""

    files: list[str | Path] = field(default_factory=list)
    chunk_image: list[int] = field(default_factory=list)  # image row of each chunk
    chunk_file: list[int] = field(default_factory=list)  # index into files
    chunk_kind: list[int] = field(default_factory=list)  # index into KINDS
    chunk_rows: list[int] = field(default_factory=list)  # number of rows
    # arrays, not lists, where they can be: no Python object per value (memory, work for the garbage collector)
    line: array[int] = field(default_factory=lambda: array("q"))  # 1-based line number of each row
    cls: list[int] = field(default_factory=list)  # class id of each row (any size: ids are Python ints)
    lens: array[int] = field(default_factory=lambda: array("q"))  # number of values of each row
    vals: array[float] = field(default_factory=lambda: array("d"))  # the rows' values, one after the other
    # each row's confidence (NaN: none), up to the last row with one (ground truth: empty; see ``scores``)
    score: array[float] = field(default_factory=lambda: array("d"))
    n_scored: int = 0  # rows with a confidence
    decimals: int = 0  # the most decimals a value was printed with, when more than 6 (else 0)

    def add(self, image: int, kind: int, cls: list[int], lines: list[int], lens: list[int],
            vals: list[float], scores: list[float] | None = None) -> None:
        """A chunk: rows of the last file added to ``files``; ``scores``: their confidences (None or NaN: none)."""
        if scores is not None:
            n = len(scores) - sum(map(math.isnan, scores))
            if n:
                self.score.extend(array("d", [math.nan]) * (len(self.cls) - len(self.score)))  # rows before: none
                self.score.extend(scores)
                self.n_scored += n
        self.chunk_image.append(image)
        self.chunk_file.append(len(self.files) - 1)
        self.chunk_kind.append(kind)
        self.chunk_rows.append(len(cls))
        self.cls += cls
        self.line.extend(lines)
        self.lens.extend(lens)
        self.vals.extend(vals)

    def scores(self) -> np.ndarray:
        """(rows,) float64 the confidence of each row, NaN where it has none."""
        out = np.full(len(self.cls), np.nan)
        out[:len(self.score)] = self.score
        return out

    def per_row(self, chunk_values: list[int]) -> np.ndarray:
        """(rows,) the value of each row's chunk."""
        return np.repeat(np.asarray(chunk_values, np.int64), np.asarray(self.chunk_rows, np.int64))





def read_label(path: str | Path, image: int, kpt_shape: tuple[int, int] | None, col: Collector, rows: Rows, *,
               obb: bool = False, scores: bool | None = None) -> None:
    """Append the object lines of label file ``path`` (of image row ``image``) to ``rows``; report problems.
    ``obb``: the lines are oriented boxes (``cls x1 y1 ... x4 y4``), read as 4-point polygons. ``scores``: whether
    the lines end with a confidence (None: where their count says so; see the module docstring)."""
    data = read_bytes(path)
    rows.files.append(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None  # _read_lines raises, naming the position as it always did
    if text is not None and "." in text:
        longest = max(map(len, _LONG_DECIMALS.findall(text)), default=0)
        rows.decimals = max(rows.decimals, min(longest, MAX_DECIMALS))
    if text is not None and _clean(text, kpt_shape, image, rows, obb, scores):
        return
    for _, cid, kind, vals, score, n in _read_lines(path, image, kpt_shape, col, obb, scores):
        rows.add(image, KINDS.index(kind), [cid], [n], [len(vals)], vals, [score])


def _clean(text: str, kpt_shape: tuple[int, int] | None, image: int, rows: Rows, obb: bool = False,
           scores_: bool | None = None) -> bool:
    """Parse a clean file in bulk into ``rows``; False (nothing added) when the file needs the line-by-line
    reader: anything ``_read_lines`` would report, or values it would reject."""
    toks = list(map(str.split, text.splitlines()))
    body = [t for t in toks if t]
    if not body:
        return True  # empty: a background image
    counts = set(map(len, body))
    found = _kind_of(min(counts), kpt_shape, obb, scores_)  # every line must be of one kind, all scored or none
    if found is None or any(_kind_of(c, kpt_shape, obb, scores_) != found for c in counts):
        return False
    kind, scored = KINDS.index(found[0]), found[1]
    scores: list[float] | None = None
    if scored:  # the confidence is each line's last token
        try:
            scores = [float(t.pop()) for t in body]
        except ValueError:
            return False
        if not all(0 <= v <= 1 for v in scores):  # no confidence (a nan, too): the line-by-line reader says so
            return False
    flat = list(chain.from_iterable(body))
    if len(counts) == 1:  # one width: class ids every `width` tokens
        width = len(body[0])
        cls_toks = flat[::width]
        del flat[::width]
        lens = [width - 1] * len(body)
    else:
        cls_toks = [t[0] for t in body]
        flat = list(chain.from_iterable([t[1:] for t in body]))
        lens = [len(t) - 1 for t in body]
    if not _PLAIN_IDS.fullmatch(" ".join(cls_toks)):
        return False
    try:
        vals = list(map(float, flat))
    except ValueError:
        return False
    if not math.isfinite(sum(vals) + (0.0 if scores is None else sum(scores))):  # a nan or an inf
        return False
    if kind == 2 and kpt_shape is not None and kpt_shape[1] == 3:
        per_row = np.asarray(vals).reshape(len(body), -1)
        xy = per_row[:, 4:].reshape(len(body), -1, 3)[:, :, :2]
        if per_row[:, :4].min() < 0 or per_row[:, :4].max() > 1 or (xy.size and (xy.min() < 0 or xy.max() > 1)):
            return False
    elif min(vals) < 0 or max(vals) > 1:
        return False
    lines = [n for n, t in enumerate(toks, 1) if t] if len(body) < len(toks) else list(range(1, len(toks) + 1))
    rows.add(image, kind, list(map(int, cls_toks)), lines, lens, vals, scores)
    return True


def _kind_of(n_tokens: int, kpt_shape: tuple[int, int] | None, obb: bool, scores: bool | None = None
             ) -> tuple[str, bool] | None:
    """(kind, whether the last value is a confidence) of a line of ``n_tokens`` values (class id included), None
    for a count no kind has. A pose dataset (``kpt_shape``) has only pose lines, an obb one only 4-point lines.
    ``scores``: False, no line has a confidence; True, every line has one; None, the count says."""
    found: tuple[str, bool] | None = None
    if kpt_shape is not None:
        cols = 5 + kpt_shape[0] * kpt_shape[1]
        found = ("pose", n_tokens == cols + 1) if n_tokens in (cols, cols + 1) else None
    elif obb:
        found = ("segment", n_tokens == 10) if n_tokens in (9, 10) else None
    elif n_tokens in (5, 6):
        found = "detect", n_tokens == 6
    elif n_tokens >= 7:  # cls + 2n values (n >= 3 points), + a confidence
        found = "segment", n_tokens % 2 == 0
    return found if found is None or scores is None or found[1] == scores else None


def _read_lines(path: str | Path, image: int, kpt_shape: tuple[int, int] | None, col: Collector,
                obb: bool = False, scores: bool | None = None) -> list[tuple[int, int, str, list[float], float, int]]:
    """The line-by-line reader: every problem reported with its file, line and field. Each line read is
    (image, class id, kind, values, confidence (NaN: none), line number)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise FormatError(f"label file must be UTF-8 text: {e}", path=path) from None
    pose_cols = None if kpt_shape is None else 5 + kpt_shape[0] * kpt_shape[1]
    expected = (f"{pose_cols} (cls cx cy w h + kpt_shape keypoint values)" if pose_cols is not None else
                "9 (cls x1 y1 x2 y2 x3 y3 x4 y4: an oriented box)" if obb else
                "5 (cls cx cy w h) or an odd number >= 7 (cls x1 y1 x2 y2 x3 y3 ...: a polygon)") + " values"
    out: list[tuple[int, int, str, list[float], float, int]] = []
    scored: dict[bool, list[int]] = {}  # lines with and without a confidence
    n_float_cls = 0
    first_float = ("", 0)  # the first class id written as a float, and its line
    coords: list[float] = []
    coord_lines: list[int] = []  # the line of each value in coords
    kinds: dict[str, list[int]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        toks = line.split()
        if not toks:
            continue

        def error(type_: str, message: str, field: str | None = None, n: int = n) -> None:
            col.add(type_, message, severity="error", file=path, record=f"line {n}", field=field, image=image)

        if not _INT.fullmatch(toks[0]):
            if not _INTEGRAL_FLOAT.fullmatch(toks[0]):
                error("yolo_bad_value", f"class id must be an integer, got {toks[0]!r}", "class")
                continue
            if not n_float_cls:
                first_float = (toks[0], n)
            n_float_cls += 1
        try:
            vals = [float(t) for t in toks[1:]]
        except ValueError:
            vals = [math.nan]
        if not all(math.isfinite(v) for v in vals):
            error("yolo_bad_value", f"coordinates must be finite numbers, got {' '.join(toks[1:])!r}")
            continue
        nc = len(toks)
        found = _kind_of(nc, kpt_shape, obb, scores)
        if found is None:
            more = {None: ", or one more (a confidence in [0, 1])", False: " (read with scores=False: no confidence)",
                    True: ", and one more: a confidence (read with scores=True)"}[scores]
            error("yolo_bad_columns", f"line must have {expected}{more}, got {nc}")
            continue
        kind, has_score = found
        if has_score and not 0 <= vals[-1] <= 1:  # no confidence: a value too many (a track id, a stray number)
            if scores:
                error("yolo_bad_value", f"confidence must lie in [0, 1], got {toks[-1]!r}", "score")
            else:
                error("yolo_bad_columns", f"line must have {expected}, or one more (a confidence in [0, 1]), got "
                      f"{nc}: the last, {toks[-1]!r}, is no confidence", "score")
            continue
        if kind != "segment" and (vals[2] < 0 or vals[3] < 0):  # cx cy w h: a negative size is no box
            name, v = ("w", toks[3]) if vals[2] < 0 else ("h", toks[4])
            error("yolo_bad_value", f"box {'width' if name == 'w' else 'height'} {name} must be >= 0, got {v!r}; "
                  "line not imported", name)
            continue
        score = vals.pop() if has_score else math.nan
        scored.setdefault(has_score, []).append(n)
        kinds.setdefault(kind, []).append(n)
        start = len(coords)
        if kind == "pose" and kpt_shape is not None:
            coords.extend(vals[:4] + np.asarray(vals[4:]).reshape(kpt_shape)[:, :2].ravel().tolist())
        else:
            coords.extend(vals)
        coord_lines.extend([n] * (len(coords) - start))
        out.append((image, int(float(toks[0])), kind, vals, score, n))
    if len(scored) > 1:
        col.add("yolo_mixed_scores", f"every line must end with a confidence or none does, got {len(scored[True])} "
                f"lines with one and {len(scored[False])} without (first without: line {scored[False][0]}); the "
                "lines without are read with no score", severity="error", file=path,
                record=f"line {scored[False][0]}", field="score", image=image)
    if n_float_cls:
        col.add("yolo_float_class", f"{n_float_cls} class ids are written as floats (e.g. {first_float[0]!r}, "
                f"line {first_float[1]}); they must be integers", file=path, record=f"line {first_float[1]}",
                field="class", image=image)
    if len(kinds) > 1:
        minority = min(kinds, key=lambda k: len(kinds[k]))
        col.add("yolo_mixed_task", f"file mixes {', '.join(f'{len(v)} {k}' for k, v in kinds.items())} lines; a "
                "label file must hold one kind", file=path, record=f"line {kinds[minority][0]}", image=image)
    c = np.asarray(coords)
    outside = (c < 0) | (c > 1)
    if outside.any():
        pixels = np.count_nonzero(c > 1) > c.size / 2
        hint = "; most are > 1: they look like absolute pixels, divide them by the image size" if pixels else ""
        first = int(np.flatnonzero(outside)[0])
        col.add("yolo_not_normalized", f"coordinates must lie in [0, 1], got {np.count_nonzero(outside)} of {c.size} "
                f"outside (e.g. {c[first]:g}){hint}", severity="error" if pixels else "warning", file=path,
                record=f"line {coord_lines[first]}", image=image)
    return out


def build(rows: Rows, lay: Layout, paths: list[str], widths: list[int], heights: list[int], splits: list[str],
          root: Path, col: Collector, *, obb: bool = False) -> Dataset:
    """The Dataset of the rows read; rows of unknown classes or on images of unknown size are reported (in row
    order) and left out. ``obb``: the polygons are oriented boxes (task detection, then instance segmentation)."""
    names = lay.names
    if names is None:
        ids = sorted(set(rows.cls))
        names = {i: str(i) for i in ids}
        if ids:
            col.add("yolo_no_class_names", f"no class names found (data.yaml names, obj.names, classes.txt); "
                    f"using the ids {ids[:10]} as names", severity="info", file=lay.config or root)
    order = sorted(names)
    index = {cid: k for k, cid in enumerate(order)}
    image = rows.per_row(rows.chunk_image)
    kind = rows.per_row(rows.chunk_kind)
    lens = np.array(rows.lens, np.int64)
    vals = np.array(rows.vals, np.float64)
    label = np.fromiter((index.get(c, -1) for c in rows.cls), np.int64, count=len(rows.cls))
    w_img, h_img = np.asarray(widths, np.int64), np.asarray(heights, np.int64)
    W, H = w_img[image], h_img[image]
    unknown = label < 0
    unplaced = ~unknown & ((W == 0) | (H == 0))
    if unknown.any() or unplaced.any():
        more = "..." if len(order) > 10 else ""
        file = rows.per_row(rows.chunk_file)
        # why an image has no size: reported already, unreadable (the file is there) or else missing
        unreadable = {i.image for i in col.issues if i.type == "unreadable_image"} if unplaced.any() else set()
        for r in np.flatnonzero(unknown | unplaced).tolist():
            path, rec, img = rows.files[file[r]], f"line {rows.line[r]}", int(image[r])
            if unknown[r]:
                col.add("yolo_unknown_class", f"class id must be one of {order[:10]}{more}, got {rows.cls[r]}; "
                        "annotation not imported", severity="error", file=path, record=rec, field="class",
                        image=img)
            else:
                why = "unreadable image: its size can't be read" if img in unreadable else "missing image"
                col.add("unplaced_annotation", f"the image size is unknown ({why}), so the normalised "
                        "coordinates can't be placed; annotation not imported", severity="error", file=path,
                        record=rec, image=img)
    starts = offsets(lens)[:-1]
    kinds = {KINDS[k] for k in np.flatnonzero(np.bincount(kind, minlength=len(KINDS))).tolist()}
    keep = np.flatnonzero(~(unknown | unplaced))
    image, kind, lens, starts, label = image[keep], kind[keep], lens[keep], starts[keep], label[keep]
    W, H = W[keep].astype(np.float64), H[keep].astype(np.float64)
    n = len(keep)
    box = np.empty((n, 4), np.float64)
    seg = kind == 1
    rect = ~seg
    if rect.any():  # cx cy w h
        v = vals[starts[rect, None] + np.arange(4)]
        w, h = W[rect], H[rect]
        cx, cy, bw, bh = v[:, 0] * w, v[:, 1] * h, v[:, 2] * w, v[:, 3] * h  # w, h >= 0 (_read_lines)
        box[rect] = np.column_stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
    polygon = None
    if "segment" in kinds:
        s_start, s_len = starts[seg], lens[seg]
        pos = np.arange(int(s_len.sum())) - np.repeat(offsets(s_len)[:-1], s_len)  # index within its row
        xy = vals[np.repeat(s_start, s_len) + pos] * np.where(pos % 2 == 0, np.repeat(W[seg], s_len),
                                                              np.repeat(H[seg], s_len))
        if seg.any():
            pt_start = offsets(s_len // 2)[:-1]
            x, y = xy[0::2], xy[1::2]
            box[seg] = np.column_stack([np.minimum.reduceat(x, pt_start), np.minimum.reduceat(y, pt_start),
                                        np.maximum.reduceat(x, pt_start), np.maximum.reduceat(y, pt_start)])
        polygon = Polygons(xy, offsets(s_len), offsets(seg.astype(np.int64)), ~seg)
    pose = lay.kpt_shape is not None
    K = lay.kpt_shape[0] if lay.kpt_shape else 0
    keypoints = None
    if pose and lay.kpt_shape is not None:
        d = lay.kpt_shape[1]
        kp = np.full((n, K, 3), np.nan)
        p = kind == 2
        if p.any():
            raw = vals[starts[p, None] + 4 + np.arange(K * d)].reshape(-1, K, d)
            got = np.empty((len(raw), K, 3))
            got[:, :, 0] = raw[:, :, 0] * W[p, None]
            got[:, :, 1] = raw[:, :, 1] * H[p, None]
            got[:, :, 2] = raw[:, :, 2] if d == 3 else np.where((raw[:, :, 0] != 0) | (raw[:, :, 1] != 0), 2.0, 0.0)
            got[~got.any(axis=(1, 2))] = np.nan  # every keypoint "0 0 0": the object has no keypoints
            kp[p] = got
        keypoints = kp
    ann = Annotations(image=image, label=label, box=box, polygon=polygon, keypoints=keypoints,
                      score=_scores(rows, keep, col))
    task = Task.KEYPOINTS if pose else Task.INSTANCE_SEGMENTATION if "segment" in kinds else Task.DETECTION
    tasks: tuple[Task, ...] = (task,) if task is Task.DETECTION else (task, Task.DETECTION)
    if obb:
        tasks = (Task.DETECTION, Task.INSTANCE_SEGMENTATION)
    classes = tuple(ClassDef(name=names[cid], id=cid, keypoints=tuple(lay.kpt_names.get(cid, ()))) for cid in order)
    images = Images(path=str_array(paths), width=w_img, height=h_img, split=str_array(splits))
    return Dataset(schema=LabelSchema(classes=classes, tasks=tasks), images=images, annotations=ann, root=root)


def _scores(rows: Rows, keep: np.ndarray, col: Collector) -> np.ndarray | None:
    """The ``score`` column of the rows kept (NaN where a line has no confidence), None when no line has one; the
    lines read with one are counted (info), label files with confidences beside files without are reported (a mix
    within a file is, by ``_read_lines``)."""
    if not rows.n_scored:
        return None
    score = rows.scores()
    first = int(np.flatnonzero(~np.isnan(score))[0])
    path = rows.files[int(rows.per_row(rows.chunk_file)[first])]
    col.add("yolo_scored", f"{rows.n_scored} lines read as scored predictions (a trailing confidence; first: line "
            f"{rows.line[first]}); in ground truth such a line has one value too many (a track id, a polygon "
            "missing a value): read with scores=False to refuse them", severity="info", file=path,
            record=f"line {rows.line[first]}", field="score")
    if rows.n_scored < len(score):
        file = rows.per_row(rows.chunk_file)
        per_file = np.bincount(file, weights=~np.isnan(score), minlength=len(rows.files))
        lines = np.bincount(file, minlength=len(rows.files))
        bare = np.flatnonzero((per_file == 0) & (lines > 0))  # files of unscored lines only
        if bare.size:
            first = int(np.flatnonzero(file == bare[0])[0])
            col.add("yolo_mixed_scores", f"every label file must give its lines a confidence when others do, got "
                    f"{bare.size} files without ({int(lines[bare].sum())} lines) beside files with; their lines are "
                    "read with no score", severity="warning", file=rows.files[bare[0]],
                    record=f"line {rows.line[first]}", field="score")
    out: np.ndarray = score[keep]
    return out
