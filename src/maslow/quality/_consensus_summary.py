"""The summary of a label-error table: per image and per class counts, and the estimated error rate per class
and issue type (``maslow qa`` prints it; ``summarize(find_label_issues(...), truth)``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import FloatArray, IntArray
from maslow.quality.issues import QualityIssues

#: the issue types of ``maslow.quality.consensus``, in its order
ISSUE_TYPES = ("wrong_class", "missing", "extra", "low_iou", "ambiguous")


@dataclass(frozen=True)
class ConsensusSummary:
    """Per-image and per-class view of the issues, and an estimate of the error rate per class and type.

    Attributes:
        image_score: (n_images,) highest issue score of each image (0: none).
        image_counts: type -> (n_images,) issues of that type with score >= ``threshold``.
        class_counts: class -> type -> issues with score >= ``threshold`` (a missing object counts for its
            suggested class).
        class_totals: class -> number of truth annotations.
        error_rate: class -> type -> ``expected / total``, where ``expected`` is the sum of the scores (each
            score read as the chance the finding is real: an estimate, exact only for calibrated scores).
        flagged_rate: class -> type -> ``count / total`` (findings over ``threshold``).
        threshold: the score a finding needs to be counted.
    """

    image_score: FloatArray
    image_counts: dict[str, IntArray]
    class_counts: dict[str, dict[str, int]]
    class_totals: dict[str, int]
    error_rate: dict[str, dict[str, float]]
    flagged_rate: dict[str, dict[str, float]]
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (per-image arrays summarised by the images with any counted issue)."""
        flagged = {t: int((c > 0).sum()) for t, c in self.image_counts.items()}
        return {"threshold": self.threshold, "images_with_issue": flagged, "class_counts": self.class_counts,
                "class_totals": self.class_totals, "error_rate": self.error_rate, "flagged_rate": self.flagged_rate}


def _issue_class(issues: QualityIssues, truth: Dataset) -> IntArray:
    assert issues.label is not None
    ann = issues.annotation
    cls = np.where(ann >= 0, truth.annotations.label[np.maximum(ann, 0)] if truth.n_annotations else -1,
                   issues.label)
    return np.asarray(cls, np.int64)


def summarize(issues: QualityIssues, truth: Dataset, *, threshold: float = 0.5,
              scored: np.ndarray | None = None) -> ConsensusSummary:
    """Per-image and per-class summaries and the estimated error rates (see ``ConsensusSummary``); ``scored``:
    (n_images,) bool, the images the findings were looked for on (default all): ``class_totals`` counts their
    annotations only (an image the model was not run on is no evidence of a low error rate)."""
    names = truth.schema.names
    m = truth.n_images
    img_score = np.zeros(m)
    on = issues.image >= 0
    np.maximum.at(img_score, issues.image[on], issues.score[on])
    counted = on & (issues.score >= threshold)
    image_counts = {t: np.bincount(issues.image[counted & (issues.type == t)], minlength=m).astype(np.int64)
                    for t in ISSUE_TYPES}
    cls = _issue_class(issues, truth)
    k, n_types = len(names), len(ISSUE_TYPES)
    on_scored = slice(None) if scored is None else np.asarray(scored, bool)[truth.annotations.image]
    totals = np.bincount(truth.annotations.label[on_scored], minlength=k)
    # one pass over the issues per type and one bincount per table, not a comparison of every issue per class
    # and type (1,203 LVIS classes: about 50 s for 900,000 issues)
    code = np.full(len(issues), -1, np.int64)
    for j, t in enumerate(ISSUE_TYPES):
        code[issues.type == t] = j
    ok = (cls >= 0) & (cls < k) & (code >= 0)
    pair = cls[ok] * n_types + code[ok]
    above = issues.score[ok] >= threshold
    counts = np.bincount(pair[above], minlength=k * n_types).reshape(k, n_types)
    sums = np.bincount(pair, weights=issues.score[ok], minlength=k * n_types).reshape(k, n_types)
    class_counts: dict[str, dict[str, int]] = {}
    rate: dict[str, dict[str, float]] = {}
    flagged: dict[str, dict[str, float]] = {}
    for c, name in enumerate(names):
        n = max(int(totals[c]), 1)
        class_counts[name] = {t: int(counts[c, j]) for j, t in enumerate(ISSUE_TYPES)}
        rate[name] = {t: float(sums[c, j]) / n for j, t in enumerate(ISSUE_TYPES)}
        flagged[name] = {t: class_counts[name][t] / n for t in ISSUE_TYPES}
    return ConsensusSummary(image_score=img_score, image_counts=image_counts, class_counts=class_counts,
                            class_totals={n: int(totals[c]) for c, n in enumerate(names)}, error_rate=rate,
                            flagged_rate=flagged, threshold=threshold)


def estimate_error_rates(issues: QualityIssues, truth: Dataset) -> dict[str, dict[str, float]]:
    """Estimated share of wrong annotations per class and issue type: ``summarize(...).error_rate``."""
    return summarize(issues, truth).error_rate
