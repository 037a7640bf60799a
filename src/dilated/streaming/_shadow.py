"""The shadow module tree a stream runs: the model's modules as eval-mode copies, with every layer that mixes time
steps recognised by what it does to the time axis and replaced by a stateful equivalent (or refused).

Time is the last axis of a ``(batch, channels, time)`` tensor and the first spatial axis of a 4-D one (``Conv2d``
layouts ``(batch, channels, time, features)``). A layer that mixes time is recognised by behaviour, not by class
name: anything that is a torch convolution (subclasses, ``weight_norm`` old and new, ``spectral_norm``, pytorch-tcn's
``TemporalConv1d``) or declares a :mod:`dilated.geometry` (``dilated.layers.Conv1d``), every padding module, pooling
and global stages (attention, RNNs, flatten), and ``F.pad`` called inside a ``forward`` (:class:`PadMode`).

* a conv padded ``(span - 1, right)`` on the time axis becomes a :class:`StatefulConv`: it keeps its last
  ``span - 1`` inputs (zero history is exactly the zero padding) and convolves history + chunk without padding;
* a zero pad ``(left, right)`` becomes a :class:`StatefulPad` that prepends its last ``left`` inputs, so the unpadded
  conv after it (``F.pad(x, (k - 1, 0))`` + ``nn.Conv1d``, ``nn.ConstantPad1d``, pytorch-tcn) needs no state;
* right padding produces steps that depend on the future: they are emitted as NaN, so a right trim (locuslab's
  ``Chomp1d``, ``x[:, :, :-n]``) removes them as offline, and any that survive show up as NaN instead of silently
  wrong numbers (the construction check names the layer, :mod:`dilated.streaming._verify`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from dilated.analysis import geometry_of
from dilated.geometry import Layer, padding_amounts
from dilated.layers import Conv1d

GLOBAL_REASON = (
    "it mixes every time step (attention, RNN, flatten or global pooling); stream the causal part "
    "before it, or use WindowStream for a model that ends in such a stage"
)


class Clock:
    """Shared by a stream's stateful layers: the forward call in progress and its chunk length ``n``."""

    def __init__(self) -> None:
        self.call, self.n = 0, 0


class _Stateful(nn.Module):
    """Base of the stateful layers: a per-stream history ``state`` ``(batch, channels, history[, features])`` of
    the layer's input, oldest step first, and the checks every call makes."""

    def __init__(
        self,
        path: str,
        in_channels: int | None,
        history: int,
        right: int,
        batch_size: int,
        clock: Clock,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        super().__init__()
        self.path, self.in_channels, self.history, self.right = path, in_channels, history, right
        self.clock, self.last_call, self.batch_size = clock, -1, batch_size
        self.state = torch.zeros(batch_size, in_channels or 0, history, dtype=dtype, device=device)

    def learn_channels(self, channels: int, dtype: torch.dtype = torch.float32) -> None:
        """Fix the channel count of a layer that learns it from its first input (a padding module)."""
        if self.in_channels is None:
            self.in_channels = channels
            self.state = torch.zeros(self.batch_size, channels, self.history, dtype=dtype)

    def _extend(self, x: torch.Tensor) -> torch.Tensor:
        """History + chunk along time, and the new history kept."""
        if self.last_call == self.clock.call:
            raise ValueError(
                f"layer {self.path!r} is called more than once per forward pass; streaming keeps one "
                "history per layer, so give each call its own layer"
            )
        self.last_call = self.clock.call
        if self.in_channels is None and x.dim() in (3, 4):
            self.learn_channels(x.shape[1], x.dtype)
        if x.dim() not in (3, 4) or x.shape[0] != self.batch_size or x.shape[1] != self.in_channels:
            raise ValueError(
                f"layer {self.path!r}: expected a chunk ({self.batch_size}, {self.in_channels}, n), "
                f"got {tuple(x.shape)}"
            )
        if x.shape[2] != self.clock.n:
            raise ValueError(
                f"layer {self.path!r} receives {x.shape[2]} time steps for a chunk of {self.clock.n}: "
                "steps added by padding reach it before being trimmed (pad once per time-mixing layer, "
                "right before it)"
            )
        if self.state.dim() != x.dim():  # a 4-D layout (B, C, T, F): the history gets the feature axis
            self.state = (
                self.state.reshape(*self.state.shape, *([1] * (x.dim() - 3)))
                .expand(*self.state.shape, *x.shape[3:])
                .contiguous()
            )
        if not self.history:
            return x
        h = torch.cat([self.state, x.to(self.state.dtype)], dim=2)  # (B, C, history + n, ...)
        self.state = h[:, :, h.shape[2] - self.history :]
        return h

    def _future(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` followed by the ``right`` steps that right padding adds, as NaN: they depend on the future."""
        if not self.right:
            return y
        shape = list(y.shape)
        shape[2] = self.right
        return torch.cat([y, y.new_full(shape, float("nan"))], dim=2)


class StatefulConv(_Stateful):
    """A conv padded ``(span - 1, right)`` on the time axis, stride 1, made stateful: it remembers its last
    ``span - 1`` inputs per stream, so consecutive chunks give the offline output; the ``right`` extra steps of
    the offline output (computed from right padding) come out as NaN.

    It runs the user's own conv (a shallow copy without time padding: its hooks, parametrizations and ``forward``
    stay as they are, so weight norm and subclasses work and read their current parameters).

    Shapes:
        input ``(batch, in_channels, n[, features])``; ``state`` ``(batch, in_channels, span - 1[, features])``;
        output ``(batch, out_channels, n + right[, features])``.
    """

    inner: nn.Module  # the user's conv without time padding (set unregistered in __init__)

    def __init__(self, conv: nn.Module, path: str, layer: Layer, right: int, batch_size: int, clock: Clock) -> None:
        weight = next(conv.parameters())
        # a conv by behaviour (torch's, a subclass, one declaring its geometry): these attributes are ints
        super().__init__(
            path, cast(int, conv.in_channels), layer.span - 1, right, batch_size, clock, weight.dtype, weight.device
        )
        self.layer, self.out_channels, self.groups = layer, cast(int, conv.out_channels), cast(int, conv.groups)
        inner = copy_module(conv)
        if isinstance(conv, Conv1d):
            inner.__dict__["_padding"] = (0, 0)
        else:
            inner.__dict__["padding"] = (0, *_feature_padding(conv))
        object.__setattr__(self, "inner", inner)  # not registered: the shadow tree never owns the user's modules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._future(self.inner(self._extend(x)))

    def weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The conv's ``(weight, bias)`` as its last call used them (parametrizations apply on access; the old
        ``weight_norm`` API recomputes ``weight`` before each call)."""
        return cast(torch.Tensor, self.inner.weight), cast("torch.Tensor | None", self.inner.bias)

    def extra_repr(self) -> str:
        return f"{self.path!r}, {self.in_channels}, {self.out_channels}, history={self.history}, right={self.right}"


class StatefulPad(_Stateful):
    """A zero pad ``(left, right)`` of the time axis made stateful: it prepends its last ``left`` inputs instead of
    zeros (zero history is the offline padding) and appends ``right`` NaN steps; ``other`` pads the other axes as
    the original does.

    Shapes:
        input ``(batch, channels, n[, features])``, output ``(batch, channels, left + n + right[, features])``.
    """

    def __init__(
        self,
        path: str,
        channels: int | None,
        left: int,
        right: int,
        other: tuple[int, ...],
        batch_size: int,
        clock: Clock,
    ) -> None:
        super().__init__(path, channels, left, right, batch_size, clock, torch.float32, torch.device("cpu"))
        self.other = other

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.state.dtype != x.dtype or self.state.device != x.device:
            self.state = self.state.to(dtype=x.dtype, device=x.device)
        y = self._future(self._extend(x))
        return F.pad(y, self.other) if any(self.other) else y

    def extra_repr(self) -> str:
        return f"{self.path!r}, {self.in_channels}, left={self.history}, right={self.right}"


class Refused(nn.Module):
    """Stands in for a layer the stream cannot run step by step; raises ``ValueError`` naming it when called."""

    def __init__(self, path: str, module: nn.Module, reason: str) -> None:
        super().__init__()
        self.path, self.type_name, self.reason = path, type(module).__name__, reason

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"cannot stream layer {self.path!r} ({self.type_name}): {self.reason}")


# -- recognising what a module does to the time axis -----------------------------------------------------------


def _feature_padding(conv: nn.Module) -> tuple[int, ...]:
    """The padding of a 2-D conv's feature axis (empty for 1-D convs)."""
    if isinstance(conv, nn.Conv1d) or not isinstance(conv, nn.modules.conv._ConvNd):
        return ()
    if isinstance(conv.padding, str):
        total = conv.dilation[1] * (conv.kernel_size[1] - 1)
        if conv.padding == "valid":
            return (0,)
        return (total // 2,) if total % 2 == 0 else (-1,)
    return (int(conv.padding[1]),)


def time_layer(module: nn.Module) -> Layer | None:
    """The time-axis geometry of a conv (torch's, a subclass, a parametrized one, or one declaring a single
    :class:`~dilated.geometry.Layer`), else ``None``."""
    if isinstance(module, nn.modules.conv._ConvNd) or (
        isinstance(getattr(module, "geometry", None), Layer) and hasattr(module, "weight")
    ):
        layers, kind = geometry_of(module)
        return layers[0] if kind == "conv" and len(layers) == 1 else None
    return None


def _conv_refusal(module: nn.Module, layer: Layer) -> str | None:
    """Why a conv cannot stream, or ``None``."""
    if layer.stride != 1:
        return f"{layer.describe()}: a strided conv outputs fewer steps than it reads; only stride-1 convs stream"
    left, right = padding_amounts(layer, layer.span)
    if isinstance(module, nn.modules.conv._ConvNd):
        if (left or right) and module.padding_mode != "zeros":
            return f"padding_mode={module.padding_mode!r} repeats or mirrors steps; only zero padding streams"
        if _feature_padding(module) == (-1,):
            return "padding='same' with an odd total on the feature axis"
    if 0 < left < layer.span - 1:
        return (
            f"{layer.describe()}: padded {left} step(s) on the left for a span of {layer.span}, output t sees "
            f"{layer.span - 1 - left} future step(s); pad span - 1 = {layer.span - 1} on the left (or pad "
            "symmetrically and trim the right)"
        )
    if left > layer.span - 1:
        return f"{layer.describe()}: padded {left} steps on the left, more than its span - 1 = {layer.span - 1}"
    return None


def _pad_amounts(module: nn.Module) -> tuple[int, int] | None:
    """``(left, right)`` time padding of a padding module (e.g. ``ConstantPad1d``), or ``None`` if it is not one."""
    if not isinstance(
        module,
        nn.modules.padding._ConstantPadNd
        | nn.modules.padding._ReflectionPadNd
        | nn.modules.padding._ReplicationPadNd
        | nn.modules.padding._CircularPadNd,
    ):
        return None
    padding = tuple(module.padding)  # last axis first: (left, right) of time is the first pair of a 1-D pad, the
    at = 0 if len(padding) == 2 else 2  # second of a 2-D one (time is the first spatial axis of (B, C, T, F))
    return padding[at], padding[at + 1]  # (left, right) of the last axis


def _pad_refusal(module: nn.Module, left: int, right: int) -> str | None:
    if not (left or right):
        return None
    if not isinstance(module, nn.modules.padding._ConstantPadNd):
        return f"{type(module).__name__} repeats or mirrors steps; only zero padding streams"
    if module.value != 0:
        return f"pads with {module.value}, not zero; only zero padding streams (history starts at zero)"
    if len(module.padding) != 2:
        return "a 2-D or 3-D padding module; pad the time axis with ConstantPad1d / ZeroPad1d"
    return None


def copy_module(module: nn.Module) -> nn.Module:
    """A shallow copy in eval mode sharing parameter and buffer tensors, with its own attribute dicts."""
    clone = type(module).__new__(type(module))  # not copy.copy: parametrized modules refuse __getstate__
    clone.__dict__.update(module.__dict__)
    clone.__dict__["_parameters"] = dict(module._parameters)
    clone.__dict__["_buffers"] = dict(module._buffers)
    clone.__dict__["training"] = False
    return clone


def _is_time_pointwise(layer: Layer) -> bool:
    return layer.kind == "pointwise" or (
        layer.kernel_size == 1 and layer.stride == 1 and padding_amounts(layer, 1) == (0, 0)
    )


def _other_refusal(module: nn.Module) -> str | None:
    """Why a module that is neither a conv nor a pad cannot be streamed, or ``None``; ``""``: look inside."""
    layers, kind = geometry_of(module)
    if kind == "global":
        return GLOBAL_REASON
    if any(not _is_time_pointwise(layer) for layer in layers):
        if list(module.children()):
            return ""
        described = ", ".join(layer.describe() for layer in layers)
        return f"it mixes time steps as {described} (pooling or another layer without a stateful form)"
    return None


class Shadow:
    """The shadow tree of ``model`` (:attr:`root`), its stateful layers by module path (:attr:`stateful`) and the
    path of every shadow module (:attr:`paths`, keyed by ``id``)."""

    def __init__(self, model: nn.Module, batch_size: int, clock: Clock) -> None:
        self.batch_size, self.clock = batch_size, clock
        self.stateful: dict[str, _Stateful] = {}
        self.paths: dict[int, str] = {}
        self.originals: dict[int, nn.Module] = {}  # id(shadow module) -> the user's module
        self.sites: list[StatefulPad] | None = None  # the F.pad calls of forwards, once discovered (PadMode)
        self._memo: dict[int, nn.Module] = {}
        self.root = self._visit(model, "")

    def _visit(self, module: nn.Module, path: str) -> nn.Module:
        if id(module) in self._memo:  # a module used twice stays one (shared) module
            return self._memo[id(module)]
        where = path or type(module).__name__
        shadow = self._replace(module, where)
        if shadow is None:
            shadow = copy_module(module)
            shadow.__dict__["_modules"] = {
                name: None if child is None else self._visit(child, f"{path}.{name}" if path else name)
                for name, child in module._modules.items()
            }
        if isinstance(shadow, _Stateful):
            self.stateful[where] = shadow
        self._memo[id(module)] = shadow
        self.paths[id(shadow)], self.originals[id(shadow)] = where, module
        return shadow

    def _replace(self, module: nn.Module, where: str) -> nn.Module | None:
        """The stand-in for a module that mixes time (stateful or refused), or ``None`` to copy it as is."""
        if isinstance(module, nn.modules.conv._ConvNd) and not isinstance(module, nn.Conv1d | nn.Conv2d):
            return Refused(
                where, module, "a transposed or 3-D conv; Conv1d and Conv2d (time as the first spatial axis) stream"
            )
        layer = time_layer(module)
        if layer is not None:
            reason = _conv_refusal(module, layer)
            if reason:
                return Refused(where, module, reason)
            left, right = padding_amounts(layer, layer.span)
            if left == layer.span - 1 and left > 0:
                return StatefulConv(module, where, layer, right, self.batch_size, self.clock)
            return None  # pointwise or unpadded: stateless (an unpadded conv reads the history of a pad before it)
        pads = _pad_amounts(module)
        if pads is not None:
            reason = _pad_refusal(module, *pads)
            if reason:
                return Refused(where, module, reason)
            return StatefulPad(where, None, *pads, (), self.batch_size, self.clock) if any(pads) else None
        reason = _other_refusal(module)
        return Refused(where, module, reason) if reason else None

    def resync(self) -> None:
        """Point every shadow module (and each stateful conv's copy of the user's conv) at the user's current
        parameter and buffer tensors, after one was reassigned."""
        for original in self.originals.values():
            shadow = self._memo[id(original)]
            if isinstance(shadow, StatefulConv):
                shadow = shadow.inner
            elif isinstance(shadow, _Stateful | Refused):
                continue
            shadow.__dict__["_parameters"] = dict(original._parameters)
            shadow.__dict__["_buffers"] = dict(original._buffers)

    def adopt(self, other: Shadow) -> None:
        """Take what a twin (the same model, another batch size) learnt from running: the channels of padding
        modules and the ``F.pad`` calls of forwards."""
        for path, layer in other.stateful.items():
            mine = self.stateful.get(path)
            if isinstance(mine, StatefulPad) and layer.in_channels is not None:
                mine.learn_channels(layer.in_channels, layer.state.dtype)
        if other.sites is not None and self.sites is None:
            self.sites = [self._pad(p.path, p.in_channels, p.history, p.right, p.other) for p in other.sites]

    def add_site(self, path: str, channels: int | None, left: int, right: int, other: tuple[int, ...]) -> StatefulPad:
        """A stateful pad for an ``F.pad`` call made by the module at ``path`` (state key ``path + ".pad"``,
        numbered from the second call on)."""
        key, i = f"{path}.pad", 1
        while key in self.stateful:
            key, i = f"{path}.pad{i}", i + 1
        return self._pad(key, channels, left, right, other)

    def _pad(self, key: str, channels: int | None, left: int, right: int, other: tuple[int, ...]) -> StatefulPad:
        """The stateful pad of state key ``key`` (a twin's site keeps its key)."""
        pad = StatefulPad(key, channels, left, right, other, self.batch_size, self.clock)
        self.stateful[key] = pad
        return pad


class PadMode(TorchFunctionMode):
    """Makes the ``F.pad`` calls written in a model's ``forward`` that pad the time axis with zeros stateful.

    The first forward discovers them (``shadow.sites is None``): each call, in order, gets a :class:`StatefulPad`
    named after the module making it; later forwards use them in the same order. A non-zero or non-constant time pad
    raises, naming the module."""

    def __init__(self, shadow: Shadow) -> None:
        super().__init__()
        self.shadow, self.discovering = shadow, shadow.sites is None
        self.found: list[StatefulPad] = []
        self.stack: list[str] = []

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is not F.pad or not args or not isinstance(args[0], torch.Tensor) or args[0].dim() not in (3, 4):
            return func(*args, **kwargs)
        x, pad = args[0], tuple(args[1] if len(args) > 1 else kwargs["pad"])
        mode = args[2] if len(args) > 2 else kwargs.get("mode", "constant")
        value = args[3] if len(args) > 3 else kwargs.get("value", None)
        at = 2 * (x.dim() - 3)  # the time axis's (left, right) in F.pad's last-axis-first order
        left, right = (pad[at], pad[at + 1]) if len(pad) > at + 1 else (0, 0)
        if not (left or right):
            return func(*args, **kwargs)
        where = self.stack[-1] if self.stack else "forward"
        if mode != "constant" or (value or 0) != 0:
            raise ValueError(
                f"cannot stream layer {where!r}: its forward pads the time axis with F.pad(mode="
                f"{mode!r}, value={value}); only zero padding streams"
            )
        other = tuple(0 if i in (at, at + 1) else p for i, p in enumerate(pad))
        if self.discovering:
            site = self.shadow.add_site(where, None, left, right, other)
        else:
            sites = self.shadow.sites
            assert sites is not None  # not discovering: the first forward found them
            site = sites[len(self.found)]
        self.found.append(site)
        return site(x)

    def enter_module(self, module: nn.Module, args: Any) -> None:
        self.stack.append(self.shadow.paths.get(id(module), self.stack[-1] if self.stack else "forward"))

    def leave_module(self, module: nn.Module, args: Any, out: Any) -> None:
        self.stack.pop()

    def __exit__(self, *exc: Any) -> Any:
        if self.discovering and exc[0] is None:
            self.shadow.sites = self.found
        return super().__exit__(*exc)
