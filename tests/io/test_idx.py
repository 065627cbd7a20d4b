"""IDX (MNIST): reading the real test set, writing pairs per split, conversions, bad input."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow import Annotations, Dataset, FormatError, Images, LabelSchema, MaslowWarning, io
from maslow.io import idx, imagefolder
from tests.conftest import shared_path

MNIST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _idx(path: Path, arr: np.ndarray, *, code: int = 0x08, gz: bool = False) -> Path:
    data = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def _pair(folder: Path, n: int = 6, prefix: str = "train") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 5, 4), dtype=np.uint8)
    y = (np.arange(n) % 3).astype(np.uint8)
    _idx(folder / f"{prefix}-images-idx3-ubyte", x)
    _idx(folder / f"{prefix}-labels-idx1-ubyte", y)
    return x, y


def _pixels(ds: Dataset) -> list[tuple[str, bytes]]:
    from maslow.io.images import image_path
    from maslow.io.images import load_path as load_pixels

    return sorted((ds.schema.names[ds.annotations.label[i]], load_pixels(image_path(ds, i)).tobytes())
                  for i in range(ds.n_images))


# -- real data -----------------------------------------------------------------------------------------
def test_mnist_test_set_exact_counts() -> None:
    root = shared_path("mnist_test")
    ds, report = idx.parse(root)
    assert len(report) == 0
    assert (ds.n_images, ds.n_annotations) == (10_000, 10_000)
    assert ds.schema.names == tuple(str(i) for i in range(10)) and ds.schema.task.value == "classification"
    assert np.bincount(ds.annotations.label).tolist() == MNIST_COUNTS
    assert ds.images.path[17] == "images/t10k-images-idx3-ubyte.gz#17"
    assert set(ds.images.width.tolist()) == {28} and set(ds.images.height.tolist()) == {28}
    assert set(ds.images.split.tolist()) == {"test"}
    assert np.isnan(ds.annotations.box).all()
    single = io.read_mnist(root / "images" / "t10k-images-idx3-ubyte.gz")
    assert single.images.path[17] == "t10k-images-idx3-ubyte.gz#17"
    np.testing.assert_array_equal(single.annotations.label, ds.annotations.label)


def test_mnist_to_imagefolder_and_back_keeps_labels_and_pixels(tmp_path: Path) -> None:
    mnist = idx.read_idx(shared_path("mnist_test")).select_images(np.arange(50))
    rep = imagefolder.write(mnist, tmp_path / "folder")
    assert rep.lossless and rep.n_images == 50
    assert (tmp_path / "folder/test/7/t10k-images-idx3-ubyte_000000.png").is_file()
    folder = imagefolder.read_imagefolder(tmp_path / "folder")
    assert _pixels(folder) == _pixels(mnist)
    rep = idx.write(folder, tmp_path / "idx")
    assert rep.lossless
    back = idx.read_idx(tmp_path / "idx")
    assert back.n_images == 50 and set(back.images.split.tolist()) == {"test"}
    assert _pixels(back) == _pixels(mnist)


# -- round trips ---------------------------------------------------------------------------------------
def test_synthetic_pair_splits_and_compression(tmp_path: Path) -> None:
    _pair(tmp_path / "src", prefix="train")
    _pair(tmp_path / "src" / "sub", n=3, prefix="t10k")
    ds, report = idx.parse(tmp_path / "src")
    assert len(report) == 0
    assert ds.images.split.tolist() == ["test"] * 3 + ["train"] * 6  # files in name order: sub/t10k..., train...
    assert ds.images.path[3] == "train-images-idx3-ubyte#0"
    for compress in (True, False):
        out = tmp_path / f"out{compress}"
        idx.write(ds, out, compress=compress)
        sfx = ".gz" if compress else ""
        assert sorted(p.name for p in out.iterdir()) == [
            f"t10k-images-idx3-ubyte{sfx}", f"t10k-labels-idx1-ubyte{sfx}",
            f"train-images-idx3-ubyte{sfx}", f"train-labels-idx1-ubyte{sfx}"]
        back = idx.read_idx(out)
        assert back.images.split.tolist() == ds.images.split.tolist()
        np.testing.assert_array_equal(back.annotations.label, ds.annotations.label)
        assert _pixels(back) == _pixels(ds)


def test_names_option_and_lost_names(tmp_path: Path) -> None:
    _pair(tmp_path / "src")
    ds = idx.read_idx(tmp_path / "src", names=["tshirt", "trouser", "pullover"])
    assert ds.schema.names == ("tshirt", "trouser", "pullover")
    rep = idx.write(ds, tmp_path / "out")
    assert rep.lost["class_names"] == 3
    with pytest.raises(FormatError, match="names must cover every label"):
        idx.parse(tmp_path / "src", names=["a"])


def test_images_without_labels(tmp_path: Path) -> None:
    _idx(tmp_path / "images-idx3-ubyte", np.zeros((2, 3, 3), np.uint8))
    ds, report = idx.parse(tmp_path)
    assert report.counts() == {"idx_no_labels": 1} and ds.n_annotations == 0 and ds.images.split.tolist() == ["", ""]
    with pytest.warns(MaslowWarning, match="idx_no_labels"):
        idx.read_idx(tmp_path)
    idx.write(ds, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["images-idx3-ubyte.gz"]
    labels = _idx(tmp_path / "elsewhere" / "y.idx1", np.array([1, 2], np.uint8))
    ds = idx.read_idx(tmp_path / "images-idx3-ubyte", labels=labels)
    assert ds.annotations.label.tolist() == [1, 2]


# -- what can't be written ---------------------------------------------------------------------------
def _folder_ds(tmp_path: Path, sizes: list[tuple[int, int]], mode: str = "L") -> Dataset:
    paths = []
    for k, (w, h) in enumerate(sizes):
        Image.new(mode, (w, h), (k * 40, 0, 0) if mode == "RGB" else k * 40).save(tmp_path / f"{k}.png")
        paths.append(f"{k}.png")
    n = len(sizes)
    return Dataset(schema=LabelSchema.from_names(["0", "1"], task="classification"),
                   images=Images(path=paths, width=[w for w, _ in sizes], height=[h for _, h in sizes]),
                   annotations=Annotations(image=np.arange(n), label=np.zeros(n, int)), root=tmp_path)


def test_write_refuses_mixed_sizes_colour_and_multilabel(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"1\.png, images\[1\]: IDX images must all have the same size"):
        idx.write(_folder_ds(tmp_path, [(4, 4), (5, 4)]), tmp_path / "o")
    (tmp_path / "rgb").mkdir()
    with pytest.raises(FormatError, match="must be greyscale"):
        idx.write(_folder_ds(tmp_path / "rgb", [(4, 4), (4, 4)], mode="RGB"), tmp_path / "o")
    ds = _folder_ds(tmp_path, [(4, 4), (4, 4)])
    two = ds.replace(annotations=Annotations(image=[0, 0, 1], label=[0, 1, 1]))
    with pytest.raises(FormatError, match=r"images\[1\]: IDX needs exactly one label per image, got 0"):
        idx.write(two.replace(annotations=Annotations(image=[0], label=[1])), tmp_path / "o")
    with pytest.raises(FormatError, match="got 2"):
        idx.write(two, tmp_path / "o")
    assert not (tmp_path / "o").exists()


# -- bad input -----------------------------------------------------------------------------------------
def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="must hold an IDX images file"):
        idx.parse(tmp_path)
    with pytest.raises(FormatError, match="not found"):
        idx.parse(tmp_path / "nope")
    bad = tmp_path / "a" / "train-images-idx3-ubyte"
    bad.parent.mkdir()
    bad.write_bytes(b"\x01\x02\x08\x03")
    with pytest.raises(FormatError, match="train-images-idx3-ubyte, header: IDX magic number"):
        idx.parse(bad)
    good = _idx(tmp_path / "b" / "train-images-idx3-ubyte", np.zeros((4, 2, 2), np.uint8))
    good.write_bytes(good.read_bytes()[:-3])
    with pytest.raises(FormatError, match="IDX body must hold 16 bytes"):
        idx.parse(good)
    _idx(tmp_path / "c" / "train-images-idx3-ubyte", np.zeros((4, 2, 2), np.uint8))
    _idx(tmp_path / "c" / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(FormatError, match=r"train-labels-idx1-ubyte, header: labels must be \(4,\) integers"):
        idx.parse(tmp_path / "c")
    _idx(tmp_path / "d" / "train-images-idx3-ubyte", np.zeros((4, 2), np.uint8))
    with pytest.raises(FormatError, match=r"3-D \(n, height, width\)"):
        idx.parse(tmp_path / "d")


def test_import_checks_open_idx_members() -> None:
    imported = io.import_dataset(shared_path("mnist_test"), "mnist")
    assert imported.report.counts() == {}


# -- randomized checks (every IDX type, 1-3 dims, against numpy) ------------------------------------------
_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@pytest.mark.parametrize("code", sorted(_TYPES))
def test_every_type_and_rank_reads_as_numpy_big_endian(tmp_path: Path, code: int) -> None:
    from maslow.io.images import load_path, read_idx

    rng = np.random.default_rng(code)
    dt = np.dtype(_TYPES[code])
    for ndim, gz in ((1, False), (2, True), (3, False), (3, True)):
        shape = tuple(int(s) for s in rng.integers(1, 5, ndim))
        arr = (rng.standard_normal(shape) * 1e3 if dt.kind == "f" else
               rng.integers(np.iinfo(dt).min, int(np.iinfo(dt).max) + 1, shape)).astype(dt)
        name = f"r{ndim}{gz}-images-idx3-ubyte" + (".gz" if gz else "")
        got = read_idx(_idx(tmp_path / name, arr, code=code, gz=gz))
        assert got.dtype == dt and got.shape == shape and np.array_equal(got, arr)
        assert got.tobytes() == arr.tobytes()  # big-endian bytes, as in the file
        if ndim == 3:
            y = np.arange(shape[0], dtype=np.uint8)
            _idx(tmp_path / name.replace("images", "labels").replace("idx3", "idx1"), y, gz=gz)
            ds, report = idx.parse(tmp_path / name)
            assert len(report) == 0 and ds.annotations.label.tolist() == y.tolist()
            for i in range(shape[0]):  # member file#i is image i
                assert np.array_equal(load_path(tmp_path / f"{name}#{i}"), arr[i])
            idx.write(ds, tmp_path / f"out{ndim}{gz}", compress=not gz)
            back = idx.read_idx(tmp_path / f"out{ndim}{gz}")
            assert [load_path(tmp_path / f"out{ndim}{gz}" / p).tobytes() for p in back.images.path.tolist()] == \
                [a.tobytes() for a in arr]
        data = (tmp_path / name).read_bytes()
        (tmp_path / "cut-images-idx3-ubyte").write_bytes((gzip.decompress(data) if gz else data)[:-1])
        with pytest.raises(FormatError, match=r"cut-images-idx3-ubyte: IDX body must hold"):
            read_idx(tmp_path / "cut-images-idx3-ubyte")
