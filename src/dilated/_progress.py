"""When a progress bar is drawn: only where asked and only on a terminal, so that logs and pipes get no bar frames."""

from __future__ import annotations


def bar_disabled(progress: bool) -> bool | None:
    """tqdm's ``disable`` for a bar that was asked for (``progress``): ``None`` is tqdm's own "off unless its stream
    is a terminal"; ``True`` turns it off."""
    return None if progress else True
