"""Odd images: exposure, information, blur, shape, size and colour problems of single images.

The issue types are cleanvision's (``Imagelab.find_issues``); the rules are maslow's, relative to the dataset
where a fixed number would flag a whole domain (soft microscopy as blurry, panoramas as oddly shaped).

Glossary:
- Pixels are decoded fast (JPEG draft mode) in colour and reduced so the longer side is at most ``max_side``
  (256) pixels. *grey* is luma (ITU-R 601, as Pillow's ``convert("L")``) / 255; *p01* and *p99* are its 1st and
  99th percentiles. Width and height are the stored ones (EXIF orientation does not change an image's
  elongation or size).
- *dark*: p99 < ``dark`` (0.32): even the brightest 1% of the pixels are under a third of white.
- *light*: p01 > ``light`` (0.68, the mirror of ``dark``): even the darkest 1% are brighter than two thirds of
  white (washed out, over-exposed).
- *low_information*: *range*, p99 - p01 of grey reduced to at most 64 pixels a side (box filter: sensor noise
  averages out, an object of a few percent of the picture does not), below ``min_range`` (0.05): 98% of the
  picture lies within 5% of the grey scale (a blank or uniform frame, a lens cap, a flat colour with noise).
- *blurry*: *sharpness*, the variance of the 4-neighbour Laplacian over the variance of grey (so exposure and
  contrast do not count: a dark image is not blurry for being dark), below ``blur_share`` (0.1) times the
  dataset's median sharpness (relative: a soft domain is not flagged whole; needs 5 measured images).
  Low-information images are not measured (noise is all they have).
- *odd_aspect_ratio*: *elongation* (longer side / shorter side) above ``aspect_factor`` (2) times the dataset's
  median elongation: a 5:1 strip among 4:3 photos is flagged, a portrait photo among landscape ones is not.
- *odd_size*: *side*, the square root of width x height, under the dataset's median side divided by
  ``size_factor`` (3) or above it multiplied by ``size_factor``.
- *grayscale*: the file stores one grey channel, or its colour channels agree (the mean over pixels of
  max - min of R, G, B, the *spread*, is at most ``grey_spread``, 2 of 255: grey pictures saved as RGB), in a
  dataset whose images are mostly (over half) in colour. Dark, light and low-information images are not
  judged: too little or too much light shows no colour.
- An image may have several issues. One that can't be read is listed in ``unreadable`` with its reason and has
  no issue and NaN values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.diversity._decode import open_colour
from maslow.errors import FormatError, MaslowError

Progress = Callable[[int, int], None]

#: the issue types, in cleanvision's order of image-property issues
ISSUES = ("dark", "light", "low_information", "blurry", "odd_aspect_ratio", "odd_size", "grayscale")
_LUMA = np.array([0.299, 0.587, 0.114])
_RANGE_SIDE = 64  # low information is judged on the picture at this size


@dataclass(frozen=True)
class IssueRules:
    """The thresholds of ``image_issues`` (see the module glossary for each rule).

    Attributes:
        dark: p99 of grey (0-1) under which an image is dark.
        light: p01 of grey (0-1) above which an image is light.
        min_range: *range* (p99 - p01 of grey measured on the picture reduced to at most 64 pixels a side, not
            the ``p01``/``p99`` reported) under which an image has low information.
        blur_share: sharpness under this share of the dataset's median is blurry.
        aspect_factor: elongation above this multiple of the dataset's median is an odd aspect ratio.
        size_factor: a side this many times smaller or larger than the dataset's median is an odd size.
        grey_spread: mean channel spread (0-255) up to which a colour image counts as grey.
    """

    dark: float = 0.32
    light: float = 0.68
    min_range: float = 0.05
    blur_share: float = 0.1
    aspect_factor: float = 2.0
    size_factor: float = 3.0
    grey_spread: float = 2.0

    def __post_init__(self) -> None:
        for name in ("dark", "light", "min_range", "blur_share"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise MaslowError(f"IssueRules.{name} must be in [0, 1], got {v}")
        for name in ("aspect_factor", "size_factor"):
            v = getattr(self, name)
            if not (v >= 1 and math.isfinite(v)):
                raise MaslowError(f"IssueRules.{name} must be a number >= 1, got {v}")
        if not 0 <= self.grey_spread <= 255:
            raise MaslowError(f"IssueRules.grey_spread must be in [0, 255], got {self.grey_spread}")


@dataclass(frozen=True, eq=False)
class ImageIssues:
    """Odd images of a dataset, per issue type (see the module glossary).

    Attributes:
        paths: image paths (``images.path``), for display.
        flags: issue -> (m,) bool, for every type in ``ISSUES``.
        values: measure -> (m,) float64 per image: ``p01``, ``p99``, ``range`` (grey, 0-1; ``range`` is p99 - p01
            of the picture reduced to at most 64 pixels a side, so it is not ``p99 - p01``), ``sharpness``,
            ``elongation``, ``side`` (pixels), ``spread`` (0-255); NaN where not measured (unreadable; sharpness
            of low-information images).
        limits: the thresholds applied, in the units of ``values``: ``dark`` (p99 <), ``light`` (p01 >),
            ``low_information`` (range <), ``blurry`` (sharpness <), ``odd_aspect_ratio`` (elongation >),
            ``odd_size_low`` / ``odd_size_high`` (side < / >), ``grayscale`` (spread <=); NaN when the rule could
            not apply (blurry with fewer than 5 measured images; grayscale in a mostly grey dataset).
        rules: the ``IssueRules`` used.
        unreadable: (row, message) of files that could not be decoded.
    """

    paths: tuple[str, ...]
    flags: dict[str, BoolArray]
    values: dict[str, FloatArray]
    limits: dict[str, float]
    rules: IssueRules
    unreadable: tuple[tuple[int, str], ...]

    @property
    def n_images(self) -> int:
        return len(self.paths)

    @property
    def any(self) -> BoolArray:
        """(m,) bool: the image has at least one issue."""
        out = np.zeros(self.n_images, bool)
        for f in self.flags.values():
            out |= f
        return out

    def rows(self, issue: str) -> IntArray:
        """Image rows with ``issue``, the furthest past its limit first (stable for ties).

        Raises:
            MaslowError: an unknown issue type.
        """
        if issue not in self.flags:
            raise MaslowError(f"ImageIssues.rows: issue must be one of {', '.join(ISSUES)}, got {issue!r}")
        v = self.values
        severity = {
            "dark": -v["p99"], "light": v["p01"], "low_information": -v["range"],
            "blurry": -v["sharpness"], "odd_aspect_ratio": v["elongation"],
            "odd_size": np.abs(np.log(v["side"] / _median(v["side"]))), "grayscale": -v["spread"],
        }[issue]
        rows = np.flatnonzero(self.flags[issue])
        return rows[np.argsort(-severity[rows], kind="stable")].astype(np.int64)

    def issues_of(self, i: int) -> tuple[str, ...]:
        """The issue types of image row ``i``."""
        return tuple(t for t in ISSUES if self.flags[t][i])

    def to_dict(self, *, limit: int | None = None) -> dict[str, Any]:
        """JSON-safe form (``--json``): per issue its count, limit and flagged paths (the first ``limit``)."""
        def num(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        out: dict[str, Any] = {"n_images": self.n_images, "n_flagged": int(self.any.sum()),
                               "rules": asdict(self.rules), "limits": {k: num(x) for k, x in self.limits.items()},
                               "issues": {}}
        for t in ISSUES:
            rows = self.rows(t)
            out["issues"][t] = {"count": len(rows), "images": [
                {"path": self.paths[i], **{k: num(float(a[i])) for k, a in self.values.items()}}
                for i in rows[:limit].tolist()]}
        out["unreadable"] = [{"image": self.paths[i], "error": e} for i, e in self.unreadable]
        return out

    def to_pandas(self) -> Any:
        """One row per image: path, one bool column per issue, the measured values."""
        import pandas as pd

        return pd.DataFrame({"path": list(self.paths), **{t: self.flags[t] for t in ISSUES}, **self.values})


def _median(x: FloatArray) -> float:
    f = x[np.isfinite(x)]
    return float(np.median(f)) if len(f) else math.nan


def _measure(path: Path, max_side: int) -> tuple[float, ...]:
    """(p01, p99, range, sharpness, width, height, spread) of one image file."""
    im, w, h = open_colour(path, max_side)
    with im:
        if max(im.size) > max_side:
            im.thumbnail((max_side, max_side), Image.Resampling.BOX)
        a = np.asarray(im)
        f = min(1.0, _RANGE_SIDE / max(im.size))
        small = im.convert("L").resize((max(1, round(im.size[0] * f)), max(1, round(im.size[1] * f))),
                                       Image.Resampling.BOX)
        lo, hi = np.percentile(np.asarray(small, np.float64), [1, 99]) / 255.0
    if a.ndim == 3:
        grey = a @ _LUMA
        r, g, b = a[..., 0], a[..., 1], a[..., 2]  # channel-wise (a reduction over an axis of 3 is slow)
        spread = float((np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)).mean())
    else:
        grey, spread = a.astype(np.float64), 0.0
    p01, p99 = (np.percentile(grey, [1, 99]) / 255.0).tolist()
    sharp = math.nan
    var = float(grey.var())
    if grey.shape[0] >= 3 and grey.shape[1] >= 3 and var > 0:
        lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]
        sharp = float(lap.var()) / var
    return p01, p99, float(hi - lo), sharp, float(w), float(h), spread


def image_issues(ds: Dataset, *, rules: IssueRules | None = None, max_side: int = 256,
                 progress: Progress | None = None) -> ImageIssues:
    """Flag odd images: dark, light, low information, blurry, odd aspect ratio, odd size, grayscale.

    Args:
        ds: the dataset; its image files are read from ``ds.root``.
        rules: the thresholds (``IssueRules()``: see the module glossary).
        max_side: longer side images are reduced to before measuring.
        progress: ``progress(done, total)`` over the images.

    Returns:
        ImageIssues: per issue type the flagged rows (``rows(issue)``), the measured values and the limits.

    Raises:
        MaslowError: ``max_side`` under 8.

    Example:
        >>> from maslow.sample import write_shapes
        >>> import tempfile
        >>> r = image_issues(write_shapes(tempfile.mkdtemp(), 6, seed=0))
        >>> r.n_images, sorted(r.flags) == sorted(ISSUES)
        (6, True)
    """
    from maslow.io.images import image_path

    rules = rules if rules is not None else IssueRules()
    if max_side < 8:
        raise MaslowError(f"image_issues: max_side must be >= 8, got {max_side}")
    m = ds.n_images
    vals = np.full((m, 7), np.nan)
    errors: list[tuple[int, str]] = []
    for i in range(m):
        try:
            vals[i] = _measure(image_path(ds, i), max_side)
        except (FormatError, OSError, ValueError) as e:
            errors.append((i, str(e)))
        if progress is not None and (i % 32 == 31 or i == m - 1):
            progress(i + 1, m)
    p01, p99, rng, sharp, w, h, spread = vals.T
    ok = np.isfinite(p01)
    side = np.sqrt(w * h)
    elong = np.maximum(w, h) / np.minimum(w, h)
    flags: dict[str, BoolArray] = {}
    flags["dark"] = ok & (p99 < rules.dark)
    flags["light"] = ok & (p01 > rules.light)
    flags["low_information"] = ok & (rng < rules.min_range)
    sharp = np.where(flags["low_information"], np.nan, sharp)
    measured = np.isfinite(sharp)
    blur_limit = rules.blur_share * _median(sharp) if measured.sum() >= 5 else math.nan
    flags["blurry"] = measured & (sharp < blur_limit) if not math.isnan(blur_limit) else np.zeros(m, bool)
    aspect_limit = rules.aspect_factor * _median(elong)
    flags["odd_aspect_ratio"] = ok & (elong > aspect_limit)
    med_side = _median(side)
    lo, hi = med_side / rules.size_factor, med_side * rules.size_factor
    flags["odd_size"] = ok & ((side < lo) | (side > hi))
    grey = ok & (spread <= rules.grey_spread)
    colour_share = float((ok & ~grey).sum() / ok.sum()) if ok.any() else 0.0
    judged = ok & ~flags["dark"] & ~flags["light"] & ~flags["low_information"]
    flags["grayscale"] = grey & judged if colour_share > 0.5 else np.zeros(m, bool)
    limits = {"dark": rules.dark, "light": rules.light, "low_information": rules.min_range, "blurry": blur_limit,
              "odd_aspect_ratio": aspect_limit, "odd_size_low": lo, "odd_size_high": hi,
              "grayscale": rules.grey_spread if colour_share > 0.5 else math.nan}
    values = {"p01": p01, "p99": p99, "range": rng, "sharpness": sharp, "elongation": elong, "side": side, "spread": spread}
    return ImageIssues(paths=tuple(str(p) for p in ds.images.path.tolist()),
                       flags={t: np.asarray(flags[t], bool) for t in ISSUES},
                       values={k: np.asarray(v, np.float64) for k, v in values.items()}, limits=limits, rules=rules,
                       unreadable=tuple(errors))
