"""TransLOB (Wallbridge, "Transformers for Limit Order Books", 2020, arXiv:2003.00130; reference code
jwallbridge/translob, Keras: ``LobFeatures.lob_dilated``, ``LobPosition``, ``LobAttention``, ``LobTransformer``).

Choices the reference makes or leaves open, each a :class:`TransLOBConfig` option:

* **Head size** (``head_dim``): the reference's ``MultiHeadSelfAttention`` has one bias-free ``(d_model,
  3 d_model)`` kernel for q, k and v and splits each into ``num_heads`` heads of ``d_model // num_heads`` = 5
  features (not ``d_model`` per head as in Keras ``MultiHeadAttention(key_dim=d_model)``); heads are concatenated
  back to ``d_model`` with **no output projection** (``attention_output_projection=False``).
* **Masking** (``causal_attention``): ``TransformerBlock(..., use_masking=True)`` masks attention to later
  positions (the paper's "masked self-attention"), so transformer output ``t`` sees steps ``<= t``; only the
  flatten + dense classifier sees the whole window.
* **Scaling** (``attention_scale``): logits divided by ``sqrt(d_model // num_heads)`` = ``sqrt(head_dim)``.
* **Dropout** (``attention_dropout``): none inside the transformer; only ``Dropout(0.1)`` after ``Dense(64)``.
* **Weight sharing** (``share_block_weights``): the reference notebook (the public copies of it) creates one
  ``TransformerBlock`` and applies it twice, so both blocks share weights (2,610 parameters, total 101,655);
  ``share_block_weights=False`` gives two independent blocks (104,265).
* **Norms**: post-norm (``LayerNorm(x + sublayer(x))``) as the reference; ``layer_norm_eps=1e-5`` as its
  ``LayerNormalization`` (Keras' built-in layer, which the notebooks use after the convs, defaults to 1e-3).
* **Regularisation**: ``Dense(64)`` has ``kernel_regularizer='l2'`` (Keras' 0.01): add
  :meth:`TransLOB.regularization_loss` to the training loss to reproduce it.

The reference's attention reshapes keys with ``reshape`` where a transpose is meant (so keys are scrambled across
time and feature) and merges heads with a ``d_model``-sized reshape that mixes samples of a batch; this module
implements the standard masked multi-head attention the code and paper describe. Parameter counts agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from dilated.geometry import Layer, receptive_field
from dilated.layers import Conv1d, channels_last
from dilated.models._attention import attention
from dilated.models._blocks import CausalConvStack, init_like_keras
from dilated.models._registry import DataFit, register_model


@dataclass
class TransLOBConfig:
    """TransLOB hyper-parameters; the defaults are the paper's and the reference code's (see the module docstring).

    Attributes:
        num_features: LOB features per event (channels): 10 levels x (ask price, ask size, bid price, bid size).
        window: events per input (time steps); the flatten + dense head is sized for it.
        conv_channels, conv_kernel_size, conv_dilations: the causal convolutional module (14, 2, 1..16).
        num_blocks, num_heads, ffn_multiplier: transformer blocks, heads per block, FFN width / ``d_model``.
        head_dim: features per head; ``None`` means ``d_model // num_heads``.
        attention_output_projection: a bias-free ``heads * head_dim -> d_model`` map after attention (required
            when ``heads * head_dim != d_model``).
        causal_attention: mask attention to later steps.
        attention_scale: logit scale; ``None`` means ``1 / sqrt(head_dim)``.
        qkv_bias: biases on the q, k, v projections.
        attention_dropout: dropout on the attention weights.
        share_block_weights: one transformer block applied ``num_blocks`` times.
        layer_norm_eps: epsilon of every layer norm.
        hidden_units, dropout, num_classes: the classifier ``Dense(64, relu) -> Dropout(0.1) -> Dense(3)``.
        hidden_l2: Keras L2 factor on the hidden dense kernel, see :meth:`TransLOB.regularization_loss`.
    """

    num_features: int = 40
    window: int = 100
    conv_channels: int = 14
    conv_kernel_size: int = 2
    conv_dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    num_blocks: int = 2
    num_heads: int = 3
    head_dim: int | None = None
    attention_output_projection: bool = False
    causal_attention: bool = True
    attention_scale: float | None = None
    qkv_bias: bool = False
    attention_dropout: float = 0.0
    ffn_multiplier: int = 4
    share_block_weights: bool = True
    layer_norm_eps: float = 1e-5
    hidden_units: int = 64
    dropout: float = 0.1
    num_classes: int = 3
    hidden_l2: float = 0.01

    def __post_init__(self) -> None:
        self.conv_dilations = tuple(int(d) for d in self.conv_dilations)
        if self.head_dim is None:
            if self.d_model % self.num_heads:
                raise ValueError(
                    f"d_model = conv_channels + 1 = {self.d_model} is not divisible by num_heads = "
                    f"{self.num_heads}; set head_dim (and attention_output_projection=True)"
                )
            self.head_dim = self.resolved_head_dim
        if self.num_heads * self.head_dim != self.d_model and not self.attention_output_projection:
            raise ValueError(
                f"num_heads * head_dim = {self.num_heads * self.head_dim} differs from d_model = "
                f"{self.d_model}: set attention_output_projection=True"
            )
        if self.window < 2:
            raise ValueError(f"window must be >= 2 (the position channel spans [-1, 1]), got {self.window}")

    @property
    def d_model(self) -> int:
        """Transformer width: the conv channels plus the position channel."""
        return self.conv_channels + 1

    @property
    def resolved_head_dim(self) -> int:
        """Features per head: ``head_dim``, or ``d_model // num_heads`` when it is ``None``."""
        return self.d_model // self.num_heads if self.head_dim is None else self.head_dim


class PositionChannel(nn.Module):
    """Appends the linear position ``2 t / (T - 1) - 1`` (in ``[-1, 1]``) as a last feature:
    ``(B, T, C) -> (B, T, C + 1)`` (reference ``LobPosition.positional_encoding``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = x.shape
        position = torch.linspace(-1.0, 1.0, steps, dtype=x.dtype, device=x.device)
        return torch.cat([x, position.view(1, steps, 1).expand(batch, steps, 1)], dim=-1)


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused q/k/v projection (reference ``MultiHeadSelfAttention``).

    Shapes: ``(B, T, d_model) -> (B, T, d_model)``.
    """

    geometry = Layer(kind="global", name="self_attention")

    def __init__(self, config: TransLOBConfig) -> None:
        super().__init__()
        c = config
        self.num_heads, self.head_dim, self.causal = c.num_heads, c.resolved_head_dim, c.causal_attention
        self.scale = c.attention_scale if c.attention_scale is not None else 1.0 / math.sqrt(self.head_dim)
        self.dropout = c.attention_dropout
        width = c.num_heads * self.head_dim
        self.qkv = nn.Linear(c.d_model, 3 * width, bias=c.qkv_bias)
        self.projection = nn.Linear(width, c.d_model, bias=False) if c.attention_output_projection else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = x.shape
        q, k, v = (
            t.view(batch, steps, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
            for t in self.qkv(x).chunk(3, dim=-1)
        )
        y = attention(q, k, v, self.scale, self.causal, dropout=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(batch, steps, self.num_heads * self.head_dim)  # heads concatenated
        return y if self.projection is None else self.projection(y)


class TransformerBlock(nn.Module):
    """Post-norm transformer block (reference ``TransformerBlock``): ``x = LN(x + MHSA(x))``,
    ``x = LN(x + FFN(x))`` with ``FFN = Linear(d, 4d) -> ReLU -> Linear(4d, d)``.

    Shapes: ``(B, T, d_model) -> (B, T, d_model)``.
    """

    geometry = Layer(kind="global", name="transformer_block")

    def __init__(self, config: TransLOBConfig) -> None:
        super().__init__()
        d, hidden = config.d_model, config.ffn_multiplier * config.d_model
        self.attention = SelfAttention(config)
        self.norm1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.ffn = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, d))
        self.norm2 = nn.LayerNorm(d, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attention(x))
        return self.norm2(x + self.ffn(x))


@register_model(
    "translob",
    TransLOBConfig,
    lambda model: (model.config.num_features, model.config.window),
    DataFit(channels="num_features", length="window", classes="num_classes"),
)
class TransLOB(nn.Module):
    """TransLOB: causal dilated convs -> layer norm -> position channel -> transformer blocks -> flatten ->
    ``Dense(64, relu)`` -> dropout -> ``Dense(3)`` (Wallbridge 2020, Sec. 3-4, Fig. 1).

    Layout: the paper and the Keras reference take windows ``(batch, 100, 40)`` (events, features). Here the input
    is channels-first like every model in ``dilated``: ``(batch, 40, 100)`` = ``paper_input.transpose(1, 2)``.
    The convs run on ``(B, C, T)``; :func:`dilated.layers.channels_last` then turns the features to
    ``(B, T, C)`` for the layer norm and the transformer, matching the reference's flatten order.

    ``receptive_field`` is that of the convolutional module (32 events): each per-event feature fed to attention
    depends on that many events; the classifier then sees the whole window.

    Args:
        x: ``(batch, num_features, window)`` = ``(batch, 40, 100)``.

    Returns:
        ``(batch, num_classes)`` logits (the reference's softmax is left to the loss).
    """

    def __init__(self, config: TransLOBConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or TransLOBConfig()
        self.conv = CausalConvStack(c.num_features, c.conv_channels, c.conv_kernel_size, c.conv_dilations)
        self.norm = nn.LayerNorm(c.conv_channels, eps=c.layer_norm_eps)
        self.position = PositionChannel()
        if c.share_block_weights:
            block = TransformerBlock(c)
            self.blocks = nn.ModuleList([block] * c.num_blocks)
        else:
            self.blocks = nn.ModuleList(TransformerBlock(c) for _ in range(c.num_blocks))
        self.flatten = nn.Flatten()
        self.hidden = nn.Linear(c.window * c.d_model, c.hidden_units)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(c.dropout)
        self.classifier = nn.Linear(c.hidden_units, c.num_classes)
        init_like_keras(self)

    @property
    def receptive_field(self) -> int:
        """Events each per-event feature entering attention depends on (the conv stack's convs in a row;
        ``dilated.receptive_field`` finds the same from the dataflow)."""
        return receptive_field([conv.geometry for conv in cast(Iterable[Conv1d], self.conv.convs)])

    def _check_input(self, x: torch.Tensor, whole_window: bool = False) -> None:
        c = self.config
        if x.dim() != 3 or x.shape[1] != c.num_features:
            raise ValueError(
                f"TransLOB expects (batch, {c.num_features}, time); got {tuple(x.shape)} "
                "(a paper-layout window (batch, time, features) needs .transpose(1, 2))"
            )
        if whole_window and x.shape[-1] != c.window:
            raise ValueError(
                f"TransLOB's dense head is sized for windows of {c.window} events; got {x.shape[-1]} (set window=...)"
            )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The transformer's output ``(batch, window, d_model)``; with causal attention, step ``t`` sees events
        ``<= t``."""
        self._check_input(x)
        h = channels_last(self.conv(x))  # (B, C, T) -> (B, T, C)
        h = self.position(self.norm(h))  # (B, T, d_model)
        for block in self.blocks:
            h = block(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x, whole_window=True)
        h = self.flatten(self.features(x))  # (B, T * d_model), time-major as Keras' Flatten
        h = self.dropout(self.relu(self.hidden(h)))
        return self.classifier(h)  # (B, num_classes)

    def regularization_loss(self) -> torch.Tensor:
        """The reference's L2 penalty ``hidden_l2 * sum(W**2)`` on the hidden dense kernel."""
        return self.config.hidden_l2 * self.hidden.weight.square().sum()
