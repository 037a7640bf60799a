"""Training memory and window throughput of the ``book`` data kind on a dataset folder, against the number of days.

    python benchmarks/book_dataset_training.py [--days 3 6 12] [--events 100000] [--windows 100000]

Writes synthetic random-walk books (10 levels, ``--events`` per day) as a dataset folder, then, per size, in a fresh
process: builds the splits (:func:`dilated.data.dataset_splits`: statistics streamed over the training days, each
day memory-mapped) and serves ``--windows`` shuffled training windows through a DataLoader (batch 256). Reports the
peak of Python/numpy allocations plus Arrow's pool (tracemalloc, above the interpreter's baseline), the peak RSS,
build seconds and windows/s; beside it the same days as one Parquet book read whole (:func:`book_splits`), the
in-memory baseline, measured the same way in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import markdown_table
from dilated.data import Book, write_book

DAY_NS = 86_400 * 10**9
FIRST = int(np.datetime64("2024-01-02T12:00", "ns").astype(np.int64))
MEASURE = """
import json, resource, sys, time, tracemalloc
import pyarrow as pa, pyarrow.parquet
from torch.utils.data import DataLoader
from dilated.data import book_splits, dataset_splits
from dilated.data._book_days import read_day
from dilated.training._datamodule import ResumableSampler
path, windows = sys.argv[1], int(sys.argv[2])
tracemalloc.start()
start = time.perf_counter()
splits = (dataset_splits if path.endswith("/") else book_splits)(path, levels=10, window=100, horizon=10)
built = time.perf_counter()
loader = DataLoader(splits.train, batch_size=256, sampler=ResumableSampler(len(splits.train), seed=0))
served = 0
for x, _ in loader:
    served += len(x)
    if served >= windows:
        break
done = time.perf_counter()
print(json.dumps({"traced": tracemalloc.get_traced_memory()[1] + pa.default_memory_pool().max_memory(),
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "build_s": built - start,
                  "windows_per_s": served / (done - built), "train_windows": len(splits.train)}))
"""


def random_walk_day(events: int, seed: int) -> np.ndarray:
    """``(events, 40)`` book values: a mid moving by half ticks, 10 levels a side one tick apart, random sizes."""
    rng = np.random.default_rng(seed)
    mid = 4000 + np.cumsum(rng.choice([-0.125, 0, 0, 0.125], events))
    values = np.empty((events, 40))
    for level in range(10):
        values[:, 4 * level] = mid + 0.125 + 0.25 * level
        values[:, 4 * level + 2] = mid - 0.125 - 0.25 * level
        values[:, 4 * level + 1] = rng.integers(1, 50, events)
        values[:, 4 * level + 3] = rng.integers(1, 50, events)
    return values


def measure(path: str, windows: int) -> dict:
    run = subprocess.run([sys.executable, "-c", MEASURE, path, str(windows)], capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(run.stderr[-2000:])
    return json.loads(run.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, nargs="+", default=[3, 6, 12])
    parser.add_argument("--events", type=int, default=100_000, help="book events per day")
    parser.add_argument("--windows", type=int, default=100_000, help="training windows served per measurement")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for days in args.days:
            root, ts, values = Path(folder) / f"d{days}", [], []
            for day in range(days):
                stamps = FIRST + day * DAY_NS + np.arange(args.events, dtype=np.int64) * 10**6
                rows_of_day = random_walk_day(args.events, day)
                date = str(np.datetime64(int(stamps[0]), "ns").astype("datetime64[D]"))
                part = root / "instrument=SYN" / f"date={date}" / "part-0.parquet"
                part.parent.mkdir(parents=True)
                write_book(Book(stamps, rows_of_day, "synthetic"), part)
                ts.append(stamps)
                values.append(rows_of_day)
            whole = write_book(Book(np.concatenate(ts), np.concatenate(values), "synthetic"), Path(folder) / "w.pq")
            del ts, values
            lazy, eager = measure(f"{root}/", args.windows), measure(str(whole), args.windows)
            rows.append(
                [
                    days,
                    f"{days * args.events:,}",
                    f"{lazy['train_windows']:,}",
                    f"{lazy['traced'] / 2**20:.1f}",
                    f"{lazy['rss'] / 2**20:.0f}",
                    f"{lazy['build_s']:.1f}",
                    f"{lazy['windows_per_s']:,.0f}",
                    f"{eager['traced'] / 2**20:.1f}",
                    f"{eager['rss'] / 2**20:.0f}",
                    f"{eager['windows_per_s']:,.0f}",
                ]
            )
            print(f"{days} days measured", file=sys.stderr)
    header = [
        "days",
        "events",
        "train windows",
        "dataset peak MiB",
        "dataset RSS MiB",
        "build s",
        "windows/s",
        "one book peak MiB",
        "one book RSS MiB",
        "one book windows/s",
    ]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
