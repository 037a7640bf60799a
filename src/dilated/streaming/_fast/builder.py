"""The program being compiled: instructions, parameters, index tables, memory, and where each traced tensor lives.

Every traced tensor is a :class:`Placed`: the memory address of each of its elements, an int64 array of the
tensor's shape. Address -1 marks a step that only padding provides; computing with it is :class:`Unsupported`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dilated.analysis import TensorTable
from dilated.streaming._fast.instructions import GATHER, WIDTH, Op


class Unsupported(Exception):
    """The model's step uses something the instruction set does not cover."""


class Placed:
    """A traced tensor: the memory address of each of its elements (an int64 array of the tensor's shape)."""

    __slots__ = ("addr", "tensor")

    def __init__(self, addr: np.ndarray, tensor: torch.Tensor) -> None:
        self.addr, self.tensor = addr, tensor


def computable(addr: np.ndarray) -> np.ndarray:
    """``addr``, unless it holds steps that only padding provides (address -1): those are :class:`Unsupported`."""
    if addr.size and addr.min() < 0:
        raise Unsupported(
            "an op reads steps that only padding provides (a pad's history or the steps of right "
            "padding) other than through the conv after the pad"
        )
    return addr


class ProgramBuilder:
    """Instructions, parameters, index tables and the memory layout being built, and the traced tensors."""

    def __init__(self) -> None:
        self.rows: list[list[int]] = []
        self.params: list[np.ndarray] = []
        self.n_params = 1  # params[0] is a zero (see compile_step)
        self.index: list[np.ndarray] = []
        self.n_index = 1
        self.mem = 0
        self.blocks: list[tuple[int, int]] = []  # every allocation (offset, size), in address order
        self.constants: list[tuple[int, np.ndarray]] = []  # (address, values) written once into every stream's mem
        self.values: TensorTable[Placed] = TensorTable()

    # -- the program -------------------------------------------------------------------------------------------------
    def emit(self, op: Op, **fields: int) -> None:
        row = op.encode(**fields)
        self.rows.append(row + [0] * (WIDTH - len(row)))

    def param(self, values: Any) -> int:
        """Offset of ``values`` (flattened, float32) in the parameter array."""
        array = np.ascontiguousarray(np.asarray(values, dtype=np.float32).ravel())
        offset = self.n_params
        self.params.append(array)
        self.n_params += array.size
        return offset

    def table(self, addresses: np.ndarray) -> int:
        """Offset of ``addresses`` (flattened) in the index array."""
        offset = self.n_index
        self.index.append(np.ascontiguousarray(addresses.ravel().astype(np.uint64)))
        self.n_index += addresses.size
        return offset

    def alloc(self, n: int) -> int:
        offset = self.mem
        self.mem += max(int(n), 1)
        self.blocks.append((offset, max(int(n), 1)))
        return offset

    def constant(self, values: torch.Tensor | float) -> np.ndarray:
        """Addresses of ``values`` written once into every stream's memory."""
        array = np.asarray(
            values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values, dtype=np.float32
        )
        base = self.alloc(array.size)
        self.constants.append((base, array.ravel().copy()))
        return base + np.arange(array.size, dtype=np.int64).reshape(array.shape)

    # -- traced tensors ----------------------------------------------------------------------------------------------
    def value(self, t: Any) -> Placed | None:
        return self.values.get(t)

    def register(self, t: torch.Tensor, addr: np.ndarray) -> Placed:
        v = Placed(np.asarray(addr, dtype=np.int64).reshape(tuple(t.shape)), t)
        self.values.put(t, v)
        return v

    def fresh(self, t: torch.Tensor) -> int:
        """Fresh memory for ``t``; its base address."""
        base = self.alloc(t.numel())
        self.register(t, base + np.arange(t.numel()))
        return base

    def fresh_step(self, out: torch.Tensor) -> int:
        """Fresh memory for this step's values of a stateful conv's output ``(1, C, 1 + right)``; the ``right``
        steps from right padding get address -1 (reading them is :class:`Unsupported`)."""
        base = self.alloc(out.shape[1])
        addr = np.full(tuple(out.shape), -1, dtype=np.int64)
        addr[:, :, 0] = base + np.arange(out.shape[1])
        self.register(out, addr)
        return base

    def addresses(self, x: Any) -> np.ndarray:
        """Addresses of a traced tensor (-1 for steps only padding provides), or of a constant."""
        v = self.value(x)
        return v.addr if v is not None else self.operand(x)

    def operand(self, x: Any) -> np.ndarray:
        """Addresses of a traced tensor that an op computes with, or of a constant (untraced tensor or number)."""
        v = self.value(x)
        if v is not None:
            return computable(v.addr)
        if isinstance(x, torch.Tensor):
            if x.numel() > 1 << 16 or not (x.is_floating_point() or x.dtype in (torch.int64, torch.int32, torch.bool)):
                raise Unsupported(f"a constant tensor of shape {tuple(x.shape)} and dtype {x.dtype}")
            return self.constant(x.float())
        if isinstance(x, bool | int | float):
            return self.constant(float(x))
        raise Unsupported(f"an operand of type {type(x).__name__}")

    def contiguous(self, addr: np.ndarray) -> int:
        """Base address of ``addr`` laid out contiguously (gathering it into fresh memory if needed)."""
        flat = computable(addr).ravel()
        if flat.size and np.array_equal(flat, flat[0] + np.arange(flat.size)):
            return int(flat[0])
        base = self.alloc(flat.size)
        self.emit(GATHER, out=base, table=self.table(flat), n=flat.size)
        return base
