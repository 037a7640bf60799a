"""From a trained run to predictions on raw data, offline and live: :func:`load_run`.

    predictor = dilated.load_run("runs/demo")            # its best checkpoint, the model in eval mode
    offline = predictor.predict(("message.csv", "orderbook.csv"))   # every window of a LOBSTER file pair
    live = predictor.stream(batch_size=2)                 # two independent feeds
    for events in feed():                                 # (2, 40) raw orderbook rows, one event per feed
        out = live.step(events)                           # None until a window is full, then Predictions
        if out is not None:
            print(out.labels, out.probabilities)          # (2,) class names, (2, 3) probabilities

A run folder holds what inference needs: the model (``config.yaml`` and a checkpoint), the input normalisation and
the task (``metrics.json``'s ``data``), the window. Raw data is read and prepared by the run's data kind, the class
of its ``data:`` section (:mod:`dilated.training._kinds`: LOBSTER snapshots with empty levels filled, table rows as
float32, book rows with empty levels filled; windows holding a one-sided or crossed book, which training never
served, are left out or withheld; FI-2010 and the synthetic tasks have no raw events and refuse), z-scored with the
training statistics in float64 as training did, so ``predict(data)`` equals ``dilated predict`` on the same data.
Every streamed prediction equals ``predict`` for the same window within :data:`~dilated.live._engines.PARITY`; the
stream runs on the first engine that applies (:mod:`dilated.live._engines`), checked against ``model(window)`` on
random windows when it is chosen:

* ``"stream"``: a causal model whose receptive field fits in its window (TCN, WaveNet): :func:`dilated.stream`,
  one step per event whatever the receptive field;
* ``"window"``: a causal conv module followed by a stage over the whole window (TransLOB):
  :class:`dilated.WindowStream`;
* ``"recompute"``: any other model (DeepLOB's LSTM, a TCN whose receptive field exceeds its window):
  ``model(window)`` on the last window at every event.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from dilated.live._engines import Engine, StepEngine, choose_engine, make_engine, window_output
from dilated.live._feeds import Normalisation, usable_windows
from dilated.models import build_model
from dilated.streaming import Backend
from dilated.training import (
    DataSource,
    Feed,
    RunDir,
    Task,
    build_splits,
    data_override,
    load_weights,
    locate,
    predictions,
    read_data,
)


@dataclass(frozen=True)
class Predictions:
    """Predictions for windows, in the run's terms.

    Attributes:
        output: the model's output for each window: ``(n, classes)`` logits, or ``(n,)`` for regression (z-scored
            where training z-scored the target).
        task: what the output means.
        steps: ``(n,)`` int64, the row of each window's last step.
        targets, labelled: ``(n,)`` the windows' targets where known (see :class:`Feed`), or None.
        valid: ``(n,)`` bool (:class:`LiveStream`, while a window holds an event the run was not trained to read,
            e.g. a crossed book): False for those windows, whose output is NaN and label None. None: all valid
            (offline predictions leave such windows out).
    """

    output: Tensor
    task: Task
    steps: Tensor
    targets: Tensor | None = None
    labelled: Tensor | None = None
    valid: Tensor | None = None

    def __len__(self) -> int:
        return len(self.output)

    @property
    def probabilities(self) -> Tensor:
        """``(n, classes)`` class probabilities (classification)."""
        self._need("classification", "probabilities")
        return torch.softmax(self.output.float(), dim=1)

    @property
    def labels(self) -> list[str | None]:
        """The predicted class name of each window (classification); None where the window is not :attr:`valid`."""
        self._need("classification", "labels")
        names = [self.task.class_names[i] for i in predictions(self.output, self.task).tolist()]
        if self.valid is None:
            return list(names)
        return [name if ok else None for name, ok in zip(names, self.valid.tolist())]

    @property
    def forecasts(self) -> Tensor:
        """``(n,)`` forecasts in the data's units (regression)."""
        self._need("regression", "forecasts")
        return predictions(self.output, self.task)

    def _need(self, kind: str, what: str) -> None:
        if self.task.kind != kind:
            raise ValueError(f"{what} exist for {kind} runs; this run's task is {self.task.kind}")


# ---------------------------------------------------------------------------------------------------- predictor


class Predictor:
    """A trained run ready for inference on raw data (see the module docstring); made by :func:`load_run`.

    Attributes:
        model: the plain ``nn.Module``, in eval mode, on the CPU.
        data: the run's ``data:`` section, an instance of its data kind (e.g. ``LobsterData``), which reads and
            prepares raw events.
        task: the class names (``task.class_names``), or the target's z-score for regression (forecasts are given
            in the data's units).
        normalisation: the training z-score of the inputs.
        window: events per input window.
        receptive_field: events each output (or each feature entering a global stage) depends on, where the
            model declares it.
        channels: the model's inputs per event; event_values: values per raw event (a book's levels: 4 per
            level, whatever the representation the model reads).
        run, checkpoint, config: where it came from.
    """

    def __init__(self, run: RunDir, checkpoint: Path) -> None:
        self.run, self.checkpoint = run, checkpoint
        self.config = config = run.config().to_dict()
        data = config["data"]
        self.data: DataSource = read_data(data)
        info = run.metrics().get("data") or {}
        if info.get("normalisation") is None and self.data.normalises:  # a run trained before the statistics were
            info = build_splits(self.data, progress=False).info  # stored: rebuilt
        self.task = self.data.run_task(info)
        if self.task.per_step:
            raise ValueError(
                f"this run predicts every step of a sequence ({self.data.kind}), not a window: stream its model "
                "with dilated.stream"
            )
        self.model = build_model(config["model"], **config["options"])
        self.model.load_state_dict(load_weights(checkpoint))
        self.model.eval()
        self.window = int(data.get("window") or data["seq_len"])
        self.receptive_field = getattr(self.model, "receptive_field", None)
        options = config["options"]
        self.channels = int(next(options[k] for k in ("input_channels", "num_features") if k in options))
        self.normalisation = Normalisation.from_stats(info.get("normalisation"), self.channels)
        self._info = info
        self._kind = self.data.as_trained(info)
        self.event_values = self._kind.event_values(self.channels)
        self._engine: tuple[Engine, float] | None = None

    def __repr__(self) -> str:
        return (
            f"Predictor({self.config['model']}, {self.data.kind} data, window {self.window}, "
            f"checkpoint {self.checkpoint.name})"
        )

    # -- reading and preparing raw data ------------------------------------------------------------------------------
    def read(self, source: Any = None) -> Feed:
        """A recorded feed in the run's data format (default: the run's own data).

        Args:
            source: for LOBSTER runs a ``(message, orderbook)`` pair or one of the two files (its partner found by
                LOBSTER's naming); for table runs a ``.csv``/``.parquet`` file or a DataFrame; for book runs a
                Parquet book (``dilated data convert``) or a :class:`~dilated.data.Book`; for all a YAML file with a
                ``data:`` section (as ``dilated predict --data``; for books its ``start``/``end`` apply too).
        """
        return self.read_many(source, None)[None]

    def read_many(self, source: Any, by: str | None) -> dict[Hashable, Feed]:
        """One feed per value of the column ``by`` (instruments of one table file), in order of appearance; None:
        one feed, key None."""
        kind = self._kind
        if isinstance(source, (str, Path)) and str(source).lower().endswith((".yaml", ".yml")):
            section = data_override(self.data, str(source))
            if section.kind != self.data.kind:
                raise ValueError(
                    f"{source}: its data section is of kind {section.kind!r}; the run was trained on "
                    f"{self.data.kind!r} data"
                )
            kind, source = section.as_trained(self._info), None
        return kind.read_events(source, by)

    def prepare(self, rows: np.ndarray | Tensor, previous: np.ndarray | None = None) -> np.ndarray:
        """Raw rows ``(..., time, channels)`` as the run's data kind prepares them (:meth:`DataSource.prepare`;
        LOBSTER: empty levels filled from ``previous`` ``(..., channels)``, each book's last prepared event; tables:
        float32; books: empty deeper levels filled; FI-2010 and the synthetic tasks refuse)."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim < 2 or rows.shape[-1] != self.event_values:
            raise ValueError(
                f"the run's model takes {self.event_values} features per event ({self._kind.event_features}); got "
                f"{rows.shape[-1] if rows.ndim else 0} (raw data of shape {tuple(rows.shape)})"
            )
        return self._kind.prepare(rows, previous)

    def inputs(self, prepared: np.ndarray, previous: np.ndarray | None = None) -> Tensor:
        """Prepared rows ``(..., time, values)`` -> the model's float32 inputs ``(..., channels, time)``: the run's
        representation (:meth:`DataSource.inputs`; ``previous`` ``(..., values)``: the prepared event before the rows),
        then the training normalisation."""
        return self.normalisation(np.swapaxes(self._kind.inputs(prepared, previous), -1, -2))

    def unusable(self, prepared: np.ndarray) -> np.ndarray | None:
        """Prepared rows ``(..., channels)`` -> ``(...)`` bool: events no window the model was trained on held
        (books: one-sided or crossed, a price level without a size); None: every event is usable."""
        return self._kind.unusable(prepared)

    # -- offline ---------------------------------------------------------------------------------------------------
    def predict(self, data: Any = None, batch_size: int = 256) -> Predictions:
        """The model on every window of raw data: a :class:`Feed`, an array ``(channels, time)`` of raw events,
        or a source for :meth:`read` (default: the run's own data). Windows end at steps ``window - 1`` on; those
        holding an event the run was not trained to read (see :meth:`unusable`) are left out."""
        feed = data if isinstance(data, Feed) else self._feed_of(data)
        if len(feed) < self.window:
            raise ValueError(f"the run's model needs at least {self.window} events for one window; got {len(feed)}")
        kept = usable_windows(feed.usable, len(feed), self.window).nonzero().flatten()
        if len(kept) == 0:
            raise ValueError(
                f"no window of {self.window} events that the run can read: every one holds an event training never "
                f"served ({self._kind.event_features}: one-sided or crossed books, levels without a size)"
            )
        inputs = self.inputs(np.asarray(feed.raw, dtype=np.float64).T)  # (C, T)
        windows = inputs.unfold(1, self.window, 1).transpose(0, 1)  # (N, C, window), a view
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(kept), batch_size):
                chosen = windows[kept[start : start + batch_size]]  # (n, C, window)
                outputs.append(window_output(self.model(chosen), self.task))
        at = kept + (self.window - 1)
        return Predictions(
            torch.cat(outputs),
            self.task,
            feed.rows[at],
            None if feed.targets is None else feed.targets[at],
            None if feed.labelled is None else feed.labelled[at],
        )

    def _feed_of(self, data: Any) -> Feed:
        if isinstance(data, (np.ndarray, Tensor)):
            prepared = self.prepare(np.asarray(data).T)  # (T, C)
            unusable = self.unusable(prepared)
            raw = torch.as_tensor(prepared.T.copy())  # (C, T)
            return Feed(
                raw, torch.arange(raw.shape[-1]), usable=None if unusable is None else torch.from_numpy(~unusable)
            )
        return self.read(data)

    # -- live ------------------------------------------------------------------------------------------------------
    def stream(self, batch_size: int = 1, backend: Backend = "auto") -> LiveStream:
        """Raw events in, predictions out, for ``batch_size`` independent feeds (see :class:`LiveStream`).

        Args:
            backend: of the causal stream (see :func:`dilated.stream`): ``"auto"`` compiles it where it can.
        """
        if self._engine is None:
            self._engine = choose_engine(self.model, self.channels, self.window, self.task, backend)
        name, parity = self._engine
        engine = make_engine(name, self.model, batch_size, self.window, backend)
        return LiveStream(self, engine, name, parity, batch_size)


class LiveStream:
    """Raw events of ``batch_size`` independent feeds in, one prediction per feed out once a window is full.

    An event the run was not trained to read (:meth:`Predictor.unusable`: a one-sided or crossed book) is stepped
    as the training mean, and the predictions of the ``window`` windows that hold it are withheld (NaN, not
    :attr:`Predictions.valid`); the feed then goes on.

    Attributes:
        engine: ``"stream"``, ``"window"`` or ``"recompute"`` (see the module docstring).
        parity: the largest difference from ``model(window)`` measured when the engine was chosen.
        steps: events stepped so far.
    """

    def __init__(self, predictor: Predictor, engine: StepEngine, name: Engine, parity: float, batch_size: int) -> None:
        self.predictor, self._engine, self.engine, self.parity = predictor, engine, name, parity
        self.batch_size = batch_size
        self.steps = 0
        self._previous: np.ndarray | None = None  # (B, C): the last prepared event of each feed
        self._last_unusable = np.full(batch_size, -predictor.window)  # (B,): each feed's last unusable event
        self._withheld_until = -1  # the last step whose window holds an unusable event of some feed

    def step(self, events: np.ndarray | Tensor | Sequence[Sequence[float]]) -> Predictions | None:
        """One raw event per feed ``(batch, channels)``: :class:`Predictions` for the windows ending at it, or
        None before the first window is full."""
        events = np.asarray(events, dtype=np.float64)
        if events.ndim != 2 or len(events) != self.batch_size:
            raise ValueError(
                f"expected one event per feed: ({self.batch_size}, {self.predictor.channels}), got "
                f"{tuple(events.shape)}"
            )
        rows = self.predictor.prepare(events[:, None, :], self._previous)[:, 0]
        z = self.predictor.inputs(rows[:, None, :], self._previous)[..., 0]  # (B, C)
        self._previous = rows
        unusable = self.predictor.unusable(rows)
        if unusable is not None and unusable.any():
            z[torch.from_numpy(unusable)] = 0.0  # the training mean: no NaN enters the engine's state
            self._last_unusable[unusable] = self.steps
            self._withheld_until = self.steps + self.predictor.window - 1
        out = self._engine.step(z)
        self.steps += 1
        if out is None:
            return None
        output, valid = window_output(out, self.predictor.task), None
        if self.steps - 1 <= self._withheld_until:
            valid = torch.from_numpy(self.steps - 1 - self._last_unusable >= self.predictor.window)
            # out of place: the engines' outputs may be inference tensors
            output = torch.where(valid.reshape(-1, *[1] * (output.dim() - 1)), output, float("nan"))
        return Predictions(output, self.predictor.task, torch.full((len(rows),), self.steps - 1), valid=valid)


def load_run(path: str | Path, checkpoint: Literal["best", "last"] = "best") -> Predictor:
    """A :class:`Predictor` for a run folder (its ``best`` or ``last`` checkpoint) or a checkpoint folder in one."""
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last'; got {checkpoint!r}")
    run, folder = locate(path)
    if folder is None:
        folder = run.best_checkpoint() if checkpoint == "best" else run.latest_checkpoint()
        if folder is None:
            raise ValueError(
                f"{run.path}: no usable checkpoint (none written yet, or all damaged): train the run "
                "first (dilated train) or give a checkpoint folder"
            )
    return Predictor(run, folder)
