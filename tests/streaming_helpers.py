"""Helpers shared by the streaming tests: chunked streaming and the offline reference."""

from __future__ import annotations

import torch
from torch import nn


def chunks(length: int, sizes: list[int]) -> list[tuple[int, int]]:
    """Split ``range(length)`` into consecutive chunks of the given sizes (cycled)."""
    out, start, i = [], 0, 0
    while start < length:
        n = min(sizes[i % len(sizes)], length - start)
        out.append((start, start + n))
        start, i = start + n, i + 1
    return out


def run_in_chunks(s, x: torch.Tensor, sizes: list[int], **kwargs) -> torch.Tensor:
    """Stream ``x`` chunk by chunk (chunks of size 1 go through ``step``), concatenated along time."""
    outs = []
    for a, b in chunks(x.shape[-1], sizes):
        if b - a == 1:
            outs.append(s.step(x[..., a], **kwargs).unsqueeze(-1))
        else:
            outs.append(s.step_many(x[..., a:b], **kwargs))
    return torch.cat(outs, dim=-1)


def offline(model: nn.Module, x: torch.Tensor, **kwargs) -> torch.Tensor:
    was = model.training
    model.eval()
    with torch.no_grad():
        y = model(x, **kwargs)
    model.train(was)
    return y


class Chomp1d(nn.Module):
    """locuslab/TCN's trim: drop the last ``chomp_size`` steps that symmetric padding added."""

    def __init__(self, chomp_size: int) -> None:
        super().__init__()
        self.chomp_size = chomp_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : -self.chomp_size].contiguous()


class LocuslabBlock(nn.Module):
    """A temporal block as locuslab's users write it: weight-normed ``nn.Conv1d`` padded ``(k-1)*d`` on both sides,
    ``Chomp1d``, ReLU, dropout (twice), and a 1x1 downsample on the residual when the widths differ."""

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        kernel_size: int,
        dilation: int,
        dropout: float = 0.2,
        norm=torch.nn.utils.parametrizations.weight_norm,
    ) -> None:
        super().__init__()
        padding = (kernel_size - 1) * dilation
        self.conv1 = norm(nn.Conv1d(n_inputs, n_outputs, kernel_size, padding=padding, dilation=dilation))
        self.chomp1, self.relu1, self.dropout1 = Chomp1d(padding), nn.ReLU(), nn.Dropout(dropout)
        self.conv2 = norm(nn.Conv1d(n_outputs, n_outputs, kernel_size, padding=padding, dilation=dilation))
        self.chomp2, self.relu2, self.dropout2 = Chomp1d(padding), nn.ReLU(), nn.Dropout(dropout)
        self.net = nn.Sequential(
            self.conv1, self.chomp1, self.relu1, self.dropout1, self.conv2, self.chomp2, self.relu2, self.dropout2
        )
        self.downsample = nn.Conv1d(n_inputs, n_outputs, 1) if n_inputs != n_outputs else None
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class LocuslabTCN(nn.Module):
    """locuslab's ``TemporalConvNet``: one block per level, dilation ``2 ** level``."""

    def __init__(
        self, num_inputs: int, num_channels: list[int], kernel_size: int = 2, dropout: float = 0.2, **block: object
    ) -> None:
        super().__init__()
        layers = [
            LocuslabBlock(num_inputs if i == 0 else num_channels[i - 1], width, kernel_size, 2**i, dropout, **block)
            for i, width in enumerate(num_channels)
        ]
        self.network = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def stepwise(s, x: torch.Tensor, **kwargs) -> torch.Tensor:
    """Stream ``x`` ``(batch, channels, time)`` one step at a time; outputs stacked along time."""
    return torch.stack([s.step(x[..., t], **kwargs) for t in range(x.shape[-1])], dim=-1)
