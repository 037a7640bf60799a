"""dilated: dilated causal convolutional sequence models.

Exact 1-D conv geometry (:mod:`dilated.geometry`, no torch needed), Keras-exact layers (:class:`Conv1d`), exact
receptive fields of any model graph (:func:`receptive_field`, checked by :func:`probe_receptive_field`), summaries
and diagrams with receptive fields, the WaveNet, TCN, TransLOB, DeepLOB, MLPLOB and TLOB models, streaming inference
(:func:`stream`, which returns a :class:`StreamEngine`: a compiled :class:`FastStream` or an :class:`EagerStream`),
Keras 3 models as torch (:func:`from_keras`), and trained runs as live predictors (:func:`load_run`). All tensors
are ``(batch, channels, time)``.

The names below are the public API; each is imported on first use (PEP 562), so ``import dilated`` and the
``dilated`` command's ``--help`` import no torch. The packages (``dilated.models``, ``dilated.analysis``,
``dilated.streaming``, ``dilated.data``, ``dilated.training``, ``dilated.live``, ``dilated.keras_bridge``,
``dilated.diagrams``, ``dilated.explore``) and the modules ``dilated.geometry``, ``dilated.layers``,
``dilated.design`` and ``dilated.summaries`` each list the rest of their public names in ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dilated._version import __version__ as __version__

_EXPORTS = {  # public name -> the part that defines it
    "AvgPool1d": "dilated.layers",
    "Conv1d": "dilated.layers",
    "Dense": "dilated.layers",
    "MaxPool1d": "dilated.layers",
    "DeepLOB": "dilated.models",
    "DilatedStack": "dilated.models",
    "MLPLOB": "dilated.models",
    "TCN": "dilated.models",
    "TLOB": "dilated.models",
    "TransLOB": "dilated.models",
    "WaveNet": "dilated.models",
    "available_models": "dilated.models",
    "build_model": "dilated.models",
    "example_input_shape": "dilated.models",
    "mu_law_decode": "dilated.models",
    "mu_law_encode": "dilated.models",
    "register_model": "dilated.models",
    "Probe": "dilated.analysis",
    "ReceptiveField": "dilated.analysis",
    "first_noncausal_layer": "dilated.analysis",
    "probe_receptive_field": "dilated.analysis",
    "receptive_field": "dilated.analysis",
    "Summary": "dilated.summaries",
    "summary": "dilated.summaries",
    "compare": "dilated.diagrams",
    "draw": "dilated.diagrams",
    "EagerStream": "dilated.streaming",
    "FastStream": "dilated.streaming",
    "StreamEngine": "dilated.streaming",
    "WindowStream": "dilated.streaming",
    "export_step": "dilated.streaming",
    "generate": "dilated.streaming",
    "stream": "dilated.streaming",
    "LayerGraph": "dilated._layer_graph",
    "load_graph": "dilated._layer_graph",
    "from_keras": "dilated.keras_bridge",
    "LiveStream": "dilated.live",
    "Predictions": "dilated.live",
    "Predictor": "dilated.live",
    "load_run": "dilated.live",
}

__all__ = sorted(_EXPORTS, key=lambda name: (not name[0].isupper(), name))

if TYPE_CHECKING:  # the names as type checkers see them
    from dilated._layer_graph import LayerGraph as LayerGraph
    from dilated._layer_graph import load_graph as load_graph
    from dilated.analysis import (
        Probe as Probe,
    )
    from dilated.analysis import (
        ReceptiveField as ReceptiveField,
    )
    from dilated.analysis import (
        first_noncausal_layer as first_noncausal_layer,
    )
    from dilated.analysis import (
        probe_receptive_field as probe_receptive_field,
    )
    from dilated.analysis import (
        receptive_field as receptive_field,
    )
    from dilated.diagrams import compare as compare
    from dilated.diagrams import draw as draw
    from dilated.keras_bridge import from_keras as from_keras
    from dilated.layers import AvgPool1d as AvgPool1d
    from dilated.layers import Conv1d as Conv1d
    from dilated.layers import Dense as Dense
    from dilated.layers import MaxPool1d as MaxPool1d
    from dilated.live import (
        LiveStream as LiveStream,
    )
    from dilated.live import (
        Predictions as Predictions,
    )
    from dilated.live import (
        Predictor as Predictor,
    )
    from dilated.live import (
        load_run as load_run,
    )
    from dilated.models import (
        MLPLOB as MLPLOB,
    )
    from dilated.models import (
        TCN as TCN,
    )
    from dilated.models import (
        TLOB as TLOB,
    )
    from dilated.models import (
        DeepLOB as DeepLOB,
    )
    from dilated.models import (
        DilatedStack as DilatedStack,
    )
    from dilated.models import (
        TransLOB as TransLOB,
    )
    from dilated.models import (
        WaveNet as WaveNet,
    )
    from dilated.models import (
        available_models as available_models,
    )
    from dilated.models import (
        build_model as build_model,
    )
    from dilated.models import (
        example_input_shape as example_input_shape,
    )
    from dilated.models import (
        mu_law_decode as mu_law_decode,
    )
    from dilated.models import (
        mu_law_encode as mu_law_encode,
    )
    from dilated.models import (
        register_model as register_model,
    )
    from dilated.streaming import (
        EagerStream as EagerStream,
    )
    from dilated.streaming import (
        FastStream as FastStream,
    )
    from dilated.streaming import (
        StreamEngine as StreamEngine,
    )
    from dilated.streaming import (
        WindowStream as WindowStream,
    )
    from dilated.streaming import (
        export_step as export_step,
    )
    from dilated.streaming import (
        generate as generate,
    )
    from dilated.streaming import (
        stream as stream,
    )
    from dilated.summaries import Summary as Summary
    from dilated.summaries import summary as summary


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dilated' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return [*__all__, "__version__"]
