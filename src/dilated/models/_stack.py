"""A causal dilated conv stack with any dilation schedule: what :func:`dilated.design.design` proposes.

``dilated design ... -o stack.yaml`` writes ``model: dilated_stack`` with these options, so the designed stack is
summarised, drawn, streamed and trained like the other registered models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dilated.design import BLOCKS, MODEL_NAME, Block, is_hole_free
from dilated.geometry import Layer, receptive_field
from dilated.layers import Conv1d, Dense
from dilated.models._blocks import TemporalBlock, sequence_head
from dilated.models._registry import DataFit, covering_input_shape, register_model


@dataclass
class DilatedStackConfig:
    """Options of :class:`DilatedStack`.

    Attributes:
        input_channels: channels of the input sequence.
        channels: output channels of every conv.
        kernel_size: taps of every conv.
        dilations: one block per dilation, in order.
        block: ``"plain"`` (conv, ReLU), ``"residual1"`` (ReLU(conv(x) + x)) or ``"residual2"`` (the TCN
            temporal block: two weight-normed convs of the same dilation and a skip), see
            :func:`dilated.design.block_cost`.
        dropout: dropout after each block.
        output_size: if set, a linear head ``channels -> output_size``; ``None`` returns the features.
        last_step_only: apply the head to the last step only (one prediction per sequence).
    """

    input_channels: int = 1
    channels: int = 32
    kernel_size: int = 2
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    block: Block = "plain"
    dropout: float = 0.0
    output_size: int | None = None
    last_step_only: bool = False

    def __post_init__(self) -> None:
        self.dilations = tuple(int(d) for d in self.dilations)
        if not self.dilations or min(self.dilations) < 1:
            raise ValueError(f"dilations must list at least one dilation >= 1, got {self.dilations}")
        if min(self.input_channels, self.channels, self.kernel_size) < 1:
            raise ValueError("input_channels, channels and kernel_size must be >= 1")
        if self.block not in BLOCKS:
            raise ValueError(f"block must be one of {', '.join(BLOCKS)}, got {self.block!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.output_size is not None and self.output_size < 1:
            raise ValueError(f"output_size must be >= 1 or None, got {self.output_size}")
        if self.last_step_only and self.output_size is None:
            raise ValueError("last_step_only needs a head: set output_size")


class ConvBlock(nn.Module):
    """``dropout(relu(conv(x)))``, or with ``residual`` ``dropout(relu(conv(x) + skip(x)))`` where ``skip`` is the
    identity, or a 1x1 conv when the widths differ.

    Shapes:
        ``(batch, in_channels, time) -> (batch, channels, time)``; output ``t`` sees inputs ``<= t``.
    """

    def __init__(
        self, in_channels: int, channels: int, kernel_size: int, dilation: int, residual: bool, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.conv = Conv1d(in_channels, channels, kernel_size, dilation=dilation, padding="causal")
        self.skip = None
        if residual:
            self.skip = nn.Identity() if in_channels == channels else Dense(in_channels, channels)
        self.relu, self.dropout = nn.ReLU(), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)  # (B, C, T)
        if self.skip is not None:
            out = out + self.skip(x)
        return self.dropout(self.relu(out))


@register_model(
    MODEL_NAME,
    DilatedStackConfig,
    covering_input_shape,
    DataFit(  # the data fixes what it fixes in a TCN
        channels="input_channels",
        head=lambda shape: {"output_size": shape.classes or 1, "last_step_only": not shape.per_step},
    ),
)
class DilatedStack(nn.Module):
    """Causal stride-1 blocks with the configured dilations, plus an optional linear head.

    Args:
        x: ``(batch, input_channels, time)``.

    Returns:
        ``(batch, channels, time)`` without a head; with one, ``(batch, output_size, time)``, or
        ``(batch, output_size)`` when ``last_step_only``.
    """

    def __init__(self, config: DilatedStackConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or DilatedStackConfig()
        widths = [c.input_channels] + [c.channels] * len(c.dilations)
        if c.block == "residual2":
            blocks: list[nn.Module] = [
                TemporalBlock(widths[i], c.channels, c.kernel_size, d, c.dropout) for i, d in enumerate(c.dilations)
            ]
        else:
            blocks = [
                ConvBlock(widths[i], c.channels, c.kernel_size, d, c.block == "residual1", c.dropout)
                for i, d in enumerate(c.dilations)
            ]
        self.blocks = nn.ModuleList(blocks)
        self.head = Dense(c.channels, c.output_size) if c.output_size is not None else None

    @property
    def time_path(self) -> tuple[Layer, ...]:
        """Every conv that mixes time steps (kernel > 1), in order: the stack's one path."""
        return tuple(m.geometry for m in self.blocks.modules() if isinstance(m, Conv1d) and m.geometry.kernel_size > 1)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.time_path)

    @property
    def hole_free(self) -> bool:
        """Whether every step under the receptive field feeds each output (see :mod:`dilated.design`)."""
        return is_hole_free(self.config.kernel_size, [layer.dilation for layer in self.time_path])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.config.input_channels:
            raise ValueError(f"DilatedStack expects (batch, {self.config.input_channels}, time), got {tuple(x.shape)}")
        for block in self.blocks:
            x = block(x)  # (B, channels, T)
        return sequence_head(self.head, x, self.config.last_step_only)
