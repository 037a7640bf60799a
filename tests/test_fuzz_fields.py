"""The receptive-field invariant on random models (tests/model_grammar.py): on every draw the field is flagged (not
followed, or causality unknown), or it is exactly the input steps autograd finds for the first, middle and last
output steps, united over several random inputs at several scales in float64. Where the grammar drew a part that
may shrink a gradient (a max, a ReLU, clamp or hardtanh, a LayerNorm over one channel), the field must contain
them and may be larger, and the draw is counted with that reason. ``-m soak`` draws thousands
(``FIELDS_SOAK=n`` to change how many) and prints the counts; any wrong field fails. ``FIELDS_LOG=path``
appends each draw to ``path`` before it runs and its seconds and outcome after (the last line without an outcome
names a draw that hangs).
"""

from __future__ import annotations

import copy
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from torch import nn

from dilated.analysis import receptive_field
from model_grammar import tagged_models

SEEDS = 4  # random inputs per scale whose gradients are united
SCALES = (1.0, 0.1)  # small enough that tanh, sigmoid and softplus never saturate to a zero gradient in float64
OUTCOMES: Counter[str] = Counter()


@contextmanager
def one_thread() -> Iterator[None]:
    """These models are tiny: torch's threads only cost (and on a loaded machine they cost minutes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def autograd_union(model: nn.Module, shape: tuple[int, ...], axis: int, steps: list[int]) -> dict[int, list[int]]:
    """For each output step in ``steps`` (on ``axis``), the input steps whose gradient reaches it at any of
    ``SEEDS`` random float64 inputs per scale in ``SCALES`` (of a random positive combination of the step's
    elements: a plain sum cancels, e.g. a LayerNorm's outputs sum to its bias)."""
    model = copy.deepcopy(model).double()
    seen: dict[int, set[int]] = {t: set() for t in steps}
    generator = torch.Generator().manual_seed(0)
    for scale in SCALES:
        for _ in range(SEEDS):
            x = torch.randn((1, *shape), generator=generator, dtype=torch.float64).mul_(scale).requires_grad_(True)
            out = model(x)
            weights = torch.rand(out.shape, generator=generator, dtype=torch.float64) + 0.5
            for t in steps:
                chosen = (out * weights).select(axis, t).sum()
                (grad,) = torch.autograd.grad(chosen, x, retain_graph=True, allow_unused=True)
                if grad is not None:
                    seen[t] |= set(torch.nonzero(grad.reshape(-1, shape[-1]).abs().sum(0)).flatten().tolist())
    return {t: sorted(s) for t, s in seen.items()}


@contextmanager
def logged(description: str) -> Iterator[list[str]]:
    """Append the draw to ``$FIELDS_LOG`` (if set), then its seconds and the outcome the caller put in the list."""
    path, outcome = os.environ.get("FIELDS_LOG"), ["error"]
    if path:
        with open(path, "a") as log:
            log.write(f"{description}\n")
    start = time.perf_counter()
    try:
        yield outcome
    finally:
        if path:
            with open(path, "a") as log:
                log.write(f"  {time.perf_counter() - start:.2f} s {outcome[0]}\n")


def outcome(drawn: tuple[nn.Module, tuple[int, int, int], str, tuple[str, ...]]) -> str:
    """:func:`check`, logged (see the module docstring)."""
    with logged(drawn[2]) as result:
        result[0] = check(drawn)
    return result[0]


def check(drawn: tuple[nn.Module, tuple[int, int, int], str, tuple[str, ...]]) -> str:
    """The outcome of one drawn model: ``"flagged"``, ``"exact"`` or ``"contained: <parts>"`` (the field holds
    every step autograd finds and more, where a part may shrink a gradient); fails on any other field."""
    model, shape, description, shrinks = drawn
    model.eval()
    with one_thread():
        rf = receptive_field(model, shape[1:])
        flagged = [row for row in (*rf.layers, rf) if row.measured or row.unfollowed or row.causal == "unknown"]
        if flagged or rf.field is None or rf.axis is None:
            return "flagged"
        steps = sorted({0, rf.length // 2, rf.length - 1})
        found = autograd_union(model, shape[1:], rf.axis, steps)
    larger = False
    for t in steps:
        field = rf.steps(t)
        missing = sorted(set(found[t]) - set(field))
        assert not missing, f"{description}: output step {t} reads {field}, autograd also finds {missing}"
        if found[t] != field:
            assert shrinks, f"{description}: output step {t} reads {field}, autograd finds only {found[t]}"
            larger = True
    return f"contained: {', '.join(shrinks)}" if larger else "exact"


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(tagged_models(max_parts=4, wrappers=False, modes=False))
def test_a_field_is_flagged_or_exactly_what_autograd_finds(drawn):
    OUTCOMES[outcome(drawn)] += 1


@pytest.mark.slow
@pytest.mark.soak  # off in CI (pyproject addopts); -m soak or -m slow runs it
@settings(
    max_examples=int(os.environ.get("FIELDS_SOAK", "2000")), deadline=None, suppress_health_check=list(HealthCheck)
)
@given(tagged_models(max_parts=5, wrappers=False, modes=False))
def test_a_field_is_flagged_or_exactly_what_autograd_finds_thousands(drawn):
    OUTCOMES[outcome(drawn)] += 1


def teardown_module() -> None:
    contained = {k: n for k, n in OUTCOMES.items() if k.startswith("contained")}
    print(
        f"\nfields: {sum(OUTCOMES.values())} models drawn, {OUTCOMES['exact']} exactly autograd's, "
        f"{sum(contained.values())} containing it (a part that may shrink a gradient), {OUTCOMES['flagged']} flagged"
    )
    for reason, n in Counter({k.split(": ", 1)[1]: n for k, n in contained.items()}).most_common(10):
        print(f"  {n} contained: {reason}")
