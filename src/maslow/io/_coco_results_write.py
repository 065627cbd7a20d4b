"""Writing COCO results lists (``maslow.io.coco_results.write``), and the boxes of predictions without one (from
their mask or keypoints, as ``loadRes`` computes them), which the reader shares; see ``coco_results`` for the
conventions and ``_coco_obb`` for oriented boxes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maslow.core import boxes as B
from maslow.core import masks as M
from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.types import FloatArray
from maslow.io._coco_obb import BBOX_COLUMN as OBB_BBOX
from maslow.io._coco_obb import COLUMN as OBB_COLUMN
from maslow.io._coco_obb import for_write as oriented_for_write
from maslow.io._coco_obb import written_note
from maslow.io._coco_stream import no_gc
from maslow.io._coco_write import category_ids, image_ids
from maslow.io._common import ExportReport
from maslow.io._export import count_lost
from maslow.io.registry import Progress, Ticks

_CHUNK = 4096  # annotations turned into records and written at a time (the bytes don't depend on it)


def _mask_boxes(rles: list[dict[str, Any]]) -> FloatArray:
    """``masks.to_box``; RLEs read from a file are compressed already: straight to pycocotools (half the time)."""
    if not all(type(r["counts"]) is bytes for r in rles):
        return M.to_box(rles)
    b = np.asarray(M.coco_mask().toBbox(rles), dtype=np.float64).reshape(-1, 4)
    b[:, 2:] += b[:, :2]
    return b


def fill_boxes(box: FloatArray, mask: np.ndarray | None, kp: FloatArray | None,
                mask_box: FloatArray | None = None, kp_box: FloatArray | None = None) -> None:
    """Boxes of predictions without one, from the mask or the keypoints' extent (as ``loadRes`` does).

    ``mask_box``: (n, 4) ``toBbox`` of the masks where known already (the C reader's, bit for bit), NaN elsewhere;
    ``kp_box``: (n, 4) the keypoints' xyxy extents (the C reader's, NaN rows where none), used instead of ``kp``.
    """
    rows = np.flatnonzero(np.isnan(box[:, 0]))
    if rows.size == len(box) and mask_box is not None and not np.isnan(mask_box[:, 0]).any():  # no gathers
        box[:, :2] = mask_box[:, :2]
        np.add(mask_box[:, :2], mask_box[:, 2:], out=box[:, 2:])  # as _mask_boxes does
        return
    if rows.size and mask_box is not None:
        known = rows[~np.isnan(mask_box[rows, 0])]
        b = mask_box[known]  # a copy (fancy indexing)
        b[:, 2:] += b[:, :2]  # as _mask_boxes does
        box[known] = b
        rows = np.flatnonzero(np.isnan(box[:, 0]))
    if rows.size and mask is not None:
        has = np.fromiter((m is not None for m in mask[rows].tolist()), bool, rows.size)
        if has.any():
            box[rows[has]] = _mask_boxes(mask[rows[has]].tolist())
        rows = rows[~has]
    if rows.size and kp_box is not None:
        box[rows] = kp_box if rows.size == len(kp_box) else kp_box[rows]  # NaN rows (no keypoints) stay NaN
    elif rows.size and kp is not None:
        k = kp if rows.size == len(kp) else kp[rows]  # every row (keypoint results have no box): no gathered copy
        x, y = k[:, :, 0], k[:, :, 1]
        ext = np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], 1)
        part = np.flatnonzero(np.isnan(ext).any(axis=1))  # some or every value NaN: the extent of the rest
        if part.size:
            some = ~np.isnan(k[part]).all(axis=(1, 2))
            xp, yp = x[part[some]], y[part[some]]
            ext[part[some]] = np.stack([np.nanmin(xp, 1), np.nanmin(yp, 1), np.nanmax(xp, 1), np.nanmax(yp, 1)], 1)
            keep = np.ones(len(rows), bool)
            keep[part[~some]] = False
            rows, ext = rows[keep], ext[keep]
        box[rows] = ext


def write(ds: Dataset, dst: Path, *, obb: bool = False, progress: Progress | None = None) -> ExportReport:
    """Write the scored annotations of ``ds`` as a COCO results list (what ``COCO.loadRes`` reads), atomically.

    Every record has ``image_id``, ``category_id`` (the ids ``coco.write`` gives the truth), ``bbox`` and
    ``score``; ``segmentation`` (compressed RLE; polygons are rasterised) where the dataset has masks or
    polygons, ``keypoints`` where it has keypoints. Oriented boxes (read from ``obb``/``rbox``/``poly`` records, or
    with ``obb=True`` every polygon of one 4-point ring without a mask) are written as hotcoco's ``obb: [cx, cy, w,
    h, angle]`` instead of a ``segmentation`` (see ``_coco_obb``).

    Args:
        progress: called as ``progress(done, total)`` over the annotations (``total = n_annotations``; see
            ``registry.Ticks``).

    Returns:
        ExportReport; ``lost["unscored"]`` counts annotations without a score (not written), ``lost["tags"]``
        those without geometry, and the other counts what results can't hold (attributes, crowd flags, extras).
    """
    dst = Path(dst)
    a = ds.annotations
    n = len(a)
    rep = ExportReport(path=str(dst), format="coco-results", n_images=ds.n_images)
    score = a.score if a.score is not None else np.full(n, np.nan)
    scored = np.isfinite(score)
    box = a.box.copy() if a.box is not None else np.full((n, 4), np.nan)
    fill_boxes(box, a.mask, a.keypoints)
    if a.polygon is not None:
        for r in np.flatnonzero(np.isnan(box[:, 0]) & scored & a.polygon.present).tolist():
            box[r] = M.polygon_box(a.polygon[r] or [])
    geometry = np.isfinite(box[:, 0])
    written = scored & geometry
    if (~scored).any():
        rep.lost["unscored"] += int((~scored).sum())
    if (scored & ~geometry).any():
        rep.lost["tags"] += int((scored & ~geometry).sum())
    is_obb, obb_arr, bent = oriented_for_write(ds, force=obb)
    is_obb &= written
    counted = ds if OBB_COLUMN not in a.extra else ds.replace(annotations=a.with_columns(  # written as obb
        extra={k: v for k, v in a.extra.items() if k not in (OBB_COLUMN, OBB_BBOX)}))
    obb_bbox = np.asarray(a.extra[OBB_BBOX], bool) if OBB_BBOX in a.extra else np.zeros(n, bool)
    rep.lost.update(count_lost(counted, keep=("box", "score", "mask", "polygon", "keypoints", "source",
                                              "images.extra"), rows=written))
    if (n_bent := int((bent & is_obb).sum())):
        rep.lost["polygon"] += n_bent
    if (note := written_note(int(is_obb.sum()), n_bent)) is not None:
        rep.notes.append(note)
    img = image_ids(ds)[a.image].tolist()
    cat = category_ids(ds.schema)[a.label].tolist()
    xywh_arr = B.to_xywh(np.where(geometry[:, None], box, 0.0))
    if B.COCO_BBOX in a.extra:  # boxes as read, where not edited since: written back to the bit
        exact, same = B.as_read_xywh(box, np.asarray(a.extra[B.COCO_BBOX], np.float64))
        xywh_arr[same] = exact[same]
    xywh = xywh_arr.tolist()
    k_cls = np.asarray([len(c.keypoints) for c in ds.schema.classes] + [0], np.int64)
    if a.polygon is not None:
        no_mask = np.array([m is None for m in a.mask.tolist()], bool) if a.mask is not None else np.ones(n, bool)
        rasterised = int((written & ~is_obb & ~a.polygon.null & no_mask).sum())
        if rasterised:
            rep.notes.append(f"{rasterised} polygons written as RLE segmentations (what loadRes reads)")
    import json  # here: reading results doesn't need it

    tick = Ticks(progress, n)
    n_written = 0
    with no_gc(), atomic_path(dst) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("[")
        for s in range(0, n, _CHUNK):  # the bytes of json.dumps(records, separators=(",", ":")), a chunk at a time
            records: list[dict[str, Any]] = []
            for r in (np.flatnonzero(written[s:s + _CHUNK]) + s).tolist():
                rec: dict[str, Any] = {"image_id": img[r], "category_id": cat[r], "bbox": xywh[r],
                                       "score": float(score[r])}
                if is_obb[r]:  # a bbox only where read with one (see _coco_obb)
                    if not obb_bbox[r]:
                        del rec["bbox"]
                    rec["obb"] = obb_arr[r].tolist()
                elif (seg := _rle(ds, r)) is not None:
                    rec["segmentation"] = seg
                if a.keypoints is not None and not np.isnan(a.keypoints[r]).all():
                    k = int(k_cls[a.label[r]]) or a.keypoints.shape[1]
                    rec["keypoints"] = np.nan_to_num(a.keypoints[r, :k]).ravel().tolist()
                records.append(rec)
            if records:  # dumps, not dump: the C encoder
                f.write(("," if n_written else "") + json.dumps(records, separators=(",", ":"))[1:-1])
                n_written += len(records)
            tick(min(s + _CHUNK, n))
        f.write("]")
    tick.end()
    rep.n_annotations = n_written
    return rep


def _rle(ds: Dataset, r: int) -> dict[str, Any] | None:
    a = ds.annotations
    if a.mask is not None and a.mask[r] is not None:
        return M.to_json(M.compress(a.mask[r]))
    rings = a.polygon[r] if a.polygon is not None else None
    if rings:
        i = int(a.image[r])
        h, w = int(ds.images.height[i]), int(ds.images.width[i])
        if h > 0 and w > 0:
            return M.to_json(M.from_polygons(rings, h, w))
    return None
