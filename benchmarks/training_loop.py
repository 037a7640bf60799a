"""Throughput of the whole training loop (`dilated train`: Lightning, callbacks, metrics, checkpoints, logging), and
a comparison of source trees measured in the same run, rounds interleaved.

    python benchmarks/training_loop.py [--quick] [--src OTHER/src ...] [--rounds 3]

Each round trains the same small config once per source tree (a fresh `python -m dilated.cli train` process with
``PYTHONPATH`` set to that tree), single-threaded; the figure is training samples per second over the epochs
(``metrics.csv``'s per-epoch seconds, which include validation and the checkpoint of each epoch), and the process's
wall time. The first tree is this checkout's ``src``; medians over rounds and the ratio to the first are printed.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """\
model: {model}
options: {options}
data: {{kind: lobster, horizon: 10, window: {window}}}
training: {{batch_size: 32, max_epochs: {epochs}, scheduler: plateau, class_weights: balanced, seed: 0}}
trainer: {{threads: 1, progress_bar: false}}
"""
MODELS = {"tcn": ("{num_channels: [16, 16, 16], kernel_size: 3}", 20), "translob": ("{}", 100)}
TRAIN_SAMPLES = {20: 670, 100: 605}  # training windows of the bundled sample (fractions 0.7/0.15/0.15)


def run_once(src: Path, model: str, epochs: int, folder: Path) -> tuple[float, float]:
    """(training samples per second over the epochs, wall seconds of the process)."""
    options, window = MODELS[model]
    config = folder / "config.yaml"
    config.write_text(CONFIG.format(model=model, options=options, window=window, epochs=epochs))
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dilated.cli", "train", str(config), "--run-dir", str(folder / "run"), "--no-progress"],
        env=env,
        check=True,
        capture_output=True,
        cwd=folder,
    )
    wall = time.perf_counter() - start
    with open(folder / "run" / "metrics.csv") as handle:
        seconds = sum(float(row["seconds"]) for row in csv.DictReader(handle))
    return TRAIN_SAMPLES[window] * epochs / seconds, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", action="append", type=Path, default=[], help="another source tree to compare")
    parser.add_argument("--models", nargs="+", default=["tcn", "translob"], choices=sorted(MODELS))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 epochs, 2 rounds")
    args = parser.parse_args()
    epochs, rounds = (2, 2) if args.quick else (args.epochs, args.rounds)
    trees = [ROOT / "src", *args.src]
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="training_loop_") as tmp:
        for number in range(rounds):
            for model in args.models:
                for index, tree in enumerate(trees):  # interleaved: every tree once per round
                    folder = Path(tmp) / f"{model}-{index}-{number}"
                    folder.mkdir()
                    results.setdefault((model, index), []).append(run_once(tree, model, epochs, folder))
    print(f"{epochs} epochs x {rounds} rounds, 1 thread; samples/s over the epochs (median), wall s (median)")
    for model in args.models:
        base = statistics.median(r[0] for r in results[(model, 0)])
        for index, tree in enumerate(trees):
            rate = statistics.median(r[0] for r in results[(model, index)])
            wall = statistics.median(r[1] for r in results[(model, index)])
            rounds_text = ", ".join(f"{r[0]:.0f}" for r in results[(model, index)])
            print(
                f"  {model:9s} {str(tree):40s} {rate:8.0f} samples/s ({rounds_text})  wall {wall:5.1f} s  "
                f"ratio {rate / base:.3f}"
            )


if __name__ == "__main__":
    main()
