"""The step engines behind a live stream, and the choice among them (see :mod:`dilated.live._predictor`): the first
of ``"stream"``, ``"window"`` that builds and equals ``model(window)`` within :data:`PARITY` on random windows, else
``"recompute"``. Each takes one event ``(batch, channels)`` per step and gives the model's output once its first
window is full."""

from __future__ import annotations

from typing import Literal, Protocol

import torch
from torch import Tensor, nn

from dilated.analysis import geometry_of
from dilated.streaming import Backend, EagerStream, StreamEngine, WindowStream, stream
from dilated.training import Task, align_output

Engine = Literal["stream", "window", "recompute"]
PARITY = 1e-5  # largest difference allowed between a streamed output and model(window)
_CHECK_WINDOWS = 8  # windows after the first on which an engine is checked against model(window)


class StepEngine(Protocol):
    def step(self, x_t: Tensor) -> Tensor | None: ...


def window_output(output: Tensor, task: Task) -> Tensor:
    """``(B, classes)`` or ``(B,)``: the output for each window (its last step, for per-step outputs)."""
    placeholder = torch.zeros(len(output), dtype=torch.long if task.is_classification else torch.float32)
    return align_output(output, placeholder, task)


def choose_engine(model: nn.Module, channels: int, window: int, task: Task, backend: Backend) -> tuple[Engine, float]:
    """The first engine that builds and equals ``model(window)`` within :data:`PARITY` on random windows, and the
    largest difference it showed."""
    inputs = torch.randn(1, channels, window + _CHECK_WINDOWS, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = window_output(model(inputs.unfold(2, window, 1)[0].transpose(0, 1)), task)
    for name in ("stream", "window"):
        try:
            engine = make_engine(name, model, 1, window, backend)
            steps = [engine.step(inputs[..., t]) for t in range(inputs.shape[-1])]
            streamed = torch.cat([window_output(_filled(out), task) for out in steps[window - 1 :]])
        except Exception:  # noqa: BLE001 - the model lacks this engine's structure (a refused layer, a module
            continue  # that its forward does not call on the input, ...): the next engine is tried
        error = float((streamed - expected).abs().max())
        if error <= PARITY:
            return name, error
    return "recompute", 0.0


def make_engine(name: Engine, model: nn.Module, batch_size: int, window: int, backend: Backend) -> StepEngine:
    """The engine ``name`` for ``batch_size`` streams of ``model`` over windows of ``window`` events."""
    if name == "stream":
        receptive_field = getattr(model, "receptive_field", None)
        if receptive_field is not None and receptive_field > window:
            raise ValueError(f"receptive field {receptive_field} > window {window}")
        return _CausalEngine(stream(model, batch_size, backend), window)
    if name == "window":
        for child, module in model.named_children():
            if _holds_causal_conv(module):
                try:
                    EagerStream(module, 1)
                except ValueError:
                    continue
                return WindowStream(model, batch_size, window, conv=child, backend=backend)
        raise ValueError("no causal conv module to stream")
    return _Recompute(model, window)


def _holds_causal_conv(module: nn.Module) -> bool:
    """Whether any layer below ``module`` mixes time steps like a conv (kernel wider than one step)."""
    return any(layer.kind == "conv" and layer.span > 1 for m in module.modules() for layer in geometry_of(m)[0])


def _filled(output: Tensor | None) -> Tensor:
    """A step's output once the engine's first window is full (None there: the engine is broken)."""
    if output is None:
        raise ValueError("the engine gave no output after a full window")
    return output


class _CausalEngine:
    """:func:`dilated.stream` of a causal model, silent until its first window is full."""

    def __init__(self, engine: StreamEngine, window: int) -> None:
        self.engine, self.window, self.steps = engine, window, 0

    def step(self, x_t: Tensor) -> Tensor | None:
        out = self.engine.step(x_t)
        self.steps += 1
        return out if self.steps >= self.window else None


class _Recompute:
    """``model(window)`` on the last ``window`` events at every step."""

    def __init__(self, model: nn.Module, window: int) -> None:
        self.model, self.window, self.steps = model, window, 0
        self.inputs: Tensor | None = None  # (B, C, window), oldest first

    def step(self, x_t: Tensor) -> Tensor | None:
        if self.inputs is None:
            self.inputs = x_t.new_zeros(*x_t.shape, self.window)
        self.inputs = torch.cat([self.inputs[..., 1:], x_t.unsqueeze(-1)], dim=-1)
        self.steps += 1
        if self.steps < self.window:
            return None
        with torch.inference_mode():
            return self.model(self.inputs)
