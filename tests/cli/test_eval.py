"""`maslow eval`: exit codes and the parsed --json output (the numbers equal the library's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from maslow import io
from maslow.cli.main import app
from maslow.io.coco import read_coco
from maslow.io.coco_results import read_coco_predictions, write_coco_results
from maslow.metrics import coco_map, operating_point
from maslow.sample import write_shapes
from tests.conftest import shared_path
from tests.helpers import run_cli as _run
from tests.metrics.simulated import simulate

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("eval")
    truth = write_shapes(d / "shapes", 36, seed=2)
    io.write(truth, d / "shapes" / "annotations.json", "coco")
    truth = read_coco(d / "shapes" / "annotations.json")
    write_coco_results(simulate(truth, seed=2), d / "dets.json")
    return {"dir": d, "gt": d / "shapes" / "annotations.json", "pred": d / "dets.json"}


def _eval(files: dict[str, Path], *extra: str, name: str = "out.json", pred: Path | None = None) -> dict[str, Any]:
    out = files["dir"] / name
    code, text = _run(["eval", "--gt", str(files["gt"]), "--pred", str(pred or files["pred"]), "--json", str(out),
                       *extra])
    assert code == 0, text
    return dict(json.loads(out.read_text()))


def test_eval_json_equals_the_library(files: dict[str, Path]) -> None:
    d = _eval(files, "--cost-fp", "1", "--cost-fn", "5", "--slice-by", "split", "--n-boot", "20")
    truth = read_coco(files["gt"])
    pred = read_coco_predictions(files["pred"], like=truth)
    ref = coco_map(truth, pred)
    assert d["iou_type"] == "bbox" and d["n_images"] == 36 and d["n_pred"] == pred.n_annotations
    assert d["map"]["stats"]["map_50_95"] == ref.map_50_95 and d["map"]["stats"]["mar_100"] == ref.mar_100
    assert [c["class"] for c in d["per_class"]] == list(ref.class_names)
    assert d["per_class"][0]["ap_50"] == ref.ap_per_class[0, 0]
    op = operating_point(truth, pred, cost_fn=5)
    assert d["operating_points"]["mode"] == "cost" and d["operating_points"]["cost_fn"] == 5.0
    assert [c["threshold"] for c in d["operating_points"]["classes"]] == op.threshold.tolist()
    assert d["operating_points"]["overall"]["fn"] == op.overall_fn
    assert d["slices"]["by"] == "split" and [s["value"] for s in d["slices"]["slices"]] == ["train", "val"]
    assert d["slices"]["overall"] == ref.map_50_95
    labels = d["confusion_matrix"]["labels"]
    assert labels == [*ref.class_names, "background"]
    assert d["plots"] == {} and d["import_issues"]["pred"]["n_issues"] == 0


def test_slices_of_one_image_each_are_said(files: dict[str, Path]) -> None:
    d = _eval(files, "--slice-by", "coco_id", "--n-boot", "5", name="ids.json")
    assert len(d["slices"]["slices"]) == 36
    assert any("36 of its 36 values hold a single image" in n for n in d["notes"]), d["notes"]
    d = _eval(files, "--slice-by", "split", "--n-boot", "5", name="split.json")
    assert not any("single image" in n for n in d["notes"])


def test_eval_writes_plots(files: dict[str, Path]) -> None:
    plots = files["dir"] / "plots"
    d = _eval(files, "--plot", str(plots), "--slice-by", "sequence", "--n-boot", "10", name="plots.json")
    assert set(d["plots"]) == {"pr_curves", "ap_per_class", "confusion_matrix", "slices"}
    for p in d["plots"].values():
        assert Path(p).read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in plots.iterdir()) == ["ap_per_class.png", "confusion_matrix.png", "pr_curves.png",
                                                       "slices_sequence.png"]


def test_a_score_threshold_above_every_prediction(files: dict[str, Path]) -> None:
    d = _eval(files, "--score-threshold", "2", name="high.json")
    matrix = np.asarray(d["confusion_matrix"]["matrix"])
    assert matrix[:-1, :-1].sum() == 0 and matrix[-1].sum() == 0 and matrix[:-1, -1].sum() > 0  # all missed


def test_targets_and_segm(files: dict[str, Path]) -> None:
    d = _eval(files, "--target-precision", "0.9", "--iou-threshold", "0.6", name="t.json")
    ops = d["operating_points"]
    assert ops["mode"] == "precision" and ops["target"] == 0.9 and ops["iou_threshold"] == 0.6
    assert all(c["met"] is False or c["precision"] >= 0.9 for c in ops["classes"])
    # segm: the shapes' own masks as predictions give a perfect score
    truth = read_coco(files["gt"])
    perfect = truth.select(~truth.annotations.iscrowd)  # type: ignore[operator]
    perfect = perfect.replace(annotations=perfect.annotations.with_columns(score=np.full(perfect.n_annotations, .9)))
    write_coco_results(perfect, files["dir"] / "segm.json")
    out = files["dir"] / "segm-out.json"
    code, text = _run(["eval", "--gt", str(files["gt"]), "--pred", str(files["dir"] / "segm.json"),
                       "--iou-type", "segm", "--json", str(out)])
    assert code == 0, text
    assert json.loads(out.read_text())["map"]["stats"]["map_50_95"] == pytest.approx(1.0)


def test_keypoints_with_custom_sigmas(files: dict[str, Path]) -> None:
    truth = read_coco(files["gt"])
    a = truth.annotations
    kp = truth.select(~a.iscrowd & (a.label == truth.schema.index("triangle")))  # type: ignore[operator]
    kp = kp.replace(annotations=kp.annotations.with_columns(score=np.full(kp.n_annotations, 0.8)))
    write_coco_results(kp, files["dir"] / "kp.json")
    d = _eval(files, "--iou-type", "keypoints", "--kpt-sigmas", "0.08,0.08,0.08", "--cost-fn", "2",
              "--slice-by", "split", "--n-boot", "5", name="kp-out.json", pred=files["dir"] / "kp.json")
    assert d["map"]["stats"]["map_50_95"] == 1.0 and "mar_20" in d["map"]["stats"]
    labelled = (np.nan_to_num(a.keypoints[:, :, 2]) > 0).any(axis=1) & ~a.iscrowd  # type: ignore[index,operator]
    assert {c["class"]: c["n_truth"] for c in d["per_class"]} == {  # the objects OKS counts, not every one
        n: int((labelled & (a.label == k)).sum()) for k, n in enumerate(truth.schema.names)}
    assert d["per_class"][truth.schema.index("circle")]["n_truth"] == 0
    assert d["confusion_matrix"] is None  # class-agnostic matching needs IoU, not OKS
    assert d["operating_points"]["overall"]["fn"] == 0 and d["slices"]["overall"] == 1.0


def test_keypoints_other_than_coco_17_name_the_truth_file_and_the_flag(files: dict[str, Path]) -> None:
    truth = read_coco(files["gt"])
    a = truth.annotations
    kp = truth.select(~a.iscrowd & (a.label == truth.schema.index("triangle")))  # type: ignore[operator]
    kp = kp.replace(annotations=kp.annotations.with_columns(score=np.full(kp.n_annotations, 0.8)))
    write_coco_results(kp, files["dir"] / "kp3.json")
    code, text = _run(["eval", "--gt", str(files["gt"]), "--pred", str(files["dir"] / "kp3.json"),
                       "--iou-type", "keypoints"])
    flat = " ".join(text.split())
    assert code == 2, text
    assert f"{files['gt']}: can't be evaluated: annotations.keypoints: must have 17 keypoints" in flat
    assert "Pass --kpt-sigmas, one sigma per keypoint" in flat


def test_predictions_in_another_format_are_aligned_by_image_path(files: dict[str, Path]) -> None:
    truth = read_coco(files["gt"])
    pred = read_coco_predictions(files["pred"], like=truth)
    io.write(pred, files["dir"] / "pred.parquet", "parquet")
    d = _eval(files, "--pred-format", "parquet", name="pq.json", pred=files["dir"] / "pred.parquet")
    d_ref = _eval(files, name="ref.json")
    assert d["map"]["stats"] == d_ref["map"]["stats"]


def test_off_by_one_ids_need_id_offset(files: dict[str, Path]) -> None:
    records = json.loads(files["pred"].read_text())
    for r in records:
        r["image_id"] -= 1
        r["category_id"] -= 1
    shifted = files["dir"] / "zero_based.json"
    shifted.write_text(json.dumps(records))
    ref = _eval(files, name="ref2.json")
    out = files["dir"] / "fixed.json"
    code, text = _run(["eval", "--gt", str(files["gt"]), "--pred", str(shifted), "--id-offset", "1",
                       "--json", str(out)])
    assert code == 0, text
    assert json.loads(out.read_text())["map"]["stats"] == ref["map"]["stats"]
    out = files["dir"] / "unfixed.json"  # unfixed: refused (an evaluation would pair the wrong images)
    code, text = _run(["eval", "--gt", str(files["gt"]), "--pred", str(shifted), "--json", str(out)])
    assert code == 2 and "--id-offset 1" in text and "ids_off_by_one" in text, text
    assert not out.exists()


@pytest.mark.parametrize(("pred", "args", "message"), [
    pytest.param("bad.json", [], "bad.json", id="truncated-results"),
    pytest.param("nothing.json", [], "does not exist", id="missing-file"),
    pytest.param(None, ["--slice-by", "site"], "eval: --slice-by must be an image column (split, width, height, "
                 "coco_id, frame, sequence), got 'site'", id="unknown-column"),
    pytest.param("pred.parquet", ["--pred-format", "parquet", "--id-offset", "1"],
                 "--id-offset applies to --pred-format coco-results only", id="offset-other-format"),
    pytest.param(None, ["--pred-format", "yolo"], "predictions must carry scores", id="format-without-scores"),
    pytest.param(None, ["--cost-fn", "-1"], "greater than or equal to 0", id="negative-cost"),
    pytest.param(None, ["--iou-type", "mask"], "'mask' is not one of", id="unknown-iou-type"),
    pytest.param(None, ["--gt-format", "nope"], "--gt-format must be one of", id="unknown-format"),
    pytest.param(None, ["--pred-format", "nope"], "--pred-format must be one of", id="unknown-pred-format"),
    pytest.param(None, ["--kpt-sigmas", "0.1,x"], "--kpt-sigmas must be positive numbers", id="bad-sigmas"),
    pytest.param(None, ["--target-precision", "0"], "greater than 0", id="zero-target"),
    pytest.param(None, ["--target-recall", "0.5", "--target-precision", "0.5"], "not both", id="two-targets"),
])
def test_bad_input_exits_2_with_a_located_message(files: dict[str, Path], pred: str | None, args: list[str],
                                                  message: str) -> None:
    d = files["dir"]
    (d / "bad.json").write_text('[{"image_id": 1, ')
    truth = read_coco(files["gt"])
    io.write(read_coco_predictions(files["pred"], like=truth), d / "pred.parquet", "parquet")
    io.write(truth, d / "yolo", "yolo")
    if "yolo" in args:
        pred = "yolo"
    res = runner.invoke(app, ["eval", "--gt", str(files["gt"]), "--pred", str(d / pred if pred else files["pred"]),
                              *args])
    assert res.exit_code == 2, res.output
    text = " ".join("".join(c for c in res.output + res.stderr if c not in "│╭╮╰╯─").split())
    assert message in text


@pytest.mark.parametrize(("field", "value", "message"), [
    pytest.param("score", "high", "[3], field 'score': score must be a number", id="string-score"),
    pytest.param("score", None, "[3], field 'score': score must be a number", id="null-score"),
    pytest.param("bbox", [1, 1, -4, 5], "[3], field 'bbox': bbox width and height must be >= 0",
                 id="negative-box"),
])
def test_a_bad_prediction_is_named_by_record_and_field(files: dict[str, Path], field: str, value: Any,
                                                       message: str) -> None:
    records = json.loads(files["pred"].read_text())
    records[3][field] = value
    bad = files["dir"] / f"bad_{field}.json"
    bad.write_text(json.dumps(records))
    out = files["dir"] / f"bad_{field}_out.json"
    code, text = _run(["eval", "--gt", str(files["gt"]), "--pred", str(bad), "--json", str(out)])
    assert code == 2  # used to say only "pred.annotations.score row 3: ...", without the file, record or field
    assert f"bad_{field}.json, {message}" in " ".join(text.split())
    assert not out.exists()


@pytest.mark.shared
def test_shared_coco_eval_case(tmp_path: Path) -> None:
    folder = shared_path("od_metrics_fixture", "annotations", "coco_eval_case")
    out = tmp_path / "eval.json"
    code, text = _run(["eval", "--gt", str(folder / "gts" / "sampled_gts_bbox_area.json"),
                       "--pred", str(folder / "cocoapi_results.json"), "--json", str(out)])
    assert code == 0, text
    stats = json.loads(out.read_text())["map"]["stats"]
    expected = [0.503647, 0.696973, 0.571667, 0.593252, 0.557991, 0.489363, 0.386813, 0.593680, 0.595353,
                0.654764, 0.603130, 0.553744]
    assert list(stats.values()) == pytest.approx(expected, abs=1e-6)
    assert stats["map_50_95"] == pytest.approx(0.503647, abs=1e-6)


def test_classification_predictions_are_scored_by_the_truth_task(tmp_path: Path) -> None:
    """A classification truth: accuracy, F1 and top-k, equal to scikit-learn on the same labels."""
    from sklearn.metrics import accuracy_score, f1_score, top_k_accuracy_score

    from maslow.core.dataset import Dataset
    from maslow.core.tables import Annotations
    from tests.models.tiny_data import colour_squares

    truth = colour_squares(tmp_path / "data", 30, seed=3)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=30)
    probs[np.arange(30), truth.annotations.label] += rng.uniform(0, 0.8, 30)  # mostly right
    probs /= probs.sum(axis=1, keepdims=True)
    top = probs.argmax(axis=1)
    pred = Dataset(truth.schema, truth.images,
                   Annotations(image=np.arange(30), label=top, score=probs.max(axis=1), source="model",
                               extra={"probs": probs}), root=truth.root)
    io.write(truth, tmp_path / "gt", "parquet")
    io.write(pred, tmp_path / "pred", "parquet")
    out = tmp_path / "eval.json"
    code, text = _run(["eval", "--gt", str(tmp_path / "gt"), "--gt-format", "parquet", "--pred",
                       str(tmp_path / "pred"), "--pred-format", "parquet", "--json", str(out)])
    assert code == 0, text
    assert "classification evaluation" in text and "Per class" in text
    got = json.loads(out.read_text())
    y = truth.annotations.label
    assert got["task"] == "classification"
    assert got["summary"]["accuracy"] == pytest.approx(accuracy_score(y, top), abs=1e-12)
    assert got["summary"]["fbeta_macro"] == pytest.approx(f1_score(y, top, average="macro"), abs=1e-12)
    assert got["summary"]["top_1_accuracy"] == pytest.approx(top_k_accuracy_score(y, probs, k=1), abs=1e-12)
    assert "top_5_accuracy" not in got["summary"] and "top_5_accuracy" not in text  # 3 classes: trivially 1
    assert got["result"]["top_k_accuracy"]["5"] == 1.0  # still in the full result
    assert got["result"]["per_class"]["recall"] == pytest.approx(
        [float(np.mean(top[y == k] == k)) for k in range(3)], abs=1e-12)


def test_label_maps_are_scored_without_scores(tmp_path: Path) -> None:
    # predicted label maps hold no scores: eval refused them ("predictions must carry scores")
    from PIL import Image

    from maslow.io import semantic
    from maslow.metrics import semantic_scores
    from maslow.sample import write_shapes

    shapes = write_shapes(tmp_path / "shapes", 6, seed=3)
    semantic.write(shapes, tmp_path / "gt")
    semantic.write(shapes, tmp_path / "pred")
    for f in sorted((tmp_path / "pred").rglob("*.png")):
        arr = np.asarray(Image.open(f)).copy()
        arr[: arr.shape[0] // 2] = 0  # the model misses the top half of every image
        Image.fromarray(arr).save(f)
    root = tmp_path / "shapes"
    code, out = _run(["eval", "--gt", str(tmp_path / "gt"), "--gt-format", "masks", "--pred",
                         str(tmp_path / "pred"), "--pred-format", "masks", "--json", str(tmp_path / "r.json"),
                         "--images-root", str(root)])
    assert code == 0, out
    got = json.loads((tmp_path / "r.json").read_text())["summary"]
    truth = semantic.read_semantic(tmp_path / "gt", images_root=root)
    pred = semantic.read_semantic(tmp_path / "pred", images_root=root)
    assert got["miou"] == pytest.approx(semantic_scores(truth, pred).miou) and got["miou"] < 1
    # the maps are paired with the truth's images: no "missing image" error per map (there are no images beside them)
    issues = json.loads((tmp_path / "r.json").read_text())["import_issues"]["pred"]
    assert issues["n_errors"] == 0 and "missing_image" not in issues["counts"], issues
    assert "import issues" not in out
