"""Blocks shared by the models: causal conv stacks, the WaveNet gated residual block and the TCN temporal block.

Every block works on ``(batch, channels, time)`` and mixes time steps only through causal, stride-1
:class:`dilated.layers.Conv1d` layers; everything else (activations, 1x1 convs, dropout, conditioning) acts on
each step alone. A streaming engine can therefore run a block step by step by swapping each causal ``Conv1d``
for a ring-buffered one. Their receptive fields come from the dataflow (:func:`dilated.receptive_field`); nothing
is declared here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from dilated.layers import Conv1d, Dense


def init_like_keras(module: nn.Module) -> None:
    """Keras 3 default initialisation, for models ported from Keras references.

    Conv/Dense kernels ``glorot_uniform`` and zero biases (torch computes the same fans from its weight layout);
    LSTM input kernels ``glorot_uniform``, recurrent kernels ``orthogonal`` and biases zero except the forget
    gate's, which is one (Keras ``unit_forget_bias``; torch's second bias vector ``bias_hh`` stays zero).
    LayerNorm keeps ones and zeros.
    """
    for m in module.modules():
        if isinstance(m, nn.LSTM):
            for name, p in m.named_parameters():
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(p.data)
                elif name.startswith("weight_hh"):
                    nn.init.orthogonal_(p.data)
                elif name.startswith("bias"):
                    nn.init.zeros_(p.data)
                    if name.startswith("bias_ih"):
                        p.data[m.hidden_size : 2 * m.hidden_size] = 1.0
        elif isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | Conv1d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class CausalConvStack(nn.Module):
    """Causal dilated convolutions, each followed by an activation (TransLOB's convolutional module).

    Args:
        in_channels: input channels.
        channels: channels of every conv.
        kernel_size: taps per conv.
        dilations: one conv per dilation, in order (e.g. ``(1, 2, 4, 8, 16)``).
        activation: built once per conv (default ``nn.ReLU``).

    Shapes:
        ``(batch, in_channels, time) -> (batch, channels, time)``; output ``t`` sees inputs ``<= t``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel_size: int,
        dilations: Sequence[int],
        activation: Callable[[], nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        widths = [in_channels] + [channels] * len(dilations)
        self.convs = nn.ModuleList(
            Conv1d(widths[i], channels, kernel_size, dilation=d, padding="causal") for i, d in enumerate(dilations)
        )
        self.activations = nn.ModuleList(activation() for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, activation in zip(self.convs, self.activations):
            x = activation(conv(x))
        return x


class GatedActivation(nn.Module):
    """WaveNet's gated activation unit ``tanh(W_f * x + V_f h) * sigmoid(W_g * x + V_g h)`` (van den Oord et al.
    2016, eq. 2-3), with one dilated causal conv producing both halves.

    Conditioning ``h`` enters through 1x1 projections without bias added to both halves before the
    nonlinearities: global conditioning ``(batch, global_channels)`` is broadcast over time; local conditioning
    ``(batch, local_channels, time)`` must already be at the input rate.

    Args:
        in_channels: input channels (WaveNet's residual channels).
        channels: channels of each half (dilation channels).
        kernel_size: taps of the dilated conv.
        dilation: its dilation.
        global_channels: size of the global conditioning vector (0: none).
        local_channels: channels of the local conditioning sequence (0: none).

    Shapes:
        ``(batch, in_channels, time) -> (batch, channels, time)``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel_size: int,
        dilation: int,
        global_channels: int = 0,
        local_channels: int = 0,
    ) -> None:
        super().__init__()
        self.conv = Conv1d(in_channels, 2 * channels, kernel_size, dilation=dilation, padding="causal")
        self.global_projection = nn.Linear(global_channels, 2 * channels, bias=False) if global_channels else None
        self.local_projection = Dense(local_channels, 2 * channels, bias=False) if local_channels else None

    def forward(
        self, x: torch.Tensor, global_condition: torch.Tensor | None = None, local_condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        z = self.conv(x)  # (B, 2C, T)
        if self.global_projection is not None:
            if global_condition is None:
                raise ValueError("this block is globally conditioned: pass global_condition (batch, channels)")
            z = z + self.global_projection(global_condition).unsqueeze(-1)  # (B, 2C, 1) broadcast over time
        if self.local_projection is not None:
            if local_condition is None:
                raise ValueError("this block is locally conditioned: pass local_condition (batch, channels, time)")
            z = z + self.local_projection(local_condition)
        filter_, gate = z.chunk(2, dim=1)
        return torch.tanh(filter_) * torch.sigmoid(gate)


class ResidualBlock(nn.Module):
    """WaveNet residual block (van den Oord et al. 2016, Fig. 4): gated activation, then a 1x1 conv back to the
    residual width (added to the input) and a 1x1 conv to the skip width.

    Args:
        residual_channels: input and residual-output channels.
        dilation_channels: channels of the gated activation.
        skip_channels: channels of the skip output.
        kernel_size, dilation: of the dilated causal conv.
        global_channels, local_channels: conditioning sizes (0: none), see :class:`GatedActivation`.
        residual: build the residual 1x1 conv. The last block of a WaveNet has none, since its residual output
            is never used (its parameters would get no gradient); its first output is then its input unchanged.

    Shapes:
        ``(batch, residual_channels, time) -> ((batch, residual_channels, time), (batch, skip_channels, time))``.
    """

    def __init__(
        self,
        residual_channels: int,
        dilation_channels: int,
        skip_channels: int,
        kernel_size: int,
        dilation: int,
        global_channels: int = 0,
        local_channels: int = 0,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.gate = GatedActivation(
            residual_channels, dilation_channels, kernel_size, dilation, global_channels, local_channels
        )
        self.residual = Dense(dilation_channels, residual_channels) if residual else None
        self.skip = Dense(dilation_channels, skip_channels)

    def forward(
        self, x: torch.Tensor, global_condition: torch.Tensor | None = None, local_condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.gate(x, global_condition, local_condition)  # (B, dilation_channels, T)
        out = x + self.residual(z) if self.residual is not None else x
        return out, self.skip(z)


def sequence_head(head: nn.Module | None, x: torch.Tensor, last_step_only: bool) -> torch.Tensor:
    """A per-step head (TCN, designed stacks): ``(batch, C, time)`` features -> ``head`` at every step
    ``(batch, out, time)``, or at the last step only ``(batch, out)``; the features themselves without a head."""
    if head is None:
        return x
    if last_step_only:
        return head(x[:, :, -1:]).squeeze(-1)  # (B, out)
    return head(x)  # (B, out, T)


TCNInit = Literal["locuslab", "normal"]


def check_tcn_init(init: str) -> None:
    """Refuse an unknown :class:`TemporalBlock` ``init`` with a message that lists the choices."""
    if init not in ("locuslab", "normal"):
        raise ValueError(f"init must be 'locuslab' or 'normal', got {init!r}")


class TemporalBlock(nn.Module):
    """TCN temporal block (Bai, Kolter & Koltun 2018, Fig. 1b; locuslab/TCN ``TemporalBlock``).

    Two dilated causal convs with weight normalisation, each followed by ReLU and dropout; the input, through a
    1x1 conv when the widths differ, is added and the sum goes through a final ReLU.

    Initialisation (``init``):

    * ``"locuslab"`` (default): what locuslab/TCN's code trains with, so what the paper's numbers come from:
      torch's default conv init (Kaiming-uniform) under weight normalisation (``g = ||v||``), and
      ``normal(0, init_std)`` for the 1x1 conv. locuslab's ``init_weights`` also draws the weight-normed convs
      from ``normal(0, 0.01)``, but it does so after weight norm is applied, on a tensor that is recomputed from
      ``g`` and ``v`` at the next forward pass, so that draw never takes effect.
    * ``"normal"``: what that code means to do: every conv weight ``normal(0, init_std)``, drawn before weight
      norm so that it holds. Eight levels of such small weights start the adding problem deep on its
      MSE ~0.17 plateau (see ``docs/results/tcn_tasks.md``).

    Args:
        in_channels, out_channels: widths.
        kernel_size, dilation: of both convs.
        dropout: probability after each conv's ReLU.
        init: ``"locuslab"`` or ``"normal"``, see above.
        init_std: standard deviation of the ``normal`` draws.

    Shapes:
        ``(batch, in_channels, time) -> (batch, out_channels, time)``; output ``t`` sees inputs ``<= t``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int,
        dropout: float = 0.0,
        init: TCNInit = "locuslab",
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        check_tcn_init(init)
        conv_std = init_std if init == "normal" else None
        self.conv1 = self._weight_normed(Conv1d(in_channels, out_channels, kernel_size, dilation=dilation), conv_std)
        self.relu1, self.dropout1 = nn.ReLU(), nn.Dropout(dropout)
        self.conv2 = self._weight_normed(Conv1d(out_channels, out_channels, kernel_size, dilation=dilation), conv_std)
        self.relu2, self.dropout2 = nn.ReLU(), nn.Dropout(dropout)
        self.downsample = Dense(in_channels, out_channels) if in_channels != out_channels else None
        if self.downsample is not None:
            nn.init.normal_(self.downsample.weight, 0.0, init_std)
        self.relu = nn.ReLU()

    @staticmethod
    def _weight_normed(conv: Conv1d, init_std: float | None) -> Conv1d:
        """``conv`` under weight norm, its weight first drawn from ``normal(0, init_std)`` unless ``None``."""
        if init_std is not None:
            nn.init.normal_(conv.weight, 0.0, init_std)
        return weight_norm(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout1(self.relu1(self.conv1(x)))
        out = self.dropout2(self.relu2(self.conv2(out)))
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)
