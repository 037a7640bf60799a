"""The cost of a stream's construction check, as a ratio to one forward pass of its longest checked input.

    python benchmarks/streaming_check.py [--quick] [--src OTHER/src ...] [--repeats 3]

For each model (the 30-block WaveNet, the default TCN; eval mode, one thread): the seconds a stream takes to
build with the check minus without it, and one offline forward of the longest input the check uses (this tree:
``max(4 x receptive field, 512)`` steps; a tree without ``check_lengths``: one receptive field plus 8). Each tree
runs in its own process (``PYTHONPATH=tree``), rounds interleaved over the trees; medians. Compare with main:
``--src /work/main/src``.
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

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("wavenet", "tcn")


def measure(name: str) -> dict[str, float]:
    """One round in this process: check seconds, forward seconds of the longest checked input, its length."""
    import torch

    from dilated.models import build_model
    from dilated.streaming import EagerStream

    torch.set_num_threads(1)
    model = build_model(name).eval()
    field = EagerStream(model, 1, verify=False).receptive_field
    try:
        from dilated.streaming._verify import check_lengths

        longest = max(check_lengths(field))
    except ImportError:  # a tree from before the multi-length check
        longest = field + 8
    start = time.perf_counter()
    EagerStream(model, 1)
    checked = time.perf_counter() - start
    start = time.perf_counter()
    EagerStream(model, 1, verify=False)
    unchecked = time.perf_counter() - start
    from dilated.streaming._verify import example_inputs

    x = torch.randn(1, example_inputs(model)[0].shape[1], longest)
    start = time.perf_counter()
    with torch.inference_mode():
        model(x)
    forward = time.perf_counter() - start
    return {"check_s": checked - unchecked, "forward_s": forward, "length": longest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", type=Path, default=[], help="another source tree to compare")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--measure", choices=MODELS, help=argparse.SUPPRESS)  # (the child process)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    trees = [ROOT / "src", *args.src]
    rounds = 1 if args.quick else args.repeats
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    for _ in range(rounds):
        for name in MODELS:
            for index, tree in enumerate(trees):  # interleaved: every tree once per round
                env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
                out = subprocess.run(
                    [sys.executable, __file__, "--measure", name], env=env, check=True, capture_output=True, text=True
                ).stdout
                results.setdefault((name, index), []).append(json.loads(out.strip().splitlines()[-1]))
    print(f"construction check, {rounds} round(s), 1 thread: medians")
    print(f"{'model':8} {'tree':28} {'longest':>8} {'check s':>8} {'forward s':>10} {'ratio':>6}")
    for name in MODELS:
        for index, tree in enumerate(trees):
            rows = results[(name, index)]
            check = statistics.median(r["check_s"] for r in rows)
            forward = statistics.median(r["forward_s"] for r in rows)
            length = int(rows[0]["length"])
            print(f"{name:8} {str(tree)[-28:]:28} {length:8d} {check:8.2f} {forward:10.3f} {check / forward:6.1f}")


if __name__ == "__main__":
    main()
