"""A compiled step program (instructions, parameters, memory layout) and running it on the kernel."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np

from dilated.streaming._fast.kernel import kernel_for
from dilated.streaming._fast.memory import aligned_zeros

_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """Worker threads for batches of streams (the kernel releases the GIL). Plain threads rather than Numba's
    ``parallel=True``: on a machine shared with other jobs, an OpenMP barrier waits for the slowest thread (we
    measured 4x slower than one thread under load), while threads running disjoint stream ranges degrade
    gracefully."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 1) - 1), thread_name_prefix="fast_stream")
    return _POOL


class Compiled:
    """One traced program and the layout of its inputs and outputs."""

    def __init__(
        self,
        prog: np.ndarray,
        params: np.ndarray,
        idx: np.ndarray,
        mem_size: int,
        constants: list[tuple[int, np.ndarray]],
        inputs: list[tuple[str, tuple[int, ...], int]],
        n_in: int,
        output_shape: tuple[int, ...],
        n_out: int,
    ) -> None:
        self.prog, self.params, self.idx, self.mem_size = prog, params, idx, mem_size
        self.constants, self.inputs, self.n_in = constants, inputs, n_in
        self.output_shape, self.n_out = output_shape, n_out
        self.ops = len(prog)
        self.mem = np.zeros(0, dtype=np.float32)  # every stream's values, set by the stream
        self._metas: dict[tuple[int, ...], list[np.ndarray]] = {}
        self.plain_key: tuple | None = None  # (dtype, shape) of an x_t that takes the hot path of FastStream.step
        self.step_shape: tuple[int, ...] = ()

    def fresh_memory(self, batch: int, lanes: int = 1) -> np.ndarray:
        """Every stream's values, flat ``(batch / lanes, mem_size, lanes)``, with the constants written in."""
        flat = aligned_zeros(batch * self.mem_size)
        mem = flat.reshape(batch // lanes, self.mem_size, lanes)
        for base, values in self.constants:
            mem[:, base : base + values.size, :] = values[None, :, None]
        return flat

    def metas(self, steps: int, batch: int, chunk: int, threads: int, lanes: int) -> list[np.ndarray]:
        """The kernel's ``meta`` per thread (see :func:`.kernel_for`), ``[t0, steps, streams, values, inputs,
        outputs, block, first group, end group]``; ``t0`` is set by the caller before each run."""
        key = (steps, batch, chunk, threads, lanes)
        metas = self._metas.get(key)
        if metas is None:
            groups = batch // lanes
            threads = max(1, min(threads, groups // max(chunk, 1)))
            bounds = [groups * i // threads // chunk * chunk for i in range(threads)] + [groups]
            metas = [
                np.array([0, steps, batch, self.mem_size, self.n_in, self.n_out, chunk, lo, hi], np.int64)
                for lo, hi in pairwise(bounds)
            ]
            self._metas[key] = metas
        return metas

    def run(
        self,
        mem: np.ndarray,
        ring: np.ndarray,
        t0: int,
        xin: np.ndarray,
        batch: int,
        chunk: int,
        threads: int = 1,
        lanes: int = 1,
    ) -> np.ndarray:
        """Advance ``batch`` streams (a multiple of ``lanes``) by the steps of ``xin`` ``(steps, batch, n_in)``,
        ``chunk`` groups of ``lanes`` streams at a time, splitting the groups over ``threads`` threads; outputs
        ``(steps, batch, n_out)``."""
        steps = xin.shape[0]
        yout = np.empty(steps * batch * self.n_out, dtype=np.float32)
        if xin.dtype != np.float32 or not xin.flags.c_contiguous:
            xin = np.ascontiguousarray(xin, np.float32)
        xin = xin.reshape(-1)
        metas = self.metas(steps, batch, chunk, threads, lanes)
        for meta in metas:
            meta[0] = t0
        kernel = kernel_for(lanes)
        args = (self.prog, self.params, self.idx, mem, ring, xin, yout)
        if len(metas) == 1:
            kernel(*args, metas[0])
        else:
            jobs = [_pool().submit(kernel, *args, meta) for meta in metas[1:]]
            kernel(*args, metas[0])
            for job in jobs:
                job.result()
        return yout.reshape(steps, batch, self.n_out)
