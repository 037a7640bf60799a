"""dilated.Conv1d vs torch.nn.Conv1d with manual causal padding, measured side by side in one run.

    python benchmarks/conv1d.py [--threads 1] [--repeats 30] [--out docs/results/conv1d.md]

Prints, per configuration, the median time of a forward (and forward+backward) pass of both layers and the ratio
dilated / torch (<= 1.0 means dilated is no slower). The baseline is what users write by hand:
``nn.Conv1d(padding=0)`` after ``F.pad(x, (dilation * (k - 1), 0))``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dilated.layers import Conv1d

CONFIGS = [  # (batch, channels, time, kernel, dilation, padding)
    (32, 64, 1000, 2, 1, "causal"),
    (32, 64, 1000, 2, 64, "causal"),
    (16, 32, 4000, 3, 8, "causal"),
    (64, 14, 100, 2, 16, "causal"),  # TransLOB's conv layer
    (32, 64, 1000, 3, 4, "same"),
    (1, 32, 64, 2, 4, "causal"),  # tiny: per-call overhead dominates
]


class ManualCausalConv1d(nn.Module):
    """The hand-written baseline: pad the left, then an unpadded torch.nn.Conv1d."""

    def __init__(self, conv: nn.Conv1d, left: int, right: int) -> None:
        super().__init__()
        self.conv, self.left, self.right = conv, left, right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.left, self.right)))


def median_time(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure(batch: int, channels: int, length: int, k: int, d: int, padding: str, repeats: int) -> dict[str, float]:
    ours = Conv1d(channels, channels, k, dilation=d, padding=padding)
    left, right = ours.padding_for(length)
    baseline = ManualCausalConv1d(nn.Conv1d(channels, channels, k, dilation=d), left, right)
    baseline.conv.load_state_dict(ours.state_dict())
    x = torch.randn(batch, channels, length)
    torch.testing.assert_close(ours(x), baseline(x))  # same computation, or the timing means nothing
    result = {}
    with torch.no_grad():
        result["fwd_torch"] = median_time(lambda: baseline(x), repeats)
        result["fwd_dilated"] = median_time(lambda: ours(x), repeats)
    xg = x.clone().requires_grad_(True)
    result["bwd_torch"] = median_time(lambda: baseline(xg).sum().backward(), repeats)
    result["bwd_dilated"] = median_time(lambda: ours(xg).sum().backward(), repeats)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", help="also write the table (markdown) to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lines = [
        "# dilated.Conv1d vs torch.nn.Conv1d + manual padding",
        f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
        f"threads {args.threads}, median of {args.repeats}",
        "",
        "| batch | ch | time | k | d | padding | fwd torch ms | fwd dilated ms | ratio | fwd+bwd torch ms "
        "| fwd+bwd dilated ms | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for config in CONFIGS:
        r = measure(*config, repeats=args.repeats)
        fwd, bwd = r["fwd_dilated"] / r["fwd_torch"], r["bwd_dilated"] / r["bwd_torch"]
        ratios += [fwd, bwd]
        lines.append(
            "| " + " | ".join(map(str, config)) + f" | {r['fwd_torch'] * 1e3:.3f} | "
            f"{r['fwd_dilated'] * 1e3:.3f} | {fwd:.2f} | {r['bwd_torch'] * 1e3:.3f} | "
            f"{r['bwd_dilated'] * 1e3:.3f} | {bwd:.2f} |"
        )
    lines += [
        "",
        f"geometric mean ratio dilated/torch: {statistics.geometric_mean(ratios):.3f} (< 1 faster, > 1 slower)",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
