"""The contract every registered model keeps: a new model gets each of these checks by registering.

For each name in :func:`dilated.available_models`, built with its defaults on its example input shape: the forward
keeps the batch and gives finite outputs, the summary counts every parameter and agrees on the receptive field,
per-step outputs are causal and stream exactly, a model with a global stage is refused by the stream with the
layer named, and a few optimiser steps on one batch fit a target.
"""

import pytest
import torch

import dilated
from dilated.models import available_models, build_model, example_input_shape
from dilated.streaming import check
from helpers import assert_causal

MODELS = available_models()


def built(name: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    torch.manual_seed(0)
    return build_model(name).eval(), tuple(example_input_shape(name))


def per_step(model: torch.nn.Module, shape: tuple[int, ...]) -> bool:
    """Whether the model gives one output per input step (its last axis follows the input's time axis)."""
    with torch.no_grad():
        short = model(torch.zeros(1, *shape[:-1], shape[-1]))
    return short.dim() >= 3 and short.shape[-1] == shape[-1]


@pytest.mark.parametrize("name", MODELS)
def test_forward_keeps_the_batch_and_is_finite(name):
    model, shape = built(name)
    with torch.no_grad():
        y = model(torch.randn(3, *shape))
    assert y.shape[0] == 3
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", MODELS)
def test_summary_counts_every_parameter_and_the_receptive_field(name):
    model, shape = built(name)
    table = dilated.summary(model, shape)
    assert table.total_params == sum(p.numel() for p in model.parameters())
    assert table.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    field = dilated.receptive_field(model, shape)
    assert table.receptive_field == field.size  # what the model's output sees, over all paths
    declared = getattr(model, "receptive_field", None)
    if declared is not None and per_step(model, shape):
        assert field.size == declared
    assert field.size is None or shape[-1] >= field.size, "the example input must cover the receptive field"


@pytest.mark.parametrize("name", MODELS)
def test_per_step_outputs_are_causal_and_stream_exactly(name):
    model, shape = built(name)
    if not per_step(model, shape):
        pytest.skip(f"{name} gives one output per window, not per step")
    x = torch.randn(2, *shape[:-1], 64)
    assert_causal(model, x, 40)
    assert check(model, x, atol=1e-4) <= 1e-4


@pytest.mark.parametrize("name", MODELS)
def test_window_models_are_refused_by_the_stream_naming_the_layer(name):
    model, shape = built(name)
    if per_step(model, shape):
        pytest.skip(f"{name} gives one output per step")
    with pytest.raises(ValueError, match=r"cannot stream layer '[^']+'"):
        dilated.stream(model, 1)


@pytest.mark.parametrize("name", MODELS)
def test_a_few_steps_on_one_batch_fit_a_target_per_output_channel(name):
    model, shape = built(name)
    if per_step(model, shape):
        shape = (*shape[:-1], 128)  # per-step models fit on any length; a short one keeps this quick
    model.train()
    x = torch.randn(1, *shape)
    with torch.no_grad():
        y = model(x)
    target = torch.randn(y.shape[:2] + (1,) * (y.dim() - 2)).expand_as(y)  # one value per output channel
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
