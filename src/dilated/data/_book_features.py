"""What a book-trained model reads per event: the ``representation`` of a book's filled levels, and its scaling.

Input: rows of a book with empty deeper levels filled (:func:`~dilated.data._lob_labels.fill_book_levels`),
``(..., time, 4 * levels)``: ask price, ask size, bid price, bid size per level, prices in currency units.

- ``raw``: the rows themselves (FI-2010 style), z-scored with the training part's mean and standard deviation
  (:class:`~dilated.data._lobster.ZScore`): prices keep their level, which does not carry over in time.
- ``stationary``: per level (ask price - mid) / tick, log1p(ask size), (bid price - mid) / tick, log1p(bid size);
  then the mid change from the previous event and the spread, both in ticks: ``4 * levels + 2`` channels.
- ``stationary_levels``: the per-level channels of ``stationary`` alone, ``4 * levels`` in the raw layout, for
  models whose front end reads that layout (DeepLOB pairs price with size, then ask with bid, then all levels).
- ``order_flow``: per level m the order-flow imbalance of the event (Cont, Kukanov & Stoikov 2014; per level as in
  Kolm, Turiel & Westray 2023), e_m = bOF_m - aOF_m with bOF_m = q^b_m(t) if P^b_m(t) > P^b_m(t-1),
  q^b_m(t) - q^b_m(t-1) if equal, -q^b_m(t-1) if lower, and aOF_m = -q^a_m(t) if P^a_m(t) < P^a_m(t-1),
  q^a_m(t) - q^a_m(t-1) if equal, q^a_m(t-1) if higher; then the mid change and spread in ticks: ``levels + 2``
  channels.

The first event of a book (or of a dataset's day) has no previous event: it is compared with itself (mid change 0,
order flow 0), in training and in the live predictor alike. A value that is not finite (a one-sided book, or the
event after one) is 0; no window holding such an event is served.

``stationary``, ``stationary_levels`` and ``order_flow`` are scaled robustly (:class:`RobustScale`):
(x - median) / (IQR / 1.349), the standard deviation where the IQR is 0 (a feature mostly 0, as the mid change), 1
where that is 0 too, then clipped to +-:data:`CLIP`. Fitted on the usable events of the training part only, at most
:data:`SCALE_SAMPLE` of them, taken at an even stride (over each training day of a dataset folder, the sample shared
evenly among the days).
The tick: a dataset's manifest (``tick_size``), a ``tick_size`` option, else the smallest gap between adjacent
quoted levels of the training part (:func:`observed_tick`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dilated.data._choices import REPRESENTATIONS
from dilated.data._lobster import ZScore
from dilated.data._orderbook import smallest_level_gap

CLIP = 5.0
SCALE_SAMPLE = 200_000
_NORMAL_IQR = 1.3489795  # the interquartile range of a standard normal


def check_representation(representation: str) -> str:
    if representation not in REPRESENTATIONS:
        raise ValueError(f"representation must be one of {', '.join(REPRESENTATIONS)}; got {representation!r}")
    return representation


def input_channels(representation: str, levels: int) -> int:
    """Channels per event of ``representation`` over ``levels`` levels per side."""
    return {"raw": 4 * levels, "stationary": 4 * levels + 2, "stationary_levels": 4 * levels, "order_flow": levels + 2}[
        check_representation(representation)
    ]


def book_inputs(
    rows: np.ndarray, representation: str, tick: float | None, previous: np.ndarray | None = None
) -> np.ndarray:
    """``(..., time, channels)`` float64 inputs of filled book ``rows`` ``(..., time, 4 * levels)`` (module notes);
    ``previous`` ``(..., 4 * levels)``: the event before the first row (None: the first row is its own)."""
    if check_representation(representation) == "raw":
        return rows
    if tick is None or not tick > 0:
        raise ValueError(
            f"representation {representation} needs the instrument's tick size > 0 (tick_size); got {tick}"
        )
    first = rows[..., :1, :] if previous is None else previous[..., None, :]
    before = np.concatenate([first, rows[..., :-1, :]], axis=-2)  # (..., time, 4 * levels)
    with np.errstate(invalid="ignore", divide="ignore"):
        mid = (rows[..., 0] + rows[..., 2]) / 2
        moves = np.stack(
            [(mid - (before[..., 0] + before[..., 2]) / 2) / tick, (rows[..., 0] - rows[..., 2]) / tick], -1
        )
        if representation in ("stationary", "stationary_levels"):
            levels = np.empty_like(rows)
            levels[..., 0::4] = (rows[..., 0::4] - mid[..., None]) / tick
            levels[..., 2::4] = (rows[..., 2::4] - mid[..., None]) / tick
            levels[..., 1::4] = np.log1p(rows[..., 1::4])
            levels[..., 3::4] = np.log1p(rows[..., 3::4])
        else:
            levels = _order_flow(rows, before)
        inputs = levels if representation == "stationary_levels" else np.concatenate([levels, moves], axis=-1)
    return np.where(np.isfinite(inputs), inputs, 0.0)


def _order_flow(rows: np.ndarray, before: np.ndarray) -> np.ndarray:
    """``(..., time, levels)`` e_m per level (module notes)."""
    bid, bid_size, old_bid, old_bid_size = rows[..., 2::4], rows[..., 3::4], before[..., 2::4], before[..., 3::4]
    ask, ask_size, old_ask, old_ask_size = rows[..., 0::4], rows[..., 1::4], before[..., 0::4], before[..., 1::4]
    bid_flow = np.where(bid > old_bid, bid_size, np.where(bid < old_bid, -old_bid_size, bid_size - old_bid_size))
    ask_flow = np.where(ask < old_ask, -ask_size, np.where(ask > old_ask, old_ask_size, ask_size - old_ask_size))
    return bid_flow - ask_flow


def observed_tick(values: np.ndarray) -> float | None:
    """The smallest positive gap between adjacent quoted levels of book rows ``(events, 4 * levels)`` (10 significant
    digits), None where there is none (one level)."""
    step = smallest_level_gap(values)
    return float(f"{step:.10g}") if math.isfinite(step) else None


def strided_sample(rows: np.ndarray, limit: int) -> np.ndarray:
    """``rows``, or ``limit`` of them spread evenly from the first (row ``i * len(rows) // limit``)."""
    return rows if len(rows) <= limit else rows[np.arange(limit) * len(rows) // limit]


def scaling_sample(
    features: np.ndarray, usable: np.ndarray, representation: str, tick: float | None, limit: int = SCALE_SAMPLE
) -> np.ndarray:
    """The inputs of the ``usable`` events among consecutive filled ``features`` (the mid change reads the event
    before), at most ``limit`` of them spread evenly: what :meth:`RobustScale.fit` is fitted on."""
    return strided_sample(book_inputs(features, representation, tick)[usable], limit)


@dataclass(frozen=True)
class RobustScale:
    """``clip((x - center) / scale, -clip, clip)`` per feature, float32 (module notes): ``center``, ``scale``
    ``(features,)``."""

    center: np.ndarray
    scale: np.ndarray
    clip: float = CLIP

    @classmethod
    def fit(cls, rows: np.ndarray) -> RobustScale:
        """From rows ``(events, features)`` (a sample: :func:`strided_sample`)."""
        if len(rows) == 0:
            raise ValueError("the scaling fit holds no usable event (two-sided, uncrossed book)")
        low, center, high = np.quantile(rows, [0.25, 0.5, 0.75], axis=0)
        scale = (high - low) / _NORMAL_IQR
        std = rows.std(axis=0)
        scale = np.where(scale > 0, scale, np.where(std > 0, std, 1.0))
        return cls(center, scale)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """``(events, features)`` -> float32, computed in float64."""
        return np.clip((rows - self.center) / self.scale, -self.clip, self.clip).astype(np.float32)

    def to_info(self) -> dict[str, Any]:
        return {"center": self.center.tolist(), "scale": self.scale.tolist(), "clip": self.clip}

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> RobustScale:
        return cls(np.array(info["center"], dtype=np.float64), np.array(info["scale"], dtype=np.float64), info["clip"])


@dataclass(frozen=True)
class BookInputs:
    """How filled book levels become a model's inputs: the representation, its tick and its fitted scaling
    (a :class:`~dilated.data._lobster.ZScore` for ``raw``, else a :class:`RobustScale`)."""

    representation: str
    tick: float | None
    scaling: ZScore | RobustScale

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """``(events, 4 * levels)`` filled levels -> ``(channels, events)`` float32."""
        if isinstance(self.scaling, ZScore):  # raw: NaN of unusable events -> the mean, as they are never served
            return self.scaling(np.where(np.isfinite(features), features, self.scaling.mean)).T
        return self.scaling(book_inputs(features, self.representation, self.tick)).T
