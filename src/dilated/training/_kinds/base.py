"""What every data kind is: :class:`DataSource` (a ``data:`` section that builds its :class:`Splits` for training and
reads raw events for a live predictor), the registry :data:`DATA_KINDS`, and :class:`Feed` (a recorded feed).

Torch-free at import (``dilated train --help`` lists every kind's options): what a kind needs of torch, pandas or
the readers of :mod:`dilated.data` is imported inside the method that uses it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from dilated.training._schema import write_section

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor
    from torch.utils.data import Dataset

    from dilated.models import DataShape
    from dilated.training._baselines import Baseline, Persistence
    from dilated.training._metric_table import TaskKind
    from dilated.training._objective import Task

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
        baseline: the trivial baseline (set by :func:`~dilated.training.build_splits`).
        references: baselines fitted on the training part beside the trivial one, scored per part: ``{part:
            {rule: {"name": ..., metric: value}}}`` (books: logistic regressions, :mod:`~dilated.training._lob_baseline`).
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
    references: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

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
        from dilated.models import DataShape

        classes = self.task.num_classes if self.task.is_classification else None
        return DataShape(self.channels, self.length, classes, self.task.per_step, self.info.get("representation"))


@dataclass(frozen=True)
class Feed:
    """A recorded feed as a live one delivers it: one raw event (or table row) per step.

    Attributes:
        raw: ``(channels, time)`` raw features, read as the run's data kind reads them.
        rows: ``(time,)`` int64, each step's row in its file (the ``sample`` column of ``dilated predict``).
        targets: ``(time,)`` what the window ending at each step should predict (class id, or the value in the
            data's units), where ``labelled``; None for data without targets.
        labelled: ``(time,)`` bool.
        usable: ``(time,)`` bool, the events a window may hold (see :meth:`DataSource.unusable`); None: all.
    """

    raw: Tensor
    rows: Tensor
    targets: Tensor | None = None
    labelled: Tensor | None = None
    usable: Tensor | None = None

    def __len__(self) -> int:
        return self.raw.shape[-1]


@dataclass(frozen=True)
class DataSource:
    """A ``data:`` section: one subclass per kind, which sets ``kind``, declares its options as fields and serves
    both halves of a run.

    Training: :attr:`task_kind`, :meth:`build`. The live predictor (:func:`dilated.load_run`): :meth:`as_trained`,
    :meth:`run_task`, :meth:`read_events`, :meth:`prepare`, :meth:`inputs`, :meth:`event_values`,
    :attr:`event_features`, :meth:`unusable`. A kind that
    leaves the live half out (its data are not raw events: FI-2010, the synthetic tasks) refuses it in one line
    naming the kind.
    """

    kind: ClassVar[str]

    # -- training ------------------------------------------------------------------------------------------------
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

    # -- a trained run -------------------------------------------------------------------------------------------
    @property
    def normalises(self) -> bool:
        """Whether a run trained on this section stores input statistics (``metrics.json``'s
        ``data.normalisation``)."""
        return False

    def as_trained(self, info: Mapping[str, Any]) -> DataSource:
        """The section with what training fitted on the data filled in (label thresholds), so that raw data is
        labelled as training labelled it; ``info``: ``metrics.json``'s ``data``."""
        return self

    def run_task(self, info: Mapping[str, Any]) -> Task:
        """The task of a run trained on this section, from ``metrics.json``'s ``data`` (no data is read)."""
        raise NotImplementedError

    # -- the live half -------------------------------------------------------------------------------------------
    def read_events(self, source: Any, by: str | None) -> dict[Hashable, Feed]:
        """Recorded feeds of raw events: ``source`` (a file, or None: the section's own data), one feed per value
        of the column ``by`` (None: one feed, key None)."""
        raise self._no_live_reading()

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Raw rows ``(..., time, channels)`` as training prepared them; ``previous`` ``(..., channels)``: each
        feed's last prepared event before ``rows``."""
        raise self._no_live_reading()

    def inputs(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Prepared rows ``(..., time, values)`` -> the model's inputs ``(..., time, channels)`` before the
        normalisation, as training computed them; ``previous`` ``(..., values)``: each feed's prepared event before
        ``rows`` (None: none). Default: the rows themselves."""
        return rows

    def event_values(self, channels: int) -> int:
        """Values per raw event of a run whose model reads ``channels`` inputs per event (default: the same)."""
        return channels

    @property
    def event_features(self) -> str:
        """The features of a raw event, in words (for errors)."""
        raise self._no_live_reading()

    def unusable(self, rows: np.ndarray) -> np.ndarray | None:
        """Prepared rows ``(..., channels)`` -> ``(...)`` bool: events no training window held, so no prediction is
        made from a window holding one (books: one-sided or crossed, a price level without a size); None: none."""
        return None

    def _no_live_reading(self) -> ValueError:
        live = [kind for kind, cls in DATA_KINDS.items() if cls.read_events is not DataSource.read_events]
        return ValueError(
            f"data kind {self.kind!r} has no live reading: raw events are read for {', '.join(live)} runs; "
            "stream the run's model with dilated.stream"
        )


DATA_KINDS: dict[str, type[DataSource]] = {}


def data_kind(cls: type[DataSource]) -> type[DataSource]:
    """Class decorator registering a data kind under ``cls.kind``."""
    DATA_KINDS[cls.kind] = cls
    return cls


def shape_of(dataset: Dataset) -> tuple[int, int]:
    """``(channels, length)`` of a dataset's first input."""
    x, _ = dataset[0]
    return int(x.shape[0]), int(x.shape[-1])


def lob_task() -> Task:
    """Movement classes of limit order books: up, stationary, down."""
    from dilated.training._objective import LOB_CLASSES, Task

    return Task("classification", len(LOB_CLASSES), LOB_CLASSES)
