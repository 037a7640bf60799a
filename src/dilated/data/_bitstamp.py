"""Bitstamp live order streams (market by order: ``created`` / ``changed`` / ``deleted`` by order id) as books.

Files: CSV with columns ``id, timestamp, exchange_timestamp (or exchange.timestamp), price, volume, action,
direction`` (``bid`` / ``ask``), times in milliseconds, as recorded by ob-analytics (2026) and obAnalytics (2015);
``.gz`` / ``.xz`` / ``.bz2`` are read as they are. ``volume`` is the order's remaining volume: in coins, or (obAnalytics
files, whose volume column holds integers only, written without a decimal point) in satoshi (1e-8 coin): see
``volume_unit``.

Replay:
- ``created`` adds an order; ``changed`` sets its price and remaining volume (a ``changed`` for an order not on
  the book adds it: the order is live); ``deleted`` removes it (a ``deleted`` for an order not on the book is
  counted, ``unknown_deletes``).
- A book event is a run of rows with the same time (the exchange's millisecond where the file has a
  non-decreasing ``exchange_timestamp``, else the receive time ``timestamp``): a taker order's ``created``, the
  makers' ``deleted``/``changed`` and its own ``changed`` share one exchange time, so a book is recorded only after
  the whole match. The recorder's start snapshot and its end-of-recording deletions are one event each this way.
- Uncrossing. The stream is not matched by the exchange's engine and misses executions and some deletions, so
  orders that are no longer resting stay in a naive replay and the best bid often sits above the best ask (in the
  2026-05-02 file, 91% of the events, all from two asks of the start snapshot that the stream never deletes).
  Rule, applied after each event: while the book is crossed, of the best bid
  level and the best ask level the one whose most recent order update is older is stale: all its orders are
  removed. The newer quote is what the exchange accepted last, which it could not have done against a live
  crossing order. The effect is counted: ``uncross_orders`` (orders removed), ``uncross_levels``,
  ``uncross_events`` (events that needed it), ``uncross_volume``.
- ``ts`` is the event's time in nanoseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dilated._progress import bar_disabled
from dilated.data._bitstamp_csv import check_volume_unit, order_stats, read_orders, satoshis
from dilated.data._feed_rules import SATOSHI
from dilated.data._orderbook import DEFAULT_LEVELS, Book, BookRecorder, OrderBook, check_levels, describe_sources


def bitstamp_book(
    paths: str | Path | Sequence[str | Path],
    levels: int = DEFAULT_LEVELS,
    volume_unit: Literal["auto", "coin", "satoshi"] = "auto",
    uncross: bool = True,
    progress: bool = False,
    engine: str = "compiled",
) -> Book:
    """Replay Bitstamp order-stream CSV files (in the order given) into a book, uncrossed as the module notes say.

    Args:
        volume_unit: ``coin``, ``satoshi`` (1e-8 coin), or ``auto``: satoshi when the volume column holds integers
            only (no decimal point anywhere), else coin.
        uncross: apply the uncrossing rule (``False`` replays the raw stream, for comparison).
        engine: ``"compiled"`` (the Numba book engine) or ``"python"`` (the pure-Python book, its reference); both
            return the same book, bit for bit.

    Returns: a :class:`~dilated.data._orderbook.Book`; its ``stats`` count the rows, the unknown ids and what the
    uncrossing removed.
    """
    from tqdm import tqdm

    from dilated.data._book_readers import bitstamp_rows, check_engine

    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if check_engine(engine) == "compiled":
        return bitstamp_rows([Path(p) for p in paths], levels, uncross, volume_unit).book()
    frame, units, times, ends, stats, _ = read_order_stream(paths, volume_unit)
    ids, prices = frame["id"].tolist(), frame["price"].tolist()
    actions, sides, volumes = frame["action"].tolist(), frame["direction"].tolist(), units.tolist()
    book, recorder = OrderBook(), BookRecorder(check_levels(levels), size_scale=SATOSHI, capacity=len(ends))
    start = 0
    for end in tqdm(ends.tolist(), desc="bitstamp", unit="event", disable=bar_disabled(progress), leave=False):
        for row in range(start, end + 1):
            order_id, action = ids[row], actions[row]
            if action == "deleted":
                if order_id in book.orders:
                    book.remove_order(order_id)
                else:
                    stats["unknown_deletes"] += 1
            else:
                if action == "changed" and order_id not in book.orders:
                    stats["unknown_changes"] += 1
                book.add_order(order_id, sides[row], prices[row], volumes[row])
        start = end + 1
        if uncross and book.crossed():
            _uncross(book, stats)
        recorder.record(int(times[end]) * 1_000_000, book)
    stats["uncross_volume"] = round(stats["uncross_volume"] * SATOSHI, 8)
    return recorder.book(describe_sources(paths), "bitstamp", stats)


def _uncross(book: OrderBook, stats: dict[str, Any]) -> None:
    """Remove the stale side's best level until the book is no longer crossed (module notes)."""
    stats["uncross_events"] += 1
    while book.crossed():
        bid, ask = book.bids.best(), book.asks.best()
        stale = ("bid", bid) if book.newest_update("bid", bid) < book.newest_update("ask", ask) else ("ask", ask)
        for order_id in book.orders_at(*stale):
            stats["uncross_volume"] += book.remove_order(order_id).size
            stats["uncross_orders"] += 1
        stats["uncross_levels"] += 1


def read_order_stream(
    paths: Sequence[str | Path], volume_unit: str = "auto"
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any], list[int]]:
    """Bitstamp CSV files (in the order given) read and checked: the frame of rows, the volumes in satoshi
    ``(rows,)``, the event times ``(rows,)`` in ms, each event's last row ``(events,)``, the stats so far and the rows of each file (pandas is imported here only)."""
    import pandas as pd

    check_volume_unit(volume_unit)
    frames = [read_orders(Path(p)) for p in paths]
    frame = pd.concat(frames, ignore_index=True)
    volume = frame["volume"].to_numpy(np.float64)
    if volume_unit == "auto":
        volume_unit = "satoshi" if pd.api.types.is_integer_dtype(frame["volume"]) else "coin"
    units = satoshis(volume, volume_unit)
    time_column = "timestamp"
    if "exchange_timestamp" in frame.columns and bool(np.all(np.diff(frame["exchange_timestamp"]) >= 0)):
        time_column = "exchange_timestamp"
    times = frame[time_column].to_numpy(np.int64)
    ends = np.flatnonzero(np.append(times[1:] != times[:-1], True))  # last row of each event
    stats = order_stats(len(frame), time_column, volume_unit)
    return frame, units, times, ends, stats, [len(f) for f in frames]
