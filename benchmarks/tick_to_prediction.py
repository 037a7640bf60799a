"""Tick to prediction: from one raw Databento MBO message to a model's output, per message, on the ESH4 day.

Per message, timed with ``time.perf_counter_ns`` around the whole path in Python, as a live process would run it:
the compiled book engine applies the message (``mbo_chunk`` on a one-record slice of the decoded records); when the
message ends a book event, the new book row (10 levels x ask/bid price/size) becomes features (a z-score with
statistics taken from the session's snapshot file, empty levels 0) and one streaming step of the model runs:
a TCN (8 levels of 32 channels, kernel 3: receptive field 1021 events) on the compiled kernel
(``dilated.stream``, ``FastStream``), and TransLOB (the paper's model, window 100) by ``dilated.WindowStream``
(every step equals ``model(window)``). The models are untrained (random weights): the latency does not depend on
the weights. Beside them, the book-only latency: the same Python call without features or model, and the engine's
own cost timed inside compiled code (``benchmarks/book_engine.py``'s ``latency``).

Percentiles are over every message of the day (messages that end no event cost the book update only) and over the
messages that end an event (a model step). Decoding (zstd + ``np.frombuffer``) is done once before timing, as a
feed handler would hand over decoded records.

Run: ``python benchmarks/tick_to_prediction.py [--messages N]`` (default: the whole day, 68,792 messages). One
torch thread. Skips with a message when the ESH4 files are absent from the shared data folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

import dilated
from book_engine import latency
from common import environment, markdown_table, shared_data
from dilated.data import _book_engine as engine
from dilated.data._book_readers import CHUNK, PRICE_SCALE, mbo_rows
from dilated.data._dbn_records import DbnRecords

SNAPSHOT, DAY = "esh4-glbx-mdp3-20231224.mbo.dbn.zst", "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
FIELDS = ("ts_recv", "order_id", "price", "size", "action", "side", "flags")
LEVELS = 10


def features(mean: np.ndarray, std: np.ndarray) -> Callable[[np.ndarray], torch.Tensor]:
    """A book row ``(4 * levels,)`` -> the model's input step ``(1, 4 * levels)`` float32: z-scored, empty levels 0."""

    def make(row: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.nan_to_num((row - mean) / std).astype(np.float32)).view(1, -1)

    return make


def replay(
    fields: tuple[np.ndarray, ...], book: engine.OrderBookArrays, step: Callable[[np.ndarray], object] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Apply every message, running ``step`` on each new book row; ns per message ``(messages,)`` and whether it
    ended an event ``(messages,)``."""
    out_ts, out_values = np.empty(1, np.int64), np.empty((1, 4 * LEVELS))
    arrays = book.book_arrays()
    times, events = np.empty(len(fields[0]), np.int64), np.zeros(len(fields[0]), bool)
    clock, apply = time.perf_counter_ns, cast(Any, engine.mbo_chunk)  # (Numba's dispatcher stubs fix its arity)
    for m in range(len(fields[0])):
        begin = clock()
        rows = apply(*(f[m : m + 1] for f in fields), *arrays, LEVELS, PRICE_SCALE, out_ts, out_values)
        if rows and step is not None:
            step(out_values[0])
        times[m] = clock() - begin
        events[m] = rows > 0
    return times, events


def percentiles(ns: np.ndarray) -> list[str]:
    """p50 / p99 / p99.9 of ``ns`` in µs (blank when there is none)."""
    return [f"{v / 1000:.1f}" for v in np.percentile(ns, [50, 99, 99.9])] if len(ns) else ["", "", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=0, help="messages of the day to time (default: all)")
    parser.add_argument("--data", type=Path, default=shared_data(), help="the shared data folder")
    args = parser.parse_args()
    snapshot, day = args.data / "databento" / SNAPSHOT, args.data / "databento" / DAY
    if not (snapshot.is_file() and day.is_file()):
        print(f"skipped: the ESH4 files are not in {args.data / 'databento'} ({SNAPSHOT}, {DAY})")
        return
    torch.set_num_threads(1)
    with DbnRecords(day) as reader:
        records = np.concatenate(list(reader.chunks(CHUNK)))
    if args.messages:
        records = records[: args.messages]
    fields = tuple(np.ascontiguousarray(records[name]) for name in FIELDS)
    opening = mbo_rows(snapshot, LEVELS).book().values  # the session's opening book: the features' statistics
    mean, std = np.nanmean(opening, axis=0), np.nanstd(opening, axis=0)
    std[~(std > 0)] = 1.0
    make = features(np.nan_to_num(mean), std)

    tcn = dilated.build_model("tcn", input_channels=4 * LEVELS, num_channels=(32,) * 8, kernel_size=3, output_size=3)
    translob = dilated.build_model("translob", num_features=4 * LEVELS)
    tcn_stream = dilated.stream(tcn.eval(), 1)
    window_stream = dilated.WindowStream(translob.eval(), 1)
    assert tcn_stream.backend == "fast", tcn_stream.backend  # the compiled kernel ran, not the eager fallback

    def run(step: Callable[[torch.Tensor], object] | None) -> tuple[np.ndarray, np.ndarray]:
        with DbnRecords(snapshot) as reader:  # the session opens with the snapshot file, untimed
            opening_records = np.concatenate(list(reader.chunks(CHUNK)))
        book = engine.OrderBookArrays(np.int64)
        book.reserve(len(opening_records) + len(records))  # room for every order: no growth inside the timings
        replay(tuple(np.ascontiguousarray(opening_records[name]) for name in FIELDS), book, None)
        with torch.inference_mode():
            return replay(fields, book, None if step is None else lambda row: step(make(row)))

    run(lambda x: tcn_stream.step(x))  # warm-up: compile and allocate outside the timings
    rows = []
    results = {
        "book only (Python call per message)": run(None),
        "book + features + TCN step (FastStream)": run(lambda x: tcn_stream.step(x)),
        "book + features + TransLOB step (WindowStream)": run(lambda x: window_stream.step(x)),
    }
    for name, (times, events) in results.items():
        rows.append([name, *percentiles(times), *percentiles(times[events])])
    inside = latency(day, len(records))
    inside_row = [f"{inside[k] / 1000:.2f}" for k in ("p50", "p99", "p99.9")]
    rows.insert(0, ["book only (timed inside compiled code)", *inside_row, "", "", ""])
    ended = int(results["book only (Python call per message)"][1].sum())
    print(f"## Tick to prediction, ESH4 ({len(records):,} messages, {ended:,} end a book event; untrained models)\n")
    header = ["path", "p50 µs", "p99 µs", "p99.9 µs", "event p50 µs", "event p99 µs", "event p99.9 µs"]
    print(markdown_table(header, rows))
    print(f"\n{environment(threads=1)}", file=sys.stderr)


if __name__ == "__main__":
    main()
