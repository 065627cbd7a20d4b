"""Readers that search a folder tree follow linked folders (YOLO, semantic label maps, IDX, DOTA images, probability
files): a dataset whose folders link to another disk reads as its unlinked copy, a link loop is not walked twice,
and a folder reached by two links is read once. They used ``Path.rglob`` or a walker that did not follow links,
which on Python 3.11 do not enter a linked folder: everything under it was silently missing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.core.issues import Report
from maslow.io import dota, dota_results, idx, semantic, yolo
from tests.helpers import assert_datasets_equal, deny_listing, semantic_truth

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="needs symbolic links")


def _png(path: Path, w: int, h: int, mode: str = "L", value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (w, h), value).save(path)


def _text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _linked_copy(store: Path, dst: Path, linked: list[str]) -> Path:
    """A copy of the tree ``store`` at ``dst`` whose folders ``linked`` (paths relative to ``store``) are links to
    ``store``'s, as a dataset folder linking ``images/`` to another disk."""
    for top, dirs, files in os.walk(store):
        rel = Path(top).relative_to(store)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for d in list(dirs):
            if (rel / d).as_posix() in linked:
                os.symlink(Path(top) / d, dst / rel / d, target_is_directory=True)
                dirs.remove(d)
        for f in files:
            shutil.copy2(Path(top) / f, dst / rel / f)
    return dst


def _both(tmp_path: Path, build: Callable[[Path], None], linked: list[str]) -> tuple[Path, Path, Path]:
    """(plain copy, linked copy, the store the links point into) of the tree ``build`` writes."""
    plain, store = tmp_path / "plain", tmp_path / "store"
    build(plain)
    build(store)
    copy = _linked_copy(store, tmp_path / "linked", linked)
    for rel in linked:
        assert (copy / rel).is_symlink()
    return plain, copy, store


def _issues(report: Report, base: Path) -> list[tuple[str, str]]:
    """(type, file relative to ``base``) of each finding, so two copies' reports compare."""
    out = []
    for i in report:
        f = Path(i.file) if i.file else None
        out.append((i.type, f.relative_to(base).as_posix() if f is not None and f.is_relative_to(base) else str(f)))
    return out


# -- YOLO --------------------------------------------------------------------------------------------------------
def _yolo(base: Path) -> None:
    for k, stem in enumerate(("a", "b")):
        _png(base / "images" / "train" / "cam1" / f"{stem}.png", 40 + k, 20)
        _text(base / "labels" / "train" / "cam1" / f"{stem}.txt", f"{k} 0.5 0.5 0.2 0.2\n")
    _png(base / "images" / "train" / "top.png", 30, 30)
    _text(base / "labels" / "train" / "top.txt", "1 0.25 0.25 0.1 0.1\n")
    _text(base / "labels" / "train" / "cam1" / "orphan.txt", "0 0.5 0.5 0.1 0.1\n")  # its image is missing
    _text(base / "data.yaml", "train: images/train\nnames: [a, b]\n")


def test_yolo_images_and_labels_in_linked_folders(tmp_path: Path) -> None:
    plain, copy, _ = _both(tmp_path, _yolo, ["images/train/cam1", "labels/train/cam1"])
    want, want_report = yolo.parse(plain)
    assert want.images.path.tolist() == ["images/train/cam1/a.png", "images/train/cam1/b.png",
                                         "images/train/top.png", "images/train/cam1/orphan.jpg"]
    got, report = yolo.parse(copy)
    assert_datasets_equal(got, want, fields=("path", "size", "label", "box"))
    assert got.images.path.tolist() == want.images.path.tolist()  # the same order too
    assert _issues(report, copy) == _issues(want_report, plain)
    assert ("missing_image", "labels/train/cam1/orphan.txt") in _issues(report, copy)  # the orphan walk follows


def test_yolo_link_loops_are_walked_once(tmp_path: Path) -> None:
    plain, copy, store = _both(tmp_path, _yolo, ["images/train/cam1", "labels/train/cam1"])
    for kind in ("images", "labels"):
        os.symlink(store / kind / "train" / "cam1", store / kind / "train" / "cam1" / "self")  # to itself
        os.symlink(copy / kind / "train", store / kind / "train" / "cam1" / "up")  # to the folder being read
    want, want_report = yolo.parse(plain)
    got, report = yolo.parse(copy)
    assert got.images.path.tolist() == want.images.path.tolist()  # nothing twice, nothing under self/ or up/
    assert_datasets_equal(got, want)
    assert _issues(report, copy) == _issues(want_report, plain)


def test_yolo_bare_folder_of_links(tmp_path: Path) -> None:
    """A folder of images and label files side by side (no data.yaml), made of links to camera folders."""
    store = tmp_path / "store"
    for k in range(2):
        _png(store / f"cam{k}" / f"f{k}.png", 40, 20 + k)
        _text(store / f"cam{k}" / f"f{k}.txt", f"{k} 0.5 0.5 0.2 0.2\n")
    data = tmp_path / "data"
    data.mkdir()
    for k in range(2):
        os.symlink(store / f"cam{k}", data / f"cam{k}")
    (data / "classes.txt").write_text("a\nb\n")
    ds, report = yolo.parse(data)
    assert ds.images.path.tolist() == ["cam0/f0.png", "cam1/f1.png"]
    assert ds.images.height.tolist() == [20, 21] and ds.annotations.label.tolist() == [0, 1]
    assert len(report) == 0


# -- semantic label maps ---------------------------------------------------------------------------------------
def _semantic(base: Path) -> None:
    for k, stem in enumerate(("seq_0001", "seq_0002")):
        arr = np.zeros((4, 6), np.uint8)
        arr[: k + 1, :3] = k + 1
        (base / "labels" / "seq").mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(base / "labels" / "seq" / f"{stem}.png")
        _png(base / "images" / "seq" / f"{stem}.png", 6, 4, "RGB")
    other = np.full((5, 7), 2, np.uint8)
    (base / "labels" / "more").mkdir(parents=True, exist_ok=True)
    Image.fromarray(other).save(base / "labels" / "more" / "lone_0007.png")
    _png(base / "images" / "elsewhere" / "lone_0007.jpg", 7, 5, "RGB")  # found by its stem alone


def test_semantic_label_maps_and_images_in_linked_folders(tmp_path: Path) -> None:
    plain, copy, _ = _both(tmp_path, _semantic, ["labels/seq", "labels/more", "images/seq", "images/elsewhere"])
    want, want_report = semantic.parse(plain / "labels")
    assert want.images.path.tolist() == ["elsewhere/lone_0007.jpg", "seq/seq_0001.png", "seq/seq_0002.png"]
    assert len(want_report) == 0
    got, report = semantic.parse(copy / "labels")
    assert got.images.path.tolist() == want.images.path.tolist()
    assert_datasets_equal(got, want, fields=("path", "size", "label", "mask"))
    assert len(report) == 0  # no missing image: the one found by stem is under a linked folder


def test_semantic_link_loops_are_walked_once(tmp_path: Path) -> None:
    plain, copy, store = _both(tmp_path, _semantic, ["labels/seq", "labels/more", "images/seq", "images/elsewhere"])
    for kind in ("labels", "images"):
        os.symlink(store / kind / "seq", store / kind / "seq" / "self")
        os.symlink(copy / kind, store / kind / "seq" / "up")
    want, _ = semantic.parse(plain / "labels")
    got, report = semantic.parse(copy / "labels")
    assert got.images.path.tolist() == want.images.path.tolist()
    assert_datasets_equal(got, want, fields=("path", "size", "label", "mask"))
    assert len(report) == 0  # the image found by stem is found once: not ambiguous


# -- IDX ---------------------------------------------------------------------------------------------------------
def _idx_file(path: Path, arr: np.ndarray) -> None:
    import struct

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes())


def _idx(base: Path) -> None:
    rng = np.random.default_rng(0)
    _idx_file(base / "data" / "part" / "train-images-idx3-ubyte", rng.integers(0, 256, (4, 5, 3), np.uint8))
    _idx_file(base / "data" / "part" / "train-labels-idx1-ubyte", np.array([0, 1, 2, 1], np.uint8))
    _idx_file(base / "data" / "t10k-images-idx3-ubyte", rng.integers(0, 256, (2, 5, 3), np.uint8))
    _idx_file(base / "data" / "more" / "deep" / "t10k-labels-idx1-ubyte", np.array([2, 0], np.uint8))


def test_idx_images_and_labels_in_linked_folders(tmp_path: Path) -> None:
    """``part`` (images and labels) and ``more`` (the labels of the top-level images, found by searching the tree)
    are links."""
    plain, copy, _ = _both(tmp_path, _idx, ["data/part", "data/more"])
    want, want_report = idx.parse(plain / "data")
    assert want.n_images == 6 and len(want_report) == 0
    assert want.images.split is not None and sorted(set(want.images.split.tolist())) == ["test", "train"]
    got, report = idx.parse(copy / "data")
    assert got.images.path.tolist() == want.images.path.tolist()
    assert_datasets_equal(got, want, fields=("path", "size", "split", "label"))
    assert len(report) == 0


def test_idx_link_loop_is_walked_once(tmp_path: Path) -> None:
    plain, copy, store = _both(tmp_path, _idx, ["data/part", "data/more"])
    os.symlink(store / "data" / "part", store / "data" / "part" / "self")
    os.symlink(copy / "data", store / "data" / "more" / "deep" / "up")
    want, _ = idx.parse(plain / "data")
    got, report = idx.parse(copy / "data")
    assert got.images.path.tolist() == want.images.path.tolist()  # each images file once
    assert_datasets_equal(got, want, fields=("path", "size", "split", "label"))
    assert len(report) == 0


# -- DOTA ----------------------------------------------------------------------------------------------------------
def _dota(base: Path) -> None:
    _text(base / "dota" / "labelTxt" / "P1.txt", "10 5 30 5 30 15 10 15 plane 0\n")
    _text(base / "dota" / "labelTxt" / "P2.txt", "1 1 9 1 9 9 1 9 ship 1\n")
    _png(base / "pics" / "cam" / "P1.png", 64, 48)
    _png(base / "pics" / "cam" / "P2.png", 32, 24)
    _text(base / "results" / "Task1_plane.txt", "P1 0.9 10 5 30 5 30 15 10 15\nP2 0.5 1 1 9 1 9 9 1 9\n")


def test_dota_images_root_with_linked_folders(tmp_path: Path) -> None:
    """The label files (``labelTxt`` a link) and the images found by stem under ``images_root`` (``cam`` a link)."""
    plain, copy, _ = _both(tmp_path, _dota, ["dota/labelTxt", "pics/cam"])
    want, want_report = dota.parse(plain / "dota", images_root=plain / "pics")
    assert want.images.path.tolist() == ["cam/P1.png", "cam/P2.png"]
    assert want.images.width.tolist() == [64, 32] and len(want_report) == 0
    got, report = dota.parse(copy / "dota", images_root=copy / "pics")
    assert got.images.path.tolist() == want.images.path.tolist()
    assert_datasets_equal(got, want, fields=("path", "size", "label", "polygon"))
    assert len(report) == 0
    # predictions without a truth: image paths and sizes found by stem under images_root
    want_p, _ = dota_results.parse(plain / "results", images_root=plain / "pics")
    got_p, _ = dota_results.parse(copy / "results", images_root=copy / "pics")
    assert got_p.images.path.tolist() == want_p.images.path.tolist() == ["cam/P1.png", "cam/P2.png"]
    assert got_p.images.width.tolist() == want_p.images.width.tolist() == [64, 32]


def test_dota_link_loop_is_walked_once(tmp_path: Path) -> None:
    plain, copy, store = _both(tmp_path, _dota, ["dota/labelTxt", "pics/cam"])
    os.symlink(store / "pics" / "cam", store / "pics" / "cam" / "self")
    os.symlink(copy / "pics", store / "pics" / "cam" / "up")
    want, _ = dota.parse(plain / "dota", images_root=plain / "pics")
    got, report = dota.parse(copy / "dota", images_root=copy / "pics")
    assert got.images.path.tolist() == want.images.path.tolist() == ["cam/P1.png", "cam/P2.png"]
    assert len(report) == 0


# -- probability files ---------------------------------------------------------------------------------------------


def _probs(base: Path) -> None:
    (base / "probs" / "part").mkdir(parents=True)
    for k, stem in enumerate(("a", "b")):
        np.save(base / "probs" / "part" / f"{stem}.npy", np.full((2, 4, 6), 0.1 * (k + 1), np.float32))


def test_pixel_probs_in_a_linked_folder(tmp_path: Path) -> None:
    truth = semantic_truth(["part/a.png", "part/b.png"])
    plain, copy, _ = _both(tmp_path, _probs, ["probs/part"])
    want = io.read_pixel_probs(plain / "probs", like=truth)
    got = io.read_pixel_probs(copy / "probs", like=truth)
    assert [Path(got.source(i)).relative_to(copy).as_posix() for i in range(2)] == [
        Path(want.source(i)).relative_to(plain).as_posix() for i in range(2)] == ["probs/part/a.npy",
                                                                                   "probs/part/b.npy"]
    assert [float(got[i][0, 0, 0]) for i in range(2)] == pytest.approx([0.1, 0.2])


def test_pixel_probs_folder_reached_twice_is_read_once(tmp_path: Path) -> None:
    """Two links to one folder and a loop: each file read once, under the first path in sorted order (else 'named
    after no image of the ground truth' is raised for the second path's files)."""
    _, copy, store = _both(tmp_path, _probs, ["probs/part"])
    os.symlink(store / "probs" / "part", copy / "probs" / "zz")  # sorts after part: not read again
    os.symlink(store / "probs" / "part", store / "probs" / "part" / "self")
    os.symlink(copy / "probs", store / "probs" / "part" / "up")
    got = io.read_pixel_probs(copy / "probs", like=semantic_truth(["part/a.png", "part/b.png"]))
    assert [Path(got.source(i)).relative_to(copy).as_posix() for i in range(2)] == ["probs/part/a.npy",
                                                                                     "probs/part/b.npy"]
    os.symlink(store / "probs" / "part", copy / "probs" / "again")  # sorts before part: read there instead
    got = io.read_pixel_probs(copy / "probs", like=semantic_truth(["again/a.png", "again/b.png"]))
    assert [Path(got.source(i)).relative_to(copy).as_posix() for i in range(2)] == ["probs/again/a.npy",
                                                                                     "probs/again/b.npy"]


# -- the walker, against Path.rglob on a tree without linked folders ------------------------------------------------
def test_walker_lists_what_rglob_lists_without_linked_folders(tmp_path: Path) -> None:
    """Same files, same order: hidden files and folders, odd suffixes, a folder named like a file, linked files
    (followed by both), a broken link (no file for both)."""
    from maslow.io._walk import files_under, suffix_of

    names = ["a.png", "B.PNG", ".hidden.png", "x.", ".png", "a.b.png", "sp ace.png", "z.txt", "é.png", "Z.png"]
    for folder in ("", "sub", "sub/deeper", ".hid", "a", "a b", "A"):
        for n in names:
            _text(tmp_path / folder / n, "x")
    (tmp_path / "dir.png").mkdir()
    os.symlink(tmp_path / "a.png", tmp_path / "sub" / "link.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "sub" / "broken.png")
    for suffixes in ((".png",), (".txt", ".png")):
        want = [p.relative_to(tmp_path).parts for p in sorted(tmp_path.rglob("*"))
                if p.is_file() and p.suffix.lower() in suffixes]
        got = files_under(str(tmp_path), lambda name, s=suffixes: suffix_of(name) in s)  # type: ignore[misc]
        assert got == want
    assert suffix_of(".png") == "" and suffix_of("x.") == "" and suffix_of("a.B.PnG") == ".png"


def test_a_folder_that_cannot_be_listed_is_said_not_skipped_silently(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    plain, _, _ = _both(tmp_path, _semantic, ["labels/seq", "labels/more", "images/seq", "images/elsewhere"])
    deny_listing(monkeypatch, plain / "labels" / "more")
    _, report = semantic.parse(plain / "labels")  # in the import report (once: no separate warning)
    found = [i for i in report.issues if i.type == "unreadable_folder"]
    assert len(found) == 1 and found[0].file is not None and str(found[0].file).endswith("labels/more")
    assert "can't be listed" in found[0].message
