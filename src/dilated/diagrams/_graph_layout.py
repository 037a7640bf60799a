"""The diagram of any model from its dataflow analysis (:func:`dilated.receptive_field`): one row per layer that
has weights or moves time, each joined to the rows it reads, so parallel branches show side by side."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from dilated.analysis import Field, LayerField, ReceptiveField, Steps, geometry_of
from dilated.analysis import Node as TracedNode
from dilated.diagrams._parts import Diagram, DiagramNode, Edge, Row
from dilated.diagrams._stack_layout import op_text
from dilated.diagrams._window import MAX_STEPS, Window, input_window, output_index
from dilated.geometry import Layer, format_padding
from dilated.keras_bridge import keras_geometry

# The "conv k=2 d=4 causal" text of a node's module: a torch module or a Keras layer (untyped, hence Any), or
# None for the model input and output.
Details = Callable[[Any], str]


def torch_details(module: Any) -> str:
    """The time-axis ops of a torch module, e.g. ``conv k=2 d=4 causal``."""
    return _ops_text(geometry_of(module)[0]) if module is not None else ""


def keras_details(layer: Any) -> str:
    """The time-axis ops of a Keras layer, e.g. ``conv k=2 d=4 causal``."""
    return _ops_text(keras_geometry(layer)[0]) if layer is not None else ""


def _ops_text(layers: Sequence[Layer]) -> str:
    return ", ".join(f"{op_text(layer)} {format_padding(layer.padding)}" for layer in layers)


@dataclass(frozen=True)
class Drawn:
    """A node of the analysed graph drawn as a row (``node``): its output's per-step field over the model input, its
    length, and the field's size and jump (input steps between neighbouring steps)."""

    node: TracedNode
    field: Field
    length: int
    size: int
    jump: int | Fraction

    @property
    def position(self) -> tuple[float, float]:
        """``(x0, dx)``: step ``i`` sits at ``x0 + dx * i`` input steps, above its newest input (causal rows) or
        the centre of its inputs."""
        first, last = _ends(self.field.at(0))
        x0 = float(last) if self.field.causal() else (first + last) / 2
        return x0, float(self.field.rate)

    def label(self, details: Details) -> tuple[str, str]:
        """The row's label (``name: Type``) and detail (its ops, field size, jump and length)."""
        op = details(self.node.module)
        detail = (f"{op}\n" if op else "") + f"RF {self.size} · jump {self.jump} · T={self.length}"
        return f"{self.node.name}: {self.node.type_name}", detail


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
    plan = graph_plan(rf)
    input_length = rf.input_length
    top = plan.order[-1]
    index = output_index(output, top.length)
    lit = plan.lit(index)
    span = _ends(top.field.at(index))
    clipped = (max(span[0], 0), min(span[1], input_length - 1))
    window_drawn = input_window(clipped, input_length, max_steps, window)
    rows, visible = plan.rows(window_drawn, lit, details)
    causality = () if rf.causality is None else (rf.causality,)
    all_notes = (*window_drawn.notes(clipped), *plan.notes, *causality)
    head = title if title is not None else f"{name}: receptive field {top.size} steps, output t={index} highlighted"
    return Diagram(
        "\n".join([head, *all_notes]),
        rows,
        plan.edges(visible, lit),
        index,
        top.size,
        clipped,
        span,
        window_drawn.steps,
        window_drawn.windowed,
        all_notes,
    )


def graph_plan(rf: ReceptiveField) -> GraphPlan:
    """The rows a diagram of the analysed model draws, whole (no window, no output chosen): the input, then one
    row per layer that has weights or moves time, with the fields over the rows each reads (parameter-free
    per-step layers composed into the edges), up to the last layer with a per-step field."""
    graph = rf.graph
    if graph is None:
        raise ValueError("graph_layout() draws a traced model: pass it dilated.receptive_field(model, input_shape)")
    kept, notes = _kept(graph.nodes, rf.layers)
    shown = _shown(kept)
    shown_ids = {0, *(d.node.index for d in shown)}
    local = {d.node.index: dict(d.node.edges) for d in kept}
    return GraphPlan(
        [Drawn(graph.nodes[0], Field.identity(), rf.input_length, 1, 1), *shown],  # row 0: the input
        [{}, *(_through(local, d.node.index, shown_ids) for d in shown)],
        tuple(notes),
    )


def _kept(nodes: Sequence[TracedNode], layers: Sequence[LayerField]) -> tuple[list[Drawn], list[str]]:
    """The traced ``nodes`` drawn as rows, in order, up to the first one with no per-step field (and the note
    saying why the drawing stops there, if it does)."""
    by_name = {row.name: row for row in layers}
    kept: list[Drawn] = []
    drawn_ids = {0}
    notes = []
    for node in nodes[1:-1]:
        row = by_name.get(node.name)
        if node.constant or row is None:
            continue
        drawn = _drawable(node, row, drawn_ids)
        if drawn is None:
            what = "is measured, not followed" if row.field is None else "reads every step"
            notes.append(f"stops at {node.name} ({node.type_name}), which {what}")
            break
        kept.append(drawn)
        drawn_ids.add(node.index)
    if not kept:
        raise ValueError("nothing to draw: the model has no layer with a per-step receptive field")
    return kept, notes


def _shown(kept: list[Drawn]) -> list[Drawn]:
    """The rows worth a line of their own: the last, and those with weights, that move time or join branches."""
    return [
        d
        for d in kept
        if d is kept[-1]
        or _params(d.node.module)
        or any(e != Field.identity() for e in d.node.edges.values())
        or len(d.node.edges) > 1
    ]


@dataclass(frozen=True)
class GraphPlan:
    """The rows drawn (row 0: the input) and, per row, the fields over the nodes it reads (node index -> field;
    none for the input); ``notes`` says where the drawing stops early, if it does."""

    order: list[Drawn]
    edges_of: list[dict[int, Field]]
    notes: tuple[str, ...] = ()

    @property
    def row_of(self) -> dict[int, int]:
        return {d.node.index: r for r, d in enumerate(self.order)}

    def _links(self) -> list[tuple[int, int, Field]]:
        """``(row, row it reads, field)`` for every edge, top rows' order kept."""
        row_of = self.row_of
        return [(r, row_of[source], e) for r in range(1, len(self.order)) for source, e in self.edges_of[r].items()]

    def lit(self, index: int) -> list[set[int]]:
        """Per row, the steps that feed output ``index`` of the top row."""
        lit: list[set[int]] = [set() for _ in self.order]
        lit[-1] = {index}
        row_of = self.row_of
        for r in range(len(self.order) - 1, 0, -1):
            for source, e in self.edges_of[r].items():
                for t in lit[r]:
                    if 0 <= t < self.order[r].length:
                        lit[row_of[source]].update(e.at(t).values())
        return lit

    def reads(self) -> list[tuple[int, int]]:
        """Per row, the lowest and highest step the rows above read (``(0, -1)`` where none)."""
        reads: list[tuple[int, int]] = [(0, -1) for _ in self.order]
        for r, below, e in self._links():
            for t in (0, self.order[r].length - 1):
                first, last = _ends(e.at(t))
                low, high = reads[below]
                reads[below] = (min(low, first), max(high, last))
        return reads

    def rows(self, window: Window, lit: list[set[int]], details: Details) -> tuple[tuple[Row, ...], list[range]]:
        """The drawn rows, with their padding and the steps inside ``window``, and those steps per row."""
        reads = self.reads()
        rows: list[Row] = []
        visible: list[range] = []
        for r, d in enumerate(self.order):
            pad_left = max(0, -reads[r][0])
            pad_right = max(0, reads[r][1] - d.length + 1) if r < len(self.order) - 1 else 0
            x0, dx = d.position
            seen = window.visible(x0, dx, -pad_left, d.length + pad_right - 1)
            visible.append(seen)
            nodes = tuple(DiagramNode(r, i, x0 + dx * i, not 0 <= i < d.length, i in lit[r]) for i in seen)
            label, detail = d.label(details) if r else ("input", "")
            rows.append(Row(label, detail, d.length, d.size, d.jump, pad_left, pad_right, x0, dx, nodes))
        return tuple(rows), visible

    def edges(self, visible: list[range], lit: list[set[int]]) -> tuple[Edge, ...]:
        """The edges between visible steps (from real steps of the row above), lit where they feed the output."""
        edges = []
        for r, below, e in self._links():
            for target in visible[r]:
                if not 0 <= target < self.order[r].length:
                    continue
                for step in e.at(target).values():
                    if step in visible[below]:
                        edges.append(Edge(r, step, target, target in lit[r], below))
        return tuple(edges)


def _drawable(node: TracedNode, row: LayerField, drawn: set[int]) -> Drawn | None:
    """``node`` as a row, or ``None`` where the drawing stops: its field is measured rather than followed, it
    reads every step (or every past one), it has no time axis, or it reads a node not drawn (of indices
    ``drawn``)."""
    length, size = node.length, row.size
    if row.field is None or row.field.absolute or row.past or size is None or length is None:
        return None
    if any(source not in drawn for source in node.edges):
        return None
    return Drawn(node, row.field, length, size, row.jump)


def _params(module: Any) -> int:
    """Parameters of a torch module or a Keras layer (0 for None: the model input and output)."""
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


def _ends(steps: Steps) -> tuple[int, int]:
    """The first and last step of a set a drawn step reads (finite and not empty: the rows drawn read back a
    bounded span, and padding is read as steps outside the input)."""
    first, last = steps.first, steps.last
    if first is None or last is None:
        raise ValueError(f"cannot draw a step that reads {'every past step' if steps.past else 'no step'}")
    return first, last
