"""A model's streaming step as an ONNX file, checked against the torch stream with onnxruntime.

:func:`export_step` writes the step with :func:`dilated.streaming.export_onnx` (inputs ``x`` ``(batch, channels)``
and ``state_0 ...``; outputs ``y`` and ``new_state_0 ...``), then runs the file in onnxruntime beside
``dilated.stream(model, batch_size)`` on random steps, feeding each ONNX step the state the previous one returned,
and raises ``ValueError`` if any output differs. onnxruntime is optional (``pip install onnxruntime``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dilated.graph import Graph
from dilated.streaming import export_onnx, stream

TOLERANCE = 1e-4  # float32, after many steps


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
) -> ExportedStep:
    """Write ``model``'s streaming step to ``path`` (ONNX) and check it on ``check_steps`` random steps.

    Args:
        model: a streamable module (causal, stride 1; see :func:`dilated.stream`) taking ``(batch, channels, time)``.
        channels: input channels of one step (default: a :class:`~dilated.graph.Graph`'s first input's).
        batch_size: independent streams per call (fixed in the file).
        check_steps: steps compared between onnxruntime and the torch stream (0 skips the check).
    """
    if channels is None:
        if not isinstance(model, Graph):
            raise ValueError(
                f"export_step: give channels= for a {type(model).__name__} (the input channels of a "
                "step); only a converted graph declares them"
            )
        channels = next(iter(model.spec.inputs.values()))[0]
    path = Path(path)
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
