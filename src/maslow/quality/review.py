"""Review of label-error findings: a reviewer's decisions applied to the ground truth, as a new Dataset.

A *finding* is one row of ``ISSUES.json`` as ``maslow qa`` writes it (``maslow.quality.records.issue_records``): ``rank``
(its key here, unique in the file), ``type``, ``image_row`` / ``annotation_row`` (rows of the truth the findings
were computed on), ``file_name``, ``class`` and ``suggestion`` (``class``, ``box_xyxy``, ``keypoints``, ``text``).
A *decision* says what the reviewer made of one: ``accepted``, ``rejected`` or ``skipped``, and, for
``wrong_class``, ``ambiguous``, ``missing`` and ``class_conflict`` findings, optionally the class the reviewer chose
(``label``).

What accepting a finding does (``apply_decisions``):

- ``wrong_class``: relabel the annotation (the reviewer's class, else the suggested one);
- ``extra``: remove the annotation;
- ``missing``: add an annotation with the suggested (or the reviewer's) class, box and keypoints (an oriented box:
  its suggested corners as its polygon), ``source="human"``;
- ``low_iou``: replace the box by the suggested one (keypoint findings: move the annotation's labelled keypoints to
  the model's positions; their visibility flags are kept; oriented boxes: replace the annotation's 4 corners by the
  suggested ones, ``suggestion.polygon``, and its box by their extent);
- ``ambiguous``: relabel to the reviewer's class when one is given, else nothing changes (not applicable);
- rule-check types (``maslow check``, ``qa --rules``), each only while its premise holds in the truth given:
  ``box_out_of_bounds``: replace the box by the suggested one (the box clipped to the image); ``zero_area_box``:
  remove the annotation (not one outlined by a polygon or mask: its box is fixed from the outline); ``duplicate_box``:
  remove the annotation (the later row of the pair) and keep ``other_row``, unless the two differ in a polygon, mask,
  keypoints or attribute (removing would lose it); ``class_conflict``: with the reviewer's class, keep one box with
  that class (the one that has it, else the finding's annotation, relabelled) and remove the other; without one,
  nothing. Any other rule-check finding with a suggested outline (``obb_corner_order``, ``obb_not_rectangle``: the
  corners of the rectangle) or box: replace it, as for ``low_iou``; the rest are not applicable (their fixes are
  instructions for a person, not edits);
- semantic segmentation: not applicable (the fix is a pixel edit), and so is a box move on an annotation outlined
  by a polygon or mask (the box would disagree with its outline), and a move of an oriented box's corners onto an
  annotation that is no oriented box or box (a mask, a polygon of other than 4 points). Moving corners clears the
  row's CVAT/Label Studio rotation (its corners are its polygon now).

Two accepted findings that edit one annotation are both applied when they change different fields (a relabel and
a box move) or agree (two removals); when one removes it and the other changes it, or they set a field to different
values, neither is applied and both are recorded as ``conflict``. So are a finding that keeps an annotation
(``duplicate_box``, ``class_conflict``: the kept one of the pair) and the findings that remove it, unless the object
still stays labelled through another kept duplicate. A pair finding accepted but not applied (a ``duplicate_box`` whose
boxes differ in an outline, a ``class_conflict`` without a class) still says the two boxes are one object: when the
other accepted findings would remove both, the earlier box (``other_row``) stays and the findings removing it are
recorded as ``conflict`` (the pair finding's entry says which). So accepting every finding never removes both boxes
of a pair. Added objects get ids above every id of the truth given (``extra["coco_id"]``, where the truth has one),
so an id of a removed annotation never names another object. Rejected and skipped findings change nothing. Added
keypoints take v = 2 (labelled, visible) where the model gave a position with v > 0 (a results file's v is often a
confidence), else (0, 0, 0).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.core.tables import Annotations
from maslow.core.types import is_unset
from maslow.errors import MaslowError, UnknownLabelError
from maslow.quality._review_apply import Change, _apply, _Edit, clip_to_image
from maslow.quality._review_conflicts import _drop_conflicts, _keep_one_of_each_pair, _same
from maslow.quality.records import (
    Finding,
    check_findings_match,
    parse_findings,
)

#: What a reviewer can decide about a finding.
STATUSES = ("accepted", "rejected", "skipped")
#: The outcomes in the change log: an accepted finding's, or the status of a rejected or skipped one.
OUTCOMES = ("applied", "not_applicable", "conflict", "rejected", "skipped")
#: The finding types whose decision may carry the class the reviewer chose.
LABEL_TYPES = ("wrong_class", "ambiguous", "missing", "class_conflict")
_CONSENSUS = ("wrong_class", "missing", "extra", "low_iou", "ambiguous")


class DecisionLike(Protocol):
    """What ``apply_decisions`` reads of a decision (``Decision`` and the store's records both have it)."""

    @property
    def status(self) -> str: ...

    @property
    def label(self) -> str | None: ...


@dataclass(frozen=True)
class Decision:
    """A reviewer's decision about one finding.

    Attributes:
        status: ``accepted``, ``rejected`` or ``skipped``.
        label: the class the reviewer chose (a schema class name), for ``wrong_class``, ``ambiguous``, ``missing``
            and ``class_conflict`` findings; None: the suggestion's.
        note: free text. reviewer: who decided.
    """

    status: str
    label: str | None = None
    note: str = ""
    reviewer: str = ""


@dataclass(frozen=True, eq=False)
class ReviewResult:
    """The corrected dataset and the change log (one entry per decided finding, in rank order).

    Attributes:
        dataset: the truth with the accepted findings applied (a new Dataset; the input is untouched).
        changes: one ``Change`` per finding with a decision.
        n_pending: findings without a decision.
        notes: what to know about the result besides the change log: objects added with a box only to a
            dataset of outlines (their outline is to be drawn; until then COCO's ``segm`` evaluation of the file
            written fails, pycocotools needing a ``segmentation`` per object).
    """

    dataset: Dataset
    changes: tuple[Change, ...]
    n_pending: int = 0
    notes: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """Findings per outcome (every outcome of ``OUTCOMES``, 0 included)."""
        c = Counter(ch.outcome for ch in self.changes)
        return {k: c.get(k, 0) for k in OUTCOMES}

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts(), "n_pending": self.n_pending, "n_annotations": self.dataset.n_annotations,
                "notes": list(self.notes), "changes": [c.to_dict() for c in self.changes]}


def check_decision(finding: Mapping[str, Any], decision: DecisionLike, names: Sequence[str]) -> None:
    """Refuse a decision that can't be applied to ``finding``: an unknown status, or a class (``label``) on a
    finding type that takes none, or not in ``names``.

    Raises:
        MaslowError: a bad status or a label on another type. UnknownLabelError: a class not in the schema.
    """
    rank, typ = finding.get("rank"), finding.get("type")
    if decision.status not in STATUSES:
        raise MaslowError(f"decision for finding {rank}: status must be one of {', '.join(STATUSES)}, got "
                          f"{decision.status!r}")
    if decision.label is None:
        return
    if typ not in LABEL_TYPES:
        raise MaslowError(f"decision for finding {rank} ({typ}): label applies to {', '.join(LABEL_TYPES)} "
                          f"findings, got {decision.label!r}")
    if decision.label not in names:
        raise UnknownLabelError(f"decision for finding {rank}: label must be a class of the schema "
                                f"({', '.join(names)}), got {decision.label!r}")


def review_counts(findings: Sequence[Mapping[str, Any]], decisions: Mapping[int, DecisionLike]) -> dict[str, Any]:
    """Findings per status (``pending``: no decision) overall and per type (types in order of first finding).

    Returns:
        ``{"n_findings", "n_decided", "counts": {status: n}, "per_type": {type: {status: n}}}``, every status of
        ``("pending", *STATUSES)`` present.
    """
    order = ("pending", *STATUSES)
    per_type: dict[str, Counter[str]] = {}
    for f in findings:
        d = decisions.get(int(f["rank"]))
        per_type.setdefault(str(f.get("type")), Counter())["pending" if d is None else d.status] += 1
    total: Counter[str] = Counter()
    for c in per_type.values():
        total.update(c)
    return {"n_findings": len(findings), "n_decided": len(findings) - total["pending"],
            "counts": {s: total[s] for s in order},
            "per_type": {t: {s: c[s] for s in order} for t, c in per_type.items()}}


def apply_decisions(truth: Dataset, findings: Sequence[Mapping[str, Any]],
                    decisions: Mapping[int, DecisionLike]) -> ReviewResult:
    """Apply the accepted findings' suggestions to ``truth`` (see the module docstring for what each does).

    Args:
        truth: the ground truth the findings were computed on (``maslow qa --gt``).
        findings: the ISSUES.json rows (``read_findings``, or ``maslow.quality.records.issue_records``).
        decisions: finding key (its ``rank``) -> decision; findings without one are left as they are.

    Returns:
        ReviewResult: the corrected dataset (annotations still sorted by image; an added object comes after its
        image's other annotations) and one ``Change`` per decided finding, in rank order.

    Raises:
        FormatError: a malformed finding. InvalidDatasetError: the findings are for another truth.
        MaslowError: a decision for an unknown finding, or a bad status or label (``check_decision``).

    Example:
        >>> from maslow.core.schema import LabelSchema
        >>> from maslow.core.tables import Annotations, Images
        >>> import numpy as np
        >>> ds = Dataset(LabelSchema.from_names(["cat", "dog"]), Images(path=["a.png"], width=[10], height=[10]),
        ...              Annotations(image=[0], label=[0], box=[[1.0, 1, 5, 5]]))
        >>> f = [{"rank": 1, "type": "wrong_class", "image_row": 0, "annotation_row": 0, "file_name": "a.png",
        ...       "class": "cat", "suggestion": {"class": "dog", "box_xyxy": None, "keypoints": None, "text": ""}}]
        >>> r = apply_decisions(ds, f, {1: Decision("accepted")})
        >>> r.dataset.annotations.label.tolist(), r.changes[0].outcome
        ([1], 'applied')
    """
    parsed = parse_findings(findings)
    check_findings_match(truth, parsed)
    names = truth.schema.names
    unknown = [k for k in decisions if k not in parsed]
    if unknown:
        raise MaslowError(f"decisions: finding key must be the rank of a finding, got {unknown[0]!r} "
                          f"({len(unknown)} unknown keys)")
    changes: dict[int, Change] = {}
    edits: list[_Edit] = []
    guards: list[Finding] = []  # accepted pair findings not applied: one box of their pair must still stay
    for f in parsed.values():
        d = decisions.get(f.key)
        if d is None:
            continue
        check_decision({"rank": f.key, "type": f.type}, d, names)
        row = None if f.ann < 0 else f.ann
        if d.status != "accepted":
            changes[f.key] = Change(f.key, f.type, d.status, "none", row, None, f"{d.status} by the reviewer")
            continue
        plan = _plan(truth, f, d)
        if isinstance(plan, str):
            changes[f.key] = Change(f.key, f.type, "not_applicable", "none", row, None, plan)
            if f.other >= 0 and f.ann >= 0:
                guards.append(f)
        else:
            edits.append(plan)
    edits = _drop_conflicts(edits, changes)
    edits = _keep_one_of_each_pair(edits, guards, changes)
    edits = clip_to_image(truth, edits)  # the model's box may reach past the border
    ds, new_rows = _apply(truth, edits)
    ids = ds.annotations.extra.get("coco_id") if "coco_id" in truth.annotations.extra else None
    for e in edits:
        new, detail = new_rows[id(e)], e.detail
        if e.action == "add" and ids is not None and new is not None and _is_id(ids[new]):
            detail += f" (annotation id {int(ids[new])})"
        changes[e.key] = Change(e.key, e.type, "applied", e.action, None if e.row < 0 else e.row, new, detail)
    ordered = tuple(changes[k] for k in sorted(changes))
    return ReviewResult(dataset=ds, changes=ordered, n_pending=len(parsed) - len(ordered),
                        notes=_notes(truth, edits))


def _notes(truth: Dataset, applied: list[_Edit]) -> tuple[str, ...]:
    """``ReviewResult.notes`` of the edits applied."""
    a = truth.annotations
    if a.polygon is None and a.mask is None:
        return ()
    bare = [e.key for e in applied if e.action == "add" and e.value[1] is not None and e.value[3] is None]
    if not bare:
        return ()
    keys = ", ".join(map(str, bare[:5])) + (", ..." if len(bare) > 5 else "")
    return (f"{len(bare)} added objects have a box and no outline (findings {keys}): outline them in the annotation "
            "tool; until then COCO's segm evaluation of the file written fails (pycocotools needs a segmentation per "
            "object), its bbox evaluation does not",)


def _plan(truth: Dataset, f: Finding, d: DecisionLike) -> _Edit | str:
    """The edit an accepted finding makes, or why it makes none."""
    names = truth.schema.names
    a = truth.annotations
    if truth.schema.task == Task.SEMANTIC_SEGMENTATION:
        return "semantic segmentation: the fix is a pixel edit; make it in the annotation tool"
    if f.type == "missing":
        cls = d.label if d.label is not None else f.sug_class
        if f.image < 0 or cls is None:
            return "the finding names no image or class to add"
        if cls not in names:
            raise UnknownLabelError(f"finding {f.key}: suggestion.class must be a class of the schema, got {cls!r}")
        outlined = a.polygon is not None or a.mask is not None
        where = "tag" if f.sug_box is None else f"box at xyxy {_fmt(f.sug_box)}"
        box = f.sug_box
        if f.sug_poly is not None:
            where = f"oriented box at corners {_corners(f.sug_poly)}" if len(f.sug_poly) == 4 else \
                f"polygon of {len(f.sug_poly)} points"
            box = np.r_[f.sug_poly.min(axis=0), f.sug_poly.max(axis=0)]
        note = " (box only: outline it in the annotation tool)" if outlined and box is not None and \
            f.sug_poly is None else ""
        return _Edit(f.key, f.type, "add", -1, f.image, (names.index(cls), box, f.sug_kp, f.sug_poly),
                     f"added a {cls!r} {where}{' with keypoints' if f.sug_kp is not None else ''}{note}",
                     origin=_origin(f))
    if f.ann < 0:
        return f"an image- or dataset-level finding: nothing to apply ({f.sug_text or 'no suggestion'})"
    current = names[int(a.label[f.ann])]
    if f.type in ("wrong_class", "ambiguous"):
        cls = d.label if d.label is not None else (f.sug_class if f.type == "wrong_class" else None)
        if cls is None:
            if f.type == "ambiguous":
                return "accepted without a class: nothing changed (choose the class to relabel)"
            return f"no suggested class: {f.sug_text or 'nothing to apply'}"
        if cls not in names:
            raise UnknownLabelError(f"finding {f.key}: suggestion.class must be a class of the schema, got {cls!r}")
        if cls == current:
            return _Edit(f.key, f.type, "confirm", f.ann, f.image, names.index(cls), f"kept {cls!r}")
        return _Edit(f.key, f.type, "relabel", f.ann, f.image, names.index(cls), f"relabelled {current!r} -> {cls!r}")
    if f.type == "extra":
        return _Edit(f.key, f.type, "remove", f.ann, f.image, None, f"removed the {current!r} annotation")
    if f.type in ("zero_area_box", "duplicate_box", "class_conflict"):
        return _rule_edit(truth, f, d)
    if f.type == "box_out_of_bounds":
        b = a.box[f.ann] if a.box is not None else np.full(4, np.nan)
        w, h = float(truth.images.width[f.image]), float(truth.images.height[f.image])
        if w > 0 and h > 0 and b[0] >= 0 and b[1] >= 0 and b[2] <= w and b[3] <= h:
            return f"the box {_fmt(b)} is not out of bounds in this truth (a {w:g} x {h:g} image): nothing to apply"
    if f.type == "low_iou" and f.sug_box is None and f.sug_kp is not None:
        return _move_keypoints(truth, f)
    if f.sug_poly is not None:
        return _move_polygon(truth, f)
    if f.sug_box is None:
        what = "no suggested box" if f.type == "low_iou" else "no machine-applicable fix"
        return f"{what}: {f.sug_text or 'nothing to apply'}"
    if _outlined(a, f.ann):
        return "the annotation is outlined by a polygon or mask: redraw it in the annotation tool (a new box alone " \
               "would disagree with it)"
    old = a.box[f.ann] if a.box is not None else np.full(4, np.nan)
    return _Edit(f.key, f.type, "move_box", f.ann, f.image, f.sug_box,
                 f"moved the box {_fmt(old)} -> {_fmt(f.sug_box)}", origin=_origin(f))


def _move_polygon(truth: Dataset, f: Finding) -> _Edit | str:
    """The annotation's oriented box moved to the suggested corners (its box: their extent), or why not: the
    annotation is outlined by a mask or by a polygon of other than 4 points, or already has those corners."""
    a = truth.annotations
    new = f.sug_poly
    assert new is not None
    if len(new) != 4:
        return f"the suggestion is a polygon of {len(new)} points, not an oriented box: redraw it in the annotation tool"
    if a.mask is not None and a.mask[f.ann] is not None:
        return "the annotation is outlined by a mask: redraw it in the annotation tool"
    row = None if a.polygon is None else a.polygon[f.ann]
    rings = [] if row is None else list(row)
    if rings and (len(rings) != 1 or len(rings[0]) != 8):
        return f"the annotation is outlined by a polygon of {sum(len(r) for r in rings) // 2} points in {len(rings)} " \
               "parts, not an oriented box: redraw it in the annotation tool"
    if rings:
        old = np.asarray(rings[0], np.float64).reshape(4, 2)
    else:
        b = a.box[f.ann] if a.box is not None else np.full(4, np.nan)
        old = np.array([[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]])
    if np.array_equal(old, new):
        return f"the annotation's corners are already {_corners(new)}: nothing to apply"
    return _Edit(f.key, f.type, "move_polygon", f.ann, f.image, new,
                 f"moved the oriented box {_corners(old)} -> {_corners(new)}", origin=_origin(f))


def _rule_edit(truth: Dataset, f: Finding, d: DecisionLike) -> _Edit | str:
    """The edit of an accepted ``zero_area_box``, ``duplicate_box`` or ``class_conflict`` finding (a removal, one of
    a pair kept), or why it makes none: its premise no longer holds in ``truth``, or the fix is not mechanical."""
    a, names = truth.annotations, truth.schema.names
    current = names[int(a.label[f.ann])]
    if f.type == "zero_area_box":
        b = a.box[f.ann] if a.box is not None else np.full(4, np.nan)
        if not (b[2] <= b[0] or b[3] <= b[1]):
            return f"the box {_fmt(b)} is not zero-area in this truth: nothing to apply"
        if _outlined(a, f.ann):
            return "the annotation is outlined by a polygon or mask: fix its box from the outline in the annotation tool"
        return _Edit(f.key, f.type, "remove", f.ann, f.image, None,
                     f"removed the {current!r} annotation (zero-area box {_fmt(b)})")
    if f.other < 0:
        return "the finding names no second annotation (other_row; an ISSUES.json of an older maslow): rerun maslow qa"
    other = names[int(a.label[f.other])]
    if f.type == "duplicate_box":
        if other != current:
            return f"annotation rows {f.other} and {f.ann} are of two classes ({other!r}, {current!r}): nothing to apply"
        lost = _differs(a, f.other, f.ann)
        if lost is not None:
            return f"the two annotations differ in their {lost}: removing one would lose it; merge them in the " \
                   "annotation tool"
        return _Edit(f.key, f.type, "remove", f.ann, f.image, None,
                     f"removed the later of two {current!r} boxes (annotation row {f.other} stays)", keep=f.other)
    if other == current:
        return f"annotation rows {f.other} and {f.ann} are of one class ({current!r}): nothing to apply"
    if d.label is None:
        return "accepted without a class: nothing changed (choose the object's class; the other box is removed)"
    if d.label == other:
        return _Edit(f.key, f.type, "remove", f.ann, f.image, None,
                     f"kept the {other!r} box (annotation row {f.other}), removed the {current!r} one", keep=f.other)
    done = f"kept the {current!r} box" if d.label == current else f"relabelled {current!r} -> {d.label!r}"
    return _Edit(f.key, f.type, "confirm" if d.label == current else "relabel", f.ann, f.image, names.index(d.label),
                 f"{done}, removed the {other!r} box (annotation row {f.other})", drop=f.other)


def _outlined(a: Annotations, row: int) -> bool:
    return (a.polygon is not None and a.polygon[row] is not None) or (a.mask is not None and a.mask[row] is not None)


def _differs(a: Annotations, keep: int, gone: int) -> str | None:
    """The first column in which annotation row ``gone`` holds something else than row ``keep`` (its polygon, mask,
    keypoints or an attribute): what removing it would lose besides its box; None: nothing."""
    if a.polygon is not None:
        p, q = a.polygon[keep], a.polygon[gone]
        if (p is None) != (q is None) or (p is not None and q is not None and (
                len(p) != len(q) or not all(np.array_equal(x, y) for x, y in zip(p, q, strict=True)))):
            return "polygon"
    if a.mask is not None and not _same(a.mask[keep], a.mask[gone]):
        return "mask"
    if a.keypoints is not None and not np.array_equal(a.keypoints[keep], a.keypoints[gone], equal_nan=True):
        return "keypoints"
    for name, col in a.attributes.items():
        x, y = col[keep], col[gone]
        if not (is_unset(x) and is_unset(y)) and (is_unset(x) or is_unset(y) or not _same(x, y)):
            return f"attribute {name!r}"
    return None


def _move_keypoints(truth: Dataset, f: Finding) -> _Edit | str:
    """The labelled keypoints of the annotation moved to the model's positions (visibility kept)."""
    kp = truth.annotations.keypoints
    if kp is None or f.sug_kp is None:
        return "the truth has no keypoints to move"
    new = kp[f.ann].copy()
    k = min(len(new), len(f.sug_kp))
    with np.errstate(invalid="ignore"):
        move = (new[:k, 2] > 0) & np.isfinite(f.sug_kp[:k, :2]).all(axis=1)
    if not move.any():
        return "no labelled keypoint has a position from the model"
    new[:k][move, :2] = f.sug_kp[:k][move, :2]
    return _Edit(f.key, f.type, "move_keypoints", f.ann, f.image, new,
                 f"moved {int(move.sum())} labelled keypoints to the model's positions", origin=_origin(f))


def _origin(f: Finding) -> bytes:
    """The object an add or a move of ``f`` makes: its image and the suggested geometry (an outline's corners, else
    the model's keypoints, else the box), as bytes: equal for two findings of one prediction of the model (a
    ``low_iou`` and a ``missing`` finding of an ISSUES.json of an older maslow)."""
    geom = f.sug_poly if f.sug_poly is not None else f.sug_kp[:, :2] if f.sug_kp is not None else f.sug_box
    kind = b"p" if f.sug_poly is not None else b"k" if f.sug_kp is not None else b"b"
    arr = np.zeros(0) if geom is None else np.nan_to_num(np.asarray(geom, np.float64), nan=np.inf)
    return f.image.to_bytes(8, "little", signed=True) + kind + arr.tobytes()


def _is_id(v: Any) -> bool:
    """Whether ``v`` is an integer id (an int, or a float holding one), not a writer's "give a new id"."""
    if isinstance(v, bool | np.bool_):
        return False
    if isinstance(v, int | np.integer):
        return int(v) >= 0
    return bool(isinstance(v, float | np.floating) and np.isfinite(v) and float(v) == int(v) and v >= 0)


def _fmt(b: np.ndarray) -> str:
    return "[" + ", ".join(f"{float(x):.1f}" for x in b) + "]"


def _corners(c: np.ndarray) -> str:
    return "[" + ", ".join(f"({float(x):.1f}, {float(y):.1f})" for x, y in c) + "]"
