"""Bitstamp order-stream CSV files scanned in compiled code, a block of lines at a time, into the engine's arrays.

A Numba scanner reads the raw bytes of files whose layout it knows: a plain header naming each column once (letters,
digits, ``_`` and ``.``; the columns of :data:`~dilated.data._bitstamp_csv.BITSTAMP_COLUMNS` among them), then rows
of exactly that many fields, each bare or quoted (without quotes, commas or line ends inside; those of other columns
printable ASCII), lines ending in ``\\n`` or ``\\r\\n`` (blank ones skipped, the last one may lack its end), with
integer ids and times (an optional sign, at most 18 digits), prices and volumes plain decimals read exactly
(:mod:`dilated.data._scan_bytes`) or empty (missing: NaN), actions ``created`` / ``changed`` / ``deleted`` and
directions ``bid`` / ``ask``. That is what pandas reads from such a file, value for value, so the books are the same
bit for bit.

One pass over the files scans every row and decides what the whole stream decides
(:class:`~dilated.data._bitstamp_csv.StreamSettings`), spilling the rows' arrays (42 bytes a row) to a temporary
file, which the replay then reads back a chunk at a time: the text is decompressed and parsed once, and memory stays
flat however long the stream. A stream with anything else (string ids, a file without rows, another compression,
a field the scanner does not know) is left whole to the pandas reader (:mod:`dilated.data._bitstamp_csv`), which
also words every refusal.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from io import BufferedRandom
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numba import njit

from dilated.data._bitstamp_csv import BITSTAMP_COLUMNS, StreamSettings, check_volume_unit, satoshis
from dilated.data._book_engine import ASK, BID, BS_CHANGED, BS_CREATED, BS_DELETED
from dilated.data._feed_text import text_blocks
from dilated.data._scan_bytes import digit, exact_decimal, starts

TEXT_PER_ROW = 64  # bytes of text read per row of a chunk: a block of ``chunk`` rows or so
# a column's role in a row: ints (rows of the scanned arrays), floats, codes, or none
_ID, _TIME, _EXCHANGE, _PRICE, _VOLUME, _ACTION, _DIRECTION, _OTHER = range(8)
_ROLES = {"id": _ID, "timestamp": _TIME, "exchange_timestamp": _EXCHANGE, "price": _PRICE, "volume": _VOLUME}
_ROLES.update(action=_ACTION, direction=_DIRECTION)
_NAME = re.compile(rb'"?([A-Za-z0-9_.]+)"?')
_Q, _COMMA, _LF, _CR, _POINT = ord('"'), ord(","), ord("\n"), ord("\r"), ord(".")
_CREATED, _CHANGED, _DELETED = (np.frombuffer(w, np.uint8) for w in (b"created", b"changed", b"deleted"))
_BID_TEXT, _ASK_TEXT = np.frombuffer(b"bid", np.uint8), np.frombuffer(b"ask", np.uint8)
_OPENERS: dict[str, Callable[[Path], Any]] = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}
_OTHER_COMPRESSION = (".zip", ".zst", ".tar", ".tar.gz", ".tar.bz2", ".tar.xz")  # pandas reads them: left to it


@njit(cache=True, inline="always")
def _equals(buf: np.ndarray, start: int, stop: int, word: np.ndarray) -> bool:
    return stop - start == len(word) and starts(buf, start, stop, word)


@njit(cache=True)
def _integer(buf: np.ndarray, start: int, stop: int) -> tuple[int, bool]:
    """``buf[start:stop]`` as an integer (an optional sign, 1 to 18 digits), and whether it is one."""
    sign = 1
    if start < stop and (buf[start] == 45 or buf[start] == 43):
        sign = -1 if buf[start] == 45 else 1
        start += 1
    if stop - start < 1 or stop - start > 18:
        return 0, False
    value = 0
    for j in range(start, stop):
        if not digit(buf[j]):
            return 0, False
        value = value * 10 + buf[j] - 48
    return sign * value, True


@njit(cache=True)
def _number(buf: np.ndarray, start: int, stop: int) -> tuple[float, bool, bool]:
    """``buf[start:stop]`` as a double (empty: NaN), whether the scanner reads it, and whether pandas would read it
    as a float (a point or an exponent, or missing)."""
    if start == stop:
        return np.nan, True, True
    negative = buf[start] == 45
    if negative or buf[start] == 43:
        start += 1
    value, end = exact_decimal(buf, start, stop)
    point = False  # or an exponent
    for j in range(start, stop):
        point |= buf[j] == _POINT or buf[j] == 101 or buf[j] == 69
    return (-value if negative else value), end == stop, point


@njit(cache=True)
def scan_rows(
    buf: np.ndarray, roles: np.ndarray, ints: np.ndarray, floats: np.ndarray, codes: np.ndarray
) -> tuple[int, bool, int]:
    """Scan the rows of ``buf`` (``uint8``, whole lines, no header) into ``ints`` ``(3, rows)`` id, timestamp,
    exchange timestamp, ``floats`` ``(2, rows)`` price, volume and ``codes`` ``(2, rows)`` action, side; ``roles``
    ``(columns,)`` says what each column is. Returns the rows read, whether a volume was a float to pandas, and -1,
    or the offset of the first line the scanner does not know (the rows before it are read)."""
    n, pos, r, float_volume, columns = len(buf), 0, 0, False, len(roles)
    while pos < n:
        if buf[pos] == _LF or (buf[pos] == _CR and pos + 1 < n and buf[pos + 1] == _LF):  # a blank line
            pos += 1 if buf[pos] == _LF else 2
            continue
        line = pos
        for c in range(columns):
            if pos < n and buf[pos] == _Q:  # a quoted field: no quote, comma or line end inside
                start = stop = pos + 1
                while stop < n and buf[stop] != _Q and buf[stop] != _COMMA and buf[stop] != _LF and buf[stop] != _CR:
                    stop += 1
                if stop == n or buf[stop] != _Q:
                    return r, float_volume, line
                pos = stop + 1
            else:
                start = pos
                while pos < n and buf[pos] != _COMMA and buf[pos] != _LF and buf[pos] != _CR and buf[pos] != _Q:
                    pos += 1
                stop = pos
            if c < columns - 1:  # the field's end: a comma, or the line's end after the last field
                if pos == n or buf[pos] != _COMMA:
                    return r, float_volume, line
                pos += 1
            elif pos < n:
                if buf[pos] == _CR and pos + 1 < n and buf[pos + 1] == _LF:
                    pos += 1
                if buf[pos] != _LF:
                    return r, float_volume, line
                pos += 1
            role = roles[c]
            if role <= _EXCHANGE:
                ints[role, r], known = _integer(buf, start, stop)
            elif role <= _VOLUME:
                floats[role - _PRICE, r], known, point = _number(buf, start, stop)
                float_volume |= role == _VOLUME and point
            elif role == _ACTION:
                created, changed = _equals(buf, start, stop, _CREATED), _equals(buf, start, stop, _CHANGED)
                known = created or changed or _equals(buf, start, stop, _DELETED)
                codes[0, r] = BS_CREATED if created else BS_CHANGED if changed else BS_DELETED
            elif role == _DIRECTION:
                bid = _equals(buf, start, stop, _BID_TEXT)
                known = bid or _equals(buf, start, stop, _ASK_TEXT)
                codes[1, r] = BID if bid else ASK
            else:  # another column: printable ASCII only (pandas decides what else is, or refuses it)
                known = True
                for j in range(start, stop):
                    known &= 32 <= buf[j] < 127
            if not known:
                return r, float_volume, line
        r += 1
    return r, float_volume, -1


def _roles(line: bytes) -> np.ndarray | None:
    """What each column of a header line is, or None: not a plain header naming each Bitstamp column once."""
    names = []
    for field in line.removesuffix(b"\r").split(b","):
        match = _NAME.fullmatch(field)
        if match is None or field.count(b'"') == 1:
            return None
        names.append(match.group(1).decode().replace(".", "_"))
    if len(set(names)) < len(names) or not set(BITSTAMP_COLUMNS) <= set(names):
        return None
    return np.array([_ROLES.get(name, _OTHER) for name in names], np.int64)


def _opener(path: Path) -> Callable[[Path], BinaryIO] | None:
    """How to read the file's bytes as pandas would (None: a compression the scanner leaves to pandas)."""
    name = path.name.lower()
    if name.endswith(_OTHER_COMPRESSION):
        return None
    return _OPENERS.get(path.suffix.lower(), lambda p: open(p, "rb"))


@dataclass
class ScannedOrders:
    """The rows of a stream, scanned and spilled: ``blocks`` ``(file index, rows)`` in order in ``spill``."""

    settings: StreamSettings
    spill: BufferedRandom
    blocks: list[tuple[int, int]]

    def chunks(self, chunk: int) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        """``(file index, (times ms, order id, action code, side code, price, volume in satoshi))`` at most
        ``chunk`` rows at a time, ``(rows,)`` each, in order; the spill is closed at the end."""
        settings = self.settings
        with self.spill as spill:
            spill.seek(0)
            for file, rows in self.blocks:
                ints, floats, codes = (
                    np.fromfile(spill, dtype, k * rows).reshape(k, rows)
                    for dtype, k in ((np.int64, 3), (np.float64, 2), (np.int8, 2))
                )
                times = ints[_EXCHANGE if settings.time_column == "exchange_timestamp" else _TIME]
                units = satoshis(floats[1], settings.volume_unit)
                action, side = codes.astype(np.int64)
                for start in range(0, rows, chunk):
                    part = slice(start, start + chunk)
                    yield file, (times[part], ints[_ID, part], action[part], side[part], floats[0, part], units[part])


def scan_orders(paths: Sequence[Path], volume_unit: str, block: int) -> ScannedOrders | None:
    """The files scanned ``block`` bytes of text at a time and spilled, with the stream's settings; None where the
    scanner does not know the files (module notes): the pandas reader takes them."""
    check_volume_unit(volume_unit)
    spill = tempfile.TemporaryFile()
    try:
        found = _scan(paths, block, spill)
    except (ValueError, lzma.LZMAError, zlib.error):  # unreadable: pandas words the refusal
        found = None
    if found is None:
        spill.close()
        return None
    blocks, float_volume, exchange = found
    unit = ("coin" if float_volume else "satoshi") if volume_unit == "auto" else volume_unit
    settings = StreamSettings(unit, "exchange_timestamp" if exchange else "timestamp", integer_ids=True)
    return ScannedOrders(settings, spill, blocks)


def _scan(paths: Sequence[Path], block: int, spill: BufferedRandom) -> tuple[list[tuple[int, int]], bool, bool] | None:
    """Scan the files into ``spill``: the blocks, whether any volume is a float, whether the exchange time is the
    stream's (every file has it, never decreasing); None at the first thing the scanner does not know."""
    blocks, float_volume, exchange, last = list[tuple[int, int]](), False, True, None
    for index, path in enumerate(paths):
        opener = _opener(path)
        if opener is None:
            return None
        roles, file_rows = None, 0
        for text in text_blocks(path, block, opener, "a Bitstamp order CSV"):
            start = 0
            if roles is None:
                newline = text.find(b"\n")
                start = len(text) if newline < 0 else newline + 1
                roles = _roles(text if newline < 0 else text[:newline])
                if roles is None:
                    return None
                exchange &= _EXCHANGE in roles
            buf = np.frombuffer(text, np.uint8, offset=start)
            rows = len(text) // (len(roles) + 10) + 1  # at most: a row has 10 bytes of action and side
            ints, floats, codes = np.zeros((3, rows), np.int64), np.empty((2, rows)), np.empty((2, rows), np.int8)
            rows, floats_seen, unknown = scan_rows(buf, roles, ints, floats, codes)
            if unknown >= 0:
                return None
            float_volume |= floats_seen
            if exchange and rows:
                times = ints[_EXCHANGE, :rows]
                exchange = bool(np.all(times[1:] >= times[:-1])) and (last is None or bool(times[0] >= last))
                last = times[-1]
            for array in (ints[:, :rows], floats[:, :rows], codes[:, :rows]):
                spill.write(np.ascontiguousarray(array).data)
            blocks.append((index, rows))
            file_rows += rows
        if not file_rows:  # pandas reads a file without rows as object columns: string ids
            return None
    return blocks, float_volume, exchange
