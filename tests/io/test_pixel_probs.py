"""``maslow.io.read_pixel_probs``: a semantic model's per-pixel probability files, one per image, matched to the
images by path or stem and read only when indexed; every file that can't be used is refused, named."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest

import maslow.io.pixel_probs
from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError


def _truth(paths: list[str], labelled: list[bool] | None = None, crowd: list[bool] | None = None) -> Dataset:
    """Images ``paths`` (4 x 6), each with one whole-image annotation where ``labelled`` (crowd where ``crowd``)."""
    from maslow.core import masks as M

    n = len(paths)
    labelled = [True] * n if labelled is None else labelled
    crowd = [False] * n if crowd is None else crowd
    rows = [i for i in range(n) if labelled[i]]
    mask = obj_array([M.encode(np.ones((4, 6), bool)) for _ in rows])
    return Dataset(LabelSchema.from_names(["a", "b"], task=Task.SEMANTIC_SEGMENTATION),
                   Images(path=obj_array(paths), width=np.full(n, 6), height=np.full(n, 4)),
                   Annotations(image=np.asarray(rows, np.int64), label=np.zeros(len(rows), np.int64), mask=mask,
                               iscrowd=np.asarray([crowd[i] for i in rows], bool)))


def _p(v: float) -> np.ndarray:
    return np.stack([np.full((4, 6), v), np.full((4, 6), 1 - v)]).astype(np.float32)


def test_exported_from_io_and_kept_where_it_was() -> None:
    from maslow.quality.consensus import read_pixel_probs as old_home

    assert "read_pixel_probs" in io.__all__
    assert io.read_pixel_probs is maslow.io.pixel_probs.read_pixel_probs is old_home


def test_files_named_by_path_or_stem_read_when_indexed(tmp_path: Path) -> None:
    truth = _truth(["seq_a/0001.png", "seq_b/0001.png", "images/x.jpg", "y.png"])
    (tmp_path / "seq_a").mkdir()
    (tmp_path / "seq_b").mkdir()
    np.save(tmp_path / "seq_a" / "0001.npy", _p(0.1))  # its path, suffix replaced (the stem is not unique)
    np.savez(tmp_path / "seq_b" / "0001.npz", other=_p(0.2))  # one array, any name
    np.savez(tmp_path / "x.npz", probs=_p(0.3), extra=np.zeros(3))  # the one named probs; stem (unique) alone
    np.save(tmp_path / "y.npy", _p(0.4).astype(np.float16))
    probs = io.read_pixel_probs(tmp_path, like=truth)
    assert len(probs) == 4
    assert [float(probs[i][0, 0, 0]) for i in range(4)] == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=1e-3)
    assert probs[3].dtype == np.float16  # as stored: the scorer checks and converts
    assert Path(probs.source(2)).name == "x.npz" and [a.shape for a in probs[1:3]] == [(2, 4, 6)] * 2
    (tmp_path / "y.npy").unlink()  # read when indexed, not before
    with pytest.raises(FormatError, match=r"y\.npy"):
        probs[3]


def test_images_without_labels_need_no_file(tmp_path: Path) -> None:
    truth = _truth(["a.png", "b.png", "c.png"], labelled=[True, False, True], crowd=[False, False, True])
    np.save(tmp_path / "a.npy", _p(0.5))
    probs = io.read_pixel_probs(tmp_path, like=truth)  # b: no annotation; c: a crowd (void) region only
    assert probs[0].shape == (2, 4, 6)
    with pytest.raises(FormatError, match="image row 1: has no probability file"):
        probs[1]
    assert probs.source(2).endswith("(image row 2)")


@pytest.mark.parametrize(("files", "match"), [
    pytest.param({"a.npy": "p", "b.npy": "p", "c.npy": "p"}, r"named after an image.*'c.npy' \(1 such files\)",
                 id="unknown-file"),
    pytest.param({"a.npy": "p"}, r"got none for image 'b.png' \(expected 'b.npy'; 1 such images\)", id="no-file"),
    pytest.param({"a.npy": "p", "a.npz": "p", "b.npy": "p"}, "one probability file per image, got a.npy and a.npz",
                 id="two-files"),
])
def test_folders_that_do_not_match_the_images_are_refused(tmp_path: Path, files: dict[str, str],
                                                          match: str) -> None:
    for name in files:
        (np.savez if name.endswith(".npz") else np.save)(tmp_path / name, _p(0.5))
    with pytest.raises(FormatError, match=match):
        io.read_pixel_probs(tmp_path, like=_truth(["a.png", "b.png"]))


def test_unreadable_files_are_refused_naming_them(tmp_path: Path) -> None:
    truth = _truth(["a.png", "b.png"])
    (tmp_path / "a.npy").write_bytes(b"not numpy")
    np.savez(tmp_path / "b.npz", one=_p(0.5), two=_p(0.5))
    probs = io.read_pixel_probs(tmp_path, like=truth)
    with pytest.raises(FormatError, match=r"a\.npy.*must be a numpy .npy/.npz array file"):
        probs[0]
    with pytest.raises(FormatError, match=r"b\.npz.*one array or one named 'probs', got \['one', 'two'\]"):
        probs[1]
    with pytest.raises(FormatError, match="must be a folder"):
        io.read_pixel_probs(tmp_path / "a.npy", like=truth)


def test_doctests() -> None:
    failures, tried = doctest.testmod(maslow.io.pixel_probs)
    assert tried and not failures


def test_every_lazy_reader_and_writer_is_in_all() -> None:
    """``__all__`` spells out the lazily imported names (a type checker can't evaluate ``*_LAZY``: ``from maslow.io
    import read_coco`` was "not explicitly exported" under mypy's no_implicit_reexport), and each one resolves."""
    import maslow.io as mio

    assert set(mio._LAZY) <= set(mio.__all__)
    assert all(callable(getattr(mio, name)) for name in mio._LAZY)
