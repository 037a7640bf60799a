"""The eager streaming engine: the model's own ``forward`` on a shadow module tree with stateful layers.

The "fast WaveNet" idea (Paine et al., "Fast Wavenet Generation Algorithm", 2016, arXiv:1611.09482): a causal
dilated stack recomputes nothing it has computed before if each layer keeps the inputs its dilated taps will still
need. :class:`EagerStream` runs the model's own ``forward`` on a chunk ``(batch, channels, n)`` with every layer that
mixes time steps replaced by a stateful copy that remembers the inputs it still needs
(:mod:`dilated.streaming._shadow`: causal convs, padded torch convs with a right trim, pads before unpadded convs).
Zero history is exactly the zero padding, so step ``t`` equals ``model(x)[..., t]`` from the very first step; no
per-model code is needed.

The user's model is never modified: the stream runs on a *shadow* of its module tree (shallow copies in eval mode
that share the parameters), so a stream reads the model's current weights at every step (a reassigned parameter
too: :mod:`dilated.streaming._weights`).

Refused with a ``ValueError`` naming the layer (at construction; see ``strict``): convs that see the future,
strided convs, pooling, non-zero padding, and layers that mix every step (attention, RNNs, flatten). At
construction the stream also checks itself against the model's own ``forward``
(:func:`dilated.streaming._verify.verify`), which catches time mixing written directly in a ``forward``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dilated.streaming._shadow import Clock, PadMode, Refused, Shadow, StatefulPad
from dilated.streaming._verify import Case, NotAnInput, example_inputs, verify
from dilated.streaming._weights import Weights

STEPS_KEY = "steps"


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


class EagerStream:
    """Step-by-step inference of a causal model for ``batch_size`` independent streams (eager PyTorch).

    Args:
        model: a causal module: its time mixing is causal stride-1 convs (``dilated.layers.Conv1d``, or torch convs
            padded on the left, or padded on both sides and trimmed on the right) and zero pads before unpadded
            convs; everything else acts on each step alone (WaveNet, TCN, locuslab's and pytorch-tcn's TCNs, conv
            stacks). It is not modified; the stream follows its weights, changed in place or reassigned. A model in
            train mode is refused only where the mode changes its output (dropout, batch statistics).
        batch_size: number of independent streams stepped together.
        strict: raise ``ValueError`` at construction if the model holds a layer that cannot be streamed
            (a conv that sees the future, strided conv, pooling, attention, RNN, flatten); with ``strict=False`` the
            error is raised only if such a layer is called (for models holding layers they skip while streaming).
        verify: check the stream against the model's own ``forward`` before its first output (random inputs of
            several lengths, scales and batch sizes in the model's dtype, see :mod:`dilated.streaming._verify`),
            and raise ``ValueError`` naming the first layer that disagrees. ``verify=False`` is the only way to
            skip it: then nothing proves the stream equal to the model; use it only for a model whose stream has
            been checked already (e.g. when building thousands of streams of it).
        example: an input like the model's ``(batch, channels, time)`` (any batch and length) for the check at
            construction; by default the input is inferred from the model's first conv or embedding, and where
            that fails (or with ``strict=False``) the check runs at the first step, on the real input's shape.
        like: a stream of the same model to copy what running teaches (padding channels, ``F.pad`` calls) from.

    Inputs follow the model's layout with the time axis last: ``step`` takes ``(batch, channels)``, ``step_many``
    ``(batch, channels, n)``. Extra arguments (e.g. WaveNet's ``global_condition (batch, G)``) are passed to the
    model's ``forward`` unchanged at every call; a per-step input such as local conditioning must be given for the
    same steps as ``x``. A model that returns only its last step (e.g. a TCN with ``last_step_only``) gives
    ``(batch, out)`` per step; ``step_many`` then stacks them to ``(batch, out, n)``.

    State: ``state_dict()`` holds ``"steps"`` (int64) and, per stateful layer (a causal conv or a pad, by module
    path; an ``F.pad`` call by its module's path + ``.pad``), its last inputs ``(batch, in_channels, history)``
    oldest first (``history = dilation * (kernel - 1)`` for a conv, the left padding for a pad); tensors only,
    so ``torch.save`` / ``torch.load(weights_only=True)`` and safetensors both work. The same format is used by
    :class:`dilated.streaming._fast.FastStream`, so a service can move state between the two.
    """

    def __init__(
        self,
        model: nn.Module,
        batch_size: int = 1,
        strict: bool = True,
        verify: bool = True,
        example: torch.Tensor | None = None,
        like: EagerStream | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"EagerStream takes a torch.nn.Module, got {type(model).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.model, self.batch_size, self.strict = model, batch_size, strict
        self._clock = Clock()
        self.tree = Shadow(model, batch_size, self._clock)
        self.convs = self.tree.stateful  # every stateful layer by module path (convs and pads)
        self.refused = [m for m in self.tree.root.modules() if isinstance(m, Refused)]
        if strict and self.refused:
            first = self.refused[0]
            more = f" (and {len(self.refused) - 1} more)" if len(self.refused) > 1 else ""
            raise ValueError(
                f"cannot stream layer {first.path!r} ({first.type_name}){more}: {first.reason}. "
                "If the model never calls it while streaming, pass strict=False"
            )
        self.steps = 0
        self._per_step_output: bool | None = None
        self.verified: float | None = None  # the check's largest difference, once it has passed
        self.cases: list[Case] = []  # the check's inputs and the forward's outputs (the long one last)
        self._pending = verify
        self.weights = Weights(model)
        if like is not None:
            self.tree.adopt(like.tree)
        if verify and strict:  # (strict=False: the model holds layers it may skip; the first step checks it)
            for candidate in [example] if example is not None else example_inputs(model):
                try:
                    self.prepare(candidate, inferred=example is None)
                    break
                except NotAnInput:  # the forward refuses this inferred input: the next one, else the first step
                    pass

    # -- the construction check ---------------------------------------------------------------------------------
    def prepare(self, x: torch.Tensor, *args: Any, inferred: bool = False, **kwargs: Any) -> None:
        """Check this stream against the model's forward now, on random inputs shaped like ``x`` ``(batch,
        channels, time)`` and the extra arguments (:func:`dilated.streaming._verify.verify`, on a one-stream twin),
        and learn the layout that padding layers and ``F.pad`` calls only show when run. Runs once."""
        if not self._pending:
            return
        self._pending = False
        twins: list[EagerStream] = []

        def twin(streams: int) -> EagerStream:
            twins.append(EagerStream(self.model, streams, strict=self.strict, verify=False, like=self))
            return twins[-1]

        field = 1 + sum(layer.history for layer in self.convs.values())
        try:
            self.verified, self.cases = verify(self.model, twin, x, args, kwargs, field, inferred)
        except NotAnInput:
            self._pending = True
            raise
        self.tree.adopt(twins[-1].tree)

    # -- stepping ---------------------------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """``"eager"``: the engine that runs the steps (see :class:`~dilated.streaming.StreamEngine`)."""
        return "eager"

    @property
    def receptive_field(self) -> int:
        """``1 + sum of the stateful convs' histories`` along the longest path, when the model declares it."""
        declared = getattr(self.model, "receptive_field", None)
        return declared if isinstance(declared, int) else 1 + max((c.history for c in self.convs.values()), default=0)

    def run(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """One pass of the model's ``forward`` over the chunk ``x`` ``(batch, channels, n)`` on the shadow tree: the
        conv histories advance, :attr:`steps` does not, and autograd is left as the caller set it (exporters and
        tracers see every op). :meth:`step` and :meth:`step_many` are this plus the bookkeeping."""
        self._clock.call, self._clock.n = self._clock.call + 1, x.shape[-1]
        if self.tree.sites == []:  # no F.pad calls in any forward: run without the pad interception
            return self.tree.root(x, *args, **kwargs)
        mode = PadMode(self.tree)
        hooks = []
        if mode.discovering:  # name each F.pad call after the module making it
            hooks = [
                nn.modules.module.register_module_forward_pre_hook(mode.enter_module),
                nn.modules.module.register_module_forward_hook(mode.leave_module),
            ]
        try:
            with mode:
                return self.tree.root(x, *args, **kwargs)
        finally:
            for hook in hooks:
                hook.remove()

    def _forward(self, x: torch.Tensor, args: tuple, kwargs: dict) -> Any:
        if self.weights.reassigned() is not None:  # (in-place changes need nothing: the shadow shares the tensors)
            self.tree.resync()
            self.weights.read()
        with torch.inference_mode():
            return self.run(x, *args, **kwargs)

    def step(self, x_t: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """One step for every stream: ``(batch, channels) -> (batch, out_channels)``."""
        self._check_batch(x_t)
        if self._pending:
            self.prepare(x_t.unsqueeze(-1), *args, **kwargs)
        out = self._forward(x_t.unsqueeze(-1), args, kwargs)
        self.steps += 1
        return _map_tensors(lambda y: y.squeeze(-1) if y.dim() >= 3 else y, out)

    def step_many(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """A chunk of ``n`` steps for every stream: ``(batch, channels, n) -> (batch, out_channels, n)``."""
        self._check_batch(x)
        n = x.shape[-1]
        if n < 1:
            raise ValueError("step_many needs at least one step")
        if self._pending:
            self.prepare(x, *args, **kwargs)
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
        """Resume from :meth:`state_dict` (of this engine or of a :class:`~dilated.streaming._fast.FastStream`)."""
        for path, layer in self.convs.items():  # a padding layer not run yet learns its channels from the state
            if isinstance(layer, StatefulPad) and layer.in_channels is None and path in state:
                layer.learn_channels(state[path].shape[1], state[path].dtype)
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
            raise ValueError(
                f"stream state {path!r} has shape {tuple(state[path].shape)}, expected {shape} "
                "(batch, in_channels, history)"
            )


def check(
    model: nn.Module, x: torch.Tensor, chunk_sizes: tuple[int, ...] = (1, 7, 3), atol: float = 1e-5, **kwargs: Any
) -> float:
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
    s, outs, start, i = EagerStream(model, x.shape[0]), [], 0, 0
    while start < x.shape[-1]:
        end = min(start + chunk_sizes[i % len(chunk_sizes)], x.shape[-1])
        outs.append(s.step_many(x[..., start:end], **kwargs))
        start, i = end, i + 1
    error = float((torch.cat(outs, dim=-1) - expected).abs().max())
    if not error <= atol:
        raise ValueError(
            f"streaming differs from the offline forward by {error:.3g} (> {atol}): the model mixes "
            "time steps outside causal dilated.layers.Conv1d layers"
        )
    return error
