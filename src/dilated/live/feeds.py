"""Raw data as a trained run's data source reads it: :class:`Feed` (a recorded feed, one event per step), the
training z-score (:class:`Normalisation`), and one data kind per ``data.kind`` that reads raw files and prepares live
events the way training prepared them (:func:`data_kind`)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import Tensor

from dilated.data import (
    LOBSTER_EMPTY_ASK,
    LOBSTER_EMPTY_BID,
    bundled_lobster_sample,
    fill_empty_levels,
    movement_labels,
    read_lobster,
    read_table,
    smoothed_returns,
    table_dataset,
)
from dilated.training.config import data_override, read_data

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Normalisation:
    """The per-feature z-score ``(x - mean) / std`` of the training inputs (mean 0, std 1 where there was none).

    Attributes:
        mean, std: ``(channels,)`` float64.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any] | None, channels: int) -> Normalisation:
        """From ``metrics.json``'s ``data.normalisation`` (``feature_mean``, ``feature_std``), or none."""
        if stats is None:
            return cls(np.zeros(channels), np.ones(channels))
        return cls(np.array(stats["feature_mean"], dtype=np.float64), np.array(stats["feature_std"], dtype=np.float64))

    def __call__(self, raw: np.ndarray | Tensor) -> Tensor:
        """``(..., channels, time)`` raw values -> float32 z-scores (computed in float64, as training did)."""
        z = (np.asarray(raw, dtype=np.float64) - self.mean[:, None]) / self.std[:, None]
        return torch.from_numpy(z.astype(np.float32))


@dataclass(frozen=True)
class Feed:
    """A recorded feed as a live one delivers it: one raw event (or table row) per step.

    Attributes:
        raw: ``(channels, time)`` raw features, read as the run's data source reads them.
        rows: ``(time,)`` int64, each step's row in its file (the ``sample`` column of ``dilated predict``).
        targets: ``(time,)`` what the window ending at each step should predict (class id, or the value in the
            data's units), where ``labelled``; None for data without targets.
        labelled: ``(time,)`` bool.
    """

    raw: Tensor
    rows: Tensor
    targets: Tensor | None = None
    labelled: Tensor | None = None

    def __len__(self) -> int:
        return self.raw.shape[-1]


class DataKind(Protocol):
    """How one ``data.kind`` reads raw files and prepares raw events the way its training data was prepared."""

    def read(self, source: Any, by: str | None) -> dict[Hashable, Feed]: ...

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray: ...

    def describe(self) -> str:
        """The features of an event, in words (for errors)."""
        ...


def data_kind(data: Mapping[str, Any], info: Mapping[str, Any]) -> DataKind:
    """The data kind of a run's ``data:`` section (``info``: ``metrics.json``'s ``data``)."""
    if data["kind"] == "lobster":
        return _LobsterData(data, info.get("alpha", data["alpha"]))
    if data["kind"] == "table":
        return _TableData(data)
    return _ArrayData(data["kind"])


class _LobsterData:
    """LOBSTER message/orderbook pairs; an event is an orderbook row (4 values per level, prices x 10000)."""

    def __init__(self, data: Mapping[str, Any], alpha: float) -> None:
        self.data, self.alpha = data, alpha

    def read(self, source: Any, by: str | None) -> dict[Hashable, Feed]:
        if by is not None:
            raise ValueError(f"--by {by}: one LOBSTER file pair holds one instrument; --by splits table files")
        message, orderbook = self._files(source)
        book = read_lobster(message, orderbook, levels=self.data["levels"])
        labels = torch.from_numpy(movement_labels(smoothed_returns(book.mid, self.data["horizon"]), self.alpha))
        raw = torch.from_numpy(book.snapshots.T.copy())  # (4 * levels, events) float64
        return {None: Feed(raw, torch.arange(len(book)), labels, labels >= 0)}

    def _files(self, source: Any) -> tuple[Any, Any]:
        if source is None:
            data = self.data
        elif isinstance(source, (tuple, list)) and len(source) == 2:
            return source[0], source[1]
        elif str(source).lower().endswith((".yaml", ".yml")):
            data = _override(self.data, str(source))
        else:
            return _lobster_pair(Path(source))
        if data["message"] is None:
            return bundled_lobster_sample()
        return data["message"], data["orderbook"]

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Empty levels filled; ``previous`` ``(..., channels)``: each book's last prepared event before ``rows``."""
        if not ((rows == LOBSTER_EMPTY_ASK) | (rows == LOBSTER_EMPTY_BID)).any():  # a full book: nothing to fill
            return rows
        if previous is None:
            return fill_empty_levels(rows, "the feed's first event")
        return fill_empty_levels(np.concatenate([previous[..., None, :], rows], axis=-2))[..., 1:, :]

    def describe(self) -> str:
        return f"LOBSTER, {self.data['levels']} levels x ask price, ask size, bid price, bid size"


def _lobster_pair(path: Path) -> tuple[Path, Path]:
    """A LOBSTER file and its partner by LOBSTER's naming (``..._message_10.csv`` / ``..._orderbook_10.csv``)."""
    name = path.name
    if path.suffix.lower() == ".csv" and "_message_" in name:
        return path, path.with_name(name.replace("_message_", "_orderbook_"))
    if path.suffix.lower() == ".csv" and "_orderbook_" in name:
        return path.with_name(name.replace("_orderbook_", "_message_")), path
    raise ValueError(
        f"{path}: this run reads LOBSTER data: give a LOBSTER message or orderbook file "
        "(TICKER_date_start_end_message_LEVELS.csv or ..._orderbook_LEVELS.csv) or a YAML file with a "
        "'data:' section"
    )


class _TableData:
    """CSV/Parquet tables, one row per time step; an event is a row's feature columns."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.features = list(data["features"] or [data["target"]])

    def read(self, source: Any, by: str | None) -> dict[Hashable, Feed]:
        frame = self._frame(source).reset_index(drop=True)  # row positions: the `sample` ids
        if by is None:
            return {None: self._feed(frame)}
        if by not in frame.columns:
            raise ValueError(f"--by {by}: no such column; the columns are {list(frame.columns)}")
        return {key: self._feed(group) for key, group in frame.groupby(by, sort=False)}

    def _frame(self, source: Any) -> pd.DataFrame:
        if source is None:
            return read_table(self.data["path"])
        if isinstance(source, (str, Path)):
            return read_table(
                _override(self.data, str(source))["path"] if str(source).lower().endswith((".yaml", ".yml")) else source
            )
        return source

    def _feed(self, frame: pd.DataFrame) -> Feed:
        data = self.data
        windows = table_dataset(frame, data["target"], self.features, data["window"], data["horizon"], data["task"])
        labelled = torch.zeros(windows.features.shape[1], dtype=torch.bool)
        labelled[windows.ends] = True
        return Feed(windows.features, torch.tensor(frame.index.to_numpy()), windows.targets, labelled)

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Rows rounded to float32, as a table's windows hold them."""
        return rows.astype(np.float32)

    def describe(self) -> str:
        return "table columns " + ", ".join(self.features)


class _ArrayData:
    """Data kinds without raw files to replay (FI-2010 files hold normalised features; synthetic tasks): arrays."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def read(self, source: Any, by: str | None) -> dict[Hashable, Feed]:
        raise ValueError(
            f"this run was trained on {self.kind} data: give its features as an array (channels, "
            "time); files are read for lobster and table runs"
        )

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        return rows

    def describe(self) -> str:
        return f"{self.kind} data"


def _override(data: Mapping[str, Any], spec: str) -> dict[str, Any]:
    """The run's ``data:`` section with ``dilated evaluate --data SPEC`` applied, as a dict."""
    return data_override(read_data(data), spec).to_dict()
