"""``adding`` / ``copy_memory``: the TCN paper's synthetic tasks (Bai et al. 2018), three independently seeded sets
(generated, so no raw events to read live)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from dilated import data
from dilated.training._kinds.base import DataSource, Splits, data_kind
from dilated.training._schema import option

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from dilated.training._metric_table import TaskKind
    from dilated.training._objective import Task

SEED_HELP = "data seed (validation and test use seed + 1 and seed + 2)"


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
    seed: int = option(0, SEED_HELP)

    @property
    def task_kind(self) -> TaskKind:
        return "regression"

    def build(self, stats: dict[str, Any] | None, progress: bool) -> Splits:
        train, val, test = _seeded(data.AddingProblem, self, seq_len=self.seq_len, halves=self.halves)
        return Splits(train, val, test, self.run_task({}), 2, self.seq_len)

    def run_task(self, info: Mapping[str, Any]) -> Task:
        from dilated.training._objective import Task

        return Task("regression")


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
    seed: int = option(0, SEED_HELP)

    @property
    def task_kind(self) -> TaskKind:
        return "classification"

    def build(self, stats: dict[str, Any] | None, progress: bool) -> Splits:
        train, val, test = _seeded(data.CopyMemory, self, blank_len=self.blank_len, mem_len=self.mem_len)
        return Splits(train, val, test, self.run_task({}), 1, self.blank_len + 2 * self.mem_len)

    def run_task(self, info: Mapping[str, Any]) -> Task:
        """Ten digit classes, one label per step."""
        from dilated.training._objective import Task

        return Task("classification", 10, tuple(str(d) for d in range(10)), per_step=True)


def _seeded(cls: type, section: AddingData | CopyMemoryData, **options: Any) -> tuple[Dataset, Dataset, Dataset]:
    sizes = (section.train_size, section.val_size, section.test_size)
    return tuple(cls(size, seed=section.seed + offset, **options) for offset, size in enumerate(sizes))
