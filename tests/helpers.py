"""Helpers shared by several test files (a test file never imports another test file; tests/ is on the path)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import dilated
from dilated.data import Book
from dilated.models import DataShape
from dilated.training._checkpoints import MANIFEST_FILE, STATE_FILE, checkpoint_name, save_checkpoint
from dilated.training._config import TrainConfig
from dilated.training._runs import RunDir

# ------------------------------------------------------------------------------------- FI-2010 files, written small

TRAIN = "Train_Dst_NoAuction_ZScore_CF_7.txt"
TEST_DAYS = {7: 120, 8: 130, 9: 140}  # fold -> events in Test_..._CF_<fold> (days 8, 9, 10)


def book_values(events: int, day: int) -> np.ndarray:
    """(events, 40): book row r of event j holds day * 1000 + j + r / 8 (exact in 8 significant digits)."""
    return day * 1000 + np.arange(events)[:, None] + np.arange(40)[None, :] / 8


def label_values(events: int, day: int) -> np.ndarray:
    """(events, 5) in {1, 2, 3}: a different pattern per label row, so the horizon mapping shows."""
    j = np.arange(events)[:, None] + day
    return 1 + (j // (np.arange(5)[None, :] + 1)) % 3


def fi2010_text(book: np.ndarray, labels: np.ndarray, seed: int = 0) -> list[str]:
    """The 149 rows of a file as MATLAB `save -ascii` writes them (e.g. `   1.0000000e+00`)."""
    handcrafted = np.random.default_rng(seed).normal(size=(104, len(book)))
    rows = np.concatenate([book.T, handcrafted, labels.T])
    return ["".join(f"{v:16.7e}" for v in row) + "\n" for row in rows]


def write_fi2010(path: Path, events: int, day: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(fi2010_text(book_values(events, day), label_values(events, day))))
    return path


# -------------------------------------------------------------------------------------------------------- books


def synthetic_book(events: int = 3000, seed: int = 0) -> Book:
    """A random-walk book: mid moves by whole ticks, 3 levels a side."""
    rng = np.random.default_rng(seed)
    mid = 100 + np.cumsum(rng.choice([-0.5, 0, 0, 0.5], events))
    values = np.zeros((events, 12))
    for level in range(3):
        values[:, 4 * level] = mid + 0.5 + level
        values[:, 4 * level + 2] = mid - 0.5 - level
        values[:, 4 * level + 1] = rng.integers(1, 10, events)
        values[:, 4 * level + 3] = rng.integers(1, 10, events)
    return Book(np.arange(events, dtype=np.int64) * 10**6, values, "synthetic", "test")


def book_dataset(root: Path, instrument: str, days: int, events: int, seed: int = 0) -> Path:
    """A dataset folder as ``dilated data convert -o DIR/`` lays it out, of :func:`synthetic_book` days (3 levels,
    ``events`` per day, a seed per day) from 2024-01-02 12:00 UTC on, written directly (no feed to convert)."""
    from dilated.data import write_book

    for day in range(days):
        book = synthetic_book(events, seed * 1000 + day)
        ts = FIRST_DAY + day * DAY_NS + book.ts
        date = np.datetime64(int(ts[0]), "ns").astype("datetime64[D]")
        folder = root / f"instrument={instrument}" / f"date={date}"
        folder.mkdir(parents=True, exist_ok=True)
        write_book(Book(ts, book.values, "synthetic", "test"), folder / f"part-{int(ts[0]):020d}-synthetic.parquet")
    return root


# ---------------------------------------------------------------------------------- checkpoints holding a pickle


class _Exploit:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# ------------------------------------------------------------------------------------------ the shared real data


def _shared_data() -> Path | None:
    """$DILATED_SHARED_DATA, else shared/data next to the checkout or one of its parents (worktrees)."""
    if os.environ.get("DILATED_SHARED_DATA"):
        return Path(os.environ["DILATED_SHARED_DATA"])
    root = Path(__file__).resolve().parent.parent
    return next((p / "shared" / "data" for p in root.parents if (p / "shared" / "data").is_dir()), None)


SHARED = _shared_data()


def shared(relative: str) -> Path:
    """A file of the shared real-data folder, or skip the test (a fresh clone has no ../shared/data)."""
    if SHARED is None or not (SHARED / relative).is_file():
        pytest.skip(f"real data {relative} not found: ../shared/data (or $DILATED_SHARED_DATA) is absent")
    return SHARED / relative


def plant_malicious_state(folder, marker, raw_pickle=False):
    """Replace a checkpoint's state file by a pickle that would create ``marker``, with a manifest forged to match
    (so that only the refusal to unpickle stands between the file and the shell)."""
    evil = folder / STATE_FILE
    if raw_pickle:
        evil.write_bytes(pickle.dumps({"payload": _Exploit(marker)}))
    else:
        torch.save({"epoch": 1, "loops": _Exploit(marker)}, evil)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    data = evil.read_bytes()
    manifest["files"][STATE_FILE] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


# ------------------------------------------------------------------------------------------------ model checks


def assert_causal(module, x: torch.Tensor, t: int) -> None:
    """Outputs up to ``t`` are bit-identical when the inputs after ``t`` change; some later output changes."""
    with torch.no_grad():
        y = module(x)
        x2 = x.clone()
        x2[..., t + 1 :] = torch.randn_like(x2[..., t + 1 :]) * 3
        y2 = module(x2)
    assert torch.equal(y[..., : t + 1], y2[..., : t + 1])
    assert not torch.equal(y[..., t + 1 :], y2[..., t + 1 :])


def overfit(
    model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, loss_fn: Callable, lr: float, steps: int = 300
) -> tuple[float, float]:
    """Adam on one fixed batch until the loss falls below a tenth of its first value; (first, last) losses."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(x), target)
        losses.append(loss.item())
        if losses[-1] < losses[0] / 10:
            break
        loss.backward()
        optimizer.step()
    return losses[0], losses[-1]


# ------------------------------------------------------------------------------------------- run folders, data


def prices_table(path: Path, rows: int = 500) -> Path:
    """Two instruments' prices and volumes, interleaved, in data units far from z-scores."""
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    frame = pd.DataFrame(
        {
            "symbol": np.where(t % 3 == 0, "B", "A"),
            "price": 150 + np.cumsum(rng.normal(0, 0.5, rows)) + 3 * np.sin(t / 7),
            "volume": rng.integers(100, 5000, rows),
        }
    )
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def untrained_run(
    folder: Path, data: dict, checkpoint: bool = True, model: str = "tcn", options: dict | None = None
) -> Path:
    """A run folder as `dilated train` writes it (resolved config with the options the data fixes, metrics.json's
    data), with the initial weights as its one checkpoint: for tests that need a run but not a trained one."""
    tcn = {"num_channels": [4], "kernel_size": 2}
    config = TrainConfig.from_dict({"model": model, "options": tcn if options is None else options, "data": data})
    kind = config.data.kind
    classes = 3 if kind in ("lobster", "book") else None
    channels = {"lobster": 40, "book": 4 * getattr(config.data, "levels", 0), "adding": 2, "copy_memory": 1}.get(
        kind, 1
    )
    mean, std = ("mean", "std") if kind == "book" else ("feature_mean", "feature_std")  # as each kind stores them
    length = getattr(config.data, "window", None) or getattr(config.data, "seq_len", None) or 20
    config = config.fitted(DataShape(channels, length, classes, per_step=kind == "copy_memory"))
    run = RunDir.create(folder, config)
    run.update_metrics(
        data={
            "kind": kind,
            "alpha": 1e-4,
            "threshold": 1e-4,
            "class_counts": {"train": [1, 1, 1]},
            "normalisation": {mean: [0.0] * channels, std: [1.0] * channels},
        }
    )
    if checkpoint:
        weights = dilated.build_model(model, **config.model.options).state_dict()
        save_checkpoint(run.checkpoints / checkpoint_name(1, 1), weights, {"epoch": 1})
    return folder


# -- the `dilated` command in a subprocess -------------------------------------------------------------------------
CLI_ENV = {
    **{k: v for k, v in os.environ.items() if k != "DILATED_RUN_DIR"},
    "OMP_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
}


def dilated_cli(*args: str, cwd: Path | str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m dilated.cli ARGS`` in ``cwd``, one thread, output captured, never raising on its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "dilated.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=CLI_ENV,
        timeout=timeout,
        check=False,
    )


# -- synthetic multi-day feeds ---------------------------------------------------------------------------------------
DAY_NS = 86_400 * 10**9
FIRST_DAY = 1_704_196_800 * 10**9  # 2024-01-02 12:00 UTC


def mbo_days(folder: Path, symbol: str, days: int, messages: int, seed: int = 0) -> tuple[list[Path], Path]:
    """One synthetic Databento MBO stream of ``days * messages`` messages cut into ``days`` day files (at event
    ends, day k moved k days later: 2024-01-02, -03, ...), and the same records as one file.

    Returns: the day files (named ``SYMBOL-YYYYMMDD.mbo.dbn``) and the whole file (``SYMBOL-all.mbo.dbn``).
    """
    import struct

    from dilated.data import synthetic_feed
    from dilated.data._dbn_records import DbnRecords
    from dilated.data._synthetic_feeds import mbo_header

    folder.mkdir(parents=True, exist_ok=True)
    raw = synthetic_feed("databento-mbo", folder / f".{symbol}-raw.dbn", days * messages, seed, start=FIRST_DAY)
    with DbnRecords(raw) as reader:
        records = np.concatenate(list(reader.chunks(1 << 20))).copy()
    raw.unlink()
    ends = np.flatnonzero(records["flags"] & 0x80) + 1  # F_LAST: the end of an event
    cuts = [0, *(int(ends[np.searchsorted(ends, k * messages)]) for k in range(1, days)), len(records)]
    for k in range(days):
        for name in ("ts_recv", "ts_event"):
            records[name][cuts[k] : cuts[k + 1]] += k * DAY_NS

    def write(path: Path, part: np.ndarray, start: int) -> Path:
        header = mbo_header(symbol, start)
        assert struct.unpack("<I", header[4:8])[0] + 8 == len(header)
        path.write_bytes(header + part.tobytes())
        return path

    files = []
    for k in range(days):
        day = str(np.datetime64(FIRST_DAY + k * DAY_NS, "ns"))[:10].replace("-", "")
        start = FIRST_DAY - 12 * 3600 * 10**9 + k * DAY_NS  # midnight of the day
        files.append(write(folder / f"{symbol}-{day}.mbo.dbn", records[cuts[k] : cuts[k + 1]], start))
    whole = write(folder / f"{symbol}-all.mbo.dbn", records, FIRST_DAY)
    return files, whole


class HandDelay(torch.nn.Module):
    """A one-step delay written as a cat along time ``(batch, channels, time)``: causal, but not followed by the
    receptive-field analysis (its steps read different paths), so its causality is "unknown"."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[..., :1], x[..., :-1]], -1)
