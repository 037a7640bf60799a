"""Helpers the test modules share (import them as ``from helpers import ...``; tests/ is on the path)."""

from collections.abc import Callable

import torch


def assert_causal(module, x: torch.Tensor, t: int) -> None:
    """Outputs up to ``t`` are bit-identical when the inputs after ``t`` change; some later output changes."""
    with torch.no_grad():
        y = module(x)
        x2 = x.clone()
        x2[..., t + 1:] = torch.randn_like(x2[..., t + 1:]) * 3
        y2 = module(x2)
    assert torch.equal(y[..., : t + 1], y2[..., : t + 1])
    assert not torch.equal(y[..., t + 1:], y2[..., t + 1:])


def overfit(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, loss_fn: Callable, lr: float,
            steps: int = 300) -> tuple[float, float]:
    """Adam on one fixed batch until the loss falls below a tenth of its first value; (first, last) losses."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(x), target)
        losses.append(loss.item())
        if losses[-1] < losses[0] / 10:
            break
        loss.backward()
        optimizer.step()
    return losses[0], losses[-1]
