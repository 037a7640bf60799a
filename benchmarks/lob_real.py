"""What is learnable in real order books (CME E-mini, Bitstamp, Binance)? The book recipe's TCN on stationary and
order-flow inputs against a majority class and two logistic regressions, 3 seeds, every window.

    python benchmarks/lob_real.py [--quick] [--workers 2] [--seeds 0 1 2] [--sources esh4 cm_btc bitstamp]
                                  [--data ../shared/data] [--books /tmp/lob_real_books] [--report-only]

Each feed of ../shared/data is rebuilt once (:func:`dilated.data.convert_book`) into a Parquet book cached under
``--books`` (outside the repository: the data's licences keep it out). Every cell (source, horizon k, input
representation, model, seed) is one run of the library's training API (``dilated.training.train``) with the book
recipe (``configs/book_recipe.yaml``: every window served, AdamW lr 1e-3, weight decay 0.01, batch 32, early stopping
on validation MCC with patience 2, the best validation MCC tested, balanced class weights, the output layer started
at zero). Labels: the FI-2010 ``future`` rule (mean of the next k mids against the current one), the threshold in
ticks of the instrument (observed on the training part) balanced so that a third of the training labels are
stationary, or 0 where more than a third of the changes are exactly 0; 70/15/15 chronological parts with a gap of
window + k events. Per source a short and a long horizon, inputs ``stationary`` and ``order_flow``, and ``raw`` (the
FI-2010 z-scored levels, the old report's input) as one reference row at the short horizon. Baselines, read from
every run's test report (deterministic, the same for every seed): the majority class, the class-weighted logistic
regression on imbalance and mid changes and the one on order flow per level summed over lags
(:func:`dilated.training.lob_references`, fitted on 20,000 training windows).

Sizing (2 shared CPU cores, the whole grid in well under an hour with 2 worker processes of one thread each): the
recipe's window of 64 events and its TCN (5 levels of 32 channels, kernel 3, receptive field 125 >= the window; the
sizing of ``benchmarks/lob_planted.py``); an epoch is :data:`EPOCH_BATCHES` batches (6,400 windows) drawn afresh
from all training windows each epoch, at most :data:`MAX_EPOCHS` epochs; validation and test on every window. One
ESH4 k=50 stationary run took 58 s (4 epochs, early stopped, epochs of 10-14 s, load average ~5); in the full run,
with the machine shared by 7 jobs (load average 4-14), a cell took 72-375 s and the 45 cells 4,336 s on 2 workers;
a grid that cannot finish in the time given is stopped and reported as far as it went (the report lists what did
not run). MLPLOB and TLOB
are not in the grid: a timed MLPLOB trial on the same cell took 189 s (epochs of 50-61 s at load ~8-9; the report
gives its score). Each finished cell is appended to ``docs/results/lob_real.csv`` as it ends, so
partial results survive and a rerun skips the finished cells; ``--report-only`` writes ``docs/results/lob_real.md``
from the CSV.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import environment, markdown_table, mean_sd, shared_data, write_result  # noqa: E402
from lob_planted import RECIPE, overrides  # noqa: E402

SOURCES: dict[str, dict[str, Any]] = {
    "esh4": {
        "name": "ESH4 (CME E-mini S&P, Databento MBO, 1 hour)",
        "horizons": (50, 200),
        "files": ["databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst", "databento/esh4-glbx-mdp3-20231225.mbo.dbn.zst"],
        "start": "2023-12-25T23:00",
    },  # continuous trading; the crossed pre-open auction is left out
    "cm_btc": {
        "name": "Binance COIN-M BTCUSD_PERP (11 min)",
        "horizons": (50, 200),
        "files": ["binance/cm/btcusd_perp_20240808.gz", "binance/cm/btcusd_perp_20240809.gz"],
    },
    "bitstamp": {
        "name": "Bitstamp BTC/USD 2026-05-02 (30 min)",
        "horizons": (200, 1000),
        "files": ["bitstamp/2026-05-02/orders.csv.gz"],
    },
    "cm_eth": {
        "name": "Binance COIN-M ETHUSD_PERP (11 min)",
        "horizons": (50, 200),
        "files": ["binance/cm/ethusd_perp_20240808.gz", "binance/cm/ethusd_perp_20240809.gz"],
    },
}
DEFAULT_SOURCES = ("esh4", "cm_btc", "bitstamp")
REPRESENTATIONS = ("stationary", "order_flow")
REFERENCE = "raw"  # one row per source, at the short horizon
MODEL = "tcn"
EPOCH_BATCHES = 200
MAX_EPOCHS = 6
BASELINES = {"majority": "majority class", "logistic": "logistic (imbalance, mid changes)", "logistic_flow": ""}
BASELINES["logistic_flow"] = "logistic (order flow)"
METRICS = ("accuracy", "f1_weighted", "f1_macro", "mcc")
KEY = ("source", "horizon", "representation", "model", "seed")
COLUMNS = [
    *KEY,
    *METRICS,
    "epochs",
    "best_epoch",
    "wall_s",
    *(f"{b}_{m}" for b in BASELINES for m in METRICS),
    "train_windows",
    "val_windows",
    "test_windows",
    "tick",
    "threshold_ticks",
    "threshold_rule",
    "balance_train",
    "balance_val",
    "balance_test",
]


def cells(sources: Sequence[str], seeds: Sequence[int], quick: bool) -> list[dict[str, Any]]:
    """The grid in run order: source by source, the reference row first."""
    if quick:
        return [{"source": "esh4", "horizon": 50, "representation": "stationary", "model": MODEL, "seed": 0}]
    grid = []
    for source in sources:
        short, long = SOURCES[source]["horizons"]
        plan = [(short, REFERENCE), *((k, r) for k in (short, long) for r in REPRESENTATIONS)]
        for horizon, representation in plan:
            for seed in seeds:
                grid.append(
                    {
                        "source": source,
                        "horizon": horizon,
                        "representation": representation,
                        "model": MODEL,
                        "seed": seed,
                    }
                )
    return grid


def key(cell: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(cell[k]) for k in KEY)


def book_path(books: Path, source: str) -> Path:
    return books / f"{source}.parquet"


def prepare_books(sources: Sequence[str], data: Path, books: Path) -> None:
    """Convert each source's feed once into ``books``; its conversion facts beside it as JSON."""
    from dilated.data import convert_book, select_events, write_book

    books.mkdir(parents=True, exist_ok=True)
    for name in sources:
        source, path = SOURCES[name], book_path(books, name)
        if path.is_file():
            continue
        files = [data / f for f in source["files"]]
        missing = [f for f in files if not f.is_file()]
        if missing:
            sys.exit(f"{missing[0]} not found: lob_real needs the shared data folder (--data)")
        book = convert_book(files)
        used = select_events(book, source.get("start"))
        mid = used.mid
        facts = {
            "messages": book.stats.get("messages", len(book)),
            "events": len(book),
            "used_events": len(used),
            "mid_changes": int(np.count_nonzero(np.diff(mid[np.isfinite(mid)]))),
            "crossed_events": book.stats["crossed_events"],
            "counts": ", ".join(
                f"{k} {v}"
                for k, v in book.stats.items()
                if k.startswith(("uncross", "gaps", "unknown", "older", "diffs_before", "snapshots"))
            ),
        }
        write_book(book, path)
        path.with_suffix(".json").write_text(json.dumps(facts))
        print(f"{name}: {facts}", flush=True)


def run_cell(cell: dict[str, Any], books: Path, epochs: int, batches: int) -> dict[str, Any]:
    """Train one cell with the recipe; its row of the CSV."""
    from dilated.training import load_config, train

    source = SOURCES[cell["source"]]
    path = book_path(books, cell["source"])
    window = load_config(RECIPE).data.window  # type: ignore[attr-defined]
    extra = [
        f"data.horizon={cell['horizon']}",
        f"data.representation={cell['representation']}",
        "data.threshold_unit=ticks",
        f"training.max_epochs={epochs}",
        f"trainer.limit_train_batches={batches}",
    ]
    if source.get("start"):
        extra.append(f"data.start={source['start']}")
    config = load_config(RECIPE, overrides(cell["model"], path, cell["seed"], None, window) + extra)
    with tempfile.TemporaryDirectory(prefix="lob_real_run_") as tmp:
        run = train(config, Path(tmp) / "run", progress=False, echo=lambda _m: None)
        assert run is not None, "train() returns None only on non-zero DDP ranks"
        facts = json.loads((Path(tmp) / "run" / "metrics.json").read_text())
    info, test = facts["data"], run.test
    row = {**cell, **{m: round(test[m], 4) for m in METRICS}}
    row |= {"epochs": run.epochs, "best_epoch": facts["best"]["epoch"], "wall_s": round(run.seconds, 1)}
    for name in BASELINES:
        result = test["baseline"] if name == "majority" else test["references"][name]
        row |= {f"{name}_{m}": round(result[m], 4) for m in METRICS}
    row |= {f"{part}_windows": n for part, n in info["sizes"].items()}
    row |= {"tick": info["tick_size"], "threshold_ticks": info["threshold"], "threshold_rule": info["threshold_rule"]}
    row |= {
        f"balance_{p}": "/".join(f"{100 * c:.0f}" for c in info["label_balance"][p]) for p in ("train", "val", "test")
    }
    return row


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one finished cell (locked: two workers share the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        writer = csv.DictWriter(handle, fieldnames=COLUMNS + ["cpu", "torch", "date"])
        if handle.tell() == 0:
            writer.writeheader()
        env = environment(1)
        writer.writerow({**row, "cpu": env["cpu"], "torch": env["torch"], "date": time.strftime("%Y-%m-%d %H:%M")})


def work(todo: list[dict[str, Any]], args: argparse.Namespace, out: Path) -> None:
    epochs, batches = (1, 20) if args.quick else (MAX_EPOCHS, EPOCH_BATCHES)
    for cell in todo:
        row = run_cell(cell, args.books, epochs, batches)
        append_row(out, row)
        print(
            " ".join(f"{k}={cell[k]}" for k in KEY)
            + f": macro F1 {row['f1_macro']:.3f} (logistic {row['logistic_f1_macro']:.3f}), MCC {row['mcc']:.3f},"
            f" {row['epochs']} epochs, {row['wall_s']:.0f} s",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one cell (ESH4 k=50 stationary, seed 0), 1 short epoch")
    parser.add_argument("--sources", nargs="+", choices=sorted(SOURCES), default=list(DEFAULT_SOURCES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2, help="processes of one thread each")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=shared_data())
    parser.add_argument("--books", type=Path, default=Path(tempfile.gettempdir()) / "lob_real_books")
    parser.add_argument("--out-dir", type=Path, default=None, help="docs/results (--quick: a temporary folder)")
    parser.add_argument("--report-only", action="store_true", help="write the report from the CSV, train nothing")
    args = parser.parse_args()
    if args.quick:
        args.seeds = [0]
    if args.out_dir is None:
        args.out_dir = Path(tempfile.mkdtemp(prefix="lob_real_quick_")) if args.quick else ROOT / "docs" / "results"
    out = args.out_dir / "lob_real.csv"
    grid = cells(args.sources, args.seeds, args.quick)
    if args.worker is not None:
        done = {key(r) for r in read_rows(out)}
        work([c for c in grid[args.worker :: args.workers] if key(c) not in done], args, out)
        return
    if not args.report_only:
        started = time.perf_counter()
        prepare_books(sorted({c["source"] for c in grid}), args.data, args.books)
        done = {key(r) for r in read_rows(out)}
        print(f"{len(grid)} cells, {len([c for c in grid if key(c) in done])} done before", flush=True)
        argv = [a for a in sys.argv[1:] if a != "--report-only"] + ["--out-dir", str(args.out_dir)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        workers = [
            subprocess.Popen([sys.executable, __file__, *argv, "--worker", str(i)], env=env)
            for i in range(min(args.workers, len(grid)))
        ]
        if any(w.wait() for w in workers):
            sys.exit("a worker failed; rerun to resume (finished cells are kept)")
        print(f"grid done in {time.perf_counter() - started:.0f} s", flush=True)
    path = report(read_rows(out), args)
    print(f"wrote {path}")


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> Path:
    """Write ``lob_real.md`` from the CSV's rows: only (source, horizon, input) groups with every seed count."""
    seeds = [str(s) for s in args.seeds]
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["source"], int(row["horizon"]), row["representation"]), []).append(row)
    complete = {
        g: sorted(rs, key=lambda r: r["seed"]) for g, rs in groups.items() if {r["seed"] for r in rs} >= set(seeds)
    }
    pairs = sorted({(s, k) for s, k, _ in complete}, key=lambda p: (list(SOURCES).index(p[0]), p[1]))
    table, verdicts, labels, bests = [], [], [], []
    calls: list[tuple[str, int, str, str]] = []
    for source, horizon in pairs:
        name = SOURCES[source]["name"]
        first = next(rs[0] for (s, k, _), rs in complete.items() if (s, k) == (source, horizon))
        for baseline, title in BASELINES.items():
            table.append((name, horizon, title, *(pct(float(first[f"{baseline}_{m}"])) for m in METRICS), "-", "-"))
        models = [r for r in (REFERENCE, *REPRESENTATIONS) if (source, horizon, r) in complete]
        for representation in models:
            runs = complete[(source, horizon, representation)]
            table.append(
                (
                    name,
                    horizon,
                    f"TCN, {representation} inputs",
                    *(mean_sd([float(r[m]) for r in runs], 100, 1) for m in METRICS),
                    " ".join(f"{r['epochs']} ({r['best_epoch']})" for r in runs),
                    f"{statistics.mean(float(r['wall_s']) for r in runs):.0f}",
                )
            )
        line, found, best = verdict(first, {r: complete[(source, horizon, r)] for r in models})
        verdicts.append(f"{name}, k={horizon}: {line}")
        calls += [(source, horizon, r, c) for r, c in found]
        bests.append(best)
        labels.append(
            (
                name,
                horizon,
                first["tick"],
                f"{float(first['threshold_ticks']):.3g}",
                "/".join(first[f"{p}_windows"] for p in ("train", "val", "test")),
                first["balance_train"],
                first["balance_val"],
                first["balance_test"],
            )
        )
    books = []
    for source in dict.fromkeys(s for s, _ in pairs):
        facts = json.loads(book_path(args.books, source).with_suffix(".json").read_text())
        books.append(
            (
                SOURCES[source]["name"],
                f"{facts['messages']:,}",
                f"{facts['events']:,}",
                f"{facts['used_events']:,}",
                f"{facts['mid_changes']:,}",
                f"{facts['crossed_events']:,}",
                facts["counts"],
            )
        )
    headline = summary(calls, bests, complete)
    missing = [
        f"{SOURCES[c['source']]['name']} k={c['horizon']} {c['representation']}"
        for c in cells(args.sources, args.seeds, args.quick)
        if c["seed"] == args.seeds[0] and (c["source"], c["horizon"], c["representation"]) not in complete
    ]
    body = "\n\n".join(
        [
            SETUP.format(window=load_window(), batches=EPOCH_BATCHES, epochs=MAX_EPOCHS, windows=32 * EPOCH_BATCHES),
            markdown_table(
                [
                    "source",
                    "k",
                    "model",
                    "accuracy",
                    "weighted F1",
                    "macro F1",
                    "MCC",
                    "epochs (best) per seed",
                    "s/run",
                ],
                table,
            ),
            SIGNIFICANCE,
            "\n".join(f"- {v}" for v in verdicts),
            LABELS,
            markdown_table(
                ["source", "k", "tick", "threshold (ticks)", "train/val/test windows", "train up/stat/down %"]
                + ["val %", "test %"],
                labels,
            ),
            BOOKS,
            markdown_table(
                ["source", "messages", "book events", "events used", "mid changes", "crossed", "counts"],
                books,
            ),
            "**What is and is not learnable here, and why.**",
            "\n".join(f"- {line}" for line in learnable(pairs, complete, args.books)),
            reading(complete, verdicts, calls),
            *(
                [f"**Not in this run** (the grid did not finish in the time given): {'; '.join(missing)}."]
                if missing
                else []
            ),
        ]
    )
    walls = [float(r["wall_s"]) for r in rows]
    return write_result(
        "lob_real",
        "What a TCN learns from real order books (CME, Binance, Bitstamp) against logistic baselines",
        body,
        [],  # the CSV is written cell by cell
        command="python benchmarks/lob_real.py" + (" --quick" if args.quick else ""),
        seeds=", ".join(seeds),
        wall_s=sum(walls) / max(1, args.workers),
        threads=1,
        out_dir=args.out_dir,
        headline=headline,
    )


def learnable(
    pairs: list[tuple[str, int]], complete: dict[tuple[str, int, str], list[dict[str, Any]]], books: Path
) -> list[str]:
    """Per source: how many outcomes the data hold, what the labels mean, and the TCN's MCC against the
    logistic regressions' (the numbers the text below reads)."""
    lines = []
    for source in dict.fromkeys(s for s, _ in pairs):
        facts = json.loads(book_path(books, source).with_suffix(".json").read_text())
        per = facts["used_events"] / max(1, facts["mid_changes"])
        parts = []
        for horizon in [k for s, k in pairs if s == source]:
            groups = {r: rs for (s, k, r), rs in complete.items() if (s, k) == (source, horizon)}
            first = next(iter(groups.values()))[0]
            stationary = "/".join(first[f"balance_{p}"].split("/")[1] for p in ("train", "val", "test"))
            mcc = ", ".join(f"{r} {mean_sd([float(x['mcc']) for x in rs], 100, 1)}" for r, rs in groups.items())
            parts.append(
                f"k={horizon} (about {horizon / per:.1f} mid changes ahead): threshold {float(first['threshold_ticks']):.3g} "
                f"ticks, stationary {stationary}% of train/val/test labels; test MCC x 100: logistic "
                f"{pct(float(first['logistic_mcc']))}, logistic on order flow {pct(float(first['logistic_flow_mcc']))}, "
                f"TCN {mcc}"
            )
        lines.append(
            f"{SOURCES[source]['name']}: {facts['used_events']:,} events, {facts['mid_changes']:,} mid changes "
            f"(one per {per:.0f} events, about {0.15 * facts['mid_changes']:.0f} in the test part). "
            + "; ".join(parts)
            + "."
        )
    return lines


def reading(
    complete: dict[tuple[str, int, str], list[dict[str, Any]]],
    verdicts: list[str],
    calls: list[tuple[str, int, str, str]],
) -> str:
    """The report's reading of the table: what is and is not learnable, and the limits of this run."""
    runs = [r for group in complete.values() for r in group]
    capped = sum(int(r["best_epoch"]) == MAX_EPOCHS for r in runs)
    beyond = sum(v.count("beyond the outcome floor") for v in verdicts)
    trial = complete.get(("esh4", 50, "stationary"), [])
    tcn = next((r for r in trial if r["seed"] == "0"), None)
    same = f" (the TCN's seed 0 on that cell: {pct(float(tcn['f1_macro']))} / {pct(float(tcn['mcc']))})" if tcn else ""
    pairs = sorted({(s, k) for s, k, _ in complete}, key=lambda p: (list(SOURCES).index(p[0]), p[1]))
    short = [p for p in pairs if p[1] == SOURCES[p[0]]["horizons"][0]]

    def mean(source: str, horizon: int, representation: str, metric: str) -> float:
        return statistics.mean(float(r[metric]) for r in complete[(source, horizon, representation)])

    def present(source: str, horizon: int) -> list[str]:
        return [r for r in REPRESENTATIONS if (source, horizon, r) in complete]

    def baseline(source: str, horizon: int, metric: str) -> float:
        return float(next(r for r in runs if (r["source"], int(r["horizon"])) == (source, horizon))[metric])

    above = [
        f"{SOURCES[s]['name']} k={k} on {r} inputs (MCC {pct(mean(s, k, r, 'mcc'))} against "
        f"{pct(baseline(s, k, 'logistic_mcc'))}, macro F1 {pct(mean(s, k, r, 'f1_macro'))} against "
        f"{pct(baseline(s, k, 'logistic_f1_macro'))})"
        for s, k in pairs
        for r in present(s, k)
        if mean(s, k, r, "mcc") > baseline(s, k, "logistic_mcc")
    ]
    lowest = sum(
        all(mean(s, k, REFERENCE, "f1_macro") < mean(s, k, r, "f1_macro") for r in present(s, k))
        for s, k in short
        if (s, k, REFERENCE) in complete
    )
    better = [
        f"{SOURCES[s]['name']} k={k} on {r} inputs (macro F1 {pct(mean(s, k, r, 'f1_macro'))}, MCC "
        f"{pct(mean(s, k, r, 'mcc'))})"
        for s, k, r, c in calls
        if c == "clearly better"
    ]
    flow_below = sum(baseline(s, k, "logistic_flow_f1_macro") < baseline(s, k, "logistic_f1_macro") for s, k in pairs)
    return "\n\n".join(
        [
            (
                "**The short horizon: learnable, and a linear read of the book already has most of it.** At the "
                "short horizon a label is about the next one or two mid changes (bullets above). Where the threshold "
                "is 0 (more than a third of the training changes exactly 0: a tick-bound market) a label says whether "
                "the mid moves within k events and which way, so it mixes activity with direction, and the "
                "stationary share follows each part's activity. Both are visible in the current book: a logistic regression "
                "on it (on imbalance at cumulative depths and recent mid changes, or on order flow) is the best "
                "baseline and reaches a clearly positive MCC, which is what these data hold. The TCN on stationary or order-flow "
                "inputs finds the same signal (a positive MCC in every seed) but not clearly more: its macro F1 stays "
                "at or below the best logistic regression's except where listed below"
                + (
                    "; by MCC it is above the logistic regression on imbalance and mid changes in "
                    + "; ".join(above)
                    + ", a gap inside the outcome floor"
                    if above
                    else ""
                )
                + ". A linear read of queue imbalance is most of what a window says about the next tick, and about "
                "a thousand training outcomes per source leave a network little else to fit."
            ),
            (
                "**Raw inputs do worst in most sources.** The FI-2010 z-scored levels (the previous report's input) give the "
                f"lowest TCN macro F1 in {lowest} of {len([p for p in short if (*p, REFERENCE) in complete])} "
                "sources (the gain of the other inputs is in the headline): price levels z-scored on the training "
                "part do not carry over to the later parts, while prices in ticks from the mid and order flow do. "
                "The order-flow logistic regression, on the same kind of input as the TCN's order-flow rows, is "
                f"below the one on imbalance and mid changes by macro F1 in {flow_below} of {len(pairs)} pairs."
            ),
            (
                "**Where the TCN is clearly better than every baseline:** "
                + ("; ".join(better) if better else "nowhere")
                + ". "
                + (BITSTAMP if ("bitstamp", 200, "order_flow") in complete else "")
            ),
            (
                "**The long horizon depends on the market.** In ESH4 (about 7 mid changes ahead, a threshold of a "
                "quarter tick or more) the best MCC falls to single digits and the TCN rows sit within their seed "
                "spread of 0: the direction several ticks ahead is not learnable from one hour of this book. In "
                "Binance COIN-M BTC the logistic regression keeps its short-horizon MCC at k=200, but the threshold "
                "is 0 and the labels' stationary share moves between the parts (Labels table): in 11 minutes the "
                "mid trended, and what is scored is mostly whether a move that recent mid changes already show goes "
                "on; more days would be needed to say whether that carries over. In Bitstamp at k=1000 (about five "
                "mid changes ahead) the TCN rows are within the spread of the order-flow logistic regression, and "
                "the stationary row's seed spread is as large as its mean."
            ),
            (
                f"**Limits of this run.** Of the differences from the best baseline, {beyond} exceed the outcome "
                "floor (one independent outcome per k test windows), the honest scale for windows that overlap; the "
                "noise floor of the previous report treats every window as independent and understates the noise. "
                f"The epoch cap binds: the best validation epoch was the last allowed ({MAX_EPOCHS}) in {capped} of "
                f"{len(runs)} runs, so longer training might move those rows (early stopping on a validation part "
                "of a few hundred outcomes is itself noisy). Minutes to an hour of one instrument per source, one "
                "chronological split (no source has the three days "
                "walk-forward needs), and class shares that move between the parts (Labels table). The previous "
                "report's models (TransLOB, DeepLOB on ~1,500 windows of raw inputs) are not rerun: the planted-"
                "signal benchmark (docs/results/lob_planted.md) covers which models can find a signal. MLPLOB and "
                "TLOB, its best finders, are not in the grid: a timed MLPLOB trial on ESH4 k=50 stationary inputs, "
                "seed 0, took 189 s for 3 epochs (early stopped; epochs of 50-61 s at load average 8-9 against the "
                "TCN's 10-14 s at load average 5) for test macro F1 37.6, MCC 13.3"
                + same
                + ". These findings agree with LOBCAST (Prata et al. 2024: models degrade on new data), Kolm, "
                "Turiel and Westray (2023: order flow over raw book states) and TLOB (Berti and Kasneci 2025: scores "
                "fall once thresholds follow the spread)."
            ),
        ]
    )


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def load_window() -> int:
    from dilated.training import load_config

    return int(load_config(RECIPE).data.window)  # type: ignore[attr-defined]


def verdict(first: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> tuple[str, list[tuple[str, str]], str]:
    """Each input's TCN macro F1 against the best baseline's, and the call (rule in :data:`SIGNIFICANCE`); the
    best baseline."""
    baseline = max(BASELINES, key=lambda b: float(first[f"{b}_f1_macro"]))
    reference = float(first[f"{baseline}_f1_macro"])
    n, horizon = int(first["test_windows"]), int(first["horizon"])
    noise, outcomes = 2 * math.sqrt(0.25 / n), 2 * math.sqrt(0.25 * horizon / n)
    parts, calls = [], []
    for representation, group in runs.items():
        values = [float(r["f1_macro"]) for r in group]
        mean, sd = statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0
        difference = mean - reference
        if abs(difference) > max(2 * sd, noise):
            call = "clearly better" if difference > 0 else "clearly worse"
        else:
            call = "within the spread"
        beyond = ", beyond the outcome floor" if abs(difference) > max(2 * sd, outcomes) else ""
        parts.append(f"{representation} {100 * mean:.1f} ± {100 * sd:.1f} ({100 * difference:+.1f}, {call}{beyond})")
        calls.append((representation, call))
    text = (
        f"best baseline {BASELINES[baseline]} macro F1 {100 * reference:.1f}; TCN "
        + "; ".join(parts)
        + f" (noise floor ± {100 * noise:.1f}, outcome floor ± {100 * outcomes:.1f})"
    )
    return text, calls, baseline


def summary(
    calls: list[tuple[str, int, str, str]], bests: list[str], complete: dict[tuple[str, int, str], list[dict[str, Any]]]
) -> str:
    """The headline: the calls of the stationary / order-flow TCN rows and of the raw reference rows, what the
    stationary inputs gain over raw, and which baseline is best."""
    main = [c for _, _, r, c in calls if r in REPRESENTATIONS]
    raw = [c for _, _, r, c in calls if r == REFERENCE]
    names = ("clearly better", "within the spread", "clearly worse")

    def f1(group: list[dict[str, Any]]) -> float:
        return statistics.mean(float(r["f1_macro"]) for r in group)

    gains = [
        100 * (max(f1(complete[(s, k, r)]) for r in REPRESENTATIONS if (s, k, r) in complete) - f1(group))
        for (s, k, representation), group in complete.items()
        if representation == REFERENCE
    ]
    gain = f"{min(gains):+.1f} to {max(gains):+.1f}" if gains else "-"
    return (
        f"The book recipe's TCN (every window, 3 seeds) against the best baseline by test macro F1 over {len(bests)} "
        f"source/horizon pairs: on stationary or order-flow inputs {' / '.join(str(main.count(c)) for c in names)} "
        f"of {len(main)} rows clearly better / within the spread / clearly worse, on raw inputs "
        f"{' / '.join(str(raw.count(c)) for c in names)} of {len(raw)}; stationary or order-flow inputs vs raw: {gain} "
        f"macro F1 points; the best baseline is the logistic regression on imbalance and mid changes in "
        f"{bests.count('logistic')} of {len(bests)} pairs"
    )


SETUP = (
    "**Setup.** Books rebuilt from the raw feeds of `../shared/data`, 10 levels per side. The book recipe "
    "(`configs/book_recipe.yaml`) through the library's training API: windows of {window} events, every window "
    "served; an epoch is {batches} batches of 32 ({windows:,} windows) drawn afresh from all training windows, at "
    "most {epochs} epochs, early stopping on validation MCC (patience 2), the best validation MCC tested; AdamW lr "
    "1e-3, weight decay 0.01, balanced class weights, the output layer started at zero, one CPU thread per run. "
    "Model: the project's TCN sized for the window (5 levels of 32 channels, kernel 3, receptive field 125). "
    "Inputs: `stationary` (prices in ticks from the mid, log sizes, mid change and spread in ticks) and "
    "`order_flow` (order-flow imbalance per level, Cont, Kukanov & Stoikov 2014, mid change and spread), both "
    "scaled robustly on the training part and clipped; `raw` (the FI-2010 z-scored levels, the previous report's "
    "input) as one reference row per source at its short horizon. Labels: the FI-2010 rule (mean of the next k "
    "mids against the current one) with the threshold in ticks, chosen on the training part so that a third of "
    "its labels are stationary, or 0 where more than a third of the changes are exactly 0; 70/15/15 chronological "
    "parts with a gap of window + k events. Baselines on the same test windows, the same for every seed: the "
    "majority class of the training part and two class-weighted logistic regressions fitted on 20,000 training "
    "windows (on imbalance at cumulative depths, mid changes over lags and the spread; on each level's order flow "
    "summed over lags). Seeds move weights, data order and the per-epoch sample. Metrics on the test part in "
    "percent, mean ± sd over seeds; MCC x 100."
)
BITSTAMP = (
    "In Bitstamp at k=200 a label is about the next mid change at most (bullets above) and most test labels are "
    "stationary: what predicts a move there is the order flow at the best levels (adds and cancels of a market by "
    "order feed), which the order-flow logistic regression and the order-flow TCN read and the imbalance-based one "
    "does not; the TCN's gain over the linear read of the same flow is inside the outcome floor."
)
SIGNIFICANCE = (
    "**Within the spread?** As in the previous report: a TCN's difference from the best baseline (by macro F1) "
    "counts only when it exceeds both twice its seed sd and twice the binomial standard error of a share on the "
    "test windows (sqrt(0.25 / n), the noise floor). Every window is served, so neighbouring test windows share "
    "most of their label's horizon: n overstates the independent outcomes. The outcome floor counts one per k "
    "windows (sqrt(0.25 k / n)); a difference beyond it is marked."
)
LABELS = (
    "**Labels** (the tick observed on the training part: the smallest gap between adjacent levels), windows per "
    "part and the class shares up/stationary/down in percent:"
)
BOOKS = (
    "**Books** (converted once, cached outside the repository; mid changes: events whose mid differs from the "
    "previous event's, in the part used):"
)


if __name__ == "__main__":
    main()
