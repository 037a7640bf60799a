"""Trivial baselines: what a model must beat, scored on the same test windows with the same metrics.

* classification: :class:`MajorityClass`, always the most frequent class of the training split;
* forecasting (the target series is one of the inputs): :class:`Persistence`, the last value of the window;
* other regression (e.g. the adding problem): :class:`TrainingMean`, always the mean training target.

Each predicts from a batch ``x`` of ``(batch, channels, time)`` what the model's aligned output predicts
(:func:`dilated.training._objective.predictions`): class ids shaped like the targets, or values in the data's units.
A baseline is stored in ``metrics.json`` (``data.baseline``) as :meth:`Baseline.to_info`, so that ``dilated
evaluate`` scores the rule of the run's own training split, on any data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor


class Baseline(Protocol):
    """A rule that predicts without training on the inputs it sees."""

    def predict(self, x: Tensor, target: Tensor) -> Tensor:
        """Predictions for a batch ``x`` ``(B, C, T)``, shaped like ``target`` (which is read for its shape only)."""

    def describe(self) -> str:
        """One line: what the rule predicts."""

    def to_info(self) -> dict[str, Any]:
        """JSON-ready description (see :func:`baseline_from_info`)."""


@dataclass(frozen=True)
class MajorityClass:
    """Always ``class_id``, the most frequent class of the training split (per step, for per-step targets)."""

    class_id: int
    class_name: str

    @classmethod
    def from_counts(cls, counts: Sequence[int], class_names: Sequence[str]) -> MajorityClass:
        """The most frequent class of ``counts`` (the first of them on a tie)."""
        majority = max(range(len(counts)), key=lambda c: counts[c])
        return cls(majority, str(class_names[majority]))

    def predict(self, x: Tensor, target: Tensor) -> Tensor:
        return torch.full(target.shape, self.class_id, dtype=torch.long)

    def describe(self) -> str:
        return f"always {self.class_name!r}, the most frequent class of the training split"

    def to_info(self) -> dict[str, Any]:
        return {"rule": "majority", "class_id": self.class_id, "class": self.class_name}


@dataclass(frozen=True)
class Persistence:
    """The last value of the window: input channel ``channel`` at the last step, in the data's units (the channel
    was z-scored with ``mean`` and ``std``)."""

    channel: int
    mean: float = 0.0
    std: float = 1.0

    def predict(self, x: Tensor, target: Tensor) -> Tensor:
        last = x[:, self.channel, -1].double() * self.std + self.mean  # (B,)
        return last.float().reshape(target.shape)

    def describe(self) -> str:
        return "persistence: the window's last value of the target series"

    def to_info(self) -> dict[str, Any]:
        return {"rule": "persistence", "channel": self.channel, "mean": self.mean, "std": self.std}


@dataclass(frozen=True)
class TrainingMean:
    """Always ``value``, the mean target of the training split (in the data's units)."""

    value: float

    def predict(self, x: Tensor, target: Tensor) -> Tensor:
        return torch.full(target.shape, self.value, dtype=torch.float32)

    def describe(self) -> str:
        return f"always {self.value:.4g}, the mean target of the training split"

    def to_info(self) -> dict[str, Any]:
        return {"rule": "mean", "value": self.value}


def baseline_from_info(info: Mapping[str, Any]) -> Baseline:
    """The baseline a ``metrics.json`` describes (:meth:`Baseline.to_info`)."""
    rule = info.get("rule")
    if rule == "majority":
        return MajorityClass(int(info["class_id"]), str(info["class"]))
    if rule == "persistence":
        return Persistence(int(info["channel"]), float(info["mean"]), float(info["std"]))
    if rule == "mean":
        return TrainingMean(float(info["value"]))
    raise ValueError(
        f"unknown baseline rule {rule!r} (metrics.json data.baseline); expected majority, persistence or mean"
    )
