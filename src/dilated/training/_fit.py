"""``train()``: a config and a run folder in, a trained, tested run folder out (the wiring of the Trainer).

The pieces (each in its own module): the data (:mod:`~dilated.training._kinds`, :mod:`~dilated.training._datamodule`),
the loop and its optimizer and LR schedule (:mod:`~dilated.training._module`), the checkpoint format
(:mod:`~dilated.training._checkpoint_io`), the run folder's callbacks (:mod:`~dilated.training._callbacks`), and the
test of the best checkpoint against the trivial baseline (:mod:`~dilated.training._evaluate`):

* optimizer (Adam, AdamW, RMSprop, SGD), a per-epoch LR schedule (reduce-on-plateau or cosine), gradient-norm
  clipping, early stopping on a validation metric, class weights from the training labels, seeding;
* ``precision: auto`` is bf16-mixed (or 16-mixed) on a GPU and 32-bit on CPU; CPU runs are deterministic;
* ``trainer.devices / num_nodes / strategy / accelerator`` go to ``lightning.Trainer`` as they are, so
  ``--devices 4 --strategy ddp`` (or several machines with ``--num-nodes``) needs no code change;
* a checkpoint after every epoch, the best one by ``monitor`` kept; Ctrl-C stops after the current batch with a
  checkpoint of that point; ``train(..., resume=True)`` continues from the newest checkpoint that verifies
  (skipping damaged ones) with the epoch and step counters, optimizer and scheduler state, RNG states and the
  position in the epoch's data order, so that on CPU a resumed run ends with the same weights, bit for bit, as one
  that was never stopped.

Data order is a function of ``(seed, epoch)`` only, and DataLoaders draw their base seeds from their own
generators, so only dropout (and other layers) consume the global RNG during training.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from torch import Tensor, nn

from dilated._resolve import read_yaml
from dilated.models import build_model
from dilated.summaries import summary
from dilated.training._callbacks import EpochBar, EpochHistory, EpochLines, ResumableEarlyStopping, RunCheckpoint
from dilated.training._checkpoint_io import SafeCheckpointIO
from dilated.training._checkpoints import CheckpointError, find_checkpoints, latest_checkpoint, load_weights, quarantine
from dilated.training._config import Precision, TrainConfig, TrainerConfig, apply_overrides, as_config, load_config
from dilated.training._datamodule import SplitsData
from dilated.training._datasets import build_splits
from dilated.training._evaluate import evaluate_outputs, run_model
from dilated.training._interrupt import TrainingInterrupted
from dilated.training._kinds import Splits
from dilated.training._metric_table import VALIDATION_PREFIX, metrics_for
from dilated.training._metrics import format_metrics
from dilated.training._module import SequenceModule
from dilated.training._objective import balanced_class_weights, predictions
from dilated.training._plots import plot_confusion_matrix, plot_curves, plot_per_class, plot_regression
from dilated.training._runs import RunDir, default_run_dir

TrainerPrecision = Literal["32-true", "64-true", "16-mixed", "bf16-mixed"]  # what resolve_precision gives Lightning
RUN_DIR_ENV = "DILATED_RUN_DIR"  # where the extra processes of a multi-process run find the run folder


@dataclass
class TrainResult:
    """What :func:`train` produced (on the global-zero process; other processes get None)."""

    run: RunDir
    test: dict[str, Any]
    best_checkpoint: Path | None
    plots: list[Path]
    epochs: int
    seconds: float


def _is_gpu(accelerator: str) -> bool:
    if accelerator in ("gpu", "cuda"):
        return True
    return accelerator == "auto" and torch.cuda.is_available()


def resolve_precision(value: Precision, accelerator: str) -> TrainerPrecision:
    """``auto`` -> ``bf16-mixed`` (or ``16-mixed``) on a GPU, ``32-true`` on CPU; half precision on CPU refused."""
    gpu = _is_gpu(accelerator)
    if value == "auto":
        if not gpu:
            return "32-true"
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if value in ("16-mixed", "bf16-mixed") and not gpu:
        raise ValueError(f"training.precision: {value} needs a GPU; on CPU use 32 (or auto)")
    if value == "32":
        return "32-true"
    if value == "64":
        return "64-true"
    return value


def describe_model(model: nn.Module) -> dict[str, Any]:
    """Parameter count and receptive field (when the model reports one)."""
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "receptive_field": getattr(model, "receptive_field", None),
        "class": type(model).__name__,
    }


def class_weights(setting: str | tuple[float, ...] | None, splits: Splits) -> Tensor | None:
    """The loss weights per class that ``training.class_weights`` asks for (None: unweighted)."""
    task = splits.task
    if setting is None:
        return None
    if not task.is_classification:
        raise ValueError("training.class_weights applies to classification; set it to null for regression")
    if setting == "balanced":
        return balanced_class_weights(torch.tensor(splits.info["class_counts"]["train"]))
    if len(setting) != task.num_classes:
        raise ValueError(f"training.class_weights: {len(setting)} weights for {task.num_classes} classes")
    return torch.tensor(setting, dtype=torch.float32)


def loggers(trainer: TrainerConfig, run: RunDir) -> list[Logger]:
    """Lightning's per-step logger of ``trainer.logger`` in ``RUN/logs/`` (a new version folder per start)."""
    if trainer.logger == "csv":
        return [CSVLogger(run.path, name="logs", flush_logs_every_n_steps=trainer.log_every_n_steps)]
    if trainer.logger == "tensorboard":
        return [TensorBoardLogger(run.path, name="logs", default_hp_metric=False)]
    return []


def _global_rank_zero() -> bool:
    """Before the Trainer exists: is this the first process of the first machine? (Lightning reads RANK/LOCAL_RANK;
    the machine is NODE_RANK, or GROUP_RANK under torchrun.)"""
    node = int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", "0")))
    # Lightning sets rank_zero_only.rank at import without declaring it on the function
    return L.pytorch.utilities.rank_zero_only.rank == 0 and node == 0  # type: ignore[attr-defined]


def _quiet_lightning() -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    for pattern in (
        ".*does not have many workers.*",
        ".*Found .* module\\(s\\) in eval mode.*",
        ".*that ended before the epoch ended.*",
        ".*`isinstance\\(treespec, LeafSpec\\)`.*",
        ".*sync_dist=True.*",
        ".*Checkpoint directory .* exists and is not empty.*",
        ".*is smaller than the logging interval.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def _echo(message: str) -> None:
    print(message, flush=True)


def resume_checkpoint(run: RunDir, echo: Callable[[str], None] = _echo) -> Path | None:
    """The newest checkpoint of ``run`` that verifies; newer damaged ones are renamed ``*.corrupt`` (and reported)."""

    def skipped(folder: Path, error: CheckpointError) -> None:
        echo(f"warning: skipping damaged checkpoint {folder.name}: {error}")
        quarantine(folder)

    return latest_checkpoint(run.checkpoints, on_skip=skipped)


def train(
    config: TrainConfig | Mapping[str, Any],
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = _echo,
) -> TrainResult | None:
    """Train the model of a config, writing the run folder; evaluate the best checkpoint on the test set.

    Args:
        config: a :class:`~dilated.training._config.TrainConfig`, or a mapping as read from a config file.
        run_dir: the run folder (created if needed; every process of a multi-process run must get the same one).
        resume: continue from the newest good checkpoint in ``run_dir`` (start afresh if there is none).
        progress: progress bars.
        echo: where status lines go.

    Raises:
        TrainingInterrupted: on Ctrl-C, after writing a checkpoint.
        CheckpointError: the best checkpoint cannot be loaded for the test (naming it).

    Returns: a :class:`TrainResult` on the global-zero process, None on the others.
    """
    config = as_config(config)
    _quiet_lightning()
    started = time.perf_counter()
    threads = torch.get_num_threads()
    if config.trainer.threads:
        torch.set_num_threads(config.trainer.threads)
    try:
        return _train(config, Path(run_dir), resume, progress and config.trainer.progress_bar, echo, started)
    finally:
        torch.set_num_threads(threads)


def _train(
    config: TrainConfig, run_dir: Path, resume: bool, progress: bool, echo: Callable[[str], None], started: float
) -> TrainResult | None:
    training = config.training
    rank_zero = _global_rank_zero()
    say = echo if rank_zero else (lambda _message: None)
    L.seed_everything(training.seed, workers=True, verbose=False)
    say(f"loading {config.data.kind} data ...")
    splits = build_splits(config.data, progress=progress and rank_zero)
    config = config.fitted(splits.shape)  # the options the data fixes, as the model's registry entry declares
    model = build_model(config.model.name, **config.model.options)
    weights = class_weights(training.class_weights, splits)
    run = RunDir(run_dir)
    if rank_zero:
        if resume and run.metrics().get("status") == "finished" and run.config() == config:
            say(f"{run.path} finished already; evaluating its best checkpoint again")
            return _finish(
                run, model, splits, config, progress, say, started, epochs=len(run.metrics().get("history", []))
            )
        _start_run(run, config, model, splits, say)
    ckpt_path = None
    if resume:  # rank zero renames damaged checkpoints; every process then picks the same newest good one
        ckpt_path = resume_checkpoint(run, say) if rank_zero else latest_checkpoint(run.checkpoints)
        say(f"resuming from {ckpt_path}" if ckpt_path else "no usable checkpoint: starting from the beginning")

    module = SequenceModule(model, splits.task, training, weights)
    datamodule = SplitsData(
        splits, training.batch_size, training.evaluation_batch_size, training.seed, training.num_workers
    )
    history = EpochHistory(tuple(VALIDATION_PREFIX + m.name for m in metrics_for(splits.task.kind)))
    checkpointing = RunCheckpoint(run, history, training.monitor, training.keep_checkpoints)
    early = ResumableEarlyStopping(training.monitor, training.patience) if training.patience else None
    callbacks: list[L.Callback] = [history, checkpointing, *([early] if early is not None else [])]
    progress = progress and sys.stdout.isatty()  # Lightning's bar writes to stdout; a log gets one line per epoch
    if not progress:
        callbacks.append(EpochLines(history, say))
    trainer = _trainer(config, run, callbacks, progress, ckpt_path)
    _fit(trainer, module, datamodule, ckpt_path, checkpointing)
    if not trainer.is_global_zero:
        return None
    stopped = "early stopping" if early is not None and early.stopped_run else "max_epochs"
    run.update_metrics(history=history.rows, best=checkpointing.best, status="finished", stopped_by=stopped)
    return _finish(run, model, splits, config, progress, say, started, epochs=len(history.rows))


def _fit(
    trainer: L.Trainer,
    module: SequenceModule,
    datamodule: SplitsData,
    ckpt_path: Path | None,
    checkpointing: RunCheckpoint,
) -> None:
    """``trainer.fit``, with the run folder in the environment for the extra processes Lightning launches; on Ctrl-C
    the run's metrics say ``interrupted`` (with the epochs so far) before :class:`TrainingInterrupted` goes on."""
    run = checkpointing.run
    os.environ[RUN_DIR_ENV] = str(run.path)  # extra processes launched by Lightning write to the same folder
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except TrainingInterrupted:
        if trainer.is_global_zero:
            run.update_metrics(status="interrupted", history=checkpointing.history.rows, best=checkpointing.best)
        raise
    finally:
        os.environ.pop(RUN_DIR_ENV, None)


def _start_run(run: RunDir, config: TrainConfig, model: nn.Module, splits: Splits, say: Callable[[str], None]) -> None:
    """Create the run folder (config written, status ``running``) and print its data and model."""
    RunDir.create(run.path, config)
    model_info = describe_model(model)
    run.update_metrics(model=model_info, data=splits.info, status="running")
    say(f"run folder: {run.path}")
    for line in _data_and_model(config, model_info, splits):
        say(line)


def _data_and_model(config: TrainConfig, model_info: dict[str, Any], splits: Splits) -> list[str]:
    """The lines that describe a run's data (sizes, shape, class counts) and model (parameters, field)."""
    sizes = splits.info["sizes"]
    counts = splits.info.get("class_counts")
    rf = f", receptive field {model_info['receptive_field']}" if model_info["receptive_field"] else ""
    return [
        f"data: train {sizes['train']}, val {sizes['val']}, test {sizes['test']} samples of "
        f"{splits.channels} x {splits.length}" + (f"; class counts (train) {counts['train']}" if counts else ""),
        f"model: {config.model.name}, {model_info['parameters']:,} parameters{rf}",
    ]


def check_config(config: TrainConfig | Mapping[str, Any], echo: Callable[[str], None] = _echo) -> TrainConfig:
    """What ``dilated train --check`` prints, without training or writing anything: the resolved config (every
    default written out, the options the data fixes filled in), the data sizes and the model's summary.

    Returns: the config as training would run it.
    """
    config = as_config(config)
    splits = build_splits(config.data, progress=False)
    config = config.fitted(splits.shape)
    model = build_model(config.model.name, **config.model.options)
    echo(yaml.safe_dump(config.to_dict(), sort_keys=False).rstrip())
    for line in _data_and_model(config, describe_model(model), splits):
        echo(line)
    echo(str(summary(model, (splits.channels, splits.length))))
    return config


def _trainer(
    config: TrainConfig, run: RunDir, callbacks: list[L.Callback], progress: bool, ckpt_path: Path | None
) -> L.Trainer:
    """The Lightning Trainer of a config's ``trainer`` and ``training`` sections (a progress bar added to
    ``callbacks`` if ``progress``); CPU runs are deterministic unless the config says otherwise."""
    training, trainer_config = config.training, config.trainer
    if progress:
        callbacks = [*callbacks, EpochBar(refresh_rate=max(1, min(trainer_config.log_every_n_steps, 20)))]
    deterministic = trainer_config.deterministic
    if deterministic is None:
        deterministic = not _is_gpu(trainer_config.accelerator)
    limits = {
        k: getattr(trainer_config, k)
        for k in ("limit_train_batches", "limit_val_batches")
        if getattr(trainer_config, k) is not None
    }
    devices = list(trainer_config.devices) if isinstance(trainer_config.devices, tuple) else trainer_config.devices
    clip = training.clip if training.clip and training.clip > 0 else None
    return L.Trainer(
        accelerator=trainer_config.accelerator,
        devices=devices,
        num_nodes=trainer_config.num_nodes,
        strategy=trainer_config.strategy,
        precision=resolve_precision(training.precision, trainer_config.accelerator),
        max_epochs=training.max_epochs,
        gradient_clip_val=clip,
        deterministic=deterministic,
        accumulate_grad_batches=trainer_config.accumulate_grad_batches,
        callbacks=callbacks,
        plugins=[SafeCheckpointIO()],
        logger=loggers(trainer_config, run),
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=trainer_config.log_every_n_steps,
        use_distributed_sampler=False,
        num_sanity_val_steps=0 if ckpt_path else 2,
        **limits,
    )


def _references(splits: Splits, part: str) -> dict[str, Any]:
    """``{"references": ...}``: the fitted baselines' scores on ``part`` (:attr:`Splits.references`), where any."""
    return {"references": splits.references[part]} if splits.references.get(part) else {}


def _finish(
    run: RunDir,
    model: nn.Module,
    splits: Splits,
    config: TrainConfig,
    progress: bool,
    say: Callable[[str], None],
    started: float,
    epochs: int,
) -> TrainResult:
    """Test the best checkpoint beside the trivial baseline, write test metrics and plots, print them."""
    checkpoint = run.best_checkpoint()
    if checkpoint is not None:
        model.load_state_dict(load_weights(checkpoint))
    outputs = run_model(
        model,
        splits.test,
        splits.task,
        config.training.evaluation_batch_size,
        progress=progress,
        desc="testing",
        baseline=splits.baseline,
    )
    result = evaluate_outputs(outputs, splits.task, splits.baseline) | _references(splits, "test")
    metrics = run.metrics()
    history, best = metrics.get("history", []), metrics.get("best") or {}
    plots = [plot_curves(history, run.plots / "curves.png", best.get("epoch"))] if history else []
    if splits.task.is_classification:
        names = splits.task.class_names
        plots.append(
            plot_confusion_matrix(
                result["confusion_matrix"], names, run.plots / "confusion_matrix.png", "test confusion matrix"
            )
        )
        plots.append(plot_per_class(result["per_class"], run.plots / "per_class.png", "test precision / recall / F1"))
    else:
        plots.append(
            plot_regression(
                splits.task.denormalise(outputs.target.float()).reshape(-1),
                predictions(outputs.output, splits.task).reshape(-1),
                run.plots / "predictions.png",
                "test predictions",
            )
        )
    seconds = time.perf_counter() - started
    result["checkpoint"] = checkpoint.name if checkpoint else None
    run.write_test(result)
    run.update_metrics(wall_time_s=round(seconds, 2))
    best_text = f"best epoch {best['epoch']} ({best['monitor']} {best['value']:.4f}), " if best else ""
    say(f"trained {epochs} epoch(s) in {seconds:.0f} s; {best_text}checkpoint {checkpoint}")
    say(format_metrics(result, "test metrics"))
    say("plots: " + ", ".join(str(p) for p in plots))
    return TrainResult(run, result, checkpoint, plots, epochs, seconds)


def prepare_run(
    config_path: str | None, overrides: list[str], run_dir: str | None = None, resume: str | None = None
) -> tuple[TrainConfig, Path, bool]:
    """The config, run folder and resume flag for ``dilated train``.

    A fresh run goes to ``run_dir`` (default ``runs/CONFIG-TIMESTAMP``); ``resume`` names a run folder whose
    ``config.yaml`` is used, with ``overrides`` applied (e.g. ``training.max_epochs=200`` to train longer). The
    extra processes of a multi-process run find the folder in ``$DILATED_RUN_DIR``, which :func:`train` sets while
    Lightning launches them.
    """
    shared = os.environ.get(RUN_DIR_ENV)
    if resume:
        if config_path:
            raise ValueError(
                "give CONFIG or --resume RUN_DIR, not both: a resumed run keeps its config.yaml "
                "(change it with --override)"
            )
        run = RunDir.open(resume)
        raw = apply_overrides(read_yaml(run.config_path), overrides)
        return TrainConfig.from_dict(raw, str(run.config_path)), run.path, True
    if not config_path:
        raise ValueError("dilated train needs CONFIG (a training YAML, see `dilated train --help`) or --resume RUN_DIR")
    config = load_config(config_path, overrides)
    if shared:
        return config, Path(shared), False
    path = Path(run_dir) if run_dir else default_run_dir(config_path)
    if find_checkpoints(path / "checkpoints"):
        raise ValueError(
            f"{path} holds checkpoints of an earlier run: continue it with `dilated train --resume "
            f"{path}`, or give another --run-dir"
        )
    return config, path, False
