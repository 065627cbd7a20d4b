"""COCO ids to write (``maslow.io.coco.write`` and the results and panoptic writers): the ids a dataset holds where
COCO can keep them, new ones elsewhere."""

from __future__ import annotations

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.types import IntArray

_INT64_MAX = 2**63 - 1


def image_ids(ds: Dataset) -> np.ndarray:
    """(m,) the COCO id of each image: ``images.extra["coco_id"]`` where present and unique, else new ids; int64, or
    an object array of strings where the ids are strings (see ``_image_ids``)."""
    return _image_ids(ds.images.extra.get("coco_id"), ds.n_images)[0]


def category_ids(schema: LabelSchema) -> IntArray:
    """(k,) the COCO category id of each class: ``ClassDef.id`` where set (negative ones too: None marks a class
    without one) and unique, else new ids."""
    raw = [c.id for c in schema.classes]
    have = np.asarray([v is not None and -_INT64_MAX - 1 <= v <= _INT64_MAX for v in raw], bool)
    arr = np.asarray([v if h else 0 for v, h in zip(raw, have.tolist(), strict=True)], np.int64)
    return _assign(arr, have)[0]


def _image_ids(col: np.ndarray | None, n: int) -> tuple[np.ndarray, str | None]:
    """The image ids to write, and a note for the report (None: the ids as they are). Integer ids as ``_ids``. Where
    some ids are strings (a file with string ids read, maybe joined with others): the strings (renumbered 1..N, as
    repeated integers are, when they repeat), other integers as their decimal text (a file's ids are all of one
    kind) where no string has it, and new ones ("1", "2", ...: texts not in use) for the rest."""
    vals = col.tolist() if col is not None and col.dtype == object else []
    if not any(type(v) is str for v in vals):
        ids, renumbered, n_new = _ids(col, n)
        if renumbered:
            return ids, "image coco_id values repeat: images renumbered 1..N"
        return ids, _new_ids_note(n_new, "images", ids, col)
    strings = [v for v in vals if type(v) is str]
    used = set(strings)
    if len(used) < len(strings):
        return np.arange(1, n + 1, dtype=np.int64), "image coco_id values repeat: images renumbered 1..N"
    out: list[str | None] = [v if type(v) is str else None for v in vals]
    n_text = 0
    for i, v in enumerate(vals):
        text = str(int(v)) if isinstance(v, int | np.integer) and not isinstance(v, bool) else None
        if text is not None and text not in used:
            out[i] = text
            used.add(text)
            n_text += 1
    n_new, k = 0, 0
    for i in [i for i, v in enumerate(out) if v is None]:
        k += 1
        while str(k) in used:
            k += 1
        out[i] = str(k)
        n_new += 1
    notes = [f"{n_text} integer image coco_id values among strings written as their text"] if n_text else []
    if n_new:
        notes.append(f"{n_new} images without a string coco_id of their own given new ones")
    return np.fromiter(out, object, n), "; ".join(notes) or None


def _ids(col: np.ndarray | None, n: int) -> tuple[IntArray, bool, int]:
    """Ids from a column (new ones where missing: none read, not an integer, negative (-1 marks a missing id in
    maslow's integer columns), out of int64); see ``_assign``. Also: whether renumbered, and how many were given
    new ones."""
    if col is None:
        return np.arange(1, n + 1, dtype=np.int64), False, 0
    if col.dtype.kind == "i":
        arr = col.astype(np.int64)
    elif col.dtype.kind == "u":
        arr = np.where(col <= _INT64_MAX, col, 0).astype(np.int64) - (col > _INT64_MAX)  # above int64: -1
    elif col.dtype.kind == "f":
        ok = np.isfinite(col) & (col == np.round(col)) & (np.abs(col) < 2.0**63)
        arr = np.where(ok, col, -1).astype(np.int64)
    else:
        arr = np.asarray([int(v) if isinstance(v, int | np.integer) and not isinstance(v, bool)
                          and -_INT64_MAX - 1 <= int(v) <= _INT64_MAX else -1 for v in col.tolist()], np.int64)
    return _assign(arr, arr >= 0)


def _assign(arr: IntArray, have: np.ndarray) -> tuple[IntArray, bool, int]:
    """``arr`` where ``have`` (kept as they are, up to int64's largest), new ids elsewhere: from max + 1 (at least 1),
    or the smallest unused ones >= 1 when that would pass int64's largest; all renumbered 1..n when the given ones
    repeat. Also: whether renumbered, and how many were given new ones."""
    n = len(arr)
    given = np.sort(arr[have])  # (not np.unique: that imports numpy.ma, a sixth of a fast read's time)
    if given.size > 1 and bool((given[1:] == given[:-1]).any()):
        return np.arange(1, n + 1, dtype=np.int64), True, 0
    n_new = n - given.size
    if not n_new:  # every id kept (max + 1 may not even be an int64: 2**63 - 1 is a valid id)
        return arr, False, 0
    start = max(int(given[-1]) + 1, 1) if given.size else 1
    if start > _INT64_MAX - n_new + 1:  # no room above the largest: the smallest ids not in use
        free = np.arange(1, given.size + n_new + 1, dtype=np.int64)
        arr[~have] = free[~np.isin(free, given)][:n_new]
    else:
        arr[~have] = start + np.arange(n_new)
    return arr, False, n_new


def _new_ids_note(n_new: int, what: str, ids: IntArray, col: np.ndarray | None) -> str | None:
    """The report's note on ids given anew where a ``coco_id`` column held none COCO can keep (None: none given;
    rows without a column are numbered 1..N without a word, as every other format's rows are)."""
    if not n_new or col is None:
        return None
    return (f"{n_new} {what} without an id COCO can keep (none read, not an integer, negative or out of the int64 "
            f"range) were given new ones")
