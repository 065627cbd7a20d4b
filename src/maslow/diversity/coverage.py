"""Coverage: how image, object and metadata properties are distributed, and which values are under-covered.

Glossary:
- Image properties are computed on greyscale pixels decoded fast (JPEG draft mode) and reduced so the longer
  side is at most ``max_side`` (256) pixels, so that sharpness is comparable across resolutions:
  *brightness* = mean / 255, *contrast* = standard deviation / 255 (RMS contrast), *sharpness* = variance of
  the 4-neighbour Laplacian (low = blurry; Pech-Pacheco et al. 2000); *resolution* (megapixels) and *aspect*
  (width / height) come from the images table.
- Object properties: COCO size buckets of the annotation area, as ``dataset_stats`` and COCO's APs/APm/APl
  measure it (the ``area`` field, else the segment's pixels, else the box's ``w x h``; < 32², < 96², larger;
  semantic classes have none), and, from boxes, aspect (width / height) buckets, a ``grid`` x ``grid`` heatmap
  of box centres normalised by the image size (row = top to bottom); objects per image, and size buckets per
  class. Crowd regions (a group of objects labelled once) are left out of the size, aspect, centre and
  size-per-class properties; they count in ``class`` and ``per_image``.
- Metadata: every ``images.extra`` column with at most ``max_values`` distinct values (ids and paths are
  skipped) and every annotation attribute; values as strings, unset values (None, NaN) not counted.
- *Under-covered* (the rule): a bin or value whose share is below ``rel_share`` x the uniform share
  (``1 / number of bins``); with the default 0.25, a 10-bin histogram names bins under 2.5% of the images.
  For categories (size buckets, classes, grid cells, metadata values) empty ones are named too; for ordered
  histograms (brightness, contrast, sharpness, resolution, aspect, objects per image) only bins between the
  lowest and highest non-empty bin are (thin bins and gaps inside the observed range; the range itself is in
  ``to_dict()["image_summary"]``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maslow._plot import figure
from maslow.core import boxes as B
from maslow.core.dataset import Dataset
from maslow.core.types import FloatArray, is_unset
from maslow.diversity._decode import open_grey
from maslow.diversity.stats import annotation_areas, annotation_pixels, semantic_classes, stats_with_pixels
from maslow.errors import FormatError, MaslowError

Progress = Callable[[int, int], None]

BRIGHTNESS_EDGES = tuple(np.round(np.linspace(0, 1, 11), 2).tolist())
CONTRAST_EDGES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 1.0)
SHARPNESS_EDGES = (0.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, math.inf)
RESOLUTION_EDGES = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, math.inf)  # megapixels
ASPECT_EDGES = (0.0, 0.5, 0.8, 1.25, 2.0, math.inf)


@dataclass(frozen=True)
class Distribution:
    """Counts over named bins or values, with the under-covered ones.

    Attributes:
        name: property name. ``labels``: bin or value names. ``counts``: count per label. ``under``: labels
            below the under-covered rule.
    """

    name: str
    labels: tuple[str, ...]
    counts: tuple[int, ...]
    under: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def to_dict(self) -> dict[str, Any]:
        return {"counts": dict(zip(self.labels, self.counts, strict=True)), "under_covered": list(self.under)}


def _dist(name: str, labels: list[str], counts: Any, rel_share: float, *, ordered: bool = False) -> Distribution:
    c = [int(x) for x in np.asarray(counts).tolist()]
    total = sum(c)
    limit = rel_share / max(len(c), 1) * total
    nz = [j for j, n in enumerate(c) if n]
    lo, hi = (nz[0], nz[-1]) if ordered and nz else (0, len(c) - 1)
    under = tuple(lab for j, (lab, n) in enumerate(zip(labels, c, strict=True))
                  if total and n < limit and lo <= j <= hi)
    return Distribution(name=name, labels=tuple(labels), counts=tuple(c), under=under)


def _edge_labels(edges: tuple[float, ...], fmt: str = "{:g}") -> list[str]:
    out = []
    for lo, hi in itertools.pairwise(edges):
        out.append(f">={fmt.format(lo)}" if math.isinf(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}")
    return out


def _hist(name: str, values: FloatArray, edges: tuple[float, ...], rel_share: float) -> Distribution:
    v = values[np.isfinite(values)]
    idx = np.clip(np.searchsorted(np.asarray(edges), v, side="right") - 1, 0, len(edges) - 2)
    return _dist(name, _edge_labels(edges), np.bincount(idx, minlength=len(edges) - 1), rel_share, ordered=True)


@dataclass(frozen=True, eq=False)
class CoverageReport:
    """Distributions of image, object and metadata properties (see the module glossary).

    Attributes:
        image: property -> Distribution (brightness, contrast, sharpness, resolution_mp, aspect).
        objects: property -> Distribution (size, aspect, per_image, position).
        per_class: class -> Distribution of box size buckets.
        metadata: ``extra:<column>`` / ``attribute:<name>`` -> Distribution of values.
        position: (grid, grid) int64 box centres per cell (row 0 = top).
        values: property -> (m,) per-image values (NaN where the image could not be read or was not decoded).
        unreadable: (row, message) of image files that could not be decoded.
        rel_share: the under-covered rule's factor.
    """

    image: dict[str, Distribution]
    objects: dict[str, Distribution]
    per_class: dict[str, Distribution]
    metadata: dict[str, Distribution]
    position: np.ndarray
    values: dict[str, FloatArray] = field(default_factory=dict)
    unreadable: tuple[tuple[int, str], ...] = ()
    rel_share: float = 0.25

    def under_covered(self) -> list[tuple[str, str, str]]:
        """(group, property, value) of every under-covered bin or value."""
        out = []
        for group, dists in (("image", self.image), ("objects", self.objects), ("per_class", self.per_class),
                             ("metadata", self.metadata)):
            for name, d in dists.items():
                out += [(group, name, u) for u in d.under]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (used by ``--json``)."""
        def stats(v: FloatArray) -> dict[str, float | None]:
            f = v[np.isfinite(v)]
            if not len(f):
                return {"mean": None, "p05": None, "median": None, "p95": None}
            p = np.percentile(f, [5, 50, 95])
            return {"mean": float(f.mean()), "p05": float(p[0]), "median": float(p[1]), "p95": float(p[2])}

        return {
            "rule": f"under-covered: share < {self.rel_share} x uniform share (1 / number of bins)",
            "image": {k: d.to_dict() for k, d in self.image.items()},
            "image_summary": {k: stats(v) for k, v in self.values.items()},
            "objects": {k: d.to_dict() for k, d in self.objects.items()},
            "position_grid": self.position.tolist(),
            "per_class": {k: d.to_dict() for k, d in self.per_class.items()},
            "metadata": {k: d.to_dict() for k, d in self.metadata.items()},
            "under_covered": [{"group": g, "property": p, "value": v} for g, p, v in self.under_covered()],
            "unreadable": [{"row": i, "error": e} for i, e in self.unreadable],
        }


def image_properties(
    paths: list[Path], *, max_side: int = 256, progress: Progress | None = None
) -> tuple[dict[str, FloatArray], list[tuple[int, str]]]:
    """Per-image brightness, contrast and sharpness (see the glossary); NaN and an error for unreadable files."""
    m = len(paths)
    out = {k: np.full(m, np.nan) for k in ("brightness", "contrast", "sharpness")}
    errors: list[tuple[int, str]] = []
    for i, p in enumerate(paths):
        try:
            im, _, _ = open_grey(p, max_side)
            with im:
                if max(im.size) > max_side:
                    im.thumbnail((max_side, max_side))
                g = np.asarray(im, np.float64)
        except (FormatError, OSError, ValueError) as e:
            errors.append((i, str(e)))
            g = None
        if g is not None and g.size:
            out["brightness"][i] = g.mean() / 255.0
            out["contrast"][i] = g.std() / 255.0
            if g.shape[0] >= 3 and g.shape[1] >= 3:
                lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
                out["sharpness"][i] = lap.var()
        if progress is not None and (i % 32 == 31 or i == m - 1):
            progress(i + 1, m)
    return out, errors


def coverage(
    ds: Dataset,
    *,
    pixels: bool = True,
    grid: int = 4,
    rel_share: float = 0.25,
    max_values: int = 50,
    max_side: int = 256,
    progress: Progress | None = None,
) -> CoverageReport:
    """Coverage of image, object and metadata properties, with the under-covered bins and values named.

    Args:
        ds: the dataset (image files read from ``ds.root`` when ``pixels``).
        pixels: decode images for brightness, contrast and sharpness (False: sizes only, no file access).
        grid: cells per side of the box-centre heatmap.
        rel_share: under-covered rule factor (see the module glossary).
        max_values: metadata columns with more distinct values are skipped.
        max_side: longer side images are reduced to before measuring.
        progress: ``progress(done, total)`` over the images.

    Raises:
        MaslowError: ``grid`` < 1, or ``rel_share`` not a number >= 0.
    """
    if grid < 1:
        raise MaslowError(f"coverage: grid must be >= 1, got {grid}")
    if not rel_share >= 0 or math.isinf(rel_share):
        raise MaslowError(f"coverage: rel_share must be a number >= 0, got {rel_share}")
    im, a = ds.images, ds.annotations
    w, h = im.width.astype(np.float64), im.height.astype(np.float64)
    known = (w > 0) & (h > 0)
    values: dict[str, FloatArray] = {
        "resolution_mp": np.where(known, w * h / 1e6, np.nan),
        "aspect": np.where(known, w / np.where(h > 0, h, 1), np.nan),
    }
    errors: list[tuple[int, str]] = []
    if pixels:
        root = ds.root if ds.root is not None else Path(".")
        props, errors = image_properties([root / str(p) for p in im.path.tolist()], max_side=max_side,
                                         progress=progress)
        values = {**props, **values}
    image: dict[str, Distribution] = {}
    for name, edges in (("brightness", BRIGHTNESS_EDGES), ("contrast", CONTRAST_EDGES),
                        ("sharpness", SHARPNESS_EDGES), ("resolution_mp", RESOLUTION_EDGES),
                        ("aspect", ASPECT_EDGES)):
        if name in values:
            image[name] = _hist(name, values[name], edges, rel_share)
    semantic = semantic_classes(ds.schema)
    areas = annotation_areas(ds)  # measured once, for stats and the size buckets here
    stats = stats_with_pixels(ds, semantic, annotation_pixels(ds, semantic)[0], areas)
    objects: dict[str, Distribution] = {}
    assert a.box is not None
    crowd = a.iscrowd if a.iscrowd is not None else np.zeros(len(a), bool)
    has = a.has_box & ~crowd
    bx = a.box[has]
    sized = ~crowd & ~semantic[a.label] if len(a) else np.zeros(0, bool)
    bucket = B.size_bucket(areas[sized])
    objects["size"] = _dist("size", list(stats.size_buckets),
                            [int((bucket == s).sum()) for s in stats.size_buckets], rel_share)
    bw, bh = bx[:, 2] - bx[:, 0], bx[:, 3] - bx[:, 1]
    box_aspect = np.where(bh > 0, bw / np.where(bh > 0, bh, 1), np.nan)
    objects["aspect"] = _hist("aspect", box_aspect, ASPECT_EDGES, rel_share)
    objects["per_image"] = _dist("per_image", list(stats.per_image_bins), stats.per_image_hist, rel_share,
                                 ordered=True)
    img = a.image[has]
    ok = known[img]
    cx = (bx[ok, 0] + bx[ok, 2]) / 2 / w[img[ok]]
    cy = (bx[ok, 1] + bx[ok, 3]) / 2 / h[img[ok]]
    gx = np.clip((cx * grid).astype(np.int64), 0, grid - 1)
    gy = np.clip((cy * grid).astype(np.int64), 0, grid - 1)
    position = np.zeros((grid, grid), np.int64)
    np.add.at(position, (gy, gx), 1)
    objects["position"] = _dist("position", [f"r{r}c{c}" for r in range(grid) for c in range(grid)],
                                position.ravel(), rel_share)
    # the annotations of objects["size"] (crowd regions left out), so the classes add up to it
    size_per_class = np.stack([np.bincount(a.label[sized][bucket == s], minlength=len(ds.schema.names))
                               for s in stats.size_buckets], axis=1)
    per_class = {name: _dist(name, list(stats.size_buckets), size_per_class[k], rel_share)
                 for k, name in enumerate(ds.schema.names)}
    per_class_counts = _dist("class", list(ds.schema.names), stats.annotations_per_class, rel_share)
    objects["class"] = per_class_counts
    metadata: dict[str, Distribution] = {}
    for col, arr in im.extra.items():
        vals = [str(v) for v in np.asarray(arr, dtype=object).tolist() if not is_unset(v)]  # NaN was a value 'nan'
        if not vals:
            continue
        uniq, cnt = np.unique(np.asarray(vals, dtype=str), return_counts=True)
        if len(uniq) <= max_values and len(uniq) < len(vals):
            metadata[f"extra:{col}"] = _dist(col, [str(u) for u in uniq.tolist()], cnt, rel_share)
    for name, counts in stats.attributes.items():
        if counts:
            metadata[f"attribute:{name}"] = _dist(name, list(counts), list(counts.values()), rel_share)
    return CoverageReport(image=image, objects=objects, per_class=per_class, metadata=metadata, position=position,
                          values=values, unreadable=tuple(errors), rel_share=rel_share)


def _figure(width: float, height: float) -> Any:
    return figure(width, height, dpi=100)


def _save(fig: Any, path: Path) -> Path:
    from maslow.core.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _bars(ax: Any, d: Distribution, title: str) -> None:
    x = np.arange(len(d.labels))
    colours = ["tab:red" if lab in d.under else "tab:blue" for lab in d.labels]
    ax.bar(x, d.counts, color=colours)
    ax.set_xticks(x, d.labels, rotation=45, ha="right", fontsize=7)
    for tick, colour in zip(ax.get_xticklabels(), colours, strict=True):
        tick.set_color("tab:red" if colour == "tab:red" else "black")
    ax.set_title(title + (" (red: under-covered)" if d.under else ""), fontsize=9)


def plot_coverage(result: CoverageReport, out_dir: str | Path) -> list[Path]:
    """Write coverage PNGs into ``out_dir`` (atomically): image properties, objects, metadata; returns the paths.

    Raises:
        MissingDependencyError: matplotlib is not installed (extra ``reports``).
    """
    out = Path(out_dir)
    written = []
    if result.image:
        fig = _figure(4 * len(result.image), 3.2)
        axes = fig.subplots(1, len(result.image), squeeze=False)[0]
        for ax, (name, d) in zip(axes, result.image.items(), strict=True):
            _bars(ax, d, name)
        written.append(_save(fig, out / "coverage_images.png"))
    fig = _figure(16, 3.6)
    axes = fig.subplots(1, 4)
    for ax, key in zip(axes[:3], ("size", "aspect", "per_image"), strict=True):
        _bars(ax, result.objects[key], f"objects: {key}")
    hm = axes[3].imshow(result.position, cmap="viridis", extent=(0, 1, 1, 0))
    axes[3].set_title("box centres (image-normalised)", fontsize=9)
    fig.colorbar(hm, ax=axes[3])
    written.append(_save(fig, out / "coverage_objects.png"))
    if result.metadata:
        n = len(result.metadata)
        fig = _figure(min(4 * n, 20), 3.4 * (1 + (n - 1) // 5))
        axes = fig.subplots(1 + (n - 1) // 5, min(n, 5), squeeze=False).ravel()
        for ax, (name, d) in zip(axes, result.metadata.items(), strict=False):
            _bars(ax, d, name)
        for ax in axes[n:]:
            ax.set_axis_off()
        written.append(_save(fig, out / "coverage_metadata.png"))
    return written
