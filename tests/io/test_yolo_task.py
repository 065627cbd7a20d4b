"""YOLO writer: the default task follows the data, what a task can't hold is counted, data.yaml as Ultralytics
reads it (train and val keys, flip_idx, kpt_shape, names/nc), and every export reads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from maslow import Annotations, Dataset, FormatError, Images, LabelSchema, io
from maslow.core import masks as M
from maslow.core.schema import ClassDef, Task
from maslow.core.types import obj_array
from maslow.io import yolo
from tests.helpers import assert_datasets_equal

W, H = 40, 30
SQUARE = [4.0, 4.0, 14.0, 4.0, 14.0, 12.0, 4.0, 12.0]
TRIANGLE = [20.0, 5.0, 30.0, 20.0, 12.0, 20.0]


def _ds(tmp: Path, *, box: list[list[float]], polygon: list[Any] | None = None, mask: list[Any] | None = None,
        keypoints: np.ndarray | None = None, label: list[int] | None = None, tasks: tuple[Task, ...] = (
            Task.DETECTION,), kpt_names: tuple[str, ...] = (), split: list[str] | None = None,
        image: list[int] | None = None, n_images: int = 1) -> Dataset:
    """Images of W x H pixels on disk under tmp/src, one annotation per box."""
    for i in range(n_images):
        (tmp / "src").mkdir(parents=True, exist_ok=True)
        Image.new("L", (W, H), 100).save(tmp / "src" / f"im{i}.png")
    n = len(box)
    classes = (ClassDef("a", keypoints=kpt_names), ClassDef("b", keypoints=kpt_names))
    return Dataset(
        schema=LabelSchema(classes=classes, tasks=tasks),
        images=Images(path=[f"im{i}.png" for i in range(n_images)], width=[W] * n_images, height=[H] * n_images,
                      split=split or ["train"] * n_images),
        annotations=Annotations(image=image or [0] * n, label=label or [0] * n, box=box, polygon=polygon,
                                mask=None if mask is None else obj_array(mask),
                                keypoints=keypoints),
        root=tmp / "src",
    )


def _label_lines(dst: Path) -> list[list[str]]:
    return [line.split() for p in sorted((dst / "labels").rglob("*.txt")) for line in p.read_text().splitlines()]


def _ultralytics_counts(dst: Path) -> tuple[int, int]:
    """(boxes, segments) as Ultralytics' verify_image_label counts them: a file with a line of more than 6 values
    is a segment file (every line a segment). get_labels drops all segments when the two counts differ."""
    n_box = n_seg = 0
    for p in (dst / "labels").rglob("*.txt"):
        lines = [x.split() for x in p.read_text().splitlines() if x.strip()]
        n_box += len(lines)
        n_seg += len(lines) if any(len(x) > 6 for x in lines) else 0
    return n_box, n_seg


def _data_yaml(dst: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((dst / "data.yaml").read_text())
    return data


def _square_mask(hole: bool = False, second: bool = False) -> dict[str, Any]:
    m = np.zeros((H, W), bool)
    m[5:15, 6:20] = True  # 140 pixels, x 6..20, y 5..15
    if hole:
        m[9, 10] = False
    if second:
        m[22:25, 30:33] = True
    return M.encode(m)


# -- the default task -------------------------------------------------------------------------------------------
def test_polygons_default_to_segment_and_read_back(tmp_path: Path) -> None:
    """Polygons were dropped unless task='segment' was passed: the default was always detect."""
    ds = _ds(tmp_path, box=[M.polygon_box([SQUARE]).tolist(), M.polygon_box([TRIANGLE]).tolist()],
             polygon=[[np.array(SQUARE)], [np.array(TRIANGLE)]], label=[0, 1],
             tasks=(Task.INSTANCE_SEGMENTATION, Task.DETECTION))
    rep = yolo.write(ds, tmp_path / "out")
    assert rep.notes[0].startswith("task 'segment'")
    assert rep.lossless, rep.lost
    assert [len(x) for x in _label_lines(tmp_path / "out")] == [9, 7]
    n_box, n_seg = _ultralytics_counts(tmp_path / "out")
    assert n_box == n_seg == 2
    back, report = yolo.parse(tmp_path / "out")
    assert len(report) == 0 and back.schema.task is Task.INSTANCE_SEGMENTATION
    assert back.schema.names == ds.schema.names
    ref = ds.replace(images=Images(path=["images/train/im0.png"], width=[W], height=[H], split=["train"]))
    assert_datasets_equal(ref, back, fields=("path", "size", "split", "label", "box", "polygon"), atol=1e-6 * W)


def test_boxes_default_to_detect(tmp_path: Path) -> None:
    ds = _ds(tmp_path, box=[[1, 2, 11, 12]])
    rep = yolo.write(ds, tmp_path / "out")
    assert rep.notes[0] == "task 'detect': boxes"
    assert _label_lines(tmp_path / "out") == [["0", "0.150000", "0.233333", "0.250000", "0.333333"]]


def test_keypoints_default_to_pose_and_read_back(tmp_path: Path) -> None:
    kp = np.array([[[5, 6, 2], [9, 8, 1], [0, 0, 0]], [[np.nan] * 3] * 3], np.float64)
    ds = _ds(tmp_path, box=[[2, 2, 20, 20], [21, 3, 30, 9]], keypoints=kp, label=[0, 1],
             kpt_names=("nose", "left_eye", "right_eye"), tasks=(Task.DETECTION, Task.KEYPOINTS))
    rep = yolo.write(ds, tmp_path / "out")
    assert rep.notes[0] == "task 'pose': 1 annotations have keypoints"
    data = _data_yaml(tmp_path / "out")
    assert data["kpt_shape"] == [3, 3] and data["flip_idx"] == [0, 2, 1]
    back, report = yolo.parse(tmp_path / "out")
    assert len(report) == 0 and back.schema.task is Task.KEYPOINTS
    # a "0 0 0" keypoint of an object with keypoints stays (0, 0, 0); an object without any stays NaN
    np.testing.assert_allclose(back.annotations.keypoints, kp, atol=1e-6 * W, equal_nan=True)
    np.testing.assert_allclose(back.annotations.box, ds.annotations.box, atol=1e-6 * W)


def test_mixed_boxes_and_polygons_default_to_detect_and_count_the_polygons(tmp_path: Path) -> None:
    """As Ultralytics' get_labels treats a dataset whose box and segment counts differ (it drops every segment):
    boxes are written, and the polygons are counted as lost, not dropped silently."""
    ds = _ds(tmp_path, box=[M.polygon_box([SQUARE]).tolist(), [20, 5, 30, 20]], polygon=[[np.array(SQUARE)], None],
             tasks=(Task.INSTANCE_SEGMENTATION, Task.DETECTION))
    rep = yolo.write(ds, tmp_path / "out")
    assert rep.notes[0].startswith("task 'detect': only 1 of 2 annotations have a polygon or mask")
    assert "box and segment counts differ" in rep.notes[0]
    assert rep.lost["polygon"] == 1 and rep.n_annotations == 2
    # an explicit task still wins: the box-only annotation becomes its rectangle, so the counts agree
    rep = yolo.write(ds, tmp_path / "seg", task="segment")
    assert not any(n.startswith("task ") for n in rep.notes) and "polygon" not in rep.lost
    n_box, n_seg = _ultralytics_counts(tmp_path / "seg")
    assert n_box == n_seg == 2


def test_explicit_task_wins_and_counts_what_it_drops(tmp_path: Path) -> None:
    kp = np.array([[[5, 6, 2]]], np.float64)
    ds = _ds(tmp_path, box=[M.polygon_box([SQUARE]).tolist()], polygon=[[np.array(SQUARE)]], keypoints=kp,
             kpt_names=("p",), tasks=(Task.INSTANCE_SEGMENTATION, Task.KEYPOINTS))
    rep = yolo.write(ds, tmp_path / "auto")
    assert rep.notes[0].startswith("task 'pose'") and rep.lost["polygon"] == 1 and "keypoints" not in rep.lost
    rep = yolo.write(ds, tmp_path / "d", task="detect")
    assert rep.lost["polygon"] == 1 and rep.lost["keypoints"] == 1
    rep = yolo.write(ds, tmp_path / "s", task="segment")
    assert rep.lost["keypoints"] == 1 and "polygon" not in rep.lost


@pytest.mark.parametrize(("label", "kpt_names", "expected"), [
    pytest.param([0, 1], (), "segment", id="keypoints-on-some-classes"),
    pytest.param([0, 0], (), "pose", id="one-class-with-keypoints"),
    pytest.param([0, 1], ("p",), "pose", id="every-class-names-keypoints"),
])
def test_polygons_and_keypoints_pose_only_when_every_class_has_keypoints(
        tmp_path: Path, label: list[int], kpt_names: tuple[str, ...], expected: str) -> None:
    """The shapes sample (polygons on every shape, keypoints on triangles) is a segmentation dataset; COCO's
    person_keypoints (polygons and keypoints, all persons) a pose one, whatever order the schema lists tasks in."""
    kp = np.array([[[5, 6, 2]], [[np.nan] * 3]], np.float64)
    for tasks in ((Task.KEYPOINTS, Task.INSTANCE_SEGMENTATION), (Task.INSTANCE_SEGMENTATION, Task.KEYPOINTS)):
        ds = _ds(tmp_path, box=[M.polygon_box([SQUARE]).tolist(), M.polygon_box([TRIANGLE]).tolist()],
                 polygon=[[np.array(SQUARE)], [np.array(TRIANGLE)]], keypoints=kp, label=label, kpt_names=kpt_names,
                 tasks=tasks)
        assert yolo.task_for(ds)[0] == expected


def test_masks_default_to_segment_traced_into_polygons(tmp_path: Path) -> None:
    """A mask without a polygon was written as its box rectangle; it is traced along its pixel edges, and what the
    polygon gets wrong (a hole, a second part) is reported."""
    masks = [_square_mask(), _square_mask(hole=True, second=True)]
    ds = _ds(tmp_path, box=M.to_box(masks).tolist(), mask=masks, label=[0, 1], image=[0, 1], n_images=2,
             tasks=(Task.INSTANCE_SEGMENTATION,))
    rep = yolo.write(ds, tmp_path / "out")
    assert rep.notes[0].startswith("task 'segment'")
    assert rep.lost["mask"] == 2  # they come back as polygons
    assert rep.lost["box"] == 1  # the second mask's box spans both parts; the polygon's only the larger
    traced = next(n for n in rep.notes if "traced" in n)
    assert "2 masks were traced" in traced and "1 of them" in traced and "by 10 pixels" in traced
    back, report = yolo.parse(tmp_path / "out")
    assert len(report) == 0
    for r in range(2):
        ring = back.annotations.polygon[r][0]
        np.testing.assert_allclose(M.polygon_box([ring]), [6, 5, 20, 15], atol=1e-6 * W)
        assert M.polygon_area(ring) == pytest.approx(140, abs=1e-3)  # the hole is filled


def test_image_labels_default_to_classify_folders_and_read_back(tmp_path: Path) -> None:
    """Classification labels have no box: every one was counted lost and the label files were empty."""
    n = 3
    ds = _ds(tmp_path, box=[[np.nan] * 4] * n, label=[0, 1, 0], image=[0, 1, 2], n_images=n,
             split=["train", "val", "train"], tasks=(Task.CLASSIFICATION,))
    rep = yolo.write(ds, tmp_path / "out")
    assert rep.format == "yolo" and rep.notes[0].startswith("task 'classify'")
    assert (rep.n_images, rep.n_annotations) == (3, 3) and rep.lossless
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "train/a/im0.png", "train/a/im2.png", "val/b/im1.png"]
    back, report = yolo.parse(tmp_path / "out")
    assert len(report) == 0 and back.schema.task is Task.CLASSIFICATION
    got = {p.rsplit("/", 1)[-1]: (back.schema.names[back.annotations.label[i]], s)
           for i, (p, s) in enumerate(zip(back.images.path.tolist(), back.images.split.tolist(), strict=True))}
    assert got == {"im0.png": ("a", "train"), "im1.png": ("b", "val"), "im2.png": ("a", "train")}
    assert io.read(tmp_path / "out", "yolo").n_annotations == 3
    with pytest.raises(FormatError, match="images=False"):
        yolo.write(ds, tmp_path / "x", images=False)


def test_a_bare_tree_with_train_images_is_not_a_classify_folder(tmp_path: Path) -> None:
    Image.new("L", (W, H)).save(tmp_path / "a.png")
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "train" / "labels").mkdir()
    Image.new("L", (W, H)).save(tmp_path / "train" / "images" / "a.png")
    (tmp_path / "train" / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "a.png").unlink()
    ds, _ = yolo.parse(tmp_path, names=["x"])
    assert ds.n_annotations == 1 and ds.schema.task is Task.DETECTION


# -- data.yaml as Ultralytics reads it ----------------------------------------------------------------------------
@pytest.mark.parametrize(("splits", "train", "val"), [
    pytest.param(["train"], "images/train", "images/train", id="train-only"),
    pytest.param(["val"], "images/val", "images/val", id="val-only"),
    pytest.param(["train", "test"], "images/train", "images/test", id="train-test"),
])
def test_data_yaml_always_has_train_and_val(tmp_path: Path, splits: list[str], train: str, val: str) -> None:
    """check_det_dataset refuses a data.yaml without a 'train' or a 'val' key; the writer left them out."""
    n = len(splits)
    ds = _ds(tmp_path, box=[[1, 1, 5, 5]] * n, image=list(range(n)), n_images=n, split=splits)
    rep = yolo.write(ds, tmp_path / "out")
    data = _data_yaml(tmp_path / "out")
    assert (data["train"], data["val"]) == (train, val)
    assert any("Ultralytics needs the key" in x for x in rep.notes)
    back, report = yolo.parse(tmp_path / "out")  # each image read once, in its own split
    assert len(report) == 0
    assert sorted(back.images.split.tolist()) == sorted(splits)


def test_other_split_names_round_trip(tmp_path: Path) -> None:
    """A split named other than train/val/test was written under a data.yaml key the reader ignored: its images
    vanished on reading back."""
    ds = _ds(tmp_path, box=[[1, 1, 5, 5]] * 2, image=[0, 1], n_images=2, split=["train", "holdout"])
    rep = yolo.write(ds, tmp_path / "out")
    assert any("holdout" in x for x in rep.notes)
    back, report = yolo.parse(tmp_path / "out")
    assert len(report) == 0
    assert back.images.split.tolist() == ["train", "holdout"] and back.annotations.image.tolist() == [0, 1]
    # a key that names no image folder is not a split
    (tmp_path / "out" / "data.yaml").write_text(
        (tmp_path / "out" / "data.yaml").read_text() + "download: https://example.com/x.zip\nroot: .\n")
    again, _ = yolo.parse(tmp_path / "out")
    assert again.images.split.tolist() == ["train", "holdout"]


def test_flip_idx_only_from_left_right_names(tmp_path: Path) -> None:
    """Keypoints named without left/right got the identity flip_idx, which trains silently on swapped joints when
    they are lateral; without it Ultralytics only turns flips off."""
    kp = np.array([[[5, 6, 2], [9, 8, 2]]], np.float64)
    for names, flip in ((("p0", "p1"), None), (("Left hand", "Right hand"), [1, 0])):
        ds = _ds(tmp_path, box=[[2, 2, 20, 20]], keypoints=kp, kpt_names=names, tasks=(Task.KEYPOINTS,))
        rep = yolo.write(ds, tmp_path / names[0])
        assert _data_yaml(tmp_path / names[0]).get("flip_idx") == flip
        assert any(x.startswith("flip_idx not written") for x in rep.notes) == (flip is None)
    rep = yolo.write(ds, tmp_path / "given", flip_idx=[0, 1])
    assert _data_yaml(tmp_path / "given")["flip_idx"] == [0, 1]


def test_pose_without_keypoints_is_refused(tmp_path: Path) -> None:
    """kpt_shape [0, 3] was written, which Ultralytics refuses ('kpt_shape' ... missing or incorrect)."""
    ds = _ds(tmp_path, box=[[1, 1, 5, 5]])
    with pytest.raises(FormatError, match="task 'pose' needs keypoints"):
        yolo.write(ds, tmp_path / "out", task="pose")
    (tmp_path / "data.yaml").write_text("train: src\nnames: [a]\nkpt_shape: [0, 3]\n")
    with pytest.raises(FormatError, match="kpt_shape"):
        yolo.parse(tmp_path / "data.yaml")


def test_nc_that_disagrees_with_names_is_reported(tmp_path: Path) -> None:
    """check_det_dataset refuses 'names' length != 'nc'; it was read silently."""
    Image.new("L", (W, H)).save(tmp_path / "a.png")
    (tmp_path / "data.yaml").write_text("train: .\nval: .\nnc: 3\nnames: [a, b]\n")
    ds, report = yolo.parse(tmp_path / "data.yaml")
    assert report.counts() == {"yolo_nc_mismatch": 1} and ds.schema.names == ("a", "b")


def test_kpt_names_as_a_list_per_class(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    Image.new("L", (W, H)).save(tmp_path / "images" / "a.png")
    (tmp_path / "data.yaml").write_text("train: images\nval: images\nnames: [person]\nkpt_shape: [2, 3]\n"
                                        "kpt_names: [[left_eye, right_eye]]\n")
    ds, report = yolo.parse(tmp_path / "data.yaml")
    assert len(report) == 0 and ds.schema.classes[0].keypoints == ("left_eye", "right_eye")
