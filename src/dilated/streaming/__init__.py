"""Streaming inference: one new time step in, one output out, at a cost independent of the receptive field.

:func:`stream` picks an engine behind one interface (:class:`StreamEngine`): the eager
:class:`~dilated.streaming.eager.Stream` (the model's own ``forward`` with stateful convs) or the compiled
:class:`~dilated.streaming.fast.FastStream` (a Numba kernel, a few microseconds per step). :class:`WindowStream`
streams models that end in a stage over a whole window (TransLOB); :class:`StepFunction` / :func:`export_onnx` give
the step as a pure function for export, and :func:`generate` samples a WaveNet autoregressively.

    >>> s = stream(model, batch_size=4)                      # doctest: +SKIP
    >>> y_t = s.step(x_t)                                   # (4, channels) -> (4, out_channels)
    >>> y = s.step_many(x_chunk)                            # (4, channels, n) -> (4, out_channels, n)
    >>> torch.save(s.state_dict(), "state.pt"); s.load_state_dict(torch.load("state.pt", weights_only=True))
"""

from dilated.streaming.eager import STEPS_KEY, Stream, check, check_state
from dilated.streaming.export import StepFunction, export_onnx
from dilated.streaming.fast import FastStream, Unsupported
from dilated.streaming.generation import generate
from dilated.streaming.interface import Backend, StreamEngine, stream
from dilated.streaming.shadow import StatefulConv, StatefulPad
from dilated.streaming.window import WindowStream

__all__ = [
    "STEPS_KEY",
    "Backend",
    "FastStream",
    "StatefulConv",
    "StatefulPad",
    "StepFunction",
    "Stream",
    "StreamEngine",
    "Unsupported",
    "WindowStream",
    "check",
    "check_state",
    "export_onnx",
    "generate",
    "stream",
]
