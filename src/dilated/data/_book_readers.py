"""The feed readers on the compiled engine (:mod:`dilated.data._book_engine`): each yields a book's rows chunk by
chunk, then either collects them into a :class:`~dilated.data.orderbook.Book` or writes them to Parquet as they come.

Every reader follows the rules in its format's module notes (:mod:`~dilated.data.databento`,
:mod:`~dilated.data.binance`, :mod:`~dilated.data.bitstamp`) and returns what the pure-Python reader returns, bit for
bit, stats included; that reader stays as the oracle (``engine="python"``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dilated.data import _book_engine as engine
from dilated.data._dbn_records import DbnRecords
from dilated.data.orderbook import _METADATA_KEY, Book, book_columns, check_levels, describe_sources

ENGINES = ("compiled", "python")
CHUNK = 1 << 16  # messages per kernel call: bounds the working memory, large enough that calls cost nothing
PRICE_SCALE = 1e-9


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    return engine


@dataclass
class BookRows:
    """A book being rebuilt: ``chunks`` yields ``(ts (rows,), values (rows, 4 * levels))`` pieces in order;
    ``stats`` is complete once ``chunks`` is exhausted."""

    source: str
    format: str
    levels: int
    chunks: Iterator[tuple[np.ndarray, np.ndarray]]
    stats: dict[str, Any] = field(default_factory=dict)

    def book(self) -> Book:
        """All rows as one :class:`Book`."""
        pieces = list(self.chunks)
        ts = np.concatenate([p[0] for p in pieces]) if pieces else np.empty(0, np.int64)
        values = np.concatenate([p[1] for p in pieces]) if pieces else np.empty((0, 4 * self.levels))
        return Book(ts, values, self.source, self.format, self.stats)

    def write_parquet(self, path: str | Path) -> tuple[Path, int]:
        """Write the rows to ``path`` chunk by chunk (memory stays at one chunk), as
        :func:`~dilated.data.orderbook.write_book` would (empty levels are nulls, read back as NaN); returns the
        path and the number of rows."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        names = ["ts", *book_columns(self.levels)]
        schema = pa.schema([("ts", pa.int64()), *((name, pa.float64()) for name in names[1:])])
        rows = 0
        with pq.ParquetWriter(path, schema) as writer:
            for ts, values in self.chunks:
                columns = [pa.array(ts)] + [pa.array(column, from_pandas=True) for column in values.T]
                writer.write_table(pa.Table.from_arrays(columns, schema=schema))
                rows += len(ts)
            info = {"source": self.source, "format": self.format, "levels": self.levels, "stats": self.stats}
            writer.add_key_value_metadata({_METADATA_KEY: json.dumps(info)})
        return path, rows


def _finish(stats: dict[str, Any], counts: np.ndarray, events: int) -> None:
    stats.update(events=events, crossed_events=int(counts[engine.CROSSED]))


# ------------------------------------------------------------------------------------------------- Databento


def _mbo_chunks(
    paths: list[Path], levels: int, instrument_id: int | None, progress: bool, stats: dict[str, Any], chunk: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    from tqdm import tqdm

    book = engine.OrderBookArrays(np.int64)
    events, instruments = 0, set()
    bar = tqdm(desc="databento mbo", unit="msg", disable=not progress, leave=False)
    for path in paths:
        with DbnRecords(path) as reader:
            _check_schema(reader, "mbo")
            for records in reader.chunks(chunk):
                if instrument_id is None:
                    instruments.update(np.unique(records["instrument_id"]).tolist())
                    if len(instruments) > 1:
                        _many_instruments(path, instruments)
                else:
                    records = records[records["instrument_id"] == instrument_id]
                n = len(records)
                book.reserve(n)
                out_ts, out_values = np.empty(n, np.int64), np.empty((n, 4 * levels))
                rows = engine.mbo_chunk(
                    records["ts_recv"],
                    records["order_id"],
                    records["price"],
                    records["size"],
                    records["action"],
                    records["side"],
                    records["flags"],
                    *book.book_arrays(),
                    levels,
                    PRICE_SCALE,
                    out_ts,
                    out_values,
                )
                stats["messages"] += n
                events += rows
                bar.update(n)
                yield out_ts[:rows], out_values[:rows]
        instruments.clear()  # the Python reader checks each file on its own
        out_ts, out_values = np.empty(1, np.int64), np.empty((1, 4 * levels))
        rows = engine.mbo_flush(
            book.state, book.counts, book.prices, book.sizes, book.n_side, levels, PRICE_SCALE, out_ts, out_values
        )
        events += rows
        yield out_ts[:rows], out_values[:rows]
    bar.close()
    counts = book.counts
    stats.update(
        snapshots=int(counts[engine.MBO_SNAPSHOTS]),
        clears=int(counts[engine.MBO_CLEARS]),
        unknown_cancels=int(counts[engine.MBO_UNKNOWN_CANCELS]),
        modify_adds=int(counts[engine.MBO_MODIFY_ADDS]),
        sideless=int(counts[engine.MBO_SIDELESS]),
    )
    _finish(stats, counts, events)


def _check_schema(reader: DbnRecords, schema: str) -> None:
    if reader.schema != schema:
        other = {"mbo": "databento-mbo", "mbp-10": "databento-mbp10"}.get(reader.schema)
        hint = f"use --format {other}" if other else "convert MBO or MBP-10 files"
        raise ValueError(f"{reader.path}: DBN schema {reader.schema!r}, this reader takes {schema!r}: {hint}")


def _many_instruments(path: Path, instruments: set[int]) -> None:
    found = sorted(instruments)
    raise ValueError(
        f"{path}: records of {len(found)} or more instruments ({found[:5]}); a book is one instrument: pass "
        "instrument_id"
    )


def mbo_rows(
    paths: str | Path | Sequence[str | Path],
    levels: int,
    instrument_id: int | None = None,
    progress: bool = False,
    chunk: int = CHUNK,
) -> BookRows:
    """Databento MBO files replayed on the compiled engine (:func:`~dilated.data.databento_mbo_book`'s rules)."""
    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    levels = check_levels(levels)
    stats: dict[str, Any] = {"messages": 0}
    chunks = _mbo_chunks(files, levels, instrument_id, progress, stats, chunk)
    return BookRows(describe_sources(files), "databento-mbo", levels, chunks, stats)
