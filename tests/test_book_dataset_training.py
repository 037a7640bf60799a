"""The `book` data kind on a dataset folder (`dilated data convert -o DIR/`): windows within a day, statistics
streamed over the training days equal to those of the days concatenated, memory flat in the number of days, and a
`dilated train` that resumes bit for bit."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dilated.data import (
    WindowDataset,
    ZScore,
    balanced_alpha,
    convert_dataset,
    dataset_splits,
    fill_book_levels,
    smoothed_change,
    usable_events,
)
from dilated.data._book_days import StreamedQuantile, dataset_days, day_bounds, read_day
from dilated.training._checkpoints import WEIGHTS_FILE, find_checkpoints
from dilated.training._datamodule import ResumableSampler
from helpers import CLI_ENV, book_dataset, dilated_cli, mbo_days

WINDOW, HORIZON = 20, 5


@pytest.fixture(scope="module")
def five_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return book_dataset(tmp_path_factory.mktemp("days") / "books", "XYZ", 5, 1500, seed=1)


def test_days_split_by_fractions_each_part_at_least_one_day() -> None:
    assert day_bounds(3, (0.7, 0.15, 0.15)) == [(0, 1), (1, 2), (2, 3)]
    assert day_bounds(8, (0.7, 0.15, 0.15)) == [(0, 6), (6, 7), (7, 8)]
    assert day_bounds(20, (0.5, 0.25, 0.25)) == [(0, 10), (10, 15), (15, 20)]


def test_windows_never_cross_a_day(five_days: Path) -> None:
    splits = dataset_splits(five_days, levels=3, window=WINDOW, horizon=HORIZON, stride=3)
    _, days = dataset_days(five_days)
    assert splits.info["days"] == {"train": [d.date for d in days[:3]], "val": [days[3].date], "test": [days[4].date]}
    zscore = ZScore(np.array(splits.info["zscore"]["mean"]), np.array(splits.info["zscore"]["std"]))
    parts = [cast(WindowDataset, d) for part in (splits.train, splits.val, splits.test) for d in part.datasets]
    assert len(parts) == len(days)
    for day, part in zip(days, parts, strict=True):
        book = read_day(day, 3)
        ends = part.ends.numpy()
        assert len(ends) > 100 and (ends % 3 == 0).all()
        for ts in (book.ts[ends - WINDOW + 1], book.ts[ends + HORIZON]):  # first event, last event the label reads
            assert (ts.astype("datetime64[ns]").astype("datetime64[D]").astype(str) == day.date).all()
        x, _ = part[len(part) // 2]
        end = int(ends[len(part) // 2])
        expected = zscore(fill_book_levels(book.values[end - WINDOW + 1 : end + 1])).T
        np.testing.assert_array_equal(x.numpy(), expected)  # the day's own events, z-scored once
    assert len(splits.full) == sum(map(len, parts))


@pytest.mark.parametrize("smoothing", ["future", "past"])
def test_statistics_equal_those_of_the_concatenated_training_days(five_days: Path, smoothing: str) -> None:
    splits = dataset_splits(five_days, levels=3, window=WINDOW, horizon=HORIZON, smoothing=smoothing)
    _, days = dataset_days(five_days)
    books = [read_day(day, 3) for day in days[:3]]  # the training days
    features = np.concatenate([fill_book_levels(b.values)[usable_events(b)] for b in books])
    reference = ZScore.fit(features)
    np.testing.assert_allclose(splits.info["zscore"]["mean"], reference.mean, rtol=1e-12)
    np.testing.assert_allclose(splits.info["zscore"]["std"], reference.std, rtol=1e-12)
    changes = np.concatenate(
        [smoothed_change(np.where(usable_events(b), b.mid, np.nan), HORIZON, smoothing) for b in books]
    )  # each day alone: no change reads the next day
    assert splits.info["threshold"] == pytest.approx(balanced_alpha(changes), rel=1e-12)
    assert splits.info["threshold"] > 0


@pytest.mark.parametrize("seed", range(6))
def test_streamed_quantile_equals_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    chunks = [np.abs(rng.standard_t(3, size=rng.integers(1, 3000))) * 10.0 ** rng.integers(-8, 2) for _ in range(5)]
    chunks += [np.zeros(rng.integers(0, 4000)), np.round(chunks[0], 3)]  # zeros and ties
    quantile = StreamedQuantile(1 / 3)
    for chunk in chunks:
        quantile.count(chunk)
    for chunk in chunks:
        quantile.collect(chunk)
    assert quantile.result() == pytest.approx(np.quantile(np.concatenate(chunks), 1 / 3), rel=1e-12, abs=0)


MEMORY_SCRIPT = """
import sys, tracemalloc
import pyarrow as pa
from torch.utils.data import DataLoader
import pyarrow.parquet
from dilated.data import dataset_splits
from dilated.data._book_days import read_day  # imported before tracing starts: the modules are not measured
from dilated.training._datamodule import ResumableSampler
tracemalloc.start()
train = int(sys.argv[2])  # training days; one validation and one test day
splits = dataset_splits(sys.argv[1], levels=3, window=20, horizon=5, fractions=[f / (train + 2) for f in (train, 1, 1)])
for part in (splits.train, splits.val):
    for x, y in DataLoader(part, batch_size=256, sampler=ResumableSampler(len(part), seed=0)):
        pass
print(tracemalloc.get_traced_memory()[1] + pa.default_memory_pool().max_memory())
"""


def test_memory_is_flat_in_the_number_of_days(tmp_path: Path) -> None:
    """Python/numpy allocations (tracemalloc) plus Arrow's pool, at their peak while building the splits and serving
    every training and validation window: 4x the training days (2 and 8, plus a validation and a test day), the peak
    stays that of a day."""
    peaks = {}
    for days in (2, 8):
        book_dataset(tmp_path / f"d{days}", "MEM", days + 2, 10_000, seed=3)
        run = subprocess.run(
            [sys.executable, "-c", MEMORY_SCRIPT, str(tmp_path / f"d{days}"), str(days)],
            capture_output=True,
            text=True,
            env={**CLI_ENV, "PYTHONPATH": os.pathsep.join(sys.path)},
            check=True,
        )
        peaks[days] = int(run.stdout.split()[-1])
    day_features = 10_000 * 12 * 8  # one day's float64 features
    assert peaks[2] > day_features, peaks  # what is measured holds at least a day
    assert peaks[8] < 1.25 * peaks[2] + 2**20, peaks


def test_each_rank_takes_its_own_shard_of_windows(five_days: Path) -> None:
    train = dataset_splits(five_days, levels=3, window=WINDOW, horizon=HORIZON).train
    shards = [list(ResumableSampler(len(train), seed=4, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == math.ceil(len(train) / 2)
    assert set(shards[0]) | set(shards[1]) == set(range(len(train)))
    assert len(set(shards[0]) & set(shards[1])) == len(train) % 2  # only the padding repeats


TINY = """\
model: tcn
options: {{num_channels: [6, 6], kernel_size: 3}}
data: {{kind: book, path: {path}, levels: 5, window: 20, horizon: 5, fractions: [0.5, 0.25, 0.25]}}
training: {{batch_size: 32, max_epochs: {epochs}, seed: 7}}
trainer: {{threads: 1}}
"""


def test_train_on_a_converted_dataset_then_resume_bit_for_bit(tmp_path: Path) -> None:
    files, _ = mbo_days(tmp_path / "feeds", "ESH4", 4, 3_000, seed=5)
    convert_dataset(files, f"{tmp_path / 'books'}/", levels=5, processes=1)
    for epochs in (1, 2):
        (tmp_path / f"e{epochs}.yaml").write_text(TINY.format(path=tmp_path / "books", epochs=epochs))
    reference = dilated_cli("train", "e2.yaml", "--run-dir", "reference", "--no-progress", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    metrics = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    data = metrics["data"]
    assert data["days"] == {"train": ["2024-01-02", "2024-01-03"], "val": ["2024-01-04"], "test": ["2024-01-05"]}
    assert data["sizes"]["train"] > 1000 and metrics["status"] == "finished"
    first = dilated_cli("train", "e1.yaml", "--run-dir", "resumed", "--no-progress", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    resumed = dilated_cli(
        "train", "--resume", "resumed", "--override", "training.max_epochs=2", "--no-progress", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from resumed/checkpoints/epoch=0001" in resumed.stdout
    latest = [find_checkpoints(tmp_path / run / "checkpoints")[-1] for run in ("reference", "resumed")]
    assert latest[0].name == latest[1].name
    expected, actual = (load_file(path / WEIGHTS_FILE) for path in latest)
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)  # bit for bit
