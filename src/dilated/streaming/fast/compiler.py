"""The compiler of the fast path: trace one step of the eager engine into instructions (:mod:`.instructions`).

Compilation runs the model's own ``forward`` on one step of a batch-1 :class:`~dilated.streaming.eager.Stream`
under a :class:`torch.overrides.TorchFunctionMode` that records every torch call, while module hooks record the
conv/linear/norm layers as single instructions (weights pre-extracted, weight norm folded in). Ops that only move
elements (slicing, ``cat``, ``view``...) are compiled by running them on tensors of memory addresses. Then ReLUs
are folded into the instruction before them and values whose lifetimes do not overlap share memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from dilated.analysis.graph import tensors_in
from dilated.layers import Conv1d
from dilated.streaming.eager import Stream
from dilated.streaming.fast.instructions import (
    ABS,
    ADD,
    AFFINE,
    BINARY,
    CONV,
    DIV,
    ELU,
    EMBED,
    EXP,
    GATHER,
    GELU,
    GELU_TANH,
    INPUT,
    LAYERNORM,
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
    Op,
)
from dilated.streaming.fast.memory import compact, fuse_relu
from dilated.streaming.fast.program import Compiled
from dilated.streaming.shadow import StatefulConv, StatefulPad, time_layer


class Unsupported(Exception):
    """The model's step uses something the instruction set does not cover."""


_UNARY = {
    "relu": RELU,
    "relu_": RELU,
    "tanh": TANH,
    "tanh_": TANH,
    "sigmoid": SIGMOID,
    "sigmoid_": SIGMOID,
    "elu": ELU,
    "elu_": ELU,
    "leaky_relu": LEAKY,
    "leaky_relu_": LEAKY,
    "gelu": GELU,
    "silu": SILU,
    "exp": EXP,
    "exp_": EXP,
    "neg": NEG,
    "__neg__": NEG,
    "abs": ABS,
    "softplus": SOFTPLUS,
}
_BINARY = {
    "add": ADD,
    "add_": ADD,
    "__add__": ADD,
    "__radd__": ADD,
    "__iadd__": ADD,
    "sub": SUB,
    "sub_": SUB,
    "__sub__": SUB,
    "__isub__": SUB,
    "__rsub__": SUB,
    "mul": MUL,
    "mul_": MUL,
    "__mul__": MUL,
    "__rmul__": MUL,
    "__imul__": MUL,
    "div": DIV,
    "div_": DIV,
    "__truediv__": DIV,
    "__itruediv__": DIV,
    "__rtruediv__": DIV,
    "true_divide": DIV,
}
_REVERSED = {"__rsub__", "__rtruediv__"}
# Ops that only move elements: compiled by running them on tensors of memory addresses.
_MOVES = {
    "__getitem__",
    "chunk",
    "split",
    "tensor_split",
    "unbind",
    "cat",
    "concat",
    "concatenate",
    "stack",
    "view",
    "reshape",
    "unsqueeze",
    "squeeze",
    "transpose",
    "permute",
    "flatten",
    "unflatten",
    "narrow",
    "select",
    "contiguous",
    "clone",
    "t",
    "movedim",
    "moveaxis",
    "swapaxes",
    "expand",
    "expand_as",
    "broadcast_to",
    "repeat",
    "detach",
    "view_as",
    "reshape_as",
    "squeeze_",
    "unsqueeze_",
    "flip",
}
_IDENTITY = {"float", "to", "type_as", "dropout", "alpha_dropout", "feature_alpha_dropout", "dropout1d"}
_REDUCTIONS = {"sum", "mean"}


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

    def emit(self, op: Op, **fields: int) -> None:
        row = op.encode(**fields)
        self.rows.append(row + [0] * (WIDTH - len(row)))

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
        array = np.asarray(
            values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values, dtype=np.float32
        )
        base = self.alloc(array.size)
        self.constants.append((base, array.ravel().copy()))
        return base + np.arange(array.size, dtype=np.int64).reshape(array.shape)


def _name(func: Any) -> str:
    name = getattr(func, "__name__", "") or ""
    if name == "__get__":  # a property such as Tensor.shape
        owner = getattr(func, "__self__", None)
        return f"{getattr(owner, '__name__', '?')}.__get__"
    return name


class _Tracer(TorchFunctionMode):
    """Records one forward step as instructions (see the module docstring)."""

    LEAVES = (StatefulConv, StatefulPad, Conv1d, nn.Conv1d, nn.Linear, nn.Embedding, nn.BatchNorm1d, nn.LayerNorm)

    def __init__(self, program: _Program, rings: dict[str, tuple[int, int]]) -> None:
        super().__init__()
        self.p, self.rings = program, rings
        self.values: dict[int, _Value] = {}
        self.keep: list[torch.Tensor] = []  # keeps traced tensors alive so that their ids stay unique
        self.leaf: nn.Module | None = None
        self.pads: dict[int, tuple[StatefulPad, _Value]] = {}  # id(padded output) -> the pad and its input
        self.inner_pads: list[tuple[StatefulPad, _Value | None]] = []  # pads run inside the current leaf
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

    def addresses(self, x: Any) -> np.ndarray:
        """Addresses of a traced tensor (-1 for steps only padding provides), or of a constant."""
        v = self.value(x)
        return v.addr if v is not None else self.operand(x)

    def operand(self, x: Any) -> np.ndarray:
        """Addresses of a traced tensor that an op computes with, or of a constant (untraced tensor or number)."""
        v = self.value(x)
        if v is not None:
            return _computable(v.addr)
        if isinstance(x, torch.Tensor):
            if x.numel() > 1 << 16 or not (x.is_floating_point() or x.dtype in (torch.int64, torch.int32, torch.bool)):
                raise Unsupported(f"a constant tensor of shape {tuple(x.shape)} and dtype {x.dtype}")
            return self.p.constant(x.float())
        if isinstance(x, bool | int | float):
            return self.p.constant(float(x))
        raise Unsupported(f"an operand of type {type(x).__name__}")

    def contiguous(self, addr: np.ndarray) -> int:
        """Base address of ``addr`` laid out contiguously (gathering it into fresh memory if needed)."""
        flat = _computable(addr).ravel()
        if flat.size and np.array_equal(flat, flat[0] + np.arange(flat.size)):
            return int(flat[0])
        base = self.p.alloc(flat.size)
        self.p.emit(GATHER, out=base, table=self.p.table(flat), n=flat.size)
        return base

    # -- torch functions ---------------------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.leaf is not None:
            return out
        traced = [t for t in tensors_in(args) + tensors_in(kwargs) if self.value(t) is not None]
        results = tensors_in(out)
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
            self.p.emit(UNARY, out=base, inp=base_in, n=out.numel(), kind=kind, alpha=alpha)
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
            self.p.emit(
                BINARY,
                out=base,
                a=bases[0],
                b=bases[1],
                n=n,
                kind=_BINARY[name],
                stride_a=strides[0],
                stride_b=strides[1],
            )
        elif name in _IDENTITY:
            if name.startswith("dropout") or "dropout" in name:
                training = kwargs.get("training", args[2] if len(args) > 2 else True)
                if training:
                    raise Unsupported("dropout in training mode")
            elif not out.is_floating_point() and out.dtype != args[0].dtype:
                raise Unsupported(f"{name} to {out.dtype}")
            self.register(out, self.addresses(args[0]).reshape(tuple(out.shape)))
        elif name == "pad" and not any(args[1] if len(args) > 1 else kwargs.get("pad", ())):
            self.register(out, self.addresses(args[0]).reshape(tuple(out.shape)))  # a pad of zero steps
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
            self.p.emit(ONEHOT, out=base, inp=self.contiguous(self.operand(args[0])), num=num)
        else:
            raise Unsupported(f"torch function {name!r}")

    def compile_move(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        """Run the op on tensors holding each element's address: the result says where every element comes
        from. Only the data argument (the first: a tensor, or the list given to ``cat``/``stack``) is replaced;
        indices and shape templates stay as they are."""

        def to_addresses(x: Any) -> Any:
            if isinstance(x, torch.Tensor):
                return torch.from_numpy(np.ascontiguousarray(self.addresses(x)))
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
        self.p.emit(
            REDUCE, out=base, table=self.p.table(rows), rows=rows.shape[0], cols=rows.shape[1], mean=int(name == "mean")
        )

    # -- leaf modules ------------------------------------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        if self.leaf is None and isinstance(module, self.LEAVES) and args and self.value(args[0]) is not None:
            self.leaf, self.leaf_input, self.inner_pads = module, self.value(args[0]), []

    def post_hook(self, module: nn.Module, args: tuple, out: Any) -> None:
        if isinstance(module, StatefulPad) and self.leaf is not None and module is not self.leaf:
            self.inner_pads.append((module, self.value(args[0]) if args else None))  # e.g. pytorch-tcn's convs
        if module is not self.leaf:
            return
        self.leaf, x = None, self.leaf_input
        assert x is not None  # pre_hook set it with the leaf
        if not isinstance(out, torch.Tensor):
            raise Unsupported(f"{type(module).__name__} returning {type(out).__name__}")
        self.compile_module(module, x, out)

    def fresh_step(self, out: torch.Tensor) -> int:
        """Fresh memory for this step's values of a stateful conv's output ``(1, C, 1 + right)``; the ``right``
        steps from right padding get address -1 (reading them is :class:`Unsupported`)."""
        base = self.p.alloc(out.shape[1])
        addr = np.full(tuple(out.shape), -1, dtype=np.int64)
        addr[:, :, 0] = base + np.arange(out.shape[1])
        self.register(out, addr)
        return base

    def compile_pad(self, pad: StatefulPad, x: _Value, out: torch.Tensor) -> None:
        """A stateful pad emits nothing: its history lives in its ring, read by the unpadded conv after it."""
        if any(pad.other) or out.dim() != 3:
            raise Unsupported(f"layer {pad.path!r} pads more than the time axis of (batch, channels, time)")
        addr = np.full(tuple(out.shape), -1, dtype=np.int64)
        addr[:, :, pad.history] = x.addr.reshape(out.shape[1])
        self.pads[id(out)] = (pad, x)
        self.register(out, addr)

    def padded_input(self, conv: nn.Module, x: _Value, k: int) -> tuple[_Value, int, int, int]:
        """An unpadded conv of ``k`` taps reads a stateful pad's ring: the pad's input, ring offset, rows and the
        dilation, if the pad holds exactly the conv's span (e.g. ``F.pad(x, (k - 1, 0))`` then ``nn.Conv1d``)."""
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
        return source, ring, rows, layer.dilation

    def compile_module(self, module: nn.Module, x: _Value, out: torch.Tensor) -> None:
        p = self.p
        with torch.no_grad():
            if isinstance(module, StatefulPad):
                self.compile_pad(module, x, out)
            elif isinstance(module, StatefulConv | Conv1d | nn.Conv1d | nn.Linear):
                ring, rows, k, d = 0, 1, 1, 1
                if isinstance(module, StatefulConv):
                    if out.dim() != 3:
                        raise Unsupported(f"{type(module.inner).__name__} on a 4-D input (a 2-D conv)")
                    ring, rows = self.rings[module.path]
                    k, d = module.layer.kernel_size, module.layer.dilation
                    (weight, bias), groups = module.weight(), module.groups
                elif isinstance(module, nn.Linear):
                    weight, bias, groups = module.weight.unsqueeze(-1), module.bias, 1
                else:  # pointwise, or unpadded reading the history of a pad before it
                    weight, bias, groups = module.weight, module.bias, module.groups
                    k = weight.shape[-1]
                    if k > 1:
                        x, ring, rows, d = self.padded_input(module, x, k)
                w = _dense(weight.detach().float().cpu(), groups)  # (out, in, k)
                cout, cin = w.shape[0], w.shape[1]
                if x.addr.size != cin:
                    raise Unsupported(
                        f"{type(module).__name__} on an input of {x.addr.size} values per step, expected {cin}"
                    )
                base_in = self.contiguous(x.addr)
                saxpy = cout >= 4 * k * cin  # few inputs, many outputs: accumulate rows rather than dot products
                layout = (2, 1, 0) if saxpy else (0, 2, 1)  # (k, in, out) or (out, k, in)
                w_off = p.param(w.permute(*layout).contiguous().numpy())
                b_off = p.param(bias.detach().float().cpu().numpy()) if bias is not None else 0
                scratch = p.alloc(k * cin) if k > 1 else 0  # the k taps gathered side by side
                base = self.fresh_step(out) if isinstance(module, StatefulConv) else self.fresh(out)[1]
                p.emit(
                    CONV,
                    out=base,
                    inp=base_in,
                    weight=w_off,
                    bias=b_off,
                    cin=cin,
                    cout=cout,
                    k=k,
                    dilation=d,
                    ring=ring,
                    rows=rows,
                    scratch=scratch,
                    has_bias=int(bias is not None),
                    saxpy=int(saxpy),
                )
            elif isinstance(module, nn.Embedding):
                if x.addr.size != 1:
                    raise Unsupported("an embedding of more than one code per step")
                if module.max_norm is not None:
                    raise Unsupported("Embedding with max_norm")
                table = p.param(module.weight.detach().float().cpu().numpy())
                _, base = self.fresh(out)
                p.emit(
                    EMBED,
                    out=base,
                    inp=int(x.addr.ravel()[0]),
                    table=table,
                    dim=module.embedding_dim,
                    rows=module.num_embeddings,
                )
            elif isinstance(module, nn.BatchNorm1d):
                if (
                    module.training
                    or not module.track_running_stats
                    or module.running_mean is None
                    or module.running_var is None
                ):  # both are None together
                    raise Unsupported("BatchNorm1d without running statistics")
                channels = module.num_features
                if x.tensor.dim() < 2 or x.tensor.shape[1] != channels or x.addr.size != channels:
                    raise Unsupported("BatchNorm1d on more than one step per stream")
                scale = module.weight.detach() if module.weight is not None else torch.ones(channels)
                scale = scale / torch.sqrt(module.running_var + module.eps)
                shift = module.bias.detach() if module.bias is not None else torch.zeros(channels)
                shift = shift - module.running_mean * scale
                base_in = self.contiguous(x.addr)
                _, base = self.fresh(out)
                p.emit(
                    AFFINE,
                    out=base,
                    inp=base_in,
                    n=channels,
                    scale=p.param(scale.numpy()),
                    shift=p.param(shift.numpy()),
                )
            elif isinstance(module, nn.LayerNorm):
                n = int(np.prod(module.normalized_shape))
                if n != x.addr.size:
                    raise Unsupported("LayerNorm over more than one step per stream")
                w_off = p.param(
                    module.weight.detach().float().cpu().numpy() if module.weight is not None else np.ones(n)
                )
                b_off = p.param(module.bias.detach().float().cpu().numpy() if module.bias is not None else np.zeros(n))
                base_in = self.contiguous(x.addr)
                _, base = self.fresh(out)
                p.emit(LAYERNORM, out=base, inp=base_in, n=n, weight=w_off, bias=b_off, eps=p.param([module.eps]))
            else:  # pragma: no cover - LEAVES and this list agree
                raise Unsupported(type(module).__name__)


def _computable(addr: np.ndarray) -> np.ndarray:
    """``addr``, unless it holds steps that only padding provides (address -1): those are :class:`Unsupported`."""
    if addr.size and addr.min() < 0:
        raise Unsupported(
            "an op reads steps that only padding provides (a pad's history or the steps of right "
            "padding) other than through the conv after the pad"
        )
    return addr


def _dense(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped conv weight ``(out, in / groups, k)`` as the equivalent dense ``(out, in, k)``."""
    if groups == 1:
        return weight
    out, per_group, k = weight.shape
    dense = weight.new_zeros(out, per_group * groups, k)
    step = out // groups
    for g in range(groups):
        dense[g * step : (g + 1) * step, g * per_group : (g + 1) * per_group] = weight[g * step : (g + 1) * step]
    return dense


def compile_step(
    engine: Stream, rings: dict[str, tuple[int, int]], x: torch.Tensor, kwargs: dict[str, Any]
) -> Compiled:
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
            program.emit(INPUT, out=base, src=n_in, n=value.numel())
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
    value = tracer.value(out)
    if value is None:
        raise Unsupported(f"the model's output ({type(out).__name__}) is not a tensor computed from its input")
    base = tracer.contiguous(value.addr)
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
