"""``dilated.receptive_field``: the exact receptive field of a model and of each of its layers, from the dataflow.

    >>> rf = dilated.receptive_field(model, (1, 256))      # torch: input shape without the batch axis, time last
    >>> rf.size, rf.start, rf.jump, rf.causal, rf.coverage
    (65, -64, 1, True, 1.0)
    >>> rf.steps(255)                                      # the input steps output step 255 reads
    >>> [(row.name, row.size) for row in rf.layers]

Each row is a layer's output, its field taken over all paths from the model input (parallel branches are not
stacked). Where the analysis cannot follow an op (see :mod:`dilated.analysis._graph`), the row says which op
(``unfollowed``) and its numbers are measured by the probe (:mod:`dilated.analysis._probe`) instead
(``measured=True``); nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from torch import nn

from dilated.analysis._fields import Field
from dilated.analysis._graph import Graph, Node, Unfollowed
from dilated.analysis._probe import Probe, probe_function, probe_receptive_field, torch_probe_function
from dilated.analysis._readers import ModelReader, reader_for
from dilated.analysis._tracer import trace

UNKNOWN: Literal["unknown"] = "unknown"
Causal = bool | None | Literal["unknown"]  # None: no time axis; "unknown": measured, not followed, no look-ahead found


@dataclass(frozen=True)
class LayerField:
    """The receptive field of one tensor (a layer's output) over the model input.

    ``size`` is the span from the first to the last input step one output step reads (``None``: every past
    step, as after an RNN); ``start`` is where output step 0's field begins (negative: in the padding); ``jump``
    is input steps between neighbouring output steps (0: every step sees the same steps; a fraction after an
    upsampling); ``fed`` counts the steps inside the span that actually feed it; ``causal`` says no step reads
    an input after its own (``None``: no time axis; ``"unknown"``: the field was measured, not followed, and the
    probe found no look-ahead, which does not prove there is none); ``whole_input`` that it reads every input
    step.
    """

    name: str
    type_name: str
    output_shape: tuple[int | None, ...]
    size: int | None
    start: int | None
    jump: int | Fraction
    fed: int | None
    causal: Causal
    whole_input: bool
    past: bool = False
    measured: bool = False
    unfollowed: str | None = None
    at_least: bool = False  # measured: the field was still growing on the longest input probed
    field: Field | None = None
    axis: int | None = None

    @property
    def coverage(self) -> float | None:
        """Fed steps / field steps (1.0: no holes)."""
        return None if self.size is None or self.fed is None or not self.size else self.fed / self.size

    @property
    def holes(self) -> int | None:
        """Steps inside the field that feed nothing (the example's dilated stack: 12 of 25)."""
        return None if self.size is None or self.fed is None else self.size - self.fed

    @property
    def length(self) -> int:
        """Output steps along the time axis (1 without one)."""
        if self.axis is None:
            return 1
        steps = self.output_shape[self.axis]
        assert steps is not None, "only the batch axis has no size, and it is never the time axis"
        return steps


@dataclass(frozen=True)
class ReceptiveField(LayerField):
    """What :func:`receptive_field` returns: the model output's field (the fields of :class:`LayerField`) and
    ``layers``, one :class:`LayerField` per layer in execution order."""

    input_length: int = 0
    layers: tuple[LayerField, ...] = ()
    graph: Graph | None = None

    def steps(self, t: int = -1) -> list[int]:
        """The input steps (inside the input) that output step ``t`` reads (negative ``t`` counts from the end)."""
        if self.field is None:
            raise ValueError(
                f"the field was measured, not followed ({self.unfollowed}): use "
                "dilated.probe_receptive_field(...).steps(t)"
            )
        step = t % self.length if self.length else 0
        if self.graph is not None:
            return self.graph.steps(self.graph.output.index, step).values()
        return self.field.at(step).clip(0, self.input_length - 1).values()

    @property
    def first_noncausal(self) -> LayerField | None:
        """The first layer whose output reads an input step after its own, or ``None``."""
        return next((row for row in (*self.layers, self) if row.causal is False), None)

    @property
    def first_unknown(self) -> LayerField | None:
        """The first layer whose causality is unknown (measured, not followed, no look-ahead found), or ``None``."""
        return next((row for row in (*self.layers, self) if row.causal == UNKNOWN), None)

    @property
    def causality(self) -> str | None:
        """One line on causality where it is not plainly causal: the first layer that reads ahead, or the first
        whose causality is unknown; ``None`` for a causal model (or one without a time axis)."""
        ahead, unknown = self.first_noncausal, self.first_unknown
        if ahead is not None and (unknown is None or self._order(ahead) <= self._order(unknown)):
            return f"Not causal: from {ahead.name} ({ahead.type_name}) on, outputs read later input steps"
        if unknown is not None:
            return f"Causal: unknown (layer {unknown.name} is not followed: {unknown.unfollowed})"
        return None

    def _order(self, row: LayerField) -> int:
        return len(self.layers) if row is self else self.layers.index(row)


def _number(value: Fraction) -> int | Fraction:
    return int(value) if value.denominator == 1 else value


def describe(
    name: str, type_name: str, shape: tuple[int | None, ...], f: Field, axis: int | None, length: int
) -> LayerField:
    """The numbers of a followed field over an input of ``length`` steps."""
    if f.absolute:
        seen = f.union_of(f.period).clip(0, length - 1)
        first, size = seen.first, seen.width
        return LayerField(
            name,
            type_name,
            shape,
            size,
            first,
            0,
            seen.count(),
            None if axis is None else f.causal(),
            seen.contains_span(0, length - 1),
            False,
            field=f,
            axis=axis,
        )
    widest = f.widest
    start = f.phases[0].first
    if widest.past:
        return LayerField(
            name, type_name, shape, None, None, _number(f.rate), None, f.causal(), False, True, field=f, axis=axis
        )
    size = widest.width
    return LayerField(
        name,
        type_name,
        shape,
        size,
        start,
        _number(f.rate),
        widest.count(),
        f.causal(),
        False,
        False,
        field=f,
        axis=axis,
    )


def from_probe(
    name: str, type_name: str, shape: tuple[int | None, ...], probe: Probe, reason: str | None
) -> LayerField:
    """The numbers of a measured field (its middle output step, on the longest input the probe measured); causal
    ``False`` where the probe found a look-ahead, else ``"unknown"`` (a measurement does not prove there is none)."""
    fed = probe.widest.steps()
    return LayerField(
        name,
        type_name,
        shape,
        probe.size,
        probe.start,
        _number(probe.widest.jump),
        len(fed),
        UNKNOWN if probe.causal else probe.causal,
        probe.whole_input,
        measured=True,
        unfollowed=reason,
        axis=None if probe.axis is None else probe.axis + 1,
        at_least=probe.at_least,
    )


Measure = Callable[[Node], Probe]  # measures a node's output with the probe


def _row(graph: Graph, node: Node, measure: Measure | None) -> LayerField:
    try:
        return describe(
            node.name, node.type_name, node.output_shape, graph.field(node.index), node.axis, graph.input_length
        )
    except Unfollowed as error:
        if measure is None:
            raise
        return from_probe(node.name, node.type_name, node.output_shape, measure(node), str(error))


def torch_measure(model: nn.Module, input_shape: tuple[int, ...]) -> Measure:
    """Probe a node of a torch model's graph (one probe per module, reused)."""
    names = {m: n for n, m in model.named_modules()}
    probes: dict[str | None, Probe] = {}

    def measure(node: Node) -> Probe:
        key = None if node.module is None else names[node.module]
        if key not in probes:
            probes[key] = probe_function(torch_probe_function(model, key), input_shape)
        return probes[key]

    return measure


def receptive_field(
    model: Any, input_shape: Sequence[int] | None = None, *, probe: bool = False, **kwargs: Any
) -> ReceptiveField:
    """The exact receptive field of a torch module (``input_shape`` without the batch axis, time last, e.g.
    ``(2, 200)``) or a built Keras 3 model (``input_shape`` ``(channels, time)`` only for a variable-length
    input), from one forward pass that follows every tensor; see the module docstring.

    ``probe=True`` also measures the output's field with :func:`probe_receptive_field` and raises
    ``ValueError`` if the two differ. Extra keyword arguments go to the torch model's ``forward``.
    """
    reader = reader_for(model)
    if reader is not None:
        graph = reader.graph(model, input_shape)
        result = assemble(graph, foreign_measure(reader, model, input_shape))
    else:
        if not isinstance(model, nn.Module):
            raise TypeError(f"receptive_field() takes a torch.nn.Module or a Keras model, got {type(model).__name__}")
        if input_shape is None:
            raise ValueError(
                "receptive_field(model, input_shape): give the input shape without the batch axis, e.g. (2, 200)"
            )
        shape = tuple(int(n) for n in input_shape)
        if not shape or min(shape) < 1:
            raise ValueError(f"input_shape must be positive sizes without the batch axis, e.g. (2, 200); got {shape}")
        graph = trace(model, shape, **kwargs)
        result = assemble(graph, torch_measure(model, shape) if not kwargs else None)
    if probe:
        check_against_probe(model, result, input_shape)
    return result


def foreign_measure(reader: ModelReader, model: Any, input_shape: Sequence[int] | None) -> Measure:
    """Probe a node of another framework's model graph (the output of its layer; time on axis 1)."""
    probes: dict[str | None, Probe] = {}

    def measure(node: Node) -> Probe:
        key = None if node.module is None else node.name  # a nested model's layer: "outer.inner"
        if key not in probes:
            run, shape = reader.probe_function(model, input_shape, layer=key)
            probes[key] = probe_function(run, shape, time_axis=1)
        return probes[key]

    return measure


def assemble(graph: Graph, measure: Measure | None) -> ReceptiveField:
    """The :class:`ReceptiveField` of a traced graph; ``measure`` probes what the analysis cannot follow
    (``None``: raise :class:`Unfollowed` instead)."""
    rows = tuple(_row(graph, node, measure) for node in graph.nodes[1:-1] if not node.constant)
    out = _row(graph, graph.output, measure)
    return ReceptiveField(
        **{f: getattr(out, f) for f in LayerField.__dataclass_fields__},
        input_length=graph.input_length,
        layers=rows,
        graph=graph,
    )


def check_against_probe(model: Any, result: ReceptiveField, input_shape: Sequence[int] | None) -> Probe:
    """Measure the model output with the probe; ``ValueError`` showing both if they differ on the probe's
    reference step (the middle one; the whole output when it has no time axis)."""
    measured = probe_receptive_field(model, input_shape)
    if result.field is None:
        return measured
    if measured.axis is None:
        followed, where = result.field.union_of(result.length).clip(0, result.input_length - 1).values(), "the output"
    else:
        followed, where = result.steps(measured.reference), f"output step {measured.reference}"
    if tuple(followed) != measured.steps():
        raise ValueError(
            f"the analysis and the probe disagree on {where}: analysis reads input steps {followed}, "
            f"the probe measures {list(measured.steps())}"
        )
    return measured


def first_noncausal_layer(model: nn.Module, input_shape: Sequence[int], **kwargs: Any) -> str | None:
    """The name of the first layer whose output reads an input step later than its own (``None``: the model is
    causal); layers without a time axis (a flatten, a pooled head) do not count. Where a layer is measured rather
    than followed and the probe finds no look-ahead before it, causality is unknown: raises
    :class:`~dilated.analysis._graph.Unfollowed` naming the layer and the op (the summary's "Causal: unknown")."""
    rf = receptive_field(model, input_shape, **kwargs)
    ahead, unknown = rf.first_noncausal, rf.first_unknown
    if unknown is not None and (ahead is None or rf._order(unknown) < rf._order(ahead)):
        raise Unfollowed(f"causal: unknown, layer {unknown.name} is not followed ({unknown.unfollowed})")
    return None if ahead is None else ahead.name
