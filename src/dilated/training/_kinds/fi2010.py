"""``fi2010``: the FI-2010 benchmark's files, features already normalised per day (no raw events to read live)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from dilated import data
from dilated.training._kinds.base import DataSource, Splits, data_kind, lob_task, shape_of
from dilated.training._schema import option

if TYPE_CHECKING:
    from dilated.training._metric_table import TaskKind
    from dilated.training._objective import Task


@data_kind
@dataclass(frozen=True)
class FI2010Data(DataSource):
    """The FI-2010 benchmark (Ntakaris et al. 2018), setup 2: days 1-7 train, days 8-10 test
    (:func:`dilated.data.load_fi2010`); the last ``val_fraction`` of the training days is the validation part, as in
    DeepLOB's code."""

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
            data.load_fi2010,
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
        train, val = data.chronological_split(train_days, (1 - share, share))
        channels, length = shape_of(train)
        return Splits(train, val, test, lob_task(), channels, length, None, {"root": str(self.root)})

    def run_task(self, info: Mapping[str, Any]) -> Task:
        return lob_task()
