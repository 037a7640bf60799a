"""The stream as a pure step function ``(x_t, *state) -> (y_t, *new_state)``, and its ONNX export."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from dilated.streaming.eager import Stream


class StepFunction(nn.Module):
    """The stream as a pure function ``forward(x_t, *state) -> (y_t, *new_state)``, e.g. for ONNX export.

    ``state`` is the stream's conv histories in the order of :attr:`state_names` (the same tensors as in
    :meth:`Stream.state_dict`, without ``"steps"``); zeros start a stream. Extra ``forward`` arguments of the
    model that are not per-step tensors (e.g. ``local_upsampled=True``) are fixed with ``model_kwargs``.
    """

    engine: Stream  # set unregistered in __init__: the exporters see the model's parameters once, through model

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
        y = self.engine.run(x_t.unsqueeze(-1), **self.model_kwargs)
        return (y.squeeze(-1) if y.dim() >= 3 else y, *(conv.state for conv in convs))


def export_onnx(
    model: nn.Module, path: str, x_t: torch.Tensor, opset_version: int = 17, **model_kwargs: Any
) -> StepFunction:
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
        torch.onnx.export(
            fn,
            (x_t, *state),
            path,
            input_names=["x", *names],
            output_names=["y", *(f"new_{n}" for n in names)],
            opset_version=opset_version,
            dynamo=False,
        )
    return fn
