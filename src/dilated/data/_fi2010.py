"""FI-2010 limit order book benchmark, read from the dataset's own text files.

Source: Ntakaris, Magris, Kanniainen, Gabbouj & Iosifidis (2018), "Benchmark dataset for mid-price forecasting of
limit order book data with machine learning methods", Journal of Forecasting 37(8); data CC BY 4.0 (Fairdata/Etsin).

File format: whitespace-separated text (MATLAB `save -ascii`, e.g. `   1.0000000e+00`), one column per event and
149 rows:
- rows 0-39: the 10-level book, `[ask price, ask volume, bid price, bid volume]` per level, level 1 first;
- rows 40-143: handcrafted features, checked for length only and otherwise ignored;
- rows 144-148: labels 1 (up), 2 (stationary), 3 (down) for five horizons.

Horizons are named here in events. The dataset description gives k = 1, 2, 3, 5, 10 in units of 10 events, while
DeepLOB (Zhang et al. 2019) and TransLOB (Wallbridge 2020) report k = 10, 20, 50, 100 events:

    label row 144 -> 10 events, 145 -> 20, 146 -> 30, 147 -> 50, 148 -> 100

(DeepLOB's code takes `y[:, k]` of the last five rows with k = 4 for 100 events). Labels become int64
0 up / 1 stationary / 2 down (the file's value minus 1).

Standard split, as in DeepLOB: train = `Train_Dst_<NoAuction|Auction>_<ZScore|MinMax|DecPre>_CF_7.txt` (days 1-7),
test = `Test_..._CF_7`, `CF_8`, `CF_9` (days 8, 9, 10) concatenated in that order. As in DeepLOB, windows run across
the joins of the concatenated days (and across the five stocks that FI-2010 stacks one after another within a day).

Windows follow DeepLOB's `data_classification` (see `dilated.data._windows`): sample `i` is events
`[i, i + window)` with the label of event `i + window - 1`, so there are `events - window + 1` samples.

Parsed files are cached as `.npy` (float32 `(events, 45)`: 40 book columns then the 5 label rows) in `.dilated_cache/`
next to the file or in a given folder, keyed by file name, size and modification time; a changed file is parsed again.
"""

from __future__ import annotations

import glob
import os
import tempfile
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from dilated._progress import bar_disabled
from dilated.data._checks import first_non_finite, first_non_number
from dilated.data._windows import WindowDataset

FI2010_HORIZONS = (10, 20, 30, 50, 100)
FI2010_NORMALISATIONS = ("ZScore", "MinMax", "DecPre")
DEFAULT_CACHE_DIR = ".dilated_cache"

_ROWS = 149
_BOOK_ROWS = 40
_LABEL_START = 144
_CACHE_VERSION = 1
_PROGRESS_MIN_BYTES = 32 * 2**20


def find_fi2010_files(
    root: str | Path,
    split: Literal["train", "test"] = "train",
    normalisation: str = "ZScore",
    auction: bool = False,
) -> list[Path]:
    """The files of the standard split below `root`, found by name at any depth (case-insensitively: the official
    zip writes `Zscore` in folder names and `ZScore` in file names)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    if normalisation not in FI2010_NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {FI2010_NORMALISATIONS}; got {normalisation!r}")
    prefix = "Train" if split == "train" else "Test"
    folds = (7,) if split == "train" else (7, 8, 9)
    found: dict[str, list[Path]] = {}
    for path in sorted(Path(root).rglob("*.txt")):
        found.setdefault(path.name.lower(), []).append(path)
    paths = []
    for fold in folds:
        name = f"{prefix}_Dst_{'Auction' if auction else 'NoAuction'}_{normalisation}_CF_{fold}.txt"
        matches = found.get(name.lower(), [])
        if len(matches) != 1:
            raise ValueError(
                f"{root}: {'no file' if not matches else f'{len(matches)} files'} named {name} below it "
                f"{[str(m) for m in matches] if matches else ''}; give the folder the FI-2010 zip was extracted to, "
                "holding one copy of each file"
            )
        paths.append(matches[0])
    return paths


def read_fi2010(
    path: str | Path, cache_dir: str | Path | None = None, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Read one FI-2010 file, through the `.npy` cache.

    Args:
        path: a `Train_...` or `Test_...` text file.
        cache_dir: where to cache the parsed array; default `.dilated_cache/` next to the file (skipped with a
            warning when that folder cannot be written).
        progress: show a tqdm bar while parsing a large file.

    Returns: the book, float32 `(events, 40)`, and the labels, int64 `(events, 5)` in {0 up, 1 stationary, 2 down},
    one column per horizon of `FI2010_HORIZONS`.
    """
    path = Path(path)
    stat = path.stat()
    folder = Path(cache_dir) if cache_dir is not None else path.parent / DEFAULT_CACHE_DIR
    cache_file = folder / f"{path.name}.{stat.st_size}.{stat.st_mtime_ns}.v{_CACHE_VERSION}.npy"
    if cache_file.exists():
        table = np.load(cache_file)
    else:
        table = _parse(path, progress and stat.st_size >= _PROGRESS_MIN_BYTES)
        try:
            _write_cache(table, cache_file, path.name)
        except OSError as exc:
            if cache_dir is not None:
                raise
            warnings.warn(f"cannot cache {path.name} in {folder} ({exc}); pass a writable cache_dir", stacklevel=2)
    return table[:, :_BOOK_ROWS], table[:, _BOOK_ROWS:].astype(np.int64) - 1


def load_fi2010(
    root: str | Path,
    split: Literal["train", "test"] = "train",
    horizon: int = 100,
    window: int = 100,
    normalisation: str = "ZScore",
    auction: bool = False,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> WindowDataset:
    """The standard FI-2010 train or test set as windows.

    Args:
        root: folder holding the extracted files (searched recursively).
        horizon: events ahead, one of `FI2010_HORIZONS`.
        window: events per window (100 in DeepLOB and TransLOB).

    Returns: a `WindowDataset` of `x` float32 `(40, window)` and `y` int64 in {0 up, 1 stationary, 2 down}.
    """
    if horizon not in FI2010_HORIZONS:
        raise ValueError(
            f"unknown FI-2010 horizon {horizon}; use one of {FI2010_HORIZONS} events "
            "(the dataset's k = 1, 2, 3, 5, 10 are in units of 10 events)"
        )
    days = [read_fi2010(p, cache_dir, progress) for p in find_fi2010_files(root, split, normalisation, auction)]
    book = np.concatenate([lob for lob, _ in days])  # (events, 40)
    labels = np.concatenate([y for _, y in days])[:, FI2010_HORIZONS.index(horizon)]
    return WindowDataset(book.T, labels, window, np.arange(window - 1, len(book)), lookahead=horizon)


def _parse(path: Path, progress: bool) -> np.ndarray:
    """Parse the book and label rows into float32 `(events, 45)`, checking the format."""
    kept = []
    width = 0
    row = 0
    with (
        open(path) as lines,
        tqdm(
            total=path.stat().st_size,
            unit="B",
            unit_scale=True,
            desc=f"parsing {path.name}",
            disable=bar_disabled(progress),
        ) as bar,
    ):
        for line in lines:
            bar.update(len(line))
            cells = line.split()
            if not cells:
                continue
            width = width or len(cells)
            if len(cells) != width:
                raise ValueError(
                    f"{path}: row {row} has {len(cells)} values but row 0 has {width} (one per event); the file is "
                    "truncated or damaged: extract it again from the FI-2010 zip"
                )
            if row < _BOOK_ROWS or row >= _LABEL_START:
                kept.append(_parse_row(cells, path, row))
            row += 1
    if row != _ROWS:
        raise ValueError(
            f"{path}: {row} rows, but an FI-2010 file has {_ROWS} (40 book rows, 104 handcrafted features, 5 label "
            "rows; one column per event); the file is truncated or not an FI-2010 file: extract it again"
        )
    table = np.stack(kept, axis=1)  # (events, 45)
    labels = table[:, _BOOK_ROWS:]
    bad = np.argwhere((labels != 1) & (labels != 2) & (labels != 3))
    if len(bad):
        event, offset = bad[0]
        raise ValueError(
            f"{path}: row {_LABEL_START + offset}, column {event} (counted from 0) is {labels[event, offset]}; "
            "label rows 144-148 hold only 1 (up), 2 (stationary) or 3 (down)"
        )
    return table.astype(np.float32)


def _parse_row(cells: list[str], path: Path, row: int) -> np.ndarray:
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        column = first_non_number(cells)
        if column is None:  # numpy refused a cell that float() accepts: keep numpy's own message
            raise
        raise ValueError(
            f"{path}: row {row}, column {column} (counted from 0) is {cells[column]!r}, not a number; "
            "the file is damaged: extract it again from the FI-2010 zip"
        ) from None
    bad = first_non_finite(values)
    if bad is not None:
        raise ValueError(
            f"{path}: row {row}, column {bad[0]} (counted from 0) is {values[bad[0]]}; FI-2010 holds no missing or "
            "infinite values: the file is damaged, extract it again"
        )
    return values


def _write_cache(table: np.ndarray, target: Path, source_name: str) -> None:
    """Save `table` to `target` through a temporary file and `os.replace` (a crash leaves no half-written cache), then
    drop the caches of older versions of `source_name`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=target.name, suffix=".tmp", delete=False) as tmp:
        try:
            np.save(tmp, table)
            tmp.close()
            os.replace(tmp.name, target)
        finally:
            Path(tmp.name).unlink(missing_ok=True)
    for stale in target.parent.glob(f"{glob.escape(source_name)}.*.v*.npy"):
        if stale != target:
            stale.unlink(missing_ok=True)
