"""The ``dilated`` command: thin wrappers that parse arguments and call the library.

Errors print one line (``dilated: error: ...``) and exit with status 2 (bad input) or 1 (other failures);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from dilated.targets import parse_input_shape, resolve_target

TARGET_HELP = """\
TARGET is one of:
  a saved Keras model           model.keras            (loaded in Keras safe mode)
  a model config file (YAML)    my_stack.yaml          (a 'layers:' stack or 'model: NAME')
  a Python factory              mypkg.models:build     (a function returning a torch or Keras model)
  a bundled example             seed-dilated, seed-strided
  a registered model            wavenet, tcn, translob, deeplob   (see `dilated models`)

A stack config looks like:
  input: [2, 200]            # (channels, time)
  layers:
    - {type: conv1d, channels: 5, kernel_size: 5, padding: causal, dilation: 2}
    - {type: conv1d, channels: 5, kernel_size: 5, padding: causal, dilation: 4}
    - {type: dense, units: 1}
Layer types: conv1d, dense, maxpool1d, avgpool1d, dropout, relu, tanh, sigmoid, gelu, elu, silu.
Keras spellings work too: filters, strides, dilation_rate, pool_size.
"""


def _summary(args: argparse.Namespace) -> int:
    from dilated.summaries import summary

    target = resolve_target(args.target, parse_input_shape(args.input, "--input") if args.input else None)
    if target.input_shape is None and not _is_keras(target.model):
        raise ValueError(f"{args.target!r} does not fix its input shape: pass --input CHANNELS,TIME (e.g. --input 2,200)")
    result = summary(target.model, target.input_shape)  # a Keras model with Input((None, C)) needs --input too
    result.title = target.name
    print(result)
    return 0


def _draw(args: argparse.Namespace) -> int:
    from dilated.diagrams import compare, draw

    shape = parse_input_shape(args.input, "--input") if args.input else None
    if args.compare and args.animate:
        raise ValueError("--animate draws one stack at a time; drop --compare")
    targets = [resolve_target(name, shape) for name in (args.target, args.compare) if name]
    for name, t in zip((args.target, args.compare), targets):
        if t.input_shape is None and not _is_keras(t.model):
            raise ValueError(f"{name!r} does not fix its input shape: pass --input CHANNELS,TIME (e.g. --input 2,32)")
    target = targets[0]
    if args.compare:
        other = targets[1]
        path = args.path or f"{_file_stem(target.name)}_vs_{_file_stem(other.name)}.png"
        diagrams = compare(target, other, path=path, output=args.output_index)
        fields = " and ".join(f"{t.name} {d.receptive_field}" for t, d in zip((target, other), diagrams))
        print(f"wrote {path} (receptive fields: {fields} steps)")
        return 0
    path = args.path or f"{_file_stem(target.name)}.{'gif' if args.animate else 'png'}"
    diagram = draw(target, path=path, output=args.output_index, animate=args.animate)
    frames = f", {len(diagram.frames)} frames" if diagram.frames else ""
    print(f"wrote {path} (receptive field {diagram.receptive_field} steps{frames})")
    return 0


def _file_stem(name: str) -> str:
    """``seed-dilated`` -> ``seed-dilated``; ``configs/my_stack.yaml`` -> ``my_stack``."""
    path = Path(name)
    return path.stem if path.suffix in (".yaml", ".yml", ".keras") else path.name


def _is_keras(model: object) -> bool:
    from dilated.keras_adapter import is_keras_model

    return is_keras_model(model)


def _models(_args: argparse.Namespace) -> int:
    from dilated.analysis import receptive_field
    from dilated.models import available_models, build_model, example_input_shape

    for name in available_models():
        model = build_model(name)
        params = sum(p.numel() for p in model.parameters())
        shape = example_input_shape(name)
        rf = receptive_field(model, shape)
        field = f"the whole input ({shape[-1]} steps)" if rf.whole_input or rf.past else f"{rf.size}"
        print(f"{name:10s} input {shape}  params {params:,}  receptive field {field}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from dilated.training import TrainingInterrupted, demo

    try:
        demo(args.run_dir, args.epochs, progress=not args.no_progress)
    except TrainingInterrupted as stop:
        if stop.primary:
            print(f"dilated: {stop}", file=sys.stderr)
        return 130
    return 0


TRAIN_HELP = """\
CONFIG is a training YAML (examples in configs/):
  model: translob            # a registered model (dilated models)
  options: {}                # model options; channels, window and classes come from the data
  data: {kind: lobster, horizon: 10, window: 100}
  training: {optimizer: adam, lr: 1.0e-4, batch_size: 32, max_epochs: 150, patience: 20}
  trainer: {devices: 1}

The run folder (default runs/CONFIG-TIMESTAMP) gets config.yaml (every default written out), checkpoints/,
metrics.csv, metrics.json, test_metrics.csv and plots/. Ctrl-C stops after the current batch with a checkpoint;
--resume RUN_DIR continues from the newest checkpoint that verifies.

Examples:
  dilated train configs/translob_fi2010_h10.yaml --override data.root=/data/FI2010
  dilated train configs/tcn_adding.yaml --override training.max_epochs=2 --run-dir runs/adding
  dilated train configs/translob_fi2010_h10.yaml --devices 4 --strategy ddp --accelerator gpu
  dilated train --resume runs/adding --override training.max_epochs=20

"""


def _train(args: argparse.Namespace) -> int:
    from dilated.training import TrainingInterrupted, prepare_run, train

    overrides = list(args.override)
    for flag, key in (("devices", "trainer.devices"), ("num_nodes", "trainer.num_nodes"),
                      ("strategy", "trainer.strategy"), ("accelerator", "trainer.accelerator"),
                      ("max_epochs", "training.max_epochs")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    config, run_dir, resume = prepare_run(args.config, overrides, args.run_dir, args.resume)
    try:
        train(config, run_dir, resume=resume, progress=not args.no_progress)
    except TrainingInterrupted as stop:
        if stop.primary:
            print(f"dilated: {stop}", file=sys.stderr)
        return 130
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from dilated.atomic import atomic_write_json
    from dilated.evaluation import evaluate_run
    from dilated.metrics import format_metrics

    evaluation = evaluate_run(args.target, args.data, args.split, args.checkpoint, args.batch_size,
                              progress=not args.no_progress)
    print(format_metrics(evaluation.result, f"{evaluation.split} metrics, checkpoint {evaluation.checkpoint}"))
    if args.output:
        atomic_write_json(args.output, evaluation.result)
        print(f"wrote {args.output}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from dilated.evaluation import evaluate_run, write_predictions
    from dilated.metrics import scalar_metrics

    evaluation = evaluate_run(args.target, args.data, args.split, args.checkpoint, args.batch_size,
                              progress=not args.no_progress)
    path = write_predictions(evaluation.outputs, evaluation.task, args.output, evaluation.ids)
    scores = ", ".join(f"{k} {v:.4f}" for k, v in scalar_metrics(evaluation.result).items())
    print(f"wrote {path}: {len(evaluation.ids)} samples of {evaluation.split} ({scores}), "
          f"checkpoint {evaluation.checkpoint}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from dilated.runs import locate, report

    run, _checkpoint = locate(args.run)
    print(report(run))
    return 0


def _add_training_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """The demo, train, evaluate, predict and report subcommands."""
    demo = command("demo", _demo, "Run the main job: train TransLOB on the bundled LOBSTER sample and test it.",
                   "Trains for a few minutes on a CPU, then prints test metrics and the plots' paths.\n"
                   "\nExamples:\n  dilated demo\n  dilated demo --epochs 5 --run-dir /tmp/demo\n")
    demo.add_argument("--run-dir", default="runs/demo", help="run folder (default: runs/demo, replaced each time)")
    demo.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: the demo config's 30)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")

    from dilated.experiment import config_help

    train = command("train", _train, "Train a model from a config file, writing a run folder.",
                    TRAIN_HELP + config_help())
    train.add_argument("config", metavar="CONFIG", nargs="?", help="training config (YAML)")
    train.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                       help="set a config value, e.g. training.lr=0.001 or data.horizon=50 (repeatable)")
    train.add_argument("--run-dir", metavar="DIR", help="run folder (default: runs/CONFIG-TIMESTAMP)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its newest good checkpoint")
    train.add_argument("--devices", help="devices per machine: a number, ids like 0,1, or auto")
    train.add_argument("--num-nodes", type=int, help="machines (run the same command on each, same --run-dir)")
    train.add_argument("--strategy", help="lightning strategy, e.g. ddp")
    train.add_argument("--accelerator", help="cpu, gpu, mps or auto")
    train.add_argument("--max-epochs", type=int, help="shortcut for --override training.max_epochs=N")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")

    def evaluation_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("target", metavar="RUN_DIR", help="a run folder, or a checkpoint folder inside one")
        sub.add_argument("--data", metavar="FILE", help="other data: a YAML with a data: section, or a CSV/Parquet "
                         "table for runs trained on table data (default: the run's own data)")
        sub.add_argument("--split", default="test", choices=("train", "val", "test", "all"),
                         help="which part (default: test; all: the whole series, lobster and table data)")
        sub.add_argument("--checkpoint", default="best", choices=("best", "last"),
                         help="for a run folder: the best checkpoint by the run's monitor, or the last")
        sub.add_argument("--batch-size", type=int, help="evaluation batch size (default: 4 x training batch)")
        sub.add_argument("--no-progress", action="store_true", help="no progress bars")

    evaluate = command("evaluate", _evaluate, "Evaluate a trained run on its test split or other data.",
                       "Examples:\n  dilated evaluate runs/demo\n  dilated evaluate runs/demo --split val -o val.json\n"
                       "  dilated evaluate runs/demo/checkpoints/epoch=0005-step=000095 --data other_day.yaml\n")
    evaluation_arguments(evaluate)
    evaluate.add_argument("-o", "--output", metavar="FILE.json", help="also write the metrics as JSON")
    predict = command("predict", _predict, "Write a trained run's predictions as CSV.",
                      "Columns: sample (the window's last step), target, prediction, and class probabilities.\n"
                      "\nExamples:\n  dilated predict runs/demo -o predictions.csv\n"
                      "  dilated predict runs/sunspots --data new.csv --split all -o forecast.csv\n")
    evaluation_arguments(predict)
    predict.add_argument("-o", "--output", metavar="FILE.csv", required=True, help="CSV file to write")
    report = command("report", _report, "Summarise a run: config, epochs, best epoch, test metrics, plots.",
                     "Example:\n  dilated report runs/demo\n")
    report.add_argument("run", metavar="RUN_DIR", help="a run folder")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``dilated``."""
    parser = argparse.ArgumentParser(prog="dilated", description="Dilated causal convolutional sequence models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str,
                epilog: str | None = None) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(handler=handler)
        return sub

    summary_parser = command(
        "summary", _summary, "Print a layer table with output shapes, parameters and receptive fields.",
        TARGET_HELP + "\nExamples:\n  dilated summary seed-dilated\n  dilated summary translob\n"
        "  dilated summary model.keras\n  dilated summary my_stack.yaml --input 2,500\n")
    summary_parser.add_argument("target", metavar="TARGET", help="model to summarise (see below)")
    summary_parser.add_argument("--input", metavar="C,T", help="input shape without batch: channels,time (e.g. 2,200)")
    draw_parser = command(
        "draw", _draw, "Draw the receptive-field tree of a stack (PNG, SVG or animated GIF).",
        TARGET_HELP + "\nThe nodes and edges that feed one output (default: the last) are highlighted; zero padding\n"
        "is drawn hollow. Beyond 64 input steps only the last window is drawn.\n"
        "\nExamples:\n  dilated draw seed-dilated --input 2,32\n"
        "  dilated draw seed-dilated --input 2,32 --animate -o seed_dilated.gif\n"
        "  dilated draw seed-dilated --compare seed-strided -o docs/images/seed_compare.png\n"
        "  dilated draw my_stack.yaml --output-index 10 -o tree.svg\n")
    draw_parser.add_argument("target", metavar="TARGET", help="model to draw (see below)")
    draw_parser.add_argument("--input", metavar="C,T", help="input shape without batch: channels,time (e.g. 2,32)")
    draw_parser.add_argument("--output-index", metavar="N", type=int, default=None,
                             help="output step to highlight (default: the last; negative counts from the end)")
    draw_parser.add_argument("-o", "--output", dest="path", metavar="PATH",
                             help="image to write: .png, .svg or .gif (default: TARGET.png, or .gif with --animate)")
    draw_parser.add_argument("--animate", action="store_true", help="animated GIF: each output lights up in turn")
    draw_parser.add_argument("--compare", metavar="B", help="draw TARGET and B side by side")
    command("models", _models, "List the registered models with their parameters and receptive fields.")
    _add_training_commands(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dilated`` console command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as error:
        if args.debug:
            raise
        print(f"dilated: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `dilated summary ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("dilated: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one readable line for any failure, traceback with --debug
        if args.debug:
            raise
        print(f"dilated: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
