"""Memory planning of a compiled program: ReLU fusion and compaction (values whose lifetimes do not overlap share
memory), both read from the instruction declarations (:mod:`.instructions`); and the kernel's buffers, allocated
on cache-line boundaries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dilated.streaming._fast.instructions import RELU, UNARY, op_of

CACHE_LINE = 64  # bytes; every value's start is 16 floats aligned within memory (see Groups.place)


def aligned_zeros(n: int) -> np.ndarray:
    """``n`` float32 zeros, flat, the first on a cache-line boundary, so that each value (16 floats aligned within
    memory) starts a line and the kernel's vector loops never straddle two. Where numpy's allocator happened to
    return an address 16 bytes past a line, 1,024 streams stepped 1.4x slower."""
    spare = np.zeros(n + CACHE_LINE // 4, dtype=np.float32)
    start = (-spare.ctypes.data % CACHE_LINE) // 4
    return spare[start : start + n]


def fuse_relu(rows: np.ndarray, idx: np.ndarray, mem_size: int) -> np.ndarray:
    """Fold each ReLU into the instruction right before it (an op declaring a ``relu`` field: conv, arithmetic)
    when nothing else reads that instruction's result: one pass over memory fewer (TCN blocks are conv-ReLU and
    add-ReLU)."""
    reads = np.zeros(mem_size + 1, dtype=np.int64)
    for row in rows:
        np.add.at(reads, op_of(row).reads(row, idx), 1)
    keep = np.ones(len(rows), dtype=bool)
    relu_in, relu_n = UNARY.at.inp, UNARY.at.n
    for i in range(1, len(rows)):
        row, prev = rows[i], rows[i - 1]
        if row[0] != UNARY.code or row[UNARY.at.kind] != RELU or not keep[i - 1]:
            continue
        fused = op_of(prev)
        if fused.relu is None:
            continue
        out, n = fused.result(prev)
        if (row[relu_in], row[relu_n]) != (out, n) or np.any(reads[out : out + n] != 1):
            continue
        prev[fused.result_at], prev[fused.relu] = row[UNARY.at.out], 1  # write the rectified result where the
        keep[i] = False  # ReLU wrote it
    return rows[keep]


Constants = list[tuple[int, np.ndarray]]  # (address, values) written once into every stream's memory


def compact(
    rows: np.ndarray, idx: np.ndarray, blocks: list[tuple[int, int]], allocated: int, constants: Constants
) -> tuple[np.ndarray, np.ndarray, Constants, int]:
    """Reuse memory between values whose lifetimes do not overlap (linear scan over the instructions), with
    64-byte aligned blocks: a stream's values then stay in cache, and many streams' values in a chunk together.

    Allocations that an instruction reads as one range (e.g. the two halves of a ``cat`` that needed no copy) are
    kept together, in order. ``blocks``: every allocation ``(offset, size)`` in address order, ``allocated``
    values in all; ``constants``: ``(address, values)`` written once into every stream's memory. Returns the
    remapped rows, index table and constants, and the compacted values per stream."""
    groups = _Groups.of(rows, blocks, allocated)
    first, last = groups.lifetimes(rows, idx, constants)
    new_start, size = groups.place(first, last)

    def remap(addresses: np.ndarray) -> np.ndarray:
        g = groups.of_addresses(addresses)
        return new_start[g] + addresses - groups.start[g]

    rows = rows.copy()
    for row in rows:
        for field in op_of(row).address_fields(row):
            row[field] = remap(np.array([row[field]]))[0]
    idx = idx.copy()
    idx[1:] = remap(idx[1:])
    constants = [(int(remap(np.array([base]))[0]), values) for base, values in constants]
    return rows, idx, constants, int(max(size, 1))


@dataclass(frozen=True)
class _Groups:
    """Allocations that move together: ``block_starts`` (every block's first address, then the end of memory),
    ``group`` (each block's group), and each group's ``start`` and ``end`` address."""

    block_starts: np.ndarray
    group: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray, blocks: list[tuple[int, int]], allocated: int) -> _Groups:
        """The groups of ``blocks``: neighbouring blocks that some instruction of ``rows`` reads or writes as one
        range join one group."""
        starts = np.array([b[0] for b in blocks] + [allocated], dtype=np.int64)
        n_blocks = len(blocks)
        joined = np.zeros(n_blocks, dtype=bool)  # joined[b]: block b and b + 1 move together
        for row in rows:
            for start, n in op_of(row).ranges(row):
                first_block, last_block = _block_of(starts, np.array([start, start + max(n, 1) - 1]))
                joined[first_block:last_block] = True
        group = np.concatenate([[0], np.cumsum(~joined[:-1])]) if n_blocks else np.zeros(0, dtype=np.int64)
        n_groups = int(group[-1]) + 1 if n_blocks else 0
        group_start = np.array([starts[np.argmax(group == g)] for g in range(n_groups)], dtype=np.int64)
        group_end = np.array([starts[np.nonzero(group == g)[0][-1] + 1] for g in range(n_groups)], dtype=np.int64)
        return cls(starts, group, group_start, group_end)

    def of_addresses(self, addresses: np.ndarray) -> np.ndarray:
        """The group of each address."""
        return self.group[_block_of(self.block_starts, addresses)]

    def lifetimes(self, rows: np.ndarray, idx: np.ndarray, constants: Constants) -> tuple[np.ndarray, np.ndarray]:
        """Per group, the first instruction writing it and the last reading it (-1: none); constants live
        throughout."""
        n_groups = len(self.start)
        first = np.full(n_groups, -1, dtype=np.int64)
        last = np.full(n_groups, -1, dtype=np.int64)
        for i, row in enumerate(rows):
            for start, n in op_of(row).writes(row):
                for g in np.unique(self.of_addresses(np.arange(start, start + max(n, 1)))):
                    first[g] = i if first[g] < 0 else min(first[g], i)
            for g in np.unique(self.of_addresses(op_of(row).reads(row, idx))):
                last[g] = max(last[g], i)
        for base, _ in constants:
            g = self.of_addresses(np.array([base]))[0]
            first[g], last[g] = 0, len(rows)
        return first, last

    def place(self, first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, int]:
        """Each group's new start (16 values aligned; groups never used get no memory) by a linear scan in order of
        first use, placing a group in the lowest gap between the groups still live; and the memory used."""
        new_start = np.zeros(len(self.start), dtype=np.int64)
        active: list[tuple[int, int, int]] = []  # (start, size, last use)
        size = 0
        for g in sorted(range(len(self.start)), key=lambda g: (first[g] if first[g] >= 0 else last[g], g)):
            if first[g] < 0 and last[g] < 0:
                continue  # never used: no memory
            begin = first[g] if first[g] >= 0 else last[g]
            need = -(-(self.end[g] - self.start[g]) // 16) * 16
            active = [a for a in active if a[2] >= begin]
            offset = 0
            for start, length, _ in sorted(active):
                if offset + need <= start:
                    break
                offset = max(offset, start + length)
            new_start[g] = offset
            active.append((offset, need, max(last[g], begin)))
            size = max(size, offset + need)
        return new_start, size


def _block_of(starts: np.ndarray, addresses: np.ndarray) -> np.ndarray:
    """The block of each address, of blocks beginning at ``starts``."""
    return np.searchsorted(starts, addresses, side="right") - 1
