"""Temporal convolutional network (Bai, Kolter & Koltun, "An Empirical Evaluation of Generic Convolutional and
Recurrent Networks for Sequence Modeling", 2018, arXiv:1803.01271; reference code locuslab/TCN ``TCN/tcn.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from dilated.geometry import receptive_field
from dilated.layers import Dense
from dilated.models._blocks import TCNInit, TemporalBlock, check_tcn_init, sequence_head
from dilated.models._registry import DataFit, covering_input_shape, register_model


@dataclass
class TCNConfig:
    """TCN hyper-parameters; the defaults are locuslab's sequential-MNIST setup (8 levels of 25 channels, kernel 7,
    dropout 0.05).

    Attributes:
        input_channels: channels of the input sequence.
        num_channels: output channels of each level (one temporal block per level, dilation ``2**level``).
        kernel_size: taps of every conv.
        dropout: dropout after each conv's ReLU.
        output_size: if set, a linear head ``num_channels[-1] -> output_size`` (locuslab's adding problem and
            copy-memory models); ``None`` returns the last level's features.
        last_step_only: apply the head to the last time step only (adding problem, sequential MNIST) instead of
            to every step (copy memory).
        init: ``"locuslab"`` (the init locuslab's code ends up with, which the paper's results come from) or
            ``"normal"`` (every conv ``normal(0, 0.01)``), see :class:`dilated.models._blocks.TemporalBlock`.
    """

    input_channels: int = 1
    num_channels: tuple[int, ...] = (25,) * 8
    kernel_size: int = 7
    dropout: float = 0.05
    output_size: int | None = None
    last_step_only: bool = False
    init: TCNInit = "locuslab"

    def __post_init__(self) -> None:
        self.num_channels = tuple(int(n) for n in self.num_channels)
        if not self.num_channels or min(self.num_channels) < 1:
            raise ValueError(f"num_channels must list at least one positive width, got {self.num_channels}")
        if self.input_channels < 1 or self.kernel_size < 1:
            raise ValueError("input_channels and kernel_size must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.output_size is not None and self.output_size < 1:
            raise ValueError(f"output_size must be >= 1 or None, got {self.output_size}")
        check_tcn_init(self.init)
        if self.last_step_only and self.output_size is None:
            raise ValueError("last_step_only needs a head: set output_size")


@register_model(
    "tcn",
    TCNConfig,
    covering_input_shape,
    DataFit(
        channels="input_channels",
        head=lambda shape: {"output_size": shape.classes or 1, "last_step_only": not shape.per_step},
    ),
)
class TCN(nn.Module):
    """Generic TCN: temporal blocks (two weight-normed dilated causal convs, ReLU, dropout, residual) with
    dilation ``2**i`` at level ``i`` (Bai et al. 2018, Sec. 3, Fig. 1), plus an optional linear head.

    Output ``t`` depends on inputs ``<= t`` only; the receptive field is ``1 + 2 (k - 1) (2**L - 1)``.

    Args:
        x: ``(batch, input_channels, time)``.

    Returns:
        ``(batch, num_channels[-1], time)`` without a head; with one, ``(batch, output_size, time)``, or
        ``(batch, output_size)`` when ``last_step_only``.
    """

    def __init__(self, config: TCNConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or TCNConfig()
        widths = (c.input_channels, *c.num_channels)
        self.blocks = nn.ModuleList(
            TemporalBlock(widths[i], widths[i + 1], c.kernel_size, dilation=2**i, dropout=c.dropout, init=c.init)
            for i in range(len(c.num_channels))
        )
        self.head = None
        if c.output_size is not None:
            self.head = Dense(c.num_channels[-1], c.output_size)
            nn.init.normal_(self.head.weight, 0.0, 0.01)  # as locuslab's adding-problem / copy-memory models

    @property
    def receptive_field(self) -> int:
        """Input steps one output depends on: both convs of every block in a row (``dilated.receptive_field``
        finds the same from the dataflow); it sizes the example input and streaming's history."""
        return receptive_field(
            [
                conv.geometry
                for block in cast(Iterable[TemporalBlock], self.blocks)
                for conv in (block.conv1, block.conv2)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.config.input_channels:
            raise ValueError(f"TCN expects (batch, {self.config.input_channels}, time), got {tuple(x.shape)}")
        for block in self.blocks:
            x = block(x)  # (B, C_level, T)
        return sequence_head(self.head, x, self.config.last_step_only)
