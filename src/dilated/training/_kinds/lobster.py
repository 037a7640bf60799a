"""``lobster``: LOBSTER message/orderbook files (default: the bundled AAPL sample); an event is an orderbook row (4
values per level, prices x 10000)."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dilated import data
from dilated.training._kinds.base import FRACTIONS_HELP, DataSource, Feed, Splits, data_kind, lob_task, shape_of
from dilated.training._schema import option

if TYPE_CHECKING:
    import numpy as np

    from dilated.training._metric_table import TaskKind
    from dilated.training._objective import Task


@data_kind
@dataclass(frozen=True)
class LobsterData(DataSource):
    """LOBSTER message + orderbook files, FI-2010-style features and smoothed mid-price movement labels.

    Training z-scores the features with statistics of the training part (kept in ``info["normalisation"]`` and
    applied again to other data); labels look ``horizon`` events ahead with a balanced alpha from training returns;
    the parts follow in time order by ``fractions``.
    """

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
        import numpy as np

        message, orderbook = self._files(None)
        book = data.read_lobster(message, orderbook, levels=self.levels)
        fractions = tuple(float(f) for f in self.fractions)
        first = slice(*data.split_bounds(len(book), fractions)[0])
        alpha = self.alpha
        if alpha is None:
            alpha = data.balanced_alpha(data.smoothed_returns(book.mid[first], self.horizon))
        zscore = (
            data.ZScore.fit(book.snapshots[first])
            if stats is None
            else data.ZScore(np.array(stats["feature_mean"]), np.array(stats["feature_std"]))
        )  # another run's: applied again
        full = data.lobster_dataset(book, self.horizon, alpha, self.window, fit=zscore)
        train, val, test = data.chronological_split(full, fractions)
        channels, length = shape_of(train)
        info = {
            "alpha": float(alpha),
            "events": len(book),
            "source": [str(message), str(orderbook)],
            "normalisation": {"feature_mean": zscore.mean.tolist(), "feature_std": zscore.std.tolist()},
        }
        return Splits(train, val, test, lob_task(), channels, length, full, info)

    @property
    def normalises(self) -> bool:
        return True

    def as_trained(self, info: Mapping[str, Any]) -> LobsterData:
        """The run's alpha (balanced on its training part where the config left it null)."""
        return dataclasses.replace(self, alpha=info.get("alpha", self.alpha))

    def run_task(self, info: Mapping[str, Any]) -> Task:
        return lob_task()

    def read_events(self, source: Any, by: str | None) -> dict[Hashable, Feed]:
        """``source``: a ``(message, orderbook)`` pair or one of the two files (its partner found by LOBSTER's
        naming). Labelled with ``alpha`` (a run's: :meth:`as_trained`); unlabelled where it is null."""
        import torch

        if by is not None:
            raise ValueError(f"--by {by}: one LOBSTER file pair holds one instrument; --by splits table files")
        message, orderbook = self._files(source)
        book = data.read_lobster(message, orderbook, levels=self.levels)
        raw = torch.from_numpy(book.snapshots.T.copy())  # (4 * levels, events) float64
        if self.alpha is None:  # no threshold to label with
            return {None: Feed(raw, torch.arange(len(book)))}
        labels = torch.from_numpy(data.movement_labels(data.smoothed_returns(book.mid, self.horizon), self.alpha))
        return {None: Feed(raw, torch.arange(len(book)), labels, labels >= 0)}

    def _files(self, source: Any) -> tuple[Any, Any]:
        if source is None:
            if (self.message is None) != (self.orderbook is None):
                raise ValueError("data: give both 'message' and 'orderbook' LOBSTER files, or neither (bundled sample)")
            if self.message is None or self.orderbook is None:
                message, orderbook = data.bundled_lobster_sample()
                return str(message), str(orderbook)
            return self.message, self.orderbook
        if isinstance(source, (tuple, list)) and len(source) == 2:
            return source[0], source[1]
        return _lobster_pair(Path(source))

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Empty levels filled, from ``previous`` where a whole side is empty."""
        import numpy as np

        if not ((rows == data.LOBSTER_EMPTY_ASK) | (rows == data.LOBSTER_EMPTY_BID)).any():  # a full book
            return rows
        if previous is None:
            return data.fill_empty_levels(rows, "the feed's first event")
        return data.fill_empty_levels(np.concatenate([previous[..., None, :], rows], axis=-2))[..., 1:, :]

    @property
    def event_features(self) -> str:
        return f"LOBSTER, {self.levels} levels x ask price, ask size, bid price, bid size"


def _lobster_pair(path: Path) -> tuple[Path, Path]:
    """A LOBSTER file and its partner by LOBSTER's naming (``..._message_10.csv`` / ``..._orderbook_10.csv``)."""
    name = path.name
    if path.suffix.lower() == ".csv" and "_message_" in name:
        return path, path.with_name(name.replace("_message_", "_orderbook_"))
    if path.suffix.lower() == ".csv" and "_orderbook_" in name:
        return path.with_name(name.replace("_orderbook_", "_message_")), path
    raise ValueError(
        f"{path}: this run reads LOBSTER data: give a LOBSTER message or orderbook file "
        "(TICKER_date_start_end_message_LEVELS.csv or ..._orderbook_LEVELS.csv) or a YAML file with a "
        "'data:' section"
    )
