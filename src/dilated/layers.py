"""Layers with Keras-exact time-axis geometry, on ``(batch, channels, time)`` tensors.

``Conv1d`` computes what Keras 3 ``Conv1D`` computes (``padding`` "causal", "same" or "valid", stride, dilation),
with a PyTorch weight layout ``(out_channels, in_channels // groups, kernel_size)``; Keras stores the same kernel
as ``(kernel_size, in_channels, out_channels)``. Every layer here exposes ``geometry`` (a
:class:`dilated.geometry.Layer`), which is how summaries, diagrams and streaming read its shape arithmetic.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dilated.geometry import Layer, LayerKind, Padding, padding_amounts

__all__ = [
    "AvgPool1d",
    "Conv1d",
    "Dense",
    "MaxPool1d",
    "channels_first",
    "channels_last",
]


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``(batch, channels, time) -> (batch, time, channels)``: the layout of attention, LSTMs and Keras."""
    return x.transpose(1, 2)


def channels_first(x: torch.Tensor) -> torch.Tensor:
    """``(batch, time, channels) -> (batch, channels, time)``: the layout of every conv in ``dilated``."""
    return x.transpose(1, 2)


def _fixed_padding(geometry: Layer) -> tuple[int, int] | None:
    """The (left, right) padding when it does not depend on the input length, else ``None``."""
    if geometry.padding == "same" and geometry.stride > 1:
        return None
    return padding_amounts(geometry, geometry.span)


class _TimeAxisLayer(nn.Module):
    """Base for layers that slide a window over the time axis with Keras padding rules."""

    geometry: Layer

    def _set_geometry(self, geometry: Layer) -> None:
        self.geometry = geometry
        self._padding = _fixed_padding(geometry)
        fixed = self._padding or (0, 0)
        self.min_length = max(1, geometry.span - fixed[0] - fixed[1])

    def _check(self, x: torch.Tensor, channels: int | None) -> None:
        """Clear errors for a wrong rank, channel count, dtype or a too-short input (cheap int comparisons)."""
        if x.dim() != 3 or (channels is not None and x.shape[1] != channels):
            expected = f"(batch, {channels}, time)" if channels is not None else "(batch, channels, time)"
            raise ValueError(f"{type(self).__name__}: expected input {expected}, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{type(self).__name__}: expected a float tensor, got {x.dtype}; use x.float()")
        if x.shape[-1] < self.min_length:
            raise ValueError(
                f"{type(self).__name__} ({self.geometry.describe()}): needs at least {self.min_length} "
                f"time steps, got {x.shape[-1]}; feed a longer sequence or use causal/same padding"
            )

    def padding_for(self, length: int) -> tuple[int, int]:
        """Zeros added (left, right) for an input of ``length`` steps."""
        return self._padding if self._padding is not None else padding_amounts(self.geometry, length)


class Conv1d(_TimeAxisLayer):
    """1-D convolution over ``(batch, in_channels, time)`` with Keras 3 ``Conv1D`` padding semantics.

    Args:
        in_channels: input channels.
        out_channels: output channels (Keras ``filters``).
        kernel_size: taps per output.
        stride: step between outputs (Keras ``strides``).
        dilation: spacing between taps (Keras ``dilation_rate``); Keras refuses ``stride > 1`` with ``dilation > 1``.
        padding: ``"causal"`` (default: output ``t`` sees inputs ``<= t``; length kept at stride 1), ``"same"``,
            ``"valid"``, an int (both sides) or a ``(left, right)`` pair.
        groups: channel groups, as in ``torch.nn.Conv1d``.
        bias: add a learned bias.

    Shapes:
        input ``(batch, in_channels, time)``, output ``(batch, out_channels, time_out)`` where
        ``time_out = dilated.geometry.output_length(self.geometry, time)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        padding: Padding = "causal",
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"Conv1d: channels must be >= 1, got in={in_channels}, out={out_channels}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv1d: in_channels ({in_channels}) and out_channels ({out_channels}) must both be divisible by "
                f"groups ({groups})"
            )
        self._set_geometry(Layer(kernel_size, stride, dilation, padding, kind="conv", name="Conv1d"))
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The same initialisation as ``torch.nn.Conv1d``."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.weight.shape[2]
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, time) -> (batch, out_channels, time_out)``."""
        self._check(x, self.in_channels)
        left, right = self.padding_for(x.shape[-1])
        g = self.geometry
        if left == right:
            return F.conv1d(x, self.weight, self.bias, g.stride, left, g.dilation, self.groups)
        return F.conv1d(F.pad(x, (left, right)), self.weight, self.bias, g.stride, 0, g.dilation, self.groups)

    def extra_repr(self) -> str:
        g = self.geometry
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={g.kernel_size}, stride={g.stride}"
        text += f", dilation={g.dilation}, padding={g.padding!r}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class Dense(Conv1d):
    """Keras ``Dense`` applied to every time step: a kernel-1 convolution, ``(B, in, T) -> (B, units, T)``."""

    def __init__(self, in_channels: int, units: int, bias: bool = True) -> None:
        super().__init__(in_channels, units, kernel_size=1, padding="valid", bias=bias)


class _Pool1d(_TimeAxisLayer):
    """Pooling over the time axis with Keras ``MaxPooling1D``/``AveragePooling1D`` padding ("valid", "same")."""

    kind: LayerKind

    def __init__(self, pool_size: int, stride: int | None = None, padding: Padding = "valid") -> None:
        super().__init__()
        stride = pool_size if stride is None else stride
        self._set_geometry(Layer(pool_size, stride, 1, padding, kind=self.kind, name=type(self).__name__))

    def extra_repr(self) -> str:
        g = self.geometry
        return f"pool_size={g.kernel_size}, stride={g.stride}, padding={g.padding!r}"


class MaxPool1d(_Pool1d):
    """Max over windows of ``pool_size`` steps; padded steps never win. ``(B, C, T) -> (B, C, T_out)``."""

    kind = "maxpool"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, None)
        left, right = self.padding_for(x.shape[-1])
        x = F.pad(x, (left, right), value=-math.inf) if left or right else x
        return F.max_pool1d(x, self.geometry.kernel_size, self.geometry.stride)


class AvgPool1d(_Pool1d):
    """Mean over windows of ``pool_size`` steps, counting only real (unpadded) steps, as TensorFlow does.

    ``(B, C, T) -> (B, C, T_out)``. (Keras 3 on its torch backend pads "same" by repeating the edge step where
    the padding is uneven; the output lengths agree, values at those edge windows may differ.)
    """

    kind = "avgpool"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, None)
        left, right = self.padding_for(x.shape[-1])
        k, s = self.geometry.kernel_size, self.geometry.stride
        if not (left or right):
            return F.avg_pool1d(x, k, s)
        real_steps = F.pad(torch.ones_like(x[:1, :1]), (left, right))
        return F.avg_pool1d(F.pad(x, (left, right)), k, s) / F.avg_pool1d(real_steps, k, s)
