"""``_keep_one_of_each_pair`` and ``_removals`` at scale: the same results as the straightforward algorithm (a guard
at a time, the removals recomputed from every live edit, labelled rows grown to a fixpoint), in linear time."""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict

from maslow.quality._review_apply import _Edit
from maslow.quality._review_conflicts import Change, _keep_one_of_each_pair, _removals
from maslow.quality.records import Finding


def _ref_removals(live: list[_Edit]) -> tuple[dict[int, list[tuple[_Edit, int]]], set[int]]:
    """The reference: ``_removals`` as it was (a sweep over every removed row until nothing grows)."""
    removers: dict[int, list[tuple[_Edit, int]]] = defaultdict(list)
    for e in live:
        if e.action == "remove":
            removers[e.row].append((e, e.keep))
        if e.drop >= 0:
            removers[e.drop].append((e, e.row))
    labelled = {r for e in live for r in (e.keep, e.row, e.drop) if r >= 0 and r not in removers}
    grown = True
    while grown:
        grown = False
        for r, rs in removers.items():
            if r not in labelled and any(k in labelled for _, k in rs):
                labelled.add(r)
                grown = True
    return removers, labelled


def _ref_keep(edits: list[_Edit], guards: list[Finding], changes: dict[int, Change]) -> list[_Edit]:
    """The reference: ``_keep_one_of_each_pair`` as it was (the removals recomputed for every guard)."""
    bad: set[int] = set()
    for g in guards:
        live = [e for e in edits if id(e) not in bad]
        removers, labelled = _ref_removals(live)
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
            c = changes[g.key]
            changes[g.key] = dataclasses.replace(c, detail=(
                f"{c.detail}; one box of the pair stays: annotation row {g.other} is kept (accepted finding {keys}, "
                f"which would remove it as well as the other box, is not applied: conflict)"))
    return [e for e in edits if id(e) not in bad]


def _guard(key: int, ann: int, other: int, kind: str = "duplicate_box") -> Finding:
    return Finding(key, kind, 0, ann, None, None, None, None, None, None, None, "", other=other)


def _not_applied(guards: list[Finding]) -> dict[int, Change]:
    return {g.key: Change(g.key, g.type, "not_applicable", "none", g.ann, None, f"guard {g.key}") for g in guards}


def _random_case(rng: random.Random) -> tuple[list[_Edit], list[Finding]]:
    """A few rows, edits of every kind (removals keeping another row, relabels dropping one, moves, adds), guards."""
    n_rows = rng.randint(2, 8)

    def row() -> int:
        return rng.randrange(n_rows)

    edits: list[_Edit] = []
    for key in range(rng.randint(0, 10)):
        kind = rng.random()
        if kind < 0.45:
            keep = row() if rng.random() < 0.6 else -1
            edits.append(_Edit(key, "duplicate_box" if keep >= 0 else "extra", "remove", row(), 0, None,
                               f"remove {key}", keep=keep))
        elif kind < 0.7:
            drop = row() if rng.random() < 0.7 else -1
            edits.append(_Edit(key, "class_conflict", rng.choice(["relabel", "confirm"]), row(), 0, 1,
                               f"relabel {key}", drop=drop))
        elif kind < 0.85:
            edits.append(_Edit(key, "low_iou", "move_box", row(), 0, None, f"move {key}"))
        else:
            edits.append(_Edit(key, "missing", "add", -1, 0, None, f"add {key}"))
    guards = []
    for i in range(rng.randint(0, 6)):
        a, b = rng.sample(range(n_rows), 2)
        guards.append(_guard(100 + i, a, b, rng.choice(["duplicate_box", "class_conflict"])))
    return edits, guards


def test_removals_match_the_fixpoint_sweep() -> None:
    rng = random.Random(1)
    for _ in range(3000):
        edits, _ = _random_case(rng)
        removers, labelled = _removals(edits)
        ref_removers, ref_labelled = _ref_removals(edits)
        assert labelled == ref_labelled
        assert dict(removers) == dict(ref_removers)


def test_removals_walk_a_long_chain() -> None:
    # row i gives way to row i + 1, the last row stays: every row's object stays labelled (the sweep took n rounds)
    n = 20_000
    edits = [_Edit(i, "duplicate_box", "remove", n - 1 - i, 0, None, "", keep=n - i) for i in range(n)]
    removers, labelled = _removals(edits)
    assert len(removers) == n and labelled == set(range(n + 1))


def test_keep_one_of_each_pair_matches_the_reference() -> None:
    rng = random.Random(7)
    fired = 0
    for _ in range(3000):
        edits, guards = _random_case(rng)
        changes, ref_changes = _not_applied(guards), _not_applied(guards)
        out = _keep_one_of_each_pair(edits, guards, changes)
        ref = _ref_keep(edits, guards, ref_changes)
        assert [id(e) for e in out] == [id(e) for e in ref]
        assert list(changes.items()) == list(ref_changes.items())
        fired += len(out) < len(edits)
    assert fired > 100  # the cases exercise the guards that mark edits as conflicts, not only the quiet ones


def test_keep_one_of_each_pair_on_20000_guards_and_edits() -> None:
    # 20,000 guards and 20,000 edits: on 5,000 guarded pairs the accepted edits remove both boxes (the guard fires:
    # the earlier box stays), on 10,000 one box is removed in favour of the other (nothing to do), 5,000 pairs have
    # no edit at all
    fire, quiet, untouched = 5_000, 10_000, 5_000
    edits, guards = [], []
    for i in range(fire):
        a, b = 2 * i, 2 * i + 1
        edits.append(_Edit(2 * i, "extra", "remove", b, 0, None, "removed"))
        edits.append(_Edit(2 * i + 1, "extra", "remove", a, 0, None, "removed"))
        guards.append(_guard(100_000 + i, b, a))
    for j in range(quiet):
        a, b = 2 * fire + 2 * j, 2 * fire + 2 * j + 1
        edits.append(_Edit(2 * fire + j, "duplicate_box", "remove", b, 0, None, "removed", keep=a))
        guards.append(_guard(200_000 + j, b, a))
    base = 2 * fire + 2 * quiet
    guards += [_guard(300_000 + k, base + 2 * k + 1, base + 2 * k) for k in range(untouched)]
    assert len(edits) == len(guards) == 20_000
    changes = _not_applied(guards)
    out = _keep_one_of_each_pair(edits, guards, changes)
    assert {e.key for e in out} == {2 * i for i in range(fire)} | {2 * fire + j for j in range(quiet)}
    conflicts = [c for c in changes.values() if c.outcome == "conflict"]
    assert sorted(c.key for c in conflicts) == [2 * i + 1 for i in range(fire)]
    assert changes[2 * 7 + 1].detail.startswith("annotation row 14 is kept by accepted finding 100007 ")
    assert "annotation row 14 is kept (accepted finding 15," in changes[100_007].detail
    assert changes[200_003].detail == "guard 200003"  # one box of the pair stays anyway: nothing to say
    assert changes[300_003].detail == "guard 300003"
