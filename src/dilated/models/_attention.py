"""Scaled dot-product attention for many small heads on the CPU.

TransLOB attends over 100 steps with heads of 5 features. For such narrow heads PyTorch's CPU kernels are slow:
``scaled_dot_product_attention`` (flash, blocked for wide heads) takes ~6.7 ms forward + backward for a batch of
32 x 3 heads, and the plain ``softmax(q k^T) v`` graph ~6.3 ms, mostly in products whose result is only ``head_dim``
wide (``(T, T) @ (T, D)``), which the BLAS runs at a few GFLOP/s. :func:`attention` computes every such product
transposed, ``((D, T) @ (T, T))^T``, where the result is ``T`` wide (~4x faster per product), with a hand-written
backward: the TransLOB train step gets 1.3x faster than with SDPA (``benchmarks/profile_training.py`` measures it
against both).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


class _NarrowHeadAttention(torch.autograd.Function):
    """``softmax(scale q k^T + mask) v`` on ``(N, T, D)`` with every ``(T, T) @ (T, D)`` product transposed."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, scale: float, mask: Tensor | None) -> Tensor:
        if mask is None:
            logits = (q @ k.transpose(1, 2)).mul_(scale)  # (N, T, T)
        else:
            logits = torch.baddbmm(mask, q, k.transpose(1, 2), alpha=scale)
        weights = torch.softmax(logits, dim=-1)
        ctx.save_for_backward(q, k, v, weights)
        ctx.scale = scale
        return (v.transpose(1, 2) @ weights.transpose(1, 2)).transpose(1, 2)  # (N, T, D)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor, None, None]:
        q, k, v, weights = ctx.saved_tensors
        grad_t = grad.transpose(1, 2)  # (N, D, T)
        grad_v = (grad_t @ weights).transpose(1, 2)  # = weights^T @ grad
        grad_weights = grad @ v.transpose(1, 2)  # (N, T, T)
        grad_logits = torch._softmax_backward_data(grad_weights, weights, -1, weights.dtype)
        grad_logits.mul_(ctx.scale)
        grad_q = (k.transpose(1, 2) @ grad_logits.transpose(1, 2)).transpose(1, 2)  # = grad_logits @ k
        grad_k = (q.transpose(1, 2) @ grad_logits).transpose(1, 2)  # = grad_logits^T @ q
        return grad_q, grad_k, grad_v, None, None


def attention(q: Tensor, k: Tensor, v: Tensor, scale: float, causal: bool, dropout: float = 0.0) -> Tensor:
    """Multi-head attention ``(B, H, T, D) -> (B, H, T, D)``, step ``t`` attending to steps ``<= t`` if ``causal``.

    Narrow heads (``D < 16``) on the CPU without attention dropout take the transposed-product path above; anything
    else goes to ``F.scaled_dot_product_attention`` (on a GPU its fused kernels are the fast ones).
    """
    batch, heads, steps, dim = q.shape
    if q.device.type != "cpu" or dim >= 16 or dropout > 0.0:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=causal, scale=scale)
    mask = None
    if causal:
        mask = torch.full((steps, steps), float("-inf"), dtype=q.dtype, device=q.device).triu_(1)
    flat = [t.reshape(batch * heads, steps, dim) for t in (q, k, v)]
    return _NarrowHeadAttention.apply(*flat, scale, mask).view(batch, heads, steps, dim)


__all__ = ["attention"]
