"""Limit order books rebuilt from event feeds: the shared book state, and the one output format every reader writes.

Output (:class:`Book`, and the Parquet file :func:`write_book` writes): one row per complete book event, the book
after that event; columns ``ts`` (int64 nanoseconds since the Unix epoch, UTC), then per level ``i = 1 .. L``
``ask_price_i, ask_size_i, bid_price_i, bid_size_i``, in the FI-2010 / LOBSTER order. Prices are in currency units
(e.g. USD per BTC, index points for ES futures), sizes in the feed's units (contracts, coins). A level the book does
not hold (a side with fewer than ``i`` price levels) is NaN in both its price and size column; LOBSTER's
+-9999999999 placeholders are never written.

State: :class:`PriceLevels` is one side of an aggregated book (price -> size, kept sorted best first, so reading the
best ``L`` levels costs O(L)); :class:`OrderBook` holds both sides and, for market-by-order feeds, the resting
orders by id; :class:`BookRecorder` writes a row per event, copying the previous row when the event left the best
``L`` levels alone.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_LEVELS = 10
SIDES = ("ask", "bid")
_FIELDS = ("ask_price", "ask_size", "bid_price", "bid_size")
_METADATA_KEY = b"dilated.book"
_LEVEL_COLUMN = re.compile(r"(?:ask|bid)_(?:price|size)_([1-9][0-9]*)")


def book_columns(levels: int) -> list[str]:
    """``['ask_price_1', 'ask_size_1', 'bid_price_1', 'bid_size_1', 'ask_price_2', ...]`` for ``levels`` levels."""
    return [f"{name}_{level}" for level in range(1, levels + 1) for name in _FIELDS]


def check_levels(levels: int) -> int:
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
        raise ValueError(f"levels must be a whole number >= 1 (price levels per side); got {levels!r}")
    return int(levels)


@dataclass
class Book:
    """Book events: the format of the module notes as arrays.

    Attributes:
        ts: ``(events,)`` int64 nanoseconds since the Unix epoch.
        values: ``(events, 4 * levels)`` float64, columns as :func:`book_columns`; NaN where a level is empty.
        source: the file(s) it was read from.
        format: the reader that rebuilt it (``databento-mbo``, ``binance``, ...).
        stats: JSON-ready counts of the conversion (messages, events, gaps, orders removed by uncrossing, ...).
    """

    ts: np.ndarray
    values: np.ndarray
    source: str = ""
    format: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] % 4 or len(self.ts) != len(self.values):
            raise ValueError(
                f"a book needs ts (events,) and values (events, 4 * levels); got {self.ts.shape} and "
                f"{self.values.shape}"
            )

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def levels(self) -> int:
        return self.values.shape[1] // 4

    def column(self, name: str, level: int = 1) -> np.ndarray:
        """One column, e.g. ``column('bid_size', 3)``: ``(events,)``."""
        return self.values[:, 4 * (level - 1) + _FIELDS.index(name)]

    @property
    def mid(self) -> np.ndarray:
        """``(best ask + best bid) / 2`` per event; NaN where a side is empty."""
        return (self.column("ask_price") + self.column("bid_price")) / 2

    @property
    def spread(self) -> np.ndarray:
        """``best ask - best bid`` per event (negative: a crossed book); NaN where a side is empty."""
        return self.column("ask_price") - self.column("bid_price")

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        frame = pd.DataFrame(self.values, columns=book_columns(self.levels))
        frame.insert(0, "ts", self.ts)
        return frame


def book_schema(levels: int) -> Any:
    """The Arrow schema of a book's Parquet file: ``ts`` int64, then the float64 columns of
    :func:`~dilated.data.book_columns`."""
    import pyarrow as pa

    return pa.schema([("ts", pa.int64()), *((name, pa.float64()) for name in book_columns(levels))])


PARQUET_OPTIONS: dict[str, Any] = {  # every book file's writer settings (docs/ARCHITECTURE.md: measured)
    "compression": "zstd",
    "compression_level": 1,
    "use_dictionary": False,
    "write_statistics": ["ts"],
}


def book_writer(path: str | Path, schema: Any) -> Any:
    """A ``pyarrow.parquet.ParquetWriter`` of a book file (:data:`PARQUET_OPTIONS`)."""
    import pyarrow.parquet as pq

    return pq.ParquetWriter(path, schema, **PARQUET_OPTIONS)


class BackgroundWrites:
    """Book tables written on one background thread, one write in flight: the caller builds the next chunk
    meanwhile (pyarrow releases the GIL while it encodes). Use as a context manager; errors surface at the next
    :meth:`write` or at exit."""

    def __init__(self) -> None:
        from concurrent.futures import Future, ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="book-writer")
        self._pending: Future[None] | None = None

    def write(self, writer: Any, table: Any) -> None:
        """Write ``table`` with ``writer`` once the previous write has finished."""
        self.wait()
        self._pending = self._pool.submit(writer.write_table, table)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Wait for the last write (raising its error) and stop the thread."""
        try:
            self.wait()
        finally:
            self._pool.shutdown()

    def __enter__(self) -> BackgroundWrites:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def book_table(ts: np.ndarray, values: np.ndarray, schema: Any) -> Any:
    """Rows ``ts (rows,)``, ``values (rows, 4 * levels)`` as an Arrow table of ``schema`` (NaN written as null)."""
    import pyarrow as pa

    from dilated.data._book_engine import columns_and_validity

    rows, width = values.shape
    by_column, valid = np.empty((width, rows)), np.zeros((width, (rows + 7) // 8), np.uint8)
    columns_and_validity(np.ascontiguousarray(values, np.float64), by_column, valid)  # one pass, no boolean masks
    columns = [pa.array(ts)] + [
        pa.Array.from_buffers(pa.float64(), rows, [pa.py_buffer(valid[j]), pa.py_buffer(by_column[j])])
        for j in range(width)
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def write_book(book: Book, path: str | Path) -> Path:
    """Write ``book`` as Parquet (``ts`` then the level columns); source, format and stats go to the file's
    metadata, where :func:`read_book` finds them."""
    import pyarrow.parquet as pq

    info = {"source": book.source, "format": book.format, "levels": book.levels, "stats": book.stats}
    schema = book_schema(book.levels).with_metadata({_METADATA_KEY: json.dumps(info)})
    table = book_table(book.ts.astype(np.int64, copy=False), book.values.astype(np.float64, copy=False), schema)
    path = Path(path)
    pq.write_table(table, path, **PARQUET_OPTIONS)
    return path


def read_book(path: str | Path, levels: int | None = None) -> Book:
    """A Parquet book written by :func:`write_book` (or any table with ``ts`` and the level columns), keeping the
    first ``levels`` levels (default: all). A book missing any column of its levels is refused, naming them."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such book file; write one with `dilated data convert`")
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises its own ArrowInvalid for a file that is not Parquet
        raise ValueError(
            f"{path}: not a Parquet file ({error}); give a book written by `dilated data convert`"
        ) from None
    found = (table.schema.metadata or {}).get(_METADATA_KEY)
    if found is None:  # a chunked writer adds it to the file's footer once the stats are known
        found = (pq.read_metadata(path).metadata or {}).get(_METADATA_KEY, b"{}")
    info = json.loads(found)
    available = _book_levels(path, table.column_names, info.get("levels"))
    if levels is not None and check_levels(levels) > available:
        raise ValueError(
            f"{path}: holds {available} levels per side, {levels} asked; convert with --levels "
            f"{levels} or use levels <= {available}"
        )
    keep = levels or available
    values = np.column_stack([table.column(c).to_numpy().astype(np.float64) for c in book_columns(keep)])
    return Book(
        table.column("ts").to_numpy().astype(np.int64),
        values,
        info.get("source", str(path)),
        info.get("format", ""),
        info.get("stats", {}),
    )


def _book_levels(path: Path, names: list[str], written: int | None) -> int:
    """The levels per side of a table with columns ``names``: those its metadata says were ``written``, else the
    deepest level any column names; ``ValueError`` naming the columns of those levels (or ``ts``) it lacks."""
    named = [int(match.group(1)) for name in names if (match := _LEVEL_COLUMN.fullmatch(name))]
    if not named:
        raise ValueError(
            f"{path}: not a book: expected columns ts, ask_price_1, ask_size_1, bid_price_1, "
            f"bid_size_1, ...; found {names[:6]}"
        )
    levels = written or max(named)
    missing = [c for c in ["ts", *book_columns(levels)] if c not in names]
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise ValueError(
            f"{path}: missing columns {shown} (a book of `dilated data convert` has ts, then ask_price_i, "
            f"ask_size_i, bid_price_i, bid_size_i for every level i = 1 to {levels})"
        )
    return levels


class PriceLevels:
    """One side of an aggregated book: price -> size, prices kept sorted best first.

    Args:
        side: ``"ask"`` (best = lowest price) or ``"bid"`` (best = highest). Prices may be ints (fixed-point) or
            floats; they are keys, compared exactly.
    """

    def __init__(self, side: str) -> None:
        if side not in SIDES:
            raise ValueError(f"side must be 'ask' or 'bid'; got {side!r}")
        self.side = side
        self._sign = 1 if side == "ask" else -1
        self._ranks: list[Any] = []  # sign * price, ascending: best level first
        self.sizes: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self.sizes)

    def depth_of(self, price: Any) -> int:
        """How many levels are better than ``price`` (0: it is, or would be, the best)."""
        return bisect_left(self._ranks, self._sign * price)

    def set(self, price: Any, size: Any) -> int:
        """Set the size at ``price`` (0 or less removes the level); returns the level's depth (0 = best)."""
        rank = self._sign * price
        depth = bisect_left(self._ranks, rank)
        if size > 0:
            if price not in self.sizes:
                self._ranks.insert(depth, rank)
            self.sizes[price] = size
        elif price in self.sizes:
            del self._ranks[depth]
            del self.sizes[price]
        return depth

    def add(self, price: Any, change: Any) -> int:
        """Add ``change`` (may be negative) to the size at ``price``; returns the level's depth."""
        return self.set(price, self.sizes.get(price, 0) + change)

    def best(self) -> Any:
        """The best price, or None for an empty side."""
        return self._sign * self._ranks[0] if self._ranks else None

    def top(self, levels: int) -> list[tuple[Any, Any]]:
        """The best ``levels`` (price, size) pairs, best first (fewer when the side is thinner)."""
        sign, sizes = self._sign, self.sizes
        return [(sign * rank, sizes[sign * rank]) for rank in self._ranks[:levels]]

    def write(self, row: list[float], offset: int, levels: int, price_scale: float, size_scale: float) -> None:
        """Write the best ``levels`` into a book row: price at ``row[offset + 4 * i]``, size one after it."""
        sign, sizes = self._sign, self.sizes
        for index, rank in enumerate(self._ranks[:levels]):
            price = sign * rank
            row[offset + 4 * index] = price * price_scale
            row[offset + 4 * index + 1] = sizes[price] * size_scale

    def prices(self) -> list[Any]:
        """All prices, best first."""
        return [self._sign * rank for rank in self._ranks]

    def clear(self) -> None:
        self._ranks.clear()
        self.sizes.clear()


@dataclass
class Order:
    """A resting order of a market-by-order book."""

    side: str
    price: Any
    size: Any
    updated: int  # sequence number of its last add or change (larger: more recent)


class OrderBook:
    """Both sides of a book, and (for market-by-order feeds) the resting orders by id.

    ``touched`` is the smallest depth changed since :meth:`BookRecorder.record` last read the book (a change deeper
    than the recorded levels leaves the row as it was). Order methods keep each level's size equal to the sum of its
    orders' sizes, and each level's orders in the order of their last update (oldest first).
    """

    def __init__(self) -> None:
        self.asks = PriceLevels("ask")
        self.bids = PriceLevels("bid")
        self.orders: dict[Any, Order] = {}
        self.level_orders: dict[tuple[str, Any], dict[Any, None]] = {}
        self.touched = 0
        self._sequence = 0

    def side(self, side: str) -> PriceLevels:
        return self.asks if side == "ask" else self.bids

    def set_level(self, side: str, price: Any, size: Any) -> None:
        """Aggregated feeds (depth diffs): the size at ``price`` becomes ``size`` (0 removes the level)."""
        self.touched = min(self.touched, self.side(side).set(price, size))

    def add_order(self, order_id: Any, side: str, price: Any, size: Any) -> None:
        """A new resting order (an id already resting is replaced)."""
        if order_id in self.orders:
            self.remove_order(order_id)
        if size <= 0:
            return
        self._sequence += 1
        self.orders[order_id] = Order(side, price, size, self._sequence)
        self.level_orders.setdefault((side, price), {})[order_id] = None
        self.touched = min(self.touched, self.side(side).add(price, size))

    def remove_order(self, order_id: Any) -> Order:
        """Take a resting order off the book; ``KeyError`` if it is not resting."""
        order = self.orders.pop(order_id)
        key = (order.side, order.price)
        at_level = self.level_orders[key]
        del at_level[order_id]
        if not at_level:
            del self.level_orders[key]
            self.touched = min(self.touched, self.side(order.side).set(order.price, 0))
        else:
            self.touched = min(self.touched, self.side(order.side).add(order.price, -order.size))
        return order

    def reduce_order(self, order_id: Any, size: Any) -> None:
        """Take ``size`` off a resting order (it leaves the book at 0); ``KeyError`` if it is not resting."""
        order = self.orders[order_id]
        if size >= order.size:
            self.remove_order(order_id)
            return
        order.size -= size
        self.touched = min(self.touched, self.side(order.side).add(order.price, -size))

    def newest_update(self, side: str, price: Any) -> int:
        """Sequence number of the most recent add/change among the orders at a level."""
        at_level = self.level_orders[(side, price)]
        return self.orders[next(reversed(at_level))].updated

    def orders_at(self, side: str, price: Any) -> list[Any]:
        """Ids of the orders at a level, least recently updated first."""
        return list(self.level_orders.get((side, price), ()))

    def crossed(self) -> bool:
        """Best bid at or above best ask."""
        bid, ask = self.bids.best(), self.asks.best()
        return bid is not None and ask is not None and bid >= ask

    def clear(self) -> None:
        self.asks.clear()
        self.bids.clear()
        self.orders.clear()
        self.level_orders.clear()
        self.touched = 0


class BookRecorder:
    """Collects one row per book event: ``ts`` and the best ``levels`` of each side, scaled to currency units.

    Args:
        levels: levels per side to record.
        price_scale, size_scale: multiply the book's prices / sizes by these (e.g. 1e-9 for Databento's fixed-point
            prices) when writing a row.
    """

    def __init__(
        self, levels: int = DEFAULT_LEVELS, price_scale: float = 1.0, size_scale: float = 1.0, capacity: int = 1024
    ) -> None:
        self.levels = check_levels(levels)
        self.price_scale, self.size_scale = price_scale, size_scale
        self._ts = np.empty(capacity, dtype=np.int64)
        self._values = np.full((capacity, 4 * self.levels), np.nan)
        self._row = [math.nan] * (4 * self.levels)
        self.count = 0
        self.crossed = 0

    def record(self, ts: int, book: OrderBook) -> None:
        """Append the book's current state as an event at ``ts``."""
        if self.count == len(self._ts):
            self._ts = np.concatenate([self._ts, np.empty_like(self._ts)])
            self._values = np.concatenate([self._values, np.full_like(self._values, np.nan)])
        if book.touched < self.levels:
            row = [math.nan] * (4 * self.levels)
            book.asks.write(row, 0, self.levels, self.price_scale, self.size_scale)
            book.bids.write(row, 2, self.levels, self.price_scale, self.size_scale)
            self._row = row
        book.touched = self.levels
        self._ts[self.count] = ts
        self._values[self.count] = self._row
        self.count += 1
        self.crossed += book.crossed()

    def book(self, source: str, format: str, stats: dict[str, Any]) -> Book:
        """The recorded events as a :class:`Book`; ``stats`` gets the event and crossed-book counts."""
        stats = {**stats, "events": self.count, "crossed_events": int(self.crossed)}
        return Book(self._ts[: self.count].copy(), self._values[: self.count].copy(), source, format, stats)


def describe_sources(paths: Iterable[str | Path]) -> str:
    """``a.gz + b.gz``: the files one book was rebuilt from."""
    return " + ".join(str(p) for p in paths)


def smallest_level_gap(values: np.ndarray) -> float:
    """The smallest positive gap between adjacent quoted levels of rows ``values (rows, 4 * levels)`` (inf: none)."""
    asks = values[:, 4::4] - values[:, 0:-4:4]  # ask_price_{i+1} - ask_price_i
    bids = values[:, 2:-4:4] - values[:, 6::4]  # bid_price_i - bid_price_{i+1}
    gaps = np.concatenate([asks.ravel(), bids.ravel()])
    gaps = gaps[gaps > 0]  # NaN compares False
    return float(gaps.min()) if len(gaps) else float("inf")
