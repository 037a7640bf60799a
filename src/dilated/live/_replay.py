"""Replay a recorded feed event by event through a run's live stream, as it would have run live (`dilated replay`).

    result = replay(dilated.load_run("runs/demo"), check=True)    # the run's own data
    result.difference, result.events_per_second, result.latency_us(99)
    write_replay(result, "predictions.csv")                       # the columns of `dilated predict`

Every event goes through :meth:`dilated.live._predictor.LiveStream.step` (raw data in, prediction out) and its
latency is timed; ``check`` also runs the offline prediction (:meth:`dilated.live._predictor.Predictor.predict`) on
the same feed and reports the largest difference between the model outputs. With ``by``, the instruments of one
table file are streamed together as a batch of streams, each in its own order (instruments that run out repeat
their last event, whose outputs are dropped).
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from dilated._progress import bar_disabled
from dilated.live._engines import PARITY
from dilated.live._feeds import usable_windows
from dilated.live._predictor import Predictions, Predictor
from dilated.training import Feed, Outputs, Task, atomic_write_csv, prediction_rows


@dataclass
class Replay:
    """What a replay produced and measured.

    Attributes:
        streamed: the streamed predictions of each feed, by instrument (``None``: no ``by``).
        engine: the live stream's engine (``"stream"``, ``"window"`` or ``"recompute"``).
        events: raw events replayed (all feeds).
        step_ns: ``(steps,)`` wall time of each batch step (one event of every feed), in nanoseconds.
        withheld: windows whose prediction was withheld: they hold an event the run was not trained to read (see
            :class:`dilated.live._predictor.LiveStream`); left out of ``streamed``.
        difference: largest difference between streamed and offline model outputs (with ``check``), else None.
        compared: windows compared by the check.
        by: the column that split the file into instruments, or None.
    """

    streamed: dict[Hashable, Predictions]
    engine: str
    events: int
    step_ns: np.ndarray
    withheld: int = 0
    difference: float | None = None
    compared: int = 0
    by: str | None = None

    @property
    def events_per_second(self) -> float:
        return self.events / max(self.step_ns.sum() / 1e9, 1e-12)

    def latency_us(self, percentile: float) -> float:
        """A percentile of the per-step latency, in microseconds."""
        return float(np.percentile(self.step_ns, percentile) / 1e3)

    @property
    def passed(self) -> bool:
        """Whether the check (if run) found every streamed output within :data:`dilated.live._engines.PARITY`."""
        return self.difference is None or self.difference <= PARITY


def replay(
    predictor: Predictor, source: Any = None, by: str | None = None, check: bool = False, progress: bool = True
) -> Replay:
    """Stream a recorded feed through ``predictor.stream`` (see the module docstring).

    Args:
        source: what :meth:`Predictor.read` takes (default: the run's own data).
        by: a column of a table file naming the instrument of each row.
        check: also predict offline and measure the largest difference.
    """
    feeds: dict[Hashable, Feed] = predictor.read_many(source, by) if by is not None else {None: predictor.read(source)}
    keys = list(feeds)
    lengths = [len(feeds[k]) for k in keys]
    short = [k for k, n in zip(keys, lengths) if n < predictor.window]
    if short:
        name = f"instrument {short[0]!r}" if by is not None else "the feed"
        raise ValueError(
            f"{name} has {lengths[keys.index(short[0])]} events; the run's model needs at least "
            f"{predictor.window} for one window"
        )
    events = _lockstep(feeds, keys, max(lengths))  # (steps, feeds, channels)
    live = predictor.stream(len(keys))
    step_ns = np.empty(len(events), dtype=np.int64)
    outputs: list[Tensor] = []
    for t in tqdm(range(len(events)), desc="replaying", unit="event", disable=bar_disabled(progress), leave=False):
        started = time.perf_counter_ns()
        out = live.step(events[t])
        step_ns[t] = time.perf_counter_ns() - started
        if out is not None:
            outputs.append(out.output)
    stacked = torch.stack(outputs, dim=1)  # (feeds, windows, ...)
    streamed = {
        key: _windows(feeds[key], stacked[i, : n - predictor.window + 1], predictor)
        for i, (key, n) in enumerate(zip(keys, lengths))
    }
    withheld = sum(n - predictor.window + 1 - len(streamed[key]) for key, n in zip(keys, lengths))
    result = Replay(streamed, live.engine, sum(lengths), step_ns, withheld, by=by)
    if check:
        offline = {key: predictor.predict(feeds[key]) for key in keys}
        result.difference = max(float((streamed[k].output - offline[k].output).abs().max()) for k in keys)
        result.compared = sum(len(p) for p in offline.values())
    return result


def _lockstep(feeds: dict[Hashable, Feed], keys: list[Hashable], steps: int) -> np.ndarray:
    """``(steps, feeds, channels)`` raw events; a feed that runs out repeats its last event."""
    events = np.empty((steps, len(keys), feeds[keys[0]].raw.shape[0]), dtype=np.float64)
    for i, key in enumerate(keys):
        raw = np.asarray(feeds[key].raw, dtype=np.float64).T  # (time, channels)
        events[: len(raw), i] = raw
        events[len(raw) :, i] = raw[-1]
    return events


def _windows(feed: Feed, output: Tensor, predictor: Predictor) -> Predictions:
    """The streamed outputs of ``feed``'s windows, those that hold an unusable event (withheld) left out, as
    :meth:`Predictor.predict` leaves them out."""
    kept = usable_windows(feed.usable, len(feed), predictor.window).nonzero().flatten()
    at = kept + (predictor.window - 1)
    return Predictions(
        output[kept],
        predictor.task,
        feed.rows[at],
        None if feed.targets is None else feed.targets[at],
        None if feed.labelled is None else feed.labelled[at],
    )


def replay_rows(result: Replay) -> tuple[list[str], list[list]]:
    """CSV header and rows with the columns of ``dilated predict`` (after the ``by`` column, if any); windows
    whose target lies beyond the feed have an empty target."""
    header: list[str] = []
    rows: list[list] = []
    for key, predicted in result.streamed.items():
        task = predicted.task
        # replayed feeds come from Predictor.read, which labels every step
        assert predicted.targets is not None and predicted.labelled is not None
        targets = _model_targets(torch.where(predicted.labelled, predicted.targets, 0), task)
        header, part = prediction_rows(Outputs(predicted.output, targets), task, predicted.steps.tolist())
        for row, known in zip(part, predicted.labelled.tolist()):
            if not known:
                row[1] = ""
        rows += [[key, *row] for row in part] if result.by is not None else part
    return ([result.by, *header] if result.by is not None else header), rows


def _model_targets(targets: Tensor, task: Task) -> Tensor:
    """Targets as the model was trained on them (z-scored regression targets), for :func:`prediction_rows`."""
    if task.is_classification:
        return targets.long()
    return ((targets.double() - task.target_mean) / task.target_std).float()


def write_replay(result: Replay, path: str | Path) -> Path:
    """Write :func:`replay_rows` as a CSV file (atomically)."""
    atomic_write_csv(path, *replay_rows(result))
    return Path(path)
