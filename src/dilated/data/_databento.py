"""Databento DBN files (databento.com) as books: market-by-order (schema ``mbo``) replayed, or ``mbp-10`` read.

Files are read with the official ``databento-dbn`` decoder, ``.zst`` ones through ``zstandard``. Prices are Databento's
fixed-point integers (1e-9 units) and become currency units in the output (:mod:`dilated.data._orderbook`).

MBO replay (Databento's "constructing a limit order book" rules):
- ``A`` adds an order; ``C`` cancels the message's size from it (the order leaves the book at 0); ``M`` moves it to
  the message's price and size (an ``M`` for an order not on the book adds it); ``R`` clears the book; ``T``, ``F``
  and ``N`` (trades, fills, none) leave the book as it is: the matching engine's own ``C``/``M`` messages do that.
- A book event ends at a message with the ``F_LAST`` flag (0x80), where a snapshot (messages flagged
  ``F_SNAPSHOT``, 0x20) ends, and at the end of each file. A snapshot that starts clears the book first, so giving
  the start-of-day snapshot file before a day's file (both may hold one) replays the same book.
- ``C`` for an order not on the book, and ``A``/``C``/``M`` with no side, cannot be applied: they are counted in the
  stats (``unknown_cancels``, ``sideless``), not silently dropped.
- ``ts`` is the receive time ``ts_recv`` of the event's last message (the capture's clock, as Databento's book
  examples index it).

MBP-10 files are books already: each record with ``F_LAST`` gives one row (its 10 levels; levels beyond 10 are
refused). Undefined prices (``UNDEF_PRICE``) are empty levels (NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dilated._progress import bar_disabled
from dilated.data._orderbook import (
    DEFAULT_LEVELS,
    Book,
    BookRecorder,
    OrderBook,
    check_levels,
    describe_sources,
)

F_LAST = 0x80
F_SNAPSHOT = 0x20
PRICE_SCALE = 1e-9
MBP10_LEVELS = 10
_SIDES = {"A": "ask", "B": "bid"}


def _dbn() -> Any:
    """The ``databento_dbn`` module (an optional dependency, imported only when DBN files are read)."""
    try:
        import databento_dbn
    except ImportError:
        raise ImportError(
            "reading Databento DBN files needs databento-dbn and zstandard: pip install 'dilated[feeds]'"
        ) from None
    return databento_dbn


def read_dbn(path: str | Path) -> tuple[Any, list[Any]]:
    """The metadata and records of one DBN file (``.dbn`` or zstd-compressed ``.dbn.zst``)."""
    databento_dbn = _dbn()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw[:4] == b"\x28\xb5\x2f\xfd":  # the zstd frame magic number
        import zstandard  # installed with databento-dbn by the `feeds` extra

        raw = zstandard.ZstdDecompressor().stream_reader(raw).read()
    if raw[:3] != b"DBN":
        raise ValueError(
            f"{path}: not a DBN file (it does not start with 'DBN'); give a Databento .dbn or .dbn.zst "
            "file, or another --format"
        )
    decoder = databento_dbn.DBNDecoder()
    decoder.write(raw)
    try:
        decoded = decoder.decode()
    except Exception as error:  # databento_dbn raises its own DBNError for a damaged file
        raise ValueError(f"{path}: damaged DBN file ({error})") from None
    if not decoded or not isinstance(decoded[0], databento_dbn.Metadata):
        raise ValueError(f"{path}: no DBN metadata; the file is truncated or damaged")
    return decoded[0], decoded[1:]


def dbn_schema(path: str | Path) -> str:
    """The schema name of a DBN file, e.g. ``mbo`` or ``mbp-10`` (from its header alone)."""
    from dilated.data._dbn_records import DbnRecords

    _dbn()  # the friendly ImportError when databento-dbn is missing
    with DbnRecords(path) as reader:
        return reader.schema


def _records(paths: Sequence[str | Path], schema: str, instrument_id: int | None) -> list[list[Any]]:
    """Each file's records of one instrument, checked against ``schema``."""
    files = []
    for path in paths:
        metadata, records = read_dbn(path)
        found = str(metadata.schema.value if hasattr(metadata.schema, "value") else metadata.schema)
        if found != schema:
            other = {"mbo": "databento-mbo", "mbp-10": "databento-mbp10"}.get(found)
            hint = f"use --format {other}" if other else "convert MBO or MBP-10 files"
            raise ValueError(f"{path}: DBN schema {found!r}, this reader takes {schema!r}: {hint}")
        instruments = sorted({r.instrument_id for r in records})
        if instrument_id is None and len(instruments) > 1:
            raise ValueError(
                f"{path}: records of {len(instruments)} instruments ({instruments[:5]}); a book is one "
                "instrument: pass instrument_id"
            )
        if instrument_id is not None:
            records = [r for r in records if r.instrument_id == instrument_id]
        files.append(records)
    return files


def databento_mbo_book(
    paths: str | Path | Sequence[str | Path],
    levels: int = DEFAULT_LEVELS,
    instrument_id: int | None = None,
    progress: bool = False,
    engine: str = "compiled",
) -> Book:
    """Replay Databento MBO files (in the order given: e.g. the snapshot file, then the day) into a book.

    Args:
        engine: ``"compiled"`` (the Numba book engine, reading records as NumPy arrays) or ``"python"`` (the
            pure-Python book, its reference); both return the same book, bit for bit.

    Returns: a :class:`~dilated.data._orderbook.Book` with one row per book event (see the module notes).
    """
    from tqdm import tqdm

    from dilated.data._book_readers import check_engine, mbo_rows

    if check_engine(engine) == "compiled":
        return mbo_rows(paths, levels, instrument_id, progress).book()
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files = _records(paths, "mbo", instrument_id)
    book, recorder = OrderBook(), BookRecorder(check_levels(levels), price_scale=PRICE_SCALE)
    stats = {"messages": 0, "snapshots": 0, "clears": 0, "unknown_cancels": 0, "modify_adds": 0, "sideless": 0}
    bar = tqdm(
        total=sum(map(len, files)), desc="databento mbo", unit="msg", disable=bar_disabled(progress), leave=False
    )
    for records in files:
        pending, snapshot_open, ts = False, False, 0
        for record in records:
            flags, action = record.flags, str(record.action)
            if flags & F_SNAPSHOT and not snapshot_open:  # a snapshot starts: it replaces the book
                if pending:
                    recorder.record(ts, book)
                book.clear()
                snapshot_open, pending = True, False
                stats["snapshots"] += 1
            elif snapshot_open and not flags & F_SNAPSHOT:  # the snapshot ended without F_LAST
                recorder.record(ts, book)
                snapshot_open, pending = False, False
            ts = record.ts_recv
            _apply(book, action, str(record.side), record.order_id, record.price, record.size, stats)
            pending = True
            if flags & F_LAST:
                recorder.record(ts, book)
                pending = False
                snapshot_open = False
        if pending:
            recorder.record(ts, book)
        stats["messages"] += len(records)
        bar.update(len(records))
    bar.close()
    return recorder.book(describe_sources(paths), "databento-mbo", stats)


def _apply(
    book: OrderBook, action: str, side_code: str, order_id: int, price: int, size: int, stats: dict[str, int]
) -> None:
    """One MBO message's effect on the book (module notes)."""
    if action == "R":
        book.clear()
        stats["clears"] += 1
        return
    if action not in "ACM":  # T, F, N: no change of resting orders
        return
    side = _SIDES.get(side_code)
    if side is None:
        stats["sideless"] += 1
        return
    if action == "A":
        book.add_order(order_id, side, price, size)
    elif action == "C":
        if order_id in book.orders:
            book.reduce_order(order_id, size)
        else:
            stats["unknown_cancels"] += 1
    else:
        if order_id not in book.orders:
            stats["modify_adds"] += 1
        book.add_order(order_id, side, price, size)  # replaces the order: new price and size


def databento_mbp10_book(
    paths: str | Path | Sequence[str | Path],
    levels: int = MBP10_LEVELS,
    instrument_id: int | None = None,
    progress: bool = False,
    engine: str = "compiled",
) -> Book:
    """Read Databento MBP-10 files: one row per record with ``F_LAST``, its first ``levels`` (<= 10) levels.

    ``engine``: ``"compiled"`` reads the records as NumPy arrays, ``"python"`` as databento-dbn objects (the
    reference); both return the same book, bit for bit."""
    from dilated.data._book_readers import check_engine, mbp10_rows

    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    levels = check_levels(levels)
    if levels > MBP10_LEVELS:
        raise ValueError(
            f"MBP-10 files hold {MBP10_LEVELS} levels per side; {levels} asked: use --levels 10 or "
            "fewer, or convert the MBO file"
        )
    if check_engine(engine) == "compiled":
        return mbp10_rows(paths, levels, instrument_id).book()
    files = _records(paths, "mbp-10", instrument_id)
    last = [r for records in files for r in records if r.flags & F_LAST]
    ts = np.array([r.ts_recv for r in last], dtype=np.int64)
    values = np.full((len(last), 4 * levels), np.nan)
    undefined = _dbn().UNDEF_PRICE
    for row, record in enumerate(last):
        for level, pair in enumerate(record.levels[:levels]):
            for offset, price, size in ((0, pair.ask_px, pair.ask_sz), (2, pair.bid_px, pair.bid_sz)):
                if price != undefined and size > 0:
                    values[row, 4 * level + offset] = price * PRICE_SCALE
                    values[row, 4 * level + offset + 1] = size
    crossed = int(np.sum(values[:, 2] >= values[:, 0]))
    stats = {"messages": sum(map(len, files)), "events": len(last), "crossed_events": crossed}
    return Book(ts, values, describe_sources(paths), "databento-mbp10", stats)
