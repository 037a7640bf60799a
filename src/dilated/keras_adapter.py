"""Keras 3 adapter: loading Keras models and summarising them (conversion: :mod:`dilated.keras_convert`).

Optional dependency (``pip install "dilated[keras]"``). Keras is imported lazily; when ``KERAS_BACKEND`` is unset,
the torch backend is chosen so that no TensorFlow is needed. Keras tensors are ``(batch, time, channels)``;
``dilated`` layers are ``(batch, channels, time)``; :func:`dilated.layers.channels_first` names that conversion.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


from dilated.analysis import LayerField, receptive_field
from dilated.analysis.keras_graph import import_keras, is_keras_model, keras_input_shape
from dilated.geometry import Layer, LayerKind
from dilated.summaries import Summary, assemble

__all__ = ["import_keras", "is_keras_model", "keras_geometry", "keras_summary", "load_keras_model"]

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
