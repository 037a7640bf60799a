"""MLPLOB (Berti & Kasneci, "TLOB: A Novel Transformer Model with Dual Attention for Stock Price Trend Prediction
with Limit Order Book Data", 2025, arXiv:2502.15757, Sec. 3.1; reference code LeonardoBerti00/TLOB,
``models/mlplob.py``, ``models/bin.py``, ``config/config.py``).

An MLP-Mixer for windows of book events: bilinear normalisation (BiN), a linear embedding of each event's features,
then blocks that alternate an MLP across features (each event alone) with an MLP across time (each feature alone),
the last pair shrinking both axes four-fold, then dense layers to three classes.

Checked against the reference code (its modules built with the same sizes, its weights
copied into these, outputs equal to 2e-7): the reference's defaults ``hidden_dim=40, num_layers=3, window=384`` on 40
features give **3,012,411** parameters here, 3,012,414 there (its 3-parameter order-type embedding, used on LOBSTER
inputs only, is left out); ``hidden_dim=128`` with 3 / 6 layers: 5,562,837 / 9,505,749 (+3 there). The paper
gives no parameter count. Choices the reference makes, kept:

* Each mixing block is ``LayerNorm(fc2(GELU(fc1(x))) [+ x]) -> GELU`` (post-norm; the residual only where the size
  is kept; hidden widths ``4 x`` in every pair but the last, ``2 x`` there).
* The head divides the flattened ``(window / 4) * (hidden / 4)`` features by 4 with a ``Linear -> GELU`` while
  they exceed 128, then a ``Linear`` to the classes.
* BiN's two mixing weights start at 0.5; the reference resets a negative one to 0.01 in place (a CUDA-only
  branch); here a negative weight counts as 0.01 in the forward. Its normalisation across features has no guard
  against a zero spread in the reference; here a spread below 1e-4 counts as 1, as the reference does across time.

Not causal: BiN normalises with the whole window's statistics and the time-mixing MLPs read every event, so the
model classifies windows (the stream refuses it, naming BiN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dilated.geometry import Layer
from dilated.layers import channels_last
from dilated.models._registry import DataFit, register_model

_MIN_STD = 1e-4
_HEAD_WIDTH = 128


class BiN(nn.Module):
    """Bilinear normalisation (Tran et al., "Data normalization for bilinear structures in high-frequency
    financial time-series", ICPR 2020; reference ``BiN``): ``y1 * (z-score of each step across features, scaled
    and shifted per step) + y2 * (z-score of each feature across time, scaled and shifted per feature)``.

    Shapes: ``(B, C, T) -> (B, C, T)``.
    """

    geometry = Layer(kind="global", name="bilinear_normalisation")

    def __init__(self, channels: int, window: int) -> None:
        super().__init__()
        self.step_scale = nn.Parameter(nn.init.xavier_normal_(torch.empty(window, 1)))  # reference l1
        self.step_bias = nn.Parameter(torch.zeros(window, 1))  # B1
        self.feature_scale = nn.Parameter(nn.init.xavier_normal_(torch.empty(channels, 1)))  # l2
        self.feature_bias = nn.Parameter(torch.zeros(channels, 1))  # B2
        self.mix = nn.Parameter(torch.full((2,), 0.5))  # y1 (across features), y2 (across time)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def standard(axis: int) -> torch.Tensor:
            std = x.std(dim=axis, keepdim=True)
            return (x - x.mean(dim=axis, keepdim=True)) / torch.where(std < _MIN_STD, torch.ones_like(std), std)

        across_time = self.feature_scale * standard(2) + self.feature_bias  # (B, C, T), per feature
        across_features = self.step_scale.T * standard(1) + self.step_bias.T  # (B, C, T), per step
        mix = torch.where(self.mix < 0, torch.full_like(self.mix, 0.01), self.mix)
        return mix[0] * across_features + mix[1] * across_time


class MixerMLP(nn.Module):
    """One mixing MLP over the last axis (reference ``MLP``): ``GELU(LayerNorm(fc2(GELU(fc1(x))) [+ x]))``, the
    residual only where ``size == out``.

    Shapes: ``(..., size) -> (..., out)``.
    """

    def __init__(self, size: int, hidden: int, out: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(size, hidden), nn.Linear(hidden, out)
        self.norm = nn.LayerNorm(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc2(F.gelu(self.fc1(x)))
        if y.shape[-1] == x.shape[-1]:
            y = y + x
        return F.gelu(self.norm(y))


class TimeMixer(nn.Module):
    """A :class:`MixerMLP` across time, each feature alone: ``(B, T, H) -> (B, T', H)``."""

    geometry = Layer(kind="global", name="time_mixing")

    def __init__(self, window: int, hidden: int, out: int) -> None:
        super().__init__()
        self.mlp = MixerMLP(window, hidden, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x.transpose(1, 2)).transpose(1, 2)


def shrinking_head(features: int, classes: int) -> nn.Sequential:
    """The reference's head: ``Linear(n, n // 4) -> GELU`` while ``n > 128``, then ``Linear(n, classes)``."""
    layers: list[nn.Module] = []
    while features > _HEAD_WIDTH:
        layers += [nn.Linear(features, features // 4), nn.GELU()]
        features //= 4
    return nn.Sequential(*layers, nn.Linear(features, classes))


@dataclass
class MLPLOBConfig:
    """MLPLOB hyper-parameters; the defaults are the reference's (``config.py``: ``hidden_dim=40,
    num_layers=3, seq_size=384``).

    Attributes:
        num_features: book features per event (10 levels x 4).
        window: events per input; the time-mixing MLPs and the head are sized for it (divisible by 4).
        hidden_dim: width of each event's embedding (divisible by 4).
        num_layers: feature/time mixing pairs; the last one shrinks both axes four-fold.
        num_classes: up, stationary, down.
    """

    num_features: int = 40
    window: int = 384
    hidden_dim: int = 40
    num_layers: int = 3
    num_classes: int = 3

    def __post_init__(self) -> None:
        if self.window % 4 or self.hidden_dim % 4 or self.num_layers < 1:
            raise ValueError(
                f"window and hidden_dim must be divisible by 4 and num_layers >= 1; got {self.window}, "
                f"{self.hidden_dim}, {self.num_layers}"
            )


@register_model(
    "mlplob",
    MLPLOBConfig,
    lambda model: (model.config.num_features, model.config.window),
    DataFit(channels="num_features", length="window", classes="num_classes"),
)
class MLPLOB(nn.Module):
    """MLPLOB: BiN -> ``Linear(features, hidden)`` -> GELU -> ``num_layers`` x (feature MLP, time MLP) -> flatten
    -> shrinking dense head (Berti & Kasneci 2025, Sec. 3.1; module notes).

    Args:
        x: ``(batch, num_features, window)``; the reference's ``(batch, window, features)`` transposed.

    Returns:
        ``(batch, num_classes)`` logits.
    """

    def __init__(self, config: MLPLOBConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or MLPLOBConfig()
        self.norm = BiN(c.num_features, c.window)
        self.embed = nn.Linear(c.num_features, c.hidden_dim)
        blocks: list[nn.Module] = []
        for i in range(c.num_layers):
            last = i == c.num_layers - 1
            widen = 2 if last else 4
            out_hidden, out_window = (c.hidden_dim // 4, c.window // 4) if last else (c.hidden_dim, c.window)
            blocks.append(MixerMLP(c.hidden_dim, widen * c.hidden_dim, out_hidden))
            blocks.append(TimeMixer(c.window, widen * c.window, out_window))
        self.blocks = nn.Sequential(*blocks)
        self.head = shrinking_head((c.hidden_dim // 4) * (c.window // 4), c.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.dim() != 3 or x.shape[1:] != (c.num_features, c.window):
            raise ValueError(f"MLPLOB expects (batch, {c.num_features}, {c.window}); got {tuple(x.shape)}")
        h = F.gelu(self.embed(channels_last(self.norm(x))))  # (B, T, H)
        h = self.blocks(h)  # (B, T / 4, H / 4)
        return self.head(h.flatten(1))  # time-major, as the reference's reshape
