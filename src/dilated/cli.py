"""The ``dilated`` command: thin wrappers that parse arguments and call the library.

Errors print one line (``dilated: error: ...``) and exit with status 2 (bad input) or 1 (other failures);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from dilated import training
from dilated.targets import parse_input_shape, resolve_target
from dilated.training import TrainingInterrupted

TARGET_HELP = """\
TARGET is one of:
  a saved Keras model           model.keras            (loaded in Keras safe mode)
  a converted model             model.yaml             (written by `dilated convert`, or a hand-written graph)
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
        raise ValueError(
            f"{args.target!r} does not fix its input shape: pass --input CHANNELS,TIME (e.g. --input 2,200)"
        )
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


# ------------------------------------------------------------------ training commands: demo, train, evaluate, ...
# `training` resolves its Lightning/torchmetrics-backed names on first use, so other commands do not import them.


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
    print(training.format_metrics(evaluation.result, f"{evaluation.split} metrics, checkpoint {evaluation.checkpoint}"))
    if args.output:
        training.atomic_write_json(args.output, evaluation.result)
        print(f"wrote {args.output}")
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
    print(training.report(run))
    return 0


def _add_training_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """The demo, train, evaluate, predict and report subcommands."""
    epochs = training.demo_config().training.max_epochs
    demo = command(
        "demo",
        _demo,
        "Run the main job: train TransLOB on the bundled LOBSTER sample and test it.",
        "Trains for a few seconds on a CPU, then prints test metrics beside the majority-class baseline "
        "and the plots' paths.\n\nExamples:\n  dilated demo\n"
        "  dilated demo --epochs 5 --run-dir /tmp/demo\n",
    )
    demo.add_argument("--run-dir", default="runs/demo", help="run folder (default: runs/demo, replaced each time)")
    demo.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"maximum epochs (default: the demo config's {epochs}, with early stopping)",
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")

    train = command(
        "train", _train, "Train a model from a config file, writing a run folder.", TRAIN_HELP + training.config_help()
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

    def evaluation_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("target", metavar="RUN_DIR", help="a run folder, or a checkpoint folder inside one")
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
        sub.add_argument(
            "--checkpoint",
            default="best",
            choices=("best", "last"),
            help="for a run folder: the best checkpoint by the run's monitor, or the last",
        )
        sub.add_argument(
            "--batch-size",
            type=int,
            help="evaluation batch size (default: the run's training.eval_batch_size, or 4 x its training batch)",
        )
        sub.add_argument("--no-progress", action="store_true", help="no progress bars")

    evaluate = command(
        "evaluate",
        _evaluate,
        "Evaluate a trained run on its test split or other data.",
        "The metrics are printed beside the trivial baseline of the run's training split.\n\n"
        "Examples:\n  dilated evaluate runs/demo\n  dilated evaluate runs/demo --split val -o val.json\n"
        "  dilated evaluate runs/demo/checkpoints/epoch=0005-step=000095 --data other_day.yaml\n",
    )
    evaluation_arguments(evaluate)
    evaluate.add_argument("-o", "--output", metavar="FILE.json", help="also write the metrics as JSON")
    predict = command(
        "predict",
        _predict,
        "Write a trained run's predictions as CSV.",
        "Columns: sample (the window's last step), target, prediction, and class probabilities.\n"
        "\nExamples:\n  dilated predict runs/demo -o predictions.csv\n"
        "  dilated predict runs/sunspots --data new.csv --split all -o forecast.csv\n",
    )
    evaluation_arguments(predict)
    predict.add_argument("-o", "--output", metavar="FILE.csv", required=True, help="CSV file to write")
    report = command(
        "report",
        _report,
        "Summarise a run: config, epochs, best epoch, test metrics, plots.",
        "Example:\n  dilated report runs/demo\n",
    )
    report.add_argument("run", metavar="RUN_DIR", help="a run folder")


# ------------------------------------------------------------------------------------- end of training commands


# --- Keras conversion and ONNX export of the streaming step -------------------------------------------------------

CONVERT_HELP = """\
Writes the weights to OUTPUT (.safetensors) and the graph spec beside it (same name, .yaml), which
`dilated summary`, `dilated draw`, `dilated export` and dilated.keras_convert.load_converted read back
without Keras. The conversion is checked against the Keras model on a random input.

Example:
  dilated convert wavenet.keras -o wavenet.safetensors
  dilated summary wavenet.yaml --input 1,256
"""


def _convert(args: argparse.Namespace) -> int:
    from dilated.keras_convert import convert_file

    if not Path(args.source).is_file():
        raise ValueError(f"Keras model file not found: {args.source}")
    graph, weights, spec = convert_file(args.source, args.output)
    params = sum(p.numel() for p in graph.parameters())
    print(f"wrote {weights} ({params:,} parameters) and {spec} ({len(graph.spec.nodes)} nodes)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from dilated.keras_convert import from_keras
    from dilated.step_export import export_step

    target = resolve_target(args.target)
    model = from_keras(target.model) if _is_keras(target.model) else target.model
    channels = target.input_shape[0] if target.input_shape else None
    exported = export_step(model, args.output, channels, args.batch_size, args.check_steps)
    checked = (
        f"; onnxruntime equals the torch stream on {exported.steps_checked} random steps (max abs diff "
        f"{exported.max_abs_diff:.1e})"
        if exported.steps_checked
        else ""
    )
    print(
        f"wrote {exported.path}: x {exported.input_shape} + {len(exported.state_names)} state tensors -> y + new "
        f"states{checked}"
    )
    return 0


def _add_conversion_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """The convert and export subcommands."""
    convert = command(
        "convert", _convert, "Convert a Keras model (.keras) into dilated layers (safetensors + YAML).", CONVERT_HELP
    )
    convert.add_argument("source", metavar="MODEL.keras", help="a saved Keras 3 model (loaded in safe mode)")
    convert.add_argument("-o", "--output", metavar="OUT.safetensors", required=True, help="weights file to write")
    export = command(
        "export",
        _export,
        "Write a model's streaming step to ONNX, checked with onnxruntime.",
        TARGET_HELP + "\nThe ONNX graph takes x (batch, channels) and one state tensor per causal conv, "
        "and returns y\nand the new states (zeros start a stream).\n\nExamples:\n"
        "  dilated export wavenet.yaml -o step.onnx\n  dilated export model.keras -o step.onnx\n"
        "  dilated export wavenet -o wavenet_step.onnx --batch-size 8\n",
    )
    export.add_argument("target", metavar="TARGET", help="model to export (see below)")
    export.add_argument("-o", "--output", metavar="STEP.onnx", required=True, help="ONNX file to write")
    export.add_argument("--batch-size", type=int, default=1, help="streams per call (default: 1)")
    export.add_argument(
        "--check-steps",
        type=int,
        default=16,
        help="steps compared with the torch stream in onnxruntime (default: 16; 0: no check)",
    )


# --- end of Keras conversion and export --------------------------------------------------------------------------

# --- design and explore (issue 16) -------------------------------------------------------------------------------

DESIGN_HELP = """\
Proposes stride-1 causal stacks whose every output reads ALL of the last N steps (no holes), ranked by blocks,
parameters at --channels, FLOPs per step and overshoot beyond N. -o writes the chosen proposal as a config that
`dilated summary`, `draw`, `explore` and `train` read (train takes input channels and the head from its data).

Examples:
  dilated design --receptive-field 1000 --kernel-size 3
  dilated design --receptive-field 4096 --kernel-size 2,3 --max-dilation 512 --block residual2 -o stack.yaml
  dilated design --explain seed-dilated          # which steps the seed's stack never reads, and why
"""


def _design(args: argparse.Namespace) -> int:
    from dilated.design import design, explain_holes

    if args.explain:
        from dilated.explore import target_summary

        target = resolve_target(args.explain, parse_input_shape(args.input, "--input") if args.input else None)
        print(f"{target.name}: {explain_holes(target_summary(target).geometry)}")
        return 0
    if args.receptive_field is None or args.kernel_size is None:
        raise ValueError("design needs --receptive-field N and --kernel-size K (or --explain TARGET)")
    kernels = [int(k) for k in args.kernel_size.split(",")] if args.kernel_size.replace(",", "").isdigit() else None
    if not kernels:
        raise ValueError(f"--kernel-size: expected an int or a list like 2,3; got {args.kernel_size!r}")
    proposals = design(
        args.receptive_field,
        kernels,
        args.max_layers,
        args.channels,
        args.max_dilation,
        args.block,
        input_channels=args.input_channels,
        top=args.top,
        sort_by=args.sort.split(",") if args.sort else ("layers", "params", "flops", "overshoot"),
    )
    print(
        f"{args.block} blocks reaching >= {args.receptive_field} steps with no holes "
        f"({args.channels} channels, {args.input_channels} input channel{'s' * (args.input_channels > 1)}):"
    )
    header = ("#", "layers", "kernel", "field", "overshoot", "params", "FLOPs/step", "max d", "dilations")
    rows = [
        (
            str(i),
            str(p.layers),
            str(p.kernel_size),
            f"{p.receptive_field:,}",
            f"{p.overshoot:,}",
            f"{p.params:,}",
            f"{p.flops:,}",
            f"{p.max_dilation:,}",
            ", ".join(map(str, p.dilations)),
        )
        for i, p in enumerate(proposals, 1)
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for cells in (header, *rows):
        print(
            "  ".join(
                c.ljust(w) if i == len(header) - 1 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
            ).rstrip()
        )
    if args.output:
        if not 1 <= args.pick <= len(proposals):
            raise ValueError(
                f"--pick {args.pick}: choose one of the {len(proposals)} proposals (1 to {len(proposals)})"
            )
        chosen = proposals[args.pick - 1]
        Path(args.output).write_text(chosen.yaml())
        print(
            f"wrote {args.output} (proposal {args.pick}: {chosen.layers} {chosen.block} blocks, field "
            f"{chosen.receptive_field})"
        )
    return 0


def _explore(args: argparse.Namespace) -> int:
    import webbrowser

    from dilated.explore import DEFAULT_TARGET, write_explorer

    shape = parse_input_shape(args.input, "--input") if args.input else None
    path = write_explorer(args.output, args.target, shape)
    print(f"wrote {path} (opens on {args.target or DEFAULT_TARGET}; self-contained, works offline)")
    if args.open:
        webbrowser.open(path.resolve().as_uri())
    return 0


def _add_design_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """The design and explore subcommands."""
    sub = command(
        "design", _design, "Propose dilation schedules with no holes for a target receptive field.", DESIGN_HELP
    )
    sub.add_argument("--receptive-field", type=int, metavar="N", help="target field in input steps")
    sub.add_argument("--kernel-size", metavar="K", help="taps per conv, or several to compare (e.g. 2,3)")
    sub.add_argument("--max-layers", type=int, metavar="M", help="most blocks allowed")
    sub.add_argument("--channels", type=int, default=32, metavar="C", help="width of every conv (default 32)")
    sub.add_argument("--input-channels", type=int, default=1, metavar="C", help="channels of the input (default 1)")
    sub.add_argument("--max-dilation", type=int, metavar="D", help="largest dilation allowed")
    sub.add_argument(
        "--block",
        default="plain",
        choices=("plain", "residual1", "residual2"),
        help="plain: conv + ReLU; residual1: one conv and a skip; residual2: the TCN block (two convs)",
    )
    sub.add_argument("--sort", metavar="KEYS", help="rank by these first: layers, params, flops, overshoot")
    sub.add_argument("--top", type=int, default=5, help="proposals to list (default 5)")
    sub.add_argument("-o", "--output", metavar="FILE.yaml", help="write the chosen proposal as a model config")
    sub.add_argument("--pick", type=int, default=1, metavar="I", help="which proposal -o writes (default 1)")
    sub.add_argument("--explain", metavar="TARGET", help="explain the holes of an existing stack instead")
    sub.add_argument("--input", metavar="C,T", help="with --explain: input shape channels,time")
    sub = command(
        "explore",
        _explore,
        "Write an interactive, self-contained HTML page to edit and design a stack.",
        TARGET_HELP + "\nExamples:\n  dilated explore -o explorer.html --open\n"
        "  dilated explore tcn -o tcn.html\n  dilated explore stack.yaml -o stack.html\n",
    )
    sub.add_argument("target", metavar="TARGET", nargs="?", help="model to open on (default: seed-dilated)")
    sub.add_argument(
        "-o", "--output", default="explorer.html", metavar="FILE.html", help="page to write (default explorer.html)"
    )
    sub.add_argument("--open", action="store_true", help="open the page in the default browser")
    sub.add_argument("--input", metavar="C,T", help="input shape without batch: channels,time")


# ----------------------------------------------------------------------------------------- dilated data (books)

DATA_HELP = """\
Rebuild limit order books from market-data feeds (Databento DBN MBO / MBP-10, Binance depth recordings,
Bitstamp order streams, LOBSTER) into Parquet: one row per book event, columns ts (ns), then ask_price_i,
ask_size_i, bid_price_i, bid_size_i per level i (empty levels NaN).

Examples:
  dilated data convert esh4-glbx-mdp3-20231224.mbo.dbn.zst esh4-glbx-mdp3-20231225.mbo.dbn.zst -o esh4.parquet
  dilated data convert btcusd_perp_20240808.gz btcusd_perp_20240809.gz -o btc.parquet --gaps truncate
  dilated data info esh4.parquet --horizons 50,100,200
"""


def _data_convert(args: argparse.Namespace) -> int:
    from dilated.data.convert import book_summary, convert_book, format_book_info
    from dilated.data.orderbook import write_book

    options = {"gaps": args.gaps} if args.gaps else {}
    book = convert_book(args.sources, args.format, args.levels, progress=not args.no_progress, **options)
    path = write_book(book, args.output)
    print(format_book_info(book_summary(book)))
    details = ", ".join(f"{k} {v}" for k, v in book.stats.items() if k not in ("events",))
    print(f"  conversion: {details}")
    print(f"wrote {path}: {len(book):,} events x {book.levels} levels")
    return 0


def _data_info(args: argparse.Namespace) -> int:
    from dilated.data.convert import book_summary, convert_book, format_book_info
    from dilated.data.lob_labels import label_balance
    from dilated.data.orderbook import read_book

    path = Path(args.file)
    book = read_book(path) if path.suffix.lower() in (".parquet", ".pq") else convert_book(path, progress=False)
    horizons = [int(h) for h in args.horizons.split(",") if h.strip()] if args.horizons else []
    balance = label_balance(book, horizons, args.threshold, args.smoothing) if horizons else None
    print(format_book_info(book_summary(book), balance))
    return 0


def _add_data_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """The `dilated data convert` and `dilated data info` subcommands."""
    from dilated.data.binance import GAP_POLICIES
    from dilated.data.convert import BOOK_FORMATS
    from dilated.data.lob_labels import SMOOTHINGS

    data = command("data", _data_info, "Rebuild order books from market-data feeds (convert, info).", DATA_HELP)
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    convert = actions.add_parser(
        "convert",
        help="feed files -> a Parquet book",
        description=DATA_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    convert.set_defaults(handler=_data_convert)
    convert.add_argument("sources", metavar="SOURCE", nargs="+", help="feed files of one instrument, in time order")
    convert.add_argument("-o", "--output", required=True, metavar="BOOK.parquet", help="Parquet file to write")
    convert.add_argument("--format", choices=BOOK_FORMATS, help="feed format (default: detected from the file)")
    convert.add_argument("--levels", type=int, default=10, help="price levels per side (default 10)")
    convert.add_argument(
        "--gaps",
        choices=GAP_POLICIES,
        help="Binance: at a sequence gap, raise (default) or keep the book up to it (truncate)",
    )
    convert.add_argument("--no-progress", action="store_true", help="no progress bar")
    info = actions.add_parser(
        "info",
        help="describe a book (Parquet or feed file)",
        description=DATA_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.set_defaults(handler=_data_info)
    info.add_argument("file", metavar="FILE", help="a Parquet book, or a feed file (converted first)")
    info.add_argument(
        "--horizons",
        default="10,50,100",
        help="label horizons in events, comma-separated (default 10,50,100; empty: none)",
    )
    info.add_argument("--threshold", type=float, help="label threshold (default: balanced on the first 70%%)")
    info.add_argument("--smoothing", choices=SMOOTHINGS, default="future", help="label rule (default future)")


# ---------------------------------------------------------------------------------------------- dilated replay

REPLAY_HELP = """\
Replays a recorded feed event by event through the run's live stream (dilated.load_run(RUN).stream()): raw
events in, z-scored with the training statistics, one prediction per full window out. The CSV has the columns of
`dilated predict` (windows whose target lies beyond the feed have an empty target).

FILE is a LOBSTER message or orderbook file (its partner found by LOBSTER's naming), a CSV/Parquet table, or a
YAML file with a data: section; default: the run's own data.

Examples:
  dilated replay runs/demo -o replay.csv --check
  dilated replay runs/sunspots --input new.csv -o forecast.csv
  dilated replay runs/prices --input ticks.parquet --by symbol -o replay.csv
"""


def _replay(args: argparse.Namespace) -> int:
    import torch

    from dilated.predictor import PARITY, load_run
    from dilated.replay import replay, write_replay

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
    print(f"wrote {path}: {windows:,} windows")
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


def _add_replay_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    sub = command("replay", _replay, "Replay a recorded feed through a trained run's live stream.", REPLAY_HELP)
    sub.add_argument("run", metavar="RUN", help="a run folder, or a checkpoint folder inside one")
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
    sub.add_argument(
        "--checkpoint",
        default="best",
        choices=("best", "last"),
        help="for a run folder: the best checkpoint by the run's monitor, or the last",
    )
    sub.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: one event's ops are too "
        "small to share, and spinning threads stall on a busy CPU)",
    )
    sub.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``dilated``."""
    parser = argparse.ArgumentParser(prog="dilated", description="Dilated causal convolutional sequence models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Callable[[argparse.Namespace], int], help_text: str, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    summary_parser = command(
        "summary",
        _summary,
        "Print a layer table with output shapes, parameters and receptive fields.",
        TARGET_HELP + "\nExamples:\n  dilated summary seed-dilated\n  dilated summary translob\n"
        "  dilated summary model.keras\n  dilated summary my_stack.yaml --input 2,500\n",
    )
    summary_parser.add_argument("target", metavar="TARGET", help="model to summarise (see below)")
    summary_parser.add_argument("--input", metavar="C,T", help="input shape without batch: channels,time (e.g. 2,200)")
    draw_parser = command(
        "draw",
        _draw,
        "Draw the receptive-field tree of a stack (PNG, SVG or animated GIF).",
        TARGET_HELP + "\nThe nodes and edges that feed one output (default: the last) are highlighted; zero padding\n"
        "is drawn hollow. Beyond 64 input steps only the last window is drawn.\n"
        "\nExamples:\n  dilated draw seed-dilated --input 2,32\n"
        "  dilated draw seed-dilated --input 2,32 --animate -o seed_dilated.gif\n"
        "  dilated draw seed-dilated --compare seed-strided -o docs/images/seed_compare.png\n"
        "  dilated draw my_stack.yaml --output-index 10 -o tree.svg\n",
    )
    draw_parser.add_argument("target", metavar="TARGET", help="model to draw (see below)")
    draw_parser.add_argument("--input", metavar="C,T", help="input shape without batch: channels,time (e.g. 2,32)")
    draw_parser.add_argument(
        "--output-index",
        metavar="N",
        type=int,
        default=None,
        help="output step to highlight (default: the last; negative counts from the end)",
    )
    draw_parser.add_argument(
        "-o",
        "--output",
        dest="path",
        metavar="PATH",
        help="image to write: .png, .svg or .gif (default: TARGET.png, or .gif with --animate)",
    )
    draw_parser.add_argument("--animate", action="store_true", help="animated GIF: each output lights up in turn")
    draw_parser.add_argument("--compare", metavar="B", help="draw TARGET and B side by side")
    command("models", _models, "List the registered models with their parameters and receptive fields.")
    _add_training_commands(command)
    _add_conversion_commands(command)
    _add_design_commands(command)
    _add_data_commands(command)

    _add_replay_command(command)
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
