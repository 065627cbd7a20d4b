"""Seeded, class-stratified, group-aware assignment of images to splits.

Images that share a group value (frames of one video sequence) form one unit. Units are placed one at a time,
those holding the rarest class first (iterative stratification, Sechidis et al. 2011). Each goes to a split
with room for its images (short of its image quota by at least half the unit), among those to the split that most
lacks the unit's rarest class, then to the split whose quota of that class is least filled, then to the split
that most lacks images, then at random. Image shares so come as close to the fractions asked for as the unit sizes
allow (exact, give or take one image, when images are placed one by one), and classes as close as they can then.

A class's quota per split is a whole number of objects: its share ``fraction * count`` rounded down or up (so
within one object of it, as scikit-learn's StratifiedKFold), the rounded-up places going to the splits that
earlier classes' rounding left most owed (classes smallest first). Fractional quotas would send every object of
a one- or two-object class to the largest split (0.8 of one object lacks more than 0.2), so a dataset whose
classes are all rare would put every image there; the carried rounding gives the small splits their share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from maslow.core.types import Rng, StrArray, as_generator, obj_array
from maslow.errors import InvalidDatasetError

if TYPE_CHECKING:
    from maslow.core.dataset import Dataset


def assign_splits(
    ds: Dataset,
    fractions: Mapping[str, float],
    *,
    rng: Rng = None,
    stratify: bool = True,
    groups: np.ndarray | None = None,
) -> StrArray:
    """(m,) split name per image; see the module docstring for the method."""
    names = list(fractions)
    frac = np.asarray([fractions[s] for s in names], dtype=np.float64)
    if not names or np.any(frac < 0) or not np.isclose(frac.sum(), 1.0):
        raise InvalidDatasetError(f"split: fractions must be >= 0 and sum to 1, got {dict(fractions)}")
    gen = as_generator(rng)
    m = ds.n_images
    if groups is None:
        unit = np.arange(m)
    else:
        unit = _units(np.asarray(groups))
    n_units = int(unit.max()) + 1 if m else 0
    k = len(ds.schema.classes)
    counts = np.zeros((n_units, k), np.int64)
    ann = ds.annotations
    if stratify and len(ann):
        np.add.at(counts, (unit[ann.image], ann.label), 1)
    size = np.bincount(unit, minlength=n_units).astype(np.float64)

    total = counts.sum(0).astype(np.float64)
    want_cls = _class_quotas(total, frac, gen)  # (s, k)
    want_img = frac * m
    have_cls = np.zeros_like(want_cls)
    have_img = np.zeros(len(names))

    order = gen.permutation(n_units)
    rarest = np.full(n_units, k, np.int64)  # rank of each unit's rarest class (k: none)
    class_of_rank = np.arange(k)
    if stratify and k:
        rank = np.argsort(np.argsort(np.where(total > 0, total, np.inf), kind="stable"), kind="stable")
        has = counts[order] > 0
        r = np.where(has, rank[None, :], k)
        rarest[order] = r.min(1)
        order = order[np.argsort(rarest[order], kind="stable")]
        class_of_rank = np.argsort(rank)

    out = np.zeros(n_units, np.int64)
    for u in order.tolist():
        if stratify and rarest[u] < k:
            c = int(class_of_rank[rarest[u]])  # the unit's rarest class decides
            quota = want_cls[:, c]
            lack = quota - have_cls[:, c]
            unfilled = np.where(quota > 0, lack / np.maximum(quota, 1), -np.inf)
        else:
            lack = unfilled = np.zeros(len(names))
        room = want_img - have_img >= size[u] / 2
        img_lack = (want_img - have_img) / max(size[u], 1)
        noise = gen.random(len(names)) * 1e-9
        key = np.lexsort((noise, img_lack, unfilled, lack, room))  # last key is primary
        best = int(key[-1])
        if want_img[best] <= 0:  # a zero fraction never receives images
            best = int(np.argmax(np.where(frac > 0, img_lack + lack, -np.inf)))
        out[u] = best
        have_cls[best] += counts[u]
        have_img[best] += size[u]
    return obj_array(np.asarray(names, dtype=object)[out[unit]] if m else [])


def _class_quotas(total: np.ndarray, frac: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """(s, k) whole objects per split and class, summing to each class's total; see the module docstring."""
    s, k = len(frac), len(total)
    quotas = np.zeros((s, k))
    carry = np.zeros(s)  # what earlier classes' rounding left each split owed (+) or over-served (-); sums to 0
    for c in np.lexsort((gen.random(k), total)).tolist():
        t = int(total[c])
        share = frac * t
        q = np.floor(share + 1e-9)
        rest = share - q
        short = t - int(q.sum())
        if short > 0:  # one more for the splits owed most, among those whose share was rounded down
            owed = np.where(rest > 1e-9, carry + rest, -np.inf)
            q[np.lexsort((gen.random(s), owed))[::-1][:short]] += 1
        quotas[:, c] = q
        carry += share - q
    return quotas


def _units(groups: np.ndarray) -> np.ndarray:
    """(m,) unit id per image: equal group values share a unit; a missing value (None, NaN) is its own unit."""
    m = len(groups)
    missing = np.fromiter((g is None or (isinstance(g, float) and g != g) for g in groups.tolist()), bool, m)
    keys = groups.astype(str)
    _, unit = np.unique(keys[~missing], return_inverse=True)
    out = np.empty(m, np.int64)
    out[~missing] = unit.reshape(-1)
    n_known = int(unit.max()) + 1 if unit.size else 0
    out[missing] = n_known + np.arange(int(missing.sum()))
    return out
