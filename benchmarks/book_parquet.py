"""Parquet writer settings for book files: time and size of writing one generated MBO day's book (a measurement).

    python benchmarks/book_parquet.py [--messages 1000000] [--repeats 3]

The rows of a ``--messages`` synthetic Databento MBO day are rebuilt once, then written chunk by chunk (as
``dilated data convert`` writes them) under each setting: pyarrow's defaults (snappy, dictionary pages, statistics
on every column), the settings every book file is written with (:data:`~dilated.data._orderbook.PARQUET_OPTIONS`)
and their neighbours. Printed per setting: the least wall and CPU time of ``--repeats`` writes (CPU time is what
the write costs a free core, whatever the load), rows per CPU second, and the file's size; every file is read back
and checked equal to the rows.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from common import markdown_table
from dilated.data import synthetic_feed
from dilated.data._book_readers import mbo_rows
from dilated.data._orderbook import PARQUET_OPTIONS, book_schema, book_table

OFF = {"use_dictionary": False}
TS_STATS = {"write_statistics": ["ts"]}
SETTINGS: dict[str, dict[str, Any]] = {
    "pyarrow default (snappy, dictionary, all statistics)": {},
    "snappy, no dictionary": OFF,
    "snappy, no dictionary, statistics on ts": {**OFF, **TS_STATS},
    "lz4, no dictionary, statistics on ts": {"compression": "lz4", **OFF, **TS_STATS},
    "zstd 1, dictionary": {"compression": "zstd", "compression_level": 1},
    "zstd 1, no dictionary": {"compression": "zstd", "compression_level": 1, **OFF},
    "zstd 3, no dictionary, statistics on ts": {"compression": "zstd", "compression_level": 3, **OFF, **TS_STATS},
    "uncompressed, no dictionary": {"compression": "none", **OFF},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="book_parquet_"))
    day = synthetic_feed("databento-mbo", work / "day.mbo.dbn.zst", args.messages, seed=2)
    pieces = [(ts, values) for _, ts, values in mbo_rows(day, 10).chunks]
    schema = book_schema(10)
    tables = [book_table(ts, values, schema) for ts, values in pieces]
    rows = sum(t.num_rows for t in tables)
    expected = np.concatenate([v for _, v in pieces])
    settings = {**SETTINGS, "the books' settings (PARQUET_OPTIONS)": PARQUET_OPTIONS}
    out, table = work / "book.parquet", []
    for name, options in settings.items():
        walls, cpus = [], []
        for _ in range(args.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            with pq.ParquetWriter(out, schema, **options) as writer:
                for chunk in tables:
                    writer.write_table(chunk)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        back = pq.read_table(out).to_pandas().drop(columns="ts").to_numpy()
        assert np.array_equal(back, expected, equal_nan=True)
        table.append(
            [
                name,
                f"{min(walls):.3f}",
                f"{min(cpus):.3f}",
                f"{rows / min(cpus):,.0f}",
                f"{os.path.getsize(out) / 2**20:.1f}",
            ]
        )
    print(f"{rows:,} book rows of {args.messages:,} messages, 10 levels; load {os.getloadavg()[0]:.1f}\n")
    print(markdown_table(["setting", "wall s", "CPU s", "rows/CPU-s", "MiB"], table))


if __name__ == "__main__":
    main()
