"""Evaluation metrics, computed with torchmetrics from the one table of :mod:`dilated.training._metric_table`.

Classification: the table's scalar metrics (accuracy; precision, recall and F1 as macro and support-weighted means;
MCC), precision, recall and F1 per class, and the confusion matrix (true classes in rows, predicted in columns).
A class that is never predicted has precision 0; a class absent from both targets and predictions is left out of
the macro mean (as scikit-learn, which does not know of it). Regression: mean squared and mean absolute error, in
the data's units.

:class:`TaskMetrics` accumulates batches (and sums its state over processes under DDP); the functions
:func:`classification_metrics` and :func:`regression_metrics` score whole tensors at once. Both return plain
JSON-ready dicts; :func:`format_metrics` prints one, with its trivial baseline beside it when it has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
import torchmetrics
import torchmetrics.classification
from torch import Tensor, nn
from torchmetrics import MetricCollection

from dilated.training._baselines import MajorityClass
from dilated.training._metric_table import LEGACY_NAMES, METRICS, TaskKind, computed_metrics
from dilated.training._objective import Task, predictions

PER_CLASS = ("precision", "recall", "f1")
_PER_CLASS_METRICS = {"precision": "MulticlassPrecision", "recall": "MulticlassRecall", "f1": "MulticlassF1Score"}


def _torchmetric(class_name: str, **options: Any) -> torchmetrics.Metric:
    module = torchmetrics.classification if class_name.startswith("Multiclass") else torchmetrics
    return getattr(module, class_name)(**options)


def _computed_members(kind: TaskKind, **common: Any) -> dict[str, torchmetrics.Metric | MetricCollection]:
    """The torchmetrics objects of the metrics of ``kind`` that torchmetrics computes, by metric name."""
    return {
        m.name: _torchmetric(m.torchmetric, **common, **m.options)
        for m in computed_metrics(kind)
        if m.torchmetric is not None
    }


def classification_collection(num_classes: int, sync: bool = True) -> MetricCollection:
    """The torchmetrics collection behind :func:`classification_metrics` (updated with class ids).

    ``sync``: sum the states over processes before computing (under DDP); off for one process's own data.
    """
    common = {"num_classes": num_classes, "sync_on_compute": sync}
    members = _computed_members("classification", **common)
    for key, class_name in _PER_CLASS_METRICS.items():
        members[f"{key}_per_class"] = _torchmetric(class_name, **common, average="none")
    members["confusion_matrix"] = _torchmetric("MulticlassConfusionMatrix", **common)
    return MetricCollection(members)


def regression_collection(sync: bool = True) -> MetricCollection:
    """The torchmetrics collection behind :func:`regression_metrics`."""
    return MetricCollection(_computed_members("regression", sync_on_compute=sync))


def _classification_result(values: dict[str, Tensor], class_names: tuple[str, ...]) -> dict[str, Any]:
    matrix = values["confusion_matrix"].long()
    support = matrix.sum(dim=1)
    per_class = {
        name: {**{key: float(values[f"{key}_per_class"][i]) for key in PER_CLASS}, "support": int(support[i])}
        for i, name in enumerate(class_names)
    }
    result: dict[str, Any] = {m.name: float(values[m.name]) for m in computed_metrics("classification")}
    result.update(samples=int(support.sum()), per_class=per_class, confusion_matrix=matrix.tolist())
    return result


def classification_metrics(
    predicted: Tensor, target: Tensor, num_classes: int, class_names: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The classification metrics of the table, per-class scores and the confusion matrix.

    Args:
        predicted: class ids of any shape, or logits/probabilities ``(N, C, ...)``.
        target: class ids, the shape of ``predicted`` without its class axis.
    """
    if predicted.is_floating_point():
        predicted = predicted.argmax(dim=1)
    collection = classification_collection(num_classes, sync=False)
    collection.update(predicted.reshape(-1).long(), target.reshape(-1).long())
    names = class_names or tuple(str(i) for i in range(num_classes))
    return _classification_result(collection.compute(), names)


def regression_metrics(predicted: Tensor, target: Tensor) -> dict[str, Any]:
    """Mean squared and mean absolute error of two tensors of the same number of values."""
    collection = regression_collection(sync=False)
    collection.update(predicted.reshape(-1).double(), target.reshape(-1).double())
    values = collection.compute()
    return {**{k: float(v) for k, v in values.items()}, "samples": int(target.numel())}


def score(predicted: Tensor, target: Tensor, task: Task) -> dict[str, Any]:
    """The metrics of predictions in the form :func:`dilated.training._objective.predictions` gives (class ids, or
    values in the data's units) against targets (class ids, or values as stored: normalised for training)."""
    if task.is_classification:
        return classification_metrics(predicted, target, task.num_classes, task.class_names)
    return regression_metrics(predicted, task.denormalise(target.float()))


class TaskMetrics(nn.Module):
    """Accumulates the metrics of a :class:`~dilated.training._objective.Task` over batches of aligned outputs.

    ``update(output, target)`` takes the output of :func:`dilated.training._objective.align_output`; ``compute()``
    returns the dict of :func:`classification_metrics` or :func:`regression_metrics` (regression in the data's
    units). Under DDP the states are summed over processes before computing.
    """

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task = task
        self.collection = (
            classification_collection(task.num_classes) if task.is_classification else regression_collection()
        )

    @torch.no_grad()
    def update(self, output: Tensor, target: Tensor) -> None:
        predicted = predictions(output.detach(), self.task)
        if self.task.is_classification:
            self.collection.update(predicted.reshape(-1), target.reshape(-1).long())
        else:
            self.collection.update(predicted.reshape(-1).float(), self.task.denormalise(target.reshape(-1).float()))

    def compute(self) -> dict[str, Any]:
        values = self.collection.compute()
        if self.task.is_classification:
            return _classification_result(values, self.task.class_names)
        return {**{k: float(v) for k, v in values.items()}, "samples": int(cast(Tensor, self.collection["mse"].total))}

    def reset(self) -> None:
        self.collection.reset()


def majority_baseline(
    train_counts: list[int], test_counts: list[int], class_names: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Scores of always predicting the most frequent training class on a test set with ``test_counts`` per class:
    the floor a trained classifier has to beat."""
    names = class_names or tuple(str(i) for i in range(len(test_counts)))
    rule = MajorityClass.from_counts(train_counts, names)
    target = torch.repeat_interleave(torch.arange(len(test_counts)), torch.tensor(test_counts))
    result = classification_metrics(rule.predict(target[:, None], target), target, len(test_counts), names)
    return {"class": rule.class_name, **result}


def scalar_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The single-number entries of a metrics dict (loss, accuracy, f1_macro, ..., mse, mae), table order first."""
    scalars = {
        k: float(v)
        for k, v in result.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "samples"
    }
    known = [m.name for m in METRICS if m.name in scalars]
    return {k: scalars[k] for k in [*known, *(k for k in scalars if k not in known)]}


def format_metrics(result: Mapping[str, Any], title: str = "metrics") -> str:
    """A plain-text table: the scalar metrics (with the baseline's beside them when ``result`` has a
    ``baseline``, and each fitted baseline's under ``references``), then per-class rows and the confusion matrix if
    present."""
    lines = [f"{title} ({result.get('samples', '?')} samples)"]
    scalars = scalar_metrics(result)
    columns = {"baseline": result.get("baseline") or {}} | dict(result.get("references") or {})
    columns = {name: column for name, column in columns.items() if column}
    names = {k: LEGACY_NAMES.get(k, k) for k in scalars}  # old run folders: f1 is the macro F1
    width = max(len(k) for k in scalars) if scalars else 8
    column_width = max([8, *(len(name) for name in columns)])
    lines.append(f"  {'':<{width}}  {'model':>8}" + "".join(f"  {name:>{column_width}}" for name in columns))
    for key, value in scalars.items():
        row = f"  {key:<{width}}  {value:8.4f}"
        for column in columns.values():
            other = column.get(names[key], column.get(key))
            row += f"  {other:{column_width}.4f}" if isinstance(other, (int, float)) else f"  {'-':>{column_width}}"
        lines.append(row)
    for name, column in columns.items():
        lines.append(f"  {name}: {column.get('name', '?')}")
    per_class = result.get("per_class")
    if per_class:
        width = max(9, *(len(n) for n in per_class))
        lines.append(f"  {'class':<{width}}  precision  recall      f1  support")
        for name, row in per_class.items():
            lines.append(
                f"  {name:<{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:6.4f}  "
                f"{row['support']:7d}"
            )
        lines.append("  confusion matrix (rows: true, columns: predicted; " + ", ".join(per_class) + ")")
        for name, row in zip(per_class, result["confusion_matrix"], strict=True):
            lines.append(f"  {name:<{width}}  " + " ".join(f"{n:7d}" for n in row))
    return "\n".join(lines)
