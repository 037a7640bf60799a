"""Training with PyTorch Lightning: typed config, data, LightningModule, callbacks, checkpoints, runs, metrics.

    from dilated.training import load_config, train
    config = load_config("configs/tcn_adding.yaml", ["training.max_epochs=2"])   # a TrainConfig
    result = train(config, "runs/adding")                                        # a plain mapping works too

One concept per module, dependencies pointing down the list:

    metric_table   the one table of metrics (name, task kind, direction, how computed); no torch
    schema         config sections as frozen dataclasses from YAML mappings
    objective      Task: what the targets are, output alignment, loss
    baselines      trivial baselines (majority class, persistence, training mean)
    sources        data kinds: one DataSource class per kind of ``data:`` section, each building its Splits
    config         TrainConfig (model, data, training, trainer), load_config, --override, demo config
    atomic, checkpoints   durable writes; the safe checkpoint format (no Lightning)
    metrics        torchmetrics collections from the table, format_metrics
    runs           the run folder (RunDir) and `dilated report`
    evaluate       a trained model (and the baseline) on a dataset, predictions
    plots          curves, confusion matrix, per-class scores, regression plots
    checkpoint_io  the Lightning CheckpointIO plugin writing the safe format
    datamodule     the LightningDataModule and the mid-epoch resumable sampler
    module         the LightningModule (optimizer and LR schedule from configure_optimizers)
    interrupt      Ctrl-C: stop at a safe point (no Lightning)
    callbacks      RunCheckpoint (ModelCheckpoint), EpochHistory, ResumableEarlyStopping
    fit            train(), prepare_run()
    demo           `dilated demo`

The names that need Lightning or torchmetrics (``train``, ``demo``, ``evaluate_run``, ``SequenceModule``, ...) are
imported on first use (PEP 562), so that reading a config, and every ``dilated`` command, do not pay their import
time (seconds) before they need them.
"""

from __future__ import annotations

import importlib
from typing import Any

from dilated.training.atomic import atomic_write_json
from dilated.training.config import (
    ModelSpec,
    TrainConfig,
    TrainerConfig,
    TrainingConfig,
    apply_overrides,
    as_config,
    config_help,
    demo_config,
    load_config,
)
from dilated.training.interrupt import TrainingInterrupted
from dilated.training.objective import Task
from dilated.training.sources import DATA_KINDS, DataSource, Splits, build_splits, data_kind

_HEAVY_NAMES = {  # name -> the module that defines it
    "train": "fit",
    "prepare_run": "fit",
    "TrainResult": "fit",
    "resolve_precision": "fit",
    "demo": "demo",
    "SequenceModule": "module",
    "check_finite": "module",
    "ResumableSampler": "datamodule",
    "SplitsData": "datamodule",
    "SafeCheckpointIO": "checkpoint_io",
    "RunCheckpoint": "callbacks",
    "EpochHistory": "callbacks",
    "evaluate_run": "evaluate",
    "write_predictions": "evaluate",
    "format_metrics": "metrics",
    "scalar_metrics": "metrics",
    "RunDir": "runs",
    "locate": "runs",
    "report": "runs",
}


def __getattr__(name: str) -> Any:
    if name in _HEAVY_NAMES:
        return getattr(importlib.import_module(f"dilated.training.{_HEAVY_NAMES[name]}"), name)
    raise AttributeError(f"module 'dilated.training' has no attribute {name!r}")


__all__ = [
    "DATA_KINDS",
    "DataSource",
    "ModelSpec",
    "Splits",
    "Task",
    "TrainConfig",
    "TrainerConfig",
    "TrainingConfig",
    "TrainingInterrupted",
    "apply_overrides",
    "as_config",
    "build_splits",
    "config_help",
    "data_kind",
    "demo_config",
    "atomic_write_json",
    "load_config",
    *_HEAVY_NAMES,
]
