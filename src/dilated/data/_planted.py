"""A planted-signal market: synthetic order books whose future mid-price is driven by a known signal.

A model that cannot find a signal planted in the data is a bug in the pipeline or its recipe, not a finding; these
books say how much there is to find. The market, one row per event (:func:`~dilated.data.write_book`'s format,
``levels`` levels a side, prices whole ticks, a one-tick spread):

- **Sizes**: an event either redraws the size at one (side, level), level ``i`` chosen with weight ``1 / i``, as a
  whole number >= 1 from a log-normal (median 5 lots, log-sd 0.8), or moves the price.
- **Price**: with probability ``move_rate`` an event moves the mid one tick, up with probability
  ``(1 + drift_t) / 2``. The side the price moves into loses its best level, the other side gains a new one.
- **Signal**: ``drift_t = clip(strength * sign * signal_{t - lag}, -1, 1)``, read from the book ``lag`` events
  before it applies. ``form="imbalance"``: the best level's size imbalance ``(b1 - a1) / (b1 + a1)``;
  ``form="interaction"``: that imbalance times the imbalance of levels 2-5 (summed sizes), a nonlinear interaction a
  linear model on imbalances cannot use, scaled by 3 to a comparable size.
- **Regimes** (``regime_switch > 0``: per-event switch probability): in the second regime every size is four times
  larger (all sizes are redrawn at a switch, so the regime is visible in the book) and the signal's sign flips.

The true signal of a label: under the project's ``future`` label rule, ``l_t`` is the mean of the next ``k`` mids
against the current one, so ``E[l_t] * mid_t / tick = move_rate * sum_{i=1..k} (k - i + 1) / k * drift_{t+i}``
(:meth:`PlantedBook.expected_change`). ``drift_{t+i}`` is known at event ``t`` for ``i <= lag`` (it was read
from the book at ``t + i - lag``); later terms are left out (their mean is 0), so the expectation uses only what
the book shows up to ``t``. The best achievable score is that of a classifier fitted on this value
(:func:`dilated.training.planted_bound`).

Deterministic given ``seed`` (one ``numpy.random.default_rng(seed)`` draws everything in a fixed order).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from dilated.data._dataset import DATE_RULE, MANIFEST, read_manifest
from dilated.data._orderbook import Book, write_book

INSTRUMENT = "PLANTED"
SIGNAL_FORMS = ("imbalance", "interaction")
_DAY_NS = 86_400 * 10**9
_FIRST_DAY_NS = int(np.datetime64("2024-01-02T12:00", "ns").astype(np.int64))
_MEDIAN_SIZE, _SIZE_SPREAD, _REGIME_SCALE, _INTERACTION_GAIN = 5.0, 0.8, 4.0, 3.0


@dataclass(frozen=True)
class PlantedMarket:
    """What is planted and how strongly (module notes).

    Attributes:
        form: ``imbalance`` or ``interaction``.
        strength: the drift per unit of signal (0: a market with nothing to find).
        lag: events between reading the signal and the move it drives.
        move_rate: share of events that move the price one tick.
        regime_switch: per-event probability of switching regime (0: one regime).
        levels: levels per side; tick_size: price step; start_price: the first best bid.
        event_ns: mean nanoseconds between events (exponential gaps).
    """

    form: Literal["imbalance", "interaction"] = "imbalance"
    strength: float = 2.0
    lag: int = 20
    move_rate: float = 0.5
    regime_switch: float = 0.0
    levels: int = 10
    tick_size: float = 0.01
    start_price: float = 100.0
    event_ns: int = 10_000_000

    def __post_init__(self) -> None:
        if self.form not in SIGNAL_FORMS:
            raise ValueError(f"form must be one of {', '.join(SIGNAL_FORMS)}; got {self.form!r}")
        if self.lag < 1 or self.levels < 5:
            raise ValueError(f"lag must be >= 1 and levels >= 5; got lag {self.lag}, levels {self.levels}")
        if not 0 < self.move_rate < 1 or not 0 <= self.regime_switch < 1 or self.tick_size <= 0:
            raise ValueError(
                f"move_rate must lie in (0, 1), regime_switch in [0, 1), tick_size > 0; got {self.move_rate}, "
                f"{self.regime_switch}, {self.tick_size}"
            )


@dataclass
class PlantedBook:
    """A planted book and what drives it.

    Attributes:
        book: the events (:class:`~dilated.data.Book`, ``format="planted"``).
        drift: ``(events,)`` the drift of each event's price move (module notes), read ``lag`` events before.
        market: the parameters.
    """

    book: Book
    drift: np.ndarray
    market: PlantedMarket

    def expected_change(self, horizon: int) -> np.ndarray:
        """``(events,)`` the expected smoothed mid change of the ``future`` label rule at horizon ``k`` in ticks,
        from what the book shows up to each event (module notes); NaN where the horizon runs off the book."""
        known = min(horizon, self.market.lag)
        weights = (horizon - np.arange(1, known + 1) + 1) / horizon  # (known,) for i = 1 .. known
        events = len(self.drift)
        result = np.full(events, np.nan)
        stop = events - horizon
        if stop > 0:
            ahead = np.stack([self.drift[i : i + stop] for i in range(1, known + 1)])  # (known, stop)
            result[:stop] = self.market.move_rate * weights @ ahead
        return result


def _signal(ask: np.ndarray, bid: np.ndarray, form: str) -> float:
    """The planted signal of one book state (sizes ``(levels,)`` per side)."""
    best = (bid[0] - ask[0]) / (bid[0] + ask[0])
    if form == "imbalance":
        return float(best)
    deep_bid, deep_ask = bid[1:5].sum(), ask[1:5].sum()
    return float(_INTERACTION_GAIN * best * (deep_bid - deep_ask) / (deep_bid + deep_ask))


def planted_book(
    events: int = 50_000, market: PlantedMarket | None = None, seed: int = 0, start_ns: int = _FIRST_DAY_NS
) -> PlantedBook:
    """``events`` events of a planted-signal market (module notes), the first at ``start_ns``."""
    market = market or PlantedMarket()
    if events < market.lag + 2:
        raise ValueError(f"events must exceed lag + 1 = {market.lag + 1}; got {events}")
    rng = np.random.default_rng(seed)
    levels = market.levels
    level_weights = 1.0 / np.arange(1, levels + 1)
    level_weights /= level_weights.sum()
    moves = rng.random(events) < market.move_rate
    ups = rng.random(events)
    switches = rng.random(events) < market.regime_switch
    cells = rng.choice(levels, size=events, p=level_weights)
    sides = rng.integers(0, 2, events)

    def draw(count: int, regime: int) -> np.ndarray:
        scale = _MEDIAN_SIZE * (_REGIME_SCALE if regime else 1.0)
        return np.maximum(1.0, np.round(scale * np.exp(_SIZE_SPREAD * rng.standard_normal(count))))

    regime = 0
    ask, bid = draw(levels, regime), draw(levels, regime)
    best_bid = round(market.start_price / market.tick_size)
    signals, drift = np.zeros(events), np.zeros(events)
    bid_ticks = np.zeros(events, dtype=np.int64)
    sizes = np.zeros((events, 2, levels))  # (events, ask/bid, levels)
    for t in range(events):
        if t >= market.lag:
            drift[t] = signals[t - market.lag]
        if switches[t]:
            regime = 1 - regime
            ask, bid = draw(levels, regime), draw(levels, regime)
        elif moves[t]:
            if ups[t] < (1 + drift[t]) / 2:  # up: the best ask is taken, a new best bid one tick higher
                best_bid += 1
                ask = np.append(ask[1:], draw(1, regime))
                bid = np.insert(bid[:-1], 0, draw(1, regime))
            else:
                best_bid -= 1
                bid = np.append(bid[1:], draw(1, regime))
                ask = np.insert(ask[:-1], 0, draw(1, regime))
        else:
            (ask if sides[t] == 0 else bid)[cells[t]] = draw(1, regime)[0]
        sign = -1.0 if regime else 1.0
        signals[t] = np.clip(market.strength * sign * _signal(ask, bid, market.form), -1.0, 1.0)
        bid_ticks[t], sizes[t, 0], sizes[t, 1] = best_bid, ask, bid
    offsets = np.arange(levels)
    values = np.empty((events, 4 * levels))
    values[:, 0::4] = (bid_ticks[:, None] + 1 + offsets) * market.tick_size  # ask prices
    values[:, 1::4] = sizes[:, 0]
    values[:, 2::4] = (bid_ticks[:, None] - offsets) * market.tick_size  # bid prices
    values[:, 3::4] = sizes[:, 1]
    gaps = np.maximum(1, rng.exponential(market.event_ns, events)).astype(np.int64)
    ts = start_ns + np.cumsum(gaps) - gaps[0]
    stats = {"planted": asdict(market), "seed": seed}
    return PlantedBook(Book(ts, values, f"planted(seed={seed})", "planted", stats), drift, market)


def write_planted_dataset(
    root: str | Path, days: int, events: int, market: PlantedMarket | None = None, seed: int = 0
) -> list[PlantedBook]:
    """A dataset folder in the layout of ``dilated data convert -o DIR/`` (instrument ``PLANTED``, one part per
    day from 2024-01-02 12:00 UTC, day ``d`` drawn with seed ``(seed, d)``, a manifest with the tick size), so that
    the ``book`` data kind and walk-forward read it as a converted feed. Returns each day's :class:`PlantedBook`."""
    market = market or PlantedMarket()
    root = Path(root)
    folder = root / f"instrument={INSTRUMENT}"
    days_written: list[PlantedBook] = []
    dates: dict[str, int] = {}
    parts: list[str] = []
    for day in range(days):
        planted = planted_book(events, market, int(np.random.SeedSequence([seed, day]).generate_state(1)[0]), _day(day))
        date = str(np.datetime64(int(planted.book.ts[0]), "ns").astype("datetime64[D]"))
        (folder / f"date={date}").mkdir(parents=True, exist_ok=True)
        part = f"date={date}/part-{int(planted.book.ts[0]):020d}-planted.parquet"
        write_book(planted.book, folder / part)
        dates[date], parts = events, [*parts, f"{folder.name}/{part}"]
        days_written.append(planted)
    entry = {
        "instrument": INSTRUMENT,
        "format": "planted",
        "settings": {"levels": market.levels, "planted": asdict(market), "seed": seed},
        "files": [{"source": {"path": "planted"}, "rows": days * events, "dates": dates, "parts": parts}],
        "rows": days * events,
        "dates": dates,
        "stats": {},
        "observed_tick_size": market.tick_size,
        "tick_size": market.tick_size,
        "tick_source": "option",
        "error": None,
    }
    manifest = {**read_manifest(root), "date": DATE_RULE, "instruments": {INSTRUMENT: entry}}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return days_written


def _day(day: int) -> int:
    return _FIRST_DAY_NS + day * _DAY_NS
