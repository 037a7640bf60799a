"""Old import path of :mod:`dilated.live.predictor` (with the feeds and engines it uses), kept for code that wrote
``from dilated.predictor import ...``."""

from dilated.live.engines import PARITY, Engine
from dilated.live.feeds import Feed, Normalisation
from dilated.live.predictor import LiveStream, Predictions, Predictor, load_run

__all__ = ["PARITY", "Engine", "Feed", "LiveStream", "Normalisation", "Predictions", "Predictor", "load_run"]
