"""Models of other frameworks than torch, read by the reader that their part of ``dilated`` registers.

The analysis follows torch modules itself. A model of another framework (Keras 3) is read into the same
:class:`~dilated.analysis.Graph` by a :class:`ModelReader`, which the framework's part registers when it is
imported; :func:`reader_for` imports that part by name the first time such a model arrives (the Keras one is
:mod:`dilated.keras_bridge`), so the analysis depends on no framework but torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dilated.analysis._graph import Graph

# the top-level package of a model's class -> the part of dilated that reads such models
READER_PARTS = {"keras": "dilated.keras_bridge"}

ProbeRun = tuple[Callable[[Any], Any], tuple[int, ...]]  # a function of an input batch, and its input shape


@dataclass(frozen=True)
class ModelReader:
    """How to read a model of one framework: its dataflow graph and a probe of any layer's output.

    ``graph(model, input_shape)`` returns the model's :class:`~dilated.analysis.Graph`;
    ``probe_function(model, input_shape, seed=0, layer=None)`` returns a function of an input batch (time on axis
    1) and the input shape it takes, for the empirical probe.
    """

    framework: str
    accepts: Callable[[object], bool]
    graph: Callable[[Any, Sequence[int] | None], Graph]
    probe_function: Callable[..., ProbeRun]


_READERS: dict[str, ModelReader] = {}


def register_reader(reader: ModelReader) -> None:
    """Make the analysis read models of ``reader.framework`` (registering again replaces it)."""
    _READERS[reader.framework] = reader


def reader_for(model: object) -> ModelReader | None:
    """The reader of a model that is not a torch module, or ``None`` if no part of ``dilated`` reads it."""
    framework = type(model).__module__.split(".")[0]
    if framework in READER_PARTS and framework not in _READERS:
        importlib.import_module(READER_PARTS[framework])  # registers its reader
    reader = _READERS.get(framework)
    return reader if reader is not None and reader.accepts(model) else None
