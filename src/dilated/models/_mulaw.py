"""Mu-law companding and quantisation (ITU-T G.711 style), as WaveNet uses for its 256-way categorical output.

``F(x) = sign(x) * ln(1 + mu |x|) / ln(1 + mu)`` maps ``x`` in ``[-1, 1]`` to ``[-1, 1]``; the result is split into
``mu + 1`` equal bins whose centres ``2 q / mu - 1`` (``q = 0 .. mu``) decode back through ``F^-1``. Hence:

* ``mu_law_decode`` then ``mu_law_encode`` returns every code unchanged;
* ``mu_law_encode`` picks the code whose centre is nearest to ``F(x)`` (error at most ``1 / mu`` in the companded
  domain), so ``|x - decode(encode(x))|`` is at most half a bin mapped back through ``F^-1``.

Arithmetic is done in float64 so that these hold exactly for float32 inputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _check_mu(mu: int) -> None:
    if isinstance(mu, bool) or not isinstance(mu, int) or mu < 1:
        raise ValueError(f"mu must be an int >= 1 (255 for 256 codes), got {mu!r}")


def mu_law_compress(x: torch.Tensor, mu: int = 255) -> torch.Tensor:
    """``F(x)``: companded values in ``[-1, 1]`` (``x`` is clipped to ``[-1, 1]`` first), float64."""
    _check_mu(mu)
    x = x.to(torch.float64).clamp(-1.0, 1.0)
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def mu_law_expand(y: torch.Tensor, mu: int = 255) -> torch.Tensor:
    """``F^-1(y)`` for companded ``y`` in ``[-1, 1]``, float64."""
    _check_mu(mu)
    y = y.to(torch.float64)
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


def mu_law_encode(x: torch.Tensor, mu: int = 255) -> torch.Tensor:
    """Quantise audio ``x`` (any shape, values in ``[-1, 1]``; clipped) to int64 codes in ``[0, mu]``."""
    y = mu_law_compress(x, mu)
    return torch.floor((y + 1.0) / 2.0 * mu + 0.5).to(torch.int64).clamp(0, mu)


def mu_law_decode(q: torch.Tensor, mu: int = 255, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Codes in ``[0, mu]`` (any shape) back to audio in ``[-1, 1]``."""
    _check_mu(mu)
    if q.dtype.is_floating_point or q.dtype == torch.bool:
        raise ValueError(f"mu_law_decode takes integer codes, got dtype {q.dtype}")
    if q.numel() and (int(q.min()) < 0 or int(q.max()) > mu):
        raise ValueError(f"codes must lie in [0, {mu}], got values in [{int(q.min())}, {int(q.max())}]")
    y = 2.0 * q.to(torch.float64) / mu - 1.0
    return mu_law_expand(y, mu).to(dtype)


def one_hot(q: torch.Tensor, num_classes: int = 256) -> torch.Tensor:
    """WaveNet's standard input: codes ``(batch, time)`` -> float one-hot ``(batch, num_classes, time)``."""
    return F.one_hot(q, num_classes).to(torch.float32).movedim(-1, 1)  # (B, T, Q) -> (B, Q, T)


class CodeEmbedding(nn.Module):
    """A learned alternative to :func:`one_hot`: codes ``(batch, time)`` -> ``(batch, channels, time)``.

    Equivalent to a bias-free 1x1 conv applied to the one-hot input, but without building it.
    """

    def __init__(self, channels: int, num_classes: int = 256) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_classes, channels)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return self.embedding(q).movedim(-1, 1)  # (B, T, C) -> (B, C, T)
