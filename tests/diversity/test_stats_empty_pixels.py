"""``stats`` of a dataset without images: an object class's pixels are null (not measured), as for any dataset (the
sum over no split gave 0)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.core.schema import ClassDef
from maslow.diversity import dataset_stats
from tests.helpers import run_cli_streams


def test_no_image_object_class_pixels_are_null(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "cat"}]}))
    code, out, err = run_cli_streams(["stats", str(path), "--from", "coco", "--json"])
    assert code == 0, err
    (c,) = json.loads(out)["classes"]
    assert c["pixels"] is None and c["pixel_share"] is None and c["pixels_per_split"] is None


def test_no_image_semantic_class_pixels_are_zero() -> None:
    schema = LabelSchema(classes=(ClassDef("road", kind="semantic"), ClassDef("car")))
    none = np.zeros(0, np.int64)
    ds = Dataset(schema, Images(path=np.zeros(0, object), width=none, height=none), Annotations.empty())
    s = dataset_stats(ds)
    assert s.pixels_per_class[0] == 0 and np.isnan(s.pixels_per_class[1])
    d = s.to_dict()["classes"]
    assert d[0]["pixels"] == 0 and d[1]["pixels"] is None
