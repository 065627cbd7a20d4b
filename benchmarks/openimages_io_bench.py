"""Open Images CSV benchmark: maslow's readers and writers (``maslow.io.openimages``, ``openimages_results``)
against hotcoco's ``COCO.from_oid`` and ``load_res_oid``, each run in a fresh process.

Files (generated, seeded; ``--scale`` shrinks them): V6 boxes CSVs of 300,000 and 1,000,000 rows (~7 boxes an
image, sorted by ImageID; 600 classes; Source xclick or activemil; Confidence 1; float32 coordinates printed as
Python prints a float, 16-17 digits; flags 0/1 and 1% -1), the class descriptions CSV (no header), and detections
on the 300,000-row file's images (``--dets``, default 1,000,000; float32 scores and coordinates) as a CSV
(``ImageID,LabelName,Score,XMin,XMax,YMin,YMax``) and as a Kaggle submission (``ImageId,PredictionString``). No
images: every image is 1 x 1, the boxes stay fractions (hotcoco does the same without ``images_dir``).

Cases: ``read`` (the boxes CSV with the descriptions), ``write`` (the Dataset read, written back; the written
boxes CSV must equal the input, byte for byte), ``results`` and ``kaggle`` (detections onto the truth read first),
``write-results`` and ``write-kaggle``. hotcoco has no writer and no Kaggle reader.

Each run is a child process (``_child.run_child``): import, read the inputs, then time the measured call.
Columns: ``call_s`` the CPU seconds of the measured call alone (user + system, all threads: ``time.process_time``);
``cpu_s`` the child's CPU seconds from its start to the end of that call (imports and the truth's reading
included; what is checked afterwards is not); ``wall_s`` the call's wall seconds; ``rss_MB`` the child's peak.
``x_hotcoco``: call_s over hotcoco's for the same case. ``--repeat N`` runs every tool N times in rounds (each tool
once a round, so a busy spell of a shared machine falls on all alike) and reports the median by call_s.
``--baseline SRC`` also runs maslow from another source folder (e.g. ``git archive HEAD src | tar -x -C /tmp/b``,
then ``--baseline /tmp/b/src``), as the tool ``maslow-base``, for before/after tables.

Agreement (after the timed part): the boxes (and scores) that maslow and hotcoco read are compared as sorted
(ImageID, class name, x, y, w, h) rows: ``same`` when every row is bit-equal; written files are compared with the
input (``bytes``).

    python benchmarks/openimages_io_bench.py [--scale 0.1] [--cases read,write,...] [--tools maslow,hotcoco]
        [--repeat 3] [--baseline SRC] [--json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _child import pick_tools, run_child  # benchmarks/ is on sys.path: the scripts run from there

TOOLS = ("maslow", "hotcoco")
CASES = ("read", "write", "results", "kaggle", "write-results", "write-kaggle")
HEADER = ("ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,"
          "IsInside")
N_CLASSES = 600


def _float32_texts(v: np.ndarray) -> list[str]:
    return [repr(x) for x in v.astype(np.float32).astype(np.float64).tolist()]


def _ids(rng: np.random.Generator, n: int) -> list[str]:
    return sorted({f"{x:016x}" for x in rng.integers(0, 2**63, n).tolist()})


def mids() -> list[str]:
    return [f"/m/0{k * 7919 % 99991:05x}" for k in range(N_CLASSES)]


def make_boxes(n_rows: int, seed: int) -> tuple[str, list[str]]:
    """The boxes CSV's text and its ImageIDs."""
    rng = np.random.default_rng(seed)
    ids = _ids(rng, max(1, round(n_rows / 7)))
    image = np.sort(rng.integers(0, len(ids), n_rows))
    mid = np.asarray(mids(), object)[rng.integers(0, N_CLASSES, n_rows)]
    source = np.where(rng.random(n_rows) < 0.9, "xclick", "activemil").astype(object)
    x, y = np.sort(rng.random((2, n_rows)), 0), np.sort(rng.random((2, n_rows)), 0)

    def flag(p: float) -> list[str]:
        return np.where(rng.random(n_rows) < 0.01, "-1", np.where(rng.random(n_rows) < p, "1", "0")).tolist()

    cols = [np.asarray(ids, object)[image].tolist(), source.tolist(), mid.tolist(), ["1"] * n_rows,
            _float32_texts(x[0]), _float32_texts(x[1]), _float32_texts(y[0]), _float32_texts(y[1]),
            flag(0.4), flag(0.3), flag(0.05), flag(0.05), flag(0.02)]
    used = [ids[i] for i in np.unique(image).tolist()]
    return HEADER + "\n" + "\n".join(map(",".join, zip(*cols, strict=True))) + "\n", used


def make_detections(ids: list[str], n_dets: int, seed: int) -> tuple[str, str]:
    """The detections as a CSV and as a Kaggle submission (every image a row)."""
    rng = np.random.default_rng(seed + 1)
    image = np.sort(rng.integers(0, len(ids), n_dets))
    mid = np.asarray(mids(), object)[rng.integers(0, N_CLASSES, n_dets)].tolist()
    score = _float32_texts(rng.random(n_dets))
    x, y = np.sort(rng.random((2, n_dets)), 0), np.sort(rng.random((2, n_dets)), 0)
    x0, x1, y0, y1 = (_float32_texts(v) for v in (x[0], x[1], y[0], y[1]))
    image_ids = np.asarray(ids, object)[image].tolist()
    csv = "ImageID,LabelName,Score,XMin,XMax,YMin,YMax\n" + "\n".join(
        map(",".join, zip(image_ids, mid, score, x0, x1, y0, y1, strict=True))) + "\n"
    dets = list(map(" ".join, zip(mid, score, x0, y0, x1, y1, strict=True)))
    bounds = np.searchsorted(image, np.arange(len(ids) + 1)).tolist()
    kaggle = "ImageId,PredictionString\n" + "".join(
        f"{ids[i]},{' '.join(dets[bounds[i]:bounds[i + 1]])}\n" for i in range(len(ids)))
    return csv, kaggle


_CHILD = r'''
import contextlib, io, json, resource, sys, time, warnings
from pathlib import Path
import numpy as np
tool, case, boxes, desc, pred, out = sys.argv[1:7]
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
warnings.simplefilter("ignore")
if tool.startswith("maslow"):
    from maslow.io import openimages as oi
    from maslow.io import openimages_results as res
    if case == "read":
        t0, w0 = time.process_time(), time.perf_counter()
        ds, _ = oi.parse(Path(boxes), class_descriptions=Path(desc))
    else:
        truth, _ = oi.parse(Path(boxes), class_descriptions=Path(desc))
        if case.startswith("write-"):
            ds, _ = res.parse(Path(pred), like=truth)
        t0, w0 = time.process_time(), time.perf_counter()
        if case == "write":
            oi.write(truth, Path(out), images=False)
        elif case.startswith("write-"):
            res.write(ds, Path(out))
        else:
            ds, _ = res.parse(Path(pred), like=truth)
    call, wall, total = time.process_time() - t0, time.perf_counter() - w0, cpu()
    if not case.startswith("write"):
        a = ds.annotations
        stems = np.asarray([p.rsplit(".", 1)[0] for p in ds.images.path.tolist()], object)[a.image]
        b = a.box
        np.savez(out, image=stems.astype(str), label=np.asarray(ds.schema.names, object)[a.label].astype(str),
                 box=np.c_[b[:, :2], b[:, 2:] - b[:, :2]],
                 score=a.score if a.score is not None else np.zeros(len(a)))
else:
    import hotcoco
    with contextlib.redirect_stdout(io.StringIO()):
        t0, w0 = time.process_time(), time.perf_counter()
        gt = hotcoco.COCO.from_oid(boxes, class_descriptions=desc)
        if case == "results":
            t0, w0 = time.process_time(), time.perf_counter()
            dt = gt.load_res_oid(pred, class_descriptions=desc)
        call, wall, total = time.process_time() - t0, time.perf_counter() - w0, cpu()
        names = {c["id"]: c["name"] for c in gt.dataset["categories"]}
        files = {im["id"]: im["file_name"].rsplit(".", 1)[0] for im in gt.dataset["images"]}
        anns = (dt if case == "results" else gt).dataset["annotations"]
    np.savez(out, image=np.asarray([files[r["image_id"]] for r in anns]),
             label=np.asarray([names[r["category_id"]] for r in anns]),
             box=np.asarray([r["bbox"] for r in anns], np.float64).reshape(-1, 4),
             score=np.asarray([r.get("score", 0.0) for r in anns], np.float64))
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
print(json.dumps({"call_s": call, "cpu_s": total, "wall_s": wall,
                  "rss_mb": int(hwm[0].split()[1]) / 1024 if hwm else None}))
'''


def run_tool(tool: str, case: str, files: dict[str, Path], out: Path, baseline: Path | None) -> dict[str, Any]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    if tool == "maslow-base" and baseline is not None:
        env["PYTHONPATH"] = str(baseline) + os.pathsep + env.get("PYTHONPATH", "")
    pred = files.get("kaggle" if "kaggle" in case else "results", files["boxes"])
    c = run_child(_CHILD, [tool, case, str(files["boxes"]), str(files["desc"]), str(pred), str(out)], env=env)
    if c.error is not None:
        return {"tool": tool, "case": case, "error": c.error}
    return {"tool": tool, "case": case, **json.loads(c.stdout.strip().splitlines()[-1])}


def _rows(path: Path) -> tuple[np.ndarray, ...]:
    z = np.load(path, allow_pickle=False)
    order = np.lexsort((z["score"], *z["box"].T[::-1], z["label"], z["image"]))
    return z["image"][order], z["label"][order], z["box"][order], z["score"][order]


def agreement(ref: Path, other: Path, scores: bool, ref_name: str = "hotcoco") -> str:
    """How the boxes (and scores) in ``other`` agree with ``ref``'s, in words."""
    a, b = _rows(ref), _rows(other)
    if len(a[0]) != len(b[0]):
        return f"{len(b[0])} boxes, {ref_name} {len(a[0])}"
    keys = bool((a[0] == b[0]).all() and (a[1] == b[1]).all())
    diff = float(np.abs(a[2] - b[2]).max()) if len(a[2]) else 0.0
    same_scores = not scores or bool((a[3] == b[3]).all())
    if keys and diff == 0 and same_scores:
        return f"same {len(a[0])} boxes as {ref_name}, bit-equal"
    return f"vs {ref_name}: ids/classes {'equal' if keys else 'differ'}, boxes max diff {diff:.1e}" + (
        "" if same_scores else ", scores differ")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the rows (default 1.0)")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--sizes", default="300000,1000000", help="boxes CSV rows, comma-separated (before --scale)")
    ap.add_argument("--dets", type=int, default=1_000_000, help="detections on the first file's images")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tool; the median by call_s is reported")
    ap.add_argument("--baseline", type=Path, default=None, help="a source folder to run maslow from as maslow-base")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--keep", type=Path, default=None, help="write the generated files here and keep them")
    args = ap.parse_args(argv)
    tools, notes = pick_tools(args.tools, {"maslow": "maslow", "hotcoco": "hotcoco"})
    if args.baseline is not None and "maslow" in tools:
        tools.insert(tools.index("maslow"), "maslow-base")
    cases = [c for c in args.cases.split(",") if c]
    sizes = [max(10, round(int(s) * args.scale)) for s in args.sizes.split(",") if s]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = args.keep or Path(tmp_s)
        tmp.mkdir(parents=True, exist_ok=True)
        desc = tmp / "class-descriptions-boxable.csv"
        desc.write_text("".join(f"{m},Class {k}\n" for k, m in enumerate(mids())))
        for k, n in enumerate(sizes):
            boxes = tmp / f"boxes-{n}-bbox.csv"
            text, ids = make_boxes(n, seed=k)
            boxes.write_text(text)
            files = {"boxes": boxes, "desc": desc}
            todo = [c for c in cases if c in ("read", "write")]
            if k == 0:
                csv, kaggle = make_detections(ids, max(10, round(args.dets * args.scale)), seed=k)
                files["results"], files["kaggle"] = tmp / "detections.csv", tmp / "submission.csv"
                files["results"].write_text(csv)
                files["kaggle"].write_text(kaggle)
                todo += [c for c in cases if c not in ("read", "write")]
            del text
            for case in todo:
                who = [t for t in tools if t.startswith("maslow") or case in ("read", "results")]
                runs: dict[str, list[dict[str, Any]]] = {t: [] for t in who}
                for _ in range(max(1, args.repeat)):
                    for t in who:
                        out = tmp / (f"{t}-{case}-{n}" + ("" if case == "write" else ".csv" if "write" in case
                                                          else ".npz"))
                        runs[t].append(run_tool(t, case, files, out, args.baseline) | {"rows": n})
                for t in who:
                    ok = sorted((x for x in runs[t] if "error" not in x), key=lambda x: x["call_s"])
                    row = ok[len(ok) // 2] if ok else runs[t][0]
                    if len(ok) > 1:
                        row["call_spread"] = [round(min(x["call_s"] for x in ok), 3),
                                              round(max(x["call_s"] for x in ok), 3)]
                    rows.append(row)
                _compare(rows[-len(who):], case, files, tmp, n)
    if args.json:
        print(json.dumps({"sizes": sizes, "rows": rows, "notes": notes}, indent=1))
        return 0
    print(f"Open Images CSVs: boxes files of {', '.join(f'{n:,}' for n in sizes)} rows, {args.dets * args.scale:,.0f} "
          f"detections; CPU seconds, median of {max(1, args.repeat)} by call_s")
    print(f"{'case':<14}{'rows':>9} {'tool':<12}{'call_s':>8}{'cpu_s':>8}{'wall_s':>8}{'rss_MB':>8}{'x_hotcoco':>10}"
          "  check")
    for r in rows:
        if "error" in r:
            print(f"{r['case']:<14}{r['rows']:>9} {r['tool']:<12}  error: {r['error']}")
            continue
        x = f"{r['x_hotcoco']:>10.2f}" if r.get("x_hotcoco") is not None else f"{'':>10}"
        print(f"{r['case']:<14}{r['rows']:>9} {r['tool']:<12}{r['call_s']:>8.3f}{r['cpu_s']:>8.3f}{r['wall_s']:>8.3f}"
              f"{r['rss_mb']:>8.0f}{x}  {r.get('check', '')}")
    base = {(r["case"], r["rows"]): r["call_s"] for r in rows if r["tool"] == "maslow-base" and "call_s" in r}
    for r in rows:
        if r["tool"] == "maslow" and (r["case"], r["rows"]) in base and "call_s" in r:
            print(f"note: {r['case']} {r['rows']:,} rows: maslow-base {base[r['case'], r['rows']]:.3f} s -> maslow "
                  f"{r['call_s']:.3f} s ({base[r['case'], r['rows']] / max(r['call_s'], 1e-9):.1f}x)")
    for n in notes:
        print("note:", n)
    return 0


def _compare(rows: list[dict[str, Any]], case: str, files: dict[str, Path], tmp: Path, n: int) -> None:
    """The agreement column: read cases against hotcoco's boxes, written files against their input."""
    ref = next((r for r in rows if r["tool"] == "hotcoco" and "error" not in r), None)
    for r in rows:
        if "error" in r:
            continue
        out = tmp / (f"{r['tool']}-{case}-{n}" + ("" if case == "write" else ".csv" if "write" in case else ".npz"))
        if ref is not None and r is not ref:
            r["x_hotcoco"] = round(r["call_s"] / ref["call_s"], 3)
        if case == "write":
            same = (out / "annotations-bbox.csv").read_bytes() == files["boxes"].read_bytes()
            r["check"] = "bytes equal the input" if same else "BYTES DIFFER from the input"
        elif case.startswith("write-"):
            src = files["kaggle" if "kaggle" in case else "results"]
            r["check"] = "bytes equal the input" if out.read_bytes() == src.read_bytes() else "BYTES DIFFER"
        elif r["tool"] == "hotcoco":
            r["check"] = "reference"
        elif ref is not None:
            r["check"] = agreement(tmp / f"hotcoco-{case}-{n}.npz", out, scores=case == "results")
        elif case == "kaggle" and (tmp / f"maslow-results-{n}.npz").exists():
            r["check"] = agreement(tmp / f"maslow-results-{n}.npz", out, scores=True, ref_name="the CSV form")


if __name__ == "__main__":
    sys.exit(main())
