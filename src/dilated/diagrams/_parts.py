"""What a receptive-field diagram is made of: nodes in rows, the edges between them, and the whole
:class:`Diagram` a layout returns and a renderer draws (pure data, no layout rules and no matplotlib)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class DiagramNode:
    """One drawn node: step ``index`` of row ``row`` (0 = input, ``r`` = output of layer ``r``) at ``x``.

    ``x`` is in input steps. A padding node has ``index < 0`` or ``index >= length`` of its row: one of the zeros
    the next layer adds before reading the row.
    """

    row: int
    index: int
    x: float
    padding: bool
    highlighted: bool


@dataclass(frozen=True)
class Edge:
    """Layer ``row`` reads node ``source`` of row ``source_row`` (default ``row - 1``; an earlier row in a
    branched graph) to compute node ``target`` of row ``row``."""

    row: int
    source: int
    target: int
    highlighted: bool
    source_row: int | None = None

    @property
    def below(self) -> int:
        """The row read."""
        return self.row - 1 if self.source_row is None else self.source_row


@dataclass(frozen=True)
class Row:
    """One row of nodes: the input (row 0) or the output of one layer, with its visible nodes.

    ``jump`` is input steps between neighbouring steps of the row (a fraction after an upsampling);
    ``pad_left``/``pad_right`` are the zeros the *next* layer adds to this row (0 for the top row); ``x0`` and
    ``dx`` place step ``i`` at ``x0 + dx * i`` input steps.
    """

    label: str
    detail: str
    length: int
    receptive_field: int
    jump: int | Fraction
    pad_left: int
    pad_right: int
    x0: float
    dx: float
    nodes: tuple[DiagramNode, ...]

    def x(self, index: int) -> float:
        """Position of step ``index`` (padding included) in input steps."""
        return self.x0 + self.dx * index

    @property
    def highlighted(self) -> list[int]:
        """Real (non-padding) steps of this row that feed the chosen output, in order."""
        return [n.index for n in self.nodes if n.highlighted and not n.padding]

    @property
    def padding_nodes(self) -> tuple[list[int], list[int]]:
        """Indices of the drawn padding nodes on the (left, right) edge."""
        left = [n.index for n in self.nodes if n.padding and n.index < 0]
        return left, [n.index for n in self.nodes if n.padding and n.index >= 0]


@dataclass(frozen=True)
class Diagram:
    """What a receptive-field diagram shows: its rows of nodes, its edges and the highlighted output.

    ``field`` is the chosen output's receptive field on the input, clipped to the real steps; ``span`` is the same
    before clipping (it reaches into the padding where negative or past the end). ``window`` is the first and last
    input step drawn; ``windowed`` says whether that is less than the whole input. ``frames`` lists the outputs an
    animation highlights, one per frame (empty for a still image).
    """

    title: str
    rows: tuple[Row, ...]
    edges: tuple[Edge, ...]
    output_index: int
    receptive_field: int
    field: tuple[int, int]
    span: tuple[int, int]
    window: tuple[int, int]
    windowed: bool
    notes: tuple[str, ...] = ()
    frames: tuple[int, ...] = ()

    @property
    def input_length(self) -> int:
        return self.rows[0].length
