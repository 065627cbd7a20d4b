"""Open Images detection evaluation: the Open Images Challenge metric (TensorFlow Object Detection API's
``OpenImagesDetectionChallengeEvaluator``), with group-of boxes, verified image-level labels and a class hierarchy.

The protocol is VOC's at IoU 0.5 with all-point AP per class and the mean over classes (``voc_map``), plus:

- *hierarchy*: a truth box counts for its class and every ancestor of it (the challenge's
  ``oid_hierarchical_labels_expansion.py`` writes those copies); a positive image-level label verifies its class
  and the ancestors, a negative one its class and the descendants. Detections are not expanded (the challenge's
  rule: a model must name each level it wants credit for); ``expand_pred=True`` expands them too (hotcoco's
  ``expand_dt``).
- *verified classes*: with image-level labels, a detection is evaluated only where its class is verified on its
  image (a box of the class, a positive or a negative label, after the expansion); the others are not evaluated
  (``n_unverified``), so a detection of a class verified absent is always a false positive.
- *group-of boxes* (``annotations.iscrowd``, or ``annotations.extra["is_group_of"]``): each counts as one object.
  Per image and class, every detection is first given its best non-group-of object (the largest IoU, taken or not,
  the first in row order on ties): at ``IoU >= iou_threshold`` the first detection on an object is a true positive,
  the later ones false positives (duplicates). Each detection that is not a true positive is then given its best
  group-of box by intersection over the *detection's* area (IoA): at ``IoA >= iou_threshold`` it is ignored, except
  the highest-scoring one in each box, which is the box's true positive. A box with no detection inside is a miss.
- *AP*: per class over all images, entries by score: precision ``tp / (tp + fp)``, recall ``tp / n_pos`` (``n_pos``:
  the objects plus the group-of boxes), the area under the precision envelope (TF's ``compute_average_precision``,
  the VOC2010 rule); no object: nan, left out of the mean (``np.nanmean``); objects but no detection: 0.

Conventions decided here (TF leaves them open, or hotcoco's ``oid_style`` departs from TF; tested against both):

- *equal scores*: TF sorts with ``np.argsort(scores)[::-1]`` (an unstable sort, reversed): the order of equal scores
  is arbitrary. Here: by image (sorted ``images.extra["coco_id"]`` when present, else row order), then row order,
  as hotcoco; a group-of box's true positive sits at its highest-scoring detection (TF appends it after the image's
  other entries, with that score). With ``expand_pred``, a detection of a class comes before the copies of its
  descendants' detections (hotcoco's order: it appends the copies). Truth copies keep their row's place (TF's
  expansion writes them right after the row; hotcoco after every box, which changes which of two group-of boxes
  that both hold a detection entirely is "the first").
- *stage 1* is TF's (the best object, taken or not; a duplicate then may fall into a group-of box). hotcoco matches
  COCO's way (the best *free* object), which differs when one detection overlaps two objects at the threshold.
- *invalid detections*: TF drops boxes with ``x2 <= x1`` or ``y2 <= y1`` (``_remove_invalid_boxes``); so does this
  (``n_invalid``), hotcoco evaluates them; ``read_openimages_results`` does not import detections with inverted
  corners (``XMin > XMax``), which TF drops the same way (a Dataset's boxes have ``x2 >= x1``). At most 10,000 detections per image and class are kept, the best by
  score (TF's ``nms_max_output_boxes``; hotcoco: 100, its ``max_dets``).
- *group-of box credit*: TF credits a box only when its best detection's score is above 0; hotcoco at any score.
- *no image-level labels* (neither ``images.extra["pos_category_ids"]`` nor ``["neg_category_ids"]``): every class
  is verified on every image (``image_labels`` is False in the result), as hotcoco, which has no image-level rule;
  TF would verify only the classes of each image's boxes.
- *hierarchy*: a class may have several parents (the Open Images file lists such a class under each); TF's
  expansion script then writes a copy per path to a shared ancestor, here one per ancestor. hotcoco keeps one
  parent per class and skips an ancestor copy identical to an existing box (same image, class and box).
- *IoU* as TF's ``np_box_ops`` on xyxy corners; a detection that overlaps nothing never matches.
- *images*: ``pred`` shares ``truth``'s images table; predictions of classes the truth lacks are not evaluated
  (``n_skipped``).
"""

from __future__ import annotations

import json
import math
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.types import FloatArray, IntArray
from maslow.errors import FormatError, InvalidDatasetError
from maslow.metrics import _oid_eval as O
from maslow.metrics._lvis_prepare import cap_per_image
from maslow.metrics._prepare import image_positions
from maslow.metrics._result import MatchStatus
from maslow.metrics._shared import _check_same_images, _json_float

__all__ = ["OID_ROOT", "OidResult", "oid_map", "read_hierarchy"]

#: The root of Open Images' hierarchy files ("Entity"): not a class
OID_ROOT = "/m/0bl9f"


@dataclass(frozen=True, eq=False)
class OidResult(MatchStatus):
    """Open Images evaluation result: mAP, each class's AP and counts, precision/recall curves and decisions.

    Attributes:
        map: mean AP over the classes with ``n_pos > 0`` (nan when none).
        class_names: (K,) the truth's classes, schema order (the per-class arrays follow it).
        ap_per_class: (K,) AP of each class; nan where ``n_pos_per_class`` is 0.
        n_pos_per_class: (K,) objects plus group-of boxes, after the hierarchy expansion: recall's denominator.
        n_group_of_per_class: (K,) the group-of boxes among them.
        n_pred_per_class: (K,) detection entries evaluated; ``n_tp_per_class``, ``n_fp_per_class`` and
            ``n_ignored_pred_per_class`` (inside a group-of box, not its true positive) split them.
        precision, recall, scores: (K,) tuples of each class's curve, one point per TP or FP entry in evaluation
            order.
        pred_status: (n_pred,) int8 status of each prediction row for its own class (``STATUS``: tp, fp, ignored,
            or skipped: a class the truth lacks, not verified on its image, an invalid box or past the cap).
        truth_status: (n_truth,) int8: tp (found; a group-of box with its true positive) or fn, for its own class.
        image_labels: whether the truth has image-level labels (else every class is verified on every image).
        n_skipped: prediction rows of classes absent from the truth; ``n_unverified``: entries of a class not
            verified on their image; ``n_invalid``: rows with ``x2 <= x1`` or ``y2 <= y1``; ``n_capped``: entries
            past 10,000 per image and class.
    """

    iou_threshold: float
    expand_pred: bool
    hierarchy: bool
    image_labels: bool
    map: float
    class_names: tuple[str, ...]
    ap_per_class: FloatArray
    n_pos_per_class: IntArray
    n_group_of_per_class: IntArray
    n_pred_per_class: IntArray
    n_tp_per_class: IntArray
    n_fp_per_class: IntArray
    n_ignored_pred_per_class: IntArray
    precision: tuple[FloatArray, ...]
    recall: tuple[FloatArray, ...]
    scores: tuple[FloatArray, ...]
    pred_status: np.ndarray
    truth_status: np.ndarray
    n_skipped: int
    n_unverified: int
    n_invalid: int
    n_capped: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan -> None): options, mAP, totals and one entry per class (no curves)."""
        f = _json_float
        cols = self._columns()
        per_class = [{k: (f(float(v[i])) if k == "ap" else int(v[i])) for k, v in cols.items()} | {"class": name}
                     for i, name in enumerate(self.class_names)]
        return {
            "protocol": "openimages", "iou_threshold": self.iou_threshold, "expand_pred": self.expand_pred,
            "hierarchy": self.hierarchy, "image_labels": self.image_labels, "map": f(self.map),
            "n_classes_evaluated": int(np.count_nonzero(self.n_pos_per_class)),
            **{k: int(v.sum()) for k, v in cols.items() if k != "ap"},
            "n_skipped": self.n_skipped, "n_unverified": self.n_unverified, "n_invalid": self.n_invalid,
            "n_capped": self.n_capped, "per_class": per_class,
        }

    def to_pandas(self) -> Any:
        """Per-class table: ``class``, ``ap``, ``n_pos``, ``n_group_of``, ``n_pred``, ``n_tp``, ``n_fp``,
        ``n_ignored_pred``."""
        import pandas as pd

        return pd.DataFrame({"class": list(self.class_names), **self._columns()})

    def _columns(self) -> dict[str, np.ndarray]:
        return {"ap": self.ap_per_class, "n_pos": self.n_pos_per_class, "n_group_of": self.n_group_of_per_class,
                "n_pred": self.n_pred_per_class, "n_tp": self.n_tp_per_class, "n_fp": self.n_fp_per_class,
                "n_ignored_pred": self.n_ignored_pred_per_class}


# -- the hierarchy file -------------------------------------------------------------------------------------

def _tree_edges(root: Any, path: Path, parents: dict[str, list[str]], first: dict[str, str]) -> None:
    """Add the child -> parent edges of an Open Images tree (iteratively: the files nest deeply). The top node is
    the root ("Entity"): its children get no parent from it, as TF's ``skip_root``."""
    def at(where: str, key: str) -> str:
        return f"{where}.{key}" if where else key

    stack: list[tuple[Any, str, str | None]] = [(root, "", None)]
    while stack:
        n, where, up = stack.pop()
        if not isinstance(n, Mapping):
            raise FormatError(f"a hierarchy node must be an object with LabelName, got {type(n).__name__}", path=path,
                              field=where)
        label = n.get("LabelName")
        if not isinstance(label, str) or not label:
            raise FormatError(f"LabelName must be a non-empty string, got {label!r}", path=path,
                              field=at(where, "LabelName"))
        subs = n.get("Subcategory", [])
        if not isinstance(subs, list):
            raise FormatError(f"Subcategory must be a list of nodes, got {type(subs).__name__}", path=path,
                              field=at(where, "Subcategory"))
        if n is not root:
            first.setdefault(label, at(where, "LabelName"))
            parents.setdefault(label, [])
            if up is not None and up not in parents[label]:
                parents[label].append(up)
        stack.extend((s, at(where, f"Subcategory[{i}]"), None if n is root else label)
                     for i, s in reversed(list(enumerate(subs))))


def _flat_edges(doc: Mapping[str, Any], path: Path, parents: dict[str, list[str]], first: dict[str, str]) -> None:
    for child, up in doc.items():
        ups = [up] if isinstance(up, str) else up
        if not isinstance(ups, list) or not all(isinstance(u, str) and u for u in ups):
            raise FormatError(f"a parent must be a label or a list of labels, got {up!r}", path=path, field=child)
        first.setdefault(child, child)
        parents.setdefault(child, [])
        for u in ups:
            first.setdefault(u, child)
            parents.setdefault(u, [])
            if u not in parents[child]:
                parents[child].append(u)


def _label_ancestors(parents: dict[str, list[str]], path: Path) -> dict[str, set[str]]:
    """Every label's ancestors (transitively); a cycle is an error naming it."""
    done: dict[str, set[str]] = {}
    for start in parents:
        if start in done:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        on_path: list[str] = []
        while stack:
            label, i = stack.pop()
            if i == 0:
                on_path.append(label)
            ups = parents[label]
            if i < len(ups):
                stack.append((label, i + 1))
                u = ups[i]
                if u in on_path:
                    cycle = " -> ".join([*on_path[on_path.index(u):], u])
                    raise FormatError(f"a label must not be its own ancestor, got the cycle {cycle}", path=path,
                                      field=u)
                if u not in done:
                    stack.append((u, 0))
                continue
            on_path.pop()
            done[label] = set().union(*({u} | done[u] for u in ups)) if ups else set()
    return done


def read_hierarchy(path: str | Path, schema: LabelSchema, names: Mapping[str, str] | None = None
                   ) -> Mapping[int, tuple[int, ...]]:
    """Read a class hierarchy: Open Images' ``bbox_labels_600_hierarchy.json`` (nested ``LabelName`` /
    ``Subcategory``; the top node is the root "Entity", not a class; a label may appear under several parents) or
    a flat JSON object ``{"child": "parent" | ["parent", ...]}``.

    Args:
        path: the JSON file.
        schema: the classes the labels name (``schema.names``).
        names: label -> class name, for labels that are not class names themselves (Open Images' MIDs, with the
            display names of its class-descriptions CSV).

    Returns:
        A read-only mapping of every class index of ``schema`` to its ancestors' class indexes (sorted; ``()`` for
        a class the file doesn't name). A label that is no class but has children in the file links its children
        to its own ancestors.

    Raises:
        FormatError: not JSON, a malformed node, a cycle, or a label without children that is no class; the
            message names the file and the field.

    Example:
        >>> from maslow.core.schema import ClassDef, LabelSchema
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "h.json"
        >>> _ = f.write_text('{"dog": "animal", "cat": "animal"}')
        >>> dict(read_hierarchy(f, LabelSchema(classes=(ClassDef("animal"), ClassDef("dog"), ClassDef("cat")))))
        {0: (), 1: (0,), 2: (0,)}
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise FormatError(f"must be JSON: {e.msg} at line {e.lineno} column {e.colno}", path=path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(f"can't be read: {e}", path=path) from None
    parents: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    if isinstance(doc, Mapping) and "LabelName" in doc:
        _tree_edges(doc, path, parents, first)
    elif isinstance(doc, Mapping):
        _flat_edges(doc, path, parents, first)
    else:
        raise FormatError(f"must be an Open Images hierarchy (an object with LabelName and Subcategory) or a "
                          f"{{child: parent}} object, got a {type(doc).__name__}", path=path)
    by_name = {n: i for i, n in enumerate(schema.names)}

    def resolve(label: str) -> int | None:
        if label in by_name:
            return by_name[label]
        return by_name.get(names[label]) if names is not None and label in names else None

    has_child = {u for ups in parents.values() for u in ups}
    for label in parents:
        if resolve(label) is None and label not in has_child:
            raise FormatError(f"label {label!r} must be a class of the schema (by name, or through names), or have "
                              f"subcategories, got neither", path=path, field=first[label])
    anc: dict[int, set[int]] = {i: set() for i in range(len(schema.names))}
    for label, ups in _label_ancestors(parents, path).items():
        c = resolve(label)
        if c is not None:
            anc[c] |= {a for a in map(resolve, ups) if a is not None and a != c}
    return types.MappingProxyType({c: tuple(sorted(a)) for c, a in anc.items()})


# -- the evaluation -----------------------------------------------------------------------------------------

def _check(truth: Dataset, pred: Dataset, iou_threshold: float) -> float:
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"oid_map: iou_threshold must be a number in [0, 1], got {iou_threshold!r}")
    _check_same_images(truth, pred, "oid_map")
    pa = pred.annotations
    if pa.score is None:
        raise InvalidDatasetError("pred.annotations.score: predictions must carry scores, got no score column")
    for side, ds in (("truth", truth), ("pred", pred)):
        box = ds.annotations.box
        if len(ds.annotations) and box is None:
            raise InvalidDatasetError(f"{side}.annotations.box: Open Images evaluation needs boxes, got none")
    nan = np.flatnonzero(np.isnan(pa.score))
    if nan.size:
        raise InvalidDatasetError(f"pred.annotations.score row {nan[0]}: must be a number, got nan ({nan.size} rows)")
    return float(iou_threshold)


def oid_map(truth: Dataset, pred: Dataset, *, hierarchy: Mapping[int, Sequence[int]] | None = None,
            iou_threshold: float = 0.5, expand_pred: bool = False) -> OidResult:
    """Open Images Challenge mAP of box predictions against truth (the rules and conventions: module docstring).

    Args:
        truth: ground truth boxes; ``annotations.iscrowd`` or ``annotations.extra["is_group_of"]`` marks group-of
            boxes; ``images.extra["pos_category_ids"]``/``["neg_category_ids"]`` (lists of ``ClassDef.id``) the
            verified image-level labels (neither: every class is verified everywhere).
        pred: predictions on the same images table, with ``annotations.score``.
        hierarchy: class index -> its ancestors' class indexes (``read_hierarchy``); None: flat classes.
        iou_threshold: the IoU (and, for group-of boxes, IoA) a match needs (0.5).
        expand_pred: also count each detection for its class's ancestors (not the challenge's rule).

    Returns:
        OidResult with mAP, per-class AP, counts and curves, and each row's decision for its own class.

    Raises:
        InvalidDatasetError: predictions without scores or on another images table, rows without boxes, label
            columns that are not lists of class ids, or group-of flags that are not flags.
        ValueError: an option out of range or a malformed ``hierarchy``.

    Example:
        >>> from maslow.sample import shapes
        >>> truth = shapes(4, seed=0)
        >>> pred = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(truth.n_annotations)))
        >>> oid_map(truth, pred).map
        1.0
    """
    thr = _check(truth, pred, iou_threshold)
    n_k = len(truth.schema.names)
    tr = O.tree(hierarchy, n_k)
    ta, pa = truth.annotations, pred.annotations
    img_pos = image_positions(truth)
    group_of = O.group_of_flags(truth)

    t_src, t_label = O.expand(np.asarray(ta.label, np.int64), tr.anc_ptr, tr.anc_idx)
    t_key = np.asarray(ta.image, np.int64)[t_src] * n_k + t_label
    t_sort = np.lexsort((t_src, t_key))
    t_src, t_label, t_key = t_src[t_sort], t_label[t_sort], t_key[t_sort]
    t_box = np.zeros((0, 4)) if ta.box is None else np.asarray(ta.box, np.float64)[t_src]
    t_group = group_of[t_src]

    by_name = {n: i for i, n in enumerate(truth.schema.names)}
    to_truth = np.asarray([by_name.get(n, -1) for n in pred.schema.names], np.int64)
    p_label_all = to_truth[pa.label] if len(pa) else np.zeros(0, np.int64)
    box = np.zeros((0, 4)) if pa.box is None else np.asarray(pa.box, np.float64)
    valid = (box[:, 0] < box[:, 2]) & (box[:, 1] < box[:, 3])
    known = p_label_all >= 0
    rows = np.flatnonzero(known & valid)
    src, p_label = (O.expand(p_label_all[rows], tr.anc_ptr, tr.anc_idx) if expand_pred
                    else (np.arange(len(rows), dtype=np.int64), p_label_all[rows]))
    p_row = rows[src]
    p_copy = p_label != p_label_all[p_row]  # an ancestor's copy of a detection (expand_pred)
    p_img = np.asarray(pa.image, np.int64)[p_row]
    p_key = p_img * n_k + p_label
    image_labels = O.has_image_labels(truth)
    n_entries = len(p_row)
    if image_labels:
        ok = np.isin(p_key, O.verified_keys(truth, t_key, tr))
        p_row, p_label, p_img, p_key, p_copy = p_row[ok], p_label[ok], p_img[ok], p_key[ok], p_copy[ok]
    n_unverified = n_entries - len(p_row)
    score = np.asarray(pa.score, np.float64)[p_row]
    n_capped = 0
    group = np.unique(p_key, return_inverse=True)[1]  # (image, class); entries in row order within each (see expand)
    kept = cap_per_image(group, score, int(group.max()) + 1 if len(group) else 0, O.MAX_PER_IMAGE_CLASS)
    if kept is not None:
        n_capped = len(p_row) - len(kept)
        p_row, p_label, p_img, p_key, score = p_row[kept], p_label[kept], p_img[kept], p_key[kept], score[kept]
        p_copy = p_copy[kept]
    order = np.lexsort((p_row, p_copy, img_pos[p_img], -score, p_label))  # class, score, image, copy, row
    p_row, p_label, p_key, score, p_copy = p_row[order], p_label[order], p_key[order], score[order], p_copy[order]

    m = O.match(t_box, t_key, t_group, box[p_row], p_key, score, thr)
    n_pos = np.bincount(t_label, minlength=n_k).astype(np.int64)
    cv = O.curves(p_label, m.tp, m.fp, score, n_pos)
    valid_ap = cv.ap[~np.isnan(cv.ap)]

    def per_class(flags: np.ndarray) -> IntArray:
        return np.bincount(p_label[flags], minlength=n_k).astype(np.int64)

    own = ~p_copy  # each row's entry for its own class
    pred_status = np.full(len(pa), OidResult.SKIPPED, np.int8)
    pred_status[p_row[own]] = np.where(m.tp, OidResult.TP, np.where(m.fp, OidResult.FP, OidResult.IGNORED))[own]
    t_own = t_label == np.asarray(ta.label, np.int64)[t_src]
    found = np.zeros(len(ta), bool)
    hit = m.partner[m.tp]  # the object or group-of box of each true positive
    found[t_src[hit[t_own[hit]]]] = True
    truth_status = np.where(found, OidResult.TP, OidResult.FN).astype(np.int8)
    counts = {"n_pred_per_class": per_class(np.ones(len(p_row), bool)), "n_tp_per_class": per_class(m.tp),
              "n_fp_per_class": per_class(m.fp), "n_ignored_pred_per_class": per_class(m.ignored)}
    n_group = np.bincount(t_label[t_group], minlength=n_k).astype(np.int64)
    arrays: list[np.ndarray] = [cv.ap, n_pos, n_group, cv.precision, cv.recall, cv.scores, pred_status, truth_status,
                                *counts.values()]
    for arr in arrays:
        arr.flags.writeable = False
    b = cv.bounds.tolist()
    return OidResult(
        iou_threshold=thr, expand_pred=bool(expand_pred), hierarchy=len(tr.anc_idx) > 0, image_labels=image_labels,
        map=float(np.mean(valid_ap)) if len(valid_ap) else math.nan, class_names=truth.schema.names,
        ap_per_class=cv.ap, n_pos_per_class=n_pos, n_group_of_per_class=n_group, **counts,
        precision=tuple(cv.precision[b[k]:b[k + 1]] for k in range(n_k)),
        recall=tuple(cv.recall[b[k]:b[k + 1]] for k in range(n_k)),
        scores=tuple(cv.scores[b[k]:b[k + 1]] for k in range(n_k)),
        pred_status=pred_status, truth_status=truth_status, n_skipped=int((~known).sum()),
        n_unverified=n_unverified, n_invalid=int((known & ~valid).sum()), n_capped=n_capped,
    )
