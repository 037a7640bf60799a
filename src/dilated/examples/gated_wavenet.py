"""A gated WaveNet written the way users write it (van den Oord et al. 2016, Fig. 4), in torch and in Keras.

A causal input conv (k=2), then gated units with dilations 1, 2, ..., 32: a tanh conv and a sigmoid conv run in
parallel on the same input and are multiplied; a 1x1 residual conv is added back and a 1x1 skip conv is summed
over units; ReLU and a 1x1 output conv. Its receptive field is 2 + 1 + 2 + 4 + 8 + 16 + 32 = 65 steps. Used by the
README and the tests; ``dilated summary dilated.examples.gated_wavenet:build --input 1,128`` shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from dilated.layers import Conv1d, Dense

DILATIONS = (1, 2, 4, 8, 16, 32)


class GatedUnit(nn.Module):
    """``tanh(filter(x)) * sigmoid(gate(x))``; returns ``(x + residual(z), skip(z))``, each ``(B, C, T)``."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.filter = Conv1d(channels, channels, 2, dilation=dilation)
        self.gate = Conv1d(channels, channels, 2, dilation=dilation)
        self.residual = Dense(channels, channels)
        self.skip = Dense(channels, channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.tanh(self.filter(x)) * torch.sigmoid(self.gate(x))
        return x + self.residual(z), self.skip(z)


class GatedWaveNet(nn.Module):
    """``(B, 1, T) -> (B, 1, T)``; output ``t`` reads inputs ``t - 64 .. t``."""

    def __init__(self, channels: int = 16, dilations: Sequence[int] = DILATIONS) -> None:
        super().__init__()
        self.input = Conv1d(1, channels, 2)
        self.units = nn.ModuleList(GatedUnit(channels, d) for d in dilations)
        self.output = Dense(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, skips = self.input(x), torch.zeros(())
        for unit in self.units:
            h, skip = unit(h)
            skips = skips + skip
        return self.output(torch.relu(skips))


def build(channels: int = 16) -> GatedWaveNet:
    """The torch model."""
    return GatedWaveNet(channels)


def unit() -> GatedWaveNet:
    """One gated unit after the input conv (dilation 4): the README's branched example."""
    return GatedWaveNet(8, (4,))


def build_keras(channels: int = 16, dilations: Sequence[int] = DILATIONS) -> Any:
    """The same model in Keras 3 with the functional API, on any input length: ``keras.Input((None, 1))``."""
    from dilated.keras_bridge import import_keras  # Keras is optional

    keras = import_keras()
    layers = keras.layers
    x = keras.Input((None, 1))
    h = layers.Conv1D(channels, 2, padding="causal")(x)
    skips = []
    for d in dilations:
        f = layers.Conv1D(channels, 2, padding="causal", dilation_rate=d, activation="tanh")(h)
        g = layers.Conv1D(channels, 2, padding="causal", dilation_rate=d, activation="sigmoid")(h)
        z = layers.Multiply()([f, g])
        h = layers.Add()([h, layers.Conv1D(channels, 1)(z)])
        skips.append(layers.Conv1D(channels, 1)(z))
    out = layers.Conv1D(1, 1)(layers.ReLU()(layers.Add()(skips)))
    return keras.Model(x, out, name="gated_wavenet")
