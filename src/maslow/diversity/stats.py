"""Descriptive statistics of a Dataset: what is in it, per class and split.

Size buckets follow COCO's thresholds on the *annotation area*, the area COCO evaluation (``maslow.metrics``,
pycocotools) compares with its APs/APm/APl ranges: small < 32², medium < 96², large otherwise. The annotation
area is the ``area`` field read from COCO (``annotations.extra["area"]``, used by every iouType, bbox included),
else the segment's pixels (mask area, or polygons rasterised as pycocotools does, their shoelace area when the
image size is unknown), else the box's ``w x h``; annotations without any (tags) and semantic classes have no
size bucket. Where no ``area`` is given, bbox evaluation uses the box's ``w x h`` for a polygon or mask too (so
such buckets follow segm AP). An area of exactly 32² or 96² falls in the upper bucket here; COCO evaluation
counts it in both ranges. Crowd regions are counted (COCO evaluation ignores them). Label types count the
geometry each annotation carries (an annotation with a polygon and a box counts in both); ``tag`` is an
annotation without geometry.

Semantic classes (``ClassDef.kind == "semantic"``, or every class when the schema's task is
``semantic_segmentation``) are stuff: one annotation is one class's region in one image, so their annotation
counts say little (at most one per image) and their size is measured in *pixels*. The pixels of an annotation
are its mask's area (pycocotools' RLE area), else its polygons rasterised as pycocotools does (the shoelace area
when the image size is unknown), else its box area, else 0; an annotation's *image pixels* are its mask's
``height x width``, else its image's (unknown when that is 0). Crowd (ignored) regions count like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow.core import boxes as B
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.types import BoolArray, FloatArray, IntArray, distinct, is_unset

#: Upper bounds (inclusive) of the annotations-per-image histogram bins.
PER_IMAGE_BINS = (0, 1, 2, 5, 10, 20, 50, 100)
#: What the size buckets measure (``DatasetStats.size_area``, ``to_dict()["size_area"]``).
SIZE_AREA = "annotation area (COCO 'area' field, else segment pixels, else box w x h), as COCO APs/APm/APl"


@dataclass(frozen=True)
class DatasetStats:
    """Counts of a dataset.

    Attributes:
        names: class names, aligned with every ``*_per_class`` array.
        splits: split names (``""`` = unassigned), aligned with the split axis.
        n_images, n_annotations: totals.
        images_per_split: (s,) images in each split.
        annotations_per_class: (k,) annotations of each class.
        images_per_class: (k,) images holding at least one annotation of the class.
        annotations_per_class_split: (k, s).
        per_image_bins: histogram bin labels; ``per_image_hist``: images per bin.
        per_image_mean, per_image_median, per_image_max: annotations per image.
        n_empty_images: images without annotations.
        size_buckets: ("small", "medium", "large"); ``size_per_class``: (k, 3) annotations per class and bucket
            of annotation area (see the module docstring; ``size_area`` names it).
        label_types: label type -> annotations carrying it (box, polygon, mask, keypoints, tag, crowd, scored).
        attributes: attribute -> value -> count (values as str; unset values, None or NaN, not counted).
        sources: annotation source -> count.
        semantic: (k,) bool, the classes measured in pixels (see the module docstring).
        pixels_per_class: (k,) float64 pixels of each semantic class (NaN for object classes).
        pixels_per_class_split: (k, s) the same per split.
    """

    names: tuple[str, ...]
    splits: tuple[str, ...]
    n_images: int
    n_annotations: int
    images_per_split: IntArray
    annotations_per_class: IntArray
    images_per_class: IntArray
    annotations_per_class_split: IntArray
    per_image_bins: tuple[str, ...]
    per_image_hist: IntArray
    per_image_mean: float
    per_image_median: float
    per_image_max: int
    n_empty_images: int
    size_buckets: tuple[str, ...]
    size_per_class: IntArray
    label_types: dict[str, int]
    attributes: dict[str, dict[str, int]]
    sources: dict[str, int]
    semantic: BoolArray
    pixels_per_class: FloatArray
    pixels_per_class_split: FloatArray
    size_area: str = SIZE_AREA

    @property
    def pixel_share(self) -> FloatArray:
        """(k,) each semantic class's share of the pixels of all semantic classes (NaN for object classes, and
        for all when no semantic class has a pixel)."""
        total = float(np.nansum(self.pixels_per_class))
        if not total:
            return np.full(len(self.names), np.nan)
        return self.pixels_per_class / total

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (used by ``--json``); pixel fields are null for object classes, the annotations per image
        (mean, median, max) null for a dataset without images."""
        share = self.pixel_share
        return {
            "n_images": self.n_images,
            "n_annotations": self.n_annotations,
            "n_empty_images": self.n_empty_images,
            "size_area": self.size_area,
            "splits": {s or "(none)": int(n) for s, n in zip(self.splits, self.images_per_split, strict=True)},
            "classes": [
                {
                    "name": name,
                    "annotations": int(self.annotations_per_class[k]),
                    "images": int(self.images_per_class[k]),
                    "per_split": {
                        s or "(none)": int(self.annotations_per_class_split[k, j]) for j, s in enumerate(self.splits)
                    },
                    "sizes": {b: int(self.size_per_class[k, j]) for j, b in enumerate(self.size_buckets)},
                    "semantic": bool(self.semantic[k]),
                    "pixels": _number(self.pixels_per_class[k]),
                    "pixel_share": _number(share[k]),
                    "pixels_per_split": {s or "(none)": _number(self.pixels_per_class_split[k, j])
                                         for j, s in enumerate(self.splits)} if self.semantic[k] else None,
                }
                for k, name in enumerate(self.names)
            ],
            "annotations_per_image": {  # null (not NaN, which JSON lacks) when there is no image
                "mean": None if np.isnan(self.per_image_mean) else self.per_image_mean,
                "median": None if np.isnan(self.per_image_median) else self.per_image_median,
                "max": self.per_image_max if self.n_images else None,
                "histogram": dict(zip(self.per_image_bins, self.per_image_hist.tolist(), strict=True)),
            },
            "label_types": dict(self.label_types),
            "attributes": {k: dict(v) for k, v in self.attributes.items()},
            "sources": dict(self.sources),
        }


def _bin_labels() -> tuple[str, ...]:
    out, lo = [], 0
    for hi in PER_IMAGE_BINS:
        out.append(str(hi) if hi == lo else f"{lo}-{hi}")
        lo = hi + 1
    out.append(f">{PER_IMAGE_BINS[-1]}")
    return tuple(out)


def _number(x: float) -> float | int | None:
    """A pixel count for JSON: None for NaN, an int when whole (mask areas are)."""
    if np.isnan(x):
        return None
    return int(x) if float(x).is_integer() else float(x)


def semantic_classes(schema: LabelSchema) -> BoolArray:
    """(k,) bool: the classes measured in pixels (``kind == "semantic"``, or all when the task is semantic)."""
    every = schema.task is Task.SEMANTIC_SEGMENTATION
    return np.array([every or c.kind == "semantic" for c in schema.classes], bool)


def annotation_pixels(ds: Dataset, semantic: BoolArray) -> tuple[FloatArray, FloatArray]:
    """Pixels of each annotation of a semantic class and of the image it lies on (see the module docstring).

    Args:
        ds: the dataset.
        semantic: (k,) bool, the classes to measure (``semantic_classes(ds.schema)``).

    Returns:
        (n,) float64 pixels of each annotation, NaN for object classes; (n,) float64 pixels of its image (its
        mask's ``height x width``, else the image's), NaN for object classes and unknown image sizes.

    Example:
        >>> from maslow.core import Annotations, Dataset, Images, LabelSchema, masks
        >>> sky = masks.encode(np.eye(3, 4, dtype=bool))
        >>> ds = Dataset(LabelSchema.from_names(["sky"], task="semantic_segmentation"),
        ...              Images(path=["a.png"], width=[4], height=[3]), Annotations(image=[0], label=[0], mask=[sky]))
        >>> [x.tolist() for x in annotation_pixels(ds, semantic_classes(ds.schema))]
        [[3.0], [12.0]]
    """
    a, im = ds.annotations, ds.images
    n = len(a)
    pixels, canvas = np.full(n, np.nan), np.full(n, np.nan)
    rows = np.flatnonzero(semantic[a.label]) if n and len(semantic) else np.zeros(0, np.int64)
    if not len(rows):
        return pixels, canvas
    h, w = im.height[a.image[rows]].astype(np.float64), im.width[a.image[rows]].astype(np.float64)
    canvas[rows] = np.where((h > 0) & (w > 0), h * w, np.nan)
    pixels[rows] = 0.0
    with_mask = [int(r) for r in rows if a.mask is not None and a.mask[r] is not None]
    if with_mask:
        rles = [a.mask[r] for r in with_mask]  # type: ignore[index]
        pixels[with_mask] = M.area(rles)
        canvas[with_mask] = [float(int(r["size"][0]) * int(r["size"][1])) for r in rles]
    done = np.zeros(n, bool)
    done[with_mask] = True
    assert a.box is not None
    for r in rows[~done[rows]].tolist():
        poly = a.polygon[r] if a.polygon is not None else None
        hi, wi = int(im.height[a.image[r]]), int(im.width[a.image[r]])
        if poly:
            pixels[r] = (M.area([M.from_polygons(poly, hi, wi)])[0] if hi > 0 and wi > 0
                         else sum(M.polygon_area(p) for p in poly))
        elif a.has_box[r]:
            pixels[r] = float(B.area(a.box[r:r + 1])[0])
    return pixels, canvas


def _float_column(col: np.ndarray | None, n: int, width: int | None = None) -> FloatArray:
    """An extra column as float64 (NaN where unset or not a number); all NaN when there is none."""
    shape = (n,) if width is None else (n, width)
    if col is None:
        return np.full(shape, np.nan)
    if col.dtype != object:
        return np.array(col, np.float64).reshape(shape)  # a copy: extra columns are read-only
    out = np.full(shape, np.nan)
    for i, v in enumerate(col.tolist()):
        if v is not None and not isinstance(v, str):
            try:
                out[i] = v
            except (TypeError, ValueError):
                continue  # not a number: unset
    return out


def annotation_areas(ds: Dataset) -> FloatArray:
    """(n,) the area of each annotation as COCO evaluation reads it for its size ranges (see the module
    docstring): the ``area`` field, else the segment's pixels, else the box's ``w x h``; NaN without any.

    Example:
        >>> from maslow.core import Annotations, Dataset, Images, LabelSchema
        >>> ds = Dataset(LabelSchema.from_names(["a"]), Images(path=["x.jpg"], width=[10], height=[10]),
        ...              Annotations(image=[0, 0], label=[0, 0], box=[[0, 0, 4, 5], [0, 0, 2, 2]],
        ...                          extra={"area": np.array([12.5, np.nan])}))
        >>> annotation_areas(ds).tolist()
        [12.5, 4.0]
    """
    a, im = ds.annotations, ds.images
    n = len(a)
    area = _float_column(a.extra.get("area"), n)
    todo = ~np.isfinite(area)
    if a.mask is not None:
        with_mask = [r for r in np.flatnonzero(todo).tolist() if a.mask[r] is not None]
        if with_mask:
            area[with_mask] = M.area([a.mask[r] for r in with_mask])
            todo[with_mask] = False
    if a.polygon is not None:
        for r in np.flatnonzero(todo).tolist():
            poly = a.polygon[r]
            if not poly:
                continue
            hi, wi = int(im.height[a.image[r]]), int(im.width[a.image[r]])
            area[r] = (M.area([M.from_polygons(poly, hi, wi)])[0] if hi > 0 and wi > 0
                       else sum(M.polygon_area(p) for p in poly))
            todo[r] = False
    if a.box is not None and todo.any():
        rows = np.flatnonzero(todo & a.has_box)
        raw = a.extra.get(B.COCO_BBOX)
        xywh = B.as_read_xywh(a.box[rows], None if raw is None else _float_column(raw, n, 4)[rows])[0]
        area[rows] = xywh[:, 2] * xywh[:, 3]  # as pycocotools: w x h of the box as read
    return area


def dataset_stats(ds: Dataset) -> DatasetStats:
    """Counts per class and split, annotations per image, size buckets (of annotation area, as COCO's
    APs/APm/APl), label types in use, and the pixels of semantic classes.

    Example:
        >>> from maslow.sample import shapes
        >>> s = dataset_stats(shapes(8, seed=0))
        >>> int(s.annotations_per_class.sum()) == s.n_annotations
        True
    """
    semantic = semantic_classes(ds.schema)
    return stats_with_pixels(ds, semantic, annotation_pixels(ds, semantic)[0])


def stats_with_pixels(ds: Dataset, semantic: BoolArray, pixels: FloatArray,
                      areas: FloatArray | None = None) -> DatasetStats:
    """``dataset_stats`` from pixels already measured by ``annotation_pixels`` (``balance`` measures them once),
    and areas by ``annotation_areas`` (measured here when None; all NaN: no size buckets)."""
    a, im = ds.annotations, ds.images
    k = len(ds.schema.classes)
    split = im.split.astype(str) if im.split is not None else np.full(len(im), "")
    splits, split_idx = np.unique(split, return_inverse=True)
    n_s = len(splits)
    per_class = np.bincount(a.label, minlength=k)
    pairs = distinct(a.image * k + a.label) if len(a) else np.zeros(0, np.int64)
    images_per_class = np.bincount(pairs % k, minlength=k) if k else np.zeros(0, np.int64)
    cs = np.zeros((k, n_s), np.int64)
    if len(a):
        np.add.at(cs, (a.label, split_idx[a.image]), 1)
    per_image = np.bincount(a.image, minlength=len(im))
    edges = np.asarray(PER_IMAGE_BINS)
    hist = np.bincount(np.searchsorted(edges, per_image, side="left"), minlength=len(edges) + 1)
    assert a.box is not None
    has_box = a.has_box
    bucket = B.size_bucket(annotation_areas(ds) if areas is None else areas)
    sized = ~semantic[a.label] if len(a) else np.zeros(0, bool)
    buckets = ("small", "medium", "large")
    size = np.zeros((k, 3), np.int64)
    for j, b in enumerate(buckets):
        sel = sized & (bucket == b)
        size[:, j] = np.bincount(a.label[sel], minlength=k)
    label_types = {
        "box": int(has_box.sum()),
        "polygon": 0 if a.polygon is None else int(a.polygon.present.sum()),
        "mask": 0 if a.mask is None else int(sum(m is not None for m in a.mask)),
        "keypoints": 0 if a.keypoints is None else int(
            (~np.isnan(a.keypoints[:, :, 2]) & (np.nan_to_num(a.keypoints[:, :, 2]) > 0)).any(1).sum()),
        "crowd": int(a.iscrowd.sum()) if a.iscrowd is not None else 0,
        "scored": 0 if a.score is None else int((~np.isnan(a.score)).sum()),
    }
    geom = has_box.copy()
    if a.polygon is not None:
        geom |= a.polygon.present
    if a.mask is not None:
        geom |= np.array([m is not None for m in a.mask], bool)
    label_types["tag"] = int((~geom).sum())
    pix = np.zeros((k, n_s))
    if len(a):
        sem_rows = semantic[a.label]
        np.add.at(pix, (a.label[sem_rows], split_idx[a.image[sem_rows]]), pixels[sem_rows])
    pix[~semantic] = np.nan
    attributes = {}
    for name, col in a.attributes.items():
        vals = [str(v) for v in col.tolist() if not is_unset(v)]
        attributes[name] = _value_counts(vals)
    return DatasetStats(
        names=ds.schema.names,
        splits=tuple(str(s) for s in splits),
        n_images=len(im),
        n_annotations=len(a),
        images_per_split=np.bincount(split_idx, minlength=n_s),
        annotations_per_class=per_class,
        images_per_class=images_per_class,
        annotations_per_class_split=cs,
        per_image_bins=_bin_labels(),
        per_image_hist=hist,
        per_image_mean=float(per_image.mean()) if len(im) else float("nan"),
        per_image_median=float(np.median(per_image)) if len(im) else float("nan"),
        per_image_max=int(per_image.max()) if len(im) else 0,
        n_empty_images=int((per_image == 0).sum()),
        size_buckets=buckets,
        size_per_class=size,
        label_types=label_types,
        attributes=attributes,
        sources=_value_counts([] if a.source is None else a.source.tolist()),
        semantic=semantic,
        pixels_per_class=np.where(semantic, pix.sum(axis=1), np.nan),  # the sum of no split is 0, not NaN
        pixels_per_class_split=pix,
    )


def _value_counts(values: list[Any]) -> dict[str, int]:
    if not values:
        return {}
    u, c = np.unique(np.asarray([str(v) for v in values], dtype=str), return_counts=True)
    return {str(x): int(n) for x, n in zip(u.tolist(), c.tolist(), strict=True)}
