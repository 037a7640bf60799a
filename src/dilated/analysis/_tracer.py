"""The dataflow graph of a torch module, traced: which input steps every tensor's steps see, from one forward pass.

:func:`trace` runs the model once in eval mode under a :class:`torch.overrides.TorchFunctionMode` and follows every
tensor that depends on the input. Each carries its time axis and, per *source* (the model input or an earlier
module), a :class:`~dilated.analysis._fields.Field`: the source steps each of its steps sees. Every leaf module
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
  ``linear``/``matmul``/``einsum`` (over time: every step; a ``linear`` whose weight has zeros: the band of
  offsets its nonzeros form, checked on every row), RNNs (the past, or everything if bidirectional), and
  attention (``scaled_dot_product_attention``, ``nn.MultiheadAttention``: every step, or the past under a causal
  mask).

An op it cannot follow makes the tensors it produces *opaque*, naming the op and the module it ran in; a
node downstream of one has no field from the analysis (the caller then measures it with the probe).
A model that is or holds a TorchScript module (scripted or traced) runs ops that no torch-function mode sees:
its whole output is opaque, so it is measured, never taken for a constant.

The rules live in one module per op family (``ops_pointwise``, ``ops_moves``, ``ops_contractions``,
``ops_attention``); :class:`_Tracer` here combines them and dispatches each op by its name (:mod:`~dilated.analysis._op_names`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn

from dilated.analysis._fields import IDENTITY, SELF, Field, FieldError
from dilated.analysis._graph import Graph, Node, TensorTable, Unfollowed, tensors_in
from dilated.analysis._op_names import (
    ADAPTIVE,
    ATOMIC,
    CONSTANT,
    CONVS,
    ELEMENTWISE,
    MATMULS,
    MOVES,
    NORMALISE_OVER_DIM,
    POOLS,
    PREFIX,
    REDUCTIONS,
    TRANSPOSED,
    arg,
    base_name,
    dims_of,
    op_name,
)
from dilated.analysis._ops_attention import AttentionOps
from dilated.analysis._ops_moves import MoveOps
from dilated.analysis._values import Traced, everything_seen


class _Tracer(MoveOps, AttentionOps):
    """Follows one forward pass (see the module docstring): the rules of every op family, dispatched by op name."""

    def __init__(self, rows: dict[nn.Module, str], originals: TensorTable[torch.Tensor] | None = None) -> None:
        super().__init__(originals)
        self.rows = rows  # the modules that become nodes, with their names
        self.nodes: list[Node] = []
        self.atomic: tuple[nn.Module, tuple[Any, ...], dict[str, Any]] | None = None  # the module taken whole now
        self.depth = 0  # modules entered inside the atomic one
        self.calls: dict[int, int] = {}  # times each row module ran

    def add_node(self, name: str, module: nn.Module | None, out: Any) -> None:
        """A new source: ``out``'s current fields become the node's edges, and ``out`` now sees the node."""
        tensors = tensors_in(out)
        index = len(self.nodes)
        first = tensors[0] if tensors else None
        v = self.value(first)
        shape = (None, *first.shape[1:]) if first is not None else ()
        type_name = type(module).__name__ if module is not None else "output"
        if first is None or v is None:
            self.nodes.append(Node(index, name, type_name, module, shape, None, constant=True))
            return
        if v.opaque:
            self.nodes.append(Node(index, name, type_name, module, shape, None, unfollowed=v.opaque))
            self.lengths[index] = None
            self.register(Traced(first, axis=None, groups=({index: Field.constant(SELF)},)))  # later ops: relative
            return
        if v.tau is not None or len(v.groups) > 1:
            # per-element fields (a merged time axis, channels of different paths): the node is shown with the
            # union, and the tensor keeps its own fields (it is not made a new source, so nothing is lost)
            tau = v.tau
            axis = v.axis if tau is None else None
            reason = _varies_along_time(v)
            edges: dict[int, Field] = {}
            if reason is None:
                try:
                    edges = (
                        v.sources
                        if tau is None
                        else {
                            s: Field.constant(everything_seen(f, tau, self.lengths.get(s)))
                            for s, f in v.sources.items()
                        }
                    )
                except FieldError as error:
                    reason = str(error)
            unfollowed = f"{name}: {reason}" if reason else None
            self.nodes.append(Node(index, name, type_name, module, shape, axis, edges, unfollowed=unfollowed))
            self.lengths[index] = None
            return
        node = Node(index, name, type_name, module, shape, v.axis, dict(v.groups[0]))
        self.nodes.append(node)
        self.lengths[index] = node.length
        fresh = IDENTITY if v.axis is not None else Field.constant(SELF)
        self.register(Traced(first, axis=v.axis, groups=({index: fresh},), group_of=v.group_of))

    # -- torch functions --------------------------------------------------------------------------------------------
    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Collection[type],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.atomic is not None:
            return out
        inputs = [v for v in map(self.value, tensors_in(args) + tensors_in(kwargs)) if v is not None]
        if not inputs:
            return out
        name = op_name(func)
        base = base_name(name)
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
                self.register(Traced(t, opaque=reason))
        return out

    def follow(self, base: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """Apply the rule of op ``base`` (see :data:`_RULES`), or raise :class:`Unfollowed`."""
        rule = _RULES.get(base)
        if rule is None:
            raise Unfollowed("not an op the receptive-field analysis follows")
        rule(self, base, func, args, kwargs, out)

    # -- rules that pick between families ----------------------------------------------------------------------------
    def product(self, base: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """``mul``/``add``/``sub``: a constant zero factor or infinite term cuts the dependency; else elementwise."""
        masking = self.masking_mul if base == "mul" else self.masking_add
        if not masking(args, kwargs, out):
            self.elementwise(args, kwargs, out)

    def select(self, base: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """``where`` with a constant condition and ``masked_fill`` with a constant mask move elements; with a
        traced condition or mask they are elementwise."""
        if base == "where" and len(args) == 3 and self.value(args[0]) is None:
            cond = self.constant(args[0])
            self.move(lambda a, b: torch.where(cond, a, b), [args[1], args[2]], out, merges=True)
        elif base == "masked_fill" and self.value(arg(args, kwargs, 1, "mask")) is None:
            self.data_move(base, func, args, kwargs, out)
        else:
            self.elementwise(args, kwargs, out)

    def normalise_over_dim(self, base: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """``softmax``/``normalize`` and the like mix the elements along ``dim``."""
        default = 1 if base == "normalize" else None
        dim = arg(args, kwargs, 2 if base == "normalize" else 1, "dim", default)
        self.mixing(args[0], dims_of(dim, args[0].dim()) if dim is not None else (args[0].dim() - 1,), out)

    def norm(self, base: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """Layer, RMS, group, instance, batch and local response norms: the axes their statistics cover."""
        x = args[0]
        if base in ("layer_norm", "rms_norm"):
            shape = arg(args, kwargs, 1, "normalized_shape")
            n = len(shape) if isinstance(shape, tuple | list | torch.Size) else 1
            dims: tuple[int, ...] = tuple(range(x.dim() - n, x.dim()))
        elif base == "group_norm":
            dims = tuple(range(1, x.dim()))
        elif base == "instance_norm":  # in eval with running statistics it uses those: elementwise
            dims = tuple(range(2, x.dim())) if arg(args, kwargs, 5, "use_input_stats", True) else ()
        elif base == "batch_norm":
            running = arg(args, kwargs, 1, "running_mean") is not None
            training = arg(args, kwargs, 5, "training", False)
            dims = (0, *range(2, x.dim())) if training or not running else ()
        else:  # local_response_norm
            dims = (1,)
        self.mixing(x, dims, out)


Rule = Callable[[_Tracer, str, Any, tuple[Any, ...], dict[str, Any], Any], None]


def _rules() -> dict[str, Rule]:
    """Op name -> its rule, family by family (the names of :mod:`~dilated.analysis._op_names`)."""
    rules: dict[str, Rule] = {}

    def family(names: Collection[str], rule: Rule) -> None:
        rules.update(dict.fromkeys(names, rule))

    family(ELEMENTWISE, lambda t, b, f, a, k, o: t.elementwise(a, k, o))
    family(MOVES | {"setitem"}, lambda t, b, f, a, k, o: t.data_move(b, f, a, k, o))
    family(REDUCTIONS, lambda t, b, f, a, k, o: t.reduction(b, a, k, o))
    family(NORMALISE_OVER_DIM, lambda t, b, f, a, k, o: t.normalise_over_dim(b, a, k, o))
    family(
        ("layer_norm", "rms_norm", "group_norm", "instance_norm", "batch_norm", "local_response_norm"),
        lambda t, b, f, a, k, o: t.norm(b, a, k, o),
    )
    family(PREFIX, lambda t, b, f, a, k, o: t.prefix(a[0], arg(a, k, 1, "dim"), o))
    family(MATMULS, lambda t, b, f, a, k, o: t.matmul(b, a, k, o))
    family(CONVS, lambda t, b, f, a, k, o: t.conv(CONVS[b], a, k, o))
    family(TRANSPOSED, lambda t, b, f, a, k, o: t.conv_transpose(TRANSPOSED[b], a, k, o))
    family(POOLS, lambda t, b, f, a, k, o: t.pool(b, POOLS[b], a, k, o))
    family(ADAPTIVE, lambda t, b, f, a, k, o: t.adaptive_pool(ADAPTIVE[b], a, k, o))
    family(("embedding", "one_hot"), lambda t, b, f, a, k, o: t.append_dim(a[0], o))
    family(("mul", "add", "sub"), _Tracer.product)
    family(("where", "masked_fill"), _Tracer.select)
    rules["linear"] = lambda t, b, f, a, k, o: t.linear(a, k, o)
    rules["einsum"] = lambda t, b, f, a, k, o: t.einsum(a, o)
    rules["scaled_dot_product_attention"] = lambda t, b, f, a, k, o: t.sdpa(a, k, o)
    return rules


_RULES = _rules()


def _varies_along_time(v: Traced) -> str | None:
    """Why ``v``'s steps have no one field (they come from different places along time, as after a ``cat`` along
    time and a strided slice), or ``None``."""
    g = v.group_of
    if v.tau is not None or g is None or v.axis is None:
        return None
    axis = v.axis - (v.tensor.dim() - g.dim())
    if axis < 0 or g.shape[axis] == 1:
        return None
    return "its steps read different paths along time (a cat along time, e.g. a delay or a strided slice after one)"


# --- running the trace -----------------------------------------------------------------------------------------------


def _row_modules(model: nn.Module) -> dict[nn.Module, str]:
    """Modules that become nodes: leaves (parametrisations aside) and the modules taken whole; the model itself
    when it is one of those (a bare ``nn.Conv1d``), named after its type."""
    rows: dict[nn.Module, str] = {}
    hidden: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(prefix + ".") for prefix in hidden):
            continue
        children = [n for n, _ in module.named_children() if n != "parametrizations"]
        if isinstance(module, ATOMIC) or not children:
            rows.setdefault(module, name or type(module).__name__.lower())
            hidden.append(name)
    return rows


@contextmanager
def _hooks(model: nn.Module, tracer: _Tracer) -> Iterator[None]:
    names = {m: n for n, m in model.named_modules()}
    handles = []

    def pre(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        tracer.stack.append(names.get(module, ""))
        if tracer.atomic is not None:
            tracer.depth += 1
        elif isinstance(module, ATOMIC):
            tracer.atomic, tracer.depth = (module, args, kwargs), 0

    def post(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
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
        if module is model and module not in tracer.rows:
            continue
        handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(module.register_forward_hook(post, with_kwargs=True))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def trace(model: nn.Module, input_shape: Sequence[int], **kwargs: Any) -> Graph:
    """The dataflow :class:`LayerGraph` of ``model`` on one input of shape ``(1, *input_shape)`` (time last), in
    eval mode. Extra keyword arguments go to ``model.forward``; the model is left as it was.

    The pass first runs on a copy of the model on torch's ``meta`` device (shapes only: a 25-level TCN's padding
    of 2**24 steps costs nothing); where the model needs real values (a mask to read, data-dependent control
    flow, a module that cannot be copied) it runs again on the model itself.
    """
    input_shape = tuple(int(n) for n in input_shape)
    if not kwargs:
        try:
            shadow, originals = _meta_copy(model)
            graph = _trace(shadow, input_shape, {}, torch.device("meta"), originals)
        except Exception:  # noqa: BLE001 - the meta pass is only a shortcut; the real pass below raises real errors
            pass
        else:
            modules = dict(model.named_modules())
            names = {m: n for n, m in shadow.named_modules()}
            for node in graph.nodes:
                if node.module is not None:
                    node.module = modules[names[node.module]]
            return graph
    parameter = next(model.parameters(), None)
    return _trace(model, input_shape, kwargs, parameter.device if parameter is not None else None)


def _meta_copy(model: nn.Module) -> tuple[nn.Module, TensorTable[torch.Tensor]]:
    """A copy of ``model`` whose parameters and buffers are meta tensors (their data is never copied), and which
    of the model's own tensors each stands for (a rule that reads a weight's values reads the original)."""
    memo: dict[int, Any] = {}
    originals: TensorTable[torch.Tensor] = TensorTable()
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
        originals.put(memo[id(p)], p.detach())
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
        originals.put(memo[id(b)], b)
    return copy.deepcopy(model, memo), originals


def _trace(
    model: nn.Module,
    input_shape: tuple[int, ...],
    kwargs: dict[str, Any],
    device: torch.device | None,
    originals: TensorTable[torch.Tensor] | None = None,
) -> Graph:
    tracer = _Tracer(_row_modules(model), originals)
    parameter = next(model.parameters(), None)
    x = torch.zeros(
        (1, *input_shape),
        dtype=parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32,
        device=device,
    )
    tracer.nodes.append(Node(0, "<input>", "input", None, (None, *input_shape), len(input_shape)))
    tracer.lengths[0] = input_shape[-1]
    tracer.register(Traced(x, axis=x.dim() - 1, groups=({0: IDENTITY},)))
    was_training = model.training
    script = _script_module(model)
    try:
        model.eval()
        hooks = _hooks(model, tracer) if script is None else nullcontext()
        with hooks, tracer:  # grad stays on: torch's fused eval-mode transformer paths stay off
            out = model(x, **kwargs)
    finally:
        model.train(was_training)
    if script is not None:  # its ops ran out of sight: the output is measured, never taken for a constant
        reason = f"{script or '<model>'}: a TorchScript module runs its ops where the tracer cannot see them"
        for t in tensors_in(out):
            tracer.register(Traced(t, opaque=reason))
    tracer.add_node("<output>", None, out)
    return Graph(tracer.nodes, input_shape)


def _script_module(model: nn.Module) -> str | None:
    """The name of the first TorchScript module in ``model`` ("" for the model itself), or ``None``: scripted and
    traced modules run their ops in TorchScript's interpreter, which neither torch-function modes nor (for scripted
    ones) forward hooks see."""
    return next((name for name, m in model.named_modules() if isinstance(m, torch.jit.ScriptModule)), None)
