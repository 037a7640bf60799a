"""The dataflow graph of a model: which input steps the steps of every node's output see.

A :class:`LayerGraph` holds one :class:`Node` per module call, in execution order; the torch tracer
(:mod:`~dilated.analysis._tracer`) and the Keras reader (:mod:`~dilated.keras_bridge._walk`) build it. The edges of
a node are the fields of its output over the nodes it reads directly (:data:`Sources`), and :meth:`Graph.field`
composes them down to the model input. The helpers on fields below are shared by both builders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch

from dilated.analysis._fields import EMPTY, IDENTITY, Field, FieldError, Steps

Sources = dict[int, Field]  # source node index -> field over that node's output steps


class Unfollowed(ValueError):
    """An op whose effect on the time axis the analysis cannot follow exactly."""


@dataclass
class Node:
    """One module call (or the model input, node 0): its output and the fields of that output over the nodes it
    reads (``edges``), or why they are unknown (``unfollowed``)."""

    index: int
    name: str
    type_name: str
    module: Any  # the torch module (or Keras layer) called; None for the input and the output
    output_shape: tuple[int | None, ...]
    axis: int | None
    edges: Sources = field(default_factory=dict)
    unfollowed: str | None = None
    constant: bool = False  # the output does not depend on the input

    @property
    def length(self) -> int | None:
        """Steps on the output's time axis (``None`` without one)."""
        return None if self.axis is None else self.output_shape[self.axis]


@dataclass
class Graph:
    """The nodes of one forward pass in execution order (``nodes[0]`` the input, ``nodes[-1]`` the output)."""

    nodes: list[Node]
    input_shape: tuple[int, ...]
    _fields: dict[int, Field | str] = field(default_factory=dict)

    @property
    def input_length(self) -> int:
        return self.input_shape[-1]

    @property
    def output(self) -> Node:
        return self.nodes[-1]

    def field(self, index: int) -> Field:
        """The field of node ``index``'s output over the model input's steps; raises :class:`Unfollowed` naming the
        op where the analysis lost track."""
        if index not in self._fields:
            self._fields[index] = self._compose(index)
        found = self._fields[index]
        if isinstance(found, str):
            raise Unfollowed(found)
        return found

    def _compose(self, index: int) -> Field | str:
        node = self.nodes[index]
        if index == 0:
            return IDENTITY
        if node.unfollowed:
            return node.unfollowed
        total: Field | None = None
        for source, edge in node.edges.items():
            try:
                inner = self.field(source)
            except Unfollowed as error:
                return str(error)
            try:
                composed = clip(edge.compose(inner), self.input_length)
                total = composed if total is None else merge_fields(total, composed, self.input_length)
            except FieldError as error:
                return f"{node.name}: {error}"
        return total if total is not None else Field.constant(EMPTY)

    def steps(self, index: int, t: int) -> Steps:
        """The input steps that step ``t`` of node ``index``'s output reads. Exact at the ends of every tensor too:
        where a field reads positions past the end of a node's output (a conv's padding after an earlier layer),
        those hold no step, whereas :meth:`field` (one pattern for every step) reads on through them."""
        reached: dict[int, Steps] = {index: Steps.of([t])}
        for i in range(index, 0, -1):  # sources come before the nodes that read them
            positions = reached.pop(i, EMPTY)
            if positions.empty:
                continue
            node = self.nodes[i]
            if node.unfollowed:
                raise Unfollowed(node.unfollowed)
            for source, edge in node.edges.items():
                length = self.nodes[source].length
                seen = edge.seen_by(positions)
                seen = seen.clip(0, length - 1) if length is not None else seen
                reached[source] = reached.get(source, EMPTY) | seen
        return reached.get(0, EMPTY).clip(0, self.input_length - 1)


def clip(f: Field, length: int | None) -> Field:
    """An absolute field restricted to real steps ``[0, length)`` (the rest is padding)."""
    if not f.absolute or length is None:
        return f
    return Field(f.period, 0, tuple(p.clip(0, length - 1) for p in f.phases)).canonical()


def merge_fields(a: Field, b: Field, length: int | None) -> Field:
    """``a | b``; a statistic over the whole source absorbs per-step values (``x + x.mean(-1, keepdim=True)``)."""
    try:
        return a | b
    except FieldError:
        if a.absolute != b.absolute and length is not None:
            whole = a if a.absolute else b
            if all(p.contains_span(0, length - 1) for p in whole.phases):
                return Field.constant(Steps.span(0, length - 1))
        raise


def union_sources(a: Sources, b: Sources, lengths: dict[int, int | None]) -> Sources:
    """``a | b`` source by source (``lengths``: each source's steps, for :func:`merge_fields`)."""
    out = dict(a)
    for s, f in b.items():
        out[s] = f if s not in out else merge_fields(out[s], f, lengths.get(s))
    return out


# --- small helpers ---------------------------------------------------------------------------------------------------


def tensors_in(value: Any) -> list[torch.Tensor]:
    """The tensors in a value, nested tuples, lists and dicts included, in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    return []


Record = TypeVar("Record")


class TensorTable(Generic[Record]):
    """What a tracer knows of each tensor it has seen, by identity. It keeps those tensors alive, so that their ids
    stay unique while it is in use."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[torch.Tensor, Record]] = {}

    def get(self, t: Any) -> Record | None:
        """The record of ``t``; ``None`` where ``t`` is not a tensor seen."""
        if isinstance(t, torch.Tensor):
            entry = self._by_id.get(id(t))
            if entry is not None and entry[0] is t:
                return entry[1]
        return None

    def put(self, t: torch.Tensor, record: Record) -> None:
        self._by_id[id(t)] = (t, record)
