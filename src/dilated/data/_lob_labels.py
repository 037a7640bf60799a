"""Model-ready windows from a rebuilt book: smoothed mid-price labels, chronological splits, training-period z-scores.

Input: a :class:`~dilated.data._orderbook.Book` (or its Parquet file, :func:`~dilated.data._orderbook.read_book`).

- Labels (FI-2010, Ntakaris et al. 2018, as DeepLOB, Zhang et al. 2019, restates them), per horizon k events:
  ``smoothing="future"``: l_t = (mean(p_{t+1} .. p_{t+k}) - p_t) / p_t; ``smoothing="past"``: l_t = (mean(p_{t+1}
  .. p_{t+k}) - mean(p_{t-k+1} .. p_t)) / mean(p_{t-k+1} .. p_t). Class 0 up (l > threshold), 2 down
  (l < -threshold), 1 stationary. The threshold is per market: given, or (``threshold=None``) the one that makes a
  third of the training part's labels stationary (:func:`balanced_threshold`, training events only; 0 in a
  tick-bound market where more than a third of the changes are exactly 0); either way it is reported in ``info``.
  Means of mid-prices are exact (:class:`~dilated.data._lobster.MidSums`): an unchanged mid gives l = 0, never a
  float-rounding residue on the wrong side of a zero threshold.
- Usable events: both sides quoted and the book not crossed (best bid < best ask). A window is served only when its
  events, and the events its label reads, are all usable, so a crossed pre-open or an emptied book never enters.
- Features: the book's 4 x levels columns, empty deeper levels filled with the side's deepest quoted price and size 0
  (as :func:`~dilated.data._lobster.read_lobster` does); z-scored per feature with the mean and standard deviation of
  the usable events of the training part only.
- Splits: chronological by ``fractions`` of the events (:func:`~dilated.data._windows.chronological_split`): a sample
  belongs to a part only if its window and its label's horizon lie inside the part, so the last training sample's
  end and the first validation sample's end are at least window + horizon events apart (the same between
  validation and test). ``stride`` keeps only window ends at multiples of ``stride`` events (fewer, less
  overlapping samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dilated.data._choices import SMOOTHINGS
from dilated.data._lobster import MID_RESOLUTION, MidSums, ZScore, balanced_alpha, movement_labels, smoothed_returns
from dilated.data._orderbook import Book, check_levels, read_book
from dilated.data._windows import DEFAULT_FRACTIONS, WindowDataset, chronological_split, split_bounds

LOB_CLASS_NAMES = ("up", "stationary", "down")


def smoothed_change(mid: np.ndarray, horizon: int, smoothing: str = "future") -> np.ndarray:
    """l_t of the module notes per event; NaN where the horizon (or the past mean) runs off the series."""
    if smoothing not in SMOOTHINGS:
        raise ValueError(f"smoothing must be one of {', '.join(SMOOTHINGS)}; got {smoothing!r}")
    returns = smoothed_returns(mid, horizon)
    if smoothing == "future":
        return returns
    sums = MidSums.of(mid)
    change = np.full(len(mid), np.nan)
    labelled = np.arange(horizon - 1, len(mid) - horizon)
    future, future_gaps = sums.span(labelled + 1, labelled + horizon + 1)
    past, past_gaps = sums.span(labelled - horizon + 1, labelled + 1)
    past_mean = past * MID_RESOLUTION / horizon + sums.base
    change[labelled] = (future - past) * MID_RESOLUTION / horizon / past_mean
    change[labelled[future_gaps | past_gaps]] = np.nan
    return change


def balanced_threshold(train_returns: np.ndarray) -> tuple[float, str]:
    """The threshold that leaves a third of the training labels stationary, and how it was chosen: where more than a
    third of the smoothed changes are exactly 0 (a tick-bound market), it is 0 and more stay stationary."""
    alpha = balanced_alpha(train_returns)
    return alpha, threshold_rule(alpha)


def threshold_rule(alpha: float) -> str:
    """How a balanced threshold ``alpha`` was chosen (:func:`balanced_threshold`)."""
    if alpha > 0:
        return "a third of the training labels stationary"
    return "over a third of the training changes are exactly 0"


def usable_events(book: Book) -> np.ndarray:
    """``(events,)`` bool: both best levels quoted and best bid < best ask."""
    spread = book.spread
    return np.isfinite(spread) & (spread > 0)


def book_labels(book: Book, horizon: int, threshold: float, smoothing: str = "future") -> np.ndarray:
    """``(events,)`` int64 label per event (module notes), -1 where there is none: the horizon (or the past mean)
    runs off the series or reads an unusable event."""
    mid = np.where(usable_events(book), book.mid, np.nan)
    return movement_labels(smoothed_change(mid, horizon, smoothing), threshold)


def fill_book_levels(values: np.ndarray) -> np.ndarray:
    """Book values with each empty level's price set to the side's deepest quoted price and its size to 0; a side
    with no quote at all keeps NaN (such events are not usable)."""
    filled = values.copy()
    levels = np.arange(values.shape[1] // 4)
    for column in (0, 2):
        prices = filled[:, column::4]  # (events, levels), a view
        quoted = np.isfinite(prices)
        nearest = np.maximum.accumulate(np.where(quoted, levels, 0), axis=1)
        prices[:] = np.take_along_axis(prices, nearest, axis=1)
        sizes = filled[:, column + 1 :: 4]
        sizes[~quoted] = 0.0
    return filled


def time_ns(value: Any, name: str) -> int:
    """``value`` (an ISO time like ``2023-12-25T23:00``, UTC, or nanoseconds) in nanoseconds; ``name`` for errors."""
    try:
        return (
            int(value)
            if isinstance(value, (int, np.integer))
            else int(np.datetime64(str(value), "ns").astype(np.int64))
        )
    except ValueError:
        raise ValueError(f"{name} must be an ISO time (e.g. 2023-12-25T23:00) or nanoseconds; got {value!r}") from None


def in_time(ts: np.ndarray, start: Any = None, end: Any = None) -> np.ndarray:
    """``(events,)`` bool: ``start <= ts < end`` (:func:`time_ns` values; None: unbounded)."""
    keep = np.ones(len(ts), dtype=bool)
    if start is not None:
        keep &= ts >= time_ns(start, "start")
    if end is not None:
        keep &= ts < time_ns(end, "end")
    return keep


def select_events(book: Book, start: Any = None, end: Any = None) -> Book:
    """The events with ``start <= ts < end`` (ISO times like ``2023-12-25T23:00`` (UTC) or nanoseconds)."""
    keep = in_time(book.ts, start, end)
    if not keep.any():
        raise ValueError(
            f"{book.source}: no event between start {start} and end {end}; the book spans "
            f"{np.datetime64(int(book.ts[0]), 'ns')} to {np.datetime64(int(book.ts[-1]), 'ns')}"
        )
    return Book(book.ts[keep], book.values[keep], book.source, book.format, book.stats)


@dataclass
class BookSplits:
    """Train/validation/test windows of one book.

    Attributes:
        train, val, test: :class:`~dilated.data._windows.WindowDataset` of ``x`` float32 ``(4 * levels, window)``
            and ``y`` int64 in {0 up, 1 stationary, 2 down}.
        full: every served window (the three parts are subsets of it).
        book: the (selected) book the windows index: ``full.ends`` are its event numbers.
        labels: ``(events,)`` int64 label per event, -1 where there is none.
        info: JSON-ready facts: threshold, smoothing, events, usable events, class counts per part, z-score.
    """

    train: WindowDataset
    val: WindowDataset
    test: WindowDataset
    full: WindowDataset
    book: Book
    labels: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def _window_ok(usable: np.ndarray, window: int, before: int, after: int) -> np.ndarray:
    """``ok[e]``: events ``e - before + 1 .. e + after`` are all usable (False where that runs off the series)."""
    bad = np.concatenate([[0], np.cumsum(~usable)])
    ok = np.zeros(len(usable), dtype=bool)
    ends = np.arange(before - 1, len(usable) - after)
    ok[ends] = bad[ends + after + 1] - bad[ends - before + 1] == 0
    return ok


def window_ends(
    usable: np.ndarray, labels: np.ndarray, window: int, horizon: int, smoothing: str, stride: int
) -> np.ndarray:
    """``(windows,)`` int64 event numbers where a window may end: its events and those its label reads all usable,
    a label, and a multiple of ``stride``."""
    before = max(window, horizon) if smoothing == "past" else window
    ends = np.flatnonzero(_window_ok(usable, window, before, horizon) & (labels >= 0))
    return ends[ends % stride == 0]


def book_splits(
    book: Book | str | Path,
    levels: int = 10,
    window: int = 100,
    horizon: int = 10,
    threshold: float | None = None,
    smoothing: str = "future",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    stride: int = 1,
    start: Any = None,
    end: Any = None,
    zscore: ZScore | None = None,
) -> BookSplits:
    """Windows, labels and chronological splits of a book (module notes).

    Args:
        book: a :class:`~dilated.data._orderbook.Book` or a Parquet book file.
        levels: levels per side used as features (4 features each).
        window: events per input window; horizon: label horizon k in events.
        threshold: label threshold on l_t; None: balanced on the training part.
        smoothing: ``future`` or ``past`` (module notes).
        fractions: train/validation/test shares of the events, in time order.
        stride: serve window ends at multiples of this many events only.
        start, end: keep the events with ``start <= ts < end`` (e.g. the continuous session).
        zscore: the normalisation of an earlier run, applied instead of one fitted on the training part.
    """
    levels = check_levels(levels)
    if isinstance(book, (str, Path)):
        book = read_book(book, levels)
    elif levels > book.levels:
        raise ValueError(f"{book.source}: the book holds {book.levels} levels per side, {levels} asked")
    if window < 1 or horizon < 1 or stride < 1:
        raise ValueError(f"window, horizon and stride must be >= 1; got {window}, {horizon}, {stride}")
    fractions = tuple(float(f) for f in fractions)
    book = select_events(book, start, end)
    values = book.values[:, : 4 * levels]
    book = Book(book.ts, values, book.source, book.format, book.stats)
    usable = usable_events(book)
    train_start, train_stop = split_bounds(len(book), fractions)[0]
    rule = "given"
    if threshold is None:
        train_mid = np.where(usable, book.mid, np.nan)[train_start:train_stop]
        threshold, rule = balanced_threshold(smoothed_change(train_mid, horizon, smoothing))
    labels = book_labels(book, horizon, float(threshold), smoothing)
    ends = window_ends(usable, labels, window, horizon, smoothing, stride)
    features = fill_book_levels(values)
    if zscore is None:
        fit = features[train_start:train_stop][usable[train_start:train_stop]]
        if len(fit) == 0:
            raise ValueError(f"{book.source}: the training part holds no usable event (two-sided, uncrossed book)")
        zscore = ZScore.fit(fit)
    normalised = zscore(np.where(np.isfinite(features), features, zscore.mean)).T  # (channels, events)
    if len(ends) == 0:
        raise ValueError(
            f"{book.source}: no window of {window} usable events with a {horizon}-event horizon; "
            "use a smaller window or horizon, or a longer book"
        )
    full = WindowDataset(normalised, labels, window, ends, lookahead=horizon)
    train, val, test = chronological_split(full, fractions)
    counts = {
        name: np.bincount(labels[part.ends.numpy()], minlength=3).tolist()
        for name, part in (("train", train), ("val", val), ("test", test))
    }
    info = {
        "source": book.source,
        "format": book.format,
        "events": len(book),
        "usable_events": int(usable.sum()),
        "threshold": float(threshold),
        "threshold_rule": rule,
        "smoothing": smoothing,
        "horizon": horizon,
        "window": window,
        "stride": stride,
        "levels": levels,
        "label_balance": {name: [round(c / max(1, sum(v)), 4) for c in v] for name, v in counts.items()},
        "label_counts": counts,
        "gap_events": {"train_val": int(val.ends[0] - train.ends[-1]), "val_test": int(test.ends[0] - val.ends[-1])},
        "zscore": {"mean": zscore.mean.tolist(), "std": zscore.std.tolist()},
    }
    return BookSplits(train, val, test, full, book, labels, info)


def label_balance(
    book: Book,
    horizons: Sequence[int],
    threshold: float | None = None,
    smoothing: str = "future",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> dict[int, Any]:
    """Per horizon: the threshold (balanced on the training part when None) and the share of up / stationary /
    down labels over all usable events (``labelled`` 0 and no shares when the training part has no label)."""
    usable = usable_events(book)
    mid = np.where(usable, book.mid, np.nan)
    train_start, train_stop = split_bounds(len(book), fractions)[0]
    result: dict[int, Any] = {}
    for horizon in horizons:
        alpha, rule = threshold, "given"
        if alpha is None:
            train = smoothed_change(mid[train_start:train_stop], horizon, smoothing)
            if not np.isfinite(train).any():
                result[int(horizon)] = {"threshold": None, "labelled": 0, "rule": "too few usable events"}
                continue
            alpha, rule = balanced_threshold(train)
        labels = movement_labels(smoothed_change(mid, horizon, smoothing), alpha)
        counts = np.bincount(labels[labels >= 0], minlength=3)
        result[int(horizon)] = {
            "threshold": float(alpha),
            "labelled": int(counts.sum()),
            "rule": rule,
            **{name: float(c / max(1, counts.sum())) for name, c in zip(LOB_CLASS_NAMES, counts)},
        }
    return result
