"""dilated: dilated causal convolutional sequence models.

Exact 1-D conv geometry (`dilated.geometry`, no torch needed), Keras-exact layers (`Conv1d`), exact receptive
fields of any model graph (`dilated.receptive_field`, checked by `dilated.probe_receptive_field`), summaries and
diagrams with receptive fields, the WaveNet, TCN, TransLOB and DeepLOB models, streaming inference
(`dilated.stream`), and trained runs as live predictors (`dilated.load_run`). All tensors are
``(batch, channels, time)``.
"""

from dilated.analysis import probe_receptive_field, receptive_field
from dilated.diagrams import compare, draw
from dilated.keras_convert import from_keras
from dilated.layers import AvgPool1d, Conv1d, Dense, MaxPool1d
from dilated.models import (
    TCN,
    DeepLOB,
    TransLOB,
    WaveNet,
    available_models,
    build_model,
    example_input_shape,
    register_model,
)
from dilated.models.mulaw import mu_law_decode, mu_law_encode
from dilated.streaming import Stream, WindowStream, generate, stream
from dilated.summaries import Summary, summary

__version__ = "0.1.0"

__all__ = [
    "TCN",
    "AvgPool1d",
    "Conv1d",
    "DeepLOB",
    "Dense",
    "MaxPool1d",
    "Predictor",
    "Stream",
    "Summary",
    "TransLOB",
    "WaveNet",
    "WindowStream",
    "available_models",
    "build_model",
    "compare",
    "draw",
    "example_input_shape",
    "from_keras",
    "generate",
    "load_run",
    "mu_law_decode",
    "mu_law_encode",
    "probe_receptive_field",
    "receptive_field",
    "register_model",
    "stream",
    "summary",
]

_PREDICTOR = ("Predictor", "load_run")


def __getattr__(name: str) -> object:
    """``load_run`` and ``Predictor`` read run folders with the training stack (Lightning, torchmetrics): it is
    imported on first use, so that ``import dilated`` stays light."""
    if name in _PREDICTOR:
        from dilated import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module 'dilated' has no attribute {name!r}")
