"""Level 1 of the pyramid: diverse raw data (counts, balance and remedies, duplicates, coverage, odd images,
diverse selection and ordering, outliers)."""

from maslow.diversity.balance import BalanceReport, balance, plot_balance
from maslow.diversity.coverage import CoverageReport, coverage, plot_coverage
from maslow.diversity.duplicates import DuplicateReport, find_duplicates, plot_duplicates, semantic_pairs
from maslow.diversity.issues import ImageIssues, IssueRules, image_issues
from maslow.diversity.outliers import OutlierResult, dataset_outliers
from maslow.diversity.select import Selection, folder_dataset
from maslow.diversity.stats import DatasetStats, dataset_stats

# ``select`` and ``outliers`` are also the names of their modules: import them from there
# (``from maslow.diversity.select import select``), so that ``maslow.diversity.select`` stays the module.

__all__ = [
    "BalanceReport",
    "CoverageReport",
    "DatasetStats",
    "DuplicateReport",
    "ImageIssues",
    "IssueRules",
    "OutlierResult",
    "Selection",
    "balance",
    "coverage",
    "dataset_outliers",
    "dataset_stats",
    "find_duplicates",
    "folder_dataset",
    "image_issues",
    "plot_balance",
    "plot_coverage",
    "plot_duplicates",
    "semantic_pairs",
]
