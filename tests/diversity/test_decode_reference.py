"""Greyscale decoding for statistics and hashing (``open_grey``) and the selection quality gate, against Pillow and
numpy run directly; damaged, missing and oversized files are FormatErrors that say what is wrong, and the gate
reports them."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.diversity._decode import open_grey
from maslow.diversity._gate import image_quality_flags
from maslow.errors import FormatError


def _grey() -> np.ndarray:
    rng = np.random.default_rng(0)
    g = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    g[5:30, 10:35] //= 3
    return g


def _pillow_grey(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


@pytest.mark.parametrize("name,make", [
    pytest.param("l.png", lambda g: Image.fromarray(g), id="grey"),
    pytest.param("rgb.png", lambda g: Image.fromarray(np.stack([g, g // 2, 255 - g], -1)), id="rgb"),
    pytest.param("rgba.png", lambda g: Image.fromarray(np.stack([g, g // 2, 255 - g, g], -1)), id="rgba"),
    pytest.param("p.png", lambda g: Image.fromarray(np.stack([g, g // 2, 255 - g], -1)).convert("P"), id="palette"),
    pytest.param("one.png", lambda g: Image.fromarray(g).convert("1"), id="1-bit"),
    pytest.param("cmyk.tif", lambda g: Image.fromarray(np.stack([g, g // 2, 255 - g], -1)).convert("CMYK"),
                 id="cmyk"),
])
def test_grey_levels_are_pillows(tmp_path: Path, name: str, make: object) -> None:
    make(_grey()).save(tmp_path / name)  # type: ignore[operator]
    im, w, h = open_grey(tmp_path / name, 16)
    with im:
        np.testing.assert_array_equal(np.asarray(im), _pillow_grey(tmp_path / name))
    assert (w, h) == (60, 40)


@pytest.mark.parametrize("name,dtype", [("g16.png", np.uint16), ("g32.tif", np.int32)])
def test_16_and_32_bit_images_are_scaled_not_clipped(tmp_path: Path, name: str, dtype: type) -> None:
    # 0-65535 scaled to 0-255 (as the light embedder): the 8-bit picture times 257 decodes to the 8-bit picture
    g = _grey()
    Image.fromarray(g.astype(dtype) * 257).save(tmp_path / name)
    im, w, h = open_grey(tmp_path / name, 16)
    with im:
        np.testing.assert_array_equal(np.asarray(im), g)
    assert (w, h) == (60, 40)


def test_jpeg_draft_is_at_least_the_requested_size_and_close_to_a_full_decode(tmp_path: Path) -> None:
    g = np.kron(_grey(), np.ones((8, 8), np.uint8))  # 320 x 480, smooth at the 1/8 scale
    Image.fromarray(g).save(tmp_path / "big.jpg", quality=95)
    for side in (16, 40, 100, 320):
        im, w, h = open_grey(tmp_path / "big.jpg", side)
        with im:
            assert (w, h) == (480, 320) and min(im.size) >= min(side, 320)
            full = Image.fromarray(_pillow_grey(tmp_path / "big.jpg")).resize(im.size, Image.Resampling.BOX)
            assert np.abs(np.asarray(im, float) - np.asarray(full, float)).mean() < 4


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_exif_orientation_is_not_applied(tmp_path: Path, suffix: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_grey()).save(tmp_path / f"turned{suffix}", exif=exif.tobytes())
    im, w, h = open_grey(tmp_path / f"turned{suffix}", 64)
    with im:
        assert im.size == (w, h) == (60, 40)  # the stored grid
        np.testing.assert_array_equal(np.asarray(im), _pillow_grey(tmp_path / f"turned{suffix}"))


def _damaged(folder: Path) -> dict[str, Path]:
    Image.fromarray(_grey()).save(folder / "ok.png")
    Image.fromarray(_grey()).save(folder / "ok.jpg")
    out = {}
    for src in ("ok.png", "ok.jpg"):
        raw = (folder / src).read_bytes()
        out[f"cut{src[2:]}"] = folder / f"cut{src[2:]}"
        out[f"cut{src[2:]}"].write_bytes(raw[: len(raw) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_bytes(b"hello, not an image")
    return {**out, "empty.png": folder / "empty.png", "text.jpg": folder / "text.jpg"}


def test_damaged_and_missing_files_are_format_errors_naming_the_file(tmp_path: Path) -> None:
    for name, path in {**_damaged(tmp_path), "missing.png": tmp_path / "missing.png"}.items():
        with pytest.raises(FormatError) as err:
            open_grey(path, 16)
        assert err.value.path == str(path), name


def test_an_oversized_image_says_so_once(tmp_path: Path) -> None:
    # the size check raises a FormatError inside the decode's try block: it must not be re-wrapped as "unreadable"
    Image.fromarray(_grey()).save(tmp_path / "ok.png")
    with pytest.raises(FormatError) as err:
        open_grey(tmp_path / "ok.png", 16, max_pixels=100)
    msg = str(err.value)
    assert "at most 100 pixels, got 60x40" in msg
    assert "unreadable" not in msg and msg.count(str(tmp_path / "ok.png")) == 1


def _idx(path: Path, arr: np.ndarray) -> None:
    path.write_bytes(bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes())


def test_idx_members_and_a_member_past_the_end(tmp_path: Path) -> None:
    arr = np.random.default_rng(1).integers(0, 256, (3, 28, 20), dtype=np.uint8)
    _idx(tmp_path / "t-idx3-ubyte", arr)
    im, w, h = open_grey(tmp_path / "t-idx3-ubyte#2", 16)
    np.testing.assert_array_equal(np.asarray(im), arr[2])
    assert (w, h) == (20, 28)
    with pytest.raises(FormatError, match="member must be < 3, got 3"):
        open_grey(tmp_path / "t-idx3-ubyte#3", 16)


# -- the quality gate ----------------------------------------------------------------------------------------


def _reference_flags(paths: list[Path], *, min_std: float = 4.0, blur_factor: float = 0.05) -> dict[int, str]:
    """The gate's docstring computed directly: 64x64 bilinear RGB, BT.601 grey, std and Laplacian variance."""
    flags: dict[int, str] = {}
    sharp = {}
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                rgb = np.asarray(im.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR), np.float64)
        except (OSError, SyntaxError, ValueError):
            flags[i] = "unreadable"
            continue
        g = rgb @ np.array([0.299, 0.587, 0.114])
        if g.std() < min_std:
            flags[i] = "blank"
            continue
        lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
        sharp[i] = lap.var()
    if len(sharp) >= 5:
        med = float(np.median(list(sharp.values())))
        flags.update({i: "blurry" for i, v in sharp.items() if v < blur_factor * med})
    return flags


def test_gate_matches_its_docstring_and_reports_unreadable_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    names = []
    for i in range(8):  # sharp noise pictures
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(tmp_path / f"sharp{i}.png")
        names.append(f"sharp{i}.png")
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(tmp_path / "blank.png")
    near = np.full((48, 64, 3), 120, np.uint8)
    near[::7, ::5] = 126  # a faint pattern: std below 4
    Image.fromarray(near).save(tmp_path / "nearly_blank.png")
    ramp = np.tile(np.linspace(0, 255, 64), (48, 1)).astype(np.uint8)
    Image.fromarray(np.stack([ramp] * 3, -1)).save(tmp_path / "blurry.png")  # a smooth ramp: no edges
    names += ["blank.png", "nearly_blank.png", "blurry.png"]
    damaged = _damaged(tmp_path)
    names += [p.name for p in damaged.values()] + ["missing.png"]
    ds = Dataset(LabelSchema.from_names(["x"]),
                 Images(path=names, width=[64] * len(names), height=[48] * len(names)), Annotations.empty(),
                 root=tmp_path)
    got = image_quality_flags(ds)
    want = _reference_flags([tmp_path / n for n in names])
    assert {names[i]: want[i] for i in (8, 9, 10)} == {"blank.png": "blank", "nearly_blank.png": "blank",
                                                        "blurry.png": "blurry"}
    assert {i: r.split(":")[0] for i, r in got.items()} == want
    for i, n in enumerate(names):
        if want.get(i) == "unreadable":
            assert n in got[i]  # the reason names the file
    assert {names[i] for i, r in want.items() if r == "unreadable"} == {*[p.name for p in damaged.values()],
                                                                        "missing.png"}
