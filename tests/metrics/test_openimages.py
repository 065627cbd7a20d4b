"""``oid_map``: the Open Images Challenge rules on hand-computed cases (group-of boxes, non-group-of objects matched
first, verified image-level labels, the hierarchy expansion of truth and labels, detections expanded or not, no
detections, classes without truth), ``read_hierarchy`` (both file forms, names, bad files), the result object and the
CLI module. The comparisons with hotcoco and a transcription of TensorFlow's evaluator are in
``test_openimages_reference.py``."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.cli._metrics_oid import eval_oid, oid_options
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError, InvalidDatasetError, MaslowError
from maslow.metrics.openimages import OidResult, oid_map, read_hierarchy

Box = Sequence[float]
CLASSES = ("animal", "dog", "cat")  # ids 1, 2, 3


def make(truth: Sequence[tuple[int, int, Box]], pred: Sequence[tuple[int, int, Box, float]], *,
         classes: Sequence[str] = CLASSES, n_images: int = 1, group: Sequence[bool] | None = None,
         pos: Sequence[list[int]] | None = None, neg: Sequence[list[int]] | None = None,
         crowd: bool = False) -> tuple[Dataset, Dataset]:
    """Truth rows (image, class, xyxy) and prediction rows (image, class, xyxy, score), each sorted by image; ``group``
    flags the group-of boxes (as ``extra["is_group_of"]``, or ``iscrowd`` with ``crowd``); ``pos``/``neg``: each
    image's verified labels as class ids (``index + 1``)."""
    schema = LabelSchema(classes=tuple(ClassDef(c, id=k + 1) for k, c in enumerate(classes)))
    extra = {}
    if pos is not None:
        extra["pos_category_ids"] = obj_array(list(pos))
    if neg is not None:
        extra["neg_category_ids"] = obj_array(list(neg))
    images = Images(path=obj_array([f"{i}.jpg" for i in range(n_images)]), width=np.full(n_images, 500),
                    height=np.full(n_images, 500), extra=extra)
    flags = np.zeros(len(truth), bool) if group is None else np.asarray(group, bool)
    t = Annotations.sort_rows(image=np.asarray([r[0] for r in truth], np.int64), label=np.asarray([r[1] for r in truth], np.int64),
                    box=np.asarray([r[2] for r in truth], np.float64).reshape(-1, 4),
                    iscrowd=flags if crowd else None, extra={} if crowd else {"is_group_of": obj_array(flags.tolist())})
    p = Annotations.sort_rows(image=np.asarray([r[0] for r in pred], np.int64), label=np.asarray([r[1] for r in pred], np.int64),
                    box=np.asarray([r[2] for r in pred], np.float64).reshape(-1, 4),
                    score=np.asarray([r[3] for r in pred], np.float64))
    ds = Dataset(schema=schema, images=images, annotations=t)
    return ds, ds.replace(annotations=p)


def status(r: OidResult) -> list[str]:
    return [str(v) for v in r.status_names(r.pred_status).tolist()]


TREE = {1: (0,), 2: (0,)}  # dog and cat are animals


# -- group-of boxes -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("crowd", [False, True], ids=["is_group_of", "iscrowd"])
def test_group_of_box_gives_one_true_positive(crowd: bool) -> None:
    truth, pred = make([(0, 1, [0, 0, 100, 100])],
                       [(0, 1, [10, 10, 30, 30], 0.7), (0, 1, [40, 40, 60, 60], 0.9), (0, 1, [70, 70, 90, 90], 0.8),
                        (0, 1, [90, 90, 140, 140], 0.6)],  # IoA 0.04: outside
                       group=[True], crowd=crowd)
    r = oid_map(truth, pred)
    assert status(r) == ["ignored", "tp", "ignored", "fp"]  # the highest score in the box is its TP
    assert (r.n_pos_per_class[1], r.n_group_of_per_class[1], r.n_tp_per_class[1], r.n_fp_per_class[1],
            r.n_ignored_pred_per_class[1]) == (1, 1, 1, 1, 2)
    assert r.ap_per_class[1] == 1.0 and r.scores[1].tolist() == [0.9, 0.6]
    assert r.truth_status.tolist() == [OidResult.TP]


def test_group_of_box_without_detection_is_a_miss() -> None:
    truth, pred = make([(0, 1, [0, 0, 100, 100]), (0, 1, [200, 200, 220, 220])],
                       [(0, 1, [200, 200, 220, 220], 0.9)], group=[True, False])
    r = oid_map(truth, pred)
    assert r.n_pos_per_class[1] == 2 and r.ap_per_class[1] == 0.5
    assert r.truth_status.tolist() == [OidResult.FN, OidResult.TP]


def test_non_group_objects_are_matched_first() -> None:
    """A detection on an object inside a group-of box is the object's TP (IoU stage first); its duplicate falls
    into the group-of box (ignored, then the box's TP as the best detection left there)."""
    truth, pred = make([(0, 1, [0, 0, 100, 100]), (0, 1, [10, 10, 30, 30])],
                       [(0, 1, [10, 10, 30, 30], 0.9), (0, 1, [10, 10, 30, 31], 0.8), (0, 1, [50, 50, 70, 70], 0.7)],
                       group=[True, False])
    r = oid_map(truth, pred)
    assert status(r) == ["tp", "tp", "ignored"]
    assert r.ap_per_class[1] == 1.0 and r.n_pos_per_class[1] == 2


def test_expanded_group_of_boxes_keep_their_row_order() -> None:
    """A detection entirely inside two 'animal' group-of boxes (row 0: a dog box's copy, row 1: an animal box) goes
    to the first in row order, as TF's expansion writes the copy right after its row (hotcoco puts copies last: it
    would credit row 1 and then absorb the second detection, AP 0.5)."""
    truth, pred = make([(0, 1, [0, 0, 100, 100]), (0, 0, [0, 0, 200, 200])],
                       [(0, 0, [10, 10, 20, 20], 0.9), (0, 0, [150, 150, 160, 160], 0.8)], group=[True, True])
    r = oid_map(truth, pred, hierarchy=TREE)
    assert r.n_pos_per_class[0] == 2 and r.n_tp_per_class[0] == 2 and r.ap_per_class[0] == 1.0


def test_group_of_box_with_score_zero_is_not_credited() -> None:
    truth, pred = make([(0, 1, [0, 0, 100, 100])], [(0, 1, [10, 10, 30, 30], 0.0)], group=[True])
    r = oid_map(truth, pred)
    assert status(r) == ["ignored"] and r.ap_per_class[1] == 0.0 and r.truth_status.tolist() == [OidResult.FN]


def test_best_object_taken_or_not() -> None:
    """TF's stage 1: each detection's best object even when taken (a duplicate), not COCO's best free object."""
    truth, pred = make([(0, 1, [0, 0, 10, 10]), (0, 1, [0, 2, 10, 12])],
                       [(0, 1, [0, 0, 10, 10], 0.9), (0, 1, [0, 0.5, 10, 10.5], 0.8)])
    r = oid_map(truth, pred)  # the second: IoU 0.90 with the taken first object, 0.74 with the free one
    assert status(r) == ["tp", "fp"] and r.ap_per_class[1] == 0.5  # COCO's matching: both TPs, AP 1


# -- image-level labels -------------------------------------------------------------------------------------------

def test_unverified_class_is_not_evaluated() -> None:
    truth, pred = make([(0, 1, [0, 0, 10, 10])],
                       [(0, 1, [0, 0, 10, 10], 0.9), (0, 2, [50, 50, 60, 60], 0.95), (1, 1, [0, 0, 5, 5], 0.99)],
                       n_images=2, pos=[[], []], neg=[[], []])
    r = oid_map(truth, pred)  # cat is not verified on image 0, dog not on image 1: both left out
    assert status(r) == ["tp", "skipped", "skipped"] and r.n_unverified == 2
    assert r.ap_per_class[1] == 1.0 and r.image_labels
    plain = oid_map(truth.replace(images=dataclasses.replace(truth.images, extra={})), pred)
    assert not plain.image_labels and status(plain) == ["tp", "fp", "fp"] and plain.ap_per_class[1] == 0.5


def test_negative_label_makes_every_detection_a_false_positive() -> None:
    truth, pred = make([(0, 1, [0, 0, 10, 10])], [(0, 1, [0, 0, 10, 10], 0.5), (1, 1, [0, 0, 10, 10], 0.9),
                                                  (1, 1, [20, 20, 30, 30], 0.8)],
                       n_images=2, pos=[[], []], neg=[[], [2]])
    r = oid_map(truth, pred)
    assert status(r) == ["tp", "fp", "fp"] and r.ap_per_class[1] == pytest.approx(1 / 3)


def test_hierarchy_expands_truth_and_labels() -> None:
    """A dog box is an animal box; a positive 'dog' label verifies 'animal' (up), a negative 'animal' label
    verifies 'dog' and 'cat' (down); detections are not expanded."""
    truth, pred = make([(0, 1, [0, 0, 10, 10])],
                       [(0, 0, [0, 0, 10, 10], 0.9), (0, 1, [0, 0, 10, 10], 0.8), (1, 0, [0, 0, 9, 9], 0.7),
                        (2, 2, [0, 0, 10, 10], 0.6), (2, 0, [0, 0, 10, 10], 0.5)],
                       n_images=3, pos=[[], [2], []], neg=[[], [], [1]])
    flat = oid_map(truth, pred)
    assert status(flat) == ["skipped", "tp", "skipped", "skipped", "fp"] and flat.n_pos_per_class.tolist() == [0, 1, 0]
    r = oid_map(truth, pred, hierarchy=TREE)
    assert status(r) == ["tp", "tp", "fp", "fp", "fp"]
    assert r.n_pos_per_class.tolist() == [1, 1, 0] and r.precision[0].tolist() == [1.0, 0.5, 1 / 3]
    assert r.ap_per_class[0] == 1.0 and math.isnan(r.ap_per_class[2]) and r.truth_status.tolist() == [OidResult.TP]
    assert r.map == 1.0  # cat has no object: left out of the mean (its two detections are FPs all the same)


def test_expand_pred_counts_detections_for_ancestors() -> None:
    truth, pred = make([(0, 1, [0, 0, 10, 10]), (0, 2, [50, 50, 60, 60])], [(0, 1, [0, 0, 10, 10], 0.9)])
    assert oid_map(truth, pred, hierarchy=TREE).ap_per_class.tolist()[:2] == [0.0, 1.0]
    r = oid_map(truth, pred, hierarchy=TREE, expand_pred=True)
    assert r.ap_per_class.tolist() == [0.5, 1.0, 0.0] and r.n_pred_per_class.tolist() == [1, 1, 0]
    assert status(r) == ["tp"]  # the row's decision for its own class


# -- edge cases ---------------------------------------------------------------------------------------------------

def test_no_detections_and_classes_without_truth() -> None:
    truth, pred = make([(0, 1, [0, 0, 10, 10])], [])
    r = oid_map(truth, pred)
    assert r.ap_per_class[1] == 0.0 and np.isnan(r.ap_per_class[[0, 2]]).all() and r.map == 0.0
    empty, nothing = make([], [(0, 1, [0, 0, 10, 10], 0.9)])
    r = oid_map(empty, nothing)
    assert math.isnan(r.map) and r.to_dict()["map"] is None and r.n_fp_per_class[1] == 1


def test_score_ties_by_image_then_row() -> None:
    truth, pred = make([(1, 1, [0, 0, 10, 10])], [(1, 1, [0, 0, 10, 10], 0.5), (0, 1, [0, 0, 10, 10], 0.5)],
                       n_images=2)
    assert oid_map(truth, pred).ap_per_class[1] == 0.5  # image 0's FP comes first


def test_invalid_and_unknown_detections_are_skipped() -> None:
    truth, pred = make([(0, 1, [0, 0, 10, 10])], [(0, 1, [5, 5, 5, 9], 0.9), (0, 1, [0, 0, 10, 10], 0.8)])
    r = oid_map(truth, pred)
    assert status(r) == ["skipped", "tp"] and r.n_invalid == 1 and r.ap_per_class[1] == 1.0
    other = pred.replace(schema=LabelSchema(classes=(ClassDef("x"), ClassDef("dog"))),
                         annotations=pred.annotations.with_columns(label=np.asarray([1, 0])))
    r = oid_map(truth, other)  # the row of class "x" is skipped (not a class of the truth), "dog" is matched by name
    assert r.n_skipped == 1 and status(r) == ["skipped", "skipped"] and r.n_invalid == 1


def test_at_most_10000_per_image_and_class() -> None:
    far = [(0, 1, [100, 100, 101, 101], 0.9)] * 10_000
    truth, pred = make([(0, 1, [0, 0, 10, 10])], [*far, (0, 1, [0, 0, 10, 10], 0.1)])
    r = oid_map(truth, pred)
    assert r.n_capped == 1 and r.ap_per_class[1] == 0.0 and status(r)[-1] == "skipped"


def test_errors() -> None:
    truth, pred = make([(0, 1, [0, 0, 10, 10])], [(0, 1, [0, 0, 10, 10], 0.9)])
    with pytest.raises(InvalidDatasetError, match="score"):
        oid_map(truth, pred.replace(annotations=pred.annotations.with_columns(score=None)))
    with pytest.raises(ValueError, match="iou_threshold"):
        oid_map(truth, pred, iou_threshold=1.5)
    with pytest.raises(ValueError, match=r"hierarchy\[1\]"):
        oid_map(truth, pred, hierarchy={1: (1,)})
    bad = truth.replace(annotations=truth.annotations.with_columns(extra={"is_group_of": obj_array(["maybe"])}))
    with pytest.raises(InvalidDatasetError, match=r"is_group_of.*row 0"):
        oid_map(bad, pred)
    t2, p2 = make([(0, 1, [0, 0, 10, 10])], [], pos=["dog"])  # type: ignore[list-item]
    with pytest.raises(InvalidDatasetError, match=r"pos_category_ids.*row 0"):
        oid_map(t2, p2)


def test_inputs_unchanged_and_result_frozen() -> None:
    truth, pred = make([(0, 1, [0, 0, 100, 100])], [(0, 1, [10, 10, 30, 30], 0.7)], group=[True])
    box = pred.annotations.box
    assert box is not None
    before = box.copy()
    r = oid_map(truth, pred)
    assert np.array_equal(box, before)
    with pytest.raises(ValueError):
        r.ap_per_class[0] = 1.0
    d = json.loads(json.dumps(r.to_dict()))
    assert d["protocol"] == "openimages" and d["per_class"][1] == {
        "class": "dog", "ap": 1.0, "n_pos": 1, "n_group_of": 1, "n_pred": 1, "n_tp": 1, "n_fp": 0, "n_ignored_pred": 0}
    assert list(r.to_pandas()["class"]) == list(CLASSES)


# -- read_hierarchy -------------------------------------------------------------------------------------------

def write(tmp_path: Path, doc: Any, name: str = "h.json") -> Path:
    f = tmp_path / name
    f.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return f


SCHEMA = LabelSchema(classes=(ClassDef("Animal"), ClassDef("Dog"), ClassDef("Cat"), ClassDef("Puppy")))


def test_read_open_images_tree_with_names_and_intermediate_nodes(tmp_path: Path) -> None:
    doc = {"LabelName": "/m/0bl9f", "Subcategory": [
        {"LabelName": "/m/animal", "Subcategory": [
            {"LabelName": "/m/pet", "Subcategory": [  # no class: an intermediate node
                {"LabelName": "/m/dog", "Subcategory": [{"LabelName": "/m/puppy"}]}, {"LabelName": "/m/cat"}]},
            {"LabelName": "/m/cat", "Subcategory": [{"LabelName": "/m/puppy"}]}]}]}  # a second parent
    names = {"/m/animal": "Animal", "/m/dog": "Dog", "/m/cat": "Cat", "/m/puppy": "Puppy"}
    h = read_hierarchy(write(tmp_path, doc), SCHEMA, names)
    assert dict(h) == {0: (), 1: (0,), 2: (0,), 3: (0, 1, 2)}
    with pytest.raises(TypeError):
        h[0] = (1,)  # type: ignore[index]


def test_read_flat_hierarchy(tmp_path: Path) -> None:
    h = read_hierarchy(write(tmp_path, {"Puppy": ["Dog", "Cat"], "Dog": "Animal", "Cat": "Animal"}), SCHEMA)
    assert dict(h) == {0: (), 1: (0,), 2: (0,), 3: (0, 1, 2)}


@pytest.mark.parametrize(("doc", "match"), [
    pytest.param('{"Dog": "Animal",', r"h\.json: must be JSON: .* line 1", id="malformed-json"),
    pytest.param({"Dog": "Animal", "Animal": "Puppy", "Puppy": "Dog"}, r"h\.json, field .*cycle", id="cycle"),
    pytest.param({"Dog": "Dog"}, r"cycle Dog -> Dog", id="self-parent"),
    pytest.param({"Dog": "Animal", "Wolf": "Animal"}, r"h\.json, field 'Wolf': label 'Wolf' must be a class",
                 id="unknown-label"),
    pytest.param({"LabelName": "/m/0bl9f", "Subcategory": [{"LabelName": "Animal", "Subcategory": [
        {"LabelName": "Dog"}, {"LabelName": "Wolf"}]}]}, r"field 'Subcategory\[0\]\.Subcategory\[1\]\.LabelName'",
        id="unknown-label-in-tree"),
    pytest.param({"LabelName": "/m/0bl9f", "Subcategory": [{"Name": "Dog"}]},
                 r"field 'Subcategory\[0\]\.LabelName': LabelName must be", id="no-label-name"),
    pytest.param({"LabelName": "/m/0bl9f", "Subcategory": {"LabelName": "Dog"}}, r"field 'Subcategory'",
                 id="subcategory-not-a-list"),
    pytest.param({"Dog": 3}, r"field 'Dog': a parent must be", id="bad-parent"),
    pytest.param(["Dog"], r"got a list", id="not-an-object"),
])
def test_read_hierarchy_errors(tmp_path: Path, doc: Any, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        read_hierarchy(write(tmp_path, doc), SCHEMA)


# -- the CLI module -----------------------------------------------------------------------------------------------

def test_cli_options() -> None:
    oid_options("openimages", "bbox", hierarchy=None, class_descriptions=None, expand_pred=False, coco_only=[])
    with pytest.raises(MaslowError, match="--hierarchy goes with --protocol openimages"):
        oid_options("voc", "bbox", hierarchy=Path("h.json"), class_descriptions=None, expand_pred=False, coco_only=[])
    with pytest.raises(MaslowError, match="--iou-type bbox"):
        oid_options("openimages", "segm", hierarchy=None, class_descriptions=None, expand_pred=False, coco_only=[])
    with pytest.raises(MaslowError, match="--errors goes with --protocol coco"):
        oid_options("openimages", "bbox", hierarchy=None, class_descriptions=None, expand_pred=False,
                    coco_only=["--errors"])
    with pytest.raises(MaslowError, match="give --hierarchy too"):
        oid_options("openimages", "bbox", hierarchy=None, class_descriptions=Path("c.csv"), expand_pred=False,
                    coco_only=[])


def test_cli_eval_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth, pred = make([(0, 1, [0, 0, 10, 10])], [(0, 0, [0, 0, 10, 10], 0.9), (0, 1, [0, 0, 10, 10], 0.8)])
    h = write(tmp_path, {"LabelName": "/m/0bl9f", "Subcategory": [{"LabelName": "/m/a", "Subcategory": [
        {"LabelName": "/m/d"}, {"LabelName": "/m/c"}]}]})
    csv = tmp_path / "classes.csv"
    csv.write_text("LabelName,DisplayName\n/m/a,animal\n/m/d,dog\n/m/c,cat\n")
    out = tmp_path / "r.json"
    notes: list[str] = []
    eval_oid(truth, pred, hierarchy=h, class_descriptions=csv, iou_threshold=0.5, expand_pred=False,
             located=_Nothing(), json_out=out, to_stdout=False, notes=notes,
             sources={"gt": ("gt.json", "coco", Report()), "pred": ("dt.json", "coco-results", Report())})
    doc = json.loads(out.read_text())
    assert doc["protocol"] == "openimages" and doc["openimages"]["map"] == 1.0 and doc["openimages"]["hierarchy"]
    assert "every class is evaluated on every image" in doc["notes"][0]
    assert "Open Images evaluation" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("/m/a\n")
    with pytest.raises(FormatError, match=r"bad\.csv.*line 1"):
        eval_oid(truth, pred, hierarchy=h, class_descriptions=bad, iou_threshold=0.5, expand_pred=False,
                 located=_Nothing(), json_out=None, to_stdout=False, notes=[],
                 sources={"gt": ("gt.json", "coco", Report()), "pred": ("dt.json", "coco-results", Report())})


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
