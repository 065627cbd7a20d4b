"""The federated rules of an LVIS evaluation, as lvis-api 0.5.3 applies them before its COCO-style matching.

- *per-image cap* (``LVISResults(max_dets=300)``): an image with more than ``max_dets`` predictions keeps its
  ``max_dets`` best by score, over every class (ties: the earlier row, as Python's stable ``sorted``); the cap
  counts every prediction of the image, also those the federated filter then leaves out.
- *verified classes*: a prediction is evaluated only if its class is among the image's truth classes (its
  positive labels, whatever the object) or in ``images.extra["neg_category_ids"]``; the others are left out
  (neither TP nor FP).
- *not exhaustive*: an unmatched prediction of a class in ``images.extra["not_exhaustive_category_ids"]`` is
  ignored (not an FP), as pycocotools ignores an unmatched prediction outside the area range.
- *truth*: ``iscrowd`` plays no part (every object is a plain object with a plain IoU); an object whose COCO
  ``ignore`` key is truthy (``annotations.extra["ignore"]``) is ignored.
- *frequency*: each class is rare, common or frequent (``r``/``c``/``f``) for APr/APc/APf.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, IntArray
from maslow.errors import InvalidDatasetError

NEG_COLUMN = "neg_category_ids"
NOT_EXHAUSTIVE_COLUMN = "not_exhaustive_category_ids"
IGNORE_COLUMN = "ignore"
#: ``Dataset.info`` key of the COCO categories' own keys (``frequency``, ``synset``, ...) by category id
CATEGORY_INFO = "coco_categories"
FREQUENCIES = ("r", "c", "f")


class Federation(NamedTuple):
    """Which prediction rows are evaluated, and which of those are of a class not exhaustively annotated."""

    evaluated: IntArray  # sorted prediction rows kept by the cap and of a verified class of their image
    not_exhaustive: BoolArray  # (len(evaluated),)
    n_capped: int  # rows past the per-image cap
    n_unverified: int  # rows under the cap whose class is neither positive nor negative in their image


def _label_of_id(truth: Dataset) -> dict[int, int]:
    ids = [c.id for c in truth.schema.classes]
    missing = [c.name for c in truth.schema.classes if c.id is None]
    if missing:
        raise InvalidDatasetError(
            f"truth.schema class {missing[0]!r}: id must be the COCO category id (the image columns "
            f"{NEG_COLUMN!r} and {NOT_EXHAUSTIVE_COLUMN!r} name classes by id), got None ({len(missing)} classes)")
    return {int(i): label for label, i in enumerate(ids) if i is not None}


def category_pairs(truth: Dataset, column: str) -> tuple[IntArray, IntArray]:
    """(image row, schema label) of every category id listed in ``images.extra[column]`` (ids of no class of the
    truth are left out: they name nothing that can be predicted)."""
    col = truth.images.extra.get(column)
    if col is None:
        raise InvalidDatasetError(
            f"truth.images.extra[{column!r}]: LVIS evaluation needs each image's {column} (an LVIS file's "
            f"images[].{column}, which read_coco keeps), got no such column")
    vals = col.tolist()
    lens = np.fromiter((len(v) if isinstance(v, (list, tuple, np.ndarray)) else -1 for v in vals), np.int64,
                       len(vals))
    bad = np.flatnonzero(lens < 0)
    if bad.size:
        raise InvalidDatasetError(f"truth.images.extra[{column!r}] row {bad[0]}: must be a list of category ids, "
                                  f"got {vals[bad[0]]!r} ({bad.size} image{'' if bad.size == 1 else 's'})")
    flat_list = list(itertools.chain.from_iterable(vals))
    flat = np.asarray(flat_list) if flat_list else np.zeros(0, np.int64)
    if flat.dtype.kind not in "iu":
        ok = np.fromiter(((type(v) is int and -(2**63) <= v < 2**63) or isinstance(v, np.integer) for v in flat_list),
                         bool, len(flat_list))
        first = int(np.flatnonzero(~ok)[0])  # a non-integer, or an integer past int64 (object dtype)
        row = int(np.searchsorted(np.cumsum(lens), first, side="right"))
        raise InvalidDatasetError(f"truth.images.extra[{column!r}] row {row}: category ids must be 64-bit integers, "
                                  f"got {flat_list[first]!r}")
    img = np.repeat(np.arange(len(vals), dtype=np.int64), lens)
    label_of = _label_of_id(truth)
    label = np.fromiter((label_of.get(int(v), -1) for v in flat.tolist()), np.int64, len(flat))
    known = label >= 0
    return img[known], label[known]


def _keys(img: IntArray, label: IntArray, n_cls: int) -> IntArray:
    return img.astype(np.int64) * n_cls + label


def federate(truth: Dataset, pred: Dataset, max_dets: int | None) -> Federation:
    """The prediction rows an LVIS evaluation evaluates (module docstring)."""
    pa = pred.annotations
    if pa.score is None:
        raise InvalidDatasetError("pred.annotations.score: predictions must carry scores, got no score column")
    nan = np.flatnonzero(np.isnan(pa.score))
    if nan.size:
        raise InvalidDatasetError(f"pred.annotations.score row {nan[0]}: must be a number, got nan ({nan.size} rows)")
    if pred.n_images != truth.n_images:
        raise InvalidDatasetError(f"pred.images: must be the images table of truth ({truth.n_images} rows), got "
                                  f"{pred.n_images} rows. Read predictions with like=truth")
    kept = cap_per_image(pa.image, pa.score, truth.n_images, max_dets)
    rows = np.arange(len(pa), dtype=np.int64) if kept is None else kept
    n_cls = len(truth.schema.names)
    if pred.schema.names == truth.schema.names:
        label = pa.label[rows]
    else:  # classes matched by name; a class the truth lacks is never evaluated
        by_name = {n: i for i, n in enumerate(truth.schema.names)}
        to_truth = np.asarray([by_name.get(n, -1) for n in pred.schema.names], np.int64)
        label = to_truth[pa.label[rows]] if len(to_truth) else np.zeros(len(rows), np.int64)
    keys = _keys(pa.image[rows], np.maximum(label, 0), n_cls)
    neg = _keys(*category_pairs(truth, NEG_COLUMN), n_cls)
    nel = _keys(*category_pairs(truth, NOT_EXHAUSTIVE_COLUMN), n_cls)
    pos = _keys(truth.annotations.image, truth.annotations.label, n_cls)
    verified = np.isin(keys, np.concatenate([pos, neg])) & (label >= 0)
    evaluated = rows[verified]
    return Federation(evaluated, np.isin(keys[verified], nel), len(pa) - len(rows), len(rows) - len(evaluated))


def cap_per_image(image: IntArray, score: np.ndarray, n_images: int, max_dets: int | None) -> IntArray | None:
    """Sorted rows kept by the per-image cap (the best ``max_dets`` of each image by score, ties by row), or None
    when no image has more (every row kept)."""
    if max_dets is None or not len(image):
        return None
    counts = np.bincount(image, minlength=n_images)
    over = counts > max_dets
    if not over.any():
        return None
    sel = np.flatnonzero(over[image])
    order = sel[np.lexsort((sel, -score[sel], image[sel]))]
    img = image[order]
    first = np.searchsorted(img, img, side="left")
    drop = order[np.arange(len(order)) - first >= max_dets]
    keep = np.ones(len(image), bool)
    keep[drop] = False
    return np.flatnonzero(keep)


def truth_ignore(truth: Dataset, rows: IntArray) -> BoolArray:
    """(len(rows),) the COCO ``ignore`` flag of the truth rows (lvis-api reads ``if gt["ignore"]``; absent: 0)."""
    col = truth.annotations.extra.get(IGNORE_COLUMN)
    if col is None:
        return np.zeros(len(rows), bool)
    vals = np.asarray(col)[rows]
    if vals.dtype != object:
        return vals.astype(bool)
    return np.fromiter((bool(v) for v in vals.tolist()), bool, len(vals))


def class_frequency(truth: Dataset, frequency: Mapping[str, str] | None) -> tuple[str, ...]:
    """The frequency group (``r``/``c``/``f``) of each class of ``truth.schema``, from ``frequency`` (class name ->
    group) or else from ``truth.info[CATEGORY_INFO]`` (category id -> the category's own keys)."""
    names = truth.schema.names
    if frequency is not None:
        if not isinstance(frequency, Mapping):
            raise ValueError(f"lvis_map: frequency must map class names to 'r', 'c' or 'f', got "
                             f"{type(frequency).__name__}")
        unknown = [k for k in frequency if k not in set(names)]
        if unknown:
            raise ValueError(f"lvis_map: frequency[{unknown[0]!r}]: must name a class of truth.schema, got an "
                             f"unknown name ({len(unknown)} keys)")
        got: list[Any] = [frequency.get(n) for n in names]
        where = "lvis_map: frequency"
    else:
        info = truth.info.get(CATEGORY_INFO)
        if not isinstance(info, Mapping):
            raise InvalidDatasetError(
                f"truth.info[{CATEGORY_INFO!r}]: LVIS evaluation needs each class's frequency (r, c or f; an LVIS "
                "file's categories[].frequency), got none. Pass frequency={class name: 'r' | 'c' | 'f'}")
        by_id = {str(k): v for k, v in info.items()}
        got = []
        for c in truth.schema.classes:
            keys = by_id.get(str(c.id))
            got.append(keys.get("frequency") if isinstance(keys, Mapping) else None)
        where = f"truth.info[{CATEGORY_INFO!r}]"
    bad = [i for i, v in enumerate(got) if v not in FREQUENCIES]
    if bad:
        i = bad[0]
        error = ValueError if frequency is not None else InvalidDatasetError
        raise error(f"{where} class {names[i]!r}: frequency must be 'r', 'c' or 'f', got {got[i]!r} "
                    f"({len(bad)} classes)")
    return tuple(str(v) for v in got)
