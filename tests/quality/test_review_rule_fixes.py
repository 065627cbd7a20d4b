"""Rule-check findings applied by review: plant each mechanical rule error in a clean truth, run the checks, accept
every finding, apply, and get the clean truth back; the rest are logged not applicable; conflicts with model
findings on the same annotation."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from maslow import quality
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.errors import InvalidDatasetError, MaslowError
from maslow.quality.records import issue_records
from maslow.quality.review import Decision, apply_decisions, check_decision
from maslow.sample import shapes

MECHANICAL = {"box_out_of_bounds", "zero_area_box", "duplicate_box", "class_conflict"}


def _clean() -> Dataset:
    """A detection truth without rule findings, its attributes kept; row 0's box touches the image's right edge."""
    full = shapes(40, seed=2)
    fa = full.annotations
    keep = ~fa.iscrowd
    box = fa.box[keep].copy()
    box[0, [0, 2]] += float(full.images.width[fa.image[keep][0]]) - box[0, 2]  # moved right, to the edge
    ds = full.replace(schema=dataclasses.replace(full.schema, tasks=(Task.DETECTION,)), annotations=Annotations(
        image=fa.image[keep], label=fa.label[keep], box=box,
        attributes={k: v[keep] for k, v in fa.attributes.items()}))
    assert not len(quality.check(ds))
    return ds


def _with(ds: Dataset, rows: list[int], *, label: list[int] | None = None, box: np.ndarray | None = None,
          edit: dict[int, list[float]] | None = None) -> Dataset:
    """``ds`` with copies of ``rows`` appended (their image, attributes; ``label`` and ``box`` when given) and the
    boxes of ``edit`` changed."""
    a = ds.annotations
    assert a.box is not None
    b = a.box.copy()
    for r, v in (edit or {}).items():
        b[r] = v
    idx = np.asarray(rows, np.int64)
    return ds.replace(annotations=Annotations.sort_rows(
        image=np.r_[a.image, a.image[idx]], label=np.r_[a.label, a.label[idx] if label is None else label],
        box=np.concatenate([b, b[idx] if box is None else box]),
        attributes={k: np.concatenate([v, v[idx]]) for k, v in a.attributes.items()}))


def _canonical(ds: Dataset) -> list[tuple[int, int, tuple[float, ...]]]:
    a = ds.annotations
    assert a.box is not None
    return sorted((int(i), int(c), tuple(b)) for i, c, b in zip(a.image, a.label, a.box.tolist(), strict=True))


def _accept_all(ds: Dataset, records: list[dict[str, Any]]) -> dict[int, Decision]:
    """Every finding accepted; a class conflict with the class of its other (earlier) box."""
    names = ds.schema.names
    return {r["rank"]: Decision("accepted", label=names[int(ds.annotations.label[r["other_row"]])]
                                if r["type"] == "class_conflict" else None) for r in records}


def test_every_mechanical_rule_error_planted_and_accepted_gives_back_the_clean_truth() -> None:
    clean = _clean()
    a = clean.annotations
    assert a.box is not None
    w = float(clean.images.width[a.image[0]])
    zero = a.box[[3]].copy()
    zero[0, 2] = zero[0, 0]
    other_class = [(int(a.label[12]) + 1) % 3]
    noisy = _with(clean, [3, 7, 20, 20, 12], label=[*a.label[[3, 7, 20, 20]].tolist(), *other_class],
                  box=np.concatenate([zero, a.box[[7, 20, 20, 12]]]), edit={0: [*a.box[0, :2], w + 15, a.box[0, 3]]})
    issues = quality.check(noisy)
    assert issues.counts() == {"duplicate_box": 4, "zero_area_box": 1, "box_out_of_bounds": 1, "class_conflict": 1}
    records = issue_records(issues, noisy)
    r = apply_decisions(noisy, records, _accept_all(noisy, records))
    assert r.counts()["applied"] == len(records)
    assert _canonical(r.dataset) == _canonical(clean)  # the out-of-bounds box clipped to the edge it touched
    assert r.dataset.n_annotations == clean.n_annotations
    # the attributes of the boxes that stay are theirs (the copies, not the originals, were removed)
    for k, v in clean.annotations.attributes.items():
        assert r.dataset.annotations.attributes[k].tolist() == v.tolist()
    assert not len(quality.check(r.dataset))


def test_a_duplicate_removes_the_later_row_and_keeps_the_earlier() -> None:
    clean = _clean()
    noisy = _with(clean, [7])
    records = issue_records(quality.check(noisy), noisy)
    (f,) = records
    assert f["type"] == "duplicate_box" and f["other_row"] == 7 and f["annotation_row"] == 8
    assert f["other_id"] == 7 and "(annotation row 7 stays)" in f["suggestion"]["text"]
    r = apply_decisions(noisy, records, {f["rank"]: Decision("accepted")})
    (c,) = r.changes
    assert (c.outcome, c.action, c.annotation_row, c.new_row) == ("applied", "remove", 8, None)


def test_records_of_findings_without_a_pair_keep_their_keys() -> None:
    clean = _clean()
    noisy = _with(clean, [7], edit={0: [0.0, 0.0, 400.0, 50.0]})
    records = issue_records(quality.check(noisy), noisy)
    keys = {"rank", "image_id", "annotation_id", "type", "score", "severity", "file_name", "class", "reason",
            "suggestion", "image_row", "annotation_row"}
    by_type = {r["type"]: set(r) for r in records}
    assert by_type.pop("duplicate_box") == keys | {"other_row", "other_id"}
    assert "box_out_of_bounds" in by_type and all(v == keys for v in by_type.values())


@pytest.mark.parametrize(("x2", "suggested"), [
    pytest.param(170.0, [5.0, 10.0, 160.0, 40.0], id="partly-outside"),
    pytest.param(400.0, [5.0, 10.0, 160.0, 40.0], id="mostly-outside"),
])
def test_an_out_of_bounds_box_suggests_the_box_clipped_to_the_image(x2: float, suggested: list[float]) -> None:
    noisy = _with(_clean(), [], edit={0: [5.0, 10.0, x2, 40.0]})
    (row,) = quality.check(noisy).of_type("box_out_of_bounds").rows(names=noisy.schema.names)
    assert row["type"] == "box_out_of_bounds" and row["suggestion"]["box_xyxy"] == suggested


@pytest.mark.parametrize("box", [
    pytest.param([170.0, 10.0, 190.0, 40.0], id="wholly-outside"),
    pytest.param([159.5, 10.0, 190.0, 40.0], id="a-sliver-inside"),
])
def test_an_out_of_bounds_box_with_too_little_inside_is_not_applicable(box: list[float]) -> None:
    clean = _clean()
    noisy = _with(clean, [], edit={0: box})
    records = issue_records(quality.check(noisy).of_type("box_out_of_bounds"), noisy)
    assert records[0]["suggestion"]["box_xyxy"] is None and "too little" in records[0]["suggestion"]["text"]
    r = apply_decisions(noisy, records, _accept_all(noisy, records))
    assert r.changes[0].outcome == "not_applicable" and "coordinate convention" in r.changes[0].detail
    assert _canonical(r.dataset) == _canonical(noisy)


def test_findings_without_a_mechanical_fix_are_logged_not_applicable() -> None:
    clean = _clean()
    a = clean.annotations
    assert a.box is not None
    x, y = a.box[5, :2]
    tiny = np.array([[x, y, x + 1, y + 8], [x, y, x + 300, y + 2.5]])  # a 1-px side; a sliver far too long
    noisy = _with(clean, [5, 5], box=tiny)
    colour = noisy.annotations.attributes["colour"].copy()
    colour[2] = "plaid"
    noisy = noisy.replace(annotations=noisy.annotations.with_columns(
        attributes={**noisy.annotations.attributes, "colour": colour}))
    schema = dataclasses.replace(noisy.schema, attributes=tuple(
        dataclasses.replace(d, values=("red", "green", "blue")) if d.name == "colour" else d
        for d in noisy.schema.attributes))
    issues = quality.check(noisy, schema=schema)
    types = set(issues.counts())
    assert {"degenerate_box", "attribute_invalid"} <= types and not types & (MECHANICAL - {"box_out_of_bounds"})
    records = [f for f in issue_records(issues, noisy) if f["type"] not in MECHANICAL]
    r = apply_decisions(noisy, records, _accept_all(noisy, records))
    assert len(r.changes) == len(records) and r.counts()["not_applicable"] == len(records)
    assert all(c.action == "none" and c.detail for c in r.changes)
    assert _canonical(r.dataset) == _canonical(noisy)


def test_a_duplicate_that_carries_another_attribute_is_not_removed() -> None:
    clean = _clean()
    noisy = _with(clean, [7])
    occluded = noisy.annotations.attributes["occluded"].copy()
    occluded[8] = not bool(occluded[7])
    noisy = noisy.replace(annotations=noisy.annotations.with_columns(
        attributes={**noisy.annotations.attributes, "occluded": occluded}))
    records = issue_records(quality.check(noisy), noisy)
    r = apply_decisions(noisy, records, _accept_all(noisy, records))
    assert r.changes[0].outcome == "not_applicable" and "attribute 'occluded'" in r.changes[0].detail
    assert r.dataset.n_annotations == noisy.n_annotations


def test_a_class_conflict_needs_the_reviewers_class() -> None:
    clean = _clean()
    a = clean.annotations
    names = clean.schema.names
    mine, theirs = int(a.label[12]), (int(a.label[12]) + 1) % 3
    third = ({0, 1, 2} - {mine, theirs}).pop()
    noisy = _with(clean, [12], label=[theirs])
    records = issue_records(quality.check(noisy), noisy)
    (f,) = records
    assert f["type"] == "class_conflict" and f["other_row"] == 12 and f["class"] == names[theirs]
    k, row = f["rank"], f["annotation_row"]
    none = apply_decisions(noisy, records, {k: Decision("accepted")})
    assert none.changes[0].outcome == "not_applicable" and "choose" in none.changes[0].detail
    assert none.dataset.n_annotations == noisy.n_annotations
    # the reviewer's class is the finding's annotation's: it stays, the earlier box goes
    kept = apply_decisions(noisy, records, {k: Decision("accepted", label=names[theirs])})
    out = kept.dataset.annotations
    assert kept.changes[0].action == "confirm" and out.label[kept.changes[0].new_row] == theirs
    assert kept.dataset.n_annotations == clean.n_annotations and sorted(out.label.tolist()) == sorted(
        [*np.delete(a.label, 12).tolist(), theirs])
    # a third class: the finding's annotation relabelled, the other removed
    third_r = apply_decisions(noisy, records, {k: Decision("accepted", label=names[third])})
    c = third_r.changes[0]
    assert (c.outcome, c.action, c.annotation_row) == ("applied", "relabel", row)
    assert third_r.dataset.annotations.label[c.new_row] == third and third_r.dataset.n_annotations == clean.n_annotations
    # a label on a finding type that takes none is refused
    with pytest.raises(MaslowError, match="label applies to"):
        check_decision({"rank": 1, "type": "duplicate_box"}, Decision("accepted", label=names[0]), names)


# --- conflicts with model findings on the same annotation (hand-made findings on a tiny truth) ---


def _tiny() -> Dataset:
    """One 20 x 20 image: rows 0, 1, 2 three identical cats, row 3 a dog past the right edge, row 4 a bird with a
    zero-area box."""
    schema = LabelSchema.from_names(["cat", "dog", "bird"], task=Task.DETECTION)
    box = [[1.0, 1, 5, 5], [1, 1, 5, 5], [1, 1, 5, 5], [10, 10, 25, 15], [3, 3, 3, 8]]
    return Dataset(schema, Images(path=["a.png"], width=[20], height=[20]),
                   Annotations(image=[0] * 5, label=[0, 0, 0, 1, 2], box=box))


def _model(rank: int, type: str, row: int, cls: str, *, sug_class: str | None = None,
           box: list[float] | None = None) -> dict[str, Any]:
    return {"rank": rank, "type": type, "image_row": 0, "annotation_row": row, "file_name": "a.png", "class": cls,
            "suggestion": {"class": sug_class, "box_xyxy": box, "keypoints": None, "text": ""}}


@pytest.fixture(scope="module")
def tiny_rules() -> list[dict[str, Any]]:
    ds = _tiny()
    records = issue_records(quality.check(ds), ds)
    assert sorted((r["type"], r["annotation_row"], r.get("other_row")) for r in records) == [
        ("box_out_of_bounds", 3, None), ("duplicate_box", 1, 0), ("duplicate_box", 2, 0), ("duplicate_box", 2, 1),
        ("zero_area_box", 4, None)]
    return [{**r, "rank": 10 + i} for i, r in enumerate(records)]


def _outcomes(r: Any) -> dict[tuple[str, int | None], set[str]]:
    out: dict[tuple[str, int | None], set[str]] = {}
    for c in r.changes:
        out.setdefault((c.type, c.annotation_row), set()).add(c.outcome)
    return out


def test_all_rule_findings_of_a_triple_keep_one_box(tiny_rules: list[dict[str, Any]]) -> None:
    ds = _tiny()
    r = apply_decisions(ds, tiny_rules, {f["rank"]: Decision("accepted") for f in tiny_rules})
    assert set(r.counts().items()) >= {("applied", 5), ("conflict", 0)}
    assert _canonical(r.dataset) == [(0, 0, (1.0, 1.0, 5.0, 5.0)), (0, 1, (10.0, 10.0, 20.0, 15.0))]


def test_a_model_removal_of_the_kept_box_conflicts_with_the_duplicates(tiny_rules: list[dict[str, Any]]) -> None:
    ds = _tiny()
    findings = [_model(1, "extra", 0, "cat"), *tiny_rules]
    r = apply_decisions(ds, findings, {f["rank"]: Decision("accepted") for f in findings})
    o = _outcomes(r)
    assert o[("extra", 0)] == {"conflict"} and o[("duplicate_box", 1)] == o[("duplicate_box", 2)] == {"conflict"}
    assert r.dataset.annotations.label.tolist() == [0, 0, 0, 1]  # the three cats stay; the zero-area bird goes
    removing = next(c for c in r.changes if c.type == "extra")
    assert "kept by one and removed by" in removing.detail


def test_a_model_removal_of_a_removed_duplicate_agrees(tiny_rules: list[dict[str, Any]]) -> None:
    ds = _tiny()
    findings = [_model(1, "extra", 2, "cat"), *[f for f in tiny_rules if f["type"] == "duplicate_box"]]
    r = apply_decisions(ds, findings, {f["rank"]: Decision("accepted") for f in findings})
    assert r.counts()["applied"] == 4 and r.dataset.annotations.label.tolist() == [0, 1, 2]


def test_a_model_box_move_and_a_clip_of_one_box(tiny_rules: list[dict[str, Any]]) -> None:
    ds = _tiny()
    clip = [f for f in tiny_rules if f["type"] == "box_out_of_bounds"]
    other = apply_decisions(ds, [_model(1, "low_iou", 3, "dog", box=[9, 9, 18, 16]), *clip],
                            {1: Decision("accepted"), clip[0]["rank"]: Decision("accepted")})
    assert [c.outcome for c in other.changes] == ["conflict", "conflict"]
    same = apply_decisions(ds, [_model(1, "low_iou", 3, "dog", box=[10, 10, 20, 15]), *clip],
                           {1: Decision("accepted"), clip[0]["rank"]: Decision("accepted")})
    assert [c.outcome for c in same.changes] == ["applied", "applied"]  # they agree
    relabel = apply_decisions(ds, [_model(1, "wrong_class", 3, "dog", sug_class="cat"), *clip],
                              {1: Decision("accepted"), clip[0]["rank"]: Decision("accepted")})
    assert [c.outcome for c in relabel.changes] == ["applied", "applied"]  # different fields
    a = relabel.dataset.annotations
    assert a.label[3] == 0 and a.box is not None and a.box[3].tolist() == [10, 10, 20, 15]


def test_a_model_box_move_on_a_zero_area_box_conflicts_with_its_removal(tiny_rules: list[dict[str, Any]]) -> None:
    ds = _tiny()
    zero = [f for f in tiny_rules if f["type"] == "zero_area_box"]
    r = apply_decisions(ds, [_model(1, "low_iou", 4, "bird", box=[3, 3, 6, 8]), *zero],
                        {1: Decision("accepted"), zero[0]["rank"]: Decision("accepted")})
    assert [c.outcome for c in r.changes] == ["conflict", "conflict"] and r.dataset.n_annotations == 5


def test_rule_findings_whose_premise_is_gone_or_without_a_pair_are_not_applied(
        tiny_rules: list[dict[str, Any]]) -> None:
    ds = _tiny()
    dup = next(f for f in tiny_rules if f["type"] == "duplicate_box")
    old = {k: v for k, v in dup.items() if not k.startswith("other")}  # an ISSUES.json of an older maslow
    r = apply_decisions(ds, [old], {old["rank"]: Decision("accepted")})
    assert r.changes[0].outcome == "not_applicable" and "other_row" in r.changes[0].detail
    not_zero = {**next(f for f in tiny_rules if f["type"] == "zero_area_box"), "annotation_row": 3, "class": "dog"}
    r = apply_decisions(ds, [not_zero], {not_zero["rank"]: Decision("accepted")})
    assert r.changes[0].outcome == "not_applicable" and "not zero-area" in r.changes[0].detail


def test_a_pair_on_another_image_is_refused(tiny_rules: list[dict[str, Any]]) -> None:
    ds = _tiny()
    dup = next(f for f in tiny_rules if f["type"] == "duplicate_box")
    with pytest.raises(InvalidDatasetError, match="other_row 9 must be a row"):
        apply_decisions(ds, [{**dup, "other_row": 9}], {})
