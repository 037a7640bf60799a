"""A compiled single-step kernel for streaming: the same outputs as :class:`dilated.streaming.Stream`, in a few
microseconds per step.

Eager PyTorch spends ~5-10 us of dispatch per op, so one step of a 10-block TCN costs ~1 ms however small its
convs are. Here the model's step is *compiled once* into a tiny op list (conv with ring buffer, 1x1 conv, pointwise
activation, add/mul, channel gather, ...) with every weight pre-extracted (weight norm folded in), and a Numba
``@njit`` interpreter runs the whole list in one call over preallocated buffers:

* each causal conv keeps a ring of its last ``dilation * (kernel - 1) + 1`` inputs per stream, so a step reads
  ``kernel`` rows whatever the dilation: O(1) per step in the receptive field;
* one stream is one call; a batch of streams runs one instruction at a time over blocks of streams (so the
  instruction's weights stay in cache), split over threads (the kernel releases the GIL). From 64 streams on,
  streams are laid out in groups of 64 or 128 lanes, value-major, so every instruction is a vector operation across
  streams and a conv a small register-tiled matrix product (see :func:`_build_kernel`);
* ReLUs are folded into the conv or addition before them, and values whose lifetimes do not overlap share
  memory (a 10-block TCN needs 160 floats per stream besides its rings);
* tanh and sigmoid use a rational approximation (|error| < 4e-7) that vectorises, where libm's does not.

Compilation traces the model's own ``forward`` on one step (a :class:`torch.overrides.TorchFunctionMode` records
every torch call, and module hooks record the conv/linear/norm layers as single ops), so models need no per-model
code: stacks of causal convs with pointwise activations, TCN temporal blocks (weight-normed convs, ReLU, residual,
1x1 downsample) and WaveNet residual blocks (gated ``tanh * sigmoid``, residual and skip 1x1 convs, global
conditioning) all compile. Anything the op list does not cover makes :class:`FastStream` fall back to the eager
engine, with a warning that names the op. The compiled program is checked against the eager engine on a few
random steps before use.

Numba is an optional dependency (``pip install numba``); without it :func:`dilated.streaming.stream` uses the
eager engine.
"""

from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from dilated.layers import Conv1d
from dilated.streaming import STEPS_KEY, StatefulConv1d, Stream, check_state

try:  # optional: the kernel is compiled on first use
    import numba
    from numba import njit
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None

Fallback = Literal["warn", "silent", "raise"]

# Instructions: uint64 rows of width 15; the first entry is the op code.
CONV, UNARY, BINARY, GATHER, EMBED, ONEHOT, AFFINE, LAYERNORM, REDUCE, INPUT, OUTPUT = range(11)
WIDTH = 15
CONV_RELU, BINARY_RELU = 14, 8  # fields set by _fuse_relu: apply ReLU to the result
RELU, TANH, SIGMOID, ELU, LEAKY, GELU, GELU_TANH, SILU, EXP, NEG, ABS, SOFTPLUS = range(12)
ADD, SUB, MUL, DIV = range(4)

_UNARY = {"relu": RELU, "relu_": RELU, "tanh": TANH, "tanh_": TANH, "sigmoid": SIGMOID, "sigmoid_": SIGMOID,
          "elu": ELU, "elu_": ELU, "leaky_relu": LEAKY, "leaky_relu_": LEAKY, "gelu": GELU, "silu": SILU,
          "exp": EXP, "exp_": EXP, "neg": NEG, "__neg__": NEG, "abs": ABS, "softplus": SOFTPLUS}
_BINARY = {"add": ADD, "add_": ADD, "__add__": ADD, "__radd__": ADD, "__iadd__": ADD,
           "sub": SUB, "sub_": SUB, "__sub__": SUB, "__isub__": SUB, "__rsub__": SUB,
           "mul": MUL, "mul_": MUL, "__mul__": MUL, "__rmul__": MUL, "__imul__": MUL,
           "div": DIV, "div_": DIV, "__truediv__": DIV, "__itruediv__": DIV, "__rtruediv__": DIV, "true_divide": DIV}
_REVERSED = {"__rsub__", "__rtruediv__"}
# Ops that only move elements: compiled by running them on tensors of memory addresses.
_MOVES = {"__getitem__", "chunk", "split", "tensor_split", "unbind", "cat", "concat", "concatenate", "stack",
          "view", "reshape", "unsqueeze", "squeeze", "transpose", "permute", "flatten", "unflatten", "narrow",
          "select", "contiguous", "clone", "t", "movedim", "moveaxis", "swapaxes", "expand", "expand_as",
          "broadcast_to", "repeat", "detach", "view_as", "reshape_as", "squeeze_", "unsqueeze_", "flip"}
_IDENTITY = {"float", "to", "type_as", "dropout", "alpha_dropout", "feature_alpha_dropout", "dropout1d"}
_REDUCTIONS = {"sum", "mean"}


class Unsupported(Exception):
    """The model's step uses something the op list does not cover."""


def unsupported_reason(model: nn.Module) -> str | None:
    """Why :class:`FastStream` cannot run at all here (no numba), or ``None``. Ops the compiler does not cover are
    only found when tracing the first step."""
    if numba is None:
        return "numba is not installed (pip install numba)"
    if not isinstance(model, nn.Module):
        return f"{type(model).__name__} is not a torch.nn.Module"
    return None


# --------------------------------------------------------------------------------------------------------------------
# The kernel
# --------------------------------------------------------------------------------------------------------------------

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


if numba is not None:  # the kernels; Numba caches the machine code next to this file
    # Written as one loop body on purpose: array arguments passed to helper functions cost atomic reference counts
    # (~30 ns per call), more than most instructions take. Helpers take scalars only. Every index is uint64, so
    # Numba skips its negative-index wraparound, which would block vectorisation.
    _FAST = {"reassoc", "contract", "nsz"}  # lets dot products vectorise; exp/tanh stay exact
    _U1 = np.uint64(1)

    _TANH_P = (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
               -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16)
    _TANH_Q = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)

    @njit(cache=True, nogil=True, inline="always")
    def _tanh(v):
        """tanh as a rational function (Eigen's float32 approximation, |error| < 4e-7 everywhere): arithmetic
        only, so loops of it vectorise; libm's tanh does not."""
        x = min(max(v, np.float32(-9.0)), np.float32(9.0))
        x2 = x * x
        p = np.float32(_TANH_P[6])
        p = p * x2 + np.float32(_TANH_P[5])
        p = p * x2 + np.float32(_TANH_P[4])
        p = p * x2 + np.float32(_TANH_P[3])
        p = p * x2 + np.float32(_TANH_P[2])
        p = p * x2 + np.float32(_TANH_P[1])
        p = (p * x2 + np.float32(_TANH_P[0])) * x
        q = np.float32(_TANH_Q[3])
        q = q * x2 + np.float32(_TANH_Q[2])
        q = q * x2 + np.float32(_TANH_Q[1])
        q = q * x2 + np.float32(_TANH_Q[0])
        return p / q

    @njit(cache=True, nogil=True, inline="always")
    def _act(kind, v, alpha):
        if kind == TANH:
            return math.tanh(v)
        if kind == SIGMOID:
            return 1.0 / (1.0 + math.exp(-v)) if v >= 0.0 else math.exp(v) / (1.0 + math.exp(v))
        if kind == ELU:
            return v if v > 0.0 else alpha * (math.exp(v) - 1.0)
        if kind == LEAKY:
            return v if v > 0.0 else alpha * v
        if kind == GELU:
            return 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))
        if kind == GELU_TANH:
            return 0.5 * v * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v * v * v)))
        if kind == SILU:
            return v / (1.0 + math.exp(-v))
        if kind == EXP:
            return math.exp(v)
        if kind == NEG:
            return -v
        if kind == ABS:
            return abs(v)
        if kind == SOFTPLUS:
            return v if v > 20.0 else math.log1p(math.exp(v))
        return max(0.0, v)  # RELU

    @njit(cache=True, nogil=True, inline="always")
    def _arith(kind, u, v):
        if kind == ADD:
            return u + v
        if kind == SUB:
            return u - v
        if kind == MUL:
            return u * v
        return u / v


def _build_kernel(lanes: int) -> Any:
    """The interpreter for one memory layout: streams in groups of ``lanes``, value ``v`` of stream ``l`` of group
    ``g`` at ``(g * values + v) * lanes + l``.

    ``lanes == 1`` (one stream after another) suits few streams: an instruction's loops run over its values, and a
    conv is dot products over its taps, four streams at a time. With ``lanes > 1`` every loop runs over the lanes,
    so each instruction is one vector operation per value for ``lanes`` streams, and a conv is a small matrix product
    ``(out, taps) @ (taps, lanes)`` tiled two outputs by four taps (its accumulators stay in registers; measured on
    this 2-core Zen 5: 28 ns per stream for a 64-tap, 32-output conv at 128 lanes, against ~95 ns with one lane).
    ``lanes`` is a compile-time constant, so the loops over it vanish at one lane and are vectorised otherwise.
    """
    L = np.uint64(lanes)
    four = np.uint64(4)

    @njit(cache=True, nogil=True, fastmath=_FAST)
    def run_groups(prog, params, idx, mem, ring, xin, yout, meta, lo, hi):
        """Steps ``t0 .. t0 + n - 1`` for groups ``lo .. hi - 1``, one instruction at a time over all of them (so
        an instruction's weights stay in cache across streams)."""
        t0, steps, batch, size, n_in, n_out = meta[0], meta[1], meta[2], meta[3], meta[4], meta[5]
        groups = np.uint64(batch) // L
        span = np.uint64(size) * L  # floats per group
        for s in range(steps):
            t = t0 + s
            for pc in range(prog.shape[0]):
                op = prog[pc, 0]
                if op == CONV:
                    out = prog[pc, 1]
                    inp = prog[pc, 2]
                    w = prog[pc, 3]
                    bias = prog[pc, 4]
                    cin = prog[pc, 5]
                    cout = prog[pc, 6]
                    k = prog[pc, 7]
                    ki = np.int64(k)
                    d = np.int64(prog[pc, 8])
                    rows = np.int64(prog[pc, 10])
                    scratch = prog[pc, 11]
                    has_bias = prog[pc, 12] == _U1
                    saxpy = prog[pc, 13] == _U1  # weights (k * cin, cout): wide outputs, few inputs
                    relu = prog[pc, CONV_RELU] == _U1
                    n = k * cin
                    x = scratch if k > _U1 else inp
                    if L > _U1:  # stream-minor: gather the taps as (n, lanes), then (cout, n) @ (n, lanes)
                        r0 = prog[pc, 9] * np.uint64(batch)  # this conv's ring: (rows, groups, cin, lanes)
                        width = cin * L
                        so = _U1 if saxpy else n  # weight (o, i) at w + o * so + i * si
                        si = cout if saxpy else _U1
                        n4 = n // four * four
                        for g in range(lo, hi):
                            m = np.uint64(g) * span
                            if k > _U1:
                                dst = r0 + (np.uint64(t % rows) * groups + np.uint64(g)) * width
                                for q in range(width):
                                    ring[dst + q] = mem[m + inp * L + q]
                                for j in range(ki):
                                    src = r0 + (np.uint64((t - d * (ki - 1 - j)) % rows) * groups
                                                + np.uint64(g)) * width
                                    dst = m + (scratch + np.uint64(j) * cin) * L
                                    for q in range(width):
                                        mem[dst + q] = ring[src + q]
                            xb = m + x * L
                            o = np.uint64(0)
                            while o + _U1 < cout:  # two outputs at a time
                                oa = m + (out + o) * L
                                oc = oa + L
                                ba = params[bias + o] if has_bias else np.float32(0.0)
                                bc = params[bias + o + _U1] if has_bias else np.float32(0.0)
                                for ln in range(L):
                                    mem[oa + ln] = ba
                                    mem[oc + ln] = bc
                                wa = w + o * so
                                wc = wa + so
                                i = np.uint64(0)
                                while i < n4:
                                    a0 = params[wa + i * si]
                                    a1 = params[wa + (i + _U1) * si]
                                    a2 = params[wa + (i + np.uint64(2)) * si]
                                    a3 = params[wa + (i + np.uint64(3)) * si]
                                    c0 = params[wc + i * si]
                                    c1 = params[wc + (i + _U1) * si]
                                    c2 = params[wc + (i + np.uint64(2)) * si]
                                    c3 = params[wc + (i + np.uint64(3)) * si]
                                    x0 = xb + i * L
                                    for ln in range(L):
                                        v0 = mem[x0 + ln]
                                        v1 = mem[x0 + L + ln]
                                        v2 = mem[x0 + np.uint64(2) * L + ln]
                                        v3 = mem[x0 + np.uint64(3) * L + ln]
                                        mem[oa + ln] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3
                                        mem[oc + ln] += c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3
                                    i += four
                                while i < n:
                                    a0 = params[wa + i * si]
                                    c0 = params[wc + i * si]
                                    x0 = xb + i * L
                                    for ln in range(L):
                                        mem[oa + ln] += a0 * mem[x0 + ln]
                                        mem[oc + ln] += c0 * mem[x0 + ln]
                                    i += _U1
                                if relu:
                                    for ln in range(L):
                                        mem[oa + ln] = max(mem[oa + ln], np.float32(0.0))
                                        mem[oc + ln] = max(mem[oc + ln], np.float32(0.0))
                                o += np.uint64(2)
                            if o < cout:  # the last of an odd number of outputs
                                oa = m + (out + o) * L
                                ba = params[bias + o] if has_bias else np.float32(0.0)
                                for ln in range(L):
                                    mem[oa + ln] = ba
                                for i in range(n):
                                    a0 = params[w + o * so + i * si]
                                    x0 = xb + i * L
                                    for ln in range(L):
                                        mem[oa + ln] += a0 * mem[x0 + ln]
                                if relu:
                                    for ln in range(L):
                                        mem[oa + ln] = max(mem[oa + ln], np.float32(0.0))
                        continue
                    r0 = np.int64(prog[pc, 9]) * batch  # this conv's ring: (rows, batch, cin)
                    ci = np.int64(cin)
                    b = lo
                    while b < hi:
                        if k > _U1:  # streams b .. b+3 write their input into the ring and gather their k taps
                            group = min(b + 4, hi)
                            row = (t % rows) * batch  # (integer division is slow: once per row and group)
                            for bb in range(b, group):
                                start = np.uint64(r0 + (row + bb) * ci)
                                m = np.uint64(bb * size) + inp
                                for i in range(cin):
                                    ring[start + i] = mem[m + i]
                            for j in range(ki):
                                row = ((t - d * (ki - 1 - j)) % rows) * batch
                                for bb in range(b, group):
                                    start = np.uint64(r0 + (row + bb) * ci)
                                    dst = np.uint64(bb * size) + scratch + np.uint64(j) * cin
                                    for i in range(cin):
                                        mem[dst + i] = ring[start + i]
                        if saxpy:
                            for bb in range(b, min(b + 4, hi)):
                                m = np.uint64(bb * size)
                                for o in range(cout):
                                    mem[m + out + o] = params[bias + o] if has_bias else np.float32(0.0)
                                for i in range(n):
                                    xv = mem[m + x + i]
                                    wi = w + i * cout
                                    for o in range(cout):
                                        mem[m + out + o] += params[wi + o] * xv
                                if relu:
                                    for o in range(cout):
                                        mem[m + out + o] = max(mem[m + out + o], np.float32(0.0))
                            b += 4
                            continue
                        if b + 4 > hi:
                            break
                        m0 = np.uint64(b * size)
                        m1 = m0 + np.uint64(size)
                        m2 = m1 + np.uint64(size)
                        m3 = m2 + np.uint64(size)
                        for o in range(cout):
                            wo = w + o * n
                            a0 = np.float32(0.0)
                            a1 = np.float32(0.0)
                            a2 = np.float32(0.0)
                            a3 = np.float32(0.0)
                            for i in range(n):
                                wi = params[wo + i]
                                a0 += wi * mem[m0 + x + i]
                                a1 += wi * mem[m1 + x + i]
                                a2 += wi * mem[m2 + x + i]
                                a3 += wi * mem[m3 + x + i]
                            if has_bias:
                                c = params[bias + o]
                                a0 += c
                                a1 += c
                                a2 += c
                                a3 += c
                            if relu:
                                a0 = max(a0, np.float32(0.0))
                                a1 = max(a1, np.float32(0.0))
                                a2 = max(a2, np.float32(0.0))
                                a3 = max(a3, np.float32(0.0))
                            mem[m0 + out + o] = a0
                            mem[m1 + out + o] = a1
                            mem[m2 + out + o] = a2
                            mem[m3 + out + o] = a3
                        b += 4
                    while b < hi:
                        m = np.uint64(b * size)
                        for o in range(cout):
                            wo = w + o * n
                            acc = np.float32(0.0)
                            for i in range(n):
                                acc += params[wo + i] * mem[m + x + i]
                            if has_bias:
                                acc += params[bias + o]
                            mem[m + out + o] = max(acc, np.float32(0.0)) if relu else acc
                        b += 1
                elif op == UNARY:
                    out = prog[pc, 1]
                    inp = prog[pc, 2]
                    n = prog[pc, 3]
                    kind = prog[pc, 4]
                    alpha = params[prog[pc, 5]]
                    for g in range(lo, hi):
                        src = np.uint64(g) * span + inp * L
                        dst = np.uint64(g) * span + out * L
                        if kind == RELU:
                            for i in range(n * L):
                                v = mem[src + i]
                                mem[dst + i] = v if v > 0.0 else np.float32(0.0)
                        elif kind == TANH:
                            for i in range(n * L):
                                mem[dst + i] = _tanh(mem[src + i])
                        elif kind == SIGMOID:  # 1 / (1 + exp(-v)) = (1 + tanh(v / 2)) / 2
                            for i in range(n * L):
                                half = np.float32(0.5)
                                mem[dst + i] = half + half * _tanh(half * mem[src + i])
                        else:
                            for i in range(n * L):
                                mem[dst + i] = _act(kind, mem[src + i], alpha)
                elif op == BINARY:
                    out = prog[pc, 1]
                    a = prog[pc, 2]
                    c = prog[pc, 3]
                    n = prog[pc, 4]
                    kind = prog[pc, 5]
                    sa = prog[pc, 6]
                    sb = prog[pc, 7]
                    relu = prog[pc, BINARY_RELU] == _U1
                    for g in range(lo, hi):
                        m = np.uint64(g) * span
                        if sa == _U1 and sb == _U1:  # both operands contiguous: one loop over values and lanes
                            pa = m + a * L
                            pb = m + c * L
                            po = m + out * L
                            if kind == ADD and relu:
                                for i in range(n * L):
                                    mem[po + i] = max(mem[pa + i] + mem[pb + i], np.float32(0.0))
                            elif kind == ADD:
                                for i in range(n * L):
                                    mem[po + i] = mem[pa + i] + mem[pb + i]
                            elif kind == MUL:
                                for i in range(n * L):
                                    mem[po + i] = mem[pa + i] * mem[pb + i]
                            else:
                                for i in range(n * L):
                                    v = _arith(kind, mem[pa + i], mem[pb + i])
                                    mem[po + i] = max(v, np.float32(0.0)) if relu else v
                            continue
                        for i in range(n):
                            pa = m + (a + i * sa) * L
                            pb = m + (c + i * sb) * L
                            po = m + (out + i) * L
                            for ln in range(L):
                                v = _arith(kind, mem[pa + ln], mem[pb + ln])
                                mem[po + ln] = max(v, np.float32(0.0)) if relu else v
                elif op == GATHER:
                    out = prog[pc, 1]
                    ix = prog[pc, 2]
                    n = prog[pc, 3]
                    for g in range(lo, hi):
                        m = np.uint64(g) * span
                        for i in range(n):
                            src = m + idx[ix + i] * L
                            dst = m + (out + i) * L
                            for ln in range(L):
                                mem[dst + ln] = mem[src + ln]
                elif op == EMBED:
                    out = prog[pc, 1]
                    dim = prog[pc, 4]
                    for g in range(lo, hi):
                        m = np.uint64(g) * span
                        for ln in range(L):
                            row = np.int64(mem[m + prog[pc, 2] * L + ln])
                            if row < 0 or row >= np.int64(prog[pc, 5]):
                                row = 0
                            table = prog[pc, 3] + np.uint64(row) * dim
                            for i in range(dim):
                                mem[m + (out + i) * L + ln] = params[table + i]
                elif op == ONEHOT:
                    out = prog[pc, 1]
                    num = prog[pc, 3]
                    for g in range(lo, hi):
                        m = np.uint64(g) * span
                        for i in range(num * L):
                            mem[m + out * L + i] = 0.0
                        for ln in range(L):
                            row = np.int64(mem[m + prog[pc, 2] * L + ln])
                            if 0 <= row < np.int64(num):
                                mem[m + (out + np.uint64(row)) * L + ln] = 1.0
                elif op == AFFINE:
                    out = prog[pc, 1]
                    inp = prog[pc, 2]
                    n = prog[pc, 3]
                    scale = prog[pc, 4]
                    shift = prog[pc, 5]
                    for g in range(lo, hi):
                        m = np.uint64(g) * span
                        for i in range(n):
                            src = m + (inp + i) * L
                            dst = m + (out + i) * L
                            for ln in range(L):
                                mem[dst + ln] = mem[src + ln] * params[scale + i] + params[shift + i]
                elif op == LAYERNORM:
                    out = prog[pc, 1]
                    inp = prog[pc, 2]
                    n = prog[pc, 3]
                    w = prog[pc, 4]
                    c = prog[pc, 5]
                    eps = params[prog[pc, 6]]
                    for g in range(lo, hi):
                        m = np.uint64(g) * span
                        for ln in range(L):
                            src = m + inp * L + ln
                            dst = m + out * L + ln
                            mean = 0.0
                            for i in range(n):
                                mean += mem[src + i * L]
                            mean /= np.float64(n)
                            var = 0.0
                            for i in range(n):
                                var += (mem[src + i * L] - mean) ** 2
                            inv = 1.0 / math.sqrt(var / np.float64(n) + eps)
                            for i in range(n):
                                mem[dst + i * L] = (mem[src + i * L] - mean) * inv * params[w + i] + params[c + i]
                elif op == REDUCE:
                    out = prog[pc, 1]
                    ix = prog[pc, 2]
                    cols = prog[pc, 4]
                    for g in range(lo, hi):
                        m = np.uint64(g) * span
                        for ln in range(L):
                            for r in range(prog[pc, 3]):
                                acc = 0.0
                                for c in range(cols):
                                    acc += mem[m + idx[ix + r * cols + c] * L + ln]
                                mem[m + (out + r) * L + ln] = acc / np.float64(cols) if prog[pc, 5] == _U1 else acc
                elif op == INPUT:
                    out = prog[pc, 1]
                    n = prog[pc, 3]
                    for g in range(lo, hi):
                        m = np.uint64(g) * span + out * L
                        for ln in range(L):
                            src = np.uint64((s * batch + g * np.int64(L) + np.int64(ln)) * n_in) + prog[pc, 2]
                            for i in range(n):
                                mem[m + i * L + ln] = xin[src + i]
                elif op == OUTPUT:
                    inp = prog[pc, 2]
                    n = prog[pc, 3]
                    for g in range(lo, hi):
                        m = np.uint64(g) * span + inp * L
                        for ln in range(L):
                            dst = np.uint64((s * batch + g * np.int64(L) + np.int64(ln)) * n_out) + prog[pc, 1]
                            for i in range(n):
                                yout[dst + i] = mem[m + i * L + ln]

    @njit("void(u8[:, ::1], f4[::1], u8[::1], f4[::1], f4[::1], f4[::1], f4[::1], i8[::1])", cache=True,
          nogil=True)
    def kernel(prog, params, idx, mem, ring, xin, yout, meta):
        """``meta``: step of the first input, steps, streams (a multiple of ``lanes``), values per stream, inputs
        and outputs per stream and step, groups per block, first and last group (exclusive) to run. ``mem``
        (groups, values, lanes), ``ring`` per conv (rows, groups, in_channels, lanes), ``xin`` (steps, streams,
        inputs), ``yout`` (steps, streams, outputs), all flat. Releases the GIL: threads may run disjoint groups."""
        chunk = meta[6]
        for lo in range(meta[7], meta[8], chunk):
            run_groups(prog, params, idx, mem, ring, xin, yout, meta, lo, min(lo + chunk, meta[8]))

    return kernel


_KERNELS: dict[int, Any] = {}
LANES = (128, 64)  # streams per vector group: the widest that the batch fills (see _build_kernel), else 1


def _kernel(lanes: int) -> Any:
    """The compiled interpreter for ``lanes`` (built, or loaded from Numba's cache, on first use)."""
    if lanes not in _KERNELS:
        _KERNELS[lanes] = _build_kernel(lanes)
    return _KERNELS[lanes]


# --------------------------------------------------------------------------------------------------------------------
# The compiler: trace one step of the eager engine into an op list
# --------------------------------------------------------------------------------------------------------------------

class _Value:
    """A traced tensor: the memory address of each of its elements (an int64 array of the tensor's shape)."""

    __slots__ = ("addr", "tensor")

    def __init__(self, addr: np.ndarray, tensor: torch.Tensor) -> None:
        self.addr, self.tensor = addr, tensor


class _Program:
    """Instructions, parameters, index tables and the memory layout being built."""

    def __init__(self) -> None:
        self.rows: list[list[int]] = []
        self.params: list[np.ndarray] = []
        self.n_params = 1  # params[0] is a zero (see compile_step)
        self.index: list[np.ndarray] = []
        self.n_index = 1
        self.mem = 0
        self.blocks: list[tuple[int, int]] = []  # every allocation (offset, size), in address order
        self.constants: list[tuple[int, np.ndarray]] = []  # (address, values) written once into every stream's mem

    def emit(self, *fields: int) -> None:
        row = [int(f) for f in fields] + [0] * (WIDTH - len(fields))
        assert min(row) >= 0, row
        self.rows.append(row)

    def param(self, values: Any) -> int:
        array = np.ascontiguousarray(np.asarray(values, dtype=np.float32).ravel())
        offset = self.n_params
        self.params.append(array)
        self.n_params += array.size
        return offset

    def table(self, addresses: np.ndarray) -> int:
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
        array = np.asarray(values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values,
                           dtype=np.float32)
        base = self.alloc(array.size)
        self.constants.append((base, array.ravel().copy()))
        return base + np.arange(array.size, dtype=np.int64).reshape(array.shape)


def _name(func: Any) -> str:
    name = getattr(func, "__name__", "") or ""
    if name == "__get__":  # a property such as Tensor.shape
        owner = getattr(func, "__self__", None)
        return f"{getattr(owner, '__name__', '?')}.__get__"
    return name


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


class _Tracer(TorchFunctionMode):
    """Records one forward step as instructions (see the module docstring)."""

    LEAVES = (StatefulConv1d, Conv1d, nn.Conv1d, nn.Linear, nn.Embedding, nn.BatchNorm1d, nn.LayerNorm)

    def __init__(self, program: _Program, rings: dict[str, tuple[int, int]]) -> None:
        super().__init__()
        self.p, self.rings = program, rings
        self.values: dict[int, _Value] = {}
        self.keep: list[torch.Tensor] = []  # keeps traced tensors alive so that their ids stay unique
        self.leaf: nn.Module | None = None
        self.leaf_input: _Value | None = None

    # -- values ------------------------------------------------------------------------------------------------------
    def value(self, t: Any) -> _Value | None:
        if isinstance(t, torch.Tensor):
            v = self.values.get(id(t))
            if v is not None and v.tensor is t:
                return v
        return None

    def register(self, t: torch.Tensor, addr: np.ndarray) -> _Value:
        v = _Value(np.asarray(addr, dtype=np.int64).reshape(tuple(t.shape)), t)
        self.values[id(t)] = v
        self.keep.append(t)
        return v

    def fresh(self, t: torch.Tensor) -> tuple[_Value, int]:
        base = self.p.alloc(t.numel())
        return self.register(t, base + np.arange(t.numel())), base

    def operand(self, x: Any) -> np.ndarray:
        """Addresses of a traced tensor, or of a constant (untraced tensor or Python number)."""
        v = self.value(x)
        if v is not None:
            return v.addr
        if isinstance(x, torch.Tensor):
            if x.numel() > 1 << 16 or not (x.is_floating_point() or x.dtype in (torch.int64, torch.int32, torch.bool)):
                raise Unsupported(f"a constant tensor of shape {tuple(x.shape)} and dtype {x.dtype}")
            return self.p.constant(x.float())
        if isinstance(x, bool | int | float):
            return self.p.constant(float(x))
        raise Unsupported(f"an operand of type {type(x).__name__}")

    def contiguous(self, addr: np.ndarray) -> int:
        """Base address of ``addr`` laid out contiguously (gathering it into fresh memory if needed)."""
        flat = addr.ravel()
        if flat.size and np.array_equal(flat, flat[0] + np.arange(flat.size)):
            return int(flat[0])
        base = self.p.alloc(flat.size)
        self.p.emit(GATHER, base, self.p.table(flat), flat.size)
        return base

    # -- torch functions ---------------------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.leaf is not None:
            return out
        traced = [t for t in _tensors(args) + _tensors(kwargs) if self.value(t) is not None]
        results = _tensors(out)
        if not traced or not results:
            return out
        self.compile_call(_name(func), func, args, kwargs, out)
        return out

    def compile_call(self, name: str, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        if name in _UNARY:
            x = args[0]
            kind = _UNARY[name]
            alpha = 0  # params[0] is zero
            if kind == ELU:
                alpha = self.p.param([kwargs.get("alpha", args[1] if len(args) > 1 else 1.0)])
            elif kind == LEAKY:
                alpha = self.p.param([kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)])
            elif kind == GELU and kwargs.get("approximate", "none") == "tanh":
                kind = GELU_TANH
            elif kind == SOFTPLUS and (kwargs.get("beta", 1.0) != 1.0 or kwargs.get("threshold", 20.0) != 20.0):
                raise Unsupported("softplus with beta or threshold other than the defaults")
            base_in = self.contiguous(self.operand(x))
            _, base = self.fresh(out)
            self.p.emit(UNARY, base, base_in, out.numel(), kind, alpha)
        elif name in _BINARY:
            a, b = args[0], (args[1] if len(args) > 1 else kwargs.get("other"))
            if kwargs.get("alpha", 1) != 1 or kwargs.get("rounding_mode") is not None:
                raise Unsupported(f"{name} with alpha or rounding_mode")
            if name in _REVERSED:
                a, b = b, a
            n = out.numel()
            bases, strides = [], []
            for operand in (a, b):
                addr = np.broadcast_to(self.operand(operand), tuple(out.shape))
                flat = np.ascontiguousarray(addr).ravel()
                if np.all(flat == flat[0]):
                    bases.append(int(flat[0]))
                    strides.append(0)
                else:
                    bases.append(self.contiguous(flat))
                    strides.append(1)
            _, base = self.fresh(out)
            self.p.emit(BINARY, base, bases[0], bases[1], n, _BINARY[name], strides[0], strides[1])
        elif name in _IDENTITY:
            if name.startswith("dropout") or "dropout" in name:
                training = kwargs.get("training", args[2] if len(args) > 2 else True)
                if training:
                    raise Unsupported("dropout in training mode")
            elif not out.is_floating_point() and out.dtype != args[0].dtype:
                raise Unsupported(f"{name} to {out.dtype}")
            self.register(out, self.operand(args[0]).reshape(tuple(out.shape)))
        elif name in _MOVES:
            self.compile_move(func, args, kwargs, out)
        elif name in _REDUCTIONS:
            self.compile_reduction(name, args, kwargs, out)
        elif name == "one_hot":
            num = kwargs.get("num_classes", args[1] if len(args) > 1 else -1)
            if num < 1:
                raise Unsupported("one_hot without num_classes")
            if args[0].numel() != 1:
                raise Unsupported("one_hot of more than one code per step")
            _, base = self.fresh(out)
            self.p.emit(ONEHOT, base, self.contiguous(self.operand(args[0])), num)
        else:
            raise Unsupported(f"torch function {name!r}")

    def compile_move(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        """Run the op on tensors holding each element's address: the result says where every element comes
        from. Only the data argument (the first: a tensor, or the list given to ``cat``/``stack``) is replaced;
        indices and shape templates stay as they are."""
        def to_addresses(x: Any) -> Any:
            if isinstance(x, torch.Tensor):
                return torch.from_numpy(np.ascontiguousarray(self.operand(x)))
            if isinstance(x, tuple | list):
                return type(x)(to_addresses(v) for v in x)
            return x

        if args:
            moved = func(to_addresses(args[0]), *args[1:], **kwargs)
        else:  # e.g. torch.cat(tensors=[...])
            moved = func(**{k: (to_addresses(v) if k in ("input", "tensors") else v) for k, v in kwargs.items()})
        real, addr = _tensors(out), _tensors(moved)
        if len(real) != len(addr) or any(r.shape != a.shape for r, a in zip(real, addr)):
            raise Unsupported(f"{_name(func)} on addresses does not reproduce its shapes")
        for r, a in zip(real, addr):
            self.register(r, a.numpy().copy())

    def compile_reduction(self, name: str, args: tuple, kwargs: dict, out: torch.Tensor) -> None:
        x = self.operand(args[0])
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if kwargs.get("dtype") is not None:
            raise Unsupported(f"{name} with dtype")
        dims = tuple(range(x.ndim)) if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
        dims = tuple(d % x.ndim for d in dims)
        kept = [d for d in range(x.ndim) if d not in dims]
        rows = np.transpose(x, kept + list(dims)).reshape(out.numel(), -1)
        _, base = self.fresh(out)
        self.p.emit(REDUCE, base, self.p.table(rows), rows.shape[0], rows.shape[1], int(name == "mean"))

    # -- leaf modules ------------------------------------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        if self.leaf is None and isinstance(module, self.LEAVES) and args and self.value(args[0]) is not None:
            self.leaf, self.leaf_input = module, self.value(args[0])

    def post_hook(self, module: nn.Module, args: tuple, out: Any) -> None:
        if module is not self.leaf:
            return
        self.leaf, x = None, self.leaf_input
        if not isinstance(out, torch.Tensor):
            raise Unsupported(f"{type(module).__name__} returning {type(out).__name__}")
        self.compile_module(module, x, out)

    def compile_module(self, module: nn.Module, x: _Value, out: torch.Tensor) -> None:
        p = self.p
        with torch.no_grad():
            if isinstance(module, StatefulConv1d | Conv1d | nn.Conv1d | nn.Linear):
                ring, rows, k, d = 0, 1, 1, 1
                if isinstance(module, StatefulConv1d):
                    conv = module.conv
                    ring, rows = self.rings[module.path]
                    k, d = conv.geometry.kernel_size, conv.geometry.dilation
                    weight, bias, groups = conv.weight, conv.bias, conv.groups
                elif isinstance(module, nn.Linear):
                    weight, bias, groups = module.weight.unsqueeze(-1), module.bias, 1
                else:  # a pointwise conv (the stream refuses the others)
                    if module.weight.shape[-1] != 1:
                        raise Unsupported(f"{type(module).__name__} with kernel {module.weight.shape[-1]}")
                    weight, bias, groups = module.weight, module.bias, module.groups
                w = _dense(weight.detach().float().cpu(), groups)  # (out, in, k)
                cout, cin = w.shape[0], w.shape[1]
                if x.addr.size != cin:
                    raise Unsupported(f"{type(module).__name__} on an input of {x.addr.size} values per step, "
                                      f"expected {cin}")
                base_in = self.contiguous(x.addr)
                saxpy = cout >= 4 * k * cin  # few inputs, many outputs: accumulate rows rather than dot products
                layout = (2, 1, 0) if saxpy else (0, 2, 1)  # (k, in, out) or (out, k, in)
                w_off = p.param(w.permute(*layout).contiguous().numpy())
                b_off = p.param(bias.detach().float().cpu().numpy()) if bias is not None else 0
                scratch = p.alloc(k * cin) if k > 1 else 0  # the k taps gathered side by side
                _, base = self.fresh(out)
                p.emit(CONV, base, base_in, w_off, b_off, cin, cout, k, d, ring, rows, scratch, int(bias is not None),
                       int(saxpy))
            elif isinstance(module, nn.Embedding):
                if x.addr.size != 1:
                    raise Unsupported("an embedding of more than one code per step")
                if module.max_norm is not None:
                    raise Unsupported("Embedding with max_norm")
                table = p.param(module.weight.detach().float().cpu().numpy())
                _, base = self.fresh(out)
                p.emit(EMBED, base, int(x.addr.ravel()[0]), table, module.embedding_dim, module.num_embeddings)
            elif isinstance(module, nn.BatchNorm1d):
                if module.training or not module.track_running_stats or module.running_mean is None:
                    raise Unsupported("BatchNorm1d without running statistics")
                channels = module.num_features
                if x.tensor.dim() < 2 or x.tensor.shape[1] != channels or x.addr.size != channels:
                    raise Unsupported("BatchNorm1d on more than one step per stream")
                scale = module.weight.detach() if module.weight is not None else torch.ones(channels)
                scale = scale / torch.sqrt(module.running_var + module.eps)
                shift = (module.bias.detach() if module.bias is not None else torch.zeros(channels))
                shift = shift - module.running_mean * scale
                base_in = self.contiguous(x.addr)
                _, base = self.fresh(out)
                p.emit(AFFINE, base, base_in, channels, p.param(scale.numpy()), p.param(shift.numpy()))
            elif isinstance(module, nn.LayerNorm):
                n = int(np.prod(module.normalized_shape))
                if n != x.addr.size:
                    raise Unsupported("LayerNorm over more than one step per stream")
                w = p.param(module.weight.detach().float().cpu().numpy() if module.weight is not None else np.ones(n))
                b = p.param(module.bias.detach().float().cpu().numpy() if module.bias is not None else np.zeros(n))
                base_in = self.contiguous(x.addr)
                _, base = self.fresh(out)
                p.emit(LAYERNORM, base, base_in, n, w, b, p.param([module.eps]))
            else:  # pragma: no cover - LEAVES and this list agree
                raise Unsupported(type(module).__name__)


def _dense(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped conv weight ``(out, in / groups, k)`` as the equivalent dense ``(out, in, k)``."""
    if groups == 1:
        return weight
    out, per_group, k = weight.shape
    dense = weight.new_zeros(out, per_group * groups, k)
    step = out // groups
    for g in range(groups):
        dense[g * step:(g + 1) * step, g * per_group:(g + 1) * per_group] = weight[g * step:(g + 1) * step]
    return dense


def _reads(row: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Memory addresses an instruction reads (its ring excluded)."""
    op = row[0]
    if op in (CONV, UNARY, BINARY, AFFINE, LAYERNORM, OUTPUT):
        start, n = {CONV: (2, 5), UNARY: (2, 3), AFFINE: (2, 3), LAYERNORM: (2, 3), OUTPUT: (2, 3),
                    BINARY: (2, 4)}[op]
        first = np.arange(row[start], row[start] + row[n])
        if op == BINARY:
            a = np.arange(row[2], row[2] + max(row[4] * row[6], 1))
            b = np.arange(row[3], row[3] + max(row[4] * row[7], 1))
            return np.concatenate([a, b])
        return first
    if op == GATHER:
        return idx[row[2]:row[2] + row[3]]
    if op == REDUCE:
        return idx[row[2]:row[2] + row[3] * row[4]]
    if op in (EMBED, ONEHOT):
        return np.array([row[2]])
    return np.zeros(0, dtype=np.int64)


def _fuse_relu(rows: np.ndarray, idx: np.ndarray, mem_size: int) -> np.ndarray:
    """Fold each ReLU into the conv or arithmetic instruction right before it when nothing else reads that
    instruction's result: one pass over memory fewer (TCN blocks are conv-ReLU and add-ReLU)."""
    reads = np.zeros(mem_size + 1, dtype=np.int64)
    for row in rows:
        np.add.at(reads, _reads(row, idx).astype(np.int64), 1)
    keep = np.ones(len(rows), dtype=bool)
    for i in range(1, len(rows)):
        row, prev = rows[i], rows[i - 1]
        if row[0] != UNARY or row[4] != RELU or not keep[i - 1]:
            continue
        if prev[0] == CONV:
            out, n, flag = prev[1], prev[6], CONV_RELU
        elif prev[0] == BINARY:
            out, n, flag = prev[1], prev[4], BINARY_RELU
        else:
            continue
        if (row[2], row[3]) != (out, n) or np.any(reads[out:out + n] != 1):
            continue
        prev[1], prev[flag] = row[1], 1  # write the rectified result where the ReLU wrote it
        keep[i] = False
    return rows[keep]


# Fields of each instruction that hold memory addresses, and the (address, length) fields it writes.
_ADDRESS_FIELDS = {CONV: (1, 2, 11), UNARY: (1, 2), BINARY: (1, 2, 3), GATHER: (1,), EMBED: (1, 2), ONEHOT: (1, 2),
                   AFFINE: (1, 2), LAYERNORM: (1, 2), REDUCE: (1,), INPUT: (1,), OUTPUT: (2,)}


def _writes(row: np.ndarray) -> list[tuple[int, int]]:
    op = row[0]
    if op == CONV:
        written = [(row[1], row[6])]
        return written + [(row[11], row[7] * row[5])] if row[7] > 1 else written
    length = {UNARY: 3, BINARY: 4, GATHER: 3, EMBED: 4, ONEHOT: 3, AFFINE: 3, LAYERNORM: 3, REDUCE: 3, INPUT: 3}
    return [(row[1], row[length[op]])] if op in length else []


def _ranges(row: np.ndarray) -> list[tuple[int, int]]:
    """The contiguous (address, length) ranges an instruction reads or writes as one piece of memory."""
    op = row[0]
    spans = _writes(row)
    if op in (CONV, UNARY, AFFINE, LAYERNORM, OUTPUT):
        spans.append((row[2], row[5] if op == CONV else row[3]))
    elif op == BINARY:
        spans += [(row[2], max(row[4] * row[6], 1)), (row[3], max(row[4] * row[7], 1))]
    return spans


def _compact(rows: np.ndarray, idx: np.ndarray, program: _Program) -> tuple[np.ndarray, np.ndarray,
                                                                             list[tuple[int, np.ndarray]], int]:
    """Reuse memory between values whose lifetimes do not overlap (linear scan over the instructions), with
    64-byte aligned blocks: a stream's values then stay in cache, and many streams' values in a chunk together.

    Allocations that an instruction reads as one range (e.g. the two halves of a ``cat`` that needed no copy) are
    kept together, in order."""
    starts = np.array([b[0] for b in program.blocks] + [program.mem], dtype=np.int64)
    n_blocks = len(program.blocks)

    def block_of(addresses: np.ndarray) -> np.ndarray:
        return np.searchsorted(starts, addresses, side="right") - 1

    joined = np.zeros(n_blocks, dtype=bool)  # joined[b]: block b and b + 1 move together
    for row in rows:
        for start, n in _ranges(row):
            first_block, last_block = block_of(np.array([start, start + max(n, 1) - 1]))
            joined[first_block:last_block] = True
    group = np.concatenate([[0], np.cumsum(~joined[:-1])]) if n_blocks else np.zeros(0, dtype=np.int64)
    n_groups = int(group[-1]) + 1 if n_blocks else 0
    group_start = np.array([starts[np.argmax(group == g)] for g in range(n_groups)], dtype=np.int64)
    group_end = np.array([starts[np.nonzero(group == g)[0][-1] + 1] for g in range(n_groups)], dtype=np.int64)

    def group_of(addresses: np.ndarray) -> np.ndarray:
        return group[block_of(addresses)]

    first = np.full(n_groups, -1, dtype=np.int64)  # first instruction writing the group
    last = np.full(n_groups, -1, dtype=np.int64)  # last instruction reading it
    for i, row in enumerate(rows):
        for start, n in _writes(row):
            for g in np.unique(group_of(np.arange(start, start + max(n, 1)))):
                first[g] = i if first[g] < 0 else min(first[g], i)
        read = _reads(row, idx)
        if row[0] == CONV and row[7] > 1:
            read = np.concatenate([read, np.arange(row[11], row[11] + row[7] * row[5])])
        for g in np.unique(group_of(read.astype(np.int64))):
            last[g] = max(last[g], i)
    for base, _ in program.constants:  # constants live throughout
        g = group_of(np.array([base]))[0]
        first[g], last[g] = 0, len(rows)
    new_start = np.zeros(n_groups, dtype=np.int64)
    active: list[tuple[int, int, int]] = []  # (start, size, last use)
    size = 0
    for g in sorted(range(n_groups), key=lambda g: (first[g] if first[g] >= 0 else last[g], g)):
        if first[g] < 0 and last[g] < 0:
            continue  # never used: no memory
        begin = first[g] if first[g] >= 0 else last[g]
        need = -(-(group_end[g] - group_start[g]) // 16) * 16
        active = [a for a in active if a[2] >= begin]
        offset = 0
        for start, length, _ in sorted(active):
            if offset + need <= start:
                break
            offset = max(offset, start + length)
        new_start[g] = offset
        active.append((offset, need, max(last[g], begin)))
        size = max(size, offset + need)

    def remap(addresses: np.ndarray) -> np.ndarray:
        g = group_of(addresses)
        return new_start[g] + addresses - group_start[g]

    rows = rows.copy()
    for row in rows:
        for field in _ADDRESS_FIELDS[row[0]]:
            if row[0] == CONV and field == 11 and row[7] <= 1:
                continue
            row[field] = remap(np.array([row[field]]))[0]
    idx = idx.copy()
    idx[1:] = remap(idx[1:])
    constants = [(int(remap(np.array([base]))[0]), values) for base, values in program.constants]
    return rows, idx, constants, int(max(size, 1))


class _Compiled:
    """One traced program and the layout of its inputs and outputs."""

    def __init__(self, prog: np.ndarray, params: np.ndarray, idx: np.ndarray, mem_size: int,
                 constants: list[tuple[int, np.ndarray]], inputs: list[tuple[str, tuple[int, ...], int]],
                 n_in: int, output_shape: tuple[int, ...], n_out: int) -> None:
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
        mem = np.zeros((batch // lanes, self.mem_size, lanes), dtype=np.float32)
        for base, values in self.constants:
            mem[:, base:base + values.size, :] = values[None, :, None]
        return mem.ravel()

    def run(self, mem: np.ndarray, ring: np.ndarray, t0: int, xin: np.ndarray, batch: int, chunk: int,
            threads: int = 1, lanes: int = 1) -> np.ndarray:
        """Advance ``batch`` streams (a multiple of ``lanes``) by the steps of ``xin`` ``(steps, batch, n_in)``,
        ``chunk`` groups of ``lanes`` streams at a time, splitting the groups over ``threads`` threads; outputs
        ``(steps, batch, n_out)``."""
        steps = xin.shape[0]
        yout = np.empty(steps * batch * self.n_out, dtype=np.float32)
        if xin.dtype != np.float32 or not xin.flags.c_contiguous:
            xin = np.ascontiguousarray(xin, np.float32)
        xin = xin.reshape(-1)
        key = (steps, batch, chunk, threads, lanes)
        metas = self._metas.get(key)
        if metas is None:  # per-thread [t0, steps, streams, values, inputs, outputs, block, first, end]
            groups = batch // lanes
            threads = max(1, min(threads, groups // max(chunk, 1)))
            bounds = [groups * i // threads // chunk * chunk for i in range(threads)] + [groups]
            metas = [np.array([0, steps, batch, self.mem_size, self.n_in, self.n_out, chunk, lo, hi], np.int64)
                     for lo, hi in pairwise(bounds)]
            self._metas[key] = metas
        for meta in metas:
            meta[0] = t0
        kernel = _KERNELS.get(lanes) or _kernel(lanes)
        args = (self.prog, self.params, self.idx, mem, ring, xin, yout)
        if len(metas) == 1:
            kernel(*args, metas[0])
        else:
            jobs = [_pool().submit(kernel, *args, meta) for meta in metas[1:]]
            kernel(*args, metas[0])
            for job in jobs:
                job.result()
        return yout.reshape(steps, batch, self.n_out)


def compile_step(engine: Stream, rings: dict[str, tuple[int, int]], x: torch.Tensor,
                 kwargs: dict[str, Any]) -> _Compiled:
    """Trace one step of ``engine`` (a batch-1 eager stream) on the chunk ``x`` ``(1, channels, 1)``.

    ``rings`` maps each stateful conv's path to ``(ring offset, rows)``. Raises :class:`Unsupported`.
    """
    program = _Program()
    tracer = _Tracer(program, rings)
    inputs: list[tuple[str, tuple[int, ...], int]] = []
    n_in = 0
    traced_kwargs = {}
    for name, value in [("x", x), *kwargs.items()]:
        if isinstance(value, torch.Tensor):
            if value.shape[0] != 1:
                raise Unsupported(f"input {name!r} must have one stream while compiling")
            value = value.clone()
            _, base = tracer.fresh(value)
            program.emit(INPUT, base, n_in, value.numel())
            inputs.append((name, tuple(value.shape[1:]), n_in))
            n_in += value.numel()
        if name != "x":
            traced_kwargs[name] = value
        else:
            x = value
    pre = nn.modules.module.register_module_forward_pre_hook(tracer.pre_hook)
    post = nn.modules.module.register_module_forward_hook(tracer.post_hook)
    saved = {p: c.state for p, c in engine.convs.items()}
    try:
        with torch.no_grad(), tracer:
            engine._clock.call += 1
            out = engine._shadow(x, **traced_kwargs)
    except Unsupported:
        raise
    except Exception as error:
        raise Unsupported(f"the traced forward raised {type(error).__name__}: {error}") from error
    finally:
        pre.remove()
        post.remove()
        for path, state in saved.items():
            engine.convs[path].state = state
    value = tracer.value(out)
    if value is None:
        raise Unsupported(f"the model's output ({type(out).__name__}) is not a tensor computed from its input")
    base = tracer.contiguous(value.addr)
    program.emit(OUTPUT, 0, base, out.numel())
    params = np.concatenate([np.zeros(1, np.float32), *program.params])
    idx = np.concatenate([np.zeros(1, np.uint64), *program.index])
    rows = _fuse_relu(np.array(program.rows, dtype=np.int64).reshape(-1, WIDTH), idx.astype(np.int64), program.mem)
    rows, index, constants, mem_size = _compact(rows, idx.astype(np.int64), program)
    prog = np.ascontiguousarray(rows.astype(np.uint64))
    return _Compiled(prog, params, np.ascontiguousarray(index.astype(np.uint64)), mem_size, constants, inputs,
                     n_in, tuple(out.shape), out.numel())


# --------------------------------------------------------------------------------------------------------------------
# The stream
# --------------------------------------------------------------------------------------------------------------------

def _per_step(value: Any, n: int) -> bool:
    """Whether an extra model argument is a per-step sequence ``(batch, channels, n)`` (else constant per chunk)."""
    return isinstance(value, torch.Tensor | np.ndarray) and value.ndim >= 3 and value.shape[-1] == n


class FastStream:
    """:class:`dilated.streaming.Stream` with the step compiled to a Numba kernel (same API, same state format).

    The program is compiled on the first step (the example input fixes the input layout and the non-tensor
    arguments; other arguments trigger a recompile) and checked against the eager engine on a few random steps.
    If the model uses an op the compiler does not cover, the stream runs the eager engine instead (with a warning
    naming the op when ``fallback="warn"``; ``"raise"`` raises :class:`Unsupported`); :attr:`backend` says which
    one runs.

    The weights are copied into the program when it is compiled (weight norm folded in): after changing the
    model's weights, build a new stream (the state carries over through :meth:`state_dict`).

    Args:
        model: as for :class:`~dilated.streaming.Stream`; float32 models.
        batch_size: independent streams.
        fallback: ``"warn"``, ``"silent"`` or ``"raise"``, see above.
        parallel_threshold: from this many streams on, they are split over ``threads`` threads (default: one per
            core).
        lanes: streams computed together by one vector instruction (see :func:`_build_kernel`); default
            the widest of :data:`LANES` that the batch fills (128 from 128 streams on, 64 from 64), else 1. The
            batch is padded to a multiple of it.
    """

    def __init__(self, model: nn.Module, batch_size: int = 1, fallback: Fallback = "warn",
                 parallel_threshold: int = 64, threads: int | None = None, lanes: int | None = None) -> None:
        reason = unsupported_reason(model)
        if reason is not None:
            raise RuntimeError(f"FastStream: {reason}")
        self.model, self.batch_size, self.fallback = model, batch_size, fallback
        self.parallel_threshold = parallel_threshold
        self.threads = threads if threads is not None else (os.cpu_count() or 1)
        self.lanes = lanes if lanes is not None else next((n for n in LANES if batch_size >= n), 1)
        self.padded = -(-batch_size // self.lanes) * self.lanes  # streams the kernel runs, a multiple of lanes
        self._engine = Stream(model, 1)  # traced and used as the reference; its state is never advanced
        self.rings: dict[str, tuple[int, int]] = {}
        self.histories: dict[str, tuple[int, int]] = {}  # path -> (in_channels, history)
        size = 0
        for path, conv in self._engine.convs.items():
            rows = conv.history + 1
            self.rings[path] = (size, rows)
            self.histories[path] = (conv.in_channels, conv.history)
            size += rows * conv.in_channels
        self.ring = np.empty(max(size * self.padded, 1), dtype=np.float32)  # per conv: (rows, groups, cin, lanes)
        self.ring.fill(0.0)  # touch every page now rather than on the first pass through the ring
        self.chunk: int | None = None  # groups of lanes per block of the kernel's loop (default: see _chunk)
        self.steps = 0
        self._programs: dict[Any, _Compiled] = {}
        self._current: _Compiled | None = None
        self._eager: Stream | None = None
        self.reason: str | None = None

    @property
    def backend(self) -> str:
        """``"fast"``, or ``"eager"`` after a fallback (see :attr:`reason`)."""
        return "eager" if self._eager is not None else "fast"

    @property
    def receptive_field(self) -> int:
        return self._engine.receptive_field

    # -- compilation -------------------------------------------------------------------------------------------------
    def _program(self, x_t: torch.Tensor, kwargs: dict[str, Any]) -> _Compiled | None:
        key = (x_t.dtype, x_t.shape[1:],
               *((k, (v.dtype, v.shape[1:]) if isinstance(v, torch.Tensor) else repr(v)) for k, v in kwargs.items()))
        compiled = self._programs.get(key)
        if compiled is not None:
            self._current = compiled
            return compiled
        try:
            example = x_t[:1].unsqueeze(-1)
            example_kwargs = {k: (v[:1] if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
            compiled = compile_step(self._engine, self.rings, example, example_kwargs)
            self._verify(compiled, example, example_kwargs)
        except Unsupported as error:
            self._fall_back(str(error))
            return None
        compiled.mem = compiled.fresh_memory(self.padded, self.lanes)
        self._programs[key] = self._current = compiled
        return compiled

    def _verify(self, compiled: _Compiled, example: torch.Tensor, kwargs: dict[str, Any], steps: int = 3) -> None:
        """Compare the kernel with the eager engine on a few random steps from zero state (one group of streams,
        all given the same input)."""
        generator = torch.Generator().manual_seed(0)
        engine = Stream(self.model, 1)
        lanes = self.lanes
        ring = np.zeros(max(self.ring.size // self.padded * lanes, 1), dtype=np.float32)
        mem = compiled.fresh_memory(lanes, lanes)
        worst = 0.0
        for t in range(steps):
            if example.is_floating_point():
                x = torch.randn(example.shape, generator=generator)
            else:
                x = example.clone()
            expected = engine.step_many(x, **kwargs)
            xin = np.repeat(self._pack(compiled, x, kwargs, 1, 1), lanes, axis=1)
            yout = compiled.run(mem, ring, t, xin, lanes, 1, lanes=lanes)
            got = torch.from_numpy(yout[0, lanes - 1]).reshape(expected.shape)
            worst = max(worst, float(((got - expected).abs() / (1.0 + expected.abs())).max()))
        if not worst <= 1e-4:
            raise Unsupported(f"the compiled step disagrees with the eager engine (relative error {worst:.2e}); "
                              "the model probably does something the tracer cannot see")

    def _fall_back(self, reason: str) -> None:
        if self.fallback == "raise":
            raise Unsupported(reason)
        if self.fallback == "warn":
            warnings.warn(f"dilated.fast_stream: falling back to the eager engine: {reason}", stacklevel=4)
        self.reason = reason
        state = self.state_dict()
        self._eager = Stream(self.model, self.batch_size)
        self._eager.load_state_dict(state)

    # -- stepping ----------------------------------------------------------------------------------------------------
    @staticmethod
    def _pack(compiled: _Compiled, x: torch.Tensor, kwargs: dict[str, Any], batch: int, n: int) -> np.ndarray:
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

    def _chunk(self, compiled: _Compiled) -> int:
        """Groups of ``lanes`` streams per block: their values (``mem_size`` floats per stream) fit in ~64 KB of
        cache; at least one group."""
        if self.chunk is not None:
            return self.chunk
        return max(1 if self.lanes > 1 else 4, min(64, 65536 // (4 * compiled.mem_size * self.lanes)))

    def _advance(self, compiled: _Compiled, xin: np.ndarray) -> np.ndarray:
        """Run the kernel over ``xin`` ``(n, batch, n_in)``: outputs ``(n, batch, n_out)``."""
        if self.padded != self.batch_size:
            xin = np.concatenate([xin, np.zeros((xin.shape[0], self.padded - self.batch_size, xin.shape[2]),
                                                np.float32)], axis=1)
        yout = compiled.run(compiled.mem, self.ring, self.steps, xin, self.padded, self._chunk(compiled),
                            self._threads(), self.lanes)
        self.steps += xin.shape[0]
        return yout if self.padded == self.batch_size else yout[:, :self.batch_size]

    def _threads(self) -> int:
        return self.threads if self.batch_size >= self.parallel_threshold else 1

    def _run(self, x: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor | None:
        """Advance by the ``n`` steps of ``x`` ``(batch, C, n)``: outputs ``(n, batch, *output shape)``, or ``None``
        after falling back to the eager engine."""
        n = x.shape[-1]
        if x.is_floating_point() and x.dtype != torch.float32:
            x = x.float()  # the kernel computes in float32, as the model does
        first = {k: (v[..., :1] if _per_step(v, n) else v) for k, v in kwargs.items()}  # one step's arguments
        compiled = self._program(x[..., 0], first)
        if compiled is None:
            return None
        yout = self._advance(compiled, self._pack(compiled, x, kwargs, self.batch_size, n))
        return torch.from_numpy(yout).reshape(n, self.batch_size, *compiled.output_shape[1:])

    def step(self, x_t: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """One step for every stream: ``(batch, channels) -> (batch, out_channels)``."""
        compiled = self._current
        if (compiled is not None and not kwargs and compiled.plain_key == (x_t.dtype, x_t.shape)
                and self._eager is None):  # the hot path: one input, already compiled
            xin = (x_t.detach() if x_t.requires_grad else x_t).numpy()[None]  # (1 step, B, C)
            return torch.from_numpy(self._advance(compiled, xin).reshape(compiled.step_shape))
        if self._eager is None:
            self._check_batch(x_t)
            y = self._run(x_t.unsqueeze(-1), kwargs)
            if y is not None:
                compiled = self._current
                if len(compiled.inputs) == 1 and x_t.dtype == torch.float32:
                    compiled.plain_key = (x_t.dtype, x_t.shape)
                y = y[0]  # (B, *output_shape[1:]) with a time axis of 1, if the model keeps one
                y = y.squeeze(-1) if len(compiled.output_shape) >= 3 else y
                compiled.step_shape = tuple(y.shape)
                return y
        return self._eager.step(x_t, **kwargs)

    def step_many(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """A chunk of ``n`` steps: ``(batch, channels, n) -> (batch, out_channels, n)``."""
        if self._eager is None:
            self._check_batch(x)
            y = self._run(x, kwargs)
            if y is not None:  # (n, B, *shape): put time last
                if len(self._output_shape()) >= 3:
                    y = y.squeeze(-1)
                return y.movedim(0, -1).contiguous()
        return self._eager.step_many(x, **kwargs)

    def step_numpy(self, x_t: np.ndarray) -> np.ndarray:
        """The lowest-overhead single step, once compiled, for a model whose only input is ``x``: float32
        ``(batch, C)`` in, ``(batch, out)`` out (a new array)."""
        compiled = self._current
        if compiled is None or len(compiled.inputs) != 1 or self._eager is not None:
            return self.step(torch.from_numpy(np.asarray(x_t, np.float32))).numpy()
        xin = np.asarray(x_t, np.float32).reshape(1, self.batch_size, compiled.n_in)
        return self._advance(compiled, xin)[0]

    def _output_shape(self) -> tuple[int, ...]:
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
        """The :class:`~dilated.streaming.Stream` format: ``"steps"`` and ``(batch, in_channels, history)`` per
        causal conv, oldest input first."""
        if self._eager is not None:
            return self._eager.state_dict()
        state = {STEPS_KEY: torch.tensor(self.steps, dtype=torch.int64)}
        for path, (offset, rows) in self.rings.items():
            cin, history = self.histories[path]
            ring = self._ring_of(offset, rows, cin)  # (rows, groups, C, lanes)
            times = np.arange(self.steps - history, self.steps) % rows
            history_first = ring[times].transpose(1, 3, 2, 0).reshape(self.padded, cin, history)
            state[path] = torch.from_numpy(history_first[:self.batch_size].copy())  # (B, C, history)
        return state

    def _ring_of(self, offset: int, rows: int, cin: int) -> np.ndarray:
        """One conv's ring as a view ``(rows, groups, in_channels, lanes)``."""
        start = offset * self.padded
        return self.ring[start:start + rows * self.padded * cin].reshape(rows, -1, cin, self.lanes)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self._eager is not None:
            self._eager.load_state_dict(state)
            return
        check_state(state, {p: (self.batch_size, c, h) for p, (c, h) in self.histories.items()})
        steps = int(state[STEPS_KEY])
        self.ring[:] = 0.0
        for path, (offset, rows) in self.rings.items():
            cin, history = self.histories[path]
            ring = self._ring_of(offset, rows, cin)
            times = np.arange(steps - history, steps) % rows
            values = np.zeros((self.padded, cin, history), np.float32)  # padding streams start from zero history
            values[:self.batch_size] = state[path].detach().float().cpu().numpy()
            ring[times] = values.reshape(-1, self.lanes, cin, history).transpose(3, 0, 2, 1)
        self.steps = steps


def fast_stream(model: nn.Module, batch_size: int = 1) -> FastStream | Stream:
    """A :class:`FastStream`, or the eager :class:`~dilated.streaming.Stream` with a warning if numba is missing."""
    reason = unsupported_reason(model)
    if reason is not None:
        warnings.warn(f"dilated.fast_stream: using the eager engine: {reason}", stacklevel=2)
        return Stream(model, batch_size)
    return FastStream(model, batch_size)


__all__ = ["FastStream", "Unsupported", "compile_step", "fast_stream", "unsupported_reason"]
