"""``table``: windows over the rows of a CSV/Parquet table (:func:`dilated.data.table_dataset`), split in time order
and z-scored with training statistics; an event is a row's feature columns."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from dilated import data
from dilated.training._kinds.base import FRACTIONS_HELP, DataSource, Feed, Splits, data_kind, shape_of
from dilated.training._schema import option

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from dilated.data import WindowDataset
    from dilated.training._metric_table import TaskKind
    from dilated.training._objective import Task


@data_kind
@dataclass(frozen=True)
class TableData(DataSource):
    """Windows over the rows of a CSV/Parquet table (one row per time step)."""

    kind: ClassVar[str] = "table"
    path: str = option(help="a .csv or .parquet file, one row per time step")
    target: str = option(help="the column to predict")
    features: tuple[str, ...] | None = option(None, "input columns (default: the target column only)")
    window: int = option(100, "rows per input window")
    horizon: int = option(1, "the target is read this many rows after the window's last row")
    task: Literal["regression", "classification"] = option("regression", "what the target is")
    normalise: bool = option(True, "z-score features (and a regression target) with training statistics")
    fractions: tuple[float, ...] = option((0.7, 0.15, 0.15), FRACTIONS_HELP)

    @property
    def columns(self) -> list[str]:
        """The input columns: ``features``, or the target column alone."""
        return list(self.features or [self.target])

    @property
    def task_kind(self) -> TaskKind:
        return self.task

    def build(self, stats: dict[str, Any] | None, progress: bool) -> Splits:
        import torch

        from dilated.training._baselines import Persistence
        from dilated.training._objective import Task

        features = self.columns
        full = data.table_dataset(self.path, self.target, features, self.window, self.horizon, self.task)
        parts = data.chronological_split(full, tuple(float(f) for f in self.fractions))
        regression = self.task == "regression"
        info: dict[str, Any] = {"source": str(self.path)}
        task_options: dict[str, Any] = {}
        feature_mean, feature_std = [0.0] * full.channels, [1.0] * full.channels
        if self.normalise:
            if stats is None:
                stats = _training_statistics(full, parts[0], regression)
            mean = torch.tensor(stats["feature_mean"], dtype=torch.float64)[:, None]
            std = torch.tensor(stats["feature_std"], dtype=torch.float64)[:, None]
            if mean.shape[0] != full.channels:
                raise ValueError(
                    f"data: the run was trained on {mean.shape[0]} feature columns, the data has {full.channels}"
                )
            features_z = ((full.features.double() - mean) / std).float()
            targets = full.targets
            if regression and "target_mean" in stats:
                task_options = {"target_mean": stats["target_mean"], "target_std": stats["target_std"]}
                targets = ((targets.double() - stats["target_mean"]) / stats["target_std"]).float()
            full = data.WindowDataset(features_z, targets, full.window, full.ends, full.lookahead)
            parts = tuple(full.subset(p.ends) for p in parts)
            info["normalisation"] = dict(stats)
            feature_mean, feature_std = list(stats["feature_mean"]), list(stats["feature_std"])
        if regression:
            task = Task("regression", **task_options)
        else:
            task = Task("classification", max(int(full.targets.max()) + 1, 2))
        last_value = None
        if regression and self.target in features:  # forecasting: the target series is an input
            channel = features.index(self.target)
            last_value = Persistence(channel, float(feature_mean[channel]), float(feature_std[channel]))
        channels, length = shape_of(parts[0])
        train, val, test = parts
        return Splits(train, val, test, task, channels, length, full, info, last_value)

    def run_task(self, info: Mapping[str, Any]) -> Task:
        """Classes counted in the training part, or the regression target's z-score."""
        from dilated.training._objective import Task

        if self.task == "classification":
            return Task("classification", len(info["class_counts"]["train"]))
        stats = info.get("normalisation") or {}
        return Task("regression", **{k: stats[k] for k in ("target_mean", "target_std") if k in stats})

    def read_events(self, source: Any, by: str | None) -> dict[Hashable, Feed]:
        """``source``: a ``.csv``/``.parquet`` file or a DataFrame; ``by``: a column naming each row's
        instrument."""
        frame = self._frame(source).reset_index(drop=True)  # row positions: the `sample` ids
        if by is None:
            return {None: self._feed(frame)}
        if by not in frame.columns:
            raise ValueError(f"--by {by}: no such column; the columns are {list(frame.columns)}")
        return {key: self._feed(group) for key, group in frame.groupby(by, sort=False)}

    def _frame(self, source: Any) -> pd.DataFrame:
        if source is None:
            return data.read_table(self.path)
        if isinstance(source, (str, Path)):
            return data.read_table(source)
        return source

    def _feed(self, frame: pd.DataFrame) -> Feed:
        import torch

        windows = data.table_dataset(frame, self.target, self.columns, self.window, self.horizon, self.task)
        labelled = torch.zeros(windows.features.shape[1], dtype=torch.bool)
        labelled[windows.ends] = True
        return Feed(windows.features, torch.tensor(frame.index.to_numpy()), windows.targets, labelled)

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Rows rounded to float32, as a table's windows hold them."""
        import numpy as np

        return rows.astype(np.float32)

    @property
    def event_features(self) -> str:
        return "table columns " + ", ".join(self.columns)

    @property
    def normalises(self) -> bool:
        return self.normalise


def _training_statistics(full: WindowDataset, train: WindowDataset, regression: bool) -> dict[str, Any]:
    """Feature (and regression target) mean and standard deviation over the rows the training windows cover."""
    import torch

    steps = full.features[:, int(train.ends[0]) - full.window + 1 : int(train.ends[-1]) + 1]
    mean, std = steps.double().mean(dim=1), steps.double().std(dim=1, correction=0)
    stats: dict[str, Any] = {"feature_mean": mean.tolist(), "feature_std": torch.where(std > 0, std, 1.0).tolist()}
    if regression:
        labels = full.targets[train.ends].double()
        spread = float(labels.std(correction=0))
        stats.update(target_mean=float(labels.mean()), target_std=spread if spread > 0 else 1.0)
    return stats
