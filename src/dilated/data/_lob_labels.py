"""Model-ready windows from a rebuilt book: smoothed mid-price labels, chronological splits, training-period z-scores.

Input: a :class:`~dilated.data._orderbook.Book` (or its Parquet file, :func:`~dilated.data._orderbook.read_book`).

- Labels, per horizon k events (a :class:`LabelRule`), from the mid-prices p:

  * ``smoothing="future"`` (FI-2010, Ntakaris et al. 2018, as DeepLOB, Zhang et al. 2019, restates it):
    l_t = (mean(p_{t+1} .. p_{t+k}) - p_t) / p_t. The future mean smooths over the whole horizon, so a longer
    horizon is also a smoother one.
  * ``smoothing="tlob"`` (Berti & Kasneci 2025, TLOB, "horizon-bias free"): a smoothing window of s events
    independent of the horizon, l_t = (mean(p_{t+k-s+1} .. p_{t+k}) - mean(p_{t-s+1} .. p_t)) /
    mean(p_{t-s+1} .. p_t), s = min(``smoothing_window``, k) as the authors' code caps it.
  * ``smoothing="past"``: the same with s = k (mean of the next k mids vs the mean of the last k; DeepLOB's
    m+ / m-), so again coupled to the horizon: ``tlob`` with ``smoothing_window`` >= k.

  Class 0 up (l > threshold), 2 down (l < -threshold), 1 stationary. ``threshold_unit`` says what the threshold
  counts: ``fraction`` (l as above; given, or with ``threshold=None`` the one that makes a third of the training
  part's labels stationary, :func:`balanced_threshold`, 0 in a tick-bound market where more than a third of the
  changes are exactly 0); ``ticks`` (l's numerator in ticks of the instrument, the same two choices); ``spread``
  (TLOB: ``threshold`` (default 1) x the mean spread / mid of the training part's usable events, a fraction then).
  The threshold used and how it was chosen are reported in ``info``. Means of mid-prices are exact
  (:class:`~dilated.data._lobster.MidSums`): an unchanged mid gives l = 0, never a float-rounding residue on the
  wrong side of a zero threshold.
- Usable events: both sides quoted and the book not crossed (best bid < best ask). A window is served only when its
  events, and the events its label reads, are all usable, so a crossed pre-open or an emptied book never enters.
- Features: the book's 4 x levels columns, empty deeper levels filled with the side's deepest quoted price and size 0
  (as :func:`~dilated.data._lobster.read_lobster` does), in a ``representation``
  (:mod:`~dilated.data._book_features`: ``raw`` z-scored per feature with the mean and standard deviation of the
  usable events of the training part only; ``stationary`` and ``order_flow`` robustly scaled on them).
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

from dilated.data._book_features import BookInputs, RobustScale, observed_tick, scaling_sample
from dilated.data._choices import SMOOTHINGS, THRESHOLD_UNITS
from dilated.data._lobster import MID_RESOLUTION, MidSums, ZScore, balanced_alpha, movement_labels, smoothed_returns
from dilated.data._orderbook import Book, check_levels, read_book
from dilated.data._windows import DEFAULT_FRACTIONS, WindowDataset, chronological_split, split_bounds

LOB_CLASS_NAMES = ("up", "stationary", "down")


SMOOTHING_WINDOW = 10  # TLOB's smoothing window s, in events (module notes)


def smoothed_change(
    mid: np.ndarray,
    horizon: int,
    smoothing: str = "future",
    smoothing_window: int = SMOOTHING_WINDOW,
    tick: float | None = None,
) -> np.ndarray:
    """l_t of the module notes per event (in ticks where ``tick`` is given, else relative); NaN where the horizon
    (or the past mean) runs off the series or reads a NaN mid."""
    if smoothing not in SMOOTHINGS:
        raise ValueError(f"smoothing must be one of {', '.join(SMOOTHINGS)}; got {smoothing!r}")
    if smoothing == "future" and tick is None:
        return smoothed_returns(mid, horizon)
    sums = MidSums.of(mid)
    change = np.full(len(mid), np.nan)
    span = 1 if smoothing == "future" else horizon if smoothing == "past" else min(smoothing_window, horizon)
    labelled = np.arange(span - 1, len(mid) - horizon)
    if smoothing == "future":
        future, future_gaps = sums.span(labelled + 1, labelled + horizon + 1)
        past, past_gaps = horizon * sums.units[labelled], ~np.isfinite(mid[labelled])
        span = horizon  # the future mean's length
    else:
        future, future_gaps = sums.span(labelled + horizon - span + 1, labelled + horizon + 1)
        past, past_gaps = sums.span(labelled - span + 1, labelled + 1)
    if tick is None:
        past_mean = past * MID_RESOLUTION / span + sums.base
        change[labelled] = (future - past) * MID_RESOLUTION / span / past_mean
    else:  # whole steps over whole steps: an exact number of ticks compares exactly
        change[labelled] = (future - past) / (span * round(tick / MID_RESOLUTION))
    change[labelled[future_gaps | past_gaps]] = np.nan
    return change


@dataclass(frozen=True)
class LabelRule:
    """How book events are labelled (module notes): horizon k, smoothing rule and window, and the tick where the
    threshold counts ticks."""

    horizon: int
    smoothing: str = "future"
    smoothing_window: int = SMOOTHING_WINDOW
    tick: float | None = None

    def change(self, mid: np.ndarray) -> np.ndarray:
        """l_t per event (:func:`smoothed_change`)."""
        return smoothed_change(mid, self.horizon, self.smoothing, self.smoothing_window, self.tick)

    @property
    def reads_back(self) -> int:
        """Events up to and including t that l_t reads."""
        if self.smoothing == "future":
            return 1
        return self.horizon if self.smoothing == "past" else min(self.smoothing_window, self.horizon)


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


def book_labels(book: Book, rule: LabelRule, threshold: float) -> np.ndarray:
    """``(events,)`` int64 label per event (module notes), -1 where there is none: the horizon (or the past mean)
    runs off the series or reads an unusable event."""
    mid = np.where(usable_events(book), book.mid, np.nan)
    return movement_labels(rule.change(mid), threshold)


def label_threshold(
    threshold: float | None, unit: str, changes: np.ndarray, relative_spread: np.ndarray
) -> tuple[float, str]:
    """The threshold on l in ``unit`` (module notes) and how it was chosen, from the training part's finite
    ``changes`` (l, in ticks for ``ticks``) and the relative spreads ``spread / mid`` of its usable events."""
    if unit not in THRESHOLD_UNITS:
        raise ValueError(f"threshold_unit must be one of {', '.join(THRESHOLD_UNITS)}; got {unit!r}")
    if unit == "spread":
        factor = 1.0 if threshold is None else float(threshold)
        if len(relative_spread) == 0:
            raise ValueError("threshold_unit spread: the training part holds no usable event to average spreads of")
        return factor * float(np.mean(relative_spread)), f"{factor:g} x the mean training spread / mid (TLOB)"
    if threshold is not None:
        return float(threshold), "given"
    return balanced_threshold(changes)


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


def window_ends(usable: np.ndarray, labels: np.ndarray, window: int, rule: LabelRule, stride: int) -> np.ndarray:
    """``(windows,)`` int64 event numbers where a window may end: its events and those its label reads all usable,
    a label, and a multiple of ``stride``."""
    ends = np.flatnonzero(_window_ok(usable, window, max(window, rule.reads_back), rule.horizon) & (labels >= 0))
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
    scaling: ZScore | RobustScale | None = None,
    smoothing_window: int = SMOOTHING_WINDOW,
    threshold_unit: str = "fraction",
    representation: str = "raw",
    tick_size: float | None = None,
) -> BookSplits:
    """Windows, labels and chronological splits of a book (module notes).

    Args:
        book: a :class:`~dilated.data._orderbook.Book` or a Parquet book file.
        levels: levels per side used as features (4 features each).
        window: events per input window; horizon: label horizon k in events.
        threshold: label threshold on l_t in ``threshold_unit``; None: balanced on the training part (for
            ``spread``: 1 x the mean spread).
        smoothing: ``future``, ``past`` or ``tlob``; smoothing_window: TLOB's s (module notes).
        fractions: train/validation/test shares of the events, in time order.
        stride: serve window ends at multiples of this many events only.
        start, end: keep the events with ``start <= ts < end`` (e.g. the continuous session).
        scaling: the input scaling of an earlier run, applied instead of one fitted on the training part.
        representation: ``raw``, ``stationary``, ``stationary_levels`` or ``order_flow``
            (:mod:`~dilated.data._book_features`).
        tick_size: the instrument's tick (None: the smallest level gap of the training part).
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
    train = slice(*split_bounds(len(book), fractions)[0])
    tick, tick_source = (tick_size, "given") if tick_size is not None else (observed_tick(values[train]), "observed")
    rule = LabelRule(horizon, smoothing, smoothing_window, tick if threshold_unit == "ticks" else None)
    if threshold_unit == "ticks" and tick is None:
        raise ValueError(f"{book.source}: threshold_unit ticks needs a tick size: give tick_size")
    threshold, how = label_threshold(threshold, threshold_unit, *_training_changes(book, usable, rule, train))
    labels = book_labels(book, rule, threshold)
    ends = window_ends(usable, labels, window, rule, stride)
    features = fill_book_levels(values)
    if scaling is None:
        if not usable[train].any():
            raise ValueError(f"{book.source}: the training part holds no usable event (two-sided, uncrossed book)")
        if representation == "raw":
            scaling = ZScore.fit(features[train][usable[train]])
        else:
            scaling = RobustScale.fit(scaling_sample(features[train], usable[train], representation, tick))
    normalised = BookInputs(representation, tick, scaling)(features)  # (channels, events)
    if len(ends) == 0:
        raise ValueError(
            f"{book.source}: no window of {window} usable events with a {horizon}-event horizon; "
            "use a smaller window or horizon, or a longer book"
        )
    full = WindowDataset(normalised, labels, window, ends, lookahead=horizon)
    train_part, val, test = chronological_split(full, fractions)
    counts = {
        name: np.bincount(labels[part.ends.numpy()], minlength=3).tolist()
        for name, part in (("train", train_part), ("val", val), ("test", test))
    }
    info = {
        "source": book.source,
        "format": book.format,
        "events": len(book),
        "usable_events": int(usable.sum()),
        **label_info(rule, threshold, how, threshold_unit),
        "window": window,
        "stride": stride,
        "levels": levels,
        "label_balance": {name: [round(c / max(1, sum(v)), 4) for c in v] for name, v in counts.items()},
        "label_counts": counts,
        "gap_events": {
            "train_val": int(val.ends[0] - train_part.ends[-1]),
            "val_test": int(test.ends[0] - val.ends[-1]),
        },
        **input_info(representation, tick, tick_source, scaling),
    }
    return BookSplits(train_part, val, test, full, book, labels, info)


def _training_changes(book: Book, usable: np.ndarray, rule: LabelRule, train: slice) -> tuple[np.ndarray, np.ndarray]:
    """The training part's finite l_t and its usable events' spread / mid (what :func:`label_threshold` reads)."""
    mid = np.where(usable, book.mid, np.nan)[train]
    change = rule.change(mid)
    return change[np.isfinite(change)], (book.spread[train] / mid)[usable[train]]


def label_info(rule: LabelRule, threshold: float, how: str, unit: str) -> dict[str, Any]:
    """The label facts of a run's ``info``: threshold (a fraction for ``spread``), its rule and unit, smoothing."""
    return {
        "threshold": float(threshold),
        "threshold_rule": how,
        "threshold_unit": "fraction" if unit == "spread" else unit,
        "smoothing": rule.smoothing,
        "smoothing_window": rule.smoothing_window,
        "horizon": rule.horizon,
    }


def input_info(representation: str, tick: float | None, source: str, scaling: ZScore | RobustScale) -> dict[str, Any]:
    """The input facts of a run's ``info``: representation, tick and where it came from, and the fitted scaling
    (``zscore`` for ``raw``, ``scaling`` otherwise)."""
    scaled = (
        {"zscore": {"mean": scaling.mean.tolist(), "std": scaling.std.tolist()}}
        if isinstance(scaling, ZScore)
        else {"scaling": scaling.to_info()}
    )
    return {"representation": representation, "tick_size": tick, "tick_source": source, **scaled}


def label_balance(
    book: Book,
    horizons: Sequence[int],
    threshold: float | None = None,
    smoothings: Sequence[str] = SMOOTHINGS,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    threshold_unit: str = "fraction",
    tick_size: float | None = None,
    smoothing_window: int = SMOOTHING_WINDOW,
) -> dict[int, dict[str, Any]]:
    """Per horizon and label rule (``smoothings``): the threshold (chosen on the training part as
    :func:`book_splits` chooses it), how, and the share of up / stationary / down labels of the usable events of
    each part (``train``, ``val``, ``test``: ``fractions`` of the events), with ``labelled`` the labels per part;
    ``labelled`` 0 and no shares when the training part has no label."""
    usable = usable_events(book)
    mid = np.where(usable, book.mid, np.nan)
    bounds = split_bounds(len(book), fractions)
    train = slice(*bounds[0])
    tick = tick_size if tick_size is not None else observed_tick(book.values[train])
    if threshold_unit == "ticks" and tick is None:
        raise ValueError(f"{book.source}: threshold_unit ticks needs a tick size: give tick_size")
    result: dict[int, dict[str, Any]] = {}
    for horizon in horizons:
        rows: dict[str, Any] = {}
        result[int(horizon)] = rows
        for smoothing in smoothings:
            rule = LabelRule(int(horizon), smoothing, smoothing_window, tick if threshold_unit == "ticks" else None)
            changes, spreads = _training_changes(book, usable, rule, train)
            if len(changes) == 0:
                rows[smoothing] = {"threshold": None, "labelled": 0, "rule": "too few usable events"}
                continue
            alpha, how = label_threshold(threshold, threshold_unit, changes, spreads)
            counts: dict[str, np.ndarray] = {}
            for part, (first, stop) in zip(("train", "val", "test"), bounds, strict=True):
                # each part labelled alone: no label reads past its part
                labels = movement_labels(rule.change(mid[first:stop]), alpha)
                counts[part] = np.bincount(labels[labels >= 0], minlength=3)
            rows[smoothing] = {"threshold": alpha, "rule": how, **label_shares(counts)}
    return result


def label_shares(counts: dict[str, np.ndarray]) -> dict[str, Any]:
    """``{"labelled": {part: labels}, part: {"up", "stationary", "down"} shares}`` of label counts per part."""
    result: dict[str, Any] = {"labelled": {part: int(c.sum()) for part, c in counts.items()}}
    for part, c in counts.items():
        result[part] = {name: float(n / max(1, c.sum())) for name, n in zip(LOB_CLASS_NAMES, c)}
    return result


def format_label_balance(balance: dict[int, dict[str, Any]], indent: str) -> list[str]:
    """:func:`label_balance` (or :func:`~dilated.data.dataset_label_balance`) as text lines."""
    lines = (
        [f"{indent}labels (up / stationary / down % of each part's labels, per horizon k and rule):"] if balance else []
    )
    for horizon, rules in balance.items():
        for smoothing, row in rules.items():
            if not row["labelled"]:
                lines.append(f"{indent}  k={horizon} {smoothing}: none ({row['rule']})")
                continue
            parts = ", ".join(
                f"{part} "
                + "/".join(f"{100 * row[part][c]:.0f}" for c in LOB_CLASS_NAMES)
                + f" of {row['labelled'][part]:,}"
                for part in ("train", "val", "test")
            )
            lines.append(
                f"{indent}  k={horizon} {smoothing}: threshold {row['threshold']:.3g} ({row['rule']}): {parts}"
            )
    return lines
