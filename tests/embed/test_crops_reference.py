"""embed_crops against an independent Pillow crop of the same box: rounding, clipping, empty boxes, EXIF
orientation and every image mode (the reference decodes each file with Pillow itself)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.embed.crops import CROP_DIM, embed_crops
from maslow.embed.light import hog
from maslow.errors import MaslowError


def _reference_rgb(path: Path) -> Image.Image:
    """The displayed picture as RGB, decoded by Pillow directly; 16-bit grey scaled 0-65535 -> 0-255."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I", "I;16"):
            a = np.asarray(im).astype(np.float64)
            return Image.fromarray(np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8)).convert("RGB")
        return im.convert("RGB")


def _reference(path: Path, box: list[float], *, size: int = 64, margin: float = 0.1) -> np.ndarray:
    """(144,) features of one box, cut with Pillow's own crop; NaN when the box is empty or outside."""
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        return np.full(CROP_DIM, np.nan, np.float32)
    im = _reference_rgb(path)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    c = (max(0, math.floor(x1 - mx)), max(0, math.floor(y1 - my)),
         min(im.width, math.ceil(x2 + mx)), min(im.height, math.ceil(y2 + my)))
    if c[2] <= c[0] or c[3] <= c[1]:
        return np.full(CROP_DIM, np.nan, np.float32)
    grey = np.asarray(im.crop(c).convert("L").resize((size, size), Image.Resampling.BILINEAR), np.float32)
    v = np.sqrt(hog(grey))
    return (v / (np.linalg.norm(v) + 1e-12)).astype(np.float32)


def _dataset(folder: Path, names: list[str], boxes: list[list[float]]) -> Dataset:
    sizes = []
    for n in names:
        with Image.open(folder / n) as im:
            sizes.append(im.size)
    image = [i for i in range(len(names)) for _ in boxes]
    return Dataset(LabelSchema.from_names(["x"]),
                   Images(path=names, width=[s[0] for s in sizes], height=[s[1] for s in sizes]),
                   Annotations(image=image, label=[0] * len(image), box=boxes * len(names)), root=folder)


_BOXES = [
    [5.0, 4.0, 31.0, 27.0],      # whole pixels
    [5.4, 3.6, 30.2, 27.9],      # fractional: floor / ceil outwards
    [-12.0, -7.5, 14.3, 12.0],   # partly outside (top left)
    [40.0, 20.0, 75.0, 55.0],    # partly outside (bottom right)
    [0.0, 0.0, 60.0, 40.0],      # the whole image
    [70.0, 50.0, 90.0, 60.0],    # wholly outside
    [10.5, 3.0, 10.5, 20.0],     # zero width at a fractional x
    [10.0, 8.5, 25.0, 8.5],      # zero height at a fractional y
    [12.0, 12.0, 12.0, 12.0],    # a point
    [20.0, 10.0, 20.7, 30.0],    # thinner than a pixel, not empty
]


def _picture() -> np.ndarray:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    a[8:30, 10:40] //= 3  # some structure so the HOG is not flat noise
    return a


@pytest.mark.parametrize("margin", [0.0, 0.1, 0.5])
def test_crops_match_a_pillow_crop_of_the_same_box(tmp_path: Path, margin: float) -> None:
    Image.fromarray(_picture()).save(tmp_path / "rgb.png")
    ds = _dataset(tmp_path, ["rgb.png"], _BOXES)
    got = embed_crops(ds, margin=margin)
    want = np.stack([_reference(tmp_path / "rgb.png", b, margin=margin) for b in _BOXES])
    np.testing.assert_array_equal(np.isnan(got).all(1), np.isnan(want).all(1))
    np.testing.assert_allclose(got, want, atol=1e-6, equal_nan=True)


def test_empty_boxes_are_nan_wherever_they_lie(tmp_path: Path) -> None:
    # the docstring's promise: an empty box has no crop, also when rounding outwards would give one pixel
    Image.fromarray(_picture()).save(tmp_path / "rgb.png")
    ds = _dataset(tmp_path, ["rgb.png"], _BOXES[6:9])
    for margin in (0.0, 0.1):
        assert np.isnan(embed_crops(ds, margin=margin)).all()


@pytest.mark.parametrize("name,convert", [
    pytest.param("l.png", lambda im: im.convert("L"), id="grey"),
    pytest.param("rgba.png", lambda im: im.convert("RGBA"), id="rgba"),
    pytest.param("la.png", lambda im: im.convert("LA"), id="grey-alpha"),
    pytest.param("p.png", lambda im: im.convert("P", palette=Image.Palette.ADAPTIVE, colors=37), id="palette"),
    pytest.param("p.gif", lambda im: im.convert("P"), id="palette-gif"),
    pytest.param("one.png", lambda im: im.convert("1"), id="1-bit"),
    pytest.param("i16.png", lambda im: Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257),
                 id="16-bit"),
    pytest.param("i32.tif", lambda im: Image.fromarray(np.asarray(im.convert("L")).astype(np.int32) * 257),
                 id="32-bit"),
    pytest.param("cmyk.jpg", lambda im: im.convert("CMYK"), id="cmyk-jpeg"),
    pytest.param("rgb.jpg", lambda im: im, id="jpeg"),
])
def test_every_image_mode_matches_pillow(tmp_path: Path, name: str, convert: object) -> None:
    convert(Image.fromarray(_picture())).save(tmp_path / name)  # type: ignore[operator]
    boxes = _BOXES[:5]
    got = embed_crops(_dataset(tmp_path, [name], boxes))
    want = np.stack([_reference(tmp_path / name, b) for b in boxes])
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_sixteen_bit_and_palette_crops_show_the_picture_not_raw_values(tmp_path: Path) -> None:
    # a 16-bit grey image is the 8-bit one scaled by 257, and a palette image shows its colours, not its indexes:
    # all three crop to the same features as the plain grey image
    grey = np.asarray(Image.fromarray(_picture()).convert("L"))
    Image.fromarray(grey).save(tmp_path / "g8.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    pal = Image.fromarray(grey).convert("P")  # grey through a 256-entry palette: lossless, but indexes != values
    pal.putpalette([v for i in range(256) for v in (255 - i,) * 3])
    pal = pal.point(lambda i: 255 - i)
    pal.save(tmp_path / "pal.png")
    with Image.open(tmp_path / "pal.png") as im:
        assert np.array_equal(np.asarray(im.convert("L")), grey)
        assert not np.array_equal(np.asarray(im), grey)  # its indexes differ from its greys
    f = embed_crops(_dataset(tmp_path, ["g8.png", "g16.png", "pal.png"], _BOXES[:2]))
    np.testing.assert_array_equal(f[2:4], f[0:2])
    np.testing.assert_array_equal(f[4:6], f[0:2])


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif"])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_boxes_are_cut_from_the_displayed_image(tmp_path: Path, suffix: str, orientation: int) -> None:
    # the file stores the picture turned; its EXIF tag turns it back. Boxes are drawn on the displayed picture.
    shown = _picture()
    undo = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    stored = Image.fromarray(shown).transpose(undo[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    name = f"turned{suffix}"
    stored.save(tmp_path / name, exif=exif.tobytes(), **({"quality": 95} if suffix == ".jpg" else {}))
    assert _reference_rgb(tmp_path / name).size == (60, 40)
    ds = Dataset(LabelSchema.from_names(["x"]), Images(path=[name], width=[60], height=[40]),
                 Annotations(image=[0] * 5, label=[0] * 5, box=_BOXES[:5]), root=tmp_path)
    got = embed_crops(ds)
    want = np.stack([_reference(tmp_path / name, b) for b in _BOXES[:5]])
    np.testing.assert_allclose(got, want, atol=1e-6)
    if suffix != ".jpg":  # lossless: the same features as the picture saved upright
        Image.fromarray(shown).save(tmp_path / f"upright{suffix}")
        up = Dataset(ds.schema, Images(path=[f"upright{suffix}"], width=[60], height=[40]), ds.annotations,
                     root=tmp_path)
        np.testing.assert_array_equal(got, embed_crops(up))


def test_unreadable_and_missing_images_give_nan_rows_and_others_still_embed(tmp_path: Path) -> None:
    Image.fromarray(_picture()).save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    raw = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(raw[: len(raw) // 2])
    names = ["bad.png", "cut.png", "missing.png", "ok.png"]
    ds = Dataset(LabelSchema.from_names(["x"]), Images(path=names, width=[60] * 4, height=[40] * 4),
                 Annotations(image=[0, 1, 2, 3], label=[0] * 4, box=[_BOXES[0]] * 4), root=tmp_path)
    f = embed_crops(ds)
    assert np.isnan(f[:3]).all() and not np.isnan(f[3]).any()


def test_annotations_without_a_box_are_nan(tmp_path: Path) -> None:
    Image.fromarray(_picture()).save(tmp_path / "ok.png")
    ds = Dataset(LabelSchema.from_names(["x"]), Images(path=["ok.png"], width=[60], height=[40]),
                 Annotations(image=[0, 0], label=[0, 0], box=[[np.nan] * 4, _BOXES[0]]), root=tmp_path)
    f = embed_crops(ds)
    assert np.isnan(f[0]).all() and not np.isnan(f[1]).any()


def test_a_crop_size_below_one_is_refused(tmp_path: Path) -> None:
    Image.fromarray(_picture()).save(tmp_path / "ok.png")
    ds = _dataset(tmp_path, ["ok.png"], _BOXES[:1])
    for bad in (0, -3):
        with pytest.raises(MaslowError, match=f"size must be >= 1, got {bad}"):
            embed_crops(ds, size=bad)
