"""Keras-style summary tables with receptive-field columns, for PyTorch modules (and Keras models via the adapter).

The receptive field of each row is accumulated along the time path in execution order with
:mod:`dilated.geometry`: exact for sequential stacks and for residual stacks (WaveNet, TCN), whose skip paths
never see further back than the main path. A block with parallel branches declares its own ``geometry`` (the
layers of its widest path), and a model that knows its receptive field exposes ``receptive_field``, which the
summary then reports as the total.

Time-axis geometry is read from, in order: a module's ``geometry`` attribute (a :class:`~dilated.geometry.Layer`
or a sequence of them; such a module is one row and its children are not listed), ``torch.nn`` conv/pool layers
(for 2-D ones the first spatial axis is time, as in DeepLOB's ``(batch, 1, time, features)``), modules that mix
all steps (RNNs, attention, flatten: "global"), and otherwise pointwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from dilated.analysis import geometry_of
from dilated.geometry import Layer, LayerKind, format_padding, stack_geometry


@dataclass(frozen=True)
class SummaryRow:
    """One layer of a summary. ``receptive_field``/``jump``/``start`` are in input steps (see geometry)."""

    name: str
    kind: str
    output_shape: tuple[int | None, ...]
    params: int
    receptive_field: int
    jump: int
    start: int
    geometry: tuple[Layer, ...] = ()
    trainable_params: int = 0
    sees_whole_input: bool = False

    @property
    def detail(self) -> str:
        """Kernel/dilation/stride/padding of the row's time-axis layers, e.g. ``k=5 d=2 causal``."""
        layers = self.geometry
        if len(layers) > 2 and len({(g.kernel_size, g.stride, g.padding, g.kind) for g in layers}) == 1:
            g = layers[0]  # a uniform stack: "5x k=2 d=1,2,4,8,16 causal"
            dilations = ",".join(str(layer.dilation) for layer in layers)
            stride = f" s={g.stride}" if g.stride > 1 else ""
            return f"{len(layers)}x k={g.kernel_size} d={dilations}{stride} {format_padding(g.padding)}"
        parts = []
        for g in layers:
            text = f"k={g.kernel_size}"
            text += f" d={g.dilation}" if g.dilation > 1 else ""
            text += f" s={g.stride}" if g.stride > 1 else ""
            parts.append(f"{text} {format_padding(g.padding)}")
        return ", ".join(parts)


@dataclass
class Summary:
    """What :func:`summary` returns; ``str()`` renders the table."""

    title: str
    input_shape: tuple[int | None, ...]
    input_length: int
    layers: list[SummaryRow]
    total_params: int
    trainable_params: int
    receptive_field: int
    layout: str = "(batch, channels, time)"
    notes: list[str] = field(default_factory=list)

    @property
    def geometry(self) -> list[Layer]:
        """The time-axis layers along the model's path, in order."""
        return [g for row in self.layers for g in row.geometry]

    def __str__(self) -> str:
        return render(self)


def _rows(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules listed as rows: those that declare ``geometry`` (children hidden) and the other leaves."""
    rows, hidden = [], set()
    for name, module in model.named_modules():
        if any(name.startswith(prefix + ".") for prefix in hidden):
            continue
        declares = getattr(module, "geometry", None) is not None and module is not model
        if declares or (not list(module.children()) and module is not model):
            rows.append((name, module))
            if declares:
                hidden.add(name)
    return rows


def _params(module: nn.Module) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _shape(output: object) -> tuple[int | None, ...] | None:
    if isinstance(output, torch.Tensor):
        return (None, *output.shape[1:])
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return (None, *output[0].shape[1:])
    return None


def summary(model: object, input_shape: Sequence[int] | None = None, **kwargs: object) -> Summary:
    """Summarise a PyTorch module (give ``input_shape`` without the batch axis, e.g. ``(2, 200)``) or a built
    Keras 3 model (its input shape is known). Extra keyword arguments are passed to ``model.forward``.

    Runs one forward pass on zeros of shape ``(1, *input_shape)`` in eval mode to record output shapes.
    """
    from dilated.keras_adapter import is_keras_model, keras_summary  # no Keras import happens here

    if is_keras_model(model):  # checked first: on its torch backend a Keras model is also an nn.Module
        return keras_summary(model)
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary() takes a torch.nn.Module or a Keras model, got {type(model).__name__}")
    if input_shape is None:
        raise ValueError("summary(model, input_shape): give the input shape without the batch axis, e.g. (2, 200)")
    input_shape = tuple(int(n) for n in input_shape)
    if len(input_shape) < 1 or min(input_shape) < 1:
        raise ValueError(f"input_shape must be positive sizes without the batch axis, e.g. (2, 200); got {input_shape}")
    rows = _rows(model)
    shapes: dict[int, tuple[int | None, ...] | None] = {}
    order: list[int] = []

    def record(index: int):
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if index not in shapes:
                shapes[index] = _shape(output)
                order.append(index)
        return hook

    handles = [module.register_forward_hook(record(i)) for i, (_, module) in enumerate(rows)]
    was_training = model.training
    try:
        model.eval()
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else None
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device), **kwargs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    entries = []
    for i in order:
        name, module = rows[i]
        layers, kind = geometry_of(module)
        entries.append(Entry(name, type(module).__name__, shapes[i] or (), *_params(module), layers, kind))
    declared = getattr(model, "receptive_field", None)
    return assemble(type(model).__name__, (None, *input_shape), input_shape[-1], entries, *_params(model),
                    declared if isinstance(declared, int) else None)


@dataclass(frozen=True)
class Entry:
    """A layer as seen by a framework adapter, before receptive fields are accumulated."""

    name: str
    type_name: str
    output_shape: tuple[int | None, ...]
    params: int
    trainable_params: int
    geometry: tuple[Layer, ...]
    kind: LayerKind


def assemble(title: str, input_shape: tuple[int | None, ...], input_length: int, entries: Sequence[Entry],
             total_params: int, trainable_params: int, declared_field: int | None = None,
             layout: str = "(batch, channels, time)") -> Summary:
    """Accumulate receptive fields along ``entries`` (in execution order) into a :class:`Summary`."""
    table: list[SummaryRow] = []
    chain: list[Layer] = []
    for e in entries:
        chain.extend((Layer(kind="global", name=e.name),) if e.kind == "global" else e.geometry)
        geometry = stack_geometry(chain, input_length)[-1] if chain else None
        field, jump, start = (geometry.receptive_field, geometry.jump, geometry.start) if geometry else (1, 1, 0)
        sees_all = any(layer.kind == "global" for layer in chain)
        shown = () if e.kind == "global" else e.geometry
        table.append(SummaryRow(e.name, e.type_name, e.output_shape, e.params, field, jump, start, shown,
                                e.trainable_params, sees_all))
    field = declared_field if declared_field is not None else (table[-1].receptive_field if table else 1)
    return Summary(title, input_shape, input_length, table, total_params, trainable_params, field, layout)


def render(s: Summary) -> str:
    """A table in the style of Keras's ``model.summary()`` plus receptive-field columns."""
    headers = ("Layer (type)", "Output Shape", "Param #", "Receptive field", "Jump", "Time-axis op")
    body = [
        (f"{row.name} ({row.kind})", _shape_text(row.output_shape), f"{row.params:,}",
         "all" if row.sees_whole_input else str(row.receptive_field),
         "-" if row.sees_whole_input else str(row.jump), row.detail)
        for row in s.layers
    ]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    right = {2, 3, 4}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(line(headers))
    out = [f'Model: "{s.title}"   input {_shape_text(s.input_shape)} {s.layout}', rule, line(headers), "=" * len(rule)]
    out += [line(r) for r in body]
    out += ["=" * len(rule),
            f" Total params: {s.total_params:,}",
            f" Trainable params: {s.trainable_params:,}",
            f" Non-trainable params: {s.total_params - s.trainable_params:,}",
            _field_line(s)]
    if s.receptive_field > s.input_length:
        out.append(f" WARNING: the input ({s.input_length} steps) is shorter than the receptive field "
                   f"({s.receptive_field}); outputs see zero padding instead of history. Feed at least "
                   f"{s.receptive_field} steps.")
    out += [f" {note}" for note in s.notes]
    return "\n".join(out)


def _field_line(s: Summary) -> str:
    first_global = next((row for row in s.layers if row.sees_whole_input), None)
    if first_global is None:
        return f" Receptive field: {s.receptive_field} input steps (input length {s.input_length})"
    return (f" Receptive field: {s.receptive_field} input steps on the convolutional path; from {first_global.name} "
            f"({first_global.kind}) on, outputs see the whole input ({s.input_length} steps)")


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("None" if n is None else str(n) for n in shape) + ")"
