"""The feed readers on the compiled engine (:mod:`dilated.data._book_engine`): each yields a book's rows chunk by
chunk, then either collects them into a :class:`~dilated.data._orderbook.Book` or writes them to Parquet as they come.

Every reader follows the rules in its format's module notes (:mod:`~dilated.data._databento`,
:mod:`~dilated.data._binance`, :mod:`~dilated.data._bitstamp`) and returns what the pure-Python reader returns, bit for
bit, stats included; that reader stays as the oracle (``engine="python"``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dilated._progress import bar_disabled
from dilated.data import _book_engine as engine
from dilated.data._binance_lines import DiffBlock, Recording, diff_blocks
from dilated.data._bitstamp_csv import StreamSettings, order_frames, order_stats, satoshis, stream_settings
from dilated.data._bitstamp_scan import TEXT_PER_ROW, scan_orders
from dilated.data._dbn_records import DbnRecords
from dilated.data._feed_rules import SATOSHI, check_stream, gap_reason, note_gap
from dilated.data._orderbook import (
    _METADATA_KEY,
    BackgroundWrites,
    Book,
    book_schema,
    book_table,
    book_writer,
    check_levels,
    describe_sources,
)

ENGINES = ("compiled", "python")
Piece = tuple[int, np.ndarray, np.ndarray]  # a source file's index, then rows: ts (rows,), values (rows, 4 * levels)
State = dict[str, np.ndarray]  # a reader's state at a file boundary (:mod:`dilated.data._book_state`)
FileEnd = Callable[[int, State], None]  # called after each file: its index, the state that resumes after it
RESUMABLE = ("databento-mbo", "databento-mbp10")  # the readers that take ``resume`` and ``on_file_end``
CHUNK = 1 << 16  # messages per kernel call: bounds the working memory, large enough that calls cost nothing
PRICE_SCALE = 1e-9


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    return engine


@dataclass
class BookRows:
    """A book being rebuilt: ``chunks`` yields ``(file, ts (rows,), values (rows, 4 * levels))`` pieces in order,
    ``file`` the index of the source file whose messages made the rows (a piece never spans two files);
    ``stats`` is complete once ``chunks`` is exhausted (for the :data:`RESUMABLE` readers, also when
    ``on_file_end`` is called: the stats up to that file's end)."""

    source: str
    format: str
    levels: int
    chunks: Iterator[Piece]
    stats: dict[str, Any] = field(default_factory=dict)

    def book(self) -> Book:
        """All rows as one :class:`Book`."""
        pieces = list(self.chunks)
        ts = np.concatenate([p[1] for p in pieces]) if pieces else np.empty(0, np.int64)
        values = np.concatenate([p[2] for p in pieces]) if pieces else np.empty((0, 4 * self.levels))
        return Book(ts, values, self.source, self.format, self.stats)

    def write_parquet(self, path: str | Path) -> tuple[Path, int]:
        """Write the rows to ``path`` chunk by chunk (memory stays at one chunk), as
        :func:`~dilated.data._orderbook.write_book` would (empty levels are nulls, read back as NaN); returns the
        path and the number of rows."""
        path = Path(path)
        schema = book_schema(self.levels)
        rows = 0
        with book_writer(path, schema) as writer:
            with BackgroundWrites() as writes:  # the next chunk is rebuilt while this one is written
                for _, ts, values in self.chunks:
                    writes.write(writer, book_table(ts, values, schema))
                    rows += len(ts)
            writer.add_key_value_metadata(self.metadata())
        return path, rows

    def metadata(self, source: str | None = None) -> dict[bytes, str]:
        """The Parquet key-value metadata :func:`~dilated.data.read_book` reads: source (default: all the files),
        format, levels, stats."""
        info = {"source": source or self.source, "format": self.format, "levels": self.levels, "stats": self.stats}
        return {_METADATA_KEY: json.dumps(info)}


def _finish(stats: dict[str, Any], counts: np.ndarray, events: int) -> None:
    stats.update(events=events, crossed_events=int(counts[engine.CROSSED]))


# ------------------------------------------------------------------------------------------------- Databento


def _mbo_chunks(
    paths: list[Path],
    levels: int,
    instrument_id: int | None,
    progress: bool,
    stats: dict[str, Any],
    chunk: int,
    resume: State | None,
    on_file_end: FileEnd | None,
) -> Iterator[Piece]:
    from tqdm import tqdm

    book = engine.OrderBookArrays(np.int64)
    first, events, instruments = 0, 0, set[int]()  # instruments seen over all the files
    if resume is not None:
        book = engine.OrderBookArrays.restored(resume)
        first, events, stats["messages"] = (int(v) for v in resume["reader"])
    bar = tqdm(desc="databento mbo", unit="msg", disable=bar_disabled(progress), leave=False)
    for index, path in enumerate(paths[first:], first):
        with DbnRecords(path) as reader:
            _check_schema(reader, "mbo")
            for records in _one_instrument(reader, path, chunk, instrument_id, instruments):
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
                yield index, out_ts[:rows], out_values[:rows]
        instruments.clear()  # the Python reader checks each file on its own
        out_ts, out_values = np.empty(1, np.int64), np.empty((1, 4 * levels))
        rows = engine.mbo_flush(
            book.state, book.counts, book.prices, book.sizes, book.n_side, levels, PRICE_SCALE, out_ts, out_values
        )
        events += rows
        _mbo_stats(stats, book.counts, events)  # complete at each file's end
        yield index, out_ts[:rows], out_values[:rows]
        if on_file_end is not None:
            on_file_end(index, {**book.saved(), "reader": np.array([index + 1, events, stats["messages"]])})
    bar.close()
    _mbo_stats(stats, book.counts, events)


def _mbo_stats(stats: dict[str, Any], counts: np.ndarray, events: int) -> None:
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


def _one_instrument(
    reader: DbnRecords, path: Path, chunk: int, instrument_id: int | None, seen: set[int]
) -> Iterator[np.ndarray]:
    """The file's records, ``chunk`` at a time, of ``instrument_id``; with ``None``, all of them, refused (naming the
    file) once ``seen`` (updated here, shared by the caller across the files it should cover) holds two instruments."""
    for records in reader.chunks(chunk):
        if instrument_id is not None:
            yield records[records["instrument_id"] == instrument_id]
            continue
        seen.update(np.unique(records["instrument_id"]).tolist())
        if len(seen) > 1:
            _many_instruments(path, seen)
        yield records


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
    resume: State | None = None,
    on_file_end: FileEnd | None = None,
) -> BookRows:
    """Databento MBO files replayed on the compiled engine (:func:`~dilated.data.databento_mbo_book`'s rules).

    ``resume``: a state ``on_file_end`` gave after file ``i`` of the same files: the replay goes on from file
    ``i + 1`` (the pieces, stats and state after each file are those of a replay from the first)."""
    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    levels = check_levels(levels)
    stats: dict[str, Any] = {"messages": 0}
    chunks = _mbo_chunks(files, levels, instrument_id, progress, stats, chunk, resume, on_file_end)
    return BookRows(describe_sources(files), "databento-mbo", levels, chunks, stats)


def mbp10_rows(
    paths: str | Path | Sequence[str | Path],
    levels: int,
    instrument_id: int | None = None,
    chunk: int = CHUNK,
    resume: State | None = None,
    on_file_end: FileEnd | None = None,
) -> BookRows:
    """Databento MBP-10 files read as NumPy records (:func:`~dilated.data.databento_mbp10_book`'s rules);
    ``resume`` and ``on_file_end`` as :func:`mbo_rows` takes them (the state is the counts alone)."""
    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    stats: dict[str, Any] = {"messages": 0}
    return BookRows(
        describe_sources(files),
        "databento-mbp10",
        levels,
        _mbp10_chunks(files, levels, instrument_id, stats, chunk, resume, on_file_end),
        stats,
    )


def _mbp10_chunks(
    paths: list[Path],
    levels: int,
    instrument_id: int | None,
    stats: dict[str, Any],
    chunk: int,
    resume: State | None,
    on_file_end: FileEnd | None,
) -> Iterator[Piece]:
    from databento_dbn import UNDEF_PRICE

    first, events, crossed = 0, 0, 0
    if resume is not None:
        first, events, crossed, stats["messages"] = (int(v) for v in resume["reader"])
    for index, path in enumerate(paths[first:], first):
        with DbnRecords(path) as reader:
            _check_schema(reader, "mbp-10")
            for records in _one_instrument(reader, path, chunk, instrument_id, set()):
                stats["messages"] += len(records)
                last = records[records["flags"] & engine.F_LAST != 0]
                by_level = np.full((len(last), levels, 4), np.nan)  # (events, level, ask px/sz, bid px/sz)
                pairs = last["levels"][:, :levels]
                for offset, price, size in ((0, "ask_px", "ask_sz"), (2, "bid_px", "bid_sz")):
                    quoted = (pairs[price] != UNDEF_PRICE) & (pairs[size] > 0)
                    by_level[..., offset] = np.where(quoted, pairs[price] * PRICE_SCALE, np.nan)
                    by_level[..., offset + 1] = np.where(quoted, pairs[size], np.nan)
                values = by_level.reshape(len(last), 4 * levels)
                crossed += int(np.sum(values[:, 2] >= values[:, 0]))
                events += len(last)
                yield index, last["ts_recv"].astype(np.int64), values
        stats.update(events=events, crossed_events=crossed)  # complete at each file's end
        if on_file_end is not None:
            on_file_end(index, {"reader": np.array([index + 1, events, crossed, stats["messages"]])})
    stats.update(events=events, crossed_events=crossed)


# -------------------------------------------------------------------------------------------------- Bitstamp


def bitstamp_rows(
    paths: Sequence[Path],
    levels: int,
    uncross: bool = True,
    volume_unit: str = "auto",
    chunk: int = CHUNK,
    scan: bool = True,
) -> BookRows:
    """Bitstamp order-stream CSV files (in order) replayed on the compiled engine
    (:func:`~dilated.data.bitstamp_book`'s rules), ``chunk`` rows at a time after a first pass that fixes what the
    whole stream decides (:class:`~dilated.data._bitstamp_csv.StreamSettings`): memory stays flat however long the
    stream. ``scan``: the rows are read by the Numba scanner (:mod:`~dilated.data._bitstamp_scan`) where it knows the
    files, else (or with ``False``) by pandas (:mod:`~dilated.data._bitstamp_csv`); both give the same book."""
    files = [Path(p) for p in paths]
    scanned = scan_orders(files, volume_unit, TEXT_PER_ROW * chunk) if scan else None
    if scanned is not None:
        settings, pieces = scanned.settings, scanned.chunks(chunk)
    else:
        settings = stream_settings(files, volume_unit)
        pieces = _frame_orders(order_frames(files, settings, chunk), settings)
    stats = order_stats(0, settings.time_column, settings.volume_unit)
    chunks = _bitstamp_chunks(pieces, check_levels(levels), uncross, stats)
    return BookRows(describe_sources(files), "bitstamp", levels, chunks, stats)


_ACTION_CODES = {"created": engine.BS_CREATED, "changed": engine.BS_CHANGED, "deleted": engine.BS_DELETED}
_SIDE_CODES = {"ask": engine.ASK, "bid": engine.BID}
Orders = tuple[np.ndarray, ...]  # (rows,) each: times (ms), order id, action code, side code, price, volume (satoshi)


def _frame_orders(frames: Iterator[tuple[int, Any]], settings: StreamSettings) -> Iterator[tuple[int, Orders]]:
    """Chunks of checked rows read by pandas as the kernel's arrays; string ids numbered in order of appearance."""
    ids: dict[str, int] = {}
    for file, frame in frames:
        if settings.integer_ids:
            order_id = frame["id"].to_numpy(np.int64)
        else:
            order_id = np.array([ids.setdefault(v, len(ids)) for v in frame["id"].tolist()], dtype=np.int64)
        action, side = (
            np.array([codes[c] for c in frame[name].cat.categories], np.int64)[frame[name].cat.codes.to_numpy()]
            for name, codes in (("action", _ACTION_CODES), ("direction", _SIDE_CODES))
        )
        times = frame[settings.time_column].to_numpy(np.int64)
        units = satoshis(frame["volume"].to_numpy(np.float64), settings.volume_unit)
        yield file, (times, order_id, action, side, frame["price"].to_numpy(np.float64), units)


def _bitstamp_chunks(
    pieces: Iterator[tuple[int, Orders]], levels: int, uncross: bool, stats: dict[str, Any]
) -> Iterator[Piece]:
    """The rows, a chunk at a time, never across files; an event's rows (one time) are replayed together, the open
    one carried into the next chunk (and into the next file, where that file's first row has its time)."""
    book = engine.OrderBookArrays(np.float64)
    carried, carried_file, events = None, 0, 0
    for file, rows in pieces:
        stats["messages"] += len(rows[0])
        if carried is not None and file != carried_file and len(rows[0]) and rows[0][0] != carried[0][-1]:
            events += 1  # the open event ends with its file
            yield carried_file, *_replay_orders(carried, np.array([len(carried[0]) - 1]), book, levels, uncross)
            carried = None
        if carried is not None:
            rows = tuple(np.concatenate(pair) for pair in zip(carried, rows))
        times = rows[0]
        ends = np.flatnonzero(times[1:] != times[:-1])  # the events the next row closes
        stop = int(ends[-1]) + 1 if len(ends) else 0
        carried, carried_file = tuple(a[stop:] for a in rows), file
        if len(ends):
            events += len(ends)
            yield file, *_replay_orders(tuple(a[:stop] for a in rows), ends, book, levels, uncross)
    if carried is not None and len(carried[0]):
        events += 1
        yield carried_file, *_replay_orders(carried, np.array([len(carried[0]) - 1]), book, levels, uncross)
    counts = book.counts
    stats.update(
        unknown_deletes=int(counts[engine.BS_UNKNOWN_DELETES]),
        unknown_changes=int(counts[engine.BS_UNKNOWN_CHANGES]),
        uncross_events=int(counts[engine.BS_UNCROSS_EVENTS]),
        uncross_orders=int(counts[engine.BS_UNCROSS_ORDERS]),
        uncross_levels=int(counts[engine.BS_UNCROSS_LEVELS]),
        uncross_volume=round(int(counts[engine.BS_UNCROSS_VOLUME]) * SATOSHI, 8),
    )
    _finish(stats, counts, events)


def _replay_orders(
    rows: Orders, ends: np.ndarray, book: engine.OrderBookArrays, levels: int, uncross: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ending in whole events (``ends``: each event's last row) applied to ``book``: a book row per event."""
    book.reserve(len(rows[0]))
    out_ts, out_values = np.empty(len(ends), np.int64), np.empty((len(ends), 4 * levels))
    times, order_id, action, side, price, units = rows
    arrays = book.book_arrays()
    engine.bitstamp_chunk(
        ends, times, order_id, action, side, price, units, uncross, *arrays, levels, SATOSHI, out_ts, out_values
    )
    return out_ts, out_values


# --------------------------------------------------------------------------------------------------- Binance


def binance_rows(paths: Sequence[Path], levels: int, gaps: str, progress: bool = False) -> BookRows:
    """Binance depth recordings replayed on the compiled engine (:func:`~dilated.data.binance_book`'s rules), read
    a block of lines at a time (:mod:`~dilated.data._binance_lines`): memory stays flat however long the stream.
    Diffs before the snapshot wait for it; a second symbol is refused at the block that shows it."""
    from tqdm import tqdm

    files = list(paths)
    stats: dict[str, Any] = dict.fromkeys(
        ("lines", "snapshots", "other_messages", "diffs_before_snapshot_line", "diffs", "older_than_snapshot"), 0
    )
    stats.update(applied=0, gaps=0, first_gap=None)
    bar = tqdm(desc="binance", unit="diff", disable=bar_disabled(progress), leave=False)
    chunks = _binance_chunks(files, Recording(stats), check_levels(levels), gaps, bar)
    return BookRows(describe_sources(files), "binance", levels, chunks, stats)


def _binance_chunks(paths: list[Path], recording: Recording, levels: int, gaps: str, bar: Any) -> Iterator[Piece]:
    stats, waiting, book, stopped = recording.stats, list[DiffBlock](), None, False
    for block in diff_blocks(paths, recording):
        bar.update(len(block.lines))
        if len(recording.symbols) > 1:
            check_stream(paths, recording.symbols, True, 1)
        if stopped:  # after a gap only the counts go on
            continue
        waiting.append(block)
        if recording.snapshot is None:  # diffs before the snapshot line wait for it
            continue
        book = book or _level_book(recording.snapshot)
        for ready in waiting:
            piece, broken = _replay_diffs(ready, book, levels)
            yield piece
            if broken >= 0:
                _binance_gap(paths, ready, broken, book, gaps, stats)
                stopped = True
                break
        waiting = []
    bar.close()
    check_stream(paths, recording.symbols, recording.snapshot is not None, stats["diffs"])
    assert book is not None  # a snapshot was found
    stats.update(older_than_snapshot=int(book.counts[engine.BN_OLDER]), applied=int(book.counts[engine.BN_APPLIED]))
    _finish(stats, book.counts, int(book.counts[engine.BN_APPLIED]))


def _replay_diffs(block: DiffBlock, book: engine.LevelBookArrays, levels: int) -> tuple[Piece, int]:
    """A block's diffs applied to ``book``: its rows, and the index of the diff that breaks the sequence (-1: none;
    the diffs after it are not applied)."""
    diffs = len(block.lines)
    event_ms, first, final, previous_final, futures = np.ascontiguousarray(block.ints.T)
    offsets = np.concatenate([[0], np.cumsum(block.sides.sum(axis=1))])
    side = np.repeat(np.tile([engine.BID, engine.ASK], diffs), block.sides.ravel())
    book.reserve(len(block.price))
    out_ts, out_values = np.empty(diffs, np.int64), np.empty((diffs, 4 * levels))
    rows, broken = engine.binance_chunk(
        event_ms,
        first,
        final,
        previous_final,
        futures,
        offsets,
        side,
        block.price,
        block.size,
        book.state,
        book.counts,
        book.prices,
        book.sizes,
        book.n_side,
        levels,
        out_ts,
        out_values,
    )
    return (block.file, out_ts[:rows], out_values[:rows]), broken


def _binance_gap(
    paths: list[Path], block: DiffBlock, d: int, book: engine.LevelBookArrays, gaps: str, stats: dict[str, Any]
) -> None:
    """Count (or raise, ``gaps="raise"``) the gap at diff ``d`` of ``block``, as the Python reader words it."""
    _, first, final, previous_final, futures = (int(v) for v in block.ints[d])
    data = {"u": final, **({"pu": previous_final} if futures else {})}
    last_id = int(book.state[engine.BN_LAST_ID])
    previous = int(book.state[engine.BN_PREVIOUS]) if book.state[engine.BN_STARTED] else None
    reason = gap_reason(data, first, previous, last_id)
    assert reason is not None  # the kernel and gap_reason apply the same rules
    stats.update(older_than_snapshot=int(book.counts[engine.BN_OLDER]), applied=int(book.counts[engine.BN_APPLIED]))
    note_gap(stats, f"{paths[block.file]}:{block.lines[d]}", reason, previous or last_id, gaps)


def _level_book(snapshot: dict[str, Any]) -> engine.LevelBookArrays:
    """A level book holding ``snapshot``'s bids and asks (its lastUpdateId the sequence's start)."""
    bids, asks = snapshot.get("bids", []), snapshot.get("asks", [])
    pairs = np.array([*bids, *asks], dtype=np.float64).reshape(-1, 2)
    book = engine.LevelBookArrays(int(snapshot["lastUpdateId"]))
    book.reserve(len(pairs))
    side = np.repeat([engine.BID, engine.ASK], [len(bids), len(asks)])
    engine.set_levels(side, pairs[:, 0], pairs[:, 1], book.prices, book.sizes, book.n_side)
    return book
