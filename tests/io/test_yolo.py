"""YOLO txt (Ultralytics and darknet layouts): golden file, round trips, planted errors, bad input, real data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from maslow import Annotations, Dataset, FormatError, Images, LabelSchema, MaslowWarning, io
from maslow.io import yolo
from maslow.io.voc import parse as parse_voc
from tests.conftest import shared_path
from tests.helpers import assert_datasets_equal

GOLDEN = Path(__file__).parents[1] / "data" / "yolo"


def _png(path: Path, w: int, h: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (w, h), 128).save(path)


def _by_name(ds: Dataset) -> Dataset:
    """The dataset with image paths reduced to file names (writers flatten folders)."""
    names = np.array([p.rsplit("/", 1)[-1] for p in ds.images.path], dtype=object)
    return ds.replace(images=Images(path=names, width=ds.images.width, height=ds.images.height,
                                    split=ds.images.split))


def _rows_by_image_name(ds: Dataset) -> np.ndarray:
    """Annotation rows ordered by their image's file name (stable): YOLO reads images back split by split."""
    names = np.array([p.rsplit("/", 1)[-1] for p in ds.images.path], dtype=object)
    return np.argsort(names[ds.annotations.image].astype(str), kind="stable")


# -- golden file -------------------------------------------------------------------------------------
def test_golden_reads_boxes_splits_and_background_image() -> None:
    ds, report = yolo.parse(GOLDEN)
    assert len(report) == 0
    assert ds.schema.names == ("cat", "dog")
    assert [c.id for c in ds.schema.classes] == [0, 1]
    assert ds.images.path.tolist() == ["images/train/a.png", "images/train/b.png", "images/val/c.png"]
    assert ds.images.split.tolist() == ["train", "train", "val"]
    assert ds.images.width.tolist() == [16, 16, 20] and ds.images.height.tolist() == [12, 12, 10]
    assert ds.annotations.image.tolist() == [0, 0, 2]  # b.png has no label file: a background image
    assert ds.annotations.label.tolist() == [0, 1, 1]
    np.testing.assert_allclose(ds.annotations.box, [[6, 3, 10, 9], [0, 0, 2, 12], [16, 3, 20, 7]], atol=1e-9)
    assert ds.root == GOLDEN


def test_golden_same_from_yaml_file_and_registry() -> None:
    a = yolo.read_yolo(GOLDEN / "data.yaml")
    b = io.read(GOLDEN, "ultralytics")
    assert_datasets_equal(a, b, fields=("path", "size", "split", "label", "box"))


def test_golden_matches_voc_golden() -> None:
    y, _ = yolo.parse(GOLDEN)
    v, _ = parse_voc(GOLDEN.parent / "voc")
    assert_datasets_equal(_by_name(y), v, fields=("path", "size", "split", "label", "box"))


# -- round trips ---------------------------------------------------------------------------------------
def test_detect_round_trip_and_lost_counts(shapes_on_disk: Dataset, tmp_path: Path) -> None:
    ds = shapes_on_disk
    rep = yolo.write(ds, tmp_path / "out", task="detect")
    back = yolo.read_yolo(tmp_path / "out")
    assert_datasets_equal(_by_name(ds), _by_name(back), fields=("path", "size", "split", "label", "box"), atol=1e-3)
    a = ds.annotations
    n_attr = sum(v is not None for col in a.attributes.values() for v in col)
    assert rep.lost["attributes"] == n_attr
    assert rep.lost["iscrowd"] == int(a.iscrowd.sum()) > 0
    assert rep.lost["mask"] == len(a)
    assert rep.lost["keypoints"] == int((~np.isnan(a.keypoints).all(axis=(1, 2))).sum())
    assert rep.n_annotations == len(a) and rep.n_images == ds.n_images
    assert back.schema.names == ds.schema.names
    assert os.path.islink(tmp_path / "out" / back.images.path[0])


def test_segment_round_trip_keeps_polygons(shapes_on_disk: Dataset, tmp_path: Path) -> None:
    ds = shapes_on_disk
    rep = yolo.write(ds, tmp_path / "seg", task="segment")
    back, report = yolo.parse(tmp_path / "seg")
    assert len(report) == 0
    assert back.schema.task.value == "instance_segmentation"
    a, b = ds.annotations, back.annotations
    ra, rb = _rows_by_image_name(ds), _rows_by_image_name(back)
    crowd = np.flatnonzero(a.iscrowd)
    assert rep.lost["mask"] == len(crowd)  # crowd masks have no polygon: traced into one, read back as it
    for r, q in zip(ra.tolist(), rb.tolist(), strict=True):
        if a.polygon[r] is None:
            np.testing.assert_allclose(b.polygon[q][0].reshape(-1, 2).min(0), a.box[r][:2], atol=1e-3)
            continue
        np.testing.assert_allclose(b.polygon[q][0], a.polygon[r][0], atol=1e-3)
    np.testing.assert_allclose(b.box[rb], a.box[ra], atol=1e-3)


def test_pose_round_trip_keeps_keypoints_and_flip_idx(shapes_on_disk: Dataset, tmp_path: Path) -> None:
    ds = shapes_on_disk
    yolo.write(ds, tmp_path / "pose", task="pose")
    text = (tmp_path / "pose" / "data.yaml").read_text()
    assert "kpt_shape:\n- 3\n- 3" in text and "flip_idx:\n- 0\n- 2\n- 1" in text
    back = yolo.read_yolo(tmp_path / "pose")
    assert back.schema.task.value == "keypoints"
    assert back.schema.classes[2].keypoints == ("top", "left", "right")
    np.testing.assert_allclose(back.annotations.keypoints[_rows_by_image_name(back)],
                               ds.annotations.keypoints[_rows_by_image_name(ds)], atol=1e-3, equal_nan=True)
    lines = [ln.split() for f in sorted((tmp_path / "pose" / "labels").rglob("*.txt")) for ln in
             f.read_text().splitlines()]
    flags = {v for ln in lines for v in ln[7::3]}  # visibility flags written as Ultralytics writes them
    assert flags and flags <= {"0", "1", "2"}


def test_copy_images_and_labels_only(shapes_on_disk: Dataset, tmp_path: Path) -> None:
    yolo.write(shapes_on_disk, tmp_path / "copy", copy_images=True)
    first = next((tmp_path / "copy" / "images").rglob("*.png"))
    assert first.is_file() and not first.is_symlink()
    rep = yolo.write(shapes_on_disk, tmp_path / "labels_only", images=False)
    assert not (tmp_path / "labels_only" / "images").exists()
    assert rep.lost["image_files"] == 0
    back, report = yolo.parse(tmp_path / "labels_only", images_root=shapes_on_disk.root / "images")
    assert len(report) == 0
    assert_datasets_equal(_by_name(shapes_on_disk), back, fields=("path", "size", "label", "box"), atol=1e-3)


def test_write_counts_what_it_cannot_place(tmp_path: Path) -> None:
    ds = Dataset(
        schema=LabelSchema.from_names(["a"]),
        images=Images(path=["x.png", "y.png"], width=[0, 10], height=[0, 10]),
        annotations=Annotations(image=[0, 1, 1], label=[0, 0, 0],
                                box=[[1, 1, 2, 2], [1, 1, 5, 5], [np.nan] * 4], score=[0.9, 0.8, 0.7]),
    )
    rep = yolo.write(ds, tmp_path / "out", images=False)
    assert rep.lost["annotations"] == 2  # one on an image of unknown size, one without a box
    assert rep.lost["score"] == 1
    assert rep.n_annotations == 1
    assert (tmp_path / "out/labels/train/y.txt").read_text() == "0 0.300000 0.300000 0.400000 0.400000\n"


def test_write_rejects_unknown_task(shapes_ds: Dataset, tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="task must be one of"):
        yolo.write(shapes_ds, tmp_path / "x", task="rotated")


@settings(max_examples=40, deadline=None)
@given(
    w=st.integers(1, 4000), h=st.integers(1, 4000),
    fx=st.lists(st.floats(0, 1), min_size=2, max_size=2), fy=st.lists(st.floats(0, 1), min_size=2, max_size=2),
)
def test_box_normalisation_round_trip(w: int, h: int, fx: list[float], fy: list[float]) -> None:
    box = [min(fx) * w, min(fy) * h, max(fx) * w, max(fy) * h]
    ds = Dataset(schema=LabelSchema.from_names(["a"]), images=Images(path=["i.png"], width=[w], height=[h]),
                 annotations=Annotations(image=[0], label=[0], box=[box]))
    with tempfile.TemporaryDirectory() as tmp:
        yolo.write(ds, Path(tmp) / "y", images=False)
        back, report = yolo.parse(Path(tmp) / "y", image_size=(w, h))
    assert report.counts() == {"missing_image": 1}
    np.testing.assert_allclose(back.annotations.box[0], box, atol=1e-6 * max(w, h) + 1e-9)


# -- planted errors ------------------------------------------------------------------------------------
def _planted(tmp_path: Path) -> Path:
    root = tmp_path / "planted"
    _png(root / "images/train/x.png", 10, 10)
    _png(root / "images/train/y.png", 100, 100)
    (root / "labels/train").mkdir(parents=True)
    (root / "labels/train/x.txt").write_text(
        "0 0.5 0.5 0.2 0.2\n"           # line 1: fine
        "0.0 0.5 0.5 0.2 0.2\n"         # line 2: float class id (kept)
        "7 0.5 0.5 0.2 0.2\n"           # line 3: unknown class
        "1 0.5 0.5 0.2\n"               # line 4: 4 values
        "1 a 0.5 0.2 0.2\n"             # line 5: not a number
        "\n"                            # line 6: empty lines are fine
        "1 0.1 0.1 0.2 0.1 0.3 0.3\n"   # line 7: a polygon among boxes
    )
    (root / "labels/train/y.txt").write_text("0 50 60 20 30\n1 10 10 4 4\n")
    (root / "labels/train/z.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # no image
    (root / "classes.txt").write_text("a\nb\n")
    return root


def test_parse_reports_planted_errors(tmp_path: Path) -> None:
    ds, report = yolo.parse(_planted(tmp_path))
    counts = report.counts()
    assert counts == {"yolo_float_class": 1, "yolo_unknown_class": 1, "yolo_bad_columns": 1, "yolo_bad_value": 1,
                      "yolo_mixed_task": 1, "yolo_not_normalized": 1, "missing_image": 1,
                      "unplaced_annotation": 1}
    by = {i.type: i for i in report}
    assert by["yolo_unknown_class"].record == "line 3" and by["yolo_unknown_class"].file.endswith("x.txt")
    assert by["yolo_bad_columns"].record == "line 4" and "got 4" in by["yolo_bad_columns"].message
    assert by["yolo_bad_value"].record == "line 5"
    assert by["yolo_mixed_task"].record == "line 7"
    assert "absolute pixels" in by["yolo_not_normalized"].message
    assert by["yolo_not_normalized"].severity == "error" and by["yolo_not_normalized"].file.endswith("y.txt")
    assert by["missing_image"].file.endswith("z.txt")
    assert ds.images.path.tolist() == ["images/train/x.png", "images/train/y.png", "images/train/z.jpg"]
    assert ds.annotations.image.tolist() == [0, 0, 0, 1, 1]  # the 3 good lines of x, both (bad) lines of y
    assert ds.annotations.polygon[2] is not None and ds.annotations.polygon[0] is None


def test_coordinates_outside_zero_one_name_the_first_line(tmp_path: Path) -> None:
    root = _planted(tmp_path)
    (root / "labels/train/x.txt").write_text("0 0.5 0.5 0.2 0.2\n\n1 0.5 1.25 0.2 0.2\n0 0.5 -0.1 0.2 0.2\n")
    _, report = yolo.parse(root)
    (issue,) = [i for i in report.of_type("yolo_not_normalized") if i.file.endswith("x.txt")]
    assert issue.record == "line 3" and "2 of 12 outside (e.g. 1.25)" in issue.message  # used to name no line
    (pixels,) = [i for i in report.of_type("yolo_not_normalized") if i.file.endswith("y.txt")]
    assert pixels.record == "line 1"


def test_strict_and_warning(tmp_path: Path) -> None:
    root = _planted(tmp_path)
    with pytest.raises(FormatError, match="strict mode"):
        yolo.parse(root, strict=True)
    with pytest.warns(MaslowWarning, match="import issues"):
        yolo.read_yolo(root)


def test_six_columns_are_a_prediction_with_a_confidence(tmp_path: Path) -> None:
    _png(tmp_path / "d/images/p.png", 8, 8)
    (tmp_path / "d/labels").mkdir(parents=True)
    (tmp_path / "d/labels/p.txt").write_text("0 0.5 0.5 0.1 0.1 0.93\n")
    ds, report = yolo.parse(tmp_path / "d", names=["a"])
    assert [i.type for i in report] == ["yolo_scored"]  # info: lines read with a confidence
    assert ds.annotations.score is not None and ds.annotations.score.tolist() == [0.93]


def test_missing_image_keeps_boxes_with_image_size(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / "labels/train").mkdir(parents=True)
    (root / "labels/train/q.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    ds, report = yolo.parse(root, names=["a"], image_size=(40, 20))
    assert report.counts() == {"missing_image": 1}
    np.testing.assert_allclose(ds.annotations.box, [[10, 5, 30, 15]])
    # images_root as a str, as every reader takes it (a TypeError in YOLO's path joins)
    _png(tmp_path / "pics" / "q.png", 40, 20)
    found, clean = yolo.parse(root, names=["a"], images_root=str(tmp_path / "pics"))
    assert len(clean) == 0 and found.root == tmp_path / "pics"
    # an import (which also checks every image file) reports it once, not again from the file check
    imported = io.import_dataset(root, "yolo", names=["a"], image_size=(40, 20))
    assert imported.report.counts() == {"missing_image": 1}


# -- layouts -------------------------------------------------------------------------------------------
def test_txt_lists_names_list_and_roboflow_paths(tmp_path: Path) -> None:
    root = tmp_path / "rf"
    _png(root / "train/images/a.png", 10, 10)
    _png(root / "valid/images/b.png", 10, 10)
    (root / "train/labels").mkdir(parents=True)
    (root / "train/labels/a.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text("train: ../train/images\nval: lists/val.txt\nnc: 2\nnames: ['x', 'y']\n")
    (root / "lists").mkdir()
    (root / "lists/val.txt").write_text("../valid/images/b.png\n")
    ds, report = yolo.parse(root / "data.yaml")
    assert len(report) == 0
    assert ds.images.path.tolist() == ["train/images/a.png", "valid/images/b.png"]
    assert ds.images.split.tolist() == ["train", "val"]
    assert ds.schema.names[ds.annotations.label[0]] == "y"


def test_pose_kpt_shape_two_values(tmp_path: Path) -> None:
    root = tmp_path / "p"
    _png(root / "images/train/a.png", 10, 20)
    (root / "labels/train").mkdir(parents=True)
    (root / "labels/train/a.txt").write_text("0 0.5 0.5 0.4 0.4 0.1 0.2 0 0\n")
    (root / "data.yaml").write_text("train: images/train\nnames: {0: person}\nkpt_shape: [2, 2]\nflip_idx: [1, 0]\n")
    ds, report = yolo.parse(root)
    assert len(report) == 0
    np.testing.assert_allclose(ds.annotations.keypoints[0], [[1, 4, 2], [0, 0, 0]])


# -- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("yaml_text", "match"), [
    pytest.param("train: [images\nnames: 3\n", "malformed YAML", id="malformed"),
    pytest.param("train: images/train\nnames: 3\n", "field 'names'", id="names-type"),
    pytest.param("- a\n- b\n", "YAML mapping", id="not-mapping"),
    pytest.param("names: [a]\n", "train", id="no-splits"),
    pytest.param("train: ../../outside\nnames: [a]\n", "inside the dataset root", id="split-escapes"),
    pytest.param("train: images\nnames: [a]\nkpt_shape: [17]\n", "kpt_shape", id="kpt-shape"),
])
def test_bad_data_yaml(tmp_path: Path, yaml_text: str, match: str) -> None:
    (tmp_path / "data.yaml").write_text(yaml_text)
    with pytest.raises(FormatError, match=match):
        yolo.parse(tmp_path / "data.yaml")


def test_path_traversal_in_list_is_refused(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("images/a.png\n../../etc/passwd\n")
    (tmp_path / "data.yaml").write_text("train: train.txt\nnames: [a]\n")
    with pytest.raises(FormatError, match=r"train.txt, line 2: image path must stay inside"):
        yolo.parse(tmp_path)


def test_label_file_not_utf8(tmp_path: Path) -> None:
    _png(tmp_path / "images/a.png", 4, 4)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels/a.txt").write_bytes(b"0 0.5 0.5 \xff\xfe 0.1\n")
    with pytest.raises(FormatError, match=r"a\.txt: label file must be UTF-8"):
        yolo.parse(tmp_path)


def test_missing_source_and_wrong_file(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="not found"):
        yolo.parse(tmp_path / "nope")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(FormatError, match=r"data\.yaml, an obj\.data or a folder"):
        yolo.parse(tmp_path / "x.json")
    (tmp_path / "obj.data").write_text("classes = 2\ntrain = data/missing.txt\n")
    with pytest.raises(FormatError, match="field 'train'"):
        yolo.parse(tmp_path / "obj.data")


# -- real data -----------------------------------------------------------------------------------------
def test_darknet_fixture_with_images_root() -> None:
    base = shared_path("od_metrics_fixture")
    ds, report = yolo.parse(base / "annotations/gts/yolo_format", images_root=base / "images")
    assert len(report) == 0
    assert (ds.n_images, ds.n_annotations, len(ds.schema.names)) == (100, 273, 20)
    assert ds.schema.names[:3] == ("person", "cat", "boat")
    assert set(ds.images.split.tolist()) == {"train"}
    assert (ds.images.width > 0).all()
    voc, _ = parse_voc(base / "annotations/gts/pascalvoc_format", images_root=base / "images")
    # the YOLO file was made from the VOC one with x1 = xmin (not xmin - 1), objects in another order:
    # per image, the sorted (class, box) lists agree within one pixel
    assert_datasets_equal(ds, voc, fields=("path", "size"))

    def objects(d: Dataset) -> dict[str, list[tuple[str, list[float]]]]:
        s, a = d.image_slices(), d.annotations
        return {p: sorted((d.schema.names[a.label[r]], np.round(a.box[r]).tolist()) for r in range(s[i], s[i + 1]))
                for i, p in enumerate(d.images.path)}

    oy, ov = objects(ds), objects(voc)
    for p, objs in oy.items():
        assert [n for n, _ in objs] == [n for n, _ in ov[p]], p
        np.testing.assert_allclose([b for _, b in objs], [b for _, b in ov[p]], atol=1.01, err_msg=p)


def test_darknet_fixture_without_images_reports_each_annotation() -> None:
    base = shared_path("od_metrics_fixture", "annotations", "gts", "yolo_format")
    ds, report = yolo.parse(base / "obj.data")
    assert report.counts() == {"missing_image": 100, "unplaced_annotation": 273}
    assert (ds.n_images, ds.n_annotations) == (100, 0)
    assert ds.images.path[0] == "obj_train_data/2007_001585.jpg"
    kept, _ = yolo.parse(base / "obj.data", image_size=(500, 375))
    assert kept.n_annotations == 273


def test_absolute_split_folders_without_path(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    _png(root / "images/train2017/a.png", 10, 10)
    _png(root / "images/val2017/b.png", 10, 10)
    (root / "labels/train2017").mkdir(parents=True)
    (root / "labels/train2017/a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    cfg = tmp_path / "configs" / "coco.yaml"
    cfg.parent.mkdir()
    cfg.write_text(f"train: {root}/images/train2017\nval: {root}/images/val2017\nnames: [a]\n")
    ds, report = yolo.parse(cfg)
    assert len(report) == 0 and ds.root == root
    assert ds.images.path.tolist() == ["images/train2017/a.png", "images/val2017/b.png"]
    assert ds.annotations.image.tolist() == [0]


def test_flat_labelimg_folder(tmp_path: Path) -> None:
    _png(tmp_path / "a.png", 20, 10)
    _png(tmp_path / "b.png", 20, 10)
    (tmp_path / "a.txt").write_text("1 0.5 0.5 1 1\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    ds, report = yolo.parse(tmp_path)
    assert len(report) == 0 and ds.schema.names == ("cat", "dog")
    assert ds.images.path.tolist() == ["a.png", "b.png"] and ds.images.split.tolist() == ["", ""]
    np.testing.assert_allclose(ds.annotations.box, [[0, 0, 20, 10]])


def test_numpy_str_splits_and_names_are_written(tmp_path: Path) -> None:
    """Splits and class names held as numpy str_ (np.array of str) went into data.yaml and crashed yaml."""
    Image.new("L", (10, 8)).save(tmp_path / "a.png")
    ds = Dataset(schema=LabelSchema.from_names(list(np.array(["cat", "dog"]))),
                 images=Images(path=np.array(["a.png"]), width=[10], height=[8], split=np.array(["val"])),
                 annotations=Annotations(image=[0], label=[1], box=[[1, 2, 5, 6]]), root=tmp_path)
    io.write_yolo(ds, tmp_path / "out")
    back = io.read_yolo(tmp_path / "out")
    assert back.schema.names == ("cat", "dog") and back.images.split.tolist() == ["val"]
    np.testing.assert_allclose(back.annotations.box, [[1, 2, 5, 6]], atol=1e-5)
