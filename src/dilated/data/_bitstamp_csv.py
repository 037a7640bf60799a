"""Bitstamp order-stream CSV files read and checked (pandas): whole for the pure-Python reader, or a chunk of rows at a
time for the compiled one where its byte scanner (:mod:`dilated.data._bitstamp_scan`) does not know the files, after
a first pass that fixes what the whole stream decides (:class:`StreamSettings`). The replay rules are in
:mod:`dilated.data._bitstamp`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dilated.data._feed_rules import SATOSHI

BITSTAMP_COLUMNS = ("id", "timestamp", "price", "volume", "action", "direction")
_ACTIONS = ("created", "changed", "deleted")


def _csv_frames(path: Path, chunk: int | None = None, columns: Sequence[str] = (), **read: Any) -> Iterator[Any]:
    """The file's rows as pandas DataFrames (one, or ``chunk`` rows at a time), columns named with ``_`` for ``.``;
    ``columns``: only those (default all). Refuses a file without :data:`BITSTAMP_COLUMNS` (pandas imported here)."""
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        found = [c.replace(".", "_") for c in pd.read_csv(path, nrows=0).columns]
        missing = [c for c in BITSTAMP_COLUMNS if c not in found]
        if missing:
            raise ValueError(
                f"{path}: no column {missing}; a Bitstamp order stream has {', '.join(BITSTAMP_COLUMNS)} "
                f"(and exchange_timestamp); found {found}"
            )
        wanted = (lambda c: c.replace(".", "_") in columns) if columns else None
        with pd.read_csv(path, iterator=True, chunksize=chunk, usecols=wanted, **read) as reader:
            for frame in [reader.read()] if chunk is None else reader:
                frame.columns = [c.replace(".", "_") for c in frame.columns]
                yield frame
    except (UnicodeDecodeError, pd.errors.ParserError, EOFError, OSError) as error:
        raise ValueError(f"{path}: not a Bitstamp order CSV ({error})") from None


def check_orders(frame: Any, path: Path, first_row: int = 0) -> None:
    """Refuse a row (``first_row``: the file's data row of the frame's first) with an unknown action or direction."""
    for column, allowed in (("action", _ACTIONS), ("direction", ("bid", "ask"))):
        bad = ~frame[column].isin(allowed)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            expected = f"one of {', '.join(allowed)}" if column == "action" else "bid or ask"
            raise ValueError(
                f"{path}: data row {first_row + row} has {column} {frame[column].iloc[row]!r}; expected {expected}"
            )


def read_orders(path: Path):  # noqa: ANN202 - a pandas DataFrame (pandas imported here only)
    frame = next(_csv_frames(path))
    check_orders(frame, path)
    return frame


def satoshis(volume: np.ndarray, volume_unit: str) -> np.ndarray:
    """Volumes ``(rows,)`` in ``volume_unit`` as whole satoshis (int64: exact sums)."""
    return np.round(volume if volume_unit == "satoshi" else volume / SATOSHI).astype(np.int64)


def order_stats(messages: int, time_column: str, volume_unit: str) -> dict[str, Any]:
    """A replay's stats before its counts."""
    counts = ("unknown_deletes", "unknown_changes", "uncross_events", "uncross_orders", "uncross_levels")
    return {
        "messages": messages,
        "time_column": time_column,
        "volume_unit": volume_unit,
        **dict.fromkeys(counts, 0),
        "uncross_volume": 0.0,
    }


def check_volume_unit(volume_unit: str) -> None:
    if volume_unit not in ("auto", "coin", "satoshi"):
        raise ValueError(f"volume_unit must be 'auto', 'coin' or 'satoshi'; got {volume_unit!r}")


@dataclass(frozen=True)
class StreamSettings:
    """What the whole stream decides, read in a first pass over the files (``id``, ``volume`` and
    ``exchange_timestamp`` only), exactly as :func:`read_order_stream` decides it from all the rows at once."""

    volume_unit: str  # coin or satoshi
    time_column: str  # exchange_timestamp where every file has it and it never decreases, else timestamp
    integer_ids: bool  # else the ids are read as strings, each string an order


def stream_settings(paths: Sequence[Path], volume_unit: str = "auto", chunk: int = 1 << 20) -> StreamSettings:
    """:class:`StreamSettings` of the files (in order), reading ``chunk`` rows at a time."""
    import pandas as pd

    check_volume_unit(volume_unit)
    integer_volume = integer_ids = exchange = True
    last = None
    for path in paths:
        for frame in _csv_frames(path, chunk, ("id", "volume", "exchange_timestamp")):
            integer_volume &= pd.api.types.is_integer_dtype(frame["volume"])
            integer_ids &= pd.api.types.is_integer_dtype(frame["id"])
            exchange &= "exchange_timestamp" in frame.columns
            if exchange and len(frame):
                times = frame["exchange_timestamp"].to_numpy()
                exchange = bool(np.all(np.diff(times) >= 0)) and (last is None or bool(times[0] >= last))
                last = times[-1]
    unit = ("satoshi" if integer_volume else "coin") if volume_unit == "auto" else volume_unit
    return StreamSettings(unit, "exchange_timestamp" if exchange else "timestamp", integer_ids)


def order_frames(paths: Sequence[Path], settings: StreamSettings, chunk: int) -> Iterator[tuple[int, Any]]:
    """The rows of the files (in order), checked, ``chunk`` at a time: ``(file index, DataFrame)``."""
    read: dict[str, Any] = {"dtype": {"action": "category", "direction": "category"}}
    if not settings.integer_ids:
        read["dtype"]["id"] = str
    for index, path in enumerate(paths):
        first_row = 0
        for frame in _csv_frames(path, chunk, **read):
            check_orders(frame, path, first_row)
            first_row += len(frame)
            yield index, frame
