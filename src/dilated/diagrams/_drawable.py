"""What :func:`dilated.diagrams.draw` accepts, read as something to lay out: a list of
:class:`dilated.geometry.Layer` stays a stack (:mod:`.stack_layout`); a torch module, a Keras model or a
:class:`dilated._resolve.Target` is analysed (:func:`dilated.receptive_field`) and laid out as a graph
(:mod:`.graph_layout`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from dilated._resolve import Target
from dilated.analysis import ReceptiveField, receptive_field
from dilated.diagrams._graph_layout import Details, graph_layout, keras_details, torch_details
from dilated.diagrams._parts import Diagram
from dilated.diagrams._stack_layout import layout
from dilated.geometry import Layer
from dilated.keras_bridge import is_keras_model


@dataclass(frozen=True)
class Stack:
    """A stack of time-axis layers, drawn fed ``input_length`` steps."""

    layers: list[Layer]
    input_length: int


@dataclass(frozen=True)
class Analysed:
    """A model drawn from its dataflow analysis (branches and all); ``details`` writes a node's op."""

    field: ReceptiveField
    name: str
    details: Details


def drawable(
    model_or_layers: Any, input_length: int | None = None, input_shape: Sequence[int] | None = None
) -> Stack | Analysed:
    """The time-axis layers of a list of ``Layer``s, or the analysis of a torch module, a Keras model or a
    :class:`dilated._resolve.Target`, and the input length to draw them with (``model_or_layers`` is ``Any``:
    Keras models are untyped)."""
    if isinstance(model_or_layers, Layer):
        model_or_layers = [model_or_layers]
    if isinstance(model_or_layers, Sequence) and all(isinstance(x, Layer) for x in model_or_layers):
        if input_length is None:
            if input_shape is None:
                raise ValueError("draw(layers, input_length): give the number of input steps, e.g. 32")
            input_length = int(input_shape[-1])
        return Stack(list(model_or_layers), input_length)

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
        return Analysed(rf, name or model_or_layers.name, keras_details)
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
    return Analysed(rf, name or type(model_or_layers).__name__, torch_details)


def lay_out(
    what: Stack | Analysed,
    output: int | None,
    title: str | None,
    max_steps: int,
    window: tuple[int, int] | None = None,
) -> Diagram:
    """The :class:`Diagram` of a stack or an analysed model (arguments as :func:`.stack_layout.layout`'s)."""
    if isinstance(what, Analysed):
        return graph_layout(
            what.field, output, name=what.name, details=what.details, title=title, max_steps=max_steps, window=window
        )
    return layout(what.layers, what.input_length, output, title=title, max_steps=max_steps, window=window)


def _first_channels(model: nn.Module) -> int:
    """The input channels of a torch model: the first ``in_channels`` or ``in_features`` of its modules."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):  # its in_channels is not the width of a (channels, time) input
            break
        for attribute in ("in_channels", "in_features"):
            value = getattr(module, attribute, None)
            if isinstance(value, int):
                return value
    raise ValueError("cannot tell the model's input channels: pass input_shape=(channels, time)")
