"""The dataflow graph of a torch module: which input steps every tensor's steps see, from one forward pass.

:func:`trace` runs the model once in eval mode under a :class:`torch.overrides.TorchFunctionMode` and follows every
tensor that depends on the input. Each carries its time axis and, per *source* (the model input or an earlier
module), a :class:`~dilated.analysis.fields.Field`: the source steps each of its steps sees. Every leaf module
(plus RNNs and ``nn.MultiheadAttention``, taken whole) is a :class:`Node` whose output becomes a new source, so the
graph keeps its branches: the edges of a node are the fields of its output over the nodes it reads directly, and
:meth:`Graph.field` composes them down to the model input.

How each op acts on time is read from what it does, never from a module's class name:

* convs, pools and transposed convs (1-D, 2-D, 3-D; time on any spatial axis, e.g. DeepLOB's height) by their
  kernel, stride, dilation and padding; adaptive pools;
* data movement (``F.pad``, slicing, ``narrow``, ``cat``/``stack``/``chunk``, ``view``/``reshape``/``permute``,
  nearest upsampling, ``repeat_interleave``, assignment into slices): the op is run again on a tensor holding
  each element's time index, so the result says where every element comes from, and the time axis is followed
  wherever it goes;
* elementwise ops with broadcasting (activations, gates, residual sums; a constant 0 factor or a ``-inf`` mask
  cuts the dependency), normalisations and reductions (over time: every step), cumulative ops (the past),
  ``linear``/``matmul``/``einsum`` (over time: every step), RNNs (the past, or everything if bidirectional), and
  attention (``scaled_dot_product_attention``, ``nn.MultiheadAttention``: every step, or the past under a causal
  mask).

An op it cannot follow makes the tensors it produces *opaque*, naming the op and the module it ran in; a
node downstream of one has no field from the analysis (the caller then measures it with the probe).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from dilated.analysis.fields import EMPTY, IDENTITY, SELF, Field, FieldError, Steps

Sources = dict[int, Field]  # source node index -> field over that node's output steps
BIG = float(1 << 24)  # element codes: (value * MAX_GROUPS + group) * BIG + time index + 1; 0 = no source
MAX_GROUPS = 64
ATOMIC = (nn.RNNBase, nn.MultiheadAttention)  # followed as a whole (their insides are fused kernels)


class Unfollowed(ValueError):
    """An op whose effect on the time axis the analysis cannot follow exactly."""


@dataclass
class _Value:
    """What the analysis knows of one tensor.

    Compact form: ``axis`` (the time axis, ``None`` when there is none and every element sees absolute steps) and
    ``groups``: one :data:`Sources` per group of elements with different fields (e.g. the channels of a ``cat`` of
    two paths), ``group_of`` (int64, broadcastable to the shape; -1: a constant element) saying which. A *mixed*
    value has ``tau``, the time index of every element (the time axis merged with another by a reshape).
    """

    tensor: torch.Tensor
    axis: int | None = None
    groups: tuple[Sources, ...] = ()
    group_of: torch.Tensor | None = None
    tau: torch.Tensor | None = None
    opaque: str | None = None

    @property
    def sources(self) -> Sources:
        """Every source of any element (the union over groups)."""
        merged: Sources = {}
        for group in self.groups:
            for s, f in group.items():
                merged[s] = f if s not in merged else _merge(merged[s], f, None)
        return merged


@dataclass
class Node:
    """One module call (or the model input, node 0): its output and the fields of that output over the nodes it
    reads (``edges``), or why they are unknown (``unfollowed``)."""

    index: int
    name: str
    type_name: str
    module: Any  # the torch module (or Keras layer) called; None for the input and the output
    output_shape: tuple[int | None, ...]
    axis: int | None
    edges: Sources = field(default_factory=dict)
    unfollowed: str | None = None
    constant: bool = False  # the output does not depend on the input

    @property
    def length(self) -> int | None:
        """Steps on the output's time axis (``None`` without one)."""
        return None if self.axis is None else self.output_shape[self.axis]


@dataclass
class Graph:
    """The nodes of one forward pass in execution order (``nodes[0]`` the input, ``nodes[-1]`` the output)."""

    nodes: list[Node]
    input_shape: tuple[int, ...]
    _fields: dict[int, Field | str] = field(default_factory=dict)

    @property
    def input_length(self) -> int:
        return self.input_shape[-1]

    @property
    def output(self) -> Node:
        return self.nodes[-1]

    def field(self, index: int) -> Field:
        """The field of node ``index``'s output over the model input's steps; raises :class:`Unfollowed` naming the
        op where the analysis lost track."""
        if index not in self._fields:
            self._fields[index] = self._compose(index)
        found = self._fields[index]
        if isinstance(found, str):
            raise Unfollowed(found)
        return found

    def _compose(self, index: int) -> Field | str:
        node = self.nodes[index]
        if index == 0:
            return IDENTITY
        if node.unfollowed:
            return node.unfollowed
        total: Field | None = None
        for source, edge in node.edges.items():
            try:
                inner = self.field(source)
            except Unfollowed as error:
                return str(error)
            try:
                composed = clip(edge.compose(inner), self.input_length)
                total = composed if total is None else _merge(total, composed, self.input_length)
            except FieldError as error:
                return f"{node.name}: {error}"
        return total if total is not None else Field.constant(EMPTY)


def clip(f: Field, length: int | None) -> Field:
    """An absolute field restricted to real steps ``[0, length)`` (the rest is padding)."""
    if not f.absolute or length is None:
        return f
    return Field(f.period, 0, tuple(p.clip(0, length - 1) for p in f.phases)).canonical()


def _merge(a: Field, b: Field, length: int | None) -> Field:
    """``a | b``; a statistic over the whole source absorbs per-step values (``x + x.mean(-1, keepdim=True)``)."""
    try:
        return a | b
    except FieldError:
        if a.absolute != b.absolute and length is not None:
            whole = a if a.absolute else b
            if all(p.contains_span(0, length - 1) for p in whole.phases):
                return Field.constant(Steps.span(0, length - 1))
        raise


def _union(a: Sources, b: Sources, lengths: dict[int, int | None]) -> Sources:
    out = dict(a)
    for s, f in b.items():
        out[s] = f if s not in out else _merge(out[s], f, lengths.get(s))
    return out


# --- small helpers ---------------------------------------------------------------------------------------------------


def tensors_in(value: Any) -> list[torch.Tensor]:
    """The tensors in a value, nested tuples, lists and dicts included, in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    return []


def _op_name(func: Any) -> str:
    name = getattr(func, "__name__", "") or type(func).__name__
    if name == "__get__":
        owner = getattr(func, "__self__", None)
        return f"{getattr(owner, '__name__', '?')}.__get__"
    return name


def _base(name: str) -> str:
    """``__radd__``/``__iadd__``/``add_`` -> ``add``; ``__getitem__`` -> ``getitem``."""
    if name.startswith("__") and name.endswith("__") and not name.endswith(".__get__"):
        core = name[2:-2]
        if core[:1] in ("r", "i") and core[1:] in _DUNDER:
            core = core[1:]
        return _DUNDER.get(core, core)
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


_DUNDER = {
    "add": "add",
    "sub": "sub",
    "mul": "mul",
    "truediv": "div",
    "floordiv": "floor_divide",
    "mod": "remainder",
    "pow": "pow",
    "matmul": "matmul",
    "and": "logical_and",
    "or": "logical_or",
    "xor": "logical_xor",
    "neg": "neg",
    "abs": "abs",
    "pos": "positive",
    "invert": "logical_not",
    "lt": "lt",
    "le": "le",
    "gt": "gt",
    "ge": "ge",
    "eq": "eq",
    "ne": "ne",
    "getitem": "getitem",
    "setitem": "setitem",
}


def _arg(args: Sequence[Any], kwargs: dict[str, Any], index: int, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _dims(dim: Any, ndim: int) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(d % ndim for d in dims)


def _per_axis(value: Any, n: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, tuple | list) else (int(value),) * n


ELEMENTWISE = frozenset(
    """
add sub subtract rsub mul multiply div divide true_divide floor_divide remainder fmod pow float_power neg negative
positive abs absolute exp exp2 expm1 log log2 log10 log1p sqrt rsqrt square sin cos tan tanh sinh cosh asin acos
atan asinh acosh atanh atan2 arctan2 sigmoid logit erf erfc erfinv reciprocal sign sgn relu relu6 leaky_relu elu
selu celu gelu silu mish softplus softsign hardtanh hardsigmoid hardswish hardshrink softshrink tanhshrink
logsigmoid threshold rrelu prelu clamp clip clamp_min clamp_max maximum minimum fmax fmin lerp addcmul addcdiv
hypot floor ceil round trunc frac eq ne lt le gt ge greater less greater_equal less_equal equal logical_and
logical_or logical_xor logical_not bitwise_and bitwise_or bitwise_xor bitwise_not isnan isinf isfinite nan_to_num
where dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout feature_dropout to type float double
half bfloat16 int long bool contiguous clone detach cpu cuda requires_grad type_as real conj resolve_conj
resolve_neg copysign xlogy square_ sinc deg2rad rad2deg angle heaviside
""".split()
)
MOVES = frozenset(
    """
view view_as reshape reshape_as permute transpose t swapaxes swapdims movedim moveaxis squeeze unsqueeze flatten
unflatten expand expand_as broadcast_to getitem narrow select chunk split tensor_split split_with_sizes unbind cat
concat concatenate stack hstack vstack dstack column_stack pad repeat tile repeat_interleave roll flip fliplr flipud
rot90 index_select gather take_along_dim diagonal tril triu unfold masked_fill interpolate upsample
upsample_nearest pixel_shuffle pixel_unshuffle channel_shuffle narrow_copy select_scatter slice_scatter
T.__get__ mT.__get__ data.__get__
""".split()
)
REDUCTIONS = frozenset(
    """
sum mean nansum nanmean prod amax amin max min argmax argmin std var std_mean var_mean logsumexp norm all any
median nanmedian count_nonzero aminmax
""".split()
)
NORMALISE_OVER_DIM = frozenset("softmax log_softmax softmin normalize".split())
PREFIX = frozenset("cumsum cumprod cummax cummin logcumsumexp".split())
CONSTANT = frozenset(
    """
zeros_like ones_like full_like empty_like rand_like randn_like randint_like new_zeros new_ones new_full new_empty
new_tensor
""".split()
)
CONVS = {"conv1d": 1, "conv2d": 2, "conv3d": 3}
TRANSPOSED = {"conv_transpose1d": 1, "conv_transpose2d": 2, "conv_transpose3d": 3}
POOLS = {
    "max_pool1d": 1,
    "max_pool2d": 2,
    "max_pool3d": 3,
    "avg_pool1d": 1,
    "avg_pool2d": 2,
    "avg_pool3d": 3,
    "max_pool1d_with_indices": 1,
    "max_pool2d_with_indices": 2,
    "lp_pool1d": 1,
    "lp_pool2d": 2,
}
ADAPTIVE = {
    "adaptive_avg_pool1d": 1,
    "adaptive_max_pool1d": 1,
    "adaptive_avg_pool2d": 2,
    "adaptive_max_pool2d": 2,
    "adaptive_max_pool1d_with_indices": 1,
    "adaptive_max_pool2d_with_indices": 2,
}


# --- the tracer -------------------------------------------------------------------------------------------------------


class _Tracer(TorchFunctionMode):
    """Follows one forward pass; see the module docstring."""

    def __init__(self, rows: dict[nn.Module, str]) -> None:
        super().__init__()
        self.rows = rows
        self.values: dict[int, _Value] = {}
        self.keep: list[torch.Tensor] = []  # keeps traced tensors alive so that their ids stay unique
        self.nodes: list[Node] = []
        self.lengths: dict[int, int | None] = {}
        self.stack: list[str] = []
        self.atomic: tuple[nn.Module, tuple, dict] | None = None
        self.depth = 0  # modules entered inside the atomic one
        self.calls: dict[int, int] = {}

    # -- values ---------------------------------------------------------------------------------------------------
    def value(self, t: Any) -> _Value | None:
        if isinstance(t, torch.Tensor):
            v = self.values.get(id(t))
            if v is not None and v.tensor is t:
                return v
        return None

    def register(self, v: _Value) -> None:
        self.values[id(v.tensor)] = v
        self.keep.append(v.tensor)

    def compact(
        self, t: torch.Tensor, axis: int | None, groups: Sequence[Sources], group_of: torch.Tensor | None = None
    ) -> None:
        """Register ``t``; groups that see nothing are dropped, equal ones merged."""
        self.register(_make_compact(t, axis, groups, group_of))

    def where(self) -> str:
        return f" (in {self.stack[-1]})" if self.stack and self.stack[-1] else ""

    def add_node(self, name: str, module: nn.Module | None, out: Any) -> None:
        """A new source: ``out``'s current fields become the node's edges, and ``out`` now sees the node."""
        tensors = tensors_in(out)
        index = len(self.nodes)
        first = tensors[0] if tensors else None
        v = self.value(first)
        shape = (None, *first.shape[1:]) if first is not None else ()
        type_name = type(module).__name__ if module is not None else "output"
        if v is None:
            self.nodes.append(Node(index, name, type_name, module, shape, None, constant=True))
            return
        if v.opaque:
            self.nodes.append(Node(index, name, type_name, module, shape, None, unfollowed=v.opaque))
            self.lengths[index] = None
            self.register(_Value(first, axis=None, groups=({index: Field.constant(SELF)},)))  # later ops: relative
            self.nodes[-1].unfollowed = v.opaque
            return
        if v.tau is not None or len(v.groups) > 1:
            # per-element fields (a merged time axis, channels of different paths): the node is shown with the
            # union, and the tensor keeps its own fields (it is not made a new source, so nothing is lost)
            axis = v.axis if v.tau is None else None
            edges = (
                v.sources
                if v.tau is None
                else {s: Field.constant(_everything(f, v, self.lengths.get(s))) for s, f in v.sources.items()}
            )
            self.nodes.append(Node(index, name, type_name, module, shape, axis, edges))
            self.lengths[index] = None
            return
        node = Node(index, name, type_name, module, shape, v.axis, dict(v.groups[0]))
        self.nodes.append(node)
        self.lengths[index] = node.length
        fresh = IDENTITY if v.axis is not None else Field.constant(SELF)
        self.register(_Value(first, axis=v.axis, groups=({index: fresh},), group_of=v.group_of))

    # -- torch functions --------------------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.atomic is not None:
            return out
        inputs = [v for v in map(self.value, tensors_in(args) + tensors_in(kwargs)) if v is not None]
        if not inputs:
            return out
        name = _op_name(func)
        base = _base(name)
        if base in CONSTANT:
            return out
        outputs = tensors_in(out)
        if not outputs and base != "setitem":
            return out  # a size, a dtype, a Python number
        opaque = next((v.opaque for v in inputs if v.opaque), None)
        try:
            if opaque:
                raise Unfollowed(opaque)
            self.follow(base, func, args, kwargs, out)
        except (Unfollowed, FieldError) as error:
            reason = str(error) if opaque else f"{name}: {error}{self.where()}"
            targets = outputs if base != "setitem" else tensors_in(args[:1])
            for t in targets:
                self.register(_Value(t, opaque=reason))
        return out

    def follow(self, base: str, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        if base == "mul" and self._masking_mul(func, args, kwargs, out):
            return
        if base in ("add", "sub") and self._masking_add(func, args, kwargs, out):
            return
        if base == "where" and self.value(args[0]) is None and len(args) == 3:
            cond = _values(args[0])
            self.move(lambda a, b: torch.where(cond, a, b), [args[1], args[2]], out)
            return
        if base == "masked_fill" and self.value(_arg(args, kwargs, 1, "mask")) is not None:
            self.elementwise(args, kwargs, out)
            return
        if base in ELEMENTWISE:
            self.elementwise(args, kwargs, out)
        elif base in MOVES or base == "setitem":
            self.data_move(base, func, args, kwargs, out)
        elif base in REDUCTIONS:
            self.reduction(base, args, kwargs, out)
        elif base in NORMALISE_OVER_DIM:
            default = 1 if base == "normalize" else None
            dim = _arg(args, kwargs, 2 if base == "normalize" else 1, "dim", default)
            self.mixing(args[0], _dims(dim, args[0].dim()) if dim is not None else (args[0].dim() - 1,), out)
        elif base in ("layer_norm", "rms_norm"):
            shape = _arg(args, kwargs, 1, "normalized_shape")
            n = len(shape) if isinstance(shape, tuple | list | torch.Size) else 1
            self.mixing(args[0], tuple(range(args[0].dim() - n, args[0].dim())), out)
        elif base in ("group_norm", "instance_norm"):
            first = 1 if base == "group_norm" else 2
            self.mixing(args[0], tuple(range(first, args[0].dim())), out)
        elif base == "batch_norm":
            running = _arg(args, kwargs, 1, "running_mean") is not None
            training = _arg(args, kwargs, 5, "training", False)
            x = args[0]
            dims = (0, *range(2, x.dim())) if training or not running else ()
            self.mixing(x, dims, out)
        elif base == "local_response_norm":
            self.mixing(args[0], (1,), out)
        elif base in PREFIX:
            self.prefix(args[0], _arg(args, kwargs, 1, "dim"), out)
        elif base == "linear":
            self.linear(args, kwargs, out)
        elif base in ("matmul", "mm", "bmm", "baddbmm", "addmm", "addbmm", "mv", "dot", "inner"):
            self.matmul(base, args, kwargs, out)
        elif base == "einsum":
            self.einsum(args, out)
        elif base in CONVS:
            self.conv(CONVS[base], args, kwargs, out)
        elif base in TRANSPOSED:
            self.conv_transpose(TRANSPOSED[base], args, kwargs, out)
        elif base in POOLS:
            self.pool(base, POOLS[base], args, kwargs, out)
        elif base in ADAPTIVE:
            self.adaptive_pool(ADAPTIVE[base], args, kwargs, out)
        elif base == "scaled_dot_product_attention":
            self.sdpa(args, kwargs, out)
        elif base in ("embedding", "one_hot"):
            self.append_dim(args[0], out)
        else:
            raise Unfollowed("not an op the receptive-field analysis follows")

    # -- elementwise --------------------------------------------------------------------------------------------------
    def elementwise(self, args: tuple, kwargs: dict, out: Any) -> None:
        result = tensors_in(out)[0]
        traced = [v for v in map(self.value, tensors_in(args) + tensors_in(kwargs)) if v is not None]
        if any(v.tau is not None for v in traced):
            if len(traced) > 1:
                raise Unfollowed("an elementwise op on two tensors whose time axis is merged with another axis")
            v = traced[0]
            self.register(
                _Value(
                    result,
                    groups=v.groups,
                    group_of=_broadcast(v.group_of, result.shape),
                    tau=v.tau.broadcast_to(result.shape) if v.tau.shape != result.shape else v.tau,
                )
            )
            return
        axis, parts = None, []
        for v in traced:
            a, groups = self.aligned(v, result)
            if a is not None:
                if axis is not None and a != axis:
                    raise Unfollowed("an elementwise op between tensors with the time axis on different axes")
                axis = a
            parts.append((groups, _broadcast(v.group_of, result.shape, v.tensor.dim())))
        self.compact(result, axis, *self.combine(parts, result.shape))
        for extra in tensors_in(out)[1:]:  # e.g. the indices of max(a, dim): same fields
            self.compact(extra, axis, *self.combine(parts, result.shape))

    def aligned(self, v: _Value, out: torch.Tensor) -> tuple[int | None, tuple[Sources, ...]]:
        """``v``'s time axis in ``out`` after broadcasting; a broadcast single step becomes absolute."""
        if v.axis is None:
            return None, v.groups
        axis = v.axis + out.dim() - v.tensor.dim()
        if v.tensor.shape[v.axis] == 1 and out.shape[axis] != 1:
            return None, tuple({s: Field.constant(f.at(0)) for s, f in g.items()} for g in v.groups)
        return axis, v.groups

    def combine(
        self, parts: list[tuple[tuple[Sources, ...], torch.Tensor | None]], shape: torch.Size
    ) -> tuple[list[Sources], torch.Tensor | None]:
        """Groups of an elementwise op: one per combination of its operands' groups."""
        if all(g is None for _, g in parts):
            merged: Sources = {}
            for groups, _ in parts:
                for group in groups:
                    merged = _union(merged, group, self.lengths)
            return [merged], None
        ids = [g if g is not None else torch.zeros((1,) * len(shape), dtype=torch.int64) for _, g in parts]
        ids = torch.broadcast_tensors(*ids)
        key = torch.zeros_like(ids[0])
        for g in ids:
            key = key * (MAX_GROUPS + 1) + (g + 1)
        combos, group_of = torch.unique(key, return_inverse=True)
        groups = []
        for combo in combos.tolist():
            merged, digits = {}, []
            for _ in parts:
                digits.append(combo % (MAX_GROUPS + 1) - 1)
                combo //= MAX_GROUPS + 1
            for (operand, _), g in zip(parts, reversed(digits)):
                if g >= 0:
                    merged = _union(merged, operand[g], self.lengths)
            groups.append(merged)
        return groups, group_of.reshape(key.shape)

    def _masking_mul(self, func: Any, args: tuple, kwargs: dict, out: Any) -> bool:
        """``x * c`` with a constant ``c``: elements where ``c == 0`` see nothing."""
        a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other")
        traced, const = (a, b) if self.value(a) is not None else (b, a)
        if self.value(const) is not None or not isinstance(const, torch.Tensor | int | float):
            return False
        keep = _values(torch.as_tensor(const)) != 0
        if bool(keep.all()):
            return False
        self.move(lambda codes: codes * keep, [traced], out)
        return True

    def _masking_add(self, func: Any, args: tuple, kwargs: dict, out: Any) -> bool:
        """``x + c`` with a constant ``c`` holding infinities (an attention mask): those elements see nothing."""
        a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other")
        traced, const = (a, b) if self.value(a) is not None else (b, a)
        if self.value(const) is not None or not isinstance(const, torch.Tensor) or not const.is_floating_point():
            return False
        keep = torch.isfinite(_values(const))
        if bool(keep.all()):
            return False
        self.move(lambda codes: codes * keep, [traced], out)
        return True

    # -- data movement ------------------------------------------------------------------------------------------------
    def data_move(self, base: str, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        if base == "interpolate":
            mode = _arg(args, kwargs, 3, "mode", "nearest")
            if mode not in ("nearest", "nearest-exact"):
                raise Unfollowed(f"interpolation mode {mode!r} (nearest is followed)")
        data = args[0] if args else kwargs.get("input", kwargs.get("tensors"))
        rest = list(args[1:])
        if base == "setitem":
            index, item = args[1], args[2]
            if any(self.value(t) is not None for t in tensors_in(index)):
                raise Unfollowed("indexing with a tensor computed from the input")
            inputs = [args[0]] + ([item] if self.value(item) is not None else [])

            def assign(target: torch.Tensor, *value: torch.Tensor) -> torch.Tensor:
                codes = target.clone()
                codes[index] = value[0] if value else 0.0
                return codes

            self.move(assign, inputs, args[0])
            return
        if any(
            self.value(t) is not None
            for t in tensors_in(rest) + tensors_in({k: v for k, v in kwargs.items() if k not in ("input", "tensors")})
        ):
            raise Unfollowed("an index or shape computed from the input")
        if base == "pad":
            mode = _arg(args, kwargs, 2, "mode", "constant")
            pad = _arg(args, kwargs, 1, "pad")

            v = self.value(data)
            if mode == "constant" and v.tau is None and v.group_of is None and v.axis is not None:
                pairs = [tuple(pad[i : i + 2]) for i in range(0, len(pad), 2)]  # from the last axis backwards
                back = data.dim() - 1 - v.axis
                left = pairs[back][0] if back < len(pairs) else 0
                result = tensors_in(out)[0]
                groups = tuple({s: f.gather(1, 1, [Steps.of([-left])]) for s, f in g.items()} for g in v.groups)
                self.register(_Value(result, axis=v.axis, groups=groups))  # padded channels carry no source
                return

            def padded(codes: torch.Tensor) -> torch.Tensor:
                return F.pad(codes, pad, mode, 0.0) if mode == "constant" else F.pad(codes, pad, mode)

            self.move(padded, [data], out)
            return
        if base == "masked_fill":
            mask = _values(_arg(args, kwargs, 1, "mask"))
            self.move(lambda codes: codes.masked_fill(mask, 0.0), [data], out)
            return
        if self.fast_move(base, args, kwargs, out):
            return
        listed = isinstance(data, tuple | list)
        inputs = list(data) if listed else [data]

        def moved(*codes: torch.Tensor) -> Any:
            if base.endswith(".__get__"):
                return getattr(codes[0], base.split(".")[0])
            first = list(codes) if listed else codes[0]
            if args:
                return func(first, *args[1:], **kwargs)
            key = "tensors" if "tensors" in kwargs else "input"
            return func(**{**kwargs, key: first})

        self.move(moved, inputs, out)

    def fast_move(self, base: str, args: tuple, kwargs: dict, out: Any) -> bool:
        """The common moves of one plain tensor, without element codes: splitting or relabelling the axes
        around the time axis. Returns whether it applied."""
        x = args[0] if args else None
        v = self.value(x)
        if v is None or v.tau is not None or v.group_of is not None or v.axis is None:
            return False
        results = tensors_in(out)
        if base in ("chunk", "split", "tensor_split", "split_with_sizes", "narrow", "unbind"):
            dim = (
                _arg(args, kwargs, 2 if base in ("chunk", "split", "split_with_sizes", "tensor_split") else 1, "dim", 0)
                % x.dim()
            )
            if dim == v.axis:
                return False
            axis = v.axis - (1 if base == "unbind" and dim < v.axis else 0)
        elif base in ("transpose", "swapaxes", "swapdims"):
            a, b = (int(d) % x.dim() for d in args[1:3])
            axis = b if v.axis == a else a if v.axis == b else v.axis
        elif base == "permute":
            dims = args[1:] if len(args) > 2 or isinstance(args[1], int) else args[1]
            axis = [int(d) % x.dim() for d in dims].index(v.axis)
        elif base == "unsqueeze":
            dim = int(_arg(args, kwargs, 1, "dim")) % (x.dim() + 1)
            axis = v.axis + (dim <= v.axis)
        elif base in ("T.__get__", "t"):
            axis = x.dim() - 1 - v.axis
        else:
            return False
        for result in results:
            if result.shape[axis] != x.shape[v.axis]:
                return False
        for result in results:
            self.register(_Value(result, axis=axis, groups=v.groups))
        return True

    def move(self, fn: Callable[..., Any], inputs: list[Any], out: Any) -> None:
        """Run ``fn`` on element codes of ``inputs`` (tensors; untraced ones carry no source) and register what
        every output element comes from."""
        values = [self.value(t) for t in inputs]
        codes = [
            _codes(v, k) if v is not None else torch.zeros(t.shape, dtype=torch.float64)
            for k, (v, t) in enumerate(zip(values, inputs))
        ]
        with torch.no_grad():
            moved = tensors_in(fn(*codes))
        results = tensors_in(out)
        if len(moved) != len(results) or any(m.shape != r.shape for m, r in zip(moved, results)):
            raise Unfollowed("the op does not give the same shapes on element codes")
        for real, code in zip(results, moved):
            self.register(self.decode(real, code, values))

    def decode(self, real: torch.Tensor, codes: torch.Tensor, values: list[_Value | None]) -> _Value:
        """What ``real``'s elements see, from the codes a move produced for them."""
        valid = codes > 0
        flat = torch.where(valid, codes - 1, torch.zeros_like(codes))
        source = torch.floor(flat / BIG)
        tau = (flat - source * BIG).to(torch.int64)
        source = source.to(torch.int64)
        present = torch.unique(source[valid]).tolist()
        if not present:
            return _Value(real, axis=None, groups=({},))  # every element is a constant (padding)
        ndim = real.dim()
        parts: list[tuple[int | None, Sources, torch.Tensor]] = []
        mixed = False
        for code in present:
            v = values[code // MAX_GROUPS]
            sources = v.groups[code % MAX_GROUPS]
            mask = valid & (source == code)
            if v.axis is None and v.tau is None:
                parts.append((None, sources, mask))
                continue
            taus = tau[mask]
            lo, hi = int(taus.min()), int(taus.max())
            if lo == hi:  # one step of the source: absolute
                parts.append(
                    (None, {s: clip(Field.constant(f.at(lo)), self.lengths.get(s)) for s, f in sources.items()}, mask)
                )
                continue
            found = _time_axis(tau, mask, ndim)
            if found is None:
                mixed = True
                break
            axis, (period, step, offsets) = found
            parts.append((axis, {s: f.gather(period, step, offsets) for s, f in sources.items()}, mask))
        if not mixed:
            axes = {a for a, _, _ in parts if a is not None}
            if len(axes) <= 1:
                axis = axes.pop() if axes else None
                group_of = torch.full(real.shape, -1, dtype=torch.int64)
                for i, (_, _, mask) in enumerate(parts):
                    group_of[mask] = i
                return _make_compact(real, axis, [s for _, s, _ in parts], group_of, fill_axis=axis)
        # the time axis merged with another one (a flatten): keep every element's own time index
        groups, group_of = [], torch.full(real.shape, -1, dtype=torch.int64)
        for i, code in enumerate(present):
            v = values[code // MAX_GROUPS]
            if v.axis is None and v.tau is None:
                raise Unfollowed("a reshape merging the time axis with a tensor without one")
            groups.append(v.groups[code % MAX_GROUPS])
            group_of[valid & (source == code)] = i
        return _Value(real, groups=tuple(groups), group_of=group_of, tau=torch.where(valid, tau, -1))

    # -- reductions and mixing ---------------------------------------------------------------------------------------
    def reduction(self, base: str, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0]
        dim = _arg(args, kwargs, 2 if base == "norm" else 1, "dim")
        if base in ("max", "min") and isinstance(dim, torch.Tensor):  # max(a, b): elementwise
            self.elementwise(args, kwargs, out)
            return
        dims = _dims(None if isinstance(dim, bool) else dim, x.dim())
        for result in tensors_in(out):  # keepdim shows in the result's rank
            self.contract(x, dims, result, result.dim() == x.dim() and bool(dims))

    def contract(
        self,
        x: torch.Tensor,
        dims: tuple[int, ...],
        result: torch.Tensor,
        keepdim: bool,
        mixes: tuple[int, ...] | None = None,
    ) -> None:
        """``result`` combines the elements of ``x`` along ``dims`` (removed unless ``keepdim``)."""
        v = self.value(x)
        groups, group_of = _reduce_groups(v, dims, keepdim)
        if v.tau is not None:
            groups = self.everything(v, dims)
            self.compact(result, None, groups, None)
            return
        if v.axis is not None and v.axis in dims:
            groups = [
                {s: clip(Field.constant(f.union_of(x.shape[v.axis])), self.lengths.get(s)) for s, f in g.items()}
                for g in groups
            ]
            axis = v.axis if keepdim else None
            if axis is not None and result.shape[axis] != x.shape[axis]:
                axis = None
        elif v.axis is not None:
            axis = v.axis if keepdim else v.axis - sum(d < v.axis for d in dims)
        else:
            axis = None
        if group_of is not None and group_of.dim() != result.dim():
            group_of = None if len(groups) == 1 else group_of
            if group_of is not None:
                raise Unfollowed("a reduction over part of a tensor whose elements come from different paths")
        self.compact(result, axis, groups, group_of)

    def everything(self, v: _Value, dims: tuple[int, ...]) -> list[Sources]:
        """For a value with a merged time axis: reducing over ``dims`` must cover the same steps everywhere."""
        tau = v.tau
        keep = [d for d in range(tau.dim()) if d not in dims]
        rows = tau.permute(*keep, *dims).reshape(int(np.prod([tau.shape[d] for d in keep])) if keep else 1, -1)
        first = torch.sort(rows[0]).values
        if not all(torch.equal(torch.sort(r).values, first) for r in rows[1:]):
            raise Unfollowed("a reduction over a reshaped time axis that covers different steps for different outputs")
        merged: Sources = {}
        for s, f in v.sources.items():
            merged = _union(merged, {s: Field.constant(_everything(f, v, self.lengths.get(s)))}, self.lengths)
        return [merged]

    def mixing(self, x: torch.Tensor, dims: tuple[int, ...], out: Any) -> None:
        """Shape-keeping ops that mix ``dims`` (softmax, normalisations)."""
        result = tensors_in(out)[0]
        if not dims:
            self.elementwise((x,), {}, out)
            return
        self.contract(x, dims, result, True)
        for extra in tensors_in(out)[1:]:
            self.register(_Value(extra, **{k: getattr(self.value(result), k) for k in ("axis", "groups")}))

    def prefix(self, x: torch.Tensor, dim: int, out: Any) -> None:
        """``cumsum`` and the like: along time, step ``t`` sees every step up to ``t``."""
        v = self.value(x)
        dim = dim % x.dim()
        if v.tau is not None:
            raise Unfollowed("a cumulative op over a reshaped time axis")
        if v.axis != dim:
            self.elementwise((x,), {}, out)
            return
        groups = [{s: Field(1, 1, (f.prefix(0),)) for s, f in g.items()} for g in v.groups]
        for result in tensors_in(out):
            self.compact(result, v.axis, groups, v.group_of)

    def append_dim(self, x: torch.Tensor, out: Any) -> None:
        """``embedding``/``one_hot``: one new trailing axis per element."""
        v = self.value(x)
        result = tensors_in(out)[0]
        if v.tau is not None:
            raise Unfollowed("an embedding of a reshaped time axis")
        group_of = v.group_of.unsqueeze(-1) if v.group_of is not None else None
        self.compact(result, v.axis, v.groups, group_of)

    # -- linear maps --------------------------------------------------------------------------------------------------
    def linear(self, args: tuple, kwargs: dict, out: Any) -> None:
        x, weight = args[0], _arg(args, kwargs, 1, "weight")
        if self.value(weight) is not None or self.value(_arg(args, kwargs, 2, "bias")) is not None:
            raise Unfollowed("a weight computed from the input")
        self.contract(x, (x.dim() - 1,), tensors_in(out)[0], True)
        self._last_replaced(tensors_in(out)[0])

    def _last_replaced(self, result: torch.Tensor) -> None:
        """The last axis of ``result`` holds new features: it is no time axis."""
        v = self.value(result)
        if v.axis == result.dim() - 1:
            v.axis = None

    def matmul(self, base: str, args: tuple, kwargs: dict, out: Any) -> None:
        if base in ("baddbmm", "addmm", "addbmm"):
            bias, a, b = args[0], args[1], args[2]
        else:
            bias, a, b = None, args[0], args[1]
        result = tensors_in(out)[0]
        va, vb = self.value(a), self.value(b)
        if va is not None and vb is not None:
            raise Unfollowed(
                "a product of two tensors that both depend on the input (attention written by hand: "
                "use F.scaled_dot_product_attention or nn.MultiheadAttention)"
            )
        if a.dim() < 2 or b.dim() < 2 or result.dim() < 2:
            raise Unfollowed("a vector product")
        if a.dim() != result.dim() or b.dim() != result.dim():
            raise Unfollowed("a product broadcasting a batch axis")
        if va is not None:  # (..., n, k) @ const: k is contracted, n stays on axis -2
            self.contract(a, (a.dim() - 1,), result, True)
            self._last_replaced(result)
        else:  # const @ (..., k, m): k (-2) is contracted, m stays last
            moved = b.transpose(-1, -2)
            self.register(_transposed(vb, moved))
            self.contract(moved, (b.dim() - 1,), result, True)
            v = self.value(result)
            if v.axis == result.dim() - 2:
                v.axis = result.dim() - 1
            if v.group_of is not None:
                v.group_of = v.group_of.expand(*v.group_of.shape[:-1], 1).transpose(-1, -2)
            v.group_of = None if len(v.groups) == 1 else v.group_of
        if bias is not None and self.value(bias) is not None:
            raise Unfollowed("a matrix product whose added term depends on the input")

    def einsum(self, args: tuple, out: Any) -> None:
        equation = args[0].replace(" ", "")
        operands = list(args[1]) if len(args) == 2 and isinstance(args[1], tuple | list) else list(args[1:])
        if "..." in equation or "->" not in equation:
            raise Unfollowed("an einsum with '...' or without '->'")
        inputs, output = equation.split("->")
        result = tensors_in(out)[0]
        axis, merged = None, {}
        for letters, operand in zip(inputs.split(","), operands):
            v = self.value(operand)
            if v is None:
                continue
            if v.tau is not None or len(v.groups) > 1:
                raise Unfollowed("an einsum over elements from different paths")
            sources = v.groups[0]
            if v.axis is not None:
                letter = letters[v.axis]
                if letter in output:
                    if axis is not None and output.index(letter) != axis:
                        raise Unfollowed("an einsum between two time axes")
                    axis = output.index(letter)
                else:
                    sources = {
                        s: clip(Field.constant(f.union_of(operand.shape[v.axis])), self.lengths.get(s))
                        for s, f in sources.items()
                    }
            merged = _union(merged, sources, self.lengths)
        self.compact(result, axis, [merged])

    # -- convolutions and pooling -------------------------------------------------------------------------------------
    def _spatial(self, x: torch.Tensor, n: int) -> tuple[_Value, int | None, int]:
        """The input's value, which spatial axis (0..n-1) is time (``None``: channels or batch), and the offset
        of the first spatial axis."""
        v = self.value(x)
        if v.tau is not None:
            raise Unfollowed("a conv over a reshaped time axis")
        first = x.dim() - n
        if v.axis is None or v.axis < first:
            return v, None, first
        return v, v.axis - first, first

    def conv(self, n: int, args: tuple, kwargs: dict, out: Any) -> None:
        x, weight = args[0], _arg(args, kwargs, 1, "weight")
        if self.value(weight) is not None or self.value(_arg(args, kwargs, 2, "bias")) is not None:
            raise Unfollowed("a conv weight computed from the input")
        result = tensors_in(out)[0]
        v, spatial, first = self._spatial(x, n)
        stride = _per_axis(_arg(args, kwargs, 3, "stride", 1), n)
        padding = _arg(args, kwargs, 4, "padding", 0)
        dilation = _per_axis(_arg(args, kwargs, 5, "dilation", 1), n)
        groups_arg = int(_arg(args, kwargs, 6, "groups", 1))
        kernel = tuple(weight.shape[2:])
        if len(v.groups) > 1 and groups_arg != 1:
            raise Unfollowed("a grouped conv over channels that come from different paths")
        sources = self.channel_union(v, first - 1)
        if spatial is None:
            self.across_channels(v, first - 1, sources, result)
            return
        k, s, d = kernel[spatial], stride[spatial], dilation[spatial]
        if isinstance(padding, str):
            left = 0 if padding == "valid" else d * (k - 1) // 2
        else:
            left = _per_axis(padding, n)[spatial]
        taps = Steps.of(i * d - left for i in range(k))
        self.compact(result, v.axis, [{src: f.gather(1, s, [taps]) for src, f in sources.items()}])

    def across_channels(self, v: _Value, channel: int, sources: Sources, result: torch.Tensor) -> None:
        """A conv whose input has no time axis among its spatial ones: channels as time are all mixed, a batch
        axis as time is kept."""
        if v.axis is not None and v.axis == channel:
            sources = {
                s: clip(Field.constant(f.union_of(v.tensor.shape[channel])), self.lengths.get(s))
                for s, f in sources.items()
            }
            self.compact(result, None, [sources])
        else:
            self.compact(result, v.axis, [sources])

    def channel_union(self, v: _Value, channel: int) -> Sources:
        """All groups of a tensor whose channels a conv mixes (groups may differ along channels only)."""
        if v.group_of is not None:
            varying = [d for d in range(v.group_of.dim()) if v.group_of.shape[d] > 1 and d != channel]
            if varying and len(v.groups) > 1:
                raise Unfollowed("a conv over a tensor whose steps come from different paths")
        merged: Sources = {}
        for g in v.groups:
            merged = _union(merged, g, self.lengths)
        return merged

    def conv_transpose(self, n: int, args: tuple, kwargs: dict, out: Any) -> None:
        x, weight = args[0], _arg(args, kwargs, 1, "weight")
        if self.value(weight) is not None:
            raise Unfollowed("a conv weight computed from the input")
        result = tensors_in(out)[0]
        v, spatial, first = self._spatial(x, n)
        if len(v.groups) > 1 and int(_arg(args, kwargs, 6, "groups", 1)) != 1:
            raise Unfollowed("a grouped conv over channels that come from different paths")
        sources = self.channel_union(v, first - 1)
        if spatial is None:
            self.across_channels(v, first - 1, sources, result)
            return
        stride = _per_axis(_arg(args, kwargs, 3, "stride", 1), n)[spatial]
        padding = _per_axis(_arg(args, kwargs, 4, "padding", 0), n)[spatial]
        dilation = _per_axis(_arg(args, kwargs, 7, "dilation", 1), n)[spatial]
        k = weight.shape[2 + spatial]
        # output o = i * stride - padding + j * dilation: phase r of o = q * stride + r reads i = q + (r + p - j d) / s
        offsets = [
            Steps.of(
                (r + padding - j * dilation) // stride for j in range(k) if (r + padding - j * dilation) % stride == 0
            )
            for r in range(stride)
        ]
        self.compact(result, v.axis, [{src: f.gather(stride, 1, offsets) for src, f in sources.items()}])

    def pool(self, base: str, n: int, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0]
        v, spatial, first = self._spatial(x, n)
        if base.startswith("lp_pool"):
            kernel = _per_axis(_arg(args, kwargs, 2, "kernel_size"), n)
            stride = _arg(args, kwargs, 3, "stride")
            padding, dilation = (0,) * n, (1,) * n
        else:
            kernel = _per_axis(_arg(args, kwargs, 1, "kernel_size"), n)
            stride = _arg(args, kwargs, 2, "stride")
            padding = _per_axis(_arg(args, kwargs, 3, "padding", 0), n)
            dilation = _per_axis(_arg(args, kwargs, 4, "dilation", 1), n) if base.startswith("max") else (1,) * n
        stride = kernel if stride is None or (isinstance(stride, tuple | list) and not stride) else _per_axis(stride, n)
        results = tensors_in(out)
        if spatial is None:
            for result in results:
                self.compact(result, v.axis, v.groups, v.group_of)
            return
        k, s, d, p = kernel[spatial], stride[spatial], dilation[spatial], padding[spatial]
        taps = Steps.of(i * d - p for i in range(k))
        groups = [{src: f.gather(1, s, [taps]) for src, f in g.items()} for g in v.groups]
        group_of = _drop_time(v)
        for result in results:
            self.compact(result, v.axis, groups, group_of)

    def adaptive_pool(self, n: int, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0]
        v, spatial, first = self._spatial(x, n)
        results = tensors_in(out)
        if spatial is None:
            for result in results:
                self.compact(result, v.axis, v.groups, v.group_of)
            return
        length, size = x.shape[v.axis], results[0].shape[v.axis]
        if size == 1:
            for result in results:
                self.contract(x, (v.axis,), result, True)
            return
        if length % size:
            raise Unfollowed(f"adaptive pooling from {length} to {size} steps (windows of unequal width)")
        k = length // size
        groups = [{src: f.gather(1, k, [Steps.span(0, k - 1)]) for src, f in g.items()} for g in v.groups]
        for result in results:
            self.compact(result, v.axis, groups, _drop_time(v))

    # -- attention ----------------------------------------------------------------------------------------------------
    def sdpa(self, args: tuple, kwargs: dict, out: Any) -> None:
        q, k, val = args[0], args[1], args[2]
        mask = _arg(args, kwargs, 3, "attn_mask")
        causal = bool(_arg(args, kwargs, 5, "is_causal", False))
        if self.value(mask) is not None:
            raise Unfollowed("an attention mask computed from the input")
        allowed = _allowed(mask, q.shape[-2], k.shape[-2], causal, true_attends=True)
        self.attend(q, [k, val], q.dim() - 2, [k.dim() - 2, val.dim() - 2], allowed, tensors_in(out)[0])

    def attend(
        self,
        query: torch.Tensor,
        keys: list[torch.Tensor],
        q_axis: int,
        k_axes: list[int],
        allowed: np.ndarray,
        result: torch.Tensor,
        out_axis: int | None = None,
    ) -> None:
        """Step ``i`` of ``result`` sees query step ``i`` and the key/value steps ``j`` with ``allowed[i, j]``."""
        rows = attention_rows(allowed)
        merged: Sources = {}
        for t, axis in zip(keys, k_axes):
            v = self.value(t)
            if v is None:
                continue
            if v.tau is not None:
                raise Unfollowed("attention over a reshaped time axis")
            sources = self.channel_union(v, t.dim() - 1)
            if v.axis is not None and v.axis != axis:
                raise Unfollowed("attention whose keys carry time on another axis than the sequence axis")
            if v.axis is not None:
                sources = {s: clip(read_keys(f, rows, t.shape[axis]), self.lengths.get(s)) for s, f in sources.items()}
            merged = _union(merged, sources, self.lengths)
        vq = self.value(query)
        axis = q_axis if out_axis is None else out_axis
        if vq is not None:
            if vq.tau is not None or (vq.axis is not None and vq.axis != q_axis):
                raise Unfollowed("attention whose queries carry time on another axis than the sequence axis")
            merged = _union(merged, self.channel_union(vq, query.dim() - 1), self.lengths)
            if vq.axis is None and all(f.absolute for f in merged.values()):
                axis = None  # nothing moves with the query position
        self.compact(result, axis, [merged])

    # -- modules taken whole -----------------------------------------------------------------------------------------
    def atomic_module(self, module: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        inputs = [v for v in map(self.value, tensors_in(args) + tensors_in(kwargs)) if v is not None]
        if not inputs:
            return
        where = f"{type(module).__name__}{self.where()}"
        opaque = next((v.opaque for v in inputs if v.opaque), None)
        try:
            if opaque:
                raise Unfollowed(opaque)
            if isinstance(module, nn.RNNBase):
                self.rnn(module, args, kwargs, out)
            else:
                self.multihead(module, args, kwargs, out)
        except (Unfollowed, FieldError) as error:
            for t in tensors_in(out):
                self.register(_Value(t, opaque=str(error) if opaque else f"{where}: {error}"))

    def rnn(self, module: nn.RNNBase, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0]
        if not isinstance(x, torch.Tensor):
            raise Unfollowed("a packed sequence")
        if any(self.value(t) is not None for t in tensors_in(args[1:]) + tensors_in(kwargs)):
            raise Unfollowed("an initial state computed from the input")
        v = self.value(x)
        seq = 0 if x.dim() == 2 or not module.batch_first else 1
        if v.tau is not None:
            raise Unfollowed("an RNN over a reshaped time axis")
        features = self.channel_union(v, x.dim() - 1)  # every step mixes all its features
        output, states = out[0], tensors_in(out[1:])
        length = x.shape[v.axis] if v.axis is not None else 1
        whole = {s: clip(Field.constant(f.union_of(length)), self.lengths.get(s)) for s, f in features.items()}
        if v.axis is None or v.axis != seq:
            if v.axis is not None and v.axis != x.dim() - 1:
                raise Unfollowed("an RNN whose input carries time on the batch axis")
            self.compact(output, None, [whole])  # time is not the sequence axis: every output sees all of it
        elif module.bidirectional:
            self.compact(output, seq, [whole])
        else:
            self.compact(
                output, seq, [{s: Field(1, 1, (f.prefix(0),)) if not f.absolute else f for s, f in features.items()}]
            )
        for state in states:
            self.compact(state, None, [whole])

    def multihead(self, module: nn.MultiheadAttention, args: tuple, kwargs: dict, out: Any) -> None:
        query, key, value = (_arg(args, kwargs, i, name) for i, name in enumerate(("query", "key", "value")))
        padding = _arg(args, kwargs, 3, "key_padding_mask")
        mask = _arg(args, kwargs, 5, "attn_mask")
        causal = bool(_arg(args, kwargs, 7, "is_causal", False))
        if any(self.value(t) is not None for t in (padding, mask)):
            raise Unfollowed("an attention mask computed from the input")
        if padding is not None and bool(_values(torch.as_tensor(padding)).to(torch.bool).any()):
            raise Unfollowed("a key_padding_mask that hides keys")
        seq = 0 if query.dim() == 2 or not module.batch_first else 1
        allowed = _allowed(mask, query.shape[seq], key.shape[seq], causal and mask is None, true_attends=False)
        results = tensors_in(out)
        self.attend(query, [key, value], seq, [seq, seq], allowed, results[0])
        for weights in results[1:]:
            self.register(
                _Value(
                    weights,
                    opaque=f"the attention weights of {type(module).__name__}{self.where()} "
                    "(one time axis per query and per key)",
                )
            )


# --- module-free helpers of the tracer -------------------------------------------------------------------------------


def _make_compact(
    t: torch.Tensor,
    axis: int | None,
    groups: Sequence[Sources],
    group_of: torch.Tensor | None,
    fill_axis: int | None = None,
) -> _Value:
    groups = list(groups)
    if group_of is not None:
        if fill_axis is not None:  # padding along time is not another group: fill it from its step neighbours
            top = group_of.amax(dim=fill_axis, keepdim=True)
            if bool(((group_of == -1) | (group_of == top)).all()):
                group_of = top
        group_of = _compress(group_of)
    unique: list[Sources] = []
    remap = []
    for g in groups:
        if g in unique:
            remap.append(unique.index(g))
        else:
            remap.append(len(unique))
            unique.append(g)
    if group_of is not None:
        table = torch.tensor([-1] + remap, dtype=torch.int64)
        group_of = table[group_of + 1]
        if len(unique) == 1 and bool((group_of == 0).all()):
            group_of = None
    if not unique:
        unique = [{}]
    return _Value(t, axis=axis, groups=tuple(unique), group_of=group_of)


def _compress(group_of: torch.Tensor) -> torch.Tensor:
    """``group_of`` with every axis along which it does not change shrunk to size 1."""
    for d in range(group_of.dim()):
        if group_of.shape[d] > 1 and bool((group_of == group_of.narrow(d, 0, 1)).all()):
            group_of = group_of.narrow(d, 0, 1)
    return group_of


def _broadcast(group_of: torch.Tensor | None, shape: torch.Size, ndim: int | None = None) -> torch.Tensor | None:
    if group_of is None:
        return None
    return group_of.reshape((1,) * (len(shape) - group_of.dim()) + tuple(group_of.shape))


def _drop_time(v: _Value) -> torch.Tensor | None:
    if v.group_of is None or v.axis is None:
        return v.group_of
    if v.group_of.shape[v.axis] != 1:
        raise Unfollowed("a pool over steps that come from different paths")
    return v.group_of


def _reduce_groups(v: _Value, dims: tuple[int, ...], keepdim: bool) -> tuple[list[Sources], torch.Tensor | None]:
    """The groups after combining elements along ``dims``: one per distinct set of groups met."""
    if v.group_of is None or len(v.groups) == 1:
        return list(v.groups), None
    g = v.group_of
    present = torch.stack(
        [(g == i).amax(dim=dims, keepdim=True) if g.dim() else (g == i) for i in range(len(v.groups))], dim=-1
    )
    key = (present.to(torch.int64) * (2 ** torch.arange(len(v.groups)))).sum(-1)
    signatures, group_of = torch.unique(key, return_inverse=True)
    groups = []
    for signature in signatures.tolist():
        merged: Sources = {}
        for i in range(len(v.groups)):
            if signature >> i & 1:
                for s, f in v.groups[i].items():
                    merged[s] = f if s not in merged else _merge(merged[s], f, None)
        groups.append(merged)
    group_of = group_of.reshape(key.shape)
    if not keepdim:
        group_of = group_of.squeeze(dims) if dims else group_of
    return groups, group_of


def _transposed(v: _Value, moved: torch.Tensor) -> _Value:
    axis = v.axis
    n = moved.dim()
    if axis is not None and axis in (n - 1, n - 2):
        axis = (2 * n - 3) - axis
    group_of = v.group_of.transpose(-1, -2) if v.group_of is not None and v.group_of.dim() >= 2 else v.group_of
    return _Value(moved, axis=axis, groups=v.groups, group_of=group_of)


def _codes(v: _Value, k: int) -> torch.Tensor:
    """Element codes of a traced tensor (see :data:`BIG`)."""
    shape = v.tensor.shape
    if v.tau is not None:
        tau = v.tau.to(torch.float64)
    elif v.axis is not None:
        view = [1] * len(shape)
        view[v.axis] = shape[v.axis]
        tau = torch.arange(shape[v.axis], dtype=torch.float64).view(view).expand(shape)
    else:
        tau = torch.zeros(shape, dtype=torch.float64)
    group = (
        v.group_of.to(torch.float64).expand(shape)
        if v.group_of is not None
        else torch.zeros((1,) * len(shape), dtype=torch.float64)
    )
    codes = (k * MAX_GROUPS + group) * BIG + tau + 1
    dead = (tau < 0) | (group < 0)
    return torch.where(dead, torch.zeros((), dtype=torch.float64), codes).expand(shape).contiguous()


def _time_axis(tau: torch.Tensor, mask: torch.Tensor, ndim: int) -> tuple[int, tuple[int, int, list[Steps]]] | None:
    """The output axis along which ``tau`` (where ``mask``) changes and its periodic form, or ``None``."""
    inf = torch.iinfo(torch.int64)
    for axis in range(ndim):
        n = tau.shape[axis]
        if n < 2:
            continue
        t = tau.movedim(axis, 0).reshape(n, -1)
        m = mask.movedim(axis, 0).reshape(n, -1)
        lo = torch.where(m, t, torch.full_like(t, inf.max)).amin(1)
        hi = torch.where(m, t, torch.full_like(t, inf.min)).amax(1)
        defined = m.any(1)
        if bool((lo[defined] != hi[defined]).any()):
            continue
        seq = torch.where(defined, lo, torch.full_like(lo, -1)).numpy()
        found = _periodic(seq)
        if found is not None:
            return axis, found
    return None


def _periodic(seq: np.ndarray) -> tuple[int, int, list[Steps]] | None:
    """``(period, step, offsets)`` with ``seq[q * period + r] = q * step + offsets[r]`` wherever defined
    (``-1``: undefined; undefined ends, e.g. padding, are ignored)."""
    defined = np.nonzero(seq >= 0)[0]
    if len(defined) < 2:
        return None
    first, last = defined[0], defined[-1]
    n = len(seq)
    for period in range(1, n // 2 + 1):  # at least two whole periods, or a wrap-around can look periodic
        a, b = seq[:-period], seq[period:]
        both = (a >= 0) & (b >= 0)
        if not both.any():
            continue
        diff = (b - a)[both]
        if not (diff == diff[0]).all() or diff[0] <= 0:
            continue
        inner = slice(first, last - period + 1)
        if not np.array_equal(a[inner] >= 0, b[inner] >= 0):
            continue
        step = int(diff[0])
        offsets = []
        for r in range(period):
            where = defined[defined % period == r]
            if not len(where):
                offsets.append(EMPTY)
                continue
            i = int(where[len(where) // 2])
            offsets.append(Steps.of([int(seq[i]) - (i // period) * step]))
        return period, step, offsets
    return None


def _everything(f: Field, v: _Value, length: int | None) -> Steps:
    """Every source step any element of a mixed value sees."""
    taus = torch.unique(v.tau[v.tau >= 0]).tolist()
    seen = EMPTY
    for t in taus:
        seen |= f.at(int(t))
    return seen.clip(0, length - 1) if length is not None else seen


def _allowed(mask: torch.Tensor | None, queries: int, keys: int, causal: bool, true_attends: bool) -> np.ndarray:
    """Which keys each query may attend to, ``(queries, keys)``, the same for every batch and head. A boolean
    mask is ``True`` where attending is allowed (``scaled_dot_product_attention``) or forbidden
    (``nn.MultiheadAttention``); a float mask forbids ``-inf``."""
    if causal:
        allowed = np.tril(np.ones((queries, keys), dtype=bool))
    else:
        allowed = np.ones((queries, keys), dtype=bool)
    if mask is None:
        return allowed
    m = _values(torch.as_tensor(mask))
    if m.dtype == torch.bool:
        m = m if true_attends else ~m
    else:
        m = m > -math.inf
    m = m.reshape(-1, *m.shape[-2:]) if m.dim() > 2 else m.reshape(1, *m.shape[-2:])
    if not bool((m == m[:1]).all()):
        raise Unfollowed("an attention mask that differs between batch items or heads")
    return allowed & np.broadcast_to(m[0].numpy(), (queries, keys))


def attention_rows(allowed: np.ndarray) -> tuple[str, Steps | None]:
    """``("all", None)``, ``("past", None)`` or ``("band", offsets)``: how query ``i``'s keys depend on ``i``."""
    q, k = allowed.shape
    if allowed.all():
        return "all", None
    if q == k and np.array_equal(allowed, np.tril(np.ones((q, k), dtype=bool))):
        return "past", None
    middle = q // 2
    offsets = Steps.of(int(j) - middle for j in np.nonzero(allowed[middle])[0])
    expected = np.zeros_like(allowed)
    for i in range(q):
        for j in offsets.values():
            if 0 <= i + j < k:
                expected[i, i + j] = True
    if q == k and np.array_equal(allowed, expected):
        return "band", offsets
    raise Unfollowed("an attention mask that is neither full, causal nor a fixed band")


def read_keys(f: Field, rows: tuple[str, Steps | None], length: int) -> Field:
    kind, offsets = rows
    if kind == "all":
        return Field.constant(f.union_of(length))
    if kind == "past":
        return Field(1, 1, (f.prefix(0),)) if not f.absolute else f
    return f.gather(1, 1, [offsets])


# --- running the trace -----------------------------------------------------------------------------------------------


def _row_modules(model: nn.Module) -> dict[nn.Module, str]:
    """Modules that become nodes: leaves (parametrisations aside) and the modules taken whole."""
    rows: dict[nn.Module, str] = {}
    hidden: list[str] = []
    for name, module in model.named_modules():
        if module is model or any(name.startswith(prefix + ".") for prefix in hidden):
            continue
        children = [n for n, _ in module.named_children() if n != "parametrizations"]
        if isinstance(module, ATOMIC) or not children:
            rows.setdefault(module, name)
            hidden.append(name)
    return rows


@contextmanager
def _hooks(model: nn.Module, tracer: _Tracer) -> Iterator[None]:
    names = {m: n for n, m in model.named_modules()}
    handles = []

    def pre(module: nn.Module, args: tuple, kwargs: dict) -> None:
        tracer.stack.append(names.get(module, ""))
        if tracer.atomic is not None:
            tracer.depth += 1
        elif isinstance(module, ATOMIC):
            tracer.atomic, tracer.depth = (module, args, kwargs), 0

    def post(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if tracer.atomic is not None:
            if tracer.depth:
                tracer.depth -= 1
                tracer.stack.pop()
                return
            tracer.atomic = None
            tracer.atomic_module(module, args, kwargs, output)
        if module in tracer.rows:
            call = tracer.calls.get(id(module), 0)
            tracer.calls[id(module)] = call + 1
            tracer.add_node(tracer.rows[module] + (f"#{call + 1}" if call else ""), module, output)
        tracer.stack.pop()

    for module in model.modules():
        if module is model:
            continue
        handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(module.register_forward_hook(post, with_kwargs=True))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class _NeedsValues(Exception):
    """A constant's values are needed (a mask, an index) but the pass runs on meta tensors."""


def _values(t: torch.Tensor) -> torch.Tensor:
    if t.device.type == "meta":
        raise _NeedsValues
    return t


def trace(model: nn.Module, input_shape: Sequence[int], **kwargs: Any) -> Graph:
    """The dataflow :class:`Graph` of ``model`` on one input of shape ``(1, *input_shape)`` (time last), in
    eval mode. Extra keyword arguments go to ``model.forward``; the model is left as it was.

    The pass first runs on a copy of the model on torch's ``meta`` device (shapes only: a 25-level TCN's padding
    of 2**24 steps costs nothing); where the model needs real values (a mask to read, data-dependent control
    flow, a module that cannot be copied) it runs again on the model itself.
    """
    input_shape = tuple(int(n) for n in input_shape)
    if not kwargs:
        try:
            shadow = _meta_copy(model)
            graph = _trace(shadow, input_shape, {}, torch.device("meta"))
        except Exception:  # noqa: BLE001 - the meta pass is only a shortcut; the real pass below raises real errors
            pass
        else:
            originals = dict(model.named_modules())
            names = {m: n for n, m in shadow.named_modules()}
            for node in graph.nodes:
                if node.module is not None:
                    node.module = originals[names[node.module]]
            return graph
    parameter = next(model.parameters(), None)
    return _trace(model, input_shape, kwargs, parameter.device if parameter is not None else None)


def _meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers are meta tensors (their data is never copied)."""
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(model, memo)


def _trace(
    model: nn.Module, input_shape: tuple[int, ...], kwargs: dict[str, Any], device: torch.device | None
) -> Graph:
    tracer = _Tracer(_row_modules(model))
    parameter = next(model.parameters(), None)
    x = torch.zeros(
        (1, *input_shape),
        dtype=parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32,
        device=device,
    )
    tracer.nodes.append(Node(0, "<input>", "input", None, (None, *input_shape), len(input_shape)))
    tracer.lengths[0] = input_shape[-1]
    tracer.register(_Value(x, axis=x.dim() - 1, groups=({0: IDENTITY},)))
    was_training = model.training
    try:
        model.eval()
        with _hooks(model, tracer), tracer:  # grad stays on: torch's fused eval-mode transformer paths stay off
            out = model(x, **kwargs)
    finally:
        model.train(was_training)
    tracer.add_node("<output>", None, out)
    return Graph(tracer.nodes, input_shape)
