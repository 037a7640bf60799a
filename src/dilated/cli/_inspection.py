"""What people look at: ``dilated summary``, ``dilated draw`` and ``dilated models``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dilated.cli._shared import TARGET_HELP, Command, add_json_argument, is_keras, print_json


def _summary(args: argparse.Namespace) -> int:
    from dilated._resolve import parse_input_shape, resolve_target
    from dilated.summaries import SCHEMA, summary

    target = resolve_target(args.target, parse_input_shape(args.input, "--input") if args.input else None)
    if target.input_shape is None and not is_keras(target.model):
        raise ValueError(
            f"{args.target!r} does not fix its input shape: pass --input CHANNELS,TIME (e.g. --input 2,200)"
        )
    result = summary(target.model, target.input_shape)  # a Keras model with Input((None, C)) needs --input too
    result.title = target.name
    if args.json:
        print_json(SCHEMA, result.to_dict())
    else:
        print(result)
    return 0


def _draw(args: argparse.Namespace) -> int:
    from dilated._resolve import parse_input_shape, resolve_target
    from dilated.diagrams import compare, draw

    shape = parse_input_shape(args.input, "--input") if args.input else None
    if args.compare and args.animate:
        raise ValueError("--animate draws one stack at a time; drop --compare")
    targets = [resolve_target(name, shape) for name in (args.target, args.compare) if name]
    for name, t in zip((args.target, args.compare), targets):
        if t.input_shape is None and not is_keras(t.model):
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
    """``example-dilated`` -> ``example-dilated``; ``configs/my_stack.yaml`` -> ``my_stack``."""
    path = Path(name)
    return path.stem if path.suffix in (".yaml", ".yml", ".keras") else path.name


def _models(args: argparse.Namespace) -> int:
    from dilated.analysis import receptive_field
    from dilated.models import available_models, build_model, example_input_shape

    rows: list[dict[str, Any]] = []
    for name in available_models():
        model, shape = build_model(name), example_input_shape(name)
        rf = receptive_field(model, shape)
        whole = bool(rf.whole_input or rf.past)
        rows.append(
            {
                "name": name,
                "input": list(shape),
                "parameters": sum(p.numel() for p in model.parameters()),
                "receptive_field": None if whole else rf.size,
                "whole_input": whole,
            }
        )
    if args.json:
        print_json("dilated.models/1", {"models": rows})
        return 0
    for row in rows:
        field = f"the whole input ({row['input'][-1]} steps)" if row["whole_input"] else f"{row['receptive_field']}"
        print(f"{row['name']:10s} input {tuple(row['input'])}  params {row['parameters']:,}  receptive field {field}")
    return 0


def add_inspect_commands(command: Command) -> None:
    """The summary, draw and models subcommands."""
    summary_parser = command(
        "summary",
        _summary,
        "Print a layer table with output shapes, parameters and receptive fields.",
        TARGET_HELP + "\nExamples:\n  dilated summary example-dilated\n  dilated summary translob\n"
        "  dilated summary model.keras\n  dilated summary my_stack.yaml --input 2,500\n"
        "  dilated summary tcn --json          # the same numbers for scripts\n",
    )
    summary_parser.add_argument("target", metavar="TARGET", help="model to summarise (see below)")
    summary_parser.add_argument("--input", metavar="C,T", help="input shape without batch: channels,time (e.g. 2,200)")
    add_json_argument(summary_parser, "the summary")
    draw_parser = command(
        "draw",
        _draw,
        "Draw the receptive-field tree of a stack (PNG, SVG or animated GIF).",
        TARGET_HELP + "\nThe nodes and edges that feed one output (default: the last) are highlighted; zero padding\n"
        "is drawn hollow. Beyond 64 input steps only the last window is drawn.\n"
        "\nExamples:\n  dilated draw example-dilated --input 2,32\n"
        "  dilated draw example-dilated --input 2,32 --animate -o example_dilated.gif\n"
        "  dilated draw example-dilated --compare example-strided -o docs/images/example_compare.png\n"
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
    models = command("models", _models, "List the registered models with their parameters and receptive fields.")
    add_json_argument(models, "the list")
