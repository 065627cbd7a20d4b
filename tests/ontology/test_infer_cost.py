"""infer_schema drafts what the data uses; cost estimates compare strategies; throughput from timestamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maslow import io
from maslow.core import Annotations, ClassDef, Dataset, Images, LabelSchema
from maslow.core.types import obj_array
from maslow.errors import SchemaError
from maslow.ontology import CostRates, annotator_throughput, compare_strategies, estimate_cost, infer_schema
from maslow.sample import shapes
from tests.conftest import shared_path


def test_infer_shapes() -> None:
    ds = shapes(24, seed=0)
    s = infer_schema(ds)
    assert s.names == ds.schema.names
    assert s.classes[2].label_types == ("box", "mask", "polygon", "keypoints")
    assert s.classes[2].keypoints == ("top", "left", "right")
    colour, occluded = s.attribute("colour"), s.attribute("occluded")
    assert (colour.type, colour.values, colour.required) == ("enum", ("blue", "green", "red"), True)
    assert (occluded.type, occluded.required) == ("bool", False)  # the crowd regions have no value


def test_infer_hand_made_types_and_classes() -> None:
    ann = Annotations(
        image=[0, 0, 0, 1], label=[0, 1, 1, 2],
        box=[[0, 0, 1, 1], [0, 0, 2, 2], [np.nan] * 4, [np.nan] * 4],
        keypoints=[[[1, 1, 2], [np.nan] * 3], [[np.nan] * 3] * 2, [[np.nan] * 3] * 2, [[1, 1, 2], [2, 2, 1]]],
        attributes={"age": obj_array([3, 4.5, None, None]), "breed": obj_array([None, "x", "y", None]),
                    "note": obj_array([f"n{i}" for i in range(4)])},
    )
    ds = Dataset(schema=LabelSchema.from_names(["cat", "dog", "pose"]),
                 images=Images(path=["a", "b"], width=[9, 9], height=[9, 9]), annotations=ann)
    s = infer_schema(ds, max_enum_values=3)
    assert [c.label_types for c in s.classes] == [("box", "keypoints"), ("box", "tag"), ("keypoints",)]
    assert s.classes[0].keypoints == ("kp0",) and s.classes[2].keypoints == ("kp0", "kp1")
    age, breed, note = s.attribute("age"), s.attribute("breed"), s.attribute("note")
    assert (age.type, age.classes, age.required) == ("number", ("cat", "dog"), False)
    assert (breed.type, breed.values, breed.classes, breed.required) == ("enum", ("x", "y"), ("dog",), True)
    assert (note.type, note.classes, note.required) == ("text", (), True)


def test_infer_bccd() -> None:
    ds = io.read_voc(shared_path("bccd", "annotations"))
    s = infer_schema(ds)
    assert all(c.label_types == ("box",) for c in s.classes)
    assert s.attribute("truncated").type == "bool"


def test_cost_as_annotated_by_hand() -> None:
    ann = Annotations(image=[0, 0], label=[0, 1], box=[[0, 0, 1, 1], [np.nan] * 4],
                      polygon=obj_array([None, [np.arange(8.0), np.arange(6.0)]]),  # 4 + 3 vertices
                      attributes={"a": obj_array(["x", None])})
    ds = Dataset(schema=LabelSchema(classes=(ClassDef("box"), ClassDef("poly"))),
                 images=Images(path=["a"], width=[9], height=[9]), annotations=ann)
    e = estimate_cost(ds, rates=CostRates(box=10, polygon_vertex=2, attribute_value=1))
    assert e.seconds_per_class.tolist() == [11.0, 14.0]
    assert e.total_seconds == 25.0
    assert e.to_dict()["per_class"]["poly"]["counts"]["polygon"] == 7
    boxes = estimate_cost(ds, rates=CostRates(box=10), label_types={"poly": ["box"]})
    assert boxes.seconds_per_class.tolist() == [11.0, 10.0]


def test_cost_prices_a_mask_drawn_from_the_polygon_once() -> None:
    """A mask that is its row's polygon rasterised is the polygon's work; a mask of other pixels is a second one."""
    from maslow.core import masks as M

    ring = np.array([1.0, 1, 7, 1, 7, 6, 1, 6])  # 4 vertices
    other = np.zeros((9, 9), bool)
    other[0:3, 0:3] = True
    ann = Annotations(image=[0, 0], label=[0, 0], box=[[1, 1, 7, 6]] * 2, polygon=obj_array([[ring], [ring]]),
                      mask=obj_array([M.from_polygons([ring], 9, 9), M.encode(other)]))
    ds = Dataset(schema=LabelSchema(classes=(ClassDef("a"),)), images=Images(path=["a"], width=[9], height=[9]),
                 annotations=ann)
    e = estimate_cost(ds, rates=CostRates(box=10, polygon_vertex=2, mask=100))
    assert e.to_dict()["per_class"]["a"]["counts"] == {"box": 2, "mask": 1, "polygon": 8, "keypoints": 0, "tag": 0,
                                                       "attributes": 0}
    assert e.total_seconds == 2 * 10 + 100 + 8 * 2
    # a strategy that asks for masks still prices every one
    assert estimate_cost(ds, rates=CostRates(mask=100), label_types=["mask"]).total_seconds == 200


def test_cost_as_annotated_is_the_same_in_memory_and_as_written(tmp_path: Path) -> None:
    """The in-memory shapes sample (a mask drawn from each object's polygon) costs what the COCO file it writes
    (the polygon alone) costs: docs/ontology.md's "as annotated" is box + polygon, far below masks."""
    from maslow.sample import write_shapes

    ds = write_shapes(tmp_path, 48, seed=0)
    io.write(ds, tmp_path / "annotations.json", "coco")
    back = io.read(tmp_path / "annotations.json", "coco")
    mem, disk = estimate_cost(shapes(48, seed=0)), estimate_cost(back)
    np.testing.assert_allclose(mem.seconds, disk.seconds)
    masks = estimate_cost(ds, label_types=["mask"])
    boxes = estimate_cost(ds, label_types=["box"])
    assert boxes.total_seconds < mem.total_seconds < masks.total_seconds
    assert mem.counts[:, 1].sum() == int(ds.annotations.iscrowd.sum())  # only the crowd regions' masks


def test_strategies_order_as_expected() -> None:
    ds = shapes(24, seed=0)
    r = compare_strategies(ds, {"extreme boxes": ["box"], "drawn boxes": ["box"], "masks": ["mask"]})
    drawn = estimate_cost(ds, rates=CostRates(box=34.5), label_types=["box"])
    assert r["extreme boxes"].total_seconds < drawn.total_seconds < r["masks"].total_seconds
    n_obj = ds.n_annotations
    assert r["extreme boxes"].counts[:, 0].sum() == n_obj
    with pytest.raises(SchemaError, match="label type"):
        estimate_cost(ds, label_types=["cube"])
    with pytest.raises(SchemaError, match="box must be a number"):
        CostRates.from_dict({"box": "fast"})


def test_annotator_throughput() -> None:
    ds = shapes(6, seed=0)
    n = ds.n_annotations
    who = ["ann" if i % 2 == 0 else "bob" for i in range(n)]
    t0 = 1_700_000_000
    times = [f"2023-11-14T22:{(i * 2) // 60:02d}:{(i * 2) % 60:02d}Z" if who[i] == "ann" else t0 + 30 * i
             for i in range(n)]
    times[-1] = None
    a = ds.annotations.with_columns(annotator=obj_array(who), extra={"created": obj_array(times)})
    tp = annotator_throughput(ds.replace(annotations=a))
    assert tp.annotators == ("ann", "bob")
    assert tp.n_annotations.sum() == n - 1 and tp.n_without_time == 1
    i = tp.annotators.index("bob")
    assert tp.median_gap_seconds[i] == 60.0
    assert tp.per_hour[i] == pytest.approx(3600 / 60.0)  # one annotation per 60 s gap
    assert annotator_throughput(ds).annotators == ()
