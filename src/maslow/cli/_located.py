"""Metrics refusals of one side's data re-raised as errors naming that side's file, record and field (``eval``,
``compare``)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from maslow.cli.render import kpt_sigmas_error
from maslow.core.issues import Report
from maslow.errors import FormatError, InvalidDatasetError

#: The fields of an input file each annotations column is read from, to find the import issue behind a refusal.
_FIELDS = {"score": ("score",), "box": ("bbox", "box", "value.x", "xmin"),
           "mask": ("segmentation", "mask", "rle", "file_name"),  # file_name: a panoptic PNG (missing, unreadable)
           "keypoints": ("keypoints",)}


#: A refusal of an image's value of an images column (``truth.images.extra['neg_category_ids'] row 2: ...``).
_IMAGE_LIST = re.compile(r"\w+\.images\.extra\['(?P<field>\w+)'\] row (?P<row>\d+): (?P<why>.*)", re.S)


@contextlib.contextmanager
def located(sources: dict[str, tuple[str | Path, Report]]) -> Iterator[None]:
    """A metrics refusal of one side's data (``pred.annotations.score row 3: ...``) re-raised as a FormatError
    naming that side's file, and the record and field of the import error behind it when the import reported one
    (the rows of a Dataset are not the records of its file)."""
    try:
        yield
    except InvalidDatasetError as e:
        msg = str(e)
        side = msg.split(".", 1)[0]
        sigmas_error = kpt_sigmas_error(e, sources["truth"][0], "evaluated")  # keypoints that are not COCO's 17
        if sigmas_error is not None:
            raise sigmas_error from None
        if side not in sources:
            raise
        src, report = sources[side]
        listed = _IMAGE_LIST.match(msg)  # LVIS's per-image lists: the file's images[row] (the table keeps its order)
        if listed is not None:
            raise FormatError(f"can't be evaluated: {listed['why']}", path=src, record=f"images[{listed['row']}]",
                              field=listed["field"]) from None
        column = msg.removeprefix(f"{side}.annotations.").split(" ", 1)[0].rstrip(":")
        errors = [i for i in report.issues if i.severity == "error"]
        cause = next((i for i in errors if i.field in _FIELDS.get(column, ())), None)
        if cause is None:
            raise FormatError(f"can't be evaluated: {msg}", path=src) from None
        raise FormatError(f"{cause.message} [{cause.type}; {len(errors)} import errors], so it can't be evaluated: "
                          f"{msg}", path=cause.file or src, record=cause.record, field=cause.field) from None
