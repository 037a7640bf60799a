"""Receptive-field diagrams: the WaveNet tree (van den Oord et al. 2016, fig. 3), drawn for any stack.

One row of nodes per layer output, the input at the bottom; every node is joined to the nodes below it that it
reads. The nodes and edges that feed one output (default: the last step) are highlighted and its receptive field
is marked on the input row. Zero padding (causal, same, explicit) is drawn as hollow nodes at the row edges, so a
reader sees why a padded layer keeps the length; strided and pooled layers have fewer nodes, each placed under the
inputs it reads (its last input for a causal layer, their centre otherwise). Beyond ``max_steps`` input steps
only a window of the input is drawn, and the title says so::

    from dilated.diagrams import draw
    from dilated.geometry import causal_stack
    draw(causal_stack(2, [1, 2, 4, 8]), 16, path="wavenet.png")      # the WaveNet figure
    draw(model, 64, path="tree.gif", animate=True)                  # outputs light up one after another

:func:`layout` (a stack of :class:`dilated.geometry.Layer`) and :func:`graph_layout` (any model, from its
dataflow analysis) compute what is drawn (pure Python, no matplotlib) and return a :class:`Diagram`; :func:`draw`
and :func:`compare` render it with matplotlib's Agg canvas (never a screen) to PNG, SVG or GIF (with Pillow),
chosen by the file extension. The same drawing is ``dilated draw TARGET``.

The package, lowest first: :mod:`._parts` (the data), :mod:`._window` (which output and input steps are shown),
:mod:`._stack_layout`, :mod:`._graph_layout`, :mod:`._drawable` (what ``draw`` accepts), :mod:`._render`
(matplotlib), and this module. The README images are made by one command, from the repository root::

    python -m dilated.diagrams docs/images
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from dilated._resolve import resolve_target
from dilated.diagrams._drawable import drawable, lay_out
from dilated.diagrams._graph_layout import Drawn, GraphPlan, graph_layout, graph_plan, keras_details, torch_details
from dilated.diagrams._parts import Diagram, DiagramNode, Edge, Row
from dilated.diagrams._render import render
from dilated.diagrams._stack_layout import layout
from dilated.diagrams._window import MAX_STEPS, output_index

FORMATS = (".png", ".svg", ".gif")
README_IMAGES = Path("docs/images")

__all__ = [
    "FORMATS",
    "MAX_STEPS",
    "README_IMAGES",
    "Diagram",
    "Drawn",
    "GraphPlan",
    "Edge",
    "DiagramNode",
    "Row",
    "compare",
    "draw",
    "graph_layout",
    "graph_plan",
    "keras_details",
    "torch_details",
    "layout",
    "output_index",
    "readme_images",
]


def draw(
    model_or_layers: Any,
    input_length: int | None = None,
    *,
    path: str | Path,
    output: int | None = None,
    input_shape: Sequence[int] | None = None,
    title: str | None = None,
    animate: bool = False,
    max_steps: int = MAX_STEPS,
) -> Diagram:
    """Draw the receptive-field diagram of a stack to ``path`` (``.png``, ``.svg`` or ``.gif``).

    Args:
        model_or_layers: a list of :class:`dilated.geometry.Layer`, a torch module (its geometry is read with
            :func:`dilated.receptive_field`), a Keras model or a :class:`dilated._resolve.Target` (``Any``: Keras
            models are untyped).
        input_length: input steps to draw (default: the model's input shape). Beyond ``max_steps`` only a window
            that covers the output's field is drawn, and the title says so.
        path: the file to write; its extension picks the format.
        output: the output step whose tree is highlighted (default: the last; negative counts from the end).
        input_shape: ``(channels, time)`` for the forward pass that reads a torch module's geometry (default:
            the target's, or the model's first ``in_channels`` and ``input_length``).
        title: replaces the first line of the default title.
        animate: write an animated GIF in which every drawn output lights up in turn, as in the WaveNet figure.
        max_steps: the most input steps drawn.

    Returns:
        the :class:`Diagram` drawn (for an animation: the chosen output's, with ``frames`` set).
    """
    path = _check_path(path, animate)
    what = drawable(model_or_layers, input_length, input_shape)
    diagram = lay_out(what, output, title, max_steps)
    if animate:
        frames = [n.index for n in diagram.rows[-1].nodes if not n.padding]
        diagrams = [lay_out(what, t, title, max_steps, diagram.window) for t in frames]
        render([diagrams], path)
        return replace(diagram, frames=tuple(frames))
    render([[diagram]], path)
    return diagram


def compare(
    a: Any,
    b: Any,
    input_length: int | None = None,
    *,
    path: str | Path,
    output: int | None = None,
    input_shape: Sequence[int] | None = None,
    titles: Sequence[str] | None = None,
    max_steps: int = MAX_STEPS,
) -> tuple[Diagram, Diagram]:
    """Draw two stacks side by side on one figure (same scale), e.g. a dilated stack next to a strided one.

    Arguments are those of :func:`draw`, applied to both; ``titles`` replaces the two panels' first title lines.
    """
    path = _check_path(path, False)
    heads: list[str | None] = list(titles) if titles is not None else [None, None]
    if len(heads) != 2:
        raise ValueError(f"titles: expected two, got {len(heads)}")
    first, second = (
        lay_out(drawable(m, input_length, input_shape), output, t, max_steps) for m, t in zip((a, b), heads)
    )
    render([[first], [second]], path)
    return first, second


def readme_images(folder: str | Path = README_IMAGES, input_length: int = 32) -> list[Path]:
    """Write the README's diagrams of the bundled seed stacks into ``folder``; returns the files written.

    ``example_compare.png`` (the dilated stack beside the strided one), ``example_dilated.gif`` (its outputs lighting
    up one after another) and ``example_dilated.svg``. Run ``python -m dilated.diagrams docs/images``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dilated = resolve_target("example-dilated", (2, input_length))
    strided = resolve_target("example-strided", (2, input_length))
    written = [folder / "example_compare.png", folder / "example_dilated.gif", folder / "example_dilated.svg"]
    compare(dilated, strided, path=written[0])
    draw(dilated, path=written[1], animate=True)
    draw(dilated, path=written[2])
    return written


def _check_path(path: str | Path, animate: bool) -> Path:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot tell the image format of {str(path)!r}: use a .png, .svg or .gif file name")
    if animate and suffix != ".gif":
        raise ValueError(f"an animation is written as a GIF: name the file .gif, not {str(path)!r}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"no such folder for {str(path)!r}: create {str(path.parent)!r} first")
    return path
