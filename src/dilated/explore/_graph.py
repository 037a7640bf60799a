"""The analysed model as the page draws it: the rows of :func:`dilated.diagrams.graph_plan` (the graph layout
``dilated draw`` uses) with their fields, names, numbers and repeated blocks, as plain JSON data."""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from dilated.analysis import Field
from dilated.diagrams import GraphPlan
from dilated.summaries import Summary

_BLOCK = re.compile(r"^(.*?[._]\d+)[._]")  # "blocks.3.gate.conv" -> "blocks.3": a numbered part of the model


def field_state(f: Field) -> dict[str, Any]:
    """A field as JSON: step ``t = q * period + r`` reads ``phases[r]`` shifted by ``q * jump``."""
    if any(p.past for p in f.phases):
        raise ValueError("a field that reaches back over every past step cannot be drawn step by step")
    return {"period": f.period, "jump": f.jump, "phases": [p.values() for p in f.phases]}


def _number(value: int | Fraction) -> int | str:
    return str(value) if isinstance(value, Fraction) and value.denominator != 1 else int(value)


def graph_state(plan: GraphPlan, result: Summary, details: Callable[[Any], str]) -> dict[str, Any]:
    """The rows of ``plan`` (row 0: the input) for the page: name, type, op, length, field, jump, parameters
    (the summary row's), position ``x0 + dx * i`` of step ``i``, the block it belongs to and the rows it reads
    with their fields; and the blocks (numbered parts of two rows or more)."""
    params = {row.name: row.params for row in result.layers}
    row_of = {d.node.index: r for r, d in enumerate(plan.order)}
    rows = []
    for r, d in enumerate(plan.order):
        x0, dx = d.position
        match = _BLOCK.match(d.node.name) if r else None
        rows.append(
            {
                "name": d.node.name if r else "input",
                "type": d.node.type_name if r else "",
                "op": details(d.node.module) if r else "",
                "length": d.length,
                "receptive_field": d.size,
                "jump": _number(d.jump),
                "params": params.get(d.node.name, 0) if r else 0,
                "x0": x0,
                "dx": dx,
                "block": match.group(1) if match else None,
                "sources": [[row_of[source], field_state(e)] for source, e in plan.edges_of[r].items()],
            }
        )
    blocks = [row["block"] for row in rows]
    for row in rows:
        if blocks.count(row["block"]) < 2:  # a numbered part of one row is no block to collapse
            row["block"] = None
    return {"rows": rows, "notes": list(plan.notes)}
