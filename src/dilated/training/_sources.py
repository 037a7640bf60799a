"""Data kinds: the ``data:`` section of a training config, one frozen dataclass per kind, each building its splits.

* ``lobster``: LOBSTER message/orderbook files (default: the bundled AAPL sample), z-scored with statistics of the
  training part (kept in ``info["normalisation"]`` and applied again to other data), movement labels ``horizon``
  events ahead with a balanced alpha from training returns; split in time order by ``fractions``;
* ``fi2010``: the standard FI-2010 split (days 1-7 train, 8-10 test, :func:`dilated.data.load_fi2010`); the last
  ``val_fraction`` of the training days is the validation part, as in DeepLOB's code;
* ``table``: windows over a CSV/Parquet table (:func:`dilated.data.table_dataset`), split in time order and
  z-scored with training statistics;
* ``book``: a Parquet book of ``dilated data convert`` (:func:`dilated.data.book_splits`: smoothed mid-price labels,
  chronological parts with a gap of window + horizon events, z-scores of the training part);
* ``adding`` / ``copy_memory``: the TCN paper's synthetic tasks, three independently seeded sets.

Windows never straddle two parts, and no label of one part is computed from steps of another.

Adding a data kind is one class and its builder, here (:class:`BookData` is a real one)::

    @data_kind
    @dataclass(frozen=True)
    class TickData(DataSource):
        \"\"\"Trade ticks (a ticks reader in dilated.data).\"\"\"

        kind: ClassVar[str] = "ticks"
        path: str = option(help="a Parquet file of ticks")   # required: no default
        horizon: int = option(10, "label horizon in events")

        @property
        def task_kind(self) -> TaskKind:
            return "classification"

        def build(self, stats, progress) -> Splits:
            ...  # read, label, split, normalise; return Splits(train, val, test, task, channels, length, ...)

The config schema (``dilated train --help``, unknown keys, types, ``--override data.horizon=...``) follows from the
fields; :func:`build_splits` adds the sizes, class counts and the trivial baseline for every kind.
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, Literal, cast

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
    book_splits,
    bundled_lobster_sample,
    chronological_split,
    load_fi2010,
    lobster_dataset,
    read_lobster,
    smoothed_returns,
    split_bounds,
    table_dataset,
)
from dilated.models import DataShape
from dilated.training._baselines import Baseline, MajorityClass, Persistence, TrainingMean
from dilated.training._metric_table import TaskKind
from dilated.training._objective import LOB_CLASSES, Task
from dilated.training._schema import option, write_section

SPLITS = ("train", "val", "test")
FRACTIONS_HELP = "train/validation/test shares of the series, in time order"


@dataclass
class Splits:
    """Datasets of one config, and what they are.

    Attributes:
        train, val, test: datasets of ``(x, y)``, ``x`` float32 ``(channels, length)``.
        task: what ``y`` is.
        channels, length: the shape of ``x``.
        full: the whole series as one dataset, where there is one (``lobster``, ``table``).
        info: JSON-ready facts: sizes, class counts, alpha, normalisation statistics, the baseline.
        last_value: for forecasting, the baseline that repeats the window's last value of the target series.
        baseline: the trivial baseline (set by :func:`build_splits`).
    """

    train: Dataset
    val: Dataset
    test: Dataset
    task: Task
    channels: int
    length: int
    full: Dataset | None = None
    info: dict[str, Any] = field(default_factory=dict)
    last_value: Persistence | None = None
    baseline: Baseline | None = None

    def split(self, name: str) -> Dataset:
        """``"train"``, ``"val"``, ``"test"`` or ``"all"`` (the whole series, where there is one)."""
        if name == "all":
            if self.full is None:
                raise ValueError("split 'all' exists for lobster and table data only; use train, val or test")
            return self.full
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; use train, val, test or all")
        return getattr(self, name)

    @property
    def shape(self) -> DataShape:
        """What the data fixes for a model (see :class:`dilated.models.DataFit`)."""
        classes = self.task.num_classes if self.task.is_classification else None
        return DataShape(self.channels, self.length, classes, self.task.per_step)


@dataclass(frozen=True)
class DataSource:
    """A ``data:`` section. Subclasses set ``kind``, declare their options as fields and build their splits."""

    kind: ClassVar[str]

    @property
    def task_kind(self) -> TaskKind:
        """``classification`` or ``regression``: what the targets will be (known before the data is read)."""
        raise NotImplementedError

    def build(self, stats: dict[str, Any] | None, progress: bool) -> Splits:
        """The splits. ``stats``: normalisation statistics of an earlier run to apply instead of fitting new ones."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The section as YAML writes it, ``kind`` first."""
        return {"kind": self.kind, **write_section(self)}


DATA_KINDS: dict[str, type[DataSource]] = {}


def data_kind(cls: type[DataSource]) -> type[DataSource]:
    """Class decorator registering a data kind under ``cls.kind``."""
    DATA_KINDS[cls.kind] = cls
    return cls


@data_kind
@dataclass(frozen=True)
class LobsterData(DataSource):
    """LOBSTER message + orderbook files, FI-2010-style features and smoothed mid-price movement labels."""

    kind: ClassVar[str] = "lobster"
    message: str | None = option(None, "LOBSTER message file (default: the bundled AAPL sample)")
    orderbook: str | None = option(None, "LOBSTER orderbook file (default: the bundled AAPL sample)")
    levels: int = option(10, "book levels used as features (4 per level)")
    horizon: int = option(10, "label horizon k in events (mean of the next k mid-prices)")
    window: int = option(100, "events per input window")
    alpha: float | None = option(None, "label threshold; null: balanced (a third stationary) from training data")
    fractions: tuple[float, ...] = option((0.7, 0.15, 0.15), FRACTIONS_HELP)

    @property
    def task_kind(self) -> TaskKind:
        return "classification"

    def build(self, stats: dict[str, Any] | None, progress: bool) -> Splits:
        message, orderbook = self.message, self.orderbook
        if (message is None) != (orderbook is None):
            raise ValueError("data: give both 'message' and 'orderbook' LOBSTER files, or neither (bundled sample)")
        if message is None or orderbook is None:
            message, orderbook = (str(p) for p in bundled_lobster_sample())
        book = read_lobster(message, orderbook, levels=self.levels)
        fractions = tuple(float(f) for f in self.fractions)
        first = slice(*split_bounds(len(book), fractions)[0])
        alpha = self.alpha
        if alpha is None:
            alpha = balanced_alpha(smoothed_returns(book.mid[first], self.horizon))
        zscore = (
            ZScore.fit(book.snapshots[first])
            if stats is None
            else ZScore(np.array(stats["feature_mean"]), np.array(stats["feature_std"]))
        )  # another run's: applied again
        full = lobster_dataset(book, self.horizon, alpha, self.window, fit=zscore)
        train, val, test = chronological_split(full, fractions)
        channels, length = _shape(train)
        info = {
            "alpha": float(alpha),
            "events": len(book),
            "source": [str(message), str(orderbook)],
            "normalisation": {"feature_mean": zscore.mean.tolist(), "feature_std": zscore.std.tolist()},
        }
        return Splits(train, val, test, _lob_task(), channels, length, full, info)


@data_kind
@dataclass(frozen=True)
class FI2010Data(DataSource):
    """The FI-2010 benchmark (Ntakaris et al. 2018), setup 2: days 1-7 train, days 8-10 test."""

    kind: ClassVar[str] = "fi2010"
    root: str = option(help="folder the FI-2010 zip was extracted to")
    horizon: Literal[10, 20, 30, 50, 100] = option(100, "label horizon in events")
    window: int = option(100, "events per input window")
    normalisation: Literal["ZScore", "MinMax", "DecPre"] = option("ZScore", "FI-2010 file variant")
    auction: bool = option(False, "use the files with auction periods")
    val_fraction: float = option(0.2, "last share of the training days held out for validation (DeepLOB)")
    cache_dir: str | None = option(None, "where parsed files are cached (default: next to the files)")

    @property
    def task_kind(self) -> TaskKind:
        return "classification"

    def build(self, stats: dict[str, Any] | None, progress: bool) -> Splits:
        load = partial(
            load_fi2010,
            horizon=self.horizon,
            window=self.window,
            normalisation=self.normalisation,
            auction=self.auction,
            cache_dir=self.cache_dir,
            progress=progress,
        )
        train_days = load(self.root, "train")
        test = load(self.root, "test")
        share = float(self.val_fraction)
        if not 0 < share < 1:
            raise ValueError(f"data.val_fraction must be in (0, 1); got {share}")
        train, val = chronological_split(train_days, (1 - share, share))
        channels, length = _shape(train)
        return Splits(train, val, test, _lob_task(), channels, length, None, {"root": str(self.root)})


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
    def task_kind(self) -> TaskKind:
        return self.task

    def build(self, stats: dict[str, Any] | None, progress: bool) -> Splits:
        features = list(self.features or [self.target])
        full = table_dataset(self.path, self.target, features, self.window, self.horizon, self.task)
        parts = chronological_split(full, tuple(float(f) for f in self.fractions))
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
            full = WindowDataset(features_z, targets, full.window, full.ends, full.lookahead)
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
        channels, length = _shape(parts[0])
        train, val, test = parts
        return Splits(train, val, test, task, channels, length, full, info, last_value)


@data_kind
@dataclass(frozen=True)
class BookData(DataSource):
    """A Parquet order book written by ``dilated data convert``: FI-2010-style features, smoothed mid-price labels."""

    kind: ClassVar[str] = "book"
    path: str = option(help="a Parquet book (dilated data convert)")
    levels: int = option(10, "book levels used as features (4 per level)")
    window: int = option(100, "events per input window")
    horizon: int = option(10, "label horizon k in events")
    threshold: float | None = option(
        None, "label threshold on the smoothed change; null: a third of the training labels stationary"
    )
    smoothing: Literal["future", "past"] = option(
        "future", "label rule: mean of the next k mids vs the current (future) or vs the mean of the past k (past)"
    )
    fractions: tuple[float, ...] = option((0.7, 0.15, 0.15), FRACTIONS_HELP)
    stride: int = option(1, "serve window ends at multiples of this many events only")
    start: str | None = option(None, "first event time kept (ISO, UTC), e.g. the session open")
    end: str | None = option(None, "events before this time are kept (ISO, UTC)")

    @property
    def task_kind(self) -> TaskKind:
        return "classification"

    def build(self, stats: dict[str, Any] | None, progress: bool) -> Splits:
        parts = book_splits(
            self.path,
            levels=self.levels,
            window=self.window,
            horizon=self.horizon,
            threshold=self.threshold,
            smoothing=self.smoothing,
            fractions=tuple(float(f) for f in self.fractions),
            stride=self.stride,
            start=self.start,
            end=self.end,
            zscore=None if stats is None else ZScore(np.array(stats["mean"]), np.array(stats["std"])),  # a run's
        )
        channels, length = _shape(parts.train)
        info = {k: v for k, v in parts.info.items() if k != "zscore"} | {"normalisation": parts.info["zscore"]}
        return Splits(parts.train, parts.val, parts.test, _lob_task(), channels, length, parts.full, info)


@data_kind
@dataclass(frozen=True)
class AddingData(DataSource):
    """The adding problem (Bai et al. 2018, Sec. 4.2): sum the two marked values of a sequence."""

    kind: ClassVar[str] = "adding"
    seq_len: int = option(600, "sequence length T")
    train_size: int = option(50000, "training sequences")
    val_size: int = option(1000, "validation sequences")
    test_size: int = option(1000, "test sequences")
    halves: bool = option(False, "one marker in each half (the older RNN-paper variant)")
    seed: int = option(0, "data seed (validation and test use seed + 1 and seed + 2)")

    @property
    def task_kind(self) -> TaskKind:
        return "regression"

    def build(self, stats: dict[str, Any] | None, progress: bool) -> Splits:
        train, val, test = _seeded(AddingProblem, self, seq_len=self.seq_len, halves=self.halves)
        return Splits(train, val, test, Task("regression"), 2, self.seq_len)


@data_kind
@dataclass(frozen=True)
class CopyMemoryData(DataSource):
    """The copy-memory task (Bai et al. 2018, Sec. 4.5): recall digits after a long blank."""

    kind: ClassVar[str] = "copy_memory"
    blank_len: int = option(1000, "blank steps T between the digits and the recall")
    mem_len: int = option(10, "digits to remember")
    train_size: int = option(10000, "training sequences")
    val_size: int = option(1000, "validation sequences")
    test_size: int = option(1000, "test sequences")
    seed: int = option(0, "data seed (validation and test use seed + 1 and seed + 2)")

    @property
    def task_kind(self) -> TaskKind:
        return "classification"

    def build(self, stats: dict[str, Any] | None, progress: bool) -> Splits:
        train, val, test = _seeded(CopyMemory, self, blank_len=self.blank_len, mem_len=self.mem_len)
        task = Task("classification", 10, tuple(str(d) for d in range(10)), per_step=True)
        return Splits(train, val, test, task, 1, self.blank_len + 2 * self.mem_len)


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
                    disable=not progress,
                    leave=False,
                )
            ]
        )
    return labels.reshape(-1)


def class_counts(dataset: Dataset, num_classes: int, progress: bool = True) -> Tensor:
    """Samples (or steps, for per-step labels) per class."""
    return torch.bincount(targets(dataset, progress).long(), minlength=num_classes)[:num_classes]


def sample_ids(dataset: Dataset) -> list[int]:
    """A time index per sample: the window's last step for window datasets, else the sample number."""
    if isinstance(dataset, WindowDataset):
        return dataset.ends.tolist()
    return list(range(dataset_size(dataset)))


def _training_statistics(full: WindowDataset, train: WindowDataset, regression: bool) -> dict[str, Any]:
    """Feature (and regression target) mean and standard deviation over the rows the training windows cover."""
    steps = full.features[:, int(train.ends[0]) - full.window + 1 : int(train.ends[-1]) + 1]
    mean, std = steps.double().mean(dim=1), steps.double().std(dim=1, correction=0)
    stats: dict[str, Any] = {"feature_mean": mean.tolist(), "feature_std": torch.where(std > 0, std, 1.0).tolist()}
    if regression:
        labels = full.targets[train.ends].double()
        spread = float(labels.std(correction=0))
        stats.update(target_mean=float(labels.mean()), target_std=spread if spread > 0 else 1.0)
    return stats


def _shape(dataset: Dataset) -> tuple[int, int]:
    x, _ = dataset[0]
    return int(x.shape[0]), int(x.shape[-1])


def _lob_task() -> Task:
    return Task("classification", 3, LOB_CLASSES)


def _seeded(cls: type, data: AddingData | CopyMemoryData, **options: Any) -> tuple[Dataset, Dataset, Dataset]:
    sizes = (data.train_size, data.val_size, data.test_size)
    return tuple(cls(size, seed=data.seed + offset, **options) for offset, size in enumerate(sizes))
