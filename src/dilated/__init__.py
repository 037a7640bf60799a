"""dilated: dilated causal convolutional sequence models.

Exact 1-D conv geometry (`dilated.geometry`, no torch needed), Keras-exact layers (`Conv1d`), exact receptive
fields of any model graph (`dilated.receptive_field`, checked by `dilated.probe_receptive_field`), summaries and
diagrams with receptive fields, the WaveNet, TCN, TransLOB and DeepLOB models, and streaming inference
(`dilated.stream`). All tensors are
``(batch, channels, time)``.
"""

from dilated.analysis import probe_receptive_field, receptive_field
from dilated.diagrams import compare, draw
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
    "TCN", "AvgPool1d", "Conv1d", "DeepLOB", "Dense", "MaxPool1d", "Stream", "Summary", "TransLOB", "WaveNet",
    "WindowStream", "available_models", "build_model", "compare", "draw", "example_input_shape", "generate",
    "mu_law_decode", "mu_law_encode", "probe_receptive_field", "receptive_field", "register_model", "stream",
    "summary",
]
