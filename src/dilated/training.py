"""Training with PyTorch Lightning: the LightningModule, the data module, checkpoints and the Trainer wiring.

The model stays a plain ``nn.Module`` (``SequenceModule.model``); Lightning runs the loop, devices, mixed precision
and DDP. :func:`train` takes a resolved config (:mod:`dilated.experiment`) and a run folder (:mod:`dilated.runs`):

* optimizer (Adam, AdamW, RMSprop, SGD), a per-epoch LR schedule (reduce-on-plateau or cosine), gradient-norm
  clipping, early stopping on a validation metric, class weights from the training labels, seeding;
* ``precision: auto`` is bf16-mixed (or 16-mixed) on a GPU and 32-bit on CPU; CPU runs are deterministic;
* ``trainer.devices / num_nodes / strategy / accelerator`` go to ``lightning.Trainer`` as they are, so
  ``--devices 4 --strategy ddp`` (or several machines with ``--num-nodes``) needs no code change;
* a checkpoint after every epoch (:mod:`dilated.checkpoints`: safetensors weights, a state file read with
  ``weights_only=True``, atomic writes, a manifest of SHA-256 hashes), the best one by ``monitor`` kept;
* Ctrl-C stops after the current batch with a checkpoint of that point; ``train(..., resume=True)`` continues from
  the newest checkpoint that verifies (skipping damaged ones) with the epoch and step counters, optimizer and
  scheduler state, RNG states and the position in the epoch's data order, so that on CPU a resumed run ends with
  the same weights, bit for bit, as one that was never stopped.

Data order is a function of ``(seed, epoch)`` only (:class:`ResumableSampler`), and DataLoaders draw their base
seeds from their own generators, so only dropout (and other layers) consume the global RNG during training.
"""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import Checkpoint, EarlyStopping, TQDMProgressBar
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler
from torchmetrics import MeanMetric

from dilated.checkpoints import (
    CheckpointError,
    checkpoint_name,
    find_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    quarantine,
    remove_checkpoint,
    save_checkpoint,
)
from dilated.datasets import Splits, build_splits
from dilated.evaluation import evaluate_outputs, run_model
from dilated.experiment import infer_model_options
from dilated.metrics import TaskMetrics, format_metrics, higher_is_better, majority_baseline, scalar_metrics
from dilated.runs import RunDir
from dilated.tasks import LOB_CLASSES, Task, align_output, balanced_class_weights, task_loss

CLASSIFICATION_MONITORS = ("val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1")
REGRESSION_MONITORS = ("val_loss", "val_mse", "val_mae")


class TrainingInterrupted(RuntimeError):
    """Training stopped on Ctrl-C after writing a checkpoint; ``checkpoint`` is its folder.

    ``primary`` is False in the extra processes of a multi-process run (which have nothing to tell the user).
    """

    def __init__(self, checkpoint: Path | None, run: Path, primary: bool = True) -> None:
        self.checkpoint = checkpoint
        self.run = run
        self.primary = primary
        saved = f"checkpoint {checkpoint}" if checkpoint else "no new checkpoint"
        super().__init__(f"interrupted: {saved}; continue with `dilated train --resume {run}`")


# --------------------------------------------------------------------------------------------------- data order


class ResumableSampler(Sampler[int]):
    """Sample order that depends on ``(seed, epoch)`` only, sharded over processes, resumable mid-epoch.

    As :class:`torch.utils.data.DistributedSampler` (which Lightning would otherwise install): a permutation from
    a generator seeded with ``seed + epoch`` (or ``0 .. n-1`` without shuffling), padded (training) to a multiple of
    ``world_size``, every ``world_size``-th index for ``rank``. ``start(epoch, skip)`` sets the epoch that the next
    iteration serves and how many of its first indices to leave out (those a resumed run already trained on).
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1,
                 pad: bool = True) -> None:
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.epoch = 0
        self._skip: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def start(self, epoch: int, skip: int = 0) -> None:
        self.epoch = epoch
        self._skip = (epoch, skip) if skip else None

    def _indices(self) -> list[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            indices = torch.randperm(self.size, generator=generator).tolist()
        else:
            indices = list(range(self.size))
        if self.pad and self.size % self.world_size:
            extra = self.world_size - self.size % self.world_size
            indices += (indices * math.ceil(extra / self.size))[:extra]
        return indices[self.rank::self.world_size]

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.size / self.world_size)
        return len(range(self.rank, self.size, self.world_size))

    def __iter__(self) -> Iterator[int]:
        indices = self._indices()
        if self._skip is not None:
            epoch, skip = self._skip
            self._skip = None
            if epoch == self.epoch:
                indices = indices[skip:]
        return iter(indices)


class SplitsData(L.LightningDataModule):
    """DataLoaders over a :class:`~dilated.datasets.Splits`: shuffled training order from :class:`ResumableSampler`,
    validation in order, each process its own shard. Its state (saved in checkpoints) is where the data order
    resumes: the next epoch and the samples of it already trained on."""

    def __init__(self, splits: Splits, batch_size: int, eval_batch_size: int, seed: int, num_workers: int = 0):
        super().__init__()
        self.splits = splits
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.num_workers = seed, num_workers
        self.position: tuple[int, int] = (0, 0)  # (epoch to serve next, samples of it already served)
        self._resume: tuple[int, int] | None = None

    def _loader(self, dataset: Any, sampler: Sampler, batch_size: int) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, generator=torch.Generator())

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        sampler = ResumableSampler(len(self.splits.train), self.seed, True, rank, world, pad=True)
        if self._resume is not None:
            sampler.start(*self._resume)
            self._resume = None
        return self._loader(self.splits.train, sampler, self.batch_size)

    def val_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        sampler = ResumableSampler(len(self.splits.val), shuffle=False, rank=rank, world_size=world, pad=False)
        return self._loader(self.splits.val, sampler, self.eval_batch_size)

    def state_dict(self) -> dict[str, Any]:
        epoch, skip = self.position
        return {"epoch": int(epoch), "skip_samples": int(skip)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._resume = (int(state["epoch"]), int(state["skip_samples"]))


# ------------------------------------------------------------------------------------------------- the module


def _rng_state() -> dict[str, Any]:
    """Global RNG states (torch CPU and CUDA, numpy, Python) as tensors and plain lists: weights_only-safe."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "state": list(python_state), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_finite(x: Tensor, y: Tensor) -> None:
    """``ValueError`` naming the sample and tensor when a batch holds NaN or infinity (one reduction per tensor)."""
    for name, tensor in (("inputs", x), ("targets", y)):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            sample = int((~torch.isfinite(tensor)).flatten(1).any(1).nonzero()[0])
            raise ValueError(f"a batch holds NaN or infinity in its {name} (sample {sample} of the batch, shape "
                             f"{tuple(tensor.shape)}); clean or impute the data before training")


class SequenceModule(L.LightningModule):
    """Trains a plain ``nn.Module`` on a :class:`~dilated.tasks.Task`.

    Args:
        model: any module mapping ``(batch, channels, time)`` to outputs :func:`~dilated.tasks.align_output` fits.
        task: what the targets are.
        training: the resolved ``training:`` section of a config (optimizer, lr, scheduler, ...).
        class_weights: per-class loss weights (classification), or None.

    Logs ``train_loss`` (per step and epoch) and, after each validation, ``val_loss`` and ``val_<metric>`` for the
    scalar metrics of :mod:`dilated.metrics`. The LR schedule is stepped here, once per epoch after validation, and
    saved in checkpoints with the RNG states.
    """

    def __init__(self, model: nn.Module, task: Task, training: Mapping[str, Any],
                 class_weights: Tensor | None = None) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.training_config = dict(training)
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.val_metrics = TaskMetrics(task)
        self.last_validation: dict[str, Any] = {}
        self.scheduler: Any = None
        self._scheduler_state: dict[str, Any] | None = None
        self._rng_to_restore: dict[str, Any] | None = None
        self._regularize = bool(training.get("regularization")) and callable(
            getattr(model, "regularization_loss", None))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def _step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, y = batch
        check_finite(x, y)
        output = align_output(self.model(x), y, self.task)
        return task_loss(output, y, self.task, self.class_weights), output, y

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._rng_to_restore is not None:  # first batch after a resume: continue the saved random streams
            _set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, _, y = self._step(batch)
        self.train_loss.update(loss.detach(), weight=y.numel())
        self.log("train_loss", loss.detach(), prog_bar=True, batch_size=y.shape[0])
        if self._regularize:
            loss = loss + self.model.regularization_loss()
        return loss

    def on_train_epoch_end(self) -> None:
        self.log("train_loss_epoch", self.train_loss.compute())
        self.train_loss.reset()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, output, y = self._step(batch)
        self.val_loss.update(loss.detach(), weight=y.numel())
        self.val_metrics.update(output, y)

    def on_validation_epoch_end(self) -> None:
        result = {"loss": float(self.val_loss.compute()), **self.val_metrics.compute()}
        self.val_loss.reset()
        self.val_metrics.reset()
        self.last_validation = result
        values = {f"val_{k}": v for k, v in scalar_metrics(result).items()}
        shown = ("val_loss", "val_f1", "val_mae")
        self.log_dict({k: v for k, v in values.items() if k in shown}, prog_bar=True)
        self.log_dict({k: v for k, v in values.items() if k not in shown})
        if not self.trainer.sanity_checking and self.scheduler is not None:
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(values[self.training_config["monitor"]])
            else:
                self.scheduler.step()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        c = self.training_config
        params = [p for p in self.model.parameters() if p.requires_grad]
        kind = c["optimizer"]
        if kind == "adam":
            optimizer = torch.optim.Adam(params, lr=c["lr"], betas=tuple(c["betas"]), eps=c["eps"],
                                         weight_decay=c["weight_decay"])
        elif kind == "adamw":
            optimizer = torch.optim.AdamW(params, lr=c["lr"], betas=tuple(c["betas"]), eps=c["eps"],
                                          weight_decay=c["weight_decay"])
        elif kind == "rmsprop":
            optimizer = torch.optim.RMSprop(params, lr=c["lr"], eps=c["eps"], momentum=c["momentum"],
                                            weight_decay=c["weight_decay"])
        elif kind == "sgd":
            optimizer = torch.optim.SGD(params, lr=c["lr"], momentum=c["momentum"], weight_decay=c["weight_decay"])
        else:
            raise ValueError(f"training.optimizer: unknown optimizer {kind!r}; use adam, adamw, rmsprop or sgd")
        if c["scheduler"] == "plateau":
            mode = "max" if higher_is_better(c["monitor"]) else "min"
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode=mode, factor=c["scheduler_factor"], patience=c["scheduler_patience"],
                min_lr=c["min_lr"])
        elif c["scheduler"] == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=c["max_epochs"],
                                                                        eta_min=c["min_lr"])
        else:
            self.scheduler = None
        if self.scheduler is not None and self._scheduler_state is not None:
            self.scheduler.load_state_dict(self._scheduler_state)
            self._scheduler_state = None
        return optimizer

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng"] = _rng_state()
        checkpoint["scheduler"] = self.scheduler.state_dict() if self.scheduler is not None else None
        # the running mean of this epoch's training loss (non-zero in a checkpoint written mid-epoch)
        checkpoint["train_loss"] = {"mean_value": self.train_loss.mean_value.detach().cpu(),
                                    "weight": self.train_loss.weight.detach().cpu()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_to_restore = checkpoint.get("rng")
        self._scheduler_state = checkpoint.get("scheduler")
        running = checkpoint.get("train_loss")
        if running is not None:
            self.train_loss.mean_value = running["mean_value"].to(self.train_loss.mean_value)
            self.train_loss.weight = running["weight"].to(self.train_loss.weight)


# ------------------------------------------------------------------------------------------------- checkpoints


class SafeCheckpointIO(CheckpointIO):
    """Lightning's checkpoint dict to and from a :mod:`dilated.checkpoints` folder.

    The ``state_dict`` entry (the model's weights, keys without the ``model.`` prefix) goes to safetensors, the
    rest to the weights_only-safe state file, the ``"dilated"`` entry to the manifest's ``info``.
    """

    prefix = "model."

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        state = dict(checkpoint)
        weights = state.pop("state_dict")
        info = state.pop("dilated", {})
        stray = [k for k in weights if not k.startswith(self.prefix)]
        if stray:
            raise CheckpointError(f"weights outside the model cannot be checkpointed: {stray[:3]}")
        save_checkpoint(path, {k.removeprefix(self.prefix): v for k, v in weights.items()}, state, info)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict:
        loaded = load_checkpoint(path, map_location="cpu")
        return {**loaded.state, "state_dict": {self.prefix + k: v for k, v in loaded.weights.items()}}

    def remove_checkpoint(self, path: Any) -> None:
        remove_checkpoint(path)


class _InterruptRequest:
    """First Ctrl-C: ask training to stop at the next safe point (after a batch); a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def install(self) -> None:
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._handle)
        self._installed = True

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\ndilated: Ctrl-C: saving a checkpoint after this batch (press Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False


class RunCheckpoint(Checkpoint):
    """Writes the run folder while training: a checkpoint after each epoch (keeping the last ``keep`` and the best
    by ``monitor``), ``metrics.csv`` / ``metrics.json``, and a checkpoint on Ctrl-C before stopping."""

    def __init__(self, run: RunDir, monitor: str, keep: int = 3) -> None:
        super().__init__()
        self.run = run
        self.monitor = monitor
        self.higher = higher_is_better(monitor)
        self.keep = max(1, keep)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.interrupt = _InterruptRequest()
        self.saved: Path | None = None
        self._should_stop = False  # early stopping decided at the saved epoch (restored on resume)
        self._epoch_start = 0.0
        self._epoch_lr = 0.0
        self._pending: dict[str, Any] = {}  # the manifest info of the checkpoint being written

    @property
    def state_key(self) -> str:
        return "RunCheckpoint"

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "best": self.best, "should_stop": self._should_stop}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))
        self.best = state.get("best")
        self._should_stop = bool(state.get("should_stop", False))

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.interrupt.install()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.interrupt.restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.interrupt.restore()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()  # also where a run resumed mid-epoch starts timing
        if self._should_stop:  # the run stopped early at its last checkpoint: do not train another epoch
            trainer.should_stop = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._epoch_lr = float(trainer.optimizers[0].param_groups[0]["lr"])

    def _stop_requested(self, trainer: L.Trainer) -> bool:
        if trainer.world_size > 1:
            return bool(trainer.strategy.reduce_boolean_decision(self.interrupt.requested, all=False))
        return self.interrupt.requested

    def _save(self, trainer: L.Trainer, name: str, kind: str, position: tuple[int, int]) -> Path:
        path = self.run.checkpoints / name
        trainer.datamodule.position = position
        self._pending = {"kind": kind, "epoch": position[0] if kind == "epoch" else trainer.current_epoch + 1,
                         "step": trainer.global_step, "best": self.best,
                         "metrics": self.history[-1] if self.history and kind == "epoch" else {}}
        trainer.save_checkpoint(path)
        self.saved = path
        return path

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["dilated"] = self._pending

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        accumulate = trainer.accumulate_grad_batches
        at_step = (batch_idx + 1) % accumulate == 0 or batch_idx + 1 == trainer.num_training_batches
        if not at_step or not self._stop_requested(trainer):
            return
        samples = (batch_idx + 1) * trainer.datamodule.batch_size
        path = self._save(trainer, checkpoint_name(trainer.current_epoch + 1, trainer.global_step, "interrupt"),
                          "interrupt", (trainer.current_epoch, samples))
        raise TrainingInterrupted(path, self.run.path, trainer.is_global_zero)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch + 1
        metrics = trainer.callback_metrics
        row: dict[str, Any] = {"epoch": epoch, "step": trainer.global_step, "lr": self._epoch_lr}
        for key in ("train_loss_epoch", "val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1",
                    "val_mse", "val_mae"):
            if key in metrics:
                row[key.removesuffix("_epoch")] = float(metrics[key])
        row["seconds"] = round(time.perf_counter() - self._epoch_start, 3)
        self.history.append(row)
        value = row.get(self.monitor)
        name = checkpoint_name(epoch, trainer.global_step)
        if value is not None and not math.isnan(value) and (self.best is None or (
                value > self.best["value"] if self.higher else value < self.best["value"])):
            self.best = {"epoch": epoch, "monitor": self.monitor, "value": value, "checkpoint": name}
        self._should_stop = bool(trainer.should_stop)
        path = self._save(trainer, name, "epoch", (epoch, 0))
        if trainer.is_global_zero:
            self._prune(path)
            self.run.update_metrics(history=self.history, best=self.best, status="running")
        if self._stop_requested(trainer):
            raise TrainingInterrupted(path, self.run.path, trainer.is_global_zero)

    def _prune(self, newest: Path) -> None:
        """Keep the newest ``keep`` epoch checkpoints, the best one, and no interrupt checkpoint older than now."""
        protect = {newest.name, self.best["checkpoint"] if self.best else None}
        epochs = [p for p in find_checkpoints(self.run.checkpoints) if not p.name.endswith("-interrupt")]
        stale = [p for p in epochs[:-self.keep] if p.name not in protect]
        stale += [p for p in find_checkpoints(self.run.checkpoints) if p.name.endswith("-interrupt")]
        for path in stale:
            remove_checkpoint(path)


# --------------------------------------------------------------------------------------------------- wiring


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


def resolve_precision(value: str, accelerator: str) -> str:
    """``auto`` -> ``bf16-mixed`` (or ``16-mixed``) on a GPU, ``32-true`` on CPU; half precision on CPU refused."""
    gpu = _is_gpu(accelerator)
    if value == "auto":
        if not gpu:
            return "32-true"
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if value in ("16-mixed", "bf16-mixed") and not gpu:
        raise ValueError(f"training.precision: {value} needs a GPU; on CPU use 32 (or auto)")
    return {"32": "32-true", "64": "64-true"}.get(value, value)


def describe_model(model: nn.Module) -> dict[str, Any]:
    """Parameter count and receptive field (when the model reports one)."""
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "receptive_field": getattr(model, "receptive_field", None), "class": type(model).__name__}


def _class_weights(setting: Any, splits: Splits) -> Tensor | None:
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


def _global_rank_zero() -> bool:
    """Before the Trainer exists: is this the first process of the first machine? (Lightning reads RANK/LOCAL_RANK;
    the machine is NODE_RANK, or GROUP_RANK under torchrun.)"""
    node = int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", "0")))
    return L.pytorch.utilities.rank_zero_only.rank == 0 and node == 0


def _quiet_lightning() -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    for pattern in (".*does not have many workers.*", ".*Found .* module\\(s\\) in eval mode.*",
                    ".*that ended before the epoch ended.*", ".*`isinstance\\(treespec, LeafSpec\\)`.*",
                    ".*sync_dist=True.*"):
        warnings.filterwarnings("ignore", message=pattern)


def _echo(message: str) -> None:
    print(message, flush=True)


def resume_checkpoint(run: RunDir, echo: Callable[[str], None] = _echo) -> Path | None:
    """The newest checkpoint of ``run`` that verifies; newer damaged ones are renamed ``*.corrupt`` (and reported)."""
    def skipped(folder: Path, error: CheckpointError) -> None:
        echo(f"warning: skipping damaged checkpoint {folder.name}: {error}")
        quarantine(folder)

    return latest_checkpoint(run.checkpoints, on_skip=skipped)


def train(config: Mapping[str, Any], run_dir: str | Path, resume: bool = False, progress: bool = True,
          echo: Callable[[str], None] = _echo) -> TrainResult | None:
    """Train the model of a resolved config, writing the run folder; evaluate the best checkpoint on the test set.

    Args:
        config: resolved config (:func:`dilated.experiment.load_config`).
        run_dir: the run folder (created if needed; every process of a multi-process run must get the same one).
        resume: continue from the newest good checkpoint in ``run_dir`` (start afresh if there is none).
        progress: progress bars.
        echo: where status lines go.

    Raises:
        TrainingInterrupted: on Ctrl-C, after writing a checkpoint.

    Returns: a :class:`TrainResult` on the global-zero process, None on the others.
    """
    _quiet_lightning()
    started = time.perf_counter()
    trainer_config = config["trainer"]
    progress = progress and trainer_config["progress_bar"]
    threads = torch.get_num_threads()
    if trainer_config["threads"]:
        torch.set_num_threads(trainer_config["threads"])
    try:
        return _train(config, Path(run_dir), resume, progress, echo, started)
    finally:
        torch.set_num_threads(threads)


def _train(config: Mapping[str, Any], run_dir: Path, resume: bool, progress: bool, echo: Callable[[str], None],
           started: float) -> TrainResult | None:
    training, trainer_config = config["training"], config["trainer"]
    rank_zero = _global_rank_zero()
    say = echo if rank_zero else (lambda _message: None)
    L.seed_everything(training["seed"], workers=True, verbose=False)
    say(f"loading {config['data']['kind']} data ...")
    splits = build_splits(config["data"], progress=progress and rank_zero)
    monitors = CLASSIFICATION_MONITORS if splits.task.is_classification else REGRESSION_MONITORS
    if training["monitor"] not in monitors:
        raise ValueError(f"training.monitor: {training['monitor']} does not apply to a {splits.task.kind} task; "
                         f"use one of {', '.join(monitors)}")
    options = infer_model_options(config["model"], config["options"], splits.channels, splits.length, splits.task)
    config = {**config, "options": options}
    from dilated.models import build_model

    model = build_model(config["model"], **options)
    class_weights = _class_weights(training["class_weights"], splits)
    run = RunDir(run_dir)
    if rank_zero:
        if resume and run.metrics().get("status") == "finished" and run.config() == config:
            say(f"{run.path} finished already; evaluating its best checkpoint again")
            return _finish(run, model, splits, training, progress, say, started, epochs=len(
                run.metrics().get("history", [])))
        RunDir.create(run.path, config)
        model_info = describe_model(model)
        run.update_metrics(model=model_info, data=splits.info, status="running")
        sizes = splits.info["sizes"]
        say(f"run folder: {run.path}")
        say(f"data: train {sizes['train']}, val {sizes['val']}, test {sizes['test']} samples of "
            f"{splits.channels} x {splits.length}" + (f"; class counts (train) {splits.info['class_counts']['train']}"
                                                      if "class_counts" in splits.info else ""))
        rf = f", receptive field {model_info['receptive_field']}" if model_info["receptive_field"] else ""
        say(f"model: {config['model']}, {model_info['parameters']:,} parameters{rf}")
    ckpt_path = None
    if resume:  # rank zero renames damaged checkpoints; every process then picks the same newest good one
        ckpt_path = resume_checkpoint(run, say) if rank_zero else latest_checkpoint(run.checkpoints)
        say(f"resuming from {ckpt_path}" if ckpt_path else "no usable checkpoint: starting from the beginning")

    module = SequenceModule(model, splits.task, training, class_weights)
    eval_batch = training["eval_batch_size"] or 4 * training["batch_size"]
    datamodule = SplitsData(splits, training["batch_size"], eval_batch, training["seed"], training["num_workers"])
    checkpointing = RunCheckpoint(run, training["monitor"], training["keep_checkpoints"])
    callbacks: list[L.Callback] = [checkpointing]
    if training["patience"]:
        mode = "max" if higher_is_better(training["monitor"]) else "min"
        callbacks.append(EarlyStopping(training["monitor"], patience=training["patience"], mode=mode))
    if progress:
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, min(trainer_config["log_every_n_steps"], 20))))
    accelerator = trainer_config["accelerator"]
    deterministic = trainer_config["deterministic"]
    if deterministic is None:
        deterministic = not _is_gpu(accelerator)
    limits = {k: trainer_config[k] for k in ("limit_train_batches", "limit_val_batches")
              if trainer_config[k] is not None}
    clip = training["clip"] if training["clip"] and training["clip"] > 0 else None
    trainer = L.Trainer(
        accelerator=accelerator, devices=trainer_config["devices"], num_nodes=trainer_config["num_nodes"],
        strategy=trainer_config["strategy"], precision=resolve_precision(training["precision"], accelerator),
        max_epochs=training["max_epochs"], gradient_clip_val=clip, deterministic=deterministic,
        accumulate_grad_batches=trainer_config["accumulate_grad_batches"], callbacks=callbacks,
        plugins=[SafeCheckpointIO()], logger=False, enable_progress_bar=progress, enable_model_summary=False,
        log_every_n_steps=trainer_config["log_every_n_steps"], use_distributed_sampler=False,
        num_sanity_val_steps=0 if ckpt_path else 2, **limits)
    os.environ[RUN_DIR_ENV] = str(run.path)  # extra processes launched by Lightning write to the same folder
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except TrainingInterrupted:
        if trainer.is_global_zero:
            run.update_metrics(status="interrupted", history=checkpointing.history, best=checkpointing.best)
        raise
    except SystemExit:  # Lightning's own KeyboardInterrupt handling ends with sys.exit(1)
        if trainer.interrupted:
            raise TrainingInterrupted(checkpointing.saved, run.path, trainer.is_global_zero) from None
        raise
    finally:
        os.environ.pop(RUN_DIR_ENV, None)
    if not trainer.is_global_zero:
        return None
    stopped = "early stopping" if any(isinstance(c, EarlyStopping) and c.stopped_epoch for c in callbacks) \
        else "max_epochs"
    run.update_metrics(history=checkpointing.history, best=checkpointing.best, status="finished",
                       stopped_by=stopped)
    return _finish(run, model, splits, training, progress, say, started, epochs=len(checkpointing.history))


def _finish(run: RunDir, model: nn.Module, splits: Splits, training: Mapping[str, Any], progress: bool,
            say: Callable[[str], None], started: float, epochs: int) -> TrainResult:
    """Test the best checkpoint, write test metrics and plots, print them."""
    from dilated.plots import plot_confusion_matrix, plot_curves, plot_per_class, plot_regression

    checkpoint = run.best_checkpoint()
    if checkpoint is not None:
        model.load_state_dict(load_weights(checkpoint))
    outputs = run_model(model, splits.test, splits.task, training["eval_batch_size"] or 4 * training["batch_size"],
                        progress=progress, desc="testing")
    result = evaluate_outputs(outputs, splits.task)
    metrics = run.metrics()
    history, best = metrics.get("history", []), metrics.get("best") or {}
    plots = [plot_curves(history, run.plots / "curves.png", best.get("epoch"))] if history else []
    if splits.task.is_classification:
        names = splits.task.class_names
        plots.append(plot_confusion_matrix(result["confusion_matrix"], names, run.plots / "confusion_matrix.png",
                                           "test confusion matrix"))
        plots.append(plot_per_class(result["per_class"], run.plots / "per_class.png", "test precision / recall / F1"))
    else:
        from dilated.tasks import predictions

        plots.append(plot_regression(splits.task.denormalise(outputs.target.float()).reshape(-1),
                                     predictions(outputs.output, splits.task).reshape(-1),
                                     run.plots / "predictions.png", "test predictions"))
    seconds = time.perf_counter() - started
    result["checkpoint"] = checkpoint.name if checkpoint else None
    run.write_test(result)
    run.update_metrics(wall_time_s=round(seconds, 2))
    best_text = f"best epoch {best['epoch']} ({best['monitor']} {best['value']:.4f}), " if best else ""
    say(f"trained {epochs} epoch(s) in {seconds:.0f} s; {best_text}checkpoint {checkpoint}")
    say(format_metrics(result, "test metrics"))
    say("plots: " + ", ".join(str(p) for p in plots))
    return TrainResult(run, result, checkpoint, plots, epochs, seconds)


# ------------------------------------------------------------------------------------------ command-line entry


RUN_DIR_ENV = "DILATED_RUN_DIR"


def prepare_run(config_path: str | None, overrides: list[str], run_dir: str | None = None,
                resume: str | None = None) -> tuple[dict[str, Any], Path, bool]:
    """The resolved config, run folder and resume flag for ``dilated train``.

    A fresh run goes to ``run_dir`` (default ``runs/CONFIG-TIMESTAMP``); ``resume`` names a run folder whose
    ``config.yaml`` is used, with ``overrides`` applied (e.g. ``training.max_epochs=200`` to train longer). The
    extra processes of a multi-process run find the folder in ``$DILATED_RUN_DIR``, which :func:`train` sets while
    Lightning launches them.
    """
    from dilated.targets import read_yaml
    from dilated.experiment import apply_overrides, load_config, resolve_config
    from dilated.runs import default_run_dir

    shared = os.environ.get(RUN_DIR_ENV)
    if resume:
        if config_path:
            raise ValueError("give CONFIG or --resume RUN_DIR, not both: a resumed run keeps its config.yaml "
                             "(change it with --override)")
        run = RunDir.open(resume)
        config = resolve_config(apply_overrides(read_yaml(run.config_path), overrides), str(run.config_path))
        return config, run.path, True
    if not config_path:
        raise ValueError("dilated train needs CONFIG (a training YAML, see `dilated train --help`) or "
                         "--resume RUN_DIR")
    config = load_config(config_path, overrides)
    if shared:
        return config, Path(shared), False
    path = Path(run_dir) if run_dir else default_run_dir(config_path)
    if find_checkpoints(path / "checkpoints"):
        raise ValueError(f"{path} holds checkpoints of an earlier run: continue it with `dilated train --resume "
                         f"{path}`, or give another --run-dir")
    return config, path, False


DEMO_MARKER = ".dilated-demo"


def demo(run_dir: str | Path = "runs/demo", max_epochs: int | None = None, progress: bool = True,
         echo: Callable[[str], None] = _echo) -> TrainResult | None:
    """The main job: TransLOB on the bundled LOBSTER sample (real AAPL data), evaluated on its test part.

    Trains :data:`dilated.experiment.DEMO_CONFIG` into ``run_dir`` (a previous demo run there is replaced) and
    prints the test metrics and the plots' paths.
    """
    from dilated.experiment import DEMO_CONFIG, resolve_config

    raw = {**DEMO_CONFIG, "training": {**DEMO_CONFIG["training"]}}
    if max_epochs is not None:
        raw["training"]["max_epochs"] = max_epochs
    config = resolve_config(raw, "demo")
    path = Path(run_dir)
    if (path / DEMO_MARKER).is_file():  # only a folder the demo made itself is replaced, never another run
        echo(f"replacing the previous demo run in {path}")
        for name in ("checkpoints", "plots"):
            shutil.rmtree(path / name, ignore_errors=True)
        for name in ("metrics.csv", "metrics.json", "test_metrics.csv"):
            (path / name).unlink(missing_ok=True)
    elif path.exists() and any(path.iterdir()):
        raise ValueError(f"{path} exists and is not a demo run folder (nothing was changed in it); choose another "
                         "--run-dir")
    path.mkdir(parents=True, exist_ok=True)
    (path / DEMO_MARKER).write_text("made by `dilated demo`; the next demo run replaces this folder\n")
    data = config["data"]
    echo(f"dilated demo: TransLOB (Wallbridge 2020) on the bundled LOBSTER sample (AAPL, 2012-06-21, first 999 "
         f"events): up/stationary/down of the mean mid-price over the next {data['horizon']} events, from windows "
         f"of {data['window']} events")
    result = train(config, path, progress=progress, echo=echo)
    if result is not None:
        counts = result.run.metrics()["data"]["class_counts"]
        floor = majority_baseline(counts["train"], counts["test"], LOB_CLASSES)
        echo(f"baseline, always {floor['class']!r} (the most frequent training class): accuracy "
             f"{floor['accuracy']:.4f}, f1 {floor['f1']:.4f}; 999 events are minutes of trading, so expect scores "
             "near chance: train on FI-2010 (configs/) for the paper's setting")
    return result
