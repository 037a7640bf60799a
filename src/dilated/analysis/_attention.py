"""Attention masks read as time-axis fields: which keys each query step reads, shared by the torch tracer and the
Keras reader."""

from __future__ import annotations

import math

import numpy as np
import torch

from dilated.analysis._fields import Field, Steps
from dilated.analysis._graph import Unfollowed
from dilated.analysis._values import concrete


def allowed_keys(mask: torch.Tensor | None, queries: int, keys: int, causal: bool, true_attends: bool) -> np.ndarray:
    """Which keys each query may attend to, ``(queries, keys)``, the same for every batch and head. A boolean
    mask is ``True`` where attending is allowed (``scaled_dot_product_attention``) or forbidden
    (``nn.MultiheadAttention``); a float mask forbids ``-inf``."""
    if causal:
        allowed = np.tril(np.ones((queries, keys), dtype=bool))
    else:
        allowed = np.ones((queries, keys), dtype=bool)
    if mask is None:
        return allowed
    m = concrete(torch.as_tensor(mask))
    if m.dtype == torch.bool:
        m = m if true_attends else ~m
    else:
        m = m > -math.inf
    m = m.reshape(-1, *m.shape[-2:]) if m.dim() > 2 else m.reshape(1, *m.shape[-2:])
    if not bool((m == m[:1]).all()):
        raise Unfollowed("an attention mask that differs between batch items or heads")
    return allowed & np.broadcast_to(m[0].numpy(), (queries, keys))


def attention_rows(allowed: np.ndarray) -> tuple[str, Steps | None]:
    """``("all", None)``, ``("past", None)`` or ``("band", offsets)``: how query ``i``'s keys depend on ``i``."""
    q, k = allowed.shape
    if allowed.all():
        return "all", None
    if q == k and np.array_equal(allowed, np.tril(np.ones((q, k), dtype=bool))):
        return "past", None
    middle = q // 2
    offsets = Steps.of(int(j) - middle for j in np.nonzero(allowed[middle])[0])
    expected = np.zeros_like(allowed)
    for i in range(q):
        for j in offsets.values():
            if 0 <= i + j < k:
                expected[i, i + j] = True
    if q == k and np.array_equal(allowed, expected):
        return "band", offsets
    raise Unfollowed("an attention mask that is neither full, causal nor a fixed band")


def read_keys(f: Field, rows: tuple[str, Steps | None], length: int) -> Field:
    """The field of an attention output: each query step reads the keys ``rows`` allows (see
    :func:`attention_rows`), over the field ``f`` of the keys and values."""
    kind, offsets = rows
    if kind == "all":
        return Field.constant(f.union_of(length))
    if kind == "past":
        return Field(1, 1, (f.prefix(0),)) if not f.absolute else f
    assert offsets is not None, "attention_rows gives a band with its offsets"
    return f.gather(1, 1, [offsets])
