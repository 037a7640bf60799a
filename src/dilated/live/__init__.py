"""A trained run as a live predictor: raw events in, the run's normalisation, predictions out, streamed equal to
offline. Its modules, lowest first:

* :mod:`.feeds`: raw data as the run's data source reads it (:class:`Feed`, :class:`Normalisation`, data kinds);
* :mod:`.engines`: the step engines of a live stream and the choice among them (:data:`PARITY`);
* :mod:`.predictor`: :func:`load_run`, :class:`Predictor`, :class:`LiveStream`, :class:`Predictions`;
* :mod:`.replay`: a recorded feed replayed event by event (``dilated replay``).
"""

from dilated.live.engines import PARITY, Engine
from dilated.live.feeds import Feed, Normalisation
from dilated.live.predictor import LiveStream, Predictions, Predictor, load_run
from dilated.live.replay import Replay, replay, replay_rows, write_replay

__all__ = [
    "PARITY",
    "Engine",
    "Feed",
    "LiveStream",
    "Normalisation",
    "Predictions",
    "Predictor",
    "Replay",
    "load_run",
    "replay",
    "replay_rows",
    "write_replay",
]
