"""Label Studio JSON export: golden file, round trips, brush RLE, URL mapping, bad input, planted findings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from defusedxml import ElementTree as SafeET
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from maslow import io
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError, MaslowWarning
from maslow.io import labelstudio as ls
from tests.helpers import assert_datasets_equal

GOLDEN = Path(__file__).parents[1] / "data" / "labelstudio" / "export.json"
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _rect(x: float, y: float, w: float, h: float, label: str = "car", **kw: Any) -> dict[str, Any]:
    return {"id": kw.pop("id", "r"), "type": "rectanglelabels", "from_name": "label", "to_name": "image",
            "original_width": kw.pop("ow", 200), "original_height": kw.pop("oh", 100),
            "value": {"x": x, "y": y, "width": w, "height": h, "rectanglelabels": [label], **kw}}


def _tasks(tmp_path: Path, results: list[Any], image: str = "images/a.jpg", **task: Any) -> Path:
    p = tmp_path / "export.json"
    p.write_text(json.dumps([{"id": 1, "data": {"image": image}, "annotations": [{"id": 9, "result": results}],
                              **task}]), encoding="utf-8")
    return p


def _one_image(**columns: Any) -> Dataset:
    n = len(columns["label"])
    return Dataset(schema=LabelSchema.from_names(["a", "b"]),
                   images=Images(path=obj_array(["x.png"]), width=np.array([40]), height=np.array([30])),
                   annotations=Annotations(image=np.zeros(n, np.int64), **columns))


# -- golden file -----------------------------------------------------------------------------------------------
def test_golden_reads_tasks_annotations_and_predictions() -> None:
    ds, report = ls.parse(GOLDEN)
    assert report.counts() == {"cancelled_annotation": 1, "labelstudio_unknown_size": 1}  # images/empty.jpg
    assert report.issues[0].severity == "info"
    assert ds.images.path.tolist() == ["upload/3/1a2b3c4d-street.jpg", "images/empty.jpg", "bucket/photos/cat 1.jpg"]
    assert ds.images.extra["ls_task_id"].tolist() == [11, 12, 13]
    assert ds.images.width.tolist() == [200, 0, 0]  # sizes come from original_width/height
    assert ds.schema.names == ("car", "person", "outdoor", "indoor", "sunny", "landmark")
    assert [t.value for t in ds.schema.tasks] == ["instance_segmentation", "detection", "keypoints", "multilabel"]
    a = ds.annotations
    assert a.image.tolist() == [0, 0, 0, 0, 0, 2, 2, 2]  # the empty image has none
    assert [ds.schema.names[k] for k in a.label] == ["car", "person", "landmark", "car", "person", "outdoor",
                                                     "sunny", "outdoor"]
    np.testing.assert_allclose(a.box[0], [0, 50, 50, 100])  # touches the left and bottom border
    np.testing.assert_allclose(a.box[3], [100, 0, 120, 20])
    assert a.polygon[1][0].tolist() == [100, 10, 150, 10, 150, 40]
    np.testing.assert_allclose(a.keypoints[1], [[120, 20, 2]])  # the nose, grouped by parentID
    np.testing.assert_allclose(a.keypoints[2], [[20, 10, 2]])  # a keypoint without parent: its own row
    assert ds.schema.classes[1].keypoints == ("nose",)
    assert np.isnan(a.box[[2, 5, 6, 7]]).all()
    np.testing.assert_allclose(a.score, [np.nan, np.nan, np.nan, 0.87, 0.5, np.nan, np.nan, np.nan])
    assert a.source.tolist() == ["human"] * 3 + ["model"] * 2 + ["human"] * 3
    assert a.annotator.tolist() == ["1", "1", "1", None, None, "1", "1", "c@example.org"]
    assert a.attributes["quality"].tolist() == ["blurry"] + [None] * 7
    assert a.extra["ls_model_version"][3] == "yolo-v1" and a.extra["ls_annotation_id"][7] == 105
    assert ds.schema.classes[0].color == "#ff0000"


def test_golden_round_trip(tmp_path: Path) -> None:
    ds, _ = ls.parse(GOLDEN)
    report = ls.write(ds, tmp_path / "out.json")
    assert report.lossless, report.lost
    assert (tmp_path / "out.label_config.xml").is_file()
    back, rep = ls.parse(tmp_path / "out.json")
    assert rep.counts() == {"cancelled_annotation": 1, "labelstudio_unknown_size": 1}  # written back as read
    assert back.schema.names == ds.schema.names
    assert back.schema.attributes == ds.schema.attributes
    assert_datasets_equal(ds, back, fields=("path", "size", "label", "box", "polygon", "keypoints", "score"),
                          attributes=("quality",))
    for col in ("annotator", "source"):
        assert getattr(back.annotations, col).tolist() == getattr(ds.annotations, col).tolist()
    for k in ("ls_result_id", "ls_annotation_id", "ls_model_version", "ls_from_name"):
        assert back.annotations.extra[k].tolist() == ds.annotations.extra[k].tolist(), k
    assert back.images.extra["ls_url"].tolist() == ds.images.extra["ls_url"].tolist()
    tasks = json.loads((tmp_path / "out.json").read_text())
    assert [len(t["annotations"]) for t in tasks] == [1, 1, 3]  # as read: the empty and the cancelled ones too
    pred = tasks[0]["predictions"][0]
    assert pred["model_version"] == "yolo-v1" and pred["score"] == 0.5
    assert [r.get("score") for r in pred["result"]] == [0.87, None]  # as read: q2 has its prediction's score


def test_shapes_round_trip(shapes_on_disk: Dataset, tmp_path: Path) -> None:
    ds = shapes_on_disk
    report = ls.write(ds, tmp_path / "ls" / "tasks.json")
    assert report.lost["iscrowd"] == int(ds.annotations.iscrowd.sum())
    assert report.lost["split"] == ds.n_images and "mask" not in report.lost
    back = io.read_labelstudio(tmp_path / "ls" / "tasks.json", images_root=ds.root)
    assert back.images.path.tolist() == ds.images.path.tolist()
    assert_datasets_equal(ds, back, fields=("path", "size", "label", "box", "polygon"),
                          attributes=("colour", "occluded"))
    tri = ds.annotations.label == 2
    np.testing.assert_allclose(back.annotations.keypoints[tri], ds.annotations.keypoints[tri])
    assert back.schema.classes[2].keypoints == ("top", "left", "right")
    crowd = ds.annotations.iscrowd
    for m0, m1 in zip(ds.annotations.mask[crowd], back.annotations.mask[crowd], strict=True):
        assert np.array_equal(M.decode(m0), M.decode(m1))  # brush RLE, exactly
    assert {a.name: a.type for a in back.schema.attributes} == {"colour": "enum", "occluded": "bool"}


@SETTINGS
@given(st.integers(1, 4000), st.integers(1, 3000), st.lists(st.floats(0, 1), min_size=4, max_size=4))
def test_percent_pixel_conversion_round_trips(tmp_path: Path, w: int, h: int, f: list[float]) -> None:
    x1, x2 = sorted(f[:2])
    y1, y2 = sorted(f[2:])
    box = np.array([[x1 * w, y1 * h, x2 * w, y2 * h]])
    ds = Dataset(schema=LabelSchema.from_names(["a"]),
                 images=Images(path=obj_array(["x.png"]), width=np.array([w]), height=np.array([h])),
                 annotations=Annotations(image=np.array([0]), label=np.array([0]), box=box))
    ls.write(ds, tmp_path / "p.json")
    back, report = ls.parse(tmp_path / "p.json")
    assert len(report) == 0
    np.testing.assert_allclose(back.annotations.box, box, rtol=0, atol=1e-9 * max(w, h))


@SETTINGS
@given(st.integers(1, 9), st.integers(1, 9), st.data())
def test_brush_rle_round_trips(tmp_path: Path, h: int, w: int, data: st.DataObject) -> None:
    bits = data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
    binary = np.asarray(bits, bool).reshape(h, w)
    ds = _one_image(label=[0], mask=obj_array([M.encode(binary)]))
    ds = ds.replace(images=Images(path=obj_array(["x.png"]), width=np.array([w]), height=np.array([h])))
    assert ls.write(ds, tmp_path / "b.json").lossless
    back, _ = ls.parse(tmp_path / "b.json")
    assert np.array_equal(M.decode(back.annotations.mask[0]), binary)


def test_brush_decodes_literal_and_repeat_runs(tmp_path: Path) -> None:
    # a hand-built rle-pack stream for a 1x2 image (8 RGBA values): header (32-bit count 8, word size 8, run
    # sizes 3,4,8,16), one literal chunk of 4 values (pixel 0: alpha 0) and one repeated run of 4 x 255.
    bits = f"{8:032b}{7:05b}" + "".join(f"{s - 1:04b}" for s in (3, 4, 8, 16))
    bits += "0" + "00" + f"{3:03b}" + "".join(f"{v:08b}" for v in (9, 9, 9, 0))
    bits += "1" + "00" + f"{3:03b}" + f"{255:08b}"
    bits += "0" * (-len(bits) % 8)
    rle = [int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)]
    res = {"id": "b", "type": "brushlabels", "from_name": "brush", "to_name": "image", "original_width": 2,
           "original_height": 1, "value": {"format": "rle", "rle": rle, "brushlabels": ["a"]}}
    ds, report = ls.parse(_tasks(tmp_path, [res]))
    assert len(report) == 0
    assert M.decode(ds.annotations.mask[0]).tolist() == [[False, True]]
    res["value"]["rle"] = rle[:-2]  # truncated
    ds, report = ls.parse(_tasks(tmp_path, [res]))
    assert report.counts() == {"unsupported_brush": 1} and ds.n_annotations == 0


def test_labeling_config_matches_the_export(shapes_ds: Dataset) -> None:
    xml = ls.labeling_config(shapes_ds)
    view = SafeET.fromstring(xml)
    tags = {(el.tag, el.get("name")) for el in view}
    assert {("Image", "image"), ("PolygonLabels", "polygon"), ("BrushLabels", "brush"),
            ("KeyPointLabels", "keypoint"), ("Choices", "colour"), ("Choices", "occluded")} <= tags
    poly = view.find("PolygonLabels")
    assert poly is not None and [x.get("value") for x in poly] == ["circle", "square", "triangle"]


# -- URL mapping -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "path", "unmappable"),
    [
        ("/data/upload/1/abc.jpg", "upload/1/abc.jpg", False),
        ("/data/local-files/?d=photos%2Fdog.png", "photos/dog.png", False),
        ("http://localhost:8080/data/local-files/?d=x/y.jpg", "x/y.jpg", False),
        ("s3://bucket/key/z.jpg", "bucket/key/z.jpg", False),
        ("gs://b/c.png", "b/c.png", False),
        ("sub/plain.jpg", "sub/plain.jpg", False),
        ("https://example.org/img/q.jpg?sig=1", "q.jpg", True),
        ("/abs/elsewhere/r.jpg", "r.jpg", True),
    ],
)
def test_image_urls_map_to_relative_paths(tmp_path: Path, url: str, path: str, unmappable: bool) -> None:
    ds, report = ls.parse(_tasks(tmp_path, [], image=url))
    assert ds.images.path[0] == path
    assert ds.images.extra["ls_url"][0] == url
    assert (report.counts().get("unmappable_url") == 1) is unmappable


# -- bad input -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("results", "match"),
    [
        pytest.param([_rect("1", 2, 3, 4, id="r7")], r"task 0 \(id=1\), annotation id=9, result r7.*value\.x",
                     id="non-numeric"),
        pytest.param([{"id": "r8", "type": "rectanglelabels"}], r"result r8.*'value'", id="no-value"),
        pytest.param([{"id": "r9", "type": "polygonlabels", "original_width": 9, "original_height": 9,
                       "value": {"points": [[1, 2], [3]], "polygonlabels": ["a"]}}], r"result r9.*value\.points",
                     id="ragged-points"),
        pytest.param([_rect(1, 2, 3, 4, label=7)], r"value\.rectanglelabels", id="label-not-str"),
        pytest.param("oops", r"field 'result'", id="result-not-list"),
    ],
)
def test_malformed_results_raise(tmp_path: Path, results: Any, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        ls.parse(_tasks(tmp_path, results))


def test_malformed_files_raise(tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text(GOLDEN.read_text()[:300], encoding="utf-8")
    with pytest.raises(FormatError, match="malformed JSON at line"):
        ls.parse(p)
    p.write_text('{"tasks": []}', encoding="utf-8")
    with pytest.raises(FormatError, match="list of tasks"):
        ls.parse(p)
    p.write_text('[{"id": 4, "data": {"text": "hello"}}]', encoding="utf-8")
    with pytest.raises(FormatError, match=r"task 0 \(id=4\).*data.image"):
        ls.parse(p)
    with pytest.raises(FormatError, match="inside the dataset root"):
        ls.parse(_tasks(tmp_path, [], image="/data/local-files/?d=../../etc/passwd"))
    with pytest.raises(FormatError, match="label config must be readable XML"):
        ls.parse(_tasks(tmp_path, []), label_config="<View><Image")


@pytest.mark.parametrize("key", ["annotations", "predictions"])
def test_annotations_that_are_not_a_list_raise(tmp_path: Path, key: str) -> None:
    p = tmp_path / "t.json"
    p.write_text(json.dumps([{"id": 4, "data": {"image": "images/a.jpg"}, key: "x"}]), encoding="utf-8")
    with pytest.raises(FormatError, match=rf"t.json, task 0 \(id=4\), field '{key}': {key} must be a list, got str"):
        ls.parse(p)  # used to be read character by character


# -- planted findings ------------------------------------------------------------------------------------------
def test_planted_findings_are_reported(tmp_path: Path) -> None:
    results = [
        _rect(150, 10, 20, 20, id="a"),  # pixels where percent was expected
        _rect(10, 10, 20, 20, id="b", label="truck"),  # not in the config
        _rect(10, 10, 20, 20, id="c", rotation=15),
        {"id": "c", "type": "choices", "from_name": "quality", "to_name": "image", "value": {"choices": ["meh"]}},
        {"id": "d", "type": "keypointlabels", "from_name": "kp", "to_name": "image",
         "value": {"x": 5, "y": 5, "keypointlabels": ["car"]}},  # no original size: the task's size is used
        {"id": "e", "type": "textarea", "from_name": "notes", "to_name": "image", "value": {"text": ["hi"]}},
        {"type": "relation", "from_id": "a", "to_id": "b"},
        {"id": "f", "type": "polygonlabels", "from_name": "poly", "to_name": "image", "original_width": 10,
         "original_height": 10, "value": {"points": [[1, 1], [2, 2]], "polygonlabels": ["car"]}},
    ]
    cfg = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
           '<Label value="car"/></RectangleLabels><Choices name="quality" toName="image" perRegion="true">'
           '<Choice value="good"/></Choices></View>')
    src = _tasks(tmp_path, results)
    ds, report = ls.parse(src, label_config=cfg)
    assert report.counts() == {"labelstudio_not_percent": 1, "unknown_label": 1, "rotated_box": 1,
                               "attribute_value": 1, "labelstudio_kept": 1, "degenerate_polygon": 1,
                               "labelstudio_size_mismatch": 1, "labelstudio_image_values": 1}
    assert ds.images.extra["notes"].tolist() == ["hi"]  # the image-level textarea: an image column
    assert ds.schema.names == ("car", "truck")
    assert ds.n_annotations == 5  # a, b, c, the keypoint and the 2-point polygon
    np.testing.assert_allclose(ds.annotations.box[0], [300, 10, 340, 30])  # kept as read
    np.testing.assert_allclose(ds.annotations.keypoints[3], [[10, 5, 2]])
    assert ds.annotations.extra["ls_rotation"].tolist() == [0, 0, 15, 0, 0]
    assert ds.annotations.attributes["quality"][2] == "meh"
    issue = report.of_type("unknown_label")[0]
    assert issue.record == "task 0 (id=1), annotation id=9, result b" and issue.severity == "error"
    with pytest.warns(MaslowWarning, match="import issues"):
        io.read_labelstudio(src, label_config=cfg)
    with pytest.raises(FormatError, match="strict mode"):
        ls.parse(src, label_config=cfg, strict=True)
    lone = _tasks(tmp_path, [results[4]])  # no size anywhere in the task, and no image file
    ds, report = ls.parse(lone)
    assert report.counts() == {"missing_size": 1, "labelstudio_unknown_size": 1} and ds.n_annotations == 0


def test_missing_original_size_is_read_from_the_image(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    Image.new("RGB", (50, 20)).save(tmp_path / "images" / "a.jpg")
    res = _rect(10, 50, 20, 50)
    del res["original_width"], res["original_height"]
    ds, report = ls.parse(_tasks(tmp_path, [res]))
    assert len(report) == 0 and ds.images.width[0] == 50
    np.testing.assert_allclose(ds.annotations.box[0], [5, 10, 15, 20])


def test_a_negative_original_size_is_reported_not_a_crash(tmp_path: Path) -> None:
    bad, good = _rect(10, 50, 20, 50, id="bad", ow=-5), _rect(10, 50, 20, 50, id="good")
    ds, report = ls.parse(_tasks(tmp_path, [bad, good]))  # used to raise "images.width row 0: must be >= 0"
    issue = report.of_type("missing_size")[0]
    assert issue.record == "task 0 (id=1), annotation id=9, result bad" and "got -5, 100" in issue.message
    assert ds.images.width[0] == 200 and ds.n_annotations == 1  # the size of the result that has one


def test_config_beside_the_export_is_used(tmp_path: Path) -> None:
    shutil.copy(GOLDEN, tmp_path / "export.json")
    ds, _ = ls.parse(tmp_path / "export.json")  # no label_config.xml here: classes in order of appearance
    assert ds.schema.names == ("car", "person", "landmark", "outdoor", "sunny")
    ds2, _ = ls.parse(tmp_path / "export.json", label_config=GOLDEN.parent / "label_config.xml")
    assert "indoor" in ds2.schema.names


def test_write_counts_what_label_studio_cannot_hold(tmp_path: Path) -> None:
    kp = np.array([[[1, 1, 1], [2, 2, 2]], [[3, 3, 2], [4, 4, 2]], [[np.nan] * 3] * 2])
    ds = _one_image(label=[0, 1, 1], box=np.array([[0, 0, 5, 5], [np.nan] * 4, [np.nan] * 4]),
                    score=np.array([0.9, np.nan, 0.4]), iscrowd=np.array([True, False, False]), keypoints=kp,
                    source=obj_array(["human", "synthetic", "pseudo"]),
                    attributes={"note": obj_array([None, None, "x"])})
    report = ls.write(ds, tmp_path / "l.json")
    assert report.lost == {"score": 1, "iscrowd": 1, "keypoint_visibility": 1, "keypoint_grouping": 1,
                           "source": 2, "attributes": 1}
    tasks = json.loads((tmp_path / "l.json").read_text())
    assert len(tasks[0]["predictions"]) == 1 and tasks[0]["predictions"][0]["score"] == 0.4


def test_class_order_the_config_cannot_keep_is_counted(tmp_path: Path) -> None:
    """The config lists classes per control tag, in order of first use: 'rect' came back second, uncounted."""
    poly = [np.array([1.0, 1, 8, 1, 8, 8])]
    ann = Annotations(image=[0, 0], label=[1, 0], box=[[1, 1, 8, 8], [2, 2, 4, 4]],
                      polygon=obj_array([poly, None]))
    ds = Dataset(schema=LabelSchema.from_names(["rect", "poly"]),
                 images=Images(path=["a.png"], width=[20], height=[10]), annotations=ann)
    rep = io.write_labelstudio(ds, tmp_path / "tasks.json")
    back = ls.parse(tmp_path / "tasks.json")[0]
    assert back.schema.names == ("poly", "rect") and rep.lost["class_order"] == 1
    same = io.write_labelstudio(ds.select([1]), tmp_path / "b" / "tasks.json")
    assert "class_order" not in same.lost
