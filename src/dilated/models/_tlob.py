"""TLOB (Berti & Kasneci, "TLOB: A Novel Transformer Model with Dual Attention for Stock Price Trend Prediction with
Limit Order Book Data", 2025, arXiv:2502.15757, Sec. 3.2; reference code LeonardoBerti00/TLOB, ``models/tlob.py``,
``config/config.py``).

Dual attention over a window of book events: bilinear normalisation (BiN, as MLPLOB), a linear embedding of each
event plus a sinusoidal position, then layers that alternate self-attention across time (the events are the tokens)
with self-attention across features (the embedded features are the tokens, each a vector over the window), the last
pair shrinking both axes four-fold, then MLPLOB's shrinking dense head.

Checked against the reference code (its modules built with the same sizes, its weights copied into these, outputs
equal to 3e-7): the reference's defaults ``hidden_dim=40, num_layers=4, num_heads=1, window=128``, sinusoidal
positions, on 40 features give **1,135,971** parameters here, 1,135,974 there (its 3-parameter order-type embedding,
used on LOBSTER inputs only, is left out); the sweep's ``hidden_dim=128, 4 layers`` / ``256, 6 layers``: 2,300,309 /
8,782,837 (+3 there). The paper gives no parameter count. Choices the reference makes, kept:

* Each layer: separate ``q``, ``k``, ``v`` linear maps to ``dim * num_heads``, then ``torch.nn.MultiheadAttention``
  (with its own input and output projections), a map ``w0`` back to ``dim``, ``LayerNorm(x + attention)``, then a
  :class:`~dilated.models._mlplob.MixerMLP` (hidden ``4 x dim``), plus the layer's input again where the size is
  kept. No attention mask: every event sees the whole window.
* The head flattens feature-major (the reference's ``rearrange('b s f -> b (f s)')``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dilated.geometry import Layer
from dilated.layers import channels_last
from dilated.models._mlplob import BiN, MixerMLP, shrinking_head
from dilated.models._registry import DataFit, register_model


def sinusoidal_positions(steps: int, dim: int) -> torch.Tensor:
    """``(steps, dim)``: ``sin`` in even columns, ``cos`` in odd ones, of ``t / 10000^(2i / dim)``."""
    position = torch.arange(steps, dtype=torch.float32)[:, None]
    frequencies = torch.pow(10000.0, 2 * torch.arange(dim // 2) / dim)
    table = torch.zeros(steps, dim)
    table[:, 0::2] = torch.sin(position / frequencies)
    table[:, 1::2] = torch.cos(position / frequencies)
    return table


class DualAttentionLayer(nn.Module):
    """One TLOB layer over tokens of width ``dim`` (reference ``TransformerLayer``; module notes).

    Shapes: ``(B, tokens, dim) -> (B, tokens, out)``; tokens are events (temporal attention) or features.
    """

    geometry = Layer(kind="global", name="self_attention")

    def __init__(self, dim: int, num_heads: int, out: int) -> None:
        super().__init__()
        width = dim * num_heads
        self.q, self.k, self.v = nn.Linear(dim, width), nn.Linear(dim, width), nn.Linear(dim, width)
        self.attention = nn.MultiheadAttention(width, num_heads, batch_first=True)
        self.w0 = nn.Linear(width, dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = MixerMLP(dim, 4 * dim, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attention(self.q(x), self.k(x), self.v(x), need_weights=False)
        y = self.mlp(self.norm(x + self.w0(attended)))
        return y + x if y.shape[-1] == x.shape[-1] else y


@dataclass
class TLOBConfig:
    """TLOB hyper-parameters; the defaults are the reference's (``config.py``: ``hidden_dim=40, num_layers=4,
    num_heads=1, is_sin_emb=True, seq_size=128``).

    Attributes:
        num_features: book features per event (10 levels x 4).
        window: events per input; the feature-attention layers and the head are sized for it (divisible by 4).
        hidden_dim: width of each event's embedding (even, divisible by 4).
        num_layers: temporal/feature attention pairs; the last one shrinks both axes four-fold.
        num_heads: attention heads (each of the full width, as the reference).
        sinusoidal_position: fixed sinusoidal positions (else learned ones, drawn from a standard normal).
        num_classes: up, stationary, down.
    """

    num_features: int = 40
    window: int = 128
    hidden_dim: int = 40
    num_layers: int = 4
    num_heads: int = 1
    sinusoidal_position: bool = True
    num_classes: int = 3

    def __post_init__(self) -> None:
        if self.window % 4 or self.hidden_dim % 4 or self.num_layers < 1 or self.num_heads < 1:
            raise ValueError(
                f"window and hidden_dim must be divisible by 4, num_layers and num_heads >= 1; got {self.window}, "
                f"{self.hidden_dim}, {self.num_layers}, {self.num_heads}"
            )


@register_model(
    "tlob",
    TLOBConfig,
    lambda model: (model.config.num_features, model.config.window),
    DataFit(channels="num_features", length="window", classes="num_classes"),
)
class TLOB(nn.Module):
    """TLOB: BiN -> ``Linear(features, hidden)`` + positions -> ``num_layers`` x (attention across time, across
    features) -> flatten -> shrinking dense head (Berti & Kasneci 2025, Sec. 3.2; module notes).

    Args:
        x: ``(batch, num_features, window)``; the reference's ``(batch, window, features)`` transposed.

    Returns:
        ``(batch, num_classes)`` logits.
    """

    def __init__(self, config: TLOBConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or TLOBConfig()
        self.norm = BiN(c.num_features, c.window)
        self.embed = nn.Linear(c.num_features, c.hidden_dim)
        if c.sinusoidal_position:
            self.register_buffer("position", sinusoidal_positions(c.window, c.hidden_dim)[None], persistent=False)
        else:
            self.position = nn.Parameter(torch.randn(1, c.window, c.hidden_dim))
        self.layers = nn.ModuleList()
        for i in range(c.num_layers):
            last = i == c.num_layers - 1
            self.layers.append(
                DualAttentionLayer(c.hidden_dim, c.num_heads, c.hidden_dim // 4 if last else c.hidden_dim)
            )
            self.layers.append(DualAttentionLayer(c.window, c.num_heads, c.window // 4 if last else c.window))
        self.head = shrinking_head((c.hidden_dim // 4) * (c.window // 4), c.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.dim() != 3 or x.shape[1:] != (c.num_features, c.window):
            raise ValueError(f"TLOB expects (batch, {c.num_features}, {c.window}); got {tuple(x.shape)}")
        h = self.embed(channels_last(self.norm(x))) + self.position  # (B, T, H)
        for layer in self.layers:
            h = layer(h).transpose(1, 2)  # temporal: (B, T, H) -> (B, H, T); feature: (B, H, T) -> (B, T, H)
        return self.head(h.transpose(1, 2).flatten(1))  # (B, H / 4, T / 4) flattened feature-major
