"""Label Studio JSON export (a list of tasks): read and write, plus a matching labeling config.

Glossary of the format:

- A task is ``{"id", "data": {"image": url}, "annotations": [...], "predictions": [...]}``; each annotation
  (one per annotator: ``completed_by``, ``was_cancelled``) and each prediction (``model_version``, ``score``)
  holds a ``result`` list.
- A result is ``{"id", "type", "from_name", "to_name", "original_width", "original_height", "value"}``.
  Geometry is in **percent** of ``original_width``/``original_height``: ``rectanglelabels`` ``x, y, width,
  height`` (top-left corner, plus ``rotation`` in degrees around it), ``polygonlabels`` ``points: [[x, y], ...]``,
  ``ellipselabels`` ``x, y`` (the centre), ``radiusX``, ``radiusY``, ``rotation`` (about the centre),
  ``keypointlabels`` ``x, y`` (one point per result; ``parentID`` names the region it belongs to),
  ``brushlabels`` ``rle`` (Label Studio's bit-packed RLE of the RGBA canvas, decoded exactly here; a pixel
  belongs to the mask when its alpha is > 0) and ``choices`` (image-level classes).
- ``image_rotation`` is the angle the editor's view was turned by when the region was saved: the coordinates and
  ``original_width``/``original_height`` are those of the unturned image all the same (the editor turns its
  canvas, the regions keep the image's coordinates; Label Studio's own converters drop ``image_rotation``).
- Results sharing a region's ``id`` (``choices``, ``textarea``, ``number``, ``rating``, ``datetime``) are
  per-region attributes; the attribute name is their ``from_name``. Image-level ``textarea``, ``number``,
  ``rating`` and ``datetime`` results (no region's id) are values of the image. A generic ``<Labels>`` beside an
  unlabelled tool (``<Rectangle>``, ``<Polygon>``...) gives a ``labels`` result sharing the id of the geometry
  result: one region.
- Annotations are ``completions`` in Label Studio < 1.0 exports, and ``skipped`` there means ``was_cancelled``.
  A score on an annotation result is that of the prediction it was accepted from (kept, not a score of
  maslow's). A ``relation`` result (``from_id``, ``to_id``) links two regions by their ids.
- JSON-MIN export: one record per annotation, ``{<data keys>, "id", <control name>: [values], "annotator",
  "annotation_id", ...}``; values lose ``type`` and ``id`` (the label key, or the config's control tag, gives the
  type) and a single choice becomes plain text (read with the labeling config only).
- Image URLs map to relative paths: ``/data/upload/<project>/<file>`` -> ``upload/<project>/<file>`` (the layout
  of Label Studio's media folder), ``/data/local-files/?d=<path>`` -> ``<path>`` (relative to the local-files
  document root), ``s3://bucket/key`` (also ``gs://``, ``azure-blob://``) -> ``bucket/key``, paths without a
  scheme read as URLs: without their query, percent-decoded (``img%201.jpg?v=2`` -> ``img 1.jpg``, the query
  reported as ``url_query``), unless a file of the literal name exists and the decoded one does not. Other URLs
  (``http(s)://``, ``data:``, absolute paths outside ``images_root``) keep only their basename and are reported
  (``unmappable_url``). The original URL is kept in ``images.extra["ls_url"]``.

Mapping to maslow: one annotation row per region, per keypoint without ``parentID`` (K = 1) and per chosen class
(a tag: NaN box); image-level values become image columns, one per control (``_labelstudio_values``). Keypoints
with a ``parentID`` become the keypoints (v = 2) of their parent region; their labels become the class's keypoint
names, in the order of the config's ``<KeyPointLabels>``; where one class alone has such keypoints, the control's
labels it never uses that name no class are its too (v = 0). Predictions become rows with ``source="model"`` and ``score`` (the
result's, else the prediction's); ``completed_by`` becomes ``annotator``; cancelled annotations have no rows
(info). An ellipse becomes its outline (a 64-point polygon) with ``extra["ls_shape"] = "ellipse"``.
``from_name``/``to_name``, result ids and box/ellipse ``rotation`` are kept in ``annotations.extra``. Everything
else of the export (task data, the annotations' own keys, empty and cancelled annotations, relations and other
results no row holds, regions' ``meta``/``origin``, the labeling config) is kept as ``_labelstudio_keep``
describes, so that ``write`` gives the export back.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import AttributeDef
from maslow.core.tables import Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io._coco_columns import to_column
from maslow.io._common import Collector, ExportReport, safe_relpath
from maslow.io._labelstudio_columns import Columns, Row
from maslow.io._labelstudio_config import Config, config_path, keypoints_lost, order_keypoints, read_config, url_to_path
from maslow.io._labelstudio_export import config_for, dump_tasks, export, is_json_min, json_min_tasks
from maslow.io._labelstudio_keep import OWN_IMAGE_EXTRA, TASK_KEYS, header, leftover
from maslow.io._labelstudio_regions import (
    ATTR_TYPES,
    REGION,
    Place,
    labels_of,
    merge_split_labels,
    positive,
    read_attribute,
    read_geometry,
)
from maslow.io._labelstudio_stream import iter_batches
from maslow.io._labelstudio_values import ValueReader, add_columns, choice_set
from maslow.io.images import image_info
from maslow.io.registry import Progress, Ticks, warn_issues


# -- reading ---------------------------------------------------------------------------------------------------
def _literal_file(url: str, path: str, root: Path) -> bool:
    """Whether a URL without a scheme names a file literally: a file of that name exists (under ``root``, unless
    absolute) and the file the URL names (its path without the query, percent-decoded) does not."""
    def is_file(p: str) -> bool:
        try:
            return (Path(p) if p.startswith("/") else root / p).is_file()
        except (OSError, ValueError):  # a name too long, a NUL byte
            return False

    return is_file(url) and not is_file(path)


class _Reader:
    def __init__(self, src: Path, root: Path, col: Collector, cfg: Config, choice_columns: frozenset[str]) -> None:
        self.src, self.root, self.col, self.cfg = src, root, col, cfg
        self.columns = Columns()
        self.values = ValueReader(choice_columns)  # image-level values: image columns
        self.turned: list[tuple[str, int]] = []  # (record, image) of regions drawn on a turned image
        self.paths: list[str] = []
        self.urls: list[str] = []
        self.widths: list[int] = []
        self.heights: list[int] = []
        self.task_ids: list[int] = []
        self.classes: dict[str, set[str]] = {k: set(v) for k, v in cfg.classes.items()}
        self.attributes: dict[str, AttributeDef] = dict(cfg.attributes)
        self.data: list[dict[str, Any]] = []  # per task: data keys other than the image
        self.rest: list[dict[str, Any] | None] = []  # per task: keys other than TASK_KEYS
        self.headers: list[dict[str, list[Any]] | None] = []  # per task: annotations and predictions (keep.header)
        self.kept: Counter[str] = Counter()  # result types kept in a header, not as rows
        self.unsized: list[tuple[str, int, str]] = []  # (record, image, why) of tasks whose size is unknown

    def note_class(self, name: str, kind: str, rec: str, image: int) -> None:
        if self.cfg.declared and name not in self.cfg.classes and name not in self.classes and not (
                kind == "keypoint" and name in self.cfg.kp_labels):
            self.col.add("unknown_label", f"label {name!r} is not in the labeling config; added to the schema",
                         severity="error", file=self.src, record=rec, field="value", image=image)
        self.classes.setdefault(name, set()).add(kind)

    def results(self, results: Any, image: int, size: tuple[int, int], rec: str,
                common: dict[str, Any]) -> list[Any]:
        """Read an annotation's (or prediction's) results into rows; returns the results no row holds (kept)."""
        if not isinstance(results, list):
            raise FormatError(f"result must be a list, got {type(results).__name__}", path=self.src, record=rec,
                              field="result")
        regions: dict[str, Row] = {}
        new: list[Row] = []
        pending: list[tuple[dict[str, Any], str]] = []
        kept: list[Any] = []
        drawn: set[str] = set()  # ids of the region results, imported or not
        for j, res in enumerate(merge_split_labels(results)):
            r_rec = f"{rec}, result {res.get('id', j) if isinstance(res, dict) else j}"
            if not isinstance(res, dict) or not isinstance(res.get("value"), dict) or "type" not in res:
                if isinstance(res, dict) and res.get("type") == "relation":
                    kept.append(res)  # from_id -> to_id: the region ids are written back
                    self.kept["relation"] += 1
                    continue
                raise FormatError("result must be an object with 'type' and 'value'", path=self.src,
                                  record=r_rec, field="value")
            rtype = str(res["type"]).lower()
            if rtype in REGION:
                drawn.add(str(res.get("id", "")))
                rows = self.region(res, rtype, image, size, r_rec, common)
                for row in rows:
                    regions.setdefault(str(row.extra.get("ls_result_id")), row)
                    new.append(row)
                if not rows:  # reported by region(): kept as it was
                    kept.append(res)
            else:
                pending.append((res, r_rec))
        for row in list(new):  # keypoints with a parentID become keypoints of their (non-keypoint) parent
            parent = regions.get(str(row.extra.pop("_parent", None)))
            if row.standalone_kp and parent is not None and not parent.standalone_kp:
                parent.kps.extend(row.kps)
                child = {"id": row.extra.get("ls_result_id"), "from_name": row.extra.get("ls_from_name"),
                         **(row.extra.get("ls_result") or {})}
                parent.extra["ls_result"] = {**(parent.extra.get("ls_result") or {})}
                parent.extra["ls_result"].setdefault("keypoints", {})[row.label] = child
                new.remove(row)
            elif row.standalone_kp:
                self.note_class(row.label, "keypoint", rec, image)
        for res, r_rec in pending:
            rtype, rid = str(res["type"]).lower(), str(res.get("id", ""))
            if rtype in ATTR_TYPES and rid in regions:
                read_attribute(regions[rid], res, rtype, self.attributes, Place(self.src, self.col, r_rec, image))
            elif rid not in drawn and res.get("from_name") not in self.cfg.per_region and \
                    self.values.wants(rtype, res):  # an image-level value: an image column
                kept.append(res)
                if not self.values.offer(res, rtype, common, kept):
                    self.kept[rtype] += 1
            elif rtype == "choices":
                left = leftover(res, "choices", rtype, scored=common["source"] == "model")
                for name in labels_of(res, "choices", self.src, r_rec):
                    self.note_class(name, "choices", r_rec, image)
                    row = Row(image, name, [math.nan] * 4, score=self.score(res, common), **self.base(res, common))
                    row.extra["ls_result"] = left
                    new.append(row)
            else:  # taxonomy, per-region values of no region, and types maslow has no mapping for
                kept.append(res)
                self.kept[rtype] += 1
        self.columns.add(new)  # after the attributes: they are set on the rows of their regions
        return kept

    def base(self, res: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
        extra = dict(common["extra"], ls_result_id=res.get("id"), ls_from_name=res.get("from_name"),
                     ls_to_name=res.get("to_name"))
        return {"annotator": common["annotator"], "source": common["source"], "extra": extra}

    def score(self, res: dict[str, Any], common: dict[str, Any]) -> float:
        if common["source"] != "model":  # an annotation result keeps the score of the prediction it came from
            return math.nan
        s = res.get("score", common["score"])
        return float(s) if isinstance(s, int | float) and not isinstance(s, bool) else math.nan

    def region(self, res: dict[str, Any], rtype: str, image: int, size: tuple[int, int], rec: str,
               common: dict[str, Any]) -> list[Row]:
        value, kind = res["value"], REGION[rtype]
        labels = labels_of(res, rtype, self.src, rec)
        w, h = res.get("original_width", size[0]), res.get("original_height", size[1])
        canvas = (w, h)  # a brush's RLE is of this size
        if positive(size[0]) and positive(size[1]) and positive(w) and positive(h) and (w, h) != size:
            self.col.add("labelstudio_size_mismatch", f"original_width/original_height {w}x{h} differ from the "
                         f"task's {size[0]}x{size[1]} (its first result's); percentages placed on "
                         f"{size[0]}x{size[1]}", file=self.src, record=rec, field="original_width", image=image)
            w, h = size
        rot_img = res.get("image_rotation")  # the editor's view, turned: coordinates are of the unturned image
        if isinstance(rot_img, int | float) and not isinstance(rot_img, bool) and math.isfinite(rot_img) and rot_img:
            self.turned.append((rec, image))
        if not positive(w) or not positive(h):
            self.col.add("missing_size", f"original_width/original_height must be numbers > 0 (or the image size "
                         f"known), got {w!r}, {h!r}; the region was not imported", severity="error", file=self.src,
                         record=rec, field="original_width", image=image)
            return []
        if not labels:
            self.col.add("missing_label", f"region has no {rtype} label; it was not imported", severity="error",
                         file=self.src, record=rec, field=f"value.{rtype}", image=image)
            return []
        row = Row(image, labels[0], [math.nan] * 4, score=self.score(res, common), **self.base(res, common))
        row.extra["ls_result"] = leftover(res, kind, rtype, scored=common["source"] == "model")
        if not read_geometry(row, kind, value, w, h, canvas, Place(self.src, self.col, rec, image)):
            return []
        if kind == "keypoint":
            row.extra["_parent"] = res.get("parentID")
            return [row]
        self.note_class(row.label, kind, rec, image)
        return [row]

    def task(self, t: int, task: Any, image_key: str) -> None:
        """Read task ``t``: its image row, then its annotations and predictions."""
        src, root, col = self.src, self.root, self.col
        tid = task.get("id") if isinstance(task, dict) else None
        rec = f"task {t} (id={tid})"
        data = task.get("data") if isinstance(task, dict) else None
        url = data.get(image_key) if isinstance(data, dict) else None
        if not isinstance(url, str) or not url:
            raise FormatError(f"data.{image_key} must be an image URL string, got {url!r}", path=src, record=rec,
                              field=f"data.{image_key}")
        path, ok = url_to_path(url)
        plain = ok and path != url and not urllib.parse.urlsplit(url).scheme and not url.startswith("/data/")
        queried = plain and "?" in url  # a path without a scheme, with a query
        if plain and _literal_file(url, path, root):  # a file named with a '?' or a '%'
            path, queried = url, False
        if ok and path.startswith("/") and not path.startswith(str(root.resolve())):
            path, ok = PurePosixPath(path).name, False
        if ok and queried:
            col.add("url_query", f"image URL {url[:80]!r} is read as a URL: its query is not part of the file "
                    f"name {path!r} (a file named with the '?' is read as such when it exists)", severity="info",
                    file=src, record=rec, field=f"data.{image_key}", image=t)
        if not ok:
            path = path or f"task_{tid if tid is not None else t}"
            col.add("unmappable_url", f"image URL {url[:80]!r} does not map to a local path; kept the name "
                    f"{path!r}", file=src, record=rec, field=f"data.{image_key}", image=t)
        path = safe_relpath(path, root=root, file=src, record=rec, field=f"data.{image_key}")
        ann_key = "annotations" if "annotations" in task or "completions" not in task else "completions"  # LS < 1.0
        for key in (ann_key, "predictions"):
            if task.get(key) is not None and not isinstance(task[key], list):
                raise FormatError(f"{key} must be a list, got {type(task[key]).__name__}", path=src, record=rec,
                                  field=key)
        groups = [("annotation", a) for a in task.get(ann_key) or []] + \
                 [("prediction", p) for p in task.get("predictions") or []]
        size = next(((int(r["original_width"]), int(r["original_height"])) for _, g in groups
                     if isinstance(g, dict) for r in g.get("result") or []
                     if isinstance(r, dict) and positive(r.get("original_width"))
                     and positive(r.get("original_height"))), None)
        if size is None:
            try:
                info = image_info(root / path)
                size = (info.width, info.height)
            except FormatError as e:  # missing or unreadable: the import checks report the file
                size = (0, 0)
                self.unsized.append((rec, t, str(e)))
        self.paths.append(path)
        self.widths.append(size[0])
        self.heights.append(size[1])
        self.urls.append(url)
        self.task_ids.append(int(tid) if isinstance(tid, int) else -1)
        self.data.append({k: v for k, v in data.items() if k != image_key} if isinstance(data, dict) else {})
        self.rest.append({k: v for k, v in task.items() if k not in TASK_KEYS} or None)
        ids = [(kind, g.get("id")) for kind, g in groups if isinstance(g, dict)]
        keyed = all(isinstance(i, int | str) for _, i in ids) and len(set(ids)) == len(ids)
        heads: dict[str, list[Any]] | None = {"annotations": [], "predictions": []} if keyed and ids else None
        self.headers.append(heads)
        drafts = task.get("drafts")
        n_drafts = sum(isinstance(d, dict) and bool(d.get("result")) for d in drafts) \
            if isinstance(drafts, list) else 0
        if n_drafts:  # saved in the editor, never submitted: not annotations yet
            col.add("draft_annotation", f"{n_drafts} draft annotation(s) (saved, not submitted) not imported; "
                    "submit them in Label Studio to export them as annotations", severity="info", file=src,
                    record=rec, field="drafts", image=t)
        loose: list[tuple[str, list[Any]]] = []  # results of annotations without an id
        for kind, g in groups:
            g_rec = f"{rec}, {kind} id={g.get('id') if isinstance(g, dict) else g}"
            if not isinstance(g, dict):
                col.add("unsupported_result", f"{kind} must be an object, got {type(g).__name__}; skipped",
                        severity="info", file=src, record=g_rec, image=t)
                continue
            if g.get("was_cancelled") or g.get("skipped"):  # 'skipped': the flag of LS < 1.0 ("completions")
                col.add("cancelled_annotation", "cancelled annotation not imported" + (
                    " (kept in images.extra['ls_annotations'] for Label Studio)" if heads is not None else ""),
                    severity="info", file=src, record=g_rec, image=t)
                if heads is not None:
                    heads["annotations"].append(header(g, list(g.get("result") or [])))
                continue
            by = g.get("completed_by")
            by = by.get("email", by.get("id")) if isinstance(by, dict) else by
            common = {"annotator": None if by is None or kind == "prediction" else str(by),
                      "source": "model" if kind == "prediction" else "human", "ground_truth": g.get("ground_truth"),
                      "score": g.get("score") if kind == "prediction" else None,
                      "extra": {"ls_annotation_id": g.get("id"),
                                "ls_model_version": g.get("model_version") if kind == "prediction" else None}}
            left = self.results(g.get("result", []), t, size, g_rec, common)
            if heads is not None:
                heads[kind + "s"].append(header(g, left))
            else:
                loose.append((g_rec, left))
        for r in self.values.end_task(t):  # image-level values chosen for the image's columns, the others kept
            self.kept[str(r["type"]).lower()] += 1
        for g_rec, left in loose:  # no id to link rows and results back by: not kept (but the image's values)
            left = [r for r in left if not (isinstance(r, dict) and r.get("_value"))]
            if left:
                col.add("unsupported_result", f"{len(left)} results of types "
                        f"{sorted({str(r.get('type')) for r in left if isinstance(r, dict)})} are not imported",
                        severity="error", file=src, record=g_rec, image=t)


def parse(src: Path, *, images_root: Path | None = None, strict: bool = False,
          label_config: str | Path | None = None, image_key: str = "image", choice_columns: Any = (),
          chunk_bytes: int = 1 << 18, progress: Progress | None = None) -> tuple[Dataset, Report]:
    """Read a Label Studio JSON export (``JSON``) or its ``JSON-MIN`` form.

    Args:
        src: the JSON file: a list of tasks, or of JSON-MIN records (one per annotation; result types, result ids
            and the links of per-region attributes are not in them: pass the labeling config to read image-level
            choices and to tell controls from task data).
        images_root: base folder of the mapped image paths (default ``src.parent``).
        strict: raise FormatError on the first error or warning instead of reporting it.
        label_config: the labeling config (XML text or a path); default ``<stem>.label_config.xml`` beside
            ``src`` (what ``write`` writes), else ``label_config.xml`` there (exports written before).
            With a config, labels it does not declare are reported (``unknown_label``) and added.
        image_key: the ``data`` key holding the image URL.
        choice_columns: names of image-level ``<Choices>`` controls read as image columns (``images.extra[name]``,
            for ``--slice-by``; like ``<TextArea>``, ``<Number>``, ``<Rating>`` and ``<DateTime>``) instead of
            classes (image tags); CLI: ``--read-option choice_columns=[weather]``.
        chunk_bytes: the task list is parsed in pieces of about this many bytes, each read into columns and freed
            (memory vs speed; a JSON-MIN export is read whole).
        progress: called as ``progress(done, total)`` over the bytes of ``src`` read (``registry.Ticks``).

    Returns:
        The Dataset and the Report of import findings.

    Raises:
        FormatError: the file is not a task list or is malformed JSON (names line, column and task), or a result is
            malformed (names task, result and field).
    """
    src = Path(src)
    col = Collector(strict=strict)
    tick = Ticks(progress, src.stat().st_size if progress is not None and src.is_file() else 0)
    batches = iter_batches(src, chunk_bytes=chunk_bytes, on_read=tick if progress is not None else None)
    head: list[Any] = []  # the tasks up to the first object, which tells a JSON-MIN export
    for _, items in batches:
        head.extend(items)
        if any(isinstance(x, dict) for x in items):
            break
    root = Path(images_root) if images_root is not None else src.parent
    choices = choice_set(choice_columns, None, src)
    cfg = read_config(label_config, src, choice_columns=choices)
    choice_set(choices, cfg.controls if cfg.declared else None, src)
    reader = _Reader(src, root, col, cfg, choices)
    if is_json_min(head, image_key):
        head.extend(x for _, items in batches for x in items)
        tasks, skipped = json_min_tasks(head, image_key, cfg.controls, cfg.per_region)
        del head
        col.add("labelstudio_json_min", "JSON-MIN export: result types come from the labeling config or the label "
                "keys, result ids are missing" + ("" if cfg.declared else "; without a labeling config, text "
                "values (image-level choices) can't be told from task data and are not read"), severity="info",
                file=src, record="root")
        for n, key in skipped:
            col.add("unsupported_result", f"per-region {key!r} can't be linked to its region in JSON-MIN; not "
                    "imported (export as JSON to keep it)", severity="error", file=src, record=f"record {n}",
                    field=key)
        for t, task in enumerate(tasks):
            reader.task(t, task, image_key)
    else:
        for t, task in enumerate(head):
            reader.task(t, task, image_key)
        del head
        for first, items in batches:
            for t, task in enumerate(items, first):
                reader.task(t, task, image_key)
            del items
    tick.end()
    if reader.unsized:
        rec, t, why = reader.unsized[0]
        col.add("labelstudio_unknown_size", f"original_width/original_height must be given by a result when the "
                f"image file can't be read, got no result with them in {len(reader.unsized)} tasks (first: {why}); "
                "their width and height stay 0 (unknown): read with images_root where the images are", file=src,
                record=rec, field="original_width", image=t)
    for rtype, n in reader.kept.items():
        col.add("labelstudio_kept", f"{n} {rtype} results have no maslow column: kept in images.extra"
                "['ls_annotations'] and written back to Label Studio (other formats count them lost)",
                severity="info", file=src, field=rtype)
    extra = {"ls_task_id": np.asarray(reader.task_ids, np.int64), "ls_url": obj_array(reader.urls)}
    for key in dict.fromkeys(k for d in reader.data for k in d):  # task data: image metadata
        if key in OWN_IMAGE_EXTRA:
            col.add("labelstudio_data_key", f"data key {key!r} is a column of the reader's own; not kept",
                    file=src, field=f"data.{key}")
            continue
        extra[key] = to_column([d.get(key) for d in reader.data])
    image_values = add_columns(reader.values, extra, col, src)
    if reader.turned:
        col.add("labelstudio_image_rotation", f"{len(reader.turned)} regions were drawn with the image turned in the "
                "editor (image_rotation): Label Studio keeps their coordinates in the unturned image (it turns the "
                "view only), so they are read as they are; image_rotation is kept and written back", severity="info",
                file=src, record=reader.turned[0][0], field="image_rotation", image=reader.turned[0][1])
    for key, values in (("ls_task", reader.rest), ("ls_annotations", reader.headers)):
        if any(v is not None for v in values):
            extra[key] = obj_array(values)
    images = Images(path=obj_array(reader.paths), width=np.asarray(reader.widths, np.int64),
                    height=np.asarray(reader.heights, np.int64), extra=extra)
    ds = order_keypoints(reader.columns.build(reader.classes, reader.attributes, cfg.colors, images, root), cfg)
    info: dict[str, Any] = {"label_config": cfg.text} if cfg.declared else {}
    if image_key != "image":
        info["image_key"] = image_key
    if image_values:
        info["image_values"] = image_values
    return (ds.replace(info={**ds.info, "labelstudio": info}) if info else ds), col.report()


def read_labelstudio(src: str | Path, **options: Any) -> Dataset:
    """Read a Label Studio JSON export (see ``parse``); a MaslowWarning summarises import findings."""
    return warn_issues(*parse(Path(src), **options), source=src)


def labeling_config(ds: Dataset) -> str:
    """A Label Studio labeling config (XML) that matches what ``write`` produces for ``ds``.

    Region controls (``RectangleLabels``, ``PolygonLabels``, ``BrushLabels``, ``KeyPointLabels``) list the classes,
    ``Choices`` the image-level classes, each attribute becomes a per-region ``Choices`` (enum; bool as
    ``true``/``false``), ``Number`` or ``TextArea``, and each image-level value column read from Label Studio its
    ``TextArea``, ``Number``, ``Rating``, ``DateTime`` or ``Choices``.
    """
    tasks, ctl, _ = export(ds, "/data/local-files/?d=", "")
    for _ in tasks:  # the controls are known once every task is made
        pass
    return config_for(ds, ctl, [])


def write(ds: Dataset, dst: Path, *, url_prefix: str = "/data/local-files/?d=",
          progress: Progress | None = None) -> ExportReport:
    """Write ``ds`` as a Label Studio task list (JSON), its labeling config beside it (``<stem>.label_config.xml``).

    Annotations with source ``model``/``pseudo`` become predictions (pre-annotations, with their score), the
    others annotations grouped per annotator; what a Label Studio reader kept (``_labelstudio_keep``) is written
    back: the annotations and predictions as read (empty and cancelled ones too), their results no row holds,
    regions' other keys, the task's keys and the labeling config while it fits. Image-level values read from Label
    Studio (``info["labelstudio"]["image_values"]``) are written into their results, the column's value (as changed
    in maslow) in the result it came from (``_labelstudio_values``); other image ``extra`` columns become task
    ``data`` keys. Masks are written as brush RLE. Counted in ``ExportReport.lost``:
    scores of human annotations, ``iscrowd``, sources pseudo/synthetic (read back as model/human), extra polygon
    parts, masks or boxes beside a polygon that differ from it, keypoint visibility 1 (read back as 2), keypoint
    sets without an object to hang on (``keypoint_grouping``), attributes of image-level tags, splits, skeletons,
    class ids, supercategories, the class order (``class_order``: the config lists classes per control tag),
    keypoint names the reader won't give back as they are (``class_keypoints``: the config's ``<KeyPointLabels>``
    list them in schema order, every name, but a class whose keypoints are never placed, or one of several classes
    with keypoints, can lose names never placed or their order), non-Label-Studio annotation ``extra`` columns and image ``extra`` values that are not JSON.

    Args:
        ds: the dataset.
        dst: the JSON file to write (atomically); its labeling config is written beside it as
            ``<stem>.label_config.xml`` (``tasks.json``: ``tasks.label_config.xml``; a name of its own, so that
            exports in one folder don't replace each other's config), where ``parse`` looks first.
        url_prefix: prefix of ``data.image`` for images without an original URL (``images.extra["ls_url"]``).
        progress: called as ``progress(done, total)`` over the tasks (images) written (``registry.Ticks``).

    Returns:
        What was written and what was lost.

    Raises:
        FormatError: the labeling config can't be XML (a name holds a control character); nothing was written.
    """
    dst = Path(dst)
    tasks, ctl, report = export(ds, url_prefix, str(dst))
    cfg_path = config_path(dst)
    # both made in temps and checked before either is put in place (the config, then the tasks, at once): a config
    # XML can't hold (a name with a control character) leaves the previous output as it was
    with atomic_path(dst) as tmp:
        dump_tasks(tasks, tmp, tick=Ticks(progress, ds.n_images))
        config = config_for(ds, ctl, report.notes)
        columns = frozenset(k for k, (t, _) in ctl.values.items() if t == "choices")  # image columns, not classes
        try:
            cfg = read_config(config, dst, choice_columns=columns)
        except FormatError as e:
            bad = re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", config)
            got = f"{bad[0]!r} in a name (a character XML can't hold)" if bad else str(e)
            raise FormatError(f"labeling config must be readable XML, got {got}; nothing was written",
                              path=cfg_path, record="label_config") from None
        order = list(cfg.classes)  # the class order a reader takes, then
        order += [n for n in ds.schema.names if n not in order]  # classes of keypoints without a region, on use
        if order != list(ds.schema.names):  # classes grouped by control tag (rectangles, polygons, brushes)
            report.lost["class_order"] += 1
            report.notes.append("the labeling config lists the classes per control tag: their order is not kept")
        lost = keypoints_lost(ds, ctl.kp_used, cfg)
        if lost:
            report.lost["class_keypoints"] += lost
            report.notes.append(f"{lost} classes' keypoint names (their number or order) are not kept: Label Studio "
                                "ties a keypoint label to a class only through the keypoints placed, and one "
                                "<KeyPointLabels> lists the labels of all classes")
        with atomic_path(cfg_path) as cfg_tmp:  # its own scope: a full disk is named by the file it filled
            cfg_tmp.write_text(config, encoding="utf-8")
    report.notes.append(f"labeling config: {cfg_path}")
    return report


write_labelstudio = write
