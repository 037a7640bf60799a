"""The training objective: what a model is trained to predict (:class:`Task`: classification or regression, per
window or per step), how its output lines up with the target, and the loss.

(Not to be confused with the TCN paper's synthetic *tasks*, which are data sources: :mod:`dilated.data._synthetic`.)

Conventions (every model in :mod:`dilated.models` returns ``(batch, channels)`` or ``(batch, channels, time)``):

* classification of a window (LOB movement, a class column): target ``(B,)`` int64; the output is ``(B, C)``
  logits, or ``(B, C, T)`` of which the last step is used (the step that has seen the whole window);
* classification per step (copy memory): target ``(B, T)``; the output ``(B, C, T)`` is used as it is;
* regression: target ``(B,)`` or ``(B, 1)``; the output ``(B, 1)``, ``(B,)`` or ``(B, 1, T)`` (last step).

Regression targets may be z-scored for training (``target_mean``, ``target_std``); :meth:`Task.denormalise`
brings values back to the data's units, in which metrics and predictions are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

LOB_CLASSES = ("up", "stationary", "down")


@dataclass(frozen=True)
class Task:
    """A prediction task.

    Attributes:
        kind: ``"classification"`` or ``"regression"``.
        num_classes: classes (classification) or 1.
        class_names: a name per class id, e.g. ``("up", "stationary", "down")``.
        per_step: the target has a time axis (one label per step).
        target_mean, target_std: regression targets were z-scored with these (0 and 1: not at all).
    """

    kind: Literal["classification", "regression"]
    num_classes: int = 1
    class_names: tuple[str, ...] = field(default=())
    per_step: bool = False
    target_mean: float = 0.0
    target_std: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("classification", "regression"):
            raise ValueError(f"task kind must be 'classification' or 'regression'; got {self.kind!r}")
        if self.kind == "classification" and self.num_classes < 2:
            raise ValueError(f"a classification task needs >= 2 classes; got {self.num_classes}")
        if self.kind == "classification" and not self.class_names:
            object.__setattr__(self, "class_names", tuple(str(i) for i in range(self.num_classes)))

    @property
    def is_classification(self) -> bool:
        return self.kind == "classification"

    def denormalise(self, values: Tensor) -> Tensor:
        """Regression values in the data's units."""
        return values * self.target_std + self.target_mean


def align_output(output: Tensor, target: Tensor, task: Task) -> Tensor:
    """The part of ``output`` that ``target`` labels (see the module docstring); shapes are checked."""
    if task.is_classification:
        if output.dim() == 3 and target.dim() == 1:
            output = output[..., -1]  # (B, C, T) -> (B, C): the last step has seen the whole window
        expected = (target.shape[0], task.num_classes, *target.shape[1:])
        if tuple(output.shape) != expected:
            raise ValueError(
                f"model output {tuple(output.shape)} does not fit targets {tuple(target.shape)} of "
                f"{task.num_classes} classes: expected {expected}; check the model's class count "
                "(num_classes / output_size) and head"
            )
        return output
    if output.dim() == 3:
        output = output[..., -1]  # (B, 1, T) -> (B, 1)
    if output.numel() != target.numel():
        raise ValueError(
            f"model output {tuple(output.shape)} does not fit regression targets {tuple(target.shape)}: "
            "the model must return one value per sample (e.g. output_size=1)"
        )
    return output.reshape(target.shape)


def task_loss(output: Tensor, target: Tensor, task: Task, class_weights: Tensor | None = None) -> Tensor:
    """Cross-entropy (optionally class-weighted) or mean squared error of an aligned output."""
    if task.is_classification:
        return F.cross_entropy(output, target, weight=class_weights)
    return F.mse_loss(output, target.to(output.dtype))


def predictions(output: Tensor, task: Task) -> Tensor:
    """Class ids (classification, argmax over the class axis) or values in the data's units (regression)."""
    if task.is_classification:
        return output.argmax(dim=1)
    return task.denormalise(output.float())


def balanced_class_weights(counts: Tensor) -> Tensor:
    """``n / (classes * count_c)`` per class (scikit-learn's "balanced"); absent classes get weight 0."""
    counts = counts.double()
    total, classes = counts.sum(), len(counts)
    weights = torch.where(counts > 0, total / (classes * counts.clamp(min=1)), torch.zeros_like(counts))
    return weights.float()
