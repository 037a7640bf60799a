"""Evaluation metrics, computed with torchmetrics, as the limit-order-book literature reports them.

Classification (DeepLOB, Zhang et al. 2019; TransLOB, Wallbridge 2020; the FI-2010 benchmark, Ntakaris et al.
2018): accuracy over all samples, and precision, recall and F1 per class and as their unweighted (macro) mean --
scikit-learn's ``classification_report`` "macro avg" row. A class that is never predicted has precision 0; a class
absent from both targets and predictions is left out of the macro mean (as scikit-learn, which does not know of it).
The confusion matrix has true classes in rows and predicted classes in columns.

Regression: mean squared and mean absolute error, in the data's units.

:class:`TaskMetrics` accumulates batches (and sums its state over processes under DDP); the functions
:func:`classification_metrics` and :func:`regression_metrics` score whole tensors at once. Both return plain
JSON-ready dicts.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from dilated.tasks import Task, predictions

SCALAR_CLASSIFICATION = ("accuracy", "precision", "recall", "f1")
SCALAR_REGRESSION = ("mse", "mae")
LOWER_IS_BETTER = ("loss", "mse", "mae")


def classification_collection(num_classes: int, sync: bool = True) -> MetricCollection:
    """The torchmetrics collection behind :func:`classification_metrics` (updated with class ids).

    ``sync``: sum the states over processes before computing (under DDP); off for one process's own data.
    """
    options = {"sync_on_compute": sync}
    return MetricCollection({
        "accuracy": MulticlassAccuracy(num_classes, average="micro", **options),
        "precision": MulticlassPrecision(num_classes, average="macro", **options),
        "recall": MulticlassRecall(num_classes, average="macro", **options),
        "f1": MulticlassF1Score(num_classes, average="macro", **options),
        "precision_per_class": MulticlassPrecision(num_classes, average="none", **options),
        "recall_per_class": MulticlassRecall(num_classes, average="none", **options),
        "f1_per_class": MulticlassF1Score(num_classes, average="none", **options),
        "confusion_matrix": MulticlassConfusionMatrix(num_classes, **options),
    })


def regression_collection(sync: bool = True) -> MetricCollection:
    """The torchmetrics collection behind :func:`regression_metrics`."""
    return MetricCollection({"mse": MeanSquaredError(sync_on_compute=sync),
                             "mae": MeanAbsoluteError(sync_on_compute=sync)})


def _classification_result(values: dict[str, Tensor], class_names: tuple[str, ...]) -> dict[str, Any]:
    matrix = values["confusion_matrix"].long()
    support = matrix.sum(dim=1)
    per_class = {
        name: {"precision": float(values["precision_per_class"][i]), "recall": float(values["recall_per_class"][i]),
               "f1": float(values["f1_per_class"][i]), "support": int(support[i])}
        for i, name in enumerate(class_names)
    }
    result: dict[str, Any] = {key: float(values[key]) for key in SCALAR_CLASSIFICATION}
    result.update(samples=int(support.sum()), per_class=per_class, confusion_matrix=matrix.tolist())
    return result


def classification_metrics(predicted: Tensor, target: Tensor, num_classes: int,
                           class_names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, per-class scores and the confusion matrix.

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
    return {"mse": float(values["mse"]), "mae": float(values["mae"]), "samples": int(target.numel())}


class TaskMetrics(nn.Module):
    """Accumulates the metrics of a :class:`~dilated.tasks.Task` over batches of aligned outputs.

    ``update(output, target)`` takes the output of :func:`dilated.tasks.align_output`; ``compute()`` returns the
    dict of :func:`classification_metrics` or :func:`regression_metrics` (regression in the data's units). Under
    DDP the states are summed over processes before computing.
    """

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task = task
        self.collection = (classification_collection(task.num_classes) if task.is_classification
                           else regression_collection())

    @torch.no_grad()
    def update(self, output: Tensor, target: Tensor) -> None:
        predicted = predictions(output.detach(), self.task)
        if self.task.is_classification:
            self.collection.update(predicted.reshape(-1), target.reshape(-1).long())
        else:
            self.collection.update(predicted.reshape(-1).float(),
                                   self.task.denormalise(target.reshape(-1).float()))

    def compute(self) -> dict[str, Any]:
        values = self.collection.compute()
        if self.task.is_classification:
            return _classification_result(values, self.task.class_names)
        samples = int(self.collection["mse"].total)
        return {"mse": float(values["mse"]), "mae": float(values["mae"]), "samples": samples}

    def reset(self) -> None:
        self.collection.reset()


def majority_baseline(train_counts: list[int], test_counts: list[int],
                      class_names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Scores of always predicting the most frequent training class on a test set with ``test_counts`` per class:
    the floor a trained classifier has to beat."""
    majority = max(range(len(train_counts)), key=lambda c: train_counts[c])
    predicted = torch.full((sum(test_counts),), majority)
    target = torch.repeat_interleave(torch.arange(len(test_counts)), torch.tensor(test_counts))
    result = classification_metrics(predicted, target, len(test_counts), class_names)
    names = class_names or tuple(str(i) for i in range(len(test_counts)))
    return {"class": names[majority], **result}


def scalar_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The single-number entries of a metrics dict (accuracy, precision, ..., mse, mae, loss)."""
    return {k: float(v) for k, v in result.items() if isinstance(v, (int, float)) and k != "samples"}


def higher_is_better(name: str) -> bool:
    """``val_f1`` -> True, ``val_loss`` / ``val_mae`` -> False."""
    return not any(name.endswith(suffix) for suffix in LOWER_IS_BETTER)


def format_metrics(result: dict[str, Any], title: str = "metrics") -> str:
    """A plain-text table: the scalar metrics, then per-class rows and the confusion matrix if present."""
    lines = [f"{title} ({result.get('samples', '?')} samples)"]
    scalars = scalar_metrics(result)
    lines.append("  " + "  ".join(f"{k} {v:.4f}" for k, v in scalars.items()))
    per_class = result.get("per_class")
    if per_class:
        width = max(9, *(len(n) for n in per_class))
        lines.append(f"  {'class':<{width}}  precision  recall      f1  support")
        for name, row in per_class.items():
            lines.append(f"  {name:<{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:6.4f}  "
                         f"{row['support']:7d}")
        lines.append("  confusion matrix (rows: true, columns: predicted; " + ", ".join(per_class) + ")")
        for name, row in zip(per_class, result["confusion_matrix"], strict=True):
            lines.append(f"  {name:<{width}}  " + " ".join(f"{n:7d}" for n in row))
    return "\n".join(lines)
