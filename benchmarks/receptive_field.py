"""Time the receptive-field analysis of the largest models (a 30-block WaveNet and a 25-level TCN), and the probe
against the input length.

    python benchmarks/receptive_field.py

The analysis is one forward pass on torch's meta device (shapes only) that follows every tensor, so its cost
does not grow with the receptive field: the 25-level TCN's field is 67,108,863 steps and its convs pad 2**24
steps, which a real forward pass would have to allocate. The first meta pass of a process imports torch's meta
kernels; that one-off cost is printed separately. Each time is the best of three in the same run.

The probe (:func:`dilated.probe_receptive_field`, what the analysis falls back to for an op it cannot follow)
measures a fixed number of output steps with a fixed number of forward and backward passes, so its cost should grow
linearly with the input: it is timed on a 6-layer dilated stack (field 64) at 1k to 16k steps, printed per 1k steps;
then a cumsum, whose field grows with the input, which the probe lengthens to its cap (8192 steps) to report
"at least 4096".
"""

from __future__ import annotations

import time

import torch
from torch import nn

from dilated.analysis import probe_receptive_field, receptive_field
from dilated.layers import Conv1d
from dilated.models import build_model


class Cumsum(nn.Module):
    """A running sum over time after a 1x1 conv: a field as long as the input's past."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).cumsum(-1)


def best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    start = time.perf_counter()
    torch.nn.functional.conv1d(torch.zeros(1, 1, 4, device="meta"), torch.zeros(1, 1, 2, device="meta"))
    print(f"first use of the meta device in this process: {time.perf_counter() - start:.2f} s (once)")
    wavenet = build_model("wavenet")  # 3 stacks x 10 blocks, receptive field 3,071
    tcn = build_model("tcn", num_channels=(25,) * 25, kernel_size=2)  # receptive field 67,108,863
    cases = [
        ("WaveNet, 30 blocks", wavenet, (256, 4096)),
        ("WaveNet, 30 blocks", wavenet, (256, 256)),
        ("TCN, 25 levels", tcn, (1, 256)),
    ]
    for name, model, shape in cases:
        seconds = best(lambda m=model, s=shape: receptive_field(m, s))
        rf = receptive_field(model, shape)
        with torch.no_grad():
            forward = best(lambda m=model, s=shape: m(torch.zeros(1, *s))) if name.startswith("WaveNet") else None
        plain = f"; a plain forward pass {forward:.3f} s" if forward is not None else ""
        print(
            f"{name:20s} input {shape}: receptive field {rf.size:,}, {len(rf.layers)} rows, analysis {seconds:.3f} s"
            f"{plain}"
        )
    probe_timing()


def probe_timing() -> None:
    """The probe's cost against the input length, and the cost of lengthening an unbounded field to the cap."""
    stack = nn.Sequential(*(Conv1d(2, 2, 2, dilation=d) for d in (1, 2, 4, 8, 16, 32)))  # field 64
    for length in (1024, 4096, 16384):
        start = time.perf_counter()
        probe = probe_receptive_field(stack, (2, length))
        size = probe.size  # the middle field reaches no end of the input: nothing to lengthen
        seconds = time.perf_counter() - start
        print(
            f"probe, dilated stack, input {length:6,}: field {size}, {seconds:.2f} s ({1e3 * seconds / length:.3f} s/1k)"
        )
    start = time.perf_counter()
    probe = probe_receptive_field(Cumsum(), (2, 64))
    size = probe.size
    seconds = time.perf_counter() - start
    print(
        f"probe, cumsum, input 64 lengthened to {probe.widest.input_length:,}: field at least {size:,}, {seconds:.2f} s"
    )


if __name__ == "__main__":
    main()
