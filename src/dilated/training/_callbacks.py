"""The callbacks that write a run folder while it trains, on Lightning's own ModelCheckpoint and EarlyStopping.

* :class:`RunCheckpoint`: Lightning's ``ModelCheckpoint`` (a checkpoint after every epoch, the best one tracked by
  ``training.monitor``, its state restored on resume), with the run folder's names, its retention (the newest
  ``keep`` and the best), and the checkpoint of a Ctrl-C stop (:mod:`dilated.training._interrupt`);
* :class:`EpochHistory`: one row per epoch for ``metrics.csv`` / ``metrics.json``, columns from the metric table.
  Lightning's ``CSVLogger`` writes the per-step log in ``RUN/logs/``, but it cannot be this file: after a resume it
  starts a new file (or appends rows of epochs a killed run redoes), while this history lives in the checkpoints,
  so that a resumed run's ``metrics.csv`` equals that of a run never stopped;
* :class:`ResumableEarlyStopping`: Lightning's ``EarlyStopping`` that, resumed from the checkpoint of the epoch at
  which it stopped the run, stops it again (Lightning restores its counters but not the trainer's stop flag).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, TQDMProgressBar

from dilated.training._checkpoint_io import INFO_KEY
from dilated.training._checkpoints import checkpoint_epoch, checkpoint_name, find_checkpoints
from dilated.training._interrupt import InterruptRequest, TrainingInterrupted
from dilated.training._metric_table import mode
from dilated.training._module import SequenceModule
from dilated.training._runs import RunDir

INTERRUPT = "interrupt"


class RunCheckpoint(ModelCheckpoint):
    """Checkpoints of a run: ``checkpoints/epoch=EEEE-step=SSSSSS`` after each epoch (``E`` epochs done), and
    ``...-interrupt`` at the optimizer step where a Ctrl-C stop was requested.

    Lightning's top-k keeps the ``k`` *best* checkpoints; a run must also keep the newest ones to resume from, so
    every epoch is saved (``save_top_k=-1``) and pruned here to the newest ``keep`` plus the best one. An interrupt
    checkpoint is removed at the next epoch end.

    After each epoch's checkpoint it writes ``metrics.json`` / ``metrics.csv``: the ``history`` rows (an
    :class:`EpochHistory`) and the best epoch so far.

    Args:
        run: the run folder.
        history: the run's epoch rows.
        monitor: ``training.monitor`` (its direction from the metric table).
        keep: end-of-epoch checkpoints kept besides the best one.
    """

    FILE_EXTENSION = ""  # a checkpoint is a folder (dilated.training._checkpoints)
    dirpath: str | Path  # always given: the run's checkpoints folder

    def __init__(self, run: RunDir, history: EpochHistory, monitor: str, keep: int = 3) -> None:
        super().__init__(
            dirpath=run.checkpoints,
            monitor=monitor,
            mode=mode(monitor),
            save_top_k=-1,
            every_n_epochs=1,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
            auto_insert_metric_name=False,
        )
        self.run = run
        self.history = history
        self.keep = max(1, keep)
        self.interrupt = InterruptRequest(run.path)
        self.saved: Path | None = None  # the newest checkpoint written by this process
        self._kind = "epoch"

    def format_checkpoint_name(
        self, metrics: dict[str, Any], filename: str | None = None, ver: int | None = None, prefix: str | None = None
    ) -> str:
        return str(Path(self.dirpath) / checkpoint_name(int(metrics["epoch"]) + 1, int(metrics["step"])))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Lightning's state, with its checkpoint paths rebased on this run's folder (a run folder may have been
        moved or copied since; Lightning would otherwise drop the best score)."""

        def here(path: Any) -> Any:
            return str(Path(self.dirpath) / Path(path).name) if path else path

        state = {
            **state_dict,
            "dirpath": self.dirpath,
            "best_k_models": {here(k): v for k, v in state_dict.get("best_k_models", {}).items()},
        }
        for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
            state[key] = here(state_dict.get(key, ""))
        super().load_state_dict(state)

    @property
    def best(self) -> dict[str, Any] | None:
        """``{"epoch", "monitor", "value", "checkpoint"}`` of the best epoch so far (None before a finite value)."""
        score = self.best_model_score
        if not self.best_model_path or score is None or not math.isfinite(float(score)):
            return None
        name = Path(self.best_model_path).name
        return {"epoch": checkpoint_epoch(name), "monitor": self.monitor, "value": float(score), "checkpoint": name}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.interrupt.install()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.interrupt.restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.interrupt.restore()
        super().on_exception(trainer, pl_module, exception)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        checkpoint[INFO_KEY] = {
            "kind": self._kind,
            "epoch": trainer.current_epoch + 1,
            "step": trainer.global_step,
            "best": self.best,
            "metrics": metrics,
        }

    def _stop_requested(self, trainer: L.Trainer) -> bool:
        if trainer.world_size > 1:  # every process stops at the same step
            return bool(trainer.strategy.reduce_boolean_decision(self.interrupt.requested, all=False))
        return self.interrupt.requested

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        done = batch_idx + 1
        at_step = done % trainer.accumulate_grad_batches == 0 or done == trainer.num_training_batches
        if not at_step or not self._stop_requested(trainer):
            return
        # Lightning sets trainer.datamodule at fit time without declaring it on Trainer
        datamodule = trainer.datamodule  # type: ignore[attr-defined]
        datamodule.position = (trainer.current_epoch, done * datamodule.batch_size)
        self._kind = INTERRUPT
        path = self.run.checkpoints / checkpoint_name(trainer.current_epoch + 1, trainer.global_step, INTERRUPT)
        trainer.save_checkpoint(path)
        raise TrainingInterrupted(path, self.run.path, trainer.is_global_zero)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        trainer.datamodule.position = (epoch, 0)  # type: ignore[attr-defined]  # (see on_train_batch_end)
        self._kind = "epoch"
        super().on_train_epoch_end(trainer, pl_module)  # ModelCheckpoint: save, track the best
        self.saved = self.run.checkpoints / checkpoint_name(epoch, trainer.global_step)
        self._prune(trainer)
        if trainer.is_global_zero:
            self.run.update_metrics(history=self.history.rows, best=self.best, status="running")
        if self._stop_requested(trainer):
            raise TrainingInterrupted(self.saved, self.run.path, trainer.is_global_zero)

    def _prune(self, trainer: L.Trainer) -> None:
        """Remove all but the newest ``keep`` epoch checkpoints and the best one, and every interrupt checkpoint."""
        folders = find_checkpoints(self.dirpath)
        epochs = [p for p in folders if not p.name.endswith(INTERRUPT)]
        stale = [p for p in epochs[: -self.keep] if str(p) != self.best_model_path]
        stale += [p for p in folders if p.name.endswith(INTERRUPT)]
        for path in stale:
            trainer.strategy.remove_checkpoint(path)
            self.best_k_models.pop(str(path), None)


class EpochHistory(Callback):
    """The per-epoch rows of ``metrics.csv``: epoch, step, the epoch's learning rate, the training loss, the
    validation metrics ``columns`` (logged names) and seconds, for a
    :class:`~dilated.training._module.SequenceModule`. Saved in checkpoints, so that a resumed run continues the same
    list (:class:`RunCheckpoint` writes them to the run folder).

    The training loss is read from the module (:meth:`~dilated.training._module.SequenceModule.epoch_train_loss`):
    callbacks' ``on_train_epoch_end`` runs before the module's, where it logs that value.
    """

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = columns
        self.rows: list[dict[str, Any]] = []
        self._started = 0.0
        self._lr = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = list(state.get("history", []))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()  # also where a run resumed mid-epoch starts

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # the LR the batch trains with (read here, after every hook that may set it, e.g. a replayed plateau step)
        self._lr = float(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        row: dict[str, Any] = {
            "epoch": trainer.current_epoch + 1,
            "step": trainer.global_step,
            "lr": self._lr,
            "train_loss": cast(SequenceModule, pl_module).epoch_train_loss(),
        }
        row.update({key: float(metrics[key]) for key in self.columns if key in metrics})
        row["seconds"] = round(time.perf_counter() - self._started, 3)
        self.rows.append(row)


class EpochBar(TQDMProgressBar):
    """Lightning's progress bar (written to stdout) with epochs counted from 1, as the history, checkpoints and
    messages count them: ``Epoch 3/40``."""

    def on_train_epoch_start(self, trainer: L.Trainer, *_: Any) -> None:
        # Lightning's own hook with the 1-based description (set once: it draws the bar)
        if self._leave:
            self.train_progress_bar = self.init_train_tqdm()
        total = self.total_train_batches
        self.train_progress_bar.reset(total=None if math.isinf(total) else int(total))
        self.train_progress_bar.initial = 0
        self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")


class EpochLines(Callback):
    """One line per epoch where no progress bar is drawn (a log, a pipe): ``epoch 3/40: train_loss 0.912,
    val_loss 0.881, val_f1 0.412 (12.1 s)``, from the newest row of ``history`` (run after it)."""

    def __init__(self, history: EpochHistory, say: Callable[[str], None]) -> None:
        self.history, self.say = history, say

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row = self.history.rows[-1]
        values = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "step", "lr", "seconds"))
        self.say(f"epoch {row['epoch']}/{trainer.max_epochs}: {values} ({row['seconds']:.1f} s)")


class ResumableEarlyStopping(EarlyStopping):
    """``EarlyStopping`` on ``monitor`` (direction from the metric table), checked after each epoch, whose stop
    decision is saved in checkpoints and honoured on resume."""

    def __init__(self, monitor: str, patience: int) -> None:
        super().__init__(monitor=monitor, patience=patience, mode=mode(monitor), check_on_train_epoch_end=True)
        self.stopped_run = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.stopped_run:  # resumed from the checkpoint of the epoch that stopped the run
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self.stopped_run = bool(trainer.should_stop)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "stopped_run": self.stopped_run}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.stopped_run = bool(state_dict.get("stopped_run", False))
