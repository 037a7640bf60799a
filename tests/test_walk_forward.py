"""Explicit day selection for a book dataset, walk-forward folds and the drift report: each fold a normal run
whose own test metrics are the table's numbers, a finished fold skipped when run again."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from dilated.cli import main
from dilated.data import dataset_days, dataset_splits, read_book, read_day
from dilated.training import evaluate_run, walk_forward, walk_forward_folds
from helpers import book_dataset

DATES = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
CONFIG: dict[str, Any] = {
    "model": "tcn",
    "options": {"num_channels": [4, 4], "kernel_size": 3},
    "data": {"kind": "book", "levels": 3, "window": 20, "horizon": 5, "stride": 4},
    "training": {"batch_size": 64, "max_epochs": 1, "seed": 3},
    "trainer": {"threads": 1, "progress_bar": False},
}


@pytest.fixture(scope="module")
def four_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return book_dataset(tmp_path_factory.mktemp("walk") / "books", "XYZ", 4, 1000, seed=2)


def _config(path: Path) -> dict:
    return {**CONFIG, "data": {**CONFIG["data"], "path": str(path)}}


def test_days_chosen_by_date_or_index(four_days: Path) -> None:
    splits = dataset_splits(four_days, levels=3, window=20, horizon=5, selection=[[0, "2024-01-03"], [2], [3]])
    assert splits.info["days"] == {"train": DATES[:2], "val": [DATES[2]], "test": [DATES[3]]}
    skipping = dataset_splits(four_days, levels=3, window=20, horizon=5, selection=[[0], [2], [3]])
    assert skipping.info["days"] == {"train": DATES[:1], "val": [DATES[2]], "test": [DATES[3]]}
    assert len(skipping.train.datasets) == 1 and len(skipping.test) == len(splits.test)


def test_folds_roll_forward_one_day() -> None:
    folds = walk_forward_folds(DATES, 2)
    assert [(f.train, f.val, f.test) for f in folds] == [
        (tuple(DATES[:2]), (DATES[2],), (DATES[3],)),
    ]
    assert [f.train for f in walk_forward_folds(DATES, 1)] == [(DATES[0],), (DATES[1],)]


def test_walk_forward_table_equals_each_fold_runs_test_metrics(four_days: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    result = walk_forward(_config(four_days), tmp_path / "walk", 1, echo=lines.append)
    assert [(r["fold"], r["train_days"], r["val_day"], r["test_day"]) for r in result.rows] == [
        (1, DATES[0], DATES[1], DATES[2]),
        (2, DATES[1], DATES[2], DATES[3]),
    ]
    with open(tmp_path / "walk" / "walk_forward.csv") as f:
        table = list(csv.DictReader(f))
    for number, row in enumerate(table, 1):
        metrics = json.loads((tmp_path / "walk" / f"fold-{number:02d}" / "metrics.json").read_text())
        assert metrics["data"]["days"] == {
            "train": [row["train_days"]],
            "val": [row["val_day"]],
            "test": [row["test_day"]],
        }
        # the logistic baselines of a dataset folder, fitted on the fold's training days
        assert set(metrics["test"]["references"]) == {"logistic", "logistic_flow"}
        assert "fitted on " in metrics["test"]["references"]["logistic"]["name"]
        for name in ("mcc", "f1_macro", "accuracy"):
            assert float(row[name]) == metrics["test"][name]
            assert float(row[f"baseline_{name}"]) == metrics["test"]["baseline"][name]
    summary = json.loads((tmp_path / "walk" / "summary.json").read_text())["metrics"]
    assert summary["mcc"]["mean"] == pytest.approx(statistics.fmean(r["mcc"] for r in result.rows))
    assert summary["mcc"]["std"] == pytest.approx(statistics.stdev(r["mcc"] for r in result.rows))
    assert "Mean and sample standard deviation over 2 row(s)" in result.table.read_text()
    lines.clear()
    again = walk_forward(_config(four_days), tmp_path / "walk", 1, echo=lines.append)
    assert again.rows == result.rows
    assert sum("skipped" in line for line in lines) == 2  # both folds finished: nothing trained again


@pytest.mark.parametrize("train_days", [1, 2])
def test_drift_tests_each_later_day_with_the_runs_threshold(four_days: Path, tmp_path: Path, train_days: int) -> None:
    out = tmp_path / "drift"
    result = walk_forward(_config(four_days), out, train_days, drift=True, echo=lambda _: None)
    metrics = json.loads((out / "train" / "metrics.json").read_text())
    later = DATES[train_days:]
    assert [r["day"] for r in result.rows] == ([DATES[0]] if train_days == 1 else []) + later
    if train_days == 1:  # one training day: that day's book (its parts as one file), split in time
        _, days = dataset_days(four_days)
        written = out / "days" / f"{DATES[0]}.parquet"
        assert yaml.safe_load((out / "train" / "config.yaml").read_text())["data"]["path"] == str(written)
        np.testing.assert_array_equal(read_book(written).values, read_day(days[0], 3).values)
        assert result.rows[0]["mcc"] == metrics["test"]["mcc"]
    else:
        assert metrics["data"]["days"] == {"train": DATES[:1], "val": DATES[1:2], "test": DATES[2:]}
    for row in result.rows[-len(later) :]:
        spec = yaml.safe_load((out / "days" / f"{row['day']}.yaml").read_text())["data"]
        assert spec["threshold"] == metrics["data"]["threshold"]
        split = "all" if train_days == 1 else "test"
        direct = evaluate_run(out / "train", str(out / "days" / f"{row['day']}.yaml"), split, progress=False).result
        assert sum(map(sum, direct["confusion_matrix"])) > 100
        assert row["mcc"] == direct["mcc"] and row["accuracy"] == direct["accuracy"]


def test_cli_refuses_walk_forward_on_too_few_days_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    books = book_dataset(tmp_path / "books", "XYZ", 2, 200)  # two days: drift only, as Binance's
    config = tmp_path / "walk.yaml"
    config.write_text(yaml.safe_dump(_config(books)))
    assert main(["walk-forward", str(config), "--train-days", "1", "-o", str(tmp_path / "out")]) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "walk-forward on 1 training day(s) needs at least one and 3 days" in stderr
    assert not (tmp_path / "out").exists()
