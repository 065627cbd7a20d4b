"""The truth and the predictions ``maslow eval`` and ``maslow compare`` read: a file in any format or a workspace
version, and predictions moved onto the truth's images (results files by id or stem, other formats by path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maslow import io
from maslow.cli.render import refuse_import_error, refuse_offsets, results_or_folder, workspace_version
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import Task
from maslow.errors import FormatError

#: Truth tasks whose predictions are labels (classes, tags, label maps), scored without a confidence.
LABEL_TASKS = (Task.CLASSIFICATION, Task.MULTILABEL, Task.SEMANTIC_SEGMENTATION)


def read_truth(src: str, fmt: str | None, images_root: Path | None, flag: str) -> tuple[Dataset, Report, str]:
    """The truth, its import report and its format: ``src`` read as ``fmt`` (coco by default), or, without
    ``--from``, a workspace version or dataset (checked when it was imported: an empty report)."""
    if fmt is None:
        found = workspace_version(src, "--gt")
        if found is not None:
            return found[0], Report(()), found[1]
    fmt = io.get_format(fmt or "coco", where=flag).name
    imp = io.import_dataset(Path(src), fmt, images_root=images_root, check_files=False)
    return imp.dataset, imp.report, fmt


def read_pred(src: Path, fmt: str, truth: Dataset, id_offset: int,
               category_offset: int | None = None) -> tuple[Dataset, Report, list[str]]:
    spec = io.get_format(results_or_folder(src, fmt), where="--pred-format")
    if spec.needs_like:  # results files name the truth's images by id (COCO) or stem (DOTA)
        if spec.name == "coco-results":
            ds, report = spec.parse(src, like=truth, id_offset=id_offset, category_offset=category_offset)
        else:
            refuse_offsets("eval", fmt, id_offset, category_offset)
            ds, report = spec.parse(src, like=truth)
        errors = [i for i in report.issues if i.severity == "error"]
        # ids off by one: the rest would be paired with the wrong images or classes (a wrong mAP, exit 0)
        refuse_import_error(errors, src, only_off_by_one=True)
        if not ds.n_annotations:  # every record refused: all "-" and exit code 0 said nothing was wrong
            refuse_import_error(errors, src, tail=": no prediction is left to evaluate")
        # an error may name many predictions (33 of one unknown class): each message counts its own
        return ds, report, [f"the predictions named by {len(errors)} import errors (listed below) are left out of "
                            "the evaluation"] if errors else []
    refuse_offsets("eval", fmt, id_offset, category_offset)
    imp = io.import_dataset(src, spec.name, check_files=False)
    pred, notes = align(truth, imp.dataset, src, scored=truth.schema.task not in LABEL_TASKS)
    return pred, imp.report, notes


def align(truth: Dataset, pred: Dataset, src: Path, *, scored: bool = True) -> tuple[Dataset, list[str]]:
    """Predictions read from another format, moved onto truth's images table (images matched by path).
    ``scored``: detections, which need a score each (label maps and image classes are scored without)."""
    notes: list[str] = []
    a = pred.annotations
    if scored and (a.score is None or not np.any(~np.isnan(a.score))):
        raise FormatError("predictions must carry scores, got none (this format or file holds no scores)", path=src)
    has = ~np.isnan(a.score) if scored and a.score is not None else np.ones(len(a), bool)
    if not has.all():
        notes.append(f"{int((~has).sum())} annotations without a score (ground truth in the same file) are "
                     "not evaluated")
        pred = pred.select(has)
        a = pred.annotations
    t_rows = {str(p): i for i, p in enumerate(truth.images.path.tolist())}
    base: dict[str, int] = {}
    for p, i in t_rows.items():
        name = Path(p).name
        base[name] = -2 if name in base else i  # -2: ambiguous file name
    image_row = np.asarray([t_rows.get(str(p), base.get(Path(str(p)).name, -1))
                            for p in pred.images.path.tolist()], dtype=np.int64)
    image_row[image_row == -2] = -1
    new = image_row[a.image] if len(a) else np.zeros(0, np.int64)
    lost = new < 0
    if lost.any():
        first = str(pred.images.path[a.image[np.flatnonzero(lost)[0]]])
        if lost.all():
            raise FormatError(f"predictions must be on the truth's images, got none on them (first image: {first!r})",
                              path=src)
        notes.append(f"{int(lost.sum())} predictions on images the truth lacks are not evaluated (first: {first!r})")
    keep = np.flatnonzero(~lost)
    order = keep[np.argsort(new[keep], kind="stable")]
    ann = a.take(order, image=new[order])
    return Dataset(schema=pred.schema, images=truth.images, annotations=ann, root=truth.root), notes
