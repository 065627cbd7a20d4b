"""Readers facing damaged inputs: a folder where an annotation file should be, Label Studio images of unknown size,
Label Studio exports sharing a folder, a missing image named with its annotation file, CVAT flags that are not 0/1.

(Counts strings that are no mask: ``test_coco_rle_counts.py``.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io import cvat, labelstudio
from maslow.io._common import read_bytes
from maslow.io.coco import write_coco
from maslow.sample import shapes, write_shapes


def _cli(*args: str) -> tuple[int, str]:
    from maslow.cli.main import app

    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


# -- a folder where an annotation file should be ---------------------------------------------------------------
def test_read_bytes_names_a_folder_and_keeps_a_missing_file_an_oserror(tmp_path: Path) -> None:
    (tmp_path / "x.txt").mkdir()
    with pytest.raises(FormatError, match=r"x\.txt: must be a file, got a directory"):
        read_bytes(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError):  # callers word a missing file for their kind of file
        read_bytes(tmp_path / "nope.txt")
    (tmp_path / "y.txt").write_bytes(b"a" * 70_000)  # more than the first read
    assert read_bytes(tmp_path / "y.txt") == b"a" * 70_000


def test_voc_annotation_folder_is_a_format_error(tmp_path: Path) -> None:
    ann = tmp_path / "voc" / "Annotations"
    ann.mkdir(parents=True)
    (ann / "a.xml").write_text("<annotation><filename>a.jpg</filename><size><width>10</width><height>10</height>"
                               "</size></annotation>")
    (ann / "b.xml").mkdir()
    with pytest.raises(FormatError, match=r"b\.xml: must be a file, got a directory"):
        io.read(tmp_path / "voc", "voc")
    code, out = _cli("convert", str(tmp_path / "voc"), str(tmp_path / "x.json"), "--from", "voc", "--to", "coco")
    assert code == 2 and "must be a file, got a directory" in out


def test_dota_label_folder_is_a_format_error(tmp_path: Path) -> None:
    io.write(shapes(4, seed=0), tmp_path / "dota", "dota")
    label = next(p for p in sorted((tmp_path / "dota").rglob("*.txt")) if p.parent.name == "labelTxt")
    label.unlink()
    label.mkdir()
    with pytest.raises(FormatError, match=rf"{label.name}: must be a file, got a directory"):
        io.read(tmp_path / "dota", "dota")


def test_yolo_label_folder_is_a_format_error_not_a_background_image(tmp_path: Path) -> None:
    io.write(write_shapes(tmp_path / "sample", 6, seed=0), tmp_path / "yolo", "yolo")  # images beside the labels
    label = next(p for p in sorted((tmp_path / "yolo" / "labels").rglob("*.txt")) if p.read_text().strip())
    label.unlink()
    label.mkdir()
    with pytest.raises(FormatError, match=rf"{label.name}: must be a file, got a directory"):
        io.read(tmp_path / "yolo", "yolo")


# -- Label Studio: images of unknown size ----------------------------------------------------------------------
def test_labelstudio_task_of_unknown_size_is_reported(tmp_path: Path) -> None:
    """Label Studio keeps no size for an image without regions: with its file missing, the size stays 0 and a
    warning (once, with the count) names the file, the first such task and the field (as COCO's
    coco_unknown_size); with the files, no finding."""
    ds = shapes(8, seed=0)
    io.write_labelstudio(ds, tmp_path / "ls" / "tasks.json")
    empty = [i for i in range(ds.n_images) if not (ds.annotations.image == i).any()]
    assert len(empty) >= 2  # the sample has images without objects
    back, report = labelstudio.parse(tmp_path / "ls" / "tasks.json")  # no image files beside it
    found = report.of_type("labelstudio_unknown_size")
    assert [(i.file, i.field, i.severity, i.image) for i in found] == \
        [(str(tmp_path / "ls" / "tasks.json"), "original_width", "warning", empty[0])]
    assert (found[0].record or "").startswith(f"task {empty[0]} ")
    assert f"in {len(empty)} tasks" in found[0].message and "image file not found" in found[0].message
    assert (back.images.width[empty] == 0).all() and (back.images.width > 0).sum() == ds.n_images - len(empty)
    imp = io.import_dataset(tmp_path / "ls" / "tasks.json", "labelstudio", check_files=False)  # convert's default
    assert imp.report.counts().get("labelstudio_unknown_size") == 1
    # the images where images_root says: sizes read from the files, nothing to report
    for i in empty:
        p = tmp_path / "imgs" / str(ds.images.path[i])
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (int(ds.images.width[i]), int(ds.images.height[i]))).save(p)
    back, report = labelstudio.parse(tmp_path / "ls" / "tasks.json", images_root=tmp_path / "imgs")
    assert not report.of_type("labelstudio_unknown_size")
    np.testing.assert_array_equal(back.images.width, ds.images.width)


# -- Label Studio: two exports in one folder -------------------------------------------------------------------
def test_labelstudio_exports_in_one_folder_keep_their_own_config(tmp_path: Path) -> None:
    a = shapes(4, seed=0)
    b = Dataset(schema=LabelSchema.from_names(["cell", "block"]),
                images=Images(path=obj_array(["x.png", "y.png"]), width=np.array([40, 40]), height=np.array([30, 30])),
                annotations=Annotations(image=np.array([0, 1]), label=np.array([0, 1]),
                                        box=np.array([[1.0, 2, 10, 12], [3, 4, 20, 25]])), root=None)
    rep_a = io.write_labelstudio(a, tmp_path / "a.json")
    io.write_labelstudio(b, tmp_path / "b.json")
    assert (tmp_path / "a.label_config.xml").is_file() and (tmp_path / "b.label_config.xml").is_file()
    assert not (tmp_path / "label_config.xml").exists()
    assert f"labeling config: {tmp_path / 'a.label_config.xml'}" in rep_a.notes
    back_a, report_a = labelstudio.parse(tmp_path / "a.json")
    back_b, report_b = labelstudio.parse(tmp_path / "b.json")
    assert not report_a.of_type("unknown_label") and not report_b.of_type("unknown_label")
    assert set(back_a.schema.names) == set(a.schema.names) and set(back_b.schema.names) == set(b.schema.names)
    assert back_a.info["labelstudio"]["label_config"] == (tmp_path / "a.label_config.xml").read_text()


def test_labelstudio_reads_the_config_name_of_earlier_exports(tmp_path: Path) -> None:
    """An export written before (``label_config.xml`` beside it) reads as it did; the export's own name wins."""
    ds = shapes(4, seed=0)
    io.write_labelstudio(ds, tmp_path / "old.json")
    (tmp_path / "old.label_config.xml").rename(tmp_path / "label_config.xml")
    back, report = labelstudio.parse(tmp_path / "old.json")
    assert back.info["labelstudio"]["label_config"] == (tmp_path / "label_config.xml").read_text()
    assert back.schema.names == labelstudio.parse(tmp_path / "old.json", label_config=tmp_path / "label_config.xml"
                                                  )[0].schema.names
    other = tmp_path / "label_config.xml"  # a config of other classes: the export's own one is read first
    own = other.read_text()
    other.write_text(own.replace('value="circle"', 'value="disc"'))
    (tmp_path / "old.label_config.xml").write_text(own)
    back, report = labelstudio.parse(tmp_path / "old.json")
    assert "disc" not in back.schema.names and not report.of_type("unknown_label")


# -- a missing image, named with its annotation file -----------------------------------------------------------
def test_missing_image_names_the_annotation_file_and_the_image(tmp_path: Path) -> None:
    write_coco(shapes(5, seed=0), tmp_path / "ann.json")
    top = json.loads((tmp_path / "ann.json").read_text())
    top["images"][3]["file_name"] = "images/nope.png"
    (tmp_path / "mi.json").write_text(json.dumps(top))
    imp = io.import_dataset(tmp_path / "mi.json", "coco", images_root=tmp_path)
    missing = imp.report.of_type("missing_image")
    assert len(missing) == 5  # no image file was written
    i = next(m for m in missing if "nope.png" in m.message)
    assert (i.file, i.record, i.field, i.image) == (str(tmp_path / "mi.json"), "images[3]", "path", 3)
    assert i.message == f"{tmp_path / 'images' / 'nope.png'}: image file not found"
    with pytest.raises(FormatError, match=r"mi\.json, images\[0\], field 'path': .*shape_0000\.png: image file "
                       r"not found"):
        io.import_dataset(tmp_path / "mi.json", "coco", images_root=tmp_path, strict=True)


def test_other_image_findings_name_the_annotation_file_too(tmp_path: Path) -> None:
    ds = shapes(2, seed=0)
    write_coco(ds, tmp_path / "ann.json")
    for i, rel in enumerate(ds.images.path.tolist()):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (10, 10) if i == 0 else (int(ds.images.width[i]), int(ds.images.height[i]))).save(
            tmp_path / rel)
    imp = io.import_dataset(tmp_path / "ann.json", "coco", images_root=tmp_path)
    mismatch = imp.report.of_type("size_mismatch")
    assert [(m.file, m.record, m.image) for m in mismatch] == [(str(tmp_path / "ann.json"), "images[0]", 0)]
    assert mismatch[0].message.startswith(f"image {ds.images.path[0]}: declared size must match the file")


def test_a_folder_format_still_names_the_image_file(tmp_path: Path) -> None:
    """VOC and YOLO have a file per image: the finding names the image (no one annotation file to name)."""
    io.write(shapes(3, seed=0), tmp_path / "voc", "voc", images=False)
    imp = io.import_dataset(tmp_path / "voc", "voc")
    missing = imp.report.of_type("missing_image")
    assert missing and all(m.file is not None and not m.file.endswith(".xml") for m in missing)


# -- CVAT flags ------------------------------------------------------------------------------------------------
CVAT_HEAD = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><labels>
<label><name>car</name></label>
<label><name>person</name><type>skeleton</type></label>
<label><name>nose</name><type>points</type><parent>person</parent></label>
<label><name>ear</name><type>points</type><parent>person</parent></label>
</labels></task></meta>
"""


def test_cvat_flags_other_than_0_or_1_are_reported(tmp_path: Path) -> None:
    body = """<image id="0" name="a.jpg" width="50" height="50">
  <box label="car" occluded="maybe" xtl="1" ytl="1" xbr="5" ybr="5" z_order="0"/>
  <box label="car" occluded="1" xtl="1" ytl="1" xbr="5" ybr="5" z_order="0"/>
  <box label="car" occluded="0" xtl="1" ytl="1" xbr="5" ybr="5" z_order="0"/>
  <skeleton label="person" occluded="0" z_order="0">
    <points label="nose" occluded="0" outside="yes" points="3,3"/>
    <points label="ear" occluded="2" outside="0" points="4,4"/>
  </skeleton>
</image>"""
    path = tmp_path / "annotations.xml"
    path.write_text(CVAT_HEAD + body + "\n</annotations>\n", encoding="utf-8")
    ds, report = cvat.parse(path)
    found = [(i.type, i.field, i.file, i.severity) for i in report]
    assert found == [("attribute_value", "occluded", str(path), "error"),
                     ("attribute_value", "outside", str(path), "error"),
                     ("attribute_value", "occluded", str(path), "error")]
    assert "'maybe'" in report.issues[0].message and "<box>" in report.issues[0].message
    assert all("image id=0" in (i.record or "") for i in report)
    assert ds.annotations.attributes["occluded"].tolist()[:3] == [False, True, False]  # read as CVAT reads them
    kp = ds.annotations.keypoints
    assert kp is not None and kp[3, :, 2].tolist() == [2.0, 2.0]  # neither outside nor occluded
    with pytest.raises(FormatError, match="occluded must be 0 or 1, got 'maybe'"):
        cvat.parse(path, strict=True)


def test_cvat_track_outside_other_than_0_or_1_is_reported(tmp_path: Path) -> None:
    body = """<image id="0" name="a.jpg" width="50" height="50"/><image id="1" name="b.jpg" width="50" height="50"/>
<track id="3" label="car"><box frame="0" keyframe="1" outside="maybe" occluded="0" xtl="1" ytl="1" xbr="5" ybr="5"/>
<box frame="1" keyframe="1" outside="1" occluded="0" xtl="1" ytl="1" xbr="5" ybr="5"/></track>"""
    path = tmp_path / "annotations.xml"
    path.write_text(CVAT_HEAD + body + "\n</annotations>\n", encoding="utf-8")
    ds, report = cvat.parse(path)
    found = [(i.type, i.field, i.severity) for i in report]
    assert found == [("attribute_value", "outside", "error")], found  # was read as 0 without a word
    assert "'maybe'" in report.issues[0].message and "frame=0" in (report.issues[0].record or "")
    assert ds.annotations.image.tolist() == [0]  # read as CVAT reads it: not outside, so the box is kept
