"""``maslow eval --protocol openimages``: the Open Images Challenge evaluation (``maslow.metrics.openimages.oid_map``),
its table and JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maslow.cli._eval_inputs import LABEL_TASKS
from maslow.cli._protocol_output import emit
from maslow.cli.metrics import _f
from maslow.cli.render import console, table
from maslow.core.dataset import Dataset
from maslow.errors import MaslowError
from maslow.metrics.openimages import OidResult, oid_map, read_hierarchy


def oid_options(protocol: str, kind: str, *, hierarchy: Path | None, class_descriptions: Path | None,
                expand_pred: bool, coco_only: list[str]) -> None:
    """Refuse what doesn't go with the protocol: ``--hierarchy``, ``--class-descriptions`` and ``--expand-pred``
    without ``--protocol openimages``; with it, an ``--iou-type`` other than bbox, ``--class-descriptions`` without
    ``--hierarchy``, or one of ``coco_only`` (the names of the COCO-only options given)."""
    given = [name for name, on in (("--hierarchy", hierarchy is not None),
                                   ("--class-descriptions", class_descriptions is not None),
                                   ("--expand-pred", expand_pred)) if on]
    if protocol != "openimages":
        if given:
            raise MaslowError(f"eval: {given[0]} goes with --protocol openimages, not {protocol}")
        return
    if kind != "bbox":
        raise MaslowError(f"eval: --protocol openimages evaluates --iou-type bbox (boxes), got {kind}")
    if coco_only:
        raise MaslowError(f"eval: {coco_only[0]} goes with --protocol coco, not openimages")
    if class_descriptions is not None and hierarchy is None:
        raise MaslowError("eval: --class-descriptions names the labels of --hierarchy; give --hierarchy too")


def eval_oid(truth: Dataset, preds: Dataset, *, hierarchy: Path | None, class_descriptions: Path | None,
             iou_threshold: float, expand_pred: bool, located: Any, json_out: Path | None, to_stdout: bool,
             sources: dict[str, tuple[str, str, Any]], notes: list[str]) -> None:
    """Read the hierarchy, evaluate, print the table (or the JSON on stdout) and write ``--json`` atomically.
    ``sources``: ``gt`` and ``pred`` -> (path, format, import report); ``located``: the context naming the file of an
    input error."""
    if truth.schema.task in LABEL_TASKS:
        raise MaslowError(f"eval: --protocol openimages evaluates detection boxes, got a {truth.schema.task.value} "
                          "truth")
    names = None
    if class_descriptions is not None:  # MID -> display name, for a hierarchy of MIDs over display-named classes
        from maslow.io.openimages import read_class_descriptions

        names = read_class_descriptions(class_descriptions)
    elif truth.info.get("openimages", {}).get("mids"):  # read from Open Images: its classes' MIDs came along
        names = {mid: name for name, mid in truth.info["openimages"]["mids"].items()}
    tree = None if hierarchy is None else read_hierarchy(hierarchy, truth.schema, names)
    with located:
        r = oid_map(truth, preds, hierarchy=tree, iou_threshold=iou_threshold, expand_pred=expand_pred)
    if not r.image_labels:
        notes.append("the truth has no image-level labels (pos_category_ids/neg_category_ids), so every class is "
                     "evaluated on every image")
    emit("openimages", r.to_dict(), lambda: render_oid(r), truth=truth, preds=preds, kind="bbox", sources=sources,
         notes=notes, json_out=json_out, to_stdout=to_stdout)


def render_oid(r: OidResult) -> None:
    """The per-class table and the mAP line."""
    rows = [(name, _f(float(r.ap_per_class[k])), int(r.n_pos_per_class[k]), int(r.n_group_of_per_class[k]),
             int(r.n_pred_per_class[k]), int(r.n_tp_per_class[k]), int(r.n_fp_per_class[k]),
             int(r.n_ignored_pred_per_class[k])) for k, name in enumerate(r.class_names)]
    title = (f"Open Images evaluation (AP at IoU >= {r.iou_threshold:g}; "
             f"{'hierarchy expanded' if r.hierarchy else 'no hierarchy'}"
             f"{', detections expanded' if r.expand_pred else ''}; "
             f"{'verified image-level labels' if r.image_labels else 'no image-level labels'})")
    console.print(table(title, ["class", "AP", "objects", "group-of", "detections", "TP", "FP", "in group-of"], rows))
    console.print(f"mAP {_f(r.map)} over {np.count_nonzero(r.n_pos_per_class)} of {len(r.class_names)} classes (those with "
                  f"objects); not evaluated: {r.n_unverified} detections of classes not verified on their image, "
                  f"{r.n_skipped} of classes the truth lacks, {r.n_invalid} empty boxes, {r.n_capped} past 10,000 "
                  "per image and class", markup=False, highlight=False)
