"""Image files (EXIF sizes, pixels, safety limits, IDX members) and the technical checks of a Dataset."""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.errors import FormatError
from maslow.io import check_boxes, check_dataset, check_images, fill_sizes, image_info, load, load_path
from maslow.io.images import find_images, image_path, read_idx
from maslow.sample import shapes

# -- files ------------------------------------------------------------------------------------------


def noise(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def jpeg(path: Path, w: int, h: int, orientation: int | None = None) -> Path:
    im = noise(w, h)
    if orientation is None:
        im.save(path, "JPEG", quality=90)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(path, "JPEG", quality=90, exif=exif.tobytes())
    return path


def png_header(path: Path, w: int, h: int) -> Path:
    """A PNG whose IHDR claims w x h pixels (the data itself is one tiny IDAT)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
                     + chunk(b"IEND", b""))
    return path


def dataset(root: Path, paths: list[str], sizes: list[tuple[int, int]], boxes: list[tuple[int, list[float]]] = ()
            ) -> Dataset:  # type: ignore[assignment]
    image = [i for i, _ in boxes]
    return Dataset(
        schema=LabelSchema.from_names(["thing"]),
        images=Images(path=paths, width=[w for w, _ in sizes], height=[h for _, h in sizes]),
        annotations=Annotations(image=image, label=[0] * len(image),
                                box=np.asarray([b for _, b in boxes], float).reshape(-1, 4)),
        root=root,
    )


# -- image_info / load_path -------------------------------------------------------------------------


def test_exif_orientation_6_swaps_the_displayed_size(tmp_path: Path) -> None:
    p = jpeg(tmp_path / "rot.jpg", 40, 30, orientation=6)
    info = image_info(p)
    assert (info.width, info.height) == (30, 40)
    assert (info.stored_width, info.stored_height) == (40, 30)
    assert info.orientation == 6 and info.format == "JPEG"
    assert load_path(p).shape == (40, 30, 3)  # pixels come rotated
    assert load_path(p, exif=False).shape == (30, 40, 3)


@pytest.mark.parametrize(("orientation", "size"), [(1, (40, 30)), (3, (40, 30)), (5, (30, 40)), (8, (30, 40))])
def test_other_orientations(tmp_path: Path, orientation: int, size: tuple[int, int]) -> None:
    info = image_info(jpeg(tmp_path / "o.jpg", 40, 30, orientation=orientation))
    assert (info.width, info.height) == size and info.orientation == orientation


def test_plain_png_and_grey_images(tmp_path: Path) -> None:
    noise(7, 5).save(tmp_path / "c.png")
    Image.fromarray(np.arange(20, dtype=np.uint8).reshape(4, 5)).save(tmp_path / "g.png")
    info = image_info(str(tmp_path / "c.png"))
    assert (info.width, info.height, info.orientation, info.format) == (7, 5, 1, "PNG")
    rgb = load_path(tmp_path / "c.png")
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, np.asarray(noise(7, 5)))
    grey = load_path(tmp_path / "g.png")
    assert grey.shape == (4, 5)
    np.testing.assert_array_equal(grey, np.arange(20).reshape(4, 5))


def test_missing_and_garbage_files_raise_format_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"nope\.jpg: image file not found"):
        image_info(tmp_path / "nope.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(FormatError, match=r"junk\.jpg: unreadable image"):
        image_info(tmp_path / "junk.jpg")
    with pytest.raises(FormatError, match="unreadable image"):
        load_path(tmp_path / "junk.jpg")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(FormatError, match="unreadable image"):
        image_info(tmp_path / "dir.png")


def test_truncated_jpeg_reads_its_header_but_not_its_pixels(tmp_path: Path) -> None:
    full = jpeg(tmp_path / "full.jpg", 64, 48).read_bytes()
    p = tmp_path / "cut.jpg"
    p.write_bytes(full[: len(full) // 2])
    assert (image_info(p).width, image_info(p).height) == (64, 48)
    with pytest.raises(FormatError, match=r"cut\.jpg: truncated or corrupt image data.*truncated"):
        load_path(p)


def test_decompression_bombs_are_refused(tmp_path: Path) -> None:
    small = jpeg(tmp_path / "small.jpg", 40, 30)
    with pytest.raises(FormatError, match=r"at most 1000 pixels, got 40x30 = 1200: refused as a decompression bomb"):
        image_info(small, max_pixels=1000)
    with pytest.raises(FormatError, match="decompression bomb"):
        load_path(small, max_pixels=1000)
    assert image_info(small, max_pixels=1200).width == 40  # the limit itself is allowed
    # a PNG header claiming 50000 x 50000 pixels: refused without decoding anything
    with pytest.raises(FormatError, match="decompression bomb"):
        image_info(png_header(tmp_path / "huge.png", 50_000, 50_000))
    # just above the default limit
    with pytest.raises(FormatError, match=r"178956970 pixels.*decompression bomb"):
        image_info(png_header(tmp_path / "big.png", 20_000, 9_000))


def test_find_images_and_image_path(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    noise(2, 2).save(tmp_path / "sub" / "b.PNG")
    noise(2, 2).save(tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("x")
    assert find_images(tmp_path) == [tmp_path / "a.jpg", tmp_path / "sub" / "b.PNG"]
    ds = dataset(tmp_path, ["sub/b.PNG"], [(2, 2)])
    assert image_path(ds, 0) == tmp_path / "sub" / "b.PNG"
    assert load(ds, 0).shape == (2, 2, 3)
    assert image_path(ds.replace(root=None), 0) == Path("sub/b.PNG")


# -- IDX ----------------------------------------------------------------------------------------------


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    return struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def test_idx_members_read_like_images(tmp_path: Path) -> None:
    arr = np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3)
    p = tmp_path / "t10k-images.idx3-ubyte.gz"
    with gzip.open(p, "wb") as f:
        f.write(idx_bytes(arr))
    data = read_idx(p)
    np.testing.assert_array_equal(data, arr)
    assert not data.flags.writeable
    info = image_info(f"{p}#3")
    assert (info.width, info.height, info.format, info.orientation) == (3, 4, "IDX", 1)
    px = load_path(f"{p}#3")
    np.testing.assert_array_equal(px, arr[3])
    assert px.flags.writeable  # a copy, not a view of the cache
    with pytest.raises(FormatError, match="IDX member must be < 5, got 5"):
        image_info(f"{p}#5")
    with pytest.raises(FormatError, match="IDX member must be < 5, got 9"):
        load_path(f"{p}#9")
    ds = dataset(tmp_path, [f"{p.name}#{i}" for i in range(5)], [(3, 4)] * 5)
    assert len(check_images(ds, decode=True)) == 0


def test_idx_plain_file_other_dtypes_and_rewrites(tmp_path: Path) -> None:
    p = tmp_path / "x.idx3-ubyte"
    arr = (np.arange(2 * 2 * 2).reshape(2, 2, 2) - 3).astype(">i2")  # big-endian, as IDX stores it
    p.write_bytes(idx_bytes(arr, 0x0B))
    np.testing.assert_array_equal(read_idx(str(p)), arr)
    # a rewritten file is read again, not served from the cache
    arr2 = np.ones((3, 2, 2), dtype=np.uint8)
    p.write_bytes(idx_bytes(arr2))
    np.testing.assert_array_equal(read_idx(p), arr2)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"\x00\x00", r"IDX magic number", id="too-short"),
        pytest.param(b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", r"record 'header'|header.*IDX magic",
                     id="bad-magic"),
        pytest.param(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", r"IDX type code must be one of", id="bad-type"),
        pytest.param(b"\x00\x00\x08\x03" + struct.pack(">I", 1), r"IDX header is truncated", id="short-header"),
        pytest.param(b"\x00\x00\x08\x03" + struct.pack(">III", 2, 2, 2) + b"\x00" * 7, r"IDX body must hold 8 bytes",
                     id="short-body"),
        pytest.param(b"\x00\x00\x08\x03" + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1) + b"\x00" * 8,
                     r"IDX body must hold \d+ bytes", id="huge-claim"),
    ],
)
def test_corrupt_idx_headers_raise_format_error(tmp_path: Path, data: bytes, match: str) -> None:
    p = tmp_path / "bad.idx3-ubyte"
    p.write_bytes(data)
    with pytest.raises(FormatError, match=match):
        read_idx(p)
    with pytest.raises(FormatError):
        image_info(f"{p}#0")


def test_corrupt_gzip_missing_idx_and_label_files(tmp_path: Path) -> None:
    blob = bytearray(gzip.compress(idx_bytes(np.arange(4000, dtype=np.uint8).reshape(10, 20, 20) * 7)))
    blob[30:60] = b"\xff" * 30
    (tmp_path / "c.idx3-ubyte.gz").write_bytes(bytes(blob))
    with pytest.raises(FormatError, match=r"c\.idx3-ubyte\.gz: unreadable IDX file"):
        read_idx(tmp_path / "c.idx3-ubyte.gz")
    (tmp_path / "half.idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((2, 2, 2), np.uint8)))[:15])
    with pytest.raises(FormatError, match="unreadable IDX file"):
        read_idx(tmp_path / "half.idx3-ubyte.gz")
    with pytest.raises(FormatError, match="file not found"):
        image_info(tmp_path / "none.idx3-ubyte#1")
    labels = tmp_path / "labels.idx1-ubyte"
    labels.write_bytes(idx_bytes(np.arange(5, dtype=np.uint8)))
    with pytest.raises(FormatError, match=r"IDX file must hold images \(n, h, w\[, c\]\), got shape \(5,\)"):
        image_info(f"{labels}#1")
    with pytest.raises(FormatError, match="IDX file must hold images"):
        load_path(f"{labels}#1")


# -- check_images -----------------------------------------------------------------------------------


def test_check_images_exif_rotation(tmp_path: Path) -> None:
    jpeg(tmp_path / "rot.jpg", 40, 30, orientation=6)
    stored = check_images(dataset(tmp_path, ["rot.jpg"], [(40, 30)]))
    assert [i.type for i in stored] == ["exif_rotated"]
    issue = stored.issues[0]
    assert issue.severity == "error" and issue.image == 0 and issue.file == "rot.jpg" and issue.record == "images[0]"
    assert "EXIF orientation 6" in issue.message and "30x40" in issue.message
    assert len(check_images(dataset(tmp_path, ["rot.jpg"], [(30, 40)]))) == 0
    other = check_images(dataset(tmp_path, ["rot.jpg"], [(50, 50)]))
    assert [i.type for i in other] == ["size_mismatch"]


def test_check_images_finds_each_kind_of_problem_on_the_right_row(tmp_path: Path) -> None:
    jpeg(tmp_path / "ok.jpg", 20, 10)
    jpeg(tmp_path / "wrong.jpg", 20, 10)
    (tmp_path / "junk.png").write_bytes(b"\x89PNG garbage")
    full = jpeg(tmp_path / "t.jpg", 64, 48).read_bytes()
    (tmp_path / "t.jpg").write_bytes(full[: len(full) // 2])
    ds = dataset(
        tmp_path,
        ["ok.jpg", "missing.jpg", "junk.png", "wrong.jpg", "t.jpg", "ok.jpg", "ok.jpg"],
        [(20, 10), (20, 10), (5, 5), (10, 20), (64, 48), (20, 10), (0, 0)],
    )
    rep = check_images(ds)
    found = sorted((i.type, i.image) for i in rep)
    assert found == [("duplicate_image", 5), ("duplicate_image", 6), ("missing_image", 1), ("size_mismatch", 3),
                     ("unknown_size", 6), ("unreadable_image", 2)]
    mismatch = rep.of_type("size_mismatch")[0]
    assert "10x20 declared and 20x10 in the file" in mismatch.message
    assert rep.of_type("unknown_size")[0].severity == "info"
    assert "repeats image row 0" in rep.of_type("duplicate_image")[0].message
    # decoding also finds the truncated file
    decoded = check_images(ds, decode=True)
    truncated = [i for i in decoded if i.image == 4]
    assert [i.type for i in truncated] == ["unreadable_image"] and "truncated" in truncated[0].message
    assert decoded.counts()["unreadable_image"] == 2


def _formats() -> list[tuple[str, str]]:
    from PIL import features

    out = [("JPEG", "jpg"), ("PNG", "png"), ("BMP", "bmp"), ("GIF", "gif"), ("TIFF", "tif")]
    return [*out, ("WEBP", "webp")] if features.check("webp") else out


def test_image_info_agrees_with_pillow_on_formats_and_exif_orientations(tmp_path: Path) -> None:
    from PIL import ImageOps

    im = noise(53, 37)
    files = []
    for fmt, ext in _formats():
        im.save(tmp_path / f"plain.{ext}", fmt)
        files.append(tmp_path / f"plain.{ext}")
        if fmt in ("JPEG", "PNG", "TIFF", "WEBP"):
            for o in (3, 6, 8):
                exif = Image.Exif()
                exif[0x0112] = o
                im.save(tmp_path / f"o{o}.{ext}", fmt, exif=exif.tobytes())
                files.append(tmp_path / f"o{o}.{ext}")
    for p in files:
        info = image_info(p)
        with Image.open(p) as opened:
            shown = ImageOps.exif_transpose(opened).size
        assert (info.width, info.height) == shown, p.name
        turned = info.orientation in (5, 6, 7, 8)
        assert (info.stored_width, info.stored_height) == (53, 37), p.name  # the grid as saved
        assert shown == ((37, 53) if turned else (53, 37)), p.name
        assert load_path(p).shape[:2] == (info.height, info.width), p.name
    names = [p.name for p in files]
    assert len(check_images(dataset(tmp_path, names, [(image_info(p).width, image_info(p).height) for p in files]),
                            decode=True)) == 0
    stored = check_images(dataset(tmp_path, ["o6.tif"], [(53, 37)]))  # the TIFF's stored grid declared
    assert [i.type for i in stored] == ["exif_rotated"] and "displays the image as 37x53" in stored.issues[0].message


def test_check_images_decoding_finds_truncated_files_of_every_format(tmp_path: Path) -> None:
    names = []
    for fmt, ext in _formats():
        noise(64, 48).save(tmp_path / f"full.{ext}", fmt)
        raw = (tmp_path / f"full.{ext}").read_bytes()
        (tmp_path / f"cut.{ext}").write_bytes(raw[: len(raw) * 2 // 3])
        names += [f"full.{ext}", f"cut.{ext}"]
    ds = dataset(tmp_path, names, [(64, 48)] * len(names))
    rep = check_images(ds, decode=True)
    assert sorted((i.type, i.file) for i in rep) == sorted(("unreadable_image", n) for n in names if "cut" in n)
    assert all("cut." in i.message for i in rep)  # the message names the file


def test_missing_images_are_told_apart_by_the_reason_not_the_file_name(tmp_path: Path) -> None:
    (tmp_path / "file not found.png").write_bytes(b"garbage")
    rep = check_images(dataset(tmp_path, ["file not found.png"], [(1, 1)]))
    assert [i.type for i in rep] == ["unreadable_image"]


def test_check_images_progress_reaches_the_total_even_when_files_fail(tmp_path: Path) -> None:
    jpeg(tmp_path / "a.jpg", 4, 4)
    calls: list[tuple[int, int]] = []
    check_images(dataset(tmp_path, ["a.jpg", "gone.jpg"], [(4, 4), (4, 4)]),
                 progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]


def test_check_images_without_root_checks_nothing() -> None:
    ds = dataset(Path("x"), ["missing.jpg"], [(1, 1)]).replace(root=None)
    assert len(check_images(ds)) == 0


def test_check_images_on_sample_files_finds_nothing(shapes_on_disk: Dataset) -> None:
    assert check_images(shapes_on_disk, decode=True).issues == ()
    assert check_dataset(shapes_on_disk, decode=True).issues == ()


# -- check_boxes ------------------------------------------------------------------------------------


def test_check_boxes_finds_out_of_bounds_and_degenerate_boxes_by_row(tmp_path: Path) -> None:
    ds = dataset(
        tmp_path, ["a.jpg", "b.jpg", "c.jpg"], [(100, 50), (100, 50), (0, 0)],
        boxes=[
            (0, [0, 0, 100, 50]),  # 0: fills the image exactly
            (0, [-0.4, -0.4, 100.4, 50.4]),  # 1: inside the half-pixel tolerance
            (0, [-1, 0, 10, 10]),  # 2: out of bounds (left)
            (1, [np.nan] * 4),  # 3: no box
            (1, [10, 10, 10, 20]),  # 4: zero width
            (1, [90, 40, 101, 50]),  # 5: out of bounds (right)
            (1, [5, 5, 6, 5]),  # 6: zero height
            (2, [500, 500, 600, 600]),  # 7: image size unknown: no bounds check
            (2, [1, 1, 1, 1]),  # 8: degenerate even when the size is unknown
        ],
    )
    rep = check_boxes(ds)
    assert sorted((i.type, i.annotation) for i in rep) == [
        ("box_out_of_bounds", 2), ("box_out_of_bounds", 5),
        ("degenerate_box", 4), ("degenerate_box", 6), ("degenerate_box", 8)]
    for i in rep:
        assert i.image == int(ds.annotations.image[i.annotation])  # type: ignore[index]
        assert i.record == f"annotations[{i.annotation}]" and i.field == "box" and i.severity == "warning"
    assert rep.of_type("box_out_of_bounds")[1].file == "b.jpg"
    assert "100x50 image" in rep.of_type("box_out_of_bounds")[0].message


def test_check_boxes_on_sample_data_and_empty_data(shapes_ds: Dataset) -> None:
    assert check_boxes(shapes_ds).issues == ()
    assert check_boxes(shapes(50, seed=7, width=64, height=200)).issues == ()
    assert check_boxes(shapes_ds.select([])).issues == ()


def test_check_dataset_without_files_checks_only_boxes(tmp_path: Path) -> None:
    ds = dataset(tmp_path, ["missing.jpg"], [(10, 10)], boxes=[(0, [0, 0, 20, 5])])
    assert [i.type for i in check_dataset(ds, files=False)] == ["box_out_of_bounds"]
    assert sorted(i.type for i in check_dataset(ds)) == ["box_out_of_bounds", "missing_image"]


# -- fill_sizes -------------------------------------------------------------------------------------


def test_fill_sizes_fills_unknown_sizes_from_headers(tmp_path: Path) -> None:
    jpeg(tmp_path / "a.jpg", 20, 10)
    jpeg(tmp_path / "r.jpg", 40, 30, orientation=6)
    ds = dataset(tmp_path, ["a.jpg", "r.jpg", "gone.jpg", "a.jpg"], [(0, 0), (0, 0), (0, 0), (7, 7)])
    calls: list[int] = []
    out = fill_sizes(ds, progress=lambda done, total: calls.append(done))
    assert out.images.width.tolist() == [20, 30, 0, 7]
    assert out.images.height.tolist() == [10, 40, 0, 7]
    assert ds.images.width.tolist() == [0, 0, 0, 7]  # the input is untouched
    assert calls == [1, 2, 3]
    assert len(check_images(out).of_type("size_mismatch")) == 1  # row 3 declared 7x7
    assert fill_sizes(ds.replace(root=None)) is not None


def test_fill_sizes_is_a_no_op_when_every_size_is_known(shapes_on_disk: Dataset) -> None:
    assert fill_sizes(shapes_on_disk) is shapes_on_disk


def test_jpeg_bytes_are_real_jpegs() -> None:
    buf = io.BytesIO()
    noise(4, 4).save(buf, "JPEG")
    assert buf.getvalue()[:2] == b"\xff\xd8"
    assert os.sep  # keep the import honest on every platform


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@pytest.mark.parametrize("orientation", [1, 3, 5, 6, 8, "broken", None])
def test_png_exif_after_the_pixels_is_read_from_the_chunk_headers(tmp_path: Path, orientation: int | str | None) -> None:
    # an eXIf chunk may follow IDAT; Pillow decoded the whole image to find it (0.13 s for 12 MP), now the chunk
    # list is walked. The orientation must equal what Pillow reads after a full decode
    from PIL import ImageOps

    buf = io.BytesIO()
    noise(53, 37).save(buf, "PNG")
    png = buf.getvalue()
    if orientation is not None:
        exif = Image.Exif()
        if orientation != "broken":
            exif[0x0112] = orientation
        data = exif.tobytes()[6:] if orientation != "broken" else b"MM\x00*garbage"  # the TIFF block, no 'Exif\0\0'
        iend = png.rindex(b"IEND") - 4
        png = png[:iend] + _png_chunk(b"eXIf", data) + png[iend:]
    p = tmp_path / "after.png"
    p.write_bytes(png)
    info = image_info(p)
    with Image.open(p) as im, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns of the broken block
        im.load()  # the pixels first, so Pillow sees the trailing chunk
        shown = ImageOps.exif_transpose(im).size
        want = im.getexif().get(0x0112, 1) if orientation != "broken" else 1
    assert info.orientation == want == (orientation if isinstance(orientation, int) else 1)
    assert (info.width, info.height) == shown
    # a header read: damaged pixel data still gives the size and orientation (decoding is check_images' job; the
    # full decode failed, and the orientation behind the pixels was lost)
    cut = tmp_path / "cut.png"
    idat = png.index(b"IDAT")
    cut.write_bytes(png[: idat + 20] + b"\x00" * 40 + png[idat + 60:])
    assert (image_info(cut).stored_width, image_info(cut).stored_height, image_info(cut).orientation) == \
        (53, 37, info.orientation)


def test_an_import_names_the_annotation_file_and_the_annotations_id(tmp_path: Path) -> None:
    """A COCO file's box finding named the image file and a dataset row, not the file and the record."""
    from maslow.io import import_dataset, write

    ds = shapes(4, seed=2)
    write(ds, tmp_path / "a.json", "coco")
    doc = json.loads((tmp_path / "a.json").read_text())
    bad = doc["annotations"][1]
    bad["bbox"][0] += 1000  # beyond the image
    (tmp_path / "a.json").write_text(json.dumps(doc))
    rep = import_dataset(tmp_path / "a.json", "coco", check_files=False).report
    (issue,) = rep.of_type("box_out_of_bounds")
    image = next(i["file_name"] for i in doc["images"] if i["id"] == bad["image_id"])
    assert issue.file == str(tmp_path / "a.json") and issue.field == "box"
    assert issue.record == f"annotation id={bad['id']} (image {image})"
