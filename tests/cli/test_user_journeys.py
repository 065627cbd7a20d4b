"""A new user's path through the CLI (import, stats, log, check, qa, select, export and convert), on small
spec-shaped inputs and, where ../shared/data is present, on the real datasets: what they stumbled on stays fixed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from maslow import io
from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.sample import write_shapes
from tests.conftest import shared_path


def _run(args: list[str], cwd: Path | None = None, monkeypatch: pytest.MonkeyPatch | None = None
         ) -> tuple[int, str, str]:
    """``maslow ARGS`` in process: (exit code, stdout, stdout and stderr together)."""
    from maslow.cli.main import app

    if cwd is not None and monkeypatch is not None:
        monkeypatch.chdir(cwd)
    res = CliRunner().invoke(app, args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.output


def _workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    assert _run(["init", str(ws)])[0] == 0
    monkeypatch.chdir(ws)
    return ws


def _voc_tree(root: Path, n: int, seed: int) -> Path:
    """A dataset laid out as BCCD and CamVid ship: ``root/annotations/`` beside ``root/images/``."""
    ds = write_shapes(root / "src", n, seed=seed)
    io.write_voc(ds, root / "voc")
    (root / "voc" / "Annotations").rename(root / "annotations")
    shutil.move(str(root / "src" / "images"), root / "images")
    return root / "annotations"


# --- import: the default dataset name ------------------------------------------------------------------------------


def test_import_names_a_dataset_after_its_folder_not_after_annotations(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`maslow import bccd/annotations` and `maslow import camvid_val/annotations` used to become two versions of
    one dataset named "annotations": a blood-cell history with a street scene as its head."""
    first = _voc_tree(tmp_path / "cells", 4, seed=0)
    second = _voc_tree(tmp_path / "streets", 5, seed=1)
    _workspace(tmp_path, monkeypatch)
    names = []
    for src in (first, second):
        code, out, both = _run(["import", str(src), "--from", "voc", "--no-check-files", "--json"])
        assert code == 0, both
        names.append(json.loads(out)["version"]["dataset"])
    assert names == ["cells", "streets"]
    for name, n in (("cells", 4), ("streets", 5)):
        code, out, _ = _run(["log", name, "--json"])
        assert code == 0 and [v["n_images"] for v in json.loads(out)] == [n]


def test_import_from_another_source_into_an_existing_dataset_is_said(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    first = _voc_tree(tmp_path / "cells", 4, seed=0)
    other = _voc_tree(tmp_path / "other", 3, seed=1)
    _workspace(tmp_path, monkeypatch)
    code, _, both = _run(["import", str(first), "--from", "voc", "--no-check-files"])
    assert code == 0 and "imported from" not in both
    code, _, both = _run(["import", str(first), "--from", "voc", "--no-check-files"])  # the same source again
    assert code == 0 and "imported from" not in both
    code, _, both = _run(["import", str(other), "--from", "voc", "--no-check-files", "--name", "cells"])
    assert code == 0
    assert "imported from" in both and "--name" in " ".join(both.split())


@pytest.mark.parametrize(("parts", "expected"), [
    (("bccd", "annotations"), "bccd"),
    (("camvid_val", "annotations"), "camvid_val"),
    (("od", "gts", "yolo_format", "obj.data"), "yolo_format"),
    (("shapes", "annotations.json"), "shapes"),
    (("coco", "instances_val2017.json"), "instances_val2017"),
    (("mnist_test",), "mnist_test"),
    (("my data", "labels"), "my-data"),
])
def test_default_names(tmp_path: Path, parts: tuple[str, ...], expected: str) -> None:
    from maslow.cli.data import _default_name

    p = tmp_path.joinpath(*parts)
    if p.suffix:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("{}")
    else:
        p.mkdir(parents=True)
    assert _default_name(p) == expected


# --- reader and writer options -------------------------------------------------------------------------------------


def test_write_option_reaches_the_writer(tmp_path: Path) -> None:
    """YOLO's task could not be chosen from the command line; by default it follows the data (polygons: segment)."""
    ds = write_shapes(tmp_path / "shapes", 6, seed=0)
    io.write_coco(ds, tmp_path / "shapes" / "annotations.json")
    src = str(tmp_path / "shapes" / "annotations.json")
    code, out, both = _run(["convert", src, str(tmp_path / "det"), "--from", "coco", "--to", "yolo",
                            "--write-option", "task=detect", "--json"])
    assert code == 0, both
    assert json.loads(out)["export"]["lost"].get("polygon", 0) > 0
    code, out, both = _run(["convert", src, str(tmp_path / "seg"), "--from", "coco", "--to", "yolo", "--json"])
    assert code == 0, both
    assert "polygon" not in json.loads(out)["export"]["lost"]
    widths = {len(line.split()) for p in (tmp_path / "seg" / "labels").rglob("*.txt")
              for line in p.read_text().splitlines() if line.strip()}
    assert max(widths) > 5  # cls x1 y1 x2 y2 x3 y3 ...: polygons, not boxes
    det = {len(line.split()) for p in (tmp_path / "det" / "labels").rglob("*.txt")
           for line in p.read_text().splitlines() if line.strip()}
    assert det == {5}  # task=detect: cls cx cy w h


@pytest.mark.parametrize(("args", "match"), [
    (["--write-option", "nope=1"], "the yolo writer takes task, images, copy_images, flip_idx"),
    (["--write-option", "task"], "must be KEY=VALUE"),
    (["--read-option", "classes=[a]"], "the coco reader takes"),
])
def test_unknown_options_exit_2_naming_the_accepted_ones(tmp_path: Path, args: list[str], match: str) -> None:
    ds = write_shapes(tmp_path / "shapes", 2, seed=0)
    io.write_coco(ds, tmp_path / "shapes" / "annotations.json")
    code, _, both = _run(["convert", str(tmp_path / "shapes" / "annotations.json"), str(tmp_path / "o"),
                          "--from", "coco", "--to", "yolo", *args])
    assert code == 2 and match in " ".join(both.split())
    assert not (tmp_path / "o").exists()


def _label_maps(root: Path) -> Path:
    """Two CamVid-shaped frames: RGB images in images/, 0..2 label maps in annotations/, no class list."""
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for k in range(2):
        label = np.zeros((6, 8), np.uint8)
        label[2:, :] = 1
        label[0, k] = 2
        Image.fromarray(label).save(root / "annotations" / f"seq_{k:05d}.png")
        Image.new("RGB", (8, 6)).save(root / "images" / f"seq_{k:05d}.png")
    return root / "annotations"


def test_read_option_names_the_classes_of_label_maps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CamVid ships no classes.txt (and its folder is read-only): the names could only be given from Python."""
    src = _label_maps(tmp_path / "clip")
    _workspace(tmp_path, monkeypatch)
    code, _, both = _run(["import", str(src), "--from", "masks", "--read-option", "classes=[sky, road, void]",
                          "--read-option", "ignore_index=2"])
    assert code == 0, both
    code, out, _ = _run(["stats", "--json"])
    assert [c["name"] for c in json.loads(out)["classes"]] == ["sky", "road", "void"]
    # label maps written elsewhere share the images' names: the note still says where the images are
    code, out, both = _run(["export", str(tmp_path / "out" / "maps"), "--to", "masks", "--json"])
    assert code == 0, both
    assert "--images-root" in " ".join(json.loads(out)["notes"])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "maps" / "seq_00001.png")),
                          np.asarray(Image.open(src / "seq_00001.png")))


# --- export: images left behind ------------------------------------------------------------------------------------


def test_export_says_when_a_reader_will_not_find_the_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A COCO file exported to out/ names images that stay in the source folder: reading it back found none
    (missing_image for every image) and nothing had said so."""
    ds = write_shapes(tmp_path / "shapes", 4, seed=0)
    io.write_coco(ds, tmp_path / "shapes" / "annotations.json")
    _workspace(tmp_path, monkeypatch)
    assert _run(["import", str(tmp_path / "shapes" / "annotations.json"), "--from", "coco", "--name", "s"])[0] == 0
    out_file = tmp_path / "out" / "s.json"
    code, out, both = _run(["export", str(out_file), "--to", "coco", "--json"])
    assert code == 0, both
    notes = " ".join(json.loads(out)["notes"])
    root = str((tmp_path / "shapes").resolve())
    assert f"--images-root {root}" in notes
    code, out, both = _run(["import", str(out_file), "--from", "coco", "--name", "back", "--images-root", root,
                            "--json"])
    assert code == 0 and json.loads(out)["report"]["n_issues"] == 0, both
    # beside the images: a reader finds them, nothing to say; YOLO links the images into its folder
    for dst, fmt in ((tmp_path / "shapes" / "again.json", "coco"), (tmp_path / "yolo", "yolo")):
        code, out, both = _run(["export", "s", str(dst), "--to", fmt, "--json"])
        assert code == 0 and "--images-root" not in " ".join(json.loads(out)["notes"]), both


def test_a_folder_export_does_not_replace_an_existing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`maslow export out/coco.json --to yolo` deleted the JSON file and wrote a YOLO folder in its place."""
    ds = write_shapes(tmp_path / "shapes", 3, seed=0)
    io.write_coco(ds, tmp_path / "shapes" / "annotations.json")
    _workspace(tmp_path, monkeypatch)
    assert _run(["import", str(tmp_path / "shapes" / "annotations.json"), "--from", "coco", "--name", "s"])[0] == 0
    precious = tmp_path / "labels.json"
    precious.write_text('{"keep": true}')
    for args in (["export", str(precious), "--to", "yolo"],
                 ["convert", str(tmp_path / "shapes" / "annotations.json"), str(precious), "--from", "coco",
                  "--to", "voc"]):
        code, _, both = _run(args)
        assert code == 2 and "is a file" in both
        assert precious.read_text() == '{"keep": true}'
    code, _, both = _run(["export", str(precious), "--to", "coco"])  # a file format replaces a file, as asked
    assert code == 0, both
    assert json.loads(precious.read_text())["images"]


# --- stats and log tables ------------------------------------------------------------------------------------------


def test_stats_lists_classes_without_annotations_below_the_table(tmp_path: Path) -> None:
    """A 10-image COCO excerpt listed all 80 categories, 62 of them with zeros everywhere."""
    names = [f"class{k:02d}" for k in range(12)]
    ds = Dataset(schema=LabelSchema.from_names(names),
                 images=Images(path=["a.jpg", "b.jpg"], width=[640, 640], height=[480, 480]),
                 annotations=Annotations(image=[0, 1], label=[3, 7], box=[[0, 0, 10, 10], [0, 0, 200, 200]]))
    io.write_coco(ds, tmp_path / "a.json")
    code, out, both = _run(["stats", str(tmp_path / "a.json"), "--from", "coco"])
    assert code == 0, both
    table = out.split("Annotations per image")[0]
    assert "class03" in table and "class07" in table and "class00" not in table.split("no annotation")[0]
    assert "10 of 12 classes have no annotation" in " ".join(out.split())
    code, out, _ = _run(["stats", str(tmp_path / "a.json"), "--from", "coco", "--json"])
    assert len(json.loads(out)["classes"]) == 12  # the JSON keeps every class


def test_stats_shows_box_sizes_only_when_there_are_boxes(tmp_path: Path) -> None:
    ds = Dataset(schema=LabelSchema.from_names(["cat", "dog"]),
                 images=Images(path=["cat/a.png", "dog/b.png"], width=[8, 8], height=[8, 8]),
                 annotations=Annotations(image=[0, 1], label=[0, 1]))
    io.write_parquet(ds, tmp_path / "cls")
    code, out, both = _run(["stats", str(tmp_path / "cls"), "--from", "parquet"])
    assert code == 0, both
    assert "medium" not in out and "dog" in out


def test_log_prints_whole_dates_and_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The log table cut the date to '2026-12…' and the source to '/work/s…' in an 80-column terminal."""
    src = _voc_tree(tmp_path / "a_dataset_with_a_long_name", 3, seed=0)
    _workspace(tmp_path, monkeypatch)
    assert _run(["import", str(src), "--from", "voc", "--no-check-files"])[0] == 0
    code, out, _ = _run(["log"])
    assert code == 0
    assert "…" not in out
    assert str(src) in out
    code, out, _ = _run(["log", "--json"])
    created = json.loads(out)[0]["created"]
    assert created[:10] in _run(["log"])[1]


# --- check, qa and select: what the tables show, the JSON holds ----------------------------------------------------


def test_check_json_names_the_image_and_class_as_the_table_does(tmp_path: Path) -> None:
    ds = Dataset(schema=LabelSchema.from_names(["cat", "dog"]),
                 images=Images(path=["first_image_with_a_long_name.jpg", "b.jpg"], width=[64, 64],
                               height=[48, 48]),
                 annotations=Annotations(image=[0, 1], label=[1, 0], box=[[5, 5, 5, 20], [1, 1, 30, 30]]))
    io.write_coco(ds, tmp_path / "a.json")
    code, out, both = _run(["check", str(tmp_path / "a.json"), "--from", "coco", "--json"])
    assert code == 0, both
    rows = json.loads(out)["issues"]
    zero = next(r for r in rows if r["type"] == "zero_area_box")
    assert zero["file_name"] == "first_image_with_a_long_name.jpg" and zero["class"] == "dog"
    code, out, _ = _run(["check", str(tmp_path / "a.json"), "--from", "coco"])
    assert code == 0 and "…" not in out.split("Top")[1].split("reason")[1].split("│")[4]
    assert "first_image_with_a_long_name.jpg" in "".join(line.split("│")[4].strip()
                                                         for line in out.splitlines() if line.count("│") > 5)


def test_select_table_keeps_image_paths_whole(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
            folder / f"camera_front_left_2024_05_01_frame_{k:06d}.png")
    code, out, both = _run(["select", str(folder), "--budget", "3", "--embedder", "light", "--cache-dir",
                            str(tmp_path / "cache")])
    assert code == 0, both
    cells = ["".join(line.split("│")[2].strip() for line in block)
             for block in _rows(out)]
    assert cells and all(c.startswith("camera_front_left_2024_05_01_frame_") and c.endswith(".png") for c in cells)
    assert "sequence" not in out  # no sequences: no empty column


def _rows(out: str) -> list[list[str]]:
    """The body rows of the last rich table in ``out``, each as its printed lines."""
    body = out.split("┡")[-1].split("\n", 1)[1].split("└")[0]
    rows: list[list[str]] = [[]]
    for line in body.splitlines():
        if line.startswith("│"):
            if line.split("│")[1].strip() and rows[-1]:
                rows.append([])
            rows[-1].append(line)
    return [r for r in rows if r]


def test_qa_takes_a_workspace_version_as_check_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = write_shapes(tmp_path / "shapes", 8, seed=2)
    io.write_coco(ds, tmp_path / "shapes" / "annotations.json")
    coco = json.loads((tmp_path / "shapes" / "annotations.json").read_text())
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9, "bbox": a["bbox"]}
             for a in coco["annotations"] if not a.get("iscrowd")][1:]  # the first object missed: "extra"
    (tmp_path / "pred.json").write_text(json.dumps(preds))
    _workspace(tmp_path, monkeypatch)
    assert _run(["import", str(tmp_path / "shapes" / "annotations.json"), "--from", "coco", "--name", "s"])[0] == 0
    results: list[Any] = []
    for gt in ("s", str(tmp_path / "shapes" / "annotations.json")):
        out_file = tmp_path / f"issues-{len(results)}.json"
        code, _, both = _run(["qa", "--gt", gt, "--pred", str(tmp_path / "pred.json"), "--out", str(out_file)])
        assert code == 0, both
        results.append(json.loads(out_file.read_text()))
    assert results[0] == results[1] and results[0]
    code, _, both = _run(["qa", "--gt", "nope", "--pred", str(tmp_path / "pred.json"), "--out", "x.json"])
    assert code == 2 and "no such file or folder, nor a workspace version" in " ".join(both.split())


def test_qa_html_says_when_the_crops_are_missing(tmp_path: Path) -> None:
    """A COCO file read away from its images gave an HTML report of "(no image)" cells, and nothing said why."""
    ds = write_shapes(tmp_path / "shapes", 6, seed=2)
    io.write_coco(ds, tmp_path / "away.json")  # not beside shapes/images
    coco = json.loads((tmp_path / "away.json").read_text())
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9, "bbox": a["bbox"]}
             for a in coco["annotations"] if not a.get("iscrowd")][1:]
    (tmp_path / "pred.json").write_text(json.dumps(preds))
    args = ["qa", "--gt", str(tmp_path / "away.json"), "--pred", str(tmp_path / "pred.json"), "--out",
            str(tmp_path / "issues.json"), "--html", str(tmp_path / "qa.html")]
    code, _, both = _run(args)
    assert code == 0, both
    assert "crops are left out" in " ".join(both.split())
    code, _, both = _run([*args, "--images-root", str(tmp_path / "shapes")])
    assert code == 0 and "crops are left out" not in " ".join(both.split()), both


# --- the real datasets ---------------------------------------------------------------------------------------------


@pytest.mark.shared
def test_bccd_journey(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BCCD as SOURCE.md counts it: import by folder name, stats, check --json, a COCO round trip."""
    src = shared_path("bccd", "annotations")
    images = shared_path("bccd", "images")
    _workspace(tmp_path, monkeypatch)
    code, out, both = _run(["import", str(src), "--from", "voc", "--no-check-files", "--json"])
    assert code == 0, both
    assert json.loads(out)["version"]["dataset"] == "bccd"
    code, out, _ = _run(["stats", "--json"])
    s = json.loads(out)
    assert {c["name"]: c["annotations"] for c in s["classes"]} == {"Platelets": 361, "RBC": 4155, "WBC": 372}
    assert s["splits"] == {"test": 72, "train": 205, "val": 87}
    code, out, _ = _run(["check", "--json", "-n", "1000"])
    rows = json.loads(out)["issues"]
    assert rows and all(r["file_name"].startswith("BloodImage_") for r in rows if r["image"] >= 0)
    code, out, _ = _run(["export", str(tmp_path / "out" / "bccd.json"), "--to", "coco", "--json"])
    assert code == 0 and f"--images-root {images.resolve()}" in " ".join(json.loads(out)["notes"])
    code, out, both = _run(["import", str(tmp_path / "out" / "bccd.json"), "--from", "coco", "--name", "back",
                            "--images-root", str(images), "--json"])
    assert code == 0 and json.loads(out)["report"]["n_issues"] == 0, both


@pytest.mark.shared
def test_coco_excerpt_stats_name_the_unused_categories() -> None:
    src = shared_path("coco_instances_10", "annotations", "instances_val2017_subset.json")
    code, out, both = _run(["stats", str(src), "--from", "coco"])
    assert code == 0, both
    assert "62 of 80 classes have no annotation" in " ".join(out.split())


@pytest.mark.shared
def test_camvid_class_names_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = shared_path("camvid_val", "annotations")
    names = "[Sky, Building, Pole, Road, Pavement, Tree, SignSymbol, Fence, Car, Pedestrian, Bicyclist, Unlabelled]"
    _workspace(tmp_path, monkeypatch)
    code, out, both = _run(["import", str(src), "--from", "masks", "--no-check-files", "--read-option",
                            f"classes={names}", "--read-option", "ignore_index=11", "--json"])
    assert code == 0, both
    assert json.loads(out)["version"]["dataset"] == "camvid_val"
    code, out, _ = _run(["stats", "--json"])
    assert [c["name"] for c in json.loads(out)["classes"]][:4] == ["Sky", "Building", "Pole", "Road"]
