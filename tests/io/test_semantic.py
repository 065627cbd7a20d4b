"""Semantic segmentation label maps: golden files, round trips, findings, CamVid."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from maslow import io
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError, MaslowWarning
from maslow.io import semantic
from maslow.sample import shapes
from tests.conftest import shared_path
from tests.helpers import assert_datasets_equal

GOLDEN = Path(__file__).parents[1] / "data" / "semantic"
CAMVID = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
          "Bicyclist", "Unlabelled")


def _maps(folder: Path) -> dict[str, np.ndarray]:
    return {p.relative_to(folder).as_posix(): np.asarray(Image.open(p)) for p in sorted(folder.rglob("*.png"))}


def _layout(tmp_path: Path, maps: dict[str, np.ndarray], sizes: dict[str, tuple[int, int]] | None = None) -> Path:
    (tmp_path / "labels").mkdir()
    (tmp_path / "images").mkdir()
    for name, arr in maps.items():
        Image.fromarray(arr).save(tmp_path / "labels" / name)
        w, h = (sizes or {}).get(name, (arr.shape[1], arr.shape[0]))
        Image.new("RGB", (w, h)).save(tmp_path / "images" / name)
    return tmp_path / "labels"


# -- golden files ----------------------------------------------------------------------------------------------
def test_golden_label_maps() -> None:
    ds, report = semantic.parse(GOLDEN / "labels")
    assert len(report) == 0
    assert ds.root == GOLDEN / "images"
    assert ds.images.path.tolist() == ["seqA_0001.png", "seqA_0002.jpg"]  # matched by stem
    assert ds.images.width.tolist() == [8, 8] and ds.images.height.tolist() == [6, 6]
    assert ds.images.extra["sequence"].tolist() == ["seqA", "seqA"]
    assert ds.images.extra["frame"].tolist() == [1, 2]
    assert ds.schema.names == ("background", "road", "parked car", "ignore")
    assert [c.id for c in ds.schema.classes] == [0, 1, 2, 255]
    assert all(c.kind == "semantic" for c in ds.schema.classes)
    assert ds.schema.task.value == "semantic_segmentation"
    a = ds.annotations
    assert a.image.tolist() == [0, 0, 0, 0, 1, 1]  # one annotation per class present
    assert a.label.tolist() == [0, 1, 2, 3, 0, 2]
    assert M.area(list(a.mask)).tolist() == [17, 20, 7, 4, 33, 15]
    assert np.isnan(a.box).all()
    assert a.iscrowd.tolist() == [False, False, False, True, False, False]  # the ignore region


def test_golden_round_trip_is_pixel_exact(tmp_path: Path) -> None:
    ds, _ = semantic.parse(GOLDEN / "labels")
    report = semantic.write(ds, tmp_path / "labels")
    assert report.lossless and report.n_annotations == 6
    written, original = _maps(tmp_path / "labels"), _maps(GOLDEN / "labels")
    assert written.keys() == original.keys()
    for k, arr in original.items():
        assert written[k].dtype == arr.dtype and np.array_equal(written[k], arr), k
    back, rep = semantic.parse(tmp_path / "labels", images_root=GOLDEN / "images")
    assert len(rep) == 0
    assert back.schema.classes == ds.schema.classes
    assert_datasets_equal(ds, back, fields=("path", "size", "label", "mask", "iscrowd"))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 6)),
                  elements=st.sampled_from([0, 1, 2, 5, 255])))
def test_label_maps_round_trip(tmp_path: Path, arr: np.ndarray) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    labels = _layout(root, {"f_1.png": arr})
    ds = io.read_semantic(labels)
    semantic.write(ds, root / "out")
    assert np.array_equal(np.asarray(Image.open(root / "out" / "f_1.png")), arr)


# -- options ---------------------------------------------------------------------------------------------------
def test_class_sources_and_ignore_index(tmp_path: Path) -> None:
    arr = np.array([[0, 1], [3, 3]], np.uint8)
    labels = _layout(tmp_path, {"a.png": arr})
    ds, _ = semantic.parse(labels)
    assert ds.schema.names == ("class_0", "class_1", "class_3")
    ds, _ = semantic.parse(labels, classes=["sky", "road", "car", "void"], ignore_index=3)
    assert ds.schema.names == ("sky", "road", "car", "void")
    assert ds.annotations.iscrowd.tolist() == [False, False, True]
    ds, _ = semantic.parse(labels, classes={3: "void", 0: "sky", 1: "road"})
    assert [(c.id, c.name) for c in ds.schema.classes] == [(3, "void"), (0, "sky"), (1, "road")]
    (labels / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nsky:0,0,0::\nroad:9,9,9::\n")
    ds, report = semantic.parse(labels)
    assert ds.schema.names == ("sky", "road", "class_3")
    assert report.counts() == {"unknown_label": 1}
    issue = report.issues[0]
    assert issue.severity == "error" and "label value 3" in issue.message and "2 pixels in 1 images" in issue.message


def test_colour_maps_need_a_palette(tmp_path: Path) -> None:
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, :] = (128, 64, 128)
    rgb[1, 2] = (1, 2, 3)
    labels = _layout(tmp_path, {"c.png": rgb})
    with pytest.raises(FormatError, match=r"c\.png.*single-channel.*palette"):
        semantic.parse(labels)
    ds, report = semantic.parse(labels, palette={(128, 64, 128): 3, (0, 0, 0): 0})
    assert report.counts() == {"unknown_colour": 1}
    assert "(1, 2, 3)" in report.issues[0].message and "1 pixels" in report.issues[0].message
    assert [c.id for c in ds.schema.classes] == [0, 3]
    assert M.area(list(ds.annotations.mask)).tolist() == [2, 3]
    (labels / "labelmap.txt").write_text("background:0,0,0::\nroad:128,64,128::\nthing:1,2,3::\n")
    ds, report = semantic.parse(labels)  # the CVAT labelmap also gives the palette
    assert len(report) == 0 and ds.schema.names == ("background", "road", "thing")


# -- findings and bad input ------------------------------------------------------------------------------------
def test_planted_findings(tmp_path: Path) -> None:
    labels = _layout(tmp_path, {"a.png": np.zeros((4, 5), np.uint8), "b.png": np.full((4, 5), 7, np.uint8)},
                     sizes={"a.png": (6, 4)})
    (labels / "orphan.png").write_bytes((labels / "a.png").read_bytes())
    ds, report = semantic.parse(labels, classes=["bg"])
    assert report.counts() == {"size_mismatch": 1, "missing_image": 1, "unknown_label": 1}
    assert report.n_errors == 3
    mismatch = report.of_type("size_mismatch")[0]
    assert "6x4" in mismatch.message and "5x4" in mismatch.message and mismatch.record == "a.png"
    assert ds.n_images == 3 and ds.images.path.tolist() == ["a.png", "b.png", "orphan.png"]
    assert ds.schema.names == ("bg", "class_7")
    with pytest.warns(MaslowWarning, match="import issues"):
        io.read_semantic(labels, classes=["bg"])
    with pytest.raises(FormatError, match="strict mode"):
        semantic.parse(labels, classes=["bg"], strict=True)


def test_bad_input_raises(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="folder of PNG"):
        semantic.parse(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no PNG"):
        semantic.parse(tmp_path / "empty")
    labels = _layout(tmp_path, {"a.png": np.zeros((40, 50), np.uint8)})
    data = (labels / "a.png").read_bytes()
    (labels / "a.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"a\.png"):
        semantic.parse(labels)
    bad = tmp_path / "classes.txt"
    bad.write_text("road:1,2::\n")
    with pytest.raises(FormatError, match=r"line 1.*'r,g,b'"):
        semantic.parse(labels, classes=bad)
    bad.write_text("0 road\n1 car\n2 road\n")  # used to fail with "schema.classes[2]: ..." and no file
    with pytest.raises(FormatError, match=r"classes\.txt, line 3: class name must be unique, got 'road' again"):
        semantic.parse(labels, classes=bad)
    bad.write_text("0 road\n1 car\n1 bus\n")  # used to keep 'bus' and drop 'car' silently
    with pytest.raises(FormatError, match=r"classes\.txt, line 3: class id must be unique, got 1 again"):
        semantic.parse(labels, classes=bad)


# -- writing instance annotations -----------------------------------------------------------------------------
def test_write_rasterises_objects(shapes_ds: Dataset, tmp_path: Path) -> None:
    ds = shapes_ds.select_images(np.arange(6))
    report = semantic.write(ds, tmp_path / "maps")
    assert report.lost.get("box", 0) == 0 and report.n_annotations == ds.n_annotations
    maps = _maps(tmp_path / "maps" / "images")
    assert len(maps) == 6
    lines = (tmp_path / "maps" / "classes.txt").read_text().splitlines()
    # ClassDef.id is the pixel value; 0, no class, fills the uncovered pixels and is declared so
    assert lines == ["# background 0", "1 circle", "2 square", "3 triangle"]
    a = ds.annotations
    for i in range(ds.n_images):
        got = maps[Path(str(ds.images.path[i])).name]
        want = np.zeros((ds.images.height[i], ds.images.width[i]), np.uint8)
        for r in np.flatnonzero(a.image == i):
            want[M.decode(a.mask[r])] = ds.schema.classes[a.label[r]].id
        assert np.array_equal(got, want)


def test_write_options_and_losses(tmp_path: Path) -> None:
    full = np.ones((3, 4), bool)
    left = np.zeros((3, 4), bool)
    left[:, :2] = True
    ds = Dataset(
        schema=LabelSchema(classes=(ClassDef("a", id=300), ClassDef("b"), ClassDef("void"))),
        images=Images(path=obj_array(["x.jpg", "y.jpg"]), width=np.array([4, 4]), height=np.array([3, 3])),
        annotations=Annotations(image=np.array([0, 0, 1, 1]), label=np.array([0, 1, 1, 0]),
                                mask=obj_array([M.encode(full), M.encode(left), None, None]),
                                box=np.array([[np.nan] * 4, [np.nan] * 4, [0, 0, 1, 1], [np.nan] * 4]),
                                score=np.array([np.nan, 0.5, np.nan, np.nan])),
    )
    report = semantic.write(ds, tmp_path / "o")
    assert report.lost == {"overlap_pixels": 6, "box": 1, "tag": 1, "score": 1}
    x, y = np.asarray(Image.open(tmp_path / "o" / "x.png")), np.asarray(Image.open(tmp_path / "o" / "y.png"))
    assert x.dtype == np.uint16  # an id >= 256
    assert x[:, :2].tolist() == [[0, 0]] * 3 and (x[:, 2:] == 300).all()  # later class wins; b gets id 0
    assert (y == 1).all()  # uncovered: the id of the class named void
    semantic.write(ds, tmp_path / "o", background_index=7)
    assert (np.asarray(Image.open(tmp_path / "o" / "y.png")) == 7).all()


def test_uncovered_pixels_read_back_as_no_class(tmp_path: Path) -> None:
    # objects written as label maps and read back: the background was an unknown value (an error and a class_0
    # annotation on every image), and classes without ids took 0, so uncovered pixels became the first class
    boxes = np.array([[0, 0, 2, 2], [3, 1, 5, 3], [1, 1, 4, 4]])
    rects = []
    for x1, y1, x2, y2 in boxes.tolist():
        r = np.zeros((4, 6), bool)
        r[y1:y2, x1:x2] = True
        rects.append(M.encode(r))
    truth = Dataset(
        schema=LabelSchema.from_names(["cell", "dot"]),
        images=Images(path=obj_array(["images/a.png", "images/b.png"]), width=np.array([6, 6]),
                      height=np.array([4, 4])),
        annotations=Annotations(image=np.array([0, 0, 1]), label=np.array([0, 1, 1]), mask=obj_array(rects),
                                box=boxes.astype(np.float64)),
    )
    semantic.write(truth, tmp_path / "labels")
    (tmp_path / "images").mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (6, 4)).save(tmp_path / "images" / f"{name}.png")
    back, report = semantic.parse(tmp_path / "labels", images_root=tmp_path)
    assert len(report) == 0
    assert back.schema.names == ("cell", "dot")
    a = back.annotations
    assert a.mask is not None and len(a) == 3
    for r, t in zip(range(3), range(3), strict=True):  # one annotation per class and image, in the same order
        want = np.zeros((4, 6), bool)
        x1, y1, x2, y2 = truth.annotations.box[t].astype(int)  # type: ignore[union-attr]
        want[y1:y2, x1:x2] = True
        assert (back.schema.names[a.label[r]], a.image[r]) == (truth.schema.names[truth.annotations.label[t]],
                                                               truth.annotations.image[t])
        assert np.array_equal(M.decode(a.mask[r]), want)
    # a reader told otherwise keeps the background as a value of its own
    _, told = semantic.parse(tmp_path / "labels", images_root=tmp_path, classes=["x", "cell", "dot"])
    assert len(told) == 0


# -- real data -------------------------------------------------------------------------------------------------
@pytest.mark.shared
def test_camvid_imports_and_reexports_identical_maps(tmp_path: Path) -> None:
    base = shared_path("camvid_val")
    ds, report = semantic.parse(base / "annotations", classes=list(CAMVID), ignore_index=11)
    assert len(report) == 0
    assert (ds.n_images, ds.n_annotations) == (101, 101 * 12)  # every class, void included, in every frame
    assert ds.schema.names == CAMVID and ds.root == base / "images"
    assert np.bincount(ds.annotations.label).tolist() == [101] * 12
    assert int(ds.annotations.iscrowd.sum()) == 101  # Unlabelled is the ignore class
    assert set(ds.images.extra["sequence"].tolist()) == {"0016E5"}
    assert ds.images.extra["frame"].tolist() == list(range(7959, 8160, 2))
    assert (ds.images.width == 480).all() and (ds.images.height == 360).all()
    few = ds.select_images(np.arange(5))
    out = tmp_path / "annotations"
    assert semantic.write(few, out).lossless
    for p in few.images.path.tolist():
        assert (out / p).read_bytes() == (base / "annotations" / p).read_bytes(), p
    back, _ = semantic.parse(out, images_root=base / "images")
    assert back.schema.names == CAMVID
    assert back.annotations.iscrowd.tolist() == few.annotations.iscrowd.tolist()  # "# ignore 11" in classes.txt


# -- found by fuzzing ------------------------------------------------------------------------------------------
def test_unknown_values_name_the_first_label_map(tmp_path: Path) -> None:
    """The finding named only the labels folder."""
    labels = _layout(tmp_path, {"a.png": np.zeros((2, 2), np.uint8), "b.png": np.full((2, 2), 7, np.uint8)})
    (labels / "c d").mkdir()
    Image.fromarray(np.full((2, 2), 7, np.uint8)).save(labels / "c d" / "e.png")
    _, report = semantic.parse(labels, classes=["bg"])
    issue = report.of_type("unknown_label")[0]
    assert issue.file == str(labels / "b.png") and issue.record == "b.png" and issue.image == 1
    assert "label value 7" in issue.message and "8 pixels in 2 images (first in b.png)" in issue.message


@pytest.mark.parametrize("mode", ["L", "I;16", "P"])
def test_unicode_and_space_class_names_round_trip(tmp_path: Path, mode: str) -> None:
    rng = np.random.default_rng(1)
    ids = [0, 3, 254, 255] if mode != "I;16" else [0, 3, 300, 1000]
    arr = rng.choice(ids, (5, 7))
    (tmp_path / "labels" / "sub dir").mkdir(parents=True)
    (tmp_path / "images" / "sub dir").mkdir(parents=True)
    if mode == "P":
        im = Image.new("P", (7, 5))
        im.putdata(arr.ravel().tolist())
        im.putpalette(rng.integers(0, 256, 768).tolist())
    else:
        im = Image.fromarray(arr.astype(np.uint16 if mode == "I;16" else np.uint8))
    im.save(tmp_path / "labels" / "sub dir" / "ü x.png")
    Image.new("RGB", (7, 5)).save(tmp_path / "images" / "sub dir" / "ü x.jpg")
    names = ["big dog", "Ünïcödé  two", "漢字", "12 monkeys"]
    (tmp_path / "labels" / "classes.txt").write_text("".join(f"{v} {n}\n" for v, n in zip(ids, names, strict=True)),
                                                       encoding="utf-8")
    ds, report = semantic.parse(tmp_path / "labels")
    assert len(report) == 0 and ds.schema.names == tuple(names)
    assert ds.annotations.iscrowd.tolist() == [v == 255 for v in ids if (arr == v).any()]
    rep = semantic.write(ds, tmp_path / "out")
    assert rep.lossless
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "sub dir" / "ü x.png")), arr)
    back, report = semantic.parse(tmp_path / "out", images_root=tmp_path / "images")
    assert len(report) == 0 and back.schema == ds.schema


def test_class_names_that_classes_txt_cannot_hold_are_counted(tmp_path: Path) -> None:
    """'#hash', 'x:y', 'pad ' and a line break used to be written as they are: read back as another name, a
    colour error or an unknown label."""
    names = ["ok", "#hash", "x:1,2,3", "pad ", "two\nlines", "x y"]
    ds = Dataset(schema=LabelSchema(classes=tuple(ClassDef(n, id=k) for k, n in enumerate(names))),
                 images=Images(path=["a.png"], width=[6], height=[1]),
                 annotations=Annotations(image=[0] * 6, label=range(6), mask=obj_array(
                     [M.encode(np.eye(6, dtype=bool)[k:k + 1]) for k in range(6)])))
    rep = semantic.write(ds, tmp_path / "out")
    assert rep.lost["class_names"] == 4 and "'#hash'" in rep.notes[0]
    back, report = semantic.parse(tmp_path / "out", images_root=tmp_path / "out")
    assert back.schema.names == ("ok", "hash", "x 1,2,3", "pad", "two lines", "x y") and len(report) == 0


def test_ids_a_png_cannot_hold(tmp_path: Path) -> None:
    """A class id >= 65536 or a background outside 0..65535 raised OverflowError."""
    ds = Dataset(schema=LabelSchema(classes=(ClassDef("a", id=70000), ClassDef("b", id=3))),
                 images=Images(path=["x.jpg"], width=[3], height=[2]),
                 annotations=Annotations(image=[0], label=[0], mask=obj_array([M.encode(np.eye(2, 3, dtype=bool))])))
    rep = semantic.write(ds, tmp_path / "out", background_index=9)  # 'a' takes the smallest free id
    assert (tmp_path / "out" / "classes.txt").read_text() == "# background 9\n0 a\n3 b\n"
    assert np.asarray(Image.open(tmp_path / "out" / "x.png")).tolist() == [[0, 9, 9], [9, 0, 9]]
    assert dict(rep.lost) == {"class_id": 1} and "'a' 70000 -> 0" in rep.notes[0]  # read back as 0
    for bg in (-1, 70000):
        with pytest.raises(FormatError, match=rf"label map values must be 0..65535.*got background_index {bg}"):
            semantic.write(ds, tmp_path / "bad", background_index=bg)
    assert not (tmp_path / "bad").exists()


def test_instances_written_as_label_maps_count_every_loss(tmp_path: Path) -> None:
    # the shapes sample has instances, keypoints, crowd regions and extra columns; a label map keeps none of them
    ds = shapes(12, seed=3)
    rep = semantic.write(ds, tmp_path / "m")
    back = semantic.read_semantic(tmp_path / "m", images_root=tmp_path)
    a = ds.annotations
    painted = ~(a.polygon.null & np.asarray([m is None for m in a.mask.tolist()]))
    pairs = {(int(i), int(c)) for i, c in zip(a.image[painted], a.label[painted], strict=True)}
    assert rep.n_annotations == int(painted.sum())
    assert rep.lost["instances"] == rep.n_annotations - len(pairs) == rep.n_annotations - back.n_annotations > 0
    assert rep.lost["keypoints"] == int((~np.isnan(a.keypoints).all(axis=(1, 2))).sum()) > 0
    assert rep.lost["iscrowd"] == int(a.iscrowd.sum()) > 0
    assert rep.lost["images.extra"] > 0
    assert any(n.startswith(f"{rep.lost['instances']} annotations merged") for n in rep.notes)


def test_an_ignore_class_other_than_255_is_declared_and_read_back(tmp_path: Path) -> None:
    full = np.ones((3, 4), bool)
    left = np.zeros((3, 4), bool)
    left[:, :2] = True
    ds = Dataset(
        schema=LabelSchema(classes=(ClassDef("road", id=0), ClassDef("unlabelled", id=11)),
                           tasks=(Task.SEMANTIC_SEGMENTATION,)),
        images=Images(path=obj_array(["a.jpg"]), width=np.array([4]), height=np.array([3])),
        annotations=Annotations(image=np.array([0, 0]), label=np.array([0, 1]),
                                mask=obj_array([M.encode(full & ~left), M.encode(left)]),
                                box=np.full((2, 4), np.nan), iscrowd=np.array([False, True])),
    )
    rep = semantic.write(ds, tmp_path / "m")
    assert rep.lossless, rep.lost
    assert "# ignore 11" in (tmp_path / "m" / "classes.txt").read_text().splitlines()
    back, _ = semantic.parse(tmp_path / "m", images_root=tmp_path)
    assert back.annotations.iscrowd.tolist() == [False, True] and list(back.schema.names) == ["road", "unlabelled"]
    # a crowd flag on a class that also has ordinary regions can't be said by one ignore value: counted
    both = Dataset(schema=ds.schema, images=ds.images, annotations=Annotations(
        image=np.array([0, 0]), label=np.array([0, 0]), mask=obj_array([M.encode(full & ~left), M.encode(left)]),
        box=np.full((2, 4), np.nan), iscrowd=np.array([False, True])))
    assert semantic.write(both, tmp_path / "m2").lost["iscrowd"] == 1
