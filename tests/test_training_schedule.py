"""The learning rate each optimizer step runs at: the per-epoch schedule times the linear warmup."""

import math

import pytest
from torch.optim.optimizer import register_optimizer_step_pre_hook

from dilated.training import train

LR = 0.1


def _lrs_of_each_step(tmp_path, training: dict) -> list[float]:
    """Train a tiny TCN on the adding task (2 steps per epoch) and record the LR every optimizer step runs at."""
    seen: list[float] = []
    handle = register_optimizer_step_pre_hook(lambda optimizer, *_: seen.append(optimizer.param_groups[0]["lr"]))
    raw = {
        "model": "tcn",
        "options": {"num_channels": [4], "kernel_size": 2},
        "data": {"kind": "adding", "seq_len": 8, "train_size": 32, "val_size": 16, "test_size": 16},
        "training": {"optimizer": "sgd", "lr": LR, "batch_size": 16, "monitor": "val_mse", **training},
        "trainer": {"threads": 1, "progress_bar": False, "logger": "none"},
    }
    try:
        train(raw, tmp_path / "run", echo=lambda _line: None)
    finally:
        handle.remove()
    return seen


def test_warmup_ramps_the_first_steps_and_the_cosine_schedule_is_unchanged(tmp_path):
    seen = _lrs_of_each_step(tmp_path, {"max_epochs": 3, "scheduler": "cosine", "warmup_steps": 3})
    cosine = [LR * (1 + math.cos(math.pi * epoch / 3)) / 2 for epoch in range(3)]  # per epoch, 2 steps each
    expected = [cosine[0] * 1 / 3, cosine[0] * 2 / 3, cosine[1], cosine[1], cosine[2], cosine[2]]
    assert seen == pytest.approx(expected, rel=1e-6)


def test_without_warmup_every_step_runs_at_the_scheduled_lr(tmp_path):
    assert _lrs_of_each_step(tmp_path, {"max_epochs": 2}) == pytest.approx([LR] * 4)
