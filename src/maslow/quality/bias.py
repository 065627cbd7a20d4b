"""Bias: associations between labels and image metadata, attributes or the annotator.

Glossary: for a *variable* (an ``images.extra`` column, an attribute ``attr:NAME`` or ``annotator``) the
contingency table counts annotations per (class, value); unset values are left out, and so are classes and values
with no annotation. Chi-square is Pearson's without continuity correction (``scipy.stats.chi2_contingency(...,
correction=False)``), Cramér's V is ``sqrt(chi2 / (n (min(rows, cols) - 1)))`` in [0, 1]; both are effect sizes of
the annotation table. The p-value depends on the *unit* of the test:

- ``image``: the variable takes one value per image: an ``images.extra`` column, or an attribute or the annotator
  when no image has two different set values of it. Objects of one image share its value and usually its classes,
  so they are not independent samples; p comes from a permutation test that shuffles the values across images,
  each image keeping its annotations, with the chi-square as statistic (``maslow.quality._bias_perm``; seeded,
  1,999 shuffles at ``bias_p`` 0.001, early stop once the flag is settled). Its smallest p is 1 / (shuffles + 1).
- ``annotation``: the variable differs between annotations of one image (an attribute such as ``occluded``, or
  annotators who labelled the same images); p is the chi-square test on annotations. Images there are compared
  with themselves, but objects of one image are still not independent, so read this p as a screen: the Cramér's V
  threshold is what keeps a large dataset from flagging trivia.

An association is flagged when V >= ``CheckConfig.bias_cramers_v`` and p < ``bias_p``. An ``images.extra`` column
with more distinct values than half the images that have one (ids, urls, capture times: with so few images per
value any class looks tied to it) is not a variable. Each annotator's class distribution is also tested against
the rest of the team (a 2 x k table, same unit rule), flagged when V >= ``annotator_bias_v`` and p < ``bias_p``;
annotations without an annotator (None or NaN) belong to nobody and are left out of those tables.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import IntArray, is_unset
from maslow.quality._bias_perm import cells, chi2_tables, n_permutations, one_vs_rest_chi2, permutation_pvalues
from maslow.quality.config import CheckConfig
from maslow.quality.issues import QualityIssues


@dataclass(frozen=True, eq=False)
class Association:
    """One variable tested against the class.

    Attributes:
        variable: ``images.extra`` column name, ``attr:NAME``, ``annotator`` or ``annotator=NAME`` (one vs rest).
        classes: row names of ``table``; values: column names.
        table: (rows, cols) int64 annotation counts.
        chi2, p_value, cramers_v, dof: the test; chi2, V and dof are those of ``table``, p is the permutation
            p-value when ``unit`` is ``"image"``.
        flagged: above the thresholds.
        n_images: images with an annotation in ``table``.
        unit: ``"image"`` (values shuffled across images) or ``"annotation"`` (chi-square on annotations).
        n_permutations: shuffles run for an image-level test (0 for ``"annotation"``).
    """

    variable: str
    classes: tuple[str, ...]
    values: tuple[str, ...]
    table: IntArray
    chi2: float
    p_value: float
    cramers_v: float
    dof: int
    flagged: bool
    n_images: int = 0
    unit: str = "annotation"
    n_permutations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"variable": self.variable, "classes": list(self.classes), "values": list(self.values),
                "table": self.table.tolist(), "chi2": self.chi2, "p_value": self.p_value,
                "cramers_v": self.cramers_v, "dof": self.dof, "flagged": self.flagged, "n_images": self.n_images,
                "unit": self.unit, "n_permutations": self.n_permutations}


def chi_square(table: Any) -> tuple[float, float, float, int]:
    """(chi2, p, Cramér's V, dof) of a contingency table without continuity correction; p NaN without scipy.

    Empty rows and columns are dropped first; fewer than two of either left is no association, (0, 1, 0, 0).

    Raises:
        ValueError: ``table`` is not 2-D, or holds a negative or non-finite count.
    """
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError(f"chi_square: table must be 2-D (rows, cols), got shape {t.shape}")
    bad = np.argwhere(~np.isfinite(t) | (t < 0))
    if len(bad):
        r, c = bad[0].tolist()
        raise ValueError(f"chi_square: table must hold finite counts >= 0, got {t[r, c]} at [{r}, {c}] "
                         f"({len(bad)} cells)")
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if min(t.shape) < 2:
        return 0.0, 1.0, 0.0, 0
    n = t.sum()
    exp = t.sum(axis=1, keepdims=True) * t.sum(axis=0, keepdims=True) / n
    chi2 = float(((t - exp) ** 2 / exp).sum())
    dof = (t.shape[0] - 1) * (t.shape[1] - 1)
    from scipy.stats import chi2 as chi2_dist

    p = float(chi2_dist.sf(chi2, dof))
    v = float(np.sqrt(chi2 / (n * (min(t.shape) - 1))))
    return chi2, p, v, dof


def _factorize(values: np.ndarray) -> tuple[IntArray, list[str]]:
    """(codes, names): codes index names, -1 where the value is unset (None or NaN); values compared as str."""
    seen: dict[str, int] = {}
    codes = np.fromiter(
        (-1 if is_unset(v) else seen.setdefault(str(v), len(seen))
         for v in values.tolist()), dtype=np.int64, count=len(values))
    return codes, list(seen)


def _per_image(codes: IntArray, image: IntArray, m: int) -> IntArray | None:
    """(m,) the one set value code of each image (-1: none), or None when some image has two different ones."""
    on = codes >= 0
    lo = np.full(m, np.iinfo(np.int64).max)
    hi = np.full(m, -1, np.int64)
    np.minimum.at(lo, image[on], codes[on])
    np.maximum.at(hi, image[on], codes[on])
    return None if np.any((hi >= 0) & (lo != hi)) else hi


def _variables(ds: Dataset, config: CheckConfig) -> list[tuple[str, IntArray, list[str], IntArray | None]]:
    """(name, (n,) codes aligned with annotations (-1 unset), value names, (m,) code per image or None when the
    variable differs within an image) per candidate variable."""
    a = ds.annotations
    out: list[tuple[str, IntArray, list[str], IntArray | None]] = []
    wanted = config.bias_columns

    def want(name: str) -> bool:
        return wanted is None or name in wanted

    for name, col in ds.images.extra.items():
        if np.asarray(col).ndim != 1 or not want(name):
            continue
        codes, names = _factorize(np.asarray(col, dtype=object))  # per image, then broadcast
        if 2 * len(names) > int((codes >= 0).sum()):  # mostly one value per image: an id, a url, a timestamp
            continue
        out.append((name, codes[a.image], names, codes))
    for name, col in a.attributes.items():
        if want(f"attr:{name}"):
            codes, names = _factorize(np.asarray(col, dtype=object))
            out.append((f"attr:{name}", codes, names, _per_image(codes, a.image, ds.n_images)))
    if a.annotator is not None and want("annotator"):
        codes, names = _factorize(np.asarray(a.annotator, dtype=object))
        out.append(("annotator", codes, names, _per_image(codes, a.image, ds.n_images)))
    return out


def _table(label: IntArray, codes: IntArray, names: list[str], k: int, max_categories: int
           ) -> tuple[IntArray, list[str], IntArray] | None:
    keep = codes >= 0
    if keep.sum() < 2 or not 2 <= len(names) <= max_categories:
        return None
    order = sorted(range(len(names)), key=lambda i: names[i])
    remap = np.empty(len(names), np.int64)
    remap[order] = np.arange(len(names))
    v = len(names)
    t = np.bincount(label[keep] * v + remap[codes[keep]], minlength=k * v).reshape(k, v)
    t = t[:, t.sum(axis=0) > 0]
    cols = [names[i] for i in order if np.any(codes == i)]
    rows = np.flatnonzero(t.sum(axis=1) > 0)
    if t.shape[1] < 2:
        return None
    return t[rows], cols, rows


def _positions(n: int, chosen: Any) -> IntArray:
    """(n,) position of each of ``chosen`` among them (a table's row or column), -1 for the others."""
    out = np.full(n, -1, np.int64)
    out[np.asarray(chosen, np.int64)] = np.arange(len(chosen))
    return out


def _image_p(label: IntArray, image: IntArray, codes: IntArray, per_image: IntArray, rowmap: IntArray,
             colmap: IntArray, n_rows: int, n_cols: int, one_vs_rest: bool, name: str, config: CheckConfig
             ) -> tuple[np.ndarray, int]:
    """Permutation p-values (values shuffled across images) of the annotations with a set code."""
    on = np.flatnonzero(codes >= 0)
    images, ii, cc, w = cells(image[on], rowmap[label[on]], n_rows)
    n_perm, stop_at = n_permutations(config.bias_p)
    return permutation_pvalues(ii, cc, w, colmap[per_image[images]], n_rows, n_cols,
                               one_vs_rest_chi2 if one_vs_rest else chi2_tables, n_perm=n_perm,
                               stop_at=stop_at, seed=zlib.crc32(name.encode()))


def label_associations(ds: Dataset, *, config: CheckConfig = CheckConfig()) -> list[Association]:
    """Class vs every metadata column, attribute and the annotator; plus each annotator vs the rest of the team.

    Args:
        ds: the dataset.
        config: ``bias_cramers_v``, ``bias_p``, ``annotator_bias_v``, ``max_categories``, ``bias_columns``.

    Returns:
        One ``Association`` per variable that has at least two values and two classes, in variable order.
    """
    a = ds.annotations
    k = len(ds.schema.classes)
    names = ds.schema.names
    out: list[Association] = []
    for var, codes, values, per_image in _variables(ds, config):
        built = _table(a.label, codes, values, k, config.max_categories)
        if built is None:
            continue
        t, cols, rows = built
        if len(rows) < 2:
            continue
        chi2, p, v, dof = chi_square(t)
        n_img = len(np.unique(a.image[codes >= 0]))
        unit, n_perm = "annotation", 0
        if per_image is not None:
            colmap = _positions(len(values), [values.index(c) for c in cols])
            ps, n_perm = _image_p(a.label, a.image, codes, per_image, _positions(k, rows), colmap, len(rows),
                                  len(cols), False, var, config)
            p, unit = float(ps[0]), "image"
        out.append(Association(var, tuple(names[r] for r in rows), tuple(cols), t, chi2, p, v, dof,
                               bool(v >= config.bias_cramers_v and p < config.bias_p), n_img, unit, n_perm))
    if a.annotator is not None:
        codes, people = _factorize(np.asarray(a.annotator, dtype=object))  # -1: no annotator, nobody's row
        per_image = _per_image(codes, a.image, ds.n_images)
        team = np.bincount(a.label[codes >= 0], minlength=k)
        present = np.flatnonzero(team > 0)
        n_img = len(np.unique(a.image[codes >= 0]))
        perm_p: np.ndarray | None = None
        n_perm = 0
        for j, name in sorted(enumerate(people), key=lambda jn: jn[1]):
            mine = np.bincount(a.label[codes == j], minlength=k)
            t = np.stack([mine, team - mine])[:, present]
            if t[1].sum() == 0 or len(present) < 2:
                continue
            chi2, p, v, dof = chi_square(t)
            unit = "annotation"
            if per_image is not None:
                if perm_p is None:  # one run of shuffles gives every annotator's p
                    perm_p, n_perm = _image_p(a.label, a.image, codes, per_image, _positions(k, present),
                                              np.arange(len(people)), len(present), len(people), True,
                                              "annotator=", config)
                p, unit = float(perm_p[j]), "image"
            out.append(Association(f"annotator={name}", (name, "rest of the team"),
                                   tuple(names[c] for c in present), t.astype(np.int64), chi2, p, v, dof,
                                   bool(v >= config.annotator_bias_v and p < config.bias_p), n_img, unit,
                                   n_perm if unit == "image" else 0))
    return out


def _evidence(s: Association) -> str:
    if s.unit == "image":
        return f"p {s.p_value:.2g} from {s.n_permutations} shuffles of the values across {s.n_images} images"
    return f"p {s.p_value:.2g} treating {int(s.table.sum())} annotations on {s.n_images} images as independent"


def bias_issues(associations: list[Association]) -> QualityIssues:
    """One dataset-level row per flagged association."""
    parts = []
    for s in associations:
        if not s.flagged:
            continue
        if s.variable.startswith("annotator="):
            frac = s.table / np.maximum(s.table.sum(axis=1, keepdims=True), 1)
            diff = frac[0] - frac[1]
            j = int(np.argmax(np.abs(diff)))
            reason = (f"{s.classes[0]} labels {s.values[j]} {100 * frac[0, j]:.0f}% of the time, the rest of the team "
                      f"{100 * frac[1, j]:.0f}% (Cramér's V {s.cramers_v:.2f}, {_evidence(s)})")
            typ, sug = "annotator_label_bias", "review this annotator's labels of the classes that differ"
        else:
            reason = (f"class depends on {s.variable} (Cramér's V {s.cramers_v:.2f}, chi2 {s.chi2:.1f}, dof {s.dof}, "
                      f"{int(s.table.sum())} annotations; {_evidence(s)})")
            typ, sug = "label_bias", (f"check whether {s.variable} leaks into the labels; collect or rebalance data "
                                      "so each class appears across its values")
        parts.append(QualityIssues.block(typ, "warning", image=-1, score=min(1.0, 0.5 + 0.5 * s.cramers_v),
                                         reason=reason, suggestion=sug))
    return QualityIssues.build(parts)


def check_bias(ds: Dataset, config: CheckConfig = CheckConfig()) -> QualityIssues:
    """Flagged associations as issues."""
    return bias_issues(label_associations(ds, config=config))
