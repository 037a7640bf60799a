"""Streaming inference: one new time step in, one output out, at a cost independent of the receptive field.

:func:`stream` picks an engine behind one interface (:class:`StreamEngine`): the eager
:class:`EagerStream` (the model's own ``forward`` with stateful convs) or the compiled
:class:`FastStream` (a Numba kernel, a few microseconds per step). :class:`WindowStream`
streams models that end in a stage over a whole window (TransLOB); :class:`StepFunction` / :func:`export_onnx` give
the step as a pure function for export (:func:`export_step` writes it as ONNX checked with onnxruntime, or as C99
with :func:`export_c`), and :func:`generate` samples a WaveNet autoregressively.

    >>> s = stream(model, batch_size=4)                      # doctest: +SKIP
    >>> y_t = s.step(x_t)                                   # (4, channels) -> (4, out_channels)
    >>> y = s.step_many(x_chunk)                            # (4, channels, n) -> (4, out_channels, n)
    >>> torch.save(s.state_dict(), "state.pt"); s.load_state_dict(torch.load("state.pt", weights_only=True))

Its modules, lowest first: ``_shadow`` (stateful twins of the time-mixing layers), ``_eager``, ``_verify`` (the
construction check), ``_stamps`` (many tensors' versions, storages and shapes read at once by a C++ extension module),
``_weights`` (whether the model's weights changed), ``_fast`` (the compiled path: instruction set, compiler, Numba
kernel, engine), ``_interface`` (:class:`StreamEngine`, :func:`stream`), ``_window``, ``_export_c``, ``_export``,
``_generation``.
"""

from dilated.streaming._eager import STEPS_KEY, EagerStream, check, check_state
from dilated.streaming._export import ExportedStep, StepFunction, export_onnx, export_step
from dilated.streaming._export_c import ExportedC, export_c
from dilated.streaming._fast import FastStream, Unsupported
from dilated.streaming._generation import generate
from dilated.streaming._interface import Backend, StreamEngine, stream
from dilated.streaming._shadow import StatefulConv, StatefulPad
from dilated.streaming._window import WindowStream

__all__ = [
    "STEPS_KEY",
    "Backend",
    "ExportedStep",
    "FastStream",
    "StatefulConv",
    "StatefulPad",
    "StepFunction",
    "EagerStream",
    "ExportedC",
    "StreamEngine",
    "Unsupported",
    "WindowStream",
    "check",
    "check_state",
    "export_c",
    "export_onnx",
    "export_step",
    "generate",
    "stream",
]
