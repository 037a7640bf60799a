"""The stack the page's editor rebuilds: a plain chain of convs, pools and 1x1 (dense) layers with their
activations, or the reason the page shows the model read-only."""

from __future__ import annotations

from typing import Any

from dilated._resolve import ACTIVATIONS
from dilated.geometry import Layer
from dilated.summaries import Summary

_ACTIVATION_TYPES = {factory.__name__: name for name, factory in ACTIVATIONS.items()}  # ReLU -> relu (torch)


class ReadOnly(ValueError):
    """Why the page cannot rebuild a model as an editable stack (shown on the page instead of the editor)."""


def _page_padding(layer: Layer, where: str) -> str | int:
    """The layer's padding as the page spells it: ``causal``, ``same``, ``valid`` or one int for both sides."""
    padding = layer.padding
    if isinstance(padding, tuple):
        left, right = padding
        if left == right:
            return left
        if (left, right) == (layer.span - 1, 0) and layer.kind == "conv":
            return "causal"
        raise ReadOnly(
            f"{where}: the explorer edits paddings causal, same, valid or one int for both sides; "
            f"this layer pads {padding}"
        )
    if layer.ceil_mode:
        raise ReadOnly(f"{where}: the explorer follows Keras pooling, which has no ceil_mode")
    return padding


def _activation(module: Any, where: str) -> str | None:
    """The activation a Keras layer applies after its op (``None``: linear, or a torch module)."""
    function = getattr(module, "activation", None)
    name = getattr(function, "__name__", None)
    if function is None or name in (None, "linear"):
        return None
    if name not in ACTIVATIONS:
        raise ReadOnly(f"{where}: activation {name!r} is not one the page exports ({', '.join(ACTIVATIONS)})")
    return str(name)


def stack_state(result: Summary, name: str, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """The page's editable stack from a model's summary: every row a conv, pool, 1x1 layer or activation, in one
    chain, whose parameters as plain convs are the model's; :class:`ReadOnly` naming what stops it otherwise."""
    channels_first = result.layout.startswith("(batch, channels")
    rf = result.field
    graph = rf.graph if rf is not None else None
    modules = {node.name: node.module for node in graph.nodes} if graph is not None else {}
    joins = [node for node in graph.nodes[1:] if len(node.edges) > 1] if graph is not None else []
    if joins:
        raise ReadOnly(
            f"{joins[0].name} reads {len(joins[0].edges)} layers (a branch joins there); the editor "
            "rebuilds plain layer stacks"
        )
    layers: list[dict[str, Any]] = []
    for row in result.layers:
        where = f"{name}: {row.name} ({row.kind})"
        if row.sees_whole_input or row.receptive_field is None or row.measured:
            raise ReadOnly(f"{where} is not a conv or pool the editor rebuilds")
        # a Keras Dense reads one step: the page's 1x1 conv
        geometry = row.geometry or ((Layer(1, kind="pointwise"),) if row.kind == "Dense" and row.params else ())
        if not geometry:
            activation = _ACTIVATION_TYPES.get(row.kind)
            if activation is None or row.params or not layers or layers[-1].get("activation"):
                raise ReadOnly(f"{where} is not a conv, pool, dense layer or activation the editor rebuilds")
            layers[-1]["activation"] = activation
            continue
        if len(geometry) != 1 or geometry[0].kind not in ("conv", "maxpool", "avgpool", "pointwise"):
            raise ReadOnly(f"{where} is not a conv, pool, dense layer or activation the editor rebuilds")
        layer = geometry[0]
        shape = row.output_shape
        channels = shape[1] if channels_first and len(shape) > 1 else shape[-1] if shape else None
        conv = layer.kind in ("conv", "pointwise")
        entry: dict[str, Any] = {
            "kind": "conv" if conv else layer.kind,
            "kernel_size": layer.kernel_size,
            "dilation": layer.dilation,
            "stride": layer.stride,
            "padding": "valid" if layer.kind == "pointwise" else _page_padding(layer, where),
            "channels": int(channels) if conv and channels else None,
        }
        activation = _activation(modules.get(row.name), where)
        if activation:
            entry["activation"] = activation
        layers.append(entry)
    if not any(la["kind"] != "conv" or la["kernel_size"] > 1 for la in layers):
        raise ReadOnly(f"{name}: no time-axis layer (conv or pool) to edit")
    input_channels = int(input_shape[0] if channels_first else input_shape[-1])
    plain = plain_params(layers, input_channels)
    if plain != result.total_params:
        raise ReadOnly(
            f"{name} has {result.total_params:,} parameters where its layers as plain convs have {plain:,} "
            "(norms, gates or other weights the editor does not rebuild)"
        )
    return {"input_channels": input_channels, "input_length": int(result.input_length), "layers": layers}


def plain_params(layers: list[dict[str, Any]], input_channels: int) -> int:
    """Weights and biases of the layers as plain convs (pools have none), as the page counts them."""
    total, channels = 0, input_channels
    for layer in layers:
        if layer["kind"] == "conv":
            total += channels * layer["channels"] * layer["kernel_size"] + layer["channels"]
            channels = layer["channels"]
    return total
