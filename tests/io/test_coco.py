"""COCO instances/keypoints JSON: golden file, round trips, real data against pycocotools, bad input, findings."""

from __future__ import annotations

import contextlib
import io as _io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from maslow import io
from maslow.core import boxes as B
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError, MaslowWarning
from maslow.io.coco import parse, read_coco, write_coco
from tests.conftest import shared_path
from tests.helpers import assert_datasets_equal

GOLDEN = Path(__file__).parents[1] / "data" / "coco" / "instances.json"


def dump(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def base_file() -> dict[str, Any]:
    """A small valid file to plant errors in."""
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
                   {"id": 2, "file_name": "b.jpg", "width": 100, "height": 80}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [50, 40, 10, 10], "area": 100, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "thing", "supercategory": ""}],
    }


def by_id(path: Path) -> tuple[dict[int, Any], dict[int, Any], list[Any]]:
    d = json.loads(path.read_text())
    return {a["id"]: a for a in d["annotations"]}, {i["id"]: i for i in d["images"]}, d["categories"]


# -- golden file -------------------------------------------------------------------------------------
def test_golden_file_reads_every_field() -> None:
    ds, report = parse(GOLDEN)
    assert len(report) == 0
    assert ds.root == GOLDEN.parent
    assert ds.images.path.tolist() == ["img_a.jpg", "sub/img_b.jpg", "img_empty.jpg"]
    assert ds.images.extra["coco_id"].tolist() == [7, 9, 12]
    assert ds.images.width.tolist() == [64, 32, 40] and ds.images.height.tolist() == [48, 32, 30]
    assert ds.images.extra["license"].tolist() == [1, 1, None]
    assert np.diff(ds.image_slices()).tolist() == [2, 2, 0]  # the third image is empty
    a = ds.annotations
    assert a.extra["coco_id"].tolist() == [101, 102, 103, 104]
    np.testing.assert_array_equal(a.box, [[0, 0, 20, 10], [30.5, 10, 64, 48], [8, 4, 16, 12], [1.25, 2.5, 11.25, 23.25]])
    assert a.box[1, 2] == ds.images.width[0] and a.box[1, 3] == ds.images.height[0]  # touches the border
    assert a.iscrowd.tolist() == [False, False, True, False]
    assert a.extra["area"].tolist() == [200.0, 640.25, 64.0, 207.5]
    assert ds.schema.names == ("cat", "person") and [c.id for c in ds.schema.classes] == [1, 3]
    person = ds.schema.classes[1]
    assert person.keypoints == ("nose", "left_eye", "right_eye") and person.skeleton == ((0, 1), (0, 2))
    assert ds.schema.classes[0].supercategory == "animal"
    assert ds.schema.tasks == (Task.KEYPOINTS, Task.INSTANCE_SEGMENTATION, Task.DETECTION)
    assert a.polygon is not None and a.mask is not None and a.keypoints is not None
    np.testing.assert_array_equal(a.polygon[0][0], [0, 0, 20, 0, 20, 10, 0, 10])
    assert len(a.polygon[1]) == 2 and a.polygon[2] is None and a.polygon[3] is None
    assert a.mask[0] is None and a.mask[1] is None
    expected = np.zeros((32, 32), bool)
    expected[4:12, 8:16] = True
    np.testing.assert_array_equal(M.decode(a.mask[2]), expected)
    np.testing.assert_array_equal(a.keypoints[1], [[40, 15, 2], [38, 13, 1], [0, 0, 0]])
    assert np.isnan(a.keypoints[0]).all() and np.isnan(a.keypoints[2]).all()
    np.testing.assert_array_equal(a.keypoints[3], np.zeros((3, 3)))
    assert a.attributes["occluded"].tolist() == [False, True, None, None]
    assert a.attributes["colour"].tolist() == ["black", None, None, None]
    assert {x.name: x.type for x in ds.schema.attributes} == {"occluded": "bool", "colour": "text"}


def test_golden_file_round_trips_to_the_same_json(tmp_path: Path) -> None:
    ds = read_coco(GOLDEN)
    rep = write_coco(ds, tmp_path / "out.json")
    assert rep.lossless and rep.n_annotations == 4 and rep.n_images == 3
    anns, imgs, cats = by_id(tmp_path / "out.json")
    src_anns, src_imgs, src_cats = by_id(GOLDEN)
    assert cats == src_cats
    assert imgs == src_imgs
    for k, a in src_anns.items():
        assert anns[k] == a, f"annotation {k}"


# -- round trips -------------------------------------------------------------------------------------
def test_shapes_round_trip(tmp_path: Path, shapes_ds: Dataset) -> None:
    rep = write_coco(shapes_ds, tmp_path / "shapes.json")
    assert rep.lossless, rep.lost  # masks equal their polygons, so nothing is lost
    back = read_coco(tmp_path / "shapes.json")
    assert_datasets_equal(shapes_ds, back, fields=("path", "size", "split", "label", "box", "iscrowd", "polygon"),
                          attributes=("colour", "occluded"))
    a, b = shapes_ds.annotations, back.annotations
    assert b.mask is not None and a.mask is not None
    for r in range(len(a)):  # crowd regions come back as masks, the others as the polygons they were drawn from
        poly = b.polygon[r] if b.polygon is not None else None
        got = b.mask[r] if a.iscrowd[r] else M.from_polygons(poly, 120, 160)
        np.testing.assert_array_equal(M.decode(got), M.decode(a.mask[r]))
    tri = a.label == shapes_ds.schema.index("triangle")
    assert a.keypoints is not None and b.keypoints is not None
    np.testing.assert_array_equal(b.keypoints[tri], a.keypoints[tri])
    assert np.isnan(b.keypoints[~tri]).all()  # classes without keypoint names carry none
    np.testing.assert_array_equal(back.images.extra["frame"], shapes_ds.images.extra["frame"])
    assert back.images.extra["sequence"].tolist() == shapes_ds.images.extra["sequence"].tolist()
    assert back.schema.classes == tuple(c.__class__(**{**c.__dict__, "label_types": ()}) for c in shapes_ds.schema.classes)


def _hand_made() -> Dataset:
    poly = [np.array([1.0, 1, 9, 1, 9, 9])]
    other = M.encode(np.ones((20, 30), bool))
    ann = Annotations(
        image=[0, 0, 0, 1], label=[0, 1, 0, 1],
        box=[[1, 1, 9, 9], [np.nan] * 4, [2.5, 3.25, 10.125, 11.0], [np.nan] * 4],
        score=[0.9, np.nan, 0.25, np.nan],
        polygon=obj_array([poly, None, poly, None]), mask=obj_array([other, None, None, M.encode(np.eye(20, 30))]),
        attributes={"note": obj_array([{"a": [1, 2]}, None, 3.5, "x"])},
        annotator=obj_array(["ann1", None, "ann2", "ann1"]), source=obj_array(["model", "human", "pseudo", "human"]),
        extra={"track": np.array([5, 6, 7, 8])},
    )
    images = Images(path=["x.jpg", "y.jpg"], width=[30, 30], height=[20, 20], extra={"camera": obj_array(["a", None])})
    schema = LabelSchema(classes=(ClassDef("a", id=4), ClassDef("b")))
    return Dataset(schema=schema, images=images, annotations=ann)


def test_hand_made_round_trip_counts_what_coco_cannot_hold(tmp_path: Path) -> None:
    ds = _hand_made()
    rep = write_coco(ds, tmp_path / "h.json")
    assert rep.lost == {"tags": 1, "mask": 1}  # row 1 has no geometry; row 0's mask differs from its polygon
    assert rep.n_annotations == 3
    back = read_coco(tmp_path / "h.json")
    a = back.annotations
    assert [c.id for c in back.schema.classes] == [4, 5]  # a missing class id gets the next free one
    assert a.extra["coco_id"].tolist() == [1, 3, 4]
    np.testing.assert_array_equal(a.box[:2], [[1, 1, 9, 9], [2.5, 3.25, 10.125, 11.0]])
    np.testing.assert_array_equal(a.box[2], M.to_box([ds.annotations.mask[3]])[0])  # box from the mask
    np.testing.assert_array_equal(a.score, [0.9, 0.25, np.nan])
    assert a.attributes["note"].tolist() == [{"a": [1, 2]}, 3.5, "x"]
    assert a.annotator is not None and a.annotator.tolist() == ["ann1", "ann2", "ann1"]
    assert a.source is not None and a.source.tolist() == ["model", "pseudo", "human"]
    assert a.extra["track"].tolist() == [5, 7, 8]
    assert back.images.extra["camera"].tolist() == ["a", None]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(*[st.integers(0, 10**6)] * 4), min_size=1, max_size=20),
       st.sampled_from([1, 10, 100, 1000]))
def test_bbox_decimal_xywh_survives_read_and_write(tmp_path_factory: pytest.TempPathFactory,
                                                    boxes: list[tuple[int, ...]], scale: int) -> None:
    xywh = [[v / scale for v in b] for b in boxes]
    d = base_file()
    d["annotations"] = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": 1.0, "iscrowd": 0}
                        for i, b in enumerate(xywh)]
    d["images"][0].update(width=0, height=0)  # unknown size: no bounds findings
    tmp = tmp_path_factory.mktemp("bbox")
    ds = read_coco(dump(tmp / "in.json", d), images_root=tmp)
    np.testing.assert_array_equal(ds.annotations.box[:, :2], np.array(xywh)[:, :2])
    if scale == 1:  # whole pixels: x2 - x1 is exact, nothing more is kept
        assert B.COCO_BBOX not in ds.annotations.extra
    write_coco(ds, tmp / "out.json")
    assert [a["bbox"] for a in json.loads((tmp / "out.json").read_text())["annotations"]] == xywh


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e4), st.floats(0, 1e4), st.floats(0, 1e4), st.floats(0, 1e4)),
                min_size=1, max_size=20))
def test_full_precision_bbox_survives_read_and_write_to_the_bit(tmp_path_factory: pytest.TempPathFactory,
                                                                 boxes: list[tuple[float, ...]]) -> None:
    """Model-made boxes carry every digit; x2 - x1 does not give w back, so the boxes as read are kept."""
    xywh = [list(b) for b in boxes]
    d = base_file()
    d["annotations"] = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": 1.0, "iscrowd": 0}
                        for i, b in enumerate(xywh)]
    d["images"][0].update(width=0, height=0)
    tmp = tmp_path_factory.mktemp("bbox")
    ds = read_coco(dump(tmp / "in.json", d), images_root=tmp)
    box = ds.annotations.box
    if B.COCO_BBOX not in ds.annotations.extra:  # left out only where x2 - x1 gives every w back
        assert all(x2 - x1 == w and y2 - y1 == h for (x1, y1, x2, y2), (_, _, w, h) in zip(box, xywh, strict=True))
    write_coco(ds, tmp / "out.json")
    assert [a["bbox"] for a in json.loads((tmp / "out.json").read_text())["annotations"]] == xywh
    rep = io.write(ds, tmp / "yolo", "yolo")
    assert "annotations.extra" not in rep.lost  # the boxes as read are the box, not an extra column


def test_boxes_as_read_are_not_trusted_once_edited(tmp_path: Path) -> None:
    d = base_file()
    d["annotations"][0]["bbox"] = [0.1, 0.7, 12.345678901234567, 3.3000000000000003]
    ds = read_coco(dump(tmp_path / "in.json", d), images_root=tmp_path)
    assert B.COCO_BBOX in ds.annotations.extra
    moved = ds.annotations.box.copy()
    moved[0] += 1.0
    write_coco(ds.replace(annotations=ds.annotations.with_columns(box=moved)), tmp_path / "out.json")
    got = json.loads((tmp_path / "out.json").read_text())["annotations"][0]["bbox"]
    assert got[:2] == [1.1, 1.7] and abs(got[2] - 12.345678901234567) < 1e-9


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.floats(0, 1e6), st.floats(0, 1e6)),
                min_size=1, max_size=20))
def test_bbox_xyxy_survives_write_and_read(tmp_path_factory: pytest.TempPathFactory,
                                           boxes: list[tuple[float, ...]]) -> None:
    xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in boxes])
    ds = Dataset(schema=LabelSchema.from_names(["a"]), images=Images(path=["a.jpg"], width=[0], height=[0]),
                 annotations=Annotations(image=np.zeros(len(xyxy), int), label=np.zeros(len(xyxy), int), box=xyxy))
    tmp = tmp_path_factory.mktemp("xyxy")
    write_coco(ds, tmp / "b.json")
    back = read_coco(tmp / "b.json")
    np.testing.assert_allclose(back.annotations.box, xyxy, rtol=1e-15, atol=1e-9)
    assert np.mean(back.annotations.box == xyxy) > 0.9  # exact for nearly all values


# -- real data ---------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' decode under numpy 2
def test_coco_instances_10_matches_pycocotools() -> None:
    path = shared_path("coco_instances_10", "annotations", "instances_val2017_subset.json")
    ds, report = parse(path)
    assert len(report) == 0
    assert (ds.n_images, ds.n_annotations, len(ds.schema.classes)) == (10, 77, 80)
    assert ds.root == path.parents[1] / "images"  # found the sibling images/ folder
    a = ds.annotations
    assert a.polygon is not None and a.mask is not None
    assert sum(p is not None for p in a.polygon) == 76 and sum(m is not None for m in a.mask) == 1
    assert int(a.iscrowd.sum()) == 1
    with contextlib.redirect_stdout(_io.StringIO()):
        coco = COCO(str(path))
    ids = a.extra["coco_id"].tolist()
    for r, ann_id in enumerate(ids):
        ann = coco.anns[ann_id]
        img = coco.imgs[ann["image_id"]]
        assert ds.images.extra["coco_id"][a.image[r]] == img["id"]
        np.testing.assert_allclose(a.box[r], [*ann["bbox"][:2], ann["bbox"][0] + ann["bbox"][2],
                                              ann["bbox"][1] + ann["bbox"][3]])
        ours = M.from_polygons(a.polygon[r], img["height"], img["width"]) if a.polygon[r] is not None else a.mask[r]
        np.testing.assert_array_equal(M.decode(ours), coco.annToMask(ann).astype(bool), err_msg=f"ann {ann_id}")
        assert a.extra["area"][r] == ann["area"]


@pytest.mark.parametrize(("parts", "n_img", "n_ann", "n_cls"), [
    pytest.param(("od_metrics_fixture", "annotations", "gts", "coco_format_v1", "instances_default.json"),
                 100, 273, 20, id="od-v1"),
    pytest.param(("od_metrics_fixture", "annotations", "gts", "coco_format_v2", "instances_v2.json"),
                 100, 273, 20, id="od-v2"),
    pytest.param(("od_metrics_fixture", "annotations", "coco_eval_case", "gts", "sampled_gts_bbox_area.json"),
                 100, 830, 80, id="coco-eval-case"),
    pytest.param(("coco_instances_10", "annotations", "instances_val2017_subset.json"), 10, 77, 80, id="coco-10"),
])
def test_real_files_round_trip_by_id(tmp_path: Path, parts: tuple[str, ...], n_img: int, n_ann: int,
                                     n_cls: int) -> None:
    path = shared_path(*parts)
    ds, report = parse(path)
    assert len(report) == 0
    assert (ds.n_images, ds.n_annotations, len(ds.schema.classes)) == (n_img, n_ann, n_cls)
    rep = write_coco(ds, tmp_path / "out.json")
    assert rep.lossless
    anns, imgs, cats = by_id(tmp_path / "out.json")
    src_anns, src_imgs, src_cats = by_id(path)
    assert cats == src_cats and imgs == src_imgs
    for k, a in src_anns.items():
        got = anns[k]
        a = {key: v for key, v in a.items() if key != "num_keypoints" and not (key == "segmentation" and v == [])}
        assert {key: got.get(key) for key in a} == a, f"annotation id {k}"


def test_od_fixture_v1_attributes_and_v2_extras() -> None:
    v1 = read_coco(shared_path("od_metrics_fixture", "annotations", "gts", "coco_format_v1", "instances_default.json"))
    assert set(v1.annotations.attributes["occluded"].tolist()) <= {True, False}
    v2 = read_coco(shared_path("od_metrics_fixture", "annotations", "gts", "coco_format_v2", "instances_v2.json"))
    assert v2.annotations.extra["ignore"].dtype == np.int64
    v1_boxes = v1.select_images(np.argsort(v1.images.path.astype(str)))
    v2_boxes = v2.select_images(np.argsort(v2.images.path.astype(str)))
    assert v1_boxes.n_annotations == v2_boxes.n_annotations == 273


# -- technical findings ------------------------------------------------------------------------------
def test_planted_findings_are_reported_and_unrepresentable_records_left_out(tmp_path: Path) -> None:
    d = base_file()
    d["images"].append({"id": 2, "file_name": "dup.jpg", "width": 10, "height": 10})  # duplicate image id
    anns = d["annotations"]
    anns += [
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4},  # duplicate ann id
        {"id": 3, "image_id": 99, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4},  # no such image
        {"id": 4, "image_id": 1, "category_id": 7, "bbox": [1, 1, 2, 2], "area": 4},  # no such category
        {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2], "area": 4},  # 3 numbers
        {"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 1, "2", 2], "area": 4},  # a string
        {"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 1, -2, 2], "area": 4},  # negative width
        {"id": 8, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4,
         "segmentation": [[1, 1, 3, 1, 3]]},  # odd coordinate count
        {"id": 9, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4,
         "segmentation": [[1, 1, 3, 3]]},  # two points
        {"id": 10, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4,
         "segmentation": {"size": [8, 8], "counts": [64]}},  # RLE of another size
        {"id": 11, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]},  # no area
        {"image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4},  # no id
    ]
    ds, report = parse(dump(tmp_path / "bad.json", d))
    counts = report.counts()
    assert counts == {
        "coco_duplicate_image_id": 1, "coco_duplicate_annotation_id": 1, "coco_unknown_image": 1,
        "coco_unknown_category": 1, "coco_bad_bbox": 2, "coco_negative_box_size": 1, "coco_bad_polygon": 1,
        "coco_degenerate_polygon": 1, "coco_rle_size_mismatch": 1, "coco_missing_area": 1, "coco_missing_id": 1,
    }
    assert ds.n_annotations == len(anns) - 2  # the orphan and the unknown category are left out
    (orphan,) = report.of_type("coco_unknown_image")
    assert orphan.severity == "error" and orphan.record == "annotations[3] (id=3)" and orphan.field == "image_id"
    assert "99" in orphan.message and orphan.annotation is None
    (neg,) = report.of_type("coco_negative_box_size")
    assert neg.annotation is not None and np.isnan(ds.annotations.box[neg.annotation]).all()
    (odd,) = report.of_type("coco_bad_polygon")
    assert odd.annotation is not None and ds.annotations.polygon is not None
    assert ds.annotations.polygon[odd.annotation] is None
    assert "12 annotations" not in report.of_type("coco_missing_area")[0].message
    with pytest.warns(MaslowWarning, match="import issues"):
        read_coco(tmp_path / "bad.json")
    with pytest.raises(FormatError, match=r"strict mode"):
        parse(tmp_path / "bad.json", strict=True)


def test_boxes_written_as_xyxy_are_reported_once(tmp_path: Path) -> None:
    d = base_file()
    d["images"][0].update(width=100, height=100)
    xyxy = [[60, 50, 90, 95], [70, 10, 95, 60], [5, 5, 20, 30], [55, 60, 80, 90]]
    d["annotations"] = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": 1.0}
                        for i, b in enumerate(xyxy)]
    _, report = parse(dump(tmp_path / "xyxy.json", d))
    (issue,) = report.issues
    assert issue.type == "coco_bbox_looks_xyxy" and issue.severity == "error"
    assert "3 of 4 boxes" in issue.message


def test_a_few_boxes_written_as_xyxy_among_many_give_a_warning(tmp_path: Path) -> None:
    d = base_file()
    d["images"][0].update(width=100, height=100)
    boxes = [[10 + i, 10, 5, 5] for i in range(30)] + [[60, 50, 90, 95], [70, 10, 95, 60]]
    d["annotations"] = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": 1.0}
                        for i, b in enumerate(boxes)]
    _, report = parse(dump(tmp_path / "xyxy.json", d))
    (issue,) = report.issues
    assert issue.type == "coco_bbox_looks_xyxy" and issue.severity == "warning"
    assert "2 of 32 boxes" in issue.message and issue.record == "annotations[30] (id=31)"


def test_keypoints_of_the_wrong_length_are_reported(tmp_path: Path) -> None:
    d = base_file()
    d["categories"][0]["keypoints"] = ["a", "b"]
    d["annotations"][0]["keypoints"] = [1, 1, 2, 5, 5, 2]
    d["annotations"][1]["keypoints"] = [1, 1, 2]
    ds, report = parse(dump(tmp_path / "kp.json", d))
    (issue,) = report.issues
    assert issue.type == "coco_bad_keypoints" and issue.record == "annotations[1] (id=2)"
    assert ds.annotations.keypoints is not None
    np.testing.assert_array_equal(ds.annotations.keypoints[0], [[1, 1, 2], [5, 5, 2]])
    assert np.isnan(ds.annotations.keypoints[1]).all()


def test_keypoint_arrays_narrower_than_the_names_write_3k_values(tmp_path: Path) -> None:
    # the schema names 3 points, the table holds 2 columns (the third unlabelled): COCO wants 3 K values a record
    schema = LabelSchema(classes=(ClassDef("p", keypoints=("a", "b", "c")),), tasks=(Task.KEYPOINTS,))
    ds = Dataset(schema=schema, images=Images(path=["x.png"], width=[20], height=[20]),
                 annotations=Annotations(image=[0], label=[0], box=[[1, 1, 9, 9]],
                                         keypoints=np.array([[[2, 3, 2], [4, 5, 1]]], np.float64)))
    rep = write_coco(ds, tmp_path / "kp.json")
    assert rep.lost.get("keypoints", 0) == 0
    rec = json.loads((tmp_path / "kp.json").read_text())["annotations"][0]
    assert rec["keypoints"] == [2, 3, 2, 4, 5, 1, 0, 0, 0] and rec["num_keypoints"] == 2
    with contextlib.redirect_stdout(_io.StringIO()):
        coco = COCO(str(tmp_path / "kp.json"))  # the reference reader takes it
    assert coco.loadAnns(coco.getAnnIds())[0]["keypoints"] == rec["keypoints"]
    back = read_coco(tmp_path / "kp.json")
    assert back.annotations.keypoints is not None and back.annotations.keypoints.shape[1:] == (3, 3)
    np.testing.assert_array_equal(back.annotations.keypoints[0, :2], ds.annotations.keypoints[0])


def test_fields_that_appear_late_in_a_large_file(tmp_path: Path) -> None:
    d = base_file()
    d["annotations"] = [{"id": i, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4.0}
                        for i in range(1, 400)]
    d["annotations"][-1].update(score=0.5, attributes={"x": 1}, extra_key="v")
    ds, report = parse(dump(tmp_path / "late.json", d), chunk_bytes=1000)  # many chunks; the last one differs
    a = ds.annotations
    assert len(report) == 0 and a.score is not None
    assert np.isnan(a.score[:-1]).all() and a.score[-1] == 0.5
    assert a.attributes["x"].tolist() == [None] * 398 + [1]
    assert a.extra["extra_key"].tolist() == [None] * 398 + ["v"]


def test_streaming_and_whole_file_parsing_agree(tmp_path: Path) -> None:
    ds_small, _ = parse(GOLDEN, chunk_bytes=64)  # cut into many pieces
    ds_whole, _ = parse(GOLDEN)
    assert_datasets_equal(ds_small, ds_whole, fields=("path", "size", "label", "box", "keypoints", "iscrowd",
                                                      "mask", "polygon"), attributes=("occluded", "colour"))
    nested = base_file()
    nested["info"] = {"annotations": [{"id": 1}], "note": "}, {\"annotations\": ["}  # forces the fallback
    ds, report = parse(dump(tmp_path / "nested.json", nested), chunk_bytes=16)
    assert ds.n_annotations == 2 and len(report) == 0


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "match"), [
    pytest.param('{"images": [', r"malformed JSON at line 1", id="truncated"),
    pytest.param('{"images": [}', r"malformed JSON at line 1 column 13", id="malformed"),
    pytest.param("[]", r"must be a COCO object", id="top-level-list"),
    pytest.param('{"images": {}}', r"field 'images': must be a list", id="images-not-list"),
    pytest.param('{"images": [{"id": 1, "width": 1, "height": 1}]}', r"images\[0\] \(id=1\), field 'file_name'",
                 id="no-file-name"),
    pytest.param('{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": "x", "file_name": "b.jpg"}]}',
                 r"images\[1\], field 'id'", id="image-id-mixed"),
    pytest.param('{"images": [{"id": 1, "file_name": "a.jpg", "width": "640", "height": 480}]}',
                 r"images\[0\] \(id=1\), field 'width': width must be an integer", id="width-str"),
    pytest.param('{"images": [{"id": 1, "file_name": "../../etc/passwd", "width": 1, "height": 1}]}',
                 r"must stay inside the dataset root", id="path-traversal"),
    pytest.param('{"images": [], "annotations": [{"id": 1}, 5]}', r"annotations\[1\]: must be an object",
                 id="annotation-not-object"),
    pytest.param('{"images": [], "categories": [{"name": "x"}]}', r"categories\[0\], field 'id'", id="category-no-id"),
])
def test_bad_files_raise_format_errors_naming_the_place(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(FormatError, match=match):
        parse(path)


@pytest.mark.parametrize("masks", [False, True])
def test_annotations_without_any_image_are_each_reported(tmp_path: Path, masks: bool) -> None:
    d = base_file()
    del d["images"]
    if masks:  # the RLE size check reads the image sizes too
        for a in d["annotations"]:
            a["segmentation"] = {"size": [80, 100], "counts": "Pj7"}  # an empty 80 x 100 mask
    ds, report = parse(dump(tmp_path / "noimages.json", d))
    assert ds.n_images == 0 and len(ds.annotations) == 0
    found = [(i.type, i.record, i.field) for i in report]
    assert found == [("coco_unknown_image", "annotations[0] (id=1)", "image_id"),
                     ("coco_unknown_image", "annotations[1] (id=2)", "image_id")]
    with pytest.raises(FormatError, match=r"annotations\[0\] \(id=1\), field 'image_id'"):
        parse(tmp_path / "noimages.json", strict=True)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="file not found"):
        parse(tmp_path / "nope.json")


# -- roots and registry ------------------------------------------------------------------------------
def test_images_root_is_found_beside_or_given(tmp_path: Path) -> None:
    d = base_file()
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"")
    ds = read_coco(dump(tmp_path / "annotations" / "instances_train.json", d))
    assert ds.root == tmp_path / "images"
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "b.jpg").write_bytes(b"")
    (tmp_path / "images" / "a.jpg").unlink()
    assert read_coco(tmp_path / "annotations" / "instances_train.json").root == tmp_path / "train"
    assert read_coco(tmp_path / "annotations" / "instances_train.json", images_root=tmp_path).root == tmp_path


def test_missing_sizes_are_read_from_the_image_files(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (33, 21)).save(tmp_path / "a.jpg")
    d = base_file()
    del d["images"][0]["width"]
    d["images"][0]["height"] = None
    d["images"][1].update(width=None, height=None)  # b.jpg does not exist: size unknown (0)
    ds, report = parse(dump(tmp_path / "sizes.json", d))
    assert ds.images.width.tolist() == [33, 0] and ds.images.height.tolist() == [21, 0]
    # one box beyond its image is check_boxes' finding, not a convention; the size left unknown is said
    assert report.counts() == {"coco_unknown_size": 1}


@pytest.mark.parametrize("key", ["width", "height"])
def test_a_null_size_without_an_image_file_is_reported(tmp_path: Path, key: str) -> None:
    d = base_file()
    d["images"][1][key] = None  # b.jpg does not exist: its size can't be read (used to become 0 silently)
    ds, report = parse(dump(tmp_path / "sizes.json", d))
    (issue,) = report.of_type("coco_unknown_size")
    assert (issue.record, issue.field, issue.image) == ("images[1] (id=2)", key, 1)
    assert issue.file.endswith("sizes.json") and "got None" in issue.message and "b.jpg" in issue.message
    assert getattr(ds.images, key)[1] == 0


def test_registry_dispatches_to_coco(tmp_path: Path) -> None:
    ds = io.read(GOLDEN, "coco")
    assert ds.n_annotations == 4 and io.read_coco is read_coco
    rep = io.write(ds, tmp_path / "x.json", "coco")
    assert rep.format == "coco" and (tmp_path / "x.json").exists()


def test_write_is_atomic_and_keeps_ids(tmp_path: Path) -> None:
    ds = read_coco(GOLDEN)
    out = tmp_path / "o.json"
    out.write_text("previous")
    write_coco(ds, out)
    assert sorted(by_id(out)[0]) == [101, 102, 103, 104]
    assert [p.name for p in tmp_path.iterdir()] == ["o.json"]  # no temporary files left


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' decode under numpy 2
def test_generated_file_matches_pycocotools(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    from io_bench import generate_coco

    path = tmp_path / "gen.json"
    generate_coco(path, n_images=200, n_annotations=3000, crowd_fraction=0.02)
    ds, report = parse(path, chunk_bytes=50_000)
    assert len(report) == 0
    with contextlib.redirect_stdout(_io.StringIO()):
        coco = COCO(str(path))
    assert ds.n_annotations == len(coco.anns) == 3000
    a = ds.annotations
    order = np.argsort(a.extra["coco_id"])
    ref = [coco.anns[i] for i in sorted(coco.anns)]
    ref_box = np.array([r["bbox"] for r in ref])
    np.testing.assert_array_equal(a.box[order][:, :2], ref_box[:, :2])
    np.testing.assert_allclose(a.box[order][:, 2:] - a.box[order][:, :2], ref_box[:, 2:], atol=1e-9)
    assert a.mask is not None
    crowd = np.flatnonzero(a.iscrowd)
    assert crowd.size > 10
    for r in crowd.tolist():
        ann = coco.anns[int(a.extra["coco_id"][r])]
        expected = mask_utils.decode(coco.annToRLE(ann)).astype(bool)
        np.testing.assert_array_equal(M.decode(a.mask[r]), expected)

