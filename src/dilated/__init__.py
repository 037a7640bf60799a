"""dilated: dilated causal convolutional sequence models.

Exact 1-D conv geometry (`dilated.geometry`), Keras-exact layers (`Conv1d`), summaries with receptive fields.
All tensors are ``(batch, channels, time)``.
"""

from dilated.layers import AvgPool1d, Conv1d, Dense, MaxPool1d
from dilated.summary import Summary, summary

__version__ = "0.1.0"

__all__ = ["AvgPool1d", "Conv1d", "Dense", "MaxPool1d", "Summary", "summary"]
