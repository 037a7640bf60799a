"""WaveNet (van den Oord et al., "WaveNet: A Generative Model for Raw Audio", 2016, arXiv:1609.03499)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from dilated.geometry import receptive_field
from dilated.layers import Conv1d, Dense
from dilated.models._blocks import ResidualBlock
from dilated.models._registry import DataFit, DataShape, covering_input_shape, register_model

Output = Literal["categorical", "gaussian", "regression"]
OUTPUT_CHANNELS = {"gaussian": 2, "regression": 1}


@dataclass
class WaveNetConfig:
    """WaveNet hyper-parameters. The paper gives the dilation pattern but no widths; the widths here are small
    defaults in the range of public implementations.

    Attributes:
        layers_per_stack: residual blocks per stack, with dilations ``1, 2, ..., 2**(layers_per_stack - 1)``
            (10: up to 512, as in the paper).
        stacks: how many times the dilation pattern repeats (the paper's example repeats it three times).
        kernel_size: taps of every dilated conv (2 in the paper).
        input_kernel_size: taps of the causal input conv.
        residual_channels, dilation_channels, skip_channels: widths of the residual path, the gated activations
            and the skip path.
        output: ``"categorical"`` (``quantization_channels``-way logits over mu-law codes), ``"gaussian"`` (mean
            and log-scale of a normal, 2 channels) or ``"regression"`` (one value).
        quantization_channels: number of mu-law codes (256 = ``mu + 1`` with ``mu = 255``).
        input_channels: channels of the input; ``None`` means ``quantization_channels`` (one-hot codes, see
            :func:`dilated.models._mulaw.one_hot`) for ``"categorical"`` and 1 (raw samples) otherwise.
        global_channels: size of the per-sequence global conditioning vector (0: none), e.g. a speaker embedding.
        local_channels: channels of the local conditioning sequence (0: none), e.g. linguistic features.
        upsample_factor: input steps per local-conditioning step.
        upsample_mode: ``"transposed"`` (a learned transposed conv with kernel = stride = ``upsample_factor``,
            as in the paper's "transposed convolutional network") or ``"repeat"`` (each step repeated).
        log_scale_min: lower clamp of the Gaussian log-scale in :meth:`WaveNet.loss`.
    """

    layers_per_stack: int = 10
    stacks: int = 3
    kernel_size: int = 2
    input_kernel_size: int = 2
    residual_channels: int = 32
    dilation_channels: int = 32
    skip_channels: int = 256
    output: Output = "categorical"
    quantization_channels: int = 256
    input_channels: int | None = None
    global_channels: int = 0
    local_channels: int = 0
    upsample_factor: int = 1
    upsample_mode: Literal["transposed", "repeat"] = "transposed"
    log_scale_min: float = -7.0

    def __post_init__(self) -> None:
        if self.output not in ("categorical", "gaussian", "regression"):
            raise ValueError(f"output must be 'categorical', 'gaussian' or 'regression', got {self.output!r}")
        if self.upsample_mode not in ("transposed", "repeat"):
            raise ValueError(f"upsample_mode must be 'transposed' or 'repeat', got {self.upsample_mode!r}")
        for name in (
            "layers_per_stack",
            "stacks",
            "kernel_size",
            "input_kernel_size",
            "residual_channels",
            "dilation_channels",
            "skip_channels",
            "quantization_channels",
            "upsample_factor",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.global_channels < 0 or self.local_channels < 0:
            raise ValueError("global_channels and local_channels must be >= 0 (0 disables conditioning)")
        self.input_channels = self.resolved_input_channels

    @property
    def resolved_input_channels(self) -> int:
        """Channels of the input: ``input_channels``, or its default (see above) when it is ``None``."""
        if self.input_channels is not None:
            return self.input_channels
        return self.quantization_channels if self.output == "categorical" else 1

    @property
    def dilations(self) -> list[int]:
        """Dilation of every residual block, in order."""
        return [2**i for i in range(self.layers_per_stack)] * self.stacks

    @property
    def output_channels(self) -> int:
        return self.quantization_channels if self.output == "categorical" else OUTPUT_CHANNELS[self.output]


def _wavenet_head(shape: DataShape) -> dict[str, Any]:
    """A categorical head with one logit per class for classification data, a one-value head for regression."""
    if shape.classes is None:
        return {"output": "regression"}
    return {"output": "categorical", "quantization_channels": shape.classes}


@register_model("wavenet", WaveNetConfig, covering_input_shape, DataFit(channels="input_channels", head=_wavenet_head))
class WaveNet(nn.Module):
    """WaveNet: a causal input conv, stacks of gated residual blocks with doubling dilations, and a head on the
    sum of the blocks' skip outputs (van den Oord et al. 2016, Fig. 4 and Sec. 2.2-2.5).

    Every time mix is a causal stride-1 :class:`dilated.layers.Conv1d`, so output ``t`` depends on inputs
    ``<= t`` only: to predict sample ``t + 1``, train output ``t`` against input ``t + 1``.

    Conditioning (Sec. 2.5): a global vector is projected by 1x1 maps into both halves of every gated activation;
    a local sequence at a lower rate is first brought to the input rate by :meth:`upsample_conditioning` (a
    transposed conv with kernel = stride = ``upsample_factor``, so each input step depends on one conditioning
    step only; or plain repetition), then projected the same way. A streaming caller that already feeds local
    conditioning at the input rate passes ``local_upsampled=True``.

    Args:
        x: ``(batch, input_channels, time)``: one-hot mu-law codes (:func:`dilated.models._mulaw.one_hot`) for the
            categorical output, raw samples otherwise.
        global_condition: ``(batch, global_channels)`` when ``global_channels > 0``.
        local_condition: ``(batch, local_channels, time // upsample_factor)``, or ``(batch, local_channels, time)``
            with ``local_upsampled=True``.

    Returns:
        ``(batch, output_channels, time)``: logits over ``quantization_channels`` codes (``"categorical"``),
        ``[mean, log_scale]`` (``"gaussian"``) or the predicted value (``"regression"``).
    """

    def __init__(self, config: WaveNetConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or WaveNetConfig()
        self.input_conv = Conv1d(c.resolved_input_channels, c.residual_channels, c.input_kernel_size, padding="causal")
        dilations = c.dilations
        self.blocks = nn.ModuleList(
            ResidualBlock(
                c.residual_channels,
                c.dilation_channels,
                c.skip_channels,
                c.kernel_size,
                d,
                c.global_channels,
                c.local_channels,
                residual=i < len(dilations) - 1,
            )
            for i, d in enumerate(dilations)
        )
        self.head = nn.Sequential(
            nn.ReLU(), Dense(c.skip_channels, c.skip_channels), nn.ReLU(), Dense(c.skip_channels, c.output_channels)
        )
        self.upsample = None
        if c.local_channels and c.upsample_factor > 1 and c.upsample_mode == "transposed":
            self.upsample = nn.ConvTranspose1d(
                c.local_channels, c.local_channels, c.upsample_factor, stride=c.upsample_factor
            )

    @property
    def receptive_field(self) -> int:
        """Input steps one output depends on: ``input_kernel_size + (kernel_size - 1) * sum(dilations)``, the input
        conv and every block's dilated conv in a row (``dilated.receptive_field`` finds the same from the
        dataflow); it sizes the example input and streaming's history."""
        blocks = cast(Iterable[ResidualBlock], self.blocks)
        return receptive_field([self.input_conv.geometry, *(block.gate.conv.geometry for block in blocks)])

    def upsample_conditioning(self, c: torch.Tensor) -> torch.Tensor:
        """Local conditioning to the input rate: ``(B, local_channels, T_c) -> (B, local_channels, T_c * factor)``."""
        factor = self.config.upsample_factor
        if factor == 1:
            return c
        if self.upsample is not None:
            return self.upsample(c)
        return c.repeat_interleave(factor, dim=-1)

    def forward(
        self,
        x: torch.Tensor,
        global_condition: torch.Tensor | None = None,
        local_condition: torch.Tensor | None = None,
        local_upsampled: bool = False,
    ) -> torch.Tensor:
        c = self.config
        if x.dim() != 3 or x.shape[1] != c.input_channels:
            raise ValueError(f"WaveNet expects (batch, {c.input_channels}, time), got {tuple(x.shape)}")
        if (global_condition is not None) != bool(c.global_channels):
            raise ValueError(
                f"global_condition must be given exactly when global_channels > 0 (global_channels={c.global_channels})"
            )
        if (local_condition is not None) != bool(c.local_channels):
            raise ValueError(
                f"local_condition must be given exactly when local_channels > 0 (local_channels={c.local_channels})"
            )
        if local_condition is not None:
            if not local_upsampled:
                local_condition = self.upsample_conditioning(local_condition)
            if local_condition.shape[-1] != x.shape[-1]:
                raise ValueError(
                    f"local conditioning has {local_condition.shape[-1]} steps at the input rate, the "
                    f"input {x.shape[-1]}; give time // upsample_factor steps ({c.upsample_factor})"
                )
        h = self.input_conv(x)  # (B, residual, T)
        skips = 0
        for block in self.blocks:
            h, skip = block(h, global_condition, local_condition)
            skips = skips + skip  # (B, skip, T)
        return self.head(skips)  # (B, output_channels, T)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of ``output`` (from :meth:`forward`) against ``target``, already aligned step by step.

        ``target``: int64 codes ``(B, T)`` for ``"categorical"`` (cross-entropy); samples ``(B, T)`` for
        ``"gaussian"`` (negative log-likelihood, log-scale clamped at ``log_scale_min``) and ``"regression"``
        (mean squared error).
        """
        kind = self.config.output
        if kind == "categorical":
            return F.cross_entropy(output, target)
        if kind == "regression":
            return F.mse_loss(output[:, 0], target)
        mean, log_scale = output[:, 0], output[:, 1].clamp(min=self.config.log_scale_min)
        return (log_scale + 0.5 * ((target - mean) * torch.exp(-log_scale)) ** 2 + 0.5 * math.log(2 * math.pi)).mean()
