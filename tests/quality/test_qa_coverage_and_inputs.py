"""`maslow qa` and `review apply` on the inputs an audit found handled badly: truth images --pred has no prediction
on (said; not scored when a dataset-format file shows they were not predicted), --min-score out of [0, 1], polygon
predictions under --iou-type auto, errors that name the file and record, and a truth with nothing to score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.errors import InvalidDatasetError
from maslow.quality import QualityIssues, find_label_issues, summarize
from maslow.quality.consensus import resolve_iou_type
from tests.helpers import flat_text, run_cli_streams, shapes_coco


def _preds(coco: dict[str, Any]) -> list[dict[str, Any]]:
    """A model that sees every labelled object, a little off, at varied confidences."""
    anns = [a for a in coco["annotations"] if not a.get("iscrowd")]
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.55 + 0.4 * (k % 9) / 8,
             "bbox": [a["bbox"][0] + 0.7 * (k % 3), a["bbox"][1] - 0.5, a["bbox"][2], a["bbox"][3]]}
            for k, a in enumerate(anns)]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("qacov")
    clean = shapes_coco(tmp, 40, seed=5)
    preds = _preds(clean)
    coco = json.loads(json.dumps(clean))
    anns = [a for a in coco["annotations"] if not a.get("iscrowd")]
    anns[2]["category_id"] = anns[2]["category_id"] % 3 + 1  # a swapped class
    coco["annotations"] = [a for a in coco["annotations"] if a is not anns[5]]  # a dropped box
    gt = tmp / "shapes" / "noisy.json"
    gt.write_text(json.dumps(coco))
    pred = tmp / "pred.json"
    pred.write_text(json.dumps(preds))
    return {"tmp": tmp, "gt": gt, "coco": coco, "preds": preds, "pred": pred}


def _qa(*args: str) -> tuple[int, dict[str, Any] | None, str]:
    code, out, err = run_cli_streams(["qa", *args, "--json", "--top", "100000"])
    return code, (json.loads(out) if code == 0 else None), flat_text(err)


def _annotated_images(coco: dict[str, Any]) -> list[int]:
    return sorted({a["image_id"] for a in coco["annotations"] if not a.get("iscrowd")})


# -- F1: images without predictions ---------------------------------------------------------------------------------

def test_a_results_list_without_predictions_on_many_images_says_so(files: dict[str, Any]) -> None:
    tmp, coco = files["tmp"], files["coco"]
    gone = set(_annotated_images(coco)[:12])  # the model was not run on 12 images: every box there looks "extra"
    part = tmp / "partial.json"
    part.write_text(json.dumps([p for p in files["preds"] if p["image_id"] not in gone]))
    out = tmp / "partial_issues.json"
    code, d, err = _qa("--gt", str(files["gt"]), "--pred", str(part), "--out", str(out))
    assert code == 0 and d is not None
    n_ann = sum(1 for a in coco["annotations"] if a["image_id"] in gone and not a.get("iscrowd"))
    n_labelled = len(_annotated_images(coco))
    note = f"12 of the {n_labelled} annotated images have no prediction at all"
    assert any(n.startswith(note) and f"their {n_ann} annotations" in n for n in d["notes"]), d["notes"]
    assert note in err  # on stderr too
    names = {i["id"]: i["file_name"] for i in coco["images"]}
    assert d["unpredicted"] == {"n_images": 12, "n_annotations": n_ann, "scored": True,
                                "first": [names[i] for i in sorted(gone)[:3]]}
    # they are still scored (a results list can't tell "saw nothing" from "not run"): their boxes are extra
    issues = json.loads(out.read_text())
    assert sum(r["type"] == "extra" and r["image_id"] in gone for r in issues) == n_ann


def test_a_few_images_without_predictions_are_counted_not_noted(files: dict[str, Any]) -> None:
    one = _annotated_images(files["coco"])[0]  # under 5% of the images: a model's misses, not a partial run
    part = files["tmp"] / "one_gone.json"
    part.write_text(json.dumps([p for p in files["preds"] if p["image_id"] != one]))
    code, d, err = _qa("--gt", str(files["gt"]), "--pred", str(part), "--out", str(files["tmp"] / "o1.json"))
    assert code == 0 and d is not None
    assert d["unpredicted"]["n_images"] == 1 and d["unpredicted"]["scored"] is True
    assert not any("no prediction at all" in n for n in d["notes"]) and "no prediction at all" not in err
    code, d, _ = _qa("--gt", str(files["gt"]), "--pred", str(files["pred"]), "--out", str(files["tmp"] / "o0.json"))
    assert code == 0 and d is not None and d["unpredicted"]["n_images"] == 0 and d["notes"] == []


def _dataset_pred(coco: dict[str, Any], preds: list[dict[str, Any]], image_ids: set[int]) -> dict[str, Any]:
    """A COCO dataset-format prediction file listing only ``image_ids`` (the images the model was run on)."""
    anns = [{**p, "id": k + 1, "area": p["bbox"][2] * p["bbox"][3], "iscrowd": 0} for k, p in enumerate(preds)
            if p["image_id"] in image_ids]
    return {"images": [i for i in coco["images"] if i["id"] in image_ids], "categories": coco["categories"],
            "annotations": anns}


def test_a_dataset_format_pred_leaves_out_the_images_it_does_not_list(files: dict[str, Any]) -> None:
    tmp, coco = files["tmp"], files["coco"]
    ids = [i["id"] for i in coco["images"]]
    run_on = set(ids[15:])  # the file's images table: the model was not run on the first 15
    pd = tmp / "pd_subset.json"
    pd.write_text(json.dumps(_dataset_pred(coco, files["preds"], run_on)))
    out = tmp / "subset_issues.json"
    code, d, err = _qa("--gt", str(files["gt"]), "--pred", str(pd), "--pred-format", "coco", "--out", str(out))
    assert code == 0 and d is not None
    skipped = set(ids[:15])
    n_ann = sum(1 for a in coco["annotations"] if a["image_id"] in skipped and not a.get("iscrowd"))
    note = f"15 of the {len(ids)} truth images are not in --pred"
    assert any(n.startswith(note) and f"their {n_ann} annotations" in n for n in d["notes"]) and note in err
    assert d["unpredicted"]["n_images"] == 15 and d["unpredicted"]["scored"] is False
    issues = json.loads(out.read_text())
    assert issues and not any(r["image_id"] in skipped for r in issues)
    # exactly the findings of a truth holding only the images predicted (statistics too), on the whole truth's rows
    sub = {**coco, "images": [i for i in coco["images"] if i["id"] in run_on],
           "annotations": [a for a in coco["annotations"] if a["image_id"] in run_on]}
    gt_sub = tmp / "shapes" / "noisy_sub.json"
    gt_sub.write_text(json.dumps(sub))
    out_sub = tmp / "sub_issues.json"
    code, d_sub, _ = _qa("--gt", str(gt_sub), "--pred", str(pd), "--pred-format", "coco", "--out", str(out_sub))
    assert code == 0 and d_sub is not None and d_sub["notes"] == []
    ref = json.loads(out_sub.read_text())

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return r["image_id"], r["annotation_id"], r["type"], r["score"], r["suggestion"]

    assert [key(r) for r in issues] == [key(r) for r in ref]
    truth = io.read_coco(files["gt"])
    row_of = {int(v): r for r, v in enumerate(truth.annotations.extra["coco_id"].tolist())}
    for r in issues:  # rows of the whole truth (review apply checks them)
        if r["annotation_id"] is not None:
            assert r["annotation_row"] == row_of[r["annotation_id"]]
        assert truth.images.path[r["image_row"]] == r["file_name"]
    assert d["class_totals"] == d_sub["class_totals"] and d["error_rate"] == d_sub["error_rate"]


def test_summarize_counts_the_annotations_of_the_scored_images() -> None:
    ds = Dataset(LabelSchema.from_names(["a", "b"]),
                 Images(path=np.array(["x", "y"], object), width=np.array([9, 9]), height=np.array([9, 9])),
                 Annotations(image=np.array([0, 0, 1, 1, 1]), label=np.array([0, 1, 0, 0, 1]),
                             box=np.tile([1.0, 1, 3, 3], (5, 1))))
    issues = QualityIssues.block("extra", "warning", image=[0], annotation=[0], score=[0.5], reason="r")
    assert summarize(issues, ds).class_totals == {"a": 3, "b": 2}
    s = summarize(issues, ds, scored=np.array([True, False]))
    assert s.class_totals == {"a": 1, "b": 1} and s.error_rate["a"]["extra"] == 0.5


def test_findings_of_a_part_are_put_on_the_rows_of_the_whole() -> None:
    part = QualityIssues.build([
        QualityIssues.block("extra", "warning", image=[0, 1], annotation=[1, -1], other=[0, -1], score=[0.9, 0.4],
                            reason="r", label=[1, 0]),
        QualityIssues.block("bias", "info", image=[-1], score=[0.2], reason="r")])
    whole = part.on_rows(np.array([3, 7]), np.array([10, 11, 20]))
    assert whole.image.tolist() == [3, 7, -1] and whole.annotation.tolist() == [11, -1, -1]
    assert whole.label is not None and part.label is not None
    assert whole.other.tolist() == [10, -1, -1] and whole.label.tolist() == part.label.tolist()
    assert whole.score.tolist() == part.score.tolist() and whole.reason.tolist() == part.reason.tolist()


# -- F2: --min-score ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "1.5", "-0.1", "inf"])
def test_min_score_outside_0_1_is_refused(files: dict[str, Any], value: str) -> None:
    out = files["tmp"] / f"ms_{value}.json"
    code, _, err = _qa("--gt", str(files["gt"]), "--pred", str(files["pred"]), "--out", str(out), "--min-score",
                       value)
    assert code == 2 and "--min-score must be a number in [0, 1]" in err, err
    assert not out.exists()


def test_find_label_issues_refuses_min_score_outside_0_1() -> None:
    from maslow.sample import shapes

    truth = shapes(4, seed=0)
    pred = truth.replace(annotations=truth.annotations.with_columns(score=np.full(truth.n_annotations, .9)))
    for v in (float("nan"), 1.01, -0.5):
        with pytest.raises(InvalidDatasetError, match=r"min_score must be a number in \[0, 1\]"):
            find_label_issues(truth, pred, iou_type="bbox", min_score=v)
    assert len(find_label_issues(truth, pred, iou_type="bbox", min_score=1.0)) == 0


# -- F3: polygon predictions under auto -----------------------------------------------------------------------------

def test_auto_picks_segm_for_polygon_predictions(tmp_path: Path) -> None:
    coco = shapes_coco(tmp_path, 12, seed=3)  # outlines, made an instance-segmentation truth (no keypoints)
    coco["annotations"] = [{k: v for k, v in a.items() if k not in ("keypoints", "num_keypoints")}
                           for a in coco["annotations"]]
    coco["categories"] = [{k: v for k, v in c.items() if k not in ("keypoints", "skeleton")}
                          for c in coco["categories"]]
    assert any(isinstance(a.get("segmentation"), list) for a in coco["annotations"])
    gt = tmp_path / "shapes" / "outlines.json"
    gt.write_text(json.dumps(coco))
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9, "bbox": a["bbox"],
              "segmentation": a["segmentation"]} for a in coco["annotations"]
             if not a.get("iscrowd") and isinstance(a.get("segmentation"), list)]
    pred = tmp_path / "poly.json"
    pred.write_text(json.dumps(preds))
    truth = io.read_coco(gt)
    assert truth.schema.task == Task.INSTANCE_SEGMENTATION
    p = io.read_coco_predictions(pred, like=truth)
    assert p.annotations.polygon is not None and p.annotations.mask is None
    assert resolve_iou_type(truth, p) == "segm"
    # a prediction without a segmentation: compared by boxes, as before
    nobox = tmp_path / "mixed.json"
    nobox.write_text(json.dumps([*preds, {k: v for k, v in preds[0].items() if k != "segmentation"}]))
    assert resolve_iou_type(truth, io.read_coco_predictions(nobox, like=truth)) == "bbox"
    code, d, _ = _qa("--gt", str(gt), "--pred", str(pred), "--out", str(tmp_path / "i.json"))
    assert code == 0 and d is not None and d["iou_type"] == "segm"


# -- F4: errors name the file and the record ------------------------------------------------------------------------

def test_predictions_without_keypoints_under_iou_type_keypoints_name_the_file(tmp_path: Path) -> None:
    from tests.quality.test_consensus_keypoints import TRIANGLE_SIGMAS, triangle_case

    case = triangle_case(tmp_path)
    bare = []  # the model's boxes (its keypoints' extents), without the keypoints
    for r in json.loads(Path(case["pred"]).read_text()):
        xs, ys = r["keypoints"][0::3], r["keypoints"][1::3]
        bare.append({**{k: v for k, v in r.items() if k != "keypoints"},
                     "bbox": [min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1]})
    nokp = tmp_path / "nokp.json"
    nokp.write_text(json.dumps(bare))
    code, _, err = _qa("--gt", str(case["gt"]), "--pred", str(nokp), "--iou-type", "keypoints", "--kpt-sigmas",
                       ",".join(map(str, TRIANGLE_SIGMAS)), "--out", str(tmp_path / "i.json"))
    assert code == 2 and f"{nokp}, field 'keypoints': --iou-type keypoints needs keypoints" in err, err


def test_a_dataset_format_pred_of_another_class_names_the_file(files: dict[str, Any]) -> None:
    coco = files["coco"]
    ids = {i["id"] for i in coco["images"]}
    doc = _dataset_pred(coco, files["preds"], ids)
    doc["categories"] = [*doc["categories"], {"id": 99, "name": "hexagon"}]
    doc["annotations"][0]["category_id"] = 99
    pd = files["tmp"] / "pd_other_class.json"
    pd.write_text(json.dumps(doc))
    code, _, err = _qa("--gt", str(files["gt"]), "--pred", str(pd), "--pred-format", "coco", "--out",
                       str(files["tmp"] / "x.json"))
    assert code == 2 and f"{pd}, field 'classes': class 'hexagon' of 1 predictions is not a truth class" in err, err


def test_segm_predictions_without_a_segmentation_name_the_file(files: dict[str, Any]) -> None:
    code, _, err = _qa("--gt", str(files["gt"]), "--pred", str(files["pred"]), "--iou-type", "segm", "--out",
                       str(files["tmp"] / "x.json"))
    assert code == 2 and f"{files['pred']}, field 'segmentation': --iou-type segm needs a segmentation" in err, err


def _issues_and_export(files: dict[str, Any], decisions: list[Any]) -> tuple[Path, Path]:
    from maslow.store.reviews import file_hash

    tmp = files["tmp"]
    issues = tmp / "review_issues.json"
    if not issues.exists():
        code, _, err = _qa("--gt", str(files["gt"]), "--pred", str(files["pred"]), "--out", str(issues))
        assert code == 0, err
    export = tmp / f"export_{len(list(tmp.glob('export_*')))}.json"
    export.write_text(json.dumps({"session": {"issues_hash": file_hash(issues), "issues_path": str(issues),
                                              "truth": "noisy", "truth_hash": "", "created": "today"},
                                  "decisions": decisions}))
    return issues, export


@pytest.mark.parametrize(("decisions", "where"), [
    pytest.param([{"key": 1, "status": "accepted"}, {"key": 999999, "status": "accepted"}],
                 "decisions[1], field 'key': key must be the rank of a finding of", id="unknown-key"),
    pytest.param([{"key": 0, "status": "rejected"}], "decisions[0], field 'key': key must be the rank", id="key-0"),
    pytest.param([{"key": 1, "status": "acepted"}],
                 "decisions[0], field 'status': status must be one of accepted, rejected, skipped, got 'acepted'",
                 id="bad-status"),
    pytest.param([{"key": 1, "status": "accepted", "label": "hexagon"}],
                 "decisions[0], field 'label': decision for finding 1", id="unknown-class"),
    pytest.param([{"key": 1, "status": "accepted", "label": 3}], "decisions[0], field 'label': label must be a class "
                 "name or null, got 3", id="label-not-a-name"),
    pytest.param([{"key": 2, "status": "accepted"}, {"key": 2, "status": "rejected"}],
                 "decisions[1], field 'key': key must be unique, got finding 2 decided twice (decisions[0] too)",
                 id="decided-twice"),
])
def test_a_bad_decision_names_the_export_and_its_record(files: dict[str, Any], decisions: list[Any],
                                                        where: str) -> None:
    issues, export = _issues_and_export(files, decisions)
    out = files["tmp"] / "fixed.json"
    code, _, err = run_cli_streams(["review", "apply", str(issues), "--gt", str(files["gt"]), "--decisions",
                                    str(export), "--out", str(out), "--to", "coco"])
    assert code == 2 and f"{export}, {where}" in flat_text(err), err
    assert not out.exists()


def test_good_decisions_from_an_export_apply(files: dict[str, Any]) -> None:
    issues, export = _issues_and_export(files, [{"key": 1, "status": "accepted", "label": None},
                                                {"key": 2, "status": "rejected"}])
    out = files["tmp"] / "fixed_ok.json"
    code, stdout, err = run_cli_streams(["review", "apply", str(issues), "--gt", str(files["gt"]), "--decisions",
                                         str(export), "--out", str(out), "--to", "coco", "--json"])
    assert code == 0, err
    counts = json.loads(stdout)["result"]["counts"]
    assert counts["rejected"] == 1 and counts["applied"] + counts["not_applicable"] == 1


# -- F6: nothing to score -------------------------------------------------------------------------------------------

def test_a_truth_without_annotations_says_nothing_could_be_scored(files: dict[str, Any]) -> None:
    bare = {**files["coco"], "annotations": []}
    gt = files["tmp"] / "shapes" / "bare.json"
    gt.write_text(json.dumps(bare))
    code, d, err = _qa("--gt", str(gt), "--pred", str(files["pred"]), "--out", str(files["tmp"] / "bare_i.json"))
    assert code == 0 and d is not None and d["n_issues"] == 0
    note = (f"the ground truth has no annotations to score on its {len(bare['images'])} images, so nothing is scored "
            f"against the model's {len(files['preds'])} predictions")
    assert any(n.startswith(note) for n in d["notes"]) and note in err, d["notes"]
    # a labelled truth gets no such note
    code, d, _ = _qa("--gt", str(files["gt"]), "--pred", str(files["pred"]), "--out", str(files["tmp"] / "l.json"))
    assert code == 0 and d is not None and not any("no annotations to score" in n for n in d["notes"])
