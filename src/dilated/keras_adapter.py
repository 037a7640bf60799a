"""Keras 3 adapter: summaries of built Keras models and conversion of Keras conv stacks to ``dilated`` layers.

Optional dependency (``pip install "dilated[keras]"``). Keras is imported lazily; when ``KERAS_BACKEND`` is unset,
the torch backend is chosen so that no TensorFlow is needed. Keras tensors are ``(batch, time, channels)``;
``dilated`` layers are ``(batch, channels, time)``; :func:`dilated.layers.channels_first` names that conversion.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dilated.analysis import LayerField, receptive_field
from dilated.analysis.keras_graph import import_keras, is_keras_model, keras_input_shape
from dilated.geometry import Layer, LayerKind
from dilated.layers import AvgPool1d, Conv1d, Dense, MaxPool1d
from dilated.summaries import Summary, assemble

__all__ = ["from_keras", "from_keras_layer", "import_keras", "is_keras_model", "keras_geometry", "keras_summary",
           "load_keras_model"]

GLOBAL_LAYERS = ("Flatten", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "LSTM", "GRU", "SimpleRNN", "RNN",
                 "Bidirectional", "MultiHeadAttention", "Attention")
POOL_KINDS: dict[str, LayerKind] = {"MaxPooling1D": "maxpool", "AveragePooling1D": "avgpool"}


def load_keras_model(path: str | Path) -> Any:
    """Load a ``.keras`` file with Keras's safe mode on (no arbitrary code from the file)."""
    keras = import_keras()
    return keras.saving.load_model(str(path), compile=False, safe_mode=True)


def keras_geometry(layer: Any) -> tuple[tuple[Layer, ...], LayerKind]:
    """Time-axis geometry of one Keras layer, with Keras semantics."""
    kind = type(layer).__name__
    config = layer.get_config()
    name = config.get("name", kind)
    if kind == "Conv1D":
        g = Layer(config["kernel_size"][0], config["strides"][0], config["dilation_rate"][0], config["padding"],
                  "conv", name)
        return (g,), "conv"
    if kind in POOL_KINDS:
        pool = config["pool_size"][0]
        stride = config["strides"][0] if config.get("strides") else pool
        return (Layer(pool, stride, 1, config["padding"], POOL_KINDS[kind], name),), POOL_KINDS[kind]
    if kind == "ZeroPadding1D":
        return (Layer(1, 1, 1, tuple(config["padding"]), "conv", name),), "conv"
    if kind in GLOBAL_LAYERS:
        return (), "global"
    return (), "pointwise"


def _layers(model: Any) -> list[Any]:
    """The model's layers in order, nested models flattened."""
    flat = []
    for layer in model.layers:
        flat.extend(_layers(layer) if hasattr(layer, "layers") and is_keras_model(layer) else [layer])
    return flat


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

    return assemble(model.name, (None, time, channels), rf, describe_layer, _count(model.weights),
                    _count(model.trainable_weights), layout="(batch, time, channels)")


def _numpy(weight: Any) -> torch.Tensor:
    value = weight.numpy() if hasattr(weight, "numpy") else weight
    return torch.as_tensor(value.detach().cpu() if isinstance(value, torch.Tensor) else value)


def from_keras_layer(layer: Any) -> nn.Module:
    """A ``dilated`` module computing what one Keras layer computes, with its weights copied.

    Supported: Conv1D (linear or with a named activation), Dense, MaxPooling1D, AveragePooling1D, Activation,
    Dropout. Raises ``ValueError`` naming an unsupported layer.
    """
    kind = type(layer).__name__
    config = layer.get_config()
    if kind == "Conv1D":
        (kernel, *bias) = layer.get_weights()
        k, c_in, c_out = kernel.shape
        conv = Conv1d(c_in * config["groups"], c_out, k, config["strides"][0], config["dilation_rate"][0],
                      config["padding"], config["groups"], bias=bool(bias))
        _copy(conv, kernel, bias)
        return _with_activation(conv, config["activation"])
    if kind == "Dense":
        (kernel, *bias) = layer.get_weights()
        dense = Dense(kernel.shape[0], kernel.shape[1], bias=bool(bias))
        _copy(dense, kernel[None], bias)
        return _with_activation(dense, config["activation"])
    if kind in POOL_KINDS:
        (g,), _ = keras_geometry(layer)
        pool = MaxPool1d if kind == "MaxPooling1D" else AvgPool1d
        return pool(g.kernel_size, g.stride, g.padding)
    if kind == "Activation":
        return _with_activation(nn.Identity(), config["activation"])
    if kind in ("Dropout", "InputLayer"):
        return nn.Identity()
    raise ValueError(f"Keras layer {layer.name!r} ({kind}) has no dilated equivalent yet; supported: Conv1D, Dense, "
                     "MaxPooling1D, AveragePooling1D, Activation, Dropout")


def from_keras(model: Any) -> nn.Sequential:
    """Convert a Keras ``Sequential`` stack into an ``nn.Sequential`` of ``dilated`` layers with the same weights.

    The result takes ``(batch, channels, time)``: feed it ``channels_first(x)`` for a Keras input ``x``.
    """
    return nn.Sequential(*(from_keras_layer(layer) for layer in _layers(model)))


def _copy(module: Conv1d, kernel: Any, bias: list[Any]) -> None:
    """Keras kernel ``(k, in, out)`` -> torch ``(out, in, k)``."""
    with torch.no_grad():
        module.weight.copy_(_numpy(kernel).permute(2, 1, 0))
        if bias:
            module.bias.copy_(_numpy(bias[0]))


ACTIVATIONS = {"linear": None, "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "elu": nn.ELU,
               "gelu": nn.GELU, "selu": nn.SELU, "softplus": nn.Softplus, "silu": nn.SiLU, "swish": nn.SiLU}


def _with_activation(module: nn.Module, activation: Any) -> nn.Module:
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", str(activation))
    if name not in ACTIVATIONS:
        raise ValueError(f"Keras activation {name!r} is not supported; use one of {', '.join(ACTIVATIONS)}")
    factory = ACTIVATIONS[name]
    return module if factory is None else nn.Sequential(module, factory())
