"""Raw data as a trained run's data source reads it: :class:`Feed` (a recorded feed, one event per step), the
training z-score (:class:`Normalisation`), and one data kind per ``data.kind`` that reads raw files and prepares live
events the way training prepared them (:func:`data_kind`): LOBSTER file pairs, tables, Parquet books."""

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
    Book,
    book_labels,
    bundled_lobster_sample,
    fill_book_levels,
    fill_empty_levels,
    movement_labels,
    read_book,
    read_lobster,
    read_table,
    select_events,
    smoothed_returns,
    table_dataset,
    usable_events,
)
from dilated.training import data_override, read_data

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
        """From ``metrics.json``'s ``data.normalisation`` (``feature_mean``, ``feature_std``; ``mean``, ``std`` for
        books), or none."""
        if stats is None:
            return cls(np.zeros(channels), np.ones(channels))
        mean, std = ("feature_mean", "feature_std") if "feature_mean" in stats else ("mean", "std")
        return cls(np.array(stats[mean], dtype=np.float64), np.array(stats[std], dtype=np.float64))

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
        usable: ``(time,)`` bool, the events a window may hold (see :meth:`DataKind.unusable`); None: all.
    """

    raw: Tensor
    rows: Tensor
    targets: Tensor | None = None
    labelled: Tensor | None = None
    usable: Tensor | None = None

    def __len__(self) -> int:
        return self.raw.shape[-1]


def usable_windows(usable: Tensor | None, time: int, window: int) -> Tensor:
    """``(time - window + 1,)`` bool: which windows of ``window`` events (ending at steps ``window - 1`` on) hold
    only usable events."""
    if usable is None:
        return torch.ones(time - window + 1, dtype=torch.bool)
    bad = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum((~usable).long(), 0)])  # (time + 1,)
    return (bad[window:] - bad[: time - window + 1]) == 0


class DataKind(Protocol):
    """How one ``data.kind`` reads raw files and prepares raw events the way its training data was prepared."""

    def read(self, source: Any, by: str | None) -> dict[Hashable, Feed]: ...

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Raw rows ``(..., time, channels)`` as training prepared them; ``previous`` ``(..., channels)``: each
        feed's last prepared event before ``rows``."""
        ...

    def describe(self) -> str:
        """The features of an event, in words (for errors)."""
        ...

    def unusable(self, rows: np.ndarray) -> np.ndarray | None:
        """Prepared rows ``(..., channels)`` -> ``(...)`` bool: events no training window held, so no prediction is
        made from a window holding one (books: one-sided or crossed, a price level without a size); None: none."""
        return None


def data_kind(data: Mapping[str, Any], info: Mapping[str, Any], run: str) -> DataKind:
    """The data kind of a run's ``data:`` section (``info``: ``metrics.json``'s ``data``; ``run``: its folder, for
    errors)."""
    if data["kind"] == "lobster":
        return _LobsterData(data, info.get("alpha", data["alpha"]))
    if data["kind"] == "table":
        return _TableData(data)
    if data["kind"] == "book":
        return _BookData(data, info, run)
    return _ArrayData(data["kind"])


class _LobsterData(DataKind):
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
        """Empty levels filled, from ``previous`` where a whole side is empty."""
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


class _TableData(DataKind):
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


class _BookData(DataKind):
    """Parquet books of ``dilated data convert`` (:mod:`dilated.data._lob_labels`); an event is a book row's first
    ``levels`` levels (4 values each, prices in currency units), empty deeper levels filled as training fills them.
    Training served no window holding a one-sided or crossed book: such events are :meth:`unusable`."""

    def __init__(self, data: Mapping[str, Any], info: Mapping[str, Any], run: str) -> None:
        self.data, self.run, self.levels = data, run, int(data["levels"])
        self.threshold = float(info["threshold"])  # the run's label threshold, balanced on its training part

    def read(self, source: Any, by: str | None) -> dict[Hashable, Feed]:
        if by is not None:
            raise ValueError(f"--by {by}: one book file holds one instrument; --by splits table files")
        book = self._book(source)
        features = fill_book_levels(book.values)  # (events, 4 * levels)
        labels = torch.from_numpy(book_labels(book, self.data["horizon"], self.threshold, self.data["smoothing"]))
        raw = torch.from_numpy(features.T.copy())  # (4 * levels, events) float64
        usable = torch.from_numpy(~_unusable(book, features))
        return {None: Feed(raw, torch.arange(len(book)), labels, labels >= 0, usable)}

    def _book(self, source: Any) -> Book:
        """The run's levels of a Book, a Parquet book, a YAML file's ``data:`` or (None) the run's own data (the
        last two between their ``start`` and ``end``: the rows of ``dilated predict``); ``source``: its file."""
        if isinstance(source, Book):
            book, name = source, source.source or "the book"
        elif source is not None and not str(source).lower().endswith((".yaml", ".yml")):
            book, name = read_book(source), str(source)
        else:
            data = self.data if source is None else _override(self.data, str(source))
            book, name = select_events(read_book(data["path"]), data["start"], data["end"]), data["path"]
        if book.levels < self.levels:
            raise ValueError(
                f"{name}: the book holds {book.levels} levels per side; run {self.run} was trained on "
                f"{self.levels}: convert it with `dilated data convert --levels {self.levels}`"
            )
        return Book(book.ts, book.values[:, : 4 * self.levels], str(name))

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Empty deeper levels filled."""
        return fill_book_levels(rows.reshape(-1, rows.shape[-1])).reshape(rows.shape)

    def unusable(self, rows: np.ndarray) -> np.ndarray:
        flat = rows.reshape(-1, rows.shape[-1])
        return _unusable(Book(np.zeros(len(flat), dtype=np.int64), flat), flat).reshape(rows.shape[:-1])

    def describe(self) -> str:
        return f"book, {self.levels} levels x ask price, ask size, bid price, bid size"


def _unusable(book: Book, features: np.ndarray) -> np.ndarray:
    """``(events,)`` bool: one-sided, crossed (training serves no window holding them), or a price level without a
    size after filling (no feature to z-score)."""
    return ~usable_events(book) | ~np.isfinite(features).all(axis=1)


class _ArrayData(DataKind):
    """Data kinds without raw files to replay (FI-2010 files hold normalised features; synthetic tasks): arrays."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def read(self, source: Any, by: str | None) -> dict[Hashable, Feed]:
        raise ValueError(
            f"this run was trained on {self.kind} data: give its features as an array (channels, "
            "time); files are read for lobster, table and book runs"
        )

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        return rows

    def describe(self) -> str:
        return f"{self.kind} data"


def _override(data: Mapping[str, Any], spec: str) -> dict[str, Any]:
    """The run's ``data:`` section with ``dilated evaluate --data SPEC`` applied, as a dict."""
    return data_override(read_data(data), spec).to_dict()
