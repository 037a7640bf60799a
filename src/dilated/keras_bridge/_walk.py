"""Dataflow receptive fields of a Keras 3 model: the functional graph walked layer by layer.

Keras is an optional dependency, imported only when a Keras model is analysed (``import_keras``), with the torch
backend unless ``KERAS_BACKEND`` says otherwise. Keras tensors are ``(batch, time, channels)``.

Every layer call of the model (its functional graph; a ``Sequential`` is one) is a
:class:`~dilated.analysis._graph.Node` whose edges are the layer's own field over its inputs, so the same
:class:`~dilated.analysis._graph.Graph` composes them as for torch. Followed: ``Conv1D`` (and its separable,
depthwise and transposed forms), 1-D pooling, ``ZeroPadding1D``, ``Cropping1D``, ``UpSampling1D``, merges
(``Add``, ``Multiply``, ``Subtract``, ``Average``, ``Maximum``, ``Minimum``, ``Concatenate`` along channels),
layers acting on each step (``Dense``, activations, dropout, normalisations over channels, ``TimeDistributed``),
global pooling and ``Flatten`` (every step), RNNs (the past; everything if bidirectional), ``MultiHeadAttention``
and ``Attention`` (every step, or the past with ``use_causal_mask=True``), ``Permute``. Any other layer is named
as unfollowed and measured by the probe.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import torch

from dilated.analysis import IDENTITY, Field, Graph, Node, Steps, Unfollowed, attention_rows, read_keys
from dilated.geometry import Layer, LayerKind, padding_amounts
from dilated.keras_bridge._adapter import import_keras, is_keras_model


def functional(model: Any) -> Any:
    """The functional graph of a built model (a ``Sequential``'s inner one)."""
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError("the Keras model is not built: give it an Input((time, channels)) or call model.build()")
    return getattr(model, "_functional", None) or model


def keras_input_shape(model: Any, input_shape: Sequence[int] | None) -> tuple[int, int]:
    """``(time, channels)`` of the Keras input; ``input_shape`` is ``(channels, time)`` as everywhere in
    ``dilated`` and is needed when the model takes any length (``keras.Input((None, channels))``)."""
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 3:
        raise ValueError(f"expected a Keras input (batch, time, channels), got {shape}")
    time, channels = shape[1], shape[2]
    if input_shape is not None:
        given = tuple(int(n) for n in input_shape)
        if len(given) != 2 or given[0] != channels or (time is not None and given[1] != time):
            raise ValueError(
                f"the Keras model takes (time, channels) = ({time}, {channels}); give --input as "
                f"CHANNELS,TIME, e.g. {channels},{time or 256}"
            )
        time = given[1]
    if time is None:
        raise ValueError(
            f"the Keras model takes any number of steps (Input((None, {channels}))): give the input "
            f"shape (channels, time), e.g. --input {channels},256"
        )
    return int(time), int(channels)


def _config_pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


Rule = tuple[int | None, dict[int, Field]]  # a layer's output time axis and its field over each input node


def _first(value: Any) -> int:
    return int(value[0]) if isinstance(value, tuple | list) else int(value)


class _Walker:
    """Builds the graph node by node; ``axes`` holds each Keras tensor's time axis."""

    def __init__(self, keras: Any, shapes: dict[int, tuple[int, ...]]) -> None:
        self.keras = keras
        self.shapes = shapes  # concrete shapes of every Keras tensor, from one run
        self.nodes: list[Node] = []
        self.source: dict[int, int] = {}  # id(Keras tensor) -> node index
        self.axes: dict[int, int | None] = {}
        self.prefix = ""  # the names of the nested models being walked, e.g. "block."

    def add(
        self,
        name: str,
        layer: Any,
        tensor: Any,
        axis: int | None,
        edges: dict[int, Field] | None,
        unfollowed: str | None = None,
    ) -> None:
        index = len(self.nodes)
        shape = self.shapes.get(id(tensor), tuple(tensor.shape))
        self.nodes.append(
            Node(
                index,
                self.prefix + name if layer is not None else name,
                type(layer).__name__ if layer is not None else "output",
                layer,
                (None, *shape[1:]),
                axis,
                edges or {},
                unfollowed,
            )
        )
        self.source[id(tensor)] = index
        self.axes[id(tensor)] = axis

    def whole(self, tensor: Any) -> Field:
        """Every step of ``tensor`` (a global op over its time axis)."""
        axis = self.axes[id(tensor)]
        if axis is None:
            return IDENTITY_ABS
        return Field.constant(Steps.span(0, self.shapes[id(tensor)][axis] - 1))

    def call(self, layer: Any, inputs: list[Any], outputs: list[Any], kwargs: dict[str, Any]) -> None:
        """One layer call: a node per output."""
        try:
            axis, edges = self.rule(layer, inputs, kwargs)
        except Unfollowed as error:
            for t in outputs:
                self.add(layer.name, layer, t, None, None, f"{layer.name} ({type(layer).__name__}): {error}")
            return
        for i, t in enumerate(outputs):
            if i == 0:
                self.add(layer.name, layer, t, axis, edges)
            else:  # RNN states, attention scores: every step of the inputs
                state_edges = {self.source[id(x)]: self.whole(x) for x in inputs if id(x) in self.source}
                self.add(f"{layer.name}[{i}]", layer, t, None, state_edges)

    def rule(self, layer: Any, inputs: list[Any], kwargs: dict[str, Any]) -> tuple[int | None, dict[int, Field]]:
        """The layer's output time axis and its field over each input node; :class:`Unfollowed` for a layer whose
        class is not Keras's own (a subclass may change ``call``) or one the analysis does not follow."""
        if not type(layer).__module__.startswith("keras."):
            raise Unfollowed(
                f"{type(layer).__name__} is not a Keras layer class (a subclass or a custom layer may change call)"
            )
        for family in (self.sliding_layer, self.global_layer, self.merge_layer, self.per_step_layer):
            found = family(layer, inputs, kwargs)
            if found is not None:
                return found
        raise Unfollowed("a layer the receptive-field analysis does not follow")

    def sliding_layer(self, layer: Any, inputs: list[Any], kwargs: dict[str, Any]) -> Rule | None:
        """Convs, transposed convs, pools, zero padding, cropping and upsampling along time."""
        k, x, config = self.keras.layers, inputs[0], layer.get_config()
        steps_axis = 2 if config.get("data_format") == "channels_first" else 1
        length = self.shapes[id(x)][steps_axis]
        if isinstance(layer, k.Conv1DTranspose):
            return self.sliding(x, steps_axis, lambda f: _transposed(f, config, length))
        if isinstance(layer, k.Conv1D | k.SeparableConv1D | k.DepthwiseConv1D):
            g = Layer(
                _first(config["kernel_size"]),
                _first(config["strides"]),
                _first(config["dilation_rate"]),
                config["padding"],
                "conv",
                layer.name,
            )
            depthwise = isinstance(layer, k.DepthwiseConv1D)
            return self.sliding(x, steps_axis, lambda f: _conv(f, g, length), mixes_channels=not depthwise)
        if isinstance(layer, k.MaxPooling1D | k.AveragePooling1D):
            pool = _first(config["pool_size"])
            stride = _first(config["strides"]) if config.get("strides") else pool
            kind: LayerKind = "maxpool" if isinstance(layer, k.MaxPooling1D) else "avgpool"
            p = Layer(pool, stride, 1, config["padding"], kind, layer.name)
            return self.sliding(x, steps_axis, lambda f: _conv(f, p, length), mixes_channels=False)
        shift = _SHIFTS.get(type(layer).__name__)
        if shift is not None:
            left = _config_pair(config[shift[0]])[0] * shift[1]
            return self.sliding(x, 1, lambda f: f.gather(1, 1, [Steps.of([left])]), mixes_channels=False)
        if isinstance(layer, k.UpSampling1D):
            size = int(config["size"])
            return self.sliding(x, 1, lambda f: f.gather(size, 1, [Steps.of([0])] * size), mixes_channels=False)
        return None

    def global_layer(self, layer: Any, inputs: list[Any], kwargs: dict[str, Any]) -> Rule | None:
        """Global pooling and flatten (every step), RNNs and attention."""
        k, x = self.keras.layers, inputs[0]
        src, axis = self.source[id(x)], self.axes[id(x)]
        if isinstance(layer, k.GlobalAveragePooling1D | k.GlobalMaxPooling1D | k.Flatten):
            return None, {src: self.whole(x)}
        if isinstance(layer, k.Bidirectional):
            return self.rnn(layer.forward_layer, x, src, axis, bidirectional=True)
        if isinstance(layer, k.RNN):
            return self.rnn(layer, x, src, axis, bidirectional=False)
        if isinstance(layer, k.MultiHeadAttention | k.Attention):
            return self.attention(layer, inputs, kwargs)
        return None

    def merge_layer(self, layer: Any, inputs: list[Any], kwargs: dict[str, Any]) -> Rule | None:
        """Concatenation along channels and elementwise merges."""
        k = self.keras.layers
        if isinstance(layer, k.Concatenate):
            out_axis = self._merged_axis(inputs)
            if out_axis is not None and layer.get_config()["axis"] % len(self.shapes[id(inputs[0])]) == out_axis:
                raise Unfollowed("a concatenation along the time axis")
            return out_axis, self._merge(inputs)
        if isinstance(layer, k.Add | k.Multiply | k.Subtract | k.Average | k.Maximum | k.Minimum):
            return self._merged_axis(inputs), self._merge(inputs)
        return None

    def per_step_layer(self, layer: Any, inputs: list[Any], kwargs: dict[str, Any]) -> Rule | None:
        """``Permute``, ``Dense`` and normalisations (every step where they act along time), per-step layers."""
        k, x, config = self.keras.layers, inputs[0], layer.get_config()
        src, axis = self.source[id(x)], self.axes[id(x)]
        same = {src: IDENTITY if axis is not None else IDENTITY_ABS}
        rank = len(self.shapes[id(x)])
        if isinstance(layer, k.Permute):
            return (None if axis is None else [0, *config["dims"]].index(axis)), same
        if isinstance(layer, k.Dense | k.EinsumDense):
            return (None, {src: self.whole(x)}) if axis == rank - 1 else (axis, same)
        if isinstance(layer, k.LayerNormalization | k.Softmax | k.UnitNormalization):
            mixed = config.get("axis", -1)
            mixed = [mixed] if isinstance(mixed, int) else list(mixed)
            return (
                (axis, {src: self.whole(x)}) if axis is not None and axis in [m % rank for m in mixed] else (axis, same)
            )
        if isinstance(layer, POINTWISE(k)):
            return axis, same
        return None

    def walk(self, fn: Any) -> None:
        """Every layer call of the functional graph ``fn``, a nested ``Sequential`` or ``Model`` walked inside (its
        layers named ``outer.inner``)."""
        for node in _nodes(fn):
            layer = node.operation
            if isinstance(layer, self.keras.layers.InputLayer):
                continue
            inputs = [t for t in node.input_tensors if id(t) in self.source]
            if not inputs:
                continue
            if is_keras_model(layer):
                self.nested(layer, inputs, list(node.outputs))
                continue
            kwargs = dict(node.arguments.kwargs) if node.arguments is not None else {}
            self.call(layer, inputs, list(node.outputs), kwargs)

    def nested(self, model: Any, inputs: list[Any], outputs: list[Any]) -> None:
        """A nested model's graph, its inputs and outputs joined to the outer tensors."""
        inner = functional(model)
        shape = self.shapes[id(inputs[0])]
        self.shapes.update(_concrete_shapes(self.keras, inner, shape[1], shape[2]))
        for mine, outer in zip(inner.inputs, inputs):
            self.alias(mine, outer)
        prefix, self.prefix = self.prefix, f"{self.prefix}{model.name}."
        try:
            self.walk(inner)
        finally:
            self.prefix = prefix
        for mine, outer in zip(inner.outputs, outputs):
            self.alias(outer, mine)

    def alias(self, tensor: Any, same: Any) -> None:
        """``tensor`` is ``same``: the same node, time axis and shape."""
        self.source[id(tensor)], self.axes[id(tensor)] = self.source[id(same)], self.axes[id(same)]
        self.shapes[id(tensor)] = self.shapes[id(same)]

    def sliding(
        self, x: Any, steps_axis: int, op: Callable[[Field], Field], mixes_channels: bool = True
    ) -> tuple[int | None, dict[int, Field]]:
        """A layer sliding along ``steps_axis``: ``op`` maps the identity to its taps."""
        src, axis = self.source[id(x)], self.axes[id(x)]
        if axis == steps_axis:
            return axis, {src: op(IDENTITY)}
        if axis is None:
            return None, {src: IDENTITY_ABS}
        if mixes_channels:  # time is on the channel axis: every output mixes it
            return None, {src: self.whole(x)}
        return axis, {src: IDENTITY}

    def rnn(
        self, layer: Any, x: Any, src: int, axis: int | None, bidirectional: bool
    ) -> tuple[int | None, dict[int, Field]]:
        config = layer.get_config()
        if config.get("go_backwards") and not bidirectional:
            raise Unfollowed("an RNN running backwards (go_backwards=True)")
        if axis != 1:
            return None, {src: self.whole(x)}
        if not config.get("return_sequences"):
            return None, {src: self.whole(x)}
        if bidirectional:
            return 1, {src: self.whole(x)}
        return 1, {src: Field(1, 1, (IDENTITY.prefix(0),))}

    def attention(self, layer: Any, inputs: list[Any], kwargs: dict[str, Any]) -> tuple[int | None, dict[int, Field]]:
        if kwargs.get("attention_mask") is not None or kwargs.get("mask") is not None:
            raise Unfollowed("an attention mask given as a tensor")
        query, keys = inputs[0], inputs[1:] or inputs[:1]
        q_len = self.shapes[id(query)][1]
        causal = bool(kwargs.get("use_causal_mask", False))
        k_len = self.shapes[id(keys[0])][1]
        allowed = np.tril(np.ones((q_len, k_len), dtype=bool)) if causal else np.ones((q_len, k_len), dtype=bool)
        rows = attention_rows(allowed)
        edges: dict[int, Field] = {}
        for t in keys:
            src, axis = self.source[id(t)], self.axes[id(t)]
            if axis not in (None, 1):
                raise Unfollowed("attention over keys whose time axis is not the sequence axis")
            f = read_keys(IDENTITY, rows, self.shapes[id(t)][1]) if axis == 1 else IDENTITY_ABS
            edges[src] = f if src not in edges else edges[src] | f
        src, axis = self.source[id(query)], self.axes[id(query)]
        own = IDENTITY if axis == 1 else IDENTITY_ABS
        if src in edges:
            try:
                edges[src] = edges[src] | own
            except ValueError:  # every key step absorbs the query's own step
                pass
        else:
            edges[src] = own
        return (1 if axis == 1 else None), edges

    def _merged_axis(self, inputs: list[Any]) -> int | None:
        axes = {self.axes[id(t)] for t in inputs} - {None}
        if len(axes) > 1:
            raise Unfollowed("a merge of tensors with time on different axes")
        return axes.pop() if axes else None

    def _merge(self, inputs: list[Any]) -> dict[int, Field]:
        edges: dict[int, Field] = {}
        for t in inputs:
            src = self.source[id(t)]
            edges[src] = IDENTITY if self.axes[id(t)] is not None else IDENTITY_ABS
        return edges


IDENTITY_ABS = Field.constant(Steps.of([0]))  # a tensor without time axis: its only "step"
_SHIFTS = {"ZeroPadding1D": ("padding", -1), "Cropping1D": ("cropping", 1)}  # config key, sign of the left shift


def POINTWISE(k: Any) -> tuple[type, ...]:  # noqa: N802 - a tuple of Keras classes, built once Keras is imported
    """Keras layers that act on each step alone."""
    names = (
        "Activation",
        "Dropout",
        "SpatialDropout1D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "BatchNormalization",
        "ReLU",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "Identity",
        "Rescaling",
        "TimeDistributed",
        "Embedding",
        "Normalization",
        "ActivityRegularization",
        "Masking",
    )
    return tuple(getattr(k, n) for n in names if hasattr(k, n))


def _conv(f: Field, geometry: Layer, length: int) -> Field:
    left, _ = padding_amounts(geometry, length)
    return f.gather(1, geometry.stride, [Steps.of(i * geometry.dilation - left for i in range(geometry.kernel_size))])


def _transposed(f: Field, config: dict[str, Any], length: int) -> Field:
    """Output ``o = i * stride - pad_left + j * dilation`` (the adjoint of a strided conv; ``"same"`` removes
    ``max(span - stride, 0) // 2`` steps on the left)."""
    k, s, d = _first(config["kernel_size"]), _first(config["strides"]), _first(config["dilation_rate"])
    span = d * (k - 1) + 1
    left = 0 if config["padding"] == "valid" else max(span - s, 0) // 2
    offsets = [Steps.of((r + left - j * d) // s for j in range(k) if (r + left - j * d) % s == 0) for r in range(s)]
    return f.gather(s, 1, offsets)


def _nodes(fn: Any) -> list[Any]:
    """The model's node calls in execution order (inputs first)."""
    return [node for depth in sorted(fn._nodes_by_depth, reverse=True) for node in fn._nodes_by_depth[depth]]


def _concrete_shapes(keras: Any, fn: Any, time: int, channels: int) -> dict[int, tuple[int, ...]]:
    """Every Keras tensor's shape for a batch of one input of ``time`` steps (one run of the model)."""
    tensors = [t for node in _nodes(fn) for t in node.outputs]
    probe = keras.Model(fn.inputs, tensors)
    values = probe([np.zeros((1, time, channels), dtype="float32")])
    values = values if isinstance(values, list | tuple) else [values]
    return {id(t): tuple(int(n) for n in v.shape) for t, v in zip(tensors, values)}


def keras_graph(model: Any, input_shape: Sequence[int] | None = None) -> Graph:
    """The dataflow :class:`~dilated.analysis._graph.Graph` of a built Keras 3 model (see the module docstring);
    ``input_shape`` is ``(channels, time)``."""
    keras = import_keras()
    fn = functional(model)
    time, channels = keras_input_shape(model, input_shape)
    walker = _Walker(keras, _concrete_shapes(keras, fn, time, channels))
    walker.add("<input>", None, fn.inputs[0], 1, {})
    walker.nodes[0].type_name = "input"
    walker.shapes[id(fn.inputs[0])] = (1, time, channels)
    walker.walk(fn)
    out = fn.outputs[0]
    walker.add(
        "<output>",
        None,
        out,
        walker.axes[id(out)],
        {walker.source[id(out)]: IDENTITY if walker.axes[id(out)] is not None else IDENTITY_ABS},
    )
    return Graph(walker.nodes, (channels, time))


def _keras_float64(keras: Any, model: Any, seed: int) -> Any:
    """A float64 clone of ``model`` with positive random weights scaled by ``1 / fan_in``."""

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        config["dtype"] = "float64"
        return type(layer).from_config(config)

    from keras.src.saving.serialization_lib import SafeModeScope  # no public scope; see below

    # the model is already in memory (not read from a file), so rebuilding its own Lambda layers runs no new code
    with SafeModeScope(False):
        shadow = keras.models.clone_model(functional(model), clone_function=clone, recursive=True)
    rng = np.random.default_rng(seed)
    for w in shadow.weights:
        shape = tuple(int(n) for n in w.shape)
        fan_in = math.prod(shape[:-1]) if len(shape) >= 2 else 10
        w.assign((0.5 + rng.random(shape)) / fan_in)
    return shadow


def keras_probe_function(
    model: Any, input_shape: Sequence[int] | None, seed: int = 0, layer: str | None = None
) -> tuple[Callable[[torch.Tensor], torch.Tensor], tuple[int, int]]:
    """The probe's view of a Keras model: a float64 function of ``(batch, time, channels)`` torch tensors (the
    output of ``layer`` if named) and the input shape ``(time, channels)``."""
    keras = import_keras()
    time, channels = keras_input_shape(model, input_shape)
    shadow = _keras_float64(keras, model, seed)
    part = _output_of(keras, shadow, layer) if layer is not None else keras.Model(shadow.inputs, shadow.outputs[0])

    def run(x: torch.Tensor) -> torch.Tensor:
        out = part([x])
        return out[0] if isinstance(out, list | tuple) else out

    return run, (time, channels)


def _output_of(keras: Any, model: Any, name: str) -> Callable[[list[Any]], Any]:
    """A function of ``model``'s inputs returning the output of its layer ``name``; a layer of a nested model is
    named ``outer.inner`` (as the graph names it), reached through the nested model's input in the outer graph."""
    fn = functional(model)
    layers = {layer.name: layer for layer in fn.layers}
    if name in layers:
        return cast(Callable[[list[Any]], Any], keras.Model(fn.inputs, layers[name].output))
    for outer, layer in layers.items():
        if is_keras_model(layer) and name.startswith(outer + "."):
            feed = keras.Model(fn.inputs, layer.input)  # the nested model's input in this graph
            rest = _output_of(keras, layer, name[len(outer) + 1 :])
            return lambda x: rest([feed(x)])
    raise ValueError(f"no layer named {name!r} in the Keras model; nested models' layers are named outer.inner")
