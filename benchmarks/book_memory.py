"""Peak memory of the streaming book conversion against the length of the stream (a memory target, not a test).

    python benchmarks/book_memory.py [--day 10000000] [--days 5 20] [--per-day 500000] [--formats ...]

Issue 22: memory flat in the length of the stream, peak memory above the interpreter's baseline not growing with
the number of days. Generates (outside the timings) one Databento MBO day of ``--day`` messages, and, per format,
``--days`` day files of ``--per-day`` messages (:func:`day_files`); then, each in a fresh process, converts
them: the day with :func:`~dilated.data.convert_book_file`, the days with :func:`~dilated.data.convert_dataset`
(one process, one instrument). Prints the peak traced allocations (tracemalloc: Python and NumPy; Arrow's pool
added) and the peak RSS (above that of a warm-up conversion of a 2,000-message file), with messages per second.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import markdown_table
from dilated.data import synthetic_feed

DAY_NS = 86_400 * 10**9
FIRST = 1_704_196_800 * 10**9  # 2024-01-02 12:00 UTC
MEASURE = """
import json, resource, sys, time, tracemalloc
import pyarrow as pa
from pathlib import Path
from dilated.data import convert_book_file, convert_dataset
files, out, warm = [Path(p) for p in json.loads(sys.argv[1])], sys.argv[2], sys.argv[3]
convert_book_file(warm, out + "-warm.parquet")  # compile and import first, on a small file
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
start = time.perf_counter()
if len(files) == 1:
    convert_book_file(files[0], out + ".parquet")
else:
    convert_dataset(files, out + "/", processes=1, instrument="SYN")
seconds = time.perf_counter() - start
traced = tracemalloc.get_traced_memory()[1]
print(json.dumps({"seconds": seconds, "traced": traced + pa.total_allocated_bytes(),
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "baseline_rss": baseline}))
"""


def measure(files: list[Path], out: Path, format: str) -> dict[str, float]:
    warm = synthetic_feed(format, out.with_name(f"warm-{format}.txt"), 2_000, seed=0)
    run = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps([str(f) for f in files]), str(out), str(warm)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--day", type=int, default=10_000_000, help="messages of the one long MBO day (0: skip)")
    parser.add_argument("--days", type=int, nargs="+", default=[5, 20], help="dataset sizes in days")
    parser.add_argument("--per-day", type=int, default=250_000, help="messages per day of the datasets")
    parser.add_argument("--formats", nargs="+", default=["databento-mbo", "binance", "bitstamp"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="book_memory_"))
    rows = []
    if args.day:
        day = synthetic_feed("databento-mbo", work / "day.mbo.dbn.zst", args.day, seed=1, start=FIRST)
        result = measure([day], work / "day", "databento-mbo")
        rows.append(["databento-mbo", f"one day, {args.day:,} messages", *cells(result, args.day)])
    for format in args.formats:
        files = day_files(format, work, max(args.days), args.per_day)
        for days in args.days:
            result = measure(files[:days], work / f"{format}-{days}", format)
            messages = days * args.per_day
            rows.append([format, f"{days} days, {messages:,} simulated messages", *cells(result, messages)])
    print(markdown_table(["format", "input", "peak traced MiB", "peak RSS MiB (above start)", "msgs/s"], rows))


def day_files(format: str, work: Path, days: int, per_day: int) -> list[Path]:
    """``days`` files of ``per_day`` simulated messages: MBO days each its own session (a new seed, a snapshot, one
    day later); Binance and Bitstamp one recording cut into ``days`` files (its book flows through them)."""
    if format == "databento-mbo":
        return [
            synthetic_feed(format, work / f"syn-{k:02d}.mbo.dbn.zst", per_day, seed=10 + k, start=FIRST + k * DAY_NS)
            for k in range(days)
        ]
    whole = synthetic_feed(format, work / f"whole-{format}.txt", days * per_day, seed=10, start=FIRST)
    with open(whole) as text:
        header = text.readline() if format == "bitstamp" else ""
        lines = text.readlines() if format == "bitstamp" else [text.readline(), *text.readlines()]
    whole.unlink()
    files = []
    for k in range(days):
        files.append(work / f"syn-{format}-{k:02d}.txt")
        files[-1].write_text(header + "".join(lines[k * len(lines) // days : (k + 1) * len(lines) // days]))
    return files


def cells(result: dict[str, float], messages: int) -> list[str]:
    return [
        f"{result['traced'] / 2**20:.0f}",
        f"{result['rss'] / 2**10:.0f} ({(result['rss'] - result['baseline_rss']) / 2**10:.0f})",
        f"{messages / result['seconds']:,.0f}",
    ]


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"\n({time.perf_counter() - start:.0f} s)")
