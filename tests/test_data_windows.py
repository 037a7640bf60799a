"""Windows over CSV/Parquet series (real series shipped by statsmodels) and the chronological split."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
import torch
from statsmodels.datasets import co2, sunspots

from dilated.data._windows import WindowDataset, chronological_split, split_bounds, table_dataset

ROWS = 309  # yearly sunspot numbers 1700-2008


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    data = sunspots.load_pandas().data
    data["high"] = (data["SUNACTIVITY"] > data["SUNACTIVITY"].median()).astype(int)
    return data


@pytest.fixture(scope="module", params=["csv", "parquet"])
def path(request: pytest.FixtureRequest, frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("series") / f"sunspots.{request.param}"
    frame.to_csv(path, index=False) if request.param == "csv" else frame.to_parquet(path, index=False)
    return path


def test_regression_windows_predict_horizon_after_the_last_step(path: Path, frame: pd.DataFrame) -> None:
    data = table_dataset(path, target="SUNACTIVITY", features=["SUNACTIVITY", "YEAR"], window=20, horizon=3)
    assert len(frame) == ROWS and len(data) == ROWS - 20 - 3 + 1
    series = frame["SUNACTIVITY"].to_numpy()
    for i in (0, 100, len(data) - 1):
        x, y = data[i]
        assert x.shape == (2, 20) and x.dtype == torch.float32 and y.dtype == torch.float32
        np.testing.assert_array_equal(x[0].numpy(), series[i : i + 20].astype(np.float32))
        np.testing.assert_array_equal(x[1].numpy(), frame["YEAR"].to_numpy()[i : i + 20])
        assert y.item() == pytest.approx(series[i + 19 + 3])
    x, y = next(iter(torch.utils.data.DataLoader(data, batch_size=16)))
    assert x.shape == (16, 2, 20) and y.shape == (16,)


def test_classification_reads_the_class_column(path: Path, frame: pd.DataFrame) -> None:
    data = table_dataset(path, target="high", features=["SUNACTIVITY"], window=10, horizon=0, task="classification")
    assert len(data) == ROWS - 10 + 1
    x, y = data[5]
    assert y.dtype == torch.int64 and y.item() == frame["high"].iloc[5 + 9]
    np.testing.assert_array_equal(
        torch.bincount(data.targets[data.ends]).numpy(), np.bincount(frame["high"].to_numpy()[9:])
    )


def test_chronological_split_never_straddles(path: Path) -> None:
    data = table_dataset(path, target="SUNACTIVITY", features=["SUNACTIVITY"], window=20, horizon=3)
    bounds = split_bounds(ROWS)
    assert bounds == [(0, 216), (216, 263), (263, 309)]
    parts = chronological_split(data)
    assert [len(p) for p in parts] == [stop - start - 20 - 3 + 1 for start, stop in bounds]  # 194, 25, 24
    for part, (start, stop) in zip(parts, bounds, strict=True):
        assert int(part.ends[0]) - 19 == start and int(part.ends[-1]) + 3 == stop - 1
        assert part.features is data.features  # the parts share the series
    assert int(parts[0].ends[-1]) < int(parts[1].ends[0]) and int(parts[1].ends[-1]) < int(parts[2].ends[0])
    train, val = chronological_split(data, (0.8, 0.2))
    assert len(train) + len(val) == len(data) - (19 + 3)  # one boundary drops window - 1 + horizon samples


def test_missing_values_in_a_real_series(tmp_path: Path) -> None:
    series = co2.load_pandas().data  # weekly CO2 at Mauna Loa, with gaps
    first_gap = int(np.flatnonzero(series["co2"].isna().to_numpy())[0])
    series.to_csv(tmp_path / "co2.csv", index_label="week")
    with pytest.raises(ValueError, match=rf"column 'co2', data row {first_gap} .* is nan; fill or drop"):
        table_dataset(tmp_path / "co2.csv", target="co2", features=["co2"], window=52)
    data = table_dataset(series.interpolate(), target="co2", features=["co2"], window=52, horizon=1)
    assert len(data) == len(series) - 52


def test_bad_tables_raise_clear_errors(tmp_path: Path, frame: pd.DataFrame) -> None:
    bad = frame.astype({"SUNACTIVITY": object})
    bad.loc[7, "SUNACTIVITY"] = "abc"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"bad.csv: column 'SUNACTIVITY', data row 7 .* is 'abc', not a number"):
        table_dataset(tmp_path / "bad.csv", target="SUNACTIVITY", features=["YEAR"], window=5)
    with pytest.raises(ValueError, match=r"no column \['sunspots'\]; the columns are \['YEAR', 'SUNACTIVITY'"):
        table_dataset(frame, target="sunspots", features=["YEAR"], window=5)
    with pytest.raises(ValueError, match=r"column 'half', data row 0 is 2.5; class ids must be integers"):
        halves = frame.assign(half=frame["SUNACTIVITY"] / 2)  # row 0: 5 / 2
        table_dataset(halves, target="half", features=["YEAR"], window=5, task="classification")
    with pytest.raises(ValueError, match="no complete window"):
        table_dataset(frame, target="SUNACTIVITY", features=["YEAR"], window=300, horizon=10)
    with pytest.raises(ValueError, match="unknown file type '.txt'"):
        table_dataset(tmp_path / "series.txt", target="SUNACTIVITY", features=["YEAR"], window=5)
    with pytest.raises(ValueError, match="task must be"):  # a deliberately invalid task: the check is under test
        table_dataset(frame, target="SUNACTIVITY", features=["YEAR"], window=5, task=cast(Any, "ranking"))
    with pytest.raises(ValueError, match="fractions must be positive and sum to 1"):
        split_bounds(10, (0.5, 0.6))
    with pytest.raises(ValueError, match="part 2 .* holds no window"):
        chronological_split(WindowDataset(np.zeros((1, 30)), np.zeros(30), 8, np.arange(7, 30)), (0.6, 0.3, 0.1))
