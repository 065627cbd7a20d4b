"""Accepted findings that can't all be applied (``maslow.quality.review.apply_decisions``): edits of one annotation
that disagree, an annotation kept by one and removed by another, one object of the model made twice, and the last box
of a pair removed. The edits in conflict are recorded in the change log and not applied."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

import numpy as np

from maslow.quality._review_apply import Change, _Edit
from maslow.quality.records import Finding

_FIELD = {"relabel": "label", "confirm": "label", "move_box": "box", "move_polygon": "box", "move_keypoints": "keypoints"}


def _drop_conflicts(edits: list[_Edit], changes: dict[int, Change]) -> list[_Edit]:
    """The edits without those in conflict (recorded in ``changes``): edits of one annotation where one removes it
    and another changes it, or two set one field to different values (removals agree); then an edit that keeps an
    annotation (``keep``) with the edits that remove it, unless the object stays labelled through a kept duplicate."""
    claims: dict[int, list[tuple[_Edit, str, Any]]] = defaultdict(list)
    for e in edits:
        if e.row >= 0:
            claims[e.row].append((e, _FIELD.get(e.action, "remove"), e.value))
        if e.drop >= 0:
            claims[e.drop].append((e, "remove", None))
    bad: set[int] = set()
    for row, group in claims.items():
        values: dict[str, list[Any]] = defaultdict(list)
        for _, field, v in group:
            values[field].append(v)
        if len(group) > 1 and (("remove" in values and len(values) > 1) or any(
                not all(_same(v, vs[0]) for v in vs) for k, vs in values.items() if k != "remove")):
            _conflict([e for e, _, _ in group], row, "is also changed by", changes, bad)
    _one_object_once(edits, changes, bad)
    live = [e for e in edits if id(e) not in bad]
    removers, labelled = _removals(live)
    for e in live:
        if e.keep >= 0 and e.keep in removers and e.keep not in labelled:
            _conflict([e, *(x for x, _ in removers[e.keep])], e.keep, "is kept by one and removed by", changes, bad)
    return [e for e in edits if id(e) not in bad]


def _one_object_once(edits: list[_Edit], changes: dict[int, Change], bad: set[int]) -> None:
    """Record as ``conflict`` the adds and moves that would make one object twice: edits of the same suggested
    geometry (``_Edit.origin``: one prediction of the model) on more than one annotation, or an add among them
    (a ``missing`` finding and a ``low_iou`` one moving an annotation to that very box)."""
    by_origin: dict[bytes, list[_Edit]] = defaultdict(list)
    for e in edits:
        if e.origin is not None and id(e) not in bad:
            by_origin[e.origin].append(e)
    for group in by_origin.values():
        if len(group) < 2 or (len({e.row for e in group}) == 1 and group[0].row >= 0):
            continue
        what = "; ".join(f"{e.key} ({e.type}: {'adds it' if e.row < 0 else f'moves annotation row {e.row} there'})"
                         for e in group)
        for e in group:
            if e.key in changes:
                continue
            changes[e.key] = Change(e.key, e.type, "conflict", e.action, None if e.row < 0 else e.row, None,
                                    f"accepted findings {what} make one object of the model twice: nothing "
                                    "applied; accept one of them only")
            bad.add(id(e))


def _removals(live: list[_Edit]) -> tuple[dict[int, list[tuple[_Edit, int]]], set[int]]:
    """The rows ``live`` removes (row -> (edit, the row that stays instead, -1: none)), and the rows whose object
    stays labelled: kept, or removed in favour of a row whose object stays labelled."""
    removers: dict[int, list[tuple[_Edit, int]]] = defaultdict(list)
    for e in live:
        if e.action == "remove":
            removers[e.row].append((e, e.keep))
        if e.drop >= 0:
            removers[e.drop].append((e, e.row))
    labelled = {r for e in live for r in (e.keep, e.row, e.drop) if r >= 0 and r not in removers}
    # a removed row's object stays labelled when a row it gives way to does (cycles never do): the rows from which
    # a labelled one is reached, walked back from each once (linear, where a sweep to a fixpoint is quadratic)
    gives_way: dict[int, list[int]] = defaultdict(list)
    for r, rs in removers.items():
        for _, k in rs:
            if k >= 0:
                gives_way[k].append(r)
    todo = list(labelled)
    while todo:
        for r in gives_way.get(todo.pop(), ()):
            if r not in labelled:
                labelled.add(r)
                todo.append(r)
    return removers, labelled


def _keep_one_of_each_pair(edits: list[_Edit], guards: list[Finding], changes: dict[int, Change]) -> list[_Edit]:
    """The edits without those that would remove the last box of a pair an accepted, not applied pair finding
    (``guards``: a ``duplicate_box`` whose boxes differ in an outline, a ``class_conflict`` without a class) names:
    then the earlier box of the pair (``other_row``) stays, its removals are recorded as ``conflict`` in ``changes``,
    and the pair finding's entry says so.

    The removals are computed once, and after a guard marks edits bad, again only for the rows linked to theirs
    (what a row's removals are, and whether its object stays labelled, depends on the edits of its group of linked
    rows alone): guards + edits, not guards x edits."""
    bad: set[int] = set()
    removers, labelled = _removals(edits)
    group_of, group_edits, group_rows = _linked_rows(edits)
    for g in guards:
        if all(r in removers and r not in labelled for r in (g.other, g.ann)):
            group = [e for e, _ in removers[g.other]]
            keys = ", ".join(str(e.key) for e in group)
            gone = ", ".join(str(e.key) for e, _ in removers[g.ann])
            for e in group:
                changes[e.key] = Change(
                    e.key, e.type, "conflict", e.action, None if e.row < 0 else e.row, None,
                    f"annotation row {g.other} is kept by accepted finding {g.key} ({g.type}: one box of the pair "
                    f"stays) and the pair's other box (annotation row {g.ann}) is removed by accepted finding "
                    f"{gone}: nothing applied; accept one of them only")
                bad.add(id(e))
            linked = group_of[g.other]  # every edit marked bad names g.other
            group_edits[linked] = [e for e in group_edits[linked] if id(e) not in bad]
            for r in group_rows[linked]:
                removers.pop(r, None)
                labelled.discard(r)
            sub_removers, sub_labelled = _removals(group_edits[linked])
            removers.update(sub_removers)
            labelled |= sub_labelled
            c = changes[g.key]
            changes[g.key] = dataclasses.replace(c, detail=(
                f"{c.detail}; one box of the pair stays: annotation row {g.other} is kept (accepted finding {keys}, "
                f"which would remove it as well as the other box, is not applied: conflict)"))
    return [e for e in edits if id(e) not in bad]


def _linked_rows(edits: list[_Edit]) -> tuple[dict[int, int], dict[int, list[_Edit]], dict[int, list[int]]]:
    """The groups of annotation rows linked by an edit naming both (its ``row``, ``keep``, ``drop``): row -> its
    group, and each group's edits (in the order of ``edits``) and rows."""
    parent: dict[int, int] = {}

    def find(r: int) -> int:
        parent.setdefault(r, r)
        while parent[r] != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    for e in edits:
        rows = [r for r in (e.row, e.keep, e.drop) if r >= 0]
        for r in rows:
            parent[find(r)] = find(rows[0])
    group_of = {r: find(r) for r in parent}
    group_edits: dict[int, list[_Edit]] = defaultdict(list)
    group_rows: dict[int, list[int]] = defaultdict(list)
    for e in edits:
        rows = [r for r in (e.row, e.keep, e.drop) if r >= 0]
        if rows:
            group_edits[group_of[rows[0]]].append(e)
    for r, root in group_of.items():
        group_rows[root].append(r)
    return group_of, group_edits, group_rows


def _conflict(group: list[_Edit], row: int, how: str, changes: dict[int, Change], bad: set[int]) -> None:
    """Record every edit of ``group`` as a conflict over annotation ``row`` (the first reason given stays)."""
    for e in group:
        if e.key in changes:
            continue
        others = ", ".join(str(o.key) for o in group if o.key != e.key)
        changes[e.key] = Change(e.key, e.type, "conflict", e.action, None if e.row < 0 else e.row, None,
                                f"annotation row {row} {how} accepted finding {others}: nothing applied; accept "
                                "one of them only")
        bad.add(id(e))


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return x is not None and y is not None and bool(np.array_equal(x, y, equal_nan=True))
    return bool(x == y)
