"""Streaming inference: one new time step in, one output out, at a cost independent of the receptive field.

The "fast WaveNet" idea (Paine et al., "Fast Wavenet Generation Algorithm", 2016, arXiv:1611.09482): a causal
dilated stack recomputes nothing it has computed before if each layer keeps the inputs its dilated taps will still
need. In ``dilated`` models every time mix is a causal, stride-1 :class:`dilated.layers.Conv1d` and everything else
acts on each step alone, so :class:`Stream` runs the model's own ``forward`` on a chunk ``(batch, channels, n)``
with every causal ``Conv1d`` replaced by a stateful copy that remembers its last ``dilation * (kernel - 1)``
inputs per stream (concatenate history and chunk, convolve without padding, keep the tail). Zero history is
exactly the causal zero padding, so step ``t`` equals ``model(x)[..., t]`` from the very first step; no per-model
code is needed.

The user's model is never modified: the stream runs on a *shadow* of its module tree (shallow copies in eval mode
that share the parameters), so a stream reads the model's current weights at every step.

Refused with a ``ValueError`` naming the layer (at construction; see ``strict``): non-causal or strided convs,
pooling, and layers that mix every step (attention, RNNs, flatten); :func:`check` also catches time mixing written
directly in a ``forward``. :class:`WindowStream` handles models that put such a global stage after a causal conv
module (TransLOB). A compiled single-step kernel lives in :mod:`dilated.fast_stream`; :func:`stream` picks it when
it applies. :class:`StepFunction` / :func:`export_onnx` give the step as a pure function for export, and
:func:`generate` samples a WaveNet autoregressively.

    >>> s = stream(model, batch_size=4)                      # doctest: +SKIP
    >>> y_t = s.step(x_t)                                   # (4, channels) -> (4, out_channels)
    >>> y = s.step_many(x_chunk)                            # (4, channels, n) -> (4, out_channels, n)
    >>> torch.save(s.state_dict(), "state.pt"); s.load_state_dict(torch.load("state.pt", weights_only=True))
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from dilated.geometry import Layer, padding_amounts
from dilated.layers import Conv1d
from dilated.analysis import geometry_of

Backend = Literal["auto", "eager", "fast"]
STEPS_KEY = "steps"


# --------------------------------------------------------------------------------------------------------------------
# The shadow module tree
# --------------------------------------------------------------------------------------------------------------------

class _Clock:
    """Shared by a stream's stateful convs: the index of the forward call in progress (detects double calls)."""

    def __init__(self) -> None:
        self.call = 0


class StatefulConv1d(nn.Module):
    """A causal stride-1 :class:`~dilated.layers.Conv1d` that remembers its last ``dilation * (kernel - 1)``
    inputs per stream, so that consecutive chunks give the offline output.

    It reads the weights of the original ``conv`` (not owned: the user's module) at every call, so a weight-normed
    conv (``torch.nn.utils.parametrizations.weight_norm``) works and reflects its current parameters.

    Shapes:
        ``state``: ``(batch, in_channels, history)``, oldest input first; input ``(batch, in_channels, n)``,
        output ``(batch, out_channels, n)``.
    """

    def __init__(self, conv: Conv1d, path: str, batch_size: int, clock: _Clock) -> None:
        super().__init__()
        object.__setattr__(self, "conv", conv)  # not registered: the shadow tree never owns the user's modules
        g = conv.geometry
        self.path, self.dilation, self.groups = path, g.dilation, conv.groups
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.history = g.dilation * (g.kernel_size - 1)
        self.clock, self.last_call = clock, -1
        weight = conv.weight
        self.state = torch.zeros(batch_size, self.in_channels, self.history, dtype=weight.dtype, device=weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.last_call == self.clock.call:
            raise ValueError(f"layer {self.path!r} is called more than once per forward pass; streaming keeps one "
                             "history per conv, so give each call its own Conv1d")
        self.last_call = self.clock.call
        if x.dim() != 3 or x.shape[1] != self.in_channels or x.shape[0] != self.state.shape[0]:
            raise ValueError(f"layer {self.path!r}: expected a chunk ({self.state.shape[0]}, {self.in_channels}, n), "
                             f"got {tuple(x.shape)}")
        conv = self.conv
        h = torch.cat([self.state, x.to(self.state.dtype)], dim=-1) if self.history else x  # (B, C, history + n)
        y = F.conv1d(h, conv.weight, conv.bias, 1, 0, self.dilation, self.groups)  # (B, out, n)
        if self.history:
            self.state = h[..., h.shape[-1] - self.history:]
        return y

    def extra_repr(self) -> str:
        return f"{self.path!r}, {self.in_channels}, {self.out_channels}, history={self.history}"


class _Refused(nn.Module):
    """Stands in for a layer the stream cannot run step by step; raises ``ValueError`` naming it when called."""

    def __init__(self, path: str, module: nn.Module, reason: str) -> None:
        super().__init__()
        self.path, self.type_name, self.reason = path, type(module).__name__, reason

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"cannot stream layer {self.path!r} ({self.type_name}): {self.reason}")


def _is_time_pointwise(layer: Layer) -> bool:
    return layer.kind == "pointwise" or (
        layer.kernel_size == 1 and layer.stride == 1 and padding_amounts(layer, 1) == (0, 0))


def conv_role(conv: Conv1d) -> Literal["causal", "pointwise", "refused"]:
    """How a stream treats a :class:`~dilated.layers.Conv1d`: stateful (causal, stride 1, kernel > 1), as is
    (kernel 1 without padding), or refused (strided, non-causal padding)."""
    g = conv.geometry
    if _is_time_pointwise(g):
        return "pointwise"
    if g.stride == 1 and conv.padding_for(g.span) == (g.span - 1, 0):
        return "causal"
    return "refused"


def _refusal(module: nn.Module) -> str | None:
    """Why a module (other than a dilated Conv1d) cannot be streamed, or ``None``; ``""`` means: look inside."""
    layers, kind = geometry_of(module)
    if kind == "global":
        return "it mixes every time step (attention, RNN, flatten or global pooling); stream the causal part " \
               "before it, or use WindowStream for a model that ends in such a stage"
    if any(not _is_time_pointwise(layer) for layer in layers):
        if list(module.children()):
            return ""
        described = ", ".join(layer.describe() for layer in layers)
        return (f"only causal stride-1 dilated.layers.Conv1d layers can mix time steps, this one is {described} "
                "(non-causal or strided conv, or pooling)")
    return None


def _copy_module(module: nn.Module) -> nn.Module:
    """A shallow copy in eval mode sharing parameter and buffer tensors, with its own attribute dicts."""
    clone = type(module).__new__(type(module))  # not copy.copy: parametrized modules refuse __getstate__
    clone.__dict__.update(module.__dict__)
    clone.__dict__["_parameters"] = dict(module._parameters)
    clone.__dict__["_buffers"] = dict(module._buffers)
    clone.__dict__["training"] = False
    return clone


def build_shadow(model: nn.Module, batch_size: int, clock: _Clock) -> tuple[nn.Module, dict[str, StatefulConv1d]]:
    """The model's module tree with causal Conv1d layers stateful, refused layers raising when called, and every
    other module a shallow eval-mode copy. Returns the shadow root and its stateful convs by module path."""
    convs: dict[str, StatefulConv1d] = {}
    memo: dict[int, nn.Module] = {}

    def visit(module: nn.Module, path: str) -> nn.Module:
        if id(module) in memo:  # a module used twice stays one (shared) module
            return memo[id(module)]
        where = path or type(module).__name__
        if isinstance(module, Conv1d):
            role = conv_role(module)
            if role == "causal":
                shadow: nn.Module = StatefulConv1d(module, where, batch_size, clock)
                convs[where] = shadow
            elif role == "pointwise":
                shadow = _copy_module(module)
            else:
                shadow = _Refused(where, module, f"{module.geometry.describe()}: only causal stride-1 convs stream")
        else:
            reason = _refusal(module)
            if reason:
                shadow = _Refused(where, module, reason)
            else:
                shadow = _copy_module(module)
                shadow.__dict__["_modules"] = {
                    name: None if child is None else visit(child, f"{path}.{name}" if path else name)
                    for name, child in module._modules.items()
                }
        memo[id(module)] = shadow
        return shadow

    return visit(model, ""), convs


def _map_tensors(fn: Callable[[torch.Tensor], Any], value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple | list):
        return type(value)(_map_tensors(fn, v) for v in value)
    return value


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, tuple | list):
        for v in value:
            found = _first_tensor(v)
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------------------------------------------------
# The eager engine
# --------------------------------------------------------------------------------------------------------------------

class Stream:
    """Step-by-step inference of a causal model for ``batch_size`` independent streams (eager PyTorch).

    Args:
        model: a module whose only time mixing is causal stride-1 :class:`dilated.layers.Conv1d` layers (WaveNet,
            TCN, conv stacks). It is not modified; the stream reads its current weights.
        batch_size: number of independent streams stepped together.
        strict: raise ``ValueError`` at construction if the model holds a layer that cannot be streamed
            (non-causal or strided conv, pooling, attention, RNN, flatten); with ``strict=False`` the error is
            raised only if such a layer is called (for models holding layers they skip while streaming).

    Inputs follow the model's layout with the time axis last: ``step`` takes ``(batch, channels)``, ``step_many``
    ``(batch, channels, n)``. Extra arguments (e.g. WaveNet's ``global_condition (batch, G)``) are passed to the
    model's ``forward`` unchanged at every call; a per-step input such as local conditioning must be given for the
    same steps as ``x``. A model that returns only its last step (e.g. a TCN with ``last_step_only``) gives
    ``(batch, out)`` per step; ``step_many`` then stacks them to ``(batch, out, n)``.

    State: ``state_dict()`` holds ``"steps"`` (int64) and, per causal conv (by module path), its last inputs
    ``(batch, in_channels, dilation * (kernel - 1))`` oldest first; tensors only, so ``torch.save`` /
    ``torch.load(weights_only=True)`` and safetensors both work. The same format is used by
    :class:`dilated.fast_stream.FastStream`, so a service can move state between the two.
    """

    def __init__(self, model: nn.Module, batch_size: int = 1, strict: bool = True) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Stream takes a torch.nn.Module, got {type(model).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.model, self.batch_size = model, batch_size
        self._clock = _Clock()
        self._shadow, self.convs = build_shadow(model, batch_size, self._clock)
        self.refused = [m for m in self._shadow.modules() if isinstance(m, _Refused)]
        if strict and self.refused:
            first = self.refused[0]
            more = f" (and {len(self.refused) - 1} more)" if len(self.refused) > 1 else ""
            raise ValueError(f"cannot stream layer {first.path!r} ({first.type_name}){more}: {first.reason}. "
                             "If the model never calls it while streaming, pass strict=False")
        self.steps = 0
        self._per_step_output: bool | None = None

    # -- stepping ---------------------------------------------------------------------------------------------------
    @property
    def receptive_field(self) -> int:
        """``1 + sum of the stateful convs' histories`` along the longest path, when the model declares it."""
        declared = getattr(self.model, "receptive_field", None)
        return declared if isinstance(declared, int) else 1 + max((c.history for c in self.convs.values()), default=0)

    def _forward(self, x: torch.Tensor, args: tuple, kwargs: dict) -> Any:
        self._clock.call += 1
        with torch.inference_mode():
            return self._shadow(x, *args, **kwargs)

    def step(self, x_t: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """One step for every stream: ``(batch, channels) -> (batch, out_channels)``."""
        self._check_batch(x_t)
        out = self._forward(x_t.unsqueeze(-1), args, kwargs)
        self.steps += 1
        return _map_tensors(lambda y: y.squeeze(-1) if y.dim() >= 3 else y, out)

    def step_many(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """A chunk of ``n`` steps for every stream: ``(batch, channels, n) -> (batch, out_channels, n)``."""
        self._check_batch(x)
        n = x.shape[-1]
        if n < 1:
            raise ValueError("step_many needs at least one step")
        if self._per_step_output is False and n > 1:
            return self._one_by_one(x, args, kwargs)
        saved = {path: conv.state for path, conv in self.convs.items()}  # states are replaced, never mutated
        out = self._forward(x, args, kwargs)
        first = _first_tensor(out)
        per_step = first is not None and first.dim() >= x.dim() and first.shape[-1] == n
        if n > 1 or first is None or first.dim() < x.dim():
            self._per_step_output = per_step
        if per_step or n == 1:
            self.steps += n
            return out
        for path, state in saved.items():  # the model returned its last step only: redo the chunk step by step
            self.convs[path].state = state
        return self._one_by_one(x, args, kwargs)

    def _one_by_one(self, x: torch.Tensor, args: tuple, kwargs: dict) -> Any:
        outs = [self.step(x[..., i], *args, **kwargs) for i in range(x.shape[-1])]
        if isinstance(outs[0], torch.Tensor):
            return torch.stack(outs, dim=-1)
        return type(outs[0])(torch.stack(parts, dim=-1) for parts in zip(*outs))

    def _check_batch(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] != self.batch_size:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected {self.batch_size} streams on the first axis, got {shape}")

    # -- state ------------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every stream's history (back to zero padding)."""
        for conv in self.convs.values():
            conv.state = torch.zeros_like(conv.state)
        self.steps = 0

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``{"steps": int64 scalar, conv path: (batch, in_channels, history)}``: plain tensors, safe to save."""
        state = {STEPS_KEY: torch.tensor(self.steps, dtype=torch.int64)}
        for path, conv in self.convs.items():
            state[path] = conv.state.clone().contiguous()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Resume from :meth:`state_dict` (of this engine or of a :class:`~dilated.fast_stream.FastStream`)."""
        check_state(state, {p: tuple(c.state.shape) for p, c in self.convs.items()})
        for path, conv in self.convs.items():
            conv.state = state[path].to(dtype=conv.state.dtype, device=conv.state.device).clone()
        self.steps = int(state[STEPS_KEY])


def check_state(state: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]]) -> None:
    """``ValueError`` unless ``state`` has ``"steps"`` and exactly the given conv states with these shapes."""
    if not isinstance(state, dict) or STEPS_KEY not in state:
        raise ValueError("not a stream state: expected a dict with 'steps' and one tensor per causal conv")
    missing, unexpected = sorted(set(shapes) - set(state)), sorted(set(state) - set(shapes) - {STEPS_KEY})
    if missing or unexpected:
        raise ValueError(f"stream state does not match the model: missing {missing}, unexpected {unexpected}")
    for path, shape in shapes.items():
        if tuple(state[path].shape) != shape:
            raise ValueError(f"stream state {path!r} has shape {tuple(state[path].shape)}, expected {shape} "
                             "(batch, in_channels, history)")


def check(model: nn.Module, x: torch.Tensor, chunk_sizes: tuple[int, ...] = (1, 7, 3), atol: float = 1e-5,
          **kwargs: Any) -> float:
    """Stream ``x`` ``(batch, channels, time)`` through ``model`` in chunks of the given sizes and compare with the
    offline ``model(x)``; returns the largest absolute difference, and raises ``ValueError`` above ``atol``.

    For custom models: the stream refuses the layers it knows to mix time, but cannot see time mixing written
    directly in a ``forward`` (e.g. ``x.cumsum(-1)``); this check can.
    """
    was = model.training
    try:
        model.eval()
        with torch.inference_mode():
            expected = model(x, **kwargs)
    finally:
        model.train(was)
    s, outs, start, i = Stream(model, x.shape[0]), [], 0, 0
    while start < x.shape[-1]:
        end = min(start + chunk_sizes[i % len(chunk_sizes)], x.shape[-1])
        outs.append(s.step_many(x[..., start:end], **kwargs))
        start, i = end, i + 1
    error = float((torch.cat(outs, dim=-1) - expected).abs().max())
    if not error <= atol:
        raise ValueError(f"streaming differs from the offline forward by {error:.3g} (> {atol}): the model mixes "
                         "time steps outside causal dilated.layers.Conv1d layers")
    return error


def stream(model: nn.Module, batch_size: int = 1, backend: Backend = "auto") -> Stream:
    """A stream of ``batch_size`` independent sequences through ``model`` (see :class:`Stream`).

    Args:
        backend: ``"eager"`` (:class:`Stream`), ``"fast"`` (the compiled kernel of
            :class:`dilated.fast_stream.FastStream`; warns and falls back to eager when the model or the machine
            does not support it), or ``"auto"``: fast where it applies, otherwise eager without a warning.
    """
    if backend == "eager":
        return Stream(model, batch_size)
    if backend not in ("auto", "fast"):
        raise ValueError(f"backend must be 'auto', 'eager' or 'fast', got {backend!r}")
    from dilated.fast_stream import FastStream, unsupported_reason

    reason = unsupported_reason(model)
    if reason is None:
        return FastStream(model, batch_size, fallback="warn" if backend == "fast" else "silent")
    if backend == "fast":
        warnings.warn(f"dilated.streaming: using the eager engine: {reason}", stacklevel=2)
    return Stream(model, batch_size)


# --------------------------------------------------------------------------------------------------------------------
# A pure step function, for export
# --------------------------------------------------------------------------------------------------------------------

class StepFunction(nn.Module):
    """The stream as a pure function ``forward(x_t, *state) -> (y_t, *new_state)``, e.g. for ONNX export.

    ``state`` is the stream's conv histories in the order of :attr:`state_names` (the same tensors as in
    :meth:`Stream.state_dict`, without ``"steps"``); zeros start a stream. Extra ``forward`` arguments of the
    model that are not per-step tensors (e.g. ``local_upsampled=True``) are fixed with ``model_kwargs``.
    """

    def __init__(self, model: nn.Module, batch_size: int = 1, **model_kwargs: Any) -> None:
        super().__init__()
        engine = Stream(model, batch_size)
        object.__setattr__(self, "engine", engine)
        self.model = model  # registered so that exporters see the parameters
        self.model_kwargs = model_kwargs
        self.state_names = list(engine.convs)

    def initial_state(self) -> list[torch.Tensor]:
        """Zero histories, in the order of :attr:`state_names`."""
        return [torch.zeros_like(conv.state) for conv in self.engine.convs.values()]

    def forward(self, x_t: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        convs = list(self.engine.convs.values())
        if len(state) != len(convs):
            raise ValueError(f"expected {len(convs)} state tensors ({', '.join(self.state_names)}), got {len(state)}")
        for conv, s in zip(convs, state):
            conv.state = s
        self.engine._clock.call += 1
        y = self.engine._shadow(x_t.unsqueeze(-1), **self.model_kwargs)
        return (y.squeeze(-1) if y.dim() >= 3 else y, *(conv.state for conv in convs))


def export_onnx(model: nn.Module, path: str, x_t: torch.Tensor, opset_version: int = 17,
                **model_kwargs: Any) -> StepFunction:
    """Write the step function of ``model`` to ONNX with the state as explicit inputs and outputs.

    Inputs ``x`` (``x_t``'s shape: ``(batch, channels)``) then ``state_0 ...``; outputs ``y`` then
    ``new_state_0 ...`` (same order, see the returned :class:`StepFunction`'s ``state_names``). Uses the
    TorchScript-based exporter (``dynamo=False``), which needs only the ``onnx`` package.
    """
    fn = StepFunction(model, x_t.shape[0], **model_kwargs).eval()
    state = fn.initial_state()
    names = [f"state_{i}" for i in range(len(state))]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks are constants for a fixed step
        warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False is the exporter that needs only onnx
        torch.onnx.export(fn, (x_t, *state), path, input_names=["x", *names],
                          output_names=["y", *(f"new_{n}" for n in names)], opset_version=opset_version,
                          dynamo=False)
    return fn


# --------------------------------------------------------------------------------------------------------------------
# Windowed models (TransLOB): a causal conv module streamed, then a global stage over the last window
# --------------------------------------------------------------------------------------------------------------------

class _Replay(nn.Module):
    """Returns the cached window of conv features instead of recomputing them."""

    def __init__(self) -> None:
        super().__init__()
        self.features: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features


class WindowStream:
    """Streams a model made of a causal conv module followed by a stage over a whole window (TransLOB), with the
    outputs of ``model(window)``.

    Step ``t`` (0-based) returns ``model(x[..., t-window+1:t+1])`` once ``t >= window - 1`` (earlier steps return
    ``None``: the window is not full yet): the conv features of each window's first steps see the zero padding of
    the window start, exactly as in training and ``dilated predict``. The conv module is streamed over the whole
    history by :class:`Stream`; a streamed feature equals the window's own from the step where the window start's
    zero padding no longer reaches it (``reach`` = the conv module's receptive field - 1 = 31 for TransLOB), so
    only the first ``reach`` features of each window are recomputed, from the window's raw inputs. Per step: one
    streamed conv step, the conv module on ``reach`` steps, and the model's own ``forward`` with the conv module
    replaced by the assembled features (the global stage once over the window). Cost per step: about that of
    ``model(window)`` (0.9-1.1x for TransLOB in ``benchmarks/replay.py``, 1 and 64 streams): the attention and
    dense head over the window dominate both, and in eager PyTorch the convs on ``reach`` steps cost about as much
    as on the whole window; what it saves is the conv compute on ``window - reach`` steps.

    There is no history-aware mode (features of a window's first steps from their real history, which would skip
    the recompute): a model trained on zero-padded windows never saw such features, and its outputs on them differ
    from ``model(window)`` by up to ~1 in the logits; it would need training with warm-up context before each
    window, which ``dilated train`` does not do.

    Args:
        model: e.g. :class:`dilated.models.TransLOB`.
        batch_size: independent streams.
        window: steps per window (default ``model.config.window``).
        conv: attribute name of the causal conv module (default ``"conv"``).
        backend: of the conv module's stream, see :func:`stream`.
    """

    def __init__(self, model: nn.Module, batch_size: int = 1, window: int | None = None, conv: str = "conv",
                 backend: Backend = "auto") -> None:
        self.model, self.batch_size = model, batch_size
        self.window = int(window if window is not None else model.config.window)
        self.conv_name = conv
        conv_module = getattr(model, conv)
        self.conv_stream = stream(conv_module, batch_size, backend=backend)
        self.reach = min(self.window, _padding_reach(conv_module))
        self._conv = _eval_tree(conv_module)
        self._replay = _Replay()
        self._head = _eval_tree(model, {conv: self._replay})
        self._features: torch.Tensor | None = None  # (B, C, window - reach): streamed features, oldest first
        self._inputs: torch.Tensor | None = None  # (B, F, window): the window's raw inputs
        self.steps = 0

    @property
    def ready(self) -> bool:
        """Whether a whole window has been seen (``step`` returns outputs from then on)."""
        return self.steps >= self.window

    def step(self, x_t: torch.Tensor) -> torch.Tensor | None:
        """One event per stream ``(batch, features)``: ``model(window)`` ``(batch, ...)`` once the window is full."""
        feature = self.conv_stream.step(x_t)  # (B, C)
        with torch.inference_mode():
            if self._features is None:
                self._features = feature.new_zeros(*feature.shape, self.window - self.reach)
                self._inputs = x_t.new_zeros(*x_t.shape, self.window)
            self._features = torch.cat([self._features[..., 1:], feature.unsqueeze(-1)], dim=-1)
            self._inputs = torch.cat([self._inputs[..., 1:], x_t.unsqueeze(-1)], dim=-1)
            self.steps += 1
            if not self.ready:
                return None
            start = self._conv(self._inputs[..., :self.reach])  # (B, C, reach): after the window start's zeros
            self._replay.features = torch.cat([start, self._features], dim=-1)  # (B, C, window)
            return self._head(self._inputs)

    def reset(self) -> None:
        self.conv_stream.reset()
        self._features = self._inputs = None
        self.steps = 0

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The conv stream's state (keys prefixed ``conv/``) plus the streamed features and the input window."""
        state = {f"conv/{k}": v for k, v in self.conv_stream.state_dict().items()}
        state[STEPS_KEY] = torch.tensor(self.steps, dtype=torch.int64)
        if self._features is not None:
            state["features"], state["inputs"] = self._features.clone(), self._inputs.clone()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.conv_stream.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("conv/")})
        self.steps = int(state[STEPS_KEY])
        self._features = state["features"].clone() if "features" in state else None
        self._inputs = state["inputs"].clone() if "inputs" in state else None


def _padding_reach(module: nn.Module) -> int:
    """Steps after a window start that still see its zero padding: at most the sum of the causal convs' histories
    (the receptive field - 1 of a chain of convs; more than needed, never less, where branches run in parallel)."""
    return sum(m.geometry.dilation * (m.geometry.kernel_size - 1) for m in module.modules()
               if isinstance(m, Conv1d) and conv_role(m) == "causal")


def _eval_tree(module: nn.Module, replace: dict[str, nn.Module] | None = None) -> nn.Module:
    """Shallow eval-mode copies of ``module`` and everything below it (parameters shared); ``replace`` swaps
    direct children of ``module`` by name."""
    memo: dict[int, nn.Module] = {}

    def visit(m: nn.Module) -> nn.Module:
        if id(m) not in memo:
            c = _copy_module(m)
            c.__dict__["_modules"] = {n: None if ch is None else visit(ch) for n, ch in m._modules.items()}
            memo[id(m)] = c
        return memo[id(m)]

    root = _copy_module(module)
    root.__dict__["_modules"] = {n: (replace[n] if replace and n in replace else None if ch is None else visit(ch))
                                 for n, ch in module._modules.items()}
    return root


# --------------------------------------------------------------------------------------------------------------------
# WaveNet generation
# --------------------------------------------------------------------------------------------------------------------

def generate(wavenet: nn.Module, n_samples: int, batch_size: int = 1, temperature: float = 1.0,
             global_condition: torch.Tensor | None = None, first_code: int | None = None,
             generator: torch.Generator | None = None, backend: Backend = "auto") -> torch.Tensor:
    """Sample mu-law codes autoregressively from a categorical WaveNet with the streaming engine.

    Each step feeds the one-hot of the previous code (:func:`dilated.models.mulaw.one_hot`), samples the next code from
    ``softmax(logits / temperature)`` (by the Gumbel-max trick; ``temperature=0``: argmax) and feeds it back.

    Args:
        wavenet: :class:`dilated.models.WaveNet` with ``output="categorical"`` (logits over its input codes).
        n_samples: codes to generate per stream.
        batch_size: independent sequences.
        temperature: softmax temperature (> 0), or 0 for greedy decoding.
        global_condition: ``(batch, global_channels)`` for a globally conditioned WaveNet.
        first_code: the code fed at step 0 (default: the code of silence, ``quantization_channels // 2``).
        generator: for reproducible sampling.
        backend: see :func:`stream`.

    Returns:
        int64 codes ``(batch, n_samples)``; :func:`dilated.models.mulaw.mu_law_decode` turns them into audio.
    """
    config = wavenet.config
    if config.output != "categorical":
        raise ValueError(f"generate() samples a categorical WaveNet; this one has output={config.output!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    q = config.quantization_channels
    if config.input_channels != q:
        raise ValueError(f"generate() feeds one-hot codes back: input_channels ({config.input_channels}) must equal "
                         f"quantization_channels ({q})")
    if config.local_channels:
        raise ValueError("generate() does not take local conditioning; step a Stream with local_upsampled=True")
    s = stream(wavenet, batch_size, backend=backend)
    kwargs = {} if global_condition is None else {"global_condition": global_condition}
    code = torch.full((batch_size,), q // 2 if first_code is None else first_code, dtype=torch.int64)
    eye = torch.eye(q)
    codes = torch.empty(n_samples, batch_size, dtype=torch.int64)
    with torch.inference_mode():
        noise = torch.empty(batch_size, q)
        for t in range(n_samples):
            logits = s.step(eye[code], **kwargs)  # (B, q)
            if temperature == 0:
                code = logits.argmax(-1)
            else:  # Gumbel-max: argmax(logits / T + Gumbel noise) is a sample of softmax(logits / T)
                noise.exponential_(generator=generator)
                code = (logits / temperature - noise.log_()).argmax(-1)
            codes[t] = code
    return codes.T.contiguous()
