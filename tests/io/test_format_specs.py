"""CVAT, Pascal VOC and YOLO as the real tools write and read them: files shaped like their exports, and maslow's
output checked against the rules of their importers.

Sources (public): cvat-ai/cvat ``cvat/apps/dataset_manager/formats/cvat.py`` (``dump_as_cvat_annotation``,
``load_anno``) and ``bindings.py`` (``_convert_db_labels``: a skeleton's points are labels with a ``parent``);
openvinotoolkit/datumaro ``plugins/data_formats/voc/`` (``importer.py``: a VOC dataset is found by its
``ImageSets/<task>/*.txt`` lists; ``base.py``: custom attributes are read only from ``<attributes>``;
``exporter.py``; ``format.py``: labelmap.txt); ultralytics ``data/utils.py`` (``check_det_dataset``,
``verify_image_label``, ``img2label_paths``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from defusedxml import ElementTree as SafeET
from PIL import Image

from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.io import cvat, voc, yolo


def _ds(tmp_path: Path, n_images: int = 1, split: list[str] | None = None, **columns: object) -> Dataset:
    paths = [f"im{i}.png" for i in range(n_images)]
    for p in paths:
        Image.new("RGB", (40, 30)).save(tmp_path / p)
    n = len(columns["label"])  # type: ignore[arg-type]
    columns.setdefault("image", np.zeros(n, np.int64))
    return Dataset(schema=LabelSchema(classes=(ClassDef("cat", keypoints=("nose", "tail")), ClassDef("dog"))),
                   images=Images(path=obj_array(paths), width=np.full(n_images, 40), height=np.full(n_images, 30),
                                 split=None if split is None else obj_array(split)),
                   annotations=Annotations(**columns), root=tmp_path)  # type: ignore[arg-type]


# -- CVAT ------------------------------------------------------------------------------------------------------
SKELETON_EXPORT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <job>
      <id>4</id>
      <size>1</size>
      <mode>annotation</mode>
      <labels>
        <label>
          <name>person</name>
          <color>#fa3253</color>
          <type>skeleton</type>
          <attributes>
          </attributes>
          <svg>&lt;circle r="1.5" cx="30" cy="20" data-type="element node" data-element-id="1" data-node-id="1" data-label-name="nose"&gt;&lt;/circle&gt;</svg>
        </label>
        <label>
          <name>nose</name>
          <color>#d12345</color>
          <type>points</type>
          <attributes>
          </attributes>
          <parent>person</parent>
        </label>
        <label>
          <name>tail</name>
          <color>#350dea</color>
          <type>points</type>
          <attributes>
          </attributes>
          <parent>person</parent>
        </label>
        <label>
          <name>car</name>
          <color>#33ddff</color>
          <type>rectangle</type>
          <attributes>
          </attributes>
        </label>
      </labels>
    </job>
    <dumped>2024-05-01 10:00:00.000000+00:00</dumped>
  </meta>
  <image id="0" name="a.jpg" width="40" height="30">
    <box label="car" source="manual" occluded="0" xtl="1.00" ytl="2.00" xbr="11.00" ybr="12.00" z_order="0">
    </box>
    <skeleton label="person" source="manual" z_order="0">
      <points label="nose" source="manual" outside="0" occluded="0" points="5.00,6.00">
      </points>
      <points label="tail" source="manual" outside="1" occluded="0" points="7.00,8.00">
      </points>
    </skeleton>
  </image>
</annotations>
"""


def test_cvat_skeleton_points_in_meta_are_keypoint_names_not_classes(tmp_path: Path) -> None:
    """CVAT 2.x lists a skeleton's points as labels with a ``<parent>`` (bindings._convert_db_labels); maslow read
    them as classes of their own. Skeleton shapes are imported as keypoints in the order of those points."""
    (tmp_path / "annotations.xml").write_text(SKELETON_EXPORT)
    ds, report = cvat.parse(tmp_path / "annotations.xml")
    assert ds.schema.names == ("person", "car")
    assert ds.schema.classes[0].keypoints == ("nose", "tail")
    assert [ds.schema.names[k] for k in ds.annotations.label] == ["car", "person"]
    assert ds.annotations.keypoints is not None
    assert ds.annotations.keypoints[1, :, 2].tolist() == [2, 0]  # tail is outside: not visible
    assert ds.annotations.keypoints[1, 0, :2].tolist() == [5, 6]
    assert len(report) == 0


def test_cvat_output_reads_the_way_cvat_load_anno_reads_it(tmp_path: Path) -> None:
    """load_anno takes ``id``/``name`` of <image>, ``xtl``..``ybr`` of <box>, ``int()`` of each comma-separated run
    of a <mask> ``rle`` plus ``left``/``top``/``width``/``height``, ``occluded == "1"``, and checkbox attributes
    as ``true``/``false`` (bindings._import_attribute refuses anything else)."""
    mask = np.zeros((30, 40), bool)
    mask[3:6, 10:14] = True
    from maslow.core import masks as M

    ds = _ds(tmp_path, label=[0, 1], box=[[1.5, 2, 11, 12], [np.nan] * 4],
             mask=obj_array([None, M.encode(mask)]), attributes={"parked": obj_array([True, False]),
                                                                   "occluded": obj_array([True, False])})
    cvat.write(ds, tmp_path / "out.xml")
    top = SafeET.parse(tmp_path / "out.xml").getroot()
    (image,) = top.findall("image")
    assert image.get("id") == "0" and image.get("name") == "im0.png"
    box, mk = image.find("box"), image.find("mask")
    assert [float(box.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")] == [1.5, 2, 11, 12]
    assert box.get("occluded") == "1" and mk.get("occluded") == "0"
    runs = [int(v) for v in mk.get("rle").split(",")]
    left, top_, w, h = (int(mk.get(k)) for k in ("left", "top", "width", "height"))
    crop = np.repeat(np.arange(len(runs)) % 2 == 1, runs).reshape(h, w)  # background first, row by row
    back = np.zeros_like(mask)
    back[top_:top_ + h, left:left + w] = crop
    assert np.array_equal(back, mask)
    assert {a.text for a in top.iter("attribute") if a.get("name") == "parked"} <= {"true", "false"}


# -- Pascal VOC ------------------------------------------------------------------------------------------------
def test_voc_custom_attributes_go_in_the_attributes_block_datumaro_reads(tmp_path: Path) -> None:
    """datumaro's VOC reader (so CVAT's VOC import) takes difficult/truncated/occluded/pose and the
    ``<attributes><attribute><name>/<value>`` block only; maslow wrote other attributes as child tags of <object>,
    which it ignores."""
    ds = _ds(tmp_path, label=[0], box=[[0, 0, 10, 10]],
             attributes={"difficult": obj_array([True]), "colour": obj_array(["red"]),
                         "count": obj_array([3.0]), "blink": obj_array([False])})
    voc.write(ds, tmp_path / "out")
    obj = SafeET.parse(tmp_path / "out/Annotations/im0.xml").getroot().find("object")
    assert obj.find("difficult").text == "1"  # datumaro's _parse_bool_field: "0" or "1"
    block = {a.find("name").text: a.find("value").text for a in obj.findall("attributes/attribute")}
    # other bools as CVAT's checkbox values ("true"/"false": its import refuses 0/1)
    assert block == {"colour": "red", "count": "3", "blink": "false"}
    assert obj.find("colour") is None and obj.find("blink") is None
    back, report = voc.parse(tmp_path / "out")
    assert len(report) == 0
    assert {k: v.tolist() for k, v in back.annotations.attributes.items()} == {
        "difficult": [True], "blink": ["false"], "colour": ["red"], "count": ["3"]}


def test_voc_every_image_is_in_an_imageset_list(tmp_path: Path) -> None:
    """datumaro's VOC importer detects the dataset by ``ImageSets/Main/*.txt`` and reads only the ids listed
    there: maslow wrote no list for images without a split, so CVAT found nothing (or missed those images)."""
    ds = _ds(tmp_path, 3, split=["train", "", ""], label=[0], box=[[0, 0, 10, 10]])
    voc.write(ds, tmp_path / "out")
    main = tmp_path / "out/ImageSets/Main"
    assert sorted(p.name for p in main.iterdir()) == ["default.txt", "train.txt"]
    assert (main / "default.txt").read_text() == "im1\nim2\n"
    back, _ = voc.parse(tmp_path / "out")
    assert back.images.split.tolist() == ["train", "", ""]  # datumaro's default subset: no split


def test_voc_reads_a_datumaro_export(tmp_path: Path) -> None:
    """Shaped like datumaro's VocExporter output (CVAT 'Pascal VOC 1.1'): labelmap.txt with a background line,
    ImageSets/Main/default.txt, <source> and flags on every object, custom attributes in <attributes>."""
    root = tmp_path / "voc"
    for d in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (root / d).mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(root / "JPEGImages/frame_1.jpg")
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\ndog:250,50,83::\n"
                                       "cat:36,179,83::\n")
    (root / "ImageSets/Main/default.txt").write_text("frame_1\n")
    (root / "Annotations/frame_1.xml").write_text(
        "<annotation>\n  <folder></folder>\n  <filename>frame_1.jpg</filename>\n  <source>\n"
        "    <database>Unknown</database>\n    <annotation>Unknown</annotation>\n    <image>Unknown</image>\n"
        "  </source>\n  <size>\n    <width>40</width>\n    <height>30</height>\n    <depth></depth>\n  </size>\n"
        "  <segmented>0</segmented>\n  <object>\n    <name>cat</name>\n    <truncated>0</truncated>\n"
        "    <occluded>1</occluded>\n    <difficult>0</difficult>\n    <bndbox>\n      <xmin>2.5</xmin>\n"
        "      <ymin>3.0</ymin>\n      <xmax>12.0</xmax>\n      <ymax>13.5</ymax>\n    </bndbox>\n"
        "    <attributes>\n      <attribute>\n        <name>colour</name>\n        <value>black</value>\n"
        "      </attribute>\n      <attribute>\n        <name>note</name>\n        <value />\n"
        "      </attribute>\n    </attributes>\n  </object>\n</annotation>\n")
    ds, report = voc.parse(root)
    assert len(report) == 0
    assert ds.schema.names == ("dog", "cat") and ds.images.split.tolist() == [""]
    at = {k: v.tolist() for k, v in ds.annotations.attributes.items()}
    assert at == {"truncated": [False], "occluded": [True], "difficult": [False], "colour": ["black"], "note": [""]}


def test_voc_notes_class_names_cvat_labelmaps_refuse(tmp_path: Path) -> None:
    """datumaro's parse_label_map splits each line on every ':' and wants exactly 4 fields."""
    ds = _ds(tmp_path, label=[0], box=[[0, 0, 10, 10]])
    ds = ds.replace(schema=LabelSchema(classes=(ClassDef("a:b"), ClassDef("dog"))))
    rep = voc.write(ds, tmp_path / "out")
    assert any("'a:b'" in n and "datumaro" in n for n in rep.notes)


# -- YOLO (Ultralytics) ----------------------------------------------------------------------------------------
def _verify_image_label(line: str, n_kpt: int = 0) -> bool:
    """Ultralytics' rule for a label line: normalised values in [-0.01, 1.01] (segments: their extent's xywh)."""
    v = np.asarray(line.split()[1:], np.float64)
    if n_kpt:
        pts = v[4:].reshape(n_kpt, 3)[:, :2]
        return bool(pts.max() <= 1.01 and v.min() >= -0.01)
    if len(v) > 4:
        xy = v.reshape(-1, 2)
        lo, hi = xy.min(0), xy.max(0)
        v = np.concatenate([(lo + hi) / 2, hi - lo])
    return bool(v.max() <= 1.01 and v.min() >= -0.01)


def test_yolo_writer_clips_what_ultralytics_would_drop(tmp_path: Path) -> None:
    """verify_image_label drops the whole image as corrupt when a value lies outside [0, 1] (1 % tolerance);
    maslow wrote boxes, polygons and keypoints reaching outside the image as they were."""
    kp = np.array([[[45.0, 10.0, 2.0], [5.0, -3.0, 1.0]], [[np.nan] * 3] * 2])
    poly = obj_array([[np.array([-4.0, 0, 20, 0, 20, 35])], None])
    ds = _ds(tmp_path, label=[0, 1], box=[[-8.0, 20, 20, 36], [2, 2, 10, 10]], keypoints=kp, polygon=poly)
    for task, n_kpt in (("detect", 0), ("segment", 0), ("pose", 2)):
        rep = yolo.write(ds, tmp_path / task, task=task)
        lines = (tmp_path / task / "labels/train/im0.txt").read_text().splitlines()
        assert all(_verify_image_label(x, n_kpt) for x in lines), (task, lines)
        assert rep.lost["clipped"] == 1, task
    back, _ = yolo.parse(tmp_path / "detect")
    np.testing.assert_allclose(back.annotations.box, [[0, 20, 20, 30], [2, 2, 10, 10]], atol=1e-4)


def test_yolo_validation_key_and_nc_without_names(tmp_path: Path) -> None:
    """check_det_dataset renames a 'validation' key to 'val' and names an 'nc'-only dataset class_0, class_1..."""
    for split in ("train", "valid"):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "labels" / split).mkdir(parents=True)
        Image.new("RGB", (10, 10)).save(tmp_path / "images" / split / "a.jpg")
        (tmp_path / "labels" / split / "a.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "validation": "images/valid",
                                                        "nc": 2}))
    ds, report = yolo.parse(tmp_path / "data.yaml")
    assert len(report) == 0
    assert ds.images.split.tolist() == ["train", "val"]
    assert ds.schema.names == ("class_0", "class_1")
