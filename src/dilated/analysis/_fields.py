"""Exact receptive fields as sets of input steps: the arithmetic under the dataflow analysis (pure Python).

A :class:`Steps` is a set of integer time steps, kept as a bitset (``low`` plus the set bits of ``bits``) and
optionally "every step before ``low``" (what a step of an RNN or a causally masked attention sees).

A :class:`Field` says which steps of a *source* tensor each step of a tensor sees. It is a periodic pattern: step
``t = q * period + r`` sees ``phases[r]`` shifted by ``q * jump`` source steps. Every 1-D op people write keeps that
form:

* a stride-1 conv with taps ``{k * dilation - pad_left}``: period 1, jump 1, one phase;
* a stride ``s``: jump ``s``; a transposed conv or an upsampling by ``u``: period ``u`` (``u`` phases);
* a reduction over time, a flatten, an attention without mask: jump 0 (every step sees the same steps).

:meth:`Field.gather` composes any such op with a field; the rest of the analysis only says which op is which.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property


class FieldError(ValueError):
    """Two fields that cannot be combined exactly (different rates, a window statistic mixed with steps)."""


def _trailing_zeros(bits: int) -> int:
    return (bits & -bits).bit_length() - 1


def _trailing_ones(bits: int) -> int:
    return (bits ^ (bits + 1)).bit_length() - 1


@dataclass(frozen=True)
class Steps:
    """The steps ``{low + i for each set bit i of bits}``, plus every step ``< low`` when ``past``.

    Canonical: without ``past``, bit 0 is set (or the set is empty, ``Steps()``); with ``past``, bit 0 is clear.
    """

    low: int = 0
    bits: int = 0
    past: bool = False

    @staticmethod
    def make(low: int, bits: int, past: bool = False) -> Steps:
        if past:
            ones = _trailing_ones(bits)
            return Steps(low + ones, bits >> ones, True)
        if not bits:
            return EMPTY
        zeros = _trailing_zeros(bits)
        return Steps(low + zeros, bits >> zeros, False)

    @staticmethod
    def of(values: Iterable[int]) -> Steps:
        values = sorted(set(values))
        if not values:
            return EMPTY
        low = values[0]
        bits = 0
        for v in values:
            bits |= 1 << (v - low)
        return Steps(low, bits)

    @staticmethod
    def span(first: int, last: int) -> Steps:
        """Every step from ``first`` to ``last`` inclusive."""
        return Steps.make(first, (1 << (last - first + 1)) - 1) if last >= first else EMPTY

    @staticmethod
    def before(bound: int) -> Steps:
        """Every step ``< bound``."""
        return Steps(bound, 0, True)

    @property
    def empty(self) -> bool:
        return not self.bits and not self.past

    def shift(self, n: int) -> Steps:
        return Steps(self.low + n, self.bits, self.past) if n and not self.empty else self

    def __or__(self, other: Steps) -> Steps:
        if other.empty:
            return self
        if self.empty:
            return other
        low = min(self.low, other.low)
        bits = (self.bits << (self.low - low)) | (other.bits << (other.low - low))
        if not (self.past or other.past):
            return Steps(low, bits)  # canonical already: the lower set's bit 0 is set
        cut = max(s.low for s in (self, other) if s.past)  # every step below it is in the set
        return Steps.make(cut, bits >> (cut - low), True)

    @property
    def first(self) -> int | None:
        """The smallest step (``None`` for an empty set or one that reaches back forever)."""
        return None if self.past or self.empty else self.low

    @property
    def last(self) -> int | None:
        """The largest step (``None`` for an empty set)."""
        if self.bits:
            return self.low + self.bits.bit_length() - 1
        return self.low - 1 if self.past else None

    @property
    def width(self) -> int:
        """``last - first + 1``, the span from the first step to the last (0 when empty; only without ``past``)."""
        if self.past:
            raise FieldError("an unbounded set of past steps has no width")
        return self.bits.bit_length()  # canonical: bit 0 is the first step

    def count(self) -> int:
        """How many steps (only for a set without ``past``)."""
        if self.past:
            raise FieldError("an unbounded set of past steps has no count")
        return self._popcount

    @cached_property
    def _popcount(self) -> int:  # layers that pass a field on unchanged share the set: count it once
        return self.bits.bit_count()

    def values(self) -> list[int]:
        """The steps in order (only for a set without ``past``)."""
        if self.past:
            raise FieldError("an unbounded set of past steps cannot be listed")
        out, bits = [], self.bits
        while bits:
            lowest = bits & -bits
            out.append(self.low + lowest.bit_length() - 1)
            bits ^= lowest
        return out

    def clip(self, first: int, last: int) -> Steps:
        """The steps in ``[first, last]`` (a finite set)."""
        if last < first or self.empty:
            return EMPTY
        window = (1 << (last - first + 1)) - 1
        shift = self.low - first
        bits = self.bits << shift if shift >= 0 else self.bits >> -shift
        if self.past:
            bits |= (1 << max(0, min(shift, last - first + 1))) - 1
        return Steps.make(first, bits & window)

    def contains_span(self, first: int, last: int) -> bool:
        """Whether every step of ``[first, last]`` is in the set."""
        return last < first or self.clip(first, last).bits == (1 << (last - first + 1)) - 1


EMPTY = Steps()
SELF = Steps(0, 1)  # a step sees itself


@dataclass(frozen=True)
class Field:
    """Which source steps each step of a tensor sees: step ``t = q * period + r`` sees ``phases[r]`` shifted by
    ``q * jump`` (``jump == 0``: every step sees the same, absolute, source steps)."""

    period: int
    jump: int
    phases: tuple[Steps, ...]

    @staticmethod
    def identity() -> Field:
        return IDENTITY

    @staticmethod
    def constant(steps: Steps) -> Field:
        """Every step sees ``steps`` (a reduction over time, a flatten, a global op)."""
        return Field(1, 0, (steps,))

    @property
    def absolute(self) -> bool:
        return self.jump == 0

    @property
    def rate(self) -> Fraction:
        """Source steps per step (0 for an absolute field)."""
        return Fraction(self.jump, self.period)

    def at(self, t: int) -> Steps:
        """The source steps step ``t`` sees."""
        q, r = divmod(t, self.period)
        return self.phases[r].shift(q * self.jump)

    def union_of(self, count: int) -> Steps:
        """Everything steps ``0 .. count - 1`` see together."""
        if self.absolute:
            seen = EMPTY
            for phase in self.phases[:count]:
                seen |= phase
            return seen
        seen = EMPTY
        for r in range(min(count, self.period)):
            phase, repeats = self.phases[r], (count - 1 - r) // self.period + 1
            if phase.empty:
                continue
            # the phase shifted by 0, jump, 2 jump, ...: by doubling, O(log repeats) big-int ors
            acc, power, width, done, n = 0, phase.bits, 1, 0, repeats
            while n:
                if n & 1:
                    acc |= power << (done * self.jump)
                    done += width
                power |= power << (width * self.jump)
                width *= 2
                n >>= 1
            seen |= Steps.make(phase.low, acc)
            if phase.past:
                seen |= Steps.before(phase.low + (repeats - 1) * self.jump)
        return seen

    def prefix(self, bound: int) -> Steps:
        """Everything steps ``<= bound`` see together (a causal RNN or attention); exact for a field at rate 1 or
        an absolute one."""
        if self.absolute:
            return self.union_of(self.period)
        if (self.period, self.jump) != (1, 1):
            raise FieldError(f"a causal prefix over a time axis at rate {self.rate} (strided or upsampled)")
        last = self.phases[0].last
        if last is None:
            return EMPTY
        return Steps.before(bound + last + 1)  # step s sees up to s + last, and every step below it feeds

    def gather(self, period: int, step: int, offsets: Sequence[Steps]) -> Field:
        """The field of an op whose output ``i = q * period + r`` reads the steps ``q * step + c`` of this
        tensor, ``c`` in ``offsets[r]`` (a conv: ``period=1, step=stride``, taps as offsets)."""
        if step < 0:
            raise FieldError("an op that reverses the time axis")
        if step == 0:  # the outputs do not move along this tensor: each phase reads fixed steps
            return Field(period, 0, tuple(self.seen_by(offs) for offs in offsets)).canonical()
        repeats = self.period // math.gcd(step, self.period)
        new_period = period * repeats
        new_jump = (repeats * step // self.period) * self.jump
        phases = []
        for rg in range(new_period):
            q0, r = divmod(rg, period)
            phases.append(self.seen_by(offsets[r].shift(q0 * step)))
        return Field(new_period, new_jump, tuple(phases)).canonical()

    def seen_by(self, steps: Steps) -> Steps:
        """Everything the steps ``steps`` of this tensor see together."""
        seen = EMPTY
        if steps.past:
            seen = self.prefix(steps.low - 1)
            steps = Steps(steps.low, steps.bits)
        phase = self.phases[0]
        if (self.period, self.jump) == (1, 1) and not phase.past and phase.count() < steps.count():
            for c in phase.values():  # fewer taps than steps: shift the whole set once per tap
                seen |= steps.shift(c)
            return seen
        for c in steps.values():
            seen |= self.at(c)
        return seen

    def compose(self, inner: Field) -> Field:
        """This field (over the steps of a source) read through ``inner`` (the source's field over its own
        source): what this tensor sees of ``inner``'s source."""
        return inner.gather(self.period, self.jump, self.phases)

    def __or__(self, other: Field) -> Field:
        if self.absolute != other.absolute:
            raise FieldError("per-step values combined with a statistic over part of the window")
        if not self.absolute and self.rate != other.rate:
            raise FieldError(
                f"tensors at different rates combined ({self.rate} and {other.rate} source steps per step)"
            )
        period = self.period * other.period // math.gcd(self.period, other.period)
        jump = int(self.rate * period)
        phases = tuple(self.at(r) | other.at(r) for r in range(period))
        return Field(period, jump, phases).canonical()

    def canonical(self) -> Field:
        """The same field with the shortest period."""
        p = self.period
        for d in range(1, p):
            if p % d or (self.jump * d) % p:
                continue
            shift = self.jump * d // p
            if all(self.phases[r + d] == self.phases[r].shift(shift) for r in range(p - d)):
                return Field(d, shift, self.phases[:d])
        return self

    # --- what a reader asks ------------------------------------------------------------------------------------
    @property
    def widest(self) -> Steps:
        """The phase with the widest field (the first of equals): the one a summary reports."""

        def width(s: Steps) -> float:
            return math.inf if s.past else s.width

        return max(self.phases, key=width)

    def causal(self) -> bool:
        """No step sees a source step after its own position ``t * rate`` (absolute fields: after step 0)."""
        for r, phase in enumerate(self.phases):
            last = phase.last
            if last is not None and last > math.floor(r * self.rate):
                return False
        return True


IDENTITY = Field(1, 1, (SELF,))
