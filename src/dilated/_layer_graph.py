"""A small serialisable dataflow graph of ``dilated`` layers: what converted Keras models are built and saved as.

:class:`LayerGraph` is an ``nn.Module`` that runs a :class:`LayerGraphSpec` (a list of nodes in execution order, each naming
its inputs) on ``(batch, channels, time)`` tensors. Tensors without a time axis (after global pooling) are
``(batch, features)``. A spec is plain data, saved as YAML (parsed with ``yaml.safe_load``: no code runs from the
file) next to a safetensors file of the weights::

    name: wavenet
    inputs: {x: [1, 64]}            # name: (channels, time); time may be left out: [1]
    outputs: [out]
    weights: wavenet.safetensors    # optional, relative to this file; without it the layers are freshly initialised
    graph:
      - {name: causal, type: conv1d, inputs: [x], in_channels: 1, channels: 16, kernel_size: 2, padding: causal}
      - {name: filter_0, type: conv1d, inputs: [causal], in_channels: 16, channels: 16, kernel_size: 2}
      - {name: tanh_0, type: activation, inputs: [filter_0], function: tanh}
      - {name: gate_0, type: multiply, inputs: [tanh_0, sigmoid_0]}
      - {name: dense_1, type: dense, inputs: [gate_0], layer: dense, in_channels: 16, units: 16}

A node's ``name`` is the tensor it produces; ``layer`` (default: ``name``) names its module, so nodes with the same
``layer`` share one module and its weights (a Keras layer called twice). The options of each ``type`` are the
arguments of its builder in :data:`NODE_TYPES`, spelled as in stack configs (:mod:`dilated._resolve`).
"""

from __future__ import annotations

import functools
import inspect
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from dilated.layers import AvgPool1d, Conv1d, Dense, MaxPool1d

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


class Exponential(nn.Module):
    """``exp(x)``, elementwise (Keras's ``exponential`` activation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x)


ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid": nn.Hardsigmoid,
    "gelu": nn.GELU,
    "gelu_tanh": functools.partial(nn.GELU, approximate="tanh"),
    "elu": nn.ELU,
    "selu": nn.SELU,
    "celu": nn.CELU,
    "softplus": nn.Softplus,
    "softsign": nn.Softsign,
    "silu": nn.SiLU,
    "hard_silu": nn.Hardswish,
    "mish": nn.Mish,
    "leaky_relu": nn.LeakyReLU,
    "hard_tanh": nn.Hardtanh,
    "tanh_shrink": nn.Tanhshrink,
    "exponential": Exponential,
    "softmax": functools.partial(nn.Softmax, dim=1),
    "log_softmax": functools.partial(nn.LogSoftmax, dim=1),
}
"""Activation names (Keras spellings) -> torch modules; ``softmax``/``log_softmax`` act over the channel axis."""


def activation(function: str, alpha: float | None = None) -> nn.Module:
    """The module for an activation name of :data:`ACTIVATIONS`; ``alpha`` is ELU's/CELU's alpha or leaky ReLU's
    negative slope."""
    if function not in ACTIVATIONS:
        raise ValueError(f"unknown activation {function!r}; known: {', '.join(sorted(ACTIVATIONS))}")
    if alpha is None:
        return ACTIVATIONS[function]()
    if function not in ("elu", "celu", "leaky_relu"):
        raise ValueError(f"activation {function!r} takes no alpha")
    return ACTIVATIONS[function](alpha)


class Merge(nn.Module):
    """Combines same-shaped tensors elementwise: ``add``, ``subtract`` (exactly two), ``multiply``, ``average``,
    ``maximum``, ``minimum`` (Keras's merge layers)."""

    OPS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "add": operator.add,
        "subtract": operator.sub,
        "multiply": operator.mul,
        "average": operator.add,
        "maximum": torch.maximum,
        "minimum": torch.minimum,
    }

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if len(xs) < 2 or (self.op == "subtract" and len(xs) != 2):
            raise ValueError(
                f"{self.op} takes {'exactly' if self.op == 'subtract' else 'at least'} 2 inputs, got {len(xs)}"
            )
        y = functools.reduce(self.OPS[self.op], xs)
        return y / len(xs) if self.op == "average" else y

    def extra_repr(self) -> str:
        return self.op


class Concatenate(nn.Module):
    """``torch.cat`` along ``dim`` (1: channels)."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class ChannelLayerNorm(nn.Module):
    """Layer normalisation over the channels of each step: ``(B, C, T) -> (B, C, T)`` (or ``(B, C) -> (B, C)``)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, -1)).transpose(1, -1)


class Crop1d(nn.Module):
    """Drops ``left`` steps from the start and ``right`` from the end of the time axis (Keras ``Cropping1D``)."""

    def __init__(self, left: int, right: int) -> None:
        super().__init__()
        self.left, self.right = left, right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T) -> (B, C, T - left - right)``."""
        if x.shape[-1] <= self.left + self.right:
            raise ValueError(
                f"Crop1d({self.left}, {self.right}): needs more than {self.left + self.right} time "
                f"steps, got {x.shape[-1]}"
            )
        return x[..., self.left : x.shape[-1] - self.right]

    def extra_repr(self) -> str:
        return f"left={self.left}, right={self.right}"


class SelectStep(nn.Module):
    """One step of the time axis: ``(B, C, T) -> (B, C)`` (``index=-1``: the last, as a TCN head reads it)."""

    def __init__(self, index: int = -1) -> None:
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.index]

    def extra_repr(self) -> str:
        return f"index={self.index}"


class _GlobalPool1d(nn.Module):
    """An adaptive pool to one step, then that step dropped unless ``keepdims``: ``(B, C, T) -> (B, C)`` or
    ``(B, C, 1)``. Mixed in before a torch adaptive pool, so that the pool stays what the analysis sees."""

    def __init__(self, keepdims: bool = False) -> None:
        super().__init__(1)  # the adaptive pool's output size
        self.keepdims = keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y if self.keepdims else y.squeeze(-1)


class GlobalAvgPool1d(_GlobalPool1d, nn.AdaptiveAvgPool1d):
    """Mean over the time axis: ``(B, C, T) -> (B, C)``, or ``(B, C, 1)`` with ``keepdims``."""


class GlobalMaxPool1d(_GlobalPool1d, nn.AdaptiveMaxPool1d):
    """Max over the time axis: ``(B, C, T) -> (B, C)``, or ``(B, C, 1)`` with ``keepdims``."""


def _conv1d(
    in_channels: int,
    channels: int,
    kernel_size: int,
    stride: int = 1,
    dilation: int = 1,
    padding: str | int | list[int] = "causal",
    groups: int = 1,
    bias: bool = True,
) -> nn.Module:
    pad: str | int | tuple[int, int] = (int(padding[0]), int(padding[1])) if isinstance(padding, list) else padding
    return Conv1d(in_channels, channels, kernel_size, stride, dilation, pad, groups, bias)


def _dense(in_channels: int, units: int, bias: bool = True) -> nn.Module:
    """Dense over the channels of every step, ``(B, C, T) -> (B, units, T)``."""
    return Dense(in_channels, units, bias)


def _linear(in_features: int, units: int, bias: bool = True) -> nn.Module:
    """Dense on a tensor without a time axis, ``(B, F) -> (B, units)``."""
    return nn.Linear(in_features, units, bias)


def _pool(kind: type[MaxPool1d] | type[AvgPool1d]) -> Callable[..., nn.Module]:
    def build(kernel_size: int, stride: int | None = None, padding: str = "valid") -> nn.Module:
        return kind(kernel_size, stride, padding)

    return build


def _global(kind: type[GlobalAvgPool1d] | type[GlobalMaxPool1d]) -> Callable[..., nn.Module]:
    def build(keepdims: bool = False) -> nn.Module:
        return kind(keepdims)

    return build


def _merge(op: str) -> Callable[[], nn.Module]:
    return lambda: Merge(op)


def _batch_norm(channels: int, eps: float = 1e-5) -> nn.Module:
    return nn.BatchNorm1d(channels, eps)


def _dropout(rate: float = 0.0) -> nn.Module:
    return nn.Dropout(rate)


def _spatial_dropout(rate: float = 0.0) -> nn.Module:
    """Drops whole channels (Keras ``SpatialDropout1D``)."""
    return nn.Dropout1d(rate)


def _zero_pad(left: int, right: int) -> nn.Module:
    return nn.ZeroPad1d((left, right))


NODE_TYPES: dict[str, Callable[..., nn.Module]] = {
    "conv1d": _conv1d,
    "dense": _dense,
    "linear": _linear,
    "activation": activation,
    **{op: _merge(op) for op in Merge.OPS},
    "concatenate": Concatenate,
    "batch_norm": _batch_norm,
    "layer_norm": ChannelLayerNorm,
    "dropout": _dropout,
    "spatial_dropout": _spatial_dropout,
    "maxpool1d": _pool(MaxPool1d),
    "avgpool1d": _pool(AvgPool1d),
    "crop": Crop1d,
    "zero_pad": _zero_pad,
    "select_step": SelectStep,
    "global_avgpool": _global(GlobalAvgPool1d),
    "global_maxpool": _global(GlobalMaxPool1d),
}
"""Node type -> builder; a node's options are its builder's arguments."""


def _options_of(builder: Callable[..., nn.Module]) -> list[str]:
    return list(inspect.signature(builder).parameters)


@dataclass(frozen=True)
class LayerNode:
    """One layer call: ``name`` (the tensor it makes), ``type`` (a key of :data:`NODE_TYPES`), the tensors it
    reads, its options, and ``layer``: the module it runs (shared between nodes that name the same one)."""

    name: str
    type: str
    inputs: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    layer: str = ""

    @property
    def module_name(self) -> str:
        return self.layer or self.name

    def to_dict(self) -> dict[str, Any]:
        """The node as a spec entry; options equal to their builder's defaults are left out."""
        data: dict[str, Any] = {"name": self.name, "type": self.type, "inputs": list(self.inputs)}
        if self.layer and self.layer != self.name:
            data["layer"] = self.layer
        defaults = {k: p.default for k, p in inspect.signature(NODE_TYPES[self.type]).parameters.items()}
        return {**data, **{k: v for k, v in self.options.items() if defaults.get(k, inspect.Parameter.empty) != v}}


@dataclass(frozen=True)
class LayerGraphSpec:
    """A whole graph: its inputs ``{name: (channels, time)}`` (time may be missing), nodes in execution order, and
    the names of its outputs."""

    name: str
    inputs: dict[str, tuple[int, ...]]
    nodes: tuple[LayerNode, ...]
    outputs: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, int] | None:
        """``(channels, time)`` of the first input when its time length is fixed, else ``None``."""
        shape = next(iter(self.inputs.values()))
        return (shape[0], shape[1]) if len(shape) == 2 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputs": {k: list(v) for k, v in self.inputs.items()},
            "outputs": list(self.outputs),
            "graph": [node.to_dict() for node in self.nodes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "graph") -> LayerGraphSpec:
        """Read and check a spec (see the module docstring); ``ValueError`` naming ``source`` and the node."""
        for key in ("inputs", "outputs", "graph"):
            if key not in data:
                raise ValueError(f"{source}: a graph spec needs '{key}:' (see dilated._layer_graph)")
        inputs = data["inputs"]
        if not isinstance(inputs, Mapping) or not inputs:
            raise ValueError(f"{source}: 'inputs' must map input names to [channels, time], e.g. {{x: [1, 64]}}")
        shapes = {str(k): tuple(int(n) for n in v) for k, v in inputs.items()}
        known = set(shapes)
        nodes = []
        for index, entry in enumerate(data["graph"] or []):
            node = _node(entry, f"{source}: graph node {index}")
            missing = [name for name in node.inputs if name not in known]
            if missing:
                raise ValueError(
                    f"{source}: node {node.name!r} reads {', '.join(map(repr, missing))}, which no "
                    "earlier node or input makes (nodes are listed in execution order)"
                )
            if node.name in known:
                raise ValueError(f"{source}: the name {node.name!r} is used twice")
            known.add(node.name)
            nodes.append(node)
        outputs = tuple(str(name) for name in data["outputs"])
        unknown = [name for name in outputs if name not in known]
        if not outputs or unknown:
            raise ValueError(f"{source}: outputs {unknown or outputs} are not tensors of the graph")
        return cls(str(data.get("name", source)), shapes, tuple(nodes), outputs)


def _node(entry: Any, where: str) -> LayerNode:
    if not isinstance(entry, Mapping) or not {"name", "type", "inputs"} <= set(entry):
        raise ValueError(f"{where}: expected {{name: ..., type: ..., inputs: [...], ...options}}, got {entry!r}")
    name, kind, layer = str(entry["name"]), str(entry["type"]), str(entry.get("layer", ""))
    for text in (name, layer or name):
        if not NAME.match(text):
            raise ValueError(f"{where}: name {text!r} must be letters, digits, '_' or '-' (no dots)")
    if kind not in NODE_TYPES:
        raise ValueError(f"{where} ({name}): unknown type {kind!r}; known types: {', '.join(sorted(NODE_TYPES))}")
    options = {k: v for k, v in entry.items() if k not in ("name", "type", "inputs", "layer")}
    valid = _options_of(NODE_TYPES[kind])
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"{where} ({name}, {kind}): unknown option(s) {', '.join(unknown)}; valid options: "
            f"{', '.join(valid) or 'none'}"
        )
    inputs = entry["inputs"]
    if not isinstance(inputs, list) or not inputs:
        raise ValueError(f"{where} ({name}): 'inputs' must be a non-empty list of tensor names")
    return LayerNode(name, kind, tuple(str(i) for i in inputs), options, layer)


class LayerGraph(nn.Module):
    """Runs a :class:`LayerGraphSpec`: ``forward(*inputs)``, each input ``(batch, channels, time)``, returns the output
    tensor (a tuple for several outputs). The modules live in ``self.layers`` under their node's ``layer`` name.

    Built in eval mode (dropout off, batch norm on its running statistics).
    """

    def __init__(self, spec: LayerGraphSpec) -> None:
        super().__init__()
        self.spec = spec
        self.layers = nn.ModuleDict()
        for node in spec.nodes:
            if node.module_name in self.layers:
                continue
            try:
                self.layers[node.module_name] = NODE_TYPES[node.type](**node.options)
            except (TypeError, ValueError) as error:
                raise ValueError(f"node {node.name!r} ({node.type}): {error}") from None
        self.eval()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.spec.inputs):
            raise ValueError(
                f"{self.spec.name}: expected {len(self.spec.inputs)} input(s) "
                f"({', '.join(self.spec.inputs)}), got {len(inputs)}"
            )
        values = dict(zip(self.spec.inputs, inputs))
        for node in self.spec.nodes:
            values[node.name] = self.layers[node.module_name](*(values[name] for name in node.inputs))
        outputs = tuple(values[name] for name in self.spec.outputs)
        return outputs[0] if len(outputs) == 1 else outputs


def save_graph(graph: LayerGraph, path: str | Path) -> tuple[Path, Path]:
    """Write ``graph``'s weights to ``path`` (``.safetensors``) and its spec to the same name with ``.yaml``
    (which names the weights file). Returns ``(weights, spec)`` paths."""
    weights = Path(path)
    if weights.suffix != ".safetensors":
        raise ValueError(f"the weights file must end in .safetensors, got {weights}")
    config = weights.with_suffix(".yaml")
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous() for k, v in graph.state_dict().items()},
        str(weights),
        metadata={"format": "dilated-graph", "spec": config.name},
    )
    config.write_text(spec_yaml(graph.spec, weights.name))
    return weights, config


def spec_yaml(spec: LayerGraphSpec, weights: str | None = None) -> str:
    """The spec as YAML, one line per node."""
    data = spec.to_dict()
    nodes = data.pop("graph")
    head = yaml.safe_dump(
        {**data, **({"weights": weights} if weights else {})}, sort_keys=False, default_flow_style=None
    )
    lines = [yaml.safe_dump(node, sort_keys=False, default_flow_style=True, width=1 << 20).strip() for node in nodes]
    return head + "graph:\n" + "".join(f"  - {line}\n" for line in lines)


def load_graph(path: str | Path) -> LayerGraph:
    """Rebuild a :class:`LayerGraph` from its spec (``.yaml``) or weights (``.safetensors``, with the spec beside it)."""
    path = Path(path)
    config = path.with_suffix(".yaml") if path.suffix == ".safetensors" else path
    if not config.is_file():
        raise ValueError(f"graph spec not found: {config}")
    data = yaml.safe_load(config.read_text())
    if not isinstance(data, Mapping):
        raise ValueError(f"{config}: expected a YAML mapping with 'graph:'")
    return graph_from_config(data, config)


def graph_from_config(data: Mapping[str, Any], source: Path) -> LayerGraph:
    """The :class:`LayerGraph` a parsed spec describes, with the weights it names (relative to ``source``) loaded."""
    graph = LayerGraph(LayerGraphSpec.from_dict(data, str(source)))
    if data.get("weights"):
        weights = source.parent / str(data["weights"])
        if not weights.is_file():
            raise ValueError(f"{source}: weights file not found: {weights}")
        state = load_file(str(weights))
        expected = graph.state_dict()
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(f"{weights} does not match {source}: missing {missing[:3]}, unexpected {unexpected[:3]}")
        for key, tensor in expected.items():
            if state[key].shape != tensor.shape:
                raise ValueError(
                    f"{weights}: {key} has shape {tuple(state[key].shape)}, the spec makes {tuple(tensor.shape)}"
                )
        graph.load_state_dict(state)
    return graph
