"""Level 1 of the pyramid: diverse raw data (counts and balance so far)."""

from maslow.diversity.stats import DatasetStats, dataset_stats

__all__ = ["DatasetStats", "dataset_stats"]
