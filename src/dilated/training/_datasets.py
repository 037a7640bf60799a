"""What training reads of a data kind's datasets: :func:`build_splits` (the splits with their sizes, class counts
and trivial baseline), sizes, labels and time indices of samples."""

from __future__ import annotations

from collections.abc import Sized
from typing import Any, cast

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset
from tqdm import tqdm

from dilated._progress import bar_disabled
from dilated.data import WindowDataset
from dilated.training._baselines import MajorityClass, TrainingMean
from dilated.training._kinds.base import SPLITS, DataSource, Splits


def build_splits(data: DataSource, stats: dict[str, Any] | None = None, progress: bool = True) -> Splits:
    """The datasets of a ``data:`` section, with their sizes, class counts and trivial baseline in ``info``.

    Args:
        stats: normalisation statistics of an earlier run (``Splits.info["normalisation"]``) to apply instead of
            fitting new ones (``table`` data).
    """
    splits = data.build(stats, progress)
    if splits.task.kind != data.task_kind:
        raise TypeError(f"data kind {data.kind!r} declares {data.task_kind} targets but built {splits.task.kind}")
    sizes = {name: len(getattr(splits, name)) for name in SPLITS}
    for name, size in sizes.items():
        if size == 0:
            raise ValueError(f"data: the {name} part holds no samples; use more data or a smaller window/horizon")
    splits.info = {"kind": data.kind, "sizes": sizes, **splits.info}
    if splits.task.is_classification:
        counts = {
            name: class_counts(getattr(splits, name), splits.task.num_classes, progress).tolist() for name in SPLITS
        }
        splits.info["class_counts"] = counts
        splits.baseline = MajorityClass.from_counts(counts["train"], splits.task.class_names)
    elif splits.last_value is not None:
        splits.baseline = splits.last_value
    else:
        mean = float(splits.task.denormalise(targets(splits.train, progress).double()).mean())
        splits.baseline = TrainingMean(mean)
    splits.info["baseline"] = splits.baseline.to_info()
    return splits


def dataset_size(dataset: Dataset) -> int:
    """``len(dataset)``: every dataset here has a length, which torch's ``Dataset`` type does not declare."""
    return len(cast(Sized, dataset))


def window_labels(dataset: Dataset) -> Tensor | None:
    """The targets of a :class:`WindowDataset` (or a concatenation of them) without reading windows; else None."""
    if isinstance(dataset, WindowDataset):
        return dataset.targets[dataset.ends]
    if isinstance(dataset, ConcatDataset):
        parts = [d for d in dataset.datasets if isinstance(d, WindowDataset)]
        if len(parts) == len(dataset.datasets):
            return torch.cat([d.targets[d.ends] for d in parts])
    return None


def targets(dataset: Dataset, progress: bool = True) -> Tensor:
    """Every target of ``dataset``, flattened; reads every sample unless the labels are known."""
    labels = window_labels(dataset)
    if labels is None:
        labels = torch.cat(
            [
                dataset[i][1].reshape(-1)
                for i in tqdm(
                    range(dataset_size(dataset)),
                    desc="reading targets",
                    unit="sample",
                    disable=bar_disabled(progress),
                    leave=False,
                )
            ]
        )
    return labels.reshape(-1)


def class_counts(dataset: Dataset, num_classes: int, progress: bool = True) -> Tensor:
    """Samples (or steps, for per-step labels) per class; a concatenation part by part (one part's labels in memory
    at a time)."""
    if isinstance(dataset, ConcatDataset):
        counts = torch.zeros(num_classes, dtype=torch.long)
        for part in dataset.datasets:
            counts += class_counts(part, num_classes, progress)
        return counts
    return torch.bincount(targets(dataset, progress).long(), minlength=num_classes)[:num_classes]


def sample_ids(dataset: Dataset) -> list[int]:
    """A time index per sample: the window's last step for window datasets, else the sample number."""
    if isinstance(dataset, WindowDataset):
        return dataset.ends.tolist()
    return list(range(dataset_size(dataset)))
