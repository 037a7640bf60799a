"""Training and evaluation plots as PNG files (matplotlib with the Agg backend: no display needed).

* :func:`plot_curves`: loss (train and validation) and the validation metrics per epoch;
* :func:`plot_confusion_matrix`: counts and row-normalised shares (recall per true class);
* :func:`plot_per_class`: precision, recall and F1 bars per class;
* :func:`plot_regression`: predictions against targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

from dilated.training._metric_table import VALIDATION_PREFIX


def _save(figure: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_curves(history: Sequence[Mapping[str, Any]], path: str | Path, best_epoch: int | None = None) -> Path:
    """Loss curves (left) and validation metrics (right) over epochs, from the rows of ``metrics.csv``."""
    epochs = [row["epoch"] for row in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        values = [row.get(key) for row in history]
        if any(v is not None for v in values):
            left.plot(epochs, [np.nan if v is None else v for v in values], marker="o", ms=3, label=label)
    left.set(title="loss", xlabel="epoch", ylabel="loss")
    logged = dict.fromkeys(k for row in history for k in row if row[k] is not None)
    metric_keys = [k for k in logged if k.startswith(VALIDATION_PREFIX) and k != "val_loss"]  # all but the loss
    for key in metric_keys:
        right.plot(
            epochs,
            [np.nan if row.get(key) is None else row[key] for row in history],
            marker="o",
            ms=3,
            label=key.removeprefix("val_"),
        )
    right.set(title="validation metrics", xlabel="epoch")
    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if best_epoch is not None:
            axis.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best epoch {best_epoch}")
        if axis.lines:
            axis.legend()
        axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path, title: str = "confusion matrix"
) -> Path:
    """Counts and row shares (each row sums to 1: recall of that true class); true classes in rows."""
    counts = np.asarray(matrix, dtype=np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    size = 1.2 + 0.9 * len(class_names)
    figure, axis = plt.subplots(figsize=(size + 1.5, size))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="share of true class")
    for (i, j), count in np.ndenumerate(counts):
        colour = "white" if shares[i, j] > 0.6 else "black"
        axis.text(j, i, f"{count}\n{shares[i, j]:.0%}", ha="center", va="center", color=colour, fontsize=9)
    ticks = range(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=30, ha="right")
    axis.set_yticks(ticks, class_names)
    axis.set(xlabel="predicted", ylabel="true", title=title)
    return _save(figure, path)


def plot_per_class(
    per_class: Mapping[str, Mapping[str, float]], path: str | Path, title: str = "per-class scores"
) -> Path:
    """Grouped bars of precision, recall and F1 for each class, with its support in the label."""
    names = list(per_class)
    positions = np.arange(len(names))
    figure, axis = plt.subplots(figsize=(max(5.0, 1.6 * len(names) + 2), 4))
    for offset, key in zip((-0.27, 0.0, 0.27), ("precision", "recall", "f1"), strict=True):
        values = [per_class[n][key] for n in names]
        bars = axis.bar(positions + offset, values, width=0.27, label=key)
        axis.bar_label(bars, fmt="%.2f", fontsize=8)
    axis.set_xticks(positions, [f"{n}\n(n={per_class[n].get('support', '?')})" for n in names])
    axis.set(ylim=(0, 1.18), ylabel="score", title=title)
    axis.legend(loc="upper center", ncol=3, fontsize=9)
    axis.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def plot_regression(target: ArrayLike, predicted: ArrayLike, path: str | Path, title: str = "predictions") -> Path:
    """Targets and predictions in sample order (left) and against each other (right)."""
    targets, outputs = np.asarray(target, dtype=float), np.asarray(predicted, dtype=float)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(targets, label="target", linewidth=1)
    left.plot(outputs, label="prediction", linewidth=1)
    left.set(title=title, xlabel="sample")
    left.legend()
    right.scatter(targets, outputs, s=8, alpha=0.6)
    low, high = float(min(targets.min(), outputs.min())), float(max(targets.max(), outputs.max()))
    right.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    right.set(xlabel="target", ylabel="prediction", title="prediction vs target")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    return _save(figure, path)
