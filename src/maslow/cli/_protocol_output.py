"""What ``maslow eval`` does with the result of a protocol other than COCO's (``--protocol lvis``, ``voc``): the
import issues, the tables (or the JSON on stdout) and ``--json`` written atomically, one document shape for all."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from maslow.cli.metrics import _render_issues
from maslow.cli.render import console, json_text, lit, print_json
from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset


def emit(protocol: str, result: dict[str, Any], render: Callable[[], None], *, truth: Dataset, preds: Dataset,
         kind: str, sources: dict[str, tuple[str, str, Any]], notes: list[str], json_out: Path | None,
         to_stdout: bool) -> None:
    """Print the import issues and ``render()`` the result's tables (or print the JSON document on stdout), and write
    the document to ``json_out``: the inputs, ``protocol``, the counts, ``result`` under the protocol's name, the
    import issues and ``notes``. ``sources``: ``gt`` and ``pred`` -> (path, format, import report)."""
    (gt, gt_format, gt_report), (pred, pred_format, pred_report) = sources["gt"], sources["pred"]
    doc = {"gt": gt, "pred": pred, "gt_format": gt_format, "pred_format": pred_format,
           "iou_type": kind, "protocol": protocol, "n_images": truth.n_images, "n_truth": truth.n_annotations,
           "n_pred": preds.n_annotations, protocol: result,
           "import_issues": {"gt": gt_report.to_dict(), "pred": pred_report.to_dict()}, "notes": notes}
    with contextlib.ExitStack() as stack:
        json_tmp = None if json_out is None else stack.enter_context(atomic_path(json_out))
        _render_issues(gt, gt_report, [])
        _render_issues(pred, pred_report, notes)
        if not to_stdout:
            render()
        if json_tmp is not None:
            json_tmp.write_text(json_text(doc) + "\n", encoding="utf-8")
    if to_stdout:
        print_json(doc)
    elif json_out is not None:
        console.print(f"Wrote {lit(json_out)}")
