"""Moved to :mod:`dilated.training.metrics` (and the metric table to :mod:`dilated.training.metric_table`); this
alias stays for code written against the old path."""

from dilated.training.metric_table import higher_is_better  # noqa: F401 - re-exported
from dilated.training.metrics import (  # noqa: F401 - re-exported
    TaskMetrics,
    classification_collection,
    classification_metrics,
    format_metrics,
    majority_baseline,
    regression_collection,
    regression_metrics,
    scalar_metrics,
)
