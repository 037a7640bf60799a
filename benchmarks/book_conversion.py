"""How fast the book readers rebuild the real feeds in ../shared/data (a speed target, not a test).

    python benchmarks/book_conversion.py [--repeats 3] [--data ../shared/data]

Target (issue 15): the 314k-row Bitstamp stream and the 68k-message Databento file each convert in under 10 s on
the 2-core project machine. Prints, per feed, the best and median wall time of ``--repeats`` conversions (reading
and decompressing included), messages and events per second, and the conversion counts (gaps, uncrossing).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import shared_data
from dilated.data._convert import convert_book

FEEDS = {  # name: files under the data folder, in time order
    "databento ESH4 MBO (snapshot + 2023-12-25)": [
        "databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst",
        "databento/esh4-glbx-mdp3-20231225.mbo.dbn.zst",
    ],
    "bitstamp BTC/USD 2026-05-02": ["bitstamp/2026-05-02/orders.csv.gz"],
    "bitstamp BTC/USD 2015-05-01": ["bitstamp/2015-05-01/orders.csv.xz"],
    "binance COIN-M BTCUSD_PERP": ["binance/cm/btcusd_perp_20240808.gz", "binance/cm/btcusd_perp_20240809.gz"],
    "binance COIN-M ETHUSD_PERP": ["binance/cm/ethusd_perp_20240808.gz", "binance/cm/ethusd_perp_20240809.gz"],
    "binance spot BTCUSDT": ["binance/spot/btcusdt_20240808.gz", "binance/spot/btcusdt_20240809.gz"],
    "lobster AAPL sample": ["lobster/AAPL_2012-06-21_34200000_57600000_message_10.csv"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--data",
        type=Path,
        default=shared_data(),
        help="the shared data folder (default: $DILATED_SHARED_DATA or shared/data beside the checkout)",
    )
    args = parser.parse_args()
    print("| feed | messages | events | best s | median s | messages/s | counts |\n|---|---|---|---|---|---|---|")
    for name, files in FEEDS.items():
        paths = [args.data / f for f in files]
        if not all(p.is_file() for p in paths):
            print(f"| {name} | skipped: {paths[0]} not found | | | | | |")
            continue
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            book = convert_book(paths)
            times.append(time.perf_counter() - start)
        messages = book.stats.get("messages", len(book))
        counts = {k: v for k, v in book.stats.items() if k not in ("messages", "events") and v}
        print(
            f"| {name} | {messages:,} | {len(book):,} | {min(times):.2f} | {statistics.median(times):.2f} | "
            f"{messages / min(times):,.0f} | {counts} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
