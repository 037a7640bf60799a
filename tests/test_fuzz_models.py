"""Differential fuzzing of ``dilated.stream`` against the model's own forward (see ``model_grammar``).

The one invariant, on every model the grammar draws (supported or not): the stream equals the model's forward on
fresh random inputs of several lengths and scales, or building or first stepping it raises a ``ValueError`` /
``TypeError`` whose message is one line. CI draws a few dozen models; ``-m slow`` draws thousands and prints how
many streamed exactly and how many were refused (never a wrong one: that fails the test).
"""

from __future__ import annotations

import copy
import os
import warnings
from collections import Counter

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from torch import nn

import dilated
from model_grammar import models

OUTCOMES: Counter[str] = Counter()


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """The model's output on ``x`` (on a copy: train mode may update statistics), or ``None`` where its own
    forward refuses the length (a trace that baked one in)."""
    try:
        reference = copy.deepcopy(model)
    except Exception:  # noqa: BLE001 - a module that cannot be copied runs as it is
        reference = model
    try:
        with torch.no_grad():
            out = reference(x)
    except RuntimeError:
        return None
    return out if isinstance(out, torch.Tensor) else None


def _streamed(s: dilated.streaming.StreamEngine, x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(batch, channels, n)`` stepped through ``s`` in chunks of 1, 5 and the rest."""
    n, outs, a = x.shape[-1], [], 0
    for size in (1, 5, n):
        b = min(n, a + size)
        if b > a:
            outs.append(s.step_many(x[..., a:b]))
        a = b
    return torch.cat(outs, dim=-1)


def assert_streams_exactly_or_refuses(model: nn.Module, shape: tuple[int, int, int], description: str) -> str:
    """The invariant; returns ``"exact"`` or ``"refused"``."""
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    batch, channels, time = shape
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = dilated.stream(model, batch)
            s.step_many(torch.zeros(batch, channels, 1, dtype=dtype))  # the check runs at the latest here
    except (ValueError, TypeError) as error:
        message = str(error)
        assert message and "\n" not in message, f"{description}: not a one-line refusal: {message!r}"
        return "refused"
    generator = torch.Generator().manual_seed(1)
    for length, scale in ((time, 1.0), (time + 37, 1e-2), (3 * time + 5, 30.0)):
        x = torch.randn(batch, channels, length, generator=generator, dtype=dtype) * scale
        expected = _forward(model, x)
        if expected is None:
            continue
        s.reset()
        got = _streamed(s, x)
        assert got.shape == expected.shape, f"{description}: {tuple(got.shape)} != {tuple(expected.shape)}"
        tol = 1e-9 if dtype == torch.float64 else 1e-4
        bound = tol * (1 + expected.abs() + expected.abs().max())
        wrong = float(((got - expected).abs() - bound).max())
        assert wrong <= 0, f"{description}: streamed {s.backend} off by {wrong:.3g} at length {length}"
    return "exact"


@settings(max_examples=int(os.environ.get("FUZZ_MODELS", "25")), deadline=None, suppress_health_check=list(HealthCheck))
@given(models())
def test_stream_is_exact_or_refused(drawn: tuple[nn.Module, tuple[int, int, int], str]) -> None:
    OUTCOMES[assert_streams_exactly_or_refuses(*drawn)] += 1


@pytest.mark.slow
@pytest.mark.soak  # off in CI (pyproject addopts); -m soak or -m slow runs it
@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(models())
def test_stream_is_exact_or_refused_many(drawn: tuple[nn.Module, tuple[int, int, int], str]) -> None:
    OUTCOMES[assert_streams_exactly_or_refuses(*drawn)] += 1


def teardown_module() -> None:
    print(f"\nmodels streamed exactly: {OUTCOMES['exact']}, refused in one line: {OUTCOMES['refused']}")
