"""Which label types each annotation row carries, as boolean columns (shared by validate, infer and cost)."""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from maslow.core import masks as M
from maslow.core.polygons import Polygons
from maslow.core.tables import Annotations
from maslow.core.types import BoolArray, IntArray, is_unset

T = TypeVar("T", np.ndarray, Polygons)

LABEL_TYPES = ("box", "mask", "polygon", "keypoints", "tag")


def present(col: np.ndarray | Polygons | None, n: int) -> BoolArray:
    """(n,) True where a mask or polygon column holds a value (None = unset)."""
    if col is None:
        return np.zeros(n, bool)
    if isinstance(col, Polygons):
        return ~col.null
    return np.fromiter((v is not None for v in col), bool, count=n)


def cleared(col: T, rows: BoolArray) -> T:
    """A mask or polygon column with ``rows`` set to None."""
    if isinstance(col, Polygons):
        return col.with_none(rows)
    new = col.copy()
    new[rows] = None
    return new


def label_type_columns(ann: Annotations) -> dict[str, BoolArray]:
    """Label type -> (n,) bool: the row carries that geometry; ``tag`` means no geometry at all."""
    n = len(ann)
    out = {
        "box": ann.has_box,
        "mask": present(ann.mask, n),
        "polygon": present(ann.polygon, n),
        "keypoints": keypoint_present(ann),
    }
    out["tag"] = ~(out["box"] | out["mask"] | out["polygon"] | out["keypoints"])
    return out


def derived_masks(ann: Annotations) -> BoolArray:
    """(n,) True where the row's mask is its own polygon rasterised (as pycocotools does, at the mask's size).

    Such a mask is the polygon held twice, not a second drawing: ``maslow.sample.shapes`` carries one on every
    object, and the COCO writer keeps only the polygon then.
    """
    n = len(ann)
    out = np.zeros(n, bool)
    if ann.mask is None or ann.polygon is None:
        return out
    for r in np.flatnonzero(present(ann.mask, n) & present(ann.polygon, n)).tolist():
        mask, poly = ann.mask[r], ann.polygon[r]
        h, w = (int(v) for v in mask["size"])
        out[r] = poly is not None and M.from_polygons(poly, h, w)["counts"] == M.compress(mask)["counts"]
    return out


def keypoint_present(ann: Annotations) -> BoolArray:
    """(n,) True where the row has at least one keypoint coordinate."""
    if ann.keypoints is None or ann.keypoints.shape[1] == 0:
        return np.zeros(len(ann), bool)
    out: BoolArray = np.logical_not(np.isnan(ann.keypoints[:, :, 0]).all(axis=1))
    return out


def attribute_present(col: np.ndarray) -> BoolArray:
    """(n,) True where an attribute column holds a value (None and NaN are unset, as ``core.types.is_unset``)."""
    return np.fromiter((not is_unset(v) for v in col), bool, count=len(col))


def polygon_vertices(ann: Annotations) -> IntArray:
    """(n,) number of polygon vertices per row (0 without a polygon)."""
    if ann.polygon is None:
        return np.zeros(len(ann), np.int64)
    return ann.polygon.n_vertices()
