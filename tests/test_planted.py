"""The planted-signal market, its bound, and the proof that the training pipeline finds a planted signal."""

import numpy as np
import pytest
import torch

from dilated.data import (
    PlantedMarket,
    book_splits,
    dataset_info,
    dataset_splits,
    planted_book,
    read_book,
    write_book,
    write_planted_dataset,
)
from dilated.models import build_model
from dilated.training import SequenceModule, TrainingConfig, planted_bound, train
from dilated.training._kinds.base import lob_task

WINDOW, HORIZON = 32, 10


def test_a_planted_book_is_deterministic_in_whole_ticks_and_two_sided():
    first, second = planted_book(3000, seed=4), planted_book(3000, seed=4)
    np.testing.assert_array_equal(first.book.values, second.book.values)
    np.testing.assert_array_equal(first.book.ts, second.book.ts)
    assert not np.array_equal(first.book.values, planted_book(3000, seed=5).book.values)
    values, tick = first.book.values, first.market.tick_size
    prices = values[:, 0::2]  # ask and bid prices of every level
    np.testing.assert_allclose(prices / tick, np.round(prices / tick), atol=1e-6)
    np.testing.assert_allclose(first.book.spread, tick)
    assert (values[:, 1::2] >= 1).all() and np.isfinite(values).all()
    assert (np.diff(first.book.ts) > 0).all()


def test_the_bound_is_reproducible_above_chance_and_nothing_where_nothing_is_planted():
    bounds = []
    for _ in range(2):
        planted = planted_book(8000, seed=1)
        bounds.append(planted_bound(planted, book_splits(planted.book, window=WINDOW, horizon=HORIZON))["test"])
    assert bounds[0]["mcc"] == bounds[1]["mcc"]
    assert bounds[0]["mcc"] > 0.25 and bounds[0]["f1_macro"] > 0.5
    empty = planted_book(8000, PlantedMarket(strength=0.0), seed=1)
    nothing = planted_bound(empty, book_splits(empty.book, window=WINDOW, horizon=HORIZON))["test"]
    assert abs(nothing["mcc"]) < 0.08


def test_the_bound_refuses_splits_of_another_book():
    planted = planted_book(3000, seed=0)
    other = book_splits(planted_book(2000, seed=0).book, window=WINDOW, horizon=HORIZON)
    with pytest.raises(ValueError, match="splits of the planted book itself"):
        planted_bound(planted, other)


def test_planted_books_are_read_as_converted_books_and_dataset_folders(tmp_path):
    planted = planted_book(2000, seed=2)
    back = read_book(write_book(planted.book, tmp_path / "planted.parquet"))
    np.testing.assert_array_equal(back.values, planted.book.values)
    days = write_planted_dataset(tmp_path / "dataset", days=3, events=1500, seed=7)
    info = dataset_info(tmp_path / "dataset")["instruments"]["PLANTED"]
    assert (info["dates"], info["rows"], info["tick_size"]) == (3, 4500, 0.01)
    splits = dataset_splits(tmp_path / "dataset", window=WINDOW, horizon=HORIZON)
    assert len(splits.train) + len(splits.val) + len(splits.test) > 0
    assert len({d.book.values[0, 1] for d in days}) == 3  # a seed per day


def test_the_training_pipeline_finds_a_planted_signal(tmp_path):
    """A small TCN trained by `dilated train`'s path (the book kind reading a Parquet book, the recipe's options)
    reaches most of the bound on a small planted book: a pipeline that could not learn fails here."""
    planted = planted_book(8000, seed=0)
    path = write_book(planted.book, tmp_path / "planted.parquet")
    bound = planted_bound(planted, book_splits(path, window=WINDOW, horizon=HORIZON))["test"]["mcc"]
    config = {
        "model": "tcn",
        "options": {"num_channels": [16] * 4, "kernel_size": 3, "dropout": 0.0},
        "data": {"kind": "book", "path": str(path), "window": WINDOW, "horizon": HORIZON},
        "training": {
            "optimizer": "adamw",
            "lr": 1e-3,
            "max_epochs": 2,
            "class_weights": "balanced",
            "zero_head": True,
            "monitor": "val_mcc",
            "keep_checkpoints": 1,
        },
        "trainer": {"threads": 1, "progress_bar": False, "accelerator": "cpu", "logger": "none"},
    }
    result = train(config, tmp_path / "run", progress=False, echo=lambda _m: None)
    assert result is not None
    assert result.test["mcc"] >= 0.6 * bound, (result.test["mcc"], bound)


def test_zero_head_starts_the_output_layer_at_zero():
    model = build_model("translob", window=32)
    module = SequenceModule(model, lob_task(), TrainingConfig(zero_head=True))
    assert module.model.classifier.weight.abs().sum() == 0 and module.model.classifier.bias.abs().sum() == 0
    assert module.model.hidden.weight.abs().sum() > 0
    with torch.no_grad():
        logits = model(torch.randn(2, 40, 32))
    assert torch.equal(logits, torch.zeros(2, 3))  # the loss starts at ln 3
