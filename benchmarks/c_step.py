"""The exported C step (``dilated export MODEL -o step.c``) against the floor and the Python engines, one run.

    python benchmarks/c_step.py [--repeats 7] [--quick]

Each model's step is exported (and checked against its forward), then compiled with ``-O3 -march=native`` (no
fast-math) into one shared library with a small C harness. Columns, microseconds per step of one stream:

* C loop: ``dilated_step`` called in a C loop, timed with ``clock_gettime`` in C;
* C ctypes: the same library called once per step through ``ctypes`` (what a Python caller pays);
* fast: :class:`dilated.streaming.FastStream` ``.step`` (torch in and out), one thread;
* pytorch-tcn: ``pytorch_tcn.TCN.inference``, its own streaming mode, on a TCN with the same weights.

The floor is ``max(FLOPs / FLOP rate, weight bytes / L2 bandwidth)``, both rates measured by the C harness on one
core in the same rounds (independent fused multiply-adds on 16-float vectors; repeated reads of a 256 KiB buffer).
Rounds interleave the methods and the rates, so load from other processes hits them alike; each cell is the median
over rounds. A model whose weights outrun L2 (the 30-block WaveNet: 2.2 MB) streams them from L3 each step, which
this floor does not count.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import os
import statistics
import subprocess
import tempfile
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

HARNESS = r"""
#define _POSIX_C_SOURCE 199309L
#include <string.h>
#include <time.h>
#include "step.h"

typedef float v16 __attribute__((vector_size(64)));

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

double loop_ns(void *state, const float *x, const float *cond, float *y, int steps) {
    const double start = now();
    for (int s = 0; s < steps; s++) dilated_step(state, x, cond, y);
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

double l2_bytes_per_ns(void) {  /* 256 KiB: beyond L1, inside L2; eight vector sums */
    static v16 buffer[4096];
    v16 s[8];
    memset(s, 0, sizeof s);
    for (int i = 0; i < 4096; i++) buffer[i] = s[0] + (float)(i & 7);
    const int passes = 2000;
    const double start = now();
    for (int p = 0; p < passes; p++)
        for (int i = 0; i < 4096; i += 8) {
            s[0] += buffer[i]; s[1] += buffer[i + 1]; s[2] += buffer[i + 2]; s[3] += buffer[i + 3];
            s[4] += buffer[i + 4]; s[5] += buffer[i + 5]; s[6] += buffer[i + 6]; s[7] += buffer[i + 7];
        }
    const double ns = now() - start;
    for (int i = 0; i < 8; i++) sink += s[i][0];
    return (double)sizeof buffer * passes / ns;
}
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
    """One model's exported step compiled with the harness: C loop and ctypes timings, the floor's rates."""

    def __init__(self, model: nn.Module, x_t: torch.Tensor, folder: Path, kwargs: dict[str, Any]) -> None:
        exported = export_c(model, folder / "step.c", x_t, **kwargs)
        library = folder / "bench.so"
        (folder / "harness.c").write_text(HARNESS)
        subprocess.run(
            ["cc", "-O3", "-march=native", "-shared", "-fPIC", "-o", str(library), "step.c", "harness.c", "-lm"],
            cwd=folder,
            check=True,
        )
        self.exported = exported
        self.lib = ctypes.CDLL(str(library))
        self.lib.dilated_state_size.restype = ctypes.c_size_t
        self.lib.loop_ns.restype = self.lib.flops_per_ns.restype = self.lib.l2_bytes_per_ns.restype = ctypes.c_double
        pointer = ctypes.c_void_p
        self.lib.loop_ns.argtypes = [pointer, pointer, pointer, pointer, ctypes.c_int]
        self.lib.dilated_step.argtypes = [pointer, pointer, pointer, pointer]
        self.state = np.zeros(int(self.lib.dilated_state_size()) // 4 + 16, np.float32)
        self.base = -(-self.state.ctypes.data // 64) * 64
        self.lib.dilated_reset(ctypes.c_void_p(self.base))
        self.x = x_t.float().numpy().reshape(-1).copy()
        conds = [v.float().numpy().reshape(-1) for v in kwargs.values() if isinstance(v, torch.Tensor)]
        self.cond = np.concatenate(conds) if conds else None
        self.y = np.zeros(exported.n_y, np.float32)
        self.args = (
            self.base,
            self.x.ctypes.data,
            None if self.cond is None else self.cond.ctypes.data,
            self.y.ctypes.data,
        )
        self.step = self.lib.dilated_step

    def loop_us(self, steps: int) -> float:
        return self.lib.loop_ns(*self.args, steps) / 1e3

    def ctypes_call(self) -> None:
        self.step(*self.args)


def measure(methods: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median over ``repeats`` interleaved rounds of each method's result (microseconds per step, or a rate; each
    call measures one round); the first round warms up."""
    samples: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats + 1):
        for name, fn in methods.items():
            samples[name].append(fn())
    return {name: statistics.median(values[1:]) for name, values in samples.items()}


def twin_step(twin: pytorch_tcn.TCN, x_t: torch.Tensor) -> None:
    """One step of pytorch-tcn's own streaming mode."""
    with torch.inference_mode():
        twin.inference(x_t.unsqueeze(-1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smaller WaveNet (10 blocks)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {common.cpu_model()}")
    channels, levels, k = 32, 10, 2
    tcn = build_model("tcn", input_channels=channels, num_channels=(channels,) * levels, kernel_size=k, dropout=0.0)
    tcn = tcn.eval()
    stacks = 1 if args.quick else 3
    wavenet = build_model("wavenet", stacks=stacks).eval()
    models: list[tuple[str, nn.Module, torch.Tensor, dict[str, Any], pytorch_tcn.TCN | None]] = [
        (
            f"TCN {levels}x{channels} k={k}",
            tcn,
            torch.randn(1, channels),
            {},
            pytorch_tcn_twin(tcn, channels, levels, k),
        ),
        (f"WaveNet {10 * stacks} blocks", wavenet, one_hot(torch.randint(0, 256, (1, 1)), 256)[..., 0], {}, None),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, model, x_t, kwargs, twin) in enumerate(models):
            folder = Path(tmp) / str(index)
            folder.mkdir()
            bench = CStepBench(model, x_t, folder, kwargs)
            fast = FastStream(model, 1, fallback="raise")
            fast.step(x_t, **kwargs)
            calls = 20000 // (1 + 10 * index)  # about 0.1 s per method and round on an idle core
            methods: dict[str, Callable[[], float]] = {
                "C loop": functools.partial(bench.loop_us, calls),
                "C ctypes": functools.partial(per_call_us, bench.ctypes_call, calls),
                "fast": functools.partial(per_call_us, functools.partial(fast.step, x_t), calls // 10),
                # the floor's rates, taking their turn in every round too
                "FLOP/ns": bench.lib.flops_per_ns,
                "B/ns": bench.lib.l2_bytes_per_ns,
            }
            if twin is not None:
                methods["pytorch-tcn"] = functools.partial(per_call_us, functools.partial(twin_step, twin, x_t), 100)
            times = measure(methods, args.repeats)
            rate, bandwidth = times["FLOP/ns"], times["B/ns"]
            compiled = fast._current
            assert compiled is not None
            work = flops(compiled.prog)
            weight_bytes = 4 * compiled.params.size
            floor = max(work / rate, weight_bytes / bandwidth) / 1e3  # us
            rows.append((name, times, floor, work, weight_bytes, rate, bandwidth, bench.exported.max_abs_diff))
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end\n")
    print("us per step, one stream (lower is better); ratios against the C loop")
    header = ["model", "C loop", "C ctypes", "fast", "pytorch-tcn", "fast / C", "pytorch-tcn / C", "floor", "C / floor"]
    table = []
    for name, times, floor, *_ in rows:
        c = times["C loop"]
        theirs = times.get("pytorch-tcn")
        table.append(
            [
                name,
                f"{c:.2f}",
                f"{times['C ctypes']:.2f}",
                f"{times['fast']:.2f}",
                f"{theirs:.1f}" if theirs else "-",
                f"{times['fast'] / c:.1f}x",
                f"{theirs / c:.0f}x" if theirs else "-",
                f"{floor:.2f}",
                f"{c / floor:.2f}",
            ]
        )
    print(common.markdown_table(header, table))
    print("\nfloor inputs")
    for name, _, _, work, weight_bytes, rate, bandwidth, diff in rows:
        print(
            f"  {name}: {work:,} FLOP at {rate:.1f} FLOP/ns, {weight_bytes:,} weight bytes at {bandwidth:.1f} B/ns "
            f"(L2); C vs forward at export: max abs diff {diff:.1e}"
        )


if __name__ == "__main__":
    main()
