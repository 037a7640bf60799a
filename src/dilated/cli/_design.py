"""Designing stacks (issue 16): ``dilated design`` and ``dilated explore``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from dilated.cli._shared import TARGET_HELP, Command, add_json_argument, print_json

if TYPE_CHECKING:
    from dilated.design import Proposal

DESIGN_HELP = """\
Proposes stride-1 causal stacks whose every output reads ALL of the last N steps (no holes), ranked by blocks,
parameters at --channels, FLOPs per step and overshoot beyond N. -o writes the chosen proposal as a config that
`dilated summary`, `draw`, `explore` and `train` read (train takes input channels and the head from its data).

Examples:
  dilated design 1000
  dilated design --receptive-field 1000 --kernel-size 3
  dilated design --receptive-field 4096 --kernel-size 2,3 --max-dilation 512 --block residual2 -o stack.yaml
  dilated design --explain example-dilated          # which steps the example's stack never reads, and why
"""


def _design(args: argparse.Namespace) -> int:
    from dilated.design import design, explain_holes

    if args.explain:
        from dilated._resolve import parse_input_shape, resolve_target
        from dilated.explore import target_summary

        target = resolve_target(args.explain, parse_input_shape(args.input, "--input") if args.input else None)
        coverage = explain_holes(target_summary(target).geometry)
        if args.json:
            print_json("dilated.design-explain/1", {"target": target.name, **coverage.to_dict()})
        else:
            print(f"{target.name}: {coverage}")
        return 0
    if args.field is not None and args.receptive_field is not None and args.field != args.receptive_field:
        raise ValueError(f"design: N {args.field} and --receptive-field {args.receptive_field} differ; give one")
    args.receptive_field = args.receptive_field if args.field is None else args.field
    if args.receptive_field is None:
        raise ValueError("design needs the receptive field N (dilated design 1000), or --explain TARGET")
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
    chosen = _write_pick(proposals, args.pick, args.output) if args.output else None
    if args.json:
        asked = {"receptive_field": args.receptive_field, "kernel_sizes": kernels, "block": args.block}
        asked.update(channels=args.channels, input_channels=args.input_channels)
        listed = [{"rank": i, **p.to_dict()} for i, p in enumerate(proposals, 1)]
        written = {"path": args.output, "pick": args.pick} if chosen else None
        print_json("dilated.design/1", {**asked, "proposals": listed, "written": written})
        return 0
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
    if chosen:
        print(
            f"wrote {args.output} (proposal {args.pick}: {chosen.layers} {chosen.block} blocks, field "
            f"{chosen.receptive_field})"
        )
    return 0


def _write_pick(proposals: list[Proposal], pick: int, path: str) -> Proposal:
    """Write proposal ``pick`` (1-based) of ``proposals`` to ``path`` as a model config, and return it."""
    if not 1 <= pick <= len(proposals):
        raise ValueError(f"--pick {pick}: choose one of the {len(proposals)} proposals (1 to {len(proposals)})")
    chosen = proposals[pick - 1]
    Path(path).write_text(chosen.yaml())
    return chosen


def _explore(args: argparse.Namespace) -> int:
    import webbrowser

    from dilated._resolve import parse_input_shape
    from dilated.explore import DEFAULT_TARGET, write_explorer

    shape = parse_input_shape(args.input, "--input") if args.input else None
    path = write_explorer(args.output, args.target, shape)
    print(f"wrote {path} (opens on {args.target or DEFAULT_TARGET}; self-contained, works offline)")
    if args.open:
        webbrowser.open(path.resolve().as_uri())
    return 0


def add_design_commands(command: Command) -> None:
    """The design and explore subcommands."""
    sub = command(
        "design", _design, "Propose dilation schedules with no holes for a target receptive field.", DESIGN_HELP
    )
    sub.add_argument("field", nargs="?", type=int, metavar="N", help="target field in input steps")
    sub.add_argument("--receptive-field", type=int, metavar="N", help="the same as N, spelled out")
    sub.add_argument(
        "--kernel-size", default="2,3", metavar="K", help="taps per conv, or several to compare (default 2,3)"
    )
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
    add_json_argument(sub, "the proposals (or with --explain the holes)")
    sub = command(
        "explore",
        _explore,
        "Write an interactive, self-contained HTML page: any model's graph and receptive-field tree; stacks also editable.",
        TARGET_HELP + "\nExamples:\n  dilated explore -o explorer.html --open\n"
        "  dilated explore tcn -o tcn.html\n  dilated explore stack.yaml -o stack.html\n",
    )
    sub.add_argument("target", metavar="TARGET", nargs="?", help="model to open on (default: example-dilated)")
    sub.add_argument(
        "-o", "--output", default="explorer.html", metavar="FILE.html", help="page to write (default explorer.html)"
    )
    sub.add_argument("--open", action="store_true", help="open the page in the default browser")
    sub.add_argument("--input", metavar="C,T", help="input shape without batch: channels,time")
