"""The Images and Annotations tables: validation, read-only columns, copy semantics, row helpers."""

from __future__ import annotations

import numpy as np
import pytest

from maslow.core import SOURCES, Annotations, Images
from maslow.errors import InvalidDatasetError


def images(m: int = 3, **kw: object) -> Images:
    cols: dict[str, object] = {
        "path": [f"img{i}.png" for i in range(m)],
        "width": np.full(m, 100),
        "height": np.full(m, 80),
    }
    cols.update(kw)
    return Images(**cols)  # type: ignore[arg-type]


def ann(**kw: object) -> Annotations:
    cols: dict[str, object] = {
        "image": np.array([0, 0, 1, 2]),
        "label": np.array([0, 1, 1, 0]),
        "box": np.array([[0, 0, 10, 10], [5, 5, 20, 30], [1, 2, 3, 4], [0, 0, 100, 80]], float),
    }
    cols.update(kw)
    return Annotations(**cols)  # type: ignore[arg-type]


# -- Images ----------------------------------------------------------------------------------------


def test_images_columns_are_typed_and_default_split_is_empty() -> None:
    im = images(2, width=[10.0, 20.0], height=np.array([5, 6], np.int32))
    assert im.width.dtype == np.int64 and im.height.dtype == np.int64
    assert im.path.dtype == object and im.path.tolist() == ["img0.png", "img1.png"]
    assert im.split is not None and im.split.tolist() == ["", ""]
    assert len(im) == 2


def test_images_split_from_a_single_string_fills_every_row() -> None:
    im = images(3, split="train")
    assert im.split is not None and im.split.tolist() == ["train"] * 3


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        pytest.param({"width": [1, 2]}, r"images\.width: length must be 3, got 2", id="short-width"),
        pytest.param({"height": np.ones((3, 1))}, r"images\.height: must be 1-D", id="2d-height"),
        pytest.param({"width": [1, -5, -1]}, r"images\.width row 1: must be >= 0, got -5 \(2 rows\)", id="negative"),
        pytest.param({"height": [1.0, 2.5, 3.0]}, r"images\.height row 1: must be an integer, got 2\.5", id="fraction"),
        pytest.param({"width": [1.0, np.nan, 3.0]}, r"images\.width row 1: must be an integer, got nan", id="nan"),
        pytest.param({"width": ["1", "2", "3"]}, r"images\.width: must be integers, got dtype <U1", id="strings"),
        pytest.param({"split": ["train"]}, r"images\.split: length must be 3, got 1", id="short-split"),
        pytest.param({"extra": {"coco_id": [1, 2]}}, r"images\.extra\['coco_id'\]: length must be 3, got 2",
                     id="short-extra"),
    ],
)
def test_images_validation_names_column_and_row(kw: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidDatasetError, match=match):
        images(3, **kw)


def test_images_path_must_be_1d() -> None:
    with pytest.raises(InvalidDatasetError, match=r"images\.path: must be 1-D"):
        Images(path=np.array([["a"], ["b"]], dtype=object), width=[1, 1], height=[1, 1])


def test_images_take_reorders_every_column() -> None:
    im = images(3, split=["a", "b", "c"], extra={"coco_id": np.array([10, 11, 12])})
    t = im.take(np.array([2, 0]))
    assert t.path.tolist() == ["img2.png", "img0.png"]
    assert t.split is not None and t.split.tolist() == ["c", "a"]
    assert t.extra["coco_id"].tolist() == [12, 10]
    assert len(Images.empty()) == 0


# -- Annotations: validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        pytest.param({"image": np.array([0, 1, 0, 2])}, r"annotations\.image row 2: rows must be sorted by image, got 0 after 1",
                     id="unsorted"),
        pytest.param({"image": np.zeros((4, 1), int)}, r"annotations\.image: must be 1-D", id="2d-image"),
        pytest.param({"image": np.array([0, 0.5, 1, 2])}, r"annotations\.image row 1: must be an integer, got 0\.5",
                     id="fractional-image"),
        pytest.param({"label": [0, 1]}, r"annotations\.label: length must be 4, got 2", id="short-label"),
        pytest.param({"label": [0, 1, -2, 0]}, r"annotations\.label row 2: must be >= 0, got -2", id="negative-label"),
        pytest.param({"label": np.array(["a", "b", "c", "d"])}, r"annotations\.label: must be integers", id="str-label"),
        pytest.param({"box": np.zeros((4, 5))}, r"annotations\.box: shape must be \(4, 4\), got \(4, 5\)", id="box-cols"),
        pytest.param({"box": np.zeros((3, 4))}, r"annotations\.box: shape must be \(4, 4\), got \(3, 4\)", id="box-rows"),
        pytest.param({"box": [[0, 0, 1, 1], [0, np.nan, 1, 1], [0, 0, 1, 1], [0, 0, 1, np.nan]]},
                     r"annotations\.box row 1: must be 4 numbers or 4 NaN.*\(2 rows\)", id="partial-nan"),
        pytest.param({"box": [[0, 0, 1, 1], [0, 0, 1, 1], [5, 0, 4, 1], [0, 0, 1, 1]]},
                     r"annotations\.box row 2: must be xyxy with x2 >= x1 and y2 >= y1, got \[5\.0, 0\.0, 4\.0, 1\.0\]",
                     id="x2-lt-x1"),
        pytest.param({"box": [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 3, 1, 2]]},
                     r"annotations\.box row 3: must be xyxy", id="y2-lt-y1"),
        pytest.param({"box": [[0, 0, 1, 1], [0, 0, np.inf, 1], [0, 0, 1, 1], [0, 0, 1, 1]]},
                     r"annotations\.box row 1: must be finite", id="inf"),
        pytest.param({"box": [[0, 0, 1, 1], [0, 0, 1, 1], [-np.inf, 0, 1, 1], [0, 0, 1, 1]]},
                     r"annotations\.box row 2: must be finite", id="minus-inf"),
        pytest.param({"box": [[0, 0, 1, 1]] * 3 + [[0, 0, "a", 1]]}, r"annotations\.box: must be numbers", id="box-str"),
        pytest.param({"box": [[0, 0, 1, 1]] * 3 + [[0, 0, 1]]}, r"annotations\.box: must be numbers", id="ragged-box"),
        pytest.param({"score": [0.5, 0.5]}, r"annotations\.score: shape must be \(4,\), got \(2,\)", id="short-score"),
        pytest.param({"score": ["high"] * 4}, r"annotations\.score: must be numbers", id="score-str"),
        pytest.param({"keypoints": [[[0, 0, {}]]] * 4}, r"annotations\.keypoints: must be numbers", id="kp-objects"),
        pytest.param({"mask": [None] * 3}, r"annotations\.mask: length must be 4, got 3", id="short-mask"),
        pytest.param({"polygon": [None] * 5}, r"annotations\.polygon: length must be 4, got 5", id="long-polygon"),
        pytest.param({"keypoints": np.zeros((4, 17, 2))}, r"annotations\.keypoints: shape must be \(4, K, 3\)",
                     id="kp-last-dim"),
        pytest.param({"keypoints": np.zeros((4, 3))}, r"annotations\.keypoints: shape must be \(4, K, 3\)", id="kp-2d"),
        pytest.param({"iscrowd": [False]}, r"annotations\.iscrowd: length must be 4, got 1", id="short-crowd"),
        pytest.param({"attributes": {"occluded": [True]}},
                     r"annotations\.attributes\['occluded'\]: length must be 4, got 1", id="short-attribute"),
        pytest.param({"annotator": ["ann"] * 2}, r"annotations\.annotator: length must be 4, got 2", id="short-annotator"),
        pytest.param({"source": ["human", "model", "robot", "oracle"]},
                     r"annotations\.source row 2: must be one of .*, got 'robot' \(2 rows\)", id="unknown-source"),
        pytest.param({"source": ["human", None, "human", "human"]},
                     r"annotations\.source row 1: must be one of", id="none-source"),
        pytest.param({"extra": {"coco_id": [1, 2, 3]}}, r"annotations\.extra\['coco_id'\]: length must be 4, got 3",
                     id="short-extra"),
    ],
)
def test_annotations_validation_names_column_and_row(kw: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidDatasetError, match=match):
        ann(**kw)


@pytest.mark.parametrize(
    "box",
    [
        pytest.param([[3, 3, 3, 3]] * 4, id="zero-area"),
        pytest.param([[0, 0, 10, 10]] * 4, id="duplicates"),
        pytest.param([[-50, -50, 500, 500]] * 4, id="outside-image"),
        pytest.param([[0, 0, 1e-9, 5], [np.nan] * 4, [np.nan] * 4, [1, 1, 2, 2]], id="nan-rows"),
    ],
)
def test_suspicious_but_structural_boxes_load(box: list[list[float]]) -> None:
    # findings for quality/, not construction errors
    a = ann(box=box)
    np.testing.assert_array_equal(a.box, np.asarray(box, float))


def test_defaults_fill_optional_columns() -> None:
    a = Annotations(image=[0, 1], label=[0, 0])
    assert a.box is not None and a.box.shape == (2, 4) and np.isnan(a.box).all()
    assert not a.has_box.any()
    assert a.iscrowd is not None and a.iscrowd.tolist() == [False, False]
    assert a.source is not None and a.source.tolist() == ["human", "human"]
    assert a.score is None and a.mask is None and a.polygon is None and a.keypoints is None
    assert a.column_names() == []


def test_every_source_is_accepted_and_a_single_string_fills() -> None:
    a = Annotations(image=np.zeros(4, int), label=np.zeros(4, int), source=list(SOURCES))
    assert a.source is not None and a.source.tolist() == list(SOURCES)
    b = Annotations(image=np.zeros(2, int), label=np.zeros(2, int), source="model")
    assert b.source is not None and b.source.tolist() == ["model", "model"]


def test_empty_tables_accept_empty_columns_of_any_shape() -> None:
    a = Annotations(image=[], label=[], box=[], score=[], keypoints=np.zeros((0, 5, 3)))
    assert len(a) == 0 and a.box is not None and a.box.shape == (0, 4)
    assert a.image.dtype == np.int64 and a.label.dtype == np.int64
    assert len(Annotations.empty()) == 0


def test_has_box_and_column_names() -> None:
    a = ann(box=[[0, 0, 1, 1], [np.nan] * 4, [1, 1, 2, 2], [np.nan] * 4], score=np.ones(4),
            keypoints=np.zeros((4, 2, 3)), annotator=["x"] * 4)
    assert a.has_box.tolist() == [True, False, True, False]
    assert a.column_names() == ["score", "keypoints", "annotator"]


def test_float_integral_columns_are_converted() -> None:
    a = ann(image=np.array([0.0, 0.0, 1.0, 2.0]), label=[0.0, 1.0, 1.0, 0.0], iscrowd=[0, 1, 0, 0])
    assert a.image.dtype == np.int64 and a.image.tolist() == [0, 0, 1, 2]
    assert a.iscrowd is not None and a.iscrowd.dtype == bool and a.iscrowd.tolist() == [False, True, False, False]


# -- read-only columns, copy semantics ---------------------------------------------------------------


def test_columns_are_read_only_and_caller_arrays_stay_writeable() -> None:
    image = np.array([0, 0, 1, 2], np.int64)
    label = np.array([0, 1, 1, 0], np.int64)
    box = np.array([[0, 0, 10, 10], [5, 5, 20, 30], [1, 2, 3, 4], [0, 0, 100, 80]], np.float64)
    score = np.linspace(0, 1, 4)
    kp = np.zeros((4, 2, 3))
    mask = np.empty(4, object)
    attr = np.array([True, None, False, None], dtype=object)
    coco_id = np.arange(4)
    a = Annotations(image=image, label=label, box=box, score=score, keypoints=kp, mask=mask,
                    attributes={"occluded": attr}, extra={"coco_id": coco_id})
    for name, col in [("image", a.image), ("label", a.label), ("box", a.box), ("score", a.score),
                      ("keypoints", a.keypoints), ("mask", a.mask), ("iscrowd", a.iscrowd), ("source", a.source),
                      ("attributes", a.attributes["occluded"]), ("extra", a.extra["coco_id"])]:
        assert col is not None
        assert not col.flags.writeable, name
        with pytest.raises(ValueError, match="read-only"):
            col[0] = col[0]
    for name, mine in [("image", image), ("label", label), ("box", box), ("score", score), ("keypoints", kp),
                       ("mask", mask), ("attr", attr), ("coco_id", coco_id)]:
        assert mine.flags.writeable, f"caller's {name} array was made read-only"
    box[0, 0] = 1.0  # the caller can still write its own array
    assert box[0, 0] == 1.0


def test_images_columns_are_read_only_and_caller_arrays_untouched() -> None:
    path = np.array(["a.png", "b.png"], dtype=object)
    width = np.array([10, 20], np.int64)
    frame = np.array([0, 1])
    im = Images(path=path, width=width, height=width, extra={"frame": frame})
    for col in (im.path, im.width, im.height, im.split, im.extra["frame"]):
        assert col is not None and not col.flags.writeable
    assert path.flags.writeable and width.flags.writeable and frame.flags.writeable


def test_frozen_dataclass_fields_cannot_be_reassigned() -> None:
    a = ann()
    with pytest.raises(AttributeError):
        a.label = np.zeros(4, int)  # type: ignore[misc]


def test_take_and_with_columns_revalidate() -> None:
    a = ann(score=[0.1, 0.2, 0.3, 0.4], attributes={"occ": [1, 2, 3, 4]}, extra={"id": np.arange(4)})
    t = a.take(np.array([1, 2]))
    assert t.image.tolist() == [0, 1] and t.label.tolist() == [1, 1]
    assert t.score is not None and t.score.tolist() == [0.2, 0.3]
    assert t.attributes["occ"].tolist() == [2, 3] and t.extra["id"].tolist() == [1, 2]
    with pytest.raises(InvalidDatasetError, match="sorted by image"):
        a.take(np.array([2, 0]))
    b = a.with_columns(label=np.array([3, 3, 3, 3]))
    assert b.label.tolist() == [3, 3, 3, 3] and a.label.tolist() == [0, 1, 1, 0]
    with pytest.raises(InvalidDatasetError, match=r"annotations\.label row 0"):
        a.with_columns(label=np.array([-1, 0, 0, 0]))


# -- sort_rows --------------------------------------------------------------------------------------


def test_sort_rows_is_stable_and_moves_every_column() -> None:
    a = Annotations.sort_rows(
        image=[2, 0, 1, 0, 2],
        label=[0, 1, 2, 3, 4],
        box=[[i, i, i + 1, i + 1] for i in range(5)],
        score=[0.0, 0.1, 0.2, 0.3, 0.4],
        mask=[{"m": i} for i in range(5)],
        polygon=[[np.array([i, 0, 1, 1, 0, 1.0])] for i in range(5)],
        keypoints=np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3),
        iscrowd=[True, False, False, False, True],
        attributes={"colour": ["r", "g", "b", "c", "m"]},
        annotator=["u0", "u1", "u2", "u3", "u4"],
        source="model",
        extra={"ann_id": [10, 11, 12, 13, 14]},
    )
    order = [1, 3, 2, 0, 4]  # stable: the two image-0 rows keep their order, and so do the image-2 rows
    assert a.image.tolist() == [0, 0, 1, 2, 2]
    assert a.label.tolist() == order
    assert a.box is not None and a.box[:, 0].tolist() == order
    assert a.score is not None and np.allclose(a.score, np.array(order) / 10)
    assert a.mask is not None and [m["m"] for m in a.mask] == order
    assert a.polygon is not None and [int(p[0][0]) for p in a.polygon] == order
    assert a.keypoints is not None and a.keypoints[:, 0, 0].tolist() == [6 * i for i in order]
    assert a.iscrowd is not None and a.iscrowd.tolist() == [False, False, False, True, True]
    assert a.attributes["colour"].tolist() == ["g", "c", "b", "r", "m"]
    assert a.annotator is not None and a.annotator.tolist() == [f"u{i}" for i in order]
    assert a.source is not None and a.source.tolist() == ["model"] * 5
    assert a.extra["ann_id"].tolist() == [10 + i for i in order]


def test_sort_rows_keeps_sorted_input_and_handles_empty() -> None:
    a = Annotations.sort_rows(image=[0, 0, 1], label=[2, 1, 0])
    assert a.label.tolist() == [2, 1, 0]
    assert len(Annotations.sort_rows(image=[], label=[])) == 0
