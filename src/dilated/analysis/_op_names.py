"""The torch ops the tracer follows, by family (names as torch reports them, in-place and reflected forms folded),
and how it reads their arguments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

ATOMIC = (nn.RNNBase, nn.MultiheadAttention)  # followed as a whole (their insides are fused kernels)


def op_name(func: Any) -> str:
    name = getattr(func, "__name__", "") or type(func).__name__
    if name == "__get__":
        owner = getattr(func, "__self__", None)
        return f"{getattr(owner, '__name__', '?')}.__get__"
    return name


def base_name(name: str) -> str:
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


def arg(args: Sequence[Any], kwargs: dict[str, Any], index: int, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def dims_of(dim: Any, ndim: int) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(d % ndim for d in dims)


def per_axis(value: Any, n: int) -> tuple[int, ...]:
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
MATMULS = frozenset("matmul mm bmm baddbmm addmm addbmm mv dot inner".split())
MERGES = frozenset("view view_as reshape reshape_as flatten unflatten".split())  # may merge time with another axis
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
