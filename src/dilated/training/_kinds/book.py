"""``book``: a Parquet order book of ``dilated data convert`` (:func:`dilated.data.book_splits`: smoothed mid-price
labels, chronological parts with a gap of window + horizon events, z-scores of the training part), or one instrument
of a dataset folder of ``dilated data convert -o DIR/`` (:func:`dilated.data.dataset_splits`: the parts are days,
windows never cross a day, statistics streamed over the training days, each day memory-mapped, so memory does not
grow with the days); an event is a book row's first ``levels`` levels (4 values each, prices in currency units),
empty deeper levels filled as training fills them, which the model reads in a ``representation``
(:mod:`dilated.data._book_features`: ``raw``, ``stationary`` or ``order_flow``), scaled with the training part's
statistics. Training serves no window holding a one-sided or crossed book: such events are unusable."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from dilated import data
from dilated.training._kinds.base import FRACTIONS_HELP, DataSource, Feed, Splits, data_kind, lob_task, shape_of
from dilated.training._schema import option

if TYPE_CHECKING:
    import numpy as np

    from dilated.data import Book
    from dilated.training._metric_table import TaskKind
    from dilated.training._objective import Task


@data_kind
@dataclass(frozen=True)
class BookData(DataSource):
    """A Parquet order book written by ``dilated data convert``: FI-2010-style features, smoothed mid-price labels."""

    kind: ClassVar[str] = "book"
    path: str = option(help="a Parquet book (dilated data convert), or a dataset folder (dilated data convert -o DIR/)")
    instrument: str | None = option(None, "the instrument of a dataset folder (null: its only one)")
    levels: int = option(10, "book levels used as features (4 per level)")
    window: int = option(100, "events per input window")
    horizon: int = option(10, "label horizon k in events")
    threshold: float | None = option(
        None,
        "label threshold on the smoothed change, in threshold_unit; null: a third of the training labels "
        "stationary (spread: 1)",
    )
    threshold_unit: Literal["fraction", "ticks", "spread"] = option(
        "fraction", "the threshold counts: a fraction of the mid, ticks, or times the mean training spread / mid (TLOB)"
    )
    smoothing: Literal["future", "past", "tlob"] = option(
        "future",
        "label rule: mean of the next k mids vs the current (future, FI-2010), vs the mean of the past k (past), "
        "or the mean of smoothing_window mids ending k ahead vs that ending now (tlob)",
    )
    smoothing_window: int = option(10, "tlob: mids in each mean (at most the horizon)")
    representation: Literal["raw", "stationary", "stationary_levels", "order_flow"] = option(
        "raw",
        "model inputs: raw levels z-scored (FI-2010); stationary: prices in ticks from the mid, log sizes, mid change "
        "and spread; stationary_levels: its level channels alone, in the raw layout (for DeepLOB); order_flow: "
        "order-flow imbalance per level, mid change and spread (all but raw robustly scaled, clipped)",
    )
    tick_size: float | None = option(
        None,
        "the instrument's tick, for stationary / order_flow inputs and ticks thresholds; null: a dataset folder's "
        "manifest, else the smallest gap between adjacent levels of the training part",
    )
    fractions: tuple[float, ...] = option(
        (0.7, 0.15, 0.15), f"{FRACTIONS_HELP}; of a dataset folder's days (each part at least one day)"
    )
    days: tuple[tuple[str | int, ...], ...] | None = option(
        None, "a dataset folder's [train, validation, test] days (lists of ISO dates or indices), instead of fractions"
    )
    stride: int = option(1, "serve window ends at multiples of this many events only")
    start: str | None = option(None, "first event time kept (ISO, UTC), e.g. the session open")
    end: str | None = option(None, "events before this time are kept (ISO, UTC)")

    @property
    def task_kind(self) -> TaskKind:
        return "classification"

    def build(self, stats: dict[str, Any] | None, progress: bool) -> Splits:

        options: dict[str, Any] = {
            "levels": self.levels,
            "window": self.window,
            "horizon": self.horizon,
            "threshold": self.threshold,
            "threshold_unit": self.threshold_unit,
            "smoothing": self.smoothing,
            "smoothing_window": self.smoothing_window,
            "representation": self.representation,
            "tick_size": self.tick_size,
            "fractions": tuple(float(f) for f in self.fractions),
            "stride": self.stride,
            "start": self.start,
            "end": self.end,
            "scaling": None if stats is None else _scaling(stats),  # a run's
        }
        from dilated.training._lob_baseline import LobReferences, lob_references

        references = LobReferences(self.window)
        if data.is_book_dataset(self.path):
            parts: data.BookSplits | data.DaySplits = data.dataset_splits(
                self.path, self.instrument, progress=progress, selection=self._days(), visit=references.visit, **options
            )
        else:
            if self.instrument is not None or self.days is not None:
                key = "instrument" if self.instrument is not None else "days"
                raise ValueError(f"{self.path}: {key} applies to a dataset folder, not to a book file")
            parts = data.book_splits(self.path, **options)
        channels, length = shape_of(parts.train)
        scaled = "zscore" if "zscore" in parts.info else "scaling"
        info = {k: v for k, v in parts.info.items() if k != scaled} | {"normalisation": parts.info[scaled]}
        splits = Splits(parts.train, parts.val, parts.test, lob_task(), channels, length, parts.full, info)
        # the logistic references, fitted on a bounded sample of the training windows (of every training day)
        splits.references = lob_references(parts) if isinstance(parts, data.BookSplits) else references.scores()
        return splits

    def _days(self) -> list[list[str | int]] | None:
        """``days`` as three lists of ISO dates (YAML reads unquoted dates as dates) or indices."""
        if self.days is None:
            return None
        if len(self.days) != 3 or not all(isinstance(part, (list, tuple)) for part in self.days):
            raise ValueError(f"days: expected [train, validation, test] lists of days; got {list(self.days)}")
        return [[d if isinstance(d, int) else str(d) for d in part] for part in self.days]

    @property
    def normalises(self) -> bool:
        return True

    def as_trained(self, info: Mapping[str, Any]) -> BookData:
        """The run's label threshold (balanced on its training part where the config left it null; a fraction for
        ``spread``) and tick."""
        return dataclasses.replace(
            self,
            threshold=float(info["threshold"]),
            threshold_unit=info.get("threshold_unit", "fraction"),
            tick_size=info.get("tick_size", self.tick_size),
        )

    def run_task(self, info: Mapping[str, Any]) -> Task:
        return lob_task()

    def read_events(self, source: Any, by: str | None) -> dict[Hashable, Feed]:
        """``source``: a Parquet book or a :class:`~dilated.data.Book` (None: the section's book between its
        ``start`` and ``end``, the rows of ``dilated predict``). Labelled with ``threshold`` (a run's: :meth:`as_trained`);
        unlabelled where it is null."""
        import torch

        if by is not None:
            raise ValueError(f"--by {by}: one book file holds one instrument; --by splits table files")
        book = self._book(source)
        features = data.fill_book_levels(book.values)  # (events, 4 * levels)
        raw = torch.from_numpy(features.T.copy())  # (4 * levels, events) float64
        usable = torch.from_numpy(~_unusable(book, features))
        if self.threshold is None:  # no threshold to label with
            return {None: Feed(raw, torch.arange(len(book)), usable=usable)}
        labels = torch.from_numpy(data.book_labels(book, self._rule(), self.threshold))
        return {None: Feed(raw, torch.arange(len(book)), labels, labels >= 0, usable)}

    def _book(self, source: Any) -> Book:
        """The section's levels of a Book, a Parquet book or (None) the section's own book."""
        if isinstance(source, data.Book):
            book, name = source, source.source or "the book"
        elif source is not None:
            book, name = data.read_book(source), str(source)
        elif data.is_book_dataset(self.path):
            raise ValueError(f"{self.path}: a dataset folder; give a book file (one of its days' parts) to read events")
        else:
            book, name = data.select_events(data.read_book(self.path), self.start, self.end), self.path
        if book.levels < self.levels:
            raise ValueError(
                f"{name}: the book holds {book.levels} levels per side; the run was trained on "
                f"{self.levels}: convert it with `dilated data convert --levels {self.levels}`"
            )
        return data.Book(book.ts, book.values[:, : 4 * self.levels], str(name))

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Empty deeper levels filled."""
        return data.fill_book_levels(rows.reshape(-1, rows.shape[-1])).reshape(rows.shape)

    def _rule(self) -> data.LabelRule:
        tick = self.tick_size if self.threshold_unit == "ticks" else None
        return data.LabelRule(self.horizon, self.smoothing, self.smoothing_window, tick)

    def inputs(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """The representation of filled levels (the run's tick: :meth:`as_trained`)."""
        return data.book_inputs(rows, self.representation, self.tick_size, previous)

    def event_values(self, channels: int) -> int:
        return 4 * self.levels

    def unusable(self, rows: np.ndarray) -> np.ndarray:
        import numpy as np

        flat = rows.reshape(-1, rows.shape[-1])
        return _unusable(data.Book(np.zeros(len(flat), dtype=np.int64), flat), flat).reshape(rows.shape[:-1])

    @property
    def event_features(self) -> str:
        return f"book, {self.levels} levels x ask price, ask size, bid price, bid size"


def _unusable(book: Book, features: np.ndarray) -> np.ndarray:
    """``(events,)`` bool: one-sided, crossed (training serves no window holding them), or a price level without a
    size after filling (no feature to z-score)."""
    import numpy as np

    return ~data.usable_events(book) | ~np.isfinite(features).all(axis=1)


def _scaling(stats: Mapping[str, Any]) -> data.ZScore | data.RobustScale:
    """A run's input scaling from ``metrics.json``'s ``data.normalisation``."""
    import numpy as np

    if "center" in stats:
        return data.RobustScale.from_info(stats)
    return data.ZScore(np.array(stats["mean"]), np.array(stats["std"]))
