"""The readers that search a folder tree (YOLO, semantic label maps, IDX, DOTA images, probability files) put the
folders they could not list and the broken links they met into their import report, naming them: a bare warning
(the walk's note) reached no report, so ``maslow import``/``check`` tables and ``strict`` never saw them. And a YOLO
label file whose would-be image is already another image's is reported, not silently left unread."""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.errors import FormatError, MaslowWarning
from maslow.io import idx, semantic, yolo
from maslow.io._common import Collector
from maslow.io._dota_lines import index_images
from tests.helpers import deny_listing, run_cli_streams, semantic_truth

links = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="needs symbolic links")


def _png(path: Path, w: int = 20, h: int = 10, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (w, h)).save(path, format="PNG")


def _text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _found(report: Report) -> list[tuple[str, str, str | None]]:
    """(type, severity, file) of the walk findings."""
    return [(i.type, i.severity, i.file) for i in report if i.type in ("unreadable_folder", "broken_link")]


def _parse_quiet(fn: object, *args: object, **kw: object) -> tuple[Dataset, Report]:
    """``fn(*args, **kw)`` with the walk's own note (a MaslowWarning, kept) caught."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MaslowWarning)
        return fn(*args, **kw)  # type: ignore[operator,no-any-return]


# -- YOLO -----------------------------------------------------------------------------------------------------------
def _yolo(root: Path) -> Path:
    for rel in ("a", "cam/b"):
        _png(root / "images" / "train" / f"{rel}.png")
        _text(root / "labels" / "train" / f"{rel}.txt", "0 0.5 0.5 0.2 0.2\n")
    _text(root / "data.yaml", "train: images/train\nnames: [a]\n")
    return root


@pytest.mark.parametrize("kinds", [("images",), ("labels",), ("images", "labels")])
def test_yolo_reports_a_folder_it_could_not_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 kinds: tuple[str, ...]) -> None:
    root = _yolo(tmp_path / "d")
    locked = [root / kind / "train" / "cam" for kind in kinds]
    deny_listing(monkeypatch, *locked)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds, report = yolo.parse(root)
    assert not [w for w in caught if "could not be listed" in str(w.message)]  # said once: in the report
    # cam/b.png is still found from its label file, or its label file from the image: not when both are locked
    assert (ds.n_images, ds.n_annotations) == ((1, 1) if len(kinds) == 2 else (2, 2))
    assert _found(report) == [("unreadable_folder", "warning", str(f)) for f in locked]
    issue = next(i for i in report if i.type == "unreadable_folder")
    assert "can't be listed (Permission denied): the files in it were not searched" in issue.message
    with pytest.raises(FormatError, match="can't be listed"), warnings.catch_warnings():
        warnings.simplefilter("ignore", MaslowWarning)
        yolo.parse(root, strict=True)  # a warning: strict refuses it


@links
def test_yolo_reports_broken_links(tmp_path: Path) -> None:
    root = _yolo(tmp_path / "d")
    os.symlink(tmp_path / "gone", root / "images" / "train" / "disk2")  # a folder on a disk not mounted
    os.symlink("loop.png", root / "images" / "train" / "loop.png")  # a link to itself
    os.symlink(tmp_path / "gone.txt", root / "labels" / "train" / "c.txt")
    ds, report = yolo.parse(root)
    assert ds.images.path.tolist() == ["images/train/a.png", "images/train/cam/b.png"]
    assert sorted(_found(report)) == [("broken_link", "warning", str(root / "images" / "train" / p))
                                      for p in ("disk2", "loop.png")] + [
        ("broken_link", "warning", str(root / "labels" / "train" / "c.txt"))]


@links
def test_yolo_check_shows_the_findings(tmp_path: Path) -> None:
    root = _yolo(tmp_path / "d")
    os.symlink(tmp_path / "gone", root / "images" / "train" / "disk2")
    code, _, err = run_cli_streams(["check", str(root), "--from", "yolo"])
    assert code == 0 and "import issues (broken_link: 1)" in " ".join(err.split())  # was no import issue


def test_yolo_label_file_whose_image_is_another_images_is_reported(tmp_path: Path) -> None:
    """``labels/train/images/x.txt`` names the image ``images/train/images/x.png`` (the last ``labels`` folder
    becomes ``images``), whose own label file is ``images/train/labels/x.txt`` (the last ``images`` folder becomes
    ``labels``): it was skipped without a word, its objects lost."""
    root = tmp_path / "d"
    for stem in ("x", "y"):
        _png(root / "images" / "train" / "images" / f"{stem}.png")
        _text(root / "labels" / "train" / "images" / f"{stem}.txt", "0 0.5 0.5 0.2 0.2\n")
    _text(root / "images" / "train" / "labels" / "x.txt", "0 0.25 0.25 0.1 0.1\n")  # x's own label file
    _text(root / "data.yaml", "train: images/train\nnames: [a]\n")
    ds, report = yolo.parse(root)
    assert ds.images.path.tolist() == ["images/train/images/x.png", "images/train/images/y.png"]
    assert ds.annotations.image.tolist() == [0]  # x's own label file read; the other two are not labels of theirs
    found = [(i.type, i.severity, i.file, i.image) for i in report]
    assert found == [("yolo_label_not_read", "error", str(root / "labels" / "train" / "images" / f"{s}.txt"), r)
                     for r, s in enumerate("xy")]
    x, y = report.issues
    assert f"already image row 0 (split 'train') with its label file {root / 'images/train/labels/x.txt'}" in x.message
    assert "without a label file; its annotations were not read: that image's label file would be " \
           "images/train/labels/y.txt" in y.message


@links
def test_yolo_label_file_reached_again_through_a_linked_file_is_not_reported(tmp_path: Path) -> None:
    """The image's own label file reached by another path (a linked file) is no finding: it was read."""
    root = tmp_path / "d"
    _png(root / "images" / "train" / "images" / "x.png")
    _text(root / "images" / "train" / "labels" / "x.txt", "0 0.25 0.25 0.1 0.1\n")
    (root / "labels" / "train" / "images").mkdir(parents=True)
    os.symlink(root / "images" / "train" / "labels" / "x.txt", root / "labels" / "train" / "images" / "x.txt")
    _text(root / "data.yaml", "train: images/train\nnames: [a]\n")
    ds, report = yolo.parse(root)
    assert ds.annotations.image.tolist() == [0] and len(report) == 0


# -- semantic label maps ----------------------------------------------------------------------------------------------
def _semantic(base: Path) -> None:
    for stem in ("s1", "more/s2"):
        (base / "labels" / stem).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ones((4, 6), np.uint8)).save(base / "labels" / f"{stem}.png")
        _png(base / "images" / f"{stem}.png", 6, 4, "RGB")


def test_semantic_reports_folders_it_could_not_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _semantic(tmp_path)
    deny_listing(monkeypatch, tmp_path / "labels" / "more", tmp_path / "images" / "more")
    _, report = _parse_quiet(semantic.parse, tmp_path / "labels")
    assert _found(report) == [("unreadable_folder", "warning", str(tmp_path / f)) for f in ("images/more",
                                                                                             "labels/more")]


@links
def test_semantic_reports_broken_links(tmp_path: Path) -> None:
    _semantic(tmp_path)
    os.symlink(tmp_path / "gone.png", tmp_path / "labels" / "s3.png")
    os.symlink(tmp_path / "gone", tmp_path / "images" / "cam")
    ds, report = semantic.parse(tmp_path / "labels")
    assert ds.n_images == 2
    assert _found(report) == [("broken_link", "warning", str(tmp_path / f)) for f in ("images/cam", "labels/s3.png")]


def test_semantic_with_nothing_listable_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "labels" / "locked").mkdir(parents=True)
    deny_listing(monkeypatch, tmp_path / "labels" / "locked")
    with pytest.raises(FormatError, match=r"no PNG label maps \(1 folder could not be listed, first: .*locked\)"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", MaslowWarning)
        semantic.parse(tmp_path / "labels")


# -- IDX --------------------------------------------------------------------------------------------------------------
def _idx_file(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes())


def test_idx_reports_a_folder_it_could_not_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _idx_file(tmp_path / "data" / "train-images-idx3-ubyte", np.zeros((2, 3, 3), np.uint8))
    _idx_file(tmp_path / "data" / "deep" / "more" / "train-labels-idx1-ubyte", np.array([0, 1], np.uint8))
    deny_listing(monkeypatch, tmp_path / "data" / "deep" / "more")
    ds, report = _parse_quiet(idx.parse, tmp_path / "data")
    assert ds.n_annotations == 0  # the labels file is in the folder not listed
    assert _found(report) == [("unreadable_folder", "warning", str(tmp_path / "data" / "deep" / "more"))]  # once
    assert [i.type for i in report] == ["idx_no_labels", "unreadable_folder"]


@links
def test_idx_reports_broken_links(tmp_path: Path) -> None:
    _idx_file(tmp_path / "data" / "train-images-idx3-ubyte", np.zeros((2, 3, 3), np.uint8))
    _idx_file(tmp_path / "data" / "train-labels-idx1-ubyte", np.array([0, 1], np.uint8))
    os.symlink(tmp_path / "gone", tmp_path / "data" / "t10k-images-idx3-ubyte")
    ds, report = idx.parse(tmp_path / "data")
    assert ds.n_images == 2
    assert _found(report) == [("broken_link", "warning", str(tmp_path / "data" / "t10k-images-idx3-ubyte"))]


# -- DOTA images found by stem ------------------------------------------------------------------------------------------
@links
def test_dota_image_search_reports_to_the_collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _png(tmp_path / "pics" / "cam" / "P1.png")
    _png(tmp_path / "pics" / "locked" / "P2.png")
    os.symlink(tmp_path / "gone", tmp_path / "pics" / "disk2")
    deny_listing(monkeypatch, tmp_path / "pics" / "locked")
    col = Collector()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = index_images(tmp_path / "pics", recursive=True, col=col)
    assert not [w for w in caught if "could not be listed" in str(w.message)]  # said once: to the collector
    assert found == {"P1": "cam/P1.png"}
    assert _found(col.report()) == [("unreadable_folder", "warning", str(tmp_path / "pics" / "locked")),
                                    ("broken_link", "warning", str(tmp_path / "pics" / "disk2"))]


# -- probability files ------------------------------------------------------------------------------------------------


@links
def test_pixel_probs_report_broken_links_and_name_them_when_a_file_is_missing(tmp_path: Path) -> None:
    (tmp_path / "part").mkdir()
    np.save(tmp_path / "part" / "a.npy", np.full((2, 4, 6), 0.5, np.float32))
    os.symlink(tmp_path / "gone.npy", tmp_path / "part" / "b.npy")
    with pytest.warns(MaslowWarning, match="broken_link"):
        probs = io.read_pixel_probs(tmp_path, like=semantic_truth(["part/a.png", "x.png"]).select_images(np.array([0])))
    assert _found(probs.report) == [("broken_link", "warning", str(tmp_path / "part" / "b.npy"))]
    with pytest.raises(FormatError, match=r"got none for image 'part/b.png'.*\(1 broken links, first: .*b\.npy\)"):
        io.read_pixel_probs(tmp_path, like=semantic_truth(["part/a.png", "part/b.png"]))


def test_pixel_probs_name_the_folder_not_listed_when_a_file_is_missing(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "part").mkdir()
    np.save(tmp_path / "a.npy", np.full((2, 4, 6), 0.5, np.float32))
    deny_listing(monkeypatch, tmp_path / "part")
    with pytest.raises(FormatError, match=r"\(1 folder could not be listed, first: .*part\)"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", MaslowWarning)
        io.read_pixel_probs(tmp_path, like=semantic_truth(["a.png", "part/b.png"]))
