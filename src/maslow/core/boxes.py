"""Box conversions and geometry. Inside maslow a box is xyxy, absolute pixels, float64.

Glossary: ``xyxy`` = (x1, y1, x2, y2); ``xywh`` = (x, y, width, height) as in COCO; ``cxcywh`` = centre and
size as in YOLO (which also divides by the image size: ``normalized``).
"""

from __future__ import annotations

import numpy as np

from maslow.core.types import FloatArray


def xywh_to_xyxy(b: FloatArray) -> FloatArray:
    """(n, 4) xywh -> xyxy."""
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


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
