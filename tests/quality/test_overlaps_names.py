"""``duplicate_box`` and ``class_conflict`` name the other box of the pair by the dataset's annotation id (the
``other_id`` of ISSUES.json), not by its 0-based row, which they called "annotation N": a reviewer looking it up in
the COCO file found another object (the row is one below COCO's 1-based ids), or none."""

from __future__ import annotations

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.quality.overlaps import check_overlaps
from maslow.quality.records import issue_records


def _pairs(ids: np.ndarray | None) -> Dataset:
    """One image: a cat and its copy (a duplicate), a dog and a cat on one object (a class conflict)."""
    box = [[10.0, 10, 50, 50], [10.0, 10, 50, 50], [60.0, 60, 90, 90], [60.0, 60, 90, 90.5]]
    extra = {} if ids is None else {"coco_id": ids}
    return Dataset(LabelSchema.from_names(["cat", "dog"]), Images(path=["a.png"], width=[100], height=[100]),
                   Annotations(image=[0, 0, 0, 0], label=[0, 0, 1, 0], box=box, extra=extra))


def test_the_other_box_is_named_by_its_id() -> None:
    ds = _pairs(np.array([101, 102, 103, 104]))
    records = issue_records(check_overlaps(ds), ds)
    by_type = {r["type"]: r for r in records}
    dup, con = by_type["duplicate_box"], by_type["class_conflict"]
    assert (dup["other_row"], dup["other_id"]) == (0, 101) and (con["other_row"], con["other_id"]) == (2, 103)
    assert "with annotation id 101)" in dup["reason"] and "(annotation id 101 stays)" in dup["suggestion"]["text"]
    assert "box (annotation id 103) on one object" in con["reason"]
    assert "annotation 0" not in dup["reason"] + dup["suggestion"]["text"] and "annotation 2" not in con["reason"]


def test_without_ids_the_row_is_named_as_a_row() -> None:
    ds = _pairs(None)
    records = issue_records(check_overlaps(ds), ds)
    dup = next(r for r in records if r["type"] == "duplicate_box")
    assert "with annotation row 0)" in dup["reason"] and "(annotation row 0 stays)" in dup["suggestion"]["text"]
    # a float id column (NaN: none) names the ids it has
    ds = _pairs(np.array([7.0, 8.0, np.nan, 9.0]))
    con = next(r for r in issue_records(check_overlaps(ds), ds) if r["type"] == "class_conflict")
    assert "(annotation row 2)" in con["reason"]
