"""The one table of metrics: name, task kind, direction, and how each is computed.

Everything that names a metric reads it from :data:`METRICS`: the config schema (the valid ``training.monitor``
values and the task each applies to), early stopping, the best checkpoint and the plateau schedule (the direction),
the validation logging and progress bar, the columns of ``metrics.csv``, the printed and saved test metrics
(:mod:`dilated.training._metrics` builds its torchmetrics collections from the ``torchmetric`` column).

Classification follows the limit-order-book literature and scikit-learn's ``classification_report``: accuracy;
precision, recall and F1 both as the unweighted mean over classes (``macro``) and weighted by each class's support
(``weighted``; the LOB papers' tables use this averaging: their recall equals their accuracy, as weighted recall
always does); and the Matthews correlation coefficient (multi-class, Gorodkin 2004), 0 for a constant predictor.
Regression: mean squared and mean absolute error in the data's units. ``loss`` is the training objective (for
either kind).

This module imports nothing heavy (no torch), so the config schema can read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

TaskKind = Literal["classification", "regression"]


@dataclass(frozen=True)
class Metric:
    """One metric.

    Attributes:
        name: its key in metrics dicts; ``val_<name>`` is the validation value logged, monitored and saved.
        task: ``classification``, ``regression`` or ``any`` (the loss).
        higher_is_better: the direction for early stopping, the best checkpoint and the plateau schedule.
        torchmetric: the torchmetrics class that computes it (``None``: the loop's mean loss).
        options: keyword arguments of that class (e.g. ``average``).
        description: how it is computed, in words (``dilated train --help``).
        progress_bar: shown on the training progress bar.
    """

    name: str
    task: Literal["classification", "regression", "any"]
    higher_is_better: bool
    torchmetric: str | None
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)
    progress_bar: bool = False

    def applies_to(self, kind: str) -> bool:
        return self.task in ("any", kind)


METRICS: tuple[Metric, ...] = (
    Metric(
        "loss",
        "any",
        False,
        None,
        "mean training objective: cross-entropy (class-weighted as in training) or "
        "the mean squared error of the (z-scored) targets",
        progress_bar=True,
    ),
    Metric(
        "accuracy", "classification", True, "MulticlassAccuracy", "share of correct predictions", {"average": "micro"}
    ),
    Metric(
        "precision_macro",
        "classification",
        True,
        "MulticlassPrecision",
        "precision per class, unweighted mean over the classes present",
        {"average": "macro"},
    ),
    Metric(
        "recall_macro",
        "classification",
        True,
        "MulticlassRecall",
        "recall per class, unweighted mean over the classes present",
        {"average": "macro"},
    ),
    Metric(
        "f1_macro",
        "classification",
        True,
        "MulticlassF1Score",
        "F1 per class, unweighted mean over the classes present",
        {"average": "macro"},
        progress_bar=True,
    ),
    Metric(
        "precision_weighted",
        "classification",
        True,
        "MulticlassPrecision",
        "precision per class, mean weighted by class support",
        {"average": "weighted"},
    ),
    Metric(
        "recall_weighted",
        "classification",
        True,
        "MulticlassRecall",
        "recall per class, mean weighted by class support (equals accuracy)",
        {"average": "weighted"},
    ),
    Metric(
        "f1_weighted",
        "classification",
        True,
        "MulticlassF1Score",
        "F1 per class, mean weighted by class support",
        {"average": "weighted"},
    ),
    Metric(
        "mcc",
        "classification",
        True,
        "MulticlassMatthewsCorrCoef",
        "Matthews correlation coefficient (multi-class), 0 for a constant prediction",
    ),
    Metric("mse", "regression", False, "MeanSquaredError", "mean squared error, in the data's units"),
    Metric(
        "mae", "regression", False, "MeanAbsoluteError", "mean absolute error, in the data's units", progress_bar=True
    ),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}

# keys of run folders written before the weighted metrics existed: the macro averages under their old names
LEGACY_NAMES = {"precision": "precision_macro", "recall": "recall_macro", "f1": "f1_macro"}

VALIDATION_PREFIX = "val_"


def metrics_for(kind: str) -> tuple[Metric, ...]:
    """The metrics of a ``classification`` or ``regression`` task, loss first."""
    return tuple(m for m in METRICS if m.applies_to(kind))


def computed_metrics(kind: str) -> tuple[Metric, ...]:
    """The metrics of a task kind that torchmetrics computes (all but the loss)."""
    return tuple(m for m in metrics_for(kind) if m.torchmetric is not None)


def monitors(kind: str | None = None) -> tuple[str, ...]:
    """Valid ``training.monitor`` values (``val_loss``, ``val_accuracy``, ...), for one task kind or all."""
    return tuple(VALIDATION_PREFIX + m.name for m in METRICS if kind is None or m.applies_to(kind))


def canonical_monitor(name: str) -> str:
    """``val_f1`` (a run folder of an older version) -> ``val_f1_macro``; other names unchanged."""
    bare = name.removeprefix(VALIDATION_PREFIX)
    return (
        VALIDATION_PREFIX + LEGACY_NAMES[bare] if name.startswith(VALIDATION_PREFIX) and bare in LEGACY_NAMES else name
    )


def metric(name: str) -> Metric:
    """The table entry of ``name``, with or without the ``val_`` prefix (old names accepted)."""
    bare = canonical_monitor(name).removeprefix(VALIDATION_PREFIX)
    if bare not in BY_NAME:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(BY_NAME)}")
    return BY_NAME[bare]


def higher_is_better(name: str) -> bool:
    """``val_f1_macro`` -> True, ``val_loss`` / ``mae`` -> False."""
    return metric(name).higher_is_better


def mode(name: str) -> Literal["min", "max"]:
    """Lightning's / torch's ``mode`` for monitoring ``name``."""
    return "max" if higher_is_better(name) else "min"
