"""The fast streaming step of source trees compared in one run: this checkout's ``src`` against others (an old
commit's tree, a variant), each in its own worker process, rounds interleaved.

    python benchmarks/streaming_compare.py --src /tmp/old/src [--src ...] [--rounds 7] [--quick]

Each tree gets one worker (``PYTHONPATH`` set to the tree, ``OMP_NUM_THREADS=1``, one torch thread) holding the
TCN 10x32 k=2 (RF 2047, the same seeded weights in every tree) and its streams: one stream stepped through the torch
API (``step``) and the numpy API (``step_numpy``), and 1,024 streams stepped together on one thread. A round asks
every worker in turn for a block of steps of each kind; a block's figure is its CPU time per step
(``time.process_time``, which other processes' load inflates less than wall time) and its wall time. Printed: per
tree and kind, the median over rounds with the spread (min-max), and the ratio of medians to the first tree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, cast

ROOT = Path(__file__).resolve().parents[1]
STREAMS = 1024
KINDS = ("step", "step_numpy", f"{STREAMS} streams, 1 thread")


class Worker:
    """One source tree in its own Python: a line ``KIND N`` on its stdin runs N timed steps of that kind and
    answers one JSON line ``{"cpu": s, "wall": s}`` (totals over the N steps)."""

    def __init__(self, src: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.stdin, self.stdout = cast(IO[str], self.proc.stdin), cast(IO[str], self.proc.stdout)
        hello = self.stdout.readline()
        if not hello:
            raise RuntimeError(f"the worker for {src} did not start")
        self.info = json.loads(hello)

    def run(self, kind: int, n: int) -> tuple[float, float]:
        """(CPU seconds, wall seconds) per step over ``n`` steps of kind ``KINDS[kind]``."""
        self.stdin.write(f"{kind} {n}\n")
        self.stdin.flush()
        answer = json.loads(self.stdout.readline())
        return answer["cpu"] / n, answer["wall"] / n

    def close(self) -> None:
        self.stdin.close()
        self.proc.wait(timeout=60)


def worker_main() -> None:
    """Build the model and streams with whatever ``dilated`` is on the path, then time steps on request."""
    import warnings

    import numpy as np
    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from dilated.models import build_model

    try:
        from dilated.streaming import FastStream
    except ImportError:  # trees of before the streaming package (0f5e518)
        from dilated.fast_stream import FastStream  # type: ignore[no-redef]

    model = build_model("tcn", input_channels=32, num_channels=(32,) * 10, kernel_size=2, dropout=0.0).eval()
    one = FastStream(model, 1, fallback="raise")
    many = FastStream(model, STREAMS, fallback="raise", threads=1)
    x_one, x_many = torch.randn(1, 32), torch.randn(STREAMS, 32)
    x_np = x_one.numpy()
    one.step(x_one)
    many.step_many(torch.randn(STREAMS, 32, 8))
    assert one.backend == many.backend == "fast"
    calls: list[Any] = [lambda: one.step(x_one), lambda: one.step_numpy(x_np), lambda: many.step(x_many)]
    for call in calls:  # warm: the kernels (compiled or loaded from Numba's cache) and the caches
        for _ in range(20):
            call()
    # where the kernel's memory starts past a cache line: 16 bytes past one made 1,024 streams 1.4x slower
    offsets = {name: int(s._current.mem.ctypes.data % 64) for name, s in (("one", one), ("many", many)) if s._current}
    print(json.dumps({"numpy": np.__version__, "memory offset": offsets}), flush=True)
    for line in sys.stdin:
        kind, n = map(int, line.split())
        call = calls[kind]
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            call()
        print(json.dumps({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", type=Path, default=[], help="another source tree to compare")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 rounds, shorter blocks")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main()
        return
    rounds, scale = (3, 0.25) if args.quick else (args.rounds, 1.0)
    blocks = [int(20000 * scale), int(20000 * scale), int(400 * scale)]  # steps per block, ~0.1-0.5 s each
    trees = [ROOT / "src", *args.src]
    load_before = os.getloadavg()
    workers = [Worker(tree) for tree in trees]
    cpu: dict[tuple[int, int], list[float]] = {}
    wall: dict[tuple[int, int], list[float]] = {}
    try:
        for _ in range(rounds):
            for kind, n in enumerate(blocks):
                for index, worker in enumerate(workers):  # interleaved: every tree once per round and kind
                    c, w = worker.run(kind, n)
                    cpu.setdefault((kind, index), []).append(c * 1e6)
                    wall.setdefault((kind, index), []).append(w * 1e6)
    finally:
        for worker in workers:
            worker.close()
    load_after = os.getloadavg()
    print(
        f"streaming compare: {rounds} interleaved rounds, 1 thread per worker, TCN 10x32 k=2 (RF 2047); load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min); us per step (batched: per stream), "
        "median over rounds [min-max], ratio of medians to the first tree"
    )
    for tree, worker in zip(trees, workers):
        print(f"  {str(tree):40s} kernel memory, bytes past a cache line: {worker.info['memory offset']}")
    for kind, name in enumerate(KINDS):
        per = STREAMS if kind == 2 else 1
        print(f"\n{name}:")
        base = statistics.median(cpu[(kind, 0)]) / per
        for index, tree in enumerate(trees):
            cpu_us = [v / per for v in cpu[(kind, index)]]
            wall_us = [v / per for v in wall[(kind, index)]]
            print(
                f"  {str(tree):40s} cpu {statistics.median(cpu_us):8.3f} [{min(cpu_us):.3f}-{max(cpu_us):.3f}]  "
                f"wall {statistics.median(wall_us):8.3f} [{min(wall_us):.3f}-{max(wall_us):.3f}]  "
                f"ratio {statistics.median(cpu_us) / base:.3f}"
            )


if __name__ == "__main__":
    main()
