"""The Dataset: a label schema plus the images and annotations tables.

Ground truth, predictions, pseudo-labels and synthetic labels are all Datasets; predictions carry ``score``
and every annotation its ``source``. Methods here are structural only; every analysis is a function elsewhere.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.polygons import Polygons
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import BoolArray, IntArray, Rng, frozen, obj_array
from maslow.errors import InvalidDatasetError


@dataclass(frozen=True, eq=False, repr=False)  # its own __repr__ (a summary)
class Dataset:
    """A label schema, an images table and an annotations table.

    Attributes:
        schema: classes, attributes and task(s); ``annotations.label`` indexes ``schema.classes``.
        images: m rows; ``images.path`` is relative to ``root``.
        annotations: n rows sorted by ``image`` (a row of ``images``).
        root: base folder of the image files, or None when unknown.
        info: dataset-level metadata (JSON values) kept from the source so that writing the same format gives it
            back, by format: ``{"coco": {"info": {...}, "licenses": [...], ...}}`` holds a COCO file's top-level
            keys other than images, annotations and categories. Writers of other formats note what they can't hold.
    """

    schema: LabelSchema
    images: Images
    annotations: Annotations
    root: Path | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.root is not None and not isinstance(self.root, Path):
            object.__setattr__(self, "root", Path(self.root))
        if not isinstance(self.info, Mapping) or not all(isinstance(k, str) for k in self.info):
            raise InvalidDatasetError(f"info must be a mapping with text keys, got {type(self.info).__name__}")
        a, m, k = self.annotations, len(self.images), len(self.schema.classes)
        if len(a):
            if a.image[-1] >= m or a.image[0] < 0:
                r = int(np.flatnonzero((a.image >= m) | (a.image < 0))[0])
                raise InvalidDatasetError(
                    f"annotations.image row {r}: must be a row of images (0..{m - 1}), got {a.image[r]}"
                )
            bad = np.flatnonzero(a.label >= k)
            if bad.size:
                raise InvalidDatasetError(
                    f"annotations.label row {bad[0]}: must index schema.classes (0..{k - 1}), got "
                    f"{a.label[bad[0]]} ({bad.size} rows)"
                )

    # -- sizes -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_images(self) -> int:
        return len(self.images)

    @property
    def n_annotations(self) -> int:
        return len(self.annotations)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.n_images} images, {self.n_annotations} annotations, "
            f"{len(self.schema.classes)} classes, task={self.schema.task.value}, root={self.root})"
        )

    def image_slices(self) -> IntArray:
        """(m + 1,) offsets: annotations of image i are rows ``[s[i], s[i+1])`` (read-only; computed once per
        Dataset, so a loop over images may call it per image)."""
        return self._slices

    def crowd_only_classes(self) -> BoolArray:
        """(k,) True for the classes with annotations that are all crowd regions: the ignore (void) class of label
        maps, which ``read_masks`` marks so, and which metrics and balance leave out."""
        a, k = self.annotations, len(self.schema.classes)
        if not len(a):
            return np.zeros(k, bool)
        assert a.iscrowd is not None
        n_crowd = np.bincount(a.label, weights=a.iscrowd, minlength=k)
        return np.asarray((n_crowd > 0) & (n_crowd == np.bincount(a.label, minlength=k)))

    @functools.cached_property
    def _slices(self) -> IntArray:
        return frozen(np.searchsorted(self.annotations.image, np.arange(self.n_images + 1), side="left"))

    # -- structure ---------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> Dataset:
        """A copy with some fields replaced (``schema``, ``images``, ``annotations``, ``root``, ``info``)."""
        return replace(self, **changes)

    def select(self, rows: BoolArray | IntArray | Sequence[int]) -> Dataset:
        """Keep the annotation rows given by a boolean mask or sorted indexes; images are unchanged."""
        idx = _as_index(rows, self.n_annotations, "select")
        if len(idx) > 1 and np.any(np.diff(idx) < 0):
            idx = np.sort(idx, kind="stable")
        return replace(self, annotations=self.annotations.take(idx))

    def select_images(self, rows: BoolArray | IntArray | Sequence[int]) -> Dataset:
        """Keep the images given by a mask or indexes (in that order), with their annotations.

        Each image keeps its annotation rows in their order; an index listed twice (bootstrap resampling)
        repeats the image with its annotations.
        """
        idx = _as_index(rows, self.n_images, "select_images")
        s = self.image_slices()
        count = s[idx + 1] - s[idx]
        offset = np.cumsum(count) - count
        order = np.repeat(s[idx] - offset, count) + np.arange(int(count.sum()), dtype=np.int64)
        return replace(
            self,
            images=self.images.take(idx),
            annotations=self.annotations.take(order, image=np.repeat(np.arange(len(idx), dtype=np.int64), count)),
        )

    def concat(self, other: Dataset) -> Dataset:
        """Images and annotations of both; classes are merged by name (this schema's order first); ``info`` of
        both, this dataset's where a key is in both."""
        schema, remap = _merge_schemas(self.schema, other.schema)
        images = _concat_images(self, other)
        ann_b = other.annotations
        a, b = self.annotations, ann_b
        label_b = remap[b.label] if len(b) else b.label
        ann = _concat_annotations(a, b, image_offset=self.n_images, label_b=label_b)
        return Dataset(schema=schema, images=images, annotations=ann, root=self.root or other.root,
                       info={**other.info, **self.info})

    def split(
        self,
        fractions: Mapping[str, float] | None = None,
        *,
        rng: Rng = None,
        stratify: bool = True,
        group: str | None = "sequence",
    ) -> Dataset:
        """Assign ``images.split``: seeded, stratified by class, whole groups (sequences) kept together.

        Args:
            fractions: split name -> fraction of images, e.g. ``{"train": 0.8, "val": 0.2}`` (the default).
            rng: seed or generator.
            stratify: balance every class's annotations across splits (rarest classes placed first).
            group: an ``images.extra`` column whose equal values must share a split (video sequences);
                ignored when the column is absent.

        Returns:
            A new Dataset with the split column set; ``by_split()`` partitions it.
        """
        from maslow.core.split import assign_splits

        fractions = {"train": 0.8, "val": 0.2} if fractions is None else dict(fractions)
        groups = self.images.extra.get(group) if group else None
        names = assign_splits(self, fractions, rng=rng, stratify=stratify, groups=groups)
        return replace(self, images=replace(self.images, split=names))

    def by_split(self) -> dict[str, Dataset]:
        """One Dataset per value of ``images.split`` (``""`` for unassigned images)."""
        split = self.images.split
        assert split is not None
        names = list(dict.fromkeys(split.tolist()))
        return {s: self.select_images(np.flatnonzero(split == s)) for s in names}


def _as_index(rows: Any, n: int, where: str) -> IntArray:
    arr = np.asarray(rows)
    if arr.ndim != 1:
        raise InvalidDatasetError(f"{where}: rows must be 1-D, got shape {arr.shape}")
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise InvalidDatasetError(f"{where}: a boolean mask must have shape ({n},), got {arr.shape}")
        return np.flatnonzero(arr)
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind not in "iu":
        raise InvalidDatasetError(f"{where}: rows must be a boolean mask or integers, got dtype {arr.dtype}")
    if arr.min() < -n or arr.max() >= n:
        raise InvalidDatasetError(f"{where}: row indexes must be in 0..{n - 1}, got {arr.min()}..{arr.max()}")
    return np.where(arr < 0, arr + n, arr).astype(np.int64)


def _merge_schemas(a: LabelSchema, b: LabelSchema) -> tuple[LabelSchema, IntArray]:
    attrs = list(a.attributes) + [x for x in b.attributes if x.name not in {y.name for y in a.attributes}]
    tasks = a.tasks + tuple(t for t in b.tasks if t not in a.tasks)
    if a.names == b.names:
        return replace(a, attributes=tuple(attrs), tasks=tasks), np.arange(len(b.classes))
    classes = list(a.classes)
    remap = np.zeros(len(b.classes), np.int64)
    for i, c in enumerate(b.classes):
        if c.name in a:
            remap[i] = a.index(c.name)
        else:
            remap[i] = len(classes)
            classes.append(c)
    return replace(a, classes=tuple(classes), attributes=tuple(attrs), tasks=tasks), remap


def _rebase(paths: np.ndarray, src: Path | None, dst: Path | None) -> np.ndarray:
    if src is None or dst is None or Path(src).resolve() == Path(dst).resolve():
        return paths
    out = [Path(os.path.relpath(Path(src) / p, dst)).as_posix() for p in paths.tolist()]
    return obj_array(out)


def _fill(a: np.ndarray | None, n: int, like: np.ndarray) -> np.ndarray:
    """Column ``a`` of length n, or a filler shaped like ``like``: NaN (floats), -1 (ints), False, None."""
    if a is not None:
        return a
    shape = (n, *like.shape[1:])
    if like.dtype.kind in "fc":
        return np.full(shape, np.nan, like.dtype)
    if like.dtype.kind == "b":
        return np.full(shape, False)
    if like.dtype.kind in "iu":
        return np.full(shape, -1, like.dtype if like.dtype.kind == "i" else np.int64)
    return np.full(shape, None, dtype=object)


def _cat(a: np.ndarray | None, b: np.ndarray | None, na: int, nb: int) -> np.ndarray | None:
    if a is None and b is None:
        return None
    like = a if a is not None else b
    assert like is not None
    fa, fb = _fill(a, na, like), _fill(b, nb, like)
    if fa.dtype != fb.dtype and (fa.dtype == object or fb.dtype == object):
        fa, fb = fa.astype(object), fb.astype(object)
    return np.concatenate([fa, fb])


def _cat_map(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], na: int, nb: int) -> dict[str, np.ndarray]:
    out = {}
    for k in list(dict.fromkeys([*a, *b])):
        col = _cat(a.get(k), b.get(k), na, nb)
        assert col is not None
        out[k] = col
    return out


def _concat_images(x: Dataset, y: Dataset) -> Images:
    a, b = x.images, y.images
    na, nb = len(a), len(b)
    return Images(
        path=np.concatenate([a.path, _rebase(b.path, y.root, x.root)]),
        width=np.concatenate([a.width, b.width]),
        height=np.concatenate([a.height, b.height]),
        split=_cat(a.split, b.split, na, nb),
        extra=_cat_map(a.extra, b.extra, na, nb),
    )


def _pad_kp(k: np.ndarray | None, width: int) -> np.ndarray | None:
    if k is None or k.shape[1] == width:
        return k
    out = np.full((k.shape[0], width, 3), np.nan)
    out[:, : k.shape[1]] = k
    return out


def _concat_annotations(a: Annotations, b: Annotations, *, image_offset: int, label_b: IntArray) -> Annotations:
    na, nb = len(a), len(b)
    kw = max((k.shape[1] for k in (a.keypoints, b.keypoints) if k is not None), default=0)
    return Annotations(
        image=np.concatenate([a.image, b.image + image_offset]),
        label=np.concatenate([a.label, label_b]),
        box=_cat(a.box, b.box, na, nb),
        score=_cat(a.score, b.score, na, nb),
        mask=_cat(a.mask, b.mask, na, nb),
        polygon=None if a.polygon is None and b.polygon is None else Polygons.concat(
            [Polygons.none(n) if p is None else p for p, n in ((a.polygon, na), (b.polygon, nb))]),
        keypoints=_cat(_pad_kp(a.keypoints, kw), _pad_kp(b.keypoints, kw), na, nb),
        iscrowd=_cat(a.iscrowd, b.iscrowd, na, nb),
        attributes=_cat_map(a.attributes, b.attributes, na, nb),
        annotator=_cat(a.annotator, b.annotator, na, nb),
        source=_cat(a.source, b.source, na, nb),
        extra=_cat_map(a.extra, b.extra, na, nb),
    )
