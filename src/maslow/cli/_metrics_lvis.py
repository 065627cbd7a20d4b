"""``maslow eval --protocol lvis``: the federated LVIS evaluation (``maslow.metrics.lvis_map``), its table and JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maslow.cli._eval_inputs import LABEL_TASKS
from maslow.cli._protocol_output import emit
from maslow.cli.metrics import _f
from maslow.cli.render import console, table
from maslow.core.dataset import Dataset
from maslow.errors import MaslowError
from maslow.metrics.lvis import LvisResult, lvis_map


def eval_lvis(truth: Dataset, preds: Dataset, *, kind: str, pred_area: str, located: Any, json_out: Path | None,
              to_stdout: bool, sources: dict[str, tuple[str, str, Any]], notes: list[str]) -> None:
    """Evaluate, print the table (or the JSON on stdout) and write ``--json`` atomically. ``sources``: ``gt`` and
    ``pred`` -> (path, format, import report); ``located``: the context naming the file of an input error."""
    if truth.schema.task in LABEL_TASKS:
        raise MaslowError(f"eval: --protocol lvis evaluates detection or instance masks, got a "
                          f"{truth.schema.task.value} truth")
    with located:
        lv = lvis_map(truth, preds, iou_type=kind, pred_area=pred_area)
    emit("lvis", lv.to_dict(), lambda: _render_lvis(lv), truth=truth, preds=preds, kind=kind, sources=sources,
         notes=notes, json_out=json_out, to_stdout=to_stdout)


def _render_lvis(r: LvisResult) -> None:
    thr = r.iou_thresholds
    all_t = f"{thr.min():.2f}:{thr.max():.2f}"
    dets = "none" if r.max_dets is None else str(r.max_dets)
    spec = [("ap", "AP", all_t, "all", "all"), ("ap_50", "AP", "0.50", "all", "all"),
            ("ap_75", "AP", "0.75", "all", "all"), ("ap_small", "AP", all_t, "small", "all"),
            ("ap_medium", "AP", all_t, "medium", "all"), ("ap_large", "AP", all_t, "large", "all"),
            ("ap_rare", "AP", all_t, "all", "rare"), ("ap_common", "AP", all_t, "all", "common"),
            ("ap_frequent", "AP", all_t, "all", "frequent"), ("ar_300", "AR", all_t, "all", "all"),
            ("ar_small", "AR", all_t, "small", "all"), ("ar_medium", "AR", all_t, "medium", "all"),
            ("ar_large", "AR", all_t, "large", "all")]
    rows = [(n, k, t, a, c, _f(getattr(r, n))) for n, k, t, a, c in spec]
    console.print(table(f"LVIS {r.iou_type} evaluation (federated; at most {dets} detections per image)",
                        ["stat", "", "IoU", "area", "classes", "value"], rows))
    console.print(f"{r.n_evaluated} predictions evaluated; {r.n_capped} past the per-image cap and {r.n_unverified} "
                  "of a class neither labelled nor verified absent in their image were left out", markup=False,
                  highlight=False)
