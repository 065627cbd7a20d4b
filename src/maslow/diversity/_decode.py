"""Fast greyscale (and colour) decoding for image statistics and hashing (JPEG draft mode: DCT-domain downscaling).

Pillow's ``draft`` asks libjpeg to decode at 1/2, 1/4 or 1/8 scale, which skips most of the inverse DCT work;
the result is at least the requested size. Other formats are decoded in full and then reduced. EXIF
orientation is not applied: statistics and hashes are computed on the stored pixel grid. Grey levels are
Pillow's ``convert("L")``, except for 16- and 32-bit integer images, which are scaled from 0-65535 to 0-255 (as
the light embedder; Pillow would clip them at 255).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from maslow.errors import FormatError
from maslow.io.images import MAX_PIXELS, _idx_images, eight_bit, idx_member


def open_grey(path: str | Path, min_side: int, *, max_pixels: int = MAX_PIXELS) -> tuple[Image.Image, int, int]:
    """(greyscale image at least ``min_side`` pixels on each side when the file allows, stored width, height).

    Raises:
        FormatError: the file is missing, unreadable, truncated or a decompression bomb.
    """
    return _open(path, min_side, colour=False, max_pixels=max_pixels)


def open_colour(path: str | Path, min_side: int, *, max_pixels: int = MAX_PIXELS) -> tuple[Image.Image, int, int]:
    """(image in mode ``RGB``, or ``L`` when the file stores one grey channel, at least ``min_side`` pixels on each
    side when the file allows, stored width, height). Transparency is dropped (the colour channels are kept).

    Raises:
        FormatError: the file is missing, unreadable, truncated or a decompression bomb.
    """
    return _open(path, min_side, colour=True, max_pixels=max_pixels)


_GREY_MODES = ("1", "L", "LA", "La", "F")


def _open(path: str | Path, min_side: int, *, colour: bool, max_pixels: int) -> tuple[Image.Image, int, int]:
    path = Path(path)
    base, member = idx_member(path)
    if member is not None:
        arr = np.asarray(_idx_images(base, member)[member])
        if arr.ndim == 3 and colour and arr.shape[2] == 3:
            return Image.fromarray(arr.astype(np.uint8), "RGB"), arr.shape[1], arr.shape[0]
        if arr.ndim == 3:
            arr = arr.mean(axis=2).astype(np.uint8)
        return Image.fromarray(arr.astype(np.uint8)), arr.shape[1], arr.shape[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise FormatError(f"image must have at most {max_pixels} pixels, got {w}x{h}", path=path)
                if im.mode == "I" or im.mode.startswith("I;16"):
                    grey = eight_bit(im)
                else:
                    mode = "RGB" if colour and not _grey_file(im) else "L"
                    if im.format == "JPEG":
                        im.draft(mode, (min_side, min_side))
                    grey = im.convert(mode)
                    grey.load()
    except FormatError:
        raise  # already says what is wrong (a FormatError is a ValueError: don't wrap it as "unreadable")
    except FileNotFoundError:
        raise FormatError("image file not found", path=path) from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise FormatError(f"unreadable image: {e}", path=path) from None
    return grey, w, h


def _grey_file(im: Image.Image) -> bool:
    """The file stores one grey channel: a grey mode, or a palette whose colours are all grey."""
    if im.mode in _GREY_MODES:
        return True
    if im.mode != "P":
        return False
    pal = im.getpalette() or []
    rgb = np.asarray(pal[:len(pal) // 3 * 3], np.int64).reshape(-1, 3)
    return bool(len(rgb)) and bool((rgb.max(axis=1) == rgb.min(axis=1)).all())
