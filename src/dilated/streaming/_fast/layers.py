"""Layers compiled as single instructions (weights pre-extracted, weight norm folded in): convolutions and linear
maps, embeddings, batch norm and layer norm. Each function reads one module and emits its instruction."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dilated.streaming._fast.builder import Placed, ProgramBuilder, Unsupported
from dilated.streaming._fast.instructions import AFFINE, CONV, EMBED, LAYERNORM


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def dense(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped conv weight ``(out, in / groups, k)`` as the equivalent dense ``(out, in, k)``."""
    if groups == 1:
        return weight
    out, per_group, k = weight.shape
    result = weight.new_zeros(out, per_group * groups, k)
    step = out // groups
    for g in range(groups):
        result[g * step : (g + 1) * step, g * per_group : (g + 1) * per_group] = weight[g * step : (g + 1) * step]
    return result


def conv(
    p: ProgramBuilder,
    name: str,
    x: Placed,
    out: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    groups: int,
    history: tuple[int, int, int] | None = None,
    stateful: bool = False,
) -> None:
    """One conv step: ``weight`` ``(out, in / groups, k)`` over the input ``x`` (this step's ``in`` values) and, for
    ``k > 1``, the earlier taps held in a ring: ``history`` = (ring offset, rows, dilation). A ``stateful`` conv's
    output ``out`` is ``(1, C, 1 + right)`` (see :meth:`ProgramBuilder.fresh_step`). A linear map is a conv of one
    tap without history."""
    ring, rows, dilation = history or (0, 1, 1)
    w = dense(weight.detach().float().cpu(), groups)  # (out, in, k)
    cout, cin, k = w.shape
    if x.addr.size != cin:
        raise Unsupported(f"{name} on an input of {x.addr.size} values per step, expected {cin}")
    base_in = p.contiguous(x.addr)
    saxpy = cout >= 4 * k * cin  # few inputs, many outputs: accumulate rows rather than dot products
    layout = (2, 1, 0) if saxpy else (0, 2, 1)  # (k, in, out) or (out, k, in)
    w_off = p.param(w.permute(*layout).contiguous().numpy())
    b_off = p.param(_array(bias)) if bias is not None else 0
    scratch = p.alloc(k * cin) if k > 1 else 0  # the k taps gathered side by side
    base = p.fresh_step(out) if stateful else p.fresh(out)
    p.emit(
        CONV,
        out=base,
        inp=base_in,
        weight=w_off,
        bias=b_off,
        cin=cin,
        cout=cout,
        k=k,
        dilation=dilation,
        ring=ring,
        rows=rows,
        scratch=scratch,
        has_bias=int(bias is not None),
        saxpy=int(saxpy),
    )


def embedding(p: ProgramBuilder, module: nn.Embedding, x: Placed, out: torch.Tensor) -> None:
    if x.addr.size != 1:
        raise Unsupported("an embedding of more than one code per step")
    if module.max_norm is not None:
        raise Unsupported("Embedding with max_norm")
    table = p.param(_array(module.weight))
    p.emit(
        EMBED,
        out=p.fresh(out),
        inp=int(x.addr.ravel()[0]),
        table=table,
        dim=module.embedding_dim,
        rows=module.num_embeddings,
    )


def batch_norm(p: ProgramBuilder, module: nn.BatchNorm1d, x: Placed, out: torch.Tensor) -> None:
    """Batch norm with running statistics: a per-channel affine map."""
    mean, var = module.running_mean, module.running_var
    if module.training or not module.track_running_stats or mean is None or var is None:
        raise Unsupported("BatchNorm1d without running statistics")
    channels = module.num_features
    if x.tensor.dim() < 2 or x.tensor.shape[1] != channels or x.addr.size != channels:
        raise Unsupported("BatchNorm1d on more than one step per stream")
    scale = module.weight.detach() if module.weight is not None else torch.ones(channels)
    scale = scale / torch.sqrt(var + module.eps)
    shift = module.bias.detach() if module.bias is not None else torch.zeros(channels)
    shift = shift - mean * scale
    base_in = p.contiguous(x.addr)
    p.emit(
        AFFINE, out=p.fresh(out), inp=base_in, n=channels, scale=p.param(_array(scale)), shift=p.param(_array(shift))
    )


def layer_norm(p: ProgramBuilder, module: nn.LayerNorm, x: Placed, out: torch.Tensor) -> None:
    n = int(np.prod(module.normalized_shape))
    if n != x.addr.size:
        raise Unsupported("LayerNorm over more than one step per stream")
    weight = p.param(_array(module.weight) if module.weight is not None else np.ones(n))
    bias = p.param(_array(module.bias) if module.bias is not None else np.zeros(n))
    base_in = p.contiguous(x.addr)
    p.emit(LAYERNORM, out=p.fresh(out), inp=base_in, n=n, weight=weight, bias=bias, eps=p.param([module.eps]))
