"""The ``dilated`` command: thin wrappers that parse arguments and call the library.

Errors print one line (``dilated: error: ...``) and exit with status 2 (bad input) or 1 (other failures);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from dilated.config import parse_input_shape, resolve_target

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
    from dilated.summary import summary

    target = resolve_target(args.target, parse_input_shape(args.input, "--input") if args.input else None)
    if target.input_shape is None and not _is_keras(target.model):
        raise ValueError(f"{args.target!r} does not fix its input shape: pass --input CHANNELS,TIME (e.g. --input 2,200)")
    result = summary(target.model) if _is_keras(target.model) else summary(target.model, target.input_shape)
    result.title = target.name
    print(result)
    return 0


def _draw(args: argparse.Namespace) -> int:
    from dilated.draw import compare, draw

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
    from dilated.models import available_models, build_model, example_input_shape

    for name in available_models():
        model = build_model(name)
        params = sum(p.numel() for p in model.parameters())
        print(f"{name:10s} input {example_input_shape(name)}  params {params:,}  "
              f"receptive field {model.receptive_field}")
    return 0


def _demo(_args: argparse.Namespace) -> int:
    from dilated.config import bundled_examples, model_from_config, read_yaml
    from dilated.summary import summary

    for name, path in bundled_examples().items():
        target = model_from_config(read_yaml(path), name)
        result = summary(target.model, target.input_shape)
        result.title = name
        print(result, end="\n\n")
    return 0


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
    command("demo", _demo, "Run the main job on bundled data.")
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
