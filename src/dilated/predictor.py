"""From a trained run to predictions on raw data, offline and live: :func:`load_run`.

    predictor = dilated.load_run("runs/demo")            # its best checkpoint, the model in eval mode
    offline = predictor.predict(("message.csv", "orderbook.csv"))   # every window of a LOBSTER file pair
    live = predictor.stream(batch_size=2)                 # two independent feeds
    for events in feed():                                 # (2, 40) raw orderbook rows, one event per feed
        out = live.step(events)                           # None until a window is full, then Predictions
        if out is not None:
            print(out.labels, out.probabilities)          # (2,) class names, (2, 3) probabilities

A run folder holds what inference needs: the model (``config.yaml`` and a checkpoint), the input normalisation and
the task (``metrics.json``'s ``data``), the window. Raw data is read as the run's data source reads it (LOBSTER
snapshots with empty levels filled, table rows as float32), z-scored with the training statistics in float64 as
training did, so ``predict(data)`` equals ``dilated predict`` on the same data. Every streamed prediction equals
``predict`` for the same window within :data:`PARITY`; the stream runs on the first engine that applies, checked
against ``model(window)`` on random windows when it is chosen:

* ``"stream"``: a causal model whose receptive field fits in its window (TCN, WaveNet): :func:`dilated.stream`,
  one step per event whatever the receptive field;
* ``"window"``: a causal conv module followed by a stage over the whole window (TransLOB):
  :class:`dilated.WindowStream`;
* ``"recompute"``: any other model (DeepLOB's LSTM, a TCN whose receptive field exceeds its window):
  ``model(window)`` on the last window at every event.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from dilated.analysis import geometry_of
from dilated.data import (
    LOBSTER_EMPTY_ASK,
    LOBSTER_EMPTY_BID,
    bundled_lobster_sample,
    fill_empty_levels,
    movement_labels,
    read_lobster,
    read_table,
    smoothed_returns,
    table_dataset,
)
from dilated.models import build_model
from dilated.streaming import Backend, Stream, StreamEngine, WindowStream, stream
from dilated.training.checkpoints import load_weights
from dilated.training.config import data_override, read_data
from dilated.training.objective import LOB_CLASSES, Task, align_output, predictions
from dilated.training.runs import RunDir, locate
from dilated.training.sources import build_splits

if TYPE_CHECKING:
    import pandas as pd

Engine = Literal["stream", "window", "recompute"]
PARITY = 1e-5  # largest difference allowed between a streamed output and model(window)
_CHECK_WINDOWS = 8  # windows after the first on which an engine is checked against model(window)


@dataclass(frozen=True)
class Normalisation:
    """The per-feature z-score ``(x - mean) / std`` of the training inputs (mean 0, std 1 where there was none).

    Attributes:
        mean, std: ``(channels,)`` float64.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any] | None, channels: int) -> Normalisation:
        """From ``metrics.json``'s ``data.normalisation`` (``feature_mean``, ``feature_std``), or none."""
        if stats is None:
            return cls(np.zeros(channels), np.ones(channels))
        return cls(np.array(stats["feature_mean"], dtype=np.float64), np.array(stats["feature_std"], dtype=np.float64))

    def __call__(self, raw: np.ndarray | Tensor) -> Tensor:
        """``(..., channels, time)`` raw values -> float32 z-scores (computed in float64, as training did)."""
        z = (np.asarray(raw, dtype=np.float64) - self.mean[:, None]) / self.std[:, None]
        return torch.from_numpy(z.astype(np.float32))


@dataclass(frozen=True)
class Feed:
    """A recorded feed as a live one delivers it: one raw event (or table row) per step.

    Attributes:
        raw: ``(channels, time)`` raw features, read as the run's data source reads them.
        rows: ``(time,)`` int64, each step's row in its file (the ``sample`` column of ``dilated predict``).
        targets: ``(time,)`` what the window ending at each step should predict (class id, or the value in the
            data's units), where ``labelled``; None for data without targets.
        labelled: ``(time,)`` bool.
    """

    raw: Tensor
    rows: Tensor
    targets: Tensor | None = None
    labelled: Tensor | None = None

    def __len__(self) -> int:
        return self.raw.shape[-1]


@dataclass(frozen=True)
class Predictions:
    """Predictions for windows, in the run's terms.

    Attributes:
        output: the model's output for each window: ``(n, classes)`` logits, or ``(n,)`` for regression (z-scored
            where training z-scored the target).
        task: what the output means.
        steps: ``(n,)`` int64, the row of each window's last step.
        targets, labelled: ``(n,)`` the windows' targets where known (see :class:`Feed`), or None.
    """

    output: Tensor
    task: Task
    steps: Tensor
    targets: Tensor | None = None
    labelled: Tensor | None = None

    def __len__(self) -> int:
        return len(self.output)

    @property
    def probabilities(self) -> Tensor:
        """``(n, classes)`` class probabilities (classification)."""
        self._need("classification", "probabilities")
        return torch.softmax(self.output.float(), dim=1)

    @property
    def labels(self) -> list[str]:
        """The predicted class name of each window (classification)."""
        self._need("classification", "labels")
        return [self.task.class_names[i] for i in predictions(self.output, self.task).tolist()]

    @property
    def forecasts(self) -> Tensor:
        """``(n,)`` forecasts in the data's units (regression)."""
        self._need("regression", "forecasts")
        return predictions(self.output, self.task)

    def _need(self, kind: str, what: str) -> None:
        if self.task.kind != kind:
            raise ValueError(f"{what} exist for {kind} runs; this run's task is {self.task.kind}")


# ---------------------------------------------------------------------------------------------------- data kinds


class _DataKind(Protocol):
    """How one ``data.kind`` reads raw files and prepares raw events the way its training data was prepared."""

    def read(self, source: Any, by: str | None) -> dict[Hashable, Feed]: ...

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray: ...


class _LobsterData:
    """LOBSTER message/orderbook pairs; an event is an orderbook row (4 values per level, prices x 10000)."""

    def __init__(self, data: Mapping[str, Any], alpha: float) -> None:
        self.data, self.alpha = data, alpha

    def read(self, source: Any, by: str | None) -> dict[Hashable, Feed]:
        if by is not None:
            raise ValueError(f"--by {by}: one LOBSTER file pair holds one instrument; --by splits table files")
        message, orderbook = self._files(source)
        book = read_lobster(message, orderbook, levels=self.data["levels"])
        labels = torch.from_numpy(movement_labels(smoothed_returns(book.mid, self.data["horizon"]), self.alpha))
        raw = torch.from_numpy(book.snapshots.T.copy())  # (4 * levels, events) float64
        return {None: Feed(raw, torch.arange(len(book)), labels, labels >= 0)}

    def _files(self, source: Any) -> tuple[Any, Any]:
        if source is None:
            data = self.data
        elif isinstance(source, (tuple, list)) and len(source) == 2:
            return source[0], source[1]
        elif str(source).lower().endswith((".yaml", ".yml")):
            data = _override(self.data, str(source))
        else:
            return _lobster_pair(Path(source))
        if data["message"] is None:
            return bundled_lobster_sample()
        return data["message"], data["orderbook"]

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Empty levels filled; ``previous`` ``(..., channels)``: each book's last prepared event before ``rows``."""
        if not ((rows == LOBSTER_EMPTY_ASK) | (rows == LOBSTER_EMPTY_BID)).any():  # a full book: nothing to fill
            return rows
        if previous is None:
            return fill_empty_levels(rows, "the feed's first event")
        return fill_empty_levels(np.concatenate([previous[..., None, :], rows], axis=-2))[..., 1:, :]


def _lobster_pair(path: Path) -> tuple[Path, Path]:
    """A LOBSTER file and its partner by LOBSTER's naming (``..._message_10.csv`` / ``..._orderbook_10.csv``)."""
    name = path.name
    if path.suffix.lower() == ".csv" and "_message_" in name:
        return path, path.with_name(name.replace("_message_", "_orderbook_"))
    if path.suffix.lower() == ".csv" and "_orderbook_" in name:
        return path.with_name(name.replace("_orderbook_", "_message_")), path
    raise ValueError(
        f"{path}: this run reads LOBSTER data: give a LOBSTER message or orderbook file "
        "(TICKER_date_start_end_message_LEVELS.csv or ..._orderbook_LEVELS.csv) or a YAML file with a "
        "'data:' section"
    )


class _TableData:
    """CSV/Parquet tables, one row per time step; an event is a row's feature columns."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.features = list(data["features"] or [data["target"]])

    def read(self, source: Any, by: str | None) -> dict[Hashable, Feed]:
        frame = self._frame(source).reset_index(drop=True)  # row positions: the `sample` ids
        if by is None:
            return {None: self._feed(frame)}
        if by not in frame.columns:
            raise ValueError(f"--by {by}: no such column; the columns are {list(frame.columns)}")
        return {key: self._feed(group) for key, group in frame.groupby(by, sort=False)}

    def _frame(self, source: Any) -> pd.DataFrame:
        if source is None:
            return read_table(self.data["path"])
        if isinstance(source, (str, Path)):
            return read_table(
                _override(self.data, str(source))["path"] if str(source).lower().endswith((".yaml", ".yml")) else source
            )
        return source

    def _feed(self, frame: pd.DataFrame) -> Feed:
        data = self.data
        windows = table_dataset(frame, data["target"], self.features, data["window"], data["horizon"], data["task"])
        labelled = torch.zeros(windows.features.shape[1], dtype=torch.bool)
        labelled[windows.ends] = True
        return Feed(windows.features, torch.tensor(frame.index.to_numpy()), windows.targets, labelled)

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Rows rounded to float32, as a table's windows hold them."""
        return rows.astype(np.float32)


class _ArrayData:
    """Data kinds without raw files to replay (FI-2010 files hold normalised features; synthetic tasks): arrays."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def read(self, source: Any, by: str | None) -> dict[Hashable, Feed]:
        raise ValueError(
            f"this run was trained on {self.kind} data: give its features as an array (channels, "
            "time); files are read for lobster and table runs"
        )

    def prepare(self, rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        return rows


def _task(config: Mapping[str, Any], info: Mapping[str, Any]) -> Task:
    """The run's task from its config and ``metrics.json``'s ``data`` (no data needs to be read)."""
    data = config["data"]
    if data["kind"] == "copy_memory":
        raise ValueError(
            "this run predicts every step of a sequence (copy_memory), not a window: stream its model "
            "with dilated.stream"
        )
    if data["kind"] in ("lobster", "fi2010"):
        return Task("classification", len(LOB_CLASSES), LOB_CLASSES)
    if data.get("task") == "classification":
        return Task("classification", len(info["class_counts"]["train"]))
    stats = info.get("normalisation") or {}
    scale = {k: stats[k] for k in ("target_mean", "target_std") if k in stats}
    return Task("regression", **scale)


# ---------------------------------------------------------------------------------------------------- predictor


class Predictor:
    """A trained run ready for inference on raw data (see the module docstring); made by :func:`load_run`.

    Attributes:
        model: the plain ``nn.Module``, in eval mode, on the CPU.
        task: the class names (``task.class_names``), or the target's z-score for regression (forecasts are given
            in the data's units).
        normalisation: the training z-score of the inputs.
        window: events per input window.
        receptive_field: events each output (or each feature entering a global stage) depends on, where the
            model declares it.
        channels: raw features per event.
        run, checkpoint, config: where it came from.
    """

    def __init__(self, run: RunDir, checkpoint: Path) -> None:
        self.run, self.checkpoint = run, checkpoint
        self.config = config = run.config().to_dict()
        data = config["data"]
        info = run.metrics().get("data") or {}
        self.task = _task(config, info)
        self.model = build_model(config["model"], **config["options"])
        self.model.load_state_dict(load_weights(checkpoint))
        self.model.eval()
        self.window = int(data.get("window") or data["seq_len"])
        self.receptive_field = getattr(self.model, "receptive_field", None)
        options = config["options"]
        self.channels = int(next(options[k] for k in ("input_channels", "num_features") if k in options))
        stats = info.get("normalisation")
        if stats is None and data["kind"] == "lobster":  # a run trained before the statistics were stored
            stats = build_splits(read_data(data), progress=False).info["normalisation"]
        self.normalisation = Normalisation.from_stats(stats, self.channels)
        kinds: dict[str, Callable[[], _DataKind]] = {
            "lobster": lambda: _LobsterData(data, info.get("alpha", data["alpha"])),
            "table": lambda: _TableData(data),
        }
        self._data = kinds.get(data["kind"], lambda: _ArrayData(data["kind"]))()
        self._engine: tuple[Engine, float] | None = None

    def __repr__(self) -> str:
        return (
            f"Predictor({self.config['model']}, {self.config['data']['kind']} data, window {self.window}, "
            f"checkpoint {self.checkpoint.name})"
        )

    # -- reading and preparing raw data ------------------------------------------------------------------------------
    def read(self, source: Any = None) -> Feed:
        """A recorded feed in the run's data format (default: the run's own data).

        Args:
            source: for LOBSTER runs a ``(message, orderbook)`` pair or one of the two files (its partner found by
                LOBSTER's naming); for table runs a ``.csv``/``.parquet`` file or a DataFrame; for both a YAML file
                with a ``data:`` section (as ``dilated predict --data``).
        """
        return self._data.read(source, None)[None]

    def read_many(self, source: Any, by: str) -> dict[Hashable, Feed]:
        """One feed per value of the column ``by`` (instruments of one table file), in order of appearance."""
        return self._data.read(source, by)

    def prepare(self, rows: np.ndarray | Tensor, previous: np.ndarray | None = None) -> np.ndarray:
        """Raw rows ``(..., time, channels)`` as the run's data source prepares them (LOBSTER: empty levels filled
        from ``previous`` ``(..., channels)``, each book's last prepared event; tables: float32)."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim < 2 or rows.shape[-1] != self.channels:
            raise ValueError(
                f"the run's model takes {self.channels} features per event ({self._describe()}); got "
                f"{rows.shape[-1] if rows.ndim else 0} (raw data of shape {tuple(rows.shape)})"
            )
        return self._data.prepare(rows, previous)

    def _describe(self) -> str:
        data = self.config["data"]
        if data["kind"] == "lobster":
            return f"LOBSTER, {data['levels']} levels x ask price, ask size, bid price, bid size"
        if data["kind"] == "table":
            return "table columns " + ", ".join(data["features"] or [data["target"]])
        return f"{data['kind']} data"

    # -- offline ---------------------------------------------------------------------------------------------------
    def predict(self, data: Any = None, batch_size: int = 256) -> Predictions:
        """The model on every window of raw data: a :class:`Feed`, an array ``(channels, time)`` of raw events,
        or a source for :meth:`read` (default: the run's own data). Windows end at steps ``window - 1`` on."""
        feed = data if isinstance(data, Feed) else self._feed_of(data)
        if len(feed) < self.window:
            raise ValueError(f"the run's model needs at least {self.window} events for one window; got {len(feed)}")
        inputs = self.normalisation(feed.raw)  # (C, T)
        windows = inputs.unfold(1, self.window, 1).transpose(0, 1)  # (N, C, window), a view
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(windows), batch_size):
                outputs.append(self._window_output(self.model(windows[start : start + batch_size].contiguous())))
        ends = slice(self.window - 1, None)
        return Predictions(
            torch.cat(outputs),
            self.task,
            feed.rows[ends],
            None if feed.targets is None else feed.targets[ends],
            None if feed.labelled is None else feed.labelled[ends],
        )

    def _feed_of(self, data: Any) -> Feed:
        if isinstance(data, (np.ndarray, Tensor)):
            raw = torch.as_tensor(self.prepare(np.asarray(data).T).T.copy())  # (C, T)
            return Feed(raw, torch.arange(raw.shape[-1]))
        return self.read(data)

    def _window_output(self, output: Tensor) -> Tensor:
        """``(B, classes)`` or ``(B,)``: the output for each window (its last step, for per-step outputs)."""
        placeholder = torch.zeros(len(output), dtype=torch.long if self.task.is_classification else torch.float32)
        return align_output(output, placeholder, self.task)

    # -- live ------------------------------------------------------------------------------------------------------
    def stream(self, batch_size: int = 1, backend: Backend = "auto") -> LiveStream:
        """Raw events in, predictions out, for ``batch_size`` independent feeds (see :class:`LiveStream`).

        Args:
            backend: of the causal stream (see :func:`dilated.stream`): ``"auto"`` compiles it where it can.
        """
        if self._engine is None:
            self._engine = self._choose_engine(backend)
        name, parity = self._engine
        return LiveStream(self, self._make_engine(name, batch_size, backend), name, parity, batch_size)

    def _choose_engine(self, backend: Backend) -> tuple[Engine, float]:
        """The first engine that builds and equals ``model(window)`` within :data:`PARITY` on random windows."""
        inputs = torch.randn(1, self.channels, self.window + _CHECK_WINDOWS, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            expected = self._window_output(self.model(inputs.unfold(2, self.window, 1)[0].transpose(0, 1)))
        for name in ("stream", "window"):
            try:
                engine = self._make_engine(name, 1, backend)
                steps = [engine.step(inputs[..., t]) for t in range(inputs.shape[-1])]
                streamed = torch.cat([self._window_output(_filled(out)) for out in steps[self.window - 1 :]])
            except Exception:  # noqa: BLE001 - the model lacks this engine's structure (a refused layer, a module
                continue  # that its forward does not call on the input, ...): the next engine is tried
            error = float((streamed - expected).abs().max())
            if error <= PARITY:
                return name, error
        return "recompute", 0.0

    def _make_engine(self, name: Engine, batch_size: int, backend: Backend) -> _StepEngine:
        if name == "stream":
            if self.receptive_field is not None and self.receptive_field > self.window:
                raise ValueError(f"receptive field {self.receptive_field} > window {self.window}")
            return _CausalEngine(stream(self.model, batch_size, backend), self.window)
        if name == "window":
            for child, module in self.model.named_children():
                if _holds_causal_conv(module):
                    try:
                        Stream(module, 1)
                    except ValueError:
                        continue
                    return WindowStream(self.model, batch_size, self.window, conv=child, backend=backend)
            raise ValueError("no causal conv module to stream")
        return _Recompute(self.model, batch_size, self.window)


def _holds_causal_conv(module: nn.Module) -> bool:
    """Whether any layer below ``module`` mixes time steps like a conv (kernel wider than one step)."""
    return any(layer.kind == "conv" and layer.span > 1 for m in module.modules() for layer in geometry_of(m)[0])


def _override(data: Mapping[str, Any], spec: str) -> dict[str, Any]:
    """The run's ``data:`` section with ``dilated evaluate --data SPEC`` applied, as a dict."""
    return data_override(read_data(data), spec).to_dict()


class _StepEngine(Protocol):
    def step(self, x_t: Tensor) -> Tensor | None: ...


def _filled(output: Tensor | None) -> Tensor:
    """A step's output once the engine's first window is full (None there: the engine is broken)."""
    if output is None:
        raise ValueError("the engine gave no output after a full window")
    return output


class _CausalEngine:
    """:func:`dilated.stream` of a causal model, silent until its first window is full."""

    def __init__(self, engine: StreamEngine, window: int) -> None:
        self.engine, self.window, self.steps = engine, window, 0

    def step(self, x_t: Tensor) -> Tensor | None:
        out = self.engine.step(x_t)
        self.steps += 1
        return out if self.steps >= self.window else None


class _Recompute:
    """``model(window)`` on the last ``window`` events at every step."""

    def __init__(self, model: nn.Module, batch_size: int, window: int) -> None:
        self.model, self.window, self.steps = model, window, 0
        self.inputs: Tensor | None = None  # (B, C, window), oldest first

    def step(self, x_t: Tensor) -> Tensor | None:
        if self.inputs is None:
            self.inputs = x_t.new_zeros(*x_t.shape, self.window)
        self.inputs = torch.cat([self.inputs[..., 1:], x_t.unsqueeze(-1)], dim=-1)
        self.steps += 1
        if self.steps < self.window:
            return None
        with torch.inference_mode():
            return self.model(self.inputs)


class LiveStream:
    """Raw events of ``batch_size`` independent feeds in, one prediction per feed out once a window is full.

    Attributes:
        engine: ``"stream"``, ``"window"`` or ``"recompute"`` (see the module docstring).
        parity: the largest difference from ``model(window)`` measured when the engine was chosen.
        steps: events stepped so far.
    """

    def __init__(self, predictor: Predictor, engine: _StepEngine, name: Engine, parity: float, batch_size: int) -> None:
        self.predictor, self._engine, self.engine, self.parity = predictor, engine, name, parity
        self.batch_size = batch_size
        self.steps = 0
        self._previous: np.ndarray | None = None  # (B, C): the last prepared event of each feed

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
        self._previous = rows
        out = self._engine.step(self.predictor.normalisation(rows[..., None])[..., 0])
        self.steps += 1
        if out is None:
            return None
        return Predictions(
            self.predictor._window_output(out), self.predictor.task, torch.full((len(rows),), self.steps - 1)
        )


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
