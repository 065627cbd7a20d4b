"""YOLO labels read in bulk and written in one pass: the same Dataset, the same bytes and the same reports as
line by line, and no file-system call per image."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow import Annotations, ClassDef, Dataset, Images, LabelSchema
from maslow.io import yolo
from maslow.sample import shapes, write_shapes


def _png(path: Path, w: int = 40, h: int = 20) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (w, h)).save(path)


def _dataset(root: Path, labels: dict[str, str], *, names: str = "[a, b]", extra: str = "") -> Path:
    """A YOLO tree with one 40x20 image per label file (``labels``: image stem -> label text)."""
    for stem, text in labels.items():
        _png(root / "images" / "train" / f"{stem}.png")
        (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
        (root / "labels" / "train" / f"{stem}.txt").write_bytes(text.encode())
    (root / "data.yaml").write_text(f"train: images/train\nval: images/train\nnames: {names}\n{extra}")
    return root


def _same_annotations(a: Dataset, b: Dataset) -> None:
    x, y = a.annotations, b.annotations
    np.testing.assert_array_equal(x.image, y.image)
    np.testing.assert_array_equal(x.label, y.label)
    assert x.box is not None and y.box is not None
    assert x.box.tobytes() == y.box.tobytes()  # bit for bit
    assert (x.keypoints is None) == (y.keypoints is None)
    if x.keypoints is not None and y.keypoints is not None:
        assert x.keypoints.tobytes() == y.keypoints.tobytes()
    assert (x.polygon is None) == (y.polygon is None)
    if x.polygon is not None and y.polygon is not None:
        assert x.polygon.xy.tobytes() == y.polygon.xy.tobytes()
        np.testing.assert_array_equal(x.polygon.row_offsets, y.polygon.row_offsets)
        np.testing.assert_array_equal(x.polygon.ring_offsets, y.polygon.ring_offsets)


# -- reading -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "extra"), [
    pytest.param("0 0.5 0.5 0.2 0.4\n\n1 0.123457 0.9 0.05 1\n", "", id="detect"),
    pytest.param("0 0.1 0.1 0.4 0.1 0.4 0.4\n1 0.5 0.5 0.9 0.5 0.9 0.9 0.5 0.9\n", "", id="segment"),
    pytest.param("0 0.5 0.5 0.2 0.2 0.4 0.4 2 0 0 0\n1 0.5 0.5 0.2 0.2 0 0 0 0 0 0\n", "kpt_shape: [2, 3]\n",
                 id="pose"),
])
def test_clean_files_read_as_the_line_by_line_reader_reads_them(tmp_path: Path, text: str, extra: str) -> None:
    """A clean file is parsed in bulk; the same lines with float class ids ('0.0') go line by line (to report
    them): both give the same annotations, bit for bit."""
    clean, _ = yolo.parse(_dataset(tmp_path / "clean", {"x": text, "y": text}, extra=extra))
    floats = "".join(f"{line.split(' ', 1)[0]}.0 {line.split(' ', 1)[1]}\n" if line else "\n"
                     for line in text.splitlines())
    slow, report = yolo.parse(_dataset(tmp_path / "floats", {"x": text, "y": floats}, extra=extra))
    assert report.counts() == {"yolo_float_class": 1}
    assert clean.n_annotations == 4
    _same_annotations(clean, slow)


def test_problems_after_blank_lines_name_their_line_and_file(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", {
        "a": "\n0 0.5 0.5 0.2 0.2\n\n7 0.5 0.5 0.2 0.2\n",  # a clean file with an unknown class on line 4
        "b": "0 0.5 0.5 0.2 0.2\n1 0.5 abc 0.2 0.2\n0 0.5 0.5 0.2\n",  # a bad value, then a short line
        "c": "1 0.25 0.25 0.5 0.5\n",
    })
    os.remove(root / "images" / "train" / "c.png")  # its label can't be placed
    ds, report = yolo.parse(root)
    got = [(i.type, Path(i.file or "").name, i.record, i.field) for i in report]
    assert got == [
        ("yolo_bad_value", "b.txt", "line 2", None),
        ("yolo_bad_columns", "b.txt", "line 3", None),
        ("missing_image", "c.txt", None, None),
        ("yolo_unknown_class", "a.txt", "line 4", "class"),
        ("unplaced_annotation", "c.txt", "line 1", None),
    ]
    assert ds.annotations.image.tolist() == [0, 1]  # a's line 2 and b's line 1
    np.testing.assert_array_equal(ds.annotations.box, [[16, 8, 24, 12], [16, 8, 24, 12]])


def test_image_lookup_lists_folders_instead_of_a_stat_per_image(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding each image and label file by a stat per path cost most of the read time at 100k images."""
    real = os.stat
    calls: list[object] = []

    def counting(*args: object, **kwargs: object) -> os.stat_result:
        calls.append(args[0])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    counts = []
    for n in (4, 24):
        root = _dataset(tmp_path / f"d{n}", {f"i{k}": "0 0.5 0.5 0.2 0.2\n" for k in range(n)})
        calls.clear()
        monkeypatch.setattr(os, "stat", counting)
        ds, _ = yolo.parse(root)
        monkeypatch.undo()
        assert ds.n_images == n and ds.n_annotations == n
        counts.append(len(calls))
    assert counts[1] == counts[0]  # was 3 per image


def test_linked_images_and_odd_file_names_find_their_labels(tmp_path: Path) -> None:
    root = tmp_path / "d"
    names = ["a.b", ".hidden", "x.", "sp ace"]
    _dataset(root, {n: "0 0.5 0.5 0.2 0.2\n" for n in names}, names="[a]")
    _png(tmp_path / "elsewhere.png")
    os.symlink(tmp_path / "elsewhere.png", root / "images" / "train" / "linked.png")
    os.symlink(tmp_path / "gone.png", root / "images" / "train" / "broken.png")  # dangling: no image
    for stem in ("linked", "broken"):
        (root / "labels" / "train" / f"{stem}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    ds, report = yolo.parse(root)
    assert ds.images.path.tolist() == [
        "images/train/.hidden.png", "images/train/a.b.png", "images/train/linked.png", "images/train/sp ace.png",
        "images/train/x..png", "images/train/broken.jpg"]  # the dangling link is no image: its label an orphan
    assert np.bincount(ds.annotations.image, minlength=ds.n_images).tolist() == [1, 1, 1, 1, 1, 0]
    assert [(i.type, Path(i.file or "").name) for i in report] == [("broken_link", "broken.png"),
                                                                    ("missing_image", "broken.txt"),
                                                                    ("unplaced_annotation", "broken.txt")]


# -- writing -----------------------------------------------------------------------------------------
def test_label_lines_are_byte_exact(tmp_path: Path) -> None:
    """Boxes touching and crossing the border (clipped), tiny negatives (no '-0.000000') and keypoints."""
    kp = np.full((4, 2, 3), np.nan)
    kp[0] = [[10, 5, 2], [50, 25, -1e-9]]  # a keypoint outside the image: clipped
    ann = Annotations(image=np.array([0, 0, 0, 1]), label=np.array([1, 0, 1, 0]),
                      box=np.array([[0, 0, 40, 20], [-5, -1e-12, 10, 30], [1.25, 2.5, 3.75, 5], [2, 2, 6, 6]]),
                      keypoints=kp)
    images = Images(path=np.array(["p/a.png", "q/b.png"], object), width=np.array([40, 40]),
                    height=np.array([20, 20]), split=np.array(["train", "val"], object))
    schema = LabelSchema(classes=(ClassDef("cat", keypoints=("l", "r")), ClassDef("dog", keypoints=("l", "r"))))
    ds = Dataset(schema=schema, images=images, annotations=ann)
    rep = yolo.write(ds, tmp_path / "out", images=False, task="pose")
    assert (tmp_path / "out/labels/train/a.txt").read_bytes() == (
        b"1 0.500000 0.500000 1.000000 1.000000 0.250000 0.250000 2.000000 1.000000 1.000000 0.000000\n"
        b"0 0.125000 0.500000 0.250000 1.000000 0.000000 0.000000 0 0.000000 0.000000 0\n"
        b"1 0.062500 0.187500 0.062500 0.125000 0.000000 0.000000 0 0.000000 0.000000 0\n")
    assert (tmp_path / "out/labels/val/b.txt").read_bytes() == (
        b"0 0.100000 0.200000 0.100000 0.200000 0.000000 0.000000 0 0.000000 0.000000 0\n")
    assert rep.lost["clipped"] == 2 and rep.n_annotations == 4
    assert next(iter(rep.lost)) == "clipped"  # the order the rows meet the losses in


def _many_images(n: int) -> Dataset:
    """``n`` 40x20 images with two boxes each (one crossing the border), keypoints on every other box."""
    rng = np.random.default_rng(0)
    x1 = rng.uniform(-5, 30, 2 * n)
    y1 = rng.uniform(0, 15, 2 * n)
    box = np.column_stack([x1, y1, x1 + rng.uniform(1, 20, 2 * n), y1 + rng.uniform(1, 9, 2 * n)])
    kp = np.full((2 * n, 1, 3), np.nan)
    kp[::2, 0] = np.column_stack([box[::2, 0] + 1, box[::2, 1] + 1, np.full(n, 2.0)])
    ann = Annotations(image=np.repeat(np.arange(n), 2), label=np.arange(2 * n) % 2, box=box, keypoints=kp)
    images = Images(path=np.array([f"im{i:05d}.png" for i in range(n)], object), width=np.full(n, 40),
                    height=np.full(n, 20), split=np.array(["train", "val"] * (n // 2), object))
    schema = LabelSchema(classes=(ClassDef("a", keypoints=("k",)), ClassDef("b", keypoints=("k",))))
    return Dataset(schema=schema, images=images, annotations=ann)


def test_a_large_dataset_is_written_as_its_images_alone_are(tmp_path: Path) -> None:
    """Lines are made a few thousand images at a time: the last images' files are the bytes they get alone."""
    ds = _many_images(4200)
    yolo.write(ds, tmp_path / "all", images=False, task="pose")
    yolo.write(ds.select_images(np.arange(4190, 4200)), tmp_path / "part", images=False, task="pose")
    for i in range(4190, 4200):
        rel = f"labels/{'train' if i % 2 == 0 else 'val'}/im{i:05d}.txt"
        assert (tmp_path / "all" / rel).read_bytes() == (tmp_path / "part" / rel).read_bytes()
        assert (tmp_path / "all" / rel).read_bytes().count(b"\n") == 2


def test_an_empty_dataset_is_written_and_read_back(tmp_path: Path) -> None:
    ds = shapes(4, seed=0)
    empty = ds.select_images(np.zeros(ds.n_images, bool))
    rep = yolo.write(empty, tmp_path / "y")  # raised StopIteration: data.yaml had no split to name
    assert rep.n_images == 0 and any(n.startswith("no images") for n in rep.notes)
    data = (tmp_path / "y" / "data.yaml").read_text()
    assert "train: images/train" in data and "val: images/val" in data
    back, _ = yolo.parse(tmp_path / "y")
    assert back.n_images == 0 and list(back.schema.names) == list(ds.schema.names)


def test_a_folder_named_like_a_label_file_is_not_read(tmp_path: Path) -> None:
    ds = write_shapes(tmp_path / "src", 4, seed=0)
    yolo.write(ds, tmp_path / "y")
    before, _ = yolo.parse(tmp_path / "y")
    (tmp_path / "y" / "labels" / "train" / "odd.txt").mkdir(parents=True)  # raised IsADirectoryError
    back, report = yolo.parse(tmp_path / "y")
    assert back.n_images == before.n_images and back.n_annotations == before.n_annotations > 0
    assert not any("odd" in str(p) for p in back.images.path.tolist()) and not any("odd" in str(i) for i in report)


def test_a_folder_without_class_names_is_named_in_the_finding(tmp_path: Path) -> None:
    yolo.write(write_shapes(tmp_path / "src", 3, seed=0), tmp_path / "y")
    (tmp_path / "y" / "data.yaml").unlink()
    ds, report = yolo.parse(tmp_path / "y")
    (issue,) = [i for i in report if i.type == "yolo_no_class_names"]
    assert issue.file == str(tmp_path / "y")  # was None: "first: : no class names found"
    assert ds.n_annotations > 0 and all(n.isdigit() for n in ds.schema.names)
