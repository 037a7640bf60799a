"""Datasets: FI-2010 and LOBSTER limit order books, windows over CSV/Parquet series, and the TCN synthetic tasks.

Every dataset yields `(x, y)` with `x` float32 `(channels, time)`; class labels are int64 0 up / 1 stationary / 2 down.
"""

from dilated.data.fi2010 import FI2010_HORIZONS, FI2010_NORMALISATIONS, find_fi2010_files, load_fi2010, read_fi2010
from dilated.data.lobster import (
    LOBSTER_EMPTY_ASK,
    LOBSTER_EMPTY_BID,
    LobsterBook,
    ZScore,
    balanced_alpha,
    bundled_lobster_sample,
    fill_empty_levels,
    lobster_dataset,
    lobster_splits,
    movement_labels,
    read_lobster,
    smoothed_returns,
)
from dilated.data.synthetic import AddingProblem, CopyMemory
from dilated.data.windows import (
    DEFAULT_FRACTIONS,
    WindowDataset,
    chronological_split,
    read_table,
    split_bounds,
    table_dataset,
)

__all__ = [
    "DEFAULT_FRACTIONS",
    "FI2010_HORIZONS",
    "FI2010_NORMALISATIONS",
    "LOBSTER_EMPTY_ASK",
    "LOBSTER_EMPTY_BID",
    "AddingProblem",
    "CopyMemory",
    "LobsterBook",
    "WindowDataset",
    "ZScore",
    "balanced_alpha",
    "bundled_lobster_sample",
    "chronological_split",
    "fill_empty_levels",
    "find_fi2010_files",
    "load_fi2010",
    "lobster_dataset",
    "lobster_splits",
    "movement_labels",
    "read_fi2010",
    "read_lobster",
    "read_table",
    "smoothed_returns",
    "split_bounds",
    "table_dataset",
]
