"""Keras 3 adapter: loading Keras models and their layers' time-axis geometry (summary: :mod:`dilated.summaries`,
conversion: :mod:`dilated.keras_bridge._convert`).

Optional dependency (``pip install "dilated[keras]"``). Keras is imported lazily; when ``KERAS_BACKEND`` is unset,
the torch backend is chosen so that no TensorFlow is needed. Keras tensors are ``(batch, time, channels)``;
``dilated`` layers are ``(batch, channels, time)``; :func:`dilated.layers.channels_first` names that conversion.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from dilated.geometry import Layer, LayerKind

GLOBAL_LAYERS = (
    "Flatten",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "LSTM",
    "GRU",
    "SimpleRNN",
    "RNN",
    "Bidirectional",
    "MultiHeadAttention",
    "Attention",
)
POOL_KINDS: dict[str, LayerKind] = {"MaxPooling1D": "maxpool", "AveragePooling1D": "avgpool"}


def import_keras() -> Any:
    """Import Keras 3, preferring its torch backend; a clear error if it is missing."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as error:
        raise ImportError('Keras 3 is needed for this: pip install "dilated[keras]"') from error
    return keras


def is_keras_model(obj: object) -> bool:
    """True for a Keras 3 ``Model``/``Sequential`` (checked without importing Keras)."""
    return any(
        cls.__module__.startswith("keras") and cls.__name__ in ("Model", "Functional", "Sequential")
        for cls in type(obj).__mro__
    )


def load_keras_model(path: str | Path) -> Any:
    """Load a ``.keras`` file with Keras's safe mode on (no arbitrary code from the file)."""
    keras = import_keras()
    try:
        return keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except TypeError as error:
        unknown = re.search(r"Could not locate class '([^']+)'", str(error))
        if unknown is None:
            raise
        raise ValueError(
            f"{path}: the model uses the custom layer class {unknown.group(1)!r}, which is not registered: import "
            f"the module that defines it (decorated with @keras.saving.register_keras_serializable()) first"
        ) from None


def keras_geometry(layer: Any) -> tuple[tuple[Layer, ...], LayerKind]:
    """Time-axis geometry of one Keras layer, with Keras semantics."""
    kind = type(layer).__name__
    config = layer.get_config()
    name = config.get("name", kind)
    if kind == "Conv1D":
        g = Layer(
            config["kernel_size"][0], config["strides"][0], config["dilation_rate"][0], config["padding"], "conv", name
        )
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
