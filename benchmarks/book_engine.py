"""The compiled book engine against the pure-Python book, in the same run (a speed target, not a test).

    python benchmarks/book_engine.py [--messages 2000000] [--oracle-messages 200000] [--rounds 1] [--data ../shared/data]

Targets (issue 22), counted in input messages: rebuild from decoded MBO arrays >= 1M msgs/s on one core and within
3x of the decode floor (zstd decompress + np.frombuffer of the same records); file -> Parquet >= 600k MBO msgs/s;
Bitstamp >= 1M rows/s; Binance >= 200k lines/s. Prints markdown tables: per format the compiled and the Python
reader on the same generated file (``--oracle-messages``: the Python reader is slow), the compiled engine alone on
a ``--messages`` MBO day (decode floor, in-memory rebuild, Parquet write, end to end in wall and in CPU time, an
MBP-10 day of a quarter of the messages end to end, peak traced memory of the streaming conversion at a quarter
and at the full size), the real files when present, and the book-only latency
of one message (timed inside compiled code, one message at a time).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zstandard
from numba import njit

from common import markdown_table, shared_data
from dilated.data import _book_engine as engine
from dilated.data import (
    binance_book,
    bitstamp_book,
    databento_mbo_book,
    databento_mbp10_book,
    synthetic_feed,
    write_book,
)
from dilated.data._book_readers import CHUNK, PRICE_SCALE, mbo_rows
from dilated.data._convert import convert_book, convert_book_file
from dilated.data._dbn_records import MBO_DTYPE, DbnRecords

REAL = {  # name: files under the data folder, in time order
    "databento ESH4 MBO": [
        "databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst",
        "databento/esh4-glbx-mdp3-20231225.mbo.dbn.zst",
    ],
    "bitstamp 2026-05-02": ["bitstamp/2026-05-02/orders.csv.gz"],
    "binance COIN-M BTCUSD_PERP": ["binance/cm/btcusd_perp_20240808.gz", "binance/cm/btcusd_perp_20240809.gz"],
}


def best(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """The shortest of ``repeats`` wall times, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def least_cpu(fn: Callable[[], object], repeats: int) -> float:
    """The least CPU time of ``repeats`` calls (the process's, all its threads): what the work costs a free core,
    whatever the machine's load."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def count(book: object, unit: str) -> int:
    stats = book.stats  # type: ignore[attr-defined]
    return int(stats["lines"] if unit == "lines" else stats["messages"])


def decode_floor(path: Path) -> np.ndarray:
    """zstd decompress + np.frombuffer of the records: the least any reader pays."""
    raw = zstandard.ZstdDecompressor().stream_reader(path.read_bytes()).read()
    header = 8 + int.from_bytes(raw[4:8], "little")
    return np.frombuffer(raw, dtype=MBO_DTYPE, offset=header)


def rebuild(records: np.ndarray, levels: int = 10) -> int:
    """The compiled MBO replay of decoded records, chunk by chunk; returns the events."""
    book, events = engine.OrderBookArrays(np.int64), 0
    for start in range(0, len(records), CHUNK):
        part = records[start : start + CHUNK]
        book.reserve(len(part))
        out_ts, out_values = np.empty(len(part), np.int64), np.empty((len(part), 4 * levels))
        events += engine.mbo_chunk(
            part["ts_recv"],
            part["order_id"],
            part["price"],
            part["size"],
            part["action"],
            part["side"],
            part["flags"],
            *book.book_arrays(),
            levels,
            PRICE_SCALE,
            out_ts,
            out_values,
        )
    return events


def peak_memory(fn: Callable[[], object]) -> float:
    """Peak traced allocation (NumPy's included) of ``fn()`` in MiB."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


_LIBC = ctypes.CDLL(None)
_clock_gettime = _LIBC.clock_gettime
_clock_gettime.argtypes = (ctypes.c_int, ctypes.c_void_p)
_clock_gettime.restype = ctypes.c_int
_MONOTONIC = 1


@njit
def _now(spec: np.ndarray) -> int:
    _clock_gettime(_MONOTONIC, spec.ctypes.data)
    return spec[0] * 1_000_000_000 + spec[1]


@njit
def _timed_mbo(
    fields: tuple[np.ndarray, ...], arrays: tuple[np.ndarray, ...], out_ts: np.ndarray, out_values: np.ndarray
) -> tuple[np.ndarray, int]:
    """Per message: ns to apply it (and record its row if it ends an event), read with clock_gettime inside the
    compiled code; and the median cost of the clock reads alone."""
    ts_recv, order_id, price, size, action, side, flags = fields
    spec = np.zeros(2, np.int64)
    empty = np.empty(1000, np.int64)
    for k in range(1000):
        begin = _now(spec)
        empty[k] = _now(spec) - begin
    times = np.empty(len(ts_recv), np.int64)
    state, counts, keys, slots, orders, order_prices, prices, sizes, heads, tails, n_side = arrays
    for m in range(len(ts_recv)):
        begin = _now(spec)
        engine.mbo_chunk(
            ts_recv[m : m + 1],
            order_id[m : m + 1],
            price[m : m + 1],
            size[m : m + 1],
            action[m : m + 1],
            side[m : m + 1],
            flags[m : m + 1],
            state,
            counts,
            keys,
            slots,
            orders,
            order_prices,
            prices,
            sizes,
            heads,
            tails,
            n_side,
            10,
            PRICE_SCALE,
            out_ts,
            out_values,
        )
        times[m] = _now(spec) - begin
    return times, int(np.median(empty))


def latency(path: Path, messages: int) -> dict[str, float]:
    """Nanoseconds to apply one MBO message to the compiled book, timed inside compiled code (the clock reads'
    own median cost subtracted): p50 / p99 / p99.9 over ``messages`` messages of the day."""
    with DbnRecords(path) as reader:
        records = np.concatenate(list(reader.chunks(CHUNK)))[:messages]
    book = engine.OrderBookArrays(np.int64)
    book.reserve(len(records))
    out_ts, out_values = np.empty(1, np.int64), np.empty((1, 40))
    names = ("ts_recv", "order_id", "price", "size", "action", "side", "flags")
    fields = tuple(np.ascontiguousarray(records[n]) for n in names)
    times, clock = _timed_mbo(fields, book.book_arrays(), out_ts, out_values)
    p50, p99, p999 = np.percentile(times - clock, [50, 99, 99.9])
    return {"p50": p50, "p99": p99, "p99.9": p999, "call": clock}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2_000_000, help="messages of the generated MBO day")
    parser.add_argument("--oracle-messages", type=int, default=200_000, help="messages of the oracle comparisons")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of decode floor + rebuild, each printed")
    parser.add_argument("--data", type=Path, default=shared_data(), help="the shared data folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="book_engine_"))
    synthetic_feed("databento-mbo", work / "warm.dbn", 2_000)  # compile every kernel outside the timings
    databento_mbo_book(work / "warm.dbn")

    print(f"## Compiled vs Python on generated feeds ({args.oracle_messages:,} simulated messages)\n")
    rows = []
    for name, format, file, reader, unit in (
        ("databento MBO", "databento-mbo", "mbo.dbn.zst", databento_mbo_book, "messages"),
        ("databento MBP-10", "databento-mbp10", "mbp10.dbn.zst", databento_mbp10_book, "messages"),
        ("bitstamp", "bitstamp", "orders.csv", bitstamp_book, "rows"),
        ("binance", "binance", "depth.txt", binance_book, "lines"),
    ):
        path = synthetic_feed(format, work / file, args.oracle_messages, seed=1)
        reader(path)
        fast, book = best(lambda: reader(path), args.repeats)  # noqa: B023 - called at once
        slow, oracle = best(lambda: reader(path, engine="python"), 1)  # noqa: B023
        assert np.array_equal(book.values, oracle.values, equal_nan=True) and book.stats == oracle.stats  # type: ignore[attr-defined]
        n = count(book, unit)
        rows.append([name, f"{n:,} {unit}", f"{n / fast:,.0f}", f"{n / slow:,.0f}", f"{slow / fast:.1f}x"])
    print(markdown_table(["feed", "input", "compiled /s", "python /s", "speed-up"], rows))

    print(f"\n## Databento MBO day, compiled engine ({args.messages:,} messages, generated)\n")
    start = time.perf_counter()
    day = synthetic_feed("databento-mbo", work / "day.mbo.dbn.zst", args.messages, seed=2)
    generated = time.perf_counter() - start
    for n_round in range(args.rounds):  # the ratio moves with the machine's load: several rounds show how much
        floor, records = best(lambda: decode_floor(day), args.repeats)
        replay, _ = best(lambda: rebuild(records), args.repeats)  # type: ignore[arg-type]  # noqa: B023 - called at once
        if args.rounds > 1:
            load = os.getloadavg()[0]
            print(
                f"round {n_round + 1}: rebuild {args.messages / replay:,.0f}/s, {replay / floor:.2f}x floor, load {load:.1f}"
            )
    built, book = best(lambda: mbo_rows(day, 10).book(), 1)
    write, _ = best(lambda: write_book(book, work / "day.parquet"), 1)  # type: ignore[arg-type]
    end_to_end, _ = best(lambda: convert_book_file(day, work / "day_stream.parquet"), args.repeats)
    end_to_end_cpu = least_cpu(lambda: convert_book_file(day, work / "day_stream.parquet"), args.repeats)
    mbp10 = synthetic_feed("databento-mbp10", work / "day.mbp10.dbn.zst", args.messages // 4, seed=2)
    mbp10_time, _ = best(lambda: convert_book_file(mbp10, work / "mbp10.parquet"), args.repeats)
    quarter = synthetic_feed("databento-mbo", work / "quarter.mbo.dbn.zst", args.messages // 4, seed=2)
    memory_quarter = peak_memory(lambda: convert_book_file(quarter, work / "q.parquet"))
    memory_full = peak_memory(lambda: convert_book_file(day, work / "f.parquet"))
    memory_book = peak_memory(lambda: mbo_rows(day, 10).book())
    n = args.messages
    rows = [
        ["generate the day (simulate + DBN encode + zstd)", f"{generated:.2f}", f"{n / generated:,.0f}", ""],
        ["decode floor: zstd + np.frombuffer", f"{floor:.3f}", f"{n / floor:,.0f}", "1.0"],
        [
            "rebuild from decoded arrays (target >= 1M/s, <= 3x floor)",
            f"{replay:.3f}",
            f"{n / replay:,.0f}",
            f"{replay / floor:.2f}",
        ],
        ["read + rebuild to a Book in memory", f"{built:.3f}", f"{n / built:,.0f}", f"{built / floor:.2f}"],
        ["write_book (Parquet) of that Book", f"{write:.3f}", "", ""],
        [
            "end to end file -> Parquet, streaming (target >= 600k/s)",
            f"{end_to_end:.3f}",
            f"{n / end_to_end:,.0f}",
            f"{end_to_end / floor:.2f}",
        ],
        [
            "the same, CPU time (all threads; free of the machine's load)",
            f"{end_to_end_cpu:.3f}",
            f"{n / end_to_end_cpu:,.0f}",
            "",
        ],
        [
            f"MBP-10 end to end file -> Parquet ({n // 4:,} messages, generated)",
            f"{mbp10_time:.3f}",
            f"{n // 4 / mbp10_time:,.0f}",
            "",
        ],
    ]
    print(markdown_table(["step", "s", "messages/s", "x floor"], rows))
    print(
        f"\nEvents {len(book):,}. Peak traced memory: streaming file -> Parquet {memory_quarter:.0f} MiB at "  # type: ignore[arg-type]
        f"{n // 4:,} messages, {memory_full:.0f} MiB at {n:,}; to a Book in memory {memory_book:.0f} MiB at {n:,}."
    )

    print("\n## Real files (compiled vs Python, same run)\n")
    rows = []
    for name, files in REAL.items():
        paths = [args.data / f for f in files]
        if not all(p.is_file() for p in paths):
            rows.append([name, f"skipped: {paths[0]} not found", "", "", ""])
            continue
        unit = "lines" if name.startswith("binance") else "messages"
        fast, book = best(lambda: convert_book(paths), args.repeats)  # noqa: B023
        slow, _ = best(lambda: convert_book(paths, engine="python"), 1)  # noqa: B023
        n = count(book, unit)
        rows.append([name, f"{n:,} {unit}", f"{n / fast:,.0f}", f"{n / slow:,.0f}", f"{slow / fast:.1f}x"])
    print(markdown_table(["feed", "input", "compiled /s", "python /s", "speed-up"], rows))

    lat = latency(day, min(200_000, args.messages))
    print(
        "\n## Book-only latency of one MBO message (compiled)\n\n"
        + markdown_table(
            ["p50 ns", "p99 ns", "p99.9 ns", "clock read ns (subtracted)"],
            [[f"{lat['p50']:.0f}", f"{lat['p99']:.0f}", f"{lat['p99.9']:.0f}", f"{lat['call']:.0f}"]],
        )
    )


if __name__ == "__main__":
    main()
