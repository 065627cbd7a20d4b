"""``maslow eval`` of panoptic segmentation (``--pred-format coco-panoptic``, or ``--protocol panoptic``): Panoptic
Quality (``maslow.metrics.panoptic_quality``), its tables and JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maslow import io
from maslow.cli._eval_inputs import align
from maslow.cli._protocol_output import emit
from maslow.cli.metrics import _f
from maslow.cli.render import console, refuse_import_error, results_or_folder, table
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.errors import MaslowError
from maslow.metrics.panoptic import PanopticResult, panoptic_quality


def wants_panoptic(protocol: str, pred_format: str) -> bool:
    """Whether ``maslow eval`` computes Panoptic Quality: with ``--protocol panoptic``, and by default for panoptic
    predictions (``--pred-format coco-panoptic``: segments without scores, which no AP protocol can rank)."""
    return protocol == "panoptic" or (protocol == "coco" and
                                      io.get_format(pred_format, where="--pred-format").name == "coco-panoptic")


def read_panoptic_pred(src: Path, fmt: str, truth: Dataset) -> tuple[Dataset, Report, list[str]]:
    """The predicted segments on ``truth``'s images: a format that reads onto a truth (``coco-panoptic``: records by
    image id, categories by id) read so, any other matched by image path (no scores needed)."""
    spec = io.get_format(results_or_folder(src, fmt), where="--pred-format")
    if spec.needs_like:
        ds, report = spec.parse(src, like=truth)
        errors = [i for i in report.issues if i.severity == "error"]
        refuse_import_error(errors, src, only_off_by_one=True)
        return ds, report, [f"the segments named by {len(errors)} import errors (listed below) are left out of the "
                            "evaluation"] if errors else []
    imp = io.import_dataset(src, spec.name, check_files=False)
    pred, notes = align(truth, imp.dataset, src, scored=False)
    return pred, imp.report, notes


def eval_panoptic(truth: Dataset, pred: Path, pred_format: str, *, located: Any, json_out: Path | None,
                  to_stdout: bool, gt_source: tuple[str, str, Report], refused: list[str]) -> None:
    """Read the predictions, evaluate, print the tables (or the JSON on stdout) and write ``--json`` atomically.

    Args:
        gt_source: the truth's path, format and import report.
        refused: the options given that panoptic evaluation has no use for (the first one is refused).
        located: a context turning an ``InvalidDatasetError`` of one side into a FormatError naming its file
            (``cli._located.located``); called with the pred report once read.
    """
    if refused:
        raise MaslowError(f"eval: {refused[0]} does not apply to panoptic segmentation (Panoptic Quality)")
    gt, gt_format, gt_report = gt_source
    preds, pred_report, notes = read_panoptic_pred(pred, pred_format, truth)
    if not preds.n_annotations:
        notes.append("no predicted segments on any image, so every truth segment counts as missed")
    with located({"truth": (gt, gt_report), "pred": (pred, pred_report)}):
        r = panoptic_quality(truth, preds)
    emit("panoptic", r.to_dict(), lambda: render_panoptic(r), truth=truth, preds=preds, kind="segm",
         sources={"gt": (gt, gt_format, gt_report), "pred": (str(pred), pred_format, pred_report)}, notes=notes,
         json_out=json_out, to_stdout=to_stdout)


def render_panoptic(r: PanopticResult) -> None:
    """panopticapi's table (PQ, SQ, RQ of all classes, things and stuff, in percent) and one row per class."""
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    rows = [(name.capitalize(), pct(d["pq"]), pct(d["sq"]), pct(d["rq"]), d["n"]) for name, d in r.summary().items()]
    console.print(table(f"Panoptic Quality ({r.n_images} images; matches at IoU > 0.5)", ["", "PQ", "SQ", "RQ", "N"],
                        rows))
    per = [(name, "thing" if r.is_thing[k] else "stuff", _f(float(r.pq_per_class[k])), _f(float(r.sq_per_class[k])),
            _f(float(r.rq_per_class[k])), int(r.tp_per_class[k]), int(r.fp_per_class[k]), int(r.fn_per_class[k]))
           for k, name in enumerate(r.class_names)]
    console.print(table("Per class", ["class", "kind", "PQ", "SQ", "RQ", "TP", "FP", "FN"], per))
    d = r.to_dict()
    console.print(f"{d['tp']} matches, {d['fp']} false positives, {d['fn']} missed segments; {d['n_ignored_truth']} "
                  f"crowd or void truth segments and {d['n_ignored_pred']} predictions mostly on void or crowd regions "
                  f"ignored; {d['n_skipped_pred']} predictions not evaluated (empty, or of a class the truth lacks)",
                  markup=False, highlight=False)
