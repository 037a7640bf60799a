"""The LightningModule: the training loop around a plain ``nn.Module``, its optimizer and LR schedule.

The model stays a plain module (``SequenceModule.model``), usable without Lightning. The optimizer and the
per-epoch LR schedule come from :meth:`SequenceModule.configure_optimizers`, and Lightning steps and checkpoints the
schedule. Two things Lightning does not carry across a resume are saved here with each checkpoint: the global RNG
states (so dropout continues its random stream), and the running mean of the epoch's training loss (non-zero in a
checkpoint written mid-epoch).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

import lightning as L
import numpy as np
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import MeanMetric

from dilated.training._config import TrainingConfig
from dilated.training._metric_table import VALIDATION_PREFIX, metrics_for, mode
from dilated.training._metrics import TaskMetrics, scalar_metrics
from dilated.training._objective import Task, align_output, task_loss

# optimizer name -> (class, the TrainingConfig fields it takes besides lr and weight_decay)
OPTIMIZERS: dict[str, tuple[Callable[..., torch.optim.Optimizer], tuple[str, ...]]] = {
    "adam": (torch.optim.Adam, ("betas", "eps")),
    "adamw": (torch.optim.AdamW, ("betas", "eps")),
    "rmsprop": (torch.optim.RMSprop, ("eps", "momentum")),
    "sgd": (torch.optim.SGD, ("momentum",)),
}


def rng_state() -> dict[str, Any]:
    """Global RNG states (torch CPU and CUDA, numpy, Python) as tensors and plain lists: weights_only-safe."""
    # numpy's stubs pick the dict overload for the default (legacy=True), which returns this tuple
    kind, keys, position, has_gauss, cached = cast(
        tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True)
    )
    version, python_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "state": list(python_state), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["position"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_finite(x: Tensor, y: Tensor) -> None:
    """``ValueError`` naming the sample and tensor when a batch holds NaN or infinity (one reduction per tensor)."""
    for name, tensor in (("inputs", x), ("targets", y)):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            sample = int((~torch.isfinite(tensor)).flatten(1).any(1).nonzero()[0])
            raise ValueError(
                f"a batch holds NaN or infinity in its {name} (sample {sample} of the batch, shape "
                f"{tuple(tensor.shape)}); clean or impute the data before training"
            )


class _Regularized(Protocol):
    """A model with an extra loss term (TransLOB's L2 on its hidden dense kernel)."""

    def regularization_loss(self) -> Tensor: ...


def zero_output_layer(model: nn.Module) -> nn.Module:
    """Set the weight and bias of the model's output layer to zero (``training.zero_head``): its last linear or
    convolution module, in module order: the last module with a weight matrix or kernel (a ``weight`` of 2 or more
    axes; a norm's is a vector), which is the classifier of every registered LOB model and the TCN's head.

    Why: a random head gives logits of a random size, and the quickest way to lower the loss from there is to
    silence them; with a ReLU before the head (TransLOB's ``Dense(64, relu)``) Adam does that by driving every
    hidden unit negative within a few hundred steps, after which no gradient flows and the loss stays at
    ``ln 3`` (docs/results/lob_planted.md). From zero logits the first gradients follow the data instead.
    """
    weights = [w for m in model.modules() if isinstance(w := getattr(m, "weight", None), Tensor) and w.dim() >= 2]
    if not weights:
        raise ValueError(
            f"training.zero_head: {type(model).__name__} has no linear or convolution output layer to start at "
            "zero; set zero_head: false"
        )
    output = next(m for m in model.modules() if getattr(m, "weight", None) is weights[-1])
    with torch.no_grad():
        for parameter in (weights[-1], getattr(output, "bias", None)):
            if isinstance(parameter, Tensor):
                parameter.zero_()
    return output


class SequenceModule(L.LightningModule):
    """Trains a plain ``nn.Module`` on a :class:`~dilated.training._objective.Task`.

    Args:
        model: any module mapping ``(batch, channels, time)`` to outputs
            :func:`~dilated.training._objective.align_output` fits.
        task: what the targets are.
        training: the ``training:`` section of the config (optimizer, lr, scheduler, ...).
        class_weights: per-class loss weights (classification), or None.

    Logs ``train_loss`` (per step) and ``train_loss_epoch`` (:meth:`epoch_train_loss`), and after each
    validation ``val_<metric>`` for every metric of the task in :mod:`dilated.training._metric_table` (those marked
    there on the progress bar).
    """

    class_weights: Tensor | None  # a buffer

    def __init__(
        self, model: nn.Module, task: Task, training: TrainingConfig, class_weights: Tensor | None = None
    ) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.training_config = training
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.val_metrics = TaskMetrics(task)
        self._shown = {VALIDATION_PREFIX + m.name for m in metrics_for(task.kind) if m.progress_bar}
        self._regularize = training.regularization and callable(getattr(model, "regularization_loss", None))
        if training.zero_head:  # before a resumed run's weights are loaded over it
            zero_output_layer(model)
        self._rng_to_restore: dict[str, Any] | None = None
        self._plateau_step: float | None = None

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def _step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, y = batch
        check_finite(x, y)
        output = align_output(self.model(x), y, self.task)
        return task_loss(output, y, self.task, self.class_weights), output, y

    # Lightning steps a plateau schedule after an epoch's end hooks (where checkpoints are written), and skips that
    # step whenever it is restarting (FitLoop.on_advance_end: "plateau schedulers shouldn't be updated"): both when
    # it resumes from an end-of-epoch checkpoint and at the end of an epoch it resumed mid-way. The monitored value
    # of such an epoch is kept (in the checkpoint, or here) and its one step replayed before the next epoch trains.

    def _monitored_for_plateau(self) -> float | None:
        """The monitored value a plateau schedule steps on after this epoch (None without such a schedule)."""
        if not any(config.reduce_on_plateau for config in self.trainer.lr_scheduler_configs):
            return None
        value = self.trainer.callback_metrics.get(self.training_config.monitor)
        return None if value is None else float(value)

    def _replay_plateau_step(self) -> None:
        if self._plateau_step is not None:
            for config in self.trainer.lr_scheduler_configs:
                if config.reduce_on_plateau:
                    self.lr_scheduler_step(config.scheduler, self._plateau_step)
            self._plateau_step = None

    def on_train_start(self) -> None:
        self._replay_plateau_step()  # resumed from an end-of-epoch checkpoint

    def on_train_epoch_start(self) -> None:
        self._replay_plateau_step()  # the step Lightning skipped after the epoch it resumed mid-way

    def epoch_train_loss(self) -> float:
        """The mean training loss of the epoch so far (weighted by targets; summed over processes under DDP)."""
        return float(self.train_loss.compute())

    def on_train_epoch_end(self) -> None:
        self.log("train_loss_epoch", self.epoch_train_loss())
        self.train_loss.reset()
        if self.trainer.fit_loop.restarting:  # resumed mid-epoch: Lightning skips this epoch's plateau step
            self._plateau_step = self._monitored_for_plateau()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._rng_to_restore is not None:  # first batch after a resume: continue the saved random streams
            set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, _, y = self._step(batch)
        self.train_loss.update(loss.detach(), weight=y.numel())
        self.log("train_loss", loss.detach(), prog_bar=True, batch_size=y.shape[0])
        if self._regularize:
            loss = loss + cast(_Regularized, self.model).regularization_loss()
        return loss

    def optimizer_step(
        self,
        epoch: int,
        batch_idx: int,
        optimizer: Optimizer | LightningOptimizer,
        optimizer_closure: Callable[[], Any] | None = None,
    ) -> None:
        """One optimizer step; during ``training.warmup_steps`` at a rising share of the scheduled LR.

        The share is a function of the global step alone (restored on resume), and each group's LR is put back
        after the step, so the per-epoch schedules (plateau, cosine) never see the warmed values.
        """
        step, warmup = self.trainer.global_step, self.training_config.warmup_steps
        if step >= warmup:
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
            return
        scheduled = [group["lr"] for group in optimizer.param_groups]
        for group, lr in zip(optimizer.param_groups, scheduled):
            group["lr"] = lr * (step + 1) / warmup
        try:
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        finally:
            for group, lr in zip(optimizer.param_groups, scheduled):
                group["lr"] = lr

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, output, y = self._step(batch)
        self.val_loss.update(loss.detach(), weight=y.numel())
        self.val_metrics.update(output, y)

    def on_validation_epoch_end(self) -> None:
        result = {"loss": float(self.val_loss.compute()), **self.val_metrics.compute()}
        self.val_loss.reset()
        self.val_metrics.reset()
        values = {VALIDATION_PREFIX + k: v for k, v in scalar_metrics(result).items()}
        self.log_dict({k: v for k, v in values.items() if k in self._shown}, prog_bar=True)
        self.log_dict({k: v for k, v in values.items() if k not in self._shown})

    def configure_optimizers(self) -> OptimizerLRScheduler:
        """The optimizer and, unless ``scheduler: none``, its per-epoch LR schedule (stepped by Lightning after
        each epoch's validation; the plateau schedule watches ``training.monitor``)."""
        c = self.training_config
        optimizer_cls, fields = OPTIMIZERS[c.optimizer]
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = optimizer_cls(params, lr=c.lr, weight_decay=c.weight_decay, **{k: getattr(c, k) for k in fields})
        if c.scheduler == "none":
            return {"optimizer": optimizer}
        if c.scheduler == "plateau":
            scheduler: Any = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode=mode(c.monitor),
                factor=c.scheduler_factor,
                patience=c.scheduler_patience,
                min_lr=c.min_lr,
            )
        else:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=c.max_epochs, eta_min=c.min_lr)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "monitor": c.monitor},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng"] = rng_state()
        progress = self.trainer.fit_loop.epoch_progress.current
        # Lightning types epoch_progress.current as the base tracker; it is a _ProcessedTracker
        at_epoch_end = progress.processed > progress.completed  # type: ignore[attr-defined]  # (on_train_epoch_end)
        # the running mean of this epoch's training loss (non-zero in a checkpoint written mid-epoch)
        checkpoint["train_loss"] = {
            "mean_value": self.train_loss.mean_value.detach().cpu(),
            "weight": self.train_loss.weight.detach().cpu(),
        }
        # written at an epoch's end, before its plateau step (see above): the resumed run replays it
        checkpoint["plateau_step"] = self._monitored_for_plateau() if at_epoch_end else None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_to_restore = checkpoint.get("rng")
        self._plateau_step = checkpoint.get("plateau_step")
        running = checkpoint.get("train_loss")
        if running is not None:
            self.train_loss.mean_value = running["mean_value"].to(self.train_loss.mean_value)
            self.train_loss.weight = running["weight"].to(self.train_loss.weight)
