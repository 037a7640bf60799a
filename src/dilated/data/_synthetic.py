"""The synthetic stress tests of the TCN paper (Bai, Kolter & Koltun 2018, "An Empirical Evaluation of Generic
Convolutional and Recurrent Networks for Sequence Modeling"), following locuslab/TCN's generators
(`TCN/adding_problem/utils.py`, `TCN/copy_memory/utils.py`).

Samples are drawn on the fly: sample `i` comes from `numpy.random.default_rng((seed, i))`, so a dataset is
deterministic given its seed, whatever the order or the worker that reads it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset


class _SeededTask(Dataset[tuple[Tensor, Tensor]]):
    """`size` samples, sample `i` drawn by `_draw` from its own generator seeded with `(seed, i)`."""

    def __init__(self, size: int, seed: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1 sample; got {size}")
        self.size = size
        self.seed = seed

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not -self.size <= index < self.size:
            raise IndexError(f"sample {index} of a dataset of {self.size}")
        return self._draw(np.random.default_rng((self.seed, index % self.size)))

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return (self[index] for index in range(self.size))

    def _draw(self, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class AddingProblem(_SeededTask):
    """Adding problem: sum the two values marked by 1 in the second channel.

    As locuslab/TCN: values U[0, 1), two distinct marked steps anywhere in the sequence; `halves=True` puts one in
    each half instead (`[0, seq_len // 2)` and `[seq_len // 2, seq_len)`), the variant of earlier RNN papers.

    Returns (per item): `x` float32 `(2, seq_len)` (values, markers) and `y` float32 `(1,)`, the sum.
    """

    def __init__(self, size: int, seq_len: int = 600, seed: int = 0, halves: bool = False) -> None:
        super().__init__(size, seed)
        if seq_len < 2:
            raise ValueError(f"seq_len must be >= 2 to hold two markers; got {seq_len}")
        self.seq_len = seq_len
        self.halves = halves

    def _draw(self, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        values = rng.random(self.seq_len, dtype=np.float32)
        if self.halves:
            half = self.seq_len // 2
            marked = np.array([rng.integers(0, half), rng.integers(half, self.seq_len)])
        else:
            marked = rng.choice(self.seq_len, size=2, replace=False)
        markers = np.zeros(self.seq_len, dtype=np.float32)
        markers[marked] = 1
        x = torch.from_numpy(np.stack([values, markers]))  # (2, T)
        return x, torch.tensor([values[marked].sum()], dtype=torch.float32)


class CopyMemory(_SeededTask):
    """Copy memory: recall `mem_len` digits after a blank of `blank_len` steps.

    As locuslab/TCN: input = `mem_len` digits in 1-8, then `blank_len - 1` blanks (0), then `mem_len + 1` nines (the
    first nine is the delimiter); target = `mem_len + blank_len` zeros, then the digits. Length
    `blank_len + 2 * mem_len`.

    Returns (per item): `x` float32 `(1, length)` and `y` int64 `(length,)` of classes 0-9 (one per step).
    """

    def __init__(self, size: int, blank_len: int = 1000, mem_len: int = 10, seed: int = 0) -> None:
        super().__init__(size, seed)
        if blank_len < 1 or mem_len < 1:
            raise ValueError(f"blank_len and mem_len must be >= 1; got {blank_len} and {mem_len}")
        self.blank_len = blank_len
        self.mem_len = mem_len

    def _draw(self, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        digits = rng.integers(1, 9, size=self.mem_len)
        x = np.concatenate([digits, np.zeros(self.blank_len - 1), np.full(self.mem_len + 1, 9)])
        y = np.concatenate([np.zeros(self.mem_len + self.blank_len), digits])
        return torch.from_numpy(x).float().unsqueeze(0), torch.from_numpy(y).long()
