"""The compiler of the fast path: trace one step of the eager engine into instructions (:mod:`.instructions`).

Compilation runs the model's own ``forward`` on one step of a batch-1 :class:`~dilated.streaming.EagerStream`
under a :class:`torch.overrides.TorchFunctionMode` that records every torch call, while module hooks record the
conv/linear/norm layers as single instructions (:mod:`.layers`). Ops that only move elements (slicing, ``cat``,
``view``...) are compiled by running them on tensors of memory addresses (:mod:`.builder`). Then ReLUs are folded
into the instruction before them and values whose lifetimes do not overlap share memory (:mod:`.memory`).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from dilated.analysis import tensors_in
from dilated.layers import Conv1d
from dilated.streaming._eager import EagerStream
from dilated.streaming._fast import layers
from dilated.streaming._fast.builder import Placed, ProgramBuilder, Unsupported
from dilated.streaming._fast.instructions import (
    ABS,
    ADD,
    BINARY,
    DIV,
    ELU,
    EXP,
    GELU,
    GELU_TANH,
    INPUT,
    LEAKY,
    MUL,
    NEG,
    ONEHOT,
    OUTPUT,
    REDUCE,
    RELU,
    SIGMOID,
    SILU,
    SOFTPLUS,
    SUB,
    TANH,
    UNARY,
    WIDTH,
)
from dilated.streaming._fast.memory import compact, fuse_relu
from dilated.streaming._fast.program import Compiled
from dilated.streaming._shadow import StatefulConv, StatefulPad, time_layer

__all__ = ["Unsupported", "compile_step"]


def _names(spelling: str, code: int) -> dict[str, int]:
    return dict.fromkeys(spelling.split(), code)


# torch function names -> instruction kinds
_UNARY = {
    **_names("relu relu_", RELU),
    **_names("tanh tanh_", TANH),
    **_names("sigmoid sigmoid_", SIGMOID),
    **_names("elu elu_", ELU),
    **_names("leaky_relu leaky_relu_", LEAKY),
    **_names("gelu", GELU),
    **_names("silu", SILU),
    **_names("exp exp_", EXP),
    **_names("neg __neg__", NEG),
    **_names("abs", ABS),
    **_names("softplus", SOFTPLUS),
}
_BINARY = {
    **_names("add add_ __add__ __radd__ __iadd__", ADD),
    **_names("sub sub_ __sub__ __isub__ __rsub__", SUB),
    **_names("mul mul_ __mul__ __rmul__ __imul__", MUL),
    **_names("div div_ __truediv__ __itruediv__ __rtruediv__ true_divide", DIV),
}
_REVERSED = {"__rsub__", "__rtruediv__"}
# Ops that only move elements: compiled by running them on tensors of memory addresses.
_MOVES = set(
    """__getitem__ chunk split tensor_split unbind cat concat concatenate stack view reshape unsqueeze squeeze
    transpose permute flatten unflatten narrow select contiguous clone t movedim moveaxis swapaxes expand expand_as
    broadcast_to repeat detach view_as reshape_as squeeze_ unsqueeze_ flip""".split()
)
_IDENTITY = {"float", "to", "type_as", "dropout", "alpha_dropout", "feature_alpha_dropout", "dropout1d"}
_REDUCTIONS = {"sum", "mean"}


def _name(func: Any) -> str:
    name = getattr(func, "__name__", "") or ""
    if name == "__get__":  # a property such as Tensor.shape
        owner = getattr(func, "__self__", None)
        return f"{getattr(owner, '__name__', '?')}.__get__"
    return name


def bound(func: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The arguments of a torch call by name, as torch binds them (positional and keyword, defaults filled in):
    by the Python signature where the function has one (``F.elu``, ``F.dropout``), else by the first of torch's
    own ``aten`` schemas for its name that takes them (``softplus``, ``Tensor.sum``). ``{}`` if none does."""
    try:
        binding = inspect.signature(func).bind(*args, **kwargs)
        binding.apply_defaults()
        return dict(binding.arguments)
    except (TypeError, ValueError):  # a builtin without a Python signature
        pass
    for schema in torch._C._jit_get_schemas_for_operator(f"aten::{_name(func).strip('_')}"):
        positional = [a for a in schema.arguments if not a.kwarg_only]
        names = {a.name for a in schema.arguments}
        if len(args) <= len(positional) and set(kwargs) <= names:
            values = {a.name: a.default_value for a in schema.arguments if a.has_default_value()}
            return {**values, **{a.name: v for a, v in zip(positional, args)}, **kwargs}
    return {}


class _StepTracer(TorchFunctionMode):
    """Records one forward step as instructions (see the module docstring)."""

    LEAVES = (StatefulConv, StatefulPad, Conv1d, nn.Conv1d, nn.Linear, nn.Embedding, nn.BatchNorm1d, nn.LayerNorm)

    def __init__(self, program: ProgramBuilder, rings: dict[str, tuple[int, int]]) -> None:
        super().__init__()
        self.p, self.rings = program, rings
        self.leaf: nn.Module | None = None
        self.pads: dict[int, tuple[StatefulPad, Placed]] = {}  # id(padded output) -> the pad and its input
        self.inner_pads: list[tuple[StatefulPad, Placed | None]] = []  # pads run inside the current leaf
        self.leaf_input: Placed | None = None

    # -- torch functions ---------------------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.leaf is not None:
            return out
        traced = [t for t in tensors_in(args) + tensors_in(kwargs) if self.p.value(t) is not None]
        results = tensors_in(out)
        if not traced or not results:
            return out
        self.compile_call(_name(func), func, args, kwargs, out)
        return out

    def compile_call(self, name: str, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        p = self.p
        if name in _UNARY:
            self.compile_unary(name, bound(func, args, kwargs), args, out)
        elif name in _BINARY:
            self.compile_binary(name, args, kwargs, out)
        elif name in _IDENTITY:
            if "dropout" in name:
                if bound(func, args, kwargs).get("training", True):
                    raise Unsupported("dropout in training mode")
            elif not out.is_floating_point() and out.dtype != args[0].dtype:
                raise Unsupported(f"{name} to {out.dtype}")
            p.register(out, p.addresses(args[0]).reshape(tuple(out.shape)))
        elif name == "pad" and not any(bound(func, args, kwargs).get("pad", (1,))):
            p.register(out, p.addresses(args[0]).reshape(tuple(out.shape)))  # a pad of zero steps
        elif name in _MOVES:
            self.compile_move(func, args, kwargs, out)
        elif name in _REDUCTIONS:
            self.compile_reduction(name, bound(func, args, kwargs), args, out)
        elif name == "one_hot":
            num = bound(func, args, kwargs).get("num_classes", -1)
            if num < 1:
                raise Unsupported("one_hot without num_classes")
            if args[0].numel() != 1:
                raise Unsupported("one_hot of more than one code per step")
            base_in = p.contiguous(p.operand(args[0]))
            p.emit(ONEHOT, out=p.fresh(out), inp=base_in, num=num)
        else:
            raise Unsupported(f"torch function {name!r}")

    def compile_unary(self, name: str, arguments: dict[str, Any], args: tuple, out: torch.Tensor) -> None:
        """An elementwise function; its arguments (``arguments``, as torch binds them) become the instruction's."""
        p = self.p
        kind = _UNARY[name]
        alpha = 0  # params[0] is zero
        if not arguments:
            raise Unsupported(f"{name} called with arguments the compiler cannot bind")
        if kind == ELU:
            if arguments.get("scale", 1.0) != 1.0 or arguments.get("input_scale", 1.0) != 1.0:
                raise Unsupported("elu with scale or input_scale other than 1")
            alpha = p.param([float(arguments.get("alpha", 1.0))])
        elif kind == LEAKY:
            alpha = p.param([float(arguments.get("negative_slope", 0.01))])
        elif kind == GELU and arguments.get("approximate", "none") == "tanh":
            kind = GELU_TANH
        elif kind == SOFTPLUS and (arguments.get("beta", 1.0) != 1.0 or arguments.get("threshold", 20.0) != 20.0):
            raise Unsupported("softplus with beta or threshold other than the defaults")
        base_in = p.contiguous(p.operand(args[0]))
        p.emit(UNARY, out=p.fresh(out), inp=base_in, n=out.numel(), kind=kind, alpha=alpha)

    def compile_binary(self, name: str, args: tuple, kwargs: dict, out: torch.Tensor) -> None:
        """An elementwise op of two operands; one broadcast to a single value is read with stride 0."""
        a, b = args[0], (args[1] if len(args) > 1 else kwargs.get("other"))
        if kwargs.get("alpha", 1) != 1 or kwargs.get("rounding_mode") is not None:
            raise Unsupported(f"{name} with alpha or rounding_mode")
        if name in _REVERSED:
            a, b = b, a
        bases, strides = [], []
        for operand in (a, b):
            addr = np.broadcast_to(self.p.operand(operand), tuple(out.shape))
            flat = np.ascontiguousarray(addr).ravel()
            if np.all(flat == flat[0]):
                bases.append(int(flat[0]))
                strides.append(0)
            else:
                bases.append(self.p.contiguous(flat))
                strides.append(1)
        self.p.emit(
            BINARY,
            out=self.p.fresh(out),
            a=bases[0],
            b=bases[1],
            n=out.numel(),
            kind=_BINARY[name],
            stride_a=strides[0],
            stride_b=strides[1],
        )

    def compile_move(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        """Run the op on tensors holding each element's address: the result says where every element comes
        from. Only the data argument (the first: a tensor, or the list given to ``cat``/``stack``) is replaced;
        indices and shape templates stay as they are."""

        def to_addresses(x: Any) -> Any:
            if isinstance(x, torch.Tensor):
                return torch.from_numpy(np.ascontiguousarray(self.p.addresses(x)))
            if isinstance(x, tuple | list):
                return type(x)(to_addresses(v) for v in x)
            return x

        if args:
            moved = func(to_addresses(args[0]), *args[1:], **kwargs)
        else:  # e.g. torch.cat(tensors=[...])
            moved = func(**{k: (to_addresses(v) if k in ("input", "tensors") else v) for k, v in kwargs.items()})
        real, addr = tensors_in(out), tensors_in(moved)
        if len(real) != len(addr) or any(r.shape != a.shape for r, a in zip(real, addr)):
            raise Unsupported(f"{_name(func)} on addresses does not reproduce its shapes")
        for r, a in zip(real, addr):
            self.p.register(r, a.numpy().copy())

    def compile_reduction(self, name: str, arguments: dict[str, Any], args: tuple, out: torch.Tensor) -> None:
        x = self.p.operand(args[0])
        dim = arguments.get("dim")
        if arguments.get("dtype") is not None:
            raise Unsupported(f"{name} with dtype")
        dims = tuple(range(x.ndim)) if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
        dims = tuple(d % x.ndim for d in dims)
        kept = [d for d in range(x.ndim) if d not in dims]
        rows = np.transpose(x, kept + list(dims)).reshape(out.numel(), -1)
        self.p.emit(
            REDUCE,
            out=self.p.fresh(out),
            table=self.p.table(rows),
            rows=rows.shape[0],
            cols=rows.shape[1],
            mean=int(name == "mean"),
        )

    # -- leaf modules ------------------------------------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        if self.leaf is None and isinstance(module, self.LEAVES) and args and self.p.value(args[0]) is not None:
            self.leaf, self.leaf_input, self.inner_pads = module, self.p.value(args[0]), []

    def post_hook(self, module: nn.Module, args: tuple, out: Any) -> None:
        if isinstance(module, StatefulPad) and self.leaf is not None and module is not self.leaf:
            self.inner_pads.append((module, self.p.value(args[0]) if args else None))  # e.g. pytorch-tcn's convs
        if module is not self.leaf:
            return
        self.leaf, x = None, self.leaf_input
        assert x is not None  # pre_hook set it with the leaf
        if not isinstance(out, torch.Tensor):
            raise Unsupported(f"{type(module).__name__} returning {type(out).__name__}")
        with torch.no_grad():
            self.compile_module(module, x, out)

    def compile_pad(self, pad: StatefulPad, x: Placed, out: torch.Tensor) -> None:
        """A stateful pad emits nothing: its history lives in its ring, read by the unpadded conv after it."""
        if any(pad.other) or out.dim() != 3:
            raise Unsupported(f"layer {pad.path!r} pads more than the time axis of (batch, channels, time)")
        addr = np.full(tuple(out.shape), -1, dtype=np.int64)
        addr[:, :, pad.history] = x.addr.reshape(out.shape[1])
        self.pads[id(out)] = (pad, x)
        self.p.register(out, addr)

    def padded_input(self, conv: nn.Module, x: Placed, k: int) -> tuple[Placed, tuple[int, int, int]]:
        """An unpadded conv of ``k`` taps reads a stateful pad's ring: the pad's input and (ring offset, rows,
        dilation), if the pad holds exactly the conv's span (e.g. ``F.pad(x, (k - 1, 0))`` then ``nn.Conv1d``)."""
        layer = time_layer(conv)
        name = type(conv).__name__
        if layer is None or layer.stride != 1:
            raise Unsupported(f"{name} with kernel {k}")
        inner = [(pad, v) for pad, v in self.inner_pads if v is x]
        if len(self.inner_pads) == 1 and inner:  # the conv pads inside its own forward (pytorch-tcn)
            pad, source = inner[0]
        elif not self.inner_pads and id(x.tensor) in self.pads:
            pad, source = self.pads[id(x.tensor)]
        else:
            raise Unsupported(f"{name} with kernel {k} reading something other than one zero pad of its input")
        if pad.history != layer.span - 1 or pad.right:
            raise Unsupported(f"{name} (span {layer.span}) after a pad of ({pad.history}, {pad.right})")
        ring, rows = self.rings[pad.path]
        return source, (ring, rows, layer.dilation)

    def compile_module(self, module: nn.Module, x: Placed, out: torch.Tensor) -> None:
        name = type(module).__name__
        if isinstance(module, StatefulPad):
            self.compile_pad(module, x, out)
        elif isinstance(module, StatefulConv):
            if out.dim() != 3:
                raise Unsupported(f"{type(module.inner).__name__} on a 4-D input (a 2-D conv)")
            ring, rows = self.rings[module.path]
            weight, bias = module.weight()
            layers.conv(
                self.p, name, x, out, weight, bias, module.groups, (ring, rows, module.layer.dilation), stateful=True
            )
        elif isinstance(module, nn.Linear):
            layers.conv(self.p, name, x, out, module.weight.unsqueeze(-1), module.bias, 1)
        elif isinstance(module, Conv1d | nn.Conv1d):  # pointwise, or unpadded reading the history of a pad before it
            k = module.weight.shape[-1]
            if k == 1:
                layers.conv(self.p, name, x, out, module.weight, module.bias, module.groups)
            else:
                source, history = self.padded_input(module, x, k)
                layers.conv(self.p, name, source, out, module.weight, module.bias, module.groups, history)
        elif isinstance(module, nn.Embedding):
            layers.embedding(self.p, module, x, out)
        elif isinstance(module, nn.BatchNorm1d):
            layers.batch_norm(self.p, module, x, out)
        elif isinstance(module, nn.LayerNorm):
            layers.layer_norm(self.p, module, x, out)
        else:  # pragma: no cover - LEAVES and this list agree
            raise Unsupported(name)


def compile_step(
    engine: EagerStream, rings: dict[str, tuple[int, int]], x: torch.Tensor, kwargs: dict[str, Any]
) -> Compiled:
    """Trace one step of ``engine`` (a batch-1 eager stream) on the chunk ``x`` ``(1, channels, 1)``.

    ``rings`` maps each stateful conv's path to ``(ring offset, rows)``. Raises :class:`Unsupported`.
    """
    program = ProgramBuilder()
    tracer = _StepTracer(program, rings)
    inputs: list[tuple[str, tuple[int, ...], int]] = []
    n_in = 0
    traced_kwargs = {}
    for name, value in [("x", x), *kwargs.items()]:
        if isinstance(value, torch.Tensor):
            if value.shape[0] != 1:
                raise Unsupported(f"input {name!r} must have one stream while compiling")
            value = value.clone()
            program.emit(INPUT, out=program.fresh(value), src=n_in, n=value.numel())
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
            out = engine.run(x, **traced_kwargs)
    except Unsupported:
        raise
    except Exception as error:
        raise Unsupported(f"the traced forward raised {type(error).__name__}: {error}") from error
    finally:
        pre.remove()
        post.remove()
        for path, state in saved.items():
            engine.convs[path].state = state
    value = program.value(out)
    if value is None:
        raise Unsupported(f"the model's output ({type(out).__name__}) is not a tensor computed from its input")
    base = program.contiguous(value.addr)
    program.emit(OUTPUT, dst=0, inp=base, n=out.numel())
    params = np.concatenate([np.zeros(1, np.float32), *program.params])
    idx = np.concatenate([np.zeros(1, np.uint64), *program.index])
    rows = fuse_relu(np.array(program.rows, dtype=np.int64).reshape(-1, WIDTH), idx.astype(np.int64), program.mem)
    rows, index, constants, mem_size = compact(
        rows, idx.astype(np.int64), program.blocks, program.mem, program.constants
    )
    prog = np.ascontiguousarray(rows.astype(np.uint64))
    return Compiled(
        prog,
        params,
        np.ascontiguousarray(index.astype(np.uint64)),
        mem_size,
        constants,
        inputs,
        n_in,
        tuple(out.shape),
        out.numel(),
    )
