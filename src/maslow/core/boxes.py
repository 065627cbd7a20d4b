"""Box conversions and geometry. Inside maslow a box is xyxy, absolute pixels, float64.

Glossary: ``xyxy`` = (x1, y1, x2, y2); ``xywh`` = (x, y, width, height) as in COCO; ``cxcywh`` = centre and
size as in YOLO (which also divides by the image size: ``normalized``).
"""

from __future__ import annotations

import numpy as np

from maslow.core.types import FloatArray

#: ``annotations.extra`` column with COCO boxes ``[x, y, w, h]`` exactly as read (``(n, 4)``), kept by the COCO
#: readers when neither ``x2 - x1`` nor ``to_xywh`` gives every ``w``/``h`` back to the bit (so IoUs computed
#: from the Dataset and files written from it match the file read)
COCO_BBOX = "coco_bbox"


def to_xywh(box: FloatArray) -> FloatArray:
    """(n, 4) xyxy -> xywh, width/height with the fewest decimals that give back x2/y2 exactly (x + w == x2):
    a box read as ``[0.1, 0.1, 0.2, 0.2]`` is written so, not as ``0.20000000000000004`` (what ``x2 - x1`` gives)."""
    box = np.asarray(box, np.float64).reshape(-1, 4)
    xy, end = box[:, :2], box[:, 2:]
    wh = end - xy
    out = wh.copy()
    todo = np.isfinite(wh)
    for d in range(16):
        if not todo.any():
            break
        cand = np.round(wh, d)
        ok = todo & (xy + cand == end)
        out[ok] = cand[ok]
        todo &= ~ok
    return np.concatenate([xy, out], axis=1)


def as_read_xywh(box: FloatArray, raw: FloatArray | None) -> tuple[FloatArray, np.ndarray]:
    """(n, 4) xywh of xyxy ``box``, taking ``w``/``h`` from ``raw`` (the boxes as read, ``COCO_BBOX``) where a row
    of it is consistent with ``box`` (``x1 == x``, ``y1 == y``, ``x + w == x2``, ``y + h == y2``: not edited since),
    and an (n,) bool of those rows."""
    box = np.asarray(box, np.float64).reshape(-1, 4)
    if raw is None:
        return xyxy_to_xywh(box), np.zeros(len(box), bool)
    raw = np.asarray(raw, np.float64).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        ok = ((raw[:, 0] == box[:, 0]) & (raw[:, 1] == box[:, 1])
              & (raw[:, 0] + raw[:, 2] == box[:, 2]) & (raw[:, 1] + raw[:, 3] == box[:, 3]))
    if ok.all():
        return raw, ok
    out = box.copy()
    np.subtract(box[:, 2:], box[:, :2], out=out[:, 2:])
    return np.where(ok[:, None], raw, out), ok


def inexact_xywh(xywh: FloatArray, box: FloatArray) -> bool:
    """True when some row's ``w``/``h`` (as read) is not given back exactly by ``x2 - x1`` / ``y2 - y1`` of
    ``box``, or by ``to_xywh(box)``: then the boxes as read must be kept (``COCO_BBOX``)."""
    finite = np.isfinite(box[:, 0])
    with np.errstate(invalid="ignore"):
        if bool((((box[:, 2:] - box[:, :2]) != xywh[:, 2:]).any(axis=1) & finite).any()):
            return True  # the common case (model boxes, decimals), found without copies
    box, xywh = box[finite], xywh[finite]
    return bool((to_xywh(box)[:, 2:] != xywh[:, 2:]).any())


def xywh_to_xyxy(b: FloatArray) -> FloatArray:
    """(n, 4) xywh -> xyxy."""
    out = np.array(b, dtype=np.float64).reshape(-1, 4)  # a copy; x2 = x + w and y2 = y + h in place
    out[:, 2] += out[:, 0]
    out[:, 3] += out[:, 1]
    return out


def xyxy_to_xywh(b: FloatArray) -> FloatArray:
    """(n, 4) xyxy -> xywh."""
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def cxcywh_to_xyxy(b: FloatArray) -> FloatArray:
    """(n, 4) centre-size -> xyxy."""
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    half = b[:, 2:] / 2
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def xyxy_to_cxcywh(b: FloatArray) -> FloatArray:
    """(n, 4) xyxy -> centre-size."""
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], axis=1)


def area(b: FloatArray) -> FloatArray:
    """(n,) area of xyxy boxes (NaN rows give NaN)."""
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """(n, m) intersection over union of xyxy boxes; 0 where the union is empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area(a)[:, None] + area(b)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return out


def clip(b: FloatArray, width: FloatArray, height: FloatArray) -> FloatArray:
    """Clip xyxy boxes to their images; ``width``/``height`` are (n,) or scalars."""
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4).copy()
    w = np.broadcast_to(np.asarray(width, np.float64), (len(b),))
    h = np.broadcast_to(np.asarray(height, np.float64), (len(b),))
    b[:, 0] = np.clip(b[:, 0], 0, w)
    b[:, 2] = np.clip(b[:, 2], 0, w)
    b[:, 1] = np.clip(b[:, 1], 0, h)
    b[:, 3] = np.clip(b[:, 3], 0, h)
    return b


def size_bucket(a: FloatArray) -> np.ndarray:
    """(n,) COCO size bucket of areas: 'small' (< 32^2), 'medium' (< 96^2), 'large'; '' for NaN."""
    a = np.asarray(a, dtype=np.float64)
    out = np.full(a.shape, "", dtype=object)
    ok = ~np.isnan(a)
    out[ok & (a < 32**2)] = "small"
    out[ok & (a >= 32**2) & (a < 96**2)] = "medium"
    out[ok & (a >= 96**2)] = "large"
    return out
