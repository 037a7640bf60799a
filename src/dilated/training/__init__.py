"""Training with PyTorch Lightning: typed config, data, LightningModule, callbacks, checkpoints, runs, metrics.

    from dilated.training import load_config, train
    config = load_config("configs/tcn_adding.yaml", ["training.max_epochs=2"])   # a TrainConfig
    result = train(config, "runs/adding")                                        # a plain mapping works too

One concept per private module (``_name.py``), dependencies pointing down the list:

    metric_table   the one table of metrics (name, task kind, direction, how computed); no torch
    schema         config sections as frozen dataclasses from YAML mappings
    objective      Task: what the targets are, output alignment, loss
    baselines      trivial baselines (majority class, persistence, training mean)
    kinds/         data kinds: one DataSource class per kind of ``data:`` section (a module each), serving training
                   (its Splits) and the live predictor (raw events read and prepared as training did); no torch
    datasets       build_splits: the splits with sizes, class counts and trivial baseline; labels of datasets
    config         TrainConfig (model, data, training, trainer), load_config, --override, demo config
    atomic, checkpoints   durable writes; the safe checkpoint format (no Lightning)
    metrics        torchmetrics collections from the table, format_metrics
    runs           the run folder (RunDir) and `dilated report`
    evaluate       a trained model (and the baseline) on a dataset, predictions
    plots          curves, confusion matrix, per-class scores, regression plots
    checkpoint_io  the Lightning CheckpointIO plugin writing the safe format
    datamodule     the LightningDataModule and the mid-epoch resumable sampler
    module         the LightningModule (optimizer and LR schedule from configure_optimizers)
    planted        the best score on a planted-signal book (the bound a model is measured against)
    interrupt      Ctrl-C: stop at a safe point (no Lightning)
    callbacks      RunCheckpoint (ModelCheckpoint), EpochHistory, ResumableEarlyStopping
    fit            train(), prepare_run()
    demo           `dilated demo`
    walk_forward   walk-forward folds and the drift report over a book dataset's days, each a run of train()

Every name is imported on first use (PEP 562), so that reading a config does not pay for Lightning and
torchmetrics, and the ``dilated`` command's ``--help`` pays for nothing (the config schema and the data kinds import
no torch, so ``dilated train --help`` lists every option without it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dilated._lazy import lazy_exports

_EXPORTS = {  # public name -> the private module that defines it, imported on first use
    "atomic_write_csv": "._atomic",
    "atomic_write_json": "._atomic",
    "EpochHistory": "._callbacks",
    "RunCheckpoint": "._callbacks",
    "SafeCheckpointIO": "._checkpoint_io",
    "load_checkpoint": "._checkpoints",
    "load_weights": "._checkpoints",
    "save_checkpoint": "._checkpoints",
    "ModelSpec": "._config",
    "TrainConfig": "._config",
    "TrainerConfig": "._config",
    "TrainingConfig": "._config",
    "apply_overrides": "._config",
    "as_config": "._config",
    "config_help": "._config",
    "data_override": "._config",
    "demo_config": "._config",
    "demo_config_path": "._packaged",
    "load_config": "._config",
    "read_data": "._config",
    "ResumableSampler": "._datamodule",
    "SplitsData": "._datamodule",
    "build_splits": "._datasets",
    "demo": "._demo",
    "Outputs": "._evaluate",
    "evaluate_run": "._evaluate",
    "prediction_rows": "._evaluate",
    "write_predictions": "._evaluate",
    "TrainResult": "._fit",
    "prepare_run": "._fit",
    "check_config": "._fit",
    "resolve_precision": "._fit",
    "train": "._fit",
    "TrainingInterrupted": "._interrupt",
    "format_metrics": "._metrics",
    "scalar_metrics": "._metrics",
    "SequenceModule": "._module",
    "check_finite": "._module",
    "LOB_CLASSES": "._objective",
    "Task": "._objective",
    "align_output": "._objective",
    "predictions": "._objective",
    "planted_bound": "._planted",
    "RunDir": "._runs",
    "locate": "._runs",
    "report": "._runs",
    "run_report": "._runs",
    "DATA_KINDS": "._kinds",
    "DataSource": "._kinds",
    "Feed": "._kinds",
    "Splits": "._kinds",
    "data_kind": "._kinds",
    "WalkResult": "._walk_forward",
    "walk_forward": "._walk_forward",
    "walk_forward_folds": "._walk_forward",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # the names as type checkers see them
    from dilated.training._atomic import atomic_write_csv as atomic_write_csv
    from dilated.training._atomic import atomic_write_json as atomic_write_json
    from dilated.training._callbacks import EpochHistory as EpochHistory
    from dilated.training._callbacks import RunCheckpoint as RunCheckpoint
    from dilated.training._checkpoint_io import SafeCheckpointIO as SafeCheckpointIO
    from dilated.training._checkpoints import (
        load_checkpoint as load_checkpoint,
    )
    from dilated.training._checkpoints import (
        load_weights as load_weights,
    )
    from dilated.training._checkpoints import (
        save_checkpoint as save_checkpoint,
    )
    from dilated.training._config import (
        ModelSpec as ModelSpec,
    )
    from dilated.training._config import (
        TrainConfig as TrainConfig,
    )
    from dilated.training._config import (
        TrainerConfig as TrainerConfig,
    )
    from dilated.training._config import (
        TrainingConfig as TrainingConfig,
    )
    from dilated.training._config import (
        apply_overrides as apply_overrides,
    )
    from dilated.training._config import (
        as_config as as_config,
    )
    from dilated.training._config import (
        config_help as config_help,
    )
    from dilated.training._config import (
        data_override as data_override,
    )
    from dilated.training._config import (
        demo_config as demo_config,
    )
    from dilated.training._config import (
        load_config as load_config,
    )
    from dilated.training._config import (
        read_data as read_data,
    )
    from dilated.training._datamodule import ResumableSampler as ResumableSampler
    from dilated.training._datamodule import SplitsData as SplitsData
    from dilated.training._datasets import build_splits as build_splits
    from dilated.training._demo import demo as demo
    from dilated.training._evaluate import (
        Outputs as Outputs,
    )
    from dilated.training._evaluate import (
        evaluate_run as evaluate_run,
    )
    from dilated.training._evaluate import (
        prediction_rows as prediction_rows,
    )
    from dilated.training._evaluate import (
        write_predictions as write_predictions,
    )
    from dilated.training._fit import (
        TrainResult as TrainResult,
    )
    from dilated.training._fit import check_config as check_config
    from dilated.training._fit import (
        prepare_run as prepare_run,
    )
    from dilated.training._fit import (
        resolve_precision as resolve_precision,
    )
    from dilated.training._fit import (
        train as train,
    )
    from dilated.training._interrupt import TrainingInterrupted as TrainingInterrupted
    from dilated.training._kinds import DATA_KINDS as DATA_KINDS
    from dilated.training._kinds import DataSource as DataSource
    from dilated.training._kinds import Feed as Feed
    from dilated.training._kinds import Splits as Splits
    from dilated.training._kinds import data_kind as data_kind
    from dilated.training._metrics import format_metrics as format_metrics
    from dilated.training._metrics import scalar_metrics as scalar_metrics
    from dilated.training._module import SequenceModule as SequenceModule
    from dilated.training._module import check_finite as check_finite
    from dilated.training._objective import (
        LOB_CLASSES as LOB_CLASSES,
    )
    from dilated.training._objective import (
        Task as Task,
    )
    from dilated.training._objective import (
        align_output as align_output,
    )
    from dilated.training._objective import (
        predictions as predictions,
    )
    from dilated.training._packaged import demo_config_path as demo_config_path
    from dilated.training._planted import planted_bound as planted_bound
    from dilated.training._runs import RunDir as RunDir
    from dilated.training._runs import locate as locate
    from dilated.training._runs import report as report
    from dilated.training._runs import run_report as run_report
    from dilated.training._walk_forward import WalkResult as WalkResult
    from dilated.training._walk_forward import walk_forward as walk_forward
    from dilated.training._walk_forward import walk_forward_folds as walk_forward_folds
