"""The receptive-field invariant on random models (tests/model_grammar.py): on every draw the field is flagged (not
followed, causality unknown) or holds every input step autograd finds for the first, middle and last output steps,
united over several random inputs. Only containment is asserted: max-type ops and dead units shrink a gradient, and
a degenerate draw (a LayerNorm over one channel outputs a constant) has none at all."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from torch import nn

from dilated.analysis import receptive_field
from model_grammar import models

DRAWS = 6  # random inputs whose gradients are united


def autograd_union(model: nn.Module, shape: tuple[int, ...], axis: int, t: int, dtype: torch.dtype) -> list[int]:
    """Input steps whose gradient reaches output step ``t`` (on ``axis``) at any of a few random inputs."""
    seen: set[int] = set()
    for seed in range(DRAWS):
        x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(seed), dtype=dtype).requires_grad_(True)
        out = model(x)
        (grad,) = torch.autograd.grad(out.select(axis, t).sum(), x, allow_unused=True)
        if grad is not None:
            seen |= set(torch.nonzero(grad.reshape(-1, shape[-1]).abs().sum(0)).flatten().tolist())
    return sorted(seen)


def check(drawn: tuple[nn.Module, tuple[int, int, int], str]) -> str:
    """``"flagged"`` or ``"exact"`` for one drawn model; fails on a field that differs from autograd's."""
    model, shape, description = drawn
    model.eval()
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    rf = receptive_field(model, shape[1:])
    flagged = [row for row in (*rf.layers, rf) if row.measured or row.unfollowed or row.causal == "unknown"]
    if flagged or rf.field is None or rf.axis is None:
        return "flagged"
    for t in sorted({0, rf.length // 2, rf.length - 1}):
        found = autograd_union(model, shape[1:], rf.axis, t, dtype)
        missing = sorted(set(found) - set(rf.steps(t)))
        assert not missing, f"{description}: output step {t} reads {rf.steps(t)}, autograd also finds {missing}"
    return "exact"


@settings(max_examples=10)
@given(models(max_parts=4, wrappers=False, modes=False))
def test_a_field_is_flagged_or_exactly_what_autograd_finds(drawn):
    check(drawn)


@pytest.mark.slow
@pytest.mark.soak  # off in CI (pyproject addopts); -m soak or -m slow runs it
@settings(max_examples=2000)
@given(models(max_parts=5, wrappers=False, modes=False))
def test_a_field_is_flagged_or_exactly_what_autograd_finds_thousands(drawn):
    check(drawn)
