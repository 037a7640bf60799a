"""Keras-style summary tables with receptive-field columns, for PyTorch modules (and Keras models via the adapter).

The receptive field of each row is that layer's output field over the model input, over every path, from the
dataflow analysis (:func:`dilated.analysis.receptive_field`): parallel branches (a gated unit's two convs, an
inception module) are not stacked, a residual or skip sum reads the widest of its inputs, padding and trimming
count exactly. The ``Coverage`` column says how many steps inside the field actually feed the output (the example's
dilated stack reads 13 of its 25). The total is the model output's field. Rows whose field the analysis cannot
follow are measured by the probe and marked ``*``, with a note naming the op.

The ``Time-axis op`` column shows the kernel, dilation, stride and padding of conv and pooling layers
(:func:`dilated.analysis.geometry_of`; for 2-D ones the first spatial axis is time, as in DeepLOB's
``(batch, 1, time, features)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from torch import nn

from dilated.analysis import LayerField, ReceptiveField, geometry_of, receptive_field
from dilated.geometry import Layer, format_padding
from dilated.keras_bridge import is_keras_model, keras_geometry, keras_input_shape

__all__ = [
    "SCHEMA",
    "Summary",
    "SummaryRow",
    "assemble",
    "keras_summary",
    "render",
    "summary",
]

SCHEMA = "dilated.summary/1"  # the version of Summary.to_dict(), what `dilated summary --json` prints


@dataclass(frozen=True)
class SummaryRow:
    """One layer of a summary: its output's field over the model input (see :class:`dilated.analysis.LayerField`;
    ``receptive_field`` is ``None`` for a field reaching back over every past step)."""

    name: str
    kind: str
    output_shape: tuple[int | None, ...]
    params: int
    receptive_field: int | None
    jump: int | Fraction
    start: int | None
    geometry: tuple[Layer, ...] = ()
    trainable_params: int = 0
    sees_whole_input: bool = False
    fed: int | None = None
    measured: bool = False
    at_least: bool = False  # measured, and still growing on the longest input probed

    @property
    def coverage(self) -> str:
        """``fed/field`` steps, e.g. ``13/25`` (empty for a whole-input or unbounded field)."""
        if self.sees_whole_input or self.receptive_field is None or self.fed is None:
            return ""
        return f"{self.fed}/{self.receptive_field}"

    def to_dict(self) -> dict[str, Any]:
        """The row as plain JSON data (see :meth:`Summary.to_dict`); a fractional jump is a string like ``"1/2"``."""
        return {
            "name": self.name,
            "kind": self.kind,
            "output_shape": list(self.output_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "receptive_field": self.receptive_field,
            "field": _field_text(self),
            "coverage": self.coverage,
            "jump": _json_number(self.jump),
            "start": self.start,
            "fed": self.fed,
            "sees_whole_input": self.sees_whole_input,
            "measured": self.measured,
            "at_least": self.at_least,
            "ops": [
                {
                    "kind": g.kind,
                    "kernel_size": g.kernel_size,
                    "dilation": g.dilation,
                    "stride": g.stride,
                    "padding": list(g.padding) if isinstance(g.padding, tuple) else g.padding,
                }
                for g in self.geometry
            ],
            "detail": self.detail,
        }

    @property
    def detail(self) -> str:
        """Kernel/dilation/stride/padding of the row's time-axis layers, e.g. ``k=5 d=2 causal``."""
        parts = []
        for g in self.geometry:
            text = f"k={g.kernel_size}"
            text += f" d={g.dilation}" if g.dilation > 1 else ""
            text += f" s={g.stride}" if g.stride > 1 else ""
            parts.append(f"{text} {format_padding(g.padding)}")
        return ", ".join(parts)


@dataclass
class Summary:
    """What :func:`summary` returns; ``str()`` renders the table. ``field`` is the full analysis."""

    title: str
    input_shape: tuple[int | None, ...]
    input_length: int
    layers: list[SummaryRow]
    total_params: int
    trainable_params: int
    receptive_field: int
    layout: str = "(batch, channels, time)"
    notes: list[str] = field(default_factory=list)
    field: ReceptiveField | None = None

    @property
    def geometry(self) -> list[Layer]:
        """The time-axis layers of the rows, in order."""
        return [g for row in self.layers for g in row.geometry]

    @property
    def short_input(self) -> str | None:
        """The warning for an input shorter than the receptive field (``None`` where it is long enough)."""
        if self.receptive_field <= self.input_length:
            return None
        return (
            f"WARNING: the input ({self.input_length} steps) is shorter than the receptive field "
            f"({_bound(self)}{self.receptive_field}); outputs see zero padding instead of history. Feed at least "
            f"{self.receptive_field} steps."
        )

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON data (schema :data:`SCHEMA`): the table's rows and totals, the output's jump,
        length, fed steps and causality (``true``, ``false``, ``"unknown"`` or ``null`` without a time axis)."""
        rf = self.field
        return {
            "schema": SCHEMA,
            "title": self.title,
            "input_shape": list(self.input_shape),
            "layout": self.layout,
            "input_length": self.input_length,
            "receptive_field": self.receptive_field,
            "at_least": bool(rf is not None and rf.at_least),
            "receptive_field_line": _field_line(self).strip(),
            "jump": None if rf is None else _json_number(rf.jump),
            "output_length": None if rf is None else rf.length,
            "fed": None if rf is None else rf.fed,
            "causal": None if rf is None else rf.causal,
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.total_params - self.trainable_params,
            "warning": self.short_input,
            "notes": list(self.notes),
            "layers": [row.to_dict() for row in self.layers],
        }

    def __str__(self) -> str:
        return render(self)


def _params(module: nn.Module) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def summary(model: object, input_shape: Sequence[int] | None = None, **kwargs: Any) -> Summary:
    """Summarise a PyTorch module (give ``input_shape`` without the batch axis, e.g. ``(2, 200)``) or a built
    Keras 3 model (``input_shape`` ``(channels, time)`` only for a variable-length input). Extra keyword
    arguments are passed to ``model.forward``.

    Runs one forward pass in eval mode (see :func:`dilated.analysis.receptive_field`); the model is left as it was.
    """
    if is_keras_model(model):  # checked first: on its torch backend a Keras model is also an nn.Module
        return keras_summary(model, input_shape)
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary() takes a torch.nn.Module or a Keras model, got {type(model).__name__}")
    if input_shape is None:
        raise ValueError("summary(model, input_shape): give the input shape without the batch axis, e.g. (2, 200)")
    input_shape = tuple(int(n) for n in input_shape)
    if len(input_shape) < 1 or min(input_shape) < 1:
        raise ValueError(f"input_shape must be positive sizes without the batch axis, e.g. (2, 200); got {input_shape}")
    rf = receptive_field(model, input_shape, **kwargs)

    def describe_module(row: LayerField, module: Any) -> tuple[int, int, tuple[Layer, ...]]:
        layers, _ = geometry_of(module) if module is not None else ((), "pointwise")
        return (*_params(module), layers) if module is not None else (0, 0, ())

    return assemble(type(model).__name__, (None, *input_shape), rf, describe_module, *_params(model))


Describe = Callable[[LayerField, Any], tuple[int, int, tuple[Layer, ...]]]  # (params, trainable, time-axis layers)


def assemble(
    title: str,
    input_shape: tuple[int | None, ...],
    rf: ReceptiveField,
    describe: Describe,
    total_params: int,
    trainable_params: int,
    layout: str = "(batch, channels, time)",
) -> Summary:
    """A :class:`Summary` of an analysis; ``describe`` gives a row's parameter counts and time-axis layers from
    the module (or Keras layer) it came from."""
    modules = {node.name: node.module for node in rf.graph.nodes} if rf.graph is not None else {}
    table = []
    seen: set[int] = set()
    for row in rf.layers:
        module = modules.get(row.name)
        first_call = id(module) not in seen
        seen.add(id(module))
        params, trainable, layers = describe(row, module)
        if not first_call:
            params = trainable = 0  # a shared module's parameters count once
        table.append(
            SummaryRow(
                row.name,
                row.type_name,
                row.output_shape,
                params,
                row.size,
                row.jump,
                row.start,
                layers,
                trainable,
                row.whole_input,
                row.fed,
                row.measured,
                row.at_least,
            )
        )
    total = rf.input_length if rf.whole_input or rf.past or rf.size is None else rf.size
    notes = []
    measured = next((row for row in rf.layers if row.measured), None)
    if measured is not None or rf.measured:
        reason = measured.unfollowed if measured is not None else rf.unfollowed
        notes.append(f"* measured by the probe: the analysis cannot follow {reason}")
    if rf.causality is not None:
        notes.append(rf.causality)
    return Summary(title, input_shape, rf.input_length, table, total_params, trainable_params, total, layout, notes, rf)


def _json_number(value: int | Fraction) -> int | str:
    """A jump as JSON: an int, or a fraction as a string (``"1/2"`` after an upsampling)."""
    return str(value) if isinstance(value, Fraction) and value.denominator != 1 else int(value)


def _field_text(row: SummaryRow) -> str:
    if row.sees_whole_input:
        text = "all"
    elif row.receptive_field is None:
        text = "past"
    else:
        text = (">=" if row.at_least else "") + str(row.receptive_field)
    return text + ("*" if row.measured else "")


def _jump_text(row: SummaryRow) -> str:
    if row.sees_whole_input or row.jump == 0:
        return "-"
    return str(row.jump)


def render(s: Summary) -> str:
    """A table in the style of Keras's ``model.summary()`` plus receptive-field columns."""
    headers = ("Layer (type)", "Output Shape", "Param #", "Receptive field", "Coverage", "Jump", "Time-axis op")
    body = [
        (
            f"{row.name} ({row.kind})",
            _shape_text(row.output_shape),
            f"{row.params:,}",
            _field_text(row),
            row.coverage,
            _jump_text(row),
            row.detail,
        )
        for row in s.layers
    ]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    right = {2, 3, 4, 5}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(line(headers))
    out = [
        f'Model: "{s.title}"   input {_shape_text(s.input_shape)} {s.layout}',
        rule,
        line(headers).rstrip(),
        "=" * len(rule),
    ]
    out += [line(r).rstrip() for r in body]
    out += [
        "=" * len(rule),
        f" Total params: {s.total_params:,}",
        f" Trainable params: {s.trainable_params:,}",
        f" Non-trainable params: {s.total_params - s.trainable_params:,}",
        _field_line(s),
    ]
    if s.short_input is not None:
        out.append(f" {s.short_input}")
    out += [f" {note}" for note in s.notes]
    return "\n".join(out)


def _bound(s: Summary) -> str:
    """``"at least "`` where the measured field was still growing on the longest input the probe tried."""
    return "at least " if s.field is not None and s.field.at_least else ""


def _field_line(s: Summary) -> str:
    rf = s.field
    first_past = next((row for row in s.layers if row.receptive_field is None and not row.sees_whole_input), None)
    first_whole = next((row for row in s.layers if row.sees_whole_input), None)
    first_global = first_past or first_whole
    if rf is None or first_global is None or not (rf.whole_input or rf.past or rf.size is None):
        holes = f"; {rf.fed} of them feed each output" if rf is not None and rf.holes else ""
        return f" Receptive field: {_bound(s)}{s.receptive_field} input steps (input length {s.input_length}){holes}"
    local = [
        row.receptive_field
        for row in s.layers[: s.layers.index(first_global)]
        if row.receptive_field is not None and row.jump != 0
    ]
    head = (
        f" Receptive field: {max(local)} input steps on the convolutional path; from"
        if local
        else (" Receptive field: from")
    )
    parts = []
    if first_past is not None:
        parts.append(f"{first_past.name} ({first_past.kind}) on, outputs see every past step")
    if first_whole is not None:
        parts.append(f"{first_whole.name} ({first_whole.kind}) on, the whole input ({s.input_length} steps)")
    return f"{head} {'; from '.join(parts)}"


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("None" if n is None else str(n) for n in shape) + ")"


# ---- Keras 3 models ------------------------------------------------------------------------------------------------


def _count(weights: list[Any]) -> int:
    total = 0
    for w in weights:
        size = 1
        for n in w.shape:
            size *= int(n)
        total += size
    return total


def keras_summary(model: Any, input_shape: Sequence[int] | None = None) -> Summary:
    """Summary of a built Keras 3 model whose input is ``(batch, time, channels)``; ``input_shape``
    ``(channels, time)`` fixes the length of a variable-length input (``keras.Input((None, channels))``)."""
    rf = receptive_field(model, input_shape)
    time, channels = keras_input_shape(model, input_shape)

    def describe_layer(row: LayerField, layer: Any) -> tuple[int, int, tuple[Layer, ...]]:
        if layer is None:
            return 0, 0, ()
        geometry, _ = keras_geometry(layer)
        return _count(layer.weights), _count(layer.trainable_weights), geometry

    return assemble(
        model.name,
        (None, time, channels),
        rf,
        describe_layer,
        _count(model.weights),
        _count(model.trainable_weights),
        layout="(batch, time, channels)",
    )
