"""Evaluate and run a trained model on a dataset, without Lightning: a plain loop with a progress bar.

    outputs = run_model(model, dataset, task, baseline=splits.baseline)   # aligned outputs, targets, baseline
    result = evaluate_outputs(outputs, task)         # metrics (dilated.training._metrics), "loss", "baseline"
    write_predictions(outputs, task, "predictions.csv", ids=sample_ids(dataset))

The baseline (:mod:`dilated.training._baselines`) predicts the same windows in the same loop, and is scored with the
same metrics, so the two columns of a report compare like with like.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from dilated._progress import bar_disabled
from dilated.models import build_model
from dilated.training._atomic import atomic_write_text
from dilated.training._baselines import Baseline, baseline_from_info
from dilated.training._checkpoints import load_weights
from dilated.training._config import data_override
from dilated.training._datasets import build_splits, sample_ids
from dilated.training._metrics import scalar_metrics, score
from dilated.training._objective import Task, align_output, predictions, task_loss
from dilated.training._runs import locate


@dataclass
class Outputs:
    """Model outputs aligned with their targets (see :func:`dilated.training._objective.align_output`), on CPU, and
    the baseline's predictions of the same samples (None without a baseline)."""

    output: Tensor
    target: Tensor
    baseline: Tensor | None = None


def default_device() -> torch.device:
    """The first CUDA GPU if there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def run_model(
    model: nn.Module,
    dataset: Dataset,
    task: Task,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str = "evaluating",
    baseline: Baseline | None = None,
) -> Outputs:
    """Run ``model`` (in eval mode) over ``dataset`` in order; collect aligned outputs, targets, and the
    predictions of ``baseline`` for the same batches."""
    device = torch.device(device) if device is not None else default_device()
    model = model.to(device).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    outputs, targets, rule = [], [], []
    for x, y in tqdm(loader, desc=desc, unit="batch", disable=bar_disabled(progress), leave=False):
        output = align_output(model(x.to(device)), y.to(device), task)
        outputs.append(output.float().cpu())
        targets.append(y)
        if baseline is not None:
            rule.append(baseline.predict(x, y))
    if not outputs:
        raise ValueError("the dataset is empty: nothing to evaluate")
    return Outputs(torch.cat(outputs), torch.cat(targets), torch.cat(rule) if rule else None)


def evaluate_outputs(outputs: Outputs, task: Task, baseline: Baseline | None = None) -> dict[str, Any]:
    """The metrics of the model's outputs plus the mean ``loss`` (unweighted), and under ``baseline`` (a name and
    the scalar metrics) those of the baseline's predictions of the same samples."""
    loss = float(task_loss(outputs.output, outputs.target, task))
    result = {"loss": loss, **score(predictions(outputs.output, task), outputs.target, task)}
    if baseline is not None and outputs.baseline is not None:
        result["baseline"] = {
            "name": baseline.describe(),
            **scalar_metrics(score(outputs.baseline, outputs.target, task)),
        }
    return result


def prediction_rows(outputs: Outputs, task: Task, ids: list[int] | None = None) -> tuple[list[str], list[list]]:
    """CSV header and rows: sample id (and step for per-step tasks), target, prediction (+ class probabilities)."""
    count = len(outputs.target)
    ids = ids if ids is not None else list(range(count))
    if task.is_classification:
        probabilities = torch.softmax(outputs.output.float(), dim=1)  # (N, C) or (N, C, T)
        predicted = outputs.output.argmax(dim=1)
        names = [f"p_{name}" for name in task.class_names]
        if task.per_step:
            header = ["sample", "step", "target", "prediction", *names]
            rows = [
                [
                    ids[i],
                    t,
                    int(outputs.target[i, t]),
                    int(predicted[i, t]),
                    *(round(float(p), 6) for p in probabilities[i, :, t]),
                ]
                for i in range(count)
                for t in range(outputs.target.shape[1])
            ]
        else:
            header = ["sample", "target", "prediction", *names]
            rows = [
                [ids[i], int(outputs.target[i]), int(predicted[i]), *(round(float(p), 6) for p in probabilities[i])]
                for i in range(count)
            ]
        return header, rows
    predicted = predictions(outputs.output, task).reshape(count, -1)[:, 0]
    target = task.denormalise(outputs.target.float()).reshape(count, -1)[:, 0]
    return ["sample", "target", "prediction"], [[ids[i], _short(target[i]), _short(predicted[i])] for i in range(count)]


def _short(value: Tensor) -> float:
    """A float32 value with the 7 significant digits it holds (155.4, not 155.39999389648438)."""
    return float(f"{float(value):.7g}")


def write_predictions(outputs: Outputs, task: Task, path: str | Path, ids: list[int] | None = None) -> Path:
    """Write :func:`prediction_rows` as a CSV file (atomically)."""
    header, rows = prediction_rows(outputs, task, ids)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())
    return Path(path)


@dataclass
class RunEvaluation:
    """A trained run's model evaluated on one split: metrics, outputs, and where they came from."""

    result: dict[str, Any]
    outputs: Outputs
    task: Task
    checkpoint: Path
    split: str
    ids: list[int]


def evaluate_run(
    target: str | Path,
    data: str | None = None,
    split: str = "test",
    which: str = "best",
    batch_size: int | None = None,
    progress: bool = True,
) -> RunEvaluation:
    """Evaluate a run folder (its ``best`` or ``last`` checkpoint) or one checkpoint folder of a run.

    Args:
        data: other data to evaluate on (see :func:`dilated.training._config.data_override`); default the run's own.
        split: ``train``, ``val``, ``test`` or ``all``.
        batch_size: default the run's ``training.eval_batch_size`` (4 x its batch size when that is not set).

    The baseline is the rule of the run's own training split (``metrics.json`` ``data.baseline``) where the run
    recorded one, else that of the data evaluated; the references (books: logistic regressions) are fitted on the
    training part of the data evaluated.
    """
    run, checkpoint = locate(target)
    config = run.config()
    if checkpoint is None:
        if which not in ("best", "last"):
            raise ValueError(f"--checkpoint must be best or last; got {which!r}")
        checkpoint = run.best_checkpoint() if which == "best" else run.latest_checkpoint()
        if checkpoint is None:
            raise ValueError(f"{run.path}: no usable checkpoint (none written yet, or all damaged)")
    model = build_model(config.model.name, **config.model.options)
    model.load_state_dict(load_weights(checkpoint))
    data_config = data_override(config.data, data) if data else config.data
    recorded = run.metrics().get("data") or {}
    splits = build_splits(data_config, stats=recorded.get("normalisation"), progress=progress)
    baseline = baseline_from_info(recorded["baseline"]) if "baseline" in recorded else splits.baseline
    dataset = splits.split(split)
    size = batch_size or config.training.evaluation_batch_size
    outputs = run_model(
        model, dataset, splits.task, size, progress=progress, desc=f"evaluating {split}", baseline=baseline
    )
    result = {**evaluate_outputs(outputs, splits.task, baseline), "checkpoint": checkpoint.name, "split": split}
    if splits.references.get(split):  # fitted on the training part of the data evaluated
        result["references"] = splits.references[split]
    return RunEvaluation(result, outputs, splits.task, checkpoint, split, sample_ids(dataset))
