"""The format registry: one entry per file format, mapping a name to its reader and writer.

Every format module defines
  ``parse(src, *, images_root=None, strict=False, **options) -> tuple[Dataset, Report]`` and
  ``write(ds, dst, **options) -> ExportReport``,
and the public ``read_<format>``/``write_<format>`` functions on top of them. A writer that takes a ``progress``
keyword reports ``progress(done, total)`` through ``Ticks`` (``FormatSpec.reports_progress`` says which do).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.errors import FormatError, MaslowWarning


@dataclass(frozen=True)
class FormatSpec:
    name: str
    module: str
    description: str
    can_write: bool = True
    aliases: tuple[str, ...] = ()

    def _mod(self) -> Any:
        return importlib.import_module(f"maslow.io.{self.module}")

    @property
    def parse(self) -> Callable[..., tuple[Dataset, Report]]:
        return self._mod().parse  # type: ignore[no-any-return]

    @property
    def write(self) -> Callable[..., Any]:
        if not self.can_write:
            raise FormatError(f"format {self.name!r} can be read, not written")
        return self._mod().write  # type: ignore[no-any-return]

    @property
    def needs_like(self) -> bool:
        """Whether the reader reads predictions onto a truth's images (``parse(src, like=truth)``: COCO and DOTA
        results, which name images by id or stem, not by path)."""
        return "like" in inspect.signature(self.parse).parameters

    @property
    def reports_progress(self) -> bool:
        """Whether the writer takes a ``progress(done, total)`` callback (``io.write`` passes it only then)."""
        return self.can_write and "progress" in inspect.signature(self.write).parameters


FORMATS: dict[str, FormatSpec] = {
    f.name: f
    for f in (
        FormatSpec("coco", "coco", "COCO instances/keypoints JSON (boxes, polygons, RLE, crowd)"),
        FormatSpec("coco-results", "coco_results", "COCO results JSON: scored predictions (needs like=truth)"),
        FormatSpec("yolo", "yolo", "YOLO detect/segment/pose txt files plus data.yaml, classify folders", aliases=("ultralytics",)),
        FormatSpec("voc", "voc", "Pascal VOC XML, one file per image", aliases=("pascal-voc", "pascalvoc")),
        FormatSpec("cvat", "cvat", "CVAT for images/video 1.1 XML (boxes, polygons, masks, ellipses, cuboids, skeletons, tracks, tags)"),
        FormatSpec("labelstudio", "labelstudio", "Label Studio JSON export (with predictions)",
                   aliases=("label-studio", "ls")),
        FormatSpec("imagefolder", "imagefolder", "classification: one folder per class", aliases=("folder",)),
        FormatSpec("masks", "semantic", "semantic segmentation: PNG label maps", aliases=("semantic",)),
        FormatSpec("parquet", "parquet", "maslow's own columnar format (fast, lossless)", aliases=("maslow",)),
        FormatSpec("mnist", "idx", "IDX images + labels (MNIST)", aliases=("idx",)),
        FormatSpec("dota", "dota", "DOTA oriented boxes: labelTxt/ files of 4 corners + category + difficult"),
        FormatSpec("dota-results", "dota_results", "DOTA Task1/Task2 results: one file per class (like=truth)"),
        FormatSpec("openimages", "openimages", "Open Images boxes CSV (+ class descriptions, image-level labels, "
                   "images/)", aliases=("oid", "open-images")),
        FormatSpec("openimages-results", "openimages_results",
                   "Open Images detections: CSV (ImageID,LabelName,Score,...) or Kaggle submission (like=truth)",
                   aliases=("oid-results",)),
        FormatSpec("coco-panoptic", "coco_panoptic", "COCO panoptic JSON + PNGs of segment ids (things and stuff)"),
    )
}


Progress = Callable[[int, int], None]


class Ticks:
    """A writer's progress, throttled: ``progress(0, total)`` at the start, ``tick(done)`` calls
    ``progress(done, total)`` when ``done`` reaches the next ``calls``-th of ``total`` (at most ``calls`` calls
    however many images: a tick per image costs one comparison), and ``end()`` makes the last call
    ``(total, total)`` unless made already. Calls are monotone. With ``progress=None`` nothing is called."""

    __slots__ = ("_calls", "_due", "_last", "_progress", "total")

    def __init__(self, progress: Progress | None, total: int, *, calls: int = 100) -> None:
        self._progress, self.total, self._calls = progress, int(total), max(1, calls)
        self._due, self._last = sys.maxsize, -1
        if progress is not None:
            self._report(0)

    def __call__(self, done: int) -> None:
        if done >= self._due:
            self._report(min(done, self.total))

    def end(self) -> None:
        if self._progress is not None and self._last != self.total:
            self._report(self.total)

    def _report(self, done: int) -> None:
        assert self._progress is not None
        self._progress(done, self.total)
        self._last = done
        if done >= self.total:
            self._due = sys.maxsize
        else:  # the first count past the next calls-th of total
            k = done * self._calls // self.total + 1
            self._due = -(-k * self.total // self._calls)


def get_format(name: str, *, where: str = "format") -> FormatSpec:
    """The spec of a format name or alias; ``where`` names the setting in the error (``--pred-format``)."""
    key = name.lower().replace("_", "-")
    for f in FORMATS.values():
        if key == f.name or key in f.aliases:
            return f
    raise FormatError(f"{where} must be one of {', '.join(FORMATS)}, got {name!r}")


def issues_summary(report: Report, *, source: str | Path) -> str:
    """One line for a non-empty report: how many issues of each type, and where the first one is."""
    counts = ", ".join(f"{k}: {v}" for k, v in report.counts().items())
    first = report.issues[0]
    return f"{source}: {len(report)} import issues ({counts}); first: {first.where()}: {first.message}"


def warn_issues(ds: Dataset, report: Report, *, source: str | Path) -> Dataset:
    """Return ``ds``; emit one MaslowWarning summarising the report when it has issues."""
    if len(report):
        warnings.warn(issues_summary(report, source=source), MaslowWarning, stacklevel=3)
    return ds
