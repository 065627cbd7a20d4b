"""QualityIssues against a plain-Python reading of its docstring: ranking (score descending, ties in the order
found), top, of_type, counts, severity_of, to_dict (the suggested class and box as ``maslow qa`` writes them), and
refused input."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from maslow.quality import QualityIssues

TYPES = ("zero_area_box", "duplicate_box", "wrong_class", "missing")
NAMES = ("cat", "dog", "bird")


def _parts(seed: int) -> tuple[list[QualityIssues], list[dict[str, object]]]:
    """Random blocks with many tied scores, and the same rows as dicts in the order they were found; some blocks
    suggest a class and/or a box (as model-based findings do), some have no suggestion text."""
    rng = np.random.default_rng(seed)
    parts, found = [], []
    for b in range(rng.integers(1, 6)):
        n = int(rng.integers(0, 8))
        t = TYPES[int(rng.integers(0, len(TYPES)))]
        sev = ("error", "warning", "info")[int(rng.integers(0, 3))]
        score = rng.choice([0.0, 0.25, 0.5, 1.0], n)  # ties across and within blocks
        image, ann, other = rng.integers(-1, 9, n), rng.integers(-1, 30, n), rng.integers(-1, 30, n)
        reason = [f"r{b}.{i}" for i in range(n)]
        text = f"s{b}" if rng.random() < 0.7 else ""
        label = rng.integers(-1, len(NAMES), n) if rng.random() < 0.5 else np.full(n, -1)
        box = None
        if rng.random() < 0.5:
            xy = rng.uniform(0, 50, (n, 2))
            box = np.c_[xy, xy + rng.uniform(0.5, 20, (n, 2))]
            box[rng.random(n) < 0.3] = np.nan  # rows without a suggested box
        parts.append(QualityIssues.block(t, sev, image=image, annotation=ann, other=other, score=score,
                                         reason=reason, suggestion=text, box=box, label=label))
        for i in range(n):
            cls = NAMES[int(label[i])] if label[i] >= 0 else None
            xyxy = None if box is None or np.isnan(box[i]).any() else [float(v) for v in box[i]]
            sug = None if cls is None and xyxy is None and not text else {"class": cls, "box_xyxy": xyxy,
                                                                         "keypoints": None, "text": text}
            found.append({"image": int(image[i]), "annotation": int(ann[i]), "other": int(other[i]), "type": t,
                          "severity": sev, "score": float(score[i]), "reason": reason[i], "suggestion": sug})
    return parts, found


@pytest.mark.parametrize("seed", range(6))
def test_ranking_and_views_match_a_plain_reading(seed: int) -> None:
    parts, found = _parts(seed)
    issues = QualityIssues.build(parts)
    ranked = sorted(found, key=lambda r: -float(r["score"]))  # type: ignore[arg-type]  # sorted() is stable
    assert issues.rows(names=NAMES) == ranked
    for n in (-1, 0, 1, 3, len(found), len(found) + 5):
        assert issues.top(n).rows(names=NAMES) == ranked[: max(n, 0)]
    for t in TYPES:
        assert issues.of_type(t).rows(names=NAMES) == [r for r in ranked if r["type"] == t]
    counts = Counter(r["type"] for r in ranked)
    assert issues.counts() == dict(counts)
    assert list(issues.counts().values()) == sorted(counts.values(), reverse=True)
    first: dict[str, str] = {}
    for r in ranked:
        first.setdefault(str(r["type"]), str(r["severity"]))
    assert issues.severity_of() == first
    d = issues.to_dict(limit=2, names=NAMES)
    assert d["n_issues"] == len(found) and d["issues"] == ranked[:2]
    assert d["severity"] == dict(Counter(r["severity"] for r in ranked))
    assert QualityIssues.build([issues]).rows(names=NAMES) == ranked  # ranking a ranked table changes nothing


def test_scores_are_clipped_or_refused() -> None:
    b = QualityIssues.block("t", "info", image=[0, 1], score=[-0.5, 1.5], reason="r")
    assert b.score.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="score: must be in"):
        QualityIssues.block("t", "info", image=[0], score=[np.nan], reason="r")
    with pytest.raises(ValueError, match="severity must be one of"):
        QualityIssues.block("t", "fatal", image=[0], score=0.5, reason="r")
    with pytest.raises(ValueError, match="reason: length must be 2, got 3"):
        QualityIssues.block("t", "info", image=[0, 1], score=0.5, reason=["a", "b", "c"])
    e = QualityIssues.empty()
    assert len(e) == 0 and e.counts() == {} and e.to_dict() == {"n_issues": 0, "counts": {}, "severity": {},
                                                               "issues": []}
