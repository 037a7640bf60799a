"""What the live predictor does with a recorded or live feed (:class:`~dilated.training.Feed`, read by the run's
data kind, :mod:`dilated.training._kinds`): the training z-score (:class:`Normalisation`) and the windows that hold
only usable events (:func:`usable_windows`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Normalisation:
    """The per-feature scaling ``(x - mean) / std`` of the training inputs (mean 0, std 1 where there was none),
    clipped to ``+-clip`` where training clipped (books' robust scaling: ``mean`` its median, ``std`` its scale).

    Attributes:
        mean, std: ``(channels,)`` float64.
        clip: None (no clipping) or the bound.
    """

    mean: np.ndarray
    std: np.ndarray
    clip: float | None = None

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any] | None, channels: int) -> Normalisation:
        """From ``metrics.json``'s ``data.normalisation`` (``feature_mean``, ``feature_std``; ``mean``, ``std`` for
        books; ``center``, ``scale``, ``clip`` for books' robust scaling), or none."""
        if stats is None:
            return cls(np.zeros(channels), np.ones(channels))
        if "center" in stats:
            return cls(
                np.array(stats["center"], dtype=np.float64), np.array(stats["scale"], dtype=np.float64), stats["clip"]
            )
        mean, std = ("feature_mean", "feature_std") if "feature_mean" in stats else ("mean", "std")
        return cls(np.array(stats[mean], dtype=np.float64), np.array(stats[std], dtype=np.float64))

    def __call__(self, raw: np.ndarray | Tensor) -> Tensor:
        """``(..., channels, time)`` raw values -> float32 scaled values (computed in float64, as training did)."""
        z = (np.asarray(raw, dtype=np.float64) - self.mean[:, None]) / self.std[:, None]
        if self.clip is not None:
            z = np.clip(z, -self.clip, self.clip)
        return torch.from_numpy(z.astype(np.float32))


def usable_windows(usable: Tensor | None, time: int, window: int) -> Tensor:
    """``(time - window + 1,)`` bool: which windows of ``window`` events (ending at steps ``window - 1`` on) hold
    only usable events."""
    if usable is None:
        return torch.ones(time - window + 1, dtype=torch.bool)
    bad = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum((~usable).long(), 0)])  # (time + 1,)
    return (bad[window:] - bad[: time - window + 1]) == 0
