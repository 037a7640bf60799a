"""Ctrl-C during training: stop at the next safe point, after a checkpoint; nothing here imports Lightning.

Why not Lightning's own handling: Lightning lets SIGINT become a ``KeyboardInterrupt`` wherever it lands (in the
middle of a forward pass, an optimizer step or a checkpoint write), then exits the process. A checkpoint written
there could hold half an optimizer step, and one written nowhere loses the epoch. So SIGINT is handled in one
place, :class:`InterruptRequest`, for the whole fit: the first Ctrl-C asks for a stop, which the checkpoint callback
honours after the current optimizer step (writing a checkpoint of exactly that point, from which a resumed run ends
with the same weights as one never stopped), and a second Ctrl-C stops at once, without a new checkpoint. Either
way training ends with :class:`TrainingInterrupted`; Lightning's ``KeyboardInterrupt`` path is never taken.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any


class TrainingInterrupted(RuntimeError):
    """Training stopped on Ctrl-C; ``checkpoint`` is the folder written at the stop (None: none was).

    ``primary`` is False in the extra processes of a multi-process run (which have nothing to tell the user).
    """

    def __init__(self, checkpoint: Path | None, run: Path, primary: bool = True) -> None:
        self.checkpoint = checkpoint
        self.run = run
        self.primary = primary
        saved = f"checkpoint {checkpoint}" if checkpoint else "no new checkpoint"
        super().__init__(f"interrupted: {saved}; continue with `dilated train --resume {run}`")


class InterruptRequest:
    """SIGINT while installed: the first sets :attr:`requested`, a second raises :class:`TrainingInterrupted`."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def install(self) -> None:
        """Take over SIGINT (only the main thread can; elsewhere this does nothing)."""
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._handle)
        self._installed = True

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            self.restore()
            raise TrainingInterrupted(None, self.run)
        self.requested = True
        print(
            "\ndilated: Ctrl-C: saving a checkpoint after this batch (press Ctrl-C again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    def restore(self) -> None:
        """Give SIGINT back to its previous handler."""
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
