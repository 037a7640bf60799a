"""Model config files and the targets that ``dilated summary``/``dilated draw`` accept.

A stack config (YAML, parsed with ``yaml.safe_load``: no code runs from the file)::

    name: example-dilated
    input: [2, 200]            # (channels, time), no batch axis
    layers:
      - {type: conv1d, channels: 5, kernel_size: 5, padding: causal, dilation: 2}
      - {type: conv1d, channels: 5, kernel_size: 5, padding: causal, dilation: 4}
      - {type: dense, units: 1}

Keras spellings are accepted too (``filters``, ``strides``, ``dilation_rate``, ``pool_size``). A registered model is
named instead of listing layers: ``model: translob`` with its options under ``options:``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from torch import nn

from dilated._layer_graph import LayerGraph, graph_from_config, load_graph
from dilated.keras_bridge import is_keras_model, load_keras_model
from dilated.layers import AvgPool1d, Conv1d, Dense, MaxPool1d

ALIASES = {
    "filters": "channels",
    "out_channels": "channels",
    "strides": "stride",
    "dilation_rate": "dilation",
    "pool_size": "kernel_size",
    "use_bias": "bias",
}
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


@dataclass
class Target:
    """What a target string resolved to: a torch or Keras model, its input shape (without batch) if known."""

    model: Any
    input_shape: tuple[int, ...] | None
    name: str


def _conv(
    c_in: int,
    channels: int,
    kernel_size: int,
    stride: int = 1,
    dilation: int = 1,
    padding: str | int = "causal",
    groups: int = 1,
    bias: bool = True,
) -> tuple[nn.Module, int]:
    return Conv1d(c_in, channels, kernel_size, stride, dilation, padding, groups, bias), channels


def _dense(c_in: int, units: int, bias: bool = True) -> tuple[nn.Module, int]:
    return Dense(c_in, units, bias), units


def _pool(kind: type[MaxPool1d] | type[AvgPool1d]) -> Callable[..., tuple[nn.Module, int]]:
    def build(c_in: int, kernel_size: int, stride: int | None = None, padding: str = "valid") -> tuple[nn.Module, int]:
        return kind(kernel_size, stride, padding), c_in

    return build


def _dropout(c_in: int, rate: float = 0.0) -> tuple[nn.Module, int]:
    return nn.Dropout(rate), c_in


LAYER_BUILDERS: dict[str, Callable[..., tuple[nn.Module, int]]] = {
    "conv1d": _conv,
    "dense": _dense,
    "maxpool1d": _pool(MaxPool1d),
    "avgpool1d": _pool(AvgPool1d),
    "max_pooling1d": _pool(MaxPool1d),
    "average_pooling1d": _pool(AvgPool1d),
    "dropout": _dropout,
}


def _parameter_names(builder: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(builder).parameters)[1:]


def build_stack(layers: list[Mapping[str, Any]], in_channels: int) -> nn.Sequential:
    """An ``nn.Sequential`` of ``dilated`` layers from a list of layer specs (see the module docstring)."""
    if not isinstance(layers, list) or not layers:
        raise ValueError("'layers' must be a non-empty list of {type: ..., ...} entries")
    modules, channels = [], in_channels
    for index, spec in enumerate(layers):
        where = f"layer {index}"
        if not isinstance(spec, Mapping) or "type" not in spec:
            raise ValueError(
                f"{where}: expected a mapping with a 'type' key, e.g. {{type: conv1d, channels: 5, "
                f"kernel_size: 5}}; got {spec!r}"
            )
        options = {ALIASES.get(k, k): v for k, v in spec.items() if k != "type"}
        kind = str(spec["type"]).lower()
        activation = options.pop("activation", None)
        if kind in ACTIVATIONS:
            modules.append(ACTIVATIONS[kind]())
            continue
        if kind not in LAYER_BUILDERS:
            raise ValueError(
                f"{where}: unknown layer type {spec['type']!r}; known types: "
                f"{', '.join(sorted([*LAYER_BUILDERS, *ACTIVATIONS]))}"
            )
        builder = LAYER_BUILDERS[kind]
        valid = _parameter_names(builder)
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ValueError(
                f"{where} ({kind}): unknown option(s) {', '.join(unknown)}; valid options: "
                f"{', '.join([*valid, 'activation'])}"
            )
        try:
            module, channels = builder(channels, **options)
        except TypeError as error:
            raise ValueError(f"{where} ({kind}): {error}; valid options: {', '.join(valid)}") from None
        except ValueError as error:
            raise ValueError(f"{where} ({kind}): {error}") from None
        modules.append(module)
        if activation not in (None, "linear"):
            if activation not in ACTIVATIONS:
                raise ValueError(f"{where}: unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
            modules.append(ACTIVATIONS[activation]())
    return nn.Sequential(*modules)


def parse_input_shape(value: Any, where: str = "input") -> tuple[int, ...]:
    """``[2, 200]``, ``(2, 200)``, ``"2,200"`` or ``"2x200"`` -> ``(2, 200)``: (channels, time), no batch axis."""
    items = value.replace("x", ",").split(",") if isinstance(value, str) else value
    try:
        shape = tuple(int(n) for n in items)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected an input shape like 2,200 (channels, time); got {value!r}") from None
    if len(shape) != 2:
        raise ValueError(f"{where} needs CHANNELS,TIME, e.g. 2,200 (no batch axis); got {value!r}")
    if min(shape) < 1:
        raise ValueError(f"{where}: sizes must be positive, like 2,200 (channels, time); got {value!r}")
    return shape


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML mapping safely; ``ValueError`` naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping with 'layers:' or 'model:' at the top level")
    return data


def model_from_config(config: Mapping[str, Any], source: str = "config") -> Target:
    """Build the model a config describes: a ``layers:`` stack or a registered ``model:``."""
    input_shape = parse_input_shape(config["input"], f"{source}: input") if "input" in config else None
    if "layers" in config:
        if input_shape is None:
            raise ValueError(f"{source}: a layer stack needs 'input: [channels, time]'")
        try:
            stack = build_stack(config["layers"], input_shape[0])
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None
        return Target(stack, input_shape, str(config.get("name", source)))
    if "model" in config:
        from dilated.models import build_model, example_input_shape

        name, options = _model_spec(config, source)
        model = build_model(name, **options)
        return Target(model, input_shape or tuple(example_input_shape(name, **options)), name)
    raise ValueError(f"{source}: expected 'layers:' (a stack) or 'model:' (a registered model name)")


def _model_spec(config: Mapping[str, Any], source: str) -> tuple[str, dict[str, Any]]:
    """``model: NAME`` with ``options: {...}``, or ``model: {name: NAME, ...options}``."""
    spec, options = config["model"], config.get("options") or {}
    if isinstance(spec, Mapping):
        options = {k: v for k, v in spec.items() if k != "name"}
        spec = spec.get("name")
    if not isinstance(spec, str) or not isinstance(options, Mapping):
        raise ValueError(
            f"{source}: expected 'model: NAME' with 'options: {{...}}' (or 'model: {{name: NAME, ...}}'); "
            f"got model={config['model']!r}"
        )
    return spec, {str(k): v for k, v in options.items()}


def bundled_examples() -> dict[str, Path]:
    """Example stack configs shipped with the package, by name (e.g. ``example-dilated``)."""
    folder = resources.files("dilated") / "examples"
    paths = sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))
    return {p.stem.replace("_", "-"): p for p in paths}


def resolve_target(target: str, input_shape: tuple[int, ...] | None = None) -> Target:
    """Resolve what ``dilated summary TARGET`` names.

    In order: a ``.keras`` file, a converted model (``.safetensors`` with its ``.yaml`` graph spec, see
    :mod:`dilated._layer_graph`), a ``.yaml``/``.yml`` config file, a ``package.module:function`` returning a model
    or ``package.module:model`` naming one (``mymodel.py:model``: a Python file),
    a bundled example name (``example-dilated``, ``example-strided``) or a registered model name (``translob``).
    ``input_shape`` overrides the shape the target implies.
    """
    if target.endswith(".keras"):
        if not Path(target).is_file():
            raise ValueError(f"Keras model file not found: {target}")
        return Target(load_keras_model(target), input_shape, Path(target).stem)
    if target.endswith(".safetensors"):
        resolved = _graph_target(load_graph(target))
    elif target.endswith((".yaml", ".yml")):
        config = read_yaml(target)
        if "graph" in config:
            resolved = _graph_target(graph_from_config(config, Path(target)))
        else:
            resolved = model_from_config(config, target)
    elif ":" in target:
        resolved = _from_function(target)
    elif target in bundled_examples():
        path = bundled_examples()[target]
        resolved = model_from_config(read_yaml(path), target)
    else:
        from dilated.models import available_models

        names = available_models()
        if target not in names:
            raise ValueError(
                f"unknown target {target!r}: not a file, module:function, example "
                f"({', '.join(bundled_examples())}) or model ({', '.join(names)})"
            )
        resolved = model_from_config({"model": target}, target)
    if input_shape is not None:
        resolved.input_shape = input_shape
    return resolved


def _graph_target(graph: LayerGraph) -> Target:
    return Target(graph, graph.spec.input_shape, graph.spec.name)


def _import(name: str) -> ModuleType:
    """The module ``name`` names: a dotted module on the path, or a Python file (``path/to/mymodel.py``)."""
    if not name.endswith(".py"):
        return importlib.import_module(name)
    path = Path(name)
    spec = importlib.util.spec_from_file_location(path.stem, path) if path.is_file() else None
    if spec is None or spec.loader is None:
        raise ImportError(f"no Python file {name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # as an import would: dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module


def _from_function(target: str) -> Target:
    module_name, _, attribute = target.partition(":")
    try:
        module = _import(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import {module_name!r} from {target!r}: {error}") from None
    found = getattr(module, attribute, None)
    if isinstance(found, nn.Module) or is_keras_model(found):
        model = found  # a model instance is taken as it is
    elif callable(found):
        model = found()  # a factory
    else:
        raise ValueError(f"{target!r}: {module_name} has no model or model factory named {attribute!r}")
    shape = getattr(model, "example_input_shape", None)
    return Target(model, tuple(shape) if shape else None, attribute)
