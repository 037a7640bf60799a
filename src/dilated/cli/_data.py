"""Order books from market-data feeds: ``dilated data convert`` and ``dilated data info``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dilated.cli._shared import Command, add_json_argument, add_subcommand, print_json

CONVERT_HELP = """\
Rebuild limit order books from market-data feeds (Databento DBN MBO / MBP-10, Binance depth recordings,
Bitstamp order streams, LOBSTER) into Parquet: one row per book event, columns ts (ns), then ask_price_i,
ask_size_i, bid_price_i, bid_size_i per level i (empty levels NaN).

Examples:
  dilated data convert esh4-glbx-mdp3-20231224.mbo.dbn.zst esh4-glbx-mdp3-20231225.mbo.dbn.zst -o esh4.parquet
  dilated data convert btcusd_perp_20240808.gz btcusd_perp_20240809.gz -o btc.parquet --gaps truncate

A folder target (-o DIR/: a trailing slash or an existing folder) converts the files of many instruments and days
into a partitioned dataset, DIR/instrument=SYMBOL/date=YYYY-MM-DD/part-0.parquet, each instrument's files replayed in
time order with the book carried across them, instruments in parallel, resumable (a manifest, DIR/_manifest.json):
  dilated data convert feeds/*.mbo.dbn.zst -o esh4-month/ --jobs 4
  dilated data convert feeds/*.mbo.dbn.zst -o esh4-month/ --workers 8       (a local Dask cluster)
"""
INFO_HELP = """\
Describe a book: events, time span, levels per side, crossed and one-sided books, spread and mid-price statistics,
and per label horizon the threshold and the up / stationary / down shares. A feed file is converted first; a
Parquet book that lacks columns of its levels is refused, naming them; a dataset folder (dilated data convert
-o DIR/) is described from its manifest, with the files that failed (exit status 1 if any), and per instrument the
same label shares over its days (parts made of whole days, the threshold chosen on the training days).

Examples:
  dilated data info esh4.parquet --horizons 50,100,200
  dilated data info esh4.parquet --json          # the same as one JSON object (docs/json.md)
  dilated data info esh4-month/ --horizons 100 --smoothing tlob
"""
DATA_HELP = CONVERT_HELP + "\nThen describe a book or a dataset:\n  dilated data info esh4.parquet\n"
DATA_INFO_SCHEMA = "dilated.data-info/1"
_DATASET_ONLY = ("jobs", "instrument", "tick_size", "scheduler", "workers")


def _data_convert(args: argparse.Namespace) -> int:
    from dilated.data import book_summary, convert_book, format_book_info, is_dataset_target, write_book

    if is_dataset_target(args.output):
        return _convert_dataset(args)
    given = [f"--{name.replace('_', '-')}" for name in _DATASET_ONLY if getattr(args, name) is not None]
    if given:
        raise ValueError(f"{', '.join(given)} apply to a dataset folder (-o DIR/), not to the file {args.output}")
    options = {"gaps": args.gaps} if args.gaps else {}
    book = convert_book(args.sources, args.format, args.levels, progress=not args.no_progress, **options)
    path = write_book(book, args.output)
    print(format_book_info(book_summary(book)))
    details = ", ".join(f"{k} {v}" for k, v in book.stats.items() if k not in ("events",))
    print(f"  conversion: {details}")
    print(f"wrote {path}: {len(book):,} events x {book.levels} levels")
    return 0


def _convert_dataset(args: argparse.Namespace) -> int:
    import sys

    from dilated.data import convert_dataset, dataset_info, format_dataset_info

    options = {"gaps": args.gaps} if args.gaps else {}
    report = convert_dataset(
        args.sources,
        args.output,
        args.format,
        args.levels,
        instrument=args.instrument,
        tick_size=args.tick_size,
        processes=args.jobs,
        scheduler=args.scheduler,
        workers=args.workers,
        progress=not args.no_progress,
        **options,
    )
    for name, error in report["failed"].items():
        print(f"error: {name}: {error}", file=sys.stderr)
    print(format_dataset_info(dataset_info(args.output)))
    print(
        f"converted {len(report['converted'])} instruments, skipped {len(report['skipped'])} already converted, "
        f"{len(report['failed'])} failed"
    )
    return 1 if report["failed"] else 0


def _label_rows(balance: dict[int, dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A label balance as the JSON list: one object per horizon and rule."""
    return [
        {"horizon": horizon, "smoothing": smoothing, **row}
        for horizon, rules in (balance or {}).items()
        for smoothing, row in rules.items()
    ]


def _data_info(args: argparse.Namespace) -> int:
    from dilated.data import SMOOTHINGS, book_summary, convert_book, format_book_info, label_balance, read_book

    path = Path(args.file)
    horizons = [int(h) for h in args.horizons.split(",") if h.strip()] if args.horizons else []
    smoothings = [args.smoothing] if args.smoothing else SMOOTHINGS
    labels = {
        "threshold": args.threshold,
        "smoothings": smoothings,
        "threshold_unit": args.threshold_unit,
        "tick_size": args.tick_size,
    }
    if path.is_dir():
        from dilated.data import dataset_info, dataset_label_balance, format_dataset_info

        info = dataset_info(path)
        balances = {
            name: dataset_label_balance(path, name, horizons, **labels) if horizons and not row["error"] else None
            for name, row in info["instruments"].items()
        }
        if args.json:
            for name, row in info["instruments"].items():
                row["labels"] = _label_rows(balances[name])
            print_json(DATA_INFO_SCHEMA, {"kind": "dataset", **info})
        else:
            print(format_dataset_info(info, balances))
        return 1 if info["failures"] else 0
    book = read_book(path) if path.suffix.lower() in (".parquet", ".pq") else convert_book(path, progress=False)
    balance = label_balance(book, horizons, **labels) if horizons else None
    summary = book_summary(book)
    if args.json:
        print_json(DATA_INFO_SCHEMA, {"kind": "book", **summary, "labels": _label_rows(balance)})
    else:
        print(format_book_info(summary, balance))
    return 0


def add_data_commands(command: Command) -> None:
    """The `dilated data convert` and `dilated data info` subcommands."""
    from dilated.data import BOOK_FORMATS, GAP_POLICIES, SMOOTHINGS, THRESHOLD_UNITS

    data = command("data", _data_info, "Rebuild order books from market-data feeds (convert, info).", DATA_HELP)
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    convert = add_subcommand(actions, "convert", _data_convert, "feed files -> a Parquet book", CONVERT_HELP)
    convert.add_argument(
        "sources", metavar="SOURCE", nargs="+", help="feed files: of one instrument in time order for a .parquet target"
    )
    convert.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="BOOK.parquet|DIR/",
        help="Parquet file to write, or a dataset folder (a trailing slash or an existing folder)",
    )
    convert.add_argument("--format", choices=BOOK_FORMATS, help="feed format (default: detected from the file)")
    convert.add_argument("--levels", type=int, default=10, help="price levels per side (default 10)")
    convert.add_argument(
        "--gaps",
        choices=GAP_POLICIES,
        help="Binance: at a sequence gap, raise (default) or keep the book up to it (truncate)",
    )
    convert.add_argument("--no-progress", action="store_true", help="no progress bar")
    convert.add_argument("--jobs", type=int, help="dataset: instruments converted at once (default: the CPU count)")
    convert.add_argument("--instrument", help="dataset: every file is this instrument (default: the feed's symbol)")
    convert.add_argument(
        "--tick-size", type=float, help="dataset: every instrument's tick size (default: the smallest level gap seen)"
    )
    convert.add_argument("--scheduler", metavar="ADDRESS", help="dataset: run on this Dask distributed scheduler")
    convert.add_argument("--workers", type=int, help="dataset: run on a local Dask cluster of N worker processes")
    info = add_subcommand(actions, "info", _data_info, "describe a book (Parquet or feed file)", INFO_HELP)
    info.add_argument("file", metavar="FILE", help="a Parquet book, a feed file (converted first) or a dataset folder")
    add_json_argument(info, "the summary")
    info.add_argument(
        "--horizons",
        default="10,50,100",
        help="label horizons in events, comma-separated (default 10,50,100; empty: none)",
    )
    info.add_argument(
        "--threshold", type=float, help="label threshold (default: balanced on the first 70%%; spread: 1 x the mean)"
    )
    info.add_argument("--threshold-unit", choices=THRESHOLD_UNITS, default="fraction", help="what --threshold counts")
    info.add_argument("--tick-size", type=float, help="for --threshold-unit ticks (default: the smallest level gap)")
    info.add_argument("--smoothing", choices=SMOOTHINGS, help="one label rule (default: each of them)")
