"""The light embedder: colour histograms plus a histogram of oriented gradients, numpy only (no torch).

Glossary:
    decoding: images are opened with Pillow's ``draft`` (JPEG: libjpeg decodes at 1/2-1/8 scale, skipping most of
        the inverse DCT), turned by their EXIF orientation (the displayed image, as ``io.images.load_path``),
        converted to RGB (16-bit images scaled from 0-65535 to 0-255) and reduced to ``size`` x ``size`` pixels
        (aspect ratio not kept).
    colour part: a joint 4x4x4 RGB histogram of the whole image plus a 2x2 grid of 8-bin hue-free brightness
        histograms (layout), each normalised to sum 1.
    HOG part: gradient orientations (9 unsigned bins over 0-180 degrees) weighted by magnitude, in a 4x4 grid of
        cells, each cell L2-normalised (Dalal and Triggs' HOG without block overlap).
    output: the parts are square-rooted (Hellinger), concatenated and L2-normalised: (m, 256) float32.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from maslow.errors import FormatError


def load_small_rgb(path: str | Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB of an image as displayed (EXIF orientation applied, like ``io.images.load_path``),
    decoded at reduced scale when the format allows."""
    from maslow.io.images import MAX_PIXELS, _idx_images, _open, displayed, eight_bit, idx_member

    base, member = idx_member(path)
    if member is not None:
        arr = np.asarray(_idx_images(base, member)[member])
        im = Image.fromarray(arr if arr.ndim == 2 else arr[..., :3])
    else:
        im = _open(Path(path), MAX_PIXELS)
        try:
            im.draft("RGB", (size * 2, size * 2))
            im.load()
        except (OSError, ValueError, SyntaxError) as e:
            im.close()
            raise FormatError(f"truncated or corrupt image data: {e}", path=Path(path)) from None
        shown = displayed(im)
        if shown is not im:
            with im:
                im = shown
    with im:
        return np.asarray(eight_bit(im).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))


def hog(grey: np.ndarray, *, cells: int = 4, bins: int = 9) -> np.ndarray:
    """(cells * cells * bins,) float32 histogram of oriented gradients of a (h, w) float image."""
    g = grey.astype(np.float32)
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    gx[:, 1:-1] = g[:, 2:] - g[:, :-2]
    gy[1:-1, :] = g[2:, :] - g[:-2, :]
    mag = np.hypot(gx, gy)
    ang = np.mod(np.degrees(np.arctan2(gy, gx)), 180.0)
    b = np.minimum((ang / (180.0 / bins)).astype(np.int64), bins - 1)
    h, w = g.shape
    cy = np.minimum(np.arange(h) * cells // h, cells - 1)
    cx = np.minimum(np.arange(w) * cells // w, cells - 1)
    cell = cy[:, None] * cells + cx[None, :]
    flat = np.bincount((cell * bins + b).ravel(), weights=mag.ravel(), minlength=cells * cells * bins)
    hist = flat.astype(np.float64).reshape(cells * cells, bins)
    hist /= np.linalg.norm(hist, axis=1, keepdims=True) + 1e-6
    return hist.ravel().astype(np.float32)


def features_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """(256,) float32 L2-normalised colour + layout + HOG features of an (s, s, 3) uint8 image."""
    q = (rgb // 64).astype(np.int64)
    joint = np.bincount((q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).ravel(), minlength=64).astype(np.float32)
    joint /= joint.sum()
    grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    s = grey.shape[0]
    layout = []
    for qy in range(2):
        for qx in range(2):
            block = grey[qy * s // 2 : (qy + 1) * s // 2, qx * s // 2 : (qx + 1) * s // 2]
            hh = np.bincount(np.minimum(block // 32, 7).astype(np.int64).ravel(), minlength=8).astype(np.float32)
            layout.append(hh / max(hh.sum(), 1.0))
    hg = hog(grey)
    v = np.concatenate([np.sqrt(joint), np.sqrt(np.concatenate(layout)), np.sqrt(hg / (hg.sum() + 1e-6)),
                        np.zeros(256 - 64 - 32 - 144, dtype=np.float32)])
    return np.asarray(v / (np.linalg.norm(v) + 1e-12), dtype=np.float32)


class LightEmbedder:
    """Colour histograms + HOG on small draft-decoded images: fast, torch-free, (m, 256) float32.

    Example:
        >>> LightEmbedder().dim
        256
    """

    name = "light-v2"
    dim = 256

    def __init__(self, *, size: int = 64) -> None:
        self.size = size
        self.name = f"light-v2-{size}"  # v2: EXIF orientation applied, 16-bit images scaled

    def embed(self, paths: Sequence[str | Path], *, batch_size: int = 64,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """(len(paths), 256) float32 features. Raises FormatError for an unreadable image."""
        out = np.zeros((len(paths), self.dim), dtype=np.float32)
        for i, p in enumerate(paths):
            out[i] = features_from_rgb(load_small_rgb(p, self.size))
            if progress is not None and ((i + 1) % batch_size == 0 or i + 1 == len(paths)):
                progress(i + 1, len(paths))
        return out
