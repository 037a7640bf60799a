"""The stream as a pure step function ``(x_t, *state) -> (y_t, *new_state)``, and its export.

A model's streaming step as an ONNX file, checked against the torch stream with onnxruntime, or as C99 source
(:mod:`dilated.streaming._export_c`); the file's extension chooses.

:func:`export_step` writes the step with :func:`dilated.streaming.export_onnx` (inputs ``x`` ``(batch, channels)``
and ``state_0 ...``; outputs ``y`` and ``new_state_0 ...``), then runs the file in onnxruntime beside
``dilated.stream(model, batch_size)`` on random steps, feeding each ONNX step the state the previous one returned,
and raises ``ValueError`` if any output differs. onnxruntime is optional (``pip install onnxruntime``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dilated._layer_graph import LayerGraph
from dilated.streaming._eager import EagerStream
from dilated.streaming._export_c import ExportedC, export_c
from dilated.streaming._interface import stream


class StepFunction(nn.Module):
    """The stream as a pure function ``forward(x_t, *state) -> (y_t, *new_state)``, e.g. for ONNX export.

    ``state`` is the stream's conv histories in the order of :attr:`state_names` (the same tensors as in
    :meth:`EagerStream.state_dict`, without ``"steps"``); zeros start a stream. Extra ``forward`` arguments of the
    model that are not per-step tensors (e.g. ``local_upsampled=True``) are fixed with ``model_kwargs``.
    """

    engine: EagerStream  # set unregistered in __init__: the exporters see the model's parameters once, through model

    def __init__(self, model: nn.Module, batch_size: int = 1, **model_kwargs: Any) -> None:
        super().__init__()
        engine = EagerStream(model, batch_size)
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


TOLERANCE = 1e-4  # float32, after many steps
EXTENSIONS = (".onnx", ".c")  # the formats export_step writes


@dataclass(frozen=True)
class ExportedStep:
    """What :func:`export_step` wrote and checked."""

    path: Path
    input_shape: tuple[int, int]  # (batch, channels) of one step
    state_names: list[str]  # the stream's conv paths, in the order of the state_i inputs
    steps_checked: int
    max_abs_diff: float


def export_step(
    model: nn.Module,
    path: str | Path,
    channels: int | None = None,
    batch_size: int = 1,
    check_steps: int = 16,
    seed: int = 0,
    prefix: str = "dilated",
) -> ExportedStep | ExportedC:
    """Write ``model``'s streaming step to ``path`` and check it: ``.onnx`` (ONNX, compared with the torch stream
    in onnxruntime on ``check_steps`` random steps) or ``.c`` (C99 and its ``.h`` beside it, see
    :func:`dilated.streaming.export_c`; compared with the model's forward, unless ``check_steps`` is 0).

    Args:
        model: a streamable module (causal, stride 1; see :func:`dilated.stream`) taking ``(batch, channels, time)``.
        channels: input channels of one step (default: a :class:`~dilated.LayerGraph`'s first input's).
        batch_size: independent streams per call (fixed in the file).
        check_steps: steps compared between onnxruntime and the torch stream (0 skips the check).
        prefix: the C functions' prefix (``.c`` only).
    """
    path = Path(path)
    if path.suffix not in EXTENSIONS:
        raise ValueError(
            f"export_step: unknown format {path.suffix or path.name!r}; write a {' or '.join(EXTENSIONS)} file"
        )
    if channels is None:
        if not isinstance(model, LayerGraph):
            raise ValueError(
                f"export_step: give channels= for a {type(model).__name__} (the input channels of a "
                "step); only a converted graph declares them"
            )
        channels = next(iter(model.spec.inputs.values()))[0]
    if path.suffix == ".c":
        return export_c(model, path, torch.zeros(1, channels), prefix, check=check_steps > 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    step = export_onnx(model, str(path), torch.zeros(batch_size, channels))
    error = check_onnx_step(model, path, channels, batch_size, check_steps, seed) if check_steps else 0.0
    return ExportedStep(path, (batch_size, channels), step.state_names, check_steps, error)


def check_onnx_step(model: nn.Module, path: Path, channels: int, batch_size: int, steps: int, seed: int = 0) -> float:
    """Largest difference between the ONNX step (onnxruntime) and ``dilated.stream`` over ``steps`` random steps."""
    try:
        import onnxruntime  # optional dependency
    except ImportError as error:
        raise ImportError(
            "checking the ONNX step needs onnxruntime: pip install onnxruntime (or pass --check-steps 0)"
        ) from error
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    state = [np.zeros(i.shape, dtype=np.float32) for i in inputs[1:]]
    reference = stream(model, batch_size)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for t in range(steps):
        x = rng.standard_normal((batch_size, channels)).astype(np.float32)
        y, *state = session.run(None, {inputs[0].name: x, **{i.name: s for i, s in zip(inputs[1:], state)}})
        expected = reference.step(torch.from_numpy(x)).numpy()
        diff = float(np.abs(y - expected).max())
        if not diff <= TOLERANCE * max(1.0, float(np.abs(expected).max())):
            raise ValueError(f"{path}: the ONNX step differs from the torch stream by {diff:.3g} at step {t}")
        worst = max(worst, diff)
    return worst
