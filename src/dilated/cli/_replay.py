"""Replaying a recorded feed through a trained run's live stream: ``dilated replay``."""

from __future__ import annotations

import argparse
import sys

from dilated.cli._shared import Command, add_run_arguments

REPLAY_HELP = """\
Replays a recorded feed event by event through the run's live stream (dilated.load_run(RUN).stream()): raw
events in, z-scored with the training statistics, one prediction per full window out. The CSV has the columns of
`dilated predict` (windows whose target lies beyond the feed have an empty target).

FILE is a LOBSTER message or orderbook file (its partner found by LOBSTER's naming), a CSV/Parquet table, a
Parquet book (dilated data convert), or a YAML file with a data: section; default: the run's own data.

Examples:
  dilated replay runs/demo -o replay.csv --check
  dilated replay runs/sunspots --input new.csv -o forecast.csv
  dilated replay runs/prices --input ticks.parquet --by symbol -o replay.csv
"""


def _replay(args: argparse.Namespace) -> int:
    import torch

    from dilated.live import PARITY, load_run, replay, write_replay

    torch.set_num_threads(args.threads)
    predictor = load_run(args.run, args.checkpoint)
    result = replay(predictor, args.input, args.by, args.check, progress=not args.no_progress)
    feeds = f" in {len(result.streamed)} streams by {args.by}" if args.by else ""
    print(
        f"replayed {result.events:,} events{feeds} through the {result.engine} engine, checkpoint "
        f"{predictor.checkpoint.name}: {result.events_per_second:,.0f} events/s, step latency p50 "
        f"{result.latency_us(50):.1f} us, p99 {result.latency_us(99):.1f} us"
    )
    path = write_replay(result, args.output)
    windows = sum(len(p) for p in result.streamed.values())
    withheld = (
        f" ({result.withheld:,} withheld: they hold events the run was not trained to read, e.g. crossed books)"
        if result.withheld
        else ""
    )
    print(f"wrote {path}: {windows:,} windows{withheld}")
    if args.check:
        verdict = "equal" if result.passed else "DIFFERENT"
        print(
            f"check: {result.compared:,} windows against the offline prediction, largest difference "
            f"{result.difference:.3g} (limit {PARITY:g}): {verdict}"
        )
        if not result.passed:
            print(
                f"dilated: error: the replay differs from the offline prediction by {result.difference:.3g} "
                f"(> {PARITY:g})",
                file=sys.stderr,
            )
            return 1
    return 0


def add_replay_command(command: Command) -> None:
    """The replay subcommand."""
    sub = command("replay", _replay, "Replay a recorded feed through a trained run's live stream.", REPLAY_HELP)
    sub.add_argument("--input", metavar="FILE", help="the feed (default: the run's own data)")
    sub.add_argument("-o", "--output", metavar="FILE.csv", required=True, help="CSV file to write")
    sub.add_argument(
        "--check",
        action="store_true",
        help="also predict offline and report the largest difference (exit 1 above 1e-5)",
    )
    sub.add_argument(
        "--by",
        metavar="COLUMN",
        help="a table column naming the instrument of each row: the "
        "instruments are streamed together as a batch of streams",
    )
    add_run_arguments(sub, "run", "RUN")
    sub.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: one event's ops are too "
        "small to share, and spinning threads stall on a busy CPU)",
    )
    sub.add_argument("--no-progress", action="store_true", help="no progress bar")
