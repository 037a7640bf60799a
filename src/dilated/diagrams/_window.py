"""Which output a diagram highlights and which input steps it draws: the rules the stack layout and the graph
layout share (pure Python)."""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_STEPS = 64


def output_index(output: int | None, length: int) -> int:
    """The output step ``output`` names (``None``: the last; negative: from the end), checked against ``length``."""
    if output is None:
        return length - 1
    if isinstance(output, bool) or not isinstance(output, int) or not -length <= output < length:
        raise ValueError(
            f"output index must be an int in [{-length}, {length}) for {length} output steps, got {output!r}"
        )
    return output % length


@dataclass(frozen=True)
class Window:
    """Input steps ``first`` to ``last`` (inclusive) of ``input_length``: the part of the input a diagram draws."""

    first: int
    last: int
    input_length: int

    @property
    def steps(self) -> tuple[int, int]:
        return self.first, self.last

    @property
    def windowed(self) -> bool:
        """Whether the window is less than the whole input."""
        return self.steps != (0, self.input_length - 1)

    def visible(self, x0: float, dx: float, first: int, last: int) -> range:
        """Indices in ``[first, last]`` of a row that places step ``i`` at ``x0 + dx * i`` whose position lies
        within half a step of the window (with no bound at an end of the input)."""
        eps = 1e-9
        if self.first > 0:
            first = max(first, math.ceil((self.first - 0.5 - x0) / dx - eps))
        if self.last < self.input_length - 1:
            last = min(last, math.floor((self.last + 0.5 - x0) / dx + eps))
        return range(first, max(first, last + 1))

    def notes(self, field: tuple[int, int]) -> list[str]:
        """The title lines that say what the window leaves out of the input and of ``field``."""
        notes = []
        if self.windowed:
            notes.append(f"showing input steps {self.first}..{self.last} of {self.input_length}")
        width = field[1] - field[0] + 1
        if width > self.last - self.first + 1:
            notes.append(f"the field ({width} steps) is wider than the window")
        return notes


def input_window(
    field: tuple[int, int], input_length: int, max_steps: int, window: tuple[int, int] | None = None
) -> Window:
    """``window`` checked, or ``max_steps`` input steps (or all of them) around ``field`` (the output's field,
    clipped to the input); at the end of the input for the last output."""
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 2:
        raise ValueError(f"max_steps must be an int >= 2, got {max_steps!r}")
    if window is not None:
        lo, hi = window
        if not 0 <= lo <= hi < input_length:
            raise ValueError(f"window must lie in [0, {input_length - 1}], got {window}")
        return Window(lo, hi, input_length)
    width = min(input_length, max_steps)
    if width == input_length:
        return Window(0, input_length - 1, input_length)
    first, last = field
    if last - first + 1 >= width:
        return Window(last - width + 1, last, input_length)  # the field does not fit: keep its newest steps
    hi = min(input_length - 1, last + (width - (last - first + 1)) // 2)
    lo = max(0, hi - width + 1)
    return Window(lo, lo + width - 1, input_length)
