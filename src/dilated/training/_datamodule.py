"""The data module: DataLoaders over a :class:`~dilated.training.Splits`, in an order that resumes mid-epoch.

Why a hand-written sampler rather than Lightning's :class:`torch.utils.data.DistributedSampler` (which Lightning
installs with ``use_distributed_sampler``): a run stopped by Ctrl-C resumes *inside* an epoch, and to end with the
weights of a run never stopped it must skip exactly the samples already trained on. ``DistributedSampler`` has no
way to start part-way through an epoch, and Lightning restarts a non-resumable DataLoader from the epoch's start
(warning that results may differ). :class:`ResumableSampler` serves the same permutation as ``DistributedSampler``
(tested index for index) and can skip the first samples of one epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dilated.training._datasets import dataset_size
from dilated.training._kinds import Splits


class ResumableSampler(Sampler[int]):
    """Sample order that depends on ``(seed, epoch)`` only, sharded over processes, resumable mid-epoch.

    As :class:`torch.utils.data.DistributedSampler`: a permutation from a generator seeded with ``seed + epoch``
    (or ``0 .. n-1`` without shuffling), padded (training) to a multiple of ``world_size``, every
    ``world_size``-th index for ``rank``. ``start(epoch, skip)`` sets the epoch that the next iteration serves and
    how many of its first indices to leave out (those a resumed run already trained on).
    """

    def __init__(
        self, size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1, pad: bool = True
    ) -> None:
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.epoch = 0
        self._skip: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def start(self, epoch: int, skip: int = 0) -> None:
        self.epoch = epoch
        self._skip = (epoch, skip) if skip else None

    def _indices(self) -> torch.Tensor:
        """``(samples of this rank,)`` int64: a tensor, not a list (a Python int costs 36 bytes, 8 here)."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            indices = torch.randperm(self.size, generator=generator)
        else:
            indices = torch.arange(self.size)
        if self.pad and self.size % self.world_size:
            extra = self.world_size - self.size % self.world_size
            indices = torch.cat([indices, indices.repeat(math.ceil(extra / self.size))[:extra]])
        return indices[self.rank :: self.world_size]

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.size / self.world_size)
        return len(range(self.rank, self.size, self.world_size))

    def __iter__(self) -> Iterator[int]:
        indices = self._indices()
        if self._skip is not None:
            epoch, skip = self._skip
            self._skip = None
            if epoch == self.epoch:
                indices = indices[skip:]
        for chunk in indices.split(1 << 16):  # a chunk at a time as Python ints
            yield from chunk.tolist()


class SplitsData(L.LightningDataModule):
    """DataLoaders over a :class:`~dilated.training.Splits`: shuffled training order from
    :class:`ResumableSampler`, validation in order, each process its own shard. Its state (saved in checkpoints) is
    where the data order resumes: the next epoch and the samples of it already trained on (``position``, set by
    whoever writes a checkpoint)."""

    def __init__(self, splits: Splits, batch_size: int, eval_batch_size: int, seed: int, num_workers: int = 0):
        super().__init__()
        self.splits = splits
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.num_workers = seed, num_workers
        self.position: tuple[int, int] = (0, 0)  # (epoch to serve next, samples of it already served)
        self._resume: tuple[int, int] | None = None

    def _loader(self, dataset: Dataset, sampler: Sampler, batch_size: int) -> DataLoader:
        # the loader's own generator: worker seeds do not draw from (and shift) the global RNG
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator(),
        )

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        sampler = ResumableSampler(dataset_size(self.splits.train), self.seed, True, rank, world, pad=True)
        if self._resume is not None:
            sampler.start(*self._resume)
            self._resume = None
        return self._loader(self.splits.train, sampler, self.batch_size)

    def val_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        sampler = ResumableSampler(dataset_size(self.splits.val), shuffle=False, rank=rank, world_size=world, pad=False)
        return self._loader(self.splits.val, sampler, self.eval_batch_size)

    def state_dict(self) -> dict[str, Any]:
        epoch, skip = self.position
        return {"epoch": int(epoch), "skip_samples": int(skip)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._resume = (int(state["epoch"]), int(state["skip_samples"]))
