"""Data kinds: the ``data:`` section of a training config, one frozen dataclass per kind (one module each), each
serving both halves of a run: training (:meth:`~DataSource.build` its splits) and the live predictor (read raw
events, prepare them as training did, say which events no training window held).

* ``lobster`` (:mod:`.lobster`), ``book`` (:mod:`.book`), ``table`` (:mod:`.table`): raw events, read live too;
* ``fi2010`` (:mod:`.fi2010`), ``adding`` / ``copy_memory`` (:mod:`.synthetic`): training only; their live half
  refuses in one line naming the kind.

Windows never straddle two parts, and no label of one part is computed from steps of another.

Adding a data kind is one class in a module of its own, imported here (:class:`BookData` is a real one)::

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

        def run_task(self, info) -> Task:
            ...  # what a run trained on this section predicts (the live predictor's task)

        # the live half; left out, it refuses naming the kind
        def read_events(self, source, by) -> dict[Hashable, Feed]:
            ...  # raw events of a file, one Feed per instrument
        def prepare(self, rows, previous) -> np.ndarray:
            ...  # raw rows as training prepared them
        @property
        def event_features(self) -> str:
            return "ticks: price, size"

The config schema (``dilated train --help``, unknown keys, types, ``--override data.horizon=...``) follows from the
fields; :func:`~dilated.training.build_splits` adds the sizes, class counts and the trivial baseline for every kind.
Importing a kind imports no torch (the help lists every kind's options): each method imports what it uses.
"""

from dilated.training._kinds.base import DATA_KINDS, DataSource, Feed, Splits, data_kind

# importing a kind registers it: this order is DATA_KINDS', which the help and errors list
# isort: off
from dilated.training._kinds.lobster import LobsterData
from dilated.training._kinds.fi2010 import FI2010Data
from dilated.training._kinds.table import TableData
from dilated.training._kinds.book import BookData
from dilated.training._kinds.synthetic import AddingData, CopyMemoryData
# isort: on

__all__ = [
    "DATA_KINDS",
    "AddingData",
    "BookData",
    "CopyMemoryData",
    "DataSource",
    "FI2010Data",
    "Feed",
    "LobsterData",
    "Splits",
    "TableData",
    "data_kind",
]
