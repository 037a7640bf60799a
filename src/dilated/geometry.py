"""Exact shape and receptive-field arithmetic for 1-D convolution and pooling stacks.

Pure Python (no torch import): the single source of truth for output lengths, padding and receptive fields in
`dilated`. Two semantics are supported:

* ``"keras"``: Keras 3 ``Conv1D`` / ``MaxPooling1D`` / ``AveragePooling1D``. ``padding`` is ``"valid"``,
  ``"same"`` (output length ``ceil(L / stride)``; the total pad is split with the extra step on the right) or
  ``"causal"`` (``dilation * (kernel - 1)`` zeros on the left; convolutions only). Keras refuses ``stride > 1``
  together with ``dilation > 1``.
* ``"torch"``: ``torch.nn.Conv1d`` / ``MaxPool1d`` / ``AvgPool1d``. ``padding`` is an int (both sides), ``"valid"``
  or ``"same"`` (stride 1 only; the extra step of an odd total goes on the right), and pooling may use
  ``ceil_mode``.

Both also accept an explicit ``(left, right)`` pair.

Receptive-field terms, all in input steps (Araujo et al., "Computing Receptive Fields of CNNs", Distill 2019):

* ``receptive_field``: how many consecutive input steps one output of the layer can depend on;
* ``jump``: input steps between neighbouring outputs (the product of the strides so far);
* ``start``: input index where the first output's field begins (negative where it reaches into the padding;
  ``-(receptive_field - 1)`` for a causal stack).

Output ``t`` of a layer sees inputs ``start + t * jump`` through ``start + t * jump + receptive_field - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "KERAS_PADDINGS",
    "TORCH_PADDINGS",
    "Layer",
    "LayerGeometry",
    "causal_stack",
    "dependencies",
    "format_padding",
    "output_length",
    "padding_amounts",
    "receptive_field",
    "stack_geometry",
    "validate",
]

Padding = str | int | tuple[int, int]
Semantics = Literal["keras", "torch"]
LayerKind = Literal["conv", "maxpool", "avgpool", "pointwise", "global"]

KERAS_PADDINGS = ("valid", "same", "causal")
TORCH_PADDINGS = ("valid", "same")


@dataclass(frozen=True)
class Layer:
    """The geometry of one layer along the time axis.

    ``kind`` is ``"conv"``, ``"maxpool"``, ``"avgpool"``, ``"pointwise"`` (acts on each step alone: 1x1 conv,
    Dense over channels, activation, normalisation) or ``"global"`` (mixes every step: attention, flatten, RNN).
    """

    kernel_size: int = 1
    stride: int = 1
    dilation: int = 1
    padding: Padding = "valid"
    kind: LayerKind = "conv"
    name: str = "layer"
    semantics: Semantics = "keras"
    ceil_mode: bool = False

    def __post_init__(self) -> None:
        validate(self)

    @property
    def span(self) -> int:
        """Input steps one output spans: ``dilation * (kernel_size - 1) + 1``."""
        return self.dilation * (self.kernel_size - 1) + 1

    def describe(self) -> str:
        """Short human description, e.g. ``conv k=5 d=2 s=1 causal``."""
        return f"{self.kind} k={self.kernel_size} d={self.dilation} s={self.stride} {format_padding(self.padding)}"


@dataclass(frozen=True)
class LayerGeometry:
    """One layer's shapes and receptive field inside a stack, for a given input length."""

    layer: Layer
    input_length: int
    output_length: int
    pad_left: int
    pad_right: int
    receptive_field: int
    jump: int
    start: int

    def field(self, index: int) -> tuple[int, int]:
        """First and last input step (inclusive) that output ``index`` of this layer can depend on."""
        first = self.start + index * self.jump
        return first, first + self.receptive_field - 1


def format_padding(padding: Padding) -> str:
    """``'causal'``, ``'same'``, ``'valid'``, ``'pad=2'`` or ``'pad=(3,0)'``."""
    if isinstance(padding, str):
        return padding
    if isinstance(padding, int):
        return f"pad={padding}"
    return f"pad=({padding[0]},{padding[1]})"


def validate(layer: Layer) -> None:
    """Raise ``ValueError`` naming ``layer`` and what to change if its settings are impossible."""
    where = f"layer {layer.name!r} ({layer.kind})"
    _check_sizes(layer, where)
    if layer.semantics not in ("keras", "torch"):
        raise ValueError(f"{where}: semantics must be 'keras' or 'torch', got {layer.semantics!r}")
    if layer.kind in ("pointwise", "global"):
        if (layer.kernel_size, layer.stride, layer.dilation) != (1, 1, 1):
            raise ValueError(f"{where}: a {layer.kind} layer has kernel_size, stride and dilation 1")
        return
    if layer.kind not in ("conv", "maxpool", "avgpool"):
        raise ValueError(f"{where}: kind must be conv, maxpool, avgpool, pointwise or global, got {layer.kind!r}")
    _check_padding(layer, where)
    if layer.semantics == "keras":
        _check_keras(layer, where)
    else:
        _check_torch(layer, where)
    if layer.ceil_mode and layer.kind == "conv":
        raise ValueError(f"{where}: ceil_mode applies to pooling only; remove it")


def _check_sizes(layer: Layer, where: str) -> None:
    """``kernel_size``, ``stride`` and ``dilation`` are ints >= 1."""
    for field_name in ("kernel_size", "stride", "dilation"):
        value = getattr(layer, field_name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: {field_name} must be an int, got {value!r}")
        if value < 1:
            raise ValueError(f"{where}: {field_name} must be >= 1, got {value}; use 1 or more")


def _check_padding(layer: Layer, where: str) -> None:
    """The padding of a conv or pooling layer is a name its semantics knows, an int >= 0 or a (left, right) pair."""
    padding = layer.padding
    if isinstance(padding, str):
        allowed: tuple[str, ...] = KERAS_PADDINGS if layer.semantics == "keras" else TORCH_PADDINGS
        if layer.kind != "conv":
            allowed = tuple(p for p in allowed if p != "causal")
        if padding not in allowed:
            raise ValueError(
                f"{where}: padding {padding!r} is not supported with {layer.semantics} semantics; "
                f"use one of {', '.join(allowed)}, an int or a (left, right) pair"
            )
    elif isinstance(padding, bool) or not _is_padding_amount(padding):
        raise ValueError(f"{where}: padding must be a string, an int >= 0 or a (left, right) pair, got {padding!r}")


def _check_keras(layer: Layer, where: str) -> None:
    """What Keras refuses: dilated pooling, and stride together with dilation."""
    if layer.kind != "conv" and layer.dilation != 1:
        raise ValueError(f"{where}: Keras pooling has no dilation; set dilation=1")
    if layer.stride > 1 and layer.dilation > 1:
        raise ValueError(
            f"{where}: Keras refuses stride={layer.stride} together with dilation={layer.dilation}; "
            "set one of them to 1 (or stack a strided layer after a dilated one)"
        )


def _check_torch(layer: Layer, where: str) -> None:
    """What torch refuses: ``padding='same'`` with a stride, and pooling padded past half its kernel."""
    padding = layer.padding
    if padding == "same" and layer.stride > 1:
        raise ValueError(
            f"{where}: torch refuses padding='same' with stride={layer.stride}; "
            "use Keras semantics (dilated.Conv1d) or explicit padding"
        )
    if layer.kind != "conv" and isinstance(padding, int | tuple):
        left, right = _explicit(padding)
        if max(left, right) > layer.kernel_size // 2:
            raise ValueError(
                f"{where}: torch pooling allows padding up to kernel_size // 2 = {layer.kernel_size // 2}, "
                f"got {padding!r}; reduce the padding or grow the kernel"
            )


def _is_padding_amount(padding: object) -> bool:
    if isinstance(padding, int):
        return padding >= 0
    return (
        isinstance(padding, tuple)
        and len(padding) == 2
        and all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in padding)
    )


def _explicit(padding: int | tuple[int, int]) -> tuple[int, int]:
    return (padding, padding) if isinstance(padding, int) else padding


def padding_amounts(layer: Layer, input_length: int) -> tuple[int, int]:
    """Zeros added on the (left, right) of the time axis before the layer slides its kernel."""
    _check_length(layer, input_length)
    if layer.kind in ("pointwise", "global"):
        return 0, 0
    padding = layer.padding
    if not isinstance(padding, str):
        return _explicit(padding)
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return layer.span - 1, 0
    # "same": Keras/TF rule; with stride 1 it reduces to torch's (total = span - 1, extra step on the right).
    out = math.ceil(input_length / layer.stride)
    total = max(0, (out - 1) * layer.stride + layer.span - input_length)
    return total // 2, total - total // 2


def output_length(layer: Layer, input_length: int) -> int:
    """Exact number of outputs the layer produces for ``input_length`` input steps.

    Raises ``ValueError`` naming the layer when the input is too short to produce any output.
    """
    left, right = padding_amounts(layer, input_length)
    padded = input_length + left + right
    # torch's ceil_mode also counts a last window that starts inside the input but runs past its end.
    slack = layer.stride - 1 if layer.ceil_mode else 0
    if padded + slack < layer.span:
        raise ValueError(
            f"layer {layer.name!r} ({layer.describe()}) needs at least {layer.span - left - right - slack} input "
            f"steps, "
            f"got {input_length}; feed a longer sequence or reduce kernel_size/dilation"
        )
    if layer.ceil_mode:
        out = -(-(padded - layer.span) // layer.stride) + 1
        # torch: the last window must start inside the input or the left padding.
        if (out - 1) * layer.stride >= input_length + left:
            out -= 1
        return out
    return (padded - layer.span) // layer.stride + 1


def _check_length(layer: Layer, input_length: int) -> None:
    if isinstance(input_length, bool) or not isinstance(input_length, int) or input_length < 1:
        raise ValueError(f"layer {layer.name!r}: input length must be a positive int, got {input_length!r}")


def stack_geometry(layers: Iterable[Layer], input_length: int) -> list[LayerGeometry]:
    """Shapes and receptive fields of every layer of a sequential stack, for ``input_length`` input steps.

    A ``"global"`` layer (attention, flatten, RNN) sees the whole input: its receptive field is ``input_length``
    and its jump 0 (all its outputs see the same steps).
    """
    rows: list[LayerGeometry] = []
    length, field, jump, start = input_length, 1, 1, 0
    for layer in layers:
        left, right = padding_amounts(layer, length)
        out = output_length(layer, length)
        if layer.kind == "global":  # every output sees the whole input: field(i) == (0, input_length - 1)
            field, start, jump = input_length, 0, 0
        else:
            field += (layer.span - 1) * jump
            start -= left * jump
            jump *= layer.stride
        rows.append(LayerGeometry(layer, length, out, left, right, field, jump, start))
        length = out
    return rows


def receptive_field(layers: Sequence[Layer]) -> int:
    """Receptive field of a stack in input steps, independent of the input length (no global layers)."""
    field, jump = 1, 1
    for layer in layers:
        if layer.kind == "global":
            raise ValueError(f"layer {layer.name!r} is global: its receptive field is the whole input")
        field += (layer.span - 1) * jump
        jump *= layer.stride
    return field


def causal_stack(kernel_size: int, dilations: Sequence[int], name: str = "conv") -> list[Layer]:
    """Causal, stride-1 conv layers with the given dilations (the WaveNet/TCN pattern)."""
    return [
        Layer(kernel_size=kernel_size, dilation=d, padding="causal", name=f"{name}{i}") for i, d in enumerate(dilations)
    ]


def dependencies(layers: Sequence[Layer], input_length: int, output_index: int) -> list[list[int]]:
    """Exact steps that feed one output, row by row: ``rows[0]`` input steps, ``rows[-1] == [output_index]``.

    Unlike the receptive-field span, this follows the actual taps, so a dilated layer's gaps show. Padding
    positions are excluded (they carry no data).
    """
    geometry = stack_geometry(layers, input_length)
    if not 0 <= output_index < geometry[-1].output_length:
        raise ValueError(f"output_index must be in [0, {geometry[-1].output_length}), got {output_index}")
    rows = [[output_index]]
    for row in reversed(geometry):
        below: set[int] = set()
        for t in rows[0]:
            below.update(_taps(row, t))
        rows.insert(0, sorted(below))
    return rows


def _taps(row: LayerGeometry, index: int) -> list[int]:
    """Input steps of this layer (excluding padding) that its output ``index`` reads."""
    if row.layer.kind == "global":
        return list(range(row.input_length))
    first = index * row.layer.stride - row.pad_left
    taps = (first + k * row.layer.dilation for k in range(row.layer.kernel_size))
    return [t for t in taps if 0 <= t < row.input_length]
