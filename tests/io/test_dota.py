"""DOTA: ground truth (``labelTxt/<stem>.txt``: ``x1 y1 ... x4 y4 category difficult``, header lines ``imagesource:``
and ``gsd:``) and Task1/Task2 results (``Task1_<class>.txt``: ``<stem> <score> x1 y1 ... x4 y4``), read and written.

Sources (public): DOTA_devkit ``dota_utils.py`` (``parse_dota_poly``: fields split on spaces, a line of fewer
than 9 fields skipped, ``difficult`` 0 when absent), ``dota_evaluation_task1.py`` (``Task1_{classname}.txt``,
``image_id confidence x1 ... y4``), ``ResultMerge``; mmrotate's ``DOTADataset``; Ultralytics'
``convert_dota_to_yolo_obb``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io import dota, dota_results, yolo
from maslow.metrics import coco_map
from maslow.sample import oriented, oriented_predictions
from tests.helpers import run_cli

OBB = Path(__file__).parents[1] / "data" / "yolo" / "obb"

#: DOTA 1.0 as DOTA ships it: header lines, integer corners, difficult 0/1; a turned ship; a car touching the
#: left and bottom borders (the image is 64 x 48); P0002 has no objects.
GOLDEN = {
    "P0001": "imagesource:GoogleEarth\ngsd:0.146343590398\n10 5 30 5 30 15 10 15 plane 0\n"
             "40 20 60 28 56 38 36 30 ship 1\n0 30 12 30 12 48 0 48 small-vehicle 0\n",
    "P0002": "imagesource:GoogleEarth\ngsd:null\n",
}


def _root(tmp_path: Path, labels: dict[str, str], images: list[str] | None = None, *, name: str = "dota") -> Path:
    root = tmp_path / name
    (root / "labelTxt").mkdir(parents=True)
    (root / "images").mkdir()
    for stem, text in labels.items():
        (root / "labelTxt" / f"{stem}.txt").write_text(text)
    for stem in labels if images is None else images:
        Image.new("L", (64, 48)).save(root / "images" / f"{stem}.png")
    return root


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and not p.is_symlink()}


def _corners(ds: Dataset) -> np.ndarray:
    assert ds.annotations.polygon is not None
    return np.array([np.asarray(r[0]) for r in ds.annotations.polygon.tolist()]).reshape(-1, 4, 2)


# -- ground truth ------------------------------------------------------------------------------------------
def test_golden_file_reads_corners_difficult_and_headers(tmp_path: Path) -> None:
    ds, report = dota.parse(_root(tmp_path, GOLDEN))
    assert len(report) == 0
    assert ds.schema.names == ("plane", "ship", "small-vehicle")  # in order of first use
    assert ds.images.path.tolist() == ["images/P0001.png", "images/P0002.png"]
    assert ds.images.width.tolist() == [64, 64] and ds.images.height.tolist() == [48, 48]
    np.testing.assert_array_equal(_corners(ds)[1], [[40, 20], [60, 28], [56, 38], [36, 30]])  # as written, in order
    np.testing.assert_array_equal(ds.annotations.box, [[10, 5, 30, 15], [36, 20, 60, 38], [0, 30, 12, 48]])
    assert ds.annotations.attributes["difficult"].tolist() == [False, True, False]
    assert ds.schema.attribute("difficult").type == "bool"
    assert ds.images.extra["dota_imagesource"].tolist() == ["GoogleEarth", "GoogleEarth"]
    assert ds.images.extra["dota_gsd"].tolist() == ["0.146343590398", "null"]
    assert "dota" not in ds.info  # integers: no decimals to keep


def test_golden_file_writes_back_the_same_bytes(tmp_path: Path) -> None:
    root = _root(tmp_path, GOLDEN)
    ds, _ = dota.parse(root)
    rep = dota.write(ds, tmp_path / "out", copy_images=True)
    assert rep.lossless and rep.n_annotations == 3 and rep.n_images == 2, rep.to_dict()
    for stem, text in GOLDEN.items():
        assert (tmp_path / f"out/labelTxt/{stem}.txt").read_text() == text
    assert (tmp_path / "out/classes.txt").read_text() == "plane\nship\nsmall-vehicle\n"
    assert (tmp_path / "out/images/P0001.png").read_bytes() == (root / "images/P0001.png").read_bytes()
    back, report = dota.parse(tmp_path / "out")
    assert len(report) == 0 and back.schema.names == ds.schema.names
    np.testing.assert_array_equal(_corners(back), _corners(ds))
    assert back.annotations.attributes["difficult"].tolist() == [False, True, False]


def test_dota_1_5_floats_difficult_levels_and_lines_without_difficult_come_back_as_printed(tmp_path: Path) -> None:
    text = ("1054.0 1028.0 1063.0 1032.0 1059.0 1050.0 1051.0 1042.5 large-vehicle 0\n"
            "2.0 3.0 9.0 3.0 9.0 7.0 2.0 7.0 plane\n"  # no difficult: DOTA_devkit reads 0
            "12.0 3.0 19.0 3.0 19.0 7.0 12.0 7.0 plane 2\n")  # a level beyond 0/1
    ds, report = dota.parse(_root(tmp_path, {"P0100": text}))
    assert len(report) == 0 and "dota_imagesource" not in ds.images.extra  # 1.5 files have no header
    assert ds.annotations.attributes["difficult"].tolist() == [0, None, 2]
    assert ds.schema.attribute("difficult").type == "number"
    assert ds.info["dota"] == {"decimals": 1}
    dota.write(ds, tmp_path / "out", images=False)
    assert (tmp_path / "out/labelTxt/P0100.txt").read_text() == text


def test_long_decimals_and_exponents_come_back_as_the_same_floats(tmp_path: Path) -> None:
    text = ("35.179500000000004 10.66985 69.8205 30.669849999999997 64.82050000000001 39.33015 1.5e-05 19.33015 "
            "plane 0\n")  # YOLO's normalised corners times the image size, as a conversion prints them
    ds, _ = dota.parse(_root(tmp_path, {"P0001": text}))
    assert "dota" not in ds.info  # no fixed number of decimals would give every value back
    dota.write(ds, tmp_path / "out", images=False)
    assert (tmp_path / "out/labelTxt/P0001.txt").read_text() == text
    back, _ = dota.parse(tmp_path / "out", images_root=tmp_path / "dota/images")
    np.testing.assert_array_equal(_corners(back), _corners(ds))


def test_sample_round_trip_is_exact_and_keeps_splits(tmp_path: Path) -> None:
    truth = oriented(6, size=160, seed=3)
    split = obj_array(["train", "train", "val", "val", "", ""])
    truth = truth.replace(images=Images(path=truth.images.path, width=truth.images.width,
                                        height=truth.images.height, split=split))
    rep = dota.write(truth, tmp_path / "out", images=False)
    assert dict(rep.lost) == {"class_id": 3}  # DOTA has no class ids; the order is kept in classes.txt
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").glob("**/labelTxt")) == [
        "labelTxt", "train/labelTxt", "val/labelTxt"]
    back, report = dota.parse(tmp_path / "out")
    assert {i.type for i in report} == {"missing_image"}  # images=False: the label files only
    assert back.schema.names == truth.schema.names
    by_stem = {Path(p).stem: i for i, p in enumerate(back.images.path.tolist())}
    order = [by_stem[Path(p).stem] for p in truth.images.path.tolist()]
    assert back.images.split[order].tolist() == split.tolist()
    assert back.images.path[order[2]] == "val/images/tile_0002.png"
    moved = back.select_images(np.asarray(order))
    np.testing.assert_array_equal(_corners(moved), _corners(truth))  # shortest repr: every float exact
    np.testing.assert_array_equal(moved.annotations.box, truth.annotations.box)
    np.testing.assert_array_equal(moved.annotations.label, truth.annotations.label)


def test_dota_as_shipped_split_folders_a_label_folder_or_one_file(tmp_path: Path) -> None:
    for split in ("train", "val"):
        _root(tmp_path / "DOTA", {f"{split}1": "1 1 5 1 5 5 1 5 plane 0\n"}, name=split)
    (tmp_path / "DOTA/test/images").mkdir(parents=True)  # DOTA's test split: images only
    ds, report = dota.parse(tmp_path / "DOTA")
    assert ds.images.path.tolist() == ["train/images/train1.png", "val/images/val1.png"]
    assert ds.images.split.tolist() == ["train", "val"] and ds.root == tmp_path / "DOTA"
    assert [(i.type, i.severity) for i in report] == [("dota_no_labels", "info")]
    for src in (tmp_path / "DOTA/train/labelTxt", tmp_path / "DOTA/train/labelTxt/train1.txt"):
        one, report = dota.parse(src)
        assert len(report) == 0 and one.root == tmp_path / "DOTA/train"
        assert one.images.path.tolist() == ["images/train1.png"] and one.images.width.tolist() == [64]
    with pytest.raises(FormatError, match="must hold labelTxt/"):
        dota.parse(tmp_path / "DOTA/test")


def test_images_found_under_images_root_by_stem(tmp_path: Path) -> None:
    root = _root(tmp_path, GOLDEN, images=[])
    pics = tmp_path / "pics" / "sub"
    pics.mkdir(parents=True)
    for stem in ("P0001", "P0002", "P0003"):
        Image.new("L", (64, 48)).save(pics / f"{stem}.jpg")
    ds, report = dota.parse(root, images_root=tmp_path / "pics")
    assert ds.root == tmp_path / "pics"
    assert ds.images.path.tolist() == ["sub/P0001.jpg", "sub/P0002.jpg", "sub/P0003.jpg"]
    assert ds.images.width.tolist() == [64, 64, 64]
    assert [(i.type, i.image) for i in report] == [("dota_missing_label", 2)]  # P0003 has no label file


def test_missing_label_file_and_missing_image_are_findings(tmp_path: Path) -> None:
    root = _root(tmp_path, {"P0001": GOLDEN["P0001"]}, images=["P0001", "P0009"])
    (root / "labelTxt/P0005.txt").write_text("1 1 5 1 5 5 1 5 plane 0\n")
    ds, report = dota.parse(root)
    found = {(i.type, i.image) for i in report}
    assert found == {("missing_image", 1), ("dota_missing_label", 2)}
    assert ds.images.path.tolist() == ["images/P0001.png", "images/P0005.png", "images/P0009.png"]
    assert ds.images.width.tolist() == [64, 0, 64]  # the missing image's size is unknown
    assert ds.n_annotations == 4  # the objects of the label file without an image are kept
    imp = io.import_dataset(root, "dota")  # the file check does not report the missing image twice
    assert sum(i.type == "missing_image" for i in imp.report) == 1
    with pytest.raises(FormatError, match=r"P0005\.txt.*label file has no image"):
        dota.parse(root, strict=True)


@pytest.mark.parametrize(("line", "match", "field"), [
    pytest.param("1 2 3 4 5 6 7 8\n", "line 3: line must have 9 or 10 fields .* got 8", None, id="8-fields"),
    pytest.param("1 2 3 4 5 6 7 8 plane 0 extra\n", "got 11", None, id="11-fields"),
    pytest.param("1 2 3 4 five 6 7 8 plane 0\n", "line 3, field 'x3': x3 must be a number, got 'five'", "x3",
                 id="not-a-number"),
    pytest.param("1 2 3 4 5 6 7 nan plane 0\n", "field 'y4': y4 must be a finite number", "y4", id="nan"),
    pytest.param("1 2 3 4 5 6 7 8 plane hard\n", "field 'difficult': difficult must be 0 or 1", "difficult",
                 id="difficult"),
])
def test_bad_lines_raise_naming_file_line_and_field(tmp_path: Path, line: str, match: str, field: str | None) -> None:
    root = _root(tmp_path, {"P0001": "imagesource:GoogleEarth\n1 1 5 1 5 5 1 5 plane 0\n" + line})
    with pytest.raises(FormatError, match=match) as err:
        dota.parse(root)
    assert err.value.path == str(root / "labelTxt/P0001.txt") and err.value.record == "line 3"
    assert err.value.field == field


def test_given_classes_order_the_schema_and_report_the_others(tmp_path: Path) -> None:
    ds, report = dota.parse(_root(tmp_path, GOLDEN), classes=["ship", "plane"])
    assert ds.schema.names == ("ship", "plane") and ds.n_annotations == 2
    (bad,) = report.issues
    assert bad.type == "dota_unknown_class" and bad.record == "line 5" and "small-vehicle" in bad.message


def test_writer_turns_other_geometry_into_corners_and_counts_the_loss(tmp_path: Path) -> None:
    from maslow.core import masks as M

    mask = np.zeros((48, 64), bool)
    mask[10:20, 30:50] = True
    ds = Dataset(
        schema=LabelSchema(classes=(ClassDef("traffic light"), ClassDef("car"))),
        images=Images(path=obj_array(["a.png"]), width=np.array([64]), height=np.array([48])),
        annotations=Annotations(
            image=np.zeros(5, np.int64), label=np.array([0, 1, 1, 1, 1]),
            box=[[2, 3, 12, 9], [0, 0, 10, 10], [30, 10, 50, 20], [20, 20, 40, 30], [np.nan] * 4],
            polygon=[None, [[0, 0, 10, 0, 10, 10, 5, 12, 0, 10]], None, None, None],
            mask=obj_array([None, None, M.encode(mask), None, None]),
            score=np.array([0.9, np.nan, np.nan, np.nan, np.nan]),
            extra={"cvat_rotation": obj_array([None, None, None, 90.0, None])}))
    rep = dota.write(ds, tmp_path / "out", images=False)
    lines = (tmp_path / "out/labelTxt/a.txt").read_text().splitlines()
    assert lines[0] == "2 3 12 3 12 9 2 9 traffic_light 0"  # a box: its corners; no difficult attribute: 0
    assert len(lines) == 4  # the last annotation has no geometry
    turned = np.array([float(v) for v in lines[3].split()[:8]]).reshape(4, 2)
    # CVAT's 90 degrees about the centre
    np.testing.assert_allclose(turned, [[35, 15], [35, 35], [25, 35], [25, 15]], atol=1e-9)
    for key in ("polygon", "mask", "score", "class_names", "annotations"):
        assert rep.lost[key] >= 1, (key, dict(rep.lost))
    assert rep.lost["annotations"] == 1 and rep.n_annotations == 4


# -- results -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("dota-results")
    truth = oriented(8, size=160, seed=5)
    for p in truth.images.path.tolist():
        (d / "src" / p).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (160, 160)).save(d / "src" / p)
    truth = truth.replace(root=d / "src")
    dota.write(truth, d / "gt")
    pred = oriented_predictions(truth, seed=5)
    dota_results.write(pred, d / "res")
    return {"dir": d, "truth": truth, "pred": pred, "gt": d / "gt", "res": d / "res"}


def test_results_round_trip_exact_on_the_truth_images(pair: dict[str, Any]) -> None:
    truth, report = dota.parse(pair["gt"])
    assert len(report) == 0 and truth.images.width.tolist() == [160] * 8  # sizes from the linked images
    assert sorted(p.name for p in pair["res"].iterdir()) == ["Task1_plane.txt", "Task1_ship.txt", "Task1_vehicle.txt"]
    line = (pair["res"] / "Task1_ship.txt").read_text().splitlines()[0].split()
    assert len(line) == 10 and line[0].startswith("tile_")  # <image stem> <score> x1 y1 ... y4
    pred, report = dota_results.parse(pair["res"], like=truth)
    assert len(report) == 0
    assert pred.images is truth.images and pred.schema is truth.schema and pred.root == truth.root
    assert set(pred.annotations.source.tolist()) == {"model"}
    want = pair["pred"]
    a, b = (np.lexsort((ds.annotations.score, ds.annotations.image)) for ds in (pred, want))
    np.testing.assert_array_equal(pred.annotations.score[a], want.annotations.score[b])
    np.testing.assert_array_equal(_corners(pred)[a], _corners(want)[b])
    np.testing.assert_array_equal(pred.annotations.label[a], want.annotations.label[b])
    expected = coco_map(pair["truth"], want, iou_type="obb")
    assert coco_map(truth, pred, iou_type="obb").map_50_95 == expected.map_50_95


def test_task2_results_hold_the_boxes(pair: dict[str, Any], tmp_path: Path) -> None:
    rep = dota_results.write(pair["pred"], tmp_path / "t2", task=2, decimals=3)
    assert rep.lost["polygon"] == pair["pred"].n_annotations
    assert sorted(p.name for p in (tmp_path / "t2").iterdir())[0] == "Task2_plane.txt"
    pred, report = dota_results.parse(tmp_path / "t2", like=pair["truth"])
    assert len(report) == 0 and pred.annotations.polygon is None
    np.testing.assert_allclose(np.sort(pred.annotations.box, 0), np.sort(pair["pred"].annotations.box, 0),
                               atol=5e-4)
    (tmp_path / "t2/Task2_ship.txt").write_text("tile_0001 0.5 9 2 3 8\n")  # xmin > xmax
    pred, report = dota_results.parse(tmp_path / "t2", like=pair["truth"])
    assert [(i.type, i.record) for i in report] == [("dota_inverted_box", "line 1")]
    assert [3, 2, 9, 8] in pred.annotations.box.tolist()


def test_predictions_on_unknown_images_or_classes_are_reported_not_silently_dropped(pair: dict[str, Any],
                                                                                    tmp_path: Path) -> None:
    res = tmp_path / "res"
    shutil.copytree(pair["res"], res)
    first = len((res / "Task1_plane.txt").read_text().splitlines()) + 1
    with open(res / "Task1_plane.txt", "a") as f:
        f.write("P9999 0.5 1 1 5 1 5 5 1 5\nP9999 0.4 1 1 5 1 5 5 1 5\n")
    (res / "Task1_tank.txt").write_text("tile_0000 0.5 1 1 5 1 5 5 1 5\n")
    pred, report = dota_results.parse(res, like=pair["truth"])
    by_type = {i.type: i for i in report}
    assert set(by_type) == {"dota_unknown_image", "dota_unknown_class"}
    unknown = by_type["dota_unknown_image"]
    assert "2 predictions" in unknown.message and "'P9999'" in unknown.message and unknown.record == f"line {first}"
    assert by_type["dota_unknown_class"].file == str(res / "Task1_tank.txt")
    assert pred.n_annotations == pair["pred"].n_annotations
    with pytest.raises(FormatError, match="P9999"):
        dota_results.parse(res, like=pair["truth"], strict=True)


@pytest.mark.parametrize(("line", "match"), [
    pytest.param("tile_0000 0.5 1 1 5 1 5 5 1\n", "line 2: line must have 10 fields .* got 9", id="9-fields"),
    pytest.param("tile_0000 high 1 1 5 1 5 5 1 5\n", "line 2, field 'score': score must be a number", id="score"),
    pytest.param("tile_0000 0.5 1 1 5 1 5 x 1 5\n", "field 'y3': y3 must be a number, got 'x'", id="coordinate"),
])
def test_bad_result_lines_raise_naming_file_line_and_field(tmp_path: Path, line: str, match: str) -> None:
    (tmp_path / "Task1_plane.txt").write_text("tile_0000 0.9 1 1 5 1 5 5 1 5\n" + line)
    with pytest.raises(FormatError, match=match):
        dota_results.parse(tmp_path)


def test_without_a_truth_images_are_named_by_stem_and_classes_by_file(pair: dict[str, Any]) -> None:
    pred, report = dota_results.parse(pair["res"])
    assert len(report) == 0 and pred.root is None
    with_preds = sorted({Path(pair["pred"].images.path[i]).name for i in pair["pred"].annotations.image.tolist()})
    assert pred.images.path.tolist() == with_preds  # the images the files name: those with predictions
    assert pred.schema.names == ("plane", "ship", "vehicle") and pred.n_annotations == pair["pred"].n_annotations
    jpg, _ = dota_results.parse(pair["res"], image_suffix=".jpg")
    assert jpg.images.path[0] == "tile_0000.jpg"
    found, _ = dota_results.parse(pair["res"], images_root=pair["dir"] / "src")
    assert found.images.path[0] == "images/tile_0000.png" and found.images.width[0] == 160


def test_class_names_with_spaces_match_the_truth_through_their_file_names(tmp_path: Path) -> None:
    truth = oriented(3, size=160, seed=1)
    truth = truth.replace(schema=truth.schema.with_classes(ClassDef(n) for n in ("air plane", "ship", "small car")))
    pred = oriented_predictions(truth, seed=1)
    rep = dota_results.write(pred, tmp_path / "res")
    assert rep.lost["class_names"] == 2 and (tmp_path / "res/Task1_air_plane.txt").is_file()
    back, report = dota_results.parse(tmp_path / "res", like=truth)
    assert len(report) == 0
    assert sorted(back.annotations.label.tolist()) == sorted(pred.annotations.label.tolist())


# -- other formats and the shells ----------------------------------------------------------------------------
def test_yolo_obb_to_dota_to_yolo_obb_keeps_the_corners(tmp_path: Path) -> None:
    ds, _ = yolo.parse(OBB, task="obb")
    rep = io.write(ds, tmp_path / "dota", "dota")
    assert rep.n_annotations == ds.n_annotations and not rep.lost.get("polygon")
    back = io.read(tmp_path / "dota", "dota")
    assert back.images.split.tolist() == ["train", "val"]
    np.testing.assert_allclose(_corners(back), _corners(ds), atol=1e-9)
    io.write(back, tmp_path / "yolo", "yolo", task="obb")
    for split, name in (("train", "P0001"), ("val", "P0002")):
        assert (tmp_path / f"yolo/labels/{split}/{name}.txt").read_text() == \
            (OBB / f"labels/{split}/{name}.txt").read_text()


def test_progress_is_monotone_ends_at_total_and_leaves_the_files_unchanged(pair: dict[str, Any],
                                                                         tmp_path: Path) -> None:
    for fmt, ds, total in (("dota", pair["truth"], pair["truth"].n_images),
                           ("dota-results", pair["pred"], pair["pred"].n_annotations)):
        assert io.get_format(fmt).reports_progress
        plain = io.write(ds, tmp_path / fmt, fmt)
        before = _files(tmp_path / fmt)
        calls: list[tuple[int, int]] = []
        rep = io.write(ds, tmp_path / fmt, fmt, progress=lambda d, t, c=calls: c.append((d, t)))
        assert _files(tmp_path / fmt) == before and rep.to_dict() == plain.to_dict()
        done = [d for d, _ in calls]
        assert calls[0] == (0, total) and calls[-1] == (total, total) and done == sorted(done), calls
        assert {t for _, t in calls} == {total}


def test_convert_and_eval_from_the_command_line(pair: dict[str, Any], tmp_path: Path) -> None:
    """``maslow eval --from dota --pred-format dota-results --iou-type obb`` gives the library's numbers, and
    ``maslow convert`` writes DOTA to COCO and back."""
    out = tmp_path / "eval.json"
    code, text = run_cli(["eval", "--gt", str(pair["gt"]), "--from", "dota", "--pred", str(pair["res"]),
                          "--pred-format", "dota-results", "--iou-type", "obb", "--json", str(out)])
    assert code == 0, text
    doc = json.loads(out.read_text())
    truth = dota.read_dota(pair["gt"])
    expected = coco_map(truth, dota_results.read_dota_results(pair["res"], like=truth), iou_type="obb").to_dict()
    assert doc["n_pred"] == pair["pred"].n_annotations
    assert doc["map"]["stats"] == expected["stats"] and expected["stats"]["map_50"] > 0.5
    code, text = run_cli(["convert", str(pair["gt"]), str(tmp_path / "coco.json"), "--from", "dota", "--to", "coco"])
    assert code == 0, text
    code, text = run_cli(["convert", str(tmp_path / "coco.json"), str(tmp_path / "again"), "--from", "coco", "--to",
                          "dota", "--images-root", str(pair["gt"])])
    assert code == 0, text
    again = (tmp_path / "again/labelTxt/tile_0000.txt").read_text()
    assert again == (pair["gt"] / "labelTxt/tile_0000.txt").read_text()


def test_eval_matches_results_by_stem_whatever_the_image_type(tmp_path: Path) -> None:
    """DOTA results name images by stem: ``maslow eval`` reads them onto the truth's images (``like=truth``), so
    JPEG truth images match, and a prediction on an image the truth lacks is named, not silently dropped."""
    truth = oriented(6, size=160, seed=7)
    im = truth.images
    truth = truth.replace(images=Images(path=obj_array([p.replace(".png", ".jpg") for p in im.path.tolist()]),
                                        width=im.width, height=im.height))
    for p in truth.images.path.tolist():
        (tmp_path / "src" / p).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (160, 160)).save(tmp_path / "src" / p)
    truth = truth.replace(root=tmp_path / "src")
    dota.write(truth, tmp_path / "gt")
    pred = oriented_predictions(truth, seed=7)
    dota_results.write(pred, tmp_path / "res")
    with open(tmp_path / "res" / "Task1_plane.txt", "a") as f:
        f.write("P9999 0.5 1 1 5 1 5 5 1 5\n")
    out = tmp_path / "eval.json"
    code, text = run_cli(["eval", "--gt", str(tmp_path / "gt"), "--from", "dota", "--pred", str(tmp_path / "res"),
                          "--pred-format", "dota-results", "--iou-type", "obb", "--json", str(out)])
    assert code == 0, text
    doc = json.loads(out.read_text())
    assert doc["n_pred"] == pred.n_annotations
    assert doc["map"]["stats"]["map_50"] == pytest.approx(coco_map(truth, pred, iou_type="obb").map_50, abs=1e-9)
    assert any("P9999" in i["message"] for i in doc["import_issues"]["pred"]["issues"])
