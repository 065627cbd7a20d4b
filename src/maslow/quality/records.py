"""ISSUES.json records: a table of findings (``QualityIssues``) with the ids of the input file, class names, and
the suggested box also in COCO's x, y, w, h: what ``maslow qa`` writes (``issue_records``) and ``maslow review``
reads back (``read_findings``, ``parse_findings``, checked against the truth by ``check_findings_match``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from maslow.core.dataset import Dataset
from maslow.errors import FormatError, InvalidDatasetError


def issue_records(issues: Any, truth: Dataset, *, xywh: bool = True) -> list[dict[str, Any]]:
    """ISSUES.json entries: ``QualityIssues.rows`` with the ids from the input file, names, and the suggested box
    also as COCO's x, y, w, h (``xywh``), rounded to 2 decimals; suggested keypoints ``[[x, y, v], ...]`` (x and y
    rounded to 2 decimals, v to 6, as the score), null where a row has none; a suggested outline (an oriented box's
    corners) as ``polygon``, ``[[x1, y1, ..., xV, yV]]`` rounded to 2 decimals, on the rows that suggest one only (the
    other records keep their bytes). A finding about a pair of annotations
    (``QualityIssues.other``: a duplicate, a class conflict, an annotator disagreement) also has ``other_row`` and
    ``other_id``, the second annotation (``maslow review`` removes or keeps it); other findings have neither key."""
    return [r for chunk in issue_record_chunks(issues, truth, xywh=xywh, size=max(len(issues), 1)) for r in chunk]


def issue_record_chunks(issues: Any, truth: Dataset, *, xywh: bool = True,
                        size: int = 4096) -> Iterator[list[dict[str, Any]]]:
    """``issue_records`` ``size`` records at a time, ranks counted from the first (what ISSUES.json is written
    from: a dict per record for a chunk at a time, not for 900,000 issues at once)."""
    names = truth.schema.names
    label = truth.annotations.label
    path = truth.images.path
    lo = 0
    for rows in issues.row_chunks(names=names, size=size):
        hi = lo + len(rows)
        img_ids = _ids(truth, "images", issues.image[lo:hi])
        ann_ids = _ids(truth, "annotations", issues.annotation[lo:hi])
        other_ids = _ids(truth, "annotations", issues.other[lo:hi])
        out = []
        for k, r in enumerate(rows):
            ann, img, sug = r["annotation"], r["image"], r["suggestion"]
            if sug is not None:
                xyxy = None if sug["box_xyxy"] is None else [round(float(v), 2) for v in sug["box_xyxy"]]
                box = xyxy if xyxy is None or not xywh else \
                    [xyxy[0], xyxy[1], round(xyxy[2] - xyxy[0], 2), round(xyxy[3] - xyxy[1], 2)]
                ring = sug.get("polygon")
                sug = {"class": sug["class"], "box": box, "box_xyxy": xyxy, "keypoints": _points(sug["keypoints"]),
                       **({} if ring is None else {"polygon": [[round(float(v), 2) for v in r] for r in ring]}),
                       "text": sug["text"]}
            rec = {
                "rank": lo + k + 1, "image_id": img_ids[k], "annotation_id": ann_ids[k], "type": r["type"],
                "score": round(float(r["score"]), 6), "severity": r["severity"],
                "file_name": str(path[img]) if img >= 0 else None,
                "class": names[int(label[ann])] if ann >= 0 else (None if sug is None else sug["class"]),
                "reason": r["reason"], "suggestion": sug,
                "image_row": img, "annotation_row": ann if ann >= 0 else None,
            }
            if r["other"] >= 0:  # only pairs: the records of the other findings keep their bytes
                rec["other_row"], rec["other_id"] = r["other"], other_ids[k]
            out.append(rec)
        yield out
        lo = hi


def _ids(ds: Dataset, table: str, rows: np.ndarray) -> list[Any]:
    extra = (ds.images if table == "images" else ds.annotations).extra
    col = extra.get("coco_id")
    out: list[Any] = []
    for r in rows.tolist():
        if r < 0:
            out.append(None)
        elif col is not None and col[r] is not None:
            v = col[r]
            out.append(int(v) if isinstance(v, int | np.integer) or (isinstance(v, float) and v.is_integer()) else v)
        else:
            out.append(int(r))
    return out


def _points(kp: list[list[float | None]] | None) -> list[list[float | None]] | None:
    """Suggested keypoints as ISSUES.json holds them: x and y rounded to 2 decimals (as a box), v to 6 (a model's v
    may be a confidence, as the score); None values kept."""
    if kp is None:
        return None
    return [[None if v is None else round(v, 2 if j < 2 else 6) for j, v in enumerate(p)] for p in kp]


@dataclass(frozen=True, eq=False)
class Finding:
    """One ISSUES.json record, its fields checked (``parse_findings``)."""

    key: int
    type: str
    image: int  # -1: none
    ann: int  # -1: none
    file_name: str | None
    cls: str | None
    image_id: Any
    annotation_id: Any
    sug_class: str | None
    sug_box: np.ndarray | None  # (4,)
    sug_kp: np.ndarray | None  # (K, 3), NaN where null
    sug_text: str
    other: int = -1  # the second annotation of a pair (other_row), -1: none
    other_id: Any = None
    sug_poly: np.ndarray | None = None  # (V, 2) a suggested outline (an oriented box: its 4 corners)


def read_findings(path: str | Path) -> list[dict[str, Any]]:
    """The findings of an ISSUES.json file (``maslow qa --out``), checked as ``apply_decisions`` checks them.

    Raises:
        FormatError: unreadable file, not a JSON list, or a record without a usable field (names the record).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except OSError as e:
        raise FormatError(f"must be a readable ISSUES.json file, got {(e.strerror or str(e)).lower()}",
                          path=path) from None
    except ValueError as e:
        raise FormatError(f"must be JSON (the ISSUES.json `maslow qa --out` writes), got {e}", path=path) from None
    if not isinstance(data, list):
        raise FormatError(f"must be a JSON list of findings (ISSUES.json), got a {type(data).__name__}", path=path)
    try:
        parse_findings(data)
    except FormatError as e:
        raise FormatError(str(e), path=path) from None
    return data


def parse_findings(findings: Sequence[Mapping[str, Any]]) -> dict[int, Finding]:
    """The findings by key (rank), their fields checked.

    Raises:
        FormatError: a record without a usable ``rank``, ``type``, row or suggestion, or with a ``score`` that is not
        a finite number (null or missing: none; names the record and field).
    """
    out: dict[int, Finding] = {}
    for i, f in enumerate(findings):
        where = f"findings[{i}]"
        if not isinstance(f, Mapping):
            raise FormatError(f"must be a finding (a JSON object), got {type(f).__name__}", record=where)
        key = f.get("rank")
        if not _is_int(key) or key < 1:
            raise FormatError(f"must be a rank (an integer >= 1), got {key!r}", record=where, field="rank")
        where = f"{where} (rank {key})"
        if key in out:
            raise FormatError(f"ranks must be unique, got {key} twice", record=where, field="rank")
        typ = f.get("type")
        if not isinstance(typ, str) or not typ:
            raise FormatError(f"must be a finding type, got {typ!r}", record=where, field="type")
        rows = []
        for name in ("image_row", "annotation_row", "other_row"):
            v = f.get(name)
            if v is not None and (not _is_int(v) or v < -1):
                raise FormatError(f"must be a row (an integer; -1 or null: none), got {v!r}", record=where, field=name)
            rows.append(-1 if v is None else int(v))
        score = f.get("score")
        if score is not None and (not isinstance(score, int | float | np.integer | np.floating)
                                  or isinstance(score, bool) or not np.isfinite(score)):
            raise FormatError(f"must be a finite number or null, got {score!r}", record=where, field="score")
        sug = f.get("suggestion")
        if sug is not None and not isinstance(sug, Mapping):
            raise FormatError(f"must be an object or null, got {type(sug).__name__}", record=where,
                              field="suggestion")
        sug = sug or {}
        out[int(key)] = Finding(
            key=int(key), type=typ, image=rows[0], ann=rows[1], file_name=_opt_str(f, "file_name", where),
            cls=_opt_str(f, "class", where), image_id=f.get("image_id"), annotation_id=f.get("annotation_id"),
            sug_class=_opt_str(sug, "class", where, "suggestion.class"), sug_box=_read_box(sug.get("box_xyxy"), where),
            sug_kp=_read_points(sug.get("keypoints"), where), sug_text=str(sug.get("text") or ""), other=rows[2],
            other_id=f.get("other_id"), sug_poly=_read_polygon(sug.get("polygon"), where))
    return out


def check_findings_match(truth: Dataset, findings: Mapping[int, Finding]) -> None:
    """Refuse findings computed on another version of ``truth``: each finding's image row must hold its
    ``file_name``, its annotation row (and ``other_row``) must be an annotation of that image, the first of its
    ``class``, and the ids (where the truth has COCO ids) must be the finding's.

    Raises:
        InvalidDatasetError: the first finding that does not match, with the number that do not.
    """
    names = truth.schema.names
    a, paths = truth.annotations, truth.images.path
    img_ids, ann_ids = truth.images.extra.get("coco_id"), a.extra.get("coco_id")
    bad: list[str] = []
    for f in findings.values():
        why = None
        if f.image >= truth.n_images:
            why = f"image_row {f.image} must be a row of the truth's {truth.n_images} images"
        elif f.image >= 0 and f.file_name is not None and str(paths[f.image]) != f.file_name:
            why = f"image_row {f.image} must be {f.file_name!r}, got {paths[f.image]!r}"
        elif (f.image >= 0 and img_ids is not None and (_is_int(f.image_id) or isinstance(f.image_id, str))
              and _id(img_ids[f.image]) != f.image_id):
            why = f"image_row {f.image} must have image_id {f.image_id!r}, got {_id(img_ids[f.image])!r}"
        elif f.ann >= truth.n_annotations:
            why = f"annotation_row {f.ann} must be a row of the truth's {truth.n_annotations} annotations"
        elif f.ann >= 0 and int(a.image[f.ann]) != f.image:
            why = f"annotation_row {f.ann} must be an annotation of image_row {f.image}, got image {a.image[f.ann]}"
        elif f.ann >= 0 and f.cls is not None and names[int(a.label[f.ann])] != f.cls:
            why = f"annotation_row {f.ann} must be a {f.cls!r}, got {names[int(a.label[f.ann])]!r}"
        elif f.ann >= 0 and ann_ids is not None and _is_int(f.annotation_id) and \
                _id(ann_ids[f.ann]) != f.annotation_id:
            why = f"annotation_row {f.ann} must have annotation_id {f.annotation_id}, got {_id(ann_ids[f.ann])}"
        elif f.other >= truth.n_annotations:
            why = f"other_row {f.other} must be a row of the truth's {truth.n_annotations} annotations"
        elif f.other >= 0 and int(a.image[f.other]) != f.image:
            why = f"other_row {f.other} must be an annotation of image_row {f.image}, got image {a.image[f.other]}"
        elif f.other >= 0 and ann_ids is not None and _is_int(f.other_id) and _id(ann_ids[f.other]) != f.other_id:
            why = f"other_row {f.other} must have annotation_id {f.other_id}, got {_id(ann_ids[f.other])}"
        if why is not None:
            bad.append(f"finding rank {f.key}: {why}")
    if bad:
        raise InvalidDatasetError(f"the findings are for another version of the truth ({truth.n_images} images, "
                                  f"{truth.n_annotations} annotations): {bad[0]} ({len(bad)} findings disagree). "
                                  "Review against the ground truth `maslow qa --gt` scored")


def truth_fingerprint(truth: Dataset) -> str:
    """A hash of what the findings' rows point into: the image paths and the annotations' images, classes and
    boxes (SHA-256, hex). A review session keeps it, so decisions made on one truth are not applied to another
    that the findings alone can't tell apart (an image or an annotation added after every finding's row)."""
    import hashlib

    a = truth.annotations
    h = hashlib.sha256(f"{truth.n_images}:{truth.n_annotations}:".encode())
    h.update("\n".join(map(str, truth.images.path.tolist())).encode("utf-8", "surrogatepass"))
    for col in (a.image, a.label, a.box):
        if col is not None:
            h.update(np.ascontiguousarray(col).tobytes())
    return h.hexdigest()


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _id(v: Any) -> Any:
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return int(v)
    return int(v) if _is_int(v) else v


def _opt_str(d: Mapping[str, Any], name: str, where: str, field: str | None = None) -> str | None:
    v = d.get(name)
    if v is not None and not isinstance(v, str):
        raise FormatError(f"must be a string or null, got {v!r}", record=where, field=field or name)
    return v


def _read_box(v: Any, where: str) -> np.ndarray | None:
    if v is None:
        return None
    try:
        b = np.asarray(v, np.float64)
    except (TypeError, ValueError):
        b = np.zeros(0)
    if b.shape != (4,) or not np.isfinite(b).all() or b[2] < b[0] or b[3] < b[1]:
        raise FormatError(f"must be [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1, or null, got {v!r}", record=where,
                          field="suggestion.box_xyxy")
    return b


def _read_polygon(v: Any, where: str) -> np.ndarray | None:
    """``suggestion.polygon``: one ring ``[[x1, y1, ..., xV, yV]]`` (V >= 3) of finite numbers, as (V, 2)."""
    if v is None:
        return None
    ring = v[0] if isinstance(v, list | tuple) and len(v) == 1 else None
    try:
        p = np.asarray(ring, np.float64) if isinstance(ring, list | tuple) else np.zeros(0)
    except (TypeError, ValueError):
        p = np.zeros(0)
    if p.ndim != 1 or len(p) < 6 or len(p) % 2 or not np.isfinite(p).all():
        raise FormatError(f"must be [[x1, y1, ..., xV, yV]] (one ring of 3 or more points) or null, got {str(v)[:80]}",
                          record=where, field="suggestion.polygon")
    return p.reshape(-1, 2)


def _read_points(v: Any, where: str) -> np.ndarray | None:
    if v is None:
        return None
    try:
        p = np.asarray([[np.nan if x is None else x for x in row] for row in v], np.float64)
    except (TypeError, ValueError):
        p = np.zeros(0)
    if p.ndim != 2 or p.shape[1] != 3 or not len(p):
        raise FormatError(f"must be [[x, y, v], ...] or null, got {str(v)[:80]}", record=where,
                          field="suggestion.keypoints")
    return p
