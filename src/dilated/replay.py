"""Old import path of :mod:`dilated.live.replay`, kept for code that wrote ``from dilated.replay import ...``."""

from dilated.live.replay import Replay, replay, replay_rows, write_replay

__all__ = ["Replay", "replay", "replay_rows", "write_replay"]
