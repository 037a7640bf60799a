"""Every op the fast compiler reads arguments of, drawn with random arguments passed positionally and by keyword,
against torch: the fast stream equals the model's forward, and an op the kernel covers for those arguments runs
on the kernel (``backend == "fast"``), so a misread argument cannot hide behind the eager fallback."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dilated.streaming import FastStream
from streaming_helpers import offline

value = st.floats(0.05, 3.0).map(lambda v: round(v, 3))


class Apply(nn.Module):
    """A 1x1 conv, then ``op`` of its output: ``(B, 3, T) -> (B, C', T)``."""

    def __init__(self, op: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.conv, self.op = nn.Conv1d(3, 3, 1), op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(self.conv(x))


@st.composite
def ops(draw: st.DrawFn) -> tuple[Callable[[torch.Tensor], torch.Tensor], bool, str]:
    """``(op, compiled, description)``: ``compiled`` where the kernel covers the op with these arguments."""
    keyword = draw(st.booleans())
    a, b = draw(value), draw(st.floats(0.5, 25.0).map(lambda v: round(v, 2)))
    name = draw(st.sampled_from(["leaky", "elu", "gelu", "softplus", "sum", "mean", "dropout", "clamp"]))
    op: Callable[[torch.Tensor], torch.Tensor]
    if name == "leaky":
        module = draw(st.booleans())
        if module:
            op = nn.LeakyReLU(negative_slope=a) if keyword else nn.LeakyReLU(a)
        else:
            op = (lambda x: F.leaky_relu(x, negative_slope=a)) if keyword else (lambda x: F.leaky_relu(x, a))
        return op, True, f"leaky_relu({a}) module={module} keyword={keyword}"
    if name == "elu":
        op = nn.ELU(alpha=a) if keyword else nn.ELU(a)
        return op, True, f"ELU({a}) keyword={keyword}"
    if name == "gelu":
        approximate = draw(st.sampled_from(["none", "tanh"]))
        return (lambda x: F.gelu(x, approximate=approximate)), True, f"gelu({approximate})"
    if name == "softplus":
        default = draw(st.booleans())
        beta, threshold = (1.0, 20.0) if default else (a, b)
        op = nn.Softplus(beta=beta, threshold=threshold) if keyword else nn.Softplus(beta, threshold)
        return op, default, f"Softplus({beta}, {threshold}) keyword={keyword}"
    if name in ("sum", "mean"):
        keepdim = True  # (without it the output loses its channel axis: (batch, time) is not a stream's layout)
        reduce = getattr(torch, name)
        if keyword:
            return (lambda x: reduce(x, dim=1, keepdim=keepdim)), True, f"{name}(dim=1, keepdim={keepdim})"
        return (lambda x: reduce(x, 1, keepdim)), True, f"{name}(1, {keepdim})"
    if name == "dropout":
        op = (lambda x: F.dropout(x, a / 4, training=False)) if keyword else (lambda x: F.dropout(x, a / 4, False))
        return op, True, f"dropout({a / 4}, training=False) keyword={keyword}"
    low = -a
    op = (lambda x: torch.clamp(x, min=low, max=b)) if keyword else (lambda x: torch.clamp(x, low, b))
    return op, False, f"clamp({low}, {b}) keyword={keyword}"


@settings(max_examples=60, deadline=None)
@given(ops(), st.integers(0, 1000))
def test_compiled_ops_read_their_arguments_as_torch_binds_them(drawn, seed):
    op, compiled, description = drawn
    torch.manual_seed(seed)
    model = Apply(op).eval()
    x = torch.randn(2, 3, 24) * 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = FastStream(model, 2, fallback="silent")
        got = s.step_many(x)
    assert float((got - offline(model, x)).abs().max()) <= 1e-4 * (1 + float(offline(model, x).abs().max())), (
        description
    )
    assert (s.backend == "fast") == compiled, f"{description}: ran on {s.backend} ({s.reason})"
