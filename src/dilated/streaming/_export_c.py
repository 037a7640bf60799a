"""The streaming step as dependency-free C99: ``step.c`` and ``step.h``, checked against the model's forward.

The fast path's compiled program (:mod:`dilated.streaming._fast`) is written out as straight-line C: one block of
loops per instruction, every size and address a literal, so the C compiler specialises each conv to its shape. The
weights are embedded as ``static const float`` (a snapshot taken at export: retrain, export again); each stream's
state (a step counter, one ring of past inputs per causal conv, and the program's working values) lives in a block
the caller owns. The step allocates nothing and takes no lock. Adding an instruction to the fast path means adding
its emitter to :data:`EMITTERS`; an instruction without one is refused in one line.

:func:`export_c` compiles the step with the system C compiler (``$CC``, else ``cc``), calls it through ``ctypes``
on the construction check's longest input (at least 512 steps, three streams at scales 1, 1e-3 and 1e3) and
compares with the model's forward within the float32 tolerance of the fast path's own check
(:func:`dilated.streaming._verify.disagreement`: 1e-4 relative to each value and to its stream's largest output).
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dilated.streaming._fast import FastStream, Unsupported
from dilated.streaming._fast import instructions as isa
from dilated.streaming._fast.instructions import Op, op_of
from dilated.streaming._fast.program import Compiled
from dilated.streaming._verify import disagreement, model_dtype

_TILE = 128  # outputs of a conv computed together: eight 16-float vectors of partial sums
HEADER_BYTES = 64  # the step counter, padded so that the rings start on a cache line
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# tanh as the Numba kernel computes it (Eigen's float32 rational approximation, |error| < 4e-7): arithmetic only,
# so the compiler vectorises loops of it, where a loop calling libm's tanhf stays scalar.
_TANH = """\
static float tanh_r(float v) {
    const float x = v < -9.0f ? -9.0f : (v > 9.0f ? 9.0f : v);
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = (p * x2 + 4.89352455891786e-03f) * x;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p / q;
}
"""
# C of each UNARY kind, of the float ``v`` (``alpha``: the op's parameter, a literal)
_UNARY_C = {
    isa.RELU: "v > 0.0f ? v : 0.0f",
    isa.TANH: "tanh_r(v)",
    isa.SIGMOID: "0.5f + 0.5f * tanh_r(0.5f * v)",
    isa.ELU: "v > 0.0f ? v : {alpha} * (expf(v) - 1.0f)",
    isa.LEAKY: "v > 0.0f ? v : {alpha} * v",
    isa.GELU: "0.5f * v * (1.0f + erff(v * 0.70710678118654752f))",
    isa.GELU_TANH: "0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)))",
    isa.SILU: "v / (1.0f + expf(-v))",
    isa.EXP: "expf(v)",
    isa.NEG: "-v",
    isa.ABS: "fabsf(v)",
    isa.SOFTPLUS: "v > 20.0f ? v : log1pf(expf(v))",
}
_BINARY_C = {isa.ADD: "+", isa.SUB: "-", isa.MUL: "*", isa.DIV: "/"}


def literal(value: float) -> str:
    """A C float literal that reads back as exactly ``value`` (float32)."""
    v = float(np.float32(value))
    if not np.isfinite(v):
        return "NAN" if np.isnan(v) else ("INFINITY" if v > 0 else "-INFINITY")
    text = f"{v:.9g}"
    return (text if any(c in text for c in ".e") else text + ".0") + "f"


@dataclass
class _Emission:
    """What the instructions' C needs besides itself: the parameters (each conv's weights rearranged in place, see
    :func:`_conv`), the index table, and which helpers and arrays it uses."""

    params: np.ndarray
    index: np.ndarray
    n_x: int
    uses: set[str] = field(default_factory=set)

    def p(self, offset: int) -> str:
        self.uses.add("P")
        return f"P + {offset}"


@dataclass(frozen=True)
class _Pass:
    """One instruction's C for one stream (``m``, ``r``, ``t``, ``x``, ``cond``, ``y``: that stream's), run for
    every stream of the batch before the next pass; ``weights``: it reads a tile of weights, which two passes in
    one loop over the streams would take turns to evict."""

    lines: list[str]
    weights: bool = False


def _conv(f: Any, e: _Emission) -> list[_Pass]:
    """``cout`` sums over the ``k * cin`` taps side by side (``xs``), in tiles of outputs, each split over a few
    partial sums that take every few taps: independent chains of multiply-adds keep the vector units busy (one
    chain waits on each add's latency), in a fixed order, so no fast-math is needed. One pass per tile: the
    tile's weights come from memory for the first stream of a batch and from cache for the others."""
    n = f.k * f.cin
    weight = e.params[f.weight : f.weight + n * f.cout]
    weight = weight.reshape(n, f.cout) if f.saxpy else weight.reshape(f.cout, n).T  # (taps * in, out)
    tiles = range(0, f.cout, _TILE)  # laid out tile after tile, each (taps * in, width): read front to back
    e.params[f.weight : f.weight + n * f.cout] = np.concatenate([weight[:, o : o + _TILE].ravel() for o in tiles])
    e.uses.add("P")
    passes = []
    if f.k > 1:  # push this step's input into the ring, then gather the k rows dilation apart into scratch
        lines = [
            f"float *ring = r + {f.ring};",
            f"const unsigned now = (unsigned)(t % {f.rows}u);",
            f"memcpy(ring + now * {f.cin}u, m + {f.inp}, {4 * f.cin}u);",
        ]
        for j in range(f.k):
            back = f.dilation * (f.k - 1 - j)
            row = f"(unsigned)((t + {f.rows - back}u) % {f.rows}u)" if back else "now"
            lines.append(f"memcpy(m + {f.scratch + j * f.cin}, ring + {row} * {f.cin}u, {4 * f.cin}u);")
        passes.append(_Pass(lines))
    # the taps copied to a local array, which the compiler keeps in vector registers (each tap broadcast from a
    # register rather than loaded from memory: one load per multiply-add, the weight's, where it was one and a half)
    xs = f"float xs[{n}]; memcpy(xs, m + {f.scratch if f.k > 1 else f.inp}, {4 * n}u);"
    for start in tiles:  # outputs in tiles whose partial sums stay in registers
        passes.append(_Pass([xs, *_conv_tile(f, n, start, min(_TILE, f.cout - start))], weights=True))
    return passes


def _conv_tile(f: Any, n: int, start: int, width: int) -> list[str]:
    """Outputs ``start .. start + width - 1`` of a conv over its ``n`` taps ``xs``, in ``chains`` partial sums."""
    bias = f"P[{f.bias + start} + o]" if f.has_bias else "0.0f"
    chains = max(1, min(4, _TILE // width, n))  # about eight 16-float vectors of partial sums
    w = f"P + {f.weight + n * start}"
    lines = [
        f"{{ float {', '.join(f'a{c}[{width}]' for c in range(chains))};",
        f"  for (int o = 0; o < {width}; o++) {{ a0[o] = {bias}; "
        + "".join(f"a{c}[o] = 0.0f; " for c in range(1, chains))
        + "}",
        f"  for (int q = 0; q < {n // chains * chains}; q += {chains}) {{",
        *(f"    const float v{c} = xs[q + {c}], *w{c} = {w} + (q + {c}) * {width};" for c in range(chains)),
        f"    for (int o = 0; o < {width}; o++) {{ "
        + " ".join(f"a{c}[o] += w{c}[o] * v{c};" for c in range(chains))
        + " } }",
    ]
    for q in range(n // chains * chains, n):  # the last n % chains taps
        lines.append(f"  for (int o = 0; o < {width}; o++) a0[o] += ({w} + {q * width})[o] * xs[{q}];")
    total = " + ".join(f"a{c}[o]" for c in range(chains))
    total = f"({total})" if chains > 1 else total
    value = "v > 0.0f ? v : 0.0f" if f.relu else "v"
    lines.append(
        f"  for (int o = 0; o < {width}; o++) {{ const float v = {total}; m[{f.out + start} + o] = {value}; }} }}"
    )
    return lines


def _unary(f: Any, e: _Emission) -> list[str]:
    if f.kind in (isa.TANH, isa.SIGMOID):
        e.uses.add("tanh")
    expr = _UNARY_C[f.kind].format(alpha=literal(e.params[f.alpha]))
    return [f"for (int i = 0; i < {f.n}; i++) {{ const float v = m[{f.inp} + i]; m[{f.out} + i] = {expr}; }}"]


def _binary(f: Any, e: _Emission) -> list[str]:
    a, b = (
        f"m[{base} + i * {stride}]" if stride else f"m[{base}]"
        for base, stride in ((f.a, f.stride_a), (f.b, f.stride_b))
    )
    value = f"{a} {_BINARY_C[f.kind]} {b}"
    if f.relu:
        return [f"for (int i = 0; i < {f.n}; i++) {{ const float v = {value}; m[{f.out} + i] = v > 0.0f ? v : 0.0f; }}"]
    return [f"for (int i = 0; i < {f.n}; i++) m[{f.out} + i] = {value};"]


def _gather(f: Any, e: _Emission) -> list[str]:
    e.uses.add("X")
    return [f"for (int i = 0; i < {f.n}; i++) m[{f.out} + i] = m[X[{f.table} + i]];"]


def _embed(f: Any, e: _Emission) -> list[str]:
    return [
        f"const float code = m[{f.inp}];",
        f"const unsigned row = code >= 0.0f && code < {f.rows}.0f ? (unsigned)code : 0u;  /* out of range: row 0 */",
        f"for (int i = 0; i < {f.dim}; i++) m[{f.out} + i] = ({e.p(f.table)})[row * {f.dim}u + i];",
    ]


def _onehot(f: Any, e: _Emission) -> list[str]:
    return [
        f"const float code = m[{f.inp}];",
        f"for (int i = 0; i < {f.num}; i++) m[{f.out} + i] = 0.0f;",
        f"if (code > -1.0f && code < {f.num}.0f) m[{f.out} + (int)code] = 1.0f;",
    ]


def _affine(f: Any, e: _Emission) -> list[str]:
    e.uses.add("P")
    return [f"for (int i = 0; i < {f.n}; i++) m[{f.out} + i] = m[{f.inp} + i] * P[{f.scale} + i] + P[{f.shift} + i];"]


def _layernorm(f: Any, e: _Emission) -> list[str]:
    e.uses.add("P")
    eps = repr(float(e.params[f.eps]))
    return [
        "double mean = 0.0, var = 0.0;",
        f"for (int i = 0; i < {f.n}; i++) mean += m[{f.inp} + i];",
        f"mean /= {f.n}.0;",
        f"for (int i = 0; i < {f.n}; i++) var += (m[{f.inp} + i] - mean) * (m[{f.inp} + i] - mean);",
        f"const double inv = 1.0 / sqrt(var / {f.n}.0 + {eps});",
        f"for (int i = 0; i < {f.n}; i++) m[{f.out} + i] = (float)((m[{f.inp} + i] - mean) * inv * P[{f.weight} + i] "
        f"+ P[{f.bias} + i]);",
    ]


def _reduce(f: Any, e: _Emission) -> list[str]:
    e.uses.add("X")
    value = f"acc / {f.cols}.0" if f.mean else "acc"
    return [
        f"for (int i = 0; i < {f.rows}; i++) {{",
        "  double acc = 0.0;",
        f"  for (int c = 0; c < {f.cols}; c++) acc += m[X[{f.table} + i * {f.cols} + c]];",
        f"  m[{f.out} + i] = (float)({value}); }}",
    ]


def _input(f: Any, e: _Emission) -> list[str]:
    source = f"x[{f.src} + i]" if f.src < e.n_x else f"cond[{f.src - e.n_x} + i]"
    return [f"for (int i = 0; i < {f.n}; i++) m[{f.out} + i] = {source};"]


def _output(f: Any, e: _Emission) -> list[str]:
    return [f"for (int i = 0; i < {f.n}; i++) y[{f.dst} + i] = m[{f.inp} + i];"]


def _one_pass(emit: Callable[[Any, _Emission], list[str]]) -> Callable[[Any, _Emission], list[_Pass]]:
    """An instruction that reads no weight tile: its C in one pass."""
    return lambda f, e: [_Pass(emit(f, e))]


# The C of each instruction of the fast path (one function per op, given the row's fields by name): its passes.
EMITTERS: dict[Op, Callable[[Any, _Emission], list[_Pass]]] = {
    isa.CONV: _conv,
    isa.UNARY: _one_pass(_unary),
    isa.BINARY: _one_pass(_binary),
    isa.GATHER: _one_pass(_gather),
    isa.EMBED: _one_pass(_embed),
    isa.ONEHOT: _one_pass(_onehot),
    isa.AFFINE: _one_pass(_affine),
    isa.LAYERNORM: _one_pass(_layernorm),
    isa.REDUCE: _one_pass(_reduce),
    isa.INPUT: _one_pass(_input),
    isa.OUTPUT: _one_pass(_output),
}


def _array(name: str, ctype: str, values: np.ndarray, text: Callable[[Any], str]) -> str:
    items = [text(v) for v in values]
    rows = [", ".join(items[i : i + 8]) for i in range(0, len(items), 8)]
    return f"static const {ctype} {name}[{len(items)}] = {{\n    " + ",\n    ".join(rows) + "\n};\n"


@dataclass(frozen=True)
class CStep:
    """A step program as C: ``source`` (``step.c``), ``header`` (``step.h``), and its sizes per stream."""

    source: str
    header: str
    state_bytes: int
    n_x: int  # floats of x per step
    n_cond: int  # floats of cond per step (0: the step takes NULL)
    n_y: int  # floats of y per step


@dataclass(frozen=True)
class _Layout:
    """Where a stream's parts lie in its state block, and its floats per step."""

    state_bytes: int
    rings_at: int
    mem_at: int
    n_x: int
    n_cond: int
    n_y: int


def _loops(passes: list[tuple[str, _Pass]]) -> list[list[tuple[str, _Pass]]]:
    """Consecutive passes (with their instruction's name) in loops over the streams, one weight tile at most per
    loop: each stream then runs a stretch of instructions on its own values while they are in cache."""
    loops: list[list[tuple[str, _Pass]]] = []
    for item in passes:
        if loops and not (item[1].weights and any(p.weights for _, p in loops[-1])):
            loops[-1].append(item)
        else:
            loops.append([item])
    return loops


_STREAM_NAMES = re.compile(r"\b(t|r|m|x|cond|y)\b")


def _steps(loops: list[list[tuple[str, _Pass]]], at: _Layout, streams: str) -> str:
    """The body of a step of ``streams`` streams (a C expression), from ``state``, ``x_all``, ``cond_all`` and
    ``y_all``: every loop runs its passes for every stream in turn, then the counters advance."""
    block = f"(unsigned char *)state + (size_t)b * {at.state_bytes}u"
    defined = {  # what a pass may read of its stream, defined where a loop's passes use it
        "t": "const uint64_t t = *(const uint64_t *)s;",
        "r": f"float *r = (float *)(s + {at.rings_at});",
        "m": f"float *m = (float *)(s + {at.mem_at});",
        "x": f"const float *x = x_all + (size_t)b * {at.n_x}u;",
        "cond": f"const float *cond = cond_all + (size_t)b * {at.n_cond}u;",
        "y": f"float *y = y_all + (size_t)b * {at.n_y}u;",
    }
    text = []
    for loop in loops:
        body = "".join(
            f"        {{ /* {name} */\n" + "".join(f"            {line}\n" for line in p.lines) + "        }\n"
            for name, p in loop
        )
        used = set(_STREAM_NAMES.findall(body))
        prologue = [f"unsigned char *s = {block};"] if used & {"t", "r", "m"} else []
        prologue += [line for name, line in defined.items() if name in used]
        text.append(
            f"    for (int b = 0; b < {streams}; b++) {{\n"
            + "".join(f"        {line}\n" for line in prologue)
            + body
            + "    }\n"
        )
    used = set(_STREAM_NAMES.findall("".join(text)))
    unused = "".join(f"    (void){name}_all;\n" for name in ("x", "cond", "y") if name not in used)
    counters = f"    for (int b = 0; b < {streams}; b++) *(uint64_t *)({block}) += 1u;\n"
    return unused + "".join(text) + counters


def c_source(compiled: Compiled, ring_floats: int, prefix: str = "dilated", header: str = "step.h") -> CStep:
    """The C of ``compiled`` (a fast-path program of one stream whose rings take ``ring_floats`` floats), its
    public functions named ``{prefix}_...``; ``header``: the name ``step.c`` includes. Raises :class:`Unsupported`
    for an instruction without a C emission.

    ``step`` and ``step_batch`` are the same passes, for one stream and for ``batch``: each loop over the streams
    runs a stretch of instructions for every stream before the next, so a conv's weight tile is read from memory
    once per call and from cache for the other streams, and every stream computes as ``step`` does (bit for bit).
    """
    if not _PREFIX.match(prefix):
        raise ValueError(f"export_c: prefix {prefix!r} is not a C identifier (letters, digits, _; not a digit first)")
    n_x = int(np.prod(compiled.inputs[0][1], dtype=np.int64))
    e = _Emission(compiled.params.astype(np.float32).copy(), compiled.idx, n_x)
    passes = []
    for row in compiled.prog:
        op = op_of(row)
        emit = EMITTERS.get(op)
        if emit is None:
            raise Unsupported(f"export_c: instruction {op.name!r} has no C emission")
        passes += [(op.name, p) for p in emit(op.view(row), e)]
    loops = _loops(passes)
    rings_at = HEADER_BYTES
    mem_at = -(-(rings_at + 4 * ring_floats) // 64) * 64
    state_bytes = -(-(mem_at + 4 * compiled.mem_size) // 64) * 64
    at = _Layout(state_bytes, rings_at, mem_at, n_x, compiled.n_in - n_x, compiled.n_out)
    guard = f"{prefix.upper()}_STEP_H"
    inputs = ", ".join(f"{name} {shape}" for name, shape, _ in compiled.inputs[1:]) or "none: pass NULL"
    h = f"""\
/* Streaming step of a dilated model, generated by `dilated export` (dependency-free C99, float32).
 * The weights inside the .c file are a snapshot taken at export: export again after training.
 * Every stream owns {state_bytes} bytes of state ({prefix}_state_size()), aligned as malloc aligns; call
 * {prefix}_reset on it before the first step. The step allocates nothing and takes no lock.
 * Floats per step and stream: x {n_x} (integer codes as floats), cond {at.n_cond} ({inputs}), y {at.n_y}. */
#ifndef {guard}
#define {guard}
#include <stddef.h>
#ifdef __cplusplus
extern "C" {{
#endif
size_t {prefix}_state_size(void);
void {prefix}_reset(void *state);
void {prefix}_step(void *state, const float *x, const float *cond, float *y);
/* batch streams: state batch x {prefix}_state_size() bytes; x, cond and y batch-major. Each layer runs for every
 * stream before the next (its weights read from memory once per call); every stream's y equals the single step's. */
void {prefix}_step_batch(void *state, int batch, const float *x, const float *cond, float *y);
#ifdef __cplusplus
}}
#endif
#endif
"""
    parts = [
        "/* Generated by `dilated export`; see the header. Weights: a snapshot taken at export. */\n",
        f'#include <math.h>\n#include <stdint.h>\n#include <string.h>\n#include "{header}"\n\n',
    ]
    if "P" in e.uses:
        parts.append(_array("P", "float", e.params, literal))
    if "X" in e.uses:
        parts.append(_array("X", "uint32_t", e.index.astype(np.uint32), lambda v: f"{int(v)}u"))
    if "tanh" in e.uses:
        parts.append(_TANH)
    for base, values in compiled.constants:
        parts.append(_array(f"K{base}", "float", values.astype(np.float32), literal))
    constants = "".join(f"    memcpy(m + {base}, K{base}, sizeof K{base});\n" for base, _ in compiled.constants)
    parts.append(f"""
size_t {prefix}_state_size(void) {{ return {state_bytes}u; }}

void {prefix}_reset(void *state) {{
    float *m = (float *)((unsigned char *)state + {mem_at});
    memset(state, 0, {state_bytes}u);
{constants}    (void)m;
}}

void {prefix}_step(void *state, const float *x_all, const float *cond_all, float *y_all) {{
{_steps(loops, at, "1")}}}

void {prefix}_step_batch(void *state, int batch, const float *x_all, const float *cond_all, float *y_all) {{
{_steps(loops, at, "batch")}}}
""")
    return CStep("".join(parts), h, state_bytes, n_x, at.n_cond, at.n_y)


def compiler() -> str:
    """The system C compiler: ``$CC``, else ``cc``; ``ValueError`` if there is none."""
    name = os.environ.get("CC", "cc")
    path = shutil.which(name)
    if path is None:
        raise ValueError(f"export_c: no C compiler {name!r} on PATH to check the step (set CC, or check=False)")
    return path


def build(source: Path, output: Path, flags: tuple[str, ...] = ("-O2", "-std=c99")) -> Path:
    """Compile ``source`` into the shared library ``output`` with the system compiler."""
    command = [compiler(), *flags, "-shared", "-fPIC", "-o", str(output), str(source), "-lm"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"export_c: {' '.join(command)} failed: {result.stderr.strip()}")
    return output


@dataclass(frozen=True)
class ExportedC:
    """What :func:`export_c` wrote and checked."""

    source: Path
    header: Path
    state_bytes: int  # per stream
    n_x: int
    n_cond: int
    n_y: int
    steps_checked: int  # per stream, three streams (0: not checked)
    max_abs_diff: float


class Library:
    """A compiled step called through ``ctypes``: :meth:`run` steps ``batch`` streams from zero state."""

    def __init__(self, path: Path, prefix: str, step: CStep | ExportedC) -> None:
        self.lib, self.step = ctypes.CDLL(str(path)), step
        self.state_size = getattr(self.lib, f"{prefix}_state_size")
        self.state_size.restype = ctypes.c_size_t
        self.reset = getattr(self.lib, f"{prefix}_reset")
        self.step_batch = getattr(self.lib, f"{prefix}_step_batch")
        self.step_one = getattr(self.lib, f"{prefix}_step")
        pointer = ctypes.c_void_p
        self.reset.argtypes = [pointer]
        self.step_batch.argtypes = [pointer, ctypes.c_int, pointer, pointer, pointer]
        self.step_one.argtypes = [pointer, pointer, pointer, pointer]

    def run(self, xin: np.ndarray, batched: bool = True) -> np.ndarray:
        """Outputs ``(steps, batch, n_y)`` for inputs ``(steps, batch, n_x + n_cond)``: all streams through one
        ``step_batch`` call per step, or (``batched=False``) each through its own ``step`` call."""
        steps, batch, _ = xin.shape
        s = self.step
        state = np.zeros(batch * int(self.state_size()) // 4 + 16, np.float32)
        base = -(-state.ctypes.data // 64) * 64  # a 64-byte aligned block inside the array
        for b in range(batch):
            self.reset(base + b * s.state_bytes)
        x = np.ascontiguousarray(xin[..., : s.n_x], np.float32)
        cond = np.ascontiguousarray(xin[..., s.n_x :], np.float32)
        y = np.zeros((steps, batch, s.n_y), np.float32)
        for t in range(steps):
            c = cond[t].ctypes.data if s.n_cond else None
            if batched:
                self.step_batch(base, batch, x[t].ctypes.data, c, y[t].ctypes.data)
                continue
            for b in range(batch):
                cb = c and c + 4 * b * s.n_cond
                self.step_one(base + b * s.state_bytes, x[t, b].ctypes.data, cb, y[t, b].ctypes.data)
        return y


def export_c(
    model: nn.Module,
    path: str | Path,
    x_t: torch.Tensor,
    prefix: str = "dilated",
    check: bool = True,
    **model_kwargs: Any,
) -> ExportedC:
    """Write ``model``'s streaming step as C99 to ``path`` (``step.c``) and its header beside it (``step.h``), and
    check it against the model's forward.

    Args:
        model: a float32 model the fast path compiles (:class:`dilated.streaming.FastStream`).
        x_t: one step's input of one stream, ``(1, channels)`` (or ``(1,)`` integer codes).
        prefix: the public functions' prefix (``{prefix}_step`` ...): two models with two prefixes link together.
        check: compile the C with the system compiler and compare it with the model's forward on the
            construction check's longest input.
        model_kwargs: the model's other arguments; tensors (one step of one stream, e.g. global conditioning
            ``(1, channels)``) become the step's ``cond``, in this order; the rest are fixed in the C.

    Raises ``ValueError`` (one line) for a model that is not float32, a step the fast path does not compile or
    that has an instruction without a C emission, no C compiler (with ``check``), or a C step that differs.
    """
    dtype = model_dtype(model)
    if dtype != torch.float32:
        raise ValueError(f"export_c: a {str(dtype)[6:]} model; the C step computes in float32 (export model.float())")
    path = Path(path)
    try:
        fast = FastStream(model, 1, fallback="raise")
        fast.step(x_t, **model_kwargs)
        compiled = fast._current
        assert compiled is not None  # fallback="raise": the step compiled or raised
        step = c_source(compiled, fast.ring.size, prefix, path.with_suffix(".h").name)
    except Unsupported as error:
        raise ValueError(f"export_c: {str(error).removeprefix('export_c: ')}") from error
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(step.source)
    path.with_suffix(".h").write_text(step.header)
    case = fast._engine.cases[-1] if check and fast._engine.cases else None
    worst, steps = 0.0, 0
    if check:
        assert case is not None and case.expected is not None  # FastStream verifies on construction
        streams, steps = case.x.shape[0], case.x.shape[-1]
        with tempfile.TemporaryDirectory() as tmp:
            library = Library(build(path, Path(tmp) / "step.so"), prefix, step)
            y = library.run(FastStream._pack(compiled, case.x, case.kwargs, streams, steps))
        got = torch.from_numpy(y).reshape(steps, streams, *compiled.output_shape[1:])
        got = (got.squeeze(-1) if len(compiled.output_shape) >= 3 else got).movedim(0, -1)
        got = got[..., -1] if case.expected.dim() < got.dim() else got  # a model that keeps its last step
        excess, nan = disagreement(case.expected, got)
        worst = float((got - case.expected).abs().nan_to_num(0.0).max())
        if excess or nan:
            raise ValueError(f"export_c: the C step differs from the model's forward by {worst:.3g} ({path})")
    return ExportedC(path, path.with_suffix(".h"), step.state_bytes, step.n_x, step.n_cond, step.n_y, steps, worst)
