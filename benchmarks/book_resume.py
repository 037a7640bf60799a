"""What a resumed ``dilated data convert -o DIR/`` pays to replay the days it converted before (a measurement).

    python benchmarks/book_resume.py [--days 5] [--per-day 200000]

A dataset of ``--days`` synthetic Databento MBO days (one instrument, ``--per-day`` messages each, one day after the
other, :func:`book_memory.day_files`) is converted; then one more day arrives and the same command runs again: the
resumed run goes on from the book state saved after the last converted day (or, without one, replays the earlier
days: their book state flows into the new day; their rows are not written) and writes the new day; the manifest's
``replayed`` says which. Printed beside it, in the same run: converting the new day alone (the least a resume can
cost) and converting all the days from scratch. One process (``processes=1``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from book_memory import day_files
from common import markdown_table
from dilated.data import convert_dataset


def timed(files: list[Path], out: Path) -> tuple[float, float]:
    """Wall and CPU seconds (the process's, all threads: free of the machine's load) of one conversion."""
    wall, cpu = time.perf_counter(), time.process_time()
    convert_dataset(files, out, processes=1, instrument="SYN")
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=5, help="days converted before the new one")
    parser.add_argument("--per-day", type=int, default=200_000, help="messages per day")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="book_resume_"))
    files = day_files("databento-mbo", work, args.days + 1, args.per_day)
    timed(files[:1], work / "warm")  # compile and import first
    first = timed(files[:-1], work / "books")
    resumed = timed(files, work / "books")
    manifest = json.loads((work / "books" / "_manifest.json").read_text())
    replayed = manifest["instruments"]["SYN"].get("replayed", "not recorded")
    alone = timed(files[-1:], work / "alone")
    shutil.rmtree(work / "books")
    scratch = timed(files, work / "books")
    n = args.per_day
    rows = [
        [f"convert {args.days} days", *first, ""],
        [f"resume: day {args.days + 1} added (days replayed: {replayed}; writes 1)", *resumed, "1.00"],
        ["the new day alone (the least a resume can cost)", *alone, f"{alone[1] / resumed[1]:.2f}"],
        [f"all {args.days + 1} days from scratch", *scratch, f"{scratch[1] / resumed[1]:.2f}"],
    ]
    print(
        markdown_table(
            ["run", "s", "CPU s", "x resume (CPU)"], [[r[0], f"{r[1]:.2f}", f"{r[2]:.2f}", r[3]] for r in rows]
        )
    )
    print(
        f"\nIn CPU time a resume pays {(resumed[1] - alone[1]) / first[1]:.0%} of the first conversion beyond the new "
        f"day's own cost ({args.days} days of {n:,} messages converted before)."
    )


if __name__ == "__main__":
    main()
