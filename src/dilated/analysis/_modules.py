"""How one module acts on the time axis: conv, pool, pointwise or global, as :mod:`dilated.geometry` layers.

The single home of "module -> time-axis geometry": the summary, the diagrams and streaming all read it from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from dilated.geometry import Layer, LayerKind, Padding

GLOBAL_MODULES = (
    nn.RNNBase,
    nn.MultiheadAttention,
    nn.Flatten,
    nn.TransformerEncoderLayer,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveMaxPool1d,
)


def _torch_padding(padding: str | int | tuple[int, ...]) -> Padding:
    if isinstance(padding, str):
        return padding
    value = padding[0] if isinstance(padding, tuple) else padding
    return int(value)


def _first(value: int | tuple[int, ...]) -> int:
    return int(value[0]) if isinstance(value, tuple) else int(value)


def geometry_of(module: nn.Module) -> tuple[tuple[Layer, ...], LayerKind]:
    """The time-axis layers of one module and its kind (``conv``, ``maxpool``, ``pointwise``, ``global``...)."""
    declared = getattr(module, "geometry", None)
    if isinstance(declared, Layer):
        return (declared,), declared.kind
    if isinstance(declared, Sequence):
        layers = tuple(declared)
        return layers, ("conv" if layers else "pointwise")
    name = type(module).__name__
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        layer = Layer(
            _first(module.kernel_size),
            _first(module.stride),
            _first(module.dilation),
            _torch_padding(module.padding),
            "conv",
            name,
            "torch",
        )
        return (layer,), "conv"
    if isinstance(module, nn.MaxPool1d | nn.MaxPool2d | nn.AvgPool1d | nn.AvgPool2d):
        kind: LayerKind = "maxpool" if isinstance(module, nn.MaxPool1d | nn.MaxPool2d) else "avgpool"
        stride = module.stride if module.stride is not None else module.kernel_size
        layer = Layer(
            _first(module.kernel_size),
            _first(stride),
            _first(getattr(module, "dilation", 1)),
            _torch_padding(module.padding),
            kind,
            name,
            "torch",
            bool(module.ceil_mode),
        )
        return (layer,), kind
    if isinstance(module, GLOBAL_MODULES):
        return (), "global"
    return (), "pointwise"
