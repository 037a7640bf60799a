"""The Numba interpreter of the instruction set (:mod:`.instructions`): one small ``@njit`` function per op, called
from one dispatch loop, over preallocated buffers.

Memory layout: streams in groups of ``lanes``; value ``v`` of stream ``l`` of group ``g`` at
``(g * values + v) * lanes + l`` (one lane: one stream after another). Each conv's ring is ``(rows, groups,
in_channels, lanes)``. ``lanes == 1`` suits few streams (loops run over an instruction's values, a conv is dot
products over its taps); with more lanes every loop runs over the lanes, so each instruction is one vector operation
per value for ``lanes`` streams. ``lanes`` is a compile-time constant of each built kernel (:func:`kernel_for`).

The op functions are inlined into the loop (``inline="always"``): array arguments passed to a real call cost atomic
reference counts (~30 ns per call), more than most instructions take. Every index is uint64, so Numba skips its
negative-index wraparound, which would block vectorisation.

Each layout has two entry points: :func:`kernel_for` takes the inputs and outputs as numpy arrays, and
:func:`kernel_at_for` as addresses (a torch tensor's ``data_ptr()``), which spares the torch path a numpy array per
step (about 1 us each way).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import carray, njit, types
from numba.extending import intrinsic

from dilated.streaming._fast.instructions import (
    ABS,
    ADD,
    AFFINE,
    BINARY,
    CONV,
    ELU,
    EMBED,
    EXP,
    GATHER,
    GELU,
    GELU_TANH,
    INPUT,
    LAYERNORM,
    LAYOUT,
    LEAKY,
    MUL,
    NEG,
    ONEHOT,
    OPCODE,
    OUTPUT,
    REDUCE,
    RELU,
    SIGMOID,
    SILU,
    SOFTPLUS,
    SUB,
    TANH,
    UNARY,
)

_FAST = {"reassoc", "contract", "nsz"}  # lets dot products vectorise; exp/tanh stay exact
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U3 = np.uint64(3)
_U4 = np.uint64(4)
_ZERO = np.float32(0.0)
_OP = OPCODE
_C, _UN, _BI, _GA, _EM = CONV.at, UNARY.at, BINARY.at, GATHER.at, EMBED.at
_OH, _AF, _LN, _RE, _IN, _OUT = ONEHOT.at, AFFINE.at, LAYERNORM.at, REDUCE.at, INPUT.at, OUTPUT.at
_INLINE: dict[str, Any] = {"cache": True, "nogil": True, "inline": "always"}

_TANH_P = (
    4.89352455891786e-03,
    6.37261928875436e-04,
    1.48572235717979e-05,
    5.12229709037114e-08,
    -8.60467152213735e-11,
    2.00018790482477e-13,
    -2.76076847742355e-16,
)
_TANH_Q = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)


@intrinsic
def _floats_at(typingctx, address):
    """The float32 buffer at an integer ``address`` (as a pointer for ``carray``)."""
    signature = types.CPointer(types.float32)(types.int64)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

    return signature, codegen


# -- scalar helpers -----------------------------------------------------------------------------------------------


@njit(**_INLINE)
def _tanh(v):
    """tanh as a rational function (Eigen's float32 approximation, |error| < 4e-7 everywhere): arithmetic only, so
    loops of it vectorise; libm's tanh does not."""
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


@njit(**_INLINE)
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


@njit(**_INLINE)
def _arith(kind, u, v):
    if kind == ADD:
        return u + v
    if kind == SUB:
        return u - v
    if kind == MUL:
        return u * v
    return u / v


# -- CONV -------------------------------------------------------------------------------------------------------


@njit(**_INLINE)
def _conv_taps(prog, pc, mem, ring, t, batch, span, lo, hi, L):
    """Push each stream's input into the conv's ring, then gather its ``k`` taps (``dilation`` apart) side by side
    into scratch: ``(k * cin)`` values per stream. Both layouts share this (at one lane the ring is
    ``(rows, streams, cin)``)."""
    inp, cin, k = prog[pc, _C.inp], prog[pc, _C.cin], np.int64(prog[pc, _C.k])
    d, rows, scratch = np.int64(prog[pc, _C.dilation]), np.int64(prog[pc, _C.rows]), prog[pc, _C.scratch]
    r0 = prog[pc, _C.ring] * np.uint64(batch)
    groups = np.uint64(batch) // L
    width = cin * L
    row = np.uint64(t % rows) * groups  # (integer division is slow: once per row)
    for g in range(lo, hi):
        dst = r0 + (row + np.uint64(g)) * width
        src = np.uint64(g) * span + inp * L
        for q in range(width):
            ring[dst + q] = mem[src + q]
    for j in range(k):
        row = np.uint64((t - d * (k - 1 - j)) % rows) * groups
        for g in range(lo, hi):
            src = r0 + (row + np.uint64(g)) * width
            dst = np.uint64(g) * span + (scratch + np.uint64(j) * cin) * L
            for q in range(width):
                mem[dst + q] = ring[src + q]


@njit(**_INLINE)
def _conv_lanes(prog, pc, params, mem, span, lo, hi, L):
    """Many lanes: ``(cout, n) @ (n, lanes)`` per group, tiled two outputs by four taps (the accumulators stay in
    registers; on a 2-core Zen 5: 28 ns per stream for a 64-tap, 32-output conv at 128 lanes)."""
    out, w, bias = prog[pc, _C.out], prog[pc, _C.weight], prog[pc, _C.bias]
    cin, cout, k = prog[pc, _C.cin], prog[pc, _C.cout], prog[pc, _C.k]
    has_bias, relu = prog[pc, _C.has_bias] == _U1, prog[pc, _C.relu] == _U1
    saxpy = prog[pc, _C.saxpy] == _U1
    x = prog[pc, _C.scratch] if k > _U1 else prog[pc, _C.inp]
    n = k * cin
    so = _U1 if saxpy else n  # weight (o, i) at w + o * so + i * si
    si = cout if saxpy else _U1
    n4 = n // _U4 * _U4
    for g in range(lo, hi):
        m = np.uint64(g) * span
        xb = m + x * L
        o = np.uint64(0)
        while o + _U1 < cout:  # two outputs at a time
            oa = m + (out + o) * L
            oc = oa + L
            ba = params[bias + o] if has_bias else _ZERO
            bc = params[bias + o + _U1] if has_bias else _ZERO
            for ln in range(L):
                mem[oa + ln] = ba
                mem[oc + ln] = bc
            wa = w + o * so
            wc = wa + so
            i = np.uint64(0)
            while i < n4:
                a0, a1 = params[wa + i * si], params[wa + (i + _U1) * si]
                a2, a3 = params[wa + (i + _U2) * si], params[wa + (i + _U3) * si]
                c0, c1 = params[wc + i * si], params[wc + (i + _U1) * si]
                c2, c3 = params[wc + (i + _U2) * si], params[wc + (i + _U3) * si]
                x0 = xb + i * L
                for ln in range(L):
                    v0 = mem[x0 + ln]
                    v1 = mem[x0 + L + ln]
                    v2 = mem[x0 + _U2 * L + ln]
                    v3 = mem[x0 + _U3 * L + ln]
                    mem[oa + ln] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3
                    mem[oc + ln] += c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3
                i += _U4
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
                    mem[oa + ln] = max(mem[oa + ln], _ZERO)
                    mem[oc + ln] = max(mem[oc + ln], _ZERO)
            o += _U2
        if o < cout:  # the last of an odd number of outputs
            oa = m + (out + o) * L
            ba = params[bias + o] if has_bias else _ZERO
            for ln in range(L):
                mem[oa + ln] = ba
            for i in range(n):
                a0 = params[w + o * so + i * si]
                x0 = xb + i * L
                for ln in range(L):
                    mem[oa + ln] += a0 * mem[x0 + ln]
            if relu:
                for ln in range(L):
                    mem[oa + ln] = max(mem[oa + ln], _ZERO)


@njit(**_INLINE)
def _conv_streams(prog, pc, params, mem, span, lo, hi):
    """One lane: per stream, dot products over the taps (vectorised along them), four streams at a time so that
    each weight is loaded once for four; wide convs with few inputs (``saxpy``) accumulate weight rows instead."""
    out, w, bias = prog[pc, _C.out], prog[pc, _C.weight], prog[pc, _C.bias]
    cin, cout, k = prog[pc, _C.cin], prog[pc, _C.cout], prog[pc, _C.k]
    has_bias, relu = prog[pc, _C.has_bias] == _U1, prog[pc, _C.relu] == _U1
    x = prog[pc, _C.scratch] if k > _U1 else prog[pc, _C.inp]
    n = k * cin
    size = np.uint64(span)
    b = lo
    if prog[pc, _C.saxpy] == _U1:  # weights (k * cin, cout)
        for bb in range(lo, hi):
            m = np.uint64(bb) * size
            for o in range(cout):
                mem[m + out + o] = params[bias + o] if has_bias else _ZERO
            for i in range(n):
                xv = mem[m + x + i]
                wi = w + i * cout
                for o in range(cout):
                    mem[m + out + o] += params[wi + o] * xv
            if relu:
                for o in range(cout):
                    mem[m + out + o] = max(mem[m + out + o], _ZERO)
        return
    while b + 4 <= hi:
        m0 = np.uint64(b) * size
        m1 = m0 + size
        m2 = m1 + size
        m3 = m2 + size
        for o in range(cout):
            wo = w + o * n
            a0 = _ZERO
            a1 = _ZERO
            a2 = _ZERO
            a3 = _ZERO
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
                a0 = max(a0, _ZERO)
                a1 = max(a1, _ZERO)
                a2 = max(a2, _ZERO)
                a3 = max(a3, _ZERO)
            mem[m0 + out + o] = a0
            mem[m1 + out + o] = a1
            mem[m2 + out + o] = a2
            mem[m3 + out + o] = a3
        b += 4
    while b < hi:
        m = np.uint64(b) * size
        for o in range(cout):
            wo = w + o * n
            acc = _ZERO
            for i in range(n):
                acc += params[wo + i] * mem[m + x + i]
            if has_bias:
                acc += params[bias + o]
            mem[m + out + o] = max(acc, _ZERO) if relu else acc
        b += 1


# -- the other ops ----------------------------------------------------------------------------------------------


@njit(**_INLINE)
def _unary(prog, pc, params, mem, span, lo, hi, L):
    out, inp, n, kind = prog[pc, _UN.out], prog[pc, _UN.inp], prog[pc, _UN.n], prog[pc, _UN.kind]
    alpha = params[prog[pc, _UN.alpha]]
    for g in range(lo, hi):
        src = np.uint64(g) * span + inp * L
        dst = np.uint64(g) * span + out * L
        if kind == RELU:
            for i in range(n * L):
                v = mem[src + i]
                mem[dst + i] = v if v > 0.0 else _ZERO
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


@njit(**_INLINE)
def _binary(prog, pc, mem, span, lo, hi, L):
    out, a, c, n, kind = prog[pc, _BI.out], prog[pc, _BI.a], prog[pc, _BI.b], prog[pc, _BI.n], prog[pc, _BI.kind]
    sa, sb, relu = prog[pc, _BI.stride_a], prog[pc, _BI.stride_b], prog[pc, _BI.relu] == _U1
    for g in range(lo, hi):
        m = np.uint64(g) * span
        if sa == _U1 and sb == _U1:  # both operands contiguous: one loop over values and lanes
            pa = m + a * L
            pb = m + c * L
            po = m + out * L
            if kind == ADD and relu:
                for i in range(n * L):
                    mem[po + i] = max(mem[pa + i] + mem[pb + i], _ZERO)
            elif kind == ADD:
                for i in range(n * L):
                    mem[po + i] = mem[pa + i] + mem[pb + i]
            elif kind == MUL:
                for i in range(n * L):
                    mem[po + i] = mem[pa + i] * mem[pb + i]
            else:
                for i in range(n * L):
                    v = _arith(kind, mem[pa + i], mem[pb + i])
                    mem[po + i] = max(v, _ZERO) if relu else v
            continue
        for i in range(n):
            pa = m + (a + i * sa) * L
            pb = m + (c + i * sb) * L
            po = m + (out + i) * L
            for ln in range(L):
                v = _arith(kind, mem[pa + ln], mem[pb + ln])
                mem[po + ln] = max(v, _ZERO) if relu else v


@njit(**_INLINE)
def _gather(prog, pc, idx, mem, span, lo, hi, L):
    out, table, n = prog[pc, _GA.out], prog[pc, _GA.table], prog[pc, _GA.n]
    for g in range(lo, hi):
        m = np.uint64(g) * span
        for i in range(n):
            src = m + idx[table + i] * L
            dst = m + (out + i) * L
            for ln in range(L):
                mem[dst + ln] = mem[src + ln]


@njit(**_INLINE)
def _embed(prog, pc, params, mem, span, lo, hi, L):
    out, inp, table, dim = prog[pc, _EM.out], prog[pc, _EM.inp], prog[pc, _EM.table], prog[pc, _EM.dim]
    rows = np.int64(prog[pc, _EM.rows])
    for g in range(lo, hi):
        m = np.uint64(g) * span
        for ln in range(L):
            row = np.int64(mem[m + inp * L + ln])
            if row < 0 or row >= rows:
                row = 0
            start = table + np.uint64(row) * dim
            for i in range(dim):
                mem[m + (out + i) * L + ln] = params[start + i]


@njit(**_INLINE)
def _onehot(prog, pc, mem, span, lo, hi, L):
    out, inp, num = prog[pc, _OH.out], prog[pc, _OH.inp], prog[pc, _OH.num]
    for g in range(lo, hi):
        m = np.uint64(g) * span
        for i in range(num * L):
            mem[m + out * L + i] = 0.0
        for ln in range(L):
            row = np.int64(mem[m + inp * L + ln])
            if 0 <= row < np.int64(num):
                mem[m + (out + np.uint64(row)) * L + ln] = 1.0


@njit(**_INLINE)
def _affine(prog, pc, params, mem, span, lo, hi, L):
    out, inp, n = prog[pc, _AF.out], prog[pc, _AF.inp], prog[pc, _AF.n]
    scale, shift = prog[pc, _AF.scale], prog[pc, _AF.shift]
    for g in range(lo, hi):
        m = np.uint64(g) * span
        for i in range(n):
            src = m + (inp + i) * L
            dst = m + (out + i) * L
            for ln in range(L):
                mem[dst + ln] = mem[src + ln] * params[scale + i] + params[shift + i]


@njit(**_INLINE)
def _layernorm(prog, pc, params, mem, span, lo, hi, L):
    out, inp, n = prog[pc, _LN.out], prog[pc, _LN.inp], prog[pc, _LN.n]
    w, c, eps = prog[pc, _LN.weight], prog[pc, _LN.bias], params[prog[pc, _LN.eps]]
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


@njit(**_INLINE)
def _reduce(prog, pc, idx, mem, span, lo, hi, L):
    out, table, rows, cols = prog[pc, _RE.out], prog[pc, _RE.table], prog[pc, _RE.rows], prog[pc, _RE.cols]
    mean = prog[pc, _RE.mean] == _U1
    for g in range(lo, hi):
        m = np.uint64(g) * span
        for ln in range(L):
            for r in range(rows):
                acc = 0.0
                for c in range(cols):
                    acc += mem[m + idx[table + r * cols + c] * L + ln]
                mem[m + (out + r) * L + ln] = acc / np.float64(cols) if mean else acc


@njit(**_INLINE)
def _input(prog, pc, mem, xin, s, batch, n_in, span, lo, hi, L):
    out, src0, n = prog[pc, _IN.out], prog[pc, _IN.src], prog[pc, _IN.n]
    for g in range(lo, hi):
        m = np.uint64(g) * span + out * L
        for ln in range(L):
            src = np.uint64((s * batch + g * np.int64(L) + np.int64(ln)) * n_in) + src0
            for i in range(n):
                mem[m + i * L + ln] = xin[src + i]


@njit(**_INLINE)
def _output(prog, pc, mem, yout, s, batch, n_out, span, lo, hi, L):
    dst0, inp, n = prog[pc, _OUT.dst], prog[pc, _OUT.inp], prog[pc, _OUT.n]
    for g in range(lo, hi):
        m = np.uint64(g) * span + inp * L
        for ln in range(L):
            dst = np.uint64((s * batch + g * np.int64(L) + np.int64(ln)) * n_out) + dst0
            for i in range(n):
                yout[dst + i] = mem[m + i * L + ln]


# -- the dispatch loop ------------------------------------------------------------------------------------------


def _build(lanes: int) -> tuple[Callable[..., None], Callable[..., None]]:
    """The interpreter for one memory layout (``lanes`` streams per group, a compile-time constant)."""
    L = np.uint64(lanes)
    layout = LAYOUT  # read below so that it is in the closures, and so in Numba's cache keys (see LAYOUT)

    @njit(cache=True, nogil=True, fastmath=_FAST)
    def run_groups(prog, params, idx, mem, ring, xin, yout, meta, lo, hi):
        """Steps ``t0 .. t0 + n - 1`` for groups ``lo .. hi - 1``, one instruction at a time over all of them (so
        an instruction's weights stay in cache across streams)."""
        if layout < 0:  # never
            return
        t0, steps, batch, size, n_in, n_out = meta[0], meta[1], meta[2], meta[3], meta[4], meta[5]
        span = np.uint64(size) * L  # floats per group
        for s in range(steps):
            t = t0 + s
            for pc in range(prog.shape[0]):
                op = prog[pc, 0]
                if op == _OP.CONV:
                    if prog[pc, _C.k] > _U1:
                        _conv_taps(prog, pc, mem, ring, t, batch, span, lo, hi, L)
                    if L > _U1:
                        _conv_lanes(prog, pc, params, mem, span, lo, hi, L)
                    else:
                        _conv_streams(prog, pc, params, mem, span, lo, hi)
                elif op == _OP.UNARY:
                    _unary(prog, pc, params, mem, span, lo, hi, L)
                elif op == _OP.BINARY:
                    _binary(prog, pc, mem, span, lo, hi, L)
                elif op == _OP.GATHER:
                    _gather(prog, pc, idx, mem, span, lo, hi, L)
                elif op == _OP.EMBED:
                    _embed(prog, pc, params, mem, span, lo, hi, L)
                elif op == _OP.ONEHOT:
                    _onehot(prog, pc, mem, span, lo, hi, L)
                elif op == _OP.AFFINE:
                    _affine(prog, pc, params, mem, span, lo, hi, L)
                elif op == _OP.LAYERNORM:
                    _layernorm(prog, pc, params, mem, span, lo, hi, L)
                elif op == _OP.REDUCE:
                    _reduce(prog, pc, idx, mem, span, lo, hi, L)
                elif op == _OP.INPUT:
                    _input(prog, pc, mem, xin, s, batch, n_in, span, lo, hi, L)
                elif op == _OP.OUTPUT:
                    _output(prog, pc, mem, yout, s, batch, n_out, span, lo, hi, L)

    @njit("void(u8[:, ::1], f4[::1], u8[::1], f4[::1], f4[::1], f4[::1], f4[::1], i8[::1])", cache=True, nogil=True)
    def kernel(prog, params, idx, mem, ring, xin, yout, meta):
        """``meta``: step of the first input, steps, streams (a multiple of ``lanes``), values per stream, inputs
        and outputs per stream and step, groups per block, first and last group (exclusive) to run. ``mem``
        (groups, values, lanes), ``ring`` per conv (rows, groups, in_channels, lanes), ``xin`` (steps, streams,
        inputs), ``yout`` (steps, streams, outputs), all flat. Releases the GIL: threads may run disjoint groups."""
        if layout < 0:  # never
            return
        chunk = meta[6]
        for lo in range(meta[7], meta[8], chunk):
            run_groups(prog, params, idx, mem, ring, xin, yout, meta, lo, min(lo + chunk, meta[8]))

    @njit("void(u8[:, ::1], f4[::1], u8[::1], f4[::1], f4[::1], i8, i8, i8[::1], i8)", cache=True, nogil=True)
    def kernel_at(prog, params, idx, mem, ring, x_at, y_at, meta, t0):
        """``kernel`` from step ``t0`` (written into ``meta``) with ``xin`` and ``yout`` given by address: contiguous
        float32 buffers of ``steps * streams * inputs`` and ``steps * streams * outputs`` values, which the caller
        keeps alive during the call."""
        meta[0] = t0
        values = meta[1] * meta[2]
        xin = carray(_floats_at(x_at), (values * meta[4],))
        yout = carray(_floats_at(y_at), (values * meta[5],))
        kernel(prog, params, idx, mem, ring, xin, yout, meta)

    return kernel, kernel_at


_KERNELS: dict[int, tuple[Callable[..., None], Callable[..., None]]] = {}
LANES = (128, 64)  # streams per vector group: the widest that the batch fills, else 1


def _kernels(lanes: int) -> tuple[Callable[..., None], Callable[..., None]]:
    kernels = _KERNELS.get(lanes)
    if kernels is None:
        kernels = _KERNELS[lanes] = _build(lanes)
    return kernels


def kernel_for(lanes: int) -> Callable[..., None]:
    """The compiled interpreter for ``lanes`` (built, or loaded from Numba's cache, on first use)."""
    return _kernels(lanes)[0]


def kernel_at_for(lanes: int) -> Callable[..., None]:
    """The interpreter for ``lanes`` taking its inputs and outputs by address (see ``kernel_at`` in :func:`_build`)."""
    return _kernels(lanes)[1]
