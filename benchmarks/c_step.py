"""The exported C step (``dilated export MODEL -o step.c``) against the floor and the Python engines, one run.

    python benchmarks/c_step.py [--repeats 7] [--quick] [--src OTHER/src ...]

Each model's step is exported (and checked against its forward), then compiled with ``-O3 -march=native`` (no
fast-math) into one shared library with a small C harness. ``--src`` adds other source trees (an older checkout's
``src``): each exports the same model (same weights) in a subprocess, its C is compiled with the same harness and
timed in the same rounds (the C columns get one per tree, this checkout's first). Columns, microseconds per step:

* C loop: ``dilated_step`` called in a C loop, timed with ``clock_gettime`` in C;
* C ctypes: the same library called once per step through ``ctypes`` (what a Python caller pays);
* fast: :class:`dilated.streaming.FastStream` ``.step`` (torch in and out), one thread;
* pytorch-tcn: ``pytorch_tcn.TCN.inference``, its own streaming mode, on a TCN with the same weights;
* batched rows, per stream: ``dilated_step_batch`` of 1, 64 and 1,024 streams in a C loop, and ``FastStream.step``
  of as many streams (one thread).

The floor is ``max(FLOPs / FLOP rate, weight bytes / bandwidth)``, the rates measured by the C harness on one core
in the same rounds (independent fused multiply-adds on 16-float vectors; repeated reads of a 256 KiB buffer for L2,
of a 4 MiB one for L3). "floor" takes the L2 bandwidth; "floor L3" the L3 bandwidth for a model whose weights do
not fit in L2 (the 30-block WaveNet: 2.2 MB against this machine's 1 MiB; a step reads them front to back, so none
is still in L2 when the next step comes back to it). Every time is CPU time (the thread's in C, ``time.process_time`` in
Python; one thread), so the time slices other processes take on a shared machine are not counted (their use of
the caches is); rounds interleave the methods and the rates, so that load hits them alike; each cell is the median
over rounds.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_tcn
import torch
from torch import nn

import common
from dilated.models import build_model
from dilated.models._mulaw import one_hot
from dilated.streaming import FastStream
from dilated.streaming._export_c import export_c
from dilated.streaming._fast.instructions import CONV, op_of
from streaming import per_call_us, pytorch_tcn_twin

STREAMS = (1, 64, 1024)  # the batched rows
CPU = time.process_time  # this process's CPU time: what the Python callers are timed with
HARNESS = r"""
#define _POSIX_C_SOURCE 199309L
#include <string.h>
#include <time.h>
#include "step.h"

typedef float v16 __attribute__((vector_size(64)));

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);  /* this thread's CPU time */
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

double loop_ns(void *state, const float *x, const float *cond, float *y, int steps) {
    const double start = now();
    for (int s = 0; s < steps; s++) dilated_step(state, x, cond, y);
    return (now() - start) / steps;
}

double batch_loop_ns(void *state, int batch, const float *x, const float *cond, float *y, int steps) {
    const double start = now();
    for (int s = 0; s < steps; s++) dilated_step_batch(state, batch, x, cond, y);
    return (now() - start) / steps;
}

volatile float sink;

double flops_per_ns(void) {  /* 12 independent chains of 16-wide multiply-adds: the core's peak */
    v16 a[12];
    const v16 m = {0}, c = {0};
    v16 mm = m + 0.999999f, cc = c + 1e-7f;
    for (int i = 0; i < 12; i++) a[i] = m + (float)i;
    const int n = 1 << 20;
    const double start = now();
    for (int it = 0; it < n; it++) {
        a[0] = a[0] * mm + cc; a[1] = a[1] * mm + cc; a[2] = a[2] * mm + cc; a[3] = a[3] * mm + cc;
        a[4] = a[4] * mm + cc; a[5] = a[5] * mm + cc; a[6] = a[6] * mm + cc; a[7] = a[7] * mm + cc;
        a[8] = a[8] * mm + cc; a[9] = a[9] * mm + cc; a[10] = a[10] * mm + cc; a[11] = a[11] * mm + cc;
    }
    const double ns = now() - start;
    for (int i = 0; i < 12; i++) sink += a[i][0];
    return 2.0 * 16 * 12 * n / ns;
}

static double read_bytes_per_ns(v16 *buffer, int n, int passes) {  /* passes over n vectors; eight sums */
    v16 s[8];
    memset(s, 0, sizeof s);
    for (int i = 0; i < n; i++) buffer[i] = s[0] + (float)(i & 7);
    const double start = now();
    for (int p = 0; p < passes; p++)
        for (int i = 0; i < n; i += 8) {
            s[0] += buffer[i]; s[1] += buffer[i + 1]; s[2] += buffer[i + 2]; s[3] += buffer[i + 3];
            s[4] += buffer[i + 4]; s[5] += buffer[i + 5]; s[6] += buffer[i + 6]; s[7] += buffer[i + 7];
        }
    const double ns = now() - start;
    for (int i = 0; i < 8; i++) sink += s[i][0];
    return (double)n * sizeof(v16) * passes / ns;
}

double l2_bytes_per_ns(void) {  /* 256 KiB: beyond L1, inside L2 */
    static v16 buffer[4096];
    return read_bytes_per_ns(buffer, 4096, 2000);
}

double l3_bytes_per_ns(void) {  /* 4 MiB: beyond L2, well inside L3 (32 MiB here, shared by every core) */
    static v16 buffer[1 << 16];
    return read_bytes_per_ns(buffer, 1 << 16, 120);
}
"""
# Export a model of this benchmark with another source tree's dilated (its PYTHONPATH): the same constructor, the
# same weights (argv: the saved model, the C file)
EXPORT = """
import sys, torch
from dilated.models import build_model
from dilated.streaming._export_c import export_c
saved = torch.load(sys.argv[1])
model = build_model(saved["name"], **saved["options"])
model.load_state_dict(saved["state"])
export_c(model.eval(), sys.argv[2], saved["x_t"])
"""


def flops(program: np.ndarray) -> int:
    """Floating-point operations of one step: two per multiply-add of the convs, one per value elsewhere."""
    total = 0
    for row in program:
        op = op_of(row)
        f = op.view(row)
        total += 2 * f.k * f.cin * f.cout if op is CONV else sum(n for _, n in op.writes(row))
    return total


class CStepBench:
    """An exported step (``folder/step.c``) compiled with the harness: C loop and ctypes timings of one stream,
    C loop timings of ``step_batch``, the floor's rates."""

    def __init__(self, folder: Path, x_t: torch.Tensor, n_y: int) -> None:
        library = folder / "bench.so"
        (folder / "harness.c").write_text(HARNESS)
        subprocess.run(
            ["cc", "-O3", "-march=native", "-shared", "-fPIC", "-o", str(library), "step.c", "harness.c", "-lm"],
            cwd=folder,
            check=True,
        )
        self.lib = ctypes.CDLL(str(library))
        self.lib.dilated_state_size.restype = ctypes.c_size_t
        for rate in ("loop_ns", "batch_loop_ns", "flops_per_ns", "l2_bytes_per_ns", "l3_bytes_per_ns"):
            getattr(self.lib, rate).restype = ctypes.c_double
        pointer = ctypes.c_void_p
        self.lib.loop_ns.argtypes = [pointer, pointer, pointer, pointer, ctypes.c_int]
        self.lib.batch_loop_ns.argtypes = [pointer, ctypes.c_int, pointer, pointer, pointer, ctypes.c_int]
        self.lib.dilated_step.argtypes = [pointer, pointer, pointer, pointer]
        self.lib.dilated_reset.argtypes = [pointer]
        self.x_t, self.n_y = x_t.float().numpy().reshape(-1), n_y
        self.streams: dict[int, tuple[np.ndarray, int, np.ndarray, np.ndarray]] = {}
        self.args = self._args(1)
        self.step = self.lib.dilated_step

    def _args(self, streams: int) -> tuple[int, int, None, int]:
        """``(state, x, cond, y)`` addresses of ``streams`` fresh streams (allocated once, kept alive)."""
        if streams not in self.streams:
            size = int(self.lib.dilated_state_size())
            state = np.zeros(streams * size // 4 + 16, np.float32)
            base = -(-state.ctypes.data // 64) * 64
            for b in range(streams):
                self.lib.dilated_reset(base + b * size)
            x = np.tile(self.x_t, streams)
            self.streams[streams] = (state, base, x, np.zeros(streams * self.n_y, np.float32))
        _, base, x, y = self.streams[streams]
        return base, x.ctypes.data, None, y.ctypes.data

    def loop_us(self, steps: int) -> float:
        return self.lib.loop_ns(*self.args, steps) / 1e3

    def ctypes_call(self) -> None:
        self.step(*self.args)

    def batch_us(self, streams: int, steps: int) -> float:
        """Microseconds per stream of ``step_batch`` of ``streams`` streams."""
        state, x, cond, y = self._args(streams)
        return self.lib.batch_loop_ns(state, streams, x, cond, y, steps) / 1e3 / streams


def export_with(
    src: Path, name: str, options: dict[str, Any], model: nn.Module, x_t: torch.Tensor, folder: Path
) -> None:
    """Export ``model`` (``build_model(name, **options)``) to ``folder/step.c`` with the ``dilated`` of ``src``."""
    saved = folder / "model.pt"
    torch.save({"name": name, "options": options, "state": model.state_dict(), "x_t": x_t}, saved)
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", EXPORT, str(saved), str(folder / "step.c")], env=env, check=True)


def measure(methods: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median over ``repeats`` interleaved rounds of each method's result (microseconds per step, or a rate; each
    call measures one round); the first round warms up."""
    samples: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats + 1):
        for name, fn in methods.items():
            samples[name].append(fn())
    return {name: statistics.median(values[1:]) for name, values in samples.items()}


def per_stream_us(fast: FastStream, xb: torch.Tensor, steps: int) -> float:
    """Microseconds per stream of ``fast.step`` of its ``xb.shape[0]`` streams."""
    return per_call_us(functools.partial(fast.step, xb), steps, CPU) / xb.shape[0]


def twin_step(twin: pytorch_tcn.TCN, x_t: torch.Tensor) -> None:
    """One step of pytorch-tcn's own streaming mode."""
    with torch.inference_mode():
        twin.inference(x_t.unsqueeze(-1))


def load() -> str:
    """The load averages over 1, 5 and 15 minutes, as ``uptime`` prints them."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def l2_bytes() -> int:
    """This core's L2 size (Linux's sysfs; 1 MiB where it cannot be read)."""
    try:
        text = Path("/sys/devices/system/cpu/cpu0/cache/index2/size").read_text().strip()
        return int(text.rstrip("K")) * 1024 if text.endswith("K") else int(text)
    except (OSError, ValueError):
        return 1 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smaller WaveNet (10 blocks)")
    parser.add_argument("--src", action="append", type=Path, default=[], help="another source tree to compare")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    trees = ["this", *(str(src) for src in args.src)]
    print(f"load average {load()} (1, 5, 15 min), {common.cpu_model()}; trees: {', '.join(trees)}")
    channels, levels, k = 32, 10, 2
    stacks = 1 if args.quick else 3
    tcn_options = {"input_channels": channels, "num_channels": (channels,) * levels, "kernel_size": k, "dropout": 0.0}
    specs: list[tuple[str, str, dict[str, Any], torch.Tensor, float]] = [  # name, model, options, x_t, us per step
        (f"TCN {levels}x{channels} k={k}", "tcn", tcn_options, torch.randn(1, channels), 2.0),
        (
            f"WaveNet {10 * stacks} blocks",
            "wavenet",
            {"stacks": stacks},
            one_hot(torch.randint(0, 256, (1, 1)), 256)[..., 0],
            30.0,
        ),
    ]
    rows, batched = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, kind, options, x_t, cost) in enumerate(specs):
            model = build_model(kind, **options).eval()
            benches = []
            for number, tree in enumerate(trees):
                folder = Path(tmp) / f"{index}-{number}"
                folder.mkdir()
                if number:
                    export_with(Path(tree), kind, options, model, x_t, folder)
                else:
                    exported = export_c(model, folder / "step.c", x_t)
                benches.append(CStepBench(folder, x_t, exported.n_y))
            bench = benches[0]
            fast = FastStream(model, 1, fallback="raise")
            fast.step(x_t)
            calls = int(4e4 / cost)  # about 0.1 s per method and round on an idle core
            methods: dict[str, Callable[[], float]] = {
                **{f"C loop {tree}": functools.partial(b.loop_us, calls) for tree, b in zip(trees, benches)},
                "C ctypes": functools.partial(per_call_us, bench.ctypes_call, calls, CPU),
                "fast": functools.partial(per_call_us, functools.partial(fast.step, x_t), calls // 10, CPU),
                # the floor's rates, taking their turn in every round too
                "FLOP/ns": bench.lib.flops_per_ns,
                "L2 B/ns": bench.lib.l2_bytes_per_ns,
                "L3 B/ns": bench.lib.l3_bytes_per_ns,
            }
            if kind == "tcn":
                twin = pytorch_tcn_twin(model, channels, levels, k)
                methods["pytorch-tcn"] = functools.partial(
                    per_call_us, functools.partial(twin_step, twin, x_t), 100, CPU
                )
            for streams in STREAMS:
                many = FastStream(model, streams, fallback="raise", threads=1)
                xb = x_t.expand(streams, *x_t.shape[1:]).contiguous()
                many.step(xb)
                steps = max(2, int(4e4 / (cost * streams)))
                for tree, b in zip(trees, benches):
                    methods[f"C batch {streams} {tree}"] = functools.partial(b.batch_us, streams, steps)
                methods[f"fast batch {streams}"] = functools.partial(per_stream_us, many, xb, steps)
            times = measure(methods, args.repeats)
            compiled = fast._current
            assert compiled is not None
            work, weight_bytes = flops(compiled.prog), 4 * compiled.params.size
            flop_us = work / times["FLOP/ns"] / 1e3
            floor = max(flop_us, weight_bytes / times["L2 B/ns"] / 1e3)
            beyond_l2 = weight_bytes > l2_bytes()
            floor_l3 = max(flop_us, weight_bytes / times["L3 B/ns"] / 1e3) if beyond_l2 else floor
            rows.append((name, times, floor, floor_l3, work, weight_bytes, exported.max_abs_diff))
            batched += [(name, streams, times) for streams in STREAMS]
    print(f"load average {load()} (1, 5, 15 min) at the end\n")
    print("us per step, one stream (lower is better); ratios against this tree's C loop")
    header = [
        "model",
        *(f"C loop {tree}" for tree in trees),
        "C ctypes",
        "fast",
        "pytorch-tcn",
        "fast / C",
        "pytorch-tcn / C",
        "floor",
        "floor L3",
        "C / floor L3",
    ]
    table = []
    for name, times, floor, floor_l3, *_ in rows:
        c = times["C loop this"]
        theirs = times.get("pytorch-tcn")
        table.append(
            [
                name,
                *(f"{times[f'C loop {tree}']:.2f}" for tree in trees),
                f"{times['C ctypes']:.2f}",
                f"{times['fast']:.2f}",
                f"{theirs:.1f}" if theirs else "-",
                f"{times['fast'] / c:.1f}x",
                f"{theirs / c:.0f}x" if theirs else "-",
                f"{floor:.2f}",
                f"{floor_l3:.2f}",
                f"{c / floor_l3:.2f}",
            ]
        )
    print(common.markdown_table(header, table))
    print("\nus per step and stream, streams stepped together on one thread (C: step_batch in a C loop)")
    header = ["model", "streams", *(f"C batch {tree}" for tree in trees), "fast", "fast / C"]
    header += [f"{tree} / this" for tree in trees[1:]]
    table = []
    for name, streams, times in batched:
        c = times[f"C batch {streams} this"]
        others = [times[f"C batch {streams} {tree}"] for tree in trees[1:]]
        table.append(
            [
                name,
                str(streams),
                *(f"{v:.2f}" for v in [c, *others]),
                f"{times[f'fast batch {streams}']:.2f}",
                f"{times[f'fast batch {streams}'] / c:.1f}x",
                *(f"{v / c:.2f}x" for v in others),
            ]
        )
    print(common.markdown_table(header, table))
    print("\nfloor inputs (rates: medians over the rounds)")
    for name, times, _, _, work, weight_bytes, diff in rows:
        print(
            f"  {name}: {work:,} FLOP at {times['FLOP/ns']:.1f} FLOP/ns, {weight_bytes:,} weight bytes at "
            f"{times['L2 B/ns']:.1f} B/ns (L2, {l2_bytes() >> 10} KiB) or {times['L3 B/ns']:.1f} B/ns (L3); "
            f"C vs forward at export: max abs diff {diff:.1e}"
        )


if __name__ == "__main__":
    main()
