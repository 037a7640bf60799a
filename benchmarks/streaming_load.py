"""Memory stays flat while streaming: RSS before and after a million steps of one stream.

    python benchmarks/streaming_load.py [--steps 1000000] [--backend fast|eager]

Prints the resident set size after warm-up and after the run, and the growth. A stream holds fixed-size buffers,
so the growth should be ~0 (allocator noise only).
"""

import argparse
import time
from pathlib import Path

import torch

import dilated


def rss_mib() -> float:
    """Resident set size of this process, from /proc (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["fast", "eager"], default="fast")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = dilated.build_model("tcn", num_channels=[32] * 10, kernel_size=2).eval()
    stream = dilated.stream(model, batch_size=1, backend=args.backend)
    inputs = torch.randn(1000, 1, 1)
    for t in range(2000):  # warm-up: compilation, allocator pools
        stream.step(inputs[t % 1000])
    before = rss_mib()
    start = time.perf_counter()
    for t in range(args.steps):
        stream.step(inputs[t % 1000])
    elapsed = time.perf_counter() - start
    after = rss_mib()
    print(
        f"{args.steps:,} steps ({args.backend}, TCN 10x32 k=2, RF {model.receptive_field}) in {elapsed:.1f} s "
        f"({elapsed / args.steps * 1e6:.2f} us/step)"
    )
    print(f"RSS before {before:.1f} MiB, after {after:.1f} MiB, growth {after - before:+.2f} MiB")


if __name__ == "__main__":
    main()
