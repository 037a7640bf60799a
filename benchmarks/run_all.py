"""Run every benchmark and collect the latest tables in docs/results.md.

    python benchmarks/run_all.py [--quick] [--only throughput tcn_tasks ...] [--threads 1] [--tf-python PATH]

Each benchmark writes ``docs/results/<name>.md`` (the table, with the machine, versions, seeds and wall time) and
``docs/results/<name>.csv``; this script runs them one after another (each in its own process, so none inherits
another's threads or allocator state), then regenerates ``docs/results.md`` from the files in ``docs/results/``.
``--quick`` runs every benchmark with a small budget (a smoke test, about 3 minutes in all); without it the whole set
takes about 20 minutes on a 2-core CPU (10 of them the TCN tasks). Benchmarks never assert a speed: they print
measured ratios.

The helpers the benchmarks share are in :mod:`common`.
"""

from __future__ import annotations

import argparse
import functools
import io
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from common import (  # noqa: F401
    RESULTS,
    ROOT,
    environment,
    first_table,
    interleaved,
    markdown_table,
    speedup,
    write_result,  # the helpers were here before: old "from common import ..." keeps working
)

SUMMARY = ROOT / "docs" / "results.md"

# (name, script, extra arguments of a --quick run). Scripts that write their own result take --out-dir; the
# others (conv1d.py, and streaming.py / generation.py when present) are wrapped: see run_foreign.
BENCHMARKS: list[tuple[str, str, list[str]]] = [
    ("conv1d", "conv1d.py", ["--repeats", "5"]),
    ("throughput", "throughput.py", ["--quick"]),
    ("tcn_tasks", "tcn_tasks.py", ["--quick"]),
    ("lob_reproduction", "lob_reproduction.py", ["--quick"]),
    ("lob_real", "lob_real.py", ["--quick"]),
    ("profile_training", "profile_training.py", ["--quick"]),
    ("streaming", "streaming.py", ["--quick"]),
    ("generation", "generation.py", ["--samples", "2000", "--naive-samples", "50"]),
]
OWN_RESULT = {"throughput", "tcn_tasks", "lob_reproduction", "profile_training", "lob_real"}


# ---- running ------------------------------------------------------------------------------------------------------


@functools.cache
def _help(script: Path) -> str:
    return subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=ROOT, timeout=300, check=False
    ).stdout


def _accepts(script: Path, option: str) -> bool:
    return re.search(rf"(^|[\s\[,]){re.escape(option)}(?![\w-])", _help(script)) is not None


def _supported(script: Path, args: list[str]) -> list[str]:
    """``args`` without the options ``script`` does not take (with their values), so that a --quick run of a
    script that changed its options still runs."""
    kept, i = [], 0
    while i < len(args):
        option = args[i]
        value = [args[i + 1]] if i + 1 < len(args) and not args[i + 1].startswith("--") else []
        if _accepts(script, option):
            kept += [option, *value]
        i += 1 + len(value)
    return kept


def run_foreign(name: str, script: Path, args: list[str], threads: int) -> tuple[int, float]:
    """Run a benchmark that does not write its own result: its markdown output (``--out`` file if it takes one,
    else stdout) goes under a provenance header, and its first table into the CSV."""
    args = _supported(script, args)
    if _accepts(script, "--threads"):
        args += ["--threads", str(threads)]
    tmp = RESULTS / f".{name}.out.md"
    takes_out = _accepts(script, "--out")
    command = [sys.executable, str(script), *args, *(["--out", str(tmp)] if takes_out else [])]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr[-4000:])
    if proc.returncode != 0:
        return proc.returncode, wall
    text = tmp.read_text() if takes_out and tmp.exists() else proc.stdout
    tmp.unlink(missing_ok=True)
    title = text.splitlines()[0].lstrip("# ") if text.startswith("# ") else name
    body = re.sub(r"^# .*\n", "", text, count=1)  # our header carries the title
    if not first_table(text):  # plain-text output: keep its alignment
        body = "```\n" + body.strip("\n") + "\n```\n"
    shown = " ".join(["python", f"benchmarks/{script.name}", *args])
    write_result(
        name,
        title,
        body,
        first_table(text),
        command=shown,
        seeds="see the script",
        wall_s=wall,
        threads=threads if _accepts(script, "--threads") else None,
    )
    return 0, wall


def run_own(script: Path, args: list[str], threads: int) -> tuple[int, float]:
    command = [sys.executable, str(script), *args, "--threads", str(threads), "--out-dir", str(RESULTS)]
    start = time.perf_counter()
    code = subprocess.call(command, cwd=ROOT)
    return code, time.perf_counter() - start


def regenerate_summary(order: Sequence[str]) -> None:
    """docs/results.md: an index and every result in docs/results/, in benchmark order, headings demoted."""

    def rank(path: Path) -> tuple[int, str]:  # a variant such as tcn_tasks_adding_6000 goes with tcn_tasks
        group = next(
            (i for i, name in enumerate(order) if path.stem == name or path.stem.startswith(f"{name}_")), len(order)
        )
        return group, path.stem

    files = sorted(RESULTS.glob("*.md"), key=rank)
    index, sections = [], []
    for path in files:
        text = path.read_text()
        title = text.splitlines()[0].lstrip("# ").strip()
        generated = re.search(r"^Generated (.+?) in (\d+) s by `([^`]+)`", text, re.MULTILINE)
        when, wall, command = generated.groups() if generated else ("?", "?", "?")
        headline = re.search(r"^\*\*Headline:\*\* (.+)$", text, re.MULTILINE)
        index.append(
            (f"[{title}](#{_anchor(title)})", headline.group(1) if headline else "", f"`{command}`", when, wall)
        )
        sections.append(re.sub(r"^(#+) ", r"#\1 ", text, flags=re.MULTILINE).strip())
    out = io.StringIO()
    out.write(
        "# Benchmark results\n\n"
        "The latest result of each benchmark, regenerated by `python benchmarks/run_all.py` from the files in "
        "[docs/results/](results/) (one markdown and one CSV per benchmark). Ratios are measured side by side "
        "in one process, interleaved, on the machine named in each section; absolute times depend on that "
        "machine and its load, ratios much less so.\n\n"
    )
    out.write(markdown_table(["benchmark", "headline", "command", "generated", "wall s"], index) + "\n\n")
    out.write("\n\n".join(sections) + "\n")
    SUMMARY.write_text(out.getvalue())


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small budgets: a smoke test of every benchmark")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in every benchmark (default 1)")
    parser.add_argument("--tf-python", help="a Python with tensorflow: throughput.py also times Keras on TensorFlow")
    parser.add_argument("--summary", action="store_true", help="run nothing: only regenerate docs/results.md")
    args = parser.parse_args()
    names = [name for name, _, _ in BENCHMARKS]
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    if args.summary:
        regenerate_summary(names)
        print(f"wrote {SUMMARY.relative_to(ROOT)}")
        return
    failures, timings = [], []
    for name, script_name, quick_args in BENCHMARKS:
        script = ROOT / "benchmarks" / script_name
        if (args.only and name not in args.only) or not script.exists():
            continue
        print(f"\n=== {name}: benchmarks/{script_name} {' '.join(quick_args) if args.quick else ''}", flush=True)
        extra = quick_args if args.quick else []
        if name == "throughput" and args.tf_python:
            extra = [*extra, "--tf-python", args.tf_python]
        if name in OWN_RESULT:
            code, wall = run_own(script, extra, args.threads)
        else:
            code, wall = run_foreign(name, script, extra, args.threads)
        timings.append((name, wall, code))
        if code:
            failures.append(name)
    regenerate_summary(names)
    print("\n" + markdown_table(["benchmark", "wall s", "exit"], [(n, f"{w:.0f}", c) for n, w, c in timings]))
    print(f"\nwrote {SUMMARY.relative_to(ROOT)}")
    if failures:
        sys.exit(f"failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
