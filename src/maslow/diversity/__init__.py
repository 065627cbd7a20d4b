"""Level 1 of the pyramid: diverse raw data (counts, balance and remedies, duplicates, coverage, diverse
selection and ordering, outliers)."""

from maslow.diversity.balance import BalanceReport, balance, plot_balance
from maslow.diversity.coverage import CoverageReport, coverage, plot_coverage
from maslow.diversity.duplicates import DuplicateReport, find_duplicates, plot_duplicates, semantic_pairs
from maslow.diversity.stats import DatasetStats, dataset_stats

__all__ = [
    "BalanceReport",
    "CoverageReport",
    "DatasetStats",
    "DuplicateReport",
    "OutlierResult",
    "Selection",
    "balance",
    "coverage",
    "dataset_outliers",
    "dataset_stats",
    "find_duplicates",
    "folder_dataset",
    "outliers",
    "plot_balance",
    "plot_coverage",
    "plot_duplicates",
    "select",
    "semantic_pairs",
]
