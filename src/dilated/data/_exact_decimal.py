"""Plain decimals read from raw bytes in compiled code, exactly as ``float()`` reads them.

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
def exact_decimal(buf: np.ndarray, start: int, stop: int) -> tuple[float, bool]:
    """``buf[start:stop]`` (digits with at most one point, then an optional exponent ``e`` / ``E`` with a sign and
    at most 3 digits; nothing else) as a double, and whether the exact rule covers it."""
    mantissa, digits, fraction, point, j = 0, 0, 0, False, start
    while j < stop and buf[j] != 101 and buf[j] != 69:  # e E
        byte = buf[j]
        if digit(byte) and digits < 18:
            mantissa = mantissa * 10 + byte - 48
            digits += 1
            fraction += point
        elif byte == 46 and not point:
            point = True
        else:
            return 0.0, False
        j += 1
    power = -fraction
    if j < stop:  # the exponent
        j += 1
        sign = 1
        if j < stop and (buf[j] == 45 or buf[j] == 43):
            sign = -1 if buf[j] == 45 else 1
            j += 1
        if j == stop or stop - j > 3:
            return 0.0, False
        exponent = 0
        for k in range(j, stop):
            if not digit(buf[k]):
                return 0.0, False
            exponent = exponent * 10 + buf[k] - 48
        power += sign * exponent
    if digits == 0 or mantissa >= MAX_EXACT or abs(power) > 22:
        return 0.0, False
    return (mantissa * TENS[power] if power >= 0 else mantissa / TENS[-power]), True
