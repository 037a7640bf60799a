"""A trained run as a live predictor: raw events in, the run's normalisation, predictions out, streamed equal to
offline. Its modules, lowest first:

* :mod:`._feeds`: what a feed (:class:`Feed`, read by the run's data kind: :mod:`dilated.training._kinds`) needs
  before the model: the training z-score (:class:`Normalisation`), the windows of usable events;
* :mod:`._engines`: the step engines of a live stream and the choice among them (:data:`PARITY`);
* :mod:`._predictor`: :func:`load_run`, :class:`Predictor`, :class:`LiveStream`, :class:`Predictions`;
* :mod:`._replay`: a recorded feed replayed event by event (``dilated replay``).
"""

from dilated.live._engines import PARITY, Engine
from dilated.live._feeds import Normalisation
from dilated.live._predictor import LiveStream, Predictions, Predictor, load_run
from dilated.live._replay import Replay, replay, replay_rows, write_replay
from dilated.training import Feed

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
