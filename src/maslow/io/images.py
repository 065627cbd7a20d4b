"""Image files: sizes (EXIF-aware), pixels, and the safety checks around opening them.

Glossary: the *stored* size is what the file's pixel grid holds; the *displayed* size applies the EXIF
orientation tag (values 5-8 swap width and height). maslow's ``Images.width/height`` are displayed sizes,
which is what annotation tools draw on. A path ``file.idx3-ubyte.gz#17`` names image 17 of an IDX file.
"""

from __future__ import annotations

import functools
import math
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from maslow.core.dataset import Dataset
from maslow.errors import FormatError

if TYPE_CHECKING:
    from PIL import Image

#: Images with more pixels than this are refused as decompression bombs (Pillow's own default limit).
MAX_PIXELS = 178_956_970
_ROTATING = {5, 6, 7, 8}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


@dataclass(frozen=True)
class ImageInfo:
    """Header facts of one image file."""

    width: int  # displayed (after EXIF orientation)
    height: int
    stored_width: int
    stored_height: int
    orientation: int  # EXIF orientation tag, 1 when absent
    format: str


def idx_member(path: str | Path) -> tuple[Path, int | None]:
    """(IDX file, member index) for ``file-idx3-ubyte.gz#17``; (path, None) for any other path."""
    path = Path(path)
    name = path.name
    if "#" in name and re.search(r"idx\d", name):
        base, _, idx = name.rpartition("#")
        if idx.isdigit():
            return path.with_name(base), int(idx)
    return path, None


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (MNIST's format), gzip or plain; read-only, cached per file version.

    Raises:
        FormatError: the file is missing, unreadable, or its header or body is malformed.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FormatError("file not found", path=path) from None
    except OSError as e:
        raise FormatError(f"unreadable IDX file: {e}", path=path) from None
    return _read_idx(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4)
def _read_idx(path: Path, mtime_ns: int, size: int) -> np.ndarray:
    # mtime and size are part of the cache key so a rewritten file is read again
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FormatError("file not found", path=path) from None
    except (OSError, EOFError, zlib.error) as e:
        raise FormatError(f"unreadable IDX file: {e}", path=path) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise FormatError("IDX magic number must start with two zero bytes", path=path, record="header")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = data[2], data[3]
    if code not in dtypes:
        raise FormatError(f"IDX type code must be one of {sorted(dtypes)}, got {code:#x}", path=path, record="header")
    if len(data) < 4 + 4 * ndim:
        raise FormatError("IDX header is truncated", path=path, record="header")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dt = np.dtype(dtypes[code])
    expected = math.prod(shape) * dt.itemsize
    body = data[4 + 4 * ndim :]
    if len(body) != expected:
        raise FormatError(f"IDX body must hold {expected} bytes for shape {shape}, got {len(body)}", path=path)
    arr = np.frombuffer(body, dtype=dt).reshape(shape)
    arr.flags.writeable = False
    return arr


def _idx_images(base: Path, member: int) -> np.ndarray:
    """The (n, h, w[, c]) array of an IDX image file, after checking that image ``member`` exists."""
    arr = read_idx(base)
    if arr.ndim not in (3, 4):
        raise FormatError(f"IDX file must hold images (n, h, w[, c]), got shape {arr.shape}", path=base)
    if member >= len(arr):
        raise FormatError(f"IDX member must be < {len(arr)}, got {member}", path=base)
    return arr


def _open(path: Path, max_pixels: int) -> Image.Image:
    from PIL import Image  # Pillow loads on first use: reading annotations (and evaluating) never needs it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except FileNotFoundError:
        raise FormatError("image file not found", path=path) from None
    except Image.DecompressionBombError as e:
        raise FormatError(f"refused as a decompression bomb: {e}", path=path) from None
    except (OSError, ValueError, SyntaxError) as e:
        raise FormatError(f"unreadable image: {e}", path=path) from None
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise FormatError(
            f"image must have at most {max_pixels} pixels, got {w}x{h} = {w * h}: refused as a decompression bomb",
            path=path,
        )
    return im


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation tag of an open image (as Pillow's ``ImageOps.exif_transpose`` reads it), 1 when absent."""
    try:
        orientation = int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not hide the image
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _png_orientation(path: Path) -> int:
    """The EXIF orientation of a PNG file from its eXIf chunk, wherever it lies, reading only chunk headers; 1
    when there is none (or the chunk list is damaged: the pixels' reader will say so)."""
    from PIL import Image

    with open(path, "rb") as f:
        f.seek(8)  # the signature
        while True:
            head = f.read(8)
            if len(head) < 8 or head[4:] == b"IEND":
                return 1
            n = struct.unpack(">I", head[:4])[0]
            if head[4:] == b"eXIf":
                data = f.read(n)
                exif = Image.Exif()
                try:
                    exif.load(data)
                    orientation = int(exif.get(0x0112, 1) or 1)
                except Exception:  # noqa: BLE001 - a broken EXIF block must not hide the image (as _orientation)
                    return 1
                return orientation if 1 <= orientation <= 8 else 1
            f.seek(n + 4, 1)  # the chunk's data and CRC


def image_info(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Width, height and EXIF orientation from the header (no pixel decoding).

    Raises:
        FormatError: the file is missing, unreadable or a decompression bomb.
    """
    path = Path(path)
    base, member = idx_member(path)
    if member is not None:
        arr = _idx_images(base, member)
        h, w = arr.shape[1:3]
        return ImageInfo(w, h, w, h, 1, "IDX")
    im = _open(path, max_pixels)
    with im:
        w, h = im.size
        fmt = im.format or ""
        # Pillow decodes a whole PNG to look for an eXIf chunk after the pixel data (0.13 s for 12 MP): walk the
        # chunk headers instead
        orientation = _png_orientation(path) if fmt == "PNG" and "exif" not in im.info else _orientation(im)
        tags = getattr(im, "tag_v2", None) if fmt == "TIFF" else None
        if tags is not None:
            # Pillow may report a TIFF's size already turned by its orientation tag: the tags hold the stored grid
            w, h = int(tags.get(256, w)), int(tags.get(257, h))
    if orientation in _ROTATING:
        return ImageInfo(h, w, w, h, orientation, fmt)
    return ImageInfo(w, h, w, h, orientation, fmt)


def load_path(path: str | Path, *, max_pixels: int = MAX_PIXELS, exif: bool = True) -> np.ndarray:
    """Pixels of an image file as (h, w, 3) uint8 RGB, or (h, w) for grey/label maps, EXIF-rotated.

    Raises:
        FormatError: missing, unreadable, truncated, or a decompression bomb.
    """
    path = Path(path)
    base, member = idx_member(path)
    if member is not None:
        return np.array(_idx_images(base, member)[member])
    im = _open(path, max_pixels)
    with im:
        try:
            im.load()
        except (OSError, ValueError, SyntaxError) as e:
            raise FormatError(f"truncated or corrupt image data: {e}", path=path) from None
        if exif:
            im = displayed(im)
        if im.mode in ("L", "P", "I", "I;16", "1"):
            return np.asarray(im)
        return np.asarray(im.convert("RGB"))


def eight_bit(im: Image.Image) -> Image.Image:
    """``im`` with 16- and 32-bit integer pixels scaled from 0-65535 to 0-255 (grey, mode L); other modes as they
    are. Pillow's own conversions clip such pixels at 255, which turns most of a 16-bit picture white."""
    if im.mode == "I" or im.mode.startswith("I;16"):
        from PIL import Image

        a = np.asarray(im).astype(np.float64)
        return Image.fromarray(np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8))
    return im


def displayed(im: Image.Image) -> Image.Image:
    """``im`` turned by its EXIF orientation tag, as Pillow's ``ImageOps.exif_transpose`` shows it (``im`` itself
    when there is nothing to turn)."""
    from PIL import Image

    method = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}.get(_orientation(im))
    return im if method is None else im.transpose(method)


def load_rgb(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """(h, w, 3) uint8 RGB of an image file as displayed: EXIF orientation applied, palette images in their
    colours, 1-bit images as 0/255, 16- and 32-bit images scaled (``eight_bit``), grey repeated on 3 channels.
    ``load_path`` instead keeps a palette's indexes and raw values, which label maps need.

    Raises:
        FormatError: missing, unreadable, truncated, a decompression bomb, or without pixels.
    """
    path = Path(path)
    base, member = idx_member(path)
    if member is not None:
        arr = np.asarray(_idx_images(base, member)[member])
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        arr = np.repeat(arr[:, :, :1], 3, axis=2) if arr.shape[2] < 3 else arr[:, :, :3]
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
    else:
        with _open(path, max_pixels) as im:
            try:
                im.load()
            except (OSError, ValueError, SyntaxError) as e:
                raise FormatError(f"truncated or corrupt image data: {e}", path=path) from None
            arr = np.asarray(eight_bit(displayed(im)).convert("RGB"))
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise FormatError(f"image must have at least 1x1 pixels, got {arr.shape[1]}x{arr.shape[0]}", path=path)
    return arr


def image_path(ds: Dataset, i: int) -> Path:
    """Absolute path of image row ``i``."""
    rel = str(ds.images.path[i])
    return (ds.root / rel) if ds.root is not None else Path(rel)


def rows_by_stem(ds: Dataset) -> dict[str, int]:
    """Image file name without its suffix -> row in ``ds.images`` (-2 where two or more images share it), as the
    prediction formats that name images by stem (DOTA, Open Images) match them to the truth's."""
    rows: dict[str, int] = {}
    for i, p in enumerate(ds.images.path.tolist()):
        s = PurePosixPath(str(p)).stem
        rows[s] = -2 if s in rows else i
    return rows


def load(ds: Dataset, i: int, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Pixels of image row ``i`` of ``ds`` (see ``load_path``)."""
    return load_path(image_path(ds, i), max_pixels=max_pixels)


def is_image_name(name: str) -> bool:
    """The file name ends in an image suffix (``IMAGE_SUFFIXES``, any case), as ``Path.suffix`` reads one (a
    leading or trailing dot is no suffix)."""
    i = name.rfind(".")
    return 0 < i < len(name) - 1 and name[i:].lower() in IMAGE_SUFFIXES


@dataclass(frozen=True)
class ImageListing:
    """What ``list_images`` found under a folder.

    Attributes:
        images: image files (by suffix), sorted as Paths sort (by their parts), under the paths that reach them
            (a linked folder's images under the link's name). A link with an image suffix whose target is
            missing is listed too: reading it says why, as for any unreadable image.
        n_other: other files (no image suffix).
        broken_links: links without an image suffix whose target is missing (or that loop), sorted.
        unlisted: (folder, why) of the folders that could not be listed (no permission), sorted.
    """

    images: list[Path]
    n_other: int
    broken_links: list[Path]
    unlisted: list[tuple[Path, str]]


def list_images(folder: str | Path, *, hidden: bool = True) -> ImageListing:
    """The image files under ``folder``, walked with ``os.scandir``: linked folders and files are followed, and each
    real folder is walked once: under its path without a link when it has one (``all -> train`` beside ``train/``
    lists ``train/...``; adding a link changes no path), else under the first linked path in sorted order (a link
    to a parent, or a second link to a folder, is not walked again; that is no error). A stat call per folder and
    per link only.

    Args:
        folder: the folder.
        hidden: also list entries whose name starts with a dot (and walk such folders).

    Raises:
        FormatError: ``folder`` itself can't be listed.
    """
    from maslow.io._walk import folders

    root = str(folder)
    found: list[tuple[str, ...]] = []
    broken: list[tuple[str, ...]] = []
    unlisted: list[tuple[tuple[str, ...], str]] = []
    n_other = 0
    try:
        st = os.stat(root)
    except OSError as e:
        raise FormatError(f"folder can't be read: {e.strerror or e}", path=folder) from None
    for parts, _, entries in folders(root, (st.st_dev, st.st_ino), hidden=hidden):
        if isinstance(entries, OSError):
            if not parts:
                raise FormatError(f"folder can't be listed: {entries.strerror or entries}", path=folder) from None
            unlisted.append((parts, str(entries.strerror or entries)))
            continue
        for entry in entries:
            name = entry.name
            try:
                if entry.is_dir():
                    continue
                is_file = entry.is_file()
            except OSError:  # a link that loops: neither a file nor a folder
                is_file = False
            if is_image_name(name):
                if is_file or entry.is_symlink():  # a broken link: kept, reading it says "not found"
                    found.append((*parts, name))
            elif is_file:
                n_other += 1
            elif entry.is_symlink():
                broken.append((*parts, name))
    base = Path(folder)
    return ImageListing(images=[base.joinpath(*p) for p in sorted(found)], n_other=n_other,
                        broken_links=[base.joinpath(*p) for p in sorted(broken)],
                        unlisted=[(base.joinpath(*p), why) for p, why in sorted(unlisted)])


def find_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` by suffix, sorted (``list_images``: linked folders followed, each real folder
    once). Folders that can't be listed and broken links without an image suffix are said in a MaslowWarning
    (nothing is skipped without a word); a broken link with an image suffix is listed (reading it fails).

    Raises:
        FormatError: ``folder`` itself can't be listed.
    """
    from maslow.errors import MaslowWarning

    got = list_images(folder)
    if got.unlisted:
        first, why = got.unlisted[0]
        warnings.warn(f"{folder}: {len(got.unlisted)} folder{'s' if len(got.unlisted) > 1 else ''} could not be "
                      f"listed and {'were' if len(got.unlisted) > 1 else 'was'} skipped (first: {first}: {why})",
                      MaslowWarning, stacklevel=2)
    if got.broken_links:
        n = len(got.broken_links)
        warnings.warn(f"{folder}: {n} broken link{'s' if n > 1 else ''} (target missing) skipped: "
                      f"{', '.join(str(p) for p in got.broken_links[:3])}{', ...' if n > 3 else ''}",
                      MaslowWarning, stacklevel=2)
    return got.images
