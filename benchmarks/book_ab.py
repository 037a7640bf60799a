"""Two source trees of `dilated`, A/B, interleaved: the MBO end-to-end conversion and the dataset resume.

    python benchmarks/book_ab.py --old /work/main/src --new src [--rounds 3] [--messages 1000000]

Each round runs, in fresh processes, old then new: :func:`~dilated.data.convert_book_file` of a generated
``--messages`` Databento MBO day (file in, Parquet out; the best of 3, wall and CPU time), then
``benchmarks/book_resume.py`` (its resume and new-day-alone rows, wall and CPU time). Interleaving spreads the machine's load over both;
the load average is printed per run. The day is generated once, by the new tree.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import markdown_table

HERE = Path(__file__).resolve().parent
END_TO_END = """
import os, sys, time
from dilated.data._convert import convert_book_file
day, out = sys.argv[1], sys.argv[2]
convert_book_file(day, out)  # compile and import first
walls, cpus = [], []
for _ in range(3):
    wall, cpu = time.perf_counter(), time.process_time()
    convert_book_file(day, out)
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)
print(min(walls), min(cpus), os.path.getsize(out), os.getloadavg()[0])
"""


def run(source: Path, *command: str) -> str:
    env = {**os.environ, "PYTHONPATH": f"{source.resolve()}{os.pathsep}{HERE}"}
    return subprocess.run([sys.executable, *command], env=env, check=True, capture_output=True, text=True).stdout


def resume_row(output: str, start: str) -> tuple[float, float]:
    """Wall and CPU seconds of book_resume.py's row starting with ``start``."""
    cells = next(line for line in output.splitlines() if line.startswith(f"| {start}")).split("|")
    return float(cells[2]), float(cells[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", type=Path, required=True, help="the baseline's src folder")
    parser.add_argument("--new", type=Path, required=True, help="the candidate's src folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--per-day", type=int, default=200_000, help="book_resume.py's messages per day")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="book_ab_"))
    day = work / "day.mbo.dbn.zst"
    make = f"from dilated.data import synthetic_feed; synthetic_feed('databento-mbo', {str(day)!r}, {args.messages}, seed=2)"
    run(args.new, "-c", make)
    header = ["round", "tree", "e2e msgs/s", "e2e msgs/CPU-s", "Parquet MiB", "resume s (CPU)", "new day alone s (CPU)"]
    header += ["resume / alone (CPU)", "load"]
    rows = []
    for n_round in range(1, args.rounds + 1):
        for name, source in (("old", args.old), ("new", args.new)):
            wall, cpu, size, load = map(
                float, run(source, "-c", END_TO_END, str(day), str(work / "out.parquet")).split()
            )
            resume = run(source, str(HERE / "book_resume.py"), "--per-day", str(args.per_day))
            resumed, alone = resume_row(resume, "resume"), resume_row(resume, "the new day alone")
            rows.append(
                [
                    str(n_round),
                    name,
                    f"{args.messages / wall:,.0f}",
                    f"{args.messages / cpu:,.0f}",
                    f"{size / 2**20:.1f}",
                    f"{resumed[0]:.2f} ({resumed[1]:.2f})",
                    f"{alone[0]:.2f} ({alone[1]:.2f})",
                    f"{resumed[1] / alone[1]:.2f}",
                    f"{load:.1f}",
                ]
            )
            print(markdown_table(header, rows[-1:]), flush=True)
    print()
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
