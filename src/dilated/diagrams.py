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

:func:`layout` computes what is drawn (pure Python, from :mod:`dilated.geometry`, no matplotlib) and returns a
:class:`Diagram`; :func:`draw` and :func:`compare` render it with matplotlib's Agg canvas (never a screen) to PNG,
SVG or GIF (with Pillow), chosen by the file extension. The same drawing is ``dilated draw TARGET``.

The README images are made by one command, from the repository root::

    python -m dilated.diagrams docs/images
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dilated.analysis import ReceptiveField, geometry_of, receptive_field
from dilated.analysis.fields import Field
from dilated.analysis.keras_graph import is_keras_model
from dilated.geometry import Layer, LayerGeometry, format_padding, stack_geometry

MAX_STEPS = 64
FORMATS = (".png", ".svg", ".gif")

# Colours (Open Color): one strong hue for what feeds the chosen output, greys for everything else.
HIGHLIGHT = "#e8590c"
HIGHLIGHT_DARK = "#a93f06"
FIELD_BAND = "#fff0e0"
EDGE = "#ced4da"
NODE = "#dee2e6"
NODE_EDGE = "#868e96"
PADDING_EDGE = "#adb5bd"
TEXT = "#212529"
MUTED = "#6c757d"

INCHES_PER_STEP = 0.16
INCHES_PER_ROW = 0.95
LABEL_INCHES = 1.3  # at least; grows with the longest row label
BOTTOM_INCHES = 1.7
NODE_SIZE, PADDING_SIZE = 52.0, 40.0  # marker areas in points^2


@dataclass(frozen=True)
class Node:
    """One drawn node: step ``index`` of row ``row`` (0 = input, ``r`` = output of layer ``r``) at ``x``.

    ``x`` is in input steps. A padding node has ``index < 0`` or ``index >= length`` of its row: one of the zeros
    the next layer adds before reading the row.
    """

    row: int
    index: int
    x: float
    padding: bool
    highlighted: bool


@dataclass(frozen=True)
class Edge:
    """Layer ``row`` reads node ``source`` of row ``source_row`` (default ``row - 1``; an earlier row in a
    branched graph) to compute node ``target`` of row ``row``."""

    row: int
    source: int
    target: int
    highlighted: bool
    source_row: int | None = None

    @property
    def below(self) -> int:
        """The row read."""
        return self.row - 1 if self.source_row is None else self.source_row


@dataclass(frozen=True)
class Row:
    """One row of nodes: the input (row 0) or the output of one layer, with its visible nodes.

    ``pad_left``/``pad_right`` are the zeros the *next* layer adds to this row (0 for the top row); ``x0`` and
    ``dx`` place step ``i`` at ``x0 + dx * i`` input steps.
    """

    label: str
    detail: str
    length: int
    receptive_field: int
    jump: int
    pad_left: int
    pad_right: int
    x0: float
    dx: float
    nodes: tuple[Node, ...]

    def x(self, index: int) -> float:
        """Position of step ``index`` (padding included) in input steps."""
        return self.x0 + self.dx * index

    @property
    def highlighted(self) -> list[int]:
        """Real (non-padding) steps of this row that feed the chosen output, in order."""
        return [n.index for n in self.nodes if n.highlighted and not n.padding]

    @property
    def padding_nodes(self) -> tuple[list[int], list[int]]:
        """Indices of the drawn padding nodes on the (left, right) edge."""
        left = [n.index for n in self.nodes if n.padding and n.index < 0]
        return left, [n.index for n in self.nodes if n.padding and n.index >= 0]


@dataclass(frozen=True)
class Diagram:
    """What a receptive-field diagram shows: its rows of nodes, its edges and the highlighted output.

    ``field`` is the chosen output's receptive field on the input, clipped to the real steps; ``span`` is the same
    before clipping (it reaches into the padding where negative or past the end). ``window`` is the first and last
    input step drawn; ``windowed`` says whether that is less than the whole input. ``frames`` lists the outputs an
    animation highlights, one per frame (empty for a still image).
    """

    title: str
    rows: tuple[Row, ...]
    edges: tuple[Edge, ...]
    output_index: int
    receptive_field: int
    field: tuple[int, int]
    span: tuple[int, int]
    window: tuple[int, int]
    windowed: bool
    notes: tuple[str, ...] = ()
    frames: tuple[int, ...] = ()

    @property
    def input_length(self) -> int:
        return self.rows[0].length


# --- layout: what is drawn (pure Python) -------------------------------------------------------------------------


def layout(
    layers: Sequence[Layer],
    input_length: int,
    output: int | None = None,
    *,
    name: str = "stack",
    names: Sequence[str] | None = None,
    title: str | None = None,
    max_steps: int = MAX_STEPS,
    window: tuple[int, int] | None = None,
) -> Diagram:
    """The :class:`Diagram` of a stack of time-axis layers fed ``input_length`` steps, without drawing it.

    Args:
        layers: the stack, in order (:class:`dilated.geometry.Layer`).
        input_length: input steps.
        output: the output step whose tree is highlighted; ``None`` for the last, negative counts from the end.
        name: the stack's name, used in the default title.
        names: one row label per layer (default: each layer's ``name``).
        title: replaces the first line of the default title.
        max_steps: draw at most this many input steps (the window that covers the output's field).
        window: the first and last input step to draw, instead of choosing one (animations keep one window).

    Returns:
        a :class:`Diagram`; ``rows[0]`` is the input, ``rows[-1]`` the last layer's output.
    """
    layers = list(layers)
    if not layers:
        raise ValueError("nothing to draw: the stack has no time-axis layers")
    if names is not None and len(names) != len(layers):
        raise ValueError(f"names: expected one per layer ({len(layers)}), got {len(names)}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 2:
        raise ValueError(f"max_steps must be an int >= 2, got {max_steps!r}")
    geometry = stack_geometry(layers, input_length)
    index = output_index(output, geometry[-1].output_length)
    span = geometry[-1].field(index)
    field = (max(span[0], 0), min(span[1], input_length - 1))
    if window is None:
        window = _window(field, input_length, max_steps)
    lo, hi = window
    if not 0 <= lo <= hi < input_length:
        raise ValueError(f"window must lie in [0, {input_length - 1}], got {window}")
    windowed = (lo, hi) != (0, input_length - 1)
    x_lo = -math.inf if lo == 0 else lo - 0.5
    x_hi = math.inf if hi == input_length - 1 else hi + 0.5

    tree = _tree(geometry, index)
    placement = _placement(geometry)
    lengths = [input_length] + [g.output_length for g in geometry]
    pads = [(g.pad_left, g.pad_right) for g in geometry] + [(0, 0)]
    labels = [("input", "")] + [
        _labels(g, names[i] if names else _layer_name(g.layer, i)) for i, g in enumerate(geometry)
    ]
    fields = [1] + [g.receptive_field for g in geometry]
    jumps = [1] + [g.jump for g in geometry]

    rows: list[Row] = []
    visible: list[range] = []
    for r, (length, (pad_left, pad_right), (x0, dx)) in enumerate(zip(lengths, pads, placement)):
        shown = _visible(x0, dx, -pad_left, length + pad_right - 1, x_lo, x_hi)
        visible.append(shown)
        nodes = tuple(Node(r, i, x0 + dx * i, not 0 <= i < length, i in tree[r]) for i in shown)
        label, detail = labels[r]
        rows.append(Row(label, detail, length, fields[r], jumps[r], pad_left, pad_right, x0, dx, nodes))

    edges = []
    for r, g in enumerate(geometry, start=1):
        for target in visible[r]:
            if not 0 <= target < lengths[r]:
                continue  # padding reads nothing
            if g.layer.kind == "global" and target not in tree[r]:
                continue  # a global layer reads every step: only the highlighted output's edges are drawn
            for source in _reads(g, target):
                if source in visible[r - 1]:
                    edges.append(Edge(r, source, target, target in tree[r]))

    notes = []
    if windowed:
        notes.append(f"showing input steps {lo}..{hi} of {input_length}")
    if field[1] - field[0] + 1 > hi - lo + 1:
        notes.append(f"the field ({field[1] - field[0] + 1} steps) is wider than the window")
    receptive = geometry[-1].receptive_field
    head = title if title is not None else (f"{name}: receptive field {receptive} steps, output t={index} highlighted")
    full_title = "\n".join([head, *notes])
    return Diagram(
        full_title, tuple(rows), tuple(edges), index, receptive, field, span, (lo, hi), windowed, tuple(notes)
    )


def output_index(output: int | None, length: int) -> int:
    """The output step ``output`` names (``None``: the last; negative: from the end), checked against ``length``."""
    if output is None:
        return length - 1
    if isinstance(output, bool) or not isinstance(output, int) or not -length <= output < length:
        raise ValueError(
            f"output index must be an int in [{-length}, {length}) for {length} output steps, got {output!r}"
        )
    return output % length


def _window(field: tuple[int, int], input_length: int, max_steps: int) -> tuple[int, int]:
    """``max_steps`` input steps (or all of them) around ``field``; at the end of the input for the last output."""
    width = min(input_length, max_steps)
    if width == input_length:
        return 0, input_length - 1
    first, last = field
    if last - first + 1 >= width:
        return last - width + 1, last  # the field does not fit: keep its newest steps
    hi = min(input_length - 1, last + (width - (last - first + 1)) // 2)
    return max(0, hi - width + 1), max(0, hi - width + 1) + width - 1


def _placement(geometry: list[LayerGeometry]) -> list[tuple[float, float]]:
    """``(x0, dx)`` per row: output ``t`` of a layer sits at its last input (causal) or the centre of its inputs."""
    x0, dx = 0.0, 1.0
    rows = [(x0, dx)]
    for g in geometry:
        layer = g.layer
        if layer.kind != "global":
            causal = layer.padding == "causal" or (g.pad_left == layer.span - 1 > 0 and g.pad_right == 0)
            offset = layer.span - 1 if causal else (layer.span - 1) / 2
            x0, dx = x0 + dx * (offset - g.pad_left), dx * layer.stride
        rows.append((x0, dx))
    return rows


def _visible(x0: float, dx: float, first: int, last: int, x_lo: float, x_hi: float) -> range:
    """Indices in ``[first, last]`` whose position ``x0 + dx * i`` lies in ``[x_lo, x_hi]``."""
    eps = 1e-9
    if x_lo > -math.inf:
        first = max(first, math.ceil((x_lo - x0) / dx - eps))
    if x_hi < math.inf:
        last = min(last, math.floor((x_hi - x0) / dx + eps))
    return range(first, max(first, last + 1))


def _reads(g: LayerGeometry, target: int) -> list[int]:
    """Steps of the layer's input row (padding included, as negative or past-the-end indices) that ``target``
    reads."""
    if g.layer.kind == "global":
        return list(range(g.input_length))
    first = target * g.layer.stride - g.pad_left
    taps = (first + k * g.layer.dilation for k in range(g.layer.kernel_size))
    return [t for t in taps if -g.pad_left <= t < g.input_length + g.pad_right]


def _tree(geometry: list[LayerGeometry], index: int) -> list[set[int]]:
    """Steps per row (padding included) that feed output ``index``; an edge is lit when its target is."""
    nodes: list[set[int]] = [set() for _ in range(len(geometry))] + [{index}]
    for r in range(len(geometry), 0, -1):
        g = geometry[r - 1]
        real = [t for t in nodes[r] if 0 <= t < g.output_length]  # padding reads nothing
        if g.layer.kind == "global":
            nodes[r - 1].update(range(g.input_length) if real else ())
            continue
        for target in real:
            nodes[r - 1].update(_reads(g, target))
    return nodes


def _layer_name(layer: Layer, index: int) -> str:
    return f"layer {index + 1}" if layer.name == "layer" else layer.name


def _labels(g: LayerGeometry, name: str) -> tuple[str, str]:
    layer = g.layer
    if layer.kind == "global":
        return name, "global: reads every step"
    if layer.kind == "pointwise":
        op = "pointwise"
    else:
        op = "conv" if layer.kind == "conv" else layer.kind
        op += f" k={layer.kernel_size}" + (f" d={layer.dilation}" if layer.dilation > 1 else "")
        op += f" s={layer.stride}" if layer.stride > 1 else ""
        if layer.kernel_size > 1 or g.pad_left or g.pad_right:
            op += f" {format_padding(layer.padding)}"
    return name, f"{op}\nRF {g.receptive_field} · jump {g.jump} · T={g.output_length}"


# --- what a model or target is, as a stack ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stack:
    layers: list[Layer]
    names: list[str]
    input_length: int
    name: str
    notes: tuple[str, ...] = ()


Details = Callable[[Any], str]  # the "conv k=2 d=4 causal" text of a node's module or layer


@dataclass(frozen=True)
class _Graph:
    """A model drawn from its dataflow analysis (branches and all)."""

    field: ReceptiveField
    name: str
    details: Details


def _torch_details(module: Any) -> str:
    return _op_text(geometry_of(module)[0]) if module is not None else ""


def _keras_details(layer: Any) -> str:
    from dilated.keras_adapter import keras_geometry

    return _op_text(keras_geometry(layer)[0]) if layer is not None else ""


def _op_text(layers: Sequence[Layer]) -> str:
    parts = []
    for layer in layers:
        text = ("conv" if layer.kind == "conv" else layer.kind) + f" k={layer.kernel_size}"
        text += (f" d={layer.dilation}" if layer.dilation > 1 else "") + (
            f" s={layer.stride}" if layer.stride > 1 else ""
        )
        parts.append(f"{text} {format_padding(layer.padding)}")
    return ", ".join(parts)


def graph_layout(
    rf: ReceptiveField,
    output: int | None = None,
    *,
    name: str = "model",
    details: Details = str,
    title: str | None = None,
    max_steps: int = MAX_STEPS,
    window: tuple[int, int] | None = None,
) -> Diagram:
    """The :class:`Diagram` of a model from its analysis (:func:`dilated.receptive_field`): one row per layer
    that has weights or moves time (parameter-free per-step layers fold into the edges), each joined to the
    rows it reads directly, so parallel branches show side by side; the highlighted input nodes are exactly the
    steps that feed the chosen output. Drawn up to the last layer with a per-step field (a layer that reads
    every step ends the drawing, and the title says so)."""
    graph = rf.graph
    input_length = rf.input_length
    by_index = {row.name: row for row in rf.layers}
    fields: dict[int, Field] = {0: Field.identity()}
    kept, notes = [], []
    for node in graph.nodes[1:-1]:
        row = by_index.get(node.name)
        if node.constant or row is None:
            continue
        if (
            row.field is None
            or row.field.absolute
            or row.past
            or node.axis is None
            or any(s not in fields for s in node.edges)
        ):
            what = "is measured, not followed" if row.field is None else "reads every step"
            notes.append(f"stops at {node.name} ({node.type_name}), which {what}")
            break
        fields[node.index] = row.field
        kept.append(node)
    if not kept:
        raise ValueError("nothing to draw: the model has no layer with a per-step receptive field")
    local = {n.index: dict(n.edges) for n in kept}
    shown = [
        n
        for n in kept
        if n is kept[-1]
        or _params(n.module)
        or any(e != Field.identity() for e in n.edges.values())
        or len(n.edges) > 1
    ]
    shown_ids = {0, *(n.index for n in shown)}
    edges_of = {n.index: _through(local, n.index, shown_ids) for n in shown}
    order = [0, *(n.index for n in shown)]
    row_of = {index: r for r, index in enumerate(order)}
    lengths = [input_length] + [n.length for n in shown]
    top = shown[-1]
    index = output_index(output, top.length)
    lit: list[set[int]] = [set() for _ in order]
    lit[-1] = {index}
    for r in range(len(order) - 1, 0, -1):
        for source, e in edges_of[order[r]].items():
            for t in lit[r]:
                if 0 <= t < lengths[r]:
                    lit[row_of[source]].update(e.at(t).values())
    top_field = fields[top.index].at(index)
    span = (top_field.first, top_field.last)
    clipped = (max(span[0], 0), min(span[1], input_length - 1))
    if window is None:
        window = _window(clipped, input_length, max_steps)
    lo, hi = window
    x_lo = -math.inf if lo == 0 else lo - 0.5
    x_hi = math.inf if hi == input_length - 1 else hi + 0.5
    reads: list[tuple[int, int]] = [(0, -1) for _ in order]  # lowest and highest step read of every row
    for r in range(1, len(order)):
        for source, e in edges_of[order[r]].items():
            for t in (0, lengths[r] - 1):
                steps = e.at(t)
                low, high = reads[row_of[source]]
                reads[row_of[source]] = (min(low, steps.first), max(high, steps.last))
    rows: list[Row] = []
    visible: list[range] = []
    for r, node_index in enumerate(order):
        node = graph.nodes[node_index]
        length = lengths[r]
        pad_left, pad_right = max(0, -reads[r][0]), max(0, reads[r][1] - length + 1) if r < len(order) - 1 else 0
        x0, dx = _position(fields[node_index])
        seen = _visible(x0, dx, -pad_left, length + pad_right - 1, x_lo, x_hi)
        visible.append(seen)
        nodes = tuple(Node(r, i, x0 + dx * i, not 0 <= i < length, i in lit[r]) for i in seen)
        if r == 0:
            label, detail = "input", ""
        else:
            row = by_index[node.name]
            op = details(node.module)
            label = f"{node.name}: {node.type_name}"
            detail = (f"{op}\n" if op else "") + f"RF {row.size} · jump {row.jump} · T={length}"
        rows.append(
            Row(
                label,
                detail,
                length,
                by_index[node.name].size if r else 1,
                int(by_index[node.name].jump) if r else 1,
                pad_left,
                pad_right,
                x0,
                dx,
                nodes,
            )
        )
    edges = []
    for r in range(1, len(order)):
        for source, e in edges_of[order[r]].items():
            below = row_of[source]
            for target in visible[r]:
                if not 0 <= target < lengths[r]:
                    continue
                for step in e.at(target).values():
                    if step in visible[below]:
                        edges.append(Edge(r, step, target, target in lit[r], below))
    window_notes = []
    if (lo, hi) != (0, input_length - 1):
        window_notes.append(f"showing input steps {lo}..{hi} of {input_length}")
    if clipped[1] - clipped[0] + 1 > hi - lo + 1:
        window_notes.append(f"the field ({clipped[1] - clipped[0] + 1} steps) is wider than the window")
    size = by_index[top.name].size
    head = title if title is not None else f"{name}: receptive field {size} steps, output t={index} highlighted"
    all_notes = (*window_notes, *notes)
    return Diagram(
        "\n".join([head, *all_notes]),
        tuple(rows),
        tuple(edges),
        index,
        size,
        clipped,
        span,
        (lo, hi),
        (lo, hi) != (0, input_length - 1),
        tuple(all_notes),
    )


def _params(module: Any) -> int:
    if module is None:
        return 0
    if hasattr(module, "count_params"):  # a Keras layer
        return int(module.count_params())
    return sum(p.numel() for p in module.parameters())


def _through(local: dict[int, dict[int, Field]], index: int, shown: set[int]) -> dict[int, Field]:
    """The edges of node ``index`` to the shown rows, composed through the hidden ones between."""
    out: dict[int, Field] = {}
    for source, e in local[index].items():
        parts = {source: e} if source in shown else {s: e.compose(f) for s, f in _through(local, source, shown).items()}
        for s, f in parts.items():
            out[s] = f if s not in out else out[s] | f
    return out


def _position(f: Field) -> tuple[float, float]:
    """``(x0, dx)``: a step sits above its newest input (causal rows) or the centre of its inputs."""
    first = f.at(0)
    x0 = float(first.last) if f.causal() else (first.first + first.last) / 2
    return x0, float(f.rate)


def _stack_of(
    model_or_layers: Any, input_length: int | None = None, input_shape: Sequence[int] | None = None
) -> _Stack | _Graph:
    """The time-axis layers (and row labels) of a list of ``Layer``s, or the analysis of a torch module, a Keras
    model or a :class:`dilated.targets.Target`, and the input length to draw them with."""
    if isinstance(model_or_layers, Layer):
        model_or_layers = [model_or_layers]
    if isinstance(model_or_layers, Sequence) and all(isinstance(x, Layer) for x in model_or_layers):
        if input_length is None:
            if input_shape is None:
                raise ValueError("draw(layers, input_length): give the number of input steps, e.g. 32")
            input_length = int(input_shape[-1])
        layers = list(model_or_layers)
        return _Stack(layers, [_layer_name(layer, i) for i, layer in enumerate(layers)], input_length, "stack")

    from dilated.targets import Target

    name = None
    if isinstance(model_or_layers, Target):
        name = model_or_layers.name
        if input_shape is None:
            input_shape = model_or_layers.input_shape
        model_or_layers = model_or_layers.model
    if is_keras_model(model_or_layers):
        if input_length is not None and input_shape is None:
            input_shape = (int(model_or_layers.inputs[0].shape[-1]), input_length)
        rf = receptive_field(model_or_layers, input_shape)
        return _Graph(rf, name or model_or_layers.name, _keras_details)
    from torch import nn

    if not isinstance(model_or_layers, nn.Module):
        raise TypeError(
            f"draw() takes a list of dilated.geometry.Layer, a torch module, a Keras model or a "
            f"Target, got {type(model_or_layers).__name__}"
        )
    if input_shape is None:
        if input_length is None:
            raise ValueError("draw(model): give input_length (time steps) or input_shape (channels, time)")
        input_shape = (_first_channels(model_or_layers), input_length)
    elif input_length is not None:
        input_shape = (*tuple(input_shape)[:-1], input_length)
    rf = receptive_field(model_or_layers, input_shape)
    return _Graph(rf, name or type(model_or_layers).__name__, _torch_details)


def _first_channels(model: Any) -> int:
    for module in model.modules():
        if type(module).__name__ == "Conv2d":
            break
        for attribute in ("in_channels", "in_features"):
            value = getattr(module, attribute, None)
            if isinstance(value, int):
                return value
    raise ValueError("cannot tell the model's input channels: pass input_shape=(channels, time)")


# --- rendering ---------------------------------------------------------------------------------------------------


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
            :func:`dilated.summaries.summary`), a Keras model or a :class:`dilated.targets.Target`.
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
    stack = _stack_of(model_or_layers, input_length, input_shape)
    diagram = _layout_stack(stack, output, title, max_steps)
    if animate:
        frames = [n.index for n in diagram.rows[-1].nodes if not n.padding]
        diagrams = [_layout_stack(stack, t, title, max_steps, diagram.window) for t in frames]
        _render([diagrams], path)
        return replace(diagram, frames=tuple(frames))
    _render([[diagram]], path)
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
    titles = list(titles) if titles is not None else [None, None]
    if len(titles) != 2:
        raise ValueError(f"titles: expected two, got {len(titles)}")
    diagrams = tuple(
        _layout_stack(_stack_of(m, input_length, input_shape), output, t, max_steps) for m, t in zip((a, b), titles)
    )
    _render([[d] for d in diagrams], path)
    return diagrams[0], diagrams[1]


def _layout_stack(
    stack: _Stack | _Graph, output: int | None, title: str | None, max_steps: int, window: tuple[int, int] | None = None
) -> Diagram:
    if isinstance(stack, _Graph):
        return graph_layout(
            stack.field, output, name=stack.name, details=stack.details, title=title, max_steps=max_steps, window=window
        )
    diagram = layout(
        stack.layers,
        stack.input_length,
        output,
        name=stack.name,
        names=stack.names,
        title=title,
        max_steps=max_steps,
        window=window,
    )
    if stack.notes:
        diagram = replace(diagram, title="\n".join([diagram.title, *stack.notes]), notes=diagram.notes + stack.notes)
    return diagram


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


def _render(panels: list[list[Diagram]], path: Path) -> None:
    """Draw panels side by side (each a list of frames, all of one panel's frames share their nodes) to ``path``."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from PIL import Image  # noqa: F401 - checked here, used for GIFs
    except ImportError as error:
        raise ImportError(f"drawing needs matplotlib and Pillow: pip install matplotlib pillow ({error})") from None

    n_rows = max(len(frames[0].rows) for frames in panels)
    widths = [_data_width(frames[0]) + _label_steps(frames[0]) for frames in panels]
    head = 0.45 + 0.2 * max(d.title.count("\n") for frames in panels for d in frames)
    height = INCHES_PER_ROW * (n_rows - 1) + BOTTOM_INCHES + head
    width = sum(widths) * INCHES_PER_STEP + 0.3 * (len(panels) + 1)
    figure = Figure(figsize=(width, height), facecolor="white")
    FigureCanvasAgg(figure)
    axes, left = [], 0.3
    for frames, w in zip(panels, widths):
        ax = figure.add_axes((left / width, 0.0, w * INCHES_PER_STEP / width, 1.0))
        left += w * INCHES_PER_STEP + 0.3
        ax.set_axis_off()
        ax.set_xlim(_x_range(frames[0])[0] - _label_steps(frames[0]), _x_range(frames[0])[1])
        ax.set_ylim(-BOTTOM_INCHES / INCHES_PER_ROW, n_rows - 1 + head / INCHES_PER_ROW)
        _draw_base(ax, frames[0])
        axes.append(ax)
    _legend(figure)
    if path.suffix.lower() != ".gif":
        import matplotlib

        for ax, frames in zip(axes, panels):
            _draw_highlight(ax, frames[0])
        # no date or version in the file and fixed SVG ids: regenerated images change only when the drawing does
        metadata = {"Date": None} if path.suffix.lower() == ".svg" else {"Software": None}
        with matplotlib.rc_context({"svg.hashsalt": "dilated"}):
            figure.savefig(path, dpi=110, metadata=metadata)
        return
    _write_gif(figure, axes, panels, path)


def _write_gif(figure: Any, axes: list[Any], panels: list[list[Diagram]], path: Path) -> None:
    from PIL import Image

    figure.set_dpi(90)
    n_frames = max(len(frames) for frames in panels)
    images = []
    for k in range(n_frames):
        artists = [_draw_highlight(ax, frames[min(k, len(frames) - 1)]) for ax, frames in zip(axes, panels)]
        figure.canvas.draw()
        images.append(
            Image.frombuffer("RGBA", figure.canvas.get_width_height(), figure.canvas.buffer_rgba()).convert("RGB")
        )
        for artist in (a for group in artists for a in group):
            artist.remove()
    palette = images[-1].quantize(colors=32, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    frames = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    durations = [450] * len(frames)
    durations[-1] = 1800
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)


def _x_range(diagram: Diagram) -> tuple[float, float]:
    xs = [n.x for row in diagram.rows for n in row.nodes]
    return min(xs) - 1.0, max(xs) + 1.0


def _label_steps(diagram: Diagram) -> float:
    """Width of the row-label column, in input steps (about 0.075 in per bold 9 pt character)."""
    chars = max(
        max(len(row.label) * 0.075, *(len(line) * 0.058 for line in row.detail.split("\n"))) for row in diagram.rows
    )
    return max(LABEL_INCHES, chars + 0.45) / INCHES_PER_STEP


def _data_width(diagram: Diagram) -> float:
    lo, hi = _x_range(diagram)
    return hi - lo


def _segments(rows: Sequence[Row], edges: Sequence[Edge]) -> list[list[tuple[float, int]]]:
    return [[(rows[e.below].x(e.source), e.below), (rows[e.row].x(e.target), e.row)] for e in edges]


def _draw_base(ax: Any, diagram: Diagram) -> None:
    """Everything that does not depend on the highlighted output: grey edges and nodes, row labels."""
    from matplotlib.collections import LineCollection

    rows = diagram.rows
    ax.add_collection(LineCollection(_segments(rows, diagram.edges), colors=EDGE, linewidths=0.7, zorder=1))
    real = [(n.x, n.row) for row in rows for n in row.nodes if not n.padding]
    pads = [(n.x, n.row) for row in rows for n in row.nodes if n.padding]
    if real:
        ax.scatter(*zip(*real), s=NODE_SIZE, c=NODE, edgecolors=NODE_EDGE, linewidths=0.8, zorder=2)
    if pads:
        ax.scatter(
            *zip(*pads),
            s=PADDING_SIZE,
            c="white",
            edgecolors=PADDING_EDGE,
            linewidths=0.9,
            linestyle=(0, (2, 1.5)),
            zorder=2,
        )
    left = ax.get_xlim()[0] + 0.3
    for r, row in enumerate(rows):
        ax.text(left, r + 0.14, row.label, ha="left", va="bottom", fontsize=9, fontweight="bold", color=TEXT)
        detail = row.detail or f"T={row.length}"
        ax.text(left, r + 0.1, detail, ha="left", va="top", fontsize=7.5, color=MUTED, linespacing=1.25)
    # input step numbers at the ends of the input row, so a windowed diagram says where it is
    inputs = [n for n in rows[0].nodes if not n.padding]
    for node in (inputs[0], inputs[-1]) if len(inputs) > 1 else inputs[:1]:
        ax.text(node.x, -0.32, f"t={node.index}", ha="center", va="top", fontsize=7, color=MUTED)


def _draw_highlight(ax: Any, diagram: Diagram) -> list[Any]:
    """The chosen output's tree, its receptive field on the input row and the title; returns the artists."""
    from matplotlib.collections import LineCollection
    from matplotlib.patches import FancyBboxPatch

    rows, artists = diagram.rows, []
    first, last = diagram.field
    lo, hi = diagram.window
    drawn = (max(first, lo), min(last, hi))  # the part of the field inside the window
    y = -0.72
    if drawn[0] <= drawn[1]:
        band = FancyBboxPatch(
            (drawn[0] - 0.42, -0.3),
            drawn[1] - drawn[0] + 0.84,
            0.6,
            boxstyle="round,pad=0,rounding_size=0.25",
            facecolor=FIELD_BAND,
            edgecolor=HIGHLIGHT,
            linewidth=0.8,
            linestyle=(0, (3, 2)),
            zorder=0,
        )
        artists.append(ax.add_patch(band))
        ticks = (0.12 if first >= lo else 0.0, 0.12 if last <= hi else 0.0)  # open where the field goes on
        artists += ax.plot(
            [drawn[0] - 0.4, drawn[0] - 0.4, drawn[1] + 0.4, drawn[1] + 0.4],
            [y + ticks[0], y, y, y + ticks[1]],
            color=HIGHLIGHT,
            linewidth=1.2,
            solid_capstyle="butt",
            zorder=3,
        )
        centre = (drawn[0] + drawn[1]) / 2
    else:
        centre = rows[-1].x(diagram.output_index)
    text, remark = _field_text(diagram)
    artists.append(
        ax.text(
            _text_x(ax, centre, len(text) * 0.4),
            y - 0.1,
            text,
            ha="center",
            va="top",
            fontsize=9,
            color=HIGHLIGHT_DARK,
            fontweight="bold",
            zorder=3,
        )
    )
    if remark:
        artists.append(
            ax.text(
                _text_x(ax, centre, len(remark) * 0.33),
                y - 0.36,
                remark,
                ha="center",
                va="top",
                fontsize=8,
                color=MUTED,
                zorder=3,
            )
        )
    lit = [e for e in diagram.edges if e.highlighted]
    styles = ["-" if 0 <= e.source < rows[e.below].length else (0, (2, 2)) for e in lit]  # dashed into padding
    if lit:
        artists.append(
            ax.add_collection(
                LineCollection(_segments(rows, lit), colors=HIGHLIGHT, linewidths=1.5, linestyles=styles, zorder=3)
            )
        )
    real_nodes = [(n.x, n.row) for row in rows for n in row.nodes if n.highlighted and not n.padding]
    pad_nodes = [(n.x, n.row) for row in rows for n in row.nodes if n.highlighted and n.padding]
    if real_nodes:
        artists.append(
            ax.scatter(*zip(*real_nodes), s=NODE_SIZE, c=HIGHLIGHT, edgecolors=HIGHLIGHT_DARK, linewidths=0.9, zorder=4)
        )
    if pad_nodes:
        artists.append(
            ax.scatter(*zip(*pad_nodes), s=PADDING_SIZE, c="white", edgecolors=HIGHLIGHT, linewidths=1.2, zorder=4)
        )
    top = rows[-1].x(diagram.output_index)
    artists.append(
        ax.scatter(
            [top], [len(rows) - 1], s=150, facecolors="none", edgecolors=HIGHLIGHT_DARK, linewidths=1.4, zorder=5
        )
    )
    inch = 1 / ax.figure.get_figheight()
    artists.append(
        ax.text(
            0.5,
            1 - 0.12 * inch,
            diagram.title,
            ha="center",
            va="top",
            transform=ax.transAxes,
            fontsize=10.5,
            color=TEXT,
            linespacing=1.35,
        )
    )
    return artists


def _field_text(diagram: Diagram) -> tuple[str, str]:
    """The label under the input row: the receptive field, then what of it is padding, off-window or unread."""
    first, last = diagram.field
    real = max(0, last - first + 1)
    lo, hi = diagram.window
    drawn = max(0, min(last, hi) - max(first, lo) + 1)
    remarks = []
    in_padding = (diagram.span[1] - diagram.span[0] + 1) - real
    if in_padding > 0:
        remarks.append(f"{in_padding} of them fall in the zero padding" if real else "all in the zero padding")
    if drawn < real:
        remarks.append(f"{real - drawn} lie outside the drawn window")
    used = len(diagram.rows[0].highlighted)
    if used < drawn:
        remarks.append(f"{used} of the {drawn} input steps under the bracket are read")
    return f"receptive field = {diagram.receptive_field} steps", "; ".join(remarks)


def _text_x(ax: Any, x: float, width: float) -> float:
    """``x`` moved so that centred text about ``width`` steps wide stays inside the panel."""
    x_lo, x_hi = ax.get_xlim()
    return min(max(x, x_lo + width / 2), x_hi - width / 2)


def _legend(figure: Any) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="-",
            color=HIGHLIGHT,
            markerfacecolor=HIGHLIGHT,
            markeredgecolor=HIGHLIGHT_DARK,
            label="feeds the highlighted output",
        ),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="-",
            color=EDGE,
            markerfacecolor=NODE,
            markeredgecolor=NODE_EDGE,
            label="other steps",
        ),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="none",
            markerfacecolor="white",
            markeredgecolor=PADDING_EDGE,
            label="zero padding",
        ),
    ]
    figure.legend(handles=handles, loc="lower center", ncol=3, frameon=False, fontsize=8, bbox_to_anchor=(0.5, 0.0))


# --- the README images --------------------------------------------------------------------------------------------


def readme_images(folder: str | Path = "docs/images", input_length: int = 32) -> list[Path]:
    """Write the README's diagrams of the bundled seed stacks into ``folder``; returns the files written.

    ``seed_compare.png`` (the dilated stack beside the strided one), ``seed_dilated.gif`` (its outputs lighting
    up one after another) and ``seed_dilated.svg``. Run ``python -m dilated.diagrams docs/images``.
    """
    from dilated.targets import resolve_target

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dilated = resolve_target("seed-dilated", (2, input_length))
    strided = resolve_target("seed-strided", (2, input_length))
    written = [folder / "seed_compare.png", folder / "seed_dilated.gif", folder / "seed_dilated.svg"]
    compare(dilated, strided, path=written[0])
    draw(dilated, path=written[1], animate=True)
    draw(dilated, path=written[2])
    return written


if __name__ == "__main__":
    for written_path in readme_images(*sys.argv[1:2]):
        print(f"wrote {written_path}")
