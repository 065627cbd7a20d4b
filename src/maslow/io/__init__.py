"""Reading and writing datasets in every common annotation format, with technical import checks.

Formats: ``coco``, ``coco-results``, ``yolo``, ``voc``, ``cvat``, ``labelstudio``, ``imagefolder``, ``masks``
(semantic PNG label maps), ``parquet`` (maslow's own), ``mnist`` (IDX), ``dota`` and ``dota-results`` (oriented
boxes), ``openimages`` and ``openimages-results`` (Open Images CSVs) and ``coco-panoptic`` (panoptic segments: JSON
and PNGs). ``read(src, fmt)`` and
``write(ds, dst, fmt)`` dispatch by name; each format also has ``read_<fmt>``/``write_<fmt>``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.errors import FormatError
from maslow.io._common import ExportReport
from maslow.io.checks import check_boxes, check_dataset, check_images, fill_sizes
from maslow.io.images import image_info, load, load_path
from maslow.io.registry import FORMATS, Progress, get_format, warn_issues


@dataclass(frozen=True)
class Imported:
    """A dataset read from files, with everything found wrong on the way."""

    dataset: Dataset
    report: Report
    source: str
    format: str


_FILE_FINDINGS = ("missing_image", "unreadable_image")


def import_dataset(
    src: str | Path,
    fmt: str,
    *,
    images_root: str | Path | None = None,
    strict: bool = False,
    check_files: bool = True,
    decode: bool = False,
    progress: Any = None,
    **options: Any,
) -> Imported:
    """Read ``src`` in format ``fmt`` and run every technical check on it.

    Args:
        strict: turn the first error or warning into a FormatError instead of a reported issue.
        check_files: open every image header (missing, unreadable, size and EXIF checks).
        decode: also decode every image (finds truncated files).

    Raises:
        FormatError: the file can't be parsed, or (strict) any issue was found.
    """
    spec = get_format(fmt)
    root = None if images_root is None else Path(images_root)
    if progress is not None and "progress" in inspect.signature(spec.parse).parameters:  # reading counts too
        options = {**options, "progress": progress}
    ds, report = spec.parse(Path(src), images_root=root, strict=strict, **options)
    checks = check_dataset(ds, files=check_files, decode=decode, progress=progress,
                           source=src if Path(src).is_file() else None)  # one annotation file: named
    # a reader that matches label files to images (YOLO, label maps) already reported the images it did not find
    # or could not read (it needed their sizes): each once
    found = {(i.type, i.image) for i in report if i.type in _FILE_FINDINGS and i.image is not None}
    if found:
        checks = Report(tuple(i for i in checks if (i.type, i.image) not in found))
    if strict:
        bad = [i for i in checks if i.severity in ("error", "warning")]
        if bad:
            i = bad[0]
            raise FormatError(f"{i.message} [{i.type}; strict mode; {len(bad)} issues]", path=i.file,
                              record=i.record, field=i.field)
    return Imported(dataset=ds, report=report + checks, source=str(src), format=spec.name)


def read(src: str | Path, fmt: str, **options: Any) -> Dataset:
    """Read ``src`` in format ``fmt`` (a MaslowWarning summarises any issues found while parsing)."""
    spec = get_format(fmt)
    ds, report = spec.parse(Path(src), **options)
    return warn_issues(ds, report, source=src)


def write(ds: Dataset, dst: str | Path, fmt: str, *, progress: Progress | None = None,
          **options: Any) -> ExportReport:
    """Write ``ds`` to ``dst`` in format ``fmt``; the report counts what the format could not express (and notes
    the ``ds.info`` of other formats, e.g. COCO's ``info`` and ``licenses`` written as YOLO).

    Args:
        progress: called as ``progress(done, total)`` by the writers that report progress
            (``get_format(fmt).reports_progress``: images written, COCO records written, Parquet row groups
            written), about 100 times a run, monotone, the last call ``(total, total)``; the other writers never
            call it. The files written are the same with or without it.
    """
    spec = get_format(fmt)
    if progress is not None and spec.reports_progress:
        options["progress"] = progress
    rep: ExportReport = spec.write(ds, Path(dst), **options)
    held = {"coco": {"coco", "coco_categories"}, "cvat": {"cvat"}, "voc": {"voc"}, "labelstudio": {"labelstudio"}, "yolo": {"yolo"},
            "dota": {"dota"}, "openimages": {"openimages"}, "openimages-results": {"openimages"}, "coco-panoptic": {"coco", "coco_categories"}, "parquet": set(ds.info)}.get(spec.name, set())
    for key in sorted(set(ds.info) - held):
        value = ds.info[key]
        if key == "coco_categories" and isinstance(value, dict) and all(
                v == {"supercategory": None} for v in value.values()):
            continue  # only "this category had no supercategory key": nothing a target without one loses
        what = ", ".join(map(str, value)) if isinstance(value, dict) else type(value).__name__
        rep.notes.append(f"info[{key!r}] ({what}) not written: {spec.name} has no place for dataset-level metadata")
    return rep


# read_<format>/write_<format> live in their format modules, imported on first use so that `import maslow`
# stays light (pyarrow loads only for Parquet).
_LAZY = {
    "read_coco": "coco", "write_coco": "coco",
    "read_coco_predictions": "coco_results", "read_coco_results": "coco_results",
    "write_coco_results": "coco_results", "write_coco_predictions": "coco_results",
    "read_yolo": "yolo", "write_yolo": "yolo",
    "read_voc": "voc", "write_voc": "voc",
    "read_cvat": "cvat", "write_cvat": "cvat",
    "read_labelstudio": "labelstudio", "write_labelstudio": "labelstudio",
    "read_imagefolder": "imagefolder", "write_imagefolder": "imagefolder",
    "read_masks": "semantic", "write_masks": "semantic", "read_semantic": "semantic", "write_semantic": "semantic",
    "read_parquet": "parquet", "write_parquet": "parquet",
    "read_mnist": "idx", "write_mnist": "idx", "read_idx": "idx", "write_idx": "idx",
    "read_coco_panoptic": "coco_panoptic", "write_coco_panoptic": "coco_panoptic",
    "read_dota": "dota", "write_dota": "dota",
    "read_dota_results": "dota_results", "read_dota_predictions": "dota_results",
    "write_dota_results": "dota_results", "write_dota_predictions": "dota_results",
    "read_openimages": "openimages", "write_openimages": "openimages",
    "read_openimages_results": "openimages_results", "read_openimages_predictions": "openimages_results",
    "write_openimages_results": "openimages_results", "write_openimages_predictions": "openimages_results",
    "read_pixel_probs": "pixel_probs",  # a semantic model's per-pixel probabilities (no Dataset format)
}

if TYPE_CHECKING:
    from maslow.io.coco import read_coco, write_coco
    from maslow.io.coco_panoptic import read_coco_panoptic, write_coco_panoptic
    from maslow.io.coco_results import (
        read_coco_predictions,
        read_coco_results,
        write_coco_predictions,
        write_coco_results,
    )
    from maslow.io.cvat import read_cvat, write_cvat
    from maslow.io.dota import read_dota, write_dota
    from maslow.io.dota_results import (
        read_dota_predictions,
        read_dota_results,
        write_dota_predictions,
        write_dota_results,
    )
    from maslow.io.idx import read_idx, read_mnist, write_idx, write_mnist
    from maslow.io.imagefolder import read_imagefolder, write_imagefolder
    from maslow.io.labelstudio import read_labelstudio, write_labelstudio
    from maslow.io.openimages import read_openimages, write_openimages
    from maslow.io.openimages_results import (
        read_openimages_predictions,
        read_openimages_results,
        write_openimages_predictions,
        write_openimages_results,
    )
    from maslow.io.parquet import read_parquet, write_parquet
    from maslow.io.pixel_probs import read_pixel_probs
    from maslow.io.semantic import read_masks, read_semantic, write_masks, write_semantic
    from maslow.io.voc import read_voc, write_voc
    from maslow.io.yolo import read_yolo, write_yolo


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'maslow.io' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"maslow.io.{mod}"), name)


__all__ = [  # the lazy readers and writers spelled out: type checkers see them exported
    "FORMATS",
    "ExportReport",
    "Imported",
    "check_boxes",
    "check_dataset",
    "check_images",
    "fill_sizes",
    "get_format",
    "image_info",
    "import_dataset",
    "load",
    "load_path",
    "read",
    "read_coco",
    "read_coco_panoptic",
    "read_coco_predictions",
    "read_coco_results",
    "read_cvat",
    "read_dota",
    "read_dota_predictions",
    "read_dota_results",
    "read_idx",
    "read_imagefolder",
    "read_labelstudio",
    "read_masks",
    "read_mnist",
    "read_openimages",
    "read_openimages_predictions",
    "read_openimages_results",
    "read_parquet",
    "read_pixel_probs",
    "read_semantic",
    "read_voc",
    "read_yolo",
    "write",
    "write_coco",
    "write_coco_panoptic",
    "write_coco_predictions",
    "write_coco_results",
    "write_cvat",
    "write_dota",
    "write_dota_predictions",
    "write_dota_results",
    "write_idx",
    "write_imagefolder",
    "write_labelstudio",
    "write_masks",
    "write_mnist",
    "write_openimages",
    "write_openimages_predictions",
    "write_openimages_results",
    "write_parquet",
    "write_semantic",
    "write_voc",
    "write_yolo",
]
