"""Binance depth streams (REST depth snapshot + ``depthUpdate`` diffs) as books, with sequence-gap checks.

Files: text lines ``<receive time ns> <json>`` (``.gz`` read as it is), as hftbacktest records them: websocket
messages ``{"stream": ..., "data": {...}}`` (``depthUpdate`` diffs; ``bookTicker`` and ``trade`` messages are
skipped) and one REST snapshot ``{"lastUpdateId": ..., "bids": [...], "asks": [...]}``. Give a day's files in order
(the one with the snapshot first); they form one stream.

Replay (Binance's "how to manage a local order book"):
- Every diff in the files counts, wherever its line is: the recorder may write diffs that arrived before the REST
  reply in front of the snapshot line. Diffs with ``u <= lastUpdateId`` are older than the snapshot and dropped;
  the first one applied must bridge it (``U <= lastUpdateId + 1 <= u``; futures: ``U <= lastUpdateId <= u``).
  Spot BTCUSDT of 2024-08-08 shows why: the bridging diff (``U`` 50093239208, ``u`` 50093239224) is on the line
  before the snapshot, and a replay that starts after the snapshot line misses its updates, leaving a stale bid
  above the best ask for most of the stream.
- Sequence: futures diffs carry ``pu``, the previous diff's ``u``; spot diffs must start at the previous ``u + 1``.
  A break is a gap: the book is unknown from there on. ``gaps="raise"`` (default) stops with an error naming the
  file, line and update ids; ``gaps="truncate"`` keeps the book up to the gap and reports it in ``stats``.
- A level's quantity replaces the old one; quantity 0 removes the level. One book event per applied diff; ``ts``
  is the diff's event time ``E`` (milliseconds) in nanoseconds.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dilated._progress import bar_disabled
from dilated.data._choices import GAP_POLICIES
from dilated.data._feed_rules import check_stream, gap_reason, note_gap, read_line
from dilated.data._orderbook import DEFAULT_LEVELS, Book, BookRecorder, OrderBook, check_levels, describe_sources


@dataclass(frozen=True)
class _Diff:
    where: str  # file:line
    data: dict[str, Any]


def _open_text(path: Path):  # noqa: ANN202 - a text file object
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)


def _read_stream(paths: Sequence[Path]) -> tuple[dict[str, Any] | None, list[_Diff], dict[str, Any]]:
    """The first REST snapshot, every depth diff in file order, and counts of the other lines."""
    snapshot, diffs = None, []
    counts: dict[str, Any] = {"lines": 0, "snapshots": 0, "other_messages": 0, "diffs_before_snapshot_line": 0}
    symbols: set[str] = set()
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        try:
            with _open_text(path) as lines:
                for number, line in enumerate(lines, start=1):
                    counts["lines"] += 1
                    kind, data = read_line(line.encode(), f"{path}:{number}", json.loads)
                    if kind == "snapshot":
                        counts["snapshots"] += 1
                        snapshot = snapshot or data
                    elif kind == "other":
                        counts["other_messages"] += 1
                    if kind != "diff":
                        continue
                    symbols.add(data.get("s", ""))
                    counts["diffs_before_snapshot_line"] += snapshot is None
                    diffs.append(_Diff(f"{path}:{number}", data))
        except (OSError, EOFError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not a Binance depth recording ({error})") from None
    check_stream(paths, symbols, snapshot is not None, len(diffs))
    return snapshot, diffs, counts


def binance_book(
    paths: str | Path | Sequence[str | Path],
    levels: int = DEFAULT_LEVELS,
    gaps: Literal["raise", "truncate"] = "raise",
    progress: bool = False,
    engine: str = "compiled",
) -> Book:
    """Replay Binance depth recordings (snapshot + diffs, files in order) into a book (module notes).

    ``engine``: ``"compiled"`` (lines read by a Numba byte scanner, orjson for the others, a block at a time, the
    book in the Numba engine: :mod:`~dilated.data._binance_lines`) or ``"python"`` (the
    pure-Python book, its reference); both return the same book, bit for bit.

    Returns: a :class:`~dilated.data._orderbook.Book`; ``stats`` holds the line counts, the diffs dropped as older
    than the snapshot, and ``gaps`` (number) with ``first_gap`` (where, expected and found update ids).
    """
    from tqdm import tqdm

    from dilated.data._book_readers import binance_rows, check_engine

    if gaps not in GAP_POLICIES:
        raise ValueError(f"gaps must be one of {', '.join(GAP_POLICIES)}; got {gaps!r}")
    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    source = describe_sources(files)
    if check_engine(engine) == "compiled":
        return binance_rows(files, levels, gaps, progress).book()
    snapshot, diffs, stats = _read_stream(files)
    assert snapshot is not None  # checked by _read_stream
    book, recorder = OrderBook(), BookRecorder(check_levels(levels), capacity=len(diffs))
    for side, key in (("bid", "bids"), ("ask", "asks")):
        for price, quantity in snapshot[key]:
            book.set_level(side, float(price), float(quantity))
    last_id = int(snapshot["lastUpdateId"])
    stats.update(diffs=len(diffs), older_than_snapshot=0, applied=0, gaps=0, first_gap=None)
    previous = None
    for diff in tqdm(diffs, desc="binance", unit="diff", disable=bar_disabled(progress), leave=False):
        data = diff.data
        first, final = int(data["U"]), int(data["u"])
        if final <= last_id:
            stats["older_than_snapshot"] += 1
            continue
        gap = gap_reason(data, first, previous, last_id)
        if gap is not None:
            note_gap(stats, diff.where, gap, previous or last_id, gaps)
            break
        previous = final
        for side, key in (("bid", "b"), ("ask", "a")):
            for price, quantity in data[key]:
                book.set_level(side, float(price), float(quantity))
        recorder.record(int(data["E"]) * 1_000_000, book)
        stats["applied"] += 1
    return recorder.book(source, "binance", stats)
