"""Can each LOB model find a signal planted in a book? Scores as a fraction of the best achievable, beside a logistic
regression.

    python benchmarks/lob_planted.py [--quick] [--seeds 0 1 2] [--events 20000] [--form imbalance]
                                     [--models tcn translob deeplob mlplob tlob] [--epochs 8] [--jobs 2]

A planted-signal book (:func:`dilated.data.planted_book`: the mid moves with the best level's size imbalance of 20
events before, and noise) is written to a temporary Parquet book and every model is trained on it through the
library's training API with the book recipe (``configs/book_recipe.yaml``: every window, all of them per epoch,
AdamW, early stopping on validation MCC, balanced class weights, the output layer started at zero) and each model's
own settings (``MODEL_SETTINGS``), seeds as given, ``--jobs`` runs at once (one torch thread each).
The bound is the score of a classifier fitted on the true signal itself (:func:`dilated.training.planted_bound`),
on the same test windows with the same labels; the logistic regression is the one of every book report
(imbalance, recent mid changes, spread). A model has found the signal at >= 0.8 of the bound's MCC. Also trained:
TransLOB without the zero-started head (``zero_head: false``, the recipe before this benchmark), the row that shows
why the recipe has it. Writes ``docs/results/lob_planted.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import markdown_table, mean_sd, write_result  # noqa: E402
from dilated.data import PlantedMarket, book_splits, planted_book, write_book  # noqa: E402
from dilated.models import TCN, TCNConfig  # noqa: E402
from dilated.training import load_config, planted_bound, train  # noqa: E402
from dilated.training._lob_baseline import lob_baselines  # noqa: E402

RECIPE = ROOT / "configs" / "book_recipe.yaml"
MODELS = ("tcn", "translob", "deeplob", "mlplob", "tlob")
FOUND = 0.8  # of the bound's MCC
TCN_WIDTH, TCN_KERNEL = 32, 3
# Each model's settings beside the recipe, and why (measured on this book, docs/results/lob_planted.md).
MODEL_SETTINGS: dict[str, list[str]] = {
    # stationary inputs (ticks from the mid, log sizes): validation MCC 0.354 after one epoch against 0.300 on raw
    "tcn": ["data.representation=stationary"],
    # stationary inputs as the TCN; without the Keras L2 on the hidden Dense (0.01 x sum W^2 = 1.2 at init, more than
    # the loss), which held it at ln 3 on them; the warmup keeps Adam's first coherent steps (each moving a
    # 960-input ReLU unit by up to lr x 960) from killing the hidden layer
    "translob": ["data.representation=stationary", "training.regularization=false", "training.warmup_steps=400"],
    # the PyTorch reference's BatchNorm after every LeakyReLU: without it the activations shrink ~4x per conv block,
    # then grow until the LSTM saturates (its last output exactly 0 after 400 steps, the loss at ln 3)
    # and log sizes, prices in ticks (stationary's level channels, in the raw layout its front end pairs) with strong
    # weight decay: on raw inputs it memorised the windows (training loss 0.67, validation loss rising from epoch 5)
    "deeplob": [
        "options.batch_norm=true",
        "data.representation=stationary_levels",
        "training.weight_decay=1.0",
        "training.warmup_steps=400",
    ],
}


def tcn_levels(window: int) -> int:
    """The fewest TCN levels whose receptive field covers the window (kernel 3, dilations 1, 2, 4, ...)."""
    levels = 1
    while TCN(TCNConfig(num_channels=(TCN_WIDTH,) * levels, kernel_size=TCN_KERNEL)).receptive_field < window:
        levels += 1
    return levels


def overrides(model: str, path: Path, seed: int, epochs: int | None, window: int) -> list[str]:
    """The recipe's overrides for one run (the TCN sized for the window; ``translob-random-head``: TransLOB with
    ``zero_head: false``)."""
    name = "translob" if model == "translob-random-head" else model
    result = [f"model={name}", f"data.path={path}", f"training.seed={seed}", f"data.window={window}"]
    if name == "tcn":
        levels = tcn_levels(window)
        result += [f"options.num_channels={[TCN_WIDTH] * levels}", f"options.kernel_size={TCN_KERNEL}"]
    result += MODEL_SETTINGS.get(model, [])
    if model == "translob-random-head":
        result.append("training.zero_head=false")
    if epochs is not None:
        result.append(f"training.max_epochs={epochs}")
    return result


def run_cell(model: str, path: Path, seed: int, epochs: int | None, window: int, folder: Path) -> dict[str, Any]:
    """Train one (model, seed) cell; its test MCC, macro F1, epochs and seconds."""
    config = load_config(RECIPE, overrides(model, path, seed, epochs, window))
    run = train(config, folder / f"{model}_{seed}", progress=False, echo=lambda _m: None)
    assert run is not None, "train() returns None only on non-zero DDP ranks"
    return {"mcc": run.test["mcc"], "f1_macro": run.test["f1_macro"], "epochs": run.epochs, "wall_s": run.seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5,000 events, one seed, 1 epoch")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--form", choices=("imbalance", "interaction"), default="imbalance")
    parser.add_argument("--models", nargs="+", choices=[*MODELS, "translob-random-head"], default=None)
    parser.add_argument("--epochs", type=int, default=None, help="the recipe's max_epochs unless given")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "results")
    args = parser.parse_args()
    events, seeds, epochs = (5_000, [0], 1) if args.quick else (args.events, args.seeds, args.epochs)
    models = args.models or [*MODELS, "translob-random-head"]
    recipe = load_config(RECIPE)
    window, horizon = recipe.data.window, recipe.data.horizon  # type: ignore[attr-defined]
    started = time.perf_counter()
    market = PlantedMarket(form=args.form)
    planted = planted_book(events, market, seed=0)
    rows: list[dict[str, Any]] = []
    table = []
    with tempfile.TemporaryDirectory(prefix="lob_planted_") as tmp:
        path = write_book(planted.book, Path(tmp) / "planted.parquet")
        splits = book_splits(path, window=window, horizon=horizon)
        bound = planted_bound(planted, splits)["test"]
        logistic = lob_baselines(splits, balanced=True)["logistic"]["test"]
        print(f"bound: MCC {bound['mcc']:.3f}, macro F1 {bound['f1_macro']:.3f}; logistic MCC {logistic['mcc']:.3f}")
        for name, result in (("bound (true signal)", bound), ("logistic", logistic)):
            table.append(
                (name, "-", f"{result['mcc']:.3f}", f"{result['mcc'] / bound['mcc']:.2f}", f"{result['f1_macro']:.3f}")
                + (f"{result['f1_macro'] / bound['f1_macro']:.2f}", "-", "0", "-")
            )
            rows.append({"model": name, "seed": "-", "mcc": result["mcc"], "f1_macro": result["f1_macro"]})
        cells = [(model, seed) for model in models for seed in seeds]
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {
                cell: pool.submit(run_cell, cell[0], path, cell[1], epochs, window, Path(tmp))
                for cell in sorted(cells, key=lambda c: c[0] != "deeplob")  # the slowest first
            }
            for model, seed in cells:
                result = futures[model, seed].result()
                rows.append({"model": model, "seed": seed, **result})
                print(
                    f"{model} seed {seed}: MCC {result['mcc']:.3f} ({result['mcc'] / bound['mcc']:.2f} of the bound), "
                    f"macro F1 {result['f1_macro']:.3f}, {result['epochs']} epochs, {result['wall_s']:.0f} s",
                    flush=True,
                )
        for model in models:
            runs = [row for row in rows if row["model"] == model]
            fractions = [r["mcc"] / bound["mcc"] for r in runs]
            table.append(
                (
                    model,
                    " ".join(str(s) for s in seeds),
                    mean_sd([r["mcc"] for r in runs]),
                    mean_sd(fractions),
                    mean_sd([r["f1_macro"] for r in runs]),
                    mean_sd([r["f1_macro"] / bound["f1_macro"] for r in runs]),
                    f"{sum(f >= FOUND for f in fractions)}/{len(runs)}",
                    " ".join(str(r["epochs"]) for r in runs),
                    f"{statistics.mean(r['wall_s'] for r in runs):.0f}",
                )
            )
    info = splits.info
    header = (
        "model",
        "seeds",
        "test MCC",
        "of bound",
        "macro F1",
        "of bound",
        f"found (>= {FOUND})",
        "epochs",
        "s/run",
    )
    found = [row for row in table[2:] if row[6].split("/")[0] == row[6].split("/")[1]]
    headline = (
        f"{len(found)} of {len(table) - 2} model rows find the planted signal (>= {FOUND} of the bound's MCC "
        f"{bound['mcc']:.3f}) in every seed; the logistic regression on the current book reaches "
        f"{logistic['mcc'] / bound['mcc']:.2f} of it"
    )
    body = "\n\n".join(
        [
            (
                f"**Market.** `planted_book({events}, PlantedMarket(form={args.form!r}), seed=0)`: {market.levels} "
                f"levels, tick {market.tick_size}, the mid moves one tick on {market.move_rate:.0%} of events, up "
                f"with probability (1 + drift) / 2, drift = clip({market.strength} x the best level's size imbalance "
                f"{market.lag} events before, -1, 1)"
                + (" x the imbalance of levels 2-5 x 3" if args.form == "interaction" else "")
                + f". Labels: the project's `future` rule at k={horizon}, threshold {info['threshold']:.3g} (a third "
                f"of the training labels stationary); windows of {window} events, every window; "
                f"{len(splits.train):,} / {len(splits.val):,} / {len(splits.test):,} train / validation / test."
            ),
            (
                "**Recipe** (`configs/book_recipe.yaml`): AdamW lr 1e-3, weight decay 0.01, batch 32, every "
                "training window each epoch (a new shuffle each epoch), early stopping on validation MCC (patience "
                "2), the best validation MCC tested, balanced class weights, the output layer started at zero; "
                f"TCN: {tcn_levels(window)} levels of {TCN_WIDTH} channels, kernel {TCN_KERNEL} (receptive field "
                f"{TCN(TCNConfig(num_channels=(TCN_WIDTH,) * tcn_levels(window), kernel_size=TCN_KERNEL)).receptive_field}"
                f" of the {window}-event window, which covers the 20-event lag plus the horizon); the others at "
                "their papers' sizes for this window. Each model's own settings: "
                + "; ".join(f"{m}: `{' '.join(o)}`" for m, o in MODEL_SETTINGS.items())
                + "."
                + (
                    " `translob-random-head` is TransLOB with `zero_head: false`."
                    if "translob-random-head" in models
                    else " TransLOB with a random head (`zero_head: false`) is not rerun here: it stayed at chance in "
                    "both seeds of an earlier table (test MCC -0.00 +- 0.03, raw inputs, no warmup)."
                )
            ),
            markdown_table(header, table),
            (
                "**How close is 0.8?** The test part's 2,927 windows overlap (neighbours share most of their future "
                "mids), so a test MCC is itself uncertain: a block bootstrap of the test predictions of TransLOB seed "
                "2 and DeepLOB seed 1 (blocks of 50 and of 200 consecutive windows, 2,000 draws each) gives a "
                "standard deviation of 0.016-0.026 MCC, 0.05-0.07 of the bound. The seeds at 0.77-0.79 lie within one "
                "such deviation of 0.8, as do the spreads between seeds; the 0.8 line tells a model that finds the "
                "signal from one that does not (TransLOB 0.00 and DeepLOB 0.02 at the start of this work), not 0.78 "
                "from 0.82."
            ),
            (
                "**Why TransLOB stayed at chance** (issue 25: MCC 0.00, loss at ln 3): its head is `Dense(64, relu) "
                "-> Dense(3)` over the flattened window, and from the random init its logits are noise (first loss "
                "1.3-2.1, above ln 3 = 1.10). The quickest way down is to silence them: within 300 Adam steps every "
                "hidden ReLU is negative on every window (share of active units 0.45 -> 0.00, measured with a "
                "hand-written loop on a 20,000-event planted book, windows of 50, lr 1e-3, seeds 0 and 1), no "
                "gradient reaches the rest of the model again and the loss sits at ln 3. Gradient clipping (norm 1) does not prevent it and the paper's lr "
                "1e-4 learns nothing in 1,200 steps either (validation MCC 0.03); without dropout, or with one "
                "transformer block, seed 0 escaped (one seed tried each), which is luck, not a fix. Starting the "
                "output layer at zero (logits 0, loss ln 3 from the first step) removes the noise to be silenced: "
                "20-33% of the hidden units stay active and validation MCC reaches 0.22 by step 300 in both seeds."
            ),
            (
                "**Why the TCN stopped at ~0.7 of the bound** (an earlier table: `--seeds 0 1 --epochs 5`, half the "
                "training windows per epoch). Measured with `train()` on this book, seed 0, one torch thread: (1) "
                "the TCN sat at ln 3 before it found the signal: its training loss was 1.085-1.128 at steps 49-349 "
                "and 0.93 at step 399, so with half an epoch (218 steps) the first validation came before the signal "
                "was found; the recipe takes every window each epoch. (2) On raw inputs (z-scored prices and sizes) "
                "its validation MCC over five full epochs was 0.300, 0.336, 0.309, 0.311, 0.318 (the bound on the "
                "validation part is 0.38) while its training loss fell from 1.07 to 0.85; on the stationary "
                "representation (prices in ticks from the mid, log sizes) it reached 0.354, 0.357, 0.329, so the TCN "
                "takes `stationary`."
            ),
            (
                "**TransLOB: stationary inputs, no L2, a warmup.** On raw inputs it is short of the signal: 0.71 of "
                "the bound in seeds 0 and 1 over 5-8 epochs (validation MCC at most 0.298), and neither no dropout "
                "(0.68), nor no L2 (0.69), nor lr 3e-4 (0.56) changed that (seed 0). On stationary inputs it stayed "
                "at ln 3 because of the Keras L2 on its hidden Dense (0.01 x the sum of its 61,440 squared weights, "
                "1.2 at the start, more than the loss): without it (`training.regularization: false`) seeds 0 and 2 "
                "reached 0.82 and 0.81 of the bound, but seed 1 stayed dead (validation MCC 0.000, 0.011, 0.000, "
                "0.000). That hidden Dense(64, relu) reads 960 values (64 events x 15 channels), and Adam moves each "
                "weight by about lr per step whatever its gradient's size, so one coherent step shifts a unit's "
                "input by up to lr x 960 x |x| ~ 1, the size of that input at the Glorot start: in a hand-written "
                "loop (seed 1) the share of active units fell from 0.45 to 0.013 by step 150. A linear warmup over "
                "the first 400 steps (`training.warmup_steps`) keeps those steps small: with it, seeds 0-4 tested at "
                "0.88, 0.81, 0.78, 0.78, 0.80 of the bound, none dead. Tried beside it on seeds 0-4 (one run each): a "
                "cosine schedule 0.71, 0.83, 0.76, 0.83, 0.77; weight decay 0.1 dead in seeds 0 and 3; dropout 0.3 "
                "dead in seed 0, else 0.81-0.86; lr 5e-4 dead in seed 0, 0.75 and 0.71 in seeds 1 and 2. Its "
                "validation MCC peaks at 0.30-0.33 in the second or third epoch (0.8-0.87 of the validation bound) "
                "and falls while the training loss keeps falling: it fits the ~14,000 overlapping windows with a "
                "61,440-weight layer, and the test part lands near 0.8 of its bound."
            ),
            (
                "**DeepLOB.** Its published recipe (Adam lr 0.01, epsilon 1, no weight decay; zero head, half "
                "epochs) learned nothing: training loss 1.0984-1.1002 through step 550 and validation MCC 0.000 "
                "after epochs 1 and 2 (with epsilon 1 Adam is about momentum SGD at lr 0.01 when gradients are far "
                "below 1). Without normalisation it stays at ln 3 under the book recipe too (measured, seed 0): at "
                "the Keras initialisation its conv front end shrinks z-scored inputs about 4x per block (activations "
                "std over the batch 1 -> 0.13 -> 0.028 -> 0.0095 -> 0.005), so the LSTM reads nearly constant "
                "features; the optimiser then grows the weights until the LSTM saturates (at step 400 its last "
                "output was exactly 0 on every window, every gradient below 3e-5), so it takes "
                "`options.batch_norm=true` (the reference PyTorch notebook's BatchNorm after every LeakyReLU). With "
                "it, on raw inputs (seed 0, 16 epochs allowed, patience 3) its validation MCC rose to 0.261 by "
                "epoch 8 while its training loss fell from 1.10 to 0.67 and its validation loss rose from 1.006 "
                "(epoch 5) to 1.25: it memorises the windows faster than it finds the signal, and tested at 0.54 of "
                "the bound (feature dropout 0.5: 0.51; lr 3e-3: dead). Two changes made it find the signal: log "
                "sizes and prices in ticks from the mid (`representation: stationary_levels`, the level channels of "
                "`stationary` in the raw layout its front end pairs: 0.64 and 0.63 of the bound in seeds 0 and 1, "
                "validation MCC up to 0.29-0.30), and strong decoupled weight decay (AdamW 1.0; 0.3 was 0.65): its "
                "validation loss then reached 0.916-0.936 instead of ~1.0, and with both (and the warmup) seeds 0, 1, 2 tested at 0.85, 0.77, 0.81 of the bound in runs before this table (seed 0 with stationary channels cut by hand, the same values)."
            ),
        ]
    )
    write_result(
        "lob_planted",
        "LOB models on a planted-signal book: the share of the best achievable score each finds",
        body,
        rows,
        command="python benchmarks/lob_planted.py " + " ".join(sys.argv[1:]),
        seeds=", ".join(str(s) for s in seeds),
        wall_s=time.perf_counter() - started,
        threads=1,
        out_dir=args.out_dir,
        headline=headline,
    )


if __name__ == "__main__":
    main()
