"""Image folders with links: linked folders and files followed, each real folder once, broken links and folders that
can't be listed said (``find_images`` used ``Path.rglob``, which on Python 3.11 does not enter linked folders: a
folder made of links to other disks read as empty)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.diversity.select import folder_dataset
from maslow.errors import FormatError, MaslowWarning
from maslow.io import imagefolder
from maslow.io.images import IMAGE_SUFFIXES, find_images, list_images
from tests.helpers import deny_listing, run_cli_streams


def _png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def linked(tmp_path: Path) -> Path:
    """``data/real`` (2 images) and ``data/linked -> elsewhere/frames`` (3 images), as a dataset whose folders
    live on another disk."""
    for k in range(3):
        _png(tmp_path / "elsewhere" / "frames" / f"f{k}.png", k)
    for k in range(2):
        _png(tmp_path / "data" / "real" / f"r{k}.png", 10 + k)
    os.symlink(tmp_path / "elsewhere" / "frames", tmp_path / "data" / "linked")
    return tmp_path / "data"


def test_linked_folders_are_followed(linked: Path) -> None:
    assert [p.relative_to(linked).as_posix() for p in find_images(linked)] == [
        "linked/f0.png", "linked/f1.png", "linked/f2.png", "real/r0.png", "real/r1.png"]


def test_a_folder_made_only_of_links_is_not_empty(tmp_path: Path, linked: Path) -> None:
    only = tmp_path / "only"
    only.mkdir()
    os.symlink(linked / "linked", only / "cam1")
    os.symlink(linked / "real", only / "cam2")
    ds = folder_dataset(only)
    assert ds.images.path.tolist() == ["cam1/f0.png", "cam1/f1.png", "cam1/f2.png", "cam2/r0.png", "cam2/r1.png"]
    assert ds.images.extra["sequence"].tolist() == ["cam1"] * 3 + ["cam2"] * 2
    assert (ds.images.width == 40).all()


def test_embed_and_select_count_the_images_behind_links(tmp_path: Path, linked: Path) -> None:
    code, out, err = run_cli_streams(["embed", str(linked), "--embedder", "light", "--no-cache", "-o",
                                      str(tmp_path / "f.npy"), "--json"])
    assert code == 0, err
    assert json.loads(out)["n_images"] == 5 and np.load(tmp_path / "f.npy").shape == (5, 256)
    code, out, err = run_cli_streams(["select", str(linked), "--budget", "2", "--embedder", "light", "--no-cache",
                                      "--json"])
    assert code == 0, err
    assert json.loads(out)["n_images"] == 5


def test_a_linked_file_is_followed(tmp_path: Path, linked: Path) -> None:
    os.symlink(linked / "real" / "r0.png", linked / "alias.png")
    assert (linked / "alias.png") in find_images(linked)


def test_a_link_to_a_parent_is_walked_once_without_error(tmp_path: Path, linked: Path) -> None:
    os.symlink(linked, linked / "real" / "up")  # real/up/real/up/... forever
    os.symlink(linked / "real", linked / "zz_again")  # a second path to a folder already walked
    with_loop = [p.relative_to(linked).as_posix() for p in find_images(linked)]
    assert with_loop == ["linked/f0.png", "linked/f1.png", "linked/f2.png", "real/r0.png", "real/r1.png"]


def test_a_folder_reached_twice_is_listed_under_its_own_path(tmp_path: Path) -> None:
    _png(tmp_path / "store" / "a.png")
    os.symlink(tmp_path / "store", tmp_path / "a_link")  # sorts before "store": adding it changes no path
    assert find_images(tmp_path) == [tmp_path / "store" / "a.png"]
    _png(tmp_path / "elsewhere" / "deep" / "b.png")
    os.symlink(tmp_path / "elsewhere" / "deep", tmp_path / "store" / "b_link")  # only reached through links first
    os.symlink(tmp_path / "store" / "b_link", tmp_path / "a_link2")
    assert find_images(tmp_path) == [tmp_path / "elsewhere" / "deep" / "b.png", tmp_path / "store" / "a.png"]


def test_broken_links_are_said_and_one_named_like_an_image_is_kept_unreadable(tmp_path: Path, linked: Path) -> None:
    os.symlink(tmp_path / "unmounted" / "train", linked / "train")  # a disk that is not mounted
    os.symlink(tmp_path / "gone.png", linked / "real" / "gone.png")
    with pytest.warns(MaslowWarning, match=r"1 broken link \(target missing\) skipped: .*train"):
        files = find_images(linked)
    assert linked / "real" / "gone.png" in files
    with pytest.warns(MaslowWarning, match="broken link"):
        ds = folder_dataset(linked)
    row = ds.images.path.tolist().index("real/gone.png")
    assert ds.images.width[row] == 0  # unreadable, as any image that can't be read: the gate holds it back


def test_a_folder_that_cannot_be_listed_is_said(tmp_path: Path, linked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = linked / "real"
    deny_listing(monkeypatch, locked)
    got = list_images(linked)
    assert [p.name for p in got.images] == ["f0.png", "f1.png", "f2.png"]
    assert got.unlisted == [(locked, "Permission denied")]
    with pytest.warns(MaslowWarning, match=r"1 folder could not be listed and was skipped \(first: .*real"):
        find_images(linked)
    monkeypatch.setattr(os, "scandir", lambda path: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    with pytest.raises(FormatError, match="folder can't be listed: Permission denied"):
        find_images(linked)


def test_listing_matches_a_followlinks_walk_of_real_folders(tmp_path: Path) -> None:
    """Reference: ``os.walk(followlinks=True)``, each real folder (``realpath``) walked once, on random trees of
    folders, files and links (to folders, to files, to parents)."""
    rng = np.random.default_rng(7)
    for trial in range(20):
        root = tmp_path / f"t{trial}"
        folders = [root]
        root.mkdir()
        for k in range(int(rng.integers(2, 8))):
            parent = folders[int(rng.integers(len(folders)))]
            kind = rng.integers(4)
            if kind == 0:
                folders.append(parent / f"d{k}")
                folders[-1].mkdir()
            elif kind == 1:
                (parent / f"i{k}{rng.choice(['.png', '.JPG', '.txt', '.jpeg'])}").write_bytes(b"x")
            elif kind == 2:
                os.symlink(folders[int(rng.integers(len(folders)))], parent / f"l{k}")
            else:
                os.symlink(root / f"i{k}.png", parent / f"s{k}.png")  # often dangling
        # every folder reached without a link first; then each linked folder, the first in sorted order first
        seen: set[str] = set()
        ref: list[Path] = []
        pending = [root]
        while pending:
            pending.sort(key=lambda p: p.relative_to(root).parts)
            top = pending.pop(0)
            for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
                real = os.path.realpath(dirpath)
                dirnames.sort()
                if real in seen:
                    dirnames[:] = []
                    continue
                seen.add(real)
                pending += [Path(dirpath) / d for d in dirnames if os.path.islink(Path(dirpath) / d)]
                ref += [Path(dirpath) / f for f in filenames if Path(f).suffix.lower() in IMAGE_SUFFIXES]
        assert find_images(root) == sorted(ref), trial


def test_class_folders_report_broken_links_and_folders_that_cannot_be_listed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _png(tmp_path / "cat" / "a.png")
    _png(tmp_path / "dog" / "deep" / "b.png")
    os.symlink(tmp_path / "nowhere", tmp_path / "cat" / "more")
    deny_listing(monkeypatch, tmp_path / "dog" / "deep")
    ds, report = imagefolder.parse(tmp_path)
    assert ds.images.path.tolist() == ["cat/a.png"]
    kinds = {(i.type, i.severity, i.file) for i in report.issues}
    assert kinds == {("broken_link", "warning", "cat/more"), ("unreadable_folder", "error", "dog/deep")}
