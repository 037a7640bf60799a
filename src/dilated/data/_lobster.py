"""LOBSTER limit order book files (lobsterdata.com; Huang & Polak 2011, "LOBSTER: Limit Order Book Reconstruction
System"), as windows with mid-price movement labels.

Files: `<TICKER>_<date>_<start>_<end>_message_<levels>.csv` (time, event type, order id, size, price, direction) and
`..._orderbook_<levels>.csv`, the book after each event: `ask price, ask size, bid price, bid size` per level, prices
in dollars x 10000. The first 40 orderbook columns are the 10-level snapshot in FI-2010's order, so the features match
`dilated.data._fi2010`.

Choices:
- Empty levels (price 9999999999 on the ask side, -9999999999 on the bid side, size 0) take the price of the nearest
  quoted level of the same side in the same snapshot (its deepest quote) and keep size 0, so a thin book reads as
  zero depth at the last quoted price rather than as a 10^10 outlier. A side with no quote at all takes its prices
  from the previous snapshot; a file that starts with an empty side is an error.
- Normalisation: z-score per feature (40 means and standard deviations) from a prior period: a slice of the same
  events or a `ZScore` fitted on, e.g., the previous day. By default the first part of the data: the first part of
  `DEFAULT_FRACTIONS` (the first 70% of events, the training part of `chronological_split`). A feature constant over
  the fit period keeps a standard deviation of 1.
- Labels, the smoothed rule of FI-2010 (Ntakaris et al. 2018) as restated by DeepLOB (Zhang et al. 2019): with
  mid-price p_t and m_plus = mean(p_{t+1}, ..., p_{t+k}), l_t = (m_plus - p_t) / p_t is 0 up if l_t > alpha, 2 down if
  l_t < -alpha, 1 stationary otherwise. The last k events have no full horizon: they get no label (-1) and no sample.
  `balanced_alpha` picks alpha from training returns only.

Windows follow `dilated.data._windows`: the sample of event e is the z-scored snapshots of events e - window + 1 .. e
with the label of event e.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dilated.data._checks import first_non_finite, first_non_number
from dilated.data._orderbook import Book
from dilated.data._windows import DEFAULT_FRACTIONS, WindowDataset, chronological_split, split_bounds

LOBSTER_EMPTY_ASK = 9_999_999_999
LOBSTER_EMPTY_BID = -9_999_999_999
MID_RESOLUTION = 1e-8  # mid-prices are compared in steps of this (in the series' own units)
LOBSTER_PRICE_SCALE = 10_000  # LOBSTER prices are dollars x 10000
_MESSAGE_COLUMNS = 6
_BUNDLED = Path(__file__).parent / "bundled"
_SAMPLE = "AAPL_2012-06-21_34200000_57600000_{}_10.csv"


@dataclass(frozen=True)
class LobsterBook:
    """The events of one LOBSTER message/orderbook pair.

    Attributes:
        messages: `(events, 6)`: time (seconds after midnight), type, order id, size, price, direction.
        snapshots: `(events, 4 * levels)` float64 book after each event, empty levels filled (see the module notes),
            prices in dollars x 10000.
    """

    messages: np.ndarray
    snapshots: np.ndarray

    def __len__(self) -> int:
        return len(self.snapshots)

    @property
    def mid(self) -> np.ndarray:
        """Mid-price `(best ask + best bid) / 2` per event, dollars x 10000."""
        return (self.snapshots[:, 0] + self.snapshots[:, 2]) / 2


@dataclass(frozen=True)
class ZScore:
    """Per-feature z-score statistics from a prior period; calling it normalises snapshots to float32."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, snapshots: np.ndarray) -> ZScore:
        if len(snapshots) == 0:
            raise ValueError("the z-score fit period holds no events; give a non-empty slice or prior-day snapshots")
        std = snapshots.std(axis=0)
        return cls(snapshots.mean(axis=0), np.where(std > 0, std, 1.0))

    def __call__(self, snapshots: np.ndarray) -> np.ndarray:
        if snapshots.shape[1:] != self.mean.shape:
            raise ValueError(f"z-score fitted on {self.mean.shape[0]} features, given {snapshots.shape[1:]}")
        return ((snapshots - self.mean) / self.std).astype(np.float32)


def bundled_lobster_sample() -> tuple[Path, Path]:
    """Paths of the bundled LOBSTER sample (AAPL 2012-06-21, first 999 events, 10 levels): (message, orderbook)."""
    return _BUNDLED / _SAMPLE.format("message"), _BUNDLED / _SAMPLE.format("orderbook")


def read_lobster(message_path: str | Path, orderbook_path: str | Path, levels: int = 10) -> LobsterBook:
    """Read a LOBSTER message/orderbook pair, keeping the first `levels` levels (10 for the FI-2010 features)."""
    messages = _read_csv(Path(message_path))
    book = _read_csv(Path(orderbook_path))
    if messages.shape[1] != _MESSAGE_COLUMNS:
        raise ValueError(f"{message_path}: {messages.shape[1]} columns; LOBSTER message files have {_MESSAGE_COLUMNS}")
    if book.shape[1] % 4 or book.shape[1] < 4 * levels:
        raise ValueError(
            f"{orderbook_path}: {book.shape[1]} columns; need 4 per level (ask price, ask size, bid price, bid size) "
            f"and at least {levels} levels: use a file with more levels or pass levels={book.shape[1] // 4}"
        )
    if len(messages) != len(book):
        raise ValueError(
            f"{message_path} has {len(messages)} rows but {orderbook_path} has {len(book)}; LOBSTER writes one book "
            "row per message: use the files of the same day and level count, both complete"
        )
    return LobsterBook(messages, fill_empty_levels(book[:, : 4 * levels], str(orderbook_path)))


def lobster_book(message_path: str | Path, orderbook_path: str | Path, levels: int = 10) -> Book:
    """A LOBSTER pair in the common book format of :mod:`dilated.data._orderbook`: prices in dollars, empty levels
    NaN (not filled as :func:`read_lobster` fills them), ``ts`` the message time after midnight New York time of
    the date in the file name, in nanoseconds since the epoch."""
    import pandas as pd

    match = re.search(r"_(\d{4}-\d{2}-\d{2})_", Path(message_path).name)
    if match is None:
        raise ValueError(
            f"{message_path}: no date in the file name (LOBSTER names files "
            "TICKER_YYYY-MM-DD_start_end_message_levels.csv); rename it so the times can be dated"
        )
    messages = _read_csv(Path(message_path))
    raw = _read_csv(Path(orderbook_path))
    book = read_lobster(message_path, orderbook_path, levels)  # the shape checks
    values = raw[:, : 4 * levels].copy()
    values[:, 0::2] /= LOBSTER_PRICE_SCALE
    for column, empty in ((0, LOBSTER_EMPTY_ASK), (2, LOBSTER_EMPTY_BID)):
        gone = raw[:, column : 4 * levels : 4] == empty
        values[:, column::4][gone] = np.nan
        values[:, column + 1 :: 4][gone] = np.nan
    midnight = pd.Timestamp(match.group(1)).tz_localize("America/New_York").value
    ts = midnight + np.round(messages[:, 0] * 1e9).astype(np.int64)
    stats = {"messages": len(book), "events": len(book), "crossed_events": int(np.sum(values[:, 2] >= values[:, 0]))}
    return Book(ts, values, f"{message_path} + {orderbook_path}", "lobster", stats)


@dataclass(frozen=True)
class MidSums:
    """Exact running sums of a mid-price series: each mid as a whole number of `MID_RESOLUTION` steps from the
    first finite one, so that means of unchanged prices compare equal (no float rounding makes 'stationary' look
    like a tiny move).

    Attributes:
        base: the first finite mid; units: `(events,)` int64 steps from it (0 where NaN); sums: `(events + 1,)`,
        `sums[i]` = units[:i].sum(); missing: `(events + 1,)` NaN count of mid[:i].
    """

    base: float
    units: np.ndarray
    sums: np.ndarray
    missing: np.ndarray

    @classmethod
    def of(cls, mid: np.ndarray) -> MidSums:
        finite = np.isfinite(mid)
        base = float(mid[finite][0]) if finite.any() else 0.0
        units = np.round((np.where(finite, mid, base) - base) / MID_RESOLUTION).astype(np.int64)
        return cls(base, units, np.concatenate([[0], np.cumsum(units)]), np.concatenate([[0], np.cumsum(~finite)]))

    def span(self, start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sum of units over events `start .. stop - 1`, and whether that span holds a NaN."""
        return self.sums[stop] - self.sums[start], self.missing[stop] - self.missing[start] > 0


def smoothed_returns(mid: np.ndarray, horizon: int) -> np.ndarray:
    """l_t = (mean(p_{t+1}..p_{t+horizon}) - p_t) / p_t per event; NaN for the last `horizon` events, and where
    p_t or a price of its horizon is NaN (no mid-price). Means are exact to `MID_RESOLUTION` (see `MidSums`)."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 event; got {horizon}")
    sums = MidSums.of(mid)
    returns = np.full(len(mid), np.nan)
    labelled = np.arange(len(mid) - horizon)
    future, gaps = sums.span(labelled + 1, labelled + horizon + 1)
    returns[labelled] = (future - horizon * sums.units[labelled]) * MID_RESOLUTION / horizon / mid[labelled]
    returns[labelled[gaps]] = np.nan
    return returns


def movement_labels(returns: np.ndarray, alpha: float) -> np.ndarray:
    """int64 labels: 0 up (l > alpha), 1 stationary, 2 down (l < -alpha); -1 where `returns` is NaN (no horizon)."""
    if not alpha >= 0:
        raise ValueError(f"alpha must be a threshold >= 0; got {alpha}")
    labels = np.where(returns > alpha, 0, np.where(returns < -alpha, 2, 1))
    return np.where(np.isnan(returns), -1, labels).astype(np.int64)


def balanced_alpha(returns: np.ndarray) -> float:
    """The alpha that makes about a third of the labels stationary (the 1/3 quantile of |l|), the rest up or down.

    Pass training returns only, e.g. `smoothed_returns(book.mid[:train_stop], k)`: its last k events are NaN, so no
    return looks past the training part.
    """
    finite = np.abs(returns[np.isfinite(returns)])
    if len(finite) == 0:
        raise ValueError("no finite returns to choose alpha from; use a longer training part or a shorter horizon")
    return float(np.quantile(finite, 1 / 3))


def lobster_dataset(
    book: LobsterBook, horizon: int, alpha: float, window: int = 100, fit: slice | ZScore | None = None
) -> WindowDataset:
    """Windows of z-scored snapshots with movement labels `horizon` events ahead.

    Args:
        fit: where the z-score statistics come from: a slice of `book`'s events, or a `ZScore` of a prior period;
            default the first part of `DEFAULT_FRACTIONS` (the first 70% of events).

    Returns: a `WindowDataset` of `x` float32 `(4 * levels, window)` and `y` int64 in {0 up, 1 stationary, 2 down}.
    """
    if fit is None:
        fit = slice(*split_bounds(len(book), DEFAULT_FRACTIONS)[0])
    zscore = fit if isinstance(fit, ZScore) else ZScore.fit(book.snapshots[fit])
    labels = movement_labels(smoothed_returns(book.mid, horizon), alpha)
    ends = np.flatnonzero(labels >= 0)
    features = zscore(book.snapshots).T  # (channels, events)
    return WindowDataset(features, labels, window, ends[ends >= window - 1], lookahead=horizon)


def lobster_splits(
    book: LobsterBook,
    horizon: int,
    window: int = 100,
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS,
    alpha: float | None = None,
) -> tuple[WindowDataset, ...]:
    """Chronological train/val/test windows, with z-score statistics and (when `alpha` is None) a balanced alpha
    from the first part only; windows and label horizons never straddle a boundary."""
    first = slice(*split_bounds(len(book), fractions)[0])
    if alpha is None:
        alpha = balanced_alpha(smoothed_returns(book.mid[first], horizon))
    return chronological_split(lobster_dataset(book, horizon, alpha, window, fit=first), fractions)


def _read_csv(path: Path) -> np.ndarray:
    """A numeric CSV as float64 `(rows, columns)`; errors name the line and column to fix."""
    try:
        with warnings.catch_warnings(action="ignore", category=UserWarning):  # empty file: reported below
            values = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2, comments=None)
    except ValueError:
        _raise_first_bad_cell(path)
        raise
    if values.size == 0:
        raise ValueError(f"{path}: no rows; the file is empty or truncated")
    bad = first_non_finite(values)
    if bad is not None:
        raise ValueError(
            f"{path}: line {bad[0] + 1}, column {bad[1] + 1} (counted from 1) is {values[bad]}; LOBSTER files hold "
            "no missing or infinite values: fix or remove that line"
        )
    return values


def _raise_first_bad_cell(path: Path) -> None:
    """Raise a ValueError naming the first line with a different column count or a non-number cell."""
    with open(path) as lines:
        width = 0
        for number, line in enumerate(lines, start=1):
            cells = line.rstrip("\r\n").split(",")
            width = width or len(cells)
            if len(cells) != width:
                raise ValueError(
                    f"{path}: line {number} has {len(cells)} columns but line 1 has {width}; the file is truncated "
                    "or damaged: fix or remove that line"
                )
            column = first_non_number(cells)
            if column is not None:
                raise ValueError(
                    f"{path}: line {number}, column {column + 1} (counted from 1) is {cells[column]!r}, not a "
                    "number: fix or remove that line"
                )


def fill_empty_levels(book: np.ndarray, source: str = "orderbook") -> np.ndarray:
    """LOBSTER snapshots with empty-level prices replaced as the module notes describe (sizes stay 0).

    Args:
        book: ``(..., events, 4 * levels)`` orderbook rows in time order along the second-last axis; leading axes
            are independent books (e.g. ``(streams, 2, 40)``: each stream's previous filled snapshot and its new
            event, for a live feed).
        source: names the data in errors.
    """
    filled = book.copy()
    levels = np.arange(book.shape[-1] // 4)
    for column, empty, side in ((0, LOBSTER_EMPTY_ASK, "ask"), (2, LOBSTER_EMPTY_BID, "bid")):
        prices = filled[..., column::4]  # (..., events, levels), a view
        nearest = np.maximum.accumulate(np.where(prices != empty, levels, 0), axis=-1)
        prices[:] = np.take_along_axis(prices, nearest, axis=-1)
        quoted = prices[..., 0] != empty  # (..., events)
        if not quoted[..., 0].all():
            raise ValueError(
                f"{source}: line 1 has no {side} quote and no earlier snapshot has one; drop the leading events "
                "before the first two-sided book"
            )
        previous = np.maximum.accumulate(np.where(quoted, np.arange(quoted.shape[-1]), 0), axis=-1)
        prices[:] = np.where(prices == empty, np.take_along_axis(prices, previous[..., None], axis=-2), prices)
    return filled
