"""Clean ground truth without a model: rule checks, annotator agreement, bias, feature-space outliers.

``check(ds)`` runs every rule-check family and returns one ranked ``QualityIssues`` table (the table the
model-based consensus scoring will also fill). The families, also callable one by one:

- ``geometry``: zero-area, degenerate and out-of-bounds boxes, bad polygons, empty or mismatched masks, size
  outliers per class, keypoints outside their box (``maslow.quality.geometry``), and on oriented data the corners of
  the oriented boxes (``maslow.quality.oriented``);
- ``overlaps``: duplicate boxes and class conflicts (``maslow.quality.overlaps``);
- ``consistency``: missing common classes, count outliers, attribute values (``maslow.quality.consistency``);
- ``agreement``: annotator agreement (kappas, alpha, IoU spread, precision/recall) (``maslow.quality.agreement``);
- ``bias``: class vs metadata/attributes/annotator associations (``maslow.quality.bias``).

``embedding_outliers(ds, features)`` scores annotations far from their class in any feature space.

``find_label_issues(truth, pred)`` (``maslow.quality.consensus``) ranks label errors from out-of-fold model
predictions (wrong class, missing, extra, low IoU, ambiguous) into the same table.
"""

from maslow.quality.agreement import (
    AgreementResult,
    annotator_agreement,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
)
from maslow.quality.bias import Association, chi_square, label_associations
from maslow.quality.check import CHECKS, check
from maslow.quality.config import FAMILIES, CheckConfig
from maslow.quality.consensus import ConsensusSummary, estimate_error_rates, find_label_issues, summarize
from maslow.quality.issues import QualityIssues
from maslow.quality.outliers import crop_outliers, embedding_outliers
from maslow.quality.report import write_html

__all__ = [
    "CHECKS",
    "FAMILIES",
    "AgreementResult",
    "Association",
    "CheckConfig",
    "ConsensusSummary",
    "QualityIssues",
    "annotator_agreement",
    "check",
    "chi_square",
    "cohen_kappa",
    "crop_outliers",
    "embedding_outliers",
    "estimate_error_rates",
    "find_label_issues",
    "fleiss_kappa",
    "krippendorff_alpha",
    "label_associations",
    "summarize",
    "write_html",
]
