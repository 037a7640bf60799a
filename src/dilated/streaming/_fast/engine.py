"""The compiled streaming engine: :class:`FastStream`, the same outputs and state as the eager
:class:`~dilated.streaming.EagerStream` in a few microseconds per step.

Eager PyTorch spends ~5-10 us of dispatch per op, so one step of a 10-block TCN costs ~1 ms however small its
convs are. Here the model's step is compiled once (:mod:`.compiler`) into a short program of the instruction set
(:mod:`.instructions`) and the Numba interpreter (:mod:`.kernel`) runs the whole program in one call:

* each causal conv keeps a ring of its last ``dilation * (kernel - 1) + 1`` inputs per stream, so a step reads
  ``kernel`` rows whatever the dilation: O(1) per step in the receptive field;
* one stream is one call; a batch of streams runs one instruction at a time over blocks of streams (so the
  instruction's weights stay in cache), split over threads (the kernel releases the GIL). From 64 streams on,
  streams are laid out in groups of 64 or 128 lanes, value-major, so every instruction is a vector operation across
  streams and a conv a small register-tiled matrix product;
* ReLUs are folded into the conv or addition before them, and values whose lifetimes do not overlap share
  memory (a 10-block TCN needs 160 floats per stream besides its rings);
* tanh and sigmoid use a rational approximation (|error| < 4e-7) that vectorises, where libm's does not;
* a single step (:meth:`FastStream.step`, :meth:`FastStream.step_numpy`) is one kernel call with nothing built per
  step but its output: a torch input is read in place by address, a numpy one as it is, and the kernel's memory
  starts on a cache line.

Models need no per-model code: stacks of causal convs with pointwise activations, TCN temporal blocks and WaveNet
residual blocks all compile. Anything the instruction set does not cover makes :class:`FastStream` run the eager
engine instead, with a warning that names the op; :attr:`FastStream.backend` says which one runs. Before its first
step the eager engine passes the construction check against the model's forward (:mod:`dilated.streaming._verify`),
and then the compiled program is checked against the same forward outputs on the check's longest input; a program
that disagrees is not used (the eager engine runs, as for an op the compiler does not cover).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from dilated.streaming._eager import STEPS_KEY, EagerStream, check_state
from dilated.streaming._fast.compiler import Unsupported, compile_step
from dilated.streaming._fast.kernel import LANES, kernel_at_for, kernel_for
from dilated.streaming._fast.memory import aligned_zeros
from dilated.streaming._fast.program import Compiled
from dilated.streaming._verify import Case, disagreement, model_dtype, reference
from dilated.streaming._weights import Weights

Fallback = Literal["warn", "silent", "raise"]


def unsupported_reason(model: nn.Module) -> str | None:
    """Why :class:`FastStream` cannot take ``model`` at all, or ``None``. Ops the compiler does not cover are only
    found when tracing the first step."""
    if not isinstance(model, nn.Module):
        return f"{type(model).__name__} is not a torch.nn.Module"
    return None


def _per_step(value: Any, n: int) -> bool:
    """Whether an extra model argument is a per-step sequence ``(batch, channels, n)`` (else constant per chunk)."""
    return isinstance(value, torch.Tensor | np.ndarray) and value.ndim >= 3 and value.shape[-1] == n


_F32 = np.dtype(np.float32)
_BLOCK_BYTES = 16384  # outputs handed out per preallocated block (at least one step's)


class _HotStep:
    """The single step of a stream whose program takes ``x`` alone and runs as one kernel call (one thread, no
    padding streams), without the general path's packing and allocations: the kernel reads the caller's buffer
    in place (a torch tensor by address, a numpy array as it is) and writes each step's outputs into the next slot
    of a preallocated block. Every slot is handed out once and a block is never written after its last slot, so
    outputs of different steps never share memory."""

    def __init__(self, compiled: Compiled, ring: np.ndarray, batch: int, lanes: int, chunk: int) -> None:
        self.kernel, self.kernel_at = kernel_for(lanes), kernel_at_for(lanes)
        self.head = (compiled.prog, compiled.params, compiled.idx, compiled.mem, ring)
        (self.meta,) = compiled.metas(1, batch, chunk, 1, lanes)
        assert compiled.plain_key is not None  # (set with the program's first step)
        self.x_shape, self.y_shape = tuple(compiled.plain_key[1]), compiled.step_shape
        size = batch * compiled.n_out
        self.slots = max(1, min(256, _BLOCK_BYTES // (4 * size)))
        self.slot_bytes = 4 * size
        self.used = self.slots  # no block yet
        self.views: tuple[torch.Tensor, ...] = ()
        self.address = 0

    def _new_block(self) -> int:
        """A fresh block of output slots; its first slot."""
        block = torch.empty(self.slots, *self.y_shape)
        self.views, self.address = block.unbind(0), block.data_ptr()
        return 0

    def torch_step(self, x_t: torch.Tensor, t: int) -> torch.Tensor | None:
        """Step ``t`` from ``x_t`` ``(batch, channels)``: float32, contiguous, on the CPU (else ``None``)."""
        if not (x_t.dtype is torch.float32 and x_t.shape == self.x_shape and x_t.is_contiguous() and x_t.is_cpu):
            return None
        slot = self.used
        if slot == self.slots:
            slot = self._new_block()
        self.used = slot + 1
        self.kernel_at(*self.head, x_t.data_ptr(), self.address + slot * self.slot_bytes, self.meta, t)
        return self.views[slot]

    def numpy_step(self, x_t: np.ndarray, t: int) -> np.ndarray | None:
        """Step ``t`` from a float32 array ``(batch, channels)`` (else ``None``); a new output array."""
        if not (type(x_t) is np.ndarray and x_t.dtype is _F32 and x_t.shape == self.x_shape):
            return None
        y = np.empty(self.y_shape, _F32)
        self.meta[0] = t
        self.kernel(*self.head, x_t.ravel(), y.ravel(), self.meta)
        return y


class FastStream:
    """:class:`dilated.streaming.EagerStream` with the step compiled to a Numba kernel (same API, same state format).

    The program is compiled on the first step (the example input fixes the input layout and the non-tensor
    arguments; other arguments trigger a recompile) and checked against the eager engine on a few random steps.
    If the model uses an op the compiler does not cover, the stream runs the eager engine instead (with a warning
    naming the op when ``fallback="warn"``; ``"raise"`` raises :class:`Unsupported`); :attr:`backend` says which
    one runs.

    The weights are copied into the program when it is compiled (weight norm folded in); the stream follows them
    all the same (:mod:`dilated.streaming._weights`): after any change (in place, ``p.data = ...``, reassigned) the next step
    compiles the program again and checks it against the model's forward on the check's one-receptive-field input.

    Args:
        model: as for :class:`~dilated.streaming.EagerStream`; the kernel computes in float32, so a model of another
            dtype runs on the eager engine (in its own dtype).
        batch_size: independent streams.
        fallback: ``"warn"``, ``"silent"`` or ``"raise"``, see above.
        parallel_threshold: from this many streams on, they are split over ``threads`` threads (default: one per
            core).
        lanes: streams computed together by one vector instruction (see :mod:`dilated.streaming._fast.kernel`); default
            the widest of :data:`LANES` that the batch fills (128 from 128 streams on, 64 from 64), else 1. The
            batch is padded to a multiple of it.
    """

    def __init__(
        self,
        model: nn.Module,
        batch_size: int = 1,
        fallback: Fallback = "warn",
        parallel_threshold: int = 64,
        threads: int | None = None,
        lanes: int | None = None,
        verify: bool = True,
        example: torch.Tensor | None = None,
    ) -> None:
        reason = unsupported_reason(model)
        if reason is not None:
            raise TypeError(f"FastStream: {reason}")
        self.model, self.batch_size, self.fallback = model, batch_size, fallback
        self.parallel_threshold = parallel_threshold
        self.threads = threads if threads is not None else (os.cpu_count() or 1)
        self.lanes = lanes if lanes is not None else next((n for n in LANES if batch_size >= n), 1)
        self.padded = -(-batch_size // self.lanes) * self.lanes  # streams the kernel runs, a multiple of lanes
        # traced and used as the reference (its state is never advanced); it runs the construction check
        self._engine = EagerStream(model, 1, verify=verify, example=example)
        self.rings: dict[str, tuple[int, int]] = {}
        self.histories: dict[str, tuple[int, int]] = {}  # path -> (in_channels, history)
        self.ring = np.zeros(1, dtype=np.float32)
        self._hot: _HotStep | None = None  # the current program's single step, once it has run one
        if self._engine.tree.sites is not None and all(c.in_channels is not None for c in self._engine.convs.values()):
            self._lay_out()  # else the layout waits for the first step (what padding layers take is seen running)
        self.chunk: int | None = None  # groups of lanes per block of the kernel's loop (default: see _chunk)
        self.steps = 0
        self._programs: dict[Any, Compiled] = {}
        self._current: Compiled | None = None
        self._eager: EagerStream | None = None
        self.reason: str | None = None
        self.weights = Weights(model)
        self._recheck = False  # a weight change: check the next program on the short input

    def _lay_out(self) -> None:
        """One ring per stateful layer, ``(rows, groups, in_channels, lanes)`` with ``rows = history + 1``."""
        size = 0
        for path, layer in self._engine.convs.items():
            rows, channels = layer.history + 1, layer.in_channels
            assert channels is not None  # laid out once every stateful layer knows its channels
            self.rings[path] = (size, rows)
            self.histories[path] = (channels, layer.history)
            size += rows * channels
        self.ring = aligned_zeros(max(size * self.padded, 1))
        self.ring.fill(0.0)  # touch every page now rather than on the first pass through the ring
        self._hot = None

    def _learn_layout(self, x_t: torch.Tensor, kwargs: dict[str, Any]) -> None:
        """Run the reference engine once (its check, or one zero step) so that it knows every stateful layer."""
        example = x_t[:1].unsqueeze(-1)
        first: dict[str, Any] = {k: (v[:1] if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
        self._engine.prepare(example, **first)  # the construction check, if it is still to run
        if self._engine.tree.sites is None or any(c.in_channels is None for c in self._engine.convs.values()):
            with torch.no_grad():
                self._engine.run(torch.zeros_like(example), **first)
            self._engine.reset()
        self._lay_out()

    def _require_layout(self) -> None:
        if not self.rings and self._engine.convs:
            raise ValueError(
                "this FastStream does not know its state layout yet (a padding layer's channels or the "
                "F.pad calls of a forward are seen when it runs): step it once, or pass example="
            )

    @property
    def backend(self) -> str:
        """``"fast"``, or ``"eager"`` after a fallback (see :attr:`reason`)."""
        return "eager" if self._eager is not None else "fast"

    @property
    def receptive_field(self) -> int:
        return self._engine.receptive_field

    # -- compilation -------------------------------------------------------------------------------------------------
    def _program(self, x_t: torch.Tensor, kwargs: dict[str, Any]) -> Compiled | None:
        key = (
            x_t.dtype,
            x_t.shape[1:],
            *((k, (v.dtype, v.shape[1:]) if isinstance(v, torch.Tensor) else repr(v)) for k, v in kwargs.items()),
        )
        compiled = self._programs.get(key)
        if compiled is not None:
            if compiled is not self._current:
                self._current, self._hot = compiled, None
            return compiled
        example = x_t[:1].unsqueeze(-1)
        example_kwargs: dict[str, Any] = {k: (v[:1] if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
        self._engine.prepare(example, **example_kwargs)  # the construction check: no path skips it
        if not self.rings and self._engine.convs:
            self._learn_layout(x_t, kwargs)
        try:
            dtype = model_dtype(self.model)
            if dtype != torch.float32:
                raise Unsupported(f"a {str(dtype)[6:]} model (the kernel computes in float32)")
            compiled = compile_step(self._engine, self.rings, example, example_kwargs)
            self._check(compiled)
        except Unsupported as error:
            self._fall_back(str(error))
            return None
        compiled.mem = compiled.fresh_memory(self.padded, self.lanes)
        self._programs[key] = self._current = compiled
        self._hot = None
        return compiled

    def _check(self, compiled: Compiled) -> None:
        """Run the program over the construction check's longest input (after a weight change: its short input,
        against the forward with the new weights) and compare with the model's forward; :class:`Unsupported` where
        they differ. Nothing to compare with when the stream was built with ``verify=False``."""
        cases = self._engine.cases
        if not cases:
            return
        case = cases[-1]
        if self._recheck:
            case = reference(self.model, cases[0].x, cases[0].args, cases[0].kwargs)
            self._recheck = False
        got = self._kernel_outputs(compiled, case)
        excess, future = disagreement(case.expected, got) if case.expected is not None else (1.0, False)
        if excess or future:
            raise Unsupported(
                f"the compiled step differs from the model's forward (by {excess:.3g}); "
                "the model probably does something the tracer cannot see"
            )

    def _kernel_outputs(self, compiled: Compiled, case: Case) -> torch.Tensor:
        """The program's outputs for ``case`` from zero state, shaped like the forward's output."""
        streams, n = case.x.shape[0], case.x.shape[-1]
        padded = -(-streams // self.lanes) * self.lanes
        ring = aligned_zeros(max(self.ring.size // self.padded, 1) * padded)
        xin = self._pack(compiled, case.x, case.kwargs, streams, n)
        xin = np.concatenate([xin, np.zeros((n, padded - streams, xin.shape[2]), np.float32)], axis=1)
        mem = compiled.fresh_memory(padded, self.lanes)
        yout = compiled.run(mem, ring, 0, xin, padded, self._chunk(compiled), 1, self.lanes)[:, :streams]
        got = torch.from_numpy(yout).reshape(n, streams, *compiled.output_shape[1:])
        got = (got.squeeze(-1) if len(compiled.output_shape) >= 3 else got).movedim(0, -1)
        expected = case.expected
        return got[..., -1] if expected is not None and expected.dim() < got.dim() else got

    def _fall_back(self, reason: str) -> None:
        if self.fallback == "raise":
            raise Unsupported(reason)
        if self.fallback == "warn":
            warnings.warn(f"dilated.streaming: falling back to the eager engine: {reason}", stacklevel=4)
        self.reason = reason
        self._hot = None
        state = self.state_dict() if self.steps else None  # (no step yet: nothing to carry over)
        self._eager = EagerStream(self.model, self.batch_size, verify=False, like=self._engine)
        if state is not None:
            self._eager.load_state_dict(state)

    # -- stepping ----------------------------------------------------------------------------------------------------
    @staticmethod
    def _pack(compiled: Compiled, x: torch.Tensor, kwargs: dict[str, Any], batch: int, n: int) -> np.ndarray:
        """Inputs as ``(n, batch, n_in)`` float32: ``x`` ``(batch, C, n)`` and tensor kwargs."""
        parts = []
        for name, _, _ in compiled.inputs:
            value = (x if name == "x" else kwargs[name]).detach().numpy()
            if name == "x" or _per_step(value, n):
                parts.append(np.moveaxis(value, -1, 0).reshape(n, batch, -1))  # (n, B, per-step numel)
            else:  # constant over the chunk (e.g. global conditioning)
                parts.append(np.broadcast_to(value.reshape(1, batch, -1), (n, batch, value[0].size)))
        packed = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
        return np.ascontiguousarray(packed, dtype=np.float32)

    def _chunk(self, compiled: Compiled) -> int:
        """Groups of ``lanes`` streams per block: their values (``mem_size`` floats per stream) fit in ~64 KB of
        cache; at least one group."""
        if self.chunk is not None:
            return self.chunk
        return max(1 if self.lanes > 1 else 4, min(64, 65536 // (4 * compiled.mem_size * self.lanes)))

    def _advance(self, compiled: Compiled, xin: np.ndarray) -> np.ndarray:
        """Run the kernel over ``xin`` ``(n, batch, n_in)``: outputs ``(n, batch, n_out)``."""
        if self.padded != self.batch_size:
            xin = np.concatenate(
                [xin, np.zeros((xin.shape[0], self.padded - self.batch_size, xin.shape[2]), np.float32)], axis=1
            )
        yout = compiled.run(
            compiled.mem, self.ring, self.steps, xin, self.padded, self._chunk(compiled), self._threads(), self.lanes
        )
        self.steps += xin.shape[0]
        return yout if self.padded == self.batch_size else yout[:, : self.batch_size]

    def _threads(self) -> int:
        return self.threads if self.batch_size >= self.parallel_threshold else 1

    def _run(self, x: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor | None:
        """Advance by the ``n`` steps of ``x`` ``(batch, C, n)``: outputs ``(n, batch, *output shape)``, or ``None``
        after falling back to the eager engine."""
        n = x.shape[-1]
        first = {k: (v[..., :1] if _per_step(v, n) else v) for k, v in kwargs.items()}  # one step's arguments
        compiled = self._program(x[..., 0], first)
        if compiled is None:
            return None
        yout = self._advance(compiled, self._pack(compiled, x, kwargs, self.batch_size, n))
        return torch.from_numpy(yout).reshape(n, self.batch_size, *compiled.output_shape[1:])

    def step(self, x_t: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """One step for every stream: ``(batch, channels) -> (batch, out_channels)``."""
        if self.weights.changed():
            self._weights_changed()
        hot = self._hot
        if hot is not None and not kwargs and type(x_t) is torch.Tensor:  # the hot path: compiled, one input
            y = hot.torch_step(x_t, self.steps)
            if y is not None:
                self.steps += 1
                return y
        compiled = self._current
        if (
            compiled is not None and not kwargs and compiled.plain_key == (x_t.dtype, x_t.shape) and self._eager is None
        ):  # one input, already compiled, taken as numpy (another layout, several threads, padding streams)
            xin = (x_t.detach() if x_t.requires_grad else x_t).numpy()[None]  # (1 step, B, C)
            return torch.from_numpy(self._advance(compiled, xin).reshape(compiled.step_shape))
        if self._eager is None:
            self._check_batch(x_t)
            y = self._run(x_t.unsqueeze(-1), kwargs)
            if y is not None:
                compiled = self._current
                assert compiled is not None  # _run compiled it
                if len(compiled.inputs) == 1 and x_t.dtype == torch.float32:
                    compiled.plain_key = (x_t.dtype, x_t.shape)
                y = y[0]  # (B, *output_shape[1:]) with a time axis of 1, if the model keeps one
                y = y.squeeze(-1) if len(compiled.output_shape) >= 3 else y
                compiled.step_shape = tuple(y.shape)
                self._hot = self._hot_step(compiled)
                return y
        assert self._eager is not None  # _run fell back to it
        return self._eager.step(x_t, **kwargs)

    def _hot_step(self, compiled: Compiled) -> _HotStep | None:
        """The hot path for ``compiled``, where one kernel call on the stream's own buffers runs a step."""
        chunk = self._chunk(compiled)
        single = len(compiled.metas(1, self.padded, chunk, self._threads(), self.lanes)) == 1
        if compiled.plain_key is None or self.padded != self.batch_size or not single:
            return None
        return _HotStep(compiled, self.ring, self.batch_size, self.lanes, chunk)

    def _weights_changed(self) -> None:
        """A parameter or buffer changed: compile (and check) the program again at the next step."""
        self.weights.read()
        self._engine.tree.resync()  # (the program is traced on the reference engine: a reassigned tensor too)
        self._engine.weights.read()
        if self._eager is None and self._programs:
            self._programs.clear()
            self._current = self._hot = None
            self._recheck = True

    def step_many(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """A chunk of ``n`` steps: ``(batch, channels, n) -> (batch, out_channels, n)``."""
        if self.weights.changed():
            self._weights_changed()
        if self._eager is None:
            self._check_batch(x)
            y = self._run(x, kwargs)
            if y is not None:  # (n, B, *shape): put time last
                if len(self._output_shape()) >= 3:
                    y = y.squeeze(-1)
                return y.movedim(0, -1).contiguous()
        assert self._eager is not None  # _run fell back to it
        return self._eager.step_many(x, **kwargs)

    def step_numpy(self, x_t: np.ndarray) -> np.ndarray:
        """The lowest-overhead single step, once compiled, for a model whose only input is ``x``: float32
        ``(batch, C)`` in, ``(batch, out)`` out (a new array); numpy all the way, no torch tensor per step."""
        hot = self._hot
        if hot is not None and not self.weights.changed():
            y = hot.numpy_step(x_t, self.steps)
            if y is not None:
                self.steps += 1
                return y
        return self.step(torch.from_numpy(np.ascontiguousarray(x_t, np.float32))).numpy()

    def _output_shape(self) -> tuple[int, ...]:
        assert self._current is not None  # called after a step compiled the program
        return self._current.output_shape

    def _check_batch(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] != self.batch_size:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected {self.batch_size} streams on the first axis, got {shape}")

    # -- state -------------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        if self._eager is not None:
            self._eager.reset()
            return
        self.ring[:] = 0.0
        self.steps = 0

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The :class:`~dilated.streaming.EagerStream` format: ``"steps"`` and ``(batch, in_channels, history)`` per
        causal conv, oldest input first."""
        if self._eager is not None:
            return self._eager.state_dict()
        self._require_layout()
        state = {STEPS_KEY: torch.tensor(self.steps, dtype=torch.int64)}
        for path, (offset, rows) in self.rings.items():
            cin, history = self.histories[path]
            ring = self._ring_of(offset, rows, cin)  # (rows, groups, C, lanes)
            times = np.arange(self.steps - history, self.steps) % rows
            history_first = ring[times].transpose(1, 3, 2, 0).reshape(self.padded, cin, history)
            state[path] = torch.from_numpy(history_first[: self.batch_size].copy())  # (B, C, history)
        return state

    def _ring_of(self, offset: int, rows: int, cin: int) -> np.ndarray:
        """One conv's ring as a view ``(rows, groups, in_channels, lanes)``."""
        start = offset * self.padded
        return self.ring[start : start + rows * self.padded * cin].reshape(rows, -1, cin, self.lanes)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self._eager is not None:
            self._eager.load_state_dict(state)
            return
        self._require_layout()
        check_state(state, {p: (self.batch_size, c, h) for p, (c, h) in self.histories.items()})
        steps = int(state[STEPS_KEY])
        self.ring[:] = 0.0
        for path, (offset, rows) in self.rings.items():
            cin, history = self.histories[path]
            ring = self._ring_of(offset, rows, cin)
            times = np.arange(steps - history, steps) % rows
            values = np.zeros((self.padded, cin, history), np.float32)  # padding streams start from zero history
            values[: self.batch_size] = state[path].detach().float().cpu().numpy()
            ring[times] = values.reshape(-1, self.lanes, cin, history).transpose(3, 0, 2, 1)
        self.steps = steps
