"""The diagram of a stack of :class:`dilated.geometry.Layer` (pure Python, from :mod:`dilated.geometry`): one row
per layer output, each output placed under the inputs it reads, padding drawn as the zeros each layer adds."""

from __future__ import annotations

from collections.abc import Sequence

from dilated.diagrams._parts import Diagram, DiagramNode, Edge, Row
from dilated.diagrams._window import MAX_STEPS, input_window, output_index
from dilated.geometry import Layer, LayerGeometry, format_padding, stack_geometry


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
    geometry = stack_geometry(layers, input_length)
    index = output_index(output, geometry[-1].output_length)
    span = geometry[-1].field(index)
    field = (max(span[0], 0), min(span[1], input_length - 1))
    shown = input_window(field, input_length, max_steps, window)

    tree = _tree(geometry, index)
    placement = _placement(geometry)
    lengths = [input_length] + [g.output_length for g in geometry]
    pads = [(g.pad_left, g.pad_right) for g in geometry] + [(0, 0)]
    labels = [("input", "")] + [
        _labels(g, names[i] if names else layer_name(g.layer, i)) for i, g in enumerate(geometry)
    ]
    fields = [1] + [g.receptive_field for g in geometry]
    jumps = [1] + [g.jump for g in geometry]

    rows: list[Row] = []
    visible: list[range] = []
    for r, (length, (pad_left, pad_right), (x0, dx)) in enumerate(zip(lengths, pads, placement)):
        steps = shown.visible(x0, dx, -pad_left, length + pad_right - 1)
        visible.append(steps)
        nodes = tuple(DiagramNode(r, i, x0 + dx * i, not 0 <= i < length, i in tree[r]) for i in steps)
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

    notes = shown.notes(field)
    receptive = geometry[-1].receptive_field
    head = title if title is not None else (f"{name}: receptive field {receptive} steps, output t={index} highlighted")
    full_title = "\n".join([head, *notes])
    return Diagram(
        full_title, tuple(rows), tuple(edges), index, receptive, field, span, shown.steps, shown.windowed, tuple(notes)
    )


def op_text(layer: Layer) -> str:
    """What a layer does to the time axis, e.g. ``conv k=2 d=4 s=2`` (the padding is the caller's to add)."""
    text = f"{layer.kind} k={layer.kernel_size}" + (f" d={layer.dilation}" if layer.dilation > 1 else "")
    return text + (f" s={layer.stride}" if layer.stride > 1 else "")


def layer_name(layer: Layer, index: int) -> str:
    """The row label of layer ``index`` of a stack: its name, or ``layer N`` for an unnamed one."""
    return f"layer {index + 1}" if layer.name == "layer" else layer.name


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


def _labels(g: LayerGeometry, name: str) -> tuple[str, str]:
    layer = g.layer
    if layer.kind == "global":
        return name, "global: reads every step"
    op = "pointwise" if layer.kind == "pointwise" else op_text(layer)
    if layer.kind != "pointwise" and (layer.kernel_size > 1 or g.pad_left or g.pad_right):
        op += f" {format_padding(layer.padding)}"
    return name, f"{op}\nRF {g.receptive_field} · jump {g.jump} · T={g.output_length}"
