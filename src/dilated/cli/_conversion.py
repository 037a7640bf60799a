"""Keras conversion and export of the streaming step (ONNX or C): ``dilated convert`` and ``dilated export``."""

from __future__ import annotations

import argparse
from pathlib import Path

from dilated.cli._shared import TARGET_HELP, Command, is_keras

CONVERT_HELP = """\
Writes the weights to OUTPUT (.safetensors) and the graph spec beside it (same name, .yaml), which
`dilated summary`, `dilated draw`, `dilated export` and dilated.keras_bridge.load_converted read back
without Keras. The conversion is checked against the Keras model on a random input.

Example:
  dilated convert wavenet.keras -o wavenet.safetensors
  dilated summary wavenet.yaml --input 1,256
"""


def _convert(args: argparse.Namespace) -> int:
    from dilated.keras_bridge import convert_file

    if not Path(args.source).is_file():
        raise ValueError(f"Keras model file not found: {args.source}")
    graph, weights, spec = convert_file(args.source, args.output)
    params = sum(p.numel() for p in graph.parameters())
    print(f"wrote {weights} ({params:,} parameters) and {spec} ({len(graph.spec.nodes)} nodes)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from dilated._resolve import parse_input_shape, resolve_target
    from dilated.keras_bridge import from_keras
    from dilated.streaming import ExportedC, export_step

    target = resolve_target(args.target, parse_input_shape(args.input, "--input") if args.input else None)
    model = from_keras(target.model) if is_keras(target.model) else target.model
    model.eval()  # the step is exported for inference (dropout off, norms on their running statistics)
    channels = target.input_shape[0] if target.input_shape else None
    exported = export_step(model, args.output, channels, args.batch_size, args.check_steps, prefix=args.prefix)
    if isinstance(exported, ExportedC):
        checked = (
            f"; equals the model's forward over {exported.steps_checked} steps (max abs diff "
            f"{exported.max_abs_diff:.1e})"
            if exported.steps_checked
            else "; not checked"
        )
        print(
            f"wrote {exported.source} and {exported.header}: {args.prefix}_step(state, x[{exported.n_x}], "
            f"cond[{exported.n_cond}], y[{exported.n_y}]), {exported.state_bytes} bytes of state per stream{checked}"
        )
        return 0
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


def add_conversion_commands(command: Command) -> None:
    """The convert and export subcommands."""
    convert = command(
        "convert", _convert, "Convert a Keras model (.keras) into dilated layers (safetensors + YAML).", CONVERT_HELP
    )
    convert.add_argument("source", metavar="MODEL.keras", help="a saved Keras 3 model (loaded in safe mode)")
    convert.add_argument("-o", "--output", metavar="OUT.safetensors", required=True, help="weights file to write")
    export = command(
        "export",
        _export,
        "Write a model's streaming step as ONNX or as C99 source, checked against the model.",
        TARGET_HELP + "\nThe output's extension chooses the format. .onnx: the graph takes x (batch, channels) and "
        "one\nstate tensor per causal conv, and returns y and the new states (zeros start a stream); checked\n"
        "with onnxruntime. .c: dependency-free C99 with the weights inside and its .h beside it\n"
        "(PREFIX_state_size, PREFIX_reset, PREFIX_step, PREFIX_step_batch; see docs/c_step.md); compiled\n"
        "with the system C compiler ($CC, else cc) and checked against the model's forward.\n\nExamples:\n"
        "  dilated export wavenet.yaml -o step.onnx\n  dilated export model.keras -o step.onnx\n"
        "  dilated export wavenet -o wavenet_step.onnx --batch-size 8\n"
        "  dilated export tcn -o tcn_step.c --prefix tcn\n"
        "  dilated export mypkg.models:build --input 2,100 -o step.c\n",
    )
    export.add_argument("target", metavar="TARGET", help="model to export (see below)")
    export.add_argument(
        "-o", "--output", metavar="STEP.onnx|STEP.c", required=True, help="file to write: .onnx or .c (and its .h)"
    )
    export.add_argument("--input", metavar="C,T", help="input shape without batch: channels,time (e.g. 2,100)")
    export.add_argument("--batch-size", type=int, default=1, help="streams per call of the ONNX graph (default: 1)")
    export.add_argument(
        "--prefix",
        default="dilated",
        help="prefix of the C functions, so that two models link together (default: dilated)",
    )
    export.add_argument(
        "--check-steps",
        type=int,
        default=16,
        help="ONNX: steps compared with the torch stream in onnxruntime (default: 16); 0: no check (ONNX or C)",
    )
