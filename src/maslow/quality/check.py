"""``check``: every rule-check family over one dataset, into one ranked ``QualityIssues`` table."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.quality.agreement import check_agreement
from maslow.quality.bias import check_bias
from maslow.quality.config import CheckConfig
from maslow.quality.consistency import check_consistency
from maslow.quality.geometry import check_geometry
from maslow.quality.issues import QualityIssues
from maslow.quality.overlaps import check_overlaps

log = logging.getLogger(__name__)


def _consistency(ds: Dataset, config: CheckConfig, schema: LabelSchema | None) -> QualityIssues:
    return check_consistency(ds, config, schema=schema)


CHECKS: dict[str, Callable[[Dataset, CheckConfig, LabelSchema | None], QualityIssues]] = {
    "geometry": lambda ds, c, s: check_geometry(ds, c),
    "overlaps": lambda ds, c, s: check_overlaps(ds, c),
    "consistency": _consistency,
    "agreement": lambda ds, c, s: check_agreement(ds, c),
    "bias": lambda ds, c, s: check_bias(ds, c),
}
"""Family name -> ``fn(ds, config, schema) -> QualityIssues``, in the order ``check`` runs them."""


def check(
    ds: Dataset,
    *,
    schema: LabelSchema | None = None,
    config: CheckConfig = CheckConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> QualityIssues:
    """Run the rule checks (no model needed) and rank every finding in one table.

    Args:
        ds: the dataset to check (ground truth; predictions work too).
        schema: the schema to check attributes against (allowed values, required); default ``ds.schema``.
        config: thresholds, the families to run (``CheckConfig.families``) and the finding types to leave out
            (``CheckConfig.ignore_types``).
        progress: optional ``progress(done, total)`` callback, called after each family.

    Returns:
        ``QualityIssues`` sorted by score, highest first.

    Example:
        >>> from maslow.sample import shapes
        >>> issues = check(shapes(24, seed=0))
        >>> sorted(set(issues.severity.tolist()) - {"info"})
        []
    """
    parts = []
    fams = [f for f in CHECKS if f in config.families]
    for n, fam in enumerate(fams):
        t = time.perf_counter()
        res = CHECKS[fam](ds, config, schema)
        log.info("quality %s: %d issues in %.2f s", fam, len(res), time.perf_counter() - t)
        parts.append(res)
        if progress is not None:
            progress(n + 1, len(fams))
    issues = QualityIssues.build(parts)
    if config.ignore_types:
        issues = issues.take(~np.isin(issues.type.astype(str), list(config.ignore_types)))
    return issues
