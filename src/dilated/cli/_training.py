"""Training commands: ``dilated demo``, ``train``, ``evaluate``, ``predict``, ``report`` and ``walk-forward``.

`training` resolves its Lightning/torchmetrics-backed names on first use, so other commands do not import them.
"""

from __future__ import annotations

import argparse
import sys

from dilated import training
from dilated.cli._shared import Command, add_json_argument, add_run_arguments, print_json
from dilated.training import TrainingInterrupted


def _stopped(stop: TrainingInterrupted) -> int:
    if stop.primary:
        print(f"dilated: {stop}", file=sys.stderr)
    return 130


def _demo(args: argparse.Namespace) -> int:
    try:
        training.demo(args.run_dir, args.epochs, progress=not args.no_progress)
    except TrainingInterrupted as stop:
        return _stopped(stop)
    return 0


TRAIN_HELP = """\
CONFIG is a training YAML (examples in configs/):
  model: translob            # a registered model (dilated models)
  options: {}                # model options; what the data fixes (channels, window, classes) is filled in
  data: {kind: lobster, horizon: 10, window: 100}
  training: {optimizer: adam, lr: 1.0e-4, batch_size: 32, max_epochs: 150, patience: 20}
  trainer: {devices: 1}

The run folder (default runs/CONFIG-TIMESTAMP) gets config.yaml (every default written out), checkpoints/,
metrics.csv, metrics.json, test_metrics.csv, plots/ and logs/. Ctrl-C stops after the current batch with a
checkpoint; --resume RUN_DIR continues from the newest checkpoint that verifies. The test metrics are printed
beside the task's trivial baseline (majority class, or persistence / the training mean for regression).

Examples:
  dilated train configs/translob_fi2010_h10.yaml --override data.root=/data/FI2010
  dilated train configs/tcn_adding.yaml --override training.max_epochs=2 --run-dir runs/adding
  dilated train configs/translob_fi2010_h10.yaml --devices 4 --strategy ddp --accelerator gpu
  dilated train --resume runs/adding --override training.max_epochs=20
  dilated train --check configs/tcn_adding.yaml      # validate: resolved config, data sizes, model summary

"""

TRAIN_FLAGS = (
    ("devices", "trainer.devices"),
    ("num_nodes", "trainer.num_nodes"),
    ("strategy", "trainer.strategy"),
    ("accelerator", "trainer.accelerator"),
    ("max_epochs", "training.max_epochs"),
)


def _train(args: argparse.Namespace) -> int:
    overrides = [
        *args.override,
        *(f"{key}={getattr(args, flag)}" for flag, key in TRAIN_FLAGS if getattr(args, flag) is not None),
    ]
    if args.check:
        if not args.config:
            raise ValueError("--check needs CONFIG: dilated train --check CONFIG")
        config = training.load_config(args.config, overrides)  # before check_config's module imports Lightning
        training.check_config(config)
        return 0
    config, run_dir, resume = training.prepare_run(args.config, overrides, args.run_dir, args.resume)
    try:
        training.train(config, run_dir, resume=resume, progress=not args.no_progress)
    except TrainingInterrupted as stop:
        return _stopped(stop)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    evaluation = training.evaluate_run(
        args.target, args.data, args.split, args.checkpoint, args.batch_size, progress=not args.no_progress
    )
    if args.json:
        print_json("dilated.evaluate/1", evaluation.result)
    else:
        print(
            training.format_metrics(
                evaluation.result, f"{evaluation.split} metrics, checkpoint {evaluation.checkpoint}"
            )
        )
    if args.output:
        training.atomic_write_json(args.output, evaluation.result)
        print(f"wrote {args.output}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _predict(args: argparse.Namespace) -> int:
    evaluation = training.evaluate_run(
        args.target, args.data, args.split, args.checkpoint, args.batch_size, progress=not args.no_progress
    )
    path = training.write_predictions(evaluation.outputs, evaluation.task, args.output, evaluation.ids)
    scores = ", ".join(f"{k} {v:.4f}" for k, v in training.scalar_metrics(evaluation.result).items())
    print(
        f"wrote {path}: {len(evaluation.ids)} samples of {evaluation.split} ({scores}), "
        f"checkpoint {evaluation.checkpoint}"
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    run, _checkpoint = training.locate(args.run)
    if args.json:
        print_json("dilated.report/1", training.run_report(run))
    else:
        print(training.report(run))
    return 0


def _walk_forward(args: argparse.Namespace) -> int:
    config = training.load_config(args.config, args.override)
    try:
        result = training.walk_forward(config, args.output, args.train_days, args.drift, not args.no_progress)
    except TrainingInterrupted as stop:
        return _stopped(stop)
    print(result.table.read_text(), end="")
    print(f"wrote {result.table} and {result.table.with_suffix('.csv')}")
    return 0


WALK_FORWARD_HELP = """\
CONFIG is a training YAML whose data is a book dataset folder (data: {kind: book, path: DIR/}, written by
`dilated data convert SRC... -o DIR/`). Fold k trains on days k+1..k+N, validates on day k+N+1 and tests on day
k+N+2, rolled forward one day at a time; each fold is a run folder DIR/fold-NN/ (a finished fold is skipped when run
again, an unfinished one resumed). DIR/walk_forward.csv and .md hold each fold's days and test MCC, macro F1 and
accuracy beside the baselines, and their mean and standard deviation (also DIR/summary.json).

--drift trains once on the first N days (one day: its chronological split with its gap; more: the last of them
validates) into DIR/train/ and tests on each later day alone (DIR/drift.csv, .md).

Examples:
  dilated walk-forward configs/book.yaml --train-days 3 -o runs/walk
  dilated walk-forward configs/book.yaml --train-days 1 --drift -o runs/drift --override training.max_epochs=5
"""


def _add_evaluation_arguments(sub: argparse.ArgumentParser) -> None:
    """The arguments `evaluate` and `predict` share: the run, its checkpoint, the data and split to read."""
    sub.add_argument(
        "--data",
        metavar="FILE",
        help="other data: a YAML with a data: section, or a CSV/Parquet "
        "table for runs trained on table data (default: the run's own data)",
    )
    sub.add_argument(
        "--split",
        default="test",
        choices=("train", "val", "test", "all"),
        help="which part (default: test; all: the whole series, lobster and table data)",
    )
    add_run_arguments(sub, "target", "RUN_DIR")
    sub.add_argument(
        "--batch-size",
        type=int,
        help="evaluation batch size (default: the run's training.eval_batch_size, or 4 x its training batch)",
    )
    sub.add_argument("--no-progress", action="store_true", help="no progress bars")


def _demo_epochs() -> int:
    """The demo config's max_epochs, read from its YAML (the typed config would import the training stack)."""
    import yaml

    return int(yaml.safe_load(training.demo_config_path().read_text())["training"]["max_epochs"])


def add_training_commands(command: Command) -> None:
    """The demo, train, evaluate, predict, report and walk-forward subcommands."""
    demo = command(
        "demo",
        _demo,
        "Run the main job: train TransLOB on the bundled LOBSTER sample and test it.",
        lambda: (
            "Trains for a few seconds on a CPU (at most the demo config's "
            f"{_demo_epochs()} epochs, with early stopping), then prints test metrics "
            "beside the majority-class baseline and the plots' paths.\n\nExamples:\n  dilated demo\n"
            "  dilated demo --epochs 5 --run-dir /tmp/demo\n"
        ),
    )
    demo.add_argument("--run-dir", default="runs/demo", help="run folder (default: runs/demo, replaced each time)")
    demo.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="maximum epochs (default: the demo config's, with early stopping)",
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")

    train = command(
        "train",
        _train,
        "Train a model from a config file, writing a run folder.",
        lambda: TRAIN_HELP + training.config_help(),
    )
    train.add_argument("config", metavar="CONFIG", nargs="?", help="training config (YAML)")
    train.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a config value, e.g. training.lr=0.001 or data.horizon=50 (repeatable)",
    )
    train.add_argument("--run-dir", metavar="DIR", help="run folder (default: runs/CONFIG-TIMESTAMP)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its newest good checkpoint")
    train.add_argument("--devices", help="devices per machine: a number, ids like 0,1, or auto")
    train.add_argument("--num-nodes", type=int, help="machines (run the same command on each, same --run-dir)")
    train.add_argument("--strategy", help="lightning strategy, e.g. ddp")
    train.add_argument("--accelerator", help="cpu, gpu, mps or auto")
    train.add_argument("--max-epochs", type=int, help="shortcut for --override training.max_epochs=N")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.add_argument(
        "--check",
        action="store_true",
        help="validate CONFIG and print the resolved config, data sizes and model summary, then stop (no training)",
    )

    evaluate = command(
        "evaluate",
        _evaluate,
        "Evaluate a trained run on its test split or other data.",
        "The metrics are printed beside the trivial baseline of the run's training split.\n\n"
        "Examples:\n  dilated evaluate runs/demo\n  dilated evaluate runs/demo --split val -o val.json\n"
        "  dilated evaluate runs/demo/checkpoints/epoch=0005-step=000095 --data other_day.yaml\n",
    )
    _add_evaluation_arguments(evaluate)
    evaluate.add_argument("-o", "--output", metavar="FILE.json", help="also write the metrics as JSON")
    add_json_argument(evaluate, "the metrics")
    predict = command(
        "predict",
        _predict,
        "Write a trained run's predictions as CSV.",
        "Columns: sample (the window's last step), target, prediction, and class probabilities.\n"
        "\nExamples:\n  dilated predict runs/demo -o predictions.csv\n"
        "  dilated predict runs/sunspots --data new.csv --split all -o forecast.csv\n",
    )
    _add_evaluation_arguments(predict)
    predict.add_argument("-o", "--output", metavar="FILE.csv", required=True, help="CSV file to write")
    report = command(
        "report",
        _report,
        "Summarise a run: config, epochs, best epoch, test metrics, plots.",
        "Example:\n  dilated report runs/demo\n",
    )
    report.add_argument("run", metavar="RUN_DIR", help="a run folder")
    add_json_argument(report, "the summary")
    walk = command(
        "walk-forward",
        _walk_forward,
        "Walk-forward evaluation (or a drift report) over the days of a book dataset.",
        WALK_FORWARD_HELP,
    )
    walk.add_argument("config", metavar="CONFIG", help="training config (YAML) on a book dataset folder")
    walk.add_argument("--train-days", type=int, required=True, metavar="N", help="training days per fold")
    walk.add_argument("-o", "--output", metavar="DIR", required=True, help="output folder (fold runs and tables)")
    walk.add_argument("--drift", action="store_true", help="train once on the first N days, test each later day")
    walk.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE", help="set a config value (repeatable)"
    )
    walk.add_argument("--no-progress", action="store_true", help="no progress bars")
