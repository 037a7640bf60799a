"""TransLOB and DeepLOB against baselines on real order books: CME E-mini futures, Bitstamp and Binance crypto.

    python benchmarks/lob_real.py [--quick] [--seeds 0 1 2] [--sources esh4 bitstamp cm_btc cm_eth]
                                  [--train-samples 1500] [--data ../shared/data]

Each feed of ../shared/data is rebuilt in memory (:func:`dilated.data.convert_book`), written to a temporary Parquet
book, and trained on through the library's training API (``dilated.training.train``) with a plain config mapping
of data kind ``book``, as ``configs/*.yaml`` would be. Per source, three label horizons (chosen per market, see
:data:`SOURCES`) with the threshold balanced on the training part (a third of its labels stationary, or 0 where
more than a third of the smoothed changes are exactly 0), three seeds per model. Baselines on the same windows:
majority class, and logistic regression on order-book imbalance and recent mid-price changes
(:mod:`dilated.lob_baseline`; deterministic, so no spread over seeds). Accuracy, weighted F1, macro F1 and MCC
are computed here from each run's test confusion matrix (:func:`scores`). Writes ``docs/results/lob_real.md``
and ``.csv``.

Scaled to a 2-core shared CPU (the whole run ~30 min): windows of 50 events (papers: 100), window ends every
``stride`` events so that the training part holds about ``--train-samples`` windows; TransLOB 5 epochs with Adam
lr 1e-3 (paper: 150 epochs at 1e-4), DeepLOB 2 epochs with its Adam(lr 0.01, eps 1) (paper: up to 200 epochs,
early stopping); batch 32; balanced class weights in every loss (the models' and the logistic regression's:
the parts' class mixes differ); the checkpoint with the best validation loss is tested.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import markdown_table, shared_data, write_result  # noqa: E402
from dilated.data._convert import convert_book  # noqa: E402
from dilated.data._lob_labels import book_splits  # noqa: E402
from dilated.data._orderbook import write_book  # noqa: E402
from dilated.training import TrainConfig, train  # noqa: E402
from dilated.training._lob_baseline import lob_baselines  # noqa: E402

WINDOW = 50
FRACTIONS = (0.7, 0.15, 0.15)
SOURCES: dict[str, dict[str, Any]] = {
    "esh4": {
        "name": "ESH4 (CME E-mini S&P, Databento MBO)",
        "horizons": (50, 100, 200),
        "files": ["databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst", "databento/esh4-glbx-mdp3-20231225.mbo.dbn.zst"],
        "start": "2023-12-25T23:00",
    },  # continuous trading; the crossed pre-open auction is left out
    "bitstamp": {
        "name": "Bitstamp BTC/USD 2026-05-02",
        "horizons": (200, 500, 1000),
        "files": ["bitstamp/2026-05-02/orders.csv.gz"],
    },
    "cm_btc": {
        "name": "Binance COIN-M BTCUSD_PERP",
        "horizons": (50, 100, 200),
        "files": ["binance/cm/btcusd_perp_20240808.gz", "binance/cm/btcusd_perp_20240809.gz"],
    },
    "cm_eth": {
        "name": "Binance COIN-M ETHUSD_PERP",
        "horizons": (50, 100, 200),
        "files": ["binance/cm/ethusd_perp_20240808.gz", "binance/cm/ethusd_perp_20240809.gz"],
    },
}
MODELS: dict[str, dict[str, Any]] = {  # training: section of the config
    "translob": {"optimizer": "adam", "lr": 1e-3, "batch_size": 32, "max_epochs": 5},
    "deeplob": {"optimizer": "adam", "lr": 0.01, "eps": 1.0, "batch_size": 32, "max_epochs": 2},
}
METRICS = ("accuracy", "weighted_f1", "macro_f1", "mcc")


def scores(matrix: Any) -> dict[str, float]:
    """Accuracy, support-weighted F1, macro F1 (classes present in targets or predictions) and multiclass MCC
    (Gorodkin 2004) of a confusion matrix with true classes in rows."""
    m = np.asarray(matrix, dtype=np.float64)
    total, correct = m.sum(), np.trace(m)
    true, predicted = m.sum(axis=1), m.sum(axis=0)
    denominator = true + predicted
    f1 = np.divide(2 * np.diag(m), denominator, out=np.zeros(len(m)), where=denominator > 0)
    present = denominator > 0
    mcc_den = math.sqrt((total**2 - predicted @ predicted) * (total**2 - true @ true))
    return {
        "accuracy": correct / total,
        "weighted_f1": float(f1 @ true / total),
        "macro_f1": float(f1[present].mean()),
        "mcc": (correct * total - predicted @ true) / mcc_den if mcc_den > 0 else 0.0,
    }


def mean_sd(values: list[float]) -> str:
    values = [100 * v for v in values]
    if len(values) == 1 or max(values) == min(values):
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def config(
    model: str, path: Path, horizon: int, stride: int, seed: int, source: dict, epochs: int | None, threads: int
) -> dict[str, Any]:
    training = {
        **MODELS[model],
        "seed": seed,
        "monitor": "val_loss",
        "keep_checkpoints": 1,
        "class_weights": "balanced",
    }
    if epochs is not None:
        training["max_epochs"] = epochs
    data = {
        "kind": "book",
        "path": str(path),
        "levels": 10,
        "window": WINDOW,
        "horizon": horizon,
        "threshold": None,
        "smoothing": "future",
        "fractions": list(FRACTIONS),
        "stride": stride,
        "start": source.get("start"),
    }
    return {
        "model": model,
        "options": {},
        "data": data,
        "training": training,
        "trainer": {"threads": threads, "progress_bar": False, "accelerator": "cpu"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one source, one horizon, one seed, 1 epoch")
    parser.add_argument("--sources", nargs="+", choices=sorted(SOURCES), default=list(SOURCES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--train-samples", type=int, default=1500, help="training windows per source and horizon")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=shared_data())
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "results")
    args = parser.parse_args()
    sources = ["esh4"] if args.quick else args.sources
    seeds, epochs = ([0], 1) if args.quick else (args.seeds, None)
    started = time.perf_counter()
    rows, table, conversions, labels, verdicts = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="lob_real_") as tmp:
        for key in sources:
            source = SOURCES[key]
            paths = [args.data / f for f in source["files"]]
            missing = [p for p in paths if not p.is_file()]
            if missing:
                sys.exit(f"{missing[0]} not found: lob_real needs the shared data folder (--data)")
            start = time.perf_counter()
            book = convert_book(paths)
            seconds = time.perf_counter() - start
            path = write_book(book, Path(tmp) / f"{key}.parquet")
            stats = book.stats
            conversions.append(
                (
                    source["name"],
                    f"{stats.get('messages', len(book)):,}",
                    f"{len(book):,}",
                    f"{seconds:.2f}",
                    f"{stats['crossed_events']:,}",
                    ", ".join(
                        f"{k} {v}"
                        for k, v in stats.items()
                        if k.startswith(("uncross", "gaps", "unknown", "older", "diffs_before", "snapshots"))
                    ),
                )
            )
            horizons = source["horizons"][:1] if args.quick else source["horizons"]
            for horizon in horizons:
                probe = book_splits(
                    path, window=WINDOW, horizon=horizon, fractions=FRACTIONS, start=source.get("start")
                )
                stride = max(1, round(len(probe.train) / args.train_samples))
                splits = book_splits(
                    path, window=WINDOW, horizon=horizon, fractions=FRACTIONS, stride=stride, start=source.get("start")
                )
                info = splits.info
                sizes = "/".join(str(len(p)) for p in (splits.train, splits.val, splits.test))
                balance = info["label_balance"]
                labels.append(
                    (
                        source["name"],
                        horizon,
                        f"{info['threshold']:.3g}",
                        stride,
                        sizes,
                        *("/".join(f"{100 * c:.0f}" for c in balance[part]) for part in ("train", "test")),
                    )
                )
                results: dict[str, list[dict[str, Any]]] = {}
                base_start = time.perf_counter()
                baselines = lob_baselines(splits, balanced=True)
                base_wall = time.perf_counter() - base_start
                for name in ("majority", "logistic"):
                    result = scores(baselines[name]["test"]["confusion_matrix"])
                    results[name] = [{**result, "epochs": 0, "wall_s": base_wall if name == "logistic" else 0.0}]
                for model in MODELS:
                    results[model] = []
                    for seed in seeds:
                        run = train(
                            TrainConfig.from_dict(
                                config(model, path, horizon, stride, seed, source, epochs, args.threads)
                            ),
                            Path(tmp) / f"{key}_{horizon}_{model}_{seed}",
                            progress=False,
                            echo=lambda _m: None,
                        )
                        assert run is not None, "train() returns None only on non-zero DDP ranks"
                        result = {**scores(run.test["confusion_matrix"]), "epochs": run.epochs, "wall_s": run.seconds}
                        results[model].append(result)
                        print(
                            f"{key} k={horizon} {model} seed {seed}: "
                            + ", ".join(f"{m} {result[m]:.3f}" for m in METRICS)
                            + f" ({run.seconds:.0f} s)",
                            flush=True,
                        )
                for name, runs in results.items():
                    for seed, result in zip(seeds if name in MODELS else ["-"], runs):
                        rows.append(
                            {
                                "source": key,
                                "horizon": horizon,
                                "model": name,
                                "seed": seed,
                                **{m: round(result[m], 4) for m in METRICS},
                                "epochs": result["epochs"],
                                "wall_s": round(result["wall_s"], 1),
                                "test_windows": len(splits.test),
                                "threshold": info["threshold"],
                                "stride": stride,
                            }
                        )
                    table.append(
                        (
                            source["name"],
                            horizon,
                            name,
                            *(mean_sd([r[m] for r in runs]) for m in METRICS),
                            f"{statistics.mean(r['epochs'] for r in runs):.0f}",
                            f"{statistics.mean(r['wall_s'] for r in runs):.0f}",
                        )
                    )
                verdicts.append(verdict(source["name"], horizon, results, len(splits.test)))
                print(verdicts[-1], flush=True)
    body = "\n\n".join(
        [
            (
                "**Setup.** Books rebuilt from the raw feeds of `../shared/data` (10 levels per side, features z-scored "
                "with the training part's statistics), labels by the FI-2010 rule: mean of the next k mid-prices against "
                "the current one, thresholded; 70/15/15 chronological parts, a gap of at least window + k events between "
                f"them. Scaled to a 2-core shared CPU: windows of {WINDOW} events (papers 100), window ends every "
                "`stride` events so that about " + f"{args.train_samples:,} windows train; TransLOB "
                f"{MODELS['translob']['max_epochs']} epochs, Adam lr 1e-3 (paper 150 epochs at 1e-4); DeepLOB "
                f"{MODELS['deeplob']['max_epochs']} epochs, Adam lr 0.01, eps 1 (paper up to 200 epochs); batch 32, one "
                "CPU thread; balanced class weights in every loss (models and logistic regression); the checkpoint with "
                "the best validation loss is tested. Seeds move weights, dropout and "
                "data order; the data and the baselines are the same for every seed. Metrics on the test part, percent, "
                "mean ± sd over seeds; MCC x 100."
            ),
            markdown_table(
                ["source", "k", "model", "accuracy", "weighted F1", "macro F1", "MCC", "epochs", "wall s"], table
            ),
            (
                "**Within the spread?** A model's difference from the best baseline (by macro F1) counts only when it "
                "exceeds both twice the model's seed sd and twice the largest binomial standard error of a share on the "
                "test windows (sqrt(0.25 / n)):"
            ),
            "\n".join(f"- {v}" for v in verdicts),
            (
                "**Labels** (threshold chosen on the training part so that about a third of its labels are stationary; "
                "0 where more than a third of the smoothed changes are exactly 0, tick-bound markets), windows per part "
                "and the class shares up/stationary/down in percent:"
            ),
            markdown_table(
                [
                    "source",
                    "k",
                    "threshold",
                    "stride",
                    "train/val/test windows",
                    "train up/stat/down %",
                    "test up/stat/down %",
                ],
                labels,
            ),
            "**Books** (conversion in memory, this run; counts from the readers' stats):",
            markdown_table(["source", "messages", "book events", "convert s", "crossed events", "counts"], conversions),
        ]
    )
    print(body)
    better = sum(v.count("clearly better") for v in verdicts)
    worse = sum(v.count("clearly worse") for v in verdicts)
    headline = (
        f"TransLOB and DeepLOB vs the best baseline (majority class or logistic regression on imbalance and "
        f"mid changes) by test macro F1 over {len(verdicts)} source/horizon pairs x 2 models: {better} "
        f"clearly better, {worse} clearly worse, {2 * len(verdicts) - better - worse} within the spread"
    )
    command = "python benchmarks/lob_real.py" + (" --quick" if args.quick else "")
    path = write_result(
        "lob_real",
        "TransLOB and DeepLOB vs baselines on real order books (CME, Bitstamp, Binance)",
        body,
        rows,
        command=command,
        seeds=", ".join(map(str, seeds)),
        wall_s=time.perf_counter() - started,
        threads=args.threads,
        out_dir=args.out_dir,
        headline=headline,
    )
    print(f"\nwrote {path}")


def verdict(name: str, horizon: int, results: dict[str, list[dict[str, Any]]], test_windows: int) -> str:
    """One line: each model's macro F1 against the best baseline's, and whether the difference is within the
    spread (rule in the result's text)."""
    baseline = max(("majority", "logistic"), key=lambda b: results[b][0]["macro_f1"])
    reference = results[baseline][0]["macro_f1"]
    noise = 2 * math.sqrt(0.25 / test_windows)
    parts = []
    for model in MODELS:
        values = [r["macro_f1"] for r in results[model]]
        mean = statistics.mean(values)
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        difference = mean - reference
        if abs(difference) > max(2 * sd, noise):
            call = "clearly better" if difference > 0 else "clearly worse"
        else:
            call = "within the spread"
        parts.append(f"{model} {100 * mean:.1f} ± {100 * sd:.1f} ({100 * difference:+.1f}, {call})")
    return (
        f"{name}, k={horizon}: best baseline {baseline} macro F1 {100 * reference:.1f}; "
        + "; ".join(parts)
        + f" (noise floor ± {100 * noise:.1f})"
    )


if __name__ == "__main__":
    main()
