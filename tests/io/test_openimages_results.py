"""Open Images detections: the CSV form (``ImageID,LabelName,Score,XMin,XMax,YMin,YMax``, as the TF Object Detection
API's ``oid_challenge_evaluation.py`` and hotcoco's ``load_res_oid`` read it) and the Kaggle submission form
(``ImageId,PredictionString`` of ``LabelName Score XMin YMin XMax YMax`` groups), read onto the truth's images."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.core.dataset import Dataset
from maslow.errors import FormatError
from maslow.io import openimages as oi
from maslow.io import openimages_results as res
from tests.io.test_openimages import BOXES, DESCRIPTIONS, LABELS, SIZES, assert_same

DATA = Path(__file__).parents[1] / "data" / "openimages"
PRED = DATA / "predictions.csv"
KAGGLE = DATA / "submission.csv"


def _truth(tmp_path: Path | None = None) -> Dataset:
    folder = None
    if tmp_path is not None:
        folder = tmp_path / "images"
        folder.mkdir()
        for image_id, size in SIZES.items():
            Image.new("L", size).save(folder / f"{image_id}.jpg")
    return oi.parse(BOXES, images_root=folder, class_descriptions=DESCRIPTIONS, image_labels=LABELS)[0]


@pytest.mark.parametrize("sized", [False, True], ids=["fractions", "pixels"])
def test_csv_and_kaggle_forms_read_the_same_detections(tmp_path: Path, sized: bool) -> None:
    truth = _truth(tmp_path if sized else None)
    a, ra = res.parse(PRED, like=truth)
    b, rb = res.parse(KAGGLE, like=truth)
    assert len(ra) == 0 and len(rb) == 0
    assert a.images is truth.images and a.schema is truth.schema and a.root == truth.root
    assert a.annotations.image.tolist() == [0, 1, 1, 2] and a.annotations.label.tolist() == [0, 1, 2, 2]
    assert a.annotations.score.tolist() == [0.97, 0.8, 0.35, 0.9]
    assert a.annotations.source.tolist() == ["model"] * 4
    np.testing.assert_array_equal(a.annotations.box, b.annotations.box)  # x y x y in Kaggle's strings
    w, h = (97, 61) if sized else (1, 1)
    np.testing.assert_array_equal(a.annotations.box[0], [0.03 * w, 0.08 * h, 0.95 * w, 0.8 * h])


@pytest.mark.parametrize("sized", [False, True], ids=["fractions", "pixels"])
@pytest.mark.parametrize("src", [PRED, KAGGLE], ids=["csv", "kaggle"])
def test_round_trip_writes_the_same_bytes(tmp_path: Path, src: Path, sized: bool) -> None:
    truth = _truth(tmp_path if sized else None)
    pred, _ = res.parse(src, like=truth)
    rep = res.write(pred, tmp_path / "out.csv")  # the layout read
    assert rep.lossless and rep.n_annotations == 4, rep.to_dict()
    assert (tmp_path / "out.csv").read_bytes() == src.read_bytes()
    assert_same(res.parse(tmp_path / "out.csv", like=truth)[0], pred)


def test_layouts_convert_into_each_other(tmp_path: Path) -> None:
    truth = _truth()
    pred, _ = res.parse(PRED, like=truth)
    res.write(pred, tmp_path / "sub.csv", layout="kaggle")
    assert (tmp_path / "sub.csv").read_text() == KAGGLE.read_text()  # every image a row, the empty one too
    with pytest.raises(FormatError, match="layout must be one of csv, kaggle"):
        res.write(pred, tmp_path / "x.csv", layout="json")


def test_without_a_truth_images_and_classes_come_from_the_file(tmp_path: Path) -> None:
    pred, report = res.parse(KAGGLE, class_descriptions=DESCRIPTIONS)
    assert pred.images.path.tolist() == [f"{i}.jpg" for i in SIZES]  # every row of the submission
    assert pred.images.extra["openimages_unsized"].all() and len(report) == 0
    assert pred.schema.names == ("Airplane", "Person", "Bicycle", "Car")
    assert pred.annotations.label.tolist() == [0, 1, 2, 2]
    res.write(pred, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == KAGGLE.read_bytes()


def test_class_names_as_hotcoco_writes_them_match_too(tmp_path: Path) -> None:
    truth = _truth()
    src = tmp_path / "named.csv"
    src.write_text("ImageID,LabelName,Confidence,XMin,XMax,YMin,YMax\n0001eeaf4aed83f9,Airplane,0.5,0.1,0.2,0.3,0.4\n")
    pred, report = res.parse(src, like=truth)
    assert len(report) == 0 and pred.annotations.label.tolist() == [0] and pred.annotations.score.tolist() == [0.5]


def test_unknown_images_and_classes_are_reported_with_counts_and_not_imported(tmp_path: Path) -> None:
    src = tmp_path / "pred.csv"
    src.write_text("ImageID,LabelName,Score,XMin,XMax,YMin,YMax\n"
                   "0001eeaf4aed83f9,/m/0cmf2,0.9,0.1,0.2,0.3,0.4\n"
                   "ffffffffffffffff,/m/0cmf2,0.9,0.1,0.2,0.3,0.4\n"
                   "0001eeaf4aed83f9,/m/xxx,0.9,0.1,0.2,0.3,0.4\n"
                   "0001eeaf4aed83f9,/m/xxx,0.8,0.1,0.2,0.3,0.4\n")
    pred, report = res.parse(src, like=_truth())
    (image,) = report.of_type("openimages_unknown_image")
    (cls,) = report.of_type("openimages_unknown_class")
    assert (image.record, image.field, image.severity) == ("line 3", "ImageID", "error") and "1 detections" in image.message
    assert (cls.record, cls.field) == ("line 4", "LabelName") and "2 detections" in cls.message
    assert pred.n_annotations == 1


@pytest.mark.parametrize(("text", "match"), [
    pytest.param("ImageId,PredictionString\na,/m/01 0.5 0.1 0.2 0.3\n", r"line 2, field 'PredictionString'.*got 5",
                 id="not-groups-of-6"),
    pytest.param("ImageId,PredictionString\na,\nb,/m/01 0.5 0.1 0.2 0.3 0.4 /m/01 high 0.1 0.2 0.3 0.4\n",
                 r"line 3, field 'Score': Score must be a number, got 'high'", id="kaggle-score"),
    pytest.param("ImageID,LabelName,XMin,XMax,YMin,YMax\na,/m/01,0.1,0.2,0.3,0.4\n", r"field 'Confidence'",
                 id="no-score"),
])
def test_bad_detections_raise_naming_the_line_and_field(tmp_path: Path, text: str, match: str) -> None:
    src = tmp_path / "pred.csv"
    src.write_text(text)
    with pytest.raises(FormatError, match=match):
        res.parse(src)


def test_scoreless_and_boxless_annotations_are_counted_not_written(tmp_path: Path) -> None:
    truth = _truth()
    rep = res.write(truth, tmp_path / "out.csv")  # the truth has no scores
    assert rep.n_annotations == 0 and rep.lost["annotations"] == truth.n_annotations
    assert "5 without a score" in rep.notes[0]


def test_hotcoco_reads_the_same_detections() -> None:
    hotcoco = pytest.importorskip("hotcoco")
    truth = _truth()
    pred, _ = res.parse(PRED, like=truth)
    gt = hotcoco.COCO.from_oid(str(BOXES), class_descriptions=str(DESCRIPTIONS))
    dt = gt.load_res_oid(str(PRED), class_descriptions=str(DESCRIPTIONS))
    names = {c["id"]: c["name"] for c in gt.dataset["categories"]}
    ref = sorted((names[r["category_id"]], r["score"], *np.round(r["bbox"], 12)) for r in dt.dataset["annotations"])
    box = pred.annotations.box
    ours = sorted((pred.schema.names[k], s, *np.round([*b[:2], *(b[2:] - b[:2])], 12)) for k, s, b in
                  zip(pred.annotations.label, pred.annotations.score, box, strict=True))
    assert ours == ref


def test_doctests() -> None:
    failures, tried = doctest.testmod(res)
    assert tried and not failures


@pytest.mark.parametrize("layout", ["csv", "kaggle"])
def test_a_box_no_fraction_gives_back_is_counted_once(tmp_path: Path, layout: str) -> None:
    from maslow.io._openimages_format import fmt_fractions

    truth = _truth(tmp_path)
    pred, _ = res.parse(PRED, like=truth)
    box = pred.annotations.box.copy()
    assert pred.annotations.image[0] == 0 and (truth.images.width[0], truth.images.height[0]) == (97, 61)
    box[0] = [3.2578008046300426, 7.861021599611075, 59.69235581368163, 30.813747795482577]  # pixels of image 0
    scale = np.array([97.0, 61.0, 97.0, 61.0])
    assert not any(fmt_fractions(box[0, j:j + 1], scale[j:j + 1])[1][0] for j in range(4))  # all four inexact
    pred = pred.replace(annotations=pred.annotations.with_columns(box=box))
    rep = res.write(pred, tmp_path / "out.csv", layout=layout)
    assert rep.lost["box"] == 1 and rep.n_annotations == 4, rep.to_dict()
    assert any("1 boxes have no fraction" in n for n in rep.notes), rep.notes


@pytest.mark.parametrize("layout", ["csv", "kaggle"])
@pytest.mark.parametrize("with_truth", [True, False], ids=["like", "alone"])
def test_inverted_detections_are_reported_and_not_imported(tmp_path: Path, layout: str, with_truth: bool) -> None:
    # TF's challenge evaluator drops boxes with XMin > XMax or YMin > YMax (_remove_invalid_boxes): swapping them
    # (as the truth reader repairs a hand-made box) would score a box the evaluator never sees
    src = tmp_path / "pred.csv"
    if layout == "csv":
        src.write_text("ImageID,LabelName,Score,XMin,XMax,YMin,YMax\n"
                       "0001eeaf4aed83f9,/m/0cmf2,0.9,0.1,0.5,0.6,0.2\n"  # YMin > YMax
                       "0001eeaf4aed83f9,/m/0cmf2,0.8,0.1,0.5,0.2,0.6\n"
                       "0001eeaf4aed83f9,/m/0cmf2,0.7,0.5,0.1,0.6,0.2\n")  # both
        where = ("line 2", "YMin")
    else:
        src.write_text("ImageId,PredictionString\n0001eeaf4aed83f9,/m/0cmf2 0.8 0.1 0.2 0.5 0.6\n"
                       "000595fe6fee6369,/m/0cmf2 0.9 0.5 0.2 0.1 0.6\n")  # XMin > XMax
        where = ("line 3", "XMin")
    n = 3 if layout == "csv" else 2
    pred, report = res.parse(src, like=_truth()) if with_truth else res.parse(src, class_descriptions=DESCRIPTIONS)
    (issue,) = report.of_type("openimages_inverted_box")
    assert (issue.record, issue.field, issue.severity) == (*where, "error"), issue
    assert f"not imported: {n - 1 if layout == 'csv' else 1} of {n} detections" in issue.message, issue.message
    assert pred.n_annotations == 1 and pred.annotations.score.tolist() == [0.8]
    np.testing.assert_allclose(pred.annotations.box, [[0.1, 0.2, 0.5, 0.6]])
    with pytest.raises(FormatError, match=r"XMin > XMax or YMin > YMax"):
        res.parse(src, strict=True)


def test_inverted_detection_scores_nothing_as_in_tfs_evaluator(tmp_path: Path) -> None:
    from maslow.metrics.openimages import oid_map

    truth = _truth()
    t = truth.annotations
    k = truth.schema.names.index("Airplane")
    (row,) = np.flatnonzero(t.label == k)
    w, h = truth.images.width[t.image[row]], truth.images.height[t.image[row]]
    x0, y0, x1, y1 = (float(x) for x in t.box[row] / [w, h, w, h])
    src = tmp_path / "pred.csv"  # the airplane's own box, inverted, scored above a miss elsewhere
    src.write_text("ImageID,LabelName,Score,XMin,XMax,YMin,YMax\n"
                   f"0001eeaf4aed83f9,/m/0cmf2,0.9,{x1!r},{x0!r},{y1!r},{y0!r}\n"
                   "0001eeaf4aed83f9,/m/0cmf2,0.5,0.9,0.95,0.9,0.95\n")
    pred, _ = res.parse(src, like=truth)
    r = oid_map(truth, pred)
    # TF: the inverted box is removed, the other one is a false positive: Airplane AP 0 (swapped, it was a TP: 1.0)
    assert r.ap_per_class[k] == 0.0 and r.n_tp_per_class[k] == 0 and r.n_fp_per_class[k] == 1
