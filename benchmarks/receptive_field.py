"""Time the receptive-field analysis of the largest models: a 30-block WaveNet and a 25-level TCN.

    python benchmarks/receptive_field.py

The analysis is one forward pass on torch's meta device (shapes only) that follows every tensor, so its cost
does not grow with the receptive field: the 25-level TCN's field is 67,108,863 steps and its convs pad 2**24
steps, which a real forward pass would have to allocate. The first meta pass of a process imports torch's meta
kernels; that one-off cost is printed separately. Each time is the best of three in the same run.
"""

from __future__ import annotations

import time

import torch

from dilated.analysis import receptive_field
from dilated.models import build_model


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


if __name__ == "__main__":
    main()
