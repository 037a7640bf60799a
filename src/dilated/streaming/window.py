"""Windowed models (TransLOB): a causal conv module streamed, then a global stage over the last window."""

from __future__ import annotations

import torch
from torch import nn

from dilated.streaming.eager import STEPS_KEY
from dilated.streaming.interface import Backend, stream
from dilated.streaming.shadow import copy_module


class _Replay(nn.Module):
    """Returns the cached window of conv features instead of recomputing them."""

    def __init__(self) -> None:
        super().__init__()
        self.features: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features


class WindowStream:
    """Streams a model made of a causal conv module followed by a stage over a whole window (TransLOB).

    The conv module (``model.<conv>``) is streamed exactly by :class:`Stream`; its outputs for the last ``window``
    steps are kept in a ring, and each step runs the model's own ``forward`` on that window with the conv module
    replaced by the cached features. So the conv work per step is one step, and the global stage (attention) runs
    once over the window.

    Step ``t`` (0-based, ``t >= window - 1``) returns what ``model`` computes on the window ``x[..., t-window+1:t+1]``
    when its conv module sees the whole stream so far (the features of the window's first steps come from their
    real history instead of zero padding); at ``t = window - 1`` that is exactly ``model(x[..., :window])``. Earlier
    steps return ``None``: the window is not full yet.

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
        self.conv_stream = stream(getattr(model, conv), batch_size, backend=backend)
        self._replay = _Replay()
        self._head = _eval_tree(model, {conv: self._replay})
        self._features: torch.Tensor | None = None  # (B, C, window) ring, oldest first
        self._inputs: torch.Tensor | None = None  # (B, F, window): the model's input checks see a real window
        self.steps = 0

    @property
    def ready(self) -> bool:
        """Whether a whole window has been seen (``step`` returns outputs from then on)."""
        return self.steps >= self.window

    def step(self, x_t: torch.Tensor) -> torch.Tensor | None:
        """One event per stream ``(batch, features)``: the model output ``(batch, ...)`` once the window is full."""
        feature = self.conv_stream.step(x_t)  # (B, C)
        with torch.inference_mode():
            if self._features is None:
                self._features = feature.new_zeros(*feature.shape, self.window)
                self._inputs = x_t.new_zeros(*x_t.shape, self.window)
            self._features = torch.cat([self._features[..., 1:], feature.unsqueeze(-1)], dim=-1)
            self._inputs = torch.cat([self._inputs[..., 1:], x_t.unsqueeze(-1)], dim=-1)
            self.steps += 1
            if not self.ready:
                return None
            self._replay.features = self._features
            return self._head(self._inputs)

    def reset(self) -> None:
        self.conv_stream.reset()
        self._features = self._inputs = None
        self.steps = 0

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The conv stream's state (keys prefixed ``conv/``) plus the feature and input windows."""
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
    root.__dict__["_modules"] = {n: (replace[n] if replace and n in replace else None if ch is None else visit(ch))
                                 for n, ch in module._modules.items()}
    return root
