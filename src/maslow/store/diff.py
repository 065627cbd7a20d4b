"""What changed from one version of a dataset to another (``maslow diff``): ``diff_datasets(old, new)`` compares
images by path and annotations by content (image path, class name, box, crowd flag, score, polygon, mask,
keypoints, attributes, annotator and source), as multisets per class and per image, in vectorised passes (two
versions of 1,000,000 annotations in a second or two, each attribute adding a fraction of a second: a column's
values are grouped by a dict, not turned into a tuple per row). An optional column only one version has compares
as unset values in the other (a COCO reader drops the mask column when no RLE is left: the last one removed is one
annotation removed).

Metadata is compared too, so that two versions whose stored content differs never read as unchanged: the images'
``extra`` columns (format ids, license, URLs, capture dates, sequence/frame) of each image in both, by column; the
annotations' ``extra`` columns (``area``, format ids) of each annotation kept (the same content on the same image),
by column; the dataset's ``info`` and its image root. An ``extra`` column one version lacks compares as unset values
(None, NaN). Only the order of the rows is not a change (``reordered`` says when it differs)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.polygons import Polygons
from maslow.core.tables import Annotations
from maslow.core.types import is_unset


@dataclass(frozen=True, eq=False)
class DatasetDiff:
    """What changed from one dataset (a version) to another (``diff_datasets``).

    Attributes:
        n_images, n_annotations: (old, new) counts.
        images_added, images_removed: (a,) and (r,) str paths of images only in the new, only in the old dataset.
        images_changed: (c,) str paths of images in both whose record (size, split, metadata) or annotations
            changed, in the new dataset's order; ``added_per_image`` and ``removed_per_image``, (c,) int64, count
            their annotations added and removed, ``record_changed``, (c,) bool, marks a changed size, split or
            metadata, and ``metadata_per_image``, (c,) int64, counts their annotations kept whose metadata changed.
        n_added, n_removed: annotations added and removed, over every image (an edited annotation counts once in
            each: its old content removed, its new content added).
        classes_added, classes_removed: class names only in the new, only in the old schema.
        per_class: class name -> ``{"old", "new", "added", "removed"}`` annotation counts (classes with any).
        schema_changed: the schemas differ in more than their version (class or attribute definitions, their
            order, keypoint names, tasks, guidelines): ``maslow.ontology.diff_schemas`` says how.
        image_metadata: ``images.extra`` column -> (i,) str paths of the images in both whose value in it changed
            (new order); only columns with a change.
        annotation_metadata: ``annotations.extra`` column -> how many annotations kept (the same content on the
            same image in both) have another value in it; only columns with a change.
        info_changed: the keys of ``Dataset.info`` whose values differ, a level deep (``coco.info``,
            ``coco.licenses``).
        roots: (old, new) image root as text (None: none).
        reordered: the images, or an image's annotations, are listed in another order (not a change: a diff
            compares content; a version's content hash does change).
    """

    n_images: tuple[int, int]
    n_annotations: tuple[int, int]
    images_added: np.ndarray
    images_removed: np.ndarray
    images_changed: np.ndarray
    added_per_image: np.ndarray
    removed_per_image: np.ndarray
    record_changed: np.ndarray
    metadata_per_image: np.ndarray
    n_added: int
    n_removed: int
    classes_added: tuple[str, ...]
    classes_removed: tuple[str, ...]
    per_class: dict[str, dict[str, int]]
    schema_changed: bool = False
    image_metadata: dict[str, np.ndarray] = field(default_factory=dict)
    annotation_metadata: dict[str, int] = field(default_factory=dict)
    info_changed: tuple[str, ...] = ()
    roots: tuple[str | None, str | None] = (None, None)
    reordered: bool = False

    @property
    def root_changed(self) -> bool:
        return self.roots[0] != self.roots[1]

    @property
    def metadata_changed(self) -> bool:
        """Image or annotation metadata, ``info`` or the image root changed."""
        return bool(self.image_metadata or self.annotation_metadata or self.info_changed or self.root_changed)

    @property
    def unchanged(self) -> bool:
        """Nothing but the rows' order differs: the same images, annotations, schema, metadata, info and root."""
        return not (len(self.images_added) or len(self.images_removed) or len(self.images_changed)
                    or self.classes_added or self.classes_removed or self.schema_changed or self.metadata_changed)

    def to_dict(self, *, limit: int | None = None) -> dict[str, Any]:
        """JSON-safe; ``limit``: the most paths listed per list (the counts are always whole)."""
        def first(a: np.ndarray) -> list[Any]:
            return list(a[:limit].tolist())
        changed = zip(first(self.images_changed), first(self.added_per_image), first(self.removed_per_image),
                      first(self.record_changed), first(self.metadata_per_image), strict=True)
        return {
            "unchanged": self.unchanged, "n_images": dict(zip(("old", "new"), self.n_images, strict=True)),
            "n_annotations": dict(zip(("old", "new"), self.n_annotations, strict=True)),
            "n_annotations_added": self.n_added, "n_annotations_removed": self.n_removed,
            "n_images_added": len(self.images_added), "n_images_removed": len(self.images_removed),
            "n_images_changed": len(self.images_changed), "images_added": first(self.images_added),
            "images_removed": first(self.images_removed),
            "images_changed": [{"path": p, "added": a, "removed": r, "record_changed": c, "metadata": k}
                               for p, a, r, c, k in changed],
            "classes_added": list(self.classes_added), "classes_removed": list(self.classes_removed),
            "per_class": self.per_class, "schema_changed": self.schema_changed,
            "metadata_changed": self.metadata_changed,
            "image_metadata_changed": {c: {"n": len(p), "images": first(p)} for c, p in self.image_metadata.items()},
            "annotation_metadata_changed": dict(self.annotation_metadata),
            "n_annotations_metadata_changed": int(self.metadata_per_image.sum()),
            "info_changed": list(self.info_changed), "root_changed": self.root_changed,
            "root": dict(zip(("old", "new"), self.roots, strict=True)), "reordered": self.reordered,
        }


_U = np.uint64


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over a uint64 array (wrapping arithmetic): any changed bit changes about half the
    output's."""
    x = x + _U(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U(30))) * _U(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U(27))) * _U(0x94D049BB133111EB)
    return np.asarray(x ^ (x >> _U(31)))


def _bits(a: np.ndarray) -> np.ndarray:
    """Floats as uint64 bit patterns (+0.0 for -0.0, one NaN for every NaN)."""
    f = np.asarray(a, np.float64) + 0.0
    return np.ascontiguousarray(np.where(np.isnan(f), np.nan, f)).view(_U)


def _ids(values: Sequence[Any], vocab: dict[Any, int]) -> np.ndarray:
    """Each value's id in ``vocab`` (new values are added), as uint64."""
    return np.fromiter((vocab.setdefault(v, len(vocab)) for v in values), _U, count=len(values))


def _value_ids(col: np.ndarray, vocab: dict[Any, int], key: Callable[[Any], Any], *,
               typed: bool = False) -> np.ndarray:
    """(n,) the id in ``vocab`` of ``key(v)`` for each value of the object column ``col``, ``key`` called once per
    distinct value: the rows are grouped by a dict in C (``map``), not by a Python loop per row. ``typed``: values of
    other types stay apart (``True``, ``1`` and ``1.0`` are equal keys of a dict). An unhashable value (a list, a
    dict) falls back to a loop per row."""
    n = len(col)
    if n and col.strides == (0,):  # one value broadcast to every row (a source, an annotator)
        one = col[0]
        return np.full(n, vocab.setdefault(key(one), len(vocab)), _U)
    values = col.tolist()
    seen: dict[Any, int] = {}
    try:
        keys: Any = zip(map(type, values), values, strict=True) if typed else values
        codes = np.fromiter(map(seen.setdefault, keys, itertools.count()), np.int64, count=n)
    except TypeError:  # unhashable values
        return _ids([key(v) for v in values], vocab)
    lut = np.zeros(n, _U)  # codes are row numbers (the first row of each distinct value)
    lut[np.fromiter(seen.values(), np.int64, count=len(seen))] = [
        vocab.setdefault(key(k[1] if typed else k), len(vocab)) for k in seen]
    return np.asarray(lut[codes])


def _attribute_key(v: Any) -> Any:
    return None if is_unset(v) else (type(v).__name__, str(v))


def _mask_key(m: Any) -> Any:
    return None if m is None else (tuple(int(v) for v in m["size"]), _counts(m["counts"]))


#: the optional annotation columns hashed, in this order; a version without one hashes as if its rows were all unset
OPTIONAL = ("score", "keypoints", "polygon", "mask", "annotator")


def _row_keys(ds: Dataset, paths: dict[Any, int], names: dict[Any, int], attrs: Sequence[str],
              vocab: dict[Any, int], optional: Sequence[str] = OPTIONAL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key, path id, class id) per annotation: a 64-bit hash of all it holds but its format ids (``extra``), image
    and class by path and name, so two versions compare whatever their row order. ``optional`` and ``attrs``: the
    optional columns and the attributes either version has, hashed for both: a column this one lacks hashes as a
    column of unset values (NaN scores and keypoints, no polygon, no mask, no annotator, attribute None) would,
    so that a version without masks (none left) and one with a mask column compare row by row."""
    a = ds.annotations
    assert a.box is not None and a.iscrowd is not None and a.source is not None
    n = len(a)
    pid, cid = _ids(ds.images.path.tolist(), paths)[a.image], _ids(ds.schema.names, names)[a.label]
    cols = [*(_bits(a.box[:, j]) for j in range(4)), a.iscrowd.astype(_U),
            _value_ids(np.asarray(a.source), vocab, str)]
    for name in optional:
        cols.append(_optional_column(a, name, n, vocab))
    for name in attrs:  # a column one version lacks reads as unset there
        col = a.attributes.get(name)
        cols.append(np.full(n, vocab.setdefault(None, len(vocab)), _U) if col is None
                    else _value_ids(col, vocab, _attribute_key, typed=True))
    h = _mix(pid) ^ _mix(cid + _U(1 << 40))
    for c in cols:
        h = _mix(h ^ c)
    return h, pid, cid


def _optional_column(a: Annotations, name: str, n: int, vocab: dict[Any, int]) -> np.ndarray:
    """(n,) uint64: the hash of each row's value of the optional column ``name``, the same for an unset value
    (NaN, None, all-NaN keypoints, "" annotator) as for a column that is absent."""
    value = getattr(a, name)
    if name == "score":
        return _bits(np.full(n, np.nan) if value is None else value)
    if name == "keypoints":
        if value is None:
            return np.zeros(n, _U)
        flat = value.reshape(n, int(np.prod(value.shape[1:])))  # not -1: n may be 0
        h = np.full(n, _mix(np.asarray([flat.shape[1]], _U))[0], _U)
        bits = _bits(flat)
        for j in range(flat.shape[1]):
            h = _mix(h ^ bits[:, j])
        h[np.isnan(flat).all(axis=1)] = 0  # NaN rows: no keypoints, as when the column is absent
        return np.asarray(h)
    if name == "polygon":
        return np.ones(n, _U) if value is None else _polygon_hash(value)  # 1: a row without a polygon
    if name == "mask":
        none = vocab.setdefault(None, len(vocab))
        return np.full(n, none, _U) if value is None else _ids([_mask_key(m) for m in value.tolist()], vocab)
    if name == "annotator":
        return _value_ids(np.full(n, None, object) if value is None else np.asarray(value), vocab,
                          lambda v: ("annotator", v or ""))
    raise ValueError(f"unknown optional column {name!r}")


def _counts(c: Any) -> Any:
    """An RLE's counts as a hashable value (bytes, str or a list of run lengths)."""
    return c if isinstance(c, bytes | str) else tuple(int(v) for v in c)


def _polygon_hash(poly: Polygons) -> np.ndarray:
    """(n,) a hash of each polygon row: its vertices' bits by position, its ring lengths, None apart from ``[]``."""
    out = np.asarray(np.where(poly.null, _U(1), _U(2)) + poly.n_rings.astype(_U) * _U(1 << 20))
    if not len(poly.xy):
        return out
    ro, lengths = poly.ring_offsets, np.diff(poly.ring_offsets)
    v = _mix(_bits(poly.xy) ^ _mix(np.arange(len(poly.xy), dtype=_U) - np.repeat(ro[:-1], lengths).astype(_U)))
    starts = np.minimum(ro[:-1], len(v) - 1)  # an empty ring (last) must not index past v
    ring = _mix(np.where(lengths > 0, np.add.reduceat(v, starts), 0).astype(_U) ^ lengths.astype(_U))
    ring = ring * _mix(np.arange(len(ring), dtype=_U) - np.repeat(poly.row_offsets[:-1], poly.n_rings).astype(_U))
    has = poly.n_rings > 0
    rows = np.zeros(len(poly), _U)
    if has.any():
        rows[has] = np.add.reduceat(ring, poly.row_offsets[:-1][has])
    return np.asarray(out ^ rows)


def _cell_key(v: Any) -> Any:
    """An ``extra`` value as a hashable key: None when unset, an array by its bytes (``str`` abbreviates a long
    one), anything else as ``_attribute_key`` (its type and text)."""
    if isinstance(v, np.ndarray):
        return ("ndarray", v.dtype.str, v.shape, v.tobytes())
    return _attribute_key(v)


def _cell_hashes(col: np.ndarray | None, n: int, vocab: dict[Any, int]) -> np.ndarray:
    """(n,) uint64: a hash of each value of an ``extra`` column, 0 for an unset value (None, NaN, NaT) and for every
    row of a column that is absent, so that the two compare alike; values of other types differ (1, 1.0, True,
    "1"). A column of a vector per row, (n, ...), hashes its cells in order (unset when all are)."""
    if col is None:
        return np.zeros(n, _U)
    a = np.asarray(col)
    if a.ndim > 1:
        flat = a.reshape(n, int(np.prod(a.shape[1:])))
        h = np.full(n, _mix(np.asarray([vocab.setdefault(("shape", a.shape[1:]), len(vocab))], _U))[0], _U)
        unset = np.ones(n, bool)
        for j in range(flat.shape[1]):
            c = _cell_hashes(flat[:, j], n, vocab)
            h, unset = _mix(h ^ c), unset & (c == 0)
        return np.where(unset, _U(0), h)
    kind = a.dtype.kind
    if kind == "f":
        return np.where(np.isnan(a), _U(0), _mix(_mix(_bits(a)) ^ _U(1)))
    if kind in "iub":
        v = a.astype(_U) if kind == "u" else a.astype(np.int64).view(_U)
        return _mix(_mix(v) ^ _U(2 if kind != "b" else 3))
    if kind in "mM":
        v = a.view(np.int64)
        tag = _U(vocab.setdefault(("dtype", a.dtype.str), len(vocab)))
        return np.where(np.isnat(a), _U(0), _mix(_mix(v.view(_U)) ^ tag))
    ids = _value_ids(a.astype(object), vocab, _cell_key, typed=True)
    return np.where(ids == vocab.setdefault(None, len(vocab)), _U(0), _mix(ids + _U(1 << 32)))


def _kept_same(inv: np.ndarray, n_old: int, u: int, g_old: np.ndarray, g_new: np.ndarray) -> np.ndarray:
    """(u,) per distinct content key (``inv``: each row's, old rows first): how many of its rows in both versions
    also agree on what ``g`` hashes (the key and more), as multisets."""
    _, first, ginv = np.unique(np.concatenate([g_old, g_new]), return_index=True, return_inverse=True)
    k = len(first)
    same = np.minimum(np.bincount(ginv[:n_old], minlength=k), np.bincount(ginv[n_old:], minlength=k))
    return np.bincount(inv[first], weights=same, minlength=u).astype(np.int64)


def _annotation_metadata(old: Dataset, new: Dataset, k_old: np.ndarray, k_new: np.ndarray, inv: np.ndarray, u: int,
                         vocab: dict[Any, int]) -> tuple[np.ndarray, dict[str, int]]:
    """(u,) per distinct content key (``inv``: each row's, old rows first), how many of its annotations kept (in
    both) have other ``extra`` values; and per ``extra`` column with a change, how many annotations kept have
    another value in it."""
    n_old = len(k_old)
    kept = np.minimum(np.bincount(inv[:n_old], minlength=u), np.bincount(inv[n_old:], minlength=u))
    columns = sorted(set(old.annotations.extra) | set(new.annotations.extra))
    if not columns or not kept.any():
        return np.zeros(u, np.int64), {}
    e_old = {c: _cell_hashes(old.annotations.extra.get(c), n_old, vocab) for c in columns}
    e_new = {c: _cell_hashes(new.annotations.extra.get(c), len(k_new), vocab) for c in columns}
    f_old, f_new = k_old, k_new
    for c in columns:
        f_old, f_new = _mix(f_old ^ e_old[c]), _mix(f_new ^ e_new[c])
    per_key = kept - _kept_same(inv, n_old, u, f_old, f_new)
    per_column: dict[str, int] = {}
    if per_key.any():
        for c in columns:
            n = int((kept - _kept_same(inv, n_old, u, _mix(k_old ^ e_old[c]), _mix(k_new ^ e_new[c]))).sum())
            if n:
                per_column[c] = n
    return per_key, per_column


_MISSING = object()


def _info_changes(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "", depth: int = 2) -> list[str]:
    """The keys of two ``info`` mappings whose values differ (``depth`` levels deep: ``coco.licenses``)."""
    out: list[str] = []
    for key in [*old, *(k for k in new if k not in old)]:
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if depth > 1 and isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _info_changes(a, b, f"{prefix}{key}.", depth - 1)
        elif a is _MISSING or b is _MISSING or _json(a) != _json(b):
            out.append(f"{prefix}{key}")
    return out


def _json(v: Any) -> str:
    """A JSON value as comparable text (keys sorted, NaN equal to NaN)."""
    try:
        return json.dumps(v, sort_keys=True, default=repr)
    except (TypeError, ValueError):  # keys of mixed types can't be sorted
        return repr(v)


def _reordered(where_old: np.ndarray, new_ids: np.ndarray, both: np.ndarray, stable: np.ndarray,
               rows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> bool:
    """Whether the images in both are listed in another order, or the annotations of an image whose annotations
    are the same (``stable``, by path id) are. ``rows``: (key, path id) of the old, then of the new annotations."""
    o = where_old[new_ids[both]]
    if len(o) > 1 and bool(np.any(np.diff(o) < 0)):
        return True
    k_old, p_old, k_new, p_new = rows
    so, sn = stable[p_old], stable[p_new]
    if int(so.sum()) != int(sn.sum()):  # a path listed twice in one version: not compared
        return False
    ko = k_old[so][np.argsort(p_old[so], kind="stable")]  # by image path, each image's rows in their order
    kn = k_new[sn][np.argsort(p_new[sn], kind="stable")]
    return bool(np.any(ko != kn))


def diff_datasets(old: Dataset, new: Dataset) -> DatasetDiff:
    """What changed from ``old`` to ``new`` (two versions of a dataset): images by path, annotations by content.

    Annotations are compared as multisets per image: an annotation is unchanged when the other dataset has one
    with the same content on the same image path (class by name, box, crowd flag, score, polygon, mask, keypoints,
    attributes, annotator and source). An edit shows as one annotation removed and one added. The metadata of what
    is in both is compared apart (see the module docstring): an annotation kept whose ``area`` or format id
    changed counts in ``annotation_metadata``, not as an edit. Vectorised: a 64-bit hash per annotation, then one
    sort (collisions, at 1 in 2^64 per pair, are ignored).

    Example:
        >>> from maslow.sample import shapes
        >>> ds = shapes(8, seed=0)
        >>> d = diff_datasets(ds, ds.select(ds.annotations.label != 0))
        >>> d.n_removed == int((ds.annotations.label == 0).sum()), d.n_added
        (True, 0)
    """
    paths: dict[Any, int] = {}
    names: dict[Any, int] = {}
    vocab: dict[Any, int] = {}
    attrs = sorted(set(old.annotations.attributes) | set(new.annotations.attributes))
    # a column either version has is hashed for both: one made without masks (none left) still matches row by row
    optional = [c for c in OPTIONAL
                if getattr(old.annotations, c) is not None or getattr(new.annotations, c) is not None]
    k_old, p_old, c_old = _row_keys(old, paths, names, attrs, vocab, optional)
    k_new, p_new, c_new = _row_keys(new, paths, names, attrs, vocab, optional)
    uniq, first, inv = np.unique(np.concatenate([k_old, k_new]), return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    n_old, u = len(k_old), len(uniq)
    delta = np.bincount(inv[n_old:], minlength=u) - np.bincount(inv[:n_old], minlength=u)
    added, removed = np.maximum(delta, 0), np.maximum(-delta, 0)
    pid = np.concatenate([p_old, p_new])[first].astype(np.int64)
    cid = np.concatenate([c_old, c_new])[first].astype(np.int64)
    k = len(names)
    counts = {"old": np.bincount(c_old.astype(np.int64), minlength=k),
              "new": np.bincount(c_new.astype(np.int64), minlength=k),
              "added": np.bincount(cid, weights=added, minlength=k),
              "removed": np.bincount(cid, weights=removed, minlength=k)}
    per_class = {str(name): {key: int(v[c]) for key, v in counts.items()} for c, name in enumerate(names)}
    per_class = {name: row for name, row in per_class.items() if any(row.values())}
    meta_key, annotation_metadata = _annotation_metadata(old, new, k_old, k_new, inv, u, vocab)
    # images by path: those in both with a changed record or changed annotations, in the new dataset's order
    old_ids = _ids(old.images.path.tolist(), paths).astype(np.int64)
    new_ids = _ids(new.images.path.tolist(), paths).astype(np.int64)
    m = len(paths)
    in_old, in_new, record = np.zeros(m, bool), np.zeros(m, bool), np.zeros(m, bool)
    in_old[old_ids], in_new[new_ids] = True, True
    a_img = np.bincount(pid, weights=added, minlength=m).astype(np.int64)
    r_img = np.bincount(pid, weights=removed, minlength=m).astype(np.int64)
    meta_img = np.bincount(pid, weights=meta_key, minlength=m).astype(np.int64)
    both = np.flatnonzero(in_old[new_ids])
    path_of = np.asarray(list(paths), dtype=object)
    image_metadata: dict[str, np.ndarray] = {}
    reordered = False
    if len(both):
        where_old = np.zeros(m, np.int64)
        where_old[old_ids] = np.arange(len(old_ids))
        o, oi, ni = where_old[new_ids[both]], old.images, new.images
        assert oi.split is not None and ni.split is not None
        diff = (oi.width[o] != ni.width[both]) | (oi.height[o] != ni.height[both]) | \
            (oi.split[o].astype(str) != ni.split[both].astype(str))
        for c in sorted(set(oi.extra) | set(ni.extra)):
            other = _cell_hashes(oi.extra.get(c), len(oi), vocab)[o] != \
                _cell_hashes(ni.extra.get(c), len(ni), vocab)[both]
            if other.any():
                image_metadata[c] = path_of[new_ids[both[other]]]
                diff |= other
        record[new_ids[both[diff]]] = True
        stable = in_old & in_new & (a_img == 0) & (r_img == 0)
        reordered = _reordered(where_old, new_ids, both, stable,
                               (k_old, p_old.astype(np.int64), k_new, p_new.astype(np.int64)))
    ids = new_ids[in_old[new_ids]]
    changed = ids[(a_img[ids] > 0) | (r_img[ids] > 0) | record[ids] | (meta_img[ids] > 0)]
    return DatasetDiff(
        n_images=(old.n_images, new.n_images), n_annotations=(old.n_annotations, new.n_annotations),
        images_added=path_of[new_ids[~in_old[new_ids]]], images_removed=path_of[old_ids[~in_new[old_ids]]],
        images_changed=path_of[changed], added_per_image=a_img[changed], removed_per_image=r_img[changed],
        record_changed=record[changed], metadata_per_image=meta_img[changed], n_added=int(added.sum()),
        n_removed=int(removed.sum()), classes_added=tuple(c for c in new.schema.names if c not in old.schema.names),
        classes_removed=tuple(c for c in old.schema.names if c not in new.schema.names), per_class=per_class,
        schema_changed=replace(new.schema, version=old.schema.version) != old.schema,
        image_metadata=image_metadata, annotation_metadata=annotation_metadata,
        info_changed=tuple(_info_changes(old.info, new.info)), roots=(_root(old), _root(new)), reordered=reordered)


def _root(ds: Dataset) -> str | None:
    return None if ds.root is None else str(ds.root)
