"""The PNG decoder of the COCO panoptic reader (``maslow._native.png``): pixels equal to Pillow's, byte for byte, on
PNGs written with every filter type and zlib strategy (and by Pillow, and by OpenCV where installed), grey, palette,
RGB and RGBA; segments equal to the numpy path's; and damaged or unusual files read exactly as without the kernel
(the same segments, or the same error)."""

from __future__ import annotations

import io as pyio
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from maslow._native import load
from maslow.errors import FormatError
from maslow.io import _coco_panoptic_png as png
from maslow.io.images import MAX_PIXELS

K: Any = load("png")
needs_kernel = pytest.mark.skipif(K is None, reason="the png kernel is not built")

# colour type -> (samples a pixel, Pillow mode)
COLOUR = {0: (1, "L"), 2: (3, "RGB"), 3: (1, "P"), 4: (2, "LA"), 6: (4, "RGBA")}


def chunk(cid: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + cid + body + struct.pack(">I", zlib.crc32(cid + body))


def paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    a, b, c = (v.astype(np.int16) for v in (a, b, c))
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c)).astype(np.uint8)


def filtered(px: np.ndarray, filters: list[int]) -> bytes:
    """The rows of (h, w, c) uint8 pixels, each after its filter type and filtered with it (the PNG spec)."""
    h, w, c = px.shape
    rows = px.reshape(h, w * c)
    out = []
    for y, f in enumerate(filters):
        x = rows[y].astype(np.int16)
        up = rows[y - 1].astype(np.int16) if y else np.zeros_like(x)
        left = np.concatenate((np.zeros(c, np.int16), x[:-c]))
        upleft = np.concatenate((np.zeros(c, np.int16), up[:-c]))
        pred = [np.zeros_like(x), left, up, (left + up) // 2, paeth(left, up, upleft)][f] if f < 5 else 0 * x
        out.append(bytes([f]) + ((x - pred) % 256).astype(np.uint8).tobytes())
    return b"".join(out)


def make_png(px: np.ndarray, colour: int, *, filters: list[int] | None = None, level: int = 6,
             strategy: int = zlib.Z_DEFAULT_STRATEGY, split: int = 0, palette: bytes | None = None,
             extra: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    """A PNG of (h, w, c) pixels, filtered row by row with ``filters``, deflated with zlib's ``level`` and
    ``strategy``, its IDAT data cut into chunks of ``split`` bytes (0: one)."""
    h, w, _ = px.shape
    filters = filters if filters is not None else [y % 5 for y in range(h)]
    comp = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    z = comp.compress(filtered(px, filters)) + comp.flush()
    parts = [z[k:k + split] for k in range(0, len(z), split)] if split else [z]
    head = [chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))]
    head += [chunk(cid, body) for cid, body in extra]
    if palette is not None:
        head.append(chunk(b"PLTE", palette))
    return b"\x89PNG\r\n\x1a\n" + b"".join(head) + b"".join(chunk(b"IDAT", p) for p in parts) + chunk(b"IEND", b"")


def idat(data: bytes) -> tuple[bytes, int, int]:
    """The joined IDAT data, h and w of a PNG."""
    pos, parts = 8, []
    w, h = struct.unpack_from(">II", data, 16)
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        if data[pos + 4:pos + 8] == b"IDAT":
            parts.append(data[pos + 8:pos + 8 + n])
        pos += 12 + n
    return b"".join(parts), h, w


def pillow(data: bytes) -> np.ndarray:
    with Image.open(pyio.BytesIO(data)) as im:
        a = np.asarray(im)
    return a if a.ndim == 3 else a[..., None]


def picture(rng: np.random.Generator, h: int, w: int, c: int, kind: str) -> np.ndarray:
    """Random bytes, or flat regions with edges (what panoptic PNGs look like), (h, w, c) uint8."""
    if kind == "noise":
        return rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    colours = rng.integers(0, 256, (6, c), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    region = ((xx * 3 + yy * rng.integers(1, 4)) // max(1, (h + w) // 5) + (yy > h // 2)) % 6
    out: np.ndarray = colours[region]
    return out


SIZES = [(1, 1), (1, 7), (5, 1), (2, 3), (9, 17), (48, 64), (100, 131)]


@needs_kernel
@pytest.mark.parametrize("colour", sorted(COLOUR), ids=[COLOUR[c][1] for c in sorted(COLOUR)])
@pytest.mark.parametrize("kind", ["noise", "regions"])
def test_pixels_equal_pillows_for_every_filter_size_and_strategy(colour: int, kind: str) -> None:
    c, mode = COLOUR[colour]
    rng = np.random.default_rng(colour)
    strategies = [(6, zlib.Z_DEFAULT_STRATEGY), (0, zlib.Z_DEFAULT_STRATEGY), (1, zlib.Z_FIXED),
                  (9, zlib.Z_HUFFMAN_ONLY), (9, zlib.Z_RLE), (9, zlib.Z_FILTERED)]
    for n, (h, w) in enumerate(SIZES):
        px = picture(rng, h, w, c, kind)
        for level, strategy in strategies:
            filters = [int(f) for f in rng.integers(0, 5, h)]
            pal = rng.integers(0, 256, 3 * 256, dtype=np.uint8).tobytes() if colour == 3 else None
            data = make_png(px, colour, filters=filters, level=level, strategy=strategy, split=n * 7, palette=pal)
            z, hh, ww = idat(data)
            out = K.pixels(z, hh, ww, c)
            assert out is not None, (mode, h, w, level, strategy)
            assert np.frombuffer(out, np.uint8).tobytes() == pillow(data).tobytes(), (mode, h, w, level, strategy)


@needs_kernel
@pytest.mark.parametrize("filt", range(5), ids=["none", "sub", "up", "average", "paeth"])
def test_each_filter_alone_on_a_large_image(filt: int) -> None:
    rng = np.random.default_rng(filt)
    px = picture(rng, 700, 1000, 3, "regions")
    px[::37] = rng.integers(0, 256, (px[::37].shape), dtype=np.uint8)  # rows of noise among the regions
    data = make_png(px, 2, filters=[filt] * 700)
    z, h, w = idat(data)
    assert K.pixels(z, h, w, 3) == pillow(data).tobytes()


@needs_kernel
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L"])
def test_pngs_written_by_pillow_decode_as_pillow_reads_them(mode: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    c = {"RGB": 3, "RGBA": 4, "P": 1, "L": 1}[mode]
    for h, w in [(1, 1), (3, 5), (480, 640), (700, 1000)]:
        for kind in ("noise", "regions"):
            px = picture(rng, h, w, c, kind)
            im = Image.fromarray(px if c > 1 else px[..., 0], mode=mode)
            if mode == "P":
                im.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
            for options in ({}, {"optimize": True}, {"compress_level": 1}):
                buf = pyio.BytesIO()
                im.save(buf, format="PNG", **options)
                data = buf.getvalue()
                z, hh, ww = idat(data)
                assert K.pixels(z, hh, ww, c) == pillow(data).tobytes(), (mode, h, w, kind, options)


@needs_kernel
def test_pngs_written_by_opencv_decode_as_pillow_reads_them() -> None:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(2)
    for kind in ("noise", "regions"):
        px = picture(rng, 120, 90, 3, kind)
        for level in (0, 3, 9):
            ok, buf = cv2.imencode(".png", px, [cv2.IMWRITE_PNG_COMPRESSION, level])
            assert ok
            data = buf.tobytes()
            z, h, w = idat(data)
            assert K.pixels(z, h, w, 3) == pillow(data).tobytes()


# -- segments: the kernel's and the numpy path's ---------------------------------------------------------------

def id_maps(rng: np.random.Generator) -> list[np.ndarray]:
    maps = [np.zeros((1, 1), np.int64), np.full((1, 1), (1 << 24) - 1), np.zeros((4, 6), np.int64)]
    for h, w in [(1, 9), (7, 1), (6, 5), (40, 33)]:
        ids = rng.choice([0, 1, 5, 300, 70000, (1 << 24) - 1], (h, w))
        maps.append(ids)
        maps.append(np.repeat(ids[:, :1], w, axis=1))  # runs across columns
    big = np.zeros((480, 640), np.int64)
    big[100:300, 200:500] = 12345
    big[:, 600:] = 7
    big[470:, :] = 7  # the same id in two places: runs that span columns
    return [*maps, big]


@needs_kernel
def test_segments_equal_the_numpy_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    for m in id_maps(np.random.default_rng(3)):
        flat = np.ascontiguousarray(m.T).reshape(-1).astype(np.uint32)
        fast = png.segments(flat, m.shape[0])
        monkeypatch.setenv("MASLOW_NATIVE", "0")
        slow = png.segments(flat, m.shape[0])
        monkeypatch.delenv("MASLOW_NATIVE")
        assert fast.ids.tolist() == slow.ids.tolist()
        assert fast.counts == slow.counts
        assert fast.area.tolist() == slow.area.tolist()
        assert fast.box.tolist() == slow.box.tolist()


def write(tmp: Path, data: bytes, name: str = "x.png") -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """read_segments with the kernel and without: (ids, counts, area, box, h, w) or the error message."""
    out: list[object] = []
    for native in ("1", "0"):
        monkeypatch.setenv("MASLOW_NATIVE", native)
        try:
            segs, h, w = png.read_segments(path)
            out.append((segs.ids.tolist(), segs.counts, segs.area.tolist(), segs.box.tolist(), h, w))
        except FormatError as e:
            out.append(str(e))
    monkeypatch.delenv("MASLOW_NATIVE")
    return out[0], out[1]


def panoptic_png(rng: np.random.Generator, colour: int = 2, **options: object) -> bytes:
    ids = rng.choice([0, 3, 70000, 1 << 20], (30, 40))
    ids[10:20, 5:35] = 12
    px = np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], -1).astype(np.uint8)
    if colour == 6:
        px = np.concatenate((px, rng.integers(0, 256, (30, 40, 1), dtype=np.uint8)), -1)  # alpha: not in the id
    return make_png(px, colour, **options)  # type: ignore[arg-type]


@needs_kernel
@pytest.mark.parametrize("colour", [2, 6])
def test_panoptic_pngs_read_to_the_same_segments(colour: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(colour)
    for split in (0, 100):
        fast, slow = both(write(tmp_path, panoptic_png(rng, colour, split=split)), monkeypatch)
        assert isinstance(fast, tuple) and fast == slow


@needs_kernel
def test_a_palette_png_reads_to_the_same_segments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    index = rng.integers(0, 5, (20, 30, 1), dtype=np.uint8)
    index[5:15, 3:20] = 4
    colours = bytes([1, 0, 0, 0, 0, 0, 9, 9, 9, 1, 0, 0, 0, 1, 2])  # indices 0 and 3: the same colour
    data = make_png(index, 3, palette=colours)
    assert decoded_here(data)
    fast, slow = both(write(tmp_path, data), monkeypatch)
    assert isinstance(fast, tuple) and fast == slow
    data = make_png(index, 3, palette=colours, extra=((b"tRNS", b"\0\x80"),))
    assert not decoded_here(data)  # Pillow warns as it converts such a palette: it reads those files, as before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fast, slow = both(write(tmp_path, data), monkeypatch)
    assert fast == slow
    index[0, 0] = 5  # past the palette: Pillow's reading of it, as without the kernel
    data = make_png(index, 3, palette=colours)
    assert not decoded_here(data)
    fast, slow = both(write(tmp_path, data), monkeypatch)
    assert fast == slow


def damage(data: bytes, rng: np.random.Generator) -> list[tuple[str, bytes]]:
    z_at = data.index(b"IDAT") + 4
    iend = data.index(b"IEND") - 4
    out = [(f"truncated at {n}", data[:n]) for n in (0, 7, 20, 33, z_at + 5, len(data) // 2, iend, len(data) - 3)]
    for at in (12, 18, 25, 29, z_at + 2, z_at + 30, iend - 6, iend - 2):  # a byte flipped (IHDR, data, CRCs)
        b = bytearray(data)
        b[at] ^= 0x41
        out.append((f"byte {at} flipped", bytes(b)))
    out.append(("data after IEND", data + b"garbage"))
    out.append(("no IEND", data[:iend]))
    out.append(("not a PNG", b"GIF89a" + data[6:]))
    return out


def with_ihdr(data: bytes, **fields: int) -> bytes:
    """``data`` with its IHDR's fields replaced (a valid CRC)."""
    names = ("w", "h", "depth", "colour", "compression", "filtering", "interlace")
    values = dict(zip(names, struct.unpack_from(">IIBBBBB", data, 16), strict=True)) | fields
    return data[:8] + chunk(b"IHDR", struct.pack(">IIBBBBB", *values.values())) + data[33:]


def rechunk(px: np.ndarray, colour: int, body: Callable[[bytes], bytes]) -> bytes:
    """A PNG whose joined IDAT data is ``body`` of the usual zlib stream (valid CRCs: the stream itself is bad)."""
    h, w, _ = px.shape
    z = body(zlib.compress(filtered(px, [y % 5 for y in range(h)])))
    head = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + head + chunk(b"IDAT", z) + chunk(b"IEND", b"")


@needs_kernel
def test_damaged_and_unusual_files_read_as_without_the_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    data = panoptic_png(rng)
    cases = damage(data, rng)
    px = np.asarray(Image.open(pyio.BytesIO(data)))
    cases += [
        ("bad adler32", rechunk(px, 2, lambda z: z[:-1] + bytes([z[-1] ^ 1]))),
        ("no adler32", rechunk(px, 2, lambda z: z[:-4])),
        ("stream cut short", rechunk(px, 2, lambda z: z[: len(z) // 2])),
        ("bytes after the stream", rechunk(px, 2, lambda z: z + b"\0\1\2")),
        ("bad zlib header", rechunk(px, 2, lambda z: b"\x78\x00" + z[2:])),
        ("a filter type of 5", make_png(px, 2, filters=[5] + [0] * 29)),
        ("one row too few", with_ihdr(make_png(px[:29], 2), h=30)),
        ("one row too many", with_ihdr(data, h=29)),
        ("grey", make_png(px[..., :1], 0)),
        ("grey and alpha", make_png(px[..., :2], 4)),
        ("interlaced", with_ihdr(data, interlace=1)),
        ("16 bits", with_ihdr(data, depth=16)),
        ("compression method 1", with_ihdr(data, compression=1)),
        ("filter method 1", with_ihdr(data, filtering=1)),
        ("a gAMA chunk", make_png(px, 2, extra=((b"gAMA", struct.pack(">I", 45455)),))),
        ("a short gAMA chunk", make_png(px, 2, extra=((b"gAMA", b"\0"),))),
        ("a short tRNS chunk", make_png(px, 2, extra=((b"tRNS", b"\0\0"),))),
        ("a text chunk", make_png(px, 2, extra=((b"tEXt", b"Software\0maslow"),))),
        ("a private chunk", make_png(px, 2, extra=((b"prIv", b"\1\2\3"),))),
        ("a chunk name of digits", make_png(px, 2, extra=((b"1234", b""),))),
    ]
    for i, (what, bad) in enumerate(cases):
        fast, slow = both(write(tmp_path, bad, f"{i}.png"), monkeypatch)
        assert fast == slow, what
    fast, slow = both(tmp_path / "missing.png", monkeypatch)
    assert fast == slow and str(fast).endswith("PNG file not found")


def decoded_here(data: bytes) -> bool:
    """Whether the kernel reads this file itself (rather than handing it to Pillow)."""
    parsed = png._parse(data, MAX_PIXELS)
    return parsed is not None and K is not None and K.panoptic(*parsed) is not None


@needs_kernel
def test_the_kernel_reads_clean_files_and_hands_the_rest_to_pillow() -> None:
    rng = np.random.default_rng(6)
    data = panoptic_png(rng)
    px = np.asarray(Image.open(pyio.BytesIO(data)))
    assert decoded_here(data)
    assert decoded_here(panoptic_png(rng, 6, split=50))
    assert decoded_here(make_png(px, 2, extra=((b"gAMA", struct.pack(">I", 45455)), (b"prIv", b"\1"))))
    assert not decoded_here(make_png(px, 2, extra=((b"tEXt", b"Software\0maslow"),)))  # Pillow reads text chunks
    assert not decoded_here(make_png(px[..., :1], 0))  # grey: Pillow's mode L, refused as before
    assert not decoded_here(rechunk(px, 2, lambda z: z[:-1] + bytes([z[-1] ^ 1])))  # a bad checksum


# -- the reader: the same Dataset and findings with and without the kernel ----------------------------------------

def panoptic_files(folder: Path, rng: np.random.Generator) -> Path:
    """Three images of generated segments (some drawn with an alpha channel or a palette), and segments_info with
    the usual and the odd: a colour not listed, a segment not drawn, bbox and area that disagree, a float area, a
    bad iscrowd, an id listed twice, an unknown category, a key of its own."""
    import json

    (folder / "pan").mkdir()
    images, records = [], []
    for i in range(3):
        h, w = 30 + i, 40 - i
        ids = np.zeros((h, w), np.int64)
        ids[: h // 2] = 70000 + i
        ids[h // 2:] = 5
        ids[5:15, 10:30] = 1 << 20
        ids[20:, 30:] = 9
        ids[0, 0] = 0
        px = np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], -1).astype(np.uint8)
        if i == 1:
            px = np.concatenate((px, rng.integers(0, 256, (h, w, 1), dtype=np.uint8)), -1)
        Image.fromarray(px).save(folder / "pan" / f"{i}.png")
        segs: list[dict[str, Any]] = [{"id": 70000 + i, "category_id": 2, "iscrowd": 0, "bbox": [0, 0, w, h // 2], "area": h // 2 * w - 1},
                {"id": 5, "category_id": 1, "iscrowd": 0, "area": 1.0 * int(np.count_nonzero(ids == 5))},
                {"id": 1 << 20, "category_id": 1, "iscrowd": i == 2, "bbox": [10, 5, 20, 10], "note": "x"},
                {"id": 1234, "category_id": 1}, {"id": 5, "category_id": 2}, {"id": 77, "category_id": 99}]
        if i == 0:
            segs[0]["bbox"] = [0, 0, w, h]
        images.append({"id": i + 1, "file_name": f"{i}.jpg", "width": w, "height": h})
        records.append({"image_id": i + 1, "file_name": f"{i}.png", "segments_info": segs})
    cats = [{"id": 1, "name": "car", "isthing": 1}, {"id": 2, "name": "sky", "isthing": 0}]
    src = folder / "pan.json"
    src.write_text(json.dumps({"images": images, "annotations": records, "categories": cats}))
    return src


def test_the_reader_gives_the_same_dataset_and_findings_without_the_kernel(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from maslow.io.coco_panoptic import parse

    src = panoptic_files(tmp_path, np.random.default_rng(7))
    out: list[Any] = []
    for native in ("1", "0"):
        monkeypatch.setenv("MASLOW_NATIVE", native)
        ds, report = parse(src)
        a = ds.annotations
        assert a.mask is not None and a.box is not None and a.iscrowd is not None
        out.append((list(a.mask), a.box.tobytes(), a.image.tolist(), a.label.tolist(), a.iscrowd.tolist(),
                    {k: repr(v.tolist()) for k, v in a.extra.items()}, ds.images.width.tolist(), ds.images.height.tolist(),
                    [(i.type, i.severity, i.record, i.field, i.message, i.image) for i in report.issues]))
    assert out[0] == out[1]
    kinds = {k for k, *_ in out[0][-1]}
    assert {"panoptic_unlisted_segment", "panoptic_segment_not_in_png", "panoptic_bbox_mismatch",
            "panoptic_area_mismatch", "panoptic_bad_iscrowd", "panoptic_duplicate_segment",
            "panoptic_unknown_category"} <= kinds


@needs_kernel
def test_randomly_corrupted_streams_decode_as_pillow_or_are_handed_to_it(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The inflater on streams damaged at random (bytes flipped, cut, repeated; the chunk CRCs made valid, so the
    damage reaches it): each file reads to what the path without the kernel gives, pixels or error, and never
    crashes the process."""
    rng = np.random.default_rng(11)
    px = np.asarray(Image.open(pyio.BytesIO(panoptic_png(rng))))

    def flip(z: bytes) -> bytes:
        b = bytearray(z)
        for at in rng.integers(2, len(b), int(rng.integers(1, 4))).tolist():
            b[at] ^= int(rng.integers(1, 256))
        return bytes(b)

    def splice(z: bytes) -> bytes:
        a, b = sorted(rng.integers(2, len(z), 2).tolist())
        return z[:b] + z[a:b] + z[b:] if rng.random() < 0.5 else z[:a] + z[b:]

    for i in range(150):
        bad = rechunk(px, 2, flip if i % 2 else splice)
        fast, slow = both(write(tmp_path, bad, f"{i}.png"), monkeypatch)
        assert fast == slow, i
