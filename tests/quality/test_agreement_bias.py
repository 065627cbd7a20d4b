"""Annotator agreement, bias and feature-space outliers."""

from __future__ import annotations

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.tables import Annotations
from maslow.core.types import obj_array
from maslow.quality import (
    CheckConfig,
    annotator_agreement,
    check,
    chi_square,
    cohen_kappa,
    embedding_outliers,
    fleiss_kappa,
    krippendorff_alpha,
    label_associations,
)
from maslow.sample import shapes

N = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers, 12 units, missing data
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
# Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories, kappa 0.210
FLEISS = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1], [7, 7, 0, 0, 0],
          [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def test_krippendorff_textbook_example() -> None:
    assert krippendorff_alpha(KRIPPENDORFF_2011) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_matches_the_reference_package() -> None:
    kd = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4, (5, 60)).astype(float)
    data[rng.random(data.shape) < 0.2] = np.nan
    ours = krippendorff_alpha(np.where(np.isnan(data), None, data).astype(object))
    assert ours == pytest.approx(kd.alpha(reliability_data=data, level_of_measurement="nominal"), abs=1e-9)


def test_fleiss_and_cohen() -> None:
    assert fleiss_kappa(FLEISS) == pytest.approx(0.210, abs=5e-4)
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, 80)
    y = np.where(rng.random(80) < 0.6, x, rng.integers(0, 4, 80))
    assert cohen_kappa(x, y) == pytest.approx(sk.cohen_kappa_score(x, y), abs=1e-12)
    assert cohen_kappa(x, x) == pytest.approx(1.0)


def _three_annotators(seed: int = 0) -> tuple[Dataset, dict[str, set[int]]]:
    """shapes labelled by a, b (faithful, jittered) and c (swaps 10 classes, misses 8 objects)."""
    base = shapes(60, seed=seed)
    a = base.annotations
    assert a.box is not None and a.iscrowd is not None
    keep = np.flatnonzero(~a.iscrowd)
    rng = np.random.default_rng(seed)
    parts, who, planted = [], [], {"swap": set(), "miss": set()}
    swap = set(rng.choice(keep, 10, replace=False).tolist())
    miss = set(rng.choice(sorted(set(keep.tolist()) - swap), 8, replace=False).tolist())
    cols: dict[str, list[object]] = {"image": [], "label": [], "box": [], "occluded": [], "src": []}
    for name in ("a", "b", "c"):
        for r in keep.tolist():
            if name == "c" and r in miss:
                continue
            lab = int(a.label[r])
            if name == "c" and r in swap:
                lab = (lab + 1) % 3
            cols["image"].append(int(a.image[r]))
            cols["label"].append(lab)
            cols["box"].append(a.box[r] + rng.normal(0, 0.5, 4) * [1, 1, 1, 1])
            cols["occluded"].append(a.attributes["occluded"][r])
            cols["src"].append(r)
            who.append(name)
    ann = Annotations.sort_rows(image=np.asarray(cols["image"]), label=np.asarray(cols["label"]),
                                box=np.asarray(cols["box"]), annotator=obj_array(who),
                                attributes={"occluded": obj_array(cols["occluded"])},
                                extra={"src": np.asarray(cols["src"])})
    ds = Dataset(schema=base.schema, images=base.images, annotations=ann)
    src = ds.annotations.extra["src"]
    assert ds.annotations.annotator is not None
    is_c = ds.annotations.annotator == "c"
    planted["swap"] = set(np.flatnonzero(is_c & np.isin(src, list(swap))).tolist())
    planted["miss"] = miss
    del parts
    return ds, planted


def test_agreement_finds_swapped_and_missed_objects() -> None:
    ds, planted = _three_annotators()
    res = annotator_agreement(ds)
    assert res is not None and res.annotators == ("a", "b", "c")
    assert 0.5 < res.fleiss_kappa < 1 and 0.5 < res.krippendorff_alpha < 1
    assert res.cohen_kappa[0, 1] == pytest.approx(1.0) and res.cohen_kappa[0, 2] < 1
    assert res.precision[0] == pytest.approx(1.0) and res.recall[0] == pytest.approx(1.0)
    assert res.precision[2] < 1 and res.recall[2] < 1
    assert res.attributes["occluded"]["krippendorff_alpha"] == pytest.approx(1.0)
    d = res.to_dict()
    assert d["iou"]["mean"] > 0.8 and len(d["ambiguous_images"]) >= 1
    issues = check(ds)
    dis = issues.of_type("annotator_class_disagreement")
    assert set(dis.annotation.tolist()) == planted["swap"]
    missed = issues.of_type("annotator_missed_object")
    src = ds.annotations.extra["src"]
    # an annotator counts as having labelled an image only when they left an annotation on it
    assert ds.annotations.annotator is not None
    c_images = set(ds.annotations.image[ds.annotations.annotator == "c"].tolist())
    base = shapes(60, seed=0).annotations
    expected = {r for r in planted["miss"] if int(base.image[r]) in c_images}
    assert len(expected) >= 4
    assert {int(src[r]) for r in missed.annotation.tolist()} == expected
    assert "c" in " ".join(issues.of_type("annotator_low_agreement").reason.tolist()) or res.precision[2] >= 0.8


def test_agreement_against_sklearn_per_pair() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    ds, _ = _three_annotators(seed=2)
    res = annotator_agreement(ds)
    assert res is not None
    lab = ds.annotations.label
    both = (res.unit_rows[:, 0] >= 0) & (res.unit_rows[:, 2] >= 0)
    x, y = lab[res.unit_rows[both, 0]], lab[res.unit_rows[both, 2]]
    assert res.cohen_kappa[0, 2] == pytest.approx(sk.cohen_kappa_score(x, y), abs=1e-12)


def test_no_annotators_means_no_agreement() -> None:
    assert annotator_agreement(shapes(10, seed=0)) is None


def test_bias_planted_association() -> None:
    ds = shapes(200, seed=0)
    a = ds.annotations
    # a metadata column that gives the class away: every image's "site" follows its first label
    first = np.full(ds.n_images, "none", dtype=object)
    for i in range(len(a) - 1, -1, -1):
        first[a.image[i]] = f"site{a.label[i]}"
    ds = ds.replace(images=ds.images.__class__(path=ds.images.path, width=ds.images.width, height=ds.images.height,
                                               split=ds.images.split, extra={**ds.images.extra, "site": first}))
    assoc = {s.variable: s for s in label_associations(ds)}
    assert assoc["site"].flagged and assoc["site"].cramers_v > 0.3
    assert not assoc["attr:colour"].flagged
    stats = pytest.importorskip("scipy.stats")
    chi2, p, dof, _ = stats.chi2_contingency(assoc["site"].table, correction=False)
    assert assoc["site"].chi2 == pytest.approx(chi2) and assoc["site"].dof == dof
    # an image-level column: p is the permutation p (no shuffle of the images reaches the planted chi2)
    assert p < 1e-6 and assoc["site"].unit == "image" and assoc["site"].n_images == len(np.unique(a.image))
    assert assoc["site"].p_value == pytest.approx(1 / (assoc["site"].n_permutations + 1))
    assert "label_bias" in check(ds).counts()


def test_annotator_label_bias() -> None:
    ds, _ = _three_annotators()
    a = ds.annotations
    assert a.annotator is not None
    label = a.label.copy()
    label[(a.annotator == "c")] = 2  # c calls everything a triangle
    ds = ds.replace(annotations=a.with_columns(label=label))
    issues = check(ds, config=CheckConfig(families=("bias",)))
    assert any(r.startswith("c labels") for r in issues.of_type("annotator_label_bias").reason.tolist())
    assert chi_square([[10, 0], [0, 10]])[2] == pytest.approx(1.0)


def test_embedding_outliers_synthetic() -> None:
    ds = shapes(120, seed=0)
    rng = np.random.default_rng(0)
    n = ds.n_annotations
    centres = rng.normal(0, 1, (3, 16))
    feats = centres[ds.annotations.label] + rng.normal(0, 0.05, (n, 16))
    crowd = ds.annotations.iscrowd
    assert crowd is not None
    planted = [int(r) for r in np.flatnonzero(~crowd & (ds.annotations.label == 0))[:3]]
    feats[planted] = centres[1] + rng.normal(0, 0.05, (3, 16))  # look like squares
    out = embedding_outliers(ds, feats, k=5)
    assert set(planted) <= set(out.annotation.tolist())
    assert all("square" in s for s in out.take(np.isin(out.annotation, planted)).suggestion.tolist())
    with pytest.raises(ValueError, match="features"):
        embedding_outliers(ds, feats[:5])


def test_crowded_boxes_are_matched_one_to_one() -> None:
    from maslow.core.schema import LabelSchema
    from maslow.core.tables import Images

    box = [[0, 0, 10, 10], [1, 0, 11, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]]
    ds = Dataset(schema=LabelSchema.from_names(["x", "y"]), images=Images(path=["i"], width=[100], height=[100]),
                 annotations=Annotations(image=np.zeros(5, np.int64), label=[0, 0, 0, 0, 1], box=box,
                                         annotator=obj_array(["a", "a", "b", "b", "b"])))
    res = annotator_agreement(ds)
    assert res is not None
    pairs = {tuple(sorted(int(r) for r in row if r >= 0)) for row in res.unit_rows}
    assert pairs == {(0, 3), (1, 2), (4,)}
    assert sorted(np.nan_to_num(res.unit_iou, nan=-1).tolist()) == [-1.0, 1.0, 1.0]
    assert res.precision.tolist() == [1.0, pytest.approx(2 / 3)]
