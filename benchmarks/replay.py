"""Replay speed: a trained run's live stream against recomputing each window offline, measured side by side.

    python benchmarks/replay.py [--rounds 4] [--events 200] [--streams 1 64] [--out-dir docs/results]

Two runs are trained for a moment on the bundled LOBSTER sample (windows of 100 events): TransLOB (its live
stream is the window-exact :class:`dilated.WindowStream`) and a TCN of receptive field 63 (the exact causal
stream, compiled with Numba where it can be). Per event and per row:

* replay: :meth:`dilated.predictor.LiveStream.step`, raw events in, predictions out (what `dilated replay` times);
* recompute: the last 100 raw events of every stream z-scored and ``model(windows)`` (what a service without
  streaming state does);
* engine / model(window) (TransLOB): the window stream's step against the model's forward on z-scored tensors,
  without the predictor around them.

Rounds interleave the methods over the same events so that load from other processes hits them alike; latencies
are per step (one event of every stream), p50 and p99 over all rounds. Benchmarks print ratios; tests never check
time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import dilated
from dilated.live import load_run
from dilated.training import TrainConfig, train

WINDOW = 100
RUNS = {
    "translob": {"model": "translob", "options": {}},
    "tcn": {"model": "tcn", "options": {"num_channels": [16] * 5, "kernel_size": 2}},  # receptive field 63
}


def trained_run(name: str, folder: Path) -> Path:
    """A run of two training batches on the bundled sample (speed does not depend on how well it learned)."""
    raw = {
        **RUNS[name],
        "data": {"kind": "lobster", "window": WINDOW, "fractions": [0.6, 0.2, 0.2]},
        "training": {"max_epochs": 1, "batch_size": 32},
        "trainer": {"limit_train_batches": 2, "limit_val_batches": 1, "threads": 1, "progress_bar": False},
    }
    train(TrainConfig.from_dict(raw, name), folder / name, progress=False, echo=lambda _message: None)
    return folder / name


def timed(step: Callable[[int], object], events: range) -> list[float]:
    """Seconds of each call ``step(t)``."""
    out = []
    for t in events:
        start = time.perf_counter()
        step(t)
        out.append(time.perf_counter() - start)
    return out


def measure(run: Path, streams: int, rounds: int, events: int) -> list[dict[str, object]]:
    predictor = load_run(run)
    raw = np.asarray(predictor.read().raw).T  # (events, channels)
    feeds = np.repeat(raw[:, None, :], streams, axis=1)  # (events, streams, channels): the same feed per stream
    live = predictor.stream(streams)
    for t in range(WINDOW - 1):  # fill the first window
        live.step(feeds[t])
    methods: dict[str, Callable[[int], object]] = {
        "replay": lambda t: live.step(feeds[t]),
        "recompute": lambda t: predictor.model(
            predictor.normalisation(feeds[t - WINDOW + 1 : t + 1].transpose(1, 2, 0))
        ),
    }
    if live.engine == "window":
        window_stream = dilated.WindowStream(predictor.model, streams, WINDOW)
        inputs = predictor.normalisation(np.ascontiguousarray(feeds.transpose(1, 2, 0)))  # (streams, C, events)
        for t in range(WINDOW - 1):
            window_stream.step(inputs[..., t])
        methods["engine"] = lambda t: window_stream.step(inputs[..., t])
        methods["model(window)"] = lambda t: predictor.model(inputs[..., t - WINDOW + 1 : t + 1])
    times: dict[str, list[float]] = {name: [] for name in methods}
    start = WINDOW - 1
    if start + rounds * events > len(raw):
        raise SystemExit(f"--rounds x --events must stay within the {len(raw) - WINDOW + 1} windows")
    with torch.inference_mode():
        for _ in range(rounds):
            span = range(start, start + events)
            for name, step in methods.items():
                times[name] += timed(step, span)
            start += events
    rows = []
    for name, samples in times.items():
        seconds = statistics.fmean(samples)
        rows.append(
            {
                "model": predictor.config["model"],
                "engine": live.engine,
                "streams": streams,
                "method": name,
                "events_per_s": streams / seconds,
                "p50_us": 1e6 * float(np.percentile(samples, 50)),
                "p99_us": 1e6 * float(np.percentile(samples, 99)),
            }
        )
    recompute = next(r for r in rows if r["method"] == "recompute")["events_per_s"]
    for row in rows:
        row["speed_vs_recompute"] = row["events_per_s"] / recompute
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--events", type=int, default=200, help="events per method per round")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out-dir", type=Path, help="also write replay.md / replay.csv there")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in RUNS:
            run = trained_run(name, Path(folder))
            for streams in args.streams:
                rows += measure(run, streams, args.rounds, args.events)
    header = ["model", "engine", "streams", "method", "events/s", "p50 us", "p99 us", "vs recompute"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['engine']} | {r['streams']} | {r['method']} | {r['events_per_s']:,.0f} | "
            f"{r['p50_us']:,.1f} | {r['p99_us']:,.1f} | {r['speed_vs_recompute']:.2f}x |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out_dir is not None:
        from run_all import write_result  # benchmarks/run_all.py, beside this script

        write_result(
            "replay",
            "Replay: live stream vs recomputing each window",
            table,
            rows,
            command="python benchmarks/replay.py",
            seeds="training seed 0",
            threads=args.threads,
            wall_s=time.perf_counter() - started,
            out_dir=args.out_dir,
        )


if __name__ == "__main__":
    main()
