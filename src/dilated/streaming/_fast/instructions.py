"""The fast path's instruction set, declared once.

An instruction is a row of unsigned integers: the op code, then the op's fields in the order declared below. Each
:class:`Op` declares its fields by name and role, and everything that reads or writes rows derives from that one
declaration:

* the compiler writes rows with ``op.encode(out=..., inp=..., ...)`` (by name; unknown or missing names raise);
* the kernel reads field ``f`` of op ``X`` as ``prog[pc, X.at.f]`` (``X.at`` is a named tuple of column numbers,
  which Numba freezes into constants);
* the memory planner asks ``op.reads`` / ``op.writes`` / ``op.ranges`` / ``op.address_fields`` (from the roles),
  and the ReLU fusion asks ``op.result`` and ``op.relu`` (the field that applies a ReLU to the result).

Roles: ``Write``/``Read`` fields hold a memory address and the length of the contiguous range written or read
there; ``Scratch`` is written then read by the same instruction; ``Table`` is an offset into the index table, whose
entries are addresses read; ``Param`` an offset into the parameters; ``Int`` a plain number (count, kind, flag).
A length is a field name or a function of the row's fields (a named tuple).
"""

from __future__ import annotations

import hashlib
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

# namedtuple with field names known only at run time (mypy types namedtuple() calls with literal fields only)
_record_type: Callable[[str, Sequence[str]], Any] = namedtuple
Role = Literal["int", "param", "write", "read", "scratch", "table"]
Length = str | Callable[[Any], int]


@dataclass(frozen=True)
class OperandField:
    """One named integer of an instruction; ``length`` (for address roles) is a field name or a function."""

    name: str
    role: Role = "int"
    length: Length | None = None


def Int(name: str) -> OperandField:  # noqa: N802 - reads as a declaration
    return OperandField(name)


def Param(name: str) -> OperandField:  # noqa: N802
    return OperandField(name, "param")


def Write(name: str, length: Length) -> OperandField:  # noqa: N802
    return OperandField(name, "write", length)


def Read(name: str, length: Length) -> OperandField:  # noqa: N802
    return OperandField(name, "read", length)


def Scratch(name: str, length: Length) -> OperandField:  # noqa: N802
    return OperandField(name, "scratch", length)


def Table(name: str, length: Length) -> OperandField:  # noqa: N802
    return OperandField(name, "table", length)


class Op:
    """An instruction: ``name``, op ``code`` (column 0) and its fields (columns 1, 2, ...).

    Args:
        relu: the flag field that makes the op apply a ReLU to its result (set by the ReLU fusion), if any.
    """

    def __init__(self, name: str, code: int, fields: Sequence[OperandField], relu: str | None = None) -> None:
        self.name, self.code, self.fields, self.relu_field = name, code, tuple(fields), relu
        names = [f.name for f in self.fields]
        self.at = _record_type(f"{name.title()}Fields", names)(*range(1, len(names) + 1))
        self._view = _record_type(f"{name.title()}Row", names)
        self.relu = getattr(self.at, relu) if relu is not None else None
        writes = [i + 1 for i, f in enumerate(self.fields) if f.role == "write"]
        self.result_at = writes[0] if writes else None  # column of the (first) result's address

    def encode(self, **values: int) -> list[int]:
        """The row for the given field values (fields not given are zero: absent params, cleared flags)."""
        unknown = sorted(set(values) - set(self.at._fields))
        if unknown:
            raise TypeError(f"{self.name}: unknown field(s) {unknown}; fields are {list(self.at._fields)}")
        row = [self.code] + [int(values.get(f.name, 0)) for f in self.fields]
        if min(row) < 0:
            raise ValueError(f"{self.name}: negative field in {dict(zip(self.at._fields, row[1:]))}")
        return row

    def view(self, row: Sequence[int]) -> Any:
        """The row's fields by name."""
        return self._view(*(int(v) for v in row[1 : len(self.fields) + 1]))

    def _spans(self, row: Sequence[int], roles: tuple[Role, ...]) -> list[tuple[OperandField, int, int]]:
        """``(field, address, length)`` of the fields with these roles whose length is not zero."""
        fields = self.view(row)
        spans = []
        for f in self.fields:
            if f.role in roles:
                assert f.length is not None  # every address role declares its length
                n = getattr(fields, f.length) if isinstance(f.length, str) else f.length(fields)
                if n > 0:
                    spans.append((f, getattr(fields, f.name), int(n)))
        return spans

    def writes(self, row: Sequence[int]) -> list[tuple[int, int]]:
        """The ``(address, length)`` ranges the instruction writes (scratch included)."""
        return [(a, n) for _, a, n in self._spans(row, ("write", "scratch"))]

    def ranges(self, row: Sequence[int]) -> list[tuple[int, int]]:
        """The contiguous ``(address, length)`` ranges it reads or writes as one piece of memory."""
        return [(a, n) for _, a, n in self._spans(row, ("write", "scratch", "read"))]

    def reads(self, row: Sequence[int], idx: np.ndarray) -> np.ndarray:
        """Every memory address it reads (its ring excluded)."""
        parts = [np.arange(a, a + n) for _, a, n in self._spans(row, ("read", "scratch"))]
        parts += [idx[a : a + n] for _, a, n in self._spans(row, ("table",))]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    def result(self, row: Sequence[int]) -> tuple[int, int]:
        """``(address, length)`` of its (first) result."""
        _, address, n = self._spans(row, ("write",))[0]
        return address, n

    def address_fields(self, row: Sequence[int]) -> list[int]:
        """Columns holding memory addresses in use (moved by memory compaction)."""
        return [getattr(self.at, f.name) for f, _, _ in self._spans(row, ("write", "read", "scratch"))]


def _conv_taps(f: Any) -> int:
    return f.k * f.cin if f.k > 1 else 0


def _strided(stride: str) -> Callable[[Any], int]:
    return lambda f: max(f.n * getattr(f, stride), 1)


# The instruction set: one declaration per op, op codes in this order.
_DECLARED = [
    # out = conv(ring of inputs, weight) (+ bias); k > 1: the input is pushed into this conv's ring (rows deep)
    # and the k taps, dilation apart, are gathered into scratch first. saxpy: weight laid out (k * cin, cout).
    (
        "conv",
        [
            Write("out", "cout"),
            Read("inp", "cin"),
            Param("weight"),
            Param("bias"),
            Int("cin"),
            Int("cout"),
            Int("k"),
            Int("dilation"),
            Int("ring"),
            Int("rows"),
            Scratch("scratch", _conv_taps),
            Int("has_bias"),
            Int("saxpy"),
            Int("relu"),
        ],
        "relu",
    ),
    ("unary", [Write("out", "n"), Read("inp", "n"), Int("n"), Int("kind"), Param("alpha")], None),
    # out[i] = a[i * stride_a] (kind) b[i * stride_b]; a stride of 0 broadcasts one value
    (
        "binary",
        [
            Write("out", "n"),
            Read("a", _strided("stride_a")),
            Read("b", _strided("stride_b")),
            Int("n"),
            Int("kind"),
            Int("stride_a"),
            Int("stride_b"),
            Int("relu"),
        ],
        "relu",
    ),
    ("gather", [Write("out", "n"), Table("table", "n"), Int("n")], None),  # out[i] = mem[idx[table + i]]
    ("embed", [Write("out", "dim"), Read("inp", lambda f: 1), Param("table"), Int("dim"), Int("rows")], None),
    ("onehot", [Write("out", "num"), Read("inp", lambda f: 1), Int("num")], None),
    ("affine", [Write("out", "n"), Read("inp", "n"), Int("n"), Param("scale"), Param("shift")], None),
    ("layernorm", [Write("out", "n"), Read("inp", "n"), Int("n"), Param("weight"), Param("bias"), Param("eps")], None),
    # out[r] = sum (or mean) over c of mem[idx[table + r * cols + c]]
    (
        "reduce",
        [Write("out", "rows"), Table("table", lambda f: f.rows * f.cols), Int("rows"), Int("cols"), Int("mean")],
        None,
    ),
    ("input", [Write("out", "n"), Int("src"), Int("n")], None),  # mem[out + i] = x_t[src + i]
    ("output", [Int("dst"), Read("inp", "n"), Int("n")], None),  # y_t[dst + i] = mem[inp + i]
]
OPS: tuple[Op, ...] = tuple(Op(name, code, fields, relu) for code, (name, fields, relu) in enumerate(_DECLARED))
CONV, UNARY, BINARY, GATHER, EMBED, ONEHOT, AFFINE, LAYERNORM, REDUCE, INPUT, OUTPUT = OPS
BY_CODE = {op.code: op for op in OPS}
OPCODE = _record_type("Opcodes", [op.name.upper() for op in OPS])(*(op.code for op in OPS))
WIDTH = 1 + max(len(op.fields) for op in OPS)  # columns per row

# Kinds of UNARY and BINARY
RELU, TANH, SIGMOID, ELU, LEAKY, GELU, GELU_TANH, SILU, EXP, NEG, ABS, SOFTPLUS = range(12)
ADD, SUB, MUL, DIV = range(4)

# This file's text as one number. Numba's on-disk cache notices changes to the file that holds a cached function,
# not to the constants it reads from other files (the field columns and kinds above); the kernel holds this in its
# closure, whose values Numba's cache key includes, so an edited instruction set recompiles instead of running stale
# code.
LAYOUT = int.from_bytes(hashlib.sha256(Path(__file__).read_bytes()).digest()[:7])


def op_of(row: Sequence[int]) -> Op:
    """The :class:`Op` of a row."""
    return BY_CODE[int(row[0])]
