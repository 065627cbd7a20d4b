"""`maslow eval` inputs: YOLO prediction files with a confidence column, why a prediction file was refused (its import
errors), predictions made at another image size (refused before any xyxy advice), the COCO parameters as flags
(checked against pycocotools), and the `maslow compare` delta plot's title inside its figure."""

from __future__ import annotations

import contextlib
import io as pyio
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.errors import MaslowWarning
from maslow.io.coco import read_coco
from maslow.io.coco_results import parse as parse_results
from maslow.io.coco_results import write_coco_results
from maslow.metrics import coco_map
from maslow.sample import write_shapes
from tests.helpers import run_cli_streams
from tests.metrics.simulated import simulate


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("eval_inputs")
    truth = write_shapes(d / "shapes", 24, seed=4)
    io.write(truth, d / "shapes" / "annotations.json", "coco")
    truth = read_coco(d / "shapes" / "annotations.json")
    write_coco_results(simulate(truth, seed=4), d / "dets.json")
    return {"dir": d, "gt": d / "shapes" / "annotations.json", "pred": d / "dets.json", "truth": truth}


def _flat(text: str) -> str:
    return " ".join(text.split())


# -- 1. YOLO predictions with a confidence column ----------------------------------------------------------------
@pytest.fixture(scope="module")
def yolo_dirs(files: dict[str, Any]) -> dict[str, Any]:
    d = files["dir"]
    io.write(files["truth"], d / "yolo_gt", "yolo", task="detect")
    rng = np.random.default_rng(0)
    scores: list[float] = []
    shutil.copytree(d / "yolo_gt", d / "yolo_pred", symlinks=True)
    for f in sorted((d / "yolo_pred" / "labels").rglob("*.txt")):
        lines = []
        for line in f.read_text().splitlines():
            v = line.split()
            v[1] = f"{min(float(v[1]) + rng.normal(0, 0.02), 1.0):.6f}"  # some boxes off, so AP is not 1
            s = round(float(rng.uniform(0.05, 1.0)), 4)
            scores.append(s)
            lines.append(" ".join([*v, str(s)]))
        f.write_text("\n".join(lines) + ("\n" if lines else ""))
    return {"gt": d / "yolo_gt", "pred": d / "yolo_pred", "scores": scores}


def test_yolo_predictions_with_a_confidence_are_evaluated(yolo_dirs: dict[str, Any]) -> None:
    code, out, err = run_cli_streams(["eval", "--gt", str(yolo_dirs["gt"]), "--from", "yolo", "--pred",
                                      str(yolo_dirs["pred"]), "--pred-format", "yolo", "--json", "-"])
    assert code == 0, err  # was: "predictions must carry scores, got none", exit 2
    d = json.loads(out)
    truth = io.read(yolo_dirs["gt"], "yolo")
    with pytest.warns(MaslowWarning, match="yolo_scored"):  # an info finding: lines read with a confidence
        pred = io.read(yolo_dirs["pred"], "yolo")
    assert pred.annotations.score is not None and sorted(pred.annotations.score.tolist()) == sorted(yolo_dirs["scores"])
    assert pred.images.path.tolist() == truth.images.path.tolist()
    ref = coco_map(truth, pred.replace(images=truth.images, root=truth.root))
    assert d["n_pred"] == len(yolo_dirs["scores"]) and 0 < ref.map_50_95 < 1
    assert d["map"]["stats"]["map_50_95"] == ref.map_50_95 and d["map"]["stats"]["map_50"] == ref.map_50
    assert not [i for i in d["import_issues"]["pred"]["issues"]  # no refused line
                if i["type"].startswith("yolo_") and i["severity"] != "info"]


def test_a_refused_prediction_file_says_its_import_errors(files: dict[str, Any], yolo_dirs: dict[str, Any]) -> None:
    bad = files["dir"] / "yolo_bad"
    shutil.copytree(yolo_dirs["pred"], bad, symlinks=True)
    for f in (bad / "labels").rglob("*.txt"):  # a confidence that is no number: every line refused
        f.write_text("".join(" ".join([*line.split()[:5], "high"]) + "\n" for line in f.read_text().splitlines()))
    code, _, err = run_cli_streams(["eval", "--gt", str(yolo_dirs["gt"]), "--from", "yolo", "--pred", str(bad),
                                      "--pred-format", "yolo"])
    text = _flat(err)
    assert code == 2
    assert "predictions must carry scores, got none" in text
    assert "the import reported" in text and "[yolo_bad_value]" in text and ".txt, line 1:" in text
    assert "import issues" in text  # the report itself, on stderr


# -- 2. predictions made at another image size -------------------------------------------------------------------
def _whole_file(files: dict[str, Any], name: str, scale: dict[int, float]) -> Path:
    """The results as a whole COCO file with its own images; image i's size and boxes scaled by scale[i]."""
    g = json.loads(files["gt"].read_text())
    dets = json.loads(files["pred"].read_text())
    f = {im["id"]: scale.get(k, 1.0) for k, im in enumerate(g["images"])}
    images = [dict(im, width=round(im["width"] * f[im["id"]]), height=round(im["height"] * f[im["id"]]))
              for im in g["images"]]
    anns = [dict(r, id=k + 1, iscrowd=0, bbox=[v * f[r["image_id"]] for v in r["bbox"]],
                 area=r["bbox"][2] * r["bbox"][3] * f[r["image_id"]] ** 2) for k, r in enumerate(dets)]
    out = Path(files["dir"]) / name
    out.write_text(json.dumps({"images": images, "annotations": anns, "categories": g["categories"]}))
    return out


@pytest.mark.parametrize("scale", [pytest.param("all", id="all-images-2x"), pytest.param("one", id="one-image")])
def test_coco_predictions_of_another_image_size_are_refused(files: dict[str, Any], scale: str) -> None:
    dets = json.loads(files["pred"].read_text())
    first = sorted({r["image_id"] for r in dets})[0] - 1  # an image with predictions (ids are 1-based)
    factors = {k: 2.0 for k in range(24)} if scale == "all" else {first: 2.0}
    src = _whole_file(files, f"pred_{scale}.json", factors)
    code, out, err = run_cli_streams(["eval", "--gt", str(files["gt"]), "--pred", str(src)])
    text = _flat(err)
    assert code == 2, out  # was: exit 0, every stat 0.000 (all), or nothing said at all (one)
    n = len({r["image_id"] for r in dets}) if scale == "all" else 1
    im = json.loads(files["gt"].read_text())["images"][first]
    assert f"images[{first}], field 'width'" in text and f"{im['width']}x{im['height']}" in text
    assert f"got {2 * im['width']}x{2 * im['height']} ({n} of" in text and "Rescale the predictions" in text
    assert "xyxy" not in text  # not the wrong advice to convert the boxes
    _, report = parse_results(src, like=files["truth"])
    assert [i.type for i in report.issues] == ["coco_size_mismatch"]


def test_coco_predictions_listing_the_truths_sizes_are_evaluated(files: dict[str, Any]) -> None:
    src = _whole_file(files, "pred_same.json", {})
    code, out, err = run_cli_streams(["eval", "--gt", str(files["gt"]), "--pred", str(src), "--json", "-"])
    assert code == 0, err
    _, out2, _ = run_cli_streams(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--json", "-"])
    assert json.loads(out)["map"] == json.loads(out2)["map"] and json.loads(out)["import_issues"]["pred"]["issues"] == []


def test_other_formats_of_another_image_size_are_refused(files: dict[str, Any], yolo_dirs: dict[str, Any]) -> None:
    src = files["dir"] / "yolo_resized"
    shutil.copytree(yolo_dirs["pred"], src, symlinks=False)  # the images as files, one made larger
    labelled = sorted(p for p in (src / "labels").rglob("*.txt") if p.read_text().strip())[0]
    img = next((src / "images").rglob(labelled.stem + ".png"))
    with Image.open(img) as im:
        w, h = im.size
        im.resize((w * 2, h * 2)).save(img)
    code, out, err = run_cli_streams(["eval", "--gt", str(yolo_dirs["gt"]), "--from", "yolo", "--pred", str(src),
                                      "--pred-format", "yolo"])
    text = _flat(err)
    assert code == 2, out
    assert f"{labelled.stem}.png" in text and f"must be the truth image's {w}x{h}" in text and f"got {2 * w}x{2 * h}" in text


# -- 5. the COCO parameters as flags, against pycocotools -----------------------------------------------------------
def _pycocotools(gt: Path, dets: list[dict[str, Any]], iou_type: str, **params: Any) -> Any:
    coco = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    with contextlib.redirect_stdout(pyio.StringIO()):
        g = coco.COCO(str(gt))
        e = cocoeval.COCOeval(g, g.loadRes(dets), iou_type)
        for k, v in params.items():
            setattr(e.params, k, v)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e


def _stats(d: dict[str, Any]) -> list[float]:
    return [-1.0 if v is None else v for v in d["map"]["stats"].values()]


AREAS = [[0, 1e5**2], [0, 1200], [32**2, 96**2], [96**2, 1e5**2], [0, 400]]


@pytest.mark.parametrize(("flags", "params"), [
    pytest.param(["--iou-thresholds", "0.5:0.95:0.05"], {}, id="default-range"),
    pytest.param(["--iou-thresholds", "0.3,0.5,0.75", "--max-dets", "1,5,100", "--area-range", "tiny=0:400",
                  "--area-range", "small=0:1200"],
                 {"iouThrs": np.array([0.3, 0.5, 0.75]), "maxDets": [1, 5, 100], "areaRng": AREAS,
                  "areaRngLbl": ["all", "small", "medium", "large", "tiny"]}, id="thresholds-dets-areas"),
    pytest.param(["--class-agnostic", "--iou-thresholds", "0.5,0.75"],
                 {"useCats": 0, "iouThrs": np.array([0.5, 0.75])}, id="class-agnostic"),
])
def test_coco_parameters_equal_pycocotools(files: dict[str, Any], flags: list[str], params: dict[str, Any]) -> None:
    code, out, err = run_cli_streams(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--json", "-",
                                      *flags])
    assert code == 0, err
    d = json.loads(out)
    e = _pycocotools(files["gt"], json.loads(files["pred"].read_text()), "bbox", **params)
    np.testing.assert_allclose(_stats(d), e.stats, rtol=0, atol=1e-12)
    if "areaRngLbl" in params:  # the range pycocotools' summary has no stat for: its _summarize formula
        a, m = params["areaRngLbl"].index("tiny"), params["maxDets"].index(100)
        p, r = e.eval["precision"][:, :, :, a, m], e.eval["recall"][:, :, a, m]
        assert d["area_stats"]["tiny"] == {"ap": pytest.approx(p[p > -1].mean(), abs=1e-12),
                                           "ar": pytest.approx(r[r > -1].mean(), abs=1e-12), "max_dets": 100}
    if "useCats" in params:
        assert [c["class"] for c in d["per_class"]] == ["all"]
    code, out, _ = run_cli_streams(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), *flags])
    assert code == 0 and ("map_tiny" in out) == ("areaRngLbl" in params)


def test_keypoint_parameters_equal_pycocotools(files: dict[str, Any]) -> None:
    g = json.loads(files["gt"].read_text())
    for a in g["annotations"]:  # pycocotools needs keypoints on every object (none: ignored)
        a.setdefault("keypoints", [0] * 9)
        a.setdefault("num_keypoints", 0)
    gt = files["dir"] / "kp_gt.json"
    gt.write_text(json.dumps(g))
    rng = np.random.default_rng(1)
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": float(rng.uniform(0.1, 1)),
             "keypoints": [round(v + (rng.normal(0, 2) if k % 3 != 2 else 0), 2) for k, v in enumerate(a["keypoints"])]}
            for a in g["annotations"] if a["num_keypoints"] and rng.random() < 0.85]
    src = files["dir"] / "kp_dets.json"
    src.write_text(json.dumps(dets))
    code, out, err = run_cli_streams(["eval", "--gt", str(gt), "--pred", str(src), "--iou-type", "keypoints",
                                      "--kpt-sigmas", "0.08,0.08,0.08", "--iou-thresholds", "0.5,0.75,0.9",
                                      "--max-dets", "5,20", "--json", "-"])
    assert code == 0, err
    e = _pycocotools(gt, dets, "keypoints", iouThrs=np.array([0.5, 0.75, 0.9]), maxDets=[5, 20],
                     kpt_oks_sigmas=np.array([0.08] * 3))
    np.testing.assert_allclose(_stats(json.loads(out)), e.stats, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("extra", "message"), [
    pytest.param(["--max-dets", "10,1"], "--max-dets must be increasing", id="dets-order"),
    pytest.param(["--max-dets", "1,x"], "--max-dets values must be whole numbers", id="dets-number"),
    pytest.param(["--iou-thresholds", "0.5,1.5"], "--iou-thresholds values must lie in [0, 1], got 1.5", id="iou-range"),
    pytest.param(["--iou-thresholds", "0.5:0.9:0.15"], "whole number of STEPs", id="iou-step"),
    pytest.param(["--area-range", "tiny"], "--area-range must be NAME=LO:HI", id="area-form"),
    pytest.param(["--area-range", "tiny=9:4"], "0 <= LO <= HI", id="area-order"),
    pytest.param(["--class-agnostic", "--iou-type", "keypoints", "--kpt-sigmas", "0.1,0.1,0.1"],
                 "--class-agnostic applies to --iou-type bbox, segm, boundary and obb", id="agnostic-keypoints"),
    pytest.param(["--max-dets", "1,10,100", "--protocol", "voc"], "--protocol", id="voc"),
    pytest.param(["--class-agnostic", "--protocol", "lvis"], "goes with --protocol coco, not lvis", id="lvis"),
])
def test_coco_parameters_are_refused_where_they_do_not_apply(files: dict[str, Any], extra: list[str],
                                                              message: str) -> None:
    code, out, err = run_cli_streams(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), *extra])
    assert code == 2, out
    assert message in _flat(err)


def test_coco_parameters_are_refused_for_label_tasks(tmp_path: Path) -> None:
    (tmp_path / "annotations").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "annotations" / "a.png")
    (tmp_path / "images").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "images" / "a.png")
    code, out, err = run_cli_streams(["eval", "--gt", str(tmp_path / "annotations"), "--from", "masks", "--pred",
                                      str(tmp_path / "annotations"), "--pred-format", "masks", "--iou-thresholds", "0.5"])
    assert code == 2, out
    assert "applies to detection, instance masks and keypoints, got a semantic_segmentation truth" in _flat(err)


# -- 4. the compare plot's title stays inside the figure ---------------------------------------------------------------
def test_compare_delta_plot_title_fits_its_figure(files: dict[str, Any]) -> None:
    pytest.importorskip("matplotlib")
    truth = files["truth"]
    write_coco_results(simulate(truth, seed=9), files["dir"] / "dets_b.json")
    plots = files["dir"] / "cplots"
    code, _, err = run_cli_streams(["compare", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--pred",
                                      str(files["dir"] / "dets_b.json"), "--bootstrap", "20", "--plot", str(plots)])
    assert code == 0, err
    with Image.open(plots / "ap_delta_per_class.png") as im:
        px = np.asarray(im.convert("L"))
    dark = px < 128
    rows = np.flatnonzero(dark.any(axis=1))
    title = rows[rows < px.shape[0] // 5]  # the title's lines, at the top
    assert title.size
    cols = np.flatnonzero(dark[title].any(axis=0))
    # the old title (with the colour legend in it) was wider than the figure: its text touched both edges
    assert cols.min() > 2 and cols.max() < px.shape[1] - 3
