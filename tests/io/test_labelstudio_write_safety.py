"""Label Studio writer: a refused write leaves the previous output as it was; keypoint names come back in schema
order, every name (or the loss is counted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from defusedxml import ElementTree as SafeET
from PIL import Image

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.errors import FormatError
from maslow.io._labelstudio_config import config_path

NAMES = ("nose", "eye", "ear")


def _boxes(root: Path, name: str = "cat") -> Dataset:
    Image.new("L", (100, 80)).save(root / "a.png")
    return Dataset(schema=LabelSchema(classes=(ClassDef(name),)),
                   images=Images(path=["a.png"], width=[100], height=[80]),
                   annotations=Annotations(image=[0], label=[0], box=[[10, 10, 50, 40]]), root=root)


@pytest.mark.parametrize("bad", ["ca\x00t", "ca\x01t", "ca\x1ft"])
def test_a_refused_write_leaves_the_previous_output_byte_identical(tmp_path: Path, bad: str) -> None:
    dst = tmp_path / "t.json"
    io.write(_boxes(tmp_path), dst, "labelstudio")
    before = {p.name: p.read_bytes() for p in (dst, config_path(dst))}
    with pytest.raises(FormatError, match=r"label_config.*readable XML.*nothing was written") as e:
        io.write(_boxes(tmp_path, bad), dst, "labelstudio")
    assert e.value.path == str(config_path(dst))
    assert {p.name: p.read_bytes() for p in (dst, config_path(dst))} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "t.json", "t.label_config.xml"]  # no temps


def test_a_refused_first_write_leaves_nothing(tmp_path: Path) -> None:
    dst = tmp_path / "t.json"
    with pytest.raises(FormatError):
        io.write(_boxes(tmp_path, "c\x00"), dst, "labelstudio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def _people(root: Path, kp: list[list[list[float]]], classes: tuple[ClassDef, ...] | None = None,
            label: list[int] | None = None) -> Dataset:
    Image.new("L", (100, 100)).save(root / "a.png")
    n = len(kp)
    schema = LabelSchema(classes=classes or (ClassDef("person", keypoints=NAMES),),
                         tasks=(Task.DETECTION, Task.KEYPOINTS))
    return Dataset(schema=schema, images=Images(path=["a.png"], width=[100], height=[100]),
                   annotations=Annotations(image=[0] * n, label=label or [0] * n, box=[[5, 5, 60, 60]] * n,
                                           keypoints=np.asarray(kp, np.float64)), root=root)


def test_keypoint_names_come_back_in_schema_order_with_the_names_never_placed(tmp_path: Path) -> None:
    # 'nose' is never placed; 'ear' is placed (first row) before 'eye' (second row): first use is ear, eye
    kp = [[[0, 0, 0], [0, 0, 0], [30, 30, 2]],
          [[0, 0, 0], [20, 20, 2], [40, 45, 2]]]
    ds = _people(tmp_path, kp)
    rep = io.write(ds, tmp_path / "t.json", "labelstudio")
    assert "class_keypoints" not in rep.lost
    back = io.read(tmp_path / "t.json", "labelstudio")
    assert back.schema.classes[0].keypoints == NAMES
    assert back.annotations.keypoints is not None
    np.testing.assert_allclose(back.annotations.keypoints, np.asarray(kp, np.float64))
    xml = SafeET.fromstring(config_path(tmp_path / "t.json").read_text("utf-8"))
    assert [lab.get("value") for lab in xml.find("KeyPointLabels").iter("Label")] == list(NAMES)


def test_a_class_whose_keypoints_are_never_placed_is_counted(tmp_path: Path) -> None:
    classes = (ClassDef("person", keypoints=NAMES), ClassDef("dog", keypoints=("tail",)))
    kp = [[[10, 10, 2], [20, 20, 2], [30, 30, 2]], [[0, 0, 0], [0, 0, 0], [0, 0, 0]]]
    rep = io.write(_people(tmp_path, kp, classes, [0, 1]), tmp_path / "t.json", "labelstudio")
    assert rep.lost["class_keypoints"] == 1  # dog's 'tail' can't come back
    back = io.read(tmp_path / "t.json", "labelstudio")
    assert [c.keypoints for c in back.schema.classes] == [NAMES, ()]


@pytest.mark.parametrize(("dog", "person_back", "dog_back"), [
    (("ear", "tail"), ("eye", "ear"), ("ear", "tail")),  # person's 'nose' is never placed: it can't come back
    (("tail", "ear"), ("eye", "ear"), ("ear", "tail")),  # and dog's order differs from the config's too
])
def test_names_of_several_keypoint_classes_that_cant_come_back_are_counted(
        tmp_path: Path, dog: tuple[str, str], person_back: tuple[str, ...], dog_back: tuple[str, ...]) -> None:
    classes = (ClassDef("person", keypoints=NAMES), ClassDef("dog", keypoints=dog))
    kp = [[[0, 0, 0], [20, 20, 2], [30, 30, 2]], [[40, 40, 2], [50, 50, 2], [0, 0, 0]]]
    rep = io.write(_people(tmp_path, kp, classes, [0, 1]), tmp_path / "t.json", "labelstudio")
    back = io.read(tmp_path / "t.json", "labelstudio")
    got = {c.name: c.keypoints for c in back.schema.classes}
    assert got == {"person": person_back, "dog": dog_back}
    assert rep.lost["class_keypoints"] == sum(got[c.name] != c.keypoints for c in classes)
    assert back.annotations.keypoints is not None  # the points keep their names
    for c, (name, row) in enumerate(((("eye", "ear"), [[20, 20], [30, 30]]), (dog[:2], [[40, 40], [50, 50]]))):
        idx = [got[classes[c].name].index(n) for n in name]
        np.testing.assert_allclose(back.annotations.keypoints[c, idx, :2], row)


def test_the_reader_takes_keypoint_names_in_the_configs_order(tmp_path: Path) -> None:
    cfg = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
           '<Label value="person"/></RectangleLabels><KeyPointLabels name="kp" toName="image"><Label value="a"/>'
           '<Label value="b"/><Label value="c"/></KeyPointLabels></View>')
    (tmp_path / "t.label_config.xml").write_text(cfg, encoding="utf-8")

    def point(rid: str, label: str, x: float) -> dict[str, object]:
        return {"id": rid, "parentID": "r", "type": "keypointlabels", "from_name": "kp", "to_name": "image",
                "original_width": 100, "original_height": 100,
                "value": {"x": x, "y": 10, "width": 0.5, "keypointlabels": [label]}}

    box = {"id": "r", "type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": 100,
           "original_height": 100, "value": {"x": 5, "y": 5, "width": 50, "height": 50,
                                              "rectanglelabels": ["person"]}}
    import json

    (tmp_path / "t.json").write_text(json.dumps([{"id": 1, "data": {"image": "a.png"}, "annotations": [
        {"id": 2, "result": [box, point("p1", "c", 30), point("p2", "a", 10)]}]}]), encoding="utf-8")
    back = io.read(tmp_path / "t.json", "labelstudio", images_root=tmp_path)
    assert back.schema.classes[0].keypoints == ("a", "b", "c")
    assert back.annotations.keypoints is not None
    np.testing.assert_allclose(back.annotations.keypoints[0], [[10, 10, 2], [0, 0, 0], [30, 10, 2]])
