"""Keras 3 models -> ``dilated`` graphs with the same weights and the same outputs.

:func:`from_keras` reads a ``Sequential`` or functional Keras model (or a ``.keras`` file, loaded in safe mode) node
by node, follows its dataflow (branches, shared inputs, tensors used several times, layers called twice, nested
models) and returns a :class:`dilated.LayerGraph` of ``dilated`` layers. The graph takes ``(batch, channels,
time)`` where Keras takes ``(batch, time, channels)``: ``graph(x.transpose(1, 2))`` equals
``keras_model(x).transpose(1, 2)`` (outputs without a time axis, after global pooling, are ``(batch, features)`` in
both). Because it is built from :class:`dilated.layers.Conv1d`, the result streams (``dilated.stream``), exports to
ONNX, summarises and draws like any other ``dilated`` model, and :func:`save_converted` writes it as safetensors
plus a YAML graph spec that :func:`load_converted` rebuilds without Keras.

Layers are matched by exact class (a subclass may change ``call``, so it is refused); anything not listed in
:data:`SUPPORTED` raises a one-line ``ValueError`` naming the layer and its class. keras-tcn's ``TCN`` layer
(``pip install keras-tcn``, which needs TensorFlow installed even on the torch backend) is expanded into its
residual blocks, read from its built sublayers in the order its ``call`` runs them. The conversion checks itself:
the graph is run against the Keras model on a random input and a difference raises.

Keras is an optional dependency, imported inside these functions (``pip install "dilated[keras]"``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dilated._layer_graph import ACTIVATIONS, LayerGraph, LayerGraphSpec, LayerNode, load_graph, save_graph
from dilated.keras_bridge._adapter import import_keras, is_keras_model, load_keras_model

CHECK_LENGTH = 128  # time steps of the self-check input when the Keras input length is not fixed
CHECK_TOLERANCE = 1e-4  # relative to the largest output value (and at least absolute)
KERAS_TCN = "tcn.tcn.TCN"  # keras-tcn's layer, by qualified class name (the package imports TensorFlow)

# Keras activation names -> (dilated._layer_graph activation, alpha) where the names or defaults differ
KERAS_ACTIVATIONS: dict[str, tuple[str, float | None]] = {
    "swish": ("silu", None),
    "hard_swish": ("hard_silu", None),
    "leaky_relu": ("leaky_relu", 0.2),
}
load_converted = load_graph  # what `dilated convert` wrote, rebuilt without Keras (a .yaml or .safetensors path)
save_converted = save_graph


@dataclass(frozen=True)
class Converted:
    """One Keras layer as a graph node: its type, options, weights (torch layout, keyed as the module's
    ``state_dict``) and the activation applied after it (``{"function": ..., "alpha": ...}``), if any."""

    type: str
    options: dict[str, Any]
    state: dict[str, torch.Tensor]
    activation: dict[str, Any] | None = None


def from_keras(model_or_path: Any, check: bool = True) -> LayerGraph:
    """Convert a Keras 3 model (or a ``.keras`` file) into a :class:`~dilated.LayerGraph` of ``dilated`` layers.

    Args:
        model_or_path: a built ``keras.Sequential`` / functional model, or the path of a ``.keras`` file.
        check: run both on a random ``(2, time, channels)`` input and raise ``ValueError`` if they differ.

    Returns:
        the graph in eval mode; inputs ``(batch, channels, time)``, outputs ``(batch, channels, time)`` (or
        ``(batch, features)`` after global pooling).
    """
    keras = import_keras()
    model = load_keras_model(model_or_path) if isinstance(model_or_path, str | Path) else model_or_path
    if not is_keras_model(model):
        raise TypeError(f"from_keras takes a Keras model or a .keras path, got {type(model).__name__}")
    if not getattr(model, "inputs", None) or not getattr(model, "outputs", None):
        raise ValueError(f"Keras model {model.name!r} is not built: give it a keras.Input((time, channels))")
    reader = _Reader(_converters(keras))
    spec = reader.read(model)
    graph = LayerGraph(spec)
    for name, state in reader.states.items():
        graph.layers[name].load_state_dict(state)
    if check:
        check_conversion(model, graph)
    return graph


def check_conversion(model: Any, graph: LayerGraph, seed: int = 0) -> float:
    """Largest difference between ``model`` and its conversion on a random input; ``ValueError`` if it is larger
    than :data:`CHECK_TOLERANCE` times the output scale."""
    keras = import_keras()
    rng = np.random.default_rng(seed)
    xs = [
        rng.standard_normal((2, shape[1] if len(shape) == 2 else CHECK_LENGTH, shape[0])).astype("float32")
        for shape in graph.spec.inputs.values()
    ]
    expected = model(xs if len(xs) > 1 else xs[0])
    expected = expected if isinstance(expected, list | tuple) else [expected]
    with torch.no_grad():
        actual = graph(*(torch.from_numpy(x).transpose(1, 2) for x in xs))
    actual = actual if isinstance(actual, tuple) else (actual,)
    error = 0.0
    for name, y, ref in zip(graph.spec.outputs, actual, expected):
        ref = np.asarray(keras.ops.convert_to_numpy(ref))
        mine = (y.transpose(1, 2) if y.dim() == 3 else y).numpy()
        if mine.shape != ref.shape:
            raise ValueError(f"converted output {name!r} has shape {mine.shape}, Keras gives {ref.shape}")
        diff = float(np.abs(mine - ref).max()) if ref.size else 0.0
        if not diff <= CHECK_TOLERANCE * max(1.0, float(np.abs(ref).max(initial=0.0))):
            raise ValueError(
                f"converted output {name!r} differs from the Keras model by {diff:.3g}; please report "
                "this model (its layers convert one by one, so one of them behaves differently here)"
            )
        error = max(error, diff)
    return error


def convert_file(source: str | Path, weights: str | Path) -> tuple[LayerGraph, Path, Path]:
    """Convert a ``.keras`` file and save it: returns the graph and the weights and spec paths written."""
    graph = from_keras(source)
    return (graph, *save_converted(graph, weights))


# --------------------------------------------------------------------------------------------------------------------
# Walking the Keras graph
# --------------------------------------------------------------------------------------------------------------------


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_\-]", "_", name)
    return name if re.match(r"[A-Za-z_]", name) else f"_{name}"


class _Reader:
    """Follows a Keras model's tensors back from its outputs and lists the layer calls in execution order."""

    def __init__(self, converters: dict[type, Callable[[Any, dict, list[tuple]], Converted]]) -> None:
        self.converters = converters
        self.nodes: list[LayerNode] = []
        self.states: dict[str, dict[str, torch.Tensor]] = {}
        self.used: set[str] = set()
        self.modules: dict[int, str] = {}  # id(Keras layer) -> module name
        self.names: dict[int, str] = {}  # id(Keras layer) -> name to use instead of its own (inside a TCN)
        self.calls: dict[tuple[int, int], list[str]] = {}  # (id(layer), node index) -> output tensor names

    def unique(self, base: str) -> str:
        name, n = _safe_name(base), 1
        while name in self.used:
            name, n = f"{_safe_name(base)}_{n}", n + 1
        self.used.add(name)
        return name

    def read(self, model: Any) -> LayerGraphSpec:
        inputs: dict[str, tuple[int, ...]] = {}
        for tensor in model.inputs:
            shape = tuple(tensor.shape)
            if len(shape) != 3 or shape[2] is None:
                raise ValueError(
                    f"Keras input {tensor.name!r} has shape {shape}; expected (batch, time, channels) "
                    "with a known channel count"
                )
            channels, length = int(shape[2]), shape[1]
            inputs[self.unique(tensor._keras_history.operation.name)] = (
                (channels,) if length is None else (channels, int(length))
            )
        outputs = self.model(model, list(inputs))
        return LayerGraphSpec(_safe_name(model.name), inputs, tuple(self.nodes), tuple(outputs))

    def model(self, model: Any, input_names: list[str]) -> list[str]:
        """Append the calls of ``model`` whose inputs are the tensors ``input_names``; returns its output names."""
        known = {id(t): name for t, name in zip(model.inputs, input_names)}
        return [self.tensor(t, known) for t in model.outputs]

    def tensor(self, tensor: Any, known: dict[int, str]) -> str:
        if id(tensor) in known:
            return known[id(tensor)]
        layer, node_index, tensor_index = tensor._keras_history
        key = (id(layer), node_index)
        if key not in self.calls:
            node = layer._inbound_nodes[node_index]
            inputs = [self.tensor(t, known) for t in node.input_tensors]
            if is_keras_model(layer):
                self.calls[key] = self.model(layer, inputs)
            else:
                self.calls[key] = [self.call(layer, [tuple(t.shape) for t in node.input_tensors], inputs)]
        name = self.calls[key][tensor_index]
        known[id(tensor)] = name
        return name

    def call(self, layer: Any, shapes: list[tuple], inputs: list[str]) -> str:
        if f"{type(layer).__module__}.{type(layer).__qualname__}" == KERAS_TCN:
            return self.keras_tcn(layer, shapes[0], inputs[0])
        convert = self.converters.get(type(layer))
        if convert is None:
            raise ValueError(
                f"Keras layer {layer.name!r} ({type(layer).__name__}) has no dilated equivalent; "
                f"supported: {', '.join(SUPPORTED)}"
            )
        if any(len(shape) not in (2, 3) for shape in shapes):
            raise ValueError(
                f"Keras layer {layer.name!r} ({type(layer).__name__}): input shapes {shapes}; only "
                "(batch, time, channels) and (batch, features) tensors convert"
            )
        try:
            converted = convert(layer, layer.get_config(), shapes)
        except (KeyError, ValueError) as error:
            raise ValueError(f"Keras layer {layer.name!r} ({type(layer).__name__}): {error}") from None
        if id(layer) in self.modules:  # a layer called again: its module (and weights) is shared
            module = self.modules[id(layer)]
            name = self.unique(module)
        else:
            module = name = self.unique(self.names.get(id(layer), layer.name))
            self.modules[id(layer)] = module
            self.states[module] = converted.state
        self.nodes.append(LayerNode(name, converted.type, tuple(inputs), converted.options, module))
        if converted.activation is None:
            return name
        activated = self.unique(f"{name}_{converted.activation['function']}")
        self.nodes.append(LayerNode(activated, "activation", (name,), converted.activation))
        return activated

    def keras_tcn(self, tcn: Any, shape: tuple, input_name: str) -> str:
        """keras-tcn's ``TCN``: per residual block ``y = layers(x)`` (conv, norm, activation, spatial dropout, twice,
        then an activation), ``x = activation(shortcut(x) + y)`` with a 1x1 conv shortcut where the channels change;
        the skips ``y`` summed (``use_skip_connections``), and the last step taken unless ``return_sequences``."""
        config, keras = tcn.get_config(), import_keras()
        where = f"Keras layer {tcn.name!r} (TCN)"
        if config.get("go_backwards") or config.get("use_weight_norm"):
            raise ValueError(f"{where}: go_backwards and use_weight_norm do not convert")
        name, skips, channels = input_name, [], shape[-1]
        for block in tcn.residual_blocks:  # one Keras model per block: the blocks reuse their sublayers' names
            prefix = f"{tcn.name}_{block.name}"
            x = keras.Input((shape[1], channels))
            y = x
            for layer in block.layers:
                self.names[id(layer)] = f"{prefix}_{layer.name}"
                y = layer(y)
            shortcut = block.shape_match_conv  # a 1x1 conv, or keras-tcn's identity Lambda ("matching_identity")
            identity = isinstance(shortcut, keras.layers.Lambda) and shortcut.name == "matching_identity"
            self.names[id(shortcut)] = f"{prefix}_shortcut"
            self.names[id(block.final_activation)] = f"{prefix}_out"
            h = block.final_activation(keras.layers.Add(name=f"{prefix}_add")([x if identity else shortcut(x), y]))
            name, skip = self.model(keras.Model(x, [h, y]), [name])
            skips.append(skip)
            channels = block.nb_filters
        if config["use_skip_connections"] and len(skips) > 1:
            name = self.unique(f"{tcn.name}_skips")
            self.nodes.append(LayerNode(name, "add", tuple(skips)))
        elif config["use_skip_connections"]:
            name = skips[0]
        if config["return_sequences"]:
            return name
        if config["padding"] != "causal" and shape[1] is None:
            raise ValueError(
                f"{where}: padding='same' without return_sequences reads the middle step of an input "
                "of unknown length; give the Input a length"
            )
        index = -1 if config["padding"] == "causal" else int(shape[1]) // 2
        last = self.unique(f"{tcn.name}_step")
        self.nodes.append(LayerNode(last, "select_step", (name,), {"index": index}))
        return last


# --------------------------------------------------------------------------------------------------------------------
# One converter per Keras layer class
# --------------------------------------------------------------------------------------------------------------------


def _tensor(value: Any) -> torch.Tensor:
    keras = import_keras()
    return torch.from_numpy(np.array(keras.ops.convert_to_numpy(value), dtype=np.float32))


def _channels_last(config: dict) -> None:
    if config.get("data_format", "channels_last") != "channels_last":
        raise ValueError(f"data_format {config['data_format']!r}; only channels_last (batch, time, channels) converts")


def _axis(axis: int, rank: int) -> int:
    """A Keras axis of a ``(batch, time, channels)`` tensor -> the torch dim of ``(batch, channels, time)``."""
    axis %= rank
    return {0: 0, 1: 2, 2: 1}[axis] if rank == 3 else axis


def _feature_axis(config: dict, shapes: list[tuple]) -> None:
    axes = config["axis"] if isinstance(config["axis"], list | tuple) else [config["axis"]]
    if [_axis(a, len(shapes[0])) for a in axes] != [1]:
        raise ValueError(f"axis {config['axis']}; only the features axis (-1) converts")


def activation_options(value: Any) -> dict[str, Any] | None:
    """A Keras activation (its config value) as ``dilated._layer_graph`` activation options; ``None`` for linear."""
    if not isinstance(value, str):
        raise ValueError(f"activation {value!r} is not a built-in Keras activation name")
    if value == "linear":
        return None
    function, alpha = KERAS_ACTIVATIONS.get(value, (value, None))
    if function not in ACTIVATIONS:
        raise ValueError(
            f"activation {value!r} has no dilated equivalent; known: "
            f"{', '.join(sorted([*ACTIVATIONS, *KERAS_ACTIVATIONS]))}"
        )
    return {"function": function} if alpha is None else {"function": function, "alpha": alpha}


def _bias(layer: Any, config: dict) -> dict[str, torch.Tensor]:
    return {"bias": _tensor(layer.bias)} if config["use_bias"] else {}


def _conv1d(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
    _channels_last(config)
    kernel = _tensor(layer.kernel)  # (k, in / groups, out)
    options = {
        "in_channels": int(shapes[0][-1]),
        "channels": config["filters"],
        "kernel_size": config["kernel_size"][0],
        "stride": config["strides"][0],
        "dilation": config["dilation_rate"][0],
        "padding": config["padding"],
        "groups": config["groups"],
        "bias": config["use_bias"],
    }
    return Converted(
        "conv1d",
        options,
        {"weight": kernel.permute(2, 1, 0), **_bias(layer, config)},
        activation_options(config["activation"]),
    )


def _dense(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
    kernel = _tensor(layer.kernel)  # (in, units)
    rank, units = len(shapes[0]), config["units"]
    weight = kernel.T if rank == 2 else kernel.T.unsqueeze(-1)
    size = "in_features" if rank == 2 else "in_channels"
    return Converted(
        "linear" if rank == 2 else "dense",
        {size: int(kernel.shape[0]), "units": units, "bias": config["use_bias"]},
        {"weight": weight, **_bias(layer, config)},
        activation_options(config["activation"]),
    )


def _activation(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
    return Converted("activation", activation_options(config["activation"]) or {"function": "linear"}, {})


def _relu(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
    max_value, slope, threshold = config.get("max_value"), config.get("negative_slope", 0.0), config.get("threshold")
    if threshold or (max_value is not None and (max_value != 6 or slope)):
        raise ValueError(
            f"ReLU with max_value={max_value}, negative_slope={slope}, threshold={threshold}; only "
            "plain ReLU, ReLU(max_value=6) and ReLU(negative_slope=a) convert"
        )
    if max_value is not None:
        return Converted("activation", {"function": "relu6"}, {})
    return Converted("activation", {"function": "leaky_relu", "alpha": slope} if slope else {"function": "relu"}, {})


def _leaky_relu(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
    return Converted("activation", {"function": "leaky_relu", "alpha": config["negative_slope"]}, {})


def _elu(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
    return Converted("activation", {"function": "elu", "alpha": config["alpha"]}, {})


def _softmax(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
    _feature_axis(config, shapes)
    return Converted("activation", {"function": "softmax"}, {})


def _merge(op: str) -> Callable[[Any, dict, list[tuple]], Converted]:
    return lambda layer, config, shapes: Converted(op, {}, {})


def _concatenate(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
    return Converted("concatenate", {"dim": _axis(config["axis"], len(shapes[0]))}, {})


def _batch_norm(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
    _feature_axis(config, shapes)
    channels = int(shapes[0][-1])
    state = {
        "weight": _tensor(layer.gamma) if config["scale"] else torch.ones(channels),
        "bias": _tensor(layer.beta) if config["center"] else torch.zeros(channels),
        "running_mean": _tensor(layer.moving_mean),
        "running_var": _tensor(layer.moving_variance),
        "num_batches_tracked": torch.tensor(0),
    }
    return Converted("batch_norm", {"channels": channels, "eps": config["epsilon"]}, state)


def _layer_norm(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
    _feature_axis(config, shapes)
    if config.get("rms_scaling"):
        raise ValueError("rms_scaling=True; only the mean-and-variance layer norm converts")
    channels = int(shapes[0][-1])
    state = {
        "norm.weight": _tensor(layer.gamma) if config["scale"] else torch.ones(channels),
        "norm.bias": _tensor(layer.beta) if config["center"] else torch.zeros(channels),
    }
    return Converted("layer_norm", {"channels": channels, "eps": config["epsilon"]}, state)


def _dropout(kind: str) -> Callable[[Any, dict, list[tuple]], Converted]:
    return lambda layer, config, shapes: Converted(kind, {"rate": config["rate"]}, {})


def _pool(kind: str) -> Callable[[Any, dict, list[tuple]], Converted]:
    def convert(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
        _channels_last(config)
        size = config["pool_size"][0]
        stride = config["strides"][0] if config.get("strides") else size
        if kind == "avgpool1d" and config["padding"] == "same" and (stride > 1 or size % 2 == 0):
            raise ValueError(
                f"padding='same' with pool_size={size}, strides={stride} can pad one step more on the "
                "right, and Keras backends average the padded edge differently (torch repeats the edge "
                "step, TensorFlow and JAX count real steps only); use an odd pool_size with strides=1, "
                "or padding='valid'"
            )
        return Converted(kind, {"kernel_size": size, "stride": stride, "padding": config["padding"]}, {})

    return convert


def _global(kind: str) -> Callable[[Any, dict, list[tuple]], Converted]:
    def convert(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
        _channels_last(config)
        return Converted(kind, {"keepdims": bool(config.get("keepdims", False))}, {})

    return convert


def _crop(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
    left, right = config["cropping"]
    return Converted("crop", {"left": int(left), "right": int(right)}, {})


def _zero_pad(layer: Any, config: dict, shapes: list[tuple]) -> Converted:
    _channels_last(config)
    left, right = config["padding"]
    return Converted("zero_pad", {"left": int(left), "right": int(right)}, {})


SUPPORTED: dict[str, Callable[[Any, dict, list[tuple]], Converted]] = {
    "Conv1D": _conv1d,
    "Dense": _dense,
    "Activation": _activation,
    "ReLU": _relu,
    "LeakyReLU": _leaky_relu,
    "ELU": _elu,
    "Softmax": _softmax,
    "Add": _merge("add"),
    "Subtract": _merge("subtract"),
    "Multiply": _merge("multiply"),
    "Average": _merge("average"),
    "Maximum": _merge("maximum"),
    "Minimum": _merge("minimum"),
    "Concatenate": _concatenate,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "Dropout": _dropout("dropout"),
    "SpatialDropout1D": _dropout("spatial_dropout"),
    "MaxPooling1D": _pool("maxpool1d"),
    "AveragePooling1D": _pool("avgpool1d"),
    "Cropping1D": _crop,
    "ZeroPadding1D": _zero_pad,
    "GlobalAveragePooling1D": _global("global_avgpool"),
    "GlobalMaxPooling1D": _global("global_maxpool"),
}
"""Keras layer class name (in ``keras.layers``) -> converter."""


def _converters(keras: Any) -> dict[type, Callable[[Any, dict, list[tuple]], Converted]]:
    """:data:`SUPPORTED` keyed by the Keras classes themselves (exact classes: subclasses are refused)."""
    return {getattr(keras.layers, name): convert for name, convert in SUPPORTED.items()}
