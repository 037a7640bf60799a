"""What the benchmarks share: the machine/version record, result files, interleaved timing, tables, and the
reference implementations in ``tests/references`` (Keras TransLOB/DeepLOB, pytorch-tcn), put on the path here once.

Benchmark scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path`` and they import this
module as ``common``.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.metadata
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
sys.path.insert(0, str(ROOT / "tests"))  # the reference implementations live with the tests that check them


def shared_data() -> Path:
    """The real market data beside the checkout: ``$DILATED_SHARED_DATA``, else the first ``shared/data`` folder
    next to the repository or one of its parents (``<clone>/../shared/data``; a worktree's is one level up)."""
    if os.environ.get("DILATED_SHARED_DATA"):
        return Path(os.environ["DILATED_SHARED_DATA"])
    for parent in ROOT.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return ROOT.parent / "shared" / "data"


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}{' + local changes' if dirty else ''}" if sha else "unknown"


def environment(threads: int | None = None) -> dict[str, str]:
    """Machine and versions, for the header of every result."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    env = {
        "cpu": cpu_model(),
        "cores": f"{usable} usable of {cores} logical",
        "python": platform.python_version(),
        "torch": _version("torch"),
        "keras": _version("keras"),
        "pytorch-tcn": _version("pytorch-tcn"),
        "dilated": _version("dilated"),
        "numpy": _version("numpy"),
        "os": f"{platform.system()} {platform.release()}",
        "commit": _git_commit(),
    }
    if threads is not None:
        env["torch threads"] = str(threads)
    return env


def write_result(
    name: str,
    title: str,
    body: str,
    rows: Sequence[Mapping[str, object]],
    *,
    command: str,
    seeds: str,
    wall_s: float,
    threads: int | None,
    out_dir: Path = RESULTS,
    headline: str | None = None,
) -> Path:
    """Write ``<out_dir>/<name>.md`` (title, provenance, ``headline``, ``body``) and ``<name>.csv`` (``rows`` plus
    the machine, torch version, threads and date in every row). Returns the markdown path. The headline (one line)
    goes into the index of docs/results.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment(threads)
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# {title}",
        "",
        f"Generated {date} in {wall_s:.0f} s by `{command}`; seeds: {seeds}.",
        "",
        *([f"**Headline:** {headline}", ""] if headline else []),
        "| " + " | ".join(env) + " |",
        "|" + "---|" * len(env),
        "| " + " | ".join(env.values()) + " |",
        "",
        body.strip(),
        "",
    ]
    path = out_dir / f"{name}.md"
    path.write_text("\n".join(lines))
    if rows:
        columns = list(dict.fromkeys(k for row in rows for k in row))
        stamp = {
            "cpu": env["cpu"],
            "torch": env["torch"],
            "dilated": env["dilated"],
            "threads": env.get("torch threads", ""),
            "date": date,
        }
        with open(out_dir / f"{name}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns + list(stamp))
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, **stamp})
    return path


def interleaved(
    steps: dict[str, Callable[[], object]],
    rounds: int,
    per_round: int,
    warmup: int = 3,
    workers: Mapping[str, Any] | None = None,
) -> dict[str, dict]:
    """Time ``steps`` (callables, one train step each) taking turns: after ``warmup`` calls each, ``rounds`` rounds in
    which every variant runs ``per_round`` steps, each timed alone. ``workers`` (objects with ``steps(n)`` returning n
    step times, e.g. a process on another backend) take their turn after the callables. Returns per variant the
    median step time over all its steps, the per-round medians and the step count."""
    workers = workers or {}
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in [*steps, *workers]}
    round_medians: dict[str, list[float]] = {name: [] for name in times}
    for _ in range(rounds):
        for name, fn in steps.items():
            batch = []
            for _ in range(per_round):
                start = time.perf_counter()
                fn()
                batch.append(time.perf_counter() - start)
            times[name] += batch
            round_medians[name].append(statistics.median(batch))
        for name, worker in workers.items():
            batch = worker.steps(per_round)
            times[name] += batch
            round_medians[name].append(statistics.median(batch))
    return {
        name: {"median": statistics.median(t), "rounds": round_medians[name], "n": len(t)} for name, t in times.items()
    }


def speedup(result: dict, peer: str, ours: str = "dilated") -> tuple[float, float, float]:
    """peer / ours on the medians, and the min and max of the per-round ratios."""
    per_round = [p / o for p, o in zip(result[peer]["rounds"], result[ours]["rounds"])]
    return result[peer]["median"] / result[ours]["median"], min(per_round), max(per_round)


def mean_sd(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """``"mean ± sd"`` of ``scale * values`` over seeds (the value alone for one seed)."""
    scaled = [scale * v for v in values]
    if len(scaled) == 1:
        return f"{scaled[0]:.{digits}f}"
    return f"{statistics.mean(scaled):.{digits}f} ± {statistics.stdev(scaled):.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; floats are written as given (format them before)."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(out)


def first_table(markdown: str) -> list[dict[str, str]]:
    """The rows of the first markdown table in ``markdown``, as dicts keyed by its header."""
    lines = [line.strip() for line in markdown.splitlines()]
    start = next(
        (
            i
            for i, line in enumerate(lines[:-1])
            if line.startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1])
        ),
        None,
    )
    if start is None:
        return []

    def cells(line):
        return [c.strip() for c in line.strip("|").split("|")]

    header: list[str] = []
    rows: list[dict[str, str]] = []
    for name in cells(lines[start]):  # repeated names (conv1d.py has two "ratio" columns) get a suffix
        header.append(name if name not in header else f"{name} ({sum(h.startswith(name) for h in header) + 1})")
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, cells(line))))
    return rows
