"""Windowed models (TransLOB): a causal conv module streamed, then a global stage over the last window."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dilated.analysis import geometry_of
from dilated.streaming._eager import STEPS_KEY
from dilated.streaming._interface import Backend, stream
from dilated.streaming._shadow import copy_module


class _Replay(nn.Module):
    """Returns the cached window of conv features instead of recomputing them."""

    def __init__(self) -> None:
        super().__init__()
        self.features: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert self.features is not None  # WindowStream.step sets them before running the head
        return self.features


class WindowStream:
    """Streams a model made of a causal conv module followed by a stage over a whole window (TransLOB), with the
    outputs of ``model(window)``.

    Step ``t`` (0-based) returns ``model(x[..., t-window+1:t+1])`` once ``t >= window - 1`` (earlier steps return
    ``None``: the window is not full yet): the conv features of each window's first steps see the zero padding of
    the window start, exactly as in training and ``dilated predict``. The conv module is streamed over the whole
    history by :class:`EagerStream`; a streamed feature equals the window's own from the step where the window start's
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

    def __init__(
        self,
        model: nn.Module,
        batch_size: int = 1,
        window: int | None = None,
        conv: str = "conv",
        backend: Backend = "auto",
    ) -> None:
        self.model, self.batch_size = model, batch_size
        if window is None:
            config: Any = model.config  # the model's config dataclass (TransLOBConfig)
            window = config.window
        self.window = int(window)
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
            if self._features is None or self._inputs is None:  # both or neither
                self._features = feature.new_zeros(*feature.shape, self.window - self.reach)
                self._inputs = x_t.new_zeros(*x_t.shape, self.window)
            self._features = torch.cat([self._features[..., 1:], feature.unsqueeze(-1)], dim=-1)
            self._inputs = torch.cat([self._inputs[..., 1:], x_t.unsqueeze(-1)], dim=-1)
            self.steps += 1
            if not self.ready:
                return None
            start = self._conv(self._inputs[..., : self.reach])  # (B, C, reach): after the window start's zeros
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
        if self._features is not None and self._inputs is not None:  # both or neither
            state["features"], state["inputs"] = self._features.clone(), self._inputs.clone()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.conv_stream.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("conv/")})
        self.steps = int(state[STEPS_KEY])
        self._features = state["features"].clone() if "features" in state else None
        self._inputs = state["inputs"].clone() if "inputs" in state else None


def _padding_reach(module: nn.Module) -> int:
    """Steps after a window start that still see its zero padding: at most the sum of the time-mixing layers' spans
    - 1 (the receptive field - 1 of a chain of convs; more than needed, never less, where branches run in
    parallel). Layers are read by :func:`dilated.analysis.geometry_of`, from the innermost modules that have any
    (a weight-normed conv counts once; a block that declares its layers counts through its convs)."""
    spans = {
        name: sum(layer.span - 1 for layer in geometry_of(m)[0])
        for name, m in module.named_modules()
        if geometry_of(m)[0]
    }
    inner = [n for n in spans if not any(o != n and (n == "" or o.startswith(n + ".")) for o in spans)]
    return sum(spans[n] for n in inner)


def _eval_tree(module: nn.Module, replace: dict[str, nn.Module] | None = None) -> nn.Module:
    """Shallow eval-mode copies of ``module`` and everything below it (parameters shared); ``replace`` swaps
    direct children of ``module`` by name."""
    memo: dict[int, nn.Module] = {}

    def visit(m: nn.Module) -> nn.Module:
        if id(m) not in memo:
            c = copy_module(m)
            c.__dict__["_modules"] = {n: None if ch is None else visit(ch) for n, ch in m._modules.items()}
            memo[id(m)] = c
        return memo[id(m)]

    root = copy_module(module)
    root.__dict__["_modules"] = {
        n: (replace[n] if replace and n in replace else None if ch is None else visit(ch))
        for n, ch in module._modules.items()
    }
    return root
