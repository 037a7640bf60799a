"""Shared checks for the data loaders: find the first bad cell so that an error can name it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def first_non_number(cells: Sequence[str]) -> int | None:
    """Index of the first cell that `float()` rejects, or None when every cell is a number."""
    for index, cell in enumerate(cells):
        try:
            float(cell)
        except ValueError:
            return index
    return None


def first_non_finite(values: np.ndarray) -> tuple[int, ...] | None:
    """Index (one entry per axis) of the first NaN or infinity in `values`, or None when all are finite."""
    bad = np.argwhere(~np.isfinite(values))
    return tuple(int(i) for i in bad[0]) if len(bad) else None
