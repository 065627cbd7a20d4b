"""COCO results files: scored predictions for the images and categories of a ground-truth dataset.

Glossary:

- A results file is a JSON list of ``{"image_id", "category_id", "score"}`` records with ``bbox``
  (``[x, y, width, height]``, absolute pixels), ``segmentation`` (an RLE, as pycocotools' ``loadRes``
  expects) or ``keypoints`` (flat ``[x1, y1, v1, ...]``). Ids are those of the truth file: predictions carry
  no images or categories of their own.
- Oriented boxes: hotcoco's ``obb: [cx, cy, w, h, angle]``, and Ultralytics' ``predictions.json`` (``rbox`` and
  ``poly``, ``image_id`` the file stem); read as 4-point polygons, written as ``obb`` (see ``_coco_obb``).
- Some tools write a whole COCO file (``images``, ``categories``, ``annotations`` with ``score``) instead;
  that is read too, and its ``file_name``\\ s and category names can be matched to the truth.
- Off-by-one ids: a model's 0-based class index written as ``category_id`` (or 0-based image ids) against a
  1-based truth silently pairs predictions with the wrong images and classes. maslow checks the ids and
  reports ``ids_off_by_one`` with the fix (``id_offset=1``).

Read: ``read_coco_predictions(path, like=truth)`` returns a Dataset with the truth's images, schema and root,
``source="model"``. Write: ``write_coco_results(pred, path)`` writes the results list pycocotools'
``COCO.loadRes`` accepts.
"""

from __future__ import annotations

import mmap
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maslow.core import boxes as B
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.polygons import Polygons
from maslow.core.tables import Annotations, Images
from maslow.core.types import FloatArray, IntArray, distinct
from maslow.errors import FormatError
from maslow.io._coco_columns import AnnColumns
from maslow.io._coco_native import RELEASE_WINDOW, Lookup, lookup_of, read_coco_native, read_results_native
from maslow.io._coco_obb import BBOX_COLUMN as OBB_BBOX
from maslow.io._coco_obb import COLUMN as OBB_COLUMN
from maslow.io._coco_obb import column as obb_column
from maslow.io._coco_obb import fill_extent, read_oriented, with_corners
from maslow.io._coco_results_write import fill_boxes as _fill_boxes
from maslow.io._coco_results_write import write
from maslow.io._coco_stream import no_gc, stream_list
from maslow.io._coco_write import category_ids, image_ids
from maslow.io._common import Collector, load_json
from maslow.io.coco import _boxes, _emit, _lookup, inexact_xywh, looks_xyxy
from maslow.io.registry import warn_issues

__all__ = ["parse", "read_coco_predictions", "read_coco_results", "write", "write_coco_predictions",
           "write_coco_results"]

MATCHES = ("auto", "id", "name")


class _Records(Collector):
    """The issues of one results file, each record named as the file holds it: ``[7]`` in a results list (it has
    no ``annotations`` key), ``annotations[7]`` in a COCO object, whichever code named it (``io.coco``'s checks,
    shared with COCO files, say ``annotations[7]``; ``images[3]`` stays as it is)."""

    def __init__(self, *, strict: bool) -> None:
        super().__init__(strict=strict)
        self.listed = True  # a top-level list, until the file is read as a COCO object

    def name(self, r: int) -> str:
        return f"[{r}]" if self.listed else f"annotations[{r}]"

    def add(self, type_: str, message: str, *, record: str | None = None, **where: Any) -> None:
        if record is not None and self.listed and record.startswith("annotations["):
            record = record.removeprefix("annotations")
        super().add(type_, message, record=record, **where)


def parse(
    src: Path,
    *,
    images_root: Path | None = None,
    strict: bool = False,
    like: Dataset | None = None,
    id_offset: int = 0,
    category_offset: int | None = None,
    match: str = "auto",
) -> tuple[Dataset, Report]:
    """Read COCO results (predictions) against the ground truth ``like``.

    Args:
        src: a results list, or a COCO file whose annotations carry scores.
        images_root: ignored (the images are ``like``'s); accepted for the common reader signature.
        strict: raise FormatError at the first error or warning instead of reporting it.
        like: the ground truth: its images (``images.extra["coco_id"]``) and classes (``ClassDef.id``) are
            what the ids point at, and the returned Dataset shares its images, schema and root.
        id_offset: added to every ``image_id`` (and ``category_id``, unless ``category_offset`` is given)
            before matching, e.g. 1 for 0-based predictions against 1-based truth.
        category_offset: added to every ``category_id``; defaults to ``id_offset``.
        match: ``"id"`` matches ids; ``"name"`` matches the file's own ``images[].file_name`` and
            ``categories[].name`` to the truth's paths and class names (a whole COCO file only);
            ``"auto"`` (default) matches by name where the file lists images/categories and no offset is
            given for them, by id otherwise.

    Returns:
        The predictions Dataset (predictions for unknown images or categories are left out, counted in one
        ``error`` issue each) and the Report.

    Raises:
        FormatError: the file is not a results list or COCO object, or ``like`` is missing.
    """
    if not isinstance(like, Dataset):
        raise FormatError("coco results need the ground truth: pass like=<truth Dataset>", path=src)
    if match not in MATCHES:
        raise FormatError(f"match must be one of {MATCHES}, got {match!r}", path=src)
    src = Path(src)
    col = _Records(strict=strict)
    cat_offset = id_offset if category_offset is None else category_offset
    acc = AnnColumns(bbox_optional=True)
    with no_gc():
        images, cats = None, None
        lookup = None  # the kernel maps the ids to rows where they are the truth's as they are (integers)
        truth_ids = image_ids(like)
        if truth_ids.dtype == object and id_offset:
            raise FormatError(f"id_offset must be 0 when the truth's image ids are strings, got {id_offset}; pass "
                              "category_offset for the category ids", path=src)
        if id_offset == 0 and cat_offset == 0 and match != "name" and len(like.images) and truth_ids.dtype != object:
            lookup = lookup_of(truth_ids, category_ids(like.schema), like.images.width, like.images.height)
        if _stream_results(src, acc, lookup):
            ds = _assemble(acc, like, images, cats, id_offset, cat_offset, match, src, col)
            return ds, col.report()
        native = read_coco_native(src, bbox_optional=True)  # a whole COCO object whose annotations carry scores
        if native is not None:
            top, acc = native
            col.listed = False
            ds = _assemble(acc, like, top.get("images"), top.get("categories"), id_offset, cat_offset, match, src,
                           col)
            return ds, col.report()
        acc = AnnColumns(bbox_optional=True)
        top = load_json(src)
        if isinstance(top, dict):
            records = top.get("annotations")
            images, cats = top.get("images"), top.get("categories")
            col.listed = False
        else:
            records = top
        if not isinstance(records, list):
            raise FormatError(f"must be a results list (or a COCO object with annotations), got {type(top).__name__}",
                              path=src)
        for s in range(0, len(records), 20_000):
            _add(acc, records[s:s + 20_000], s, src, col)
        del records, top
        ds = _assemble(acc, like, images, cats, id_offset, cat_offset, match, src, col)
    return ds, col.report()


def _add(acc: AnnColumns, chunk: list[Any], first: int, src: Path, col: _Records | None = None) -> None:
    """Records ``first...`` of the file (named as ``col`` names them; None: a results list) into ``acc``."""
    bad = [] if set(map(type, chunk)) <= {dict} else [j for j, r in enumerate(chunk) if type(r) is not dict]
    if bad:
        r = first + bad[0]
        raise FormatError(f"must be an object, got {type(chunk[bad[0]]).__name__}", path=src,
                          record=f"[{r}]" if col is None else col.name(r))
    acc.add(chunk, first)


def _stream_results(src: Path, acc: AnnColumns, lookup: Lookup | None = None) -> bool:
    """Read a results list into ``acc`` a chunk at a time (see ``stream_list``); False: parse the file whole."""
    try:
        with open(src, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            # the C parser, where built and the records are plain; it gives back the file's pages as it goes
            if read_results_native(data, acc, lookup=lookup, release=RELEASE_WINDOW):
                return True
            return stream_list(data, lambda chunk, first: _add(acc, chunk, first, src))
    except (OSError, ValueError):  # unreadable, a directory, an empty file (mmap refuses it), ...
        return False  # the whole-file reader gives the error


def read_coco_predictions(src: str | Path, *, like: Dataset, id_offset: int = 0, **options: Any) -> Dataset:
    """Read a COCO results file against ``like`` (a MaslowWarning summarises any issues found).

    Example:
        >>> from maslow.io import read_coco, read_coco_predictions  # doctest: +SKIP
        >>> truth = read_coco("instances_val2017.json")  # doctest: +SKIP
        >>> pred = read_coco_predictions("detections.json", like=truth)  # doctest: +SKIP
    """
    return warn_issues(*parse(Path(src), like=like, id_offset=id_offset, **options), source=src)


read_coco_results = read_coco_predictions


def _rows_of(keys: IntArray, query: IntArray) -> IntArray:
    """Row of each query id in ``keys``, -1 where absent: a table lookup for small unique ids (category ids,
    most image ids), else ``coco._lookup``'s binary search."""
    if len(keys) and 0 <= keys.min() and keys.max() < 8 * len(keys) + 4096 and len(distinct(keys)) == len(keys):
        top = int(keys.max())
        table = np.full(top + 2, -1, np.int64)  # the last slot answers every id out of range
        table[keys] = np.arange(len(keys), dtype=np.int64)
        if len(query) and query.min() >= 0 and query.max() <= top:  # every id in range (the usual case)
            return table[query]
        return table[np.where((query >= 0) & (query <= top), query, top + 1)]
    return _lookup(keys, query)


def _rows_anddistinct(keys: IntArray, query: IntArray) -> tuple[IntArray, IntArray]:
    """``_rows_of(keys, query)`` and the sorted distinct query values, without sorting every query value.

    Results files list their predictions image by image (runs of one image id: each run is looked up once)
    and use few category ids (a small range: distinct values from counts).
    """
    n = len(query)
    step = query[1:] != query[:-1]
    if n > 1 and 4 * np.count_nonzero(step) < n:
        starts = np.concatenate([np.zeros(1, np.int64), np.flatnonzero(step) + 1])
        runs = query[starts]
        lengths = np.diff(np.append(starts, n))
        return np.repeat(_rows_of(keys, runs), lengths), distinct(runs)
    rows = _rows_of(keys, query)
    if n and int(query.max()) - int(query.min()) <= 4 * n + 65536:
        lo = int(query.min())
        return rows, np.flatnonzero(np.bincount(query - lo)) + lo
    return rows, distinct(query)


def _names_map(ids: list[Any], names: list[str], truth_paths: list[str]) -> dict[Any, int]:
    """File image id (or its code, see ``_coded_images``) -> truth row, by path, then by base name where that is
    unique in the truth."""
    exact = {p: i for i, p in enumerate(truth_paths)}
    base: dict[str, int] = {}
    for i, p in enumerate(truth_paths):
        b = PurePosixPath(p).name
        base[b] = -1 if b in base else i
    out = {}
    for iid, n in zip(ids, names, strict=True):
        norm = str(n).replace("\\", "/").removeprefix("./")
        row = exact.get(norm, base.get(PurePosixPath(norm).name, -1))
        if row >= 0:
            out[iid] = row
    return out


def _stem_images(keys: list[str], paths: list[str], src: Path, col: _Records) -> tuple[list[Any], list[str]] | None:
    """The images a results list names by file stem (Ultralytics' ``image_id``: ``int(stem) if stem.isnumeric() else
    stem``) against a truth with integer ids, as a file's own images list: (stems, truth paths) where a stem is one
    truth image's; None when none is."""
    by_stem: dict[str, str | None] = {}
    for path in paths:
        stem = PurePosixPath(path).stem
        by_stem[stem] = None if stem in by_stem else path
    found = [(k, p) for k in keys if (p := by_stem.get(k)) is not None]
    if not found:
        return None
    col.add("ids_are_file_stems", f"image_id must be the truth's image ids (integers), got strings: {len(found)} of "
            f"{len(keys)} are the file stem of one truth image (e.g. {found[0][0]!r}), as Ultralytics writes them; "
            "matched by file stem", severity="info", file=src, field="image_id")
    return [k for k, _ in found], [p for _, p in found]


def _listed(table: Any, key: str, *, strings: bool = False) -> tuple[list[Any], list[str]] | None:
    """Ids (integers; ``strings``: or all strings) and ``key`` values of a file's images/categories, or None when it
    lists none usable."""
    if not isinstance(table, list) or not table:
        return None
    if not all(type(t) is dict and type(t.get(key)) is str for t in table):
        return None
    ids = [t.get("id") for t in table]
    kinds = set(map(type, ids))
    if not (kinds == {int} or (strings and kinds == {str})):
        return None
    return ids, [t[key] for t in table]


def _coded_images(acc: AnnColumns, truth_ids: np.ndarray, listed: tuple[list[Any], list[str]] | None,
                  id_offset: int) -> tuple[IntArray, np.ndarray, IntArray, tuple[IntArray, list[str]] | None,
                                           list[str]]:
    """Where image ids are strings (the truth's or some predictions'): every id (``image_id`` of the records, the
    truth's, the listed images') as an integer code, equal codes for equal ids (a string never equals an integer:
    "7" is not 7, as in pycocotools' dicts), for ``_map``. Returns the records' codes and valid flags, the truth's
    codes, the listed images with coded ids, and each code's id as messages show it."""
    codes: dict[Any, int] = {}

    def code(v: Any) -> int:
        return codes.setdefault(v, len(codes))

    truth = np.fromiter((code(v) for v in truth_ids.tolist()), np.int64, len(truth_ids))
    raw, ok = np.full(acc.n, -1, np.int64), np.zeros(acc.n, bool)
    ints, int_ok = acc.column("image_id"), acc.column("image_id_ok")
    if int_ok.any():
        at = np.flatnonzero(int_ok)
        vals = ints[at] + id_offset
        uniq = distinct(vals)
        raw[at] = np.fromiter((code(v) for v in uniq.tolist()), np.int64, len(uniq))[
            np.searchsorted(uniq, vals)]
        ok[at] = True
    at, key_codes, keys = acc.string_image_ids()
    if len(at):
        raw[at] = np.fromiter((code(k) for k in keys), np.int64, len(keys))[key_codes]
        ok[at] = True
    coded = None if listed is None else (np.fromiter((code(v) for v in listed[0]), np.int64, len(listed[0])),
                                         listed[1])
    shown = [repr(v) if isinstance(v, str) else str(v) for v in codes]
    return raw, ok, truth, coded, shown


def _map(kind: str, raw: IntArray, ok: np.ndarray, truth_ids: IntArray, truth_names: list[str],
         listed: tuple[Any, list[str]] | None, offset: int, match: str, src: Path,
         col: _Records, shown: list[str] | None = None) -> IntArray:
    """Row in the truth of every prediction's image (kind "image") or category (kind "category"); -1: none.
    ``shown``: the ids are codes (``_coded_images``), each code's id as messages show it (no off-by-one hint)."""
    field, what, plural = (("image_id", "file_name", "images") if kind == "image" else
                           ("category_id", "name", "categories"))
    all_ok = bool(ok.all())
    by_id, uniq = _rows_anddistinct(truth_ids, raw + offset if offset else raw)
    if offset:
        uniq = uniq - offset
    if not all_ok:
        by_id = np.where(ok, by_id, -1)
        uniq = distinct(raw[ok])
    by_name = None
    if listed is not None:
        ids, names = listed
        ids = ids.tolist() if isinstance(ids, np.ndarray) else ids
        if kind == "image":
            table = _names_map(ids, names, truth_names)
        else:
            index = {n: i for i, n in enumerate(truth_names)}
            table = {i: index[n] for i, n in zip(ids, names, strict=True) if n in index}
        by_name = np.asarray([table.get(v, -1) if o else -1 for v, o in zip(raw.tolist(), ok.tolist(), strict=True)],
                             np.int64)
    use_name = by_name is not None and (match == "name" or (match == "auto" and offset == 0))
    if match == "name" and by_name is None:
        raise FormatError(f"match='name' needs the file to list its {kind}s with ids and {what}s", path=src)
    rows = by_name if use_name and by_name is not None else by_id
    hint = None
    text: Any = str if shown is None else shown.__getitem__
    if shown is None and (~np.isin(uniq + offset, truth_ids)).any():
        hint = next((offset + d for d in (1, -1) if np.isin(uniq + offset + d, truth_ids).all()), None)
    if hint is not None:
        fix = f"id_offset={hint}" if kind == "image" else \
            f"category_offset={hint} (or id_offset={hint} when the image ids are off by one too)"
        if use_name:
            col.add("ids_off_by_one", f"{field} values are off by one against the truth ({field} + {hint - offset} "
                    f"would all be truth ids); matched by {what} instead, which is what counts. Do not use "
                    "these ids with the truth file", severity="info", file=src, field=field)
        else:
            col.add("ids_off_by_one", f"{field} must be the truth's ids, got ids off by one: {field} + "
                    f"{hint - offset} would all be truth ids. Pass {fix}", severity="error", file=src,
                    field=field)
    if by_name is not None and not use_name:
        valid = (by_id >= 0) & (by_name >= 0)
        disagree = valid & (by_id != by_name)
        if disagree.any():
            r = int(np.flatnonzero(disagree)[0])
            shift = f" (+{offset})" if offset > 0 else f" ({offset})" if offset else ""
            col.add(f"ids_disagree_with_{kind}_{what}s".replace("image_file", "file"),
                    f"{field} must point at the truth {kind} with the file's {what}, but {int(disagree.sum())} of "
                    f"{int(valid.sum())} predictions don't (first: {col.name(r)} {field} {text(raw[r])}{shift} is "
                    f"{truth_names[by_id[r]]!r} in the truth, {truth_names[by_name[r]]!r} in the file). "
                    "Match by name (match='name')", severity="error", file=src, record=col.name(r), field=field)
    missing = rows < 0 if all_ok else ok & (rows < 0)
    if not all_ok or missing.any():
        bad = np.flatnonzero(missing | ~ok)
        listed_ids = ", ".join(text(v) for v in distinct(raw[bad][ok[bad]])[:5].tolist())
        col.add(f"coco_unknown_{kind}", f"{field} must be one of the truth's {plural}: {bad.size} predictions point "
                f"at none (ids {listed_ids or 'missing'}); not imported", severity="error", file=src,
                record=col.name(int(bad[0])), field=field)
    return rows


def _assemble(acc: AnnColumns, like: Dataset, images: Any, cats: Any, id_offset: int, cat_offset: int, match: str,
              src: Path, col: _Records) -> Dataset:
    n = acc.n
    if n == 0:  # a model that found nothing: no rows, but a results table (scores and boxes) all the same
        empty = Annotations(image=np.zeros(0, np.int64), label=np.zeros(0, np.int64), box=np.zeros((0, 4)),
                            score=np.zeros(0), source=_model_column(0))
        return Dataset(schema=like.schema, images=like.images, annotations=empty, root=like.root)
    names = list(like.schema.names)
    paths = like.images.path.tolist()
    all_kept = acc.native_rows is not None and images is None and cats is None
    if all_kept and acc.native_rows is not None:  # the kernel's: every id found
        image, label = acc.native_rows
        keep = np.ones(n, bool)
    else:
        truth_ids = image_ids(like)
        strings = truth_ids.dtype == object or bool(acc.image_keys)  # string ids: compared as codes
        listed = _listed(images, "file_name", strings=strings)
        if listed is None and images is None and acc.image_keys and truth_ids.dtype != object and match != "id":
            listed = _stem_images(list(acc.image_keys), paths, src, col)
        if strings:
            raw, ok, truth_codes, coded, shown = _coded_images(acc, truth_ids, listed, id_offset)
            image = _map("image", raw, ok, truth_codes, paths, coded, 0, match, src, col, shown=shown)
        else:
            image = _map("image", acc.column("image_id"), acc.column("image_id_ok"), truth_ids, paths, listed,
                         id_offset, match, src, col)
        label = _map("category", acc.column("category_id"), acc.column("category_id_ok"),
                     category_ids(like.schema), names, _listed(cats, "name"), cat_offset, match, src, col)
        keep = (image >= 0) & (label >= 0)
    native_box = acc.native_boxes if acc.native_rows is not None and image is acc.native_rows[0] else None
    sized = like.images if images is None else _file_sizes(acc, images, image, keep, like.images, src, col)
    if native_box is not None:  # the kernel's xyxy and coco._boxes' one test left: boxes that look xyxy
        box, (n_like, n_known, first) = native_box[0], native_box[2]
        if n_like >= 2:
            looks_xyxy(acc, like.images, image, n_like, n_known, first, src, col)
    elif "bbox" not in acc.keys:  # no record has a box (what _boxes gives then: nothing to check or report)
        box = np.full((n, 4), np.nan)
    else:
        box = _boxes(acc, sized, image, keep, src, col)  # boxes checked against the sizes they were made for
    mask, rle_hw = acc.masks()
    extra = {k: v for k, v in acc.extras().items() if not k.startswith("\0")}
    polygon = acc.polygons() if "segmentation" in acc.keys else None
    shaped = (np.zeros(n, bool) if polygon is None else ~polygon.null) | (rle_hw[:, 0] >= 0)
    found = read_oriented(extra, shaped, src, col.name, col)  # obb, rbox/poly: before masks, keypoints
    if found is not None:
        box = fill_extent(box, found)
        polygon = with_corners(Polygons.none(n) if polygon is None else polygon, found.rows, found.corners)
        extra[OBB_COLUMN] = obb_column(n, found)
        with_bbox = np.zeros(n, bool)
        with_bbox[found.rows] = acc.column("bbox_ok")[found.rows]
        if with_bbox.any():  # written back with their bbox (see _coco_obb)
            extra[OBB_BBOX] = with_bbox
    kp, _ = acc.keypoints()
    kp_box = acc.keypoint_boxes()
    if kp_box is None:  # the kernel's keypoints are finite numbers (JSON has no others)
        kp = _finite_keypoints(kp, keep, src, col)
    if native_box is None:  # the kernel's boxes are all there
        _fill_boxes(box, mask, kp, acc.mask_boxes(), kp_box)
    score = acc.column("score")
    unscored = np.isnan(score) if all_kept else keep & np.isnan(score)
    if unscored.any():
        col.add("missing_score", f"score must be a number for every prediction, {int(unscored.sum())} have none",
                severity="error", file=src, record=col.name(int(np.flatnonzero(unscored)[0])), field="score")
    infinite = keep & np.isinf(score)
    if infinite.any():  # kept as read (ranked as pycocotools ranks them), but not written back (not finite)
        r = int(np.flatnonzero(infinite)[0])
        col.add("coco_bad_score", f"score must be a finite number, {int(infinite.sum())} predictions have an "
                f"infinite one (first: {score[r]})", severity="error", file=src, record=col.name(r), field="score")
    has_poly = polygon is not None and bool((~polygon.null).any())
    k_like = like.annotations.keypoints.shape[1] if like.annotations.keypoints is not None else 0
    if kp is not None and kp.shape[1] < k_like:
        kp = np.concatenate([kp, np.full((n, k_like - kp.shape[1], 3), np.nan)], axis=1)
    if "id" in acc.keys:
        extra["coco_id"] = acc.column("id")
    if "area" in acc.keys:
        extra["area"] = acc.column("area")
    sel = np.flatnonzero(keep) if not all_kept else None

    def pick(a: Any) -> Any:  # the kept rows (no copy when every row is kept, the usual case)
        return a if sel is None or len(sel) == n else a[sel]

    if "bbox" in acc.keys:  # loadRes computes IoUs from the boxes as read: keep them where x2 - x1 would differ,
        raw = acc.column("bbox")  # or where the writer's shortest w/h (to_xywh) would not be the file's
        if (native_box is not None and native_box[1]) or inexact_xywh(pick(raw), pick(box)):  # the kernel: x2 - x1
            extra[B.COCO_BBOX] = raw
    kept = pick(image)
    in_order = bool((kept[1:] >= kept[:-1]).all())  # results files list images in order
    build: Any = Annotations if in_order else Annotations.sort_rows
    ann = build(
        image=pick(image), label=pick(label), box=pick(box), score=pick(score),
        mask=None if mask is None else pick(mask),
        polygon=pick(polygon) if has_poly and polygon is not None else None,
        keypoints=None if kp is None else pick(kp),
        iscrowd=pick(acc.column("iscrowd")) if "iscrowd" in acc.keys else None,  # None: all False, as the column
        attributes={k: pick(v) for k, v in acc.attributes().items()},
        source=_model_column(n if sel is None else len(sel)),
        extra={k: pick(v) for k, v in extra.items()},
    )
    if acc.findings:
        _emit(acc, acc.column("id"), acc.column("id_ok"), image, np.flatnonzero(keep) if sel is None else sel, src,
              col)
    return Dataset(schema=like.schema, images=like.images, annotations=ann, root=like.root)


def _file_sizes(acc: AnnColumns, images: Any, image: IntArray, keep: np.ndarray, truth: Images, src: Path,
                col: _Records) -> Images:
    """The truth's images table with the sizes the file's own ``images`` list gives them, where it gives another
    one: predictions made at another image size (a model run on resized images) have every IoU wrong, so that is
    reported (one error naming the first image and both sizes), and the xyxy check looks at the boxes against the
    size they were made for (not "convert the boxes to xywh" for boxes that are twice the truth's size)."""
    if not isinstance(images, list):
        return truth
    sizes: dict[Any, tuple[int, float, float]] = {}  # file image id -> (index in the list, width, height)
    for j, t in enumerate(images):
        if type(t) is dict and type(t.get("id")) in (int, str):
            w, h = t.get("width"), t.get("height")
            if isinstance(w, (int, float)) and isinstance(h, (int, float)) and not isinstance(w, bool) and \
                    not isinstance(h, bool) and w > 0 and h > 0:
                sizes.setdefault(t["id"], (j, float(w), float(h)))
    sel = np.flatnonzero(keep & (image >= 0))
    if not sizes or not sel.size:
        return truth
    rows, first = np.unique(image[sel], return_index=True)  # each truth image, and a record on it
    recs = sel[first]
    ints, ok = acc.column("image_id"), acc.column("image_id_ok")
    at, codes, keys = acc.string_image_ids()
    pos = np.searchsorted(at, recs)
    found = [sizes.get(int(ints[r]) if ok[r] else keys[codes[p]] if p < len(at) and at[p] == r else None)
             for r, p in zip(recs.tolist(), pos.tolist(), strict=True)]
    has = np.asarray([f is not None for f in found], bool)
    fw = np.asarray([f[1] if f else 0.0 for f in found])
    fh = np.asarray([f[2] if f else 0.0 for f in found])
    tw, th = truth.width[rows].astype(np.float64), truth.height[rows].astype(np.float64)
    off = np.flatnonzero(has & (tw > 0) & (th > 0) & ((fw != tw) | (fh != th)))
    if not off.size:
        return truth
    k = int(off[0])
    hit = found[k]
    j = 0 if hit is None else hit[0]
    col.add("coco_size_mismatch", f"images[{j}] width and height must be the truth image's {int(tw[k])}x{int(th[k])} "
            f"({truth.path[rows[k]]!r}), got {fw[k]:g}x{fh[k]:g} ({off.size} of {int(has.sum())} images with "
            "predictions differ): the predictions were made at another image size, so every IoU would be wrong. "
            "Rescale the predictions to the truth's image sizes", severity="error", file=src, record=f"images[{j}]",
            field="width", image=int(rows[k]))
    width, height = truth.width.copy(), truth.height.copy()
    width[rows[off]] = np.round(fw[off]).astype(np.int64)
    height[rows[off]] = np.round(fh[off]).astype(np.int64)
    return replace(truth, width=width, height=height)


def _finite_keypoints(kp: FloatArray | None, keep: np.ndarray, src: Path, col: _Records) -> FloatArray | None:
    """``kp`` without the keypoints of records with an infinite number (reported once, not imported: the box of
    such keypoints would be infinite); NaN values stay (left out of the box, as missing)."""
    if kp is None:
        return kp
    bad = np.asarray(np.isinf(kp).any(axis=(1, 2)), dtype=bool)
    if not bad.any():
        return kp
    shown = bad & keep
    if shown.any():
        r = int(np.flatnonzero(shown)[0])
        col.add("coco_bad_keypoints", f"keypoints must be finite numbers, {int(shown.sum())} predictions have an "
                "infinite one; their keypoints are not imported", severity="error", file=src, record=col.name(r),
                field="keypoints")
    return np.where(bad[:, None, None], np.nan, kp)


def _model_column(n: int) -> np.ndarray:
    """``source``: "model" n times, as an object column (what Annotations makes of "model"): a read-only view of
    one value (the column is read-only in a Dataset anyway; indexing it gives a plain array), no memory per row."""
    return np.broadcast_to(np.array(["model"], dtype=object), (n,))


write_coco_results = write
write_coco_predictions = write
