"""Binance depth recordings scanned in compiled code, a block of lines at a time, into arrays of diffs.

A Numba scanner reads the raw bytes of the lines whose layout it knows: ``<receive time ns> <json>``, the JSON
compact, without escapes, either the ``{"stream":"...","data":{...}}`` wrapper or the bare ``depthUpdate`` object,
whose members are ``"e":"depthUpdate"``, the integers ``E``, ``U``, ``u`` (and ``pu``), the symbol ``s``, the levels
``b`` then ``a`` as ``[["price","quantity"], ...]`` with plain decimal strings (read exactly:
:mod:`dilated.data._scan_bytes`), and other string or number members. Every other line (the REST snapshot, a new symbol, anything unusual) goes to orjson, line by line, as
:mod:`dilated.data._binance` reads it: orjson is the oracle and the fallback, and the output is the same either way.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from dilated.data._feed_rules import read_line
from dilated.data._feed_text import text_blocks
from dilated.data._scan_bytes import digit, exact_decimal, starts

BLOCK = 1 << 22  # bytes of text per block: bounds the memory of a recording however long
_OTHER, _DIFF, _PYTHON = 0, 1, 2  # what a line is: skipped, a diff the scanner read, one for orjson
_DEPTH = np.frombuffer(b"depthUpdate", np.uint8)
_LAST_ID = np.frombuffer(b"lastUpdateId", np.uint8)
_STREAM = np.frombuffer(b'"stream":"', np.uint8)
_DATA = np.frombuffer(b',"data":{', np.uint8)
_DATA_NAME = np.frombuffer(b"data", np.uint8)
_Q, _COLON, _COMMA, _OPEN, _CLOSE, _LIST, _END = ord('"'), ord(":"), ord(","), ord("{"), ord("}"), ord("["), ord("]")
# the members the scanner reads; _FOR_ORJSON: "data" or "lastUpdateId" in the diff's object
_E_TYPE, _E_TIME, _FIRST, _FINAL, _PREVIOUS, _SYMBOL, _BIDS, _ASKS, _FOR_ORJSON, _OTHER_KEY = range(10)
_ONE_BYTE_KEYS = np.full(256, _OTHER_KEY, np.int64)
for _name, _code in zip("eEUusba", (_E_TYPE, _E_TIME, _FIRST, _FINAL, _SYMBOL, _BIDS, _ASKS)):
    _ONE_BYTE_KEYS[ord(_name)] = _code


@njit(cache=True)
def _contains(buf: np.ndarray, start: int, stop: int, pattern: np.ndarray) -> bool:
    n = len(pattern)
    for i in range(start, stop - n + 1):
        if buf[i] == pattern[0]:
            j = 1
            while j < n and buf[i + j] == pattern[j]:
                j += 1
            if j == n:
                return True
    return False


@njit(cache=True)
def _string_end(buf: np.ndarray, i: int, stop: int) -> int:
    """The index of the quote closing the string that opens at ``i``; -1 if none, or if it holds an escape."""
    if i >= stop or buf[i] != _Q:
        return -1
    j = i + 1
    while j < stop and buf[j] != _Q:
        if buf[j] == 92:  # a backslash
            return -1
        j += 1
    return j if j < stop else -1


@njit(cache=True)
def _integer(buf: np.ndarray, i: int, stop: int) -> tuple[int, int]:
    """A JSON integer of at most 18 digits at ``i``: its value and the index after it (-1: not one)."""
    value, j = 0, i
    while j < stop and digit(buf[j]) and j - i < 19:
        value = value * 10 + buf[j] - 48
        j += 1
    if j == i or j - i > 18:
        return 0, -1
    return value, j


@njit(cache=True)
def _decimal(buf: np.ndarray, i: int, stop: int) -> tuple[float, int]:
    """A quoted plain decimal (``"123.45"``) at ``i`` read exactly, and the index after the closing quote (-1: not
    one the exact rule covers)."""
    if i >= stop or buf[i] != _Q:
        return 0.0, -1
    value, end = exact_decimal(buf, i + 1, stop)
    if end < 0 or end >= stop or buf[end] != _Q:
        return 0.0, -1
    return value, end + 1


@njit(cache=True)
def _key(buf: np.ndarray, i: int, close: int) -> int:
    """Which member the key ``buf[i:close]`` names."""
    n, first = close - i, buf[i]
    if n == 1:
        return _ONE_BYTE_KEYS[first]
    elif n == 2 and first == 112 and buf[i + 1] == 117:  # pu
        return _PREVIOUS
    elif (n == 4 and starts(buf, i, close, _DATA_NAME)) or (n == 12 and starts(buf, i, close, _LAST_ID)):
        return _FOR_ORJSON
    return _OTHER_KEY


@njit(cache=True)
def _levels(buf: np.ndarray, i: int, stop: int, price: np.ndarray, size: np.ndarray, k: int) -> tuple[int, int]:
    """``[["p","q"], ...]`` at ``i`` into ``price`` / ``size`` from ``k``: the index after it and the new ``k``
    (-1: not that layout, or no room)."""
    if i >= stop or buf[i] != _LIST:
        return -1, k
    i += 1
    if i < stop and buf[i] == _END:
        return i + 1, k
    while True:
        if i >= stop or buf[i] != _LIST or k >= len(price):
            return -1, k
        price[k], i = _decimal(buf, i + 1, stop)
        if i < 0 or i >= stop or buf[i] != _COMMA:
            return -1, k
        size[k], i = _decimal(buf, i + 1, stop)
        if i < 0 or i + 1 >= stop or buf[i] != _END:
            return -1, k
        k += 1
        i += 1
        if buf[i] == _END:
            return i + 1, k
        if buf[i] != _COMMA:
            return -1, k
        i += 1


@njit(cache=True)
def _skip_value(buf: np.ndarray, i: int, stop: int) -> int:
    """The index after a string or number value at ``i`` (-1: another kind of value)."""
    if i < stop and buf[i] == _Q:
        close = _string_end(buf, i, stop)
        return close + 1 if close >= 0 else -1
    j = i
    while j < stop and (digit(buf[j]) or buf[j] in (43, 45, 46, 69, 101)):  # + - . E e
        j += 1
    return j if j > i else -1


@njit(cache=True)
def _diff(
    buf: np.ndarray,
    i: int,
    stop: int,
    symbol: np.ndarray,
    ints: np.ndarray,
    sides: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    k: int,
) -> int:
    """The members of a depth diff's object from ``i`` (after its ``{``) into ``ints`` ``(E, U, u, pu, futures)``,
    ``sides`` ``(bids, asks)`` and the levels from ``k``; returns the index after the object's ``}`` (-1: a line
    for orjson). ``symbol``: the stream's symbol; a diff of another one goes to orjson."""
    seen = 0  # a bit per member
    ints[3], ints[4] = -1, 0
    while True:
        close = _string_end(buf, i, stop)
        if close < 0 or close + 1 >= stop or buf[close + 1] != _COLON:
            return -1
        key = _key(buf, i + 1, close)
        if key == _FOR_ORJSON or (seen >> key & 1 and key != _OTHER_KEY):
            return -1
        seen |= 1 << key
        i = close + 2
        if key == _E_TYPE:
            end = _string_end(buf, i, stop)
            if end != i + 1 + len(_DEPTH) or not starts(buf, i + 1, stop, _DEPTH):
                return -1
            i = end + 1
        elif key in (_E_TIME, _FIRST, _FINAL, _PREVIOUS):
            value, i = _integer(buf, i, stop)
            ints[key - _E_TIME] = value  # E, U, u, pu
            if key == _PREVIOUS:
                ints[4] = 1
        elif key == _SYMBOL:
            end = _string_end(buf, i, stop)
            if end < 0 or end - i - 1 != len(symbol) or not starts(buf, i + 1, end, symbol):
                return -1
            i = end + 1
        elif key == _BIDS or key == _ASKS:
            if key == _ASKS and not seen >> _BIDS & 1:
                return -1  # bids are stored first
            start = k
            i, k = _levels(buf, i, stop, price, size, k)
            sides[key - _BIDS] = k - start
        else:
            i = _skip_value(buf, i, stop)
        if i < 0 or i >= stop:
            return -1
        if buf[i] == _CLOSE:
            break
        if buf[i] != _COMMA:
            return -1
        i += 1
    required = 1 << _E_TYPE | 1 << _E_TIME | 1 << _FIRST | 1 << _FINAL | 1 << _BIDS | 1 << _ASKS
    if seen & required != required or (not seen >> _SYMBOL & 1 and len(symbol) > 0):
        return -1
    return i + 1


@njit(cache=True)
def _line(
    buf: np.ndarray,
    start: int,
    stop: int,
    symbol: np.ndarray,
    ints: np.ndarray,
    sides: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    k: int,
) -> tuple[int, int]:
    """What ``buf[start:stop]`` is (``_OTHER``, ``_DIFF`` read into the outputs, or ``_PYTHON``) and the new ``k``."""
    i = start
    while i < stop and digit(buf[i]):
        i += 1
    if i == start or i >= stop or buf[i] != 32:
        return _PYTHON, k
    i += 1
    if not _contains(buf, i, stop, _DEPTH):
        return (_PYTHON if _contains(buf, i, stop, _LAST_ID) else _OTHER), k
    if buf[i] != _OPEN:  # the parse below is strict: white space, escapes, other layouts go to orjson
        return _PYTHON, k
    i += 1
    wrapped = starts(buf, i, stop, _STREAM)
    if wrapped:
        close = _string_end(buf, i + len(_STREAM) - 1, stop)
        if close < 0 or not starts(buf, close + 1, stop, _DATA):
            return _PYTHON, k
        i = close + 1 + len(_DATA)
    before = k
    sides[:] = 0
    i = _diff(buf, i, stop, symbol, ints, sides, price, size, k)
    if i > 0 and wrapped:
        i = i + 1 if i < stop and buf[i] == _CLOSE else -1
    if i != stop:
        return _PYTHON, before
    return _DIFF, before + sides[0] + sides[1]


@njit(cache=True)
def scan(
    buf: np.ndarray,
    pos: int,
    symbol: np.ndarray,
    ints: np.ndarray,
    sides: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    numbers: np.ndarray,
    number: int,
    d: int,
    k: int,
) -> tuple[int, int, int, int, int]:
    """Scan the lines of ``buf`` (``uint8``, whole lines) from ``pos``, diffs into row ``d`` on of ``ints``
    ``(diffs, 5)``, ``sides`` ``(diffs, 2)`` and ``numbers`` (line numbers, ``number`` that of the line before
    ``pos``), levels from ``k`` on of ``price`` / ``size``. Stops at the end, or at a line for orjson. Returns
    ``pos`` (the line it stopped at; ``len(buf)`` at the end), ``d``, ``k``, the lines read and the other messages
    skipped."""
    lines = other = 0
    n = len(buf)
    while pos < n:
        stop = pos
        while stop < n and buf[stop] != 10:
            stop += 1
        kind, k_next = _line(buf, pos, stop, symbol, ints[d], sides[d], price, size, k)
        if kind == _PYTHON:
            return pos, d, k, lines, other
        if kind == _OTHER:
            other += 1
        else:
            numbers[d] = number + lines + 1
            d += 1
            k = k_next
        lines += 1
        pos = stop + 1
    return n, d, k, lines, other


@dataclass
class DiffBlock:
    """The depth diffs of one block of lines of one file: ``ints`` ``(diffs, 5)`` E, U, u, pu (-1: spot), futures;
    ``lines`` ``(diffs,)`` their line numbers; ``sides`` ``(diffs, 2)`` bids and asks of each; ``price`` /
    ``size`` ``(levels,)`` the levels, bids then asks of each diff in order."""

    file: int
    ints: np.ndarray
    lines: np.ndarray
    sides: np.ndarray
    price: np.ndarray
    size: np.ndarray


@dataclass
class Recording:
    """What the blocks read so far hold besides their diffs: the first snapshot, the symbols, and the line counts
    (``stats``: lines, snapshots, other_messages, diffs_before_snapshot_line, diffs)."""

    stats: dict[str, Any]
    snapshot: dict[str, Any] | None = None
    symbols: set[str] = field(default_factory=set)
    symbol: np.ndarray = field(default_factory=lambda: np.frombuffer(b'"', np.uint8))  # the first symbol's bytes;
    # a quote until then (no unescaped symbol holds one), so the scanner hands every diff to orjson


def _open(path: Path) -> Any:
    return gzip.open(path) if path.suffix == ".gz" else open(path, "rb")


def diff_blocks(paths: list[Path], recording: Recording) -> Iterator[DiffBlock]:
    """The depth diffs of the files, in order, a :data:`BLOCK` of lines at a time; ``recording`` is updated as they
    come."""
    for index, path in enumerate(paths):
        number = 0  # the lines of this file so far
        for text in text_blocks(path, BLOCK, _open, "a Binance depth recording"):
            block, number = _scan_block(text, str(path), number, recording)
            yield DiffBlock(index, *block)


def _scan_block(text: bytes, path: str, number: int, recording: Recording) -> tuple[tuple[np.ndarray, ...], int]:
    """The diffs of one block of whole lines (``number`` lines of the file before it), and the lines it holds."""
    stats = recording.stats
    if b"\r" in text:  # lines end as bytes.splitlines says, not only at \n: orjson reads them all
        split = text.splitlines()
        block = _Arrays(len(split), len(text))
        for line in split:
            number += 1
            _python_line(line, path, number, recording, block)
    else:
        buf, pos, block = np.frombuffer(text, np.uint8), 0, _Arrays(text.count(b"\n") + 1, len(text))
        while pos < len(buf):
            pos, block.d, block.k, scanned, other = block.scan(buf, pos, recording.symbol, number)
            number += scanned
            stats["lines"] += scanned
            stats["other_messages"] += other
            if pos < len(buf):
                stop = text.find(b"\n", pos)
                stop = len(text) if stop < 0 else stop
                number += 1
                _python_line(text[pos:stop], path, number, recording, block)
                pos = stop + 1
    stats["diffs"] += block.d
    return block.done(), number


def _python_line(line: bytes, path: str, number: int, recording: Recording, block: _Arrays) -> None:
    """One line read with orjson, as :mod:`dilated.data._binance` reads it (the oracle)."""
    import orjson

    stats = recording.stats
    stats["lines"] += 1
    kind, data = read_line(line, f"{path}:{number}", orjson.loads)
    if kind == "snapshot" and recording.snapshot is None:
        recording.snapshot = data
        stats["diffs_before_snapshot_line"] = stats["diffs"] + block.d
    if kind != "diff":
        stats["snapshots" if kind == "snapshot" else "other_messages"] += 1
        return
    symbol = data.get("s", "")
    if not recording.symbols:
        recording.symbol = np.frombuffer(str(symbol).encode(), np.uint8)
    recording.symbols.add(symbol)
    futures = "pu" in data
    ints = (int(data["E"]), int(data["U"]), int(data["u"]), int(data["pu"]) if futures else -1, futures)
    block.add(ints, number, [*data["b"], *data["a"]], len(data["b"]))


class _Arrays:
    """The arrays of one block's diffs (room for every line of the block and its levels; orjson's lines may grow
    the levels)."""

    def __init__(self, lines: int, size: int) -> None:
        self.ints, self.numbers = np.zeros((lines, 5), np.int64), np.zeros(lines, np.int64)
        self.sides = np.zeros((lines, 2), np.int64)
        self.price, self.size = np.zeros(size // 9 + 1), np.zeros(size // 9 + 1)
        self.d = self.k = 0

    def scan(self, buf: np.ndarray, pos: int, symbol: np.ndarray, number: int) -> tuple[int, int, int, int, int]:
        """:func:`scan` into these arrays."""
        return scan(
            buf, pos, symbol, self.ints, self.sides, self.price, self.size, self.numbers, number, self.d, self.k
        )

    def add(self, ints: tuple[int, ...], number: int, levels: list[Any], bids: int) -> None:
        """One diff read by orjson."""
        pairs = np.array(levels, dtype=np.float64).reshape(-1, 2)
        if self.k + len(pairs) > len(self.price):
            self.price, self.size = (np.resize(a, 2 * len(a) + len(pairs)) for a in (self.price, self.size))
        self.price[self.k : self.k + len(pairs)], self.size[self.k : self.k + len(pairs)] = pairs.T
        self.ints[self.d], self.numbers[self.d], self.sides[self.d] = ints, number, (bids, len(pairs) - bids)
        self.d, self.k = self.d + 1, self.k + len(pairs)

    def done(self) -> tuple[np.ndarray, ...]:
        return (
            self.ints[: self.d],
            self.numbers[: self.d],
            self.sides[: self.d],
            self.price[: self.k],
            self.size[: self.k],
        )
