"""What the byte scanners of the feed readers share (Numba): digits, fixed words, and plain decimals read from raw
bytes exactly as ``float()`` reads them.

A decimal ``d`` of at most 18 digits whose value as an integer ``m`` is below 2**53, times ``10**p`` (``p`` from its
point and exponent, ``|p| <= 22``), is ``m * 10**p`` or ``m / 10**-p``: both operands are exact doubles and the
product or quotient is correctly rounded, so the result is ``float(d)`` bit for bit (and what pandas' C parser
reads). Any other text is not one: its caller falls back to a
reader that knows more.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAX_EXACT = 1 << 53
TENS = np.array([float(10**k) for k in range(23)])  # exact doubles


@njit(cache=True, inline="always")
def digit(byte: int) -> bool:
    return 48 <= byte <= 57


@njit(cache=True)
def starts(buf: np.ndarray, i: int, stop: int, pattern: np.ndarray) -> bool:
    """Whether ``buf[i:stop]`` starts with ``pattern``."""
    if i + len(pattern) > stop:
        return False
    for j in range(len(pattern)):
        if buf[i + j] != pattern[j]:
            return False
    return True


@njit(cache=True, inline="always")
def exact_decimal(buf: np.ndarray, i: int, stop: int) -> tuple[float, int]:
    """The decimal at ``i`` (digits with at most one point, then an optional exponent: ``e`` or ``E``, a sign, at
    most 3 digits) as a double, and the index of the first byte after it (before ``stop``); -1: not one the exact
    rule covers."""
    mantissa, digits, fraction, point = 0, 0, 0, False
    while i < stop:
        byte = buf[i]
        if digit(byte):
            if digits == 18:
                return 0.0, -1
            mantissa = mantissa * 10 + byte - 48
            digits += 1
            fraction += point
        elif byte == 46 and not point:
            point = True
        else:
            break
        i += 1
    power = -fraction
    if i < stop and (buf[i] == 101 or buf[i] == 69):  # e E: the exponent
        i += 1
        sign = 1
        if i < stop and (buf[i] == 45 or buf[i] == 43):
            sign = -1 if buf[i] == 45 else 1
            i += 1
        exponent, start = 0, i
        while i < stop and digit(buf[i]) and i - start < 3:
            exponent = exponent * 10 + buf[i] - 48
            i += 1
        if i == start:
            return 0.0, -1
        power += sign * exponent
    if digits == 0 or mantissa >= MAX_EXACT or abs(power) > 22:
        return 0.0, -1
    return (mantissa * TENS[power] if power >= 0 else mantissa / TENS[-power]), i
