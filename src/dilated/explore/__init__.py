"""``dilated explore``: a self-contained HTML page to edit a conv stack and watch its WaveNet tree and geometry.

The page (``template.html`` + ``explorer.js``, shipped as package data and inlined: no network, no server) draws
the tree of the highlighted output with its receptive field and holes, lets a person edit, add, remove and reorder
layers (kernel, dilation, stride, padding, channels), shows the receptive field, jump, output length and parameter
count as they change, swaps dilations for strides (the dilated-vs-strided comparison), runs the design search of
:mod:`dilated.design` for a typed target, and exports the stack as a :mod:`dilated._resolve` config.

    from dilated.explore import write_explorer
    write_explorer("explorer.html", "example-dilated")      # any target `dilated summary` takes

The page's arithmetic is a JavaScript port of :mod:`dilated.geometry` and :mod:`dilated.design`, exposed as
``window.dilatedGeometry`` and ``window.dilatedDesign``; the tests run random stacks through both.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from typing import Any

from dilated._resolve import Target, resolve_target
from dilated.geometry import Layer, padding_amounts
from dilated.summaries import Summary, summary

__all__ = [
    "DEFAULT_TARGET",
    "page",
    "stack_state",
    "target_state",
    "target_summary",
    "write_explorer",
]

DEFAULT_TARGET = "example-dilated"


def _page_padding(layer: Layer, where: str) -> str | int:
    """The layer's padding as the page spells it: ``causal``, ``same``, ``valid`` or one int for both sides."""
    padding = layer.padding
    if isinstance(padding, tuple):
        left, right = padding
        if left == right:
            return left
        if (left, right) == (layer.span - 1, 0) and layer.kind == "conv":
            return "causal"
        raise ValueError(
            f"{where}: the explorer edits paddings causal, same, valid or one int for both sides; "
            f"this layer pads {padding}"
        )
    if layer.ceil_mode:
        raise ValueError(f"{where}: the explorer follows Keras pooling, which has no ceil_mode")
    return padding


def stack_state(result: Summary, name: str, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """The page's starting stack from a model's summary: its time-axis layers up to the first global one.

    Every layer gets the channels of its summary row's output; the notes say what the page leaves out, and last,
    where the model is not plainly causal, the summary's causality line (e.g. ``Causal: unknown (...)``).
    """
    channels_first = result.layout.startswith("(batch, channels")
    layers: list[dict[str, Any]] = []
    notes: list[str] = []
    path_field = 0
    for row in result.layers:
        if row.sees_whole_input:
            notes.append(
                f"from {row.name} ({row.kind}) on, outputs see the whole input: the page shows the "
                f"convolutional path before it"
            )
            break
        shape = row.output_shape
        channels = shape[1] if channels_first and len(shape) > 1 else shape[-1] if shape else None
        if row.receptive_field is not None and row.receptive_field < path_field and _pointwise(row.geometry):
            continue  # a 1x1 layer reading a narrower tensor than the path so far: a side branch (a residual 1x1)
        path_field = max(path_field, row.receptive_field or 0)
        for layer in row.geometry:
            if layer.kind in ("pointwise", "global"):
                continue
            where = f"{name}: {row.name} ({row.kind})"
            layers.append(
                {
                    "kind": layer.kind,
                    "kernel_size": layer.kernel_size,
                    "dilation": layer.dilation,
                    "stride": layer.stride,
                    "padding": _page_padding(layer, where),
                    "channels": int(channels) if layer.kind == "conv" and channels else None,
                }
            )
    if not layers:
        raise ValueError(f"{name}: no time-axis layer (conv or pool) to explore")
    input_channels = input_shape[0] if channels_first else input_shape[-1]
    plain = _plain_params(layers, int(input_channels))
    if plain != result.total_params:
        notes.append(
            f"the page counts {plain:,} parameters for these layers as plain convs; the model itself has "
            f"{result.total_params:,} (its skips, gates, norms and other layers)"
        )
    if result.field is not None and result.field.causality is not None:
        notes.append(result.field.causality)
    return {
        "name": name,
        "input_channels": int(input_channels),
        "input_length": int(result.input_length),
        "layers": layers,
        "notes": notes,
    }


def _plain_params(layers: list[dict[str, Any]], input_channels: int) -> int:
    """Weights and biases of the layers as plain convs (pools have none), as the page counts them."""
    total, channels = 0, input_channels
    for layer in layers:
        if layer["kind"] == "conv":
            total += channels * layer["channels"] * layer["kernel_size"] + layer["channels"]
            channels = layer["channels"]
    return total


def _pointwise(layers: tuple[Layer, ...]) -> bool:
    """Whether these time-axis layers leave the time axis as it is (kernel 1, stride 1, no padding)."""
    return all(layer.kernel_size == 1 and layer.stride == 1 and padding_amounts(layer, 1) == (0, 0) for layer in layers)


def target_summary(target: Target) -> Summary:
    """The summary of a resolved target: a built Keras model, or a torch model with its input shape."""
    from dilated.keras_bridge import is_keras_model  # no Keras import happens here

    if is_keras_model(target.model):
        return summary(target.model)
    if target.input_shape is None:
        raise ValueError(
            f"{target.name!r} does not fix its input shape: pass --input CHANNELS,TIME (e.g. --input 2,200)"
        )
    return summary(target.model, target.input_shape)


def target_state(target: Target) -> dict[str, Any]:
    """:func:`stack_state` of a resolved target."""
    result = target_summary(target)
    return stack_state(result, target.name, tuple(n for n in result.input_shape[1:] if n is not None))


def page(state: dict[str, Any]) -> str:
    """The explorer page as one HTML string, opening on ``state`` (see :func:`stack_state`)."""
    folder = resources.files("dilated.explore")
    template = (folder / "template.html").read_text(encoding="utf-8")
    script = (folder / "explorer.js").read_text(encoding="utf-8")
    stack = json.dumps(state).replace("</", "<\\/")  # keeps "</script>" inside a name from closing the tag
    return (
        template.replace("__TITLE__", html.escape(str(state["name"])))
        .replace("__STACK__", stack)
        .replace("__SCRIPT__", script)
    )


def write_explorer(path: str | Path, target: str | None = None, input_shape: tuple[int, ...] | None = None) -> Path:
    """Write the explorer page opening on ``target`` (default: the example's dilated stack) to ``path``."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"explorer page must be written to a .html file, got {path}")
    state = target_state(resolve_target(target or DEFAULT_TARGET, input_shape))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(state), encoding="utf-8")
    return path
