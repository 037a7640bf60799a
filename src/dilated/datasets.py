"""The train/validation/test datasets that a training config's ``data:`` section describes.

Kinds (options in :data:`dilated.experiment.DATA_FIELDS`):

* ``lobster``: LOBSTER message/orderbook files (default: the bundled AAPL sample), z-scored with statistics of the
  training part (kept in ``info["normalisation"]`` and applied again to other data), movement labels ``horizon``
  events ahead with a balanced alpha from training returns (:func:`dilated.data.lobster_splits`); split in time
  order by ``fractions``;
* ``fi2010``: the standard FI-2010 split (days 1-7 train, 8-10 test, :func:`dilated.data.load_fi2010`); the last
  ``val_fraction`` of the training days is the validation part, as in DeepLOB's code;
* ``table``: windows over a CSV/Parquet table (:func:`dilated.data.table_dataset`), split in time order and
  z-scored with training statistics;
* ``adding`` / ``copy_memory``: the TCN paper's synthetic tasks, three independently seeded sets.

Windows never straddle two parts, and no label of one part is computed from steps of another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset
from tqdm import tqdm

from dilated.data import (
    AddingProblem,
    CopyMemory,
    WindowDataset,
    ZScore,
    balanced_alpha,
    bundled_lobster_sample,
    chronological_split,
    load_fi2010,
    lobster_dataset,
    read_lobster,
    smoothed_returns,
    split_bounds,
    table_dataset,
)
from dilated.tasks import LOB_CLASSES, Task

SPLITS = ("train", "val", "test")


@dataclass
class Splits:
    """Datasets of one config, and what they are.

    Attributes:
        train, val, test: datasets of ``(x, y)``, ``x`` float32 ``(channels, length)``.
        task: what ``y`` is.
        channels, length: the shape of ``x``.
        full: the whole series as one dataset, where there is one (``lobster``, ``table``).
        info: JSON-ready facts: sizes, class counts, alpha, normalisation statistics.
    """

    train: Dataset
    val: Dataset
    test: Dataset
    task: Task
    channels: int
    length: int
    full: Dataset | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> Dataset:
        """``"train"``, ``"val"``, ``"test"`` or ``"all"`` (the whole series, where there is one)."""
        if name == "all":
            if self.full is None:
                raise ValueError("split 'all' exists for lobster and table data only; use train, val or test")
            return self.full
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; use train, val, test or all")
        return getattr(self, name)


def window_labels(dataset: Dataset) -> Tensor | None:
    """The targets of a :class:`WindowDataset` (or a concatenation of them) without reading windows; else None."""
    if isinstance(dataset, WindowDataset):
        return dataset.targets[dataset.ends]
    if isinstance(dataset, ConcatDataset) and all(isinstance(d, WindowDataset) for d in dataset.datasets):
        return torch.cat([d.targets[d.ends] for d in dataset.datasets])
    return None


def sample_ids(dataset: Dataset) -> list[int]:
    """A time index per sample: the window's last step for window datasets, else the sample number."""
    if isinstance(dataset, WindowDataset):
        return dataset.ends.tolist()
    return list(range(len(dataset)))


def class_counts(dataset: Dataset, num_classes: int, progress: bool = True) -> Tensor:
    """Samples (or steps, for per-step labels) per class; reads every sample unless labels are known."""
    labels = window_labels(dataset)
    if labels is None:
        labels = torch.cat([dataset[i][1].reshape(-1) for i in tqdm(
            range(len(dataset)), desc="counting labels", unit="sample", disable=not progress, leave=False)])
    return torch.bincount(labels.reshape(-1).long(), minlength=num_classes)[:num_classes]


def build_splits(data: Mapping[str, Any], stats: Mapping[str, Any] | None = None, progress: bool = True) -> Splits:
    """Datasets for a resolved ``data:`` section.

    Args:
        stats: normalisation statistics of an earlier run (``Splits.info["normalisation"]``) to apply instead of
            fitting new ones (``lobster`` and ``table`` data).
    """
    kind = data["kind"]
    builders = {"lobster": _lobster, "fi2010": _fi2010, "table": _table, "adding": _adding,
                "copy_memory": _copy_memory}
    if kind not in builders:
        raise ValueError(f"data.kind: unknown kind {kind!r}; valid kinds: {', '.join(builders)}")
    splits = builders[kind](data, stats, progress)
    sizes = {name: len(getattr(splits, name)) for name in SPLITS}
    for name, size in sizes.items():
        if size == 0:
            raise ValueError(f"data: the {name} part holds no samples; use more data or a smaller window/horizon")
    splits.info = {"kind": kind, "sizes": sizes, **splits.info}
    if splits.task.is_classification:
        splits.info["class_counts"] = {
            name: class_counts(getattr(splits, name), splits.task.num_classes, progress).tolist() for name in SPLITS}
    return splits


def _shape(dataset: Dataset) -> tuple[int, int]:
    x, _ = dataset[0]
    return int(x.shape[0]), int(x.shape[-1])


def _lob_task() -> Task:
    return Task("classification", 3, LOB_CLASSES)


def _lobster(data: Mapping[str, Any], stats: Mapping[str, Any] | None, _progress: bool) -> Splits:
    message, orderbook = data["message"], data["orderbook"]
    if (message is None) != (orderbook is None):
        raise ValueError("data: give both 'message' and 'orderbook' LOBSTER files, or neither (bundled sample)")
    if message is None:
        message, orderbook = bundled_lobster_sample()
    book = read_lobster(message, orderbook, levels=data["levels"])
    fractions = tuple(float(f) for f in data["fractions"])
    first = slice(*split_bounds(len(book), fractions)[0])
    alpha = data["alpha"]
    if alpha is None:
        alpha = balanced_alpha(smoothed_returns(book.mid[first], data["horizon"]))
    zscore = ZScore.fit(book.snapshots[first]) if stats is None else ZScore(
        np.array(stats["feature_mean"]), np.array(stats["feature_std"]))
    full = lobster_dataset(book, data["horizon"], alpha, data["window"], fit=zscore)
    train, val, test = chronological_split(full, fractions)
    channels, length = _shape(train)
    info = {"alpha": float(alpha), "events": len(book), "source": [str(message), str(orderbook)],
            "normalisation": {"feature_mean": zscore.mean.tolist(), "feature_std": zscore.std.tolist()}}
    return Splits(train, val, test, _lob_task(), channels, length, full, info)


def _fi2010(data: Mapping[str, Any], _stats: Any, progress: bool) -> Splits:
    options = {"horizon": data["horizon"], "window": data["window"], "normalisation": data["normalisation"],
               "auction": data["auction"], "cache_dir": data["cache_dir"], "progress": progress}
    train_days = load_fi2010(data["root"], "train", **options)
    test = load_fi2010(data["root"], "test", **options)
    share = float(data["val_fraction"])
    if not 0 < share < 1:
        raise ValueError(f"data.val_fraction must be in (0, 1); got {share}")
    train, val = chronological_split(train_days, (1 - share, share))
    channels, length = _shape(train)
    return Splits(train, val, test, _lob_task(), channels, length, None, {"root": str(data["root"])})


def _table(data: Mapping[str, Any], stats: Mapping[str, Any] | None, _progress: bool) -> Splits:
    features = data["features"] or [data["target"]]
    full = table_dataset(data["path"], data["target"], features, data["window"], data["horizon"], data["task"])
    parts = chronological_split(full, tuple(float(f) for f in data["fractions"]))
    regression = data["task"] == "regression"
    info: dict[str, Any] = {"source": str(data["path"])}
    task_options: dict[str, Any] = {}
    if data["normalise"]:
        if stats is None:
            train = parts[0]
            steps = full.features[:, int(train.ends[0]) - full.window + 1: int(train.ends[-1]) + 1]
            mean, std = steps.double().mean(dim=1), steps.double().std(dim=1, correction=0)
            stats = {"feature_mean": mean.tolist(), "feature_std": torch.where(std > 0, std, 1.0).tolist()}
            if regression:
                labels = full.targets[train.ends].double()
                spread = float(labels.std(correction=0))
                stats.update(target_mean=float(labels.mean()), target_std=spread if spread > 0 else 1.0)
        mean = torch.tensor(stats["feature_mean"], dtype=torch.float64)[:, None]
        std = torch.tensor(stats["feature_std"], dtype=torch.float64)[:, None]
        if mean.shape[0] != full.channels:
            raise ValueError(f"data: the run was trained on {mean.shape[0]} feature columns, the data has "
                             f"{full.channels}")
        features_z = ((full.features.double() - mean) / std).float()
        targets = full.targets
        if regression and "target_mean" in stats:
            task_options = {"target_mean": stats["target_mean"], "target_std": stats["target_std"]}
            targets = ((targets.double() - stats["target_mean"]) / stats["target_std"]).float()
        full = WindowDataset(features_z, targets, full.window, full.ends, full.lookahead)
        parts = tuple(full.subset(p.ends) for p in parts)
        info["normalisation"] = dict(stats)
    if regression:
        task = Task("regression", **task_options)
    else:
        classes = int(full.targets.max()) + 1
        task = Task("classification", max(classes, 2))
    channels, length = _shape(parts[0])
    return Splits(*parts, task, channels, length, full, info)


def _seeded(cls: type, data: Mapping[str, Any], **options: Any) -> tuple[Dataset, Dataset, Dataset]:
    sizes = (data["train_size"], data["val_size"], data["test_size"])
    return tuple(cls(size, seed=data["seed"] + offset, **options) for offset, size in enumerate(sizes))


def _adding(data: Mapping[str, Any], _stats: Any, _progress: bool) -> Splits:
    train, val, test = _seeded(AddingProblem, data, seq_len=data["seq_len"], halves=data["halves"])
    return Splits(train, val, test, Task("regression"), 2, data["seq_len"])


def _copy_memory(data: Mapping[str, Any], _stats: Any, _progress: bool) -> Splits:
    train, val, test = _seeded(CopyMemory, data, blank_len=data["blank_len"], mem_len=data["mem_len"])
    task = Task("classification", 10, tuple(str(d) for d in range(10)), per_step=True)
    return Splits(train, val, test, task, 1, data["blank_len"] + 2 * data["mem_len"])

