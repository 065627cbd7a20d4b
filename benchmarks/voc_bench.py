"""Pascal VOC protocol benchmark: maslow's ``voc_map`` against the classic per-detection loop (the algorithm of
py-faster-rcnn's ``voc_eval.py`` and DOTA_devkit's ``dota_evaluation_task1.py``: per class, detections by score, each
taking the object of its image with the largest IoU, written here as they write it, numpy per detection; equal
scores in maslow's order, by image id then file order, where those ports leave it to an unstable sort), in process, on
the same datasets.

Case: the metrics benchmark's COCO val2017-scale boxes (``metrics_bench.make_bbox``: 5,000 images, 80 classes,
~36,000 truth boxes, up to 100 scored detections per image; ``--scale`` shrinks it), a tenth of the truth marked
difficult (seeded), VOC2007 11-point and VOC2010 all-point AP at IoU 0.5. The loop reads the same Dataset columns
(its time is the evaluation alone, as ``voc_map``'s). Both mAPs and every class's AP must agree bit for bit.

    python benchmarks/voc_bench.py [--scale 0.2] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics_bench import _compile_maslow, _dump, make_bbox


def loop_voc(truth: Any, pred: Any, difficult: np.ndarray, metric: str, thr: float = 0.5) -> list[float]:
    """AP per class (nan: no object that counts) by the classic loop over detections."""
    ta, pa = truth.annotations, pred.annotations
    ids = np.asarray(truth.images.extra["coco_id"])
    img_pos = np.empty(len(ids), np.int64)
    img_pos[np.argsort(ids, kind="stable")] = np.arange(len(ids))  # COCO's image order: by id
    ignore = difficult | (ta.iscrowd if ta.iscrowd is not None else False)
    aps = []
    for c in range(len(truth.schema.names)):
        gt: dict[int, np.ndarray] = defaultdict(lambda: np.zeros((0, 4)))
        rows: dict[int, np.ndarray] = {}
        for i in np.unique(ta.image[ta.label == c]).tolist():
            r = np.flatnonzero((ta.image == i) & (ta.label == c))
            gt[i], rows[i] = ta.box[r], r
        n_pos = int((~ignore[ta.label == c]).sum())
        d = np.flatnonzero(pa.label == c)
        d = d[np.lexsort((d, img_pos[pa.image[d]], -pa.score[d]))]  # ties by image id, then file order (as voc_map)
        taken: set[int] = set()
        tp, fp = np.zeros(len(d)), np.zeros(len(d))
        for k, j in enumerate(d.tolist()):
            img = int(pa.image[j])
            g = gt[img]
            if not len(g):
                fp[k] = 1
                continue
            b = pa.box[j]
            iw = np.maximum(np.minimum(g[:, 2], b[2]) - np.maximum(g[:, 0], b[0]), 0.0)
            ih = np.maximum(np.minimum(g[:, 3], b[3]) - np.maximum(g[:, 1], b[1]), 0.0)
            inter = iw * ih
            union = (b[2] - b[0]) * (b[3] - b[1]) + (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1]) - inter
            ov = inter / union
            m = int(np.argmax(ov))
            if ov[m] > 0 and ov[m] >= thr:
                obj = int(rows[img][m])
                if ignore[obj]:
                    continue
                if obj not in taken:
                    taken.add(obj)
                    tp[k] = 1
                else:
                    fp[k] = 1
            else:
                fp[k] = 1
        keep = (tp + fp) > 0  # detections on ignored objects count as neither
        tp, fp = np.cumsum(tp[keep]), np.cumsum(fp[keep])
        if n_pos == 0:
            aps.append(float("nan"))
            continue
        rec = tp / n_pos
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        if metric == "voc2007":
            ap = 0.0
            for t in np.arange(0.0, 1.1, 0.1):
                p = np.max(prec[rec >= t]) if np.sum(rec >= t) else 0.0
                ap += p / 11.0
        else:
            mrec = np.concatenate(([0.0], rec, [1.0]))
            mpre = np.concatenate(([0.0], prec, [0.0]))
            for i in range(mpre.size - 1, 0, -1):
                mpre[i - 1] = max(mpre[i - 1], mpre[i])
            i = np.where(mrec[1:] != mrec[:-1])[0]
            ap = float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
        aps.append(float(ap))
    return aps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the 5,000 images (default 1.0)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the fastest is reported")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    _compile_maslow()
    from maslow.core.types import obj_array
    from maslow.io.coco import read_coco
    from maslow.io.coco_results import read_coco_predictions
    from maslow.metrics import voc_map

    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        gt, dt = make_bbox(max(1, round(5000 * args.scale)))
        _dump(gt, tmp / "gt.json")
        _dump(dt, tmp / "dt.json")
        with warnings.catch_warnings():  # the generator's boxes may end past the image (a finding, not an error)
            warnings.simplefilter("ignore")
            truth = read_coco(tmp / "gt.json")
            pred = read_coco_predictions(tmp / "dt.json", like=truth)
    difficult = np.random.default_rng(0).random(truth.n_annotations) < 0.1
    a = truth.annotations
    truth = truth.replace(annotations=a.with_columns(attributes={**a.attributes,
                                                                  "difficult": obj_array(difficult.tolist())}))
    rows = []
    for metric in ("voc2007", "voc2010"):
        times: dict[str, float] = {}
        results: dict[str, Any] = {}
        for name, run in (("maslow", lambda m=metric: voc_map(truth, pred, metric=m).ap_per_class.tolist()),
                          ("loop", lambda m=metric: loop_voc(truth, pred, difficult, m))):
            best = float("inf")
            for _ in range(max(1, args.repeat)):
                t0 = time.process_time()
                results[name] = run()
                best = min(best, time.process_time() - t0)
            times[name] = best
        same = np.array_equal(np.asarray(results["maslow"]), np.asarray(results["loop"]), equal_nan=True)
        rows.append({"metric": metric, "maslow_s": times["maslow"], "loop_s": times["loop"],
                     "speedup": times["loop"] / times["maslow"], "map": float(np.nanmean(results["maslow"])),
                     "bit_exact": bool(same)})
    size = {"images": truth.n_images, "truth": truth.n_annotations, "difficult": int(difficult.sum()),
            "predictions": pred.n_annotations}
    if args.json:
        print(json.dumps({"size": size, "rows": rows}, indent=1))
        return 0
    print(f"{size['images']} images, {size['truth']} truth boxes ({size['difficult']} difficult), "
          f"{size['predictions']} detections; CPU seconds of the evaluation, best of {max(1, args.repeat)}")
    print(f"{'metric':<10}{'maslow_s':>10}{'loop_s':>10}{'speedup':>9}{'mAP':>9}  agreement")
    for r in rows:
        print(f"{r['metric']:<10}{r['maslow_s']:>10.3f}{r['loop_s']:>10.2f}{r['speedup']:>8.0f}x{r['map']:>9.4f}  "
              f"{'every class AP bit-exact' if r['bit_exact'] else 'DIFFERENT'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
