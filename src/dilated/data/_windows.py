"""Windowed datasets over a time series, and the one window convention every loader in `dilated.data` shares.

Convention: a sample is the window of `window` consecutive steps ending at (and including) step `e`, paired with
`targets[e]`, exactly as DeepLOB's `data_classification` pairs `X[i-T:i]` with `Y[i-1]` (Zhang, Zohren & Roberts
2019, github.com/zcakhaa/DeepLOB-Deep-Convolutional-Neural-Networks-for-Limit-Order-Books). Each loader stores at
`targets[e]` what the window ending at `e` must predict, so a window never holds a step after the one its target is
anchored to. `x` is float32 `(channels, window)`; a DataLoader batch is `(batch, channels, time)`.

`table_dataset` builds such windows from a CSV or Parquet file (pandas, and pyarrow for Parquet, imported only there).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from dilated.data._checks import first_non_finite

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


class WindowDataset(Dataset[tuple[Tensor, Tensor]]):
    """Windows over a channels-first series, served by indexing (no window is materialised).

    Args:
        features: `(channels, time)` array or tensor.
        targets: `(time, ...)`; `targets[e]` is the target of the window ending at step `e`. Integer targets are kept
            as int64 (class labels), floating ones become float32.
        window: steps per window.
        ends: ascending window end steps to serve, each in `[window - 1, time - 1]`.
        lookahead: how many steps after its end a sample's target was computed from (0 when the target depends on the
            window only); `chronological_split` uses it so that no target reaches into the next part.

    Returns (per item): `x` float32 `(channels, window)` and `targets[e]`.
    """

    def __init__(
        self,
        features: np.ndarray | Tensor,
        targets: np.ndarray | Tensor,
        window: int,
        ends: Sequence[int] | np.ndarray | Tensor,
        lookahead: int = 0,
    ) -> None:
        self.features = _tensor(features).float().contiguous()  # (C, T)
        targets = _tensor(targets)
        self.targets = targets.float() if targets.is_floating_point() else targets.long()
        self.ends = _tensor(ends).long()
        self.window = window
        self.lookahead = lookahead
        time = self.features.shape[-1]
        if self.features.ndim != 2 or len(self.targets) != time:
            raise ValueError(
                f"features must be (channels, time) and targets (time, ...); got {tuple(self.features.shape)} "
                f"and {tuple(self.targets.shape)}"
            )
        if window < 1 or lookahead < 0:
            raise ValueError(f"window must be >= 1 and lookahead >= 0; got window={window}, lookahead={lookahead}")
        if len(self.ends) == 0:
            raise ValueError(
                f"no complete window: {time} steps hold no window of {window} steps with a target "
                f"{lookahead} steps ahead; use a smaller window or horizon, or more data"
            )
        if self.ends[0] < window - 1 or self.ends[-1] >= time or bool((self.ends.diff() <= 0).any()):
            raise ValueError(f"ends must ascend within [{window - 1}, {time - 1}] (window {window}, {time} steps)")

    @property
    def channels(self) -> int:
        return self.features.shape[0]

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        end = int(self.ends[index])
        return self.features[:, end - self.window + 1 : end + 1], self.targets[end]

    def subset(self, ends: Tensor) -> WindowDataset:
        """The same series served only at `ends` (shares the feature and target tensors)."""
        return WindowDataset(self.features, self.targets, self.window, ends, self.lookahead)


def _tensor(values: np.ndarray | Tensor | Sequence[int]) -> Tensor:
    """A tensor as it is, anything else copied (numpy arrays may be read-only, e.g. from pandas)."""
    return values if isinstance(values, Tensor) else torch.from_numpy(np.array(values))


def split_bounds(length: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> list[tuple[int, int]]:
    """Chronological `[start, stop)` step ranges, one per fraction (e.g. train/val/test), covering `range(length)`."""
    if not fractions or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be positive and sum to 1 (e.g. (0.7, 0.15, 0.15)); got {tuple(fractions)}")
    cuts = [0, *(round(length * f) for f in np.cumsum(fractions)[:-1]), length]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def chronological_split(
    dataset: WindowDataset, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> tuple[WindowDataset, ...]:
    """Split a dataset into consecutive parts of its time axis (no shuffling across time).

    A sample belongs to the part that holds its whole window and the `lookahead` steps its target was computed from;
    samples straddling a boundary are dropped, so no part sees a step of another.
    """
    starts = dataset.ends - dataset.window + 1
    parts = []
    for number, (start, stop) in enumerate(split_bounds(dataset.features.shape[1], fractions)):
        keep = (starts >= start) & (dataset.ends + dataset.lookahead < stop)
        if not keep.any():
            raise ValueError(
                f"part {number} (steps {start} to {stop - 1}) holds no window of {dataset.window} steps plus "
                f"{dataset.lookahead} steps ahead; use larger fractions, a smaller window, or more data"
            )
        parts.append(dataset.subset(dataset.ends[keep]))
    return tuple(parts)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a `.csv` (pandas) or `.parquet` / `.pq` (pandas with pyarrow) file."""
    import pandas as pd

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise ValueError(f"{path}: unknown file type {suffix!r}; use a .csv or .parquet file")


def table_dataset(
    data: str | Path | pd.DataFrame,
    target: str,
    features: Sequence[str],
    window: int,
    horizon: int = 1,
    task: Literal["regression", "classification"] = "regression",
) -> WindowDataset:
    """Windows over the rows of a table (one row per time step, in time order).

    Args:
        data: a `.csv` / `.parquet` path or a DataFrame.
        target: the column to predict: a number (regression) or a class id 0, 1, 2, ... (classification).
        features: the input columns (they may include `target`).
        window: rows per window.
        horizon: the target is read `horizon` rows after the window's last row (0: at the last row, for class columns
            that already describe the future, like FI-2010's labels).

    Returns: a `WindowDataset` of `x` float32 `(len(features), window)` and `y` float32 (regression) or int64
    (classification); split it with `chronological_split`.
    """
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification'; got {task!r}")
    if horizon < 0:
        raise ValueError(f"horizon must be >= 0 rows; got {horizon}")
    source = "DataFrame" if not isinstance(data, (str, Path)) else str(data)
    frame = data if not isinstance(data, (str, Path)) else read_table(data)
    columns = [*features, target]
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: no column {missing}; the columns are {list(frame.columns)}")
    values = _numeric(frame, columns, source)  # (rows, features + 1)
    series = values[:, -1]
    if task == "classification":
        bad = np.flatnonzero((series != np.round(series)) | (series < 0))
        if len(bad):
            raise ValueError(
                f"{source}: column {target!r}, data row {bad[0]} is {series[bad[0]]}; class ids must be integers "
                "0, 1, 2, ... (map the classes to ids first)"
            )
        series = series.astype(np.int64)
    rows = len(frame)
    targets = np.zeros(rows, dtype=series.dtype)
    targets[: rows - horizon] = series[horizon:]
    ends = np.arange(window - 1, rows - horizon)
    return WindowDataset(values[:, :-1].T, targets, window, ends, lookahead=horizon)


def _numeric(frame: pd.DataFrame, columns: list[str], source: str) -> np.ndarray:
    """The columns as a float64 `(rows, columns)` array; errors name the first non-number or NaN/inf cell."""
    import pandas as pd

    for column in columns:
        raw = frame[column]
        if not pd.api.types.is_numeric_dtype(raw):
            bad = np.flatnonzero(pd.to_numeric(raw, errors="coerce").isna() & raw.notna())
            if len(bad):
                raise ValueError(
                    f"{source}: column {column!r}, data row {bad[0]} (0-based, header not counted) is "
                    f"{raw.iloc[bad[0]]!r}, not a number; fix or drop that row"
                )
    values = frame[columns].apply(pd.to_numeric).to_numpy(dtype=np.float64)
    bad_cell = first_non_finite(values)
    if bad_cell is not None:
        row, col = bad_cell
        raise ValueError(
            f"{source}: column {columns[col]!r}, data row {row} (0-based, header not counted) is {values[row, col]}; "
            "fill or drop missing / infinite values first"
        )
    return values
